//! spot-fallback end to end on a real kube-apiserver: the placement lands on the pool
//! variants through /scale; Pending spot pods move replicas to on-demand; interruption
//! taints on spot nodes become `spot-interruptions` events.
//!
//! The controller and the gatherer run as the service account bound by deploy/rbac.yaml,
//! so a missing RBAC rule fails here.

#[path = "controlplane/mod.rs"]
mod controlplane;

use std::collections::BTreeMap;

use controlplane::{ControlPlane, error_count, eventually, settings};
use wasmscaler::core::adapter::{SignalGatherer, TargetRef};
use wasmscaler::signals::kube_objects::KubeObjectsGatherer;
use wasmscaler_sdk::SignalRequest;

fn deployment(ns: &str, name: &str, replicas: u32, capacity: Option<&str>, annotations: &str) -> String {
    let selector = capacity
        .map(|c| format!("      nodeSelector: {{karpenter.sh/capacity-type: {c}}}\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {ns}\n  annotations:\n{annotations}\
spec:\n  replicas: {replicas}\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n{selector}      containers:\n      - name: web\n        image: registry.invalid/web:1\n"
    )
}

/// A variant's annotations letting `web` scale it.
const OPTED_IN: &str = "    wasmscaler.io/scalable-by: web\n";

const WEB: &str = r#"    wasmscaler.io/policy: spot-fallback
    wasmscaler.io/interval: 1s
    wasmscaler.io/max-replicas: "20"
    wasmscaler.io/config: |
      averageValue: 100
      pendingTimeout: 2s
      signals:
        load: {value: 1000}
        # spot-pending-pods / -seconds: the web-spot variant's Pending pods, no mapping needed
"#;

fn pod(ns: &str, name: &str, app: &str, node: Option<&str>, capacity: &str) -> String {
    let node = node.map(|n| format!("  nodeName: {n}\n")).unwrap_or_default();
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels: {{app: {app}}}\nspec:\n{node}  nodeSelector: {{karpenter.sh/capacity-type: {capacity}}}\n  containers:\n  - name: web\n    image: registry.invalid/web:1\n"
    )
}

/// The Deployment `web` of `ns` (pods `app=web`) as the gatherer sees it.
fn web_target(ns: &str, replicas: u32, annotations: &[(&str, &str)]) -> TargetRef {
    TargetRef {
        namespace: ns.to_string(),
        kind: "Deployment".into(),
        api_version: "apps/v1".into(),
        name: "web".into(),
        uid: None,
        labels: BTreeMap::new(),
        annotations: annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        pod_selector: Some("app=web".into()),
        replicas,
        ready_replicas: 0,
    }
}

/// What the scheduler writes on a pod no node has room for (there is no scheduler here).
fn mark_unschedulable(cp: &ControlPlane, ns: &str, pod: &str) {
    cp.kubectl_ok(&[
        "-n",
        ns,
        "patch",
        "pod",
        pod,
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"conditions":[{"type":"PodScheduled","status":"False","reason":"Unschedulable","message":"0/2 nodes are available: 2 Insufficient cpu."}]}}"#,
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placement_scales_the_pool_variants_and_pending_spot_pods_fall_back() {
    let cp = ControlPlane::shared();
    let ns = cp.namespace("spot").await;
    // The on-demand variant's owner has not (yet) opted in to being scaled by `web`.
    cp.apply(&deployment(&ns, "web-spot", 0, Some("spot"), OPTED_IN));
    cp.apply(&deployment(
        &ns,
        "web-on-demand",
        0,
        Some("on-demand"),
        "    {}\n",
    ));
    cp.apply(&deployment(&ns, "web", 0, None, WEB));
    // The controller runs as the service account bound by deploy/rbac.yaml.
    let controller = cp.controller_client().await;
    let ctl = wasmscaler::kube::start(controller.clone(), settings(&ns), |c| {
        wasmscaler::kube::extensions::extensions(c, None)
    })
    .await
    .expect("controller starts");

    eventually(
        "InvalidAnnotation naming the variant that did not opt in",
        || async {
            cp.events(&ns, "web")
                .iter()
                .any(|(r, n)| {
                    r == "InvalidAnnotation"
                        && n.contains("pool 'on-demand': Deployment")
                        && n.contains("/web-on-demand has not opted in")
                        && n.contains("wasmscaler.io/scalable-by: web")
                })
                .then_some(())
        },
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(
        (
            cp.replicas(&ns, "deployment", "web-spot"),
            cp.replicas(&ns, "deployment", "web-on-demand")
        ),
        (Some(0), Some(0)),
        "no pool is written while one refuses"
    );
    cp.kubectl_ok(&[
        "-n",
        &ns,
        "annotate",
        "deployment",
        "web-on-demand",
        "wasmscaler.io/scalable-by=api, web",
    ]);

    // load 1000 at 100 per replica = 10: 30 % on-demand floor = 3, spot 7.
    eventually("web-spot 7, web-on-demand 3", || async {
        (cp.replicas(&ns, "deployment", "web-spot") == Some(7)
            && cp.replicas(&ns, "deployment", "web-on-demand") == Some(3))
        .then_some(())
    })
    .await;
    assert_eq!(
        cp.replicas(&ns, "deployment", "web"),
        Some(0),
        "the annotated Deployment only holds the policy"
    );

    // 4 spot pods stay Pending and Unschedulable (no scheduler here, so they really do)
    // longer than pendingTimeout: those 4 move to on-demand.
    for i in 0..4 {
        cp.apply(&pod(&ns, &format!("web-spot-{i}"), "web-spot", None, "spot"));
        mark_unschedulable(cp, &ns, &format!("web-spot-{i}"));
    }
    eventually("4 replicas moved to on-demand", || async {
        (cp.replicas(&ns, "deployment", "web-spot") == Some(3)
            && cp.replicas(&ns, "deployment", "web-on-demand") == Some(7))
        .then_some(())
    })
    .await;
    eventually("an Event naming the pool change", || async {
        cp.events(&ns, "web")
            .iter()
            .any(|(_, n)| n.contains("spot web-spot 7->3") && n.contains("on-demand web-on-demand 3->7"))
            .then_some(())
    })
    .await;

    // A missing variant is reported by name.
    cp.kubectl_ok(&["-n", &ns, "delete", "deployment", "web-on-demand"]);
    eventually("an error naming the missing variant", || async {
        cp.events(&ns, "web")
            .iter()
            .any(|(r, n)| r == "ActuationFailed" && n.contains("web-on-demand"))
            .then_some(())
    })
    .await;
    // ... and holds until the next interval: the template is not written in the pools'
    // stead, and the failure is not retried in a tight loop.
    let errors = |kind: &str| error_count(&ctl.metrics.encode(), kind);
    let (conflicts, failures) = (errors("conflict"), errors("actuator"));
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(
        cp.replicas(&ns, "deployment", "web"),
        Some(0),
        "the template was scaled"
    );
    assert_eq!(errors("conflict"), conflicts, "retried a stale write in a loop");
    let retried = errors("actuator") - failures;
    assert!(
        retried <= 4,
        "{retried} actuation attempts in 3 s at a 1 s interval"
    );
    ctl.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interruption_taints_and_capacity_types_are_read_from_nodes_and_pods() {
    let cp = ControlPlane::shared();
    let ns = cp.namespace("spot-signals").await;
    // The controller runs as the service account bound by deploy/rbac.yaml.
    let controller = cp.controller_client().await;
    let suffix = ns.clone();
    // Two spot nodes (one being interrupted) and one on-demand node.
    let node = |name: &str, capacity: &str, taint: bool| {
        let taints = if taint {
            "  taints:\n  - {key: karpenter.sh/disruption, value: disrupting, effect: NoSchedule}\n"
        } else {
            ""
        };
        format!(
            "apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}-{suffix}\n  labels: {{karpenter.sh/capacity-type: {capacity}}}\nspec:\n{taints}"
        )
    };
    cp.apply(&node("spot-a", "spot", true));
    cp.apply(&node("spot-b", "spot", false));
    cp.apply(&node("od-a", "on-demand", false));
    // Bound pods: 2 on the interrupted node, 1 on the healthy spot node, 1 on on-demand
    // (its own nodeSelector says spot, but the node's label wins), 1 unbound spot pod.
    let on = |n: &str| format!("{n}-{suffix}");
    cp.apply(&pod(&ns, "p1", "web", Some(&on("spot-a")), "spot"));
    cp.apply(&pod(&ns, "p2", "web", Some(&on("spot-a")), "spot"));
    cp.apply(&pod(&ns, "p3", "web", Some(&on("spot-b")), "spot"));
    cp.apply(&pod(&ns, "p4", "web", Some(&on("od-a")), "spot"));
    cp.apply(&pod(&ns, "p5", "web", None, "spot"));
    mark_unschedulable(cp, &ns, "p5");
    cp.apply(&pod(&ns, "other", "db", Some(&on("spot-a")), "spot"));

    let target = web_target(&ns, 5, &[]);
    let g = KubeObjectsGatherer::new(controller.clone());
    let interruptions = serde_json::json!({"kubernetes": {"count": "interruptions", "capacityType": "spot"}});
    let spot_pods = serde_json::json!({"kubernetes": {"count": "pods", "capacityType": "spot"}});
    let od_pods = serde_json::json!({"kubernetes": {"count": "pods", "capacityType": "on-demand"}});
    let pending = serde_json::json!({"kubernetes": "pendingPods"});
    let plan = vec![
        (
            SignalRequest::window("spot-interruptions", 3_600_000, ""),
            Some(&interruptions),
        ),
        (SignalRequest::latest("spot-pods", ""), Some(&spot_pods)),
        (SignalRequest::latest("on-demand-pods", ""), Some(&od_pods)),
        (SignalRequest::latest("pending", ""), Some(&pending)),
    ];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let got = g.gather(&target, &plan, now).await;
    assert!(got.errors.is_empty(), "{:?}", got.errors);
    let sig = |n: &str| got.signals.iter().find(|s| s.name == n).cloned().expect(n);
    let events = sig("spot-interruptions").samples;
    assert_eq!(events.len(), 1, "one interrupted node: {events:?}");
    assert_eq!(events[0].value, 2.0, "two of the workload's pods on it");
    assert_eq!(
        sig("spot-pods").samples[0].value,
        4.0,
        "p1 p2 p3 on spot nodes + p5 asking for spot"
    );
    assert_eq!(sig("on-demand-pods").samples[0].value, 1.0);
    assert_eq!(
        sig("pending").samples[0].value,
        1.0,
        "every pod is Pending (no kubelet), but only p5 is waiting for a node"
    );

    // The event is remembered at the same time on the next evaluation, not duplicated.
    let again = g.gather(&target, &plan, now + 5_000).await;
    let events2 = again
        .signals
        .iter()
        .find(|s| s.name == "spot-interruptions")
        .map(|s| s.samples.clone())
        .unwrap_or_default();
    assert_eq!(events2, events);
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The `kubernetes` signals read watch caches: however many evaluations, Pods and Nodes
/// are listed once (then watched) and the pool variant is never fetched again; a pod that
/// becomes Pending is in the very next evaluation (the watch delivers it), not stale.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_signals_read_watch_caches_not_one_list_per_evaluation() {
    const EVALUATIONS: usize = 10;
    let cp = ControlPlane::shared();
    let ns = cp.namespace("spot-cache").await;
    // Both pool variants exist: a missing one would also start a StatefulSet cache (the
    // lookup's fallback kind).
    cp.apply(&deployment(&ns, "web-spot", 2, Some("spot"), "    {}\n"));
    cp.apply(&deployment(
        &ns,
        "web-on-demand",
        1,
        Some("on-demand"),
        "    {}\n",
    ));
    let node = format!("spot-c-{ns}");
    cp.apply(&format!(
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: {node}\n  labels: {{karpenter.sh/capacity-type: spot}}\nspec:\n  taints:\n  - {{key: karpenter.sh/disruption, value: disrupting, effect: NoSchedule}}\n"
    ));
    cp.apply(&pod(&ns, "c1", "web-spot", Some(&node), "spot"));
    cp.apply(&pod(&ns, "c2", "web-spot", None, "spot"));

    // As the controller's service account (deploy/rbac.yaml), every request counted.
    let (client, sent) = controlplane::counting::counting(cp.controller_client().await);
    let g = KubeObjectsGatherer::with_facts_fallback(client);
    let target = web_target(
        &ns,
        2,
        &[
            ("wasmscaler.io/policy", "spot-fallback"),
            ("wasmscaler.io/config", "averageValue: 100\n"),
        ],
    );
    let replicas = serde_json::json!({"kubernetes": {"count": "replicas", "workload": "web-spot"}});
    let selected = serde_json::json!({"kubernetes": {"count": "pods",
        "selector": "app in (web-spot, web-on-demand),!canary"}});
    // spot-pending-pods / spot-interruptions: the web-spot variant's pods, no mapping.
    let plan = vec![
        (SignalRequest::latest("spot-pending-pods", ""), None),
        (SignalRequest::window("spot-interruptions", 3_600_000, ""), None),
        (SignalRequest::latest("variant-replicas", ""), Some(&replicas)),
        (SignalRequest::latest("selected", ""), Some(&selected)),
    ];
    let values = |got: &wasmscaler::core::adapter::Gathered| -> Vec<(String, Vec<f64>)> {
        assert!(got.errors.is_empty(), "{:?}", got.errors);
        let mut v: Vec<(String, Vec<f64>)> = got
            .signals
            .iter()
            .map(|s| (s.name.clone(), s.samples.iter().map(|x| x.value).collect()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    let first = values(&g.gather(&target, &plan, now_ms()).await);
    let want = |pending: f64| {
        vec![
            ("selected".to_string(), vec![2.0]),
            ("spot-interruptions".to_string(), vec![1.0]),
            ("spot-pending-pods".to_string(), vec![pending]),
            ("variant-replicas".to_string(), vec![2.0]),
        ]
    };
    assert_eq!(first, want(0.0));
    // (LISTs of pods, of nodes, of deployments + statefulsets; GETs of one of those).
    let counts = || {
        (
            sent.lists("pods"),
            sent.lists("nodes"),
            sent.lists("deployments") + sent.lists("statefulsets"),
            sent.gets("deployments") + sent.gets("statefulsets"),
        )
    };
    assert_eq!(
        counts(),
        (1, 1, 1, 0),
        "one LIST each of pods (the namespace), nodes, deployments to start the caches: {:?}",
        sent.all()
    );
    for _ in 0..EVALUATIONS {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert_eq!(values(&g.gather(&target, &plan, now_ms()).await), want(0.0));
    }
    assert_eq!(
        counts(),
        (1, 1, 1, 0),
        "no LIST or GET per evaluation after {} evaluations: {:?}",
        EVALUATIONS + 1,
        sent.all()
    );
    assert_eq!(g.caches_running(), 3, "pods of {ns}, nodes, deployments of {ns}");

    // The scheduler gives up on c2: the next evaluation, within one interval, counts it.
    mark_unschedulable(cp, &ns, "c2");
    let marked = std::time::Instant::now();
    controlplane::eventually_within(
        "spot-pending-pods 1 within one 1 s interval",
        std::time::Duration::from_secs(1),
        || async {
            let v = values(&g.gather(&target, &plan, now_ms()).await);
            (v == want(1.0)).then_some(())
        },
    )
    .await;
    eprintln!("Pending pod seen {:?} after the patch", marked.elapsed());
    assert_eq!(counts(), (1, 1, 1, 0), "still no new LIST: {:?}", sent.all());
    assert!(sent.watches("pods") >= 1 && sent.watches("nodes") >= 1);
}

/// A cache that cannot sync (here RBAC forbids the user everything) fails the signal with
/// the resource and the watch's error, within the sync bound, and fails the next
/// evaluations at once: no reconcile waits on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_that_cannot_sync_fails_the_signal_naming_the_resource() {
    let cp = ControlPlane::shared();
    let ns = cp.namespace("spot-forbidden").await;
    let g = KubeObjectsGatherer::new(cp.unprivileged_client().await);
    let target = web_target(&ns, 1, &[]);
    let pods = serde_json::json!({"kubernetes": "pods"});
    let plan = vec![(SignalRequest::latest("pods", ""), Some(&pods))];
    let bound = wasmscaler::signals::kube_objects::CACHE_SYNC_WAIT;
    let start = std::time::Instant::now();
    let got = g.gather(&target, &plan, now_ms()).await;
    let took = start.elapsed();
    assert!(got.signals.is_empty());
    let (name, why) = got.errors.first().cloned().expect("an error");
    assert_eq!(name, "pods");
    assert!(
        why.contains(&format!("pods in namespace {ns}: watch not synced yet")) && why.contains("forbidden"),
        "{why}"
    );
    assert!(took < bound + std::time::Duration::from_secs(2), "{took:?}");
    let start = std::time::Instant::now();
    let again = g.gather(&target, &plan, now_ms()).await;
    assert_eq!(again.errors.len(), 1, "{:?}", again.errors);
    assert!(
        start.elapsed() < std::time::Duration::from_secs(1),
        "a later evaluation does not wait again: {:?}",
        start.elapsed()
    );
}
