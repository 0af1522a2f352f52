//! Each invariant fires on a hand-made violation, and stays quiet on the
//! hand-made clean run next to it. The writes are committed the way the
//! harness commits them: applied to the tables, then observed by the checker.

use domain::client::Arrival;
use domain::entry::EntryWrite;
use domain::message::Refusal;
use domain::order::{Coupon, CouponState, Order, OrderState, OrderTables, OrderWrite};
use domain::payment::{Payment, PaymentState, PaymentWrite};
use domain::pg::PgWrite;
use domain::platform::PlatformWrite;
use domain::product::{Product, ProductTables, ProductWrite};
use domain::user::{UserTables, UserWrite};
use domain::workload::IssuedCoupon;
use domain::{
    Checker, CouponId, EndState, Invariant, OrderId, PgKey, ProductId, Request, RequestKey,
    Response, Service, StateView, Store, Strategy, Tables, UserId, Workload, Write,
};

const O0: OrderId = OrderId(0);
const O1: OrderId = OrderId(1);
const P0: ProductId = ProductId(0);
const P1: ProductId = ProductId(1);
const U0: UserId = UserId(0);
const U1: UserId = UserId(1);
const C0: CouponId = CouponId(0);
const K0: RequestKey = RequestKey(10);
const K1: RequestKey = RequestKey(11);

fn req(user: UserId, qty: u32) -> Request {
    Request { user, product: P0, qty, coupon: None, points: 50 }
}

/// Two users (balances 500 and 50), two products (prices 100 and 10, stock 5), one
/// coupon of user 0, and three submissions: user 0's order under K0, user 1's
/// under K1, and K0 reused with another payload.
fn workload() -> Workload {
    let at = |at_us, key, req| Arrival { at_us, key, req };
    Workload {
        balances: vec![500, 50],
        products: vec![Product { price: 100, stock: 5 }, Product { price: 10, stock: 5 }],
        coupons: vec![IssuedCoupon { user: U0, discount: 20 }],
        arrivals: vec![at(1, K0, req(U0, 2)), at(2, K1, req(U1, 2)), at(3, K0, req(U0, 1))],
    }
}

struct Stores(Vec<Store>);

impl StateView for Stores {
    fn store(&self, service: Service) -> &Store {
        &self.0[service as usize]
    }
}

struct World {
    stores: Stores,
    checker: Checker,
}

impl World {
    fn new() -> World {
        World::of(workload(), Strategy::Orchestration)
    }

    fn of(w: Workload, strategy: Strategy) -> World {
        let coupon = |c: &IssuedCoupon| Coupon {
            user: c.user,
            discount: c.discount,
            state: CouponState::Issued,
            order: None,
        };
        let stores = Service::ALL
            .into_iter()
            .map(|s| {
                Store::new(match s {
                    Service::Product => Tables::Product(ProductTables::new(w.products.clone())),
                    Service::Order => Tables::Order(OrderTables {
                        coupons: w.coupons.iter().map(coupon).collect(),
                        ..Default::default()
                    }),
                    Service::User => Tables::User(UserTables {
                        balances: w.balances.clone(),
                        ..Default::default()
                    }),
                    Service::Payment => Tables::Payment(Default::default()),
                    Service::Pg => Tables::Pg(Default::default()),
                    Service::Platform => Tables::Platform(Default::default()),
                    Service::Orchestrator => Tables::Saga(Default::default()),
                })
            })
            .collect();
        World { stores: Stores(stores), checker: Checker::new(&w, strategy) }
    }

    fn service_of(w: &Write) -> Service {
        match w {
            Write::Product(_) | Write::Entry(_) => Service::Product,
            Write::Order(_) => Service::Order,
            Write::Payment(_) => Service::Payment,
            Write::User(_) => Service::User,
            Write::Pg(_) => Service::Pg,
            Write::Platform(_) => Service::Platform,
            Write::Saga(_) | Write::Xa(_) => Service::Orchestrator,
            Write::Prepare { .. } | Write::Resolve { .. } => panic!("tests stage nothing"),
            Write::Inbox(_) | Write::Park => panic!("tests write no inbox rows"),
        }
    }

    /// Commit one step's writes and check; returns the invariant violated.
    fn step(&mut self, writes: &[Write]) -> Option<Invariant> {
        for w in writes {
            self.stores.0[Self::service_of(w) as usize].apply(w);
            self.checker.observe(w);
        }
        // As the harness does: a quiet step is not checked, so each
        // violation below also proves a step that observed it is not quiet.
        if self.checker.step_is_quiet() {
            return None;
        }
        self.checker.after_step(&self.stores).map(|v| v.invariant)
    }

    fn steps(&mut self, steps: &[Write]) -> Option<Invariant> {
        steps.iter().find_map(|w| self.step(std::slice::from_ref(w)))
    }

    /// Apply a write the checker never hears of: a table changed behind the
    /// saga's back.
    fn sneak(&mut self, w: Write) {
        self.stores.0[Self::service_of(&w) as usize].apply(&w);
    }

    fn end(&self, answers: [Response; 3], outbox_backlog: usize) -> Option<Invariant> {
        let end = EndState {
            settled: true,
            outbox_backlog,
            answers: answers.map(Some).to_vec(),
            ..EndState::default()
        };
        self.checker.at_end(&end, &self.stores).map(|v| v.invariant)
    }
}

fn begin(order: OrderId, key: RequestKey, user: UserId) -> Write {
    let hash = req(user, 2).hash();
    Write::Entry(EntryWrite::Begin { order, key: Some(key), hash, product: P0, qty: 2 })
}
fn deduct_stock(order: OrderId) -> Write {
    Write::Product(ProductWrite::Deduct { order, product: P0, qty: 2 })
}
fn restore_stock(order: OrderId) -> Write {
    Write::Product(ProductWrite::Restore { order, product: P0, qty: 2 })
}
fn sale(order: OrderId) -> Write {
    Write::Product(ProductWrite::Sale { order, product: P0, qty: 2 })
}
fn create(order: OrderId, user: UserId, coupon: Option<CouponId>) -> Write {
    let row = Order {
        user,
        product: P0,
        qty: 2,
        coupon,
        amount: 200,
        points: 50,
        card: 150,
        state: OrderState::Pending,
    };
    Write::Order(OrderWrite::Create { order, row })
}
fn set(order: OrderId, state: OrderState) -> Write {
    Write::Order(OrderWrite::SetState { order, state })
}
fn use_coupon(order: OrderId) -> Write {
    Write::Order(OrderWrite::UseCoupon { coupon: C0, order })
}
fn pay(order: OrderId, user: UserId) -> Write {
    let row = Payment {
        user,
        card: 150,
        points: 50,
        state: PaymentState::Charging,
        cancel: false,
        attempt: 0,
    };
    Write::Payment(PaymentWrite::Create { order, row })
}
fn pay_set(order: OrderId, state: PaymentState) -> Write {
    Write::Payment(PaymentWrite::SetState { order, state })
}
fn charge(order: OrderId) -> Write {
    Write::Pg(PgWrite::Charge { key: Some(PgKey::of(order)), order, amount: 150, at_us: 0 })
}
fn refund(order: OrderId, charge: u32) -> Write {
    Write::Pg(PgWrite::Refund { charge, order, amount: 150 })
}
fn points(order: OrderId, user: UserId) -> Write {
    Write::User(UserWrite::Deduct { user, order, amount: 50 })
}
fn platform(order: OrderId) -> Write {
    Write::Platform(PlatformWrite::Receive { order, amount: 200 })
}

/// Order 0 is confirmed (card and points), order 1's card is declined and it
/// is cancelled, step by step.
fn clean_run() -> Vec<Write> {
    vec![
        begin(O0, K0, U0),
        begin(O1, K1, U1),
        deduct_stock(O0),
        deduct_stock(O1),
        create(O0, U0, None),
        create(O1, U1, None),
        pay(O0, U0),
        pay(O1, U1),
        charge(O0),
        pay_set(O0, PaymentState::Charged),
        pay_set(O1, PaymentState::Declined),
        set(O1, OrderState::Cancelled),
        restore_stock(O1),
        points(O0, U0),
        set(O0, OrderState::Confirmed),
        pay_set(O0, PaymentState::Completed),
        platform(O0),
        sale(O0),
    ]
}

/// Order 0 confirmed, order 1 refused for its declined card, and the reused
/// key refused.
const ANSWERS: [Response; 3] = [
    Response::Accepted { order: O0 },
    Response::Refused { order: O1, why: Refusal::CardDeclined },
    Response::KeyConflict,
];

#[test]
fn a_clean_run_violates_nothing() {
    let mut w = World::new();
    assert_eq!(w.steps(&clean_run()), None);
    assert!(w.checker.sagas_done());
    assert_eq!(w.end(ANSWERS, 0), None);
}

/// The clean run up to (not including) the step at `cut`.
fn clean_until(cut: usize) -> World {
    let mut w = World::new();
    assert_eq!(w.steps(&clean_run()[..cut]), None);
    w
}

#[test]
fn stock_conservation_fires_on_a_double_restore() {
    let mut w = clean_until(13);
    assert_eq!(w.step(&[restore_stock(O1)]), Some(Invariant::StockConservation));
}

#[test]
fn stock_conservation_fires_when_stock_changes_behind_the_ledger() {
    let mut w = World::new();
    w.sneak(Write::Product(ProductWrite::Restore { order: O1, product: P0, qty: 1 }));
    assert_eq!(w.step(&[begin(O0, K0, U0)]), None);
    assert_eq!(w.step(&[deduct_stock(O0)]), Some(Invariant::StockConservation));
}

#[test]
fn no_double_charge_fires_on_a_second_points_deduction() {
    let mut w = clean_until(14);
    assert_eq!(w.step(&[points(O0, U0)]), Some(Invariant::NoDoubleCharge));
}

#[test]
fn no_double_charge_fires_on_a_second_card_charge() {
    let mut w = clean_until(9);
    assert_eq!(w.step(&[charge(O0)]), Some(Invariant::NoDoubleCharge));
}

#[test]
fn money_conservation_fires_when_a_balance_changes_behind_the_ledger() {
    let mut w = clean_until(13);
    w.sneak(Write::User(UserWrite::Deduct { user: U0, order: O1, amount: 10 }));
    assert_eq!(w.step(&[points(O0, U0)]), Some(Invariant::MoneyConservation));
}

#[test]
fn money_conservation_fires_on_a_refund_of_nothing() {
    let mut w = clean_until(12);
    w.sneak(charge(O1));
    assert_eq!(w.step(&[refund(O1, 1)]), Some(Invariant::MoneyConservation));
}

#[test]
fn coupon_single_use_fires_on_a_coupon_used_by_two_live_orders() {
    let mut w = World::new();
    w.steps(&[begin(O0, K0, U0), begin(O1, K1, U1), create(O0, U0, Some(C0)), use_coupon(O0)]);
    assert_eq!(w.step(&[use_coupon(O1)]), Some(Invariant::CouponSingleUse));
}

#[test]
fn confirmed_is_complete_fires_on_a_confirmation_before_the_points() {
    let mut w = clean_until(13);
    assert_eq!(w.step(&[set(O0, OrderState::Confirmed)]), Some(Invariant::ConfirmedIsComplete));
}

#[test]
fn legal_transitions_fires_on_a_resurrected_order() {
    let mut w = clean_until(12);
    assert_eq!(w.step(&[set(O1, OrderState::Pending)]), Some(Invariant::LegalTransitions));
}

#[test]
fn legal_transitions_fires_on_a_completed_payment_refunded() {
    let mut w = clean_until(16);
    assert_eq!(w.step(&[pay_set(O0, PaymentState::Refunding)]), Some(Invariant::LegalTransitions));
}

#[test]
fn eventual_consistency_fires_on_an_order_left_pending() {
    let w = clean_until(14);
    assert_eq!(w.end(ANSWERS, 0), Some(Invariant::EventualConsistency));
}

#[test]
fn eventual_consistency_fires_on_a_cancelled_order_whose_card_stays_charged() {
    let mut w = World::new();
    let mut run = clean_run();
    run.insert(10, charge(O1)); // charged behind a timeout, then taken for a decline
    assert_eq!(w.steps(&run), None);
    assert_eq!(w.end(ANSWERS, 0), Some(Invariant::EventualConsistency));
}

#[test]
fn eventual_consistency_fires_on_an_unanswered_request() {
    let mut w = clean_until(18);
    assert_eq!(w.steps(&[]), None);
    let end = EndState {
        settled: false,
        answers: vec![Some(ANSWERS[0]), None, Some(ANSWERS[2])],
        ..EndState::default()
    };
    assert_eq!(
        w.checker.at_end(&end, &w.stores).map(|v| v.invariant),
        Some(Invariant::EventualConsistency)
    );
}

#[test]
fn exactly_once_side_effects_fires_on_a_second_delivery_to_the_data_platform() {
    let mut w = clean_until(18);
    assert_eq!(w.step(&[platform(O0)]), Some(Invariant::ExactlyOnceSideEffects));
}

#[test]
fn exactly_once_side_effects_fires_on_sales_of_an_unconfirmed_order() {
    let mut w = clean_until(13);
    assert_eq!(w.step(&[sale(O1)]), Some(Invariant::ExactlyOnceSideEffects));
}

#[test]
fn exactly_once_side_effects_fires_on_a_confirmed_order_the_platform_never_got() {
    let mut w = World::new();
    assert_eq!(w.steps(&clean_run()[..16]), None);
    assert_eq!(w.step(&[sale(O0)]), None);
    assert_eq!(w.end(ANSWERS, 0), Some(Invariant::ExactlyOnceSideEffects));
}

#[test]
fn idempotent_responses_fires_on_two_orders_for_one_key() {
    let mut w = clean_until(1);
    let again = begin(O1, K0, U0);
    assert_eq!(w.step(&[again]), Some(Invariant::IdempotentResponses));
}

#[test]
fn idempotent_responses_fires_on_a_reused_key_answered_with_the_old_response() {
    let mut w = World::new();
    assert_eq!(w.steps(&clean_run()), None);
    let answers = [ANSWERS[0], ANSWERS[1], Response::Accepted { order: O0 }];
    assert_eq!(w.end(answers, 0), Some(Invariant::IdempotentResponses));
}

#[test]
fn no_stuck_saga_fires_on_an_undrained_outbox() {
    let mut w = World::new();
    assert_eq!(w.steps(&clean_run()), None);
    assert_eq!(w.end(ANSWERS, 1), Some(Invariant::NoStuckSaga));
}

#[test]
fn no_stuck_saga_fires_on_a_payment_left_refunding() {
    let mut w = World::new();
    let mut run = clean_run();
    // Order 1's card is charged, then its refund never finishes.
    run.insert(11, pay_set(O1, PaymentState::Refunding));
    run[10] = pay_set(O1, PaymentState::Charged);
    run.insert(10, charge(O1));
    run.push(refund(O1, 1));
    assert_eq!(w.steps(&run), None);
    assert_eq!(w.end(ANSWERS, 0), Some(Invariant::NoStuckSaga));
}

#[test]
fn stock_conservation_fires_on_stock_taken_from_another_product() {
    let mut w = clean_until(2);
    let wrong = Write::Product(ProductWrite::Deduct { order: O0, product: P1, qty: 2 });
    assert_eq!(w.step(&[wrong]), Some(Invariant::StockConservation));
}

#[test]
fn stock_conservation_fires_on_an_order_recorded_for_another_product() {
    let mut w = World::new();
    let hash = req(U0, 2).hash();
    let wrong = EntryWrite::Begin { order: O0, key: Some(K0), hash, product: P1, qty: 2 };
    assert_eq!(w.step(&[Write::Entry(wrong)]), Some(Invariant::StockConservation));
}

#[test]
fn stock_conservation_fires_when_orders_hold_less_than_nothing_of_a_product() {
    let mut w = clean_until(2);
    assert_eq!(w.step(&[restore_stock(O0)]), Some(Invariant::StockConservation));
}

#[test]
fn money_conservation_fires_on_points_taken_from_another_user() {
    let mut w = clean_until(13);
    assert_eq!(w.step(&[points(O0, U1)]), Some(Invariant::MoneyConservation));
}

#[test]
fn money_conservation_fires_on_an_order_priced_off_the_price_list() {
    let mut w = clean_until(4);
    let Write::Order(OrderWrite::Create { order, mut row }) = create(O0, U0, None) else {
        unreachable!()
    };
    row.amount = 180;
    row.card = 130;
    let cheap = Write::Order(OrderWrite::Create { order, row });
    assert_eq!(w.step(&[cheap]), Some(Invariant::MoneyConservation));
}

#[test]
fn money_conservation_fires_on_a_payment_created_for_another_user() {
    let mut w = clean_until(6);
    assert_eq!(w.step(&[pay(O0, U1)]), Some(Invariant::MoneyConservation));
}

#[test]
fn no_double_charge_counts_net_effect_so_charge_refund_charge_is_one_charge() {
    let mut w = clean_until(9);
    assert_eq!(w.steps(&[refund(O0, 0), charge(O0)]), None);
    assert_eq!(w.step(&[charge(O0)]), Some(Invariant::NoDoubleCharge));
}

/// The test workload with submission 0 using user 0's coupon (worth 20).
fn with_coupon() -> World {
    let mut wl = workload();
    wl.arrivals[0].req.coupon = Some(C0);
    World::of(wl, Strategy::Orchestration)
}

fn begin_with_coupon(order: OrderId) -> Write {
    let r = Request { coupon: Some(C0), ..req(U0, 2) };
    Write::Entry(EntryWrite::Begin { order, key: Some(K0), hash: r.hash(), product: P0, qty: 2 })
}

fn create_with_coupon(order: OrderId) -> Write {
    let Write::Order(OrderWrite::Create { order, mut row }) = create(order, U0, Some(C0)) else {
        unreachable!()
    };
    (row.amount, row.card) = (180, 130);
    Write::Order(OrderWrite::Create { order, row })
}

fn restore_coupon(order: OrderId) -> Write {
    Write::Order(OrderWrite::RestoreCoupon { coupon: C0, order })
}

fn apology(order: OrderId, user: UserId) -> Write {
    Write::Order(OrderWrite::IssueCoupon { order, user, discount: 20 })
}

#[test]
fn coupon_single_use_fires_on_a_coupon_restored_twice() {
    let mut w = with_coupon();
    let run = [begin_with_coupon(O0), create_with_coupon(O0), use_coupon(O0)];
    assert_eq!(w.steps(&run), None);
    assert_eq!(w.steps(&[set(O0, OrderState::Cancelled), restore_coupon(O0)]), None);
    assert_eq!(w.step(&[restore_coupon(O0)]), Some(Invariant::CouponSingleUse));
}

#[test]
fn coupon_single_use_fires_on_a_coupon_restored_for_a_confirmed_order() {
    let mut w = with_coupon();
    let run = [begin_with_coupon(O0), create_with_coupon(O0), use_coupon(O0)];
    assert_eq!(w.steps(&run), None);
    w.sneak(set(O0, OrderState::Confirmed));
    w.checker.observe(&set(O0, OrderState::Confirmed));
    w.checker.skip_step();
    assert_eq!(w.step(&[restore_coupon(O0)]), Some(Invariant::CouponSingleUse));
}

#[test]
fn coupon_single_use_fires_on_an_order_confirmed_without_its_coupon() {
    let mut w = with_coupon();
    let run = [
        begin_with_coupon(O0),
        deduct_stock(O0),
        create_with_coupon(O0),
        Write::Payment(PaymentWrite::Create {
            order: O0,
            row: Payment {
                user: U0,
                card: 130,
                points: 50,
                state: PaymentState::Charging,
                cancel: false,
                attempt: 0,
            },
        }),
        Write::Pg(PgWrite::Charge { key: Some(PgKey::of(O0)), order: O0, amount: 130, at_us: 0 }),
        pay_set(O0, PaymentState::Charged),
        points(O0, U0),
    ];
    assert_eq!(w.steps(&run), None);
    assert_eq!(w.step(&[set(O0, OrderState::Confirmed)]), Some(Invariant::CouponSingleUse));
}

#[test]
fn coupon_single_use_fires_on_a_second_apology_coupon() {
    let mut w = clean_until(12);
    assert_eq!(w.step(&[apology(O1, U1)]), None);
    assert_eq!(w.step(&[apology(O1, U1)]), Some(Invariant::CouponSingleUse));
}

#[test]
fn coupon_single_use_fires_on_an_apology_to_another_user() {
    let mut w = clean_until(12);
    assert_eq!(w.step(&[apology(O1, U0)]), Some(Invariant::CouponSingleUse));
}

#[test]
fn coupon_single_use_fires_on_an_apology_for_a_confirmed_order() {
    let mut w = clean_until(17);
    assert_eq!(w.step(&[apology(O0, U0)]), Some(Invariant::CouponSingleUse));
}

fn finished() -> World {
    let mut w = World::new();
    assert_eq!(w.steps(&clean_run()), None);
    w
}

fn end_with(w: &World, answers: [Response; 3]) -> Option<Invariant> {
    w.end(answers, 0)
}

#[test]
fn answer_matches_outcome_fires_on_accepted_for_a_cancelled_order() {
    let answers = [ANSWERS[0], Response::Accepted { order: O1 }, ANSWERS[2]];
    assert_eq!(end_with(&finished(), answers), Some(Invariant::AnswerMatchesOutcome));
}

#[test]
fn answer_matches_outcome_allows_the_choreography_to_accept_before_it_decides() {
    let mut w = World::of(workload(), Strategy::Choreography);
    assert_eq!(w.steps(&clean_run()), None);
    let answers = [ANSWERS[0], Response::Accepted { order: O1 }, ANSWERS[2]];
    assert_eq!(w.end(answers, 0), None);
}

#[test]
fn answer_matches_outcome_fires_on_a_refusal_for_a_confirmed_order() {
    let answers =
        [Response::Refused { order: O0, why: Refusal::Unavailable }, ANSWERS[1], ANSWERS[2]];
    assert_eq!(end_with(&finished(), answers), Some(Invariant::AnswerMatchesOutcome));
}

#[test]
fn answer_matches_outcome_fires_on_a_refusal_with_a_false_reason() {
    // Order 1 held its stock before its card was declined.
    let answers =
        [ANSWERS[0], Response::Refused { order: O1, why: Refusal::OutOfStock }, ANSWERS[2]];
    assert_eq!(end_with(&finished(), answers), Some(Invariant::AnswerMatchesOutcome));
}

#[test]
fn answer_matches_outcome_fires_on_an_answer_about_another_order() {
    let answers = [Response::Accepted { order: O1 }, ANSWERS[1], ANSWERS[2]];
    assert_eq!(end_with(&finished(), answers), Some(Invariant::AnswerMatchesOutcome));
}

#[test]
fn answer_matches_outcome_fires_on_a_key_conflict_for_the_same_request() {
    let answers = [Response::KeyConflict, ANSWERS[1], ANSWERS[2]];
    assert_eq!(end_with(&finished(), answers), Some(Invariant::AnswerMatchesOutcome));
}
