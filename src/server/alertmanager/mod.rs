//! Forwarding alerts to Prometheus Alertmanager (`nms server --alertmanager URL`, repeatable),
//! the way Prometheus does it.
//!
//! - **Identity is the label set.** An alert's labels are `alertname` (`NmsCpu`,
//!   `NmsPacketLoss`, `NmsAgentDown`, ...), `agent`, `task` (left out when empty), `kind`,
//!   `severity`, `rule`, and what the rule fires on when it fires per thing: `interface` (an
//!   interface_stats alert), `tool` and `target` (a threshold on ping or iperf, and the
//!   destination measured), or `subject` (a rule file's own). None of them changes from one
//!   firing episode to the next, so an alert raised again after an agent restarts is the same
//!   alert in Alertmanager; the episode's `alert_id` is an annotation, with `summary`,
//!   `description`, `value` and `threshold`.
//! - **What fires comes from the server's firing set** ([`super::firing`]), which is rebuilt
//!   from the store at start: after a restart every alert still firing is posted again, with
//!   its original `startsAt`, so Alertmanager neither resolves it nor holds two copies.
//! - **`endsAt` as Prometheus sets it**: a firing alert is posted with `endsAt` four resend
//!   intervals ahead ([`RESEND_INTERVAL`]), and posted again every interval; if nms stops
//!   posting (it is gone), Alertmanager resolves the alert by itself after that. A resolved
//!   alert is posted with `endsAt` at the time its rule stopped firing.
//! - **Silences** ([`super::silence`]): an alert a silence matches is not posted; one posted
//!   already is ended at once. When the silence ends and the alert still fires, it is posted
//!   again.
//! - **Several Alertmanagers**: each gets every alert, from a [`Forwarder`] of its own, so one
//!   that is down delays none of the others. A failed post is retried with exponential backoff;
//!   alert ingest and the AlertFlow acknowledgement never wait for Alertmanager.
//!
//! [`Outbox`] decides what to post, without I/O, so every case is a plain test; [`target`]
//! posts it (http or https, basic or bearer credentials, never logged).

mod forwarder;
mod outbox;
pub mod target;

pub use forwarder::{ForwardStats, ForwardStatus, Forwarder};
pub use outbox::Outbox;
pub use target::{Auth, PostError, Target, TargetError};

use super::firing::FiringAlert;
use super::silence::Silence;
use crate::log;
use crate::store::AlertRecord;
use crate::wire::{AlertType, Severity};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Changes waiting to be picked up by a forwarder; more are dropped (and counted).
pub const QUEUE_CAPACITY: usize = 16_384;
/// Alerts waiting to be posted (during an outage of Alertmanager); the oldest are dropped.
pub const MAX_PENDING: usize = 4096;
/// Alerts posted in one request at most.
pub const MAX_BATCH: usize = 256;
/// How often alerts still firing are posted again (Prometheus' `--rules.alert.resend-delay`
/// is 1 minute); `endsAt` is four of these ahead.
pub const RESEND_INTERVAL: Duration = Duration::from_secs(60);
/// First wait after a failed post; doubled on each failure up to [`BACKOFF_MAX`].
pub const BACKOFF_MIN: Duration = Duration::from_millis(500);
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// The API path alerts are posted to, after the configured URL's own path.
pub const ALERTS_PATH: &str = "/api/v2/alerts";

/// Checks a target before the server starts (targets are checked when built).
pub fn check_target(_target: &Target) -> Result<(), TargetError> {
    Ok(())
}

/// One alert as Alertmanager's v2 API takes it (`postableAlert`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PostableAlert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339.
    pub starts_at: String,
    /// RFC 3339.
    pub ends_at: String,
    #[serde(rename = "generatorURL", skip_serializing_if = "Option::is_none")]
    pub generator_url: Option<String>,
}

/// `NmsCpu`, `NmsPacketLoss`, `NmsAgentDown`: the `alertname` of a kind of alert.
pub fn alert_name(kind: AlertType) -> String {
    let mut name = String::from("Nms");
    for word in kind.kind().split('_') {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            name.extend(first.to_uppercase());
            name.push_str(chars.as_str());
        }
    }
    name
}

pub fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    }
}

/// The labels that name an alert in Alertmanager (the same in every episode).
pub fn labels(record: &AlertRecord) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut label = |k: &str, v: &str| {
        if !v.is_empty() {
            labels.insert(k.to_string(), v.to_string());
        }
    };
    label("alertname", &alert_name(record.kind));
    label("agent", &record.agent);
    label("task", &record.task);
    label("kind", record.kind.kind());
    label("severity", severity_name(record.severity));
    label("rule", &record.rule);
    match record.subject.as_str() {
        "" => {}
        tool @ ("ping" | "iperf") => {
            label("tool", tool);
            label("target", record.target.as_deref().unwrap_or_default());
        }
        interface if record.kind == AlertType::InterfaceStats => label("interface", interface),
        other => label("subject", other),
    }
    labels
}

/// The firing form of an alert at `now_ms`: `endsAt` four resend intervals ahead, as
/// Prometheus does; `generator_base` is the nms HTTP API's base URL, if known.
pub fn firing(alert: &FiringAlert, now_ms: u64, generator_base: Option<&str>) -> PostableAlert {
    let record = &alert.record;
    let mut annotations = BTreeMap::new();
    annotations.insert("summary".to_string(), record.message.clone());
    let task = if record.task.is_empty() {
        String::new()
    } else {
        format!(", task {}", record.task)
    };
    annotations.insert(
        "description".to_string(),
        format!(
            "{} on agent {}: {} (value {}, threshold {}{task}, rule {})",
            record.kind.name(),
            record.agent,
            record.message,
            record.value,
            record.threshold,
            record.rule
        ),
    );
    annotations.insert("value".to_string(), record.value.to_string());
    annotations.insert("threshold".to_string(), record.threshold.to_string());
    annotations.insert("alert_id".to_string(), format!("{:016x}", record.alert_id));
    let generator_url = generator_base.map(|base| {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("agent", &record.agent)
            .finish();
        format!("{}/api/alerts?{query}", base.trim_end_matches('/'))
    });
    let valid_ms = 4 * RESEND_INTERVAL.as_millis() as u64;
    PostableAlert {
        labels: labels(record),
        annotations,
        starts_at: log::rfc3339(alert.since_ms),
        ends_at: log::rfc3339(now_ms.max(alert.since_ms) + valid_ms),
        generator_url,
    }
}

/// The same alert, ended at `ended_ms` (never before it started: Alertmanager refuses that).
pub fn ended(mut alert: PostableAlert, ended_ms: u64) -> PostableAlert {
    let starts = log::parse_time(&alert.starts_at).unwrap_or(ended_ms);
    alert.ends_at = log::rfc3339(ended_ms.max(starts));
    alert
}

/// What a forwarder is told.
#[derive(Debug, Clone)]
pub enum Event {
    Fired(FiringAlert),
    Ended { alert: FiringAlert, at_ms: u64 },
    Silences(Vec<Silence>),
}

#[cfg(test)]
mod tests;
