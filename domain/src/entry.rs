//! Where an order enters the system: the service that numbers orders and
//! keeps the durable record of idempotency keys (§2.4.4), written in the same
//! transaction as the order's first step. In the choreography this is
//! Product; in the orchestration the orchestrator; in the monolith the
//! monolith. The gateway's cache answers retries fast; this record answers
//! them when the cache has forgotten.

use serde::{Deserialize, Serialize};

use crate::ids::{FixedHashMap, OrderId, ProductId, RequestKey}; // deterministic: fixed hasher
use crate::message::{Refusal, Request, Response};
use crate::ports::Tx;
use crate::safety::Safety;
use crate::tables::Write;

/// What the entry record keeps of a key: the request's hash, the order it
/// made, and the answer once there is one.
pub type KeyEntry = (u64, OrderId, Option<Response>);

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EntryTables {
    /// Key → (request hash, the order it made, the answer once there is one).
    /// Keys are random: a hash map finds one without a tree walk, and
    /// nothing reads them in order.
    pub keys: FixedHashMap<RequestKey, KeyEntry>, // deterministic: fixed hasher
    /// The next order number.
    pub next_order: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EntryWrite {
    /// A new order, for the request with this hash (under `key` when the
    /// gateway passed one on).
    Begin { order: OrderId, key: Option<RequestKey>, hash: u64, product: ProductId, qty: u32 },
    /// The order's final answer.
    Answer { order: OrderId, key: Option<RequestKey>, response: Response },
}

impl EntryTables {
    pub fn apply(&mut self, w: &EntryWrite) {
        match *w {
            EntryWrite::Begin { order, key, hash, .. } => {
                assert_eq!(order.0, self.next_order, "orders are numbered in sequence");
                self.next_order += 1;
                if let Some(k) = key {
                    self.keys.insert(k, (hash, order, None));
                }
            }
            EntryWrite::Answer { key, response, .. } => {
                if let Some(entry) = key.and_then(|k| self.keys.get_mut(&k)) {
                    entry.2 = Some(response);
                }
            }
        }
    }
}

/// What the entry record says of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    /// Answer this (a retry of a request already answered, or a key reused
    /// with another payload).
    Known(Response),
    /// A retry of a request still being handled.
    Running(OrderId),
    /// A new order, numbered so.
    New(OrderId),
}

pub fn admit(t: &EntryTables, key: Option<RequestKey>, req: &Request, safety: &Safety) -> Admit {
    let Some(&(hash, order, answer)) = key.and_then(|k| t.keys.get(&k)) else {
        return Admit::New(OrderId(t.next_order));
    };
    if hash != req.hash() && safety.key_payload_check {
        return Admit::Known(Response::KeyConflict);
    }
    match answer {
        Some(r) => Admit::Known(r),
        None => Admit::Running(order),
    }
}

pub fn begin(order: OrderId, key: Option<RequestKey>, req: &Request) -> EntryWrite {
    EntryWrite::Begin { order, key, hash: req.hash(), product: req.product, qty: req.qty }
}

/// A request at a service that answers only once the order is over (the
/// orchestrator, the two-phase-commit coordinator, the monolith): a retry's
/// answer ("in progress" while it runs), or the new order's number, its
/// beginning recorded.
pub fn open(
    e: &EntryTables,
    key: Option<RequestKey>,
    req: &Request,
    safety: &Safety,
    tx: &mut impl Tx,
) -> Result<OrderId, (OrderId, Response)> {
    match admit(e, key, req, safety) {
        Admit::Known(r) => Err((OrderId(e.next_order), r)),
        Admit::Running(order) => Err((order, Response::InProgress)),
        Admit::New(order) => {
            tx.write(Write::Entry(begin(order, key, req)));
            Ok(order)
        }
    }
}

/// The order is over: its answer (accepted, or refused for `why`), recorded
/// with its key.
pub fn close(
    order: OrderId,
    key: Option<RequestKey>,
    why: Option<Refusal>,
    tx: &mut impl Tx,
) -> Response {
    let response = match why {
        None => Response::Accepted { order },
        Some(why) => Response::Refused { order, why },
    };
    tx.write(Write::Entry(EntryWrite::Answer { order, key, response }));
    response
}
