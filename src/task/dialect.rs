//! The two task file layouts as serde sees them, and how a file's dialect is told from its
//! structure. These types only check shapes and types (unknown fields are errors); values are
//! checked when they are turned into the model (`assignment.rs`, `original.rs`).
//!
//! Numbers that are whole seconds or thresholds are kept as [`Number`] here so that an integer
//! and a decimal are both accepted, and a decimal that is not whole gets a precise error later.

use super::error::JsonPath;
use super::model::Dialect;
use crate::probes::ProbeDef;
use crate::wire::Transport;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::fmt;

/// A `task_id` or `device_id`: a string, or a whole number taken as its decimal text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TextId(pub String);

impl<'de> Deserialize<'de> for TextId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextIdVisitor;
        impl Visitor<'_> for TextIdVisitor {
            type Value = TextId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a whole number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<TextId, E> {
                Ok(TextId(v.to_owned()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<TextId, E> {
                Ok(TextId(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<TextId, E> {
                Ok(TextId(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<TextId, E> {
                Err(E::custom(if v.fract() == 0.0 && v.is_finite() {
                    format!("the number {v} is too large for an id (write it as a string)")
                } else {
                    format!("the number {v} is not a whole number (write the id as a string)")
                }))
            }
        }
        deserializer.deserialize_any(TextIdVisitor)
    }
}

/// Thresholds of `alertflow_conditions`, shared by both dialects; `null` or absent means none.
/// Its keys are the conditions' names (`crate::wire::task::CONDITION_NAMES`, the table
/// `crate::rules::CONDITIONS`), so that a new condition needs no field here; an unknown or
/// repeated key is an error as for any other object of the file.
#[derive(Debug, Default)]
pub(super) struct RawConditions {
    thresholds: std::collections::BTreeMap<&'static str, Number>,
}

impl RawConditions {
    /// The threshold written for the condition `name` (`crate::rules::CONDITIONS`).
    pub fn get(&self, name: &str) -> Option<&Number> {
        self.thresholds.get(name)
    }
}

impl<'de> Deserialize<'de> for RawConditions {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ConditionsVisitor;
        impl<'de> Visitor<'de> for ConditionsVisitor {
            type Value = RawConditions;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an alertflow_conditions object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawConditions, A::Error> {
                let mut seen: Vec<&'static str> = Vec::new();
                let mut out = RawConditions::default();
                while let Some(ConditionName(name)) = map.next_key()? {
                    if seen.contains(&name) {
                        return Err(de::Error::duplicate_field(name));
                    }
                    seen.push(name);
                    if let Some(threshold) = map.next_value::<Option<Number>>()? {
                        out.thresholds.insert(name, threshold);
                    }
                }
                Ok(out)
            }
        }
        deserializer.deserialize_map(ConditionsVisitor)
    }
}

/// A key of `alertflow_conditions`: one of the conditions' names. An unknown one is refused
/// while the key is read, so that the error's path names it.
struct ConditionName(&'static str);

impl<'de> Deserialize<'de> for ConditionName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use crate::wire::task::CONDITION_NAMES;
        struct NameVisitor;
        impl Visitor<'_> for NameVisitor {
            type Value = ConditionName;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a condition name")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<ConditionName, E> {
                CONDITION_NAMES
                    .iter()
                    .find(|n| **n == key)
                    .map(|n| ConditionName(n))
                    .ok_or_else(|| E::unknown_field(key, &CONDITION_NAMES))
            }
        }
        deserializer.deserialize_identifier(NameVisitor)
    }
}

/// `device_metrics`, shared by both dialects.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a device_metrics object")]
pub(super) struct RawDeviceMetrics {
    #[serde(default)]
    pub cpu_usage: bool,
    #[serde(default)]
    pub ram_usage: bool,
    pub interface_stats: Option<Vec<String>>,
}

/// A task of either dialect; `L` is the dialect's `link_metrics`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a task object")]
pub(super) struct RawTask<L> {
    pub task_id: TextId,
    pub frequency: Number,
    pub devices: Vec<RawDevice<L>>,
}

/// A device of either dialect; `L` is the dialect's `link_metrics`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a device object")]
pub(super) struct RawDevice<L> {
    pub device_id: TextId,
    pub device_metrics: Option<RawDeviceMetrics>,
    pub link_metrics: Option<L>,
    pub alertflow_conditions: Option<RawConditions>,
    pub rules: Option<Vec<String>>,
}

// ----- assignment dialect -----

pub(super) type AssignmentTask = RawTask<AssignmentLinkMetrics>;
pub(super) type AssignmentDevice = RawDevice<AssignmentLinkMetrics>;

/// Read by [`link_metrics`]: the built-in entries, and any probe's entry under its name.
#[derive(Debug, Default)]
pub(super) struct AssignmentLinkMetrics {
    pub bandwidth: Option<IperfEntry>,
    pub jitter: Option<IperfEntry>,
    pub packet_loss: Option<IperfEntry>,
    pub latency: Option<PingEntry>,
    pub probes: Vec<ProbeEntry>,
}

/// A probe's entry of `link_metrics`, as written: checked by `probe_entry.rs`.
#[derive(Debug)]
pub(super) struct ProbeEntry {
    /// The key it was written under (`dns`, `dns_parameters`).
    pub key: String,
    pub probe: &'static ProbeDef,
    pub fields: Map<String, Value>,
}

impl LinkFields for AssignmentLinkMetrics {
    const BUILT_IN: &'static [&'static str] = &["bandwidth", "jitter", "packet_loss", "latency"];
    const SUFFIX: &'static str = "";
    fn read_built_in<'de, A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
    ) -> Result<(), A::Error> {
        match key {
            "bandwidth" => self.bandwidth = map.next_value()?,
            "jitter" => self.jitter = map.next_value()?,
            "packet_loss" => self.packet_loss = map.next_value()?,
            _ => self.latency = map.next_value()?,
        }
        Ok(())
    }
    fn probes(&mut self) -> &mut Vec<ProbeEntry> {
        &mut self.probes
    }
}

impl<'de> Deserialize<'de> for AssignmentLinkMetrics {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(LinkVisitor(std::marker::PhantomData))
    }
}

/// A dialect's `link_metrics`: its built-in entries, and the entries of probes, each under
/// the probe's name followed by `SUFFIX`.
pub(super) trait LinkFields: Default {
    const BUILT_IN: &'static [&'static str];
    const SUFFIX: &'static str;
    /// Reads the value of the built-in entry `key` (one of `BUILT_IN`).
    fn read_built_in<'de, A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
    ) -> Result<(), A::Error>;
    fn probes(&mut self) -> &mut Vec<ProbeEntry>;
}

/// Reads a `link_metrics` object: a built-in key into its typed entry, a key that names a
/// probe into a [`ProbeEntry`], and anything else refused as serde's derive refuses an
/// unknown field, listing every accepted key.
struct LinkVisitor<T>(std::marker::PhantomData<T>);

impl<'de, T: LinkFields> Visitor<'de> for LinkVisitor<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a link_metrics object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        let mut out = T::default();
        let mut seen: Vec<String> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if seen.contains(&key) {
                return Err(de::Error::custom(format_args!("duplicate field `{key}`")));
            }
            seen.push(key.clone());
            if T::BUILT_IN.contains(&key.as_str()) {
                out.read_built_in(&key, &mut map)?;
                continue;
            }
            let Some(probe) = key.strip_suffix(T::SUFFIX).and_then(crate::probes::by_name) else {
                return Err(de::Error::unknown_field(&key, accepted::<T>()));
            };
            let fields = map.next_value::<Map<String, Value>>()?;
            out.probes().push(ProbeEntry { key, probe, fields });
        }
        Ok(out)
    }
}

/// Every key a dialect's `link_metrics` accepts: its built-in ones, then each probe's.
fn accepted<T: LinkFields>() -> &'static [&'static str] {
    static LISTS: std::sync::Mutex<Vec<(&'static str, &'static [&'static str])>> =
        std::sync::Mutex::new(Vec::new());
    let mut lists = LISTS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, list)) = lists.iter().find(|(first, _)| *first == T::BUILT_IN[0]) {
        return list;
    }
    let mut keys: Vec<&'static str> = T::BUILT_IN.to_vec();
    for probe in crate::probes::PROBES {
        let key: &'static str = Box::leak(format!("{}{}", probe.name, T::SUFFIX).into_boxed_str());
        keys.push(key);
    }
    let list: &'static [&'static str] = Box::leak(keys.into_boxed_slice());
    lists.push((T::BUILT_IN[0], list));
    list
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum IperfTool {
    #[serde(alias = "iperf3")]
    Iperf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum PingTool {
    Ping,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Role {
    Server,
    Client,
}

/// One of `bandwidth`, `jitter`, `packet_loss`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an iperf entry object")]
pub(super) struct IperfEntry {
    #[allow(dead_code, reason = "checked by its type: only \"iperf\" is accepted")]
    pub tool: Option<IperfTool>,
    pub role: Role,
    pub server_address: Option<String>,
    pub duration: Number,
    pub transport: Option<Transport>,
    pub frequency: Option<Number>,
    pub port: Option<Number>,
    /// UDP only: the rate offered, Mbit/s (`iperf3 -b`).
    pub rate_mbps: Option<Number>,
}

/// `latency`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a latency object")]
pub(super) struct PingEntry {
    #[allow(dead_code, reason = "checked by its type: only \"ping\" is accepted")]
    pub tool: Option<PingTool>,
    pub destination: String,
    pub packet_count: Number,
    pub frequency: Option<Number>,
    /// Seconds between echo requests (`ping -i`).
    pub interval: Option<Number>,
}

// ----- original dialect -----

pub(super) type OriginalTask = RawTask<OriginalLinkMetrics>;
pub(super) type OriginalDevice = RawDevice<OriginalLinkMetrics>;

/// Read by [`LinkVisitor`]: the built-in entries, and any probe's as `NAME_parameters`.
#[derive(Debug, Default)]
pub(super) struct OriginalLinkMetrics {
    pub iperf_parameters: Option<IperfParameters>,
    pub ping_parameters: Option<PingParameters>,
    pub probes: Vec<ProbeEntry>,
}

impl LinkFields for OriginalLinkMetrics {
    const BUILT_IN: &'static [&'static str] = &["iperf_parameters", "ping_parameters"];
    const SUFFIX: &'static str = "_parameters";
    fn read_built_in<'de, A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
    ) -> Result<(), A::Error> {
        match key {
            "iperf_parameters" => self.iperf_parameters = map.next_value()?,
            _ => self.ping_parameters = map.next_value()?,
        }
        Ok(())
    }
    fn probes(&mut self) -> &mut Vec<ProbeEntry> {
        &mut self.probes
    }
}

impl<'de> Deserialize<'de> for OriginalLinkMetrics {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(LinkVisitor(std::marker::PhantomData))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an iperf_parameters object")]
pub(super) struct IperfParameters {
    #[serde(default)]
    pub bandwidth: bool,
    #[serde(default)]
    pub jitter: bool,
    #[serde(default)]
    pub packet_loss: bool,
    #[serde(default)]
    pub is_server: bool,
    pub test_duration: Option<Number>,
    pub port: Option<Number>,
    /// UDP only: the rate offered, Mbit/s (`iperf3 -b`).
    pub rate_mbps: Option<Number>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a ping_parameters object")]
pub(super) struct PingParameters {
    #[serde(default)]
    pub enabled: bool,
    pub destination: Option<String>,
    pub packet_count: Option<Number>,
    /// The interval between echo requests, seconds (`ping -i`), as the original system read
    /// it; not a period between runs.
    pub frequency: Option<Number>,
}

impl IperfParameters {
    pub fn any_metric(&self) -> bool {
        self.bandwidth || self.jitter || self.packet_loss
    }
}

// ----- detection -----

const ORIGINAL_KEYS: [&str; 2] = ["iperf_parameters", "ping_parameters"];
const ASSIGNMENT_KEYS: [&str; 4] = ["bandwidth", "jitter", "packet_loss", "latency"];

/// Tells the dialect of a parsed document from the keys of its devices' `link_metrics`. A file
/// with no link metrics at all reads as the assignment dialect (the two agree on everything
/// else). Tasks of both dialects in one file are an error, given as the path of the first
/// `link_metrics` that disagrees with the tasks before it and a message.
pub(super) fn detect(document: &Value) -> Result<Dialect, (JsonPath, String)> {
    let tasks: Vec<(JsonPath, &Value)> = match document {
        Value::Array(tasks) => tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (JsonPath::root().index(i), t))
            .collect(),
        other => vec![(JsonPath::root(), other)],
    };
    let mut found: Option<(Dialect, JsonPath)> = None;
    for (task_path, task) in tasks {
        let Some(devices) = task.get("devices").and_then(Value::as_array) else {
            continue;
        };
        for (d, device) in devices.iter().enumerate() {
            let Some(link) = device.get("link_metrics").and_then(Value::as_object) else {
                continue;
            };
            // A probe's entry is `NAME` in the assignment dialect, `NAME_parameters` in the
            // original one.
            let probe_key = |k: &str, suffix: &str| {
                k.strip_suffix(suffix)
                    .is_some_and(|name| crate::probes::by_name(name).is_some())
            };
            let dialect = if link.keys().any(|k| {
                ORIGINAL_KEYS.contains(&k.as_str()) || probe_key(k, OriginalLinkMetrics::SUFFIX)
            }) {
                Dialect::Original
            } else if link.keys().any(|k| {
                ASSIGNMENT_KEYS.contains(&k.as_str()) || probe_key(k, AssignmentLinkMetrics::SUFFIX)
            }) {
                Dialect::Assignment
            } else {
                continue;
            };
            let path = task_path.key("devices").index(d).key("link_metrics");
            match &found {
                None => found = Some((dialect, path)),
                Some((first, first_path)) if *first != dialect => {
                    return Err((
                        path,
                        format!(
                            "this is the {dialect} dialect but {first_path} is the {first} \
                             dialect; a task file holds tasks of one dialect"
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
    }
    Ok(found.map_or(Dialect::Assignment, |(dialect, _)| dialect))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dialect_of(text: &str) -> Result<Dialect, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        detect(&value).map_err(|(path, message)| format!("{path}: {message}"))
    }

    #[test]
    fn dialect_follows_the_link_metrics_keys() {
        let original = r#"[{"devices":[{"link_metrics":{"ping_parameters":{}}}]}]"#;
        let assignment = r#"{"devices":[{"link_metrics":{"latency":{}}}]}"#;
        let neither = r#"[{"devices":[{"device_metrics":{}}]}]"#;
        assert_eq!(dialect_of(original), Ok(Dialect::Original));
        assert_eq!(dialect_of(assignment), Ok(Dialect::Assignment));
        assert_eq!(dialect_of(neither), Ok(Dialect::Assignment));
    }

    #[test]
    fn mixed_dialects_name_the_task_that_disagrees() {
        let mixed = r#"[{"devices":[{"link_metrics":{"latency":{}}}]},
                        {"devices":[{"link_metrics":{"iperf_parameters":{}}}]}]"#;
        assert_eq!(
            dialect_of(mixed),
            Err(
                "[1].devices[0].link_metrics: this is the original dialect but \
                 [0].devices[0].link_metrics is the assignment dialect; a task file holds \
                 tasks of one dialect"
                    .to_owned()
            )
        );
    }
}
