//! The simulated agents: many [`AgentEndpoint`]s multiplexed over a few UDP sockets, one worker
//! thread per socket.
//!
//! Each worker owns its sockets' agents. It starts them a bounded number at a time (so a fleet of
//! 100,000 does not flood the server's receive buffer with registrations), routes each datagram
//! to its endpoint (REGISTERED by the registration's `instance`, everything else by agent id),
//! keeps a timer heap of the endpoints' retransmission deadlines and a tick heap for reports and
//! heartbeats, and records for every metrics report the time from `send` to its
//! `Acknowledged` event. The main thread steers every worker through the [`Phase`]s with one
//! shared atomic.

use super::latency::Latencies;
use crate::nettask::{AgentEndpoint, AgentEvent, AgentIdentity, Config, Keys, Transmit};
use crate::wire::{Heartbeat, Key, LinkState, Message, MetricsReport, PacketType, Sample};
use async_io::{Async, Timer};
use futures_lite::FutureExt;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU8, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

struct SimAgent {
    name_index: usize,
    endpoint: Option<AgentEndpoint>,
    instance: Option<u64>,
    agent_id: Option<u32>,
    task_number: Option<u32>,
    /// The timer-heap deadline currently valid for this agent.
    scheduled: Option<Instant>,
    /// Reports handed to NetTask (also the offset of the next report's time).
    sent: u64,
    /// Unacknowledged reports: message id, when it was handed over (`None`: before the
    /// measurement, not timed) and the report's number.
    in_flight: VecDeque<(u64, Option<Instant>, u64)>,
    /// Numbers of the reports NetTask gave up on (never acknowledged).
    dropped: Vec<u64>,
    last_sent: Instant,
    heartbeat: Duration,
    /// The tick-heap time currently valid for this agent.
    tick: Option<Instant>,
}

struct Worker {
    config: FleetConfig,
    control: Arc<Control>,
    socket: Async<UdpSocket>,
    agents: Vec<SimAgent>,
    by_id: HashMap<u32, usize>,
    by_instance: HashMap<u64, usize>,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    ticks: BinaryHeap<Reverse<(Instant, usize)>>,
    next_to_start: usize,
    starting: usize,
    rng: fastrand::Rng,
    result: WorkerResult,
    /// Whether the reports of this phase were started (window mode starts them once).
    started_reports: bool,
}

impl Worker {
    fn new(
        config: FleetConfig,
        control: Arc<Control>,
        socket: UdpSocket,
        indices: Vec<usize>,
        seed: u64,
    ) -> std::io::Result<Worker> {
        let now = Instant::now();
        let agents = indices
            .into_iter()
            .map(|name_index| SimAgent {
                name_index,
                endpoint: None,
                instance: None,
                agent_id: None,
                task_number: None,
                scheduled: None,
                sent: 0,
                in_flight: VecDeque::new(),
                dropped: Vec::new(),
                last_sent: now,
                heartbeat: Duration::from_secs(1),
                tick: None,
            })
            .collect();
        Ok(Worker {
            config,
            control,
            socket: Async::new(socket)?,
            agents,
            by_id: HashMap::new(),
            by_instance: HashMap::new(),
            timers: BinaryHeap::new(),
            ticks: BinaryHeap::new(),
            next_to_start: 0,
            starting: 0,
            rng: fastrand::Rng::with_seed(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5eed),
            result: WorkerResult::default(),
            started_reports: false,
        })
    }

    fn run(mut self) -> WorkerResult {
        let mut buf = vec![0u8; 4096];
        loop {
            let phase = self.control.phase();
            if phase == Phase::Exit {
                break;
            }
            let now = Instant::now();
            self.start_agents(now);
            if phase == Phase::Measure && !self.started_reports {
                self.started_reports = true;
                self.start_reports(now);
            }
            self.run_timers(now, phase);
            self.receive(&mut buf, phase);
            self.wait(phase);
        }
        self.finish()
    }

    fn finish(mut self) -> WorkerResult {
        for a in &self.agents {
            self.result.sent.push((a.name_index, a.sent));
            self.result.unacknowledged += a.in_flight.len() as u64;
            let mut never: Vec<u64> = a.in_flight.iter().map(|(_, _, k)| *k).collect();
            never.extend(&a.dropped);
            if !never.is_empty() {
                self.result.never_acknowledged.push((a.name_index, never));
            }
        }
        self.result
    }

    /// Starts agents while fewer than `max_starting` are waiting for their task.
    fn start_agents(&mut self, now: Instant) {
        while self.starting < self.config.max_starting && self.next_to_start < self.agents.len() {
            let idx = self.next_to_start;
            self.next_to_start += 1;
            self.starting += 1;
            let name = &self.config.names[self.agents[idx].name_index];
            let config = Config {
                keys: Keys::single(self.config.key.clone()),
                ..Config::default()
            };
            let endpoint = AgentEndpoint::new(
                now,
                crate::log::now_ms(),
                config,
                self.config.server,
                AgentIdentity::new(name),
                self.rng.u64(..),
            );
            self.agents[idx].endpoint = Some(endpoint);
            self.service(idx, now);
        }
    }

    /// Window mode: every ready agent sends its first `window` reports. Rate mode: every agent's
    /// first report is scheduled at a random point of its first period, so sends spread evenly.
    fn start_reports(&mut self, now: Instant) {
        for idx in 0..self.agents.len() {
            if self.agents[idx].task_number.is_none() {
                continue;
            }
            match self.config.rate {
                None => {
                    for _ in 0..self.config.window {
                        self.send_report(idx, now);
                    }
                    self.service(idx, now);
                }
                Some(rate) => {
                    let period = Duration::from_secs_f64(1.0 / rate);
                    let offset = period.mul_f64(self.rng.f64());
                    self.set_tick(idx, now + offset);
                }
            }
        }
    }

    fn send_report(&mut self, idx: usize, now: Instant) {
        let a = &mut self.agents[idx];
        let (Some(task), Some(ep)) = (a.task_number, a.endpoint.as_mut()) else {
            return;
        };
        let report = typical_report(task, self.config.base_ms + a.sent);
        let id = ep.send(now, &Message::Metrics(report));
        a.in_flight.push_back((id, Some(now), a.sent));
        a.sent += 1;
        a.last_sent = now;
        self.control.outstanding.fetch_add(1, Ordering::Relaxed);
    }

    fn send_heartbeat(&mut self, idx: usize, now: Instant) {
        let a = &mut self.agents[idx];
        let Some(ep) = a.endpoint.as_mut() else {
            return;
        };
        if ep.is_registered() && ep.unacknowledged() == 0 {
            ep.send(
                now,
                &Message::Heartbeat(Heartbeat {
                    time_ms: crate::log::now_ms(),
                    pending_reports: 0,
                }),
            );
            a.last_sent = now;
        }
    }

    /// Runs due retransmission timers and due ticks (reports in rate mode, heartbeats).
    fn run_timers(&mut self, now: Instant, phase: Phase) {
        while let Some(&Reverse((t, idx))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            if self.agents[idx].scheduled != Some(t) {
                continue;
            }
            self.agents[idx].scheduled = None;
            if let Some(ep) = self.agents[idx].endpoint.as_mut() {
                ep.handle_timeout(now);
            }
            self.service(idx, now);
        }
        while let Some(&Reverse((t, idx))) = self.ticks.peek() {
            if t > now {
                break;
            }
            self.ticks.pop();
            if self.agents[idx].tick != Some(t) {
                continue;
            }
            self.agents[idx].tick = None;
            let a = &self.agents[idx];
            let next = match (phase, self.config.rate) {
                (Phase::Measure, Some(rate)) => {
                    self.send_report(idx, now);
                    // Keep the schedule even when late, but never burst more than one period.
                    let period = Duration::from_secs_f64(1.0 / rate);
                    (t + period).max(now)
                }
                (Phase::Drain, _) => continue,
                _ => {
                    // As a real agent does: a heartbeat when nothing was sent for one
                    // interval, checked every half interval.
                    if now.saturating_duration_since(a.last_sent) >= a.heartbeat {
                        self.send_heartbeat(idx, now);
                    }
                    now + self.agents[idx].heartbeat / 2
                }
            };
            self.set_tick(idx, next);
            self.service(idx, now);
        }
    }

    fn set_tick(&mut self, idx: usize, t: Instant) {
        self.agents[idx].tick = Some(t);
        self.ticks.push(Reverse((t, idx)));
    }

    /// Reads every datagram waiting on the socket and hands each to its endpoint.
    fn receive(&mut self, buf: &mut [u8], phase: Phase) {
        loop {
            let (n, from) = match self.socket.get_ref().recv_from(buf) {
                Ok(r) => r,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(_) => return,
            };
            let now = Instant::now();
            let bytes = &buf[..n];
            let Some(idx) = self.route(bytes) else {
                continue;
            };
            if let Some(ep) = self.agents[idx].endpoint.as_mut() {
                ep.handle_datagram(now, from, bytes);
            }
            self.service_in(idx, now, phase);
        }
    }

    /// Which agent a datagram is for.
    fn route(&self, bytes: &[u8]) -> Option<usize> {
        let header = crate::wire::Header::decode(bytes).ok()?;
        if matches!(
            header.packet_type,
            PacketType::Registered | PacketType::Refused
        ) {
            let packet = header.decode_body(bytes).ok()?;
            let instance = match packet.body {
                crate::wire::Body::Reliable {
                    message: Message::Registered(r),
                    ..
                } => r.instance,
                crate::wire::Body::Reliable {
                    message: Message::Refused(r),
                    ..
                } => r.instance,
                _ => return None,
            };
            return self.by_instance.get(&instance).copied();
        }
        self.by_id.get(&header.agent_id).copied()
    }

    fn service(&mut self, idx: usize, now: Instant) {
        let phase = self.control.phase();
        self.service_in(idx, now, phase);
    }

    /// Acts on an endpoint's events, sends what it has to send and re-arms its timer.
    fn service_in(&mut self, idx: usize, now: Instant, phase: Phase) {
        let mut more_reports = 0usize;
        loop {
            let Some(ep) = self.agents[idx].endpoint.as_mut() else {
                return;
            };
            let Some(event) = ep.poll_event() else {
                break;
            };
            match event {
                AgentEvent::Registered {
                    agent_id,
                    registered,
                } => {
                    self.result.registrations += 1;
                    let a = &mut self.agents[idx];
                    if let Some(old) = a.instance.take() {
                        self.by_instance.remove(&old);
                    }
                    if let Some(old) = a.agent_id.replace(agent_id) {
                        self.by_id.remove(&old);
                    }
                    a.heartbeat = Duration::from_millis(registered.heartbeat_ms.max(100).into());
                    self.by_id.insert(agent_id, idx);
                    self.control
                        .alertflow_port
                        .store(registered.alertflow_port, Ordering::Relaxed);
                    let mut few = self
                        .control
                        .registered
                        .lock()
                        .unwrap_or_else(|e| e.into_inner());
                    if few.len() < 64 {
                        few.push((
                            agent_id,
                            self.config.names[a.name_index].clone(),
                            registered.instance,
                        ));
                    }
                }
                AgentEvent::Message(Message::Task(assignment)) => {
                    let a = &mut self.agents[idx];
                    if a.task_number.replace(assignment.task_number).is_none() {
                        self.starting -= 1;
                        self.control.ready.fetch_add(1, Ordering::Relaxed);
                        let t = now + a.heartbeat / 2;
                        self.set_tick(idx, t);
                        if phase == Phase::Measure && self.config.rate.is_none() {
                            more_reports += self.config.window;
                        }
                    }
                }
                AgentEvent::Acknowledged(id) => {
                    let a = &mut self.agents[idx];
                    let Some(pos) = a.in_flight.iter().position(|(m, ..)| *m == id) else {
                        continue; // a heartbeat
                    };
                    let sent_at = a.in_flight.remove(pos).and_then(|(_, at, _)| at);
                    self.control.outstanding.fetch_sub(1, Ordering::Relaxed);
                    if phase == Phase::Measure {
                        if let Some(t) = sent_at {
                            self.result
                                .latencies
                                .record(now.saturating_duration_since(t));
                        }
                        self.control.acknowledged.fetch_add(1, Ordering::Relaxed);
                        if self.config.rate.is_none() {
                            more_reports += 1;
                        }
                    }
                }
                AgentEvent::Dropped(id) => {
                    let a = &mut self.agents[idx];
                    if let Some(pos) = a.in_flight.iter().position(|(m, ..)| *m == id) {
                        if let Some((.., k)) = a.in_flight.remove(pos) {
                            a.dropped.push(k);
                        }
                        self.control.outstanding.fetch_sub(1, Ordering::Relaxed);
                    }
                }
                AgentEvent::Message(_)
                | AgentEvent::ServerLost
                | AgentEvent::ServerRecovered
                | AgentEvent::Reregistering
                | AgentEvent::SwitchedServer { .. }
                | AgentEvent::Malformed(_)
                | AgentEvent::RegistrationUnanswered { .. }
                | AgentEvent::RegistrationRefused { .. } => {}
            }
        }
        for _ in 0..more_reports {
            self.send_report(idx, now);
        }
        let a = &mut self.agents[idx];
        let Some(ep) = a.endpoint.as_mut() else {
            return;
        };
        let instance = ep.registration_instance();
        if instance.is_some() && instance != a.instance {
            if let Some(old) = a.instance.take() {
                self.by_instance.remove(&old);
            }
            a.instance = instance;
            if let Some(i) = instance {
                self.by_instance.insert(i, idx);
            }
        }
        while let Some(Transmit {
            destination,
            payload,
        }) = ep.poll_transmit(now)
        {
            send_datagram(&self.socket, &payload, destination, &mut self.result);
        }
        let next = ep.poll_timeout();
        if next != a.scheduled {
            a.scheduled = next;
            if let Some(t) = next {
                self.timers.push(Reverse((t, idx)));
            }
        }
    }

    /// Waits for a datagram, the next timer or tick, or 10 ms (to notice a new phase).
    fn wait(&mut self, phase: Phase) {
        let mut deadline = Instant::now() + Duration::from_millis(10);
        if let Some(Reverse((t, _))) = self.timers.peek() {
            deadline = deadline.min(*t);
        }
        if let Some(Reverse((t, _))) = self.ticks.peek()
            && phase != Phase::Drain
        {
            deadline = deadline.min(*t);
        }
        if self.starting < self.config.max_starting && self.next_to_start < self.agents.len() {
            return;
        }
        if phase == Phase::Measure && !self.started_reports {
            return;
        }
        let socket = &self.socket;
        async_io::block_on(
            async {
                let _ = socket.readable().await;
            }
            .or(async {
                Timer::at(deadline).await;
            }),
        );
    }
}

/// Sends one datagram, waiting for room in the socket buffer when it is full.
fn send_datagram(
    socket: &Async<UdpSocket>,
    payload: &[u8],
    destination: SocketAddr,
    result: &mut WorkerResult,
) {
    for _ in 0..100 {
        match socket.get_ref().send_to(payload, destination) {
            Ok(_) => return,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let _ = async_io::block_on(async { socket.writable().await }.or(async {
                    Timer::after(Duration::from_millis(5)).await;
                    Ok(())
                }));
            }
            Err(_) => break,
        }
    }
    // Retransmission covers a datagram that could not be sent.
    result.send_errors += 1;
}
