//! A TCP fault proxy for AlertFlow, run inside the test process on threads.
//!
//! Each accepted connection is joined to a new connection to the upstream server. With the
//! configured probability a connection is given a byte budget (1..=`max_reset_bytes`, both
//! directions together); when the budget is spent the proxy resets both sides (RST, linger 0),
//! which cuts a frame in the middle more often than not. [`TcpFaultProxy::set_unreachable`]
//! resets every open connection and every new one until it is switched back. Decisions come
//! from a generator seeded like the UDP proxy's.

use super::seed::derive_seed;
use super::threads::{Workers, lock};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const POLL: Duration = Duration::from_millis(50);

/// A snapshot of what the proxy did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpCounts {
    pub connections: u64,
    /// Connections reset after their byte budget.
    pub resets: u64,
    /// Connections reset because the proxy was unreachable.
    pub refused: u64,
    pub bytes_to_server: u64,
    pub bytes_to_client: u64,
}

impl std::fmt::Display for TcpCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "connections {}, reset mid-stream {}, refused while unreachable {}, bytes to server {}, to client {}",
            self.connections, self.resets, self.refused, self.bytes_to_server, self.bytes_to_client
        )
    }
}

#[derive(Debug, Default)]
struct Counters {
    connections: AtomicU64,
    resets: AtomicU64,
    refused: AtomicU64,
    bytes_to_server: AtomicU64,
    bytes_to_client: AtomicU64,
}

/// One proxied connection.
struct Link {
    client: TcpStream,
    server: TcpStream,
    /// Bytes left before the reset; `None`: no reset planned.
    budget: Mutex<Option<u64>>,
    dead: AtomicBool,
}

impl Link {
    /// Resets both sides (once).
    fn kill(&self) {
        if self.dead.swap(true, Ordering::Relaxed) {
            return;
        }
        for s in [&self.client, &self.server] {
            let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

struct Inner {
    name: String,
    seed: u64,
    upstream: SocketAddr,
    workers: Workers,
    unreachable: AtomicBool,
    reset_probability: Mutex<f64>,
    max_reset_bytes: u64,
    rng: Mutex<fastrand::Rng>,
    counters: Counters,
    links: Mutex<Vec<Arc<Link>>>,
}

/// The proxy; dropping it resets its connections and stops its threads.
pub struct TcpFaultProxy {
    inner: Arc<Inner>,
    address: SocketAddr,
}

impl TcpFaultProxy {
    /// Starts a proxy on 127.0.0.1 (a free port) in front of `upstream`.
    pub fn start(
        name: &str,
        upstream: SocketAddr,
        reset_probability: f64,
        max_reset_bytes: u64,
    ) -> std::io::Result<TcpFaultProxy> {
        let seed = derive_seed(name);
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        eprintln!(
            "tcp fault proxy {name}: {address} -> {upstream}, seed {seed:#018x}; \
             reset probability {reset_probability}, after up to {max_reset_bytes} bytes"
        );
        let inner = Arc::new(Inner {
            name: name.to_string(),
            seed,
            upstream,
            workers: Workers::default(),
            unreachable: AtomicBool::new(false),
            reset_probability: Mutex::new(reset_probability),
            max_reset_bytes: max_reset_bytes.max(1),
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
            counters: Counters::default(),
            links: Mutex::new(Vec::new()),
        });
        let acceptor = inner.clone();
        inner.workers.spawn(move || acceptor.run_accept(listener));
        Ok(TcpFaultProxy { inner, address })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Changes the probability that a new connection is reset after a random byte count.
    pub fn set_reset_probability(&self, p: f64) {
        *lock(&self.inner.reset_probability) = p;
    }

    /// While `true`, every open connection is reset and every new one too.
    pub fn set_unreachable(&self, unreachable: bool) {
        self.inner.unreachable.store(unreachable, Ordering::Relaxed);
        if unreachable {
            for link in lock(&self.inner.links).drain(..) {
                link.kill();
            }
        }
    }

    pub fn counts(&self) -> TcpCounts {
        let c = &self.inner.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        TcpCounts {
            connections: get(&c.connections),
            resets: get(&c.resets),
            refused: get(&c.refused),
            bytes_to_server: get(&c.bytes_to_server),
            bytes_to_client: get(&c.bytes_to_client),
        }
    }

    pub fn summary(&self) -> String {
        format!(
            "tcp fault proxy {} (seed {:#018x}): {}",
            self.inner.name,
            self.inner.seed,
            self.counts()
        )
    }
}

impl Drop for TcpFaultProxy {
    fn drop(&mut self) {
        for link in lock(&self.inner.links).drain(..) {
            link.kill();
        }
        self.inner.workers.stop_and_join();
    }
}

impl Inner {
    fn stopped(&self) -> bool {
        self.workers.stopped()
    }

    fn run_accept(self: Arc<Self>, listener: TcpListener) {
        while !self.stopped() {
            match listener.accept() {
                Ok((client, _)) => self.clone().open(client),
                Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(POLL / 5),
                Err(_) => std::thread::sleep(POLL / 5),
            }
        }
    }

    fn open(self: Arc<Self>, client: TcpStream) {
        let refuse = |s: &TcpStream| {
            let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
            let _ = s.shutdown(Shutdown::Both);
        };
        if self.unreachable.load(Ordering::Relaxed) {
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
            refuse(&client);
            return;
        }
        let Ok(server) = TcpStream::connect_timeout(&self.upstream, Duration::from_secs(2)) else {
            refuse(&client);
            return;
        };
        self.counters.connections.fetch_add(1, Ordering::Relaxed);
        let budget = {
            let p = *lock(&self.reset_probability);
            let mut rng = lock(&self.rng);
            let planned = rng.f64() < p;
            let bytes = rng.u64(1..=self.max_reset_bytes);
            planned.then_some(bytes)
        };
        let (Ok(client_reader), Ok(server_reader)) = (client.try_clone(), server.try_clone())
        else {
            refuse(&client);
            return;
        };
        for s in [&client_reader, &server_reader] {
            let _ = s.set_nodelay(true);
            let _ = s.set_read_timeout(Some(POLL));
        }
        let link = Arc::new(Link {
            client,
            server,
            budget: Mutex::new(budget),
            dead: AtomicBool::new(false),
        });
        {
            let mut links = lock(&self.links);
            links.retain(|l| !l.dead.load(Ordering::Relaxed));
            links.push(link.clone());
        }
        let (inner, up_link) = (self.clone(), link.clone());
        self.workers
            .spawn(move || inner.pump(&up_link, client_reader, true));
        let inner = self.clone();
        self.workers
            .spawn(move || inner.pump(&link, server_reader, false));
    }

    /// Copies one direction of a link until either side ends or the link is reset.
    fn pump(&self, link: &Link, mut from: TcpStream, to_server: bool) {
        let mut buf = [0u8; 4096];
        loop {
            if self.stopped() || link.dead.load(Ordering::Relaxed) {
                link.kill();
                return;
            }
            if self.unreachable.load(Ordering::Relaxed) {
                link.kill();
                return;
            }
            let n = match from.read(&mut buf) {
                Ok(0) => {
                    link.kill();
                    return;
                }
                Ok(n) => n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    continue;
                }
                Err(_) => {
                    link.kill();
                    return;
                }
            };
            let (allowed, cut) = {
                let mut budget = lock(&link.budget);
                match budget.as_mut() {
                    None => (n, false),
                    Some(left) => {
                        let allowed = (n as u64).min(*left);
                        *left -= allowed;
                        (allowed as usize, *left == 0)
                    }
                }
            };
            let mut to = if to_server {
                &link.server
            } else {
                &link.client
            };
            if allowed > 0 && to.write_all(&buf[..allowed]).is_err() {
                link.kill();
                return;
            }
            let counter = if to_server {
                &self.counters.bytes_to_server
            } else {
                &self.counters.bytes_to_client
            };
            counter.fetch_add(allowed as u64, Ordering::Relaxed);
            if cut {
                self.counters.resets.fetch_add(1, Ordering::Relaxed);
                link.kill();
                return;
            }
        }
    }
}
