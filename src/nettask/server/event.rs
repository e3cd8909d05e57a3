//! What the server endpoint tells its application ([`ServerEvent`]), the receipt of a held
//! acknowledgement, and why a message could not be queued.

use crate::wire::{Message, Registration};
use std::net::SocketAddr;

/// What the server endpoint reports.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    /// An agent asks to register; answer with
    /// [`ServerEndpoint::accept_registration`](super::ServerEndpoint::accept_registration).
    Registration {
        from: SocketAddr,
        registration: Registration,
    },
    /// A message from a registered agent, delivered once. A message of one of the
    /// configuration's `held_types` carries a receipt: it is acknowledged only when the
    /// application calls [`ServerEndpoint::release`](super::ServerEndpoint::release) with it.
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
    /// per agent name; the counters in [`Stats`](crate::nettask::Stats) count every one.
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

/// The held acknowledgement of one delivered message (see
/// [`ServerEndpoint::release`](super::ServerEndpoint::release)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Receipt {
    pub agent_id: u32,
    /// The registration instance of the session that delivered it.
    pub(super) instance: u64,
    pub(super) number: u32,
}

/// Why a message could not be queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("agent {0} has no session (not registered)")]
    UnknownAgent(u32),
    #[error("message of {0} bytes exceeds the limit of {1} bytes")]
    TooLarge(usize, usize),
}
