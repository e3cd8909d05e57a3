//! Single values given on the command line or in a settings file: the default data directory
//! and agent name, agent names, server lists (and their `--spread` order), retentions and sizes.

use super::ConfigError;
use std::path::PathBuf;

/// `<user data dir>/nms/<sub>`, e.g. `~/.local/share/nms/server`.
pub fn default_data_dir(sub: &str) -> Result<PathBuf, ConfigError> {
    let dirs = directories::ProjectDirs::from("", "", "nms").ok_or(ConfigError::NoHomeDirectory)?;
    Ok(dirs.data_dir().join(sub))
}

/// This host's name, the default agent id.
pub fn host_name() -> Result<String, ConfigError> {
    sysinfo::System::host_name()
        .ok()
        .filter(|n| !n.is_empty())
        .ok_or(ConfigError::NoHostName)
}

/// An agent name is 1 to 255 bytes of printable text without whitespace.
pub fn check_agent_name(name: &str) -> Result<(), ConfigError> {
    let bad = |problem| {
        Err(ConfigError::AgentName {
            name: name.to_string(),
            problem,
        })
    };
    if name.is_empty() || name.len() > crate::wire::packet::MAX_NAME_LEN {
        return bad("be 1 to 255 bytes long");
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("not contain spaces or control characters");
    }
    Ok(())
}

/// The servers of `--server A,B` (or a settings file's list, each of which may be a
/// comma-separated list too), checked to be non-empty and without repeats.
pub fn server_list(given: &[String]) -> Result<Vec<String>, ConfigError> {
    let bad = |problem: String| ConfigError::ServerList {
        list: given.join(","),
        problem,
    };
    let mut out: Vec<String> = Vec::new();
    for part in given.iter().flat_map(|g| g.split(',')) {
        let part = part.trim();
        if part.is_empty() {
            return Err(bad(
                "an empty entry (write HOST[:PORT],HOST[:PORT])".to_string()
            ));
        }
        if out.iter().any(|s| s == part) {
            return Err(bad(format!("{part} is given twice")));
        }
        out.push(part.to_string());
    }
    if out.is_empty() {
        return Err(ConfigError::NoServer);
    }
    Ok(out)
}

/// The server list in the order an agent named `agent` tries it with `--spread`: rendezvous
/// (highest random weight) hashing. Each server's weight is the first eight bytes of SHA-256 of
/// `"SERVER/AGENT"` (the server as written in the list); the heaviest comes first. Every agent
/// given the same list gets its own order, the agents spread evenly over the servers, and
/// adding or removing a server moves only the agents that must move: those whose first server
/// is gone go to their second, each to its own.
pub fn spread_servers(servers: &[String], agent: &str) -> Vec<String> {
    use sha2::Digest;
    let weight = |server: &str| {
        let digest = sha2::Sha256::digest(format!("{server}/{agent}").as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(first)
    };
    let mut ranked: Vec<(u64, &String)> = servers.iter().map(|s| (weight(s), s)).collect();
    // Heaviest first; equal weights (never seen in practice) keep the list's order.
    ranked.sort_by_key(|r| std::cmp::Reverse(r.0));
    ranked.into_iter().map(|(_, s)| s.clone()).collect()
}

/// A retention: a duration such as `15d`, `6w`, `2y` (at least an hour).
pub fn retention(what: &str, text: &str) -> Result<std::time::Duration, ConfigError> {
    let d = humantime::parse_duration(text.trim()).map_err(|source| ConfigError::Duration {
        what: what.to_string(),
        text: text.to_string(),
        source,
    })?;
    if d < std::time::Duration::from_secs(3600) {
        return Err(out_of_range(
            what,
            text,
            "must be at least an hour".to_string(),
        ));
    }
    Ok(d)
}

/// A size in bytes: `50GB`, `512MiB`, `1TB`, `1000000` (at least 1 MB).
pub fn byte_size(what: &str, text: &str) -> Result<u64, ConfigError> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number.parse().map_err(|source| ConfigError::Size {
        what: what.to_string(),
        text: text.to_string(),
        source,
    })?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(out_of_range(
                what,
                text,
                format!("unknown unit {other:?} (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)"),
            ));
        }
    };
    let bytes = number * factor;
    if !(1e6..1e18).contains(&bytes) {
        return Err(out_of_range(
            what,
            text,
            "must be between 1 MB and 1 EB".to_string(),
        ));
    }
    Ok(bytes as u64)
}

fn out_of_range(what: &str, text: &str, problem: String) -> ConfigError {
    ConfigError::Value {
        what: what.to_string(),
        text: text.to_string(),
        problem,
    }
}
