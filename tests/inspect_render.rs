//! `nms inspect` as a user sees it: the tables rendered from fixed API answers (alignment,
//! colour off, sparklines, bandwidth in human units, agents never seen), and `nms inspect
//! --task` run as the real binary on a valid file, on an invalid one and on a bad rule file.

mod support;

use nms::inspect::{Snapshot, age, human_bandwidth, render, sparkline};
use serde_json::{Value, json};
use std::path::Path;
use support::fixtures::repo;
use support::process::nms_output;

/// 2025-11-27 09:41:00 UTC.
const NOW: u64 = 1_764_236_460_000;

fn ping_record(agent: &str, t: u64, rtt: Option<f64>, loss: f64) -> Value {
    json!({"agent": agent, "task": "lat", "time": "", "time_ms": t, "target": "10.0.0.1",
           "rtt_min_ms": rtt, "rtt_avg_ms": rtt, "rtt_max_ms": rtt, "jitter_ms": rtt.map(|r| r / 10.0),
           "loss_percent": loss})
}

fn system_record(agent: &str, t: u64, cpu: f64, ram: f64) -> Value {
    json!({"agent": agent, "task": "sys", "time": "", "time_ms": t,
           "cpu_percent": cpu, "ram_percent": ram,
           "interfaces": {"eth0": {"packets_per_sec": 10.0, "bytes_per_sec": 1000.0, "errors_per_sec": 0.0}}})
}

fn snapshot() -> Snapshot {
    let agents = vec![
        json!({"name": "edge-router-1", "id": 7, "address": "127.0.0.1:40122", "status": "up",
               "last_seen": "", "last_seen_ms": NOW - 3_000, "first_registered": "",
               "registrations": 1, "software": "nms 0.1.0", "tasks": ["lat", "sys"]}),
        json!({"name": "r2", "id": 12, "address": null, "status": "down",
               "last_seen": "", "last_seen_ms": 0, "first_registered": "",
               "registrations": 0, "software": "", "tasks": []}),
    ];
    let mut records = Vec::new();
    for (i, rtt) in [Some(1.0), Some(2.0), None, Some(4.0), Some(8.0)]
        .into_iter()
        .enumerate()
    {
        let t = NOW - 50_000 + i as u64 * 10_000;
        records.push(system_record("edge-router-1", t, 25.0 * i as f64, 61.5));
        records.push(ping_record(
            "edge-router-1",
            t + 1,
            rtt,
            if rtt.is_some() { 0.0 } else { 100.0 },
        ));
    }
    records.push(
        json!({"agent": "edge-router-1", "task": "bw", "time": "", "time_ms": NOW - 1_000,
                        "udp_bandwidth_bps": 94_300_000.0, "udp_offered_bps": 1e8,
                        "jitter_ms": 0.42, "loss_percent": 0.8}),
    );
    let alerts = vec![
        json!({"alert_id": "8f3c2a71d4e09b55", "agent": "edge-router-1", "task": "sys", "kind": "cpu",
               "severity": "critical", "value": 97.5, "threshold": 80.0, "rule": "condition:cpu_usage",
               "message": "CPU usage 97.5% is above 80%", "time": "", "time_ms": NOW - 20_000, "received": ""}),
        json!({"alert_id": "0000000000000001", "agent": "r2", "task": "", "kind": "agent_down",
               "severity": "warning", "value": 30.0, "threshold": 30.0, "rule": "liveness",
               "message": "no report for 30 s", "time": "", "time_ms": NOW - 10_000, "received": ""}),
    ];
    Snapshot {
        agents,
        metrics: [
            ("edge-router-1".to_string(), records),
            ("r2".to_string(), Vec::new()),
        ]
        .into_iter()
        .collect(),
        alerts,
    }
}

/// The lines of a section, from its title to the next blank line.
fn section<'a>(text: &'a str, title: &str) -> Vec<&'a str> {
    text.lines()
        .skip_while(|l| !l.starts_with(title))
        .take_while(|l| !l.is_empty())
        .collect()
}

/// Where `word` starts in `line`, in characters.
fn column(line: &str, word: &str) -> usize {
    let byte = line
        .find(word)
        .unwrap_or_else(|| panic!("{word:?} in {line:?}"));
    line[..byte].chars().count()
}

#[test]
fn agents_are_listed_with_status_age_and_tasks_and_the_columns_line_up() {
    let shown = render(&snapshot(), false, NOW);
    assert!(
        !shown.contains('\x1b'),
        "colour off means no escape codes:\n{shown}"
    );
    let agents = section(&shown, "AGENTS");
    assert_eq!(agents[0], "AGENTS (2)");
    let (head, up, down) = (agents[1], agents[2], agents[3]);
    assert!(
        up.contains(" up ") && up.contains("3 s ago") && up.contains("lat, sys"),
        "{up}"
    );
    assert!(down.contains(" down ") && down.contains("never"), "{down}");
    for heading in ["STATUS", "ADDRESS", "LAST SEEN", "TASKS"] {
        let at = column(head, heading);
        assert!(
            up.chars().nth(at).is_some_and(|c| c != ' '),
            "{heading} column of {up:?}"
        );
        assert!(
            down.chars().nth(at).is_some_and(|c| c != ' '),
            "{heading} column of {down:?}"
        );
    }
    // The ID column holds numbers, aligned on their right edge.
    let id_end = column(head, "ID") + 2;
    assert_eq!(column(up, "7 ") + 1, id_end, "{up}");
    assert_eq!(column(down, "12 ") + 2, id_end, "{down}");
}

#[test]
fn latest_metrics_show_the_newest_values_sparklines_and_human_bandwidth() {
    let shown = render(&snapshot(), false, NOW);
    let metrics = section(&shown, "LATEST METRICS");
    let router = metrics
        .iter()
        .find(|l| l.trim_start().starts_with("edge-router-1"))
        .expect("a row for edge-router-1");
    // CPU and RAM from the newest system record; loss and jitter from the newest record that
    // measured them (the iperf run, after the last ping).
    for expected in [
        "100.0",
        "61.5",
        "8.00",
        "0.42",
        "0.8",
        "94.3 Mbit/s",
        "1 s ago",
    ] {
        assert!(router.contains(expected), "{expected} in {router}");
    }
    // RTT 1, 2, lost, 4, 8 ms on a 0..8 scale; CPU 0, 25, 50, 75, 100 % on 0..100.
    assert!(router.contains(&sparkline(
        &[Some(1.0), Some(2.0), None, Some(4.0), Some(8.0)],
        0.0,
        8.0
    )));
    assert!(router.contains("▂▃·▅█"), "{router}");
    assert!(router.contains("▁▃▅▆█"), "{router}");
    let r2 = metrics
        .iter()
        .find(|l| l.trim_start().starts_with("r2"))
        .expect("a row for r2");
    assert!(r2.contains("no metrics yet"), "{r2}");
    assert!(!r2.contains("Mbit"), "{r2}");
}

#[test]
fn alerts_are_newest_first_with_value_and_threshold() {
    let shown = render(&snapshot(), false, NOW);
    let alerts = section(&shown, "RECENT ALERTS");
    assert_eq!(alerts[0], "RECENT ALERTS (2)");
    assert!(
        alerts[2].contains("agent_down") && alerts[2].contains("warning"),
        "{}",
        alerts[2]
    );
    assert!(
        alerts[2].starts_with("  2025-11-27 09:40:50Z"),
        "{}",
        alerts[2]
    );
    let cpu = alerts[3];
    for expected in [
        "cpu",
        "critical",
        "97.5/80",
        "condition:cpu_usage",
        "CPU usage 97.5% is above 80%",
    ] {
        assert!(cpu.contains(expected), "{expected} in {cpu}");
    }
    assert_eq!(column(alerts[2], "warning"), column(cpu, "critical"));
}

#[test]
fn colour_marks_status_and_severity() {
    let shown = render(&snapshot(), true, NOW);
    assert!(shown.contains("\x1b[32mup\x1b[0m"), "green up:\n{shown}");
    assert!(shown.contains("\x1b[31mdown\x1b[0m"), "red down:\n{shown}");
    assert!(
        shown.contains("\x1b[31;1mcritical\x1b[0m"),
        "bold red critical:\n{shown}"
    );
    assert!(
        shown.contains("\x1b[33mwarning\x1b[0m"),
        "yellow warning:\n{shown}"
    );
    assert!(
        !shown.contains("\x1b[36m\x1b[0m"),
        "an empty cell is not coloured:\n{shown}"
    );
}

#[test]
fn an_empty_server_says_so() {
    let shown = render(&Snapshot::default(), false, NOW);
    assert!(
        shown.contains("AGENTS (0)\n  no agent has registered yet\n"),
        "{shown}"
    );
    assert!(
        shown.contains("LATEST METRICS\n  no metrics yet\n"),
        "{shown}"
    );
    assert!(shown.contains("RECENT ALERTS (0)\n  none\n"), "{shown}");
}

#[test]
fn sparklines_bandwidth_and_ages_read_naturally() {
    assert_eq!(
        sparkline(&[Some(0.0), Some(50.0), Some(100.0)], 0.0, 100.0),
        "▁▅█"
    );
    assert_eq!(sparkline(&[Some(3.0), Some(3.0)], 0.0, 0.0), "▁▁");
    assert_eq!(sparkline(&[Some(-5.0), Some(500.0)], 0.0, 100.0), "▁█");
    assert_eq!(human_bandwidth(512.0), "512 bit/s");
    assert_eq!(human_bandwidth(94_300_000.0), "94.3 Mbit/s");
    assert_eq!(human_bandwidth(950_000.0), "950 kbit/s");
    assert_eq!(human_bandwidth(1_250_000_000.0), "1.2 Gbit/s");
    assert_eq!(age(0, NOW), "never");
    assert_eq!(age(NOW - 59_999, NOW), "59 s ago");
    assert_eq!(age(NOW - 120_000, NOW), "2 min ago");
    assert_eq!(age(NOW - 7_200_000, NOW), "2 h ago");
    assert_eq!(age(NOW + 5_000, NOW), "0 s ago");
}

#[test]
fn inspect_task_explains_the_default_configuration() {
    let brief = nms_output(&repo("."), &["inspect", "--task", "configs/default.json"]);
    let brief = String::from_utf8_lossy(&brief.stdout).into_owned();
    assert!(!brief.contains("| "), "the rhai only with --rhai: {brief}");
    assert!(brief.lines().count() < 20, "{brief}");
    let output = nms_output(
        &repo("."),
        &["inspect", "--task", "configs/default.json", "--rhai"],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(
        shown.starts_with("configs/default.json: valid (1 task)\n"),
        "{shown}"
    );
    assert!(
        shown.contains("task default  (assignment dialect, every 5 s)"),
        "{shown}"
    );
    assert!(
        shown.contains("ping 127.0.0.1 x3 at 0.2 s intervals every 5s"),
        "{shown}"
    );
    // lo is watched: the agent raises an alert when it goes down, without being asked.
    assert!(shown.contains("rule builtin:link_state  ok"), "{shown}");
    assert!(shown.contains("cpu_usage > 90 %"), "{shown}");
    let tasks = nms::task::load(&repo("configs/default.json")).expect("valid");
    for rule in nms::rules::compile_conditions(&tasks[0].devices[0].conditions) {
        assert!(
            shown.contains(&format!("rule {}  ok", rule.name)),
            "{}: {shown}",
            rule.name
        );
        for line in rule.source.lines() {
            assert!(
                shown.contains(&format!("| {line}\n")),
                "{line:?} in {shown}"
            );
        }
    }

    let output = nms_output(
        &repo("."),
        &["inspect", "--task", "configs/default.json", "--json"],
    );
    assert!(output.status.success());
    let json: Value = serde_json::from_slice(&output.stdout).expect("--json prints JSON");
    assert_eq!(json["valid"], true);
    assert!(json.get("error").is_none());
    let device = &json["tasks"][0]["devices"][0];
    assert_eq!(device["device_id"], "local");
    assert_eq!(device["rules"][0]["name"], "builtin:link_state");
    assert_eq!(device["rules"][0]["kind"], "builtin");
    assert_eq!(device["rules"][1]["name"], "condition:cpu_usage");
    assert_eq!(device["rules"][1]["ok"], true);
}

#[test]
fn inspect_task_of_an_invalid_file_names_the_file_and_position_and_fails() {
    let output = nms_output(
        &repo("."),
        &["inspect", "--task", "tests/fixtures/tasks/bad-syntax.json"],
    );
    assert_eq!(output.status.code(), Some(1));
    let error = String::from_utf8_lossy(&output.stderr);
    // Tests run in the package folder, so the relative path reads the same file.
    let expected = nms::task::load(Path::new("tests/fixtures/tasks/bad-syntax.json"))
        .expect_err("the fixture is invalid")
        .to_string();
    assert_eq!(error.trim_end(), format!("nms: {expected}"));
    assert!(error.contains(" at ") && error.contains(':'), "{error}");

    let output = nms_output(
        &repo("."),
        &[
            "inspect",
            "--json",
            "--task",
            "tests/fixtures/tasks/bad-syntax.json",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    let json: Value = serde_json::from_slice(&output.stdout).expect("--json prints JSON");
    assert_eq!(json["valid"], false);
    assert_eq!(json["error"].as_str(), Some(expected.as_str()));
}

#[test]
fn inspect_task_shows_which_rule_file_fails_and_where() {
    let dir = tempfile::tempdir().expect("temporary folder");
    std::fs::copy(
        repo("tests/fixtures/rules/bad_syntax.rhai"),
        dir.path().join("bad.rhai"),
    )
    .expect("copy");
    std::fs::copy(
        repo("rules/sustained_cpu.rhai"),
        dir.path().join("good.rhai"),
    )
    .expect("copy");
    std::fs::write(
        dir.path().join("task.json"),
        r#"{"task_id": "t", "frequency": 5, "devices": [{"device_id": "a",
            "device_metrics": {"cpu_usage": true}, "rules": ["good.rhai", "bad.rhai"]}]}"#,
    )
    .expect("write task");
    let output = nms_output(dir.path(), &["inspect", "--task", "task.json"]);
    assert_eq!(output.status.code(), Some(1));
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(shown.starts_with("task.json: invalid (1 task)"), "{shown}");
    assert!(shown.contains("rule file good.rhai  ok"), "{shown}");
    assert!(
        shown.contains("rule file bad.rhai  error: bad.rhai:3:"),
        "{shown}"
    );
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.starts_with("nms: bad.rhai:3:"), "{error}");
}

#[test]
fn inspect_asks_for_each_agents_metrics_and_alerts_and_prints_one_json_object() {
    let fixed = snapshot();
    let served = fixed.clone();
    let (url, received) = support::fake_http::serve(move |target| {
        let answer = match target {
            "/api/agents" => json!(served.agents),
            "/api/metrics?agent=edge-router-1&limit=60" => json!(served.metrics["edge-router-1"]),
            "/api/metrics?agent=r2&limit=60" => json!([]),
            "/api/alerts?agent=edge-router-1&limit=20" => json!([served.alerts[0]]),
            "/api/alerts?agent=r2&limit=20" => json!([served.alerts[1]]),
            other => {
                return (
                    "404 Not Found",
                    json!({"error": format!("no such endpoint: {other}")}),
                );
            }
        };
        ("200 OK", answer)
    });
    let output = nms_output(&repo("."), &["inspect", "--json", "--server", &url]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: Value = serde_json::from_slice(&output.stdout).expect("--json prints JSON");
    assert_eq!(
        printed,
        serde_json::to_value(&fixed).expect("a snapshot is JSON")
    );
    let targets: Vec<String> = received
        .try_iter()
        .map(|r| r.target().to_string())
        .collect();
    assert_eq!(targets.len(), 5, "{targets:?}");

    let output = nms_output(&repo("."), &["inspect", "--server", &url]);
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).lines().next(),
        Some("AGENTS (2)")
    );
}

#[test]
fn inspect_reports_the_servers_error_message() {
    let (url, _received) = support::fake_http::serve(|_| {
        (
            "500 Internal Server Error",
            json!({"error": "the store is locked"}),
        )
    });
    let output = nms_output(&repo("."), &["inspect", "--server", &url]);
    assert_eq!(output.status.code(), Some(1));
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(
        error.contains("500") && error.contains("the store is locked"),
        "{error}"
    );
}

#[test]
fn inspect_task_shows_the_iperf_plan_and_refuses_runs_that_cannot_fit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let entry = |role: &str, transport: &str, duration: u32| {
        format!(r#"{{"role": "{role}", "duration": {duration}, "transport": "{transport}"}}"#)
    };
    let task = |duration: u32| {
        format!(
            r#"{{"task_id": "course", "frequency": 20, "devices": [
                {{"device_id": "r2", "link_metrics": {{"bandwidth": {}, "jitter": {}}}}},
                {{"device_id": "r3", "link_metrics": {{"bandwidth": {}, "jitter": {}}}}}]}}"#,
            entry("server", "tcp", duration),
            entry("server", "udp", duration),
            entry("client", "tcp", duration),
            entry("client", "udp", duration)
        )
    };
    std::fs::write(dir.path().join("fits.json"), task(5)).unwrap();
    std::fs::write(dir.path().join("crowded.json"), task(12)).unwrap();

    let output = nms_output(dir.path(), &["inspect", "--task", "fits.json"]);
    assert!(output.status.success(), "{output:?}");
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(shown.contains("\niperf plan  ("), "{shown}");
    assert!(
        shown
            .contains("    +0 s  task course: r3 -> r2 port 5201 (tcp, 5 s every 20 s) (6 s slot)"),
        "{shown}"
    );
    assert!(
        shown
            .contains("    +6 s  task course: r3 -> r2 port 5201 (udp, 5 s every 20 s) (6 s slot)"),
        "{shown}"
    );
    let output = nms_output(dir.path(), &["inspect", "--task", "fits.json", "--json"]);
    let json: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(json["iperf_plan"]["placed"][1]["offset_ms"], 6000, "{json}");

    let output = nms_output(dir.path(), &["inspect", "--task", "crowded.json"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(said.contains("cannot be scheduled: no 13 s slot"), "{said}");
}
