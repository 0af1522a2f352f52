//! A service process's node: the domain's [`Node`] on a thread of its own,
//! fed one input at a time (a message, a record, a timer), with a [`Host`]
//! over the real world. Its tables live in PostgreSQL, with an in-memory
//! mirror the handlers read; a commit goes to PostgreSQL first and reaches
//! the mirror only once it applied. Sends become HTTP calls, timers become
//! tokio sleeps, and events go out through the outbox relay (or, with the
//! outbox switched off, through a producer that holds them in memory).
//!
//! The thread is the process's one writer: inputs are handled in turn, so a
//! handler's read of the mirror and its commit are one atomic step, as in
//! the simulation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::message::CmdKind;
use domain::node::{Counters, Handled, Host, Node, Peer, Vol};
use domain::order::Order;
use domain::pg::PgPort;
use domain::ports::TxBuf;
use domain::{Msg, OrderId, Service, Store};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot, Notify};

use crate::deploy::{wall_us, Deployment, Process};
use crate::http::{self, Envelope};
use crate::pg::writer::{Commit, OutboxRow, Writer};
use crate::trace::TraceCtx;

/// How long a call to another process may take before it counts as lost.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// What reaches the node thread.
pub enum Input {
    Boot,
    /// A message; `replies` collects what the node sends back to `from`
    /// while handling it (with the delay of each), for the HTTP response.
    Message {
        from: Peer,
        msg: Msg,
        ctx: TraceCtx,
        replies: Option<oneshot::Sender<Vec<(Msg, u64)>>>,
    },
    Record {
        msg: Msg,
        at: domain::node::Delivery,
        ctx: TraceCtx,
        done: oneshot::Sender<Handled>,
    },
    Timer {
        tag: u64,
        ctx: TraceCtx,
    },
    Status(oneshot::Sender<Status>),
    Order(OrderId, oneshot::Sender<Option<Order>>),
    /// The fault phase is over: the payment gateway stops misbehaving.
    Heal,
}

/// A fault a process decided itself (the payment gateway's).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Injected {
    pub at_us: u64,
    pub what: String,
}

/// What a process reports of itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub process: String,
    pub epoch: i64,
    pub counters: Counters,
    pub gave_up: Vec<(OrderId, CmdKind)>,
    /// Records a dual write still holds in memory.
    pub memory_backlog: u64,
    /// Records this incarnation moved to its dead-letter stream (the run
    /// counts the stream's records).
    pub dead_letters: u64,
    pub injected: Vec<Injected>,
    pub commits: u64,
    pub failed_commits: u64,
    /// Commits whose connection broke during COMMIT, then read back.
    pub unknown_commits: u64,
}

/// A record a dual write holds in memory until it is published.
pub struct Pending {
    /// Its event id: the process, its incarnation and a sequence.
    pub event_id: String,
    pub subject: String,
    pub payload: bytes::Bytes,
    pub traceparent: String,
}

/// What the node thread shares with the async side of its process.
pub struct Shared {
    pub d: Deployment,
    pub p: Process,
    pub http: http::Client,
    pub inputs: mpsc::UnboundedSender<Input>,
    /// Wakes the outbox relay after a commit with events.
    pub relay: Notify,
    /// The dual write's producer memory (the planted no-outbox bug).
    pub memory: Mutex<Vec<Pending>>,
    /// Names the in-memory records' event ids apart across restarts.
    pub incarnation: i64,
    pub next_memory_id: AtomicU64,
    pub dead_letters: AtomicU64,
    /// The faults this process decided itself (the payment gateway's, a
    /// consumer's lost acknowledgements), and the stream it draws them
    /// from; none once the fault phase is over.
    pub injected: Mutex<Vec<Injected>>,
    pub faults: Mutex<ChaCha8Rng>,
    pub healed: std::sync::atomic::AtomicBool,
}

impl Shared {
    /// What a process shares between its node thread and its tasks, with
    /// its faults drawn from its own stream of the run's seed: one per
    /// process and incarnation.
    pub fn new(
        d: Deployment,
        p: Process,
        incarnation: i64,
        inputs: mpsc::UnboundedSender<Input>,
    ) -> Shared {
        let name = p
            .name()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3));
        let seed = d.pg_seed ^ name ^ (incarnation as u64).rotate_left(32);
        Shared {
            p,
            http: http::Client::default(),
            inputs,
            relay: Notify::new(),
            memory: Mutex::new(Vec::new()),
            incarnation,
            next_memory_id: AtomicU64::new(0),
            dead_letters: AtomicU64::new(0),
            injected: Mutex::new(Vec::new()),
            faults: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
            healed: std::sync::atomic::AtomicBool::new(d.healed_path().exists()),
            d,
        }
    }

    /// Whether a fault of `ppm` parts per million strikes now (and, if it
    /// does, its record under `what`).
    pub fn strikes(&self, what: &str, ppm: u32) -> bool {
        if ppm == 0 || self.healed.load(Ordering::Relaxed) {
            return false;
        }
        let hit = self.faults.lock().expect("not poisoned").gen_range(0..1_000_000u32) < ppm;
        if hit {
            let i = Injected { at_us: wall_us(), what: what.to_string() };
            self.injected.lock().expect("not poisoned").push(i);
        }
        hit
    }

    /// The peer this process is, as others see it.
    pub fn me(&self) -> Peer {
        match self.p {
            Process::Gateway => Peer::Gateway,
            Process::Service(s) => Peer::Service(s),
            Process::Monolith => Peer::Service(Service::Product),
        }
    }
}

/// The node thread's state.
pub struct State {
    pub store: Store,
    pub writer: Writer,
    pub vol: Vol,
    tx: TxBuf,
    status: Status,
}

impl State {
    pub fn new(store: Store, writer: Writer, shared: &Shared) -> State {
        let status = Status {
            process: shared.p.name().to_string(),
            epoch: writer.epoch,
            ..Status::default()
        };
        State { store, writer, vol: Vol::default(), tx: TxBuf::default(), status }
    }
}

/// The host of one input's handling.
struct LiveHost<'a> {
    shared: &'a Arc<Shared>,
    rt: &'a Handle,
    store: &'a mut Store,
    writer: &'a mut Writer,
    status: &'a mut Status,
    /// The peer whose request is being handled, whose answers go back on
    /// the response, and those answers.
    reply_to: Option<Peer>,
    replies: Vec<(Msg, u64)>,
    /// The span handling this input: what it sends carries it as parent.
    ctx: TraceCtx,
}

impl PgPort for LiveHost<'_> {
    fn fault(&mut self, what: &str, ppm: u32) -> bool {
        self.shared.strikes(what, ppm)
    }
    fn random_us(&mut self, max_us: u64) -> u64 {
        self.shared.faults.lock().expect("not poisoned").gen_range(0..=max_us)
    }
    fn now_us(&self) -> u64 {
        crate::deploy::wall_us()
    }
}

impl Host for LiveHost<'_> {
    fn store(&self) -> &Store {
        self.store
    }

    fn commit(&mut self, tx: &TxBuf) -> bool {
        let d = &self.shared.d;
        let outbox = d.settings.safety.outbox;
        let rows: Vec<OutboxRow> = if outbox {
            tx.events
                .iter()
                .map(|e| OutboxRow {
                    aggregate_id: e.order().0,
                    event_type: e.topic().name(),
                    payload: serde_json::to_value(e).expect("events serialise"),
                    traceparent: Some(self.ctx.header()),
                })
                .collect()
        } else {
            Vec::new()
        };
        let writer = &mut *self.writer;
        let outcome = self.rt.block_on(writer.commit(&tx.writes, &rows));
        let applied = match outcome {
            Commit::Applied => {
                for w in &tx.writes {
                    self.store.apply(w);
                }
                true
            }
            Commit::Failed(why) => {
                self.status.failed_commits += 1;
                eprintln!("{}: commit failed: {why}", self.shared.p.name());
                false
            }
            Commit::Resolved { applied } => {
                self.status.unknown_commits += 1;
                eprintln!(
                    "{}: the connection broke during COMMIT; the journal says it {}applied; \
                     reloading the tables",
                    self.shared.p.name(),
                    if applied { "" } else { "did not " }
                );
                match self.rt.block_on(self.writer.load()) {
                    Ok(s) => *self.store = s,
                    Err(e) => stop(self.shared.p, &format!("cannot reload the tables: {e}")),
                }
                applied
            }
            Commit::Fenced => stop(self.shared.p, "fenced: a newer incarnation has started"),
            Commit::Unknown(why) => stop(self.shared.p, &format!("commit outcome unknown: {why}")),
        };
        if !applied {
            return false;
        }
        self.status.commits += 1;
        if !rows.is_empty() {
            self.shared.relay.notify_one();
        }
        if !outbox && !tx.events.is_empty() {
            let mut memory = self.shared.memory.lock().expect("the producer is not poisoned");
            for e in &tx.events {
                let n = self.shared.next_memory_id.fetch_add(1, Ordering::Relaxed);
                let (name, incarnation) = (self.shared.p.name(), self.shared.incarnation);
                memory.push(Pending {
                    event_id: format!("{name}-i{incarnation}-m{n}"),
                    subject: d.subject(e.topic(), d.partition(e.key())),
                    payload: serde_json::to_vec(e).expect("events serialise").into(),
                    traceparent: self.ctx.header(),
                });
            }
        }
        true
    }

    fn send(&mut self, to: Peer, msg: Msg) {
        self.send_after(to, msg, 0)
    }

    fn send_after(&mut self, to: Peer, msg: Msg, delay_us: u64) {
        // An answer to the caller rides on its call's response; a late one
        // only from the external payment gateway (a slow answer). A later
        // message of our own (a "pay again" after the user's think time)
        // is a call of its own.
        let on_response = delay_us == 0 || self.shared.p == Process::Service(Service::Pg);
        if self.reply_to == Some(to) && on_response {
            self.replies.push((msg, delay_us));
            return;
        }
        let (shared, ctx) = (self.shared.clone(), self.ctx);
        self.rt.spawn(async move {
            if delay_us > 0 {
                tokio::time::sleep(Duration::from_micros(delay_us)).await;
            }
            deliver(&shared, to, msg, ctx).await;
        });
    }

    fn set_timer(&mut self, delay_us: u64, tag: u64) {
        let (shared, ctx) = (self.shared.clone(), self.ctx);
        self.rt.spawn(async move {
            tokio::time::sleep(Duration::from_micros(delay_us)).await;
            let _ = shared.inputs.send(Input::Timer { tag, ctx });
        });
    }

    fn counters(&mut self) -> &mut Counters {
        &mut self.status.counters
    }

    fn gave_up(&mut self, order: OrderId, step: CmdKind) {
        self.status.gave_up.push((order, step));
    }

    fn trace(&mut self, line: impl FnOnce() -> String) {
        if tracing::enabled!(tracing::Level::DEBUG) {
            tracing::debug!("{}", line());
        }
    }
}

/// The process cannot go on (a newer incarnation holds the fence, or a
/// commit's outcome cannot be found out): it stops, as a crash would, and
/// its supervisor starts it again, from the tables.
fn stop(p: Process, why: &str) -> ! {
    eprintln!("{}: stopping: {why}", p.name());
    std::process::exit(3)
}

/// Send a message to the process that runs `to`; whatever it answers on
/// the response comes back in as messages from `to`.
pub async fn deliver(shared: &Arc<Shared>, to: Peer, msg: Msg, ctx: TraceCtx) {
    let base = shared.d.url(shared.d.process_of(to));
    let env = Envelope { from: shared.me(), msg };
    if let Ok(replies) = shared.http.send(&base, &env, ctx, CALL_TIMEOUT).await {
        for msg in replies {
            let _ = shared.inputs.send(Input::Message { from: to, msg, ctx, replies: None });
        }
    }
    // A call that failed is a lost message: the sender's timers deal with
    // it, as they would with silence.
}

/// A short name of a message for spans, and the order it is about.
pub fn describe(msg: &Msg) -> (String, Option<u32>) {
    let name = |s: &str| s.split([' ', '{', '(']).next().unwrap_or("").to_string();
    match msg {
        Msg::Event(e) => (format!("{:?}", e.topic()), Some(e.order().0)),
        Msg::Command { order, cmd } => {
            (format!("Command {}", name(&format!("{cmd:?}"))), Some(order.0))
        }
        Msg::Done { order, cmd, result } => {
            (format!("Done {cmd:?} {}", name(&format!("{result:?}"))), Some(order.0))
        }
        Msg::Charge { order, .. } => ("Charge".to_string(), Some(order.0)),
        Msg::Refund { order, .. } => ("Refund".to_string(), Some(order.0)),
        Msg::Status { order, .. } => ("Status".to_string(), Some(order.0)),
        Msg::PgReply { order, op, result, .. } => {
            (format!("PgReply {op:?} {result:?}"), Some(order.0))
        }
        Msg::Placed { response, .. } => ("Placed".to_string(), answer_order(response)),
        Msg::Place { .. } => ("Place".to_string(), None),
        Msg::Submit { .. } => ("Submit".to_string(), None),
        Msg::Answer { response, .. } => ("Answer".to_string(), answer_order(response)),
        Msg::Malformed { .. } => ("Malformed".to_string(), None),
    }
}

fn answer_order(r: &domain::Response) -> Option<u32> {
    match r {
        domain::Response::Accepted { order } | domain::Response::Refused { order, .. } => {
            Some(order.0)
        }
        _ => None,
    }
}

/// Run the node thread until every sender of inputs is gone.
pub fn run(
    mut state: State,
    mut inputs: mpsc::UnboundedReceiver<Input>,
    shared: Arc<Shared>,
    rt: Handle,
) {
    let settings = shared.d.settings;
    while let Some(input) = inputs.blocking_recv() {
        let State { store, writer, vol, tx, status } = &mut state;
        status.dead_letters = shared.dead_letters.load(Ordering::Relaxed);
        let mut host = LiveHost {
            shared: &shared,
            rt: &rt,
            store,
            writer,
            status,
            reply_to: None,
            replies: Vec::new(),
            ctx: TraceCtx::root(),
        };
        let mut node = Node { settings: &settings, vol, tx };
        match input {
            Input::Boot => {
                let span = tracing::info_span!("boot");
                let _e = span.enter();
                node.boot(&mut host);
            }
            Input::Message { from, msg, ctx, replies } => {
                let (what, order) = describe(&msg);
                host.ctx = ctx.child();
                let span = span(&what, order, ctx, host.ctx);
                let _e = span.enter();
                host.reply_to = replies.as_ref().map(|_| from);
                node.on_message(&mut host, from, msg);
                if let Some(r) = replies {
                    let _ = r.send(std::mem::take(&mut host.replies));
                }
            }
            Input::Record { msg, at, ctx, done } => {
                let (what, order) = describe(&msg);
                host.ctx = ctx.child();
                let span = span(&what, order, ctx, host.ctx);
                let _e = span.enter();
                let _ = done.send(node.on_record(&mut host, &msg, at));
            }
            Input::Timer { tag, ctx } => {
                host.ctx = ctx.child();
                let span = span("timer", None, ctx, host.ctx);
                let _e = span.enter();
                node.on_timer(&mut host, tag);
            }
            Input::Status(done) => {
                let mut s = host.status.clone();
                s.injected = shared.injected.lock().expect("not poisoned").clone();
                s.memory_backlog =
                    shared.memory.lock().expect("the producer is not poisoned").len() as u64;
                let _ = done.send(s);
            }
            Input::Order(order, done) => {
                let _ = done.send(host.store.order().and_then(|t| t.orders.get(&order)).copied());
            }
            Input::Heal => shared.healed.store(true, Ordering::Relaxed),
        }
    }
}

fn span(what: &str, order: Option<u32>, parent: TraceCtx, me: TraceCtx) -> tracing::Span {
    let span = tracing::info_span!(
        "handle",
        what = what,
        order = tracing::field::Empty,
        trace = parent.trace_hex().as_str(),
        span = format!("{:016x}", me.span_id).as_str(),
        parent = format!("{:016x}", parent.span_id).as_str(),
    );
    if let Some(o) = order {
        span.record("order", o as u64);
    }
    span
}
