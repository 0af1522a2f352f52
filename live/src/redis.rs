//! Redis as the gateway's idempotency-key cache (§2.4.4): a key's entry
//! (an "in progress" mark or the answer, with the request's hash) as JSON,
//! set with `SET NX PX` to claim a key and `SET PX` to store the answer.
//! Every key of a run carries the run's prefix, so runs never meet. Redis is
//! the fast path only: the entry service's durable record stays the truth.

use std::time::Duration;

use domain::gateway::KeyEntry;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::AsyncCommands;

use crate::error::{Error, Result};

/// A command not answered in this time failed (its outcome unknown).
pub const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);

pub struct Cache {
    conn: ConnectionManager,
}

/// A cache command that failed.
#[derive(Debug)]
pub struct CacheError(pub String);

impl Cache {
    /// Connect, or say why not.
    pub async fn connect(url: &str) -> Result<Cache> {
        let unreachable = |why: String| Error::unreachable("Redis", url, why);
        let client = redis::Client::open(url).map_err(|e| unreachable(e.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1);
        let conn = tokio::time::timeout(
            Duration::from_secs(3),
            ConnectionManager::new_with_config(client, config),
        )
        .await
        .map_err(|_| unreachable("no answer within 3 s".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
        let mut cache = Cache { conn };
        let pong: String = redis::cmd("PING")
            .query_async(&mut cache.conn)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        if pong != "PONG" {
            return Err(unreachable(format!("PING answered {pong:?}")));
        }
        Ok(cache)
    }

    pub async fn get(&mut self, key: &str) -> std::result::Result<Option<KeyEntry>, CacheError> {
        let v: Option<String> = self.conn.get(key).await.map_err(|e| CacheError(e.to_string()))?;
        Ok(v.and_then(|s| serde_json::from_str(&s).ok()))
    }

    /// Claim a key: true if it was free.
    pub async fn set_nx(
        &mut self,
        key: &str,
        entry: &KeyEntry,
        ttl_ms: u64,
    ) -> std::result::Result<bool, CacheError> {
        let v = serde_json::to_string(entry).expect("entries serialise");
        let r: Option<String> = redis::cmd("SET")
            .arg(key)
            .arg(v)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms.max(1))
            .query_async(&mut self.conn)
            .await
            .map_err(|e| CacheError(e.to_string()))?;
        Ok(r.is_some())
    }

    pub async fn set(
        &mut self,
        key: &str,
        entry: &KeyEntry,
        ttl_ms: u64,
    ) -> std::result::Result<(), CacheError> {
        let v = serde_json::to_string(entry).expect("entries serialise");
        let _: () = redis::cmd("SET")
            .arg(key)
            .arg(v)
            .arg("PX")
            .arg(ttl_ms.max(1))
            .query_async(&mut self.conn)
            .await
            .map_err(|e| CacheError(e.to_string()))?;
        Ok(())
    }

    /// Forget every key under `prefix` (a cache flush, or a run's clean-up);
    /// how many there were.
    pub async fn forget(&mut self, prefix: &str) -> std::result::Result<u64, CacheError> {
        let mut keys: Vec<String> = Vec::new();
        {
            let pattern = format!("{prefix}*");
            let mut it: redis::AsyncIter<String> =
                self.conn.scan_match(&pattern).await.map_err(|e| CacheError(e.to_string()))?;
            while let Some(k) = futures::StreamExt::next(&mut it).await {
                keys.push(k.map_err(|e| CacheError(e.to_string()))?);
            }
        }
        for chunk in keys.chunks(500) {
            let _: () = self.conn.del(chunk).await.map_err(|e| CacheError(e.to_string()))?;
        }
        Ok(keys.len() as u64)
    }

    /// The time a key has left, in ms (`None`: no such key).
    pub async fn ttl_ms(&mut self, key: &str) -> std::result::Result<Option<u64>, CacheError> {
        let t: i64 = redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut self.conn)
            .await
            .map_err(|e| CacheError(e.to_string()))?;
        Ok((t >= 0).then_some(t as u64))
    }
}
