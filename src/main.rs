//! The `nms` binary: parses the command line, hands each subcommand to the library, and turns an
//! error into one line on standard error (`nms: ...`) and exit status 1.

mod cli;

/// mimalloc instead of the system allocator: the server allocates and frees small records at
/// every report, and glibc's per-thread arenas kept much of that memory (and time) to
/// themselves (BENCHMARKS.md). Built with `no_thp`: with transparent huge pages allowed, each
/// of its eagerly committed arenas was backed by 2 MiB pages at the first touch (an agent's
/// anonymous memory 14.6 MB instead of 3.6 MB).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Context;
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};
use cli::{
    AgentArgs, AgentsArgs, AgentsCommand, AlertsArgs, AlertsCommand, ApiArgs, BenchArgs, Cli,
    ColorWhen, Command, CompletionsArgs, DecodeArgs, InspectArgs, LogArgs, LogFormat, SendTaskArgs,
    ServerArgs, TasksArgs, TasksCommand, TokenArgs,
};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    // Started by an agent to run ping or iperf3 so that they die with it.
    let mut args = std::env::args_os();
    if nms::probes::guard::is_guard(args.next().as_deref()) {
        return nms::probes::guard::run(args);
    }
    nms::probes::guard::make_available();
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match run(cli, &matches) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("nms: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli, matches: &ArgMatches) -> anyhow::Result<()> {
    let color = cli.color.enabled(std::io::stdout().is_terminal());
    init_log(
        match &cli.command {
            Command::Server(a) => Some(&a.log),
            Command::Agent(a) => Some(&a.log),
            Command::Bench(a) => Some(&a.log),
            _ => None,
        },
        cli.color,
    );
    match cli.command {
        Command::Server(args) => server(args, matches.subcommand_matches("server")),
        Command::Agent(args) => agent(args),
        Command::Decode(args) => decode(args, color),
        Command::Completions(args) => completions(args),
        Command::SendTask(args) => send_task(args, color),
        Command::Inspect(args) => inspect(args, color),
        Command::Bench(args) => bench(args),
        Command::Agents(args) => agents(args),
        Command::Tasks(args) => tasks(args),
        Command::Alerts(args) => alerts(args),
        Command::Query(args) => query(args),
        Command::Store(args) => store(args),
    }
}

fn query(args: cli::QueryArgs) -> anyhow::Result<()> {
    let format = if args.json {
        nms::history::Format::Json
    } else if args.csv {
        nms::history::Format::Csv
    } else {
        nms::history::Format::Table
    };
    let options = nms::history::QueryOptions {
        server: args.server,
        token: client_token(&args.token)?,
        agent: args.agent,
        task: args.task,
        from: args.from,
        to: args.to,
        step: args.step,
        fields: args.fields,
        limit: args.limit,
    };
    smol::block_on(nms::history::query(
        &options,
        format,
        &mut std::io::stdout().lock(),
    ))?;
    Ok(())
}

/// A time option: Unix milliseconds or RFC 3339.
fn time_arg(flag: &str, text: &str) -> anyhow::Result<u64> {
    nms::log::parse_time(text).with_context(|| {
        format!(
            "{flag} {text:?}: not a time (Unix milliseconds or RFC 3339, e.g. 2026-12-01T00:00:00Z)"
        )
    })
}

fn store(args: cli::StoreArgs) -> anyhow::Result<()> {
    match args.command {
        cli::StoreCommand::Check(check) => {
            let data_dir = match check.data_dir {
                Some(d) => d,
                None => nms::config::default_data_dir("server")?,
            };
            let root = data_dir.join("store");
            let report = nms::store::check::check(&root)
                .with_context(|| format!("cannot read {}", root.display()))?;
            let mut out = std::io::stdout().lock();
            if check.json {
                serde_json::to_writer_pretty(&mut out, &report)?;
                writeln!(out)?;
            } else {
                writeln!(
                    out,
                    "{}: {} partition files, {} chunks holding {} reports, {} rollup blocks, {} alerts, {} log segments ({} records)",
                    root.display(),
                    report.partitions,
                    report.chunks,
                    report.reports,
                    report.blocks,
                    report.alerts,
                    report.wal_segments,
                    report.wal_records
                )?;
                for p in &report.problems {
                    writeln!(out, "damaged: {p}")?;
                }
                if report.problems.is_empty() {
                    writeln!(out, "no damage found")?;
                }
            }
            if !report.problems.is_empty() {
                anyhow::bail!(
                    "{} problem(s) found in {}",
                    report.problems.len(),
                    root.display()
                );
            }
            Ok(())
        }
        cli::StoreCommand::Export(export) => {
            let from_ms = time_arg("--from", &export.from)?;
            let to_ms = match &export.to {
                Some(t) => time_arg("--to", t)?,
                None => nms::log::now_ms() + 1,
            };
            if from_ms >= to_ms {
                anyhow::bail!("--from must be before --to");
            }
            let source = match export.data_dir {
                Some(dir) => nms::history::Source::DataDir(dir),
                None => nms::history::Source::Server {
                    base: export.server,
                    token: client_token(&export.token)?,
                },
            };
            let options = nms::history::ExportOptions {
                source,
                agent: export.agent,
                task: export.task,
                from_ms,
                to_ms,
            };
            let format = if export.csv {
                nms::history::Format::Csv
            } else {
                nms::history::Format::JsonLines
            };
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let n = smol::block_on(nms::history::export(&options, format, &mut out))?;
            out.flush()?;
            eprintln!("nms: {n} reports exported");
            Ok(())
        }
    }
}

/// Sets how log lines look, from `-v`/`-q`, `--log-format` and `--color`.
fn init_log(args: Option<&LogArgs>, color: ColorWhen) {
    use nms::log::{Color, Format, LogOptions};
    let (verbose, quiet, format) = args.map_or((0, 0, LogFormat::Text), |a| {
        (a.verbose, a.quiet, a.log_format)
    });
    nms::log::init(LogOptions {
        min_level: LogOptions::level_for(verbose, quiet),
        format: match format {
            LogFormat::Text => Format::Text,
            LogFormat::Json => Format::Json,
        },
        color: match color {
            ColorWhen::Auto => Color::Auto,
            ColorWhen::Always => Color::Always,
            ColorWhen::Never => Color::Never,
        },
    });
}

/// Whether a flag was given on the command line (not defaulted), so that it wins over the
/// settings file.
fn given(matches: Option<&ArgMatches>, id: &str) -> bool {
    matches.is_some_and(|m| m.value_source(id) == Some(ValueSource::CommandLine))
}

/// The server's validated options: the command line over the settings file (read again on
/// SIGHUP).
fn server_options(
    args: &ServerArgs,
    matches: Option<&ArgMatches>,
) -> anyhow::Result<nms::server::ServerOptions> {
    let (file, from): (nms::config::ServerSettings, _) =
        nms::config::load_settings(args.settings.as_deref(), "server")?;
    let from = from.as_deref();
    let path = |p: PathBuf| nms::config::relative_to(from, p);
    macro_rules! pick {
        ($field:ident, $id:literal) => {
            match file.$field {
                Some(v) if !given(matches, $id) => v,
                _ => args.$field.clone(),
            }
        };
    }
    let alertmanagers = alertmanager_targets(args, &file, from)?;
    let remote_writes = remote_write_destinations(args, &file, from)?;
    let peers = if args.peers.is_empty() {
        file.peer.clone().map(|p| p.into_list()).unwrap_or_default()
    } else {
        args.peers.clone()
    };
    let peers = peers
        .iter()
        .map(|p| {
            nms::server::check_external_url(p)
                .map_err(|_| anyhow::anyhow!("--peer {p:?}: give another server's HTTP API, e.g. http://monitor-b.example.net:9470"))
        })
        .collect::<anyhow::Result<Vec<String>>>()?;
    let external_url = args
        .external_url
        .clone()
        .or(file.external_url.clone())
        .map(|u| nms::server::check_external_url(&u))
        .transpose()?;
    let key_file = args.key_file.clone().or(file.key_file.map(path));
    let keys_file = args.keys_file.clone().or(file.keys_file.map(path));
    let keys = nms::config::server_keys(key_file.as_deref(), keys_file.as_deref())?;
    let task_files = if args.configs.is_empty() {
        file.config
            .unwrap_or_default()
            .into_iter()
            .map(path)
            .collect()
    } else {
        args.configs.clone()
    };
    let data_dir = match args.data_dir.clone().or(file.data_dir.map(path)) {
        Some(d) => d,
        None => nms::config::default_data_dir("server")?,
    };
    let http: std::net::SocketAddr = pick!(http, "http");
    let insecure = args.insecure_api || file.insecure_api.unwrap_or(false);
    let token = match args
        .api_token_file
        .clone()
        .or(file.api_token_file.map(path))
    {
        Some(file) => Some(nms::config::read_token(&file)?),
        None if insecure => None,
        None if http.ip().is_loopback() => {
            std::fs::create_dir_all(&data_dir)
                .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
            Some(nms::config::generated_token(&data_dir)?.0)
        }
        None => anyhow::bail!(
            "the HTTP API on {http} is reachable from other hosts: give it a token for writes \
             with --api-token-file FILE (or `api-token-file` in the settings file), or pass \
             --insecure-api to serve it without one"
        ),
    };
    let public_read = args
        .public_read
        .or(file.public_read)
        .unwrap_or(http.ip().is_loopback());
    if !public_read && token.is_none() {
        anyhow::bail!(
            "--public-read false closes reads to everybody without a token: give one with \
             --api-token-file FILE"
        );
    }
    let options = nms::server::ServerOptions {
        task_files,
        listen: pick!(listen, "listen"),
        nettask_port: pick!(nettask_port, "nettask_port"),
        alertflow_port: pick!(alertflow_port, "alertflow_port"),
        http,
        data_dir,
        advertise_alertflow_port: args.advertise_alertflow_port,
        keys,
        heartbeat: Duration::from_millis(within(
            "--heartbeat-ms",
            pick!(heartbeat_ms, "heartbeat_ms"),
            100,
            3_600_000,
        )?),
        missed_heartbeats: within(
            "--missed-heartbeats",
            pick!(missed_heartbeats, "missed_heartbeats"),
            1,
            1000,
        )?,
        initial_timeout: Duration::from_millis(within(
            "--timeout-ms",
            pick!(timeout_ms, "timeout_ms"),
            10,
            60_000,
        )?),
        max_retransmissions: pick!(max_retransmissions, "max_retransmissions"),
        local_agent: args.local_agent.clone().or(file.local_agent.clone()),
        verbose: args.log.verbose > 0,
        alertmanagers,
        peers,
        remote_writes,
        external_url,
        store: nms::store::StoreOptions {
            retention: nms::store::Retention {
                raw: nms::config::retention(
                    "--retention-raw",
                    &pick!(retention_raw, "retention_raw"),
                )?,
                minute: nms::config::retention(
                    "--retention-minute",
                    &pick!(retention_minute, "retention_minute"),
                )?,
                hour: nms::config::retention(
                    "--retention-hour",
                    &pick!(retention_hour, "retention_hour"),
                )?,
                alerts: nms::config::retention(
                    "--retention-alerts",
                    &pick!(retention_alerts, "retention_alerts"),
                )?,
                max_bytes: args
                    .max_store_size
                    .clone()
                    .or(file.max_store_size.clone())
                    .map(|s| nms::config::byte_size("--max-store-size", &s))
                    .transpose()?,
            },
            ..nms::store::StoreOptions::default()
        },
        max_agents: pick!(max_agents, "max_agents").max(1),
        new_agents_per_second: pick!(new_agents_per_second, "new_agents_per_second").max(1),
        forget_unreported_after: Duration::from_secs(
            pick!(forget_unreported_after_s, "forget_unreported_after_s").max(1),
        ),
        api: nms::server::http::ApiAccess { token, public_read },
    };
    Ok(options)
}

/// `value`, or an error naming `flag` when it is outside `min..=max`.
fn within<T: PartialOrd + std::fmt::Display>(
    flag: &str,
    value: T,
    min: T,
    max: T,
) -> anyhow::Result<T> {
    if value < min || value > max {
        anyhow::bail!("{flag} {value}: must be between {min} and {max}");
    }
    Ok(value)
}

/// The Alertmanagers to forward to: every `--alertmanager` (or the settings file's list), with
/// the credentials and CA file that go with them.
fn alertmanager_targets(
    args: &ServerArgs,
    file: &nms::config::ServerSettings,
    from: Option<&std::path::Path>,
) -> anyhow::Result<Vec<nms::server::alertmanager::Target>> {
    let path = |p: PathBuf| nms::config::relative_to(from, p);
    let urls = if args.alertmanagers.is_empty() {
        file.alertmanager
            .clone()
            .map(|a| a.into_list())
            .unwrap_or_default()
    } else {
        args.alertmanagers.clone()
    };
    let auth_file = args
        .alertmanager_auth_file
        .clone()
        .or(file.alertmanager_auth_file.clone().map(path));
    let ca_file = args
        .alertmanager_ca_file
        .clone()
        .or(file.alertmanager_ca_file.clone().map(path));
    urls.iter()
        .map(|url| {
            nms::server::alertmanager::Target::new(url, auth_file.as_deref(), ca_file.as_deref())
                .map_err(anyhow::Error::from)
        })
        .collect()
}

/// The remote-write receivers: every `--remote-write` (with `--remote-write-auth-file` and
/// `--remote-write-ca-file`), or else the settings file's `[[remote-write]]` tables.
fn remote_write_destinations(
    args: &ServerArgs,
    file: &nms::config::ServerSettings,
    from: Option<&std::path::Path>,
) -> anyhow::Result<Vec<nms::server::remote_write::Destination>> {
    use nms::server::remote_write::{self, Destination};
    let path = |p: PathBuf| nms::config::relative_to(from, p);
    let tables: Vec<nms::config::RemoteWriteSettings> = if args.remote_writes.is_empty() {
        file.remote_write
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|mut t| {
                for p in [
                    &mut t.auth_file,
                    &mut t.bearer_token_file,
                    &mut t.password_file,
                    &mut t.ca_file,
                ] {
                    *p = p.take().map(path);
                }
                t
            })
            .collect()
    } else {
        args.remote_writes
            .iter()
            .map(|url| nms::config::RemoteWriteSettings {
                url: url.clone(),
                auth_file: args.remote_write_auth_file.clone(),
                ca_file: args.remote_write_ca_file.clone(),
                ..Default::default()
            })
            .collect()
    };
    let mut out: Vec<Destination> = Vec::new();
    for t in tables {
        let auth = remote_write::auth_of(
            t.auth_file.as_deref(),
            t.bearer_token_file.as_deref(),
            t.username.as_deref(),
            t.password_file.as_deref(),
        )
        .with_context(|| format!("remote write to {}", without_credentials(&t.url)))?;
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

fn without_credentials(url: &str) -> String {
    nms::server::alertmanager::target::without_credentials(url)
}

fn server(args: ServerArgs, matches: Option<&ArgMatches>) -> anyhow::Result<()> {
    use async_signal::{Signal, Signals};
    use futures_lite::StreamExt;
    let options = server_options(&args, matches)?;
    // Registered before the server starts, so a signal in between is not lost.
    let mut signals =
        Signals::new([Signal::Term, Signal::Int, Signal::Hup]).context("cannot handle signals")?;
    smol::block_on(async {
        let listeners = nms::server::Listeners::bind(&options).await?;
        let (stop_tx, stop_rx) = smol::channel::bounded::<()>(1);
        let running = nms::server::run(options, listeners, async move {
            let _ = stop_rx.recv().await;
        })
        .await?;
        nms::notify::ready(&format!("serving HTTP on {}", running.bound.http));
        let shared = running.weak();
        let handle_signals = async {
            let mut stopping = false;
            while let Some(signal) = signals.next().await {
                match signal {
                    Ok(Signal::Hup) if !stopping => {
                        nms::notify::reloading();
                        if let Some(shared) = shared.upgrade() {
                            match server_options(&args, matches) {
                                Ok(new) => nms::server::reload(&shared, &new),
                                Err(e) => nms::log::event(
                                    nms::log::Level::Bad,
                                    "RELOAD",
                                    format_args!("settings not reloaded: {e:#}"),
                                ),
                            }
                        }
                        nms::notify::ready("reloaded");
                    }
                    Ok(Signal::Term | Signal::Int) if !stopping => {
                        stopping = true;
                        nms::log::event(
                            nms::log::Level::Info,
                            "SIGNAL",
                            "stopping (send the signal again to stop at once)",
                        );
                        nms::notify::stopping();
                        stop_tx.close();
                    }
                    Ok(Signal::Term | Signal::Int) => std::process::exit(1),
                    _ => {}
                }
            }
            std::future::pending::<()>().await
        };
        futures_lite::future::or(running.stopped(), async {
            handle_signals.await;
            Ok(())
        })
        .await
    })
    .map_err(anyhow::Error::from)
}

fn agent(args: AgentArgs) -> anyhow::Result<()> {
    let (file, from): (nms::config::AgentSettings, _) =
        nms::config::load_settings(args.settings.as_deref(), "agent")?;
    let from = from.as_deref();
    let path = |p: PathBuf| nms::config::relative_to(from, p);
    let servers = match args.server {
        Some(s) => Some(vec![s]),
        None => file.server.map(|s| s.into_list()),
    };
    let Some(servers) = servers else {
        anyhow::bail!(
            "no server given: pass --server HOST[:PORT], or set `server = \"HOST\"` in {}",
            nms::config::settings_candidates("agent")[0].display()
        );
    };
    let id = match args.id.or(file.id) {
        Some(id) => id,
        None => nms::config::host_name()?,
    };
    nms::config::check_agent_name(&id)?;
    let data_dir = match args.data_dir.or(file.data_dir.map(path)) {
        Some(d) => d,
        None => nms::config::default_data_dir("agents")?.join(&id),
    };
    let key = args
        .key_file
        .or(file.key_file.map(path))
        .as_deref()
        .map(nms::config::read_key)
        .transpose()?;
    let mut servers = nms::config::server_list(&servers)?;
    if args.spread || file.spread.unwrap_or(false) {
        servers = nms::config::spread_servers(&servers, &id);
        if servers.len() > 1 {
            nms::log::event(
                nms::log::Level::Info,
                "SERVERS",
                format_args!("in this agent's order (--spread): {}", servers.join(", ")),
            );
        }
    }
    let options = nms::agent::AgentOptions {
        servers,
        prefer_first: args.prefer_first || file.prefer_first.unwrap_or(false),
        id,
        data_dir,
        key,
    };
    agent_until_signalled(options)
}

/// Runs an agent until SIGTERM or SIGINT (SIGHUP: nothing to reload, said in the log).
fn agent_until_signalled(options: nms::agent::AgentOptions) -> anyhow::Result<()> {
    use async_signal::{Signal, Signals};
    use futures_lite::StreamExt;
    let mut signals =
        Signals::new([Signal::Term, Signal::Int, Signal::Hup]).context("cannot handle signals")?;
    let stop = async move {
        while let Some(signal) = signals.next().await {
            match signal {
                Ok(Signal::Hup) => nms::log::event(
                    nms::log::Level::Info,
                    "SIGNAL",
                    "SIGHUP: the agent's tasks come from the server; its settings are read at start",
                ),
                Ok(Signal::Term | Signal::Int) => {
                    nms::notify::stopping();
                    return;
                }
                _ => {}
            }
        }
    };
    nms::notify::ready("measuring");
    smol::block_on(nms::agent::run(options, stop)).map_err(Into::into)
}

/// The API token a client sends (see [`nms::config::client_token`]).
fn client_token(args: &TokenArgs) -> anyhow::Result<Option<String>> {
    nms::config::client_token(
        args.api_token_file.as_deref(),
        std::env::var("NMS_API_TOKEN").ok(),
        args.settings.as_deref(),
    )
}

fn send_task(args: SendTaskArgs, color: bool) -> anyhow::Result<()> {
    let options = nms::send_task::Options {
        file: args.file,
        token: client_token(&args.token)?,
        server: args.server,
        output: nms::send_task::Output::chosen(args.json, color),
    };
    smol::block_on(nms::send_task::run(&options, &mut std::io::stdout().lock()))?;
    Ok(())
}

fn inspect(args: InspectArgs, color: bool) -> anyhow::Result<()> {
    if let Some(path) = args.task {
        let check = nms::inspect::task_file::check_file(&path);
        let shown = match &check.result {
            _ if args.json => format!("{:#}\n", check.to_json()),
            // An invalid file is the one error line on standard error.
            Err(_) => String::new(),
            Ok(_) => {
                let mut text = nms::inspect::task_file::render(&check, color, args.rhai);
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                text
            }
        };
        std::io::stdout()
            .lock()
            .write_all(shown.as_bytes())
            .context("cannot write the output")?;
        return match check.problems().first() {
            Some(problem) => Err(anyhow::anyhow!("{problem}")),
            None => Ok(()),
        };
    }
    let options = nms::inspect::Options {
        token: client_token(&args.token)?,
        server: args.server,
        output: nms::inspect::Output::chosen(args.json, color),
        watch: args.watch,
        clear_screen: std::io::stdout().is_terminal(),
    };
    smol::block_on(nms::inspect::run(&options, &mut std::io::stdout().lock()))?;
    Ok(())
}

/// Runs one operator verb against the HTTP API, printing to standard output.
fn act<F>(
    api: &ApiArgs,
    verb: impl FnOnce(String, Option<String>, nms::act::Output) -> F,
) -> anyhow::Result<()>
where
    F: std::future::Future<Output = Result<Vec<u8>, nms::act::ActError>>,
{
    let token = client_token(&api.token)?;
    let output = nms::act::Output::chosen(api.json, false);
    let text = smol::block_on(verb(api.server.clone(), token, output))?;
    std::io::stdout()
        .lock()
        .write_all(&text)
        .context("cannot write the output")
}

/// Who the operator is, for acknowledgements and silences: `--by`, else `$USER`.
fn operator(by: Option<String>) -> anyhow::Result<String> {
    match by
        .or_else(|| std::env::var("USER").ok())
        .filter(|b| !b.trim().is_empty())
    {
        Some(by) => Ok(by),
        None => anyhow::bail!("say who you are with --by NAME ($USER is not set)"),
    }
}

fn agents(args: AgentsArgs) -> anyhow::Result<()> {
    match args.command {
        AgentsCommand::List(api) => act(&api, |server, token, output| async move {
            let mut out = Vec::new();
            nms::act::agents(&server, token.as_deref(), output, &mut out).await?;
            Ok(out)
        }),
        AgentsCommand::Forget(forget) => act(&forget.api, |server, token, output| async move {
            let mut out = Vec::new();
            nms::act::forget(&server, token.as_deref(), &forget.name, output, &mut out).await?;
            Ok(out)
        }),
    }
}

fn tasks(args: TasksArgs) -> anyhow::Result<()> {
    match args.command {
        TasksCommand::List(api) => act(&api, |server, token, output| async move {
            let mut out = Vec::new();
            nms::act::tasks(&server, token.as_deref(), output, &mut out).await?;
            Ok(out)
        }),
        TasksCommand::Remove(remove) => act(&remove.api, |server, token, output| async move {
            let mut out = Vec::new();
            nms::act::remove_task(&server, token.as_deref(), &remove.task_id, output, &mut out)
                .await?;
            Ok(out)
        }),
    }
}

fn alerts(args: AlertsArgs) -> anyhow::Result<()> {
    match args.command {
        AlertsCommand::List(list) => act(&list.api, |server, token, output| async move {
            let mut out = Vec::new();
            nms::act::alerts(
                &server,
                token.as_deref(),
                list.firing,
                list.agent.as_deref(),
                list.limit.max(1),
                output,
                &mut out,
            )
            .await?;
            Ok(out)
        }),
        AlertsCommand::Ack(ack) => {
            let by = operator(ack.by.clone())?;
            act(&ack.api, |server, token, output| async move {
                let mut out = Vec::new();
                nms::act::acknowledge(
                    &server,
                    token.as_deref(),
                    &ack.alert_id,
                    &by,
                    &ack.comment,
                    output,
                    &mut out,
                )
                .await?;
                Ok(out)
            })
        }
        AlertsCommand::Silence(silence) => {
            if silence.agent.is_none() && silence.task.is_none() && silence.kind.is_none() {
                anyhow::bail!("say what to silence: --agent, --task and/or --kind");
            }
            let by = operator(silence.by.clone())?;
            let mut request = serde_json::json!({
                "comment": silence.comment,
                "created_by": by,
            });
            for (key, value) in [
                ("agent", &silence.agent),
                ("task", &silence.task),
                ("kind", &silence.kind),
                ("starts", &silence.from),
                ("ends", &silence.until),
                ("duration", &silence.duration),
            ] {
                if let Some(v) = value {
                    request[key] = serde_json::Value::from(v.as_str());
                }
            }
            act(&silence.api, |server, token, output| async move {
                let mut out = Vec::new();
                nms::act::silence(&server, token.as_deref(), &request, output, &mut out).await?;
                Ok(out)
            })
        }
        AlertsCommand::Silences(api) => act(&api, |server, token, output| async move {
            let mut out = Vec::new();
            nms::act::silences(&server, token.as_deref(), output, &mut out).await?;
            Ok(out)
        }),
        AlertsCommand::Expire(expire) => act(&expire.api, |server, token, output| async move {
            let mut out = Vec::new();
            nms::act::expire(&server, token.as_deref(), &expire.id, output, &mut out).await?;
            Ok(out)
        }),
    }
}

fn decode(args: DecodeArgs, color: bool) -> anyhow::Result<()> {
    let options = nms::decode::Options {
        input: match args.file {
            Some(path) => nms::decode::Input::File(path),
            None => nms::decode::Input::Stdin,
        },
        hex: args.hex,
        key_file: args.key_file,
        instance: args.instance,
        output: nms::decode::Output::chosen(args.json, color),
    };
    nms::decode::run(
        &options,
        &mut std::io::stdin().lock(),
        &mut std::io::stdout().lock(),
    )?;
    Ok(())
}

fn bench(args: BenchArgs) -> anyhow::Result<()> {
    if args.store {
        if !(args.days > 0.0 && args.days <= 3650.0) {
            anyhow::bail!("--days must be a number of days between 0 and 3650");
        }
        let rate = args.rate.unwrap_or(1.0);
        if !(rate > 0.0 && rate <= 1000.0) {
            anyhow::bail!("--rate must be between 0 and 1000 reports a second");
        }
        let report = nms::bench::store::run(&nms::bench::store::StoreBenchOptions {
            agents: args.agents,
            days: args.days,
            rate,
            month_agent: true,
            server_exe: std::env::current_exe().context("cannot find the nms executable")?,
            work_dir: args.work_dir,
            keep: args.keep,
            progress: !args.json,
            seed: 7,
        })?;
        let mut out = std::io::stdout().lock();
        if args.json {
            serde_json::to_writer(&mut out, &report)?;
            writeln!(out)?;
        } else {
            write!(out, "{}", report.to_text())?;
        }
        return Ok(());
    }
    if !(args.seconds > 0.0 && args.seconds.is_finite()) {
        anyhow::bail!("--seconds must be a positive number");
    }
    if let Some(r) = args.rate
        && !(r > 0.0 && r.is_finite())
    {
        anyhow::bail!("--rate must be a positive number");
    }
    let server = match &args.server {
        None => None,
        Some(s) => {
            let nettask = nms::agent::resolve_server(s)?;
            let http = match &args.http {
                Some(h) => h
                    .parse()
                    .with_context(|| format!("--http {h:?} is not HOST:PORT"))?,
                None => std::net::SocketAddr::new(nettask.ip(), 9470),
            };
            Some((nettask, http))
        }
    };
    let key = args
        .key_file
        .as_deref()
        .map(nms::config::read_key)
        .transpose()?;
    if key.is_some() && server.is_none() {
        anyhow::bail!("--key-file needs --server (the started server runs without a key)");
    }
    let options = nms::bench::BenchOptions {
        agents: args.agents,
        rate: args.rate,
        seconds: args.seconds,
        server,
        alerts: args.alerts,
        remote_write: args.remote_write.clone(),
        alert_rate: args.alert_rate.max(0.1),
        threads: args.threads.max(1),
        window: args.window.max(1),
        ceiling_seconds: args.ceiling_seconds,
        key,
        server_exe: std::env::current_exe().context("cannot find the nms executable")?,
        work_dir: args.work_dir,
        keep: args.keep,
        progress: !args.json && args.log.quiet == 0,
        kill_every: args.kill_every.map(|s| s.max(0.5)),
        token: if server.is_some() {
            client_token(&args.token)?
        } else {
            None
        },
    };
    let report = nms::bench::run(&options)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut out, &report)?;
        writeln!(out)?;
    } else {
        write!(out, "{}", report.to_text())?;
    }
    Ok(())
}

fn completions(args: CompletionsArgs) -> anyhow::Result<()> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "nms", &mut out);
    match std::io::stdout().lock().write_all(&out) {
        // `nms completions bash | head` is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        result => result.context("cannot write the completion script"),
    }
}
