//! End-to-end scenarios on loopback: the real `nms` binary as a server and several agents, each
//! test in its own temporary folder with its own ports, checked through the HTTP API the way a
//! user would look at a running system.

mod support;

use serde_json::{Value, json};
use std::collections::HashSet;
use std::path::PathBuf;
use support::fixtures::{fixture, set_everywhere};
use support::ports::free_tcp_port;
use support::sandbox::{Sandbox, Server};
use support::wait::{WAIT, wait_for};

/// Copies a task fixture into the sandbox with every iperf `port` set to a free one (tests run
/// in parallel, and iperf3's default port may be taken).
fn task_file(sandbox: &Sandbox, name: &str) -> PathBuf {
    let mut task = fixture(name);
    set_everywhere(&mut task, "port", &json!(free_tcp_port()));
    sandbox.write_json(name, &task)
}

/// Starts a server with the task fixture `name` (see [`task_file`]) and then `agents`.
fn start(sandbox: &mut Sandbox, name: &str, agents: &[&str], extra_args: &[&str]) -> Server {
    let task = task_file(sandbox, name);
    let server = sandbox.start_server(&[task], extra_args);
    for id in agents {
        sandbox.start_agent(id, &server);
    }
    server
}

/// The first stored record of `agent` that has `field`, once one exists.
fn record_with(server: &Server, agent: &str, field: &str) -> Option<Value> {
    server
        .metrics(agent)
        .into_iter()
        .find(|m| m.get(field).is_some())
}

fn wait_for_field(server: &Server, agent: &str, field: &str) -> Value {
    wait_for(
        WAIT,
        &format!("a metrics record of {agent} with {field}"),
        || record_with(server, agent, field),
    )
}

/// Asserts that the Prometheus exposition (`/metrics`) has this sample line.
fn assert_exposition_has(server: &Server, line: &str) {
    let text = server.get_text("/metrics");
    assert!(
        text.lines().any(|l| l.trim() == line),
        "/metrics has no line {line:?}:\n{text}"
    );
}

/// (agent, task, time_ms) of a metrics record: what the store keeps once.
fn record_key(m: &Value) -> (String, String, u64) {
    (
        m["agent"].as_str().unwrap_or_default().to_string(),
        m["task"].as_str().unwrap_or_default().to_string(),
        m["time_ms"].as_u64().expect("time_ms is a number"),
    )
}

/// Opens the store a stopped server left on disk (replaying its log, as a restart does).
fn open_store(server: &Server) -> nms::store::Store {
    nms::store::Store::open(
        &server.data_dir,
        nms::store::StoreOptions {
            background: false,
            ..nms::store::StoreOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("{}: {e}", server.data_dir.display()))
}

/// Every metrics report in a stopped server's store, in the API's form.
fn stored_records(server: &Server) -> Vec<Value> {
    let store = open_store(server);
    let page = store
        .metrics(&nms::store::RawQuery {
            from_ms: Some(0),
            limit: 100_000,
            ..nms::store::RawQuery::default()
        })
        .expect("query the store");
    assert!(page.next.is_none(), "more than a page of reports");
    page.records.iter().map(|r| r.to_json()).collect()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

#[test]
fn assignment_dialect_three_agents_ping_iperf_and_alerts() {
    let mut sandbox = Sandbox::new();
    let server = start(&mut sandbox, "assignment.json", &["r1", "r2", "r3"], &[]);

    wait_for(WAIT, "r1, r2 and r3 up", || {
        server.agents_are(&["r1", "r2", "r3"], "up").then_some(())
    });

    let ping = wait_for_field(&server, "r1", "rtt_avg_ms");
    assert_eq!(ping["target"], "127.0.0.1", "ping record: {ping}");
    assert_eq!(ping["task"], "e2e-assignment");
    assert!(ping["rtt_avg_ms"].as_f64().is_some_and(|v| v >= 0.0));

    let system = wait_for_field(&server, "r1", "ram_percent");
    assert!(
        system["interfaces"].get("lo").is_some(),
        "r1 gathers the counters of lo: {system}"
    );

    let iperf = wait_for_field(&server, "r3", "bandwidth_bps");
    assert!(
        iperf["bandwidth_bps"].as_f64().is_some_and(|b| b > 0.0),
        "r3 measured a bandwidth: {iperf}"
    );
    assert_eq!(iperf["target"], "r2", "r3 measured towards r2: {iperf}");

    let ram_alert = wait_for(WAIT, "a RAM alert of r1", || {
        server
            .alerts()
            .into_iter()
            .find(|a| a["agent"] == "r1" && a["kind"] == "ram")
    });
    assert_eq!(ram_alert["task"], "e2e-assignment");
    assert!(
        ram_alert["rule"]
            .as_str()
            .is_some_and(|r| r.contains("ram_usage")),
        "the alert names the rule that fired: {ram_alert}"
    );
    assert!(ram_alert["value"].as_f64().is_some_and(|v| v > 1.0));

    assert_exposition_has(&server, r#"nms_agent_up{agent="r1"} 1"#);
    let tasks = server.get("/api/tasks");
    assert_eq!(tasks[0]["task_id"], "e2e-assignment", "{tasks}");
}

#[test]
fn original_dialect_ping_task_and_iperf_pair() {
    let mut sandbox = Sandbox::new();
    let server = start(&mut sandbox, "original.json", &["r1", "r2", "r3"], &[]);

    let ping = wait_for_field(&server, "r1", "rtt_avg_ms");
    assert_eq!(ping["task"], "e2e-ping");
    assert_eq!(ping["target"], "127.0.0.1");
    assert!(ping["loss_percent"].as_f64().is_some_and(|l| l < 100.0));

    let iperf = wait_for_field(&server, "r3", "bandwidth_bps");
    assert_eq!(iperf["task"], "e2e-iperf");
    assert!(
        iperf["bandwidth_bps"].as_f64().is_some_and(|b| b > 0.0),
        "r3 measured a bandwidth: {iperf}"
    );
    assert!(server.agents_are(&["r1", "r2", "r3"], "up"));
}

#[test]
fn a_posted_task_replaces_the_running_one() {
    let mut sandbox = Sandbox::new();
    let server = start(&mut sandbox, "ping.json", &["r1"], &[]);

    let before = wait_for_field(&server, "r1", "rtt_avg_ms");
    assert_eq!(before["target"], "127.0.0.1");

    let mut replacement = fixture("ping.json");
    set_everywhere(&mut replacement, "destination", &json!("127.0.0.2"));
    let posted_ms = now_ms();
    let response = server.post("/api/tasks", &replacement.to_string());
    assert_eq!(response.status, 200, "POST /api/tasks: {}", response.body);
    let outcome = response.json();
    assert_eq!(outcome["tasks"][0]["task_id"], "e2e-ping", "{outcome}");
    assert_eq!(
        outcome["tasks"][0]["devices"][0]["status"], "sent",
        "{outcome}"
    );

    let is_new = |m: &Value| m["time_ms"].as_u64().is_some_and(|t| t >= posted_ms);
    let first_new = wait_for(WAIT, "two records of the new destination", || {
        let new: Vec<Value> = server
            .metrics("r1")
            .into_iter()
            .filter(|m| is_new(m) && m["target"] == "127.0.0.2")
            .collect();
        (new.len() >= 2).then(|| new[0].clone())
    });
    assert!(first_new["rtt_avg_ms"].as_f64().is_some());
    let since = first_new["time_ms"].as_u64().unwrap_or_default();
    let old_after: Vec<Value> = server
        .metrics("r1")
        .into_iter()
        .filter(|m| m["time_ms"].as_u64().is_some_and(|t| t > since) && m["target"] != "127.0.0.2")
        .collect();
    assert!(
        old_after.is_empty(),
        "the old destination is not measured any more: {old_after:?}"
    );
    let tasks = server.get("/api/tasks");
    assert_eq!(tasks.as_array().map(Vec::len), Some(1), "{tasks}");
    assert_eq!(tasks[0]["origin"], "HTTP API", "{tasks}");
}

#[test]
fn a_killed_agent_is_marked_down_with_an_alert() {
    let mut sandbox = Sandbox::new();
    let server = start(
        &mut sandbox,
        "two-agents.json",
        &["r1", "r2"],
        &["--heartbeat-ms", "300", "--missed-heartbeats", "3"],
    );
    wait_for(WAIT, "r1 and r2 up, r1 reporting", || {
        (server.agents_are(&["r1", "r2"], "up") && !server.metrics("r1").is_empty()).then_some(())
    });

    sandbox.kill("r1");
    wait_for(WAIT, "r1 marked down", || {
        server.agents_are(&["r1"], "down").then_some(())
    });
    let alert = wait_for(WAIT, "an agent_down alert for r1", || {
        server
            .alerts()
            .into_iter()
            .find(|a| a["agent"] == "r1" && a["kind"] == "agent_down")
    });
    assert_eq!(alert["severity"], "critical", "{alert}");
    assert!(server.agents_are(&["r2"], "up"), "r2 still reports");
    assert!(
        !server
            .alerts()
            .iter()
            .any(|a| a["agent"] == "r2" && a["kind"] == "agent_down"),
        "r2 was never down"
    );
    assert_exposition_has(&server, r#"nms_agent_up{agent="r1"} 0"#);
}

#[test]
fn a_restarted_server_keeps_its_data_and_agents_come_back() {
    let mut sandbox = Sandbox::new();
    let server = start(&mut sandbox, "two-agents.json", &["r1", "r2"], &[]);
    wait_for(WAIT, "three ping records of r1 and three of r2", || {
        let r1 = server
            .metrics("r1")
            .iter()
            .filter(|m| m.get("rtt_avg_ms").is_some())
            .count();
        (r1 >= 3 && server.metrics("r2").len() >= 3).then_some(())
    });
    let registered_before = registrations(&server, "r1");

    sandbox.kill(&server.name);
    let before: Vec<Value> = stored_records(&server);
    assert!(
        before.len() >= 6,
        "{} records stored before the kill",
        before.len()
    );
    let killed_ms = now_ms();

    let server = sandbox.restart_server(&server);
    wait_for(WAIT, "r1 and r2 up again after they register again", || {
        (server.agents_are(&["r1", "r2"], "up") && registrations(&server, "r1") > registered_before)
            .then_some(())
    });
    wait_for(WAIT, "new records of r1 and r2 after the restart", || {
        let newer = |agent: &str| {
            server
                .metrics(agent)
                .iter()
                .any(|m| m["time_ms"].as_u64().is_some_and(|t| t > killed_ms))
        };
        (newer("r1") && newer("r2")).then_some(())
    });

    let after: Vec<Value> = ["r1", "r2"]
        .iter()
        .flat_map(|agent| server.metrics(agent))
        .collect();
    let after_keys: HashSet<_> = after.iter().map(record_key).collect();
    for m in &before {
        assert!(
            after_keys.contains(&record_key(m)),
            "a record stored before the restart is still served: {m}"
        );
    }
    assert_eq!(
        after_keys.len(),
        after.len(),
        "the API serves each (agent, task, time) once"
    );

    // On disk too: every report stored exactly once, however often it was sent (every copy
    // in every chunk and in the log is counted).
    sandbox.kill(&server.name);
    let on_disk = reports_on_disk_each_stored_once(&server);
    assert!(on_disk >= after.len());
}

/// How many times `name` has registered with the server, by /api/agents.
fn registrations(s: &Server, name: &str) -> u64 {
    s.try_get("/api/agents")
        .and_then(|list| {
            list.as_array()?
                .iter()
                .find(|a| a["name"] == name)
                .and_then(|a| a["registrations"].as_u64())
        })
        .unwrap_or_default()
}

/// Scans the stopped server's store: no report in it twice; returns how many there are.
fn reports_on_disk_each_stored_once(server: &Server) -> usize {
    let mut seen = HashSet::new();
    for (key, time_ms) in open_store(server).scan_times().expect("scan the store") {
        assert!(
            seen.insert((
                key.agent.clone(),
                key.task.clone(),
                key.target.clone(),
                time_ms
            )),
            "stored twice: {key:?} at {time_ms}"
        );
    }
    seen.len()
}

#[test]
fn a_bad_task_file_stops_the_server_with_its_position() {
    let mut sandbox = Sandbox::new();
    let fixture_path = support::fixtures::fixtures_dir().join("bad-threshold.json");
    let text = std::fs::read_to_string(&fixture_path).expect("the fixture");
    // Where the bad value is: the error must point there.
    let (line, column) = text
        .lines()
        .enumerate()
        .find_map(|(i, l)| l.find("120").map(|c| (i + 1, c + 1)))
        .expect("the fixture has the threshold 120");
    let bad = sandbox.path().join("bad-threshold.json");
    std::fs::write(&bad, &text).expect("copy of the fixture");

    let ports = support::ports::Ports::pick();
    let data_dir = sandbox.path().join("data/server");
    let args: Vec<std::ffi::OsString> = vec![
        "server".into(),
        "--config".into(),
        bad.clone().into(),
        "--listen".into(),
        "127.0.0.1".into(),
        "--nettask-port".into(),
        ports.nettask.to_string().into(),
        "--alertflow-port".into(),
        ports.alertflow.to_string().into(),
        "--http".into(),
        format!("127.0.0.1:{}", ports.http).into(),
        "--data-dir".into(),
        data_dir.into(),
    ];
    sandbox.spawn("server", &args);
    let status = sandbox.wait_exit("server");
    assert_eq!(status.code(), Some(1), "exit status of a bad task file");
    let log = sandbox.log("server");
    assert!(
        log.contains(&bad.display().to_string()),
        "the error names the file:\n{log}"
    );
    assert!(
        log.contains(&format!("{line}:{column}")),
        "the error gives the position {line}:{column}:\n{log}"
    );
    assert!(log.starts_with("nms: "), "one error line:\n{log}");
    assert!(
        support::http::http_get(
            std::net::SocketAddr::from(([127, 0, 0, 1], ports.http)),
            "/api/status"
        )
        .is_err(),
        "nothing listens"
    );
}

#[test]
fn the_quick_start_shows_metrics_and_a_ram_alert() {
    // README's quick start: the shipped default task and an agent inside the server.
    let mut sandbox = Sandbox::new();
    let default = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs/default.json");
    let server = sandbox.start_server(&[default], &["--local-agent", "local"]);
    wait_for_field(&server, "local", "rtt_avg_ms");
    wait_for_field(&server, "local", "ram_percent");
    wait_for(WAIT, "a RAM alert of the local agent", || {
        server
            .alerts()
            .into_iter()
            .find(|a| a["agent"] == "local" && a["kind"] == "ram")
    });
    let log = sandbox.log(&server.name);
    assert!(log.contains("METRICS"), "-v logs each report:\n{log}");
    assert!(log.contains("ALERT"), "alerts are logged:\n{log}");
}

/// Alert ids an agent logged as raised (`RAISED <16 hex digits> ...`, with NMS_LOG_REPORTS).
fn raised_ids(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| l.split_once("RAISED ").map(|(_, rest)| rest))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[test]
fn alerts_raised_while_the_server_is_down_are_stored_once_after_it_returns() {
    let mut sandbox = Sandbox::new();
    // A rule that raises an alert on every other report, every second: alerts keep coming.
    std::fs::write(
        sandbox.path().join("flip.rhai"),
        "state.n = (state.n ?? 0) + 1;\n\
         if state.n % 2 == 0 && measured(cpu_percent) {\n\
         \x20   alert(\"cpu\", 0.0, cpu_percent, `report ${state.n}`);\n\
         }\n",
    )
    .expect("rule file");
    let task = sandbox.write_json(
        "flip.json",
        &json!({"task_id": "flip", "frequency": 1, "devices": [
            {"device_id": "r1", "device_metrics": {"cpu_usage": true}, "rules": ["flip.rhai"]}
        ]}),
    );
    let server = sandbox.start_server(&[task], &[]);
    sandbox.start_agent("r1", &server);
    wait_for(WAIT, "alerts of r1 stored", || {
        (server.alerts().len() >= 2).then_some(())
    });

    sandbox.kill(&server.name);
    // The agent keeps measuring and raising while the server is gone.
    let raised_before = raised_ids(&sandbox.log("r1")).len();
    wait_for(WAIT, "r1 raising alerts while the server is down", || {
        (raised_ids(&sandbox.log("r1")).len() >= raised_before + 2).then_some(())
    });

    let restarted = std::time::Instant::now();
    let server = sandbox.restart_server(&server);
    wait_for(WAIT, "r1 up again", || {
        server.agents_are(&["r1"], "up").then_some(())
    });
    eprintln!(
        "r1 was up {:?} after the restart began",
        restarted.elapsed()
    );

    let raised = raised_ids(&sandbox.log("r1"));
    let stored = wait_for(WAIT, "every alert r1 raised stored", || {
        let stored: Vec<String> = server
            .get("/api/alerts?agent=r1&limit=100000")
            .as_array()
            .expect("a list")
            .iter()
            .filter_map(|a| a["alert_id"].as_str().map(str::to_string))
            .collect();
        raised
            .iter()
            .all(|id| stored.contains(id))
            .then_some(stored)
    });
    let unique: HashSet<&String> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "an alert was stored twice");
    assert!(
        raised.len() > raised_before,
        "alerts were raised during the outage"
    );
}

#[test]
fn a_dns_probe_is_measured_stored_exported_and_alerted_on() {
    // A probe added through its module alone (src/probes/dns.rs) works end to end: task file,
    // agent, store, API, /metrics and the shipped rule.
    let mut sandbox = Sandbox::new();
    let entry = |expect: &str| json!({"dns": {"tool": "dns", "query": "localhost", "expect": expect, "frequency": 1}});
    let task = json!({"task_id": "dns", "frequency": 1, "devices": [
        {"device_id": "d1", "link_metrics": entry("127.0.0.1"), "rules": ["dns_lookup.rhai"]},
        {"device_id": "d2", "link_metrics": entry("192.0.2.7"), "rules": ["dns_lookup.rhai"]},
    ]});
    let path = sandbox.write_json("dns.json", &task);
    let rule = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules/dns_lookup.rhai");
    std::fs::copy(rule, path.with_file_name("dns_lookup.rhai")).expect("copy the rule");
    let server = sandbox.start_server(&[path], &[]);
    sandbox.start_agent("d1", &server);
    sandbox.start_agent("d2", &server);

    let good = wait_for_field(&server, "d1", "dns_time_ms");
    assert!(
        good["dns_time_ms"].as_f64().is_some_and(|t| t >= 0.0),
        "{good}"
    );
    assert_eq!(
        good["dns_answers"],
        json!(1.0),
        "localhost has one address: {good}"
    );
    assert_eq!(good["dns_expected"], json!(1.0), "{good}");
    let moved = wait_for_field(&server, "d2", "dns_expected");
    assert_eq!(
        moved["dns_expected"],
        json!(0.0),
        "192.0.2.7 is not localhost: {moved}"
    );
    wait_for(WAIT, "the rule's alert for d2's unexpected answer", || {
        server
            .alerts()
            .into_iter()
            .find(|a| a["agent"] == "d2" && a["kind"] == "custom" && a["severity"] == "critical")
    });
    assert!(
        !server.alerts().iter().any(|a| a["agent"] == "d1"),
        "d1's answer is the expected one: {:?}",
        server.alerts()
    );
    let line = r#"nms_dns_answers{agent="d1",task="dns",destination="localhost"} 1"#;
    wait_for(WAIT, "d1's DNS answers in /metrics", || {
        let text = server.get_text("/metrics");
        text.lines().any(|l| l.trim() == line).then_some(())
    });
}
