//! End to end on a real cluster (tests/controlplane/cluster.rs): kube-apiserver + etcd,
//! kube-controller-manager, kube-scheduler and kwok fake nodes, so the feedback loop every
//! policy depends on runs for real: replicas -> ReplicaSet/StatefulSet/Job controllers make
//! pods -> the scheduler places them (or leaves them Pending) -> kwok makes them Ready after
//! their start-up delay -> readyReplicas / pod counts -> the next decision.
//!
//! One cluster for the whole binary; every test has its own namespace (and its own tainted
//! node pool when capacity matters), so they run in parallel. The controller runs in-process
//! as the service account bound by deploy/rbac.yaml. Every wait is bounded; assertions are
//! what a user would check with kubectl (pods Ready, counts per pool, Events, status).

#[path = "../controlplane/cluster.rs"]
mod cluster;
#[path = "../controlplane/mod.rs"]
mod controlplane;
#[path = "../servers/mod.rs"]
mod servers;

mod batch_job;
mod cron;
mod hpa;
mod knative;
mod ml_predictive;
mod queue_job;
mod spot;
mod stateful;

use cluster::Cluster;

/// Start the controller watching only `ns`, with the standard signal sources (the
/// Prometheus default URL if given) and the extra kinds (`batch/v1/CronJob`, ...).
pub async fn start_controller(
    c: &Cluster,
    ns: &str,
    prometheus: Option<String>,
    extra_kinds: &[&str],
) -> wasmscaler::kube::Running {
    let client = c.controller_client().await;
    let mut s = controlplane::settings(ns);
    s.extra_kinds = extra_kinds.iter().map(|k| k.to_string()).collect();
    wasmscaler::kube::start(client, s, |c| {
        wasmscaler::kube::extensions::extensions(c, prometheus)
    })
    .await
    .expect("controller starts")
}

/// `Scaled` Events of one object, oldest first (their notes).
pub fn scaled_events(c: &Cluster, ns: &str, name: &str) -> Vec<String> {
    c.events(ns, name)
        .into_iter()
        .filter(|(r, _)| r == "Scaled")
        .map(|(_, n)| n)
        .collect()
}

/// Not a test: `scripts/dev-cluster.sh up` runs it to keep this binary's cluster up for
/// debugging by hand. It copies the kubeconfigs to `$WASMSCALER_DEV_CLUSTER`, links the
/// component logs there, and holds the cluster until `$WASMSCALER_DEV_CLUSTER/stop` exists
/// (`dev-cluster.sh down`); when it returns, the harness's watchdog stops every component.
#[test]
#[ignore = "run by scripts/dev-cluster.sh up"]
fn dev_cluster() {
    let out = std::path::PathBuf::from(
        std::env::var_os("WASMSCALER_DEV_CLUSTER")
            .expect("WASMSCALER_DEV_CLUSTER names the output directory"),
    );
    std::fs::create_dir_all(&out).expect("output directory");
    let c = Cluster::shared();
    std::fs::copy(c.admin_kubeconfig(), out.join("admin.kubeconfig")).expect("copy admin kubeconfig");
    std::fs::copy(c.controller_kubeconfig(), out.join("controller.kubeconfig"))
        .expect("copy controller kubeconfig");
    let logs = out.join("logs");
    let _ = std::fs::remove_file(&logs);
    std::os::unix::fs::symlink(c.dir(), &logs).expect("link the logs");
    std::fs::write(out.join("ready"), "").expect("ready file");
    while !out.join("stop").exists() {
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}
