//! The background task of one destination: it reads what the store holds after its cursor,
//! has it grouped and encoded, sends the requests on [`SHARDS`] kept-alive connections with
//! back-off while the receiver fails, splits what the receiver refuses, and records the cursor
//! once a read was sent whole.

use super::grouping::{Encoded, Grouping, Part, halves, samples_in};
use super::{BACKOFF_MAX, BACKOFF_MIN, Destination, READ_ROWS, RECEIVER, SEND_EVERY, SHARDS};
use super::{Verdict, WriteStats, verdict};
use crate::log::{self, Level};
use crate::server::alertmanager::target::{Link, PostError};
use crate::store::Store;
use bytes::Bytes;
use hyper::header;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    failing: AtomicBool,
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
pub(super) struct Worker {
    shared: Arc<Shared>,
    store: Arc<Store>,
    grouping: Grouping,
    /// One kept-alive connection per shard.
    links: Vec<Option<Link>>,
}

impl Worker {
    /// A destination's task, not started yet: it stops when `stopped` is closed.
    pub(super) fn new(
        destination: Destination,
        stats: Arc<WriteStats>,
        stopped: smol::channel::Receiver<()>,
        store: Arc<Store>,
    ) -> Worker {
        Worker {
            shared: Arc::new(Shared {
                destination,
                stats,
                stopped,
                failing: AtomicBool::new(false),
                refused_logged_ms: AtomicU64::new(0),
            }),
            store,
            grouping: Grouping::default(),
            links: (0..SHARDS).map(|_| None).collect(),
        }
    }

    pub(super) async fn run(mut self, mut cursor: u64) {
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
