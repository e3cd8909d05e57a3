//! The decoded packet or frame as aligned text: the summary line, the header, the tag, and
//! the small value renderings the per-message renderers share.

use super::doc::Doc;
use super::frame::render_frame;
use super::json::{tag_algorithm, tag_of};
use super::message::render_message;
use crate::wire::packet::{PacketType, VERSION};
use crate::wire::{Body, Decoded, NoackReason, Packet, TAG_LEN};
use owo_colors::Style;

/// The decoded packet as aligned text: a summary line, the header, then every body field with
/// its unit. `bytes` are the bytes it was decoded from (for the size and tag). With `color`,
/// field names are dimmed and the type, severity and verification are coloured.
pub fn render_text(decoded: &Decoded, bytes: &[u8], color: bool) -> String {
    let mut doc = Doc::new(color);
    match decoded {
        Decoded::NetTask(p) => render_packet(&mut doc, p, bytes),
        Decoded::AlertFlow(f) => render_frame(&mut doc, f, bytes),
    }
    doc.finish()
}

pub(super) fn type_style(kind: PacketType) -> Style {
    match kind {
        PacketType::Noack => Style::new().bold().red(),
        PacketType::Ack => Style::new().bold().green(),
        _ => Style::new().bold().cyan(),
    }
}

/// What the first lines say about a packet or frame.
pub(super) struct HeaderView<'a> {
    /// "NetTask" or "AlertFlow".
    pub(super) protocol: &'static str,
    pub(super) type_name: &'a str,
    pub(super) type_code: u8,
    pub(super) type_style: Style,
    pub(super) keyed: bool,
    pub(super) agent_id: u32,
    pub(super) size: usize,
}

pub(super) fn render_header(doc: &mut Doc, h: &HeaderView<'_>) {
    let verified = doc.paint("verified", Style::new().green());
    let type_name = doc.paint(h.type_name, h.type_style);
    doc.title(format!(
        "{} {type_name} {}, {} bytes, tag {verified} ({})",
        h.protocol,
        if h.protocol == "NetTask" {
            "packet"
        } else {
            "frame"
        },
        h.size,
        tag_algorithm(h.keyed),
    ));
    doc.section("header");
    doc.field(1, "protocol", format!("{}, version {VERSION}", h.protocol));
    doc.field(1, "type", format!("{type_name} ({})", h.type_code));
    doc.field(
        1,
        "keyed",
        if h.keyed {
            "yes: HMAC-SHA-256 tag with the session key"
        } else {
            "no: plain SHA-256 tag"
        },
    );
    doc.field(
        1,
        "agent id",
        if h.agent_id == 0 {
            "0 (not registered yet)".to_string()
        } else {
            h.agent_id.to_string()
        },
    );
}

pub(super) fn render_tag(doc: &mut Doc, bytes: &[u8], keyed: bool) {
    doc.field(1, "size", format!("{} bytes", bytes.len()));
    let verified = doc.paint("verified", Style::new().green());
    doc.field(
        1,
        "tag",
        format!(
            "{} ({verified}, {} of the {} bytes before it)",
            hex::encode(tag_of(bytes)),
            tag_algorithm(keyed),
            bytes.len().saturating_sub(TAG_LEN),
        ),
    );
}

pub(super) fn render_packet(doc: &mut Doc, p: &Packet, bytes: &[u8]) {
    let kind = p.packet_type();
    render_header(
        doc,
        &HeaderView {
            protocol: "NetTask",
            type_name: kind.name(),
            type_code: kind as u8,
            type_style: type_style(kind),
            keyed: p.keyed,
            agent_id: p.agent_id,
            size: bytes.len(),
        },
    );
    let seq = match &p.body {
        Body::Ack(a) => format!("{} (the packet acknowledged)", a.seq),
        Body::Noack(n) => format!("{} (the packet refused)", n.seq),
        Body::Reliable { seq, .. } => seq.to_string(),
    };
    doc.field(1, "seq", seq);
    render_tag(doc, bytes, p.keyed);
    doc.section(kind.name());
    match &p.body {
        Body::Ack(ack) => {
            let list: Vec<String> = ack.acknowledged().map(|s| s.to_string()).collect();
            doc.field(1, "acknowledged", list.join(", "));
            doc.field(
                1,
                "bitmap",
                if ack.earlier == 0 {
                    "none (0 bytes)".to_string()
                } else {
                    format!("{:#b} ({} byte(s))", ack.earlier, bitmap_bytes(ack.earlier))
                },
            );
        }
        Body::Noack(noack) => {
            let (name, meaning) = match noack.reason {
                NoackReason::BadTag => ("bad tag", "the tag did not match: retransmit at once"),
                NoackReason::UnknownAgent => (
                    "unknown agent",
                    "no registered agent has this id: register again",
                ),
                NoackReason::Malformed => ("malformed", "the body could not be decoded"),
            };
            let reason = doc.paint(name, Style::new().red());
            doc.field(
                1,
                "reason",
                format!("{reason} ({}): {meaning}", noack.reason as u8),
            );
        }
        Body::Reliable { message, .. } => render_message(doc, message),
    }
}

pub(super) fn bitmap_bytes(earlier: u32) -> usize {
    (32 - earlier.leading_zeros() as usize).div_ceil(8)
}

pub(super) fn hex_spaced(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

pub(super) fn every(seconds: u32) -> String {
    format!("every {seconds} s")
}

pub(super) fn yes_no(v: bool) -> &'static str {
    if v { "yes" } else { "no" }
}

pub(super) fn transport_name(t: crate::wire::Transport) -> &'static str {
    match t {
        crate::wire::Transport::Tcp => "tcp",
        crate::wire::Transport::Udp => "udp",
    }
}
