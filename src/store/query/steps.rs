//! Step queries: statistics of each matching series per step of a range, read from the tier
//! [`tier_for`] picks, with the hours not sealed yet computed from raw reports.

use super::step_builder::StepBuilder;
use super::{matching_series, series_chunk};
use crate::schema::Field;
use crate::store::chunk::{Column, RollupBlock};
use crate::store::partition::{self, DAY_MS, HOUR_MS, MINUTE_MS, PartitionId, Pool, Tier};
use crate::store::{Inner, Retention, StoreError, lock, rollup};
use rusqlite::{OptionalExtension, params};
use std::path::Path;

/// A step query: statistics of each series of an agent (or all) per step of a range.
#[derive(Debug, Clone)]
pub struct StepQuery {
    pub agent: Option<String>,
    pub task: Option<String>,
    pub from_ms: u64,
    pub to_ms: u64,
    pub step_ms: u64,
    /// Only these fields (all when empty).
    pub fields: Vec<Field>,
}

/// Statistics of one column over one step, in the field's unit.
#[derive(Debug, Clone, PartialEq)]
pub struct StepStat {
    pub column: Column,
    pub count: u64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    /// p10, p50, p90 for fields that keep their distribution.
    pub quantiles: Option<[f64; 3]>,
}

/// One step of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRow {
    pub start_ms: u64,
    pub stats: Vec<StepStat>,
}

/// The steps of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct StepSeries {
    pub agent: String,
    pub task: String,
    pub target: Option<String>,
    /// The tier the steps were computed from: `raw`, `minute` or `hour`.
    pub tier: &'static str,
    pub steps: Vec<StepRow>,
}

/// The tier a step query reads: the coarsest whose slots are no longer than the step, or a
/// coarser one where retention has deleted the range's start.
pub fn tier_for(inner_retention: &Retention, now_ms: u64, from_ms: u64, step_ms: u64) -> Tier {
    let kept = |d: std::time::Duration| now_ms.saturating_sub(d.as_millis() as u64);
    let mut tier = if step_ms >= HOUR_MS {
        Tier::Hour
    } else if step_ms >= MINUTE_MS {
        Tier::Minute
    } else {
        Tier::Raw
    };
    if tier == Tier::Raw && from_ms < kept(inner_retention.raw) {
        tier = Tier::Minute;
    }
    if tier == Tier::Minute && from_ms < kept(inner_retention.minute) {
        tier = Tier::Hour;
    }
    tier
}

fn read_block(
    pool: &mut Pool,
    root: &Path,
    id: PartitionId,
    series: u32,
    start: u64,
) -> Result<Option<RollupBlock>, StoreError> {
    let path = id.path(root);
    let Some(conn) = pool.get(id, false).map_err(StoreError::db(&path))? else {
        return Ok(None);
    };
    let data: Option<Vec<u8>> = conn
        .prepare_cached("SELECT data FROM blocks WHERE series = ?1 AND start_ms = ?2")
        .and_then(|mut s| {
            s.query_row(params![series, start as i64], |r| r.get(0))
                .optional()
        })
        .map_err(StoreError::db(&path))?;
    data.map(|d| {
        RollupBlock::decode(&d).map_err(|source| StoreError::Damaged {
            path: path.clone(),
            series,
            first_ms: start,
            source,
        })
    })
    .transpose()
}

/// Feeds the statistics of one series over `[from, to)` from `tier` to `steps`, in time order.
#[allow(clippy::too_many_arguments)]
fn feed(
    inner: &Inner,
    pool: &mut Pool,
    tier: Tier,
    partitions: &[PartitionId],
    series: u32,
    from: u64,
    to: u64,
    steps: &mut StepBuilder<'_>,
) -> Result<(), StoreError> {
    let now = inner.now();
    let raw_kept = now.saturating_sub(inner.options.retention.raw.as_millis() as u64);
    // What can hold data: the tier's files and the raw files (for hours not sealed yet), and
    // the head. A range of years is walked only where they are.
    let mut lo = partitions
        .iter()
        .map(|p| p.start_ms)
        .min()
        .unwrap_or(u64::MAX);
    let mut hi = partitions.iter().map(|p| p.end_ms()).max().unwrap_or(0);
    if let Some((a, b)) = lock(&inner.head).span(series) {
        lo = lo.min(a);
        hi = hi.max(b);
    }
    let (from, to) = (from.max(lo), to.min(hi));
    if from >= to {
        return Ok(());
    }
    let source = SeriesSource {
        inner,
        series,
        raw_kept,
    };
    match tier {
        Tier::Raw | Tier::Alerts => {
            steps.add_chunk(&series_chunk(inner, pool, series, from, to)?);
        }
        Tier::Minute => source.feed_minutes(pool, from, to, steps)?,
        Tier::Hour => source.feed_hours(pool, from, to, steps)?,
    }
    Ok(())
}

/// One series to feed from the rollup tiers, and from which time raw reports are still kept
/// (for the hours that are not sealed).
struct SeriesSource<'a> {
    inner: &'a Inner,
    series: u32,
    raw_kept: u64,
}

impl SeriesSource<'_> {
    /// The series' rollup block of the day starting at `day` in `tier`, if there is one.
    fn day_block(
        &self,
        pool: &mut Pool,
        tier: Tier,
        day: u64,
    ) -> Result<Option<RollupBlock>, StoreError> {
        read_block(
            pool,
            &self.inner.root,
            PartitionId::of(tier, day),
            self.series,
            day,
        )
    }

    /// [`feed`] from the minute rollups, day by day.
    fn feed_minutes(
        &self,
        pool: &mut Pool,
        from: u64,
        to: u64,
        steps: &mut StepBuilder<'_>,
    ) -> Result<(), StoreError> {
        let &SeriesSource {
            inner,
            series,
            raw_kept,
        } = self;
        let mut day = from - from % DAY_MS;
        while day < to {
            let block = self.day_block(pool, Tier::Minute, day)?;
            // Hour by hour, in order: sealed hours from the day's block, the others (the
            // current hour, late reports not sealed yet) from raw reports.
            let mut hour = day.max(from - from % HOUR_MS);
            while hour < (day + DAY_MS).min(to) {
                let span = (hour.max(from), (hour + HOUR_MS).min(to));
                let present = block
                    .as_ref()
                    .is_some_and(|b| b.has_slots(hour, hour + HOUR_MS));
                let unsealed = lock(&inner.head).is_unsealed(series, hour);
                if (unsealed || !present) && hour + HOUR_MS > raw_kept {
                    let chunk = series_chunk(inner, pool, series, hour, hour + HOUR_MS)?;
                    if !chunk.is_empty() {
                        let b = rollup::block(&chunk, hour, MINUTE_MS);
                        steps.add_block(&b, span.0, span.1);
                    } else if let Some(b) = &block {
                        steps.add_block(b, span.0, span.1);
                    }
                } else if let Some(b) = &block {
                    steps.add_block(b, span.0, span.1);
                }
                hour += HOUR_MS;
            }
            day += DAY_MS;
        }
        Ok(())
    }

    /// [`feed`] from the hour rollups, day by day.
    fn feed_hours(
        &self,
        pool: &mut Pool,
        from: u64,
        to: u64,
        steps: &mut StepBuilder<'_>,
    ) -> Result<(), StoreError> {
        let &SeriesSource {
            inner,
            series,
            raw_kept,
        } = self;
        let mut day = from - from % DAY_MS;
        while day < to {
            let mut block = self.day_block(pool, Tier::Hour, day)?;
            // Hours of the day without statistics yet (not sealed): from raw reports.
            let mut hour = day;
            while hour < (day + DAY_MS).min(to) {
                let slot = ((hour - day) / HOUR_MS) as u32;
                let present = block.as_ref().is_some_and(|b| b.slots.contains(&slot));
                let unsealed = lock(&inner.head).is_unsealed(series, hour);
                if (unsealed || !present) && hour + HOUR_MS > raw_kept && hour + HOUR_MS > from {
                    let chunk = series_chunk(inner, pool, series, hour, hour + HOUR_MS)?;
                    if !chunk.is_empty() || present {
                        block = Some(rollup::put_hour(block, day, &chunk, hour));
                    }
                }
                hour += HOUR_MS;
            }
            if let Some(b) = block {
                steps.add_block(&b, from, to);
            }
            day += DAY_MS;
        }
        Ok(())
    }
}

pub(in crate::store) fn steps(inner: &Inner, q: &StepQuery) -> Result<Vec<StepSeries>, StoreError> {
    let now = inner.now();
    let tier = tier_for(&inner.options.retention, now, q.from_ms, q.step_ms);
    let series = matching_series(inner, q.agent.as_deref(), q.task.as_deref());
    // The files that can hold the range's data: the tier's and the raw tier's.
    let mut partitions = Vec::new();
    for t in [tier, Tier::Raw] {
        partitions.extend(partition::list(&inner.root, t).map_err(StoreError::io(&inner.root))?);
    }
    partitions.sort_by_key(|p| p.start_ms);
    let mut pool = lock(&inner.query_pool);
    let mut out = Vec::new();
    for (id, key) in series {
        let mut builder = StepBuilder::new(q.from_ms, q.step_ms, &q.fields);
        feed(
            inner,
            &mut pool,
            tier,
            &partitions,
            id,
            q.from_ms,
            q.to_ms,
            &mut builder,
        )?;
        let steps = builder.finish();
        if steps.is_empty() {
            continue;
        }
        out.push(StepSeries {
            agent: key.agent,
            task: key.task,
            target: key.target,
            tier: tier.dir_name(),
            steps,
        });
    }
    Ok(out)
}
