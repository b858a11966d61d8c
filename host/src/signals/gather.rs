//! The gatherers the controller registers with the reconciler's signal seam
//! ([`crate::core::adapter`]): one per source kind.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::{BoxFuture, join_all};
use sha2::Digest as _;
use wasmscaler_sdk::{Sample, Signal, SignalRequest};

use super::prometheus::{PromError, Prometheus};
use super::redis_queue::{RedisQueueError, RedisQueues};
use super::source::{PromAuth, PromSource, SourceSpec, range_step_ms};
use crate::core::adapter::{
    Credentials, Gathered, NoCredentials, PlanItem, SecretRef, SignalGatherer, TargetRef,
};
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
    #[error("credentials: {0}")]
    Credentials(String),
}

/// The value of a Secret reference of the workload's namespace.
async fn secret(
    creds: &dyn Credentials,
    req: &SignalRequest,
    kind: &'static str,
    namespace: &str,
    r: &SecretRef,
    timeout: Duration,
) -> Result<String, SignalError> {
    creds
        .resolve(namespace, r, timeout)
        .await
        .map_err(|e| SignalError::new(req, kind, SourceError::Credentials(e)))
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

/// (server, query, window, step, SHA-256 of the Authorization header): a series fetched
/// with one workload's credentials is never handed to a workload without them.
type HistoryKey = (String, String, u64, u64, Option<[u8; 32]>);
/// Prefetched series by key, with the time they were fetched.
type HistoryCache = HashMap<HistoryKey, (i64, Arc<Vec<Sample>>)>;

/// Signals from the Prometheus HTTP API. A latest-only signal is an instant query at
/// `now`; a signal with a window is a range query over `(now - window, now]` with the
/// step of [`range_step_ms`]. A `history:` option prefetches a range for the `history`
/// import, refreshed at most once per its step.
pub struct PrometheusGatherer {
    prom: Prometheus,
    history_cache: Mutex<HistoryCache>,
    credentials: Arc<dyn Credentials>,
}

impl PrometheusGatherer {
    pub fn new(prom: Prometheus) -> Self {
        Self {
            prom,
            history_cache: Mutex::new(HashMap::new()),
            credentials: Arc::new(NoCredentials),
        }
    }

    /// Resolve `bearerTokenFrom` / `basicAuth.passwordFrom` with `credentials`.
    pub fn with_credentials(mut self, credentials: Arc<dyn Credentials>) -> Self {
        self.credentials = credentials;
        self
    }

    /// The `Authorization` header of `p`, from its Secret.
    async fn authorization(
        &self,
        req: &SignalRequest,
        namespace: &str,
        p: &PromSource,
    ) -> Result<Option<String>, SignalError> {
        let timeout = Duration::from_millis(p.timeout_ms);
        let creds = self.credentials.as_ref();
        Ok(match &p.auth {
            None => None,
            Some(PromAuth::Bearer(r)) => Some(format!(
                "Bearer {}",
                secret(creds, req, "prometheus", namespace, r, timeout).await?
            )),
            Some(PromAuth::Basic { username, password }) => {
                use base64::Engine as _;
                let pw = secret(creds, req, "prometheus", namespace, password, timeout).await?;
                Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{username}:{pw}"))
                ))
            }
        })
    }

    async fn one(
        &self,
        req: &SignalRequest,
        src: Option<&serde_json::Value>,
        namespace: &str,
        now_ms: i64,
    ) -> Result<Signal, SignalError> {
        let p = parse_as(req, src, "prometheus", |spec| match spec {
            SourceSpec::Prometheus(p) => Some(p),
            _ => None,
        })?;
        let timeout = Duration::from_millis(p.timeout_ms);
        let server = p.server.as_deref();
        let auth = self.authorization(req, namespace, &p).await?;
        let auth = auth.as_deref();
        let mut samples = if req.window_ms == 0 {
            self.prom
                .instant(server, auth, &p.query, now_ms, timeout)
                .await
                .map_err(|e| SignalError::new(req, "prometheus", e))?
                .into_iter()
                .collect::<Vec<_>>()
        } else {
            let start = now_ms.saturating_sub(i64::try_from(req.window_ms).unwrap_or(i64::MAX));
            self.prom
                .range(
                    server,
                    auth,
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

    async fn history(
        &self,
        req: &SignalRequest,
        namespace: &str,
        p: &PromSource,
        now_ms: i64,
    ) -> Option<(String, Vec<Sample>)> {
        let name = req.name.as_str();
        let h = p.history?;
        let auth = match self.authorization(req, namespace, p).await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(signal = name, error = %e, "history prefetch failed");
                return None;
            }
        };
        let key: HistoryKey = (
            p.server.clone().unwrap_or_default(),
            p.query.clone(),
            h.window_ms,
            h.step_ms,
            auth.as_ref().map(|a| sha2::Sha256::digest(a.as_bytes()).into()),
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
                auth.as_deref(),
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
        target: &'a TargetRef,
        plan: &'a [PlanItem<'a>],
        now_ms: i64,
    ) -> BoxFuture<'a, Gathered> {
        Box::pin(async move {
            let ns = target.namespace.as_str();
            let results = join_all(plan.iter().map(|(req, src)| self.one(req, *src, ns, now_ms))).await;
            let mut out = collect(results);
            let histories = join_all(plan.iter().filter_map(|(req, src)| {
                let spec = SourceSpec::parse((*src)?).ok()?;
                match spec {
                    SourceSpec::Prometheus(p) if p.history.is_some() => {
                        Some(async move { self.history(req, ns, &p, now_ms).await })
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
pub struct RedisGatherer {
    queues: RedisQueues,
    credentials: Arc<dyn Credentials>,
}

impl Default for RedisGatherer {
    fn default() -> Self {
        Self {
            queues: RedisQueues::default(),
            credentials: Arc::new(NoCredentials),
        }
    }
}

impl RedisGatherer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Resolve `passwordFrom` with `credentials`.
    pub fn with_credentials(mut self, credentials: Arc<dyn Credentials>) -> Self {
        self.credentials = credentials;
        self
    }

    async fn one(
        &self,
        req: &SignalRequest,
        src: Option<&serde_json::Value>,
        namespace: &str,
        now_ms: i64,
    ) -> Result<Signal, SignalError> {
        let r = parse_as(req, src, "redis", |spec| match spec {
            SourceSpec::Redis(r) => Some(r),
            _ => None,
        })?;
        let timeout = Duration::from_millis(r.timeout_ms);
        let password = match &r.password_from {
            Some(s) => Some(secret(self.credentials.as_ref(), req, "redis", namespace, s, timeout).await?),
            None => None,
        };
        let n = self
            .queues
            .list_len(&r.url, password.as_deref(), &r.list, timeout)
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
        target: &'a TargetRef,
        plan: &'a [PlanItem<'a>],
        now_ms: i64,
    ) -> BoxFuture<'a, Gathered> {
        let ns = target.namespace.as_str();
        Box::pin(async move {
            collect(join_all(plan.iter().map(|(req, src)| self.one(req, *src, ns, now_ms))).await)
        })
    }
}
