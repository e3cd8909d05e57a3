//! The `nms` binary: parses the command line, hands each subcommand to the library, and turns an
//! error into one line on standard error (`nms: ...`) and exit status 1.

mod cli;

use anyhow::Context;
use clap::{CommandFactory, Parser};
use cli::{AgentArgs, BenchArgs, Cli, Command, CompletionsArgs, DecodeArgs, ServerArgs};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("nms: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let color = cli.color.enabled(std::io::stdout().is_terminal());
    match cli.command {
        Command::Server(args) => server(args),
        Command::Agent(args) => agent(args),
        Command::Decode(args) => decode(args, color),
        Command::Completions(args) => completions(args),
        Command::Bench(args) => bench(args),
    }
}

fn server(args: ServerArgs) -> anyhow::Result<()> {
    let keys = nms::config::server_keys(args.key_file.as_deref(), args.keys_file.as_deref())?;
    let options = nms::server::ServerOptions {
        task_files: args.configs,
        listen: args.listen,
        nettask_port: args.nettask_port,
        alertflow_port: args.alertflow_port,
        http: args.http,
        data_dir: match args.data_dir {
            Some(d) => d,
            None => nms::config::default_data_dir("server")?,
        },
        keys,
        heartbeat: std::time::Duration::from_millis(args.heartbeat_ms.clamp(100, 3_600_000)),
        missed_heartbeats: args.missed_heartbeats.max(1),
        initial_timeout: std::time::Duration::from_millis(args.timeout_ms.clamp(10, 60_000)),
        max_retransmissions: args.max_retransmissions,
        local_agent: args.local_agent,
        verbose: args.verbose,
    };
    smol::block_on(nms::server::run(options))
}

fn agent(args: AgentArgs) -> anyhow::Result<()> {
    let id = match args.id {
        Some(id) => id,
        None => nms::config::host_name()?,
    };
    nms::config::check_agent_name(&id)?;
    let data_dir = match args.data_dir {
        Some(d) => d,
        None => nms::config::default_data_dir("agents")?.join(&id),
    };
    let key = args
        .key_file
        .as_deref()
        .map(nms::config::read_key)
        .transpose()?;
    let options = nms::agent::AgentOptions {
        server: args.server,
        id,
        data_dir,
        key,
    };
    smol::block_on(nms::agent::run(options))
}

fn decode(args: DecodeArgs, color: bool) -> anyhow::Result<()> {
    let options = nms::decode::Options {
        input: match args.file {
            Some(path) => nms::decode::Input::File(path),
            None => nms::decode::Input::Stdin,
        },
        hex: args.hex,
        key_file: args.key_file,
        output: if args.json {
            nms::decode::Output::Json
        } else {
            nms::decode::Output::Text { color }
        },
    };
    nms::decode::run(
        &options,
        &mut std::io::stdin().lock(),
        &mut std::io::stdout().lock(),
    )?;
    Ok(())
}

fn bench(args: BenchArgs) -> anyhow::Result<()> {
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
        alert_rate: args.alert_rate.max(0.1),
        threads: args.threads.max(1),
        window: args.window.max(1),
        ceiling_seconds: args.ceiling_seconds,
        key,
        server_exe: std::env::current_exe().context("cannot find the nms executable")?,
        work_dir: args.work_dir,
        keep: args.keep,
        progress: !args.json,
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
