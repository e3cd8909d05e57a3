//! Waiting for something the tests cannot be told about: one poller ([`poll`]) and the three
//! ways the tests use it: panic naming what did not come ([`wait_for`]), say whether it came
//! ([`wait_until`]), or panic quoting the logs of the processes watched
//! ([`wait_for_processes`], [`wait_quoting`]). The limits are bounds, not timing assertions.

use super::process::{Process, tail};
use std::time::{Duration, Instant};

/// A generous bound for anything the tests wait for: a limit, not a timing assertion.
pub const WAIT: Duration = Duration::from_secs(60);

/// Calls `check` every `every` until it returns `Some`, and returns that; `None` once `limit`
/// has passed (checked after each call, so `check` runs at least once).
pub fn poll<T>(
    limit: Duration,
    every: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(every);
    }
}

/// Polls `check` every 100 ms until it returns `Some`, and returns that; panics naming `what`
/// after `timeout`.
pub fn wait_for<T>(timeout: Duration, what: &str, check: impl FnMut() -> Option<T>) -> T {
    poll(timeout, Duration::from_millis(100), check)
        .unwrap_or_else(|| panic!("gave up after {} s waiting for {what}", timeout.as_secs()))
}

/// Calls `ready` every 200 ms until it returns true or `limit` passes; says whether it did.
pub fn wait_until(limit: Duration, mut ready: impl FnMut() -> bool) -> bool {
    poll(limit, Duration::from_millis(200), || ready().then_some(())).is_some()
}

/// Calls `probe` every 200 ms until it gives a value; panics at once if one of `processes`
/// exited, and after `limit` with `what` and the output of `processes`.
pub fn wait_for_processes<T>(
    what: &str,
    limit: Duration,
    processes: &mut [&mut Process],
    mut probe: impl FnMut() -> Option<T>,
) -> T {
    let found = poll(limit, Duration::from_millis(200), || {
        let value = probe();
        if value.is_none() {
            for p in processes.iter_mut() {
                p.check_running();
            }
        }
        value
    });
    let watched: Vec<&Process> = processes.iter().map(|p| &**p).collect();
    found.unwrap_or_else(|| give_up(what, limit, &watched))
}

/// Calls `probe` every 200 ms until it gives a value; after `limit`, panics with `what` and the
/// output of `processes` (which are only read: processes run elsewhere, as in a namespace).
pub fn wait_quoting<T>(
    what: &str,
    limit: Duration,
    processes: &[&Process],
    probe: impl FnMut() -> Option<T>,
) -> T {
    poll(limit, Duration::from_millis(200), probe)
        .unwrap_or_else(|| give_up(what, limit, processes))
}

/// Panics saying that `what` did not come within `limit`, with the output of `processes`.
fn give_up(what: &str, limit: Duration, processes: &[&Process]) -> ! {
    let logs: Vec<String> = processes
        .iter()
        .map(|p| format!("--- {} ---\n{}", p.name, tail(&p.output(), 40)))
        .collect();
    panic!(
        "{what}: not within {} s\n{}",
        limit.as_secs(),
        logs.join("\n")
    );
}
