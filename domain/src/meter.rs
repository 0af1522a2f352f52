//! What a run measured beyond pass or fail, for comparing strategies (§2.5):
//! how long each order's effects stayed partly applied, how much stock,
//! money and coupons were held against orders that disagree with them, the
//! compensations and refunds the saga ran, the coupons it gave away, and the
//! revenue it made.
//!
//! The meter reads the checker's ledger (what committed writes did to each
//! order) after every step that touched an order, so it measures exactly
//! what the invariants see.
//!
//! An order *disagrees* with its effects when, for its state (live: pending
//! or confirmed; dead: cancelled or rejected; or not saved yet):
//! - stock: the units held differ from its quantity (live) or from none;
//! - coupon: its coupon is held although the order is dead, or not held
//!   although it is live and uses one;
//! - money (points and card): any is held for a dead or unsaved order, more
//!   than due for a pending one, or other than due for a confirmed one.
//!
//! Money short of due while the order is pending is the saga in progress,
//! not a disagreement. An order's inconsistency window is the simulated time
//! it spent disagreeing.

use serde::{Deserialize, Serialize};

use crate::client::Arrival;
use crate::entry::EntryWrite;
use crate::ids::OrderId;
use crate::invariant::ledger::Ledger;
use crate::invariant::Checker;
use crate::message::CmdKind;
use crate::order::{OrderState, OrderWrite};
use crate::pg::PgWrite;
use crate::product::ProductWrite;
use crate::tables::Write;
use crate::user::UserWrite;

/// How far one order disagrees with its effects, per kind of effect.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Disagreement {
    stock: u64,
    money: u64,
    coupons: u64,
}

impl Disagreement {
    fn of(l: &Ledger) -> Disagreement {
        let state = l.state.filter(|_| l.row.is_some());
        let live = matches!(state, Some(OrderState::Pending | OrderState::Confirmed));
        let stock = l.stock_held - if live { l.qty } else { 0 };
        let uses_coupon = l.row.is_some_and(|r| r.coupon.is_some());
        let coupons = (l.coupon.is_some() != (live && uses_coupon)) as u64;
        let held = l.points_held + l.card_held;
        let due = l.split().map_or(0, |(points, card)| points + card);
        let money = match state {
            Some(OrderState::Confirmed) => (held - due).unsigned_abs(),
            Some(OrderState::Pending) => (held - due).max(0) as u64,
            _ => held.unsigned_abs(),
        };
        Disagreement { stock: stock.unsigned_abs(), money, coupons }
    }

    fn any(self) -> bool {
        self != Disagreement::default()
    }
}

/// The step a saga gave up as silent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GaveUp {
    Reserve,
    Pay,
}

#[derive(Clone, Copy, Debug, Default)]
struct OrderMeter {
    /// When its first submission arrived (for a keyless order: when it was
    /// numbered), and when it first reached a final state.
    arrived_us: Option<u64>,
    done_us: Option<u64>,
    now: Disagreement,
    /// When the order started disagreeing, while it does.
    since_us: Option<u64>,
    window_us: u64,
    compensations: u32,
    gave_up: Option<GaveUp>,
    stock_restored: bool,
    card_refunded: bool,
}

/// Integrals over simulated time, in unit·µs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Integral {
    orders: u128,
    stock: u128,
    money: u128,
    coupons: u128,
}

#[derive(Clone, Debug, Default)]
pub struct Meter {
    orders: Vec<OrderMeter>,
    /// The sum of every order's current disagreement, and how many disagree.
    total: Disagreement,
    disagreeing: u64,
    integral: Integral,
    last_us: u64,
    compensations: u64,
    refunds: u64,
    refunded: u64,
    coupons_issued: u64,
    coupon_value: u64,
}

/// One order's times, in simulated µs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderTimes {
    /// When its first submission arrived.
    pub arrived_us: u64,
    /// When it first reached a final state (confirmed, cancelled, rejected).
    pub done_us: Option<u64>,
    pub confirmed: bool,
    /// The time it spent disagreeing with its effects.
    pub window_us: u64,
}

/// What one run measured; times in simulated µs, exposures in unit·s.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Measures {
    /// Every order the entry numbered, by order id.
    pub orders: Vec<OrderTimes>,
    /// ∫ orders disagreeing dt, in order·s; and its split by effect.
    pub exposure_orders: f64,
    pub exposure_stock: f64,
    pub exposure_money: f64,
    pub exposure_coupons: f64,
    /// Compensating actions committed: stock released, order cancelled,
    /// points refunded, card refunded.
    pub compensations: u64,
    /// Compensations of sagas rolled back because a step was given up as
    /// silent although it had in fact taken effect (stock reserved, or a
    /// card charged, behind the silence).
    pub false_compensations: u64,
    pub refunds: u64,
    pub refunded: u64,
    pub coupons_issued: u64,
    pub coupon_value: u64,
    /// The amount of every confirmed order.
    pub revenue: u64,
}

const US_PER_S: f64 = 1e6;

impl Meter {
    pub fn new(arrivals: &[Arrival]) -> Meter {
        // An order id per arrival, mostly: grown once, not step by step. An
        // order's latency counts from its key's first arrival, through every
        // retry of its submission: the checker's ledger holds that time.
        let orders = Vec::with_capacity(arrivals.len());
        Meter { orders, ..Meter::default() }
    }

    /// Learn one committed write (alongside [`Checker::observe`]).
    pub fn observe(&mut self, w: &Write) {
        let order = match *w {
            Write::Entry(EntryWrite::Begin { order, .. }) => {
                self.order(order);
                return;
            }
            Write::Product(ProductWrite::Restore { order, .. }) => {
                self.order(order).stock_restored = true;
                order
            }
            Write::Order(OrderWrite::SetState { order, state: OrderState::Cancelled }) => order,
            Write::User(UserWrite::Refund { order, .. }) => order,
            Write::Pg(PgWrite::Refund { order, amount, .. }) => {
                self.refunds += 1;
                self.refunded += amount;
                self.order(order).card_refunded = true;
                order
            }
            Write::Order(OrderWrite::IssueCoupon { discount, .. }) => {
                self.coupons_issued += 1;
                self.coupon_value += discount;
                return;
            }
            _ => return,
        };
        self.compensations += 1;
        self.order(order).compensations += 1;
    }

    /// The coordinator gave a silent step up and compensates it.
    pub fn gave_up(&mut self, order: OrderId, step: CmdKind) {
        self.order(order).gave_up = match step {
            CmdKind::Reserve | CmdKind::PrepareStock => Some(GaveUp::Reserve),
            _ => Some(GaveUp::Pay),
        };
    }

    fn order(&mut self, order: OrderId) -> &mut OrderMeter {
        if order.index() >= self.orders.len() {
            self.orders.resize(order.index() + 1, OrderMeter::default());
        }
        &mut self.orders[order.index()]
    }

    fn advance(&mut self, now_us: u64) {
        let dt = now_us.saturating_sub(self.last_us) as u128;
        let (t, i) = (self.total, &mut self.integral);
        i.orders += self.disagreeing as u128 * dt;
        i.stock += t.stock as u128 * dt;
        i.money += t.money as u128 * dt;
        i.coupons += t.coupons as u128 * dt;
        self.last_us = self.last_us.max(now_us);
    }

    /// After a step: re-measure the orders it touched. Call before the
    /// checker forgets them.
    pub fn after_step(&mut self, now_us: u64, checker: &Checker) {
        let touched = checker.touched_orders();
        if touched.is_empty() {
            return;
        }
        self.advance(now_us);
        for &o in touched {
            let Some(l) = checker.ledger_of(o) else { continue };
            let new = Disagreement::of(l);
            let m = self.order(o);
            if m.arrived_us.is_none() {
                // The checker read the key's first arrival when the order
                // was made (no client sent the key: from now).
                m.arrived_us = Some(l.arrived_us.unwrap_or(now_us));
            }
            if m.done_us.is_none() && l.state.is_some_and(|s| s.is_terminal()) {
                m.done_us = Some(now_us);
            }
            let old = std::mem::replace(&mut m.now, new);
            if old == new {
                continue;
            }
            match (old.any(), new.any(), m.since_us) {
                (false, true, _) => m.since_us = Some(now_us),
                (true, false, Some(since)) => {
                    m.window_us += now_us - since;
                    m.since_us = None;
                }
                _ => {}
            }
            let t = &mut self.total;
            t.stock = t.stock + new.stock - old.stock;
            t.money = t.money + new.money - old.money;
            t.coupons = t.coupons + new.coupons - old.coupons;
            self.disagreeing = self.disagreeing + new.any() as u64 - old.any() as u64;
        }
    }

    /// The run is over at `now_us`: close the windows still open.
    pub fn finish(&mut self, now_us: u64, checker: &Checker) -> Measures {
        self.advance(now_us);
        let mut false_compensations = 0;
        let mut orders = Vec::with_capacity(checker.orders());
        for (i, m) in self.orders.iter_mut().enumerate() {
            if let Some(since) = m.since_us.take() {
                m.window_us += now_us - since;
            }
            if let Some(l) = checker.ledger_of(OrderId(i as u32)) {
                orders.push(OrderTimes {
                    arrived_us: m.arrived_us.unwrap_or(now_us),
                    done_us: m.done_us,
                    confirmed: l.state == Some(OrderState::Confirmed),
                    window_us: m.window_us,
                });
            }
            let effect_undone = match m.gave_up {
                Some(GaveUp::Reserve) => m.stock_restored,
                Some(GaveUp::Pay) => m.card_refunded,
                None => false,
            };
            if effect_undone {
                false_compensations += m.compensations as u64;
            }
        }
        let revenue = (0..checker.orders())
            .filter_map(|i| checker.ledger_of(OrderId(i as u32)))
            .filter(|l| l.state == Some(OrderState::Confirmed))
            .filter_map(|l| l.row.map(|r| r.amount))
            .sum();
        let i = self.integral;
        Measures {
            orders,
            exposure_orders: i.orders as f64 / US_PER_S,
            exposure_stock: i.stock as f64 / US_PER_S,
            exposure_money: i.money as f64 / US_PER_S,
            exposure_coupons: i.coupons as f64 / US_PER_S,
            compensations: self.compensations,
            false_compensations,
            refunds: self.refunds,
            refunded: self.refunded,
            coupons_issued: self.coupons_issued,
            coupon_value: self.coupon_value,
            revenue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{PgKey, ProductId, RequestKey, UserId};
    use crate::message::Request;
    use crate::order::Order;
    use crate::payment::{Payment, PaymentState, PaymentWrite};
    use crate::product::Product;
    use crate::workload::Workload;

    const P0: ProductId = ProductId(0);
    const U0: UserId = UserId(0);

    fn req(qty: u32) -> Request {
        Request { user: U0, product: P0, qty, coupon: None, points: 50 }
    }

    /// Two submissions, arriving at 1 µs and 2 µs.
    fn workload() -> Workload {
        let at = |at_us, key, req| Arrival { at_us, key: RequestKey(key), req };
        Workload {
            balances: vec![500],
            products: vec![Product { price: 100, stock: 10 }],
            coupons: Vec::new(),
            arrivals: vec![at(1, 10, req(2)), at(2, 11, req(2))],
        }
    }

    struct Run {
        checker: Checker,
        meter: Meter,
    }

    impl Run {
        fn commit(&mut self, now_us: u64, writes: &[Write]) {
            for w in writes {
                self.checker.observe(w);
                self.meter.observe(w);
            }
            self.meter.after_step(now_us, &self.checker);
            self.checker.skip_step();
        }
    }

    fn begin(order: OrderId, key: u64) -> Write {
        let key = Some(RequestKey(key));
        Write::Entry(EntryWrite::Begin { order, key, hash: req(2).hash(), product: P0, qty: 2 })
    }

    fn create(order: OrderId, card: u64) -> Write {
        let row = Order {
            user: U0,
            product: P0,
            qty: 2,
            coupon: None,
            amount: 50 + card,
            points: 50,
            card,
            state: OrderState::Pending,
        };
        Write::Order(OrderWrite::Create { order, row })
    }

    fn pay(order: OrderId, card: u64) -> [Write; 2] {
        let row = Payment {
            user: U0,
            card,
            points: 50,
            state: PaymentState::Charging,
            cancel: false,
            attempt: 0,
        };
        [
            Write::Payment(PaymentWrite::Create { order, row }),
            Write::Pg(PgWrite::Charge {
                key: Some(PgKey::of(order)),
                order,
                amount: card,
                at_us: 0,
            }),
        ]
    }

    /// Order 0 goes through (stock reserved 20 µs before the order row
    /// exists); order 1 is charged, given up and rolled back: 10 µs of
    /// stock without a row, then 30 µs of stock and money held for a
    /// cancelled order.
    #[test]
    fn a_hand_made_run_measures_what_it_should() {
        let (o0, o1) = (OrderId(0), OrderId(1));
        let w = workload();
        let mut r = Run {
            checker: Checker::new(&w, crate::Strategy::Choreography),
            meter: Meter::new(&w.arrivals),
        };
        let deduct = |order| Write::Product(ProductWrite::Deduct { order, product: P0, qty: 2 });
        let confirmed =
            Write::Order(OrderWrite::SetState { order: o0, state: OrderState::Confirmed });
        r.commit(10, &[begin(o0, 10), deduct(o0)]);
        r.commit(30, &[create(o0, 150)]);
        r.commit(50, &pay(o0, 150));
        r.commit(60, &[Write::User(UserWrite::Deduct { user: U0, order: o0, amount: 50 })]);
        r.commit(70, &[confirmed]);
        r.commit(80, &[begin(o1, 11), deduct(o1)]);
        r.commit(90, &[create(o1, 100)]);
        r.commit(100, &pay(o1, 100));
        r.meter.gave_up(o1, CmdKind::Pay);
        let cancelled =
            Write::Order(OrderWrite::SetState { order: o1, state: OrderState::Cancelled });
        r.commit(120, &[cancelled]);
        r.commit(130, &[Write::Product(ProductWrite::Restore { order: o1, product: P0, qty: 2 })]);
        r.commit(150, &[Write::Pg(PgWrite::Refund { charge: 1, order: o1, amount: 100 })]);
        let m = r.meter.finish(200, &r.checker);

        let times = |arrived_us, done_us, confirmed, window_us| OrderTimes {
            arrived_us,
            done_us: Some(done_us),
            confirmed,
            window_us,
        };
        assert_eq!(m.orders, vec![times(1, 70, true, 20), times(2, 120, false, 40)]);
        // Orders disagreeing: 20 + 10 + 30 µs; stock: 2 units for 20 + 10 +
        // 10 µs; money: 100 for 30 µs.
        assert_eq!(m.exposure_orders, 60e-6);
        assert_eq!(m.exposure_stock, 80e-6);
        assert_eq!(m.exposure_money, 3000e-6);
        assert_eq!(m.exposure_coupons, 0.0);
        assert_eq!((m.compensations, m.false_compensations), (3, 3));
        assert_eq!((m.refunds, m.refunded, m.revenue), (1, 100, 200));
    }

    #[test]
    fn a_saga_that_never_disagrees_has_no_window() {
        let o0 = OrderId(0);
        let w = workload();
        let mut r = Run {
            checker: Checker::new(&w, crate::Strategy::Choreography),
            meter: Meter::new(&w.arrivals),
        };
        let deduct = Write::Product(ProductWrite::Deduct { order: o0, product: P0, qty: 2 });
        r.commit(10, &[begin(o0, 10), deduct, create(o0, 150)]);
        let m = r.meter.finish(20, &r.checker);
        assert_eq!(m.orders[0].window_us, 0);
        assert_eq!(m.exposure_orders, 0.0);
        assert_eq!(m.orders[0].done_us, None);
    }
}
