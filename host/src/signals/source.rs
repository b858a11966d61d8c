//! The `signals:` mapping of a workload's `wasmscaler.io/config`: signal name -> source
//! spec. One key names the source kind; its value is a shorthand string or a mapping of
//! options (the `{kind: K, ...options}` form is accepted too):
//!
//! ```yaml
//! signals:
//!   load: {prometheus: 'sum(rate(http_requests_total{app="shop"}[1m]))'}
//!   rps:
//!     prometheus:
//!       query: sum(rate(http_requests_total{app="shop"}[1m]))
//!       server: http://thanos-query.monitoring:9090   # default: --prometheus-url
//!       ignoreNullValues: false                        # default true: no series = 0
//!       timeout: 3s                                    # default 5s
//!       history: {window: 7d, step: 5m}                # prefetch for history()
//!   queue-length:
//!     redis: {url: 'redis://redis.jobs:6379/0', list: jobs,
//!             passwordFrom: {secret: redis-auth, key: password}}
//!   spot-pending-pods: {kubernetes: {count: pendingPods, capacityType: spot}}
//!   ready: {kubernetes: readyReplicas}
//! ```

use serde_json::{Map, Value};

pub use crate::core::adapter::SecretRef;
use crate::core::spec::parse_duration_ms;

/// Default timeout of one network call made for one signal.
pub const DEFAULT_TIMEOUT_MS: u64 = 5_000;
/// The longest `timeout` a source may ask for: a call that may take longer would hold a
/// reconcile slot (one of `--concurrency`) that every other workload shares.
pub const MAX_TIMEOUT_MS: u64 = 30_000;

/// A parsed source spec.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceSpec {
    Prometheus(PromSource),
    Redis(RedisSource),
    Kubernetes(KubeSource),
}

#[derive(Debug, Clone, PartialEq)]
pub struct PromSource {
    pub query: String,
    /// Overrides the controller's `--prometheus-url`.
    pub server: Option<String>,
    /// KEDA's `ignoreNullValues`: a query with no series reads as 0 (true, the default)
    /// or is an error (false).
    pub ignore_null_values: bool,
    pub timeout_ms: u64,
    /// Prefetch a range for the `history` import.
    pub history: Option<HistorySpec>,
    /// Credentials sent with every query.
    pub auth: Option<PromAuth>,
}

/// How a Prometheus query authenticates (the credentials come from a Secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromAuth {
    /// `bearerTokenFrom: {secret, key}`: `Authorization: Bearer <value>`.
    Bearer(SecretRef),
    /// `basicAuth: {username, passwordFrom: {secret, key}}`.
    Basic { username: String, password: SecretRef },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistorySpec {
    pub window_ms: u64,
    pub step_ms: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RedisSource {
    pub url: String,
    pub list: String,
    pub timeout_ms: u64,
    /// `passwordFrom: {secret, key}`: the password (AUTH) from a Secret.
    pub password_from: Option<SecretRef>,
}

/// What to count among Kubernetes objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KubeCount {
    /// The target's replicas (spec).
    Replicas,
    /// The target's ready replicas (status).
    ReadyReplicas,
    /// Pods (matching the selector) in phase Pending.
    PendingPods,
    /// Age in seconds of the oldest Pending pod (0 when none).
    PendingSeconds,
    /// Pods (matching the selector) not yet finished (phase Pending or Running).
    Pods,
    /// One sample per interruption event (a node carrying an interruption taint), value =
    /// pods of the workload on that node.
    Interruptions,
    /// Jobs owned by the target CronJob that are running (see `kube::jobs`).
    RunningJobs,
    /// Jobs owned by the target CronJob whose pods have not started.
    PendingJobs,
}

impl KubeCount {
    pub const ALL: &[(&str, KubeCount)] = &[
        ("replicas", KubeCount::Replicas),
        ("readyReplicas", KubeCount::ReadyReplicas),
        ("pendingPods", KubeCount::PendingPods),
        ("pendingSeconds", KubeCount::PendingSeconds),
        ("pods", KubeCount::Pods),
        ("interruptions", KubeCount::Interruptions),
        ("runningJobs", KubeCount::RunningJobs),
        ("pendingJobs", KubeCount::PendingJobs),
    ];

    fn parse(s: &str) -> Result<Self, String> {
        Self::ALL
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, k)| *k)
            .ok_or_else(|| {
                format!(
                    "'{s}' is not a Kubernetes count (known: {})",
                    Self::ALL.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                )
            })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct KubeSource {
    pub count: KubeCount,
    /// Only pods on (or asking for) this capacity type: `spot` or `on-demand`.
    pub capacity_type: Option<String>,
    /// Count the pods of this Deployment/StatefulSet of the same namespace instead of the
    /// target's (e.g. the spot variant `web-spot`).
    pub workload: Option<String>,
    /// Count pods matching this label selector (`app=web,tier=front`) instead.
    pub selector: Option<String>,
}

impl SourceSpec {
    /// Parse one source spec; errors name the offending key.
    pub fn parse(spec: &Value) -> Result<Self, String> {
        let Some(obj) = spec.as_object() else {
            return Err(format!(
                "a source spec is a mapping with one key naming its kind, e.g. {{prometheus: 'sum(x)'}}; got {spec}"
            ));
        };
        let (kind, body) = if let Some(k) = obj.get("kind") {
            let k = k.as_str().ok_or("'kind' must be a string")?;
            let mut rest = obj.clone();
            rest.remove("kind");
            (k.to_string(), Value::Object(rest))
        } else if obj.len() == 1 {
            let (k, v) = obj.iter().next().ok_or("empty source spec")?;
            (k.clone(), v.clone())
        } else {
            return Err(format!(
                "a source spec has exactly one key naming its kind (prometheus, redis, kubernetes); got keys {}",
                obj.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        };
        match kind.as_str() {
            "prometheus" => parse_prom(&body).map(Self::Prometheus),
            "redis" => parse_redis(&body).map(Self::Redis),
            "kubernetes" => parse_kube(&body).map(Self::Kubernetes),
            other => Err(format!(
                "unknown source kind '{other}' (known: prometheus, redis, kubernetes)"
            )),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Prometheus(_) => "prometheus",
            Self::Redis(_) => "redis",
            Self::Kubernetes(_) => "kubernetes",
        }
    }

    /// The option that carries a credential inline (a password in a URL), if any:
    /// `redis.url` (`redis://:PASSWORD@host`, `unix:///sock?pass=PASSWORD`) or
    /// `prometheus.server` (`https://user:PASSWORD@host`).
    pub fn inline_credential(&self) -> Option<&'static str> {
        match self {
            Self::Redis(r) if url_has_password(&r.url) => Some("redis.url"),
            Self::Prometheus(p) if p.server.as_deref().is_some_and(url_has_password) => {
                Some("prometheus.server")
            }
            _ => None,
        }
    }
}

/// A URL with a password in its userinfo, or in a `pass`/`password` query parameter
/// (Redis reads `pass` on `unix://` URLs). Text that is not a URL carries none.
pub fn url_has_password(text: &str) -> bool {
    let Ok(u) = url::Url::parse(text) else {
        return false;
    };
    u.password().is_some_and(|p| !p.is_empty())
        || u.query_pairs().any(|(k, _)| k == "pass" || k == "password")
}

fn options<'a>(kind: &str, body: &'a Value, allowed: &[&str]) -> Result<&'a Map<String, Value>, String> {
    let m = body
        .as_object()
        .ok_or_else(|| format!("'{kind}' must be a string or a mapping of options"))?;
    if let Some(k) = m.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(format!(
            "'{kind}.{k}' is not a known option (known: {})",
            allowed.join(", ")
        ));
    }
    Ok(m)
}

fn string(kind: &str, m: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
        Some(v) => Err(format!("'{kind}.{key}' must be a non-empty string, got {v}")),
    }
}

fn duration(kind: &str, m: &Map<String, Value>, key: &str) -> Result<Option<u64>, String> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            let s = n.to_string();
            parse_duration_ms(&s)
                .map(Some)
                .map_err(|e| format!("'{kind}.{key}': {e}"))
        }
        Some(Value::String(s)) => parse_duration_ms(s)
            .map(Some)
            .map_err(|e| format!("'{kind}.{key}': {e}")),
        Some(v) => Err(format!("'{kind}.{key}' must be a duration like 5s, got {v}")),
    }
}

/// `timeout` (default [`DEFAULT_TIMEOUT_MS`]), at most [`MAX_TIMEOUT_MS`].
fn timeout(kind: &str, m: &Map<String, Value>) -> Result<u64, String> {
    let ms = duration(kind, m, "timeout")?.unwrap_or(DEFAULT_TIMEOUT_MS);
    if ms > MAX_TIMEOUT_MS {
        return Err(format!(
            "'{kind}.timeout' is {}s, over the limit of {}s",
            ms as f64 / 1000.0,
            MAX_TIMEOUT_MS / 1000
        ));
    }
    Ok(ms)
}

/// Whether a source spec sets `timeout` itself (not the default).
pub fn sets_timeout(spec: &Value) -> bool {
    spec.as_object().is_some_and(|o| {
        o.contains_key("timeout")
            || o.values()
                .any(|v| v.as_object().is_some_and(|b| b.contains_key("timeout")))
    })
}

fn parse_prom(body: &Value) -> Result<PromSource, String> {
    if let Value::String(q) = body {
        if q.trim().is_empty() {
            return Err("'prometheus' query is empty".into());
        }
        return Ok(PromSource {
            query: q.clone(),
            server: None,
            ignore_null_values: true,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            history: None,
            auth: None,
        });
    }
    let m = options(
        "prometheus",
        body,
        &[
            "query",
            "server",
            "ignoreNullValues",
            "timeout",
            "history",
            "bearerTokenFrom",
            "basicAuth",
        ],
    )?;
    let query = string("prometheus", m, "query")?.ok_or("'prometheus.query' is missing")?;
    let server = string("prometheus", m, "server")?;
    if let Some(s) = &server
        && !(s.starts_with("http://") || s.starts_with("https://"))
    {
        return Err(format!(
            "'prometheus.server' must be an http:// or https:// URL, got '{s}'"
        ));
    }
    let ignore_null_values = match m.get("ignoreNullValues") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(v) => {
            return Err(format!(
                "'prometheus.ignoreNullValues' must be true or false, got {v}"
            ));
        }
    };
    let history = match m.get("history") {
        None | Some(Value::Null) => None,
        Some(h) => {
            let hm = options("prometheus.history", h, &["window", "step"])?;
            let window_ms = duration("prometheus.history", hm, "window")?
                .ok_or("'prometheus.history.window' is missing")?;
            let step_ms = duration("prometheus.history", hm, "step")?
                .unwrap_or(60_000)
                .max(1000);
            Some(HistorySpec { window_ms, step_ms })
        }
    };
    let bearer = secret_ref("prometheus.bearerTokenFrom", m.get("bearerTokenFrom"))?;
    let basic = match m.get("basicAuth") {
        None | Some(Value::Null) => None,
        Some(b) => {
            let bm = options("prometheus.basicAuth", b, &["username", "passwordFrom"])?;
            let username = string("prometheus.basicAuth", bm, "username")?
                .ok_or("'prometheus.basicAuth.username' is missing")?;
            let password = secret_ref("prometheus.basicAuth.passwordFrom", bm.get("passwordFrom"))?
                .ok_or("'prometheus.basicAuth.passwordFrom' is missing (a Secret reference {secret, key})")?;
            Some(PromAuth::Basic { username, password })
        }
    };
    let auth = match (bearer, basic) {
        (Some(_), Some(_)) => {
            return Err("'prometheus.bearerTokenFrom' and 'prometheus.basicAuth' exclude each other".into());
        }
        (Some(b), None) => Some(PromAuth::Bearer(b)),
        (None, basic) => basic,
    };
    Ok(PromSource {
        query,
        server,
        ignore_null_values,
        timeout_ms: timeout("prometheus", m)?,
        history,
        auth,
    })
}

/// `{secret: NAME, key: KEY}` at option `at` (e.g. `redis.passwordFrom`).
fn secret_ref(at: &str, v: Option<&Value>) -> Result<Option<SecretRef>, String> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let m = v
        .as_object()
        .ok_or_else(|| format!("'{at}' must be a Secret reference {{secret: NAME, key: KEY}}, got {v}"))?;
    let m = options(at, &Value::Object(m.clone()), &["secret", "key"])?.clone();
    let secret = string(at, &m, "secret")?.ok_or_else(|| format!("'{at}.secret' is missing"))?;
    let key = string(at, &m, "key")?.ok_or_else(|| format!("'{at}.key' is missing"))?;
    Ok(Some(SecretRef { secret, key }))
}

fn parse_redis(body: &Value) -> Result<RedisSource, String> {
    let m = options("redis", body, &["url", "list", "timeout", "passwordFrom"])?;
    let url = string("redis", m, "url")?.ok_or("'redis.url' is missing (e.g. redis://redis:6379/0)")?;
    if !(url.starts_with("redis://") || url.starts_with("rediss://") || url.starts_with("unix://")) {
        return Err(format!(
            "'redis.url' must start with redis://, rediss:// or unix://, got '{}'",
            crate::signals::redis_queue::redact(&url)
        ));
    }
    let password_from = secret_ref("redis.passwordFrom", m.get("passwordFrom"))?;
    if password_from.is_some() && url_has_password(&url) {
        return Err("'redis.passwordFrom' and a password in 'redis.url' exclude each other".into());
    }
    Ok(RedisSource {
        url,
        list: string("redis", m, "list")?.ok_or("'redis.list' is missing (the list's key)")?,
        timeout_ms: timeout("redis", m)?,
        password_from,
    })
}

fn parse_kube(body: &Value) -> Result<KubeSource, String> {
    if let Value::String(s) = body {
        return Ok(KubeSource {
            count: KubeCount::parse(s).map_err(|e| format!("'kubernetes': {e}"))?,
            capacity_type: None,
            workload: None,
            selector: None,
        });
    }
    let m = options(
        "kubernetes",
        body,
        &["count", "capacityType", "workload", "selector"],
    )?;
    let count = string("kubernetes", m, "count")?.ok_or("'kubernetes.count' is missing")?;
    let capacity_type = string("kubernetes", m, "capacityType")?;
    if let Some(c) = &capacity_type
        && c != "spot"
        && c != "on-demand"
    {
        return Err(format!(
            "'kubernetes.capacityType' must be spot or on-demand, got '{c}'"
        ));
    }
    let workload = string("kubernetes", m, "workload")?;
    let selector = string("kubernetes", m, "selector")?;
    if workload.is_some() && selector.is_some() {
        return Err("'kubernetes.workload' and 'kubernetes.selector' exclude each other".into());
    }
    Ok(KubeSource {
        count: KubeCount::parse(&count).map_err(|e| format!("'kubernetes.count': {e}"))?,
        capacity_type,
        workload,
        selector,
    })
}

/// The step of the range query for a signal with a window: 1 s up to a 2-minute window;
/// longer windows get `ceil(window / 120)` rounded up to whole seconds, so a range query
/// never returns more than 121 points per signal (a 10-minute window: 5 s, 1 hour: 30 s).
pub fn range_step_ms(window_ms: u64) -> u64 {
    if window_ms <= 120_000 {
        1000
    } else {
        window_ms.div_ceil(120).div_ceil(1000) * 1000
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_timeout_over_the_limit_is_refused_naming_the_key() {
        let e = SourceSpec::parse(&json!({"prometheus": {"query": "x", "timeout": "7d"}})).unwrap_err();
        assert!(
            e.contains("'prometheus.timeout' is 604800s, over the limit of 30s"),
            "{e}"
        );
        let e =
            SourceSpec::parse(&json!({"redis": {"url": "redis://r:6379/0", "list": "q", "timeout": "31s"}}))
                .unwrap_err();
        assert!(e.contains("'redis.timeout'"), "{e}");
        assert!(SourceSpec::parse(&json!({"prometheus": {"query": "x", "timeout": "30s"}})).is_ok());
        assert!(sets_timeout(
            &json!({"prometheus": {"query": "x", "timeout": "2s"}})
        ));
        assert!(sets_timeout(
            &json!({"kind": "redis", "url": "redis://r", "list": "q", "timeout": "2s"})
        ));
        assert!(!sets_timeout(&json!({"prometheus": "x"})));
    }

    #[test]
    fn parses_every_form() {
        let p = SourceSpec::parse(&json!({"prometheus": "sum(x)"})).unwrap();
        assert!(
            matches!(p, SourceSpec::Prometheus(PromSource { ref query, ignore_null_values: true, .. }) if query == "sum(x)")
        );
        let p = SourceSpec::parse(&json!({"prometheus": {"query": "q", "server": "http://p:9090",
            "history": {"window": "7d", "step": "5m"}, "timeout": "2s", "ignoreNullValues": false}}))
        .unwrap();
        let SourceSpec::Prometheus(p) = p else { panic!() };
        assert_eq!(
            p.history,
            Some(HistorySpec {
                window_ms: 7 * 86_400_000,
                step_ms: 300_000
            })
        );
        assert_eq!((p.timeout_ms, p.ignore_null_values), (2000, false));
        let r =
            SourceSpec::parse(&json!({"kind": "redis", "url": "redis://r:6379", "list": "jobs"})).unwrap();
        assert_eq!(r.kind(), "redis");
        let k = SourceSpec::parse(&json!({"kubernetes": {"count": "pendingPods", "capacityType": "spot"}}))
            .unwrap();
        assert!(matches!(
            k,
            SourceSpec::Kubernetes(KubeSource {
                count: KubeCount::PendingPods,
                ..
            })
        ));
        assert!(SourceSpec::parse(&json!({"kubernetes": "readyReplicas"})).is_ok());
    }

    #[test]
    fn errors_name_the_key() {
        for (spec, needle) in [
            (json!({"prometheus": {"qurey": "x"}}), "'prometheus.qurey'"),
            (
                json!({"prometheus": {"query": "x", "server": "p:9090"}}),
                "'prometheus.server'",
            ),
            (json!({"redis": {"url": "redis://x"}}), "'redis.list'"),
            (json!({"redis": {"url": "http://x", "list": "q"}}), "'redis.url'"),
            (json!({"kubernetes": {"count": "pending"}}), "'kubernetes.count'"),
            (
                json!({"kubernetes": {"count": "pods", "capacityType": "cheap"}}),
                "capacityType",
            ),
            (json!({"statsd": "x"}), "'statsd'"),
            (json!({"prometheus": "x", "redis": {}}), "exactly one key"),
            (
                json!({"prometheus": {"query": "x", "history": {"step": "1m"}}}),
                "history.window",
            ),
        ] {
            let e = SourceSpec::parse(&spec).unwrap_err();
            assert!(e.contains(needle), "{spec}: {e}");
        }
    }

    #[test]
    fn credentials_are_secret_references() {
        let r = SourceSpec::parse(&json!({"redis": {"url": "redis://r:6379/0", "list": "q",
            "passwordFrom": {"secret": "redis-auth", "key": "password"}}}))
        .unwrap();
        let SourceSpec::Redis(r) = r else { panic!() };
        assert_eq!(
            r.password_from,
            Some(SecretRef {
                secret: "redis-auth".into(),
                key: "password".into()
            })
        );
        let p = SourceSpec::parse(&json!({"prometheus": {"query": "x",
            "basicAuth": {"username": "u", "passwordFrom": {"secret": "s", "key": "k"}}}}))
        .unwrap();
        let SourceSpec::Prometheus(p) = p else { panic!() };
        assert!(matches!(p.auth, Some(PromAuth::Basic { ref username, .. }) if username == "u"));
        let p = SourceSpec::parse(&json!({"prometheus": {"query": "x",
            "bearerTokenFrom": {"secret": "s", "key": "token"}}}))
        .unwrap();
        assert!(matches!(
            p,
            SourceSpec::Prometheus(PromSource {
                auth: Some(PromAuth::Bearer(_)),
                ..
            })
        ));
        for (spec, needle) in [
            (
                json!({"redis": {"url": "redis://r", "list": "q", "passwordFrom": {"secret": "s"}}}),
                "'redis.passwordFrom.key' is missing",
            ),
            (
                json!({"redis": {"url": "redis://r", "list": "q", "passwordFrom": "s3cret"}}),
                "'redis.passwordFrom' must be a Secret reference",
            ),
            (
                json!({"redis": {"url": "redis://:pw@r", "list": "q",
                    "passwordFrom": {"secret": "s", "key": "k"}}}),
                "exclude each other",
            ),
            (
                json!({"prometheus": {"query": "x", "bearerTokenFrom": {"secret": "s", "key": "k"},
                    "basicAuth": {"username": "u", "passwordFrom": {"secret": "s", "key": "k"}}}}),
                "exclude each other",
            ),
        ] {
            let e = SourceSpec::parse(&spec).unwrap_err();
            assert!(e.contains(needle), "{spec}: {e}");
        }
    }

    #[test]
    fn passwords_in_urls_are_inline_credentials() {
        let inline = |spec: serde_json::Value| SourceSpec::parse(&spec).unwrap().inline_credential();
        assert_eq!(
            inline(json!({"redis": {"url": "redis://:pw@r:6379/0", "list": "q"}})),
            Some("redis.url")
        );
        assert_eq!(
            inline(json!({"redis": {"url": "unix:///run/r.sock?pass=pw", "list": "q"}})),
            Some("redis.url")
        );
        assert_eq!(
            inline(json!({"prometheus": {"query": "x", "server": "https://u:pw@prom:9090"}})),
            Some("prometheus.server")
        );
        assert_eq!(
            inline(json!({"redis": {"url": "redis://user@r:6379/0", "list": "q"}})),
            None,
            "a user name alone is no credential"
        );
        assert_eq!(inline(json!({"prometheus": "x"})), None);
    }

    #[test]
    fn range_steps() {
        assert_eq!(range_step_ms(60_000), 1000);
        assert_eq!(range_step_ms(120_000), 1000);
        assert_eq!(range_step_ms(600_000), 5000);
        assert_eq!(range_step_ms(3_600_000), 30_000);
        assert_eq!(range_step_ms(121_000), 2000);
    }
}
