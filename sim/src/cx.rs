//! What a node's code sees of the world while it runs ([`Cx`]), and what an
//! invariant check sees after a step ([`View`]).

use crate::app::{App, AppDb};
use crate::broker::{Broker, TopicId};
use crate::cache::Cache;
use crate::fault::Fault;
use crate::node::{Node, NodeId};
use crate::seed::Stream;
use crate::world::{Class, Core, Decision, Local, Packet, ProduceRecord, World, MEMORY_ORIGIN};

/// A commit its caller was told failed, and what really became of it (which
/// the caller cannot know: only the checker may look).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitFailed {
    /// The database refused it: nothing was applied.
    Refused,
    /// It applied, but the answer was lost on the way back.
    AnswerLost,
    /// It hung and applied nothing; the node waited out its statement
    /// timeout before it heard of a failure.
    TimedOut,
    /// What its handler read had changed by the time it committed (another
    /// instance committed first), and the check the application chose for
    /// those rows refused it: nothing was applied.
    Conflict,
}

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

    /// The tables as this node's handler reads them: as of its read step
    /// when another instance has committed since, the committed state
    /// otherwise.
    pub fn state(&self) -> &A::State {
        self.db().read_view(self.node)
    }

    /// Commit one local transaction: every write and every outbox row, at
    /// once, or nothing. During the fault phase a commit may fail (nothing
    /// applied), apply while its answer is lost, or hang and apply nothing
    /// while the node waits out its statement timeout: in all three cases
    /// the caller sees a failure, and only the `CommitFailed` variant (for
    /// the harness's checker, never for the node's code) says what applied.
    /// The relay publishes the rows afterwards.
    pub fn commit(
        &mut self,
        writes: &[A::Write],
        events: impl IntoIterator<Item = (TopicId, u64, A::Msg)>,
    ) -> Result<(), CommitFailed> {
        let o = &self.core.options;
        let (fail, lost, hang) = (o.commit_fail_ppm, o.commit_lost_ack_ppm, o.commit_hang_ppm);
        let total = fail as u64 + lost as u64 + hang as u64;
        // One draw per commit whatever the outcome, so the stream stays
        // aligned; the three kinds split one draw, so a scenario with only
        // failing commits draws exactly as it did before the other two existed.
        let r = (total > 0).then(|| self.core.streams.faults.range(0, 999_999));
        let node = self.node;
        let db = self.db.as_deref_mut().expect("only service nodes have a database");
        // The transaction ends here, whatever comes of it: later reads in
        // the same handler see what is committed.
        let read = db.stale_read(node).is_some();
        let conflict = db.stale_read(node).is_some_and(|r| A::conflicts(r, db.state(), writes));
        let staged = db.end_read(node);
        if self.core.nodes[self.node.index()].db_down_until > self.core.now_us {
            // The database is unreachable: refused, whatever was drawn.
            self.core.stats.commit_failures += 1;
            return Err(CommitFailed::Refused);
        }
        if read {
            self.core.stats.stale_reads += 1;
        }
        if conflict {
            self.core.stats.commit_conflicts += 1;
            let name = &self.core.nodes[node.index()].name;
            self.core.trace.record(crate::trace::TraceKind::Note, name, None, || {
                "commit refused: what it read had changed".to_string()
            });
            return Err(CommitFailed::Conflict);
        }
        if self.core.net.faults_on {
            let for_us = self.core.options.commit_hang_us;
            let drawn = r.and_then(|r| match r {
                r if r < fail as u64 => Some(Fault::CommitFail { node }),
                r if r < fail as u64 + lost as u64 => Some(Fault::CommitLostAck { node }),
                r if r < total => Some(Fault::CommitHang { node, for_us }),
                _ => None,
            });
            let fits = |f: &Fault| match *f {
                Fault::CommitFail { node: n } | Fault::CommitLostAck { node: n } => n == node,
                Fault::CommitHang { node: n, .. } => n == node,
                _ => false,
            };
            let decision = Decision::Counted(Class::Commit, node, node);
            if let Some(fault) = self.core.decide(decision, drawn, fits) {
                self.core.stats.commit_failures += 1;
                match fault {
                    Fault::CommitLostAck { .. } => {
                        self.core.stats.commits_unacknowledged += 1;
                        self.apply(staged, writes, events);
                        return Err(CommitFailed::AnswerLost);
                    }
                    Fault::CommitHang { for_us, .. } => {
                        // The node's only session is stuck: nothing reaches
                        // its code until the statement timeout ends the wait.
                        let n = &mut self.core.nodes[node.index()];
                        n.paused_until = n.paused_until.max(self.core.now_us + for_us);
                        return Err(CommitFailed::TimedOut);
                    }
                    _ => return Err(CommitFailed::Refused),
                }
            }
        }
        self.apply(staged, writes, events);
        Ok(())
    }

    fn apply(
        &mut self,
        staged: std::ops::Range<u64>,
        writes: &[A::Write],
        events: impl IntoIterator<Item = (TopicId, u64, A::Msg)>,
    ) {
        let db = self.db.as_deref_mut().expect("only service nodes have a database");
        self.core.stats.late_rows += db.commit_staged(staged, writes, events);
        self.committed = true;
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
        let event = crate::world::event_id(MEMORY_ORIGIN | self.node.index() as u64, id);
        rt.memory.push_back(ProduceRecord { id, event, topic, key, msg });
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

    /// When the faults healed, once they have.
    pub fn healed_at_us(&self) -> Option<u64> {
        self.world.core.healed_at_us
    }

    pub fn db(&self, node: NodeId) -> Option<&'a AppDb<A>> {
        self.world.db(node)
    }

    pub fn broker(&self) -> &'a Broker<A::Msg> {
        &self.world.core.broker
    }

    pub fn node(&self, node: NodeId) -> &Node {
        &self.world.core.nodes[node.index()]
    }

    /// Outbox rows not yet published, over all nodes.
    pub fn outbox_backlog(&self) -> usize {
        self.world.dbs.iter().map(|d| d.outbox_len()).sum()
    }

    /// Records published directly and still only in a producer's memory.
    pub fn memory_backlog(&self) -> usize {
        self.world.core.runtime.iter().map(|r| r.memory.len()).sum()
    }
}
