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

pub mod scheduler;

use crate::alertflow::client::{AlertClient, AlertClientConfig, Destination};
use crate::log::{self, Level};
use crate::nettask::driver::{self, Command, SocketStats};
use crate::nettask::{AgentEndpoint, AgentEvent, AgentIdentity, Config, Keys};
use crate::probes::Tools;
use crate::wire::packet::{CAP_IPERF3, CAP_PING};
use crate::wire::{Alert, Heartbeat, Key, Message, MetricsReport};
use anyhow::Context;
use scheduler::{Scheduler, ServerClock};
use smol::channel::Sender;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

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

/// How workers hand over reports and alerts.
#[derive(Clone)]
pub struct Reporter {
    commands: Sender<Command<AgentEndpoint>>,
    alerts: Sender<Alert>,
    last_sent_ms: Arc<AtomicU64>,
    last_report_time_ms: Arc<AtomicU64>,
}

impl Reporter {
    /// The time of a new report: now, but always later than the agent's previous report. The
    /// server stores one report per (agent, task, time), so two measurements that end in the
    /// same millisecond must not share a time.
    pub fn report_time(&self) -> u64 {
        next_report_time(&self.last_report_time_ms, log::now_ms())
    }

    /// Queues a metrics report for the server.
    pub fn report(&self, report: MetricsReport) {
        self.last_sent_ms.store(log::now_ms(), Ordering::Relaxed);
        let message = Message::Metrics(report);
        let _ = self.commands.try_send(Box::new(move |ep, now| {
            ep.send(now, &message);
        }));
    }

    /// Spools an alert and sends it over AlertFlow.
    pub fn raise(&self, alert: Alert) {
        if scheduler::log_reports() {
            if alert.resolves == 0 {
                log::event(
                    Level::Info,
                    "RAISED",
                    format_args!(
                        "{:016x} {} {}",
                        alert.alert_id,
                        alert.task,
                        alert.alert_type.name()
                    ),
                );
            } else {
                log::event(
                    Level::Info,
                    "RESOLVING",
                    format_args!(
                        "{:016x} resolves {:016x} {} {}",
                        alert.alert_id,
                        alert.resolves,
                        alert.task,
                        alert.alert_type.name()
                    ),
                );
            }
        }
        let _ = self.alerts.try_send(alert);
    }
}

/// Resolves `HOST[:PORT]` (default port 8081).
pub fn resolve_server(server: &str) -> anyhow::Result<SocketAddr> {
    use std::net::ToSocketAddrs;
    if let Some((_, port)) = server.rsplit_once(':')
        && !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u16>().is_err()
        && !server.ends_with(']')
    {
        anyhow::bail!("server address {server:?}: port {port} is out of range (1-65535)");
    }
    if let Some((_, port)) = server.rsplit_once(':')
        && port.parse::<u16>() == Ok(0)
        && !server.ends_with(']')
    {
        anyhow::bail!("server address {server:?}: port 0 is not a port a server listens on");
    }
    let with_port = if server.parse::<SocketAddr>().is_ok() {
        server.to_string()
    } else if server.parse::<std::net::IpAddr>().is_ok() {
        SocketAddr::new(server.parse()?, DEFAULT_SERVER_PORT).to_string()
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
        .with_context(|| format!("cannot resolve the server address {server:?}"))?
        .next()
        .with_context(|| format!("the server address {server:?} resolves to nothing"))
}

/// How long a stopping agent waits for the server to acknowledge the reports it sent.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Runs the agent until `shutdown` completes (the binary: SIGTERM or SIGINT); then it stops
/// measuring (its probe programs are stopped), waits up to [`SHUTDOWN_GRACE`] for the reports it
/// sent to be acknowledged, and returns. Unacknowledged alerts stay on disk for the next run.
pub async fn run(
    options: AgentOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    use futures_lite::FutureExt;
    if options.servers.is_empty() {
        anyhow::bail!("no server given");
    }
    let servers = options
        .servers
        .iter()
        .map(|s| resolve_server(s))
        .collect::<anyhow::Result<Vec<SocketAddr>>>()?;
    let server = servers[0];
    if let Some(other) = servers.iter().find(|s| s.is_ipv4() != server.is_ipv4()) {
        anyhow::bail!(
            "the servers {server} and {other} are of different address families: give all \
             servers as IPv4 or all as IPv6 (the agent sends from one socket)"
        );
    }
    std::fs::create_dir_all(&options.data_dir).with_context(|| {
        format!(
            "cannot create data directory {}",
            options.data_dir.display()
        )
    })?;
    let bind: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse()?
    } else {
        "[::]:0".parse()?
    };
    let socket = driver::bind(bind, 1024 * 1024).context("cannot open a UDP socket")?;
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
    smol::spawn(driver::run(
        socket,
        endpoint,
        command_rx,
        event_tx,
        Arc::new(SocketStats::default()),
    ))
    .detach();

    let mut alert_config = AlertClientConfig::new(options.data_dir.join("alerts"));
    alert_config.key = options.key.clone();
    let client = AlertClient::open(alert_config).context("cannot open the alert spool")?;
    let sender = client.sender();
    let pending = sender.counts().pending;
    smol::spawn(client.run()).detach();
    let (alert_tx, alert_rx) = smol::channel::unbounded::<Alert>();
    {
        let sender = sender.clone();
        smol::spawn(async move {
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
        })
        .detach();
    }

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

    let last_sent_ms = Arc::new(AtomicU64::new(0));
    let reporter = Reporter {
        commands: command_tx.clone(),
        alerts: alert_tx,
        last_sent_ms: last_sent_ms.clone(),
        last_report_time_ms: Arc::new(AtomicU64::new(0)),
    };
    let clock = Arc::new(ServerClock::default());
    let mut scheduler = Scheduler::new(&options.id, reporter, Tools::for_agent(), clock.clone());
    let heartbeat_ms = Arc::new(AtomicU64::new(0));
    smol::spawn(heartbeats(
        command_tx.clone(),
        heartbeat_ms.clone(),
        last_sent_ms,
    ))
    .detach();

    let mut shutdown = std::pin::pin!(shutdown);
    // The server the endpoint registers with now.
    let mut current = server;
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
            anyhow::bail!("the NetTask driver stopped")
        };
        match event {
            AgentEvent::Registered {
                agent_id,
                registered,
            } => {
                heartbeat_ms.store(registered.heartbeat_ms.into(), Ordering::Relaxed);
                clock.set(registered.server_time_ms, log::now_ms());
                let alertflow = SocketAddr::new(current.ip(), registered.alertflow_port);
                sender.set_destination(Destination {
                    server: alertflow,
                    agent_id,
                    instance: registered.instance,
                });
                log::event(
                    Level::Good,
                    "REGISTERED",
                    format_args!("with {current} as agent {agent_id}; alerts to tcp/{alertflow}"),
                );
            }
            AgentEvent::Message(Message::Task(assignment)) => scheduler.install(assignment),
            AgentEvent::Message(Message::Cancel(c)) => scheduler.cancel(c.task_number),
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
                current = to;
                log::event(
                    Level::Warn,
                    "SERVER",
                    format_args!(
                        "moving from {from} to {to}{}; {carried} unacknowledged message(s) go there",
                        if servers.first() == Some(&to) {
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
                    "no answer from {current} after {attempts} registration attempts: is `nms server` \
                     running there (its NetTask port)? With keys: does it use this agent's key, and \
                     does its keys file have the name {:?}? Still trying.",
                    options.id
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
                    "{current} refused the registration ({count} in a row): {}; registering again in 5 s",
                    refusal_text(&refused, registration_time_ms)
                ),
            ),
        }
    }
    log::event(Level::Info, "STOPPING", "stopping the measurements");
    scheduler.stop().await;
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
    command_tx.close();
    log::event(Level::Good, "STOPPED", "the agent stopped");
    Ok(())
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

/// `now_ms`, or one more than the last time handed out when that is not earlier; remembers it.
fn next_report_time(last: &AtomicU64, now_ms: u64) -> u64 {
    let previous = last
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |prev| {
            Some(now_ms.max(prev + 1))
        })
        .unwrap_or(now_ms);
    now_ms.max(previous + 1)
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

    #[test]
    fn report_times_never_repeat() {
        let last = AtomicU64::new(0);
        assert_eq!(next_report_time(&last, 1000), 1000);
        assert_eq!(next_report_time(&last, 1000), 1001);
        assert_eq!(next_report_time(&last, 1000), 1002);
        assert_eq!(next_report_time(&last, 999), 1003, "a clock going back");
        assert_eq!(next_report_time(&last, 2000), 2000);
    }
}
