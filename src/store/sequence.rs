//! Reading the store in the order it accepted reports, for remote write.
//!
//! Every accepted report has an ingestion sequence number (ascending, never given twice, also
//! across restarts): the log numbers each frame's rows ([`super::wal`]), the head keeps the
//! number with each report, and a chunk keeps the numbers of its reports (layout version 2)
//! with its smallest and largest in the partition's index (`chunks.min_seq`, `max_seq`). A
//! reader that has seen every report up to some number asks for the next ones with
//! `read`: they come from the head, or from the chunks whose range covers them, wherever
//! their times are (a report an agent sends a day late is numbered when it arrives).
//!
//! The head is read before the chunks: a report that maintenance moves into a chunk meanwhile
//! is committed there before it leaves the head, so it is found in one or both (a number
//! found twice is kept once). Reports below `Inner::committed_seq` are all in one of them:
//! the number is published after the head holds the batch. Numbers of a batch that could not
//! be written are used up and never fill a gap later, so a reader can move past them.
//!
//! A reader's position (the number it has sent up to) is kept as a catalogue fact,
//! `cursor:NAME`, written in one SQLite commit: it survives a crash and a restart.

use super::chunk::RawChunk;
use super::partition::{self, Tier};
use super::{Inner, StoreError, lock};
use std::path::Path;

/// The catalogue fact holding the number the next accepted report gets, written before log
/// segments are deleted.
pub const NEXT_SEQ_FACT: &str = "next_seq";
/// How many recent batches' commit times are remembered (for a reader's lag).
const COMMIT_TIMES: usize = 65_536;

/// One stored report with its sequence number: its series and values as the store's ids
/// ([`super::Store::series_key`], [`super::Store::column`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Sequenced {
    pub seq: u64,
    pub series: u32,
    pub time_ms: u64,
    /// (column id, stored integer) per measured value.
    pub values: Vec<(u32, i64)>,
}

/// What `read` found: the reports numbered above the reader's position, ascending, and
/// the number up to which every report is in `rows` (the reader's next position).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SequencedBatch {
    pub rows: Vec<Sequenced>,
    pub through: u64,
}

/// The largest sequence number in any raw chunk (0 when none has one).
pub fn newest_in_chunks(root: &Path) -> Result<u64, StoreError> {
    let mut newest = 0;
    for id in partition::list(root, Tier::Raw).map_err(StoreError::io(root))? {
        let path = id.path(root);
        let Some(conn) = partition::open(root, id, false, true).map_err(StoreError::db(&path))?
        else {
            continue;
        };
        let max: Option<i64> = conn
            .query_row("SELECT MAX(max_seq) FROM chunks", [], |r| r.get(0))
            .map_err(StoreError::db(&path))?;
        newest = newest.max(max.unwrap_or(0).max(0) as u64);
    }
    Ok(newest)
}

/// Remembers when the batch starting at `first_seq` was committed.
pub(super) fn note_commit(inner: &Inner, first_seq: u64, now_ms: u64) {
    let mut times = lock(&inner.commit_times);
    times.push_back((first_seq, now_ms));
    while times.len() > COMMIT_TIMES {
        times.pop_front();
    }
}

/// When the report numbered `seq` was committed, if it was recently (in this run).
pub(super) fn committed_at(inner: &Inner, seq: u64) -> Option<u64> {
    let times = lock(&inner.commit_times);
    let i = times.partition_point(|(first, _)| *first <= seq);
    (i > 0).then(|| times[i - 1].1)
}

/// The reports numbered `after + 1` to at most `after + max_rows` that are committed,
/// ascending.
pub(super) fn read(
    inner: &Inner,
    after: u64,
    max_rows: usize,
) -> Result<SequencedBatch, StoreError> {
    let committed = inner
        .committed_seq
        .load(std::sync::atomic::Ordering::SeqCst);
    let lo = after + 1;
    let hi = committed.min(lo.saturating_add(max_rows.max(1) as u64));
    if hi <= lo {
        return Ok(SequencedBatch {
            rows: Vec::new(),
            through: after,
        });
    }
    let mut rows = Vec::new();
    lock(&inner.head).sequenced(lo, hi, &mut rows);
    // Then the chunks (see the module's note on the order).
    let found = chunks_in_range(inner, lo, hi)?;
    if !found.is_empty() {
        rows_of_chunks(inner, found, lo, hi, &mut rows);
    }
    rows.sort_by_key(|r| r.seq);
    rows.dedup_by_key(|r| r.seq);
    Ok(SequencedBatch {
        rows,
        through: hi - 1,
    })
}

/// The raw chunks holding a report numbered in `[lo, hi)`, decoded, with their series.
fn chunks_in_range(inner: &Inner, lo: u64, hi: u64) -> Result<Vec<(u32, RawChunk)>, StoreError> {
    let mut found: Vec<(u32, RawChunk)> = Vec::new();
    let mut pool = lock(&inner.sequence_pool);
    for id in partition::list(&inner.root, Tier::Raw).map_err(StoreError::io(&inner.root))? {
        let path = id.path(&inner.root);
        let Some(conn) = pool.get(id, false).map_err(StoreError::db(&path))? else {
            continue;
        };
        let mut stmt = conn
            .prepare_cached(
                "SELECT series, first_ms, data FROM chunks WHERE max_seq >= ?1 AND min_seq < ?2",
            )
            .map_err(StoreError::db(&path))?;
        let hits = stmt
            .query_map([lo as i64, hi as i64], |r| {
                Ok((
                    r.get::<_, u32>(0)?,
                    r.get::<_, i64>(1)? as u64,
                    r.get::<_, Vec<u8>>(2)?,
                ))
            })
            .map_err(StoreError::db(&path))?;
        for hit in hits {
            let (series, first_ms, data) = hit.map_err(StoreError::db(&path))?;
            let chunk = RawChunk::decode(&data).map_err(|source| StoreError::Damaged {
                path: path.clone(),
                series,
                first_ms,
                source,
            })?;
            found.push((series, chunk));
        }
    }
    Ok(found)
}

/// Adds the reports of `found` numbered in `[lo, hi)` to `rows` (with the head's column ids).
fn rows_of_chunks(
    inner: &Inner,
    found: Vec<(u32, RawChunk)>,
    lo: u64,
    hi: u64,
    rows: &mut Vec<Sequenced>,
) {
    let mut head = lock(&inner.head);
    for (series, chunk) in found {
        let ids: Vec<u32> = chunk.columns.iter().map(|c| head.column_id(c)).collect();
        for (i, seq) in chunk.seqs.iter().enumerate() {
            if !(lo..hi).contains(seq) {
                continue;
            }
            let values = ids
                .iter()
                .zip(&chunk.values)
                .filter_map(|(id, v)| Some((*id, v[i]?)))
                .collect();
            rows.push(Sequenced {
                seq: *seq,
                series,
                time_ms: chunk.times[i],
                values,
            });
        }
    }
}

fn cursor_fact(name: &str) -> String {
    format!("cursor:{name}")
}

/// A reader's position: the number it has seen every report up to (`None`: never set).
pub(super) fn cursor(inner: &Inner, name: &str) -> Result<Option<u64>, StoreError> {
    let path = inner.root.join("catalog.sqlite");
    let value = lock(&inner.catalog)
        .fact(&cursor_fact(name))
        .map_err(StoreError::db(&path))?;
    Ok(value.and_then(|v| v.parse().ok()))
}

/// Sets a reader's position durably (one synced commit).
pub(super) fn set_cursor(inner: &Inner, name: &str, seq: u64) -> Result<(), StoreError> {
    let path = inner.root.join("catalog.sqlite");
    lock(&inner.catalog)
        .set_fact(&cursor_fact(name), &seq.to_string())
        .map_err(StoreError::db(&path))
}
