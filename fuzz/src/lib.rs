//! Shared pieces of the fuzz targets: the oracles that say what a decoder's answer must satisfy,
//! a way to give arbitrary bytes a correct tag (so the fuzzer reaches the body decoders instead
//! of stopping at the 12-byte tag), an in-memory stream that hands out bytes in arbitrary
//! pieces, and a registered server/agent pair to throw datagrams at.

use futures_lite::AsyncRead;
use nms::nettask::{AgentEndpoint, AgentEvent, AgentIdentity, Config, ServerEndpoint, ServerEvent};
use nms::wire::alertflow::{self, MAX_FRAME_LEN};
use nms::wire::codec::Reader;
use nms::wire::packet::MAX_AGENT_ID;
use nms::wire::{Frame, Header, Key, Packet, Registered, TAG_LEN, decode_any, tag};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

/// The key of the keyed targets.
pub fn fuzz_key() -> Key {
    Key::from_bytes(b"nms fuzzing key!").expect("16 bytes is a valid key")
}

/// Rewrites the last 12 bytes as the right tag (keyed with `key`, else SHA-256) for the rest.
pub fn with_valid_tag(bytes: &[u8], key: Option<&Key>) -> Vec<u8> {
    let mut out = bytes.to_vec();
    if out.len() >= TAG_LEN {
        let at = out.len() - TAG_LEN;
        let t = tag::compute(key, &out[..at]);
        out[at..].copy_from_slice(&t);
    }
    out
}

/// Makes `body` (version/type byte onwards, tag bytes included at its end) a frame: prefixes the
/// length it has and rewrites the tag over length and body.
pub fn as_frame(body: &[u8], key: Option<&Key>) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    with_valid_tag(&out, key)
}

/// Decodes `bytes` as a packet with `key`; whatever decodes must encode back to the same bytes
/// (the encoding is canonical), and that encoding must decode again to the same encoding.
pub fn check_packet(bytes: &[u8], key: Option<&Key>) {
    let header = Header::decode(bytes);
    let Ok(packet) = Packet::decode(bytes, key) else {
        return;
    };
    let header = header.expect("a packet that decodes has a header that decodes");
    assert_eq!(header.agent_id, packet.agent_id);
    assert_eq!(header.packet_type, packet.packet_type());
    assert_eq!(packet.keyed, key.is_some());
    let encoded = packet.encode(key);
    let again = Packet::decode(&encoded, key).expect("an encoding decodes");
    assert_eq!(
        again.encode(key),
        encoded,
        "encode -> decode -> encode changed the bytes"
    );
    assert_eq!(
        encoded, bytes,
        "an accepted packet has another canonical encoding"
    );
}

/// Decodes `bytes` as a whole frame with `key`, with the same oracles as [`check_packet`], and
/// checks that [`alertflow::check`] agrees with the decoder on where the frame ends.
pub fn check_frame(bytes: &[u8], key: Option<&Key>) {
    let checked = alertflow::check(bytes);
    if let Ok(Some(total)) = checked {
        assert!(total <= bytes.len() && total <= 4 + MAX_FRAME_LEN);
    }
    let Ok(frame) = Frame::decode(bytes, key) else {
        return;
    };
    assert_eq!(
        checked,
        Ok(Some(bytes.len())),
        "check disagrees with decode on the frame end"
    );
    assert_eq!(frame.keyed, key.is_some());
    let encoded = frame.encode(key);
    let again = Frame::decode(&encoded, key).expect("an encoding decodes");
    assert_eq!(
        again.encode(key),
        encoded,
        "encode -> decode -> encode changed the bytes"
    );
    assert_eq!(
        encoded, bytes,
        "an accepted frame has another canonical encoding"
    );
}

/// Runs every decoder on `data` as it is and with a correct tag, with and without `key`.
pub fn check_decoders(data: &[u8], key: Option<&Key>) {
    let tagged = with_valid_tag(data, key);
    for bytes in [data, &tagged[..]] {
        for k in [None, key] {
            check_packet(bytes, k);
            check_frame(bytes, k);
            if let Ok(d) = decode_any(bytes, k) {
                assert_eq!(
                    d.encode(k),
                    bytes,
                    "decode_any accepted a non-canonical encoding"
                );
            }
        }
    }
}

/// The agent id of a whole frame, as `Connection` reads it before choosing the key.
pub fn peek_frame_agent_id(frame: &[u8]) -> Option<u32> {
    let mut r = Reader::new(frame);
    r.take(5, "length and type").ok()?;
    r.varint_max("agent id", MAX_AGENT_ID.into())
        .ok()
        .map(|v| v as u32)
}

/// An in-memory byte stream that hands out its bytes in the given piece sizes (cycling through
/// them), answers `Pending` (after waking the task) where `pending` says so but never twice in a
/// row, and accepts and discards writes.
pub struct SplitStream {
    data: Vec<u8>,
    pos: usize,
    pieces: Vec<usize>,
    next_piece: usize,
    pending: Vec<bool>,
    next_pending: usize,
    was_pending: bool,
}

impl SplitStream {
    pub fn new(data: Vec<u8>, pieces: Vec<usize>, pending: Vec<bool>) -> Self {
        SplitStream {
            data,
            pos: 0,
            pieces,
            next_piece: 0,
            pending,
            next_pending: 0,
            was_pending: false,
        }
    }
}

impl AsyncRead for SplitStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if !this.pending.is_empty() && !this.was_pending {
            let p = this.pending[this.next_pending % this.pending.len()];
            this.next_pending += 1;
            if p {
                this.was_pending = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
        this.was_pending = false;
        let piece = if this.pieces.is_empty() {
            usize::MAX
        } else {
            let p = this.pieces[this.next_piece % this.pieces.len()];
            this.next_piece += 1;
            p.max(1)
        };
        let n = piece.min(buf.len()).min(this.data.len() - this.pos);
        buf[..n].copy_from_slice(&this.data[this.pos..this.pos + n]);
        this.pos += n;
        Poll::Ready(Ok(n))
    }
}

impl futures_lite::AsyncWrite for SplitStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

pub const SERVER_ADDR: &str = "127.0.0.1:8081";
pub const AGENT_ADDR: &str = "127.0.0.1:40000";
/// The id the fuzz server gives the agent.
pub const AGENT_ID: u32 = 5;

pub fn addr(s: &str) -> SocketAddr {
    s.parse().expect("literal address")
}

/// Most datagrams one `poll_transmit` loop may produce before the endpoint is taken to be
/// looping forever.
pub const MAX_TRANSMITS_PER_STEP: usize = 100_000;

/// A server and an agent that completed registration (agent id [`AGENT_ID`]).
pub fn registered_pair(now: Instant, config: Config) -> (ServerEndpoint, AgentEndpoint) {
    let mut server = ServerEndpoint::new(config.clone());
    let mut agent = AgentEndpoint::new(
        now,
        1_700_000_000_000,
        config,
        addr(SERVER_ADDR),
        AgentIdentity::new("fuzz-agent"),
        7,
    );
    let reg = agent.poll_transmit(now).expect("a registration");
    server.handle_datagram(now, addr(AGENT_ADDR), &reg.payload);
    let Some(ServerEvent::Registration { from, registration }) = server.poll_event() else {
        panic!("registration not reported");
    };
    let reply = registered_reply(registration.instance);
    server.accept_registration(now, from, AGENT_ID, &registration, reply);
    while let Some(t) = server.poll_transmit(now) {
        agent.handle_datagram(now, addr(SERVER_ADDR), &t.payload);
    }
    assert!(matches!(
        agent.poll_event(),
        Some(AgentEvent::Registered { .. })
    ));
    (server, agent)
}

pub fn registered_reply(instance: u64) -> Registered {
    Registered {
        instance,
        alertflow_port: 8080,
        heartbeat_ms: 1000,
        timeout_ms: 200,
        max_retransmissions: 3,
        server_time_ms: 1_700_000_000_000,
    }
}
