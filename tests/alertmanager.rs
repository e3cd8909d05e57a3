//! `nms server --alertmanager URL` against a real `prometheus-alertmanager` on loopback: an
//! alert raised by an agent's rule reaches Alertmanager with its labels and is resolved when the
//! rule stops firing; an agent that goes silent raises `agent_down` there, resolved when the
//! agent comes back. Alertmanager notifies a webhook receiver in this test, which is how the
//! test sees resolutions (Alertmanager's `GET /api/v2/alerts` lists only unresolved alerts).
//! And an unreachable Alertmanager slows nothing: alerts are still stored, failures counted.
//! A server restarted while an alert fires re-posts it from its store, so Alertmanager keeps
//! exactly one firing copy and never resolves it; a silence keeps an agent's alerts from
//! Alertmanager until it ends, then they arrive; https (a self-signed certificate, trusted with
//! --alertmanager-ca-file) works, and credentials are sent and never logged.
//!
//! Needs `prometheus-alertmanager` (Debian package of that name, which .ci/run installs): the
//! test fails, saying so, when it is missing.

mod support;

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use support::ports::free_tcp_port;
use support::process::{NmsServer, Process, require};
use support::wait::wait_for_processes;

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

/// A running Alertmanager that routes every alert, one group per alert, to `webhook`.
fn alertmanager(dir: &std::path::Path, webhook: &str) -> (Process, String) {
    alertmanager_with(dir, webhook, None)
}

/// [`alertmanager`], serving https with `tls` (certificate, key) when given.
fn alertmanager_with(
    dir: &std::path::Path,
    webhook: &str,
    tls: Option<(&std::path::Path, &std::path::Path)>,
) -> (Process, String) {
    let program = require("prometheus-alertmanager", "prometheus-alertmanager");
    let config = dir.join("alertmanager.yml");
    std::fs::write(
        &config,
        format!(
            "route:\n  receiver: test\n  group_by: ['...']\n  group_wait: 1s\n  \
             group_interval: 1s\n  repeat_interval: 1h\n\
             receivers:\n  - name: test\n    webhook_configs:\n      - url: '{webhook}'\n        \
             send_resolved: true\n"
        ),
    )
    .unwrap();
    let port = free_tcp_port();
    let mut args = vec![
        format!("--config.file={}", config.display()),
        format!("--storage.path={}", dir.join("alertmanager").display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
        "--cluster.listen-address=".to_string(),
    ];
    let base = match tls {
        None => format!("http://127.0.0.1:{port}"),
        Some((cert, key)) => {
            let web = dir.join("web.yml");
            std::fs::write(
                &web,
                format!(
                    "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
                    cert.display(),
                    key.display()
                ),
            )
            .unwrap();
            args.push(format!("--web.config.file={}", web.display()));
            format!("https://localhost:{port}")
        }
    };
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut process = Process::start("alertmanager", &program, &args, dir);
    wait_for_processes(
        "Alertmanager listening",
        Duration::from_secs(30),
        &mut [&mut process],
        || std::net::TcpStream::connect(("127.0.0.1", port)).ok(),
    );
    if tls.is_none() {
        wait_for_processes(
            "Alertmanager ready",
            Duration::from_secs(30),
            &mut [&mut process],
            || support::http::get_text(&base, "/-/ready"),
        );
    }
    (process, base)
}

/// Alertmanager's active alerts whose labels include all of `want`.
fn active(base: &str, want: &[(&str, &str)]) -> Vec<Value> {
    let Some(Value::Array(alerts)) = support::http::get_json(base, "/api/v2/alerts") else {
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
        .find(|a| a["annotations"]["alert_id"] == alert_id && a["status"] == status)
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

/// The labels the rule's alert has in Alertmanager.
const RULE_ALERT_LABELS: [(&str, &str); 5] = [
    ("alertname", "NmsCpu"),
    ("agent", "second"),
    ("task", "am-test"),
    ("kind", "cpu"),
    ("severity", "critical"),
];

/// The labels of the liveness alert of the agent gone silent.
const AGENT_DOWN_LABELS: [(&str, &str); 5] = [
    ("alertname", "NmsAgentDown"),
    ("agent", "second"),
    ("kind", "agent_down"),
    ("severity", "critical"),
    ("rule", "liveness"),
];

#[test]
fn alerts_reach_alertmanager_with_labels_and_resolve_there() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (hook, notifications) = webhook();
    let (mut am, am_url) = alertmanager(dir.path(), &hook);

    std::fs::write(dir.path().join("window.rhai"), WINDOW_RULE).unwrap();
    let task = dir.path().join("task.json");
    std::fs::write(
        &task,
        support::fixtures::every_second_task("am-test", &["second"], &["window.rhai"]),
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

    let firing = rule_alert_active_with_every_label(&mut server, &mut agent, &mut am, &am_url);
    let alert_id = firing["annotations"]["alert_id"]
        .as_str()
        .expect("an alert_id annotation")
        .to_string();
    // The rule stops firing: Alertmanager resolves the alert and says so.
    let resolution = wait_for_processes(
        "the rule's alert resolved in Alertmanager",
        Duration::from_secs(30),
        &mut [&mut server.process, &mut agent, &mut am],
        || notified(&notifications, &alert_id, "resolved"),
    );
    assert_ended(&resolution);
    assert_eq!(resolution["labels"], firing["labels"]);
    assert!(
        active(&am_url, &RULE_ALERT_LABELS).is_empty(),
        "alert {alert_id} still active after its resolution"
    );

    // The agent goes silent: agent_down, resolved when it is back.
    agent.kill();
    let down_id = agent_down_notified_as_firing(&mut server, &mut am, &am_url, &notifications);
    let mut agent = server.agent(dir.path(), "second");
    let up = wait_for_processes(
        "agent_down resolved in Alertmanager once the agent is back",
        Duration::from_secs(30),
        &mut [&mut server.process, &mut agent, &mut am],
        || notified(&notifications, &down_id, "resolved"),
    );
    assert_ended(&up);

    let status = support::http::get_json(&server.http, "/api/status").expect("/api/status");
    let forwarding = &status["alertmanagers"][0];
    assert_eq!(forwarding["url"], am_url.as_str(), "{status}");
    assert!(forwarding["sent"].as_u64() >= Some(4), "{status}");
    assert_eq!(forwarding["dropped"], 0, "{status}");
}

/// The rule's alert, active in Alertmanager with every label, its id an annotation, and
/// stored by nms as the same alert; returns it as Alertmanager shows it.
fn rule_alert_active_with_every_label(
    server: &mut NmsServer,
    agent: &mut Process,
    am: &mut Process,
    am_url: &str,
) -> Value {
    let firing = wait_for_processes(
        "the rule's alert active in Alertmanager",
        Duration::from_secs(30),
        &mut [&mut server.process, agent, am],
        || active(am_url, &RULE_ALERT_LABELS).into_iter().next(),
    );
    let rule = firing["labels"]["rule"].as_str().unwrap_or_default();
    assert!(rule.ends_with("window.rhai"), "rule label: {firing}");
    let alert_id = firing["annotations"]["alert_id"]
        .as_str()
        .expect("an alert_id annotation")
        .to_string();
    assert!(
        firing["labels"].get("alert_id").is_none(),
        "the alert id is an annotation, not a label: {firing}"
    );
    assert_eq!(
        firing["annotations"]["summary"]
            .as_str()
            .map(|s| s.ends_with("is in the window")),
        Some(true),
        "{firing}"
    );
    // nms stored the same alert.
    let stored =
        support::http::get_json(&server.http, "/api/alerts?agent=second").unwrap_or_default();
    assert!(
        stored
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["alert_id"] == alert_id.as_str())),
        "alert {alert_id} not in /api/alerts: {stored}"
    );
    firing
}

/// The silent agent's agent_down, active in Alertmanager and notified as firing; returns its
/// alert id.
fn agent_down_notified_as_firing(
    server: &mut NmsServer,
    am: &mut Process,
    am_url: &str,
    notifications: &Notifications,
) -> String {
    let down = wait_for_processes(
        "agent_down active in Alertmanager",
        Duration::from_secs(30),
        &mut [&mut server.process, am],
        || active(am_url, &AGENT_DOWN_LABELS).into_iter().next(),
    );
    let down_id = down["annotations"]["alert_id"]
        .as_str()
        .unwrap()
        .to_string();
    // Alertmanager does not tell of an alert resolved before it notified of it firing.
    wait_for_processes(
        "agent_down notified as firing",
        Duration::from_secs(30),
        &mut [&mut server.process, am],
        || notified(notifications, &down_id, "firing"),
    );
    down_id
}

#[test]
fn an_unreachable_alertmanager_delays_no_alert_and_its_failures_are_counted() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A port nothing listens on.
    let closed = format!("http://127.0.0.1:{}", free_tcp_port());
    let task = dir.path().join("task.json");
    let mut task_json: Value = serde_json::from_str(&support::fixtures::every_second_task(
        "am-down",
        &["local"],
        &[],
    ))
    .unwrap();
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
    wait_for_processes(
        "the RAM alert stored although Alertmanager is unreachable",
        Duration::from_secs(30),
        &mut [&mut server.process],
        || {
            let alerts = support::http::get_json(&http, "/api/alerts?agent=local")?;
            alerts
                .as_array()?
                .iter()
                .any(|a| a["kind"] == "ram")
                .then_some(())
        },
    );
    let status = wait_for_processes(
        "a failed post counted in /api/status",
        Duration::from_secs(30),
        &mut [&mut server.process],
        || {
            let status = support::http::get_json(&http, "/api/status")?;
            (status["alertmanagers"][0]["failed_requests"].as_u64()? >= 1).then_some(status)
        },
    );
    let forwarding = &status["alertmanagers"][0];
    assert_eq!(forwarding["sent"], 0, "{status}");
    assert!(forwarding["pending"].as_u64() >= Some(1), "{status}");
    let error = forwarding["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("is Alertmanager running?"), "{status}");
    let metrics = support::http::get_text(&http, "/metrics").unwrap_or_default();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("nms_alertmanager_requests_failed_total{") && !l.ends_with(" 0")),
        "{metrics}"
    );
    assert!(
        server.process.output().contains("not delivered"),
        "the failure is not logged:\n{}",
        server.process.output()
    );
}

/// A task whose RAM threshold of 1% fires at once on any machine, for `devices`.
fn ram_task(dir: &std::path::Path, task_id: &str, devices: &[&str]) -> std::path::PathBuf {
    let task = dir.join(format!("{task_id}.json"));
    let mut json: Value =
        serde_json::from_str(&support::fixtures::every_second_task(task_id, devices, &[])).unwrap();
    for d in json["devices"].as_array_mut().unwrap() {
        d["alertflow_conditions"] = serde_json::json!({"ram_usage": 1});
    }
    std::fs::write(&task, json.to_string()).unwrap();
    task
}

#[test]
fn a_restart_while_an_alert_fires_keeps_exactly_one_firing_copy_in_alertmanager() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (hook, notifications) = webhook();
    let (mut am, am_url) = alertmanager(dir.path(), &hook);
    let task = ram_task(dir.path(), "restart", &["edge"]);
    let args = [
        "--config",
        task.to_str().unwrap(),
        "--alertmanager",
        &am_url,
    ];
    let mut server = NmsServer::start(dir.path(), &args);
    let mut agent = server.agent(dir.path(), "edge");
    let labels = [
        ("alertname", "NmsRam"),
        ("agent", "edge"),
        ("task", "restart"),
    ];
    let before = wait_for_processes(
        "the RAM alert active in Alertmanager",
        Duration::from_secs(30),
        &mut [&mut server.process, &mut agent, &mut am],
        || active(&am_url, &labels).into_iter().next(),
    );

    // The server restarts (the agent goes on, and keeps its alert firing).
    server.process.kill();
    let mut server = NmsServer::start(dir.path(), &args);
    wait_for_processes(
        "the restarted server forwarding again",
        Duration::from_secs(30),
        &mut [&mut server.process, &mut agent, &mut am],
        || {
            let status = support::http::get_json(&server.http, "/api/status")?;
            (status["alertmanagers"][0]["sent"].as_u64()? >= 1).then_some(())
        },
    );
    let after = active(&am_url, &labels);
    assert_eq!(after.len(), 1, "one firing copy: {after:?}");
    assert_eq!(after[0]["labels"], before["labels"]);
    assert_eq!(after[0]["startsAt"], before["startsAt"], "the same episode");
    let ends = humantime::parse_rfc3339_weak(after[0]["endsAt"].as_str().unwrap()).unwrap();
    assert!(ends > SystemTime::now(), "still firing: {}", after[0]);
    let id = before["annotations"]["alert_id"].as_str().unwrap();
    assert!(
        notified(&notifications, id, "resolved").is_none(),
        "Alertmanager resolved an alert that still fires"
    );
}

#[test]
fn a_silence_keeps_an_agents_alerts_from_alertmanager_until_it_ends() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (hook, _notifications) = webhook();
    let (mut am, am_url) = alertmanager(dir.path(), &hook);
    let task = ram_task(dir.path(), "quiet", &["edge"]);
    let mut server = NmsServer::start(
        dir.path(),
        &[
            "--config",
            task.to_str().unwrap(),
            "--alertmanager",
            &am_url,
        ],
    );
    // Silenced before the agent starts: its RAM alert never reaches Alertmanager while the
    // silence lasts.
    let token = std::fs::read_to_string(dir.path().join("server/api-token")).unwrap();
    let silence = smol::block_on(nms::client::post_json(
        &server.http,
        Some(token.trim()),
        "/api/silences",
        &serde_json::json!({"agent": "edge", "duration": "8s", "comment": "maintenance", "created_by": "test"}),
    ))
    .expect("POST /api/silences");
    let mut agent = server.agent(dir.path(), "edge");
    let labels = [("alertname", "NmsRam"), ("agent", "edge")];
    let held = wait_for_processes(
        "the RAM alert stored, silenced",
        Duration::from_secs(30),
        &mut [&mut server.process, &mut agent, &mut am],
        || {
            let firing = support::http::get_json(&server.http, "/api/alerts?firing=true")?;
            firing
                .as_array()?
                .iter()
                .find(|a| a["kind"] == "ram")
                .cloned()
        },
    );
    assert_eq!(held["silenced_by"], silence["id"], "{held}");
    let page = support::http::get_text(&server.http, "/").unwrap_or_default();
    assert!(
        page.contains("silenced (see Silences)"),
        "the page's firing list holds it back"
    );
    assert!(
        active(&am_url, &labels).is_empty(),
        "a silenced alert reached Alertmanager"
    );
    // The silence ends: the alert, still firing, arrives.
    let arrived = wait_for_processes(
        "the RAM alert in Alertmanager once the silence ended",
        Duration::from_secs(40),
        &mut [&mut server.process, &mut agent, &mut am],
        || active(&am_url, &labels).into_iter().next(),
    );
    assert_eq!(arrived["annotations"]["alert_id"], held["alert_id"]);
    let metrics = support::http::get_text(&server.http, "/metrics").unwrap_or_default();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("nms_alert_firing{") && l.contains("NmsRam")),
        "{metrics}"
    );
}

/// A CA and a certificate for `localhost` it signed, made with openssl: (CA certificate,
/// server certificate, server key).
fn certificates(
    dir: &std::path::Path,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let openssl = require("openssl", "openssl");
    let run = |args: &[&str]| {
        let status = std::process::Command::new(&openssl)
            .args(args)
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("run openssl");
        assert!(status.success(), "openssl {args:?} failed");
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=nms test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "am.key",
        "-out",
        "am.csr",
    ]);
    std::fs::write(
        dir.join("am.ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "am.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "am.ext",
        "-out",
        "am.crt",
    ]);
    (dir.join("ca.crt"), dir.join("am.crt"), dir.join("am.key"))
}

#[test]
fn https_with_a_ca_file_and_credentials_that_never_reach_the_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (hook, _notifications) = webhook();
    let (ca, cert, key) = certificates(dir.path());
    let (mut am, am_url) = alertmanager_with(dir.path(), &hook, Some((&cert, &key)));
    assert!(am_url.starts_with("https://"));
    // Alertmanager does not check credentials here; a proxy in front of it would. They must be
    // sent (the fake proxy test below sees them) and never logged or shown.
    let auth = dir.path().join("am-auth");
    std::fs::write(&auth, "basic nms:s3cret-password\n").unwrap();
    let task = ram_task(dir.path(), "tls", &["local"]);
    let mut server = NmsServer::start(
        dir.path(),
        &[
            "--config",
            task.to_str().unwrap(),
            "--local-agent",
            "local",
            "--alertmanager",
            &am_url,
            "--alertmanager-ca-file",
            ca.to_str().unwrap(),
            "--alertmanager-auth-file",
            auth.to_str().unwrap(),
        ],
    );
    // nms's own status says what Alertmanager accepted over https.
    wait_for_processes(
        "alerts accepted by Alertmanager over https",
        Duration::from_secs(30),
        &mut [&mut server.process, &mut am],
        || {
            let status = support::http::get_json(&server.http, "/api/status")?;
            (status["alertmanagers"][0]["sent"].as_u64()? >= 1).then_some(())
        },
    );
    let status = support::http::get_json(&server.http, "/api/status").unwrap();
    let text = status.to_string();
    assert!(
        !text.contains("s3cret"),
        "credentials in /api/status: {text}"
    );
    assert_eq!(status["alertmanagers"][0]["authenticated"], true);
    assert!(
        !server.process.output().contains("s3cret"),
        "credentials in the log"
    );
}

/// The authorization headers the fake Alertmanagers received: (which one, header value).
type SeenAuthorizations = Arc<Mutex<Vec<(usize, String)>>>;

/// A fake Alertmanager `n` on 127.0.0.1 (as a proxy in front would be): answers 200 to every
/// request and keeps its authorization header in `seen`; returns its URL.
fn fake_alertmanager(n: usize, seen: SeenAuthorizations) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(&stream);
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let line = line.trim_end().to_string();
                if line.is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                    if name.eq_ignore_ascii_case("authorization") {
                        seen.lock().unwrap().push((n, value.trim().to_string()));
                    }
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let _ = (&stream)
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    url
}

#[test]
fn credentials_are_sent_to_every_alertmanager_and_shown_nowhere() {
    // Two fake Alertmanagers (as a proxy in front would): each gets every alert, each with the
    // credentials given.
    let dir = tempfile::tempdir().expect("temp dir");
    let seen: SeenAuthorizations = Arc::default();
    let mut urls = Vec::new();
    for n in 0..2 {
        urls.push(fake_alertmanager(n, seen.clone()));
    }
    let auth = dir.path().join("am-auth");
    std::fs::write(&auth, "bearer t0ken-for-the-proxy\n").unwrap();
    let task = ram_task(dir.path(), "two", &["local"]);
    let mut server = NmsServer::start(
        dir.path(),
        &[
            "--config",
            task.to_str().unwrap(),
            "--local-agent",
            "local",
            "--alertmanager",
            &urls[0],
            "--alertmanager",
            &urls[1],
            "--alertmanager-auth-file",
            auth.to_str().unwrap(),
        ],
    );
    wait_for_processes(
        "both Alertmanagers posted to",
        Duration::from_secs(30),
        &mut [&mut server.process],
        || {
            let seen = seen.lock().unwrap();
            (seen.iter().any(|(n, _)| *n == 0) && seen.iter().any(|(n, _)| *n == 1)).then_some(())
        },
    );
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .all(|(_, v)| v == "Bearer t0ken-for-the-proxy")
    );
    let status = support::http::get_json(&server.http, "/api/status").unwrap();
    assert_eq!(status["alertmanagers"].as_array().map(Vec::len), Some(2));
    assert!(!status.to_string().contains("t0ken"));
    assert!(!server.process.output().contains("t0ken"));
    let metrics = support::http::get_text(&server.http, "/metrics").unwrap_or_default();
    for url in &urls {
        assert!(
            metrics.contains(&format!(
                "nms_alertmanager_alerts_sent_total{{alertmanager=\"{url}\"}}"
            )),
            "{metrics}"
        );
    }
}
