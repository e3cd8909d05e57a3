//! Micro-benchmark of the server's hot path: `ServerEndpoint::handle_datagram` of one METRICS
//! packet from a registered agent, then `poll_transmit` of its ACK and `poll_event` of the
//! delivered report, as the driver does for every report. Run with `cargo bench --bench
//! ack_path`.

use divan::{Bencher, black_box};
use nms::bench::fleet::typical_report;
use nms::nettask::{AgentEndpoint, AgentIdentity, Config, ServerEndpoint, ServerEvent};
use nms::wire::{Body, Key, Message, Packet, Registered};
use std::net::SocketAddr;
use std::time::Instant;

fn main() {
    divan::main();
}

/// A server endpoint with one registered agent, and that agent's id.
fn registered_server(key: Option<Key>) -> (ServerEndpoint, u32, SocketAddr) {
    let now = Instant::now();
    let from: SocketAddr = "127.0.0.1:40000".parse().expect("literal");
    let server_addr: SocketAddr = "127.0.0.1:8081".parse().expect("literal");
    let keys = nms::nettask::Keys::single(key);
    let mut agent = AgentEndpoint::new(
        now,
        0,
        Config {
            keys: keys.clone(),
            ..Config::default()
        },
        server_addr,
        AgentIdentity::new("bench-agent"),
        1,
    );
    let mut server = ServerEndpoint::new(Config {
        keys,
        ..Config::default()
    });
    let registration = agent.poll_transmit(now).expect("a registration to send");
    server.handle_datagram(now, from, &registration.payload);
    let Some(ServerEvent::Registration { registration, .. }) = server.poll_event() else {
        panic!("the server saw no registration");
    };
    let agent_id = 12_345;
    server.accept_registration(
        now,
        from,
        agent_id,
        &registration,
        Registered {
            instance: registration.instance,
            alertflow_port: 8080,
            heartbeat_ms: 1000,
            timeout_ms: 200,
            max_retransmissions: 3,
            server_time_ms: 0,
        },
    );
    while server.poll_transmit(now).is_some() {}
    (server, agent_id, from)
}

fn ack_path(bencher: Bencher, key: Option<Key>) {
    let (mut server, agent_id, from) = registered_server(key.clone());
    // One packet per sequence number, so no report is a duplicate however long the run.
    let packets: Vec<Vec<u8>> = (0..=u16::MAX)
        .map(|seq| {
            Packet {
                keyed: key.is_some(),
                agent_id,
                body: Body::Reliable {
                    seq,
                    message: Message::Metrics(typical_report(1, 1_000 + u64::from(seq))),
                },
            }
            .encode(key.as_ref())
        })
        .collect();
    let mut next = 0usize;
    let now = Instant::now();
    bencher.bench_local(|| {
        let packet = &packets[next];
        next = (next + 1) & 0xffff;
        server.handle_datagram(now, from, black_box(packet));
        let ack = server.poll_transmit(now);
        let event = server.poll_event();
        (ack.map(|t| t.payload.len()), event.is_some())
    });
}

#[divan::bench]
fn metrics_to_ack(bencher: Bencher) {
    ack_path(bencher, None);
}

#[divan::bench]
fn metrics_to_ack_keyed(bencher: Bencher) {
    ack_path(
        bencher,
        Some(Key::from_bytes(&[7u8; 32]).expect("32 bytes make a key")),
    );
}
