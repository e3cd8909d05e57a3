//! Forwarding to one Alertmanager: the [`Forwarder`] handle the server keeps, which hands
//! changes to a background task without waiting, and that task, which posts what its
//! [`Outbox`] says in batches, retries failed posts with exponential backoff, and keeps the
//! counters `/api/status` and `/metrics` show.

use super::{
    ALERTS_PATH, BACKOFF_MAX, BACKOFF_MIN, Event, Outbox, PostableAlert, QUEUE_CAPACITY, Target,
    TargetError, check_target,
};
use crate::log::{self, Level};
use async_io::Timer;
use futures_lite::future;
use serde::Serialize;
use smol::channel::{Receiver, Sender, TrySendError};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

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
                if self.wait_for_change(&queue, now).await.is_err() {
                    return;
                }
                continue;
            }
            let batch = self.outbox.take_batch();
            let body = serde_json::to_vec(&batch).unwrap_or_default();
            match self.target.post(ALERTS_PATH, body.into()).await {
                Ok(()) => {
                    self.delivered(batch.len(), failing);
                    failing = false;
                    backoff = BACKOFF_MIN;
                }
                Err(e) => {
                    self.stats.failed_requests.fetch_add(1, Ordering::Relaxed);
                    let text = e.to_string();
                    self.stats.set_last_error(Some(text.clone()));
                    if e.retryable() {
                        self.retry_later(batch, &text, backoff);
                        failing = true;
                        if sit_out(backoff, &queue).await.is_err() {
                            return;
                        }
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                    } else {
                        self.refused(batch.len(), &text);
                    }
                }
            }
            self.publish();
        }
    }

    /// Waits for the next change, or until the outbox has something to do by itself; `Err`
    /// when the server is stopping.
    async fn wait_for_change(&mut self, queue: &Receiver<Event>, now: u64) -> Result<(), Stopping> {
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
            Some(Err(_)) => return Err(Stopping),
            None => {}
        }
        Ok(())
    }

    /// Alertmanager took a batch of `count` alerts (after failing, if `failing`).
    fn delivered(&mut self, count: usize, failing: bool) {
        self.stats.sent.fetch_add(count as u64, Ordering::Relaxed);
        self.stats.set_last_error(None);
        if failing {
            log::event(
                Level::Good,
                "ALERTMGR",
                format_args!("{} accepts alerts again", self.target.url()),
            );
        }
    }

    /// A post failed in a way a later try may get over: the batch goes back to the outbox,
    /// to be posted again after `backoff`.
    fn retry_later(&mut self, batch: Vec<PostableAlert>, text: &str, backoff: Duration) {
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
    }

    /// Alertmanager refused a batch of `count` alerts for good: they are dropped (counted).
    fn refused(&mut self, count: usize, text: &str) {
        log::event(
            Level::Bad,
            "ALERTMGR",
            format_args!(
                "{}: {count} alert(s) refused, not retried: {text}",
                self.target.url(),
            ),
        );
        self.stats
            .dropped
            .fetch_add(count as u64, Ordering::Relaxed);
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

/// The server is stopping: the forwarder's task ends.
struct Stopping;

/// Waits `backoff`, or less when the server is stopping (then `Err`): stopping does not sit
/// out the backoff.
async fn sit_out(backoff: Duration, queue: &Receiver<Event>) -> Result<(), Stopping> {
    let stopping = future::or(
        async {
            Timer::after(backoff).await;
            false
        },
        async {
            while !queue.is_closed() {
                Timer::after(Duration::from_millis(100)).await;
            }
            true
        },
    )
    .await;
    if stopping { Err(Stopping) } else { Ok(()) }
}
