//! `nms bench --store`: the time-series store's own figures. It generates a large store
//! quickly (typical reports of simulated agents with values that move as real ones do: random
//! walks at the precision each probe measures), then measures what an operator notices: bytes
//! on disk per report in the raw tier, how long a server takes from start to serving with that
//! history and with none, its memory above an empty store, and how long range queries of one
//! agent take through the HTTP API (a day and a month into 1,000 steps).

mod history;

use super::BenchError;
use super::target::process_sample;
use crate::store::partition::{DAY_MS, Tier};
use history::generate_history;
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

fn io(what: String) -> impl FnOnce(std::io::Error) -> BenchError {
    move |source| BenchError::Io { what, source }
}

fn store_error(e: crate::store::StoreError) -> BenchError {
    BenchError::Server(format!("store: {e}"))
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
        if super::target::http_json(http, None, "GET", "/api/status", None).is_ok() {
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
        let body = super::target::http_body(http, None, "GET", path, None)?;
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
    let generated = generate_history(options, data_dir, now, &mut rng, progress)?;
    let reports = generated.reports;
    let generate_seconds = generated.seconds;
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
    let served = serve_and_query(options, data_dir, empty_dir, now, reports, progress)?;
    let (query_day_ms, query_day_max_ms, query_day_tier) = served.day;
    let month = served.month;
    Ok(StoreBenchReport {
        reports,
        series: generated.series,
        generate_seconds,
        generate_per_sec: reports as f64 / generate_seconds.max(1e-9),
        raw_bytes,
        minute_bytes,
        hour_bytes,
        raw_bytes_per_report: raw_bytes as f64 / reports.max(1) as f64,
        start_ms: served.start_ms,
        start_empty_ms: served.start_empty_ms,
        rss_bytes: served.rss_bytes,
        rss_empty_bytes: served.rss_empty_bytes,
        query_day_ms,
        query_day_max_ms,
        query_day_tier,
        query_month_ms: month.as_ref().map(|m| m.0),
        query_month_max_ms: month.as_ref().map(|m| m.1),
        query_month_tier: month.map(|m| m.2),
        data_dir: None,
    })
}

/// What the servers showed: start times and memory with and without the history, and the
/// timed queries (median, largest, tier).
struct Served {
    start_ms: f64,
    start_empty_ms: f64,
    rss_bytes: u64,
    rss_empty_bytes: u64,
    day: (f64, f64, String),
    month: Option<(f64, f64, String)>,
}

/// Starts a server with no history and one with `data_dir`'s, and times queries of the
/// latter.
fn serve_and_query(
    options: &StoreBenchOptions,
    data_dir: &Path,
    empty_dir: &Path,
    now: u64,
    reports: u64,
    progress: &dyn Fn(String),
) -> Result<Served, BenchError> {
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
    let day = time_query(server.http, &day, 21)?;
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
    Ok(Served {
        start_ms,
        start_empty_ms,
        rss_bytes,
        rss_empty_bytes,
        day,
        month,
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
