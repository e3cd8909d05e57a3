//! Bounds that keep a server answering when someone on the network tries to exhaust it: a
//! [`MemoryBudget`] shared by many connections or sessions, a [`ConnectionLimiter`] (open
//! connections in all and per source address), [`AcceptBackoff`] for a listener whose `accept`
//! fails (out of file descriptors), and [`Deadlined`], a stream whose reads and writes fail once
//! their deadline has passed, however slowly the peer trickles bytes.

use futures_lite::io::{AsyncRead, AsyncWrite};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Bytes that many holders draw from together: what one reserves counts against all, and is
/// given back when it releases it (holders release what they hold when they are dropped).
#[derive(Debug, Clone)]
pub struct MemoryBudget {
    used: Arc<AtomicUsize>,
    limit: usize,
}

impl MemoryBudget {
    pub fn new(limit: usize) -> Self {
        MemoryBudget {
            used: Arc::new(AtomicUsize::new(0)),
            limit,
        }
    }

    /// A budget that never runs out.
    pub fn unlimited() -> Self {
        MemoryBudget::new(usize::MAX)
    }

    /// Bytes reserved now, by every holder together.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Reserves `bytes`; false (and nothing reserved) when that would pass the limit.
    pub fn reserve(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .is_ok()
    }

    /// Gives back `bytes` reserved earlier.
    pub fn release(&self, bytes: usize) {
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                Some(used.saturating_sub(bytes))
            });
    }
}

/// Why a connection was not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitHit {
    /// `total` connections are open.
    Total(usize),
    /// This address has `per_address` open.
    PerAddress(usize),
}

impl std::fmt::Display for LimitHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LimitHit::Total(n) => write!(f, "{n} connections are open, the maximum"),
            LimitHit::PerAddress(n) => {
                write!(
                    f,
                    "this address has {n} connections open, the maximum per address"
                )
            }
        }
    }
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// Counts open connections, in all and per source address.
#[derive(Debug, Clone)]
pub struct ConnectionLimiter {
    total: usize,
    per_address: usize,
    open: Arc<Mutex<Open>>,
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct ConnectionPermit {
    address: IpAddr,
    open: Arc<Mutex<Open>>,
}

impl ConnectionLimiter {
    pub fn new(total: usize, per_address: usize) -> Self {
        ConnectionLimiter {
            total,
            per_address,
            open: Arc::default(),
        }
    }

    /// Admits a connection from `address`, or says which limit it hits.
    pub fn admit(&self, address: IpAddr) -> Result<ConnectionPermit, LimitHit> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.total >= self.total {
            return Err(LimitHit::Total(self.total));
        }
        let here = open.by_address.entry(address).or_default();
        if *here >= self.per_address {
            return Err(LimitHit::PerAddress(self.per_address));
        }
        *here += 1;
        open.total += 1;
        Ok(ConnectionPermit {
            address,
            open: Arc::clone(&self.open),
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).total
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_address.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                open.by_address.remove(&self.address);
            }
        }
    }
}

/// What a listener does when `accept` fails (typically EMFILE, out of file descriptors): wait,
/// doubling from 10 ms to 1 s while it keeps failing, and log on the 1st, 2nd, 4th, 8th ...
/// failure in a row instead of every time.
#[derive(Debug)]
pub struct AcceptBackoff {
    listener: &'static str,
    failures: u64,
    delay: Duration,
}

impl AcceptBackoff {
    const FIRST: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_secs(1);

    pub fn new(listener: &'static str) -> Self {
        AcceptBackoff {
            listener,
            failures: 0,
            delay: Self::FIRST,
        }
    }

    /// A connection was accepted: the next failure starts over.
    pub fn accepted(&mut self) {
        if self.failures > 0 {
            crate::log::event(
                crate::log::Level::Good,
                self.listener,
                format_args!(
                    "accepting connections again after {} failure(s)",
                    self.failures
                ),
            );
        }
        self.failures = 0;
        self.delay = Self::FIRST;
    }

    /// Logs the failure (now and then) and returns how long to wait before the next accept.
    pub fn failed(&mut self, error: &io::Error) -> Duration {
        self.failures += 1;
        if self.failures.is_power_of_two() {
            crate::log::event(
                crate::log::Level::Bad,
                self.listener,
                format_args!(
                    "accepting a connection failed ({error}); retrying in {:?} ({} failure(s) \
                     in a row; raise LimitNOFILE if this says \"Too many open files\")",
                    self.delay, self.failures
                ),
            );
        }
        let delay = self.delay;
        self.delay = (self.delay * 2).min(Self::MAX);
        delay
    }
}

/// A stream whose reads fail with `TimedOut` once `read_by` has passed and whose writes fail
/// once `write_by` has: a peer that sends or reads one byte at a time cannot hold it longer.
#[derive(Debug)]
pub struct Deadlined<S> {
    inner: S,
    read: Deadline,
    write: Deadline,
}

#[derive(Debug)]
struct Deadline {
    timer: async_io::Timer,
    passed: bool,
}

impl Deadline {
    fn at(when: Instant) -> Self {
        Deadline {
            timer: async_io::Timer::at(when),
            passed: false,
        }
    }

    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if !self.passed && Pin::new(&mut self.timer).poll(cx).is_ready() {
            self.passed = true;
        }
        if self.passed {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the deadline for this connection passed",
            ));
        }
        Ok(())
    }
}

impl<S> Deadlined<S> {
    pub fn new(inner: S, read_by: Instant, write_by: Instant) -> Self {
        Deadlined {
            inner,
            read: Deadline::at(read_by),
            write: Deadline::at(write_by),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Deadlined<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if let Err(e) = this.read.check(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Deadlined<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if let Err(e) = this.write.check(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Err(e) = this.write.check(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_is_shared_and_given_back() {
        let b = MemoryBudget::new(10);
        let c = b.clone();
        assert!(b.reserve(6));
        assert!(!c.reserve(5));
        assert!(c.reserve(4));
        b.release(6);
        assert_eq!(c.used(), 4);
    }

    #[test]
    fn connections_are_limited_in_all_and_per_address() {
        let limiter = ConnectionLimiter::new(3, 2);
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let p1 = limiter.admit(a).unwrap();
        let _p2 = limiter.admit(a).unwrap();
        assert_eq!(limiter.admit(a).unwrap_err(), LimitHit::PerAddress(2));
        let _p3 = limiter.admit(b).unwrap();
        assert_eq!(limiter.admit(b).unwrap_err(), LimitHit::Total(3));
        drop(p1);
        assert!(limiter.admit(a).is_ok());
    }
}
