//! The connections that have not authenticated yet (delivered a whole, valid first frame), kept
//! oldest first so that the oldest can be closed when a newcomer needs its place.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// The connections that have not delivered a valid first frame yet, oldest first, each with
/// the sender that closes it.
#[derive(Debug, Default)]
pub(super) struct Unauthenticated {
    inner: Mutex<(u64, BTreeMap<u64, smol::channel::Sender<()>>)>,
}

impl Unauthenticated {
    pub(super) fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).1.len()
    }

    /// Adds a connection; returns its ticket and what tells it to close.
    pub(super) fn enter(&self) -> (u64, smol::channel::Receiver<()>) {
        let (tx, rx) = smol::channel::bounded(1);
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.0 += 1;
        let ticket = inner.0;
        inner.1.insert(ticket, tx);
        (ticket, rx)
    }

    /// The connection authenticated, or ended.
    pub(super) fn leave(&self, ticket: u64) {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .remove(&ticket);
    }

    /// Closes the oldest; false when there is none.
    pub(super) fn evict_oldest(&self) -> bool {
        let oldest = self
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .pop_first();
        match oldest {
            Some((_, tx)) => {
                let _ = tx.try_send(());
                true
            }
            None => false,
        }
    }
}
