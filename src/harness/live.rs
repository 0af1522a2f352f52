//! The same run in the live world: a scenario, strategy, bug and seed made
//! into the plan the `live` crate deploys (its workload, retry policy,
//! broker settings and faults), beside `harness/mod.rs`, which makes them
//! into a simulated run. Both draw the workload and the settings from the
//! same functions, so the two worlds run the same domain on the same input.

use std::path::PathBuf;

use live::deploy::BrokerSettings;
use live::nemesis::FaultSpec;
use live::system::Spec;

use crate::harness::{self, Settings};
use crate::scenario::Scenario;

/// The scenario's faults as the nemesis strikes them. Commit failures
/// become database sessions ended under a service, during the fault phase.
pub fn faults(s: &Scenario) -> FaultSpec {
    let f = &s.faults;
    FaultSpec {
        crashes: f.crashes,
        crash_at_us: f.crash_at_us,
        restart_after_us: f.restart_after_us,
        pauses: f.pauses,
        pause_at_us: f.pause_at_us,
        pause_for_us: f.pause_for_us,
        cache_flushes: f.cache_flushes,
        cache_flush_at_us: f.cache_flush_at_us,
        poisons: f.poisons,
        poison_at_us: f.poison_at_us,
        // Ending a session under a transaction makes a commit fail, or
        // leaves its outcome unknown when COMMIT was already on its way.
        session_kills: if f.commit_fail_ppm + f.commit_lost_ack_ppm > 0 { (1, 2) } else { (0, 0) },
        session_kill_at_us: (0, s.fault_phase_us),
        spare_gateway: !f.crash_nodes.gateway,
        spare_services: !f.crash_nodes.services,
    }
}

/// The fault kinds the scenario asks for that a live run does not inject.
pub fn not_injected(s: &Scenario) -> Vec<String> {
    let (n, f) = (&s.network, &s.faults);
    [
        ("network loss of calls and deliveries (acknowledgements are lost)", n.loss_ppm > 0),
        ("network duplication", n.duplicate_ppm > 0),
        ("network delay", n.delay_ppm > 0),
        ("partitions", f.partitions.1 > 0),
        ("rebalances", f.rebalances.1 > 0),
        ("broker outages", f.broker_outages.1 > 0),
        ("hung commits (a statement held until its timeout)", f.commit_hang_ppm > 0),
        ("one-way partitions", f.one_way_partitions.1 > 0),
        ("database outages", f.db_outages.1 > 0),
        ("failing sent-marks", f.mark_sent_fail_ppm > 0),
        ("failing dead-letter writes", f.dead_letter_fail_ppm > 0),
        ("cache calls that time out", f.cache_timeout_ppm > 0),
        ("commits that take longer than their handler", s.commit_us > 0),
        (
            "several instances of a service (the live run starts one process per service)",
            s.instances.iter().any(|&n| n > 1),
        ),
    ]
    .into_iter()
    .filter(|(_, on)| *on)
    .map(|(k, _)| k.to_string())
    .collect()
}

/// The broker's settings for the scenario: its partitions, poll size and
/// dead-letter attempts, and the live adapters' own timings.
pub fn broker(s: &Scenario, settings: &Settings) -> BrokerSettings {
    BrokerSettings {
        partitions: s.broker.partitions,
        max_poll_records: s.broker.max_poll_records,
        max_attempts: settings.safety.dead_letter.then_some(s.broker.max_attempts),
        retry_backoff_ms: 10,
        dead_letter_retry_ms: 500,
        ack_wait_ms: 2_000,
        fetch_wait_ms: 250,
        linger_ms: 10,
        ack_loss_ppm: s.network.loss_ppm,
        dedupe_window_ms: 120_000,
        relay_hold_ms: (0, 0),
    }
}

/// The live plan of a scenario from its deployment `spec`, with the binary
/// that starts the services.
pub fn plan(s: &Scenario, spec: Spec, keep: bool, exe: PathBuf) -> live::run::Plan {
    live::run::Plan {
        workload: harness::workload::draw(&s.workload, spec.seed),
        spec,
        policy: harness::retry_policy(s),
        fault_phase_us: s.fault_phase_us,
        heal_budget_us: s.heal_budget_us,
        faults: faults(s),
        not_injected: not_injected(s),
        exe,
        keep,
    }
}
