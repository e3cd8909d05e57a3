//! `nms decode`: read one raw NetTask packet or AlertFlow frame (bytes or hex text), verify its
//! tag, and show every field, as aligned text with units or as one JSON object.
//!
//! [`run`] is the whole subcommand over any reader and writer; [`parse_hex`], [`render_text`] and
//! [`to_json`] are its pure pieces, also used to generate the worked examples in PROTOCOL.md.

use crate::wire::DecodeError;
use crate::wire::alertflow;
use crate::wire::tag::KeyError;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use thiserror::Error;

mod doc;
mod frame;
mod input;
mod json;
mod message;
mod metrics;
mod task;
mod text;

pub use input::{HexError, load_key, parse_hex, parse_instance};
use input::{looks_like_hex, read_limited, session_key};
pub use json::to_json;
pub use text::render_text;

/// Largest input accepted: a whole AlertFlow frame (length field included) is at most this big,
/// and a UDP datagram is smaller.
pub const MAX_INPUT_BYTES: usize = 4 + alertflow::MAX_FRAME_LEN;
/// Largest hex text accepted (two digits per byte, with generous room for spacing).
const MAX_HEX_TEXT: usize = 4 * MAX_INPUT_BYTES;
/// Largest key file read.
const MAX_KEY_FILE: u64 = 4096;

/// Where the packet comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Stdin,
    File(PathBuf),
}

impl Input {
    fn describe(&self) -> String {
        match self {
            Input::Stdin => "standard input".to_string(),
            Input::File(path) => path.display().to_string(),
        }
    }
}

/// How the decoded packet is shown: aligned `field  value` lines, or one JSON object on one
/// line.
pub use crate::output::Output;

/// Everything `nms decode` needs, validated from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub input: Input,
    /// The input is hex text rather than raw bytes.
    pub hex: bool,
    /// A file holding the pre-shared key as hex text, to verify keyed tags.
    pub key_file: Option<PathBuf>,
    /// The session's registration instance, which keyed tags are bound to (REGISTRATION,
    /// REGISTERED and REFUSED carry it themselves).
    pub instance: Option<u64>,
    pub output: Output,
}

/// Why `nms decode` failed.
#[derive(Debug, Error)]
pub enum Error {
    #[error("cannot read {input}")]
    Read {
        input: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "{input} holds more than {limit} bytes: one packet or frame is at most {MAX_INPUT_BYTES}"
    )]
    TooLarge { input: String, limit: usize },
    #[error("{input} is empty: expected one NetTask packet or AlertFlow frame")]
    Empty { input: String },
    #[error("{input} is not hex text")]
    Hex {
        input: String,
        #[source]
        source: HexError,
    },
    #[error("cannot read key file {}", path.display())]
    ReadKey {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("key file {}", path.display())]
    BadKey {
        path: PathBuf,
        #[source]
        source: KeyError,
    },
    #[error("invalid {kind} ({size} bytes{hint})")]
    Invalid {
        kind: &'static str,
        size: usize,
        hint: &'static str,
        #[source]
        source: DecodeError,
    },
    #[error(
        "the {kind}'s keyed tag is bound to a session: pass --instance with the instance of the \
         REGISTRATION that started it (a NOACK `unknown agent` is bound to the packet it refuses \
         and cannot be verified alone)"
    )]
    NeedsInstance { kind: &'static str },
    #[error("cannot encode the packet as JSON")]
    Json(#[source] serde_json::Error),
    #[error("cannot write the output")]
    Write(#[source] io::Error),
}

/// Runs `nms decode`: reads the input (`stdin` when [`Input::Stdin`]), decodes and verifies it,
/// and writes the rendering to `out`. A closed pipe on `out` is not an error.
pub fn run(options: &Options, stdin: &mut dyn Read, out: &mut dyn Write) -> Result<(), Error> {
    let input = options.input.describe();
    let limit = if options.hex {
        MAX_HEX_TEXT
    } else {
        MAX_INPUT_BYTES
    };
    let raw = match &options.input {
        Input::Stdin => read_limited(stdin, limit),
        Input::File(path) => {
            std::fs::File::open(path).and_then(|mut f| read_limited(&mut f, limit))
        }
    }
    .map_err(|source| Error::Read {
        input: input.clone(),
        source,
    })?
    .ok_or_else(|| Error::TooLarge {
        input: input.clone(),
        limit,
    })?;
    let bytes = if options.hex {
        parse_hex(&String::from_utf8_lossy(&raw)).map_err(|source| Error::Hex {
            input: input.clone(),
            source,
        })?
    } else {
        raw
    };
    if bytes.is_empty() {
        return Err(Error::Empty { input });
    }
    if bytes.len() > MAX_INPUT_BYTES {
        return Err(Error::TooLarge {
            input,
            limit: MAX_INPUT_BYTES,
        });
    }
    let key = match options.key_file.as_deref().map(load_key).transpose()? {
        Some(psk) => Some(session_key(&bytes, &psk, options.instance)?),
        None => None,
    };
    let decoded =
        crate::wire::decode_any(&bytes, key.as_ref()).map_err(|source| Error::Invalid {
            kind: if bytes[0] == 0 {
                "AlertFlow frame"
            } else {
                "packet"
            },
            size: bytes.len(),
            hint: if !options.hex && looks_like_hex(&bytes) {
                " of what looks like hex text: pass --hex"
            } else {
                ""
            },
            source,
        })?;
    let text = match options.output {
        Output::Text { color } => render_text(&decoded, &bytes, color),
        Output::Json => {
            let mut line = to_json(&decoded, &bytes).map_err(Error::Json)?.to_string();
            line.push('\n');
            line
        }
    };
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        result => result.map_err(Error::Write),
    }
}

/// Unix milliseconds as `1764236400000 ms (2025-11-27 09:40:00.000 UTC)`.
pub fn utc_time(ms: u64) -> String {
    // Up to the end of year 9999; later values are shown as the bare number.
    if !crate::log::writable_time(ms) {
        return format!("{ms} ms since 1970");
    }
    format!(
        "{ms} ({} UTC)",
        crate::log::time_text(ms, crate::log::TimeText::Millis)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_in_utc() {
        assert_eq!(utc_time(0), "0 (1970-01-01 00:00:00.000 UTC)");
        assert_eq!(
            utc_time(1_764_236_400_123),
            "1764236400123 (2025-11-27 09:40:00.123 UTC)"
        );
        assert_eq!(
            utc_time(951_782_400_000),
            "951782400000 (2000-02-29 00:00:00.000 UTC)"
        );
        assert_eq!(utc_time(u64::MAX), format!("{} ms since 1970", u64::MAX));
    }
}
