//! NetTask: reliable datagrams over UDP, as sans-IO state machines.
//!
//! [`ServerEndpoint`] and [`AgentEndpoint`] perform no I/O and read no clock. The caller feeds
//! them received datagrams (`handle_datagram(now, from, bytes)`) and the time, and must then:
//! - call `poll_transmit(now)` until it returns `None`, sending each [`Transmit`];
//! - call `poll_event()` until it returns `None`, acting on each event;
//! - arm a timer for `poll_timeout()` and call `handle_timeout(now)` when it fires.
//!
//! The same three steps follow every `send`. [`driver`] does this over an `async_net::UdpSocket`;
//! [`sim`] does it over a seeded simulated link with a virtual clock, for tests.
//!
//! Guarantees: a message handed to `send` is delivered to the peer's application exactly once,
//! or it stays queued (bounded; the oldest queued message is dropped and reported when the
//! bound is passed). Retransmission starts at 200 ms and adapts to the measured round trip with
//! exponential backoff; a peer silent for `max_retransmissions` retransmissions is reported lost
//! (an event, never an exit) and retransmission goes on, at the longest interval, until it
//! answers or the application forgets it.

pub mod agent;
pub mod driver;
pub mod reassembly;
pub mod rtt;
pub mod server;
mod session;
pub mod sim;
pub mod window;

pub use agent::{AgentEndpoint, AgentEvent, AgentIdentity};
pub use server::{Receipt, ServerEndpoint, ServerEvent};
pub use session::ack_bitmap_bits;

use crate::wire::{Key, PacketType};
use serde::Serialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

/// Tunables of an endpoint. `Default` gives the original design's values.
#[derive(Debug, Clone)]
pub struct Config {
    /// First retransmission timeout, before any round trip was measured.
    pub initial_timeout: Duration,
    /// Bounds of the adaptive timeout; backoff never exceeds `max_timeout`.
    pub min_timeout: Duration,
    pub max_timeout: Duration,
    /// Retransmissions of one packet without an answer before the peer is reported lost.
    pub max_retransmissions: u32,
    /// Largest datagram sent (header, body and tag).
    pub max_payload: usize,
    /// Largest message accepted after reassembly.
    pub max_message_size: usize,
    /// Bytes one peer may hold in incomplete messages.
    pub max_reassembly_bytes: usize,
    /// Bytes all the server's peers together may hold in incomplete messages.
    pub max_reassembly_total: usize,
    /// With keys: how far a REGISTRATION's time may be from the server's clock, either way.
    pub registration_window: Duration,
    /// Age after which an incomplete message is dropped.
    pub reassembly_timeout: Duration,
    /// Messages one peer may have queued or unacknowledged; past it the oldest queued is dropped.
    pub max_queued_messages: usize,
    /// Largest datagram accepted.
    pub max_datagram: usize,
    /// Keys for tags; without any, tags are plain SHA-256.
    pub keys: Keys,
    /// Message types acknowledged only when the application releases them (a server keeps
    /// METRICS acknowledgements until the reports are stored and synced).
    pub held_types: HeldTypes,
}

/// A set of message types (see [`Config::held_types`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeldTypes(u32);

impl HeldTypes {
    pub fn of(types: &[PacketType]) -> HeldTypes {
        HeldTypes(types.iter().fold(0, |bits, t| bits | 1 << (*t as u8 & 31)))
    }

    pub fn contains(self, t: PacketType) -> bool {
        self.0 & (1 << (t as u8 & 31)) != 0
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            initial_timeout: Duration::from_millis(200),
            min_timeout: Duration::from_millis(20),
            max_timeout: Duration::from_secs(5),
            max_retransmissions: 3,
            max_payload: 1200,
            max_message_size: 256 * 1024,
            max_reassembly_bytes: 1024 * 1024,
            max_reassembly_total: 64 * 1024 * 1024,
            registration_window: Duration::from_secs(300),
            reassembly_timeout: Duration::from_secs(30),
            max_queued_messages: 10_000,
            max_datagram: 2048,
            keys: Keys::default(),
            held_types: HeldTypes::default(),
        }
    }
}

/// Pre-shared keys: one for everybody, and optionally one per agent name.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    pub default: Option<Key>,
    pub per_agent: HashMap<String, Key>,
}

impl Keys {
    pub fn single(key: Option<Key>) -> Keys {
        Keys {
            default: key,
            per_agent: HashMap::new(),
        }
    }

    /// The pre-shared key an agent of this name uses.
    pub fn for_agent(&self, name: &str) -> Option<&Key> {
        self.per_agent.get(name).or(self.default.as_ref())
    }

    /// Whether an agent of this name may take part: always without keys; with keys, only when
    /// it has one (its own, or the key for everybody). A name without one is refused, never
    /// served unkeyed.
    pub fn admits(&self, name: &str) -> bool {
        !self.is_keyed() || self.for_agent(name).is_some()
    }

    /// The key of the session an agent of this name started with registration `instance`.
    pub fn session_key(&self, name: &str, instance: u64) -> Option<Key> {
        self.for_agent(name).map(|k| k.session(instance))
    }

    pub fn is_keyed(&self) -> bool {
        self.default.is_some() || !self.per_agent.is_empty()
    }
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub destination: SocketAddr,
    pub payload: Vec<u8>,
}

/// Counters an endpoint keeps; the server exposes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub datagrams_received: u64,
    pub packets_sent: u64,
    pub retransmissions: u64,
    pub acks_sent: u64,
    pub acknowledged_packets: u64,
    pub duplicates: u64,
    pub malformed: u64,
    pub bad_tags: u64,
    pub unknown_agents: u64,
    pub fragmented_messages: u64,
    pub reassembled_messages: u64,
    pub reassembly_dropped: u64,
    pub dropped_messages: u64,
    pub peers_lost: u64,
    pub registrations: u64,
    /// REGISTRATIONs of sessions already replaced (replayed packets), refused.
    pub replays: u64,
    /// With keys: REGISTRATIONs of names that have no key, refused unanswered.
    pub keyless_names: u64,
    /// REGISTRATIONs answered with REFUSED (clock, not newer, no room).
    pub registrations_refused: u64,
    /// Without keys: packets for a session that came from another address than the session's
    /// (answered with NOACK `unknown agent`, not used).
    pub foreign_address: u64,
}
