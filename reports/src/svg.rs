//! Hand-written SVG for the HTML report: markup escaping, the strategy
//! palette, scales with their ticks, axes, category labels and legends.
//! The charts in `charts` are composed from these. SVG inline in HTML5
//! needs no namespace, so nothing written here refers to a URL; styling
//! comes from the page's classes (`axis`, `grid`, `tick`, `axis-label`).

use std::io::{self, Write};

use crate::numbers::fixed;

/// Strategy colours, by index in `CompareResult::strategies`: the
/// Okabe–Ito colour-blind-safe set (yellow swapped for darker hues, which
/// read on white) and a grey.
pub const PALETTE: [&str; 10] = [
    "#0072b2", "#e69f00", "#009e73", "#d55e00", "#cc79a7", "#56b4e9", "#332288", "#999933",
    "#882255", "#555555",
];

pub fn colour(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// The stroke pattern of strategy `i`: past the palette's length colours
/// repeat, and the dashes keep such strategies apart.
pub fn dash(i: usize) -> &'static str {
    match (i / PALETTE.len()) % 3 {
        0 => "",
        1 => " stroke-dasharray=\"6 3\"",
        _ => " stroke-dasharray=\"2 3\"",
    }
}

/// Text made safe for HTML, SVG and XML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // XML 1.0 forbids most control characters, even escaped.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A chart's canvas and the plot area inside its margins, in pixels.
#[derive(Clone, Copy, Debug)]
pub struct Frame {
    pub width: f64,
    pub height: f64,
    pub left: f64,
    pub right: f64,
    pub top: f64,
    pub bottom: f64,
}

impl Frame {
    /// A canvas with margins [top, right, bottom, left], as in CSS.
    pub fn new(width: f64, height: f64, [top, right, bottom, left]: [f64; 4]) -> Frame {
        Frame { width, height, left, right: width - right, top, bottom: height - bottom }
    }

    /// The x pixel of a 0..1 position along the plot.
    pub fn x(&self, u: f64) -> f64 {
        self.left + u * (self.right - self.left)
    }

    /// The y pixel of a 0..1 position up the plot.
    pub fn y(&self, u: f64) -> f64 {
        self.bottom - u * (self.bottom - self.top)
    }

    /// Band `i` of `n` equal bands along x: (start, width) in pixels.
    pub fn x_band(&self, n: usize, i: usize) -> (f64, f64) {
        let w = (self.right - self.left) / n.max(1) as f64;
        (self.left + i as f64 * w, w)
    }

    /// Band `i` of `n` equal bands down y, the first at the top.
    pub fn y_band(&self, n: usize, i: usize) -> (f64, f64) {
        let h = (self.bottom - self.top) / n.max(1) as f64;
        (self.top + i as f64 * h, h)
    }
}

/// A numeric axis: its domain and where its ticks go.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scale {
    Linear {
        lo: f64,
        hi: f64,
        step: f64,
    },
    /// From 10^lo to 10^hi.
    Log {
        lo: i32,
        hi: i32,
    },
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let m = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    m * mag
}

impl Scale {
    /// A linear scale covering min..max with about five round ticks.
    pub fn linear(min: f64, max: f64) -> Scale {
        let (mut lo, mut hi) =
            if min.is_finite() && max.is_finite() && min <= max { (min, max) } else { (0.0, 1.0) };
        if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
            if lo == 0.0 {
                hi = 1.0;
            } else {
                (lo, hi) = (lo - lo.abs() / 2.0, hi + hi.abs() / 2.0);
            }
        }
        let step = nice_step((hi - lo) / 5.0);
        Scale::Linear { lo: (lo / step).floor() * step, hi: (hi / step).ceil() * step, step }
    }

    /// Log when the positive values span more than two decades, so that
    /// both ends stay readable; else linear from zero.
    pub fn auto(values: &[f64]) -> Scale {
        let finite = || values.iter().copied().filter(|v| v.is_finite());
        let positive = || finite().filter(|v| *v > 0.0);
        let (min, max) = (positive().fold(f64::INFINITY, f64::min), positive().fold(0.0, f64::max));
        if max > 0.0 && max / min > 100.0 {
            let (lo, hi) = (min.log10().floor() as i32, max.log10().ceil() as i32);
            return Scale::Log { lo, hi: hi.max(lo + 1) };
        }
        let lowest = finite().fold(0.0, f64::min);
        Scale::linear(lowest, finite().fold(lowest, f64::max))
    }

    pub fn is_log(&self) -> bool {
        matches!(self, Scale::Log { .. })
    }

    /// "log scale" or "linear scale", for axis labels.
    pub fn kind(&self) -> &'static str {
        if self.is_log() {
            "log scale"
        } else {
            "linear scale"
        }
    }

    /// Where `v` falls, 0..1 along the axis; values off the domain (or at
    /// or below zero on a log axis) sit at its nearer edge.
    pub fn unit(&self, v: f64) -> Option<f64> {
        if !v.is_finite() {
            return None;
        }
        let u = match *self {
            Scale::Linear { lo, hi, .. } => (v - lo) / (hi - lo),
            Scale::Log { .. } if v <= 0.0 => 0.0,
            Scale::Log { lo, hi } => (v.log10() - lo as f64) / (hi - lo) as f64,
        };
        Some(u.clamp(0.0, 1.0))
    }

    pub fn ticks(&self) -> Vec<f64> {
        match *self {
            Scale::Linear { lo, hi, step } => {
                let n = ((hi - lo) / step).round().clamp(0.0, 100.0) as usize;
                (0..=n).map(|i| lo + i as f64 * step).collect()
            }
            Scale::Log { lo, hi } => (lo..=hi).map(|e| 10f64.powi(e)).collect(),
        }
    }

    /// A tick's label, with the decimals its step needs.
    pub fn label(&self, v: f64) -> String {
        let decimals = match *self {
            Scale::Linear { step, .. } => (0..6)
                .find(|&d| {
                    let scaled = step * 10f64.powi(d as i32);
                    (scaled - scaled.round()).abs() < 1e-6 * scaled.max(1.0)
                })
                .unwrap_or(6),
            Scale::Log { .. } => (-v.log10().round()).clamp(0.0, 6.0) as usize,
        };
        fixed(v, decimals)
    }
}

/// Opens a chart: the `<svg>` and, first inside it, its accessible title.
pub fn open(out: &mut impl Write, id: &str, title: &str, f: &Frame) -> io::Result<()> {
    writeln!(
        out,
        "<svg id=\"{id}\" class=\"chart\" role=\"img\" aria-labelledby=\"{id}-title\" \
         width=\"{w:.0}\" height=\"{h:.0}\" viewBox=\"0 0 {w:.0} {h:.0}\">\
         <title id=\"{id}-title\">{}</title>",
        escape(title),
        w = f.width,
        h = f.height,
    )
}

pub fn close(out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "</svg>")
}

/// A text element; `extra` holds further attributes, already escaped.
pub fn text(
    out: &mut impl Write,
    (x, y): (f64, f64),
    anchor: &str,
    class: &str,
    extra: &str,
    body: &str,
) -> io::Result<()> {
    writeln!(
        out,
        "<text x=\"{x:.1}\" y=\"{y:.1}\" text-anchor=\"{anchor}\" class=\"{class}\"{extra}>{}</text>",
        escape(body)
    )
}

fn line(
    out: &mut impl Write,
    class: &str,
    (x1, y1): (f64, f64),
    (x2, y2): (f64, f64),
) -> io::Result<()> {
    writeln!(
        out,
        "<line class=\"{class}\" x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\"/>"
    )
}

/// The label naming what the x axis measures, under the tick labels.
pub fn x_label(out: &mut impl Write, f: &Frame, below: f64, label: &str) -> io::Result<()> {
    text(out, ((f.left + f.right) / 2.0, f.bottom + below), "middle", "axis-label", "", label)
}

/// The label naming what the y axis measures, turned to run upwards.
pub fn y_label(out: &mut impl Write, f: &Frame, left_of: f64, label: &str) -> io::Result<()> {
    let (x, y) = (f.left - left_of, (f.top + f.bottom) / 2.0);
    let turn = format!(" transform=\"rotate(-90 {x:.1} {y:.1})\"");
    text(out, (x, y), "middle", "axis-label", &turn, label)
}

/// A numeric x axis along the plot's bottom, with grid lines and tick labels.
pub fn x_axis(out: &mut impl Write, f: &Frame, s: &Scale, label: &str) -> io::Result<()> {
    for t in s.ticks() {
        let Some(u) = s.unit(t) else { continue };
        let x = f.x(u);
        line(out, "grid", (x, f.top), (x, f.bottom))?;
        text(out, (x, f.bottom + 16.0), "middle", "tick", "", &s.label(t))?;
    }
    line(out, "axis", (f.left, f.bottom), (f.right, f.bottom))?;
    x_label(out, f, 38.0, label)
}

/// A numeric y axis along the plot's left, with grid lines and tick labels.
pub fn y_axis(out: &mut impl Write, f: &Frame, s: &Scale, label: &str) -> io::Result<()> {
    for t in s.ticks() {
        let Some(u) = s.unit(t) else { continue };
        let y = f.y(u);
        line(out, "grid", (f.left, y), (f.right, y))?;
        text(out, (f.left - 6.0, y + 4.0), "end", "tick", "", &s.label(t))?;
    }
    line(out, "axis", (f.left, f.top), (f.left, f.bottom))?;
    y_label(out, f, 50.0, label)
}

/// The narrowest band whose category label stays upright.
pub const UPRIGHT_BAND: f64 = 56.0;

/// Category tick labels under x bands; turned when the bands are narrow.
pub fn x_categories(out: &mut impl Write, f: &Frame, labels: &[String]) -> io::Result<()> {
    for (i, label) in labels.iter().enumerate() {
        let (x, w) = f.x_band(labels.len(), i);
        let (cx, y) = (x + w / 2.0, f.bottom + 14.0);
        let turn = if w < UPRIGHT_BAND {
            format!(" transform=\"rotate(-40 {cx:.1} {y:.1})\"")
        } else {
            String::new()
        };
        let anchor = if turn.is_empty() { "middle" } else { "end" };
        text(out, (cx, y), anchor, "tick", &turn, label)?;
    }
    line(out, "axis", (f.left, f.bottom), (f.right, f.bottom))
}

/// Category tick labels left of y bands, each with an optional swatch of
/// the category's colour.
pub fn y_categories(
    out: &mut impl Write,
    f: &Frame,
    labels: &[(String, Option<&str>)],
) -> io::Result<()> {
    for (i, (label, colour)) in labels.iter().enumerate() {
        let (y, h) = f.y_band(labels.len(), i);
        let cy = y + h / 2.0;
        text(out, (f.left - 18.0, cy + 4.0), "end", "tick", "", label)?;
        if let Some(c) = colour {
            swatch(out, (f.left - 14.0, cy - 5.0), 10.0, c)?;
        }
    }
    line(out, "axis", (f.left, f.top), (f.left, f.bottom))
}

fn swatch(out: &mut impl Write, (x, y): (f64, f64), size: f64, colour: &str) -> io::Result<()> {
    writeln!(
        out,
        "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{size:.0}\" height=\"{size:.0}\" fill=\"{colour}\"/>"
    )
}

/// A titled legend of (colour, label) entries, top-down from `at`.
pub fn legend(
    out: &mut impl Write,
    (x, y): (f64, f64),
    title: &str,
    entries: &[(&str, String)],
) -> io::Result<()> {
    writeln!(out, "<g class=\"legend\">")?;
    text(out, (x, y), "start", "legend-title", "", title)?;
    for (i, (colour, label)) in entries.iter().enumerate() {
        let row = y + 18.0 * (i + 1) as f64;
        swatch(out, (x, row - 10.0), 12.0, colour)?;
        text(out, (x + 18.0, row), "start", "tick", "", label)?;
    }
    writeln!(out, "</g>")
}

/// A remark in the middle of the plot, e.g. why it is empty.
pub fn note(out: &mut impl Write, f: &Frame, body: &str) -> io::Result<()> {
    let at = ((f.left + f.right) / 2.0, (f.top + f.bottom) / 2.0);
    text(out, at, "middle", "note", "", body)
}

/// Points as a `points` attribute, skipping those a scale cannot place.
pub fn points(
    f: &Frame,
    sx: &Scale,
    sy: &Scale,
    xy: impl Iterator<Item = (f64, f64)>,
) -> Vec<(f64, f64)> {
    xy.filter_map(|(x, y)| Some((f.x(sx.unit(x)?), f.y(sy.unit(y)?)))).collect()
}

pub fn polyline(
    out: &mut impl Write,
    pts: &[(f64, f64)],
    colour: &str,
    dash: &str,
) -> io::Result<()> {
    let coords: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
    writeln!(
        out,
        "<polyline class=\"series\" fill=\"none\" stroke=\"{colour}\"{dash} points=\"{}\"/>",
        coords.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_pick_round_ticks_and_log_when_wide() {
        assert_eq!(Scale::linear(0.0, 87.0).ticks(), vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        assert_eq!(Scale::linear(3.0, 3.0), Scale::Linear { lo: 1.0, hi: 5.0, step: 1.0 });
        assert_eq!(Scale::auto(&[0.0, 2.0, 5000.0]), Scale::Log { lo: 0, hi: 4 });
        assert!(!Scale::auto(&[1.0, 90.0]).is_log());
        assert_eq!(Scale::auto(&[]), Scale::Linear { lo: 0.0, hi: 1.0, step: 0.2 });
        assert_eq!(Scale::Log { lo: -1, hi: 1 }.label(0.1), "0.1");
        assert_eq!(Scale::Log { lo: 0, hi: 4 }.unit(0.0), Some(0.0));
        assert_eq!(Scale::linear(0.0, 1.0).unit(f64::NAN), None);
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(escape("a<b & \"c\">"), "a&lt;b &amp; &quot;c&quot;&gt;");
        assert_eq!(escape("x\u{1}y\nz"), "x y\nz", "control characters XML refuses");
    }
}
