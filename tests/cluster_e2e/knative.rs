//! knative-concurrency (seed Pattern 5B): in-flight requests from a real Prometheus; the
//! service scales to the concurrency it needs, to zero once idle past the grace period
//! (its pods go away), and back from zero on new load straight to `activationScale`.

use std::time::Duration;

use crate::cluster::{Cluster, GENERAL_POOL};
use crate::controlplane::eventually_within;
use crate::servers::{Exporter, PrometheusServer};
use crate::start_controller;

fn hello(ns: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello
  namespace: {ns}
  annotations:
    wasmscaler.io/policy: knative-concurrency
    wasmscaler.io/min-replicas: "0"
    wasmscaler.io/max-replicas: "10"
    wasmscaler.io/interval: 1s
    wasmscaler.io/config: |
      containerConcurrency: 10
      targetUtilizationPercentage: 100
      stableWindow: 6s
      scaleToZeroGracePeriod: 4s
      activationScale: 3
      minScale: 0
      maxScale: 10
      signals:
        concurrency: {{prometheus: 'sum(hello_in_flight_requests)'}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: hello}}}}
  template:
    metadata:
      labels: {{app: hello}}
      annotations: {{pod-ready.stage.kwok.x-k8s.io/delay: 2s}}
    spec:
      nodeSelector: {{wasmscaler.test/pool: {GENERAL_POOL}}}
      containers:
      - name: hello
        image: registry.invalid/hello:2
        resources: {{requests: {{cpu: 100m}}}}
"#
    )
}

fn serving(c: &Cluster, ns: &str) -> usize {
    c.pods(ns, "app=hello").iter().filter(|p| p.serving()).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_scales_to_zero_when_idle_and_back_from_zero_on_new_load() {
    let c = Cluster::shared();
    let exporter = Exporter::start();
    exporter.set("hello_in_flight_requests", 45.0);
    let prom = PrometheusServer::start(&[exporter.addr]);
    prom.wait_for("sum(hello_in_flight_requests)", 45.0);
    let ns = c.namespace("knative").await;
    c.apply(&hello(&ns));
    let ctl = start_controller(c, &ns, Some(prom.url.clone()), &[]).await;

    // 45 in flight at 10 per pod -> 5 pods, Ready.
    eventually_within("5 hello pods Ready", Duration::from_secs(40), || async {
        (c.replicas(&ns, "deployment", "hello") == Some(5) && serving(c, &ns) == 5).then_some(())
    })
    .await;

    // Idle: the stable window empties, then the grace period passes -> 0, no pods left.
    exporter.set("hello_in_flight_requests", 0.0);
    eventually_within("scaled to zero, no pods", Duration::from_secs(45), || async {
        (c.replicas(&ns, "deployment", "hello") == Some(0) && c.pods(&ns, "app=hello").is_empty())
            .then_some(())
    })
    .await;
    assert_eq!(c.status_count(&ns, "deployment", "hello", "readyReplicas"), 0);

    // One request in flight again: from zero straight to activationScale (3), Ready.
    exporter.set("hello_in_flight_requests", 1.0);
    eventually_within(
        "back from zero to 3 Ready pods",
        Duration::from_secs(30),
        || async {
            (c.replicas(&ns, "deployment", "hello") == Some(3) && serving(c, &ns) == 3).then_some(())
        },
    )
    .await;
    ctl.shutdown().await;
}
