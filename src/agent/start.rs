//! Starting an agent: the servers' addresses resolved and checked, the UDP socket and NetTask
//! endpoint, the alert spool, and the background tasks (the NetTask driver, the AlertFlow client,
//! the alert spooler, the heartbeats) that run while the agent does.

use super::events::Running;
use super::scheduler::{Scheduler, ServerClock};
use super::{AgentError, AgentOptions, Reporter};
use crate::alertflow::client::{AlertClient, AlertClientConfig};
use crate::log::{self, Level};
use crate::nettask::driver::{self, Command, SocketStats};
use crate::nettask::{AgentEndpoint, AgentEvent, AgentIdentity, Config, Keys};
use crate::probes::Tools;
use crate::wire::packet::{CAP_IPERF3, CAP_PING};
use crate::wire::{Alert, Heartbeat, Message};
use smol::channel::Sender;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The default NetTask port of a server.
pub const DEFAULT_SERVER_PORT: u16 = 8081;

/// Resolves `HOST[:PORT]` (default port 8081).
pub fn resolve_server(server: &str) -> Result<SocketAddr, AgentError> {
    use std::net::ToSocketAddrs;
    if let Some((_, port)) = server.rsplit_once(':')
        && !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u16>().is_err()
        && !server.ends_with(']')
    {
        return Err(AgentError::Invalid(format!(
            "server address {server:?}: port {port} is out of range (1-65535)"
        )));
    }
    if let Some((_, port)) = server.rsplit_once(':')
        && port.parse::<u16>() == Ok(0)
        && !server.ends_with(']')
    {
        return Err(AgentError::Invalid(format!(
            "server address {server:?}: port 0 is not a port a server listens on"
        )));
    }
    let with_port = if server.parse::<SocketAddr>().is_ok() {
        server.to_string()
    } else if let Ok(ip) = server.parse::<std::net::IpAddr>() {
        SocketAddr::new(ip, DEFAULT_SERVER_PORT).to_string()
    } else if server
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        server.to_string()
    } else {
        format!("{server}:{DEFAULT_SERVER_PORT}")
    };
    with_port
        .to_socket_addrs()
        .map_err(|source| AgentError::Io {
            what: format!("cannot resolve the server address {server:?}"),
            source,
        })?
        .next()
        .ok_or_else(|| {
            AgentError::Invalid(format!("the server address {server:?} resolves to nothing"))
        })
}

/// The servers' addresses, resolved, all of one address family (the agent sends from one
/// socket).
pub(super) fn resolved_servers(given: &[String]) -> Result<Vec<SocketAddr>, AgentError> {
    if given.is_empty() {
        return Err(AgentError::Invalid("no server given".into()));
    }
    let servers = given
        .iter()
        .map(|s| resolve_server(s))
        .collect::<Result<Vec<SocketAddr>, _>>()?;
    let server = servers[0];
    if let Some(other) = servers.iter().find(|s| s.is_ipv4() != server.is_ipv4()) {
        return Err(AgentError::Invalid(format!(
            "the servers {server} and {other} are of different address families: give all \
             servers as IPv4 or all as IPv6 (the agent sends from one socket)"
        )));
    }
    Ok(servers)
}

/// A started agent: the NetTask driver's command and event channels, its background tasks
/// (stopped when dropped) and the state its events act on.
pub(super) struct Started {
    pub(super) commands: Sender<Command<AgentEndpoint>>,
    pub(super) events: smol::channel::Receiver<AgentEvent>,
    pub(super) background: Vec<smol::Task<()>>,
    pub(super) running: Running,
}

/// Opens the socket and the alert spool and starts the background tasks: the NetTask driver,
/// the AlertFlow client, the alert spooler and the heartbeats.
pub(super) fn start(
    options: &AgentOptions,
    servers: Vec<SocketAddr>,
) -> Result<Started, AgentError> {
    let server = servers[0];
    let (socket, endpoint) = endpoint(options, &servers)?;
    let (command_tx, command_rx) = smol::channel::unbounded();
    let (event_tx, event_rx) = smol::channel::bounded(1024);
    let mut background: Vec<smol::Task<()>> = Vec::new();
    background.push(smol::spawn(async move {
        let _ = driver::run(
            socket,
            endpoint,
            command_rx,
            event_tx,
            Arc::new(SocketStats::default()),
        )
        .await;
    }));
    let mut alert_config = AlertClientConfig::new(options.data_dir.join("alerts"));
    alert_config.key = options.key.clone();
    let client = AlertClient::open(alert_config).map_err(|source| AgentError::Spool {
        source: Box::new(source),
    })?;
    let sender = client.sender();
    let pending = sender.counts().pending;
    background.push(smol::spawn(async move {
        let _ = client.run().await;
    }));
    let (alert_tx, alert_rx) = smol::channel::unbounded::<Alert>();
    background.push(smol::spawn(spool_alerts(sender.clone(), alert_rx)));
    log_start(options, &servers, pending);
    let last_sent_ms = Arc::new(AtomicU64::new(0));
    let reporter = Reporter {
        commands: command_tx.clone(),
        alerts: alert_tx,
        last_sent_ms: last_sent_ms.clone(),
        last_report_time_ms: Arc::new(AtomicU64::new(0)),
    };
    let clock = Arc::new(ServerClock::default());
    let heartbeat_ms = Arc::new(AtomicU64::new(0));
    background.push(smol::spawn(heartbeats(
        command_tx.clone(),
        heartbeat_ms.clone(),
        last_sent_ms,
    )));
    let running = Running {
        scheduler: Scheduler::new(&options.id, reporter, Tools::for_agent(), clock.clone()),
        sender,
        clock,
        heartbeat_ms,
        current: server,
        servers,
        id: options.id.clone(),
    };
    Ok(Started {
        commands: command_tx,
        events: event_rx,
        background,
        running,
    })
}

/// The agent's UDP socket (an ephemeral port of the servers' family) and its NetTask endpoint.
fn endpoint(
    options: &AgentOptions,
    servers: &[SocketAddr],
) -> Result<(async_net::UdpSocket, AgentEndpoint), AgentError> {
    let bind: SocketAddr = if servers[0].is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = driver::bind(bind, 1024 * 1024).map_err(|source| AgentError::Io {
        what: "cannot open a UDP socket".into(),
        source,
    })?;
    let config = Config {
        keys: Keys::single(options.key.clone()),
        ..Config::default()
    };
    let mut identity = AgentIdentity::new(&options.id);
    identity.capabilities = tool_capabilities();
    let mut seed = [0u8; 8];
    let _ = getrandom::fill(&mut seed);
    let endpoint = AgentEndpoint::with_servers(
        Instant::now(),
        log::now_ms(),
        config,
        servers.to_vec(),
        options.prefer_first,
        identity,
        u64::from_le_bytes(seed),
    );
    Ok((socket, endpoint))
}

/// Hands the workers' alerts to the AlertFlow spool.
async fn spool_alerts(
    sender: crate::alertflow::client::AlertSender,
    alert_rx: smol::channel::Receiver<Alert>,
) {
    while let Ok(alert) = alert_rx.recv().await {
        match sender.raise(alert).await {
            Err(e) => log::event(Level::Bad, "ALERT", format_args!("not spooled: {e}")),
            Ok(pushed) => {
                if let Some(why) = pushed.kept_in_memory {
                    log::event(
                        Level::Bad,
                        "ALERT",
                        format_args!(
                            "not spooled ({why}): kept in memory and sent when the \
                             server is reachable; spooled when the disk takes it"
                        ),
                    );
                }
            }
        }
    }
}

/// The START line: the servers, the data folder, the alerts waiting from an earlier run.
fn log_start(options: &AgentOptions, servers: &[SocketAddr], pending: u64) {
    log::event(
        Level::Info,
        "START",
        format_args!(
            "nms agent {} registering with {}; data in {}{}",
            options.id,
            servers
                .iter()
                .map(SocketAddr::to_string)
                .collect::<Vec<_>>()
                .join(" or "),
            std::path::absolute(&options.data_dir)
                .unwrap_or_else(|_| options.data_dir.clone())
                .display(),
            if pending > 0 {
                format!("; {pending} alert(s) waiting to be delivered")
            } else {
                String::new()
            }
        ),
    );
}

/// Sends a HEARTBEAT whenever nothing was sent for one heartbeat interval.
async fn heartbeats(
    commands: Sender<Command<AgentEndpoint>>,
    interval_ms: Arc<AtomicU64>,
    last_sent_ms: Arc<AtomicU64>,
) {
    loop {
        let interval = interval_ms.load(Ordering::Relaxed);
        if interval == 0 {
            async_io::Timer::after(Duration::from_millis(200)).await;
            continue;
        }
        async_io::Timer::after(Duration::from_millis(interval / 2)).await;
        let now = log::now_ms();
        if now.saturating_sub(last_sent_ms.load(Ordering::Relaxed)) < interval {
            continue;
        }
        last_sent_ms.store(now, Ordering::Relaxed);
        let sent = commands.try_send(Box::new(move |ep: &mut AgentEndpoint, t| {
            // Anything unacknowledged already tells the server the agent is alive.
            if ep.is_registered() && ep.unacknowledged() == 0 {
                let pending = 0;
                ep.send(
                    t,
                    &Message::Heartbeat(Heartbeat {
                        time_ms: now,
                        pending_reports: pending,
                    }),
                );
            }
        }));
        if sent.is_err() {
            return;
        }
    }
}

/// Which measurement tools this host has.
fn tool_capabilities() -> u8 {
    let on_path = |tool: &str| {
        std::env::var_os("PATH")
            .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
    };
    let mut caps = 0;
    if on_path("ping") {
        caps |= CAP_PING;
    }
    if on_path("iperf3") {
        caps |= CAP_IPERF3;
    }
    caps
}
