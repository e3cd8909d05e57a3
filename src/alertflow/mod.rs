//! AlertFlow: alerts from agents to the server over TCP, each acknowledged only once the server
//! has stored it.
//!
//! An agent raises an alert through an [`AlertSender`]: the alert is first written to the
//! [`AlertSpool`] (a directory, one fsynced file per alert) and only then sent. The
//! [`AlertClient`] task keeps one TCP connection to the server, resends every spooled alert after
//! each (re)connection, and deletes an alert from the spool when its ALERT_ACK arrives. The
//! server ([`AlertServer`]) hands each ALERT to an [`AlertHandler`] and acknowledges it only when
//! the handler says it is stored (or was already stored: the handler deduplicates by alert id).
//! So an alert survives a down server, a reset connection and an agent restart, and the server
//! stores it once however often it arrives.
//!
//! Frames travel through a [`Connection`], which buffers a byte stream and cuts it into whole
//! frames (see [`crate::wire::alertflow`] for the byte layout).

pub mod client;
pub mod connection;
pub mod server;
pub mod spool;

pub use client::{AlertClient, AlertClientConfig, AlertCounts, AlertSender, Destination};
pub use connection::{Connection, ConnectionError};
pub use server::{
    AlertHandler, AlertServer, AlertServerConfig, ServerCounts, ServerStats, StoreOutcome,
};
pub use spool::{AlertSpool, Pushed, SpoolError};

use crate::wire::Key;
use std::sync::Arc;

/// Finds the key an agent's frames are tagged with, by its id: `None` when that id may not send
/// alerts (not registered; no key while keys are configured), `Some(None)` for the plain
/// SHA-256 tag, `Some(Some(key))` for HMAC tags with that key (the agent's session key).
pub type KeyLookup = Arc<dyn Fn(u32) -> Option<Option<Key>> + Send + Sync>;

/// Sets TCP keepalive on a connection so a peer that vanished without a word (power cut, cable
/// pulled) is noticed by the kernel instead of holding the connection forever. Best effort: a
/// platform that refuses keeps the connection without it.
fn set_keepalive(stream: &async_net::TcpStream) {
    let keepalive = socket2::TcpKeepalive::new().with_time(std::time::Duration::from_secs(60));
    let _ = socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive);
}

/// A random 64-bit id (alerts are stored once per id).
pub fn random_id() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        return fastrand::u64(..);
    }
    u64::from_be_bytes(b)
}
