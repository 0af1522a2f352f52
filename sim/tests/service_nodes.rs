//! A service node's time and its database as the kernel models them.
//!
//! Commits whose outcome the caller cannot trust: one that applies while its
//! answer is lost, one that hangs and applies nothing while the node waits
//! out its statement timeout, and a database unreachable for a while. What
//! the caller is told, what the database holds, what the fault plan records,
//! and that a rerun of the seed is the same run. And service time: a busy
//! node takes what reaches it in arrival order, one handler at a time.

use proptest::prelude::*;
use sim::{
    App, CommitFailed, Cx, Database, Fault, FaultRecord, Handled, KernelOptions, NodeId, Phases,
    Record, Role, Sim, View,
};

/// One node committing write `i` when timer `i` fires, recording what each
/// commit reported and when the timer ran.
struct Committer {
    at_us: Vec<u64>,
    told: Vec<(u64, u64, Result<(), CommitFailed>)>,
}

type Log = Vec<u64>;

fn push(log: &mut Log, w: &u64) {
    log.push(*w);
}

impl App for Committer {
    type Msg = u64;
    type State = Log;
    type Write = u64;
    type Volatile = ();
    type Violation = String;
    type Cached = ();

    fn boot(&mut self, cx: &mut Cx<'_, Self>) {
        for (i, &t) in self.at_us.iter().enumerate() {
            cx.set_timer(t, i as u64);
        }
    }

    fn on_message(&mut self, _: &mut (), _: &mut Cx<'_, Self>, _: NodeId, _: u64) {
        unreachable!("no RPC in this test")
    }

    fn on_record(&mut self, _: &mut (), _: &mut Cx<'_, Self>, _: Record<'_, u64>) -> Handled {
        unreachable!("no consumer in this test")
    }

    fn on_timer(&mut self, _: &mut (), cx: &mut Cx<'_, Self>, tag: u64) {
        let told = cx.commit(&[tag], std::iter::empty());
        self.told.push((tag, cx.now_us(), told));
    }

    fn after_step(&mut self, _: &View<'_, Self>) -> Option<String> {
        None
    }

    fn is_settled(&self) -> bool {
        true
    }

    fn at_end(&mut self, _: &View<'_, Self>, _: bool) -> Option<String> {
        None
    }
}

struct Ran {
    told: Vec<(u64, u64, Result<(), CommitFailed>)>,
    state: Log,
    faults: Vec<Fault>,
    digest: u64,
}

fn run(seed: u64, lost_ppm: u32, hang_ppm: u32, hang_us: u64, commits: u64) -> Ran {
    let options = KernelOptions {
        commit_lost_ack_ppm: lost_ppm,
        commit_hang_ppm: hang_ppm,
        commit_hang_us: hang_us,
        ..KernelOptions::default()
    };
    run_with(seed, options, commits, vec![])
}

fn run_with(seed: u64, options: KernelOptions, commits: u64, schedule: Vec<FaultRecord>) -> Ran {
    let at_us = (0..commits).map(|i| 1_000 + i * 1_000).collect();
    let mut sim = Sim::new(Committer { at_us, told: vec![] }, seed, options);
    let node = sim.add_node("svc", Role::Service, Some(Database::new(Log::new(), push)));
    sim.schedule_faults(schedule);
    sim.start();
    let out =
        sim.run(Phases { fault_phase_us: 10_000_000, heal_budget_us: 1, step_budget: 10_000 });
    let state = sim.view().db(node).expect("a database").state().clone();
    Ran {
        told: std::mem::take(&mut sim.app.told),
        state,
        faults: out.faults.into_iter().map(|f| f.fault).collect(),
        digest: out.digest,
    }
}

#[test]
fn a_commit_whose_answer_is_lost_applies_while_its_caller_hears_a_failure() {
    let r = run(1, 1_000_000, 0, 0, 5);
    assert_eq!(r.state, [0, 1, 2, 3, 4], "every commit applied");
    assert!(r.told.iter().all(|t| t.2 == Err(CommitFailed::AnswerLost)), "{:?}", r.told);
    assert_eq!(r.faults, vec![Fault::CommitLostAck { node: NodeId(0) }; 5]);
}

#[test]
fn a_hung_commit_applies_nothing_and_holds_its_node_for_the_statement_timeout() {
    let r = run(1, 0, 1_000_000, 50_000, 3);
    assert!(r.state.is_empty(), "nothing applied: {:?}", r.state);
    assert!(r.told.iter().all(|t| t.2 == Err(CommitFailed::TimedOut)));
    // Timers due every millisecond wait while the node is held.
    let times: Vec<u64> = r.told.iter().map(|t| t.1).collect();
    assert_eq!(times, [1_000, 51_000, 101_000]);
    assert_eq!(r.faults, vec![Fault::CommitHang { node: NodeId(0), for_us: 50_000 }; 3]);
}

#[test]
fn a_database_outage_refuses_every_commit_in_its_window_and_only_those() {
    let outage = Fault::DbOutage { node: NodeId(0), for_us: 3_000 };
    let at = FaultRecord { step: 0, time_us: 1_500, fault: outage.clone(), decision: None };
    let r = run_with(1, KernelOptions::default(), 6, vec![at]);
    // Commits at 1, 2, 3, 4, 5 and 6 ms: those at 2, 3 and 4 ms fall in
    // the window from 1.5 to 4.5 ms.
    assert_eq!(r.state, [0, 4, 5]);
    let refused: Vec<u64> =
        r.told.iter().filter(|t| t.2 == Err(CommitFailed::Refused)).map(|t| t.0).collect();
    assert_eq!(refused, [1, 2, 3]);
    assert_eq!(r.faults, vec![outage]);
}

#[test]
fn a_busy_node_takes_what_reaches_it_in_arrival_order_one_handler_at_a_time() {
    // Timers due every millisecond, each handler 2.5 ms long: the node falls
    // behind, and takes them one after another.
    let options = KernelOptions { service_us: 2_500, ..KernelOptions::default() };
    let r = run_with(1, options, 4, vec![]);
    let at: Vec<(u64, u64)> = r.told.iter().map(|t| (t.0, t.1)).collect();
    assert_eq!(at, [(0, 1_000), (1, 3_500), (2, 6_000), (3, 8_500)]);
    assert_eq!(r.state, [0, 1, 2, 3]);
    let again =
        run_with(1, KernelOptions { service_us: 2_500, ..KernelOptions::default() }, 4, vec![]);
    assert_eq!(again.digest, r.digest);
}

#[test]
fn a_crash_loses_what_waited_for_a_busy_node() {
    let options = KernelOptions { service_us: 2_500, ..KernelOptions::default() };
    let crash = FaultRecord {
        step: 0,
        time_us: 4_000,
        fault: Fault::Crash { node: NodeId(0) },
        decision: None,
    };
    let r = run_with(1, options, 4, vec![crash]);
    // The timers set at boot die with the crash; the two handled before it
    // stay handled, and nothing runs on the crashed node.
    let handled: Vec<u64> = r.told.iter().map(|t| t.0).collect();
    assert_eq!(handled, [0, 1]);
}

proptest! {
    /// Whatever the mix: the database holds exactly the commits that
    /// reported success or lost their answer, in order; a hung commit never
    /// applies; and a rerun of the seed is the same run.
    #[test]
    fn what_applied_is_what_succeeded_or_lost_its_answer(
        seed in any::<u64>(),
        lost in 0u32..500_000,
        hang in 0u32..500_000,
        commits in 1u64..40,
    ) {
        let r = run(seed, lost, hang, 3_000, commits);
        let applied: Vec<u64> = r
            .told
            .iter()
            .filter(|t| matches!(t.2, Ok(()) | Err(CommitFailed::AnswerLost)))
            .map(|t| t.0)
            .collect();
        prop_assert_eq!(&r.state, &applied);
        prop_assert_eq!(r.told.len() as u64, commits);
        let again = run(seed, lost, hang, 3_000, commits);
        prop_assert_eq!(again.digest, r.digest);
        prop_assert_eq!(again.faults, r.faults);
    }
}
