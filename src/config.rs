//! Turning command-line values into validated configuration: key files, the per-agent keys
//! file, default data directories and the default agent name.

use crate::nettask::Keys;
use crate::wire::Key;
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};

/// Reads a key file: hex text of at least 32 digits.
pub fn read_key(path: &Path) -> anyhow::Result<Key> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read key file {}", path.display()))?;
    Key::from_hex(&text).with_context(|| format!("key file {}", path.display()))
}

/// The server's keys: `--key-file` for everybody, `--keys-file` lines `NAME HEXKEY` per agent.
pub fn server_keys(key_file: Option<&Path>, keys_file: Option<&Path>) -> anyhow::Result<Keys> {
    let mut keys = Keys::single(key_file.map(read_key).transpose()?);
    if let Some(path) = keys_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read keys file {}", path.display()))?;
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut parts = line.split_whitespace();
            let (Some(name), Some(hex), None) = (parts.next(), parts.next(), parts.next()) else {
                bail!("{}:{}: expected `NAME HEXKEY`", path.display(), i + 1);
            };
            let key = Key::from_hex(hex)
                .with_context(|| format!("{}:{}: key of {name}", path.display(), i + 1))?;
            keys.per_agent.insert(name.to_string(), key);
        }
    }
    Ok(keys)
}

/// `<user data dir>/nms/<sub>`, e.g. `~/.local/share/nms/server`.
pub fn default_data_dir(sub: &str) -> anyhow::Result<PathBuf> {
    let dirs = directories::ProjectDirs::from("", "", "nms")
        .context("cannot find a home directory for the data directory; pass --data-dir")?;
    Ok(dirs.data_dir().join(sub))
}

/// This host's name, the default agent id.
pub fn host_name() -> anyhow::Result<String> {
    let name = sysinfo::System::host_name()
        .ok()
        .filter(|n| !n.is_empty())
        .context("cannot read the host name; pass --id NAME")?;
    Ok(name)
}

/// An agent name is 1 to 255 bytes of printable text without whitespace.
pub fn check_agent_name(name: &str) -> anyhow::Result<()> {
    if name.is_empty() || name.len() > crate::wire::packet::MAX_NAME_LEN {
        bail!("agent name {name:?} must be 1 to 255 bytes long");
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!("agent name {name:?} must not contain spaces or control characters");
    }
    Ok(())
}
