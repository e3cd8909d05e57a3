//! The lasting listener: the `iperf3 -s` an agent keeps running on one port for as long as some
//! task needs it, started again after a pause whenever it ends, and stopped when its handle is
//! dropped. Its status says whether it listens, and iperf3's reason when it could not.

use crate::probes::error::ProbeError;
use crate::probes::runner::Tools;
use futures_lite::future;
use smol::process::{Child, ChildStderr, ChildStdout, Stdio};
use std::ffi::OsString;
use std::process::ExitStatus;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the lasting listener of one port is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenerStatus {
    /// `iperf3 -s` was started and has not said yet that it listens.
    Starting,
    /// It said `Server listening on PORT`.
    Listening,
    /// It could not start or it ended, with iperf3's reason; it is started again after a pause.
    Failed(String),
}

/// The iperf3 server (`iperf3 -s -p PORT`) an agent keeps running on one port for as long as
/// some task needs it: one listener serves every test of every task on that port, one test at
/// a time. Dropping the handle stops it: SIGTERM, then SIGKILL if it has not ended within
/// [`LISTENER_STOP_GRACE`].
pub struct IperfListener {
    port: u16,
    status: Arc<Mutex<ListenerStatus>>,
    _stop: smol::channel::Sender<()>,
}

/// How long a stopped listener is given to end after SIGTERM.
pub const LISTENER_STOP_GRACE: Duration = Duration::from_secs(2);
/// Longest pause before a listener that ended is started again.
const LISTENER_MAX_BACKOFF: Duration = Duration::from_secs(30);

impl IperfListener {
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn status(&self) -> ListenerStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Tools {
    /// Starts the lasting listener of `port` (see [`IperfListener`]).
    pub fn iperf_listener(&self, port: u16) -> IperfListener {
        let status = Arc::new(Mutex::new(ListenerStatus::Starting));
        let (stop_tx, stop_rx) = smol::channel::bounded::<()>(1);
        smol::spawn(keep_listening(self.clone(), port, status.clone(), stop_rx)).detach();
        IperfListener {
            port,
            status,
            _stop: stop_tx,
        }
    }
}

fn set_status(status: &Mutex<ListenerStatus>, new: ListenerStatus) {
    *status.lock().unwrap_or_else(|e| e.into_inner()) = new;
}

/// How one run of `iperf3 -s` ended.
enum RunEnd {
    /// The handle was dropped: the listener is stopped and not started again.
    Stopped,
    /// iperf3 ended by itself, with its reason.
    Failed(String),
}

/// Runs `iperf3 -s -p PORT --forceflush` until `stop` closes, starting it again (after a pause
/// that doubles up to 30 s) whenever it ends.
async fn keep_listening(
    tools: Tools,
    port: u16,
    status: Arc<Mutex<ListenerStatus>>,
    stop: smol::channel::Receiver<()>,
) {
    let args: Vec<OsString> = vec![
        "-s".into(),
        "-p".into(),
        port.to_string().into(),
        "--forceflush".into(),
    ];
    let mut backoff = Duration::from_secs(1);
    loop {
        set_status(&status, ListenerStatus::Starting);
        let spawned = spawn_listener(&tools, &args);
        let started = Instant::now();
        let failure = match spawned {
            Err(e) => e.to_string(),
            Ok(child) => match run_until_end_or_stop(child, &status, &stop).await {
                RunEnd::Stopped => return,
                RunEnd::Failed(reason) => reason,
            },
        };
        set_status(&status, ListenerStatus::Failed(failure));
        if started.elapsed() > LISTENER_MAX_BACKOFF * 2 {
            backoff = Duration::from_secs(1);
        }
        if stopped_during_pause(&stop, backoff).await {
            return;
        }
        backoff = (backoff * 2).min(LISTENER_MAX_BACKOFF);
    }
}

/// Starts `iperf3 -s` with its output piped, to be killed if it is dropped.
fn spawn_listener(tools: &Tools, args: &[OsString]) -> Result<Child, ProbeError> {
    tools.command(&tools.iperf3, args).and_then(|mut c| {
        c.env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| ProbeError::Io {
                tool: tools.iperf3.display().to_string(),
                source,
            })
    })
}

/// Follows one run of the listener until it ends (with its reason) or `stop` closes (then it
/// is stopped: SIGTERM, [`LISTENER_STOP_GRACE`], and killed when `child` is dropped).
async fn run_until_end_or_stop(
    mut child: Child,
    status: &Mutex<ListenerStatus>,
    stop: &smol::channel::Receiver<()>,
) -> RunEnd {
    let pid = child.id();
    let last_error = Mutex::new(None::<String>);
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let watch = watch_until_exit(&mut child, stdout, stderr, status, &last_error);
    let ended = future::or(async { Some(watch.await) }, async {
        let _ = stop.recv().await;
        None
    })
    .await;
    let Some(exit) = ended else {
        terminate(pid);
        let _ = future::or(async { child.status().await.map(|_| ()) }, async {
            async_io::Timer::after(LISTENER_STOP_GRACE).await;
            Ok(())
        })
        .await;
        // Dropping `child` kills it if it is still there.
        return RunEnd::Stopped;
    };
    let said = last_error.lock().unwrap_or_else(|e| e.into_inner()).take();
    RunEnd::Failed(match (said, exit) {
        (Some(message), _) => message,
        (None, Ok(code)) => format!("iperf3 -s ended ({code})"),
        (None, Err(e)) => format!("iperf3 -s: {e}"),
    })
}

/// Reads the listener's output until it closes, marking it listening when it says so and
/// keeping the last error it gives, then waits for it to exit.
async fn watch_until_exit(
    child: &mut Child,
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
    status: &Mutex<ListenerStatus>,
    last_error: &Mutex<Option<String>>,
) -> std::io::Result<ExitStatus> {
    let out = async {
        if let Some(pipe) = stdout {
            let _ = for_each_line(pipe, |line| {
                if line.starts_with("Server listening on") {
                    set_status(status, ListenerStatus::Listening);
                }
            })
            .await;
        }
    };
    let err = async {
        if let Some(pipe) = stderr {
            let _ = for_each_line(pipe, |line| {
                let line = line.trim();
                if let Some(message) = line.strip_prefix("iperf3: error - ") {
                    *last_error.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(message.to_owned());
                }
            })
            .await;
        }
    };
    future::zip(out, err).await;
    child.status().await
}

/// Waits `pause` before the next start; true when `stop` closed meanwhile.
async fn stopped_during_pause(stop: &smol::channel::Receiver<()>, pause: Duration) -> bool {
    future::or(
        async {
            let _ = stop.recv().await;
            true
        },
        async {
            async_io::Timer::after(pause).await;
            false
        },
    )
    .await
}

/// Asks the process `pid` to end (SIGTERM).
fn terminate(pid: u32) {
    #[cfg(target_os = "linux")]
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = pid;
}

/// Calls `each` with every line read from `pipe` (lines longer than 4 KiB are cut).
async fn for_each_line(
    mut pipe: impl futures_lite::AsyncRead + Unpin,
    mut each: impl FnMut(&str),
) -> std::io::Result<()> {
    use futures_lite::AsyncReadExt;
    const MAX_LINE: usize = 4096;
    let mut line = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = pipe.read(&mut buf).await?;
        if n == 0 {
            if !line.is_empty() {
                each(&String::from_utf8_lossy(&line));
            }
            return Ok(());
        }
        for &b in &buf[..n] {
            if b == b'\n' {
                each(&String::from_utf8_lossy(&line));
                line.clear();
            } else if line.len() < MAX_LINE {
                line.push(b);
            }
        }
    }
}
