//! The newest values of each series, one report per sample (for `/metrics`): filed as reports
//! arrive, and offered from chunks after a restart.

use super::Head;
use crate::schema::Reading;
use crate::store::Report;
use crate::store::chunk::RawChunk;

/// The newest values of one sample: its id, their time, (column, stored integer) each.
pub(super) type Latest = (u32, u64, Vec<(u32, i64)>);

/// Files a report's values as the newest of their samples (by sample id), where no newer one
/// is known; the entries' buffers are reused.
pub(super) fn offer(
    latest: &mut Vec<Latest>,
    samples: &[u32],
    time_ms: u64,
    values: &[(u32, i64)],
) {
    let mut seen: [u32; 16] = [u32::MAX; 16];
    let mut n = 0;
    for (c, _) in values {
        let sample = samples[*c as usize];
        if seen[..n].contains(&sample) {
            continue;
        }
        if n < seen.len() {
            seen[n] = sample;
            n += 1;
        }
        let entry = match latest.iter().position(|(s, ..)| *s == sample) {
            Some(i) => &mut latest[i],
            None => {
                latest.push((sample, 0, Vec::new()));
                latest.last_mut().expect("just pushed")
            }
        };
        if entry.1 > time_ms {
            continue;
        }
        entry.1 = time_ms;
        entry.2.clear();
        entry.2.extend(
            values
                .iter()
                .filter(|(c, _)| samples[*c as usize] == sample),
        );
    }
}

impl Head {
    /// The newest values of every series, one report per sample (its time is the sample's).
    pub fn latest(&self) -> Vec<Report> {
        let mut out: Vec<Report> = Vec::new();
        for s in self.series.values() {
            for (_, time_ms, values) in &s.latest {
                out.push(Report {
                    agent: s.key.agent.clone(),
                    task: s.key.task.clone(),
                    target: s.key.target.clone(),
                    time_ms: *time_ms,
                    readings: values
                        .iter()
                        .map(|(c, v)| {
                            let column = &self.columns[*c as usize];
                            Reading {
                                field: column.field,
                                instance: column.instance.clone(),
                                value: column.field.def().value(*v),
                            }
                        })
                        .collect(),
                });
            }
        }
        out.sort_by(|a, b| {
            (&a.agent, &a.task, &a.target, a.time_ms)
                .cmp(&(&b.agent, &b.task, &b.target, b.time_ms))
        });
        out
    }

    /// Offers a series' newest reports from a chunk (after a restart, the head is empty).
    pub fn offer_latest(&mut self, series: u32, chunk: &RawChunk) {
        let ids: Vec<u32> = chunk.columns.iter().map(|c| self.column_id(c)).collect();
        let Some(s) = self.series.get_mut(&series) else {
            return;
        };
        for (i, t) in chunk.times.iter().enumerate() {
            let values: Vec<(u32, i64)> = ids
                .iter()
                .zip(&chunk.values)
                .filter_map(|(id, v)| Some((*id, v[i]?)))
                .collect();
            offer(&mut s.latest, &self.column_sample, *t, &values);
        }
    }
}
