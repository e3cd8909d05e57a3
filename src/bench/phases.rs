//! The waits of a run, one per phase: until every agent is registered and has its task, for
//! the measured time under load (killing the server when asked), until the outstanding reports
//! are acknowledged and stored, and until remote write has sent the rest.

use super::fleet::{Control, Phase};
use super::target::Target;
use super::{BenchError, BenchOptions, RemoteWriteFigures};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Waits until every agent has registered and received its task; gives up (and stops the
/// fleet) when the count has not moved for 30 s. Returns the seconds it took.
pub(super) fn wait_for_setup(
    options: &BenchOptions,
    control: &Control,
    progress: &dyn Fn(String),
) -> Result<f64, BenchError> {
    // Setup: every agent registers and receives its task.
    let setup_start = Instant::now();
    let mut last_ready = 0;
    let mut last_change = Instant::now();
    let mut last_print = Instant::now();
    loop {
        let ready = control.ready.load(Ordering::Relaxed) as usize;
        if ready >= options.agents {
            break;
        }
        if ready != last_ready {
            last_ready = ready;
            last_change = Instant::now();
        }
        if last_change.elapsed() > Duration::from_secs(30) {
            control.set_phase(Phase::Exit);
            return Err(BenchError::Server(format!(
                "only {ready} of {} agents were registered and given a task after {:.0} s",
                options.agents,
                setup_start.elapsed().as_secs_f64()
            )));
        }
        if last_print.elapsed() > Duration::from_secs(2) {
            last_print = Instant::now();
            progress(format!("{ready} of {} agents ready", options.agents));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(setup_start.elapsed().as_secs_f64())
}

/// Holds the load for `options.seconds` from `started`: kills and restarts the server every
/// `kill_every` seconds when asked, or else samples remote write's figures once a second.
/// Returns how many times the server was killed.
pub(super) fn run_load(
    options: &BenchOptions,
    target: &mut Target,
    started: Instant,
    mut remote_figures: Option<&mut RemoteWriteFigures>,
    progress: &dyn Fn(String),
) -> Result<u64, BenchError> {
    let mut server_kills = 0;
    match options.kill_every {
        Some(every) => {
            let end = started + Duration::from_secs_f64(options.seconds);
            while Instant::now() + Duration::from_secs_f64(every) < end {
                std::thread::sleep(Duration::from_secs_f64(every));
                progress("killing the server (SIGKILL) and starting it again".to_string());
                target.restart()?;
                server_kills += 1;
            }
            std::thread::sleep(end.saturating_duration_since(Instant::now()));
        }
        None => {
            let end = started + Duration::from_secs_f64(options.seconds);
            loop {
                let left = end.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                std::thread::sleep(left.min(Duration::from_secs(1)));
                if let Some(figures) = remote_figures.as_deref_mut()
                    && let Ok(status) = target.status()
                {
                    figures.sample(&status);
                }
            }
        }
    }
    Ok(server_kills)
}

/// Waits (at most 20 s) for every report to be acknowledged, then until the stored count has
/// stood still for a second. Returns that count.
pub(super) fn drain(
    target: &Target,
    control: &Control,
    progress: &dyn Fn(String),
) -> Result<u64, BenchError> {
    // Drain: every report acknowledged, then stored.
    progress("waiting for outstanding reports".into());
    let deadline = Instant::now() + Duration::from_secs(20);
    while control.outstanding.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut stored_total = target.metrics_stored()?;
    let mut still = Instant::now();
    while still.elapsed() < Duration::from_millis(1000) {
        std::thread::sleep(Duration::from_millis(100));
        let now = target.metrics_stored()?;
        if now != stored_total {
            stored_total = now;
            still = Instant::now();
        }
    }
    Ok(stored_total)
}

/// Waits (at most 120 s) for remote write to send what is pending, and records when it caught
/// up and how many samples it sent.
pub(super) fn wait_for_remote_write(
    target: &Target,
    figures: &mut RemoteWriteFigures,
    started: Instant,
    elapsed: f64,
    progress: &dyn Fn(String),
) {
    figures.finish_halves();
    progress("waiting for remote write to send the rest".into());
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let Ok(status) = target.status() else { break };
        let pending = status["remote_write"][0]["reports_pending"]
            .as_u64()
            .unwrap_or(0);
        if pending == 0 {
            figures.caught_up_seconds = Some(started.elapsed().as_secs_f64() - elapsed);
            figures.samples_sent = status["remote_write"][0]["samples_sent"]
                .as_u64()
                .unwrap_or(0);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
