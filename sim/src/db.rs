//! A service's database: tables with local ACID transactions, and the outbox
//! table that makes "state changed" and "event will be published" one commit.
//!
//! The kernel does not know the tables' types. A database holds a state `S`
//! and applies writes `W` to it through a function given at construction, so
//! the domain's tables plug in without the kernel naming them.
//!
//! Durability: committed state and outbox rows survive a crash; open
//! transactions do not. A commit applies every write and appends every outbox
//! row, or (when it fails) nothing.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;
use std::sync::Arc;

use crate::broker::TopicId;
use crate::node::NodeId;

/// A row of the outbox: an event committed with the state change that caused
/// it, waiting for the relay to publish it.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxRow<M> {
    pub id: u64,
    pub topic: TopicId,
    pub key: u64,
    pub msg: M,
}

/// An open transaction's staged writes and events.
#[derive(Clone, Debug)]
pub struct Txn<W, M> {
    writes: Vec<W>,
    events: Vec<(TopicId, u64, M)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TxnId(pub u64);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitError {
    /// The transaction was not open (it was lost in a crash, or never begun).
    NotOpen,
}

pub struct Database<S, W, M> {
    state: S,
    apply: fn(&mut S, &W),
    /// Invariant: holds exactly the committed rows not yet marked sent, in
    /// id order.
    outbox: Outbox<M>,
    next_row: u64,
    /// Volatile: lost at a crash.
    open: BTreeMap<TxnId, Txn<W, M>>,
    next_txn: u64,
    commits: u64,
    /// Open reads (volatile, one per instance mid-handler).
    reads: Vec<Read<S>>,
    /// The highest outbox id a high-water relay has published (durable: it
    /// is a row of its own, updated with the sent-marks).
    relay_cursor: u64,
    /// The highest outbox id committed so far.
    highest_row: u64,
    /// Outbox rows in a batch an instance's relay has in flight, so that
    /// another instance's relay skips them (`SELECT … FOR UPDATE SKIP
    /// LOCKED`); used only when the database is shared.
    claims: BTreeMap<u64, NodeId>,
}

/// Outbox ids a transaction takes when it stages its rows, at its read
/// step: more than any handler emits in one commit (a commit that emits more
/// takes the rest at commit time).
pub const ROW_BLOCK: u64 = 8;

/// An instance's handler between its read step and its commit step.
#[derive(Debug)]
struct Read<S> {
    node: NodeId,
    /// The state as it read it, once another commit has moved past it.
    snap: Option<Arc<S>>,
    /// The outbox ids its rows were given when they were staged: the
    /// sequence hands them out then, and a transaction that commits later
    /// than one that staged after it commits the lower ids later.
    ids: Range<u64>,
}

impl<S, W, M> Database<S, W, M> {
    pub fn new(state: S, apply: fn(&mut S, &W)) -> Self {
        Database {
            state,
            apply,
            outbox: Outbox::default(),
            next_row: 1,
            open: BTreeMap::new(),
            next_txn: 1,
            commits: 0,
            reads: Vec::new(),
            relay_cursor: 0,
            highest_row: 0,
            claims: BTreeMap::new(),
        }
    }

    /// The committed state.
    pub fn state(&self) -> &S {
        &self.state
    }

    pub fn commits(&self) -> u64 {
        self.commits
    }

    /// Commit a one-step transaction: all writes and all events, at once.
    /// Its outbox rows take the next ids.
    pub fn commit(&mut self, writes: &[W], events: impl IntoIterator<Item = (TopicId, u64, M)>)
    where
        S: Clone,
    {
        self.commit_staged(0..0, writes, events);
    }

    /// Commit a transaction whose rows took the ids `staged` when they were
    /// staged (see [`Database::end_read`]); rows beyond those take the next
    /// ids. Returns how many rows committed below an id already committed
    /// (late: a high-water reader may have passed them).
    pub fn commit_staged(
        &mut self,
        mut staged: Range<u64>,
        writes: &[W],
        events: impl IntoIterator<Item = (TopicId, u64, M)>,
    ) -> u64
    where
        S: Clone,
    {
        if self.reads.iter().any(|r| r.snap.is_none()) {
            // Readers mid-handler keep the state they read: one copy serves
            // every reader that has not seen a commit since.
            let snap = Arc::new(self.state.clone());
            for r in self.reads.iter_mut().filter(|r| r.snap.is_none()) {
                r.snap = Some(snap.clone());
            }
        }
        for w in writes {
            (self.apply)(&mut self.state, w);
        }
        let mut late = 0;
        for (topic, key, msg) in events {
            let id = staged.next().unwrap_or_else(|| {
                self.next_row += 1;
                self.next_row - 1
            });
            late += u64::from(id < self.highest_row);
            self.highest_row = self.highest_row.max(id);
            self.outbox.insert(OutboxRow { id, topic, key, msg });
        }
        self.commits += 1;
        late
    }

    /// Start a transaction that spans several steps.
    pub fn begin(&mut self) -> TxnId {
        let id = TxnId(self.next_txn);
        self.next_txn += 1;
        self.open.insert(id, Txn { writes: Vec::new(), events: Vec::new() });
        id
    }

    pub fn stage(&mut self, txn: TxnId, write: W) -> Result<(), CommitError> {
        let t = self.open.get_mut(&txn).ok_or(CommitError::NotOpen)?;
        t.writes.push(write);
        Ok(())
    }

    pub fn stage_event(
        &mut self,
        txn: TxnId,
        topic: TopicId,
        key: u64,
        msg: M,
    ) -> Result<(), CommitError> {
        let t = self.open.get_mut(&txn).ok_or(CommitError::NotOpen)?;
        t.events.push((topic, key, msg));
        Ok(())
    }

    /// `node` starts a handler: it reads now, stages its outbox rows (they
    /// take their ids now), and commits later. Ends with
    /// [`Database::end_read`]; a node has at most one read open.
    pub fn begin_read(&mut self, node: NodeId) {
        debug_assert!(self.reads.iter().all(|r| r.node != node), "one read per node");
        let ids = self.next_row..self.next_row + ROW_BLOCK;
        self.next_row += ROW_BLOCK;
        self.reads.push(Read { node, snap: None, ids });
    }

    /// What `node` reads: the state as of its open read if a commit has
    /// moved past it, the committed state otherwise.
    pub fn read_view(&self, node: NodeId) -> &S {
        match self.reads.iter().find(|r| r.node == node) {
            Some(Read { snap: Some(snap), .. }) => snap,
            _ => &self.state,
        }
    }

    /// The state `node` read, if another commit has moved past it since.
    pub fn stale_read(&self, node: NodeId) -> Option<&S> {
        self.reads.iter().find(|r| r.node == node).and_then(|r| r.snap.as_deref())
    }

    /// `node`'s read is over (it committed, gave up, or crashed): the ids
    /// its rows were staged with, for [`Database::commit_staged`]. Ids a
    /// transaction took and never committed are a gap in the sequence, as
    /// in a real one.
    pub fn end_read(&mut self, node: NodeId) -> Range<u64> {
        match self.reads.iter().position(|r| r.node == node) {
            Some(i) => self.reads.remove(i).ids,
            None => 0..0,
        }
    }

    /// The highest outbox id a high-water relay has published.
    pub fn relay_cursor(&self) -> u64 {
        self.relay_cursor
    }

    /// A high-water relay's batch up to `id` was published and marked sent.
    pub fn advance_relay_cursor(&mut self, id: u64) {
        self.relay_cursor = self.relay_cursor.max(id);
    }

    /// Claim rows for `node`'s relay batch.
    pub fn claim(&mut self, node: NodeId, rows: impl IntoIterator<Item = u64>) {
        for r in rows {
            self.claims.insert(r, node);
        }
    }

    /// Release every row `node`'s relay claimed (its batch was answered,
    /// timed out, or it crashed).
    pub fn release(&mut self, node: NodeId) {
        self.claims.retain(|_, n| *n != node);
    }

    /// Whether another relay than `node`'s has row `row` in flight.
    pub fn claimed_by_other(&self, row: u64, node: NodeId) -> bool {
        self.claims.get(&row).is_some_and(|n| *n != node)
    }

    pub fn commit_txn(&mut self, txn: TxnId) -> Result<(), CommitError>
    where
        S: Clone,
    {
        let t = self.open.remove(&txn).ok_or(CommitError::NotOpen)?;
        self.commit(&t.writes, t.events);
        Ok(())
    }

    pub fn abort(&mut self, txn: TxnId) {
        self.open.remove(&txn);
    }

    /// The node crashed: open transactions vanish, committed data stays.
    pub fn crash(&mut self) {
        self.open.clear();
    }

    /// Pending outbox rows, oldest first.
    pub fn outbox(&self) -> impl Iterator<Item = &OutboxRow<M>> {
        self.outbox.after(0)
    }

    /// Pending rows with an id above `after`, oldest first.
    pub fn outbox_after(&self, after: u64) -> impl Iterator<Item = &OutboxRow<M>> {
        self.outbox.after(after)
    }

    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    /// Mark a row sent (it is removed). False if it was already marked.
    pub fn mark_sent(&mut self, row: u64) -> bool {
        self.claims.remove(&row);
        self.outbox.remove(row)
    }
}

/// The pending outbox rows, in a window of slots by id that starts at the
/// lowest id still pending. Ids are handed out in sequence and relays mark
/// rows sent roughly in order, so the window stays short and every
/// operation costs O(1), amortised, where an ordered map costs a tree walk
/// and an allocation per node. Ids a transaction took and never used, and
/// rows already sent, are empty slots until the front passes them.
struct Outbox<M> {
    /// The id of `slots[0]`.
    base: u64,
    slots: VecDeque<Option<OutboxRow<M>>>,
    len: usize,
}

impl<M> Default for Outbox<M> {
    fn default() -> Self {
        Outbox { base: 0, slots: VecDeque::new(), len: 0 }
    }
}

impl<M> Outbox<M> {
    fn insert(&mut self, row: OutboxRow<M>) {
        let id = row.id;
        if self.slots.is_empty() {
            self.base = id;
        }
        // A transaction that staged its rows early commits them below rows
        // committed since: the window reaches back for them.
        while id < self.base {
            self.slots.push_front(None);
            self.base -= 1;
        }
        let i = (id - self.base) as usize;
        if self.slots.len() <= i {
            self.slots.resize_with(i + 1, || None);
        }
        self.len += usize::from(self.slots[i].is_none());
        self.slots[i] = Some(row);
    }

    /// Remove row `id`; false if it was not pending.
    fn remove(&mut self, id: u64) -> bool {
        let Some(i) = id.checked_sub(self.base) else { return false };
        let Some(slot) = self.slots.get_mut(i as usize) else { return false };
        if slot.take().is_none() {
            return false;
        }
        self.len -= 1;
        while matches!(self.slots.front(), Some(None)) {
            self.slots.pop_front();
            self.base += 1;
        }
        true
    }

    /// Pending rows with an id above `after`, in id order.
    fn after(&self, after: u64) -> impl Iterator<Item = &OutboxRow<M>> {
        let start = (after + 1).saturating_sub(self.base).min(self.slots.len() as u64);
        self.slots.range(start as usize..).flatten()
    }

    fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type Kv = BTreeMap<u8, i64>;
    fn add(s: &mut Kv, w: &(u8, i64)) {
        *s.entry(w.0).or_default() += w.1;
    }

    #[derive(Clone, Debug)]
    enum Op {
        Begin,
        Stage(usize, u8, i64),
        Commit(usize),
        Abort(usize),
        Crash,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            2 => Just(Op::Begin),
            5 => (0usize..4, 0u8..4, -5i64..5).prop_map(|(t, k, d)| Op::Stage(t, k, d)),
            3 => (0usize..4).prop_map(Op::Commit),
            1 => (0usize..4).prop_map(Op::Abort),
            1 => Just(Op::Crash),
        ]
    }

    proptest! {
        /// A commit is all-or-nothing across crashes: the state is always the
        /// sum of exactly the transactions that committed, each in full.
        #[test]
        fn commits_are_all_or_nothing_across_crashes(ops in proptest::collection::vec(op(), 0..80)) {
            let mut db: Database<Kv, (u8, i64), u32> = Database::new(Kv::new(), add);
            let mut model = Kv::new();
            let mut open: Vec<(TxnId, Vec<(u8, i64)>)> = Vec::new();
            for op in ops {
                match op {
                    Op::Begin => open.push((db.begin(), Vec::new())),
                    Op::Stage(i, k, d) => if let Some((t, ws)) = open.get_mut(i) {
                        db.stage(*t, (k, d)).expect("open transaction accepts writes");
                        ws.push((k, d));
                    },
                    Op::Commit(i) => if i < open.len() {
                        let (t, ws) = open.remove(i);
                        db.commit_txn(t).expect("open transaction commits");
                        ws.iter().for_each(|w| add(&mut model, w));
                    },
                    Op::Abort(i) => if i < open.len() {
                        db.abort(open.remove(i).0);
                    },
                    Op::Crash => {
                        db.crash();
                        for (t, _) in open.drain(..) {
                            prop_assert_eq!(db.commit_txn(t), Err(CommitError::NotOpen));
                        }
                    }
                }
                prop_assert_eq!(db.state(), &model);
            }
        }
    }

    #[test]
    fn outbox_rows_commit_with_state_and_leave_when_sent() {
        let mut db: Database<Kv, (u8, i64), &str> = Database::new(Kv::new(), add);
        db.commit(&[(1, 5)], [(TopicId(0), 9, "a"), (TopicId(0), 9, "b")]);
        assert_eq!(db.outbox().map(|r| r.msg).collect::<Vec<_>>(), ["a", "b"]);
        db.crash();
        assert_eq!(db.outbox_len(), 2, "committed rows survive a crash");
        assert!(db.mark_sent(1));
        assert!(!db.mark_sent(1));
        assert_eq!(db.outbox_after(0).map(|r| r.id).collect::<Vec<_>>(), [2]);
    }

    /// Rows take their ids when their transaction reads and stages them: a
    /// transaction that staged first and commits last commits the lower id
    /// late, below a row a high-water reader may already have passed.
    #[test]
    fn staged_ids_commit_out_of_order_and_a_high_water_cursor_passes_them() {
        let mut db: Database<Kv, (u8, i64), u32> = Database::new(Kv::new(), add);
        let (a, b) = (NodeId(1), NodeId(2));
        db.begin_read(a);
        db.begin_read(b);
        let staged = db.end_read(b);
        let late = db.commit_staged(staged, &[], [(TopicId(0), 0, 20)]);
        assert_eq!(late, 0);
        db.advance_relay_cursor(db.outbox().map(|r| r.id).max().expect("a row"));
        let staged = db.end_read(a);
        let late = db.commit_staged(staged, &[], [(TopicId(0), 0, 10)]);
        assert_eq!(late, 1, "a's row committed below b's");
        let ids: Vec<u64> = db.outbox().map(|r| r.id).collect();
        assert_eq!(ids, [1, 1 + ROW_BLOCK]);
        let past: Vec<u32> = db.outbox_after(db.relay_cursor()).map(|r| r.msg).collect();
        assert!(past.is_empty(), "the cursor is past a's row: it is never read");
        // A commit with no read open takes the next id.
        db.commit(&[], [(TopicId(0), 0, 30)]);
        assert_eq!(db.outbox().last().map(|r| r.id), Some(1 + 2 * ROW_BLOCK));
    }

    proptest! {
        /// The outbox window holds what an ordered map of the pending rows
        /// holds, in the same order, whatever the order of inserts (late
        /// ids below the front included) and removals.
        #[test]
        fn the_outbox_window_matches_an_ordered_map(
            ops in proptest::collection::vec((any::<bool>(), 1u64..40), 0..120)
        ) {
            let mut window: Outbox<u64> = Outbox::default();
            let mut model: BTreeMap<u64, u64> = BTreeMap::new();
            for (insert, id) in ops {
                if insert {
                    window.insert(OutboxRow { id, topic: TopicId(0), key: 0, msg: id * 3 });
                    model.insert(id, id * 3);
                } else {
                    prop_assert_eq!(window.remove(id), model.remove(&id).is_some());
                }
                prop_assert_eq!(window.len(), model.len());
                for after in [0, id.saturating_sub(1), id, id + 1] {
                    let got: Vec<(u64, u64)> = window.after(after).map(|r| (r.id, r.msg)).collect();
                    let want: Vec<(u64, u64)> =
                        model.range(after + 1..).map(|(k, v)| (*k, *v)).collect();
                    prop_assert_eq!(got, want);
                }
            }
        }
    }
}
