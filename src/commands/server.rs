//! `nms server`: binds, runs the server, and handles its signals (SIGHUP reloads the settings,
//! SIGTERM/SIGINT stop it gently, a second one at once).

use crate::cli::ServerArgs;
use crate::options::server_options;
use anyhow::Context;
use clap::ArgMatches;

/// Runs the server until SIGTERM or SIGINT.
pub fn run(args: ServerArgs, matches: Option<&ArgMatches>) -> anyhow::Result<()> {
    use async_signal::{Signal, Signals};
    let options = server_options(&args, matches)?;
    // Registered before the server starts, so a signal in between is not lost.
    let signals =
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
        let reload = || {
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
        };
        futures_lite::future::or(running.stopped(), async {
            handle_signals(signals, reload, stop_tx).await;
            Ok(())
        })
        .await
    })
    .map_err(anyhow::Error::from)
}

/// Answers the server's signals: SIGHUP calls `reload`, the first SIGTERM or SIGINT closes
/// `stop` (the server drains and stops), a second one exits at once. Never returns.
async fn handle_signals(
    mut signals: async_signal::Signals,
    reload: impl Fn(),
    stop: smol::channel::Sender<()>,
) {
    use async_signal::Signal;
    use futures_lite::StreamExt;
    let mut stopping = false;
    while let Some(signal) = signals.next().await {
        match signal {
            Ok(Signal::Hup) if !stopping => {
                nms::notify::reloading();
                reload();
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
                stop.close();
            }
            Ok(Signal::Term | Signal::Int) => std::process::exit(1),
            _ => {}
        }
    }
    std::future::pending::<()>().await
}
