//! The live worlds: PostgreSQL through the services' writer, NATS
//! JetStream through the services' consumer loop, Redis through the
//! gateway's cache. Each test gets state of its own, removed afterwards.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use domain::gateway::KeyEntry;
use domain::node::Handled;
use domain::{Event, OrderId, RequestKey, Store, Strategy, Topic, Write};
use futures::StreamExt;
use live::deploy::{BrokerSettings, Deployment, Infra, Process};
use live::node::{Input, Shared};
use live::pg::writer::{Commit, OutboxRow, Writer};

use super::{BrokerWorld, CacheWorld, TxWorld};

pub fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime")
    })
}

/// A name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{:x}{n}", live::deploy::wall_us() & 0xff_ffff_ffff ^ std::process::id() as u64)
}

pub struct LiveTx {
    infra: Infra,
    database: String,
    process: Process,
    writer: Writer,
    /// The next commit's session is ended while that commit is under way.
    break_next: bool,
}

impl LiveTx {
    fn new(p: Process, s: Store) -> LiveTx {
        let infra = Infra::default();
        let database = unique("sagasim_ct");
        let writer = rt().block_on(async {
            live::pg::create_database(&infra, &database).await.expect("PostgreSQL is up");
            let mut admin = live::pg::connect(&infra, &database, "ct", None).await.expect("up");
            live::pg::migrate(&mut admin, p).await.expect("migrations apply");
            live::pg::seed(&mut admin, p, &super::workload_of(&s)).await.expect("seeds");
            Writer::open(&infra, &database, p).await.expect("a writer")
        });
        LiveTx { infra, database, process: p, writer, break_next: false }
    }

    pub fn product() -> LiveTx {
        LiveTx::new(Process::Service(domain::Service::Product), super::product_store())
    }

    pub fn monolith() -> LiveTx {
        LiveTx::new(Process::Monolith, super::monolith_store())
    }
}

impl Drop for LiveTx {
    fn drop(&mut self) {
        let _ = rt().block_on(live::pg::drop_database(&self.infra, &self.database));
    }
}

impl LiveTx {
    /// A session of the test's own, beside the writer's.
    async fn admin(&self) -> live::pg::Client {
        live::pg::connect(&self.infra, &self.database, "ct-admin", None).await.expect("up")
    }

    /// End the writer's session now, between commits.
    pub fn end_session_now(&mut self) {
        let pid = self.writer.backend_pid();
        rt().block_on(async { end_session(&self.admin().await, pid).await });
    }

    /// Commit while another session holds the fence row locked, so the
    /// commit's statements and COMMIT are sent (its statements prepare
    /// first: row locks do not stop that) and wait behind the fence check;
    /// then end the writer's session under it. The writer cannot know
    /// whether COMMIT applied, and must find out (here: it did not).
    async fn commit_and_break(&mut self, writes: &[Write], rows: &[OutboxRow]) -> Commit {
        let pid = self.writer.backend_pid();
        let admin = self.admin().await;
        let lock = format!("BEGIN; SELECT 1 FROM {}.fence FOR UPDATE", self.process.schema());
        admin.batch_execute(&lock).await.expect("the fence locks");
        let breaker = async {
            let waiting =
                "SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'";
            while admin.query_opt(waiting, &[&pid]).await.expect("reads").is_none() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            end_session(&admin, pid).await;
            admin.batch_execute("ROLLBACK").await.expect("unlocks");
        };
        let (outcome, ()) = futures::join!(self.writer.commit(writes, rows), breaker);
        // The session ended with a FATAL after COMMIT went out: that is no
        // refusal, so the writer must have asked the journal.
        assert!(
            matches!(outcome, Commit::Resolved { .. }),
            "a lost COMMIT is resolved: {outcome:?}"
        );
        outcome
    }
}

async fn end_session(admin: &live::pg::Client, pid: i32) {
    admin.query_one("SELECT pg_terminate_backend($1)", &[&pid]).await.expect("a session ends");
}

impl TxWorld for LiveTx {
    fn commit(&mut self, writes: &[Write], events: &[Event]) -> bool {
        let rows: Vec<OutboxRow> = events
            .iter()
            .map(|e| OutboxRow {
                aggregate_id: e.order().0,
                event_type: e.topic().name(),
                payload: serde_json::to_value(e).expect("events serialise"),
                traceparent: None,
            })
            .collect();
        let outcome = if std::mem::take(&mut self.break_next) {
            rt().block_on(self.commit_and_break(writes, &rows))
        } else {
            rt().block_on(self.writer.commit(writes, &rows))
        };
        match outcome {
            Commit::Applied => true,
            Commit::Resolved { applied } => applied,
            Commit::Failed(_) => false,
            other => panic!("commit: {other:?}"),
        }
    }

    /// End the writer's session under its next commit, as a connection
    /// that breaks during COMMIT would (see `commit_and_break`).
    fn break_next_commit(&mut self) {
        self.break_next = true;
    }

    /// A new incarnation, reading the tables back (the old one is fenced).
    fn reload(&mut self) -> Store {
        rt().block_on(async {
            self.writer =
                Writer::open(&self.infra, &self.database, self.process).await.expect("up");
            self.writer.load().await.expect("the tables read back")
        })
    }

    fn unpublished(&mut self) -> Vec<Event> {
        rt().block_on(async {
            let c = live::pg::connect(
                &self.infra,
                &self.database,
                "ct-read",
                Some(self.process.schema()),
            )
            .await
            .expect("up");
            let q = "SELECT payload FROM outbox WHERE status = 'PENDING' ORDER BY id";
            let rows = c.query(q, &[]).await.expect("the outbox reads");
            rows.iter().map(|r| serde_json::from_value(r.get(0)).expect("an event")).collect()
        })
    }
}

/// A deployment of the choreography for broker tests: the data platform
/// consumes, with three attempts before the dead-letter stream.
fn broker_deployment(attempts: u32) -> Deployment {
    let run = unique("ct");
    Deployment {
        run: run.clone(),
        scenario: "default".into(),
        bug: None,
        seed: 0,
        strategy: Strategy::Choreography,
        settings: sagasim::harness::settings(
            &sagasim::scenario::Scenario::load("default").expect("built in"),
            Strategy::Choreography,
            None,
        ),
        infra: Infra::default(),
        broker: BrokerSettings {
            partitions: 4,
            max_poll_records: 8,
            max_attempts: Some(attempts),
            retry_backoff_ms: 10,
            dead_letter_retry_ms: 500,
            ack_wait_ms: 500,
            fetch_wait_ms: 200,
            linger_ms: 10,
            ack_loss_ppm: 0,
            dedupe_window_ms: 120_000,
            relay_hold_ms: (0, 0),
        },
        ports: Default::default(),
        pg_seed: 0,
        catalog: Default::default(),
        dir: std::env::temp_dir(),
    }
}

pub struct LiveBroker {
    d: Deployment,
    js: jetstream::Context,
    consumer: consumer::PullConsumer,
    subject: String,
    held: Vec<jetstream::Message>,
    dead: Vec<u64>,
}

impl LiveBroker {
    pub fn new() -> LiveBroker {
        let d = broker_deployment(3);
        rt().block_on(async {
            let js = live::nats::connect(&d.infra).await.expect("NATS is up");
            let name = format!("{}_PROBE", d.run.to_uppercase());
            let s = js
                .get_or_create_stream(stream::Config {
                    name: name.clone(),
                    subjects: vec![format!("{}.probe", d.run)],
                    ..Default::default()
                })
                .await
                .expect("a stream");
            let config = consumer::pull::Config {
                durable_name: Some("probe".into()),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: Duration::from_millis(d.broker.ack_wait_ms),
                max_ack_pending: 8,
                ..Default::default()
            };
            let consumer = s.get_or_create_consumer("probe", config).await.expect("a consumer");
            let subject = format!("{}.probe", d.run);
            LiveBroker { d, js, consumer, subject, held: Vec::new(), dead: Vec::new() }
        })
    }
}

impl Drop for LiveBroker {
    fn drop(&mut self) {
        let _ = rt().block_on(live::nats::delete_streams(&self.js, &self.d.run));
    }
}

impl BrokerWorld for LiveBroker {
    fn publish(&mut self, _key: u64, m: u64) {
        let body = m.to_string().into_bytes().into();
        rt().block_on(live::nats::publish(
            &self.js,
            self.subject.clone(),
            body,
            (None, None),
            None,
        ))
        .expect("the broker takes it");
    }

    fn fetch(&mut self) -> Vec<u64> {
        rt().block_on(async {
            let mut batch = self
                .consumer
                .batch()
                .max_messages(8)
                .expires(Duration::from_millis(300))
                .messages()
                .await
                .expect("a fetch");
            let mut got = Vec::new();
            while let Some(Ok(m)) = batch.next().await {
                got.push(String::from_utf8_lossy(&m.payload).parse().expect("a number"));
                self.held.push(m);
            }
            got
        })
    }

    fn ack(&mut self) {
        rt().block_on(async {
            for m in self.held.drain(..) {
                m.double_ack().await.expect("acknowledged");
            }
        })
    }

    fn lose_session(&mut self) {
        self.held.clear();
        std::thread::sleep(Duration::from_millis(self.d.broker.ack_wait_ms + 300));
    }

    /// The services' own consumer loop, for the data platform, with a node
    /// that fails every record.
    fn fail_until_dead_lettered(&mut self, m: u64, attempts: u32) -> u32 {
        let d = broker_deployment(attempts);
        let p = Process::Service(domain::Service::Platform);
        let order = OrderId(m as u32);
        let ev = Event::OrderConfirmed { order, product: domain::ProductId(0), qty: 1, amount: 5 };
        let tried = Arc::new(Mutex::new(0u32));
        rt().block_on(async {
            let js = live::nats::connect(&d.infra).await.expect("NATS is up");
            live::nats::create_streams(&js, &d).await.expect("streams");
            live::nats::create_consumers(&js, &d).await.expect("consumers");
            let (inputs, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let shared = Arc::new(Shared::new(d.clone(), p, 0, inputs));
            let part = d.partition(ev.key());
            let topic = Some(Topic::OrderConfirmed);
            let loop_ = tokio::spawn(live::consumer::run(shared.clone(), js.clone(), topic, part));
            let t = tried.clone();
            let node = tokio::spawn(async move {
                while let Some(input) = rx.recv().await {
                    if let Input::Record { at, done, .. } = input {
                        if at.dead_letter {
                            continue;
                        }
                        *t.lock().expect("not poisoned") += 1;
                        let _ = done.send(Handled::Retry);
                    }
                }
            });
            let body = serde_json::to_vec(&ev).expect("serialises").into();
            live::nats::publish(
                &js,
                d.subject(Topic::OrderConfirmed, part),
                body,
                (None, None),
                None,
            )
            .await
            .expect("published");
            let mut dlq = js.get_stream(d.dead_letter_stream(p)).await.expect("the DLQ");
            for _ in 0..100 {
                if dlq.info().await.expect("info").state.messages > 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            loop_.abort();
            node.abort();
            let raw = dlq.get_raw_message(1).await.expect("a dead letter");
            let ev: Event = serde_json::from_slice(&raw.payload).expect("the event, as it was");
            self.dead = vec![ev.order().0 as u64];
            let _ = live::nats::delete_streams(&js, &d.run).await;
        });
        let n = *tried.lock().expect("not poisoned");
        n
    }

    fn dead_letters(&mut self) -> Vec<u64> {
        self.dead.clone()
    }
}

pub struct LiveCache {
    cache: live::redis::Cache,
    prefix: String,
}

impl LiveCache {
    pub fn new() -> LiveCache {
        let cache = rt()
            .block_on(live::redis::Cache::connect("redis://127.0.0.1:6379/"))
            .expect("Redis is up");
        LiveCache { cache, prefix: format!("sagasim:{}:key:", unique("ct")) }
    }
    fn key(&self, k: RequestKey) -> String {
        format!("{}{:016x}", self.prefix, k.0)
    }
}

impl Drop for LiveCache {
    fn drop(&mut self) {
        let prefix = self.prefix.clone();
        let _ = rt().block_on(self.cache.forget(&prefix));
    }
}

impl CacheWorld for LiveCache {
    fn set_nx(&mut self, key: RequestKey, e: KeyEntry, ttl_ms: u64) -> bool {
        let k = self.key(key);
        rt().block_on(self.cache.set_nx(&k, &e, ttl_ms)).expect("Redis answers")
    }
    fn set(&mut self, key: RequestKey, e: KeyEntry, ttl_ms: u64) {
        let k = self.key(key);
        rt().block_on(self.cache.set(&k, &e, ttl_ms)).expect("Redis answers")
    }
    fn get(&mut self, key: RequestKey) -> Option<KeyEntry> {
        let k = self.key(key);
        rt().block_on(self.cache.get(&k)).expect("Redis answers")
    }
    fn wait_ms(&mut self, ms: u64) {
        std::thread::sleep(Duration::from_millis(ms));
    }
    fn flush(&mut self) {
        let prefix = self.prefix.clone();
        rt().block_on(self.cache.forget(&prefix)).expect("Redis answers");
    }
}
