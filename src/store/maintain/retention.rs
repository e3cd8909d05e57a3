//! Deleting what is no longer wanted: log segments whose reports are all in chunks, and whole
//! partition files past their tier's retention or over the store's size cap.

use crate::store::partition::{self, DAY_MS, PartitionId, Tier};
use crate::store::{Inner, StoreError, lock};
use std::time::Duration;

/// Deletes the log segments whose reports are all in chunks. The current segment is closed
/// (a new one started) when the head is empty or the segment is older than the flush age, so
/// that the log holds only the last few minutes.
pub(super) fn clean_wal(inner: &Inner, now_ms: u64) -> Result<(), StoreError> {
    let oldest = lock(&inner.head).oldest_segment();
    let mut wal = lock(&inner.wal);
    let dir = inner.root.join("wal");
    if oldest.is_none()
        || now_ms.saturating_sub(wal.started_ms()) >= crate::store::head::FLUSH_AGE_MS
    {
        wal.rotate_now(now_ms).map_err(StoreError::io(&dir))?;
    }
    let keep_from = oldest.unwrap_or(wal.segment()).min(wal.segment());
    let removable = crate::store::wal::segments(&dir)
        .map_err(StoreError::io(&dir))?
        .first()
        .is_some_and(|s| *s < keep_from);
    if removable {
        // The numbers of what the deleted segments held must never be given again, even if
        // retention later deletes every chunk that holds them.
        let path = inner.root.join("catalog.sqlite");
        lock(&inner.catalog)
            .set_fact(
                crate::store::sequence::NEXT_SEQ_FACT,
                &wal.next_seq().to_string(),
            )
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
pub(super) fn retention(inner: &Inner, now_ms: u64) -> Result<(), StoreError> {
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
