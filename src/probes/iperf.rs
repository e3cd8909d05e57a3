//! IPERF: `iperf3 -J` as client ([`Tools::iperf_client`]) or one-off server
//! ([`Tools::iperf_server`]), and a pure parser of its JSON. Only the fields used are declared;
//! everything else iperf3 prints is ignored, so newer versions keep parsing.
//!
//! Which figures: bandwidth is what the receiving side measured (`end.sum_received`), falling
//! back on `end.sum` (UDP before iperf3 3.10) and then `end.sum_sent`. For UDP, jitter and loss
//! come from the same receiver summary. On the server side of a UDP test `end.sum` carries 0 bps,
//! which is why `sum_received` comes first.

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
    let retransmits = match (role, transport) {
        (IperfRole::Client, Transport::Tcp) => end.sum_sent.as_ref().and_then(|s| s.retransmits),
        _ => None,
    };
    Ok(IperfResult {
        role,
        transport,
        bandwidth_bps: received.bits_per_second,
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
    /// Runs `iperf3 -c SERVER -p PORT -t DURATION -i 0 -J [-u]` (UDP at iperf3's default
    /// target rate, 1 Mbit/s) and gives what the receiver measured. Killed when `deadline`
    /// passes ([`ProbeError::Timeout`]); plan for the duration plus a few seconds.
    pub async fn iperf_client(
        &self,
        server: &Destination,
        port: u16,
        duration_s: u32,
        transport: Transport,
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
        let Some(output) = run_tool(&self.iperf3, &args, deadline).await? else {
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
        let Some(output) = run_tool(&self.iperf3, &args, deadline).await? else {
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
    deadline: Duration,
) -> Result<Sample, ProbeError> {
    Tools::default()
        .iperf_client(server, port, duration_s, transport, deadline)
        .await
}

/// [`Tools::iperf_server`] with the `iperf3` on `PATH`, listening on every address.
pub async fn run_iperf_server(port: u16, deadline: Duration) -> Result<Option<Sample>, ProbeError> {
    Tools::default().iperf_server(None, port, deadline).await
}
