//! iperf tests as a course file writes them, run by real agents on loopback: a TCP bandwidth
//! test and a UDP jitter/loss test towards the same iperf server take turns in their planned
//! slots and are measured every cycle (no "Address already in use", no "Connection refused"),
//! the UDP test offers the rate the file gives; and an agent stopped in the middle of a test
//! leaves no iperf3 behind, so that it can be started again at once.

mod support;

use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;
use support::ports::free_tcp_port;
use support::sandbox::{Sandbox, Server};
use support::wait::{WAIT, wait_for};

/// A course-style task: r1 pings r2's address, r2 is iperf server for bandwidth (TCP) and
/// jitter and packet loss (UDP), every entry with the `server_address` course files give, r3
/// the client of all three. Every `frequency` seconds, tests of `duration` seconds.
fn course_task(sandbox: &Sandbox, port: u16, frequency: u32, duration: u32) -> PathBuf {
    let entry = |role: &str, transport: &str| {
        let mut e = json!({
            "tool": "iperf", "role": role, "server_address": "127.0.0.1",
            "duration": duration, "transport": transport, "port": port,
        });
        if transport == "udp" && role == "client" {
            e["rate_mbps"] = json!(50);
        }
        e
    };
    let link = |role: &str| {
        json!({
            "bandwidth": entry(role, "tcp"),
            "jitter": entry(role, "udp"),
            "packet_loss": entry(role, "udp"),
        })
    };
    let task = json!({
        "task_id": "course", "frequency": frequency, "devices": [
            {"device_id": "r1", "link_metrics": {"latency": {
                "tool": "ping", "destination": "127.0.0.1", "packet_count": 3}}},
            {"device_id": "r2", "link_metrics": link("server")},
            {"device_id": "r3", "link_metrics": link("client"),
             "alertflow_conditions": {"jitter": 50, "packet_loss": 50}},
        ]
    });
    sandbox.write_json("course.json", &task)
}

fn start(sandbox: &mut Sandbox, task: PathBuf, agents: &[&str]) -> Server {
    let server = sandbox.start_server(&[task], &[]);
    for id in agents {
        sandbox.start_agent(id, &server);
    }
    server
}

/// r3's stored iperf records over `transport` (`bandwidth_bps` for TCP,
/// `udp_bandwidth_bps` for UDP), oldest first.
fn iperf_records(server: &Server, field: &str) -> Vec<Value> {
    let mut records: Vec<Value> = server
        .metrics("r3")
        .into_iter()
        .filter(|m| m.get(field).is_some())
        .collect();
    records.sort_by_key(|m| m["time_ms"].as_u64());
    records
}

/// Alerts about a probe failing (ERROR or TIMEOUT) raised by `agents`.
fn probe_failures(server: &Server, agents: &[&str]) -> Vec<Value> {
    server
        .alerts()
        .into_iter()
        .filter(|a| {
            agents.iter().any(|n| a["agent"] == *n)
                && (a["kind"] == "error" || a["kind"] == "timeout")
        })
        .collect()
}

#[test]
fn tcp_and_udp_tests_to_one_server_take_turns_and_run_every_cycle() {
    let mut sandbox = Sandbox::new();
    let frequency = 6;
    let task = course_task(&sandbox, free_tcp_port(), frequency, 1);
    let server = start(&mut sandbox, task, &["r1", "r2", "r3"]);

    let cycles = 4;
    wait_for(WAIT * 2, "four TCP and four UDP tests of r3", || {
        (iperf_records(&server, "bandwidth_bps").len() >= cycles
            && iperf_records(&server, "udp_bandwidth_bps").len() >= cycles)
            .then_some(())
    });
    assert!(
        server
            .metrics("r1")
            .iter()
            .any(|m| m["rtt_avg_ms"].is_number()),
        "r1 pings"
    );

    let tcp = iperf_records(&server, "bandwidth_bps");
    let udp = iperf_records(&server, "udp_bandwidth_bps");
    for record in &tcp {
        assert!(record["bandwidth_bps"].as_f64() > Some(0.0), "{record}");
        assert_eq!(record["target"], "127.0.0.1", "{record}");
    }
    for record in &udp {
        // Jitter and loss are measured, at the offered 50 Mbit/s (not iperf3's 1 Mbit/s).
        assert!(record["jitter_ms"].is_number(), "{record}");
        assert!(record["loss_percent"].is_number(), "{record}");
        let offered = record["udp_offered_bps"].as_f64().unwrap_or_default();
        assert!((40e6..=60e6).contains(&offered), "{record}");
        assert!(record.get("bandwidth_bps").is_none(), "{record}");
    }
    // Every cycle: no period without its test (a collision would cost a cycle).
    for (name, records) in [("tcp", &tcp), ("udp", &udp)] {
        let times: Vec<u64> = records
            .iter()
            .filter_map(|m| m["time_ms"].as_u64())
            .collect();
        for pair in times.windows(2) {
            assert!(
                pair[1] - pair[0] < u64::from(frequency) * 1900,
                "a {name} cycle was missed between {} and {}: {times:?}",
                pair[0],
                pair[1]
            );
        }
    }
    let failures = probe_failures(&server, &["r2", "r3"]);
    assert!(failures.is_empty(), "iperf failed: {failures:#?}");
    // /metrics keeps TCP and UDP bandwidth apart, with the offered rate.
    let exposition = server.get_text("/metrics");
    for family in [
        r#"nms_iperf_bandwidth_bytes_per_second{agent="r3",task="course",destination="127.0.0.1",transport="tcp"}"#,
        r#"nms_iperf_bandwidth_bytes_per_second{agent="r3",task="course",destination="127.0.0.1",transport="udp"}"#,
        r#"nms_iperf_offered_bytes_per_second{agent="r3",task="course",destination="127.0.0.1",transport="udp"}"#,
    ] {
        assert!(
            exposition.lines().any(|l| l.starts_with(family)),
            "no {family} in:\n{exposition}"
        );
    }
    // The status page graphs them apart too.
    let page = support::http::http_get(server.http_addr(), "/").expect("the status page");
    for title in [
        "TCP bandwidth to 127.0.0.1",
        "UDP bandwidth to 127.0.0.1",
        "UDP offered to 127.0.0.1",
    ] {
        assert!(page.body.contains(title), "no graph {title:?} on the page");
    }
    // One listener serves both tests.
    let listens = sandbox.log("r2").matches("LISTEN").count();
    assert_eq!(listens, 1, "{}", sandbox.log("r2"));
}

/// The iperf3 processes whose parent is `pid`, running (not zombies).
fn iperf3_children(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            process_state(*child)
                .is_some_and(|(comm, state, ppid)| comm == "iperf3" && state != 'Z' && ppid == pid)
        })
        .collect()
}

/// (command name, state, parent pid) of a process, from /proc/PID/stat.
fn process_state(pid: u32) -> Option<(String, char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_string();
    let mut rest = stat[close + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((comm, state, ppid))
}

/// Whether process `pid` has ended (gone, or a zombie waiting to be reaped).
fn ended(pid: u32) -> bool {
    process_state(pid).is_none_or(|(_, state, _)| state == 'Z')
}

#[test]
fn an_agent_stopped_during_an_iperf_test_leaves_no_iperf3_behind() {
    let mut sandbox = Sandbox::new();
    // Tests of 12 s: a client left behind would still be running well after its agent.
    let task = course_task(&sandbox, free_tcp_port(), 30, 12);
    let server = start(&mut sandbox, task, &["r2", "r3"]);

    // SIGTERM to the client in the middle of a test.
    let r3 = sandbox.pid("r3");
    let client = wait_for(WAIT, "r3 running iperf3 -c", || {
        iperf3_children(r3).first().copied()
    });
    sandbox.terminate("r3");
    wait_for(Duration::from_secs(5), "r3's iperf3 client to end", || {
        ended(client).then_some(())
    });

    // SIGKILL to the server-role agent: its listener cannot be stopped by the agent itself.
    let r2 = sandbox.pid("r2");
    let listener = wait_for(WAIT, "r2's iperf3 listener", || {
        iperf3_children(r2).first().copied()
    });
    sandbox.kill("r2");
    wait_for(
        Duration::from_secs(10),
        "r2's iperf3 listener to end",
        || ended(listener).then_some(()),
    );

    // Started again, r2 listens on the same port at once, and r3 measures again.
    let restarted_ms = nms::log::now_ms();
    sandbox.start_agent_as("r2-again", "r2", &server);
    sandbox.start_agent_as("r3-again", "r3", &server);
    let restarted = wait_for(WAIT, "a TCP test after the restart", || {
        iperf_records(&server, "bandwidth_bps")
            .into_iter()
            .find(|m| m["time_ms"].as_u64() > Some(restarted_ms))
    });
    assert!(restarted["bandwidth_bps"].as_f64() > Some(0.0));
    let in_use: Vec<Value> = probe_failures(&server, &["r2"])
        .into_iter()
        .filter(|a| a["message"].as_str().is_some_and(|m| m.contains("in use")))
        .collect();
    assert!(in_use.is_empty(), "the port was still taken: {in_use:#?}");
}

#[test]
fn a_listener_no_task_needs_any_more_is_stopped() {
    let mut sandbox = Sandbox::new();
    let task = course_task(&sandbox, free_tcp_port(), 10, 2);
    let server = start(&mut sandbox, task, &["r2"]);
    let r2 = sandbox.pid("r2");
    let listener = wait_for(WAIT, "r2's iperf3 listener", || {
        iperf3_children(r2).first().copied()
    });
    // The task again, without r2: r2 is told to stop it, and its listener goes with it.
    let replacement = json!({"task_id": "course", "frequency": 10, "devices": [
        {"device_id": "r1", "link_metrics": {"latency": {
            "destination": "127.0.0.1", "packet_count": 1}}}]});
    let response = server.post("/api/tasks", &replacement.to_string());
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.json()["tasks"][0]["cancelled"], json!(["r2"]));
    wait_for(Duration::from_secs(10), "r2's listener to stop", || {
        ended(listener).then_some(())
    });
    assert!(
        sandbox
            .log("r2")
            .contains("no task needs it any more, stopping it"),
        "{}",
        sandbox.log("r2")
    );
    assert!(sandbox.exit_status("r2").is_none(), "r2 itself runs on");
}

#[test]
fn a_posted_test_that_cannot_fit_with_the_servers_tasks_is_reported_once_and_not_run() {
    let mut sandbox = Sandbox::new();
    let port = free_tcp_port();
    let pair = |task_id: &str, client: &str| {
        json!({"task_id": task_id, "frequency": 25, "devices": [
            {"device_id": "r2", "link_metrics": {"bandwidth": {
                "role": "server", "duration": 12, "port": port}}},
            {"device_id": client, "link_metrics": {"bandwidth": {
                "role": "client", "duration": 12, "port": port}}},
        ]})
    };
    let first = sandbox.write_json("first.json", &pair("first", "r3"));
    let server = sandbox.start_server(&[first], &[]);

    // Alone, the second task is valid; with the first, r2 has no 13 s left in 25 s.
    let response = server.post("/api/tasks", &pair("second", "r1").to_string());
    assert_eq!(response.status, 200, "{}", response.body);
    let answer = response.json();
    let outcome = &answer["tasks"][0];
    assert_eq!(outcome["task_id"], "second", "{answer}");
    let unscheduled = outcome["unscheduled"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(unscheduled.len(), 1, "{answer}");
    assert!(
        unscheduled[0].as_str().is_some_and(
            |r| r.starts_with("task second: r1 -> r2 port") && r.contains("no 13 s slot")
        ),
        "{answer}"
    );
    // r1 is given no iperf test it could not run without colliding.
    let r1 = outcome["devices"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["device"] == "r1"))
        .cloned()
        .expect("r1's outcome");
    assert!(
        !r1.to_string().contains("iperf3 client"),
        "r1 got the test: {r1}"
    );
    // Said once in the log, with the reason.
    let log = sandbox.log(&server.name);
    assert_eq!(log.matches("PLAN").count(), 1, "{log}");
    assert!(log.contains("is not scheduled: no 13 s slot"), "{log}");
}
