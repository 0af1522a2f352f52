//! The consumer side of a stream, on the consuming node: accept a batch,
//! handle its records one step each, then commit the offset in a step of its
//! own. A crash between handling and committing means the records come again.
//!
//! A consumer follows one session (generation) at a time: a batch from a newer
//! generation replaces whatever it held (the group was reset), a batch from an
//! older one or a repeat of one it already has is ignored, as a Kafka client
//! ignores fetch responses for positions it has moved past.

use crate::app::{App, Record};
use crate::broker::{Batch, StreamId};
use crate::node::NodeId;
use crate::sim::Sim;
use crate::world::{Local, World};

impl<A: App> World<A> {
    pub(crate) fn consumer_receives(&mut self, node: NodeId, batch: Batch<A::Msg>) {
        let core = &mut self.core;
        let side = &mut core.consumers[batch.stream.index()];
        let accept = match side.session {
            None => true,
            Some((g, next)) => {
                batch.generation > g || (batch.generation == g && batch.first_offset == next)
            }
        };
        if !accept {
            return;
        }
        if side.session.map(|(g, _)| g) != Some(batch.generation) {
            side.queue.clear();
        }
        let idle = side.queue.is_empty();
        let n = batch.records.len() as u64;
        side.session = Some((batch.generation, batch.first_offset + n));
        side.queue.extend((batch.first_offset..).zip(batch.records));
        if idle {
            let handler = core.options.handler_us;
            let (stream, generation) = (batch.stream, batch.generation);
            core.local(node, handler, Local::Process { stream, generation });
        }
    }
}

impl<A: App> Sim<A> {
    /// Handle the next record of a stream's batch; after the last one,
    /// schedule the offset commit.
    pub(crate) fn process_next(&mut self, node: NodeId, stream: StreamId, generation: u32) {
        let core = &mut self.world.core;
        let side = &mut core.consumers[stream.index()];
        let Some((g, next)) = side.session else {
            return;
        };
        if g != generation {
            return;
        }
        let Some((offset, msg)) = side.queue.pop_front() else {
            return;
        };
        let more = !side.queue.is_empty();
        let s = core.broker.stream(stream);
        let (topic, partition) = (s.topic, s.partition);
        core.stats.records_handled += 1;
        self.with_node(node, |app, vol, cx| {
            let record = Record { stream, topic, partition, offset, generation, msg: &msg };
            app.on_record(vol, cx, record)
        });
        let core = &mut self.world.core;
        if !core.nodes[node.index()].up {
            return;
        }
        if more {
            let handler = core.options.handler_us;
            core.local(node, handler, Local::Process { stream, generation });
        } else {
            let delay = core.options.commit_delay_us;
            core.local(node, delay, Local::CommitOffset { stream, generation, offset: next });
        }
    }
}
