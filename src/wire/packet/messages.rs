//! The bodies of the NetTask messages that are not about tasks or metrics (registration and its
//! answers, heartbeat, cancellation, fragments) and of ACK and NOACK, each with its encoder and
//! decoder.

use super::{ACK_BITMAP_BITS, MAX_NAME_LEN, PacketType, time_u64, time_varint};
use crate::wire::codec::{DecodeError, Reader, Writer, invalid};
use serde::Serialize;

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
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.instance);
        out.put_u8(self.reason as u8);
        out.put_u64(self.server_time_ms);
        out.put_u64(self.last_accepted_ms);
    }
    pub(super) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let instance = r.u64("instance")?;
        let reason = r.code("refusal reason", |code| match code {
            1 => Some(RefusalReason::Clock),
            2 => Some(RefusalReason::NotNewer),
            3 => Some(RefusalReason::Full),
            _ => None,
        })?;
        Ok(Refused {
            instance,
            reason,
            server_time_ms: time_u64(r, "server time")?,
            last_accepted_ms: time_u64(r, "last accepted registration time")?,
        })
    }
}

impl Registration {
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        out.put_string(&self.name);
        out.put_u64(self.instance);
        out.put_u64(self.time_ms);
        out.put_u8(self.capabilities);
        out.put_string(&self.software);
    }
    pub(super) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
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
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.instance);
        out.put_u16(self.alertflow_port);
        out.put_varint(self.heartbeat_ms.into());
        out.put_varint(self.timeout_ms.into());
        out.put_u8(self.max_retransmissions);
        out.put_u64(self.server_time_ms);
    }
    pub(super) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
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
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        out.put_varint(self.time_ms);
        out.put_varint(self.pending_reports.into());
    }
    pub(super) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Heartbeat {
            time_ms: time_varint(r, "time")?,
            pending_reports: r.varint_u32("pending reports")?,
        })
    }
}

impl Cancel {
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        out.put_varint(self.task_number.into());
    }
    pub(super) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Cancel {
            task_number: r.varint_u32("task number")?,
        })
    }
}

impl Fragment {
    /// Bytes a fragment adds around its chunk.
    pub const OVERHEAD: usize = 7;

    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(self.message_id);
        out.put_u16(self.index);
        out.put_u16(self.count);
        out.put_u8(self.inner_type as u8);
        out.extend_from_slice(&self.chunk);
    }
    pub(super) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
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
