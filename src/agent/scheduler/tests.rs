//! Tests for `agent::scheduler`, kept apart so the module itself stays short.

use super::next_slot;

#[test]
fn slots_start_at_their_offset_in_every_period() {
    // A 20 s period, slot at +6 s: 6, 26, 46 s...
    assert_eq!(next_slot(0, 6000, 20_000), 6000);
    assert_eq!(next_slot(6000, 6000, 20_000), 6000);
    assert_eq!(next_slot(6001, 6000, 20_000), 26_000);
    assert_eq!(next_slot(1_764_236_401_234, 0, 30_000), 1_764_236_430_000);
    assert_eq!(
        next_slot(1_764_236_401_234, 11_000, 30_000),
        1_764_236_411_000
    );
}
