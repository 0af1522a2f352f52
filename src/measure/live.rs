//! The simulation's figures for a live run to be set beside: the same
//! scenario, strategy, bug and seed, run in the simulation as written.

use domain::{Bug, Strategy};
use reports::live::SimFigures;

use crate::harness::{self, RunSpec};
use crate::scenario::Scenario;

/// The simulation of the same scenario, strategy, bug and seed, as written
/// (no swarm): what the live figures are set beside.
pub fn sim_figures(s: &Scenario, strategy: Strategy, bug: Option<Bug>, seed: u64) -> SimFigures {
    let r = harness::run(&RunSpec::new(s, strategy, bug, seed));
    let (order_latency, orders_per_s) = live::run::order_speed(&r.measures);
    SimFigures {
        orders_per_s,
        order_latency,
        outcomes: r.outcomes,
        violation: r.violation.map(|v| v.invariant.name().to_string()),
    }
}
