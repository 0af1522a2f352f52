//! Test fixtures for the compare renderers: a small hand-built comparison
//! with the awkward cases a real one can hold (markup in text, a missing
//! figure, an open-ended histogram bucket, an unlisted invariant), and an
//! empty one.

use crate::compare::{
    Availability, CompareResult, CurvePoint, Estimate, Percentiles, StrategyReport, ViolationCount,
    COMPARE_SCHEMA,
};
use crate::result::Outcomes;

fn est(mean: f64) -> Estimate {
    Estimate { mean, lo: mean * 0.9, hi: mean * 1.1 }
}

fn pctl(p50: f64, p99: f64) -> Percentiles {
    Percentiles { count: 100, p50, p90: (p50 + p99) / 2.0, p99, max: p99 * 1.5 }
}

fn strategy(name: &str, p99: f64, success: f64) -> StrategyReport {
    let orders = 1000;
    let confirmed = (success * orders as f64) as u64;
    StrategyReport {
        strategy: name.to_string(),
        description: format!("{name} coordinates the order"),
        runs: 10,
        orders,
        outcomes: Outcomes { confirmed, cancelled: orders - confirmed, rejected: 0, unfinished: 0 },
        success_rate: est(success),
        user_failures: est(1.0 - success),
        latency_ms: pctl(p99 / 10.0, p99),
        latency_cdf: vec![(p99 / 20.0, 0.0), (p99 / 10.0, 0.5), (p99, 0.99), (p99 * 1.5, 1.0)],
        time_to_consistency_ms: pctl(50.0, 400.0),
        windowed_share: est(0.0),
        window_ms: Percentiles::default(),
        window_histogram: vec![(1.0, 0), (10.0, 0), (f64::INFINITY, 0)],
        messages_per_order: est(4.0),
        rpcs_per_order: est(2.0),
        events_per_order: est(1.0),
        compensations: 0,
        compensations_per_order: est(0.0),
        false_compensations: 0,
        false_compensation_share: 0.0,
        refunds: 0,
        refunded: 0,
        dead_letters: 0,
        coupons_issued: 0,
        coupon_value: 0,
        throughput_per_s: est(120.0),
        lock_waits: 0,
        lock_wait_ms_per_order: est(0.0),
        exposure_orders: est(0.0),
        exposure_stock: est(0.0),
        exposure_money: est(0.0),
        exposure_coupons: est(0.0),
        revenue: est(50_000.0),
        revenue_lost_share: est(0.01),
        violations: Vec::new(),
        clean_share: 1.0,
    }
}

fn point(strategy: &str, scale: f64, success: f64, p99: f64, violations: f64) -> CurvePoint {
    CurvePoint {
        strategy: strategy.to_string(),
        scale,
        success_rate: est(success),
        latency_p99_ms: p99,
        violations_per_10k_orders: violations,
        clean_share: if violations > 0.0 { 0.8 } else { 1.0 },
    }
}

/// Three strategies: a fast clean monolith, a choreography that leaves
/// windows and breaks an invariant, and a two-phase commit with the worst
/// tail (4,200 ms p99), locks and a missing throughput.
pub fn compare() -> CompareResult {
    let monolith = strategy("monolith", 35.0, 0.98);
    let mut chor = strategy("choreography", 900.0, 0.91);
    chor.description = "events <b>&</b> \"sagas\"".to_string();
    chor.windowed_share = est(0.12);
    chor.window_ms = pctl(40.0, 2_500.0);
    chor.window_histogram = vec![(1.0, 3), (10.0, 40), (f64::INFINITY, 7)];
    chor.compensations = 90;
    chor.false_compensations = 9;
    chor.false_compensation_share = 0.1;
    chor.dead_letters = 2;
    chor.clean_share = 0.7;
    chor.violations = vec![
        ViolationCount {
            invariant: "money-conserved".to_string(),
            seeds: 3,
            per_10k_orders: 30.0,
            repro: "sagasim run --seed 7 | tee <out>".to_string(),
        },
        ViolationCount {
            invariant: "panic".to_string(),
            seeds: 1,
            per_10k_orders: 10.0,
            repro: "sagasim run --seed 9".to_string(),
        },
    ];
    let mut tpc = strategy("two-phase-commit", 4_200.0, 0.95);
    tpc.lock_waits = 420;
    tpc.lock_wait_ms_per_order = est(3.5);
    tpc.throughput_per_s = Estimate { mean: f64::NAN, lo: f64::NAN, hi: f64::INFINITY };
    let curves = vec![
        point("monolith", 0.0, 1.0, 20.0, 0.0),
        point("monolith", 1.0, 0.98, 35.0, 0.0),
        point("monolith", 2.0, 0.97, 60.0, 0.0),
        point("choreography", 0.0, 1.0, 100.0, 0.0),
        point("choreography", 1.0, 0.91, 900.0, 40.0),
        point("choreography", 2.0, 0.70, 3_000.0, 90.0),
        point("two-phase-commit", 0.0, 1.0, 80.0, 0.0),
        point("two-phase-commit", 1.0, 0.95, 4_200.0, 0.0),
        point("two-phase-commit", 2.0, 0.90, 9_000.0, 0.0),
    ];
    let avail = |strategy: &str, failed_fast: f64| Availability {
        strategy: strategy.to_string(),
        orders: 200,
        failed_fast_share: failed_fast,
        finished_late_share: 0.5 - failed_fast / 2.0,
        unaffected_share: 0.5 - failed_fast / 2.0,
        drain_ms: pctl(300.0, 1_200.0),
    };
    CompareResult {
        schema: COMPARE_SCHEMA.to_string(),
        scenario: "flash-sale".to_string(),
        description: "Checkout under a <flash> sale & broker faults".to_string(),
        seeds: [0, 10],
        same_workload: true,
        strategies: vec![monolith, chor, tpc],
        invariants: vec!["stock-conserved".to_string(), "money-conserved".to_string()],
        fault_scales: vec![0.0, 1.0, 2.0],
        curves,
        frontier: vec![
            ("monolith".to_string(), Some(2.0)),
            ("choreography".to_string(), Some(0.0)),
            ("two-phase-commit".to_string(), Some(2.0)),
        ],
        outage_service: "payment".to_string(),
        outage_at_ms: 1_000.0,
        outage_for_ms: 2_000.0,
        availability: vec![
            avail("monolith", 0.9),
            avail("choreography", 0.0),
            avail("two-phase-commit", 0.6),
        ],
        hot_share: 0.8,
        contention: Vec::new(),
        total_runs: 120,
        wall_s: 1.25,
    }
}

/// A comparison of nothing: no strategy, no curve, no probe.
pub fn empty() -> CompareResult {
    CompareResult {
        schema: COMPARE_SCHEMA.to_string(),
        scenario: String::new(),
        description: String::new(),
        seeds: [5, 5],
        same_workload: false,
        strategies: Vec::new(),
        invariants: Vec::new(),
        fault_scales: Vec::new(),
        curves: Vec::new(),
        frontier: Vec::new(),
        outage_service: String::new(),
        outage_at_ms: f64::NAN,
        outage_for_ms: 0.0,
        availability: Vec::new(),
        hot_share: 0.0,
        contention: Vec::new(),
        total_runs: 0,
        wall_s: 0.0,
    }
}

/// The seven strategies of a monolith split, ten invariants, the full
/// window histogram and five fault scales: a comparison at its real size.
pub fn seven() -> CompareResult {
    const NAMES: [&str; 7] = [
        "monolith",
        "choreography",
        "orchestration",
        "two-phase-commit",
        "sync-cancel",
        "compensation-coupon",
        "ux-retry",
    ];
    const BOUNDS: [f64; 14] =
        [0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1e3, 2e3, 5e3, f64::INFINITY];
    let scales = [0.0, 0.5, 1.0, 2.0, 4.0];
    let mut r = compare();
    r.invariants = (1..=10).map(|i| format!("invariant-number-{i}")).collect();
    r.strategies = NAMES
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let k = i as f64;
            let mut s = strategy(name, 30.0 * 2f64.powf(k), 0.99 - 0.02 * k);
            s.windowed_share = est(0.02 * k);
            s.window_ms = if i == 0 { Percentiles::default() } else { pctl(10.0 * k, 400.0 * k) };
            s.window_histogram =
                BOUNDS.iter().enumerate().map(|(b, &ub)| (ub, (i * b % 9) as u64 * 3)).collect();
            s.violations = (0..i % 4)
                .map(|j| ViolationCount {
                    invariant: format!("invariant-number-{}", 1 + (i + 3 * j) % 10),
                    seeds: 1 + j as u64,
                    per_10k_orders: 5.0 * (k + j as f64),
                    repro: format!("sagasim run --strategy {name} --seed {j}"),
                })
                .collect();
            s
        })
        .collect();
    r.fault_scales = scales.to_vec();
    r.curves = NAMES
        .iter()
        .enumerate()
        .flat_map(|(i, name)| {
            let k = i as f64;
            scales.iter().map(move |&f| {
                let v = if i % 4 == 0 { 0.0 } else { f * k * 3.0 };
                point(name, f, 1.0 - 0.03 * f * k, 20.0 * (1.0 + f) * (1.0 + k * k), v)
            })
        })
        .collect();
    r.frontier = NAMES
        .iter()
        .enumerate()
        .map(|(i, n)| (n.to_string(), (i % 4 == 0).then_some(4.0)))
        .collect();
    r.availability = NAMES
        .iter()
        .enumerate()
        .map(|(i, n)| Availability {
            strategy: n.to_string(),
            orders: 100,
            failed_fast_share: 0.1 * i as f64,
            finished_late_share: 0.3,
            unaffected_share: 0.7 - 0.1 * i as f64,
            drain_ms: pctl(100.0, 100.0 * (i + 1) as f64),
        })
        .collect();
    r
}
