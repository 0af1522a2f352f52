//! The incremental invariant checker.
//!
//! It learns what happened only from committed writes ([`Checker::observe`])
//! and compares that ledger with the tables as they are ([`StateView`]): a
//! table changed by anything but an attributed write, or an effect applied
//! twice, shows up as a difference. Each step checks only what it touched.

use crate::client::Arrival;
use crate::ids::{OrderId, ProductId, UserId};
use crate::invariant::{Entity, Invariant, Violation};
use crate::order::{OrderState, OrderWrite};
use crate::payment::{PaymentState, PaymentWrite};
use crate::product::ProductWrite;
use crate::tables::{Service, Tables, Write};
use crate::user::UserWrite;
use crate::workload::Workload;

/// Read access to the services' committed tables.
pub trait StateView {
    fn tables(&self, service: Service) -> &Tables;
}

/// The infrastructure's part of the end state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EndState {
    pub settled: bool,
    pub outbox_backlog: usize,
    pub memory_backlog: usize,
    pub broker_lag: u64,
}

/// What the checker knows of one order.
#[derive(Clone, Copy, Debug)]
struct Ledger {
    user: UserId,
    product: ProductId,
    qty: i64,
    amount: i64,
    /// Units of stock this order holds: deducted minus restored.
    stock_held: i64,
    /// Points this order holds: deducted minus refunded.
    points_held: i64,
    points_deducts: u32,
    state: Option<OrderState>,
    payment: Option<PaymentState>,
}

pub struct Checker {
    ledgers: Vec<Ledger>,
    initial_stock: Vec<i64>,
    initial_balance: Vec<i64>,
    /// Per product, the sum of its orders' `stock_held`.
    held_stock: Vec<i64>,
    /// Per user, the sum of their orders' `points_held`.
    held_points: Vec<i64>,
    dirty_orders: Vec<OrderId>,
    dirty_products: Vec<ProductId>,
    dirty_users: Vec<UserId>,
    /// A transition violation seen while observing, reported after the step.
    pending: Option<Violation>,
    /// Orders not yet in a terminal state, and payments still pending.
    open_orders: usize,
    open_payments: usize,
}

fn violation(invariant: Invariant, entities: Vec<Entity>, detail: String) -> Violation {
    Violation { invariant, entities, detail }
}

impl Checker {
    pub fn new(w: &Workload) -> Checker {
        let ledgers: Vec<Ledger> = w
            .orders
            .iter()
            .enumerate()
            .map(|(i, Arrival { order, .. })| {
                assert_eq!(order.order.index(), i, "orders are numbered densely in arrival order");
                let price = w.products[order.product.index()].price as i64;
                Ledger {
                    user: order.user,
                    product: order.product,
                    qty: order.qty as i64,
                    amount: price * order.qty as i64,
                    stock_held: 0,
                    points_held: 0,
                    points_deducts: 0,
                    state: None,
                    payment: None,
                }
            })
            .collect();
        Checker {
            open_orders: ledgers.len(),
            open_payments: 0,
            ledgers,
            initial_stock: w.products.iter().map(|p| p.stock as i64).collect(),
            initial_balance: w.balances.iter().map(|&b| b as i64).collect(),
            held_stock: vec![0; w.products.len()],
            held_points: vec![0; w.balances.len()],
            dirty_orders: Vec::new(),
            dirty_products: Vec::new(),
            dirty_users: Vec::new(),
            pending: None,
        }
    }

    /// Every order terminal and no payment pending.
    pub fn sagas_done(&self) -> bool {
        self.open_orders == 0 && self.open_payments == 0
    }

    fn flag(&mut self, v: Violation) {
        self.pending.get_or_insert(v);
    }

    /// Learn one committed write.
    pub fn observe(&mut self, w: &Write) {
        match *w {
            Write::Product(ProductWrite::Deduct { order, product, qty }) => {
                self.stock(order, product, qty as i64)
            }
            Write::Product(ProductWrite::Restore { order, product, qty }) => {
                self.stock(order, product, -(qty as i64))
            }
            Write::Product(ProductWrite::Reject { .. }) | Write::Inbox(_) => {}
            Write::Order(OrderWrite::Create { order, row }) => self.order_state(order, row.state),
            Write::Order(OrderWrite::SetState { order, state }) => self.order_state(order, state),
            Write::Payment(PaymentWrite::Create { order, row }) => {
                self.payment_state(order, row.state)
            }
            Write::Payment(PaymentWrite::SetState { order, state }) => {
                self.payment_state(order, state)
            }
            Write::User(UserWrite::Deduct { user, order, amount }) => {
                let l = &mut self.ledgers[order.index()];
                l.points_held += amount as i64;
                l.points_deducts += 1;
                self.held_points[user.index()] += amount as i64;
                self.dirty_orders.push(order);
                self.dirty_users.push(user);
            }
        }
    }

    fn stock(&mut self, order: OrderId, product: ProductId, delta: i64) {
        self.ledgers[order.index()].stock_held += delta;
        self.held_stock[product.index()] += delta;
        self.dirty_orders.push(order);
        self.dirty_products.push(product);
    }

    fn order_state(&mut self, order: OrderId, to: OrderState) {
        let l = &mut self.ledgers[order.index()];
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
        self.dirty_orders.push(order);
    }

    fn payment_state(&mut self, order: OrderId, to: PaymentState) {
        let l = &mut self.ledgers[order.index()];
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
        let was_open = from == Some(PaymentState::Pending);
        let is_open = to == PaymentState::Pending;
        self.open_payments = self.open_payments + is_open as usize - was_open as usize;
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
        if let Tables::Product(t) = view.tables(Service::Product) {
            for &p in &self.dirty_products {
                let available = t.products[p.index()].stock as i64;
                let (held, initial) = (self.held_stock[p.index()], self.initial_stock[p.index()]);
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
        if let Tables::User(t) = view.tables(Service::User) {
            for &u in &self.dirty_users {
                let balance = t.balances[u.index()] as i64;
                let (held, initial) =
                    (self.held_points[u.index()], self.initial_balance[u.index()]);
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
        let ents = || vec![Entity::Order(o), Entity::Product(l.product), Entity::User(l.user)];
        if l.stock_held < 0 || l.stock_held > l.qty {
            let d = format!(
                "order {o} holds {} units of product {}, ordered {}",
                l.stock_held, l.product, l.qty
            );
            return Some(violation(Invariant::StockConservation, ents(), d));
        }
        if l.points_deducts > 1 || l.points_held > l.amount {
            let d = format!(
                "order {o}: points deducted {} times, {} held for an amount of {}",
                l.points_deducts, l.points_held, l.amount
            );
            return Some(violation(Invariant::NoDoubleCharge, ents(), d));
        }
        if l.points_held < 0 {
            let d = format!("order {o} returned {} points it never held", -l.points_held);
            return Some(violation(Invariant::MoneyConservation, ents(), d));
        }
        if l.state == Some(OrderState::Confirmed)
            && (l.stock_held != l.qty || l.points_held != l.amount)
        {
            let d = format!(
                "order {o} confirmed with {}/{} units held and {}/{} points paid",
                l.stock_held, l.qty, l.points_held, l.amount
            );
            return Some(violation(Invariant::ConfirmedIsComplete, ents(), d));
        }
        None
    }

    /// Judge the end of the heal phase: eventual consistency, then no stuck
    /// saga.
    pub fn at_end(&self, end: &EndState) -> Option<Violation> {
        for (i, l) in self.ledgers.iter().enumerate() {
            if let Some(v) = self.check_final(OrderId(i as u32), l) {
                return Some(v);
            }
        }
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

    fn check_final(&self, o: OrderId, l: &Ledger) -> Option<Violation> {
        let ents = vec![Entity::Order(o), Entity::Product(l.product), Entity::User(l.user)];
        let v = |i: Invariant, d: String| Some(violation(i, ents.clone(), d));
        let (state, payment) = (l.state, l.payment);
        let effects = (l.stock_held, l.points_held);
        let payment_name = payment.map_or("absent", PaymentState::name);
        match state {
            None => v(Invariant::EventualConsistency, format!("order {o} was never created")),
            Some(OrderState::Pending) => v(
                Invariant::EventualConsistency,
                format!("order {o} is still pending after healing"),
            ),
            // A payment left pending is a saga that never finished; one that
            // finished the other way from its order is an inconsistency.
            Some(s) if payment == Some(PaymentState::Pending) => v(
                Invariant::NoStuckSaga,
                format!("order {o} is {} but its payment is still pending", s.name()),
            ),
            Some(OrderState::Confirmed) if effects != (l.qty, l.amount) => v(
                Invariant::EventualConsistency,
                format!(
                    "order {o} confirmed with {}/{} units and {}/{} points",
                    l.stock_held, l.qty, l.points_held, l.amount
                ),
            ),
            Some(OrderState::Confirmed) if payment != Some(PaymentState::Completed) => v(
                Invariant::EventualConsistency,
                format!("order {o} is confirmed but its payment is {payment_name}"),
            ),
            Some(s @ (OrderState::Cancelled | OrderState::Rejected)) if effects != (0, 0) => v(
                Invariant::EventualConsistency,
                format!(
                    "order {o} is {} but still holds {} units and {} points",
                    s.name(),
                    l.stock_held,
                    l.points_held
                ),
            ),
            Some(OrderState::Cancelled) if payment != Some(PaymentState::Cancelled) => v(
                Invariant::EventualConsistency,
                format!("order {o} is cancelled but its payment is {payment_name}"),
            ),
            Some(OrderState::Rejected) if payment.is_some() => v(
                Invariant::EventualConsistency,
                format!("order {o} was rejected but has a {payment_name} payment"),
            ),
            _ => None,
        }
    }
}
