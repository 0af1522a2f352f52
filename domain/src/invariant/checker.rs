//! The incremental invariant checker.
//!
//! It learns what happened only from committed writes ([`Checker::observe`])
//! and compares that ledger with the tables as they are ([`StateView`]): a
//! table changed by anything but an attributed write, or an effect applied
//! twice, shows up as a difference. Each step checks only what it touched.

use crate::entry::EntryWrite;
use crate::ids::{fixed_map, FixedHashMap, FixedHashSet}; // deterministic: fixed hasher
use crate::ids::{CouponId, OrderId, ProductId, RequestKey, UserId};
use crate::invariant::ledger::Ledger;
use crate::invariant::{Entity, Invariant, Violation};
use crate::message::{Refusal, Request, Response};
use crate::order::{OrderState, OrderWrite};
use crate::payment::{PaymentState, PaymentWrite};
use crate::pg::PgWrite;
use crate::platform::PlatformWrite;
use crate::product::ProductWrite;
use crate::tables::{Service, Store, Write};
use crate::user::UserWrite;
use crate::workload::Workload;

/// Read access to the services' committed tables.
pub trait StateView {
    fn store(&self, service: Service) -> &Store;
}

/// The infrastructure's part of the end state, and the client's answers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndState {
    pub settled: bool,
    pub outbox_backlog: usize,
    pub memory_backlog: usize,
    pub broker_lag: u64,
    /// The final answer to each submission, by submission id.
    pub answers: Vec<Option<Response>>,
    /// How long the run went on after the faults healed (`None`: it
    /// stopped before they did).
    pub since_heal_us: Option<u64>,
}

impl EndState {
    /// How long after healing the run ended, for a liveness violation: what
    /// was still pending had that long to finish.
    fn after_heal(&self) -> String {
        match self.since_heal_us {
            Some(us) => format!(" {:.1} s after the faults healed", us as f64 / 1e6),
            None => String::new(),
        }
    }
}

pub struct Checker {
    workload: Workload,
    /// Each request the workload sent, by its hash, with the keys it was
    /// sent under and the orders made for it: one table, so that a new
    /// order costs one probe of it (at 20,000 orders a seed it outgrows the
    /// cache, and each probe is a miss).
    by_hash: FixedHashMap<u64, Sent>, // deterministic: fixed hasher
    /// The strategy answers a request only once its order is decided, so
    /// "accepted" must mean confirmed (every strategy but the choreography).
    answers_are_outcomes: bool,
    ledgers: Vec<Ledger>,
    held_stock: Vec<i64>,
    held_points: Vec<i64>,
    /// The live order using each coupon.
    coupon_user: Vec<Option<OrderId>>,
    /// Each idempotency key sent, by a dense index into `keys`: a new order
    /// probes this table once, and the end-of-run checks not at all.
    key_index: FixedHashMap<RequestKey, u32>, // deterministic: fixed hasher
    keys: Vec<KeySent>,
    /// The index in `keys` of each arrival's key.
    arrival_keys: Vec<u32>,
    /// Orders a key made after its first (each one a violation): kept
    /// apart so that the common case allocates nothing per order.
    key_repeats: Vec<(RequestKey, OrderId)>,
    dirty_orders: Vec<OrderId>,
    dirty_products: Vec<ProductId>,
    dirty_users: Vec<UserId>,
    /// A violation seen while observing, reported after the step.
    pending: Option<Violation>,
    open_orders: usize,
    open_payments: usize,
    /// Coupons issued in apology for a failure.
    pub apologies: u64,
}

/// A request the workload sent: the request, how many distinct keys it was
/// sent under (an order per key is allowed), and the orders made for it.
#[derive(Clone, Copy)]
struct Sent {
    req: Request,
    keys: u32,
    created: u32,
}

/// An idempotency key: when a client first sent it (`None`: no client did),
/// and the first order it made.
#[derive(Clone, Copy)]
struct KeySent {
    arrived_us: Option<u64>,
    order: Option<OrderId>,
}

fn violation(invariant: Invariant, entities: Vec<Entity>, detail: String) -> Violation {
    Violation { invariant, entities, detail }
}

impl Checker {
    pub fn new(w: &Workload, strategy: crate::strategy::Strategy) -> Checker {
        // Built for every seed: hash tables (none is read in order), each
        // request hashed once.
        let n = w.arrivals.len();
        let hashed: Vec<(u64, &Request, RequestKey)> =
            w.arrivals.iter().map(|a| (a.req.hash(), &a.req, a.key)).collect();
        let mut by_hash = fixed_map(n); // deterministic: fixed hasher
        let mut seen = FixedHashSet::default(); // deterministic: fixed hasher
        seen.reserve(n);
        for &(hash, req, key) in &hashed {
            let sent = by_hash.entry(hash).or_insert(Sent { req: *req, keys: 0, created: 0 });
            // As before the tables were merged: the last request of a hash
            // is the one kept (they are equal but for a hash collision).
            sent.req = *req;
            if seen.insert((key, hash)) {
                sent.keys += 1;
            }
        }
        let mut key_index = fixed_map(n); // deterministic: fixed hasher
        let mut keys: Vec<KeySent> = Vec::with_capacity(n);
        let arrival_keys = (w.arrivals.iter())
            .map(|a| {
                let i = *key_index.entry(a.key).or_insert_with(|| {
                    keys.push(KeySent { arrived_us: Some(a.at_us), order: None });
                    keys.len() as u32 - 1
                });
                let first = &mut keys[i as usize].arrived_us;
                *first = (*first).min(Some(a.at_us));
                i
            })
            .collect();
        Checker {
            by_hash,
            key_index,
            keys,
            arrival_keys,
            answers_are_outcomes: strategy.answers_when_decided(),
            ledgers: Vec::with_capacity(w.arrivals.len()),
            held_stock: vec![0; w.products.len()],
            held_points: vec![0; w.balances.len()],
            coupon_user: vec![None; w.coupons.len()],
            key_repeats: Vec::new(),
            dirty_orders: Vec::new(),
            dirty_products: Vec::new(),
            dirty_users: Vec::new(),
            pending: None,
            open_orders: 0,
            open_payments: 0,
            apologies: 0,
            workload: w.clone(),
        }
    }

    /// Every order terminal and no payment pending.
    pub fn sagas_done(&self) -> bool {
        self.open_orders == 0 && self.open_payments == 0
    }

    pub fn orders(&self) -> usize {
        self.ledgers.len()
    }

    /// What committed writes did to one order so far.
    pub fn ledger_of(&self, order: OrderId) -> Option<&Ledger> {
        self.ledgers.get(order.index())
    }

    /// The orders the current step's writes touched (with repeats).
    pub fn touched_orders(&self) -> &[OrderId] {
        &self.dirty_orders
    }

    fn flag(&mut self, v: Violation) {
        self.pending.get_or_insert(v);
    }

    fn ledger(&mut self, order: OrderId) -> &mut Ledger {
        self.dirty_orders.push(order);
        &mut self.ledgers[order.index()]
    }

    /// Learn one committed write.
    pub fn observe(&mut self, w: &Write) {
        match *w {
            Write::Product(p) => self.product(p),
            Write::Order(o) => self.order(o),
            // A payment voided before its charge was asked for: a tombstone
            // that owes nothing, so that the late charge finds it void.
            Write::Payment(PaymentWrite::Create { order, row })
                if row.state == PaymentState::Declined && (row.points, row.card) == (0, 0) =>
            {
                self.payment_state(order, row.state)
            }
            Write::Payment(PaymentWrite::Create { order, row }) => {
                self.ledger(order).due = Some((row.points as i64, row.card as i64));
                let l = &self.ledgers[order.index()];
                let (_, points, card) = l.expected;
                if (row.points as i64, row.card as i64) != (points, card)
                    || Some(row.user) != l.user()
                {
                    let d = format!(
                        "payment of order {order} created for user {}: {} points, {} card; \
                         its request and the price list say user {}: {points} points, {card} card",
                        row.user,
                        row.points,
                        row.card,
                        l.user().map_or("?".to_string(), |u| u.to_string())
                    );
                    self.flag(violation(Invariant::MoneyConservation, l.entities(order), d));
                }
                self.payment_state(order, row.state)
            }
            Write::Payment(PaymentWrite::SetState { order, state }) => {
                self.ledger(order).declined |= state == PaymentState::Declined;
                self.payment_state(order, state)
            }
            Write::Payment(PaymentWrite::Retry { order, .. }) => {
                // "Pay again" reopens a declined payment, and nothing else:
                // from a declined payment it is a fresh start.
                if self.ledgers[order.index()].payment == Some(PaymentState::Declined) {
                    self.ledger(order).payment = None;
                }
                self.payment_state(order, PaymentState::Charging)
            }
            Write::User(UserWrite::Refund { user, order, amount }) => {
                self.same_user(order, user, "points refunded");
                self.ledger(order).points_held -= amount as i64;
                self.held_points[user.index()] -= amount as i64;
                self.dirty_users.push(user);
            }
            Write::User(UserWrite::Deduct { user, order, amount }) => {
                self.same_user(order, user, "points deducted");
                let l = self.ledger(order);
                l.points_held += amount as i64;
                l.points_deducts += 1;
                l.points_ever |= amount > 0;
                self.held_points[user.index()] += amount as i64;
                self.dirty_users.push(user);
            }
            Write::Pg(PgWrite::Charge { order, amount, .. }) => {
                let l = self.ledger(order);
                l.card_held += amount as i64;
                l.charges += 1;
            }
            Write::Pg(PgWrite::Refund { order, amount, .. }) => {
                self.ledger(order).card_held -= amount as i64
            }
            Write::Entry(EntryWrite::Begin { order, key, hash, product, qty }) => {
                self.new_order(order, key, hash, product, qty)
            }
            Write::Pg(PgWrite::Decline { order, .. }) => self.ledger(order).declined = true,
            Write::User(UserWrite::Short { order, .. }) => self.ledger(order).points_short = true,
            Write::Saga(_)
            | Write::Xa(_)
            | Write::Prepare { .. }
            | Write::Resolve { .. }
            | Write::Payment(PaymentWrite::RequestCancel { .. })
            | Write::Entry(EntryWrite::Answer { .. })
            | Write::Inbox(_)
            | Write::Park => {}
            Write::Platform(PlatformWrite::Record { .. }) => {}
            Write::Platform(PlatformWrite::Receive { order, .. }) => {
                self.ledger(order).platform += 1
            }
        }
    }

    fn product(&mut self, w: ProductWrite) {
        match w {
            ProductWrite::Deduct { order, product, qty }
            | ProductWrite::SetStock { order, product, qty, .. } => {
                self.stock(order, product, qty as i64)
            }
            ProductWrite::Restore { order, product, qty } => {
                self.stock(order, product, -(qty as i64))
            }
            ProductWrite::Reject { .. } | ProductWrite::Void { .. } => {}
            ProductWrite::Sale { order, product, .. } => {
                self.same_product(order, product, "sold");
                self.ledger(order).sales += 1;
                self.dirty_products.push(product);
            }
        }
    }

    /// A write that moves stock names the product its order's request named.
    fn same_product(&mut self, order: OrderId, product: ProductId, what: &str) {
        let Some(l) = self.ledgers.get(order.index()) else { return };
        if let Some(r) = l.req.filter(|r| r.product != product) {
            let d = format!(
                "order {order} {what} stock of product {product}; its request named product {}",
                r.product
            );
            let mut ents = l.entities(order);
            ents.push(Entity::Product(product));
            self.flag(violation(Invariant::StockConservation, ents, d));
        }
    }

    /// A write that moves points names the user its order's request named.
    fn same_user(&mut self, order: OrderId, user: UserId, what: &str) {
        let Some(l) = self.ledgers.get(order.index()) else { return };
        if let Some(r) = l.req.filter(|r| r.user != user) {
            let d = format!(
                "order {order}: {what} for user {user}; its request came from user {}",
                r.user
            );
            let mut ents = l.entities(order);
            ents.push(Entity::User(user));
            self.flag(violation(Invariant::MoneyConservation, ents, d));
        }
    }

    fn new_order(
        &mut self,
        order: OrderId,
        key: Option<RequestKey>,
        hash: u64,
        product: ProductId,
        qty: u32,
    ) {
        if order.index() < self.ledgers.len() {
            let d = format!("order {order} was created twice");
            self.flag(violation(Invariant::LegalTransitions, vec![Entity::Order(order)], d));
            return;
        }
        let sent = self.by_hash.get_mut(&hash);
        let req = sent.as_ref().map(|s| s.req);
        // How many orders this request has made, this one included, and how
        // many keys it was sent under.
        let (created, allowed) = match sent {
            Some(s) => {
                s.created += 1;
                (s.created, s.keys)
            }
            None => (1, 0),
        };
        // The key's entry: when it first arrived, and the first order it made.
        let sent = key.map(|k| {
            let keys = &mut self.keys;
            let i = *self.key_index.entry(k).or_insert_with(|| {
                keys.push(KeySent { arrived_us: None, order: None });
                keys.len() as u32 - 1
            });
            let sent = &mut keys[i as usize];
            (k, *sent.order.get_or_insert(order), sent.arrived_us)
        });
        let arrived_us = sent.and_then(|(_, _, at)| at);
        let expected = req.map_or((0, 0, 0), |r| self.workload.amounts(&r));
        match req {
            None => {
                let d = format!("order {order} was made for a request no client sent");
                self.flag(violation(Invariant::IdempotentResponses, vec![Entity::Order(order)], d));
            }
            Some(r) if (r.product, r.qty) != (product, qty) => {
                let d = format!(
                    "order {order} was recorded for {qty} of product {product}; its request \
                     asked for {} of product {}",
                    r.qty, r.product
                );
                self.flag(violation(Invariant::StockConservation, vec![Entity::Order(order)], d));
            }
            Some(_) => {}
        }
        // The request, not what the entry service recorded, says what the
        // order is for.
        let (product, qty) = req.map_or((product, qty), |r| (r.product, r.qty));
        let qty = qty as i64;
        // Orders are numbered in sequence; a gap would be the entry
        // service's bug, and shows up as orders never saved.
        self.ledgers.resize(order.index(), Ledger::default());
        let l = Ledger { hash, req, expected, product, qty, arrived_us, ..Ledger::default() };
        self.ledgers.push(l);
        self.open_orders += 1;
        self.dirty_orders.push(order);
        if created > allowed {
            let d = format!(
                "order {order} is order number {created} for a request sent under {allowed} key(s)"
            );
            self.flag(violation(Invariant::IdempotentResponses, vec![Entity::Order(order)], d));
        }
        if let Some((k, first, _)) = sent {
            if first != order {
                self.key_repeats.push((k, order));
                let repeats = self.key_repeats.iter().filter(|(r, _)| *r == k).map(|(_, o)| *o);
                let orders: Vec<OrderId> = std::iter::once(first).chain(repeats).collect();
                let d = format!("key {:016x} made orders {:?}", k.0, orders);
                let ents = vec![Entity::Key(k), Entity::Order(order)];
                self.flag(violation(Invariant::IdempotentResponses, ents, d));
            }
        }
    }

    fn stock(&mut self, order: OrderId, product: ProductId, delta: i64) {
        let what = if delta > 0 { "took" } else { "gave back" };
        self.same_product(order, product, what);
        let l = self.ledger(order);
        l.stock_held += delta;
        l.held_stock_ever |= l.stock_held > 0;
        self.held_stock[product.index()] += delta;
        self.dirty_products.push(product);
    }

    fn order(&mut self, w: OrderWrite) {
        match w {
            OrderWrite::Create { order, row } => {
                self.ledger(order).row = Some(row);
                self.check_row(order, &row);
                self.order_state(order, row.state);
            }
            OrderWrite::SetState { order, state } => self.order_state(order, state),
            OrderWrite::UseCoupon { coupon, order } => self.use_coupon(coupon, order),
            OrderWrite::IssueCoupon { order, user, .. } => {
                self.coupon_user.push(None);
                self.apologies += 1;
                let l = self.ledger(order);
                l.apologies += 1;
                let (n, owner) = (l.apologies, l.user());
                if n > 1 || owner.is_some_and(|u| u != user) {
                    let d = format!(
                        "apology coupon number {n} for order {order}, issued to user {user}"
                    );
                    let ents = self.ledgers[order.index()].entities(order);
                    self.flag(violation(Invariant::CouponSingleUse, ents, d));
                }
            }
            OrderWrite::RestoreCoupon { coupon, order } => {
                let holder = self.coupon_user[coupon.index()];
                let state = self.ledgers.get(order.index()).and_then(|l| l.state);
                if holder != Some(order) || state == Some(OrderState::Confirmed) {
                    let d = format!(
                        "coupon {coupon} restored for order {order} ({}), while {}",
                        OrderState::name_of(state),
                        holder.map_or("no order holds it".to_string(), |o| format!(
                            "order {o} holds it"
                        ))
                    );
                    let ents = vec![Entity::Coupon(coupon), Entity::Order(order)];
                    self.flag(violation(Invariant::CouponSingleUse, ents, d));
                } else {
                    self.coupon_user[coupon.index()] = None;
                }
                self.ledger(order).coupon = None;
            }
        }
    }

    fn use_coupon(&mut self, coupon: CouponId, order: OrderId) {
        if let Some(other) = self.coupon_user[coupon.index()].filter(|o| *o != order) {
            let d = format!("coupon {coupon} applied to order {order} while order {other} uses it");
            let ents = vec![Entity::Coupon(coupon), Entity::Order(order), Entity::Order(other)];
            self.flag(violation(Invariant::CouponSingleUse, ents, d));
        }
        self.coupon_user[coupon.index()] = Some(order);
        let l = self.ledger(order);
        l.coupon = Some(coupon);
        l.coupon_ever = true;
    }

    /// An order row says what its request and the price list say.
    fn check_row(&mut self, order: OrderId, row: &crate::order::Order) {
        let l = &self.ledgers[order.index()];
        let Some(r) = l.req else { return };
        let (amount, points, card) = l.expected;
        let who = (row.user, row.product, row.qty);
        let d = if who != (r.user, r.product, r.qty) {
            format!(
                "order {order} saved for user {}, {} of product {}; its request: user {}, {} of \
                 product {}",
                row.user, row.qty, row.product, r.user, r.qty, r.product
            )
        } else if row.state != OrderState::Rejected
            && (row.amount as i64, row.points as i64, row.card as i64) != (amount, points, card)
        {
            format!(
                "order {order} saved at {} ({} points, {} card); the price list says {amount} \
                 ({points} points, {card} card)",
                row.amount, row.points, row.card
            )
        } else {
            return;
        };
        self.flag(violation(Invariant::MoneyConservation, l.entities(order), d));
    }

    fn order_state(&mut self, order: OrderId, to: OrderState) {
        let l = self.ledger(order);
        let from = l.state;
        l.state = Some(to);
        if !OrderState::may_become(from, to) {
            let d =
                format!("order {order} moved from {} to {}", OrderState::name_of(from), to.name());
            self.flag(violation(Invariant::LegalTransitions, vec![Entity::Order(order)], d));
        }
        let was_open = !from.is_some_and(|s| s.is_terminal());
        if was_open && to.is_terminal() {
            self.open_orders -= 1;
        } else if !was_open && !to.is_terminal() {
            self.open_orders += 1;
        }
    }

    fn payment_state(&mut self, order: OrderId, to: PaymentState) {
        let l = self.ledger(order);
        let from = l.payment;
        l.payment = Some(to);
        if !PaymentState::may_become(from, to) {
            let d = format!(
                "payment of order {order} moved from {} to {}",
                from.map_or("absent", PaymentState::name),
                to.name()
            );
            self.flag(violation(Invariant::LegalTransitions, vec![Entity::Order(order)], d));
        }
        let was_open = from.is_some_and(|s| !s.is_terminal());
        self.open_payments = self.open_payments + !to.is_terminal() as usize - was_open as usize;
    }

    /// Check what the last step touched. Clears the step's dirty sets.
    pub fn after_step(&mut self, view: &impl StateView) -> Option<Violation> {
        // Test before taking: `take` would move the whole (mostly empty)
        // violation out and back on every step.
        let found = match self.pending.is_some() {
            true => self.pending.take(),
            false => self.check_dirty(view),
        };
        self.skip_step();
        found
    }

    /// Whether the last step committed nothing the checker learnt of (most
    /// steps): then there is nothing to check or to measure.
    #[inline]
    pub fn step_is_quiet(&self) -> bool {
        self.pending.is_none()
            && self.dirty_orders.is_empty()
            && self.dirty_products.is_empty()
            && self.dirty_users.is_empty()
    }

    /// Forget what the last step touched without checking it (for measuring
    /// what the per-step checks cost; the ledger stays up to date).
    pub fn skip_step(&mut self) {
        self.pending = None;
        self.dirty_orders.clear();
        self.dirty_products.clear();
        self.dirty_users.clear();
    }

    fn check_dirty(&self, view: &impl StateView) -> Option<Violation> {
        for &o in &self.dirty_orders {
            if let Some(v) = self.check_order(o) {
                return Some(v);
            }
        }
        // Most steps touch no product and no user: no table to look up.
        let products = (!self.dirty_products.is_empty())
            .then(|| view.store(Service::Product).product())
            .flatten();
        if let Some(t) = products {
            for &p in &self.dirty_products {
                let available = t.products[p.index()].stock as i64;
                let (held, initial) =
                    (self.held_stock[p.index()], self.workload.products[p.index()].stock as i64);
                if held < 0 {
                    let d = format!("product {p}: orders hold {held} units");
                    return Some(violation(
                        Invariant::StockConservation,
                        vec![Entity::Product(p)],
                        d,
                    ));
                }
                if available + held != initial {
                    let d = format!(
                        "product {p}: {available} available + {held} held != {initial} initial"
                    );
                    return Some(violation(
                        Invariant::StockConservation,
                        vec![Entity::Product(p)],
                        d,
                    ));
                }
            }
        }
        let users =
            (!self.dirty_users.is_empty()).then(|| view.store(Service::User).user()).flatten();
        if let Some(t) = users {
            for &u in &self.dirty_users {
                let balance = t.balances[u.index()] as i64;
                let (held, initial) =
                    (self.held_points[u.index()], self.workload.balances[u.index()] as i64);
                if balance + held != initial {
                    let d =
                        format!("user {u}: balance {balance} + {held} held != {initial} initial");
                    return Some(violation(Invariant::MoneyConservation, vec![Entity::User(u)], d));
                }
            }
        }
        None
    }

    fn check_order(&self, o: OrderId) -> Option<Violation> {
        let l = &self.ledgers[o.index()];
        let v = |i: Invariant, d: String| Some(violation(i, l.entities(o), d));
        if l.stock_held < 0 || l.stock_held > l.qty {
            return v(
                Invariant::StockConservation,
                format!(
                    "order {o} holds {} units of product {}, ordered {}",
                    l.stock_held, l.product, l.qty
                ),
            );
        }
        let (points, card) = l.split().unwrap_or((0, 0));
        // By net effect, not by operation: a charge, its refund and a new
        // charge are one charge.
        if l.points_held > points {
            return v(
                Invariant::NoDoubleCharge,
                format!(
                    "order {o}: {} points held for {points} due ({} deductions)",
                    l.points_held, l.points_deducts
                ),
            );
        }
        if l.card_held > card {
            return v(
                Invariant::NoDoubleCharge,
                format!(
                    "order {o}: {} captured for {card} due ({} charges)",
                    l.card_held, l.charges
                ),
            );
        }
        if l.points_held < 0 || l.card_held < 0 {
            return v(
                Invariant::MoneyConservation,
                format!(
                    "order {o} returned money it never took: points {}, card {}",
                    l.points_held, l.card_held
                ),
            );
        }
        let confirmed = l.state == Some(OrderState::Confirmed);
        if let Some(c) = l.req.and_then(|r| r.coupon).filter(|_| confirmed) {
            if l.coupon != Some(c) || self.coupon_user.get(c.index()) != Some(&Some(o)) {
                return v(
                    Invariant::CouponSingleUse,
                    format!("order {o} confirmed without holding its coupon {c}"),
                );
            }
        }
        if confirmed && l.apologies > 0 {
            return v(
                Invariant::CouponSingleUse,
                format!("order {o} confirmed, yet an apology coupon was issued for it"),
            );
        }
        if confirmed && (l.stock_held, l.points_held, l.card_held) != (l.qty, points, card) {
            return v(
                Invariant::ConfirmedIsComplete,
                format!(
                    "order {o} confirmed with {}/{} units, {}/{points} points, {}/{card} card",
                    l.stock_held, l.qty, l.points_held, l.card_held
                ),
            );
        }
        if l.platform > 1 || l.sales > 1 || (!confirmed && (l.platform > 0 || l.sales > 0)) {
            return v(
                Invariant::ExactlyOnceSideEffects,
                format!(
                    "order {o} ({}) reached the data platform {} times and sales {} times",
                    OrderState::name_of(l.state),
                    l.platform,
                    l.sales
                ),
            );
        }
        None
    }

    /// Judge the end of the heal phase.
    pub fn at_end(&self, end: &EndState, view: &impl StateView) -> Option<Violation> {
        self.check_answers(end)
            .or_else(|| {
                (0..self.ledgers.len()).find_map(|i| self.check_final(OrderId(i as u32), end))
            })
            .or_else(|| self.check_outcomes(end))
            .or_else(|| self.check_sales(view))
            .or_else(|| self.check_drained(end))
    }

    fn check_answers(&self, end: &EndState) -> Option<Violation> {
        let arrivals = &self.workload.arrivals;
        if let Some(i) = end.answers.iter().position(|a| a.is_none()) {
            let d = format!("submission {i} never got a final answer{}", end.after_heal());
            return Some(violation(
                Invariant::EventualConsistency,
                vec![Entity::Key(arrivals[i].key)],
                d,
            ));
        }
        // Per key: the payload that made an order, and the first answer given.
        let mut first: Vec<Option<(u64, Response)>> = vec![None; self.keys.len()];
        for ((a, answer), &k) in arrivals.iter().zip(&end.answers).zip(&self.arrival_keys) {
            let answer = answer.expect("checked above");
            let made = self.keys[k as usize].order.map(|o| self.ledgers[o.index()].hash);
            let key_ents = || vec![Entity::Key(a.key)];
            match made {
                Some(h) if h != a.req.hash() && answer != Response::KeyConflict => {
                    let d = format!(
                        "key {:016x} reused with another payload was answered {answer:?}",
                        a.key.0
                    );
                    return Some(violation(Invariant::IdempotentResponses, key_ents(), d));
                }
                Some(h) if h != a.req.hash() => continue,
                _ => {}
            }
            match first[k as usize] {
                Some((h, r)) if h == a.req.hash() && r != answer => {
                    let d = format!("key {:016x} answered {r:?} and then {answer:?}", a.key.0);
                    return Some(violation(Invariant::IdempotentResponses, key_ents(), d));
                }
                Some(_) => {}
                None => first[k as usize] = Some((a.req.hash(), answer)),
            }
        }
        None
    }

    /// Each final answer against what became of its order.
    fn check_outcomes(&self, end: &EndState) -> Option<Violation> {
        let arrivals = &self.workload.arrivals;
        let answered = arrivals.iter().zip(&end.answers).zip(&self.arrival_keys);
        for (i, ((a, answer), &k)) in answered.enumerate() {
            let fail = |d: String| {
                let ents = vec![Entity::Key(a.key)];
                Some(violation(
                    Invariant::AnswerMatchesOutcome,
                    ents,
                    format!("submission {i}: {d}"),
                ))
            };
            let made = self.keys[k as usize].order;
            let (order, why) = match answer {
                Some(Response::Accepted { order }) => (*order, None),
                Some(Response::Refused { order, why }) => (*order, Some(*why)),
                Some(Response::KeyConflict) => {
                    let same = made.is_some_and(|o| self.ledgers[o.index()].hash == a.req.hash());
                    if same {
                        return fail(format!(
                            "refused as a key conflict, but its key made order {} for this very \
                             request",
                            made.expect("checked")
                        ));
                    }
                    continue;
                }
                Some(Response::InProgress) | None => continue,
            };
            let Some(l) = self.ledgers.get(order.index()) else {
                return fail(format!("answered about order {order}, which was never made"));
            };
            if made.is_some_and(|m| m != order) || l.hash != a.req.hash() {
                // A reused key with another payload is the idempotency
                // check's to judge.
                if made.is_some_and(|m| self.ledgers[m.index()].hash != a.req.hash()) {
                    continue;
                }
                return fail(format!(
                    "answered about order {order}, but its key made {}",
                    made.map_or("no order".to_string(), |m| format!("order {m}"))
                ));
            }
            let confirmed = l.state == Some(OrderState::Confirmed);
            if why.is_none() && self.answers_are_outcomes && !confirmed {
                return fail(format!(
                    "told accepted, but order {order} ended {}",
                    OrderState::name_of(l.state)
                ));
            }
            let Some(why) = why else { continue };
            if confirmed {
                return fail(format!("refused ({why:?}), but order {order} was confirmed"));
            }
            let true_reason = match why {
                Refusal::OutOfStock => !l.held_stock_ever,
                Refusal::CardDeclined => l.declined,
                // Points short: none were ever taken (the monolith and
                // two-phase commit check the balance without a write).
                Refusal::PointsShort => l.points_short || !l.points_ever,
                Refusal::CouponUnusable => {
                    l.req.is_some_and(|r| r.coupon.is_some()) && !l.coupon_ever
                }
                Refusal::Unavailable => true,
            };
            if !true_reason {
                return fail(format!(
                    "refused ({why:?}), but order {order} {}",
                    match why {
                        Refusal::OutOfStock => "held its stock",
                        Refusal::CardDeclined => "never had a card declined",
                        Refusal::PointsShort => "had its points taken",
                        _ => "used its coupon, or had none",
                    }
                ));
            }
        }
        None
    }

    fn check_final(&self, o: OrderId, end: &EndState) -> Option<Violation> {
        let l = &self.ledgers[o.index()];
        let v = |i: Invariant, d: String| Some(violation(i, l.entities(o), d));
        let effects = (l.stock_held, l.points_held, l.card_held);
        let payment = l.payment.map_or("absent", PaymentState::name);
        match l.state {
            None => {
                v(Invariant::EventualConsistency, format!("order {o} was never saved by Order"))
            }
            Some(OrderState::Pending) => v(
                Invariant::EventualConsistency,
                format!("order {o} is still pending{} (payment {payment})", end.after_heal()),
            ),
            // A payment left mid-way is a saga that never finished.
            Some(s) if l.payment.is_some_and(|p| !p.is_terminal()) => v(
                Invariant::NoStuckSaga,
                format!(
                    "order {o} is {} but its payment is still {payment}{}",
                    s.name(),
                    end.after_heal()
                ),
            ),
            Some(OrderState::Confirmed) => {
                let (points, card) = l.split().expect("a confirmed order has amounts");
                if effects != (l.qty, points, card) || l.payment != Some(PaymentState::Completed) {
                    return v(Invariant::EventualConsistency, format!(
                        "order {o} confirmed with {}/{} units, {}/{points} points, {}/{card} card, payment {payment}",
                        l.stock_held, l.qty, l.points_held, l.card_held
                    ));
                }
                if (l.platform, l.sales) != (1, 1) {
                    return v(
                        Invariant::ExactlyOnceSideEffects,
                        format!(
                        "confirmed order {o} reached the data platform {} times and sales {} times",
                        l.platform, l.sales
                    ),
                    );
                }
                None
            }
            Some(s) if effects != (0, 0, 0) || l.coupon.is_some() => v(
                Invariant::EventualConsistency,
                format!(
                    "order {o} is {} but still holds {} units, {} points, {} card{}",
                    s.name(),
                    l.stock_held,
                    l.points_held,
                    l.card_held,
                    l.coupon.map(|c| format!(" and coupon {c}")).unwrap_or_default()
                ),
            ),
            Some(_) => None,
        }
    }

    /// Sales records as they stand equal the quantities of confirmed orders.
    fn check_sales(&self, view: &impl StateView) -> Option<Violation> {
        let t = view.store(Service::Product).product()?;
        let mut want = vec![0u64; t.sales.len()];
        for l in self.ledgers.iter().filter(|l| l.state == Some(OrderState::Confirmed)) {
            want[l.product.index()] += l.qty as u64;
        }
        let p = (0..want.len()).find(|&p| want[p] != t.sales[p])?;
        let d = format!(
            "product {p}: sales record {} but confirmed orders hold {}",
            t.sales[p], want[p]
        );
        Some(violation(
            Invariant::ExactlyOnceSideEffects,
            vec![Entity::Product(ProductId(p as u32))],
            d,
        ))
    }

    fn check_drained(&self, end: &EndState) -> Option<Violation> {
        let stuck = |d: String| Some(violation(Invariant::NoStuckSaga, vec![], d));
        if end.outbox_backlog > 0 {
            return stuck(format!("{} outbox rows never published", end.outbox_backlog));
        }
        if end.memory_backlog > 0 {
            return stuck(format!("{} records still in a producer's memory", end.memory_backlog));
        }
        if end.broker_lag > 0 {
            return stuck(format!("consumers {} records behind the log", end.broker_lag));
        }
        None
    }
}
