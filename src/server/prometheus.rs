//! `GET /metrics`: the latest values in the Prometheus text exposition format (version 0.0.4).
//!
//! Units follow Prometheus conventions: seconds, ratios in 0..1, bytes; labels name the agent,
//! the task, and the interface or destination a value belongs to.

use super::State;
use super::registry::Status;
use crate::nettask::Stats;
use std::fmt::Write;

/// Escapes a label value: backslash, double quote and newline.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn header(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

/// One metric of stored reports: its name, help, stored field, and scale to base units.
const REPORT_GAUGES: &[(&str, &str, &str, f64)] = &[
    (
        "nms_cpu_usage_ratio",
        "CPU busy over the last interval (0-1).",
        "cpu_percent",
        0.01,
    ),
    (
        "nms_memory_usage_ratio",
        "Memory in use (0-1).",
        "ram_percent",
        0.01,
    ),
    (
        "nms_ping_rtt_min_seconds",
        "Smallest ping round-trip time of the last run.",
        "rtt_min_ms",
        0.001,
    ),
    (
        "nms_ping_rtt_avg_seconds",
        "Mean ping round-trip time of the last run.",
        "rtt_avg_ms",
        0.001,
    ),
    (
        "nms_ping_rtt_max_seconds",
        "Largest ping round-trip time of the last run.",
        "rtt_max_ms",
        0.001,
    ),
    (
        "nms_jitter_seconds",
        "Jitter of the last ping (RFC 3550 style) or UDP iperf3 run.",
        "jitter_ms",
        0.001,
    ),
    (
        "nms_packet_loss_ratio",
        "Packet loss of the last ping or UDP iperf3 run (0-1).",
        "loss_percent",
        0.01,
    ),
    (
        "nms_iperf_bandwidth_bits_per_second",
        "Throughput of the last iperf3 run.",
        "bandwidth_bps",
        1.0,
    ),
];

const INTERFACE_GAUGES: &[(&str, &str)] = &[
    (
        "nms_interface_packets_per_second",
        "Packets received and sent per second on the interface.",
    ),
    (
        "nms_interface_bytes_per_second",
        "Bytes received and sent per second on the interface.",
    ),
    (
        "nms_interface_errors_per_second",
        "Receive and transmit errors per second on the interface.",
    ),
];

/// Renders the exposition.
pub fn render(state: &State, endpoint: &Stats) -> String {
    let mut out = String::with_capacity(4096);
    let mut f = Family { out: &mut out };
    let agents = state.registry.all();
    f.header(
        "nms_agent_up",
        "gauge",
        "Whether the agent is reporting (1) or not (0).",
    );
    for a in &agents {
        f.sample(
            "nms_agent_up",
            &[("agent", &a.name)],
            if a.status == Status::Up { 1.0 } else { 0.0 },
        );
    }
    f.header(
        "nms_agent_last_seen_timestamp_seconds",
        "gauge",
        "When the agent was last heard from.",
    );
    for a in &agents {
        f.sample(
            "nms_agent_last_seen_timestamp_seconds",
            &[("agent", &a.name)],
            a.last_seen_ms as f64 / 1000.0,
        );
    }
    let latest = state.store.latest();
    for (name, help, field, scale) in REPORT_GAUGES {
        let rows: Vec<_> = latest
            .iter()
            .filter(|r| r.values.contains_key(*field))
            .collect();
        if rows.is_empty() {
            continue;
        }
        f.header(name, "gauge", help);
        for r in rows {
            let mut labels = vec![("agent", r.agent.as_str()), ("task", r.task.as_str())];
            if let Some(t) = &r.target {
                labels.push(("destination", t));
            }
            f.sample(name, &labels, r.values[*field] * scale);
        }
    }
    for (i, (name, help)) in INTERFACE_GAUGES.iter().enumerate() {
        let rows: Vec<_> = latest.iter().filter(|r| !r.interfaces.is_empty()).collect();
        if rows.is_empty() {
            continue;
        }
        f.header(name, "gauge", help);
        for r in rows {
            for (iface, rates) in &r.interfaces {
                let v = [
                    rates.packets_per_sec,
                    rates.bytes_per_sec,
                    rates.errors_per_sec,
                ][i];
                f.sample(
                    name,
                    &[("agent", &r.agent), ("task", &r.task), ("interface", iface)],
                    v,
                );
            }
        }
    }
    let s = &state.store.stats;
    let counters: [(&str, &str, u64); 10] = [
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
        f.header(name, "counter", help);
        f.sample(name, &[], v as f64);
    }
    out
}
