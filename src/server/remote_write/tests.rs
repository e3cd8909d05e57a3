//! Tests for `server/remote_write/mod.rs`, kept apart so the module itself stays short.

use super::grouping::{Part, halves, samples_in};
use super::*;

#[test]
fn a_refused_part_splits_down_to_single_samples() {
    let part: Part = vec![((1, 1), 0, 3), ((1, 2), 0, 2), ((2, 1), 0, 4)];
    let (a, b) = halves(part);
    assert_eq!((samples_in(&a), samples_in(&b)), (3, 6));
    let (a, b) = halves(vec![((1, 1), 10, 15)]);
    assert_eq!((a, b), (vec![((1, 1), 10, 12)], vec![((1, 1), 12, 15)]));
    let (a, b) = halves(vec![((1, 1), 0, 1)]);
    assert_eq!((samples_in(&a), samples_in(&b)), (0, 1));
}

#[test]
fn refused_samples_split_and_outages_are_retried() {
    let status = |status| PostError::Status {
        service: "x",
        status,
        message: String::new(),
    };
    assert_eq!(verdict(&status(400)), Verdict::Split);
    assert_eq!(verdict(&status(413)), Verdict::Split);
    for retried in [401, 403, 404, 429, 500, 503] {
        assert_eq!(verdict(&status(retried)), Verdict::Retry, "{retried}");
    }
    let down = PostError::Connect {
        service: "x",
        address: "127.0.0.1:1".into(),
        reason: "refused".into(),
    };
    assert_eq!(verdict(&down), Verdict::Retry);
}
