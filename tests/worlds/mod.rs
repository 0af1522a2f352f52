//! The worlds the port contract tests run in: each port as a small trait,
//! implemented over the simulation's components and over the live ones.

#![allow(dead_code)]

pub mod writes;

use domain::gateway::KeyEntry;
use domain::monolith::MonolithTables;
use domain::order::{Coupon, CouponState, OrderTables};
use domain::product::{Product, ProductTables};
use domain::user::UserTables;
use domain::{Event, Msg, RequestKey, Response, Store, Tables, UserId, Write};

/// A service's database, with its outbox.
pub trait TxWorld {
    /// Commit writes and events in one transaction; true if it applied.
    fn commit(&mut self, writes: &[Write], events: &[Event]) -> bool;
    /// Make the next commit fail, in this world's own way.
    fn break_next_commit(&mut self);
    /// The tables as a restarted service reads them back.
    fn reload(&mut self) -> Store;
    /// Events committed and not yet published, oldest first.
    fn unpublished(&mut self) -> Vec<Event>;
}

/// A topic's partition, as one consumer sees it.
pub trait BrokerWorld {
    /// Publish, and wait for the broker to take it.
    fn publish(&mut self, key: u64, m: u64);
    /// The next batch (empty when there is nothing to read).
    fn fetch(&mut self) -> Vec<u64>;
    /// Acknowledge everything fetched so far.
    fn ack(&mut self);
    /// The consumer goes away without acknowledging what it fetched since
    /// its last acknowledgement (and the broker notices).
    fn lose_session(&mut self);
    /// Publish `m`, have its consumer fail it every time, and return how
    /// many attempts were made before it was dead-lettered.
    fn fail_until_dead_lettered(&mut self, m: u64, attempts: u32) -> u32;
    /// What the consumer's dead-letter topic holds.
    fn dead_letters(&mut self) -> Vec<u64>;
}

/// The gateway's key cache.
pub trait CacheWorld {
    fn set_nx(&mut self, key: RequestKey, e: KeyEntry, ttl_ms: u64) -> bool;
    fn set(&mut self, key: RequestKey, e: KeyEntry, ttl_ms: u64);
    fn get(&mut self, key: RequestKey) -> Option<KeyEntry>;
    /// Let `ms` pass.
    fn wait_ms(&mut self, ms: u64);
    /// The cache restarts and forgets every key.
    fn flush(&mut self);
}

/// The gateway's port over a cache world, recording what it sends.
pub struct Gateway<'a, C> {
    pub cache: &'a mut C,
    pub forwarded: Vec<Msg>,
    pub answers: Vec<(u32, Response)>,
}

/// One product with 100 in stock.
pub fn product_store() -> Store {
    Store::new(Tables::Product(ProductTables::new(vec![Product { price: 10, stock: 100 }])))
}

/// The monolith's tables: three products, five users, four coupons.
pub fn monolith_store() -> Store {
    let products = (0..3).map(|i| Product { price: 10 + i, stock: 50 }).collect();
    let coupons = (0..4)
        .map(|i| Coupon { user: UserId(i), discount: 5, state: CouponState::Issued, order: None })
        .collect();
    let m = MonolithTables {
        product: ProductTables::new(products),
        order: OrderTables { coupons, ..Default::default() },
        user: UserTables { balances: vec![500; 5], ..Default::default() },
        ..Default::default()
    };
    Store::new(Tables::Monolith(Box::new(m)))
}

/// The workload whose seeded rows are those stores' (for the live world).
pub fn workload_of(s: &Store) -> domain::Workload {
    domain::Workload {
        balances: s.user().map(|u| u.balances.clone()).unwrap_or_default(),
        products: s.product().map(|p| p.products.clone()).unwrap_or_default(),
        coupons: s
            .order()
            .map(|o| {
                o.coupons
                    .iter()
                    .map(|c| domain::workload::IssuedCoupon { user: c.user, discount: c.discount })
                    .collect()
            })
            .unwrap_or_default(),
        arrivals: Vec::new(),
    }
}

// ---- the simulation's worlds ----

pub struct SimTx {
    db: sim::Database<Store, Write, Msg>,
    broken: bool,
}

impl SimTx {
    pub fn new() -> SimTx {
        SimTx { db: sim::Database::new(product_store(), Store::apply), broken: false }
    }
    pub fn monolith() -> SimTx {
        SimTx { db: sim::Database::new(monolith_store(), Store::apply), broken: false }
    }
}

impl TxWorld for SimTx {
    fn commit(&mut self, writes: &[Write], events: &[Event]) -> bool {
        // The kernel decides a failed commit before it touches the database.
        if std::mem::take(&mut self.broken) {
            return false;
        }
        let rows = events.iter().map(|e| (sim::TopicId(e.topic() as u16), e.key(), Msg::Event(*e)));
        self.db.commit(writes, rows);
        true
    }
    fn break_next_commit(&mut self) {
        self.broken = true;
    }
    fn reload(&mut self) -> Store {
        self.db.crash();
        self.db.state().clone()
    }
    fn unpublished(&mut self) -> Vec<Event> {
        self.db
            .outbox()
            .map(|r| match r.msg {
                Msg::Event(e) => e,
                ref other => panic!("an outbox holds events, not {other:?}"),
            })
            .collect()
    }
}

pub struct SimBroker {
    broker: sim::broker::Broker<u64>,
    topic: sim::TopicId,
    streams: Vec<sim::StreamId>,
    /// The stream read, its generation, and the offset after the last
    /// record fetched.
    fetched: Option<(sim::StreamId, u32, u64)>,
    dead: Vec<u64>,
}

impl SimBroker {
    pub fn new() -> SimBroker {
        let options =
            sim::broker::BrokerOptions { partitions: 4, max_poll_records: 8, ..Default::default() };
        let mut broker = sim::broker::Broker::new(options);
        let topic = broker.create_topic("t");
        let streams = broker.subscribe(sim::NodeId(1), topic);
        SimBroker { broker, topic, streams, fetched: None, dead: Vec::new() }
    }

    fn stream_of(&self, key: u64) -> sim::StreamId {
        let p = sim::broker::partition_of(key, 4);
        *self
            .streams
            .iter()
            .find(|s| self.broker.stream(**s).partition == p)
            .expect("a stream per partition")
    }
}

impl BrokerWorld for SimBroker {
    fn publish(&mut self, key: u64, m: u64) {
        // Each message is published once here: it is its own event id.
        self.broker.append(self.topic, key, m, m);
        let s = self.stream_of(key);
        let g = self.broker.stream(s).generation;
        self.fetched = Some(self.fetched.map_or((s, g, 0), |f| f));
    }
    fn fetch(&mut self) -> Vec<u64> {
        let Some((s, _, _)) = self.fetched else { return Vec::new() };
        match self.broker.next_batch(s, 0) {
            Some((b, _)) => {
                self.fetched = Some((s, b.generation, b.first_offset + b.records.len() as u64));
                b.records.into_iter().map(|(_, m)| m).collect()
            }
            None => Vec::new(),
        }
    }
    fn ack(&mut self) {
        if let Some((s, g, next)) = self.fetched {
            assert!(self.broker.commit(s, g, next), "a commit of the current session is taken");
        }
    }
    fn lose_session(&mut self) {
        if let Some((s, _, _)) = self.fetched {
            self.broker.reset(s);
        }
    }
    fn fail_until_dead_lettered(&mut self, m: u64, attempts: u32) -> u32 {
        let (tried, dead) = dead_letter_probe(m, attempts);
        self.dead = dead;
        tried
    }
    fn dead_letters(&mut self) -> Vec<u64> {
        self.dead.clone()
    }
}

/// A kernel run in which a consumer fails one record every time: how many
/// attempts it made, and what its dead-letter topic then held.
fn dead_letter_probe(m: u64, attempts: u32) -> (u32, Vec<u64>) {
    use sim::{App, Cx, Handled, NodeId, Record, View};
    struct Probe {
        producer: NodeId,
        topic: sim::TopicId,
        m: u64,
        tried: u32,
        dead: Vec<u64>,
    }
    impl App for Probe {
        type Msg = u64;
        type State = ();
        type Write = ();
        type Volatile = ();
        type Violation = String;
        type Cached = ();
        fn boot(&mut self, cx: &mut Cx<'_, Self>) {
            if cx.node() == self.producer {
                let _ = cx.commit(&[], [(self.topic, 1, self.m)]);
            }
        }
        fn on_message(&mut self, _: &mut (), _: &mut Cx<'_, Self>, _: NodeId, _: u64) {}
        fn on_record(&mut self, _: &mut (), _: &mut Cx<'_, Self>, r: Record<'_, u64>) -> Handled {
            if r.dead_letter {
                self.dead.push(*r.msg);
                return Handled::Done;
            }
            self.tried += 1;
            Handled::Retry
        }
        fn on_timer(&mut self, _: &mut (), _: &mut Cx<'_, Self>, _: u64) {}
        fn after_step(&mut self, _: &View<'_, Self>) -> Option<String> {
            None
        }
        fn is_settled(&self) -> bool {
            !self.dead.is_empty()
        }
        fn at_end(&mut self, _: &View<'_, Self>, _: bool) -> Option<String> {
            None
        }
    }
    let options = sim::KernelOptions { max_attempts: Some(attempts), ..Default::default() };
    let probe =
        Probe { producer: NodeId(0), topic: sim::TopicId(0), m, tried: 0, dead: Vec::new() };
    let mut s = sim::Sim::new(probe, 1, options);
    let producer =
        s.add_node("producer", sim::Role::Service, Some(sim::Database::new((), |_, _| {})));
    let consumer = s.add_node("consumer", sim::Role::Service, None);
    let broker = s.add_node("broker", sim::Role::Broker, None);
    let _ = broker;
    let topic = s.create_topic("t");
    s.subscribe(consumer, topic);
    s.app.producer = producer;
    s.app.topic = topic;
    s.start();
    s.run(sim::Phases { fault_phase_us: 0, heal_budget_us: 10_000_000, step_budget: 100_000 });
    (s.app.tried, s.app.dead.clone())
}

pub struct SimCache {
    cache: sim::cache::Cache<KeyEntry>,
    now_us: u64,
}

impl SimCache {
    pub fn new() -> SimCache {
        SimCache { cache: sim::cache::Cache::default(), now_us: 0 }
    }
}

impl CacheWorld for SimCache {
    fn set_nx(&mut self, key: RequestKey, e: KeyEntry, ttl_ms: u64) -> bool {
        self.cache.set_nx(key.0, e, ttl_ms * 1000, self.now_us)
    }
    fn set(&mut self, key: RequestKey, e: KeyEntry, ttl_ms: u64) {
        self.cache.set(key.0, e, ttl_ms * 1000, self.now_us)
    }
    fn get(&mut self, key: RequestKey) -> Option<KeyEntry> {
        self.cache.get(key.0, self.now_us).copied()
    }
    fn wait_ms(&mut self, ms: u64) {
        self.now_us += ms * 1000;
    }
    fn flush(&mut self) {
        self.cache.restart();
    }
}

#[cfg(feature = "live-tests")]
mod live_worlds;
#[cfg(feature = "live-tests")]
pub use live_worlds::*;
