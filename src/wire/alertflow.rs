//! AlertFlow frames: alerts from agent to server over TCP, and the server's acknowledgements.
//!
//! ```text
//! u32           length of everything after this field (type byte .. tag), at most 65536
//! byte          version (bits 7-5) | KEYED flag (bit 4) | frame type (bits 3-0)
//! varint        agent id
//! ...           body
//! 12 bytes      tag over every preceding byte, the length included
//! ```
//! [`check`] says whether a whole frame is buffered before [`Frame::decode`] parses it.

use super::codec::{DecodeError, MAX_STRING_LEN, Reader, Writer, invalid};
use super::packet::{MAX_AGENT_ID, MAX_NAME_LEN, VERSION, verify_tag};
use super::tag::{self, Key, TAG_LEN};
use serde::{Deserialize, Serialize};

/// Longest subject of an alert (an interface name, a target).
pub const MAX_SUBJECT_LEN: usize = 255;

/// `subject` cut to [`MAX_SUBJECT_LEN`] bytes (at a character boundary), so any alert encodes.
pub fn clip_subject(subject: &str) -> String {
    if subject.len() <= MAX_SUBJECT_LEN {
        return subject.to_string();
    }
    let mut end = MAX_SUBJECT_LEN;
    while !subject.is_char_boundary(end) {
        end -= 1;
    }
    subject[..end].to_string()
}
/// Largest value of the length field.
pub const MAX_FRAME_LEN: usize = 65536;
/// Smallest value of the length field: type byte, agent id, ALERT_ACK id, tag.
pub const MIN_FRAME_LEN: usize = 1 + 1 + 8 + TAG_LEN;
const KEYED_FLAG: u8 = 0x10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FrameType {
    Alert = 1,
    AlertAck = 2,
}

/// The kinds of alert. The first seven are the original design's alert types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertType {
    Cpu = 1,
    Ram = 2,
    Jitter = 3,
    PacketLoss = 4,
    Timeout = 5,
    InterfaceStats = 6,
    Error = 7,
    Latency = 8,
    Bandwidth = 9,
    AgentDown = 10,
    AgentUp = 11,
    Custom = 12,
}

impl AlertType {
    pub const ALL: [AlertType; 12] = [
        AlertType::Cpu,
        AlertType::Ram,
        AlertType::Jitter,
        AlertType::PacketLoss,
        AlertType::Timeout,
        AlertType::InterfaceStats,
        AlertType::Error,
        AlertType::Latency,
        AlertType::Bandwidth,
        AlertType::AgentDown,
        AlertType::AgentUp,
        AlertType::Custom,
    ];

    pub fn from_u8(v: u8) -> Option<AlertType> {
        AlertType::ALL.into_iter().find(|t| *t as u8 == v)
    }

    /// The original design's upper-case name (CPU, PACKETLOSS, ...).
    pub fn name(self) -> &'static str {
        match self {
            AlertType::Cpu => "CPU",
            AlertType::Ram => "RAM",
            AlertType::Jitter => "JITTER",
            AlertType::PacketLoss => "PACKETLOSS",
            AlertType::Timeout => "TIMEOUT",
            AlertType::InterfaceStats => "INTERFACESTATS",
            AlertType::Error => "ERROR",
            AlertType::Latency => "LATENCY",
            AlertType::Bandwidth => "BANDWIDTH",
            AlertType::AgentDown => "AGENT_DOWN",
            AlertType::AgentUp => "AGENT_UP",
            AlertType::Custom => "CUSTOM",
        }
    }

    /// The lower-case name used by the HTTP API and rules (cpu, packet_loss, ...).
    pub fn kind(self) -> &'static str {
        match self {
            AlertType::Cpu => "cpu",
            AlertType::Ram => "ram",
            AlertType::Jitter => "jitter",
            AlertType::PacketLoss => "packet_loss",
            AlertType::Timeout => "timeout",
            AlertType::InterfaceStats => "interface_stats",
            AlertType::Error => "error",
            AlertType::Latency => "latency",
            AlertType::Bandwidth => "bandwidth",
            AlertType::AgentDown => "agent_down",
            AlertType::AgentUp => "agent_up",
            AlertType::Custom => "custom",
        }
    }

    /// Parses either spelling (`PACKETLOSS`, `packet_loss`).
    pub fn parse(s: &str) -> Option<AlertType> {
        AlertType::ALL
            .into_iter()
            .find(|t| t.kind().eq_ignore_ascii_case(s) || t.name().eq_ignore_ascii_case(s))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info = 0,
    Warning = 1,
    Critical = 2,
}

impl Severity {
    pub fn parse(s: &str) -> Option<Severity> {
        match s.to_ascii_lowercase().as_str() {
            "info" => Some(Severity::Info),
            "warning" | "warn" => Some(Severity::Warning),
            "critical" | "crit" => Some(Severity::Critical),
            _ => None,
        }
    }
}

/// One alert, as an agent raised it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Random, chosen when the alert is raised: the server stores each id once however often the
    /// alert is resent.
    pub alert_id: u64,
    /// 0 for a new alert; otherwise this message says that the alert with this id stopped
    /// firing (its condition no longer holds), at `time_ms`.
    #[serde(default)]
    pub resolves: u64,
    pub agent: String,
    pub task: String,
    #[serde(rename = "kind")]
    pub alert_type: AlertType,
    pub severity: Severity,
    pub value: f64,
    pub threshold: f64,
    /// When the rule fired, Unix milliseconds (agent clock).
    pub time_ms: u64,
    pub rule: String,
    pub message: String,
    /// What the alert is about within its rule, when the rule fires once per thing: an
    /// interface name, `ping` or `iperf` (a threshold on both tools), a rule's own name for
    /// it; empty otherwise. With agent, task, kind and rule it names the alert across
    /// episodes (Alertmanager's labels).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subject: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FrameBody {
    Alert(Alert),
    AlertAck { alert_id: u64 },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Frame {
    pub keyed: bool,
    pub agent_id: u32,
    #[serde(flatten)]
    pub body: FrameBody,
}

/// Whether `buf` starts with a whole frame: `Ok(Some(total))` gives the frame's size including
/// its length field; `Ok(None)` means more bytes are needed; an error means the length field is
/// impossible and the connection should be dropped.
pub fn check(buf: &[u8]) -> Result<Option<usize>, DecodeError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if !(MIN_FRAME_LEN..=MAX_FRAME_LEN).contains(&len) {
        return Err(invalid(
            "frame length",
            0,
            format!("{len} is outside {MIN_FRAME_LEN}..={MAX_FRAME_LEN}"),
        ));
    }
    Ok(if buf.len() >= 4 + len {
        Some(4 + len)
    } else {
        None
    })
}

impl Frame {
    pub fn frame_type(&self) -> FrameType {
        match self.body {
            FrameBody::Alert(_) => FrameType::Alert,
            FrameBody::AlertAck { .. } => FrameType::AlertAck,
        }
    }

    pub fn encode(&self, key: Option<&Key>) -> Vec<u8> {
        let mut out = vec![0, 0, 0, 0];
        let flags = if key.is_some() { KEYED_FLAG } else { 0 };
        out.put_u8((VERSION << 5) | flags | self.frame_type() as u8);
        out.put_varint(self.agent_id.into());
        match &self.body {
            FrameBody::Alert(a) => {
                out.put_u64(a.alert_id);
                out.put_u64(a.resolves);
                out.put_string(&a.agent);
                out.put_string(&a.task);
                out.put_u8(a.alert_type as u8);
                out.put_u8(a.severity as u8);
                out.put_f64(a.value);
                out.put_f64(a.threshold);
                out.put_u64(a.time_ms);
                out.put_string(&a.rule);
                out.put_string(&a.message);
                out.put_string(&a.subject);
            }
            FrameBody::AlertAck { alert_id } => out.put_u64(*alert_id),
        }
        let len = (out.len() - 4 + TAG_LEN) as u32;
        out[..4].copy_from_slice(&len.to_be_bytes());
        let t = tag::compute(key, &out);
        out.extend_from_slice(&t);
        out
    }

    /// Decodes exactly one whole frame (length field included) and verifies its tag.
    pub fn decode(bytes: &[u8], key: Option<&Key>) -> Result<Frame, DecodeError> {
        let mut r = Reader::new(bytes);
        check_frame_length(&mut r, bytes.len())?;
        let first = r.u8("version/type byte")?;
        let frame_type = frame_type_of(first)?;
        let keyed = first & KEYED_FLAG != 0;
        verify_tag(keyed, bytes, key)?;
        let agent_id = r.varint_max("agent id", MAX_AGENT_ID.into())? as u32;
        let body_start = r.offset();
        let tag_at = bytes.len() - TAG_LEN;
        if body_start > tag_at {
            return Err(DecodeError::Truncated {
                what: "tag",
                offset: body_start,
                needed: TAG_LEN,
                available: bytes.len() - body_start,
            });
        }
        let mut r = Reader::with_base(&bytes[body_start..tag_at], body_start);
        let body = match frame_type {
            FrameType::Alert => FrameBody::Alert(Alert::decode(&mut r)?),
            FrameType::AlertAck => FrameBody::AlertAck {
                alert_id: r.u64("alert id")?,
            },
        };
        r.finish()?;
        Ok(Frame {
            keyed,
            agent_id,
            body,
        })
    }
}

/// Reads the length field of a frame of `total` bytes: within the bounds, and exactly the
/// bytes that follow it.
fn check_frame_length(r: &mut Reader<'_>, total: usize) -> Result<(), DecodeError> {
    let len = r.u32("frame length")? as usize;
    if !(MIN_FRAME_LEN..=MAX_FRAME_LEN).contains(&len) {
        return Err(invalid(
            "frame length",
            0,
            format!("{len} is outside {MIN_FRAME_LEN}..={MAX_FRAME_LEN}"),
        ));
    }
    if r.remaining() < len {
        return Err(DecodeError::Truncated {
            what: "frame",
            offset: total,
            needed: len,
            available: r.remaining(),
        });
    }
    if r.remaining() > len {
        return Err(DecodeError::TrailingBytes {
            offset: 4 + len,
            count: r.remaining() - len,
        });
    }
    Ok(())
}

/// The frame type in a frame's version/type byte (at offset 4), of this protocol version.
fn frame_type_of(first: u8) -> Result<FrameType, DecodeError> {
    let version = first >> 5;
    if version != VERSION {
        return Err(DecodeError::UnsupportedVersion {
            version,
            offset: 4,
            supported: VERSION,
        });
    }
    match first & 0x0f {
        1 => Ok(FrameType::Alert),
        2 => Ok(FrameType::AlertAck),
        v => Err(DecodeError::Unknown {
            what: "frame type",
            value: v.into(),
            offset: 4,
        }),
    }
}

impl Alert {
    /// Decodes the body of an ALERT frame.
    fn decode(r: &mut Reader<'_>) -> Result<Alert, DecodeError> {
        let alert_id = r.u64("alert id")?;
        let resolves = r.u64("resolved alert id")?;
        let agent = r.string("agent name", MAX_NAME_LEN)?;
        let task = r.string("task id", MAX_STRING_LEN)?;
        let alert_type = r.code("alert type", AlertType::from_u8)?;
        let severity = r.code("severity", |code| match code {
            0 => Some(Severity::Info),
            1 => Some(Severity::Warning),
            2 => Some(Severity::Critical),
            _ => None,
        })?;
        Ok(Alert {
            alert_id,
            resolves,
            agent,
            task,
            alert_type,
            severity,
            value: r.f64("value")?,
            threshold: r.f64("threshold")?,
            time_ms: crate::wire::packet::time_u64(r, "time")?,
            rule: r.string("rule name", MAX_STRING_LEN)?,
            message: r.string("message", MAX_STRING_LEN)?,
            subject: r.string("subject", MAX_SUBJECT_LEN)?,
        })
    }
}
