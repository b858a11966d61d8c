//! One reconcile of one annotated workload, modelled on kube-rs `controller-rs`
//! (`Context` + `reconcile` + `error_policy`, errors as metric labels), without its
//! `expect()`s: every failure is an Event, a log line and a metric, and the controller
//! keeps serving the other workloads.
//!
//! Self-triggering: the controller writes two annotations (`wasmscaler.io/state`,
//! `wasmscaler.io/status`) and `/scale`. Each write comes back through the watch. A
//! reconcile first compares a fingerprint of its *inputs* (the annotations minus those
//! two, replicas, ready replicas) with the one it last evaluated or wrote; when nothing
//! changed and the interval has not elapsed it only re-arms the timer. So a user's
//! `kubectl annotate` (or a load annotation change) is evaluated at once, our own writes
//! never are.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::autoscaling::v1::Scale;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::ApiResource;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};
use wasmscaler_sdk::Workload;

use super::leader::Leadership;
use super::metrics::{Metrics, WorkloadLabels};
use super::signals_api::{Actuator, Gatherers, TargetRef};
use crate::core::spec::{POLICY, STATE, STATUS};
use crate::core::{self, Action as CoreAction, Mode, Observation, Pause, Plan, WorkloadSpec, WorkloadState};
use crate::runtime::Registry;

/// How a kind of workload is read and scaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleVia {
    /// Deployment, StatefulSet: replicas from the object, written through `/scale`.
    Object,
    /// Any other resource with a `/scale` subresource: read and written through it.
    Subresource,
    /// No `/scale` (e.g. a CronJob whose Jobs a queue policy starts): the actuator owns it.
    Actuator,
}

/// Shared by every reconcile.
pub struct Shared {
    pub client: kube::Client,
    pub registry: Arc<Registry>,
    pub gatherers: Gatherers,
    pub actuator: Arc<dyn Actuator>,
    pub metrics: Arc<Metrics>,
    pub recorder: Recorder,
    pub leadership: Leadership,
    pub default_max_replicas: u32,
    pub field_manager: String,
    entries: Mutex<HashMap<String, Entry>>,
    targets: Mutex<HashMap<String, ApiResource>>,
}

impl Shared {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: kube::Client,
        registry: Arc<Registry>,
        gatherers: Gatherers,
        actuator: Arc<dyn Actuator>,
        metrics: Arc<Metrics>,
        recorder: Recorder,
        leadership: Leadership,
        default_max_replicas: u32,
    ) -> Self {
        Self {
            client,
            registry,
            gatherers,
            actuator,
            metrics,
            recorder,
            leadership,
            default_max_replicas,
            field_manager: "wasmscaler".into(),
            entries: Mutex::new(HashMap::new()),
            targets: Mutex::new(HashMap::new()),
        }
    }

    /// Forget in-memory state (on losing leadership: the next leader's writes win, and
    /// when we lead again we start from what is persisted on the workloads).
    pub fn forget_all(&self) {
        lock(&self.entries).clear();
        self.metrics.managed_workloads.set(0);
    }
}

/// One watched resource kind.
pub struct Context {
    pub shared: Arc<Shared>,
    pub resource: ApiResource,
    pub via: ScaleVia,
}

/// What we remember per workload between reconciles (a cache of what is persisted).
struct Entry {
    fingerprint: u64,
    next_due: Instant,
    state: WorkloadState,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("scale conflict on {0}: retrying on fresh state")]
    Conflict(String),
    #[error("target {0}: {1}")]
    Target(String, String),
    #[error("evaluation task failed: {0}")]
    Task(String),
}

impl Error {
    /// The metric label of this error.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube_api",
            Error::Conflict(_) => "conflict",
            Error::Target(..) => "target",
            Error::Task(_) => "task",
        }
    }
}

/// Requeue after an error: conflicts at once on fresh state, the rest with a pause.
pub fn error_policy(obj: Arc<DynamicObject>, err: &Error, ctx: Arc<Context>) -> Action {
    ctx.shared.metrics.error(err.kind());
    tracing::warn!(
        kind = %ctx.resource.kind,
        namespace = obj.namespace().unwrap_or_default(),
        name = %obj.name_any(),
        error = %err,
        "reconcile failed"
    );
    match err {
        Error::Conflict(_) => Action::requeue(Duration::from_millis(50)),
        Error::Kube(_) | Error::Task(_) => Action::requeue(Duration::from_secs(5)),
        Error::Target(..) => Action::requeue(Duration::from_secs(30)),
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn fingerprint(annotations: &BTreeMap<String, String>, replicas: u32, ready: u32) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for (k, v) in annotations {
        if k != STATE && k != STATUS {
            k.hash(&mut h);
            v.hash(&mut h);
        }
    }
    replicas.hash(&mut h);
    ready.hash(&mut h);
    h.finish()
}

fn as_u32(v: &Value) -> Option<u32> {
    v.as_u64().and_then(|n| u32::try_from(n).ok())
}

/// `matchLabels` of a label selector in query syntax.
fn selector_string(sel: &Value) -> Option<String> {
    let m = sel.get("matchLabels")?.as_object()?;
    let parts: Vec<String> = m
        .iter()
        .filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}")))
        .collect();
    (!parts.is_empty()).then(|| parts.join(","))
}

/// `apiVersion/Kind` or `apiVersion/Kind/name` (`apps/v1/Deployment/web`, `v1/Foo/x`).
pub fn parse_kind_ref(text: &str) -> Result<(String, String, String, Option<String>), String> {
    let parts: Vec<&str> = text.trim().split('/').collect();
    let (group, version, rest) = match parts.as_slice() {
        [v, rest @ ..] if v.starts_with('v') && v[1..].starts_with(|c: char| c.is_ascii_digit()) => {
            ("", *v, rest)
        }
        [g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(format!("'{text}' is not apiVersion/Kind[/name]")),
    };
    match rest {
        [kind] if !kind.is_empty() => Ok((group.into(), version.into(), kind.to_string(), None)),
        [kind, name] if !kind.is_empty() && !name.is_empty() => Ok((
            group.into(),
            version.into(),
            kind.to_string(),
            Some(name.to_string()),
        )),
        _ => Err(format!(
            "'{text}' is not apiVersion/Kind[/name] (e.g. batch.volcano.sh/v1alpha1/Job/train)"
        )),
    }
}

/// Resolve `apiVersion/Kind` through discovery (cached).
pub async fn discover(
    client: &kube::Client,
    group: &str,
    version: &str,
    kind: &str,
) -> Result<ApiResource, String> {
    let gvk = kube::core::GroupVersionKind::gvk(group, version, kind);
    kube::discovery::pinned_kind(client, &gvk)
        .await
        .map(|(ar, _)| ar)
        .map_err(|e| format!("cannot discover {group}/{version} {kind}: {e}"))
}

/// What was read about the workload to scale.
struct Live {
    replicas: u32,
    ready: u32,
    selector: Option<String>,
}

pub async fn reconcile(obj: Arc<DynamicObject>, ctx: Arc<Context>) -> Result<Action, Error> {
    let s = &ctx.shared;
    let annotations = obj.annotations().clone();
    let ns = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let key = format!("{}/{}/{}", ctx.resource.kind, ns, name);
    if !annotations.contains_key(POLICY) {
        if lock(&s.entries).remove(&key).is_some() {
            s.metrics.managed_workloads.set(lock(&s.entries).len() as i64);
        }
        return Ok(Action::await_change());
    }
    if !s.leadership.is_leader() {
        // Standby: watch (warm cache) but never decide or write.
        return Ok(Action::requeue(Duration::from_secs(5)));
    }

    // Facts from the object itself (Deployment/StatefulSet).
    let obj_replicas = as_u32(&obj.data["spec"]["replicas"]).unwrap_or(1);
    let obj_ready = as_u32(&obj.data["status"]["readyReplicas"]).unwrap_or(0);
    let fp = fingerprint(&annotations, obj_replicas, obj_ready);
    {
        let entries = lock(&s.entries);
        if let Some(e) = entries.get(&key)
            && e.fingerprint == fp
        {
            let now = Instant::now();
            if now < e.next_due {
                return Ok(Action::requeue(e.next_due - now));
            }
        }
    }

    let obj_ref = obj.object_ref(&ctx.resource);
    let spec = match WorkloadSpec::from_annotations(&annotations, s.default_max_replicas) {
        Ok(spec) => spec,
        Err(e) => {
            s.metrics.error("annotation");
            s.metrics.evaluation("invalid");
            tracing::warn!(%key, error = %e, "invalid annotation; not scaling");
            publish(
                s,
                &obj_ref,
                EventType::Warning,
                "InvalidAnnotation",
                "Evaluate",
                &e.to_string(),
            )
            .await;
            let status = json!({"action": "invalid", "error": e.to_string()});
            let api = Api::<DynamicObject>::namespaced_with(s.client.clone(), &ns, &ctx.resource);
            persist(s, &api, &name, &annotations, None, &status).await?;
            let mut entries = lock(&s.entries);
            let state = entries.remove(&key).map(|e| e.state).unwrap_or_default();
            // Wait for the annotation to change (the fingerprint then differs).
            entries.insert(
                key,
                Entry {
                    fingerprint: fp,
                    next_due: Instant::now() + Duration::from_secs(3600),
                    state,
                },
            );
            return Ok(Action::await_change());
        }
    };

    // Where replicas are read and written.
    let (scale_api, scale_name, via) = match &spec.target {
        Some(t) => {
            let (g, v, k, n) = parse_kind_ref(t).map_err(|m| Error::Target(key.clone(), m))?;
            let n = n.ok_or_else(|| Error::Target(key.clone(), format!("'{t}' names no object")))?;
            let cache_key = format!("{g}/{v}/{k}");
            let cached = lock(&s.targets).get(&cache_key).cloned();
            let ar = match cached {
                Some(ar) => ar,
                None => {
                    let ar = discover(&s.client, &g, &v, &k)
                        .await
                        .map_err(|m| Error::Target(key.clone(), m))?;
                    lock(&s.targets).insert(cache_key, ar.clone());
                    ar
                }
            };
            (
                Api::<DynamicObject>::namespaced_with(s.client.clone(), &ns, &ar),
                n,
                ScaleVia::Subresource,
            )
        }
        None => (
            Api::<DynamicObject>::namespaced_with(s.client.clone(), &ns, &ctx.resource),
            name.clone(),
            ctx.via,
        ),
    };
    let obj_api = Api::<DynamicObject>::namespaced_with(s.client.clone(), &ns, &ctx.resource);

    let mut target = TargetRef {
        namespace: ns.clone(),
        kind: ctx.resource.kind.clone(),
        api_version: ctx.resource.api_version.clone(),
        name: name.clone(),
        uid: obj.uid(),
        labels: obj.labels().clone(),
        annotations: annotations.clone(),
        pod_selector: selector_string(&obj.data["spec"]["selector"]),
        replicas: obj_replicas,
        ready_replicas: obj_ready,
    };
    let live = match via {
        ScaleVia::Object => Live {
            replicas: obj_replicas,
            ready: obj_ready,
            selector: target.pod_selector.clone(),
        },
        ScaleVia::Subresource => {
            let sc = scale_api.get_scale(&scale_name).await?;
            let replicas = sc.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
            let st = sc.status.as_ref();
            Live {
                replicas: u32::try_from(replicas).unwrap_or(0),
                // /scale has no ready count: report observed replicas as ready.
                ready: st.map(|s| u32::try_from(s.replicas).unwrap_or(0)).unwrap_or(0),
                selector: st.and_then(|s| s.selector.clone()),
            }
        }
        ScaleVia::Actuator => Live {
            replicas: 0,
            ready: 0,
            selector: None,
        },
    };
    target.replicas = live.replicas;
    target.ready_replicas = live.ready;
    if live.selector.is_some() {
        target.pod_selector = live.selector;
    }
    if let Some((r, ready)) = s.actuator.current_replicas(&target).await {
        target.replicas = r;
        target.ready_replicas = ready;
    }

    // State: our cache, else what is persisted on the workload.
    let cached_state = lock(&s.entries).get(&key).map(|e| e.state.clone());
    let state = match cached_state {
        Some(st) => st,
        None => match annotations.get(STATE) {
            Some(text) => {
                let (st, warn) = WorkloadState::from_json(text);
                if let Some(w) = warn {
                    s.metrics.error("state");
                    publish(s, &obj_ref, EventType::Warning, "StateUnreadable", "Evaluate", &w).await;
                }
                st
            }
            None => WorkloadState::default(),
        },
    };

    let started = Instant::now();
    let now = now_ms();
    let workload = Workload {
        kind: target.kind.clone(),
        namespace: ns.clone(),
        name: name.clone(),
        replicas: target.replicas,
        ready_replicas: target.ready_replicas,
        min_replicas: spec.guardrails.min_replicas,
        max_replicas: spec.guardrails.max_replicas,
        labels: target
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    let current = target.replicas;
    let mut new_state = state.clone();

    let outcome = match Plan::resolve(&s.registry, &spec) {
        Err(e) => {
            // Fail-static (or fallback after N failures), as for a policy error.
            s.metrics.error("resolve");
            let v = spec.guardrails.on_failure(&mut new_state.guard, current);
            let desired = v.replicas;
            let mut reason = format!("policy unavailable: {e}");
            for n in &v.notes {
                reason.push_str(&format!("; {n}"));
            }
            core::Outcome {
                runs: Vec::new(),
                proposal: None,
                desired,
                action: if desired == current {
                    CoreAction::Hold
                } else if spec.mode == Mode::Shadow {
                    CoreAction::Shadow {
                        from: current,
                        to: desired,
                    }
                } else {
                    CoreAction::Scale {
                        from: current,
                        to: desired,
                    }
                },
                jobs: None,
                placement: Vec::new(),
                metrics: Vec::new(),
                recheck_after_ms: None,
                reason,
                failed: true,
            }
        }
        Ok(plan) => {
            let items = core::evaluate::signal_plan(&plan, &spec);
            let gathered = s.gatherers.gather(&target, &items, now).await;
            for (sig, why) in &gathered.errors {
                s.metrics.error("signal");
                tracing::debug!(%key, signal = %sig, error = %why, "signal not gathered");
            }
            let obs = Observation {
                now_ms: now,
                workload,
                signals: gathered.signals,
                signal_errors: gathered.errors,
                history: gathered.history,
            };
            let spec2 = spec.clone();
            let mut st = new_state;
            let (outcome, st) = tokio::task::spawn_blocking(move || {
                let o = core::evaluate(&plan, &spec2, obs, &mut st);
                (o, st)
            })
            .await
            .map_err(|e| Error::Task(e.to_string()))?;
            new_state = st;
            outcome
        }
    };
    s.metrics
        .evaluation_seconds
        .observe(started.elapsed().as_secs_f64());
    for run in &outcome.runs {
        s.metrics
            .policy_seconds
            .get_or_create(&super::metrics::PolicyLabel {
                policy: run.policy.clone(),
            })
            .observe(run.latency.as_secs_f64());
        if let Err(e) = &run.result {
            s.metrics.error(e.kind());
        }
    }
    let labels = WorkloadLabels {
        namespace: ns.clone(),
        kind: target.kind.clone(),
        name: name.clone(),
    };
    s.metrics
        .replicas_current
        .get_or_create(&labels)
        .set(i64::from(current));
    s.metrics
        .replicas_desired
        .get_or_create(&labels)
        .set(i64::from(outcome.desired));

    // Special actuation (Jobs, pool split).
    let mut actuated_scale = false;
    let mut extra = String::new();
    if outcome.jobs.is_some() || !outcome.placement.is_empty() {
        let dry = spec.mode == Mode::Shadow || spec.pause != Pause::No;
        match s.actuator.actuate(&target, &spec, &outcome, dry).await {
            Ok(a) => {
                actuated_scale = a.scaled;
                extra = a.summary;
            }
            Err(e) => {
                s.metrics.error("actuator");
                publish(s, &obj_ref, EventType::Warning, "ActuationFailed", "Scale", &e).await;
            }
        }
    }

    let mut written_replicas = obj_replicas;
    let result_label;
    match outcome.action {
        CoreAction::Scale { from, to } => {
            if !s.leadership.is_leader() {
                return Ok(Action::requeue(Duration::from_secs(5)));
            }
            if !actuated_scale && via != ScaleVia::Actuator {
                write_scale(s, &scale_api, &scale_name, from, to, &key).await?;
            }
            spec.guardrails.record_scale(&mut new_state.guard, now, from, to);
            s.metrics
                .scale_writes
                .get_or_create(&super::metrics::ResultLabel {
                    result: if to > from { "up" } else { "down" }.into(),
                })
                .inc();
            if via == ScaleVia::Object && spec.target.is_none() {
                written_replicas = to;
            }
            result_label = "scale";
            let note = with_extra(format!("scaled from {from} to {to}: {}", outcome.reason), &extra);
            tracing::info!(%key, from, to, reason = %outcome.reason, "scaled");
            publish(s, &obj_ref, EventType::Normal, "Scaled", "Scale", &note).await;
        }
        CoreAction::Shadow { from, to } => {
            result_label = "shadow";
            let note = with_extra(
                format!("shadow mode: would scale from {from} to {to}: {}", outcome.reason),
                &extra,
            );
            tracing::info!(%key, from, to, reason = %outcome.reason, "shadow decision");
            publish(
                s,
                &obj_ref,
                EventType::Normal,
                "ShadowDecision",
                "Evaluate",
                &note,
            )
            .await;
        }
        CoreAction::Hold => {
            result_label = if outcome.failed {
                "failed"
            } else if spec.pause != Pause::No {
                "paused"
            } else {
                "hold"
            };
            if !extra.is_empty() {
                publish(s, &obj_ref, EventType::Normal, "Actuated", "Scale", &extra).await;
            }
            if spec.pause != Pause::No
                && let Some(p) = outcome.proposal
                && p != current
            {
                let note = format!("paused: policy proposed {p}, holding at {current}");
                publish(s, &obj_ref, EventType::Normal, "ScalingPaused", "Evaluate", &note).await;
            }
        }
    }
    if outcome.failed {
        s.metrics.evaluation("failed");
        tracing::warn!(%key, reason = %outcome.reason, "evaluation failed; fail-static");
        publish(
            s,
            &obj_ref,
            EventType::Warning,
            "EvaluationFailed",
            "Evaluate",
            &outcome.reason,
        )
        .await;
    } else {
        s.metrics.evaluation(result_label);
    }

    let status = json!({
        "action": result_label,
        "current": current,
        "desired": outcome.desired,
        "proposal": outcome.proposal,
        "mode": if spec.mode == Mode::Shadow { "shadow" } else { "active" },
        "reason": outcome.reason,
        "policies": outcome.runs.iter().map(|r| json!({
            "policy": r.policy,
            "digest": r.digest.get(..12).unwrap_or(&r.digest),
            "result": match &r.result { Ok(d) => format!("ok: {}", d.replicas), Err(e) => e.kind().to_string() },
        })).collect::<Vec<_>>(),
    });
    persist(s, &obj_api, &name, &annotations, Some(&new_state), &status).await?;

    let wait_ms = outcome
        .recheck_after_ms
        .map(|r| r.min(spec.interval_ms))
        .unwrap_or(spec.interval_ms)
        .max(100);
    let wait = Duration::from_millis(wait_ms);
    let mut entries = lock(&s.entries);
    entries.insert(
        key,
        Entry {
            fingerprint: fingerprint(&annotations, written_replicas, obj_ready),
            next_due: Instant::now() + wait,
            state: new_state,
        },
    );
    s.metrics.managed_workloads.set(entries.len() as i64);
    Ok(Action::requeue(wait))
}

fn with_extra(mut note: String, extra: &str) -> String {
    if !extra.is_empty() {
        note.push_str("; ");
        note.push_str(extra);
    }
    note
}

/// Write replicas through `/scale`, on the state the decision was made from: read the
/// live Scale, refuse if someone else changed replicas meanwhile, replace with its
/// resourceVersion (409 -> retry on fresh state).
async fn write_scale(
    s: &Shared,
    api: &Api<DynamicObject>,
    name: &str,
    from: u32,
    to: u32,
    key: &str,
) -> Result<(), Error> {
    let live: Scale = api.get_scale(name).await?;
    let live_replicas = live.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    if i64::from(live_replicas) != i64::from(from) {
        return Err(Error::Conflict(format!(
            "{key}: replicas changed to {live_replicas} since the decision (from {from})"
        )));
    }
    let mut next = live.clone();
    let mut spec = next.spec.take().unwrap_or_default();
    spec.replicas = Some(i32::try_from(to).unwrap_or(i32::MAX));
    next.spec = Some(spec);
    let pp = PostParams {
        field_manager: Some(s.field_manager.clone()),
        ..Default::default()
    };
    match api.replace_scale(name, &pp, &next).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Err(Error::Conflict(key.to_string())),
        Err(e) => Err(e.into()),
    }
}

/// Write the state and status annotations when they changed (merge patch; the status
/// gets a `since` timestamp only when its content changes, so a steady workload costs
/// no writes).
async fn persist(
    s: &Shared,
    api: &Api<DynamicObject>,
    name: &str,
    annotations: &BTreeMap<String, String>,
    state: Option<&WorkloadState>,
    status: &Value,
) -> Result<(), Error> {
    let mut patch = serde_json::Map::new();
    if let Some(st) = state {
        let text = st.to_json();
        if annotations.get(STATE) != Some(&text) {
            patch.insert(STATE.to_string(), Value::String(text));
        }
    }
    let old_content = annotations
        .get(STATUS)
        .and_then(|t| serde_json::from_str::<Value>(t).ok())
        .map(|mut v| {
            if let Some(o) = v.as_object_mut() {
                o.remove("since");
            }
            v
        });
    if old_content.as_ref() != Some(status) {
        let mut st = status.clone();
        if let Some(o) = st.as_object_mut() {
            o.insert(
                "since".into(),
                Value::String(k8s_openapi::jiff::Timestamp::now().to_string()),
            );
        }
        patch.insert(STATUS.to_string(), Value::String(st.to_string()));
    }
    if patch.is_empty() {
        return Ok(());
    }
    let body = json!({"metadata": {"annotations": patch}});
    let pp = PatchParams {
        field_manager: Some(s.field_manager.clone()),
        ..Default::default()
    };
    api.patch(name, &pp, &Patch::Merge(&body)).await?;
    Ok(())
}

async fn publish(
    s: &Shared,
    obj_ref: &k8s_openapi::api::core::v1::ObjectReference,
    type_: EventType,
    reason: &str,
    action: &str,
    note: &str,
) {
    // Event notes are limited to 1 kB.
    let mut note = note.to_string();
    if note.len() > 1000 {
        let mut cut = 997;
        while !note.is_char_boundary(cut) {
            cut -= 1;
        }
        note.truncate(cut);
        note.push_str("...");
    }
    let ev = Event {
        type_,
        reason: reason.to_string(),
        note: Some(note),
        action: action.to_string(),
        secondary: None,
    };
    if let Err(e) = s.recorder.publish(&ev, obj_ref).await {
        s.metrics.error("event");
        tracing::warn!(error = %e, reason, "cannot publish event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_refs_parse() {
        assert_eq!(
            parse_kind_ref("batch.volcano.sh/v1alpha1/Job/train").unwrap(),
            (
                "batch.volcano.sh".into(),
                "v1alpha1".into(),
                "Job".into(),
                Some("train".into())
            )
        );
        assert_eq!(
            parse_kind_ref("v1/ReplicationController/x").unwrap(),
            (
                "".into(),
                "v1".into(),
                "ReplicationController".into(),
                Some("x".into())
            )
        );
        assert_eq!(parse_kind_ref("apps/v1/Deployment").unwrap().3, None);
        assert!(parse_kind_ref("web").is_err());
        assert!(parse_kind_ref("a/b/c/d/e").is_err());
    }

    #[test]
    fn fingerprint_ignores_our_own_annotations() {
        let mut a: BTreeMap<String, String> = [(POLICY.to_string(), "hpa".to_string())].into();
        let f = fingerprint(&a, 3, 3);
        a.insert(STATE.into(), "{}".into());
        a.insert(STATUS.into(), "{}".into());
        assert_eq!(fingerprint(&a, 3, 3), f);
        assert_ne!(fingerprint(&a, 4, 3), f);
        a.insert("example.com/load".into(), "5".into());
        assert_ne!(fingerprint(&a, 3, 3), f);
    }
}
