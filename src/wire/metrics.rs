//! METRICS: one report of measured values, as numbers, from an agent to the server.
//!
//! A report names its task by number and its measurement time, then lists samples. Each sample
//! is a kind byte followed by fixed-width `f32` values; a value that could not be measured (an
//! RTT when every ping was lost, a UDP-only figure for a TCP test) is NaN on the wire and `null`
//! in JSON. An interface sample also carries the interface's link state ([`LinkState`]) and
//! the kernel's raw counters ([`InterfaceCounters`]), and a ping sample the echo requests sent
//! and replies received so far: `varint`s, so Prometheus can be given real `_total` counters.

use super::codec::{DecodeError, Reader, Writer, invalid};
use super::probe::ProbeSample;
use super::task::{Transport, bounded_count, transport};
use serde::{Deserialize, Serialize};

/// Most samples in one report.
pub const MAX_SAMPLES: usize = 64;
/// Longest interface name.
pub const MAX_INTERFACE_NAME: usize = 64;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsReport {
    pub task_number: u32,
    /// When the measurement ended, Unix milliseconds (agent clock).
    pub time_ms: u64,
    pub samples: Vec<Sample>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Sample {
    Cpu {
        percent: f32,
    },
    Ram {
        percent: f32,
    },
    Interface {
        name: String,
        /// Whether the interface is up, as the kernel says when the sample was taken.
        state: LinkState,
        packets_per_sec: f32,
        bytes_per_sec: f32,
        errors_per_sec: f32,
        /// The interface's counters since it appeared (receive and transmit apart).
        #[serde(default)]
        counters: InterfaceCounters,
    },
    Ping {
        rtt_min_ms: f32,
        rtt_avg_ms: f32,
        rtt_max_ms: f32,
        jitter_ms: f32,
        loss_percent: f32,
        /// Echo requests sent, and replies received, by this work item since the agent started
        /// it (counters: they start again at 0 with the agent or a new version of the task).
        #[serde(default)]
        sent: u64,
        #[serde(default)]
        received: u64,
    },
    Iperf {
        transport: Transport,
        /// What the receiving side counted: the bandwidth achieved.
        bandwidth_bps: f32,
        /// The rate the sender offered (UDP: about the target rate); NaN for TCP, which has no
        /// offered rate.
        offered_bps: f32,
        jitter_ms: f32,
        loss_percent: f32,
    },
    /// What a pluggable probe measured (`crate::probes::probe`).
    Probe(ProbeSample),
}

/// An interface's raw counters, as the kernel keeps them (`/proc/net/dev`,
/// `/sys/class/net/IF/statistics`); `None` when the host does not tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InterfaceCounters {
    pub rx_bytes: Option<u64>,
    pub tx_bytes: Option<u64>,
    pub rx_packets: Option<u64>,
    pub tx_packets: Option<u64>,
    pub rx_errors: Option<u64>,
    pub tx_errors: Option<u64>,
    pub rx_dropped: Option<u64>,
    pub tx_dropped: Option<u64>,
}

impl InterfaceCounters {
    /// The counters in wire order (bit 0 of the presence byte first).
    pub fn all(&self) -> [Option<u64>; 8] {
        [
            self.rx_bytes,
            self.tx_bytes,
            self.rx_packets,
            self.tx_packets,
            self.rx_errors,
            self.tx_errors,
            self.rx_dropped,
            self.tx_dropped,
        ]
    }

    fn from_all(v: [Option<u64>; 8]) -> Self {
        InterfaceCounters {
            rx_bytes: v[0],
            tx_bytes: v[1],
            rx_packets: v[2],
            tx_packets: v[3],
            rx_errors: v[4],
            tx_errors: v[5],
            rx_dropped: v[6],
            tx_dropped: v[7],
        }
    }

    /// `u8` presence bits (bit i: counter i follows), then each present counter as a varint.
    fn encode(&self, out: &mut Vec<u8>) {
        let all = self.all();
        let bits = all
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_some())
            .fold(0u8, |b, (i, _)| b | (1 << i));
        out.put_u8(bits);
        for v in all.into_iter().flatten() {
            out.put_varint(v);
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        const NAMES: [&str; 8] = [
            "received bytes",
            "transmitted bytes",
            "received packets",
            "transmitted packets",
            "receive errors",
            "transmit errors",
            "received drops",
            "transmit drops",
        ];
        let bits = r.u8("counter presence bits")?;
        let mut all = [None; 8];
        for (i, slot) in all.iter_mut().enumerate() {
            if bits & (1 << i) != 0 {
                *slot = Some(r.varint(NAMES[i])?);
            }
        }
        Ok(InterfaceCounters::from_all(all))
    }
}

/// An interface's operational state: set up or down (`ip link set IF up|down`), and with or
/// without a carrier (the link beneath it: a cable, a veth peer that is up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    /// The host cannot tell (not Linux, or the kernel did not say).
    Unknown = 0,
    /// Set up, and the link works (or the kernel does not track a carrier for it, as for a
    /// dummy or loopback interface).
    Up = 1,
    /// Set down.
    Down = 2,
    /// Set up, but without a carrier: the link beneath it is down.
    NoCarrier = 3,
}

impl LinkState {
    /// The state of its number (the wire's and the store's), `None` for no state.
    pub fn from_u8(v: u8) -> Option<LinkState> {
        Some(match v {
            0 => LinkState::Unknown,
            1 => LinkState::Up,
            2 => LinkState::Down,
            3 => LinkState::NoCarrier,
            _ => return None,
        })
    }

    /// `up`, `down`, `no_carrier` or `unknown`: what rules and JSON see.
    pub fn name(self) -> &'static str {
        match self {
            LinkState::Unknown => "unknown",
            LinkState::Up => "up",
            LinkState::Down => "down",
            LinkState::NoCarrier => "no_carrier",
        }
    }

    /// Whether the interface cannot carry traffic (set down, or no carrier).
    pub fn is_down(self) -> bool {
        matches!(self, LinkState::Down | LinkState::NoCarrier)
    }
}

const KIND_CPU: u8 = 1;
const KIND_RAM: u8 = 2;
const KIND_INTERFACE: u8 = 3;
const KIND_PING: u8 = 4;
const KIND_IPERF: u8 = 5;
const KIND_PROBE: u8 = 6;

impl Sample {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Sample::Cpu { percent } => {
                out.put_u8(KIND_CPU);
                out.put_f32(*percent);
            }
            Sample::Ram { percent } => {
                out.put_u8(KIND_RAM);
                out.put_f32(*percent);
            }
            Sample::Interface {
                name,
                state,
                packets_per_sec,
                bytes_per_sec,
                errors_per_sec,
                counters,
            } => {
                out.put_u8(KIND_INTERFACE);
                out.put_string(name);
                out.put_u8(*state as u8);
                out.put_f32(*packets_per_sec);
                out.put_f32(*bytes_per_sec);
                out.put_f32(*errors_per_sec);
                counters.encode(out);
            }
            Sample::Ping {
                rtt_min_ms,
                rtt_avg_ms,
                rtt_max_ms,
                jitter_ms,
                loss_percent,
                sent,
                received,
            } => {
                out.put_u8(KIND_PING);
                for v in [rtt_min_ms, rtt_avg_ms, rtt_max_ms, jitter_ms, loss_percent] {
                    out.put_f32(*v);
                }
                out.put_varint(*sent);
                out.put_varint(*received);
            }
            Sample::Iperf {
                transport,
                bandwidth_bps,
                offered_bps,
                jitter_ms,
                loss_percent,
            } => {
                out.put_u8(KIND_IPERF);
                out.put_u8(*transport as u8);
                for v in [bandwidth_bps, offered_bps, jitter_ms, loss_percent] {
                    out.put_f32(*v);
                }
            }
            Sample::Probe(sample) => {
                out.put_u8(KIND_PROBE);
                sample.encode(out);
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let at = r.offset();
        Ok(match r.u8("sample kind")? {
            KIND_CPU => Sample::Cpu {
                percent: value(r, "cpu percent")?,
            },
            KIND_RAM => Sample::Ram {
                percent: value(r, "ram percent")?,
            },
            KIND_INTERFACE => decode_interface(r)?,
            KIND_PING => decode_ping(r)?,
            KIND_IPERF => {
                let transport = transport(r)?;
                Sample::Iperf {
                    transport,
                    bandwidth_bps: value(r, "bandwidth")?,
                    offered_bps: value(r, "offered rate")?,
                    jitter_ms: value(r, "jitter")?,
                    loss_percent: value(r, "loss percent")?,
                }
            }
            KIND_PROBE => Sample::Probe(ProbeSample::decode(r)?),
            v => {
                return Err(DecodeError::Unknown {
                    what: "sample kind",
                    value: v.into(),
                    offset: at,
                });
            }
        })
    }
}

/// The body of an interface sample (after its kind byte).
fn decode_interface(r: &mut Reader<'_>) -> Result<Sample, DecodeError> {
    let name_at = r.offset();
    let name = r.string("interface name", MAX_INTERFACE_NAME)?;
    if name.is_empty() {
        return Err(invalid("interface name", name_at, "empty"));
    }
    let state = r.code("link state", |code| match code {
        0 => Some(LinkState::Unknown),
        1 => Some(LinkState::Up),
        2 => Some(LinkState::Down),
        3 => Some(LinkState::NoCarrier),
        _ => None,
    })?;
    Ok(Sample::Interface {
        name,
        state,
        packets_per_sec: value(r, "packets per second")?,
        bytes_per_sec: value(r, "bytes per second")?,
        errors_per_sec: value(r, "errors per second")?,
        counters: InterfaceCounters::decode(r)?,
    })
}

/// The body of a ping sample (after its kind byte): no more replies than requests.
fn decode_ping(r: &mut Reader<'_>) -> Result<Sample, DecodeError> {
    let rtt_min_ms = value(r, "rtt min")?;
    let rtt_avg_ms = value(r, "rtt avg")?;
    let rtt_max_ms = value(r, "rtt max")?;
    let jitter_ms = value(r, "jitter")?;
    let loss_percent = value(r, "loss percent")?;
    let sent = r.varint("echo requests sent")?;
    let received_at = r.offset();
    let received = r.varint("echo replies received")?;
    if received > sent {
        return Err(invalid(
            "echo replies received",
            received_at,
            format!("{received} is more than the {sent} requests sent"),
        ));
    }
    Ok(Sample::Ping {
        rtt_min_ms,
        rtt_avg_ms,
        rtt_max_ms,
        jitter_ms,
        loss_percent,
        sent,
        received,
    })
}

/// A measured value: NaN (not measured) or a finite number; infinities are refused.
pub(super) fn value(r: &mut Reader<'_>, what: &'static str) -> Result<f32, DecodeError> {
    let at = r.offset();
    let v = r.f32(what)?;
    if v.is_infinite() {
        return Err(invalid(what, at, "infinite value"));
    }
    Ok(v)
}

impl MetricsReport {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_varint(self.task_number.into());
        out.put_varint(self.time_ms);
        out.put_u8(self.samples.len() as u8);
        for s in &self.samples {
            s.encode(out);
        }
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let task_number = r.varint_u32("task number")?;
        let time_ms = crate::wire::packet::time_varint(r, "time")?;
        let count = bounded_count(r, "sample count", MAX_SAMPLES)?;
        let mut samples = Vec::with_capacity(count);
        for _ in 0..count {
            samples.push(Sample::decode(r)?);
        }
        Ok(MetricsReport {
            task_number,
            time_ms,
            samples,
        })
    }
}
