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

use super::codec::{DecodeError, Reader, Writer, invalid};
use super::metrics::MetricsReport;
use super::tag::{self, Key, TAG_LEN};
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

/// Acknowledges packet `seq` and, for each bit i set in `earlier`, packet `seq - 1 - i`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ack {
    pub seq: u16,
    /// Bit i (least significant first) acknowledges `seq - 1 - i`. Sent as 0 to 4 bytes: just
    /// the bytes needed to hold the highest set bit.
    pub earlier: u32,
}

impl Ack {
    /// Every sequence number this ACK acknowledges, newest first.
    pub fn acknowledged(&self) -> impl Iterator<Item = u16> + '_ {
        std::iter::once(self.seq).chain(
            (0..ACK_BITMAP_BITS)
                .filter(|i| self.earlier & (1 << i) != 0)
                .map(|i| self.seq.wrapping_sub(1 + i)),
        )
    }
}

/// Why a packet was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoackReason {
    /// The tag did not match: the sender should retransmit at once.
    BadTag = 1,
    /// The receiver knows no registered agent by that id: the agent should register again.
    UnknownAgent = 2,
    /// The body could not be decoded.
    Malformed = 3,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Noack {
    pub seq: u16,
    pub reason: NoackReason,
}

/// Capabilities an agent reports at registration.
pub const CAP_PING: u8 = 0x01;
pub const CAP_IPERF3: u8 = 0x02;

/// REGISTRATION: an agent introduces itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Registration {
    /// The agent's name (matched against `device_id` in task files).
    pub name: String,
    /// Random per agent process: tells a restarted agent from a retransmission.
    pub instance: u64,
    /// The agent's clock, Unix milliseconds.
    pub time_ms: u64,
    /// Bit set of CAP_* tools found on the host.
    pub capabilities: u8,
    /// The agent's software version.
    pub software: String,
}

/// REGISTERED: the server's answer to a registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Registered {
    /// Echo of the registration's instance, so an agent ignores answers meant for a previous run.
    pub instance: u64,
    /// TCP port of the server's AlertFlow listener.
    pub alertflow_port: u16,
    /// How often the agent must be heard from, in milliseconds.
    pub heartbeat_ms: u32,
    /// Initial retransmission timeout in milliseconds (200 in the original design).
    pub timeout_ms: u32,
    /// Retransmissions before a peer is declared lost (3 in the original design).
    pub max_retransmissions: u8,
    /// The server's clock, Unix milliseconds.
    pub server_time_ms: u64,
}

/// HEARTBEAT: sent by an agent that has nothing else to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Heartbeat {
    pub time_ms: u64,
    /// Metrics reports the agent holds that are not yet acknowledged.
    pub pending_reports: u32,
}

/// Why the server refused a registration whose tag it could verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    /// The registration's time is further from the server's clock than the server accepts.
    Clock = 1,
    /// The registration is not newer than the last one the server accepted for this name: a
    /// replay, or the agent's clock went back.
    NotNewer = 2,
    /// The server takes no new agents now (its `--max-agents`, or too many new names at once).
    Full = 3,
}

impl RefusalReason {
    pub fn describe(self) -> &'static str {
        match self {
            RefusalReason::Clock => "its time is too far from the server's clock",
            RefusalReason::NotNewer => {
                "not newer than the last registration the server accepted for this name"
            }
            RefusalReason::Full => "the server takes no new agents now",
        }
    }
}

/// REFUSED: the server's answer to a registration it will not accept (sent only when it could
/// verify the registration's tag, so with a key it is tagged with that registration's session
/// key and an agent can trust it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refused {
    /// Echo of the registration's instance.
    pub instance: u64,
    pub reason: RefusalReason,
    /// The server's clock, Unix milliseconds.
    pub server_time_ms: u64,
    /// For `NotNewer`: the agent-clock time of the last registration accepted for this name;
    /// otherwise 0.
    pub last_accepted_ms: u64,
}

/// CANCEL: the server withdraws a task from an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cancel {
    pub task_number: u32,
}

/// FRAGMENT: one piece of a message too large for one datagram. Each fragment is itself a
/// reliable packet; the receiver reassembles `count` pieces of `message_id` in `index` order and
/// decodes the result as a body of `inner_type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fragment {
    pub message_id: u16,
    pub index: u16,
    pub count: u16,
    pub inner_type: PacketType,
    #[serde(serialize_with = "serialize_hex")]
    pub chunk: Vec<u8>,
}

fn serialize_hex<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(bytes))
}

impl Refused {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.instance);
        out.put_u8(self.reason as u8);
        out.put_u64(self.server_time_ms);
        out.put_u64(self.last_accepted_ms);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let instance = r.u64("instance")?;
        let at = r.offset();
        let reason = match r.u8("refusal reason")? {
            1 => RefusalReason::Clock,
            2 => RefusalReason::NotNewer,
            3 => RefusalReason::Full,
            v => {
                return Err(DecodeError::Unknown {
                    what: "refusal reason",
                    value: v.into(),
                    offset: at,
                });
            }
        };
        Ok(Refused {
            instance,
            reason,
            server_time_ms: time_u64(r, "server time")?,
            last_accepted_ms: time_u64(r, "last accepted registration time")?,
        })
    }
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

impl Registration {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_string(&self.name);
        out.put_u64(self.instance);
        out.put_u64(self.time_ms);
        out.put_u8(self.capabilities);
        out.put_string(&self.software);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let at = r.offset();
        let name = r.string("agent name", MAX_NAME_LEN)?;
        if name.is_empty() {
            return Err(invalid("agent name", at, "empty"));
        }
        Ok(Registration {
            name,
            instance: r.u64("instance")?,
            time_ms: time_u64(r, "time")?,
            capabilities: r.u8("capabilities")?,
            software: r.string("software version", MAX_NAME_LEN)?,
        })
    }
}

impl Registered {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.instance);
        out.put_u16(self.alertflow_port);
        out.put_varint(self.heartbeat_ms.into());
        out.put_varint(self.timeout_ms.into());
        out.put_u8(self.max_retransmissions);
        out.put_u64(self.server_time_ms);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Registered {
            instance: r.u64("instance")?,
            alertflow_port: r.u16("AlertFlow port")?,
            heartbeat_ms: r.varint_u32("heartbeat interval")?,
            timeout_ms: r.varint_u32("timeout")?,
            max_retransmissions: r.u8("max retransmissions")?,
            server_time_ms: time_u64(r, "server time")?,
        })
    }
}

impl Heartbeat {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_varint(self.time_ms);
        out.put_varint(self.pending_reports.into());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Heartbeat {
            time_ms: time_varint(r, "time")?,
            pending_reports: r.varint_u32("pending reports")?,
        })
    }
}

impl Cancel {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_varint(self.task_number.into());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Cancel {
            task_number: r.varint_u32("task number")?,
        })
    }
}

impl Fragment {
    /// Bytes a fragment adds around its chunk.
    pub const OVERHEAD: usize = 7;

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(self.message_id);
        out.put_u16(self.index);
        out.put_u16(self.count);
        out.put_u8(self.inner_type as u8);
        out.extend_from_slice(&self.chunk);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let message_id = r.u16("message id")?;
        let at = r.offset();
        let index = r.u16("fragment index")?;
        let count = r.u16("fragment count")?;
        if count < 2 || index >= count {
            return Err(invalid(
                "fragment index",
                at,
                format!("index {index} of {count} fragments (a message is split in at least 2)"),
            ));
        }
        let at = r.offset();
        let inner = r.u8("inner type")?;
        let inner_type = match PacketType::from_u8(inner) {
            Some(t) if t.is_reliable() && t != PacketType::Fragment => t,
            // REGISTRATION, REGISTERED and REFUSED are small and unnumbered: never fragmented.
            _ => {
                return Err(DecodeError::Unknown {
                    what: "fragmented message type",
                    value: inner.into(),
                    offset: at,
                });
            }
        };
        let chunk = r.rest().to_vec();
        if chunk.is_empty() {
            return Err(invalid("fragment", r.offset(), "empty chunk"));
        }
        Ok(Fragment {
            message_id,
            index,
            count,
            inner_type,
            chunk,
        })
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

/// What can be read of a packet before its tag is checked: enough to know whom to NOACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub keyed: bool,
    pub packet_type: PacketType,
    pub agent_id: u32,
    /// The sequence number (of the packet for reliable types; the acknowledged one for ACK/NOACK).
    pub seq: u16,
    /// Offset of the first body byte.
    pub body_start: usize,
}

/// Smallest possible datagram: type byte, one-byte agent id, sequence number, tag.
pub const MIN_PACKET_LEN: usize = 1 + 1 + 2 + TAG_LEN;

impl Header {
    pub fn decode(bytes: &[u8]) -> Result<Header, DecodeError> {
        let mut r = Reader::new(bytes);
        let first = r.u8("version/type byte")?;
        let version = first >> 5;
        if version != VERSION {
            return Err(DecodeError::UnsupportedVersion {
                version,
                offset: 0,
                supported: VERSION,
            });
        }
        let packet_type = PacketType::from_u8(first & 0x0f).ok_or(DecodeError::Unknown {
            what: "packet type",
            value: u64::from(first & 0x0f),
            offset: 0,
        })?;
        let agent_id = r.varint_max("agent id", MAX_AGENT_ID.into())? as u32;
        let seq_at = r.offset();
        let seq = r.u16("sequence number")?;
        if packet_type.is_unnumbered_message() && seq != 0 {
            return Err(invalid(
                "sequence number",
                seq_at,
                format!(
                    "{} carries sequence number 0, not {seq}",
                    packet_type.name()
                ),
            ));
        }
        let body_start = r.offset();
        if r.remaining() < TAG_LEN {
            return Err(DecodeError::Truncated {
                what: "tag",
                offset: body_start,
                needed: TAG_LEN,
                available: r.remaining(),
            });
        }
        Ok(Header {
            keyed: first & KEYED_FLAG != 0,
            packet_type,
            agent_id,
            seq,
            body_start,
        })
    }

    /// Checks the tag that ends `bytes` (the same bytes this header was read from).
    pub fn verify_tag(&self, bytes: &[u8], key: Option<&Key>) -> Result<(), DecodeError> {
        verify_tag(self.keyed, bytes, key)
    }

    /// Decodes the body. Call [`Header::verify_tag`] first.
    pub fn decode_body(&self, bytes: &[u8]) -> Result<Packet, DecodeError> {
        let tag_at = bytes.len() - TAG_LEN;
        let mut r = Reader::with_base(&bytes[self.body_start..tag_at], self.body_start);
        let body = match self.packet_type {
            PacketType::Ack => {
                let rest = r.rest();
                if rest.len() > 4 {
                    return Err(DecodeError::TrailingBytes {
                        offset: self.body_start + 4,
                        count: rest.len() - 4,
                    });
                }
                let mut earlier = 0u32;
                for b in rest {
                    earlier = (earlier << 8) | u32::from(*b);
                }
                if ack_bitmap_len(earlier) != rest.len() {
                    return Err(invalid(
                        "ACK bitmap",
                        self.body_start,
                        "has a leading zero byte (not in its shortest form)",
                    ));
                }
                Body::Ack(Ack {
                    seq: self.seq,
                    earlier,
                })
            }
            PacketType::Noack => {
                let at = r.offset();
                let reason = match r.u8("NOACK reason")? {
                    1 => NoackReason::BadTag,
                    2 => NoackReason::UnknownAgent,
                    3 => NoackReason::Malformed,
                    v => {
                        return Err(DecodeError::Unknown {
                            what: "NOACK reason",
                            value: v.into(),
                            offset: at,
                        });
                    }
                };
                r.finish()?;
                Body::Noack(Noack {
                    seq: self.seq,
                    reason,
                })
            }
            kind => Body::Reliable {
                seq: self.seq,
                message: Message::decode_body(kind, &mut r)?,
            },
        };
        Ok(Packet {
            keyed: self.keyed,
            agent_id: self.agent_id,
            body,
        })
    }
}

/// Checks the trailing tag of a packet or frame whose KEYED flag is `keyed`.
pub(crate) fn verify_tag(keyed: bool, bytes: &[u8], key: Option<&Key>) -> Result<(), DecodeError> {
    let tag_at = bytes.len().saturating_sub(TAG_LEN);
    let (data, received) = bytes.split_at(tag_at);
    match (keyed, key) {
        (true, None) => Err(DecodeError::KeyRequired),
        (false, Some(_)) => Err(DecodeError::BadTag {
            offset: tag_at,
            detail: "the packet has a plain hash tag but a key is configured",
        }),
        (true, Some(key)) => {
            if tag::matches(Some(key), data, received) {
                Ok(())
            } else {
                Err(DecodeError::BadTag {
                    offset: tag_at,
                    detail: "HMAC-SHA-256 with the given key",
                })
            }
        }
        (false, None) => {
            if tag::matches(None, data, received) {
                Ok(())
            } else {
                Err(DecodeError::BadTag {
                    offset: tag_at,
                    detail: "SHA-256 of the preceding bytes",
                })
            }
        }
    }
}

#[cfg(test)]
mod tests;
