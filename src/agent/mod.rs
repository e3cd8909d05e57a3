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

mod events;
mod reporter;
pub mod scheduler;
mod start;

pub use reporter::Reporter;
pub use start::{DEFAULT_SERVER_PORT, resolve_server};
use start::{Started, resolved_servers, start};

use crate::log::{self, Level};
use crate::nettask::AgentEndpoint;
use crate::nettask::driver::Command;
use crate::wire::Key;
use smol::channel::Sender;
use std::path::PathBuf;
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
    let servers = resolved_servers(&options.servers)?;
    std::fs::create_dir_all(&options.data_dir).map_err(|source| AgentError::Io {
        what: format!(
            "cannot create data directory {}",
            options.data_dir.display()
        ),
        source,
    })?;
    let Started {
        commands,
        events,
        background,
        mut running,
    } = start(&options, servers)?;
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let event = async { Some(events.recv().await) }
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
    drain(&commands).await;
    commands.close();
    log::event(Level::Good, "STOPPED", "the agent stopped");
    drop(background);
    Ok(())
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
