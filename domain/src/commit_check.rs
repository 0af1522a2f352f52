//! What a commit checks when its handler read the tables before another
//! instance of the same service committed: the optimistic checks the
//! domain chose, table by table, as a database at READ COMMITTED would run
//! them with version columns, unique keys and guarded updates.
//!
//! | table | check at commit |
//! |---|---|
//! | inbox | unique key on the event id (unless the planted bug drops it) |
//! | entry record | unique key on the request key; the order sequence by version |
//! | stock, points balances | guarded update: `stock = stock - qty WHERE stock >= qty` |
//! | reservations, orders, coupons, apologies, payments, points decided, sagas, 2PC log, prepared changes | row version: the row must be as the handler read it |
//! | rows a prepared change locks (two-phase commit) | the lock, taken at commit: no other order's prepared change holds it |
//! | sales, data platform, parked letters | none: plain increments and inserts, made once by the inbox |
//!
//! A conflict refuses the whole commit, and nothing applies. The caller
//! takes it as any failed commit: a consumer retries the record, a caller
//! of a command or a request retries on its timeout, and the recovery pass
//! takes up what a timer was driving.
//!
//! The live world runs one instance of each service, whose handlers read
//! and commit with nothing in between; PostgreSQL's primary keys and the
//! fence give the same guarantees there.

use crate::entry::EntryWrite;
use crate::order::OrderWrite;
use crate::payment::PaymentWrite;
use crate::product::ProductWrite;
use crate::tables::{Store, Tables, Write};
use crate::user::UserWrite;

/// Whether a commit of `writes`, decided by a handler that read `read`,
/// must be refused now that the tables are `now`.
pub fn conflicts(read: &Store, now: &Store, writes: &[Write]) -> bool {
    writes.iter().any(|w| conflict(read, now, w))
}

/// The check of one write.
fn conflict(read: &Store, now: &Store, w: &Write) -> bool {
    // A row version check: the row is as the handler read it.
    macro_rules! same {
        ($get:expr) => {{
            let get = $get;
            get(read) != get(now)
        }};
    }
    match *w {
        Write::Inbox(id) => now.unique_inbox && now.inbox.contains(&id),
        Write::Park => false,
        Write::Entry(EntryWrite::Begin { key, .. }) => {
            read.entry.next_order != now.entry.next_order
                || key.is_some_and(|k| now.entry.keys.contains_key(&k))
        }
        Write::Entry(EntryWrite::Answer { key, .. }) => {
            same!(|s: &Store| key.and_then(|k| s.entry.keys.get(&k).copied()))
        }
        // A prepared change takes its row's lock at commit.
        Write::Prepare { order, intent } => {
            same!(|s: &Store| s.prepared.get(&order).copied())
                || crate::two_phase::lock_taken(now, order, &intent)
        }
        Write::Resolve { order } => same!(|s: &Store| s.prepared.get(&order).copied()),
        Write::Product(p) => {
            let reservation = |order| same!(|s: &Store| product_row(s, order));
            match p {
                ProductWrite::Deduct { order, product, qty } => {
                    let stock = now.product().map_or(0, |t| t.products[product.index()].stock);
                    stock < qty as u64 || reservation(order)
                }
                // The planted stale-read update writes what it computed,
                // whatever happened to the stock since it read it.
                ProductWrite::SetStock { order, .. }
                | ProductWrite::Reject { order, .. }
                | ProductWrite::Void { order, .. }
                | ProductWrite::Restore { order, .. } => reservation(order),
                ProductWrite::Sale { order, .. } => {
                    same!(|s: &Store| product_row(s, order).map(|r| r.sold))
                }
            }
        }
        Write::User(u) => {
            let (UserWrite::Deduct { order, .. }
            | UserWrite::Short { order, .. }
            | UserWrite::Refund { order, .. }) = u;
            let decided = same!(|s: &Store| s.user().and_then(|t| t.decided.get(&order).copied()));
            match u {
                UserWrite::Deduct { user, amount, .. } => {
                    let balance = now.user().map_or(0, |t| t.balances[user.index()]);
                    balance < amount || decided
                }
                _ => decided,
            }
        }
        Write::Order(o) => match o {
            OrderWrite::Create { order, .. } | OrderWrite::SetState { order, .. } => {
                same!(|s: &Store| s.order().and_then(|t| t.orders.get(&order).copied()))
            }
            OrderWrite::UseCoupon { coupon, .. } | OrderWrite::RestoreCoupon { coupon, .. } => {
                same!(|s: &Store| s.order().and_then(|t| t.coupons.get(coupon.index()).copied()))
            }
            OrderWrite::IssueCoupon { order, .. } => {
                same!(|s: &Store| s.order().and_then(|t| t.apologies.get(&order).copied()))
            }
        },
        Write::Payment(p) => {
            let (PaymentWrite::Create { order, .. }
            | PaymentWrite::SetState { order, .. }
            | PaymentWrite::RequestCancel { order, .. }
            | PaymentWrite::Retry { order, .. }) = p;
            same!(|s: &Store| s.payment().and_then(|t| t.payments.get(&order).copied()))
        }
        Write::Saga(crate::orchestrator::SagaWrite::Put { order, .. }) => {
            same!(|s: &Store| match &s.tables {
                Tables::Saga(t) => t.sagas.get(&order).copied(),
                _ => None,
            })
        }
        Write::Xa(crate::two_phase::XaWrite::Put { order, .. }) => {
            same!(|s: &Store| match &s.tables {
                Tables::Xa(t) => t.txs.get(&order).copied(),
                _ => None,
            })
        }
        // The payment gateway and the data platform run outside our
        // services: the gateway is one node; the platform's ingest is an
        // append the inbox makes happen once.
        Write::Pg(_) | Write::Platform(_) => false,
    }
}

fn product_row(s: &Store, order: crate::OrderId) -> Option<crate::product::Reservation> {
    s.product().and_then(|t| t.reservations.get(&order).copied())
}
