//! One worker per work item: when it measures (every frequency; an iperf3 client in its
//! planned slot on the server's clock; an iperf3 server keeping its listener), and the
//! measurement itself through the agent's tools or a probe of the registry.

use super::outcome::{Failures, report};
use super::{FIRST_TEST_GRACE_MS, Host, TaskContext, next_slot};
use crate::log::{self, Level};
use crate::probes::iperf::ListenerStatus;
use crate::probes::{self, Destination, ProbeError, SystemSampler};
use crate::wire::{ParamValue, ProbeSample, Sample, WorkItem};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One worker: measures, reports and evaluates rules every `frequency` seconds.
pub(super) async fn work(ctx: Arc<TaskContext>, item: WorkItem) {
    let mut failures = Failures::new(&item);
    match &item {
        WorkItem::IperfClient {
            offset_ms,
            frequency_s,
            ..
        } => iperf_client(&ctx, &item, *offset_ms, *frequency_s, &mut failures).await,
        WorkItem::IperfServer {
            port, frequency_s, ..
        } => iperf_server(&ctx, *port, *frequency_s, &mut failures).await,
        _ => periodic(&ctx, &item, &mut failures).await,
    }
}

/// System metrics and ping: a measurement every frequency, the first one frequency after start
/// for system metrics (they measure over an interval), at once for ping.
async fn periodic(ctx: &TaskContext, item: &WorkItem, failures: &mut Failures) {
    let frequency = Duration::from_secs(item.frequency_s().max(1).into());
    let mut sampler = match item {
        WorkItem::MetricsGathering { .. } => match SystemSampler::new(Instant::now()) {
            Ok(s) => Some(s),
            Err(e) => {
                failures.update(ctx, &[e]);
                return;
            }
        },
        _ => None,
    };
    if sampler.is_some() {
        async_io::Timer::after(frequency.min(Duration::from_secs(1))).await;
    }
    // Echo requests and replies of this worker so far: ping samples carry counters.
    let mut ping_totals = (0u64, 0u64);
    let mut next = Instant::now();
    loop {
        let started = Instant::now();
        let mut outcome = measure(&ctx.host, item, frequency, sampler.as_mut()).await;
        if let Ok((samples, _)) = &mut outcome {
            for sample in samples.iter_mut() {
                if let Sample::Ping { sent, received, .. } = sample {
                    ping_totals.0 += *sent;
                    ping_totals.1 += *received;
                    (*sent, *received) = ping_totals;
                }
            }
        }
        finish(ctx, failures, outcome);
        next += frequency;
        let now = Instant::now();
        if next < now {
            // The run took longer than the frequency: skip the missed slots.
            log::event(
                Level::Warn,
                "SLOW",
                format_args!(
                    "{} {} took {:.1} s",
                    ctx.task_id,
                    failures.source,
                    now.duration_since(started).as_secs_f64()
                ),
            );
            next = now;
        }
        async_io::Timer::at(next).await;
    }
}

/// Reports the samples of one measurement and updates its failures.
fn finish(
    ctx: &TaskContext,
    failures: &mut Failures,
    outcome: Result<(Vec<Sample>, Vec<ProbeError>), ProbeError>,
) {
    match outcome {
        Ok((samples, errors)) => {
            failures.update(ctx, &errors);
            if !samples.is_empty() {
                report(ctx, samples);
            }
        }
        Err(e) => failures.update(ctx, &[e]),
    }
}

/// An iperf3 client: one test per period, in its slot on the server's clock.
async fn iperf_client(
    ctx: &TaskContext,
    item: &WorkItem,
    offset_ms: u32,
    frequency_s: u32,
    failures: &mut Failures,
) {
    let period_ms = u64::from(frequency_s.max(1)) * 1000;
    let frequency = Duration::from_millis(period_ms);
    let clock = &ctx.host.clock;
    let mut not_before = clock.now_ms() + FIRST_TEST_GRACE_MS;
    loop {
        let start = next_slot(not_before, offset_ms, period_ms);
        let wait = start - clock.now_ms();
        if wait > 0 {
            async_io::Timer::after(Duration::from_millis(wait as u64)).await;
        }
        let outcome = measure(&ctx.host, item, frequency, None).await;
        finish(ctx, failures, outcome);
        not_before = (start + 1).max(clock.now_ms());
    }
}

/// An iperf3 server item: holds its port's listener for as long as the task runs, and says
/// when the listener cannot run. The tests' figures are reported by their clients.
async fn iperf_server(ctx: &TaskContext, port: u16, frequency_s: u32, failures: &mut Failures) {
    let listener = ctx.host.listener(port);
    let check = Duration::from_secs(frequency_s.clamp(1, 10).into());
    loop {
        async_io::Timer::after(check).await;
        match listener.0.status() {
            ListenerStatus::Failed(message) => {
                failures.update(ctx, &[ProbeError::Iperf(message)]);
            }
            ListenerStatus::Listening => failures.update(ctx, &[]),
            ListenerStatus::Starting => {}
        }
    }
}

/// Runs one measurement within the frequency; a timeout becomes a TIMEOUT error.
async fn measure(
    host: &Host,
    item: &WorkItem,
    frequency: Duration,
    sampler: Option<&mut SystemSampler>,
) -> Result<(Vec<Sample>, Vec<ProbeError>), ProbeError> {
    match item {
        WorkItem::MetricsGathering {
            cpu,
            ram,
            interfaces,
            ..
        } => {
            let Some(sampler) = sampler else {
                return Ok((Vec::new(), Vec::new()));
            };
            Ok(sampler.sample(Instant::now(), *cpu, *ram, interfaces))
        }
        WorkItem::Ping {
            destination,
            packet_count,
            interval_ms,
            ..
        } => {
            let destination = Destination::new(destination)?;
            let deadline =
                probes::ping::suggested_deadline(*packet_count, *interval_ms).min(frequency);
            let sample = host
                .tools
                .ping(&destination, *packet_count, *interval_ms, deadline)
                .await?;
            Ok((vec![sample], Vec::new()))
        }
        WorkItem::IperfClient { .. } => {
            Ok((vec![iperf_test(host, item, frequency).await?], Vec::new()))
        }
        WorkItem::IperfServer { .. } => Ok((Vec::new(), Vec::new())),
        WorkItem::Probe(item) => Ok((vec![run_probe(item).await?], Vec::new())),
    }
}

pub(super) fn source_name(item: &WorkItem) -> String {
    match item {
        WorkItem::MetricsGathering { .. } => "system metrics".into(),
        WorkItem::Ping { destination, .. } => format!("ping {destination}"),
        WorkItem::IperfClient { server_address, .. } => {
            format!("iperf3 client to {server_address}")
        }
        WorkItem::IperfServer { port, .. } => format!("iperf3 server on port {port}"),
        WorkItem::Probe(item) => std::iter::once(item.probe.clone())
            .chain(item.params.iter().filter_map(|p| match &p.value {
                ParamValue::Text(t) => Some(t.clone()),
                ParamValue::Integer(_) => None,
            }))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// One iperf3 client test, after the agent's other iperf3 clients (one at a time), within what
/// is left of the frequency.
async fn iperf_test(
    host: &Host,
    item: &WorkItem,
    frequency: Duration,
) -> Result<Sample, ProbeError> {
    let WorkItem::IperfClient {
        server_address,
        port,
        duration_s,
        transport,
        rate_bps,
        ..
    } = item
    else {
        return Err(ProbeError::InvalidArgument("not an iperf3 client".into()));
    };
    let destination = Destination::new(server_address)?;
    let started = Instant::now();
    let _exclusive = host.iperf_lock.lock().await;
    let left = frequency.saturating_sub(started.elapsed());
    let deadline = probes::iperf::suggested_deadline(*duration_s).min(left);
    host.tools
        .iperf_client(
            &destination,
            *port,
            *duration_s,
            *transport,
            *rate_bps,
            deadline,
        )
        .await
}

/// A probe of the registry, its parameters checked first: an unknown probe or a bad parameter
/// is an invalid argument (an ERROR alert).
async fn run_probe(item: &crate::wire::ProbeItem) -> Result<Sample, ProbeError> {
    let def = probes::by_name(&item.probe).ok_or_else(|| {
        ProbeError::InvalidArgument(format!(
            "this agent has no probe {:?}; it runs: {}",
            item.probe,
            probes::PROBES
                .iter()
                .map(|p| p.name)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    def.check(item).map_err(ProbeError::InvalidArgument)?;
    let values = (def.run)(item).await?;
    Ok(Sample::Probe(ProbeSample {
        probe: def.number,
        values,
    }))
}
