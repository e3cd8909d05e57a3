//! The credentials nms shows a service (Alertmanager, a remote-write receiver, or a proxy in
//! front of one): read from a credentials file (`bearer TOKEN` or `basic USER:PASSWORD`) or
//! taken from a URL's `user:password@`, and never shown, not even in `Debug`.

use super::TargetError;
use std::path::Path;

/// How nms proves who it is to Alertmanager (or a proxy in front of it).
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    Basic { user: String, password: String },
    Bearer(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Basic { user, .. } => write!(f, "Basic({user}, <redacted>)"),
            Auth::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

impl Auth {
    /// Reads `bearer TOKEN` or `basic USER:PASSWORD` (one line; `#` comments and blank lines
    /// around it are ignored).
    pub fn read(path: &Path) -> Result<Auth, TargetError> {
        let shown = path.display().to_string();
        let bad = |reason: String| TargetError::Credentials {
            path: shown.clone(),
            reason,
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad(format!("cannot read the credentials: {e}")))?;
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .ok_or_else(|| bad("empty: write `bearer TOKEN` or `basic USER:PASSWORD`".into()))?;
        let (scheme, value) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let value = value.trim();
        match scheme.to_ascii_lowercase().as_str() {
            "bearer" if !value.is_empty() => Ok(Auth::Bearer(value.to_string())),
            "basic" => match value.split_once(':') {
                Some((user, password)) if !user.is_empty() => Ok(Auth::Basic {
                    user: user.to_string(),
                    password: password.to_string(),
                }),
                _ => Err(bad("`basic` needs USER:PASSWORD".into())),
            },
            _ => Err(bad(
                "not `bearer TOKEN` or `basic USER:PASSWORD` (the first word says which)".into(),
            )),
        }
    }

    /// The `Authorization` header's value.
    pub(super) fn header(&self) -> String {
        match self {
            Auth::Bearer(token) => format!("Bearer {token}"),
            Auth::Basic { user, password } => {
                format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
            }
        }
    }
}

/// Standard base64 with padding (for the basic credentials).
pub(super) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
