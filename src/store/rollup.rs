//! Rollups: count, min, max and sum (hence mean) per column over a minute or an hour, and for
//! fields that keep their distribution (ping RTT) the 10th, 50th and 90th percentile, the
//! SmokePing-style smoke. They are computed from the raw reports of a whole hour when it is
//! sealed, so they are exact; statistics over longer steps combine them ([`combine`]).

use super::chunk::{RawChunk, RollupBlock, Stat};
use super::partition::{HOUR_MS, MINUTE_MS};

/// Statistics of a set of stored integers (`quantiles` when asked), count 0 for none.
pub fn stat(values: &mut [i64], distribution: bool) -> Stat {
    if values.is_empty() {
        return Stat::default();
    }
    values.sort_unstable();
    let n = values.len();
    let rank = |p: f64| values[((p * n as f64).ceil() as usize).clamp(1, n) - 1];
    Stat {
        count: n as i64,
        min: values[0],
        max: values[n - 1],
        sum: values.iter().fold(0i64, |a, v| a.saturating_add(*v)),
        quantiles: distribution.then(|| [rank(0.1), rank(0.5), rank(0.9)]),
    }
}

/// Splits the reports of `chunk` into slots of `slot_ms` from `start_ms` and computes each
/// column's statistics per slot.
pub fn block(chunk: &RawChunk, start_ms: u64, slot_ms: u64) -> RollupBlock {
    let mut slots: Vec<u32> = Vec::new();
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for (i, t) in chunk.times.iter().enumerate() {
        let Some(slot) = t.checked_sub(start_ms).map(|d| (d / slot_ms) as u32) else {
            continue;
        };
        match slots.last() {
            Some(last) if *last == slot => {
                if let Some(r) = ranges.last_mut() {
                    r.1 = i + 1;
                }
            }
            _ => {
                slots.push(slot);
                ranges.push((i, i + 1));
            }
        }
    }
    let stats = chunk
        .columns
        .iter()
        .zip(&chunk.values)
        .map(|(column, values)| {
            let distribution = column.field.def().distribution;
            ranges
                .iter()
                .map(|(a, b)| {
                    let mut present: Vec<i64> = values[*a..*b].iter().flatten().copied().collect();
                    stat(&mut present, distribution)
                })
                .collect()
        })
        .collect();
    RollupBlock {
        start_ms,
        slot_ms,
        slots,
        columns: chunk.columns.clone(),
        stats,
    }
}

/// Replaces what `existing` (a block of `slot_ms` slots from `block_ms`) holds in
/// `[from, to)` with the statistics of `chunk`'s reports in that span.
pub fn replace_span(
    existing: Option<RollupBlock>,
    block_ms: u64,
    slot_ms: u64,
    chunk: &RawChunk,
    from: u64,
    to: u64,
) -> RollupBlock {
    let mut within = chunk.clone();
    let keep: Vec<bool> = within
        .times
        .iter()
        .map(|t| (from..to).contains(t))
        .collect();
    if keep.iter().any(|k| !k) {
        within.times.retain(|t| (from..to).contains(t));
        for v in &mut within.values {
            let mut i = 0;
            v.retain(|_| {
                i += 1;
                keep[i - 1]
            });
        }
    }
    let new = block(&within, block_ms, slot_ms);
    let mut out = existing.unwrap_or(RollupBlock {
        start_ms: block_ms,
        slot_ms,
        ..RollupBlock::default()
    });
    // Drop the span's old statistics.
    let slot_of = |t: u64| ((t.saturating_sub(block_ms)) / slot_ms) as u32;
    let (first, end) = (slot_of(from), slot_of(to.max(from + 1) - 1) + 1);
    let a = out.slots.partition_point(|s| *s < first);
    let b = out.slots.partition_point(|s| *s < end);
    out.slots.drain(a..b);
    for column in &mut out.stats {
        column.drain(a..b);
    }
    if new.slots.is_empty() {
        return out;
    }
    // The new slots all fall between `a` and the rest.
    let n = new.slots.len();
    out.slots.splice(a..a, new.slots.iter().copied());
    for column in &mut out.stats {
        column.splice(a..a, std::iter::repeat_n(Stat::default(), n));
    }
    for (column, stats) in new.columns.iter().zip(&new.stats) {
        let c = match out.columns.iter().position(|x| x == column) {
            Some(c) => c,
            None => {
                out.columns.push(column.clone());
                out.stats.push(vec![Stat::default(); out.slots.len()]);
                out.columns.len() - 1
            }
        };
        out.stats[c][a..a + n].copy_from_slice(stats);
    }
    out
}

/// Puts one hour's per-minute statistics into the minute block of its day.
pub fn put_minutes(
    existing: Option<RollupBlock>,
    day_ms: u64,
    chunk: &RawChunk,
    hour_ms: u64,
) -> RollupBlock {
    replace_span(
        existing,
        day_ms,
        MINUTE_MS,
        chunk,
        hour_ms,
        hour_ms + HOUR_MS,
    )
}

/// Puts one hour's statistics into the per-hour block of its day (`existing`, if any),
/// replacing what that hour had.
pub fn put_hour(
    existing: Option<RollupBlock>,
    day_ms: u64,
    chunk: &RawChunk,
    hour_ms: u64,
) -> RollupBlock {
    replace_span(existing, day_ms, HOUR_MS, chunk, hour_ms, hour_ms + HOUR_MS)
}

/// Combines the statistics of several slots into one (for a step longer than a slot). Count,
/// min, max and sum combine exactly; percentiles are estimated as the count-weighted
/// percentiles of the slots' own percentiles.
pub fn combine(parts: &[Stat]) -> Stat {
    let parts: Vec<&Stat> = parts.iter().filter(|s| s.count > 0).collect();
    let Some(first) = parts.first() else {
        return Stat::default();
    };
    if parts.len() == 1 {
        return **first;
    }
    let mut out = Stat {
        count: 0,
        min: i64::MAX,
        max: i64::MIN,
        sum: 0,
        quantiles: None,
    };
    for p in &parts {
        out.count += p.count;
        out.min = out.min.min(p.min);
        out.max = out.max.max(p.max);
        out.sum = out.sum.saturating_add(p.sum);
    }
    if parts.iter().all(|p| p.quantiles.is_some()) {
        let mut points: Vec<(i64, i64)> = parts
            .iter()
            .flat_map(|p| {
                let q = p.quantiles.unwrap_or_default();
                // Each percentile stands for a third of the slot's values.
                q.into_iter().map(move |v| (v, p.count))
            })
            .collect();
        points.sort_unstable();
        let total: i64 = points.iter().map(|(_, w)| w).sum();
        let at = |p: f64| {
            let target = (p * total as f64).ceil() as i64;
            let mut acc = 0;
            for (v, w) in &points {
                acc += w;
                if acc >= target {
                    return *v;
                }
            }
            points.last().map_or(0, |(v, _)| *v)
        };
        out.quantiles = Some([at(0.1), at(0.5), at(0.9)]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Field;
    use crate::store::chunk::Column;

    fn chunk(times: Vec<u64>, values: Vec<i64>) -> RawChunk {
        RawChunk {
            columns: vec![Column {
                field: Field::RttAvgMs,
                instance: None,
            }],
            values: vec![values.into_iter().map(Some).collect()],
            times,
            seqs: Vec::new(),
        }
    }

    #[test]
    fn statistics_are_exact_per_minute() {
        let c = chunk(vec![0, 1000, 59_999, 60_000], vec![5, 1, 9, 7]);
        let b = put_minutes(None, 0, &c, 0);
        assert_eq!(b.slots, vec![0, 1]);
        let s = b.stats[0][0];
        assert_eq!((s.count, s.min, s.max, s.sum), (3, 1, 9, 15));
        assert_eq!(s.quantiles, Some([1, 5, 9]));
        assert_eq!(b.stats[0][1].count, 1);
    }

    #[test]
    fn combining_is_exact_for_count_min_max_and_sum() {
        let a = stat(&mut [1, 2, 3], true);
        let b = stat(&mut [10, 20], true);
        let c = combine(&[a, Stat::default(), b]);
        assert_eq!((c.count, c.min, c.max, c.sum), (5, 1, 20, 36));
        let [p10, p50, p90] = c.quantiles.unwrap();
        assert!(p10 <= p50 && p50 <= p90);
        assert!((1..=20).contains(&p10) && (1..=20).contains(&p90));
    }

    #[test]
    fn an_hour_replaces_its_old_statistics_in_the_day_block() {
        let day = 0;
        let first = put_hour(None, day, &chunk(vec![HOUR_MS + 5], vec![4]), HOUR_MS);
        let again = put_hour(
            Some(first),
            day,
            &chunk(vec![HOUR_MS + 5, HOUR_MS + 6], vec![4, 6]),
            HOUR_MS,
        );
        assert_eq!(again.slots, vec![1]);
        assert_eq!(again.stats[0][0].count, 2);
        let two = put_hour(Some(again), day, &chunk(vec![5], vec![1]), 0);
        assert_eq!(two.slots, vec![0, 1]);
        assert_eq!(two.stats[0][1].count, 2, "the other hour is kept");
        // Minutes: an hour's slots replaced in the day's block, the rest kept.
        let m = put_minutes(None, day, &chunk(vec![5, HOUR_MS + 5], vec![1, 2]), 0);
        assert_eq!(m.slots, vec![0], "only the hour's own reports");
        let m = put_minutes(
            Some(m),
            day,
            &chunk(vec![HOUR_MS + 5, HOUR_MS + 60_005], vec![2, 3]),
            HOUR_MS,
        );
        assert_eq!(m.slots, vec![0, 60, 61]);
        let m = put_minutes(Some(m), day, &chunk(vec![7, 60_007], vec![4, 5]), 0);
        assert_eq!(m.slots, vec![0, 1, 60, 61]);
        assert_eq!(m.stats[0][0].sum, 4);
    }
}
