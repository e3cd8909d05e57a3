//! What a user of the original system and of the course would try, in network namespaces (as
//! `tests/netns_drop.rs` makes them):
//!
//! - the original implementation's own task file (its interface names changed to `lo`) runs
//!   with one agent per namespace, as on the course topology: each ping runs at the interval
//!   the file gives (`ping -c 5 -i 1`) towards the host names it gives, and both iperf pairs
//!   measure;
//! - a watched interface set down raises an INTERFACE alert on the first report after it went
//!   down, and setting it up resolves it; so does losing its carrier; a watched interface that
//!   does not exist yet raises one ERROR alert however many reports go by, resolved when it
//!   appears.
//!
//! The namespaces (and `/etc/netns/NAME/`, which `ip netns exec` mounts over `/etc`) are the
//! tests' own and are deleted afterwards, even when a test fails. Without the means to make
//! them (not root, no `ip`/`bash`) a test says why and passes.

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::faults::netns;
use support::process::{Process, nms_binary};
use support::wait::{wait_quoting, wait_until};

const NETTASK_PORT: u16 = 8081;
const ALERTFLOW_PORT: u16 = 8080;
const HTTP_PORT: u16 = 9470;
/// A generous bound for what the tests wait for: a limit, not a timing assertion.
const WAIT: Duration = Duration::from_secs(90);

/// Runs a command without input.
fn run(program: &str, args: &[&str]) -> Result<String, String> {
    netns::run(program, args, None)
}

/// Network namespaces of one test; deleted (with their `/etc/netns` folders) when dropped.
struct Namespaces {
    names: Vec<String>,
}

impl Namespaces {
    /// Makes namespaces `prefix-0`, `prefix-1`, ... (`count` of them) with loopback up, or says
    /// why it cannot.
    fn create(prefix: &str, count: usize) -> Result<Namespaces, String> {
        for tool in ["ip", "bash"] {
            run("sh", &["-c", &format!("command -v {tool}")])
                .map_err(|_| format!("`{tool}` is not installed"))?;
        }
        let mut ns = Namespaces { names: Vec::new() };
        for i in 0..count {
            let name = format!("{prefix}-{}-{i}", std::process::id());
            run("ip", &["netns", "add", &name]).map_err(|e| {
                format!("cannot create a network namespace (root or CAP_NET_ADMIN needed): {e}")
            })?;
            ns.names.push(name.clone());
            run("ip", &["-n", &name, "link", "set", "lo", "up"])?;
        }
        Ok(ns)
    }

    fn name(&self, i: usize) -> &str {
        &self.names[i]
    }

    /// `ip -n NS ARGS...`
    fn ip(&self, i: usize, args: &[&str]) -> Result<String, String> {
        let mut full = vec!["-n", self.name(i)];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// Joins namespace `i` to namespace `hub` with a veth pair: `hub_addr/24` on the hub's
    /// end, `addr/24` on the other, whose default route goes through the hub.
    fn link_to_hub(&self, hub: usize, i: usize, hub_addr: &str, addr: &str) -> Result<(), String> {
        let (hub_end, end) = (format!("h{i}"), format!("a{i}"));
        self.ip(
            hub,
            &[
                "link",
                "add",
                &hub_end,
                "type",
                "veth",
                "peer",
                "name",
                &end,
                "netns",
                self.name(i),
            ],
        )?;
        self.ip(
            hub,
            &["addr", "add", &format!("{hub_addr}/24"), "dev", &hub_end],
        )?;
        self.ip(hub, &["link", "set", &hub_end, "up"])?;
        self.ip(i, &["addr", "add", &format!("{addr}/24"), "dev", &end])?;
        self.ip(i, &["link", "set", &end, "up"])?;
        self.ip(i, &["route", "add", "default", "via", hub_addr])?;
        Ok(())
    }

    /// Writes `/etc/netns/NS/hosts`, which `ip netns exec` shows as `/etc/hosts` in there.
    fn hosts(&self, i: usize, text: &str) -> Result<(), String> {
        let dir = PathBuf::from("/etc/netns").join(self.name(i));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        std::fs::write(dir.join("hosts"), text).map_err(|e| format!("{}: {e}", dir.display()))
    }

    /// Starts `nms ARGS...` in namespace `i`, with `env` added, its output to `log`.
    fn nms(
        &self,
        i: usize,
        name: &str,
        args: &[String],
        env: &[(&str, &str)],
        log: &Path,
    ) -> Process {
        let mut full = vec![
            "netns".to_string(),
            "exec".to_string(),
            self.name(i).to_string(),
            nms_binary().display().to_string(),
        ];
        full.extend_from_slice(args);
        Process::spawn(name, Path::new("ip"), &full, env, log.to_path_buf())
    }

    /// GET from a server's HTTP API on 127.0.0.1:9470 in namespace `i`.
    fn api(&self, i: usize, path: &str) -> Result<Value, String> {
        netns::api(self.name(i), HTTP_PORT, path)
    }

    /// The stored metrics records of `agent` (from the server in namespace `i`).
    fn metrics(&self, i: usize, agent: &str) -> Vec<Value> {
        self.api(i, &format!("/api/metrics?agent={agent}&limit=100000"))
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
    }

    /// Every stored alert (from the server in namespace `i`).
    fn alerts(&self, i: usize) -> Vec<Value> {
        self.api(i, "/api/alerts?limit=100000")
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in &self.names {
            let _ = run("ip", &["netns", "del", ns]);
            let _ = std::fs::remove_dir_all(PathBuf::from("/etc/netns").join(ns));
        }
    }
}

/// The arguments of a server with `task`, listening on `listen`, its data in `dir/server`.
fn server_args(task: &Path, listen: &str, dir: &Path) -> Vec<String> {
    [
        "server",
        "--listen",
        listen,
        "--config",
        &task.display().to_string(),
        "--data-dir",
        &dir.join("server").display().to_string(),
        "--nettask-port",
        &NETTASK_PORT.to_string(),
        "--alertflow-port",
        &ALERTFLOW_PORT.to_string(),
        "--http",
        &format!("127.0.0.1:{HTTP_PORT}"),
        "-v",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn agent_args(server: &str, id: &str, dir: &Path) -> Vec<String> {
    [
        "agent",
        "--server",
        &format!("{server}:{NETTASK_PORT}"),
        "--id",
        id,
        "--data-dir",
        &dir.join(format!("agent-{id}")).display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn now_ms() -> u64 {
    nms::log::now_ms()
}

#[test]
fn the_original_systems_task_file_runs_on_four_agents_with_pings_at_its_interval() {
    // The hub (server, and the router between the agents) and one namespace per device.
    let ns = match Namespaces::create("nmso", 5) {
        Ok(ns) => ns,
        Err(why) => {
            eprintln!("SKIPPED original task file: {why}");
            return;
        }
    };
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let dir = tmp.path();
    link_four_devices_to_the_hub(&ns);
    // Every `ping` the agents start is recorded, then run.
    let (recorded, path) = install_a_recording_ping(dir);

    let task =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tasks/original-system.json");
    let server = ns.nms(
        0,
        "server",
        &server_args(&task, "0.0.0.0", dir),
        &[],
        &dir.join("server.log"),
    );
    let up = wait_until(Duration::from_secs(15), || ns.api(0, "/api/status").is_ok());
    assert!(up, "the server did not start:\n{}", server.tail(20));
    let agents: Vec<Process> = (1..=4)
        .map(|i| {
            let id = i.to_string();
            ns.nms(
                i,
                &format!("agent {id}"),
                &agent_args(&hub_gateway(i), &id, dir),
                &[("PATH", &path)],
                &dir.join(format!("agent-{id}.log")),
            )
        })
        .collect();
    let mut all: Vec<&Process> = vec![&server];
    all.extend(agents.iter());

    check_pings_at_the_files_interval(&ns, &all, &recorded);
    check_both_iperf_pairs_measure(&ns, &all);
    let failures: Vec<Value> = ns
        .alerts(0)
        .into_iter()
        .filter(|a| a["kind"] == "error" || a["kind"] == "timeout")
        .collect();
    assert!(failures.is_empty(), "probes failed: {failures:#?}");
}

/// The hub's address on its link to device `i`.
fn hub_gateway(i: usize) -> String {
    format!("169.254.{}.1", 110 + i)
}

/// Devices 1 to 4 each linked to the hub (namespace 0), which forwards between them, with
/// the course topology's host names.
fn link_four_devices_to_the_hub(ns: &Namespaces) {
    for i in 1..=4 {
        ns.link_to_hub(0, i, &hub_gateway(i), &format!("169.254.{}.2", 110 + i))
            .expect("veth to the hub");
        // The course topology's hosts: pc1..pc3 answer (the hub stands in for them).
        ns.hosts(
            i,
            &format!("127.0.0.1 localhost\n{} pc1 pc2 pc3\n", hub_gateway(1)),
        )
        .expect("/etc/netns/NS/hosts");
    }
    run(
        "ip",
        &[
            "netns",
            "exec",
            ns.name(0),
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ],
    )
    .expect("forwarding in the hub");
}

/// A `ping` in `dir/bin` that records its arguments, then runs the real one: the file it
/// records to, and a PATH that finds it first.
fn install_a_recording_ping(dir: &Path) -> (PathBuf, String) {
    let real_ping = run("sh", &["-c", "command -v ping"]).expect("ping is installed");
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let recorded = dir.join("ping-calls.txt");
    let wrapper = bin.join("ping");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho \"$*\" >> {}\nexec {} \"$@\"\n",
            recorded.display(),
            real_ping.trim()
        ),
    )
    .unwrap();
    run("chmod", &["+x", &wrapper.display().to_string()]).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    (recorded, path)
}

/// Devices 3 and 4 ping pc2 and pc1: 5 packets 1 s apart, as the file says.
fn check_pings_at_the_files_interval(ns: &Namespaces, all: &[&Process], recorded: &Path) {
    for (device, host) in [("3", "pc2"), ("4", "pc1")] {
        let ping = wait_quoting(&format!("a ping record of {device}"), WAIT, all, || {
            ns.metrics(0, device)
                .into_iter()
                .find(|m| m["target"] == host && m["rtt_avg_ms"].is_number())
        });
        assert_eq!(ping["loss_percent"], 0.0, "{ping}");
    }
    let calls = std::fs::read_to_string(recorded).expect("ping was run");
    for host in ["pc2", "pc1"] {
        assert!(
            calls
                .lines()
                .any(|l| l.contains("-c 5 -i 1 ") && l.ends_with(host)),
            "no `ping -c 5 -i 1 ... {host}` in:\n{calls}"
        );
    }
}

/// Both iperf pairs measure: task 4 over UDP (jitter and loss) from 1 to 2, task 1 over
/// TCP from 4 to 3, each towards the other agent's namespace.
fn check_both_iperf_pairs_measure(ns: &Namespaces, all: &[&Process]) {
    let udp = wait_quoting("a UDP iperf record of 1", WAIT, all, || {
        ns.metrics(0, "1")
            .into_iter()
            .find(|m| m["udp_bandwidth_bps"].is_number())
    });
    assert!(
        udp["jitter_ms"].is_number() && udp["loss_percent"].is_number(),
        "{udp}"
    );
    assert_eq!(udp["target"], "2", "{udp}");
    let tcp = wait_quoting("a TCP iperf record of 4", WAIT, all, || {
        ns.metrics(0, "4")
            .into_iter()
            .find(|m| m["bandwidth_bps"].is_number())
    });
    assert!(tcp["bandwidth_bps"].as_f64() > Some(0.0), "{tcp}");
}

/// The first stored record of `agent` (after `since_ms`) whose interface `name` is in `state`.
fn first_with_state(
    ns: &Namespaces,
    agent: &str,
    name: &str,
    state: &str,
    since_ms: u64,
) -> Option<Value> {
    let mut records: Vec<Value> = ns
        .metrics(0, agent)
        .into_iter()
        .filter(|m| {
            m["time_ms"].as_u64() >= Some(since_ms) && m["interfaces"][name]["state"] == state
        })
        .collect();
    records.sort_by_key(|m| m["time_ms"].as_u64());
    records.into_iter().next()
}

/// The alerts of rule `rule` whose message contains `text`.
fn alerts_of(ns: &Namespaces, rule: &str, text: &str) -> Vec<Value> {
    ns.alerts(0)
        .into_iter()
        .filter(|a| a["rule"] == rule && a["message"].as_str().is_some_and(|m| m.contains(text)))
        .collect()
}

#[test]
fn a_watched_interface_going_down_raises_an_interface_alert_and_coming_up_resolves_it() {
    let ns = match Namespaces::create("nmsl", 1) {
        Ok(ns) => ns,
        Err(why) => {
            eprintln!("SKIPPED link state: {why}");
            return;
        }
    };
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let dir = tmp.path();
    // Nothing to configure beyond listing the interface; w0 does not exist yet.
    let task = dir.join("link.json");
    std::fs::write(
        &task,
        r#"{"task_id": "link", "frequency": 2, "devices": [{"device_id": "l1",
            "device_metrics": {"cpu_usage": true, "interface_stats": ["w0"]}}]}"#,
    )
    .unwrap();
    let server = ns.nms(
        0,
        "server",
        &server_args(&task, "127.0.0.1", dir),
        &[],
        &dir.join("server.log"),
    );
    let up = wait_until(Duration::from_secs(15), || ns.api(0, "/api/status").is_ok());
    assert!(up, "the server did not start:\n{}", server.tail(20));
    let agent = ns.nms(
        0,
        "l1",
        &agent_args("127.0.0.1", "l1", dir),
        &[],
        &dir.join("l1.log"),
    );
    let all = [&server, &agent];
    let probe_rule = "probe:system metrics";

    // A missing interface: one ERROR alert, however many reports go by.
    let missing = wait_quoting("an ERROR alert about w0", WAIT, &all, || {
        alerts_of(&ns, probe_rule, "\"w0\"").into_iter().next()
    });
    assert_eq!(missing["kind"], "error", "{missing}");
    let raised_ms = missing["time_ms"].as_u64().unwrap_or_default();
    wait_quoting("three more reports of l1", WAIT, &all, || {
        let later = ns
            .metrics(0, "l1")
            .iter()
            .filter(|m| m["time_ms"].as_u64() > Some(raised_ms))
            .count();
        (later >= 3).then_some(())
    });
    let raised: Vec<Value> = alerts_of(&ns, probe_rule, "\"w0\"")
        .into_iter()
        .filter(|a| {
            a["kind"] == "error" && !a["message"].as_str().unwrap_or("").starts_with("resolved")
        })
        .collect();
    assert_eq!(
        raised.len(),
        1,
        "raised once, not on every report: {raised:#?}"
    );

    // w0 appears (a veth pair, both ends up): the ERROR alert is resolved.
    ns.ip(
        0,
        &["link", "add", "w0", "type", "veth", "peer", "name", "w1"],
    )
    .expect("veth");
    ns.ip(0, &["link", "set", "w1", "up"]).unwrap();
    ns.ip(0, &["link", "set", "w0", "up"]).unwrap();
    wait_quoting("the ERROR alert about w0 resolved", WAIT, &all, || {
        alerts_of(&ns, probe_rule, "\"w0\"")
            .into_iter()
            .find(|a| a["alert_id"] == missing["alert_id"] && a["resolved"].is_string())
    });
    let since = now_ms();
    wait_quoting("w0 reported up", WAIT, &all, || {
        first_with_state(&ns, "l1", "w0", "up", since)
    });

    // `ip link set w0 down`: a critical INTERFACE alert on the first report that saw it.
    let down_at = now_ms();
    ns.ip(0, &["link", "set", "w0", "down"]).unwrap();
    let alert = wait_quoting("an INTERFACE alert for w0", WAIT, &all, || {
        alerts_of(&ns, "builtin:link_state", "w0 is down (set down)")
            .into_iter()
            .next()
    });
    assert_eq!(alert["kind"], "interface_stats", "{alert}");
    assert_eq!(alert["severity"], "critical", "{alert}");
    let first_down =
        first_with_state(&ns, "l1", "w0", "down", down_at).expect("a report with w0 down");
    assert_eq!(
        alert["time_ms"], first_down["time_ms"],
        "raised on the first report after w0 went down: {alert} {first_down}"
    );

    // `ip link set w0 up`: resolved.
    ns.ip(0, &["link", "set", "w0", "up"]).unwrap();
    wait_quoting("the INTERFACE alert resolved", WAIT, &all, || {
        alerts_of(&ns, "builtin:link_state", "w0 is down (set down)")
            .into_iter()
            .find(|a| a["alert_id"] == alert["alert_id"] && a["resolved"].is_string())
    });

    // The peer goes down: w0 is up without a carrier, which is down too; and back.
    ns.ip(0, &["link", "set", "w1", "down"]).unwrap();
    let no_carrier = wait_quoting("a no-carrier alert for w0", WAIT, &all, || {
        alerts_of(&ns, "builtin:link_state", "w0 is down (no carrier")
            .into_iter()
            .next()
    });
    ns.ip(0, &["link", "set", "w1", "up"]).unwrap();
    wait_quoting("the no-carrier alert resolved", WAIT, &all, || {
        alerts_of(&ns, "builtin:link_state", "w0 is down (no carrier")
            .into_iter()
            .find(|a| a["alert_id"] == no_carrier["alert_id"] && a["resolved"].is_string())
    });
}
