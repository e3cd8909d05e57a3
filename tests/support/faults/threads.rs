//! What both fault proxies need of threads: a stop flag their loops poll, the join handles to
//! wait for on drop, and a lock that survives a panicked holder.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

/// Locks `m`, taking the value even if a thread panicked while holding it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The threads of one proxy.
#[derive(Debug, Default)]
pub struct Workers {
    stop: AtomicBool,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Workers {
    /// Runs `f` on a new thread, joined by [`Workers::stop_and_join`].
    pub fn spawn(&self, f: impl FnOnce() + Send + 'static) {
        lock(&self.threads).push(std::thread::spawn(f));
    }

    /// Whether the loops must end.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Tells every loop to end and waits for the threads.
    pub fn stop_and_join(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let threads = std::mem::take(&mut *lock(&self.threads));
        for t in threads {
            let _ = t.join();
        }
    }
}
