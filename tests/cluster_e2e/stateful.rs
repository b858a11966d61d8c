//! stateful (seed Pattern 1A): a StatefulSet of read replicas (Parallel pod management, so
//! the order comes from the policy, not from the StatefulSet controller) gains one replica
//! at a time, each only after every existing pod is Ready (kwok: 3 s start-up) and while
//! the replication lag is under its threshold; it never shrinks while lagging.
//! Load and lag are annotations the test sets with `kubectl annotate` (`{annotation: KEY}`
//! sources), the readiness is the real StatefulSet status.

use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use kube::Api;
use kube::runtime::watcher;

use crate::cluster::{Cluster, GENERAL_POOL};
use crate::controlplane::eventually_within;
use crate::controlplane::recorder::Recorder;
use crate::start_controller;

const CONNS: &str = "test.wasmscaler.io/connections";
const LAG: &str = "test.wasmscaler.io/lag";

fn statefulset(ns: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: pg
  namespace: {ns}
  annotations:
    {CONNS}: "200"
    {LAG}: "0"
    wasmscaler.io/policy: stateful
    wasmscaler.io/interval: 1s
    wasmscaler.io/min-replicas: "1"
    wasmscaler.io/max-replicas: "6"
    wasmscaler.io/config: |
      targets: [{{signal: connections, averageValue: 50}}]
      lag: {{signal: replication-lag, maxSeconds: 5}}
      step: 1
      scaleUpStabilizationSeconds: 0
      scaleDownStabilizationSeconds: 4
      scaleDownCooldownSeconds: 0
      signals:
        connections: {{annotation: '{CONNS}'}}
        replication-lag: {{annotation: '{LAG}'}}
spec:
  serviceName: pg
  podManagementPolicy: Parallel
  replicas: 1
  selector: {{matchLabels: {{app: pg}}}}
  template:
    metadata:
      labels: {{app: pg}}
      annotations: {{pod-ready.stage.kwok.x-k8s.io/delay: 3s}}
    spec:
      nodeSelector: {{wasmscaler.test/pool: {GENERAL_POOL}}}
      containers:
      - name: postgres
        image: registry.invalid/postgres:17
        resources: {{requests: {{cpu: 100m}}}}
"#
    )
}

/// Records every (spec.replicas, status.readyReplicas) of the StatefulSet `pg`, from a watch.
async fn record(c: &Cluster, ns: &str) -> Recorder<(u32, u32)> {
    let api: Api<StatefulSet> = Api::namespaced(c.admin_client().await, ns);
    Recorder::start(
        api,
        watcher::Config::default().fields("metadata.name=pg"),
        |objects| {
            objects.get("pg").map_or((0, 0), |s| {
                let count = |n: Option<i32>| n.and_then(|n| u32::try_from(n).ok()).unwrap_or(0);
                (
                    count(s.spec.as_ref().and_then(|s| s.replicas)),
                    count(s.status.as_ref().and_then(|s| s.ready_replicas)),
                )
            })
        },
    )
    .await
}

/// Each increase of spec.replicas seen is by one.
fn assert_one_at_a_time(seen: &[(u32, u32)]) {
    for w in seen.windows(2) {
        let (r0, r1) = (w[0].0, w[1].0);
        assert!(r1 <= r0 + 1, "one replica at a time: {seen:?}");
    }
}

/// With Parallel pod management pg-N is created the moment spec.replicas reaches N+1, so
/// "asked for only after the previous one was Ready" is: pg-N created no earlier than
/// pg-(N-1) became Ready (RFC 3339 seconds compare as text; the 3 s start-up makes an
/// early request show).
fn assert_each_pod_after_previous_ready(c: &Cluster, ns: &str, pods: std::ops::Range<u32>) {
    for n in pods {
        let (created, _) = pod_times(c, ns, &format!("pg-{n}"));
        let (_, prev_ready) = pod_times(c, ns, &format!("pg-{}", n - 1));
        assert!(
            !prev_ready.is_empty() && created >= prev_ready,
            "pg-{n} created at {created}, pg-{} Ready only at {prev_ready}",
            n - 1
        );
    }
}

/// A pod's `metadata.creationTimestamp` and its Ready condition's `lastTransitionTime`.
fn pod_times(c: &Cluster, ns: &str, pod: &str) -> (String, String) {
    let v = c.get_json(ns, "pod", pod);
    let ready = v["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .and_then(|c| c["lastTransitionTime"].as_str())
        .unwrap_or_default()
        .to_string();
    (
        v["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        ready,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statefulset_grows_one_ready_replica_at_a_time_and_never_shrinks_while_lagging() {
    let c = Cluster::shared();
    let ns = c.namespace("stateful").await;
    c.apply(&statefulset(&ns));
    let states = record(c, &ns).await;
    let ctl = start_controller(c, &ns, None, &[]).await;

    // 200 connections at 50 per replica -> 4, reached one Ready replica at a time.
    let seen = states.until(Duration::from_secs(45), |&s| s == (4, 4)).await;
    assert_one_at_a_time(&seen);
    assert_each_pod_after_previous_ready(c, &ns, 1..4);

    // Lagging replicas: more load asks for 6, but the lag (30 s > 5 s) holds at 4.
    c.annotate(&ns, "statefulset/pg", &format!("{LAG}=30"));
    c.annotate(&ns, "statefulset/pg", &format!("{CONNS}=300"));
    eventually_within("the hold names the lag", Duration::from_secs(10), || async {
        let reason = c.decision(&ns, "statefulset", "pg")["reason"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        reason.contains("replica lag 30.0 s > 5 s").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        c.replicas(&ns, "statefulset", "pg"),
        Some(4),
        "no scale-up while lagging"
    );
    // Lag recovers: on to 6, still one Ready replica at a time.
    states.restart_from_now();
    c.annotate(&ns, "statefulset/pg", &format!("{LAG}=1"));
    let seen = states.until(Duration::from_secs(30), |&s| s == (6, 6)).await;
    assert_one_at_a_time(&seen);
    assert_each_pod_after_previous_ready(c, &ns, 4..6);

    // Load drops (-> 1) while lagging: held at 6 past the 4 s stabilization window.
    c.annotate(&ns, "statefulset/pg", &format!("{LAG}=30"));
    c.annotate(&ns, "statefulset/pg", &format!("{CONNS}=50"));
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(
        c.replicas(&ns, "statefulset", "pg"),
        Some(6),
        "never shrinks while lagging"
    );
    // Lag gone: it shrinks one replica at a time, and the StatefulSet removes the pods.
    states.restart_from_now();
    c.annotate(&ns, "statefulset/pg", &format!("{LAG}=0"));
    let seen = states.until(Duration::from_secs(30), |&(r, _)| r <= 4).await;
    for w in seen.windows(2) {
        assert!(w[1].0 + 1 >= w[0].0, "one replica at a time down: {seen:?}");
    }
    eventually_within(
        "pods follow spec.replicas down",
        Duration::from_secs(30),
        || async {
            let r = c.replicas(&ns, "statefulset", "pg")? as usize;
            (c.pods(&ns, "app=pg").len() == r).then_some(())
        },
    )
    .await;
    ctl.shutdown().await;
}
