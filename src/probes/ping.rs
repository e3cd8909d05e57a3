//! PING: the system `ping` (iputils) towards a [`Destination`], and a pure parser of its text
//! output. Statistics come from the reply lines themselves, so duplicate replies (`(DUP!)`,
//! which iputils folds into its own min/avg/max) are left out, and jitter is the mean absolute
//! difference of consecutive RTTs (RFC 3550 style).

use super::destination::Destination;
use super::error::ProbeError;
use super::runner::{Tools, run_tool};
use crate::wire::Sample;
use std::ffi::OsString;
use std::time::Duration;

const TOOL: &str = "ping";
/// Seconds `ping` waits for the last reply (`-W`); a later reply counts as lost.
pub const REPLY_TIMEOUT_S: u32 = 2;
/// Most echo requests in one run.
pub const MAX_PACKET_COUNT: u16 = 1000;

/// One run of `ping`, as measured. RTT figures are NaN when no reply came.
#[derive(Debug, Clone, PartialEq)]
pub struct PingResult {
    /// RTT of each reply in arrival order, duplicates left out (milliseconds).
    pub rtts_ms: Vec<f64>,
    pub transmitted: u32,
    pub received: u32,
    pub duplicates: u32,
    /// ICMP errors received instead of replies (e.g. "Destination Host Unreachable").
    pub errors: u32,
    pub loss_percent: f64,
    pub rtt_min_ms: f64,
    pub rtt_avg_ms: f64,
    pub rtt_max_ms: f64,
    /// Mean of `|rtt[i] - rtt[i-1]|`; NaN with fewer than two replies.
    pub jitter_ms: f64,
}

impl PingResult {
    pub fn to_sample(&self) -> Sample {
        Sample::Ping {
            rtt_min_ms: self.rtt_min_ms as f32,
            rtt_avg_ms: self.rtt_avg_ms as f32,
            rtt_max_ms: self.rtt_max_ms as f32,
            jitter_ms: self.jitter_ms as f32,
            loss_percent: self.loss_percent as f32,
            sent: u64::from(self.transmitted),
            // Never more replies than requests (duplicates are not replies).
            received: u64::from(self.received.min(self.transmitted)),
        }
    }
}

/// A deadline that leaves a run of `packet_count` requests `interval_ms` apart time to finish:
/// the requests, the wait for the last reply, and a few seconds for name resolution and
/// start-up.
pub fn suggested_deadline(packet_count: u16, interval_ms: u32) -> Duration {
    Duration::from_millis(u64::from(interval_ms) * u64::from(packet_count.saturating_sub(1)))
        + Duration::from_secs(u64::from(REPLY_TIMEOUT_S) + 3)
}

/// An interval as `ping -i` takes it: seconds, `0.2`, `1`, `0.002`.
pub fn interval_argument(interval_ms: u32) -> String {
    (f64::from(interval_ms) / 1000.0).to_string()
}

/// Parses what `LC_ALL=C ping -n` printed (standard output followed by standard error).
/// Output without the statistics line is a failure: unknown host, unreachable network, missing
/// permission, or else a [`ProbeError::Parse`] quoting the first line.
pub fn parse(output: &str) -> Result<PingResult, ProbeError> {
    let mut rtts_ms = Vec::new();
    let mut totals = None;
    let mut summary_rtt = None;
    for line in output.lines().map(str::trim) {
        if line.contains(" bytes from ") {
            if line.ends_with("(DUP!)") {
                continue;
            }
            if let Some(rtt) = reply_rtt(line)? {
                rtts_ms.push(rtt);
            }
        } else if line.contains(" packets transmitted, ") {
            totals = Some(parse_totals(line)?);
        } else if let Some(rest) = line.strip_prefix("rtt min/avg/max/mdev = ") {
            summary_rtt = Some(parse_summary_rtt(rest)?);
        }
    }
    let Some(totals) = totals else {
        return Err(failure(output));
    };
    let loss_percent = if totals.transmitted == 0 {
        f64::NAN
    } else {
        f64::from(totals.transmitted.saturating_sub(totals.received)) * 100.0
            / f64::from(totals.transmitted)
    };
    let (rtt_min_ms, rtt_avg_ms, rtt_max_ms) = if rtts_ms.is_empty() {
        // Replies counted but not printed (`-q`): fall back on ping's own summary.
        summary_rtt.unwrap_or((f64::NAN, f64::NAN, f64::NAN))
    } else {
        let min = rtts_ms.iter().copied().fold(f64::INFINITY, f64::min);
        let max = rtts_ms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (min, rtts_ms.iter().sum::<f64>() / rtts_ms.len() as f64, max)
    };
    Ok(PingResult {
        jitter_ms: jitter(&rtts_ms),
        rtts_ms,
        transmitted: totals.transmitted,
        received: totals.received,
        duplicates: totals.duplicates,
        errors: totals.errors,
        loss_percent,
        rtt_min_ms,
        rtt_avg_ms,
        rtt_max_ms,
    })
}

/// Mean absolute difference of consecutive values; NaN with fewer than two.
pub fn jitter(rtts_ms: &[f64]) -> f64 {
    if rtts_ms.len() < 2 {
        return f64::NAN;
    }
    let total: f64 = rtts_ms.windows(2).map(|w| (w[1] - w[0]).abs()).sum();
    total / (rtts_ms.len() - 1) as f64
}

fn parse_error(reason: impl Into<String>) -> ProbeError {
    ProbeError::Parse {
        tool: TOOL,
        reason: reason.into(),
    }
}

/// The `time=0.480 ms` of a reply line; `None` for a reply without a time (tiny payloads).
fn reply_rtt(line: &str) -> Result<Option<f64>, ProbeError> {
    let Some((_, after)) = line.split_once("time=") else {
        return Ok(None);
    };
    let number = after.split([' ', 'm']).next().unwrap_or("");
    match number.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(Some(v)),
        _ => Err(parse_error(format!(
            "bad round-trip time in reply line {line:?}"
        ))),
    }
}

struct Totals {
    transmitted: u32,
    received: u32,
    duplicates: u32,
    errors: u32,
}

/// `5 packets transmitted, 4 received, +4 duplicates, +1 errors, 20% packet loss, time 827ms`
fn parse_totals(line: &str) -> Result<Totals, ProbeError> {
    let mut totals = Totals {
        transmitted: 0,
        received: 0,
        duplicates: 0,
        errors: 0,
    };
    let mut seen_received = false;
    for part in line.split(", ") {
        let (number, what) = part.trim().split_once(' ').unwrap_or((part, ""));
        let field = match what {
            "packets transmitted" => &mut totals.transmitted,
            "received" | "packets received" => {
                seen_received = true;
                &mut totals.received
            }
            "duplicates" => &mut totals.duplicates,
            "errors" => &mut totals.errors,
            _ => continue,
        };
        *field = number
            .trim_start_matches('+')
            .parse()
            .map_err(|_| parse_error(format!("bad count {part:?} in {line:?}")))?;
    }
    if !seen_received {
        return Err(parse_error(format!("no received count in {line:?}")));
    }
    Ok(totals)
}

/// `0.035/0.185/0.480/0.208 ms`
fn parse_summary_rtt(rest: &str) -> Result<(f64, f64, f64), ProbeError> {
    let values: Vec<f64> = rest
        .trim_end_matches(" ms")
        .split('/')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| parse_error(format!("bad rtt summary {rest:?}")))?;
    match values[..] {
        [min, avg, max, _mdev] => Ok((min, avg, max)),
        _ => Err(parse_error(format!("bad rtt summary {rest:?}"))),
    }
}

/// Why `ping` printed no statistics.
fn failure(output: &str) -> ProbeError {
    const NAME_ERRORS: [&str; 5] = [
        "Name or service not known",
        "Temporary failure in name resolution",
        "No address associated with hostname",
        "Name has no usable address",
        "nodename nor servname provided",
    ];
    let lines = || output.lines().map(str::trim).filter(|l| !l.is_empty());
    for line in lines() {
        if let Some(reason) = NAME_ERRORS.iter().find(|r| line.ends_with(*r)) {
            // `ping: nosuchhost.invalid: Name or service not known`
            let head = line[..line.len() - reason.len()].trim_end_matches(": ");
            let host = head.split_once(": ").map_or(head, |(_, host)| host);
            return ProbeError::UnknownHost {
                host: host.to_owned(),
                reason: (*reason).to_owned(),
            };
        }
    }
    let detail = |line: &str| line.strip_prefix("ping: ").unwrap_or(line).to_owned();
    if let Some(line) = lines().find(|l| l.contains("unreachable") || l.contains("Unreachable")) {
        return ProbeError::Unreachable {
            tool: TOOL,
            detail: detail(line),
        };
    }
    if let Some(line) = lines().find(|l| l.contains("cannot flood")) {
        // `ping: cannot flood; minimal interval allowed for user is 200ms`
        return ProbeError::PermissionDenied {
            tool: TOOL,
            detail: format!(
                "{}: the task's interval between packets is shorter than this host's ping \
                 allows this user (run the agent as root, or lengthen the interval)",
                detail(line)
            ),
        };
    }
    if let Some(line) =
        lines().find(|l| l.contains("Operation not permitted") || l.contains("Permission denied"))
    {
        let mut detail = detail(line);
        if let Some(hint) = lines().find(|l| l.contains("capability")) {
            detail = format!("{detail} ({})", hint.trim_start_matches("ping: => "));
        }
        return ProbeError::PermissionDenied { tool: TOOL, detail };
    }
    match lines().next() {
        Some(line) => parse_error(format!(
            "no statistics in the output, which begins {line:?}"
        )),
        None => parse_error("no output at all"),
    }
}

impl Tools {
    /// Runs `ping -n -c COUNT -i INTERVAL -W 2 DESTINATION` and turns its output into a
    /// [`Sample::Ping`]. The program is killed when `deadline` passes
    /// ([`ProbeError::Timeout`]); plan for [`suggested_deadline`].
    pub async fn ping(
        &self,
        destination: &Destination,
        packet_count: u16,
        interval_ms: u32,
        deadline: Duration,
    ) -> Result<Sample, ProbeError> {
        Ok(self
            .ping_result(destination, packet_count, interval_ms, deadline)
            .await?
            .to_sample())
    }

    /// Like [`Tools::ping`], with every figure the parser read.
    pub async fn ping_result(
        &self,
        destination: &Destination,
        packet_count: u16,
        interval_ms: u32,
        deadline: Duration,
    ) -> Result<PingResult, ProbeError> {
        if !(1..=MAX_PACKET_COUNT).contains(&packet_count) {
            return Err(ProbeError::InvalidArgument(format!(
                "ping packet count {packet_count} is outside 1..={MAX_PACKET_COUNT}"
            )));
        }
        if interval_ms == 0 {
            return Err(ProbeError::InvalidArgument(
                "ping interval of 0 ms (at least 1 ms)".into(),
            ));
        }
        let args: Vec<OsString> = vec![
            "-n".into(),
            "-c".into(),
            packet_count.to_string().into(),
            "-i".into(),
            interval_argument(interval_ms).into(),
            "-W".into(),
            REPLY_TIMEOUT_S.to_string().into(),
            destination.as_str().into(),
        ];
        let Some(output) = run_tool(self, &self.ping, &args, deadline).await? else {
            return Err(ProbeError::Timeout {
                tool: TOOL,
                after: deadline,
            });
        };
        parse(&format!("{}\n{}", output.stdout, output.stderr))
    }
}

/// [`Tools::ping`] with the `ping` on `PATH`.
pub async fn run_ping(
    destination: &Destination,
    packet_count: u16,
    interval_ms: u32,
    deadline: Duration,
) -> Result<Sample, ProbeError> {
    Tools::default()
        .ping(destination, packet_count, interval_ms, deadline)
        .await
}
