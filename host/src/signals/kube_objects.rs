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
//!   Events are remembered in memory for up to an hour (a drained node may disappear).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use futures::future::{BoxFuture, join_all};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams};
use wasmscaler_sdk::{Sample, Signal, SignalRequest};

use super::gather::{SignalError, SourceError, collect, parse_as};
use super::source::{KubeCount, KubeSource, SourceSpec};
use crate::core::adapter::{Gathered, PlanItem, SignalGatherer, TargetRef, WorkloadFacts};

/// Taints that mark a node as being interrupted / about to go away.
pub const INTERRUPTION_TAINTS: &[&str] = &[
    "karpenter.sh/disruption",
    "aws-node-termination-handler/spot-itn",
    "cloud.google.com/impending-node-termination",
];

/// How long interruption events are remembered.
const EVENT_MEMORY_MS: i64 = 3_600_000;

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

/// A pod's capacity type: its node's if bound and known, else what it asks for.
pub fn pod_capacity_type(pod: &Pod, nodes: &HashMap<String, Node>) -> Option<&'static str> {
    let spec = pod.spec.as_ref()?;
    if let Some(node) = spec.node_name.as_ref().and_then(|n| nodes.get(n))
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
pub fn selector_query(sel: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector) -> String {
    let mut parts: Vec<String> = sel
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in sel.match_expressions.iter().flatten() {
        let vals = e.values.clone().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({vals})", e.key),
            "NotIn" => format!("{} notin ({vals})", e.key),
            "Exists" => e.key.clone(),
            "DoesNotExist" => format!("!{}", e.key),
            _ => continue,
        });
    }
    parts.join(",")
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Event {
    at_ms: i64,
    pods: u32,
}

/// Signals of source kind `kubernetes`, and (as the reconciler's fallback for signals
/// without a source spec) the standard names the host can answer itself.
pub struct KubeObjectsGatherer {
    client: kube::Client,
    /// (namespace/selector/capacity type) -> node uid -> event.
    events: Mutex<HashMap<String, HashMap<String, Event>>>,
    /// Answer standard names without a source spec (and hand the rest to WorkloadFacts).
    fallback: bool,
}

impl KubeObjectsGatherer {
    pub fn new(client: kube::Client) -> Self {
        Self {
            client,
            events: Mutex::new(HashMap::new()),
            fallback: false,
        }
    }

    /// As the reconciler's gatherer for signals without a source spec: answers
    /// `running-jobs`/`pending-jobs` (CronJob targets) and `spot-pending-pods`,
    /// `spot-pending-seconds`, `spot-interruptions` (spot-fallback workloads); every
    /// other name goes to [`WorkloadFacts`].
    pub fn with_facts_fallback(client: kube::Client) -> Self {
        Self {
            fallback: true,
            ..Self::new(client)
        }
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
                    Some(w) => workload_replicas(&self.client, ns, w).await.map_err(err)?,
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
                let pods_api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
                let mut pods: Vec<Pod> = Vec::new();
                for sel in &selectors {
                    let list = pods_api
                        .list(&ListParams::default().labels(sel))
                        .await
                        .map_err(|e| err(format!("listing pods ({sel}): {e}")))?;
                    for p in list.items {
                        if !pods.iter().any(|q| q.metadata.uid == p.metadata.uid) {
                            pods.push(p);
                        }
                    }
                }
                let need_nodes = src.capacity_type.is_some() || src.count == KubeCount::Interruptions;
                let nodes: HashMap<String, Node> = if need_nodes {
                    Api::<Node>::all(self.client.clone())
                        .list(&ListParams::default())
                        .await
                        .map_err(|e| err(format!("listing nodes: {e}")))?
                        .items
                        .into_iter()
                        .filter_map(|n| Some((n.metadata.name.clone()?, n)))
                        .collect()
                } else {
                    HashMap::new()
                };
                let pods: Vec<&Pod> = pods
                    .iter()
                    .filter(|p| match &src.capacity_type {
                        None => true,
                        Some(ct) => pod_capacity_type(p, &nodes) == Some(ct.as_str()),
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
                        let key = format!("{ns}/{}/{:?}", selectors.join(";"), src.capacity_type);
                        let samples = self.interruptions(&key, &pods, &nodes, req.window_ms, now_ms);
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
        nodes: &HashMap<String, Node>,
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
        let Ok(mut all) = self.events.lock() else {
            return vec![Sample::new(now_ms, 0.0)];
        };
        let events = all.entry(key.to_string()).or_default();
        for (name, count) in on_node {
            let Some(node) = nodes.get(name) else { continue };
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
            let e = events.entry(id).or_insert(Event { at_ms: at, pods: 0 });
            e.pods = e.pods.max(count);
        }
        events.retain(|_, e| now_ms - e.at_ms <= EVENT_MEMORY_MS);
        let window = if window_ms == 0 {
            EVENT_MEMORY_MS
        } else {
            i64::try_from(window_ms).unwrap_or(i64::MAX)
        };
        let mut out: Vec<Sample> = events
            .values()
            .filter(|e| now_ms - e.at_ms <= window)
            .map(|e| Sample::new(e.at_ms, f64::from(e.pods)))
            .collect();
        out.sort_by_key(|s| s.at_ms);
        if out.is_empty() {
            out.push(Sample::new(now_ms, 0.0));
        }
        out
    }

    /// Label selectors of the pods to count: the source's `selector`, its `workload`'s,
    /// the pool variants of a placing workload (for a capacity type), or the target's.
    async fn selectors(&self, target: &TargetRef, src: &KubeSource) -> Result<Vec<String>, String> {
        if let Some(s) = &src.selector {
            return Ok(vec![s.clone()]);
        }
        if let Some(w) = &src.workload {
            return Ok(vec![workload_selector(&self.client, &target.namespace, w).await?]);
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
                match workload_selector(&self.client, &target.namespace, &p.workload).await {
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
        target.pod_selector.clone().map(|s| vec![s]).ok_or_else(|| {
            format!(
                "{}/{} has no pod selector; set 'selector' or 'workload'",
                target.kind, target.name
            )
        })
    }
}

/// `spec.selector` of a Deployment (else StatefulSet) in the namespace.
pub async fn workload_selector(client: &kube::Client, ns: &str, name: &str) -> Result<String, String> {
    let sel = match Api::<Deployment>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
    {
        Ok(Some(d)) => d.spec.map(|s| s.selector),
        Ok(None) => match Api::<StatefulSet>::namespaced(client.clone(), ns)
            .get_opt(name)
            .await
        {
            Ok(Some(s)) => s.spec.map(|s| s.selector),
            Ok(None) => return Err(format!("no Deployment or StatefulSet '{name}' in namespace {ns}")),
            Err(e) => return Err(format!("reading statefulset {ns}/{name}: {e}")),
        },
        Err(e) => return Err(format!("reading deployment {ns}/{name}: {e}")),
    };
    let q = sel.map(|s| selector_query(&s)).unwrap_or_default();
    if q.is_empty() {
        return Err(format!("{ns}/{name} has an empty pod selector"));
    }
    Ok(q)
}

/// (spec.replicas, status.readyReplicas) of a Deployment (else StatefulSet).
pub async fn workload_replicas(client: &kube::Client, ns: &str, name: &str) -> Result<(u32, u32), String> {
    let n = |v: Option<i32>| u32::try_from(v.unwrap_or(0)).unwrap_or(0);
    match Api::<Deployment>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
    {
        Ok(Some(d)) => Ok((
            n(d.spec.and_then(|s| s.replicas)),
            n(d.status.and_then(|s| s.ready_replicas)),
        )),
        Ok(None) => match Api::<StatefulSet>::namespaced(client.clone(), ns)
            .get_opt(name)
            .await
        {
            Ok(Some(s)) => Ok((
                n(s.spec.and_then(|s| s.replicas)),
                n(s.status.and_then(|s| s.ready_replicas)),
            )),
            Ok(None) => Err(format!("no Deployment or StatefulSet '{name}' in namespace {ns}")),
            Err(e) => Err(format!("reading statefulset {ns}/{name}: {e}")),
        },
        Err(e) => Err(format!("reading deployment {ns}/{name}: {e}")),
    }
}

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
}
