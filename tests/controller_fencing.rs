//! A leader cut off from the API server by a black-holed network (packets vanish, every
//! call hangs) must stop writing before a standby can take over, and never write again
//! on its old leadership when the network comes back. Real kube-apiserver + etcd; the
//! old leader talks to it through a TCP proxy that black-holes (controlplane/fault_proxy).
//!
//! The two replicas share a Lease but watch different namespaces, so every write to the
//! old leader's workload after the standby acquired is the old leader's: nothing else
//! writes there (no kube-controller-manager in this control plane).

#[path = "controlplane/mod.rs"]
mod controlplane;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use controlplane::fault_proxy::FaultProxy;
use controlplane::recorder::Recorder;
use controlplane::{ControlPlane, eventually, eventually_within, settings};
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::runtime::watcher;

/// A cron workload whose next change is at second `at` of the minute (to 3 replicas),
/// 1 replica before (down at `at + 10`: 50 s before the next up, so 10 s before a
/// boundary 40 s away the most recent firing is the down); the interval is long, so
/// nothing but that boundary re-evaluates it.
fn cron_at(ns: &str, at: u64) -> String {
    let down = (at + 10) % 60;
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
  namespace: {ns}
  annotations:
    wasmscaler.io/policy: cron
    wasmscaler.io/interval: 5m
    wasmscaler.io/config: |
      timezone: UTC
      jobs:
        - {{name: up, schedule: "{at} * * * * *", targetSize: 3}}
        - {{name: down, schedule: "{down} * * * * *", targetSize: 1}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: shop}}}}
  template:
    metadata: {{labels: {{app: shop}}}}
    spec: {{containers: [{{name: shop, image: registry.invalid/shop:1}}]}}
"#
    )
}

fn unix_s(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_holed_leader_makes_no_write_after_the_standby_acquires() {
    let cp = ControlPlane::shared();
    let ns_a = cp.namespace("fence-a").await;
    let ns_b = cp.namespace("fence-b").await;
    let lease = format!("wasmscaler-{ns_a}");
    let lease_settings = |ns: &str| wasmscaler::kube::Settings {
        lease_name: lease.clone(),
        lease_duration: Duration::from_secs(4),
        lease_retry: Duration::from_millis(500),
        ..settings(ns)
    };

    // The change comes 40 s from now: after the black hole and the takeover below, with
    // room for a loaded machine (the setup took ~23 s under three concurrent builds).
    let boundary = unix_s(SystemTime::now()) + 40;
    cp.apply(&cron_at(&ns_a, boundary % 60));
    let api: Api<Deployment> = Api::namespaced(cp.admin_client().await, &ns_a);
    let writes = Recorder::start(
        api,
        watcher::Config::default().fields("metadata.name=shop"),
        |objects| {
            objects.get("shop").map(|d| {
                (
                    d.metadata.resource_version.clone().unwrap_or_default(),
                    d.spec.as_ref().and_then(|s| s.replicas),
                )
            })
        },
    )
    .await;

    let proxy = FaultProxy::start(cp.port).await;
    let client_a = cp.controller_client_via(proxy.port).await;
    let a = wasmscaler::kube::start(client_a, lease_settings(&ns_a), |_| {
        Ok::<_, std::convert::Infallible>(Default::default())
    })
    .await
    .expect("replica a starts");
    eventually("replica a leads", || async { a.is_leader().then_some(()) }).await;
    eventually("a applies the cron schedule (1 replica)", || async {
        (cp.replicas(&ns_a, "deployment", "shop") == Some(1)).then_some(())
    })
    .await;
    let b = wasmscaler::kube::start(cp.controller_client().await, lease_settings(&ns_b), |_| {
        Ok::<_, std::convert::Infallible>(Default::default())
    })
    .await
    .expect("replica b starts");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!b.is_leader(), "b waits while a renews");

    // a's network goes dark: its renewals hang. b takes the Lease after 4 s unchanged.
    proxy.black_hole();
    eventually_within("b takes over", Duration::from_secs(15), || async {
        b.is_leader().then_some(())
    })
    .await;
    let acquired = SystemTime::now();
    assert!(
        unix_s(acquired) + 3 < boundary,
        "the takeover came too late for this test to mean anything ({} s before the boundary)",
        boundary.saturating_sub(unix_s(acquired))
    );
    assert!(
        !a.is_leader(),
        "a still believes it leads after b acquired (its renew deadline passed)"
    );

    // The network comes back; a's cron boundary passes. Any write to a's workload now
    // would be a stale leader's.
    proxy.heal();
    let wait = boundary.saturating_sub(unix_s(SystemTime::now())) + 5;
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let late: Vec<_> = writes
        .timed_states()
        .into_iter()
        .filter(|(at, _)| *at > acquired)
        .map(|(_, s)| s)
        .collect();
    assert!(
        late.is_empty(),
        "the old leader wrote after the standby acquired: {late:?}"
    );
    assert_eq!(cp.replicas(&ns_a, "deployment", "shop"), Some(1));
    eventually("a reports it does not lead", || async {
        a.metrics.encode().contains("wasmscaler_leader 0").then_some(())
    })
    .await;
    a.shutdown().await;
    b.shutdown().await;
}
