//! Scenario files: parse the TOML, then validate it once into a
//! [`Scenario`] nothing downstream has to re-check.
//!
//! A file states only what it changes: every field it leaves out is taken from
//! the built-in `default` scenario. A bad file gets an error naming the file,
//! line, column, field and what was expected.

use std::fmt;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

/// The scenarios compiled into the binary: name, TOML text.
pub const BUILT_IN: &[(&str, &str)] = &[
    ("default", include_str!("../scenarios/default.toml")),
    ("calm", include_str!("../scenarios/calm.toml")),
    ("flash-sale", include_str!("../scenarios/flash-sale.toml")),
    ("pg-trouble", include_str!("../scenarios/pg-trouble.toml")),
    ("crash-storm", include_str!("../scenarios/crash-storm.toml")),
    ("coupon-rush", include_str!("../scenarios/coupon-rush.toml")),
    ("slow-network", include_str!("../scenarios/slow-network.toml")),
    ("saga-bench", include_str!("../scenarios/saga-bench.toml")),
];

/// A validated scenario. Times are in microseconds, probabilities in parts
/// per million.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    /// How `--scenario` named it: a built-in name or a path.
    pub origin: String,
    /// The factor its fault rates were scaled by (`--fault-scale`).
    pub fault_scale: f64,
    pub seeds: u64,
    /// Coverage points a sweep must hit in at least one seed ("sometimes"
    /// assertions; see `sagasim::coverage::POINTS`).
    pub expect: Vec<String>,
    pub fault_phase_us: u64,
    pub heal_budget_us: u64,
    pub step_budget: u64,
    pub workload: WorkloadSpec,
    pub network: NetworkSpec,
    pub client: ClientSpec,
    pub broker: BrokerSpec,
    pub pg: PgSpec,
    pub gateway: GatewaySpec,
    pub orchestration: OrchestrationSpec,
    pub faults: FaultSpec,
    pub availability: AvailabilitySpec,
    /// How long a service's handler holds its node, per request, timer or
    /// record: what reaches the node meanwhile waits.
    pub handler_us: u64,
    /// With several instances, how much longer a handler's commit may take
    /// than `handler_us`, drawn per handler: transactions then commit in
    /// another order than they staged their outbox rows.
    pub commit_us: u64,
    /// Instances per service, in [`domain::Service::ALL`] order (the
    /// payment gateway and the orchestrator run one).
    pub instances: [u16; 7],
}

/// The availability probe of `compare`: this service goes down at
/// `down_at_us` for `down_for_us`, with no other fault.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AvailabilitySpec {
    pub service: domain::Service,
    pub down_at_us: u64,
    pub down_for_us: u64,
}

pub type Range = (u64, u64);

#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadSpec {
    pub users: u64,
    pub balance: Range,
    pub products: u64,
    pub price: Range,
    pub stock: Range,
    pub orders: u64,
    pub quantity: Range,
    pub gap_us: Range,
    pub coupons_per_user: Range,
    pub coupon_discount: Range,
    /// Share of orders that use a coupon.
    pub coupon_ppm: u32,
    /// Points an order asks to spend.
    pub points: Range,
    /// Share of submissions the client sends twice (a double click).
    pub double_submit_ppm: u32,
    /// Share of submissions sent under an earlier submission's key with
    /// another payload (a buggy client).
    pub key_reuse_ppm: u32,
    /// The first `hot_products` products take `hot_ppm` of the orders.
    pub hot_products: u64,
    pub hot_ppm: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NetworkSpec {
    pub latency_us: Range,
    pub latency_mean_us: u64,
    pub loss_ppm: u32,
    pub duplicate_ppm: u32,
    pub delay_ppm: u32,
    pub delay_max_us: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ClientSpec {
    pub timeout_us: u64,
    pub backoff_base_us: u64,
    pub backoff_cap_us: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct BrokerSpec {
    pub partitions: u32,
    pub max_poll_records: u32,
    pub fetch_timeout_us: u64,
    /// Attempts at a record before it is dead-lettered.
    pub max_attempts: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PgSpec {
    pub timeout_us: u64,
    pub decline_ppm: u32,
    pub timeout_before_ppm: u32,
    pub timeout_after_ppm: u32,
    pub slow_ppm: u32,
    pub slow_max_us: u64,
    /// Refunds the gateway fails to make (nothing refunded; ask again).
    pub refund_fail_ppm: u32,
    /// A new charge settles within this long; meanwhile its key is "in
    /// progress".
    pub processing_max_us: u64,
    /// An accepted refund stays pending for up to this long.
    pub refund_pending_max_us: u64,
    /// How long the gateway keeps an idempotency key (0: for ever).
    pub key_retention_us: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct GatewaySpec {
    pub key_ttl_us: u64,
    pub in_progress_ttl_us: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct OrchestrationSpec {
    pub step_timeout_us: u64,
    pub give_up_after: u32,
    pub lock_retry_us: u64,
    pub lock_wait_max_us: u64,
    /// The value of the coupon a system-caused failure earns under the
    /// compensation-coupon strategy.
    pub apology_coupon: u64,
    /// Under ux-retry: how many times a declined payment is offered again,
    /// and how long the user takes to pay again.
    pub pay_again: u32,
    pub pay_again_after_us: u64,
    /// How often coordinators and Payment run their recovery pass.
    pub sweep_every_us: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FaultSpec {
    pub crashes: Range,
    pub crash_at_us: Range,
    pub restart_after_us: Range,
    pub partitions: Range,
    pub partition_at_us: Range,
    pub partition_for_us: Range,
    pub rebalances: Range,
    pub rebalance_at_us: Range,
    pub cache_flushes: Range,
    pub cache_flush_at_us: Range,
    pub poisons: Range,
    pub poison_at_us: Range,
    pub commit_fail_ppm: u32,
    pub commit_lost_ack_ppm: u32,
    pub commit_hang_ppm: u32,
    pub commit_hang_us: u64,
    pub broker_outages: Range,
    pub broker_outage_at_us: Range,
    pub broker_outage_for_us: Range,
    pub pauses: Range,
    pub pause_at_us: Range,
    pub pause_for_us: Range,
    pub one_way_partitions: Range,
    pub one_way_partition_at_us: Range,
    pub one_way_partition_for_us: Range,
    pub db_outages: Range,
    pub db_outage_at_us: Range,
    pub db_outage_for_us: Range,
    pub mark_sent_fail_ppm: u32,
    pub dead_letter_fail_ppm: u32,
    /// Share of the gateway's calls to its key cache that time out.
    pub cache_timeout_ppm: u32,
    /// Which nodes a crash may strike.
    pub crash_nodes: CrashNodes,
    /// Which links partitions and one-way partitions may cut.
    pub partition_links: PartitionLinks,
}

/// Which nodes a crash may strike (`faults.crash_nodes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrashNodes {
    /// Our services, and the orchestrator when one coordinates.
    pub services: bool,
    pub gateway: bool,
}

impl CrashNodes {
    const NAMES: [&'static str; 2] = ["services", "gateway"];
}

/// Which links partitions may cut (`faults.partition_links`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionLinks {
    /// Each service's link to the broker, or to the orchestrator when one
    /// coordinates.
    pub services: bool,
    /// The gateway's link to the entry service.
    pub gateway: bool,
    /// Payment's link to the payment gateway.
    pub pg: bool,
}

impl PartitionLinks {
    const NAMES: [&'static str; 3] = ["services", "gateway", "pg"];
}

/// The kinds of fault a scenario sets a rate or a count for: what
/// `--fault-scale` scales and what swarm testing switches on and off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    Loss,
    Duplicate,
    Delay,
    PgTimeoutBefore,
    PgTimeoutAfter,
    PgSlow,
    CommitFail,
    Crash,
    Partition,
    Rebalance,
    CacheFlush,
    Poison,
    BrokerOutage,
    Pause,
    CommitLostAck,
    CommitHang,
    OneWayPartition,
    DbOutage,
    MarkSentFail,
    DeadLetterFail,
    PgRefundFail,
    CacheTimeout,
}

impl FaultKind {
    /// Every kind, in the order swarm testing draws them (never reorder:
    /// that would change every seed's mix).
    pub const ALL: [FaultKind; 22] = [
        FaultKind::Loss,
        FaultKind::Duplicate,
        FaultKind::Delay,
        FaultKind::PgTimeoutBefore,
        FaultKind::PgTimeoutAfter,
        FaultKind::PgSlow,
        FaultKind::CommitFail,
        FaultKind::Crash,
        FaultKind::Partition,
        FaultKind::Rebalance,
        FaultKind::CacheFlush,
        FaultKind::Poison,
        FaultKind::BrokerOutage,
        FaultKind::Pause,
        FaultKind::CommitLostAck,
        FaultKind::CommitHang,
        FaultKind::OneWayPartition,
        FaultKind::DbOutage,
        FaultKind::MarkSentFail,
        FaultKind::DeadLetterFail,
        FaultKind::PgRefundFail,
        FaultKind::CacheTimeout,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Loss => "loss",
            FaultKind::Duplicate => "duplicate",
            FaultKind::Delay => "delay",
            FaultKind::PgTimeoutBefore => "pg-timeout-before",
            FaultKind::PgTimeoutAfter => "pg-timeout-after",
            FaultKind::PgSlow => "pg-slow",
            FaultKind::CommitFail => "commit-fail",
            FaultKind::Crash => "crash",
            FaultKind::Partition => "partition",
            FaultKind::Rebalance => "rebalance",
            FaultKind::CacheFlush => "cache-flush",
            FaultKind::Poison => "poison",
            FaultKind::BrokerOutage => "broker-outage",
            FaultKind::Pause => "pause",
            FaultKind::CommitLostAck => "commit-lost-ack",
            FaultKind::CommitHang => "commit-hang",
            FaultKind::OneWayPartition => "one-way-partition",
            FaultKind::DbOutage => "db-outage",
            FaultKind::MarkSentFail => "mark-sent-fail",
            FaultKind::DeadLetterFail => "dead-letter-fail",
            FaultKind::PgRefundFail => "pg-refund-fail",
            FaultKind::CacheTimeout => "cache-timeout",
        }
    }
}

/// What is wrong with a scenario file, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub field: String,
    pub expected: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: field `{}`: expected {}",
            self.file, self.line, self.column, self.field, self.expected
        )
    }
}

impl std::error::Error for ScenarioError {}

type S<T> = Option<Spanned<T>>;

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: S<String>,
    description: S<String>,
    #[serde(default)]
    run: RawRun,
    #[serde(default)]
    workload: RawWorkload,
    #[serde(default)]
    network: RawNetwork,
    #[serde(default)]
    client: RawClient,
    #[serde(default)]
    broker: RawBroker,
    #[serde(default)]
    pg: RawPg,
    #[serde(default)]
    gateway: RawGateway,
    #[serde(default)]
    orchestration: RawOrchestration,
    #[serde(default)]
    availability: RawAvailability,
    #[serde(default)]
    services: RawServices,
    #[serde(default)]
    faults: RawFaults,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawRun {
    seeds: S<u64>,
    expect: S<Vec<String>>,
    fault_phase_ms: S<u64>,
    heal_budget_ms: S<u64>,
    step_budget: S<u64>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawWorkload {
    users: S<u64>,
    balance: S<[u64; 2]>,
    products: S<u64>,
    price: S<[u64; 2]>,
    stock: S<[u64; 2]>,
    orders: S<u64>,
    quantity: S<[u64; 2]>,
    gap_ms: S<[u64; 2]>,
    coupons_per_user: S<[u64; 2]>,
    coupon_discount: S<[u64; 2]>,
    coupon_share: S<f64>,
    points: S<[u64; 2]>,
    double_submit: S<f64>,
    key_reuse: S<f64>,
    hot_products: S<u64>,
    hot_share: S<f64>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    latency_ms: S<[u64; 2]>,
    latency_mean_ms: S<f64>,
    loss: S<f64>,
    duplicate: S<f64>,
    delay: S<f64>,
    delay_max_ms: S<u64>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawClient {
    timeout_ms: S<u64>,
    backoff_base_ms: S<u64>,
    backoff_cap_ms: S<u64>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawBroker {
    partitions: S<u64>,
    max_poll_records: S<u64>,
    fetch_timeout_ms: S<u64>,
    max_attempts: S<u64>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawPg {
    timeout_ms: S<u64>,
    decline: S<f64>,
    timeout_before: S<f64>,
    timeout_after: S<f64>,
    slow: S<f64>,
    slow_max_ms: S<u64>,
    refund_fail: S<f64>,
    processing_max_ms: S<u64>,
    refund_pending_max_ms: S<u64>,
    key_retention_ms: S<u64>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawOrchestration {
    step_timeout_ms: S<u64>,
    give_up_after: S<u64>,
    lock_retry_ms: S<u64>,
    lock_wait_max_ms: S<u64>,
    apology_coupon: S<u64>,
    pay_again: S<u64>,
    pay_again_after_ms: S<u64>,
    sweep_every_ms: S<u64>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawServices {
    handler_ms: S<f64>,
    commit_ms: S<f64>,
    product_instances: S<u64>,
    order_instances: S<u64>,
    payment_instances: S<u64>,
    user_instances: S<u64>,
    platform_instances: S<u64>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawAvailability {
    service: S<String>,
    down_at_ms: S<u64>,
    down_for_ms: S<u64>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawGateway {
    key_ttl_ms: S<u64>,
    in_progress_ttl_ms: S<u64>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawFaults {
    crashes: S<[u64; 2]>,
    crash_at_ms: S<[u64; 2]>,
    restart_after_ms: S<[u64; 2]>,
    partitions: S<[u64; 2]>,
    partition_at_ms: S<[u64; 2]>,
    partition_for_ms: S<[u64; 2]>,
    rebalances: S<[u64; 2]>,
    rebalance_at_ms: S<[u64; 2]>,
    cache_flushes: S<[u64; 2]>,
    cache_flush_at_ms: S<[u64; 2]>,
    poisons: S<[u64; 2]>,
    poison_at_ms: S<[u64; 2]>,
    commit_fail: S<f64>,
    commit_lost_ack: S<f64>,
    commit_hang: S<f64>,
    commit_hang_ms: S<u64>,
    broker_outages: S<[u64; 2]>,
    broker_outage_at_ms: S<[u64; 2]>,
    broker_outage_for_ms: S<[u64; 2]>,
    pauses: S<[u64; 2]>,
    pause_at_ms: S<[u64; 2]>,
    pause_for_ms: S<[u64; 2]>,
    one_way_partitions: S<[u64; 2]>,
    one_way_partition_at_ms: S<[u64; 2]>,
    one_way_partition_for_ms: S<[u64; 2]>,
    db_outages: S<[u64; 2]>,
    db_outage_at_ms: S<[u64; 2]>,
    db_outage_for_ms: S<[u64; 2]>,
    mark_sent_fail: S<f64>,
    dead_letter_fail: S<f64>,
    cache_timeout: S<f64>,
    crash_nodes: S<Vec<String>>,
    partition_links: S<Vec<String>>,
}

/// Where a field's value came from: the user's file (with its span) or the
/// defaults.
type Span = Option<std::ops::Range<usize>>;

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
}

/// A field: the user's value, the default's, and the dotted name.
type Field<'a, T> = (&'a S<T>, &'a S<T>, &'static str);

const MS: u64 = 1_000;

impl Ctx<'_> {
    fn err(&self, span: &Span, field: &str, expected: impl Into<String>) -> ScenarioError {
        let (line, column) = span.as_ref().map_or((0, 0), |s| line_col(self.text, s.start));
        ScenarioError {
            file: self.file.to_string(),
            line,
            column,
            field: field.to_string(),
            expected: expected.into(),
        }
    }

    fn pick<T: Clone>(&self, user: &S<T>, default: &S<T>, field: &str) -> (T, Span) {
        match user {
            Some(v) => (v.get_ref().clone(), Some(v.span())),
            None => {
                let d =
                    default.as_ref().unwrap_or_else(|| panic!("the default scenario sets {field}"));
                (d.get_ref().clone(), None)
            }
        }
    }

    fn count(
        &self,
        (user, default, field): Field<'_, u64>,
        min: u64,
    ) -> Result<u64, ScenarioError> {
        let (v, span) = self.pick(user, default, field);
        if v < min {
            return Err(self.err(&span, field, format!("an integer of at least {min}, found {v}")));
        }
        Ok(v)
    }

    /// A count of milliseconds, in microseconds.
    fn ms(&self, f: Field<'_, u64>, min: u64) -> Result<u64, ScenarioError> {
        let (_, span) = self.pick(f.0, f.1, f.2);
        let v = self.count(f, min)?;
        v.checked_mul(MS).ok_or_else(|| self.err(&span, f.2, "a smaller number of milliseconds"))
    }

    /// The recovery pass's period: longer than the PG call timeout, since a
    /// call that has not moved between two passes is taken for stuck.
    fn sweep_every(&self, f: Field<'_, u64>, pg: Field<'_, u64>) -> Result<u64, ScenarioError> {
        let (pg_ms, _) = self.pick(pg.0, pg.1, pg.2);
        let (v, span) = self.pick(f.0, f.1, f.2);
        if v <= pg_ms {
            return Err(self.err(
                &span,
                f.2,
                format!(
                    "more milliseconds than pg.timeout_ms ({pg_ms}): a call that has not moved \
                     between two passes is taken for stuck; found {v}"
                ),
            ));
        }
        self.ms(f, 1)
    }

    /// Coverage points, each one `sagasim::coverage::POINTS` names.
    fn coverage_points(
        &self,
        (user, default, field): Field<'_, Vec<String>>,
    ) -> Result<Vec<String>, ScenarioError> {
        let (v, span) = self.pick(user, default, field);
        match v.iter().find(|p| crate::coverage::bit(p).is_none()) {
            Some(bad) => Err(self.err(
                &span,
                field,
                format!(
                    "coverage points from: {}; found {bad:?}",
                    crate::coverage::POINTS.join(", ")
                ),
            )),
            None => Ok(v),
        }
    }

    /// A non-empty list of names from `names`: which of them it holds.
    fn choice<const N: usize>(
        &self,
        (user, default, field): Field<'_, Vec<String>>,
        names: [&str; N],
    ) -> Result<[bool; N], ScenarioError> {
        let (v, span) = self.pick(user, default, field);
        let expected = || format!("a non-empty list of: {}", names.join(", "));
        if v.is_empty() {
            return Err(self.err(&span, field, format!("{}; found []", expected())));
        }
        let mut out = [false; N];
        for name in &v {
            match names.iter().position(|n| n == name) {
                Some(i) => out[i] = true,
                None => {
                    return Err(self.err(&span, field, format!("{}; found {name:?}", expected())))
                }
            }
        }
        Ok(out)
    }

    /// One of our services, by name.
    fn service(
        &self,
        (user, default, field): Field<'_, String>,
    ) -> Result<domain::Service, ScenarioError> {
        let (v, span) = self.pick(user, default, field);
        let ours = domain::Service::OURS;
        ours.iter().copied().find(|s| s.name() == v).ok_or_else(|| {
            let names: Vec<_> = ours.iter().map(|s| s.name()).collect();
            self.err(&span, field, format!("one of {}, found {v:?}", names.join(", ")))
        })
    }

    /// A service's instances: 1 to 8.
    fn instances(&self, f: Field<'_, u64>) -> Result<u16, ScenarioError> {
        let (v, span) = self.pick(f.0, f.1, f.2);
        match v {
            1..=8 => Ok(v as u16),
            _ => Err(self.err(&span, f.2, format!("between 1 and 8 instances, found {v}"))),
        }
    }

    fn small(&self, f: Field<'_, u64>, min: u64) -> Result<u32, ScenarioError> {
        let (_, span) = self.pick(f.0, f.1, f.2);
        u32::try_from(self.count(f, min)?).map_err(|_| self.err(&span, f.2, "a number below 2^32"))
    }

    fn range(
        &self,
        (user, default, field): Field<'_, [u64; 2]>,
        scale: u64,
    ) -> Result<Range, ScenarioError> {
        let ([lo, hi], span) = self.pick(user, default, field);
        if lo > hi {
            let e = format!("a range [low, high] with low <= high, found [{lo}, {hi}]");
            return Err(self.err(&span, field, e));
        }
        let big = || self.err(&span, field, "smaller numbers");
        Ok((lo.checked_mul(scale).ok_or_else(big)?, hi.checked_mul(scale).ok_or_else(big)?))
    }

    fn probability(&self, (user, default, field): Field<'_, f64>) -> Result<u32, ScenarioError> {
        let (p, span) = self.pick(user, default, field);
        if !(0.0..=1.0).contains(&p) {
            return Err(self.err(
                &span,
                field,
                format!("a probability between 0 and 1, found {p}"),
            ));
        }
        Ok((p * 1_000_000.0).round() as u32)
    }

    /// A non-negative number of milliseconds, fractions allowed, in
    /// microseconds.
    fn ms_f64(&self, (user, default, field): Field<'_, f64>) -> Result<u64, ScenarioError> {
        let (v, span) = self.pick(user, default, field);
        if !(0.0..1e9).contains(&v) {
            return Err(self.err(
                &span,
                field,
                format!("a non-negative number of milliseconds, found {v}"),
            ));
        }
        Ok((v * 1000.0).round() as u64)
    }

    /// The latency range and its mean, in microseconds; the mean may not lie
    /// below the minimum.
    fn network(
        &self,
        range: Field<'_, [u64; 2]>,
        mean: Field<'_, f64>,
    ) -> Result<(Range, u64), ScenarioError> {
        let latency = self.range(range, MS)?;
        let mean_us = self.ms_f64(mean)?;
        if mean_us < latency.0 {
            let (_, span) = self.pick(mean.0, mean.1, mean.2);
            let e = "a mean latency no lower than the minimum of network.latency_ms";
            return Err(self.err(&span, mean.2, e));
        }
        Ok((latency, mean_us))
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

/// The dotted name of the key on the line holding `offset`
/// (`network.loss`), found from the text since a TOML error only has a span.
fn key_at(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next().unwrap_or("");
    let key = line.split('=').next().unwrap_or("").trim().trim_matches(['[', ']']).trim();
    let section = text[..start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(['[', ']']).trim().to_string());
    match section {
        Some(s) if !line.trim_start().starts_with('[') && !key.is_empty() => format!("{s}.{key}"),
        _ => key.to_string(),
    }
}

/// Turn a TOML/serde message ("invalid type: string \"x\", expected u64")
/// into what was expected and what was found.
fn expectation(message: &str) -> String {
    let message = message.trim().replace('\n', "; ");
    let plain = |t: &str| match t {
        "u64" | "u32" => "a non-negative integer".to_string(),
        "f64" => "a number".to_string(),
        "an array of length 2" => "a range [low, high]".to_string(),
        other => other.to_string(),
    };
    match message.split_once(", expected ") {
        Some((found, exp)) => format!("{}; found {found}", plain(exp)),
        None => format!("valid TOML ({message})"),
    }
}

fn parse_raw(text: &str, file: &str) -> Result<Raw, ScenarioError> {
    toml::from_str::<Raw>(text).map_err(|e| {
        let span = e.span();
        let field = span.as_ref().map_or_else(String::new, |s| key_at(text, s.start));
        let expected = expectation(e.message());
        Ctx { file, text }.err(&span, &field, expected)
    })
}

fn default_raw() -> Raw {
    parse_raw(BUILT_IN[0].1, "built-in default").expect("the built-in default scenario parses")
}

impl Scenario {
    /// The scenario with every fault rate and fault count scaled by
    /// `scale` (0: no fault at all). Card declines are the customer's, not
    /// faults, and stay as they are; so do the workload's double submits.
    pub fn scaled(&self, scale: f64) -> Scenario {
        let mut s = self.clone();
        for kind in FaultKind::ALL {
            s.scale_kind(kind, scale);
        }
        s.fault_scale = self.fault_scale * scale;
        if scale != 1.0 {
            s.name = format!("{}×{scale}", self.name);
        }
        s
    }

    /// Scale one kind of fault's rate or count by `scale`.
    pub fn scale_kind(&mut self, kind: FaultKind, scale: f64) {
        let ppm = |p: &mut u32| *p = ((*p as f64 * scale).round() as u64).min(1_000_000) as u32;
        let count = |(lo, hi): &mut Range| {
            (*lo, *hi) = ((*lo as f64 * scale).floor() as u64, (*hi as f64 * scale).ceil() as u64)
        };
        let (n, pg, f) = (&mut self.network, &mut self.pg, &mut self.faults);
        match kind {
            FaultKind::Loss => ppm(&mut n.loss_ppm),
            FaultKind::Duplicate => ppm(&mut n.duplicate_ppm),
            FaultKind::Delay => ppm(&mut n.delay_ppm),
            FaultKind::PgTimeoutBefore => ppm(&mut pg.timeout_before_ppm),
            FaultKind::PgTimeoutAfter => ppm(&mut pg.timeout_after_ppm),
            FaultKind::PgSlow => ppm(&mut pg.slow_ppm),
            FaultKind::CommitFail => ppm(&mut f.commit_fail_ppm),
            FaultKind::Crash => count(&mut f.crashes),
            FaultKind::Partition => count(&mut f.partitions),
            FaultKind::Rebalance => count(&mut f.rebalances),
            FaultKind::CacheFlush => count(&mut f.cache_flushes),
            FaultKind::Poison => count(&mut f.poisons),
            FaultKind::BrokerOutage => count(&mut f.broker_outages),
            FaultKind::Pause => count(&mut f.pauses),
            FaultKind::CommitLostAck => ppm(&mut f.commit_lost_ack_ppm),
            FaultKind::CommitHang => ppm(&mut f.commit_hang_ppm),
            FaultKind::OneWayPartition => count(&mut f.one_way_partitions),
            FaultKind::DbOutage => count(&mut f.db_outages),
            FaultKind::MarkSentFail => ppm(&mut f.mark_sent_fail_ppm),
            FaultKind::DeadLetterFail => ppm(&mut f.dead_letter_fail_ppm),
            FaultKind::PgRefundFail => ppm(&mut pg.refund_fail_ppm),
            FaultKind::CacheTimeout => ppm(&mut f.cache_timeout_ppm),
        }
    }

    /// Load a built-in scenario by name, or a file by path.
    pub fn load(name_or_path: &str) -> Result<Scenario, ScenarioError> {
        if let Some((_, text)) = BUILT_IN.iter().find(|(n, _)| *n == name_or_path) {
            return Scenario::parse(text, name_or_path, name_or_path);
        }
        let path = Path::new(name_or_path);
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            file: name_or_path.to_string(),
            line: 0,
            column: 0,
            field: "(file)".to_string(),
            expected: format!(
                "a built-in scenario name ({}) or a readable TOML file: {e}",
                BUILT_IN.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
            ),
        })?;
        Scenario::parse(&text, name_or_path, name_or_path)
    }

    /// Parse and validate scenario text; `file` names it in errors.
    pub fn parse(text: &str, file: &str, origin: &str) -> Result<Scenario, ScenarioError> {
        let raw = parse_raw(text, file)?;
        let d = default_raw();
        let cx = Ctx { file, text };
        // A field of the user's file, its default, and its dotted name.
        macro_rules! f {
            ($section:ident . $field:ident) => {
                (
                    &raw.$section.$field,
                    &d.$section.$field,
                    concat!(stringify!($section), ".", stringify!($field)),
                )
            };
        }
        let (name, _) = cx.pick(&raw.name, &d.name, "name");
        let (description, _) = cx.pick(&raw.description, &d.description, "description");
        let network = cx.network(f!(network.latency_ms), f!(network.latency_mean_ms))?;
        Ok(Scenario {
            name,
            description,
            origin: origin.to_string(),
            fault_scale: 1.0,
            seeds: cx.count(f!(run.seeds), 1)?,
            expect: cx.coverage_points(f!(run.expect))?,
            fault_phase_us: cx.ms(f!(run.fault_phase_ms), 0)?,
            heal_budget_us: cx.ms(f!(run.heal_budget_ms), 1)?,
            step_budget: cx.count(f!(run.step_budget), 1)?,
            workload: WorkloadSpec {
                users: cx.count(f!(workload.users), 1)?,
                balance: cx.range(f!(workload.balance), 1)?,
                products: cx.count(f!(workload.products), 1)?,
                price: cx.range(f!(workload.price), 1)?,
                stock: cx.range(f!(workload.stock), 1)?,
                orders: cx.count(f!(workload.orders), 0)?,
                quantity: cx.range(f!(workload.quantity), 1)?,
                gap_us: cx.range(f!(workload.gap_ms), MS)?,
                coupons_per_user: cx.range(f!(workload.coupons_per_user), 1)?,
                coupon_discount: cx.range(f!(workload.coupon_discount), 1)?,
                coupon_ppm: cx.probability(f!(workload.coupon_share))?,
                points: cx.range(f!(workload.points), 1)?,
                double_submit_ppm: cx.probability(f!(workload.double_submit))?,
                key_reuse_ppm: cx.probability(f!(workload.key_reuse))?,
                hot_products: cx.count(f!(workload.hot_products), 0)?,
                hot_ppm: cx.probability(f!(workload.hot_share))?,
            },
            network: NetworkSpec {
                latency_us: network.0,
                latency_mean_us: network.1,
                loss_ppm: cx.probability(f!(network.loss))?,
                duplicate_ppm: cx.probability(f!(network.duplicate))?,
                delay_ppm: cx.probability(f!(network.delay))?,
                delay_max_us: cx.ms(f!(network.delay_max_ms), 1)?,
            },
            client: ClientSpec {
                timeout_us: cx.ms(f!(client.timeout_ms), 1)?,
                backoff_base_us: cx.ms(f!(client.backoff_base_ms), 0)?,
                backoff_cap_us: cx.ms(f!(client.backoff_cap_ms), 0)?,
            },
            broker: BrokerSpec {
                partitions: cx.small(f!(broker.partitions), 1)?,
                max_poll_records: cx.small(f!(broker.max_poll_records), 1)?,
                fetch_timeout_us: cx.ms(f!(broker.fetch_timeout_ms), 1)?,
                max_attempts: cx.small(f!(broker.max_attempts), 1)?,
            },
            pg: PgSpec {
                timeout_us: cx.ms(f!(pg.timeout_ms), 1)?,
                decline_ppm: cx.probability(f!(pg.decline))?,
                timeout_before_ppm: cx.probability(f!(pg.timeout_before))?,
                timeout_after_ppm: cx.probability(f!(pg.timeout_after))?,
                slow_ppm: cx.probability(f!(pg.slow))?,
                slow_max_us: cx.ms(f!(pg.slow_max_ms), 0)?,
                refund_fail_ppm: cx.probability(f!(pg.refund_fail))?,
                processing_max_us: cx.ms(f!(pg.processing_max_ms), 0)?,
                refund_pending_max_us: cx.ms(f!(pg.refund_pending_max_ms), 0)?,
                key_retention_us: cx.ms(f!(pg.key_retention_ms), 0)?,
            },
            gateway: GatewaySpec {
                key_ttl_us: cx.ms(f!(gateway.key_ttl_ms), 1)?,
                in_progress_ttl_us: cx.ms(f!(gateway.in_progress_ttl_ms), 1)?,
            },
            orchestration: OrchestrationSpec {
                step_timeout_us: cx.ms(f!(orchestration.step_timeout_ms), 1)?,
                give_up_after: cx.small(f!(orchestration.give_up_after), 1)?,
                lock_retry_us: cx.ms(f!(orchestration.lock_retry_ms), 1)?,
                lock_wait_max_us: cx.ms(f!(orchestration.lock_wait_max_ms), 1)?,
                apology_coupon: cx.count(f!(orchestration.apology_coupon), 1)?,
                pay_again: cx.small(f!(orchestration.pay_again), 0)?,
                pay_again_after_us: cx.ms(f!(orchestration.pay_again_after_ms), 0)?,
                sweep_every_us: cx
                    .sweep_every(f!(orchestration.sweep_every_ms), f!(pg.timeout_ms))?,
            },
            faults: FaultSpec {
                crashes: cx.range(f!(faults.crashes), 1)?,
                crash_at_us: cx.range(f!(faults.crash_at_ms), MS)?,
                restart_after_us: cx.range(f!(faults.restart_after_ms), MS)?,
                partitions: cx.range(f!(faults.partitions), 1)?,
                partition_at_us: cx.range(f!(faults.partition_at_ms), MS)?,
                partition_for_us: cx.range(f!(faults.partition_for_ms), MS)?,
                rebalances: cx.range(f!(faults.rebalances), 1)?,
                rebalance_at_us: cx.range(f!(faults.rebalance_at_ms), MS)?,
                cache_flushes: cx.range(f!(faults.cache_flushes), 1)?,
                cache_flush_at_us: cx.range(f!(faults.cache_flush_at_ms), MS)?,
                poisons: cx.range(f!(faults.poisons), 1)?,
                poison_at_us: cx.range(f!(faults.poison_at_ms), MS)?,
                commit_fail_ppm: cx.probability(f!(faults.commit_fail))?,
                commit_lost_ack_ppm: cx.probability(f!(faults.commit_lost_ack))?,
                commit_hang_ppm: cx.probability(f!(faults.commit_hang))?,
                commit_hang_us: cx.ms(f!(faults.commit_hang_ms), 1)?,
                broker_outages: cx.range(f!(faults.broker_outages), 1)?,
                broker_outage_at_us: cx.range(f!(faults.broker_outage_at_ms), MS)?,
                broker_outage_for_us: cx.range(f!(faults.broker_outage_for_ms), MS)?,
                pauses: cx.range(f!(faults.pauses), 1)?,
                pause_at_us: cx.range(f!(faults.pause_at_ms), MS)?,
                pause_for_us: cx.range(f!(faults.pause_for_ms), MS)?,
                one_way_partitions: cx.range(f!(faults.one_way_partitions), 1)?,
                one_way_partition_at_us: cx.range(f!(faults.one_way_partition_at_ms), MS)?,
                one_way_partition_for_us: cx.range(f!(faults.one_way_partition_for_ms), MS)?,
                db_outages: cx.range(f!(faults.db_outages), 1)?,
                db_outage_at_us: cx.range(f!(faults.db_outage_at_ms), MS)?,
                db_outage_for_us: cx.range(f!(faults.db_outage_for_ms), MS)?,
                mark_sent_fail_ppm: cx.probability(f!(faults.mark_sent_fail))?,
                dead_letter_fail_ppm: cx.probability(f!(faults.dead_letter_fail))?,
                cache_timeout_ppm: cx.probability(f!(faults.cache_timeout))?,
                crash_nodes: {
                    let [services, gateway] =
                        cx.choice(f!(faults.crash_nodes), CrashNodes::NAMES)?;
                    CrashNodes { services, gateway }
                },
                partition_links: {
                    let [services, gateway, pg] =
                        cx.choice(f!(faults.partition_links), PartitionLinks::NAMES)?;
                    PartitionLinks { services, gateway, pg }
                },
            },
            handler_us: cx.ms_f64(f!(services.handler_ms))?,
            commit_us: cx.ms_f64(f!(services.commit_ms))?,
            instances: [
                cx.instances(f!(services.product_instances))?,
                cx.instances(f!(services.order_instances))?,
                cx.instances(f!(services.payment_instances))?,
                cx.instances(f!(services.user_instances))?,
                1,
                cx.instances(f!(services.platform_instances))?,
                1,
            ],
            availability: AvailabilitySpec {
                service: cx.service(f!(availability.service))?,
                down_at_us: cx.ms(f!(availability.down_at_ms), 0)?,
                down_for_us: cx.ms(f!(availability.down_for_ms), 1)?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_built_in_scenario_is_valid() {
        for (name, text) in BUILT_IN {
            let s = Scenario::parse(text, name, name).expect("valid");
            assert_eq!(&s.name, name);
            assert!(!s.description.is_empty());
        }
        let d = Scenario::load("default").expect("default");
        assert_eq!(d.workload.orders, 200);
        assert_eq!(d.network.loss_ppm, 10_000);
        assert_eq!(d.network.latency_mean_us, 4_300);
    }

    #[test]
    fn an_empty_file_is_the_default_scenario() {
        let d = Scenario::load("default").expect("default");
        let e = Scenario::parse("", "empty.toml", "default").expect("empty is valid");
        assert_eq!(e, d);
    }

    proptest! {
        /// Values written in a file are the values the scenario has.
        #[test]
        fn written_values_are_read_back(
            orders in 0u64..10_000,
            lo in 0u64..1_000, span in 0u64..1_000,
            loss in 0u32..=1_000_000,
            partitions in 1u64..64,
        ) {
            let text = format!(
                "[workload]\norders = {orders}\nprice = [{lo}, {}]\n[network]\nloss = {}\n[broker]\npartitions = {partitions}\n",
                lo + span, loss as f64 / 1e6
            );
            let s = Scenario::parse(&text, "t.toml", "t.toml").expect("valid");
            prop_assert_eq!(s.workload.orders, orders);
            prop_assert_eq!(s.workload.price, (lo, lo + span));
            prop_assert_eq!(s.network.loss_ppm, loss);
            prop_assert_eq!(s.broker.partitions, partitions as u32);
        }

        /// Scaling faults scales every fault and nothing else: ×0 leaves
        /// none, ×1 is the scenario, and more scale never means fewer
        /// faults.
        #[test]
        fn fault_scales_are_monotone(a in 0.0f64..8.0, b in 0.0f64..8.0, which in 0usize..7) {
            let (name, _) = BUILT_IN[which];
            let s = Scenario::load(name).expect("built in");
            prop_assert_eq!(&s.scaled(1.0), &s);
            let none = s.scaled(0.0);
            let f = &none.faults;
            for r in [f.crashes, f.partitions, f.rebalances, f.cache_flushes, f.poisons, f.broker_outages, f.pauses] {
                prop_assert_eq!(r, (0, 0));
            }
            prop_assert_eq!((none.network.loss_ppm, none.pg.timeout_after_ppm, f.commit_fail_ppm), (0, 0, 0));
            prop_assert_eq!(none.pg.decline_ppm, s.pg.decline_ppm);
            prop_assert_eq!(&none.workload, &s.workload);
            let (lo, hi) = (s.scaled(a.min(b)), s.scaled(a.max(b)));
            prop_assert!(lo.faults.crashes.1 <= hi.faults.crashes.1);
            prop_assert!(lo.faults.partitions.0 <= hi.faults.partitions.0);
            prop_assert!(lo.network.duplicate_ppm <= hi.network.duplicate_ppm);
            prop_assert!(lo.pg.slow_ppm <= hi.pg.slow_ppm);
            prop_assert_eq!(hi.fault_scale, a.max(b));
        }

        /// An invalid value is reported at its own line and field, wherever
        /// it stands in the file.
        #[test]
        fn an_invalid_value_is_reported_where_it_stands(
            padding in 0usize..20,
            which in 0usize..11,
        ) {
            let (section, key, value) = [
                ("network", "loss", "2.0"),
                ("faults", "crash_at_ms", "[9, 3]"),
                ("workload", "users", "0"),
                ("broker", "fetch_timeout_ms", "\"soon\""),
                ("client", "retries", "3"),
                ("availability", "service", "\"coupons\""),
                ("orchestration", "sweep_every_ms", "200"),
                ("services", "user_instances", "9"),
                ("services", "product_instances", "0"),
                ("services", "handler_ms", "-1.0"),
                ("services", "commit_ms", "\"slow\""),
            ][which];
            let text = format!("{}[{section}]\n{key} = {value}\n", "# comment\n".repeat(padding));
            let e = Scenario::parse(&text, "bad.toml", "bad.toml").expect_err("invalid");
            prop_assert_eq!(e.line, padding + 2);
            prop_assert_eq!(e.field, format!("{section}.{key}"));
            prop_assert_eq!(e.file.as_str(), "bad.toml");
            prop_assert!(!e.expected.is_empty());
        }
    }
}
