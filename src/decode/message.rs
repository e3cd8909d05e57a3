//! The text of each reliable NetTask message's fields (REGISTRATION to TASK and REPORT).

use super::doc::Doc;
use super::metrics::render_metrics;
use super::task::render_task;
use super::text::hex_spaced;
use super::utc_time;
use crate::wire::Message;
use crate::wire::packet::{CAP_IPERF3, CAP_PING, Fragment, RefusalReason, Refused, Registration};
use owo_colors::Style;

pub(super) fn render_message(doc: &mut Doc, message: &Message) {
    match message {
        Message::Registration(m) => render_registration(doc, m),
        Message::Registered(m) => {
            doc.field(1, "instance", format!("{:#018x}", m.instance));
            doc.field(1, "AlertFlow port", m.alertflow_port.to_string());
            doc.field(1, "heartbeat", format!("every {} ms", m.heartbeat_ms));
            doc.field(1, "timeout", format!("{} ms", m.timeout_ms));
            doc.field(
                1,
                "retransmissions",
                format!("{} before the peer is lost", m.max_retransmissions),
            );
            doc.field(1, "server time", utc_time(m.server_time_ms));
        }
        Message::Task(task) => render_task(doc, task),
        Message::Metrics(report) => render_metrics(doc, report),
        Message::Heartbeat(m) => {
            doc.field(1, "time", utc_time(m.time_ms));
            doc.field(1, "pending reports", m.pending_reports.to_string());
        }
        Message::Fragment(m) => render_fragment(doc, m),
        Message::Cancel(m) => doc.field(1, "task number", m.task_number.to_string()),
        Message::Refused(m) => render_refused(doc, m),
    }
}

/// An agent's REGISTRATION: who it is, its clock, and which tools it has.
fn render_registration(doc: &mut Doc, m: &Registration) {
    doc.field(1, "name", &m.name);
    doc.field(1, "instance", format!("{:#018x}", m.instance));
    doc.field(1, "time", utc_time(m.time_ms));
    let mut tools = Vec::new();
    if m.capabilities & CAP_PING != 0 {
        tools.push("ping");
    }
    if m.capabilities & CAP_IPERF3 != 0 {
        tools.push("iperf3");
    }
    if m.capabilities & !(CAP_PING | CAP_IPERF3) != 0 {
        tools.push("unknown bits");
    }
    let tools = if tools.is_empty() {
        "none".to_string()
    } else {
        tools.join(", ")
    };
    doc.field(
        1,
        "capabilities",
        format!("{tools} ({:#04x})", m.capabilities),
    );
    doc.field(1, "software", &m.software);
}

/// A FRAGMENT of a larger message, its chunk shown in hex, 16 bytes a line.
fn render_fragment(doc: &mut Doc, m: &Fragment) {
    doc.field(1, "message id", m.message_id.to_string());
    doc.field(
        1,
        "index",
        format!("{} (fragment {} of {})", m.index, m.index + 1, m.count),
    );
    doc.field(1, "count", m.count.to_string());
    doc.field(
        1,
        "inner type",
        format!("{} ({})", m.inner_type.name(), m.inner_type as u8),
    );
    doc.field(1, "chunk", format!("{} bytes", m.chunk.len()));
    for line in m.chunk.chunks(16) {
        doc.field(2, "", hex_spaced(line));
    }
}

/// The server's REFUSED: why, on which clock, and the last registration it accepted.
fn render_refused(doc: &mut Doc, m: &Refused) {
    doc.field(1, "instance", format!("{:#018x}", m.instance));
    let reason = doc.paint(
        match m.reason {
            RefusalReason::Clock => "clock",
            RefusalReason::NotNewer => "not newer",
            RefusalReason::Full => "full",
        },
        Style::new().red(),
    );
    doc.field(
        1,
        "reason",
        format!("{reason} ({}): {}", m.reason as u8, m.reason.describe()),
    );
    doc.field(1, "server time", utc_time(m.server_time_ms));
    doc.field(
        1,
        "last accepted",
        if m.last_accepted_ms == 0 {
            "0 (none)".to_string()
        } else {
            utc_time(m.last_accepted_ms)
        },
    );
}
