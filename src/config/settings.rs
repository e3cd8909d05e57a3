//! Settings files (`server.toml`, `agent.toml`): what each may hold, where they are looked
//! for, how one is read (an error points at its line and column), and how relative paths in
//! one are resolved.

use super::ConfigError;
use std::path::{Path, PathBuf};

/// Settings of `nms server` that a settings file may give (flags on the command line win).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServerSettings {
    /// Task files to load.
    pub config: Option<Vec<PathBuf>>,
    pub listen: Option<std::net::IpAddr>,
    pub nettask_port: Option<u16>,
    pub alertflow_port: Option<u16>,
    pub http: Option<std::net::SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub keys_file: Option<PathBuf>,
    pub heartbeat_ms: Option<u64>,
    pub missed_heartbeats: Option<u32>,
    pub timeout_ms: Option<u64>,
    pub max_retransmissions: Option<u32>,
    pub local_agent: Option<String>,
    /// One Alertmanager URL, or a list of them.
    pub alertmanager: Option<OneOrMany>,
    pub alertmanager_auth_file: Option<PathBuf>,
    pub alertmanager_ca_file: Option<PathBuf>,
    /// The HTTP APIs of the other servers that serve the same agents.
    pub peer: Option<OneOrMany>,
    /// Remote-write receivers (`[[remote-write]]` tables).
    pub remote_write: Option<Vec<RemoteWriteSettings>>,
    pub external_url: Option<String>,
    pub api_token_file: Option<PathBuf>,
    pub public_read: Option<bool>,
    pub insecure_api: Option<bool>,
    pub max_agents: Option<usize>,
    pub new_agents_per_second: Option<u64>,
    pub forget_unreported_after_s: Option<u64>,
    pub retention_raw: Option<String>,
    pub retention_minute: Option<String>,
    pub retention_hour: Option<String>,
    pub retention_alerts: Option<String>,
    pub max_store_size: Option<String>,
}

/// One remote-write receiver of the settings file.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RemoteWriteSettings {
    /// The receiver's full URL (`https://mimir.example.net/api/v1/push`).
    pub url: String,
    /// Names its cursor and its status [default: the URL without credentials]: keep it when
    /// the URL changes and the new one should go on where the old one stopped.
    pub name: Option<String>,
    /// Sent with every request (`X-Scope-OrgID` for a Mimir tenant, say).
    pub headers: Option<std::collections::BTreeMap<String, String>>,
    /// `bearer TOKEN` or `basic USER:PASSWORD`, as for Alertmanager.
    pub auth_file: Option<PathBuf>,
    /// A file holding the bearer token alone (Prometheus' `credentials_file`).
    pub bearer_token_file: Option<PathBuf>,
    /// Basic authentication: the user, and a file holding the password alone.
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    /// CA certificates (PEM) for an https receiver, besides the system's.
    pub ca_file: Option<PathBuf>,
    pub max_samples_per_send: Option<usize>,
}

/// A setting given as one value or a list of them (`alertmanager = "http://a:9093"` or
/// `alertmanager = ["http://a:9093", "http://b:9093"]`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_list(self) -> Vec<String> {
        match self {
            OneOrMany::One(v) => vec![v],
            OneOrMany::Many(v) => v,
        }
    }
}

/// Settings of `nms agent` that a settings file may give (flags on the command line win).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AgentSettings {
    /// One server, a comma-separated list, or a list of them.
    pub server: Option<OneOrMany>,
    pub prefer_first: Option<bool>,
    pub spread: Option<bool>,
    pub id: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

/// Where settings files are looked for when `--settings` is not given: the user's config
/// directory (e.g. `~/.config/nms/server.toml`), then `/etc/nms/server.toml`.
pub fn settings_candidates(name: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(dirs) = directories::ProjectDirs::from("", "", "nms") {
        out.push(dirs.config_dir().join(format!("{name}.toml")));
    }
    out.push(PathBuf::from("/etc/nms").join(format!("{name}.toml")));
    out
}

/// Loads a settings file: the one given (which must exist), else the first candidate that
/// exists, else defaults. Returns the settings and the file they came from.
pub fn load_settings<T: serde::de::DeserializeOwned + Default>(
    explicit: Option<&Path>,
    name: &str,
) -> Result<(T, Option<PathBuf>), ConfigError> {
    let path = match explicit {
        Some(p) => Some(p.to_path_buf()),
        None => settings_candidates(name).into_iter().find(|p| p.is_file()),
    };
    let Some(path) = path else {
        return Ok((T::default(), None));
    };
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Unreadable {
        what: "settings file",
        path: path.clone(),
        source,
    })?;
    let settings: T = toml::from_str(&text).map_err(|e| {
        let at = e
            .span()
            .map(|span| {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                format!(":{line}:{column}")
            })
            .unwrap_or_default();
        ConfigError::Settings {
            path: path.clone(),
            at,
            message: e.message().to_string(),
        }
    })?;
    // Relative paths in a settings file are relative to the file's folder.
    Ok((settings, Some(path)))
}

/// Resolves `p` against the folder of the settings file it came from.
pub fn relative_to(settings_file: Option<&Path>, p: PathBuf) -> PathBuf {
    match settings_file.and_then(Path::parent) {
        Some(dir) if p.is_relative() => dir.join(p),
        _ => p,
    }
}
