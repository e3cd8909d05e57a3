//! End to end over a bad network: a real server and real agents (the `nms` binary) with a
//! seeded UDP fault proxy in front of NetTask (30% loss each way, 5% duplicates, 2% corrupted,
//! reordering, and in one test a 10 s blackout) and a TCP fault proxy in front of AlertFlow
//! (connections reset mid-stream, and unreachable for a while). What a user must see: every agent registers and gets its task,
//! every report and alert an agent produced is stored exactly once, nothing corrupted is
//! stored, and the server counted the corruption it rejected. The seed is printed; replay a run
//! with `NMS_FAULT_SEED=...`.

mod support;

use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use support::faults::agents::{AgentLog, write_key, write_task};
use support::faults::check::{self, Delivery};
use support::faults::tcp::TcpFaultProxy;
use support::faults::udp::{Direction, Faults, UdpFaultProxy};
use support::http::http_get_json;
use support::ports::{free_tcp_port, free_udp_port};
use support::process::{Process, nms_binary};
use support::wait::wait_until;

const LOCALHOST: [u8; 4] = [127, 0, 0, 1];

/// A running server and where it listens.
struct Server {
    process: Process,
    nettask: SocketAddr,
    http: SocketAddr,
}

/// Starts a server on free ports (AlertFlow on `alertflow_port` when given) that announces
/// `advertise_alertflow` to agents when given.
fn start_server(
    dir: &Path,
    task_file: &Path,
    key: Option<&Path>,
    alertflow_port: Option<u16>,
    advertise_alertflow: Option<u16>,
) -> Server {
    let nettask = SocketAddr::from((LOCALHOST, free_udp_port()));
    let alertflow = SocketAddr::from((LOCALHOST, alertflow_port.unwrap_or_else(free_tcp_port)));
    let http = SocketAddr::from((LOCALHOST, free_tcp_port()));
    let mut args: Vec<String> = [
        "server",
        "--listen",
        "127.0.0.1",
        "--config",
        &task_file.display().to_string(),
        "--data-dir",
        &dir.join("server").display().to_string(),
        "--nettask-port",
        &nettask.port().to_string(),
        "--alertflow-port",
        &alertflow.port().to_string(),
        "--http",
        &http.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(port) = advertise_alertflow {
        args.extend(["--advertise-alertflow-port".into(), port.to_string()]);
    }
    if let Some(k) = key {
        args.extend(["--key-file".into(), k.display().to_string()]);
    }
    let mut process = Process::spawn("server", &nms_binary(), &args, &[], dir.join("server.log"));
    let up = wait_until(Duration::from_secs(15), || {
        !process.is_running() || http_get_json(http, "/api/status").is_ok()
    });
    assert!(
        up && process.is_running(),
        "the server did not start:\n{}",
        process.tail(20)
    );
    Server {
        process,
        nettask,
        http,
    }
}

fn start_agent(dir: &Path, name: &str, server: SocketAddr, key: Option<&Path>) -> Process {
    let mut args: Vec<String> = vec![
        "agent".into(),
        "--server".into(),
        server.to_string(),
        "--id".into(),
        name.into(),
        "--data-dir".into(),
        dir.join(name).display().to_string(),
    ];
    if let Some(k) = key {
        args.extend(["--key-file".into(), k.display().to_string()]);
    }
    Process::spawn(
        name,
        &nms_binary(),
        &args,
        &[("NMS_LOG_REPORTS", "1")],
        dir.join(format!("{name}.log")),
    )
}

/// The status of agent `name` in /api/agents, if listed.
fn agent_status(http: SocketAddr, name: &str) -> Option<String> {
    let agents = http_get_json(http, "/api/agents").ok()?;
    agents.as_array()?.iter().find_map(|a| {
        (a.get("name")?.as_str()? == name).then(|| a.get("status")?.as_str().map(String::from))?
    })
}

fn nettask_counter(http: SocketAddr, name: &str) -> u64 {
    http_get_json(http, "/api/status")
        .ok()
        .and_then(|s| s.get("nettask")?.get(name)?.as_u64())
        .unwrap_or(0)
}

/// Waits until every agent logged its registration and its task and shows `up`.
fn wait_registered(server: &Server, agents: &[&Process], task: &str) {
    let ok = wait_until(Duration::from_secs(40), || {
        agents.iter().all(|a| {
            let log = AgentLog::parse(&a.log_text());
            log.registered
                && log.tasks.iter().any(|t| t == task)
                && agent_status(server.http, &a.name).as_deref() == Some("up")
        })
    });
    if !ok {
        let tails: Vec<String> = agents
            .iter()
            .map(|a| format!("--- {}:\n{}", a.name, a.tail(15)))
            .collect();
        panic!(
            "not every agent registered and got task {task}:\n{}\n--- server:\n{}",
            tails.join("\n"),
            server.process.tail(30)
        );
    }
}

/// The lossy scenario, keyed or not, with NetTask cut off entirely for `blackout` in the
/// middle when given. Returns the deliveries.
fn lossy_run(label: &str, keyed: bool, run: Duration, blackout: Option<Duration>) -> Vec<Delivery> {
    let started_ms = nms::log::now_ms();
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let dir = tmp.path();
    let names = ["a1", "a2", "a3"];
    let task = format!("{label}-task");
    let task_file = write_task(dir, &task, &names);
    let key = keyed.then(|| write_key(&dir.join("psk")));
    let (tcp, server, udp) = start_behind_fault_proxies(label, dir, &task_file, key.as_deref());

    let agents: Vec<Process> = names
        .iter()
        .map(|n| start_agent(dir, n, udp.address(), key.as_deref()))
        .collect();
    let intruder = keyed.then(|| {
        let other = write_key(&dir.join("other-psk"));
        start_agent(dir, "intruder", udp.address(), Some(&other))
    });
    let agent_refs: Vec<&Process> = agents.iter().collect();
    wait_registered(&server, &agent_refs, &task);

    let intruder_seen_up = run_the_faults(&tcp, &udp, &server, run, blackout, intruder.is_some());
    udp.set_faults(Faults::NONE, Faults::NONE);
    tcp.set_reset_probability(0.0);
    let snapshots: Vec<AgentLog> = agents
        .iter()
        .map(|a| AgentLog::parse(&a.log_text()))
        .collect();
    let api = |path: &str| http_get_json(server.http, path);
    let deliveries = check::settle(
        &api,
        &agent_refs,
        &task,
        &snapshots,
        started_ms,
        Duration::from_secs(25),
    );
    let bad_tags = nettask_counter(server.http, "bad_tags");
    let duplicates = nettask_counter(server.http, "duplicates");

    eprintln!("== {label} ==");
    eprintln!("{}", udp.summary());
    eprintln!("{}", tcp.summary());
    eprintln!("server: bad_tags {bad_tags}, duplicates suppressed {duplicates}");
    for d in &deliveries {
        eprintln!("{d}");
    }

    check_deliveries(label, &deliveries, &server);
    check_the_nettask_faults_were_felt(label, &udp, bad_tags);
    if blackout.is_some() {
        check_each_agent_went_down_and_up(label, &server, &names);
    }
    let tcp_counts = tcp.counts();
    assert!(
        tcp_counts.refused > 0,
        "{label}: no AlertFlow connection was refused while unreachable: {}",
        tcp.summary()
    );
    if let Some(intruder) = &intruder {
        check_the_intruder_stayed_out(label, &server, intruder, intruder_seen_up);
    }
    deliveries
}

/// Starts the server with a TCP fault proxy in front of AlertFlow (announced to agents) and a
/// lossy UDP fault proxy in front of NetTask.
fn start_behind_fault_proxies(
    label: &str,
    dir: &Path,
    task_file: &Path,
    key: Option<&Path>,
) -> (TcpFaultProxy, Server, UdpFaultProxy) {
    // The AlertFlow proxy needs the server's port and the server needs the proxy's: reserve
    // the server's AlertFlow port first.
    let alertflow_port = free_tcp_port();
    let tcp = TcpFaultProxy::start(
        &format!("{label}-alertflow"),
        SocketAddr::from((LOCALHOST, alertflow_port)),
        0.6,
        300,
    )
    .expect("start the TCP fault proxy");
    let server = start_server(
        dir,
        task_file,
        key,
        Some(alertflow_port),
        Some(tcp.address().port()),
    );
    let udp = UdpFaultProxy::start(
        &format!("{label}-nettask"),
        server.nettask,
        Faults::lossy(0.3),
        Faults::lossy(0.3),
    )
    .expect("start the UDP fault proxy");
    (tcp, server, udp)
}

/// The run: faults on; AlertFlow unreachable for 4 s after a quarter of it; with
/// `blackout`, NetTask cut off entirely for that long after half of it. Returns how many
/// times (once a second) the intruder, when there is one, was seen up.
fn run_the_faults(
    tcp: &TcpFaultProxy,
    udp: &UdpFaultProxy,
    server: &Server,
    run: Duration,
    blackout: Option<Duration>,
    intruder: bool,
) -> usize {
    let mut intruder_seen_up = 0;
    let steps = run.as_secs().max(8);
    let lossy = Faults::lossy(0.3);
    let cut_off = Faults { drop: 1.0, ..lossy };
    for step in 0..steps {
        if step == steps / 4 {
            tcp.set_unreachable(true);
        }
        if step == steps / 4 + 4 {
            tcp.set_unreachable(false);
        }
        if let Some(blackout) = blackout {
            if step == steps / 2 {
                udp.set_faults(cut_off, cut_off);
            }
            if step == steps / 2 + blackout.as_secs() {
                udp.set_faults(lossy, lossy);
            }
        }
        std::thread::sleep(Duration::from_secs(1));
        if intruder && agent_status(server.http, "intruder").as_deref() == Some("up") {
            intruder_seen_up += 1;
        }
    }
    intruder_seen_up
}

/// Every agent's delivery is without problems, and it produced enough reports and an alert.
fn check_deliveries(label: &str, deliveries: &[Delivery], server: &Server) {
    for d in deliveries {
        assert!(
            d.problems.is_empty(),
            "{label}: delivery problems for {d}\n--- server:\n{}",
            server.process.tail(30)
        );
        assert!(
            d.produced >= 5,
            "{label}: {} produced too little: {d}",
            d.agent
        );
        assert!(
            d.alerts_raised >= 1,
            "{label}: {} raised no alert: {d}",
            d.agent
        );
    }
}

/// The UDP proxy dropped both ways and corrupted towards the server, and the server caught
/// the corruption.
fn check_the_nettask_faults_were_felt(label: &str, udp: &UdpFaultProxy, bad_tags: u64) {
    let to_server = udp.counts(Direction::ToServer);
    let to_agent = udp.counts(Direction::ToAgent);
    assert!(
        to_server.dropped > 0 && to_agent.dropped > 0,
        "{label}: the proxy dropped nothing: {}",
        udp.summary()
    );
    assert!(
        to_server.corrupted > 0,
        "{label}: the proxy corrupted nothing towards the server: {}",
        udp.summary()
    );
    assert!(
        bad_tags > 0,
        "{label}: the server detected no bad tag although {} datagrams were corrupted",
        to_server.corrupted
    );
}

/// The server noticed each agent's silence, and its return.
fn check_each_agent_went_down_and_up(label: &str, server: &Server, names: &[&str]) {
    for name in names {
        let kinds: Vec<String> = http_get_json(server.http, &format!("/api/alerts?agent={name}"))
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|a| a.get("kind")?.as_str().map(String::from))
            .collect();
        assert!(
            kinds.iter().any(|k| k == "agent_down") && kinds.iter().any(|k| k == "agent_up"),
            "{label}: no agent_down and agent_up alerts for {name} around the blackout: {kinds:?}"
        );
    }
}

/// The agent with the wrong key was never up and never registered.
fn check_the_intruder_stayed_out(
    label: &str,
    server: &Server,
    intruder: &Process,
    intruder_seen_up: usize,
) {
    assert_eq!(
        intruder_seen_up, 0,
        "{label}: an agent with the wrong key showed up"
    );
    let log = AgentLog::parse(&intruder.log_text());
    assert!(
        !log.registered,
        "{label}: the agent with the wrong key registered:\n{}",
        intruder.tail(10)
    );
    assert_ne!(
        agent_status(server.http, "intruder").as_deref(),
        Some("up"),
        "{label}: the agent with the wrong key is up"
    );
}

#[test]
fn every_report_and_alert_arrives_once_over_a_lossy_corrupting_link_with_a_blackout() {
    lossy_run(
        "lossy",
        false,
        Duration::from_secs(36),
        Some(Duration::from_secs(10)),
    );
}

#[test]
fn keyed_agents_deliver_everything_over_a_lossy_link_and_a_wrong_key_never_gets_in() {
    lossy_run("keyed", true, Duration::from_secs(25), None);
}

/// The stored count of `agent`'s reports.
fn stored_reports(http: SocketAddr, agent: &str) -> usize {
    http_get_json(http, &format!("/api/metrics?agent={agent}&limit=100000"))
        .ok()
        .and_then(|v| v.as_array().map(Vec::len))
        .unwrap_or(0)
}

fn registrations(http: SocketAddr, agent: &str) -> Option<u64> {
    let agents = http_get_json(http, "/api/agents").ok()?;
    agents
        .as_array()?
        .iter()
        .find(|a| a.get("name").and_then(Value::as_str) == Some(agent))?
        .get("registrations")?
        .as_u64()
}

#[test]
fn a_replayed_datagram_is_not_stored_again() {
    use nms::wire::{Header, PacketType};
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let dir = tmp.path();
    let task = "replay-task";
    let task_file = write_task(dir, task, &["r1"]);
    let key = write_key(&dir.join("psk"));
    let server = start_server(dir, &task_file, Some(&key), None, None);
    let proxy = UdpFaultProxy::start("replay", server.nettask, Faults::NONE, Faults::NONE)
        .expect("start the UDP proxy");
    proxy.record(true);
    let mut agent = start_agent(dir, "r1", proxy.address(), Some(&key));
    let stored = wait_until(Duration::from_secs(30), || {
        stored_reports(server.http, "r1") >= 3
    });
    assert!(
        stored,
        "r1 stored fewer than 3 reports:\n{}\n--- server:\n{}",
        agent.tail(15),
        server.process.tail(15)
    );
    agent.kill();
    // Let anything in flight land, and the server's counters refresh.
    std::thread::sleep(Duration::from_secs(2));

    let recorded = proxy.recorded();
    let kind = |bytes: &[u8]| Header::decode(bytes).ok().map(|h| h.packet_type);
    let sent_by_agent = |wanted: PacketType| {
        recorded
            .iter()
            .find(|r| r.direction == Direction::ToServer && kind(&r.bytes) == Some(wanted))
            .cloned()
            .unwrap_or_else(|| panic!("no {wanted:?} datagram was recorded: {recorded:?}"))
    };
    let metrics = sent_by_agent(PacketType::Metrics);
    let registration = sent_by_agent(PacketType::Registration);
    let from = metrics.agent;

    let before = stored_reports(server.http, "r1");
    let registered_before = registrations(server.http, "r1");
    let duplicates_before = nettask_counter(server.http, "duplicates");
    for _ in 0..5 {
        proxy
            .inject(from, &metrics.bytes)
            .expect("replay the METRICS datagram");
        proxy
            .inject(from, &registration.bytes)
            .expect("replay the REGISTRATION datagram");
        std::thread::sleep(Duration::from_millis(100));
    }
    let detected = wait_until(Duration::from_secs(5), || {
        nettask_counter(server.http, "duplicates") >= duplicates_before + 5
    });
    eprintln!(
        "replay: {} datagrams recorded; {}",
        recorded.len(),
        proxy.summary()
    );
    assert!(
        detected,
        "the server did not count the 5 replayed METRICS datagrams as duplicates (before {duplicates_before}, now {})",
        nettask_counter(server.http, "duplicates")
    );
    assert_eq!(
        stored_reports(server.http, "r1"),
        before,
        "a replayed report was stored again"
    );
    assert_eq!(
        registrations(server.http, "r1"),
        registered_before,
        "a replayed registration registered the agent again"
    );
}
