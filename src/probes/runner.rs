//! Running a measuring program: arguments as separate argv entries (never a shell), the C
//! locale so the output is the one the parsers know, output read with a size cap, and a kill
//! when the deadline passes. [`Tools`] names the programs, so a host (or a test) can point at
//! another `ping` or `iperf3`.

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
}

impl Default for Tools {
    fn default() -> Self {
        Tools {
            ping: PathBuf::from("ping"),
            iperf3: PathBuf::from("iperf3"),
        }
    }
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
/// at most `deadline`; past it the program is killed and `Ok(None)` returned.
/// A program that is not found is [`ProbeError::ToolMissing`].
pub(crate) async fn run_tool(
    program: &Path,
    args: &[OsString],
    deadline: Duration,
) -> Result<Option<ToolOutput>, ProbeError> {
    let name = program.display().to_string();
    let mut child = Command::new(program)
        .args(args)
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
