//! Remote write into a real Prometheus (`prometheus --web.enable-remote-write-receiver`): an
//! `nms server` with `--remote-write` and an `nms agent` reporting every second on loopback.
//! Prometheus is stopped while reports keep coming, the server is killed (SIGKILL) while it
//! is still down, Prometheus comes back, the server starts again on its data: in the end
//! Prometheus' HTTP API holds every report the server stored, each value at the report's own
//! timestamp, under the names and labels of `/metrics`, and the server's status says nothing
//! is pending and nothing failed.
//!
//! Needs `prometheus` (Debian package `prometheus`, which .ci/run installs).

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use support::ports::{Ports, free_tcp_port};
use support::process::{Process, require};
use support::wait::wait_for_processes;

const AGENT: &str = "rw-agent";
const TASK: &str = "rw-test";

fn start_server(dir: &Path, ports: &Ports, task: &Path, receiver: &str, run: u32) -> Process {
    let data = dir.join("server");
    let p = |n: u16| n.to_string();
    let (nettask, alertflow) = (p(ports.nettask), p(ports.alertflow));
    let http = format!("127.0.0.1:{}", ports.http);
    Process::start(
        &format!("nms server {run}"),
        &support::process::nms_binary(),
        &[
            "server",
            "--listen",
            "127.0.0.1",
            "--nettask-port",
            &nettask,
            "--alertflow-port",
            &alertflow,
            "--http",
            &http,
            "--data-dir",
            data.to_str().unwrap(),
            "--config",
            task.to_str().unwrap(),
            "--remote-write",
            receiver,
        ],
        dir,
    )
}

fn start_prometheus(dir: &Path, port: u16, run: u32) -> Process {
    let prometheus = require("prometheus", "prometheus");
    let config = dir.join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 1m\n").unwrap();
    let listen = format!("--web.listen-address=127.0.0.1:{port}");
    let config_flag = format!("--config.file={}", config.display());
    let storage = format!("--storage.tsdb.path={}", dir.join("tsdb").display());
    Process::start(
        &format!("prometheus {run}"),
        &prometheus,
        &[
            &config_flag,
            &storage,
            &listen,
            "--web.enable-remote-write-receiver",
        ],
        dir,
    )
}

fn status(http: &str) -> Option<Value> {
    support::http::get_json(http, "/api/status")
}

fn remote(http: &str) -> Option<Value> {
    Some(status(http)?["remote_write"][0].clone())
}

/// Every sample Prometheus holds of `selector` in the last hour: time in ms -> value.
fn samples(prometheus: &str, selector: &str) -> Option<BTreeMap<i64, f64>> {
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("query", &format!("{selector}[1h]"))
        .finish();
    let answer = support::http::get_json(prometheus, &format!("/api/v1/query?{q}"))?;
    if answer["status"] != "success" {
        return None;
    }
    let mut out = BTreeMap::new();
    for series in answer["data"]["result"].as_array()? {
        for point in series["values"].as_array()? {
            let t = point[0].as_f64()?;
            let v: f64 = point[1].as_str()?.parse().ok()?;
            out.insert((t * 1000.0).round() as i64, v);
        }
    }
    Some(out)
}

/// The reports the server stored of the agent, oldest first.
fn stored(http: &str) -> Option<Vec<Value>> {
    let answer = support::http::get_json(
        http,
        &format!("/api/metrics?agent={AGENT}&from=0&limit=100000"),
    )?;
    answer
        .as_array()
        .or_else(|| answer["metrics"].as_array())
        .cloned()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn prometheus_receives_every_report_at_its_own_time_across_its_outage_and_a_server_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let task = dir.path().join("task.json");
    std::fs::write(
        &task,
        support::fixtures::every_second_task(TASK, &[AGENT], &[]),
    )
    .unwrap();
    // Fixed ports, so that the agent finds the server again after a restart.
    let ports = Ports::pick();
    let prom_port = free_tcp_port();
    let prom = format!("http://127.0.0.1:{prom_port}");
    let receiver = format!("{prom}/api/v1/write");
    let http = format!("http://127.0.0.1:{}", ports.http);

    let mut prometheus = start_prometheus(dir.path(), prom_port, 1);
    wait_for_processes(
        "Prometheus ready",
        Duration::from_secs(60),
        &mut [&mut prometheus],
        || support::http::get_text(&prom, "/-/ready"),
    );
    let mut server = start_server(dir.path(), &ports, &task, &receiver, 1);
    wait_for_processes(
        "the server's HTTP API",
        Duration::from_secs(30),
        &mut [&mut server],
        || status(&http),
    );
    let mut agent = start_agent(dir.path(), &ports);

    // Reports flow into Prometheus.
    wait_for_processes(
        "samples sent to Prometheus",
        Duration::from_secs(60),
        &mut [&mut server, &mut agent, &mut prometheus],
        || (remote(&http)?["cursor"].as_u64()? >= 10).then_some(()),
    );

    // Prometheus stops; reports keep being stored and wait.
    prometheus.kill();
    let pending_since = reports_waiting_while_prometheus_is_down(&mut server, &mut agent, &http);
    // The server is killed while Prometheus is still down, and starts again on its data.
    server.kill();
    let mut server = start_server(dir.path(), &ports, &task, &receiver, 2);
    check_the_restarted_server_resumes(&mut server, &mut agent, &http, pending_since);
    // Prometheus comes back: everything waiting reaches it.
    let mut prometheus = start_prometheus(dir.path(), prom_port, 2);
    send_the_backlog_and_the_last_reports(&mut server, &mut agent, &mut prometheus, &http, &prom);

    check_prometheus_holds_every_stored_report(&server, &http, &prom);
}

/// The `nms agent` of the test, reporting to the server at its fixed NetTask port.
fn start_agent(dir: &Path, ports: &Ports) -> Process {
    let agent_data = dir.join("agent");
    Process::start(
        "nms agent",
        &support::process::nms_binary(),
        &[
            "agent",
            "--server",
            &format!("127.0.0.1:{}", ports.nettask),
            "--id",
            AGENT,
            "--data-dir",
            agent_data.to_str().unwrap(),
        ],
        dir,
    )
}

/// Waits until reports pile up and a request has failed; returns the cursor they wait at.
fn reports_waiting_while_prometheus_is_down(
    server: &mut Process,
    agent: &mut Process,
    http: &str,
) -> u64 {
    let pending_since = wait_for_processes(
        "reports waiting while Prometheus is down",
        Duration::from_secs(60),
        &mut [server, agent],
        || {
            let r = remote(http)?;
            (r["reports_pending"].as_u64()? >= 8 && r["requests_failed"].as_u64()? >= 1)
                .then_some(r["cursor"].as_u64()?)
        },
    );
    assert!(pending_since > 0);
    pending_since
}

/// The restarted server stores more reports and says it resumed where the first one stopped.
fn check_the_restarted_server_resumes(
    server: &mut Process,
    agent: &mut Process,
    http: &str,
    pending_since: u64,
) {
    wait_for_processes(
        "the restarted server storing reports",
        Duration::from_secs(60),
        &mut [server, agent],
        || {
            let r = remote(http)?;
            (r["reports_pending"].as_u64()? >= 16).then_some(())
        },
    );
    let restarted = server.output();
    assert!(
        restarted.contains(&format!("resuming after report #{pending_since}")),
        "the restarted server did not resume where it stopped:\n{restarted}"
    );
}

/// With Prometheus back, the backlog is sent; then the agent stops and the last reports go
/// through, with no sample failed.
fn send_the_backlog_and_the_last_reports(
    server: &mut Process,
    agent: &mut Process,
    prometheus: &mut Process,
    http: &str,
    prom: &str,
) {
    wait_for_processes(
        "Prometheus ready again",
        Duration::from_secs(60),
        &mut [prometheus],
        || support::http::get_text(prom, "/-/ready"),
    );
    // The backlog is what was stored by now: sent once the cursor passes it (the agent goes on
    // reporting, so "nothing pending" may never be seen while it does).
    let backlog_end = {
        let r = remote(http).expect("status");
        r["cursor"].as_u64().expect("cursor") + r["reports_pending"].as_u64().expect("pending")
    };
    wait_for_processes(
        "the backlog sent",
        Duration::from_secs(90),
        &mut [server, agent, prometheus],
        || {
            let r = remote(http)?;
            (r["cursor"].as_u64()? >= backlog_end && r["samples_sent"].as_u64()? > 0).then_some(())
        },
    );
    // Stop measuring, and let the last reports through.
    agent.kill();
    std::thread::sleep(Duration::from_secs(3));
    wait_for_processes(
        "nothing pending",
        Duration::from_secs(60),
        &mut [server, prometheus],
        || (remote(http)?["reports_pending"].as_u64()? == 0).then_some(()),
    );
    let r = remote(http).expect("status");
    assert_eq!(r["samples_failed"], 0, "{r}");
}

/// The series Prometheus holds of the agent: time in ms -> value.
struct PrometheusSeries {
    cpu: BTreeMap<i64, f64>,
    ram: BTreeMap<i64, f64>,
    rx: BTreeMap<i64, f64>,
    rtt: BTreeMap<i64, f64>,
}

impl PrometheusSeries {
    fn query(prom: &str) -> PrometheusSeries {
        let cpu = samples(prom, &format!("nms_cpu_usage_ratio{{agent=\"{AGENT}\"}}")).unwrap();
        let ram = samples(
            prom,
            &format!("nms_memory_usage_ratio{{agent=\"{AGENT}\"}}"),
        )
        .unwrap();
        let rx = samples(
            prom,
            &format!("nms_interface_receive_bytes_total{{agent=\"{AGENT}\",interface=\"lo\"}}"),
        )
        .unwrap();
        let rtt = samples(
            prom,
            &format!(
                "nms_ping_rtt_avg_seconds{{agent=\"{AGENT}\",task=\"{TASK}\",destination=\"127.0.0.1\"}}"
            ),
        )
        .unwrap();
        PrometheusSeries { cpu, ram, rx, rtt }
    }

    /// What of the stored host and ping reports is not in these series as stored.
    fn missing(&self, host: &[&Value], pings: &[&Value]) -> Vec<String> {
        let mut missing = Vec::new();
        for r in host {
            let t = r["time_ms"].as_i64().unwrap();
            let want_cpu = r["cpu_percent"].as_f64().unwrap() / 100.0;
            let want_ram = r["ram_percent"].as_f64().unwrap() / 100.0;
            match (self.cpu.get(&t), self.ram.get(&t)) {
                (Some(c), Some(m)) if close(*c, want_cpu) && close(*m, want_ram) => {}
                got => missing.push(format!(
                    "host report at {t}: want {want_cpu}/{want_ram}, got {got:?}"
                )),
            }
            if let Some(want) = r["interfaces"]["lo"]["rx_bytes"].as_f64()
                && !self.rx.get(&t).is_some_and(|v| close(*v, want))
            {
                missing.push(format!(
                    "lo rx_bytes at {t}: want {want}, got {:?}",
                    self.rx.get(&t)
                ));
            }
        }
        for r in pings {
            let t = r["time_ms"].as_i64().unwrap();
            let want = r["rtt_avg_ms"].as_f64().unwrap() / 1000.0;
            if !self.rtt.get(&t).is_some_and(|v| close(*v, want)) {
                missing.push(format!(
                    "ping report at {t}: want {want}, got {:?}",
                    self.rtt.get(&t)
                ));
            }
        }
        missing
    }
}

/// Prometheus holds every report the server stored, each value at the report's own time, and
/// nothing more.
fn check_prometheus_holds_every_stored_report(server: &Process, http: &str, prom: &str) {
    let reports = stored(http).expect("the stored reports");
    let host: Vec<&Value> = reports
        .iter()
        .filter(|r| r["cpu_percent"].is_number())
        .collect();
    let pings: Vec<&Value> = reports
        .iter()
        .filter(|r| r["rtt_avg_ms"].is_number())
        .collect();
    assert!(host.len() >= 10, "{} host reports", host.len());
    assert!(pings.len() >= 10, "{} ping reports", pings.len());
    let series = PrometheusSeries::query(prom);
    let missing = series.missing(&host, &pings);
    assert!(
        missing.is_empty(),
        "{} of {} reports not in Prometheus as stored:\n{}\n--- server ---\n{}",
        missing.len(),
        host.len() + pings.len(),
        missing.join("\n"),
        support::process::tail(&server.output(), 30)
    );
    // Nothing more than the stored reports either: one sample per report and series.
    assert_eq!(series.cpu.len(), host.len(), "CPU samples vs host reports");
    assert_eq!(series.rtt.len(), pings.len(), "RTT samples vs ping reports");
}

/// A receiver that answers the first requests 503, then refuses any request with a sample of
/// `refused_family` (400, as Prometheus does for an out-of-order sample) and keeps the rest:
/// (family, time in ms) of every sample it took.
struct FakeReceiver {
    url: String,
    taken: std::sync::Arc<std::sync::Mutex<Vec<(String, i64)>>>,
}

impl FakeReceiver {
    fn start(refused_family: &'static str, unavailable_first: usize) -> FakeReceiver {
        use std::io::{BufRead, Read, Write};
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/api/v1/write", listener.local_addr().unwrap());
        let taken = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let requests = std::sync::Arc::new(AtomicUsize::new(0));
        let kept = taken.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (kept, requests) = (kept.clone(), requests.clone());
                std::thread::spawn(move || {
                    let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                    let mut writer = stream;
                    loop {
                        let mut length = 0;
                        let mut line = String::new();
                        loop {
                            line.clear();
                            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            let l = line.trim().to_ascii_lowercase();
                            if l.is_empty() {
                                break;
                            }
                            if let Some(v) = l.strip_prefix("content-length:") {
                                length = v.trim().parse().unwrap_or(0);
                            }
                        }
                        let mut body = vec![0; length];
                        if reader.read_exact(&mut body).is_err() {
                            return;
                        }
                        let n = requests.fetch_add(1, Ordering::SeqCst);
                        let request = nms::server::remote_write::proto::decode(&body).unwrap();
                        let refused = request.timeseries.iter().any(|ts| {
                            ts.labels
                                .iter()
                                .any(|l| l.name == "__name__" && l.value == refused_family)
                        });
                        let answer = if n < unavailable_first {
                            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nbusy"
                        } else if refused {
                            "HTTP/1.1 400 Bad Request\r\ncontent-length: 19\r\n\r\nout of order sample"
                        } else {
                            let mut kept = kept.lock().unwrap();
                            for ts in &request.timeseries {
                                let name = ts.labels.iter().find(|l| l.name == "__name__");
                                for s in &ts.samples {
                                    kept.push((name.unwrap().value.clone(), s.timestamp));
                                }
                            }
                            "HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"
                        };
                        if writer.write_all(answer.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        FakeReceiver { url, taken }
    }
}

#[test]
fn refused_samples_are_split_out_and_counted_and_the_rest_is_delivered_after_a_503() {
    let dir = tempfile::tempdir().expect("temp dir");
    let task = dir.path().join("task.json");
    std::fs::write(
        &task,
        support::fixtures::every_second_task(TASK, &[AGENT], &[]),
    )
    .unwrap();
    let receiver = FakeReceiver::start("nms_memory_usage_ratio", 2);
    let mut server = support::process::NmsServer::start(
        dir.path(),
        &[
            "--config",
            task.to_str().unwrap(),
            "--remote-write",
            &receiver.url,
        ],
    );
    let mut agent = server.agent(dir.path(), AGENT);
    let http = server.http.clone();
    // Enough reports; then the agent stops and everything stored is sent (the receiver was
    // unavailable at first, then refused every RAM sample).
    wait_for_processes(
        "reports sent",
        Duration::from_secs(90),
        &mut [&mut server.process, &mut agent],
        || (remote(&http)?["cursor"].as_u64()? >= 12).then_some(()),
    );
    agent.kill();
    std::thread::sleep(Duration::from_secs(2));
    let r = wait_for_processes(
        "every stored report sent",
        Duration::from_secs(60),
        &mut [&mut server.process],
        || {
            let r = remote(&http)?;
            (r["reports_pending"].as_u64()? == 0).then_some(r)
        },
    );
    assert!(r["requests_failed"].as_u64().unwrap() >= 2, "{r}");
    let reports = stored(&http).expect("stored reports");
    let host: Vec<i64> = reports
        .iter()
        .filter(|r| r["ram_percent"].is_number())
        .filter_map(|r| r["time_ms"].as_i64())
        .collect();
    let taken = receiver.taken.lock().unwrap().clone();
    assert!(
        !taken.iter().any(|(f, _)| f == "nms_memory_usage_ratio"),
        "a refused sample was kept"
    );
    // Every refused RAM sample was dropped alone, counted; every CPU sample came through.
    assert_eq!(
        r["samples_failed"].as_u64().unwrap() as usize,
        host.len(),
        "{r}"
    );
    for t in &host {
        assert!(
            taken
                .iter()
                .any(|(f, at)| f == "nms_cpu_usage_ratio" && at == t),
            "the CPU sample at {t} was not delivered"
        );
    }
    let logged = server.process.output();
    assert!(logged.contains("was refused and dropped"), "{logged}");
    assert!(logged.contains("accepts samples again"), "{logged}");
}
