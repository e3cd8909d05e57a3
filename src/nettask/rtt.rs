//! Round-trip time estimation and the retransmission timeout (RFC 6298).
//!
//! The timeout starts at the configured initial value (200 ms, as in the original design); each
//! acknowledgement of a packet that was sent only once (Karn's rule) gives a sample, and the
//! timeout becomes SRTT + max(granularity, 4 * RTTVAR), clamped to the configured bounds.

use std::time::Duration;

const GRANULARITY: Duration = Duration::from_millis(1);

#[derive(Debug, Clone)]
pub struct RttEstimator {
    smoothed: Option<Duration>,
    variation: Duration,
    initial: Duration,
    min: Duration,
    max: Duration,
}

impl RttEstimator {
    pub fn new(initial: Duration, min: Duration, max: Duration) -> Self {
        RttEstimator {
            smoothed: None,
            variation: Duration::ZERO,
            initial,
            min,
            max,
        }
    }

    /// Adds one round-trip sample.
    pub fn sample(&mut self, rtt: Duration) {
        match self.smoothed {
            None => {
                self.smoothed = Some(rtt);
                self.variation = rtt / 2;
            }
            Some(srtt) => {
                let delta = srtt.abs_diff(rtt);
                self.variation = (self.variation * 3 + delta) / 4;
                self.smoothed = Some((srtt * 7 + rtt) / 8);
            }
        }
    }

    pub fn smoothed(&self) -> Option<Duration> {
        self.smoothed
    }

    /// The current retransmission timeout, before backoff.
    pub fn timeout(&self) -> Duration {
        let rto = match self.smoothed {
            None => self.initial,
            Some(srtt) => srtt + (self.variation * 4).max(GRANULARITY),
        };
        rto.clamp(self.min, self.max)
    }

    /// The timeout after `retransmissions` doublings, capped at the maximum.
    pub fn backed_off(&self, retransmissions: u32) -> Duration {
        let factor = 1u32 << retransmissions.min(16);
        self.timeout().saturating_mul(factor).min(self.max)
    }

    /// The upper bound for retransmissions.
    pub fn max(&self) -> Duration {
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn starts_at_initial_and_adapts_to_samples() {
        let mut r = RttEstimator::new(ms(200), ms(20), ms(10_000));
        assert_eq!(r.timeout(), ms(200));
        r.sample(ms(10));
        // SRTT 10, RTTVAR 5: RTO = 10 + 20 = 30.
        assert_eq!(r.timeout(), ms(30));
        for _ in 0..50 {
            r.sample(ms(10));
        }
        assert_eq!(r.timeout(), ms(20), "clamped to the minimum");
        assert_eq!(r.backed_off(3), ms(160));
        assert_eq!(r.backed_off(30), ms(10_000));
    }
}
