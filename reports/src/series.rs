//! The series, buckets and columns the compare report's charts, tables
//! and findings are drawn from: the numbers behind a figure, before any
//! layout or markup. [`crate::view`] lays them out, [`crate::findings`]
//! writes sentences about them, and both read them from here.

use crate::compare::{CompareResult, CurvePoint, StrategyReport};
use crate::numbers::{num, pct, signed};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Curve {
    Success,
    LatencyP99,
    Violations,
}

impl Curve {
    pub const ALL: [Curve; 3] = [Curve::Success, Curve::LatencyP99, Curve::Violations];

    pub fn title(self) -> &'static str {
        match self {
            Curve::Success => "Success rate against fault intensity",
            Curve::LatencyP99 => "p99 latency against fault intensity",
            Curve::Violations => "Violations against fault intensity",
        }
    }

    /// What the y axis measures, with its unit.
    pub fn axis(self) -> &'static str {
        match self {
            Curve::Success => "success rate, mean (%)",
            Curve::LatencyP99 => "p99 latency (ms)",
            Curve::Violations => "violations per 10,000 orders",
        }
    }

    pub fn value(self, p: &CurvePoint) -> f64 {
        match self {
            Curve::Success => p.success_rate.mean,
            Curve::LatencyP99 => p.latency_p99_ms,
            Curve::Violations => p.violations_per_10k_orders,
        }
    }

    /// What the figure is, as a sentence names it.
    pub fn noun(self) -> &'static str {
        match self {
            Curve::Success => "success rate",
            Curve::LatencyP99 => "p99 latency",
            Curve::Violations => "violation rate",
        }
    }

    /// A change of the figure, signed, with its unit.
    pub fn show_change(self, delta: f64) -> String {
        match self {
            Curve::Success => format!("{} points", signed(delta * 100.0)),
            Curve::LatencyP99 => format!("{} ms", signed(delta)),
            Curve::Violations => format!("{} per 10,000 orders", signed(delta)),
        }
    }

    /// A value as a sentence states it, with its unit.
    pub fn show(self, v: f64) -> String {
        match self {
            Curve::Success => pct(v),
            Curve::LatencyP99 => format!("{} ms", num(v)),
            Curve::Violations => format!("{} per 10,000 orders", num(v)),
        }
    }
}

/// Every strategy the result names, in `r.strategies` order first; a
/// strategy's colour is its index here.
pub fn strategy_names(r: &CompareResult) -> Vec<&str> {
    let mut names: Vec<&str> = r.strategies.iter().map(|s| s.strategy.as_str()).collect();
    let others = r.curves.iter().map(|c| c.strategy.as_str());
    let others = others.chain(r.availability.iter().map(|a| a.strategy.as_str()));
    for name in others.chain(r.frontier.iter().map(|(s, _)| s.as_str())) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// The colour index of a strategy, by name.
pub fn colour_index(r: &CompareResult, strategy: &str) -> usize {
    let names = strategy_names(r);
    names.iter().position(|n| *n == strategy).unwrap_or(names.len())
}

/// One strategy's fault-intensity curve, by ascending scale.
pub struct Series<'a> {
    pub name: &'a str,
    pub colour: usize,
    pub points: Vec<&'a CurvePoint>,
}

pub fn curve_series(r: &CompareResult) -> Vec<Series<'_>> {
    strategy_names(r)
        .into_iter()
        .enumerate()
        .map(|(colour, name)| {
            let mut points: Vec<&CurvePoint> =
                r.curves.iter().filter(|c| c.strategy == name && c.scale.is_finite()).collect();
            points.sort_by(|a, b| a.scale.total_cmp(&b.scale));
            Series { name, colour, points }
        })
        .filter(|s| !s.points.is_empty())
        .collect()
}

/// The fault scales measured, ascending, whether listed or only curved.
pub fn fault_scales(r: &CompareResult) -> Vec<f64> {
    let mut scales: Vec<f64> =
        r.fault_scales.iter().chain(r.curves.iter().map(|c| &c.scale)).copied().collect();
    scales.retain(|s| s.is_finite());
    scales.sort_by(f64::total_cmp);
    scales.dedup();
    scales
}

/// The heatmap's columns: `r.invariants`, then any invariant a strategy
/// violated that is not listed, so that no violation goes unseen.
pub fn heatmap_columns(r: &CompareResult) -> Vec<&str> {
    let mut cols: Vec<&str> = r.invariants.iter().map(String::as_str).collect();
    for v in r.strategies.iter().flat_map(|s| &s.violations) {
        if !cols.contains(&v.invariant.as_str()) {
            cols.push(&v.invariant);
        }
    }
    cols
}

pub fn per_10k(s: &StrategyReport, invariant: &str) -> f64 {
    s.violations.iter().filter(|v| v.invariant == invariant).map(|v| v.per_10k_orders).sum()
}

/// The window histogram's bucket bounds across strategies, ascending,
/// trimmed to the span where some strategy has orders.
pub fn window_buckets(r: &CompareResult) -> Vec<f64> {
    let mut bounds: Vec<f64> = r
        .strategies
        .iter()
        .flat_map(|s| s.window_histogram.iter().map(|(b, _)| *b))
        .filter(|b| !b.is_nan())
        .collect();
    bounds.sort_by(f64::total_cmp);
    bounds.dedup();
    let used = |b: &f64| r.strategies.iter().any(|s| orders_in(s, *b) > 0);
    match (bounds.iter().position(used), bounds.iter().rposition(used)) {
        (Some(first), Some(last)) => bounds[first..=last].to_vec(),
        _ => Vec::new(),
    }
}

/// Orders in the window histogram bucket with this upper bound.
pub fn orders_in(s: &StrategyReport, bound: f64) -> u64 {
    s.window_histogram.iter().filter(|(b, _)| *b == bound).map(|(_, n)| n).sum()
}

/// The label of bucket `i` of `bounds`.
pub fn bucket_label(bounds: &[f64], i: usize) -> String {
    let previous = i.checked_sub(1).and_then(|p| bounds.get(p)).copied();
    crate::numbers::bucket(bounds[i], previous)
}
