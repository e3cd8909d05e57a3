//! Writing head buffers into raw chunks and sealing hours: one chunk per series and hour, its
//! block of minute rollups and its row of the hour rollups, all in the pass's transactions.

use super::Effects;
use crate::store::chunk::{RawChunk, RollupBlock};
use crate::store::head::FlushJob;
use crate::store::partition::{self, DAY_MS, HOUR_MS, PartitionId, Tier};
use crate::store::{Inner, StoreError, rollup};
use rusqlite::{OptionalExtension, params};

fn encode(chunk: &RawChunk, path: &std::path::Path, series: u32) -> Result<Vec<u8>, StoreError> {
    chunk.encode().map_err(|source| StoreError::Damaged {
        path: path.to_path_buf(),
        series,
        first_ms: chunk.times.first().copied().unwrap_or(0),
        source,
    })
}

/// Writes a buffer as an unsealed chunk of its hour.
pub(super) fn write_partial(
    inner: &Inner,
    pool: &mut partition::Pool,
    effects: &mut Effects,
    job: FlushJob,
) -> Result<(), StoreError> {
    if job.chunk.is_empty() {
        return Ok(());
    }
    let id = PartitionId::of(Tier::Raw, job.hour_ms);
    let path = id.path(&inner.root);
    let data = encode(&job.chunk, &path, job.series)?;
    let conn = pool.begin(id).map_err(StoreError::db(&path))?;
    let (min_seq, max_seq) = job.chunk.seq_range();
    conn.prepare_cached(
        "INSERT INTO chunks(series, first_ms, last_ms, count, data, min_seq, max_seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut st| {
        st.execute(params![
            job.series,
            job.chunk.times[0] as i64,
            *job.chunk.times.last().unwrap_or(&0) as i64,
            job.chunk.len() as i64,
            data,
            min_seq as i64,
            max_seq as i64
        ])
    })
    .map_err(StoreError::db(&path))?;
    conn.prepare_cached("INSERT OR IGNORE INTO unsealed(series, hour_ms) VALUES (?1, ?2)")
        .and_then(|mut st| st.execute(params![job.series, job.hour_ms as i64]))
        .map_err(StoreError::db(&path))?;
    effects.unsealed.push((job.series, job.hour_ms));
    effects
        .flushed
        .push((job.series, job.hour_ms, job.chunk.times));
    effects.chunks += 1;
    Ok(())
}

/// The chunks of one series in `[from, to)` of a raw partition, decoded, oldest first.
pub(in crate::store) fn read_chunks(
    conn: &rusqlite::Connection,
    path: &std::path::Path,
    series: u32,
    from: u64,
    to: u64,
) -> Result<Vec<RawChunk>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT first_ms, data FROM chunks
             WHERE series = ?1 AND last_ms >= ?2 AND first_ms < ?3 ORDER BY first_ms",
        )
        .map_err(StoreError::db(path))?;
    let rows = stmt
        .query_map(
            params![series, from as i64, to.min(i64::MAX as u64) as i64],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Vec<u8>>(1)?)),
        )
        .map_err(StoreError::db(path))?;
    let mut out = Vec::new();
    for row in rows {
        let (first_ms, data) = row.map_err(StoreError::db(path))?;
        out.push(
            RawChunk::decode(&data).map_err(|source| StoreError::Damaged {
                path: path.to_path_buf(),
                series,
                first_ms,
                source,
            })?,
        );
    }
    Ok(out)
}

/// Seals one hour of one series: its chunks and `buffer` become one chunk, and its rollups
/// are written (all inside the pass's transactions).
pub(super) fn seal(
    inner: &Inner,
    pool: &mut partition::Pool,
    effects: &mut Effects,
    series: u32,
    hour: u64,
    buffer: Option<RawChunk>,
) -> Result<(), StoreError> {
    let raw_id = PartitionId::of(Tier::Raw, hour);
    let raw_path = raw_id.path(&inner.root);
    let end = hour + HOUR_MS;
    let buffer_times = buffer.as_ref().map(|b| b.times.clone()).unwrap_or_default();
    let conn = pool.begin(raw_id).map_err(StoreError::db(&raw_path))?;
    let existing = read_chunks(conn, &raw_path, series, hour, end)?;
    let existing_count = existing.len();
    let mut merged = RawChunk::default();
    for c in existing {
        merged = crate::store::query::merge(merged, c);
    }
    if let Some(b) = buffer {
        merged = crate::store::query::merge(merged, b);
    }
    // One chunk already, nothing new: only the rollups are missing.
    if existing_count != 1 || !buffer_times.is_empty() {
        let data = encode(&merged, &raw_path, series)?;
        let db = StoreError::db(&raw_path);
        (|| {
            conn.prepare_cached(
                "DELETE FROM chunks WHERE series = ?1 AND first_ms >= ?2 AND first_ms < ?3",
            )?
            .execute(params![series, hour as i64, end as i64])?;
            if !merged.is_empty() {
                let (min_seq, max_seq) = merged.seq_range();
                conn.prepare_cached(
                    "INSERT INTO chunks(series, first_ms, last_ms, count, data, min_seq, max_seq)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![
                    series,
                    merged.times[0] as i64,
                    *merged.times.last().unwrap_or(&0) as i64,
                    merged.len() as i64,
                    data,
                    min_seq as i64,
                    max_seq as i64
                ])?;
            }
            Ok(())
        })()
        .map_err(db)?;
        effects.chunks += 1;
    }
    if !merged.is_empty() {
        write_rollups(inner, pool, series, hour, &merged)?;
    }
    let conn = pool.begin(raw_id).map_err(StoreError::db(&raw_path))?;
    conn.prepare_cached("DELETE FROM unsealed WHERE series = ?1 AND hour_ms = ?2")
        .and_then(|mut st| st.execute(params![series, hour as i64]))
        .map_err(StoreError::db(&raw_path))?;
    if !buffer_times.is_empty() {
        effects.flushed.push((series, hour, buffer_times));
    }
    effects.sealed.push((series, hour));
    Ok(())
}

fn write_rollups(
    inner: &Inner,
    pool: &mut partition::Pool,
    series: u32,
    hour: u64,
    merged: &RawChunk,
) -> Result<(), StoreError> {
    let day = hour - hour % DAY_MS;
    update_block(inner, pool, Tier::Minute, series, day, |b| {
        rollup::put_minutes(b, day, merged, hour)
    })?;
    update_block(inner, pool, Tier::Hour, series, day, |b| {
        rollup::put_hour(b, day, merged, hour)
    })
}

/// Reads the rollup block of a series' day in a tier's partition, changes it, writes it back.
fn update_block(
    inner: &Inner,
    pool: &mut partition::Pool,
    tier: Tier,
    series: u32,
    day: u64,
    change: impl FnOnce(Option<RollupBlock>) -> RollupBlock,
) -> Result<(), StoreError> {
    let id = PartitionId::of(tier, day);
    let path = id.path(&inner.root);
    let conn = pool.begin(id).map_err(StoreError::db(&path))?;
    let existing: Option<Vec<u8>> = conn
        .prepare_cached("SELECT data FROM blocks WHERE series = ?1 AND start_ms = ?2")
        .and_then(|mut st| {
            st.query_row(params![series, day as i64], |r| r.get(0))
                .optional()
        })
        .map_err(StoreError::db(&path))?;
    let damaged = |source| StoreError::Damaged {
        path: path.clone(),
        series,
        first_ms: day,
        source,
    };
    let existing = existing
        .map(|data| RollupBlock::decode(&data).map_err(damaged))
        .transpose()?;
    let data = change(existing).encode().map_err(damaged)?;
    conn.prepare_cached(
        "INSERT INTO blocks(series, start_ms, data) VALUES (?1, ?2, ?3)
         ON CONFLICT(series, start_ms) DO UPDATE SET data = excluded.data",
    )
    .and_then(|mut st| st.execute(params![series, day as i64, data]))
    .map_err(StoreError::db(&path))?;
    Ok(())
}
