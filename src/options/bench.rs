//! `nms bench`'s options: the load to offer (or the store to fill with `--store`), checked.

use super::client_token;
use crate::cli::BenchArgs;
use anyhow::Context;

/// The options of `nms bench --store`.
pub fn store_bench_options(
    args: &BenchArgs,
) -> anyhow::Result<nms::bench::store::StoreBenchOptions> {
    if !(args.days > 0.0 && args.days <= 3650.0) {
        anyhow::bail!("--days must be a number of days between 0 and 3650");
    }
    let rate = args.rate.unwrap_or(1.0);
    if !(rate > 0.0 && rate <= 1000.0) {
        anyhow::bail!("--rate must be between 0 and 1000 reports a second");
    }
    Ok(nms::bench::store::StoreBenchOptions {
        agents: args.agents,
        days: args.days,
        rate,
        month_agent: true,
        server_exe: std::env::current_exe().context("cannot find the nms executable")?,
        work_dir: args.work_dir.clone(),
        keep: args.keep,
        progress: !args.json,
        seed: 7,
    })
}

/// The options of `nms bench`: agents against a started server, or `--server`'s.
pub fn bench_options(args: &BenchArgs) -> anyhow::Result<nms::bench::BenchOptions> {
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
    Ok(nms::bench::BenchOptions {
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
        work_dir: args.work_dir.clone(),
        keep: args.keep,
        progress: !args.json && args.log.quiet == 0,
        kill_every: args.kill_every.map(|s| s.max(0.5)),
        token: if server.is_some() {
            client_token(&args.token)?
        } else {
            None
        },
    })
}
