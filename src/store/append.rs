//! Appending a batch of reports: each is checked (too far ahead, older than raw retention,
//! stored already), the new ones are numbered, written to the log and synced, then put in the
//! head and published to readers in sequence order.

use super::{
    Inner, Refusal, Report, StoreError, Stored,
    head::Head,
    lock, partition, query, sequence,
    wal::{self, Wal},
};
use crate::schema::Field;
use std::sync::atomic::Ordering;

impl Inner {
    pub(super) fn append(
        &self,
        reports: &[Report],
        now_ms: u64,
    ) -> Result<Vec<Stored>, StoreError> {
        self.append_with(reports, now_ms, false)
    }

    /// [`Inner::append`]; `importing` keeps reports older than raw retention (their rollups
    /// outlive the raw tier).
    pub(super) fn append_with(
        &self,
        reports: &[Report],
        now_ms: u64,
        importing: bool,
    ) -> Result<Vec<Stored>, StoreError> {
        // One writer at a time, from the duplicate check to the head: what is checked against
        // is what is in the head when the batch lands.
        let mut wal = lock(&self.wal);
        let (outcomes, rows) = self.admit(reports, now_ms, importing)?;
        if !rows.is_empty() {
            self.commit(&mut wal, rows, now_ms)?;
        }
        self.count_outcomes(&outcomes);
        Ok(outcomes)
    }

    /// What becomes of each report of a batch, and the log rows of the new ones (not numbered
    /// yet). The caller holds the log's lock.
    fn admit(
        &self,
        reports: &[Report],
        now_ms: u64,
        importing: bool,
    ) -> Result<(Vec<Stored>, Vec<wal::WalRow>), StoreError> {
        let oldest = if importing {
            0
        } else {
            now_ms.saturating_sub(self.options.retention.raw.as_millis() as u64)
        };
        let newest = now_ms.saturating_add(self.options.max_future.as_millis() as u64);
        let mut outcomes = Vec::with_capacity(reports.len());
        let mut rows = Vec::with_capacity(reports.len());
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
        Ok((outcomes, rows))
    }

    /// Numbers the new rows, writes and syncs them to the log, then puts them in the head and
    /// publishes them to readers in sequence order. The caller holds the log's lock.
    fn commit(
        &self,
        wal: &mut Wal,
        mut rows: Vec<wal::WalRow>,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        wal.number(&mut rows);
        let first_seq = rows[0].seq;
        let segment = self.write_to_log(wal, &rows)?;
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
        Ok(())
    }

    /// Writes numbered rows (and the names of new series and columns) to the log, rotating a
    /// full segment first, and syncs it; returns the segment they are in.
    fn write_to_log(&self, wal: &mut Wal, rows: &[wal::WalRow]) -> Result<u64, StoreError> {
        let rotated = wal.rotate_if_full();
        let records = {
            let head = lock(&self.head);
            head.wal_records(wal, rows)
        };
        let result = rotated.and_then(|_| wal.append(&records, rows));
        match result {
            Ok(segment) => Ok(segment),
            Err(source) => {
                let e = StoreError::Io {
                    path: self.root.join("wal"),
                    source,
                };
                self.stats().metrics_unstored += rows.len() as u64;
                self.write_failed("metrics reports", &e);
                Err(e)
            }
        }
    }

    /// Counts what became of a batch's reports.
    fn count_outcomes(&self, outcomes: &[Stored]) {
        let mut stats = self.stats();
        for o in outcomes {
            match o {
                Stored::New => stats.metrics_stored += 1,
                Stored::Duplicate => stats.metrics_duplicates += 1,
                Stored::Refused(Refusal::Future) => stats.metrics_refused_future += 1,
                Stored::Refused(Refusal::TooOld) => stats.metrics_refused_too_old += 1,
            }
        }
    }

    /// Whether a report of `series` at `time_ms` is stored already: in the head, or in a chunk
    /// (looked up only for times at or before the newest time moved into chunks).
    pub(super) fn stored_before(
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
}
