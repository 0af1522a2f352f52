//! Producers: the outbox relay, which publishes committed outbox rows, and
//! the in-memory producer a dual write uses. One batch is in flight per
//! producer, so a producer's records reach the log in order; an unanswered
//! batch is sent again after the produce timeout.
//!
//! A row is marked sent only when the broker's acknowledgement arrives, as a
//! step of its own. A node that crashes after the broker appended a batch but
//! before the acknowledgement arrived resumes from its outbox and publishes the
//! batch again: consumers see it twice, which is what their inbox is for.

use crate::app::App;
use crate::deadline::Fired;
use crate::node::NodeId;
use crate::world::{EventKind, Local, Packet, ProduceRecord, Source, World};

impl<A: App> World<A> {
    /// Send the producer's next batch, if it has none in flight.
    pub(crate) fn kick(&mut self, node: NodeId, source: Source) {
        let core = &mut self.core;
        let max = core.options.produce_batch_max;
        let rt = &mut core.runtime[node.index()];
        if rt.producer(source).inflight.is_some() {
            return;
        }
        let shared = self.db_of[node.index()].is_some_and(|i| self.instances[i].len() > 1);
        let high_water = core.options.relay_high_water;
        let mut records = core.spares.records();
        match source {
            Source::Outbox => match self.db_of[node.index()] {
                Some(i) => records.extend(
                    self.dbs[i]
                        .outbox_after(if high_water { self.dbs[i].relay_cursor() } else { 0 })
                        .filter(|r| !shared || !self.dbs[i].claimed_by_other(r.id, node))
                        .take(max)
                        .map(|r| ProduceRecord {
                            id: r.id,
                            event: crate::world::event_id(i as u64 + 1, r.id),
                            topic: r.topic,
                            key: r.key,
                            msg: r.msg.clone(),
                        }),
                ),
                None => {
                    core.spares.keep_records(records);
                    return;
                }
            },
            Source::Memory => records.extend(rt.memory.iter().take(max).cloned()),
        };
        if records.is_empty() {
            core.spares.keep_records(records);
            return;
        }
        if shared && source == Source::Outbox {
            let i = self.db_of[node.index()].expect("an outbox lives in a database");
            self.dbs[i].claim(node, records.iter().map(|r| r.id));
        }
        let producer = rt.producer(source);
        producer.seq += 1;
        let seq = producer.seq;
        producer.inflight = Some(seq);
        let timeout = core.options.produce_timeout_us;
        let timer = producer.deadline.arm(core.now_us + timeout);
        let broker = core.broker_node;
        core.send(node, broker, Packet::Produce { source, seq, records });
        if let Some((at, timer)) = timer {
            core.local(node, at - core.now_us, Local::ProduceTimeout { source, timer });
        }
    }

    /// A producer's deadline timer ran: send the batch in flight again if
    /// it is due unanswered, or put the timer back where the deadline moved.
    pub(crate) fn produce_timer(&mut self, node: NodeId, source: Source, timer: u32) {
        let core = &mut self.core;
        let producer = core.runtime[node.index()].producer(source);
        match producer.deadline.fire(core.now_us, timer) {
            Fired::Due => {
                let seq = producer.inflight.expect("a due producer has a batch in flight");
                self.retire(node, source, seq);
            }
            Fired::Rearm(at, timer) => {
                core.stale(EventKind::ProduceTimeout);
                core.local(node, at - core.now_us, Local::ProduceTimeout { source, timer });
            }
            Fired::Stale => core.stale(EventKind::ProduceTimeout),
        }
    }

    /// The broker acknowledged a batch: mark its records sent (even a late
    /// acknowledgement of an older batch: those records are in the log),
    /// unless the update marking them fails.
    pub(crate) fn producer_ack(&mut self, node: NodeId, source: Source, seq: u64, ids: &[u64]) {
        match source {
            Source::Outbox => {
                let ppm = self.core.options.mark_sent_fail_ppm;
                let fault = crate::fault::Fault::MarkSentFail { node };
                if self.core.relay_write_fails(node, ppm, fault) {
                    // The rows stay pending: the next batch publishes them
                    // again, and consumers' inboxes must absorb the repeat.
                    self.core.stats.mark_sent_failures += 1;
                } else {
                    let high_water = self.core.options.relay_high_water;
                    let db = self.db_mut(node).expect("an outbox lives in a database");
                    for &id in ids {
                        db.mark_sent(id);
                    }
                    if high_water {
                        // The cursor moves in the sent-marks' transaction.
                        db.advance_relay_cursor(ids.iter().copied().max().unwrap_or(0));
                    }
                }
            }
            Source::Memory => {
                self.core.runtime[node.index()].memory.retain(|r| !ids.contains(&r.id))
            }
        }
        self.retire(node, source, seq);
    }

    /// Batch `seq` is done with (acknowledged, or its produce timeout fired
    /// unanswered): send the next batch, which is the same rows if they were
    /// not acknowledged.
    pub(crate) fn retire(&mut self, node: NodeId, source: Source, seq: u64) {
        let producer = self.core.runtime[node.index()].producer(source);
        if producer.inflight == Some(seq) {
            producer.inflight = None;
            producer.deadline.disarm();
            if source == Source::Outbox {
                if let Some(db) = self.db_mut(node) {
                    db.release(node);
                }
            }
            self.kick(node, source);
        }
    }

    /// A packet reached the broker.
    pub(crate) fn broker_receives(&mut self, from: NodeId, packet: Packet<A::Msg>) {
        let core = &mut self.core;
        match packet {
            Packet::Produce { source, seq, mut records } => {
                let mut ids = core.spares.ids();
                for r in records.drain(..) {
                    core.stats.publishes += 1;
                    ids.push(r.id);
                    let (_, _, subscribers) = core.broker.append(r.topic, r.key, r.event, r.msg);
                    // Subscriber lists are tiny; copying avoids holding a
                    // borrow of the broker across `pump`.
                    let subs: smallvec_lite::Subs = subscribers.into();
                    for s in subs.iter() {
                        core.pump(s);
                    }
                }
                core.spares.keep_records(records);
                core.send(core.broker_node, from, Packet::ProduceAck { source, seq, ids });
            }
            Packet::Commit { stream, generation, offset, departs_us, incarnation } => {
                if !core.nodes[from.index()].ran_at(incarnation, departs_us) {
                    // Its sender crashed before it left: it never left.
                    core.stale(crate::world::EventKind::OffsetCommit);
                } else if core.broker.commit(stream, generation, offset) {
                    core.pump(stream);
                } else {
                    core.stats.fenced_commits += 1;
                }
            }
            Packet::Heartbeat { stream, generation } => {
                let due = core.now_us + core.options.broker.fetch_timeout_us;
                if let Some((at, timer)) = core.broker.heartbeat(stream, generation, due) {
                    core.push(at, crate::world::Event::FetchTimeout { stream, timer });
                }
            }
            Packet::App(_) | Packet::ProduceAck { .. } | Packet::Deliver(_) => {
                unreachable!("the broker receives only produce and commit requests")
            }
        }
    }
}

/// A fixed-capacity copy of a subscriber list, so the hot path does not
/// allocate for the common case of a handful of subscribers.
mod smallvec_lite {
    use crate::broker::StreamId;

    pub struct Subs {
        inline: [StreamId; 8],
        len: usize,
        spill: Vec<StreamId>,
    }

    impl From<&[StreamId]> for Subs {
        fn from(s: &[StreamId]) -> Subs {
            let mut inline = [StreamId(0); 8];
            if s.len() <= 8 {
                inline[..s.len()].copy_from_slice(s);
                Subs { inline, len: s.len(), spill: Vec::new() }
            } else {
                Subs { inline, len: 0, spill: s.to_vec() }
            }
        }
    }

    impl Subs {
        pub fn iter(&self) -> impl Iterator<Item = StreamId> + '_ {
            self.inline[..self.len].iter().chain(self.spill.iter()).copied()
        }
    }
}
