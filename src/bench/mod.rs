//! `nms bench`: a load generator that measures the server against the machine it runs on.
//!
//! It starts a server (a child `nms server` in a temporary data directory, or uses a running one
//! given with `--server`), hands it task files naming N simulated agents, and runs those agents
//! as [`AgentEndpoint`](crate::nettask::AgentEndpoint)s multiplexed over a few UDP sockets
//! ([`fleet`]). Each agent registers, receives its task and sends metrics reports, at a given
//! rate or as fast as acknowledgements allow; a few optionally raise alerts over AlertFlow
//! ([`alerts`]). The run reports reports stored per second, acknowledgement and alert latency,
//! lost and duplicated reports ([`verify`]), the server's CPU and memory from `/proc`, and the
//! loopback ceiling of the same exchange without any protocol work ([`ceiling`]), measured in
//! the same run so the server's rate reads as a fraction of what the machine can do at all.

pub mod alerts;
pub mod ceiling;
pub mod fleet;
pub mod latency;
pub mod store;
pub mod target;
pub mod verify;

use crate::wire::{Ack, Body, Key, Message, Packet};
use fleet::{Control, FleetConfig, Phase};
use serde::Serialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use target::Target;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("server under test: {0}")]
    Server(String),
    #[error("{0}")]
    Setup(String),
}

/// The validated options of a run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub agents: usize,
    /// Reports per second per agent; `None`: as fast as acknowledgements allow.
    pub rate: Option<f64>,
    pub seconds: f64,
    /// A running server's NetTask address and HTTP API; `None`: start one.
    pub server: Option<(SocketAddr, SocketAddr)>,
    /// Raise alerts over AlertFlow at `alert_rate` per second.
    pub alerts: bool,
    /// The started server's `--remote-write` receiver.
    pub remote_write: Option<String>,
    pub alert_rate: f64,
    /// Threads (each with one UDP socket) the simulated agents run on.
    pub threads: usize,
    /// Reports each agent keeps unacknowledged when sending as fast as acks allow.
    pub window: usize,
    pub ceiling_seconds: f64,
    pub key: Option<Key>,
    /// The `nms` executable the server is started from.
    pub server_exe: PathBuf,
    /// Folder the temporary data directory is made in (default: the system's temp folder).
    pub work_dir: Option<PathBuf>,
    /// Keep the temporary data directory.
    pub keep: bool,
    /// Print progress to standard error.
    pub progress: bool,
    /// Kill the (child) server with SIGKILL this often while measuring, and start it again.
    pub kill_every: Option<f64>,
    /// A running server's API token (for posting the bench's tasks).
    pub token: Option<String>,
}

/// Everything a run measured. `--json` prints it as one object.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub agents: usize,
    pub rate_per_agent: Option<f64>,
    pub seconds: f64,
    pub threads: usize,
    pub window: usize,
    /// Reports the server stored per second while measuring.
    pub reports_per_sec: f64,
    /// Reports the agents saw acknowledged per second while measuring.
    pub acknowledged_per_sec: f64,
    /// Request/reply exchanges per second on loopback without protocol work.
    pub ceiling_per_sec: f64,
    /// The ceiling before the agents started and after they stopped (`ceiling_per_sec` is
    /// their mean).
    pub ceiling_before_per_sec: f64,
    pub ceiling_after_per_sec: f64,
    /// `reports_per_sec / ceiling_per_sec`.
    pub ceiling_ratio: f64,
    pub sent: u64,
    pub stored: u64,
    /// Acknowledged reports the store does not hold (the promise: always 0).
    pub lost: u64,
    pub duplicated: u64,
    pub unacknowledged: u64,
    /// Reports never acknowledged (still in flight when the run ended) that are not stored:
    /// the agents would send them again.
    pub unacknowledged_missing: u64,
    pub ack_p50_ms: Option<f64>,
    pub ack_p99_ms: Option<f64>,
    pub ack_max_ms: Option<f64>,
    pub alerts_raised: u64,
    pub alerts_acknowledged: u64,
    pub alert_p50_ms: Option<f64>,
    pub alert_p99_ms: Option<f64>,
    pub alert_max_ms: Option<f64>,
    /// Server CPU while measuring, percent of one core (a child server only).
    pub server_cpu_percent: Option<f64>,
    /// Server resident memory at the end of the measurement.
    pub server_rss_bytes: Option<u64>,
    /// Server resident memory before any agent registered.
    pub server_rss_baseline_bytes: Option<u64>,
    /// `(server_rss_bytes - server_rss_baseline_bytes) / agents`.
    pub server_bytes_per_agent: Option<f64>,
    /// CPU of the bench process itself while measuring, percent of one core.
    pub bench_cpu_percent: Option<f64>,
    /// Seconds until every agent was registered and had its task.
    pub setup_seconds: f64,
    /// UDP payload of one typical metrics report (CPU, RAM, two interfaces, one ping).
    pub report_bytes: usize,
    /// UDP payload of an ACK of one packet, and of one that also acknowledges 32 earlier ones.
    pub ack_bytes: usize,
    /// Times the server was killed with SIGKILL (and started again) while measuring.
    pub server_kills: u64,
    pub ack_bytes_max: usize,
    /// The server's first remote-write destination, when it has one.
    pub remote_write: Option<RemoteWriteFigures>,
    pub data_dir: Option<PathBuf>,
}

/// How a remote-write destination kept up while measuring (sampled every second from
/// `/api/status`), and how long it took to send the rest once the agents stopped.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RemoteWriteFigures {
    pub url: String,
    /// Lag (seconds the oldest unsent report waited) at each sample while measuring.
    pub lag_seconds: Vec<f64>,
    pub lag_seconds_max: f64,
    /// Mean lag over the first and over the second half of the measurement: growing lag
    /// shows as a second half larger than the first.
    pub lag_seconds_first_half: f64,
    pub lag_seconds_second_half: f64,
    pub reports_pending_max: u64,
    pub samples_sent: u64,
    pub samples_failed: u64,
    pub requests_failed: u64,
    /// Seconds from the end of the measurement until nothing was pending.
    pub caught_up_seconds: Option<f64>,
}

impl RemoteWriteFigures {
    fn sample(&mut self, status: &serde_json::Value) {
        let Some(r) = status["remote_write"].get(0) else {
            return;
        };
        self.url = r["url"].as_str().unwrap_or_default().to_string();
        let lag = r["lag_seconds"].as_f64().unwrap_or(0.0);
        self.lag_seconds.push(lag);
        self.lag_seconds_max = self.lag_seconds_max.max(lag);
        self.reports_pending_max = self
            .reports_pending_max
            .max(r["reports_pending"].as_u64().unwrap_or(0));
        self.samples_sent = r["samples_sent"].as_u64().unwrap_or(0);
        self.samples_failed = r["samples_failed"].as_u64().unwrap_or(0);
        self.requests_failed = r["requests_failed"].as_u64().unwrap_or(0);
    }

    fn finish_halves(&mut self) {
        let n = self.lag_seconds.len();
        let mean = |s: &[f64]| {
            if s.is_empty() {
                0.0
            } else {
                s.iter().sum::<f64>() / s.len() as f64
            }
        };
        self.lag_seconds_first_half = mean(&self.lag_seconds[..n / 2]);
        self.lag_seconds_second_half = mean(&self.lag_seconds[n / 2..]);
    }
}

/// The heartbeat interval the started server hands out: one second, longer for large fleets so
/// idle agents send at most 10,000 heartbeats a second in all (a deployment of that size would
/// set `nms server --heartbeat-ms` the same way).
pub fn heartbeat_ms(agents: usize) -> u64 {
    (agents as u64 / 10).max(1000)
}

/// Runs the benchmark.
pub fn run(options: &BenchOptions) -> Result<BenchReport, BenchError> {
    if options.agents == 0 {
        return Err(BenchError::Setup("--agents must be at least 1".into()));
    }
    let nonce = fastrand::u32(..);
    let prefix = if options.server.is_some() {
        format!("bench-{nonce:08x}")
    } else {
        "bench".to_string()
    };
    let names: Arc<Vec<String>> = Arc::new(
        (0..options.agents)
            .map(|i| format!("{prefix}-{i:06}"))
            .collect(),
    );
    let tasks = target::task_files(&prefix, &names);
    let work_dir = options
        .work_dir
        .clone()
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("nms-bench-{}-{nonce:08x}", std::process::id()));
    let progress = |text: String| {
        if options.progress {
            eprintln!("nms bench: {text}");
        }
    };

    if options.kill_every.is_some() && options.server.is_some() {
        return Err(BenchError::Setup(
            "--kill-every needs a server the bench starts (not --server)".into(),
        ));
    }
    let mut target = match options.server {
        Some((nettask, http)) => Target::remote(nettask, http, options.token.clone(), &tasks)?,
        None => {
            progress(format!("starting a server in {}", work_dir.display()));
            Target::start(
                &options.server_exe,
                &work_dir,
                &tasks,
                heartbeat_ms(options.agents),
                options.remote_write.as_deref(),
            )?
        }
    };
    let result = measure(options, &mut target, names, &progress);
    let data_dir = target.data_dir.clone();
    drop(target);
    if !options.keep && options.server.is_none() {
        let _ = std::fs::remove_dir_all(&work_dir);
    }
    let mut report = result?;
    report.data_dir = data_dir.filter(|_| options.keep);
    Ok(report)
}

/// One run: ceiling, setup, load, drain, ceiling again, then the figures.
///
/// Still long (about 180 lines) because its second half is the `BenchReport` literal, one
/// field a line; the steps before it are named functions below.
fn measure(
    options: &BenchOptions,
    target: &mut Target,
    names: Arc<Vec<String>>,
    progress: &dyn Fn(String),
) -> Result<BenchReport, BenchError> {
    std::thread::sleep(Duration::from_millis(500));
    let baseline = target.sample();
    let (report_bytes, ack_bytes, ack_bytes_max) = packet_sizes(options);

    let window = options.window.max(1);
    let ceiling_config = ceiling::CeilingConfig {
        request_len: report_bytes,
        reply_len: ack_bytes,
        client_threads: options.threads,
        in_flight: (options.agents * window).min(16_384),
        duration: Duration::from_secs_f64(options.ceiling_seconds.max(0.5)),
    };
    let measure_ceiling = || {
        progress("measuring the loopback ceiling".into());
        ceiling::measure(ceiling_config).map_err(|source| BenchError::Io {
            what: "measuring the loopback ceiling".into(),
            source,
        })
    };
    // Measured before and after the load, and averaged, so drift on a shared machine
    // weighs on both sides of the ratio alike.
    let ceiling_before = measure_ceiling()?;

    let base_ms = crate::log::now_ms();
    let control = Arc::new(Control::default());
    let workers = fleet::spawn(
        FleetConfig {
            server: target.nettask,
            names: names.clone(),
            threads: options.threads,
            rate: options.rate,
            window,
            key: options.key.clone(),
            base_ms,
            max_starting: 256,
        },
        control.clone(),
    )
    .map_err(|source| BenchError::Io {
        what: "starting the simulated agents".into(),
        source,
    })?;
    let stop = |control: &Control| control.set_phase(Phase::Exit);

    let setup_seconds = wait_for_setup(options, &control, progress)?;
    progress(format!(
        "{} agents ready in {setup_seconds:.1} s; measuring for {} s",
        options.agents, options.seconds
    ));
    std::thread::sleep(Duration::from_millis(500));

    // Measure.
    let mut remote_figures = target
        .status()
        .ok()
        .filter(|s| s["remote_write"].get(0).is_some())
        .map(|_| RemoteWriteFigures::default());
    let stored_before = target.metrics_stored()?;
    let server_before = target.sample();
    let bench_before = target::process_sample(std::process::id());
    let started = Instant::now();
    control.set_phase(Phase::Measure);
    let raiser = options.alerts.then(|| {
        let control = control.clone();
        let (server, rate, key) = (target.nettask, options.alert_rate, options.key.clone());
        std::thread::spawn(move || alerts::run(server, control, rate, 8, key))
    });
    let server_kills = run_load(options, target, started, remote_figures.as_mut(), progress)?;
    control.set_phase(Phase::Drain);
    let elapsed = started.elapsed().as_secs_f64();
    let server_after = target.sample();
    let bench_after = target::process_sample(std::process::id());
    let stored_after = target.metrics_stored()?;
    let acknowledged = control.acknowledged.load(Ordering::Relaxed);

    let stored_total = drain(target, &control, progress)?;
    stop(&control);
    if let Some(figures) = remote_figures.as_mut() {
        wait_for_remote_write(target, figures, started, elapsed, progress);
    }
    let ceiling_after = measure_ceiling()?;
    let ceiling_per_sec = (ceiling_before + ceiling_after) / 2.0;
    let alert_result = raiser
        .map(|h| h.join().unwrap_or_default())
        .unwrap_or_default();
    let Joined {
        mut latencies,
        sent,
        unacknowledged,
        never_acknowledged,
    } = join_workers(workers, &names)?;
    let sent_total: u64 = sent.values().sum();
    let delivery = match target.data_dir.clone() {
        Some(dir) => {
            // Stopped the hard way: what the store holds is what a crash would leave.
            target.kill();
            verify::check_store(&dir, base_ms, &sent, &never_acknowledged).map_err(|e| {
                BenchError::Server(format!("reading the store in {}: {e}", dir.display()))
            })?
        }
        None => {
            // A running server's counters tell how many, not which: missing reports count as
            // lost beyond those never acknowledged.
            let stored = stored_total.saturating_sub(stored_before);
            let missing = sent_total.saturating_sub(stored);
            verify::Delivery {
                lost: missing.saturating_sub(unacknowledged),
                unacknowledged_missing: missing.min(unacknowledged),
                duplicated: stored.saturating_sub(sent_total),
                stored,
            }
        }
    };

    let ack_summary = latencies.summary();
    let mut alert_latencies = alert_result.latencies;
    let alert_summary = alert_latencies.summary();
    let cpu_percent = |before: Option<target::ProcessSample>,
                       after: Option<target::ProcessSample>| {
        Some((after?.cpu_seconds - before?.cpu_seconds) / elapsed * 100.0)
    };
    // Counters start again with a restarted server: then the acknowledged rate stands in.
    let reports_per_sec = if server_kills > 0 {
        acknowledged as f64 / elapsed
    } else {
        stored_after.saturating_sub(stored_before) as f64 / elapsed
    };
    let server_rss = server_after.map(|s| s.rss_bytes);
    Ok(BenchReport {
        agents: options.agents,
        rate_per_agent: options.rate,
        seconds: elapsed,
        threads: options.threads,
        window,
        reports_per_sec,
        acknowledged_per_sec: acknowledged as f64 / elapsed,
        ceiling_per_sec,
        ceiling_before_per_sec: ceiling_before,
        ceiling_after_per_sec: ceiling_after,
        ceiling_ratio: if ceiling_per_sec > 0.0 {
            reports_per_sec / ceiling_per_sec
        } else {
            0.0
        },
        sent: sent_total,
        stored: delivery.stored,
        lost: delivery.lost,
        duplicated: delivery.duplicated,
        unacknowledged,
        unacknowledged_missing: delivery.unacknowledged_missing,
        ack_p50_ms: ack_summary.p50_ms,
        ack_p99_ms: ack_summary.p99_ms,
        ack_max_ms: ack_summary.max_ms,
        alerts_raised: alert_result.raised,
        alerts_acknowledged: alert_result.acknowledged,
        alert_p50_ms: alert_summary.p50_ms,
        alert_p99_ms: alert_summary.p99_ms,
        alert_max_ms: alert_summary.max_ms,
        server_cpu_percent: cpu_percent(server_before, server_after),
        server_rss_bytes: server_rss,
        server_rss_baseline_bytes: baseline.map(|s| s.rss_bytes),
        server_bytes_per_agent: match (server_rss, baseline) {
            (Some(rss), Some(b)) => {
                Some(rss.saturating_sub(b.rss_bytes) as f64 / options.agents as f64)
            }
            _ => None,
        },
        bench_cpu_percent: cpu_percent(bench_before, bench_after),
        setup_seconds,
        report_bytes,
        ack_bytes,
        ack_bytes_max,
        server_kills,
        remote_write: remote_figures,
        data_dir: None,
    })
}

/// The encoded sizes of a typical metrics report, of the emptiest ACK and of the fullest ACK
/// the server sends this agent id.
fn packet_sizes(options: &BenchOptions) -> (usize, usize, usize) {
    let report_bytes = Packet {
        keyed: options.key.is_some(),
        agent_id: options.agents as u32,
        body: Body::Reliable {
            seq: 0xfff0,
            message: Message::Metrics(fleet::typical_report(1, crate::log::now_ms())),
        },
    }
    .encode(options.key.as_ref())
    .len();
    let ack = |earlier| {
        Packet {
            keyed: options.key.is_some(),
            agent_id: options.agents as u32,
            body: Body::Ack(Ack {
                seq: 0xfff0,
                earlier,
            }),
        }
        .encode(options.key.as_ref())
        .len()
    };
    // The fullest ACK the server sends this agent id: as many earlier packets as its bitmap
    // may hold.
    let bits = crate::nettask::ack_bitmap_bits(options.agents as u32);
    let fullest = if bits == 0 {
        0
    } else {
        u32::MAX >> (32 - bits)
    };
    let (ack_bytes, ack_bytes_max) = (ack(0), ack(fullest));
    (report_bytes, ack_bytes, ack_bytes_max)
}

/// Waits until every agent has registered and received its task; gives up (and stops the
/// fleet) when the count has not moved for 30 s. Returns the seconds it took.
fn wait_for_setup(
    options: &BenchOptions,
    control: &Control,
    progress: &dyn Fn(String),
) -> Result<f64, BenchError> {
    // Setup: every agent registers and receives its task.
    let setup_start = Instant::now();
    let mut last_ready = 0;
    let mut last_change = Instant::now();
    let mut last_print = Instant::now();
    loop {
        let ready = control.ready.load(Ordering::Relaxed) as usize;
        if ready >= options.agents {
            break;
        }
        if ready != last_ready {
            last_ready = ready;
            last_change = Instant::now();
        }
        if last_change.elapsed() > Duration::from_secs(30) {
            control.set_phase(Phase::Exit);
            return Err(BenchError::Server(format!(
                "only {ready} of {} agents were registered and given a task after {:.0} s",
                options.agents,
                setup_start.elapsed().as_secs_f64()
            )));
        }
        if last_print.elapsed() > Duration::from_secs(2) {
            last_print = Instant::now();
            progress(format!("{ready} of {} agents ready", options.agents));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(setup_start.elapsed().as_secs_f64())
}

/// Holds the load for `options.seconds` from `started`: kills and restarts the server every
/// `kill_every` seconds when asked, or else samples remote write's figures once a second.
/// Returns how many times the server was killed.
fn run_load(
    options: &BenchOptions,
    target: &mut Target,
    started: Instant,
    mut remote_figures: Option<&mut RemoteWriteFigures>,
    progress: &dyn Fn(String),
) -> Result<u64, BenchError> {
    let mut server_kills = 0;
    match options.kill_every {
        Some(every) => {
            let end = started + Duration::from_secs_f64(options.seconds);
            while Instant::now() + Duration::from_secs_f64(every) < end {
                std::thread::sleep(Duration::from_secs_f64(every));
                progress("killing the server (SIGKILL) and starting it again".to_string());
                target.restart()?;
                server_kills += 1;
            }
            std::thread::sleep(end.saturating_duration_since(Instant::now()));
        }
        None => {
            let end = started + Duration::from_secs_f64(options.seconds);
            loop {
                let left = end.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                std::thread::sleep(left.min(Duration::from_secs(1)));
                if let Some(figures) = remote_figures.as_deref_mut()
                    && let Ok(status) = target.status()
                {
                    figures.sample(&status);
                }
            }
        }
    }
    Ok(server_kills)
}

/// Waits (at most 20 s) for every report to be acknowledged, then until the stored count has
/// stood still for a second. Returns that count.
fn drain(target: &Target, control: &Control, progress: &dyn Fn(String)) -> Result<u64, BenchError> {
    // Drain: every report acknowledged, then stored.
    progress("waiting for outstanding reports".into());
    let deadline = Instant::now() + Duration::from_secs(20);
    while control.outstanding.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut stored_total = target.metrics_stored()?;
    let mut still = Instant::now();
    while still.elapsed() < Duration::from_millis(1000) {
        std::thread::sleep(Duration::from_millis(100));
        let now = target.metrics_stored()?;
        if now != stored_total {
            stored_total = now;
            still = Instant::now();
        }
    }
    Ok(stored_total)
}

/// Waits (at most 120 s) for remote write to send what is pending, and records when it caught
/// up and how many samples it sent.
fn wait_for_remote_write(
    target: &Target,
    figures: &mut RemoteWriteFigures,
    started: Instant,
    elapsed: f64,
    progress: &dyn Fn(String),
) {
    figures.finish_halves();
    progress("waiting for remote write to send the rest".into());
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let Ok(status) = target.status() else { break };
        let pending = status["remote_write"][0]["reports_pending"]
            .as_u64()
            .unwrap_or(0);
        if pending == 0 {
            figures.caught_up_seconds = Some(started.elapsed().as_secs_f64() - elapsed);
            figures.samples_sent = status["remote_write"][0]["samples_sent"]
                .as_u64()
                .unwrap_or(0);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What the simulated-agent threads report, merged and keyed by agent name.
struct Joined {
    latencies: latency::Latencies,
    sent: HashMap<String, u64>,
    unacknowledged: u64,
    never_acknowledged: HashMap<String, std::collections::HashSet<u64>>,
}

/// Joins the simulated-agent threads and merges what they report.
fn join_workers(
    workers: Vec<std::thread::JoinHandle<fleet::WorkerResult>>,
    names: &[String],
) -> Result<Joined, BenchError> {
    let mut latencies = latency::Latencies::default();
    let mut sent: HashMap<String, u64> = HashMap::new();
    let mut unacknowledged = 0;
    let mut never_acknowledged: HashMap<String, std::collections::HashSet<u64>> = HashMap::new();
    for w in workers {
        let r = w
            .join()
            .map_err(|_| BenchError::Setup("a simulated-agent thread panicked".into()))?;
        latencies.merge(r.latencies);
        unacknowledged += r.unacknowledged;
        for (i, n) in r.sent {
            sent.insert(names[i].clone(), n);
        }
        for (i, reports) in r.never_acknowledged {
            never_acknowledged.insert(names[i].clone(), reports.into_iter().collect());
        }
    }
    Ok(Joined {
        latencies,
        sent,
        unacknowledged,
        never_acknowledged,
    })
}

impl BenchReport {
    /// The report as text, one figure a line.
    ///
    /// Long because it is a flat list, one line per figure; splitting it would only scatter the
    /// order of the lines.
    pub fn to_text(&self) -> String {
        let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3} ms"));
        let opt =
            |v: Option<f64>, unit: &str| v.map_or("-".to_string(), |v| format!("{v:.1}{unit}"));
        let mut out = String::new();
        let rate = self
            .rate_per_agent
            .map_or("as fast as acks allow".to_string(), |r| {
                format!("{r}/s each")
            });
        out += &format!(
            "agents             {} ({rate}, window {}, {} thread(s)), {:.1} s measured\n",
            self.agents, self.window, self.threads, self.seconds
        );
        out += &format!(
            "while measuring    {:.0} reports/s stored by the server, {:.0}/s acknowledged to the agents\n",
            self.reports_per_sec, self.acknowledged_per_sec
        );
        out += &format!(
            "loopback ceiling   {:.0}/s (before {:.0}/s, after {:.0}/s): the server reaches {:.1}% of it\n",
            self.ceiling_per_sec,
            self.ceiling_before_per_sec,
            self.ceiling_after_per_sec,
            self.ceiling_ratio * 100.0
        );
        out += &format!(
            "whole run          {} sent, {} stored, {} lost (acknowledged, not stored), {} duplicated, {} unacknowledged ({} of them not stored) (every report of the run, warm-up included)\n",
            self.sent,
            self.stored,
            self.lost,
            self.duplicated,
            self.unacknowledged,
            self.unacknowledged_missing
        );
        out += &format!(
            "ack latency        p50 {}  p99 {}  max {}\n",
            ms(self.ack_p50_ms),
            ms(self.ack_p99_ms),
            ms(self.ack_max_ms)
        );
        if self.alerts_raised > 0 {
            out += &format!(
                "alert latency      p50 {}  p99 {}  max {} ({} of {} acknowledged)\n",
                ms(self.alert_p50_ms),
                ms(self.alert_p99_ms),
                ms(self.alert_max_ms),
                self.alerts_acknowledged,
                self.alerts_raised
            );
        }
        let mib = |b: Option<u64>| b.map(|b| b as f64 / (1024.0 * 1024.0));
        out += &format!(
            "server             cpu {} of one core, rss {} (baseline {}, {} per agent)\n",
            opt(self.server_cpu_percent, "%"),
            opt(mib(self.server_rss_bytes), " MiB"),
            opt(mib(self.server_rss_baseline_bytes), " MiB"),
            opt(self.server_bytes_per_agent, " B"),
        );
        out += &format!(
            "bench process      cpu {} of one core; setup took {:.1} s\n",
            opt(self.bench_cpu_percent, "%"),
            self.setup_seconds
        );
        out += &format!(
            "on the wire        metrics report {} bytes, ACK {} bytes ({} acknowledging the most earlier packets)\n",
            self.report_bytes, self.ack_bytes, self.ack_bytes_max
        );
        if let Some(r) = &self.remote_write {
            out += &format!(
                "remote write       {}: lag max {:.1} s (mean {:.1} s in the first half, {:.1} s in the second), at most {} reports pending, {} samples sent, {} failed, {} requests failed; the rest sent {} after the end\n",
                r.url,
                r.lag_seconds_max,
                r.lag_seconds_first_half,
                r.lag_seconds_second_half,
                r.reports_pending_max,
                r.samples_sent,
                r.samples_failed,
                r.requests_failed,
                r.caught_up_seconds
                    .map_or("not within 120 s".to_string(), |s| format!("{s:.1} s"))
            );
        }
        if let Some(d) = &self.data_dir {
            out += &format!("data kept in       {}\n", d.display());
        }
        out
    }
}
