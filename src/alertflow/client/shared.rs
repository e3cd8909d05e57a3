//! The state an [`AlertClient`](super::AlertClient) task shares with its
//! [`AlertSender`](super::AlertSender)s: the spool, the alerts the spool could not take (kept in
//! memory, bounded), and the counters behind [`AlertCounts`], with an event that fires whenever
//! one of them changes.

use super::{AlertCounts, MAX_IN_MEMORY};
use crate::alertflow::spool::AlertSpool;
use crate::wire::Alert;
use event_listener::Event;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The counters behind [`AlertCounts`].
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) sent: AtomicU64,
    pub(super) acknowledged: AtomicU64,
    pub(super) pending: AtomicU64,
    pub(super) dropped: AtomicU64,
    pub(super) connections: AtomicU64,
    pub(super) connection_failures: AtomicU64,
}

/// State shared by the senders and the task.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) spool: Mutex<AlertSpool>,
    /// Alerts the spool could not take, oldest first.
    pub(super) memory: Mutex<VecDeque<Alert>>,
    pub(super) counters: Counters,
    /// Notified whenever a counter changes.
    pub(super) changed: Event,
}

impl Shared {
    /// Runs `f` on the spool and refreshes the counters that mirror it. Blocks on file I/O:
    /// call it through [`Shared::spool_io`] from async code.
    pub(super) fn with_spool<T>(&self, f: impl FnOnce(&mut AlertSpool) -> T) -> T {
        let mut spool = self
            .spool
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let out = f(&mut spool);
        let in_memory = self.memory.lock().unwrap_or_else(|e| e.into_inner()).len();
        self.counters
            .pending
            .store((spool.len() + in_memory) as u64, Ordering::Relaxed);
        self.counters
            .dropped
            .store(spool.dropped(), Ordering::Relaxed);
        drop(spool);
        self.changed.notify(usize::MAX);
        out
    }

    /// [`Shared::with_spool`] on a blocking-I/O thread, so file syncs never stall the executor.
    pub(super) async fn spool_io<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut AlertSpool) -> T + Send + 'static,
    ) -> T {
        let shared = Arc::clone(self);
        smol::unblock(move || shared.with_spool(f)).await
    }

    /// Keeps an alert the spool did not take; returns the id of the oldest one dropped when
    /// [`MAX_IN_MEMORY`] are kept already.
    pub(super) fn keep_in_memory(&self, alert: Alert) -> Option<u64> {
        let mut memory = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        memory.push_back(alert);
        (memory.len() > MAX_IN_MEMORY)
            .then(|| memory.pop_front().map(|a| a.alert_id))
            .flatten()
    }

    pub(super) fn memory_ids(&self) -> Vec<u64> {
        let memory = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        memory.iter().map(|a| a.alert_id).collect()
    }

    pub(super) fn kept_alert(&self, id: u64) -> Option<Alert> {
        let memory = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        memory.iter().find(|a| a.alert_id == id).cloned()
    }

    /// Forgets an acknowledged alert kept in memory; true when it was there.
    pub(super) fn forget_in_memory(&self, id: u64) -> bool {
        let mut memory = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        let before = memory.len();
        memory.retain(|a| a.alert_id != id);
        memory.len() != before
    }

    /// Moves alerts kept in memory into the spool while it takes them. Blocks on file I/O.
    pub(super) fn spool_kept(&self) {
        loop {
            let Some(alert) = self
                .memory
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .front()
                .cloned()
            else {
                return;
            };
            let spooled = self.with_spool(|spool| spool.push(&alert).is_ok());
            if !spooled {
                return;
            }
            self.forget_in_memory(alert.alert_id);
        }
    }

    pub(super) fn bump(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
        self.changed.notify(usize::MAX);
    }

    pub(super) fn counts(&self) -> AlertCounts {
        let c = &self.counters;
        AlertCounts {
            sent: c.sent.load(Ordering::Relaxed),
            acknowledged: c.acknowledged.load(Ordering::Relaxed),
            pending: c.pending.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            connections: c.connections.load(Ordering::Relaxed),
            connection_failures: c.connection_failures.load(Ordering::Relaxed),
        }
    }
}
