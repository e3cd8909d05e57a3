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
//!
//! The parser is in `report`, the lasting listener in `listener`; this file runs the one-off
//! client and server.

mod listener;
mod report;

pub use listener::{IperfListener, LISTENER_STOP_GRACE, ListenerStatus};
pub use report::{IperfResult, IperfRole, parse};

use super::destination::Destination;
use super::error::ProbeError;
use super::runner::{ToolOutput, Tools, run_tool};
use crate::wire::{Sample, Transport};
use report::parse_error;
use std::ffi::OsString;
use std::net::IpAddr;
use std::time::Duration;

const TOOL: &str = "iperf3";
/// Longest test iperf3 accepts (`-t`), in seconds.
pub const MAX_DURATION_S: u32 = 86_400;

/// A client deadline that leaves a `duration_s` test time to connect, run and exchange results.
pub fn suggested_deadline(duration_s: u32) -> Duration {
    Duration::from_secs(u64::from(duration_s) + 10)
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
