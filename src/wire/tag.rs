//! The 12-byte integrity tag that ends every NetTask packet and AlertFlow frame.
//!
//! Without a key the tag is SHA-256 of everything before it, truncated to 12 bytes, as in the
//! original design: it catches corruption, not forgery. With a pre-shared [`Key`] it is
//! HMAC-SHA-256 truncated to 12 bytes, and the packet's KEYED flag says so, so a receiver (and
//! `nms decode`) knows which check applies.
//!
//! Keyed tags are bound to a session: packets are never tagged with the pre-shared key itself
//! but with a key derived from it and the session's registration `instance`
//! ([`Key::session`]), so a packet recorded in one session does not verify in any other, also
//! after either side restarts. The one packet sent outside a session, the NOACK `unknown agent`
//! of a server that has no session for the agent, is bound to the packet it refuses
//! ([`Key::refusal`]).

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use std::fmt;

/// Length of the tag on the wire.
pub const TAG_LEN: usize = 12;

/// A pre-shared key: at least 16 bytes (32 hex digits).
#[derive(Clone, PartialEq, Eq)]
pub struct Key(Vec<u8>);

/// Why a key's text is not a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("key is not hex text: {0}")]
    NotHex(String),
    #[error("key has {0} hex digits; at least 32 are needed")]
    TooShort(usize),
}

impl Key {
    pub const MIN_BYTES: usize = 16;

    /// Parses hex text (surrounding whitespace ignored), as a key file holds it.
    pub fn from_hex(text: &str) -> Result<Key, KeyError> {
        let text = text.trim();
        let bytes = hex::decode(text).map_err(|e| KeyError::NotHex(e.to_string()))?;
        if bytes.len() < Self::MIN_BYTES {
            return Err(KeyError::TooShort(text.len()));
        }
        Ok(Key(bytes))
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Key, KeyError> {
        if bytes.len() < Self::MIN_BYTES {
            return Err(KeyError::TooShort(bytes.len() * 2));
        }
        Ok(Key(bytes.to_vec()))
    }

    /// The key of the session started by the registration with this `instance`:
    /// HMAC-SHA-256(pre-shared key, "nms session v1" || instance as u64 big-endian), 32 bytes.
    /// Every keyed packet and frame of that session is tagged with it.
    pub fn session(&self, instance: u64) -> Key {
        self.derive(SESSION_LABEL, &instance.to_be_bytes())
    }

    /// The key of a NOACK `unknown agent` answering the packet whose tag is `refused_tag`:
    /// HMAC-SHA-256(pre-shared key, "nms refusal v1" || that 12-byte tag), 32 bytes.
    pub fn refusal(&self, refused_tag: &[u8]) -> Key {
        self.derive(REFUSAL_LABEL, refused_tag)
    }

    fn derive(&self, label: &[u8], context: &[u8]) -> Key {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(label);
        mac.update(context);
        Key(mac.finalize().into_bytes().to_vec())
    }

    /// The key's bytes as hex text (for test vectors and `nms decode`'s output).
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }
}

/// Labels of the two key derivations (PROTOCOL.md section 2).
const SESSION_LABEL: &[u8] = b"nms session v1";
const REFUSAL_LABEL: &[u8] = b"nms refusal v1";

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({} bytes, redacted)", self.0.len())
    }
}

/// Computes the tag of `data` (everything that precedes the tag).
pub fn compute(key: Option<&Key>, data: &[u8]) -> [u8; TAG_LEN] {
    let mut tag = [0u8; TAG_LEN];
    match key {
        None => {
            let digest = Sha256::digest(data);
            tag.copy_from_slice(&digest[..TAG_LEN]);
        }
        Some(key) => {
            let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key.0)
                .expect("HMAC takes any key length");
            mac.update(data);
            let out = mac.finalize().into_bytes();
            tag.copy_from_slice(&out[..TAG_LEN]);
        }
    }
    tag
}

/// Compares a received tag with the expected one in constant time.
pub fn matches(key: Option<&Key>, data: &[u8], received: &[u8]) -> bool {
    let expected = compute(key, data);
    if received.len() != TAG_LEN {
        return false;
    }
    let diff = expected
        .iter()
        .zip(received)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unkeyed_tag_is_truncated_sha256() {
        // SHA-256("abc") = ba7816bf 8f01cfea 414140de 5dae2223 ...
        assert_eq!(
            compute(None, b"abc"),
            [
                0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde
            ]
        );
    }

    #[test]
    fn keyed_tag_is_truncated_hmac_sha256() {
        // RFC 4231 test case 2 uses a 4-byte key; use case 1's 20-byte key instead.
        let key = Key::from_bytes(&[0x0b; 20]).unwrap();
        // HMAC-SHA-256(key, "Hi There") = b0344c61 d8db3853 5ca8afce af0bf12b ...
        assert_eq!(
            compute(Some(&key), b"Hi There"),
            [
                0xb0, 0x34, 0x4c, 0x61, 0xd8, 0xdb, 0x38, 0x53, 0x5c, 0xa8, 0xaf, 0xce
            ]
        );
        assert!(matches(
            Some(&key),
            b"Hi There",
            &compute(Some(&key), b"Hi There")
        ));
        assert!(!matches(
            None,
            b"Hi There",
            &compute(Some(&key), b"Hi There")
        ));
    }

    #[test]
    fn session_keys_differ_per_instance_and_from_the_pre_shared_key() {
        let key = Key::from_hex("6e6d7320676f6c64656e206b65792031").unwrap();
        let a = key.session(1);
        assert_eq!(a.0.len(), 32);
        assert_ne!(a, key.session(2));
        assert_ne!(a, key);
        assert_eq!(a, key.session(1));
        assert_ne!(key.refusal(&[0; 12]), key.refusal(&[1; 12]));
    }

    #[test]
    fn key_text_is_validated() {
        assert!(Key::from_hex("00112233445566778899aabbccddeeff\n").is_ok());
        assert_eq!(Key::from_hex("0011"), Err(KeyError::TooShort(4)));
        assert!(matches!(Key::from_hex("zz"), Err(KeyError::NotHex(_))));
    }
}
