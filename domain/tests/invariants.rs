//! Each invariant fires on a hand-made violation, and stays quiet on the
//! hand-made clean run next to it. The writes are committed the way the
//! harness commits them: applied to the tables, then observed by the checker.

use domain::client::Arrival;
use domain::order::{Order, OrderState, OrderWrite};
use domain::payment::{Payment, PaymentState, PaymentWrite};
use domain::product::{Product, ProductTables, ProductWrite};
use domain::user::{UserTables, UserWrite};
use domain::{
    Checker, EndState, Invariant, OrderId, PlaceOrder, ProductId, Service, StateView, Tables,
    UserId, Workload, Write,
};

/// Two users (balances 500 and 50), one product (price 100, stock 5), and two
/// orders of 2 units (amount 200): order 0 by user 0, order 1 by user 1.
fn workload() -> Workload {
    let order = |i: u32, user: u32| Arrival {
        at_us: i as u64,
        order: PlaceOrder { order: OrderId(i), user: UserId(user), product: ProductId(0), qty: 2 },
    };
    Workload {
        balances: vec![500, 50],
        products: vec![Product { price: 100, stock: 5 }],
        orders: vec![order(0, 0), order(1, 1)],
    }
}

struct Tabs(Vec<Tables>);

impl StateView for Tabs {
    fn tables(&self, service: Service) -> &Tables {
        &self.0[service as usize]
    }
}

struct World {
    tables: Tabs,
    checker: Checker,
}

impl World {
    fn new() -> World {
        let w = workload();
        let tables = Service::ALL
            .into_iter()
            .map(|s| match s {
                Service::Product => Tables::Product(ProductTables {
                    products: w.products.clone(),
                    ..Default::default()
                }),
                Service::User => {
                    Tables::User(UserTables { balances: w.balances.clone(), ..Default::default() })
                }
                s => Tables::empty(s),
            })
            .collect();
        World { tables: Tabs(tables), checker: Checker::new(&w) }
    }

    fn service_of(w: &Write) -> Service {
        match w {
            Write::Product(_) => Service::Product,
            Write::Order(_) => Service::Order,
            Write::Payment(_) => Service::Payment,
            Write::User(_) => Service::User,
            Write::Inbox(_) => panic!("tests write no inbox rows"),
        }
    }

    /// Commit one step's writes and check; returns the invariant violated.
    fn step(&mut self, writes: &[Write]) -> Option<Invariant> {
        for w in writes {
            self.tables.0[Self::service_of(w) as usize].apply(w);
            self.checker.observe(w);
        }
        self.checker.after_step(&self.tables).map(|v| v.invariant)
    }

    /// Apply a write the checker never hears of: a table changed behind the
    /// saga's back.
    fn sneak(&mut self, w: Write) {
        self.tables.0[Self::service_of(&w) as usize].apply(&w);
    }

    fn end(&self, end: EndState) -> Option<Invariant> {
        self.checker.at_end(&end).map(|v| v.invariant)
    }
}

const O0: OrderId = OrderId(0);
const O1: OrderId = OrderId(1);
const P0: ProductId = ProductId(0);
const U0: UserId = UserId(0);

fn deduct_stock(order: OrderId) -> Write {
    Write::Product(ProductWrite::Deduct { order, product: P0, qty: 2 })
}
fn restore_stock(order: OrderId) -> Write {
    Write::Product(ProductWrite::Restore { order, product: P0, qty: 2 })
}
fn create(order: OrderId, user: UserId, state: OrderState) -> Write {
    let row = Order { user, product: P0, qty: 2, amount: 200, state };
    Write::Order(OrderWrite::Create { order, row })
}
fn set(order: OrderId, state: OrderState) -> Write {
    Write::Order(OrderWrite::SetState { order, state })
}
fn pay(order: OrderId, user: UserId) -> Write {
    let row = Payment { user, amount: 200, state: PaymentState::Pending };
    Write::Payment(PaymentWrite::Create { order, row })
}
fn pay_set(order: OrderId, state: PaymentState) -> Write {
    Write::Payment(PaymentWrite::SetState { order, state })
}
fn deduct_points(order: OrderId, user: UserId) -> Write {
    Write::User(UserWrite::Deduct { user, order, amount: 200 })
}

/// The happy path of order 0 and the failure path of order 1, step by step.
fn clean_run(w: &mut World) {
    let steps: Vec<Vec<Write>> = vec![
        vec![deduct_stock(O0)],
        vec![deduct_stock(O1)],
        vec![create(O0, U0, OrderState::Pending)],
        vec![create(O1, UserId(1), OrderState::Pending)],
        vec![pay(O0, U0)],
        vec![pay(O1, UserId(1))],
        vec![deduct_points(O0, U0)],
        vec![set(O0, OrderState::Confirmed)],
        vec![pay_set(O0, PaymentState::Completed)],
        vec![pay_set(O1, PaymentState::Cancelled)],
        vec![set(O1, OrderState::Cancelled)],
        vec![restore_stock(O1)],
    ];
    for s in steps {
        assert_eq!(w.step(&s), None, "the clean run is clean at {s:?}");
    }
}

#[test]
fn a_clean_run_violates_nothing() {
    let mut w = World::new();
    clean_run(&mut w);
    assert!(w.checker.sagas_done());
    assert_eq!(w.end(EndState { settled: true, ..EndState::default() }), None);
}

#[test]
fn stock_conservation_fires_on_a_double_deduction() {
    let mut w = World::new();
    assert_eq!(w.step(&[deduct_stock(O0)]), None);
    assert_eq!(w.step(&[deduct_stock(O0)]), Some(Invariant::StockConservation));
}

#[test]
fn stock_conservation_fires_on_a_double_restore() {
    let mut w = World::new();
    w.step(&[deduct_stock(O0)]);
    assert_eq!(w.step(&[restore_stock(O0)]), None);
    assert_eq!(w.step(&[restore_stock(O0)]), Some(Invariant::StockConservation));
}

#[test]
fn stock_conservation_fires_when_stock_changes_behind_the_ledger() {
    let mut w = World::new();
    w.sneak(Write::Product(ProductWrite::Deduct { order: O1, product: P0, qty: 1 }));
    assert_eq!(w.step(&[deduct_stock(O0)]), Some(Invariant::StockConservation));
}

#[test]
fn no_double_charge_fires_on_a_second_deduction() {
    let mut w = World::new();
    w.step(&[deduct_stock(O0)]);
    assert_eq!(w.step(&[deduct_points(O0, U0)]), None);
    assert_eq!(w.step(&[deduct_points(O0, U0)]), Some(Invariant::NoDoubleCharge));
}

#[test]
fn money_conservation_fires_when_a_balance_changes_behind_the_ledger() {
    let mut w = World::new();
    w.sneak(Write::User(UserWrite::Deduct { user: U0, order: O1, amount: 10 }));
    assert_eq!(w.step(&[deduct_points(O0, U0)]), Some(Invariant::MoneyConservation));
}

#[test]
fn confirmed_is_complete_fires_on_an_unpaid_confirmation() {
    let mut w = World::new();
    w.step(&[deduct_stock(O0)]);
    w.step(&[create(O0, U0, OrderState::Pending)]);
    assert_eq!(w.step(&[set(O0, OrderState::Confirmed)]), Some(Invariant::ConfirmedIsComplete));
}

#[test]
fn legal_transitions_fires_on_a_resurrected_order() {
    let mut w = World::new();
    w.step(&[create(O1, UserId(1), OrderState::Pending)]);
    assert_eq!(w.step(&[set(O1, OrderState::Cancelled)]), None);
    assert_eq!(w.step(&[set(O1, OrderState::Pending)]), Some(Invariant::LegalTransitions));
}

#[test]
fn legal_transitions_fires_on_a_completed_payment_cancelled() {
    let mut w = World::new();
    w.step(&[pay(O0, U0)]);
    w.step(&[pay_set(O0, PaymentState::Completed)]);
    assert_eq!(w.step(&[pay_set(O0, PaymentState::Cancelled)]), Some(Invariant::LegalTransitions));
}

#[test]
fn eventual_consistency_fires_on_an_order_left_pending() {
    let mut w = World::new();
    w.step(&[deduct_stock(O0)]);
    w.step(&[create(O0, U0, OrderState::Pending)]);
    w.step(&[create(O1, UserId(1), OrderState::Rejected)]);
    assert_eq!(w.end(EndState::default()), Some(Invariant::EventualConsistency));
}

#[test]
fn eventual_consistency_fires_on_a_cancelled_order_still_holding_stock() {
    let mut w = World::new();
    w.step(&[deduct_stock(O0)]);
    w.step(&[create(O0, U0, OrderState::Pending)]);
    w.step(&[pay(O0, U0)]);
    w.step(&[pay_set(O0, PaymentState::Cancelled)]);
    w.step(&[set(O0, OrderState::Cancelled)]);
    w.step(&[create(O1, UserId(1), OrderState::Rejected)]);
    assert_eq!(w.end(EndState::default()), Some(Invariant::EventualConsistency));
}

#[test]
fn no_stuck_saga_fires_on_an_undrained_outbox_or_a_lagging_consumer() {
    let mut w = World::new();
    clean_run(&mut w);
    let end = EndState { settled: false, outbox_backlog: 1, ..EndState::default() };
    assert_eq!(w.end(end), Some(Invariant::NoStuckSaga));
    let end = EndState { settled: false, broker_lag: 3, ..EndState::default() };
    assert_eq!(w.end(end), Some(Invariant::NoStuckSaga));
}

#[test]
fn eventual_consistency_fires_on_a_confirmed_order_whose_payment_was_cancelled() {
    let mut w = World::new();
    for s in [
        vec![deduct_stock(O0)],
        vec![create(O0, U0, OrderState::Pending)],
        vec![pay(O0, U0)],
        vec![deduct_points(O0, U0)],
        vec![set(O0, OrderState::Confirmed)],
        vec![pay_set(O0, PaymentState::Cancelled)],
        vec![create(O1, UserId(1), OrderState::Rejected)],
    ] {
        w.step(&s);
    }
    assert_eq!(w.end(EndState::default()), Some(Invariant::EventualConsistency));
}

#[test]
fn no_stuck_saga_fires_on_a_confirmed_order_with_a_pending_payment() {
    let mut w = World::new();
    for s in [
        vec![deduct_stock(O0)],
        vec![create(O0, U0, OrderState::Pending)],
        vec![pay(O0, U0)],
        vec![deduct_points(O0, U0)],
        vec![set(O0, OrderState::Confirmed)],
        vec![create(O1, UserId(1), OrderState::Rejected)],
    ] {
        w.step(&s);
    }
    assert_eq!(w.end(EndState::default()), Some(Invariant::NoStuckSaga));
}
