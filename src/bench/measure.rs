//! One run of `nms bench`, step by step: the loopback ceiling, the setup of the simulated
//! agents, the measured load, the drain, the ceiling again, the check of what the server
//! stored, and the [`BenchReport`] made from it all.

use super::fleet::{self, Control, FleetConfig, Phase, WorkerResult};
use super::phases::{drain, run_load, wait_for_remote_write, wait_for_setup};
use super::target::{self, ProcessSample, Target};
use super::{BenchError, BenchOptions, BenchReport, RemoteWriteFigures};
use super::{alerts, ceiling, latency, verify};
use crate::wire::{Ack, Body, Message, Packet};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One run: ceiling, setup, load, drain, ceiling again, then the figures.
pub(super) fn measure(
    options: &BenchOptions,
    target: &mut Target,
    names: Arc<Vec<String>>,
    progress: &dyn Fn(String),
) -> Result<BenchReport, BenchError> {
    std::thread::sleep(Duration::from_millis(500));
    let baseline = target.sample();
    let packets = packet_sizes(options);
    let window = options.window.max(1);
    let ceiling = ceiling_config(options, window, &packets);
    // Measured before and after the load, and averaged, so drift on a shared machine
    // weighs on both sides of the ratio alike.
    let ceiling_before = measure_ceiling(ceiling, progress)?;

    let base_ms = crate::log::now_ms();
    let control = Arc::new(Control::default());
    let workers = spawn_fleet(options, target, &names, window, base_ms, &control)?;
    let setup_seconds = wait_for_setup(options, &control, progress)?;
    progress(format!(
        "{} agents ready in {setup_seconds:.1} s; measuring for {} s",
        options.agents, options.seconds
    ));
    std::thread::sleep(Duration::from_millis(500));

    let mut remote_write = target
        .status()
        .ok()
        .filter(|s| s["remote_write"].get(0).is_some())
        .map(|_| RemoteWriteFigures::default());
    let (load, raiser) = measure_load(options, target, &control, remote_write.as_mut(), progress)?;

    let stored_total = drain(target, &control, progress)?;
    control.set_phase(Phase::Exit);
    if let Some(figures) = remote_write.as_mut() {
        wait_for_remote_write(target, figures, load.started, load.elapsed, progress);
    }
    let ceiling_after = measure_ceiling(ceiling, progress)?;
    let alerts = raiser
        .map(|h| h.join().unwrap_or_default())
        .unwrap_or_default();
    let joined = join_workers(workers, &names)?;
    let delivery = check_delivery(target, base_ms, &joined, stored_total, load.stored_before)?;
    let run = Run {
        window,
        baseline,
        packets,
        setup_seconds,
        ceiling_before,
        ceiling_after,
        load,
        remote_write,
        alerts,
        joined,
        delivery,
    };
    Ok(run.report(options))
}

/// Everything one run measured, before it becomes the figures of a [`BenchReport`].
struct Run {
    window: usize,
    /// The server's process before any agent registered.
    baseline: Option<ProcessSample>,
    packets: PacketSizes,
    setup_seconds: f64,
    ceiling_before: f64,
    ceiling_after: f64,
    load: Load,
    remote_write: Option<RemoteWriteFigures>,
    alerts: alerts::AlertResult,
    joined: Joined,
    delivery: verify::Delivery,
}

impl Run {
    fn report(mut self, options: &BenchOptions) -> BenchReport {
        let (load, delivery, packets) = (&self.load, &self.delivery, &self.packets);
        let elapsed = load.elapsed;
        let ceiling_per_sec = (self.ceiling_before + self.ceiling_after) / 2.0;
        let ack_summary = self.joined.latencies.summary();
        let alert_summary = self.alerts.latencies.summary();
        let cpu_percent = |before: Option<ProcessSample>, after: Option<ProcessSample>| {
            Some((after?.cpu_seconds - before?.cpu_seconds) / elapsed * 100.0)
        };
        // Counters start again with a restarted server: then the acknowledged rate stands in.
        let reports_per_sec = if load.server_kills > 0 {
            load.acknowledged as f64 / elapsed
        } else {
            load.stored_after.saturating_sub(load.stored_before) as f64 / elapsed
        };
        let server_rss = load.server_after.map(|s| s.rss_bytes);
        BenchReport {
            agents: options.agents,
            rate_per_agent: options.rate,
            seconds: elapsed,
            threads: options.threads,
            window: self.window,
            reports_per_sec,
            acknowledged_per_sec: load.acknowledged as f64 / elapsed,
            ceiling_per_sec,
            ceiling_before_per_sec: self.ceiling_before,
            ceiling_after_per_sec: self.ceiling_after,
            ceiling_ratio: if ceiling_per_sec > 0.0 {
                reports_per_sec / ceiling_per_sec
            } else {
                0.0
            },
            sent: self.joined.sent_total(),
            stored: delivery.stored,
            lost: delivery.lost,
            duplicated: delivery.duplicated,
            unacknowledged: self.joined.unacknowledged,
            unacknowledged_missing: delivery.unacknowledged_missing,
            ack_p50_ms: ack_summary.p50_ms,
            ack_p99_ms: ack_summary.p99_ms,
            ack_max_ms: ack_summary.max_ms,
            alerts_raised: self.alerts.raised,
            alerts_acknowledged: self.alerts.acknowledged,
            alert_p50_ms: alert_summary.p50_ms,
            alert_p99_ms: alert_summary.p99_ms,
            alert_max_ms: alert_summary.max_ms,
            server_cpu_percent: cpu_percent(load.server_before, load.server_after),
            server_rss_bytes: server_rss,
            server_rss_baseline_bytes: self.baseline.map(|s| s.rss_bytes),
            server_bytes_per_agent: match (server_rss, self.baseline) {
                (Some(rss), Some(b)) => {
                    Some(rss.saturating_sub(b.rss_bytes) as f64 / options.agents as f64)
                }
                _ => None,
            },
            bench_cpu_percent: cpu_percent(load.bench_before, load.bench_after),
            setup_seconds: self.setup_seconds,
            report_bytes: packets.report_bytes,
            ack_bytes: packets.ack_bytes,
            ack_bytes_max: packets.ack_bytes_max,
            server_kills: load.server_kills,
            remote_write: self.remote_write,
            data_dir: None,
        }
    }
}

/// The loopback exchange the ceiling measures: a report's size out, an ACK's size back, as
/// many in flight as the agents keep (at most 16,384).
fn ceiling_config(
    options: &BenchOptions,
    window: usize,
    packets: &PacketSizes,
) -> ceiling::CeilingConfig {
    ceiling::CeilingConfig {
        request_len: packets.report_bytes,
        reply_len: packets.ack_bytes,
        client_threads: options.threads,
        in_flight: (options.agents * window).min(16_384),
        duration: Duration::from_secs_f64(options.ceiling_seconds.max(0.5)),
    }
}

fn measure_ceiling(
    config: ceiling::CeilingConfig,
    progress: &dyn Fn(String),
) -> Result<f64, BenchError> {
    progress("measuring the loopback ceiling".into());
    ceiling::measure(config).map_err(|source| BenchError::Io {
        what: "measuring the loopback ceiling".into(),
        source,
    })
}

/// Starts the simulated agents' threads; they register and wait in the setup phase.
fn spawn_fleet(
    options: &BenchOptions,
    target: &Target,
    names: &Arc<Vec<String>>,
    window: usize,
    base_ms: u64,
    control: &Arc<Control>,
) -> Result<Vec<JoinHandle<WorkerResult>>, BenchError> {
    fleet::spawn(
        FleetConfig {
            server: target.nettask,
            names: names.clone(),
            threads: options.threads,
            rate: options.rate,
            window,
            key: options.key.clone(),
            base_ms,
            max_starting: 256,
        },
        control.clone(),
    )
    .map_err(|source| BenchError::Io {
        what: "starting the simulated agents".into(),
        source,
    })
}

/// What the measured stretch of the load saw: the counters and process samples at its two
/// ends, how long it lasted and how often the server was killed in it.
struct Load {
    started: Instant,
    elapsed: f64,
    stored_before: u64,
    stored_after: u64,
    server_before: Option<ProcessSample>,
    server_after: Option<ProcessSample>,
    bench_before: Option<ProcessSample>,
    bench_after: Option<ProcessSample>,
    /// Reports acknowledged while measuring.
    acknowledged: u64,
    server_kills: u64,
}

/// Switches the agents to sending reports (and starts the alert raiser when asked), holds the
/// load for the measured time, then switches them to draining. Returns what the stretch saw and
/// the raiser's thread.
fn measure_load(
    options: &BenchOptions,
    target: &mut Target,
    control: &Arc<Control>,
    remote_write: Option<&mut RemoteWriteFigures>,
    progress: &dyn Fn(String),
) -> Result<(Load, Option<JoinHandle<alerts::AlertResult>>), BenchError> {
    let stored_before = target.metrics_stored()?;
    let server_before = target.sample();
    let bench_before = target::process_sample(std::process::id());
    let started = Instant::now();
    control.set_phase(Phase::Measure);
    let raiser = options.alerts.then(|| {
        let control = control.clone();
        let (server, rate, key) = (target.nettask, options.alert_rate, options.key.clone());
        std::thread::spawn(move || alerts::run(server, control, rate, 8, key))
    });
    let server_kills = run_load(options, target, started, remote_write, progress)?;
    control.set_phase(Phase::Drain);
    let elapsed = started.elapsed().as_secs_f64();
    let server_after = target.sample();
    let bench_after = target::process_sample(std::process::id());
    let stored_after = target.metrics_stored()?;
    let acknowledged = control.acknowledged.load(Ordering::Relaxed);
    let load = Load {
        started,
        elapsed,
        stored_before,
        stored_after,
        server_before,
        server_after,
        bench_before,
        bench_after,
        acknowledged,
        server_kills,
    };
    Ok((load, raiser))
}

/// What the server stored of the reports sent. A started server is killed and its store read;
/// a running server's counters are compared with what was sent.
fn check_delivery(
    target: &mut Target,
    base_ms: u64,
    joined: &Joined,
    stored_total: u64,
    stored_before: u64,
) -> Result<verify::Delivery, BenchError> {
    match target.data_dir.clone() {
        Some(dir) => {
            // Stopped the hard way: what the store holds is what a crash would leave.
            target.kill();
            verify::check_store(&dir, base_ms, &joined.sent, &joined.never_acknowledged).map_err(
                |e| BenchError::Server(format!("reading the store in {}: {e}", dir.display())),
            )
        }
        None => {
            // A running server's counters tell how many, not which: missing reports count as
            // lost beyond those never acknowledged.
            let sent_total = joined.sent_total();
            let stored = stored_total.saturating_sub(stored_before);
            let missing = sent_total.saturating_sub(stored);
            Ok(verify::Delivery {
                lost: missing.saturating_sub(joined.unacknowledged),
                unacknowledged_missing: missing.min(joined.unacknowledged),
                duplicated: stored.saturating_sub(sent_total),
                stored,
            })
        }
    }
}

/// The encoded sizes of one typical metrics report and of the ACKs the server sends for it.
struct PacketSizes {
    report_bytes: usize,
    /// An ACK of one packet.
    ack_bytes: usize,
    /// An ACK that also acknowledges as many earlier packets as its bitmap may hold.
    ack_bytes_max: usize,
}

/// The encoded sizes of a typical metrics report, of the emptiest ACK and of the fullest ACK
/// the server sends this agent id.
fn packet_sizes(options: &BenchOptions) -> PacketSizes {
    let report_bytes = Packet {
        keyed: options.key.is_some(),
        agent_id: options.agents as u32,
        body: Body::Reliable {
            seq: 0xfff0,
            message: Message::Metrics(fleet::typical_report(1, crate::log::now_ms())),
        },
    }
    .encode(options.key.as_ref())
    .len();
    let ack = |earlier| {
        Packet {
            keyed: options.key.is_some(),
            agent_id: options.agents as u32,
            body: Body::Ack(Ack {
                seq: 0xfff0,
                earlier,
            }),
        }
        .encode(options.key.as_ref())
        .len()
    };
    // The fullest ACK the server sends this agent id: as many earlier packets as its bitmap
    // may hold.
    let bits = crate::nettask::ack_bitmap_bits(options.agents as u32);
    let fullest = if bits == 0 {
        0
    } else {
        u32::MAX >> (32 - bits)
    };
    PacketSizes {
        report_bytes,
        ack_bytes: ack(0),
        ack_bytes_max: ack(fullest),
    }
}

/// What the simulated-agent threads report, merged and keyed by agent name.
struct Joined {
    latencies: latency::Latencies,
    sent: HashMap<String, u64>,
    unacknowledged: u64,
    never_acknowledged: HashMap<String, HashSet<u64>>,
}

impl Joined {
    /// Reports handed to NetTask, all agents.
    fn sent_total(&self) -> u64 {
        self.sent.values().sum()
    }
}

/// Joins the simulated-agent threads and merges what they report.
fn join_workers(
    workers: Vec<std::thread::JoinHandle<fleet::WorkerResult>>,
    names: &[String],
) -> Result<Joined, BenchError> {
    let mut latencies = latency::Latencies::default();
    let mut sent: HashMap<String, u64> = HashMap::new();
    let mut unacknowledged = 0;
    let mut never_acknowledged: HashMap<String, HashSet<u64>> = HashMap::new();
    for w in workers {
        let r = w
            .join()
            .map_err(|_| BenchError::Setup("a simulated-agent thread panicked".into()))?;
        latencies.merge(r.latencies);
        unacknowledged += r.unacknowledged;
        for (i, n) in r.sent {
            sent.insert(names[i].clone(), n);
        }
        for (i, reports) in r.never_acknowledged {
            never_acknowledged.insert(names[i].clone(), reports.into_iter().collect());
        }
    }
    Ok(Joined {
        latencies,
        sent,
        unacknowledged,
        never_acknowledged,
    })
}
