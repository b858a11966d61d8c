//! Whether the watch caches can be trusted now (`/readyz`), and how a failing watch
//! retries.
//!
//! kube-runtime's default watch backoff (client-go's: 0.8 s doubling to 30 s, reset only
//! after 120 s without errors) leaves the caches stale for up to 30 s after an API server
//! comes back, while the controller keeps deciding on them. Ours starts at 250 ms, doubles
//! to 2 s plus up to as much again of jitter (so at most 4 s), and resets on the first event after an error (a relist
//! after `410 Gone` is one retry away, not one reset timer away). The backoff is also the
//! health signal: an error means the watch is failing, an event means it works again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kube::runtime::utils::Backoff;
use kube::runtime::watcher::ExponentialBackoff;

pub use crate::signals::watch_cache::retry_backoff;
#[cfg(test)]
use crate::signals::watch_cache::{FIRST_RETRY, MAX_RETRY};

/// A failing watch retries at least this often, so an error older than this means the
/// retries stopped failing (a watch of an empty namespace sees no event to say so).
const STALE_AFTER_ERROR: Duration = Duration::from_secs(10);

/// Shared by the controller's watches, read by `/readyz`.
pub struct WatchHealth {
    synced: AtomicBool,
    failing: AtomicUsize,
    /// Milliseconds since `started` of the last watch error.
    last_error_ms: AtomicU64,
    started: Instant,
}

impl Default for WatchHealth {
    fn default() -> Self {
        Self {
            synced: AtomicBool::new(false),
            failing: AtomicUsize::new(0),
            last_error_ms: AtomicU64::new(0),
            started: Instant::now(),
        }
    }
}

impl WatchHealth {
    /// Every watch cache has listed once.
    pub fn mark_synced(&self) {
        self.synced.store(true, Ordering::Relaxed);
    }

    /// Ready: the caches synced and no watch is failing now.
    pub fn is_ready(&self) -> bool {
        self.synced.load(Ordering::Relaxed) && self.why_not_ready().is_none()
    }

    /// What `/readyz` says when not ready.
    pub fn why_not_ready(&self) -> Option<&'static str> {
        if !self.synced.load(Ordering::Relaxed) {
            return Some("caches not synced yet");
        }
        let since_error = self
            .elapsed_ms()
            .saturating_sub(self.last_error_ms.load(Ordering::Relaxed));
        let failing = self.failing.load(Ordering::Relaxed) > 0;
        (failing && u128::from(since_error) < STALE_AFTER_ERROR.as_millis())
            .then_some("watch failing: the API server is unreachable or refusing; caches may be stale")
    }

    /// The retry policy of one watch (give it to `Controller::trigger_backoff`).
    pub fn backoff(self: &Arc<Self>) -> WatchBackoff {
        WatchBackoff {
            inner: retry_backoff(),
            health: self.clone(),
            failing: false,
        }
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// One watch's backoff; reports its failing/working transitions to [`WatchHealth`].
pub struct WatchBackoff {
    inner: ExponentialBackoff,
    health: Arc<WatchHealth>,
    failing: bool,
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    /// Called on each watch error.
    fn next(&mut self) -> Option<Duration> {
        self.health
            .last_error_ms
            .store(self.health.elapsed_ms(), Ordering::Relaxed);
        if !self.failing {
            self.failing = true;
            self.health.failing.fetch_add(1, Ordering::Relaxed);
        }
        self.inner.next()
    }
}

impl Backoff for WatchBackoff {
    /// Called on each event that is not an error.
    fn reset(&mut self) {
        if self.failing {
            self.failing = false;
            self.health.failing.fetch_sub(1, Ordering::Relaxed);
        }
        self.inner.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_watch_is_not_ready_until_an_event_arrives() {
        let h = Arc::new(WatchHealth::default());
        let mut b = h.backoff();
        assert_eq!(h.why_not_ready(), Some("caches not synced yet"));
        h.mark_synced();
        assert!(h.is_ready());
        let first = b.next().expect("retries forever");
        assert!(first <= FIRST_RETRY * 2, "{first:?}");
        assert!(!h.is_ready());
        for _ in 0..20 {
            assert!(b.next().expect("retries forever") <= MAX_RETRY * 2);
        }
        b.reset();
        assert!(h.is_ready());
        assert!(
            b.next().expect("retries forever") <= FIRST_RETRY * 2,
            "reset to the first step"
        );
    }
}
