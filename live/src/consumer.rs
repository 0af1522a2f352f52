//! A process's consumers: one loop per (topic, partition), reading batches
//! from its durable pull consumer. The records of a batch are handled one
//! by one, in order, by the node; the batch is acknowledged once it is done
//! (the "offset commit", as its own step: a crash in between delivers the
//! handled records again, which is what the inbox is for). A record that
//! fails is tried again after a backoff, with the broker told it is still
//! being worked on; after the scenario's `max_attempts` it goes to the
//! process's dead-letter stream, with an alarm, and the partition moves on.
//! The recovery pass reads that stream like any other, and a dead letter
//! that fails again waits longer but is never dead-lettered twice.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, Context};
use domain::node::{Delivery, Handled};
use domain::{EventId, Msg, Topic};
use futures::StreamExt;
use tokio::sync::oneshot;

use crate::deploy::Process;
use crate::node::{Input, Shared};
use crate::trace::TraceCtx;

/// A record's payload as the node reads it: an event, or (a producer with
/// another schema, a corrupted write) a record nobody can read.
pub fn decode(payload: &[u8], seq: u64) -> Msg {
    match serde_json::from_slice(payload) {
        Ok(ev) => Msg::Event(ev),
        Err(_) => Msg::Malformed { id: seq },
    }
}

fn header<'m>(m: &'m jetstream::Message, name: &str) -> Option<&'m str> {
    m.headers.as_ref().and_then(|h| h.get(name)).map(|v| v.as_str())
}

fn trace_of(m: &jetstream::Message) -> TraceCtx {
    header(m, crate::http::TRACEPARENT).and_then(TraceCtx::parse).unwrap_or_else(TraceCtx::root)
}

async fn handle(shared: &Shared, msg: &Msg, at: Delivery, ctx: TraceCtx) -> Handled {
    let (done, answer) = oneshot::channel();
    let input = Input::Record { msg: msg.clone(), at, ctx, done };
    if shared.inputs.send(input).is_err() {
        return Handled::Retry;
    }
    answer.await.unwrap_or(Handled::Retry)
}

/// A name as a number: hashed with fixed keys, so every process agrees.
fn hashed(name: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut h);
    h.finish()
}

/// A stream's number for a record's [`Delivery`] position (`position_of`
/// keeps 23 bits of it).
fn log_of(stream: &str) -> u64 {
    hashed(stream) & 0xff_ffff
}

/// A record's event id: its event-id header hashed, with the top bit clear
/// (the planted bug's position keys have it set). A record with no header
/// (a poison record) is known by its position.
fn event_of(m: &jetstream::Message, position: u64) -> EventId {
    EventId(header(m, crate::nats::EVENT_ID).map_or(position, |id| hashed(id) >> 1))
}

/// Move a record that failed too often to the process's dead-letter stream:
/// published (under an id, so a repeat is dropped) and acknowledged before
/// the partition moves on.
async fn dead_letter(shared: &Shared, js: &Context, m: &jetstream::Message) -> bool {
    let d = &shared.d;
    let Ok(info) = m.info() else { return false };
    let id = format!("{}-{}", info.stream, info.stream_sequence);
    let trace = trace_of(m).header();
    let subject = d.dead_letter_subject(shared.p);
    let event = header(m, crate::nats::EVENT_ID);
    let ids = (Some(id.as_str()), event);
    let published = crate::nats::publish(js, subject, m.payload.clone(), ids, Some(&trace)).await;
    match published {
        Ok(()) => {
            shared.dead_letters.fetch_add(1, Ordering::Relaxed);
            eprintln!(
                "ALARM {}: dead letter: {} record {} failed {} times",
                shared.p.name(),
                info.stream,
                info.stream_sequence,
                d.broker.max_attempts.unwrap_or(0)
            );
            true
        }
        Err(e) => {
            eprintln!("{}: could not dead-letter {id}: {e}", shared.p.name());
            false
        }
    }
}

/// Handle one record until it is done or dead-lettered; false if the
/// process should give the batch up (it could not dead-letter).
async fn take(shared: &Shared, js: &Context, m: &jetstream::Message, dlq: bool) -> bool {
    let b = &shared.d.broker;
    let (stream, seq) = m.info().map_or((0, 0), |i| (log_of(i.stream), i.stream_sequence));
    let msg = decode(&m.payload, seq);
    let position = Delivery::position_of(stream, seq);
    let at = Delivery { event: event_of(m, position), position, dead_letter: dlq };
    let ctx = trace_of(m);
    let mut attempts = 0u32;
    loop {
        if handle(shared, &msg, at, ctx).await == Handled::Done {
            return true;
        }
        attempts += 1;
        // Still working on it: the broker must not hand it to anyone else.
        let _ = tokio::time::timeout(crate::nats::TIMEOUT, m.ack_with(AckKind::Progress)).await;
        if !dlq && b.max_attempts.is_some_and(|n| attempts >= n) {
            return dead_letter(shared, js, m).await;
        }
        let wait = if dlq { b.dead_letter_retry_ms } else { b.retry_backoff_ms };
        tokio::time::sleep(Duration::from_millis(wait)).await;
    }
}

/// Consume one partition of `topic` (or, `None`, the dead-letter stream)
/// for ever.
pub async fn run(shared: Arc<Shared>, js: Context, topic: Option<Topic>, partition: u32) {
    let d = &shared.d;
    let p: Process = shared.p;
    let consumer = loop {
        match crate::nats::consumer(&js, d, p, topic, partition).await {
            Ok(c) => break c,
            Err(e) => {
                eprintln!("{}: {e}; trying again", p.name());
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let (n, wait) = (d.broker.max_poll_records as usize, d.broker.fetch_wait_ms);
    let before = !d.settings.safety.commit_after_process;
    loop {
        let batch = consumer.batch().max_messages(n).expires(Duration::from_millis(wait));
        let mut messages = match tokio::time::timeout(crate::nats::TIMEOUT, batch.messages()).await
        {
            Ok(Ok(m)) => m,
            _ => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let mut handled = Vec::new();
        let window = Duration::from_millis(wait + 1000);
        while let Ok(Some(m)) = tokio::time::timeout(window, messages.next()).await {
            let Ok(m) = m else { break };
            if before {
                // The planted bug: the offset is committed before handling.
                let _ = tokio::time::timeout(crate::nats::TIMEOUT, m.double_ack()).await;
            }
            if !take(&shared, &js, &m, topic.is_none()).await {
                break;
            }
            handled.push(m);
        }
        if !before {
            let loss = d.broker.ack_loss_ppm;
            for m in &handled {
                // A lost acknowledgement (the scenario's network loss, on
                // the consumer's acks): the broker delivers it again once
                // its wait runs out, as it would after a lost offset commit.
                if shared.strikes("ack-lost", loss) {
                    continue;
                }
                let _ = tokio::time::timeout(crate::nats::TIMEOUT, m.double_ack()).await;
            }
        }
    }
}
