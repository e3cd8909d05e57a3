//! The public handle's calls: each hands over to the module that does the work (appending,
//! maintenance, queries, sequence-order readers, alerts); closing stops maintenance.

use super::{
    AlertQuery, AlertRecord, HeadStats, Inner, MetricRecord, RawPage, RawQuery, Report,
    SequencedBatch, SeriesKey, StepQuery, StepSeries, Store, StoreError, StoreOptions, StoreStats,
    Stored, alerts, chunk, import, lock, maintain, partition, query, sequence, wal,
};
use std::path::Path;
use std::sync::atomic::Ordering;

impl Store {
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

    /// The name of a series id of [`Sequenced`](super::Sequenced).
    pub fn series_key(&self, id: u32) -> Option<SeriesKey> {
        lock(&self.inner.head).series_key(id).cloned()
    }

    /// The column of a column id of [`Sequenced`](super::Sequenced) (ids hold for the store's run).
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
