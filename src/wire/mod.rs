//! Bytes to messages and back, for both protocols: NetTask datagrams ([`Packet`]) and AlertFlow
//! frames ([`Frame`]). Pure functions, no I/O, big-endian; every decoder is bounds-checked and
//! returns a [`DecodeError`] naming the field and byte offset, on any input.

pub mod alertflow;
pub mod codec;
pub mod metrics;
pub mod packet;
pub mod probe;
pub mod tag;
pub mod task;

pub use alertflow::{Alert, AlertType, Frame, FrameBody, Severity};
pub use codec::DecodeError;

pub use metrics::{InterfaceCounters, LinkState, MetricsReport, Sample};
pub use packet::{
    Ack, Body, Cancel, Fragment, Header, Heartbeat, Message, Noack, NoackReason, Packet,
    PacketType, Registered, Registration,
};
pub use probe::{ParamValue, ProbeItem, ProbeParam, ProbeSample};
pub use tag::{Key, TAG_LEN};
pub use task::{AlertConditions, RuleSource, TaskAssignment, Transport, WorkItem};

use serde::Serialize;

/// A decoded NetTask packet or AlertFlow frame.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "protocol")]
pub enum Decoded {
    #[serde(rename = "nettask")]
    NetTask(Packet),
    #[serde(rename = "alertflow")]
    AlertFlow(Frame),
}

/// Decodes bytes that are either one NetTask datagram or one AlertFlow frame. The two are told
/// apart by the first byte: a frame starts with its length (at most 65536, so 0x00), a packet
/// with its version bits (0x20..0x3f for version 1).
pub fn decode_any(bytes: &[u8], key: Option<&Key>) -> Result<Decoded, DecodeError> {
    match bytes.first() {
        None => Err(DecodeError::Truncated {
            what: "first byte",
            offset: 0,
            needed: 1,
            available: 0,
        }),
        Some(0) => Frame::decode(bytes, key).map(Decoded::AlertFlow),
        Some(_) => Packet::decode(bytes, key).map(Decoded::NetTask),
    }
}

impl Decoded {
    /// Encodes again with the same kind of tag (keyed when `key` is given).
    pub fn encode(&self, key: Option<&Key>) -> Vec<u8> {
        match self {
            Decoded::NetTask(p) => p.encode(key),
            Decoded::AlertFlow(f) => f.encode(key),
        }
    }
}
