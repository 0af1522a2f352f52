//! Several instances of one service, as the kernel models them: they share
//! a database and form one consumer group; a handler reads when its input
//! arrives and commits a handler's time later, on what it read; the
//! application's check refuses a commit whose read another instance's
//! commit moved past; a crash or a pause moves partitions to the live
//! instance, and the paused one, on waking, cannot commit from its stale
//! read. Each test also shows the run without the check, where the race
//! does its damage, and that a rerun of the seed is the same run.

use sim::net::NetOptions;
use sim::{
    App, CommitFailed, Cx, Database, Fault, FaultRecord, Handled, KernelOptions, NodeId, Phases,
    Record, Role, Sim, StreamId, TopicId, View,
};

#[derive(Clone, Debug, Default, PartialEq)]
struct Tables {
    /// Event ids handled, in commit order (an inbox).
    handled: Vec<u64>,
    counter: u64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum W {
    Handle(u64),
    /// The counter, as the handler computed it from what it read.
    Set(u64),
}

fn apply(t: &mut Tables, w: &W) {
    match *w {
        W::Handle(id) => t.handled.push(id),
        W::Set(c) => t.counter = c,
    }
}

/// One source node that publishes events `1..=events` at 1 ms, and a
/// service that runs as two instances. With `checked`, the service's
/// commits are checked: the inbox is a unique key and the counter has a
/// version.
struct Svc {
    source: NodeId,
    topic: TopicId,
    events: u64,
    /// When each timer-driven increment fires (instances increment the
    /// counter on a timer, to race on it).
    bumps_at_us: Vec<u64>,
    told: Vec<(NodeId, &'static str, Result<(), CommitFailed>)>,
}

static CHECKED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

impl App for Svc {
    type Msg = u64;
    type State = Tables;
    type Write = W;
    type Volatile = ();
    type Violation = String;
    type Cached = ();

    fn conflicts(read: &Tables, now: &Tables, writes: &[W]) -> bool {
        if !CHECKED.load(std::sync::atomic::Ordering::Relaxed) {
            return false;
        }
        writes.iter().any(|w| match *w {
            W::Handle(id) => now.handled.contains(&id),
            W::Set(_) => read.counter != now.counter,
        })
    }

    fn boot(&mut self, cx: &mut Cx<'_, Self>) {
        if cx.node() == self.source {
            cx.set_timer(1_000, 0);
        } else {
            for &t in &self.bumps_at_us {
                cx.set_timer(t, 1);
            }
        }
    }

    fn on_message(&mut self, _: &mut (), _: &mut Cx<'_, Self>, _: NodeId, _: u64) {
        unreachable!("no RPC in this test")
    }

    fn on_record(&mut self, _: &mut (), cx: &mut Cx<'_, Self>, r: Record<'_, u64>) -> Handled {
        if cx.state().handled.contains(r.msg) {
            return Handled::Done;
        }
        let told = cx.commit(&[W::Handle(*r.msg)], std::iter::empty());
        self.told.push((cx.node(), "handle", told));
        match told {
            Ok(()) => Handled::Done,
            Err(_) => Handled::Retry,
        }
    }

    fn on_timer(&mut self, _: &mut (), cx: &mut Cx<'_, Self>, tag: u64) {
        if tag == 0 {
            let (topic, n) = (self.topic, self.events);
            cx.commit(&[], (1..=n).map(|id| (topic, 0, id))).expect("no commit faults here");
        } else {
            // Each bump also emits an event, for the relay tests.
            let c = cx.state().counter;
            let told = cx.commit(&[W::Set(c + 1)], [(self.topic, 0, 1_000 + c)]);
            self.told.push((cx.node(), "bump", told));
        }
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
    tables: Tables,
    told: Vec<(NodeId, &'static str, Result<(), CommitFailed>)>,
    /// Who held the service's stream on partition 0 at the end.
    member: NodeId,
    reassigned: u64,
    digest: u64,
    /// Outbox rows never published.
    pending_rows: usize,
    /// Outbox rows that committed below an id already committed.
    late_rows: u64,
}

const A: NodeId = NodeId(1);
const B: NodeId = NodeId(2);

/// Run the two instances (`A`, `B`) for `events` events and the given
/// bumps, under `faults`, with every handler taking `service_us`.
fn run(seed: u64, events: u64, bumps_at_us: Vec<u64>, service_us: u64, faults: Vec<Fault>) -> Ran {
    let options = KernelOptions { service_us, ..KernelOptions::default() };
    run_with(seed, events, bumps_at_us, options, faults)
}

fn run_with(
    seed: u64,
    events: u64,
    bumps_at_us: Vec<u64>,
    options: KernelOptions,
    faults: Vec<Fault>,
) -> Ran {
    let options = KernelOptions {
        net: NetOptions { latency_min_us: 100, latency_max_us: 100, ..NetOptions::default() },
        broker: sim::broker::BrokerOptions { partitions: 1, ..Default::default() },
        ..options
    };
    let app = Svc { source: NodeId(0), topic: TopicId(0), events, bumps_at_us, told: vec![] };
    let mut sim = Sim::new(app, seed, options);
    let source =
        sim.add_node("source", Role::Service, Some(Database::new(Tables::default(), apply)));
    let a = sim.add_node("svc", Role::Service, Some(Database::new(Tables::default(), apply)));
    let b = sim.add_instance("svc-2", a);
    sim.add_node("broker", Role::Broker, None);
    assert_eq!((source, a, b), (NodeId(0), A, B));
    let topic = sim.create_topic("events");
    let streams = sim.subscribe(a, topic);
    sim.app.topic = topic;
    sim.schedule_faults(
        faults
            .into_iter()
            .enumerate()
            .map(|(i, fault)| FaultRecord {
                step: 0,
                time_us: 10_000 * (i as u64 + 1),
                fault,
                decision: None,
            })
            .collect(),
    );
    sim.start();
    let out =
        sim.run(Phases { fault_phase_us: 5_000_000, heal_budget_us: 1, step_budget: 100_000 });
    let member = sim.view().broker().stream(streams[0]).member;
    assert_eq!(streams[0], StreamId(streams[0].0));
    Ran {
        tables: sim.view().db(a).expect("a database").state().clone(),
        told: std::mem::take(&mut sim.app.told),
        member,
        reassigned: out.stats.reassignments,
        digest: out.digest,
        pending_rows: sim.view().outbox_backlog(),
        late_rows: out.stats.late_rows,
    }
}

/// Both tests flip the global switch, so they take turns.
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn checked<T>(on: bool, f: impl FnOnce() -> T) -> T {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    CHECKED.store(on, std::sync::atomic::Ordering::Relaxed);
    let out = f();
    CHECKED.store(true, std::sync::atomic::Ordering::Relaxed);
    out
}

#[test]
fn two_instances_that_read_together_commit_one_after_the_other_or_lose_an_update() {
    // Both instances bump the counter at 1 ms: both read 0, and commit 2 ms
    // later. With a version on the counter the second commit is refused.
    let r = checked(true, || run(1, 0, vec![1_000], 2_000, vec![]));
    let bumps: Vec<_> = r.told.iter().filter(|t| t.1 == "bump").map(|t| t.2).collect();
    assert_eq!(bumps.len(), 2);
    assert!(bumps.contains(&Ok(())) && bumps.contains(&Err(CommitFailed::Conflict)), "{bumps:?}");
    assert_eq!(r.tables.counter, 1);
    // Without it both commit, and one increment is lost.
    let r = checked(false, || run(1, 0, vec![1_000], 2_000, vec![]));
    let bumps: Vec<_> = r.told.iter().filter(|t| t.1 == "bump").map(|t| t.2).collect();
    assert_eq!((bumps, r.tables.counter), (vec![Ok(()), Ok(())], 1));
    // Both instances bump again at 50 ms: that pair reads what the first
    // pair committed, so the counter reaches 2, with one refusal per pair.
    let r = checked(true, || run(1, 0, vec![1_000, 50_000], 2_000, vec![]));
    assert_eq!(r.tables.counter, 2);
    let bumps: Vec<_> = r.told.iter().filter(|t| t.1 == "bump").map(|t| t.2).collect();
    let refused = bumps.iter().filter(|t| **t == Err(CommitFailed::Conflict)).count();
    assert_eq!((bumps.len(), refused), (4, 2));
}

#[test]
fn a_paused_instance_loses_its_partition_and_cannot_commit_from_its_stale_read() {
    // One event on the one partition, which starts at A. A takes it at
    // about 1.4 ms and would commit 50 ms later; it is paused at 10 ms for
    // 200 ms. The partition moves to B, which handles the event again and
    // commits; A wakes, and its commit, decided on a read from before B's,
    // is refused by the inbox's unique key.
    let pause = vec![Fault::Pause { node: A, for_us: 200_000 }];
    let r = checked(true, || run(3, 1, vec![], 50_000, pause.clone()));
    assert_eq!(r.tables.handled, [1], "handled once");
    let handles: Vec<_> = r.told.iter().filter(|t| t.1 == "handle").map(|t| (t.0, t.2)).collect();
    assert_eq!(handles, [(B, Ok(())), (A, Err(CommitFailed::Conflict))]);
    assert!(r.reassigned >= 2, "moved to B, and back when A rejoined: {}", r.reassigned);
    assert_eq!(r.member, A, "A rejoined its group and took partition 0 back");
    // Without the unique key, the zombie's stale read commits the event a
    // second time.
    let r = checked(false, || run(3, 1, vec![], 50_000, pause.clone()));
    assert_eq!(r.tables.handled, [1, 1]);
    // The same seed is the same run.
    let again = checked(true, || run(3, 1, vec![], 50_000, pause));
    let first = checked(true, || {
        run(3, 1, vec![], 50_000, vec![Fault::Pause { node: A, for_us: 200_000 }])
    });
    assert_eq!(again.digest, first.digest);
}

#[test]
fn a_crash_moves_partitions_to_the_live_instance_and_a_restart_brings_them_back() {
    // 20 events of 1 ms each from about 1 ms; A crashes at 10 ms, mid-way,
    // and stays down until the faults heal: B takes the partition and
    // handles the rest, and the healed A takes it back.
    let crash = vec![Fault::Crash { node: A }];
    let r = checked(true, || run(5, 20, vec![], 1_000, crash.clone()));
    let by = |n: NodeId| r.told.iter().filter(|t| t.0 == n && t.2 == Ok(())).count();
    assert!(by(A) > 0 && by(B) > 0, "A handled some before its crash, B the rest");
    assert!(r.reassigned >= 2, "moved to B and back: {}", r.reassigned);
    assert_eq!(r.member, A, "the healed A rejoined");
    let mut handled = r.tables.handled.clone();
    handled.sort();
    handled.dedup();
    assert_eq!(handled, (1..=20).collect::<Vec<_>>(), "every event handled");
    assert_eq!(r.tables.handled.len(), 20, "and each once");
    let back = vec![Fault::Crash { node: A }, Fault::Restart { node: A }];
    let r = checked(true, || run(5, 20, vec![], 1_000, back));
    assert_eq!(r.member, A);
    assert!(r.reassigned >= 2);
    for seed in 0..5 {
        let x = checked(true, || run(seed, 20, vec![], 1_000, crash.clone()));
        let y = checked(true, || run(seed, 20, vec![], 1_000, crash.clone()));
        assert_eq!(x.digest, y.digest, "seed {seed}");
    }
}

/// Two instances bump at once and emit an event each; their commits take up
/// to 5 ms more than the handler, so they often commit in another order than
/// they staged their rows. A relay that publishes every pending row sends
/// both; a relay with a high-water id cursor, on some seed, has published
/// the later-staged row before the earlier one commits, and never sends the
/// earlier one.
#[test]
fn a_high_water_relay_skips_a_row_that_commits_late_and_a_scanning_one_does_not() {
    let options = |high_water| KernelOptions {
        service_us: 200,
        commit_us: 5_000,
        relay_high_water: high_water,
        ..KernelOptions::default()
    };
    let (mut skipped, mut late) = (0, 0);
    for seed in 0..20 {
        // Unchecked, so that both bumps commit.
        let scan = checked(false, || run_with(seed, 0, vec![1_000], options(false), vec![]));
        assert_eq!(scan.told.iter().filter(|t| t.1 == "bump" && t.2 == Ok(())).count(), 2);
        assert_eq!(scan.pending_rows, 0, "seed {seed}: every row published");
        let cursor = checked(false, || run_with(seed, 0, vec![1_000], options(true), vec![]));
        assert!(cursor.pending_rows <= 1, "seed {seed}");
        skipped += cursor.pending_rows;
        late += scan.late_rows;
        let again = checked(false, || run_with(seed, 0, vec![1_000], options(true), vec![]));
        assert_eq!(again.digest, cursor.digest, "seed {seed}: the same seed is the same run");
    }
    assert!(skipped > 0, "some seed commits a row below one already published");
    assert!(late > 0, "some seed commits the later-staged row first");
}
