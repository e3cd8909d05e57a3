//! The one metric schema: every field a metrics report can carry, with its name, unit,
//! Prometheus name, how it rolls up, and the resolution it is stored at. The store, the rule
//! inputs, `/metrics`, the status page, `inspect` and `decode` all read this table; a new
//! measured field is one entry in [`FIELDS`] plus the sample that carries it.
//!
//! A report's values travel as [`Sample`]s (typed, on the wire); [`readings`] turns samples into
//! [`Reading`]s: a [`Field`], the instance it was measured on (an interface name, or an iperf
//! transport) and the value. Nothing between the wire and the store is keyed by strings.

use crate::wire::{Sample, Transport};

/// How a field's values combine over an interval (a rollup, a graph step).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rollup {
    /// A level measured at one time (CPU, RTT): count, min, max and mean describe an interval.
    Gauge,
    /// A per-second rate measured over the report's interval (interface traffic): the mean is
    /// the interval's average rate, min and max its extremes.
    Rate,
    /// A counter that only grows, except when its source starts again (an interface's
    /// received bytes, the pings a work item sent): the newest value is what it counts now,
    /// and an interval's growth is max minus min while it did not start again. Exported as a
    /// Prometheus counter (`_total`).
    Counter,
}

/// The kind of sample a field belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SampleKind {
    Cpu,
    Ram,
    Interface,
    Ping,
    Iperf,
    /// A pluggable probe's sample (`crate::probes::probe`), by the probe's number.
    Probe(u8),
}

/// Every measured field. The numbers are stored in the store's files: never renumber one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Field {
    CpuPercent = 0,
    RamPercent = 1,
    RttMinMs = 2,
    RttAvgMs = 3,
    RttMaxMs = 4,
    JitterMs = 5,
    LossPercent = 6,
    BandwidthBps = 7,
    IperfJitterMs = 8,
    IperfLossPercent = 9,
    PacketsPerSec = 10,
    BytesPerSec = 11,
    ErrorsPerSec = 12,
    OfferedBps = 13,
    LinkState = 14,
    RxBytes = 15,
    TxBytes = 16,
    RxPackets = 17,
    TxPackets = 18,
    RxErrors = 19,
    TxErrors = 20,
    RxDropped = 21,
    TxDropped = 22,
    PingSent = 23,
    PingReceived = 24,
    DnsTimeMs = 25,
    DnsAnswers = 26,
    DnsExpected = 27,
}

/// What the schema says of one field.
#[derive(Debug, Clone, Copy)]
pub struct FieldDef {
    pub field: Field,
    pub sample: SampleKind,
    /// The field's name in the HTTP API, exports, `fields=` and rules (`cpu_percent`).
    pub name: &'static str,
    /// The name of the value inside its sample (rules' `ping.rtt_avg_ms`, decode's JSON).
    pub key: &'static str,
    /// A short label for tables and graphs.
    pub label: &'static str,
    pub unit: &'static str,
    /// The Prometheus metric that exposes it, in base units.
    pub prometheus: &'static str,
    /// Divides a value to get the Prometheus base unit (percent to ratio: 100).
    pub prometheus_divisor: f64,
    pub help: &'static str,
    pub rollup: Rollup,
    /// Decimal places kept by the store: values are stored as whole multiples of
    /// 10^-decimals of the unit, the precision the probe measures at (ping prints RTTs in
    /// microseconds: 3 decimals of a millisecond).
    pub decimals: u8,
    /// Whether rollups keep the distribution (p10, p50, p90) for SmokePing-style smoke.
    pub distribution: bool,
}

impl FieldDef {
    /// The stored integer for a value (`None` for a value not measured).
    pub fn quantize(&self, value: f64) -> Option<i64> {
        if !value.is_finite() {
            return None;
        }
        let scaled = (value * self.scale()).round();
        // Values beyond what an i64 holds are not measurements: refused as not measured.
        (scaled.abs() < 9.0e18).then_some(scaled as i64)
    }

    /// The value of a stored integer: the nearest `f64` to the decimal it stands for.
    pub fn value(&self, stored: i64) -> f64 {
        stored as f64 / self.scale()
    }

    /// A mean (or other non-integral statistic) of stored integers, in the field's unit.
    pub fn scaled(&self, stored: f64) -> f64 {
        stored / self.scale()
    }

    fn scale(&self) -> f64 {
        10f64.powi(i32::from(self.decimals))
    }
}

/// An interface counter's schema entry.
const fn interface_counter(
    field: Field,
    name: &'static str,
    label: &'static str,
    unit: &'static str,
    prometheus: &'static str,
    help: &'static str,
) -> FieldDef {
    FieldDef {
        field,
        sample: SampleKind::Interface,
        name,
        key: name,
        label,
        unit,
        prometheus,
        prometheus_divisor: 1.0,
        help,
        rollup: Rollup::Counter,
        decimals: 0,
        distribution: false,
    }
}

/// The number of the DNS probe (`crate::probes::dns`): its samples and fields carry it. Kept
/// here, with its fields, so that the schema imports nothing above it.
pub const DNS_PROBE: u8 = 16;

/// The schema, indexed by `Field as usize`.
pub const FIELDS: [FieldDef; 28] = [
    FieldDef {
        field: Field::CpuPercent,
        sample: SampleKind::Cpu,
        name: "cpu_percent",
        key: "percent",
        label: "CPU",
        unit: "%",
        prometheus: "nms_cpu_usage_ratio",
        prometheus_divisor: 100.0,
        help: "CPU busy over the last measurement interval (0-1).",
        rollup: Rollup::Gauge,
        decimals: 2,
        distribution: false,
    },
    FieldDef {
        field: Field::RamPercent,
        sample: SampleKind::Ram,
        name: "ram_percent",
        key: "percent",
        label: "RAM",
        unit: "%",
        prometheus: "nms_memory_usage_ratio",
        prometheus_divisor: 100.0,
        help: "Memory in use (0-1).",
        rollup: Rollup::Gauge,
        decimals: 2,
        distribution: false,
    },
    FieldDef {
        field: Field::RttMinMs,
        sample: SampleKind::Ping,
        name: "rtt_min_ms",
        key: "rtt_min_ms",
        label: "RTT min",
        unit: "ms",
        prometheus: "nms_ping_rtt_min_seconds",
        prometheus_divisor: 1000.0,
        help: "Smallest ping round-trip time of the last run.",
        rollup: Rollup::Gauge,
        decimals: 3,
        distribution: false,
    },
    FieldDef {
        field: Field::RttAvgMs,
        sample: SampleKind::Ping,
        name: "rtt_avg_ms",
        key: "rtt_avg_ms",
        label: "RTT",
        unit: "ms",
        prometheus: "nms_ping_rtt_avg_seconds",
        prometheus_divisor: 1000.0,
        help: "Mean ping round-trip time of the last run.",
        rollup: Rollup::Gauge,
        decimals: 3,
        distribution: true,
    },
    FieldDef {
        field: Field::RttMaxMs,
        sample: SampleKind::Ping,
        name: "rtt_max_ms",
        key: "rtt_max_ms",
        label: "RTT max",
        unit: "ms",
        prometheus: "nms_ping_rtt_max_seconds",
        prometheus_divisor: 1000.0,
        help: "Largest ping round-trip time of the last run.",
        rollup: Rollup::Gauge,
        decimals: 3,
        distribution: false,
    },
    FieldDef {
        field: Field::JitterMs,
        sample: SampleKind::Ping,
        name: "jitter_ms",
        key: "jitter_ms",
        label: "Jitter",
        unit: "ms",
        prometheus: "nms_ping_jitter_seconds",
        prometheus_divisor: 1000.0,
        help: "Jitter (mean difference of consecutive round-trip times) of the last ping run.",
        rollup: Rollup::Gauge,
        decimals: 3,
        distribution: false,
    },
    FieldDef {
        field: Field::LossPercent,
        sample: SampleKind::Ping,
        name: "loss_percent",
        key: "loss_percent",
        label: "Loss",
        unit: "%",
        prometheus: "nms_ping_packet_loss_ratio",
        prometheus_divisor: 100.0,
        help: "Share of pings without a reply in the last run (0-1).",
        rollup: Rollup::Gauge,
        decimals: 3,
        distribution: false,
    },
    FieldDef {
        field: Field::BandwidthBps,
        sample: SampleKind::Iperf,
        name: "bandwidth_bps",
        key: "bandwidth_bps",
        label: "Bandwidth",
        unit: "bit/s",
        prometheus: "nms_iperf_bandwidth_bytes_per_second",
        prometheus_divisor: 8.0,
        help: "Throughput of the last iperf3 run.",
        rollup: Rollup::Gauge,
        decimals: 0,
        distribution: false,
    },
    FieldDef {
        field: Field::IperfJitterMs,
        sample: SampleKind::Iperf,
        name: "iperf_jitter_ms",
        key: "jitter_ms",
        label: "Jitter",
        unit: "ms",
        prometheus: "nms_iperf_jitter_seconds",
        prometheus_divisor: 1000.0,
        help: "Jitter of the last UDP iperf3 run.",
        rollup: Rollup::Gauge,
        decimals: 3,
        distribution: false,
    },
    FieldDef {
        field: Field::IperfLossPercent,
        sample: SampleKind::Iperf,
        name: "iperf_loss_percent",
        key: "loss_percent",
        label: "Loss",
        unit: "%",
        prometheus: "nms_iperf_packet_loss_ratio",
        prometheus_divisor: 100.0,
        help: "Share of datagrams lost in the last UDP iperf3 run (0-1).",
        rollup: Rollup::Gauge,
        decimals: 3,
        distribution: false,
    },
    FieldDef {
        field: Field::PacketsPerSec,
        sample: SampleKind::Interface,
        name: "packets_per_sec",
        key: "packets_per_sec",
        label: "Packets",
        unit: "pkt/s",
        prometheus: "nms_interface_packets_per_second",
        prometheus_divisor: 1.0,
        help: "Packets received and sent per second on the interface.",
        rollup: Rollup::Rate,
        decimals: 2,
        distribution: false,
    },
    FieldDef {
        field: Field::BytesPerSec,
        sample: SampleKind::Interface,
        name: "bytes_per_sec",
        key: "bytes_per_sec",
        label: "Traffic",
        unit: "B/s",
        prometheus: "nms_interface_bytes_per_second",
        prometheus_divisor: 1.0,
        help: "Bytes received and sent per second on the interface.",
        rollup: Rollup::Rate,
        decimals: 0,
        distribution: false,
    },
    FieldDef {
        field: Field::ErrorsPerSec,
        sample: SampleKind::Interface,
        name: "errors_per_sec",
        key: "errors_per_sec",
        label: "Errors",
        unit: "err/s",
        prometheus: "nms_interface_errors_per_second",
        prometheus_divisor: 1.0,
        help: "Receive and transmit errors per second on the interface.",
        rollup: Rollup::Rate,
        decimals: 2,
        distribution: false,
    },
    FieldDef {
        field: Field::OfferedBps,
        sample: SampleKind::Iperf,
        name: "offered_bps",
        key: "offered_bps",
        label: "Offered",
        unit: "bit/s",
        prometheus: "nms_iperf_offered_bytes_per_second",
        prometheus_divisor: 8.0,
        help: "Rate the sender offered in the last UDP iperf3 run.",
        rollup: Rollup::Gauge,
        decimals: 0,
        distribution: false,
    },
    FieldDef {
        field: Field::LinkState,
        sample: SampleKind::Interface,
        name: "link_state",
        key: "state",
        label: "Link",
        unit: "",
        prometheus: "nms_interface_link_state",
        prometheus_divisor: 1.0,
        help: "The interface's link state: 1 up, 2 set down, 3 up without a carrier, 0 unknown.",
        rollup: Rollup::Gauge,
        decimals: 0,
        distribution: false,
    },
    interface_counter(
        Field::RxBytes,
        "rx_bytes",
        "Received",
        "B",
        "nms_interface_receive_bytes_total",
        "Bytes received on the interface (the kernel's counter).",
    ),
    interface_counter(
        Field::TxBytes,
        "tx_bytes",
        "Transmitted",
        "B",
        "nms_interface_transmit_bytes_total",
        "Bytes transmitted on the interface (the kernel's counter).",
    ),
    interface_counter(
        Field::RxPackets,
        "rx_packets",
        "Received",
        "packets",
        "nms_interface_receive_packets_total",
        "Packets received on the interface.",
    ),
    interface_counter(
        Field::TxPackets,
        "tx_packets",
        "Transmitted",
        "packets",
        "nms_interface_transmit_packets_total",
        "Packets transmitted on the interface.",
    ),
    interface_counter(
        Field::RxErrors,
        "rx_errors",
        "Receive errors",
        "errors",
        "nms_interface_receive_errors_total",
        "Receive errors on the interface.",
    ),
    interface_counter(
        Field::TxErrors,
        "tx_errors",
        "Transmit errors",
        "errors",
        "nms_interface_transmit_errors_total",
        "Transmit errors on the interface.",
    ),
    interface_counter(
        Field::RxDropped,
        "rx_dropped",
        "Receive drops",
        "packets",
        "nms_interface_receive_drop_total",
        "Received packets the interface dropped (/sys/class/net/IF/statistics/rx_dropped).",
    ),
    interface_counter(
        Field::TxDropped,
        "tx_dropped",
        "Transmit drops",
        "packets",
        "nms_interface_transmit_drop_total",
        "Packets to transmit the interface dropped (/sys/class/net/IF/statistics/tx_dropped).",
    ),
    FieldDef {
        field: Field::PingSent,
        sample: SampleKind::Ping,
        name: "ping_sent",
        key: "sent",
        label: "Sent",
        unit: "packets",
        prometheus: "nms_ping_packets_sent_total",
        prometheus_divisor: 1.0,
        help: "Echo requests sent towards the destination since the agent started the work.",
        rollup: Rollup::Counter,
        decimals: 0,
        distribution: false,
    },
    FieldDef {
        field: Field::PingReceived,
        sample: SampleKind::Ping,
        name: "ping_received",
        key: "received",
        label: "Received",
        unit: "packets",
        prometheus: "nms_ping_packets_received_total",
        prometheus_divisor: 1.0,
        help: "Echo replies received from the destination since the agent started the work.",
        rollup: Rollup::Counter,
        decimals: 0,
        distribution: false,
    },
    FieldDef {
        field: Field::DnsTimeMs,
        sample: SampleKind::Probe(DNS_PROBE),
        name: "dns_time_ms",
        key: "time_ms",
        label: "DNS time",
        unit: "ms",
        prometheus: "nms_dns_lookup_seconds",
        prometheus_divisor: 1000.0,
        help: "Time the resolver took to answer the lookup.",
        rollup: Rollup::Gauge,
        decimals: 3,
        distribution: true,
    },
    FieldDef {
        field: Field::DnsAnswers,
        sample: SampleKind::Probe(DNS_PROBE),
        name: "dns_answers",
        key: "answers",
        label: "DNS answers",
        unit: "addresses",
        prometheus: "nms_dns_answers",
        prometheus_divisor: 1.0,
        help: "Addresses the lookup returned (0: the name does not resolve).",
        rollup: Rollup::Gauge,
        decimals: 0,
        distribution: false,
    },
    FieldDef {
        field: Field::DnsExpected,
        sample: SampleKind::Probe(DNS_PROBE),
        name: "dns_expected",
        key: "expected",
        label: "DNS expected",
        unit: "",
        prometheus: "nms_dns_expected_answer",
        prometheus_divisor: 1.0,
        help: "1 when the expected address was among the answers, 0 when it was not.",
        rollup: Rollup::Gauge,
        decimals: 0,
        distribution: false,
    },
];

impl Field {
    pub fn def(self) -> &'static FieldDef {
        &FIELDS[self as usize]
    }

    pub fn from_u8(v: u8) -> Option<Field> {
        FIELDS.get(usize::from(v)).map(|d| d.field)
    }

    /// The field of this API name (`cpu_percent`).
    pub fn by_name(name: &str) -> Option<Field> {
        FIELDS.iter().find(|d| d.name == name).map(|d| d.field)
    }

    pub fn name(self) -> &'static str {
        self.def().name
    }

    /// Whether its instance is an interface name.
    pub fn per_interface(self) -> bool {
        self.def().sample == SampleKind::Interface
    }
}

/// The key of a reading in the API's JSON records: the field's name, except that an iperf
/// test's readings are named as the tests read them: TCP `bandwidth_bps`; UDP
/// `udp_bandwidth_bps`, `udp_offered_bps`, and its `jitter_ms` and `loss_percent`.
pub fn api_name(field: Field, instance: Option<&str>) -> std::borrow::Cow<'static, str> {
    match (field, instance) {
        (Field::BandwidthBps | Field::OfferedBps, Some("udp")) => {
            format!("udp_{}", field.name()).into()
        }
        (Field::IperfJitterMs, _) => "jitter_ms".into(),
        (Field::IperfLossPercent, _) => "loss_percent".into(),
        (f, _) => f.name().into(),
    }
}

/// Every API field name, for error messages.
pub fn field_names() -> Vec<&'static str> {
    FIELDS.iter().map(|d| d.name).collect()
}

/// One measured value of a report.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub field: Field,
    /// What it was measured on: an interface name for interface fields, `tcp`/`udp` for iperf
    /// fields, nothing for the rest.
    pub instance: Option<String>,
    pub value: f64,
}

/// The instance name of an iperf transport.
pub fn transport_name(t: Transport) -> &'static str {
    match t {
        Transport::Tcp => "tcp",
        Transport::Udp => "udp",
    }
}

/// The values a sample carries, in schema order, with NaN (not measured) included: the one
/// place where a sample's variants meet the schema. Wire `f32`s are exactly their values as
/// `f64` (no text round trip: the store rounds each to its field's precision); counters are
/// exact.
pub fn sample_values(sample: &Sample) -> (SampleKind, Option<&str>, Vec<(Field, f64)>) {
    let counter = |v: Option<u64>| v.map_or(f64::NAN, |v| v as f64);
    match sample {
        Sample::Cpu { percent } => (
            SampleKind::Cpu,
            None,
            vec![(Field::CpuPercent, f64::from(*percent))],
        ),
        Sample::Ram { percent } => (
            SampleKind::Ram,
            None,
            vec![(Field::RamPercent, f64::from(*percent))],
        ),
        Sample::Interface {
            name,
            state,
            packets_per_sec,
            bytes_per_sec,
            errors_per_sec,
            counters,
        } => (
            SampleKind::Interface,
            Some(name.as_str()),
            vec![
                (Field::PacketsPerSec, f64::from(*packets_per_sec)),
                (Field::BytesPerSec, f64::from(*bytes_per_sec)),
                (Field::ErrorsPerSec, f64::from(*errors_per_sec)),
                (Field::LinkState, f64::from(*state as u8)),
                (Field::RxBytes, counter(counters.rx_bytes)),
                (Field::TxBytes, counter(counters.tx_bytes)),
                (Field::RxPackets, counter(counters.rx_packets)),
                (Field::TxPackets, counter(counters.tx_packets)),
                (Field::RxErrors, counter(counters.rx_errors)),
                (Field::TxErrors, counter(counters.tx_errors)),
                (Field::RxDropped, counter(counters.rx_dropped)),
                (Field::TxDropped, counter(counters.tx_dropped)),
            ],
        ),
        Sample::Ping {
            rtt_min_ms,
            rtt_avg_ms,
            rtt_max_ms,
            jitter_ms,
            loss_percent,
            sent,
            received,
        } => (
            SampleKind::Ping,
            None,
            vec![
                (Field::RttMinMs, f64::from(*rtt_min_ms)),
                (Field::RttAvgMs, f64::from(*rtt_avg_ms)),
                (Field::RttMaxMs, f64::from(*rtt_max_ms)),
                (Field::JitterMs, f64::from(*jitter_ms)),
                (Field::LossPercent, f64::from(*loss_percent)),
                (Field::PingSent, *sent as f64),
                (Field::PingReceived, *received as f64),
            ],
        ),
        Sample::Iperf {
            transport,
            bandwidth_bps,
            offered_bps,
            jitter_ms,
            loss_percent,
        } => (
            SampleKind::Iperf,
            Some(transport_name(*transport)),
            vec![
                (Field::BandwidthBps, f64::from(*bandwidth_bps)),
                (Field::OfferedBps, f64::from(*offered_bps)),
                (Field::IperfJitterMs, f64::from(*jitter_ms)),
                (Field::IperfLossPercent, f64::from(*loss_percent)),
            ],
        ),
        // A probe's values are its schema fields in table order.
        Sample::Probe(sample) => (
            SampleKind::Probe(sample.probe),
            None,
            probe_fields(sample.probe)
                .zip(&sample.values)
                .map(|(def, v)| (def.field, f64::from(*v)))
                .collect(),
        ),
    }
}

/// The fields of the probe numbered `probe`, in the order its samples carry their values.
pub fn probe_fields(probe: u8) -> impl Iterator<Item = &'static FieldDef> {
    FIELDS
        .iter()
        .filter(move |d| d.sample == SampleKind::Probe(probe))
}

/// An `f32` from the wire as the `f64` with the same shortest decimal form (0.024, not
/// 0.024000000208616257), for showing it (`nms decode`).
pub fn widen(v: f32) -> f64 {
    if !v.is_finite() {
        return f64::NAN;
    }
    v.to_string().parse().unwrap_or(f64::from(v))
}

/// The measured values of a report's samples; values not measured (NaN) are left out.
pub fn readings(samples: &[Sample]) -> Vec<Reading> {
    let mut out = Vec::with_capacity(samples.len() * 3);
    for sample in samples {
        let (_, instance, values) = sample_values(sample);
        for (field, v) in values {
            // Exactly the `f32`'s value: the store rounds it to the field's precision.
            if v.is_finite() {
                out.push(Reading {
                    field,
                    instance: instance.map(str::to_string),
                    value: v,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_indexed_by_field_number_and_names_are_unique() {
        for (i, d) in FIELDS.iter().enumerate() {
            assert_eq!(d.field as usize, i, "{}", d.name);
            assert_eq!(Field::from_u8(i as u8), Some(d.field));
            assert_eq!(Field::by_name(d.name), Some(d.field));
        }
        let mut names = field_names();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), FIELDS.len());
    }

    #[test]
    fn values_keep_their_decimal_form_through_the_stored_integer() {
        let rtt = Field::RttAvgMs.def();
        assert_eq!(
            rtt.quantize(f64::from(0.029f32)),
            Some(29),
            "the f32 nearest 0.029"
        );
        assert_eq!(rtt.value(29), 0.029);
        assert_eq!(Field::BandwidthBps.def().quantize(9.43e7), Some(94_300_000));
        assert_eq!(rtt.quantize(f64::NAN), None);
        assert_eq!(rtt.quantize(f64::INFINITY), None);
        assert_eq!(rtt.quantize(1e300), None);
    }

    #[test]
    fn readings_leave_out_what_was_not_measured() {
        let r = readings(&[
            Sample::Ping {
                rtt_min_ms: f32::NAN,
                rtt_avg_ms: f32::NAN,
                rtt_max_ms: f32::NAN,
                jitter_ms: f32::NAN,
                loss_percent: 100.0,
                sent: 3,
                received: 0,
            },
            Sample::Interface {
                name: "eth1".into(),
                state: crate::wire::LinkState::Up,
                packets_per_sec: f32::NAN,
                bytes_per_sec: f32::NAN,
                errors_per_sec: f32::NAN,
                counters: crate::wire::InterfaceCounters {
                    rx_bytes: Some(u64::from(u32::MAX) * 4),
                    ..Default::default()
                },
            },
            Sample::Iperf {
                transport: Transport::Udp,
                bandwidth_bps: 1e6,
                offered_bps: f32::NAN,
                jitter_ms: 0.5,
                loss_percent: 0.0,
            },
        ]);
        let fields: Vec<(Field, Option<&str>)> =
            r.iter().map(|r| (r.field, r.instance.as_deref())).collect();
        assert_eq!(
            fields,
            vec![
                (Field::LossPercent, None),
                (Field::PingSent, None),
                (Field::PingReceived, None),
                (Field::LinkState, Some("eth1")),
                (Field::RxBytes, Some("eth1")),
                (Field::BandwidthBps, Some("udp")),
                (Field::IperfJitterMs, Some("udp")),
                (Field::IperfLossPercent, Some("udp")),
            ]
        );
        // Counters are exact, beyond what an f32 holds.
        assert_eq!(r[4].value, (u64::from(u32::MAX) * 4) as f64);
        assert_eq!(
            Field::RxBytes.def().quantize(r[4].value),
            Some(17_179_869_180)
        );
    }
}
