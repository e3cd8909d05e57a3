//! Forwarding alerts to Prometheus Alertmanager (`nms server --alertmanager URL`).
//!
//! Every alert the server stores is handed to a [`Forwarder`], which queues it (bounded, never
//! waiting) for a background task that posts it to Alertmanager's v2 API
//! (`POST /api/v2/alerts`). A resolution (an alert whose `resolves` names an earlier one) is
//! posted as the original alert (same labels, same `startsAt`) with `endsAt` set to the time the
//! rule stopped firing, so Alertmanager resolves it; an agent coming back (`agent_up`) resolves
//! its `agent_down` alert the same way. Alerts still firing are posted again every
//! [`RESEND_INTERVAL`], as Prometheus does, so that Alertmanager does not let them expire after
//! its `resolve_timeout`. A failed post is retried with exponential backoff; alert ingest and
//! the AlertFlow acknowledgement never wait for Alertmanager.
//!
//! Each alert carries the labels `alertname` (`NmsCpu`, `NmsPacketLoss`, `NmsAgentDown`, ...),
//! `agent`, `task` (left out when empty), `kind`, `severity`, `rule` and `alert_id` (the
//! alert's 16 hex digits: one rule can raise several alerts of one kind, one per interface
//! say, and each resolves on its own), and the annotations `summary` (the alert's message),
//! `description`, `value` and `threshold`.

use crate::client::{self, ClientError};
use crate::log::{self, Level};
use crate::store::AlertRecord;
use crate::wire::{AlertType, Severity};
use async_io::Timer;
use futures_lite::future;
use serde::Serialize;
use serde_json::Value;
use smol::channel::{Receiver, Sender, TrySendError};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Alerts waiting to be picked up by the background task; more are dropped (and counted).
pub const QUEUE_CAPACITY: usize = 4096;
/// Alerts waiting to be posted (during an outage of Alertmanager); the oldest are dropped.
pub const MAX_PENDING: usize = 4096;
/// Alerts posted in one request at most.
pub const MAX_BATCH: usize = 256;
/// Firing alerts remembered for re-posting and resolving; the oldest are forgotten.
pub const MAX_FIRING: usize = 10_000;
/// How often alerts still firing are posted again.
pub const RESEND_INTERVAL: Duration = Duration::from_secs(60);
/// First wait after a failed post; doubled on each failure up to [`BACKOFF_MAX`].
pub const BACKOFF_MIN: Duration = Duration::from_millis(500);
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// The API path alerts are posted to, after the configured URL's own path.
pub const ALERTS_PATH: &str = "/api/v2/alerts";

/// Why `--alertmanager` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AlertmanagerError {
    #[error(
        "--alertmanager {url:?}: {reason}; give Alertmanager's base URL, e.g. http://127.0.0.1:9093"
    )]
    BadUrl { url: String, reason: String },
}

/// Checks an Alertmanager base URL (`http://HOST[:PORT][/PATH]`, no query).
pub fn check_url(url: &str) -> Result<(), AlertmanagerError> {
    let bad = |reason: &str| AlertmanagerError::BadUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let uri: hyper::Uri = url.trim().parse().map_err(|_| bad("not a URL"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(_) => return Err(bad("only http:// is supported")),
        None => return Err(bad("it has no http:// scheme")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("it has no host"));
    }
    if uri.query().is_some() {
        return Err(bad("a base URL has no query"));
    }
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
    /// RFC 3339; set when the alert stopped firing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<String>,
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

fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    }
}

/// The firing form of an alert; `generator_base` is the nms HTTP API's base URL, if known.
pub fn firing(record: &AlertRecord, alert_id: u64, generator_base: Option<&str>) -> PostableAlert {
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
    label("alert_id", &format!("{alert_id:016x}"));
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
    let generator_url = generator_base.map(|base| {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("agent", &record.agent)
            .finish();
        format!("{}/api/alerts?{query}", base.trim_end_matches('/'))
    });
    PostableAlert {
        labels,
        annotations,
        starts_at: log::rfc3339(record.time_ms),
        ends_at: None,
        generator_url,
    }
}

/// The same alert, ended at `ended_ms` (never before it started: Alertmanager refuses that).
pub fn ended(mut alert: PostableAlert, ended_ms: u64) -> PostableAlert {
    let starts = log::parse_time(&alert.starts_at).unwrap_or(ended_ms);
    alert.ends_at = Some(log::rfc3339(ended_ms.max(starts)));
    alert
}

/// Counters of the forwarder, shared with `/api/status` and `/metrics`.
#[derive(Debug, Default)]
pub struct ForwardStats {
    /// Alerts (firing, resolved, re-posted) Alertmanager accepted.
    pub sent: AtomicU64,
    /// Requests to Alertmanager that failed (each is retried unless refused as invalid).
    pub failed_requests: AtomicU64,
    /// Alerts given up on: queue full, too many pending during an outage, or refused.
    pub dropped: AtomicU64,
    /// Alerts waiting to be posted now.
    pub pending: AtomicU64,
    /// Alerts known to be firing.
    pub firing: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl ForwardStats {
    /// The last failure, until a post succeeds again.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_last_error(&self, error: Option<String>) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = error;
    }
}

/// The `/api/status` form of the forwarder's state.
#[derive(Debug, Clone, Serialize)]
pub struct ForwardStatus {
    pub url: String,
    pub sent: u64,
    pub failed_requests: u64,
    pub dropped: u64,
    pub pending: u64,
    pub firing: u64,
    pub last_error: Option<String>,
}

/// The handle the server keeps: hands alerts to the background task without waiting.
#[derive(Debug)]
pub struct Forwarder {
    url: String,
    queue: Sender<AlertRecord>,
    stats: Arc<ForwardStats>,
}

impl Forwarder {
    /// Checks `url` and starts the background task. `generator_base` (the nms HTTP API's base
    /// URL) makes each alert link back to `/api/alerts?agent=NAME`.
    pub fn start(
        url: &str,
        generator_base: Option<String>,
    ) -> Result<Forwarder, AlertmanagerError> {
        check_url(url)?;
        let (queue, received) = smol::channel::bounded(QUEUE_CAPACITY);
        let stats = Arc::new(ForwardStats::default());
        let worker = Worker {
            url: url.trim().trim_end_matches('/').to_string(),
            outbox: Outbox::new(generator_base),
            stats: stats.clone(),
        };
        smol::spawn(worker.run(received)).detach();
        Ok(Forwarder {
            url: url.to_string(),
            queue,
            stats,
        })
    }

    /// Queues a stored alert for Alertmanager; never waits. A full queue drops it (counted).
    pub fn forward(&self, record: AlertRecord) {
        match self.queue.try_send(record) {
            Ok(()) => {}
            Err(TrySendError::Full(record)) => {
                let dropped = self.stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if dropped.is_power_of_two() {
                    log::event(
                        Level::Warn,
                        "ALERTMGR",
                        format_args!(
                            "queue of {QUEUE_CAPACITY} alerts full: alert {:016x} of {} not forwarded ({dropped} dropped so far)",
                            record.alert_id, record.agent
                        ),
                    );
                }
            }
            Err(TrySendError::Closed(_)) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub fn stats(&self) -> &ForwardStats {
        &self.stats
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn status(&self) -> ForwardStatus {
        let s = &self.stats;
        ForwardStatus {
            url: self.url.clone(),
            sent: s.sent.load(Ordering::Relaxed),
            failed_requests: s.failed_requests.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            pending: s.pending.load(Ordering::Relaxed) + self.queue.len() as u64,
            firing: s.firing.load(Ordering::Relaxed),
            last_error: s.last_error(),
        }
    }
}

/// What is to be posted, and the alerts firing now: no I/O, so every case is a plain test.
#[derive(Debug)]
pub struct Outbox {
    generator_base: Option<String>,
    /// Firing alerts by id, as posted.
    firing: HashMap<u64, PostableAlert>,
    /// The firing `agent_down` alert of each agent.
    agent_down: HashMap<String, u64>,
    pending: VecDeque<PostableAlert>,
    /// Alerts dropped since the last call of [`Outbox::take_dropped`].
    dropped: u64,
}

impl Outbox {
    pub fn new(generator_base: Option<String>) -> Outbox {
        Outbox {
            generator_base,
            firing: HashMap::new(),
            agent_down: HashMap::new(),
            pending: VecDeque::new(),
            dropped: 0,
        }
    }

    /// Takes in one stored alert: a new alert is posted firing, a resolution (or an agent's
    /// `agent_up`) posts the alert it ends.
    pub fn accept(&mut self, record: &AlertRecord) {
        if record.resolves != 0 {
            let alert = match self.firing.remove(&record.resolves) {
                Some(original) => original,
                // Not seen firing (the server restarted in between): the resolution has the
                // same labels as the alert it resolves.
                None => firing(record, record.resolves, self.generator_base.as_deref()),
            };
            self.agent_down.retain(|_, id| *id != record.resolves);
            self.push(ended(alert, record.time_ms));
            return;
        }
        if record.kind == AlertType::AgentUp {
            if let Some(down) = self.agent_down.remove(&record.agent)
                && let Some(original) = self.firing.remove(&down)
            {
                self.push(ended(original, record.time_ms));
            }
            return;
        }
        let alert = firing(record, record.alert_id, self.generator_base.as_deref());
        if record.kind == AlertType::AgentDown {
            self.agent_down
                .insert(record.agent.clone(), record.alert_id);
        }
        self.firing.insert(record.alert_id, alert.clone());
        if self.firing.len() > MAX_FIRING {
            self.forget_oldest_firing();
        }
        self.push(alert);
    }

    fn forget_oldest_firing(&mut self) {
        let oldest = self
            .firing
            .iter()
            .min_by(|a, b| a.1.starts_at.cmp(&b.1.starts_at))
            .map(|(id, _)| *id);
        if let Some(id) = oldest {
            self.firing.remove(&id);
            self.agent_down.retain(|_, down| *down != id);
        }
    }

    fn push(&mut self, alert: PostableAlert) {
        self.pending.push_back(alert);
        while self.pending.len() > MAX_PENDING {
            self.pending.pop_front();
            self.dropped += 1;
        }
    }

    /// Posts every firing alert again (unless a backlog is still waiting: it is posted first,
    /// and the next resend comes soon enough).
    pub fn resend_firing(&mut self) {
        if !self.pending.is_empty() {
            return;
        }
        let mut all: Vec<PostableAlert> = self.firing.values().cloned().collect();
        all.sort_by(|a, b| a.starts_at.cmp(&b.starts_at));
        for alert in all {
            self.push(alert);
        }
    }

    /// The next alerts to post, at most [`MAX_BATCH`], oldest first.
    pub fn take_batch(&mut self) -> Vec<PostableAlert> {
        let n = self.pending.len().min(MAX_BATCH);
        self.pending.drain(..n).collect()
    }

    /// Puts back a batch whose post failed, ahead of what came since.
    pub fn requeue(&mut self, batch: Vec<PostableAlert>) {
        for alert in batch.into_iter().rev() {
            self.pending.push_front(alert);
        }
        while self.pending.len() > MAX_PENDING {
            self.pending.pop_back();
            self.dropped += 1;
        }
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    pub fn firing(&self) -> usize {
        self.firing.len()
    }

    pub fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }
}

/// Whether a failed post may succeed later (Alertmanager down or overloaded), or never will.
fn retryable(e: &ClientError) -> bool {
    match e {
        ClientError::Api { status, .. } => *status >= 500 || *status == 429 || *status == 408,
        ClientError::BadUrl { .. } | ClientError::UnsupportedScheme { .. } => false,
        _ => true,
    }
}

/// The error as an operator of Alertmanager reads it (the client's own messages speak of
/// `nms server`).
fn describe(e: &ClientError) -> String {
    match e {
        ClientError::Connect { address, reason } => {
            format!("cannot connect to {address} ({reason}): is Alertmanager running?")
        }
        ClientError::ConnectTimeout { address } => {
            format!("cannot connect to {address}: no answer: is Alertmanager running?")
        }
        other => other.to_string(),
    }
}

/// The background task: takes alerts from the queue and posts them.
struct Worker {
    url: String,
    outbox: Outbox,
    stats: Arc<ForwardStats>,
}

impl Worker {
    async fn run(mut self, queue: Receiver<AlertRecord>) {
        let mut next_resend = Instant::now() + RESEND_INTERVAL;
        let mut backoff = BACKOFF_MIN;
        let mut failing = false;
        loop {
            if self.outbox.pending() == 0 {
                let wait = async { Some(queue.recv().await) };
                let resend = async {
                    Timer::at(next_resend).await;
                    None
                };
                match future::or(wait, resend).await {
                    Some(Ok(record)) => self.outbox.accept(&record),
                    // The server is gone.
                    Some(Err(_)) => return,
                    None => {
                        self.outbox.resend_firing();
                        next_resend = Instant::now() + RESEND_INTERVAL;
                    }
                }
            }
            while let Ok(record) = queue.try_recv() {
                self.outbox.accept(&record);
            }
            let batch = self.outbox.take_batch();
            self.publish();
            if batch.is_empty() {
                continue;
            }
            let body = match serde_json::to_value(&batch) {
                Ok(v) => v,
                Err(_) => Value::Array(Vec::new()),
            };
            match client::post_json_accepting_any(&self.url, ALERTS_PATH, &body).await {
                Ok(()) => {
                    self.stats
                        .sent
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    self.stats.set_last_error(None);
                    if failing {
                        log::event(
                            Level::Good,
                            "ALERTMGR",
                            format_args!("{} accepts alerts again", self.url),
                        );
                    }
                    failing = false;
                    backoff = BACKOFF_MIN;
                }
                Err(e) => {
                    self.stats.failed_requests.fetch_add(1, Ordering::Relaxed);
                    let text = describe(&e);
                    self.stats.set_last_error(Some(text.clone()));
                    if retryable(&e) {
                        log::event(
                            Level::Warn,
                            "ALERTMGR",
                            format_args!(
                                "{} alert(s) not delivered: {text}; retrying in {:.1} s",
                                batch.len(),
                                backoff.as_secs_f64()
                            ),
                        );
                        self.outbox.requeue(batch);
                        self.publish();
                        failing = true;
                        Timer::after(backoff).await;
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                    } else {
                        log::event(
                            Level::Bad,
                            "ALERTMGR",
                            format_args!("{} alert(s) refused, not retried: {text}", batch.len()),
                        );
                        self.stats
                            .dropped
                            .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    }
                }
            }
            self.publish();
        }
    }

    /// Copies the outbox's sizes to the shared counters.
    fn publish(&mut self) {
        let dropped = self.outbox.take_dropped();
        if dropped > 0 {
            self.stats.dropped.fetch_add(dropped, Ordering::Relaxed);
        }
        self.stats
            .pending
            .store(self.outbox.pending() as u64, Ordering::Relaxed);
        self.stats
            .firing
            .store(self.outbox.firing() as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: u64, kind: AlertType, resolves: u64, time_ms: u64) -> AlertRecord {
        AlertRecord {
            alert_id: id,
            agent: "edge-1".into(),
            task: "task-101".into(),
            kind,
            severity: Severity::Critical,
            value: 97.5,
            threshold: 80.0,
            time_ms,
            rule: "condition:cpu_usage".into(),
            message: "CPU usage 97.5% is above 80%".into(),
            received_ms: time_ms,
            resolves,
            resolved_ms: None,
        }
    }

    const T0: u64 = 1_764_236_400_000;

    #[test]
    fn an_alert_becomes_a_postable_alert_with_labels_and_annotations() {
        let a = firing(
            &record(0xab, AlertType::PacketLoss, 0, T0),
            0xab,
            Some("http://127.0.0.1:9470"),
        );
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "labels": {
                    "alertname": "NmsPacketLoss",
                    "agent": "edge-1",
                    "task": "task-101",
                    "kind": "packet_loss",
                    "severity": "critical",
                    "rule": "condition:cpu_usage",
                    "alert_id": "00000000000000ab",
                },
                "annotations": {
                    "summary": "CPU usage 97.5% is above 80%",
                    "description": "PACKETLOSS on agent edge-1: CPU usage 97.5% is above 80% (value 97.5, threshold 80, task task-101, rule condition:cpu_usage)",
                    "value": "97.5",
                    "threshold": "80",
                },
                "startsAt": "2025-11-27T09:40:00.000Z",
                "generatorURL": "http://127.0.0.1:9470/api/alerts?agent=edge-1",
            })
        );
    }

    #[test]
    fn empty_labels_are_left_out() {
        let mut r = record(1, AlertType::AgentDown, 0, T0);
        r.task.clear();
        let a = firing(&r, 1, None);
        assert!(!a.labels.contains_key("task"));
        assert_eq!(a.labels["alertname"], "NmsAgentDown");
        assert_eq!(a.generator_url, None);
    }

    #[test]
    fn a_resolution_reposts_the_original_with_its_end_time() {
        let mut out = Outbox::new(None);
        out.accept(&record(7, AlertType::Cpu, 0, T0));
        let first = out.take_batch();
        assert_eq!(first.len(), 1);
        assert_eq!(out.firing(), 1);
        let mut resolution = record(8, AlertType::Cpu, 7, T0 + 5000);
        resolution.message = "resolved: CPU usage 97.5% is above 80%".into();
        out.accept(&resolution);
        let second = out.take_batch();
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].labels, first[0].labels);
        assert_eq!(second[0].annotations, first[0].annotations);
        assert_eq!(second[0].starts_at, first[0].starts_at);
        assert_eq!(
            second[0].ends_at.as_deref(),
            Some("2025-11-27T09:40:05.000Z")
        );
        assert_eq!(out.firing(), 0);
    }

    #[test]
    fn a_resolution_of_an_alert_never_seen_still_ends_it_by_its_labels() {
        let mut out = Outbox::new(None);
        out.accept(&record(9, AlertType::Cpu, 5, T0));
        let batch = out.take_batch();
        assert_eq!(batch[0].labels["alert_id"], "0000000000000005");
        assert_eq!(
            batch[0].ends_at.as_deref(),
            Some(batch[0].starts_at.as_str())
        );
    }

    #[test]
    fn the_end_is_never_before_the_start() {
        let a = firing(&record(1, AlertType::Cpu, 0, T0), 1, None);
        let e = ended(a.clone(), T0 - 1000);
        assert_eq!(e.ends_at.as_deref(), Some(a.starts_at.as_str()));
    }

    #[test]
    fn agent_up_resolves_the_agents_agent_down() {
        let mut out = Outbox::new(None);
        out.accept(&record(20, AlertType::AgentDown, 0, T0));
        let down = out.take_batch().remove(0);
        // An agent_up of another agent resolves nothing.
        let mut other = record(21, AlertType::AgentUp, 0, T0 + 1000);
        other.agent = "edge-2".into();
        out.accept(&other);
        assert!(out.take_batch().is_empty());
        out.accept(&record(22, AlertType::AgentUp, 0, T0 + 3000));
        let up = out.take_batch();
        assert_eq!(up.len(), 1, "agent_up itself is not an alert");
        assert_eq!(up[0].labels, down.labels);
        assert_eq!(up[0].ends_at.as_deref(), Some("2025-11-27T09:40:03.000Z"));
        assert_eq!(out.firing(), 0);
    }

    #[test]
    fn firing_alerts_are_posted_again_and_resolved_ones_are_not() {
        let mut out = Outbox::new(None);
        out.accept(&record(1, AlertType::Cpu, 0, T0));
        out.accept(&record(2, AlertType::Ram, 0, T0 + 1));
        out.accept(&record(3, AlertType::Cpu, 1, T0 + 2));
        assert_eq!(out.take_batch().len(), 3);
        out.resend_firing();
        let again = out.take_batch();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].labels["kind"], "ram");
        assert_eq!(again[0].ends_at, None);
    }

    #[test]
    fn a_failed_batch_goes_back_ahead_of_newer_alerts_and_the_backlog_is_bounded() {
        let mut out = Outbox::new(None);
        for id in 1..=3 {
            out.accept(&record(id, AlertType::Cpu, 0, T0 + id));
        }
        let batch = out.take_batch();
        out.accept(&record(4, AlertType::Cpu, 0, T0 + 4));
        out.requeue(batch);
        let ids: Vec<String> = out
            .take_batch()
            .iter()
            .map(|a| a.labels["alert_id"].clone())
            .collect();
        assert_eq!(ids.len(), 4);
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        for id in 0..(MAX_PENDING as u64 + 10) {
            out.accept(&record(100 + id, AlertType::Custom, 0, T0));
        }
        assert_eq!(out.pending(), MAX_PENDING);
        assert_eq!(out.take_dropped(), 10);
    }

    #[test]
    fn only_http_base_urls_are_accepted() {
        assert!(check_url("http://127.0.0.1:9093").is_ok());
        assert!(check_url("http://am.example.net/alertmanager/").is_ok());
        for bad in [
            "127.0.0.1:9093",
            "https://am:9093",
            "http://",
            "http://am/?x=1",
            "",
        ] {
            let e = check_url(bad).unwrap_err();
            assert!(e.to_string().contains("http://127.0.0.1:9093"), "{e}");
        }
    }

    #[test]
    fn a_refused_post_is_not_retried_but_an_unreachable_alertmanager_is() {
        let api = |status| ClientError::Api {
            url: "u".into(),
            status,
            message: "m".into(),
        };
        assert!(!retryable(&api(400)));
        assert!(retryable(&api(503)));
        assert!(retryable(&ClientError::ConnectTimeout {
            address: "a".into()
        }));
    }
}
