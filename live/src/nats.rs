//! NATS JetStream as the broker: a stream per topic, partitioned by order
//! key into subjects (`<run>.<topic>.<partition>`); a durable pull consumer
//! per (process, topic, partition), so a partition's records are handled in
//! order; a dead-letter stream per consuming process. A publish counts once
//! the broker has acknowledged it.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream, Context};
use async_nats::HeaderMap;
use bytes::Bytes;
use domain::Topic;
use futures::StreamExt;

use crate::deploy::{Deployment, Infra, Process};
use crate::error::{Error, Result};

/// How long a JetStream request (and a publish's acknowledgement) may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// The header that names a message for the stream's deduplication.
pub const MSG_ID: &str = "Nats-Msg-Id";

/// The header that carries a record's event id (its producer's outbox row,
/// or in-memory record), kept by its dead letter: what an inbox records.
pub const EVENT_ID: &str = "Sagasim-Event-Id";

/// Connect to NATS and its JetStream, or say why not.
pub async fn connect(infra: &Infra) -> Result<Context> {
    let at = &infra.nats_url;
    let unreachable = |why: String| Error::unreachable("NATS", at, why);
    let options = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(2))
        .request_timeout(Some(TIMEOUT));
    let client = tokio::time::timeout(Duration::from_secs(3), options.connect(at.as_str()))
        .await
        .map_err(|_| unreachable("no answer within 3 s".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
    // Ask JetStream for the account's information, read as plain JSON: the
    // client's typed answer does not parse what nats-server 2.9 sends.
    let info =
        tokio::time::timeout(Duration::from_secs(3), client.request("$JS.API.INFO", "".into()))
            .await
            .map_err(|_| unreachable("JetStream did not answer within 3 s".into()))?
            .map_err(|e| unreachable(format!("JetStream (started with -js?): {e}")))?;
    let answer: serde_json::Value = serde_json::from_slice(&info.payload).unwrap_or_default();
    if let Some(err) = answer.get("error") {
        return Err(unreachable(format!("JetStream: {err}")));
    }
    let mut js = jetstream::new(client);
    js.set_timeout(TIMEOUT);
    Ok(js)
}

fn failed(what: String, e: impl std::fmt::Display) -> Error {
    Error::failed(format!("NATS: {what}: {e}"))
}

/// The topics a process consumes (none outside the choreography).
pub fn subscriptions(d: &Deployment, p: Process) -> &'static [Topic] {
    match (d.strategy, p) {
        (domain::Strategy::Choreography, Process::Service(s)) => s.subscriptions(),
        _ => &[],
    }
}

/// The processes that consume, in a deployment.
pub fn consumers(d: &Deployment) -> Vec<Process> {
    Process::of(d.strategy).into_iter().filter(|p| !subscriptions(d, *p).is_empty()).collect()
}

/// Create the run's streams: one per topic, one dead-letter stream per
/// consuming process.
pub async fn create_streams(js: &Context, d: &Deployment) -> Result<()> {
    let mut configs: Vec<stream::Config> = Topic::ALL
        .iter()
        .map(|&t| stream::Config {
            name: d.stream(t),
            subjects: vec![format!("{}.{}.*", d.run, t.name())],
            storage: stream::StorageType::File,
            duplicate_window: Duration::from_millis(d.broker.dedupe_window_ms),
            ..Default::default()
        })
        .collect();
    configs.extend(consumers(d).into_iter().map(|p| stream::Config {
        name: d.dead_letter_stream(p),
        subjects: vec![d.dead_letter_subject(p)],
        storage: stream::StorageType::File,
        ..Default::default()
    }));
    for c in configs {
        let name = c.name.clone();
        js.get_or_create_stream(c).await.map_err(|e| failed(format!("creating {name}"), e))?;
    }
    Ok(())
}

/// Delete every stream of a run (its consumers go with them).
pub async fn delete_streams(js: &Context, run: &str) -> Result<()> {
    let prefix = format!("{run}_").to_uppercase();
    let mut names = js.stream_names();
    let mut mine = Vec::new();
    while let Some(n) = tokio::time::timeout(TIMEOUT, names.next()).await.ok().flatten() {
        let n = n.map_err(|e| failed("listing streams".into(), e))?;
        if n.starts_with(&prefix) {
            mine.push(n);
        }
    }
    for n in mine {
        js.delete_stream(&n).await.map_err(|e| failed(format!("deleting {n}"), e))?;
    }
    Ok(())
}

/// Publish and wait for the broker's acknowledgement. `msg_id` lets the
/// stream drop a second copy of the same message; `event_id` is what
/// consumers' inboxes record.
pub async fn publish(
    js: &Context,
    subject: String,
    payload: Bytes,
    (msg_id, event_id): (Option<&str>, Option<&str>),
    traceparent: Option<&str>,
) -> std::result::Result<(), String> {
    let mut headers = HeaderMap::new();
    if let Some(id) = msg_id {
        headers.insert(MSG_ID, id);
    }
    if let Some(id) = event_id {
        headers.insert(EVENT_ID, id);
    }
    if let Some(t) = traceparent {
        headers.insert(crate::http::TRACEPARENT, t);
    }
    let ack =
        js.publish_with_headers(subject, headers, payload).await.map_err(|e| e.to_string())?;
    tokio::time::timeout(TIMEOUT, ack)
        .await
        .map_err(|_| "no acknowledgement in time".to_string())?
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// A consumer's durable name.
pub fn consumer_name(p: Process, topic: Topic, partition: u32) -> String {
    format!("{}-{}-{partition}", p.name(), topic.name())
}

/// The durable pull consumer of a process for one partition of a topic,
/// or for its dead-letter stream (`topic` absent).
pub async fn consumer(
    js: &Context,
    d: &Deployment,
    p: Process,
    topic: Option<Topic>,
    partition: u32,
) -> Result<consumer::PullConsumer> {
    let (stream_name, name, filter) = match topic {
        Some(t) => (d.stream(t), consumer_name(p, t, partition), d.subject(t, partition)),
        None => (d.dead_letter_stream(p), format!("{}-dlq", p.name()), d.dead_letter_subject(p)),
    };
    let stream = js
        .get_stream(&stream_name)
        .await
        .map_err(|e| failed(format!("opening {stream_name}"), e))?;
    let config = consumer::pull::Config {
        durable_name: Some(name.clone()),
        filter_subject: filter,
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: Duration::from_millis(d.broker.ack_wait_ms),
        max_ack_pending: d.broker.max_poll_records as i64,
        max_deliver: -1,
        ..Default::default()
    };
    stream
        .get_or_create_consumer(&name, config)
        .await
        .map_err(|e| failed(format!("creating consumer {name}"), e))
}

/// Every consumer of a deployment: (process, topic, partition), and each
/// consuming process's dead-letter consumer (topic absent).
pub fn all_consumers(d: &Deployment) -> Vec<(Process, Option<Topic>, u32)> {
    let mut all = Vec::new();
    for p in consumers(d) {
        for &t in subscriptions(d, p) {
            all.extend((0..d.broker.partitions).map(|part| (p, Some(t), part)));
        }
        all.push((p, None, 0));
    }
    all
}

/// Create every consumer of the run, so that none misses a record that
/// was published before its process first started.
pub async fn create_consumers(js: &Context, d: &Deployment) -> Result<()> {
    for (p, t, part) in all_consumers(d) {
        consumer(js, d, p, t, part).await?;
    }
    Ok(())
}

/// Records in the deployment's dead-letter streams: each one a record some
/// consumer gave up on (the stream drops a second copy by its id).
pub async fn dead_letters(js: &Context, d: &Deployment) -> Result<u64> {
    let mut total = 0;
    for p in consumers(d) {
        let name = d.dead_letter_stream(p);
        let mut s = js.get_stream(&name).await.map_err(|e| failed(format!("opening {name}"), e))?;
        total += s.info().await.map_err(|e| failed(format!("reading {name}"), e))?.state.messages;
    }
    Ok(total)
}

/// Records not yet acknowledged by every consumer of a deployment, dead
/// letters included: what "caught up" is measured against.
pub async fn lag(js: &Context, d: &Deployment) -> Result<u64> {
    let mut total = 0;
    for (p, t, part) in all_consumers(d) {
        let mut c = consumer(js, d, p, t, part).await?;
        let info = c.info().await.map_err(|e| failed("reading a consumer".into(), e))?;
        total += info.num_pending + info.num_ack_pending as u64;
    }
    Ok(total)
}
