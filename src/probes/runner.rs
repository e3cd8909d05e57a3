//! Running a measuring program: arguments as separate argv entries (never a shell), the C
//! locale so the output is the one the parsers know, output read with a size cap, and a kill
//! when the deadline passes or the measurement is dropped (its task cancelled). [`Tools`] names
//! the programs, so a host (or a test) can point at another `ping` or `iperf3`, and may start
//! them through the probe guard ([`super::guard`]), so that they die with the agent even when it
//! is killed outright.

use super::error::ProbeError;
use futures_lite::{AsyncRead, AsyncReadExt, future};
use smol::process::{Command, Stdio};
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Most bytes of standard output kept (iperf3 runs with `-i 0`, so its JSON stays a few KiB).
pub const MAX_STDOUT: usize = 1 << 20;
/// Most bytes of standard error kept.
pub const MAX_STDERR: usize = 64 << 10;

/// The programs the probes run: `ping` and `iperf3` found on `PATH` by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tools {
    pub ping: PathBuf,
    pub iperf3: PathBuf,
    /// When set, every program is started through this executable in its probe-guard mode
    /// ([`super::guard`]): the `nms` binary itself, so that the programs die with the agent.
    pub guard: Option<PathBuf>,
}

impl Default for Tools {
    fn default() -> Self {
        Tools {
            ping: PathBuf::from("ping"),
            iperf3: PathBuf::from("iperf3"),
            guard: None,
        }
    }
}

impl Tools {
    /// The tools of an agent run by the `nms` binary: `ping` and `iperf3` from `PATH`, started
    /// through the probe guard where the system has one (Linux).
    pub fn for_agent() -> Tools {
        Tools {
            guard: super::guard::executable(),
            ..Tools::default()
        }
    }

    /// The command that runs `program args...`, through the guard when there is one. A
    /// program that is not found is [`ProbeError::ToolMissing`].
    pub(crate) fn command(&self, program: &Path, args: &[OsString]) -> Result<Command, ProbeError> {
        let name = program.display().to_string();
        let Some(guard) = &self.guard else {
            let mut command = Command::new(program);
            command.args(args);
            return Ok(command);
        };
        // The guard exec()s the program; find it first, so a missing one is told apart.
        let resolved = find_program(program).ok_or(ProbeError::ToolMissing(name))?;
        Ok(super::guard::command(guard, &resolved, args))
    }
}

/// `program` as a path to run: as given when it names a folder, else found on `PATH`.
fn find_program(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return program.is_file().then(|| program.to_path_buf());
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// What a finished program printed.
#[derive(Debug)]
pub(crate) struct ToolOutput {
    pub stdout: String,
    pub stderr: String,
    /// Standard output was longer than [`MAX_STDOUT`] and was cut.
    pub stdout_truncated: bool,
}

/// Runs `program` with `args` under `LC_ALL=C`, standard input closed, and waits for it to exit,
/// at most `deadline`; past it the program is killed and `Ok(None)` returned. Dropping the
/// future kills the program too. A program that is not found is [`ProbeError::ToolMissing`].
pub(crate) async fn run_tool(
    tools: &Tools,
    program: &Path,
    args: &[OsString],
    deadline: Duration,
) -> Result<Option<ToolOutput>, ProbeError> {
    let name = program.display().to_string();
    let mut child = tools
        .command(program, args)?
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => ProbeError::ToolMissing(name.clone()),
            _ => ProbeError::Io {
                tool: name.clone(),
                source,
            },
        })?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(ProbeError::Io {
            tool: name,
            source: io::Error::other("standard output was not captured"),
        });
    };
    let finish = async {
        let ((stdout, stdout_truncated), (stderr, _)) = future::try_zip(
            read_capped(stdout, MAX_STDOUT),
            read_capped(stderr, MAX_STDERR),
        )
        .await?;
        child.status().await?;
        Ok(ToolOutput {
            stdout,
            stderr,
            stdout_truncated,
        })
    };
    let expire = async {
        async_io::Timer::after(deadline).await;
        Ok(None)
    };
    // When the deadline wins, `finish` and with it `child` are dropped, which kills the program.
    future::or(async { finish.await.map(Some) }, expire)
        .await
        .map_err(|source| ProbeError::Io { tool: name, source })
}

/// Reads a pipe to its end, keeping at most `cap` bytes (the rest is read and discarded, so the
/// program never blocks on a full pipe). Returns the text and whether it was cut.
async fn read_capped(mut pipe: impl AsyncRead + Unpin, cap: usize) -> io::Result<(String, bool)> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    let mut truncated = false;
    loop {
        let n = pipe.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        let room = cap.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
        truncated |= n > room;
    }
    Ok((String::from_utf8_lossy(&kept).into_owned(), truncated))
}
