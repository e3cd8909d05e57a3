//! Binds a NetTask endpoint to a real UDP socket and timer.
//!
//! One task owns the socket and the endpoint ([`run`]); the application talks to it through a
//! channel of [`Command`]s (closures run against the endpoint) and receives the endpoint's
//! events on another channel. Only this module reads the clock or touches the socket. A failed
//! `send_to` (a local firewall, an unreachable network) is counted and logged, never fatal: the
//! endpoint's retransmission covers it.

use super::{AgentEndpoint, AgentEvent, ServerEndpoint, ServerEvent, Transmit};
use async_io::{Async, Timer};
use async_net::UdpSocket;
use futures_lite::FutureExt;
use smol::channel::{Receiver, Sender};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// The calls the driver makes on an endpoint.
pub trait Endpoint: Send + 'static {
    type Event: Send + 'static;
    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]);
    fn poll_transmit(&mut self, now: Instant) -> Option<Transmit>;
    fn poll_timeout(&mut self) -> Option<Instant>;
    fn handle_timeout(&mut self, now: Instant);
    fn poll_event(&mut self) -> Option<Self::Event>;
}

impl Endpoint for ServerEndpoint {
    type Event = ServerEvent;
    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        ServerEndpoint::handle_datagram(self, now, from, bytes)
    }
    fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        ServerEndpoint::poll_transmit(self, now)
    }
    fn poll_timeout(&mut self) -> Option<Instant> {
        ServerEndpoint::poll_timeout(self)
    }
    fn handle_timeout(&mut self, now: Instant) {
        ServerEndpoint::handle_timeout(self, now)
    }
    fn poll_event(&mut self) -> Option<ServerEvent> {
        ServerEndpoint::poll_event(self)
    }
}

impl Endpoint for AgentEndpoint {
    type Event = AgentEvent;
    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        AgentEndpoint::handle_datagram(self, now, from, bytes)
    }
    fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        AgentEndpoint::poll_transmit(self, now)
    }
    fn poll_timeout(&mut self) -> Option<Instant> {
        AgentEndpoint::poll_timeout(self)
    }
    fn handle_timeout(&mut self, now: Instant) {
        AgentEndpoint::handle_timeout(self, now)
    }
    fn poll_event(&mut self) -> Option<AgentEvent> {
        AgentEndpoint::poll_event(self)
    }
}

/// A closure run against the endpoint inside the driver task.
pub type Command<E> = Box<dyn FnOnce(&mut E, Instant) + Send>;

/// Counters of the socket itself.
#[derive(Debug, Default)]
pub struct SocketStats {
    pub send_errors: AtomicU64,
    pub receive_errors: AtomicU64,
}

/// Largest datagram read from the socket; longer ones are truncated and then rejected.
const RECEIVE_BUFFER: usize = 4096;

/// Binds a UDP socket with a large receive buffer (the kernel default of about 212 KB drops
/// bursts from many agents).
pub fn bind(addr: SocketAddr, receive_buffer: usize) -> std::io::Result<UdpSocket> {
    UdpSocket::try_from(bind_std(addr, receive_buffer)?)
}

/// [`bind`] for a caller that drives the socket itself: a non-blocking std socket.
pub fn bind_std(addr: SocketAddr, receive_buffer: usize) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: the kernel caps it at net.core.rmem_max.
    let _ = socket.set_recv_buffer_size(receive_buffer);
    let _ = socket.set_send_buffer_size(receive_buffer / 2);
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

enum Wake<E> {
    Readable(std::io::Result<()>),
    Command(Option<Command<E>>),
    Timer,
}

/// Datagrams read from the socket per wake-up before the answers are sent: enough to amortise
/// the wake-up and let the endpoint coalesce acknowledgements, few enough to answer promptly.
const RECEIVE_BATCH: usize = 256;

/// When a wake-up found fewer datagrams than this, the driver waits [`COALESCE`] before the
/// next one (interrupt moderation, as network cards do): many agents reporting slowly then
/// cost one wake-up per few dozen datagrams instead of one each, for at most two milliseconds
/// more before a packet is read. Under load every wake-up finds a full batch and never waits.
const COALESCE_BELOW: usize = 16;
const COALESCE: std::time::Duration = std::time::Duration::from_millis(2);

/// Runs `endpoint` on `socket` until the command channel closes or the event receiver is
/// dropped.
pub async fn run<E: Endpoint>(
    socket: UdpSocket,
    mut endpoint: E,
    commands: Receiver<Command<E>>,
    events: Sender<E::Event>,
    stats: Arc<SocketStats>,
) {
    let socket: Arc<Async<std::net::UdpSocket>> = socket.into();
    let mut buf = vec![0u8; RECEIVE_BUFFER];
    // One timer, moved only when the endpoint's deadline moves.
    let mut timer = Timer::never();
    let mut armed: Option<Instant> = None;
    let mut last_batch = 0usize;
    loop {
        // Commands first, every turn: under a steady stream of datagrams the socket is always
        // readable, and the application's commands (released acknowledgements among them)
        // must not wait for a quiet moment.
        while let Ok(cmd) = commands.try_recv() {
            cmd(&mut endpoint, Instant::now());
        }
        let now = Instant::now();
        send_transmits(&socket, &mut endpoint, &stats, now).await;
        while let Some(e) = endpoint.poll_event() {
            if events.send(e).await.is_err() {
                return;
            }
        }
        if (1..COALESCE_BELOW).contains(&last_batch) {
            Timer::after(COALESCE).await;
        }
        last_batch = 0;
        armed = rearm(&mut timer, armed, endpoint.poll_timeout());
        let wake = async { Wake::Readable(socket.readable().await) }
            .or(async { Wake::Command(commands.recv().await.ok()) })
            .or(async {
                (&mut timer).await;
                Wake::Timer
            })
            .await;
        let now = Instant::now();
        match wake {
            Wake::Readable(Ok(())) => {
                last_batch = receive_batch(&socket, &mut endpoint, &mut buf, &stats, now);
            }
            Wake::Readable(Err(e)) => receive_failed(&stats, &e),
            Wake::Command(Some(cmd)) => {
                cmd(&mut endpoint, now);
                while let Ok(cmd) = commands.try_recv() {
                    cmd(&mut endpoint, Instant::now());
                }
            }
            Wake::Command(None) => return,
            Wake::Timer => {
                armed = None;
                endpoint.handle_timeout(now);
            }
        }
        if endpoint.poll_timeout().is_some_and(|t| t <= now) {
            endpoint.handle_timeout(now);
        }
    }
}

/// Sends every datagram the endpoint has ready. A failed send is counted (and logged now and
/// then); the endpoint's retransmission covers it.
async fn send_transmits<E: Endpoint>(
    socket: &Async<std::net::UdpSocket>,
    endpoint: &mut E,
    stats: &SocketStats,
    now: Instant,
) {
    while let Some(Transmit {
        destination,
        payload,
    }) = endpoint.poll_transmit(now)
    {
        if let Err(e) = socket.send_to(&payload, destination).await {
            let n = stats.send_errors.fetch_add(1, Ordering::Relaxed);
            if n.is_power_of_two() {
                crate::log::event(
                    crate::log::Level::Warn,
                    "SOCKET",
                    format_args!(
                        "sending to {destination} failed ({e}); will retry ({} failures so far)",
                        n + 1
                    ),
                );
            }
        }
    }
}

/// Moves the timer to the endpoint's `deadline` when that changed; returns the deadline armed.
fn rearm(timer: &mut Timer, armed: Option<Instant>, deadline: Option<Instant>) -> Option<Instant> {
    if deadline != armed {
        match deadline {
            Some(t) => timer.set_at(t),
            None => *timer = Timer::never(),
        }
    }
    deadline
}

/// Hands the endpoint the datagrams waiting on the socket, at most [`RECEIVE_BATCH`]; returns
/// how many there were.
fn receive_batch<E: Endpoint>(
    socket: &Async<std::net::UdpSocket>,
    endpoint: &mut E,
    buf: &mut [u8],
    stats: &SocketStats,
    now: Instant,
) -> usize {
    let mut received = 0;
    for _ in 0..RECEIVE_BATCH {
        match socket.get_ref().recv_from(buf) {
            Ok((n, from)) => {
                received += 1;
                endpoint.handle_datagram(now, from, &buf[..n]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => {
                receive_failed(stats, &e);
                break;
            }
        }
    }
    received
}

fn receive_failed(stats: &SocketStats, e: &std::io::Error) {
    let n = stats.receive_errors.fetch_add(1, Ordering::Relaxed);
    if n.is_power_of_two() {
        crate::log::event(
            crate::log::Level::Warn,
            "SOCKET",
            format_args!("receiving failed ({e}); continuing"),
        );
    }
}
