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

pub mod target;

pub use target::{Auth, PostError, Target, TargetError};

use super::firing::{AlertKey, FiringAlert};
use super::silence::Silence;
use crate::log::{self, Level};
use crate::store::AlertRecord;
use crate::wire::{AlertType, Severity};
use async_io::Timer;
use futures_lite::future;
use serde::Serialize;
use smol::channel::{Receiver, Sender, TrySendError};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// What is to be posted to one Alertmanager: no I/O, so every case is a plain test.
#[derive(Debug)]
pub struct Outbox {
    generator_base: Option<String>,
    /// What fires now, as the server says.
    firing: HashMap<AlertKey, FiringAlert>,
    /// Alerts that stopped firing, to post resolved.
    ended: Vec<(FiringAlert, u64)>,
    silences: Vec<Silence>,
    /// What Alertmanager was last told fires, by labels.
    posted: BTreeMap<BTreeMap<String, String>, PostableAlert>,
    pending: VecDeque<PostableAlert>,
    next_resend_ms: u64,
    /// Alerts dropped since the last call of [`Outbox::take_dropped`].
    dropped: u64,
}

impl Outbox {
    pub fn new(generator_base: Option<String>) -> Outbox {
        Outbox {
            generator_base,
            firing: HashMap::new(),
            ended: Vec::new(),
            silences: Vec::new(),
            posted: BTreeMap::new(),
            pending: VecDeque::new(),
            next_resend_ms: 0,
            dropped: 0,
        }
    }

    pub fn accept(&mut self, event: Event) {
        match event {
            Event::Fired(alert) => {
                self.firing.insert(AlertKey::of(&alert.record), alert);
            }
            Event::Ended { alert, at_ms } => {
                let key = AlertKey::of(&alert.record);
                if self
                    .firing
                    .get(&key)
                    .is_some_and(|a| a.record.alert_id == alert.record.alert_id)
                {
                    self.firing.remove(&key);
                }
                self.ended.push((alert, at_ms));
            }
            Event::Silences(list) => self.silences = list,
        }
    }

    fn silenced(&self, record: &AlertRecord, now_ms: u64) -> bool {
        self.silences.iter().any(|s| s.silences(record, now_ms))
    }

    /// Brings what is to be posted up to date at `now_ms`: alerts that ended are posted
    /// resolved, new ones (and those a silence let go) firing, those a silence now covers
    /// ended, and every resend interval all that fire again.
    pub fn update(&mut self, now_ms: u64) {
        for (alert, at_ms) in std::mem::take(&mut self.ended) {
            let posted = firing(&alert, now_ms, self.generator_base.as_deref());
            let labels = posted.labels.clone();
            // Posted resolved even if it was never posted here: it may have been before a
            // restart. Not when the same labels fire again already (a new episode).
            let again = self
                .firing
                .values()
                .any(|a| super::alertmanager::labels(&a.record) == labels);
            if !again {
                self.posted.remove(&labels);
                self.push(ended(posted, at_ms));
            }
        }
        let mut wanted: BTreeMap<BTreeMap<String, String>, PostableAlert> = BTreeMap::new();
        for alert in self.firing.values() {
            if self.silenced(&alert.record, now_ms) {
                continue;
            }
            let p = firing(alert, now_ms, self.generator_base.as_deref());
            wanted.insert(p.labels.clone(), p);
        }
        let resend = now_ms >= self.next_resend_ms;
        let gone: Vec<PostableAlert> = self
            .posted
            .iter()
            .filter(|(labels, _)| !wanted.contains_key(*labels))
            .map(|(_, p)| p.clone())
            .collect();
        for p in gone {
            self.push(ended(p, now_ms));
        }
        let mut fresh: Vec<PostableAlert> = wanted
            .iter()
            .filter(|(labels, _)| resend || !self.posted.contains_key(*labels))
            .map(|(_, p)| p.clone())
            .collect();
        fresh.sort_by(|a, b| a.starts_at.cmp(&b.starts_at));
        for p in fresh {
            self.push(p);
        }
        if resend {
            self.next_resend_ms = now_ms + RESEND_INTERVAL.as_millis() as u64;
        }
        self.posted = wanted;
    }

    /// When [`Outbox::update`] has something to do next without a new event: the next resend
    /// or the next start or end of a silence.
    pub fn next_update(&self, now_ms: u64) -> u64 {
        let silence = self
            .silences
            .iter()
            .flat_map(|s| [s.starts_ms, s.ends_ms])
            .filter(|t| *t > now_ms)
            .min()
            .unwrap_or(u64::MAX);
        self.next_resend_ms.max(now_ms).min(silence)
    }

    fn push(&mut self, alert: PostableAlert) {
        self.pending.push_back(alert);
        while self.pending.len() > MAX_PENDING {
            self.pending.pop_front();
            self.dropped += 1;
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

    /// Alerts Alertmanager was told fire.
    pub fn firing(&self) -> usize {
        self.posted.len()
    }

    pub fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }
}

/// Counters of a forwarder, shared with `/api/status` and `/metrics`.
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
    /// Alerts Alertmanager was told fire.
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

/// The `/api/status` form of a forwarder's state.
#[derive(Debug, Clone, Serialize)]
pub struct ForwardStatus {
    /// The base URL, without credentials.
    pub url: String,
    pub authenticated: bool,
    pub sent: u64,
    pub failed_requests: u64,
    pub dropped: u64,
    pub pending: u64,
    pub firing: u64,
    pub last_error: Option<String>,
}

/// The handle the server keeps for one Alertmanager: hands changes to the background task
/// without waiting.
#[derive(Debug)]
pub struct Forwarder {
    target: Target,
    queue: Sender<Event>,
    stats: Arc<ForwardStats>,
}

impl Forwarder {
    /// Starts the background task for `target`. `generator_base` (the nms HTTP API's base
    /// URL) makes each alert link back to `/api/alerts?agent=NAME`.
    pub fn start(
        target: &Target,
        generator_base: Option<String>,
    ) -> Result<Forwarder, TargetError> {
        check_target(target)?;
        let (queue, received) = smol::channel::bounded(QUEUE_CAPACITY);
        let stats = Arc::new(ForwardStats::default());
        let worker = Worker {
            target: target.clone(),
            outbox: Outbox::new(generator_base),
            stats: stats.clone(),
        };
        smol::spawn(worker.run(received)).detach();
        Ok(Forwarder {
            target: target.clone(),
            queue,
            stats,
        })
    }

    /// Hands over a change; never waits. A full queue drops it (counted).
    pub fn send(&self, event: Event) {
        match self.queue.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                let dropped = self.stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if dropped.is_power_of_two() {
                    log::event(
                        Level::Warn,
                        "ALERTMGR",
                        format_args!(
                            "{}: queue of {QUEUE_CAPACITY} changes full: one not forwarded ({dropped} dropped so far)",
                            self.target.url()
                        ),
                    );
                }
            }
            Err(TrySendError::Closed(_)) => {}
        }
    }

    /// Stops the background task (the server is stopping).
    pub fn close(&self) {
        self.queue.close();
    }

    pub fn stats(&self) -> &ForwardStats {
        &self.stats
    }

    /// The base URL, without credentials.
    pub fn url(&self) -> &str {
        self.target.url()
    }

    pub fn status(&self) -> ForwardStatus {
        let s = &self.stats;
        ForwardStatus {
            url: self.target.url().to_string(),
            authenticated: self.target.has_credentials(),
            sent: s.sent.load(Ordering::Relaxed),
            failed_requests: s.failed_requests.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            pending: s.pending.load(Ordering::Relaxed) + self.queue.len() as u64,
            firing: s.firing.load(Ordering::Relaxed),
            last_error: s.last_error(),
        }
    }
}

/// The background task of one forwarder.
struct Worker {
    target: Target,
    outbox: Outbox,
    stats: Arc<ForwardStats>,
}

impl Worker {
    async fn run(mut self, queue: Receiver<Event>) {
        let mut backoff = BACKOFF_MIN;
        let mut failing = false;
        loop {
            while let Ok(event) = queue.try_recv() {
                self.outbox.accept(event);
            }
            let now = log::now_ms();
            self.outbox.update(now);
            self.publish();
            if self.outbox.pending() == 0 {
                let next = self.outbox.next_update(now);
                let wait = Duration::from_millis(next.saturating_sub(now).min(3_600_000));
                let event = future::or(async { Some(queue.recv().await) }, async {
                    Timer::after(wait).await;
                    None
                })
                .await;
                match event {
                    Some(Ok(event)) => self.outbox.accept(event),
                    // The server is stopping.
                    Some(Err(_)) => return,
                    None => {}
                }
                continue;
            }
            let batch = self.outbox.take_batch();
            let body = serde_json::to_vec(&batch).unwrap_or_default();
            match self.target.post(ALERTS_PATH, body.into()).await {
                Ok(()) => {
                    self.stats
                        .sent
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    self.stats.set_last_error(None);
                    if failing {
                        log::event(
                            Level::Good,
                            "ALERTMGR",
                            format_args!("{} accepts alerts again", self.target.url()),
                        );
                    }
                    failing = false;
                    backoff = BACKOFF_MIN;
                }
                Err(e) => {
                    self.stats.failed_requests.fetch_add(1, Ordering::Relaxed);
                    let text = e.to_string();
                    self.stats.set_last_error(Some(text.clone()));
                    if e.retryable() {
                        log::event(
                            Level::Warn,
                            "ALERTMGR",
                            format_args!(
                                "{}: {} alert(s) not delivered: {text}; retrying in {:.1} s",
                                self.target.url(),
                                batch.len(),
                                backoff.as_secs_f64()
                            ),
                        );
                        self.outbox.requeue(batch);
                        self.publish();
                        failing = true;
                        if future::or(
                            async {
                                Timer::after(backoff).await;
                                false
                            },
                            async {
                                // Stopping: do not sit out the backoff.
                                while !queue.is_closed() {
                                    Timer::after(Duration::from_millis(100)).await;
                                }
                                true
                            },
                        )
                        .await
                        {
                            return;
                        }
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                    } else {
                        log::event(
                            Level::Bad,
                            "ALERTMGR",
                            format_args!(
                                "{}: {} alert(s) refused, not retried: {text}",
                                self.target.url(),
                                batch.len()
                            ),
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
mod tests;
