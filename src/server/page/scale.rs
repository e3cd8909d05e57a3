//! Scales of the graphs: values and times mapped linearly onto pixels, value axes from zero to a
//! round top with ticks at 1, 2 or 5 times a power of ten, and time ticks on round UTC minutes.

/// Maps an interval of values linearly onto an interval of pixels (which may run backwards,
/// as the y axis does).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Linear {
    domain: (f64, f64),
    range: (f64, f64),
}

impl Linear {
    pub fn new(domain: (f64, f64), range: (f64, f64)) -> Linear {
        Linear { domain, range }
    }

    /// The pixel of `v`; the start of the range when the domain is a single value.
    pub fn map(&self, v: f64) -> f64 {
        let (d0, d1) = self.domain;
        let (r0, r1) = self.range;
        if d1 == d0 {
            return r0;
        }
        r0 + (v - d0) / (d1 - d0) * (r1 - r0)
    }
}

/// A value axis from zero to `top`, with its tick values (zero and `top` included).
#[derive(Debug, Clone, PartialEq)]
pub struct ValueAxis {
    pub top: f64,
    pub ticks: Vec<f64>,
}

/// Ticks wanted on a value axis, about.
const VALUE_TICKS: f64 = 4.0;

/// The axis that shows values from zero to `max`: a step of 1, 2 or 5 times a power of ten giving
/// about four intervals, and the first multiple of the step at or above `max` as the top. A `max`
/// that is zero, negative or not finite gives the axis 0..1.
pub fn value_axis(max: f64) -> ValueAxis {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let raw = max / VALUE_TICKS;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = match raw / magnitude {
        n if n <= 1.0 => 1.0,
        n if n <= 2.0 => 2.0,
        n if n <= 5.0 => 5.0,
        _ => 10.0,
    } * magnitude;
    // Divisions can land a hair above a whole number (0.3 / 0.1): round before taking the ceiling.
    let intervals = ((max / step * 1e9).round() / 1e9).ceil().max(1.0) as u32;
    ValueAxis {
        top: f64::from(intervals) * step,
        ticks: (0..=intervals).map(|i| f64::from(i) * step).collect(),
    }
}

/// The multiples of `step_ms` from `start_ms` to `end_ms`, both included: round UTC times.
pub fn time_ticks(start_ms: u64, end_ms: u64, step_ms: u64) -> Vec<u64> {
    if step_ms == 0 {
        return Vec::new();
    }
    let first = start_ms.div_ceil(step_ms) * step_ms;
    (first..=end_ms).step_by(step_ms as usize).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_maps_ends_and_middle_and_runs_backwards() {
        let y = Linear::new((0.0, 100.0), (150.0, 50.0));
        assert_eq!(y.map(0.0), 150.0);
        assert_eq!(y.map(100.0), 50.0);
        assert_eq!(y.map(25.0), 125.0);
        assert_eq!(Linear::new((5.0, 5.0), (10.0, 20.0)).map(5.0), 10.0);
    }

    #[test]
    fn value_axes_end_on_a_round_top_that_covers_the_data() {
        for (max, top, step) in [
            (0.37, 0.4, 0.1),
            (1.0, 1.0, 0.5),
            (3.0, 3.0, 1.0),
            (7.3, 8.0, 2.0),
            (42.0, 60.0, 20.0),
            (99.0, 100.0, 50.0),
            (100.0, 100.0, 50.0),
            (940.0, 1000.0, 500.0),
        ] {
            let axis = value_axis(max);
            assert!(
                (axis.top - top).abs() < 1e-9,
                "max {max}: top {} (wanted {top})",
                axis.top
            );
            assert!(axis.top >= max, "max {max}: the top covers the data");
            assert_eq!(axis.ticks[0], 0.0);
            assert!(
                (axis.ticks[1] - step).abs() < 1e-9,
                "max {max}: {:?}",
                axis.ticks
            );
            assert!((axis.ticks.last().unwrap() - axis.top).abs() < 1e-9);
            assert!(
                (2..=6).contains(&axis.ticks.len()),
                "max {max}: {:?}",
                axis.ticks
            );
        }
    }

    #[test]
    fn an_axis_without_positive_data_is_zero_to_one() {
        for max in [0.0, -3.0, f64::NAN, f64::INFINITY] {
            assert_eq!(value_axis(max).top, 1.0, "max {max}");
        }
    }

    #[test]
    fn time_ticks_fall_on_round_minutes_inside_the_window() {
        let quarter = 15 * 60_000;
        let start = 1_764_236_405_000; // 09:40:05
        let ticks = time_ticks(start, start + 3_600_000, quarter);
        let clocks: Vec<String> = ticks
            .iter()
            .map(|t| super::super::format::clock(*t))
            .collect();
        assert_eq!(clocks, ["09:45", "10:00", "10:15", "10:30"]);
        assert_eq!(
            time_ticks(0, 2 * quarter, quarter),
            [0, quarter, 2 * quarter]
        );
        assert!(time_ticks(1, 2, 0).is_empty());
    }
}
