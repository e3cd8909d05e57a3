//! `nms agent`'s options: its flags over its settings file, with its name, data directory,
//! key and the list of servers in the order it tries them.

use crate::cli::AgentArgs;
use std::path::PathBuf;

/// The agent's validated options.
pub fn agent_options(args: AgentArgs) -> anyhow::Result<nms::agent::AgentOptions> {
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
    Ok(nms::agent::AgentOptions {
        servers,
        prefer_first: args.prefer_first || file.prefer_first.unwrap_or(false),
        id,
        data_dir,
        key,
    })
}
