//! The event loop: endpoint events gathered into batches (one store write and one sync each),
//! the endpoint's counters copied for the API, and the orderly shutdown.

use super::ServerError;
use super::{Shared, Started, handle_events, store_batch};
use crate::log::{self, Level};
use crate::nettask::ServerEvent;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The event loop, then the shutdown: handles the endpoint's events batch by batch until the
/// stop signal, then stops accepting, stores and acknowledges what was received, stops the
/// local agent and closes the store.
pub(super) async fn serve(
    shared: Arc<Shared>,
    event_rx: smol::channel::Receiver<ServerEvent>,
    stop: impl std::future::Future<Output = ()>,
    started: Started,
) -> Result<(), ServerError> {
    use futures_lite::FutureExt;
    enum Next {
        Event(ServerEvent),
        Stop,
        DriverGone,
    }
    let mut stop = std::pin::pin!(stop);
    // Agents already registered in an earlier run are sent their tasks when they register again.
    let outcome = loop {
        // The stop signal is looked at first: under load events never stop coming.
        let next = async {
            (&mut stop).await;
            Next::Stop
        }
        .or(async {
            match event_rx.recv().await {
                Ok(e) => Next::Event(e),
                Err(_) => Next::DriverGone,
            }
        })
        .await;
        let first = match next {
            Next::Event(e) => e,
            Next::Stop => break Ok(()),
            Next::DriverGone => break Err(ServerError::DriverStopped),
        };
        let mut batch = vec![first];
        // Group commit: what arrives within a few milliseconds of the first event is handled
        // and stored, with one fdatasync, together. The store is written right here, on the
        // event loop and outside the state lock: a hand-off to another thread cost the agents
        // more in acknowledgement latency (and so throughput) than the sync itself.
        let gather_until = Instant::now() + EVENT_BATCH_WINDOW;
        let mut window = async_io::Timer::at(gather_until);
        loop {
            while batch.len() < EVENT_BATCH_MAX {
                match event_rx.try_recv() {
                    Ok(e) => batch.push(e),
                    Err(_) => break,
                }
            }
            if batch.len() >= EVENT_BATCH_MAX || Instant::now() >= gather_until {
                break;
            }
            // The next event or the window's end, whichever comes first: a full batch goes
            // at once.
            let next = futures_lite::future::or(async { event_rx.recv().await.ok() }, async {
                (&mut window).await;
                None
            })
            .await;
            match next {
                Some(e) => batch.push(e),
                None => break,
            }
        }
        if let Some(job) = handle_events(&shared, batch) {
            store_batch(&shared, job);
        }
    };
    shut_down(shared, started).await;
    outcome
}

/// Stops what [`run`] started, in the order that loses nothing: no new connections or
/// requests, no liveness verdicts, the local agent (and its probes) stopped, the last reports
/// stored and acknowledged, then the store closed.
pub(super) async fn shut_down(shared: Arc<Shared>, started: Started) {
    log::event(
        Level::Info,
        "STOPPING",
        "no new connections; storing what arrived",
    );
    let Started {
        shutdown_signal,
        driver,
        alertflow,
        http,
        background,
        local_agent,
    } = started;
    for task in background {
        task.cancel().await;
    }
    alertflow.await;
    http.await;
    if let Some((task, stop)) = local_agent {
        stop.close();
        task.await;
    }
    // The last batch was stored and released by the event loop before it ended; the driver
    // sends those acknowledgements, then ends when its command channel is closed.
    shared.commands.close();
    driver.await;
    for forwarder in &shared.alertmanagers {
        forwarder.close();
    }
    for writer in &shared.remote_writers {
        writer.close(Duration::from_secs(5)).await;
    }
    // Requests still being answered hold the shared parts a moment longer.
    let deadline = Instant::now() + Duration::from_secs(5);
    while Arc::strong_count(&shared) > 1 && Instant::now() < deadline {
        async_io::Timer::after(Duration::from_millis(20)).await;
    }
    // The store's maintenance thread is joined when the last handle goes.
    smol::unblock(move || drop(shared)).await;
    // Done by now: the other parts stopped on the signal it passed on.
    shutdown_signal.cancel().await;
    log::event(Level::Good, "STOPPED", "the server stopped cleanly");
}

/// How long the event loop gathers events before handling them as one batch (one store write
/// and one fdatasync per batch): many slow agents then cost a sync per few dozen reports.
pub(super) const EVENT_BATCH_WINDOW: Duration = Duration::from_millis(8);
/// Most events handled as one batch: under load a batch fills long before the window ends, so
/// acknowledgements wait for a small batch's sync, not for the window (measured in
/// BENCHMARKS.md: larger batches cut the throughput the agents' windows allow).
pub(super) const EVENT_BATCH_MAX: usize = 256;

/// Copies the endpoint's counters for the API now and then.
pub(super) async fn stats_refresh(shared: Arc<Shared>) {
    loop {
        if let Some(stats) = shared.endpoint_stats_now().await {
            *shared
                .endpoint_stats
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = stats;
        }
        async_io::Timer::after(Duration::from_secs(1)).await;
    }
}
