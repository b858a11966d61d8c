//! The API server goes away mid-run and comes back, under 300 workloads: the controller
//! says it is not ready while it cannot watch, re-lists promptly once the server is back
//! (not after a 30 s client-go backoff step), and converges every workload within two
//! intervals without a retry storm. Its own control plane (the shared one must not be
//! disturbed).

#[path = "controlplane/mod.rs"]
mod controlplane;

use std::time::{Duration, Instant};

use controlplane::fixtures::hpa_deployment;
use controlplane::{ControlPlane, eventually_within, settings};

const WORKLOADS: usize = 300;
const INTERVAL: Duration = Duration::from_secs(5);

/// How many of the namespace's Deployments have `replicas` replicas (and, with `held`,
/// a status that says the controller holds them there: nothing left to write).
fn at(cp: &ControlPlane, ns: &str, replicas: u64, held: bool) -> usize {
    let o = cp.kubectl_ok(&["-n", ns, "get", "deployments", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&o).unwrap_or_default();
    let holds = |d: &serde_json::Value| {
        let status = d["metadata"]["annotations"]["wasmscaler.io/status"]
            .as_str()
            .unwrap_or("{}");
        let status: serde_json::Value = serde_json::from_str(status).unwrap_or_default();
        status["action"] == "hold" && status["desired"].as_u64() == Some(replicas)
    };
    v["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter(|d| d["spec"]["replicas"].as_u64() == Some(replicas) && (!held || holds(d)))
                .count()
        })
        .unwrap_or(0)
}

/// A counter summed over every label set, from a Prometheus text exposition.
fn counter_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_converges_promptly_after_the_api_server_restarts() {
    let owned = ControlPlane::start();
    let cp = &owned;
    let ns = cp.namespace("apirestart").await;
    let ns = ns.as_str();
    let interval = format!("{}s", INTERVAL.as_secs());
    let docs: String = (0..WORKLOADS)
        .map(|i| {
            format!(
                "---\n{}",
                hpa_deployment(
                    ns,
                    &format!("w-{i}"),
                    1,
                    200,
                    &[("wasmscaler.io/interval", &interval)]
                )
            )
        })
        .collect();
    cp.apply(&docs);
    let running = cp.start_controller(settings(ns)).await;
    let ctl = &running;
    eventually_within(
        "every workload held at 2",
        Duration::from_secs(180),
        || async move { (at(cp, ns, 2, true) == WORKLOADS).then_some(()) },
    )
    .await;
    assert!(ctl.is_ready());

    // Down for long enough that client-go's backoff would have reached its 12.8 s step.
    let errors = || counter_sum(&ctl.metrics.encode(), "wasmscaler_errors_total");
    let errors_before = errors();
    cp.stop_apiserver();
    eventually_within(
        "/readyz not ready while the API server is down",
        Duration::from_secs(20),
        || async move { (!ctl.is_ready()).then_some(()) },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert!(!ctl.is_ready(), "ready while the watches fail");
    cp.start_apiserver();

    // A change made right after the restart reaches every workload within two intervals.
    cp.kubectl_ok(&[
        "-n",
        ns,
        "annotate",
        "--overwrite",
        "deployments",
        "--all",
        "example.com/load=500",
    ]);
    let changed = Instant::now();
    eventually_within(
        "every workload at 5 within two intervals of the change",
        2 * INTERVAL,
        || async move { (at(cp, ns, 5, false) == WORKLOADS).then_some(()) },
    )
    .await;
    let converged = changed.elapsed();
    eventually_within("ready again", Duration::from_secs(10), || async move {
        ctl.is_ready().then_some(())
    })
    .await;

    // Bounded work: the restarted API server counts every request since it came back
    // (the annotate above included), the controller its failed reconciles and watches.
    // At a steady decision an evaluation makes no request, so the outage costs only the
    // watches' retries (at most one per 4 s each).
    let requests = counter_sum(
        &cp.kubectl_ok(&["get", "--raw", "/metrics"]),
        "apiserver_request_total",
    );
    let failed = errors() - errors_before;
    for l in ctl
        .metrics
        .encode()
        .lines()
        .filter(|l| l.starts_with("wasmscaler_errors_total"))
    {
        println!("  {l}");
    }
    println!(
        "{WORKLOADS} workloads: converged {converged:?} after the change; {requests} API requests since the \
         restart; {failed} controller errors over the outage"
    );
    assert!(
        requests <= (12 * WORKLOADS) as f64,
        "{requests} API requests since the restart for {WORKLOADS} workloads"
    );
    assert!(
        failed <= 40.0,
        "{failed} failed reconciles/watches during a 20 s outage of steady workloads"
    );
    running.shutdown().await;
}
