//! The simulated agents: many [`AgentEndpoint`](crate::nettask::AgentEndpoint)s multiplexed
//! over a few UDP sockets, one worker thread per socket (`worker.rs`; what it does with one
//! endpoint's events is in `events.rs`).
//!
//! Each worker owns its sockets' agents. It starts them a bounded number at a time (so a fleet of
//! 100,000 does not flood the server's receive buffer with registrations), routes each datagram
//! to its endpoint (REGISTERED by the registration's `instance`, everything else by agent id),
//! keeps a timer heap of the endpoints' retransmission deadlines and a tick heap for reports and
//! heartbeats, and records for every metrics report the time from `send` to its
//! `Acknowledged` event. The main thread steers every worker through the [`Phase`]s with one
//! shared atomic.

mod events;
mod worker;

use super::latency::Latencies;
use crate::wire::{Key, LinkState, MetricsReport, Sample};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use worker::Worker;

/// Where the run is; workers read it at every turn of their loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Register, receive the task, send heartbeats; no reports.
    Setup = 0,
    /// Send reports and measure.
    Measure = 1,
    /// Send no new reports; wait for the outstanding ones to be acknowledged.
    Drain = 2,
    /// Stop.
    Exit = 3,
}

/// Shared between the main thread and the workers.
#[derive(Debug, Default)]
pub struct Control {
    phase: AtomicU8,
    /// Agents that received their task.
    pub ready: AtomicU64,
    /// Reports handed to NetTask and not yet acknowledged, all agents.
    pub outstanding: AtomicU64,
    /// Reports acknowledged while measuring.
    pub acknowledged: AtomicU64,
    /// The server's AlertFlow port, from its REGISTERED answers.
    pub alertflow_port: AtomicU16,
    /// A few registered agents (id, name, registration instance), for the alert raisers.
    pub registered: Mutex<Vec<(u32, String, u64)>>,
}

impl Control {
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::Setup,
            1 => Phase::Measure,
            2 => Phase::Drain,
            _ => Phase::Exit,
        }
    }

    pub fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Release);
    }
}

/// How the simulated agents behave.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    pub server: SocketAddr,
    pub names: Arc<Vec<String>>,
    pub threads: usize,
    /// Reports per second per agent; `None`: as fast as acknowledgements allow.
    pub rate: Option<f64>,
    /// Reports each agent keeps unacknowledged when sending as fast as acks allow.
    pub window: usize,
    pub key: Option<Key>,
    /// `time_ms` of an agent's first report; the k-th report carries `base_ms + k`.
    pub base_ms: u64,
    /// Agents a worker has registering (started, no task yet) at a time.
    pub max_starting: usize,
}

/// What one worker did, returned when it stops.
#[derive(Debug, Default)]
pub struct WorkerResult {
    /// Per agent (by index into the fleet's names): reports handed to NetTask.
    pub sent: Vec<(usize, u64)>,
    pub latencies: Latencies,
    /// Reports never acknowledged by the end.
    pub unacknowledged: u64,
    /// Per agent with any: the numbers of its reports never acknowledged (still in flight at
    /// the end, or given up on). Not storing one of those breaks no promise.
    pub never_acknowledged: Vec<(usize, Vec<u64>)>,
    pub send_errors: u64,
    /// Registrations the server answered, re-registrations included.
    pub registrations: u64,
}

/// The typical report of the issue: CPU, RAM, two interfaces and one ping result.
pub fn typical_report(task_number: u32, time_ms: u64) -> MetricsReport {
    MetricsReport {
        task_number,
        time_ms,
        samples: vec![
            Sample::Cpu { percent: 37.5 },
            Sample::Ram { percent: 61.25 },
            Sample::Interface {
                name: "eth0".into(),
                state: LinkState::Up,
                packets_per_sec: 1520.0,
                bytes_per_sec: 1_250_000.0,
                errors_per_sec: 0.0,
                counters: Default::default(),
            },
            Sample::Interface {
                name: "eth1".into(),
                state: LinkState::Up,
                packets_per_sec: 88.5,
                bytes_per_sec: 42_600.0,
                errors_per_sec: 0.0,
                counters: Default::default(),
            },
            Sample::Ping {
                rtt_min_ms: 0.412,
                rtt_avg_ms: 0.583,
                rtt_max_ms: 0.91,
                jitter_ms: 0.121,
                loss_percent: 0.0,
                sent: 3,
                received: 3,
            },
        ],
    }
}

/// Starts the workers; each returns its [`WorkerResult`] when the phase becomes `Exit`.
pub fn spawn(
    config: FleetConfig,
    control: Arc<Control>,
) -> std::io::Result<Vec<std::thread::JoinHandle<WorkerResult>>> {
    let threads = config.threads.max(1);
    let mut handles = Vec::with_capacity(threads);
    for t in 0..threads {
        let bind: SocketAddr = if config.server.is_ipv4() {
            "127.0.0.1:0".parse().expect("a literal address")
        } else {
            "[::1]:0".parse().expect("a literal address")
        };
        let socket = crate::nettask::driver::bind_std(bind, 8 * 1024 * 1024)?;
        let agents: Vec<usize> = (t..config.names.len()).step_by(threads).collect();
        let worker = Worker::new(config.clone(), control.clone(), socket, agents, t as u64)?;
        handles.push(
            std::thread::Builder::new()
                .name(format!("bench-agents-{t}"))
                .spawn(move || worker.run())?,
        );
    }
    Ok(handles)
}
