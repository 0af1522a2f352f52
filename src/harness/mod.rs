//! The harness: builds one run of the domain on the kernel from a scenario,
//! a strategy, a planted bug and a seed, runs it, and reports what happened.

pub mod app;
pub mod workload;

use domain::client::{Client, RetryPolicy};
use domain::order::OrderState;
use domain::product::ProductTables;
use domain::user::UserTables;
use domain::{Bug, Checker, Safety, Service, Strategy, Tables, Violation};
use sim::broker::BrokerOptions;
use sim::fault::{draw_schedule, ScheduleOptions};
use sim::net::NetOptions;
use sim::world::Stats;
use sim::{Database, End, FaultRecord, KernelOptions, NodeId, Phases, Role, Sim};

use crate::scenario::Scenario;
pub use app::{Coverage, SagaApp};

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
}

impl<'a> RunSpec<'a> {
    /// A run with per-step checks on and no trace.
    pub fn new(
        scenario: &'a Scenario,
        strategy: Strategy,
        bug: Option<Bug>,
        seed: u64,
    ) -> RunSpec<'a> {
        RunSpec { scenario, strategy, bug, seed, trace: false, per_step_checks: true }
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
    pub trace: Vec<String>,
    pub outcomes: Outcomes,
    pub coverage: Coverage,
}

fn kernel_options(s: &Scenario, trace: bool) -> KernelOptions {
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
        ..KernelOptions::default()
    }
}

fn schedule_options(
    s: &Scenario,
    client: NodeId,
    broker: NodeId,
    services: [NodeId; 4],
) -> ScheduleOptions {
    let f = &s.faults;
    let mut links: Vec<(NodeId, NodeId)> = services.iter().map(|&n| (n, broker)).collect();
    links.push((client, services[Service::Product as usize]));
    ScheduleOptions {
        crashes: f.crashes,
        crash_at_us: f.crash_at_us,
        restart_after_us: f.restart_after_us,
        crash_targets: services.to_vec(),
        partitions: f.partitions,
        partition_at_us: f.partition_at_us,
        partition_for_us: f.partition_for_us,
        partition_targets: links,
        rebalances: f.rebalances,
        rebalance_at_us: f.rebalance_at_us,
        rebalance_targets: services.to_vec(),
    }
}

fn initial_tables(service: Service, w: &domain::Workload) -> Tables {
    match service {
        Service::Product => {
            Tables::Product(ProductTables { products: w.products.clone(), ..Default::default() })
        }
        Service::User => {
            Tables::User(UserTables { balances: w.balances.clone(), ..Default::default() })
        }
        other => Tables::empty(other),
    }
}

/// Build the simulation of one run, ready to start.
pub fn build(spec: &RunSpec<'_>) -> Sim<SagaApp> {
    let s = spec.scenario;
    let Strategy::Choreography = spec.strategy;
    let workload = workload::draw(&s.workload, spec.seed);
    let policy = RetryPolicy {
        timeout_us: s.client.timeout_us,
        backoff_base_us: s.client.backoff_base_us,
        backoff_cap_us: s.client.backoff_cap_us,
    };
    let client = Client::new(policy, workload.orders.clone());
    let checker = Checker::new(&workload);
    let placeholder = [NodeId(0); 4];
    let app = SagaApp::new(
        Safety::with(spec.bug),
        NodeId(0),
        placeholder,
        [sim::TopicId(0); 8],
        client,
        checker,
    );
    let mut sim = Sim::new(app, spec.seed, kernel_options(s, spec.trace));
    let client_node = sim.add_node("client", Role::Client, None);
    let broker = sim.add_node("broker", Role::Broker, None);
    let mut services = placeholder;
    for svc in Service::ALL {
        let db = Database::new(initial_tables(svc, &workload), Tables::apply);
        services[svc as usize] = sim.add_node(svc.name(), Role::Service, Some(db));
    }
    let mut topics = [sim::TopicId(0); 8];
    for (i, name) in app::topic_names().enumerate() {
        topics[i] = sim.create_topic(name);
    }
    for svc in Service::ALL {
        for t in svc.subscriptions() {
            sim.subscribe(services[svc as usize], topics[*t as usize]);
        }
    }
    sim.app.per_step_checks = spec.per_step_checks;
    sim.app.client_node = client_node;
    sim.app.service_nodes = services;
    sim.app.topics = topics;
    let mut fault_stream = sim::seed::Stream::new(spec.seed, sim::seed::Purpose::Faults);
    let plan =
        draw_schedule(&schedule_options(s, client_node, broker, services), &mut fault_stream);
    sim.schedule_faults(plan);
    sim
}

fn outcomes(sim: &Sim<SagaApp>, orders: usize) -> Outcomes {
    let node = sim.app.node_of(Service::Order);
    let Some(Tables::Order(t)) = sim.view().db(node).map(|d| d.state()) else {
        panic!("the order node holds order tables")
    };
    let mut o = Outcomes::default();
    for row in t.orders.values() {
        match row.state {
            OrderState::Confirmed => o.confirmed += 1,
            OrderState::Cancelled => o.cancelled += 1,
            OrderState::Rejected => o.rejected += 1,
            OrderState::Pending => {}
        }
    }
    o.unfinished = orders as u64 - o.confirmed - o.cancelled - o.rejected;
    o
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
    let counts = outcomes(&sim, s.workload.orders as usize);
    RunReport {
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
    }
}
