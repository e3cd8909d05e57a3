//! Tests for `nettask/session/`, kept apart so the module itself stays short.

use super::*;
use std::time::Duration;

/// Datagrams a session sends for one message to a peer that never answers, over `span` of
/// virtual time.
fn transmissions_to_a_silent_peer(span: Duration) -> usize {
    let config = Config::default();
    let mut stats = Stats::default();
    let mut session = Session::new(&config, 7, None, 0, ReassemblyBudget::unlimited());
    session.send(
        Outbound {
            id: 1,
            kind: PacketType::Heartbeat,
            body: vec![0; 10],
        },
        &mut stats,
    );
    let start = Instant::now();
    let mut now = start;
    let mut sent = 0;
    while now < start + span {
        while session.poll_transmit(now, &mut stats).is_some() {
            sent += 1;
        }
        let Some(next) = session.poll_timeout() else {
            break;
        };
        now = next.max(now);
        session.handle_timeout(now, &mut stats);
    }
    sent
}

#[test]
fn retransmissions_back_off_while_the_peer_is_silent() {
    let config = Config::default();
    let span = Duration::from_secs(60);
    // The schedule: the timeout doubling from the initial one up to the maximum.
    let mut allowed = 1;
    let mut elapsed = Duration::ZERO;
    let mut wait = config.initial_timeout;
    while elapsed < span {
        elapsed += wait;
        allowed += 1;
        wait = (wait * 2).min(config.max_timeout);
    }
    let sent = transmissions_to_a_silent_peer(span);
    assert!(
        sent <= allowed,
        "{sent} transmissions of one packet in {span:?}; backoff allows {allowed}"
    );
    assert!(
        sent > config.max_retransmissions as usize,
        "it kept retransmitting"
    );
}
