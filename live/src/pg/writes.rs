//! A domain write as SQL: the statements that make a service's tables what
//! [`domain::Store::apply`] makes of its in-memory ones. The port contract
//! tests hold the two to each other: the same writes, applied both ways,
//! read back equal.

use domain::entry::EntryWrite;
use domain::order::{CouponState, OrderState, OrderWrite};
use domain::payment::{PaymentState, PaymentWrite};
use domain::pg::PgWrite;
use domain::platform::PlatformWrite;
use domain::product::{ProductWrite, ReservationState};
use domain::user::UserWrite;
use domain::Write;
use tokio_postgres::types::ToSql;

/// A statement's parameter.
#[derive(Clone, Debug, PartialEq)]
pub enum Param {
    I32(i32),
    I64(i64),
    OptI32(Option<i32>),
    OptI64(Option<i64>),
    Text(&'static str),
    OptText(Option<String>),
    Bool(bool),
    Json(serde_json::Value),
}

impl Param {
    pub fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Param::I32(v) => v,
            Param::I64(v) => v,
            Param::OptI32(v) => v,
            Param::OptI64(v) => v,
            Param::Text(v) => v,
            Param::OptText(v) => v,
            Param::Bool(v) => v,
            Param::Json(v) => v,
        }
    }
}

/// One statement of a transaction. A statement that must not go through
/// (an order numbered out of sequence) raises an error, which aborts the
/// transaction: nothing of it applies.
#[derive(Clone, Debug, PartialEq)]
pub struct Stmt {
    pub sql: &'static str,
    pub params: Vec<Param>,
}

fn stmt(sql: &'static str, params: Vec<Param>) -> Stmt {
    Stmt { sql, params }
}

/// A u64 identifier stored in a signed column, bit for bit.
pub fn word(v: u64) -> i64 {
    v as i64
}

pub fn reservation_state(s: ReservationState) -> &'static str {
    match s {
        ReservationState::Held => "held",
        ReservationState::Rejected => "rejected",
        ReservationState::Restored => "restored",
        ReservationState::Void => "void",
    }
}

pub fn coupon_state(s: CouponState) -> &'static str {
    match s {
        CouponState::Issued => "issued",
        CouponState::Used => "used",
    }
}

const RESERVE: &str = "INSERT INTO reservations (order_id, product, qty, state, sold)
    VALUES ($1, $2, $3, $4, false) ON CONFLICT (order_id) DO UPDATE
    SET product = EXCLUDED.product, qty = EXCLUDED.qty, state = EXCLUDED.state, sold = false";
const STOCK: &str = "UPDATE products SET stock = stock + $2 WHERE id = $1";
/// The planted stale-read update: the stock the handler read, minus the
/// quantity, written back whatever happened since.
const STOCK_SET: &str = "UPDATE products SET stock = $2 WHERE id = $1";
const RESERVATION_STATE: &str = "UPDATE reservations SET state = $2 WHERE order_id = $1";
const SALE: &str = "UPDATE products SET sales = sales + $2 WHERE id = $1";
const SOLD: &str = "UPDATE reservations SET sold = true WHERE order_id = $1";
const ORDER_PUT: &str =
    "INSERT INTO orders (id, user_id, product, qty, coupon, amount, points, card, state)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO UPDATE
    SET user_id = EXCLUDED.user_id, product = EXCLUDED.product, qty = EXCLUDED.qty,
        coupon = EXCLUDED.coupon, amount = EXCLUDED.amount, points = EXCLUDED.points,
        card = EXCLUDED.card, state = EXCLUDED.state";
const ORDER_STATE: &str = "UPDATE orders SET state = $2 WHERE id = $1";
const COUPON: &str = "UPDATE coupons SET state = $2, order_id = $3 WHERE id = $1";
const APOLOGY: &str = "WITH c AS (
        INSERT INTO coupons (id, user_id, discount, state)
        SELECT count(*), $2, $3, 'issued' FROM coupons RETURNING id)
    INSERT INTO apologies (order_id, coupon) SELECT $1, id FROM c
    ON CONFLICT (order_id) DO UPDATE SET coupon = EXCLUDED.coupon";
const PAYMENT_PUT: &str =
    "INSERT INTO payments (order_id, user_id, card, points, state, cancel, attempt)
    VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (order_id) DO UPDATE
    SET user_id = EXCLUDED.user_id, card = EXCLUDED.card, points = EXCLUDED.points,
        state = EXCLUDED.state, cancel = EXCLUDED.cancel, attempt = EXCLUDED.attempt";
const PAYMENT_STATE: &str = "UPDATE payments SET state = $2 WHERE order_id = $1";
const PAYMENT_CANCEL: &str = "UPDATE payments SET cancel = true WHERE order_id = $1";
const PAYMENT_RETRY: &str =
    "UPDATE payments SET state = 'charging', attempt = $2 WHERE order_id = $1";
const BALANCE: &str = "UPDATE balances SET points = points + $2 WHERE user_id = $1";
const DECISION: &str = "INSERT INTO decisions (order_id, points) VALUES ($1, $2)
    ON CONFLICT (order_id) DO UPDATE SET points = EXCLUDED.points";
const CHARGE: &str = "WITH c AS (
        INSERT INTO charges (id, order_id, amount, refunded)
        SELECT count(*), $1, $2, false FROM charges RETURNING id)
    INSERT INTO pg_keys (key, charge, at_us) SELECT $3, id, $4 FROM c WHERE $3::int8 IS NOT NULL
    ON CONFLICT (key) DO UPDATE SET charge = EXCLUDED.charge, at_us = EXCLUDED.at_us";
const CHARGE_KEYLESS: &str = "INSERT INTO charges (id, order_id, amount, refunded)
    SELECT count(*), $1, $2, false FROM charges";
const DECLINE: &str = "INSERT INTO pg_keys (key, charge, at_us) VALUES ($1, NULL, $2)
    ON CONFLICT (key) DO UPDATE SET charge = NULL, at_us = EXCLUDED.at_us";
const REFUND: &str = "UPDATE charges SET refunded = true WHERE id = $1";
const PLATFORM_RECORD: &str =
    "INSERT INTO platform_orders (order_id, received) VALUES ($1, 0) ON CONFLICT DO NOTHING";
const PLATFORM_RECEIVE: &str = "INSERT INTO platform_orders (order_id, received) VALUES ($1, 1)
    ON CONFLICT (order_id) DO UPDATE SET received = platform_orders.received + 1";
const SAGA: &str = "INSERT INTO sagas (order_id, phase, saga) VALUES ($1, $2, $3)
    ON CONFLICT (order_id) DO UPDATE SET phase = EXCLUDED.phase, saga = EXCLUDED.saga";
const ENTRY_NEXT: &str = "SELECT take_order_number($1)";
const ENTRY_KEY: &str = "INSERT INTO entry_keys (key, hash, order_id, answer)
    VALUES ($1, $2, $3, NULL) ON CONFLICT (key) DO UPDATE
    SET hash = EXCLUDED.hash, order_id = EXCLUDED.order_id, answer = NULL";
const ENTRY_ANSWER: &str = "UPDATE entry_keys SET answer = $2 WHERE key = $1";
const INBOX: &str = "INSERT INTO inbox (event_id) VALUES ($1)";
const PARK: &str = "INSERT INTO parked DEFAULT VALUES";

fn id(v: u32) -> Param {
    Param::I32(v as i32)
}

fn n(v: u64) -> Param {
    Param::I64(v as i64)
}

/// The statements of one write, appended to `out`. A two-phase-commit
/// write has no live form: that strategy does not run live.
pub fn statements(w: &Write, out: &mut Vec<Stmt>) -> Result<(), String> {
    match *w {
        Write::Product(p) => product(p, out),
        Write::Order(o) => order(o, out),
        Write::Payment(p) => payment(p, out),
        Write::User(u) => user(u, out),
        Write::Pg(p) => pg(p, out),
        Write::Platform(PlatformWrite::Record { order }) => {
            out.push(stmt(PLATFORM_RECORD, vec![id(order.0)]))
        }
        Write::Platform(PlatformWrite::Receive { order, .. }) => {
            out.push(stmt(PLATFORM_RECEIVE, vec![id(order.0)]))
        }
        Write::Saga(domain::orchestrator::SagaWrite::Put { order, saga }) => {
            let json = serde_json::to_value(saga).expect("a saga serialises");
            let phase = Param::Text(phase_name(saga.phase));
            out.push(stmt(SAGA, vec![id(order.0), phase, Param::Json(json)]));
        }
        Write::Entry(e) => entry(e, out),
        Write::Inbox(ev) => out.push(stmt(INBOX, vec![Param::I64(word(ev.0))])),
        Write::Park => out.push(stmt(PARK, vec![])),
        Write::Xa(_) | Write::Prepare { .. } | Write::Resolve { .. } => {
            return Err(format!("{w:?}: two-phase commit does not run live"))
        }
    }
    Ok(())
}

pub fn phase_name(p: domain::orchestrator::Phase) -> &'static str {
    use domain::orchestrator::Phase::*;
    match p {
        Reserve => "reserve",
        Create => "create",
        Pay => "pay",
        Deduct => "deduct",
        Confirm => "confirm",
        Complete => "complete",
        Receive => "receive",
        RecordSale => "record-sale",
        RefundCard => "refund-card",
        CancelOrder => "cancel-order",
        ReleaseStock => "release-stock",
        RecordRejected => "record-rejected",
        IssueCoupon => "issue-coupon",
        Done => "done",
    }
}

fn product(w: ProductWrite, out: &mut Vec<Stmt>) {
    let res = |order: domain::OrderId, product: domain::ProductId, qty: u32, s| {
        stmt(RESERVE, vec![id(order.0), id(product.0), id(qty), Param::Text(reservation_state(s))])
    };
    match w {
        ProductWrite::Deduct { order, product, qty } => {
            out.push(res(order, product, qty, ReservationState::Held));
            out.push(stmt(STOCK, vec![id(product.0), Param::I64(-(qty as i64))]));
        }
        ProductWrite::SetStock { order, product, qty, stock } => {
            out.push(res(order, product, qty, ReservationState::Held));
            out.push(stmt(STOCK_SET, vec![id(product.0), n(stock)]));
        }
        ProductWrite::Reject { order, product, qty } => {
            out.push(res(order, product, qty, ReservationState::Rejected))
        }
        ProductWrite::Void { order, product, qty } => {
            out.push(res(order, product, qty, ReservationState::Void))
        }
        ProductWrite::Restore { order, product, qty } => {
            out.push(stmt(STOCK, vec![id(product.0), Param::I64(qty as i64)]));
            let restored = Param::Text(reservation_state(ReservationState::Restored));
            out.push(stmt(RESERVATION_STATE, vec![id(order.0), restored]));
        }
        ProductWrite::Sale { order, product, qty } => {
            out.push(stmt(SALE, vec![id(product.0), Param::I64(qty as i64)]));
            out.push(stmt(SOLD, vec![id(order.0)]));
        }
    }
}

fn order(w: OrderWrite, out: &mut Vec<Stmt>) {
    let state = |s: OrderState| Param::Text(s.name());
    match w {
        OrderWrite::Create { order, row } => out.push(stmt(
            ORDER_PUT,
            vec![
                id(order.0),
                id(row.user.0),
                id(row.product.0),
                id(row.qty),
                Param::OptI32(row.coupon.map(|c| c.0 as i32)),
                n(row.amount),
                n(row.points),
                n(row.card),
                state(row.state),
            ],
        )),
        OrderWrite::SetState { order, state: s } => {
            out.push(stmt(ORDER_STATE, vec![id(order.0), state(s)]))
        }
        OrderWrite::UseCoupon { coupon, order } => out.push(stmt(
            COUPON,
            vec![
                id(coupon.0),
                Param::Text(coupon_state(CouponState::Used)),
                Param::OptI32(Some(order.0 as i32)),
            ],
        )),
        OrderWrite::RestoreCoupon { coupon, .. } => out.push(stmt(
            COUPON,
            vec![id(coupon.0), Param::Text(coupon_state(CouponState::Issued)), Param::OptI32(None)],
        )),
        OrderWrite::IssueCoupon { order, user, discount } => {
            out.push(stmt(APOLOGY, vec![id(order.0), id(user.0), n(discount)]))
        }
    }
}

fn payment(w: PaymentWrite, out: &mut Vec<Stmt>) {
    let state = |s: PaymentState| Param::Text(s.name());
    match w {
        PaymentWrite::Create { order, row } => out.push(stmt(
            PAYMENT_PUT,
            vec![
                id(order.0),
                id(row.user.0),
                n(row.card),
                n(row.points),
                state(row.state),
                Param::Bool(row.cancel),
                id(row.attempt),
            ],
        )),
        PaymentWrite::SetState { order, state: s } => {
            out.push(stmt(PAYMENT_STATE, vec![id(order.0), state(s)]))
        }
        PaymentWrite::RequestCancel { order } => out.push(stmt(PAYMENT_CANCEL, vec![id(order.0)])),
        PaymentWrite::Retry { order, attempt } => {
            out.push(stmt(PAYMENT_RETRY, vec![id(order.0), id(attempt)]))
        }
    }
}

fn user(w: UserWrite, out: &mut Vec<Stmt>) {
    match w {
        UserWrite::Deduct { user, order, amount } => {
            out.push(stmt(BALANCE, vec![id(user.0), Param::I64(-(amount as i64))]));
            out.push(stmt(DECISION, vec![id(order.0), Param::OptI64(Some(amount as i64))]));
        }
        UserWrite::Short { order, .. } => {
            out.push(stmt(DECISION, vec![id(order.0), Param::OptI64(None)]))
        }
        UserWrite::Refund { user, order, amount } => {
            out.push(stmt(BALANCE, vec![id(user.0), n(amount)]));
            out.push(stmt(DECISION, vec![id(order.0), Param::OptI64(None)]));
        }
    }
}

fn pg(w: PgWrite, out: &mut Vec<Stmt>) {
    match w {
        PgWrite::Charge { key: Some(k), order, amount, at_us } => out.push(stmt(
            CHARGE,
            vec![id(order.0), n(amount), Param::OptI64(Some(word(k.0))), n(at_us)],
        )),
        PgWrite::Charge { key: None, order, amount, .. } => {
            out.push(stmt(CHARGE_KEYLESS, vec![id(order.0), n(amount)]))
        }
        PgWrite::Decline { key: Some(k), at_us, .. } => {
            out.push(stmt(DECLINE, vec![Param::I64(word(k.0)), n(at_us)]))
        }
        PgWrite::Decline { key: None, .. } => {}
        PgWrite::Refund { charge, .. } => out.push(stmt(REFUND, vec![id(charge)])),
    }
}

fn entry(w: EntryWrite, out: &mut Vec<Stmt>) {
    match w {
        EntryWrite::Begin { order, key, hash, .. } => {
            out.push(stmt(ENTRY_NEXT, vec![id(order.0)]));
            if let Some(k) = key {
                out.push(stmt(
                    ENTRY_KEY,
                    vec![Param::I64(word(k.0)), Param::I64(word(hash)), id(order.0)],
                ));
            }
        }
        EntryWrite::Answer { key: Some(k), response, .. } => {
            let json = serde_json::to_value(response).expect("a response serialises");
            out.push(stmt(ENTRY_ANSWER, vec![Param::I64(word(k.0)), Param::Json(json)]));
        }
        EntryWrite::Answer { key: None, .. } => {}
    }
}
