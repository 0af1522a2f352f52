//! Draw a seed's workload from its workload stream. Only this stream is used,
//! so seed N has the same users, products, coupons and submissions under
//! every strategy, bug and fault profile.

use domain::client::Arrival;
use domain::product::Product;
use domain::workload::IssuedCoupon;
use domain::{CouponId, ProductId, Request, RequestKey, UserId, Workload};
use sim::seed::{Purpose, Stream};

use crate::scenario::WorkloadSpec;

fn request(spec: &WorkloadSpec, s: &mut Stream, coupons_of: &[Vec<CouponId>]) -> Request {
    let user = UserId(s.range(0, spec.users - 1) as u32);
    let hot = spec.hot_products.min(spec.products);
    let product = if hot > 0 && s.chance(spec.hot_ppm) {
        ProductId(s.range(0, hot - 1) as u32)
    } else {
        ProductId(s.range(0, spec.products - 1) as u32)
    };
    let qty = s.range(spec.quantity.0, spec.quantity.1) as u32;
    let mine = &coupons_of[user.index()];
    let coupon = (s.chance(spec.coupon_ppm) && !mine.is_empty())
        .then(|| mine[s.range(0, mine.len() as u64 - 1) as usize]);
    let points = s.range(spec.points.0, spec.points.1);
    Request { user, product, qty, coupon, points }
}

pub fn draw(spec: &WorkloadSpec, seed: u64) -> Workload {
    let mut s = Stream::new(seed, Purpose::Workload);
    let balances = (0..spec.users).map(|_| s.range(spec.balance.0, spec.balance.1)).collect();
    let products = (0..spec.products)
        .map(|_| Product {
            price: s.range(spec.price.0, spec.price.1),
            stock: s.range(spec.stock.0, spec.stock.1),
        })
        .collect();
    let mut coupons = Vec::new();
    let mut coupons_of = vec![Vec::new(); spec.users as usize];
    for (u, mine) in coupons_of.iter_mut().enumerate() {
        for _ in 0..s.range(spec.coupons_per_user.0, spec.coupons_per_user.1) {
            mine.push(CouponId(coupons.len() as u32));
            let discount = s.range(spec.coupon_discount.0, spec.coupon_discount.1);
            coupons.push(IssuedCoupon { user: UserId(u as u32), discount });
        }
    }
    let mut arrivals: Vec<Arrival> = Vec::new();
    let mut at_us = 0;
    for _ in 0..spec.orders {
        at_us += s.range(spec.gap_us.0, spec.gap_us.1);
        let first = Arrival {
            at_us,
            key: RequestKey(s.next_u64()),
            req: request(spec, &mut s, &coupons_of),
        };
        arrivals.push(first);
        if s.chance(spec.double_submit_ppm) {
            // A double click: the same request under the same key, soon after.
            arrivals.push(Arrival { at_us: at_us + s.range(1, 50_000), ..first });
        }
        if s.chance(spec.key_reuse_ppm) {
            // A client bug: an earlier key sent again with another payload.
            let earlier = arrivals[s.range(0, arrivals.len() as u64 - 1) as usize];
            let mut req = request(spec, &mut s, &coupons_of);
            if req.hash() == earlier.req.hash() {
                req.qty += 1;
            }
            arrivals.push(Arrival { at_us: at_us + s.range(1, 50_000), key: earlier.key, req });
        }
    }
    arrivals.sort_by_key(|a| a.at_us);
    Workload { balances, products, coupons, arrivals }
}
