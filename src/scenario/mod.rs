//! Scenarios: what one run is made of (workload, network, broker, PG,
//! faults, budgets), as a validated [`Scenario`] nothing downstream has to
//! re-check.
//!
//! A file states only what it changes: every field it leaves out is taken
//! from the built-in `default` scenario ([`BUILT_IN`], `builtin.rs`).
//! `parse.rs` reads the TOML and locates its errors; `validate.rs` checks
//! every field and builds the [`Scenario`]. A bad file gets an error naming
//! the file, line, column, field and what was expected. [`points`] names
//! the coverage points a scenario may expect.

mod builtin;
mod parse;
pub mod points;
mod validate;

pub use builtin::BUILT_IN;
pub use parse::ScenarioError;

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
    /// assertions; see `sagasim::scenario::points::POINTS`).
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
}
