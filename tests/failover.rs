//! Two real `nms server`s with the same task file serve one `nms agent --server A,B`: the
//! agent registers with A; A is killed (SIGKILL) with reports in flight; the agent moves to B,
//! carrying what A had not acknowledged, and every report the agent made is stored by A (before
//! it died) or by B, none lost. A, started again while the agent stays with B, asks its peer
//! (`--peer`) and does not report the agent down. Nothing here is timed: how fast the reports
//! move is measured by `scripts/failover-time.py` (BENCHMARKS.md).

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;
use support::ports::free_tcp_port;
use support::process::Process;
use support::wait::wait_for_processes;

const AGENT: &str = "fo-agent";
const TASK: &str = "fo-test";

/// One server of the pair, on ports fixed for the test (a restart keeps them).
struct Server {
    name: &'static str,
    dir: std::path::PathBuf,
    nettask: String,
    alertflow: u16,
    http: String,
}

impl Server {
    fn new(root: &Path, name: &'static str) -> Server {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        Server {
            name,
            dir,
            nettask: udp.local_addr().unwrap().to_string(),
            alertflow: free_tcp_port(),
            http: format!("http://127.0.0.1:{}", free_tcp_port()),
        }
    }

    fn start(&self, task: &str, peer: &Server, run: u32) -> Process {
        let data = self.dir.join("server");
        let process = Process::start(
            &format!("nms server {} {run}", self.name),
            &support::process::nms_binary(),
            &[
                "server",
                "--listen",
                "127.0.0.1",
                "--nettask-port",
                self.nettask.rsplit(':').next().unwrap(),
                "--alertflow-port",
                &self.alertflow.to_string(),
                "--http",
                self.http.trim_start_matches("http://"),
                "--data-dir",
                data.to_str().unwrap(),
                "--config",
                task,
                "--peer",
                &peer.http,
            ],
            &self.dir,
        );
        wait_for_processes(
            &format!("server {} answering", self.name),
            Duration::from_secs(30),
            &mut [],
            || support::http::get_json(&self.http, "/api/status"),
        );
        process
    }
}

/// The times of the agent's reports a server stored (from its HTTP API).
fn stored_times(http: &str) -> Option<BTreeSet<u64>> {
    let answer = support::http::get_json(
        http,
        &format!("/api/metrics?agent={AGENT}&from=0&limit=100000"),
    )?;
    Some(
        answer
            .as_array()?
            .iter()
            .filter_map(|r| r["time_ms"].as_u64())
            .collect(),
    )
}

/// The times of the agent's reports a store holds, read from its files (its server is dead).
fn exported_times(data_dir: &Path) -> BTreeSet<u64> {
    let out = std::process::Command::new(support::process::nms_binary())
        .args([
            "store",
            "export",
            "--from",
            "0",
            "--agent",
            AGENT,
            "--data-dir",
        ])
        .arg(data_dir)
        .output()
        .expect("nms store export");
    assert!(
        out.status.success(),
        "nms store export failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|r| r["time_ms"].as_u64())
        .collect()
}

/// The times of the reports the agent made (`REPORT task time` lines of its log).
fn made_times(log: &str) -> BTreeSet<u64> {
    log.lines()
        .filter(|l| l.contains(" REPORT ") && l.contains(TASK))
        .filter_map(|l| l.split_whitespace().last()?.parse().ok())
        .collect()
}

#[test]
fn a_killed_server_costs_no_report_the_agent_moves_to_the_second_with_what_was_unacknowledged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let task = dir.path().join("task.json");
    std::fs::write(
        &task,
        support::fixtures::every_second_task(TASK, &[AGENT], &[]),
    )
    .unwrap();
    let task = task.to_str().unwrap();
    let (a, b) = (Server::new(dir.path(), "a"), Server::new(dir.path(), "b"));
    let mut process_a = a.start(task, &b, 1);
    let mut process_b = b.start(task, &a, 1);
    let mut agent = start_agent(dir.path(), &a, &b);

    // It registers with the first, which stores its reports; the second has none.
    wait_for_processes(
        "reports stored by the first server",
        Duration::from_secs(60),
        &mut [&mut process_a, &mut process_b, &mut agent],
        || (stored_times(&a.http)?.len() >= 6).then_some(()),
    );
    assert_eq!(stored_times(&b.http).map(|t| t.len()), Some(0));

    // The first dies; the agent's reports go to the second.
    process_a.kill();
    wait_for_processes(
        "reports stored by the second server",
        Duration::from_secs(60),
        &mut [&mut process_b, &mut agent],
        || (stored_times(&b.http)?.len() >= 6).then_some(()),
    );
    let log = agent.output();
    assert!(
        log.contains(&format!("moving from {} to {}", a.nettask, b.nettask)),
        "the agent did not say it moved:\n{log}"
    );
    let mut process_a = a.start(task, &b, 2);
    check_the_restarted_first_leaves_the_agent_to_its_peer(
        &a,
        &b,
        &process_a,
        &mut process_b,
        &mut agent,
    );
    process_a.kill();
    // Stop the agent cleanly (what it made is acknowledged before it exits).
    agent.terminate();
    check_no_report_was_lost(&a, &b, &mut process_b, &agent);
}

/// The agent, with both servers to report to (`a` first), logging what it makes.
fn start_agent(dir: &Path, a: &Server, b: &Server) -> Process {
    let servers = format!("{},{}", a.nettask, b.nettask);
    let agent_data = dir.join("agent");
    Process::start_with_env(
        "nms agent",
        &support::process::nms_binary(),
        &[
            "agent",
            "--server",
            &servers,
            "--id",
            AGENT,
            "--data-dir",
            agent_data.to_str().unwrap(),
        ],
        &[("NMS_LOG_REPORTS", "1")],
        dir,
    )
}

/// The first comes back while the agent stays with the second: it does not report the
/// agent down, since its peer serves it.
fn check_the_restarted_first_leaves_the_agent_to_its_peer(
    a: &Server,
    b: &Server,
    process_a: &Process,
    process_b: &mut Process,
    agent: &mut Process,
) {
    wait_for_processes(
        "the restarted first server to learn that its peer serves the agent",
        Duration::from_secs(60),
        &mut [process_b, agent],
        || {
            std::fs::read_to_string(&process_a.log)
                .ok()?
                .contains(&format!("{AGENT} silent here"))
                .then_some(())
        },
    );
    let out_a = process_a.output();
    assert!(out_a.contains(&format!("served by {}", b.http)), "{out_a}");
    let firing = support::http::get_json(&a.http, "/api/alerts?firing=true").expect("alerts of A");
    assert!(
        !firing.to_string().contains("agent_down"),
        "the first server reported the agent down: {firing}"
    );
}

/// Every report the agent made is in one of the two stores, and the second stored only
/// reports the agent made.
fn check_no_report_was_lost(a: &Server, b: &Server, process_b: &mut Process, agent: &Process) {
    let made = made_times(&agent.output());
    let on_b = wait_for_processes(
        "the second server's store to settle",
        Duration::from_secs(30),
        &mut [process_b],
        || stored_times(&b.http),
    );
    let on_a = exported_times(&a.dir.join("server"));
    assert!(!on_a.is_empty());
    let kept: BTreeSet<u64> = on_a.union(&on_b).copied().collect();
    let lost: Vec<&u64> = made.difference(&kept).collect();
    assert!(made.len() >= 12, "only {} reports made", made.len());
    assert!(
        lost.is_empty(),
        "{} of {} reports lost with the first server: {lost:?}\n--- agent ---\n{}",
        lost.len(),
        made.len(),
        support::process::tail(&agent.output(), 40)
    );
    // Each report is stored once by the second server (a report the first stored and never
    // acknowledged may be in both stores; that is the agent's resend).
    assert!(
        on_b.iter().all(|t| made.contains(t)),
        "B stored a report the agent never made"
    );
}
