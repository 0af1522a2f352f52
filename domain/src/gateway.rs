//! The API gateway and its idempotency layer (§2.4.4): it stores each
//! `Idempotency-Key` with the request's hash in a Redis-like cache, answers a
//! retry with the stored response, refuses the key when it comes back with
//! another payload, and says "in progress" while the first request is still
//! being handled.
//!
//! The cache is fast but forgets (a restart, a TTL running out), so the key
//! also travels on to the entry service, which records it durably with the
//! order: a retry the cache no longer recognises is still recognised there.
//! That is also why an "in progress" mark lives only briefly: if the entry
//! service's answer is lost, a retry after the mark expires asks it again
//! and gets the recorded answer, instead of hearing "in progress" until the
//! key's long TTL runs out.

use serde::{Deserialize, Serialize};

use crate::ids::RequestKey;
use crate::message::{Msg, Request, Response};
use crate::safety::Safety;

/// What the cache holds for a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyEntry {
    InProgress { hash: u64 },
    Done { hash: u64, response: Response },
}

/// What the gateway needs: its cache, the entry service, and the client.
pub trait GatewayPort {
    fn cache_get(&mut self, key: RequestKey) -> Option<KeyEntry>;
    /// Set if absent; false if the key is taken.
    fn cache_set_nx(&mut self, key: RequestKey, entry: KeyEntry) -> bool;
    fn cache_set(&mut self, key: RequestKey, entry: KeyEntry);
    /// Send to the entry service.
    fn forward(&mut self, msg: Msg);
    /// Send to the client.
    fn answer(&mut self, msg: Msg);
}

/// A client's submission arrived.
pub fn on_submit(
    id: u32,
    key: RequestKey,
    req: Request,
    safety: &Safety,
    port: &mut impl GatewayPort,
) {
    if !safety.idempotency_keys {
        port.forward(Msg::Place { id, key: None, req });
        return;
    }
    let hash = req.hash();
    let same = |h: u64| h == hash || !safety.key_payload_check;
    let response = match port.cache_get(key) {
        Some(KeyEntry::Done { hash: h, response }) if same(h) => response,
        Some(KeyEntry::Done { .. }) => Response::KeyConflict,
        // The mark only says someone holds the key; which payload owns it is
        // settled by the entry service's record, so wait for that.
        Some(KeyEntry::InProgress { .. }) => Response::InProgress,
        None => {
            if port.cache_set_nx(key, KeyEntry::InProgress { hash }) {
                port.forward(Msg::Place { id, key: Some(key), req });
                return;
            }
            Response::InProgress
        }
    };
    port.answer(Msg::Answer { id, response });
}

/// The entry service answered.
pub fn on_placed(
    id: u32,
    key: Option<RequestKey>,
    hash: u64,
    response: Response,
    port: &mut impl GatewayPort,
) {
    // Only a final answer for this payload is worth keeping: "in progress"
    // will change, and a conflict belongs to another payload.
    if let Some(key) = key.filter(|_| response.is_final() && response != Response::KeyConflict) {
        port.cache_set(key, KeyEntry::Done { hash, response });
    }
    port.answer(Msg::Answer { id, response });
}
