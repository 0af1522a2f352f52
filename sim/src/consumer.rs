//! The consumer side of a stream, on the consuming node: accept a batch,
//! handle its records one step each (the first in the step the batch lands
//! in), then send the offset commit, which leaves `commit_delay` after the
//! last handling. A crash between handling and the commit's departure means
//! the records come again.
//!
//! A consumer follows one session (generation) at a time: a batch from a newer
//! generation replaces whatever it held (the group was reset), a batch from an
//! older one or a repeat of one it already has is ignored, as a Kafka client
//! ignores fetch responses for positions it has moved past.
//!
//! A record whose handling fails is tried again after a backoff; after
//! `max_attempts` it goes to the member's dead-letter topic and the stream
//! moves on. The member's recovery pass reads that topic like any other, and
//! a dead letter that fails again waits longer but is never dead-lettered
//! twice.

use crate::app::{App, Handled, Record};
use crate::broker::{Batch, StreamId};
use crate::node::NodeId;
use crate::sim::Sim;
use crate::world::{Local, Packet, World};

impl<A: App> World<A> {
    /// Take a batch in. Returns the stream and generation whose first
    /// record is to be handled now, in this step, when the consumer was
    /// idle: a crash between a batch's arrival and its first handling would
    /// leave the state a crash before the arrival leaves, so no fault
    /// opportunity needs a step between them. Not so when the offset is
    /// committed as the batch lands (a planted bug): then the first
    /// handling takes a step of its own, so that a crash can fall between
    /// that commit and it.
    pub(crate) fn consumer_receives(
        &mut self,
        node: NodeId,
        mut batch: Batch<A::Msg>,
    ) -> Option<(StreamId, u32)> {
        let core = &mut self.core;
        let side = core.side(node, batch.stream);
        let accept = match side.session {
            None => true,
            Some((g, next)) => {
                batch.generation > g || (batch.generation == g && batch.first_offset == next)
            }
        };
        if !accept {
            core.broker.keep_batch(batch.records);
            return None;
        }
        if side.session.map(|(g, _)| g) != Some(batch.generation) {
            side.queue.clear();
            side.attempts = 0;
        }
        let idle = side.queue.is_empty();
        let n = batch.records.len() as u64;
        side.session = Some((batch.generation, batch.first_offset + n));
        let records = batch.records.drain(..);
        side.queue.extend((batch.first_offset..).zip(records).map(|(o, (e, m))| (o, e, m)));
        core.broker.keep_batch(std::mem::take(&mut batch.records));
        let (stream, generation) = (batch.stream, batch.generation);
        if core.options.commit_before_process {
            core.send_commit(node, stream, (generation, batch.first_offset + n), 0);
            if idle {
                let handler = core.options.handler_us;
                core.local(node, handler, Local::Process { stream, generation });
            }
            return None;
        }
        idle.then_some((stream, generation))
    }
}

impl<A: App> Sim<A> {
    /// Handle the next record of a stream's batch; after the last one,
    /// schedule the offset commit.
    pub(crate) fn process_next(&mut self, node: NodeId, stream: StreamId, generation: u32) {
        let core = &mut self.world.core;
        let side = core.side(node, stream);
        let stale = match side.session {
            Some((g, next)) if g == generation => side.queue.pop_front().map(|r| (r, next)),
            _ => None,
        };
        let Some(((offset, event, msg), next)) = stale else {
            core.stale(crate::world::EventKind::Process);
            return;
        };
        let attempt = side.attempts;
        let s = core.broker.stream(stream);
        let (topic, partition) = (s.topic, s.partition);
        let dead_letter = core.broker.is_dead_letter_topic(topic);
        core.stats.records_handled += 1;
        let mut handled = Handled::Done;
        self.with_node(node, |app, vol, cx| {
            let record = Record {
                stream,
                topic,
                partition,
                offset,
                generation,
                attempt,
                dead_letter,
                event,
                msg: &msg,
            };
            handled = app.on_record(vol, cx, record)
        });
        let core = &mut self.world.core;
        if handled == Handled::Retry {
            core.stats.handler_retries += 1;
            // A slow record must not cost the consumer its session: tell the
            // broker it is alive (over the network, so a partition still
            // ends the session).
            let broker = core.broker_node;
            core.send(node, broker, Packet::Heartbeat { stream, generation });
            let max_attempts = core.options.max_attempts;
            let side = core.side(node, stream);
            side.attempts += 1;
            let exhausted = max_attempts.is_some_and(|m| side.attempts >= m);
            let ppm = core.options.dead_letter_fail_ppm;
            let dlq_fails = !dead_letter
                && exhausted
                && core.relay_write_fails(node, ppm, crate::fault::Fault::DeadLetterFail { node });
            if dlq_fails {
                // The dead-letter write failed: the record stays at the head
                // of its partition, and the next failure tries it again.
                core.stats.dead_letter_failures += 1;
            }
            let side = core.side(node, stream);
            if dead_letter || !exhausted || dlq_fails {
                side.queue.push_front((offset, event, msg));
                let wait = if dead_letter {
                    core.options.dead_letter_retry_us
                } else {
                    core.options.retry_backoff_us
                };
                core.local(node, wait, Local::Process { stream, generation });
                return;
            }
            self.world.dead_letter(node, stream, offset, msg);
        }
        let core = &mut self.world.core;
        let side = core.side(node, stream);
        side.attempts = 0;
        if !side.queue.is_empty() {
            let handler = core.options.handler_us;
            core.local(node, handler, Local::Process { stream, generation });
        } else {
            let delay = core.options.commit_delay_us;
            core.send_commit(node, stream, (generation, next), delay);
        }
    }
}

impl<A: App> World<A> {
    /// Move a record that failed too often to the member's dead-letter topic.
    /// The append is taken as acknowledged before the stream moves on, as a
    /// consumer that produces to its dead-letter topic synchronously would.
    fn dead_letter(&mut self, node: NodeId, stream: StreamId, offset: u64, msg: A::Msg) {
        let core = &mut self.core;
        let s = core.broker.stream(stream);
        // The copy keeps the record's key and event id.
        let (key, event, _) =
            core.broker.topic(s.topic).logs[s.partition as usize][offset as usize];
        let dlq = core.broker.dead_letter_topic(node).expect("dead-lettering members have a topic");
        core.stats.dead_letters += 1;
        let name = &core.nodes[node.index()].name;
        core.trace.record(crate::trace::TraceKind::Note, name, None, || {
            format!("dead-letter {stream:?} offset {offset}")
        });
        let (_, _, subs) = core.broker.append(dlq, key, event, msg);
        let subs = subs.to_vec();
        for s in subs {
            core.pump(s);
        }
    }
}
