//! `GET /metrics`: the latest values in the Prometheus text exposition format (version 0.0.4),
//! checked by `promtool check metrics`, the way exporters do it.
//!
//! The report families come from the one metric schema ([`crate::schema::FIELDS`]). Names and
//! units follow Prometheus conventions: an `nms_` prefix, base units in the name
//! (seconds, bytes, ratios in 0..1), `_total` on counters, `_timestamp_seconds` on Unix times.
//! Every family has HELP and TYPE lines, label values are escaped, a series appears once, and
//! values are finite or written `NaN`/`+Inf`/`-Inf`.
//!
//! Only what is measured now is exported: the series of an agent that is down, or forgotten,
//! are gone from the next scrape (Prometheus marks them stale), as an exporter's are when its
//! target is gone; `nms_agent_up` stays, 0, for a registered agent that is down. Interface
//! figures are the kernel's counters split by direction (`rate()` makes the rates), and host
//! figures (CPU, RAM, interfaces) carry no `task` label: a host is measured once, whichever
//! task measures it.
//!
//! | family | labels | from |
//! |---|---|---|
//! | `nms_agent_up`, `nms_agent_last_seen_timestamp_seconds` | agent | registry |
//! | `nms_cpu_usage_ratio`, `nms_memory_usage_ratio` | agent | metrics reports |
//! | `nms_interface_{receive,transmit}_{bytes,packets,errors}_total`, `nms_interface_{receive,transmit}_drop_total`, `nms_interface_link_state` | agent, interface | interface counters and state |
//! | `nms_ping_rtt_{min,avg,max}_seconds`, `nms_ping_jitter_seconds`, `nms_ping_packet_loss_ratio`, `nms_ping_packets_{sent,received}_total` | agent, task, destination | ping |
//! | `nms_iperf_bandwidth_bytes_per_second` | agent, task, destination, transport (`tcp`, `udp`) | iperf3: what arrived |
//! | `nms_iperf_offered_bytes_per_second`, `nms_iperf_jitter_seconds`, `nms_iperf_packet_loss_ratio` | agent, task, destination, transport (`udp`) | UDP iperf3 |
//! | `nms_last_report_timestamp_seconds` | agent, task | metrics reports |
//! | `nms_alert_firing` | alertname, agent, task, kind, severity, rule, (interface, tool, target, subject) | alerts firing and not silenced |
//! | `nms_alerts_silenced`, `nms_silences_active` | | silences |
//! | `nms_*_total`, `nms_alertmanager_*{alertmanager}` | | the server's own counters (store, NetTask, each Alertmanager) |

use super::Shared;
use super::dispatch::Dispatch;
use super::registry::{AgentRecord, Status};
use crate::nettask::Stats;
use crate::schema::{Rollup, SampleKind};
use crate::store::{Store, StoreStats};
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write;

/// Escapes a label value: backslash, double quote and newline.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A sample value as the exposition format spells it (`NaN`, `+Inf`, `-Inf`, or the number).
fn value_text(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v == f64::INFINITY {
        "+Inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        v.to_string()
    }
}

pub type Labels<'a> = Vec<(&'static str, &'a str)>;

/// Whether a field of the schema is exported (to `/metrics` and by remote write): rates are
/// left to PromQL (`rate()` of the interface counters).
pub fn exported(def: &crate::schema::FieldDef) -> bool {
    def.rollup != Rollup::Rate
}

/// The labels of a reading's series, the same in `/metrics` and in remote write: `agent`; for
/// ping, iperf and probes the `task`, `destination` and `transport`; for interfaces the `interface`.
/// CPU, RAM and interfaces are the host's, so they carry no `task` label.
pub fn reading_labels<'a>(
    def: &crate::schema::FieldDef,
    agent: &'a str,
    task: &'a str,
    target: Option<&'a str>,
    instance: Option<&'a str>,
) -> Labels<'a> {
    let mut labels = vec![("agent", agent)];
    match def.sample {
        SampleKind::Ping | SampleKind::Iperf | SampleKind::Probe(_) => {
            labels.push(("task", task));
            if let Some(t) = target {
                labels.push(("destination", t));
            }
            if let Some(transport) = instance {
                labels.push(("transport", transport));
            }
        }
        SampleKind::Interface => {
            if let Some(i) = instance {
                labels.push(("interface", i));
            }
        }
        SampleKind::Cpu | SampleKind::Ram => {}
    }
    labels
}

/// The text being built.
#[derive(Default)]
struct Exposition {
    out: String,
}

impl Exposition {
    /// Writes one family: HELP, TYPE and its samples, each series once. A family without
    /// samples is left out.
    fn family(&mut self, name: &str, kind: &str, help: &str, samples: Vec<(Labels<'_>, f64)>) {
        if samples.is_empty() {
            return;
        }
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
        let mut seen = HashSet::new();
        for (labels, value) in samples {
            let mut series = String::from(name);
            if !labels.is_empty() {
                series.push('{');
                for (i, (k, v)) in labels.iter().enumerate() {
                    if i > 0 {
                        series.push(',');
                    }
                    let _ = write!(series, "{k}=\"{}\"", escape(v));
                }
                series.push('}');
            }
            if !seen.insert(series.clone()) {
                continue;
            }
            let _ = writeln!(self.out, "{series} {}", value_text(value));
        }
    }
}

/// Renders the exposition. Only this reads the server's shared parts (taking their locks in
/// the order the server allows); each family below is given just what it reads.
pub fn render(shared: &Shared, endpoint: &Stats) -> String {
    let mut x = Exposition::default();
    // Taken before the state lock (the firing set is never locked inside it).
    let alerts = alert_families(shared);
    let state = shared.state();
    let state = &*state;
    x.family(
        "nms_build_info",
        "gauge",
        "The nms version serving these metrics (always 1).",
        vec![(vec![("version", env!("CARGO_PKG_VERSION"))], 1.0)],
    );
    let agents = state.registry.all();
    agent_families(&mut x, &agents);
    report_families(&mut x, &shared.store, &state.dispatch, &agents);
    server_counters(&mut x, &shared.store.stats(), endpoint);
    alerts_into(&mut x, alerts);
    alertmanager_families(&mut x, &shared.alertmanagers);
    remote_write_families(&mut x, &shared.store, &shared.remote_writers);
    x.out
}

/// `nms_agent_up` and `nms_agent_last_seen_timestamp_seconds`, one series per agent.
fn agent_families(x: &mut Exposition, agents: &[&AgentRecord]) {
    x.family(
        "nms_agent_up",
        "gauge",
        "Whether the agent is reporting (1) or not (0).",
        agents
            .iter()
            .map(|a| {
                let up = if a.status == Status::Up { 1.0 } else { 0.0 };
                (vec![("agent", a.name.as_str())], up)
            })
            .collect(),
    );
    x.family(
        "nms_agent_last_seen_timestamp_seconds",
        "gauge",
        "When the agent was last heard from (Unix time).",
        agents
            .iter()
            .map(|a| {
                (
                    vec![("agent", a.name.as_str())],
                    a.last_seen_ms as f64 / 1000.0,
                )
            })
            .collect(),
    );
}

/// The latest values of the agents' reports: one family per field of the schema, and when
/// each task last reported.
fn report_families(
    x: &mut Exposition,
    store: &Store,
    dispatch: &Dispatch,
    agents: &[&AgentRecord],
) {
    // Only what is measured now: the agent is up (a down or forgotten agent's series go at
    // once, as an exporter's do when its target is gone), and its tasks still measure it
    // (after a task changes its destination, the old destination's values are not current).
    let up: HashSet<&str> = agents
        .iter()
        .filter(|a| a.status == Status::Up)
        .map(|a| a.name.as_str())
        .collect();
    let mut latest = store.latest();
    latest.retain(|r| up.contains(r.agent.as_str()) && is_current(dispatch, r));
    // Newest first, so that a host measured by two tasks shows its newest value once.
    latest.sort_by_key(|r| std::cmp::Reverse(r.time_ms));
    // One family per field of the schema, in base units. The rates of interfaces are left
    // to PromQL (`rate()` of the counters); CPU, RAM and interfaces are the host's, so they
    // carry no `task` label.
    for def in &crate::schema::FIELDS {
        if !exported(def) {
            continue;
        }
        let mut samples = Vec::new();
        for r in &latest {
            for reading in r.readings.iter().filter(|x| x.field == def.field) {
                let labels = reading_labels(
                    def,
                    &r.agent,
                    &r.task,
                    r.target.as_deref(),
                    reading.instance.as_deref(),
                );
                samples.push((labels, reading.value / def.prometheus_divisor));
            }
        }
        samples.sort_by(|a, b| a.0.cmp(&b.0));
        let kind = match def.rollup {
            Rollup::Counter => "counter",
            Rollup::Gauge | Rollup::Rate => "gauge",
        };
        x.family(def.prometheus, kind, def.help, samples);
    }
    let mut last_report: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for r in &latest {
        let t = last_report.entry((&r.agent, &r.task)).or_default();
        *t = (*t).max(r.time_ms);
    }
    x.family(
        "nms_last_report_timestamp_seconds",
        "gauge",
        "When the newest stored metrics report of the agent's task was measured (Unix time).",
        last_report
            .into_iter()
            .map(|((agent, task), ms)| (vec![("agent", agent), ("task", task)], ms as f64 / 1000.0))
            .collect(),
    );
}

/// The server's own counters: the store's and the NetTask endpoint's.
///
/// Long only because it is a table: one (name, help, value) row per counter, in the order
/// they are exported.
fn server_counters(x: &mut Exposition, s: &StoreStats, endpoint: &Stats) {
    let counters: Vec<(&str, &str, u64)> = vec![
        (
            "nms_metrics_reports_stored_total",
            "Metrics reports stored since start.",
            s.metrics_stored,
        ),
        (
            "nms_metrics_reports_duplicate_total",
            "Metrics reports received again and not stored twice.",
            s.metrics_duplicates,
        ),
        (
            "nms_metrics_reports_unstored_total",
            "Metrics reports that could not be stored (full disk, I/O error) and were not acknowledged.",
            s.metrics_unstored,
        ),
        (
            "nms_metrics_reports_refused_future_total",
            "Metrics reports refused for a time too far ahead of the server's clock.",
            s.metrics_refused_future,
        ),
        (
            "nms_metrics_reports_refused_too_old_total",
            "Metrics reports refused for a time older than raw retention keeps.",
            s.metrics_refused_too_old,
        ),
        (
            "nms_store_write_failures_total",
            "Episodes of failing store writes (each logged once).",
            s.write_failure_episodes,
        ),
        (
            "nms_store_maintenance_failures_total",
            "Store maintenance passes that failed (retried).",
            s.maintenance_failures,
        ),
        (
            "nms_alerts_stored_total",
            "Alerts stored since start.",
            s.alerts_stored,
        ),
        (
            "nms_alerts_duplicate_total",
            "Alerts received again and not stored twice.",
            s.alerts_duplicates,
        ),
        (
            "nms_nettask_datagrams_received_total",
            "NetTask datagrams received.",
            endpoint.datagrams_received,
        ),
        (
            "nms_nettask_retransmissions_total",
            "NetTask packets retransmitted.",
            endpoint.retransmissions,
        ),
        (
            "nms_nettask_duplicates_total",
            "NetTask packets received more than once (suppressed).",
            endpoint.duplicates,
        ),
        (
            "nms_nettask_bad_tags_total",
            "NetTask packets dropped for a wrong integrity tag.",
            endpoint.bad_tags,
        ),
        (
            "nms_nettask_malformed_total",
            "NetTask packets dropped as malformed.",
            endpoint.malformed,
        ),
        (
            "nms_nettask_unknown_agent_total",
            "NetTask packets from agent ids without a session.",
            endpoint.unknown_agents,
        ),
    ];
    for (name, help, v) in counters {
        x.family(name, "counter", help, vec![(Vec::new(), v as f64)]);
    }
}

/// The remote-write destinations' counters and gauges, one series per destination (labels
/// `remote_name` and `url`, without credentials).
fn remote_write_families(
    x: &mut Exposition,
    store: &Store,
    writers: &[super::remote_write::Writer],
) {
    let now = crate::log::now_ms();
    let statuses: Vec<_> = writers.iter().map(|w| w.status(store, now)).collect();
    let per = |pick: fn(&super::remote_write::WriteStatus) -> f64| -> Vec<(Labels<'_>, f64)> {
        statuses
            .iter()
            .map(|s| {
                (
                    vec![("remote_name", s.name.as_str()), ("url", s.url.as_str())],
                    pick(s),
                )
            })
            .collect()
    };
    x.family(
        "nms_remote_write_samples_sent_total",
        "counter",
        "Samples the remote-write receiver accepted.",
        per(|s| s.samples_sent as f64),
    );
    x.family(
        "nms_remote_write_samples_failed_total",
        "counter",
        "Samples the remote-write receiver refused on their own (dropped).",
        per(|s| s.samples_failed as f64),
    );
    x.family(
        "nms_remote_write_requests_failed_total",
        "counter",
        "Remote-write requests that failed and were sent again.",
        per(|s| s.requests_failed as f64),
    );
    x.family(
        "nms_remote_write_reports_pending",
        "gauge",
        "Stored metrics reports not sent to the remote-write receiver yet.",
        per(|s| s.reports_pending as f64),
    );
    x.family(
        "nms_remote_write_lag_seconds",
        "gauge",
        "How long the oldest report not sent to the remote-write receiver has waited.",
        per(|s| s.lag_seconds),
    );
}

/// The firing alerts' series, computed outside the state lock.
struct AlertFamilies {
    /// One per firing alert no silence holds back: its Alertmanager labels.
    firing: Vec<BTreeMap<String, String>>,
    silenced: usize,
    silences_active: usize,
}

fn alert_families(shared: &Shared) -> AlertFamilies {
    let now = crate::log::now_ms();
    let all = shared.firing().all();
    let silences = shared.silences();
    let mut firing = Vec::new();
    let mut silenced = 0;
    for a in &all {
        if silences.silencing(&a.record, now).is_some() {
            silenced += 1;
        } else {
            firing.push(super::alertmanager::labels(&a.record));
        }
    }
    firing.sort();
    let silences_active = silences.all().iter().filter(|s| s.active(now)).count();
    AlertFamilies {
        firing,
        silenced,
        silences_active,
    }
}

/// `nms_alert_firing{alertname, agent, ...} 1` per alert firing and not silenced (the labels
/// are those Alertmanager gets), and the counts held back.
fn alerts_into(x: &mut Exposition, alerts: AlertFamilies) {
    let samples: Vec<(Labels<'_>, f64)> = alerts
        .firing
        .iter()
        .map(|labels| {
            let l: Labels<'_> = labels
                .iter()
                .filter_map(|(k, v)| Some((label_name(k)?, v.as_str())))
                .collect();
            (l, 1.0)
        })
        .collect();
    x.family(
        "nms_alert_firing",
        "gauge",
        "An alert firing now that no silence holds back (1), with the labels Alertmanager gets.",
        samples,
    );
    x.family(
        "nms_alerts_silenced",
        "gauge",
        "Alerts firing now that a silence holds back.",
        vec![(Vec::new(), alerts.silenced as f64)],
    );
    x.family(
        "nms_silences_active",
        "gauge",
        "Silences in force now.",
        vec![(Vec::new(), alerts.silences_active as f64)],
    );
}

/// The label names alerts carry, as the `'static` names the exposition writes.
fn label_name(name: &str) -> Option<&'static str> {
    const NAMES: [&str; 10] = [
        "alertname",
        "agent",
        "task",
        "kind",
        "severity",
        "rule",
        "interface",
        "tool",
        "target",
        "subject",
    ];
    NAMES.into_iter().find(|n| *n == name)
}

/// The forwarders' counters and gauges, one series per Alertmanager (label `alertmanager`,
/// its URL without credentials).
fn alertmanager_families(x: &mut Exposition, forwarders: &[super::alertmanager::Forwarder]) {
    let statuses: Vec<_> = forwarders.iter().map(|f| f.status()).collect();
    let per = |pick: fn(&super::alertmanager::ForwardStatus) -> u64| -> Vec<(Labels<'_>, f64)> {
        statuses
            .iter()
            .map(|s| (vec![("alertmanager", s.url.as_str())], pick(s) as f64))
            .collect()
    };
    x.family(
        "nms_alertmanager_alerts_sent_total",
        "counter",
        "Alerts (firing, resolved or re-posted) Alertmanager accepted.",
        per(|s| s.sent),
    );
    x.family(
        "nms_alertmanager_requests_failed_total",
        "counter",
        "Posts to Alertmanager that failed (retried unless refused).",
        per(|s| s.failed_requests),
    );
    x.family(
        "nms_alertmanager_alerts_dropped_total",
        "counter",
        "Alerts not forwarded: queue full, backlog too long, or refused.",
        per(|s| s.dropped),
    );
    x.family(
        "nms_alertmanager_alerts_pending",
        "gauge",
        "Alerts waiting to be posted to Alertmanager.",
        per(|s| s.pending),
    );
    x.family(
        "nms_alertmanager_alerts_firing",
        "gauge",
        "Alerts forwarded to Alertmanager that are still firing.",
        per(|s| s.firing),
    );
}

/// Whether a stored record belongs to a task and target that are still measured: the task is
/// loaded, names the agent, and (for a ping or iperf record) still measures towards its target.
fn is_current(dispatch: &Dispatch, r: &crate::store::Report) -> bool {
    let Some(task) = dispatch.get(&r.task) else {
        return false;
    };
    let Some(target) = &r.target else {
        return task.task.device(&r.agent).is_some();
    };
    dispatch.is_target(task.number, &r.agent, target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_spelt_as_the_exposition_format_wants() {
        assert_eq!(value_text(f64::NAN), "NaN");
        assert_eq!(value_text(f64::INFINITY), "+Inf");
        assert_eq!(value_text(f64::NEG_INFINITY), "-Inf");
        assert_eq!(value_text(0.000022), "0.000022");
        assert_eq!(value_text(1795775005.029), "1795775005.029");
    }

    #[test]
    fn label_values_are_escaped_and_a_series_appears_once() {
        let mut x = Exposition::default();
        x.family(
            "nms_test_ratio",
            "gauge",
            "A test.",
            vec![
                (vec![("agent", "a\"b\\c\nd")], 0.5),
                (vec![("agent", "a\"b\\c\nd")], 0.7),
                (vec![("agent", "e")], 1.0),
            ],
        );
        x.family("nms_empty", "gauge", "Left out.", Vec::new());
        assert_eq!(
            x.out,
            "# HELP nms_test_ratio A test.\n# TYPE nms_test_ratio gauge\n\
             nms_test_ratio{agent=\"a\\\"b\\\\c\\nd\"} 0.5\nnms_test_ratio{agent=\"e\"} 1\n"
        );
    }
}
