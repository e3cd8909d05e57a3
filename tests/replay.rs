//! Someone on the network records NetTask traffic and plays it back, or forges packets: before
//! and after an agent restart, after a server restart, from another address, without keys and
//! with them. Each test drives real endpoints over a perfect in-memory link (a virtual clock,
//! no loss) with an attacker who sees every datagram and can send any of them again, and checks
//! what a user would notice: nothing replayed is stored, nothing real is suppressed, and no
//! agent is moved.

use nms::nettask::{AgentEndpoint, AgentEvent, AgentIdentity, Config, Keys, ServerEndpoint};
use nms::nettask::{ServerEvent, Transmit};
use nms::wire::{Body, Key, Message, MetricsReport, Packet, PacketType, Registered, Sample};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const T0: u64 = 1_764_236_400_000;

fn key() -> Key {
    Key::from_hex("6e6d7320676f6c64656e206b65792031").unwrap()
}

fn keyed() -> Config {
    Config {
        keys: Keys::single(Some(key())),
        ..Config::default()
    }
}

fn report(n: u32) -> Message {
    Message::Metrics(MetricsReport {
        task_number: 1,
        time_ms: T0 + u64::from(n),
        samples: vec![Sample::Cpu { percent: n as f32 }],
    })
}

fn report_number(m: &Message) -> Option<u32> {
    match m {
        Message::Metrics(r) => Some((r.time_ms - T0) as u32),
        _ => None,
    }
}

/// A server, one agent at a time, an attacker's address, and everything that crossed the link.
struct Link {
    start: Instant,
    now: Instant,
    server: ServerEndpoint,
    server_addr: SocketAddr,
    agent: AgentEndpoint,
    agent_addr: SocketAddr,
    /// Every datagram the agent sent, in order.
    recorded_uplink: Vec<Vec<u8>>,
    /// Every datagram the server sent, in order.
    recorded_downlink: Vec<Vec<u8>>,
    /// Report numbers the server application received, and from which address.
    stored: Vec<(u32, SocketAddr)>,
    agent_events: Vec<AgentEvent>,
    server_events: Vec<ServerEvent>,
}

/// An agent process started at `now`, `since_t0` after T0 on the shared clock.
fn agent(config: Config, now: Instant, since_t0: Duration, seed: u64) -> AgentEndpoint {
    AgentEndpoint::new(
        now,
        T0 + since_t0.as_millis() as u64,
        config,
        "10.0.0.1:8081".parse().unwrap(),
        AgentIdentity::new("r1"),
        seed,
    )
}

/// A server process started at `now`, `since_t0` after T0.
fn server(config: Config, now: Instant, since_t0: Duration) -> ServerEndpoint {
    let mut s = ServerEndpoint::new(config);
    s.set_wall_clock(now, T0 + since_t0.as_millis() as u64);
    s
}

impl Link {
    fn new(config: Config) -> Link {
        let now = Instant::now();
        Link {
            start: now,
            now,
            server: server(config.clone(), now, Duration::ZERO),
            server_addr: "10.0.0.1:8081".parse().unwrap(),
            agent: agent(config, now, Duration::ZERO, 1),
            agent_addr: "10.0.1.1:40000".parse().unwrap(),
            recorded_uplink: Vec::new(),
            recorded_downlink: Vec::new(),
            stored: Vec::new(),
            agent_events: Vec::new(),
            server_events: Vec::new(),
        }
    }

    /// Delivers what both sides send, and runs their applications, until nothing moves; then
    /// lets `step` of virtual time pass.
    fn run(&mut self, step: Duration) {
        for _ in 0..10_000 {
            let mut moved = false;
            while let Some(Transmit { payload, .. }) = self.agent.poll_transmit(self.now) {
                self.recorded_uplink.push(payload.clone());
                self.server
                    .handle_datagram(self.now, self.agent_addr, &payload);
                moved = true;
            }
            while let Some(Transmit {
                destination,
                payload,
            }) = self.server.poll_transmit(self.now)
            {
                self.recorded_downlink.push(payload.clone());
                if destination == self.agent_addr {
                    self.agent
                        .handle_datagram(self.now, self.server_addr, &payload);
                }
                moved = true;
            }
            while let Some(e) = self.server.poll_event() {
                moved = true;
                match e {
                    ServerEvent::Registration { from, registration } => {
                        let reply = Registered {
                            instance: registration.instance,
                            alertflow_port: 8080,
                            heartbeat_ms: 1000,
                            timeout_ms: 200,
                            max_retransmissions: 3,
                            server_time_ms: T0,
                        };
                        self.server
                            .accept_registration(self.now, from, 1, &registration, reply);
                    }
                    ServerEvent::Message { message, from, .. } => {
                        if let Some(n) = report_number(&message) {
                            self.stored.push((n, from));
                        }
                    }
                    other => self.server_events.push(other),
                }
            }
            while let Some(e) = self.agent.poll_event() {
                moved = true;
                self.agent_events.push(e);
            }
            if !moved {
                break;
            }
        }
        self.now += step;
        self.server.handle_timeout(self.now);
        self.agent.handle_timeout(self.now);
    }

    fn settle(&mut self) {
        for _ in 0..50 {
            self.run(Duration::from_millis(100));
        }
    }

    fn send_reports(&mut self, numbers: std::ops::Range<u32>) {
        for n in numbers {
            self.agent.send(self.now, &report(n));
        }
        self.settle();
    }

    /// The attacker sends `datagrams` to the server from `from`.
    fn replay_to_server(&mut self, datagrams: &[Vec<u8>], from: SocketAddr) {
        for d in datagrams {
            self.server.handle_datagram(self.now, from, d);
        }
        self.settle();
    }

    fn stored_numbers(&self) -> Vec<u32> {
        self.stored.iter().map(|(n, _)| *n).collect()
    }
}

fn attacker() -> SocketAddr {
    "10.0.66.6:5555".parse().unwrap()
}

/// Datagrams of the recording that are reliable session traffic (reports, heartbeats).
fn session_packets(recorded: &[Vec<u8>]) -> Vec<Vec<u8>> {
    recorded
        .iter()
        .filter(|d| {
            nms::wire::Header::decode(d).is_ok_and(|h| h.packet_type == PacketType::Metrics)
        })
        .cloned()
        .collect()
}

#[test]
fn replayed_reports_after_an_agent_restart_neither_store_nor_suppress_anything() {
    let mut link = Link::new(keyed());
    link.settle();
    link.send_reports(0..10);
    assert_eq!(link.stored_numbers(), (0..10).collect::<Vec<_>>());
    let recording = link.recorded_uplink.clone();
    let old_registration = recording[0].clone();

    // The agent restarts: a new process, its sequence numbers from the start again.
    link.now += Duration::from_secs(5);
    link.agent = agent(keyed(), link.now, link.now - link.start, 2);
    link.settle();
    assert!(link.agent.is_registered());
    // Right after the new REGISTERED, the attacker replays the whole old session, and the old
    // registration, from elsewhere and from the agent's own address.
    link.replay_to_server(&recording, attacker());
    link.replay_to_server(&recording, link.agent_addr);
    link.replay_to_server(std::slice::from_ref(&old_registration), attacker());
    // The new session's reports, with the same sequence numbers as the old ones.
    link.send_reports(100..113);
    let stored = link.stored_numbers();
    assert_eq!(
        stored,
        (0..10).chain(100..113).collect::<Vec<_>>(),
        "every new report once, no old one again"
    );
    assert_eq!(link.server.address_of(1), Some(link.agent_addr));
    assert!(
        link.server.stats().bad_tags > 0,
        "the old packets failed the new session's key"
    );
}

#[test]
fn replayed_traffic_after_a_server_restart_is_refused() {
    let mut link = Link::new(keyed());
    link.settle();
    link.send_reports(0..5);
    let recording = link.recorded_uplink.clone();
    // The server restarts; the registry remembers the last registration's time.
    link.now += Duration::from_secs(5);
    let mut restarted = server(keyed(), link.now, link.now - link.start);
    restarted.remember_registration("r1", T0);
    restarted.know_agent(1, "r1");
    link.server = restarted;
    link.stored.clear();
    // Before the agent notices, the attacker replays everything it recorded.
    link.replay_to_server(&recording, attacker());
    assert!(
        link.stored.is_empty(),
        "nothing replayed is stored: {:?} {:?}",
        link.stored,
        link.server_events
    );
    assert_eq!(
        link.server.sessions(),
        0,
        "the old registration started no session"
    );
    assert!(link.server.stats().replays >= 1);
    // The real agent carries on: it hears `unknown agent`, registers again, resends.
    link.send_reports(5..8);
    assert_eq!(link.stored_numbers(), vec![5, 6, 7]);
}

#[test]
fn a_replay_from_another_address_does_not_move_the_agent() {
    let mut link = Link::new(keyed());
    link.settle();
    link.send_reports(0..3);
    let reports = session_packets(&link.recorded_uplink);
    assert_eq!(reports.len(), 3);
    link.replay_to_server(&reports, attacker());
    assert_eq!(
        link.server.address_of(1),
        Some(link.agent_addr),
        "the acknowledgements still go to the agent"
    );
    assert_eq!(link.stored_numbers(), vec![0, 1, 2]);
    // A new, authentic packet from a new address does move it (an agent behind NAT).
    let moved: SocketAddr = "10.0.1.1:40001".parse().unwrap();
    link.agent_addr = moved;
    link.send_reports(3..4);
    assert_eq!(link.server.address_of(1), Some(moved));
    assert_eq!(link.stored_numbers(), vec![0, 1, 2, 3]);
}

/// A METRICS packet for agent 1 with sequence number `seq`, tagged with `key` (or plain).
fn forged_report(seq: u16, key: Option<&Key>) -> Vec<u8> {
    Packet {
        keyed: key.is_some(),
        agent_id: 1,
        body: Body::Reliable {
            seq,
            message: report(999),
        },
    }
    .encode(key)
}

#[test]
fn forged_packets_do_not_use_up_a_keyed_agents_sequence_numbers() {
    let mut link = Link::new(keyed());
    link.settle();
    link.send_reports(0..2);
    // The attacker guesses the next 50 numbers, with a plain tag and with a wrong key.
    let wrong = Key::from_hex("ffeeddccbbaa99887766554433221100").unwrap();
    let forged: Vec<Vec<u8>> = (0..50u16)
        .flat_map(|s| {
            [
                forged_report(s, None),
                forged_report(s, Some(&wrong.session(1))),
            ]
        })
        .collect();
    link.replay_to_server(&forged, attacker());
    link.send_reports(2..12);
    assert_eq!(link.stored_numbers(), (0..12).collect::<Vec<_>>());
}

#[test]
fn without_keys_forged_packets_from_elsewhere_do_not_use_up_an_agents_sequence_numbers() {
    let mut link = Link::new(Config::default());
    link.settle();
    link.send_reports(0..2);
    // Anyone can make a valid plain tag; only the registered address speaks for the session.
    let forged: Vec<Vec<u8>> = (0..50u16).map(|s| forged_report(s, None)).collect();
    link.replay_to_server(&forged, attacker());
    assert!(link.server.stats().foreign_address >= 50);
    link.send_reports(2..12);
    assert_eq!(
        link.stored_numbers(),
        (0..12).collect::<Vec<_>>(),
        "all of the agent's reports, none of the forger's"
    );
}

#[test]
fn a_replayed_unknown_agent_noack_does_not_make_the_agent_register_again() {
    let mut link = Link::new(keyed());
    link.settle();
    link.send_reports(0..3);
    // The server restarts and forgets the session: the agent's next packet gets a NOACK.
    let mut restarted = server(keyed(), link.now, link.now - link.start);
    restarted.remember_registration("r1", T0);
    restarted.know_agent(1, "r1");
    link.server = restarted;
    link.send_reports(3..4);
    let noacks: Vec<Vec<u8>> = link
        .recorded_downlink
        .iter()
        .filter(|d| nms::wire::Header::decode(d).is_ok_and(|h| h.packet_type == PacketType::Noack))
        .cloned()
        .collect();
    assert!(
        !noacks.is_empty(),
        "the restarted server said `unknown agent`"
    );
    let registrations = |l: &Link| {
        l.agent_events
            .iter()
            .filter(|e| matches!(e, AgentEvent::Registered { .. }))
            .count()
    };
    let before = registrations(&link);
    // Played back to the agent in its new session, the old NOACKs are not believed.
    for n in &noacks {
        link.agent.handle_datagram(link.now, link.server_addr, n);
    }
    link.settle();
    assert_eq!(registrations(&link), before, "no new registration");
    assert!(link.agent.is_registered());
    assert_eq!(link.stored_numbers(), vec![0, 1, 2, 3]);
}

#[test]
fn incomplete_messages_of_many_agents_together_stay_within_the_global_limit() {
    use nms::wire::Fragment;
    let config = Config {
        max_reassembly_total: 256 * 1024,
        reassembly_timeout: Duration::from_secs(30),
        ..Config::default()
    };
    let now = Instant::now();
    let mut server = server(config.clone(), now, Duration::ZERO);
    // 100 agents register and each sends the first fragment of large messages, never the rest.
    for i in 0..100u32 {
        let from: SocketAddr = format!("10.0.2.{}:4000", i % 250 + 1).parse().unwrap();
        let from = SocketAddr::new(from.ip(), 4000 + i as u16);
        let name = format!("fake{i}");
        let mut a = AgentEndpoint::new(
            now,
            T0,
            config.clone(),
            "10.0.0.1:8081".parse().unwrap(),
            AgentIdentity::new(&name),
            u64::from(i),
        );
        let reg = a.poll_transmit(now).unwrap().payload;
        server.handle_datagram(now, from, &reg);
        while let Some(e) = server.poll_event() {
            if let ServerEvent::Registration { from, registration } = e {
                let reply = Registered {
                    instance: registration.instance,
                    alertflow_port: 8080,
                    heartbeat_ms: 1000,
                    timeout_ms: 200,
                    max_retransmissions: 3,
                    server_time_ms: T0,
                };
                server.accept_registration(now, from, i + 1, &registration, reply);
            }
        }
        while server.poll_transmit(now).is_some() {}
        for m in 0..20u16 {
            let fragment = Packet {
                keyed: false,
                agent_id: i + 1,
                body: Body::Reliable {
                    seq: m,
                    message: Message::Fragment(Fragment {
                        message_id: m,
                        index: 0,
                        count: 200,
                        inner_type: PacketType::Task,
                        chunk: vec![0; 1100],
                    }),
                },
            }
            .encode(None);
            server.handle_datagram(now, from, &fragment);
        }
        assert!(server.reassembly_buffered() <= 256 * 1024);
    }
    assert!(server.reassembly_buffered() > 0);
    assert!(
        server.stats().reassembly_dropped > 0,
        "the limit dropped messages"
    );
    // Given back when they time out.
    let later = now + Duration::from_secs(31);
    server.handle_timeout(later);
    assert_eq!(server.reassembly_buffered(), 0);
}
