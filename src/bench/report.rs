//! The figures of a run: [`BenchReport`] (what `--json` prints as one object) with
//! [`RemoteWriteFigures`] for a remote-write destination, and the report as text, one figure a
//! line (what `nms bench` prints and BENCHMARKS.md quotes).

use serde::Serialize;
use std::path::PathBuf;

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
    pub(super) fn sample(&mut self, status: &serde_json::Value) {
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

    pub(super) fn finish_halves(&mut self) {
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

impl BenchReport {
    /// The report as text, one figure a line.
    pub fn to_text(&self) -> String {
        let mut out = self.throughput_text();
        out += &self.latency_text();
        out += &self.footprint_text();
        if let Some(r) = &self.remote_write {
            out += &r.to_text();
        }
        if let Some(d) = &self.data_dir {
            out += &format!("data kept in       {}\n", d.display());
        }
        out
    }

    /// The lines on the load: what was asked, the rates reached, the ceiling, and every report's
    /// fate.
    fn throughput_text(&self) -> String {
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
        out
    }

    /// The acknowledgement latency line, and the alert latency line when alerts were raised.
    fn latency_text(&self) -> String {
        let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3} ms"));
        let mut out = format!(
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
        out
    }

    /// The lines on what the run cost: the server's and the bench's CPU and memory, and the
    /// size of the packets on the wire.
    fn footprint_text(&self) -> String {
        let opt =
            |v: Option<f64>, unit: &str| v.map_or("-".to_string(), |v| format!("{v:.1}{unit}"));
        let mib = |b: Option<u64>| b.map(|b| b as f64 / (1024.0 * 1024.0));
        let mut out = format!(
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
        out
    }
}

impl RemoteWriteFigures {
    /// The remote-write line of the text report.
    fn to_text(&self) -> String {
        format!(
            "remote write       {}: lag max {:.1} s (mean {:.1} s in the first half, {:.1} s in the second), at most {} reports pending, {} samples sent, {} failed, {} requests failed; the rest sent {} after the end\n",
            self.url,
            self.lag_seconds_max,
            self.lag_seconds_first_half,
            self.lag_seconds_second_half,
            self.reports_pending_max,
            self.samples_sent,
            self.samples_failed,
            self.requests_failed,
            self.caught_up_seconds
                .map_or("not within 120 s".to_string(), |s| format!("{s:.1} s"))
        )
    }
}
