//! The harness: builds one run of the domain on the kernel from a scenario,
//! a strategy, a planted bug and a seed, runs it, and reports what happened.

pub mod app;
pub mod explore;
pub mod live;
pub mod ports;
pub mod workload;

use std::cell::RefCell;

use domain::client::{Client, RetryPolicy};
use domain::ids::IdMap;
use domain::message::Refusal;
use domain::meter::Measures;
use domain::monolith::MonolithTables;
use domain::order::{Coupon, CouponState, OrderTables};
use domain::payment::PaymentTables;
use domain::pg::PgFaults;
use domain::platform::PlatformTables;
use domain::product::ProductTables;
use domain::user::UserTables;
use domain::workload::IssuedCoupon;
use domain::{Bug, Checker, Safety, Service, Store, Strategy, Tables, Topic, Violation};
use sim::broker::{BrokerOptions, Buffers};
use sim::fault::{draw_schedule, ScheduleOptions};
use sim::net::NetOptions;
use sim::seed::{Purpose, Stream};
use sim::world::Stats;
use sim::{Database, End, FaultRecord, KernelOptions, NodeId, Phases, Role, Sim};

use crate::scenario::Scenario;
pub use app::{Coverage, Nodes, SagaApp};
pub use domain::node::{Settings, Vol};
use explore::Explore;

/// One run to make.
#[derive(Clone, Copy, Debug)]
pub struct RunSpec<'a> {
    pub scenario: &'a Scenario,
    pub strategy: Strategy,
    pub bug: Option<Bug>,
    pub seed: u64,
    /// Keep readable trace lines.
    pub trace: bool,
    /// Check invariants after every step; off only to measure their cost.
    pub per_step_checks: bool,
    /// A service to take down for a while (the availability probe).
    pub outage: Option<crate::scenario::AvailabilitySpec>,
    /// The fault decisions allowed to strike (shrinking); `None`: all.
    pub fault_mask: Option<&'a std::collections::BTreeSet<u64>>,
    /// The submissions kept, by their index in the drawn workload
    /// (shrinking); `None`: all.
    pub arrivals: Option<&'a std::collections::BTreeSet<u64>>,
    /// Swarm testing and the scheduling strategy.
    pub explore: Explore,
    /// A recorded fault plan to follow before the seed (best-effort replay).
    pub follow: Option<&'a sim::Follow>,
}

impl<'a> RunSpec<'a> {
    /// A run of the scenario as written (no swarm, seeded order; the
    /// command line turns swarm on), with per-step checks on and no trace.
    pub fn new(
        scenario: &'a Scenario,
        strategy: Strategy,
        bug: Option<Bug>,
        seed: u64,
    ) -> RunSpec<'a> {
        RunSpec {
            scenario,
            strategy,
            bug,
            seed,
            trace: false,
            per_step_checks: true,
            outage: None,
            fault_mask: None,
            arrivals: None,
            explore: Explore::AS_WRITTEN,
            follow: None,
        }
    }
}

pub use reports::Outcomes;

#[derive(Debug)]
pub struct RunReport {
    pub seed: u64,
    pub digest: u64,
    pub end: End,
    pub violation: Option<Violation>,
    /// The last step taken: for a violation, the step that broke it.
    pub step: u64,
    pub time_us: u64,
    /// When the faults healed; `None` if the run stopped before.
    pub heal_at_us: Option<u64>,
    pub stats: Stats,
    pub faults: Vec<FaultRecord>,
    pub trace: Vec<sim::TraceRecord>,
    pub outcomes: Outcomes,
    pub coverage: Coverage,
    /// Orders refused for a cause the system owns: a stock-out, or a step
    /// that never answered.
    pub system_failures: u64,
    /// What the run measured beyond pass or fail.
    pub measures: Measures,
    /// Submissions the client made, those whose final answer was a refusal
    /// or never came, and a digest of their arrival times and requests (the
    /// same for every strategy on one seed).
    pub submissions: u64,
    pub user_failures: u64,
    pub workload_digest: u64,
    /// Following a recording: where it stopped applying, if it did.
    pub divergence: Option<sim::Divergence>,
}

fn kernel_options(spec: &RunSpec<'_>, s: &Scenario, safety: &Safety) -> KernelOptions {
    let trace = spec.trace;
    KernelOptions {
        net: NetOptions {
            latency_min_us: s.network.latency_us.0,
            latency_max_us: s.network.latency_us.1,
            latency_mean_extra_us: s.network.latency_mean_us - s.network.latency_us.0,
            loss_ppm: s.network.loss_ppm,
            duplicate_ppm: s.network.duplicate_ppm,
            delay_ppm: s.network.delay_ppm,
            delay_max_us: s.network.delay_max_us,
        },
        broker: BrokerOptions {
            partitions: s.broker.partitions,
            max_poll_records: s.broker.max_poll_records,
            fetch_timeout_us: s.broker.fetch_timeout_us,
        },
        trace_lines: trace,
        commit_fail_ppm: s.faults.commit_fail_ppm,
        commit_lost_ack_ppm: s.faults.commit_lost_ack_ppm,
        commit_hang_ppm: s.faults.commit_hang_ppm,
        commit_hang_us: s.faults.commit_hang_us,
        service_us: s.handler_us,
        mark_sent_fail_ppm: s.faults.mark_sent_fail_ppm,
        dead_letter_fail_ppm: s.faults.dead_letter_fail_ppm,
        max_attempts: safety.dead_letter.then_some(s.broker.max_attempts),
        commit_before_process: !safety.commit_after_process,
        relay_high_water: !safety.relay_scans_pending,
        commit_us: s.commit_us,
        fault_mask: spec.fault_mask.cloned(),
        follow: spec.follow.cloned(),
        schedule: spec.explore.schedule,
        schedule_horizon_us: s.fault_phase_us,
        ..KernelOptions::default()
    }
}

fn schedule_options(s: &Scenario, strategy: Strategy, n: &Nodes) -> ScheduleOptions {
    let f = &s.faults;
    let mut ours: Vec<NodeId> = Service::OURS.iter().flat_map(|&x| n.all(x)).collect();
    ours.dedup();
    // The data platform's ingester is ours to break only when it runs as
    // several instances (one consumer group): then each may crash or pause.
    if n.instances[Service::Platform as usize] > 1 {
        ours.extend(n.all(Service::Platform));
    }
    // Who talks to whom: services to the broker, or the orchestrator to
    // each service; the gateway to the entry; Payment to the PG. The
    // scenario says which of these partitions may cut.
    let (cut, mut links) = (f.partition_links, Vec::new());
    if cut.services {
        links.extend(ours.iter().filter_map(|&x| match strategy {
            Strategy::Choreography => Some((x, n.broker)),
            Strategy::Monolith => None,
            _ => Some((x, n.of(Service::Orchestrator))),
        }));
    }
    let entry = n.service_of(n.entry).expect("the entry is a service");
    if cut.gateway {
        links.extend(n.all(entry).map(|e| (n.gateway, e)));
    }
    if cut.pg {
        links.extend(n.all(Service::Payment).map(|p| (p, n.of(Service::Pg))));
    }
    if strategy.coordinated() {
        ours.push(n.of(Service::Orchestrator));
    }
    let mut crash_targets = if f.crash_nodes.services { ours.clone() } else { Vec::new() };
    if f.crash_nodes.gateway {
        crash_targets.push(n.gateway);
    }
    ScheduleOptions {
        crashes: f.crashes,
        crash_at_us: f.crash_at_us,
        restart_after_us: f.restart_after_us,
        crash_targets,
        partitions: f.partitions,
        partition_at_us: f.partition_at_us,
        partition_for_us: f.partition_for_us,
        partition_targets: links,
        rebalances: f.rebalances,
        rebalance_at_us: f.rebalance_at_us,
        rebalance_targets: ours.clone(),
        flushes: f.cache_flushes,
        flush_at_us: f.cache_flush_at_us,
        flush_targets: vec![n.cache],
        outages: f.broker_outages,
        outage_at_us: f.broker_outage_at_us,
        outage_for_us: f.broker_outage_for_us,
        outage_targets: vec![n.broker],
        pauses: f.pauses,
        pause_at_us: f.pause_at_us,
        pause_for_us: f.pause_for_us,
        pause_targets: ours.clone(),
        one_ways: f.one_way_partitions,
        one_way_at_us: f.one_way_partition_at_us,
        one_way_for_us: f.one_way_partition_for_us,
        db_outages: f.db_outages,
        db_outage_at_us: f.db_outage_at_us,
        db_outage_for_us: f.db_outage_for_us,
        db_outage_targets: ours.clone(),
    }
}

fn initial_tables(service: Service, strategy: Strategy, w: &domain::Workload) -> Store {
    let coupon = |c: &IssuedCoupon| Coupon {
        user: c.user,
        discount: c.discount,
        state: CouponState::Issued,
        order: None,
    };
    // Tables keyed by order id get room for every order up front, rather
    // than being copied into larger ones as they fill.
    let n = w.arrivals.len();
    Store::new(match service {
        Service::Product => Tables::Product(ProductTables {
            reservations: IdMap::with_capacity(n),
            ..ProductTables::new(w.products.clone())
        }),
        Service::Order => Tables::Order(OrderTables {
            orders: IdMap::with_capacity(n),
            coupons: w.coupons.iter().map(coupon).collect(),
            ..Default::default()
        }),
        Service::Payment => Tables::Payment(PaymentTables::with_capacity(n)),
        Service::User => Tables::User(UserTables {
            balances: w.balances.clone(),
            decided: IdMap::with_capacity(n),
        }),
        Service::Pg => Tables::Pg(Default::default()),
        Service::Platform => Tables::Platform(PlatformTables { orders: IdMap::with_capacity(n) }),
        Service::Orchestrator if strategy == Strategy::TwoPhaseCommit => {
            Tables::Xa(Default::default())
        }
        Service::Orchestrator => Tables::Saga(Default::default()),
    })
}

/// Add a node per instance of each service the strategy runs. The monolith
/// is one node that every service's name maps to; only the PG stays
/// outside it.
fn add_services(
    sim: &mut Sim<SagaApp>,
    n: &mut Nodes,
    s: &Scenario,
    strategy: Strategy,
    safety: &Safety,
    w: &domain::Workload,
) {
    let own = match strategy {
        Strategy::Choreography => &Service::ALL[..6],
        Strategy::Monolith => &[Service::Pg][..],
        _ => &Service::ALL[..],
    };
    for &svc in own {
        let mut store = initial_tables(svc, strategy, w);
        store.unique_inbox = safety.unique_inbox;
        let db = Database::new(store, Store::apply);
        let first = sim.add_node(svc.name(), Role::Service, Some(db));
        n.services[svc as usize] = first;
        n.instances[svc as usize] = 1;
        // The data platform runs several ingest consumers only where it
        // consumes (the choreography); elsewhere it is called, at one node.
        let many = match svc {
            Service::Platform => strategy == Strategy::Choreography,
            _ => strategy != Strategy::Monolith,
        };
        if many {
            for i in 2..=s.instances[svc as usize] {
                sim.add_instance(&format!("{}-{i}", svc.name()), first);
                n.instances[svc as usize] = i;
            }
        }
    }
    if strategy == Strategy::Monolith {
        let take = |svc| initial_tables(svc, strategy, w).tables;
        let (Tables::Product(product), Tables::Order(order), Tables::User(user)) =
            (take(Service::Product), take(Service::Order), take(Service::User))
        else {
            unreachable!("initial tables match their service")
        };
        let m = MonolithTables { product, order, user, ..MonolithTables::default() };
        let db = Database::new(Store::new(Tables::Monolith(Box::new(m))), Store::apply);
        let node = sim.add_node("monolith", Role::Service, Some(db));
        for svc in Service::ALL.into_iter().filter(|s| *s != Service::Pg) {
            n.services[svc as usize] = node;
            n.instances[svc as usize] = 1;
        }
    }
}

/// Poison records: when, and on which topic. Drawn from the fault stream
/// after the scheduled faults.
fn draw_poisons(s: &Scenario, stream: &mut Stream) -> Vec<(u64, Topic)> {
    let f = &s.faults;
    (0..stream.range(f.poisons.0, f.poisons.1))
        .map(|_| {
            let at = stream.range(f.poison_at_us.0, f.poison_at_us.1).max(1);
            (at, Topic::ALL[stream.range(0, Topic::ALL.len() as u64 - 2) as usize])
        })
        .collect()
}

/// The client's retry policy a scenario sets.
pub fn retry_policy(s: &Scenario) -> RetryPolicy {
    RetryPolicy {
        timeout_us: s.client.timeout_us,
        backoff_base_us: s.client.backoff_base_us,
        backoff_cap_us: s.client.backoff_cap_us,
    }
}

/// The settings of the system under test, for a scenario, a strategy and a
/// planted bug: the same in the simulation and live.
pub fn settings(s: &Scenario, strategy: Strategy, bug: Option<Bug>) -> Settings {
    let o = &s.orchestration;
    Settings {
        strategy,
        safety: Safety::with(bug),
        step_timeout_us: o.step_timeout_us,
        give_up_after: o.give_up_after,
        lock_retry_us: o.lock_retry_us,
        lock_wait_max_us: o.lock_wait_max_us,
        policy: domain::orchestrator::Policy {
            apology: match strategy {
                Strategy::CompensationCoupon => o.apology_coupon,
                _ => 0,
            },
            pay_again: match strategy {
                Strategy::UxRetry => o.pay_again,
                _ => 0,
            },
        },
        pay_again_after_us: o.pay_again_after_us,
        sweep_every_us: o.sweep_every_us,
        pg: PgFaults {
            decline_ppm: s.pg.decline_ppm,
            timeout_before_ppm: s.pg.timeout_before_ppm,
            timeout_after_ppm: s.pg.timeout_after_ppm,
            slow_ppm: s.pg.slow_ppm,
            slow_max_us: s.pg.slow_max_us,
            refund_fail_ppm: s.pg.refund_fail_ppm,
            processing_max_us: s.pg.processing_max_us,
            refund_pending_max_us: s.pg.refund_pending_max_us,
            key_retention_us: s.pg.key_retention_us,
        },
        pg_timeout_us: s.pg.timeout_us,
        key_ttl_us: s.gateway.key_ttl_us,
        in_progress_ttl_us: s.gateway.in_progress_ttl_us,
    }
}

/// Build the simulation of one run, ready to start.
pub fn build(spec: &RunSpec<'_>) -> Sim<SagaApp> {
    let swarmed = spec.explore.scenario_for(spec.scenario, spec.seed);
    let s = swarmed.as_ref().unwrap_or(spec.scenario);
    let mut workload = workload::draw(&s.workload, spec.seed);
    if let Some(keep) = spec.arrivals {
        let mut i = 0u64;
        workload.arrivals.retain(|_| {
            i += 1;
            keep.contains(&(i - 1))
        });
    }
    let policy = retry_policy(s);
    let safety = Safety::with(spec.bug);
    let settings = settings(s, spec.strategy, spec.bug);
    let client = Client::new(policy, workload.arrivals.clone());
    let app = SagaApp::new(settings, client, Checker::new(&workload, spec.strategy));
    let mut sim = Sim::new(app, spec.seed, kernel_options(spec, s, &safety));
    if let Some(buffers) = SPARE.with(RefCell::take) {
        sim.reuse(buffers);
    }
    let mut n = Nodes {
        client: sim.add_node("client", Role::Client, None),
        gateway: sim.add_node("gateway", Role::Client, None),
        cache: sim.add_node("cache", Role::Cache, None),
        broker: sim.add_node("broker", Role::Broker, None),
        services: [NodeId(0); 7],
        instances: [1; 7],
        entry: NodeId(0),
    };
    add_services(&mut sim, &mut n, s, spec.strategy, &safety, &workload);
    let mut topics = [sim::TopicId(0); 12];
    for (i, name) in app::topic_names().enumerate() {
        topics[i] = sim.create_topic(name);
    }
    n.entry = match spec.strategy {
        Strategy::Choreography | Strategy::Monolith => n.of(Service::Product),
        _ => n.of(Service::Orchestrator),
    };
    if spec.strategy == Strategy::Choreography {
        for svc in Service::ALL {
            for t in svc.subscriptions() {
                sim.subscribe(n.of(svc), topics[*t as usize]);
            }
        }
    }
    sim.app.per_step_checks = spec.per_step_checks;
    sim.app.nodes = n;
    sim.app.topics = topics;
    let mut fault_stream = Stream::new(spec.seed, Purpose::Faults);
    sim.schedule_faults(draw_schedule(&schedule_options(s, spec.strategy, &n), &mut fault_stream));
    sim.app.poisons = draw_poisons(s, &mut fault_stream);
    sim.app.cache_timeout_ppm = s.faults.cache_timeout_ppm;
    if let Some(o) = spec.outage {
        let node = n.of(o.service);
        let at = |time_us, fault| FaultRecord { step: 0, time_us, fault, decision: None };
        sim.schedule_faults(vec![
            at(o.down_at_us, sim::Fault::Crash { node }),
            at(o.down_at_us + o.down_for_us, sim::Fault::Restart { node }),
        ]);
    }
    sim
}

fn outcomes(sim: &Sim<SagaApp>) -> Outcomes {
    let store =
        |svc| sim.view().db(sim.app.nodes.of(svc)).expect("services have databases").state();
    let orders = store(Service::Order).order().expect("the order node holds order tables");
    let entry =
        &sim.view().db(sim.app.nodes.entry).expect("the entry has a database").state().entry;
    orders.tally(entry.next_order)
}

fn system_failures(sim: &Sim<SagaApp>) -> u64 {
    let entry =
        &sim.view().db(sim.app.nodes.entry).expect("the entry has a database").state().entry;
    let system = |r: &Option<domain::Response>| {
        matches!(
            r,
            Some(domain::Response::Refused { why: Refusal::OutOfStock | Refusal::Unavailable, .. })
        )
    };
    entry.keys.values().filter(|(_, _, answer)| system(answer)).count() as u64
}

thread_local! {
    /// The broker buffers of this thread's last run, for its next run to
    /// fill again (see [`sim::broker::Buffers`]). Only capacity carries
    /// over: no run's behaviour or digest depends on it.
    static SPARE: RefCell<Option<Buffers<domain::Msg>>> = const { RefCell::new(None) };
}

/// Make one run.
pub fn run(spec: &RunSpec<'_>) -> RunReport {
    let s = spec.scenario;
    let mut sim = build(spec);
    sim.start();
    let phases = Phases {
        fault_phase_us: s.fault_phase_us,
        heal_budget_us: s.heal_budget_us,
        step_budget: s.step_budget,
    };
    let outcome = sim.run(phases);
    let counts = outcomes(&sim);
    let system_failures = system_failures(&sim);
    let measures = sim.app.meter.finish(outcome.time_us, &sim.app.checker);
    let client = &sim.app.client;
    // What the user saw come back: an order accepted (under a choreography
    // it may still be cancelled later), or anything else.
    let accepted =
        |a: &&Option<domain::Response>| matches!(a, Some(domain::Response::Accepted { .. }));
    let user_failures = client.answers.iter().filter(|a| !accepted(a)).count() as u64;
    let report = RunReport {
        seed: spec.seed,
        digest: outcome.digest,
        end: outcome.end,
        violation: outcome.violation,
        step: outcome.stats.steps,
        time_us: outcome.time_us,
        heal_at_us: outcome.heal_at_us,
        stats: outcome.stats,
        faults: outcome.faults,
        trace: outcome.trace,
        outcomes: counts,
        coverage: sim.app.coverage,
        system_failures,
        measures,
        submissions: client.arrivals().len() as u64,
        user_failures,
        workload_digest: sim::trace::stable_hash(client.arrivals()),
        divergence: outcome.divergence,
    };
    SPARE.with(|spare| spare.replace(Some(sim.into_buffers())));
    report
}

/// What the tables hold about one entity, as a line: an order's row,
/// payment, reservation and points; a product's stock and sales; a user's
/// balance; a coupon.
fn describe(sim: &Sim<SagaApp>, e: &domain::Entity) -> String {
    use domain::{Entity, StateView};
    let view = sim.view();
    let stores = ports::Stores { view: &view, nodes: sim.app.nodes };
    let order_t = stores.store(Service::Order).order().expect("order tables");
    let product_t = stores.store(Service::Product).product().expect("product tables");
    let user_t = stores.store(Service::User).user().expect("user tables");
    let payment_t = stores.store(Service::Payment).payment().expect("payment tables");
    let some = |x: Option<String>| x.unwrap_or_else(|| "none".to_string());
    match *e {
        Entity::Order(o) => format!(
            "{e}: order {}; payment {}; reservation {}; points {}",
            some(order_t.orders.get(&o).map(|r| format!("{r:?}"))),
            some(payment_t.payments.get(&o).map(|p| format!("{p:?}"))),
            some(product_t.reservations.get(&o).map(|r| format!("{r:?}"))),
            some(user_t.decided.get(&o).map(|d| format!("{d:?}"))),
        ),
        Entity::Product(p) => format!(
            "{e}: {:?}, sold {}",
            product_t.products.get(p.index()),
            product_t.sales.get(p.index()).copied().unwrap_or(0)
        ),
        Entity::User(u) => format!("{e}: balance {:?}", user_t.balances.get(u.index())),
        Entity::Coupon(c) => format!("{e}: {:?}", order_t.coupons.get(c.index())),
        Entity::Key(_) => format!("{e}: recorded with its order (see the trace)"),
    }
}

/// The entities a violation names, as the tables held them after `steps`
/// steps of the run `spec` describes: call it with the violating step, and
/// with the step before it, to see what that step changed.
pub fn entity_states(spec: &RunSpec<'_>, entities: &[domain::Entity], steps: u64) -> Vec<String> {
    let s = spec.scenario;
    let mut sim = build(&RunSpec { trace: false, ..*spec });
    sim.start();
    let phases = Phases {
        fault_phase_us: s.fault_phase_us,
        heal_budget_us: s.heal_budget_us,
        step_budget: steps,
    };
    sim.run(phases);
    entities.iter().map(|e| describe(&sim, e)).collect()
}
