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

mod alerts;
mod counters;
mod readings;

use super::Shared;
use crate::nettask::Stats;
use crate::schema::{Rollup, SampleKind};
use alerts::{alert_families, alerts_into};
use counters::{alertmanager_families, remote_write_families, server_counters};
use readings::{agent_families, report_families};
use std::collections::HashSet;
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
