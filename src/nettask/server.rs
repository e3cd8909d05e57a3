//! The server's NetTask endpoint: one [`Session`] per registered agent, keyed by agent id so an
//! agent behind NAT keeps its session when its address changes.
//!
//! REGISTRATION and REGISTERED are not acknowledged: the agent repeats its REGISTRATION until a
//! REGISTERED with the same `instance` answers it, and the server answers every copy. A packet
//! from an agent id without a session (for example after a server restart) is answered with a
//! NOACK `unknown_agent`, neither acknowledged nor delivered, and the agent registers again.
//!
//! With keys, every packet of a session is tagged with that session's key (derived from the
//! agent's pre-shared key and the registration instance), so a packet recorded in another
//! session never verifies; a name without a key is refused; a REGISTRATION must be dated within
//! [`Config::registration_window`] of the server's clock and be newer than the last one accepted
//! for its name, or it is answered with REFUSED. An agent's address moves only on a packet that
//! verifies and is new (after the duplicate check), so a replay from elsewhere moves nothing.
//! Without keys nothing is authentic; a session then only takes packets from the address it was
//! registered from (others get NOACK `unknown agent`, and a moved agent registers again), so a
//! forger elsewhere cannot use up its sequence numbers.

use super::reassembly::ReassemblyBudget;
use super::session::{Arrival, MAX_HEADER_LEN, Outbound, Session, SessionEvent};
use super::{Config, Stats, Transmit};
use crate::wire::packet::{RefusalReason, Refused};
use crate::wire::{
    Body, Header, Message, Noack, NoackReason, Packet, PacketType, Registered, Registration,
    TAG_LEN,
};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Replaced registration instances remembered per agent, to refuse their replays.
const RETIRED_INSTANCES: usize = 16;

/// Registrations waiting for the application's answer, at most (a flood is forgotten).
const MAX_PENDING_REGISTRATIONS: usize = 100_000;

/// What the server endpoint reports.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    /// An agent asks to register; answer with [`ServerEndpoint::accept_registration`].
    Registration {
        from: SocketAddr,
        registration: Registration,
    },
    /// A message from a registered agent, delivered once. A message of one of the
    /// configuration's `held_types` carries a receipt: it is acknowledged only when the
    /// application calls [`ServerEndpoint::release`] with it.
    Message {
        agent_id: u32,
        from: SocketAddr,
        message: Message,
        receipt: Option<Receipt>,
    },
    /// Every packet of message `id` sent to `agent_id` was acknowledged.
    Acknowledged { agent_id: u32, id: u64 },
    /// Message `id` was dropped from a full queue.
    Dropped { agent_id: u32, id: u64 },
    /// The agent stopped answering.
    PeerLost { agent_id: u32 },
    /// A lost agent answered again.
    PeerRecovered { agent_id: u32 },
    /// A registration was refused: a name without a key, a wrong tag (the agent uses another
    /// key, or none), a time outside the window, or a replay. Reported at most once a minute
    /// per agent name; the counters in [`Stats`] count every one.
    RegistrationRefused {
        from: SocketAddr,
        name: String,
        reason: String,
    },
    /// A packet with a valid tag that could not be used.
    Malformed {
        from: SocketAddr,
        agent_id: u32,
        reason: String,
    },
}

/// The held acknowledgement of one delivered message (see [`ServerEndpoint::release`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Receipt {
    pub agent_id: u32,
    /// The registration instance of the session that delivered it.
    instance: u64,
    number: u32,
}

/// Why a message could not be queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("agent {0} has no session (not registered)")]
    UnknownAgent(u32),
    #[error("message of {0} bytes exceeds the limit of {1} bytes")]
    TooLarge(usize, usize),
}

#[derive(Debug)]
struct Peer {
    session: Session,
    address: SocketAddr,
    instance: u64,
    name: String,
    reply: Vec<u8>,
    scheduled: Option<Instant>,
}

/// The server side of NetTask. See the module documentation of [`crate::nettask`] for the
/// calling convention.
#[derive(Debug)]
pub struct ServerEndpoint {
    config: Config,
    /// Boxed: a session is large, and a map of boxes wastes no session-sized slots.
    peers: HashMap<u32, Box<Peer>>,
    names: HashMap<u32, String>,
    /// Registration instances of sessions that were replaced, per agent name.
    retired: HashMap<String, VecDeque<u64>>,
    /// When a refused registration was last reported, per agent name.
    refused_reported: HashMap<String, Instant>,
    /// Registrations handed to the application and not answered yet, by instance.
    pending_registrations: HashSet<u64>,
    /// The agent clock of the latest registration accepted, per agent name.
    last_registration_ms: HashMap<String, u64>,
    /// The server's wall clock: Unix milliseconds at an instant (see `set_wall_clock`).
    wall_clock: Option<(Instant, u64)>,
    /// Memory all sessions' reassembly shares.
    reassembly: ReassemblyBudget,
    /// Agent id of each name that has a session, to recognise a repeated registration at once.
    session_ids: HashMap<String, u32>,
    immediate: VecDeque<Transmit>,
    ready: VecDeque<u32>,
    ready_set: HashSet<u32>,
    timers: BinaryHeap<Reverse<(Instant, u32)>>,
    events: VecDeque<ServerEvent>,
    next_message: u64,
    stats: Stats,
}

impl ServerEndpoint {
    pub fn new(config: Config) -> Self {
        ServerEndpoint {
            wall_clock: None,
            reassembly: ReassemblyBudget::new(config.max_reassembly_total),
            config,
            peers: HashMap::new(),
            names: HashMap::new(),
            retired: HashMap::new(),
            last_registration_ms: HashMap::new(),
            pending_registrations: HashSet::new(),
            refused_reported: HashMap::new(),
            session_ids: HashMap::new(),
            immediate: VecDeque::new(),
            ready: VecDeque::new(),
            ready_set: HashSet::new(),
            timers: BinaryHeap::new(),
            events: VecDeque::new(),
            next_message: 1,
            stats: Stats::default(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Number of agents with a session.
    pub fn sessions(&self) -> usize {
        self.peers.len()
    }

    /// The address an agent was last heard from.
    pub fn address_of(&self, agent_id: u32) -> Option<SocketAddr> {
        self.peers.get(&agent_id).map(|p| p.address)
    }

    /// Whether an agent currently has a session.
    pub fn has_session(&self, agent_id: u32) -> bool {
        self.peers.contains_key(&agent_id)
    }

    /// Tells the endpoint an agent id's name (from the persisted registry) so that, without a
    /// session, its NOACKs still carry the agent's own key.
    pub fn know_agent(&mut self, agent_id: u32, name: &str) {
        self.names.insert(agent_id, name.to_string());
    }

    /// Tells the endpoint what time it is: `wall_ms` (Unix milliseconds) at `now`. With keys,
    /// registrations are checked against this clock (and not at all until it is set).
    pub fn set_wall_clock(&mut self, now: Instant, wall_ms: u64) {
        self.wall_clock = Some((now, wall_ms));
    }

    fn wall_ms(&self, now: Instant) -> Option<u64> {
        self.wall_clock.map(|(at, ms)| {
            let ahead = now.saturating_duration_since(at).as_millis() as u64;
            let behind = at.saturating_duration_since(now).as_millis() as u64;
            (ms + ahead).saturating_sub(behind)
        })
    }

    /// Bytes all sessions hold in incomplete messages now.
    pub fn reassembly_buffered(&self) -> usize {
        self.reassembly.used()
    }

    /// Tells the endpoint the agent-clock time of an agent's latest accepted registration (from
    /// the persisted registry). With a key, a registration not newer than it is refused as a
    /// replay (while that time is within the registration window of the server's clock).
    pub fn remember_registration(&mut self, name: &str, time_ms: u64) {
        let last = self
            .last_registration_ms
            .entry(name.to_string())
            .or_default();
        *last = (*last).max(time_ms);
    }

    /// Handles one received datagram.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        self.stats.datagrams_received += 1;
        if bytes.len() > self.config.max_datagram {
            self.stats.malformed += 1;
            return;
        }
        let header = match Header::decode(bytes) {
            Ok(h) => h,
            Err(_) => {
                self.stats.malformed += 1;
                return;
            }
        };
        if header.packet_type == PacketType::Registration {
            self.handle_registration(now, from, &header, bytes);
            return;
        }
        let agent_id = header.agent_id;
        let keyed = self.config.keys.is_keyed();
        let Some(peer) = self.peers.get_mut(&agent_id) else {
            self.stats.unknown_agents += 1;
            if header.packet_type.is_reliable() {
                self.noack_unknown_agent(from, agent_id, header.seq, bytes);
            }
            return;
        };
        if header.verify_tag(bytes, peer.session.key()).is_err() {
            self.stats.bad_tags += 1;
            if header.packet_type.is_reliable() {
                let payload = peer.session.noack(header.seq, NoackReason::BadTag);
                self.immediate.push_back(Transmit {
                    destination: from,
                    payload,
                });
            }
            return;
        }
        if !keyed && from != peer.address {
            // Nothing is authentic without a key: only the registered address speaks for the
            // session. A moved agent hears `unknown agent` and registers from where it is now.
            self.stats.foreign_address += 1;
            if header.packet_type.is_reliable() {
                self.noack_unknown_agent(from, agent_id, header.seq, bytes);
            }
            return;
        }
        match header.decode_body(bytes) {
            Err(e) => {
                if header.packet_type.is_reliable() {
                    peer.session
                        .on_malformed(now, header.seq, &e, &mut self.stats);
                } else {
                    self.stats.malformed += 1;
                }
            }
            Ok(packet) => match packet.body {
                Body::Ack(ack) => peer.session.on_ack(now, &ack, &mut self.stats),
                Body::Noack(noack) => {
                    if noack.reason == NoackReason::BadTag {
                        peer.session.on_noack_bad_tag(now, &noack);
                    }
                }
                Body::Reliable {
                    seq,
                    message: message @ (Message::Registered(_) | Message::Refused(_)),
                } => {
                    let e = crate::wire::codec::invalid(
                        "packet type",
                        0,
                        format!(
                            "{} is sent by servers, not agents",
                            message.packet_type().name()
                        ),
                    );
                    self.stats.malformed += 1;
                    self.events.push_back(ServerEvent::Malformed {
                        from,
                        agent_id,
                        reason: format!("seq {seq}: {e}"),
                    });
                }
                Body::Reliable { seq, message } => {
                    // Only a new, authentic packet moves the agent: a replay from elsewhere is a
                    // duplicate, acknowledged to the address the session already has.
                    if peer.session.on_reliable(now, seq, message, &mut self.stats) == Arrival::New
                    {
                        peer.address = from;
                    }
                }
            },
        }
        self.after_session_change(agent_id);
    }

    /// Answers a reliable packet of an agent id without a session here with NOACK `unknown
    /// agent`. With keys its tag is bound to the refused packet's tag, so it cannot be
    /// replayed against any other packet; an id whose name (and so key) is unknown is not
    /// answered at all, as an unkeyed NOACK would not be believed.
    fn noack_unknown_agent(&mut self, to: SocketAddr, agent_id: u32, seq: u16, refused: &[u8]) {
        let key = if self.config.keys.is_keyed() {
            let psk = self
                .names
                .get(&agent_id)
                .and_then(|n| self.config.keys.for_agent(n))
                .or(self.config.keys.default.as_ref());
            let Some(psk) = psk else {
                return;
            };
            Some(psk.refusal(&refused[refused.len().saturating_sub(TAG_LEN)..]))
        } else {
            None
        };
        let payload = Packet {
            keyed: key.is_some(),
            agent_id,
            body: Body::Noack(Noack {
                seq,
                reason: NoackReason::UnknownAgent,
            }),
        }
        .encode(key.as_ref());
        self.immediate.push_back(Transmit {
            destination: to,
            payload,
        });
    }

    fn handle_registration(
        &mut self,
        now: Instant,
        from: SocketAddr,
        header: &Header,
        bytes: &[u8],
    ) {
        // The key depends on the agent's name, which is in the body: read it, then check the tag.
        let packet = match header.decode_body(bytes) {
            Ok(p) => p,
            Err(_) => {
                self.stats.malformed += 1;
                return;
            }
        };
        let Body::Reliable {
            message: Message::Registration(registration),
            ..
        } = packet.body
        else {
            self.stats.malformed += 1;
            return;
        };
        if !self.config.keys.admits(&registration.name) {
            // No answer: there is no key to tag one with, and nothing to tell a stranger.
            self.stats.keyless_names += 1;
            self.refuse(
                now,
                from,
                &registration.name,
                "the name has no key (not in --keys-file, and no --key-file for everybody)".into(),
            );
            return;
        }
        let key = self
            .config
            .keys
            .session_key(&registration.name, registration.instance);
        if header.verify_tag(bytes, key.as_ref()).is_err() {
            // No NOACK: an agent with the wrong key would otherwise retry in a tight loop.
            self.stats.bad_tags += 1;
            self.refuse(
                now,
                from,
                &registration.name,
                "wrong integrity tag (another key, or none?)".into(),
            );
            return;
        }
        // A copy of a registration already answered: answer again. Not new, so the session's
        // address stays; the agent's first new packet moves it if the agent really moved.
        if let Some(peer) = self
            .session_ids
            .get(&registration.name)
            .and_then(|id| self.peers.get_mut(id))
            .filter(|p| p.instance == registration.instance && p.name == registration.name)
        {
            self.immediate.push_back(Transmit {
                destination: from,
                payload: peer.reply.clone(),
            });
            return;
        }
        // A registration whose session was already replaced: a replay (or a very late
        // copy). Starting a session from it would take the agent's session away.
        if self
            .retired
            .get(&registration.name)
            .is_some_and(|old| old.contains(&registration.instance))
        {
            self.stats.replays += 1;
            return;
        }
        // With a key, the registration must be fresh: dated within the window of the server's
        // clock, and newer than the last one accepted for the name (which counts only while it
        // is itself within the window, so a clock that was corrected recovers).
        if key.is_some()
            && let Some(server_ms) = self.wall_ms(now)
        {
            let window = self.config.registration_window.as_millis() as u64;
            let skew = registration.time_ms.abs_diff(server_ms);
            if skew > window {
                let ahead = registration.time_ms > server_ms;
                self.refuse_with(
                    now,
                    from,
                    &registration,
                    RefusalReason::Clock,
                    server_ms,
                    0,
                    format!(
                        "its time is {:.1} s {} the server's clock (at most {} s either way)",
                        skew as f64 / 1000.0,
                        if ahead { "ahead of" } else { "behind" },
                        window / 1000
                    ),
                );
                return;
            }
            if let Some(&last) = self.last_registration_ms.get(&registration.name)
                && registration.time_ms <= last
                && last <= server_ms + window
            {
                self.stats.replays += 1;
                self.refuse_with(
                    now,
                    from,
                    &registration,
                    RefusalReason::NotNewer,
                    server_ms,
                    last,
                    "not newer than the last registration accepted for this name (a replay?)"
                        .into(),
                );
                return;
            }
        }
        // Copies that arrive before the application has answered the first one.
        if !self.pending_registrations.insert(registration.instance) {
            return;
        }
        if self.pending_registrations.len() > MAX_PENDING_REGISTRATIONS {
            self.pending_registrations.clear();
        }
        self.stats.registrations += 1;
        self.events
            .push_back(ServerEvent::Registration { from, registration });
    }

    /// Answers a registration with REFUSED (tagged with its session key, so the agent can
    /// believe it) and reports the refusal.
    #[allow(clippy::too_many_arguments)]
    fn refuse_with(
        &mut self,
        now: Instant,
        from: SocketAddr,
        registration: &Registration,
        reason: RefusalReason,
        server_time_ms: u64,
        last_accepted_ms: u64,
        text: String,
    ) {
        self.stats.registrations_refused += 1;
        let key = self
            .config
            .keys
            .session_key(&registration.name, registration.instance);
        let payload = Packet {
            keyed: key.is_some(),
            agent_id: 0,
            body: Body::Reliable {
                seq: 0,
                message: Message::Refused(Refused {
                    instance: registration.instance,
                    reason,
                    server_time_ms,
                    last_accepted_ms,
                }),
            },
        }
        .encode(key.as_ref());
        self.immediate.push_back(Transmit {
            destination: from,
            payload,
        });
        self.refuse(now, from, &registration.name, text);
    }

    /// The application's refusal of a registration it was handed (no room for a new agent):
    /// answers it with REFUSED `full`. A later copy of the same registration is handed over
    /// again.
    pub fn refuse_registration(
        &mut self,
        now: Instant,
        from: SocketAddr,
        registration: &Registration,
    ) {
        self.pending_registrations.remove(&registration.instance);
        let server_ms = self.wall_ms(now).unwrap_or(0);
        self.refuse_with(
            now,
            from,
            registration,
            RefusalReason::Full,
            server_ms,
            0,
            "the server takes no new agents now".into(),
        );
    }

    /// The application could not answer a registration it was handed (its registry could not
    /// be saved): nothing is sent, and the agent's next copy is handed over again.
    pub fn defer_registration(&mut self, registration: &Registration) {
        self.pending_registrations.remove(&registration.instance);
    }

    /// Reports a refused registration, at most once a minute per name.
    fn refuse(&mut self, now: Instant, from: SocketAddr, name: &str, reason: String) {
        if self.refused_reported.len() > MAX_PENDING_REGISTRATIONS {
            self.refused_reported.clear();
        }
        let due = self
            .refused_reported
            .get(name)
            .is_none_or(|last| now.saturating_duration_since(*last) >= Duration::from_secs(60));
        if due {
            self.refused_reported.insert(name.to_string(), now);
            self.events.push_back(ServerEvent::RegistrationRefused {
                from,
                name: name.to_string(),
                reason,
            });
        }
    }

    /// Answers a registration: creates the agent's session (replacing an older one, whose
    /// unacknowledged messages are discarded: the application sends an agent its work again
    /// when it registers) and sends REGISTERED.
    pub fn accept_registration(
        &mut self,
        _now: Instant,
        from: SocketAddr,
        agent_id: u32,
        registration: &Registration,
        registered: Registered,
    ) {
        self.pending_registrations.remove(&registration.instance);
        if let Some(peer) = self.peers.get(&agent_id)
            && peer.instance == registration.instance
        {
            // Answered already: answer again, keep the session.
            self.immediate.push_back(Transmit {
                destination: from,
                payload: peer.reply.clone(),
            });
            return;
        }
        let key = self
            .config
            .keys
            .session_key(&registration.name, registration.instance);
        self.names.insert(agent_id, registration.name.clone());
        self.remember_registration(&registration.name, registration.time_ms);
        let reply = Packet {
            keyed: key.is_some(),
            agent_id,
            body: Body::Reliable {
                seq: 0,
                message: Message::Registered(registered),
            },
        }
        .encode(key.as_ref());
        let first_seq = self
            .peers
            .get(&agent_id)
            .map_or(0, |p| p.session.next_seq());
        if let Some(old) = self.peers.get(&agent_id)
            && old.instance != registration.instance
        {
            let retired = self.retired.entry(old.name.clone()).or_default();
            retired.push_back(old.instance);
            if retired.len() > RETIRED_INSTANCES {
                retired.pop_front();
            }
        }
        let session = Session::new(
            &self.config,
            agent_id,
            key,
            first_seq,
            self.reassembly.clone(),
        );
        self.session_ids.insert(registration.name.clone(), agent_id);
        let replaced = self.peers.insert(
            agent_id,
            Box::new(Peer {
                session,
                address: from,
                instance: registration.instance,
                name: registration.name.clone(),
                reply: reply.clone(),
                scheduled: None,
            }),
        );
        if let Some(old) = replaced
            && old.name != registration.name
            && self.session_ids.get(&old.name) == Some(&agent_id)
        {
            self.session_ids.remove(&old.name);
        }
        self.immediate.push_back(Transmit {
            destination: from,
            payload: reply,
        });
        self.after_session_change(agent_id);
    }

    /// Queues a message for an agent; returns its id, reported again in `Acknowledged`.
    pub fn send(
        &mut self,
        _now: Instant,
        agent_id: u32,
        message: &Message,
    ) -> Result<u64, SendError> {
        let Some(peer) = self.peers.get_mut(&agent_id) else {
            return Err(SendError::UnknownAgent(agent_id));
        };
        let mut body = Vec::new();
        message.encode_body(&mut body);
        if body.len() > self.config.max_message_size {
            return Err(SendError::TooLarge(
                body.len(),
                self.config.max_message_size,
            ));
        }
        let id = self.next_message;
        self.next_message += 1;
        peer.session.send(
            Outbound {
                id,
                kind: message.packet_type(),
                body,
            },
            &mut self.stats,
        );
        self.after_session_change(agent_id);
        Ok(id)
    }

    /// Releases the held acknowledgement of a delivered message. `kept`: the application has
    /// kept it (stored and synced), and it is acknowledged now. Not kept: it is forgotten, and
    /// the agent's next retransmission delivers it again. A receipt of a session that has
    /// since been replaced (the agent registered again) is ignored: the agent sends its
    /// unacknowledged messages again in the new session.
    pub fn release(&mut self, receipt: Receipt, kept: bool) {
        let Some(peer) = self.peers.get_mut(&receipt.agent_id) else {
            return;
        };
        if peer.instance != receipt.instance {
            return;
        }
        peer.session.release(receipt.number, kept);
        self.after_session_change(receipt.agent_id);
    }

    /// Acknowledgements held for the application, over all agents.
    pub fn held(&self) -> usize {
        self.peers.values().map(|p| p.session.held()).sum()
    }

    /// Ends an agent's session; its unacknowledged messages are discarded.
    pub fn forget(&mut self, agent_id: u32) {
        if let Some(peer) = self.peers.remove(&agent_id)
            && self.session_ids.get(&peer.name) == Some(&agent_id)
        {
            self.session_ids.remove(&peer.name);
        }
    }

    /// Messages queued or in flight to an agent.
    pub fn unacknowledged(&self, agent_id: u32) -> usize {
        self.peers
            .get(&agent_id)
            .map_or(0, |p| p.session.unacknowledged())
    }

    fn after_session_change(&mut self, agent_id: u32) {
        let Some(peer) = self.peers.get_mut(&agent_id) else {
            return;
        };
        // Taken, not drained, so an idle session keeps no event buffer.
        for e in std::mem::take(&mut peer.session.events) {
            self.events.push_back(match e {
                SessionEvent::Message(message, receipt) => ServerEvent::Message {
                    agent_id,
                    from: peer.address,
                    message,
                    receipt: receipt.map(|number| Receipt {
                        agent_id,
                        instance: peer.instance,
                        number,
                    }),
                },
                SessionEvent::Acknowledged(id) => ServerEvent::Acknowledged { agent_id, id },
                SessionEvent::Dropped(id) => ServerEvent::Dropped { agent_id, id },
                SessionEvent::Lost => ServerEvent::PeerLost { agent_id },
                SessionEvent::Recovered => ServerEvent::PeerRecovered { agent_id },
                SessionEvent::Malformed(reason) => ServerEvent::Malformed {
                    from: peer.address,
                    agent_id,
                    reason,
                },
            });
        }
        if peer.session.wants_transmit() && self.ready_set.insert(agent_id) {
            self.ready.push_back(agent_id);
        }
        let next = peer.session.poll_timeout();
        if next != peer.scheduled {
            peer.scheduled = next;
            if let Some(t) = next {
                self.timers.push(Reverse((t, agent_id)));
            }
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        if let Some(t) = self.immediate.pop_front() {
            return Some(t);
        }
        while let Some(&agent_id) = self.ready.front() {
            let sent = self.peers.get_mut(&agent_id).and_then(|peer| {
                peer.session
                    .poll_transmit(now, &mut self.stats)
                    .map(|payload| Transmit {
                        destination: peer.address,
                        payload,
                    })
            });
            match sent {
                Some(t) => {
                    self.after_session_change(agent_id);
                    return Some(t);
                }
                None => {
                    self.ready.pop_front();
                    self.ready_set.remove(&agent_id);
                }
            }
        }
        None
    }

    /// When `handle_timeout` must next be called.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        while let Some(Reverse((t, id))) = self.timers.peek().copied() {
            if self.peers.get(&id).and_then(|p| p.scheduled) == Some(t) {
                return Some(t);
            }
            self.timers.pop();
        }
        None
    }

    /// Runs the retransmission and reassembly timers that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((t, id))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            let Some(peer) = self.peers.get_mut(&id) else {
                continue;
            };
            if peer.scheduled != Some(t) {
                continue;
            }
            peer.scheduled = None;
            peer.session.handle_timeout(now, &mut self.stats);
            self.after_session_change(id);
        }
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// Most bytes of payload one datagram carries.
    pub fn max_body_len(&self) -> usize {
        self.config.max_payload - MAX_HEADER_LEN - crate::wire::TAG_LEN
    }
}
