//! What the server's parts share: the [`State`] under one lock (agents, tasks) and the
//! [`Shared`] parts around it (store, forwarders, firing alerts, silences, the driver's
//! command channel).

use super::dispatch::Dispatch;
use super::registry::Registry;
use super::{
    NewAgentBucket, ServerOptions, SharedNames, ack, alertmanager, firing, http, remote_write,
    silence,
};
use crate::log::{self, Level};
use crate::nettask::driver::{Command, SocketStats};
use crate::nettask::{ServerEndpoint, Stats};
use crate::store::{AlertRecord, Store, StoreError, Stored};
use smol::channel::Sender;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// What the event loop, AlertFlow and HTTP share under one lock: agents and tasks. The store
/// is not in it: it has locks of its own, and its writes and syncs happen outside this one.
#[derive(Debug)]
pub struct State {
    pub registry: Registry,
    pub dispatch: Dispatch,
    /// Agents whose AGENT_DOWN was raised, with that alert's id (resolved when they return).
    pub(super) down_alerted: std::collections::HashMap<u32, u64>,
    /// Agents silent here that a `--peer` serves now, until when that answer holds.
    pub(super) served_elsewhere: std::collections::HashMap<u32, u64>,
    pub(super) started_ms: u64,
    /// Registrations of new names, rate-limited without keys.
    pub(super) new_agents: NewAgentBucket,
    /// New agents refused (no room, too many at once), and alerts refused because they named
    /// another agent or came from an id that is not registered.
    pub refused_new_agents: u64,
    pub refused_alerts: u64,
    pub(super) throttles: Throttles,
    /// Recent registrations of each name, to tell two agents sharing one `--id`.
    pub(super) shared_names: SharedNames,
}

/// The server's shared parts.
pub struct Shared {
    pub(super) state: Mutex<State>,
    pub(super) commands: Sender<Command<ServerEndpoint>>,
    pub store: Arc<Store>,
    /// Where stored alerts are forwarded, one per `--alertmanager`.
    pub alertmanagers: Vec<alertmanager::Forwarder>,
    /// Where stored reports are sent, one per `--remote-write`.
    pub remote_writers: Vec<remote_write::Writer>,
    /// Who may use the HTTP API (the token is read again on SIGHUP).
    pub(super) api: Mutex<http::ApiAccess>,
    /// The alerts firing now.
    pub(super) firing: Mutex<firing::Firing>,
    /// Silences and acknowledgements, kept in files of their own.
    pub(super) silences: Mutex<silence::Silences>,
    pub(super) acks: Mutex<ack::Acknowledgements>,
    /// The base URL of the HTTP API as others reach it (`--external-url`).
    pub external_url: String,
    pub options: ServerOptions,
    pub endpoint_stats: Mutex<Stats>,
    pub socket_stats: Arc<SocketStats>,
    pub alertflow_port: u16,
}

impl Shared {
    /// Locks the state; a panic elsewhere while holding it does not take the server down.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The endpoint's counters as last copied (the default when the lock was poisoned).
    pub fn endpoint_counters(&self) -> Stats {
        self.endpoint_stats
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// Who may use the HTTP API now.
    pub fn api(&self) -> http::ApiAccess {
        self.api.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The alerts firing now (never held while the state lock is taken).
    pub fn firing(&self) -> MutexGuard<'_, firing::Firing> {
        self.firing.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn silences(&self) -> MutexGuard<'_, silence::Silences> {
        self.silences.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn acks(&self) -> MutexGuard<'_, ack::Acknowledgements> {
        self.acks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether an alert is silenced now.
    pub fn silenced(&self, record: &AlertRecord, now_ms: u64) -> bool {
        self.silences().silencing(record, now_ms).is_some()
    }

    /// Hands a change to every Alertmanager forwarder.
    pub(super) fn forward(&self, event: alertmanager::Event) {
        for forwarder in &self.alertmanagers {
            forwarder.send(event.clone());
        }
    }

    /// Stores alerts with one write (once per id) and forwards the new ones. Called without
    /// the state lock.
    pub fn store_alerts(&self, records: Vec<AlertRecord>) -> Result<Vec<Stored>, StoreError> {
        let copies = records.clone();
        let stored = self.store.store_alerts(records)?;
        let mut changes = Vec::new();
        {
            let mut firing = self.firing();
            for (record, outcome) in copies.iter().zip(&stored) {
                if *outcome == Stored::New {
                    changes.extend(firing.accept(record));
                }
            }
        }
        for change in changes {
            self.forward(match change {
                firing::Change::Fired(alert) => alertmanager::Event::Fired(alert),
                firing::Change::Ended { alert, at_ms } => {
                    alertmanager::Event::Ended { alert, at_ms }
                }
            });
        }
        Ok(stored)
    }

    /// [`Shared::store_alerts`], logging a failure.
    pub(super) fn store_alerts_logged(&self, alerts: Vec<AlertRecord>) {
        if alerts.is_empty() {
            return;
        }
        let count = alerts.len();
        if let Err(e) = self.store_alerts(alerts) {
            log::event(
                Level::Bad,
                "STORE",
                format_args!("{count} alert(s) not stored: {e}"),
            );
        }
    }
}

/// The log throttles of the event loop.
#[derive(Debug)]
pub struct Throttles {
    pub malformed: log::Throttle,
    pub admission: log::Throttle,
    pub registry: log::Throttle,
}

impl Default for Throttles {
    fn default() -> Self {
        let every = |s| log::Throttle::new(Duration::from_secs(s));
        Throttles {
            malformed: every(10),
            admission: every(10),
            registry: every(10),
        }
    }
}
