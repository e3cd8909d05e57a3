//! The text of a TASK assignment: its work items, alert conditions and rules.

use super::doc::Doc;
use super::text::{every, transport_name, yes_no};
use crate::wire::{AlertConditions, ProbeItem, RuleSource, TaskAssignment, Transport, WorkItem};

pub(super) fn render_task(doc: &mut Doc, task: &TaskAssignment) {
    doc.field(1, "task number", task.task_number.to_string());
    doc.field(1, "task id", &task.task_id);
    doc.field(1, "work items", task.items.len().to_string());
    for (i, item) in task.items.iter().enumerate() {
        render_item(doc, &format!("item {}", i + 1), item);
    }
    render_conditions(doc, &task.conditions);
    render_rules(doc, &task.rules);
}

/// One work item: its kind on the `label` line, then its fields one level deeper.
fn render_item(doc: &mut Doc, label: &str, item: &WorkItem) {
    match item {
        WorkItem::Probe(p) => render_probe_item(doc, label, p),
        WorkItem::MetricsGathering {
            cpu,
            ram,
            interfaces,
            frequency_s,
        } => {
            doc.field(1, label, "METRICSGATHERING");
            doc.field(2, "cpu", yes_no(*cpu));
            doc.field(2, "ram", yes_no(*ram));
            let watched = if interfaces.is_empty() {
                "none".to_string()
            } else {
                interfaces.join(", ")
            };
            doc.field(2, "interfaces", watched);
            doc.field(2, "frequency", every(*frequency_s));
        }
        WorkItem::Ping {
            destination,
            packet_count,
            interval_ms,
            frequency_s,
        } => {
            doc.field(1, label, "PING");
            doc.field(2, "destination", destination);
            doc.field(2, "packet count", packet_count.to_string());
            doc.field(
                2,
                "interval",
                format!("{interval_ms} ms between echo requests"),
            );
            doc.field(2, "frequency", every(*frequency_s));
        }
        WorkItem::IperfClient {
            server_address,
            port,
            duration_s,
            transport,
            rate_bps,
            offset_ms,
            frequency_s,
        } => {
            doc.field(1, label, "IPERFCLIENT");
            let shown = if server_address.is_empty() {
                "(filled in by the server)"
            } else {
                server_address
            };
            doc.field(2, "server address", shown);
            render_iperf_run(doc, *port, *duration_s, *transport);
            doc.field(2, "rate", rate_text(*rate_bps));
            doc.field(2, "frequency", every(*frequency_s));
            doc.field(
                2,
                "slot",
                format!("starts {offset_ms} ms into each period of the server's clock"),
            );
        }
        WorkItem::IperfServer {
            port,
            duration_s,
            transport,
            frequency_s,
        } => {
            doc.field(1, label, "IPERFSERVER");
            render_iperf_run(doc, *port, *duration_s, *transport);
            doc.field(2, "frequency", every(*frequency_s));
        }
    }
}

fn render_probe_item(doc: &mut Doc, label: &str, p: &ProbeItem) {
    doc.field(1, label, "PROBE");
    doc.field(2, "probe", &p.probe);
    for param in &p.params {
        doc.field(2, &param.name, param.value.to_string());
    }
    doc.field(2, "frequency", every(p.frequency_s));
}

/// The fields an iperf client and server share: port, duration and transport.
fn render_iperf_run(doc: &mut Doc, port: u16, duration_s: u32, transport: Transport) {
    doc.field(2, "port", port.to_string());
    doc.field(2, "duration", format!("{duration_s} s"));
    doc.field(2, "transport", transport_name(transport));
}

/// The rate an iperf client offers, with 0 meaning iperf3's own default.
fn rate_text(rate_bps: u64) -> String {
    if rate_bps == 0 {
        "iperf3's default (TCP: as fast as the link allows)".to_string()
    } else {
        format!(
            "{rate_bps} bps ({})",
            crate::wire::task::rate_text(rate_bps)
        )
    }
}

/// Each rule's name, then its source one line a field.
fn render_rules(doc: &mut Doc, rules: &[RuleSource]) {
    doc.field(1, "rules", rules.len().to_string());
    for (i, rule) in rules.iter().enumerate() {
        doc.field(1, &format!("rule {}", i + 1), &rule.name);
        let mut lines = rule.source.lines();
        doc.field(2, "source", lines.next().unwrap_or(""));
        for line in lines {
            doc.field(2, "", line);
        }
    }
}

pub(super) fn render_conditions(doc: &mut Doc, c: &AlertConditions) {
    let conditions = [
        ("cpu usage above", c.cpu_usage, "%"),
        ("ram usage above", c.ram_usage, "%"),
        ("interface stats above", c.interface_stats, "packets/s"),
        ("packet loss above", c.packet_loss, "%"),
        ("jitter above", c.jitter, "ms"),
    ];
    if conditions.iter().all(|(_, v, _)| v.is_none()) {
        doc.field(1, "alert conditions", "none");
        return;
    }
    doc.field(1, "alert conditions", "");
    for (name, value, unit) in conditions {
        if let Some(v) = value {
            doc.field(2, name, format!("{v} {unit}"));
        }
    }
}
