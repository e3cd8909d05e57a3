//! A seeded UDP fault proxy for NetTask, run inside the test process on threads.
//!
//! Agents send to the proxy's address; the proxy forwards each agent's datagrams to the server
//! from an upstream socket of its own for that agent (NAT-style: one upstream socket per agent
//! source address), and the server's answers back to the agent from the proxy's address. Each
//! direction drops and duplicates datagrams with the probabilities of its [`Faults`], delays
//! them (a random extra delay up to a bound, which reorders) and corrupts a share of them (one
//! flipped bit); the faults can be changed while the proxy runs. Every decision comes from a seeded generator per flow and
//! direction, so a seed reproduces the decisions for the n-th datagram of a flow; the processes
//! around the proxy are real, so their timing (and thus which datagram is the n-th) may differ.
//! The proxy counts what it did and can record what the agents sent, and send a recorded
//! datagram again from the same upstream address (a replay).

use super::seed::derive_seed;
use super::threads::{Workers, lock};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often blocked threads look at the stop flag.
const POLL: Duration = Duration::from_millis(50);

/// What one direction does to the datagrams it carries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Faults {
    /// Probability that a datagram is dropped.
    pub drop: f64,
    /// Probability that a datagram is sent twice.
    pub duplicate: f64,
    /// Share of the datagrams sent on whose one random bit is flipped. Sampled in blocks: of
    /// every `round(1 / corrupt)` copies a flow sends in this direction, exactly one, at a
    /// seeded random place in the block, is corrupted, so a short run sees the rate too.
    pub corrupt: f64,
    /// Each copy waits a random 0..=`max_delay_ms` milliseconds (0: none), which reorders.
    pub max_delay_ms: u64,
}

impl Faults {
    /// A clean link.
    pub const NONE: Faults = Faults {
        drop: 0.0,
        duplicate: 0.0,
        corrupt: 0.0,
        max_delay_ms: 0,
    };

    /// The hard link of the end-to-end tests: `drop` loss, 5% duplicates, 2% corruption, up to
    /// 40 ms of extra delay.
    pub fn lossy(drop: f64) -> Faults {
        Faults {
            drop,
            duplicate: 0.05,
            corrupt: 0.02,
            max_delay_ms: 40,
        }
    }
}

/// Which way a datagram goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    ToServer,
    ToAgent,
}

/// What the proxy did in one direction.
#[derive(Debug, Default)]
struct DirectionCounters {
    received: AtomicU64,
    sent: AtomicU64,
    dropped: AtomicU64,
    duplicated: AtomicU64,
    delayed: AtomicU64,
    corrupted: AtomicU64,
}

/// A snapshot of [`DirectionCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub received: u64,
    pub sent: u64,
    pub dropped: u64,
    pub duplicated: u64,
    pub delayed: u64,
    pub corrupted: u64,
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "received {}, sent {}, dropped {}, duplicated {}, delayed {}, corrupted {}",
            self.received, self.sent, self.dropped, self.duplicated, self.delayed, self.corrupted
        )
    }
}

impl DirectionCounters {
    fn snapshot(&self) -> Counts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Counts {
            received: get(&self.received),
            sent: get(&self.sent),
            dropped: get(&self.dropped),
            duplicated: get(&self.duplicated),
            delayed: get(&self.delayed),
            corrupted: get(&self.corrupted),
        }
    }
}

/// A datagram as it reached the proxy (before any fault).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub direction: Direction,
    /// The agent's address (its source, or the destination of what the server sent it).
    pub agent: SocketAddr,
    pub bytes: Vec<u8>,
}

/// One agent source address and its upstream socket.
struct Flow {
    agent: SocketAddr,
    upstream: Arc<UdpSocket>,
    to_server: Mutex<FlowDirection>,
    to_agent: Mutex<FlowDirection>,
}

/// The fault state of one direction of a flow.
struct FlowDirection {
    rng: fastrand::Rng,
    /// Copies sent so far.
    sent: u64,
    /// Index within the current corruption block of the copy to corrupt.
    corrupt_at: Option<u64>,
}

impl FlowDirection {
    fn new(seed: u64) -> Self {
        FlowDirection {
            rng: fastrand::Rng::with_seed(seed),
            sent: 0,
            corrupt_at: None,
        }
    }

    /// Whether the next copy sent is the one of its block to corrupt.
    fn corrupt_next(&mut self, rate: f64) -> bool {
        if rate <= 0.0 {
            return false;
        }
        let block = (1.0 / rate).round().max(1.0) as u64;
        let index = self.sent % block;
        if index == 0 {
            self.corrupt_at = Some(self.rng.u64(..block));
        }
        self.sent += 1;
        self.corrupt_at == Some(index)
    }
}

/// A datagram waiting in the delay line.
struct Delayed {
    at: Instant,
    order: u64,
    socket: Arc<UdpSocket>,
    destination: SocketAddr,
    bytes: Vec<u8>,
}

impl PartialEq for Delayed {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}
impl Eq for Delayed {}
impl PartialOrd for Delayed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Delayed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.order).cmp(&(other.at, other.order))
    }
}

struct Inner {
    name: String,
    seed: u64,
    server: SocketAddr,
    listener: Arc<UdpSocket>,
    faults: Mutex<(Faults, Faults)>,
    flows: Mutex<HashMap<SocketAddr, Arc<Flow>>>,
    workers: Workers,
    to_server: DirectionCounters,
    to_agent: DirectionCounters,
    recording: AtomicBool,
    recorded: Mutex<Vec<Recorded>>,
    delay_line: Mutex<Sender<Delayed>>,
    delay_order: AtomicU64,
}

/// The proxy; dropping it stops its threads.
pub struct UdpFaultProxy {
    inner: Arc<Inner>,
    address: SocketAddr,
}

impl UdpFaultProxy {
    /// Starts a proxy on 127.0.0.1 (a free port) in front of `server`. The seed is derived
    /// from `NMS_FAULT_SEED` (or a random one) and `name`, and printed.
    pub fn start(
        name: &str,
        server: SocketAddr,
        to_server: Faults,
        to_agent: Faults,
    ) -> std::io::Result<UdpFaultProxy> {
        let seed = derive_seed(name);
        let listener = UdpSocket::bind("127.0.0.1:0")?;
        listener.set_read_timeout(Some(POLL))?;
        let address = listener.local_addr()?;
        let (delay_tx, delay_rx) = mpsc::channel();
        let inner = Arc::new(Inner {
            name: name.to_string(),
            seed,
            server,
            listener: Arc::new(listener),
            faults: Mutex::new((to_server, to_agent)),
            flows: Mutex::new(HashMap::new()),
            workers: Workers::default(),
            to_server: DirectionCounters::default(),
            to_agent: DirectionCounters::default(),
            recording: AtomicBool::new(false),
            recorded: Mutex::new(Vec::new()),
            delay_line: Mutex::new(delay_tx),
            delay_order: AtomicU64::new(0),
        });
        eprintln!(
            "udp fault proxy {name}: {address} -> {server}, seed {seed:#018x}; \
             to server {to_server:?}, to agents {to_agent:?}"
        );
        let downstream = inner.clone();
        inner.workers.spawn(move || downstream.run_downstream());
        let delays = inner.clone();
        inner.workers.spawn(move || delays.run_delay_line(delay_rx));
        Ok(UdpFaultProxy { inner, address })
    }

    /// Where agents send.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The seed of this proxy's generators.
    pub fn seed(&self) -> u64 {
        self.inner.seed
    }

    /// Changes the faults of both directions from now on (datagrams already delayed still
    /// arrive).
    pub fn set_faults(&self, to_server: Faults, to_agent: Faults) {
        *lock(&self.inner.faults) = (to_server, to_agent);
    }

    /// What the proxy did so far in one direction.
    pub fn counts(&self, direction: Direction) -> Counts {
        match direction {
            Direction::ToServer => self.inner.to_server.snapshot(),
            Direction::ToAgent => self.inner.to_agent.snapshot(),
        }
    }

    /// Starts (or stops) keeping a copy of every datagram, both ways, before any fault.
    pub fn record(&self, on: bool) {
        self.inner.recording.store(on, Ordering::Relaxed);
    }

    /// The datagrams recorded so far, in the order they reached the proxy.
    pub fn recorded(&self) -> Vec<Recorded> {
        lock(&self.inner.recorded).clone()
    }

    /// Sends `bytes` to the server from the upstream socket of `agent`, as if the agent had
    /// sent them, with no fault applied.
    pub fn inject(&self, agent: SocketAddr, bytes: &[u8]) -> std::io::Result<()> {
        let flow = lock(&self.inner.flows)
            .get(&agent)
            .cloned()
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("no flow from {agent} through the proxy"),
                )
            })?;
        flow.upstream.send_to(bytes, self.inner.server).map(|_| ())
    }

    /// A one-line summary of the counters of both directions.
    pub fn summary(&self) -> String {
        format!(
            "udp fault proxy {} (seed {:#018x}): to server: {}; to agents: {}",
            self.inner.name,
            self.inner.seed,
            self.counts(Direction::ToServer),
            self.counts(Direction::ToAgent)
        )
    }
}

impl Drop for UdpFaultProxy {
    fn drop(&mut self) {
        self.inner.workers.stop_and_join();
    }
}

impl Inner {
    fn stopped(&self) -> bool {
        self.workers.stopped()
    }

    /// Agents -> server.
    fn run_downstream(self: Arc<Self>) {
        let mut buf = vec![0u8; 65536];
        while !self.stopped() {
            let (n, from) = match self.listener.recv_from(&mut buf) {
                Ok(x) => x,
                Err(_) => continue, // timeout (or an ICMP error from a gone agent)
            };
            let Some(flow) = self.flow(from) else {
                continue;
            };
            self.carry(Direction::ToServer, &flow, &buf[..n]);
        }
    }

    /// The flow of an agent address, made on its first datagram.
    fn flow(self: &Arc<Self>, agent: SocketAddr) -> Option<Arc<Flow>> {
        let mut flows = lock(&self.flows);
        if let Some(f) = flows.get(&agent) {
            return Some(f.clone());
        }
        let upstream = UdpSocket::bind("127.0.0.1:0").ok()?;
        upstream.set_read_timeout(Some(POLL)).ok()?;
        let index = flows.len() as u64;
        let flow_seed = self
            .seed
            .wrapping_add(index.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let flow = Arc::new(Flow {
            agent,
            upstream: Arc::new(upstream),
            to_server: Mutex::new(FlowDirection::new(flow_seed)),
            to_agent: Mutex::new(FlowDirection::new(!flow_seed)),
        });
        flows.insert(agent, flow.clone());
        let (inner, reader_flow) = (self.clone(), flow.clone());
        self.workers.spawn(move || inner.run_upstream(&reader_flow));
        Some(flow)
    }

    /// Server -> one agent.
    fn run_upstream(&self, flow: &Flow) {
        let mut buf = vec![0u8; 65536];
        while !self.stopped() {
            match flow.upstream.recv_from(&mut buf) {
                Ok((n, from)) if from == self.server => {
                    self.carry(Direction::ToAgent, flow, &buf[..n])
                }
                _ => continue,
            }
        }
    }

    /// Applies one direction's faults to a datagram and sends what is left.
    fn carry(&self, direction: Direction, flow: &Flow, bytes: &[u8]) {
        let (faults, counters, flow_direction, socket, destination) = match direction {
            Direction::ToServer => (
                lock(&self.faults).0,
                &self.to_server,
                &flow.to_server,
                &flow.upstream,
                self.server,
            ),
            Direction::ToAgent => (
                lock(&self.faults).1,
                &self.to_agent,
                &flow.to_agent,
                &self.listener,
                flow.agent,
            ),
        };
        counters.received.fetch_add(1, Ordering::Relaxed);
        if self.recording.load(Ordering::Relaxed) {
            lock(&self.recorded).push(Recorded {
                direction,
                agent: flow.agent,
                bytes: bytes.to_vec(),
            });
        }
        let mut state = lock(flow_direction);
        let state = &mut *state;
        if state.rng.f64() < faults.drop {
            counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let copies = if state.rng.f64() < faults.duplicate {
            counters.duplicated.fetch_add(1, Ordering::Relaxed);
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut copy = bytes.to_vec();
            if state.corrupt_next(faults.corrupt) && !copy.is_empty() {
                let bit = state.rng.usize(..copy.len() * 8);
                copy[bit / 8] ^= 1 << (bit % 8);
                counters.corrupted.fetch_add(1, Ordering::Relaxed);
            }
            let delay = if faults.max_delay_ms > 0 {
                state.rng.u64(0..=faults.max_delay_ms)
            } else {
                0
            };
            counters.sent.fetch_add(1, Ordering::Relaxed);
            if delay == 0 {
                let _ = socket.send_to(&copy, destination);
            } else {
                counters.delayed.fetch_add(1, Ordering::Relaxed);
                let _ = lock(&self.delay_line).send(Delayed {
                    at: Instant::now() + Duration::from_millis(delay),
                    order: self.delay_order.fetch_add(1, Ordering::Relaxed),
                    socket: socket.clone(),
                    destination,
                    bytes: copy,
                });
            }
        }
    }

    /// Sends delayed datagrams when their time comes.
    fn run_delay_line(&self, incoming: Receiver<Delayed>) {
        let mut waiting: BinaryHeap<Reverse<Delayed>> = BinaryHeap::new();
        while !self.stopped() {
            let now = Instant::now();
            while waiting.peek().is_some_and(|d| d.0.at <= now) {
                if let Some(Reverse(d)) = waiting.pop() {
                    let _ = d.socket.send_to(&d.bytes, d.destination);
                }
            }
            let wait = waiting
                .peek()
                .map_or(POLL, |d| d.0.at.saturating_duration_since(now).min(POLL));
            match incoming.recv_timeout(wait) {
                Ok(d) => waiting.push(Reverse(d)),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }
}
