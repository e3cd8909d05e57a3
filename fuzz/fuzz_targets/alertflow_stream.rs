//! A byte stream of frames and garbage, delivered in arbitrary pieces with arbitrary `Pending`
//! answers, into `alertflow::Connection::read_frame`, whose future is dropped and polled afresh
//! whenever it is not ready (so cancel-safety is exercised too). It must never panic, and it
//! must read exactly what a one-shot parse of the whole stream reads: the same frames, then the
//! same kind of ending (clean close, truncated frame, malformed frame).
#![no_main]

use futures_lite::future;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use nms::alertflow::{Connection, ConnectionError};
use nms::wire::alertflow::check;
use nms::wire::{Frame, Key};
use nms_fuzz::{SplitStream, as_frame, fuzz_key, peek_frame_agent_id};

#[derive(Arbitrary, Debug)]
enum Piece {
    /// Bytes as they are.
    Raw(Vec<u8>),
    /// Bytes made a frame (length field and tag), keyed when the agent id is odd.
    Frame(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Input {
    pieces: Vec<Piece>,
    /// Sizes of the reads the stream answers, cycled.
    reads: Vec<u8>,
    /// Which polls answer `Pending`, cycled.
    pending: Vec<bool>,
}

#[derive(Debug, PartialEq)]
enum End {
    Clean,
    Truncated,
    Malformed,
}

fn key_for(id: u32) -> Option<Key> {
    (id % 2 == 1).then(fuzz_key)
}

/// What reading `stream` must give: parse it whole, frame by frame.
fn one_shot(stream: &[u8]) -> (Vec<Frame>, End) {
    let mut frames = Vec::new();
    let mut pos = 0;
    loop {
        let rest = &stream[pos..];
        match check(rest) {
            Err(_) => return (frames, End::Malformed),
            Ok(None) if rest.is_empty() => return (frames, End::Clean),
            Ok(None) => return (frames, End::Truncated),
            Ok(Some(total)) => {
                let bytes = &rest[..total];
                let Some(id) = peek_frame_agent_id(bytes) else {
                    return (frames, End::Malformed);
                };
                match Frame::decode(bytes, key_for(id).as_ref()) {
                    Ok(f) => frames.push(f),
                    Err(_) => return (frames, End::Malformed),
                }
                pos += total;
            }
        }
    }
}

fuzz_target!(|input: Input| {
    let key = fuzz_key();
    let mut stream = Vec::new();
    for piece in &input.pieces {
        match piece {
            Piece::Raw(bytes) => stream.extend_from_slice(bytes),
            Piece::Frame(body) => {
                let mut frame = as_frame(body, None);
                if peek_frame_agent_id(&frame).is_some_and(|id| id % 2 == 1) {
                    frame = as_frame(body, Some(&key));
                }
                stream.extend_from_slice(&frame);
            }
        }
    }
    let (expected, expected_end) = one_shot(&stream);
    let reads = input.reads.iter().map(|&r| usize::from(r)).collect();
    let mut conn = Connection::new(SplitStream::new(stream.clone(), reads, input.pending));
    let mut frames = Vec::new();
    let mut polls = 0usize;
    let end = loop {
        polls += 1;
        assert!(
            polls < 10 * stream.len() + 1000,
            "read_frame makes no progress"
        );
        match future::block_on(future::poll_once(conn.read_frame(key_for))) {
            None => continue,
            Some(Ok(Some(f))) => frames.push(f),
            Some(Ok(None)) => break End::Clean,
            Some(Err(ConnectionError::TruncatedFrame { .. })) => break End::Truncated,
            Some(Err(ConnectionError::Malformed { .. })) => break End::Malformed,
            Some(Err(ConnectionError::Io(e))) => panic!("in-memory stream failed: {e}"),
        }
    };
    assert_eq!(end, expected_end);
    let encode = |fs: &[Frame]| -> Vec<Vec<u8>> {
        fs.iter()
            .map(|f| f.encode(key_for(f.agent_id).as_ref()))
            .collect()
    };
    assert_eq!(encode(&frames), encode(&expected));
});
