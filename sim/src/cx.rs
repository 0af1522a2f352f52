//! What a node's code sees of the world while it runs ([`Cx`]), and what an
//! invariant check sees after a step ([`View`]).

use crate::app::{App, AppDb};
use crate::broker::{Broker, TopicId};
use crate::cache::Cache;
use crate::fault::Fault;
use crate::node::{Node, NodeId};
use crate::seed::Stream;
use crate::world::{Class, Core, Decision, Local, Packet, ProduceRecord, World};

/// A commit that failed: nothing was applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitFailed;

/// The context of one callback on one node.
pub struct Cx<'a, A: App> {
    pub(crate) node: NodeId,
    pub(crate) core: &'a mut Core<A::Msg>,
    pub(crate) db: Option<&'a mut AppDb<A>>,
    pub(crate) caches: &'a mut Vec<Option<Cache<A::Cached>>>,
    /// Set by a commit: the relay has new outbox rows to publish.
    pub(crate) committed: bool,
}

impl<'a, A: App> Cx<'a, A> {
    pub fn node(&self) -> NodeId {
        self.node
    }

    pub fn now_us(&self) -> u64 {
        self.core.now_us
    }

    pub fn step(&self) -> u64 {
        self.core.stats.steps
    }

    /// How many times this node has crashed so far.
    pub fn incarnation(&self) -> u32 {
        self.core.nodes[self.node.index()].incarnation
    }

    /// Whether this node has a database (service nodes do).
    pub fn has_db(&self) -> bool {
        self.db.is_some()
    }

    /// This node's database. Only service nodes have one; asking on another
    /// node is a wiring bug.
    pub fn db(&self) -> &AppDb<A> {
        self.db.as_deref().expect("only service nodes have a database")
    }

    /// Commit one local transaction: every write and every outbox row, at
    /// once, or (when the fault phase makes the commit fail) nothing. The
    /// relay publishes the rows afterwards.
    pub fn commit(
        &mut self,
        writes: &[A::Write],
        events: impl IntoIterator<Item = (TopicId, u64, A::Msg)>,
    ) -> Result<(), CommitFailed> {
        let ppm = self.core.options.commit_fail_ppm;
        // One draw per commit whatever the outcome, so the stream stays aligned.
        let fails = self.core.streams.faults.chance(ppm);
        if self.core.net.faults_on {
            let node = self.node;
            let drawn = fails.then_some(Fault::CommitFail { node });
            let fits = |f: &Fault| *f == Fault::CommitFail { node };
            if self.core.decide(Decision::Counted(Class::Commit, node, node), drawn, fits).is_some()
            {
                self.core.stats.commit_failures += 1;
                return Err(CommitFailed);
            }
        }
        let db = self.db.as_deref_mut().expect("only service nodes have a database");
        db.commit(writes, events);
        self.committed = true;
        Ok(())
    }

    /// Decide an application-level fault (a gateway that declines or stalls):
    /// true with probability `ppm` during the fault phase, and then recorded
    /// in the fault plan under `what`.
    pub fn inject(&mut self, what: &str, ppm: u32) -> bool {
        let hit = self.core.streams.faults.chance(ppm);
        self.core.net.faults_on && self.injected(what, hit)
    }

    /// An application-level fault decided elsewhere (a scheduled one, say)
    /// is due: record it, and return true, unless the fault mask switches
    /// it off or a followed recording has none here.
    #[must_use]
    pub fn record_injected(&mut self, what: &str) -> bool {
        self.injected(what, true)
    }

    fn injected(&mut self, what: &str, drawn: bool) -> bool {
        let node = self.node;
        let fits = |f: &Fault| matches!(f, Fault::Injected { node: n, what: w } if *n == node && w == what);
        let drawn = drawn.then(|| Fault::Injected { node, what: what.to_string() });
        self.core.decide(Decision::Counted(Class::Injected, node, node), drawn, fits).is_some()
    }

    /// The cache served by `node`. Asking for a node that is not a cache is a
    /// wiring bug.
    pub fn cache(&mut self, node: NodeId) -> &mut Cache<A::Cached> {
        self.caches[node.index()].as_mut().expect("that node is a cache")
    }

    /// Send an application message that leaves only after `extra_us` (a slow
    /// reply).
    pub fn send_after(&mut self, to: NodeId, msg: A::Msg, extra_us: u64) {
        self.core.send_delayed(self.node, to, Packet::App(msg), extra_us);
    }

    /// Publish straight to the broker, outside any transaction: the record
    /// waits in the producer's memory for `linger_us`, and is lost if the node
    /// crashes before the broker has it. This is the dual write the outbox
    /// exists to avoid; only planted bugs use it.
    pub fn publish_direct(&mut self, topic: TopicId, key: u64, msg: A::Msg) {
        let rt = &mut self.core.runtime[self.node.index()];
        let id = rt.next_memory_id;
        rt.next_memory_id += 1;
        rt.memory.push_back(ProduceRecord { id, topic, key, msg });
        if !rt.linger_pending {
            rt.linger_pending = true;
            let linger = self.core.options.linger_us;
            self.core.local(self.node, linger, Local::Linger);
        }
    }

    /// Send an application message (an RPC request or reply).
    pub fn send(&mut self, to: NodeId, msg: A::Msg) {
        self.core.send(self.node, to, Packet::App(msg));
    }

    /// Fire `on_timer(tag)` on this node after `delay_us`, unless it crashes
    /// first.
    pub fn set_timer(&mut self, delay_us: u64, tag: u64) {
        self.core.local(self.node, delay_us, Local::Timer(tag));
    }

    /// The application's random stream (retry jitter and the like).
    pub fn random(&mut self) -> &mut Stream {
        &mut self.core.streams.app
    }

    /// Fold a fact about this step into the trace digest.
    pub fn fold(&mut self, word: u64) {
        self.core.trace.fold(word);
    }

    /// Add a readable trace line (formatted only when a trace is kept).
    pub fn trace(&mut self, f: impl FnOnce() -> String) {
        let name = &self.core.nodes[self.node.index()].name;
        self.core.trace.record(crate::trace::TraceKind::Note, name, None, f);
    }

    pub fn tracing(&self) -> bool {
        self.core.trace.is_recording()
    }
}

/// Read-only access to the world after a step.
pub struct View<'a, A: App> {
    pub(crate) world: &'a World<A>,
}

impl<'a, A: App> View<'a, A> {
    pub fn now_us(&self) -> u64 {
        self.world.core.now_us
    }

    pub fn step(&self) -> u64 {
        self.world.core.stats.steps
    }

    pub fn db(&self, node: NodeId) -> Option<&'a AppDb<A>> {
        self.world.dbs[node.index()].as_ref()
    }

    pub fn broker(&self) -> &'a Broker<A::Msg> {
        &self.world.core.broker
    }

    pub fn node(&self, node: NodeId) -> &Node {
        &self.world.core.nodes[node.index()]
    }

    /// Outbox rows not yet published, over all nodes.
    pub fn outbox_backlog(&self) -> usize {
        self.world.dbs.iter().flatten().map(|d| d.outbox_len()).sum()
    }

    /// Records published directly and still only in a producer's memory.
    pub fn memory_backlog(&self) -> usize {
        self.world.core.runtime.iter().map(|r| r.memory.len()).sum()
    }
}
