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

/// The `pg` StatefulSet: read replicas, one at a time.
fn statefulset(ns: &str) -> String {
    stateful_set(
        ns,
        "pg",
        "postgres:17",
        200,
        (1, 6),
        "step: 1\n      scaleUpStabilizationSeconds: 0\n      scaleDownStabilizationSeconds: 4\n      scaleDownCooldownSeconds: 0",
    )
}

/// A StatefulSet `name` scaled by `stateful` on the CONNS and LAG annotations (50
/// connections per replica, lag under 5 s), with `extra` config lines.
fn stateful_set(
    ns: &str,
    name: &str,
    image: &str,
    conns: u32,
    (min, max): (u32, u32),
    extra: &str,
) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {name}
  namespace: {ns}
  annotations:
    {CONNS}: "{conns}"
    {LAG}: "0"
    wasmscaler.io/policy: stateful
    wasmscaler.io/interval: 1s
    wasmscaler.io/min-replicas: "{min}"
    wasmscaler.io/max-replicas: "{max}"
    wasmscaler.io/config: |
      targets: [{{signal: connections, averageValue: 50}}]
      lag: {{signal: replication-lag, maxSeconds: 5}}
      {extra}
      signals:
        connections: {{annotation: '{CONNS}'}}
        replication-lag: {{annotation: '{LAG}'}}
spec:
  serviceName: {name}
  podManagementPolicy: Parallel
  replicas: {min}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata:
      labels: {{app: {name}}}
      annotations: {{pod-ready.stage.kwok.x-k8s.io/delay: 3s}}
    spec:
      nodeSelector: {{wasmscaler.test/pool: {GENERAL_POOL}}}
      containers:
      - name: {name}
        image: registry.invalid/{image}
        resources: {{requests: {{cpu: 100m}}}}
"#
    )
}

/// Records every (spec.replicas, status.readyReplicas) of the StatefulSet `name`, from a watch.
async fn record(c: &Cluster, ns: &str, name: &'static str) -> Recorder<(u32, u32)> {
    let api: Api<StatefulSet> = Api::namespaced(c.admin_client().await, ns);
    Recorder::start(
        api,
        watcher::Config::default().fields(&format!("metadata.name={name}")),
        move |objects| {
            objects.get(name).map_or((0, 0), |s| {
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
    assert_steps_of(seen, 1);
}

/// Each change of spec.replicas seen is by `step` at most, and an increase only from a
/// count whose pods were all Ready.
fn assert_steps_of(seen: &[(u32, u32)], step: u32) {
    for w in seen.windows(2) {
        let ((r0, ready0), r1) = (w[0], w[1].0);
        assert!(r1 <= r0 + step, "{step} replica(s) at a time: {seen:?}");
        assert!(
            r1 <= r0 || ready0 == r0,
            "a step up before the last one was Ready: {seen:?}"
        );
    }
}

/// With Parallel pod management pg-N is created the moment spec.replicas reaches N+1, so
/// "asked for only after the previous one was Ready" is: pg-N created no earlier than
/// pg-(N-1) became Ready (RFC 3339 seconds compare as text; the 3 s start-up makes an
/// early request show).
fn assert_each_pod_after_previous_ready(c: &Cluster, ns: &str, pods: std::ops::Range<u32>) {
    assert_each_step_after_previous_ready(c, ns, "pg", 1, pods);
}

/// The step-`step` form: pod N is created no earlier than the last pod of the step
/// before it (N - N mod step - 1) became Ready.
fn assert_each_step_after_previous_ready(
    c: &Cluster,
    ns: &str,
    name: &str,
    step: u32,
    pods: std::ops::Range<u32>,
) {
    for n in pods {
        let prev = n - n % step - 1;
        let (created, _) = pod_times(c, ns, &format!("{name}-{n}"));
        let (_, prev_ready) = pod_times(c, ns, &format!("{name}-{prev}"));
        assert!(
            !prev_ready.is_empty() && created >= prev_ready,
            "{name}-{n} created at {created}, {name}-{prev} Ready only at {prev_ready}"
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
    let states = record(c, &ns, "pg").await;
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

/// Seed Pattern 1B: a Redis cluster of master + replica pairs grows and shrinks by whole
/// pairs (`step: 2`, `alignToStep`), each pair only once every pod of the last is Ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_cluster_grows_by_whole_ready_pairs_and_shrinks_by_pairs() {
    let c = Cluster::shared();
    let ns = c.namespace("redis-pairs").await;
    c.apply(&stateful_set(
        &ns,
        "redis",
        "redis:8",
        // 330 connections at 50 per replica -> 7, rounded up to the pair grid: 8.
        330,
        (2, 8),
        "step: 2\n      alignToStep: true\n      scaleUpStabilizationSeconds: 0\n      scaleDownStabilizationSeconds: 3\n      scaleDownCooldownSeconds: 0",
    ));
    let states = record(c, &ns, "redis").await;
    let ctl = start_controller(c, &ns, None, &[]).await;

    let seen = states.until(Duration::from_secs(45), |&s| s == (8, 8)).await;
    assert_steps_of(&seen, 2);
    let counts: Vec<u32> = seen.iter().map(|s| s.0).filter(|&r| r > 0).collect();
    assert!(counts.iter().all(|r| r % 2 == 0), "only whole pairs: {seen:?}");
    assert_each_step_after_previous_ready(c, &ns, "redis", 2, 2..8);

    // Load for 3 replicas: down to 4 (the pair grid), one pair at a time.
    states.restart_from_now();
    c.annotate(&ns, "statefulset/redis", &format!("{CONNS}=140"));
    let seen = states.until(Duration::from_secs(30), |&(r, _)| r == 4).await;
    for w in seen.windows(2) {
        assert!(w[1].0 + 2 >= w[0].0, "one pair at a time down: {seen:?}");
    }
    assert!(seen.iter().all(|s| s.0 % 2 == 0), "only whole pairs: {seen:?}");
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        c.replicas(&ns, "statefulset", "redis"),
        Some(4),
        "settled on the grid"
    );
    eventually_within("redis pods follow down to 4", Duration::from_secs(30), || async {
        (c.pods(&ns, "app=redis").len() == 4).then_some(())
    })
    .await;
    ctl.shutdown().await;
}
