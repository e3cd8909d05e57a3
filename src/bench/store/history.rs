//! The bench's history: simulated agents whose values move as real ones do (random walks at
//! the precision each probe measures), their reports written an hour at a time straight into
//! sealed hours of a store.

use super::{StoreBenchOptions, store_error};
use crate::bench::BenchError;
use crate::schema::{Field, Reading};
use crate::store::partition::{DAY_MS, HOUR_MS};
use crate::store::{Report, Store, StoreOptions};
use std::path::Path;
use std::time::{Duration, Instant};

/// A random walk that stays in `[lo, hi]`.
struct Walk {
    value: f64,
    step: f64,
    lo: f64,
    hi: f64,
}

impl Walk {
    fn next(&mut self, rng: &mut fastrand::Rng) -> f64 {
        // The sum of two uniforms: steps mostly small, sometimes larger.
        let d = (rng.f64() + rng.f64() - 1.0) * self.step;
        self.value = (self.value + d).clamp(self.lo, self.hi);
        self.value
    }
}

/// One simulated agent's values.
struct Agent {
    name: String,
    cpu: Walk,
    ram: Walk,
    packets: [Walk; 2],
    bytes: [Walk; 2],
    rtt: Walk,
    spread: Walk,
}

impl Agent {
    fn new(name: String, rng: &mut fastrand::Rng) -> Agent {
        let walk = |value: f64, step: f64, lo: f64, hi: f64| Walk {
            value,
            step,
            lo,
            hi,
        };
        Agent {
            name,
            cpu: walk(rng.f64() * 40.0 + 5.0, 3.0, 0.0, 100.0),
            ram: walk(rng.f64() * 50.0 + 20.0, 0.05, 0.0, 100.0),
            packets: [
                walk(rng.f64() * 500.0 + 50.0, 20.0, 0.0, 1e6),
                walk(rng.f64() * 50.0 + 5.0, 3.0, 0.0, 1e6),
            ],
            bytes: [
                walk(rng.f64() * 5e5 + 1e4, 8e3, 0.0, 1e10),
                walk(rng.f64() * 2e4 + 1e3, 400.0, 0.0, 1e10),
            ],
            rtt: walk(0.2 + rng.f64() * 2.0, 0.02, 0.01, 1000.0),
            spread: walk(0.05, 0.005, 0.001, 10.0),
        }
    }

    /// A typical report (CPU, RAM, two interfaces, one ping) at `time_ms`, values rounded to
    /// what each probe measures (ping prints microseconds, rates come from whole counters).
    fn report(&mut self, time_ms: u64, rng: &mut fastrand::Rng) -> Report {
        let round = |v: f64, decimals: i32| {
            let f = 10f64.powi(decimals);
            (v * f).round() / f
        };
        let r = |field, instance: Option<&str>, value| Reading {
            field,
            instance: instance.map(str::to_string),
            value,
        };
        let rtt = self.rtt.next(rng);
        let spread = self.spread.next(rng);
        let lost = rng.u32(0..1000) == 0;
        let mut readings = vec![
            r(Field::CpuPercent, None, round(self.cpu.next(rng), 2)),
            r(Field::RamPercent, None, round(self.ram.next(rng), 2)),
        ];
        for (i, name) in ["eth0", "eth1"].iter().enumerate() {
            readings.push(r(
                Field::PacketsPerSec,
                Some(name),
                round(self.packets[i].next(rng), 0),
            ));
            readings.push(r(
                Field::BytesPerSec,
                Some(name),
                round(self.bytes[i].next(rng), 0),
            ));
            readings.push(r(Field::ErrorsPerSec, Some(name), 0.0));
        }
        readings.extend([
            r(Field::RttMinMs, None, round((rtt - spread).max(0.001), 3)),
            r(Field::RttAvgMs, None, round(rtt, 3)),
            r(Field::RttMaxMs, None, round(rtt + spread * 1.5, 3)),
            r(Field::JitterMs, None, round(spread / 2.0, 3)),
            r(Field::LossPercent, None, if lost { 33.333 } else { 0.0 }),
        ]);
        Report {
            agent: self.name.clone(),
            task: "bench".into(),
            target: None,
            time_ms,
            readings,
        }
    }
}

/// Generates the store in `data_dir`: each agent's reports from `start_ms`, an hour at a time
/// for all agents, straight into sealed hours.
fn generate(
    data_dir: &Path,
    agents: &mut [(Agent, u64)],
    start_ms: u64,
    end_ms: u64,
    rate: f64,
    rng: &mut fastrand::Rng,
    progress: &dyn Fn(String),
) -> Result<u64, BenchError> {
    let store = Store::open(
        data_dir,
        StoreOptions {
            background: false,
            durable: false,
            ..StoreOptions::default()
        },
    )
    .map_err(store_error)?;
    let interval_ms = (1000.0 / rate).max(1.0) as u64;
    let mut total = 0u64;
    let mut hour = start_ms - start_ms % HOUR_MS;
    let mut last_print = Instant::now();
    while hour < end_ms {
        let mut batch = Vec::new();
        for (agent, from) in agents.iter_mut() {
            if hour + HOUR_MS <= *from {
                continue;
            }
            let mut t = hour.max(*from) + rng.u64(0..interval_ms.min(1000));
            while t < (hour + HOUR_MS).min(end_ms) {
                batch.push(agent.report(t, rng));
                // A few milliseconds of jitter, as a scheduler on a busy host has.
                t += interval_ms + rng.u64(0..5);
            }
        }
        total += batch.len() as u64;
        store.bulk_load(&batch).map_err(store_error)?;
        if last_print.elapsed() > Duration::from_secs(5) {
            last_print = Instant::now();
            progress(format!(
                "generated {total} reports, up to {}",
                crate::log::rfc3339(hour)
            ));
        }
        hour += HOUR_MS;
    }
    Ok(total)
}

/// What generating the history made.
pub(super) struct Generated {
    pub(super) reports: u64,
    /// One per agent.
    pub(super) series: usize,
    pub(super) seconds: f64,
}

/// Generates the agents' history up to `now` in `data_dir`'s store.
pub(super) fn generate_history(
    options: &StoreBenchOptions,
    data_dir: &Path,
    now: u64,
    rng: &mut fastrand::Rng,
    progress: &dyn Fn(String),
) -> Result<Generated, BenchError> {
    let span = (options.days * DAY_MS as f64) as u64;
    let mut agents: Vec<(Agent, u64)> = (0..options.agents)
        .map(|i| (Agent::new(format!("bench-{i:05}"), rng), now - span))
        .collect();
    if options.month_agent {
        agents.push((Agent::new("bench-month".into(), rng), now - 30 * DAY_MS));
    }
    let start = agents.iter().map(|(_, f)| *f).min().unwrap_or(now);
    progress(format!(
        "generating {} agents over {:.1} days at {} reports/s",
        agents.len(),
        options.days,
        options.rate
    ));
    let generating = Instant::now();
    let reports = generate(
        data_dir,
        &mut agents,
        start,
        now,
        options.rate,
        rng,
        progress,
    )?;
    Ok(Generated {
        reports,
        series: agents.len(),
        seconds: generating.elapsed().as_secs_f64(),
    })
}
