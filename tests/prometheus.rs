//! `/metrics` as Prometheus sees it: a real `nms server` with two agents (one in the server's
//! process, one `nms agent` process) on loopback; `promtool check metrics` accepts the scraped
//! text, which has series for each agent; a real Prometheus server scrapes it every second and
//! answers PromQL queries for each agent's ping RTT and CPU through its HTTP API.
//!
//! Needs `promtool` and `prometheus` (Debian package `prometheus`, which .ci/run installs): the
//! test fails, saying so, when they are missing.

mod live;

use live::{NmsServer, Process, free_port, require, wait_for};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

const AGENTS: [&str; 2] = ["local", "second"];

/// The families every agent must have a series in.
const PER_AGENT: [&str; 4] = [
    "nms_agent_up",
    "nms_cpu_usage_ratio",
    "nms_memory_usage_ratio",
    "nms_ping_rtt_avg_seconds",
];

fn has_series(text: &str, family: &str, agent: &str) -> bool {
    let label = format!("agent=\"{agent}\"");
    text.lines()
        .any(|l| l.starts_with(&format!("{family}{{")) && l.contains(&label))
}

/// Runs `promtool check metrics` on `text`: its exit status and what it printed.
fn promtool_check(promtool: &std::path::Path, text: &str) -> (bool, String) {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start promtool");
    child
        .stdin
        .take()
        .expect("promtool stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool output");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

/// Asks Prometheus for `query`; the value of its first result, once there is one.
fn instant_value(prometheus: &str, query: &str) -> Option<f64> {
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("query", query)
        .finish();
    let answer = live::get_json(prometheus, &format!("/api/v1/query?{q}"))?;
    let first = answer.pointer("/data/result/0/value/1")?.as_str()?;
    first.parse().ok()
}

#[test]
fn prometheus_scrapes_both_agents_and_answers_promql_for_rtt_and_cpu() {
    let promtool = require("promtool", "prometheus");
    let prometheus_bin = require("prometheus", "prometheus");
    let dir = tempfile::tempdir().expect("temp dir");
    let task = dir.path().join("task.json");
    std::fs::write(&task, live::every_second_task("prom-test", &AGENTS, &[])).unwrap();

    let mut server = NmsServer::start(
        dir.path(),
        &["--config", task.to_str().unwrap(), "--local-agent", "local"],
    );
    let mut second = server.agent(dir.path(), "second");
    let http = server.http.clone();

    // Both agents' CPU, RAM and ping reports have arrived.
    let text = wait_for(
        "/metrics with CPU, RAM and ping series of both agents",
        Duration::from_secs(45),
        &mut [&mut server.process, &mut second],
        || {
            let text = live::get_text(&http, "/metrics")?;
            AGENTS
                .iter()
                .all(|a| PER_AGENT.iter().all(|f| has_series(&text, f, a)))
                .then_some(text)
        },
    );
    let (ok, said) = promtool_check(&promtool, &text);
    assert!(
        ok,
        "promtool check metrics refused /metrics:\n{said}\n--- /metrics ---\n{text}"
    );
    assert!(said.trim().is_empty(), "promtool had remarks: {said}");
    for agent in AGENTS {
        assert!(
            has_series(&text, "nms_interface_bytes_per_second", agent),
            "no lo interface series for {agent}:\n{text}"
        );
    }

    // A real Prometheus scraping the server every second.
    let port = free_port();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: nms\n    static_configs:\n      - targets: ['{}']\n",
            http.trim_start_matches("http://")
        ),
    )
    .unwrap();
    let listen = format!("--web.listen-address=127.0.0.1:{port}");
    let config_flag = format!("--config.file={}", config.display());
    let storage = format!("--storage.tsdb.path={}", dir.path().join("tsdb").display());
    let mut prometheus = Process::start(
        "prometheus",
        &prometheus_bin,
        &[&config_flag, &storage, &listen],
        dir.path(),
    );
    let base = format!("http://127.0.0.1:{port}");
    for agent in AGENTS {
        for (metric, low, high) in [
            ("nms_ping_rtt_avg_seconds", 0.0, 1.0),
            ("nms_cpu_usage_ratio", 0.0, 1.0),
        ] {
            let query = format!("{metric}{{agent=\"{agent}\",job=\"nms\"}}");
            let value = wait_for(
                &format!("Prometheus answering {query}"),
                Duration::from_secs(60),
                &mut [&mut server.process, &mut second, &mut prometheus],
                || instant_value(&base, &query),
            );
            assert!(
                (low..=high).contains(&value),
                "{query} = {value}, outside {low}..={high}"
            );
        }
    }
    // The scrape itself is healthy: Prometheus's own view of the target.
    let up = instant_value(&base, "up{job=\"nms\"}");
    assert_eq!(up, Some(1.0), "Prometheus does not see the nms target up");
}
