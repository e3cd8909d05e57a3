//! One worker thread of the fleet: its simulated agents, each an [`AgentEndpoint`] on the
//! worker's UDP socket, and the loop that starts them a bounded number at a time, starts their
//! reports, runs their retransmission timers and report/heartbeat ticks, routes each datagram to
//! its endpoint and waits for the next thing to do.

use super::{Control, FleetConfig, Phase, WorkerResult, typical_report};
use crate::nettask::{AgentEndpoint, AgentIdentity, Config, Keys};
use crate::wire::{Heartbeat, Message, PacketType};
use async_io::{Async, Timer};
use futures_lite::FutureExt;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

pub(super) struct SimAgent {
    pub(super) name_index: usize,
    pub(super) endpoint: Option<AgentEndpoint>,
    pub(super) instance: Option<u64>,
    pub(super) agent_id: Option<u32>,
    pub(super) task_number: Option<u32>,
    /// The timer-heap deadline currently valid for this agent.
    pub(super) scheduled: Option<Instant>,
    /// Reports handed to NetTask (also the offset of the next report's time).
    pub(super) sent: u64,
    /// Unacknowledged reports: message id, when it was handed over (`None`: before the
    /// measurement, not timed) and the report's number.
    pub(super) in_flight: VecDeque<(u64, Option<Instant>, u64)>,
    /// Numbers of the reports NetTask gave up on (never acknowledged).
    pub(super) dropped: Vec<u64>,
    pub(super) last_sent: Instant,
    pub(super) heartbeat: Duration,
    /// The tick-heap time currently valid for this agent.
    pub(super) tick: Option<Instant>,
}

pub(super) struct Worker {
    pub(super) config: FleetConfig,
    pub(super) control: Arc<Control>,
    pub(super) socket: Async<UdpSocket>,
    pub(super) agents: Vec<SimAgent>,
    pub(super) by_id: HashMap<u32, usize>,
    pub(super) by_instance: HashMap<u64, usize>,
    pub(super) timers: BinaryHeap<Reverse<(Instant, usize)>>,
    pub(super) ticks: BinaryHeap<Reverse<(Instant, usize)>>,
    pub(super) next_to_start: usize,
    pub(super) starting: usize,
    pub(super) rng: fastrand::Rng,
    pub(super) result: WorkerResult,
    /// Whether the reports of this phase were started (window mode starts them once).
    pub(super) started_reports: bool,
}

impl Worker {
    pub(super) fn new(
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

    pub(super) fn run(mut self) -> WorkerResult {
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

    pub(super) fn send_report(&mut self, idx: usize, now: Instant) {
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

    pub(super) fn set_tick(&mut self, idx: usize, t: Instant) {
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
pub(super) fn send_datagram(
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
