//! The server's NetTask endpoint: one `Session` per registered agent, keyed by agent id so an
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

mod event;
mod registration;

pub use event::{Receipt, SendError, ServerEvent};

use super::reassembly::ReassemblyBudget;
use super::session::{Arrival, MAX_HEADER_LEN, Outbound, Session, SessionEvent};
use super::{Config, Stats, Transmit};
use crate::wire::{Body, Header, Message, Noack, NoackReason, Packet, PacketType, TAG_LEN};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

/// Replaced registration instances remembered per agent, to refuse their replays.
const RETIRED_INSTANCES: usize = 16;

/// Registrations waiting for the application's answer, at most (a flood is forgotten).
const MAX_PENDING_REGISTRATIONS: usize = 100_000;

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
        let Some(header) = self.header_of(bytes) else {
            return;
        };
        if header.packet_type == PacketType::Registration {
            self.handle_registration(now, from, &header, bytes);
            return;
        }
        if !self.admits_to_session(from, &header, bytes) {
            return;
        }
        self.handle_session_packet(now, from, &header, bytes);
        self.after_session_change(header.agent_id);
    }

    /// The header of a datagram; `None`, counted as malformed, for one too large or without a
    /// valid header.
    fn header_of(&mut self, bytes: &[u8]) -> Option<Header> {
        if bytes.len() > self.config.max_datagram {
            self.stats.malformed += 1;
            return None;
        }
        match Header::decode(bytes) {
            Ok(h) => Some(h),
            Err(_) => {
                self.stats.malformed += 1;
                None
            }
        }
    }

    /// Whether a packet may go to its agent's session: there is one, the tag verifies with its
    /// key, and (without keys) it comes from the session's address. A refused reliable packet
    /// is answered with a NOACK.
    fn admits_to_session(&mut self, from: SocketAddr, header: &Header, bytes: &[u8]) -> bool {
        let agent_id = header.agent_id;
        let keyed = self.config.keys.is_keyed();
        let Some(peer) = self.peers.get_mut(&agent_id) else {
            self.stats.unknown_agents += 1;
            if header.packet_type.is_reliable() {
                self.noack_unknown_agent(from, agent_id, header.seq, bytes);
            }
            return false;
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
            return false;
        }
        if !keyed && from != peer.address {
            // Nothing is authentic without a key: only the registered address speaks for the
            // session. A moved agent hears `unknown agent` and registers from where it is now.
            self.stats.foreign_address += 1;
            if header.packet_type.is_reliable() {
                self.noack_unknown_agent(from, agent_id, header.seq, bytes);
            }
            return false;
        }
        true
    }

    /// Hands an admitted packet's body to its session.
    fn handle_session_packet(
        &mut self,
        now: Instant,
        from: SocketAddr,
        header: &Header,
        bytes: &[u8],
    ) {
        let agent_id = header.agent_id;
        let Some(peer) = self.peers.get_mut(&agent_id) else {
            return;
        };
        let packet = match header.decode_body(bytes) {
            Ok(packet) => packet,
            Err(e) => {
                if header.packet_type.is_reliable() {
                    peer.session
                        .on_malformed(now, header.seq, &e, &mut self.stats);
                } else {
                    self.stats.malformed += 1;
                }
                return;
            }
        };
        match packet.body {
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
                if peer.session.on_reliable(now, seq, message, &mut self.stats) == Arrival::New {
                    peer.address = from;
                }
            }
        }
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
