//! Checks on single values and on the parts both dialects share (ids, seconds, thresholds,
//! addresses, device metrics, conditions, rule files), each returning a [`TaskError`] that points
//! at the offending value's path and line:column.

use super::dialect::{RawConditions, RawDevice, RawDeviceMetrics, RawTask, TextId};
use super::error::{JsonPath, TaskError};
use super::model::{Device, PlannedItem};
use super::position::PositionIndex;
use crate::wire::AlertConditions;
use crate::wire::codec::MAX_STRING_LEN;
use crate::wire::metrics::MAX_INTERFACE_NAME;
use crate::wire::task::{MAX_INTERFACES, MAX_RULES};
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

/// The three kinds of thresholds.
#[derive(Clone, Copy)]
enum Scale {
    Percent,
    NonNegative,
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

    /// Whole seconds in 1..=MAX_SECONDS; `what` names the field in the message.
    pub fn seconds(&self, path: &JsonPath, n: &Number, what: &str) -> Result<u32, TaskError> {
        let value = match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(v), _, _) => v as f64,
            (None, Some(v), _) => v as f64,
            (None, None, Some(v)) if v.fract() != 0.0 => {
                return Err(
                    self.error(path, format!("{what} {n} is not a whole number of seconds"))
                );
            }
            (None, None, v) => v.unwrap_or(f64::NAN),
        };
        if value.is_nan() || value < 1.0 {
            return Err(self.error(path, format!("{what} {n} must be at least 1 second")));
        }
        if value > f64::from(MAX_SECONDS) {
            return Err(self.error(
                path,
                format!("{what} {n} exceeds the maximum of {MAX_SECONDS} seconds (one day)"),
            ));
        }
        Ok(value as u32)
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

    /// A ping packet count: ping sends one packet a second, so the count must fit in the
    /// frequency.
    pub fn packet_count(
        &self,
        path: &JsonPath,
        n: &Number,
        frequency_s: u32,
    ) -> Result<u16, TaskError> {
        let Some(count) = n.as_u64().filter(|c| *c >= 1) else {
            return Err(self.error(
                path,
                format!("packet_count {n} is not a whole number of at least 1"),
            ));
        };
        // ping sends 5 packets per second (`-i 0.2`) and waits for the last reply: the run
        // must end before the next one starts.
        let max = (5 * u64::from(frequency_s)).saturating_sub(4).max(1);
        if count > max {
            return Err(self.error(
                path,
                format!(
                    "packet_count {count} does not fit in the frequency of {frequency_s} s \
                     (ping sends 5 packets per second; at most {max} fit)"
                ),
            ));
        }
        u16::try_from(count).map_err(|_| {
            self.error(
                path,
                format!("packet_count {count} exceeds the maximum of {}", u16::MAX),
            )
        })
    }

    /// An iperf port, 1..=65535; absent means iperf3's default, 5201.
    pub fn port(&self, path: &JsonPath, port: Option<u16>) -> Result<u16, TaskError> {
        match port {
            None => Ok(DEFAULT_IPERF_PORT),
            Some(0) => Err(self.error(path, "port 0 is not a port iperf3 can use (1..=65535)")),
            Some(p) => Ok(p),
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

    /// `alertflow_conditions`, checked against what the device measures: a threshold on a
    /// figure the device never measures could never fire, and is an error.
    fn conditions(
        &self,
        path: &JsonPath,
        raw: Option<&RawConditions>,
        items: &[PlannedItem],
    ) -> Result<AlertConditions, TaskError> {
        let Some(raw) = raw else {
            return Ok(AlertConditions::default());
        };
        let gathers = |f: fn(bool, bool, bool) -> bool| {
            items.iter().any(|item| match item {
                PlannedItem::MetricsGathering {
                    cpu,
                    ram,
                    interfaces,
                    ..
                } => f(*cpu, *ram, !interfaces.is_empty()),
                _ => false,
            })
        };
        let probes_link = items
            .iter()
            .any(|item| !matches!(item, PlannedItem::MetricsGathering { .. }));
        let checks: [(&str, &Option<Number>, Scale, bool, &str); 5] = [
            (
                "cpu_usage",
                &raw.cpu_usage,
                Scale::Percent,
                gathers(|c, _, _| c),
                "device_metrics.cpu_usage is not enabled",
            ),
            (
                "ram_usage",
                &raw.ram_usage,
                Scale::Percent,
                gathers(|_, r, _| r),
                "device_metrics.ram_usage is not enabled",
            ),
            (
                "interface_stats",
                &raw.interface_stats,
                Scale::NonNegative,
                gathers(|_, _, i| i),
                "device_metrics.interface_stats names no interface",
            ),
            (
                "packet_loss",
                &raw.packet_loss,
                Scale::Percent,
                probes_link,
                "the device runs no ping or iperf",
            ),
            (
                "jitter",
                &raw.jitter,
                Scale::NonNegative,
                probes_link,
                "the device runs no ping or iperf",
            ),
        ];
        let mut values = [None; 5];
        for (slot, (name, value, scale, measured, missing)) in values.iter_mut().zip(checks) {
            let Some(n) = value else { continue };
            let at = path.key(name);
            *slot = Some(self.threshold(&at, n, scale)?);
            if !measured {
                return Err(
                    self.error(&at, format!("a {name} threshold can never fire: {missing}"))
                );
            }
        }
        let [cpu_usage, ram_usage, interface_stats, packet_loss, jitter] = values;
        Ok(AlertConditions {
            cpu_usage,
            ram_usage,
            interface_stats,
            packet_loss,
            jitter,
        })
    }

    fn threshold(&self, path: &JsonPath, n: &Number, scale: Scale) -> Result<f32, TaskError> {
        let value = n.as_f64().unwrap_or(f64::NAN);
        match scale {
            Scale::Percent if !(0.0..=100.0).contains(&value) => {
                Err(self.error(path, format!("threshold {n} is not a percentage (0..=100)")))
            }
            Scale::NonNegative if !(value >= 0.0 && (value as f32).is_finite()) => {
                Err(self.error(path, format!("threshold {n} must be a non-negative number")))
            }
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
        let conditions = self.conditions(
            &path.key("alertflow_conditions"),
            raw.alertflow_conditions.as_ref(),
            &items,
        )?;
        let rule_files = self.rule_files(&path.key("rules"), raw.rules.as_ref())?;
        Ok(Device {
            device_id,
            items,
            conditions,
            rule_files,
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
