//! The text of an AlertFlow frame: ALERT with its severity and values, or ALERT_ACK.

use super::doc::Doc;
use super::json::frame_type_name;
use super::text::{HeaderView, render_header, render_tag};
use super::utc_time;
use crate::wire::alertflow::{AlertType, Frame, FrameBody, Severity};
use owo_colors::Style;

pub(super) fn render_frame(doc: &mut Doc, frame: &Frame, bytes: &[u8]) {
    let type_name = frame_type_name(frame);
    let style = match &frame.body {
        FrameBody::Alert(a) => severity_style(a.severity),
        FrameBody::AlertAck { .. } => Style::new().bold().green(),
    };
    render_header(
        doc,
        &HeaderView {
            protocol: "AlertFlow",
            type_name,
            type_code: frame.frame_type() as u8,
            type_style: style,
            keyed: frame.keyed,
            agent_id: frame.agent_id,
            size: bytes.len(),
        },
    );
    doc.field(
        1,
        "length field",
        format!("{} (bytes after it)", bytes.len().saturating_sub(4)),
    );
    render_tag(doc, bytes, frame.keyed);
    doc.section(type_name);
    match &frame.body {
        FrameBody::Alert(a) => {
            doc.field(1, "alert id", format!("{:#018x}", a.alert_id));
            if a.resolves != 0 {
                doc.field(
                    1,
                    "resolves",
                    format!("{:#018x} (stopped firing)", a.resolves),
                );
            }
            doc.field(1, "agent", &a.agent);
            doc.field(1, "task", &a.task);
            doc.field(
                1,
                "alert type",
                format!("{} ({})", a.alert_type.name(), a.alert_type as u8),
            );
            let severity = doc.paint(severity_name(a.severity), severity_style(a.severity));
            doc.field(1, "severity", format!("{severity} ({})", a.severity as u8));
            let unit = alert_unit(a.alert_type);
            let v = doc.measured(a.value, unit);
            doc.field(1, "value", v);
            let v = doc.measured(a.threshold, unit);
            doc.field(1, "threshold", v);
            doc.field(1, "time", utc_time(a.time_ms));
            doc.field(1, "rule", &a.rule);
            doc.field(1, "message", &a.message);
        }
        FrameBody::AlertAck { alert_id } => {
            doc.field(1, "alert id", format!("{alert_id:#018x}"));
        }
    }
}

pub(super) fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    }
}

pub(super) fn severity_style(s: Severity) -> Style {
    match s {
        Severity::Info => Style::new().bold().blue(),
        Severity::Warning => Style::new().bold().yellow(),
        Severity::Critical => Style::new().bold().red(),
    }
}

/// The unit of an alert's value and threshold.
pub(super) fn alert_unit(t: AlertType) -> &'static str {
    match t {
        AlertType::Cpu | AlertType::Ram | AlertType::PacketLoss => "%",
        AlertType::Jitter | AlertType::Latency | AlertType::Timeout => "ms",
        AlertType::InterfaceStats => "packets/s",
        AlertType::Bandwidth => "bps",
        AlertType::Error | AlertType::AgentDown | AlertType::AgentUp | AlertType::Custom => "",
    }
}
