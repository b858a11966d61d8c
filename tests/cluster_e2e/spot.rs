//! spot-fallback (seed Pattern 3) on real capacity: a spot pool with room for 4 pods and an
//! on-demand pool. The policy wants 10 replicas (3 on the on-demand floor, 7 on spot):
//! 1. the scheduler leaves 3 spot pods Pending (Unschedulable: not enough cpu) -> after
//!    `pendingTimeout` those 3 move to on-demand;
//! 2. the spot nodes are interrupted (tainted `karpenter.sh/disruption`, as Karpenter does
//!    before draining) -> the whole spot share moves to on-demand; the spot pods go away and
//!    the drained nodes are deleted;
//! 3. new spot nodes join -> after `calmPeriod` replicas move back to spot `moveBackStep` at a
//!    time until the split is 3/7 again.
//!
//! A second test: `minAvailable` moves Pending spot pods at once, long before the timeout.
//!
//! The on-demand floor (3) holds throughout, and every replica the policy asks for ends up a
//! Ready pod on a node of the right capacity type.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::runtime::watcher;

use crate::cluster::{CAPACITY_LABEL, Cluster, NodePool};
use crate::controlplane::eventually_within;
use crate::controlplane::recorder::Recorder;
use crate::start_controller;

/// A pool variant of `web` (which it lets scale it).
fn variant(ns: &str, name: &str, pool: &NodePool, replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {ns}\n  annotations: {{wasmscaler.io/scalable-by: web}}\nspec:\n  replicas: {replicas}\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n      annotations: {{pod-ready.stage.kwok.x-k8s.io/delay: 1s}}\n    spec:\n      nodeSelector: {{{CAPACITY_LABEL}: {cap}, wasmscaler.test/pool: {pool}}}\n      tolerations: [{{key: wasmscaler.test/pool, operator: Exists, effect: NoSchedule}}]\n      containers:\n      - name: web\n        image: registry.invalid/web:1\n        resources: {{requests: {{cpu: '1'}}}}\n",
        cap = pool.capacity_type,
        pool = pool.name,
    )
}

fn holder(ns: &str) -> String {
    holder_with(
        ns,
        "pendingTimeout: 3s\n      maxInterruptions: 1\n      interruptionWindow: 5s\n      calmPeriod: 10s\n      moveBackStep: 2\n      moveBackInterval: 3s",
    )
}

/// The spot-fallback holder `web`: 10 replicas wanted (load 1000 at 100 each), on-demand
/// floor 30 %, and the `extra` config lines.
fn holder_with(ns: &str, extra: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {ns}
  annotations:
    wasmscaler.io/policy: spot-fallback
    wasmscaler.io/interval: 1s
    wasmscaler.io/max-replicas: "20"
    wasmscaler.io/config: |
      averageValue: 100
      onDemandBase: 0.3
      {extra}
      signals:
        load: {{value: 1000}}
spec:
  replicas: 0
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec: {{containers: [{{name: web, image: registry.invalid/web:1}}]}}
"#
    )
}

/// (spec.replicas of web-spot, of web-on-demand), from one LIST: a consistent snapshot
/// (two GETs could see one variant before a write and the other after the next one).
fn split(c: &Cluster, ns: &str) -> (u32, u32) {
    let o = c.kubectl_ok(&["-n", ns, "get", "deployments", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&o).unwrap_or_default();
    let replicas = |name: &str| {
        v["items"]
            .as_array()
            .and_then(|items| items.iter().find(|d| d["metadata"]["name"] == name))
            .and_then(|d| d["spec"]["replicas"].as_u64())
            .and_then(|r| u32::try_from(r).ok())
            .unwrap_or(0)
    };
    (replicas("web-spot"), replicas("web-on-demand"))
}

/// Records every (web-spot, web-on-demand) spec.replicas pair, from one watch over the
/// namespace's Deployments (its events are ordered, so each write shows on its own).
async fn record_split(c: &Cluster, ns: &str) -> Recorder<(u32, u32)> {
    let api: Api<Deployment> = Api::namespaced(c.admin_client().await, ns);
    Recorder::start(api, watcher::Config::default(), |objects| {
        let replicas = |name: &str| {
            objects
                .get(name)
                .and_then(|d| d.spec.as_ref()?.replicas)
                .and_then(|r| u32::try_from(r).ok())
                .unwrap_or(0)
        };
        (replicas("web-spot"), replicas("web-on-demand"))
    })
    .await
}

/// Ready pods of a variant on nodes of `pool`.
fn serving_on(c: &Cluster, ns: &str, app: &str, pool: &str) -> usize {
    c.pods(ns, &format!("app={app}"))
        .iter()
        .filter(|p| p.serving() && p.node.as_deref().is_some_and(|n| n.starts_with(pool)))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_full_interrupted_and_back_moves_replicas_between_real_pools() {
    let c = Cluster::shared();
    let ns = c.namespace("spot").await;
    let spot = NodePool::new(&format!("{ns}-spot"), "spot", 2).cpu("2").tainted();
    let od = NodePool::new(&format!("{ns}-od"), "on-demand", 2)
        .cpu("8")
        .tainted();
    c.node_pool(&spot);
    c.node_pool(&od);
    c.apply(&variant(&ns, "web-spot", &spot, 0));
    c.apply(&variant(&ns, "web-on-demand", &od, 0));
    c.apply(&holder(&ns));
    let states = record_split(c, &ns).await;
    let ctl = start_controller(c, &ns, None, &[]).await;

    // 1. 10 wanted: 7 spot, 3 on-demand; the spot pool fits 4, 3 stay Pending.
    eventually_within("split 7 spot / 3 on-demand", Duration::from_secs(20), || async {
        (split(c, &ns) == (7, 3)).then_some(())
    })
    .await;
    eventually_within("3 spot pods Unschedulable", Duration::from_secs(20), || async {
        let ps = c.pods(&ns, "app=web-spot");
        (ps.iter().filter(|p| p.unschedulable && p.node.is_none()).count() == 3).then_some(())
    })
    .await;
    eventually_within(
        "the 3 Pending spot replicas moved to on-demand",
        Duration::from_secs(20),
        || async { (split(c, &ns) == (4, 6)).then_some(()) },
    )
    .await;
    eventually_within(
        "4 Ready on spot nodes, 6 on on-demand nodes, none Pending",
        Duration::from_secs(30),
        || async {
            (serving_on(c, &ns, "web-spot", &spot.name) == 4
                && serving_on(c, &ns, "web-on-demand", &od.name) == 6
                && c.pods(&ns, "app=web-spot").len() == 4)
                .then_some(())
        },
    )
    .await;
    assert!(
        c.events(&ns, "web")
            .iter()
            .any(|(_, n)| n.contains("spot web-spot 7->4") && n.contains("on-demand web-on-demand 3->6")),
        "an Event names the pool change: {:?}",
        c.events(&ns, "web")
    );

    // 2. Interruption: both spot nodes get Karpenter's disruption taint.
    for n in spot.node_names() {
        c.kubectl_ok(&[
            "taint",
            "node",
            &n,
            "karpenter.sh/disruption=disrupting:NoSchedule",
        ]);
    }
    eventually_within(
        "the whole spot share on on-demand",
        Duration::from_secs(20),
        || async { (split(c, &ns) == (0, 10)).then_some(()) },
    )
    .await;
    eventually_within(
        "10 Ready on on-demand, the spot pods gone",
        Duration::from_secs(30),
        || async {
            (serving_on(c, &ns, "web-on-demand", &od.name) == 10 && c.pods(&ns, "app=web-spot").is_empty())
                .then_some(())
        },
    )
    .await;
    // Drained: the interrupted nodes go away, as the cloud reclaims them.
    for n in spot.node_names() {
        c.kubectl_ok(&["delete", "node", &n]);
    }

    // 3. Fresh spot capacity (8 pods); after the calm period replicas move back 2 at a time.
    let spot2 = NodePool::new(&format!("{ns}-spot2"), "spot", 4)
        .cpu("2")
        .tainted();
    c.node_pool(&spot2);
    states.restart_from_now();
    c.kubectl_ok(&[
        "-n",
        &ns,
        "patch",
        "deployment",
        "web-spot",
        "--type=merge",
        "-p",
        &format!(
            "{{\"spec\":{{\"template\":{{\"spec\":{{\"nodeSelector\":{{\"{CAPACITY_LABEL}\":\"spot\",\"wasmscaler.test/pool\":\"{}\"}}}}}}}}}}",
            spot2.name
        ),
    ]);
    let seen = states.until(Duration::from_secs(60), |&s| s == (7, 3)).await;
    // The two variants are written one after the other; the growing one goes first, so
    // the state between the two writes holds up to 2 extra replicas, never fewer than the
    // 10 the policy wants. The steps and the floor hold in every state the API server had.
    for w in seen.windows(2) {
        let ((s0, _), (s1, o1)) = (w[0], w[1]);
        assert!(
            s1 >= s0 && s1 - s0 <= 2 && o1 >= 3 && (10..=12).contains(&(s1 + o1)),
            "moves back at most 2 at a time, grow before shrink, on-demand floor 3: {seen:?}"
        );
    }
    assert!(seen.len() >= 4, "gradual, not one jump: {seen:?}");
    eventually_within(
        "7 Ready on the new spot nodes, 3 on on-demand",
        Duration::from_secs(30),
        || async {
            (serving_on(c, &ns, "web-spot", &spot2.name) == 7
                && serving_on(c, &ns, "web-on-demand", &od.name) == 3)
                .then_some(())
        },
    )
    .await;
    ctl.shutdown().await;
}

/// PDB-style `minAvailable`: with a 60 s `pendingTimeout`, Pending spot pods that leave
/// fewer than 80 % of the replicas placed move to on-demand at once, not after the timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_spot_pods_below_min_available_move_to_on_demand_before_the_timeout() {
    let c = Cluster::shared();
    let ns = c.namespace("spot-minavail").await;
    let spot = NodePool::new(&format!("{ns}-spot"), "spot", 2).cpu("2").tainted();
    let od = NodePool::new(&format!("{ns}-od"), "on-demand", 2)
        .cpu("8")
        .tainted();
    c.node_pool(&spot);
    c.node_pool(&od);
    c.apply(&variant(&ns, "web-spot", &spot, 0));
    c.apply(&variant(&ns, "web-on-demand", &od, 0));
    c.apply(&holder_with(&ns, "pendingTimeout: 60s\n      minAvailable: 0.8"));
    let ctl = start_controller(c, &ns, None, &[]).await;

    eventually_within("split 7 spot / 3 on-demand", Duration::from_secs(20), || async {
        (split(c, &ns) == (7, 3)).then_some(())
    })
    .await;
    let started = std::time::Instant::now();
    // 3 of 7 spot pods Pending leave 7 of 10 placed < ceil(0.8 x 10) = 8: moved at once.
    eventually_within(
        "the Pending spot replicas moved to on-demand",
        Duration::from_secs(20),
        || async { (split(c, &ns) == (4, 6)).then_some(()) },
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "moved after {:?}: by minAvailable, not the 60 s pendingTimeout",
        started.elapsed()
    );
    let reason = c.decision(&ns, "deployment", "web")["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        c.events(&ns, "web")
            .iter()
            .any(|(_, n)| n.contains("< minAvailable 0.8"))
            || reason.contains("< minAvailable 0.8"),
        "the move names minAvailable: {reason} {:?}",
        c.events(&ns, "web")
    );
    eventually_within(
        "4 Ready on spot nodes, 6 on on-demand nodes, none Pending",
        Duration::from_secs(30),
        || async {
            (serving_on(c, &ns, "web-spot", &spot.name) == 4
                && serving_on(c, &ns, "web-on-demand", &od.name) == 6
                && c.pods(&ns, "app=web-spot").len() == 4)
                .then_some(())
        },
    )
    .await;
    ctl.shutdown().await;
}
