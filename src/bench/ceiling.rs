//! The loopback ceiling: how many request/reply exchanges per second this machine carries at
//! all, with no protocol work, the same packet sizes, one socket and one thread answering (as
//! the server's NetTask driver has), and the same client threads and requests in flight as the
//! simulated agents. The server's ingest rate is reported as a fraction of it, measured in the
//! same run, since absolute figures drift on a shared machine.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The shape of the exchange.
#[derive(Debug, Clone, Copy)]
pub struct CeilingConfig {
    pub request_len: usize,
    pub reply_len: usize,
    pub client_threads: usize,
    /// Requests kept in flight, all client threads together.
    pub in_flight: usize,
    pub duration: Duration,
}

/// Replies per second over the measured period.
pub fn measure(config: CeilingConfig) -> std::io::Result<f64> {
    let server =
        crate::nettask::driver::bind_std("127.0.0.1:0".parse().expect("literal"), 8 << 20)?;
    server.set_nonblocking(false)?;
    server.set_read_timeout(Some(Duration::from_millis(50)))?;
    let server_addr = server.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let replies = Arc::new(AtomicU64::new(0));

    let echo = {
        let stop = stop.clone();
        let reply = vec![0x21u8; config.reply_len];
        std::thread::Builder::new()
            .name("bench-echo".into())
            .spawn(move || {
                let mut buf = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((_, from)) = server.recv_from(&mut buf) {
                        let _ = server.send_to(&reply, from);
                    }
                }
            })?
    };

    let threads = config.client_threads.max(1);
    let per_thread = config.in_flight.div_ceil(threads).max(1);
    let mut clients = Vec::new();
    for _ in 0..threads {
        let socket =
            crate::nettask::driver::bind_std("127.0.0.1:0".parse().expect("literal"), 8 << 20)?;
        socket.set_nonblocking(false)?;
        socket.set_read_timeout(Some(Duration::from_millis(20)))?;
        let stop = stop.clone();
        let replies = replies.clone();
        let request = vec![0x2cu8; config.request_len];
        clients.push(
            std::thread::Builder::new()
                .name("bench-ceiling".into())
                .spawn(move || {
                    client(socket, server_addr, &request, per_thread, &stop, &replies)
                })?,
        );
    }
    // Let the exchange settle before counting.
    std::thread::sleep(Duration::from_millis(300));
    let start_count = replies.load(Ordering::Relaxed);
    let start = Instant::now();
    std::thread::sleep(config.duration);
    let count = replies.load(Ordering::Relaxed) - start_count;
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.join();
    }
    let _ = echo.join();
    Ok(count as f64 / elapsed.as_secs_f64())
}

fn client(
    socket: UdpSocket,
    server: SocketAddr,
    request: &[u8],
    in_flight: usize,
    stop: &AtomicBool,
    replies: &AtomicU64,
) {
    let mut buf = [0u8; 2048];
    let refill = |socket: &UdpSocket| {
        for _ in 0..in_flight {
            let _ = socket.send_to(request, server);
        }
    };
    refill(&socket);
    while !stop.load(Ordering::Relaxed) {
        match socket.recv_from(&mut buf) {
            Ok(_) => {
                replies.fetch_add(1, Ordering::Relaxed);
                let _ = socket.send_to(request, server);
            }
            // Nothing for 20 ms: requests were lost in a full buffer; put them back in flight.
            Err(_) => refill(&socket),
        }
    }
}
