//! Maintenance, on the store's own thread: moves head buffers into raw chunks, seals the hours
//! that have passed (one chunk per series and hour, its minute rollups, its row of the hour
//! rollups), deletes log segments whose reports are all in chunks, and applies retention by
//! deleting whole partition files. Every step is a transaction of its own and can be repeated:
//! an interrupted pass leaves the hour unsealed, and the next pass (or the next start) seals it.

use super::chunk::{RawChunk, RollupBlock};
use super::head::FlushJob;
use super::partition::{self, DAY_MS, HOUR_MS, PartitionId, Tier};
use super::{Inner, StoreError, lock, rollup};
use rusqlite::{OptionalExtension, params};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How often maintenance runs.
const EVERY: Duration = Duration::from_secs(5);
/// How long after its end an hour is sealed: reports still in flight then arrive first.
pub const SEAL_GRACE_MS: u64 = 2 * 60_000;
/// Past this much log, buffers that keep its oldest segment are moved into chunks early.
const WAL_BUDGET: u64 = 256 * 1024 * 1024;

/// The maintenance thread: imports an older store once, then a pass every few seconds.
pub fn run(inner: &Inner) {
    if let Err(e) = super::import::run(inner, inner.now()) {
        crate::log::event(
            crate::log::Level::Bad,
            "STORE",
            format_args!(
                "importing the older store failed: {e} (it is kept; the next start tries again)"
            ),
        );
    }
    warm_latest(inner);
    let mut failing = false;
    loop {
        {
            let (flag, condvar) = &inner.wake;
            let mut woken = lock(flag);
            if !*woken && !inner.stop.load(Ordering::SeqCst) {
                woken = condvar
                    .wait_timeout(woken, EVERY)
                    .map(|(g, _)| g)
                    .unwrap_or_else(|e| e.into_inner().0);
            }
            *woken = false;
        }
        if inner.stop.load(Ordering::SeqCst) {
            return;
        }
        match pass(inner, inner.now()) {
            Ok(()) => {
                if failing {
                    failing = false;
                    crate::log::event(
                        crate::log::Level::Good,
                        "STORE",
                        "maintenance succeeds again",
                    );
                }
            }
            Err(e) => {
                inner.stats().maintenance_failures += 1;
                if !failing {
                    failing = true;
                    crate::log::event(
                        crate::log::Level::Bad,
                        "STORE",
                        format_args!(
                            "maintenance failed: {e}; reports stay in the log and in memory, and it is tried again every {} s (logged once until it succeeds)",
                            EVERY.as_secs()
                        ),
                    );
                }
            }
        }
    }
}

/// What a pass changed, applied to the head once its transactions are committed (never
/// before: reports leave the head only when the files hold them).
#[derive(Default)]
struct Effects {
    /// (series, hour, times moved into a chunk)
    flushed: Vec<(u32, u64, Vec<u64>)>,
    unsealed: Vec<(u32, u64)>,
    sealed: Vec<(u32, u64)>,
    chunks: u64,
}

/// Runs `work` inside the maintenance pool's transactions, commits them (rollups before raw
/// chunks), and only then applies what it did to the head.
fn batch(
    inner: &Inner,
    work: impl FnOnce(&Inner, &mut partition::Pool, &mut Effects) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut pool = lock(&inner.maintain_pool);
    let mut effects = Effects::default();
    if let Err(e) = work(inner, &mut pool, &mut effects) {
        pool.rollback();
        return Err(e);
    }
    pool.commit().map_err(|(id, source)| StoreError::Database {
        path: id.path(&inner.root),
        source,
    })?;
    drop(pool);
    let mut head = lock(&inner.head);
    for (series, hour) in &effects.unsealed {
        head.mark_unsealed(*series, *hour);
    }
    for (series, hour, times) in &effects.flushed {
        head.flushed(*series, *hour, times);
    }
    for (series, hour) in &effects.sealed {
        head.mark_sealed(*series, *hour);
    }
    drop(head);
    let mut stats = inner.stats();
    stats.chunks_written += effects.chunks;
    stats.hours_sealed += effects.sealed.len() as u64;
    Ok(())
}

/// One pass at `now_ms`.
pub fn pass(inner: &Inner, now_ms: u64) -> Result<(), StoreError> {
    persist_series(inner)?;
    let closed_before = now_ms.saturating_sub(SEAL_GRACE_MS);
    let wal_wanted = wal_pressure(inner);
    let jobs = lock(&inner.head).flush_jobs(now_ms, closed_before, wal_wanted);
    // New series may have come since: the catalogue names every series a chunk names.
    persist_series(inner)?;
    let unsealed = lock(&inner.head).unsealed_closed(closed_before);
    batch(inner, |inner, pool, effects| {
        for job in jobs {
            if job.seal {
                seal(
                    inner,
                    pool,
                    effects,
                    job.series,
                    job.hour_ms,
                    Some(job.chunk),
                )?;
            } else {
                write_partial(inner, pool, effects, job)?;
            }
        }
        for (series, hour) in unsealed {
            seal(inner, pool, effects, series, hour, None)?;
        }
        Ok(())
    })?;
    clean_wal(inner, now_ms)?;
    retention(inner, now_ms)?;
    Ok(())
}

/// Records new series in the catalogue (before any chunk names them).
fn persist_series(inner: &Inner) -> Result<(), StoreError> {
    let new = lock(&inner.head).unpersisted();
    if new.is_empty() {
        return Ok(());
    }
    let rows: Vec<(u32, &str, &str, &str)> = new
        .iter()
        .map(|(id, k)| {
            (
                *id,
                k.agent.as_str(),
                k.task.as_str(),
                k.target.as_deref().unwrap_or(""),
            )
        })
        .collect();
    let path = inner.root.join("catalog.sqlite");
    lock(&inner.catalog)
        .add_series(&rows)
        .map_err(StoreError::db(&path))?;
    let ids: Vec<u32> = new.iter().map(|(id, _)| *id).collect();
    lock(&inner.head).mark_persisted(&ids);
    Ok(())
}

/// The log segment below which buffers must be moved out (the log is over its budget).
fn wal_pressure(inner: &Inner) -> u64 {
    let dir = inner.root.join("wal");
    let segments = super::wal::segments(&dir).unwrap_or_default();
    let total: u64 = segments
        .iter()
        .filter_map(|s| std::fs::metadata(dir.join(format!("{s:016x}.wal"))).ok())
        .map(|m| m.len())
        .sum();
    match segments.first() {
        Some(oldest) if total > WAL_BUDGET => oldest + 1,
        _ => 0,
    }
}

fn encode(chunk: &RawChunk, path: &std::path::Path, series: u32) -> Result<Vec<u8>, StoreError> {
    chunk.encode().map_err(|source| StoreError::Damaged {
        path: path.to_path_buf(),
        series,
        first_ms: chunk.times.first().copied().unwrap_or(0),
        source,
    })
}

/// Groups reports by series and hour and seals each hour with them (see [`Store::bulk_load`]).
///
/// [`Store::bulk_load`]: super::Store::bulk_load
pub fn bulk_load(inner: &Inner, reports: &[super::Report]) -> Result<(), StoreError> {
    use std::collections::BTreeMap;
    // Numbered as accepted reports are, in the order given (so a bulk-loaded store has the
    // sequence numbers, and their cost on disk, of one filled by ingest).
    let first_seq = {
        let mut wal = lock(&inner.wal);
        let first = wal.next_seq();
        wal.set_next_seq(first + reports.len() as u64);
        inner.committed_seq.store(wal.next_seq(), Ordering::SeqCst);
        first
    };
    let mut hours: BTreeMap<(u32, u64), Vec<(u64, &super::Report)>> = BTreeMap::new();
    {
        let mut head = lock(&inner.head);
        for (i, r) in reports.iter().enumerate() {
            let series = head.series_id(&r.agent, &r.task, r.target.as_deref());
            hours
                .entry((series, r.time_ms - r.time_ms % HOUR_MS))
                .or_default()
                .push((first_seq + i as u64, r));
        }
    }
    persist_series(inner)?;
    let mut chunks = Vec::with_capacity(hours.len());
    for ((series, hour), mut rows) in hours {
        rows.sort_by_key(|(_, r)| r.time_ms);
        rows.dedup_by_key(|(_, r)| r.time_ms);
        let mut chunk = RawChunk::default();
        for (i, (seq, r)) in rows.iter().enumerate() {
            chunk.times.push(r.time_ms);
            chunk.seqs.push(*seq);
            for reading in &r.readings {
                let column = super::chunk::Column {
                    field: reading.field,
                    instance: reading.instance.clone(),
                };
                let c = match chunk.columns.iter().position(|x| *x == column) {
                    Some(c) => c,
                    None => {
                        chunk.columns.push(column);
                        chunk.values.push(vec![None; i]);
                        chunk.columns.len() - 1
                    }
                };
                chunk.values[c].push(reading.field.def().quantize(reading.value));
            }
            for v in &mut chunk.values {
                v.resize(i + 1, None);
            }
        }
        chunks.push((series, hour, chunk));
    }
    batch(inner, |inner, pool, effects| {
        for (series, hour, chunk) in chunks {
            seal(inner, pool, effects, series, hour, Some(chunk))?;
        }
        Ok(())
    })
}

/// Writes a buffer as an unsealed chunk of its hour.
fn write_partial(
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
pub fn read_chunks(
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
fn seal(
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
        merged = super::query::merge(merged, c);
    }
    if let Some(b) = buffer {
        merged = super::query::merge(merged, b);
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

/// Deletes the log segments whose reports are all in chunks. The current segment is closed
/// (a new one started) when the head is empty or the segment is older than the flush age, so
/// that the log holds only the last few minutes.
fn clean_wal(inner: &Inner, now_ms: u64) -> Result<(), StoreError> {
    let oldest = lock(&inner.head).oldest_segment();
    let mut wal = lock(&inner.wal);
    let dir = inner.root.join("wal");
    if oldest.is_none() || now_ms.saturating_sub(wal.started_ms()) >= super::head::FLUSH_AGE_MS {
        wal.rotate_now(now_ms).map_err(StoreError::io(&dir))?;
    }
    let keep_from = oldest.unwrap_or(wal.segment()).min(wal.segment());
    let removable = super::wal::segments(&dir)
        .map_err(StoreError::io(&dir))?
        .first()
        .is_some_and(|s| *s < keep_from);
    if removable {
        // The numbers of what the deleted segments held must never be given again, even if
        // retention later deletes every chunk that holds them.
        let path = inner.root.join("catalog.sqlite");
        lock(&inner.catalog)
            .set_fact(super::sequence::NEXT_SEQ_FACT, &wal.next_seq().to_string())
            .map_err(StoreError::db(&path))?;
    }
    let removed = wal.remove_before(keep_from).map_err(StoreError::io(&dir))?;
    drop(wal);
    if removed > 0 {
        inner.stats().wal_segments_deleted += removed as u64;
    }
    Ok(())
}

fn retention_of(inner: &Inner, tier: Tier) -> Duration {
    let r = &inner.options.retention;
    match tier {
        Tier::Raw => r.raw,
        Tier::Minute => r.minute,
        Tier::Hour => r.hour,
        Tier::Alerts => r.alerts,
    }
}

fn delete_partition(inner: &Inner, id: PartitionId, why: &str) -> Result<(), StoreError> {
    let path = id.path(&inner.root);
    for pool in [
        &inner.maintain_pool,
        &inner.query_pool,
        &inner.ingest_pool,
        &inner.alert_pool,
        &inner.sequence_pool,
    ] {
        lock(pool).close(id);
    }
    partition::remove(&path).map_err(StoreError::io(&path))?;
    inner.stats().partitions_deleted += 1;
    crate::log::event(
        crate::log::Level::Info,
        "STORE",
        format_args!("deleted {} ({why})", path.display()),
    );
    Ok(())
}

/// Deletes partitions past their tier's retention, then, over the size cap, the oldest (raw
/// reports first, never the newest partition of a tier).
fn retention(inner: &Inner, now_ms: u64) -> Result<(), StoreError> {
    for tier in Tier::ALL {
        let keep_ms = retention_of(inner, tier).as_millis() as u64;
        let cutoff = now_ms.saturating_sub(keep_ms);
        let partitions = partition::list(&inner.root, tier).map_err(StoreError::io(&inner.root))?;
        for id in partitions {
            if id.end_ms() <= cutoff {
                let days = keep_ms / DAY_MS;
                delete_partition(
                    inner,
                    id,
                    &format!("{} retention: {days} days", tier.dir_name()),
                )?;
            }
        }
    }
    let Some(cap) = inner.options.retention.max_bytes else {
        return Ok(());
    };
    let mut candidates = Vec::new();
    let mut total = 0;
    for tier in Tier::ALL {
        let partitions = partition::list(&inner.root, tier).map_err(StoreError::io(&inner.root))?;
        let n = partitions.len();
        for (i, id) in partitions.into_iter().enumerate() {
            let bytes = partition::file_bytes(&id.path(&inner.root));
            total += bytes;
            if i + 1 < n {
                candidates.push((tier, id.start_ms, id, bytes));
            }
        }
    }
    candidates.sort_by_key(|(tier, start, ..)| (*tier, *start));
    for (_, _, id, bytes) in candidates {
        if total <= cap {
            break;
        }
        delete_partition(inner, id, &format!("size cap of {cap} bytes"))?;
        total -= bytes;
    }
    Ok(())
}

/// After a start, the newest report of each series (for `/metrics`) from the newest chunks.
fn warm_latest(inner: &Inner) {
    let series = lock(&inner.head).all_series();
    let now = inner.now();
    let mut pool = lock(&inner.query_pool);
    for (id, _) in series {
        for partition in PartitionId::covering(Tier::Raw, now.saturating_sub(DAY_MS), now + 1)
            .into_iter()
            .rev()
        {
            let path = partition.path(&inner.root);
            let Ok(Some(conn)) = pool.get(partition, false) else {
                continue;
            };
            let newest: Option<Vec<u8>> = conn
                .query_row(
                    "SELECT data FROM chunks WHERE series = ?1 ORDER BY first_ms DESC LIMIT 1",
                    [id],
                    |r| r.get(0),
                )
                .optional()
                .unwrap_or(None);
            if let Some(chunk) = newest.and_then(|d| RawChunk::decode(&d).ok()) {
                lock(&inner.head).offer_latest(id, &chunk);
                break;
            }
            let _ = path;
        }
    }
}
