//! A Kafka-like broker: topics split into partitions by key, an append-only
//! log per partition, and consumer groups that read each partition in order
//! and commit offsets.
//!
//! Delivery is at least once. A consumer's *position* (how far it has been
//! sent) runs ahead of its *committed* offset (how far it has confirmed);
//! whenever the session is reset (consumer crash and rejoin, a rebalance, or a
//! batch left unconfirmed past the fetch timeout) the position falls back to
//! the committed offset and what was consumed but not committed comes again.
//! Each reset starts a new *generation*; commits from an older generation are
//! refused, which fences a zombie consumer that wakes up after losing its
//! partition.
//!
//! A group may have several members (the instances of one service): each
//! partition is assigned to one live member, and when a member crashes, is
//! paused past its session or comes back, the partitions that change hands
//! start a new generation there (see [`Broker::assign`]). A member that
//! lost a partition may still be handling what it was sent: its offset
//! commits are fenced here, and its writes must be caught by its database.
//!
//! The broker's log itself never loses an acknowledged record (a replicated
//! log is assumed); producers without idempotence may append a record twice.

use serde::{Deserialize, Serialize};

use crate::deadline::{Deadline, Fired, Generation, Timer};
use crate::node::NodeId;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TopicId(pub u16);

/// One consumer's subscription to one partition of one topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct StreamId(pub u32);

impl StreamId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

#[derive(Clone, Debug)]
pub struct Topic<M> {
    pub name: String,
    /// One log per partition; a record's offset is its index. Each record
    /// is its key, its event id (see [`Broker::append`]) and its message.
    pub logs: Vec<Vec<(u64, u64, M)>>,
    /// Streams reading each partition.
    subscribers: Vec<Vec<StreamId>>,
}

/// Group-side state of one stream.
#[derive(Clone, Debug)]
pub struct Stream {
    pub topic: TopicId,
    pub partition: u32,
    /// The consumer group (index into the broker's groups).
    pub group: u32,
    /// The member the partition is assigned to.
    pub member: NodeId,
    /// Durable: where the group resumes after any reset.
    /// Invariant: committed <= position <= log end.
    pub committed: u64,
    /// How far this session has been sent.
    pub position: u64,
    pub generation: u32,
    /// A batch is out and its commit has not come back.
    pub inflight: bool,
    /// When the batch in flight times out: armed at each delivery and
    /// heartbeat, disarmed by the commit that confirms the batch.
    pub deadline: Deadline,
}

/// What a stream's fetch timer found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchTimer {
    /// Nothing was due (the batch was confirmed, or the timer was stale).
    Stale,
    /// The deadline moved later: push the timer again.
    Rearm(u64, Generation),
    /// The batch in flight went unconfirmed: the session was reset.
    Reset,
}

/// A batch of records sent to a consumer.
#[derive(Clone, Debug, Hash)]
pub struct Batch<M> {
    pub stream: StreamId,
    pub generation: u32,
    pub first_offset: u64,
    /// Each record's event id and message.
    pub records: Vec<(u64, M)>,
}

/// What the broker did, for checking its history after a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BrokerOp {
    Append { topic: TopicId, partition: u32, offset: u64 },
    Deliver { stream: StreamId, generation: u32, first: u64, count: u64 },
    Commit { stream: StreamId, generation: u32, offset: u64, accepted: bool },
    Reset { stream: StreamId, generation: u32, to: u64 },
}

#[derive(Clone, Debug)]
pub struct BrokerOptions {
    pub partitions: u32,
    /// Most records in one delivery.
    pub max_poll_records: u32,
    /// A delivered batch not committed within this long is sent again.
    pub fetch_timeout_us: u64,
}

impl Default for BrokerOptions {
    fn default() -> Self {
        BrokerOptions { partitions: 4, max_poll_records: 8, fetch_timeout_us: 150_000 }
    }
}

pub struct Broker<M> {
    pub options: BrokerOptions,
    topics: Vec<Topic<M>>,
    streams: Vec<Stream>,
    /// Sum over streams of (log end - committed): zero when every group has
    /// confirmed everything. Kept incrementally for the quiescence check.
    lag: u64,
    history: Option<Vec<BrokerOp>>,
    /// Each member's dead-letter topic (a group's members share one).
    dead_letter: Vec<(NodeId, TopicId)>,
    /// Each group's members, in the order they joined.
    groups: Vec<Vec<NodeId>>,
    /// Batches' record buffers, back from the consumers that emptied them.
    spare_batches: Vec<Vec<(u64, M)>>,
    /// Emptied logs of an earlier run, in the reverse of the order its
    /// topics took them: the next topic created takes the last.
    spare_logs: Vec<Vec<(u64, u64, M)>>,
}

/// A finished run's broker buffers, emptied, for the next run on the same
/// thread to fill without growing them again: a seed of 20,000 orders
/// grows its logs to some 15 MB, and the allocator handed those pages
/// back and faulted them in afresh on every seed. Only capacity carries
/// over, so nothing a run does depends on it.
pub struct Buffers<M> {
    /// Every log, in topic then partition order.
    logs: Vec<Vec<(u64, u64, M)>>,
    batches: Vec<Vec<(u64, M)>>,
}

/// The partition of a key: a fixed mix, so that the same key lands in the
/// same partition on every machine.
pub fn partition_of(key: u64, partitions: u32) -> u32 {
    let mut z = key.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ((z ^ (z >> 31)) % partitions as u64) as u32
}

impl<M: Clone> Broker<M> {
    pub fn new(options: BrokerOptions) -> Broker<M> {
        assert!(options.partitions > 0 && options.max_poll_records > 0);
        Broker {
            options,
            topics: Vec::new(),
            streams: Vec::new(),
            lag: 0,
            history: None,
            dead_letter: Vec::new(),
            groups: Vec::new(),
            spare_batches: Vec::new(),
            spare_logs: Vec::new(),
        }
    }

    /// Take an earlier run's buffers (before creating topics): each topic
    /// and partition gets the log it had then, in a run of the same shape.
    pub fn reuse(&mut self, mut buffers: Buffers<M>) {
        buffers.logs.reverse();
        self.spare_logs = buffers.logs;
        self.spare_batches.append(&mut buffers.batches);
    }

    /// The broker's buffers, emptied, for [`Broker::reuse`].
    pub fn into_buffers(self) -> Buffers<M> {
        let mut logs: Vec<_> = self.topics.into_iter().flat_map(|t| t.logs).collect();
        logs.iter_mut().for_each(Vec::clear);
        Buffers { logs, batches: self.spare_batches }
    }

    /// Take back a delivered batch's buffer for the next batch.
    pub fn keep_batch(&mut self, mut records: Vec<(u64, M)>) {
        records.clear();
        self.spare_batches.push(records);
    }

    /// Keep a history of every operation (for tests that check it).
    pub fn record_history(&mut self) {
        self.history = Some(Vec::new());
    }

    pub fn history(&self) -> &[BrokerOp] {
        self.history.as_deref().unwrap_or(&[])
    }

    fn note(&mut self, op: BrokerOp) {
        if let Some(h) = &mut self.history {
            h.push(op);
        }
    }

    pub fn create_topic(&mut self, name: &str) -> TopicId {
        if let Some(i) = self.topics.iter().position(|t| t.name == name) {
            return TopicId(i as u16);
        }
        let n = self.options.partitions as usize;
        self.topics.push(Topic {
            name: name.to_string(),
            logs: (0..n).map(|_| self.spare_logs.pop().unwrap_or_default()).collect(),
            subscribers: vec![Vec::new(); n],
        });
        TopicId(self.topics.len() as u16 - 1)
    }

    /// Create the topic where the failed records of `members` (a group) go.
    pub fn create_dead_letter_topic(&mut self, members: &[NodeId], name: &str) -> TopicId {
        let t = self.create_topic(name);
        self.dead_letter.extend(members.iter().map(|&m| (m, t)));
        t
    }

    pub fn dead_letter_topic(&self, member: NodeId) -> Option<TopicId> {
        self.dead_letter.iter().find(|(m, _)| *m == member).map(|(_, t)| *t)
    }

    pub fn is_dead_letter_topic(&self, topic: TopicId) -> bool {
        self.dead_letter.iter().any(|(_, t)| *t == topic)
    }

    /// Records in dead-letter topics, over all members.
    pub fn dead_letters(&self) -> u64 {
        let logs = |t: &TopicId| self.topics[t.0 as usize].logs.iter().map(|l| l.len() as u64);
        self.dead_letter.iter().flat_map(|(_, t)| logs(t)).sum()
    }

    pub fn topic(&self, id: TopicId) -> &Topic<M> {
        &self.topics[id.0 as usize]
    }

    pub fn topic_named(&self, name: &str) -> Option<TopicId> {
        self.topics.iter().position(|t| t.name == name).map(|i| TopicId(i as u16))
    }

    /// Subscribe `member`'s group to every partition of `topic`, from the
    /// start of the log.
    pub fn subscribe(&mut self, member: NodeId, topic: TopicId) -> Vec<StreamId> {
        self.subscribe_group(&[member], topic)
    }

    /// Subscribe the group of `members` to every partition of `topic`, from
    /// the start of the log; partition `p` goes to member `p mod n`.
    pub fn subscribe_group(&mut self, members: &[NodeId], topic: TopicId) -> Vec<StreamId> {
        assert!(!members.is_empty(), "a group has a member");
        let group = match self.groups.iter().position(|g| g == members) {
            Some(g) => g,
            None => {
                self.groups.push(members.to_vec());
                self.groups.len() - 1
            }
        } as u32;
        let mut out = Vec::new();
        for p in 0..self.options.partitions {
            let member = members[p as usize % members.len()];
            let id = StreamId(self.streams.len() as u32);
            let t = &mut self.topics[topic.0 as usize];
            t.subscribers[p as usize].push(id);
            self.lag += t.logs[p as usize].len() as u64;
            self.streams.push(Stream {
                topic,
                partition: p,
                group,
                member,
                committed: 0,
                position: 0,
                generation: 0,
                inflight: false,
                deadline: Deadline::default(),
            });
            out.push(id);
        }
        out
    }

    pub fn streams(&self) -> &[Stream] {
        &self.streams
    }

    pub fn stream(&self, id: StreamId) -> &Stream {
        &self.streams[id.index()]
    }

    pub fn lag(&self) -> u64 {
        self.lag
    }

    /// Append a record; returns its partition, offset and the streams that
    /// may now have something to read. `event` is the id its producer gave
    /// it, carried as a header is: every copy of one produced record has it,
    /// whatever its offset.
    pub fn append(
        &mut self,
        topic: TopicId,
        key: u64,
        event: u64,
        msg: M,
    ) -> (u32, u64, &[StreamId]) {
        let p = partition_of(key, self.options.partitions);
        let t = &mut self.topics[topic.0 as usize];
        let log = &mut t.logs[p as usize];
        let offset = log.len() as u64;
        log.push((key, event, msg));
        self.lag += t.subscribers[p as usize].len() as u64;
        if let Some(h) = &mut self.history {
            h.push(BrokerOp::Append { topic, partition: p, offset });
        }
        (p, offset, &self.topics[topic.0 as usize].subscribers[p as usize])
    }

    /// The next batch for a stream, if nothing is in flight and there is
    /// something to send. Marks it in flight, due back by `due_us`, and
    /// returns with it the fetch timer to push, if one must be.
    pub fn next_batch(&mut self, id: StreamId, due_us: u64) -> Option<(Batch<M>, Option<Timer>)> {
        let max = self.options.max_poll_records as u64;
        let s = &mut self.streams[id.index()];
        let log = &self.topics[s.topic.0 as usize].logs[s.partition as usize];
        let end = log.len() as u64;
        if s.inflight || s.position >= end {
            return None;
        }
        let first = s.position;
        let last = end.min(first + max);
        let mut records = self.spare_batches.pop().unwrap_or_default();
        records.extend(log[first as usize..last as usize].iter().map(|(_, e, m)| (*e, m.clone())));
        s.position = last;
        s.inflight = true;
        let timer = s.deadline.arm(due_us);
        let generation = s.generation;
        self.note(BrokerOp::Deliver { stream: id, generation, first, count: last - first });
        Some((Batch { stream: id, generation, first_offset: first, records }, timer))
    }

    /// A consumer commits `offset` (the next offset it wants). Returns false
    /// if the commit was refused because it comes from an older generation.
    pub fn commit(&mut self, id: StreamId, generation: u32, offset: u64) -> bool {
        let s = &mut self.streams[id.index()];
        let accepted = generation == s.generation && offset <= s.position;
        if accepted {
            if offset > s.committed {
                self.lag -= offset - s.committed;
                s.committed = offset;
            }
            if offset == s.position {
                s.inflight = false;
                s.deadline.disarm();
            }
        }
        self.note(BrokerOp::Commit { stream: id, generation, offset, accepted });
        accepted
    }

    /// A heartbeat from the stream's consumer: the batch in flight is now
    /// due back by `due_us`. Returns the fetch timer to push, if one must be.
    pub fn heartbeat(&mut self, id: StreamId, generation: u32, due_us: u64) -> Option<Timer> {
        let s = &mut self.streams[id.index()];
        if s.generation != generation || !s.inflight {
            return None;
        }
        s.deadline.arm(due_us)
    }

    /// A stream's fetch timer of `timer` popped at `now`. If the batch in
    /// flight is due and unconfirmed, the session is reset.
    pub fn fetch_timer(&mut self, id: StreamId, now: u64, timer: Generation) -> FetchTimer {
        match self.streams[id.index()].deadline.fire(now, timer) {
            Fired::Stale => FetchTimer::Stale,
            Fired::Rearm(at, g) => FetchTimer::Rearm(at, g),
            Fired::Due => {
                debug_assert!(self.streams[id.index()].inflight, "a due batch is in flight");
                self.reset(id);
                FetchTimer::Reset
            }
        }
    }

    /// Start a new generation at the committed offset.
    pub fn reset(&mut self, id: StreamId) {
        let s = &mut self.streams[id.index()];
        s.generation += 1;
        s.position = s.committed;
        s.inflight = false;
        s.deadline.disarm();
        let (generation, to) = (s.generation, s.committed);
        self.note(BrokerOp::Reset { stream: id, generation, to });
    }

    /// The members of `member`'s groups (itself included).
    pub fn group_of(&self, member: NodeId) -> &[NodeId] {
        self.groups.iter().find(|g| g.contains(&member)).map_or(&[], |g| g.as_slice())
    }

    /// Assign the partitions of every group `member` belongs to among the
    /// members `live` accepts: partition `p` of each topic to the `p mod n`th
    /// live member, in joining order. A partition that changes hands starts
    /// a new generation at its committed offset (cooperative: the others keep
    /// their session). With no live member nothing moves. Returns the
    /// streams that moved.
    pub fn assign(&mut self, member: NodeId, live: impl Fn(NodeId) -> bool) -> Vec<StreamId> {
        let Some(g) = self.groups.iter().position(|g| g.contains(&member)) else {
            return Vec::new();
        };
        let alive: Vec<NodeId> = self.groups[g].iter().copied().filter(|&m| live(m)).collect();
        if alive.is_empty() {
            return Vec::new();
        }
        let mut moved = Vec::new();
        for i in 0..self.streams.len() {
            let s = &mut self.streams[i];
            if s.group != g as u32 {
                continue;
            }
            let to = alive[s.partition as usize % alive.len()];
            if s.member != to {
                s.member = to;
                moved.push(StreamId(i as u32));
            }
        }
        for &id in &moved {
            self.reset(id);
        }
        moved
    }

    /// Reset every stream of a member (it rejoined after a crash, or its
    /// group rebalanced). Returns the streams reset.
    pub fn reset_member(&mut self, member: NodeId) -> Vec<StreamId> {
        let ids: Vec<StreamId> = (0..self.streams.len())
            .filter(|&i| self.streams[i].member == member)
            .map(|i| StreamId(i as u32))
            .collect();
        for &id in &ids {
            self.reset(id);
        }
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker() -> Broker<u32> {
        Broker::new(BrokerOptions { partitions: 1, max_poll_records: 2, fetch_timeout_us: 10 })
    }

    #[test]
    fn uncommitted_records_come_again_after_a_reset() {
        let mut b = broker();
        let t = b.create_topic("t");
        let s = b.subscribe(NodeId(1), t)[0];
        for i in 0..3 {
            b.append(t, 7, 100 + i as u64, i);
        }
        let (batch, _) = b.next_batch(s, 10).expect("records to send");
        assert_eq!((batch.first_offset, batch.records.clone()), (0, vec![(100, 0), (101, 1)]));
        assert!(b.next_batch(s, 10).is_none(), "one batch in flight at a time");
        b.reset(s);
        let (again, _) = b.next_batch(s, 10).expect("redelivery");
        assert_eq!((again.first_offset, again.generation), (0, 1));
        assert!(!b.commit(s, 0, 2), "a commit from the old generation is fenced");
        assert!(b.commit(s, 1, 2));
        assert_eq!(b.lag(), 1);
        let (rest, _) = b.next_batch(s, 10).expect("the third record");
        assert_eq!(rest.first_offset, 2);
    }

    #[test]
    fn one_fetch_timer_follows_the_batches_and_resets_only_an_unconfirmed_one() {
        let mut b = broker();
        let t = b.create_topic("t");
        let s = b.subscribe(NodeId(1), t)[0];
        b.append(t, 1, 1, 1);
        let (_, timer) = b.next_batch(s, 10).expect("a record");
        let (at, g) = timer.expect("the first delivery arms a timer");
        assert!(b.commit(s, 0, 1));
        b.append(t, 1, 2, 2);
        let (_, again) = b.next_batch(s, 15).expect("a record");
        assert_eq!(again, None, "the pending timer serves the next batch too");
        assert_eq!(b.fetch_timer(s, at, g), FetchTimer::Rearm(15, g), "not due before 15");
        assert_eq!(b.heartbeat(s, 0, 25), None, "a heartbeat moves the deadline later");
        assert_eq!(b.fetch_timer(s, 15, g), FetchTimer::Rearm(25, g));
        assert_eq!(b.fetch_timer(s, 25, g), FetchTimer::Reset);
        assert_eq!(b.stream(s).position, 1);
        assert!(!b.commit(s, 0, 2), "the old generation is fenced");
    }

    #[test]
    fn keys_keep_their_partition() {
        for k in 0..100 {
            assert_eq!(partition_of(k, 4), partition_of(k, 4));
            assert!(partition_of(k, 4) < 4);
        }
    }
}
