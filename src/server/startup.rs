//! Starting a server ([`run`]): the sockets bound ([`Listeners`]), the data directory, store,
//! registry and tasks opened, the driver, AlertFlow, HTTP and background tasks started.

use super::registry::Registry;
use super::{
    AlertIngest, ServerError, ServerOptions, Shared, alertmanager, http, liveness, serve,
    stats_refresh,
};
use crate::log::{self, Level};
use crate::nettask::driver;
use crate::nettask::{Config, ServerEndpoint};
use smol::channel::Sender;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

mod open;

use open::{Opened, load_tasks};

/// Where a running server listens (ports resolved when 0 was asked).
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub nettask: SocketAddr,
    pub alertflow: SocketAddr,
    pub http: SocketAddr,
}

/// Raises the soft limit of open files to the hard limit: every AlertFlow and HTTP
/// connection holds a descriptor, and the usual soft limit of 1024 is soon reached.
fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < 16_384 => log::event(
            Level::Warn,
            "START",
            format_args!(
                "open files are limited to {limit} (the hard limit): connections past it are \
                 refused; raise it (LimitNOFILE= in the systemd unit, ulimit -Hn)"
            ),
        ),
        Ok(_) => {}
        Err(e) => log::event(
            Level::Warn,
            "START",
            format_args!("cannot raise the limit of open files: {e}"),
        ),
    }
}

/// The sockets a server serves on, bound before [`run`] is called: the binary binds what the
/// options name ([`Listeners::bind`]); a test binds port 0 and reads the ports back.
pub struct Listeners {
    pub nettask: async_net::UdpSocket,
    pub alertflow: async_net::TcpListener,
    pub http: async_net::TcpListener,
}

impl Listeners {
    /// Binds the NetTask, AlertFlow and HTTP addresses of `options`.
    pub async fn bind(options: &ServerOptions) -> Result<Listeners, ServerError> {
        let nettask_addr = SocketAddr::new(options.listen, options.nettask_port);
        let nettask =
            driver::bind(nettask_addr, 8 * 1024 * 1024).map_err(|source| ServerError::Bind {
                what: format!("NetTask port udp/{nettask_addr}"),
                source,
            })?;
        let alertflow_addr = SocketAddr::new(options.listen, options.alertflow_port);
        let alertflow = async_net::TcpListener::bind(alertflow_addr)
            .await
            .map_err(|source| ServerError::Bind {
                what: format!("AlertFlow port tcp/{alertflow_addr}"),
                source,
            })?;
        let http = async_net::TcpListener::bind(options.http)
            .await
            .map_err(|source| ServerError::Bind {
                what: format!("HTTP API on {}", options.http),
                source,
            })?;
        Ok(Listeners {
            nettask,
            alertflow,
            http,
        })
    }

    /// Where the sockets are bound (ports resolved when 0 was asked).
    pub fn bound(&self) -> std::io::Result<Bound> {
        Ok(Bound {
            nettask: self.nettask.local_addr()?,
            alertflow: self.alertflow.local_addr()?,
            http: self.http.local_addr()?,
        })
    }
}

/// A started server: where it listens, its shared parts while it runs, and its end.
pub struct RunningServer {
    pub bound: Bound,
    shared: std::sync::Weak<Shared>,
    done: smol::Task<Result<(), ServerError>>,
}

impl RunningServer {
    /// The server's shared parts, while it runs (for reloads, and for tests to look inside).
    pub fn shared(&self) -> Option<Arc<Shared>> {
        self.shared.upgrade()
    }

    /// A handle on the shared parts that does not keep them alive.
    pub fn weak(&self) -> std::sync::Weak<Shared> {
        self.shared.clone()
    }

    /// Waits for the server to stop: `Ok` once its shutdown signal came and it stopped cleanly
    /// (nothing accepted any more, the last batch stored and acknowledged, the local agent and
    /// its probes stopped, the store closed); `Err` if it failed while running.
    pub async fn stopped(self) -> Result<(), ServerError> {
        self.done.await
    }
}

/// The parts [`run`] starts, stopped in order when the shutdown signal comes.
pub(super) struct Started {
    /// Waits for the shutdown signal and closes the stop channel (done before the rest stop).
    pub(super) shutdown_signal: smol::Task<()>,
    pub(super) driver: smol::Task<()>,
    pub(super) alertflow: smol::Task<()>,
    pub(super) http: smol::Task<()>,
    pub(super) background: Vec<smol::Task<()>>,
    pub(super) local_agent: Option<(smol::Task<()>, Sender<()>)>,
}

/// Starts a server on `listeners`; it runs until `shutdown` completes (the binary: SIGTERM or
/// SIGINT), then stops cleanly. Returns once everything is started: the caller then tells
/// systemd it is ready, and waits with [`RunningServer::stopped`].
pub async fn run(
    options: ServerOptions,
    listeners: Listeners,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<RunningServer, ServerError> {
    raise_open_file_limit();
    for url in &options.alertmanagers {
        alertmanager::check_target(url)?;
    }
    let mut opened = Opened::open(&options)?;
    load_tasks(&options, &mut opened.dispatch)?;

    let bound = listeners.bound()?;
    let Listeners {
        nettask: socket,
        alertflow: alert_listener,
        http: http_listener,
    } = listeners;
    let endpoint = new_endpoint(&options, &opened.registry);
    let (command_tx, command_rx) = smol::channel::unbounded();
    let (event_tx, event_rx) = smol::channel::bounded(65536);
    let shared = opened.into_shared(&options, bound, command_tx)?;
    log_start(&options, bound);

    // Closed when the shutdown signal comes: every part waits on it.
    let (stop_tx, stop_rx) = smol::channel::bounded::<()>(1);
    let stopped = move || {
        let stop_rx = stop_rx.clone();
        async move {
            let _ = stop_rx.recv().await;
        }
    };
    let shutdown_signal = smol::spawn(async move {
        shutdown.await;
        stop_tx.close();
    });

    let driver_task = smol::spawn(driver::run(
        socket,
        endpoint,
        command_rx,
        event_tx,
        shared.socket_stats.clone(),
    ));
    let alertflow_task = start_alertflow(&shared, &options, alert_listener, stopped());
    let http_task = smol::spawn(http::serve(http_listener, shared.clone(), stopped()));
    let background = vec![
        smol::spawn(liveness(shared.clone())),
        smol::spawn(stats_refresh(shared.clone())),
    ];
    let local_agent = match &options.local_agent {
        Some(name) => Some(start_local_agent(&options, name, bound)?),
        None => None,
    };
    let started = Started {
        shutdown_signal,
        driver: driver_task,
        alertflow: alertflow_task,
        http: http_task,
        background,
        local_agent,
    };
    let weak = Arc::downgrade(&shared);
    let done = smol::spawn(serve(shared, event_rx, stopped(), started));
    Ok(RunningServer {
        bound,
        shared: weak,
        done,
    })
}
/// The NetTask endpoint, knowing the agents of the registry.
fn new_endpoint(options: &ServerOptions, registry: &Registry) -> ServerEndpoint {
    let mut config = Config {
        initial_timeout: options.initial_timeout,
        max_retransmissions: options.max_retransmissions,
        keys: options.keys.clone(),
        // A report is acknowledged once it is stored and synced ([`store_batch`]).
        held_types: crate::nettask::HeldTypes::of(&[crate::wire::PacketType::Metrics]),
        ..Config::default()
    };
    config.max_queued_messages = 1000;
    let mut endpoint = ServerEndpoint::new(config);
    endpoint.set_wall_clock(Instant::now(), log::now_ms());
    for agent in registry.all() {
        endpoint.know_agent(agent.id, &agent.name);
        endpoint.remember_registration(&agent.name, agent.last_registration_ms);
    }
    endpoint
}
/// Says where the server listens, and warns when traffic is not authenticated.
fn log_start(options: &ServerOptions, bound: Bound) {
    log::event(
        Level::Good,
        "START",
        format_args!(
            "nms server: NetTask udp/{}, AlertFlow tcp/{}, HTTP http://{}, data in {}",
            bound.nettask,
            bound.alertflow,
            bound.http,
            std::path::absolute(&options.data_dir)
                .unwrap_or_else(|_| options.data_dir.clone())
                .display()
        ),
    );
    if !options.keys.is_keyed() {
        log::event(
            Level::Warn,
            "SECURITY",
            "no --key-file: NetTask and AlertFlow traffic is not authenticated (integrity tag only)",
        );
    }
}

/// The AlertFlow server, storing what arrives until `stop`.
fn start_alertflow(
    shared: &Arc<Shared>,
    options: &ServerOptions,
    alert_listener: async_net::TcpListener,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> smol::Task<()> {
    let shared = shared.clone();
    let keys = options.keys.clone();
    smol::spawn(async move {
        let lookup_shared = Arc::downgrade(&shared);
        // A frame is tagged with the session key of the agent's latest registration (kept
        // in the registry, so it holds across a server restart). An id that is not
        // registered, or whose name has no key while keys are configured, gets nothing.
        let lookup: crate::alertflow::KeyLookup = Arc::new(move |agent_id| {
            let shared = lookup_shared.upgrade()?;
            let state = shared.state();
            let record = state.registry.get(agent_id)?;
            if !keys.admits(&record.name) {
                return None;
            }
            Some(keys.session_key(&record.name, record.instance))
        });
        crate::alertflow::server::AlertServer::new(
            Arc::new(AlertIngest(Arc::downgrade(&shared))),
            lookup,
        )
        .run(alert_listener, stop)
        .await
    })
}

/// The agent `--local-agent` runs in this process, and the sender that stops it.
fn start_local_agent(
    options: &ServerOptions,
    name: &str,
    bound: Bound,
) -> Result<(smol::Task<()>, Sender<()>), ServerError> {
    crate::config::check_agent_name(name).map_err(|e| ServerError::LocalAgent(format!("{e:#}")))?;
    let agent = crate::agent::AgentOptions {
        servers: vec![
            SocketAddr::new(loopback_of(options.listen), bound.nettask.port()).to_string(),
        ],
        prefer_first: false,
        id: name.to_string(),
        data_dir: options.data_dir.join("local-agent").join(name),
        key: options.keys.for_agent(name).cloned(),
    };
    let (agent_stop_tx, agent_stop_rx) = smol::channel::bounded::<()>(1);
    let task = smol::spawn(async move {
        let stop = async move {
            let _ = agent_stop_rx.recv().await;
        };
        if let Err(e) = crate::agent::run(agent, stop).await {
            log::event(
                Level::Bad,
                "AGENT",
                format_args!("the local agent stopped: {e:#}"),
            );
        }
    });
    Ok((task, agent_stop_tx))
}

/// The base URL of the HTTP API as others reach it (the host name when it listens everywhere).
fn http_base(http: SocketAddr) -> String {
    if http.ip().is_unspecified()
        && let Ok(host) = crate::config::host_name()
    {
        return format!("http://{host}:{}", http.port());
    }
    format!("http://{http}")
}

/// The loopback address of the family the server listens on (its own agent connects there).
fn loopback_of(listen: IpAddr) -> IpAddr {
    match listen {
        IpAddr::V4(a) if !a.is_unspecified() => listen,
        IpAddr::V6(a) if !a.is_unspecified() => listen,
        IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
    }
}
