//! The seam between an adapter's evaluation loop (the controller's reconciler) and the
//! signal sources and special actuators it plugs in (`crate::signals`, the controller's
//! Job and pool actuators in `crate::kube`). Plain data and traits: nothing here knows
//! Kubernetes' API, so both sides depend on this module and never on each other's.
//!
//! Per workload per tick the reconciler:
//! 1. builds a [`TargetRef`] (what is scaled, with its pod selector),
//! 2. lists the signals to gather with `core::evaluate::signal_plan` and hands them to a
//!    [`Gatherers`] set, which dispatches each signal by its *source kind* — the single
//!    key of its source spec in the workload's `signals:` mapping
//!    (`signals: {load: {prometheus: "sum(rate(x[1m]))"}}` -> kind `prometheus`) — to
//!    the [`SignalGatherer`] registered for that kind. Signals without a source spec go
//!    to the [`WorkloadFacts`] gatherer (replicas, ready-replicas),
//! 3. evaluates, then, when the outcome carries `jobs` or a `placement`, calls the
//!    [`Actuator`] (queue-job Jobs from a CronJob template; spot/on-demand variants).
//!    An actuator that writes the replicas itself says so ([`Actuated::scaled`]) and the
//!    reconciler then skips its own `/scale` write.
//!
//! Built in here (so `hpa`/`cron` work without any external source):
//! - kind `value`: `{value: 42}` a constant (handy for tests and examples);
//! - kind `annotation`: `{annotation: "example.com/load"}` the number in that annotation
//!   of the target object itself (a user or a job can `kubectl annotate` the load);
//! - no source: `replicas`, `ready-replicas` from the workload.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::Value;
use wasmscaler_sdk::{Sample, Signal, SignalRequest};

use crate::core::{Outcome, WorkloadSpec};
use crate::runtime::HistorySource;

/// The object being scaled, as the signal sources and actuators need to know it.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetRef {
    pub namespace: String,
    /// `Deployment`, `StatefulSet`, `CronJob`, or the kind named by `wasmscaler.io/target`.
    pub kind: String,
    /// `apps/v1`, `batch/v1`, `batch.volcano.sh/v1alpha1`, ...
    pub api_version: String,
    pub name: String,
    pub uid: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// The pods' label selector in query syntax (`app=web,tier=front`), when known
    /// (a Deployment's/StatefulSet's `spec.selector`, or `status.selector` of `/scale`).
    pub pod_selector: Option<String>,
    /// Replicas now (spec) and ready replicas (status), as the reconciler read them.
    pub replicas: u32,
    pub ready_replicas: u32,
}

/// One key of a Secret in the workload's own namespace (`{secret: NAME, key: KEY}` in a
/// source spec): where a signal's credentials come from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SecretRef {
    pub secret: String,
    pub key: String,
}

/// Resolves [`SecretRef`]s for the signal sources (the kube adapter's Secret cache,
/// `signals/secrets.rs`). Only ever called with the namespace of the workload whose signal
/// names the Secret. Errors name the Secret and the key, never a value.
pub trait Credentials: Send + Sync {
    /// The value of `secret.key` in `namespace` (waiting at most `wait` for a cache that
    /// has not listed yet).
    fn resolve<'a>(
        &'a self,
        namespace: &'a str,
        secret: &'a SecretRef,
        wait: std::time::Duration,
    ) -> BoxFuture<'a, Result<String, String>>;
}

/// For gatherers used without a cluster: every reference is an error.
pub struct NoCredentials;

impl Credentials for NoCredentials {
    fn resolve<'a>(
        &'a self,
        namespace: &'a str,
        secret: &'a SecretRef,
        _wait: std::time::Duration,
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            Err(format!(
                "Secret {namespace}/{}: this signal source was set up without Secret access",
                secret.secret
            ))
        })
    }
}

/// What a gatherer found. Signals it could not gather go into `errors` as
/// (signal name, why); the core turns a missing *required* signal into fail-static.
#[derive(Default)]
pub struct Gathered {
    pub signals: Vec<Signal>,
    pub errors: Vec<(String, String)>,
    pub history: Option<Arc<dyn HistorySource>>,
}

impl Gathered {
    pub fn merge(&mut self, other: Gathered) {
        self.signals.extend(other.signals);
        self.errors.extend(other.errors);
        self.history = match (self.history.take(), other.history) {
            (None, h) | (h, None) => h,
            (Some(a), Some(b)) => Some(Arc::new(FirstHistory(vec![a, b]))),
        };
    }
}

/// One signal to gather: what the policy asked for and the workload's source spec
/// (`None` when the workload maps no source for it).
pub type PlanItem<'a> = (SignalRequest, Option<&'a Value>);

/// A source of signals of one (or more) source kinds.
pub trait SignalGatherer: Send + Sync {
    /// Gather every item of `plan` (all of this gatherer's kind). Never panics and never
    /// blocks past its own timeout; failures are reported per signal in `errors`.
    fn gather<'a>(
        &'a self,
        target: &'a TargetRef,
        plan: &'a [PlanItem<'a>],
        now_ms: i64,
    ) -> BoxFuture<'a, Gathered>;
}

/// The source kind of a source spec: its only key (`{prometheus: ...}` -> `prometheus`),
/// or the value of a `kind` key (`{kind: redis, list: q}` -> `redis`).
pub fn source_kind(spec: &Value) -> Option<String> {
    let obj = spec.as_object()?;
    if let Some(Value::String(k)) = obj.get("kind") {
        return Some(k.clone());
    }
    if obj.len() == 1 {
        return obj.keys().next().cloned();
    }
    None
}

/// Gatherers by source kind, plus the workload-facts fallback.
#[derive(Clone)]
pub struct Gatherers {
    by_kind: HashMap<String, Arc<dyn SignalGatherer>>,
    facts: Arc<dyn SignalGatherer>,
}

impl Default for Gatherers {
    fn default() -> Self {
        let mut g = Self {
            by_kind: HashMap::new(),
            facts: Arc::new(WorkloadFacts),
        };
        g.register("value", Arc::new(WorkloadFacts));
        g.register("annotation", Arc::new(WorkloadFacts));
        g
    }
}

impl Gatherers {
    /// Route signals whose source spec is of `kind` to `gatherer` (replaces any earlier).
    pub fn register(&mut self, kind: &str, gatherer: Arc<dyn SignalGatherer>) {
        self.by_kind.insert(kind.to_string(), gatherer);
    }

    /// Replace the gatherer of signals without a source spec (default: [`WorkloadFacts`]).
    pub fn set_facts(&mut self, gatherer: Arc<dyn SignalGatherer>) {
        self.facts = gatherer;
    }

    pub fn kinds(&self) -> Vec<String> {
        let mut k: Vec<String> = self.by_kind.keys().cloned().collect();
        k.sort();
        k
    }

    /// Gather the whole plan: one call per source kind, in parallel.
    pub async fn gather(&self, target: &TargetRef, plan: &[PlanItem<'_>], now_ms: i64) -> Gathered {
        let mut out = Gathered::default();
        let mut groups: BTreeMap<String, Vec<PlanItem<'_>>> = BTreeMap::new();
        let mut facts: Vec<PlanItem<'_>> = Vec::new();
        for (req, src) in plan {
            match src {
                None => facts.push((req.clone(), None)),
                Some(spec) => match source_kind(spec) {
                    Some(kind) if self.by_kind.contains_key(&kind) => {
                        groups.entry(kind).or_default().push((req.clone(), *src))
                    }
                    Some(kind) => out.errors.push((
                        req.name.clone(),
                        format!(
                            "no signal source of kind '{kind}' in this controller (known: {})",
                            self.kinds().join(", ")
                        ),
                    )),
                    None => out.errors.push((
                        req.name.clone(),
                        "source spec must be a mapping with one key naming its kind, e.g. {prometheus: 'sum(x)'}"
                            .to_string(),
                    )),
                },
            }
        }
        let mut futs = Vec::new();
        if !facts.is_empty() {
            futs.push(self.facts.gather(target, &facts, now_ms));
        }
        for (kind, items) in &groups {
            if let Some(g) = self.by_kind.get(kind) {
                futs.push(g.gather(target, items, now_ms));
            }
        }
        for g in futures::future::join_all(futs).await {
            out.merge(g);
        }
        out
    }
}

/// Signals the reconciler already knows: `replicas`, `ready-replicas` (no source spec),
/// `{value: N}` and `{annotation: KEY}` on the target.
pub struct WorkloadFacts;

impl WorkloadFacts {
    fn one(target: &TargetRef, req: &SignalRequest, src: Option<&Value>) -> Result<f64, String> {
        match src {
            None => match req.name.as_str() {
                "replicas" => Ok(f64::from(target.replicas)),
                "ready-replicas" => Ok(f64::from(target.ready_replicas)),
                other => Err(format!(
                    "no source for signal '{other}': map it in wasmscaler.io/config, e.g. signals: {{{other}: {{prometheus: 'sum(...)'}}}}"
                )),
            },
            Some(spec) => {
                if let Some(v) = spec.get("value") {
                    return v
                        .as_f64()
                        .filter(|v| v.is_finite())
                        .ok_or_else(|| format!("'value' must be a number, got {v}"));
                }
                if let Some(key) = spec.get("annotation") {
                    let key = key
                        .as_str()
                        .ok_or_else(|| "'annotation' must name an annotation".to_string())?;
                    let text = target.annotations.get(key).ok_or_else(|| {
                        format!("annotation '{key}' is not set on {}/{}", target.kind, target.name)
                    })?;
                    return text
                        .trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|v| v.is_finite())
                        .ok_or_else(|| format!("annotation '{key}' = '{text}' is not a number"));
                }
                Err(format!("unsupported source spec {spec}"))
            }
        }
    }
}

impl SignalGatherer for WorkloadFacts {
    fn gather<'a>(
        &'a self,
        target: &'a TargetRef,
        plan: &'a [PlanItem<'a>],
        now_ms: i64,
    ) -> BoxFuture<'a, Gathered> {
        Box::pin(async move {
            let mut out = Gathered::default();
            for (req, src) in plan {
                match Self::one(target, req, *src) {
                    Ok(v) => out.signals.push(Signal {
                        name: req.name.clone(),
                        samples: vec![Sample::new(now_ms, v)],
                    }),
                    Err(e) => out.errors.push((req.name.clone(), e)),
                }
            }
            out
        })
    }
}

/// Tries each history source in turn; the first that knows the signal answers.
struct FirstHistory(Vec<Arc<dyn HistorySource>>);

impl HistorySource for FirstHistory {
    fn history(&self, signal: &str, window_ms: u64, step_ms: u64) -> Result<Vec<Sample>, String> {
        let mut last = format!("no history for signal '{signal}'");
        for h in &self.0 {
            match h.history(signal, window_ms, step_ms) {
                Ok(s) => return Ok(s),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

/// What a special actuator did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Actuated {
    /// The actuator wrote the workload's replicas itself (e.g. split across pool
    /// variants); the reconciler must not write `/scale`.
    pub scaled: bool,
    /// One line for the Event and the log, e.g. "created 3 Jobs from cronjob/q".
    pub summary: String,
}

/// Hook for decisions the `/scale` write cannot express: `outcome.jobs` (start Jobs) and
/// `outcome.placement` (pool split). Called only for active, unpaused workloads whose
/// outcome has `jobs` or a non-empty `placement` (in shadow mode with `dry_run = true`:
/// report, write nothing).
pub trait Actuator: Send + Sync {
    fn actuate<'a>(
        &'a self,
        target: &'a TargetRef,
        spec: &'a WorkloadSpec,
        outcome: &'a Outcome,
        dry_run: bool,
    ) -> BoxFuture<'a, Result<Actuated, String>>;

    /// Replicas this actuator manages for `target` right now (e.g. the sum over pool
    /// variants, or running Jobs of a CronJob), overriding the workload's own count.
    /// Err: an object the actuator would write refuses to be scaled by this workload (the
    /// message names it and the rule): the workload is not evaluated.
    fn current_replicas<'a>(
        &'a self,
        _target: &'a TargetRef,
    ) -> BoxFuture<'a, Result<Option<(u32, u32)>, String>> {
        Box::pin(async { Ok(None) })
    }
}

/// The default: does nothing, reports that nothing was done.
pub struct NoActuator;

impl Actuator for NoActuator {
    fn actuate<'a>(
        &'a self,
        _target: &'a TargetRef,
        _spec: &'a WorkloadSpec,
        outcome: &'a Outcome,
        _dry_run: bool,
    ) -> BoxFuture<'a, Result<Actuated, String>> {
        let summary = match (outcome.jobs, outcome.placement.is_empty()) {
            (Some(j), _) => format!("policy asked for {j} Jobs; no Job actuator configured"),
            (None, false) => "policy proposed a pool placement; no pool actuator configured".into(),
            _ => String::new(),
        };
        Box::pin(async move {
            Ok(Actuated {
                scaled: false,
                summary,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> TargetRef {
        TargetRef {
            namespace: "ns".into(),
            kind: "Deployment".into(),
            api_version: "apps/v1".into(),
            name: "web".into(),
            uid: None,
            labels: BTreeMap::new(),
            annotations: [("example.com/load".to_string(), "250".to_string())].into(),
            pod_selector: Some("app=web".into()),
            replicas: 3,
            ready_replicas: 2,
        }
    }

    #[tokio::test]
    async fn routes_by_kind_and_reports_unknown_kinds() {
        let g = Gatherers::default();
        let load = serde_json::json!({"annotation": "example.com/load"});
        let prom = serde_json::json!({"prometheus": "sum(x)"});
        let plan = vec![
            (SignalRequest::latest("load", ""), Some(&load)),
            (SignalRequest::latest("ready-replicas", ""), None),
            (SignalRequest::latest("rps", ""), Some(&prom)),
            (SignalRequest::latest("queue-length", ""), None),
        ];
        let got = g.gather(&target(), &plan, 1000).await;
        let val = |n: &str| {
            got.signals
                .iter()
                .find(|s| s.name == n)
                .map(|s| s.samples[0].value)
        };
        assert_eq!(val("load"), Some(250.0));
        assert_eq!(val("ready-replicas"), Some(2.0));
        let errs: Vec<&str> = got.errors.iter().map(|(n, _)| n.as_str()).collect();
        assert!(
            errs.contains(&"rps") && errs.contains(&"queue-length"),
            "{errs:?}"
        );
        assert!(got.errors.iter().any(|(_, e)| e.contains("'prometheus'")));
    }
}
