//! The byte cursor every decoder reads through, the helpers every encoder writes with, and the
//! error a decoder returns.
//!
//! A [`Reader`] never indexes a slice directly: every read is a checked `take`, so a truncated or
//! hostile input ends in a [`DecodeError`] that names the field that was missing and the byte
//! offset where it should have been, never in a panic.

use thiserror::Error;

/// Largest string any message may carry (names, task ids, messages, addresses).
pub const MAX_STRING_LEN: usize = 4096;
/// Largest rule source any task may carry, in bytes.
pub const MAX_RULE_SOURCE_LEN: usize = 64 * 1024;

/// Why some bytes are not a valid message. Every variant carries the byte offset (from the start
/// of the packet or frame) where the problem was found.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("truncated at byte {offset}: {what} needs {needed} byte(s), {available} left")]
    Truncated {
        what: &'static str,
        offset: usize,
        needed: usize,
        available: usize,
    },
    #[error(
        "unsupported protocol version {version} at byte {offset} (this build speaks version {supported})"
    )]
    UnsupportedVersion {
        version: u8,
        offset: usize,
        supported: u8,
    },
    #[error("unknown {what} {value} at byte {offset}")]
    Unknown {
        what: &'static str,
        value: u64,
        offset: usize,
    },
    #[error("invalid {what} at byte {offset}: {reason}")]
    Invalid {
        what: &'static str,
        offset: usize,
        reason: String,
    },
    #[error("{count} unexpected trailing byte(s) at byte {offset}")]
    TrailingBytes { offset: usize, count: usize },
    #[error(
        "integrity tag mismatch: the 12-byte tag at byte {offset} does not match the packet ({detail})"
    )]
    BadTag { offset: usize, detail: &'static str },
    #[error("packet is keyed (HMAC tag) but no key was given: pass --key-file")]
    KeyRequired,
}

impl DecodeError {
    /// The byte offset the error refers to, when it has one.
    pub fn offset(&self) -> Option<usize> {
        match self {
            DecodeError::Truncated { offset, .. }
            | DecodeError::UnsupportedVersion { offset, .. }
            | DecodeError::Unknown { offset, .. }
            | DecodeError::Invalid { offset, .. }
            | DecodeError::TrailingBytes { offset, .. }
            | DecodeError::BadTag { offset, .. } => Some(*offset),
            DecodeError::KeyRequired => None,
        }
    }
}

/// A cursor over received bytes. `base` is the offset of the first byte of `buf` within the
/// whole packet, so that errors in nested bodies still report packet offsets.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            pos: 0,
            base: 0,
        }
    }

    /// A reader over `buf` whose first byte is at `base` in the enclosing packet.
    pub fn with_base(buf: &'a [u8], base: usize) -> Self {
        Reader { buf, pos: 0, base }
    }

    /// Offset of the next unread byte within the whole packet.
    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let available = self.remaining();
        if n > available {
            return Err(DecodeError::Truncated {
                what,
                offset: self.offset(),
                needed: n,
                available,
            });
        }
        let start = self.pos;
        self.pos += n;
        Ok(&self.buf[start..self.pos])
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        let rest = &self.buf[self.pos..];
        self.pos = self.buf.len();
        rest
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }

    /// Reads a one-byte code and turns it into what it stands for with `from_code`; a code it
    /// does not know is [`DecodeError::Unknown`], at the code's offset.
    pub fn code<T>(
        &mut self,
        what: &'static str,
        from_code: impl FnOnce(u8) -> Option<T>,
    ) -> Result<T, DecodeError> {
        let at = self.offset();
        let code = self.u8(what)?;
        from_code(code).ok_or(DecodeError::Unknown {
            what,
            value: code.into(),
            offset: at,
        })
    }

    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    pub fn f32(&mut self, what: &'static str) -> Result<f32, DecodeError> {
        Ok(f32::from_bits(self.u32(what)?))
    }

    pub fn f64(&mut self, what: &'static str) -> Result<f64, DecodeError> {
        Ok(f64::from_bits(self.u64(what)?))
    }

    /// An unsigned LEB128 variable-length integer of at most 10 bytes, in its shortest form.
    pub fn varint(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        let start = self.offset();
        let mut value: u64 = 0;
        for i in 0..10 {
            let byte = self.u8(what)?;
            let low = u64::from(byte & 0x7f);
            if i == 9 && byte > 0x01 {
                return Err(invalid(what, start, "varint overflows 64 bits"));
            }
            value |= low << (7 * i);
            if byte & 0x80 == 0 {
                if i > 0 && byte == 0 {
                    return Err(invalid(what, start, "varint is not in its shortest form"));
                }
                return Ok(value);
            }
        }
        Err(invalid(what, start, "varint longer than 10 bytes"))
    }

    /// A varint that must fit in `max`.
    pub fn varint_max(&mut self, what: &'static str, max: u64) -> Result<u64, DecodeError> {
        let start = self.offset();
        let v = self.varint(what)?;
        if v > max {
            return Err(invalid(
                what,
                start,
                format!("{v} exceeds the maximum {max}"),
            ));
        }
        Ok(v)
    }

    pub fn varint_u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(self.varint_max(what, u64::from(u32::MAX))? as u32)
    }

    /// A varint length followed by that many bytes of UTF-8.
    pub fn string(&mut self, what: &'static str, max: usize) -> Result<String, DecodeError> {
        let start = self.offset();
        let len = self.varint_max(what, max as u64)? as usize;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|e| invalid(what, start, format!("not UTF-8: {e}")))
    }

    pub fn bool(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        let at = self.offset();
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(invalid(what, at, format!("{v} is not a boolean (0 or 1)"))),
        }
    }

    /// Fails when bytes are left over.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes {
                offset: self.offset(),
                count: self.remaining(),
            })
        }
    }
}

pub fn invalid(what: &'static str, offset: usize, reason: impl Into<String>) -> DecodeError {
    DecodeError::Invalid {
        what,
        offset,
        reason: reason.into(),
    }
}

/// Appends the big-endian and variable-length forms used by every encoder.
pub trait Writer {
    fn put_u8(&mut self, v: u8);
    fn put_u16(&mut self, v: u16);
    fn put_u32(&mut self, v: u32);
    fn put_u64(&mut self, v: u64);
    fn put_f32(&mut self, v: f32);
    fn put_f64(&mut self, v: f64);
    fn put_varint(&mut self, v: u64);
    fn put_string(&mut self, s: &str);
    fn put_bool(&mut self, v: bool);
}

impl Writer for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_f32(&mut self, v: f32) {
        self.put_u32(v.to_bits());
    }
    fn put_f64(&mut self, v: f64) {
        self.put_u64(v.to_bits());
    }
    fn put_varint(&mut self, mut v: u64) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.push(byte);
                return;
            }
            self.push(byte | 0x80);
        }
    }
    fn put_string(&mut self, s: &str) {
        self.put_varint(s.len() as u64);
        self.extend_from_slice(s.as_bytes());
    }
    fn put_bool(&mut self, v: bool) {
        self.push(u8::from(v));
    }
}

/// Number of bytes `put_varint(v)` writes.
pub fn varint_len(v: u64) -> usize {
    let bits = 64 - v.leading_zeros() as usize;
    bits.max(1).div_ceil(7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trips_and_sizes() {
        for (v, bytes) in [
            (0u64, vec![0x00]),
            (1, vec![0x01]),
            (127, vec![0x7f]),
            (128, vec![0x80, 0x01]),
            (16383, vec![0xff, 0x7f]),
            (16384, vec![0x80, 0x80, 0x01]),
            (
                u64::MAX,
                vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            ),
        ] {
            let mut out = Vec::new();
            out.put_varint(v);
            assert_eq!(out, bytes, "encoding {v}");
            assert_eq!(varint_len(v), bytes.len());
            let mut r = Reader::new(&bytes);
            assert_eq!(r.varint("v").unwrap(), v);
            r.finish().unwrap();
        }
    }

    #[test]
    fn varint_rejects_overlong_and_overflow() {
        assert!(Reader::new(&[0x80, 0x00]).varint("v").is_err());
        assert!(Reader::new(&[0xff; 10]).varint("v").is_err());
        assert!(matches!(
            Reader::new(&[0x80]).varint("v"),
            Err(DecodeError::Truncated { offset: 1, .. })
        ));
    }

    #[test]
    fn truncation_names_field_and_offset() {
        let mut r = Reader::with_base(&[1, 2, 3], 10);
        r.u8("first").unwrap();
        let err = r.u32("rtt").unwrap_err();
        assert_eq!(
            err,
            DecodeError::Truncated {
                what: "rtt",
                offset: 11,
                needed: 4,
                available: 2
            }
        );
    }
}
