//! Sequence-number arithmetic and the receive window that suppresses duplicates.
//!
//! Sequence numbers are 16 bits and wrap; they are compared with serial-number arithmetic
//! (RFC 1982): `a` is after `b` when `a - b`, taken modulo 2^16, is in 1..32768. A sender never
//! has packets more than [`SEND_WINDOW`] numbers apart in flight, so a receiver that remembers the
//! last [`RECEIVE_WINDOW`] numbers recognises every retransmission, and anything older than that
//! can only be a stale duplicate.

/// Most sequence numbers a sender may have between its oldest unacknowledged packet and the
/// next one it sends.
pub const SEND_WINDOW: u16 = 256;
/// How many sequence numbers below the highest one seen a receiver remembers.
pub const RECEIVE_WINDOW: u16 = 1024;

/// Signed distance from `b` to `a`: positive when `a` is after `b`.
pub fn seq_diff(a: u16, b: u16) -> i32 {
    i32::from(a.wrapping_sub(b) as i16)
}

/// What the receive window says of an arriving sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Never seen: deliver it.
    New,
    /// Seen before (a retransmission or a network duplicate): acknowledge, do not deliver.
    Duplicate,
}

/// The receiver's memory of which sequence numbers have arrived (an anti-replay window in the
/// style of RFC 4303): the highest number seen and a bitmap of the [`RECEIVE_WINDOW`] below it.
#[derive(Debug, Clone)]
pub struct ReplayWindow {
    highest: Option<u16>,
    /// Bit i set: `highest - i` has arrived (bit 0 is `highest` itself).
    seen: [u64; (RECEIVE_WINDOW / 64) as usize],
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplayWindow {
    pub fn new() -> Self {
        ReplayWindow {
            highest: None,
            seen: [0; (RECEIVE_WINDOW / 64) as usize],
        }
    }

    /// Whether `seq` would be new, without recording it.
    pub fn check(&self, seq: u16) -> Arrival {
        let Some(highest) = self.highest else {
            return Arrival::New;
        };
        let d = seq_diff(seq, highest);
        if d > 0 {
            Arrival::New
        } else if -d < i32::from(RECEIVE_WINDOW) {
            if self.bit(-d as usize) {
                Arrival::Duplicate
            } else {
                Arrival::New
            }
        } else {
            Arrival::Duplicate
        }
    }

    /// Records `seq` and says whether it was new.
    pub fn record(&mut self, seq: u16) -> Arrival {
        let arrival = self.check(seq);
        if arrival == Arrival::Duplicate {
            return arrival;
        }
        match self.highest {
            None => {
                self.highest = Some(seq);
                self.set_bit(0);
            }
            Some(highest) => {
                let d = seq_diff(seq, highest);
                if d > 0 {
                    self.shift(d as usize);
                    self.highest = Some(seq);
                    self.set_bit(0);
                } else {
                    self.set_bit(-d as usize);
                }
            }
        }
        Arrival::New
    }

    /// Forgets that `seq` arrived, so that its next copy counts as new: the application could
    /// not keep the message it carried (a held acknowledgement that was refused), and the
    /// sender, which saw no acknowledgement, will send it again.
    pub fn forget(&mut self, seq: u16) {
        let Some(highest) = self.highest else {
            return;
        };
        let d = seq_diff(seq, highest);
        if d <= 0 && -d < i32::from(RECEIVE_WINDOW) {
            let i = -d as usize;
            self.seen[i / 64] &= !(1 << (i % 64));
        }
    }

    fn bit(&self, i: usize) -> bool {
        self.seen[i / 64] & (1 << (i % 64)) != 0
    }

    fn set_bit(&mut self, i: usize) {
        self.seen[i / 64] |= 1 << (i % 64);
    }

    /// Moves every remembered bit `n` places older.
    fn shift(&mut self, n: usize) {
        let words = self.seen.len();
        if n >= words * 64 {
            self.seen = [0; (RECEIVE_WINDOW / 64) as usize];
            return;
        }
        let (word_shift, bit_shift) = (n / 64, n % 64);
        for i in (0..words).rev() {
            let src = i.checked_sub(word_shift);
            let mut v = src.map_or(0, |s| self.seen[s] << bit_shift);
            if bit_shift > 0
                && let Some(prev) = src.and_then(|s| s.checked_sub(1))
            {
                v |= self.seen[prev] >> (64 - bit_shift);
            }
            self.seen[i] = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_arithmetic_wraps() {
        assert_eq!(seq_diff(1, 0), 1);
        assert_eq!(seq_diff(0, 65535), 1);
        assert_eq!(seq_diff(65535, 0), -1);
        assert_eq!(seq_diff(10, 65530), 16);
    }

    #[test]
    fn duplicates_are_recognised_across_wrap_around() {
        let mut w = ReplayWindow::new();
        for seq in (65000u32..65536 + 600).map(|s| s as u16) {
            assert_eq!(w.record(seq), Arrival::New, "first sight of {seq}");
        }
        for seq in (65000u32 + 600..65536 + 600).map(|s| s as u16) {
            assert_eq!(w.record(seq), Arrival::Duplicate, "second sight of {seq}");
        }
    }

    #[test]
    fn a_forgotten_number_is_new_again_once() {
        let mut w = ReplayWindow::new();
        for seq in 10..20 {
            w.record(seq);
        }
        w.forget(19);
        w.forget(12);
        assert_eq!(w.record(19), Arrival::New);
        assert_eq!(w.record(12), Arrival::New);
        assert_eq!(w.record(12), Arrival::Duplicate);
        assert_eq!(w.record(13), Arrival::Duplicate);
    }

    #[test]
    fn reordered_packets_inside_the_window_are_new_once() {
        let mut w = ReplayWindow::new();
        assert_eq!(w.record(100), Arrival::New);
        assert_eq!(w.record(300), Arrival::New);
        assert_eq!(w.record(150), Arrival::New);
        assert_eq!(w.record(150), Arrival::Duplicate);
        assert_eq!(w.record(299), Arrival::New);
        assert_eq!(w.record(100), Arrival::Duplicate);
        // Far older than the window: a stale duplicate.
        assert_eq!(
            w.record(300u16.wrapping_sub(RECEIVE_WINDOW + 5)),
            Arrival::Duplicate
        );
    }
}
