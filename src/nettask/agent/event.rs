//! Who an agent is ([`AgentIdentity`]) and what its endpoint reports ([`AgentEvent`]).

use crate::wire::packet::{CAP_PING, Refused};
use crate::wire::{Message, Registered};
use std::net::SocketAddr;

/// Who the agent is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentIdentity {
    pub name: String,
    /// Bit set of `wire::packet::CAP_*`.
    pub capabilities: u8,
    pub software: String,
}

impl AgentIdentity {
    pub fn new(name: &str) -> Self {
        AgentIdentity {
            name: name.to_string(),
            capabilities: CAP_PING,
            software: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

/// What the agent endpoint reports.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentEvent {
    /// The server accepted the registration (the first, or a new one after it forgot us).
    Registered {
        agent_id: u32,
        registered: Registered,
    },
    /// A message from the server, delivered once.
    Message(Message),
    /// Every packet of message `id` was acknowledged by the server.
    Acknowledged(u64),
    /// Message `id` was dropped because the queue was full.
    Dropped(u64),
    /// The server stopped answering.
    ServerLost,
    /// The server answered again.
    ServerRecovered,
    /// The server no longer knows this agent; a new registration has started.
    Reregistering,
    /// A packet with a valid tag that could not be used.
    Malformed(String),
    /// The agent moved to another of its servers (the one it had did not answer, or it goes
    /// back to the first); a registration with it has started, and `carried` unacknowledged
    /// messages go into the new session.
    SwitchedServer {
        from: SocketAddr,
        to: SocketAddr,
        carried: usize,
    },
    /// The registration was sent `attempts` times without an answer (reported after 5
    /// attempts, then about once a minute): the server is not there, or refuses the key.
    RegistrationUnanswered { attempts: u32 },
    /// The server refused the registration and said why (reported the first time, when the
    /// reason changes, and then every 12th refusal); a new registration follows.
    RegistrationRefused {
        refused: Refused,
        /// The refused registration's time (this agent's clock), Unix milliseconds.
        registration_time_ms: u64,
        /// Refusals in a row so far.
        count: u32,
    },
}
