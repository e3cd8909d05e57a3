//! The secrets an operator gives in files: the NetTask key (one for everybody, or one per
//! agent), and the HTTP API's token (given, or generated for a server on loopback). Each is
//! checked, and a file other users can read gets a warning.

use super::ConfigError;
use super::settings::{ServerSettings, load_settings, relative_to};
use super::values::{check_agent_name, default_data_dir};
use crate::nettask::Keys;
use crate::wire::Key;
use std::path::{Path, PathBuf};

/// Reads a key file: hex text of at least 32 digits. A file other users can read gets a
/// warning: whoever reads the key can speak for the agents.
pub fn read_key(path: &Path) -> Result<Key, ConfigError> {
    let text = read_secret(path, "key file")?;
    Key::from_hex(&text).map_err(|source| ConfigError::KeyFile {
        path: path.to_path_buf(),
        source,
    })
}

/// The text of the secret file `path` (`what` names it in errors and warnings).
fn read_secret(path: &Path, what: &'static str) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Unreadable {
        what,
        path: path.to_path_buf(),
        source,
    })?;
    warn_if_readable_by_others(path, what);
    Ok(text)
}

/// Whether a file's mode lets users other than its owner read it (group or others).
pub fn readable_by_others(mode: u32) -> bool {
    mode & 0o044 != 0
}

/// Logs a warning when the secret file `path` is readable by its group or by everybody.
pub fn warn_if_readable_by_others(path: &Path, what: &str) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && readable_by_others(meta.permissions().mode())
    {
        crate::log::event(
            crate::log::Level::Warn,
            "SECURITY",
            format_args!(
                "{what} {} can be read by other users (mode {:o}): chmod 600 it",
                path.display(),
                meta.permissions().mode() & 0o777
            ),
        );
    }
}

/// The server's keys: `--key-file` for everybody, `--keys-file` lines `NAME HEXKEY` per agent.
pub fn server_keys(key_file: Option<&Path>, keys_file: Option<&Path>) -> Result<Keys, ConfigError> {
    let mut keys = Keys::single(key_file.map(read_key).transpose()?);
    if let Some(path) = keys_file {
        let text = read_secret(path, "keys file")?;
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let (name, key) = keys_line(path, i + 1, line)?;
            if keys.per_agent.contains_key(name) {
                return Err(ConfigError::KeysLine {
                    path: path.to_path_buf(),
                    line: i + 1,
                    problem: format!("{name} has a key on an earlier line already"),
                });
            }
            keys.per_agent.insert(name.to_string(), key);
        }
    }
    Ok(keys)
}

/// One `NAME HEXKEY` line (comment and blanks removed), number `line` of the keys file `path`.
fn keys_line<'a>(path: &Path, line: usize, text: &'a str) -> Result<(&'a str, Key), ConfigError> {
    let mut parts = text.split_whitespace();
    let (Some(name), Some(hex), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(ConfigError::KeysLine {
            path: path.to_path_buf(),
            line,
            problem: "expected `NAME HEXKEY`".to_string(),
        });
    };
    check_agent_name(name).map_err(|e| ConfigError::KeysLineName {
        path: path.to_path_buf(),
        line,
        source: Box::new(e),
    })?;
    let key = Key::from_hex(hex).map_err(|source| ConfigError::KeysLineKey {
        path: path.to_path_buf(),
        line,
        name: name.to_string(),
        source,
    })?;
    Ok((name, key))
}

/// Shortest API token accepted.
pub const MIN_TOKEN_LEN: usize = 16;
/// The file a server on loopback keeps its generated API token in, inside its data directory.
pub const API_TOKEN_FILE: &str = "api-token";

/// Reads an API token file: its text without surrounding whitespace, at least
/// [`MIN_TOKEN_LEN`] printable characters without spaces.
pub fn read_token(path: &Path) -> Result<String, ConfigError> {
    let text = read_secret(path, "API token file")?;
    let token = text.trim();
    if token.len() < MIN_TOKEN_LEN
        || token
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || !c.is_ascii())
    {
        return Err(ConfigError::Token {
            path: path.to_path_buf(),
        });
    }
    Ok(token.to_string())
}

/// The token of a server on loopback that was given none: `<data dir>/api-token`, made (32
/// random bytes as hex, readable by its owner only) if missing. Returns it and the file.
pub fn generated_token(data_dir: &Path) -> Result<(String, PathBuf), ConfigError> {
    let path = data_dir.join(API_TOKEN_FILE);
    if !path.exists() {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| ConfigError::NoRandom(e.to_string()))?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let unwritable = |action, source| ConfigError::Unwritable {
            action,
            path: path.clone(),
            source,
        };
        match options.open(&path) {
            Ok(mut file) => {
                use std::io::Write;
                file.write_all(format!("{}\n", hex::encode(bytes)).as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(|e| unwritable("write", e))?;
            }
            // Another process made it meanwhile: use that one.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(unwritable("create", e)),
        }
    }
    Ok((read_token(&path)?, path))
}

/// The API token a client (`send-task`, `inspect`, `agents`) sends: `--api-token-file`, else
/// `NMS_API_TOKEN`, else `api-token-file` of the server settings file (`--settings`, or the
/// usual places), else the token a server on this host generated in its data directory (from
/// the settings file, or the default one), else none.
pub fn client_token(
    flag: Option<&Path>,
    env_token: Option<String>,
    settings: Option<&Path>,
) -> Result<Option<String>, ConfigError> {
    if let Some(path) = flag {
        return read_token(path).map(Some);
    }
    if let Some(token) = env_token.filter(|t| !t.trim().is_empty()) {
        return Ok(Some(token.trim().to_string()));
    }
    let (file, from): (ServerSettings, _) = load_settings(settings, "server")?;
    if let Some(path) = file.api_token_file {
        return read_token(&relative_to(from.as_deref(), path)).map(Some);
    }
    let data_dir = match file.data_dir {
        Some(d) => Some(relative_to(from.as_deref(), d)),
        None => default_data_dir("server").ok(),
    };
    match data_dir.map(|d| d.join(API_TOKEN_FILE)) {
        Some(path) if path.is_file() => read_token(&path).map(Some),
        _ => Ok(None),
    }
}
