//! The normalized task model both dialects are read into: a task is a frequency and a list of
//! devices, each device a list of planned measurements, its alert thresholds and its hand-written
//! rule files. Everything here has passed validation.

use crate::wire::{AlertConditions, ProbeItem, Transport};
use serde::Serialize;
use std::fmt;
use std::path::PathBuf;

/// Which of the two accepted task file layouts a task was written in, told apart by structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// `link_metrics` holds `bandwidth`, `jitter`, `packet_loss` and `latency` entries.
    Assignment,
    /// The original implementation's layout: `link_metrics` holds `iperf_parameters` and
    /// `ping_parameters`; one device is a ping task, two devices an iperf pair.
    Original,
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dialect::Assignment => "assignment",
            Dialect::Original => "original",
        })
    }
}

/// One task of a task file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Task {
    pub task_id: String,
    /// The task's frequency: how often device metrics are gathered, and the default for link
    /// measurements that do not give their own.
    pub frequency_s: u32,
    pub dialect: Dialect,
    pub devices: Vec<Device>,
}

/// What one device (agent) of a task does.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Device {
    /// Matched as text against the agent's id.
    pub device_id: String,
    /// Never empty.
    pub items: Vec<PlannedItem>,
    pub conditions: AlertConditions,
    /// Hand-written rhai rule files, resolved against the task file's folder.
    pub rule_files: Vec<PathBuf>,
    /// What of the device's entry nms reads but does not use, and why (original dialect: a
    /// threshold on a figure the device does not measure, which that system ignored too).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// One measurement a device runs on a schedule, before the server knows every address.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PlannedItem {
    /// CPU, RAM and interface counters.
    MetricsGathering {
        cpu: bool,
        ram: bool,
        interfaces: Vec<String>,
        frequency_s: u32,
    },
    /// The system `ping` towards `destination`: `packet_count` echo requests `interval_ms`
    /// apart, every `frequency_s`.
    Ping {
        destination: String,
        packet_count: u16,
        interval_ms: u32,
        frequency_s: u32,
    },
    /// `iperf3 -c` towards `server`, in the time slot the iperf plan gives it.
    IperfClient {
        server: IperfTarget,
        port: u16,
        duration_s: u32,
        transport: Transport,
        /// The offered rate (`iperf3 -b`), bits per second: set for UDP, 0 (iperf3's default,
        /// as fast as the link allows) for TCP.
        rate_bps: u64,
        frequency_s: u32,
        measures: IperfMetrics,
    },
    /// The listener (`iperf3 -s`) for a client of the same task. The test's figures are
    /// reported by the client (they are what the receiving side measured).
    IperfServer {
        port: u16,
        duration_s: u32,
        transport: Transport,
        frequency_s: u32,
        measures: IperfMetrics,
        /// The address its clients connect to, when the task file gives one
        /// (`server_address` on a server entry); otherwise the address its agent registered
        /// from.
        #[serde(skip_serializing_if = "Option::is_none")]
        address: Option<String>,
    },
    /// A pluggable probe (`crate::probes::probe`), its fields checked.
    Probe(ProbeItem),
}

/// Where an iperf client connects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IperfTarget {
    /// A host name or IP address written in the task file.
    Address(String),
    /// The device of this task that plays iperf server; the server fills in the address that
    /// device's agent registered from, when it dispatches the task.
    Device(String),
}

/// Which figures the task file asked an iperf run for. One run measures all of them (bandwidth
/// always, jitter and packet loss over UDP); this records what the user asked to watch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct IperfMetrics {
    pub bandwidth: bool,
    pub jitter: bool,
    pub packet_loss: bool,
}

impl Task {
    /// The device with this id.
    pub fn device(&self, device_id: &str) -> Option<&Device> {
        self.devices.iter().find(|d| d.device_id == device_id)
    }
}

impl PlannedItem {
    pub fn frequency_s(&self) -> u32 {
        match self {
            PlannedItem::MetricsGathering { frequency_s, .. }
            | PlannedItem::Ping { frequency_s, .. }
            | PlannedItem::IperfClient { frequency_s, .. }
            | PlannedItem::IperfServer { frequency_s, .. } => *frequency_s,
            PlannedItem::Probe(item) => item.frequency_s,
        }
    }
}
