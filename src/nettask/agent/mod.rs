//! The agent's NetTask endpoint: registration with the server, then one `Session` with it.
//!
//! The agent repeats REGISTRATION (with backoff, forever) until a REGISTERED with the same
//! `instance` arrives; messages sent before that wait in a bounded backlog. When the server
//! answers a packet with NOACK `unknown_agent` (it restarted and forgot the session), the agent
//! registers again with a new instance and sends every unacknowledged message again in the new
//! session. The agent needs no inbound port: it only answers the server's address.
//!
//! With a key, every packet of a session is tagged with the session key (the pre-shared key and
//! the registration instance, [`crate::wire::Key::session`]); a NOACK `unknown agent` is only
//! believed when it is bound to the packet it answers. A REFUSED answer to the registration
//! (its time is too far from the server's clock, it is not newer than the last one the server
//! accepted, or the server takes no new agents) is reported and a new registration, with a new
//! instance and the current time, starts after a pause.
//!
//! An agent given several servers ([`AgentEndpoint::with_servers`]) registers with the first
//! that answers: after [`FAILOVER_ATTEMPTS`] unanswered registrations it tries the next, in
//! turn. When the session's server is lost it moves to the next server at once, carrying
//! every unacknowledged message into the new session. With `prefer_first`, an agent served by
//! another server tries the first again every [`PREFER_FIRST_EVERY`], and goes on to the
//! others if it still does not answer.

mod event;
mod registration;

pub use event::{AgentEvent, AgentIdentity};

use super::session::{Outbound, Session, SessionEvent};
use super::{Config, Stats, Transmit};
use crate::wire::packet::RefusalReason;
use crate::wire::{Body, Header, Message, NoackReason, Packet, PacketType};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The pause before registering again after a REFUSED.
const REFUSED_PAUSE: Duration = Duration::from_secs(5);
/// Registrations sent to one server without an answer before the next server is tried (with
/// the default 200 ms timeout: about 1.4 s).
pub const FAILOVER_ATTEMPTS: u32 = 4;
/// How often an agent served by another server tries the first again, with `prefer_first`.
pub const PREFER_FIRST_EVERY: Duration = Duration::from_secs(30);

#[derive(Debug)]
enum State {
    Registering {
        instance: u64,
        time_ms: u64,
        attempts: u32,
        next_attempt: Instant,
        packet: Vec<u8>,
    },
    Registered {
        session: Box<Session>,
    },
}

/// The agent side of NetTask.
#[derive(Debug)]
pub struct AgentEndpoint {
    config: Config,
    server: SocketAddr,
    /// Every server the agent may use, in order of preference; `server` is one of them.
    servers: Vec<SocketAddr>,
    current: usize,
    prefer_first: bool,
    /// When to try the first server again (with `prefer_first`, while on another).
    try_first_at: Option<Instant>,
    /// The latest time the endpoint was given.
    last_now: Instant,
    identity: AgentIdentity,
    state: State,
    backlog: VecDeque<Outbound>,
    immediate: VecDeque<Transmit>,
    events: VecDeque<AgentEvent>,
    next_message: u64,
    next_seq: u16,
    agent_id: u32,
    rng: fastrand::Rng,
    wall_base_ms: u64,
    clock_base: Instant,
    stats: Stats,
    /// Refusals in a row, and the reason of the last one.
    refusals: u32,
    last_refusal: Option<RefusalReason>,
}

impl AgentEndpoint {
    /// Creates the endpoint and queues the first REGISTRATION. `wall_ms` is the Unix time in
    /// milliseconds at `now`; `seed` seeds the registration nonces.
    pub fn new(
        now: Instant,
        wall_ms: u64,
        config: Config,
        server: SocketAddr,
        identity: AgentIdentity,
        seed: u64,
    ) -> Self {
        Self::with_servers(now, wall_ms, config, vec![server], false, identity, seed)
    }

    /// An endpoint that may use any of `servers` (at least one), in that order of preference;
    /// with `prefer_first` it goes back to the first when that answers again.
    pub fn with_servers(
        now: Instant,
        wall_ms: u64,
        config: Config,
        servers: Vec<SocketAddr>,
        prefer_first: bool,
        identity: AgentIdentity,
        seed: u64,
    ) -> Self {
        let servers = if servers.is_empty() {
            vec![SocketAddr::from(([127, 0, 0, 1], 8081))]
        } else {
            servers
        };
        let mut endpoint = AgentEndpoint {
            config,
            server: servers[0],
            servers,
            current: 0,
            prefer_first,
            try_first_at: None,
            last_now: now,
            identity,
            state: State::Registering {
                instance: 0,
                time_ms: 0,
                attempts: 0,
                next_attempt: now,
                packet: Vec::new(),
            },
            backlog: VecDeque::new(),
            immediate: VecDeque::new(),
            events: VecDeque::new(),
            next_message: 1,
            next_seq: 0,
            agent_id: 0,
            rng: fastrand::Rng::with_seed(seed),
            wall_base_ms: wall_ms,
            clock_base: now,
            stats: Stats::default(),
            refusals: 0,
            last_refusal: None,
        };
        endpoint.start_registration(now);
        endpoint
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// The server in use now, and all of them.
    pub fn servers(&self) -> &[SocketAddr] {
        &self.servers
    }

    /// The id the server assigned, once registered.
    pub fn agent_id(&self) -> Option<u32> {
        match self.state {
            State::Registered { .. } => Some(self.agent_id),
            State::Registering { .. } => None,
        }
    }

    /// The `instance` of the registration in progress, which the server's REGISTERED repeats; a
    /// process running many endpoints over one socket uses it to route that answer.
    pub fn registration_instance(&self) -> Option<u64> {
        match self.state {
            State::Registering { instance, .. } => Some(instance),
            State::Registered { .. } => None,
        }
    }

    pub fn is_registered(&self) -> bool {
        matches!(self.state, State::Registered { .. })
    }

    /// Whether the session's server is currently considered lost.
    pub fn server_lost(&self) -> bool {
        match &self.state {
            State::Registered { session, .. } => session.is_lost(),
            State::Registering { .. } => false,
        }
    }

    /// Messages not yet acknowledged (queued, in flight, or waiting for registration).
    pub fn unacknowledged(&self) -> usize {
        self.backlog.len()
            + match &self.state {
                State::Registered { session, .. } => session.unacknowledged(),
                State::Registering { .. } => 0,
            }
    }

    fn wall_ms(&self, now: Instant) -> u64 {
        self.wall_base_ms + now.saturating_duration_since(self.clock_base).as_millis() as u64
    }

    /// The key of the session that registration `instance` starts (or started).
    fn session_key(&self, instance: u64) -> Option<crate::wire::Key> {
        self.config.keys.session_key(&self.identity.name, instance)
    }

    /// Queues a message for the server; returns its id, reported again in `Acknowledged`.
    pub fn send(&mut self, now: Instant, message: &Message) -> u64 {
        self.last_now = self.last_now.max(now);
        let mut body = Vec::new();
        message.encode_body(&mut body);
        let id = self.next_message;
        self.next_message += 1;
        let outbound = Outbound {
            id,
            kind: message.packet_type(),
            body,
        };
        match &mut self.state {
            State::Registered { session, .. } => {
                session.send(outbound, &mut self.stats);
                self.drain_session_events();
            }
            State::Registering { .. } => {
                self.backlog.push_back(outbound);
                while self.backlog.len() > self.config.max_queued_messages {
                    if let Some(old) = self.backlog.pop_front() {
                        self.stats.dropped_messages += 1;
                        self.events.push_back(AgentEvent::Dropped(old.id));
                    }
                }
            }
        }
        id
    }

    /// Handles one received datagram.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        self.last_now = self.last_now.max(now);
        self.stats.datagrams_received += 1;
        let Some(header) = self.authentic_header(from, bytes) else {
            return;
        };
        let packet = match header.decode_body(bytes) {
            Ok(p) => p,
            Err(e) => {
                match &mut self.state {
                    State::Registered { session, .. } if header.packet_type.is_reliable() => {
                        session.on_malformed(now, header.seq, &e, &mut self.stats)
                    }
                    _ => self.stats.malformed += 1,
                }
                self.drain_session_events();
                return;
            }
        };
        match packet.body {
            Body::Reliable {
                message: Message::Registered(registered),
                ..
            } => self.on_registered(packet.agent_id, registered),
            Body::Reliable {
                message: Message::Refused(refused),
                ..
            } => self.on_refused(now, refused),
            _ => self.handle_session_packet(now, packet),
        }
    }

    /// The header of a datagram from the server whose tag verifies; `None`, counted, for
    /// anything else. A reliable packet of the session with a bad tag is answered with a NOACK.
    fn authentic_header(&mut self, from: SocketAddr, bytes: &[u8]) -> Option<Header> {
        if from != self.server || bytes.len() > self.config.max_datagram {
            self.stats.malformed += 1;
            return None;
        }
        let Ok(header) = Header::decode(bytes) else {
            self.stats.malformed += 1;
            return None;
        };
        let key = self.verifying_key(&header, bytes);
        if header.verify_tag(bytes, key.as_ref()).is_err() {
            self.stats.bad_tags += 1;
            if let State::Registered { session, .. } = &self.state
                && header.packet_type.is_reliable()
                && header.agent_id == self.agent_id
            {
                let payload = session.noack(header.seq, NoackReason::BadTag);
                self.immediate.push_back(Transmit {
                    destination: self.server,
                    payload,
                });
            }
            return None;
        }
        Some(header)
    }

    /// Hands a packet of the session (not REGISTERED, not REFUSED) to it.
    fn handle_session_packet(&mut self, now: Instant, packet: Packet) {
        let State::Registered { session, .. } = &mut self.state else {
            // Session traffic before registration completes belongs to an old session.
            return;
        };
        if packet.agent_id != self.agent_id {
            self.stats.malformed += 1;
            return;
        }
        match packet.body {
            Body::Ack(ack) => session.on_ack(now, &ack, &mut self.stats),
            Body::Noack(noack) => match noack.reason {
                NoackReason::BadTag => session.on_noack_bad_tag(now, &noack),
                NoackReason::UnknownAgent => {
                    self.reregister(now);
                    return;
                }
                NoackReason::Malformed => {}
            },
            Body::Reliable { seq, message } => {
                if matches!(message, Message::Registration(_)) {
                    self.stats.malformed += 1;
                    self.events.push_back(AgentEvent::Malformed(format!(
                        "seq {seq}: the server sent a REGISTRATION, which only agents send"
                    )));
                } else {
                    session.on_reliable(now, seq, message, &mut self.stats);
                }
            }
        }
        self.drain_session_events();
    }

    /// The key a packet from the server must be tagged with: the key of the registration in
    /// progress for REGISTERED and REFUSED; for a NOACK `unknown agent`, the key bound to the
    /// packet it refuses (so one recorded earlier cannot be replayed to force registrations);
    /// the session key for the rest. `None` without keys, and when no key can apply.
    fn verifying_key(&self, header: &Header, bytes: &[u8]) -> Option<crate::wire::Key> {
        let psk = self.config.keys.for_agent(&self.identity.name)?;
        match (&self.state, header.packet_type) {
            (State::Registering { instance, .. }, PacketType::Registered | PacketType::Refused) => {
                Some(psk.session(*instance))
            }
            (State::Registered { session }, PacketType::Noack)
                if bytes.get(header.body_start) == Some(&(NoackReason::UnknownAgent as u8)) =>
            {
                // No packet of ours with that number: an impossible tag, so it is refused.
                let tag = session.sent_tag(header.seq).unwrap_or(&[]);
                Some(psk.refusal(tag))
            }
            (State::Registered { session }, _) => session.key().cloned(),
            // Session traffic before registration completes: no key can verify it.
            (State::Registering { instance, .. }, _) => Some(psk.session(!*instance)),
        }
    }

    fn drain_session_events(&mut self) {
        let State::Registered { session, .. } = &mut self.state else {
            return;
        };
        let mut lost = false;
        while let Some(e) = session.events.pop_front() {
            lost |= matches!(e, SessionEvent::Lost);
            self.events.push_back(match e {
                SessionEvent::Message(m, _) => AgentEvent::Message(m),
                SessionEvent::Acknowledged(id) => AgentEvent::Acknowledged(id),
                SessionEvent::Dropped(id) => AgentEvent::Dropped(id),
                SessionEvent::Lost => AgentEvent::ServerLost,
                SessionEvent::Recovered => AgentEvent::ServerRecovered,
                SessionEvent::Malformed(reason) => AgentEvent::Malformed(reason),
            });
        }
        if lost && self.has_others() {
            // Another server takes over: no waiting for this one to come back.
            self.switch_to(self.last_now, self.current + 1);
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        if let Some(t) = self.immediate.pop_front() {
            return Some(t);
        }
        match &mut self.state {
            State::Registering {
                attempts,
                next_attempt,
                packet,
                ..
            } => {
                if *next_attempt > now {
                    return None;
                }
                let backoff = self
                    .config
                    .initial_timeout
                    .saturating_mul(1 << (*attempts).min(16))
                    .min(self.config.max_timeout);
                *attempts += 1;
                *next_attempt = now + backoff;
                if *attempts == 5 || (*attempts > 5 && *attempts % 12 == 5) {
                    self.events.push_back(AgentEvent::RegistrationUnanswered {
                        attempts: *attempts,
                    });
                }
                self.stats.packets_sent += 1;
                Some(Transmit {
                    destination: self.server,
                    payload: packet.clone(),
                })
            }
            State::Registered { session, .. } => {
                let payload = session.poll_transmit(now, &mut self.stats)?;
                Some(Transmit {
                    destination: self.server,
                    payload,
                })
            }
        }
    }

    /// When `handle_timeout` must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let own = match &self.state {
            State::Registering { next_attempt, .. } => Some(*next_attempt),
            State::Registered { session, .. } => session.poll_timeout(),
        };
        match (own, self.try_first_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs the timers that are due: retransmissions, and moving to another server when the
    /// registrations with this one go unanswered (or, with `prefer_first`, back to the first).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_now = self.last_now.max(now);
        match &mut self.state {
            State::Registered { session, .. } => {
                session.handle_timeout(now, &mut self.stats);
                self.drain_session_events();
            }
            State::Registering {
                attempts,
                next_attempt,
                ..
            } => {
                if *attempts >= FAILOVER_ATTEMPTS && now >= *next_attempt && self.has_others() {
                    self.switch_to(now, self.current + 1);
                }
            }
        }
        if let Some(at) = self.try_first_at
            && now >= at
        {
            self.try_first_at = None;
            if self.current != 0 && self.is_registered() {
                self.switch_to(now, 0);
            }
        }
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<AgentEvent> {
        self.events.pop_front()
    }
}
