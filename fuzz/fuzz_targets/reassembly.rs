//! Arbitrary sequences of fragments, as the wire decoder can produce them (count >= 2, index <
//! count, non-empty chunk), with arbitrary ids, repeats, disagreements and clock jumps:
//! - straight into a `Reassembler` with small limits, checked against a model: a message comes
//!   out exactly when its last missing piece arrives, its body is its pieces in index order, and
//!   the bytes held never pass the limit (and are zero when nothing is held);
//! - as FRAGMENT packets (correct tags, arbitrary sequence numbers) into a server endpoint with a
//!   registered agent: nothing panics, and the endpoint's own bookkeeping stays bounded.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use nms::nettask::Config;
use nms::nettask::reassembly::Reassembler;
use nms::wire::{Body, Fragment, Message, Packet, PacketType};
use nms_fuzz::{AGENT_ADDR, AGENT_ID, MAX_TRANSMITS_PER_STEP, addr, registered_pair};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

const INNER: [PacketType; 6] = [
    PacketType::Registration,
    PacketType::Registered,
    PacketType::Task,
    PacketType::Metrics,
    PacketType::Heartbeat,
    PacketType::Cancel,
];

#[derive(Arbitrary, Debug)]
enum Op {
    Add {
        message_id: u8,
        index: u16,
        count: u16,
        inner: u8,
        chunk: Vec<u8>,
        seq: u16,
    },
    Advance {
        ms: u16,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    max_message: u16,
    max_buffered: u16,
    ops: Vec<Op>,
}

struct Model {
    inner: PacketType,
    count: u16,
    pieces: BTreeMap<u16, Vec<u8>>,
    started: Instant,
}

fuzz_target!(|input: Input| {
    let start = Instant::now();
    let mut now = start;
    let max_age = Duration::from_secs(30);
    let max_message = usize::from(input.max_message).max(1);
    let max_buffered = usize::from(input.max_buffered) * 16;
    let mut r = Reassembler::new(max_message, max_buffered, max_age);
    let mut model: HashMap<u16, Model> = HashMap::new();

    let config = Config {
        max_message_size: max_message.max(64),
        max_reassembly_bytes: max_buffered,
        ..Config::default()
    };
    let (mut server, _agent) = registered_pair(now, config);

    for op in input.ops {
        match op {
            Op::Advance { ms } => {
                now += Duration::from_millis(u64::from(ms) * 16);
                r.expire(now);
                model.retain(|_, m| now.saturating_duration_since(m.started) <= max_age);
                if server.poll_timeout().is_some_and(|t| t <= now) {
                    server.handle_timeout(now);
                }
            }
            Op::Add {
                message_id,
                index,
                count,
                inner,
                mut chunk,
                seq,
            } => {
                if chunk.is_empty() {
                    chunk.push(0);
                }
                let count = count.max(2);
                let fragment = Fragment {
                    message_id: u16::from(message_id),
                    index: index % count,
                    count,
                    inner_type: INNER[usize::from(inner) % INNER.len()],
                    chunk,
                };

                // Through the endpoint.
                let packet = Packet {
                    keyed: false,
                    agent_id: AGENT_ID,
                    body: Body::Reliable {
                        seq,
                        message: Message::Fragment(fragment.clone()),
                    },
                };
                server.handle_datagram(now, addr(AGENT_ADDR), &packet.encode(None));
                let mut sent = 0;
                while server.poll_transmit(now).is_some() {
                    sent += 1;
                    assert!(sent < MAX_TRANSMITS_PER_STEP, "poll_transmit never ends");
                }
                while server.poll_event().is_some() {}

                // Straight into the reassembler, against the model.
                let id = fragment.message_id;
                let result = r.add(now, fragment.clone());
                match result {
                    Err(_) => {
                        model.remove(&id);
                    }
                    Ok(done) => {
                        let m = model.entry(id).or_insert_with(|| Model {
                            inner: fragment.inner_type,
                            count: fragment.count,
                            pieces: BTreeMap::new(),
                            started: now,
                        });
                        assert_eq!(m.inner, fragment.inner_type, "accepted a disagreeing piece");
                        assert_eq!(m.count, fragment.count, "accepted a disagreeing piece");
                        m.pieces.entry(fragment.index).or_insert(fragment.chunk);
                        let whole = m.pieces.len() == usize::from(m.count);
                        match done {
                            None => assert!(!whole, "message {id} complete but not handed back"),
                            Some((kind, body)) => {
                                assert!(whole, "message {id} handed back incomplete");
                                assert_eq!(kind, m.inner);
                                let expected: Vec<u8> =
                                    m.pieces.values().flatten().copied().collect();
                                assert_eq!(body, expected, "message {id} reassembled wrong");
                                model.remove(&id);
                            }
                        }
                    }
                }
            }
        }
        assert!(
            r.buffered() <= max_buffered,
            "{} bytes held over {max_buffered}",
            r.buffered()
        );
        if model.is_empty() {
            assert_eq!(r.buffered(), 0, "bytes held for no message");
        }
    }
});
