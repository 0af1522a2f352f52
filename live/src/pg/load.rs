//! A process's tables read back into the domain's [`Store`]: how a service
//! rebuilds its in-memory mirror at boot (and after a commit whose outcome
//! was unknown), and how the checker reads every service in one snapshot.
//! It reads whatever schema the session's `search_path` names.

use std::collections::BTreeMap;

use domain::entry::EntryTables;
use domain::monolith::MonolithTables;
use domain::orchestrator::{Saga, SagaTables};
use domain::order::{Coupon, CouponState, Order, OrderState, OrderTables};
use domain::payment::{Payment, PaymentState, PaymentTables};
use domain::pg::{Charge, PgTables};
use domain::platform::PlatformTables;
use domain::product::{Product, ProductTables, Reservation, ReservationState};
use domain::user::UserTables;
use domain::{CouponId, EventId, OrderId, PgKey, ProductId, RequestKey, Service, Tables, UserId};
use tokio_postgres::GenericClient;

use crate::deploy::Process;
use crate::pg::{call, CallError, Store};

type R<T> = std::result::Result<T, CallError>;

async fn rows<C: GenericClient>(c: &C, sql: &str) -> R<Vec<tokio_postgres::Row>> {
    call(c.query(sql, &[])).await
}

/// A value the schema's CHECK constraints refuse: the schema and this
/// reader disagree, which is a bug.
fn bad(what: &str, v: &str) -> ! {
    panic!("{what} {v:?} is not one the schema allows")
}

fn order_state(s: &str) -> OrderState {
    match s {
        "pending" => OrderState::Pending,
        "confirmed" => OrderState::Confirmed,
        "cancelled" => OrderState::Cancelled,
        "rejected" => OrderState::Rejected,
        other => bad("order state", other),
    }
}

fn payment_state(s: &str) -> PaymentState {
    use PaymentState::*;
    [Charging, Charged, Completed, Declined, Refunding, Refunded]
        .into_iter()
        .find(|p| p.name() == s)
        .unwrap_or_else(|| bad("payment state", s))
}

fn reservation_state(s: &str) -> ReservationState {
    use ReservationState::*;
    [Held, Rejected, Restored, Void]
        .into_iter()
        .find(|r| crate::pg::writes::reservation_state(*r) == s)
        .unwrap_or_else(|| bad("reservation state", s))
}

async fn product<C: GenericClient>(c: &C) -> R<ProductTables> {
    let mut t = ProductTables::default();
    for r in rows(c, "SELECT price, stock, sales FROM products ORDER BY id").await? {
        let (price, stock, sales): (i64, i64, i64) = (r.get(0), r.get(1), r.get(2));
        t.products.push(Product { price: price as u64, stock: stock as u64 });
        t.sales.push(sales as u64);
    }
    let sql = "SELECT order_id, product, qty, state, sold FROM reservations";
    for r in rows(c, sql).await? {
        let order = OrderId(r.get::<_, i32>(0) as u32);
        let res = Reservation {
            product: ProductId(r.get::<_, i32>(1) as u32),
            qty: r.get::<_, i32>(2) as u32,
            state: reservation_state(r.get(3)),
            sold: r.get(4),
        };
        t.reservations.insert(order, res);
    }
    Ok(t)
}

async fn order<C: GenericClient>(c: &C) -> R<OrderTables> {
    let mut t = OrderTables::default();
    let sql = "SELECT id, user_id, product, qty, coupon, amount, points, card, state FROM orders";
    for r in rows(c, sql).await? {
        let row = Order {
            user: UserId(r.get::<_, i32>(1) as u32),
            product: ProductId(r.get::<_, i32>(2) as u32),
            qty: r.get::<_, i32>(3) as u32,
            coupon: r.get::<_, Option<i32>>(4).map(|c| CouponId(c as u32)),
            amount: r.get::<_, i64>(5) as u64,
            points: r.get::<_, i64>(6) as u64,
            card: r.get::<_, i64>(7) as u64,
            state: order_state(r.get(8)),
        };
        t.orders.insert(OrderId(r.get::<_, i32>(0) as u32), row);
    }
    let sql = "SELECT user_id, discount, state, order_id FROM coupons ORDER BY id";
    for r in rows(c, sql).await? {
        let state = match r.get::<_, &str>(2) {
            "used" => CouponState::Used,
            _ => CouponState::Issued,
        };
        t.coupons.push(Coupon {
            user: UserId(r.get::<_, i32>(0) as u32),
            discount: r.get::<_, i64>(1) as u64,
            state,
            order: r.get::<_, Option<i32>>(3).map(|o| OrderId(o as u32)),
        });
    }
    for r in rows(c, "SELECT order_id, coupon FROM apologies").await? {
        let (o, coupon): (i32, i32) = (r.get(0), r.get(1));
        t.apologies.insert(OrderId(o as u32), CouponId(coupon as u32));
    }
    Ok(t)
}

async fn payment<C: GenericClient>(c: &C) -> R<PaymentTables> {
    let mut t = PaymentTables::default();
    let sql = "SELECT order_id, user_id, card, points, state, cancel, attempt FROM payments";
    for r in rows(c, sql).await? {
        let p = Payment {
            user: UserId(r.get::<_, i32>(1) as u32),
            card: r.get::<_, i64>(2) as u64,
            points: r.get::<_, i64>(3) as u64,
            state: payment_state(r.get(4)),
            cancel: r.get(5),
            attempt: r.get::<_, i32>(6) as u32,
        };
        t.insert(OrderId(r.get::<_, i32>(0) as u32), p);
    }
    Ok(t)
}

async fn user<C: GenericClient>(c: &C) -> R<UserTables> {
    let mut t = UserTables::default();
    for r in rows(c, "SELECT points FROM balances ORDER BY user_id").await? {
        t.balances.push(r.get::<_, i64>(0) as u64);
    }
    for r in rows(c, "SELECT order_id, points FROM decisions").await? {
        let points = r.get::<_, Option<i64>>(1).map(|p| p as u64);
        t.decided.insert(OrderId(r.get::<_, i32>(0) as u32), points);
    }
    Ok(t)
}

async fn platform<C: GenericClient>(c: &C) -> R<PlatformTables> {
    let mut t = PlatformTables::default();
    for r in rows(c, "SELECT order_id, received FROM platform_orders").await? {
        t.orders.insert(OrderId(r.get::<_, i32>(0) as u32), r.get::<_, i32>(1) as u32);
    }
    Ok(t)
}

async fn pg<C: GenericClient>(c: &C) -> R<PgTables> {
    let mut t = PgTables::default();
    for r in rows(c, "SELECT order_id, amount, refunded FROM charges ORDER BY id").await? {
        t.charges.push(Charge {
            order: OrderId(r.get::<_, i32>(0) as u32),
            amount: r.get::<_, i64>(1) as u64,
            refunded: r.get(2),
        });
    }
    for r in rows(c, "SELECT key, charge, at_us FROM pg_keys").await? {
        let charge = r.get::<_, Option<i32>>(1).map(|i| i as usize);
        t.keys.insert(PgKey(r.get::<_, i64>(0) as u64), (charge, r.get::<_, i64>(2) as u64));
    }
    Ok(t)
}

async fn sagas<C: GenericClient>(c: &C) -> R<SagaTables> {
    let mut t = SagaTables::default();
    for r in rows(c, "SELECT order_id, saga FROM sagas").await? {
        let saga: Saga = serde_json::from_value(r.get(1)).expect("sagas are stored as written");
        t.sagas.insert(OrderId(r.get::<_, i32>(0) as u32), saga);
    }
    Ok(t)
}

async fn entry<C: GenericClient>(c: &C) -> R<EntryTables> {
    let mut t = EntryTables::default();
    for r in rows(c, "SELECT next_order FROM entry_counter").await? {
        t.next_order = r.get::<_, i32>(0) as u32;
    }
    for r in rows(c, "SELECT key, hash, order_id, answer FROM entry_keys").await? {
        let answer = r
            .get::<_, Option<serde_json::Value>>(3)
            .map(|v| serde_json::from_value(v).expect("answers are stored as written"));
        let key = RequestKey(r.get::<_, i64>(0) as u64);
        let order = OrderId(r.get::<_, i32>(2) as u32);
        t.keys.insert(key, (r.get::<_, i64>(1) as u64, order, answer));
    }
    Ok(t)
}

/// Read the tables of process `p` (the session's schema) into a store.
pub async fn store<C: GenericClient>(c: &C, p: Process) -> R<Store> {
    let tables = match p {
        Process::Gateway => panic!("the gateway keeps no tables"),
        Process::Monolith => Tables::Monolith(Box::new(MonolithTables {
            product: product(c).await?,
            order: order(c).await?,
            payment: payment(c).await?,
            user: user(c).await?,
            platform: platform(c).await?,
        })),
        Process::Service(s) => match s {
            Service::Product => Tables::Product(product(c).await?),
            Service::Order => Tables::Order(order(c).await?),
            Service::Payment => Tables::Payment(payment(c).await?),
            Service::User => Tables::User(user(c).await?),
            Service::Pg => Tables::Pg(pg(c).await?),
            Service::Platform => Tables::Platform(platform(c).await?),
            Service::Orchestrator => Tables::Saga(sagas(c).await?),
        },
    };
    let mut store = Store::new(tables);
    store.entry = entry(c).await?;
    store.inbox = rows(c, "SELECT event_id FROM inbox")
        .await?
        .iter()
        .map(|r| EventId(r.get::<_, i64>(0) as u64))
        .collect();
    let parked = rows(c, "SELECT count(*) FROM parked").await?;
    store.parked = parked.first().map_or(0, |r| r.get::<_, i64>(0) as u64);
    store.prepared = BTreeMap::new();
    Ok(store)
}
