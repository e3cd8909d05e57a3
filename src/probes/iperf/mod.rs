//! IPERF: `iperf3 -J` as client ([`Tools::iperf_client`]), one-off server
//! ([`Tools::iperf_server`]) or the lasting listener an agent keeps per port
//! ([`Tools::iperf_listener`]), and a pure parser of its JSON. Only the fields used are
//! declared; everything else iperf3 prints is ignored, so newer versions keep parsing.
//!
//! Which figures: bandwidth is what the receiving side measured (`end.sum_received`), falling
//! back on `end.sum` (UDP before iperf3 3.10) and then `end.sum_sent`. For UDP, jitter and loss
//! come from the same receiver summary, and the offered rate is what the client sent
//! (`end.sum_sent`, or `end.sum` before 3.10). On the server side of a UDP test `end.sum`
//! carries 0 bps, which is why `sum_received` comes first.

use super::destination::Destination;
use super::error::ProbeError;
use super::runner::{ToolOutput, Tools, run_tool};
use crate::wire::{Sample, Transport};
use serde::Deserialize;
use std::ffi::OsString;
use std::net::IpAddr;
use std::time::Duration;

const TOOL: &str = "iperf3";
/// Longest test iperf3 accepts (`-t`), in seconds.
pub const MAX_DURATION_S: u32 = 86_400;
const BUSY: &str = "the server is busy running a test";

/// Which end of the test printed the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IperfRole {
    Client,
    Server,
}

/// One finished iperf3 test, as measured. `jitter_ms` and `loss_percent` are NaN for TCP.
#[derive(Debug, Clone, PartialEq)]
pub struct IperfResult {
    pub role: IperfRole,
    pub transport: Transport,
    pub bandwidth_bps: f64,
    /// The rate the client sent at (UDP, client side); NaN otherwise.
    pub offered_bps: f64,
    pub jitter_ms: f64,
    pub loss_percent: f64,
    /// Bytes the receiving side counted.
    pub bytes: u64,
    pub seconds: f64,
    /// TCP retransmissions the sender counted (client side of a TCP test only).
    pub retransmits: Option<u64>,
}

impl IperfResult {
    pub fn to_sample(&self) -> Sample {
        Sample::Iperf {
            transport: self.transport,
            bandwidth_bps: self.bandwidth_bps as f32,
            offered_bps: self.offered_bps as f32,
            jitter_ms: self.jitter_ms as f32,
            loss_percent: self.loss_percent as f32,
        }
    }
}

#[derive(Deserialize)]
struct Report {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    start: Option<Start>,
    #[serde(default)]
    end: Option<End>,
}

#[derive(Deserialize)]
struct Start {
    #[serde(default)]
    test_start: Option<TestStart>,
    #[serde(default)]
    accepted_connection: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct TestStart {
    protocol: String,
}

#[derive(Deserialize)]
struct End {
    #[serde(default)]
    sum: Option<Summary>,
    #[serde(default)]
    sum_sent: Option<Summary>,
    #[serde(default)]
    sum_received: Option<Summary>,
}

#[derive(Deserialize)]
struct Summary {
    #[serde(default)]
    seconds: f64,
    #[serde(default)]
    bytes: u64,
    bits_per_second: f64,
    #[serde(default)]
    jitter_ms: Option<f64>,
    #[serde(default)]
    lost_percent: Option<f64>,
    #[serde(default)]
    retransmits: Option<u64>,
}

fn parse_error(reason: impl Into<String>) -> ProbeError {
    ProbeError::Parse {
        tool: TOOL,
        reason: reason.into(),
    }
}

/// A client deadline that leaves a `duration_s` test time to connect, run and exchange results.
pub fn suggested_deadline(duration_s: u32) -> Duration {
    Duration::from_secs(u64::from(duration_s) + 10)
}

/// Parses the JSON `iperf3 -J` printed, client or server side. Text after the JSON document is
/// ignored. An `"error"` member becomes [`ProbeError::ServerBusy`] for a busy server and
/// [`ProbeError::Iperf`] with iperf3's message otherwise.
pub fn parse(json: &str) -> Result<IperfResult, ProbeError> {
    let mut documents = serde_json::Deserializer::from_str(json).into_iter::<Report>();
    let report = match documents.next() {
        Some(Ok(report)) => report,
        Some(Err(e)) => return Err(parse_error(format!("not iperf3 JSON: {e}"))),
        None => return Err(parse_error("no output at all")),
    };
    if let Some(message) = report.error {
        return Err(iperf_failure(message));
    }
    let start = report
        .start
        .ok_or_else(|| parse_error("no \"start\" section"))?;
    let transport = match start.test_start.as_ref().map(|t| t.protocol.as_str()) {
        Some("TCP") => Transport::Tcp,
        Some("UDP") => Transport::Udp,
        Some(other) => return Err(parse_error(format!("unsupported protocol {other:?}"))),
        None => {
            return Err(parse_error(
                "no \"start.test_start.protocol\"; the test did not run",
            ));
        }
    };
    let role = if start.accepted_connection.is_some() {
        IperfRole::Server
    } else {
        IperfRole::Client
    };
    let end = report
        .end
        .ok_or_else(|| parse_error("no \"end\" section"))?;
    let received = [&end.sum_received, &end.sum, &end.sum_sent]
        .into_iter()
        .flatten()
        .next()
        .ok_or_else(|| parse_error("no summary in \"end\"; the test did not finish"))?;
    if !received.bits_per_second.is_finite() || received.bits_per_second < 0.0 {
        return Err(parse_error("bits_per_second is not a rate"));
    }
    let (jitter_ms, loss_percent) = match transport {
        Transport::Tcp => (f64::NAN, f64::NAN),
        Transport::Udp => {
            let udp = [&end.sum_received, &end.sum]
                .into_iter()
                .flatten()
                .find(|s| s.jitter_ms.is_some());
            (
                udp.and_then(|s| s.jitter_ms).unwrap_or(f64::NAN),
                udp.and_then(|s| s.lost_percent).unwrap_or(f64::NAN),
            )
        }
    };
    let offered_bps = match (role, transport) {
        (IperfRole::Client, Transport::Udp) => [&end.sum_sent, &end.sum]
            .into_iter()
            .flatten()
            .map(|s| s.bits_per_second)
            .find(|bps| bps.is_finite() && *bps > 0.0)
            .unwrap_or(f64::NAN),
        _ => f64::NAN,
    };
    let retransmits = match (role, transport) {
        (IperfRole::Client, Transport::Tcp) => end.sum_sent.as_ref().and_then(|s| s.retransmits),
        _ => None,
    };
    Ok(IperfResult {
        role,
        transport,
        bandwidth_bps: received.bits_per_second,
        offered_bps,
        jitter_ms,
        loss_percent,
        bytes: received.bytes,
        seconds: received.seconds,
        retransmits,
    })
}

fn iperf_failure(message: String) -> ProbeError {
    if message.contains(BUSY) {
        ProbeError::ServerBusy
    } else {
        ProbeError::Iperf(message)
    }
}

/// iperf3's "unable to connect to server: Name or service not known", as an unknown host.
fn name_failure(error: ProbeError, server: &Destination) -> ProbeError {
    const NAME_ERRORS: [&str; 3] = [
        "Name or service not known",
        "Temporary failure in name resolution",
        "No address associated with hostname",
    ];
    match error {
        ProbeError::Iperf(message) => match NAME_ERRORS.iter().find(|r| message.ends_with(*r)) {
            Some(reason) => ProbeError::UnknownHost {
                host: server.to_string(),
                reason: (*reason).to_owned(),
            },
            None => ProbeError::Iperf(message),
        },
        other => other,
    }
}

fn check_port(port: u16) -> Result<(), ProbeError> {
    if port == 0 {
        return Err(ProbeError::InvalidArgument("iperf3 port 0".into()));
    }
    Ok(())
}

/// Output to result: a JSON document, or else what standard error said.
fn finish(output: &ToolOutput) -> Result<IperfResult, ProbeError> {
    let (stdout, stderr) = (&output.stdout, &output.stderr);
    if output.stdout_truncated {
        return Err(parse_error("output larger than the size limit"));
    }
    if stdout.trim().is_empty() {
        let said = stderr.lines().map(str::trim).find(|l| !l.is_empty());
        return Err(match said {
            Some(line) => ProbeError::Iperf(line.trim_start_matches("iperf3: ").to_owned()),
            None => parse_error("no output at all"),
        });
    }
    parse(stdout)
}

impl Tools {
    /// Runs `iperf3 -c SERVER -p PORT -t DURATION -i 0 -J [-u] [-b RATE]` and gives what the
    /// receiver measured (and, for UDP, the rate offered). `rate_bps` 0 leaves iperf3's default
    /// (TCP: as fast as the link allows; UDP: 1 Mbit/s). Killed when `deadline` passes
    /// ([`ProbeError::Timeout`]); plan for the duration plus a few seconds.
    pub async fn iperf_client(
        &self,
        server: &Destination,
        port: u16,
        duration_s: u32,
        transport: Transport,
        rate_bps: u64,
        deadline: Duration,
    ) -> Result<Sample, ProbeError> {
        check_port(port)?;
        if !(1..=MAX_DURATION_S).contains(&duration_s) {
            return Err(ProbeError::InvalidArgument(format!(
                "iperf3 test duration {duration_s} s is outside 1..={MAX_DURATION_S}"
            )));
        }
        let mut args: Vec<OsString> = vec![
            "-c".into(),
            server.as_str().into(),
            "-p".into(),
            port.to_string().into(),
            "-t".into(),
            duration_s.to_string().into(),
            "-i".into(),
            "0".into(),
            "-J".into(),
        ];
        if transport == Transport::Udp {
            args.push("-u".into());
        }
        if rate_bps > 0 {
            args.push("-b".into());
            args.push(rate_bps.to_string().into());
        }
        let Some(output) = run_tool(self, &self.iperf3, &args, deadline).await? else {
            return Err(ProbeError::Timeout {
                tool: TOOL,
                after: deadline,
            });
        };
        finish(&output)
            .map(|r| r.to_sample())
            .map_err(|e| name_failure(e, server))
    }

    /// Runs a one-off server `iperf3 -s -1 -p PORT -i 0 -J [-B BIND]` that ends after one
    /// test. `Ok(None)` when no test finished before `deadline` (the server is then killed).
    pub async fn iperf_server(
        &self,
        bind: Option<IpAddr>,
        port: u16,
        deadline: Duration,
    ) -> Result<Option<Sample>, ProbeError> {
        check_port(port)?;
        let mut args: Vec<OsString> = vec![
            "-s".into(),
            "-1".into(),
            "-p".into(),
            port.to_string().into(),
            "-i".into(),
            "0".into(),
            "-J".into(),
        ];
        if let Some(address) = bind {
            args.push("-B".into());
            args.push(address.to_string().into());
        }
        let Some(output) = run_tool(self, &self.iperf3, &args, deadline).await? else {
            return Ok(None);
        };
        finish(&output).map(|r| Some(r.to_sample()))
    }
}

/// [`Tools::iperf_client`] with the `iperf3` on `PATH`.
pub async fn run_iperf_client(
    server: &Destination,
    port: u16,
    duration_s: u32,
    transport: Transport,
    rate_bps: u64,
    deadline: Duration,
) -> Result<Sample, ProbeError> {
    Tools::default()
        .iperf_client(server, port, duration_s, transport, rate_bps, deadline)
        .await
}

/// [`Tools::iperf_server`] with the `iperf3` on `PATH`, listening on every address.
pub async fn run_iperf_server(port: u16, deadline: Duration) -> Result<Option<Sample>, ProbeError> {
    Tools::default().iperf_server(None, port, deadline).await
}

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
    status: std::sync::Arc<std::sync::Mutex<ListenerStatus>>,
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
        let status = std::sync::Arc::new(std::sync::Mutex::new(ListenerStatus::Starting));
        let (stop_tx, stop_rx) = smol::channel::bounded::<()>(1);
        smol::spawn(keep_listening(self.clone(), port, status.clone(), stop_rx)).detach();
        IperfListener {
            port,
            status,
            _stop: stop_tx,
        }
    }
}

fn set_status(status: &std::sync::Mutex<ListenerStatus>, new: ListenerStatus) {
    *status.lock().unwrap_or_else(|e| e.into_inner()) = new;
}

/// Runs `iperf3 -s -p PORT --forceflush` until `stop` closes, starting it again (after a pause
/// that doubles up to 30 s) whenever it ends.
async fn keep_listening(
    tools: Tools,
    port: u16,
    status: std::sync::Arc<std::sync::Mutex<ListenerStatus>>,
    stop: smol::channel::Receiver<()>,
) {
    use futures_lite::future;
    use smol::process::Stdio;
    let args: Vec<OsString> = vec![
        "-s".into(),
        "-p".into(),
        port.to_string().into(),
        "--forceflush".into(),
    ];
    let mut backoff = Duration::from_secs(1);
    loop {
        set_status(&status, ListenerStatus::Starting);
        let spawned = tools.command(&tools.iperf3, &args).and_then(|mut c| {
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
        });
        let started = std::time::Instant::now();
        let failure = match spawned {
            Err(e) => e.to_string(),
            Ok(mut child) => {
                let pid = child.id();
                let last_error = std::sync::Mutex::new(None::<String>);
                let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
                let watch = async {
                    let out = async {
                        if let Some(pipe) = stdout {
                            let _ = for_each_line(pipe, |line| {
                                if line.starts_with("Server listening on") {
                                    set_status(&status, ListenerStatus::Listening);
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
                };
                let ended = future::or(async { Some(watch.await) }, async {
                    let _ = stop.recv().await;
                    None
                })
                .await;
                match ended {
                    None => {
                        terminate(pid);
                        let _ = future::or(async { child.status().await.map(|_| ()) }, async {
                            async_io::Timer::after(LISTENER_STOP_GRACE).await;
                            Ok(())
                        })
                        .await;
                        // Dropping `child` kills it if it is still there.
                        return;
                    }
                    Some(exit) => {
                        let said = last_error.lock().unwrap_or_else(|e| e.into_inner()).take();
                        match (said, exit) {
                            (Some(message), _) => message,
                            (None, Ok(code)) => format!("iperf3 -s ended ({code})"),
                            (None, Err(e)) => format!("iperf3 -s: {e}"),
                        }
                    }
                }
            }
        };
        set_status(&status, ListenerStatus::Failed(failure));
        if started.elapsed() > LISTENER_MAX_BACKOFF * 2 {
            backoff = Duration::from_secs(1);
        }
        let stopped = future::or(
            async {
                let _ = stop.recv().await;
                true
            },
            async {
                async_io::Timer::after(backoff).await;
                false
            },
        )
        .await;
        if stopped {
            return;
        }
        backoff = (backoff * 2).min(LISTENER_MAX_BACKOFF);
    }
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
