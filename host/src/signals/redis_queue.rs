//! Redis list length as a queue signal (`LLEN`), KEDA's `redis` scaler with
//! `listLength`. One multiplexed connection per Redis URL (and password), reused across
//! evaluations and dropped after an error; connect and response timeouts on every call.
//! At most [`MAX_CONNECTIONS`] are kept: the least recently used goes first, and one
//! unused for [`IDLE_AFTER`] is closed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, IntoConnectionInfo};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

/// Most Redis connections kept open (URLs are chosen by annotations).
pub const MAX_CONNECTIONS: usize = 256;
/// A connection unused this long is closed.
pub const IDLE_AFTER: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum RedisQueueError {
    #[error("bad Redis URL '{url}': {message}")]
    Url { url: String, message: String },
    #[error("{url}: cannot connect: {message}")]
    Connect { url: String, message: String },
    #[error("{url}: LLEN {list}: {message}")]
    Command {
        url: String,
        list: String,
        message: String,
    },
    #[error("{url}: no answer within {timeout_ms} ms")]
    Timeout { url: String, timeout_ms: u64 },
}

/// URL + SHA-256 of the password (the password itself is not kept as a key).
type ConnKey = (String, Option<[u8; 32]>);

/// Redis connections by URL and password, with the time each was last used.
#[derive(Default)]
pub struct RedisQueues {
    conns: Mutex<HashMap<ConnKey, (MultiplexedConnection, Instant)>>,
}

impl RedisQueues {
    pub fn new() -> Self {
        Self::default()
    }

    /// Connections open now.
    pub async fn open_connections(&self) -> usize {
        self.conns.lock().await.len()
    }

    /// The length of list `list` (0 when the key does not exist, as `LLEN` says);
    /// `password`: AUTH with it (from a Secret), overriding any in the URL.
    pub async fn list_len(
        &self,
        url: &str,
        password: Option<&str>,
        list: &str,
        timeout: Duration,
    ) -> Result<u64, RedisQueueError> {
        let shown = redact(url);
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let key: ConnKey = (
            url.to_string(),
            password.map(|p| Sha256::digest(p.as_bytes()).into()),
        );
        let work = async {
            let mut conn = self.connection(&key, password, &shown, timeout).await?;
            let r: Result<u64, _> = redis::cmd("LLEN").arg(list).query_async(&mut conn).await;
            r.map_err(|e| RedisQueueError::Command {
                url: shown.clone(),
                list: list.to_string(),
                message: e.to_string(),
            })
        };
        let result = tokio::time::timeout(timeout, work).await.unwrap_or_else(|_| {
            Err(RedisQueueError::Timeout {
                url: shown.clone(),
                timeout_ms,
            })
        });
        if result.is_err() {
            // Reconnect next time rather than reuse a connection in an unknown state.
            self.conns.lock().await.remove(&key);
        }
        result
    }

    async fn connection(
        &self,
        key: &ConnKey,
        password: Option<&str>,
        shown: &str,
        timeout: Duration,
    ) -> Result<MultiplexedConnection, RedisQueueError> {
        if let Some((c, used)) = self.conns.lock().await.get_mut(key) {
            *used = Instant::now();
            return Ok(c.clone());
        }
        let bad_url = |e: redis::RedisError| RedisQueueError::Url {
            url: shown.to_string(),
            message: e.to_string(),
        };
        let mut info = key.0.as_str().into_connection_info().map_err(bad_url)?;
        if let Some(p) = password {
            let settings = info.redis_settings().clone().set_password(p);
            info = info.set_redis_settings(settings);
        }
        let client = redis::Client::open(info).map_err(bad_url)?;
        let cfg = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        let conn = client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await
            .map_err(|e| RedisQueueError::Connect {
                url: shown.to_string(),
                message: e.to_string(),
            })?;
        let mut conns = self.conns.lock().await;
        let now = Instant::now();
        conns.retain(|_, (_, used)| now.duration_since(*used) < IDLE_AFTER);
        while conns.len() >= MAX_CONNECTIONS {
            let Some(oldest) = conns
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            conns.remove(&oldest);
        }
        conns.insert(key.clone(), (conn.clone(), now));
        Ok(conn)
    }
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("redis://:s3cret@r:6379/0"), "redis://:***@r:6379/0");
        assert_eq!(redact("redis://u:p@r/1"), "redis://u:***@r/1");
        assert_eq!(redact("redis://r:6379"), "redis://r:6379");
    }
}
