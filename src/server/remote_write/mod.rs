//! Remote write (`nms server --remote-write URL`, repeatable): every stored metrics report, as
//! Prometheus remote-write 1.0 samples, to Prometheus, Mimir, Thanos, Cortex, VictoriaMetrics
//! or anything else that takes the protocol. docs/REMOTE_WRITE.md is the full description.
//!
//! - **The same series as `/metrics`.** A report's fields become samples of the families and
//!   labels `/metrics` exports ([`super::prometheus::reading_labels`]), at the report's own
//!   time, in the family's base unit. Rates are left out, as in `/metrics`.
//! - **A durable cursor per destination.** The store numbers every report it accepts
//!   ([`crate::store::sequence`]); a destination reads them in that order, from the head or
//!   from the chunks wherever their times are, and after each request the receiver accepted
//!   the store records how far it got (a catalogue fact, one synced commit). After an outage
//!   of the receiver or a restart of nms, sending resumes after the last accepted request:
//!   nothing is sent twice (a crash can repeat one request, which receivers take as
//!   duplicates of equal samples) and nothing is skipped while raw retention keeps it.
//! - **Batching and back-off.** A destination sends whatever is stored, at most
//!   [`DEFAULT_MAX_SAMPLES_PER_SEND`] samples a request, then waits up to [`SEND_EVERY`] for
//!   more. A failure the receiver may get over (no connection, 5xx, 429, 401/403/404 until an
//!   operator fixes the URL or credentials) is retried with exponential back-off, the same
//!   request again; a refusal of the samples themselves (400, 413, 422: out of order, too
//!   old, too large) splits the request in halves until the refused samples stand alone,
//!   which are dropped and counted (`samples_failed`); the rest is sent.
//! - **Status** per destination in `/api/status` (`remote_write`) and `/metrics`
//!   (`nms_remote_write_*{remote_name, url}`): samples sent and failed, requests failed,
//!   reports pending, lag in seconds.
//!
//! One destination's outage delays nothing else: each has its own task, and ingest never
//! waits for any.

pub mod proto;

use super::alertmanager::target::{Auth, Link, PostError, Service, Target, TargetError};
use crate::log::{self, Level};
use crate::store::{Sequenced, Store, StoreError};
use bytes::Bytes;
use hyper::header;
use proto::{RequestBuilder, SeriesLabels};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A remote-write receiver (its full URL, e.g. `http://127.0.0.1:9090/api/v1/write`).
pub const RECEIVER: Service = Service {
    name: "the remote-write receiver",
    flag: "--remote-write",
    example: "the receiver's full URL, e.g. http://127.0.0.1:9090/api/v1/write",
};

/// Samples in one request at most, unless the destination says otherwise.
pub const DEFAULT_MAX_SAMPLES_PER_SEND: usize = 10_000;
/// Reports read from the store at once.
const READ_ROWS: usize = 5_000;
/// How often a destination that has sent everything looks for more.
pub const SEND_EVERY: Duration = Duration::from_secs(1);
/// First wait after a failure; doubled on each failure up to [`BACKOFF_MAX`].
pub const BACKOFF_MIN: Duration = Duration::from_millis(250);
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// One destination, validated.
#[derive(Debug, Clone)]
pub struct Destination {
    /// What names its cursor and its status (the URL without credentials unless given).
    pub name: String,
    pub target: Target,
    pub max_samples_per_send: usize,
}

impl Destination {
    /// The store's name of the destination's cursor.
    fn cursor_name(&self) -> String {
        format!("remote-write:{}", self.name)
    }
}

/// The credentials of a receiver: at most one of an nms credentials file (`bearer TOKEN` or
/// `basic USER:PASSWORD`), a file holding a bearer token alone, or a user with a file holding
/// the password alone.
pub fn auth_of(
    auth_file: Option<&std::path::Path>,
    bearer_token_file: Option<&std::path::Path>,
    username: Option<&str>,
    password_file: Option<&std::path::Path>,
) -> Result<Option<Auth>, TargetError> {
    let secret = |path: &std::path::Path, what: &str| -> Result<String, TargetError> {
        let bad = |reason: String| TargetError::Credentials {
            path: path.display().to_string(),
            reason,
        };
        crate::config::warn_if_readable_by_others(path, what);
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad(format!("cannot read the {what}: {e}")))?;
        let value = text.trim();
        if value.is_empty() || value.contains(['\n', '\r']) {
            return Err(bad(format!("the {what} must be one line of text")));
        }
        Ok(value.to_string())
    };
    let given = [
        auth_file.is_some(),
        bearer_token_file.is_some(),
        username.is_some() || password_file.is_some(),
    ];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(TargetError::Credentials {
            path: "remote write".into(),
            reason: "give one of auth-file, bearer-token-file, or username with password-file"
                .into(),
        });
    }
    if let Some(path) = auth_file {
        return Auth::read(path).map(Some);
    }
    if let Some(path) = bearer_token_file {
        return Ok(Some(Auth::Bearer(secret(path, "bearer token file")?)));
    }
    match (username, password_file) {
        (Some(user), Some(path)) if !user.is_empty() => Ok(Some(Auth::Basic {
            user: user.to_string(),
            password: secret(path, "password file")?,
        })),
        (None, None) => Ok(None),
        _ => Err(TargetError::Credentials {
            path: "remote write".into(),
            reason: "basic authentication needs both username and password-file".into(),
        }),
    }
}

/// What becomes of a request the receiver did not take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it again after a pause: the receiver is down, overloaded, or refuses the URL or
    /// the credentials (fixed by an operator, then everything waiting is sent).
    Retry,
    /// The receiver refused (some of) the samples: split the request to find them.
    Split,
}

/// How a failure is handled (see the module's notes).
pub fn verdict(e: &PostError) -> Verdict {
    match e {
        PostError::Status { status, .. } if matches!(status, 400 | 413 | 422) => Verdict::Split,
        _ => Verdict::Retry,
    }
}

/// Counters of one destination, shared with `/api/status` and `/metrics`.
#[derive(Debug, Default)]
pub struct WriteStats {
    pub samples_sent: AtomicU64,
    /// Samples the receiver refused on their own (dropped).
    pub samples_failed: AtomicU64,
    /// Requests that failed and were tried again.
    pub requests_failed: AtomicU64,
    /// The sequence number every report up to has been sent.
    pub cursor: AtomicU64,
    /// The time of the oldest report not sent yet, when it was read.
    pub first_unsent_ms: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl WriteStats {
    fn set_last_error(&self, e: Option<String>) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = e;
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The `/api/status` form of a destination.
#[derive(Debug, Clone, Serialize)]
pub struct WriteStatus {
    pub name: String,
    /// The URL without credentials.
    pub url: String,
    pub authenticated: bool,
    pub samples_sent: u64,
    pub samples_failed: u64,
    pub requests_failed: u64,
    /// Reports stored and not sent yet.
    pub reports_pending: u64,
    /// How long the oldest report not sent yet has waited, in seconds (0 when none waits).
    pub lag_seconds: f64,
    /// The store's sequence number sent up to.
    pub cursor: u64,
    pub last_error: Option<String>,
}

/// The handle the server keeps for one destination.
pub struct Writer {
    destination: Destination,
    stats: Arc<WriteStats>,
    stop: smol::channel::Sender<()>,
    task: Mutex<Option<smol::Task<()>>>,
}

impl Writer {
    /// Starts sending to `destination` from its cursor (a new destination starts after the
    /// newest report stored now: it gets what is stored from then on).
    pub fn start(destination: Destination, store: Arc<Store>) -> Result<Writer, StoreError> {
        let name = destination.cursor_name();
        let cursor = match store.cursor(&name)? {
            Some(c) => {
                let pending = store.committed_seq().saturating_sub(c);
                log::event(
                    Level::Info,
                    "REMOTEWR",
                    format_args!(
                        "{}: resuming after report #{c} ({pending} report(s) to send)",
                        destination.target.url()
                    ),
                );
                c
            }
            None => {
                let c = store.committed_seq();
                store.set_cursor(&name, c)?;
                log::event(
                    Level::Info,
                    "REMOTEWR",
                    format_args!(
                        "{}: a new destination: sending the reports stored from now on (after #{c})",
                        destination.target.url()
                    ),
                );
                c
            }
        };
        let stats = Arc::new(WriteStats::default());
        stats.cursor.store(cursor, Ordering::Relaxed);
        let (stop, stopped) = smol::channel::bounded(1);
        let worker = Worker {
            destination: destination.clone(),
            store,
            stats: stats.clone(),
            stopped,
            labels: LabelCache::default(),
            link: None,
            failing: false,
            refused_logged_ms: 0,
        };
        let task = smol::spawn(worker.run(cursor));
        Ok(Writer {
            destination,
            stats,
            stop,
            task: Mutex::new(Some(task)),
        })
    }

    pub fn url(&self) -> &str {
        self.destination.target.url()
    }

    pub fn name(&self) -> &str {
        &self.destination.name
    }

    pub fn status(&self, store: &Store, now_ms: u64) -> WriteStatus {
        let s = &self.stats;
        let cursor = s.cursor.load(Ordering::Relaxed);
        let pending = store.committed_seq().saturating_sub(cursor);
        let lag_seconds = if pending == 0 {
            0.0
        } else {
            let since = store
                .committed_at(cursor + 1)
                .unwrap_or_else(|| s.first_unsent_ms.load(Ordering::Relaxed));
            now_ms.saturating_sub(since) as f64 / 1000.0
        };
        WriteStatus {
            name: self.destination.name.clone(),
            url: self.url().to_string(),
            authenticated: self.destination.target.has_credentials(),
            samples_sent: s.samples_sent.load(Ordering::Relaxed),
            samples_failed: s.samples_failed.load(Ordering::Relaxed),
            requests_failed: s.requests_failed.load(Ordering::Relaxed),
            reports_pending: pending,
            lag_seconds,
            cursor,
            last_error: s.last_error(),
        }
    }

    /// Stops sending: a request under way is finished (and its cursor recorded) within
    /// `grace`, then the task ends.
    pub async fn close(&self, grace: Duration) {
        self.stop.close();
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            let finished = futures_lite::future::or(
                async {
                    task.await;
                    true
                },
                async {
                    async_io::Timer::after(grace).await;
                    false
                },
            )
            .await;
            if !finished {
                log::event(
                    Level::Warn,
                    "REMOTEWR",
                    format_args!(
                        "{}: a request was still under way when stopping; it is sent again at the next start",
                        self.url()
                    ),
                );
            }
        }
    }
}

/// The labels of each (series, column) met so far, encoded; `None` for what is not exported.
#[derive(Default)]
struct LabelCache {
    labels: HashMap<(u32, u32), Option<(Arc<SeriesLabels>, f64)>>,
}

impl LabelCache {
    /// The series labels and the divisor to the base unit of a column of a series.
    fn get(&mut self, store: &Store, series: u32, column: u32) -> Option<(Arc<SeriesLabels>, f64)> {
        if let Some(known) = self.labels.get(&(series, column)) {
            return known.clone();
        }
        let made = (|| {
            let key = store.series_key(series)?;
            let column_def = store.column(column)?;
            let def = column_def.field.def();
            if !super::prometheus::exported(def) {
                return None;
            }
            let mut labels = super::prometheus::reading_labels(
                def,
                &key.agent,
                &key.task,
                key.target.as_deref(),
                column_def.instance.as_deref(),
            );
            labels.push(("__name__", def.prometheus));
            Some((Arc::new(SeriesLabels::new(&labels)), def.prometheus_divisor))
        })();
        self.labels.insert((series, column), made.clone());
        made
    }
}

/// One sample on its way, with the report it came from.
#[derive(Debug, Clone)]
struct Pending {
    seq: u64,
    key: (u32, u32),
    time_ms: i64,
    value: f64,
}

/// The samples of `rows` in their order (rows of what is not exported give none).
fn samples_of(rows: &[Sequenced], store: &Store, cache: &mut LabelCache) -> Vec<Pending> {
    let mut out = Vec::with_capacity(rows.len() * 12);
    for row in rows {
        for (column, stored) in &row.values {
            let Some((_, divisor)) = cache.get(store, row.series, *column) else {
                continue;
            };
            let Some(field) = store.column(*column).map(|c| c.field) else {
                continue;
            };
            out.push(Pending {
                seq: row.seq,
                key: (row.series, *column),
                time_ms: row.time_ms.min(i64::MAX as u64) as i64,
                value: field.def().value(*stored) / divisor,
            });
        }
    }
    out
}

/// The body of one request: the samples grouped by series.
fn build(samples: &[Pending], cache: &LabelCache) -> (Bytes, usize) {
    let mut order: Vec<(u32, u32)> = Vec::new();
    let mut by_series: HashMap<(u32, u32), Vec<(i64, f64)>> = HashMap::new();
    for s in samples {
        by_series
            .entry(s.key)
            .or_insert_with(|| {
                order.push(s.key);
                Vec::new()
            })
            .push((s.time_ms, s.value));
    }
    let mut builder = RequestBuilder::default();
    for key in order {
        let Some(Some((labels, _))) = cache.labels.get(&key) else {
            continue;
        };
        if let Some(points) = by_series.get_mut(&key) {
            builder.series(labels, points);
        }
    }
    let n = builder.samples();
    (Bytes::from(builder.finish()), n)
}

/// Splits samples (in report order) into requests of at most `max` samples, never splitting
/// a report: (start, end) ranges.
fn requests(samples: &[Pending], max: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < samples.len() {
        let mut j = i;
        while j < samples.len() && samples[j].seq == samples[i].seq {
            j += 1;
        }
        if j - start > max.max(1) && i > start {
            out.push((start, i));
            start = i;
        }
        i = j;
    }
    if start < samples.len() {
        out.push((start, samples.len()));
    }
    out
}

/// Sending was asked to stop.
struct Stopped;

/// The background task of one destination.
struct Worker {
    destination: Destination,
    store: Arc<Store>,
    stats: Arc<WriteStats>,
    stopped: smol::channel::Receiver<()>,
    labels: LabelCache,
    link: Option<Link>,
    /// In a failing episode (logged once).
    failing: bool,
    refused_logged_ms: u64,
}

impl Worker {
    async fn run(mut self, mut cursor: u64) {
        loop {
            let began = std::time::Instant::now();
            let store = self.store.clone();
            let read = smol::unblock(move || store.read_sequenced(cursor, READ_ROWS)).await;
            let batch = match read {
                Ok(b) => b,
                Err(e) => {
                    self.fail(&format!("cannot read the store: {e}"));
                    if self.pause(BACKOFF_MAX).await.is_err() {
                        return;
                    }
                    continue;
                }
            };
            let full = batch.rows.len() >= READ_ROWS;
            if let Some(first) = batch.rows.first() {
                self.stats
                    .first_unsent_ms
                    .store(first.time_ms, Ordering::Relaxed);
            }
            if batch.through > cursor {
                match self.send_batch(&batch.rows, batch.through).await {
                    Ok(c) => cursor = c,
                    Err(Stopped) => return,
                }
            }
            if !full {
                let wait = SEND_EVERY.saturating_sub(began.elapsed());
                if self.pause(wait).await.is_err() {
                    return;
                }
            } else if self.stopped.is_closed() {
                return;
            }
        }
    }

    /// Sends the samples of `rows`, request by request, recording the cursor after each;
    /// returns the cursor reached (`through` once all is sent).
    async fn send_batch(&mut self, rows: &[Sequenced], through: u64) -> Result<u64, Stopped> {
        let samples = samples_of(rows, &self.store, &mut self.labels);
        let ranges = requests(&samples, self.destination.max_samples_per_send);
        let mut cursor = self.stats.cursor.load(Ordering::Relaxed);
        for (n, (start, end)) in ranges.iter().enumerate() {
            self.deliver(&samples[*start..*end]).await?;
            let reached = if n + 1 == ranges.len() {
                through
            } else {
                samples[*end - 1].seq
            };
            cursor = self.record(reached).await?;
        }
        if ranges.is_empty() {
            cursor = self.record(through).await?;
        }
        Ok(cursor)
    }

    /// Records the cursor durably (retried until the store takes it).
    async fn record(&mut self, cursor: u64) -> Result<u64, Stopped> {
        let name = self.destination.cursor_name();
        loop {
            let store = self.store.clone();
            let n = name.clone();
            match smol::unblock(move || store.set_cursor(&n, cursor)).await {
                Ok(()) => {
                    self.stats.cursor.store(cursor, Ordering::Relaxed);
                    return Ok(cursor);
                }
                Err(e) => {
                    self.fail(&format!("cannot record how far it got: {e}"));
                    self.pause(BACKOFF_MAX).await?;
                }
            }
        }
    }

    /// Delivers samples: retried while the receiver may get over its failure, split while it
    /// refuses some of them (those alone are dropped, counted).
    async fn deliver(&mut self, samples: &[Pending]) -> Result<(), Stopped> {
        let mut todo = vec![(0, samples.len())];
        let mut backoff = BACKOFF_MIN;
        while let Some((start, end)) = todo.pop() {
            let part = &samples[start..end];
            let (body, count) = build(part, &self.labels);
            if count == 0 {
                continue;
            }
            match self.post(body).await {
                Ok(()) => {
                    self.stats
                        .samples_sent
                        .fetch_add(count as u64, Ordering::Relaxed);
                    backoff = BACKOFF_MIN;
                    self.recovered();
                }
                Err(e) => match verdict(&e) {
                    Verdict::Split if end - start > 1 => {
                        let middle = start + (end - start) / 2;
                        todo.push((middle, end));
                        todo.push((start, middle));
                    }
                    Verdict::Split => {
                        self.stats.samples_failed.fetch_add(1, Ordering::Relaxed);
                        self.refused(&e, &part[0]);
                    }
                    Verdict::Retry => {
                        self.stats.requests_failed.fetch_add(1, Ordering::Relaxed);
                        self.fail(&e.to_string());
                        self.link = None;
                        self.pause(backoff).await?;
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                        todo.push((start, end));
                    }
                },
            }
        }
        Ok(())
    }

    async fn post(&mut self, body: Bytes) -> Result<(), PostError> {
        let target = &self.destination.target;
        if !self.link.as_ref().is_some_and(Link::is_open) {
            self.link = Some(target.connect().await?);
        }
        let request = target.request(
            "",
            &[
                (header::CONTENT_TYPE, "application/x-protobuf"),
                (header::CONTENT_ENCODING, "snappy"),
                (
                    header::HeaderName::from_static("x-prometheus-remote-write-version"),
                    "0.1.0",
                ),
            ],
            body,
        )?;
        let link = self.link.as_mut().ok_or(PostError::Http {
            reason: "no connection".into(),
        })?;
        let result = link.send(RECEIVER, request).await;
        if result.is_err() {
            self.link = None;
        }
        result
    }

    /// Waits `wait`, or less if asked to stop (then `Err`).
    async fn pause(&self, wait: Duration) -> Result<(), Stopped> {
        let stopped = futures_lite::future::or(
            async {
                let _ = self.stopped.recv().await;
                true
            },
            async {
                async_io::Timer::after(wait).await;
                false
            },
        )
        .await;
        if stopped { Err(Stopped) } else { Ok(()) }
    }

    fn fail(&mut self, why: &str) {
        self.stats.set_last_error(Some(why.to_string()));
        if !self.failing {
            self.failing = true;
            log::event(
                Level::Bad,
                "REMOTEWR",
                format_args!(
                    "{}: {why}; the reports wait in the store and are sent when it answers (retried with back-off, logged once until it does)",
                    self.destination.target.url()
                ),
            );
        }
    }

    fn recovered(&mut self) {
        if self.failing {
            self.failing = false;
            self.stats.set_last_error(None);
            log::event(
                Level::Good,
                "REMOTEWR",
                format_args!("{}: accepts samples again", self.destination.target.url()),
            );
        }
    }

    fn refused(&mut self, e: &PostError, sample: &Pending) {
        let now = log::now_ms();
        if now.saturating_sub(self.refused_logged_ms) < 60_000 {
            return;
        }
        self.refused_logged_ms = now;
        let series = self
            .store
            .series_key(sample.key.0)
            .map(|k| format!("{} {}", k.agent, k.task))
            .unwrap_or_default();
        log::event(
            Level::Warn,
            "REMOTEWR",
            format_args!(
                "{}: a sample of {series} at {} was refused and dropped: {e} ({} dropped so far; logged at most once a minute)",
                self.destination.target.url(),
                log::rfc3339(sample.time_ms.max(0) as u64),
                self.stats.samples_failed.load(Ordering::Relaxed)
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(seq: u64) -> Pending {
        Pending {
            seq,
            key: (1, 1),
            time_ms: 0,
            value: 0.0,
        }
    }

    #[test]
    fn requests_hold_whole_reports_and_at_most_the_limit() {
        // Reports of 3, 3, 2 and 4 samples.
        let samples: Vec<Pending> = [1, 1, 1, 2, 2, 2, 3, 3, 4, 4, 4, 4]
            .into_iter()
            .map(pending)
            .collect();
        assert_eq!(requests(&samples, 6), vec![(0, 6), (6, 12)]);
        assert_eq!(requests(&samples, 5), vec![(0, 3), (3, 8), (8, 12)]);
        // A report larger than the limit goes alone.
        assert_eq!(requests(&samples, 2), vec![(0, 3), (3, 6), (6, 8), (8, 12)]);
        assert_eq!(requests(&[], 10), Vec::<(usize, usize)>::new());
    }

    #[test]
    fn refused_samples_split_and_outages_are_retried() {
        let status = |status| PostError::Status {
            service: "x",
            status,
            message: String::new(),
        };
        assert_eq!(verdict(&status(400)), Verdict::Split);
        assert_eq!(verdict(&status(413)), Verdict::Split);
        for retried in [401, 403, 404, 429, 500, 503] {
            assert_eq!(verdict(&status(retried)), Verdict::Retry, "{retried}");
        }
        let down = PostError::Connect {
            service: "x",
            address: "127.0.0.1:1".into(),
            reason: "refused".into(),
        };
        assert_eq!(verdict(&down), Verdict::Retry);
    }
}
