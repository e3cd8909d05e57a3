//! From samples to readings: the values a sample carries in schema order ([`sample_values`],
//! the one place where a sample's variants meet the schema), and a report's measured values as
//! [`Reading`]s for the store.

use super::{FIELDS, Field, FieldDef, SampleKind};
use crate::wire::{Sample, Transport};

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
        Sample::Interface { name, .. } => (
            SampleKind::Interface,
            Some(name.as_str()),
            interface_values(sample),
        ),
        Sample::Ping { .. } => (SampleKind::Ping, None, ping_values(sample)),
        Sample::Iperf { transport, .. } => (
            SampleKind::Iperf,
            Some(transport_name(*transport)),
            iperf_values(sample),
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

/// An interface sample's rates, state and counters (NaN for a counter the host does not tell).
fn interface_values(sample: &Sample) -> Vec<(Field, f64)> {
    let Sample::Interface {
        state,
        packets_per_sec,
        bytes_per_sec,
        errors_per_sec,
        counters,
        ..
    } = sample
    else {
        return Vec::new();
    };
    let counter = |v: Option<u64>| v.map_or(f64::NAN, |v| v as f64);
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
    ]
}

/// A ping sample's round-trip times, jitter, loss and counts.
fn ping_values(sample: &Sample) -> Vec<(Field, f64)> {
    let Sample::Ping {
        rtt_min_ms,
        rtt_avg_ms,
        rtt_max_ms,
        jitter_ms,
        loss_percent,
        sent,
        received,
    } = sample
    else {
        return Vec::new();
    };
    vec![
        (Field::RttMinMs, f64::from(*rtt_min_ms)),
        (Field::RttAvgMs, f64::from(*rtt_avg_ms)),
        (Field::RttMaxMs, f64::from(*rtt_max_ms)),
        (Field::JitterMs, f64::from(*jitter_ms)),
        (Field::LossPercent, f64::from(*loss_percent)),
        (Field::PingSent, *sent as f64),
        (Field::PingReceived, *received as f64),
    ]
}

/// An iperf sample's bandwidth, offered rate, jitter and loss.
fn iperf_values(sample: &Sample) -> Vec<(Field, f64)> {
    let Sample::Iperf {
        bandwidth_bps,
        offered_bps,
        jitter_ms,
        loss_percent,
        ..
    } = sample
    else {
        return Vec::new();
    };
    vec![
        (Field::BandwidthBps, f64::from(*bandwidth_bps)),
        (Field::OfferedBps, f64::from(*offered_bps)),
        (Field::IperfJitterMs, f64::from(*jitter_ms)),
        (Field::IperfLossPercent, f64::from(*loss_percent)),
    ]
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
