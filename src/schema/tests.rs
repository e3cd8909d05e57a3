//! Tests for `schema`, kept apart so the module itself stays short.

use super::*;
use crate::wire::{Sample, Transport};

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
