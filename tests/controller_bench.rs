//! Controller benchmark (ignored by default): N annotated Deployments (default 1000) on a
//! real kube-apiserver, 15 s interval, the `wasmscaler run` binary as its own process.
//! Each Deployment's `hpa` policy has two targets: `load` from an annotation (what the
//! load changes patch) and `wobble` from a real Prometheus (`vector(100 + time() % 50)`):
//! a signal whose value changes at every evaluation while the decision stays the same,
//! so the steady phase shows what a moving signal costs in API writes. Reports
//! controller CPU and memory, sustained evaluations per second, API writes per minute by
//! resource (from the API server's own `apiserver_request_total`), and the time from a
//! load change to the /scale write (p50, p99).
//!
//! ```sh
//! cargo build --release -p wasmscaler
//! cargo test --release -p wasmscaler-tests --test controller_bench -- --ignored --nocapture
//! # WASMSCALER_BENCH_N=1000 WASMSCALER_BENCH_STEADY_S=60 WASMSCALER_BENCH_CHANGES=200
//! ```

#[path = "controlplane/mod.rs"]
mod controlplane;
#[path = "servers/mod.rs"]
mod servers;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use controlplane::{ControlPlane, SYSTEM_NAMESPACE};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn wasmscaler_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("WASMSCALER_BIN") {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/controller_bench-* -> target/<profile>/wasmscaler
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("wasmscaler"))
        .expect("target dir")
}

fn proc_cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // fields after ')' start at state (3rd field); utime is field 14, stime 15.
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn proc_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum()
}

fn scrape(addr: &str) -> String {
    let o = Command::new("curl")
        .args(["-s", &format!("http://{addr}/metrics")])
        .output();
    o.map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

fn deployment(name: &str, load: u32) -> Deployment {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "annotations": {
            "wasmscaler.io/policy": "hpa",
            "wasmscaler.io/max-replicas": "50",
            "wasmscaler.io/config": WOBBLING_CONFIG,
            "example.com/load": load.to_string(),
        }},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "registry.invalid/app:1"}]}}
        }
    }))
    .expect("valid deployment")
}

/// `load` decides (200: 2 replicas); `wobble` moves every evaluation (100-149, 1 replica
/// at 1000 each) and never decides.
const WOBBLING_CONFIG: &str = "targets: [{signal: load, averageValue: 100}, {signal: wobble, averageValue: 1000}]\n\
signals: {load: {annotation: example.com/load}, wobble: {prometheus: 'vector(100 + time() % 50)'}}";

/// `apiserver_request_total` summed per (verb, resource[/subresource]) for the writes.
fn api_writes(metrics: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
    {
        let label = |k: &str| {
            let at = line.find(&format!("{k}=\"")).map(|i| i + k.len() + 2)?;
            line[at..].split('"').next()
        };
        let verb = label("verb").unwrap_or_default();
        if !matches!(verb, "POST" | "PUT" | "PATCH" | "DELETE") {
            continue;
        }
        let mut resource = label("resource").unwrap_or_default().to_string();
        if let Some(sub) = label("subresource").filter(|s| !s.is_empty()) {
            resource = format!("{resource}/{sub}");
        }
        let v: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        *out.entry(format!("{verb} {resource}")).or_insert(0.0) += v;
    }
    out
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn thousand_deployments() {
    let n = env_or("WASMSCALER_BENCH_N", 1000) as usize;
    let steady_s = env_or("WASMSCALER_BENCH_STEADY_S", 60);
    let changes = env_or("WASMSCALER_BENCH_CHANGES", 200) as usize;
    let bin = wasmscaler_bin();
    assert!(
        bin.is_file(),
        "{} missing: cargo build --release -p wasmscaler",
        bin.display()
    );

    let prometheus = servers::PrometheusServer::start(&[]);
    let cp = ControlPlane::start();
    let ns = cp.namespace("bench").await;
    let admin = cp.admin_client().await;
    let api: Api<Deployment> = Api::namespaced(admin.clone(), &ns);
    let t = Instant::now();
    let pp = PostParams::default();
    let mut futs = futures::stream::iter((0..n).map(|i| {
        let api = api.clone();
        let pp = pp.clone();
        async move {
            api.create(&pp, &deployment(&format!("app-{i:04}"), 200))
                .await
                .map(|_| ())
        }
    }))
    .buffer_unordered(16);
    while let Some(r) = futs.next().await {
        r.expect("create deployment");
    }
    drop(futs);
    println!("created {n} Deployments in {:.1} s", t.elapsed().as_secs_f64());

    // Record when each Deployment's spec.replicas changes (a /scale write).
    let seen: Arc<Mutex<HashMap<String, (u32, Instant)>>> = Arc::default();
    let watch_seen = seen.clone();
    let watch_api = api.clone();
    let watch_task = tokio::spawn(async move {
        let mut s = watcher(watch_api, watcher::Config::default())
            .default_backoff()
            .applied_objects()
            .boxed();
        while let Some(ev) = s.next().await {
            if let Ok(d) = ev {
                let r = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0) as u32;
                let name = d.metadata.name.clone().unwrap_or_default();
                let mut m = watch_seen.lock().unwrap_or_else(|p| p.into_inner());
                match m.get(&name) {
                    Some((old, _)) if *old == r => {}
                    _ => {
                        m.insert(name, (r, Instant::now()));
                    }
                }
            }
        }
    });

    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
        l.local_addr().expect("addr").port()
    };
    let addr = format!("127.0.0.1:{port}");
    let log = std::fs::File::create(cp.dir().join("controller.log")).expect("log");
    let started = Instant::now();
    let mut child = Command::new(&bin)
        .args([
            "run",
            "--namespace",
            &ns,
            "--metrics-addr",
            &addr,
            "--lease-namespace",
            SYSTEM_NAMESPACE,
            "--prometheus-url",
            &prometheus.url,
        ])
        .arg(format!("--kubeconfig={}", cp.controller_kubeconfig().display()))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start controller");
    let pid = child.id();

    // Initial convergence: every Deployment to 2 replicas.
    loop {
        let done = seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|(r, _)| *r == 2)
            .count();
        if done == n {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "only {done}/{n} converged"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let converge = started.elapsed().as_secs_f64();
    println!("controller start -> all {n} scaled 1 -> 2: {converge:.1} s");

    // Steady state: 15 s interval, no changes but the wobble. Settle one interval first
    // (the writes of the convergence itself).
    tokio::time::sleep(Duration::from_secs(20)).await;
    let apiserver_metrics = || cp.kubectl_ok(&["get", "--raw", "/metrics"]);
    let (cpu0, ev0, w0, t0) = (
        proc_cpu_seconds(pid),
        metric(&scrape(&addr), "wasmscaler_evaluations_total"),
        api_writes(&apiserver_metrics()),
        Instant::now(),
    );
    tokio::time::sleep(Duration::from_secs(steady_s)).await;
    let (cpu1, ev1, w1, el) = (
        proc_cpu_seconds(pid),
        metric(&scrape(&addr), "wasmscaler_evaluations_total"),
        api_writes(&apiserver_metrics()),
        t0.elapsed().as_secs_f64(),
    );
    let mut writes: Vec<(String, f64)> = w1
        .iter()
        .map(|(k, v)| (k.clone(), (v - w0.get(k).copied().unwrap_or(0.0)) / el * 60.0))
        .filter(|(_, per_min)| *per_min > 0.0)
        .collect();
    writes.sort_by(|a, b| a.0.cmp(&b.0));
    println!("steady: API writes per minute (all clients; the load driver makes none now):");
    for (k, per_min) in &writes {
        println!("  {k}: {per_min:.1}");
    }
    let rss = proc_rss_mib(pid);
    let evals = (ev1 - ev0) / el;
    let cpu = (cpu1 - cpu0) / el * 100.0;
    println!(
        "steady: {evals:.1} evaluations/s (expected {:.1} = N/15 s), CPU {cpu:.1} % of one core, RSS {rss:.0} MiB",
        n as f64 / 15.0
    );

    // Load changes: annotate `changes` Deployments (load 200 -> 700: 2 -> 7 replicas) and
    // measure until the watch sees the new replicas.
    let mut sent: Vec<(String, Instant)> = Vec::new();
    let step = (n / changes.max(1)).max(1);
    for i in (0..n).step_by(step).take(changes) {
        let name = format!("app-{i:04}");
        let patch = serde_json::json!({"metadata": {"annotations": {"example.com/load": "700"}}});
        let at = Instant::now();
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("patch");
        sent.push((name, at));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut lat: Vec<f64> = loop {
        let m = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let got: Vec<f64> = sent
            .iter()
            .filter_map(|(name, at)| {
                m.get(name)
                    .filter(|(r, when)| *r == 7 && when >= at)
                    .map(|(_, when)| (*when - *at).as_secs_f64() * 1000.0)
            })
            .collect();
        if got.len() == sent.len() || Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    lat.sort_by(|a, b| a.total_cmp(b));
    println!(
        "load change -> /scale write: n={} p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        lat.len(),
        percentile(&lat, 50.0),
        percentile(&lat, 99.0),
        lat.last().copied().unwrap_or(f64::NAN)
    );
    let text = scrape(&addr);
    println!(
        "evaluation latency: mean {:.2} ms; errors total {}",
        metric(&text, "wasmscaler_evaluation_duration_seconds_sum")
            / metric(&text, "wasmscaler_evaluation_duration_seconds_count").max(1.0)
            * 1000.0,
        metric(&text, "wasmscaler_errors_total") + 0.0
    );
    let _ = child.kill();
    let _ = child.wait();
    watch_task.abort();
    assert_eq!(lat.len(), sent.len(), "every load change was acted on");
}
