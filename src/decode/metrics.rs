//! The text of a metrics report: one block of fields per sample.

use super::doc::Doc;
use super::text::transport_name;
use super::utc_time;
use crate::wire::{InterfaceCounters, LinkState, MetricsReport, ProbeSample, Sample};
use owo_colors::Style;

pub(super) fn render_metrics(doc: &mut Doc, report: &MetricsReport) {
    doc.field(1, "task number", report.task_number.to_string());
    doc.field(1, "time", utc_time(report.time_ms));
    doc.field(1, "samples", report.samples.len().to_string());
    for sample in &report.samples {
        render_sample(doc, sample);
    }
}

/// One sample: its kind as a field, and what it measured one level deeper.
fn render_sample(doc: &mut Doc, sample: &Sample) {
    match sample {
        Sample::Probe(p) => render_probe_sample(doc, p),
        Sample::Cpu { percent } => {
            let v = doc.measured(*percent, "%");
            doc.field(1, "cpu", v);
        }
        Sample::Ram { percent } => {
            let v = doc.measured(*percent, "%");
            doc.field(1, "ram", v);
        }
        Sample::Interface {
            name,
            state,
            packets_per_sec,
            bytes_per_sec,
            errors_per_sec,
            counters,
        } => {
            doc.field(1, "interface", name);
            let shown = link_state_text(doc, *state);
            doc.field(2, "state", shown);
            let v = doc.measured(*packets_per_sec, "packets/s");
            doc.field(2, "packets", v);
            let v = doc.rate(*bytes_per_sec, "B/s");
            doc.field(2, "bytes", v);
            let v = doc.measured(*errors_per_sec, "errors/s");
            doc.field(2, "errors", v);
            render_counters(doc, counters);
        }
        Sample::Ping {
            rtt_min_ms,
            rtt_avg_ms,
            rtt_max_ms,
            jitter_ms,
            loss_percent,
            sent,
            received,
        } => {
            doc.field(1, "ping", "");
            for (name, v, unit) in [
                ("rtt min", rtt_min_ms, "ms"),
                ("rtt avg", rtt_avg_ms, "ms"),
                ("rtt max", rtt_max_ms, "ms"),
                ("jitter", jitter_ms, "ms"),
                ("packet loss", loss_percent, "%"),
            ] {
                let v = doc.measured(*v, unit);
                doc.field(2, name, v);
            }
            doc.field(2, "sent", format!("{sent} echo requests (so far)"));
            doc.field(2, "received", format!("{received} replies (so far)"));
        }
        Sample::Iperf {
            transport,
            bandwidth_bps,
            offered_bps,
            jitter_ms,
            loss_percent,
        } => {
            doc.field(1, "iperf", transport_name(*transport));
            let v = doc.rate(*bandwidth_bps, "bps");
            doc.field(2, "bandwidth", v);
            let v = doc.rate(*offered_bps, "bps");
            doc.field(2, "offered", v);
            let v = doc.measured(*jitter_ms, "ms");
            doc.field(2, "jitter", v);
            let v = doc.measured(*loss_percent, "%");
            doc.field(2, "packet loss", v);
        }
    }
}

/// A pluggable probe's values, labelled by the probe's field definitions where it has them.
fn render_probe_sample(doc: &mut Doc, p: &ProbeSample) {
    let name = crate::probes::by_number(p.probe)
        .map_or_else(|| format!("probe {}", p.probe), |d| d.name.to_string());
    doc.field(1, &name, "");
    let mut defs = crate::schema::probe_fields(p.probe);
    for (i, v) in p.values.iter().enumerate() {
        let (label, unit) = defs.next().map_or((format!("value {}", i + 1), ""), |d| {
            (d.label.to_string(), d.unit)
        });
        let v = doc.measured(*v, unit);
        doc.field(2, &label, v);
    }
}

/// Whether the interface is up, coloured red when it is not.
fn link_state_text(doc: &Doc, state: LinkState) -> String {
    match state {
        LinkState::Up => doc.paint("up (1)", Style::new().green()),
        LinkState::Down => doc.paint("down (2): set down", Style::new().red()),
        LinkState::NoCarrier => doc.paint(
            "no carrier (3): set up, but the link beneath it is down",
            Style::new().red(),
        ),
        LinkState::Unknown => "not known (0)".to_string(),
    }
}

/// The interface's raw counters, each with its unit or "not measured".
fn render_counters(doc: &mut Doc, counters: &InterfaceCounters) {
    let shown = |v: Option<u64>, unit: &str| match v {
        Some(v) => format!("{v} {unit}"),
        None => "not measured".to_string(),
    };
    for (name, v, unit) in [
        ("rx bytes", counters.rx_bytes, "B"),
        ("tx bytes", counters.tx_bytes, "B"),
        ("rx packets", counters.rx_packets, "packets"),
        ("tx packets", counters.tx_packets, "packets"),
        ("rx errors", counters.rx_errors, "errors"),
        ("tx errors", counters.tx_errors, "errors"),
        ("rx dropped", counters.rx_dropped, "packets"),
        ("tx dropped", counters.tx_dropped, "packets"),
    ] {
        doc.field(2, name, shown(v, unit));
    }
}
