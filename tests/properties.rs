//! Property tests of the wire format and of NetTask's receive-side state: encode and decode agree
//! on every valid message, keyed or not; no byte string makes a decoder panic; every single-bit
//! flip and every truncation of a valid packet or frame is refused; the ACK stays within the
//! original design's 18 bytes; the replay window accepts each sequence number exactly once; and
//! the reassembler gives back the original bytes for any chunking and arrival order.
//!
//! Values that may be NaN (metrics, alert values) make `==` on decoded values useless, so
//! round trips compare encodings, byte for byte. Case counts are kept small enough that the whole
//! file runs in a few seconds; raise them with `PROPTEST_CASES=10000 cargo test --test properties`.

use nms::nettask::reassembly::{Reassembler, ReassemblyError};
use nms::nettask::window::{Arrival, RECEIVE_WINDOW, ReplayWindow};
use nms::wire::codec::{Reader, Writer};
use nms::wire::packet::{MAX_AGENT_ID, MAX_TIME_MS, RefusalReason, Refused};
use nms::wire::{
    Ack, Alert, AlertConditions, AlertType, Body, Cancel, Decoded, Fragment, Frame, FrameBody,
    Heartbeat, Key, LinkState, Message, MetricsReport, Noack, NoackReason, Packet, PacketType,
    Registered, Registration, RuleSource, Sample, Severity, TAG_LEN, TaskAssignment, Transport,
    WorkItem, decode_any,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::subsequence;
use std::collections::HashSet;
use std::time::{Duration, Instant};

fn test_key() -> Key {
    Key::from_bytes(b"nms property key").expect("16 bytes is a valid key")
}

// ---------------------------------------------------------------------------------------------
// Strategies: every valid value of every message. Strings respect the decoders' byte limits.
// ---------------------------------------------------------------------------------------------

/// Text of up to `max_chars` characters, any Unicode: at most 4 * max_chars bytes.
fn text(max_chars: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("\\PC{{0,{max_chars}}}")).expect("valid regex")
}

fn nonempty_text(max_chars: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("\\PC{{1,{max_chars}}}")).expect("valid regex")
}

fn agent_id() -> impl Strategy<Value = u32> {
    prop_oneof![0..=200u32, 0..=MAX_AGENT_ID]
}

/// Any f32 a metrics sample may carry: finite or NaN (with any payload), never infinite.
fn measured() -> impl Strategy<Value = f32> {
    prop_oneof![
        any::<f32>().prop_filter("finite", |v| v.is_finite()),
        (0.0f32..1000.0),
        any::<u32>().prop_map(|bits| f32::from_bits(bits | 0x7f80_0001)),
    ]
}

/// A threshold: finite and non-negative.
fn threshold() -> impl Strategy<Value = f32> {
    prop_oneof![0.0f32..100.0, (0.0f32..f32::MAX)]
}

fn transport() -> impl Strategy<Value = Transport> {
    prop_oneof![Just(Transport::Tcp), Just(Transport::Udp)]
}

fn frequency() -> impl Strategy<Value = u32> {
    prop_oneof![1..=3600u32, 1..=u32::MAX]
}

fn registration() -> impl Strategy<Value = Registration> {
    (
        nonempty_text(60),
        any::<u64>(),
        0..=MAX_TIME_MS,
        any::<u8>(),
        text(60),
    )
        .prop_map(
            |(name, instance, time_ms, capabilities, software)| Registration {
                name,
                instance,
                time_ms,
                capabilities,
                software,
            },
        )
}

fn registered() -> impl Strategy<Value = Registered> {
    (
        any::<u64>(),
        any::<u16>(),
        any::<u32>(),
        any::<u32>(),
        any::<u8>(),
        0..=MAX_TIME_MS,
    )
        .prop_map(
            |(instance, alertflow_port, heartbeat_ms, timeout_ms, max_retransmissions, t)| {
                Registered {
                    instance,
                    alertflow_port,
                    heartbeat_ms,
                    timeout_ms,
                    max_retransmissions,
                    server_time_ms: t,
                }
            },
        )
}

fn work_item() -> impl Strategy<Value = WorkItem> {
    prop_oneof![
        (
            any::<bool>(),
            any::<bool>(),
            vec(nonempty_text(16), 0..6),
            frequency()
        )
            .prop_map(
                |(cpu, ram, interfaces, frequency_s)| WorkItem::MetricsGathering {
                    cpu,
                    ram,
                    interfaces,
                    frequency_s,
                }
            ),
        (text(40), any::<u16>(), 1..=u32::MAX, frequency()).prop_map(
            |(destination, packet_count, interval_ms, frequency_s)| WorkItem::Ping {
                destination,
                packet_count,
                interval_ms,
                frequency_s,
            }
        ),
        (
            text(40),
            any::<u16>(),
            any::<u32>(),
            transport(),
            any::<u64>(),
            frequency(),
            any::<prop::sample::Index>()
        )
            .prop_map(
                |(server_address, port, duration_s, transport, rate_bps, frequency_s, at)| {
                    WorkItem::IperfClient {
                        server_address,
                        port,
                        duration_s,
                        transport,
                        rate_bps,
                        // Within the period, as the decoder requires.
                        offset_ms: at
                            .index((u64::from(frequency_s) * 1000).min(u32::MAX.into()) as usize)
                            as u32,
                        frequency_s,
                    }
                }
            ),
        (any::<u16>(), any::<u32>(), transport(), frequency()).prop_map(
            |(port, duration_s, transport, frequency_s)| WorkItem::IperfServer {
                port,
                duration_s,
                transport,
                frequency_s,
            }
        ),
    ]
}

fn conditions() -> impl Strategy<Value = AlertConditions> {
    let t = || proptest::option::of(threshold());
    (t(), t(), t(), t(), t()).prop_map(
        |(cpu_usage, ram_usage, interface_stats, packet_loss, jitter)| AlertConditions {
            cpu_usage,
            ram_usage,
            interface_stats,
            packet_loss,
            jitter,
        },
    )
}

fn task_assignment() -> impl Strategy<Value = TaskAssignment> {
    (
        any::<u32>(),
        nonempty_text(40),
        vec(work_item(), 0..5),
        conditions(),
        vec(
            (text(20), text(200)).prop_map(|(name, source)| RuleSource { name, source }),
            0..4,
        ),
    )
        .prop_map(
            |(task_number, task_id, items, conditions, rules)| TaskAssignment {
                task_number,
                task_id,
                items,
                conditions,
                rules,
            },
        )
}

fn link_state() -> impl Strategy<Value = LinkState> {
    prop_oneof![
        Just(LinkState::Unknown),
        Just(LinkState::Up),
        Just(LinkState::Down),
        Just(LinkState::NoCarrier),
    ]
}

/// Raw interface counters, any of them missing.
fn counters() -> impl Strategy<Value = nms::wire::InterfaceCounters> {
    proptest::array::uniform8(proptest::option::of(any::<u64>())).prop_map(|v| {
        nms::wire::InterfaceCounters {
            rx_bytes: v[0],
            tx_bytes: v[1],
            rx_packets: v[2],
            tx_packets: v[3],
            rx_errors: v[4],
            tx_errors: v[5],
            rx_dropped: v[6],
            tx_dropped: v[7],
        }
    })
}

fn sample() -> impl Strategy<Value = Sample> {
    prop_oneof![
        measured().prop_map(|percent| Sample::Cpu { percent }),
        measured().prop_map(|percent| Sample::Ram { percent }),
        (
            nonempty_text(16),
            link_state(),
            measured(),
            measured(),
            measured(),
            counters()
        )
            .prop_map(|(name, state, p, b, e, counters)| Sample::Interface {
                name,
                state,
                packets_per_sec: p,
                bytes_per_sec: b,
                errors_per_sec: e,
                counters,
            }),
        (
            (measured(), measured(), measured(), measured(), measured()),
            any::<u64>(),
            any::<u64>()
        )
            .prop_map(
                |((rtt_min_ms, rtt_avg_ms, rtt_max_ms, jitter_ms, loss_percent), sent, r)| {
                    Sample::Ping {
                        rtt_min_ms,
                        rtt_avg_ms,
                        rtt_max_ms,
                        jitter_ms,
                        loss_percent,
                        sent,
                        // Never more replies than requests (a decoder refuses that).
                        received: if sent == u64::MAX { r } else { r % (sent + 1) },
                    }
                }
            ),
        (transport(), measured(), measured(), measured(), measured()).prop_map(
            |(transport, bandwidth_bps, offered_bps, jitter_ms, loss_percent)| Sample::Iperf {
                transport,
                bandwidth_bps,
                offered_bps,
                jitter_ms,
                loss_percent,
            }
        ),
    ]
}

fn metrics_report() -> impl Strategy<Value = MetricsReport> {
    (any::<u32>(), 0..=MAX_TIME_MS, vec(sample(), 0..12)).prop_map(
        |(task_number, time_ms, samples)| MetricsReport {
            task_number,
            time_ms,
            samples,
        },
    )
}

fn fragment() -> impl Strategy<Value = Fragment> {
    let inner = prop_oneof![
        Just(PacketType::Task),
        Just(PacketType::Metrics),
        Just(PacketType::Heartbeat),
        Just(PacketType::Cancel),
    ];
    (
        any::<u16>(),
        2..=u16::MAX,
        any::<u16>(),
        inner,
        vec(any::<u8>(), 1..64),
    )
        .prop_map(|(message_id, count, index, inner_type, chunk)| Fragment {
            message_id,
            index: index % count,
            count,
            inner_type,
            chunk,
        })
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        registration().prop_map(Message::Registration),
        registered().prop_map(Message::Registered),
        task_assignment().prop_map(Message::Task),
        metrics_report().prop_map(Message::Metrics),
        (0..=MAX_TIME_MS, any::<u32>()).prop_map(|(time_ms, pending_reports)| {
            Message::Heartbeat(Heartbeat {
                time_ms,
                pending_reports,
            })
        }),
        fragment().prop_map(Message::Fragment),
        any::<u32>().prop_map(|task_number| Message::Cancel(Cancel { task_number })),
        (
            any::<u64>(),
            prop_oneof![
                Just(RefusalReason::Clock),
                Just(RefusalReason::NotNewer),
                Just(RefusalReason::Full)
            ],
            0..=MAX_TIME_MS,
            0..=MAX_TIME_MS,
        )
            .prop_map(|(instance, reason, server_time_ms, last_accepted_ms)| {
                Message::Refused(Refused {
                    instance,
                    reason,
                    server_time_ms,
                    last_accepted_ms,
                })
            }),
    ]
}

fn noack_reason() -> impl Strategy<Value = NoackReason> {
    prop_oneof![
        Just(NoackReason::BadTag),
        Just(NoackReason::UnknownAgent),
        Just(NoackReason::Malformed),
    ]
}

fn packet() -> impl Strategy<Value = Packet> {
    let body = prop_oneof![
        (any::<u16>(), any::<u32>()).prop_map(|(seq, earlier)| Body::Ack(Ack { seq, earlier })),
        (any::<u16>(), noack_reason()).prop_map(|(seq, reason)| Body::Noack(Noack { seq, reason })),
        (any::<u16>(), message()).prop_map(|(seq, message)| {
            // REGISTRATION, REGISTERED and REFUSED carry sequence number 0.
            let seq = if message.packet_type().is_unnumbered_message() {
                0
            } else {
                seq
            };
            Body::Reliable { seq, message }
        }),
    ];
    (agent_id(), body).prop_map(|(agent_id, body)| Packet {
        keyed: false,
        agent_id,
        body,
    })
}

fn alert() -> impl Strategy<Value = Alert> {
    let alert_type = proptest::sample::select(AlertType::ALL.to_vec());
    let severity = prop_oneof![
        Just(Severity::Info),
        Just(Severity::Warning),
        Just(Severity::Critical),
    ];
    (
        any::<u64>(),
        text(60),
        text(40),
        alert_type,
        severity,
        (any::<f64>(), any::<f64>()),
        (0..=MAX_TIME_MS, prop_oneof![Just(0u64), any::<u64>()]),
        text(40),
        text(200),
    )
        .prop_map(
            |(
                alert_id,
                agent,
                task,
                alert_type,
                severity,
                (value, threshold),
                (time_ms, resolves),
                rule,
                message,
            )| {
                Alert {
                    alert_id,
                    resolves,
                    agent,
                    task,
                    alert_type,
                    severity,
                    value,
                    threshold,
                    time_ms,
                    rule,
                    message,
                    subject: String::new(),
                }
            },
        )
}

fn frame() -> impl Strategy<Value = Frame> {
    let body = prop_oneof![
        alert().prop_map(FrameBody::Alert),
        any::<u64>().prop_map(|alert_id| FrameBody::AlertAck { alert_id }),
    ];
    (agent_id(), body).prop_map(|(agent_id, body)| Frame {
        keyed: false,
        agent_id,
        body,
    })
}

/// A packet or a frame, encoded with or without the test key.
fn encoded() -> impl Strategy<Value = (Vec<u8>, Option<Key>)> {
    let value = prop_oneof![
        3 => packet().prop_map(Decoded::NetTask),
        1 => frame().prop_map(Decoded::AlertFlow),
    ];
    (value, any::<bool>()).prop_map(|(value, keyed)| {
        let key = keyed.then(test_key);
        (value.encode(key.as_ref()), key)
    })
}

/// Rewrites the last 12 bytes as the right tag for the rest, so that arbitrary bytes get past
/// the tag check and into the body decoders.
fn with_valid_tag(mut bytes: Vec<u8>, key: Option<&Key>) -> Vec<u8> {
    if bytes.len() >= TAG_LEN {
        let at = bytes.len() - TAG_LEN;
        let tag = nms::wire::tag::compute(key, &bytes[..at]);
        bytes[at..].copy_from_slice(&tag);
    }
    bytes
}

// ---------------------------------------------------------------------------------------------
// Wire format
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn packets_encode_decode_encode_to_the_same_bytes(p in packet(), keyed in any::<bool>()) {
        let key = keyed.then(test_key);
        let bytes = p.encode(key.as_ref());
        let back = Packet::decode(&bytes, key.as_ref())
            .map_err(|e| TestCaseError::fail(format!("{p:?} does not decode: {e}")))?;
        prop_assert_eq!(back.keyed, keyed);
        prop_assert_eq!(back.agent_id, p.agent_id);
        prop_assert_eq!(back.packet_type(), p.packet_type());
        prop_assert_eq!(back.encode(key.as_ref()), bytes);
    }

    #[test]
    fn frames_encode_decode_encode_to_the_same_bytes(f in frame(), keyed in any::<bool>()) {
        let key = keyed.then(test_key);
        let bytes = f.encode(key.as_ref());
        prop_assert_eq!(nms::wire::alertflow::check(&bytes), Ok(Some(bytes.len())));
        prop_assert_eq!(nms::wire::alertflow::check(&bytes[..bytes.len() - 1]), Ok(None));
        let back = Frame::decode(&bytes, key.as_ref())
            .map_err(|e| TestCaseError::fail(format!("{f:?} does not decode: {e}")))?;
        prop_assert_eq!(back.keyed, keyed);
        prop_assert_eq!(back.encode(key.as_ref()), bytes);
    }

    #[test]
    fn values_without_nan_decode_to_themselves(p in packet(), f in frame()) {
        // Where no NaN is involved, equal encodings also mean equal values.
        let bytes = p.encode(None);
        let back = Packet::decode(&bytes, None).map_err(|e| TestCaseError::fail(e.to_string()))?;
        if format!("{p:?}").contains("NaN") {
            return Ok(());
        }
        prop_assert_eq!(back, p);
        let bytes = f.encode(None);
        let back = Frame::decode(&bytes, None).map_err(|e| TestCaseError::fail(e.to_string()))?;
        if !format!("{f:?}").contains("NaN") {
            prop_assert_eq!(back, f);
        }
    }

}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn decoding_any_bytes_never_panics(
        bytes in vec(any::<u8>(), 0..256),
        first in prop_oneof![Just(None), (0u8..=0x3f).prop_map(Some)],
        keyed in any::<bool>(),
    ) {
        let key = keyed.then(test_key);
        let mut bytes = bytes;
        if let (Some(b), Some(slot)) = (first, bytes.first_mut()) {
            *slot = b;
        }
        // Raw, and with a correct tag so the body decoders see the bytes too.
        for candidate in [bytes.clone(), with_valid_tag(bytes, key.as_ref())] {
            for k in [None, key.as_ref()] {
                if let Ok(d) = decode_any(&candidate, k) {
                    // Whatever decodes must encode back to exactly what was read.
                    prop_assert_eq!(d.encode(k), candidate.clone());
                }
                let _ = nms::wire::alertflow::check(&candidate);
                let _ = nms::wire::Header::decode(&candidate);
            }
        }
    }

}

proptest! {
    // Each case decodes (and hashes) the packet once per bit: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn every_single_bit_flip_is_refused((bytes, key) in encoded()) {
        let mut flipped = bytes.clone();
        for bit in 0..bytes.len() * 8 {
            flipped[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(
                decode_any(&flipped, key.as_ref()).is_err(),
                "flipping bit {} of {} accepted",
                bit,
                hex::encode(&bytes)
            );
            flipped[bit / 8] ^= 1 << (bit % 8);
        }
    }

}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_truncation_is_refused((bytes, key) in encoded()) {
        for len in 0..bytes.len() {
            prop_assert!(
                decode_any(&bytes[..len], key.as_ref()).is_err(),
                "the first {} bytes of {} accepted",
                len,
                hex::encode(&bytes)
            );
        }
    }

    #[test]
    fn ack_is_at_most_18_bytes_below_agent_16384(
        agent_id in 0..16384u32,
        seq in any::<u16>(),
        earlier in any::<u32>(),
        keyed in any::<bool>(),
    ) {
        let key = keyed.then(test_key);
        let p = Packet { keyed, agent_id, body: Body::Ack(Ack { seq, earlier }) };
        let len = p.encode(key.as_ref()).len();
        // Type byte, agent id (1-2 bytes), sequence number, bitmap (0-4 bytes: only the bytes
        // up to the highest set bit), tag.
        let bitmap = (32 - earlier.leading_zeros() as usize).div_ceil(8);
        let id_len = if agent_id < 128 { 1 } else { 2 };
        prop_assert_eq!(len, 1 + id_len + 2 + bitmap + TAG_LEN);
        // The original ACK acknowledged one packet in 18 bytes; ours acknowledges it and up to
        // 8 earlier ones within that size (16 earlier ones for agents below 128). A full bitmap
        // acknowledges 33 packets in at most 21 bytes.
        if earlier < 1 << 8 || (agent_id < 128 && earlier < 1 << 16) {
            prop_assert!(len <= 18, "{} bytes for {:?}", len, p);
        }
    }

    #[test]
    fn varints_round_trip_in_their_shortest_form(v in prop_oneof![any::<u64>(), 0..300u64]) {
        let mut out = Vec::new();
        out.put_varint(v);
        prop_assert_eq!(out.len(), nms::wire::codec::varint_len(v));
        let mut r = Reader::new(&out);
        prop_assert_eq!(r.varint("v"), Ok(v));
        prop_assert!(r.finish().is_ok());
        // The same value with a redundant continuation byte is refused.
        if out.len() < 10 {
            let last = out.len() - 1;
            let mut padded = out.clone();
            padded[last] |= 0x80;
            padded.push(0);
            prop_assert!(Reader::new(&padded).varint("v").is_err());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The receive window
// ---------------------------------------------------------------------------------------------

/// Sequence numbers `start .. start + n` (wrapping), each possibly repeated, in any order.
fn window_arrivals() -> impl Strategy<Value = Vec<u16>> {
    (any::<u16>(), 1..=RECEIVE_WINDOW as usize)
        .prop_flat_map(|(start, n)| {
            let seqs: Vec<u16> = (0..n).map(|i| start.wrapping_add(i as u16)).collect();
            let repeats = subsequence(seqs.clone(), 0..=n.min(64));
            (Just(seqs), repeats)
        })
        .prop_flat_map(|(mut seqs, repeats)| {
            seqs.extend(repeats);
            Just(seqs).prop_shuffle()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn window_accepts_each_number_once_in_any_order(arrivals in window_arrivals()) {
        let mut window = ReplayWindow::new();
        let mut seen = HashSet::new();
        for seq in arrivals {
            let expected = if seen.insert(seq) { Arrival::New } else { Arrival::Duplicate };
            prop_assert_eq!(window.record(seq), expected, "sequence number {}", seq);
        }
    }

    #[test]
    fn window_matches_a_model_on_a_walk_across_wrap_around(
        start in prop_oneof![any::<u16>(), 65000..=u16::MAX],
        steps in vec(-1500i64..=300, 1..600),
    ) {
        // The model works on unwrapped numbers: new means never seen and not older than the
        // window below the highest number seen.
        let mut window = ReplayWindow::new();
        let mut seen = HashSet::new();
        let mut highest: Option<i64> = None;
        for step in steps {
            let n = highest.map_or(i64::from(start), |h| h + step);
            let seq = n.rem_euclid(1 << 16) as u16;
            let fresh = highest.is_none_or(|h| n > h - i64::from(RECEIVE_WINDOW));
            let expected = if fresh && !seen.contains(&n) { Arrival::New } else { Arrival::Duplicate };
            prop_assert_eq!(window.check(seq), expected, "check of {} ({})", seq, n);
            prop_assert_eq!(window.record(seq), expected, "record of {} ({})", seq, n);
            if expected == Arrival::New {
                seen.insert(n);
                highest = Some(highest.map_or(n, |h| h.max(n)));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reassembly
// ---------------------------------------------------------------------------------------------

/// A message body and the cut points that split it into 2 or more non-empty chunks.
fn chunked() -> impl Strategy<Value = (Vec<u8>, Vec<Vec<u8>>)> {
    vec(any::<u8>(), 2..3000)
        .prop_flat_map(|body| {
            let len = body.len();
            (Just(body), vec(1..len, 1..40))
        })
        .prop_map(|(body, mut cuts)| {
            cuts.sort_unstable();
            cuts.dedup();
            let mut chunks = Vec::new();
            let mut from = 0;
            for cut in cuts.into_iter().chain([body.len()]) {
                chunks.push(body[from..cut].to_vec());
                from = cut;
            }
            (body, chunks)
        })
}

fn fragments_of(message_id: u16, chunks: &[Vec<u8>]) -> Vec<Fragment> {
    chunks
        .iter()
        .enumerate()
        .map(|(index, chunk)| Fragment {
            message_id,
            index: index as u16,
            count: chunks.len() as u16,
            inner_type: PacketType::Metrics,
            chunk: chunk.clone(),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn reassembly_gives_back_the_bytes_for_any_chunking_and_order(
        (body, chunks) in chunked(),
        order in any::<proptest::sample::Index>(),
        seed in any::<u64>(),
        duplicates in vec(any::<proptest::sample::Index>(), 0..5),
    ) {
        let now = Instant::now();
        let mut r = Reassembler::new(64 * 1024, 1024 * 1024, Duration::from_secs(30));
        let mut fragments = fragments_of(7, &chunks);
        // Repeats of pieces already here are ignored (the session filters most, not all).
        for d in &duplicates {
            fragments.push(d.get(&fragments).clone());
        }
        let mut rng = fastrand::Rng::with_seed(seed);
        rng.shuffle(&mut fragments);
        // Another message interleaved with this one must not disturb it.
        let other = fragments_of(8, &[b"x".to_vec(), b"y".to_vec()]);
        fragments.insert(order.index(fragments.len() + 1), other[0].clone());
        let mut complete = Vec::new();
        for f in fragments {
            if let Some(done) = r.add(now, f).map_err(|e| TestCaseError::fail(e.to_string()))? {
                complete.push(done);
            }
        }
        // A repeat that arrives after the message completed starts it afresh (only the
        // session's replay window can tell it is old), so it may complete again: always whole.
        prop_assert!(!complete.is_empty(), "the message never completed");
        let expected = (PacketType::Metrics, body);
        prop_assert!(complete.iter().all(|c| *c == expected));
        if duplicates.is_empty() {
            prop_assert_eq!(complete.len(), 1);
        }
        prop_assert!(r.buffered() > 0, "message 8 is still incomplete");
        r.expire(now + Duration::from_secs(31));
        prop_assert_eq!(r.buffered(), 0);
    }

}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn reassembly_memory_stays_within_its_limit(
        fragments in vec(fragment(), 1..200),
        limit in 1000usize..200_000,
    ) {
        let now = Instant::now();
        let mut r = Reassembler::new(64 * 1024, limit, Duration::from_secs(30));
        for f in fragments {
            match r.add(now, f) {
                Ok(_)
                | Err(ReassemblyError::BufferFull { .. })
                | Err(ReassemblyError::TooLarge { .. })
                | Err(ReassemblyError::SharedBudgetFull { .. })
                | Err(ReassemblyError::Inconsistent { .. }) => {}
            }
            prop_assert!(r.buffered() <= limit, "{} bytes held over a limit of {}", r.buffered(), limit);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reassembly through a pair of endpoints
// ---------------------------------------------------------------------------------------------

mod endpoints {
    use super::*;
    use nms::nettask::{
        AgentEndpoint, AgentEvent, AgentIdentity, Config, ServerEndpoint, ServerEvent,
    };
    use std::net::SocketAddr;

    /// A server and an agent that completed registration, with the given datagram size.
    fn registered_pair(now: Instant, max_payload: usize) -> (ServerEndpoint, AgentEndpoint) {
        let server_addr: SocketAddr = "127.0.0.1:8081".parse().expect("address");
        let agent_addr: SocketAddr = "127.0.0.1:40000".parse().expect("address");
        let config = Config {
            max_payload,
            ..Config::default()
        };
        let mut server = ServerEndpoint::new(config.clone());
        let mut agent = AgentEndpoint::new(
            now,
            1_700_000_000_000,
            config,
            server_addr,
            AgentIdentity::new("edge-1"),
            1,
        );
        let reg = agent.poll_transmit(now).expect("a registration to send");
        server.handle_datagram(now, agent_addr, &reg.payload);
        let Some(ServerEvent::Registration { from, registration }) = server.poll_event() else {
            panic!("the server did not report the registration");
        };
        let reply = Registered {
            instance: registration.instance,
            alertflow_port: 8080,
            heartbeat_ms: 1000,
            timeout_ms: 200,
            max_retransmissions: 3,
            server_time_ms: 0,
        };
        server.accept_registration(now, from, 5, &registration, reply);
        while let Some(t) = server.poll_transmit(now) {
            agent.handle_datagram(now, server_addr, &t.payload);
        }
        assert!(matches!(
            agent.poll_event(),
            Some(AgentEvent::Registered { agent_id: 5, .. })
        ));
        (server, agent)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn a_large_report_arrives_whole_whatever_the_datagram_size_and_order(
            report in metrics_report(),
            padding in vec(sample(), 20..64),
            max_payload in 64usize..1500,
            seed in any::<u64>(),
        ) {
            let now = Instant::now();
            let (mut server, mut agent) = registered_pair(now, max_payload);
            let agent_addr: SocketAddr = "127.0.0.1:40000".parse().expect("address");
            let mut report = report;
            report.samples.extend(padding);
            report.samples.truncate(64);
            let message = Message::Metrics(report);
            agent.send(now, &message);
            let mut datagrams = Vec::new();
            while let Some(t) = agent.poll_transmit(now) {
                datagrams.push(t.payload);
            }
            fastrand::Rng::with_seed(seed).shuffle(&mut datagrams);
            for d in &datagrams {
                server.handle_datagram(now, agent_addr, d);
            }
            let mut delivered = Vec::new();
            while let Some(e) = server.poll_event() {
                if let ServerEvent::Message { message, .. } = e {
                    delivered.push(message);
                }
            }
            prop_assert_eq!(delivered.len(), 1);
            let mut sent = Vec::new();
            message.encode_body(&mut sent);
            let mut got = Vec::new();
            delivered[0].encode_body(&mut got);
            prop_assert_eq!(got, sent);
            prop_assert_eq!(server.stats().reassembled_messages, u64::from(datagrams.len() > 1));
        }
    }
}
