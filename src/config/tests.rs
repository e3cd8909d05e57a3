//! Tests for `config`, kept apart so the module itself stays short.

use super::*;
use std::path::Path;

#[test]
fn spread_orders_spread_agents_evenly_and_a_lost_server_moves_only_its_own() {
    let servers: Vec<String> = (0..10).map(|i| format!("nms-{i}.example.net")).collect();
    let mut first = std::collections::HashMap::<String, usize>::new();
    for a in 0..10_000 {
        let agent = format!("host-{a}");
        let order = spread_servers(&servers, &agent);
        // A permutation of the list, the same every time for the same agent.
        let mut sorted = order.clone();
        sorted.sort();
        let mut given = servers.clone();
        given.sort();
        assert_eq!(sorted, given);
        assert_eq!(order, spread_servers(&servers, &agent));
        *first.entry(order[0].clone()).or_default() += 1;
        // Without server 3, an agent whose first was another server keeps it; one whose
        // first was server 3 goes to its own second choice.
        let without: Vec<String> = servers
            .iter()
            .filter(|s| *s != &servers[3])
            .cloned()
            .collect();
        let after = spread_servers(&without, &agent);
        let expected = if order[0] == servers[3] {
            &order[1]
        } else {
            &order[0]
        };
        assert_eq!(&after[0], expected, "{agent}");
    }
    assert_eq!(
        first.len(),
        10,
        "every server is someone's first: {first:?}"
    );
    for (server, n) in &first {
        assert!(
            (850..=1150).contains(n),
            "{server} is first for {n} of 10,000 agents"
        );
    }
}

#[test]
fn group_or_world_readable_secrets_are_told_apart() {
    assert!(!readable_by_others(0o600));
    assert!(!readable_by_others(0o400));
    assert!(readable_by_others(0o640));
    assert!(readable_by_others(0o604));
}

#[test]
fn retentions_and_sizes_are_read_with_their_units() {
    assert_eq!(
        retention("x", "15d").unwrap(),
        std::time::Duration::from_secs(15 * 86_400)
    );
    assert!(retention("x", "10m").is_err());
    assert!(retention("x", "forever").is_err());
    assert_eq!(byte_size("x", "50GB").unwrap(), 50_000_000_000);
    assert_eq!(byte_size("x", "512MiB").unwrap(), 512 * 1024 * 1024);
    assert!(byte_size("x", "12 parsecs").is_err());
    assert!(byte_size("x", "5").is_err());
}

#[test]
fn remote_write_tables_and_server_lists_are_read() {
    let text = "[[remote-write]]\nurl = \"http://a:9090/api/v1/write\"\n\
                [[remote-write]]\nurl = \"https://m/api/v1/push\"\nname = \"mimir\"\n\
                headers = { \"X-Scope-OrgID\" = \"net\" }\nmax-samples-per-send = 500\n";
    let s: ServerSettings = toml::from_str(text).unwrap();
    let rw = s.remote_write.unwrap();
    assert_eq!(rw.len(), 2);
    assert_eq!(rw[1].name.as_deref(), Some("mimir"));
    assert_eq!(rw[1].headers.as_ref().unwrap()["X-Scope-OrgID"], "net");
    assert_eq!(rw[1].max_samples_per_send, Some(500));
    let e = toml::from_str::<ServerSettings>("[[remote-write]]\nurl = \"x\"\nuser = \"a\"\n")
        .unwrap_err();
    assert!(e.to_string().contains("unknown field"), "{e}");
    for shipped in ["configs/server.toml", "configs/agent.toml"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(shipped);
        let text = std::fs::read_to_string(&path).unwrap();
        if shipped.contains("server") {
            toml::from_str::<ServerSettings>(&text).unwrap();
        } else {
            toml::from_str::<AgentSettings>(&text).unwrap();
        }
    }
    let a: AgentSettings =
        toml::from_str("server = [\"a:1\", \"b\"]\nprefer-first = true\n").unwrap();
    let list = server_list(&a.server.unwrap().into_list()).unwrap();
    assert_eq!(list, vec!["a:1", "b"]);
    assert_eq!(server_list(&["a,b".into()]).unwrap(), vec!["a", "b"]);
    assert!(server_list(&["a,,b".into()]).is_err());
    assert!(
        server_list(&["a,a".into()])
            .unwrap_err()
            .to_string()
            .contains("twice")
    );
}

#[test]
fn settings_files_are_read_and_errors_point_at_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.toml");
    std::fs::write(&path, "nettask-port = 9000\nconfig = [\"tasks.json\"]\n").unwrap();
    let (s, from): (ServerSettings, _) = load_settings(Some(&path), "server").unwrap();
    assert_eq!(s.nettask_port, Some(9000));
    assert_eq!(
        relative_to(from.as_deref(), s.config.unwrap()[0].clone()),
        dir.path().join("tasks.json")
    );
    std::fs::write(&path, "nettask-port = 9000\nnetask-port = 1\n").unwrap();
    let err = load_settings::<ServerSettings>(Some(&path), "server").unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("server.toml:2:1"), "{text}");
    assert!(text.contains("unknown field"), "{text}");
}
