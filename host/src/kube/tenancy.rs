//! What one tenant's annotations may ask of the controller, by the operator's flags.
//!
//! Anyone who can annotate a workload chooses its policy, its signals and its interval.
//! The controller runs with its own credentials and network reach, so the operator bounds
//! what an annotation can make it do: which servers a signal may call (the default
//! `--prometheus-url` is always allowed: the operator named it), how often a workload is
//! evaluated, how long one signal call may hold a reconcile slot, and whether a password
//! may be written into an annotation (by default it may not: credentials come from a
//! Secret reference, `signals/secrets.rs`). A workload that
//! asks for more is refused like any bad annotation (an `InvalidAnnotation` Event and the
//! status name the rule); every other workload is served as before.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::core::spec::{INTERVAL, WorkloadSpec};
use crate::signals::source::{SourceSpec, sets_timeout};

/// The operator's rules (`--allowed-signal-servers`, `--min-interval`,
/// `--allow-inline-credentials`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenancyRules {
    /// Servers an annotation may name for a signal, as `host` (any port), `host:port`, or
    /// `unix` (Redis over a local socket). None: any server.
    pub allowed_signal_servers: Option<Vec<String>>,
    /// The shortest `wasmscaler.io/interval` accepted.
    pub min_interval: Duration,
    /// Accept passwords inside signal URLs (`redis://:PASSWORD@host`). Off by default:
    /// an annotation is readable by everyone who can read the workload, so a credential
    /// belongs in a Secret (`passwordFrom: {secret, key}`).
    pub allow_inline_credentials: bool,
}

impl Default for TenancyRules {
    fn default() -> Self {
        Self {
            allowed_signal_servers: None,
            min_interval: Duration::from_secs(5),
            allow_inline_credentials: false,
        }
    }
}

impl TenancyRules {
    /// The first rule `spec` breaks, as a message naming the annotation or signal.
    pub fn check(&self, spec: &WorkloadSpec) -> Result<(), String> {
        let min_ms = u64::try_from(self.min_interval.as_millis()).unwrap_or(u64::MAX);
        if spec.interval_ms < min_ms {
            return Err(format!(
                "{INTERVAL}: {} is shorter than the controller's minimum {} (--min-interval)",
                seconds(spec.interval_ms),
                seconds(min_ms)
            ));
        }
        for (name, raw) in &spec.signal_sources {
            // A spec that does not parse is reported by the gatherer, naming the key.
            let Ok(source) = SourceSpec::parse(raw) else {
                continue;
            };
            let (url, timeout_ms, kind) = match &source {
                SourceSpec::Prometheus(p) => (p.server.as_deref(), p.timeout_ms, "prometheus"),
                SourceSpec::Redis(r) => (Some(r.url.as_str()), r.timeout_ms, "redis"),
                SourceSpec::Kubernetes(_) => continue,
            };
            if sets_timeout(raw) && timeout_ms > spec.interval_ms {
                return Err(format!(
                    "signal '{name}': '{kind}.timeout' {} is longer than the workload's interval {}",
                    seconds(timeout_ms),
                    seconds(spec.interval_ms)
                ));
            }
            if let Some(url) = url {
                self.allowed(url)
                    .map_err(|why| format!("signal '{name}': '{kind}' server {why}"))?;
            }
            if !self.allow_inline_credentials
                && let Some(key) = source.inline_credential()
            {
                let from = match &source {
                    SourceSpec::Redis(_) => "'redis.passwordFrom: {secret: NAME, key: KEY}'",
                    _ => "'prometheus.bearerTokenFrom' or 'prometheus.basicAuth.passwordFrom'",
                };
                return Err(format!(
                    "signal '{name}': '{key}' carries a password; reference a Secret instead ({from}), \
                     or run the controller with --allow-inline-credentials"
                ));
            }
        }
        Ok(())
    }

    fn allowed(&self, url: &str) -> Result<(), String> {
        let Some(list) = &self.allowed_signal_servers else {
            return Ok(());
        };
        let shown = crate::signals::redis_queue::redact(url);
        let parsed = url::Url::parse(url).map_err(|e| format!("'{shown}' is not a URL: {e}"))?;
        let ok = if parsed.scheme() == "unix" {
            list.iter().any(|a| a == "unix")
        } else {
            let host = parsed.host_str().unwrap_or_default().trim_matches(['[', ']']);
            let port = parsed.port_or_known_default();
            list.iter().any(|a| match a.rsplit_once(':') {
                Some((h, p)) if !h.is_empty() && p.parse::<u16>().is_ok() => {
                    h.trim_matches(['[', ']']).eq_ignore_ascii_case(host) && p.parse().ok() == port
                }
                _ => a.eq_ignore_ascii_case(host),
            })
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "'{shown}' is not in the controller's --allowed-signal-servers ({})",
                list.join(", ")
            ))
        }
    }
}

/// The annotation by which an object's owner lets annotated workloads of its namespace
/// scale it as their `wasmscaler.io/target` or as a pool variant: a comma-separated list
/// of the annotated workloads' names, or `*` for any of them.
pub use crate::core::spec::SCALABLE_BY;

/// Whether the object with `annotations` lets the annotated workload `scaler` (a name in
/// the same namespace) write its replicas. Editing the annotated workload proves nothing
/// about another object: its owner has to opt in, or every tenant who can annotate one
/// Deployment could scale every `/scale` object of the namespace.
pub fn scalable_by(annotations: &BTreeMap<String, String>, scaler: &str) -> bool {
    annotations
        .get(SCALABLE_BY)
        .is_some_and(|list| list.split(',').map(str::trim).any(|n| n == "*" || n == scaler))
}

/// The refusal for an object (`what`, e.g. "Deployment/db") that has not opted in.
pub fn not_scalable_by(what: &str, scaler_kind: &str, scaler: &str) -> String {
    format!(
        "{what} has not opted in to being scaled by {scaler_kind}/{scaler}: annotate it \
         {SCALABLE_BY}: {scaler} (a comma-separated list of names, or '*' for any annotated \
         workload of the namespace)"
    )
}

fn seconds(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{}ms", ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_object_that_names_the_scaler_may_be_scaled_by_it() {
        let with = |v: &str| BTreeMap::from([(SCALABLE_BY.to_string(), v.to_string())]);
        assert!(!scalable_by(&BTreeMap::new(), "web"));
        assert!(scalable_by(&with("web"), "web"));
        assert!(scalable_by(&with("api, web ,jobs"), "web"));
        assert!(scalable_by(&with("*"), "web"));
        assert!(!scalable_by(&with("webx,we"), "web"));
        assert!(!scalable_by(&with(""), "web"));
    }

    fn spec(pairs: &[(&str, &str)]) -> WorkloadSpec {
        let a: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        WorkloadSpec::from_annotations(&a, 100).unwrap()
    }

    fn rules(servers: Option<&[&str]>) -> TenancyRules {
        TenancyRules {
            allowed_signal_servers: servers.map(|s| s.iter().map(|x| x.to_string()).collect()),
            min_interval: Duration::from_secs(5),
            // This module's tests of the allowlist name passwords in URLs.
            allow_inline_credentials: true,
        }
    }

    const POLICY: (&str, &str) = ("wasmscaler.io/policy", "hpa");

    #[test]
    fn an_interval_under_the_minimum_is_refused() {
        let e = rules(None)
            .check(&spec(&[POLICY, ("wasmscaler.io/interval", "100ms")]))
            .unwrap_err();
        assert_eq!(
            e,
            "wasmscaler.io/interval: 100ms is shorter than the controller's minimum 5s (--min-interval)"
        );
        assert!(
            rules(None)
                .check(&spec(&[POLICY, ("wasmscaler.io/interval", "5s")]))
                .is_ok()
        );
        assert!(rules(None).check(&spec(&[POLICY])).is_ok(), "the 15 s default");
    }

    #[test]
    fn only_allowlisted_servers_may_be_named() {
        let cfg = |src: &str| {
            spec(&[
                POLICY,
                ("wasmscaler.io/config", &format!("{{signals: {{load: {src}}}}}")),
            ])
        };
        let allow = rules(Some(&["prometheus.monitoring", "redis.jobs:6379"]));
        assert!(
            allow.check(&cfg("{prometheus: 'sum(x)'}")).is_ok(),
            "the default server"
        );
        assert!(
            allow
                .check(&cfg(
                    "{prometheus: {query: x, server: 'http://prometheus.monitoring:9090'}}"
                ))
                .is_ok()
        );
        assert!(
            allow
                .check(&cfg("{redis: {url: 'redis://:pw@redis.jobs:6379/0', list: q}}"))
                .is_ok()
        );
        let e = allow
            .check(&cfg(
                "{redis: {url: 'redis://:secret@redis.jobs:6380/0', list: q}}",
            ))
            .unwrap_err();
        assert!(
            e.starts_with("signal 'load': 'redis' server 'redis://:***@redis.jobs:6380/0' is not in")
                && !e.contains("secret"),
            "{e}"
        );
        let e = allow
            .check(&cfg("{prometheus: {query: x, server: 'http://169.254.169.254'}}"))
            .unwrap_err();
        assert!(
            e.contains("'http://169.254.169.254' is not in the controller's --allowed-signal-servers"),
            "{e}"
        );
        let e = allow
            .check(&cfg("{redis: {url: 'unix:///run/redis.sock', list: q}}"))
            .unwrap_err();
        assert!(e.contains("unix:///run/redis.sock"), "{e}");
        assert!(
            rules(Some(&["unix"]))
                .check(&cfg("{redis: {url: 'unix:///run/redis.sock', list: q}}"))
                .is_ok()
        );
        assert!(
            rules(None)
                .check(&cfg("{redis: {url: 'redis://anywhere:1/0', list: q}}"))
                .is_ok()
        );
    }

    #[test]
    fn passwords_in_urls_are_refused_unless_allowed() {
        let cfg = |src: &str| {
            spec(&[
                POLICY,
                ("wasmscaler.io/config", &format!("{{signals: {{queue: {src}}}}}")),
            ])
        };
        let strict = TenancyRules::default();
        let e = strict
            .check(&cfg(
                "{redis: {url: 'redis://:hunter2@redis.jobs:6379/0', list: q}}",
            ))
            .unwrap_err();
        assert_eq!(
            e,
            "signal 'queue': 'redis.url' carries a password; reference a Secret instead \
             ('redis.passwordFrom: {secret: NAME, key: KEY}'), or run the controller with \
             --allow-inline-credentials"
        );
        let e = strict
            .check(&cfg(
                "{prometheus: {query: x, server: 'https://u:hunter2@prom:9090'}}",
            ))
            .unwrap_err();
        assert!(
            e.starts_with("signal 'queue': 'prometheus.server' carries a password") && !e.contains("hunter2"),
            "{e}"
        );
        assert!(
            strict
                .check(&cfg(
                    "{redis: {url: 'redis://redis.jobs:6379/0', list: q, passwordFrom: {secret: s, key: k}}}"
                ))
                .is_ok()
        );
        let lenient = TenancyRules {
            allow_inline_credentials: true,
            ..TenancyRules::default()
        };
        assert!(
            lenient
                .check(&cfg(
                    "{redis: {url: 'redis://:hunter2@redis.jobs:6379/0', list: q}}"
                ))
                .is_ok()
        );
    }

    #[test]
    fn a_timeout_longer_than_the_interval_is_refused() {
        let e = rules(None)
            .check(&spec(&[
                POLICY,
                ("wasmscaler.io/interval", "10s"),
                (
                    "wasmscaler.io/config",
                    "{signals: {load: {prometheus: {query: x, timeout: 20s}}}}",
                ),
            ]))
            .unwrap_err();
        assert_eq!(
            e,
            "signal 'load': 'prometheus.timeout' 20s is longer than the workload's interval 10s"
        );
    }
}
