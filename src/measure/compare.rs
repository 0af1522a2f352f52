//! Comparing strategies (§2.5): the same seeds, and so the same workload
//! and fault draws, run under each strategy, at each fault scale, plus a
//! fault-free run of each seed (the business-cost baseline) and an
//! availability probe (one service down, nothing else). Runs are spread
//! over worker threads; each worker folds its runs into its own
//! histograms, merged at the end, so the result is the same for any number
//! of workers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use domain::{Invariant, Strategy};
use hdrhistogram::Histogram;
use reports::compare::{
    Availability, CompareResult, Contention, CurvePoint, Estimate, Percentiles, StrategyReport,
    ViolationCount, COMPARE_SCHEMA,
};
use reports::{Failure, Outcomes};

use crate::harness::{self, RunReport, RunSpec};
use crate::scenario::Scenario;
use crate::sweep;

/// What to compare.
#[derive(Clone, Debug)]
pub struct CompareSpec<'a> {
    pub scenario: &'a Scenario,
    pub strategies: Vec<Strategy>,
    /// First inclusive, last exclusive.
    pub seeds: (u64, u64),
    pub jobs: usize,
    /// Fault scales for the intensity curves; 1 (the scenario as written)
    /// is always measured.
    pub scales: Vec<f64>,
}

/// Which set of runs a run belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// At the fault scale of this index.
    Scaled(usize),
    /// Without any fault: the baseline of business cost.
    FaultFree,
    /// One service down for a while, nothing else.
    Probe,
    /// Most orders on one hot product, no fault.
    Hot,
}

/// The contention probe's share of orders on the hot product.
const HOT_SHARE: f64 = 0.8;

/// The per-seed figures of one run (distributions go to histograms).
#[derive(Clone, Debug, Default)]
struct Sample {
    seed: u64,
    orders: u64,
    outcomes: Outcomes,
    submissions: u64,
    user_failures: u64,
    workload_digest: u64,
    time_to_consistency_us: Option<u64>,
    packets: u64,
    rpcs: u64,
    publishes: u64,
    dead_letters: u64,
    lock_waits: u64,
    lock_wait_us: u64,
    compensations: u64,
    false_compensations: u64,
    refunds: u64,
    refunded: u64,
    coupons_issued: u64,
    coupon_value: u64,
    revenue: u64,
    exposure: [f64; 4],
    windowed: u64,
    throughput_per_s: f64,
    failure: Option<Failure>,
    probe: Probe,
}

/// Orders submitted while the probe's service was down.
#[derive(Clone, Copy, Debug, Default)]
struct Probe {
    orders: u64,
    failed_fast: u64,
    finished_late: u64,
    unaffected: u64,
    drain_us: u64,
}

/// One group's runs: per-seed samples and pooled distributions (µs).
struct Group {
    samples: Vec<Sample>,
    latency: Histogram<u64>,
    windows: Histogram<u64>,
}

/// A histogram of µs from 1 µs to a simulated hour, at 3 significant
/// figures; longer values are recorded as an hour.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

impl Group {
    fn new() -> Group {
        Group { samples: Vec::new(), latency: histogram(), windows: histogram() }
    }

    fn merge(&mut self, other: Group) {
        self.samples.extend(other.samples);
        self.latency.add(&other.latency).expect("auto-resizing histograms merge");
        self.windows.add(&other.windows).expect("auto-resizing histograms merge");
    }
}

/// The scales measured: the ones asked for, with 1 added, in order.
pub fn scales_with_one(scales: &[f64]) -> Vec<f64> {
    let mut all: Vec<f64> = scales.to_vec();
    if !all.contains(&1.0) {
        all.push(1.0);
    }
    all.sort_by(f64::total_cmp);
    all.dedup();
    all
}

fn sample(r: &RunReport, spec: &RunSpec<'_>, kind: Kind) -> Sample {
    let m = &r.measures;
    let c = &r.coverage;
    let first = m.orders.iter().map(|o| o.arrived_us).min().unwrap_or(0);
    let last = m.orders.iter().filter_map(|o| o.done_us).max().unwrap_or(first);
    let busy_s = (last - first) as f64 / 1e6;
    let confirmed = r.outcomes.confirmed;
    Sample {
        seed: r.seed,
        orders: m.orders.len() as u64,
        outcomes: r.outcomes,
        submissions: r.submissions,
        user_failures: r.user_failures,
        workload_digest: r.workload_digest,
        time_to_consistency_us: match (r.end, r.heal_at_us) {
            (sim::End::Settled, Some(heal)) => Some(r.time_us.saturating_sub(heal)),
            _ => None,
        },
        packets: r.stats.packets_sent,
        rpcs: c.rpcs,
        publishes: r.stats.publishes,
        dead_letters: r.stats.dead_letters,
        lock_waits: c.lock_waits,
        lock_wait_us: c.lock_wait_us,
        compensations: m.compensations,
        false_compensations: m.false_compensations,
        refunds: m.refunds,
        refunded: m.refunded,
        coupons_issued: m.coupons_issued,
        coupon_value: m.coupon_value,
        revenue: m.revenue,
        exposure: [m.exposure_orders, m.exposure_stock, m.exposure_money, m.exposure_coupons],
        windowed: m.orders.iter().filter(|o| o.window_us > 0).count() as u64,
        throughput_per_s: if busy_s > 0.0 { confirmed as f64 / busy_s } else { 0.0 },
        failure: sweep::failure_of(r, spec),
        probe: match (kind, spec.outage) {
            (Kind::Probe, Some(o)) => probe(r, o.down_at_us, o.down_at_us + o.down_for_us),
            _ => Probe::default(),
        },
    }
}

fn probe(r: &RunReport, down_us: u64, up_us: u64) -> Probe {
    let mut p = Probe::default();
    for o in r.measures.orders.iter().filter(|o| (down_us..up_us).contains(&o.arrived_us)) {
        p.orders += 1;
        match o.done_us {
            Some(t) if t < up_us && o.confirmed => p.unaffected += 1,
            Some(t) if t < up_us => p.failed_fast += 1,
            _ => p.finished_late += 1,
        }
        let done = o.done_us.unwrap_or(r.time_us);
        p.drain_us = p.drain_us.max(done.saturating_sub(up_us));
    }
    p
}

/// Record one run into its group.
fn record(group: &mut Group, r: &RunReport, spec: &RunSpec<'_>, kind: Kind) {
    for o in &r.measures.orders {
        if let Some(done) = o.done_us {
            group.latency.saturating_record(done.saturating_sub(o.arrived_us).max(1));
        }
        if o.window_us > 0 {
            group.windows.saturating_record(o.window_us);
        }
    }
    group.samples.push(sample(r, spec, kind));
}

/// A run that panicked: its failure, and nothing measured.
fn panicked(spec: &RunSpec<'_>, message: String) -> Sample {
    Sample {
        seed: spec.seed,
        failure: Some(sweep::panic_failure(spec, message)),
        ..Sample::default()
    }
}

/// Everything `compare` runs, folded into groups indexed by
/// `kind_index * strategies + strategy_index`.
fn run_all(spec: &CompareSpec<'_>, scales: &[f64]) -> Vec<Group> {
    let scenarios: Vec<Scenario> = scales.iter().map(|&f| spec.scenario.scaled(f)).collect();
    let fault_free = spec.scenario.scaled(0.0);
    let mut hot = fault_free.clone();
    hot.workload.hot_products = 1;
    hot.workload.hot_ppm = (HOT_SHARE * 1e6) as u32;
    let kinds: Vec<Kind> = (0..scales.len())
        .map(Kind::Scaled)
        .chain([Kind::FaultFree, Kind::Probe, Kind::Hot])
        .collect();
    let ns = spec.strategies.len();
    let (first, last) = spec.seeds;
    let per_group = last - first;
    let total = kinds.len() * ns * per_group as usize;
    let next = AtomicUsize::new(0);
    let merged = Mutex::new((0..kinds.len() * ns).map(|_| Group::new()).collect::<Vec<_>>());
    std::thread::scope(|scope| {
        for _ in 0..spec.jobs.max(1).min(total.max(1)) {
            scope.spawn(|| {
                let mut mine: Vec<Group> = (0..kinds.len() * ns).map(|_| Group::new()).collect();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let g = i / per_group as usize;
                    let seed = first + (i % per_group as usize) as u64;
                    let kind = kinds[g / ns];
                    let scenario = match kind {
                        Kind::Scaled(k) => &scenarios[k],
                        Kind::FaultFree | Kind::Probe => &fault_free,
                        Kind::Hot => &hot,
                    };
                    let mut run = RunSpec::new(scenario, spec.strategies[g % ns], None, seed);
                    if kind == Kind::Probe {
                        run.outage = Some(spec.scenario.availability);
                    }
                    match sweep::run_guarded(&run, &harness::run) {
                        Ok(r) => record(&mut mine[g], &r, &run, kind),
                        Err(message) => mine[g].samples.push(panicked(&run, message)),
                    }
                }
                let mut all = merged.lock().expect("no worker panics while holding the lock");
                for (into, from) in all.iter_mut().zip(mine) {
                    into.merge(from);
                }
            });
        }
    });
    let mut groups = merged.into_inner().expect("workers are done");
    for g in &mut groups {
        g.samples.sort_by_key(|s| s.seed);
    }
    groups
}

fn percentiles_us(h: &Histogram<u64>) -> Percentiles {
    let ms = |v: u64| v as f64 / 1000.0;
    if h.is_empty() {
        return Percentiles::default();
    }
    Percentiles {
        count: h.len(),
        p50: ms(h.value_at_quantile(0.5)),
        p90: ms(h.value_at_quantile(0.9)),
        p99: ms(h.value_at_quantile(0.99)),
        max: ms(h.max()),
    }
}

fn percentiles_of(values_us: impl Iterator<Item = u64>) -> Percentiles {
    let mut h = histogram();
    for v in values_us {
        h.saturating_record(v.max(1));
    }
    percentiles_us(&h)
}

fn cdf(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    (0..=100)
        .map(|q| (h.value_at_quantile(q as f64 / 100.0) as f64 / 1000.0, q as f64 / 100.0))
        .collect()
}

/// Window histogram buckets: upper bounds in ms, roughly logarithmic.
const WINDOW_BUCKETS_MS: [f64; 14] =
    [0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, f64::MAX];

fn window_histogram(h: &Histogram<u64>) -> Vec<(f64, u64)> {
    let mut lo = 0u64;
    WINDOW_BUCKETS_MS
        .iter()
        .map(|&ms| {
            let hi = if ms < f64::MAX { (ms * 1000.0) as u64 } else { u64::MAX };
            let n = h
                .iter_recorded()
                .filter(|v| (lo..hi).contains(&v.value_iterated_to()))
                .map(|v| v.count_at_value())
                .sum();
            lo = hi;
            (ms, n)
        })
        .collect()
}

fn estimate(samples: &[Sample], f: impl Fn(&Sample) -> f64) -> Estimate {
    Estimate::of(&samples.iter().map(f).collect::<Vec<_>>())
}

fn per_order(s: &Sample, x: u64) -> f64 {
    if s.orders == 0 {
        0.0
    } else {
        x as f64 / s.orders as f64
    }
}

fn success(s: &Sample) -> f64 {
    per_order(s, s.outcomes.confirmed)
}

fn violations(samples: &[Sample], orders: u64) -> Vec<ViolationCount> {
    let mut out: Vec<ViolationCount> = Vec::new();
    for f in samples.iter().filter_map(|s| s.failure.as_ref()) {
        match out.iter_mut().find(|v| v.invariant == f.invariant) {
            Some(v) => v.seeds += 1,
            None => out.push(ViolationCount {
                invariant: f.invariant.clone(),
                seeds: 1,
                per_10k_orders: 0.0,
                repro: f.repro.clone(),
            }),
        }
    }
    for v in &mut out {
        v.per_10k_orders = v.seeds as f64 * 10_000.0 / orders.max(1) as f64;
    }
    out
}

fn clean_share(samples: &[Sample]) -> f64 {
    let clean = samples.iter().filter(|s| s.failure.is_none()).count();
    clean as f64 / samples.len().max(1) as f64
}

fn strategy_report(strategy: Strategy, g: &Group, baseline: &Group) -> StrategyReport {
    let s = &g.samples;
    let sum = |f: fn(&Sample) -> u64| s.iter().map(f).sum::<u64>();
    let mut outcomes = Outcomes::default();
    for x in s {
        outcomes += x.outcomes;
    }
    let orders = sum(|x| x.orders);
    let (compensations, false_compensations) =
        (sum(|x| x.compensations), sum(|x| x.false_compensations));
    let lost = |x: &Sample| {
        let base = baseline.samples.iter().find(|b| b.seed == x.seed).map_or(0, |b| b.revenue);
        if base == 0 {
            0.0
        } else {
            (base as f64 - x.revenue as f64) / base as f64
        }
    };
    StrategyReport {
        strategy: strategy.name().to_string(),
        description: strategy.describe().to_string(),
        runs: s.len() as u64,
        orders,
        outcomes,
        success_rate: estimate(s, success),
        user_failures: estimate(s, |x| {
            if x.submissions == 0 {
                0.0
            } else {
                x.user_failures as f64 / x.submissions as f64
            }
        }),
        latency_ms: percentiles_us(&g.latency),
        latency_cdf: cdf(&g.latency),
        time_to_consistency_ms: percentiles_of(s.iter().filter_map(|x| x.time_to_consistency_us)),
        windowed_share: estimate(s, |x| per_order(x, x.windowed)),
        window_ms: percentiles_us(&g.windows),
        window_histogram: window_histogram(&g.windows),
        messages_per_order: estimate(s, |x| per_order(x, x.packets)),
        rpcs_per_order: estimate(s, |x| per_order(x, x.rpcs)),
        events_per_order: estimate(s, |x| per_order(x, x.publishes)),
        compensations,
        compensations_per_order: estimate(s, |x| per_order(x, x.compensations)),
        false_compensations,
        false_compensation_share: if compensations == 0 {
            0.0
        } else {
            false_compensations as f64 / compensations as f64
        },
        refunds: sum(|x| x.refunds),
        refunded: sum(|x| x.refunded),
        dead_letters: sum(|x| x.dead_letters),
        coupons_issued: sum(|x| x.coupons_issued),
        coupon_value: sum(|x| x.coupon_value),
        throughput_per_s: estimate(s, |x| x.throughput_per_s),
        lock_waits: sum(|x| x.lock_waits),
        lock_wait_ms_per_order: estimate(s, |x| per_order(x, x.lock_wait_us) / 1000.0),
        exposure_orders: estimate(s, |x| x.exposure[0]),
        exposure_stock: estimate(s, |x| x.exposure[1]),
        exposure_money: estimate(s, |x| x.exposure[2]),
        exposure_coupons: estimate(s, |x| x.exposure[3]),
        revenue: estimate(s, |x| x.revenue as f64),
        revenue_lost_share: estimate(s, lost),
        violations: violations(s, orders),
        clean_share: clean_share(s),
    }
}

fn curve_point(strategy: Strategy, scale: f64, g: &Group) -> CurvePoint {
    let s = &g.samples;
    let orders: u64 = s.iter().map(|x| x.orders).sum();
    let failing = s.iter().filter(|x| x.failure.is_some()).count();
    CurvePoint {
        strategy: strategy.name().to_string(),
        scale,
        success_rate: estimate(s, success),
        latency_p99_ms: percentiles_us(&g.latency).p99,
        violations_per_10k_orders: failing as f64 * 10_000.0 / orders.max(1) as f64,
        clean_share: clean_share(s),
    }
}

fn availability(strategy: Strategy, g: &Group) -> Availability {
    let total = |f: fn(&Probe) -> u64| g.samples.iter().map(|s| f(&s.probe)).sum::<u64>();
    let orders = total(|p| p.orders);
    let share = |n: u64| n as f64 / orders.max(1) as f64;
    Availability {
        strategy: strategy.name().to_string(),
        orders,
        failed_fast_share: share(total(|p| p.failed_fast)),
        finished_late_share: share(total(|p| p.finished_late)),
        unaffected_share: share(total(|p| p.unaffected)),
        drain_ms: percentiles_of(
            g.samples.iter().filter(|s| s.probe.orders > 0).map(|s| s.probe.drain_us),
        ),
    }
}

fn contention(strategy: Strategy, g: &Group) -> Contention {
    let s = &g.samples;
    Contention {
        strategy: strategy.name().to_string(),
        success_rate: estimate(s, success),
        throughput_per_s: estimate(s, |x| x.throughput_per_s),
        latency_p99_ms: percentiles_us(&g.latency).p99,
        lock_waits: s.iter().map(|x| x.lock_waits).sum(),
        lock_wait_ms_per_order: estimate(s, |x| per_order(x, x.lock_wait_us) / 1000.0),
    }
}

/// Run the comparison.
pub fn compare(spec: &CompareSpec<'_>) -> CompareResult {
    let started = Instant::now();
    let scales = scales_with_one(&spec.scales);
    let groups = run_all(spec, &scales);
    let ns = spec.strategies.len();
    let group = |kind_index: usize, strategy: usize| &groups[kind_index * ns + strategy];
    let main = scales.iter().position(|&f| f == 1.0).expect("1 is always measured");
    let (fault_free, probe, hot) = (scales.len(), scales.len() + 1, scales.len() + 2);
    let strategies: Vec<StrategyReport> = (0..ns)
        .map(|i| strategy_report(spec.strategies[i], group(main, i), group(fault_free, i)))
        .collect();
    let mut curves = Vec::new();
    let mut frontier = Vec::new();
    for (i, &strategy) in spec.strategies.iter().enumerate() {
        let points: Vec<CurvePoint> = scales
            .iter()
            .enumerate()
            .map(|(k, &f)| curve_point(strategy, f, group(k, i)))
            .collect();
        let robust = points.iter().take_while(|p| p.clean_share == 1.0).last().map(|p| p.scale);
        frontier.push((strategy.name().to_string(), robust));
        curves.extend(points);
    }
    // The contention probe draws its own, hot, workload.
    let same_workload = (0..hot * ns).all(|g| {
        let digests = |g: &Group| g.samples.iter().map(|s| s.workload_digest).collect::<Vec<_>>();
        digests(&groups[g]) == digests(&groups[0])
    });
    let mut invariants: Vec<String> = Invariant::ALL.iter().map(|i| i.name().to_string()).collect();
    for extra in ["panic", "step-budget"] {
        if strategies.iter().any(|s| s.violations.iter().any(|v| v.invariant == extra)) {
            invariants.push(extra.to_string());
        }
    }
    let a = &spec.scenario.availability;
    CompareResult {
        schema: COMPARE_SCHEMA.to_string(),
        scenario: spec.scenario.name.clone(),
        description: spec.scenario.description.clone(),
        seeds: [spec.seeds.0, spec.seeds.1],
        same_workload,
        strategies,
        invariants,
        fault_scales: scales,
        curves,
        frontier,
        outage_service: a.service.name().to_string(),
        outage_at_ms: a.down_at_us as f64 / 1000.0,
        outage_for_ms: a.down_for_us as f64 / 1000.0,
        availability: (0..ns).map(|i| availability(spec.strategies[i], group(probe, i))).collect(),
        hot_share: HOT_SHARE,
        contention: (0..ns).map(|i| contention(spec.strategies[i], group(hot, i))).collect(),
        total_runs: groups.iter().map(|g| g.samples.len() as u64).sum(),
        wall_s: started.elapsed().as_secs_f64(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Within the histogram's 3 significant figures.
    fn close(got: f64, want: f64) -> bool {
        (got - want).abs() <= want * 1e-3
    }

    #[test]
    fn percentiles_of_known_values() {
        // 1..=100 ms: the p-th percentile is p ms.
        let p = percentiles_of((1..=100).map(|ms| ms * 1000));
        assert_eq!(p.count, 100);
        for (got, want) in [(p.p50, 50.0), (p.p90, 90.0), (p.p99, 99.0), (p.max, 100.0)] {
            assert!(close(got, want), "{got} is not {want}");
        }
        assert_eq!(percentiles_of(std::iter::empty()), Percentiles::default());
    }

    #[test]
    fn a_latency_cdf_rises_from_the_fastest_to_the_slowest() {
        let mut h = histogram();
        for ms in [5, 10, 10, 20] {
            h.saturating_record(ms * 1000);
        }
        let c = cdf(&h);
        assert_eq!(c.len(), 101);
        for (i, ms, share) in [(0, 5.0, 0.0), (50, 10.0, 0.5), (100, 20.0, 1.0)] {
            assert!(close(c[i].0, ms) && c[i].1 == share, "{:?}", c[i]);
        }
        assert!(c.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 < w[1].1));
    }

    #[test]
    fn an_estimate_is_the_mean_with_its_95_percent_interval() {
        let e = Estimate::of(&[1.0, 2.0, 3.0, 4.0]);
        // sd = 1.2910, standard error 0.6455, 1.96 of them = 1.2652.
        assert_eq!(e.mean, 2.5);
        assert!((e.hi - e.mean - 1.2652).abs() < 1e-4 && (e.mean - e.lo - 1.2652).abs() < 1e-4);
        assert_eq!(Estimate::of(&[7.0]), Estimate { mean: 7.0, lo: 7.0, hi: 7.0 });
    }

    #[test]
    fn work_is_counted_per_order() {
        let s = Sample {
            orders: 4,
            packets: 50,
            rpcs: 6,
            outcomes: Outcomes { confirmed: 3, ..Outcomes::default() },
            ..Sample::default()
        };
        assert_eq!(
            (per_order(&s, s.packets), per_order(&s, s.rpcs), success(&s)),
            (12.5, 1.5, 0.75)
        );
        assert_eq!(per_order(&Sample::default(), 9), 0.0);
    }

    #[test]
    fn windows_fall_into_their_buckets() {
        let mut h = histogram();
        for us in [300, 800, 800, 1_500, 7_000_000] {
            h.saturating_record(us);
        }
        let b = window_histogram(&h);
        assert_eq!(b.iter().map(|(_, n)| n).sum::<u64>(), 5);
        assert_eq!((b[0], b[1], b[2]), ((0.5, 1), (1.0, 2), (2.0, 1)));
        assert_eq!(b.last(), Some(&(f64::MAX, 1)));
    }

    #[test]
    fn one_is_always_among_the_scales() {
        assert_eq!(scales_with_one(&[4.0, 0.0, 0.5]), vec![0.0, 0.5, 1.0, 4.0]);
        assert_eq!(scales_with_one(&[]), vec![1.0]);
    }
}
