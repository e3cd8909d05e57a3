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

mod grouping;
pub mod proto;
mod sender;

use super::alertmanager::target::{Auth, PostError, Service, Target, TargetError};
use crate::log::{self, Level};
use crate::store::{Store, StoreError};
use sender::Worker;
use serde::Serialize;
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
pub(super) const READ_ROWS: usize = 100_000;
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
        let worker = Worker::new(destination.clone(), stats.clone(), stopped, store);
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

#[cfg(test)]
mod tests;
