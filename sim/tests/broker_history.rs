//! The broker checked the way Jepsen checks Kafka: run a producer and a
//! consumer through crashes, partitions, rebalances and a lossy, duplicating,
//! reordering network, record everything, and check the whole history.
//!
//! - no lost write: every committed outbox row reaches the log, and every
//!   record in the log is consumed;
//! - producer order: within a partition, records first appear in commit order;
//! - no skipped offset: a consumer never reads past an offset it has not read;
//! - per-partition order: within one consumer session (incarnation and
//!   generation) offsets go up by exactly one;
//! - offsets go backwards, and records repeat, only when a new session starts
//!   (a crash, a rebalance or a timed-out batch explains it);
//! - the broker's own operations are consistent: appends contiguous, commits
//!   never move backwards, deliveries contiguous within a generation and
//!   restarting at the committed offset after a reset.

use std::collections::BTreeMap;

use proptest::prelude::*;
use sim::broker::{BrokerOp, BrokerOptions, StreamId};
use sim::fault::{draw_schedule, ScheduleOptions};
use sim::net::NetOptions;
use sim::seed::{Purpose, Stream};
use sim::{
    App, Cx, Database, End, Handled, KernelOptions, NodeId, Phases, Record, Role, Sim, TopicId,
    View,
};

#[derive(Clone, Copy, Debug)]
struct Seen {
    stream: StreamId,
    offset: u64,
    generation: u32,
    incarnation: u32,
    msg: u64,
    at_us: u64,
}

struct Probe {
    producer: NodeId,
    topic: TopicId,
    publish_at_us: Vec<u64>,
    producer_booted: bool,
    seen: Vec<Seen>,
}

/// Committed messages, in commit order.
type Log = Vec<u64>;

fn push(log: &mut Log, m: &u64) {
    log.push(*m);
}

impl App for Probe {
    type Msg = u64;
    type State = Log;
    type Write = u64;
    type Volatile = ();
    type Violation = String;
    type Cached = ();

    fn boot(&mut self, cx: &mut Cx<'_, Self>) {
        // Publish timers are set once: after a crash the producer does not
        // remember what it meant to publish, only what it committed.
        if cx.node() == self.producer && !self.producer_booted {
            self.producer_booted = true;
            for (i, &t) in self.publish_at_us.iter().enumerate() {
                cx.set_timer(t, i as u64);
            }
        }
    }

    fn on_message(&mut self, _: &mut (), _: &mut Cx<'_, Self>, _: NodeId, _: u64) {
        unreachable!("no RPC in this test")
    }

    fn on_record(&mut self, _: &mut (), cx: &mut Cx<'_, Self>, r: Record<'_, u64>) -> Handled {
        let (stream, offset, generation, msg) = (r.stream, r.offset, r.generation, *r.msg);
        let (incarnation, at_us) = (cx.incarnation(), cx.now_us());
        self.seen.push(Seen { stream, offset, generation, incarnation, msg, at_us });
        Handled::Done
    }

    fn on_timer(&mut self, _: &mut (), cx: &mut Cx<'_, Self>, tag: u64) {
        cx.commit(&[tag], [(self.topic, tag * 7919, tag)]).expect("no commit faults here");
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

#[derive(Clone, Debug)]
struct Case {
    seed: u64,
    messages: usize,
    loss_ppm: u32,
    duplicate_ppm: u32,
    delay_ppm: u32,
    crashes: u64,
    partitions: u64,
    rebalances: u64,
    max_poll: u32,
}

fn case() -> impl Strategy<Value = Case> {
    (
        any::<u64>(),
        1usize..60,
        0u32..200_000,
        0u32..200_000,
        0u32..200_000,
        0u64..4,
        0u64..4,
        0u64..3,
        1u32..5,
    )
        .prop_map(|(seed, messages, l, d, r, crashes, partitions, rebalances, max_poll)| {
            Case {
                seed,
                messages,
                loss_ppm: l,
                duplicate_ppm: d,
                delay_ppm: r,
                crashes,
                partitions,
                rebalances,
                max_poll,
            }
        })
}

fn run(c: &Case) -> (Sim<Probe>, End) {
    let mut s = Stream::new(c.seed, Purpose::Workload);
    let mut publish_at_us: Vec<u64> = (0..c.messages).map(|_| s.range(0, 400_000)).collect();
    publish_at_us.sort();
    let options = KernelOptions {
        net: NetOptions {
            loss_ppm: c.loss_ppm,
            duplicate_ppm: c.duplicate_ppm,
            delay_ppm: c.delay_ppm,
            ..NetOptions::default()
        },
        broker: BrokerOptions {
            partitions: 3,
            max_poll_records: c.max_poll,
            fetch_timeout_us: 80_000,
        },
        broker_history: true,
        ..KernelOptions::default()
    };
    let probe = Probe {
        producer: NodeId(0),
        topic: TopicId(0),
        publish_at_us,
        producer_booted: false,
        seen: vec![],
    };
    let mut sim = Sim::new(probe, c.seed, options);
    let producer = sim.add_node("producer", Role::Service, Some(Database::new(Log::new(), push)));
    let consumer = sim.add_node("consumer", Role::Service, Some(Database::new(Log::new(), push)));
    let broker = sim.add_node("broker", Role::Broker, None);
    let topic = sim.create_topic("t");
    sim.subscribe(consumer, topic);
    sim.app.producer = producer;
    sim.app.topic = topic;
    let opts = ScheduleOptions {
        crashes: (c.crashes, c.crashes),
        crash_at_us: (0, 450_000),
        restart_after_us: (1_000, 100_000),
        crash_targets: vec![producer, consumer],
        partitions: (c.partitions, c.partitions),
        partition_at_us: (0, 450_000),
        partition_for_us: (1_000, 150_000),
        partition_targets: vec![(producer, broker), (consumer, broker)],
        rebalances: (c.rebalances, c.rebalances),
        rebalance_at_us: (0, 450_000),
        rebalance_targets: vec![consumer],
        ..ScheduleOptions::default()
    };
    sim.schedule_faults(draw_schedule(&opts, &mut Stream::new(c.seed, Purpose::Faults)));
    sim.start();
    let outcome = sim.run(Phases {
        fault_phase_us: 500_000,
        heal_budget_us: 30_000_000,
        step_budget: 1_000_000,
    });
    (sim, outcome.end)
}

fn check_history(sim: &Sim<Probe>, max_poll: u32) -> Result<(), TestCaseError> {
    let view = sim.view();
    let broker = view.broker();
    let committed: &Log = view.db(NodeId(0)).expect("producer db").state();
    let rank: BTreeMap<u64, usize> = committed.iter().enumerate().map(|(i, &m)| (m, i)).collect();
    let logs = &broker.topic(TopicId(0)).logs;

    // No lost write, and producer order within each partition. Every copy
    // of a committed row carries that row's event id, and no two rows share
    // one.
    let mut in_log = BTreeMap::new();
    let mut event_of: BTreeMap<u64, u64> = BTreeMap::new();
    let mut row_of: BTreeMap<u64, u64> = BTreeMap::new();
    for log in logs {
        let mut last_rank = None;
        for (_, event, m) in log {
            prop_assert_eq!(*event_of.entry(*m).or_insert(*event), *event, "copies of {}", m);
            prop_assert_eq!(*row_of.entry(*event).or_insert(*m), *m, "event id {}", event);
            if in_log.insert(*m, ()).is_none() {
                let r = rank[m];
                prop_assert!(last_rank < Some(r), "message {m} first appears out of commit order");
                last_rank = Some(r);
            }
        }
    }
    for m in committed {
        prop_assert!(in_log.contains_key(m), "committed message {m} never reached the log");
    }

    // The consumer: order, no skips, repeats only in a new session, coverage.
    let mut per_stream: BTreeMap<StreamId, Vec<Seen>> = BTreeMap::new();
    for s in &sim.app.seen {
        per_stream.entry(s.stream).or_default().push(*s);
    }
    for (i, st) in broker.streams().iter().enumerate().filter(|(_, s)| s.topic == TopicId(0)) {
        let log = &logs[st.partition as usize];
        let seen = per_stream.remove(&StreamId(i as u32)).unwrap_or_default();
        let mut max_seen: Option<u64> = None;
        let mut prev: Option<Seen> = None;
        for s in &seen {
            prop_assert_eq!(log[s.offset as usize].2, s.msg, "record content at its offset");
            let next_unread = max_seen.map_or(0, |m| m + 1);
            prop_assert!(
                s.offset <= next_unread,
                "offset {} skipped past {}",
                s.offset,
                next_unread
            );
            if let Some(p) = prev {
                if (p.incarnation, p.generation) == (s.incarnation, s.generation) {
                    prop_assert_eq!(
                        s.offset,
                        p.offset + 1,
                        "offsets within one session go up by one"
                    );
                }
            }
            max_seen = Some(max_seen.map_or(s.offset, |m| m.max(s.offset)));
            prev = Some(*s);
        }
        prop_assert_eq!(max_seen.map_or(0, |m| m + 1), log.len() as u64, "every record consumed");
        // Handled for the first time in partition order, batch or no batch:
        // exactly what a one-by-one fetch hands over, in its order.
        let mut first_seen = Vec::new();
        for s in &seen {
            if s.offset == first_seen.len() as u64 {
                first_seen.push(s.msg);
            }
        }
        let in_log: Vec<u64> = log.iter().map(|(_, _, m)| *m).collect();
        prop_assert_eq!(first_seen, in_log, "first handlings follow the partition's log");
        prop_assert_eq!(st.committed, log.len() as u64, "every record committed");
    }

    // The broker's own history.
    let mut appended: BTreeMap<(TopicId, u32), u64> = BTreeMap::new();
    let mut committed_at: BTreeMap<StreamId, u64> = BTreeMap::new();
    let mut generation: BTreeMap<StreamId, u32> = BTreeMap::new();
    let mut next_delivery: BTreeMap<StreamId, u64> = BTreeMap::new();
    for op in broker.history() {
        match *op {
            BrokerOp::Append { topic, partition, offset } => {
                let n = appended.entry((topic, partition)).or_default();
                prop_assert_eq!(offset, *n, "appends are contiguous");
                *n += 1;
            }
            BrokerOp::Commit { stream, generation: g, offset, accepted } => {
                let current = *generation.get(&stream).unwrap_or(&0);
                prop_assert_eq!(
                    accepted,
                    g == current && accepted,
                    "only current-generation commits count"
                );
                if accepted {
                    let c = committed_at.entry(stream).or_default();
                    *c = (*c).max(offset);
                }
            }
            BrokerOp::Reset { stream, generation: g, to } => {
                prop_assert_eq!(
                    to,
                    *committed_at.get(&stream).unwrap_or(&0),
                    "a reset restarts at the committed offset"
                );
                generation.insert(stream, g);
                next_delivery.insert(stream, to);
            }
            BrokerOp::Deliver { stream, generation: g, first, count } => {
                prop_assert!(count >= 1 && count <= max_poll as u64, "a batch of 1..=max_poll");
                prop_assert_eq!(g, *generation.get(&stream).unwrap_or(&0));
                let n = next_delivery.entry(stream).or_default();
                prop_assert_eq!(first, *n, "deliveries are contiguous within a generation");
                *n = first + count;
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn broker_history_is_consistent_under_faults(c in case()) {
        let (sim, end) = run(&c);
        prop_assert_eq!(end, End::Settled, "the system settles once faults heal");
        check_history(&sim, c.max_poll)?;
    }

    /// Batched fetches hand the consumer exactly the records one-by-one
    /// fetches do: the same case with batches of one consumes the same
    /// messages (each partition's log, whole and in order, both times).
    #[test]
    fn batched_fetches_consume_what_one_by_one_fetches_consume(c in case()) {
        let one = Case { max_poll: 1, ..c.clone() };
        let (batched, end) = run(&c);
        prop_assert_eq!(end, End::Settled);
        let (single, end) = run(&one);
        prop_assert_eq!(end, End::Settled);
        check_history(&single, 1)?;
        let consumed = |sim: &Sim<Probe>| {
            let mut m: Vec<u64> = sim.app.seen.iter().map(|s| s.msg).collect();
            m.sort_unstable();
            m.dedup();
            m
        };
        prop_assert_eq!(consumed(&batched), consumed(&single));
        let mut committed: Log = single.view().db(NodeId(0)).expect("producer db").state().clone();
        committed.sort_unstable();
        prop_assert_eq!(consumed(&single), committed, "every committed message consumed");
    }

    #[test]
    fn the_same_case_gives_the_same_digest(c in case()) {
        let (a, _) = run(&c);
        let (b, _) = run(&c);
        prop_assert_eq!(a.app.seen.len(), b.app.seen.len());
        prop_assert_eq!(a.view().broker().history(), b.view().broker().history());
    }
}

/// One record published at 1 ms to a consumer whose offset commit leaves
/// 50 ms after its handling, over 1 ms links; `crash_at`, given the time
/// the record was first handled, picks when the consumer crashes (it
/// restarts 10 ms later). Returns what was handled and the sim.
fn one_record_and_a_crash(crash_at: impl Fn(u64) -> u64) -> (Vec<Seen>, Sim<Probe>) {
    let options = KernelOptions {
        net: NetOptions {
            latency_min_us: 1_000,
            latency_max_us: 1_000,
            latency_mean_extra_us: 0,
            ..NetOptions::default()
        },
        commit_delay_us: 50_000,
        ..KernelOptions::default()
    };
    let build = |faults: Vec<sim::FaultRecord>| {
        let probe = Probe {
            producer: NodeId(0),
            topic: TopicId(0),
            publish_at_us: vec![1_000],
            producer_booted: false,
            seen: vec![],
        };
        let mut sim = Sim::new(probe, 1, options.clone());
        let db = || Some(Database::new(Log::new(), push));
        let producer = sim.add_node("producer", Role::Service, db());
        let consumer = sim.add_node("consumer", Role::Service, db());
        sim.add_node("broker", Role::Broker, None);
        let topic = sim.create_topic("t");
        sim.subscribe(consumer, topic);
        sim.app.producer = producer;
        sim.schedule_faults(faults);
        sim.start();
        let outcome = sim.run(Phases {
            fault_phase_us: 200_000,
            heal_budget_us: 1_000_000,
            step_budget: 10_000,
        });
        assert_eq!(outcome.end, End::Settled);
        sim
    };
    let handled_at = build(vec![]).app.seen[0].at_us;
    let consumer = NodeId(1);
    let at = |time_us, fault| sim::FaultRecord { step: 0, time_us, fault, decision: None };
    let crash = crash_at(handled_at);
    let sim = build(vec![
        at(crash, sim::Fault::Crash { node: consumer }),
        at(crash + 10_000, sim::Fault::Restart { node: consumer }),
    ]);
    (sim.app.seen.clone(), sim)
}

/// A consumer that crashes after handling a record but before committing its
/// offset gets the record again: the commit never left.
#[test]
fn redelivers_what_was_consumed_but_not_committed_after_a_crash() {
    let (seen, sim) = one_record_and_a_crash(|handled| handled + 30_000);
    let seen: Vec<(u64, u32)> = seen.iter().map(|s| (s.offset, s.incarnation)).collect();
    assert_eq!(seen, vec![(0, 0), (0, 1)], "handled once before the crash and once after");
    let s = sim.view().broker().streams().iter().find(|s| s.committed == 1).map(|s| s.member);
    assert_eq!(s, Some(NodeId(1)), "and committed in the end");
}

/// A commit that left before its sender crashed still counts when it
/// arrives: the record is not handled again.
#[test]
fn a_commit_in_flight_when_its_sender_crashes_still_counts() {
    // It leaves 50 ms after the handling and takes 1 ms to arrive.
    let (seen, sim) = one_record_and_a_crash(|handled| handled + 50_500);
    let seen: Vec<(u64, u32)> = seen.iter().map(|s| (s.offset, s.incarnation)).collect();
    assert_eq!(seen, vec![(0, 0)], "handled once: the commit was on its way");
    let committed = sim.view().broker().streams().iter().any(|s| s.committed == 1);
    assert!(committed);
    // And one that would have left a moment after the crash did not.
    let (seen, _) = one_record_and_a_crash(|handled| handled + 49_900);
    assert_eq!(seen.len(), 2, "the commit had not left: the record came again");
}
