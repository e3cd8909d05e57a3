//! The text of a TASK assignment: its work items, alert conditions and rules.

use super::doc::Doc;
use super::text::{every, transport_name, yes_no};
use crate::wire::{AlertConditions, TaskAssignment, WorkItem};

pub(super) fn render_task(doc: &mut Doc, task: &TaskAssignment) {
    doc.field(1, "task number", task.task_number.to_string());
    doc.field(1, "task id", &task.task_id);
    doc.field(1, "work items", task.items.len().to_string());
    for (i, item) in task.items.iter().enumerate() {
        let label = format!("item {}", i + 1);
        match item {
            WorkItem::Probe(p) => {
                doc.field(1, &label, "PROBE");
                doc.field(2, "probe", &p.probe);
                for param in &p.params {
                    doc.field(2, &param.name, param.value.to_string());
                }
                doc.field(2, "frequency", every(p.frequency_s));
            }
            WorkItem::MetricsGathering {
                cpu,
                ram,
                interfaces,
                frequency_s,
            } => {
                doc.field(1, &label, "METRICSGATHERING");
                doc.field(2, "cpu", yes_no(*cpu));
                doc.field(2, "ram", yes_no(*ram));
                doc.field(
                    2,
                    "interfaces",
                    if interfaces.is_empty() {
                        "none".to_string()
                    } else {
                        interfaces.join(", ")
                    },
                );
                doc.field(2, "frequency", every(*frequency_s));
            }
            WorkItem::Ping {
                destination,
                packet_count,
                interval_ms,
                frequency_s,
            } => {
                doc.field(1, &label, "PING");
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
                doc.field(1, &label, "IPERFCLIENT");
                doc.field(
                    2,
                    "server address",
                    if server_address.is_empty() {
                        "(filled in by the server)"
                    } else {
                        server_address
                    },
                );
                doc.field(2, "port", port.to_string());
                doc.field(2, "duration", format!("{duration_s} s"));
                doc.field(2, "transport", transport_name(*transport));
                doc.field(
                    2,
                    "rate",
                    if *rate_bps == 0 {
                        "iperf3's default (TCP: as fast as the link allows)".to_string()
                    } else {
                        format!(
                            "{rate_bps} bps ({})",
                            crate::wire::task::rate_text(*rate_bps)
                        )
                    },
                );
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
                doc.field(1, &label, "IPERFSERVER");
                doc.field(2, "port", port.to_string());
                doc.field(2, "duration", format!("{duration_s} s"));
                doc.field(2, "transport", transport_name(*transport));
                doc.field(2, "frequency", every(*frequency_s));
            }
        }
    }
    render_conditions(doc, &task.conditions);
    doc.field(1, "rules", task.rules.len().to_string());
    for (i, rule) in task.rules.iter().enumerate() {
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
