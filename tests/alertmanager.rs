//! `nms server --alertmanager URL` against a real `prometheus-alertmanager` on loopback: an
//! alert raised by an agent's rule reaches Alertmanager with its labels and is resolved when the
//! rule stops firing; an agent that goes silent raises `agent_down` there, resolved when the
//! agent comes back. Alertmanager notifies a webhook receiver in this test, which is how the
//! test sees resolutions (Alertmanager's `GET /api/v2/alerts` lists only unresolved alerts).
//! And an unreachable Alertmanager slows nothing: alerts are still stored, failures counted.
//!
//! Needs `prometheus-alertmanager` (Debian package of that name, which .ci/run installs): the
//! test fails, saying so, when it is missing.

mod live;

use live::{NmsServer, Process, free_port, require, wait_for};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// A rule that fires from the 2nd to the 10th report with a CPU value, then never again: one
/// alert, raised once and resolved once, with some seconds in between. (Its kind is `cpu`: a
/// `cpu` alert is resolved only by a report that measures CPU, not by the task's ping reports.)
const WINDOW_RULE: &str = r#"// window.rhai: fires on reports 2 to 10, then stops.
if !measured(cpu_percent) {
    return;
}
state.reports = (state.reports ?? 0) + 1;
if state.reports >= 2 && state.reports <= 10 {
    alert("cpu", 10, state.reports, `report ${state.reports} is in the window`, "critical");
}
"#;

/// The notifications Alertmanager sent to the webhook, as JSON bodies.
type Notifications = Arc<Mutex<Vec<Value>>>;

/// A webhook receiver on 127.0.0.1: answers 200 to every POST and keeps its JSON body.
fn webhook() -> (String, Notifications) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the webhook");
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let received: Notifications = Arc::default();
    let keep = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(&stream);
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_ok()
                && let Ok(v) = serde_json::from_slice(&body)
            {
                keep.lock().unwrap().push(v);
            }
            let _ = (&stream)
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (url, received)
}

/// A running Alertmanager that routes every alert, one group per alert id, to `webhook`.
fn alertmanager(dir: &std::path::Path, webhook: &str) -> (Process, String) {
    let program = require("prometheus-alertmanager", "prometheus-alertmanager");
    let config = dir.join("alertmanager.yml");
    std::fs::write(
        &config,
        format!(
            "route:\n  receiver: test\n  group_by: [alert_id]\n  group_wait: 1s\n  \
             group_interval: 1s\n  repeat_interval: 1h\n\
             receivers:\n  - name: test\n    webhook_configs:\n      - url: '{webhook}'\n        \
             send_resolved: true\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let args = [
        format!("--config.file={}", config.display()),
        format!("--storage.path={}", dir.join("alertmanager").display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
        "--cluster.listen-address=".to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut process = Process::start("alertmanager", &program, &args, dir);
    wait_for(
        "Alertmanager ready",
        Duration::from_secs(30),
        &mut [&mut process],
        || live::get_text(&base, "/-/ready"),
    );
    (process, base)
}

/// Alertmanager's active alerts whose labels include all of `want`.
fn active(base: &str, want: &[(&str, &str)]) -> Vec<Value> {
    let Some(Value::Array(alerts)) = live::get_json(base, "/api/v2/alerts") else {
        return Vec::new();
    };
    alerts
        .into_iter()
        .filter(|a| {
            want.iter()
                .all(|(k, v)| a.pointer(&format!("/labels/{k}")).and_then(Value::as_str) == Some(v))
        })
        .collect()
}

/// The alert with this `alert_id` and `status` (`firing`, `resolved`) among the webhook's
/// notifications.
fn notified(notifications: &Notifications, alert_id: &str, status: &str) -> Option<Value> {
    let all = notifications.lock().unwrap();
    all.iter()
        .flat_map(|n| n["alerts"].as_array().cloned().unwrap_or_default())
        .find(|a| a["labels"]["alert_id"] == alert_id && a["status"] == status)
}

/// The alert ended in the past.
fn assert_ended(alert: &Value) {
    let ends = alert["endsAt"].as_str().expect("endsAt");
    let ends = humantime::parse_rfc3339_weak(ends)
        .unwrap_or_else(|e| panic!("endsAt {ends:?} is not RFC 3339: {e}"));
    assert!(ends <= SystemTime::now(), "endsAt {alert} is in the future");
    let starts = humantime::parse_rfc3339_weak(alert["startsAt"].as_str().expect("startsAt"))
        .expect("startsAt is RFC 3339");
    assert!(starts <= ends, "{alert} ends before it starts");
}

#[test]
fn alerts_reach_alertmanager_with_labels_and_resolve_there() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (hook, notifications) = webhook();
    let (mut am, am_url) = alertmanager(dir.path(), &hook);

    std::fs::write(dir.path().join("window.rhai"), WINDOW_RULE).unwrap();
    let task = dir.path().join("task.json");
    std::fs::write(
        &task,
        live::every_second_task("am-test", &["second"], &["window.rhai"]),
    )
    .unwrap();
    let mut server = NmsServer::start(
        dir.path(),
        &[
            "--config",
            task.to_str().unwrap(),
            "--alertmanager",
            &am_url,
            "--heartbeat-ms",
            "200",
            "--missed-heartbeats",
            "5",
        ],
    );
    let mut agent = server.agent(dir.path(), "second");

    // The rule's alert, active in Alertmanager with every label.
    let labels = [
        ("alertname", "NmsCpu"),
        ("agent", "second"),
        ("task", "am-test"),
        ("kind", "cpu"),
        ("severity", "critical"),
    ];
    let firing = wait_for(
        "the rule's alert active in Alertmanager",
        Duration::from_secs(30),
        &mut [&mut server.process, &mut agent, &mut am],
        || active(&am_url, &labels).into_iter().next(),
    );
    let rule = firing["labels"]["rule"].as_str().unwrap_or_default();
    assert!(rule.ends_with("window.rhai"), "rule label: {firing}");
    let alert_id = firing["labels"]["alert_id"]
        .as_str()
        .expect("an alert_id label")
        .to_string();
    assert_eq!(
        firing["annotations"]["summary"]
            .as_str()
            .map(|s| s.ends_with("is in the window")),
        Some(true),
        "{firing}"
    );
    // nms stored the same alert.
    let stored = live::get_json(&server.http, "/api/alerts?agent=second").unwrap_or_default();
    assert!(
        stored
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["alert_id"] == alert_id.as_str())),
        "alert {alert_id} not in /api/alerts: {stored}"
    );

    // The rule stops firing: Alertmanager resolves the alert and says so.
    let resolution = wait_for(
        "the rule's alert resolved in Alertmanager",
        Duration::from_secs(30),
        &mut [&mut server.process, &mut agent, &mut am],
        || notified(&notifications, &alert_id, "resolved"),
    );
    assert_ended(&resolution);
    assert_eq!(resolution["labels"], firing["labels"]);
    assert!(
        active(&am_url, &[("alert_id", &alert_id)]).is_empty(),
        "alert {alert_id} still active after its resolution"
    );

    // The agent goes silent: agent_down, resolved when it is back.
    agent.kill();
    let down_labels = [
        ("alertname", "NmsAgentDown"),
        ("agent", "second"),
        ("kind", "agent_down"),
        ("severity", "critical"),
        ("rule", "liveness"),
    ];
    let down = wait_for(
        "agent_down active in Alertmanager",
        Duration::from_secs(30),
        &mut [&mut server.process, &mut am],
        || active(&am_url, &down_labels).into_iter().next(),
    );
    let down_id = down["labels"]["alert_id"].as_str().unwrap().to_string();
    // Alertmanager does not tell of an alert resolved before it notified of it firing.
    wait_for(
        "agent_down notified as firing",
        Duration::from_secs(30),
        &mut [&mut server.process, &mut am],
        || notified(&notifications, &down_id, "firing"),
    );
    let mut agent = server.agent(dir.path(), "second");
    let up = wait_for(
        "agent_down resolved in Alertmanager once the agent is back",
        Duration::from_secs(30),
        &mut [&mut server.process, &mut agent, &mut am],
        || notified(&notifications, &down_id, "resolved"),
    );
    assert_ended(&up);

    let status = live::get_json(&server.http, "/api/status").expect("/api/status");
    let forwarding = &status["alertmanager"];
    assert_eq!(forwarding["url"], am_url.as_str(), "{status}");
    assert!(forwarding["sent"].as_u64() >= Some(4), "{status}");
    assert_eq!(forwarding["dropped"], 0, "{status}");
}

#[test]
fn an_unreachable_alertmanager_delays_no_alert_and_its_failures_are_counted() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A port nothing listens on.
    let closed = format!("http://127.0.0.1:{}", free_port());
    let task = dir.path().join("task.json");
    let mut task_json: Value =
        serde_json::from_str(&live::every_second_task("am-down", &["local"], &[])).unwrap();
    // RAM above 1%: fires on the first report on any machine.
    task_json["devices"][0]["alertflow_conditions"] = serde_json::json!({"ram_usage": 1});
    std::fs::write(&task, task_json.to_string()).unwrap();
    let mut server = NmsServer::start(
        dir.path(),
        &[
            "--config",
            task.to_str().unwrap(),
            "--local-agent",
            "local",
            "--alertmanager",
            &closed,
        ],
    );
    let http = server.http.clone();
    wait_for(
        "the RAM alert stored although Alertmanager is unreachable",
        Duration::from_secs(30),
        &mut [&mut server.process],
        || {
            let alerts = live::get_json(&http, "/api/alerts?agent=local")?;
            alerts
                .as_array()?
                .iter()
                .any(|a| a["kind"] == "ram")
                .then_some(())
        },
    );
    let status = wait_for(
        "a failed post counted in /api/status",
        Duration::from_secs(30),
        &mut [&mut server.process],
        || {
            let status = live::get_json(&http, "/api/status")?;
            (status["alertmanager"]["failed_requests"].as_u64()? >= 1).then_some(status)
        },
    );
    let forwarding = &status["alertmanager"];
    assert_eq!(forwarding["sent"], 0, "{status}");
    assert!(forwarding["pending"].as_u64() >= Some(1), "{status}");
    let error = forwarding["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("is Alertmanager running?"), "{status}");
    let metrics = live::get_text(&http, "/metrics").unwrap_or_default();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("nms_alertmanager_requests_failed_total ") && !l.ends_with(" 0")),
        "{metrics}"
    );
    assert!(
        server.process.output().contains("not delivered"),
        "the failure is not logged:\n{}",
        server.process.output()
    );
}
