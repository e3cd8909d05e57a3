//! What can be read of a NetTask packet before its tag is checked ([`Header`]), the tag check
//! itself (shared with AlertFlow frames), and the decoding of the body that follows the header.

use super::{
    Ack, Body, KEYED_FLAG, MAX_AGENT_ID, Message, Noack, NoackReason, Packet, PacketType, VERSION,
    ack_bitmap_len,
};
use crate::wire::codec::{DecodeError, Reader, invalid};
use crate::wire::tag::{self, Key, TAG_LEN};

/// What can be read of a packet before its tag is checked: enough to know whom to NOACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub keyed: bool,
    pub packet_type: PacketType,
    pub agent_id: u32,
    /// The sequence number (of the packet for reliable types; the acknowledged one for ACK/NOACK).
    pub seq: u16,
    /// Offset of the first body byte.
    pub body_start: usize,
}

/// Smallest possible datagram: type byte, one-byte agent id, sequence number, tag.
pub const MIN_PACKET_LEN: usize = 1 + 1 + 2 + TAG_LEN;

impl Header {
    pub fn decode(bytes: &[u8]) -> Result<Header, DecodeError> {
        let mut r = Reader::new(bytes);
        let first = r.u8("version/type byte")?;
        let version = first >> 5;
        if version != VERSION {
            return Err(DecodeError::UnsupportedVersion {
                version,
                offset: 0,
                supported: VERSION,
            });
        }
        let packet_type = PacketType::from_u8(first & 0x0f).ok_or(DecodeError::Unknown {
            what: "packet type",
            value: u64::from(first & 0x0f),
            offset: 0,
        })?;
        let agent_id = r.varint_max("agent id", MAX_AGENT_ID.into())? as u32;
        let seq_at = r.offset();
        let seq = r.u16("sequence number")?;
        if packet_type.is_unnumbered_message() && seq != 0 {
            return Err(invalid(
                "sequence number",
                seq_at,
                format!(
                    "{} carries sequence number 0, not {seq}",
                    packet_type.name()
                ),
            ));
        }
        let body_start = r.offset();
        if r.remaining() < TAG_LEN {
            return Err(DecodeError::Truncated {
                what: "tag",
                offset: body_start,
                needed: TAG_LEN,
                available: r.remaining(),
            });
        }
        Ok(Header {
            keyed: first & KEYED_FLAG != 0,
            packet_type,
            agent_id,
            seq,
            body_start,
        })
    }

    /// Checks the tag that ends `bytes` (the same bytes this header was read from).
    pub fn verify_tag(&self, bytes: &[u8], key: Option<&Key>) -> Result<(), DecodeError> {
        verify_tag(self.keyed, bytes, key)
    }

    /// Decodes the body. Call [`Header::verify_tag`] first.
    pub fn decode_body(&self, bytes: &[u8]) -> Result<Packet, DecodeError> {
        let tag_at = bytes.len() - TAG_LEN;
        let mut r = Reader::with_base(&bytes[self.body_start..tag_at], self.body_start);
        let body = match self.packet_type {
            PacketType::Ack => {
                let rest = r.rest();
                if rest.len() > 4 {
                    return Err(DecodeError::TrailingBytes {
                        offset: self.body_start + 4,
                        count: rest.len() - 4,
                    });
                }
                let mut earlier = 0u32;
                for b in rest {
                    earlier = (earlier << 8) | u32::from(*b);
                }
                if ack_bitmap_len(earlier) != rest.len() {
                    return Err(invalid(
                        "ACK bitmap",
                        self.body_start,
                        "has a leading zero byte (not in its shortest form)",
                    ));
                }
                Body::Ack(Ack {
                    seq: self.seq,
                    earlier,
                })
            }
            PacketType::Noack => {
                let reason = r.code("NOACK reason", |code| match code {
                    1 => Some(NoackReason::BadTag),
                    2 => Some(NoackReason::UnknownAgent),
                    3 => Some(NoackReason::Malformed),
                    _ => None,
                })?;
                r.finish()?;
                Body::Noack(Noack {
                    seq: self.seq,
                    reason,
                })
            }
            kind => Body::Reliable {
                seq: self.seq,
                message: Message::decode_body(kind, &mut r)?,
            },
        };
        Ok(Packet {
            keyed: self.keyed,
            agent_id: self.agent_id,
            body,
        })
    }
}

/// Checks the trailing tag of a packet or frame whose KEYED flag is `keyed`.
pub(crate) fn verify_tag(keyed: bool, bytes: &[u8], key: Option<&Key>) -> Result<(), DecodeError> {
    let tag_at = bytes.len().saturating_sub(TAG_LEN);
    let (data, received) = bytes.split_at(tag_at);
    match (keyed, key) {
        (true, None) => Err(DecodeError::KeyRequired),
        (false, Some(_)) => Err(DecodeError::BadTag {
            offset: tag_at,
            detail: "the packet has a plain hash tag but a key is configured",
        }),
        (true, Some(key)) => {
            if tag::matches(Some(key), data, received) {
                Ok(())
            } else {
                Err(DecodeError::BadTag {
                    offset: tag_at,
                    detail: "HMAC-SHA-256 with the given key",
                })
            }
        }
        (false, None) => {
            if tag::matches(None, data, received) {
                Ok(())
            } else {
                Err(DecodeError::BadTag {
                    offset: tag_at,
                    detail: "SHA-256 of the preceding bytes",
                })
            }
        }
    }
}
