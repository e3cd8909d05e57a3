//! NetTask endpoints on a seeded simulated link with a virtual clock: loss, duplication,
//! reordering, corruption and delay; exactly-once delivery; peer-lost detection; a server that
//! forgets its sessions. Each test prints its seed; replay one with `NMS_SIM_SEED=<seed>`.

use nms::nettask::sim::{Harness, LinkConfig, seed_from_env};
use nms::nettask::{AgentEndpoint, AgentEvent, AgentIdentity, Config, ServerEndpoint, ServerEvent};
use nms::wire::{
    AlertConditions, Message, MetricsReport, RuleSource, Sample, TaskAssignment, WorkItem,
};
use std::collections::HashMap;
use std::time::Duration;

fn report(n: u32) -> Message {
    Message::Metrics(MetricsReport {
        task_number: 1,
        time_ms: 1_700_000_000_000 + u64::from(n),
        samples: vec![Sample::Cpu { percent: n as f32 }],
    })
}

fn report_number(m: &Message) -> u32 {
    match m {
        Message::Metrics(r) => (r.time_ms - 1_700_000_000_000) as u32,
        other => panic!("expected a metrics report, got {other:?}"),
    }
}

fn task(number: u32, rule_bytes: usize) -> Message {
    Message::Task(TaskAssignment {
        task_number: number,
        task_id: format!("task-{number}"),
        items: vec![WorkItem::Ping {
            destination: "127.0.0.1".into(),
            packet_count: 3,
            interval_ms: 200,
            frequency_s: 5,
        }],
        conditions: AlertConditions::default(),
        rules: vec![RuleSource {
            name: "big".into(),
            // Varied text so that a misordered reassembly would not go unnoticed.
            source: (0..rule_bytes)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect(),
        }],
    })
}

fn harsh() -> LinkConfig {
    LinkConfig {
        drop: 0.30,
        duplicate: 0.05,
        reorder: 0.10,
        reorder_delay: Duration::from_millis(80),
        corrupt: 0.02,
        delay: Duration::from_millis(10),
    }
}

fn harness(seed: u64, agents: usize, link: LinkConfig) -> Harness {
    harness_with_server(seed, ServerEndpoint::new(Config::default()), agents, link)
}

/// A harness around `server` with `agents` agents, r1, r2, ..., on `link` both ways.
fn harness_with_server(
    seed: u64,
    server: ServerEndpoint,
    agents: usize,
    link: LinkConfig,
) -> Harness {
    let mut h = Harness::new(seed, server, link, link);
    for i in 0..agents {
        let server = h.server_addr;
        let endpoint = AgentEndpoint::new(
            h.net.now,
            1_700_000_000_000,
            Config::default(),
            server,
            AgentIdentity::new(&format!("r{}", i + 1)),
            seed ^ (i as u64 + 1),
        );
        h.add_agent(endpoint);
    }
    h
}

fn count_by<K: std::hash::Hash + Eq>(items: impl IntoIterator<Item = K>) -> HashMap<K, usize> {
    let mut m = HashMap::new();
    for k in items {
        *m.entry(k).or_insert(0) += 1;
    }
    m
}

#[test]
fn every_message_is_delivered_exactly_once_over_a_hostile_link() {
    let seed = seed_from_env("hostile link");
    let mut h = harness(seed, 3, harsh());
    let reports_per_agent = 150u32;

    // Agents queue their reports before registration completes: they wait in the backlog.
    for (_, agent) in h.agents.iter_mut() {
        for n in 0..reports_per_agent {
            agent.send(h.net.now, &report(n));
        }
    }
    let all_registered = h.run_while(Duration::from_secs(120), Duration::from_millis(100), |h| {
        h.agents.iter().all(|(_, a)| a.is_registered())
    });
    assert!(all_registered, "seed {seed}: registration did not complete");

    // The server sends each agent two tasks, one of them about 20 KB (fragmented).
    let ids: Vec<u32> = h.agents.iter().filter_map(|(_, a)| a.agent_id()).collect();
    let now = h.net.now;
    for id in &ids {
        h.server
            .send(now, *id, &task(1, 200))
            .expect("agent has a session");
        h.server
            .send(now, *id, &task(2, 20_000))
            .expect("agent has a session");
    }

    let expected = reports_per_agent as usize * 3;
    run_until_delivered_and_acknowledged(&mut h, seed, reports_per_agent);
    let per_agent = count_by(
        h.server_received
            .iter()
            .map(|(id, m)| (*id, report_number(m))),
    );
    assert_eq!(
        per_agent.len(),
        expected,
        "seed {seed}: some report missing"
    );
    assert!(
        per_agent.values().all(|&c| c == 1),
        "seed {seed}: some report delivered twice"
    );
    check_each_agent_got_both_tasks_and_every_acknowledgement(&h, seed, reports_per_agent);
    assert!(h.net.dropped > 0 && h.net.duplicated > 0 && h.net.corrupted > 0);
    assert!(
        h.server.stats().duplicates > 0,
        "duplicates were suppressed, and counted"
    );
}

/// Runs until the server has every report and each agent both tasks, then until every report
/// is acknowledged and stray retransmissions have drained.
fn run_until_delivered_and_acknowledged(h: &mut Harness, seed: u64, reports_per_agent: u32) {
    let expected = reports_per_agent as usize * 3;
    let done = h.run_while(Duration::from_secs(600), Duration::from_millis(500), |h| {
        h.server_received.len() >= expected
            && h.agent_events.iter().all(|events| {
                events
                    .iter()
                    .filter(|e| matches!(e, AgentEvent::Message(_)))
                    .count()
                    >= 2
            })
    });
    // Every report is acknowledged in the end (retransmission goes on until it is), and stray
    // retransmissions and duplicates drain; then nothing may have arrived twice.
    let all_acknowledged = h.run_while(Duration::from_secs(600), Duration::from_secs(1), |h| {
        h.agent_events.iter().all(|events| {
            events
                .iter()
                .filter(|e| matches!(e, AgentEvent::Acknowledged(_)))
                .count()
                == reports_per_agent as usize
        })
    });
    assert!(
        all_acknowledged,
        "seed {seed}: some report never acknowledged"
    );
    h.run_for(Duration::from_secs(30));
    assert!(
        done,
        "seed {seed}: delivery did not complete: {} of {expected} reports",
        h.server_received.len()
    );
}

/// Each agent got both tasks, the 20 KB one unaltered, and one acknowledgement per report.
fn check_each_agent_got_both_tasks_and_every_acknowledgement(
    h: &Harness,
    seed: u64,
    reports_per_agent: u32,
) {
    for (i, events) in h.agent_events.iter().enumerate() {
        let tasks: Vec<&TaskAssignment> = events
            .iter()
            .filter_map(|e| match e {
                AgentEvent::Message(Message::Task(t)) => Some(t),
                _ => None,
            })
            .collect();
        assert_eq!(
            tasks.len(),
            2,
            "seed {seed}: agent {i} got {} tasks",
            tasks.len()
        );
        let Message::Task(big) = task(2, 20_000) else {
            unreachable!()
        };
        assert!(
            tasks.contains(&&big),
            "seed {seed}: the 20 KB task arrived altered"
        );
        let acked = events
            .iter()
            .filter(|e| matches!(e, AgentEvent::Acknowledged(_)))
            .count();
        assert_eq!(
            acked, reports_per_agent as usize,
            "seed {seed}: agent {i} acknowledgements"
        );
    }
}

#[test]
fn a_silent_server_is_reported_lost_within_the_configured_bound() {
    let seed = seed_from_env("silent server");
    let mut h = harness(seed, 1, LinkConfig::lossy(0.0));
    assert!(
        h.run_while(Duration::from_secs(5), Duration::from_millis(10), |h| h
            .agents[0]
            .1
            .is_registered())
    );
    h.server_down = true;
    let start = h.net.now;
    h.agents[0].1.send(start, &report(1));
    let config = Config::default();
    // Each retransmission waits at most twice as long as the one before, starting from the
    // initial timeout: 200 + 400 + 800 + 1600 ms for 3 retransmissions, then the 4th timeout.
    let bound: Duration = (0..=config.max_retransmissions)
        .map(|i| (config.initial_timeout * 2u32.pow(i)).min(config.max_timeout))
        .sum();
    let lost = h.run_while(
        bound + Duration::from_millis(50),
        Duration::from_millis(5),
        |h| h.agent_events[0].contains(&AgentEvent::ServerLost),
    );
    assert!(lost, "seed {seed}: no ServerLost within {bound:?}");

    // The server returns: the agent recovers and the report is delivered once.
    h.server_down = false;
    let delivered = h.run_while(Duration::from_secs(30), Duration::from_millis(50), |h| {
        !h.server_received.is_empty()
    });
    assert!(
        delivered,
        "seed {seed}: report not delivered after recovery"
    );
    assert!(h.agent_events[0].contains(&AgentEvent::ServerRecovered));
    h.run_for(Duration::from_secs(10));
    assert_eq!(h.server_received.len(), 1);
}

#[test]
fn a_silent_agent_is_reported_lost_by_the_server() {
    let seed = seed_from_env("silent agent");
    let mut h = harness(seed, 1, LinkConfig::lossy(0.0));
    assert!(
        h.run_while(Duration::from_secs(5), Duration::from_millis(10), |h| h
            .agents[0]
            .1
            .is_registered())
    );
    let id = h.agents[0].1.agent_id().expect("registered");
    h.downlink.drop = 1.0;
    let now = h.net.now;
    h.server.send(now, id, &task(1, 10)).expect("session");
    let lost = h.run_while(Duration::from_secs(4), Duration::from_millis(10), |h| {
        h.server_events
            .contains(&ServerEvent::PeerLost { agent_id: id })
    });
    assert!(lost, "seed {seed}: server did not report the agent lost");
}

#[test]
fn agents_register_again_and_resend_after_the_server_forgets_them() {
    let seed = seed_from_env("server restart");
    let mut h = harness(seed, 2, LinkConfig::lossy(0.1));
    assert!(
        h.run_while(Duration::from_secs(30), Duration::from_millis(10), |h| {
            h.agents.iter().all(|(_, a)| a.is_registered())
        })
    );
    for (_, agent) in h.agents.iter_mut() {
        for n in 0..20 {
            agent.send(h.net.now, &report(n));
        }
    }
    h.run_for(Duration::from_millis(30));
    // The server restarts: every session is gone.
    h.server = ServerEndpoint::new(Config::default());
    let before_restart = h.server_received.len();
    for (_, agent) in h.agents.iter_mut() {
        for n in 20..40 {
            agent.send(h.net.now, &report(n));
        }
    }
    let done = h.run_while(Duration::from_secs(120), Duration::from_millis(100), |h| {
        let got = count_by(
            h.server_received
                .iter()
                .map(|(id, m)| (*id, report_number(m))),
        );
        got.len() == 80
    });
    assert!(done, "seed {seed}: reports missing after the restart");
    assert!(
        h.agent_events
            .iter()
            .all(|e| e.contains(&AgentEvent::Reregistering))
    );
    // The restarted server got each report it was sent at most once.
    let after = count_by(
        h.server_received[before_restart..]
            .iter()
            .map(|(id, m)| (*id, report_number(m))),
    );
    assert!(
        after.values().all(|&c| c == 1),
        "seed {seed}: duplicate after restart"
    );
}

#[test]
fn sequence_numbers_survive_wrap_around() {
    let seed = seed_from_env("wrap-around");
    let mut h = harness(
        seed,
        1,
        LinkConfig {
            delay: Duration::from_millis(1),
            ..LinkConfig::default()
        },
    );
    assert!(
        h.run_while(Duration::from_secs(5), Duration::from_millis(10), |h| h
            .agents[0]
            .1
            .is_registered())
    );
    let total = 66_000u32;
    let mut sent = 0u32;
    while sent < total {
        for n in sent..(sent + 2000).min(total) {
            h.agents[0].1.send(h.net.now, &report(n));
        }
        sent = (sent + 2000).min(total);
        h.run_for(Duration::from_secs(1));
    }
    h.run_for(Duration::from_secs(5));
    let got = count_by(h.server_received.iter().map(|(_, m)| report_number(m)));
    assert_eq!(
        got.len(),
        total as usize,
        "seed {seed}: reports missing across the wrap"
    );
    assert!(got.values().all(|&c| c == 1));
}

#[test]
fn a_replayed_registration_of_a_replaced_session_is_refused() {
    use nms::wire::{Body, Packet, Registration};
    let seed = seed_from_env("registration replay");
    let mut h = harness(seed, 0, LinkConfig::lossy(0.0));
    let from: std::net::SocketAddr = "10.0.9.9:4000".parse().unwrap();
    let registration = |instance: u64| {
        Packet {
            keyed: false,
            agent_id: 0,
            body: Body::Reliable {
                seq: 0,
                message: Message::Registration(Registration {
                    name: "r1".into(),
                    instance,
                    time_ms: 1,
                    capabilities: 0,
                    software: "test".into(),
                }),
            },
        }
        .encode(None)
    };
    let first = registration(11);
    let now = h.net.now;
    h.server.handle_datagram(now, from, &first);
    h.run_for(Duration::from_millis(10));
    h.server.handle_datagram(now, from, &registration(22));
    h.run_for(Duration::from_millis(10));
    assert_eq!(h.server.stats().registrations, 2);
    // The first registration, captured and sent again: its session was replaced.
    h.server.handle_datagram(h.net.now, from, &first);
    h.run_for(Duration::from_millis(10));
    assert_eq!(
        h.server.stats().registrations,
        2,
        "the replay started no session"
    );
    assert_eq!(h.server.stats().replays, 1);
}

/// A keyed REGISTRATION of `name` dated `time_ms`.
fn keyed_registration(key: &nms::wire::Key, name: &str, instance: u64, time_ms: u64) -> Vec<u8> {
    use nms::wire::{Body, Packet, Registration};
    Packet {
        keyed: true,
        agent_id: 0,
        body: Body::Reliable {
            seq: 0,
            message: Message::Registration(Registration {
                name: name.into(),
                instance,
                time_ms,
                capabilities: 0,
                software: "test".into(),
            }),
        },
    }
    .encode(Some(&key.session(instance)))
}

/// The REFUSED the server sent for `instance`, checked with that session's key.
fn refused_for(
    server: &mut ServerEndpoint,
    key: &nms::wire::Key,
    instance: u64,
) -> Option<nms::wire::packet::Refused> {
    use nms::wire::{Body, Packet};
    let now = std::time::Instant::now();
    while let Some(t) = server.poll_transmit(now) {
        if let Ok(Packet {
            body:
                Body::Reliable {
                    message: Message::Refused(r),
                    ..
                },
            ..
        }) = Packet::decode(&t.payload, Some(&key.session(instance)))
        {
            return Some(r);
        }
    }
    None
}

#[test]
fn a_keyed_server_takes_registrations_only_within_its_clock_window_and_newer_than_the_last() {
    use nms::nettask::Keys;
    use nms::wire::Key;
    use nms::wire::packet::RefusalReason;
    let key = Key::from_hex("00112233445566778899aabbccddeeff").unwrap();
    let config = Config {
        keys: Keys::single(Some(key.clone())),
        ..Config::default()
    };
    let window = config.registration_window.as_millis() as u64;
    let t0: u64 = 1_764_236_400_000;
    let now = std::time::Instant::now();
    let mut server = ServerEndpoint::new(config);
    server.set_wall_clock(now, t0);
    // As after a restart: the registry remembers the agent's last registration time.
    server.remember_registration("r1", t0 - 1_000);
    let from: std::net::SocketAddr = "10.0.9.9:4000".parse().unwrap();

    // A clock far ahead: refused, and told why (with the server's time).
    server.handle_datagram(
        now,
        from,
        &keyed_registration(&key, "r1", 1, t0 + window + 1),
    );
    let refused = refused_for(&mut server, &key, 1).expect("a REFUSED answer");
    assert_eq!(refused.reason, RefusalReason::Clock);
    assert_eq!(refused.server_time_ms, t0);
    assert!(matches!(
        server.poll_event(),
        Some(ServerEvent::RegistrationRefused { reason, .. }) if reason.contains("ahead")
    ));

    // Older than the last accepted one, inside the window: a replay.
    server.handle_datagram(now, from, &keyed_registration(&key, "r1", 2, t0 - 2_000));
    let refused = refused_for(&mut server, &key, 2).expect("a REFUSED answer");
    assert_eq!(refused.reason, RefusalReason::NotNewer);
    assert_eq!(refused.last_accepted_ms, t0 - 1_000);
    assert_eq!(server.stats().replays, 1);
    assert!(
        server.poll_event().is_none(),
        "reported once a minute per name"
    );

    // Fresh: handed to the application.
    server.handle_datagram(now, from, &keyed_registration(&key, "r1", 3, t0));
    assert!(matches!(
        server.poll_event(),
        Some(ServerEvent::Registration { .. })
    ));
    // A copy of the same registration before the application answered: not handed over twice.
    server.handle_datagram(now, from, &keyed_registration(&key, "r1", 3, t0));
    assert!(server.poll_event().is_none());
}

/// A report large enough to be sent in fragments (many interfaces), numbered like [`report`].
fn big_report(n: u32) -> Message {
    Message::Metrics(MetricsReport {
        task_number: 1,
        time_ms: 1_700_000_000_000 + u64::from(n),
        samples: (0..40)
            .map(|i| Sample::Interface {
                name: format!("interface-with-a-long-name-{i:02}-{n}"),
                state: nms::wire::LinkState::Up,
                packets_per_sec: i as f32,
                bytes_per_sec: n as f32,
                errors_per_sec: 0.0,
                counters: Default::default(),
            })
            .collect(),
    })
}

fn acknowledged(events: &[AgentEvent]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, AgentEvent::Acknowledged(_)))
        .count()
}

#[test]
fn held_acknowledgements_wait_for_the_store_and_a_failing_store_loses_nothing() {
    let seed = seed_from_env("held acknowledgements");
    let config = Config {
        held_types: nms::nettask::HeldTypes::of(&[nms::wire::PacketType::Metrics]),
        ..Config::default()
    };
    let mut h = harness_with_server(seed, ServerEndpoint::new(config), 3, harsh());
    h.store_delay = Duration::from_millis(15);
    let registered = h.run_while(Duration::from_secs(120), Duration::from_millis(100), |h| {
        h.agents.iter().all(|(_, a)| a.is_registered())
    });
    assert!(registered, "seed {seed}: registration did not complete");

    // The disk is full: every report reaches the server, none is kept, none is acknowledged.
    h.store_fails = true;
    let reports_per_agent = 60u32;
    let now = h.net.now;
    for (_, agent) in h.agents.iter_mut() {
        for n in 0..reports_per_agent {
            let m = if n % 10 == 3 {
                big_report(n)
            } else {
                report(n)
            };
            agent.send(now, &m);
        }
    }
    h.run_for(Duration::from_secs(60));
    assert!(h.store_refusals > 0, "seed {seed}: the store was tried");
    assert!(h.server_received.is_empty());
    for (i, events) in h.agent_events.iter().enumerate() {
        assert_eq!(
            acknowledged(events),
            0,
            "seed {seed}: agent {i} saw an acknowledgement for a report that was not stored"
        );
    }

    // Space returns: the agents' retransmissions are stored, each report exactly once.
    h.store_fails = false;
    let expected = reports_per_agent as usize * 3;
    let all_acknowledged = h.run_while(Duration::from_secs(900), Duration::from_secs(1), |h| {
        h.agent_events
            .iter()
            .all(|events| acknowledged(events) == reports_per_agent as usize)
    });
    assert!(
        all_acknowledged,
        "seed {seed}: {} of {expected} reports acknowledged",
        h.agent_events
            .iter()
            .map(|e| acknowledged(e))
            .sum::<usize>()
    );
    h.run_for(Duration::from_secs(30));
    let per_report = count_by(
        h.server_received
            .iter()
            .map(|(id, m)| (*id, report_number(m))),
    );
    assert_eq!(
        per_report.len(),
        expected,
        "seed {seed}: a report is missing"
    );
    assert!(
        per_report.values().all(|&c| c == 1),
        "seed {seed}: a report was stored twice"
    );
    assert!(
        h.server_received.iter().any(|(_, m)| *m == big_report(3)),
        "the fragmented reports arrived whole"
    );
    assert_eq!(h.server.held(), 0, "no acknowledgement is left held");
}

#[test]
fn a_registration_accepted_with_a_clock_a_day_ahead_does_not_lock_the_agent_out() {
    use nms::nettask::Keys;
    use nms::wire::Key;
    let key = Key::from_hex("00112233445566778899aabbccddeeff").unwrap();
    let mut server = ServerEndpoint::new(Config {
        keys: Keys::single(Some(key.clone())),
        ..Config::default()
    });
    let t0: u64 = 1_764_236_400_000;
    let now = std::time::Instant::now();
    server.set_wall_clock(now, t0);
    // A registry from before the window existed: the agent once registered a day ahead.
    server.remember_registration("r1", t0 + 86_400_000);
    let from: std::net::SocketAddr = "10.0.9.9:4000".parse().unwrap();
    server.handle_datagram(now, from, &keyed_registration(&key, "r1", 9, t0));
    assert!(
        matches!(server.poll_event(), Some(ServerEvent::Registration { .. })),
        "the corrected clock is accepted: a last time outside the window counts for nothing"
    );
}

#[test]
fn a_name_without_a_key_is_refused_when_per_agent_keys_are_configured() {
    use nms::nettask::Keys;
    use nms::wire::{Body, Key, Packet, Registration};
    let key = Key::from_hex("00112233445566778899aabbccddeeff").unwrap();
    let mut keys = Keys::default();
    keys.per_agent.insert("r1".into(), key.clone());
    let mut server = ServerEndpoint::new(Config {
        keys,
        ..Config::default()
    });
    let now = std::time::Instant::now();
    server.set_wall_clock(now, 1_764_236_400_000);
    let from: std::net::SocketAddr = "10.0.9.9:4000".parse().unwrap();
    let stranger = Packet {
        keyed: false,
        agent_id: 0,
        body: Body::Reliable {
            seq: 0,
            message: Message::Registration(Registration {
                name: "stranger".into(),
                instance: 5,
                time_ms: 1_764_236_400_000,
                capabilities: 0,
                software: "test".into(),
            }),
        },
    }
    .encode(None);
    for _ in 0..3 {
        server.handle_datagram(now, from, &stranger);
    }
    assert_eq!(server.stats().keyless_names, 3, "every one counted");
    assert!(matches!(
        server.poll_event(),
        Some(ServerEvent::RegistrationRefused { name, reason, .. })
            if name == "stranger" && reason.contains("no key")
    ));
    assert!(
        server.poll_event().is_none(),
        "one log line per name per interval"
    );
    assert!(
        server.poll_transmit(now).is_none(),
        "no answer to a stranger"
    );
    assert_eq!(server.stats().registrations, 0);
}

/// An agent given a server that never answers first, and the live one second.
fn failover_harness(seed: u64, prefer_first: bool) -> Harness {
    let mut h = Harness::new(
        seed,
        ServerEndpoint::new(Config::default()),
        LinkConfig::lossy(0.05),
        LinkConfig::lossy(0.05),
    );
    let dead: std::net::SocketAddr = "10.0.0.99:8081".parse().unwrap();
    let endpoint = AgentEndpoint::with_servers(
        h.net.now,
        1_700_000_000_000,
        Config::default(),
        vec![dead, h.server_addr],
        prefer_first,
        AgentIdentity::new("r1"),
        seed,
    );
    h.add_agent(endpoint);
    h
}

fn switches_to(events: &[AgentEvent], to: std::net::SocketAddr) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, AgentEvent::SwitchedServer { to: t, .. } if *t == to))
        .count()
}

#[test]
fn an_agent_registers_with_the_server_that_answers_and_carries_its_reports_when_it_is_lost() {
    let seed = seed_from_env("failover");
    let mut h = failover_harness(seed, false);
    let live = h.server_addr;
    let registered = h.run_while(Duration::from_secs(60), Duration::from_millis(100), |h| {
        h.agents[0].1.is_registered()
    });
    assert!(
        registered,
        "seed {seed}: never registered with the live server"
    );
    assert!(switches_to(&h.agent_events[0], live) >= 1);
    let now = h.net.now;
    for n in 0..20 {
        h.agents[0].1.send(now, &report(n));
    }
    h.run_for(Duration::from_secs(5));
    // The live server goes silent with reports in flight: the agent moves on (to the dead
    // one, then round to the live one again), keeping them, and delivers them when it is back.
    h.server_down = true;
    let now = h.net.now;
    for n in 20..40 {
        h.agents[0].1.send(now, &report(n));
    }
    h.run_for(Duration::from_secs(20));
    h.server_down = false;
    let all = h.run_while(Duration::from_secs(300), Duration::from_secs(1), |h| {
        count_by(h.server_received.iter().map(|(_, m)| report_number(m))).len() == 40
    });
    assert!(
        all,
        "seed {seed}: not every report arrived after the failover"
    );
    let per = count_by(h.server_received.iter().map(|(_, m)| report_number(m)));
    assert!(
        per.values().all(|&c| c == 1),
        "seed {seed}: a report arrived twice"
    );
    // It stays with the server that serves it: no return to the first without prefer_first.
    let before = switches_to(&h.agent_events[0], "10.0.0.99:8081".parse().unwrap());
    h.run_for(Duration::from_secs(120));
    let after = switches_to(&h.agent_events[0], "10.0.0.99:8081".parse().unwrap());
    assert_eq!(
        before, after,
        "seed {seed}: it tried the first server again unasked"
    );
}

#[test]
fn with_prefer_first_an_agent_tries_the_first_server_again_and_loses_nothing_meanwhile() {
    let seed = seed_from_env("prefer first");
    let mut h = failover_harness(seed, true);
    let dead: std::net::SocketAddr = "10.0.0.99:8081".parse().unwrap();
    assert!(
        h.run_while(Duration::from_secs(60), Duration::from_millis(100), |h| {
            h.agents[0].1.is_registered()
        })
    );
    let tried = switches_to(&h.agent_events[0], dead);
    for n in 0..100u32 {
        let now = h.net.now;
        h.agents[0].1.send(now, &report(n));
        h.run_for(Duration::from_secs(1));
    }
    assert!(
        switches_to(&h.agent_events[0], dead) >= tried + 2,
        "seed {seed}: the first server was not tried again every 30 s"
    );
    let all = h.run_while(Duration::from_secs(120), Duration::from_secs(1), |h| {
        count_by(h.server_received.iter().map(|(_, m)| report_number(m))).len() == 100
    });
    assert!(
        all,
        "seed {seed}: reports were lost while the first server was tried"
    );
}
