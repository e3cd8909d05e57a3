//! The NetTask packet: header, body and tag, and the messages that are not about tasks or
//! metrics (registration, acknowledgement, heartbeat, fragments, cancellation).
//!
//! ```text
//! byte 0        version (bits 7-5) | KEYED flag (bit 4) | packet type (bits 3-0)
//! varint        agent id (0 = not registered yet)
//! u16           sequence number (reliable packets only: not ACK, not NOACK)
//! ...           body (depends on the type)
//! 12 bytes      tag over every preceding byte
//! ```
//! PROTOCOL.md has the layout of every body with examples.
//!
//! This file has the packet types and the whole packet's encoder; `header.rs` reads a packet up
//! to its tag and decodes the body after the tag is checked; `messages.rs` holds the bodies.

mod header;
mod messages;

pub(crate) use header::verify_tag;
pub use header::{Header, MIN_PACKET_LEN};
pub use messages::{
    Ack, CAP_IPERF3, CAP_PING, Cancel, Fragment, Heartbeat, Noack, NoackReason, RefusalReason,
    Refused, Registered, Registration,
};

use super::codec::{DecodeError, Reader, Writer, invalid};
use super::metrics::MetricsReport;
use super::tag::{self, Key};
use super::task::TaskAssignment;
use serde::Serialize;

/// The protocol version this build speaks.
pub const VERSION: u8 = 1;
/// Agent ids are varints capped at 2^28 - 1 (four bytes on the wire at most).
pub const MAX_AGENT_ID: u32 = (1 << 28) - 1;
/// Longest agent name.
pub const MAX_NAME_LEN: usize = 255;
/// At most this many earlier packets can be acknowledged by the bitmap of one ACK.
pub const ACK_BITMAP_BITS: u16 = 32;
/// Latest time any time field may carry: 9999-12-31T23:59:59.999Z in Unix milliseconds (the
/// last instant RFC 3339 can write with four-digit years).
pub const MAX_TIME_MS: u64 = 253_402_300_799_999;

const KEYED_FLAG: u8 = 0x10;

/// Packet types, with the numbers they have on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PacketType {
    Ack = 0,
    Noack = 1,
    Registration = 2,
    Registered = 3,
    Task = 4,
    Metrics = 5,
    Heartbeat = 6,
    Fragment = 7,
    Cancel = 8,
    Refused = 9,
}

impl PacketType {
    pub fn from_u8(v: u8) -> Option<PacketType> {
        Some(match v {
            0 => PacketType::Ack,
            1 => PacketType::Noack,
            2 => PacketType::Registration,
            3 => PacketType::Registered,
            4 => PacketType::Task,
            5 => PacketType::Metrics,
            6 => PacketType::Heartbeat,
            7 => PacketType::Fragment,
            8 => PacketType::Cancel,
            9 => PacketType::Refused,
            _ => return None,
        })
    }

    /// Whether packets of this type are numbered, acknowledged and retransmitted (TASK,
    /// METRICS, HEARTBEAT, FRAGMENT, CANCEL). REGISTRATION, REGISTERED and REFUSED are not: they
    /// carry sequence number 0, and the agent repeats its REGISTRATION until it is answered.
    pub fn is_reliable(self) -> bool {
        matches!(
            self,
            PacketType::Task
                | PacketType::Metrics
                | PacketType::Heartbeat
                | PacketType::Fragment
                | PacketType::Cancel
        )
    }

    /// Whether the sequence number of this type must be 0 (REGISTRATION, REGISTERED, REFUSED).
    pub fn is_unnumbered_message(self) -> bool {
        matches!(
            self,
            PacketType::Registration | PacketType::Registered | PacketType::Refused
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            PacketType::Ack => "ACK",
            PacketType::Noack => "NOACK",
            PacketType::Registration => "REGISTRATION",
            PacketType::Registered => "REGISTERED",
            PacketType::Task => "TASK",
            PacketType::Metrics => "METRICS",
            PacketType::Heartbeat => "HEARTBEAT",
            PacketType::Fragment => "FRAGMENT",
            PacketType::Cancel => "CANCEL",
            PacketType::Refused => "REFUSED",
        }
    }
}

/// One NetTask datagram, decoded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Packet {
    /// Whether the tag is keyed (HMAC) rather than a plain hash.
    pub keyed: bool,
    /// The agent this packet is from (agent to server) or for (server to agent).
    pub agent_id: u32,
    #[serde(flatten)]
    pub body: Body,
}

/// What follows the agent id.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Body {
    Ack(Ack),
    Noack(Noack),
    Reliable { seq: u16, message: Message },
}

/// A message that is delivered reliably (acknowledged, retransmitted, delivered once).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Message {
    Registration(Registration),
    Registered(Registered),
    Task(TaskAssignment),
    Metrics(MetricsReport),
    Heartbeat(Heartbeat),
    Fragment(Fragment),
    Cancel(Cancel),
    Refused(Refused),
}

impl Message {
    pub fn packet_type(&self) -> PacketType {
        match self {
            Message::Registration(_) => PacketType::Registration,
            Message::Registered(_) => PacketType::Registered,
            Message::Task(_) => PacketType::Task,
            Message::Metrics(_) => PacketType::Metrics,
            Message::Heartbeat(_) => PacketType::Heartbeat,
            Message::Fragment(_) => PacketType::Fragment,
            Message::Cancel(_) => PacketType::Cancel,
            Message::Refused(_) => PacketType::Refused,
        }
    }

    /// Appends the body (no header, no tag).
    pub fn encode_body(&self, out: &mut Vec<u8>) {
        match self {
            Message::Registration(m) => m.encode(out),
            Message::Registered(m) => m.encode(out),
            Message::Task(m) => m.encode(out),
            Message::Metrics(m) => m.encode(out),
            Message::Heartbeat(m) => m.encode(out),
            Message::Fragment(m) => m.encode(out),
            Message::Cancel(m) => m.encode(out),
            Message::Refused(m) => m.encode(out),
        }
    }

    /// Decodes a body of the given type; the reader must end where the body ends.
    pub fn decode_body(kind: PacketType, r: &mut Reader<'_>) -> Result<Message, DecodeError> {
        let m = match kind {
            PacketType::Registration => Message::Registration(Registration::decode(r)?),
            PacketType::Registered => Message::Registered(Registered::decode(r)?),
            PacketType::Task => Message::Task(TaskAssignment::decode(r)?),
            PacketType::Metrics => Message::Metrics(MetricsReport::decode(r)?),
            PacketType::Heartbeat => Message::Heartbeat(Heartbeat::decode(r)?),
            PacketType::Fragment => Message::Fragment(Fragment::decode(r)?),
            PacketType::Cancel => Message::Cancel(Cancel::decode(r)?),
            PacketType::Refused => Message::Refused(Refused::decode(r)?),
            PacketType::Ack | PacketType::Noack => {
                return Err(invalid("packet type", 0, "ACK and NOACK are not messages"));
            }
        };
        r.finish()?;
        Ok(m)
    }
}

impl Packet {
    /// The type byte's packet type.
    pub fn packet_type(&self) -> PacketType {
        match &self.body {
            Body::Ack(_) => PacketType::Ack,
            Body::Noack(_) => PacketType::Noack,
            Body::Reliable { message, .. } => message.packet_type(),
        }
    }

    /// Encodes the packet and appends its tag (keyed when `key` is given; `self.keyed` is
    /// ignored in favour of the key actually used).
    pub fn encode(&self, key: Option<&Key>) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        self.encode_into(key, &mut out);
        out
    }

    pub fn encode_into(&self, key: Option<&Key>, out: &mut Vec<u8>) {
        let start = out.len();
        let flags = if key.is_some() { KEYED_FLAG } else { 0 };
        out.put_u8((VERSION << 5) | flags | self.packet_type() as u8);
        out.put_varint(self.agent_id.into());
        match &self.body {
            Body::Ack(ack) => {
                out.put_u16(ack.seq);
                let bytes = ack_bitmap_len(ack.earlier);
                out.extend_from_slice(&ack.earlier.to_be_bytes()[4 - bytes..]);
            }
            Body::Noack(noack) => {
                out.put_u16(noack.seq);
                out.put_u8(noack.reason as u8);
            }
            Body::Reliable { seq, message } => {
                out.put_u16(*seq);
                message.encode_body(out);
            }
        }
        let t = tag::compute(key, &out[start..]);
        out.extend_from_slice(&t);
    }

    /// Verifies the tag and decodes a whole datagram.
    pub fn decode(bytes: &[u8], key: Option<&Key>) -> Result<Packet, DecodeError> {
        let header = Header::decode(bytes)?;
        header.verify_tag(bytes, key)?;
        header.decode_body(bytes)
    }
}

fn ack_bitmap_len(earlier: u32) -> usize {
    (32 - earlier.leading_zeros() as usize).div_ceil(8)
}

/// A fixed-width `u64` time field, at most [`MAX_TIME_MS`].
pub(crate) fn time_u64(r: &mut Reader<'_>, what: &'static str) -> Result<u64, DecodeError> {
    let at = r.offset();
    let t = r.u64(what)?;
    if t > MAX_TIME_MS {
        return Err(invalid(
            what,
            at,
            format!("{t} is later than the maximum {MAX_TIME_MS} (year 9999)"),
        ));
    }
    Ok(t)
}

/// A varint time field, at most [`MAX_TIME_MS`].
pub(crate) fn time_varint(r: &mut Reader<'_>, what: &'static str) -> Result<u64, DecodeError> {
    r.varint_max(what, MAX_TIME_MS)
}

#[cfg(test)]
mod tests;
