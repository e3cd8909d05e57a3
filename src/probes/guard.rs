//! The probe guard: how `ping` and `iperf3` die with the agent that started them, even when the
//! agent is killed outright (SIGKILL, a crash) and cannot stop them itself.
//!
//! The agent does not start a program directly: it starts its own executable under the name
//! `nms-probe-guard` with the program and its arguments. In that mode `nms` asks the kernel for
//! SIGKILL when its parent dies (`prctl(PR_SET_PDEATHSIG)`, through rustix's safe wrapper),
//! checks that the parent is still the agent (it may have died in between), and replaces itself
//! with the program (`exec`): same process, same pipes, and the death signal is kept across the
//! `exec`. The program also stays in the agent's process group, so a terminal's Ctrl-C or a
//! service manager stopping the group reaches it. When the agent itself stops a measurement
//! (deadline, cancelled task), it kills the program as before.
//!
//! The death signal follows the thread that started the program; the agent starts them from
//! its executor threads, which live as long as the agent. The kernel clears it when the program
//! gains privileges on `exec`: a `ping` with file capabilities (`cap_net_raw`) run by an agent
//! that is not root is not killed with the agent, but it ends by itself once its packets are
//! sent (and it is killed as usual when the agent stops it). iperf3 has no such privileges.

use smol::process::Command;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

/// The name (`argv[0]`) under which `nms` runs as the probe guard.
pub const GUARD_NAME: &str = "nms-probe-guard";
/// The environment variable that tells the guard which process id its parent must have.
const PARENT_ENV: &str = "NMS_PROBE_GUARD_PARENT";

/// Set by the `nms` binary, which answers to [`GUARD_NAME`] (a program embedding the library
/// does not, and runs its probes directly).
static AVAILABLE: AtomicBool = AtomicBool::new(false);

/// Says that this process's executable runs as the probe guard when started under
/// [`GUARD_NAME`] (the `nms` binary calls it first thing).
pub fn make_available() {
    AVAILABLE.store(true, Ordering::Relaxed);
}

/// The executable to start programs through: this process's own, when it can be the guard
/// and the system has a parent-death signal (Linux).
pub fn executable() -> Option<PathBuf> {
    if cfg!(target_os = "linux") && AVAILABLE.load(Ordering::Relaxed) {
        let exe = PathBuf::from("/proc/self/exe");
        exe.exists().then_some(exe)
    } else {
        None
    }
}

/// The command that has `guard` run `program args...`.
pub(crate) fn command(guard: &Path, program: &Path, args: &[OsString]) -> Command {
    use std::os::unix::process::CommandExt as _;
    let mut std_command = std::process::Command::new(guard);
    std_command
        .arg0(GUARD_NAME)
        .env(PARENT_ENV, std::process::id().to_string())
        .arg(program)
        .args(args);
    Command::from(std_command)
}

/// Whether this process was started as the probe guard (by its `argv[0]`).
pub fn is_guard(argv0: Option<&std::ffi::OsStr>) -> bool {
    argv0
        .and_then(|a| Path::new(a).file_name())
        .is_some_and(|name| name == GUARD_NAME)
}

/// The guard itself: `args` are the program and its arguments. Returns only when the program
/// could not be run (or the agent is already gone).
pub fn run(mut args: impl Iterator<Item = OsString>) -> ExitCode {
    use std::os::unix::process::CommandExt as _;
    let Some(program) = args.next() else {
        eprintln!("{GUARD_NAME}: no program to run");
        return ExitCode::from(2);
    };
    if let Err(e) = die_with_parent() {
        eprintln!("{GUARD_NAME}: {e}");
        return ExitCode::from(126);
    }
    let error = std::process::Command::new(&program)
        .args(args)
        .env_remove(PARENT_ENV)
        .exec();
    eprintln!(
        "{GUARD_NAME}: cannot run {}: {error}",
        Path::new(&program).display()
    );
    ExitCode::from(127)
}

#[cfg(target_os = "linux")]
fn die_with_parent() -> Result<(), String> {
    use rustix::process::{Signal, getppid, set_parent_process_death_signal};
    set_parent_process_death_signal(Some(Signal::KILL))
        .map_err(|e| format!("cannot ask to die with the agent: {e}"))?;
    let expected = std::env::var(PARENT_ENV)
        .ok()
        .and_then(|p| p.parse::<i32>().ok());
    let parent = getppid().map(|p| p.as_raw_nonzero().get());
    if expected.is_some() && parent != expected {
        return Err("the agent that started this program is gone".to_owned());
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent() -> Result<(), String> {
    Ok(())
}
