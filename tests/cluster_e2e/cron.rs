//! cron (seed Pattern 4C) as a floor under an HPA-style policy (`cron, hpa`: the larger
//! answer wins). A 20 s "business day": open (4 replicas) at seconds 0, 20, 40 and close
//! (1) at 10, 30, 50. The load needs 2. The Deployment follows the schedule at its
//! boundaries (the cron policy asks to be re-checked exactly then), its pods too, and
//! when the load needs more than the floor the load wins.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::runtime::watcher;

use crate::cluster::{Cluster, GENERAL_POOL};
use crate::controlplane::eventually_within;
use crate::controlplane::recorder::Recorder;
use crate::start_controller;

const LOAD: &str = "test.wasmscaler.io/load";

fn shop(ns: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
  namespace: {ns}
  annotations:
    {LOAD}: "150"
    wasmscaler.io/policy: cron, hpa
    wasmscaler.io/max-replicas: "10"
    wasmscaler.io/interval: 30s
    wasmscaler.io/config: |
      cron:
        timezone: UTC
        jobs:
          - {{name: open, schedule: "0,20,40 * * * * *", targetSize: 4}}
          - {{name: close, schedule: "10,30,50 * * * * *", targetSize: 1}}
      hpa:
        targets: [{{signal: load, averageValue: 100}}]
      signals:
        load: {{annotation: '{LOAD}'}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: shop}}}}
  template:
    metadata:
      labels: {{app: shop}}
    spec:
      nodeSelector: {{wasmscaler.test/pool: {GENERAL_POOL}}}
      containers:
      - name: shop
        image: registry.invalid/shop:1
        resources: {{requests: {{cpu: 100m}}}}
"#
    )
}

/// Seconds past the last 10 s boundary at `t`.
fn phase_s(t: SystemTime) -> f64 {
    let ms = t.duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    (ms % 10_000) as f64 / 1000.0
}

/// Records every spec.replicas of the Deployment `shop`, from a watch (a kubectl poll on a
/// loaded machine sees a change seconds late, which reads as "not at a boundary").
async fn record(c: &Cluster, ns: &str) -> Recorder<u32> {
    let api: Api<Deployment> = Api::namespaced(c.admin_client().await, ns);
    Recorder::start(
        api,
        watcher::Config::default().fields("metadata.name=shop"),
        |objects| {
            objects
                .get("shop")
                .and_then(|d| d.spec.as_ref()?.replicas)
                .and_then(|r| u32::try_from(r).ok())
                .unwrap_or(0)
        },
    )
    .await
}

/// Wait for spec.replicas == `want`; the phase within the 10 s period when it changed.
async fn reached(states: &Recorder<u32>, want: u32) -> f64 {
    phase_s(states.reached(Duration::from_secs(25), |&r| r == want).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cron_floor_under_hpa_follows_the_schedule_and_the_load_wins_above_it() {
    let c = Cluster::shared();
    let ns = c.namespace("cron").await;
    c.apply(&shop(&ns));
    let states = record(c, &ns).await;
    // The interval is 30 s: every change below 10 s apart comes from the policy's recheck
    // at the schedule's boundary, not from polling.
    let ctl = start_controller(c, &ns, None, &[]).await;

    // Whatever phase it started in, it goes to 4 at an open and to 2 (load) at a close.
    let first = if c.replicas(&ns, "deployment", "shop") == Some(4) {
        2
    } else {
        4
    };
    reached(&states, first).await;
    let started = Instant::now();
    for want in [if first == 4 { 2 } else { 4 }, first] {
        let at = reached(&states, want).await;
        assert!(
            !(1.5..=8.5).contains(&at),
            "the change to {want} came {at:.1} s into the period, not at a boundary"
        );
    }
    assert!(
        started.elapsed() >= Duration::from_secs(8),
        "one switch per 10 s boundary"
    );
    eventually_within(
        "the pods follow: 4 Ready or 2 Ready",
        Duration::from_secs(15),
        || async {
            let r = c.replicas(&ns, "deployment", "shop")? as usize;
            (c.pods(&ns, "app=shop").iter().filter(|p| p.serving()).count() == r).then_some(())
        },
    )
    .await;

    // Load needing 7 beats the floor of 4 and the 1 of the closed hours.
    c.annotate(&ns, "deployment/shop", &format!("{LOAD}=700"));
    eventually_within("the load wins: 7", Duration::from_secs(10), || async {
        (c.replicas(&ns, "deployment", "shop") == Some(7)).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(
        c.replicas(&ns, "deployment", "shop"),
        Some(7),
        "a boundary passed; the floor never lowers what the load needs"
    );
    ctl.shutdown().await;
}
