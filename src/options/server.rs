//! `nms server`'s options: its flags over its settings file (read again on SIGHUP), with the
//! Alertmanager targets, remote-write receivers, keys and the HTTP API's access rules.

use super::{given, within};
use crate::cli::ServerArgs;
use anyhow::Context;
use clap::ArgMatches;
use nms::config::{RemoteWriteSettings, ServerSettings};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The flags, the settings file and where it came from, merged one setting at a time.
struct Merge<'a> {
    args: &'a ServerArgs,
    file: ServerSettings,
    from: Option<PathBuf>,
    matches: Option<&'a ArgMatches>,
}

/// A setting with a default: the flag when given on the command line, else the settings
/// file's value, else the flag's default.
macro_rules! pick {
    ($merge:expr, $field:ident, $id:literal) => {
        match $merge.file.$field.clone() {
            Some(v) if !given($merge.matches, $id) => v,
            _ => $merge.args.$field.clone(),
        }
    };
}

impl Merge<'_> {
    /// A path from the settings file, resolved against the file's folder.
    fn path(&self, p: PathBuf) -> PathBuf {
        nms::config::relative_to(self.from.as_deref(), p)
    }

    /// A path setting without a default: the flag, else the settings file's (resolved).
    fn path_of(&self, flag: &Option<PathBuf>, file: &Option<PathBuf>) -> Option<PathBuf> {
        flag.clone().or(file.clone().map(|p| self.path(p)))
    }
}

/// The server's validated options: the command line over the settings file (read again on
/// SIGHUP).
pub fn server_options(
    args: &ServerArgs,
    matches: Option<&ArgMatches>,
) -> anyhow::Result<nms::server::ServerOptions> {
    let (file, from) = nms::config::load_settings(args.settings.as_deref(), "server")?;
    let m = Merge {
        args,
        file,
        from,
        matches,
    };
    let data_dir = match m.path_of(&args.data_dir, &m.file.data_dir) {
        Some(d) => d,
        None => nms::config::default_data_dir("server")?,
    };
    let http: std::net::SocketAddr = pick!(m, http, "http");
    let alertmanagers = alertmanager_targets(&m)?;
    let remote_writes = remote_write_destinations(&m)?;
    let peers = peers(&m)?;
    let external_url = args
        .external_url
        .clone()
        .or(m.file.external_url.clone())
        .map(|u| nms::server::check_external_url(&u))
        .transpose()?;
    let keys = nms::config::server_keys(
        m.path_of(&args.key_file, &m.file.key_file).as_deref(),
        m.path_of(&args.keys_file, &m.file.keys_file).as_deref(),
    )?;
    let heartbeat = Duration::from_millis(within(
        "--heartbeat-ms",
        pick!(m, heartbeat_ms, "heartbeat_ms"),
        100,
        3_600_000,
    )?);
    let missed_heartbeats = within(
        "--missed-heartbeats",
        pick!(m, missed_heartbeats, "missed_heartbeats"),
        1,
        1000,
    )?;
    let initial_timeout = Duration::from_millis(within(
        "--timeout-ms",
        pick!(m, timeout_ms, "timeout_ms"),
        10,
        60_000,
    )?);
    let store = store_options(&m)?;
    // Last, once every other setting is known to be good: a server on loopback without a
    // token gets one made in its data directory.
    let api = api_access(&m, http, &data_dir)?;
    Ok(nms::server::ServerOptions {
        task_files: task_files(&m),
        listen: pick!(m, listen, "listen"),
        nettask_port: pick!(m, nettask_port, "nettask_port"),
        alertflow_port: pick!(m, alertflow_port, "alertflow_port"),
        api,
        http,
        data_dir,
        advertise_alertflow_port: args.advertise_alertflow_port,
        keys,
        heartbeat,
        missed_heartbeats,
        initial_timeout,
        max_retransmissions: pick!(m, max_retransmissions, "max_retransmissions"),
        local_agent: args.local_agent.clone().or(m.file.local_agent.clone()),
        verbose: args.log.verbose > 0,
        alertmanagers,
        peers,
        remote_writes,
        external_url,
        store,
        max_agents: pick!(m, max_agents, "max_agents").max(1),
        new_agents_per_second: pick!(m, new_agents_per_second, "new_agents_per_second").max(1),
        forget_unreported_after: Duration::from_secs(
            pick!(m, forget_unreported_after_s, "forget_unreported_after_s").max(1),
        ),
    })
}

/// The task files: every `--config`, else the settings file's list.
fn task_files(m: &Merge) -> Vec<PathBuf> {
    if m.args.configs.is_empty() {
        let listed = m.file.config.clone().unwrap_or_default();
        listed.into_iter().map(|p| m.path(p)).collect()
    } else {
        m.args.configs.clone()
    }
}

/// The other servers that serve the same agents: every `--peer`, else the settings file's.
fn peers(m: &Merge) -> anyhow::Result<Vec<String>> {
    let peers = if m.args.peers.is_empty() {
        m.file
            .peer
            .clone()
            .map(|p| p.into_list())
            .unwrap_or_default()
    } else {
        m.args.peers.clone()
    };
    peers
        .iter()
        .map(|p| {
            nms::server::check_external_url(p).map_err(|_| {
                anyhow::anyhow!(
                    "--peer {p:?}: give another server's HTTP API, e.g. http://monitor-b.example.net:9470"
                )
            })
        })
        .collect()
}

/// Who may read and write over the HTTP API on `http`: a token given in a file, generated
/// in `data_dir` for a server on loopback, or none with `--insecure-api`; reads open to all
/// on loopback unless `--public-read` says otherwise.
fn api_access(
    m: &Merge,
    http: std::net::SocketAddr,
    data_dir: &Path,
) -> anyhow::Result<nms::server::http::ApiAccess> {
    let insecure = m.args.insecure_api || m.file.insecure_api.unwrap_or(false);
    let token = match m.path_of(&m.args.api_token_file, &m.file.api_token_file) {
        Some(file) => Some(nms::config::read_token(&file)?),
        None if insecure => None,
        None if http.ip().is_loopback() => {
            std::fs::create_dir_all(data_dir)
                .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
            Some(nms::config::generated_token(data_dir)?.0)
        }
        None => anyhow::bail!(
            "the HTTP API on {http} is reachable from other hosts: give it a token for writes \
             with --api-token-file FILE (or `api-token-file` in the settings file), or pass \
             --insecure-api to serve it without one"
        ),
    };
    let public_read = m
        .args
        .public_read
        .or(m.file.public_read)
        .unwrap_or(http.ip().is_loopback());
    if !public_read && token.is_none() {
        anyhow::bail!(
            "--public-read false closes reads to everybody without a token: give one with \
             --api-token-file FILE"
        );
    }
    Ok(nms::server::http::ApiAccess { token, public_read })
}

/// The store's retentions and size bound.
fn store_options(m: &Merge) -> anyhow::Result<nms::store::StoreOptions> {
    let retention = |flag, text: String| nms::config::retention(flag, &text);
    Ok(nms::store::StoreOptions {
        retention: nms::store::Retention {
            raw: retention("--retention-raw", pick!(m, retention_raw, "retention_raw"))?,
            minute: retention(
                "--retention-minute",
                pick!(m, retention_minute, "retention_minute"),
            )?,
            hour: retention(
                "--retention-hour",
                pick!(m, retention_hour, "retention_hour"),
            )?,
            alerts: retention(
                "--retention-alerts",
                pick!(m, retention_alerts, "retention_alerts"),
            )?,
            max_bytes: m
                .args
                .max_store_size
                .clone()
                .or(m.file.max_store_size.clone())
                .map(|s| nms::config::byte_size("--max-store-size", &s))
                .transpose()?,
        },
        ..nms::store::StoreOptions::default()
    })
}

/// The Alertmanagers to forward to: every `--alertmanager` (or the settings file's list), with
/// the credentials and CA file that go with them.
fn alertmanager_targets(m: &Merge) -> anyhow::Result<Vec<nms::server::alertmanager::Target>> {
    let urls = if m.args.alertmanagers.is_empty() {
        let listed = m.file.alertmanager.clone();
        listed.map(|a| a.into_list()).unwrap_or_default()
    } else {
        m.args.alertmanagers.clone()
    };
    let auth_file = m.path_of(
        &m.args.alertmanager_auth_file,
        &m.file.alertmanager_auth_file,
    );
    let ca_file = m.path_of(&m.args.alertmanager_ca_file, &m.file.alertmanager_ca_file);
    urls.iter()
        .map(|url| {
            nms::server::alertmanager::Target::new(url, auth_file.as_deref(), ca_file.as_deref())
                .map_err(anyhow::Error::from)
        })
        .collect()
}

/// The remote-write receivers as written: every `--remote-write` (with
/// `--remote-write-auth-file` and `--remote-write-ca-file`), or else the settings file's
/// `[[remote-write]]` tables with their paths resolved.
fn remote_write_tables(m: &Merge) -> Vec<RemoteWriteSettings> {
    if !m.args.remote_writes.is_empty() {
        return m
            .args
            .remote_writes
            .iter()
            .map(|url| RemoteWriteSettings {
                url: url.clone(),
                auth_file: m.args.remote_write_auth_file.clone(),
                ca_file: m.args.remote_write_ca_file.clone(),
                ..Default::default()
            })
            .collect();
    }
    let mut tables = m.file.remote_write.clone().unwrap_or_default();
    for t in &mut tables {
        for p in [
            &mut t.auth_file,
            &mut t.bearer_token_file,
            &mut t.password_file,
            &mut t.ca_file,
        ] {
            *p = p.take().map(|p| m.path(p));
        }
    }
    tables
}

/// The remote-write receivers, checked: credentials read, headers valid, names unique.
fn remote_write_destinations(
    m: &Merge,
) -> anyhow::Result<Vec<nms::server::remote_write::Destination>> {
    use nms::server::remote_write::{self, Destination};
    let mut out: Vec<Destination> = Vec::new();
    for t in remote_write_tables(m) {
        let auth = remote_write::auth_of(
            t.auth_file.as_deref(),
            t.bearer_token_file.as_deref(),
            t.username.as_deref(),
            t.password_file.as_deref(),
        )
        .with_context(|| {
            format!(
                "remote write to {}",
                nms::server::alertmanager::target::without_credentials(&t.url)
            )
        })?;
        let mut target = nms::server::alertmanager::Target::of(
            remote_write::RECEIVER,
            &t.url,
            auth,
            t.ca_file.as_deref(),
        )?;
        for (name, value) in t.headers.unwrap_or_default() {
            target = target.with_header(&name, &value)?;
        }
        let name = t.name.unwrap_or_else(|| target.url().to_string());
        if out.iter().any(|d| d.name == name) {
            anyhow::bail!(
                "remote write: two receivers are named {name:?}; give each its own `name` \
                 (the name keeps its position in the store)"
            );
        }
        let max = t
            .max_samples_per_send
            .unwrap_or(remote_write::DEFAULT_MAX_SAMPLES_PER_SEND);
        out.push(Destination {
            name,
            target,
            max_samples_per_send: within("max-samples-per-send", max, 1, 1_000_000)?,
        });
    }
    Ok(out)
}
