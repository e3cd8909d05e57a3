//! `nms bench --store`: the time-series store's own figures. It generates a large store
//! quickly (typical reports of simulated agents with values that move as real ones do: random
//! walks at the precision each probe measures), then measures what an operator notices: bytes
//! on disk per report in the raw tier, how long a server takes from start to serving with that
//! history and with none, its memory above an empty store, and how long range queries of one
//! agent take through the HTTP API (a day and a month into 1,000 steps).

use super::BenchError;
use super::target::process_sample;
use crate::schema::{Field, Reading};
use crate::store::partition::{DAY_MS, HOUR_MS, Tier};
use crate::store::{Report, Store, StoreOptions};
use serde::Serialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What to generate and measure.
#[derive(Debug, Clone)]
pub struct StoreBenchOptions {
    /// Agents reporting over `days` at `rate` reports a second.
    pub agents: usize,
    pub days: f64,
    pub rate: f64,
    /// One more agent with a month of history (the month query).
    pub month_agent: bool,
    pub server_exe: PathBuf,
    pub work_dir: Option<PathBuf>,
    pub keep: bool,
    pub progress: bool,
    pub seed: u64,
}

/// The figures.
#[derive(Debug, Clone, Serialize)]
pub struct StoreBenchReport {
    pub reports: u64,
    pub series: usize,
    pub generate_seconds: f64,
    /// Reports generated per second (bulk load: sealed chunks and rollups, no log).
    pub generate_per_sec: f64,
    pub raw_bytes: u64,
    pub minute_bytes: u64,
    pub hour_bytes: u64,
    /// `raw_bytes / reports`: the raw tier's disk per report (13 numbers and a time).
    pub raw_bytes_per_report: f64,
    /// From `nms server` starting to its HTTP API answering, with this store and with none.
    pub start_ms: f64,
    pub start_empty_ms: f64,
    /// Resident memory of the started server, with this store and with none.
    pub rss_bytes: u64,
    pub rss_empty_bytes: u64,
    /// Median and largest time of `GET /api/metrics` for one agent over the last 24 hours at
    /// one report a second into 1,000 steps, and over 30 days into 1,000 steps: from sending
    /// the request to the last byte of the answer (loopback, HTTP/1.0).
    pub query_day_ms: f64,
    pub query_day_max_ms: f64,
    pub query_day_tier: String,
    pub query_month_ms: Option<f64>,
    pub query_month_max_ms: Option<f64>,
    pub query_month_tier: Option<String>,
    pub data_dir: Option<PathBuf>,
}

/// A random walk that stays in `[lo, hi]`.
struct Walk {
    value: f64,
    step: f64,
    lo: f64,
    hi: f64,
}

impl Walk {
    fn next(&mut self, rng: &mut fastrand::Rng) -> f64 {
        // The sum of two uniforms: steps mostly small, sometimes larger.
        let d = (rng.f64() + rng.f64() - 1.0) * self.step;
        self.value = (self.value + d).clamp(self.lo, self.hi);
        self.value
    }
}

/// One simulated agent's values.
struct Agent {
    name: String,
    cpu: Walk,
    ram: Walk,
    packets: [Walk; 2],
    bytes: [Walk; 2],
    rtt: Walk,
    spread: Walk,
}

impl Agent {
    fn new(name: String, rng: &mut fastrand::Rng) -> Agent {
        let walk = |value: f64, step: f64, lo: f64, hi: f64| Walk {
            value,
            step,
            lo,
            hi,
        };
        Agent {
            name,
            cpu: walk(rng.f64() * 40.0 + 5.0, 3.0, 0.0, 100.0),
            ram: walk(rng.f64() * 50.0 + 20.0, 0.05, 0.0, 100.0),
            packets: [
                walk(rng.f64() * 500.0 + 50.0, 20.0, 0.0, 1e6),
                walk(rng.f64() * 50.0 + 5.0, 3.0, 0.0, 1e6),
            ],
            bytes: [
                walk(rng.f64() * 5e5 + 1e4, 8e3, 0.0, 1e10),
                walk(rng.f64() * 2e4 + 1e3, 400.0, 0.0, 1e10),
            ],
            rtt: walk(0.2 + rng.f64() * 2.0, 0.02, 0.01, 1000.0),
            spread: walk(0.05, 0.005, 0.001, 10.0),
        }
    }

    /// A typical report (CPU, RAM, two interfaces, one ping) at `time_ms`, values rounded to
    /// what each probe measures (ping prints microseconds, rates come from whole counters).
    fn report(&mut self, time_ms: u64, rng: &mut fastrand::Rng) -> Report {
        let round = |v: f64, decimals: i32| {
            let f = 10f64.powi(decimals);
            (v * f).round() / f
        };
        let r = |field, instance: Option<&str>, value| Reading {
            field,
            instance: instance.map(str::to_string),
            value,
        };
        let rtt = self.rtt.next(rng);
        let spread = self.spread.next(rng);
        let lost = rng.u32(0..1000) == 0;
        let mut readings = vec![
            r(Field::CpuPercent, None, round(self.cpu.next(rng), 2)),
            r(Field::RamPercent, None, round(self.ram.next(rng), 2)),
        ];
        for (i, name) in ["eth0", "eth1"].iter().enumerate() {
            readings.push(r(
                Field::PacketsPerSec,
                Some(name),
                round(self.packets[i].next(rng), 0),
            ));
            readings.push(r(
                Field::BytesPerSec,
                Some(name),
                round(self.bytes[i].next(rng), 0),
            ));
            readings.push(r(Field::ErrorsPerSec, Some(name), 0.0));
        }
        readings.extend([
            r(Field::RttMinMs, None, round((rtt - spread).max(0.001), 3)),
            r(Field::RttAvgMs, None, round(rtt, 3)),
            r(Field::RttMaxMs, None, round(rtt + spread * 1.5, 3)),
            r(Field::JitterMs, None, round(spread / 2.0, 3)),
            r(Field::LossPercent, None, if lost { 33.333 } else { 0.0 }),
        ]);
        Report {
            agent: self.name.clone(),
            task: "bench".into(),
            target: None,
            time_ms,
            readings,
        }
    }
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> BenchError {
    move |source| BenchError::Io { what, source }
}

fn store_error(e: crate::store::StoreError) -> BenchError {
    BenchError::Server(format!("store: {e}"))
}

/// Generates the store in `data_dir`: each agent's reports from `start_ms`, an hour at a time
/// for all agents, straight into sealed hours.
fn generate(
    data_dir: &Path,
    agents: &mut [(Agent, u64)],
    start_ms: u64,
    end_ms: u64,
    rate: f64,
    rng: &mut fastrand::Rng,
    progress: &dyn Fn(String),
) -> Result<u64, BenchError> {
    let store = Store::open(
        data_dir,
        StoreOptions {
            background: false,
            durable: false,
            ..StoreOptions::default()
        },
    )
    .map_err(store_error)?;
    let interval_ms = (1000.0 / rate).max(1.0) as u64;
    let mut total = 0u64;
    let mut hour = start_ms - start_ms % HOUR_MS;
    let mut last_print = Instant::now();
    while hour < end_ms {
        let mut batch = Vec::new();
        for (agent, from) in agents.iter_mut() {
            if hour + HOUR_MS <= *from {
                continue;
            }
            let mut t = hour.max(*from) + rng.u64(0..interval_ms.min(1000));
            while t < (hour + HOUR_MS).min(end_ms) {
                batch.push(agent.report(t, rng));
                // A few milliseconds of jitter, as a scheduler on a busy host has.
                t += interval_ms + rng.u64(0..5);
            }
        }
        total += batch.len() as u64;
        store.bulk_load(&batch).map_err(store_error)?;
        if last_print.elapsed() > Duration::from_secs(5) {
            last_print = Instant::now();
            progress(format!(
                "generated {total} reports, up to {}",
                crate::log::rfc3339(hour)
            ));
        }
        hour += HOUR_MS;
    }
    Ok(total)
}

/// A child `nms server` on loopback ports over `data_dir`.
struct Server {
    child: Child,
    http: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16, BenchError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(io("finding a free port".into()))
}

/// Starts a server and measures the time until its HTTP API answers.
fn start_server(exe: &Path, data_dir: &Path) -> Result<(Server, f64), BenchError> {
    let http = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let started = Instant::now();
    let child = Command::new(exe)
        .args(["server", "--listen", "127.0.0.1", "--nettask-port", "0"])
        .args(["--alertflow-port", "0", "--http", &http.to_string()])
        .arg("--data-dir")
        .arg(data_dir)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(io(format!("starting {} server", exe.display())))?;
    let mut server = Server { child, http };
    loop {
        if super::target::http_json(http, "GET", "/api/status", None).is_ok() {
            return Ok((server, started.elapsed().as_secs_f64() * 1000.0));
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            return Err(BenchError::Server(format!("the server exited: {status}")));
        }
        if started.elapsed() > Duration::from_secs(120) {
            return Err(BenchError::Server(
                "the server did not answer within two minutes".into(),
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Times `GET path` `n` times: (median ms, largest ms, the tier the answer names).
fn time_query(http: SocketAddr, path: &str, n: usize) -> Result<(f64, f64, String), BenchError> {
    let mut times = Vec::with_capacity(n);
    let mut tier = String::new();
    for _ in 0..n {
        let started = Instant::now();
        // Until the whole answer has arrived; parsing it is the client's time.
        let body = super::target::http_body(http, "GET", path, None)?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        let value: serde_json::Value = serde_json::from_str(&body)
            .map_err(|e| BenchError::Server(format!("GET {path}: not JSON: {e}")))?;
        let steps = value["series"][0]["steps"].as_array().map_or(0, Vec::len);
        if steps == 0 {
            return Err(BenchError::Server(format!(
                "GET {path}: no steps in {value}"
            )));
        }
        tier = value["series"][0]["tier"]
            .as_str()
            .unwrap_or("")
            .to_string();
    }
    times.sort_by(f64::total_cmp);
    Ok((times[n / 2], times[n - 1], tier))
}

/// Runs the store bench.
pub fn run(options: &StoreBenchOptions) -> Result<StoreBenchReport, BenchError> {
    let progress = |text: String| {
        if options.progress {
            eprintln!("nms bench --store: {text}");
        }
    };
    let work_dir = options
        .work_dir
        .clone()
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("nms-bench-store-{}", std::process::id()));
    let data_dir = work_dir.join("server");
    let empty_dir = work_dir.join("empty");
    std::fs::create_dir_all(&data_dir).map_err(io(format!("creating {}", data_dir.display())))?;
    std::fs::create_dir_all(&empty_dir).map_err(io(format!("creating {}", empty_dir.display())))?;
    let result = measure(options, &data_dir, &empty_dir, &progress);
    if !options.keep {
        let _ = std::fs::remove_dir_all(&work_dir);
    }
    let mut report = result?;
    report.data_dir = options.keep.then_some(data_dir);
    Ok(report)
}

fn measure(
    options: &StoreBenchOptions,
    data_dir: &Path,
    empty_dir: &Path,
    progress: &dyn Fn(String),
) -> Result<StoreBenchReport, BenchError> {
    let mut rng = fastrand::Rng::with_seed(options.seed);
    let now = crate::log::now_ms();
    let span = (options.days * DAY_MS as f64) as u64;
    let mut agents: Vec<(Agent, u64)> = (0..options.agents)
        .map(|i| (Agent::new(format!("bench-{i:05}"), &mut rng), now - span))
        .collect();
    if options.month_agent {
        agents.push((
            Agent::new("bench-month".into(), &mut rng),
            now - 30 * DAY_MS,
        ));
    }
    let start = agents.iter().map(|(_, f)| *f).min().unwrap_or(now);
    progress(format!(
        "generating {} agents over {:.1} days at {} reports/s",
        agents.len(),
        options.days,
        options.rate
    ));
    let generating = Instant::now();
    let reports = generate(
        data_dir,
        &mut agents,
        start,
        now,
        options.rate,
        &mut rng,
        progress,
    )?;
    let generate_seconds = generating.elapsed().as_secs_f64();
    let root = data_dir.join("store");
    let bytes = |tier: Tier| -> u64 {
        crate::store::partition::list(&root, tier)
            .unwrap_or_default()
            .iter()
            .map(|id| crate::store::partition::file_bytes(&id.path(&root)))
            .sum()
    };
    let (raw_bytes, minute_bytes, hour_bytes) =
        (bytes(Tier::Raw), bytes(Tier::Minute), bytes(Tier::Hour));

    progress("starting a server with no history".into());
    let (empty, start_empty_ms) = start_server(&options.server_exe, empty_dir)?;
    std::thread::sleep(Duration::from_millis(500));
    let rss_empty_bytes = process_sample(empty.child.id()).map_or(0, |s| s.rss_bytes);
    drop(empty);
    progress(format!("starting a server with {reports} reports"));
    let (server, start_ms) = start_server(&options.server_exe, data_dir)?;
    std::thread::sleep(Duration::from_millis(500));
    let rss_bytes = process_sample(server.child.id()).map_or(0, |s| s.rss_bytes);

    let day_step = DAY_MS / 1000;
    let day = format!(
        "/api/metrics?agent=bench-00000&from={}&to={now}&step={}ms",
        now - DAY_MS,
        day_step
    );
    progress("timing queries".into());
    let (query_day_ms, query_day_max_ms, query_day_tier) = time_query(server.http, &day, 21)?;
    let month = if options.month_agent {
        let path = format!(
            "/api/metrics?agent=bench-month&from={}&to={now}&step={}ms",
            now - 30 * DAY_MS,
            30 * DAY_MS / 1000
        );
        Some(time_query(server.http, &path, 11)?)
    } else {
        None
    };
    drop(server);
    Ok(StoreBenchReport {
        reports,
        series: agents.len(),
        generate_seconds,
        generate_per_sec: reports as f64 / generate_seconds.max(1e-9),
        raw_bytes,
        minute_bytes,
        hour_bytes,
        raw_bytes_per_report: raw_bytes as f64 / reports.max(1) as f64,
        start_ms,
        start_empty_ms,
        rss_bytes,
        rss_empty_bytes,
        query_day_ms,
        query_day_max_ms,
        query_day_tier,
        query_month_ms: month.as_ref().map(|m| m.0),
        query_month_max_ms: month.as_ref().map(|m| m.1),
        query_month_tier: month.map(|m| m.2),
        data_dir: None,
    })
}

impl StoreBenchReport {
    pub fn to_text(&self) -> String {
        let mb = |b: u64| b as f64 / 1e6;
        let mut out = format!(
            "generated       {} reports of {} agents in {:.1} s ({:.0}/s)\n\
             raw tier        {:.1} MB: {:.2} bytes per report\n\
             minute tier     {:.1} MB, hour tier {:.1} MB\n\
             start           {:.0} ms to serving ({:.0} ms with no history)\n\
             memory          {:.1} MiB RSS ({:.1} MiB with no history)\n\
             24 h query      {:.1} ms median, {:.1} ms largest ({} tier)\n",
            self.reports,
            self.series,
            self.generate_seconds,
            self.generate_per_sec,
            mb(self.raw_bytes),
            self.raw_bytes_per_report,
            mb(self.minute_bytes),
            mb(self.hour_bytes),
            self.start_ms,
            self.start_empty_ms,
            self.rss_bytes as f64 / 1048576.0,
            self.rss_empty_bytes as f64 / 1048576.0,
            self.query_day_ms,
            self.query_day_max_ms,
            self.query_day_tier,
        );
        if let (Some(m), Some(x), Some(t)) = (
            self.query_month_ms,
            self.query_month_max_ms,
            &self.query_month_tier,
        ) {
            out.push_str(&format!(
                "30 d query      {m:.1} ms median, {x:.1} ms largest ({t} tier)\n"
            ));
        }
        out
    }
}
