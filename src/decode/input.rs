//! Reading what `nms decode` is given: hex text to bytes, the key file, the registration
//! instance, and the session key a keyed packet or frame is tagged with.

use super::{Error, MAX_KEY_FILE};
use crate::wire::alertflow;
use crate::wire::{Body, Key, Message, Packet};
use std::io::{self, Read};
use std::path::Path;

/// Why hex text is not a sequence of bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    #[error("{found:?} at character {position} is not a hex digit")]
    NotHexDigit { found: char, position: usize },
    #[error("{0} hex digits is an odd number: every byte needs two")]
    OddDigits(usize),
}

/// The key a keyed packet or frame is tagged with: the session key of its instance (read from
/// the body of REGISTRATION, REGISTERED and REFUSED, else `instance`). Bytes that cannot be
/// read that far get the session key of instance 0, so the decoder reports what is wrong.
pub(super) fn session_key(bytes: &[u8], psk: &Key, instance: Option<u64>) -> Result<Key, Error> {
    let kind = if bytes.first() == Some(&0) {
        "AlertFlow frame"
    } else {
        "packet"
    };
    let own = crate::wire::Header::decode(bytes)
        .ok()
        .filter(|h| bytes[0] != 0 && h.packet_type.is_unnumbered_message())
        .map(|h| match h.decode_body(bytes) {
            Ok(Packet {
                body: Body::Reliable { message, .. },
                ..
            }) => match message {
                Message::Registration(m) => m.instance,
                Message::Registered(m) => m.instance,
                Message::Refused(m) => m.instance,
                _ => 0,
            },
            _ => 0,
        });
    let keyed = match bytes.first() {
        Some(0) => bytes.get(4).is_some_and(|b| b & 0x10 != 0),
        Some(b) => b & 0x10 != 0,
        None => false,
    };
    // Only a whole, readable frame or header needs the instance; anything else gets a key of
    // instance 0, so that the decoder names what is wrong with it.
    let readable = if bytes.first() == Some(&0) {
        matches!(alertflow::check(bytes), Ok(Some(n)) if n == bytes.len())
    } else {
        crate::wire::Header::decode(bytes).is_ok()
    };
    match own.or(instance) {
        Some(instance) => Ok(psk.session(instance)),
        None if keyed && readable => Err(Error::NeedsInstance { kind }),
        None => Ok(psk.session(0)),
    }
}

/// Parses a registration instance given as hex (`0x5f3a91c20be47d16` or without `0x`).
pub fn parse_instance(text: &str) -> Result<u64, String> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    u64::from_str_radix(digits, 16)
        .map_err(|_| format!("{text:?} is not an instance: give up to 16 hex digits"))
}

/// Reads everything, or `None` when there is more than `limit` bytes.
pub(super) fn read_limited(reader: &mut dyn Read, limit: usize) -> io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    reader.take(limit as u64 + 1).read_to_end(&mut buf)?;
    Ok((buf.len() <= limit).then_some(buf))
}

/// Reads a key file (hex text, surrounding whitespace ignored).
pub fn load_key(path: &Path) -> Result<Key, Error> {
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_KEY_FILE).read_to_string(&mut text))
        .map_err(|source| Error::ReadKey {
            path: path.to_path_buf(),
            source,
        })?;
    Key::from_hex(&text).map_err(|source| Error::BadKey {
        path: path.to_path_buf(),
        source,
    })
}

pub(super) fn looks_like_hex(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .all(|b| b.is_ascii_hexdigit() || b.is_ascii_whitespace() || *b == b'x' || *b == b'X')
}

/// Parses hex text: pairs of hex digits, with whitespace anywhere and an optional `0x` in front
/// of each whitespace-separated group (`0x2107 0412`, `21 07 04 12`, `xxd -p` output).
pub fn parse_hex(text: &str) -> Result<Vec<u8>, HexError> {
    let mut nibbles = Vec::with_capacity(text.len() / 2);
    let mut chars = text.chars().enumerate().peekable();
    let mut group_start = true;
    while let Some((i, c)) = chars.next() {
        if c.is_whitespace() {
            group_start = true;
            continue;
        }
        if group_start && c == '0' && matches!(chars.peek(), Some((_, 'x' | 'X'))) {
            chars.next();
            group_start = false;
            continue;
        }
        group_start = false;
        let nibble = c.to_digit(16).ok_or(HexError::NotHexDigit {
            found: c,
            position: i + 1,
        })?;
        nibbles.push(nibble as u8);
    }
    if nibbles.len() % 2 != 0 {
        return Err(HexError::OddDigits(nibbles.len()));
    }
    Ok(nibbles
        .chunks_exact(2)
        .map(|p| (p[0] << 4) | p[1])
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_text_accepts_spacing_and_0x_prefixes() {
        assert_eq!(
            parse_hex("0x2107 04 12\n"),
            Ok(vec![0x21, 0x07, 0x04, 0x12])
        );
        assert_eq!(parse_hex("0X21\t0x07"), Ok(vec![0x21, 0x07]));
        assert_eq!(parse_hex("  "), Ok(vec![]));
        assert_eq!(parse_hex("abc"), Err(HexError::OddDigits(3)));
        assert_eq!(
            parse_hex("21 0g"),
            Err(HexError::NotHexDigit {
                found: 'g',
                position: 5
            })
        );
        // "0x" only counts at the start of a group.
        assert!(parse_hex("210x07").is_err());
    }
}
