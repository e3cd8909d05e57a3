//! The server's embedded durable store: metrics and alerts, in the data directory, no setup.
//!
//! Each kind of record goes to its own append-only JSON-lines log (`metrics.jsonl`,
//! `alerts.jsonl`), written in batches that are made durable (fdatasync) before they are
//! acknowledged. A bounded in-memory index of recent records per agent serves queries; it is
//! rebuilt from the logs on start, so a restart loses nothing stored. Metrics are stored once per
//! (agent, task, time) and alerts once per alert id, however often they arrive.

mod index;
pub(crate) mod log;

use crate::wire::{Alert, AlertType, LinkState, MetricsReport, Sample, Severity, Transport};
use index::MetricIndex;
pub use index::{
    DEDUP_WINDOW, MIN_RECENT_METRICS_PER_AGENT, RECENT_METRICS_BUDGET, RECENT_METRICS_PER_AGENT,
};
use log::JsonLog;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};

/// Recent alerts kept in memory for queries.
pub const RECENT_ALERTS: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create data directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write to {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// An interface's rates in one report.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct InterfaceRates {
    pub packets_per_sec: f64,
    pub bytes_per_sec: f64,
    pub errors_per_sec: f64,
    /// The link state the agent saw (records stored before agents reported it have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<LinkState>,
}

/// One stored metrics report: named numeric fields, NaN (not measured) left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricRecord {
    pub agent: String,
    pub task: String,
    pub time_ms: u64,
    /// What the report measured towards (ping destination or iperf server), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub values: BTreeMap<String, f64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub interfaces: BTreeMap<String, InterfaceRates>,
}

impl MetricRecord {
    /// Flattens a wire report into named fields: `cpu_percent`, `ram_percent`, `rtt_min_ms`,
    /// `rtt_avg_ms`, `rtt_max_ms`, `jitter_ms`, `loss_percent`, `bandwidth_bps` (TCP iperf),
    /// `udp_bandwidth_bps` and `udp_offered_bps` (UDP iperf: achieved and offered), and per
    /// interface `packets_per_sec`, `bytes_per_sec`, `errors_per_sec` and its `state`.
    pub fn from_report(
        agent: &str,
        task: &str,
        target: Option<String>,
        report: &MetricsReport,
    ) -> Self {
        let mut values = BTreeMap::new();
        let mut interfaces = BTreeMap::new();
        let mut put = |name: &str, v: f32| {
            if v.is_finite() {
                values.insert(name.to_string(), widen(v));
            }
        };
        for sample in &report.samples {
            match sample {
                Sample::Cpu { percent } => put("cpu_percent", *percent),
                Sample::Ram { percent } => put("ram_percent", *percent),
                Sample::Ping {
                    rtt_min_ms,
                    rtt_avg_ms,
                    rtt_max_ms,
                    jitter_ms,
                    loss_percent,
                } => {
                    put("rtt_min_ms", *rtt_min_ms);
                    put("rtt_avg_ms", *rtt_avg_ms);
                    put("rtt_max_ms", *rtt_max_ms);
                    put("jitter_ms", *jitter_ms);
                    put("loss_percent", *loss_percent);
                }
                Sample::Iperf {
                    transport,
                    bandwidth_bps,
                    offered_bps,
                    jitter_ms,
                    loss_percent,
                } => match transport {
                    Transport::Tcp => put("bandwidth_bps", *bandwidth_bps),
                    Transport::Udp => {
                        put("udp_bandwidth_bps", *bandwidth_bps);
                        put("udp_offered_bps", *offered_bps);
                        put("jitter_ms", *jitter_ms);
                        put("loss_percent", *loss_percent);
                    }
                },
                Sample::Interface {
                    name,
                    state,
                    packets_per_sec,
                    bytes_per_sec,
                    errors_per_sec,
                } => {
                    let finite = |v: f32| if v.is_finite() { widen(v) } else { 0.0 };
                    interfaces.insert(
                        name.clone(),
                        InterfaceRates {
                            packets_per_sec: finite(*packets_per_sec),
                            bytes_per_sec: finite(*bytes_per_sec),
                            errors_per_sec: finite(*errors_per_sec),
                            state: Some(*state),
                        },
                    );
                }
            }
        }
        MetricRecord {
            agent: agent.to_string(),
            task: task.to_string(),
            time_ms: report.time_ms,
            target,
            values,
            interfaces,
        }
    }
}

/// An `f32` as the `f64` with the same shortest decimal form (0.024, not 0.024000000208616257).
fn widen(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(f64::from(v))
}

/// One stored alert, as raised plus when the server received it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRecord {
    pub alert_id: u64,
    pub agent: String,
    pub task: String,
    pub kind: AlertType,
    pub severity: Severity,
    pub value: f64,
    pub threshold: f64,
    pub time_ms: u64,
    pub rule: String,
    pub message: String,
    pub received_ms: u64,
    /// Nonzero: this record says that alert `resolves` stopped firing (at `time_ms`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub resolves: u64,
    /// When this alert stopped firing, once a resolution arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_ms: Option<u64>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl AlertRecord {
    pub fn from_alert(alert: &Alert, received_ms: u64) -> Self {
        AlertRecord {
            alert_id: alert.alert_id,
            agent: alert.agent.clone(),
            task: alert.task.clone(),
            kind: alert.alert_type,
            severity: alert.severity,
            value: alert.value,
            threshold: alert.threshold,
            time_ms: alert.time_ms,
            rule: alert.rule.clone(),
            message: alert.message.clone(),
            received_ms,
            resolves: alert.resolves,
            resolved_ms: None,
        }
    }
}

/// Whether a record was new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    New,
    Duplicate,
}

/// A query over stored records.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub agent: Option<String>,
    pub since_ms: Option<u64>,
    pub limit: Option<usize>,
}

/// Counters a store keeps.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StoreStats {
    pub metrics_stored: u64,
    pub metrics_duplicates: u64,
    pub alerts_stored: u64,
    pub alerts_duplicates: u64,
}

#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    metrics_log: JsonLog,
    alerts_log: JsonLog,
    metrics: MetricIndex,
    alerts: VecDeque<AlertRecord>,
    /// Records saying that an alert stopped firing.
    resolutions: VecDeque<AlertRecord>,
    alert_ids: HashSet<u64>,
    pub stats: StoreStats,
}

impl Store {
    /// Opens the store in `dir`, creating it if needed, and loads what it holds.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let open_err = |path: PathBuf| move |source| StoreError::Open { path, source };
        let metrics_path = dir.join("metrics.jsonl");
        let alerts_path = dir.join("alerts.jsonl");
        let (metrics_log, metrics, m_recovery) =
            JsonLog::open::<MetricRecord>(&metrics_path).map_err(open_err(metrics_path.clone()))?;
        let (alerts_log, alerts, a_recovery) =
            JsonLog::open::<AlertRecord>(&alerts_path).map_err(open_err(alerts_path.clone()))?;
        for (path, r) in [(&metrics_path, &m_recovery), (&alerts_path, &a_recovery)] {
            if r.truncated_bytes > 0 {
                crate::log::event(
                    crate::log::Level::Warn,
                    "STORE",
                    format_args!(
                        "{}: cut {} bytes of an incomplete last record (interrupted write)",
                        path.display(),
                        r.truncated_bytes
                    ),
                );
            }
            if !r.bad_lines.is_empty() {
                crate::log::event(
                    crate::log::Level::Warn,
                    "STORE",
                    format_args!(
                        "{}: skipped {} unreadable line(s), first at line {}",
                        path.display(),
                        r.bad_lines.len(),
                        r.bad_lines[0]
                    ),
                );
            }
        }
        let mut store = Store {
            dir: dir.to_path_buf(),
            metrics_log,
            alerts_log,
            metrics: MetricIndex::default(),
            alerts: VecDeque::new(),
            resolutions: VecDeque::new(),
            alert_ids: HashSet::new(),
            stats: StoreStats::default(),
        };
        for m in metrics {
            store.index_metric(m);
        }
        for a in alerts {
            store.index_alert(a);
        }
        Ok(store)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn index_metric(&mut self, m: MetricRecord) -> bool {
        if self.metrics.seen(&m) {
            return false;
        }
        self.metrics.mark(&m);
        self.metrics.insert(&m);
        true
    }

    fn index_alert(&mut self, a: AlertRecord) -> bool {
        if !self.alert_ids.insert(a.alert_id) {
            return false;
        }
        if a.resolves != 0 {
            if let Some(original) = self
                .alerts
                .iter_mut()
                .rev()
                .find(|o| o.alert_id == a.resolves)
            {
                original.resolved_ms = Some(a.time_ms);
            }
            self.resolutions.push_back(a);
            if self.resolutions.len() > RECENT_ALERTS {
                self.resolutions.pop_front();
            }
            return true;
        }
        self.alerts.push_back(a);
        if self.alerts.len() > RECENT_ALERTS {
            self.alerts.pop_front();
        }
        true
    }

    /// Stores a batch of metrics durably; returns, per record, whether it was new.
    pub fn store_metrics(&mut self, records: Vec<MetricRecord>) -> Result<Vec<Stored>, StoreError> {
        let mut fresh = Vec::with_capacity(records.len());
        let mut outcome = Vec::with_capacity(records.len());
        for r in records {
            // Marked as it is checked, so a copy later in the same batch is a duplicate too.
            if self.metrics.seen(&r) {
                self.stats.metrics_duplicates += 1;
                outcome.push(Stored::Duplicate);
            } else {
                self.metrics.mark(&r);
                outcome.push(Stored::New);
                fresh.push(r);
            }
        }
        if let Err(source) = self.metrics_log.append(&fresh) {
            for r in &fresh {
                self.metrics.unmark(r);
            }
            return Err(StoreError::Write {
                path: self.metrics_log.path().to_path_buf(),
                source,
            });
        }
        self.stats.metrics_stored += fresh.len() as u64;
        for r in &fresh {
            self.metrics.insert(r);
        }
        Ok(outcome)
    }

    /// Stores an alert durably, once per alert id.
    pub fn store_alert(&mut self, record: AlertRecord) -> Result<Stored, StoreError> {
        let outcome = self.store_alerts(vec![record])?;
        Ok(outcome.first().copied().unwrap_or(Stored::Duplicate))
    }

    /// Stores a batch of alerts durably with one write and one fdatasync (a liveness check
    /// that finds thousands of agents silent raises thousands at once); returns, per alert,
    /// whether it was new.
    pub fn store_alerts(&mut self, records: Vec<AlertRecord>) -> Result<Vec<Stored>, StoreError> {
        let mut fresh: Vec<AlertRecord> = Vec::with_capacity(records.len());
        let mut ids = HashSet::new();
        let mut outcome = Vec::with_capacity(records.len());
        for r in records {
            if self.alert_ids.contains(&r.alert_id) || !ids.insert(r.alert_id) {
                self.stats.alerts_duplicates += 1;
                outcome.push(Stored::Duplicate);
            } else {
                outcome.push(Stored::New);
                fresh.push(r);
            }
        }
        self.alerts_log
            .append(&fresh)
            .map_err(|source| StoreError::Write {
                path: self.alerts_log.path().to_path_buf(),
                source,
            })?;
        self.stats.alerts_stored += fresh.len() as u64;
        for r in fresh {
            self.index_alert(r);
        }
        Ok(outcome)
    }

    /// Recent metrics matching the query, oldest first; with a limit, the newest `limit`.
    /// How many are kept per agent depends on how many agents share
    /// [`RECENT_METRICS_BUDGET`]; the log on disk holds every record.
    pub fn metrics(&self, q: &Query) -> Vec<MetricRecord> {
        self.metrics.query(q)
    }

    /// The newest record of each (agent, task, target) and measurement (host metrics, ping, TCP
    /// or UDP iperf), for the Prometheus exposition.
    pub fn latest(&self) -> Vec<MetricRecord> {
        self.metrics.latest()
    }

    /// Recent resolutions (records that an alert stopped firing), oldest first.
    pub fn resolutions(&self, q: &Query) -> Vec<AlertRecord> {
        let mut out: Vec<AlertRecord> = self
            .resolutions
            .iter()
            .filter(|a| q.agent.as_deref().is_none_or(|agent| a.agent == agent))
            .filter(|a| q.since_ms.is_none_or(|since| a.time_ms >= since))
            .cloned()
            .collect();
        if let Some(limit) = q.limit
            && out.len() > limit
        {
            out.drain(..out.len() - limit);
        }
        out
    }

    /// Recent alerts matching the query, oldest first; with a limit, the newest `limit`.
    pub fn alerts(&self, q: &Query) -> Vec<AlertRecord> {
        let mut out: Vec<AlertRecord> = self
            .alerts
            .iter()
            .filter(|a| q.agent.as_deref().is_none_or(|agent| a.agent == agent))
            .filter(|a| q.since_ms.is_none_or(|since| a.time_ms >= since))
            .cloned()
            .collect();
        out.sort_by_key(|a| (a.time_ms, a.alert_id));
        if let Some(limit) = q.limit
            && out.len() > limit
        {
            out.drain(..out.len() - limit);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(agent: &str, t: u64, cpu: f32) -> MetricRecord {
        MetricRecord::from_report(
            agent,
            "t1",
            None,
            &MetricsReport {
                task_number: 1,
                time_ms: t,
                samples: vec![
                    Sample::Cpu { percent: cpu },
                    Sample::Ping {
                        rtt_min_ms: f32::NAN,
                        rtt_avg_ms: f32::NAN,
                        rtt_max_ms: f32::NAN,
                        jitter_ms: f32::NAN,
                        loss_percent: 100.0,
                    },
                ],
            },
        )
    }

    fn alert(id: u64) -> AlertRecord {
        AlertRecord {
            alert_id: id,
            agent: "r1".into(),
            task: "t1".into(),
            kind: AlertType::Cpu,
            severity: Severity::Warning,
            value: 95.0,
            threshold: 80.0,
            time_ms: 1000 + id,
            rule: "condition:cpu_usage".into(),
            message: "hot".into(),
            received_ms: 2000,
            resolves: 0,
            resolved_ms: None,
        }
    }

    #[test]
    fn records_survive_reopen_and_are_stored_once() {
        let dir = std::env::temp_dir().join(format!("nms-store-{}", fastrand::u64(..)));
        {
            let mut s = Store::open(&dir).unwrap();
            let out = s
                .store_metrics(vec![
                    record("r1", 1, 5.0),
                    record("r1", 2, 6.0),
                    record("r1", 1, 5.0),
                ])
                .unwrap();
            assert_eq!(out, vec![Stored::New, Stored::New, Stored::Duplicate]);
            assert_eq!(s.store_alert(alert(7)).unwrap(), Stored::New);
            assert_eq!(s.store_alert(alert(7)).unwrap(), Stored::Duplicate);
        }
        let mut s = Store::open(&dir).unwrap();
        let m = s.metrics(&Query {
            agent: Some("r1".into()),
            ..Query::default()
        });
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].values["cpu_percent"], 5.0);
        assert!(!m[0].values.contains_key("rtt_avg_ms"), "NaN is left out");
        assert_eq!(m[0].values["loss_percent"], 100.0);
        assert_eq!(
            s.store_metrics(vec![record("r1", 2, 6.0)]).unwrap(),
            vec![Stored::Duplicate]
        );
        assert_eq!(s.store_alert(alert(7)).unwrap(), Stored::Duplicate);
        assert_eq!(s.alerts(&Query::default()).len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_torn_last_line_is_cut_and_the_rest_kept() {
        let dir = std::env::temp_dir().join(format!("nms-store-{}", fastrand::u64(..)));
        {
            let mut s = Store::open(&dir).unwrap();
            s.store_alert(alert(1)).unwrap();
        }
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join("alerts.jsonl"))
            .unwrap();
        f.write_all(b"{\"alert_id\":2,\"ag").unwrap();
        drop(f);
        let mut s = Store::open(&dir).unwrap();
        assert_eq!(s.alerts(&Query::default()).len(), 1);
        s.store_alert(alert(3)).unwrap();
        drop(s);
        let s = Store::open(&dir).unwrap();
        let ids: Vec<u64> = s
            .alerts(&Query::default())
            .iter()
            .map(|a| a.alert_id)
            .collect();
        assert_eq!(ids, vec![1, 3]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
