//! The API server goes away mid-run and comes back: the controller's watches restart
//! and it keeps scaling. Its own control plane (the shared one must not be disturbed).

#[path = "controlplane/mod.rs"]
mod controlplane;

use std::time::Duration;

use controlplane::{ControlPlane, eventually_within, settings};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_recovers_after_the_api_server_restarts() {
    let cp = ControlPlane::start();
    let ns = cp.namespace("apirestart").await;
    cp.apply(&format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: {ns}\n  annotations:\n    wasmscaler.io/policy: hpa\n    wasmscaler.io/interval: 1s\n    wasmscaler.io/config: '{{targets: [{{signal: load, averageValue: 100}}], signals: {{load: {{annotation: example.com/load}}}}}}'\n    example.com/load: \"200\"\n\
spec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      containers:\n      - name: app\n        image: registry.invalid/app:1\n"
    ));
    let ctl = cp.start_controller(settings(&ns)).await;
    let want = |n: u32| {
        let cp = &cp;
        let ns = ns.clone();
        move || {
            let ns = ns.clone();
            async move { (cp.replicas(&ns, "deployment", "web") == Some(n)).then_some(()) }
        }
    };
    eventually_within("scaled to 2", Duration::from_secs(30), want(2)).await;

    cp.stop_apiserver();
    tokio::time::sleep(Duration::from_secs(4)).await;
    cp.start_apiserver();

    cp.annotate(&ns, "deployment/web", "example.com/load=600");
    eventually_within("scaled to 6 after the restart", Duration::from_secs(60), want(6)).await;
    assert!(ctl.is_leader(), "the only replica leads again");
    ctl.shutdown().await;
}
