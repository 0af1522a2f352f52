//! The compare report's charts, one function per [`Chart`]: each writes a
//! single `<svg>` with its accessible title first, labelled axes with
//! units, tick labels and a legend. With no data a chart still draws its
//! axes and says why it is empty, so the page keeps its shape.

use std::io::{self, Write};

use crate::compare::{CompareResult, CurvePoint};
use crate::numbers::{count, num, pct};
use crate::series::{self, Curve};
use crate::svg::{self, colour, dash, escape, Frame, Scale};
use crate::view::Chart;

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 360.0;
/// Room right of the plot for a legend of strategy names.
const LEGEND: f64 = 200.0;
/// Room left of the plot for strategy names as category labels.
const NAMES: f64 = 190.0;
const ROW: f64 = 28.0;

pub fn render(out: &mut impl Write, r: &CompareResult, chart: Chart) -> io::Result<()> {
    match chart {
        Chart::LatencyCdf => latency_cdf(out, r),
        Chart::Outcomes => outcomes(out, r),
        Chart::Heatmap => heatmap(out, r),
        Chart::Windows => windows(out, r),
        Chart::Curve(c) => curve(out, r, c),
    }
}

/// The strategy legend right of the plot, colours by strategy index.
fn strategy_legend(
    out: &mut impl Write,
    r: &CompareResult,
    f: &Frame,
    names: &[&str],
) -> io::Result<()> {
    let entries: Vec<(&str, String)> =
        names.iter().map(|n| (colour(series::colour_index(r, n)), n.to_string())).collect();
    svg::legend(out, (f.right + 14.0, f.top + 8.0), "strategy", &entries)
}

fn latency_cdf(out: &mut impl Write, r: &CompareResult) -> io::Result<()> {
    let f = Frame::new(WIDTH, HEIGHT, [20.0, LEGEND, 56.0, 70.0]);
    let xs: Vec<f64> =
        r.strategies.iter().flat_map(|s| s.latency_cdf.iter().map(|p| p.0)).collect();
    let (sx, sy) = (Scale::auto(&xs), Scale::linear(0.0, 1.0));
    let chart = Chart::LatencyCdf;
    svg::open(out, chart.id(), chart.title(), &f)?;
    svg::y_axis(out, &f, &sy, "share of orders ended within x (0–1)")?;
    svg::x_axis(out, &f, &sx, &format!("latency, ms ({})", sx.kind()))?;
    let mut drawn = 0;
    for (i, s) in r.strategies.iter().enumerate() {
        let pts = svg::points(&f, &sx, &sy, s.latency_cdf.iter().copied());
        if pts.len() > 1 {
            svg::polyline(out, &pts, colour(i), dash(i))?;
            drawn += 1;
        }
    }
    if drawn == 0 {
        svg::note(out, &f, "No order ended: there is no latency to plot.")?;
    }
    let names: Vec<&str> = r.strategies.iter().map(|s| s.strategy.as_str()).collect();
    strategy_legend(out, r, &f, &names)?;
    svg::close(out)
}

/// Outcome colours: green for done, warm for refused, grey for limbo.
const OUTCOMES: [(&str, &str); 4] = [
    ("confirmed", "#4daf4a"),
    ("cancelled", "#ff7f00"),
    ("rejected", "#e41a1c"),
    ("unfinished", "#999999"),
];

/// A frame whose plot has one row per strategy, named on the left.
fn rows_frame(rows: usize, bottom: f64, plot_width: f64) -> Frame {
    let (height, right) = (24.0 + ROW * rows.max(2) as f64 + bottom, LEGEND - 40.0);
    Frame::new(NAMES + plot_width + right, height, [24.0, right, bottom, NAMES])
}

fn strategy_rows(r: &CompareResult) -> Vec<(String, Option<&'static str>)> {
    r.strategies.iter().enumerate().map(|(i, s)| (s.strategy.clone(), Some(colour(i)))).collect()
}

fn rect(
    out: &mut impl Write,
    (x, y, w, h): (f64, f64, f64, f64),
    fill: &str,
    tip: &str,
) -> io::Result<()> {
    writeln!(
        out,
        "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" fill=\"{fill}\"><title>{}</title></rect>",
        escape(tip)
    )
}

fn outcomes(out: &mut impl Write, r: &CompareResult) -> io::Result<()> {
    let f = rows_frame(r.strategies.len(), 56.0, WIDTH - NAMES - LEGEND + 40.0);
    let sx = Scale::Linear { lo: 0.0, hi: 100.0, step: 20.0 };
    let chart = Chart::Outcomes;
    svg::open(out, chart.id(), chart.title(), &f)?;
    svg::x_axis(out, &f, &sx, "share of the strategy's orders (%)")?;
    svg::y_categories(out, &f, &strategy_rows(r))?;
    svg::y_label(out, &f, NAMES - 14.0, "strategy")?;
    for (i, s) in r.strategies.iter().enumerate() {
        let o = &s.outcomes;
        let counts = [o.confirmed, o.cancelled, o.rejected, o.unfinished];
        let total: u64 = counts.iter().sum();
        let (y, h) = f.y_band(r.strategies.len(), i);
        if total == 0 {
            svg::text(out, (f.x(0.0) + 6.0, y + h / 2.0 + 4.0), "start", "note", "", "no orders")?;
            continue;
        }
        let mut done = 0u64;
        for (n, (name, fill)) in counts.iter().zip(OUTCOMES) {
            let (x0, x1) = (f.x(done as f64 / total as f64), f.x((done + n) as f64 / total as f64));
            done += n;
            let share = *n as f64 / total as f64;
            let tip = format!("{}: {} {} ({})", s.strategy, count(*n), name, pct(share));
            rect(out, (x0, y + 4.0, x1 - x0, h - 8.0), fill, &tip)?;
            if x1 - x0 > 44.0 {
                let at = ((x0 + x1) / 2.0, y + h / 2.0 + 4.0);
                svg::text(out, at, "middle", "on-bar", "", &pct(share))?;
            }
        }
    }
    if r.strategies.is_empty() {
        svg::note(out, &f, "No strategy was measured.")?;
    }
    let entries: Vec<(&str, String)> = OUTCOMES.iter().map(|(n, c)| (*c, n.to_string())).collect();
    svg::legend(out, (f.right + 24.0, f.top + 8.0), "outcome", &entries)?;
    svg::close(out)
}

/// Heat for a 0..1 intensity: from a pale to a dark red, so that more
/// violations read as darker; exact zero stays neutral grey.
fn heat(t: f64) -> String {
    if t.is_nan() || t <= 0.0 {
        return "#f0f0f0".to_string();
    }
    let t = t.min(1.0);
    let mix = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    format!("#{:02x}{:02x}{:02x}", mix(254.0, 165.0), mix(224.0, 15.0), mix(210.0, 21.0))
}

fn heatmap(out: &mut impl Write, r: &CompareResult) -> io::Result<()> {
    let cols = series::heatmap_columns(r);
    let n = cols.len().max(1) as f64;
    let plot = (((WIDTH - NAMES - LEGEND) / n).clamp(30.0, 110.0) * n).max(280.0);
    // Narrow columns turn their labels, which then need room below.
    let below = if plot / n < svg::UPRIGHT_BAND { 130.0 } else { 56.0 };
    let f = rows_frame(r.strategies.len(), below, plot);
    let rates: Vec<Vec<f64>> =
        r.strategies.iter().map(|s| cols.iter().map(|c| series::per_10k(s, c)).collect()).collect();
    let max = rates.iter().flatten().copied().filter(|v| v.is_finite()).fold(0.0, f64::max);
    let chart = Chart::Heatmap;
    svg::open(out, chart.id(), chart.title(), &f)?;
    for (i, (s, row)) in r.strategies.iter().zip(&rates).enumerate() {
        let (y, h) = f.y_band(r.strategies.len(), i);
        for (j, (inv, v)) in cols.iter().zip(row).enumerate() {
            let (x, w) = f.x_band(cols.len(), j);
            let t = v / max;
            let tip = format!("{} × {}: {} per 10,000 orders", s.strategy, inv, num(*v));
            rect(out, (x + 1.0, y + 1.0, w - 2.0, h - 2.0), &heat(t), &tip)?;
            if *v > 0.0 {
                let class = if t > 0.55 { "on-bar" } else { "cell" };
                svg::text(out, (x + w / 2.0, y + h / 2.0 + 4.0), "middle", class, "", &num(*v))?;
            }
        }
    }
    let labels: Vec<String> = cols.iter().map(|c| c.to_string()).collect();
    svg::x_categories(out, &f, &labels)?;
    svg::x_label(out, &f, below - 12.0, "invariant")?;
    svg::y_categories(out, &f, &strategy_rows(r))?;
    svg::y_label(out, &f, NAMES - 14.0, "strategy")?;
    if rates.is_empty() || cols.is_empty() {
        svg::note(out, &f, "No strategies or invariants to chart.")?;
    }
    let steps = if max > 0.0 { &[0.0, 0.25, 0.5, 0.75, 1.0][..] } else { &[0.0][..] };
    let steps: Vec<(String, String)> = steps.iter().map(|t| (heat(*t), num(t * max))).collect();
    let entries: Vec<(&str, String)> = steps.iter().map(|(c, l)| (c.as_str(), l.clone())).collect();
    svg::legend(out, (f.right + 24.0, f.top + 8.0), "per 10,000 orders", &entries)?;
    svg::close(out)
}

fn windows(out: &mut impl Write, r: &CompareResult) -> io::Result<()> {
    let bounds = series::window_buckets(r);
    let f = Frame::new(WIDTH, HEIGHT, [20.0, LEGEND, 70.0, 70.0]);
    let max =
        r.strategies.iter().flat_map(|s| bounds.iter().map(|b| series::orders_in(s, *b))).max();
    let sy = Scale::linear(0.0, max.unwrap_or(0) as f64);
    let chart = Chart::Windows;
    svg::open(out, chart.id(), chart.title(), &f)?;
    svg::y_axis(out, &f, &sy, "orders")?;
    let n = r.strategies.len().max(1) as f64;
    for (j, bound) in bounds.iter().enumerate() {
        let (x, w) = f.x_band(bounds.len(), j);
        let bar = w * 0.8 / n;
        let label = series::bucket_label(&bounds, j);
        for (i, s) in r.strategies.iter().enumerate() {
            let orders = series::orders_in(s, *bound);
            let Some(u) = sy.unit(orders as f64) else { continue };
            let (bx, top) = (x + w * 0.1 + bar * i as f64, f.y(u));
            let tip = format!("{}, window {} ms: {} orders", s.strategy, label, count(orders));
            rect(out, (bx, top, bar, f.bottom - top), colour(i), &tip)?;
        }
    }
    let labels: Vec<String> = (0..bounds.len()).map(|j| series::bucket_label(&bounds, j)).collect();
    svg::x_categories(out, &f, &labels)?;
    svg::x_label(out, &f, 58.0, "inconsistency window, ms (bucket upper bound)")?;
    if bounds.is_empty() {
        svg::note(out, &f, "No order's effects ever disagreed.")?;
    }
    let names: Vec<&str> = r.strategies.iter().map(|s| s.strategy.as_str()).collect();
    strategy_legend(out, r, &f, &names)?;
    svg::close(out)
}

/// The curve's value as drawn: success as a percentage, to match its axis.
fn plotted(c: Curve, p: &CurvePoint) -> f64 {
    match c {
        Curve::Success => c.value(p) * 100.0,
        _ => c.value(p),
    }
}

fn curve(out: &mut impl Write, r: &CompareResult, c: Curve) -> io::Result<()> {
    let f = Frame::new(400.0, 300.0, [20.0, 160.0, 56.0, 62.0]);
    let series = series::curve_series(r);
    let scales = series::fault_scales(r);
    let sx = match scales.as_slice() {
        [only] => Scale::linear(only.min(0.0), (2.0 * only).max(1.0)),
        s => Scale::linear(s.first().copied().unwrap_or(0.0), s.last().copied().unwrap_or(1.0)),
    };
    let ys: Vec<f64> = series.iter().flat_map(|s| s.points.iter().map(|p| plotted(c, p))).collect();
    let sy = match c {
        Curve::Success => Scale::Linear { lo: 0.0, hi: 100.0, step: 20.0 },
        Curve::LatencyP99 => Scale::auto(&ys),
        Curve::Violations => {
            Scale::linear(0.0, ys.iter().copied().filter(|v| v.is_finite()).fold(0.0, f64::max))
        }
    };
    let chart = Chart::Curve(c);
    svg::open(out, chart.id(), chart.title(), &f)?;
    let y_label =
        if sy.is_log() { format!("{} ({})", c.axis(), sy.kind()) } else { c.axis().to_string() };
    svg::y_axis(out, &f, &sy, &y_label)?;
    svg::x_axis(out, &f, &sx, "fault intensity (× the scenario's faults)")?;
    for s in &series {
        let place = |p: &CurvePoint| Some((f.x(sx.unit(p.scale)?), f.y(sy.unit(plotted(c, p))?)));
        let placed: Vec<(&CurvePoint, (f64, f64))> =
            s.points.iter().filter_map(|p| Some((*p, place(p)?))).collect();
        let pts: Vec<(f64, f64)> = placed.iter().map(|(_, xy)| *xy).collect();
        let (stroke, pattern) = (colour(s.colour), dash(s.colour));
        if pts.len() > 1 {
            svg::polyline(out, &pts, stroke, pattern)?;
        }
        for (p, (x, y)) in placed {
            let tip = format!(
                "{} at scale {}: {}",
                s.name,
                crate::numbers::scale(p.scale),
                c.show(c.value(p))
            );
            writeln!(
                out,
                "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3.5\" fill=\"{stroke}\"><title>{}</title></circle>",
                escape(&tip)
            )?;
        }
    }
    match (series.is_empty(), scales.len()) {
        (true, _) => svg::note(out, &f, "No fault-intensity curve was measured.")?,
        (false, 1) => svg::note(out, &f, "Only one fault intensity was measured.")?,
        _ => {}
    }
    let names: Vec<&str> = series.iter().map(|s| s.name).collect();
    strategy_legend(out, r, &f, &names)?;
    svg::close(out)
}
