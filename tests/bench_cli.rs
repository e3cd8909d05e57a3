//! `nms bench` as a user runs it: a small fleet against a server the bench starts itself, with
//! alerts, printing one JSON object whose figures add up.

mod support;

use std::process::Command;

#[test]
fn a_small_bench_run_stores_every_report_once_and_reports_its_figures() {
    let work = tempfile::tempdir().unwrap();
    let out = Command::new(support::process::nms_binary())
        .args([
            "bench",
            "--agents",
            "5",
            "--seconds",
            "1",
            "--ceiling-seconds",
            "0.5",
        ])
        .args(["--alerts", "--alert-rate", "20", "--json", "--work-dir"])
        .arg(work.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "nms bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "reports_per_sec",
        "ceiling_per_sec",
        "lost",
        "duplicated",
        "ack_p50_ms",
        "ack_p99_ms",
        "alert_p99_ms",
        "server_cpu_percent",
        "server_rss_bytes",
    ] {
        assert!(report.get(key).is_some(), "no {key} in {report}");
    }
    assert_eq!(report["agents"], 5);
    assert!(report["sent"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(report["stored"], report["sent"], "{report}");
    assert_eq!(report["lost"], 0, "{report}");
    assert_eq!(report["duplicated"], 0, "{report}");
    assert!(
        report["alerts_acknowledged"].as_u64().unwrap() > 0,
        "{report}"
    );
    assert_eq!(
        report["alerts_acknowledged"], report["alerts_raised"],
        "{report}"
    );
    assert!(report["server_rss_bytes"].as_u64().unwrap() > 0, "{report}");
    // 96 bytes for CPU, RAM, two interfaces and a ping, plus what the wire carries since: each
    // interface's link state and counter presence bits, the ping's two counters (5 bytes).
    assert!(report["report_bytes"].as_u64().unwrap() <= 101, "{report}");
    // The temporary data directory is removed.
    assert_eq!(std::fs::read_dir(work.path()).unwrap().count(), 0);
}

#[test]
fn bench_refuses_nonsense_options() {
    let out = Command::new(support::process::nms_binary())
        .args(["bench", "--seconds", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--seconds"));
}

#[test]
fn killing_the_server_with_sigkill_under_load_loses_nothing_acknowledged() {
    let work = tempfile::tempdir().unwrap();
    let out = Command::new(support::process::nms_binary())
        .args([
            "bench",
            "--agents",
            "20",
            "--seconds",
            "6",
            "--kill-every",
            "1.5",
        ])
        .args(["--ceiling-seconds", "0.5", "--json", "--work-dir"])
        .arg(work.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "nms bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["server_kills"].as_u64().unwrap() >= 2, "{report}");
    assert!(report["sent"].as_u64().unwrap() > 1000, "{report}");
    // Every report the agents sent (each acknowledged in the end) is in the store the killed
    // server left, once.
    assert_eq!(report["unacknowledged"], 0, "{report}");
    assert_eq!(report["lost"], 0, "{report}");
    assert_eq!(report["duplicated"], 0, "{report}");
    assert_eq!(report["stored"], report["sent"], "{report}");
}
