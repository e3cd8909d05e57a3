//! Bulk loading: reports written straight into sealed hours, past the log and the head (for
//! generating a large store quickly).

use super::seal::seal;
use super::{batch, persist_series};
use crate::store::chunk::{Column, RawChunk};
use crate::store::partition::HOUR_MS;
use crate::store::{Inner, Report, StoreError, lock};
use std::sync::atomic::Ordering;

/// Groups reports by series and hour and seals each hour with them (see [`Store::bulk_load`]).
///
/// [`Store::bulk_load`]: crate::store::Store::bulk_load
pub(in crate::store) fn bulk_load(inner: &Inner, reports: &[Report]) -> Result<(), StoreError> {
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
    let mut hours: BTreeMap<(u32, u64), Vec<(u64, &Report)>> = BTreeMap::new();
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
                let column = Column {
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
