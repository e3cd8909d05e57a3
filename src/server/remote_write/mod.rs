//! Remote write (`nms server --remote-write URL`, repeatable): every stored metrics report, as
//! Prometheus remote-write 1.0 samples, to Prometheus, Mimir, Thanos, Cortex, VictoriaMetrics
//! or anything else that takes the protocol. docs/REMOTE_WRITE.md is the full description.
//!
//! - **The same series as `/metrics`.** A report's fields become samples of the families and
//!   labels `/metrics` exports ([`super::prometheus::reading_labels`]), at the report's own
//!   time, in the family's base unit. Rates are left out, as in `/metrics`.
//! - **A durable cursor per destination.** The store numbers every report it accepts
//!   ([`crate::store::sequence`]); a destination reads them in that order, from the head or
//!   from the chunks wherever their times are, and once the receiver accepted every request
//!   of a read the store records how far it got (a catalogue fact, one synced commit). After
//!   an outage of the receiver or a restart of nms, sending resumes after the last read sent
//!   whole: nothing is sent twice (a crash can repeat the requests of one read, which
//!   receivers take as duplicates of equal samples) and nothing is skipped while raw
//!   retention keeps it.
//! - **Batching and back-off.** A destination reads what is stored every [`SEND_EVERY`]
//!   (sooner while behind), groups the samples by series, and sends them in requests of at
//!   most [`DEFAULT_MAX_SAMPLES_PER_SEND`] samples, [`SHARDS`] at once on kept-alive
//!   connections. A failure the receiver may get over (no connection, 5xx, 429, 401/403/404 until an
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
/// Reports read from the store at once (ten seconds of 10,000 agents reporting every second):
/// their samples are grouped by series, so that a series' labels travel once for several of
/// its samples.
const READ_ROWS: usize = 100_000;
/// How often a destination that has sent everything looks for more (Prometheus'
/// `batch_send_deadline`): what waits longer than this is sent.
pub const SEND_EVERY: Duration = Duration::from_secs(5);
/// Requests in flight at once per destination, each on its own connection.
pub const SHARDS: usize = 4;
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
        PostError::Status {
            status: 400 | 413 | 422,
            ..
        } => Verdict::Split,
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
            shared: Arc::new(Shared {
                destination: destination.clone(),
                stats: stats.clone(),
                stopped,
                failing: std::sync::atomic::AtomicBool::new(false),
                refused_logged_ms: AtomicU64::new(0),
            }),
            store,
            grouping: Grouping::default(),
            links: (0..SHARDS).map(|_| None).collect(),
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

/// (series, column) ids of one store run, hashed as the store hashes its ids.
type IdMap<V> = HashMap<(u32, u32), V, crate::store::IdHash>;

/// What a (series, column) becomes: its encoded labels, and how a stored integer becomes a
/// value in the family's base unit.
struct Exported {
    labels: SeriesLabels,
    field: &'static crate::schema::FieldDef,
}

/// One (series, column): what it is exported as (`None`: it is not), and its samples of the
/// read being sent, in time order.
struct Slot {
    exported: Option<Exported>,
    points: Vec<(i64, f64)>,
}

/// One request: ranges of the samples of series, (series, column, start, end).
type Part = Vec<((u32, u32), usize, usize)>;

/// The samples of one read, grouped by series. Kept from read to read (each series' labels
/// are encoded once, and its buffer is reused), so grouping costs one lookup per sample.
#[derive(Default)]
struct Grouping {
    slots: IdMap<Slot>,
    /// The series with samples in this read, in the order they were first met.
    order: Vec<(u32, u32)>,
}

impl Grouping {
    /// Groups the samples of `rows` (the previous read's are dropped).
    fn fill(&mut self, rows: &[Sequenced], store: &Store) {
        for key in self.order.drain(..) {
            if let Some(slot) = self.slots.get_mut(&key) {
                slot.points.clear();
            }
        }
        for row in rows {
            let time = row.time_ms.min(i64::MAX as u64) as i64;
            for (column, stored) in &row.values {
                let key = (row.series, *column);
                let slot = self.slots.entry(key).or_insert_with(|| Slot {
                    exported: exported(store, row.series, *column),
                    points: Vec::new(),
                });
                let Some(e) = &slot.exported else {
                    continue;
                };
                if slot.points.is_empty() {
                    self.order.push(key);
                }
                slot.points
                    .push((time, e.field.value(*stored) / e.field.prometheus_divisor));
            }
        }
        for key in &self.order {
            if let Some(slot) = self.slots.get_mut(key)
                && !slot.points.is_sorted_by_key(|(t, _)| *t)
            {
                slot.points.sort_by_key(|(t, _)| *t);
            }
        }
    }

    /// The read cut into requests of at most `max` samples.
    fn parts(&self, max: usize) -> Vec<Part> {
        let max = max.max(1);
        let mut parts = Vec::new();
        let mut part: Part = Vec::new();
        let mut in_part = 0;
        for key in &self.order {
            let n = self.slots.get(key).map_or(0, |s| s.points.len());
            let mut start = 0;
            while start < n {
                let end = (start + max).min(n);
                if in_part + (end - start) > max && !part.is_empty() {
                    parts.push(std::mem::take(&mut part));
                    in_part = 0;
                }
                in_part += end - start;
                part.push((*key, start, end));
                start = end;
            }
        }
        if !part.is_empty() {
            parts.push(part);
        }
        parts
    }

    /// The read cut into requests of at most `max` samples, each encoded.
    fn encode(&self, max: usize) -> Encoded {
        let parts = self.parts(max);
        let bodies = parts
            .iter()
            .enumerate()
            .map(|(i, part)| {
                let (body, count) = self.body(part);
                (i, body, count)
            })
            .collect();
        Encoded { parts, bodies }
    }

    /// The body of a request, and how many samples it carries.
    fn body(&self, part: &Part) -> (Bytes, usize) {
        let mut builder = RequestBuilder::default();
        for (key, start, end) in part {
            if let Some(Slot {
                exported: Some(e),
                points,
            }) = self.slots.get(key)
            {
                builder.series(&e.labels, &points[*start..*end]);
            }
        }
        let n = builder.samples();
        (Bytes::from(builder.finish()), n)
    }
}

/// A read cut into requests: the parts (kept to split a refused one) and their bodies, each
/// with its part's index and how many samples it carries.
struct Encoded {
    parts: Vec<Part>,
    bodies: Vec<(usize, Bytes, usize)>,
}

/// What a (series, column) of the store is exported as.
fn exported(store: &Store, series: u32, column: u32) -> Option<Exported> {
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
    Some(Exported {
        labels: SeriesLabels::new(&labels),
        field: def,
    })
}

/// A part cut in two: its series in halves, or the samples of its one series.
fn halves(mut part: Part) -> (Part, Part) {
    if part.len() > 1 {
        let second = part.split_off(part.len() / 2);
        return (part, second);
    }
    let Some((key, start, end)) = part.pop() else {
        return (Vec::new(), Vec::new());
    };
    let middle = start + (end - start) / 2;
    (vec![(key, start, middle)], vec![(key, middle, end)])
}

fn samples_in(part: &Part) -> usize {
    part.iter().map(|(_, start, end)| end - start).sum()
}

/// Sending was asked to stop.
struct Stopped;

/// What became of a request.
enum Sent {
    Accepted,
    /// The receiver refused (some of) its samples: the request is to be split.
    Refused(PostError),
}

/// What the connections (shards) of one destination share.
struct Shared {
    destination: Destination,
    stats: Arc<WriteStats>,
    stopped: smol::channel::Receiver<()>,
    /// In a failing episode (logged once), and when a refusal was last logged.
    failing: std::sync::atomic::AtomicBool,
    refused_logged_ms: AtomicU64,
}

impl Shared {
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

    fn fail(&self, why: &str) {
        self.stats.set_last_error(Some(why.to_string()));
        if !self.failing.swap(true, Ordering::SeqCst) {
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

    fn recovered(&self) {
        if self.failing.swap(false, Ordering::SeqCst) {
            self.stats.set_last_error(None);
            log::event(
                Level::Good,
                "REMOTEWR",
                format_args!("{}: accepts samples again", self.destination.target.url()),
            );
        }
    }

    /// A sample the receiver refused on its own: dropped, counted, logged at most once a minute.
    fn dropped_refused(&self, e: &PostError) {
        self.stats.samples_failed.fetch_add(1, Ordering::Relaxed);
        let now = log::now_ms();
        let last = self.refused_logged_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) < 60_000 {
            return;
        }
        self.refused_logged_ms.store(now, Ordering::Relaxed);
        log::event(
            Level::Warn,
            "REMOTEWR",
            format_args!(
                "{}: a sample was refused and dropped: {e} ({} dropped so far; logged at most once a minute)",
                self.destination.target.url(),
                self.stats.samples_failed.load(Ordering::Relaxed)
            ),
        );
    }

    /// Posts one body on `link`, again and again while the receiver may get over its failure.
    async fn deliver(
        &self,
        link: &mut Option<Link>,
        body: Bytes,
        count: usize,
    ) -> Result<Sent, Stopped> {
        let mut backoff = BACKOFF_MIN;
        loop {
            match self.post(link, body.clone()).await {
                Ok(()) => {
                    self.stats
                        .samples_sent
                        .fetch_add(count as u64, Ordering::Relaxed);
                    self.recovered();
                    return Ok(Sent::Accepted);
                }
                Err(e) if verdict(&e) == Verdict::Split => return Ok(Sent::Refused(e)),
                Err(e) => {
                    self.stats.requests_failed.fetch_add(1, Ordering::Relaxed);
                    self.fail(&e.to_string());
                    *link = None;
                    self.pause(backoff).await?;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    async fn post(&self, link: &mut Option<Link>, body: Bytes) -> Result<(), PostError> {
        let target = &self.destination.target;
        if !link.as_ref().is_some_and(Link::is_open) {
            *link = Some(target.connect().await?);
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
        let Some(open) = link.as_mut() else {
            return Err(PostError::Http {
                reason: "no connection".into(),
            });
        };
        let result = open.send(RECEIVER, request).await;
        if result.is_err() {
            *link = None;
        }
        result
    }
}

/// The background task of one destination.
struct Worker {
    shared: Arc<Shared>,
    store: Arc<Store>,
    grouping: Grouping,
    /// One kept-alive connection per shard.
    links: Vec<Option<Link>>,
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
                    self.shared.fail(&format!("cannot read the store: {e}"));
                    if self.shared.pause(BACKOFF_MAX).await.is_err() {
                        return;
                    }
                    continue;
                }
            };
            let full = batch.rows.len() >= READ_ROWS;
            if let Some(first) = batch.rows.first() {
                self.shared
                    .stats
                    .first_unsent_ms
                    .store(first.time_ms, Ordering::Relaxed);
            }
            if batch.through > cursor {
                // Grouping and encoding (protobuf, snappy) of a full read take a few hundred
                // ms of CPU: done on a blocking thread, not on the executor that also runs the
                // event loop, so that acknowledgements are not held up behind them.
                let mut grouping = std::mem::take(&mut self.grouping);
                let store = self.store.clone();
                let max = self.shared.destination.max_samples_per_send;
                let (grouping, encoded) = smol::unblock(move || {
                    grouping.fill(&batch.rows, &store);
                    drop(batch.rows);
                    let encoded = grouping.encode(max);
                    (grouping, encoded)
                })
                .await;
                self.grouping = grouping;
                if self.send(encoded).await.is_err() {
                    return;
                }
                match self.record(batch.through).await {
                    Ok(()) => cursor = batch.through,
                    Err(Stopped) => return,
                }
            }
            if !full {
                let wait = SEND_EVERY.saturating_sub(began.elapsed());
                if self.shared.pause(wait).await.is_err() {
                    return;
                }
            } else if self.shared.stopped.is_closed() {
                return;
            }
        }
    }

    /// Sends the grouped read, up to [`SHARDS`] requests at once, each shard on its own
    /// connection; then splits what the receiver refused until the refused samples stand
    /// alone (dropped, counted).
    async fn send(&mut self, encoded: Encoded) -> Result<(), Stopped> {
        let Encoded { parts, bodies } = encoded;
        let queue = Arc::new(Mutex::new(bodies));
        let mut shards = Vec::new();
        for link in &mut self.links {
            let mut link = link.take();
            let queue = queue.clone();
            let shared = self.shared.clone();
            shards.push(smol::spawn(async move {
                let mut refused = Vec::new();
                loop {
                    let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop();
                    let Some((i, body, count)) = next else {
                        return (link, Ok(refused));
                    };
                    match shared.deliver(&mut link, body, count).await {
                        Ok(Sent::Accepted) => {}
                        Ok(Sent::Refused(e)) => refused.push((i, e)),
                        Err(stopped) => return (link, Err(stopped)),
                    }
                }
            }));
        }
        let mut refused = Vec::new();
        let mut stopped = false;
        for (n, shard) in shards.into_iter().enumerate() {
            let (link, outcome) = shard.await;
            self.links[n] = link;
            match outcome {
                Ok(r) => refused.extend(r),
                Err(Stopped) => stopped = true,
            }
        }
        if stopped {
            return Err(Stopped);
        }
        let mut todo: Vec<Part> = Vec::new();
        for (i, e) in refused {
            if samples_in(&parts[i]) <= 1 {
                self.shared.dropped_refused(&e);
            } else {
                todo.push(parts[i].clone());
            }
        }
        let mut link = self.links[0].take();
        let outcome = async {
            while let Some(part) = todo.pop() {
                for half in <[Part; 2]>::from(halves(part)) {
                    let (body, count) = self.grouping.body(&half);
                    if count == 0 {
                        continue;
                    }
                    match self.shared.deliver(&mut link, body, count).await? {
                        Sent::Accepted => {}
                        Sent::Refused(e) => {
                            if count == 1 {
                                self.shared.dropped_refused(&e);
                            } else {
                                todo.push(half);
                            }
                        }
                    }
                }
            }
            Ok(())
        }
        .await;
        self.links[0] = link;
        outcome
    }

    /// Records the cursor durably (retried until the store takes it).
    async fn record(&mut self, cursor: u64) -> Result<(), Stopped> {
        let name = self.shared.destination.cursor_name();
        loop {
            let store = self.store.clone();
            let n = name.clone();
            match smol::unblock(move || store.set_cursor(&n, cursor)).await {
                Ok(()) => {
                    self.shared.stats.cursor.store(cursor, Ordering::Relaxed);
                    return Ok(());
                }
                Err(e) => {
                    self.shared
                        .fail(&format!("cannot record how far it got: {e}"));
                    self.shared.pause(BACKOFF_MAX).await?;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
