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

pub mod alerts;
pub mod check;
pub mod chunk;
mod head;
pub mod import;
mod maintain;
pub mod partition;
pub mod query;
pub mod rollup;
pub mod sequence;
pub mod wal;

pub use alerts::{AlertQuery, AlertRecord};
pub use head::{HeadStats, IdHash};
pub use query::{MetricRecord, RawPage, RawQuery, StepQuery, StepSeries};
pub use sequence::{Sequenced, SequencedBatch};

use crate::schema::{Field, Reading};
use head::Head;
use partition::{Catalog, Pool};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
pub use wal::SeriesKey;
use wal::Wal;

const DAY: Duration = Duration::from_secs(86_400);

/// How long each tier keeps what it holds, and an optional cap on the store's size.
#[derive(Debug, Clone, PartialEq)]
pub struct Retention {
    pub raw: Duration,
    pub minute: Duration,
    pub hour: Duration,
    pub alerts: Duration,
    /// Past this many bytes the oldest partitions are deleted, raw reports first.
    pub max_bytes: Option<u64>,
}

impl Default for Retention {
    /// Prometheus' 15 days of raw reports, 90 days of minutes, two years of hours (as
    /// Zabbix keeps trends), a year of alerts.
    fn default() -> Self {
        Retention {
            raw: 15 * DAY,
            minute: 90 * DAY,
            hour: 730 * DAY,
            alerts: 365 * DAY,
            max_bytes: None,
        }
    }
}

/// How a store is run.
#[derive(Clone)]
pub struct StoreOptions {
    pub retention: Retention,
    /// Reports kept in memory before the largest buffers are moved into chunks early.
    pub head_max_reports: usize,
    /// Run maintenance (moving, sealing, retention, importing) on a thread of its own; tests
    /// turn it off and call [`Store::maintain`] with a virtual clock.
    pub background: bool,
    /// How far ahead of the server's clock a report's time may be.
    pub max_future: Duration,
    /// What "now" is for maintenance and queries (the server's clock; tests pass a virtual
    /// one).
    pub clock: Clock,
    /// Maintenance syncs every commit; off only for a bulk load (`nms bench --store`) that is
    /// simply made again after a crash.
    pub durable: bool,
}

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreOptions")
            .field("retention", &self.retention)
            .field("head_max_reports", &self.head_max_reports)
            .field("background", &self.background)
            .field("max_future", &self.max_future)
            .finish()
    }
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            retention: Retention::default(),
            head_max_reports: 500_000,
            background: true,
            max_future: DAY,
            clock: Arc::new(crate::log::now_ms),
            durable: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create data directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Database {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("{path}: damaged chunk of series {series} at {first_ms}: {source}")]
    Damaged {
        path: PathBuf,
        series: u32,
        first_ms: u64,
        source: chunk::ChunkError,
    },
    #[error(
        "the store holds {0} reports in memory that it cannot move to disk; new reports are refused until it can"
    )]
    HeadFull(usize),
    #[error("the store is closed")]
    Closed,
    #[error("{0} is in use by another process (a running server?)")]
    Locked(PathBuf),
}

impl StoreError {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
        move |source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    fn db(path: &Path) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Database {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// One metrics report to store: who, what, when, and its typed readings.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub agent: String,
    pub task: String,
    /// What the report measured towards (ping destination or iperf server), when known.
    pub target: Option<String>,
    pub time_ms: u64,
    pub readings: Vec<Reading>,
}

impl Report {
    /// The API form: the report's fields at the top level by their schema names, an iperf
    /// test's `transport`, and per interface its fields under `interfaces`.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::{Map, Value, json};
        let mut obj = Map::new();
        obj.insert("agent".into(), json!(self.agent));
        obj.insert("task".into(), json!(self.task));
        obj.insert("time".into(), json!(crate::log::rfc3339(self.time_ms)));
        obj.insert("time_ms".into(), json!(self.time_ms));
        if let Some(t) = &self.target {
            obj.insert("target".into(), json!(t));
        }
        let mut interfaces: std::collections::BTreeMap<&str, Map<String, Value>> =
            Default::default();
        for r in &self.readings {
            let name = crate::schema::api_name(r.field, r.instance.as_deref()).into_owned();
            match (&r.instance, r.field.per_interface()) {
                (Some(i), true) => {
                    let entry = interfaces.entry(i).or_default();
                    if r.field == Field::LinkState
                        && let Some(state) = crate::wire::LinkState::from_u8(r.value as u8)
                    {
                        entry.insert("state".into(), json!(state.name()));
                    }
                    entry.insert(name, json!(r.value));
                }
                (Some(t), false) => {
                    obj.insert("transport".into(), json!(t));
                    obj.insert(name, json!(r.value));
                }
                (None, _) => {
                    obj.insert(name, json!(r.value));
                }
            }
        }
        if !interfaces.is_empty() {
            obj.insert("interfaces".into(), json!(interfaces));
        }
        Value::Object(obj)
    }

    /// The value of a field (the first reading of it).
    pub fn value(&self, field: Field) -> Option<f64> {
        self.readings
            .iter()
            .find(|r| r.field == field)
            .map(|r| r.value)
    }
}

/// Why a report was refused (it is acknowledged, since sending it again cannot help).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// Dated further ahead of the server's clock than allowed.
    Future,
    /// Dated before what raw retention keeps.
    TooOld,
}

/// What became of a report or alert handed to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    New,
    Duplicate,
    Refused(Refusal),
}

/// Counters a store keeps.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StoreStats {
    pub metrics_stored: u64,
    pub metrics_duplicates: u64,
    pub metrics_refused_future: u64,
    pub metrics_refused_too_old: u64,
    /// Reports that could not be stored (full disk, I/O error) and were not acknowledged.
    pub metrics_unstored: u64,
    pub alerts_stored: u64,
    pub alerts_duplicates: u64,
    pub alerts_unstored: u64,
    /// Episodes of failing writes (each logged once).
    pub write_failure_episodes: u64,
    /// The current episode's error, while writes fail.
    pub failing: Option<String>,
    pub chunks_written: u64,
    pub hours_sealed: u64,
    pub partitions_deleted: u64,
    pub maintenance_failures: u64,
    pub wal_segments_deleted: u64,
    /// Metrics reports imported from an older store's `metrics.jsonl`.
    pub imported_metrics: u64,
    pub imported_alerts: u64,
}

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

/// The store's clock: Unix milliseconds.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

impl Store {
    /// Opens the store of a server's data directory (its files are in `data_dir/store`),
    /// replays the write-ahead log into the head, and starts maintenance.
    pub fn open(data_dir: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        let root = data_dir.join("store");
        std::fs::create_dir_all(&root).map_err(|source| StoreError::CreateDir {
            path: root.clone(),
            source,
        })?;
        let lock_path = root.join("lock");
        let lock_file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(StoreError::io(&lock_path))?;
        if lock_file.try_lock().is_err() {
            return Err(StoreError::Locked(root.clone()));
        }
        let catalog_path = root.join("catalog.sqlite");
        let catalog = Catalog::open(&root).map_err(StoreError::db(&catalog_path))?;
        let mut head = Head::new(options.head_max_reports);
        for (id, agent, task, target) in catalog.series().map_err(StoreError::db(&catalog_path))? {
            head.know_series(
                id,
                SeriesKey {
                    agent,
                    task,
                    target: (!target.is_empty()).then_some(target),
                },
                true,
            );
        }
        let wal_dir = root.join("wal");
        let (mut wal, mut records, recovery) =
            Wal::open(&wal_dir).map_err(StoreError::io(&wal_dir))?;
        // Numbering goes on after every number the store ever gave: those in the log, in the
        // chunks, and the high-water mark written before log segments are deleted.
        let logged = records
            .iter()
            .filter_map(|(_, r)| match r {
                wal::WalRecord::Row(row) => Some(row.seq),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        let noted = catalog
            .fact(sequence::NEXT_SEQ_FACT)
            .map_err(StoreError::db(&catalog_path))?
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(1);
        let chunked = sequence::newest_in_chunks(&root)?;
        wal.set_next_seq(noted.max(logged + 1).max(chunked + 1));
        // Rows of a log written before sequence numbers get theirs now.
        for (_, record) in &mut records {
            if let wal::WalRecord::Row(row) = record
                && row.seq == 0
            {
                wal.number(std::slice::from_mut(row));
            }
        }
        let committed = wal.next_seq();
        if recovery.truncated_bytes > 0 {
            crate::log::event(
                crate::log::Level::Warn,
                "STORE",
                format_args!(
                    "{}: cut {} bytes of an unfinished write (never acknowledged)",
                    wal_dir.display(),
                    recovery.truncated_bytes
                ),
            );
        }
        for d in &recovery.damaged {
            crate::log::event(crate::log::Level::Bad, "STORE", format_args!("{d}"));
        }
        let inner = Arc::new(Inner {
            root: root.clone(),
            data_dir: data_dir.to_path_buf(),
            options: options.clone(),
            head: Mutex::new(head),
            wal: Mutex::new(wal),
            ingest_pool: Mutex::new(Pool::new(&root, true)),
            maintain_pool: Mutex::new(Pool::new(&root, options.durable)),
            query_pool: Mutex::new(Pool::new(&root, true)),
            alert_pool: Mutex::new(Pool::new(&root, true)),
            sequence_pool: Mutex::new(Pool::new(&root, true)),
            committed_seq: AtomicU64::new(committed),
            commit_times: Mutex::new(std::collections::VecDeque::new()),
            catalog: Mutex::new(catalog),
            stats: Mutex::new(StoreStats::default()),
            stop: AtomicBool::new(false),
            wake: (Mutex::new(false), std::sync::Condvar::new()),
        });
        let replayed = inner.replay(records)?;
        if replayed > 0 {
            crate::log::event(
                crate::log::Level::Info,
                "STORE",
                format_args!(
                    "{replayed} report(s) recovered from the write-ahead log ({} segment(s))",
                    recovery.segments
                ),
            );
        }
        inner.find_unsealed()?;
        let maintenance = if options.background {
            let inner = inner.clone();
            Some(
                std::thread::Builder::new()
                    .name("nms-store".into())
                    .spawn(move || maintain::run(&inner))
                    .map_err(StoreError::io(&root))?,
            )
        } else {
            None
        };
        Ok(Store {
            inner,
            maintenance,
            _lock: lock_file,
        })
    }

    /// Where the store's files are.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    pub fn options(&self) -> &StoreOptions {
        &self.inner.options
    }

    /// Stores a batch of reports durably (one write and one sync for the batch); returns, per
    /// report, what became of it. An error means none of the batch was kept: acknowledge
    /// nothing, the agents send them again. Reports already stored are duplicates, and the
    /// times the store cannot keep are refused with a reason.
    pub fn append(&self, reports: &[Report], now_ms: u64) -> Result<Vec<Stored>, StoreError> {
        self.inner.append(reports, now_ms)
    }

    /// One maintenance pass at `now_ms`: moves old head buffers into chunks, seals hours that
    /// have passed, applies retention. The background thread calls it; tests call it with
    /// their own clock.
    pub fn maintain(&self, now_ms: u64) -> Result<(), StoreError> {
        maintain::pass(&self.inner, now_ms)
    }

    /// Writes reports straight into sealed hours (chunks and rollups), past the log and the
    /// head: for generating a large store quickly. Nothing else may write meanwhile; reports
    /// already stored are kept once.
    pub fn bulk_load(&self, reports: &[Report]) -> Result<(), StoreError> {
        maintain::bulk_load(&self.inner, reports)
    }

    /// Imports an older store's `metrics.jsonl` and `alerts.jsonl` if they are still there
    /// (the background thread does it once at start).
    pub fn import_legacy(&self, now_ms: u64) -> Result<(), StoreError> {
        import::run(&self.inner, now_ms)
    }

    pub fn stats(&self) -> StoreStats {
        lock(&self.inner.stats).clone()
    }

    pub fn head_stats(&self) -> HeadStats {
        lock(&self.inner.head).stats()
    }

    /// Bytes on disk per tier (and the log), for the status.
    pub fn disk_usage(&self) -> Vec<(&'static str, u64)> {
        self.inner.disk_usage()
    }

    /// Raw reports by time range.
    pub fn metrics(&self, q: &RawQuery) -> Result<RawPage, StoreError> {
        query::raw(&self.inner, q)
    }

    /// Statistics per step.
    pub fn steps(&self, q: &StepQuery) -> Result<Vec<StepSeries>, StoreError> {
        query::steps(&self.inner, q)
    }

    /// Every stored report's series and time, each copy counted (nothing merged away): what a
    /// check for lost or doubled reports needs.
    pub fn scan_times(&self) -> Result<Vec<(SeriesKey, u64)>, StoreError> {
        query::scan_times(&self.inner)
    }

    /// The highest sequence number of a committed report (0: none yet): every report numbered
    /// up to it can be read with [`Store::read_sequenced`].
    pub fn committed_seq(&self) -> u64 {
        self.inner
            .committed_seq
            .load(Ordering::SeqCst)
            .saturating_sub(1)
    }

    /// The reports numbered after `after`, ascending, at most `max_rows` of them, and the
    /// number the reader has then seen everything up to (see [`sequence`]).
    pub fn read_sequenced(
        &self,
        after: u64,
        max_rows: usize,
    ) -> Result<SequencedBatch, StoreError> {
        sequence::read(&self.inner, after, max_rows)
    }

    /// When the report numbered `seq` was committed (store clock), if it was in this run.
    pub fn committed_at(&self, seq: u64) -> Option<u64> {
        sequence::committed_at(&self.inner, seq)
    }

    /// The name of a series id of [`Sequenced`].
    pub fn series_key(&self, id: u32) -> Option<SeriesKey> {
        lock(&self.inner.head).series_key(id).cloned()
    }

    /// The column of a column id of [`Sequenced`] (ids hold for the store's run).
    pub fn column(&self, id: u32) -> Option<chunk::Column> {
        lock(&self.inner.head).column(id).cloned()
    }

    /// A reader's durable position in sequence order (`None`: never set).
    pub fn cursor(&self, name: &str) -> Result<Option<u64>, StoreError> {
        sequence::cursor(&self.inner, name)
    }

    /// Records a reader's position durably.
    pub fn set_cursor(&self, name: &str, seq: u64) -> Result<(), StoreError> {
        sequence::set_cursor(&self.inner, name, seq)
    }

    /// The newest report of each series, for the Prometheus exposition.
    pub fn latest(&self) -> Vec<MetricRecord> {
        lock(&self.inner.head).latest()
    }

    /// Stores alerts durably, once per alert id (a resolution marks the alert it resolves).
    pub fn store_alerts(&self, records: Vec<AlertRecord>) -> Result<Vec<Stored>, StoreError> {
        alerts::store(&self.inner, records)
    }

    pub fn alerts(&self, q: &AlertQuery) -> Result<Vec<AlertRecord>, StoreError> {
        alerts::query(&self.inner, q)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        self.inner.wake();
        if let Some(t) = self.maintenance.take() {
            let _ = t.join();
        }
    }
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

    fn append(&self, reports: &[Report], now_ms: u64) -> Result<Vec<Stored>, StoreError> {
        self.append_with(reports, now_ms, false)
    }

    /// [`Inner::append`]; `importing` keeps reports older than raw retention (their rollups
    /// outlive the raw tier).
    fn append_with(
        &self,
        reports: &[Report],
        now_ms: u64,
        importing: bool,
    ) -> Result<Vec<Stored>, StoreError> {
        // One writer at a time, from the duplicate check to the head: what is checked against
        // is what is in the head when the batch lands.
        let mut wal = lock(&self.wal);
        let oldest = if importing {
            0
        } else {
            now_ms.saturating_sub(self.options.retention.raw.as_millis() as u64)
        };
        let newest = now_ms.saturating_add(self.options.max_future.as_millis() as u64);
        let mut outcomes = Vec::with_capacity(reports.len());
        let mut rows = Vec::with_capacity(reports.len());
        {
            let mut head = lock(&self.head);
            if head.over_hard_limit() {
                let e = StoreError::HeadFull(head.rows());
                drop(head);
                self.stats().metrics_unstored += reports.len() as u64;
                self.write_failed("metrics reports", &e);
                return Err(e);
            }
            let mut batch_seen = std::collections::HashSet::new();
            for report in reports {
                if report.time_ms > newest {
                    outcomes.push(Stored::Refused(Refusal::Future));
                    continue;
                }
                if report.time_ms < oldest {
                    outcomes.push(Stored::Refused(Refusal::TooOld));
                    continue;
                }
                let series = head.series_id(&report.agent, &report.task, report.target.as_deref());
                let duplicate = !batch_seen.insert((series, report.time_ms))
                    || self.stored_before(&mut head, series, report.time_ms)?;
                if duplicate {
                    outcomes.push(Stored::Duplicate);
                    continue;
                }
                let values = report
                    .readings
                    .iter()
                    .filter_map(|r| {
                        let stored = Field::def(r.field).quantize(r.value)?;
                        Some((head.column_of(r.field, r.instance.as_deref()), stored))
                    })
                    .collect();
                rows.push(wal::WalRow {
                    series,
                    time_ms: report.time_ms,
                    values,
                    seq: 0,
                });
                outcomes.push(Stored::New);
            }
        }
        if !rows.is_empty() {
            wal.number(&mut rows);
            let first_seq = rows[0].seq;
            let segment = {
                let rotated = wal.rotate_if_full();
                let records = {
                    let head = lock(&self.head);
                    head.wal_records(&wal, &rows)
                };
                let result = rotated.and_then(|_| wal.append(&records, &rows));
                match result {
                    Ok(segment) => segment,
                    Err(source) => {
                        let e = StoreError::Io {
                            path: self.root.join("wal"),
                            source,
                        };
                        self.stats().metrics_unstored += rows.len() as u64;
                        self.write_failed("metrics reports", &e);
                        return Err(e);
                    }
                }
            };
            self.write_succeeded();
            let mut head = lock(&self.head);
            for row in rows {
                head.insert(row, segment, now_ms);
            }
            // Past its budget the head is emptied now, not at the next pass.
            let over_budget = head.over_budget();
            drop(head);
            // Published while the log is still locked: a reader in sequence order finds every
            // report below it in the head.
            self.committed_seq.store(wal.next_seq(), Ordering::SeqCst);
            sequence::note_commit(self, first_seq, now_ms);
            if over_budget {
                self.wake();
            }
        }
        let mut stats = self.stats();
        for o in &outcomes {
            match o {
                Stored::New => stats.metrics_stored += 1,
                Stored::Duplicate => stats.metrics_duplicates += 1,
                Stored::Refused(Refusal::Future) => stats.metrics_refused_future += 1,
                Stored::Refused(Refusal::TooOld) => stats.metrics_refused_too_old += 1,
            }
        }
        Ok(outcomes)
    }

    /// Whether a report of `series` at `time_ms` is stored already: in the head, or in a chunk
    /// (looked up only for times at or before the newest time moved into chunks).
    fn stored_before(
        &self,
        head: &mut Head,
        series: u32,
        time_ms: u64,
    ) -> Result<bool, StoreError> {
        if head.contains(series, time_ms) {
            return Ok(true);
        }
        let flushed_max = match head.flushed_max(series) {
            Some(m) => m,
            None => {
                let m = self.newest_in_chunks(series)?;
                head.set_flushed_max(series, m);
                m
            }
        };
        if flushed_max.is_none_or(|m| time_ms > m) {
            return Ok(false);
        }
        let mut pool = lock(&self.ingest_pool);
        query::chunk_has_time(
            &self.root,
            &mut pool,
            head.chunk_times_cache(),
            series,
            time_ms,
        )
    }

    /// The newest time of a series in any raw chunk (the partitions are searched newest first).
    fn newest_in_chunks(&self, series: u32) -> Result<Option<u64>, StoreError> {
        let mut pool = lock(&self.ingest_pool);
        let partitions = partition::list(&self.root, partition::Tier::Raw)
            .map_err(StoreError::io(&self.root))?;
        for id in partitions.into_iter().rev() {
            let path = id.path(&self.root);
            let Some(conn) = pool.get(id, false).map_err(StoreError::db(&path))? else {
                continue;
            };
            let newest: Option<i64> = conn
                .query_row(
                    "SELECT MAX(last_ms) FROM chunks WHERE series = ?1",
                    [series],
                    |r| r.get(0),
                )
                .map_err(StoreError::db(&path))?;
            if let Some(t) = newest {
                return Ok(Some(t as u64));
            }
        }
        Ok(None)
    }

    /// Rebuilds the head from the log's records (skipping what reached the chunks already).
    fn replay(&self, records: Vec<(u64, wal::WalRecord)>) -> Result<u64, StoreError> {
        let mut head = lock(&self.head);
        let mut columns: std::collections::HashMap<(u64, u32), u32> =
            std::collections::HashMap::new();
        let mut series_ids: std::collections::HashMap<(u64, u32), u32> =
            std::collections::HashMap::new();
        let mut replayed = 0;
        let now = self.now();
        // What retention deleted while the log still held it does not come back.
        let oldest = now.saturating_sub(self.options.retention.raw.as_millis() as u64);
        for (segment, record) in records {
            match record {
                wal::WalRecord::Series { id, key } => {
                    let id_now = head.know_series(id, key, false);
                    series_ids.insert((segment, id), id_now);
                }
                wal::WalRecord::Column { id, column } => {
                    let id_now = head.column_id(&column);
                    columns.insert((segment, id), id_now);
                }
                wal::WalRecord::Row(mut row) => {
                    let Some(series) = series_ids.get(&(segment, row.series)).copied() else {
                        continue;
                    };
                    row.series = series;
                    row.values
                        .retain_mut(|(c, _)| match columns.get(&(segment, *c)) {
                            Some(id) => {
                                *c = *id;
                                true
                            }
                            None => false,
                        });
                    if row.time_ms < oldest || self.stored_before(&mut head, series, row.time_ms)? {
                        continue;
                    }
                    head.insert(row, segment, now);
                    replayed += 1;
                }
            }
        }
        Ok(replayed)
    }

    /// Finds the hours whose chunks were written but not sealed (an interrupted run).
    fn find_unsealed(&self) -> Result<(), StoreError> {
        let partitions = partition::list(&self.root, partition::Tier::Raw)
            .map_err(StoreError::io(&self.root))?;
        let mut pool = lock(&self.maintain_pool);
        let mut found = Vec::new();
        for id in partitions {
            let path = id.path(&self.root);
            let Some(conn) = pool.get(id, false).map_err(StoreError::db(&path))? else {
                continue;
            };
            let mut stmt = conn
                .prepare("SELECT series, hour_ms FROM unsealed")
                .map_err(StoreError::db(&path))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((r.get::<_, u32>(0)?, r.get::<_, i64>(1)? as u64))
                })
                .map_err(StoreError::db(&path))?;
            for r in rows {
                found.push(r.map_err(StoreError::db(&path))?);
            }
        }
        let mut head = lock(&self.head);
        for (series, hour) in found {
            head.mark_unsealed(series, hour);
        }
        Ok(())
    }

    fn disk_usage(&self) -> Vec<(&'static str, u64)> {
        let mut out = Vec::new();
        for tier in partition::Tier::ALL {
            let bytes = partition::list(&self.root, tier)
                .unwrap_or_default()
                .iter()
                .map(|id| partition::file_bytes(&id.path(&self.root)))
                .sum();
            out.push((tier.dir_name(), bytes));
        }
        let wal_dir = self.root.join("wal");
        let wal = wal::segments(&wal_dir)
            .unwrap_or_default()
            .iter()
            .filter_map(|s| std::fs::metadata(wal_dir.join(format!("{s:016x}.wal"))).ok())
            .map(|m| m.len())
            .sum();
        out.push(("wal", wal));
        out
    }
}
