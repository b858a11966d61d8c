//! The gatherers the controller registers with the reconciler's signal seam
//! ([`crate::kube::signals_api`]): one per source kind.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::{BoxFuture, join_all};
use wasmscaler_sdk::{Sample, Signal, SignalRequest};

use super::prometheus::{PromError, Prometheus};
use super::redis_queue::{RedisQueueError, RedisQueues};
use super::source::{PromSource, SourceSpec, range_step_ms};
use crate::kube::signals_api::{Gathered, PlanItem, SignalGatherer, TargetRef};
use crate::runtime::PrefetchedHistory;
use crate::runtime::sandbox::MAX_HISTORY_SAMPLES;

/// Time budget of one `history` prefetch (a range query over days).
pub const HISTORY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why one signal could not be gathered.
#[derive(Debug, thiserror::Error)]
#[error("signal '{signal}' ({kind}): {error}")]
pub struct SignalError {
    pub signal: String,
    pub kind: &'static str,
    #[source]
    pub error: SourceError,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("bad source spec: {0}")]
    Spec(String),
    #[error(transparent)]
    Prometheus(#[from] PromError),
    #[error(transparent)]
    Redis(#[from] RedisQueueError),
    #[error("{0}")]
    Kubernetes(String),
}

impl SignalError {
    pub fn new(req: &SignalRequest, kind: &'static str, error: impl Into<SourceError>) -> Self {
        Self {
            signal: req.name.clone(),
            kind,
            error: error.into(),
        }
    }
}

/// The source spec of `req`, which the router sent to the `kind` gatherer, as that kind's
/// options: `pick` takes them out of the spec (`None` for another variant, which the kind
/// check before it rules out).
pub(crate) fn parse_as<T>(
    req: &SignalRequest,
    src: Option<&serde_json::Value>,
    kind: &'static str,
    pick: impl FnOnce(SourceSpec) -> Option<T>,
) -> Result<T, SignalError> {
    let spec_error = |msg: String| SignalError::new(req, kind, SourceError::Spec(msg));
    let spec = src.ok_or_else(|| spec_error("no source spec".into()))?;
    let parsed = SourceSpec::parse(spec).map_err(spec_error)?;
    if parsed.kind() != kind {
        return Err(spec_error(format!(
            "routed to {kind} but is a {} source",
            parsed.kind()
        )));
    }
    pick(parsed).ok_or_else(|| spec_error(format!("not a {kind} source")))
}

/// Collect per-signal results into a [`Gathered`].
pub(crate) fn collect(results: Vec<Result<Signal, SignalError>>) -> Gathered {
    let mut out = Gathered::default();
    for r in results {
        match r {
            Ok(s) => out.signals.push(s),
            Err(e) => out.errors.push((e.signal.clone(), e.to_string())),
        }
    }
    out
}

type HistoryKey = (String, String, u64, u64);
/// Prefetched series by key, with the time they were fetched.
type HistoryCache = HashMap<HistoryKey, (i64, Arc<Vec<Sample>>)>;

/// Signals from the Prometheus HTTP API. A latest-only signal is an instant query at
/// `now`; a signal with a window is a range query over `(now - window, now]` with the
/// step of [`range_step_ms`]. A `history:` option prefetches a range for the `history`
/// import, refreshed at most once per its step.
pub struct PrometheusGatherer {
    prom: Prometheus,
    history_cache: Mutex<HistoryCache>,
}

impl PrometheusGatherer {
    pub fn new(prom: Prometheus) -> Self {
        Self {
            prom,
            history_cache: Mutex::new(HashMap::new()),
        }
    }

    async fn one(
        &self,
        req: &SignalRequest,
        src: Option<&serde_json::Value>,
        now_ms: i64,
    ) -> Result<Signal, SignalError> {
        let p = parse_as(req, src, "prometheus", |spec| match spec {
            SourceSpec::Prometheus(p) => Some(p),
            _ => None,
        })?;
        let timeout = Duration::from_millis(p.timeout_ms);
        let server = p.server.as_deref();
        let mut samples = if req.window_ms == 0 {
            self.prom
                .instant(server, &p.query, now_ms, timeout)
                .await
                .map_err(|e| SignalError::new(req, "prometheus", e))?
                .into_iter()
                .collect::<Vec<_>>()
        } else {
            let start = now_ms.saturating_sub(i64::try_from(req.window_ms).unwrap_or(i64::MAX));
            self.prom
                .range(
                    server,
                    &p.query,
                    start,
                    now_ms,
                    range_step_ms(req.window_ms),
                    timeout,
                )
                .await
                .map_err(|e| SignalError::new(req, "prometheus", e))?
        };
        if samples.is_empty() {
            if !p.ignore_null_values {
                return Err(SignalError::new(req, "prometheus", PromError::Empty));
            }
            samples.push(Sample::new(now_ms, 0.0));
        }
        Ok(Signal {
            name: req.name.clone(),
            samples,
        })
    }

    async fn history(&self, name: &str, p: &PromSource, now_ms: i64) -> Option<(String, Vec<Sample>)> {
        let h = p.history?;
        let key: HistoryKey = (
            p.server.clone().unwrap_or_default(),
            p.query.clone(),
            h.window_ms,
            h.step_ms,
        );
        let fresh_after = now_ms.saturating_sub(i64::try_from(h.step_ms).unwrap_or(i64::MAX));
        if let Ok(cache) = self.history_cache.lock()
            && let Some((at, series)) = cache.get(&key)
            && *at > fresh_after
            && *at <= now_ms
        {
            return Some((name.to_string(), series.as_ref().clone()));
        }
        // Budget: at most MAX_HISTORY_SAMPLES points (the step is widened) within HISTORY_TIMEOUT.
        let step = h.step_ms.max(h.window_ms.div_ceil(MAX_HISTORY_SAMPLES as u64));
        let start = now_ms.saturating_sub(i64::try_from(h.window_ms).unwrap_or(i64::MAX));
        match self
            .prom
            .range(
                p.server.as_deref(),
                &p.query,
                start,
                now_ms,
                step,
                HISTORY_TIMEOUT,
            )
            .await
        {
            Ok(series) => {
                if let Ok(mut cache) = self.history_cache.lock() {
                    cache.retain(|_, (at, _)| *at > fresh_after);
                    cache.insert(key, (now_ms, Arc::new(series.clone())));
                }
                Some((name.to_string(), series))
            }
            Err(e) => {
                tracing::warn!(signal = name, error = %e, "history prefetch failed");
                None
            }
        }
    }
}

impl SignalGatherer for PrometheusGatherer {
    fn gather<'a>(
        &'a self,
        _target: &'a TargetRef,
        plan: &'a [PlanItem<'a>],
        now_ms: i64,
    ) -> BoxFuture<'a, Gathered> {
        Box::pin(async move {
            let results = join_all(plan.iter().map(|(req, src)| self.one(req, *src, now_ms))).await;
            let mut out = collect(results);
            let histories = join_all(plan.iter().filter_map(|(req, src)| {
                let spec = SourceSpec::parse((*src)?).ok()?;
                match spec {
                    SourceSpec::Prometheus(p) if p.history.is_some() => {
                        Some(async move { self.history(&req.name, &p, now_ms).await })
                    }
                    _ => None,
                }
            }))
            .await;
            let series: HashMap<String, Vec<Sample>> = histories.into_iter().flatten().collect();
            if !series.is_empty() {
                out.history = Some(Arc::new(PrefetchedHistory { now_ms, series }));
            }
            out
        })
    }
}

/// Queue lengths from Redis lists (`LLEN`). Redis keeps no history: a windowed request
/// gets the latest value as its only sample.
#[derive(Default)]
pub struct RedisGatherer {
    queues: RedisQueues,
}

impl RedisGatherer {
    pub fn new() -> Self {
        Self::default()
    }

    async fn one(
        &self,
        req: &SignalRequest,
        src: Option<&serde_json::Value>,
        now_ms: i64,
    ) -> Result<Signal, SignalError> {
        let r = parse_as(req, src, "redis", |spec| match spec {
            SourceSpec::Redis(r) => Some(r),
            _ => None,
        })?;
        let n = self
            .queues
            .list_len(&r.url, &r.list, Duration::from_millis(r.timeout_ms))
            .await
            .map_err(|e| SignalError::new(req, "redis", e))?;
        Ok(Signal {
            name: req.name.clone(),
            samples: vec![Sample::new(now_ms, n as f64)],
        })
    }
}

impl SignalGatherer for RedisGatherer {
    fn gather<'a>(
        &'a self,
        _target: &'a TargetRef,
        plan: &'a [PlanItem<'a>],
        now_ms: i64,
    ) -> BoxFuture<'a, Gathered> {
        Box::pin(
            async move { collect(join_all(plan.iter().map(|(req, src)| self.one(req, *src, now_ms))).await) },
        )
    }
}
