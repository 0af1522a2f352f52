//! Port contract tests: one suite of expectations about the ports the
//! domain runs on (a transaction with its outbox and inbox, a broker, a key
//! cache), written once and run against the simulation's adapters and, with
//! `--features live-tests`, the live ones (PostgreSQL, NATS JetStream,
//! Redis). A live world that cannot reach its server fails the test.

use domain::gateway::{self, GatewayPort, KeyEntry};
use domain::{Event, EventId, Msg, OrderId, ProductId, Request, RequestKey, Response, Safety};
use domain::{Store, UserId, Write};

mod worlds;
use worlds::{BrokerWorld, CacheWorld, TxWorld};

fn deduct(order: u32, qty: u32) -> Write {
    Write::Product(domain::product::ProductWrite::Deduct {
        order: OrderId(order),
        product: ProductId(0),
        qty,
    })
}

fn event(order: u32) -> Event {
    let req = Request { user: UserId(0), product: ProductId(0), qty: 1, coupon: None, points: 0 };
    Event::StockDeducted { order: OrderId(order), key: None, req, price: 10 }
}

fn stock(s: &Store) -> u64 {
    s.product().expect("product tables").products[0].stock
}

// ---- the transaction port ----

/// Writes, outbox rows and the inbox row of one commit are applied together.
pub fn a_commit_applies_writes_outbox_and_inbox_together(w: &mut impl TxWorld) {
    let before = stock(&w.reload());
    let id = EventId(77);
    assert!(w.commit(&[deduct(0, 2), Write::Inbox(id)], &[event(0)]));
    let after = w.reload();
    assert_eq!(stock(&after), before - 2);
    assert!(after.product().expect("product").reservations.contains_key(&OrderId(0)));
    assert!(after.inbox.contains(&id));
    assert_eq!(w.unpublished(), vec![event(0)]);
}

/// A commit that fails applies none of its writes, outbox rows or inbox row.
pub fn a_failed_commit_applies_nothing(w: &mut impl TxWorld) {
    let before = w.reload();
    let unpublished = w.unpublished();
    w.break_next_commit();
    assert!(!w.commit(&[deduct(1, 1), Write::Inbox(EventId(78))], &[event(1)]));
    assert_eq!(w.reload(), before);
    assert_eq!(w.unpublished(), unpublished);
    // The next commit goes through again.
    assert!(w.commit(&[deduct(2, 1)], &[]));
    assert_eq!(stock(&w.reload()), stock(&before) - 1);
}

/// What was committed is what a restarted service reads back, write for
/// write as the domain applies it to its own tables.
pub fn tables_read_back_as_the_domain_applies_the_writes(w: &mut impl TxWorld, txs: &[Vec<Write>]) {
    let mut mirror = w.reload();
    for tx in txs {
        assert!(w.commit(tx, &[]), "{tx:?}");
        for write in tx {
            mirror.apply(write);
        }
    }
    assert_eq!(w.reload(), mirror);
}

#[test]
fn sim_commit_is_atomic() {
    a_commit_applies_writes_outbox_and_inbox_together(&mut worlds::SimTx::new());
    a_failed_commit_applies_nothing(&mut worlds::SimTx::new());
}

#[test]
fn sim_tables_read_back() {
    for seed in 0..20 {
        let mut w = worlds::SimTx::monolith();
        let txs = worlds::writes::transactions(seed, 60, &w.reload());
        tables_read_back_as_the_domain_applies_the_writes(&mut w, &txs);
    }
}

// ---- the broker ----

/// Records of one key come in the order they were published.
pub fn records_of_a_key_come_in_order(b: &mut impl BrokerWorld) {
    for m in 0..5 {
        b.publish(7, m);
    }
    let mut got = Vec::new();
    while got.len() < 5 {
        let batch = b.fetch();
        assert!(!batch.is_empty(), "only {got:?} of 5 records came");
        got.extend(batch);
        b.ack();
    }
    assert_eq!(got, (0..5).collect::<Vec<_>>());
}

/// A record not acknowledged comes again once its consumer is gone; one
/// acknowledged does not.
pub fn an_unacknowledged_record_comes_again(b: &mut impl BrokerWorld) {
    b.publish(3, 10);
    assert_eq!(b.fetch(), vec![10]);
    b.ack();
    b.publish(3, 11);
    assert_eq!(b.fetch(), vec![11]);
    b.lose_session();
    assert_eq!(b.fetch(), vec![11], "the unacknowledged record comes again, and only it");
    b.ack();
    b.lose_session();
    assert_eq!(b.fetch(), Vec::<u64>::new(), "nothing acknowledged comes again");
}

/// A record that fails every attempt goes to the dead-letter topic after
/// the configured attempts, and the partition moves on.
pub fn a_failing_record_is_dead_lettered_after_its_attempts(b: &mut impl BrokerWorld) {
    let attempts = b.fail_until_dead_lettered(21, 3);
    assert_eq!(attempts, 3, "dead-lettered after exactly its attempts");
    assert_eq!(b.dead_letters(), vec![21]);
}

#[test]
fn sim_broker_keeps_order_and_redelivers() {
    records_of_a_key_come_in_order(&mut worlds::SimBroker::new());
    an_unacknowledged_record_comes_again(&mut worlds::SimBroker::new());
}

#[test]
fn sim_broker_dead_letters() {
    a_failing_record_is_dead_lettered_after_its_attempts(&mut worlds::SimBroker::new());
}

// ---- the key cache and the gateway over it ----

/// A key is claimed once; its entry lives as long as its TTL; a flush
/// forgets it.
pub fn a_key_is_claimed_once_and_expires(c: &mut impl CacheWorld) {
    let k = RequestKey(0xabc);
    let mark = KeyEntry::InProgress { hash: 1 };
    assert!(c.set_nx(k, mark, 300));
    assert!(!c.set_nx(k, KeyEntry::InProgress { hash: 2 }, 300), "a claimed key is taken");
    assert_eq!(c.get(k), Some(mark));
    c.wait_ms(450);
    assert_eq!(c.get(k), None, "the mark is gone after its TTL");
    assert!(c.set_nx(k, mark, 5_000));
    c.flush();
    assert_eq!(c.get(k), None, "a flush forgets every key");
}

/// The gateway, over the cache: a retry with the same payload gets the
/// stored answer; the key with another payload is refused.
pub fn the_gateway_answers_a_retry_and_refuses_another_payload(c: &mut impl CacheWorld) {
    let req = Request { user: UserId(1), product: ProductId(2), qty: 1, coupon: None, points: 0 };
    let other = Request { qty: 2, ..req };
    let k = RequestKey(0xfeed);
    let safety = Safety::ALL_ON;
    let mut g = worlds::Gateway { cache: c, forwarded: Vec::new(), answers: Vec::new() };
    gateway::on_submit(1, k, req, &safety, &mut g);
    assert_eq!(g.forwarded.len(), 1, "a new key goes on to the entry service");
    gateway::on_submit(2, k, req, &safety, &mut g);
    assert_eq!(g.answers, vec![(2, Response::InProgress)], "a retry while it runs waits");
    let answer = Response::Accepted { order: OrderId(5) };
    gateway::on_placed(1, Some(k), req.hash(), answer, &mut g);
    gateway::on_submit(3, k, req, &safety, &mut g);
    gateway::on_submit(4, k, other, &safety, &mut g);
    let later: Vec<_> = g.answers[2..].to_vec();
    assert_eq!(later, vec![(3, answer), (4, Response::KeyConflict)]);
    assert_eq!(g.forwarded.len(), 1, "nothing more reached the entry service");
}

#[test]
fn sim_cache_claims_expires_and_refuses() {
    a_key_is_claimed_once_and_expires(&mut worlds::SimCache::new());
    the_gateway_answers_a_retry_and_refuses_another_payload(&mut worlds::SimCache::new());
}

/// The gateway port over a cache world, recording what the gateway sends.
impl<C: CacheWorld> GatewayPort for worlds::Gateway<'_, C> {
    fn cache_get(&mut self, key: RequestKey) -> Option<KeyEntry> {
        self.cache.get(key)
    }
    fn cache_set_nx(&mut self, key: RequestKey, entry: KeyEntry) -> bool {
        self.cache.set_nx(key, entry, 500)
    }
    fn cache_set(&mut self, key: RequestKey, entry: KeyEntry) {
        self.cache.set(key, entry, 60_000)
    }
    fn forward(&mut self, msg: Msg) {
        self.forwarded.push(msg);
    }
    fn answer(&mut self, msg: Msg) {
        if let Msg::Answer { id, response } = msg {
            self.answers.push((id, response));
        }
    }
}

#[cfg(feature = "live-tests")]
mod live {
    use super::*;

    #[test]
    fn live_commit_is_atomic() {
        a_commit_applies_writes_outbox_and_inbox_together(&mut worlds::LiveTx::product());
        a_failed_commit_applies_nothing(&mut worlds::LiveTx::product());
    }

    /// A session that ended while idle (its backend terminated between two
    /// commits) costs the next commit nothing: the writer opens a new one.
    #[test]
    fn live_commit_survives_an_idle_session_ended() {
        let mut w = worlds::LiveTx::product();
        let before = stock(&w.reload());
        w.end_session_now();
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(w.commit(&[deduct(3, 1)], &[]));
        assert_eq!(stock(&w.reload()), before - 1);
    }

    #[test]
    fn live_tables_read_back() {
        for seed in 0..6 {
            let mut w = worlds::LiveTx::monolith();
            let txs = worlds::writes::transactions(seed, 60, &w.reload());
            tables_read_back_as_the_domain_applies_the_writes(&mut w, &txs);
        }
    }

    #[test]
    fn live_broker_keeps_order_and_redelivers() {
        records_of_a_key_come_in_order(&mut worlds::LiveBroker::new());
        an_unacknowledged_record_comes_again(&mut worlds::LiveBroker::new());
    }

    #[test]
    fn live_broker_dead_letters() {
        a_failing_record_is_dead_lettered_after_its_attempts(&mut worlds::LiveBroker::new());
    }

    #[test]
    fn live_cache_claims_expires_and_refuses() {
        a_key_is_claimed_once_and_expires(&mut worlds::LiveCache::new());
        the_gateway_answers_a_retry_and_refuses_another_payload(&mut worlds::LiveCache::new());
    }
}
