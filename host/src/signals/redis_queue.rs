//! Redis list length as a queue signal (`LLEN`), KEDA's `redis` scaler with
//! `listLength`. One multiplexed connection per Redis URL, reused across evaluations and
//! dropped after an error; connect and response timeouts on every call.

use std::collections::HashMap;
use std::time::Duration;

use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use tokio::sync::Mutex;

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

/// Redis connections by URL.
#[derive(Default)]
pub struct RedisQueues {
    conns: Mutex<HashMap<String, MultiplexedConnection>>,
}

impl RedisQueues {
    pub fn new() -> Self {
        Self::default()
    }

    /// The length of list `list` (0 when the key does not exist, as `LLEN` says).
    pub async fn list_len(&self, url: &str, list: &str, timeout: Duration) -> Result<u64, RedisQueueError> {
        let shown = redact(url);
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let work = async {
            let mut conn = self.connection(url, &shown, timeout).await?;
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
            self.conns.lock().await.remove(url);
        }
        result
    }

    async fn connection(
        &self,
        url: &str,
        shown: &str,
        timeout: Duration,
    ) -> Result<MultiplexedConnection, RedisQueueError> {
        if let Some(c) = self.conns.lock().await.get(url) {
            return Ok(c.clone());
        }
        let client = redis::Client::open(url).map_err(|e| RedisQueueError::Url {
            url: shown.to_string(),
            message: e.to_string(),
        })?;
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
        self.conns.lock().await.insert(url.to_string(), conn.clone());
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
