//! Tests for `server/silence.rs`, kept apart so the module itself stays short.

use super::*;
use crate::server::firing::tests::record;

#[test]
fn globs_match_any_text_where_the_star_is() {
    assert!(glob("edge-1", "edge-1"));
    assert!(!glob("edge-1", "edge-12"));
    assert!(glob("edge-*", "edge-12"));
    assert!(glob("*", ""));
    assert!(glob("*-1", "edge-1"));
    assert!(glob("e*g*1", "edge-1"));
    assert!(!glob("e*x*1", "edge-1"));
    assert!(!glob("ab*ba", "aba"));
}

#[test]
fn a_silence_is_in_force_between_its_start_and_its_end_for_what_it_matches() {
    let request = SilenceRequest {
        agent: Some("edge-*".into()),
        task: None,
        kind: Some("cpu".into()),
        starts: Some(serde_json::json!(1000)),
        ends: None,
        duration: Some("1m".into()),
        comment: "maintenance".into(),
        created_by: "ops".into(),
    };
    let s = request.build(500).unwrap();
    assert_eq!((s.starts_ms, s.ends_ms), (1000, 61_000));
    let cpu = record(1, AlertType::Cpu, 0, 1);
    let ram = record(2, AlertType::Ram, 0, 1);
    assert!(!s.silences(&cpu, 999));
    assert!(s.silences(&cpu, 1000));
    assert!(!s.silences(&ram, 1000));
    assert!(
        !s.silences(&cpu, 61_000),
        "an ended silence lets it through"
    );
    assert_eq!(s.state(0), "pending");
    assert_eq!(s.state(61_000), "expired");
}

#[test]
fn bad_requests_say_what_is_wrong() {
    let base = SilenceRequest {
        agent: Some("a".into()),
        task: None,
        kind: None,
        starts: None,
        ends: None,
        duration: Some("1h".into()),
        comment: String::new(),
        created_by: String::new(),
    };
    let err = |r: SilenceRequest| r.build(10_000).unwrap_err().to_string();
    assert!(
        err(SilenceRequest {
            agent: None,
            ..base.clone()
        })
        .contains("at least one matcher")
    );
    assert!(
        err(SilenceRequest {
            kind: Some("cpux".into()),
            ..base.clone()
        })
        .contains("not an alert kind")
    );
    assert!(
        err(SilenceRequest {
            duration: None,
            ..base.clone()
        })
        .contains("needs an end")
    );
    assert!(
        err(SilenceRequest {
            duration: None,
            starts: Some(serde_json::json!(1000)),
            ends: Some(serde_json::json!(5000)),
            ..base.clone()
        })
        .contains("in the past")
    );
    assert!(
        err(SilenceRequest {
            duration: None,
            ends: Some(serde_json::json!(5000)),
            ..base.clone()
        })
        .contains("not after starts")
    );
    assert!(
        err(SilenceRequest {
            duration: Some("soon".into()),
            ..base.clone()
        })
        .contains("not a duration")
    );
}

#[test]
fn silences_survive_a_reopen_and_expiring_ends_one_now() {
    let dir = tempfile::tempdir().unwrap();
    let mut silences = Silences::open(dir.path()).unwrap();
    let s = SilenceRequest {
        agent: Some("edge-1".into()),
        task: None,
        kind: None,
        starts: None,
        ends: None,
        duration: Some("1h".into()),
        comment: "swap the router".into(),
        created_by: "ops".into(),
    }
    .build(1000)
    .unwrap();
    silences.add(s.clone(), 1000).unwrap();
    let reopened = Silences::open(dir.path()).unwrap();
    assert_eq!(reopened.all(), vec![s.clone()]);
    let mut reopened = reopened;
    let expired = reopened.expire(&s.id, 2000).unwrap().unwrap();
    assert_eq!(expired.ends_ms, 2000);
    assert!(
        reopened
            .silencing(&record(1, AlertType::Cpu, 0, 1), 2000)
            .is_none()
    );
    assert!(reopened.expire("nope", 2000).unwrap().is_none());
}
