//! `/metrics` as Prometheus sees it: a real `nms server` with two agents (one in the server's
//! process, one `nms agent` process) on loopback; `promtool check metrics` accepts the scraped
//! text, which has series for each agent (host figures without a `task` label, interface
//! counters split by direction, ping counters); a real Prometheus server, loaded with the shipped
//! alerting rules (configs/prometheus/), scrapes it every second, answers PromQL queries for
//! each agent's ping RTT and CPU, and answers every query of the shipped Grafana dashboard.
//! When an agent is killed its series leave `/metrics` at the next scrape, and the shipped
//! NmsAgentDown rule fires in Prometheus. The shipped rules pass `promtool check rules` and
//! their unit tests (`promtool test rules`).
//!
//! Needs `promtool` and `prometheus` (Debian package `prometheus`, which .ci/run installs): the
//! test fails, saying so, when they are missing.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::ports::free_tcp_port;
use support::process::{NmsServer, Process, require};
use support::wait::wait_for_processes;

const AGENTS: [&str; 2] = ["local", "second"];

/// The families every agent must have a series in.
const PER_AGENT: [&str; 8] = [
    "nms_agent_up",
    "nms_cpu_usage_ratio",
    "nms_memory_usage_ratio",
    "nms_ping_rtt_avg_seconds",
    "nms_ping_packets_sent_total",
    "nms_ping_packets_received_total",
    "nms_interface_receive_bytes_total",
    "nms_interface_transmit_bytes_total",
];

/// The families that stop for an agent that is down.
const MEASURED: [&str; 5] = [
    "nms_cpu_usage_ratio",
    "nms_memory_usage_ratio",
    "nms_ping_rtt_avg_seconds",
    "nms_ping_packets_sent_total",
    "nms_interface_receive_bytes_total",
];

/// The shipped configuration for Prometheus.
fn shipped(file: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("configs/prometheus")
        .join(file)
}

/// Runs promtool with `args`: its exit status and what it printed.
fn promtool(promtool: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(promtool)
        .args(args)
        .current_dir(shipped(""))
        .output()
        .expect("run promtool");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Asks Prometheus for `query`: its whole answer when it succeeded.
fn query(prometheus: &str, query: &str) -> Option<serde_json::Value> {
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("query", query)
        .finish();
    let answer = support::http::get_json(prometheus, &format!("/api/v1/query?{q}"))?;
    (answer["status"] == "success").then_some(answer)
}

/// Every PromQL expression of the shipped Grafana dashboard, with its variables set to what
/// Grafana would put there (all agents, a rate window of 30 s).
fn dashboard_queries() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(shipped("grafana-dashboard.json")).expect("dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("dashboard JSON");
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            out.push((
                panel["title"].as_str().unwrap_or("?").to_string(),
                expr.replace("$__rate_interval", "30s")
                    .replace("$agent", ".*"),
            ));
        }
    }
    out
}

#[test]
fn the_shipped_rules_pass_promtool_check_and_their_unit_tests() {
    let promtool_bin = require("promtool", "prometheus");
    let (ok, said) = promtool(&promtool_bin, &["check", "rules", "nms-rules.yml"]);
    assert!(ok, "promtool check rules:\n{said}");
    let (ok, said) = promtool(&promtool_bin, &["test", "rules", "nms-rules.test.yml"]);
    assert!(ok, "promtool test rules:\n{said}");
    // The dashboard is JSON with a query in every panel (Prometheus runs them below).
    assert!(dashboard_queries().iter().all(|(_, expr)| !expr.is_empty()));
}

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
    let answer = support::http::get_json(prometheus, &format!("/api/v1/query?{q}"))?;
    let first = answer.pointer("/data/result/0/value/1")?.as_str()?;
    first.parse().ok()
}

#[test]
fn prometheus_scrapes_both_agents_and_answers_promql_for_rtt_and_cpu() {
    let promtool = require("promtool", "prometheus");
    let prometheus_bin = require("prometheus", "prometheus");
    let dir = tempfile::tempdir().expect("temp dir");
    let task = dir.path().join("task.json");
    std::fs::write(
        &task,
        support::fixtures::every_second_task("prom-test", &AGENTS, &[]),
    )
    .unwrap();

    let mut server = NmsServer::start(
        dir.path(),
        &["--config", task.to_str().unwrap(), "--local-agent", "local"],
    );
    let mut second = server.agent(dir.path(), "second");
    let http = server.http.clone();
    check_metrics_of_both_agents(&mut server, &mut second, &promtool);

    // A real Prometheus scraping the server every second.
    let (mut prometheus, base) = start_prometheus_scraping(dir.path(), &http, &prometheus_bin);
    let mut processes = [&mut server.process, &mut second, &mut prometheus];
    check_promql_answers_for_rtt_and_cpu(&mut processes, &base);
    check_every_dashboard_query_is_answered(&mut processes, &base);

    // The second agent dies: its series leave /metrics as soon as it is down, and the shipped
    // NmsAgentDown rule fires for it.
    second.kill();
    let text = wait_for_processes(
        "the killed agent down in /metrics",
        Duration::from_secs(60),
        &mut [&mut server.process, &mut prometheus],
        || {
            let text = support::http::get_text(&http, "/metrics")?;
            text.lines()
                .any(|l| l == "nms_agent_up{agent=\"second\"} 0")
                .then_some(text)
        },
    );
    for family in MEASURED {
        assert!(
            !has_series(&text, family, "second"),
            "{family} still exported for the down agent:\n{text}"
        );
        assert!(
            has_series(&text, family, "local"),
            "{family} gone for local too"
        );
    }
    wait_for_processes(
        "NmsAgentDown firing in Prometheus for the killed agent",
        Duration::from_secs(60),
        &mut [&mut server.process, &mut prometheus],
        || {
            instant_value(
                &base,
                "ALERTS{alertname=\"NmsAgentDown\",agent=\"second\",alertstate=\"firing\"}",
            )
        },
    );
}

/// Both agents' CPU, RAM and ping reports have arrived; `promtool check metrics` accepts
/// `/metrics` without remarks, host figures carry no task label, interface counters are
/// counters by direction.
fn check_metrics_of_both_agents(
    server: &mut NmsServer,
    second: &mut Process,
    promtool: &std::path::Path,
) {
    let http = server.http.clone();
    let text = wait_for_processes(
        "/metrics with CPU, RAM and ping series of both agents",
        Duration::from_secs(45),
        &mut [&mut server.process, second],
        || {
            let text = support::http::get_text(&http, "/metrics")?;
            AGENTS
                .iter()
                .all(|a| PER_AGENT.iter().all(|f| has_series(&text, f, a)))
                .then_some(text)
        },
    );
    let (ok, said) = promtool_check(promtool, &text);
    assert!(
        ok,
        "promtool check metrics refused /metrics:\n{said}\n--- /metrics ---\n{text}"
    );
    assert!(said.trim().is_empty(), "promtool had remarks: {said}");
    for line in text.lines().filter(|l| {
        l.starts_with("nms_cpu_usage_ratio{") || l.starts_with("nms_interface_receive_bytes_total{")
    }) {
        assert!(
            !line.contains("task="),
            "a host figure with a task label: {line}"
        );
    }
    assert!(
        text.contains("# TYPE nms_interface_receive_bytes_total counter"),
        "{text}"
    );
    assert!(
        !text.contains("_per_second{agent"),
        "summed interface rates: {text}"
    );
}

/// Starts a Prometheus that scrapes the server at `http` every second and evaluates the
/// shipped rules; returns it and its base URL.
fn start_prometheus_scraping(
    dir: &std::path::Path,
    http: &str,
    prometheus_bin: &std::path::Path,
) -> (Process, String) {
    let port = free_tcp_port();
    let config = dir.join("prometheus.yml");
    // The shipped rules, with their `for:` waits cut to nothing (the test cannot wait minutes).
    let rules = std::fs::read_to_string(shipped("nms-rules.yml")).expect("shipped rules");
    let rules: String = rules
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("for:") {
                format!("{}for: 0s", &l[..l.len() - l.trim_start().len()])
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(dir.join("nms-rules.yml"), rules).unwrap();
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - nms-rules.yml\n\
             scrape_configs:\n  - job_name: nms\n    static_configs:\n      - targets: ['{}']\n",
            http.trim_start_matches("http://")
        ),
    )
    .unwrap();
    let listen = format!("--web.listen-address=127.0.0.1:{port}");
    let config_flag = format!("--config.file={}", config.display());
    let storage = format!("--storage.tsdb.path={}", dir.join("tsdb").display());
    let prometheus = Process::start(
        "prometheus",
        prometheus_bin,
        &[&config_flag, &storage, &listen],
        dir,
    );
    (prometheus, format!("http://127.0.0.1:{port}"))
}

/// Prometheus answers each agent's ping RTT and CPU within bounds, and sees the target up.
fn check_promql_answers_for_rtt_and_cpu(processes: &mut [&mut Process], base: &str) {
    for agent in AGENTS {
        for (metric, low, high) in [
            ("nms_ping_rtt_avg_seconds", 0.0, 1.0),
            ("nms_cpu_usage_ratio", 0.0, 1.0),
        ] {
            let query = format!("{metric}{{agent=\"{agent}\",job=\"nms\"}}");
            let value = wait_for_processes(
                &format!("Prometheus answering {query}"),
                Duration::from_secs(60),
                processes,
                || instant_value(base, &query),
            );
            assert!(
                (low..=high).contains(&value),
                "{query} = {value}, outside {low}..={high}"
            );
        }
    }
    // The scrape itself is healthy: Prometheus's own view of the target.
    let up = instant_value(base, "up{job=\"nms\"}");
    assert_eq!(up, Some(1.0), "Prometheus does not see the nms target up");
}

/// Every query of the shipped dashboard is answered; those on what is measured here have
/// results (once two scrapes make a rate).
fn check_every_dashboard_query_is_answered(processes: &mut [&mut Process], base: &str) {
    let queries = dashboard_queries();
    assert!(queries.len() >= 10, "{queries:?}");
    for (title, expr) in &queries {
        let answer = wait_for_processes(
            &format!("Prometheus answering the dashboard's {title:?} panel: {expr}"),
            Duration::from_secs(60),
            processes,
            || query(base, expr),
        );
        // This task's pings send one request a run: no jitter (it needs two replies).
        let measured_here = !(expr.contains("iperf")
            || expr.contains("jitter")
            || expr.contains("_errors_total")
            || expr.contains("_drop_total") && !expr.contains("errors")
            || expr.contains("nms_alert_firing"));
        if measured_here {
            wait_for_processes(
                &format!("results for the {title:?} panel: {expr} (last answer {answer})"),
                Duration::from_secs(60),
                processes,
                || {
                    query(base, expr)?["data"]["result"]
                        .as_array()
                        .is_some_and(|r| !r.is_empty())
                        .then_some(())
                },
            );
        }
    }
}
