//! Cuts a byte stream into AlertFlow frames and writes frames to it.
//!
//! [`Connection::read_frame`] keeps received bytes in a buffer and asks
//! [`check`](crate::wire::alertflow::check) whether a whole frame is there before decoding it, so
//! a frame split across any number of TCP segments (down to one byte each) parses the same as one
//! that arrives at once. The buffer grows with the bytes actually received, never past the
//! largest possible frame, and shrinks back once drained, so an idle connection costs a
//! kilobyte. A server hands its connections one [`MemoryBudget`] for what their buffers hold past
//! that kilobyte ([`Connection::with_budget`]): a connection whose partial frame cannot grow
//! within it fails, and every connection gives its share back when its buffer is drained or it
//! is dropped, so thousands of half-sent large frames hold at most the budget.
//! End of stream between frames is a clean close (`Ok(None)`); in the middle of a
//! frame it is an error, as is an impossible length or a frame that does not decode (bad tag,
//! malformed body): the caller then drops the connection, since the stream can no longer be
//! trusted to be in step.

use crate::limits::MemoryBudget;
use crate::wire::alertflow::{self, MAX_FRAME_LEN};
use crate::wire::codec::Reader;
use crate::wire::packet::MAX_AGENT_ID;
use crate::wire::{DecodeError, Frame, Key};
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use thiserror::Error;

/// Largest number of bytes buffered: one whole frame of the largest size, length field included.
pub const MAX_BUFFERED: usize = 4 + MAX_FRAME_LEN;
/// Buffer size of a fresh or idle connection.
const INITIAL_BUFFER: usize = 1024;

/// Why a connection can no longer be read from or written to.
#[derive(Debug, Error)]
pub enum ConnectionError {
    #[error("connection failed: {0}")]
    Io(#[from] std::io::Error),
    #[error(
        "peer closed the connection in the middle of a frame ({buffered} byte(s) of it received, \
         at byte {frame_start} of the stream)"
    )]
    TruncatedFrame { frame_start: u64, buffered: usize },
    #[error(
        "malformed frame starting at byte {frame_start} of the stream: {source} (counting from \
         the frame's first byte)"
    )]
    Malformed {
        /// Offset of the frame's first byte (its length field) within the whole stream.
        frame_start: u64,
        /// What is wrong; its offset counts from the frame's first byte.
        source: DecodeError,
    },
    #[error(
        "the frame starting at byte {frame_start} of the stream needs {needed} bytes buffered, \
         but the memory for partial frames of all connections ({limit} bytes) is in use"
    )]
    MemoryFull {
        frame_start: u64,
        needed: usize,
        limit: usize,
    },
}

impl ConnectionError {
    /// Offset within the whole stream of the byte the error refers to, when there is one.
    pub fn stream_offset(&self) -> Option<u64> {
        match self {
            ConnectionError::Io(_) => None,
            ConnectionError::TruncatedFrame {
                frame_start,
                buffered,
            } => Some(frame_start + *buffered as u64),
            ConnectionError::Malformed {
                frame_start,
                source,
            } => Some(frame_start + source.offset().unwrap_or(0) as u64),
            ConnectionError::MemoryFull { frame_start, .. } => Some(*frame_start),
        }
    }
}

/// A byte stream (a TCP connection, or anything else that reads and writes) carrying frames.
#[derive(Debug)]
pub struct Connection<S> {
    stream: S,
    /// `buffer[..filled]` holds received bytes not yet returned as frames.
    buffer: Vec<u8>,
    filled: usize,
    /// Stream offset of `buffer[0]`: bytes already consumed as whole frames.
    consumed: u64,
    /// Where the buffer's bytes past [`INITIAL_BUFFER`] come from, and how many it holds.
    budget: MemoryBudget,
    reserved: usize,
}

impl<S> Drop for Connection<S> {
    fn drop(&mut self) {
        self.budget.release(self.reserved);
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    pub fn new(stream: S) -> Connection<S> {
        Self::with_budget(stream, MemoryBudget::unlimited())
    }

    /// A connection whose buffer grows past its first kilobyte only within `budget`.
    pub fn with_budget(stream: S, budget: MemoryBudget) -> Connection<S> {
        Connection {
            stream,
            buffer: vec![0; INITIAL_BUFFER],
            filled: 0,
            consumed: 0,
            budget,
            reserved: 0,
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// Reads the next frame. `key_for` gives the key of the agent named in the frame (`None`:
    /// the plain SHA-256 tag is expected).
    ///
    /// Returns `Ok(None)` when the peer closed the connection between two frames. Cancel-safe:
    /// if the future is dropped before it completes, no received byte is lost, and the next
    /// call goes on where this one stopped.
    pub async fn read_frame(
        &mut self,
        key_for: impl Fn(u32) -> Option<Key>,
    ) -> Result<Option<Frame>, ConnectionError> {
        loop {
            if let Some(frame) = self.parse_buffered(&key_for)? {
                return Ok(Some(frame));
            }
            if self.filled == self.buffer.len() {
                // `check` rejects any length above MAX_FRAME_LEN, so a full buffer of
                // MAX_BUFFERED bytes always holds a whole frame and this never grows past it.
                let grown = (self.buffer.len() * 2).min(MAX_BUFFERED);
                let more = grown - self.buffer.len();
                if !self.budget.reserve(more) {
                    return Err(ConnectionError::MemoryFull {
                        frame_start: self.consumed,
                        needed: grown,
                        limit: self.budget.limit(),
                    });
                }
                self.reserved += more;
                self.buffer.resize(grown, 0);
            }
            let n = self.stream.read(&mut self.buffer[self.filled..]).await?;
            if n == 0 {
                return if self.filled == 0 {
                    Ok(None)
                } else {
                    Err(ConnectionError::TruncatedFrame {
                        frame_start: self.consumed,
                        buffered: self.filled,
                    })
                };
            }
            self.filled += n;
        }
    }

    /// Decodes the first buffered frame if it is whole, and removes it from the buffer.
    fn parse_buffered(
        &mut self,
        key_for: &impl Fn(u32) -> Option<Key>,
    ) -> Result<Option<Frame>, ConnectionError> {
        let malformed = |frame_start, source| ConnectionError::Malformed {
            frame_start,
            source,
        };
        let buffered = &self.buffer[..self.filled];
        let Some(total) = alertflow::check(buffered).map_err(|e| malformed(self.consumed, e))?
        else {
            return Ok(None);
        };
        let bytes = &buffered[..total];
        let agent_id = peek_agent_id(bytes).map_err(|e| malformed(self.consumed, e))?;
        let key = key_for(agent_id);
        let frame = Frame::decode(bytes, key.as_ref()).map_err(|e| malformed(self.consumed, e))?;
        self.buffer.copy_within(total..self.filled, 0);
        self.filled -= total;
        self.consumed += total as u64;
        if self.filled == 0 && self.buffer.len() > INITIAL_BUFFER {
            self.buffer.truncate(INITIAL_BUFFER);
            self.buffer.shrink_to_fit();
            self.budget.release(std::mem::take(&mut self.reserved));
        }
        Ok(Some(frame))
    }

    /// Writes one frame, tagged with `key` (HMAC) or, without a key, with plain SHA-256, and
    /// flushes it.
    pub async fn write_frame(
        &mut self,
        frame: &Frame,
        key: Option<&Key>,
    ) -> Result<(), ConnectionError> {
        let bytes = frame.encode(key);
        self.stream.write_all(&bytes).await?;
        self.stream.flush().await?;
        Ok(())
    }
}

/// The agent id of a whole frame, read before its tag is checked so the right key can be
/// chosen. It follows the length field and the version/type byte.
fn peek_agent_id(frame: &[u8]) -> Result<u32, DecodeError> {
    let mut r = Reader::new(frame);
    r.take(5, "length field and version/type byte")?;
    Ok(r.varint_max("agent id", MAX_AGENT_ID.into())? as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Alert, AlertType, FrameBody, Severity};
    use futures_lite::io::Cursor;

    fn alert_frame(id: u64, message: &str) -> Frame {
        Frame {
            keyed: false,
            agent_id: 300,
            body: FrameBody::Alert(Alert {
                alert_id: id,
                resolves: 0,
                agent: "edge-1".into(),
                task: "t1".into(),
                alert_type: AlertType::Cpu,
                severity: Severity::Warning,
                value: 93.5,
                threshold: 90.0,
                time_ms: 1_700_000_000_000,
                rule: "cpu_usage".into(),
                message: message.into(),
                subject: String::new(),
            }),
        }
    }

    fn read_all(bytes: Vec<u8>) -> (Vec<Frame>, Result<(), ConnectionError>) {
        let mut conn = Connection::new(Cursor::new(bytes));
        let mut frames = Vec::new();
        smol::block_on(async {
            loop {
                match conn.read_frame(|_| None).await {
                    Ok(Some(f)) => frames.push(f),
                    Ok(None) => return (frames, Ok(())),
                    Err(e) => return (frames, Err(e)),
                }
            }
        })
    }

    #[test]
    fn frames_back_to_back_and_large_ones_are_read_in_order() {
        let frames = vec![
            alert_frame(1, "short"),
            alert_frame(2, &"x".repeat(4000)),
            Frame {
                keyed: false,
                agent_id: 300,
                body: FrameBody::AlertAck { alert_id: 1 },
            },
            alert_frame(3, ""),
        ];
        let bytes: Vec<u8> = frames.iter().flat_map(|f| f.encode(None)).collect();
        let (read, end) = read_all(bytes);
        assert!(end.is_ok());
        assert_eq!(read, frames);
    }

    #[test]
    fn impossible_length_is_an_error_at_the_frame_start() {
        let mut bytes = alert_frame(1, "ok").encode(None);
        let second_start = bytes.len() as u64;
        bytes.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x21]);
        let (read, end) = read_all(bytes);
        assert_eq!(read.len(), 1);
        let err = end.unwrap_err();
        assert!(
            matches!(err, ConnectionError::Malformed { frame_start, .. } if frame_start == second_start)
        );
        assert_eq!(err.stream_offset(), Some(second_start));
    }

    #[test]
    fn corrupted_byte_is_reported_as_a_bad_tag() {
        let mut bytes = alert_frame(1, "hello").encode(None);
        let at = bytes.len() - 20;
        bytes[at] ^= 0x40;
        let (read, end) = read_all(bytes);
        assert!(read.is_empty());
        assert!(matches!(
            end,
            Err(ConnectionError::Malformed {
                source: DecodeError::BadTag { .. },
                ..
            })
        ));
    }

    #[test]
    fn partial_frames_grow_only_within_the_shared_budget_and_give_it_back() {
        let budget = MemoryBudget::new(4096);
        let big = alert_frame(1, &"x".repeat(6000)).encode(None);
        let small = alert_frame(2, &"y".repeat(2000)).encode(None);
        smol::block_on(async {
            // 2000 bytes fit (the buffer grows to 4 KiB: 3 KiB from the budget) and are given
            // back once the frame is read.
            let mut conn = Connection::with_budget(Cursor::new(small.clone()), budget.clone());
            assert!(conn.read_frame(|_| None).await.unwrap().is_some());
            assert_eq!(budget.used(), 0);
            // 6000 bytes would need 8 KiB: refused.
            let mut conn = Connection::with_budget(Cursor::new(big), budget.clone());
            assert!(matches!(
                conn.read_frame(|_| None).await,
                Err(ConnectionError::MemoryFull { .. })
            ));
            drop(conn);
            assert_eq!(
                budget.used(),
                0,
                "a dropped connection gives its share back"
            );
        });
    }

    #[test]
    fn end_of_stream_inside_the_length_field_is_truncation() {
        let bytes = alert_frame(1, "hello").encode(None);
        let (_, end) = read_all(bytes[..2].to_vec());
        assert!(matches!(
            end,
            Err(ConnectionError::TruncatedFrame { buffered: 2, .. })
        ));
    }
}
