//! Turning command-line values into validated configuration: key files, the per-agent keys
//! file, the HTTP API's token, default data directories and the default agent name.

use crate::nettask::Keys;
use crate::wire::Key;
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};

/// Reads a key file: hex text of at least 32 digits. A file other users can read gets a
/// warning: whoever reads the key can speak for the agents.
pub fn read_key(path: &Path) -> anyhow::Result<Key> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read key file {}", path.display()))?;
    warn_if_readable_by_others(path, "key file");
    Key::from_hex(&text).with_context(|| format!("key file {}", path.display()))
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
pub fn server_keys(key_file: Option<&Path>, keys_file: Option<&Path>) -> anyhow::Result<Keys> {
    let mut keys = Keys::single(key_file.map(read_key).transpose()?);
    if let Some(path) = keys_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read keys file {}", path.display()))?;
        warn_if_readable_by_others(path, "keys file");
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut parts = line.split_whitespace();
            let (Some(name), Some(hex), None) = (parts.next(), parts.next(), parts.next()) else {
                bail!("{}:{}: expected `NAME HEXKEY`", path.display(), i + 1);
            };
            check_agent_name(name)
                .with_context(|| format!("{}:{}: not an agent name", path.display(), i + 1))?;
            let key = Key::from_hex(hex)
                .with_context(|| format!("{}:{}: key of {name}", path.display(), i + 1))?;
            if keys.per_agent.insert(name.to_string(), key).is_some() {
                bail!(
                    "{}:{}: {name} has a key on an earlier line already",
                    path.display(),
                    i + 1
                );
            }
        }
    }
    Ok(keys)
}

/// Shortest API token accepted.
pub const MIN_TOKEN_LEN: usize = 16;
/// The file a server on loopback keeps its generated API token in, inside its data directory.
pub const API_TOKEN_FILE: &str = "api-token";

/// Reads an API token file: its text without surrounding whitespace, at least
/// [`MIN_TOKEN_LEN`] printable characters without spaces.
pub fn read_token(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read API token file {}", path.display()))?;
    warn_if_readable_by_others(path, "API token file");
    let token = text.trim();
    if token.len() < MIN_TOKEN_LEN
        || token
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || !c.is_ascii())
    {
        bail!(
            "API token file {}: the token must be at least {MIN_TOKEN_LEN} printable ASCII \
             characters without spaces (e.g. `openssl rand -hex 32 > {}`)",
            path.display(),
            path.display()
        );
    }
    Ok(token.to_string())
}

/// The token of a server on loopback that was given none: `<data dir>/api-token`, made (32
/// random bytes as hex, readable by its owner only) if missing. Returns it and the file.
pub fn generated_token(data_dir: &Path) -> anyhow::Result<(String, PathBuf)> {
    let path = data_dir.join(API_TOKEN_FILE);
    if !path.exists() {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no random bytes: {e}"))?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(&path) {
            Ok(mut file) => {
                use std::io::Write;
                file.write_all(format!("{}\n", hex::encode(bytes)).as_bytes())
                    .and_then(|()| file.sync_all())
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            // Another process made it meanwhile: use that one.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(e).with_context(|| format!("cannot create {}", path.display()));
            }
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
) -> anyhow::Result<Option<String>> {
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

/// The servers of `--server A,B` (or a settings file's list, each of which may be a
/// comma-separated list too), checked to be non-empty and without repeats.
pub fn server_list(given: &[String]) -> anyhow::Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for part in given.iter().flat_map(|g| g.split(',')) {
        let part = part.trim();
        if part.is_empty() {
            bail!(
                "server list {:?}: an empty entry (write HOST[:PORT],HOST[:PORT])",
                given.join(",")
            );
        }
        if out.iter().any(|s| s == part) {
            bail!("server list {:?}: {part} is given twice", given.join(","));
        }
        out.push(part.to_string());
    }
    if out.is_empty() {
        bail!("no server given");
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
pub fn retention(what: &str, text: &str) -> anyhow::Result<std::time::Duration> {
    let d = humantime::parse_duration(text.trim())
        .with_context(|| format!("{what} {text:?}: not a duration (e.g. 15d, 6w, 2y)"))?;
    if d < std::time::Duration::from_secs(3600) {
        bail!("{what} {text:?}: must be at least an hour");
    }
    Ok(d)
}

/// A size in bytes: `50GB`, `512MiB`, `1TB`, `1000000` (at least 1 MB).
pub fn byte_size(what: &str, text: &str) -> anyhow::Result<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number
        .parse()
        .with_context(|| format!("{what} {text:?}: not a size (e.g. 50GB, 512MiB)"))?;
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
            bail!("{what} {text:?}: unknown unit {other:?} (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)")
        }
    };
    let bytes = number * factor;
    if !(1e6..1e18).contains(&bytes) {
        bail!("{what} {text:?}: must be between 1 MB and 1 EB");
    }
    Ok(bytes as u64)
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
) -> anyhow::Result<(T, Option<PathBuf>)> {
    let path = match explicit {
        Some(p) => Some(p.to_path_buf()),
        None => settings_candidates(name).into_iter().find(|p| p.is_file()),
    };
    let Some(path) = path else {
        return Ok((T::default(), None));
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read settings file {}", path.display()))?;
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
        anyhow::anyhow!("{}{at}: {}", path.display(), e.message())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_orders_spread_agents_evenly_and_a_lost_server_moves_only_its_own() {
        let servers: Vec<String> = (0..10).map(|i| format!("nms-{i}.example.net")).collect();
        let mut first = std::collections::HashMap::<String, usize>::new();
        for a in 0..10_000 {
            let agent = format!("host-{a}");
            let order = spread_servers(&servers, &agent);
            // A permutation of the list, the same every time for the same agent.
            let mut sorted = order.clone();
            sorted.sort();
            let mut given = servers.clone();
            given.sort();
            assert_eq!(sorted, given);
            assert_eq!(order, spread_servers(&servers, &agent));
            *first.entry(order[0].clone()).or_default() += 1;
            // Without server 3, an agent whose first was another server keeps it; one whose
            // first was server 3 goes to its own second choice.
            let without: Vec<String> = servers
                .iter()
                .filter(|s| *s != &servers[3])
                .cloned()
                .collect();
            let after = spread_servers(&without, &agent);
            let expected = if order[0] == servers[3] {
                &order[1]
            } else {
                &order[0]
            };
            assert_eq!(&after[0], expected, "{agent}");
        }
        assert_eq!(
            first.len(),
            10,
            "every server is someone's first: {first:?}"
        );
        for (server, n) in &first {
            assert!(
                (850..=1150).contains(n),
                "{server} is first for {n} of 10,000 agents"
            );
        }
    }

    #[test]
    fn group_or_world_readable_secrets_are_told_apart() {
        assert!(!readable_by_others(0o600));
        assert!(!readable_by_others(0o400));
        assert!(readable_by_others(0o640));
        assert!(readable_by_others(0o604));
    }

    #[test]
    fn retentions_and_sizes_are_read_with_their_units() {
        assert_eq!(
            retention("x", "15d").unwrap(),
            std::time::Duration::from_secs(15 * 86_400)
        );
        assert!(retention("x", "10m").is_err());
        assert!(retention("x", "forever").is_err());
        assert_eq!(byte_size("x", "50GB").unwrap(), 50_000_000_000);
        assert_eq!(byte_size("x", "512MiB").unwrap(), 512 * 1024 * 1024);
        assert!(byte_size("x", "12 parsecs").is_err());
        assert!(byte_size("x", "5").is_err());
    }

    #[test]
    fn remote_write_tables_and_server_lists_are_read() {
        let text = "[[remote-write]]\nurl = \"http://a:9090/api/v1/write\"\n\
                    [[remote-write]]\nurl = \"https://m/api/v1/push\"\nname = \"mimir\"\n\
                    headers = { \"X-Scope-OrgID\" = \"net\" }\nmax-samples-per-send = 500\n";
        let s: ServerSettings = toml::from_str(text).unwrap();
        let rw = s.remote_write.unwrap();
        assert_eq!(rw.len(), 2);
        assert_eq!(rw[1].name.as_deref(), Some("mimir"));
        assert_eq!(rw[1].headers.as_ref().unwrap()["X-Scope-OrgID"], "net");
        assert_eq!(rw[1].max_samples_per_send, Some(500));
        let e = toml::from_str::<ServerSettings>("[[remote-write]]\nurl = \"x\"\nuser = \"a\"\n")
            .unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
        for shipped in ["configs/server.toml", "configs/agent.toml"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(shipped);
            let text = std::fs::read_to_string(&path).unwrap();
            if shipped.contains("server") {
                toml::from_str::<ServerSettings>(&text).unwrap();
            } else {
                toml::from_str::<AgentSettings>(&text).unwrap();
            }
        }
        let a: AgentSettings =
            toml::from_str("server = [\"a:1\", \"b\"]\nprefer-first = true\n").unwrap();
        let list = server_list(&a.server.unwrap().into_list()).unwrap();
        assert_eq!(list, vec!["a:1", "b"]);
        assert_eq!(server_list(&["a,b".into()]).unwrap(), vec!["a", "b"]);
        assert!(server_list(&["a,,b".into()]).is_err());
        assert!(
            server_list(&["a,a".into()])
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
    }

    #[test]
    fn settings_files_are_read_and_errors_point_at_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.toml");
        std::fs::write(&path, "nettask-port = 9000\nconfig = [\"tasks.json\"]\n").unwrap();
        let (s, from): (ServerSettings, _) = load_settings(Some(&path), "server").unwrap();
        assert_eq!(s.nettask_port, Some(9000));
        assert_eq!(
            relative_to(from.as_deref(), s.config.unwrap()[0].clone()),
            dir.path().join("tasks.json")
        );
        std::fs::write(&path, "nettask-port = 9000\nnetask-port = 1\n").unwrap();
        let err = load_settings::<ServerSettings>(Some(&path), "server").unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("server.toml:2:1"), "{text}");
        assert!(text.contains("unknown field"), "{text}");
    }
}
