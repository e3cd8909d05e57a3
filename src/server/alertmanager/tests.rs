//! Tests for `server/alertmanager/mod.rs`, kept apart so the module itself stays short.

use super::*;
use crate::server::firing::tests::record;

const T0: u64 = 1_764_236_400_000;
const MINUTE: u64 = 60_000;

fn fire(id: u64, kind: AlertType, time_ms: u64) -> FiringAlert {
    FiringAlert {
        record: record(id, kind, 0, time_ms),
        since_ms: time_ms,
    }
}

#[test]
fn an_alert_becomes_a_postable_alert_with_stable_labels_and_annotations() {
    let a = firing(
        &fire(0xab, AlertType::PacketLoss, T0),
        T0,
        Some("http://nms.example.net"),
    );
    let json = serde_json::to_value(&a).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "labels": {
                "alertname": "NmsPacketLoss",
                "agent": "edge-1",
                "task": "task-101",
                "kind": "packet_loss",
                "severity": "critical",
                "rule": "condition:cpu_usage",
            },
            "annotations": {
                "summary": "CPU usage 97.5% is above 80%",
                "description": "PACKETLOSS on agent edge-1: CPU usage 97.5% is above 80% (value 97.5, threshold 80, task task-101, rule condition:cpu_usage)",
                "value": "97.5",
                "threshold": "80",
                "alert_id": "00000000000000ab",
            },
            "startsAt": "2025-11-27T09:40:00.000Z",
            "endsAt": "2025-11-27T09:44:00.000Z",
            "generatorURL": "http://nms.example.net/api/alerts?agent=edge-1",
        })
    );
}

#[test]
fn per_interface_and_per_target_alerts_carry_what_they_fire_on() {
    let mut r = record(1, AlertType::InterfaceStats, 0, T0);
    r.subject = "eth1".into();
    assert_eq!(labels(&r)["interface"], "eth1");
    let mut r = record(2, AlertType::PacketLoss, 0, T0);
    r.subject = "ping".into();
    r.target = Some("192.0.2.1".into());
    let l = labels(&r);
    assert_eq!(
        (l["tool"].as_str(), l["target"].as_str()),
        ("ping", "192.0.2.1")
    );
    r.alert_id = 3;
    assert_eq!(labels(&r), l, "the alert id is no label");
    let mut r = record(4, AlertType::Custom, 0, T0);
    r.subject = "uplink".into();
    r.task.clear();
    let l = labels(&r);
    assert_eq!(l["subject"], "uplink");
    assert!(!l.contains_key("task"));
}

#[test]
fn a_resolution_posts_the_same_labels_ended_when_the_rule_stopped() {
    let mut out = Outbox::new(None);
    let a = fire(7, AlertType::Cpu, T0);
    out.accept(Event::Fired(a.clone()));
    out.update(T0);
    let first = out.take_batch();
    assert_eq!(first.len(), 1);
    assert_eq!(out.firing(), 1);
    out.accept(Event::Ended {
        alert: a,
        at_ms: T0 + 5000,
    });
    out.update(T0 + 6000);
    let second = out.take_batch();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].labels, first[0].labels);
    assert_eq!(second[0].starts_at, first[0].starts_at);
    assert_eq!(second[0].ends_at, "2025-11-27T09:40:05.000Z");
    assert_eq!(out.firing(), 0);
}

#[test]
fn firing_alerts_are_posted_again_every_interval_with_ends_at_ahead() {
    let mut out = Outbox::new(None);
    out.accept(Event::Fired(fire(1, AlertType::Cpu, T0)));
    out.update(T0);
    assert_eq!(out.take_batch().len(), 1);
    out.update(T0 + 1000);
    assert!(
        out.take_batch().is_empty(),
        "nothing new within the interval"
    );
    assert_eq!(out.next_update(T0 + 1000), T0 + MINUTE);
    out.update(T0 + MINUTE);
    let again = out.take_batch();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].starts_at, "2025-11-27T09:40:00.000Z");
    assert_eq!(again[0].ends_at, "2025-11-27T09:45:00.000Z");
}

#[test]
fn a_silence_holds_an_alert_back_and_its_end_lets_it_through_again() {
    let mut out = Outbox::new(None);
    let silence = Silence {
        id: "1".into(),
        matchers: super::super::silence::Matchers {
            agent: Some("edge-1".into()),
            ..Default::default()
        },
        starts_ms: T0,
        ends_ms: T0 + 10_000,
        comment: String::new(),
        created_by: String::new(),
        created_ms: T0,
    };
    out.accept(Event::Fired(fire(1, AlertType::Cpu, T0)));
    out.update(T0 - 1);
    assert_eq!(out.take_batch().len(), 1, "fires before the silence");
    out.accept(Event::Silences(vec![silence]));
    out.update(T0);
    let held = out.take_batch();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].ends_at, log::rfc3339(T0), "ended while silenced");
    assert_eq!(out.firing(), 0);
    assert_eq!(out.next_update(T0 + 1), T0 + 10_000);
    out.update(T0 + 5000);
    assert!(out.take_batch().is_empty());
    out.update(T0 + 10_000);
    let back = out.take_batch();
    assert_eq!(back.len(), 1);
    assert!(back[0].ends_at > log::rfc3339(T0 + 10_000), "firing again");
    assert_eq!(back[0].starts_at, log::rfc3339(T0));
}

#[test]
fn an_alert_raised_again_is_posted_once_under_its_labels() {
    let mut out = Outbox::new(None);
    let old = fire(1, AlertType::Cpu, T0);
    out.accept(Event::Fired(old.clone()));
    out.update(T0);
    out.take_batch();
    // A new episode (the agent restarted) replaces it; the old one's end is not posted.
    let mut new = fire(2, AlertType::Cpu, T0 + 1000);
    new.since_ms = T0;
    out.accept(Event::Fired(new));
    out.accept(Event::Ended {
        alert: old,
        at_ms: T0 + 2000,
    });
    out.update(T0 + 2000);
    assert!(out.take_batch().is_empty());
    assert_eq!(out.firing(), 1);
}

#[test]
fn the_end_is_never_before_the_start() {
    let a = firing(&fire(1, AlertType::Cpu, T0), T0, None);
    let e = ended(a.clone(), T0 - 1000);
    assert_eq!(e.ends_at, a.starts_at);
}

#[test]
fn a_failed_batch_goes_back_ahead_of_newer_alerts_and_the_backlog_is_bounded() {
    let mut out = Outbox::new(None);
    for id in 1..=3 {
        out.accept(Event::Fired(fire(id, AlertType::Cpu, T0 + id)));
        // Different alerts: another agent each.
    }
    let mut r = fire(4, AlertType::Ram, T0 + 4);
    r.record.agent = "edge-4".into();
    out.update(T0);
    let batch = out.take_batch();
    out.accept(Event::Fired(r));
    out.update(T0 + 10);
    out.requeue(batch.clone());
    let all = out.take_batch();
    assert_eq!(all[..batch.len()], batch[..]);
    for id in 0..(MAX_PENDING as u64 + 10) {
        out.push(firing(&fire(100 + id, AlertType::Custom, T0), T0, None));
    }
    assert_eq!(out.pending(), MAX_PENDING);
    assert_eq!(out.take_dropped(), 10);
}
