//! TASK: the work one agent receives for one task, as it travels from server to agent.
//!
//! The server numbers each task (`task_number`) so that metrics reports refer to it with one or
//! two bytes instead of the task's textual id. A TASK with a task number the agent already runs
//! replaces that work. `work_item.rs` encodes and decodes the work items themselves.

use super::codec::{DecodeError, MAX_RULE_SOURCE_LEN, MAX_STRING_LEN, Reader, Writer, invalid};
mod work_item;

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

pub(crate) fn transport(r: &mut Reader<'_>) -> Result<Transport, DecodeError> {
    r.code("transport", |code| match code {
        0 => Some(Transport::Tcp),
        1 => Some(Transport::Udp),
        _ => None,
    })
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
