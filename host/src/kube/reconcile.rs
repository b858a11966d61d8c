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
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::ApiResource;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};
use wasmscaler_sdk::Workload;

use super::events::{EventLog, Notice};
use super::leader::Leadership;
use super::metrics::{Metrics, WorkloadLabels};
use super::report::{PolicyStatus, Status, transitions};
use super::tenancy::TenancyRules;
use crate::core::adapter::{Actuator, Gatherers, TargetRef};
use crate::core::decision_log::{DecisionLog, Record, Source, WorkloadId};
use crate::core::spec::{POLICY, STATE, STATUS, TARGET};
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
    pub events: EventLog,
    pub leadership: Leadership,
    pub default_max_replicas: u32,
    pub tenancy: TenancyRules,
    /// One line per evaluation, when the decision log is on.
    pub decision_log: Option<Arc<DecisionLog>>,
    pub field_manager: String,
    entries: Mutex<HashMap<String, Entry>>,
    targets: Mutex<HashMap<String, ApiResource>>,
    /// [`Plan::config_key`] -> the rejection of that config, if any.
    validated: Mutex<HashMap<u64, Option<String>>>,
    /// Failed reconciles in a row, per workload key (for [`error_policy`]'s backoff).
    retries: Mutex<HashMap<String, u32>>,
}

impl Shared {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: kube::Client,
        registry: Arc<Registry>,
        gatherers: Gatherers,
        actuator: Arc<dyn Actuator>,
        metrics: Arc<Metrics>,
        events: EventLog,
        leadership: Leadership,
        default_max_replicas: u32,
        tenancy: TenancyRules,
        decision_log: Option<Arc<DecisionLog>>,
    ) -> Self {
        Self {
            decision_log,
            client,
            registry,
            gatherers,
            actuator,
            metrics,
            events,
            leadership,
            default_max_replicas,
            tenancy,
            field_manager: "wasmscaler".into(),
            entries: Mutex::new(HashMap::new()),
            targets: Mutex::new(HashMap::new()),
            validated: Mutex::new(HashMap::new()),
            retries: Mutex::new(HashMap::new()),
        }
    }

    /// Forget in-memory state (on losing leadership: the next leader's writes win, and
    /// when we lead again we start from what is persisted on the workloads).
    pub fn forget_all(&self) {
        lock(&self.entries).clear();
        self.metrics.managed_workloads.set(0);
    }

    /// Forget one workload (deleted, re-created, or no longer annotated): its entry and
    /// its per-workload metric series.
    fn forget(&self, key: &str) {
        lock(&self.retries).remove(key);
        let mut entries = lock(&self.entries);
        if let Some(e) = entries.remove(key) {
            self.metrics.managed_workloads.set(entries.len() as i64);
            drop(entries);
            self.metrics.forget_workload(&e.labels);
        }
    }

    /// A workload deleted and created again under the same name is a new workload: it
    /// inherits none of the old one's stabilization or policy state.
    fn forget_if_recreated(&self, key: &str, uid: Option<&str>) {
        let stale = lock(&self.entries)
            .get(key)
            .is_some_and(|e| e.uid.as_deref() != uid);
        if stale {
            self.forget(key);
        }
    }

    /// Forget every workload whose object is gone: `live(kind, namespace, name)` answers
    /// the uid of the object the watch cache holds now. Deletions never reach `reconcile`
    /// (kube-runtime's Controller only reconciles objects that exist), so the controller
    /// calls this periodically.
    pub fn sweep(&self, live: impl Fn(&WorkloadLabels) -> Option<String>) -> usize {
        let gone: Vec<String> = lock(&self.entries)
            .iter()
            .filter(|(_, e)| live(&e.labels) != e.uid)
            .map(|(k, _)| k.clone())
            .collect();
        for key in &gone {
            tracing::debug!(%key, "workload gone; forgetting it");
            self.forget(key);
        }
        gone.len()
    }

    /// When the inputs are those last evaluated and the interval has not elapsed: how
    /// long until it does.
    fn not_due(&self, key: &str, fingerprint: u64) -> Option<Duration> {
        let entries = lock(&self.entries);
        let e = entries.get(key).filter(|e| e.fingerprint == fingerprint)?;
        e.next_due.checked_duration_since(Instant::now())
    }

    /// The last decision about a workload: ours in memory, else its status annotation.
    fn last_decision(&self, key: &str, annotations: &BTreeMap<String, String>) -> Option<Status> {
        lock(&self.entries)
            .get(key)
            .and_then(|e| e.decision.clone())
            .or_else(|| annotations.get(STATUS).and_then(|t| Status::parse(t)))
    }

    /// What is persisted on the object as far as we know: what we last wrote, else its
    /// annotations (the watched object may lag behind our own write).
    fn written(&self, key: &str, annotations: &BTreeMap<String, String>) -> (Option<Status>, Option<String>) {
        let entries = lock(&self.entries);
        let e = entries.get(key);
        let status = e
            .and_then(|e| e.written_status.clone())
            .or_else(|| annotations.get(STATUS).and_then(|t| Status::parse(t)));
        let state = e.and_then(|e| e.written_state.clone()).or_else(|| {
            annotations
                .get(STATE)
                .map(|t| WorkloadState::from_json(t).0.persisted_form())
        });
        (status, state)
    }

    /// Record whether the workload's state is over the annotation budget now; true when
    /// that changed (so `StateTooLarge` is told once per episode, not per evaluation).
    fn state_over_budget(&self, key: &str, over: bool) -> bool {
        lock(&self.entries).get_mut(key).is_some_and(|e| {
            let changed = e.state_over_budget != over;
            e.state_over_budget = over;
            changed
        })
    }

    fn mark_written(&self, key: &str, status: Option<Status>, state: Option<String>) {
        if let Some(e) = lock(&self.entries).get_mut(key) {
            if status.is_some() {
                e.written_status = status;
            }
            if state.is_some() {
                e.written_state = state;
            }
        }
    }

    /// Remember a decision (before persisting it: a failed write must not erase the
    /// history of a scale that happened). `state` None keeps the remembered state.
    fn commit(
        &self,
        w: &Subject,
        fingerprint: u64,
        wait: Duration,
        state: Option<WorkloadState>,
        decision: Status,
    ) {
        let mut entries = lock(&self.entries);
        let e = entries.entry(w.key.clone()).or_insert_with(|| Entry {
            uid: w.uid.clone(),
            labels: w.labels(),
            fingerprint,
            next_due: Instant::now(),
            state: WorkloadState::default(),
            decision: None,
            written_status: None,
            written_state: None,
            state_over_budget: false,
        });
        e.fingerprint = fingerprint;
        e.next_due = Instant::now() + wait;
        if let Some(st) = state {
            e.state = st;
        }
        e.decision = Some(decision);
        let n = entries.len() as i64;
        drop(entries);
        self.metrics.managed_workloads.set(n);
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
    /// The object this entry is about; a new object under the same name starts afresh.
    uid: Option<String>,
    labels: WorkloadLabels,
    fingerprint: u64,
    next_due: Instant,
    state: WorkloadState,
    /// The last decision (Events are published on its transitions).
    decision: Option<Status>,
    /// What we last wrote to the object (None: read its annotations); the state in its
    /// [`WorkloadState::persisted_form`].
    written_status: Option<Status>,
    written_state: Option<String>,
    /// The state did not fit in the object's annotations when last persisted.
    state_over_budget: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("scale conflict on {0}: retrying on fresh state")]
    Conflict(String),
    #[error("target {0}: {1}")]
    Target(String, String),
    /// An object the workload would scale has not opted in to it.
    #[error("target {0}: {1}")]
    Refused(String, String),
    #[error("evaluation task failed: {0}")]
    Task(String),
}

impl Error {
    /// The metric label of this error.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube_api",
            Error::Conflict(_) => "conflict",
            Error::Target(..) | Error::Refused(..) => "target",
            Error::Task(_) => "task",
        }
    }
}

/// Requeue after an error: per object, exponential from a first retry that depends on the
/// error (a conflict is worth retrying soon, on the fresher cache) to at most the
/// workload's interval, with jitter so that a fleet failing together (an API server
/// restart) does not retry in lockstep. A successful reconcile starts the object over.
pub fn error_policy(obj: Arc<DynamicObject>, err: &Error, ctx: Arc<Context>) -> Action {
    let s = &ctx.shared;
    s.metrics.error(err.kind());
    let w = Subject::of(&obj, &ctx.resource);
    let attempt = {
        let mut retries = lock(&s.retries);
        let n = retries.entry(w.key.clone()).or_insert(0);
        *n = n.saturating_add(1);
        *n
    };
    let first = match err {
        Error::Conflict(_) => Duration::from_millis(100),
        Error::Kube(_) | Error::Task(_) | Error::Target(..) | Error::Refused(..) => {
            Duration::from_millis(500)
        }
    };
    let interval = WorkloadSpec::from_annotations(&w.annotations, s.default_max_replicas)
        .map(|spec| Duration::from_millis(spec.interval_ms))
        .unwrap_or(Duration::from_millis(crate::core::spec::DEFAULT_INTERVAL_MS));
    let wait = retry_after(first, interval, attempt, jitter_seed(&w.key, attempt));
    tracing::warn!(key = %w.key, error = %err, attempt, retry_in = ?wait, "reconcile failed");
    Action::requeue(wait)
}

/// `first` doubled per failed attempt, capped at `cap`, then a random point in its upper
/// half ("equal jitter": never sooner than half the backoff, never later than all of it).
fn retry_after(first: Duration, cap: Duration, attempt: u32, seed: u64) -> Duration {
    let cap = cap.max(first);
    let exp = first
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
        .min(cap);
    let half = exp / 2;
    let spread = u64::try_from(half.as_millis()).unwrap_or(u64::MAX).max(1);
    half + Duration::from_millis(seed % spread)
}

fn jitter_seed(key: &str, attempt: u32) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (key, attempt, SystemTime::now()).hash(&mut h);
    h.finish()
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

/// A label selector (`matchLabels` and `matchExpressions`) in query syntax.
fn selector_string(sel: &Value) -> Option<String> {
    let sel: LabelSelector = serde_json::from_value(sel.clone()).ok()?;
    let q = crate::signals::label_selector::to_query(&sel);
    (!q.is_empty()).then_some(q)
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

/// The object being reconciled, as read from the watch.
struct Subject {
    key: String,
    kind: String,
    uid: Option<String>,
    namespace: String,
    name: String,
    annotations: BTreeMap<String, String>,
    /// `spec.replicas` / `status.readyReplicas` of the object itself.
    replicas: u32,
    ready: u32,
    reference: ObjectReference,
}

impl Subject {
    fn of(obj: &DynamicObject, resource: &ApiResource) -> Self {
        let namespace = obj.namespace().unwrap_or_default();
        let name = obj.name_any();
        Self {
            key: format!("{}/{}/{}", resource.kind, namespace, name),
            kind: resource.kind.clone(),
            uid: obj.uid(),
            annotations: obj.annotations().clone(),
            replicas: as_u32(&obj.data["spec"]["replicas"]).unwrap_or(1),
            ready: as_u32(&obj.data["status"]["readyReplicas"]).unwrap_or(0),
            reference: obj.object_ref(resource),
            namespace,
            name,
        }
    }

    fn labels(&self) -> WorkloadLabels {
        WorkloadLabels {
            namespace: self.namespace.clone(),
            kind: self.kind.clone(),
            name: self.name.clone(),
        }
    }
}

/// Where replicas are read and written.
struct ScaleTarget {
    api: Api<DynamicObject>,
    name: String,
    via: ScaleVia,
    /// The `wasmscaler.io/target` text that named it (empty: the object itself).
    named_by: String,
    /// Its kind (for messages).
    kind: String,
}

/// What the act step did.
struct Acted {
    /// Status action: scale, shadow, hold, paused, failed.
    label: &'static str,
    /// `spec.replicas` of the object after the act step (for the next fingerprint).
    object_replicas: u32,
}

pub async fn reconcile(obj: Arc<DynamicObject>, ctx: Arc<Context>) -> Result<Action, Error> {
    let key = Subject::of(&obj, &ctx.resource).key;
    let done = reconcile_once(obj, ctx.clone()).await;
    if done.is_ok() {
        lock(&ctx.shared.retries).remove(&key);
    }
    done
}

async fn reconcile_once(obj: Arc<DynamicObject>, ctx: Arc<Context>) -> Result<Action, Error> {
    let s = &ctx.shared;
    let w = Subject::of(&obj, &ctx.resource);
    if !w.annotations.contains_key(POLICY) {
        s.forget(&w.key);
        return Ok(Action::await_change());
    }
    if !s.leadership.is_leader() {
        // Standby: watch (warm cache) but never decide or write.
        return Ok(Action::requeue(Duration::from_secs(5)));
    }
    s.forget_if_recreated(&w.key, w.uid.as_deref());
    let fp = fingerprint(&w.annotations, w.replicas, w.ready);
    if let Some(wait) = s.not_due(&w.key, fp) {
        return Ok(Action::requeue(wait));
    }
    let spec = match WorkloadSpec::from_annotations(&w.annotations, s.default_max_replicas) {
        Ok(spec) => spec,
        Err(e) => return record_invalid(s, &ctx, &w, fp, e.to_string(), None).await,
    };
    if let Err(e) = s.tenancy.check(&spec) {
        return record_invalid(s, &ctx, &w, fp, e, None).await;
    }

    // Observe. A target that cannot be resolved is a bad annotation too (the kind or the
    // object may appear later: look again after a while); so is one that refuses this
    // workload (its owner may opt in: look again every interval).
    let interval = Duration::from_millis(spec.interval_ms.max(core::evaluate::MIN_WAIT_MS));
    let target_error = |m: String| record_invalid(s, &ctx, &w, fp, m, Some(TARGET_RECHECK));
    let refused = |m: String| record_invalid(s, &ctx, &w, fp, m, Some(interval));
    let scale = match scale_target(s, &ctx, &w, &spec).await {
        Ok(scale) => scale,
        Err(Error::Target(_, m)) => return target_error(m).await,
        Err(e) => return Err(e),
    };
    let target = match observe(s, &ctx, &obj, &w, &scale).await {
        Ok(target) => target,
        Err(Error::Target(_, m)) => return target_error(m).await,
        Err(Error::Refused(_, m)) => return refused(m).await,
        Err(e) => return Err(e),
    };
    let now = now_ms();
    let prior = prior_state(s, &w, now).await;

    // Decide.
    let started = Instant::now();
    let (outcome, mut new_state, signal_errors) = match decide(s, &w, &spec, &target, prior, now).await? {
        Decided::Outcome(decided) => *decided,
        // A config the policy rejects is a typo to fix, not a failing policy: it never
        // counts towards the failure threshold (and so never applies fallback replicas).
        Decided::ConfigRejected(m) => {
            return record_invalid(s, &ctx, &w, fp, m, Some(interval)).await;
        }
    };
    observe_evaluation(s, &outcome, started.elapsed());
    if let Some(log) = &s.decision_log {
        // Queued, never waited on: the writer's thread serializes and compresses.
        let id = WorkloadId {
            kind: w.kind.clone(),
            namespace: w.namespace.clone(),
            name: w.name.clone(),
            uid: w.uid.clone(),
        };
        let shadow = spec.mode == Mode::Shadow;
        log.record(Record::of(
            Source::Controller,
            id,
            shadow,
            &signal_errors,
            &outcome,
            target.replicas,
            now,
        ));
    }
    s.metrics.set_workload(
        &w.labels(),
        target.replicas,
        outcome.desired,
        outcome.proposal,
        new_state.guard.consecutive_failures,
    );

    // Act, then record.
    let Some(acted) = act(s, &w, &spec, &scale, &target, &outcome, &mut new_state, now).await? else {
        return Ok(Action::requeue(Duration::from_secs(5)));
    };
    record(s, &ctx, &w, &spec, &outcome, &acted, target.replicas, new_state).await
}

/// How often a `wasmscaler.io/target` that cannot be resolved is looked up again.
const TARGET_RECHECK: Duration = Duration::from_secs(30);

/// A bad annotation: one Event and the status until it changes; nothing is evaluated.
/// `recheck`: look again after this long even if nothing changed (None: only when the
/// annotations change).
async fn record_invalid(
    s: &Shared,
    ctx: &Context,
    w: &Subject,
    fp: u64,
    error: String,
    recheck: Option<Duration>,
) -> Result<Action, Error> {
    s.metrics.error("annotation");
    s.metrics.evaluation("invalid");
    let status = Status::invalid(error.clone());
    let previous = s.last_decision(&w.key, &w.annotations);
    if previous.as_ref().and_then(|p| p.error.as_ref()) != Some(&error) {
        tracing::warn!(key = %w.key, %error, "invalid annotation; not scaling");
        publish(
            s,
            &w.reference,
            &Notice::warning("InvalidAnnotation", "Evaluate", error),
        )
        .await;
    }
    s.commit(
        w,
        fp,
        recheck.unwrap_or(Duration::from_secs(3600)),
        None,
        status.clone(),
    );
    let api = Api::<DynamicObject>::namespaced_with(s.client.clone(), &w.namespace, &ctx.resource);
    persist(s, &api, w, None, &status).await?;
    // Otherwise wait for the annotation to change (the fingerprint then differs).
    Ok(recheck.map_or_else(Action::await_change, Action::requeue))
}

/// Resolve where replicas are read and written: the object, or `wasmscaler.io/target`.
async fn scale_target(
    s: &Shared,
    ctx: &Context,
    w: &Subject,
    spec: &WorkloadSpec,
) -> Result<ScaleTarget, Error> {
    let Some(t) = &spec.target else {
        return Ok(ScaleTarget {
            api: Api::namespaced_with(s.client.clone(), &w.namespace, &ctx.resource),
            name: w.name.clone(),
            via: ctx.via,
            named_by: String::new(),
            kind: w.kind.clone(),
        });
    };
    let bad = |m: String| Error::Target(w.key.clone(), format!("{TARGET}: {m}"));
    let (g, v, k, n) = parse_kind_ref(t).map_err(bad)?;
    let n = n.ok_or_else(|| bad(format!("'{t}' names no object (apiVersion/Kind/name)")))?;
    let cache_key = format!("{g}/{v}/{k}");
    let cached = lock(&s.targets).get(&cache_key).cloned();
    let ar = match cached {
        Some(ar) => ar,
        None => {
            let ar = discover(&s.client, &g, &v, &k).await.map_err(bad)?;
            lock(&s.targets).insert(cache_key, ar.clone());
            ar
        }
    };
    Ok(ScaleTarget {
        api: Api::namespaced_with(s.client.clone(), &w.namespace, &ar),
        name: n,
        via: ScaleVia::Subresource,
        named_by: t.clone(),
        kind: k,
    })
}

/// The workload's facts now: replicas and readiness from the object, its `/scale`, or the
/// actuator.
async fn observe(
    s: &Shared,
    ctx: &Context,
    obj: &DynamicObject,
    w: &Subject,
    scale: &ScaleTarget,
) -> Result<TargetRef, Error> {
    let mut target = TargetRef {
        namespace: w.namespace.clone(),
        kind: ctx.resource.kind.clone(),
        api_version: ctx.resource.api_version.clone(),
        name: w.name.clone(),
        uid: obj.uid(),
        labels: obj.labels().clone(),
        annotations: w.annotations.clone(),
        pod_selector: selector_string(&obj.data["spec"]["selector"]),
        replicas: w.replicas,
        ready_replicas: w.ready,
    };
    match scale.via {
        ScaleVia::Object => {}
        ScaleVia::Subresource => {
            let sc = match scale.api.get_scale(&scale.name).await {
                Ok(sc) => sc,
                Err(kube::Error::Api(e)) if e.code == 404 => {
                    return Err(Error::Target(
                        w.key.clone(),
                        format!(
                            "{TARGET}: '{}' not found in namespace {}",
                            scale.named_by, w.namespace
                        ),
                    ));
                }
                Err(e) => return Err(e.into()),
            };
            if !scale.named_by.is_empty() {
                target_opted_in(scale, w).await?;
            }
            let replicas = sc.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
            let st = sc.status.as_ref();
            target.replicas = u32::try_from(replicas).unwrap_or(0);
            // /scale has no ready count: report observed replicas as ready.
            target.ready_replicas = st.map(|s| u32::try_from(s.replicas).unwrap_or(0)).unwrap_or(0);
            if let Some(sel) = st.and_then(|s| s.selector.clone()) {
                target.pod_selector = Some(sel);
            }
        }
        ScaleVia::Actuator => {
            target.replicas = 0;
            target.ready_replicas = 0;
        }
    }
    match s.actuator.current_replicas(&target).await {
        Ok(Some((r, ready))) => {
            target.replicas = r;
            target.ready_replicas = ready;
        }
        Ok(None) => {}
        Err(refused) => return Err(Error::Refused(w.key.clone(), refused)),
    }
    Ok(target)
}

/// Refuse a `wasmscaler.io/target` whose owner has not opted in (see
/// [`super::tenancy::scalable_by`]). Read on every evaluation, next to its `/scale`, so a
/// withdrawn opt-in stops the next write.
async fn target_opted_in(scale: &ScaleTarget, w: &Subject) -> Result<(), Error> {
    let meta = scale.api.get_metadata(&scale.name).await?;
    let annotations = meta.metadata.annotations.unwrap_or_default();
    if super::tenancy::scalable_by(&annotations, &w.name) {
        return Ok(());
    }
    let what = format!("{}/{}", scale.kind, scale.name);
    Err(Error::Refused(
        w.key.clone(),
        format!(
            "{TARGET}: {}",
            super::tenancy::not_scalable_by(&what, &w.kind, &w.name)
        ),
    ))
}

/// State: our cache, else what is persisted on the workload (resumed at `now`).
async fn prior_state(s: &Shared, w: &Subject, now: i64) -> WorkloadState {
    if let Some(st) = lock(&s.entries).get(&w.key).map(|e| e.state.clone()) {
        return st;
    }
    let Some(text) = w.annotations.get(STATE) else {
        return WorkloadState::default();
    };
    let (mut st, warn) = WorkloadState::from_json(text);
    st.guard.resume(now);
    if let Some(why) = warn {
        s.metrics.error("state");
        publish(
            s,
            &w.reference,
            &Notice::warning("StateUnreadable", "Evaluate", why),
        )
        .await;
    }
    st
}

/// An evaluation's outcome, the new state, and the signals that could not be gathered
/// (name, why; for the decision log).
type Evaluated = (core::Outcome, WorkloadState, Vec<(String, String)>);

/// What the decide step came to.
enum Decided {
    /// The outcome, the new state, and the signals that could not be gathered.
    Outcome(Box<Evaluated>),
    /// A policy's `validate-config` rejects the workload's config (the message says which).
    ConfigRejected(String),
}

/// Whether a policy rejects its config: cached by [`Plan::config_key`], so validation runs
/// in a sandbox once per config (or component) change, off the async runtime.
async fn config_rejection(s: &Shared, plan: &Plan) -> Result<Option<String>, Error> {
    let key = plan.config_key();
    if let Some(known) = lock(&s.validated).get(&key) {
        return Ok(known.clone());
    }
    let p = plan.clone();
    let rejected = tokio::task::spawn_blocking(move || p.rejected_config())
        .await
        .map_err(|e| Error::Task(e.to_string()))?;
    let mut validated = lock(&s.validated);
    // Bounded: one entry per live config, and configs that came and went.
    if validated.len() >= VALIDATED_CAP {
        validated.clear();
    }
    validated.insert(key, rejected.clone());
    Ok(rejected)
}

/// Configs whose validation result is remembered.
const VALIDATED_CAP: usize = 4096;

/// Gather the signals and run the policies and guardrails (off the async runtime).
async fn decide(
    s: &Shared,
    w: &Subject,
    spec: &WorkloadSpec,
    target: &TargetRef,
    mut state: WorkloadState,
    now: i64,
) -> Result<Decided, Error> {
    let current = target.replicas;
    let plan = match Plan::resolve(&s.registry, spec) {
        Ok(plan) => plan,
        Err(e) => {
            s.metrics.error("resolve");
            let o = core::Outcome::unresolved(spec, &mut state, now, current, e.to_string());
            return Ok(Decided::Outcome(Box::new((o, state, Vec::new()))));
        }
    };
    if let Some(m) = config_rejection(s, &plan).await? {
        return Ok(Decided::ConfigRejected(m));
    }
    let items = core::evaluate::signal_plan(&plan, spec);
    let gathered = s.gatherers.gather(target, &items, now).await;
    for (sig, why) in &gathered.errors {
        s.metrics.error("signal");
        tracing::debug!(key = %w.key, signal = %sig, error = %why, "signal not gathered");
    }
    let signal_errors = if s.decision_log.is_some() {
        gathered.errors.clone()
    } else {
        Vec::new()
    };
    let obs = Observation {
        now_ms: now,
        workload: Workload {
            kind: target.kind.clone(),
            namespace: w.namespace.clone(),
            name: w.name.clone(),
            replicas: current,
            ready_replicas: target.ready_replicas,
            min_replicas: spec.guardrails.min_replicas,
            max_replicas: spec.guardrails.max_replicas,
            labels: target
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        },
        signals: gathered.signals,
        signal_errors: gathered.errors,
        history: gathered.history,
        record_history: s.decision_log.is_some(),
    };
    let spec = spec.clone();
    tokio::task::spawn_blocking(move || {
        let o = core::evaluate(&plan, &spec, obs, &mut state);
        Decided::Outcome(Box::new((o, state, signal_errors)))
    })
    .await
    .map_err(|e| Error::Task(e.to_string()))
}

/// Latency and error metrics of one evaluation.
fn observe_evaluation(s: &Shared, outcome: &core::Outcome, took: Duration) {
    s.metrics.evaluation_seconds.observe(took.as_secs_f64());
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
}

/// Carry out the decision: special actuation (Jobs, pools), the `/scale` write, the
/// `Scaled` Event. None: leadership was lost before the write.
#[allow(clippy::too_many_arguments)]
async fn act(
    s: &Shared,
    w: &Subject,
    spec: &WorkloadSpec,
    scale: &ScaleTarget,
    target: &TargetRef,
    outcome: &core::Outcome,
    state: &mut WorkloadState,
    now: i64,
) -> Result<Option<Acted>, Error> {
    let mut actuated_scale = false;
    let mut extra = String::new();
    if outcome.jobs.is_some() || !outcome.placement.is_empty() {
        let dry = spec.mode == Mode::Shadow || spec.pause != Pause::No;
        if !dry && !s.leadership.is_leader() {
            return Ok(None);
        }
        match s.actuator.actuate(target, spec, outcome, dry).await {
            Ok(a) => {
                actuated_scale = a.scaled;
                extra = a.summary;
            }
            Err(e) => {
                // The actuator owns this workload's replicas: the annotated object is only
                // a template (its replicas are not the pools' sum), so writing it instead
                // would scale the wrong object and then conflict on every retry. Hold
                // until the next interval; the Event names what failed.
                s.metrics.error("actuator");
                publish(s, &w.reference, &Notice::warning("ActuationFailed", "Scale", e)).await;
                return Ok(Some(Acted {
                    label: "hold",
                    object_replicas: w.replicas,
                }));
            }
        }
    }
    let mut object_replicas = w.replicas;
    let label = match outcome.action {
        CoreAction::Scale { from, to } => {
            if !s.leadership.is_leader() {
                return Ok(None);
            }
            if !actuated_scale && scale.via != ScaleVia::Actuator {
                write_scale(s, &scale.api, &scale.name, from, to, &w.key).await?;
            }
            spec.guardrails.record_scale(&mut state.guard, now, from, to);
            s.metrics
                .scale_writes
                .get_or_create(&super::metrics::ResultLabel {
                    result: if to > from { "up" } else { "down" }.into(),
                })
                .inc();
            if scale.via == ScaleVia::Object && spec.target.is_none() {
                object_replicas = to;
            }
            let note = with_extra(format!("scaled from {from} to {to}: {}", outcome.reason), &extra);
            tracing::info!(key = %w.key, from, to, reason = %outcome.reason, "scaled");
            publish(s, &w.reference, &Notice::normal("Scaled", "Scale", note)).await;
            "scale"
        }
        CoreAction::Shadow { from, to } => {
            tracing::debug!(key = %w.key, from, to, reason = %outcome.reason, "shadow decision");
            "shadow"
        }
        CoreAction::Hold => {
            if !extra.is_empty() {
                publish(s, &w.reference, &Notice::normal("Actuated", "Scale", extra)).await;
            }
            if outcome.failed {
                "failed"
            } else if spec.pause != Pause::No {
                "paused"
            } else {
                "hold"
            }
        }
    };
    Ok(Some(Acted {
        label,
        object_replicas,
    }))
}

/// What the status annotation says about this decision.
fn status_of(spec: &WorkloadSpec, outcome: &core::Outcome, action: &str, current: u32) -> Status {
    Status {
        action: action.to_string(),
        current: Some(current),
        desired: Some(outcome.desired),
        proposal: outcome.proposal,
        mode: Some(
            if spec.mode == Mode::Shadow {
                "shadow"
            } else {
                "active"
            }
            .into(),
        ),
        error: outcome.error.clone(),
        policies: outcome
            .runs
            .iter()
            .map(|r| PolicyStatus {
                policy: r.policy.clone(),
                digest: r.digest.get(..12).unwrap_or(&r.digest).to_string(),
                result: match &r.result {
                    Ok(d) => format!("ok: {}", d.replicas),
                    Err(e) => e.kind().to_string(),
                },
            })
            .collect(),
        reason: outcome.reason.clone(),
        since: None,
    }
}

/// Events for what changed, the in-memory entry (before the write, so a failed persist
/// loses nothing), then the status/state annotations where they changed.
#[allow(clippy::too_many_arguments)]
async fn record(
    s: &Shared,
    ctx: &Context,
    w: &Subject,
    spec: &WorkloadSpec,
    outcome: &core::Outcome,
    acted: &Acted,
    current: u32,
    state: WorkloadState,
) -> Result<Action, Error> {
    let status = status_of(spec, outcome, acted.label, current);
    let previous = s.last_decision(&w.key, &w.annotations);
    let notices = transitions(previous.as_ref(), &status);
    if outcome.failed {
        s.metrics.evaluation("failed");
        if notices.iter().any(|n| n.reason == "EvaluationFailed") {
            tracing::warn!(key = %w.key, reason = %outcome.reason, "evaluation failed; fail-static");
        }
    } else {
        s.metrics.evaluation(acted.label);
    }
    for n in &notices {
        publish(s, &w.reference, n).await;
    }

    let wait = Duration::from_millis(outcome.next_wait_ms(spec.interval_ms));
    let fp = fingerprint(&w.annotations, acted.object_replicas, w.ready);
    s.commit(w, fp, wait, Some(state.clone()), status.clone());
    let api = Api::<DynamicObject>::namespaced_with(s.client.clone(), &w.namespace, &ctx.resource);
    persist(s, &api, w, Some(&state), &status).await?;
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

/// Write the state and status annotations where they changed (one merge patch): the
/// status only when the decision changed (with a fresh `since`), the state only when its
/// persisted form did (not when only the newest recommendation's time moved). A steady
/// workload costs no writes, however its signals move.
async fn persist(
    s: &Shared,
    api: &Api<DynamicObject>,
    w: &Subject,
    state: Option<&WorkloadState>,
    status: &Status,
) -> Result<(), Error> {
    let (written_status, written_state) = s.written(&w.key, &w.annotations);
    let mut patch = serde_json::Map::new();
    let state_form = state.map(WorkloadState::persisted_form);
    if let (Some(st), Some(form)) = (state, &state_form)
        && written_state.as_ref() != Some(form)
    {
        patch.insert(STATE.to_string(), Value::String(st.to_json()));
    }
    let mut status = status.clone();
    let status_changed = !written_status.is_some_and(|old| old.same_decision(&status));
    if status_changed {
        status.since = Some(k8s_openapi::jiff::Timestamp::now().to_string());
        patch.insert(STATUS.to_string(), Value::String(status.to_json()));
    }
    // The status (and the replicas, written already) matter more than the state: a state
    // that would take the object past the API server's annotation limit is not written
    // (the one on the object stays, the one in memory is used) and is told once.
    let total = annotations_size_after(&w.annotations, &patch);
    let over = patch.contains_key(STATE) && total > ANNOTATIONS_LIMIT;
    if over {
        patch.remove(STATE);
    }
    if s.state_over_budget(&w.key, over) && over {
        s.metrics.error("state_too_large");
        let note = format!(
            "{STATE} not saved: the object's annotations would total {total} bytes, over the API server's \
             {ANNOTATIONS_LIMIT}; the controller keeps the state in memory (a restart or a new leader \
             starts from the last saved one). Shrink other annotations or the policy's state."
        );
        publish(
            s,
            &w.reference,
            &Notice::warning("StateTooLarge", "Persist", note),
        )
        .await;
    }
    if patch.is_empty() {
        return Ok(());
    }
    let body = json!({"metadata": {"annotations": patch}});
    let pp = PatchParams {
        field_manager: Some(s.field_manager.clone()),
        ..Default::default()
    };
    api.patch(&w.name, &pp, &Patch::Merge(&body)).await?;
    if status_changed {
        s.metrics.annotation_written("status");
    }
    if patch.contains_key(STATE) {
        s.metrics.annotation_written("state");
    }
    s.mark_written(
        &w.key,
        status_changed.then_some(status),
        state_form.filter(|_| patch.contains_key(STATE)),
    );
    Ok(())
}

/// The API server refuses objects whose annotations (keys and values) total more
/// (apimachinery's `TotalAnnotationSizeLimitB`).
const ANNOTATIONS_LIMIT: usize = 256 * 1024;

/// The size of `annotations` once `patch` (string values) is merged into them.
fn annotations_size_after(
    annotations: &BTreeMap<String, String>,
    patch: &serde_json::Map<String, Value>,
) -> usize {
    let kept: usize = annotations
        .iter()
        .filter(|(k, _)| !patch.contains_key(k.as_str()))
        .map(|(k, v)| k.len() + v.len())
        .sum();
    let patched: usize = patch
        .iter()
        .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
        .sum();
    kept + patched
}

async fn publish(s: &Shared, regarding: &ObjectReference, notice: &Notice) {
    s.metrics.event(notice.reason);
    if let Err(e) = s.events.publish(regarding, notice).await {
        s.metrics.error("event");
        tracing::warn!(error = %e, reason = notice.reason, "cannot publish event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_with_jitter_up_to_the_interval() {
        let first = Duration::from_millis(100);
        let cap = Duration::from_secs(5);
        for seed in [0, 1, 977, u64::MAX] {
            let w = |attempt| retry_after(first, cap, attempt, seed);
            assert!(w(1) >= Duration::from_millis(50) && w(1) <= first, "{:?}", w(1));
            assert!(w(4) >= Duration::from_millis(400) && w(4) <= Duration::from_millis(800));
            assert!(w(30) >= cap / 2 && w(30) <= cap, "{:?}", w(30));
            assert!(w(u32::MAX) <= cap);
        }
        // The jitter spreads a fleet failing together.
        let spread: std::collections::BTreeSet<Duration> = (0..50u64)
            .map(|i| retry_after(first, cap, 6, jitter_seed(&format!("w-{i}"), 6)))
            .collect();
        assert!(spread.len() > 10, "{spread:?}");
    }

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
