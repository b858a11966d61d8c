//! Signals read from Kubernetes objects (source kind `kubernetes`): the target's replicas,
//! Pending pods, pods per capacity type, spot interruptions, and the Job counts of a
//! queue-job CronJob.
//!
//! Definitions (what a user can check with kubectl):
//! - a pod's **capacity type** is its node's label when it is bound
//!   (`karpenter.sh/capacity-type`: `spot`/`on-demand`; `eks.amazonaws.com/capacityType`:
//!   `SPOT`/`ON_DEMAND`; `cloud.google.com/gke-spot: "true"`;
//!   `kubernetes.azure.com/scalesetpriority: spot`), else what the pod asks for in
//!   `spec.nodeSelector` or a required node-affinity term `In` one value on those keys.
//!   Pods whose capacity type cannot be told are not counted under either type.
//! - **Pending pods** (waiting for capacity): phase `Pending`, not bound to a node, marked
//!   `PodScheduled=False` reason `Unschedulable` by the scheduler, and not being deleted
//!   (`kubectl get pods --field-selector=status.phase=Pending` minus those already bound or
//!   not yet tried); their age is now - `creationTimestamp`.
//! - an **interruption** is a node carrying one of the taints
//!   `karpenter.sh/disruption` (Karpenter v1 marks a node it is about to remove, spot
//!   interruption included), `aws-node-termination-handler/spot-itn` (AWS NTH's spot
//!   interruption notice), `cloud.google.com/impending-node-termination` (GKE preemption),
//!   while pods of the workload run on it. One event per node, at the taint's `timeAdded`
//!   (else when the controller first saw it), value = the workload's pods on that node.
//!   Events are remembered in memory for up to an hour (a drained node may disappear),
//!   for at most [`EVENT_KEYS_MAX`] (namespace, selector, capacity type) keys.
//!
//! Nothing here LISTs or GETs per evaluation: Pods (per namespace), Nodes (one cluster-wide
//! cache) and the Deployments/StatefulSets named by `workload` or the pool variants (per
//! namespace) are read from shared watch caches (`signals/watch_cache.rs`), started by the first
//! evaluation that needs them, trimmed to what the counts read, stopped when unused. A
//! cache that cannot sync (RBAC, API server down) fails the signal with a message naming
//! the resource within [`CACHE_SYNC_WAIT`], never hangs a reconcile. Selectors are matched
//! in memory (`signals/label_selector.rs`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::{BoxFuture, join_all};
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStatus, StatefulSet, StatefulSetSpec, StatefulSetStatus,
};
use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSpec, Pod, PodCondition, PodSpec, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::Api;
use kube::core::{Selector, SelectorExt};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use wasmscaler_sdk::{Sample, Signal, SignalRequest};

use super::gather::{SignalError, SourceError, collect, parse_as};
use super::label_selector;
use super::source::{KubeCount, KubeSource, SourceSpec};
use super::watch_cache::{SharedCaches, minimal_metadata};
use crate::core::adapter::{Gathered, PlanItem, SignalGatherer, TargetRef, WorkloadFacts};

/// Taints that mark a node as being interrupted / about to go away.
pub const INTERRUPTION_TAINTS: &[&str] = &[
    "karpenter.sh/disruption",
    "aws-node-termination-handler/spot-itn",
    "cloud.google.com/impending-node-termination",
];

/// How long interruption events are remembered, and how long the events of a
/// (namespace, selector, capacity type) nobody asks for any more are kept.
const EVENT_MEMORY_MS: i64 = 3_600_000;

/// At most this many (namespace, selector, capacity type) keys of interruption events;
/// beyond it the one asked for least recently is forgotten.
pub const EVENT_KEYS_MAX: usize = 1024;

/// How long an evaluation waits for a cache that has not listed yet (counted from the
/// cache's start: a cache that cannot sync fails later evaluations at once).
pub const CACHE_SYNC_WAIT: Duration = Duration::from_secs(5);

/// The capacity type a set of labels names, if any.
pub fn capacity_type_of(labels: &BTreeMap<String, String>) -> Option<&'static str> {
    if let Some(v) = labels.get("karpenter.sh/capacity-type") {
        return match v.as_str() {
            "spot" => Some("spot"),
            "on-demand" => Some("on-demand"),
            _ => None,
        };
    }
    if let Some(v) = labels.get("eks.amazonaws.com/capacityType") {
        return match v.as_str() {
            "SPOT" => Some("spot"),
            "ON_DEMAND" => Some("on-demand"),
            _ => None,
        };
    }
    if let Some(v) = labels.get("cloud.google.com/gke-spot") {
        return Some(if v == "true" { "spot" } else { "on-demand" });
    }
    if let Some(v) = labels.get("kubernetes.azure.com/scalesetpriority") {
        return Some(if v == "spot" { "spot" } else { "on-demand" });
    }
    None
}

/// The nodes a count looks at, by name (from the Node cache).
pub trait NodesByName {
    fn node(&self, name: &str) -> Option<Arc<Node>>;
}

impl NodesByName for Store<Node> {
    fn node(&self, name: &str) -> Option<Arc<Node>> {
        self.get(&ObjectRef::new(name))
    }
}

/// No nodes (a count that needs none).
struct NoNodes;

impl NodesByName for NoNodes {
    fn node(&self, _: &str) -> Option<Arc<Node>> {
        None
    }
}

/// A pod's capacity type: its node's if bound and known, else what it asks for.
pub fn pod_capacity_type(pod: &Pod, nodes: &dyn NodesByName) -> Option<&'static str> {
    let spec = pod.spec.as_ref()?;
    if let Some(node) = spec.node_name.as_deref().and_then(|n| nodes.node(n))
        && let Some(ct) = node.metadata.labels.as_ref().and_then(capacity_type_of)
    {
        return Some(ct);
    }
    if let Some(ct) = spec.node_selector.as_ref().and_then(capacity_type_of) {
        return Some(ct);
    }
    let terms = spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?;
    for t in &terms.node_selector_terms {
        for e in t.match_expressions.iter().flatten() {
            if e.operator == "In"
                && let Some([v]) = e.values.as_deref()
            {
                let one: BTreeMap<String, String> = [(e.key.clone(), v.clone())].into();
                if let Some(ct) = capacity_type_of(&one) {
                    return Some(ct);
                }
            }
        }
    }
    None
}

/// Pending for want of a node: unbound, and the scheduler said so (`PodScheduled=False`,
/// reason `Unschedulable`, what Karpenter provisions for). A bound pod still starting has
/// its capacity; a fresh one the scheduler has not tried yet may find some.
fn waits_for_capacity(p: &Pod) -> bool {
    let Some(status) = p.status.as_ref() else {
        return false;
    };
    p.metadata.deletion_timestamp.is_none()
        && status.phase.as_deref() == Some("Pending")
        && p.spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_none_or(str::is_empty)
        && status.conditions.iter().flatten().any(|c| {
            c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable")
        })
}

fn is_unfinished(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none()
        && matches!(
            p.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Pending") | Some("Running") | None
        )
}

/// A label selector (`matchLabels` and `matchExpressions` of a workload) in query syntax.
pub fn selector_query(sel: &LabelSelector) -> String {
    label_selector::to_query(sel)
}

/// What the Pod cache keeps: labels, uid, timestamps, the node it is bound to, what it asks
/// for (nodeSelector, required node affinity: the capacity type of an unbound pod), its
/// phase and `PodScheduled` condition. Containers, volumes, the rest of the status: gone.
fn strip_pod(p: &mut Pod) {
    minimal_metadata(&mut p.metadata, true);
    p.spec = p.spec.take().map(|s| PodSpec {
        node_name: s.node_name,
        node_selector: s.node_selector,
        affinity: s
            .affinity
            .and_then(|a| a.node_affinity)
            .and_then(|n| n.required_during_scheduling_ignored_during_execution)
            .map(|required| Affinity {
                node_affinity: Some(NodeAffinity {
                    required_during_scheduling_ignored_during_execution: Some(required),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        ..Default::default()
    });
    p.status = p.status.take().map(|s| PodStatus {
        phase: s.phase,
        conditions: s.conditions.map(|cs| {
            cs.into_iter()
                .filter(|c| c.type_ == "PodScheduled")
                .map(|c| PodCondition {
                    type_: c.type_,
                    status: c.status,
                    reason: c.reason,
                    ..Default::default()
                })
                .collect()
        }),
        ..Default::default()
    });
}

/// What the Node cache keeps: name, uid, labels (capacity type), taints (interruptions).
fn strip_node(n: &mut Node) {
    minimal_metadata(&mut n.metadata, true);
    n.spec = n.spec.take().map(|s| NodeSpec {
        taints: s.taints,
        ..Default::default()
    });
    n.status = None;
}

/// What the Deployment cache keeps: the pod selector, spec.replicas, ready replicas.
fn strip_deployment(d: &mut Deployment) {
    minimal_metadata(&mut d.metadata, false);
    d.spec = d.spec.take().map(|s| DeploymentSpec {
        selector: s.selector,
        replicas: s.replicas,
        ..Default::default()
    });
    d.status = d.status.take().map(|s| DeploymentStatus {
        ready_replicas: s.ready_replicas,
        ..Default::default()
    });
}

/// As [`strip_deployment`].
fn strip_statefulset(d: &mut StatefulSet) {
    minimal_metadata(&mut d.metadata, false);
    d.spec = d.spec.take().map(|s| StatefulSetSpec {
        selector: s.selector,
        replicas: s.replicas,
        ..Default::default()
    });
    d.status = d.status.take().map(|s| StatefulSetStatus {
        ready_replicas: s.ready_replicas,
        ..Default::default()
    });
}

fn namespaced_or_all<K>(client: kube::Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    }
}

fn nodes_api(client: kube::Client, _: Option<&str>) -> Api<Node> {
    Api::all(client)
}

/// The watch caches the counts read, shared by every workload (and by both gatherers
/// [`extensions`](super::wiring::extensions) builds).
struct Caches {
    pods: SharedCaches<Pod>,
    nodes: SharedCaches<Node>,
    deployments: SharedCaches<Deployment>,
    statefulsets: SharedCaches<StatefulSet>,
    events: Mutex<EventMemory>,
}

impl Caches {
    fn new(client: &kube::Client) -> Self {
        let cfg = watcher::Config::default;
        Self {
            pods: SharedCaches::new(client.clone(), "pods", namespaced_or_all, cfg(), strip_pod),
            nodes: SharedCaches::new(client.clone(), "nodes", nodes_api, cfg(), strip_node),
            deployments: SharedCaches::new(
                client.clone(),
                "deployments",
                namespaced_or_all,
                cfg(),
                strip_deployment,
            ),
            statefulsets: SharedCaches::new(
                client.clone(),
                "statefulsets",
                namespaced_or_all,
                cfg(),
                strip_statefulset,
            ),
            events: Mutex::new(EventMemory::default()),
        }
    }
}

/// A Deployment's or StatefulSet's pod selector and replicas, from the caches.
struct WorkloadView {
    selector: Option<LabelSelector>,
    replicas: u32,
    ready: u32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Event {
    at_ms: i64,
    pods: u32,
}

/// Interruption events per (namespace/selector/capacity type), bounded: a key nobody asked
/// for in [`EVENT_MEMORY_MS`] is forgotten, and at most [`EVENT_KEYS_MAX`] keys are kept
/// (least recently asked for dropped first). Per key, an event is kept for
/// [`EVENT_MEMORY_MS`] after it happened.
#[derive(Default)]
struct EventMemory {
    keys: HashMap<String, Remembered>,
}

#[derive(Default)]
struct Remembered {
    asked_ms: i64,
    /// node uid -> event.
    nodes: HashMap<String, Event>,
}

impl EventMemory {
    /// Record `seen` (node id, taint time, the workload's pods on it) under `key` at `now`,
    /// and return the events of `key` inside `window_ms` (0: all remembered), oldest first;
    /// a single 0 sample at `now` when there are none.
    fn record(
        &mut self,
        key: &str,
        seen: impl IntoIterator<Item = (String, i64, u32)>,
        window_ms: u64,
        now_ms: i64,
    ) -> Vec<Sample> {
        let entry = self.keys.entry(key.to_string()).or_default();
        entry.asked_ms = entry.asked_ms.max(now_ms);
        for (id, at, pods) in seen {
            let e = entry.nodes.entry(id).or_insert(Event { at_ms: at, pods: 0 });
            e.pods = e.pods.max(pods);
        }
        entry.nodes.retain(|_, e| now_ms - e.at_ms <= EVENT_MEMORY_MS);
        let window = if window_ms == 0 {
            EVENT_MEMORY_MS
        } else {
            i64::try_from(window_ms).unwrap_or(i64::MAX)
        };
        let mut out: Vec<Sample> = entry
            .nodes
            .values()
            .filter(|e| now_ms - e.at_ms <= window)
            .map(|e| Sample::new(e.at_ms, f64::from(e.pods)))
            .collect();
        out.sort_by_key(|s| s.at_ms);
        if out.is_empty() {
            out.push(Sample::new(now_ms, 0.0));
        }
        self.keys
            .retain(|k, r| k == key || now_ms - r.asked_ms <= EVENT_MEMORY_MS);
        while self.keys.len() > EVENT_KEYS_MAX {
            let oldest = self
                .keys
                .iter()
                .filter(|(k, _)| k.as_str() != key)
                .min_by_key(|(_, r)| r.asked_ms)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => self.keys.remove(&k),
                None => break,
            };
        }
        out
    }
}

/// Signals of source kind `kubernetes`, and (as the reconciler's fallback for signals
/// without a source spec) the standard names the host can answer itself.
pub struct KubeObjectsGatherer {
    client: kube::Client,
    caches: Arc<Caches>,
    /// Answer standard names without a source spec (and hand the rest to WorkloadFacts).
    fallback: bool,
}

impl KubeObjectsGatherer {
    /// A gatherer with its own watch caches (started on first use).
    pub fn new(client: kube::Client) -> Self {
        Self {
            caches: Arc::new(Caches::new(&client)),
            client,
            fallback: false,
        }
    }

    /// As the reconciler's gatherer for signals without a source spec: answers
    /// `running-jobs`/`pending-jobs` (CronJob targets) and `spot-pending-pods`,
    /// `spot-pending-seconds`, `spot-interruptions` (spot-fallback workloads); every
    /// other name goes to [`WorkloadFacts`].
    pub fn with_facts_fallback(client: kube::Client) -> Self {
        Self::new(client).facts_fallback()
    }

    /// The facts-fallback gatherer ([`Self::with_facts_fallback`]) reading the same watch
    /// caches and interruption memory as this one.
    pub fn facts_fallback(&self) -> Self {
        Self {
            client: self.client.clone(),
            caches: self.caches.clone(),
            fallback: true,
        }
    }

    /// Number of watch caches running now (pods per namespace, nodes, workloads per
    /// namespace).
    pub fn caches_running(&self) -> usize {
        let c = &self.caches;
        c.pods.running() + c.nodes.running() + c.deployments.running() + c.statefulsets.running()
    }

    /// The source a standard signal name gets when the workload maps none.
    pub fn default_source(name: &str, target: &TargetRef) -> Option<KubeSource> {
        let count = match name {
            "running-jobs" if target.kind == "CronJob" => KubeCount::RunningJobs,
            "pending-jobs" if target.kind == "CronJob" => KubeCount::PendingJobs,
            "spot-pending-pods" => KubeCount::PendingPods,
            "spot-pending-seconds" => KubeCount::PendingSeconds,
            "spot-interruptions" => KubeCount::Interruptions,
            _ => return None,
        };
        let spot = name.starts_with("spot-");
        Some(KubeSource {
            count,
            capacity_type: spot.then(|| "spot".to_string()),
            workload: None,
            selector: None,
        })
    }

    async fn one(
        &self,
        target: &TargetRef,
        req: &SignalRequest,
        src: &KubeSource,
        now_ms: i64,
    ) -> Result<Signal, SignalError> {
        let err = |m: String| SignalError::new(req, "kubernetes", SourceError::Kubernetes(m));
        let ns = &target.namespace;
        let latest = |v: f64| Signal {
            name: req.name.clone(),
            samples: vec![Sample::new(now_ms, v)],
        };
        match src.count {
            KubeCount::Replicas | KubeCount::ReadyReplicas => {
                let (r, ready) = match &src.workload {
                    None => (target.replicas, target.ready_replicas),
                    Some(w) => self.workload_replicas(ns, w).await.map_err(err)?,
                };
                let v = if src.count == KubeCount::Replicas {
                    r
                } else {
                    ready
                };
                Ok(latest(f64::from(v)))
            }
            KubeCount::RunningJobs | KubeCount::PendingJobs => {
                if target.kind != "CronJob" {
                    return Err(err(format!(
                        "Job counts need a CronJob workload (the queue-job template); this is a {}",
                        target.kind
                    )));
                }
                let c = super::job_counts::count(&self.client, ns, &target.name, target.uid.as_deref())
                    .await
                    .map_err(|e| err(e.to_string()))?;
                let v = if src.count == KubeCount::RunningJobs {
                    c.running
                } else {
                    c.pending
                };
                Ok(latest(f64::from(v)))
            }
            KubeCount::PendingPods
            | KubeCount::PendingSeconds
            | KubeCount::Pods
            | KubeCount::Interruptions => {
                let selectors = self.selectors(target, src).await.map_err(err)?;
                let store = self
                    .caches
                    .pods
                    .store(Some(ns), CACHE_SYNC_WAIT)
                    .await
                    .map_err(err)?;
                let pods: Vec<Arc<Pod>> = store.state_filter(|p| {
                    let labels = p.metadata.labels.as_ref().unwrap_or(&NO_LABELS);
                    selectors.iter().any(|(_, s)| s.matches(labels))
                });
                let need_nodes = src.capacity_type.is_some() || src.count == KubeCount::Interruptions;
                let node_store = if need_nodes {
                    Some(
                        self.caches
                            .nodes
                            .store(None, CACHE_SYNC_WAIT)
                            .await
                            .map_err(err)?,
                    )
                } else {
                    None
                };
                let nodes: &dyn NodesByName = match &node_store {
                    Some(s) => s,
                    None => &NoNodes,
                };
                let pods: Vec<&Pod> = pods
                    .iter()
                    .map(Arc::as_ref)
                    .filter(|p| match &src.capacity_type {
                        None => true,
                        Some(ct) => pod_capacity_type(p, nodes) == Some(ct.as_str()),
                    })
                    .collect();
                match src.count {
                    KubeCount::PendingPods => Ok(latest(
                        pods.iter().filter(|p| waits_for_capacity(p)).count() as f64,
                    )),
                    KubeCount::Pods => Ok(latest(pods.iter().filter(|p| is_unfinished(p)).count() as f64)),
                    KubeCount::PendingSeconds => {
                        let oldest = pods
                            .iter()
                            .filter(|p| waits_for_capacity(p))
                            .filter_map(|p| p.metadata.creation_timestamp.as_ref())
                            .map(|t| t.0.as_millisecond())
                            .min();
                        let secs = oldest.map(|t| (now_ms - t).max(0) as f64 / 1000.0).unwrap_or(0.0);
                        Ok(latest(secs))
                    }
                    _ => {
                        let names: Vec<&str> = selectors.iter().map(|(q, _)| q.as_str()).collect();
                        let key = format!("{ns}/{}/{:?}", names.join(";"), src.capacity_type);
                        let samples = self.interruptions(&key, &pods, nodes, req.window_ms, now_ms);
                        Ok(Signal {
                            name: req.name.clone(),
                            samples,
                        })
                    }
                }
            }
        }
    }

    /// Record interruption events seen now and return those inside the window (oldest
    /// first; a single 0 sample at `now` when there are none).
    fn interruptions(
        &self,
        key: &str,
        pods: &[&Pod],
        nodes: &dyn NodesByName,
        window_ms: u64,
        now_ms: i64,
    ) -> Vec<Sample> {
        let mut on_node: HashMap<&str, u32> = HashMap::new();
        for p in pods {
            if p.metadata.deletion_timestamp.is_none()
                && let Some(n) = p.spec.as_ref().and_then(|s| s.node_name.as_deref())
            {
                *on_node.entry(n).or_default() += 1;
            }
        }
        let mut seen = Vec::new();
        for (name, count) in on_node {
            let Some(node) = nodes.node(name) else { continue };
            let taint = node
                .spec
                .as_ref()
                .and_then(|s| s.taints.as_ref())
                .and_then(|ts| ts.iter().find(|t| INTERRUPTION_TAINTS.contains(&t.key.as_str())));
            let Some(taint) = taint else { continue };
            let id = node.metadata.uid.clone().unwrap_or_else(|| name.to_string());
            let at = taint
                .time_added
                .as_ref()
                .map(|t| t.0.as_millisecond())
                .filter(|t| *t <= now_ms)
                .unwrap_or(now_ms);
            seen.push((id, at, count));
        }
        let mut memory = self.caches.events.lock().unwrap_or_else(|p| p.into_inner());
        memory.record(key, seen, window_ms, now_ms)
    }

    /// Label selectors of the pods to count (as text, for keys and messages, and parsed):
    /// the source's `selector`, its `workload`'s, the pool variants of a placing workload
    /// (for a capacity type), or the target's.
    async fn selectors(
        &self,
        target: &TargetRef,
        src: &KubeSource,
    ) -> Result<Vec<(String, Selector)>, String> {
        let parsed = |q: &str, whose: &str| {
            label_selector::parse(q)
                .map(|s| (q.to_string(), s))
                .map_err(|e| format!("{whose}: {e}"))
        };
        if let Some(s) = &src.selector {
            return Ok(vec![parsed(s, "'kubernetes.selector'")?]);
        }
        if let Some(w) = &src.workload {
            return Ok(vec![self.workload_selector(&target.namespace, w).await?]);
        }
        // A capacity type over a placing workload: the pods of all its pool variants (the
        // count keeps those of that capacity type).
        if src.capacity_type.is_some()
            && let Some(pools) = crate::core::WorkloadSpec::from_annotations(&target.annotations, u32::MAX)
                .ok()
                .and_then(|spec| crate::core::pools::pools_of(&spec, &target.name))
        {
            // A variant that is missing has no pods to count (the actuator reports it).
            let mut out = Vec::new();
            let mut first_error = None;
            for p in &pools {
                match self.workload_selector(&target.namespace, &p.workload).await {
                    Ok(sel) => out.push(sel),
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            if out.is_empty()
                && let Some(e) = first_error
            {
                return Err(e);
            }
            return Ok(out);
        }
        match &target.pod_selector {
            Some(q) => Ok(vec![parsed(
                q,
                &format!("the pod selector of {}/{}", target.kind, target.name),
            )?]),
            None => Err(format!(
                "{}/{} has no pod selector; set 'selector' or 'workload'",
                target.kind, target.name
            )),
        }
    }

    /// A Deployment (else StatefulSet) of the namespace, from the caches.
    async fn workload(&self, ns: &str, name: &str) -> Result<WorkloadView, String> {
        let n = |v: Option<i32>| u32::try_from(v.unwrap_or(0)).unwrap_or(0);
        let key = ObjectRef::new(name).within(ns);
        let deployments = self.caches.deployments.store(Some(ns), CACHE_SYNC_WAIT).await?;
        if let Some(d) = deployments.get(&key) {
            return Ok(WorkloadView {
                selector: d.spec.as_ref().map(|s| s.selector.clone()),
                replicas: n(d.spec.as_ref().and_then(|s| s.replicas)),
                ready: n(d.status.as_ref().and_then(|s| s.ready_replicas)),
            });
        }
        let statefulsets = self.caches.statefulsets.store(Some(ns), CACHE_SYNC_WAIT).await?;
        if let Some(s) = statefulsets.get(&ObjectRef::new(name).within(ns)) {
            return Ok(WorkloadView {
                selector: s.spec.as_ref().map(|s| s.selector.clone()),
                replicas: n(s.spec.as_ref().and_then(|s| s.replicas)),
                ready: n(s.status.as_ref().and_then(|s| s.ready_replicas)),
            });
        }
        Err(format!("no Deployment or StatefulSet '{name}' in namespace {ns}"))
    }

    /// `spec.selector` of a Deployment (else StatefulSet) in the namespace.
    async fn workload_selector(&self, ns: &str, name: &str) -> Result<(String, Selector), String> {
        let sel = self.workload(ns, name).await?.selector.unwrap_or_default();
        let q = selector_query(&sel);
        if q.is_empty() {
            return Err(format!("{ns}/{name} has an empty pod selector"));
        }
        let parsed = Selector::try_from(sel).map_err(|e| format!("the pod selector of {ns}/{name}: {e}"))?;
        Ok((q, parsed))
    }

    /// (spec.replicas, status.readyReplicas) of a Deployment (else StatefulSet).
    async fn workload_replicas(&self, ns: &str, name: &str) -> Result<(u32, u32), String> {
        let w = self.workload(ns, name).await?;
        Ok((w.replicas, w.ready))
    }
}

static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();

impl SignalGatherer for KubeObjectsGatherer {
    fn gather<'a>(
        &'a self,
        target: &'a TargetRef,
        plan: &'a [PlanItem<'a>],
        now_ms: i64,
    ) -> BoxFuture<'a, Gathered> {
        Box::pin(async move {
            let mut mine: Vec<(&SignalRequest, KubeSource)> = Vec::new();
            let mut rest: Vec<PlanItem<'a>> = Vec::new();
            let mut bad: Vec<Result<Signal, SignalError>> = Vec::new();
            for (req, src) in plan {
                match src {
                    Some(v) => {
                        let picked = parse_as(req, Some(v), "kubernetes", |spec| match spec {
                            SourceSpec::Kubernetes(k) => Some(k),
                            _ => None,
                        });
                        match picked {
                            Ok(k) => mine.push((req, k)),
                            Err(e) => bad.push(Err(e)),
                        }
                    }
                    None if self.fallback => match Self::default_source(&req.name, target) {
                        Some(k) => mine.push((req, k)),
                        None => rest.push((req.clone(), None)),
                    },
                    None => bad.push(Err(SignalError::new(
                        req,
                        "kubernetes",
                        SourceError::Spec("no source spec".into()),
                    ))),
                }
            }
            let mut results = join_all(mine.iter().map(|(req, k)| self.one(target, req, k, now_ms))).await;
            results.extend(bad);
            let mut out = collect(results);
            if !rest.is_empty() {
                out.merge(WorkloadFacts.gather(target, &rest, now_ms).await);
            }
            out
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap_or_default()
    }

    /// `spot-pending-pods` counts what spot-fallback moves away: pods no spot node has room
    /// for. A pod bound to a node and starting (pulling its image) is Pending too but has
    /// its capacity; one the scheduler has not looked at yet may well find some (counting
    /// those made `minAvailable` move 5 pods where 3 could not be placed).
    #[test]
    fn only_pods_the_scheduler_could_not_place_wait_for_capacity() {
        let unschedulable = pod(serde_json::json!({
            "metadata": {"name": "a"},
            "status": {"phase": "Pending", "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}
        }));
        let starting = pod(serde_json::json!({
            "metadata": {"name": "b"},
            "spec": {"nodeName": "spot-1", "containers": []},
            "status": {"phase": "Pending", "conditions": [
                {"type": "PodScheduled", "status": "True"}]}
        }));
        let not_yet_scheduled = pod(serde_json::json!({
            "metadata": {"name": "c"},
            "status": {"phase": "Pending"}
        }));
        let deleted = pod(serde_json::json!({
            "metadata": {"name": "d", "deletionTimestamp": "2026-01-01T00:00:00Z"},
            "status": {"phase": "Pending", "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}
        }));
        let running = pod(serde_json::json!({
            "metadata": {"name": "e"},
            "spec": {"nodeName": "spot-1", "containers": []},
            "status": {"phase": "Running"}
        }));
        let waiting: Vec<bool> = [&unschedulable, &starting, &not_yet_scheduled, &deleted, &running]
            .iter()
            .map(|p| waits_for_capacity(p))
            .collect();
        assert_eq!(waiting, [true, false, false, false, false]);
    }

    /// The cache keeps only what the counts read: no containers, no managedFields, no
    /// annotations, no status beyond the phase and `PodScheduled`; the counts are the same.
    #[test]
    fn a_cached_pod_keeps_what_the_counts_read_and_nothing_else() {
        let mut p = pod(serde_json::json!({
            "metadata": {"name": "a", "uid": "u1", "labels": {"app": "web"},
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...}"},
                "managedFields": [{"manager": "kubectl", "operation": "Apply"}],
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "r"}],
                "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"containers": [{"name": "web", "image": "web:1", "env": [{"name": "X", "value": "y"}]}],
                "nodeSelector": {"karpenter.sh/capacity-type": "spot"},
                "affinity": {"podAntiAffinity": {}, "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                    {"nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}}},
            "status": {"phase": "Pending", "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes"},
                {"type": "Ready", "status": "False"}],
                "containerStatuses": [{"name": "web", "image": "web:1", "imageID": "", "ready": false, "restartCount": 0}]}
        }));
        assert!(waits_for_capacity(&p));
        strip_pod(&mut p);
        let v = serde_json::to_value(&p).unwrap_or_default();
        assert_eq!(
            v,
            serde_json::json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "a", "uid": "u1", "labels": {"app": "web"},
                    "creationTimestamp": "2026-01-01T00:00:00Z"},
                "spec": {"containers": [], "nodeSelector": {"karpenter.sh/capacity-type": "spot"},
                    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                        {"nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}}},
                "status": {"phase": "Pending", "conditions": [
                    {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}
            })
        );
        assert!(waits_for_capacity(&p));
        assert_eq!(pod_capacity_type(&p, &NoNodes), Some("spot"));
    }

    #[test]
    fn interruption_memory_forgets_keys_nobody_asks_for_and_is_capped() {
        let mut m = EventMemory::default();
        let one = |id: &str, at: i64| vec![(id.to_string(), at, 2u32)];
        let got = m.record("ns/app=web/spot", one("n1", 1_000), 0, 1_000);
        assert_eq!(got, vec![Sample::new(1_000, 2.0)]);
        // The same node again: one event, at its first time.
        let got = m.record("ns/app=web/spot", one("n1", 1_000), 0, 5_000);
        assert_eq!(got, vec![Sample::new(1_000, 2.0)]);
        // Another key, asked an hour and a bit later: the first key is forgotten.
        let later = 1_000 + EVENT_MEMORY_MS + 5_000;
        m.record("ns/app=db/spot", Vec::new(), 0, later);
        assert_eq!(m.keys.len(), 1);
        assert!(m.keys.contains_key("ns/app=db/spot"));
        // Many keys: at most EVENT_KEYS_MAX, the least recently asked for dropped first.
        for i in 0..(EVENT_KEYS_MAX + 10) {
            m.record(&format!("ns/app=w{i}/spot"), one("n", later), 0, later + i as i64);
        }
        assert_eq!(m.keys.len(), EVENT_KEYS_MAX);
        assert!(!m.keys.contains_key("ns/app=db/spot") && !m.keys.contains_key("ns/app=w9/spot"));
        assert!(m.keys.contains_key("ns/app=w10/spot"));
        let last = format!("ns/app=w{}/spot", EVENT_KEYS_MAX + 9);
        assert!(m.keys.contains_key(&last));
        // An event older than the memory is dropped; a window narrows what is returned.
        let got = m.record(&last, one("old", later - EVENT_MEMORY_MS - 1), 0, later + 20_000);
        assert_eq!(got, vec![Sample::new(later, 2.0)]);
        let got = m.record(&last, Vec::new(), 1_000, later + 20_000);
        assert_eq!(got, vec![Sample::new(later + 20_000, 0.0)]);
    }
}
