//! Checks on single values and on the parts both dialects share (ids, seconds, thresholds,
//! addresses, device metrics, conditions, rule files), each returning a [`TaskError`] that points
//! at the offending value's path and line:column.

use super::dialect::{RawConditions, RawDevice, RawDeviceMetrics, RawTask, TextId};
use super::error::{JsonPath, TaskError};
use super::model::{Device, PlannedItem};
use super::position::PositionIndex;
use crate::probes::ping::MAX_PACKET_COUNT;
use crate::rules::{CONDITIONS, Needs, Scale};
use crate::wire::codec::MAX_STRING_LEN;
use crate::wire::metrics::MAX_INTERFACE_NAME;
use crate::wire::task::{MAX_INTERFACES, MAX_RULES};
use crate::wire::{AlertConditions, Transport};
use serde_json::Number;
use std::collections::HashSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Longest frequency or duration: one day.
pub const MAX_SECONDS: u32 = 86_400;
/// Most rule files one device names; one more rule is left for its compiled conditions.
pub const MAX_RULE_FILES: usize = MAX_RULES - 1;
/// Most devices in one task.
pub const MAX_DEVICES: usize = 256;
/// Most tasks in one file.
pub const MAX_TASKS: usize = 1024;
/// Shortest interval between echo requests: what iputils ping allows (every user with current
/// iputils; older versions allow 0.2 s to users other than root, and an agent whose ping
/// refuses an interval says so in an ERROR alert).
pub const MIN_PING_INTERVAL_MS: u32 = 2;
/// The interval between echo requests when an assignment-dialect task does not give one: 0.2 s,
/// what every iputils ping allows every user.
pub const DEFAULT_PING_INTERVAL_MS: u32 = 200;
/// The interval between echo requests of an original-dialect ping without a `frequency`:
/// ping's own default, 1 s.
pub const ORIGINAL_DEFAULT_PING_INTERVAL_MS: u32 = 1000;
/// The rate a UDP iperf test offers when the task file does not say: 100 Mbit/s, which a LAN
/// carries without loss from the offered load alone (iperf3's own default is 1 Mbit/s).
pub const DEFAULT_UDP_RATE_BPS: u64 = 100_000_000;
/// Slowest and fastest UDP rates a task file may ask for, Mbit/s.
pub const MIN_RATE_MBPS: f64 = 0.001;
pub const MAX_RATE_MBPS: f64 = 100_000.0;

/// Whether `text` is a host name (RFC 1123 labels: letters, digits, inner hyphens) or an IPv4 or
/// IPv6 literal. Such a string is safe to hand to `ping` or `iperf3` as one argument: it has no
/// spaces, no shell metacharacters and cannot start with `-`.
pub fn is_host(text: &str) -> bool {
    if text.parse::<IpAddr>().is_ok() {
        return true;
    }
    let name = text.strip_suffix('.').unwrap_or(text);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Makes errors for one file: knows its name and where each value starts.
pub(super) struct Checker<'a> {
    pub origin: &'a str,
    pub index: &'a PositionIndex,
    pub base_dir: &'a Path,
}

/// What to do with a threshold on a figure the device does not measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unmeasured {
    /// An error (assignment dialect, and what configs/README.md promises).
    Refuse,
    /// Leave it out with a note (original dialect: that system only compared what it measured,
    /// and its files carry every threshold).
    Ignore,
}

/// Which figures a device's reports carry.
struct Figures {
    cpu: bool,
    ram: bool,
    interfaces: bool,
    ping: bool,
    udp_client: bool,
    tcp_client: bool,
    iperf_server: bool,
}

impl Figures {
    fn of(items: &[PlannedItem]) -> Figures {
        let mut f = Figures {
            cpu: false,
            ram: false,
            interfaces: false,
            ping: false,
            udp_client: false,
            tcp_client: false,
            iperf_server: false,
        };
        for item in items {
            match item {
                PlannedItem::MetricsGathering {
                    cpu,
                    ram,
                    interfaces,
                    ..
                } => {
                    f.cpu |= *cpu;
                    f.ram |= *ram;
                    f.interfaces |= !interfaces.is_empty();
                }
                PlannedItem::Ping { .. } => f.ping = true,
                PlannedItem::IperfClient { transport, .. } => match transport {
                    Transport::Udp => f.udp_client = true,
                    Transport::Tcp => f.tcp_client = true,
                },
                PlannedItem::IperfServer { .. } => f.iperf_server = true,
                PlannedItem::Probe(_) => {}
            }
        }
        f
    }

    /// Why a condition's figure is never measured by the device, if it is not.
    fn why_missing(&self, needs: Needs) -> Option<String> {
        match needs {
            Needs::Cpu => (!self.cpu).then(|| "device_metrics.cpu_usage is not enabled".to_owned()),
            Needs::Ram => (!self.ram).then(|| "device_metrics.ram_usage is not enabled".to_owned()),
            Needs::Interfaces => (!self.interfaces)
                .then(|| "device_metrics.interface_stats names no interface".to_owned()),
            Needs::PingOrUdpIperf(figure) => self.why_no_udp_figure(figure),
        }
    }

    /// Why jitter or packet loss (ping, or a UDP iperf client) is never measured, if it is not.
    fn why_no_udp_figure(&self, figure: &str) -> Option<String> {
        if self.ping || self.udp_client {
            None
        } else if self.tcp_client {
            Some(format!(
                "the device's iperf tests run over TCP, which has no {figure} (measure it over \
                 UDP, or add a ping)"
            ))
        } else if self.iperf_server {
            Some(format!(
                "the device is only the iperf server of its tests, whose figures its client \
                 reports: put the {figure} threshold on the client's device"
            ))
        } else {
            Some("the device runs no ping or iperf client".to_owned())
        }
    }
}

impl Checker<'_> {
    pub fn error(&self, path: &JsonPath, message: impl Into<String>) -> TaskError {
        let at = self.index.locate(path);
        TaskError::Invalid {
            file: self.origin.to_owned(),
            path: path.clone(),
            line: at.line,
            column: at.column,
            message: message.into(),
        }
    }

    /// A `task_id` or `device_id`: non-empty, printable, not too long.
    pub fn id(&self, path: &JsonPath, id: &TextId, what: &str) -> Result<String, TaskError> {
        let text = id.0.trim();
        if text.is_empty() {
            return Err(self.error(path, format!("{what} is empty")));
        }
        if text.len() != id.0.len() || id.0.chars().any(char::is_control) {
            return Err(self.error(
                path,
                format!(
                    "{what} {:?} has surrounding spaces or control characters",
                    id.0
                ),
            ));
        }
        if text.len() > MAX_STRING_LEN {
            return Err(self.error(
                path,
                format!(
                    "{what} is {} bytes long, more than {MAX_STRING_LEN}",
                    text.len()
                ),
            ));
        }
        Ok(id.0.clone())
    }

    /// A whole number `n` of the field `what` in `min..=max` `unit`s (`unit` may be empty):
    /// "not a whole number" for a fraction, "too large" past `max`, "must be at least" below
    /// `min`.
    pub fn whole(
        &self,
        path: &JsonPath,
        n: &Number,
        what: &str,
        unit: &str,
        (min, max): (u64, u64),
    ) -> Result<u64, TaskError> {
        let units = |v: u64| match unit {
            "" => v.to_string(),
            "seconds" if v == 1 => "1 second".to_owned(),
            "seconds" if v == u64::from(MAX_SECONDS) => format!("{v} seconds (one day)"),
            _ => format!("{v} {unit}"),
        };
        let too_large = || {
            self.error(
                path,
                format!("{what} {n} is too large: at most {}", units(max)),
            )
        };
        let too_small = || self.error(path, format!("{what} {n} must be at least {}", units(min)));
        if let Some(v) = n.as_u64() {
            return match v {
                v if v > max => Err(too_large()),
                v if v < min => Err(too_small()),
                v => Ok(v),
            };
        }
        let v = n.as_f64().unwrap_or(f64::NAN);
        if v.fract() != 0.0 {
            let of = if unit.is_empty() {
                String::new()
            } else {
                format!(" of {unit}")
            };
            return Err(self.error(path, format!("{what} {n} is not a whole number{of}")));
        }
        if v > max as f64 {
            Err(too_large())
        } else if v.is_nan() || v < min as f64 {
            Err(too_small())
        } else {
            Ok(v as u64)
        }
    }

    /// Whole seconds in 1..=MAX_SECONDS; `what` names the field in the message.
    pub fn seconds(&self, path: &JsonPath, n: &Number, what: &str) -> Result<u32, TaskError> {
        let seconds = self.whole(path, n, what, "seconds", (1, MAX_SECONDS.into()))?;
        Ok(seconds as u32)
    }

    /// A number of seconds that may be a fraction, to the millisecond, in `min_ms..=max_ms`;
    /// returned in milliseconds.
    pub fn milliseconds(
        &self,
        path: &JsonPath,
        n: &Number,
        what: &str,
        (min_ms, max_ms): (u32, u32),
    ) -> Result<u32, TaskError> {
        let seconds = n.as_f64().unwrap_or(f64::NAN);
        let ms = seconds * 1000.0;
        if ms.is_nan() || ms < f64::from(min_ms) {
            return Err(self.error(
                path,
                format!(
                    "{what} {n} s is too small: at least {} s",
                    f64::from(min_ms) / 1000.0
                ),
            ));
        }
        if ms > f64::from(max_ms) {
            return Err(self.error(
                path,
                format!(
                    "{what} {n} s is too large: at most {} s",
                    f64::from(max_ms) / 1000.0
                ),
            ));
        }
        if (ms - ms.round()).abs() > 1e-6 {
            return Err(self.error(path, format!("{what} {n} s is finer than a millisecond")));
        }
        Ok(ms.round() as u32)
    }

    /// An optional frequency that falls back to the task's.
    pub fn frequency_or(
        &self,
        path: &JsonPath,
        n: Option<&Number>,
        task_frequency_s: u32,
    ) -> Result<u32, TaskError> {
        n.map_or(Ok(task_frequency_s), |n| self.seconds(path, n, "frequency"))
    }

    /// An iperf test duration, which must end before the next run starts.
    pub fn duration(
        &self,
        path: &JsonPath,
        n: &Number,
        what: &str,
        frequency_s: u32,
    ) -> Result<u32, TaskError> {
        let duration_s = self.seconds(path, n, what)?;
        if duration_s >= frequency_s {
            return Err(self.error(
                path,
                format!(
                    "{what} {duration_s} s does not fit in the frequency of {frequency_s} s \
                     (a test must end before the next one starts)"
                ),
            ));
        }
        Ok(duration_s)
    }

    /// A ping packet count, 1..=MAX_PACKET_COUNT.
    pub fn packet_count(&self, path: &JsonPath, n: &Number) -> Result<u16, TaskError> {
        let count = self.whole(path, n, "packet_count", "", (1, MAX_PACKET_COUNT.into()))?;
        Ok(count as u16)
    }

    /// The interval between echo requests (`ping -i`), seconds to the millisecond: at least
    /// what iputils ping allows (0.002 s).
    pub fn ping_interval(&self, path: &JsonPath, n: &Number, what: &str) -> Result<u32, TaskError> {
        self.milliseconds(path, n, what, (MIN_PING_INTERVAL_MS, MAX_SECONDS * 1000))
    }

    /// Assignment dialect: `packet_count` echo requests `interval_ms` apart, and a moment for the
    /// last reply, must end before the next run starts: (count − 1) × interval + 1 s at most
    /// the frequency.
    pub fn ping_fits(
        &self,
        path: &JsonPath,
        count: u16,
        interval_ms: u32,
        frequency_s: u32,
    ) -> Result<(), TaskError> {
        let budget_ms = (u64::from(frequency_s) * 1000).saturating_sub(1000);
        let max = (budget_ms / u64::from(interval_ms) + 1).min(MAX_PACKET_COUNT.into());
        if u64::from(count) > max {
            return Err(self.error(
                path,
                format!(
                    "packet_count {count} does not fit in the frequency of {frequency_s} s \
                     (ping sends a packet every {} s and the run must end before the next \
                     one starts; at most {max} fit)",
                    f64::from(interval_ms) / 1000.0
                ),
            ));
        }
        Ok(())
    }

    /// A UDP target rate in Mbit/s (`rate_mbps`), as bits per second.
    pub fn rate(&self, path: &JsonPath, n: &Number) -> Result<u64, TaskError> {
        let mbps = n.as_f64().unwrap_or(f64::NAN);
        if mbps.is_nan() || mbps < MIN_RATE_MBPS {
            return Err(self.error(
                path,
                format!("rate_mbps {n} is too small: at least {MIN_RATE_MBPS} (1 kbit/s)"),
            ));
        }
        if mbps > MAX_RATE_MBPS {
            return Err(self.error(
                path,
                format!("rate_mbps {n} is too large: at most {MAX_RATE_MBPS} (100 Gbit/s)"),
            ));
        }
        Ok((mbps * 1e6).round() as u64)
    }

    /// An iperf port, 1..=65535; absent means iperf3's default, 5201.
    pub fn port(&self, path: &JsonPath, port: Option<&Number>) -> Result<u16, TaskError> {
        match port {
            None => Ok(DEFAULT_IPERF_PORT),
            Some(n) => Ok(self.whole(path, n, "port", "", (1, u16::MAX.into()))? as u16),
        }
    }

    /// A ping destination or iperf server address.
    pub fn host(&self, path: &JsonPath, text: &str, what: &str) -> Result<String, TaskError> {
        if is_host(text) {
            Ok(text.to_owned())
        } else {
            Err(self.error(
                path,
                format!(
                    "{what} {text:?} is not a host name or IP address (letters, digits, '-' and \
                     '.', or an IP literal)"
                ),
            ))
        }
    }

    /// `device_metrics` as a gathering item at the task's frequency, or `None` when it asks for
    /// nothing.
    pub fn device_metrics(
        &self,
        path: &JsonPath,
        raw: Option<&RawDeviceMetrics>,
        frequency_s: u32,
    ) -> Result<Option<PlannedItem>, TaskError> {
        let Some(raw) = raw else { return Ok(None) };
        let interfaces = match &raw.interface_stats {
            None => Vec::new(),
            Some(names) => self.interfaces(&path.key("interface_stats"), names)?,
        };
        if !raw.cpu_usage && !raw.ram_usage && interfaces.is_empty() {
            return Ok(None);
        }
        Ok(Some(PlannedItem::MetricsGathering {
            cpu: raw.cpu_usage,
            ram: raw.ram_usage,
            interfaces,
            frequency_s,
        }))
    }

    fn interfaces(&self, path: &JsonPath, names: &[String]) -> Result<Vec<String>, TaskError> {
        if names.is_empty() {
            return Err(self.error(
                path,
                "the interface list is empty: name the interfaces to watch (such as [\"eth0\"]) \
                 or leave interface_stats out",
            ));
        }
        if names.len() > MAX_INTERFACES {
            return Err(self.error(
                path,
                format!(
                    "{} interfaces, more than the {MAX_INTERFACES} allowed",
                    names.len()
                ),
            ));
        }
        let mut seen = HashSet::new();
        for (i, name) in names.iter().enumerate() {
            let at = path.index(i);
            if name.is_empty()
                || name.len() > MAX_INTERFACE_NAME
                || name.chars().any(char::is_control)
            {
                return Err(self.error(
                    &at,
                    format!(
                        "interface name {name:?} must be 1 to {MAX_INTERFACE_NAME} bytes without \
                         control characters"
                    ),
                ));
            }
            if !seen.insert(name.as_str()) {
                return Err(self.error(&at, format!("interface {name:?} is listed twice")));
            }
        }
        Ok(names.to_vec())
    }

    /// `alertflow_conditions`, checked against what the device measures. A threshold on a
    /// figure the device never measures could never fire: with [`Unmeasured::Refuse`] it is an
    /// error, with [`Unmeasured::Ignore`] it is left out and noted.
    fn conditions(
        &self,
        path: &JsonPath,
        raw: Option<&RawConditions>,
        items: &[PlannedItem],
        unmeasured: Unmeasured,
        notes: &mut Vec<String>,
    ) -> Result<AlertConditions, TaskError> {
        let Some(raw) = raw else {
            return Ok(AlertConditions::default());
        };
        let figures = Figures::of(items);
        let mut values = [None; 5];
        for (slot, condition) in values.iter_mut().zip(&CONDITIONS) {
            let name = condition.name;
            let Some(n) = raw.get(name) else { continue };
            let at = path.key(name);
            let threshold = self.threshold(&at, n, condition.scale)?;
            match (figures.why_missing(condition.needs), unmeasured) {
                (None, _) => *slot = Some(threshold),
                (Some(why), Unmeasured::Refuse) => {
                    return Err(
                        self.error(&at, format!("a {name} threshold can never fire: {why}"))
                    );
                }
                (Some(why), Unmeasured::Ignore) => notes.push(format!(
                    "alertflow_conditions.{name} ({n}) is not used: {why}"
                )),
            }
        }
        Ok(AlertConditions::from_values(values))
    }

    fn threshold(&self, path: &JsonPath, n: &Number, scale: Scale) -> Result<f32, TaskError> {
        let value = n.as_f64().unwrap_or(f64::NAN);
        match scale {
            Scale::Percent if !(0.0..=100.0).contains(&value) => {
                Err(self.error(path, format!("threshold {n} is not a percentage (0..=100)")))
            }
            Scale::NonNegative if value.is_nan() || value < 0.0 => {
                Err(self.error(path, format!("threshold {n} must be a non-negative number")))
            }
            Scale::NonNegative if !(value as f32).is_finite() => Err(self.error(
                path,
                format!("threshold {n} is too large: at most {:e}", f32::MAX),
            )),
            _ => Ok(value as f32),
        }
    }

    /// `rules`: hand-written rhai files, resolved against the task file's folder.
    fn rule_files(
        &self,
        path: &JsonPath,
        raw: Option<&Vec<String>>,
    ) -> Result<Vec<PathBuf>, TaskError> {
        let Some(names) = raw else {
            return Ok(Vec::new());
        };
        if names.len() > MAX_RULE_FILES {
            return Err(self.error(
                path,
                format!(
                    "{} rule files, more than the {MAX_RULE_FILES} allowed",
                    names.len()
                ),
            ));
        }
        let mut seen = HashSet::new();
        let mut files = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let at = path.index(i);
            if name.len() > MAX_STRING_LEN
                || !name.ends_with(".rhai")
                || name.len() == ".rhai".len()
            {
                return Err(self.error(
                    &at,
                    format!(
                        "rule file {name:?} is not the path of a rhai script (ending in .rhai)"
                    ),
                ));
            }
            if !seen.insert(name.as_str()) {
                return Err(self.error(&at, format!("rule file {name:?} is listed twice")));
            }
            files.push(self.base_dir.join(name));
        }
        Ok(files)
    }

    /// A device's id, unique within its task.
    pub fn device_id(
        &self,
        path: &JsonPath,
        id: &TextId,
        earlier: &[String],
    ) -> Result<String, TaskError> {
        let at = path.key("device_id");
        let id = self.id(&at, id, "device_id")?;
        if earlier.contains(&id) {
            return Err(self.error(&at, format!("device {id:?} appears twice in this task")));
        }
        Ok(id)
    }

    /// A task's id and frequency, and the path of its devices after checking how many there are.
    pub fn task_header<L>(
        &self,
        path: &JsonPath,
        raw: &RawTask<L>,
    ) -> Result<(String, u32, JsonPath), TaskError> {
        let task_id = self.id(&path.key("task_id"), &raw.task_id, "task_id")?;
        let frequency_s = self.seconds(&path.key("frequency"), &raw.frequency, "frequency")?;
        let devices_path = path.key("devices");
        let count = raw.devices.len();
        if count == 0 {
            return Err(self.error(&devices_path, "the task has no devices"));
        }
        if count > MAX_DEVICES {
            return Err(self.error(
                &devices_path,
                format!("{count} devices, more than the {MAX_DEVICES} allowed in one task"),
            ));
        }
        Ok((task_id, frequency_s, devices_path))
    }

    /// A device of either dialect, given all it measures: checks its conditions against those
    /// items, resolves its rule files, and insists that it measures something.
    pub fn finish_device<L>(
        &self,
        path: &JsonPath,
        device_id: String,
        raw: &RawDevice<L>,
        items: Vec<PlannedItem>,
        unmeasured: Unmeasured,
    ) -> Result<Device, TaskError> {
        if items.is_empty() {
            return Err(self.error(
                path,
                format!(
                    "device {device_id:?} measures nothing: enable device_metrics or add \
                     link_metrics"
                ),
            ));
        }
        let mut notes = Vec::new();
        let conditions = self.conditions(
            &path.key("alertflow_conditions"),
            raw.alertflow_conditions.as_ref(),
            &items,
            unmeasured,
            &mut notes,
        )?;
        let rule_files = self.rule_files(&path.key("rules"), raw.rules.as_ref())?;
        Ok(Device {
            device_id,
            items,
            conditions,
            rule_files,
            notes,
        })
    }
}

/// iperf3's default port.
pub const DEFAULT_IPERF_PORT: u16 = 5201;

#[cfg(test)]
mod tests {
    use super::is_host;

    #[test]
    fn hosts_are_names_or_ip_literals() {
        for ok in [
            "127.0.0.1",
            "::1",
            "fe80::1",
            "r1",
            "host-2.example.org",
            "example.org.",
        ] {
            assert!(is_host(ok), "{ok}");
        }
        for bad in [
            "",
            "-c1",
            "a b",
            "a;b",
            "$(reboot)",
            "`id`",
            "a|b",
            "a&&b",
            "-",
            "a..b",
            "a-.b",
            "host_name",
            "10.0.0.1\n",
            "'x'",
            "\"x\"",
            ".",
            "a/b",
        ] {
            assert!(!is_host(bad), "{bad:?}");
        }
    }
}
