//! The seam between the kernel and what runs on it. The harness implements
//! [`App`] to wire the domain's services into simulated nodes; the kernel
//! calls it when a node boots, receives a message, reads a record or a timer
//! fires, and after every step to check invariants.

use std::fmt::Debug;
use std::hash::Hash;

use crate::broker::{StreamId, TopicId};
use crate::cx::{Cx, View};
use crate::node::NodeId;

/// The database of a node running `A`.
pub type AppDb<A> = crate::db::Database<<A as App>::State, <A as App>::Write, <A as App>::Msg>;

/// A record handed to a consumer.
#[derive(Clone, Copy, Debug)]
pub struct Record<'a, M> {
    pub stream: StreamId,
    pub topic: TopicId,
    pub partition: u32,
    pub offset: u64,
    pub generation: u32,
    /// How many times handling this record has failed already.
    pub attempt: u32,
    /// The record comes from the node's dead-letter topic: this is the
    /// recovery pass over a record that failed too often.
    pub dead_letter: bool,
    /// The id its producer gave it (see [`crate::broker::Broker::append`]).
    pub event: u64,
    pub msg: &'a M,
}

/// What became of a record a consumer handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handled {
    Done,
    /// It failed (its commit failed, or it cannot be handled yet): try again
    /// after a backoff, and dead-letter it after too many attempts.
    Retry,
}

pub trait App: Sized {
    /// Everything that travels: RPC requests and replies, and events.
    type Msg: Clone + Hash + Debug;
    /// A node's durable tables (cloned to keep what a handler read when
    /// another instance commits before it does).
    type State: Clone;
    /// One write to those tables.
    type Write;
    /// A node's volatile state, lost at a crash and rebuilt by `boot`.
    type Volatile;
    /// What an invariant check reports.
    type Violation: Debug;
    /// A cache value.
    type Cached: Clone;

    /// Whether a commit of `writes`, decided on `read`, must be refused now
    /// that the tables are `now` (another instance committed in between):
    /// the row versions, unique keys or guarded updates the application
    /// chose for its tables. Asked only when the two differ.
    fn conflicts(read: &Self::State, now: &Self::State, writes: &[Self::Write]) -> bool {
        let _ = (read, now, writes);
        false
    }

    /// Build a node's volatile state, from its database if it has one: at the
    /// start of the run and after every restart.
    fn boot(&mut self, cx: &mut Cx<'_, Self>) -> Self::Volatile;

    fn on_message(
        &mut self,
        vol: &mut Self::Volatile,
        cx: &mut Cx<'_, Self>,
        from: NodeId,
        msg: Self::Msg,
    );

    fn on_record(
        &mut self,
        vol: &mut Self::Volatile,
        cx: &mut Cx<'_, Self>,
        record: Record<'_, Self::Msg>,
    ) -> Handled;

    fn on_timer(&mut self, vol: &mut Self::Volatile, cx: &mut Cx<'_, Self>, tag: u64);

    /// The per-step invariant hook. Must be incremental: look only at what
    /// this step changed.
    fn after_step(&mut self, view: &View<'_, Self>) -> Option<Self::Violation>;

    /// The application's own part of quiescence (every saga finished, no
    /// client waiting); the kernel adds its own (outboxes drained, consumers
    /// caught up, every node up).
    fn is_settled(&self) -> bool;

    /// The checks judged once the heal phase ends.
    fn at_end(&mut self, view: &View<'_, Self>, settled: bool) -> Option<Self::Violation>;
}
