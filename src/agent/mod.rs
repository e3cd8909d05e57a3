//! `nms agent`: registers with the server, runs the tasks it receives, reports metrics over
//! NetTask and raises alerts over AlertFlow.
//!
//! The agent needs no inbound port: it sends from an ephemeral UDP port and the server answers
//! to the source address, so it works behind NAT. Everything it learns (its id, the AlertFlow
//! port, timing, its tasks) comes from the server. When the server is gone the agent keeps
//! measuring; its reports wait in the NetTask queue (bounded, oldest dropped and counted) and its
//! alerts on disk, and both are delivered when the server returns.
//!
//! Given several servers (`--server A,B`), the agent registers with the first that answers
//! and moves to the next when its server is lost, carrying its unacknowledged reports there
//! (and its alerts: AlertFlow follows the server); with `--prefer-first` it goes back to the
//! first when that answers again ([`crate::nettask::AgentEndpoint::with_servers`]).

mod reporter;
pub mod scheduler;

pub use reporter::Reporter;

use crate::alertflow::client::{AlertClient, AlertClientConfig, Destination};
use crate::log::{self, Level};
use crate::nettask::driver::{self, Command, SocketStats};
use crate::nettask::{AgentEndpoint, AgentEvent, AgentIdentity, Config, Keys};
use crate::probes::Tools;
use crate::wire::packet::{CAP_IPERF3, CAP_PING};
use crate::wire::{Alert, Heartbeat, Key, Message};
use scheduler::{Scheduler, ServerClock};
use smol::channel::Sender;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Why an agent could not start or stopped on its own.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A setting that cannot work (a server address, mixed address families).
    #[error("{0}")]
    Invalid(String),
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the alert spool")]
    Spool {
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("the NetTask driver stopped")]
    DriverStopped,
}

/// The default NetTask port of a server.
pub const DEFAULT_SERVER_PORT: u16 = 8081;

/// The validated configuration of an agent.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// `HOST` or `HOST:PORT` of each server's NetTask port, in order of preference.
    pub servers: Vec<String>,
    /// Go back to the first server when it answers again.
    pub prefer_first: bool,
    pub id: String,
    pub data_dir: PathBuf,
    pub key: Option<Key>,
}

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

/// How long a stopping agent waits for the server to acknowledge the reports it sent.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Runs the agent until `shutdown` completes (the binary: SIGTERM or SIGINT); then it stops
/// measuring (its probe programs are stopped), waits up to [`SHUTDOWN_GRACE`] for the reports it
/// sent to be acknowledged, and returns. Unacknowledged alerts stay on disk for the next run.
pub async fn run(
    options: AgentOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), AgentError> {
    use futures_lite::FutureExt;
    if options.servers.is_empty() {
        return Err(AgentError::Invalid("no server given".into()));
    }
    let servers = options
        .servers
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
    std::fs::create_dir_all(&options.data_dir).map_err(|source| AgentError::Io {
        what: format!(
            "cannot create data directory {}",
            options.data_dir.display()
        ),
        source,
    })?;
    let bind: SocketAddr = if server.is_ipv4() {
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
        servers.clone(),
        options.prefer_first,
        identity,
        u64::from_le_bytes(seed),
    );
    let (command_tx, command_rx) = smol::channel::unbounded();
    let (event_tx, event_rx) = smol::channel::bounded(1024);
    // The agent's background tasks: stopped when `run` returns (dropped with this).
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
    log_start(&options, &servers, pending);

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
    let mut running = Running {
        scheduler: Scheduler::new(&options.id, reporter, Tools::for_agent(), clock.clone()),
        sender,
        clock,
        heartbeat_ms,
        current: server,
        servers,
        id: options.id.clone(),
    };

    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let event = async { Some(event_rx.recv().await) }
            .or(async {
                (&mut shutdown).await;
                None
            })
            .await;
        let Some(event) = event else {
            break;
        };
        let Ok(event) = event else {
            return Err(AgentError::DriverStopped);
        };
        running.handle(event);
    }
    log::event(Level::Info, "STOPPING", "stopping the measurements");
    running.scheduler.stop().await;
    drain(&command_tx).await;
    command_tx.close();
    log::event(Level::Good, "STOPPED", "the agent stopped");
    drop(background);
    Ok(())
}

/// What a registered agent works with while it runs.
struct Running {
    scheduler: Scheduler,
    sender: crate::alertflow::client::AlertSender,
    clock: Arc<ServerClock>,
    heartbeat_ms: Arc<AtomicU64>,
    /// The server the endpoint registers with now.
    current: SocketAddr,
    servers: Vec<SocketAddr>,
    id: String,
}

impl Running {
    /// Acts on one event of the NetTask endpoint: a registration, a task, a server change.
    /// One short arm per event kind, most of them a log line: longer than 80 lines as a list.
    fn handle(&mut self, event: AgentEvent) {
        match event {
            AgentEvent::Registered {
                agent_id,
                registered,
            } => {
                self.heartbeat_ms
                    .store(registered.heartbeat_ms.into(), Ordering::Relaxed);
                self.clock.set(registered.server_time_ms, log::now_ms());
                let alertflow = SocketAddr::new(self.current.ip(), registered.alertflow_port);
                self.sender.set_destination(Destination {
                    server: alertflow,
                    agent_id,
                    instance: registered.instance,
                });
                log::event(
                    Level::Good,
                    "REGISTERED",
                    format_args!(
                        "with {} as agent {agent_id}; alerts to tcp/{alertflow}",
                        self.current
                    ),
                );
            }
            AgentEvent::Message(Message::Task(assignment)) => self.scheduler.install(assignment),
            AgentEvent::Message(Message::Cancel(c)) => self.scheduler.cancel(c.task_number),
            AgentEvent::Message(other) => log::event(
                Level::Warn,
                "UNEXPECTED",
                format_args!("the server sent a {} message", other.packet_type().name()),
            ),
            AgentEvent::Acknowledged(_) => {}
            AgentEvent::Dropped(id) => log::event(
                Level::Warn,
                "DROPPED",
                format_args!("report {id} dropped: the queue for the server is full"),
            ),
            AgentEvent::ServerLost => log::event(
                Level::Bad,
                "SERVER",
                "the server does not answer; measuring on and keeping reports until it does",
            ),
            AgentEvent::ServerRecovered => {
                log::event(Level::Good, "SERVER", "the server answers again")
            }
            AgentEvent::Reregistering => log::event(
                Level::Warn,
                "SERVER",
                "the server no longer knows this agent (restarted?); registering again",
            ),
            AgentEvent::Malformed(reason) => log::event(Level::Warn, "MALFORMED", reason),
            AgentEvent::SwitchedServer { from, to, carried } => {
                self.current = to;
                log::event(
                    Level::Warn,
                    "SERVER",
                    format_args!(
                        "moving from {from} to {to}{}; {carried} unacknowledged message(s) go there",
                        if self.servers.first() == Some(&to) {
                            " (the first server)"
                        } else {
                            ""
                        }
                    ),
                );
            }
            AgentEvent::RegistrationUnanswered { attempts } => log::event(
                Level::Bad,
                "SERVER",
                format_args!(
                    "no answer from {} after {attempts} registration attempts: is `nms server` \
                 running there (its NetTask port)? With keys: does it use this agent's key, and \
                 does its keys file have the name {:?}? Still trying.",
                    self.current, self.id
                ),
            ),
            AgentEvent::RegistrationRefused {
                refused,
                registration_time_ms,
                count,
            } => log::event(
                Level::Bad,
                "REFUSED",
                format_args!(
                    "{} refused the registration ({count} in a row): {}; registering again in 5 s",
                    self.current,
                    refusal_text(&refused, registration_time_ms)
                ),
            ),
        }
    }
}

/// Waits up to [`SHUTDOWN_GRACE`] for the server to acknowledge the reports sent.
async fn drain(command_tx: &Sender<Command<AgentEndpoint>>) {
    let deadline = Instant::now() + SHUTDOWN_GRACE;
    loop {
        let (tx, rx) = smol::channel::bounded(1);
        let asked = command_tx.try_send(Box::new(move |ep: &mut AgentEndpoint, _| {
            let _ = tx.try_send(ep.unacknowledged());
        }));
        let waiting = match asked {
            Ok(()) => rx.recv().await.unwrap_or(0),
            Err(_) => 0,
        };
        if waiting == 0 {
            break;
        }
        if Instant::now() >= deadline {
            log::event(
                Level::Warn,
                "STOPPING",
                format_args!(
                    "{waiting} report(s) not acknowledged by the server within {} s: not sent",
                    SHUTDOWN_GRACE.as_secs()
                ),
            );
            break;
        }
        async_io::Timer::after(Duration::from_millis(50)).await;
    }
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

/// What the server objected to, in words an operator can act on.
fn refusal_text(refused: &crate::wire::packet::Refused, registration_time_ms: u64) -> String {
    use crate::wire::packet::RefusalReason;
    match refused.reason {
        RefusalReason::Clock => {
            let skew = registration_time_ms as i128 - refused.server_time_ms as i128;
            format!(
                "this host's clock is {:.1} s {} the server's ({} there); set it right (NTP)",
                skew.unsigned_abs() as f64 / 1000.0,
                if skew > 0 { "ahead of" } else { "behind" },
                log::rfc3339(refused.server_time_ms)
            )
        }
        RefusalReason::NotNewer => format!(
            "the server accepted a registration of this name dated {} already, and this one is \
             not newer (this host's clock went back, or someone replays an old registration)",
            log::rfc3339(refused.last_accepted_ms)
        ),
        RefusalReason::Full => {
            "the server takes no new agents now (its --max-agents, or too many new names at once)"
                .to_string()
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_0_is_no_server_address() {
        let e = resolve_server("127.0.0.1:0").unwrap_err().to_string();
        assert!(e.contains("port 0"), "{e}");
        assert!(resolve_server("127.0.0.1:8081").is_ok());
    }
}
