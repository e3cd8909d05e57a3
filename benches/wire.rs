//! Micro-benchmarks of the wire format: encoding and decoding a typical metrics report (CPU,
//! RAM, two interfaces, one ping) and an ACK, and the 12-byte tag (plain SHA-256 and keyed
//! HMAC-SHA-256). Run with `cargo bench --bench wire`.

use divan::{Bencher, black_box};
use nms::bench::fleet::typical_report;
use nms::wire::{Ack, Body, Key, Message, Packet, tag};

fn main() {
    divan::main();
}

fn metrics_packet() -> Packet {
    Packet {
        keyed: false,
        agent_id: 12_345,
        body: Body::Reliable {
            seq: 4_242,
            message: Message::Metrics(typical_report(3, 1_764_236_410_000)),
        },
    }
}

fn ack_packet() -> Packet {
    Packet {
        keyed: false,
        agent_id: 12_345,
        body: Body::Ack(Ack {
            seq: 4_242,
            earlier: 0b1011,
        }),
    }
}

fn key() -> Key {
    Key::from_bytes(&[7u8; 32]).expect("32 bytes make a key")
}

#[divan::bench]
fn encode_metrics(bencher: Bencher) {
    let packet = metrics_packet();
    let mut out = Vec::with_capacity(128);
    bencher.bench_local(|| {
        out.clear();
        black_box(&packet).encode_into(None, &mut out);
        out.len()
    });
}

#[divan::bench]
fn encode_ack(bencher: Bencher) {
    let packet = ack_packet();
    let mut out = Vec::with_capacity(32);
    bencher.bench_local(|| {
        out.clear();
        black_box(&packet).encode_into(None, &mut out);
        out.len()
    });
}

#[divan::bench]
fn decode_metrics(bencher: Bencher) {
    let bytes = metrics_packet().encode(None);
    bencher.bench_local(|| Packet::decode(black_box(&bytes), None).is_ok());
}

#[divan::bench]
fn decode_ack(bencher: Bencher) {
    let bytes = ack_packet().encode(None);
    bencher.bench_local(|| Packet::decode(black_box(&bytes), None).is_ok());
}

#[divan::bench]
fn tag_sha256(bencher: Bencher) {
    let bytes = metrics_packet().encode(None);
    let data = &bytes[..bytes.len() - nms::wire::TAG_LEN];
    bencher.bench_local(|| tag::compute(None, black_box(data)));
}

#[divan::bench]
fn tag_hmac_sha256(bencher: Bencher) {
    let bytes = metrics_packet().encode(None);
    let data = &bytes[..bytes.len() - nms::wire::TAG_LEN];
    let key = key();
    bencher.bench_local(|| tag::compute(Some(&key), black_box(data)));
}
