//! One work item of a TASK ([`WorkItem`]): its wire encoding (a kind byte, then the fields of
//! that kind), its decoder with the bounds each field must keep, and its one-line description.

use super::{MAX_INTERFACES, WorkItem, bounded_count, rate_text, seconds_text, transport};
use crate::wire::codec::{DecodeError, MAX_STRING_LEN, Reader, Writer, invalid};
use crate::wire::probe::ProbeItem;

const KIND_METRICS: u8 = 1;
const KIND_PING: u8 = 2;
const KIND_IPERF_CLIENT: u8 = 3;
const KIND_IPERF_SERVER: u8 = 4;
const KIND_PROBE: u8 = 5;

impl WorkItem {
    /// A few words for logs and API answers: `ping 10.0.0.1 x5 every 20s`.
    pub fn describe(&self) -> String {
        match self {
            WorkItem::MetricsGathering {
                cpu,
                ram,
                interfaces,
                frequency_s,
            } => {
                let mut parts = Vec::new();
                if *cpu {
                    parts.push("cpu".to_string());
                }
                if *ram {
                    parts.push("ram".to_string());
                }
                if !interfaces.is_empty() {
                    parts.push(format!("interfaces {}", interfaces.join("/")));
                }
                format!("{} every {frequency_s}s", parts.join("+"))
            }
            WorkItem::Ping {
                destination,
                packet_count,
                interval_ms,
                frequency_s,
            } => format!(
                "ping {destination} x{packet_count} at {} intervals every {frequency_s}s",
                seconds_text(*interval_ms)
            ),
            WorkItem::IperfClient {
                server_address,
                duration_s,
                transport,
                rate_bps,
                offset_ms,
                frequency_s,
                ..
            } => {
                let rate = if *rate_bps > 0 {
                    format!(", {}", rate_text(*rate_bps))
                } else {
                    String::new()
                };
                format!(
                    "iperf3 client to {server_address} ({}{rate}, {duration_s}s) every \
                     {frequency_s}s at +{}",
                    transport.name(),
                    seconds_text(*offset_ms)
                )
            }
            WorkItem::IperfServer {
                port, frequency_s, ..
            } => format!("iperf3 server on port {port} every {frequency_s}s"),
            WorkItem::Probe(item) => item.describe(),
        }
    }

    pub fn frequency_s(&self) -> u32 {
        match self {
            WorkItem::MetricsGathering { frequency_s, .. }
            | WorkItem::Ping { frequency_s, .. }
            | WorkItem::IperfClient { frequency_s, .. }
            | WorkItem::IperfServer { frequency_s, .. } => *frequency_s,
            WorkItem::Probe(item) => item.frequency_s,
        }
    }

    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            WorkItem::MetricsGathering {
                cpu,
                ram,
                interfaces,
                frequency_s,
            } => {
                out.put_u8(KIND_METRICS);
                out.put_u8(u8::from(*cpu) | (u8::from(*ram) << 1));
                out.put_u8(interfaces.len() as u8);
                for name in interfaces {
                    out.put_string(name);
                }
                out.put_varint((*frequency_s).into());
            }
            WorkItem::Ping {
                destination,
                packet_count,
                interval_ms,
                frequency_s,
            } => {
                out.put_u8(KIND_PING);
                out.put_string(destination);
                out.put_varint((*packet_count).into());
                out.put_varint((*interval_ms).into());
                out.put_varint((*frequency_s).into());
            }
            WorkItem::IperfClient {
                server_address,
                port,
                duration_s,
                transport,
                rate_bps,
                offset_ms,
                frequency_s,
            } => {
                out.put_u8(KIND_IPERF_CLIENT);
                out.put_string(server_address);
                out.put_u16(*port);
                out.put_varint((*duration_s).into());
                out.put_u8(*transport as u8);
                out.put_varint(*rate_bps);
                out.put_varint((*offset_ms).into());
                out.put_varint((*frequency_s).into());
            }
            WorkItem::IperfServer {
                port,
                duration_s,
                transport,
                frequency_s,
            } => {
                out.put_u8(KIND_IPERF_SERVER);
                out.put_u16(*port);
                out.put_varint((*duration_s).into());
                out.put_u8(*transport as u8);
                out.put_varint((*frequency_s).into());
            }
            WorkItem::Probe(item) => {
                out.put_u8(KIND_PROBE);
                item.encode(out);
            }
        }
    }

    pub(super) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let at = r.offset();
        let item = match r.u8("work item kind")? {
            KIND_METRICS => decode_metrics_gathering(r)?,
            KIND_PING => WorkItem::Ping {
                destination: r.string("ping destination", MAX_STRING_LEN)?,
                packet_count: r.varint_max("packet count", u16::MAX.into())? as u16,
                interval_ms: {
                    let at = r.offset();
                    let interval = r.varint_u32("ping interval")?;
                    if interval == 0 {
                        return Err(invalid("ping interval", at, "must be at least 1 ms"));
                    }
                    interval
                },
                frequency_s: frequency(r)?,
            },
            KIND_IPERF_CLIENT => decode_iperf_client(r)?,
            KIND_IPERF_SERVER => WorkItem::IperfServer {
                port: r.u16("iperf port")?,
                duration_s: r.varint_u32("duration")?,
                transport: transport(r)?,
                frequency_s: frequency(r)?,
            },
            KIND_PROBE => WorkItem::Probe(ProbeItem::decode(r)?),
            v => {
                return Err(DecodeError::Unknown {
                    what: "work item kind",
                    value: v.into(),
                    offset: at,
                });
            }
        };
        Ok(item)
    }
}

/// The body of a METRICSGATHERING item (after its kind byte).
fn decode_metrics_gathering(r: &mut Reader<'_>) -> Result<WorkItem, DecodeError> {
    let flags_at = r.offset();
    let flags = r.u8("metrics flags")?;
    if flags > 3 {
        return Err(invalid(
            "metrics flags",
            flags_at,
            format!("{flags:#04x} has unknown bits"),
        ));
    }
    let count = bounded_count(r, "interface count", MAX_INTERFACES)?;
    let mut interfaces = Vec::with_capacity(count);
    for _ in 0..count {
        // The same bound as an interface name in a METRICS sample.
        let at = r.offset();
        let name = r.string("interface name", crate::wire::metrics::MAX_INTERFACE_NAME)?;
        if name.is_empty() {
            return Err(invalid("interface name", at, "empty"));
        }
        interfaces.push(name);
    }
    Ok(WorkItem::MetricsGathering {
        cpu: flags & 1 != 0,
        ram: flags & 2 != 0,
        interfaces,
        frequency_s: frequency(r)?,
    })
}

/// The body of an IPERFCLIENT item (after its kind byte): its slot offset must fall within
/// its period.
fn decode_iperf_client(r: &mut Reader<'_>) -> Result<WorkItem, DecodeError> {
    let server_address = r.string("iperf server address", MAX_STRING_LEN)?;
    let port = r.u16("iperf port")?;
    let duration_s = r.varint_u32("duration")?;
    let transport = transport(r)?;
    let rate_bps = r.varint("iperf rate")?;
    let offset_at = r.offset();
    let offset_ms = r.varint_u32("slot offset")?;
    let frequency_s = frequency(r)?;
    if u64::from(offset_ms) >= u64::from(frequency_s) * 1000 {
        return Err(invalid(
            "slot offset",
            offset_at,
            format!("{offset_ms} ms is not within the period of {frequency_s} s"),
        ));
    }
    Ok(WorkItem::IperfClient {
        server_address,
        port,
        duration_s,
        transport,
        rate_bps,
        offset_ms,
        frequency_s,
    })
}

fn frequency(r: &mut Reader<'_>) -> Result<u32, DecodeError> {
    let at = r.offset();
    let f = r.varint_u32("frequency")?;
    if f == 0 {
        return Err(invalid("frequency", at, "must be at least 1 second"));
    }
    Ok(f)
}
