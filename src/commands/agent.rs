//! `nms agent`: runs the agent until SIGTERM or SIGINT.

use anyhow::Context;

/// Runs an agent until SIGTERM or SIGINT (SIGHUP: nothing to reload, said in the log).
pub fn run(args: crate::cli::AgentArgs) -> anyhow::Result<()> {
    use async_signal::{Signal, Signals};
    use futures_lite::StreamExt;
    let options = crate::options::agent_options(args)?;
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
