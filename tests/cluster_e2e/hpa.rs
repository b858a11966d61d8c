//! HPA-style service: a Deployment scaled by the `hpa` policy from a real Prometheus that
//! scrapes an exporter the test sets. The ReplicaSet controller makes the pods, the
//! scheduler places them, kwok makes each Ready 4 s after it lands; the decision holds
//! while they start (no over-shoot), and a load drop waits out the scale-down
//! stabilization window before the Deployment shrinks and its pods go away.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;

use crate::cluster::{Cluster, GENERAL_POOL};
use crate::controlplane::eventually_within;
use crate::servers::{Exporter, PrometheusServer};
use crate::{scaled_events, start_controller};

const READY_DELAY_S: u64 = 4;
const STABILIZATION_S: u64 = 12;

fn shop(ns: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
  namespace: {ns}
  annotations:
    wasmscaler.io/policy: hpa
    wasmscaler.io/interval: 1s
    wasmscaler.io/max-replicas: "10"
    wasmscaler.io/config: |
      targets: [{{signal: load, averageValue: 100}}]
      signals:
        load: {{prometheus: 'sum(shop_requests_per_second)'}}
    wasmscaler.io/behavior: |
      scaleDown:
        stabilizationWindowSeconds: {STABILIZATION_S}
        policies: [{{type: Percent, value: 100, periodSeconds: 15}}]
spec:
  replicas: 1
  selector: {{matchLabels: {{app: shop}}}}
  template:
    metadata:
      labels: {{app: shop}}
      annotations: {{pod-ready.stage.kwok.x-k8s.io/delay: {READY_DELAY_S}s}}
    spec:
      nodeSelector: {{wasmscaler.test/pool: {GENERAL_POOL}}}
      containers:
      - name: shop
        image: registry.invalid/shop:1
        resources: {{requests: {{cpu: 100m, memory: 64Mi}}}}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_scales_on_prometheus_load_waits_for_ready_pods_and_holds_scale_down() {
    let c = Cluster::shared();
    let exporter = Exporter::start();
    exporter.set("shop_requests_per_second", 450.0);
    let prom = PrometheusServer::start(&[exporter.addr]);
    prom.wait_for("sum(shop_requests_per_second)", 450.0);
    let ns = c.namespace("hpa").await;
    c.apply(&shop(&ns));
    let pods = |c: &Cluster| c.pods(&ns, "app=shop");
    // The ReplicaSet controller, the scheduler and kwok bring the first pod up.
    eventually_within("the first shop pod Ready", Duration::from_secs(30), || async {
        (pods(c).iter().filter(|p| p.serving()).count() == 1).then_some(())
    })
    .await;

    let ctl = start_controller(c, &ns, Some(prom.url.clone()), &[]).await;
    // 450 rps at 100 per replica -> 5 (HPA scale-up allows +4 pods per 15 s from 1).
    let scaled_at = eventually_within("shop scaled to 5", Duration::from_secs(30), || async {
        (c.replicas(&ns, "deployment", "shop") == Some(5)).then(Instant::now)
    })
    .await;
    // The new pods exist, are bound to nodes, and are not Ready yet (4 s start-up).
    let early = eventually_within(
        "5 shop pods created and bound",
        Duration::from_secs(10),
        || async {
            let ps = pods(c);
            (ps.len() == 5 && ps.iter().all(|p| p.node.is_some())).then_some(ps)
        },
    )
    .await;
    if scaled_at.elapsed() < Duration::from_secs(READY_DELAY_S - 1) {
        assert!(
            early.iter().filter(|p| p.serving()).count() < 5,
            "pods are Ready only after their start-up delay: {early:?}"
        );
    }
    // kwok makes them Ready; the Deployment controller counts them.
    eventually_within("5 shop pods Ready", Duration::from_secs(30), || async {
        (pods(c).iter().filter(|p| p.serving()).count() == 5
            && c.status_count(&ns, "deployment", "shop", "readyReplicas") == 5)
            .then_some(())
    })
    .await;
    // From the API server's own timestamps (whole seconds), not from when this test
    // happened to look: each pod became Ready no sooner than its start-up delay.
    let api: Api<Pod> = Api::namespaced(c.admin_client().await, &ns);
    let listed = api
        .list(&ListParams::default().labels("app=shop"))
        .await
        .expect("list the shop pods");
    for p in &listed.items {
        let created = p.metadata.creation_timestamp.as_ref().map(|t| t.0);
        let ready = p
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready" && c.status == "True"))
            .and_then(|c| c.last_transition_time.as_ref())
            .map(|t| t.0);
        let (Some(created), Some(ready)) = (created, ready) else {
            panic!("pod without creation or Ready time: {:?}", p.metadata.name);
        };
        let startup = ready.duration_since(created).as_secs();
        assert!(
            startup >= i64::try_from(READY_DELAY_S).unwrap_or(i64::MAX) - 1,
            "{:?} Ready {startup} s after it was created, before its {READY_DELAY_S} s start-up",
            p.metadata.name
        );
    }

    // Settled: readyReplicas rising re-evaluates (it is part of the input fingerprint) but
    // the decision stays at 5, and there was exactly one scale-up.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(c.replicas(&ns, "deployment", "shop"), Some(5));
    let status = c.decision(&ns, "deployment", "shop");
    assert_eq!(
        (status["current"].as_u64(), status["desired"].as_u64()),
        (Some(5), Some(5)),
        "{status}"
    );
    let ups = scaled_events(c, &ns, "shop");
    assert_eq!(
        ups.len(),
        1,
        "one scale-up, no flapping while pods started: {ups:?}"
    );

    // Load drops to 150 -> 2 wanted, but the scale-down stabilization window (12 s) holds 5.
    exporter.set("shop_requests_per_second", 150.0);
    prom.wait_for("sum(shop_requests_per_second)", 150.0);
    let dropped = Instant::now();
    eventually_within("the policy proposing 2", Duration::from_secs(10), || async {
        (c.decision(&ns, "deployment", "shop")["proposal"].as_u64() == Some(2)).then_some(())
    })
    .await;
    assert_eq!(
        c.replicas(&ns, "deployment", "shop"),
        Some(5),
        "held by the stabilization window"
    );
    let down_at = eventually_within(
        "shop scaled down to 2",
        Duration::from_secs(STABILIZATION_S + 15),
        || async { (c.replicas(&ns, "deployment", "shop") == Some(2)).then(Instant::now) },
    )
    .await;
    let held = down_at.duration_since(dropped);
    assert!(
        held >= Duration::from_secs(STABILIZATION_S - 2),
        "scale-down came after {held:?}, before the {STABILIZATION_S} s window"
    );
    // The ReplicaSet controller deletes 3 pods and kwok finalizes them: 2 pods left, Ready.
    eventually_within(
        "2 shop pods left, both Ready",
        Duration::from_secs(30),
        || async {
            let ps = pods(c);
            (ps.len() == 2 && ps.iter().all(|p| p.serving())).then_some(())
        },
    )
    .await;
    ctl.shutdown().await;
}
