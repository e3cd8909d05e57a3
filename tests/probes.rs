//! Probes: the ping and iperf3 parsers over real captured outputs (tests/fixtures), the runners
//! against loopback, and the system sampler on this host.

mod support;

use nms::probes::iperf::{self, IperfRole};
use nms::probes::ping;
use nms::probes::{Destination, ProbeError, SystemSampler, Tools};
use nms::wire::{AlertType, LinkState, Sample, Transport};
use std::net::{Ipv4Addr, UdpSocket};
use std::time::{Duration, Instant};
use support::ports::free_tcp_port;

fn fixture(path: &str) -> String {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// Equal up to float parsing and summation rounding.
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
}

#[track_caller]
fn assert_close(actual: f64, expected: f64) {
    assert!(close(actual, expected), "{actual} is not {expected}");
}

/// ping's own `rtt min/avg/max/mdev` line, as (min, avg, max).
fn ping_summary(text: &str) -> (f64, f64, f64) {
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("rtt min/avg/max/mdev = "))
        .expect("summary line");
    let v: Vec<f64> = line
        .trim_end_matches(" ms")
        .split('/')
        .map(|x| x.parse().expect("number"))
        .collect();
    (v[0], v[1], v[2])
}

// ---- ping parser -------------------------------------------------------------------------------

#[test]
fn ping_loopback_gives_every_reply_and_no_loss() {
    let text = fixture("ping/loopback.txt");
    let r = ping::parse(&text).expect("parses");
    assert_eq!(r.rtts_ms, vec![0.480, 0.041, 0.035]);
    assert_eq!(
        (r.transmitted, r.received, r.duplicates, r.errors),
        (3, 3, 0, 0)
    );
    assert_eq!(r.loss_percent, 0.0);
    assert_eq!((r.rtt_min_ms, r.rtt_max_ms), (0.035, 0.480));
    // Without duplicates our statistics agree with ping's own (printed to 3 decimals).
    let (min, avg, max) = ping_summary(&text);
    assert_eq!((r.rtt_min_ms, r.rtt_max_ms), (min, max));
    assert!((r.rtt_avg_ms - avg).abs() < 0.0005);
    // Jitter: mean of |0.041 - 0.480| and |0.035 - 0.041|.
    assert_close(r.jitter_ms, (0.439 + 0.006) / 2.0);
}

#[test]
fn ping_ipv6_loopback_parses() {
    let r = ping::parse(&fixture("ping/loopback_ipv6.txt")).expect("parses");
    assert_eq!(r.rtts_ms, vec![0.196, 0.048]);
    assert_eq!((r.transmitted, r.received), (2, 2));
    assert_close(r.jitter_ms, 0.148);
}

#[test]
fn ping_partial_loss_counts_lost_packets() {
    let text = fixture("ping/partial_loss.txt");
    let r = ping::parse(&text).expect("parses");
    assert_eq!((r.transmitted, r.received), (6, 3));
    assert_eq!(r.loss_percent, 50.0);
    assert_eq!(r.rtts_ms, vec![0.202, 0.042, 0.047]);
    let (min, avg, max) = ping_summary(&text);
    assert_eq!((r.rtt_min_ms, r.rtt_max_ms), (min, max));
    assert!((r.rtt_avg_ms - avg).abs() < 0.0005);
}

#[test]
fn ping_duplicates_are_left_out_of_the_statistics() {
    let text = fixture("ping/duplicates_partial_loss.txt");
    let r = ping::parse(&text).expect("parses");
    assert_eq!((r.transmitted, r.received, r.duplicates), (5, 4, 4));
    assert_eq!(r.loss_percent, 20.0);
    assert_eq!(r.rtts_ms, vec![0.734, 0.049, 0.043, 0.045]);
    assert_eq!((r.rtt_min_ms, r.rtt_max_ms), (0.043, 0.734));
    assert_close(r.rtt_avg_ms, (0.734 + 0.049 + 0.043 + 0.045) / 4.0);
    assert_close(r.jitter_ms, (0.685 + 0.006 + 0.002) / 3.0);
    // iputils folds the duplicates (0.740 ms) into its own maximum; we do not.
    assert_eq!(ping_summary(&text).2, 0.740);
}

#[test]
fn ping_total_loss_has_no_rtt_and_full_loss() {
    for file in ["ping/total_loss.txt", "ping/host_unreachable.txt"] {
        let r = ping::parse(&fixture(file)).expect(file);
        assert_eq!((r.transmitted, r.received), (2, 0), "{file}");
        assert_eq!(r.loss_percent, 100.0, "{file}");
        assert!(r.rtts_ms.is_empty());
        assert!(r.rtt_min_ms.is_nan() && r.rtt_avg_ms.is_nan() && r.rtt_max_ms.is_nan());
        assert!(r.jitter_ms.is_nan());
        match r.to_sample() {
            Sample::Ping {
                rtt_avg_ms,
                jitter_ms,
                loss_percent,
                ..
            } => {
                assert!(rtt_avg_ms.is_nan() && jitter_ms.is_nan());
                assert_eq!(loss_percent, 100.0);
            }
            other => panic!("not a ping sample: {other:?}"),
        }
    }
    let unreachable = ping::parse(&fixture("ping/host_unreachable.txt")).expect("parses");
    assert_eq!(unreachable.errors, 2);
}

#[test]
fn ping_single_reply_has_no_jitter() {
    let text = fixture("ping/partial_loss.txt");
    // Keep only the first reply line, as a run where one reply came back.
    let one: String = text
        .lines()
        .filter(|l| !l.contains("icmp_seq=3") && !l.contains("icmp_seq=5"))
        .map(|l| format!("{l}\n"))
        .collect();
    let r = ping::parse(&one).expect("parses");
    assert_eq!(r.rtts_ms, vec![0.202]);
    assert!(r.jitter_ms.is_nan());
    assert_eq!(r.rtt_avg_ms, 0.202);
}

#[test]
fn ping_unknown_host_is_named() {
    let err = ping::parse(&fixture("ping/unknown_host.txt")).expect_err("fails");
    match &err {
        ProbeError::UnknownHost { host, reason } => {
            assert_eq!(host, "nosuchhost.invalid");
            assert_eq!(reason, "Name or service not known");
        }
        other => panic!("expected UnknownHost, got {other:?}"),
    }
    assert!(err.to_string().contains("nosuchhost.invalid"));
    assert_eq!(err.alert_type(), AlertType::Error);
}

#[test]
fn ping_network_unreachable_and_permission_errors() {
    let err = ping::parse(&fixture("ping/network_unreachable.txt")).expect_err("fails");
    assert!(
        matches!(&err, ProbeError::Unreachable { detail, .. } if detail.contains("Network is unreachable")),
        "{err:?}"
    );
    let err = ping::parse(&fixture("ping/permission_denied.txt")).expect_err("fails");
    match &err {
        ProbeError::PermissionDenied { detail, .. } => {
            assert!(detail.contains("Operation not permitted"), "{detail}");
            assert!(detail.contains("cap_net_raw"), "{detail}");
        }
        other => panic!("expected PermissionDenied, got {other:?}"),
    }
}

#[test]
fn ping_refusing_a_short_interval_says_why() {
    let err = ping::parse(&fixture("ping/interval_too_short.txt")).expect_err("fails");
    assert_eq!(
        err.to_string(),
        "ping is not permitted to run here: cannot flood; minimal interval allowed for user is \
         2ms: the task's interval between packets is shorter than this host's ping allows this \
         user (run the agent as root, or lengthen the interval)"
    );
    assert_eq!(err.cause(), "permission:ping");
}

#[test]
fn ping_garbage_is_a_parse_error() {
    for text in [
        "",
        "\n\n",
        "hello world\n",
        "3 packets transmitted, lots received\n",
    ] {
        let err = ping::parse(text).expect_err(text);
        assert!(
            matches!(err, ProbeError::Parse { tool: "ping", .. }),
            "{text:?}: {err:?}"
        );
    }
    let bad_time = "64 bytes from 127.0.0.1: icmp_seq=1 ttl=64 time=abc ms\n";
    assert!(matches!(
        ping::parse(bad_time),
        Err(ProbeError::Parse { .. })
    ));
}

// ---- iperf3 parser -----------------------------------------------------------------------------

#[test]
fn iperf_tcp_client_reports_receiver_bandwidth() {
    let r = iperf::parse(&fixture("iperf3/client_tcp.json")).expect("parses");
    assert_eq!(r.role, IperfRole::Client);
    assert_eq!(r.transport, Transport::Tcp);
    assert_close(r.bandwidth_bps, 14850210688.7272);
    assert_eq!(r.bytes, 1862402048);
    assert_eq!(r.retransmits, Some(10));
    assert!(r.jitter_ms.is_nan() && r.loss_percent.is_nan());
    match r.to_sample() {
        Sample::Iperf {
            transport,
            bandwidth_bps,
            offered_bps,
            jitter_ms,
            loss_percent,
        } => {
            assert_eq!(transport, Transport::Tcp);
            assert_eq!(bandwidth_bps, 14850210688.7272_f64 as f32);
            // TCP has no offered rate: it sends as fast as the link allows.
            assert!(offered_bps.is_nan());
            assert!(jitter_ms.is_nan() && loss_percent.is_nan());
        }
        other => panic!("not an iperf sample: {other:?}"),
    }
}

#[test]
fn iperf_tcp_client_falls_back_to_sender_summary() {
    let mut json: serde_json::Value =
        serde_json::from_str(&fixture("iperf3/client_tcp.json")).expect("json");
    let end = json["end"].as_object_mut().expect("end");
    end.remove("sum_received");
    let r = iperf::parse(&json.to_string()).expect("parses");
    assert_close(r.bandwidth_bps, 14916786876.592138);
}

#[test]
fn iperf_udp_client_gives_jitter_and_loss() {
    let r = iperf::parse(&fixture("iperf3/client_udp.json")).expect("parses");
    assert_eq!((r.role, r.transport), (IperfRole::Client, Transport::Udp));
    assert_close(r.bandwidth_bps, 10220325.055332184);
    assert_close(r.jitter_ms, 0.00495775169947453);
    assert_close(r.loss_percent, 0.0);
    assert_eq!(r.retransmits, None);
    // Run with `-b 10M`: what the client sent, apart from what arrived.
    assert_close(r.offered_bps, 10222777.732225958);

    let r = iperf::parse(&fixture("iperf3/client_udp_loss.json")).expect("parses");
    assert_close(r.offered_bps, 10222052.026040016);
    assert_close(r.bandwidth_bps, 9172691.79090153);
    assert_close(r.jitter_ms, 0.007205739820140867);
    assert_close(r.loss_percent, 10.256410256410257);
}

#[test]
fn iperf_udp_client_without_receiver_summary_uses_sum() {
    // iperf3 before 3.10 printed only `end.sum` for UDP.
    let mut json: serde_json::Value =
        serde_json::from_str(&fixture("iperf3/client_udp_loss.json")).expect("json");
    let end = json["end"].as_object_mut().expect("end");
    end.remove("sum_received");
    end.remove("sum_sent");
    let r = iperf::parse(&json.to_string()).expect("parses");
    assert_close(r.bandwidth_bps, 10222052.026040016);
    assert_close(r.offered_bps, 10222052.026040016);
    assert_close(r.loss_percent, 10.256410256410257);
}

#[test]
fn iperf_server_side_reports_what_it_received() {
    let r = iperf::parse(&fixture("iperf3/server_tcp.json")).expect("parses");
    assert_eq!((r.role, r.transport), (IperfRole::Server, Transport::Tcp));
    assert_close(r.bandwidth_bps, 14850210688.7272);

    let r = iperf::parse(&fixture("iperf3/server_udp.json")).expect("parses");
    assert_eq!((r.role, r.transport), (IperfRole::Server, Transport::Udp));
    // The server's `end.sum` says 0 bps; the received summary is the real figure.
    assert_close(r.bandwidth_bps, 10220325.055332184);
    assert_close(r.jitter_ms, 0.00495775169947453);
    assert_close(r.loss_percent, 0.0);
}

#[test]
fn iperf_errors_carry_iperf_message() {
    assert!(matches!(
        iperf::parse(&fixture("iperf3/client_server_busy.json")),
        Err(ProbeError::ServerBusy)
    ));
    for (file, message) in [
        (
            "iperf3/client_connection_refused.json",
            "unable to connect to server: Connection refused",
        ),
        (
            "iperf3/client_unknown_host.json",
            "unable to connect to server: Name or service not known",
        ),
        (
            "iperf3/server_address_in_use.json",
            "error - unable to start listener for connections: Address already in use",
        ),
        (
            "iperf3/client_udp_handshake_lost.json",
            "unable to read from stream socket: Resource temporarily unavailable",
        ),
    ] {
        match iperf::parse(&fixture(file)) {
            Err(ProbeError::Iperf(m)) => assert_eq!(m, message, "{file}"),
            other => panic!("{file}: expected Iperf error, got {other:?}"),
        }
    }
}

#[test]
fn iperf_text_after_json_is_ignored_and_garbage_refused() {
    let with_tail = format!("{}iperf3: exiting\n", fixture("iperf3/server_tcp.json"));
    assert!(iperf::parse(&with_tail).is_ok());
    for text in ["", "not json", "{\"start\": {}}", "[1,2]"] {
        let err = iperf::parse(text).expect_err(text);
        assert!(
            matches!(err, ProbeError::Parse { tool: "iperf3", .. }),
            "{text:?}: {err:?}"
        );
    }
}

// ---- errors --------------------------------------------------------------------------------------

#[test]
fn only_timeouts_raise_timeout_alerts() {
    let timeout = ProbeError::Timeout {
        tool: "ping",
        after: Duration::from_secs(5),
    };
    assert_eq!(timeout.alert_type(), AlertType::Timeout);
    assert_eq!(ProbeError::ServerBusy.alert_type(), AlertType::Error);
    assert_eq!(
        ProbeError::NoSuchInterface("eth9".into()).alert_type(),
        AlertType::Error
    );
    assert!(
        ProbeError::ToolMissing("iperf3".into())
            .to_string()
            .contains("iperf3")
    );
}

// ---- runners (loopback) --------------------------------------------------------------------------

fn loopback() -> Destination {
    Destination::new("127.0.0.1").expect("valid")
}

#[test]
fn ping_runner_measures_loopback() {
    let sample = smol::block_on(nms::probes::run_ping(
        &loopback(),
        3,
        200,
        Duration::from_secs(20),
    ))
    .expect("ping 127.0.0.1");
    match sample {
        Sample::Ping {
            rtt_min_ms,
            rtt_avg_ms,
            rtt_max_ms,
            jitter_ms,
            loss_percent,
            sent,
            received,
        } => {
            assert_eq!(loss_percent, 0.0);
            assert_eq!((sent, received), (3, 3), "this run's requests and replies");
            assert!(rtt_min_ms >= 0.0 && rtt_min_ms <= rtt_avg_ms && rtt_avg_ms <= rtt_max_ms);
            assert!(jitter_ms >= 0.0);
        }
        other => panic!("not a ping sample: {other:?}"),
    }
}

#[test]
fn ping_runner_is_killed_at_its_deadline() {
    let err = smol::block_on(nms::probes::run_ping(
        &loopback(),
        50,
        200,
        Duration::from_millis(100),
    ))
    .expect_err("50 pings cannot finish in 100 ms");
    assert!(
        matches!(err, ProbeError::Timeout { tool: "ping", .. }),
        "{err:?}"
    );
    assert_eq!(err.alert_type(), AlertType::Timeout);
}

#[test]
fn ping_runner_refuses_zero_packets() {
    let err = smol::block_on(nms::probes::run_ping(
        &loopback(),
        0,
        200,
        Duration::from_secs(5),
    ))
    .expect_err("0 packets");
    assert!(matches!(err, ProbeError::InvalidArgument(_)), "{err:?}");
}

#[test]
fn missing_programs_are_reported_as_missing() {
    let tools = Tools {
        ping: "nms-test-no-such-ping".into(),
        iperf3: "nms-test-no-such-iperf3".into(),
        guard: None,
    };
    let err = smol::block_on(tools.ping(&loopback(), 1, 200, Duration::from_secs(5)))
        .expect_err("no such program");
    assert!(matches!(&err, ProbeError::ToolMissing(name) if name == "nms-test-no-such-ping"));
    let err = smol::block_on(tools.iperf_client(
        &loopback(),
        5201,
        1,
        Transport::Tcp,
        0,
        Duration::from_secs(5),
    ))
    .expect_err("no such program");
    assert!(matches!(&err, ProbeError::ToolMissing(name) if name == "nms-test-no-such-iperf3"));
}

/// The rate a test offers: 20 Mbit/s for UDP, iperf3's default for TCP.
fn rate(transport: Transport) -> u64 {
    match transport {
        Transport::Udp => 20_000_000,
        Transport::Tcp => 0,
    }
}

/// Runs a one-off server and a client against it on loopback; the client retries while the
/// server is still starting.
fn iperf_pair(transport: Transport) -> (Result<Sample, ProbeError>, Option<Sample>) {
    let tools = Tools::default();
    let port = free_tcp_port();
    smol::block_on(async {
        let server = tools.iperf_server(
            Some(Ipv4Addr::LOCALHOST.into()),
            port,
            Duration::from_secs(30),
        );
        let client = async {
            let mut attempt = 0;
            loop {
                let result = tools
                    .iperf_client(
                        &loopback(),
                        port,
                        1,
                        transport,
                        rate(transport),
                        Duration::from_secs(20),
                    )
                    .await;
                attempt += 1;
                match result {
                    Err(ProbeError::Iperf(m)) if m.contains("refused") && attempt < 50 => {
                        async_io::Timer::after(Duration::from_millis(100)).await;
                    }
                    other => return other,
                }
            }
        };
        let (client, server) = futures_lite::future::zip(client, server).await;
        (client, server.expect("server ran"))
    })
}

#[test]
fn iperf_tcp_client_and_server_measure_loopback() {
    let (client, server) = iperf_pair(Transport::Tcp);
    for sample in [
        client.expect("client"),
        server.expect("server saw the test"),
    ] {
        match sample {
            Sample::Iperf {
                transport,
                bandwidth_bps,
                ..
            } => {
                assert_eq!(transport, Transport::Tcp);
                assert!(bandwidth_bps > 0.0);
            }
            other => panic!("not an iperf sample: {other:?}"),
        }
    }
}

#[test]
fn iperf_udp_client_measures_loopback() {
    let (client, _server) = iperf_pair(Transport::Udp);
    match client.expect("client") {
        Sample::Iperf {
            transport,
            bandwidth_bps,
            offered_bps,
            jitter_ms,
            loss_percent,
        } => {
            assert_eq!(transport, Transport::Udp);
            assert!(bandwidth_bps > 0.0);
            // `-b 20M` was passed: the client offered about 20 Mbit/s, not iperf3's 1 Mbit/s.
            assert!(
                (15e6..=25e6).contains(&offered_bps),
                "offered {offered_bps} bit/s"
            );
            assert!(jitter_ms >= 0.0);
            assert!((0.0..=100.0).contains(&loss_percent));
        }
        other => panic!("not an iperf sample: {other:?}"),
    }
}

#[test]
fn iperf_client_without_server_says_connection_refused() {
    let err = smol::block_on(nms::probes::run_iperf_client(
        &loopback(),
        free_tcp_port(),
        1,
        Transport::Tcp,
        0,
        Duration::from_secs(20),
    ))
    .expect_err("nothing listens");
    assert!(
        matches!(&err, ProbeError::Iperf(m) if m.contains("Connection refused")),
        "{err:?}"
    );
}

#[test]
fn iperf_server_without_client_ends_empty_at_its_deadline() {
    let result = smol::block_on(Tools::default().iperf_server(
        Some(Ipv4Addr::LOCALHOST.into()),
        free_tcp_port(),
        Duration::from_millis(300),
    ));
    assert!(matches!(result, Ok(None)), "{result:?}");
}

// ---- system sampler ------------------------------------------------------------------------------

#[test]
fn system_sampler_gives_bounded_cpu_ram_and_loopback_rates() {
    let mut sampler = SystemSampler::new(Instant::now()).expect("sysinfo");
    // Some loopback traffic, and enough time for the CPU counters to move.
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let to = socket.local_addr().expect("addr");
    for _ in 0..10 {
        socket.send_to(&[0u8; 512], to).expect("send");
    }
    std::thread::sleep(Duration::from_millis(250));
    let interfaces = ["lo".to_owned(), "nms-no-such-if0".to_owned()];
    let (samples, errors) = sampler.sample(Instant::now(), true, true, &interfaces);

    let cpu = samples.iter().find_map(|s| match s {
        Sample::Cpu { percent } => Some(*percent),
        _ => None,
    });
    let ram = samples.iter().find_map(|s| match s {
        Sample::Ram { percent } => Some(*percent),
        _ => None,
    });
    assert!((0.0..=100.0).contains(&cpu.expect("cpu sample")));
    assert!(ram.expect("ram sample") > 0.0 && ram.expect("ram") <= 100.0);

    let lo = samples
        .iter()
        .find_map(|s| match s {
            Sample::Interface {
                name,
                state,
                packets_per_sec,
                bytes_per_sec,
                errors_per_sec,
                counters,
            } if name == "lo" => {
                // Loopback is up wherever tests run (they talk over it).
                assert_eq!(*state, LinkState::Up);
                Some((*packets_per_sec, *bytes_per_sec, *errors_per_sec, *counters))
            }
            _ => None,
        })
        .expect("lo sample");
    assert!(lo.0 > 0.0 && lo.1 > 0.0, "traffic on lo: {lo:?}");
    assert!(lo.2 >= 0.0);
    // The raw counters, receive and transmit apart: on loopback what is sent is received.
    let c = lo.3;
    assert!(c.rx_bytes.expect("rx bytes") > 0 && c.tx_bytes.expect("tx bytes") > 0);
    assert!(c.rx_packets.expect("rx packets") > 0 && c.tx_packets.is_some());
    assert!(c.rx_errors.is_some() && c.tx_errors.is_some());
    if std::path::Path::new("/sys/class/net/lo/statistics/rx_dropped").exists() {
        assert!(c.rx_dropped.is_some() && c.tx_dropped.is_some(), "{c:?}");
    }

    assert_eq!(samples.len(), 3, "no sample for the missing interface");
    assert!(matches!(&errors[..], [ProbeError::NoSuchInterface(n)] if n == "nms-no-such-if0"));

    // A second interval is measured from the first sample on.
    let (again, _) = sampler.sample(Instant::now(), false, false, &interfaces[..1]);
    assert!(
        matches!(&again[..], [Sample::Interface { bytes_per_sec, .. }] if *bytes_per_sec >= 0.0)
    );
}

#[test]
fn system_sampler_asks_only_for_what_is_wanted() {
    let mut sampler = SystemSampler::new(Instant::now()).expect("sysinfo");
    let (samples, errors) = sampler.sample(Instant::now(), false, true, &[]);
    assert!(errors.is_empty());
    assert!(matches!(&samples[..], [Sample::Ram { .. }]));
}
