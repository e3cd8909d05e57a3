//! The pure parser of `iperf3 -J` output, client or server side, into an [`IperfResult`]: which
//! summary each figure comes from is told in the module above.

use super::TOOL;
use crate::probes::error::ProbeError;
use crate::wire::{Sample, Transport};
use serde::Deserialize;

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

pub(super) fn parse_error(reason: impl Into<String>) -> ProbeError {
    ProbeError::Parse {
        tool: TOOL,
        reason: reason.into(),
    }
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
