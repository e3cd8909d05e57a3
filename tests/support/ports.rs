//! Free loopback ports: a port that was free a moment ago, for daemons and servers that must be
//! told their port, and the three ports of a server ([`Ports`]).

use std::net::{TcpListener, UdpSocket};

/// A UDP port on 127.0.0.1 that was free a moment ago.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("cannot bind a UDP socket on 127.0.0.1")
}

/// A TCP port on 127.0.0.1 that was free a moment ago, below the kernel's ephemeral range
/// (32768 and up): a port from that range can be taken, before the daemon told of it binds
/// it, by an outgoing connection of a test running beside (an iperf3 listener then fails with
/// "Address already in use").
pub fn free_tcp_port() -> u16 {
    for _ in 0..1000 {
        let port = fastrand::u16(20_000..32_000);
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("cannot bind a TCP socket on 127.0.0.1")
}

/// The three ports of a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    pub nettask: u16,
    pub alertflow: u16,
    pub http: u16,
}

impl Ports {
    /// Three free ports, all different.
    pub fn pick() -> Ports {
        let nettask = free_udp_port();
        loop {
            let alertflow = free_tcp_port();
            let http = free_tcp_port();
            if alertflow != http && alertflow != nettask && http != nettask {
                return Ports {
                    nettask,
                    alertflow,
                    http,
                };
            }
        }
    }
}
