//! The incremental invariant checker.
//!
//! It learns what happened only from committed writes ([`Checker::observe`])
//! and compares that ledger with the tables as they are ([`StateView`]): a
//! table changed by anything but an attributed write, or an effect applied
//! twice, shows up as a difference. Each step checks only what it touched.

use std::collections::BTreeMap;

use crate::entry::EntryWrite;
use crate::ids::{CouponId, OrderId, ProductId, RequestKey, UserId};
use crate::invariant::ledger::Ledger;
use crate::invariant::{Entity, Invariant, Violation};
use crate::message::Response;
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
}

pub struct Checker {
    workload: Workload,
    ledgers: Vec<Ledger>,
    held_stock: Vec<i64>,
    held_points: Vec<i64>,
    /// The live order using each coupon.
    coupon_user: Vec<Option<OrderId>>,
    /// Orders created per key, and per request hash; how many keys carry
    /// each hash (an order per key is allowed).
    by_key: BTreeMap<RequestKey, Vec<OrderId>>,
    by_hash: BTreeMap<u64, u32>,
    keys_with_hash: BTreeMap<u64, u32>,
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

fn violation(invariant: Invariant, entities: Vec<Entity>, detail: String) -> Violation {
    Violation { invariant, entities, detail }
}

impl Checker {
    pub fn new(w: &Workload) -> Checker {
        let mut keys_with_hash = BTreeMap::new();
        let mut seen = std::collections::BTreeSet::new();
        for a in &w.arrivals {
            if seen.insert((a.key, a.req.hash())) {
                *keys_with_hash.entry(a.req.hash()).or_default() += 1;
            }
        }
        Checker {
            ledgers: Vec::new(),
            held_stock: vec![0; w.products.len()],
            held_points: vec![0; w.balances.len()],
            coupon_user: vec![None; w.coupons.len()],
            by_key: BTreeMap::new(),
            by_hash: BTreeMap::new(),
            keys_with_hash,
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
            Write::Payment(PaymentWrite::Create { order, row }) => {
                self.ledger(order).due = Some((row.points as i64, row.card as i64));
                self.payment_state(order, row.state)
            }
            Write::Payment(PaymentWrite::SetState { order, state }) => {
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
                self.ledger(order).points_held -= amount as i64;
                self.held_points[user.index()] -= amount as i64;
                self.dirty_users.push(user);
            }
            Write::User(UserWrite::Deduct { user, order, amount }) => {
                let l = self.ledger(order);
                l.points_held += amount as i64;
                l.points_deducts += 1;
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
            Write::Pg(PgWrite::Decline { .. })
            | Write::Saga(_)
            | Write::Xa(_)
            | Write::Prepare { .. }
            | Write::Resolve { .. }
            | Write::Payment(PaymentWrite::RequestCancel { .. })
            | Write::User(UserWrite::Short { .. })
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
            ProductWrite::Deduct { order, product, qty } => self.stock(order, product, qty as i64),
            ProductWrite::Restore { order, product, qty } => {
                self.stock(order, product, -(qty as i64))
            }
            ProductWrite::Reject { .. } | ProductWrite::Void { .. } => {}
            ProductWrite::Sale { order, product, .. } => {
                self.ledger(order).sales += 1;
                self.dirty_products.push(product);
            }
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
        let qty = qty as i64;
        // Orders are numbered in sequence; a gap would be the entry
        // service's bug, and shows up as orders never saved.
        self.ledgers.resize(order.index(), Ledger::default());
        self.ledgers.push(Ledger { hash, product, qty, ..Ledger::default() });
        self.open_orders += 1;
        self.dirty_orders.push(order);
        let created = self.by_hash.entry(hash).or_default();
        *created += 1;
        let allowed = self.keys_with_hash.get(&hash).copied().unwrap_or(0);
        if *created > allowed {
            let d = format!(
                "order {order} is order number {created} for a request sent under {allowed} key(s)"
            );
            self.flag(violation(Invariant::IdempotentResponses, vec![Entity::Order(order)], d));
        }
        if let Some(k) = key {
            let orders = self.by_key.entry(k).or_default();
            orders.push(order);
            if orders.len() > 1 {
                let d = format!("key {:016x} made orders {:?}", k.0, orders);
                let ents = vec![Entity::Key(k), Entity::Order(order)];
                self.flag(violation(Invariant::IdempotentResponses, ents, d));
            }
        }
    }

    fn stock(&mut self, order: OrderId, product: ProductId, delta: i64) {
        self.ledger(order).stock_held += delta;
        self.held_stock[product.index()] += delta;
        self.dirty_products.push(product);
    }

    fn order(&mut self, w: OrderWrite) {
        match w {
            OrderWrite::Create { order, row } => {
                self.ledger(order).row = Some(row);
                self.order_state(order, row.state);
            }
            OrderWrite::SetState { order, state } => self.order_state(order, state),
            OrderWrite::UseCoupon { coupon, order } => self.use_coupon(coupon, order),
            OrderWrite::IssueCoupon { .. } => {
                self.coupon_user.push(None);
                self.apologies += 1;
            }
            OrderWrite::RestoreCoupon { coupon, order } => {
                if self.coupon_user[coupon.index()] == Some(order) {
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
        self.ledger(order).coupon = Some(coupon);
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
        let found = self.pending.take().or_else(|| self.check_dirty(view));
        self.skip_step();
        found
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
        if let Some(t) = view.store(Service::Product).product() {
            for &p in &self.dirty_products {
                let available = t.products[p.index()].stock as i64;
                let (held, initial) =
                    (self.held_stock[p.index()], self.workload.products[p.index()].stock as i64);
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
        if let Some(t) = view.store(Service::User).user() {
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
        if l.points_deducts > 1 || l.points_held > points {
            return v(
                Invariant::NoDoubleCharge,
                format!(
                    "order {o}: points deducted {} times, {} held for {points} due",
                    l.points_deducts, l.points_held
                ),
            );
        }
        if l.charges > 1 || l.card_held > card {
            return v(
                Invariant::NoDoubleCharge,
                format!(
                    "order {o}: card charged {} times, {} captured for {card} due",
                    l.charges, l.card_held
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
            .or_else(|| (0..self.ledgers.len()).find_map(|i| self.check_final(OrderId(i as u32))))
            .or_else(|| self.check_sales(view))
            .or_else(|| self.check_drained(end))
    }

    fn check_answers(&self, end: &EndState) -> Option<Violation> {
        let arrivals = &self.workload.arrivals;
        if let Some(i) = end.answers.iter().position(|a| a.is_none()) {
            let d = format!("submission {i} never got a final answer");
            return Some(violation(
                Invariant::EventualConsistency,
                vec![Entity::Key(arrivals[i].key)],
                d,
            ));
        }
        // Per key: the payload that made an order, and the answers given.
        let mut first: BTreeMap<RequestKey, (u64, Response)> = BTreeMap::new();
        for (a, answer) in arrivals.iter().zip(&end.answers) {
            let answer = answer.expect("checked above");
            let made = self.by_key.get(&a.key).map(|o| self.ledgers[o[0].index()].hash);
            let key_ents = vec![Entity::Key(a.key)];
            match made {
                Some(h) if h != a.req.hash() && answer != Response::KeyConflict => {
                    let d = format!(
                        "key {:016x} reused with another payload was answered {answer:?}",
                        a.key.0
                    );
                    return Some(violation(Invariant::IdempotentResponses, key_ents, d));
                }
                Some(h) if h != a.req.hash() => continue,
                _ => {}
            }
            match first.get(&a.key) {
                Some(&(h, r)) if h == a.req.hash() && r != answer => {
                    let d = format!("key {:016x} answered {r:?} and then {answer:?}", a.key.0);
                    return Some(violation(Invariant::IdempotentResponses, key_ents, d));
                }
                Some(_) => {}
                None => drop(first.insert(a.key, (a.req.hash(), answer))),
            }
        }
        None
    }

    fn check_final(&self, o: OrderId) -> Option<Violation> {
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
                format!("order {o} is still pending after healing"),
            ),
            // A payment left mid-way is a saga that never finished.
            Some(s) if l.payment.is_some_and(|p| !p.is_terminal()) => v(
                Invariant::NoStuckSaga,
                format!("order {o} is {} but its payment is still {payment}", s.name()),
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
