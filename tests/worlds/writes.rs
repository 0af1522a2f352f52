//! Transactions of domain writes that the domain could commit: drawn from a
//! seed against a working copy of the tables, so every write is valid where
//! it lands (stock and balances never below zero, states set on rows that
//! exist, orders numbered in sequence, inbox ids new). Every kind of write
//! of the monolith's tables (which hold Product's, Order's, Payment's,
//! User's and the data platform's), the entry record, the inbox and parked
//! dead letters appears.

use domain::entry::EntryWrite;
use domain::order::{Order, OrderState, OrderWrite};
use domain::payment::{Payment, PaymentState, PaymentWrite};
use domain::platform::PlatformWrite;
use domain::product::ProductWrite;
use domain::user::UserWrite;
use domain::{CouponId, EventId, OrderId, ProductId, RequestKey, Response, Store, UserId, Write};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn one(rng: &mut ChaCha8Rng, s: &Store, next_inbox: &mut u64) -> Option<Write> {
    let m = s.product()?;
    let (o, p, u) = (s.order()?, s.payment()?, s.user()?);
    let order = OrderId(rng.gen_range(0..12));
    let product = ProductId(rng.gen_range(0..m.products.len() as u32));
    let user = UserId(rng.gen_range(0..u.balances.len() as u32));
    let qty = rng.gen_range(1..4);
    let states = [OrderState::Pending, OrderState::Confirmed, OrderState::Cancelled];
    let pstates = [PaymentState::Charging, PaymentState::Charged, PaymentState::Refunded];
    Some(match rng.gen_range(0..23) {
        0 => {
            let key = rng.gen_bool(0.8).then(|| RequestKey(rng.gen()));
            let order = OrderId(s.entry.next_order);
            Write::Entry(EntryWrite::Begin { order, key, hash: rng.gen(), product, qty })
        }
        1 => {
            let (&key, &(_, order, _)) = s.entry.keys.iter().next()?;
            let response = match rng.gen_bool(0.5) {
                true => Response::Accepted { order },
                false => Response::KeyConflict,
            };
            Write::Entry(EntryWrite::Answer { order, key: Some(key), response })
        }
        2 if m.products[product.index()].stock >= qty as u64 => {
            Write::Product(ProductWrite::Deduct { order, product, qty })
        }
        3 => Write::Product(ProductWrite::Reject { order, product, qty }),
        4 => Write::Product(ProductWrite::Void { order, product, qty }),
        5 => Write::Product(ProductWrite::Restore { order, product, qty }),
        6 => Write::Product(ProductWrite::Sale { order, product, qty }),
        7 => {
            let coupon = (!o.coupons.is_empty() && rng.gen_bool(0.3))
                .then(|| CouponId(rng.gen_range(0..o.coupons.len() as u32)));
            let (amount, points) = (rng.gen_range(0..500), rng.gen_range(0..100));
            let row = Order {
                user,
                product,
                qty,
                coupon,
                amount,
                points,
                card: amount.saturating_sub(points),
                state: states[rng.gen_range(0..3)],
            };
            Write::Order(OrderWrite::Create { order, row })
        }
        8 if o.orders.contains_key(&order) => {
            Write::Order(OrderWrite::SetState { order, state: states[rng.gen_range(0..3)] })
        }
        9 if !o.coupons.is_empty() => {
            let coupon = CouponId(rng.gen_range(0..o.coupons.len() as u32));
            Write::Order(OrderWrite::UseCoupon { coupon, order })
        }
        10 if !o.coupons.is_empty() => {
            let coupon = CouponId(rng.gen_range(0..o.coupons.len() as u32));
            Write::Order(OrderWrite::RestoreCoupon { coupon, order })
        }
        11 => Write::Order(OrderWrite::IssueCoupon { order, user, discount: rng.gen_range(1..50) }),
        12 => {
            let card = rng.gen_range(0..300);
            let row = Payment {
                user,
                card,
                points: rng.gen_range(0..50),
                state: pstates[rng.gen_range(0..3)],
                cancel: rng.gen_bool(0.2),
                attempt: rng.gen_range(0..3),
            };
            Write::Payment(PaymentWrite::Create { order, row })
        }
        13 if p.payments.contains_key(&order) => {
            Write::Payment(PaymentWrite::SetState { order, state: pstates[rng.gen_range(0..3)] })
        }
        14 if p.payments.contains_key(&order) => {
            Write::Payment(PaymentWrite::RequestCancel { order })
        }
        15 if p.payments.contains_key(&order) => {
            Write::Payment(PaymentWrite::Retry { order, attempt: rng.gen_range(1..4) })
        }
        16 => {
            let amount = rng.gen_range(0..=u.balances[user.index()].min(200));
            Write::User(UserWrite::Deduct { user, order, amount })
        }
        17 => Write::User(UserWrite::Short { user, order }),
        18 => Write::User(UserWrite::Refund { user, order, amount: rng.gen_range(0..100) }),
        19 => Write::Platform(PlatformWrite::Record { order }),
        20 => Write::Platform(PlatformWrite::Receive { order, amount: rng.gen_range(0..500) }),
        21 => {
            *next_inbox += 1 + rng.gen_range(0..1000);
            Write::Inbox(EventId(*next_inbox))
        }
        22 => Write::Park,
        _ => return None,
    })
}

/// `n` transactions of one to four writes each, from `seed`, valid against
/// `initial` (a monolith's store) as they are applied in turn.
pub fn transactions(seed: u64, n: usize, initial: &Store) -> Vec<Vec<Write>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut s = initial.clone();
    let mut next_inbox = 0;
    let mut out = Vec::new();
    while out.len() < n {
        let mut tx = Vec::new();
        for _ in 0..rng.gen_range(1..=4) {
            if let Some(w) = one(&mut rng, &s, &mut next_inbox) {
                s.apply(&w);
                tx.push(w);
            }
        }
        if !tx.is_empty() {
            out.push(tx);
        }
    }
    out
}
