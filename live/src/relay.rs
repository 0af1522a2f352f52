//! Producers: the outbox relay, which publishes committed outbox rows, and
//! the in-memory producer of a dual write (the planted no-outbox bug).
//!
//! The relay takes the unsent rows with `FOR UPDATE SKIP LOCKED` (so two
//! relays never take the same row), publishes each under a `Nats-Msg-Id`
//! made from the row's id, waits for the broker's acknowledgements, and
//! marks the rows sent in the same transaction. It polls: a commit wakes it
//! early, but a wake-up that never comes costs only the poll interval. It
//! keeps no high-water id: ids are drawn before commit, so a row with a
//! smaller id can commit after a larger one.
//!
//! A relay killed after the broker acknowledged but before the rows were
//! marked publishes them again after the restart; the stream drops the
//! second copy by its id, and a copy that gets through anyway (outside the
//! stream's deduplication window) meets the consumer's inbox.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::Context;
use domain::Topic;

use crate::node::Shared;
use crate::pg::{call, connect};

/// How often the relay looks for unsent rows when nothing woke it.
pub const POLL: Duration = Duration::from_millis(50);
/// Rows taken at once.
pub const BATCH: i64 = 64;

const TAKE: &str = "SELECT id, aggregate_id, event_type, payload, traceparent FROM outbox
    WHERE status = 'PENDING' ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED";
const MARK: &str =
    "UPDATE outbox SET status = 'SENT', sent_at = clock_timestamp() WHERE id = ANY($1)";

/// Publish a service's outbox for ever.
pub async fn run(shared: Arc<Shared>, js: Context) {
    let d = &shared.d;
    let p = shared.p;
    loop {
        let mut client = match connect(
            &d.infra,
            &d.database(),
            &format!("sagasim-{}-relay", p.name()),
            Some(p.schema()),
        )
        .await
        {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{}: relay: {e}", p.name());
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        loop {
            match drain(&shared, &js, &mut client).await {
                Ok(0) => {
                    let _ = tokio::time::timeout(POLL, shared.relay.notified()).await;
                }
                Ok(_) => {}
                Err(e) => {
                    eprintln!("{}: relay: {e}", p.name());
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    break;
                }
            }
        }
    }
}

/// One round: publish up to a batch of unsent rows and mark them sent.
async fn drain(
    shared: &Shared,
    js: &Context,
    client: &mut tokio_postgres::Client,
) -> Result<usize, String> {
    let d = &shared.d;
    let tx = call(client.transaction()).await.map_err(|e| e.to_string())?;
    let rows = call(tx.query(TAKE, &[&BATCH])).await.map_err(|e| e.to_string())?;
    if rows.is_empty() {
        call(tx.commit()).await.map_err(|e| e.to_string())?;
        return Ok(0);
    }
    let (before, after) = d.broker.relay_hold_ms;
    if before > 0 {
        tokio::time::sleep(Duration::from_millis(before)).await;
    }
    let mut sent: Vec<i64> = Vec::with_capacity(rows.len());
    let publishes = rows.iter().map(|r| {
        let (id, aggregate): (i64, i64) = (r.get(0), r.get(1));
        let topic = Topic::ALL
            .into_iter()
            .find(|t| t.name() == r.get::<_, &str>(2))
            .expect("outbox rows name a topic");
        let payload: serde_json::Value = r.get(3);
        let trace: Option<String> = r.get(4);
        let subject = d.subject(topic, d.partition(aggregate as u64));
        let msg_id = format!("{}-{id}", shared.p.name());
        let body = serde_json::to_vec(&payload).expect("json serialises");
        async move {
            let ids = (Some(msg_id.as_str()), Some(msg_id.as_str()));
            crate::nats::publish(js, subject, body.into(), ids, trace.as_deref()).await.map(|()| id)
        }
    });
    for r in futures::future::join_all(publishes).await {
        match r {
            Ok(id) => sent.push(id),
            // Not acknowledged: the row stays unsent and goes again.
            Err(e) => eprintln!("{}: relay: publish: {e}", shared.p.name()),
        }
    }
    if after > 0 {
        tokio::time::sleep(Duration::from_millis(after)).await;
    }
    call(tx.execute(MARK, &[&sent])).await.map_err(|e| e.to_string())?;
    call(tx.commit()).await.map_err(|e| e.to_string())?;
    Ok(sent.len())
}

/// The dual write's producer: records wait in memory for the linger time,
/// then go to the broker without an id for its deduplication (each keeps
/// the event id it was given in memory). A crash meanwhile loses them.
pub async fn memory(shared: Arc<Shared>, js: Context) {
    let linger = Duration::from_millis(shared.d.broker.linger_ms.max(1));
    loop {
        tokio::time::sleep(linger).await;
        let batch: Vec<crate::node::Pending> = {
            let mut m = shared.memory.lock().expect("the producer is not poisoned");
            std::mem::take(&mut *m)
        };
        for r in batch {
            if let Err(e) = crate::nats::publish(
                &js,
                r.subject.clone(),
                r.payload.clone(),
                (None, Some(&r.event_id)),
                Some(&r.traceparent),
            )
            .await
            {
                eprintln!("{}: producer: {e}; holding the record", shared.p.name());
                shared.memory.lock().expect("the producer is not poisoned").push(r);
            }
        }
    }
}
