//! The two task file layouts as serde sees them, and how a file's dialect is told from its
//! structure. These types only check shapes and types (unknown fields are errors); values are
//! checked when they are turned into the model (`assignment.rs`, `original.rs`).
//!
//! Numbers that are whole seconds or thresholds are kept as [`Number`] here so that an integer
//! and a decimal are both accepted, and a decimal that is not whole gets a precise error later.

use super::error::JsonPath;
use super::model::Dialect;
use crate::wire::Transport;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use serde_json::{Number, Value};
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
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an alertflow_conditions object")]
pub(super) struct RawConditions {
    pub cpu_usage: Option<Number>,
    pub ram_usage: Option<Number>,
    pub interface_stats: Option<Number>,
    pub packet_loss: Option<Number>,
    pub jitter: Option<Number>,
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a link_metrics object")]
pub(super) struct AssignmentLinkMetrics {
    pub bandwidth: Option<IperfEntry>,
    pub jitter: Option<IperfEntry>,
    pub packet_loss: Option<IperfEntry>,
    pub latency: Option<PingEntry>,
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a link_metrics object")]
pub(super) struct OriginalLinkMetrics {
    pub iperf_parameters: Option<IperfParameters>,
    pub ping_parameters: Option<PingParameters>,
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
            let dialect = if link.keys().any(|k| ORIGINAL_KEYS.contains(&k.as_str())) {
                Dialect::Original
            } else if link.keys().any(|k| ASSIGNMENT_KEYS.contains(&k.as_str())) {
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
