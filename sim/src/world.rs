//! All simulated state of one run, and what one step does to it.
//!
//! A step takes the next event off the queue and applies it: a packet reaches
//! a node (the broker, a consumer, an RPC handler), a node-local step runs (a
//! timer, the next record of a batch, an offset commit, a producer retry), or
//! a scheduled fault strikes. Work that can fail independently is split into
//! separate steps so that a crash can fall between any two of them.

use std::collections::VecDeque;

use crate::app::{App, AppDb};
use crate::broker::{Batch, Broker, BrokerOptions, StreamId, TopicId};
use crate::fault::{Fault, FaultRecord};
use crate::net::{NetOptions, Network};
use crate::node::{Node, NodeId, Role};
use crate::pct::{Pct, Schedule};
use crate::queue::{Due, EventQueue};
use crate::seed::Streams;
use crate::trace::Trace;
use crate::trace::TraceKind;

/// Kernel settings; field names carry their unit last.
#[derive(Clone, Debug)]
pub struct KernelOptions {
    pub net: NetOptions,
    pub broker: BrokerOptions,
    /// A produce request unanswered this long is sent again.
    pub produce_timeout_us: u64,
    pub produce_batch_max: usize,
    /// How long a consumer's handler takes per record.
    pub handler_us: u64,
    /// How long any application callback on a service node (a request, a
    /// timer, a record) holds the node: what reaches it meanwhile waits.
    pub service_us: u64,
    /// On an instance that shares its database, how much longer than
    /// `service_us` a handler's commit may take: drawn uniformly up to this,
    /// so transactions commit in another order than they staged their rows.
    pub commit_us: u64,
    /// Delay between the last record of a batch and its offset commit.
    pub commit_delay_us: u64,
    /// How long a direct (non-outbox) publish waits in the producer's memory.
    pub linger_us: u64,
    /// Keep readable trace lines.
    pub trace_lines: bool,
    /// Keep the broker's operation history.
    pub broker_history: bool,
    /// Probability that a commit fails during the fault phase.
    pub commit_fail_ppm: u32,
    /// Probability that a commit applies but its caller is told it failed.
    pub commit_lost_ack_ppm: u32,
    /// Probability that a commit hangs: nothing applies, and the node waits
    /// `commit_hang_us` (its statement timeout) before it learns of a failure.
    pub commit_hang_ppm: u32,
    pub commit_hang_us: u64,
    /// Probability that the relay's marking of acknowledged rows as sent
    /// fails (the rows are published again).
    pub mark_sent_fail_ppm: u32,
    /// Probability that a consumer's write to its dead-letter topic fails
    /// (the record stays where it is and is tried again).
    pub dead_letter_fail_ppm: u32,
    /// Attempts at a record before it goes to the dead-letter topic; `None`
    /// retries forever.
    pub max_attempts: Option<u32>,
    /// Wait before handling a failed record again.
    pub retry_backoff_us: u64,
    /// Wait before the recovery pass retries a dead letter that failed again.
    pub dead_letter_retry_us: u64,
    /// Consumers commit a batch's offset as soon as it arrives, before
    /// handling it (at-most-once; only a planted bug does this).
    pub commit_before_process: bool,
    /// Relays publish only outbox rows above the highest id published so
    /// far (a high-water cursor), not every pending row; a row whose
    /// transaction committed after a higher id was published is never sent
    /// (only a planted bug does this).
    pub relay_high_water: bool,
    /// Fault decisions allowed to strike, by their key (see `Decision`);
    /// `None` allows every one. Shrinking switches faults off here.
    pub fault_mask: Option<std::collections::BTreeSet<u64>>,
    /// A recording to follow instead of the seed's fault draws, as far as
    /// it still applies (best-effort replay).
    pub follow: Option<Follow>,
    /// Which of the events due at about the same time runs first.
    pub schedule: Schedule,
    /// The span PCT's change points are drawn over (the fault phase).
    pub schedule_horizon_us: u64,
}

/// A recorded fault plan to follow: at each decision up to step `until`,
/// the recorded fault strikes if the recording has one under that key and
/// it still fits (the same link, node or name), and no fault strikes if the
/// recording has none, whatever the seed draws. The first recorded fault
/// that no longer fits is a divergence: from there the seed decides.
#[derive(Clone, Debug, Default)]
pub struct Follow {
    pub faults: std::collections::BTreeMap<u64, Fault>,
    /// The recording's last step; later decisions come from the seed.
    pub until: u64,
    /// A plan rather than a recording (shrinking): a recorded fault that
    /// no longer fits is skipped, and the plan goes on deciding.
    pub strict: bool,
}

/// Where a followed recording stopped applying.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    pub step: u64,
    pub time_us: u64,
    pub key: u64,
    /// What the recording has under `key`, and what the run was deciding
    /// there instead.
    pub recorded: Fault,
    pub found: String,
}

impl Default for KernelOptions {
    fn default() -> Self {
        KernelOptions {
            net: NetOptions::default(),
            broker: BrokerOptions::default(),
            produce_timeout_us: 100_000,
            produce_batch_max: 16,
            handler_us: 200,
            service_us: 0,
            commit_us: 0,
            commit_delay_us: 500,
            linger_us: 2_000,
            trace_lines: false,
            broker_history: false,
            commit_fail_ppm: 0,
            commit_lost_ack_ppm: 0,
            commit_hang_ppm: 0,
            commit_hang_us: 100_000,
            mark_sent_fail_ppm: 0,
            dead_letter_fail_ppm: 0,
            max_attempts: Some(5),
            retry_backoff_us: 10_000,
            dead_letter_retry_us: 500_000,
            commit_before_process: false,
            relay_high_water: false,
            fault_mask: None,
            follow: None,
            schedule: Schedule::Seeded,
            schedule_horizon_us: 0,
        }
    }
}

/// Where a producer's records come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// The node's outbox table: durable, resumes after a crash.
    Outbox,
    /// The producer's memory (a direct publish after commit): lost at a crash.
    Memory,
}

/// The producer of an in-memory record is its node: this bit keeps those
/// origins apart from databases'.
pub const MEMORY_ORIGIN: u64 = 1 << 15;

/// An event id: the producer's own id under its origin (a database's index
/// plus one, or [`MEMORY_ORIGIN`] with a node's index).
pub fn event_id(origin: u64, id: u64) -> u64 {
    origin << 40 | id
}

#[derive(Clone, Debug, Hash)]
pub struct ProduceRecord<M> {
    /// The producer's own id for it: the outbox row's, or the in-memory
    /// producer's sequence. The acknowledgement names it.
    pub id: u64,
    /// The event id consumers see: `id` with its producer (the database, or
    /// the node for the in-memory producer) in the top bits, so ids from
    /// two producers never meet. A row published again keeps it.
    pub event: u64,
    pub topic: TopicId,
    pub key: u64,
    pub msg: M,
}

/// What travels between nodes.
#[derive(Clone, Debug, Hash)]
pub enum Packet<M> {
    App(M),
    Produce {
        source: Source,
        seq: u64,
        records: Vec<ProduceRecord<M>>,
    },
    ProduceAck {
        source: Source,
        seq: u64,
        ids: Vec<u64>,
    },
    Deliver(Batch<M>),
    /// An offset commit. It is scheduled as the consumer's last handling
    /// ends and leaves `departs_us` later, in one hop: the broker takes it
    /// only if the consumer's `incarnation` still ran when it left, so a
    /// crash can still fall between the handling and the commit.
    Commit {
        stream: StreamId,
        generation: u32,
        offset: u64,
        departs_us: u64,
        incarnation: u32,
    },
    /// The consumer is alive and still working on its batch: its session
    /// should not expire while a slow record is retried.
    Heartbeat {
        stream: StreamId,
        generation: u32,
    },
}

/// A step a node takes by itself. It carries the incarnation that scheduled
/// it and is dropped if the node has crashed since.
#[derive(Clone, Debug, Hash)]
pub enum Local {
    Timer(u64),
    Process {
        stream: StreamId,
        generation: u32,
    },
    /// A producer's deadline timer (see [`crate::deadline`]).
    ProduceTimeout {
        source: Source,
        timer: crate::deadline::Generation,
    },
    Linger,
    /// The commit step of a handler on an instance that shares its
    /// database: the handler read when its input arrived, and runs on what
    /// it read now, its commit checked against what changed meanwhile.
    CommitStep,
    /// A paused instance woke: it rejoins its consumer groups.
    Rejoin,
}

#[derive(Clone, Debug)]
pub enum Event<M> {
    Packet {
        from: NodeId,
        to: NodeId,
        packet: Packet<M>,
    },
    Local {
        node: NodeId,
        incarnation: u32,
        local: Local,
    },
    /// A stream's fetch timer (see [`crate::deadline`]).
    FetchTimeout {
        stream: StreamId,
        timer: crate::deadline::Generation,
    },
    /// Index into the scheduled fault list.
    Fault(usize),
    /// A busy node finished its handler: it takes the next event waiting
    /// for it, if that incarnation is still the node's.
    Free {
        node: NodeId,
        incarnation: u32,
    },
}

impl<M> Event<M> {
    /// The node that takes the event (the broker's fetch timeouts are the
    /// broker's); `None` for a scheduled fault.
    pub fn node(&self, broker: NodeId) -> Option<NodeId> {
        match self {
            Event::Packet { to, .. } => Some(*to),
            Event::Local { node, .. } | Event::Free { node, .. } => Some(*node),
            Event::FetchTimeout { .. } => Some(broker),
            Event::Fault(_) => None,
        }
    }
}

/// A producer's volatile state.
#[derive(Clone, Debug, Default)]
pub struct Producer {
    pub seq: u64,
    /// The batch in flight, by sequence number.
    pub inflight: Option<u64>,
    /// When the batch in flight is sent again unanswered.
    pub deadline: crate::deadline::Deadline,
}

/// A node's kernel-side volatile state: its producers and, for the direct
/// publishes of a planted dual-write bug, the records still in memory.
#[derive(Clone, Debug)]
pub struct Runtime<M> {
    pub relay: Producer,
    pub direct: Producer,
    pub memory: VecDeque<ProduceRecord<M>>,
    pub next_memory_id: u64,
    pub linger_pending: bool,
    /// Events that reached the node while it was busy with a handler, in
    /// arrival order, and whether a `Free` event is due to take the next.
    /// Lost at a crash, like everything that had reached the process.
    pub waiting: VecDeque<Event<M>>,
    pub free_pending: bool,
    /// The input whose handler has read and waits for its commit step
    /// (instances that share a database only).
    pub deferred: Option<Event<M>>,
    /// This node's view of each stream it consumes, by stream id (grown on
    /// first use): a stream that moved to another instance keeps its old
    /// owner's view until that owner crashes, as a zombie's memory would.
    pub consumers: Vec<ConsumerSide<M>>,
}

impl<M> Runtime<M> {
    pub fn producer(&mut self, source: Source) -> &mut Producer {
        match source {
            Source::Outbox => &mut self.relay,
            Source::Memory => &mut self.direct,
        }
    }
}

impl<M> Default for Runtime<M> {
    fn default() -> Self {
        Runtime {
            relay: Producer::default(),
            direct: Producer::default(),
            memory: VecDeque::new(),
            waiting: VecDeque::new(),
            free_pending: false,
            deferred: None,
            consumers: Vec::new(),
            next_memory_id: 1,
            linger_pending: false,
        }
    }
}

/// A consumer's volatile view of one stream.
#[derive(Clone, Debug)]
pub struct ConsumerSide<M> {
    /// The session this consumer follows, and the next offset it expects;
    /// `None` before the first delivery and after a crash.
    pub session: Option<(u32, u64)>,
    /// Records of the batch not yet handled: offset, event id, message.
    pub queue: VecDeque<(u64, u64, M)>,
    /// Failed attempts at the record at the front of the queue.
    pub attempts: u32,
}

impl<M> Default for ConsumerSide<M> {
    fn default() -> Self {
        ConsumerSide { session: None, queue: VecDeque::new(), attempts: 0 }
    }
}

/// Counters a run reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub steps: u64,
    pub packets_sent: u64,
    pub packets_delivered: u64,
    pub records_handled: u64,
    pub publishes: u64,
    pub handler_retries: u64,
    pub dead_letters: u64,
    /// Commits that reported a failure, whether or not they applied.
    pub commit_failures: u64,
    /// Of those, commits that in fact applied (their answer was lost).
    pub commits_unacknowledged: u64,
    /// Relay updates marking rows sent that failed, and dead-letter writes
    /// that failed.
    pub mark_sent_failures: u64,
    pub dead_letter_failures: u64,
    /// Events that waited in line for a busy node.
    pub queued: u64,
    /// Commits refused because what their handler read had changed by the
    /// time it committed (another instance committed first).
    pub commit_conflicts: u64,
    /// Handlers that committed on a read another instance's commit had
    /// moved past (whether or not the check caught it).
    pub stale_reads: u64,
    /// Outbox rows that committed with an id below one already committed
    /// (their transaction staged them earlier and committed later).
    pub late_rows: u64,
    /// Streams moved from one instance to another (crash, pause, rejoin).
    pub reassignments: u64,
    /// Offset commits refused because they came from an older generation
    /// (a zombie consumer).
    pub fenced_commits: u64,
    /// Fault decisions where a fault was drawn or followed (struck, or
    /// switched off by the mask).
    pub fault_decisions: u64,
    /// Steps by the kind of event they took (see [`EventKind`]).
    pub by_kind: [u64; EventKind::COUNT],
    /// Of those, events that did nothing when they came: a timer or local
    /// step of a crashed incarnation or an old generation, a deadline
    /// already met.
    pub stale_by_kind: [u64; EventKind::COUNT],
    /// The most events pending at once.
    pub max_pending: u64,
}

/// What an event is, for counting where a run's steps go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    AppMessage,
    Produce,
    ProduceAck,
    Deliver,
    OffsetCommit,
    Heartbeat,
    Timer,
    Process,
    ProduceTimeout,
    Linger,
    CommitStep,
    Rejoin,
    FetchTimeout,
    Fault,
    Free,
}

impl EventKind {
    pub const COUNT: usize = 15;
    pub const ALL: [EventKind; EventKind::COUNT] = [
        EventKind::AppMessage,
        EventKind::Produce,
        EventKind::ProduceAck,
        EventKind::Deliver,
        EventKind::OffsetCommit,
        EventKind::Heartbeat,
        EventKind::Timer,
        EventKind::Process,
        EventKind::ProduceTimeout,
        EventKind::Linger,
        EventKind::CommitStep,
        EventKind::Rejoin,
        EventKind::FetchTimeout,
        EventKind::Fault,
        EventKind::Free,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EventKind::AppMessage => "packet: application message",
            EventKind::Produce => "packet: produce request",
            EventKind::ProduceAck => "packet: produce acknowledgement",
            EventKind::Deliver => "packet: batch delivery",
            EventKind::OffsetCommit => "packet: offset commit",
            EventKind::Heartbeat => "packet: consumer heartbeat",
            EventKind::Timer => "local: application timer",
            EventKind::Process => "local: handle a record",
            EventKind::ProduceTimeout => "local: produce deadline",
            EventKind::Linger => "local: producer linger",
            EventKind::CommitStep => "local: commit step",
            EventKind::Rejoin => "local: rejoin the group",
            EventKind::FetchTimeout => "broker: fetch deadline",
            EventKind::Fault => "scheduled fault",
            EventKind::Free => "node free: next in line",
        }
    }
}

impl<M> Event<M> {
    pub fn kind(&self) -> EventKind {
        match self {
            Event::Packet { packet, .. } => match packet {
                Packet::App(_) => EventKind::AppMessage,
                Packet::Produce { .. } => EventKind::Produce,
                Packet::ProduceAck { .. } => EventKind::ProduceAck,
                Packet::Deliver(_) => EventKind::Deliver,
                Packet::Commit { .. } => EventKind::OffsetCommit,
                Packet::Heartbeat { .. } => EventKind::Heartbeat,
            },
            Event::Local { local, .. } => match local {
                Local::Timer(_) => EventKind::Timer,
                Local::Process { .. } => EventKind::Process,
                Local::ProduceTimeout { .. } => EventKind::ProduceTimeout,
                Local::Linger => EventKind::Linger,
                Local::CommitStep => EventKind::CommitStep,
                Local::Rejoin => EventKind::Rejoin,
            },
            Event::FetchTimeout { .. } => EventKind::FetchTimeout,
            Event::Fault(_) => EventKind::Fault,
            Event::Free { .. } => EventKind::Free,
        }
    }
}

/// The classes of fault decisions numbered one after another as a run
/// takes them: every message sent while faults are on, every commit in the
/// fault phase, every application-level fault the application asks about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Network = 0,
    Commit = 1,
    Injected = 2,
    /// The relay marking rows sent, and a consumer's dead-letter writes.
    Relay = 3,
}

/// How a fault decision is named for the fault mask and for a recording: a
/// scheduled fault by its place in the schedule (drawn before the run, so
/// the name holds whatever else the run does), any other by its class, the
/// link or node it concerns, and the number of the opportunity there,
/// whether a fault struck or not (so a recorded fault can be forced where
/// the seed's draw would now give none). Counting per link rather than per
/// run keeps a decision's name when the traffic on other links changes, as
/// it does whenever a shrinker switches a fault off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Scheduled(usize),
    /// An opportunity of `class` on the link `a` → `b` (a node's own:
    /// `a` == `b`).
    Counted(Class, NodeId, NodeId),
}

/// A decision's key: class in the top 16 bits, then the link's two nodes
/// (8 bits each), then the number of the opportunity there.
pub fn decision_key(class: u64, a: NodeId, b: NodeId, n: u64) -> u64 {
    class << 48 | (a.0 as u64 & 0xff) << 40 | (b.0 as u64 & 0xff) << 32 | (n & 0xffff_ffff)
}

/// Buffers that packets carry, kept for reuse once their packet has been
/// taken apart: a produce request's records and an acknowledgement's ids.
/// (The broker keeps its own for the batches it delivers.)
pub struct Spares<M> {
    records: Vec<Vec<ProduceRecord<M>>>,
    ids: Vec<Vec<u64>>,
}

impl<M> Default for Spares<M> {
    fn default() -> Self {
        Spares { records: Vec::new(), ids: Vec::new() }
    }
}

impl<M> Spares<M> {
    pub fn records(&mut self) -> Vec<ProduceRecord<M>> {
        self.records.pop().unwrap_or_default()
    }
    pub fn ids(&mut self) -> Vec<u64> {
        self.ids.pop().unwrap_or_default()
    }
    pub fn keep_records(&mut self, mut v: Vec<ProduceRecord<M>>) {
        v.clear();
        self.records.push(v);
    }
    pub fn keep_ids(&mut self, mut v: Vec<u64>) {
        v.clear();
        self.ids.push(v);
    }
}

/// Everything but the nodes' application state: split out so that a callback
/// can borrow the node's volatile state and the rest of the world at once.
pub struct Core<M> {
    pub options: KernelOptions,
    pub now_us: u64,
    /// When the fault phase ended and every fault healed.
    pub healed_at_us: Option<u64>,
    pub queue: EventQueue<Event<M>>,
    pub streams: Streams,
    pub net: Network,
    pub broker: Broker<M>,
    pub broker_node: NodeId,
    pub nodes: Vec<Node>,
    /// `NodeId(i)` at index `i`.
    ids: Vec<NodeId>,
    pub runtime: Vec<Runtime<M>>,
    pub trace: Trace,
    /// Every fault that struck, in the order decided.
    pub faults: Vec<FaultRecord>,
    /// Fault opportunities so far per counted class and link (see
    /// `Decision`), sized when the run starts.
    pub decisions: Vec<u64>,
    /// Following a recording: still on, and where it stopped applying.
    pub following: bool,
    pub divergence: Option<Divergence>,
    /// Under PCT, one queue per node (and one for scheduled faults) in
    /// place of `queue`.
    pub(crate) pct: Option<Pct>,
    lanes: Vec<EventQueue<Event<M>>>,
    /// Scheduled faults, by the index their events carry.
    pub scheduled: Vec<FaultRecord>,
    pub stats: Stats,
    pub spares: Spares<M>,
}

pub struct World<A: App> {
    pub core: Core<A::Msg>,
    /// The databases, one per service, shared by its instances.
    pub dbs: Vec<AppDb<A>>,
    /// Each node's database, by index into `dbs`.
    pub db_of: Vec<Option<usize>>,
    /// Each database's instances, in the order they were added.
    pub instances: Vec<Vec<NodeId>>,
    pub caches: Vec<Option<crate::cache::Cache<A::Cached>>>,
    pub vols: Vec<Option<A::Volatile>>,
}

impl<A: App> World<A> {
    /// The context for running application code on `node`.
    pub(crate) fn cx(&mut self, node: NodeId) -> crate::cx::Cx<'_, A> {
        crate::cx::Cx {
            node,
            core: &mut self.core,
            db: self.db_of[node.index()].map(|i| &mut self.dbs[i]),
            caches: &mut self.caches,
            committed: false,
        }
    }

    /// The context for running application code on `node`, with the
    /// node's volatile state beside it, borrowed in place: moving that
    /// state out and back on every handler cost a copy each way.
    pub(crate) fn cx_and_vol(&mut self, node: NodeId) -> (crate::cx::Cx<'_, A>, &mut A::Volatile) {
        let vol = self.vols[node.index()].as_mut().expect("an up node has volatile state");
        let cx = crate::cx::Cx {
            node,
            core: &mut self.core,
            db: self.db_of[node.index()].map(|i| &mut self.dbs[i]),
            caches: &mut self.caches,
            committed: false,
        };
        (cx, vol)
    }

    pub fn db(&self, node: NodeId) -> Option<&AppDb<A>> {
        self.db_of[node.index()].map(|i| &self.dbs[i])
    }

    pub fn db_mut(&mut self, node: NodeId) -> Option<&mut AppDb<A>> {
        self.db_of[node.index()].map(|i| &mut self.dbs[i])
    }

    /// The instances that share `node`'s database, `node` included; just
    /// `node` if it has none.
    pub fn instances_of(&self, node: NodeId) -> &[NodeId] {
        match self.db_of[node.index()] {
            Some(i) => &self.instances[i],
            None => std::slice::from_ref(&self.core.nodes_ids()[node.index()]),
        }
    }

    /// Whether `node` shares its database with another instance: its
    /// handlers then read and commit in separate steps.
    pub fn shares_db(&self, node: NodeId) -> bool {
        self.db_of[node.index()].is_some_and(|i| self.instances[i].len() > 1)
    }
}

impl<M: Clone + std::hash::Hash + std::fmt::Debug> Core<M> {
    pub fn new(seed: u64, options: KernelOptions) -> Core<M> {
        let mut broker = Broker::new(options.broker.clone());
        if options.broker_history {
            broker.record_history();
        }
        let following = options.follow.is_some();
        Core {
            net: Network::new(options.net.clone(), 0),
            trace: Trace::new(options.trace_lines),
            options,
            now_us: 0,
            healed_at_us: None,
            queue: EventQueue::default(),
            streams: Streams::new(seed),
            broker,
            broker_node: NodeId(0),
            nodes: Vec::new(),
            ids: Vec::new(),
            runtime: Vec::new(),
            faults: Vec::new(),
            decisions: Vec::new(),
            following,
            divergence: None,
            pct: None,
            lanes: Vec::new(),
            scheduled: Vec::new(),
            stats: Stats::default(),
            spares: Spares::default(),
        }
    }

    /// Schedule an event at `time_us` with a seeded tie-break.
    pub fn push(&mut self, time_us: u64, event: Event<M>) {
        // The queue orders ties by the tie-break's high 32 bits: drawing
        // only those halves what the schedule stream generates per event.
        let tb = (self.streams.schedule.next_u32() as u64) << 32;
        let pending = match self.pct {
            None => {
                self.queue.push(time_us, tb, event);
                self.queue.len()
            }
            Some(_) => {
                let lane = self.lane(&event);
                self.lanes[lane].push(time_us, tb, event);
                self.lanes.iter().map(EventQueue::len).sum()
            }
        } as u64;
        self.stats.max_pending = self.stats.max_pending.max(pending);
    }

    /// Count the step being taken as one that found nothing to do.
    pub fn stale(&mut self, kind: EventKind) {
        self.stats.stale_by_kind[kind as usize] += 1;
    }

    /// Take a fault decision. `drawn` is the fault the seed's draw gives
    /// here, if any; `fits` says whether a recorded fault could strike here.
    /// A recording being followed overrides the draw, and the fault mask
    /// can refuse what is left. The fault that strikes is recorded and
    /// returned.
    #[inline]
    pub fn decide(
        &mut self,
        decision: Decision,
        drawn: Option<Fault>,
        fits: impl Fn(&Fault) -> bool,
    ) -> Option<Fault> {
        let key = match decision {
            Decision::Scheduled(i) => decision_key(0, NodeId(0), NodeId(0), i as u64),
            Decision::Counted(class, a, b) => {
                let nodes = self.nodes.len();
                if self.decisions.is_empty() {
                    self.decisions = vec![0; 4 * nodes * nodes];
                }
                let n =
                    &mut self.decisions[(class as usize * nodes + a.index()) * nodes + b.index()];
                *n += 1;
                decision_key(class as u64 + 1, a, b, *n - 1)
            }
        };
        let fault = if self.following { self.follow(key, drawn, fits) } else { drawn }?;
        self.stats.fault_decisions += 1;
        if self.options.fault_mask.as_ref().is_some_and(|m| !m.contains(&key)) {
            return None;
        }
        self.record(fault.clone(), Some(key));
        Some(fault)
    }

    /// Decide whether the relay's or a consumer's own write on `node` fails:
    /// one draw of `ppm` whatever the outcome, the fault named by `fault`.
    pub fn relay_write_fails(&mut self, node: NodeId, ppm: u32, fault: Fault) -> bool {
        if ppm == 0 {
            return false;
        }
        let hit = self.streams.faults.chance(ppm);
        if !self.net.faults_on {
            return false;
        }
        let kind = std::mem::discriminant(&fault);
        let fits = |f: &Fault| std::mem::discriminant(f) == kind && f.nodes().0 == node;
        let decision = Decision::Counted(Class::Relay, node, node);
        self.decide(decision, hit.then_some(fault), fits).is_some()
    }

    /// The decision under `key` as the recording has it, or, past its end
    /// or where it no longer fits, as drawn.
    fn follow(
        &mut self,
        key: u64,
        drawn: Option<Fault>,
        fits: impl Fn(&Fault) -> bool,
    ) -> Option<Fault> {
        let follow = self.options.follow.as_ref().expect("following a recording");
        if self.stats.steps > follow.until {
            self.following = false;
            return drawn;
        }
        match follow.faults.get(&key) {
            None => None,
            Some(f) if fits(f) => Some(f.clone()),
            Some(_) if follow.strict => None,
            Some(f) => {
                self.divergence = Some(Divergence {
                    step: self.stats.steps,
                    time_us: self.now_us,
                    key,
                    recorded: f.clone(),
                    found: match &drawn {
                        Some(d) => format!("{d:?}"),
                        None => "a decision no recorded fault fits".to_string(),
                    },
                });
                self.following = false;
                drawn
            }
        }
    }

    /// The time of the next event, if any.
    pub fn peek_time(&self) -> Option<u64> {
        match &self.pct {
            None => self.queue.peek_time(),
            Some(_) => self.lanes.iter().filter_map(EventQueue::peek_time).min(),
        }
    }

    /// The next event to run if it runs before `limit`: see
    /// [`Core::next_event`].
    pub fn next_event_before(&mut self, limit: u64) -> Due<(u64, Event<M>)> {
        if self.pct.is_none() {
            return self.queue.pop_before(limit).map(|e| (e.time_us, e.event));
        }
        match self.peek_time() {
            None => Due::Empty,
            Some(t) if t >= limit => Due::Later,
            Some(_) => Due::Now(self.next_event().expect("a due event")),
        }
    }

    /// The next event to run, with the time it runs at: the earliest, or
    /// under PCT the earliest of the highest-priority node among the nodes
    /// with an event due within the window of the earliest.
    pub fn next_event(&mut self) -> Option<(u64, Event<M>)> {
        let Some(pct) = &mut self.pct else { return self.queue.pop() };
        let horizon = self.lanes.iter().filter_map(EventQueue::peek_time).min()? + pct.window_us;
        // Lane 0 is the environment's (highest priority), lane i + 1 node i's.
        let lane = (0..self.lanes.len())
            .filter(|&l| self.lanes[l].peek_time().is_some_and(|t| t <= horizon))
            .max_by_key(|&l| pct.priority(l.checked_sub(1).map(|i| NodeId(i as u16))))
            .expect("the earliest lane is due");
        let (t, event) = self.lanes[lane].pop().expect("a due lane has an event");
        let now = self.now_us.max(t);
        pct.ran(lane.checked_sub(1).map(|i| NodeId(i as u16)), now);
        Some((now, event))
    }

    /// Switch to PCT: give every node a lane of its own and move the
    /// events queued so far into their lanes.
    pub(crate) fn start_pct(&mut self, pct: Pct) {
        self.lanes = (0..=self.nodes.len()).map(|_| EventQueue::default()).collect();
        self.pct = Some(pct);
        while let Some(e) = self.queue.pop_entry() {
            let lane = self.lane(&e.event);
            self.lanes[lane].restore(e);
        }
    }

    fn lane(&self, event: &Event<M>) -> usize {
        event.node(self.broker_node).map_or(0, |n| n.index() + 1)
    }

    /// Record a fault that struck; `decision`: its key for the fault mask
    /// (none for the heal phase's restarts, which no mask switches off).
    pub fn record(&mut self, fault: Fault, decision: Option<u64>) {
        self.trace.fold(crate::trace::stable_hash(&fault));
        let (step, time_us) = (self.stats.steps, self.now_us);
        let (a, b) = fault.nodes();
        let b = b.map(|b| self.nodes[b.index()].name.as_str());
        let t = &mut self.trace;
        t.record(TraceKind::Fault, &self.nodes[a.index()].name, b, || format!("fault {fault:?}"));
        self.faults.push(FaultRecord { step, time_us, fault, decision });
    }

    /// Send a packet over the network.
    pub fn send(&mut self, from: NodeId, to: NodeId, packet: Packet<M>) {
        self.send_delayed(from, to, packet, 0);
    }

    /// Send a packet that sets off only after `extra_us`.
    pub fn send_delayed(&mut self, from: NodeId, to: NodeId, packet: Packet<M>, extra_us: u64) {
        self.stats.packets_sent += 1;
        let route = self.net.route(from, to, &mut self.streams.network, &mut self.streams.latency);
        let fault = match route.open {
            true => {
                self.decide(Decision::Counted(Class::Network, from, to), route.fault.clone(), |f| {
                    crate::net::Route::fits(from, to, f)
                })
            }
            false => None,
        };
        let at = self.now_us + extra_us;
        match route.deliveries(fault.as_ref()) {
            [Some(a), Some(b)] => {
                self.push(at + b, Event::Packet { from, to, packet: packet.clone() });
                self.push(at + a, Event::Packet { from, to, packet });
            }
            [Some(a), None] => self.push(at + a, Event::Packet { from, to, packet }),
            _ => {}
        }
    }

    /// Send `node`'s commit of `offset` on `stream`, to leave the node
    /// `delay_us` from now. Its fate on the network is decided now, as for
    /// any message sent with a delay; whether it left at all is decided when
    /// it reaches the broker (see [`Packet::Commit`]).
    pub fn send_commit(
        &mut self,
        node: NodeId,
        stream: StreamId,
        (generation, offset): (u32, u64),
        delay_us: u64,
    ) {
        let incarnation = self.nodes[node.index()].incarnation;
        let departs_us = self.now_us + delay_us;
        let packet = Packet::Commit { stream, generation, offset, departs_us, incarnation };
        self.send_delayed(node, self.broker_node, packet, delay_us);
    }

    /// Schedule a node-local step.
    pub fn local(&mut self, node: NodeId, delay_us: u64, local: Local) {
        let incarnation = self.nodes[node.index()].incarnation;
        self.push(self.now_us + delay_us, Event::Local { node, incarnation, local });
    }

    /// The node ids in order (for slices of one node).
    pub(crate) fn nodes_ids(&self) -> &[NodeId] {
        &self.ids
    }

    /// `node`'s view of `stream`.
    pub fn side(&mut self, node: NodeId, stream: StreamId) -> &mut ConsumerSide<M> {
        let sides = &mut self.runtime[node.index()].consumers;
        if sides.len() <= stream.index() {
            sides.resize_with(stream.index() + 1, ConsumerSide::default);
        }
        &mut sides[stream.index()]
    }

    /// Send a stream's next batch if it has one and its member is up.
    pub fn pump(&mut self, stream: StreamId) {
        let member = self.broker.stream(stream).member;
        if !self.nodes[member.index()].up || !self.nodes[self.broker_node.index()].up {
            return;
        }
        let due = self.now_us + self.options.broker.fetch_timeout_us;
        if let Some((batch, timer)) = self.broker.next_batch(stream, due) {
            if let Some((at, timer)) = timer {
                self.push(at, Event::FetchTimeout { stream, timer });
            }
            self.send(self.broker_node, member, Packet::Deliver(batch));
        }
    }

    /// Add a node's kernel-side state.
    pub(crate) fn add_node(&mut self, node: Node) -> NodeId {
        let id = NodeId(self.nodes.len() as u16);
        self.nodes.push(node);
        self.ids.push(id);
        self.runtime.push(Runtime::default());
        id
    }

    pub fn role(&self, node: NodeId) -> Role {
        self.nodes[node.index()].role
    }
}
