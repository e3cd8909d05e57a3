//! A seeded simulated network and virtual clock for driving NetTask endpoints in tests.
//!
//! Each direction of each link drops, duplicates, delays, reorders and corrupts datagrams with
//! the probabilities of its [`LinkConfig`], drawn from one seeded generator, so a run is fully
//! determined by its seed. [`seed_from_env`] takes the seed from `NMS_SIM_SEED` when set (to
//! replay a failure) and prints it either way.

use super::{AgentEndpoint, AgentEvent, Receipt, ServerEndpoint, ServerEvent, Transmit};
use crate::wire::{Message, Registered};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How one direction of a link mistreats datagrams.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinkConfig {
    /// Probability that a datagram is lost.
    pub drop: f64,
    /// Probability that a datagram is delivered twice.
    pub duplicate: f64,
    /// Probability that a datagram gets up to `reorder_delay` of extra delay.
    pub reorder: f64,
    pub reorder_delay: Duration,
    /// Probability that one bit of a datagram is flipped.
    pub corrupt: f64,
    /// One-way delay of every datagram.
    pub delay: Duration,
}

impl LinkConfig {
    pub fn lossy(drop: f64) -> Self {
        LinkConfig {
            drop,
            delay: Duration::from_millis(10),
            ..LinkConfig::default()
        }
    }
}

/// The seed to use: `NMS_SIM_SEED` if set, else a random one; printed so a failure can be
/// replayed with `NMS_SIM_SEED=<seed> cargo test ...`.
pub fn seed_from_env(test: &str) -> u64 {
    let seed = std::env::var("NMS_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("{test}: simulation seed {seed} (replay with NMS_SIM_SEED={seed})");
    seed
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct InTransit {
    at: Instant,
    order: u64,
    from: SocketAddr,
    to: SocketAddr,
    payload: Vec<u8>,
}

/// The simulated network: datagrams in transit, ordered by arrival time.
#[derive(Debug)]
pub struct Network {
    pub rng: fastrand::Rng,
    pub now: Instant,
    queue: BinaryHeap<Reverse<InTransit>>,
    order: u64,
    /// Datagrams delivered, dropped, duplicated and corrupted so far.
    pub delivered: u64,
    pub dropped: u64,
    pub duplicated: u64,
    pub corrupted: u64,
}

impl Network {
    pub fn new(seed: u64) -> Self {
        Network {
            rng: fastrand::Rng::with_seed(seed),
            now: Instant::now(),
            queue: BinaryHeap::new(),
            order: 0,
            delivered: 0,
            dropped: 0,
            duplicated: 0,
            corrupted: 0,
        }
    }

    /// Puts a datagram on the link `link`.
    pub fn send(&mut self, link: &LinkConfig, from: SocketAddr, t: Transmit) {
        if self.rng.f64() < link.drop {
            self.dropped += 1;
            return;
        }
        let copies = if self.rng.f64() < link.duplicate {
            self.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut payload = t.payload.clone();
            if self.rng.f64() < link.corrupt && !payload.is_empty() {
                let bit = self.rng.usize(..payload.len() * 8);
                payload[bit / 8] ^= 1 << (bit % 8);
                self.corrupted += 1;
            }
            let mut delay = link.delay;
            if self.rng.f64() < link.reorder {
                delay += link.reorder_delay.mul_f64(self.rng.f64());
            }
            self.order += 1;
            self.queue.push(Reverse(InTransit {
                at: self.now + delay,
                order: self.order,
                from,
                to: t.destination,
                payload,
            }));
        }
    }

    /// Arrival time of the next datagram.
    pub fn next_arrival(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse(d)| d.at)
    }

    /// Takes the next datagram if it has arrived by `now`.
    pub fn pop_arrived(&mut self) -> Option<(SocketAddr, SocketAddr, Vec<u8>)> {
        if self.queue.peek().is_some_and(|Reverse(d)| d.at <= self.now) {
            let Reverse(d) = self.queue.pop()?;
            self.delivered += 1;
            return Some((d.from, d.to, d.payload));
        }
        None
    }
}

/// A server and several agents on a simulated network, with minimal applications: the server
/// accepts every registration (ids 1, 2, ...), and both sides record what they receive.
pub struct Harness {
    pub net: Network,
    pub server: ServerEndpoint,
    pub server_addr: SocketAddr,
    pub agents: Vec<(SocketAddr, AgentEndpoint)>,
    /// Agent to server, and server to agent.
    pub uplink: LinkConfig,
    pub downlink: LinkConfig,
    /// Messages delivered to the server application: (agent id, message).
    pub server_received: Vec<(u32, Message)>,
    /// Events other than messages seen by the server application.
    pub server_events: Vec<ServerEvent>,
    /// Events seen by each agent application.
    pub agent_events: Vec<Vec<AgentEvent>>,
    pub registered: Registered,
    /// When true, the server application ignores registrations (a dead server).
    pub server_down: bool,
    /// How long the server application takes to store a held message (an fsync) before it
    /// releases its acknowledgement.
    pub store_delay: Duration,
    /// When true, storing fails (a full disk): held messages are released as not kept.
    pub store_fails: bool,
    /// Held messages being stored: when the store finishes, the receipt, the agent id, the
    /// message.
    storing: Vec<(Instant, Receipt, u32, Message)>,
    /// Held messages whose storing failed, counted.
    pub store_refusals: usize,
}

impl Harness {
    pub fn new(
        seed: u64,
        server: ServerEndpoint,
        uplink: LinkConfig,
        downlink: LinkConfig,
    ) -> Self {
        let config = server.config().clone();
        Harness {
            net: Network::new(seed),
            server,
            server_addr: "10.0.0.1:8081".parse().expect("literal address"),
            agents: Vec::new(),
            uplink,
            downlink,
            server_received: Vec::new(),
            server_events: Vec::new(),
            agent_events: Vec::new(),
            registered: Registered {
                instance: 0,
                alertflow_port: 8080,
                heartbeat_ms: 1000,
                timeout_ms: config.initial_timeout.as_millis() as u32,
                max_retransmissions: config.max_retransmissions as u8,
                server_time_ms: 0,
            },
            server_down: false,
            store_delay: Duration::ZERO,
            store_fails: false,
            storing: Vec::new(),
            store_refusals: 0,
        }
    }

    /// Releases the held acknowledgements whose store finished by now.
    fn finish_stores(&mut self) -> bool {
        let now = self.net.now;
        let due: Vec<_> = self.storing.extract_if(.., |(at, ..)| *at <= now).collect();
        let progressed = !due.is_empty();
        for (_, receipt, agent_id, message) in due {
            if self.store_fails {
                self.store_refusals += 1;
                self.server.release(receipt, false);
            } else {
                self.server_received.push((agent_id, message));
                self.server.release(receipt, true);
            }
        }
        progressed
    }

    /// Adds an agent endpoint at a new address; returns its index.
    pub fn add_agent(&mut self, endpoint: AgentEndpoint) -> usize {
        let i = self.agents.len();
        let addr: SocketAddr = format!("10.0.1.{}:40000", i + 1)
            .parse()
            .expect("literal address");
        self.agents.push((addr, endpoint));
        self.agent_events.push(Vec::new());
        i
    }

    /// Moves every endpoint's pending output onto the network and runs the applications.
    fn flush(&mut self) {
        loop {
            let mut progressed = self.finish_stores();
            while let Some(t) = self.server.poll_transmit(self.net.now) {
                self.net.send(&self.downlink, self.server_addr, t);
                progressed = true;
            }
            while let Some(e) = self.server.poll_event() {
                progressed = true;
                match e {
                    ServerEvent::Registration { from, registration } => {
                        if self.server_down {
                            continue;
                        }
                        let id = agent_id_for(&registration.name);
                        let mut reply = self.registered.clone();
                        reply.instance = registration.instance;
                        self.server.accept_registration(
                            self.net.now,
                            from,
                            id,
                            &registration,
                            reply,
                        );
                    }
                    ServerEvent::Message {
                        agent_id,
                        message,
                        receipt: Some(receipt),
                        ..
                    } => {
                        let at = self.net.now + self.store_delay;
                        self.storing.push((at, receipt, agent_id, message));
                    }
                    ServerEvent::Message {
                        agent_id, message, ..
                    } => {
                        self.server_received.push((agent_id, message));
                    }
                    other => self.server_events.push(other),
                }
            }
            for i in 0..self.agents.len() {
                let (addr, agent) = &mut self.agents[i];
                while let Some(t) = agent.poll_transmit(self.net.now) {
                    self.net.send(&self.uplink, *addr, t);
                    progressed = true;
                }
                while let Some(e) = agent.poll_event() {
                    self.agent_events[i].push(e);
                    progressed = true;
                }
            }
            if !progressed {
                break;
            }
        }
    }

    /// Advances the virtual clock to `until`, delivering datagrams and firing timers in order.
    pub fn run_until(&mut self, until: Instant) {
        self.flush();
        loop {
            let mut next = self.net.next_arrival();
            let mut consider = |t: Option<Instant>| {
                if let Some(t) = t {
                    next = Some(next.map_or(t, |n: Instant| n.min(t)));
                }
            };
            consider(self.server.poll_timeout());
            consider(self.storing.iter().map(|(at, ..)| *at).min());
            for (_, a) in &self.agents {
                consider(a.poll_timeout());
            }
            let Some(at) = next else {
                self.net.now = until;
                return;
            };
            if at > until {
                self.net.now = until;
                return;
            }
            self.net.now = self.net.now.max(at);
            let now = self.net.now;
            while let Some((from, to, payload)) = self.net.pop_arrived() {
                if to == self.server_addr {
                    if !self.server_down {
                        self.server.handle_datagram(now, from, &payload);
                    }
                } else if let Some((_, agent)) = self.agents.iter_mut().find(|(a, _)| *a == to) {
                    agent.handle_datagram(now, from, &payload);
                }
            }
            if self.server.poll_timeout().is_some_and(|t| t <= now) {
                self.server.handle_timeout(now);
            }
            for (_, a) in &mut self.agents {
                if a.poll_timeout().is_some_and(|t| t <= now) {
                    a.handle_timeout(now);
                }
            }
            self.flush();
        }
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.net.now + d;
        self.run_until(until);
    }

    /// Runs until `done` holds or `limit` of virtual time passed; returns whether it held.
    pub fn run_while(
        &mut self,
        limit: Duration,
        step: Duration,
        mut done: impl FnMut(&Self) -> bool,
    ) -> bool {
        let deadline = self.net.now + limit;
        while self.net.now < deadline {
            if done(self) {
                return true;
            }
            self.run_for(step);
        }
        done(self)
    }
}

/// Agent ids in the harness: a stable function of the name (`a7` gets id 8), like a registry.
fn agent_id_for(name: &str) -> u32 {
    name.trim_start_matches(|c: char| !c.is_ascii_digit())
        .parse::<u32>()
        .map_or(1, |n| n + 1)
}
