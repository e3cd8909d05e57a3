//! Tests for `wire/packet/`, kept apart so the module itself stays short.

use super::*;

fn ack(agent_id: u32, seq: u16, earlier: u32) -> Packet {
    Packet {
        keyed: false,
        agent_id,
        body: Body::Ack(Ack { seq, earlier }),
    }
}

#[test]
fn ack_is_at_most_18_bytes_for_the_first_16383_agents() {
    assert_eq!(ack(1, 7, 0).encode(None).len(), 16);
    assert_eq!(ack(16383, 7, 0).encode(None).len(), 17);
    assert_eq!(ack(16383, 7, 0xff).encode(None).len(), 18);
    assert_eq!(ack(100_000, 7, 0).encode(None).len(), 18);
}

#[test]
fn ack_bitmap_round_trips_and_lists_sequence_numbers() {
    let p = ack(5, 1, 0b101);
    let bytes = p.encode(None);
    let back = Packet::decode(&bytes, None).unwrap();
    assert_eq!(back, p);
    let Body::Ack(a) = back.body else { panic!() };
    assert_eq!(a.acknowledged().collect::<Vec<_>>(), vec![1, 0, 65534]);
}

#[test]
fn keyed_packet_needs_the_key() {
    let key = Key::from_hex("000102030405060708090a0b0c0d0e0f").unwrap();
    let other = Key::from_hex("ff0102030405060708090a0b0c0d0e0f").unwrap();
    let bytes = ack(1, 2, 0).encode(Some(&key));
    assert!(Packet::decode(&bytes, Some(&key)).unwrap().keyed);
    assert_eq!(Packet::decode(&bytes, None), Err(DecodeError::KeyRequired));
    assert!(matches!(
        Packet::decode(&bytes, Some(&other)),
        Err(DecodeError::BadTag { .. })
    ));
    let plain = ack(1, 2, 0).encode(None);
    assert!(matches!(
        Packet::decode(&plain, Some(&key)),
        Err(DecodeError::BadTag { .. })
    ));
}
