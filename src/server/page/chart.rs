//! One graph as inline SVG: a line chart, or a SmokePing-style band chart (the min-max range
//! shaded, the average drawn as a line), over a time window, with a value axis from zero, UTC
//! time ticks, a gap wherever the series has one, and "no data" when nothing falls in the window.
//!
//! Pure functions: samples in, SVG text out. The SVG carries classes, not colours; the page's
//! style sheet colours them (for light and dark mode alike).

use super::escape::Escaped;
use super::format;
use super::scale::{Linear, time_ticks, value_axis};
use super::series::{Band, Point, Timed, segments};
use std::fmt::Write;

/// Size of the SVG's view box.
pub const WIDTH: f64 = 400.0;
pub const HEIGHT: f64 = 160.0;
const PLOT_LEFT: f64 = 44.0;
const PLOT_RIGHT: f64 = WIDTH - 16.0;
const PLOT_TOP: f64 = 24.0;
const PLOT_BOTTOM: f64 = HEIGHT - 20.0;
/// Spacing of the time ticks.
const TIME_TICK_MS: u64 = 15 * 60_000;

/// The time between ticks for a span (about four to eight ticks), and whether ticks are days.
fn time_tick(span_ms: u64) -> (u64, bool) {
    const HOUR: u64 = 3_600_000;
    const DAY: u64 = 24 * HOUR;
    match span_ms {
        s if s <= 2 * HOUR => (TIME_TICK_MS, false),
        s if s <= 8 * HOUR => (HOUR, false),
        s if s <= 2 * DAY => (6 * HOUR, false),
        s if s <= 10 * DAY => (DAY, true),
        s if s <= 40 * DAY => (7 * DAY, true),
        _ => (61 * DAY, true),
    }
}

/// What a chart shows and over which time.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// For example "RTT to 192.0.2.1"; escaped when written.
    pub title: &'a str,
    /// For example "ms".
    pub unit: &'a str,
    pub start_ms: u64,
    pub end_ms: u64,
}

impl Frame<'_> {
    fn contains(&self, time_ms: u64) -> bool {
        (self.start_ms..=self.end_ms).contains(&time_ms)
    }
}

/// A line chart of `points` (sorted by time); points outside the frame's window are left out.
pub fn line(frame: &Frame, points: &[Point]) -> String {
    let points: Vec<Point> = points
        .iter()
        .filter(|p| frame.contains(p.time_ms) && p.value.is_finite())
        .copied()
        .collect();
    let max = points.iter().map(|p| p.value).fold(0.0, f64::max);
    let mut canvas = Canvas::new(frame, max, points.last().map(|p| p.value));
    for run in segments(&points) {
        canvas.line(run, |p| p.value);
    }
    canvas.finish(points.is_empty())
}

/// A band chart of `bands` (sorted by time): per segment, the area between min and max, and the
/// average as a line over it; bands outside the frame's window are left out.
pub fn band(frame: &Frame, bands: &[Band]) -> String {
    let bands: Vec<Band> = bands
        .iter()
        .filter(|b| {
            frame.contains(b.time_ms) && b.min.is_finite() && b.avg.is_finite() && b.max.is_finite()
        })
        .copied()
        .collect();
    let max = bands.iter().map(|b| b.max).fold(0.0, f64::max);
    let mut canvas = Canvas::new(frame, max, bands.last().map(|b| b.avg));
    for run in segments(&bands) {
        canvas.band(run);
        canvas.line(run, |b| b.avg);
    }
    canvas.finish(bands.is_empty())
}

/// An SVG being written: the frame, axes and scales, then the data.
struct Canvas {
    out: String,
    x: Linear,
    y: Linear,
    start_ms: u64,
}

impl Canvas {
    fn new(frame: &Frame, max: f64, last: Option<f64>) -> Canvas {
        let title = Escaped(frame.title);
        let unit = Escaped(frame.unit);
        let axis = value_axis(max);
        let x = Linear::new(
            (
                0.0,
                (frame.end_ms - frame.start_ms.min(frame.end_ms)) as f64,
            ),
            (PLOT_LEFT, PLOT_RIGHT),
        );
        let y = Linear::new((0.0, axis.top), (PLOT_BOTTOM, PLOT_TOP));
        let mut out = String::with_capacity(4096);
        let _ = write!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{title} ({unit})"><title>{title} ({unit})</title>"#
        );
        let _ = write!(
            out,
            r#"<text class="chart-title" x="{PLOT_LEFT}" y="14">{title} ({unit})</text>"#
        );
        if let Some(v) = last {
            let _ = write!(
                out,
                r#"<text class="chart-last" x="{PLOT_RIGHT}" y="14" text-anchor="end">last {} {unit}</text>"#,
                format::measured(v)
            );
        }
        let step = axis.ticks.get(1).copied().unwrap_or(axis.top);
        let decimals = (-step.log10().floor()).clamp(0.0, 6.0) as usize;
        for v in &axis.ticks {
            let py = y.map(*v);
            let _ = write!(
                out,
                r#"<line class="grid" x1="{PLOT_LEFT}" y1="{py:.1}" x2="{PLOT_RIGHT}" y2="{py:.1}"/><text class="tick" x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
                PLOT_LEFT - 4.0,
                py + 3.5,
                format::number(*v, decimals)
            );
        }
        let (tick_ms, by_day) = time_tick(frame.end_ms.saturating_sub(frame.start_ms));
        for t in time_ticks(frame.start_ms, frame.end_ms, tick_ms) {
            let px = x.map((t - frame.start_ms) as f64);
            let _ = write!(
                out,
                r#"<line class="grid" x1="{px:.1}" y1="{PLOT_TOP}" x2="{px:.1}" y2="{PLOT_BOTTOM}"/><text class="tick" x="{px:.1}" y="{}" text-anchor="middle">{}</text>"#,
                HEIGHT - 6.0,
                if by_day {
                    format::day(t)
                } else {
                    format::clock(t)
                }
            );
        }
        let _ = write!(
            out,
            r#"<rect class="plot" x="{PLOT_LEFT}" y="{PLOT_TOP}" width="{}" height="{}"/>"#,
            PLOT_RIGHT - PLOT_LEFT,
            PLOT_BOTTOM - PLOT_TOP
        );
        Canvas {
            out,
            x,
            y,
            start_ms: frame.start_ms,
        }
    }

    fn px<T: Timed>(&self, sample: &T) -> f64 {
        self.x
            .map(sample.time_ms().saturating_sub(self.start_ms) as f64)
    }

    /// The pixel row of a value, kept inside the plot.
    fn py(&self, v: f64) -> f64 {
        self.y.map(v).clamp(PLOT_TOP, PLOT_BOTTOM)
    }

    /// One run without gaps as a line; a lone sample as a dot.
    fn line<T: Timed>(&mut self, run: &[T], value: impl Fn(&T) -> f64) {
        if let [only] = run {
            let (cx, cy) = (self.px(only), self.py(value(only)));
            let _ = write!(
                self.out,
                r#"<circle class="dot" cx="{cx:.1}" cy="{cy:.1}" r="2"/>"#
            );
            return;
        }
        let mut d = String::new();
        for (i, s) in run.iter().enumerate() {
            let command = if i == 0 { 'M' } else { 'L' };
            let _ = write!(d, "{command}{:.1} {:.1}", self.px(s), self.py(value(s)));
        }
        let _ = write!(self.out, r#"<path class="line" d="{d}"/>"#);
    }

    /// One run without gaps as the area from min to max; a lone sample as a vertical bar.
    fn band(&mut self, run: &[Band]) {
        if let [only] = run {
            let x = self.px(only);
            let _ = write!(
                self.out,
                r#"<line class="band-bar" x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}"/>"#,
                self.py(only.max),
                self.py(only.min)
            );
            return;
        }
        let mut d = String::new();
        for (i, b) in run.iter().enumerate() {
            let command = if i == 0 { 'M' } else { 'L' };
            let _ = write!(d, "{command}{:.1} {:.1}", self.px(b), self.py(b.max));
        }
        for b in run.iter().rev() {
            let _ = write!(d, "L{:.1} {:.1}", self.px(b), self.py(b.min));
        }
        let _ = write!(self.out, r#"<path class="band" d="{d}Z"/>"#);
    }

    fn finish(mut self, empty: bool) -> String {
        if empty {
            let _ = write!(
                self.out,
                r#"<text class="no-data" x="{:.1}" y="{:.1}" text-anchor="middle">no data</text>"#,
                (PLOT_LEFT + PLOT_RIGHT) / 2.0,
                (PLOT_TOP + PLOT_BOTTOM) / 2.0 + 4.0
            );
        }
        self.out.push_str("</svg>");
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2025-11-27 09:40:00 UTC.
    const T0: u64 = 1_764_236_400_000;
    const HOUR: u64 = 3_600_000;

    fn frame(title: &str) -> Frame<'_> {
        Frame {
            title,
            unit: "ms",
            start_ms: T0,
            end_ms: T0 + HOUR,
        }
    }

    fn points(pairs: &[(u64, f64)]) -> Vec<Point> {
        pairs
            .iter()
            .map(|&(s, value)| Point {
                time_ms: T0 + s * 1000,
                value,
            })
            .collect()
    }

    /// The `d` of each `<path class="CLASS">`.
    fn paths<'a>(svg: &'a str, class: &str) -> Vec<&'a str> {
        let open = format!(r#"<path class="{class}" d=""#);
        svg.match_indices(&open)
            .map(|(at, _)| {
                let rest = &svg[at + open.len()..];
                &rest[..rest.find('"').unwrap()]
            })
            .collect()
    }

    /// The texts of `<text class="CLASS" ...>`.
    fn texts<'a>(svg: &'a str, class: &str) -> Vec<&'a str> {
        let open = format!(r#"<text class="{class}""#);
        svg.match_indices(&open)
            .map(|(at, _)| {
                let rest = &svg[at..];
                let start = rest.find('>').unwrap() + 1;
                &rest[start..rest.find("</text>").unwrap()]
            })
            .collect()
    }

    #[test]
    fn a_line_spans_the_window_and_the_value_axis() {
        let svg = line(
            &frame("Jitter"),
            &points(&[(0, 0.0), (1800, 5.0), (3600, 10.0)]),
        );
        assert_eq!(
            paths(&svg, "line"),
            [format!(
                "M{PLOT_LEFT:.1} {PLOT_BOTTOM:.1}L{:.1} {:.1}L{PLOT_RIGHT:.1} {PLOT_TOP:.1}",
                (PLOT_LEFT + PLOT_RIGHT) / 2.0,
                (PLOT_TOP + PLOT_BOTTOM) / 2.0
            )]
        );
        let ticks = texts(&svg, "tick");
        for label in ["0", "5", "10", "09:45", "10:00", "10:15", "10:30"] {
            assert!(ticks.contains(&label), "tick {label} in {ticks:?}");
        }
        assert_eq!(texts(&svg, "chart-title"), ["Jitter (ms)"]);
        assert_eq!(texts(&svg, "chart-last"), ["last 10 ms"]);
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>"));
    }

    #[test]
    fn small_values_get_decimal_ticks() {
        let svg = line(&frame("RTT"), &points(&[(0, 0.02), (60, 0.037)]));
        let ticks = texts(&svg, "tick");
        for label in ["0", "0.01", "0.02", "0.03", "0.04"] {
            assert!(ticks.contains(&label), "tick {label} in {ticks:?}");
        }
    }

    #[test]
    fn a_gap_breaks_the_line_and_a_lone_sample_is_a_dot() {
        let svg = line(
            &frame("CPU"),
            &points(&[
                (0, 1.0),
                (5, 2.0),
                (10, 3.0),
                (100, 2.0),
                (105, 1.0),
                (500, 4.0),
            ]),
        );
        let lines = paths(&svg, "line");
        assert_eq!(lines.len(), 2, "{svg}");
        for d in &lines {
            assert_eq!(d.matches('M').count(), 1);
        }
        assert_eq!(lines[0].matches('L').count(), 2);
        assert_eq!(lines[1].matches('L').count(), 1);
        assert_eq!(svg.matches(r#"<circle class="dot""#).count(), 1);
    }

    #[test]
    fn an_empty_series_says_no_data_and_keeps_its_axes() {
        for svg in [line(&frame("Loss"), &[]), band(&frame("RTT"), &[])] {
            assert_eq!(texts(&svg, "no-data"), ["no data"]);
            assert!(paths(&svg, "line").is_empty());
            assert!(texts(&svg, "chart-last").is_empty());
            assert!(texts(&svg, "tick").contains(&"10:00"));
        }
    }

    #[test]
    fn samples_outside_the_window_are_left_out() {
        let before = Point {
            time_ms: T0 - 1,
            value: 50.0,
        };
        let after = Point {
            time_ms: T0 + HOUR + 1,
            value: 70.0,
        };
        let svg = line(&frame("RAM"), &[before, after]);
        assert_eq!(texts(&svg, "no-data"), ["no data"]);
        assert!(
            !texts(&svg, "tick").contains(&"50"),
            "the axis ignores them"
        );
    }

    #[test]
    fn a_band_shades_min_to_max_under_the_average() {
        let bands: Vec<Band> = [(0, 1.0, 2.0, 4.0), (5, 1.0, 1.5, 2.0), (10, 0.5, 1.0, 3.0)]
            .iter()
            .map(|&(s, min, avg, max)| Band {
                time_ms: T0 + s * 1000,
                min,
                avg,
                max,
            })
            .collect();
        let svg = band(&frame("RTT to 10.0.0.1"), &bands);
        let shaded = paths(&svg, "band");
        assert_eq!(shaded.len(), 1);
        // Along the maxima, back along the minima, closed: six corners.
        assert_eq!(shaded[0].matches(['M', 'L']).count(), 6);
        assert!(shaded[0].ends_with('Z'));
        let top = format!("M{PLOT_LEFT:.1} {PLOT_TOP:.1}");
        assert!(
            shaded[0].starts_with(&top),
            "4 ms is the top: {}",
            shaded[0]
        );
        assert_eq!(paths(&svg, "line").len(), 1, "the average");
        assert_eq!(texts(&svg, "chart-last"), ["last 1 ms"]);
        let lone = band(&frame("RTT"), &bands[..1]);
        assert!(paths(&lone, "band").is_empty());
        assert_eq!(lone.matches(r#"<line class="band-bar""#).count(), 1);
        assert_eq!(lone.matches(r#"<circle class="dot""#).count(), 1);
    }

    #[test]
    fn titles_from_the_network_are_escaped() {
        let svg = line(&frame("RTT to <script>&\"'"), &points(&[(0, 1.0)]));
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("RTT to &lt;script&gt;&amp;&quot;&#39; (ms)"));
    }
}
