//! The server's embedded time-series store: metrics reports and alerts, in the data directory,
//! no setup. docs/STORE.md documents its files as PROTOCOL.md documents the wire.
//!
//! - An accepted report is appended to the write-ahead log ([`wal`]) and synced before
//!   [`Store::append`] returns; only then may it be acknowledged. It then sits in the *head*, in
//!   memory, until maintenance moves it into a compressed raw chunk ([`chunk`]) in a SQLite
//!   partition file per day ([`partition`]).
//! - When an hour has passed, maintenance *seals* it per series: one raw chunk for the hour, a
//!   block of per-minute rollups and the hour's row of the per-hour rollups ([`rollup`]).
//! - Retention deletes whole partition files per tier; an optional size cap deletes the oldest.
//! - Queries ([`query`]) read the head and the partition files: raw reports by time range, or
//!   steps served from the coarsest tier that has the resolution.
//!
//! Each report is stored once per (agent, task, target, time) however late or often it
//! arrives. Start time and memory do not grow with the history kept: the head is bounded, and
//! only the log written since the last move into the partitions is read at start.
//!
//! The handle is [`Store`]: it is opened (lock, log recovery, replay) in `open.rs`, reports are
//! appended in `append.rs`, and its other calls are in `handle.rs`; what it is run with is in
//! `options.rs`, what it takes and answers in `report.rs`, its errors in `error.rs`.

pub mod alerts;
mod append;
pub mod check;
pub mod chunk;
mod error;
mod handle;
mod head;
pub mod import;
mod maintain;
mod open;
mod options;
pub mod partition;
pub mod query;
mod report;
pub mod rollup;
pub mod sequence;
pub mod wal;

pub use alerts::{AlertQuery, AlertRecord};
pub use error::StoreError;
pub use head::{HeadStats, IdHash};
pub use options::{Clock, Retention, StoreOptions};
pub use query::{MetricRecord, RawPage, RawQuery, StepQuery, StepSeries};
pub use report::{Refusal, Report, StoreStats, Stored};
pub use sequence::{Sequenced, SequencedBatch};
pub use wal::SeriesKey;

use head::Head;
use partition::{Catalog, Pool};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, MutexGuard};
use wal::Wal;

/// The store.
pub struct Store {
    inner: Arc<Inner>,
    maintenance: Option<std::thread::JoinHandle<()>>,
    /// Held (locked) while the store is open: one process at a time.
    _lock: std::fs::File,
}

struct Inner {
    root: PathBuf,
    /// The server's data directory (where an older store's JSON logs are found).
    data_dir: PathBuf,
    options: StoreOptions,
    head: Mutex<Head>,
    wal: Mutex<Wal>,
    /// Connections of the writer (duplicate checks), of maintenance, of queries, of alerts.
    ingest_pool: Mutex<Pool>,
    maintain_pool: Mutex<Pool>,
    query_pool: Mutex<Pool>,
    alert_pool: Mutex<Pool>,
    /// Of readers in sequence order (remote write), so that they never wait for a query.
    sequence_pool: Mutex<Pool>,
    /// Every report numbered below this is in the head or in a chunk (or was never stored):
    /// readers in sequence order read up to it.
    committed_seq: AtomicU64,
    /// When (store clock) recent batches were committed: (first sequence number, time).
    commit_times: Mutex<std::collections::VecDeque<(u64, u64)>>,
    catalog: Mutex<Catalog>,
    stats: Mutex<StoreStats>,
    stop: AtomicBool,
    wake: (Mutex<bool>, std::sync::Condvar),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    fn now(&self) -> u64 {
        (self.options.clock)()
    }

    fn wake(&self) {
        let (flag, condvar) = &self.wake;
        *lock(flag) = true;
        condvar.notify_all();
    }

    fn stats(&self) -> MutexGuard<'_, StoreStats> {
        lock(&self.stats)
    }

    /// Notes a failed write: the first failure of an episode is logged.
    fn write_failed(&self, what: &str, e: &StoreError) {
        let mut stats = self.stats();
        if stats.failing.is_none() {
            stats.write_failure_episodes += 1;
            crate::log::event(
                crate::log::Level::Bad,
                "STORE",
                format_args!(
                    "cannot store {what}: {e}; nothing of it is acknowledged, agents keep it and send it again (logged once until writes succeed)"
                ),
            );
        }
        stats.failing = Some(e.to_string());
    }

    /// Notes a successful write: a failing episode ends.
    fn write_succeeded(&self) {
        let mut stats = self.stats();
        if let Some(e) = stats.failing.take() {
            crate::log::event(
                crate::log::Level::Good,
                "STORE",
                format_args!("writes succeed again (the failure was: {e})"),
            );
        }
    }
}
