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
use crate::queue::EventQueue;
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
    /// Fault decisions allowed to strike, by their number in the order the
    /// run takes them (every decision that would strike counts, allowed or
    /// not); `None` allows every one. Shrinking switches faults off here.
    pub fault_mask: Option<std::collections::BTreeSet<u64>>,
}

impl Default for KernelOptions {
    fn default() -> Self {
        KernelOptions {
            net: NetOptions::default(),
            broker: BrokerOptions::default(),
            produce_timeout_us: 100_000,
            produce_batch_max: 16,
            handler_us: 200,
            commit_delay_us: 500,
            linger_us: 2_000,
            trace_lines: false,
            broker_history: false,
            commit_fail_ppm: 0,
            max_attempts: Some(5),
            retry_backoff_us: 10_000,
            dead_letter_retry_us: 500_000,
            commit_before_process: false,
            fault_mask: None,
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

#[derive(Clone, Debug, Hash)]
pub struct ProduceRecord<M> {
    pub id: u64,
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
    Commit {
        stream: StreamId,
        generation: u32,
        offset: u64,
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
    Process { stream: StreamId, generation: u32 },
    CommitOffset { stream: StreamId, generation: u32, offset: u64 },
    ProduceTimeout { source: Source, seq: u64 },
    Linger,
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
    FetchTimeout {
        stream: StreamId,
        seq: u64,
    },
    /// Index into the scheduled fault list.
    Fault(usize),
}

/// A producer's volatile state.
#[derive(Clone, Debug, Default)]
pub struct Producer {
    pub seq: u64,
    /// The batch in flight, by sequence number.
    pub inflight: Option<u64>,
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
    pub queue: VecDeque<(u64, M)>,
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
    pub commit_failures: u64,
    /// Offset commits refused because they came from an older generation
    /// (a zombie consumer).
    pub fenced_commits: u64,
    /// Fault decisions numbered (struck, or switched off by the mask).
    pub fault_decisions: u64,
}

/// The classes of fault decisions numbered one after another as a run
/// takes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Network = 0,
    Commit = 1,
    Injected = 2,
}

/// How a fault decision is named for the fault mask: a scheduled fault by
/// its place in the schedule (drawn before the run, so the name holds
/// whatever else the run does), any other by its class and its number
/// within the class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Scheduled(usize),
    Counted(Class),
}

/// A decision's key: class in the top 16 bits, number below.
pub fn decision_key(class: u64, n: u64) -> u64 {
    class << 48 | n
}

/// Everything but the nodes' application state: split out so that a callback
/// can borrow the node's volatile state and the rest of the world at once.
pub struct Core<M> {
    pub options: KernelOptions,
    pub now_us: u64,
    pub queue: EventQueue<Event<M>>,
    pub streams: Streams,
    pub net: Network,
    pub broker: Broker<M>,
    pub broker_node: NodeId,
    pub nodes: Vec<Node>,
    pub runtime: Vec<Runtime<M>>,
    pub consumers: Vec<ConsumerSide<M>>,
    pub trace: Trace,
    /// Every fault that struck, in the order decided.
    pub faults: Vec<FaultRecord>,
    /// Fault decisions taken so far per counted class (see `Decision`).
    pub decisions: [u64; 3],
    /// Scheduled faults, by the index their events carry.
    pub scheduled: Vec<FaultRecord>,
    pub stats: Stats,
}

pub struct World<A: App> {
    pub core: Core<A::Msg>,
    pub dbs: Vec<Option<AppDb<A>>>,
    pub caches: Vec<Option<crate::cache::Cache<A::Cached>>>,
    pub vols: Vec<Option<A::Volatile>>,
}

impl<A: App> World<A> {
    /// The context for running application code on `node`.
    pub(crate) fn cx(&mut self, node: NodeId) -> crate::cx::Cx<'_, A> {
        crate::cx::Cx {
            node,
            core: &mut self.core,
            db: self.dbs[node.index()].as_mut(),
            caches: &mut self.caches,
            committed: false,
        }
    }
}

impl<M: Clone + std::hash::Hash + std::fmt::Debug> Core<M> {
    pub fn new(seed: u64, options: KernelOptions) -> Core<M> {
        let mut broker = Broker::new(options.broker.clone());
        if options.broker_history {
            broker.record_history();
        }
        Core {
            net: Network::new(options.net.clone(), 0),
            trace: Trace::new(options.trace_lines),
            options,
            now_us: 0,
            queue: EventQueue::default(),
            streams: Streams::new(seed),
            broker,
            broker_node: NodeId(0),
            nodes: Vec::new(),
            runtime: Vec::new(),
            consumers: Vec::new(),
            faults: Vec::new(),
            decisions: [0; 3],
            scheduled: Vec::new(),
            stats: Stats::default(),
        }
    }

    /// Schedule an event at `time_us` with a seeded tie-break.
    pub fn push(&mut self, time_us: u64, event: Event<M>) {
        let tb = self.streams.schedule.next_u64();
        self.queue.push(time_us, tb, event);
    }

    /// A fault is about to strike: name the decision and, if the fault mask
    /// allows it, record it and return true. A fault not allowed does not
    /// happen, and leaves no record.
    pub fn admit(&mut self, fault: Fault, decision: Decision) -> bool {
        self.stats.fault_decisions += 1;
        let key = match decision {
            Decision::Scheduled(i) => decision_key(0, i as u64),
            Decision::Counted(class) => {
                let n = &mut self.decisions[class as usize];
                *n += 1;
                decision_key(class as u64 + 1, *n - 1)
            }
        };
        if self.options.fault_mask.as_ref().is_some_and(|m| !m.contains(&key)) {
            return false;
        }
        self.record(fault, Some(key));
        true
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
        let mut delays = route.delays_us;
        if let Some(f) = route.fault {
            if !self.admit(f, Decision::Counted(Class::Network)) {
                delays = [Some(route.plain_us), None];
            }
        }
        let at = self.now_us + extra_us;
        match delays {
            [Some(a), Some(b)] => {
                self.push(at + b, Event::Packet { from, to, packet: packet.clone() });
                self.push(at + a, Event::Packet { from, to, packet });
            }
            [Some(a), None] => self.push(at + a, Event::Packet { from, to, packet }),
            _ => {}
        }
    }

    /// Schedule a node-local step.
    pub fn local(&mut self, node: NodeId, delay_us: u64, local: Local) {
        let incarnation = self.nodes[node.index()].incarnation;
        self.push(self.now_us + delay_us, Event::Local { node, incarnation, local });
    }

    /// Send a stream's next batch if it has one and its member is up.
    pub fn pump(&mut self, stream: StreamId) {
        let member = self.broker.stream(stream).member;
        if !self.nodes[member.index()].up || !self.nodes[self.broker_node.index()].up {
            return;
        }
        if let Some((batch, seq)) = self.broker.next_batch(stream) {
            let timeout = self.now_us + self.options.broker.fetch_timeout_us;
            self.push(timeout, Event::FetchTimeout { stream, seq });
            self.send(self.broker_node, member, Packet::Deliver(batch));
        }
    }

    pub fn role(&self, node: NodeId) -> Role {
        self.nodes[node.index()].role
    }
}
