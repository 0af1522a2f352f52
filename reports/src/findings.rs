//! "What this shows": the sentences the compare reports put under each table
//! and chart, generated from the numbers so that they name the strategies
//! and figures that stand out. One function per section or chart, each
//! returning plain text (renderers escape it).
//!
//! Strategies tied at a figure's end are named together, and when all of
//! them tie the sentence says so instead of singling one out. Sentences are
//! in the past tense, which reads right for one strategy or several.

use crate::compare::{
    Availability, CompareResult, Contention, CurvePoint, StrategyReport, ViolationCount,
};
use crate::numbers::{count, num, pct, scale};
use crate::series::{self, Curve, Series};

const NO_STRATEGY: &str = "No strategy was measured, so there is nothing to compare.";

/// Whatever a sentence can name.
trait Named {
    fn name(&self) -> &str;
}

impl Named for StrategyReport {
    fn name(&self) -> &str {
        &self.strategy
    }
}

impl Named for Contention {
    fn name(&self) -> &str {
        &self.strategy
    }
}

impl Named for Availability {
    fn name(&self) -> &str {
        &self.strategy
    }
}

impl Named for Series<'_> {
    fn name(&self) -> &str {
        self.name
    }
}

/// Names as prose: "a", "a and b", "a, b and c".
fn list<S: AsRef<str>>(names: &[S]) -> String {
    match names {
        [] => String::new(),
        [one] => one.as_ref().to_string(),
        [init @ .., last] => {
            let init: Vec<&str> = init.iter().map(AsRef::as_ref).collect();
            format!("{} and {}", init.join(", "), last.as_ref())
        }
    }
}

fn named<T: Named>(items: &[&T]) -> String {
    list(&items.iter().map(|x| x.name()).collect::<Vec<_>>())
}

/// The subject of a sentence about all of `items`, which are some of `of`
/// in all: "Every strategy" only when they are all of them.
fn everyone<T: Named>(items: &[&T], of: usize) -> String {
    if items.len() > 1 && items.len() == of {
        "Every strategy".to_string()
    } else {
        named(items)
    }
}

/// Joins the sentences there are.
fn join<const N: usize>(sentences: [Option<String>; N]) -> String {
    sentences.into_iter().flatten().collect::<Vec<_>>().join(" ")
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    High,
    Low,
}

/// The items with a finite `key` at one end of it, ties included, and the
/// value there.
fn end<'a, T>(items: &[&'a T], key: &impl Fn(&T) -> f64, e: End) -> Option<(Vec<&'a T>, f64)> {
    let keys = items.iter().map(|x| key(x)).filter(|k| k.is_finite());
    let v = match e {
        End::High => keys.fold(f64::NEG_INFINITY, f64::max),
        End::Low => keys.fold(f64::INFINITY, f64::min),
    };
    v.is_finite().then(|| (items.iter().copied().filter(|x| key(x) == v).collect(), v))
}

/// A sentence about one end of a figure over `items` (some of `of`):
/// `some` names who stands there; `all` speaks when nobody stands out.
fn lead<T: Named>(
    (items, of): (&[&T], usize),
    key: impl Fn(&T) -> f64,
    e: End,
    some: impl Fn(&str, f64) -> String,
    all: impl Fn(&str, f64) -> String,
) -> Option<String> {
    let (who, v) = end(items, &key, e)?;
    let finite = items.iter().filter(|x| key(x).is_finite()).count();
    Some(if who.len() == finite { all(&everyone(&who, of), v) } else { some(&named(&who), v) })
}

/// A sentence about both ends of a figure over `items` (some of `of`):
/// `spread` gets who is highest and its value, then who is lowest and its
/// value; `all` speaks when they coincide.
fn spread<T: Named>(
    (items, of): (&[&T], usize),
    key: impl Fn(&T) -> f64,
    spread: impl Fn(&str, f64, &str, f64) -> String,
    all: impl Fn(&str, f64) -> String,
) -> Option<String> {
    let (hi, hv) = end(items, &key, End::High)?;
    let (lo, lv) = end(items, &key, End::Low)?;
    Some(if hv > lv {
        spread(&named(&hi), hv, &named(&lo), lv)
    } else {
        all(&everyone(&hi, of), hv)
    })
}

/// The item with the highest finite key; the first of equals.
fn highest<T>(items: &[T], key: impl Fn(&T) -> f64) -> Option<(&T, f64)> {
    let mut best: Option<(&T, f64)> = None;
    for item in items {
        let k = key(item);
        // Not `is_none_or`: the workspace supports Rust 1.80.
        if k.is_finite() && !matches!(best, Some((_, b)) if b >= k) {
            best = Some((item, k));
        }
    }
    best
}

fn strategies(r: &CompareResult) -> Vec<&StrategyReport> {
    r.strategies.iter().collect()
}

fn only(r: &CompareResult, keep: impl Fn(&StrategyReport) -> bool) -> Vec<&StrategyReport> {
    r.strategies.iter().filter(|s| keep(s)).collect()
}

/// Strategies whose latency percentiles are measurements.
fn timed(r: &CompareResult) -> Vec<&StrategyReport> {
    only(r, |s| s.latency_ms.count > 0)
}

pub fn outcomes_latency(r: &CompareResult) -> String {
    let (s, n) = (strategies(r), r.strategies.len());
    if s.is_empty() {
        return NO_STRATEGY.to_string();
    }
    let timed = timed(r);
    let latency = spread(
        (&timed, n),
        |x| x.latency_ms.p99,
        |hi, hv, lo, lv| {
            format!(
                "{hi} had the slowest tail, p99 latency {} ms, against {} ms for {lo}.",
                num(hv),
                num(lv)
            )
        },
        |all, v| format!("{all} had p99 latency {} ms.", num(v)),
    );
    join([
        spread(
            (&s, n),
            |x| x.success_rate.mean,
            |hi, hv, lo, lv| {
                format!(
                    "{hi} confirmed the largest share of orders ({}) and {lo} the smallest ({}).",
                    pct(hv),
                    pct(lv)
                )
            },
            |all, v| format!("{all} confirmed {} of orders.", pct(v)),
        ),
        latency.or_else(|| Some("No order ended, so there is no latency to compare.".to_string())),
    ])
}

pub fn consistency(r: &CompareResult) -> String {
    let (s, n) = (strategies(r), r.strategies.len());
    if s.is_empty() {
        return NO_STRATEGY.to_string();
    }
    let (windowed, never): (Vec<&StrategyReport>, Vec<&StrategyReport>) =
        s.iter().partition(|x| x.windowed_share.mean > 0.0);
    let measured: Vec<&StrategyReport> =
        windowed.iter().copied().filter(|x| x.window_ms.count > 0).collect();
    let settled = only(r, |x| x.time_to_consistency_ms.count > 0);
    let some_did = match windowed.len() {
        0 => "No strategy ever left an order's effects disagreeing between services.".to_string(),
        k if k == n => format!("{} left orders' effects disagreeing for a while.", everyone(&s, n)),
        1 => format!("Only {} left orders' effects disagreeing for a while.", named(&windowed)),
        k => format!("{k} of {n} strategies left orders' effects disagreeing for a while."),
    };
    join([
        Some(some_did),
        lead(
            (&windowed, n),
            |x| x.windowed_share.mean,
            End::High,
            |who, v| format!("{who} did so most often ({} of orders).", pct(v)),
            |all, v| format!("{all} did so for {} of orders.", pct(v)),
        ),
        lead(
            (&measured, n),
            |x| x.window_ms.p99,
            End::High,
            |who, v| format!("{who} left the longest windows, p99 {} ms.", num(v)),
            |all, v| format!("{all} left windows of p99 {} ms.", num(v)),
        ),
        (!windowed.is_empty() && !never.is_empty())
            .then(|| format!("{} never did.", named(&never))),
        lead(
            (&settled, n),
            |x| x.time_to_consistency_ms.p99,
            End::High,
            |who, v| {
                format!("{who} took longest to settle after the faults healed (p99 {} ms).", num(v))
            },
            |all, v| format!("{all} settled within p99 {} ms of the faults healing.", num(v)),
        ),
    ])
}

pub fn work(r: &CompareResult) -> String {
    let (s, n) = (strategies(r), r.strategies.len());
    if s.is_empty() {
        return NO_STRATEGY.to_string();
    }
    let compensating = only(r, |x| x.compensations > 0);
    let needless = only(r, |x| x.compensations > 0 && x.false_compensation_share > 0.0);
    let dead = only(r, |x| x.dead_letters > 0);
    join([
        spread(
            (&s, n),
            |x| x.messages_per_order.mean,
            |hi, hv, lo, lv| {
                format!(
                    "{hi} exchanged the most messages per order ({}) and {lo} the fewest ({}).",
                    num(hv),
                    num(lv)
                )
            },
            |all, v| format!("{all} exchanged {} messages per order.", num(v)),
        ),
        spread(
            (&s, n),
            |x| x.rpcs_per_order.mean,
            |hi, hv, lo, lv| {
                format!(
                    "{hi} made the most RPCs per order ({}) and {lo} the fewest ({}).",
                    num(hv),
                    num(lv)
                )
            },
            |all, v| format!("{all} made {} RPCs per order.", num(v)),
        ),
        lead(
            (&compensating, n),
            |x| x.compensations as f64,
            End::High,
            |who, v| format!("{who} ran the most compensations ({}).", count(v as u64)),
            |all, v| format!("{all} ran {} compensations.", count(v as u64)),
        )
        .or_else(|| Some("No strategy ran a compensation.".to_string())),
        lead(
            (&needless, n),
            |x| x.false_compensation_share,
            End::High,
            |who, v| format!("{who} had the largest share of needless compensations ({}).", pct(v)),
            |all, v| format!("{all} compensated needlessly in {} of cases.", pct(v)),
        ),
        (!dead.is_empty()).then(|| format!("Records were dead-lettered under {}.", named(&dead))),
    ])
}

pub fn business_cost(r: &CompareResult) -> String {
    let (s, n) = (strategies(r), r.strategies.len());
    if s.is_empty() {
        return NO_STRATEGY.to_string();
    }
    let losing = only(r, |x| x.revenue_lost_share.mean > 0.0);
    let waiting = only(r, |x| x.lock_waits > 0);
    let issuing = only(r, |x| x.coupons_issued > 0);
    join([
        spread(
            (&s, n),
            |x| x.throughput_per_s.mean,
            |hi, hv, lo, lv| {
                format!(
                    "{hi} sustained the highest throughput ({} confirmed orders/s) and {lo} the lowest ({}).",
                    num(hv),
                    num(lv)
                )
            },
            |all, v| format!("{all} sustained {} confirmed orders/s.", num(v)),
        ),
        lead(
            (&losing, n),
            |x| x.revenue_lost_share.mean,
            End::High,
            |who, v| {
                format!(
                    "{who} lost the most revenue to the faults ({} of fault-free revenue).",
                    pct(v)
                )
            },
            |all, v| format!("{all} lost {} of fault-free revenue to the faults.", pct(v)),
        )
        .or_else(|| Some("No strategy lost revenue to the faults.".to_string())),
        lead(
            (&waiting, n),
            |x| x.lock_wait_ms_per_order.mean,
            End::High,
            |who, v| format!("{who} waited longest on locks ({} ms per order).", num(v)),
            |all, v| format!("{all} waited {} ms per order on locks.", num(v)),
        )
        .or_else(|| Some("No strategy waited on a lock.".to_string())),
        lead(
            (&issuing, n),
            |x| x.coupon_value as f64,
            End::High,
            |who, v| format!("{who} handed out the most coupon value ({}).", count(v as u64)),
            |all, v| format!("{all} handed out coupons worth {}.", count(v as u64)),
        ),
    ])
}

fn violation_hits(r: &CompareResult) -> Vec<(&StrategyReport, &ViolationCount)> {
    r.strategies
        .iter()
        .flat_map(|s| s.violations.iter().map(move |v| (s, v)))
        .filter(|(_, v)| v.seeds > 0)
        .collect()
}

pub fn violations(r: &CompareResult) -> String {
    if r.strategies.is_empty() {
        return NO_STRATEGY.to_string();
    }
    let hits = violation_hits(r);
    let Some(((worst, v), rate)) = highest(&hits, |(_, v)| v.per_10k_orders) else {
        return format!(
            "No strategy violated an invariant on seeds {}..{}.",
            r.seeds[0], r.seeds[1]
        );
    };
    let broke = |x: &StrategyReport| hits.iter().any(|(h, _)| std::ptr::eq(*h, x));
    let (violating, clean) = (only(r, broke), only(r, |x| !broke(x)));
    join([
        Some(format!(
            "{} violated invariants; the most frequent was {} under {}, {} per 10,000 orders ({} seeds).",
            named(&violating),
            v.invariant,
            worst.strategy,
            num(rate),
            count(v.seeds)
        )),
        Some(if clean.is_empty() {
            "No strategy stayed clean.".to_string()
        } else {
            format!("{} stayed clean.", named(&clean))
        }),
    ])
}

pub fn violation_spread(r: &CompareResult) -> String {
    let cols = series::heatmap_columns(r);
    let cells = r.strategies.len() * cols.len();
    if cells == 0 {
        return "There are no strategies or invariants to chart.".to_string();
    }
    let hit = |s: &StrategyReport, inv: &str| series::per_10k(s, inv) > 0.0;
    let nonzero: usize =
        r.strategies.iter().map(|s| cols.iter().filter(|c| hit(s, c)).count()).sum();
    let breakers = |inv: &&str| r.strategies.iter().filter(|s| hit(s, inv)).count() as f64;
    match highest(&cols, breakers) {
        Some((inv, _)) if nonzero > 0 => format!(
            "{nonzero} of {cells} strategy × invariant cells are non-zero; {} was violated under the most strategies ({}).",
            inv,
            named(&only(r, |s| hit(s, inv)))
        ),
        _ => format!("All {cells} strategy × invariant cells are at zero."),
    }
}

pub fn latency_distribution(r: &CompareResult) -> String {
    let (timed, n) = (timed(r), r.strategies.len());
    if timed.is_empty() {
        return "No order ended, so there is no latency distribution to show.".to_string();
    }
    join([
        spread(
            (&timed, n),
            |x| x.latency_ms.p50,
            |hi, hv, lo, lv| {
                format!(
                    "{lo} had the fastest median latency ({} ms) and {hi} the slowest ({} ms).",
                    num(lv),
                    num(hv)
                )
            },
            |all, v| format!("{all} had a median latency of {} ms.", num(v)),
        ),
        lead(
            (&timed, n),
            |x| x.latency_ms.max,
            End::High,
            |who, v| format!("{who} had the longest single order ({} ms).", num(v)),
            |all, v| format!("{all} had a longest order of {} ms.", num(v)),
        ),
    ])
}

/// The share of a strategy's ended and unfinished orders that `n` is.
fn share(s: &StrategyReport, n: u64) -> f64 {
    let o = &s.outcomes;
    let total = o.confirmed + o.cancelled + o.rejected + o.unfinished;
    if total == 0 {
        f64::NAN
    } else {
        n as f64 / total as f64
    }
}

pub fn outcome_mix(r: &CompareResult) -> String {
    let n = r.strategies.len();
    if n == 0 {
        return NO_STRATEGY.to_string();
    }
    let cancelling = only(r, |x| share(x, x.outcomes.cancelled) > 0.0);
    let rejecting = only(r, |x| share(x, x.outcomes.rejected) > 0.0);
    let unfinishing = only(r, |x| x.outcomes.unfinished > 0);
    join([
        lead(
            (&cancelling, n),
            |x| share(x, x.outcomes.cancelled),
            End::High,
            |who, v| format!("{who} cancelled the largest share of orders ({}).", pct(v)),
            |all, v| format!("{all} cancelled {} of orders.", pct(v)),
        ),
        lead(
            (&rejecting, n),
            |x| share(x, x.outcomes.rejected),
            End::High,
            |who, v| format!("{who} rejected the largest share of orders ({}).", pct(v)),
            |all, v| format!("{all} rejected {} of orders.", pct(v)),
        ),
        (cancelling.is_empty() && rejecting.is_empty())
            .then(|| "No strategy cancelled or rejected an order.".to_string()),
        lead(
            (&unfinishing, n),
            |x| x.outcomes.unfinished as f64,
            End::High,
            |who, v| format!("{who} left the most orders unfinished ({}).", count(v as u64)),
            |all, v| format!("{all} left {} orders unfinished.", count(v as u64)),
        )
        .or_else(|| Some("Every order finished.".to_string())),
    ])
}

pub fn window_distribution(r: &CompareResult) -> String {
    let bounds = series::window_buckets(r);
    let total = |s: &StrategyReport| bounds.iter().map(|b| series::orders_in(s, *b)).sum::<u64>();
    let windowed = only(r, |s| total(s) > 0);
    if windowed.is_empty() {
        return "No order's effects ever disagreed, so there are no windows to show.".to_string();
    }
    let reach = |s: &StrategyReport| {
        bounds.iter().rposition(|b| series::orders_in(s, *b) > 0).map_or(f64::NAN, |i| i as f64)
    };
    let bucket = |i: f64| series::bucket_label(&bounds, i as usize);
    let n = r.strategies.len();
    join([
        lead(
            (&windowed, n),
            |s| total(s) as f64,
            End::High,
            |who, v| {
                format!(
                    "{who} had the most orders with an inconsistency window ({}).",
                    count(v as u64)
                )
            },
            |all, v| format!("{all} had {} orders with an inconsistency window.", count(v as u64)),
        ),
        lead(
            (&windowed, n),
            reach,
            End::High,
            |who, i| format!("{who} reached the longest bucket ({} ms).", bucket(i)),
            |all, i| format!("{all} reached the {} ms bucket.", bucket(i)),
        ),
    ])
}

/// A curve's figure at its lowest and at its highest scale.
fn ends(points: &[&CurvePoint], c: Curve) -> Option<(f64, f64)> {
    let (first, last) = (c.value(points.first()?), c.value(points.last()?));
    (first.is_finite() && last.is_finite()).then_some((first, last))
}

pub fn curve(r: &CompareResult, c: Curve) -> String {
    let series = series::curve_series(r);
    let series: Vec<&Series> = series.iter().collect();
    let scales = series::fault_scales(r);
    let (Some(&lo), Some(&hi), false) = (scales.first(), scales.last(), series.is_empty()) else {
        return "No fault-intensity curve was measured.".to_string();
    };
    let n = series.len();
    if c == Curve::Violations {
        return first_violations(&series, hi);
    }
    if lo == hi {
        return only_scale(&series, c, lo);
    }
    // Degrading means falling for the success rate, rising for latency.
    let sign = if c == Curve::Success { -1.0 } else { 1.0 };
    let worse = |s: &Series| ends(&s.points, c).map_or(f64::NAN, |(a, b)| sign * (b - a));
    let from_to = format!("from fault scale {} to {}", scale(lo), scale(hi));
    spread(
        (&series, n),
        worse,
        |most, mv, least, lv| {
            format!(
                "Going {from_to}, the {} degraded most under {most} ({}) and least under {least} ({}).",
                c.noun(),
                c.show_change(sign * mv),
                c.show_change(sign * lv)
            )
        },
        |all, v| format!("{all}'s {} changed by {} {from_to}.", c.noun(), c.show_change(sign * v)),
    )
    .unwrap_or_else(|| format!("No strategy has its {} at two fault scales.", c.noun()))
}

fn only_scale(series: &[&Series], c: Curve, at: f64) -> String {
    let there = |s: &Series| s.points.first().map_or(f64::NAN, |p| c.value(p));
    let s = scale(at);
    spread(
        (series, series.len()),
        there,
        |hi, hv, lo, lv| {
            format!(
                "Only fault scale {s} was measured; there {hi} had the highest {} ({}) and {lo} the lowest ({}).",
                c.noun(),
                c.show(hv),
                c.show(lv)
            )
        },
        |all, v| format!("Only fault scale {s} was measured. {all} had a {} of {} there.", c.noun(), c.show(v)),
    )
    .unwrap_or_else(|| format!("Only fault scale {s} was measured."))
}

fn first_violations(series: &[&Series], hi: f64) -> String {
    let first = |s: &Series| {
        let p = s.points.iter().find(|p| p.violations_per_10k_orders > 0.0);
        p.map_or(f64::NAN, |p| p.scale)
    };
    let never: Vec<&Series> = series.iter().copied().filter(|s| first(s).is_nan()).collect();
    let Some((earliest, at)) = end(series, &first, End::Low) else {
        return format!(
            "No strategy violated an invariant at any fault scale up to {}.",
            scale(hi)
        );
    };
    join([
        Some(format!(
            "Violations appeared first under {}, at fault scale {}.",
            named(&earliest),
            scale(at)
        )),
        (!never.is_empty())
            .then(|| format!("{} stayed clean up to scale {}.", named(&never), scale(hi))),
    ])
}

pub fn frontier(r: &CompareResult) -> String {
    if r.frontier.is_empty() {
        return "No robustness frontier was measured.".to_string();
    }
    let scales = series::fault_scales(r);
    let top = scales.last().copied().unwrap_or(f64::NAN);
    let whole = |f: &Option<f64>| f.is_some_and(|f| f >= top);
    let robust: Vec<&str> =
        r.frontier.iter().filter(|(_, f)| whole(f)).map(|(s, _)| s.as_str()).collect();
    let partial: Vec<String> = r
        .frontier
        .iter()
        .filter(|(_, f)| !whole(f))
        .filter_map(|(s, f)| f.map(|f| format!("{s} up to {}", scale(f))))
        .collect();
    let fragile: Vec<&str> =
        r.frontier.iter().filter(|(_, f)| f.is_none()).map(|(s, _)| s.as_str()).collect();
    let lowest = scales.first().map_or_else(String::new, |s| format!(" ({})", scale(*s)));
    join([
        (!robust.is_empty()).then(|| {
            format!(
                "{} stayed clean at every measured fault scale, up to {}.",
                list(&robust),
                scale(top)
            )
        }),
        (!partial.is_empty())
            .then(|| format!("Clean only at lower fault scales: {}.", list(&partial))),
        (!fragile.is_empty()).then(|| {
            format!("{} violated an invariant even at the lowest scale{lowest}.", list(&fragile))
        }),
    ])
}

/// The contention probe: who kept its throughput with most orders on one
/// product, and who waited on locks.
pub fn contention(r: &CompareResult) -> String {
    let c: Vec<&Contention> = r.contention.iter().collect();
    let n = c.len();
    if c.is_empty() {
        return "No contention probe was run.".to_string();
    }
    let waiting: Vec<&Contention> = c.iter().copied().filter(|x| x.lock_waits > 0).collect();
    join([
        Some(format!("With {} of the orders on one hot product and no fault:", pct(r.hot_share))),
        spread(
            (&c, n),
            |x| x.latency_p99_ms,
            |hi, hv, lo, lv| {
                format!(
                    "{hi} had the slowest tail (p99 {} ms) and {lo} the fastest ({} ms).",
                    num(hv),
                    num(lv)
                )
            },
            |all, v| format!("{all} had a p99 of {} ms.", num(v)),
        ),
        lead(
            (&waiting, n),
            |x| x.lock_wait_ms_per_order.mean,
            End::High,
            |who, v| format!("{who} waited longest on locked rows ({} ms per order).", num(v)),
            |all, v| format!("{all} waited {} ms per order on locked rows.", num(v)),
        )
        .or_else(|| Some("No strategy waited on locks.".to_string())),
    ])
}

pub fn availability(r: &CompareResult) -> String {
    if r.availability.is_empty() {
        return "No availability probe was run.".to_string();
    }
    let n = r.availability.len();
    let probed: Vec<&Availability> = r.availability.iter().filter(|a| a.orders > 0).collect();
    let drained: Vec<&Availability> =
        probed.iter().copied().filter(|a| a.drain_ms.count > 0).collect();
    let outage = format!(
        "The probe took {} down for {} ms from {} ms.",
        r.outage_service,
        num(r.outage_for_ms),
        num(r.outage_at_ms)
    );
    if probed.is_empty() {
        return format!("{outage} No order was submitted while it was down.");
    }
    join([
        Some(outage),
        lead(
            (&probed, n),
            |a| a.failed_fast_share,
            End::High,
            |who, v| {
                format!(
                    "{who} failed fast most often: {} of the orders submitted during the outage ended unconfirmed before {} came back.",
                    pct(v),
                    r.outage_service
                )
            },
            |all, v| {
                format!(
                    "{all} failed fast on {} of the orders submitted during the outage.",
                    pct(v)
                )
            },
        ),
        lead(
            (&probed, n),
            |a| a.unaffected_share,
            End::High,
            |who, v| format!("{who} left the most of them unaffected ({}).", pct(v)),
            |all, v| format!("{all} left {} of them unaffected.", pct(v)),
        ),
        lead(
            (&drained, n),
            |a| a.drain_ms.p99,
            End::High,
            |who, v| format!("{who} took longest to drain afterwards (p99 {} ms).", num(v)),
            |all, v| format!("{all} drained within p99 {} ms afterwards.", num(v)),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;

    #[test]
    fn ties_are_named_together_and_all_ties_say_every() {
        let r = fixture::compare();
        assert!(consistency(&r).contains("Every strategy settled within p99 400 ms"));
        assert!(availability(&r).contains("Every strategy drained within p99 1,200 ms"));
        let mut r = r;
        r.strategies[2].latency_ms.p99 = r.strategies[1].latency_ms.p99;
        assert!(outcomes_latency(&r).starts_with("monolith confirmed"));
        assert!(
            outcomes_latency(&r).contains("choreography and two-phase-commit had the slowest tail")
        );
    }

    #[test]
    fn a_figure_without_data_is_never_singled_out() {
        let r = fixture::compare();
        // two-phase-commit's throughput is NaN: the others tie, and say so.
        assert!(business_cost(&r).starts_with("monolith and choreography sustained 120"));
        assert!(!business_cost(&r).contains("NaN"));
    }

    #[test]
    fn an_empty_comparison_still_says_something() {
        let r = fixture::empty();
        for s in [
            outcomes_latency(&r),
            consistency(&r),
            work(&r),
            business_cost(&r),
            violations(&r),
            violation_spread(&r),
            latency_distribution(&r),
            outcome_mix(&r),
            window_distribution(&r),
            curve(&r, Curve::Success),
            curve(&r, Curve::Violations),
            frontier(&r),
            availability(&r),
        ] {
            assert!(!s.is_empty());
        }
    }

    #[test]
    fn curves_name_who_degrades_most() {
        let r = fixture::compare();
        assert!(
            curve(&r, Curve::Success).contains("degraded most under choreography (-30.0 points)")
        );
        assert!(curve(&r, Curve::LatencyP99)
            .contains("degraded most under two-phase-commit (+8,920 ms)"));
        assert!(curve(&r, Curve::Violations).contains("first under choreography, at fault scale 1"));
    }
}
