//! TASK: the work one agent receives for one task, as it travels from server to agent.
//!
//! The server numbers each task (`task_number`) so that metrics reports refer to it with one or
//! two bytes instead of the task's textual id. A TASK with a task number the agent already runs
//! replaces that work.

use super::codec::{DecodeError, MAX_RULE_SOURCE_LEN, MAX_STRING_LEN, Reader, Writer, invalid};
use super::probe::ProbeItem;
use serde::{Deserialize, Serialize};

/// Most work items in one assignment.
pub const MAX_WORK_ITEMS: usize = 32;
/// Most interfaces one metrics-gathering item watches.
pub const MAX_INTERFACES: usize = 64;
/// Most rules one assignment carries.
pub const MAX_RULES: usize = 32;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskAssignment {
    pub task_number: u32,
    pub task_id: String,
    pub items: Vec<WorkItem>,
    pub conditions: AlertConditions,
    pub rules: Vec<RuleSource>,
}

/// Transport iperf3 uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Tcp = 0,
    Udp = 1,
}

/// One measurement an agent runs on a schedule. Names follow the original design's packet types.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WorkItem {
    /// CPU, RAM and interface counters.
    #[serde(rename = "METRICSGATHERING")]
    MetricsGathering {
        cpu: bool,
        ram: bool,
        interfaces: Vec<String>,
        frequency_s: u32,
    },
    /// The system `ping` towards `destination`: `packet_count` echo requests `interval_ms`
    /// apart (`ping -c COUNT -i INTERVAL`), every `frequency_s`.
    Ping {
        destination: String,
        packet_count: u16,
        interval_ms: u32,
        frequency_s: u32,
    },
    /// `iperf3 -c server_address`, in its time slot: every `frequency_s`, `offset_ms` after the
    /// start of each period of the server's clock (periods start when the server's Unix time is
    /// a multiple of the frequency), so that no two clients use one iperf server at once.
    #[serde(rename = "IPERFCLIENT")]
    IperfClient {
        server_address: String,
        port: u16,
        duration_s: u32,
        transport: Transport,
        /// The rate offered (`iperf3 -b`), bits per second; 0 for iperf3's own default (TCP:
        /// as fast as the link allows).
        rate_bps: u64,
        offset_ms: u32,
        frequency_s: u32,
    },
    /// `iperf3 -s` for a paired client.
    #[serde(rename = "IPERFSERVER")]
    IperfServer {
        port: u16,
        duration_s: u32,
        transport: Transport,
        frequency_s: u32,
    },
    /// A pluggable probe (`crate::probes::probe`), named with its parameters.
    #[serde(rename = "PROBE")]
    Probe(ProbeItem),
}

/// Thresholds from a task file's `alertflow_conditions`; `None` means no condition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertConditions {
    pub cpu_usage: Option<f32>,
    pub ram_usage: Option<f32>,
    pub interface_stats: Option<f32>,
    pub packet_loss: Option<f32>,
    pub jitter: Option<f32>,
}

/// A rule's name and rhai source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleSource {
    pub name: String,
    pub source: String,
}

impl Transport {
    /// `tcp` or `udp`.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }
}

const KIND_METRICS: u8 = 1;
const KIND_PING: u8 = 2;
const KIND_IPERF_CLIENT: u8 = 3;
const KIND_IPERF_SERVER: u8 = 4;
const KIND_PROBE: u8 = 5;

impl WorkItem {
    /// A few words for logs and API answers: `ping 10.0.0.1 x5 every 20s`.
    pub fn describe(&self) -> String {
        match self {
            WorkItem::MetricsGathering {
                cpu,
                ram,
                interfaces,
                frequency_s,
            } => {
                let mut parts = Vec::new();
                if *cpu {
                    parts.push("cpu".to_string());
                }
                if *ram {
                    parts.push("ram".to_string());
                }
                if !interfaces.is_empty() {
                    parts.push(format!("interfaces {}", interfaces.join("/")));
                }
                format!("{} every {frequency_s}s", parts.join("+"))
            }
            WorkItem::Ping {
                destination,
                packet_count,
                interval_ms,
                frequency_s,
            } => format!(
                "ping {destination} x{packet_count} at {} intervals every {frequency_s}s",
                seconds_text(*interval_ms)
            ),
            WorkItem::IperfClient {
                server_address,
                duration_s,
                transport,
                rate_bps,
                offset_ms,
                frequency_s,
                ..
            } => {
                let rate = if *rate_bps > 0 {
                    format!(", {}", rate_text(*rate_bps))
                } else {
                    String::new()
                };
                format!(
                    "iperf3 client to {server_address} ({}{rate}, {duration_s}s) every \
                     {frequency_s}s at +{}",
                    transport.name(),
                    seconds_text(*offset_ms)
                )
            }
            WorkItem::IperfServer {
                port, frequency_s, ..
            } => format!("iperf3 server on port {port} every {frequency_s}s"),
            WorkItem::Probe(item) => item.describe(),
        }
    }

    pub fn frequency_s(&self) -> u32 {
        match self {
            WorkItem::MetricsGathering { frequency_s, .. }
            | WorkItem::Ping { frequency_s, .. }
            | WorkItem::IperfClient { frequency_s, .. }
            | WorkItem::IperfServer { frequency_s, .. } => *frequency_s,
            WorkItem::Probe(item) => item.frequency_s,
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            WorkItem::MetricsGathering {
                cpu,
                ram,
                interfaces,
                frequency_s,
            } => {
                out.put_u8(KIND_METRICS);
                out.put_u8(u8::from(*cpu) | (u8::from(*ram) << 1));
                out.put_u8(interfaces.len() as u8);
                for name in interfaces {
                    out.put_string(name);
                }
                out.put_varint((*frequency_s).into());
            }
            WorkItem::Ping {
                destination,
                packet_count,
                interval_ms,
                frequency_s,
            } => {
                out.put_u8(KIND_PING);
                out.put_string(destination);
                out.put_varint((*packet_count).into());
                out.put_varint((*interval_ms).into());
                out.put_varint((*frequency_s).into());
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
                out.put_u8(KIND_IPERF_CLIENT);
                out.put_string(server_address);
                out.put_u16(*port);
                out.put_varint((*duration_s).into());
                out.put_u8(*transport as u8);
                out.put_varint(*rate_bps);
                out.put_varint((*offset_ms).into());
                out.put_varint((*frequency_s).into());
            }
            WorkItem::IperfServer {
                port,
                duration_s,
                transport,
                frequency_s,
            } => {
                out.put_u8(KIND_IPERF_SERVER);
                out.put_u16(*port);
                out.put_varint((*duration_s).into());
                out.put_u8(*transport as u8);
                out.put_varint((*frequency_s).into());
            }
            WorkItem::Probe(item) => {
                out.put_u8(KIND_PROBE);
                item.encode(out);
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let at = r.offset();
        let item = match r.u8("work item kind")? {
            KIND_METRICS => {
                let flags_at = r.offset();
                let flags = r.u8("metrics flags")?;
                if flags > 3 {
                    return Err(invalid(
                        "metrics flags",
                        flags_at,
                        format!("{flags:#04x} has unknown bits"),
                    ));
                }
                let count = bounded_count(r, "interface count", MAX_INTERFACES)?;
                let mut interfaces = Vec::with_capacity(count);
                for _ in 0..count {
                    // The same bound as an interface name in a METRICS sample.
                    let at = r.offset();
                    let name =
                        r.string("interface name", crate::wire::metrics::MAX_INTERFACE_NAME)?;
                    if name.is_empty() {
                        return Err(invalid("interface name", at, "empty"));
                    }
                    interfaces.push(name);
                }
                WorkItem::MetricsGathering {
                    cpu: flags & 1 != 0,
                    ram: flags & 2 != 0,
                    interfaces,
                    frequency_s: frequency(r)?,
                }
            }
            KIND_PING => WorkItem::Ping {
                destination: r.string("ping destination", MAX_STRING_LEN)?,
                packet_count: r.varint_max("packet count", u16::MAX.into())? as u16,
                interval_ms: {
                    let at = r.offset();
                    let interval = r.varint_u32("ping interval")?;
                    if interval == 0 {
                        return Err(invalid("ping interval", at, "must be at least 1 ms"));
                    }
                    interval
                },
                frequency_s: frequency(r)?,
            },
            KIND_IPERF_CLIENT => {
                let server_address = r.string("iperf server address", MAX_STRING_LEN)?;
                let port = r.u16("iperf port")?;
                let duration_s = r.varint_u32("duration")?;
                let transport = transport(r)?;
                let rate_bps = r.varint("iperf rate")?;
                let offset_at = r.offset();
                let offset_ms = r.varint_u32("slot offset")?;
                let frequency_s = frequency(r)?;
                if u64::from(offset_ms) >= u64::from(frequency_s) * 1000 {
                    return Err(invalid(
                        "slot offset",
                        offset_at,
                        format!("{offset_ms} ms is not within the period of {frequency_s} s"),
                    ));
                }
                WorkItem::IperfClient {
                    server_address,
                    port,
                    duration_s,
                    transport,
                    rate_bps,
                    offset_ms,
                    frequency_s,
                }
            }
            KIND_IPERF_SERVER => WorkItem::IperfServer {
                port: r.u16("iperf port")?,
                duration_s: r.varint_u32("duration")?,
                transport: transport(r)?,
                frequency_s: frequency(r)?,
            },
            KIND_PROBE => WorkItem::Probe(ProbeItem::decode(r)?),
            v => {
                return Err(DecodeError::Unknown {
                    what: "work item kind",
                    value: v.into(),
                    offset: at,
                });
            }
        };
        Ok(item)
    }
}

/// Milliseconds as seconds for people: `0.2 s`, `1 s`, `12.5 s`.
pub fn seconds_text(ms: u32) -> String {
    format!("{} s", f64::from(ms) / 1000.0)
}

/// A bit rate for people: `100 Mbit/s`, `1.5 Gbit/s`, `64 kbit/s`.
pub fn rate_text(bps: u64) -> String {
    let bps = bps as f64;
    let (value, unit) = if bps >= 1e9 {
        (bps / 1e9, "Gbit/s")
    } else if bps >= 1e6 {
        (bps / 1e6, "Mbit/s")
    } else if bps >= 1e3 {
        (bps / 1e3, "kbit/s")
    } else {
        (bps, "bit/s")
    };
    format!("{} {unit}", (value * 1000.0).round() / 1000.0)
}

fn frequency(r: &mut Reader<'_>) -> Result<u32, DecodeError> {
    let at = r.offset();
    let f = r.varint_u32("frequency")?;
    if f == 0 {
        return Err(invalid("frequency", at, "must be at least 1 second"));
    }
    Ok(f)
}

pub(crate) fn transport(r: &mut Reader<'_>) -> Result<Transport, DecodeError> {
    let at = r.offset();
    match r.u8("transport")? {
        0 => Ok(Transport::Tcp),
        1 => Ok(Transport::Udp),
        v => Err(DecodeError::Unknown {
            what: "transport",
            value: v.into(),
            offset: at,
        }),
    }
}

pub(crate) fn bounded_count(
    r: &mut Reader<'_>,
    what: &'static str,
    max: usize,
) -> Result<usize, DecodeError> {
    let at = r.offset();
    let n = r.u8(what)? as usize;
    if n > max {
        return Err(invalid(what, at, format!("{n} exceeds the maximum {max}")));
    }
    Ok(n)
}

/// The conditions in wire order (bit order); `crate::rules::CONDITIONS` says what each means.
pub const CONDITION_NAMES: [&str; 5] = [
    "cpu_usage",
    "ram_usage",
    "interface_stats",
    "packet_loss",
    "jitter",
];

impl AlertConditions {
    /// The thresholds in [`CONDITION_NAMES`] order.
    pub fn values(&self) -> [Option<f32>; 5] {
        [
            self.cpu_usage,
            self.ram_usage,
            self.interface_stats,
            self.packet_loss,
            self.jitter,
        ]
    }

    /// The conditions of thresholds in [`CONDITION_NAMES`] order.
    pub fn from_values(values: [Option<f32>; 5]) -> Self {
        let [cpu_usage, ram_usage, interface_stats, packet_loss, jitter] = values;
        AlertConditions {
            cpu_usage,
            ram_usage,
            interface_stats,
            packet_loss,
            jitter,
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let values = self.values();
        let mut present = 0u8;
        for (i, v) in values.iter().enumerate() {
            if v.is_some() {
                present |= 1 << i;
            }
        }
        out.put_u8(present);
        for v in values.into_iter().flatten() {
            out.put_f32(v);
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let at = r.offset();
        let present = r.u8("condition flags")?;
        if present >> CONDITION_NAMES.len() != 0 {
            return Err(invalid(
                "condition flags",
                at,
                format!("{present:#04x} has unknown bits"),
            ));
        }
        let mut values = [None; 5];
        for (i, slot) in values.iter_mut().enumerate() {
            if present & (1 << i) != 0 {
                let at = r.offset();
                let v = r.f32(CONDITION_NAMES[i])?;
                if !v.is_finite() || v < 0.0 {
                    return Err(invalid(
                        CONDITION_NAMES[i],
                        at,
                        format!("threshold {v} is not a finite non-negative number"),
                    ));
                }
                *slot = Some(v);
            }
        }
        Ok(AlertConditions::from_values(values))
    }
}

impl TaskAssignment {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_varint(self.task_number.into());
        out.put_string(&self.task_id);
        out.put_u8(self.items.len() as u8);
        for item in &self.items {
            item.encode(out);
        }
        self.conditions.encode(out);
        out.put_u8(self.rules.len() as u8);
        for rule in &self.rules {
            out.put_string(&rule.name);
            out.put_string(&rule.source);
        }
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let task_number = r.varint_u32("task number")?;
        let at = r.offset();
        let task_id = r.string("task id", MAX_STRING_LEN)?;
        if task_id.is_empty() {
            return Err(invalid("task id", at, "empty"));
        }
        let count = bounded_count(r, "work item count", MAX_WORK_ITEMS)?;
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            items.push(WorkItem::decode(r)?);
        }
        let conditions = AlertConditions::decode(r)?;
        let count = bounded_count(r, "rule count", MAX_RULES)?;
        let mut rules = Vec::with_capacity(count);
        for _ in 0..count {
            rules.push(RuleSource {
                name: r.string("rule name", MAX_STRING_LEN)?,
                source: r.string("rule source", MAX_RULE_SOURCE_LEN)?,
            });
        }
        Ok(TaskAssignment {
            task_number,
            task_id,
            items,
            conditions,
            rules,
        })
    }
}
