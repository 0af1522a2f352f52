//! The result of `sagasim compare`: strategies measured on the same seeds,
//! as plain data with a versioned schema. Every figure carries its spread
//! over seeds: an [`Estimate`] (mean with a 95 % interval) for per-seed
//! figures, [`Percentiles`] for pooled distributions.

use serde::{Deserialize, Serialize};

use crate::result::Outcomes;

pub const COMPARE_SCHEMA: &str = "sagasim.compare/1";

/// A per-seed figure over the seeds: its mean and a 95 % interval for the
/// mean (normal approximation, 1.96 standard errors).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub mean: f64,
    pub lo: f64,
    pub hi: f64,
}

impl Estimate {
    /// The estimate of the mean of `xs`.
    pub fn of(xs: &[f64]) -> Estimate {
        let n = xs.len() as f64;
        if xs.is_empty() {
            return Estimate::default();
        }
        let mean = xs.iter().sum::<f64>() / n;
        if xs.len() < 2 {
            return Estimate { mean, lo: mean, hi: mean };
        }
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
        let half = 1.96 * (var / n).sqrt();
        Estimate { mean, lo: mean - half, hi: mean + half }
    }
}

/// A pooled distribution: how many values, and its percentiles.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// One invariant's violations under one strategy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ViolationCount {
    pub invariant: String,
    /// Seeds that violated it (a run stops at its first violation).
    pub seeds: u64,
    pub per_10k_orders: f64,
    /// The command line that reproduces the first of them.
    pub repro: String,
}

/// One strategy on the scenario as written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StrategyReport {
    pub strategy: String,
    pub description: String,
    pub runs: u64,
    /// Orders numbered over all runs.
    pub orders: u64,
    pub outcomes: Outcomes,
    /// Per seed: confirmed orders over orders.
    pub success_rate: Estimate,
    /// Per seed: share of submissions answered with anything but
    /// "accepted", or not answered.
    pub user_failures: Estimate,
    /// From a submission's first arrival to its order's final state, ms.
    pub latency_ms: Percentiles,
    /// The latency's distribution: (ms, share of orders at or below).
    pub latency_cdf: Vec<(f64, f64)>,
    /// From the heal of the faults to a settled system, ms, over seeds.
    pub time_to_consistency_ms: Percentiles,
    /// Per seed: share of orders whose effects ever disagreed.
    pub windowed_share: Estimate,
    /// Over orders that disagreed: for how long, ms.
    pub window_ms: Percentiles,
    /// Histogram of those windows: (upper bound ms, orders); the last
    /// bucket is open-ended, its bound `f64::MAX` (JSON has no infinity).
    pub window_histogram: Vec<(f64, u64)>,
    pub messages_per_order: Estimate,
    pub rpcs_per_order: Estimate,
    pub events_per_order: Estimate,
    pub compensations: u64,
    pub compensations_per_order: Estimate,
    pub false_compensations: u64,
    /// False compensations over all compensations (0 when none ran).
    pub false_compensation_share: f64,
    pub refunds: u64,
    pub refunded: u64,
    /// Records moved to a dead-letter topic.
    pub dead_letters: u64,
    pub coupons_issued: u64,
    pub coupon_value: u64,
    /// Confirmed orders per simulated second, from the first arrival to
    /// the last order's end.
    pub throughput_per_s: Estimate,
    pub lock_waits: u64,
    /// Per seed: lock wait per order, ms.
    pub lock_wait_ms_per_order: Estimate,
    /// Per seed, ∫ over time of orders disagreeing (order·s), and of what
    /// they hold: stock (unit·s), money (points and card, ·s), coupons (·s).
    pub exposure_orders: Estimate,
    pub exposure_stock: Estimate,
    pub exposure_money: Estimate,
    pub exposure_coupons: Estimate,
    /// Per seed: revenue of confirmed orders, and its loss against the same
    /// seed run without faults (a share of the fault-free revenue).
    pub revenue: Estimate,
    pub revenue_lost_share: Estimate,
    pub violations: Vec<ViolationCount>,
    /// Share of seeds with no violation.
    pub clean_share: f64,
}

/// One point of a fault-intensity curve.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    pub strategy: String,
    pub scale: f64,
    pub success_rate: Estimate,
    pub latency_p99_ms: f64,
    /// Violations (seeds) per 10,000 orders, and share of clean seeds.
    pub violations_per_10k_orders: f64,
    pub clean_share: f64,
}

/// One strategy with most orders crowding onto one hot product, and no
/// fault: what contention for the same rows costs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Contention {
    pub strategy: String,
    pub success_rate: Estimate,
    /// Confirmed orders per simulated second.
    pub throughput_per_s: Estimate,
    pub latency_p99_ms: f64,
    /// Prepares refused because another transaction held the rows, and the
    /// time coordinators waited for them, per order.
    pub lock_waits: u64,
    pub lock_wait_ms_per_order: Estimate,
}

/// One strategy with one service down for a while, and no other fault.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Availability {
    pub strategy: String,
    /// Orders submitted while the service was down, over all seeds.
    pub orders: u64,
    /// Of those: ended unconfirmed before the service came back.
    pub failed_fast_share: f64,
    /// Ended after the service came back.
    pub finished_late_share: f64,
    /// Confirmed before it came back.
    pub unaffected_share: f64,
    /// From the service's restart until every order submitted while it was
    /// down had ended, ms, over seeds.
    pub drain_ms: Percentiles,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompareResult {
    pub schema: String,
    pub scenario: String,
    pub description: String,
    /// First inclusive, last exclusive.
    pub seeds: [u64; 2],
    /// Every seed gave the same submissions under every strategy.
    pub same_workload: bool,
    pub strategies: Vec<StrategyReport>,
    /// The invariants, in the order of the heatmap's columns.
    pub invariants: Vec<String>,
    /// Fault scales the curves were measured at (1 is the scenario).
    pub fault_scales: Vec<f64>,
    pub curves: Vec<CurvePoint>,
    /// Per strategy: the highest fault scale measured with no violation,
    /// if any.
    pub frontier: Vec<(String, Option<f64>)>,
    /// The availability probe: which service was down, when, how long.
    pub outage_service: String,
    pub outage_at_ms: f64,
    pub outage_for_ms: f64,
    pub availability: Vec<Availability>,
    /// The contention probe: the share of orders that go for one hot
    /// product.
    pub hot_share: f64,
    pub contention: Vec<Contention>,
    /// Simulated runs made, and the wall time they took.
    pub total_runs: u64,
    pub wall_s: f64,
}
