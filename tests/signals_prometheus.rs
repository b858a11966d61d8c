//! The Prometheus signal source against a real Prometheus (Debian's `prometheus`) that
//! scrapes an exporter whose values the test sets.

#[path = "servers/mod.rs"]
mod servers;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use servers::{Exporter, PrometheusServer};
use wasmscaler::core::adapter::{Gathered, SignalGatherer, TargetRef};
use wasmscaler::signals::{Prometheus, PrometheusGatherer};
use wasmscaler_sdk::SignalRequest;

fn target() -> TargetRef {
    TargetRef {
        namespace: "shop".into(),
        kind: "Deployment".into(),
        api_version: "apps/v1".into(),
        name: "web".into(),
        uid: None,
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
        pod_selector: Some("app=web".into()),
        replicas: 2,
        ready_replicas: 2,
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

async fn gather(g: &PrometheusGatherer, items: &[(SignalRequest, Value)]) -> Gathered {
    let plan: Vec<(SignalRequest, Option<&Value>)> =
        items.iter().map(|(r, v)| (r.clone(), Some(v))).collect();
    g.gather(&target(), &plan, now_ms()).await
}

fn value(g: &Gathered, name: &str) -> Option<f64> {
    g.signals
        .iter()
        .find(|s| s.name == name)
        .and_then(|s| s.samples.last())
        .map(|s| s.value)
}

fn error<'a>(g: &'a Gathered, name: &str) -> &'a str {
    g.errors
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, e)| e.as_str())
        .unwrap_or_else(|| panic!("no error for '{name}': {:?} / {:?}", g.errors, g.signals))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instant_range_history_and_errors_against_a_real_prometheus() {
    let exporter = Exporter::start();
    exporter.set("shop_requests_per_second", 250.0);
    exporter.set("shop_queue{queue=\"a\"}", 3.0);
    exporter.set("shop_queue{queue=\"b\"}", 4.0);
    let prom = PrometheusServer::start(&[exporter.addr]);
    prom.wait_for("shop_requests_per_second", 250.0);
    prom.wait_for("sum(shop_queue)", 7.0);

    // The server comes from the controller's default; a signal may name another.
    let g = PrometheusGatherer::new(Prometheus::new(Some(prom.url.clone())).expect("client"));

    // Instant queries for latest-only signals; one series per query.
    let got = gather(
        &g,
        &[
            (
                SignalRequest::latest("load", ""),
                json!({"prometheus": "sum(shop_requests_per_second)"}),
            ),
            (
                SignalRequest::latest("queue-length", ""),
                json!({"prometheus": {"query": "sum(shop_queue)", "server": prom.url}}),
            ),
            (
                SignalRequest::latest("per-queue", ""),
                json!({"prometheus": "shop_queue"}),
            ),
            (
                SignalRequest::latest("typo", ""),
                json!({"prometheus": "sum(rate(shop_queue[1m]"}),
            ),
            (
                SignalRequest::latest("absent", ""),
                json!({"prometheus": "sum(no_such_metric)"}),
            ),
            (
                SignalRequest::latest("absent-strict", ""),
                json!({"prometheus": {"query": "sum(no_such_metric)", "ignoreNullValues": false}}),
            ),
        ],
    )
    .await;
    assert_eq!(value(&got, "load"), Some(250.0));
    assert_eq!(value(&got, "queue-length"), Some(7.0));
    let e = error(&got, "per-queue");
    assert!(
        e.contains("signal 'per-queue' (prometheus)") && e.contains("2 series"),
        "{e}"
    );
    let e = error(&got, "typo");
    assert!(e.contains("signal 'typo'") && e.contains("bad_data"), "{e}");
    // KEDA's ignoreNullValues: no series reads as 0 by default, or is an error.
    assert_eq!(value(&got, "absent"), Some(0.0));
    assert!(error(&got, "absent-strict").contains("no data"));
    assert!(got.history.is_none(), "no history asked for");

    // A windowed signal is a range query: one point per second over the window, oldest
    // first, ending now, seeing the value change.
    tokio::time::sleep(Duration::from_secs(3)).await;
    exporter.set("shop_requests_per_second", 400.0);
    prom.wait_for("shop_requests_per_second", 400.0);
    // The newest point is on the last whole second: let one pass after the new value.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let got = gather(
        &g,
        &[(
            SignalRequest::window("load", 20_000, ""),
            json!({"prometheus": "sum(shop_requests_per_second)"}),
        )],
    )
    .await;
    assert!(got.errors.is_empty(), "{:?}", got.errors);
    let s = &got.signals[0].samples;
    assert!(s.len() >= 5 && s.len() <= 21, "{} samples", s.len());
    assert!(
        s.windows(2).all(|w| w[1].at_ms - w[0].at_ms == 1000),
        "1 s steps: {s:?}"
    );
    // On the whole-second grid whenever the evaluation runs, so every evaluation reads
    // the same instants: a policy that records per-second values (knative) sees a second
    // revised only when a late scrape changes it, not whenever `now` moved by a few ms.
    assert!(
        s.iter().all(|x| x.at_ms % 1000 == 0),
        "points on whole seconds: {s:?}"
    );
    assert_eq!(s.last().map(|x| x.value), Some(400.0));
    assert!(
        s.iter().any(|x| x.value == 250.0),
        "the older value is in the window: {s:?}"
    );

    // history: a range prefetched before the call, answered without the network.
    let got = gather(
        &g,
        &[(
            SignalRequest::latest("load", ""),
            json!({"prometheus": {"query": "sum(shop_requests_per_second)", "history": {"window": "1m", "step": "2s"}}}),
        )],
    )
    .await;
    let h = got.history.expect("history prefetched");
    let series = h.history("load", 60_000, 2_000).expect("history of load");
    // The server has scraped for ~5 s: at least two points of the 2 s grid.
    assert!(series.len() >= 2, "{series:?}");
    assert!(series.windows(2).all(|w| w[1].at_ms - w[0].at_ms >= 2000));
    assert!(series.iter().all(|x| x.at_ms % 2000 == 0), "{series:?}");
    assert!(h.history("other", 60_000, 2_000).unwrap_err().contains("'other'"));

    // Network failures name the signal and the server; every call has a timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_url = format!("http://{}", silent.local_addr().expect("addr"));
    let closed_url = format!("http://127.0.0.1:{}", servers::free_port());
    let started = std::time::Instant::now();
    let got = gather(
        &g,
        &[
            (
                SignalRequest::latest("slow", ""),
                json!({"prometheus": {"query": "up", "server": silent_url, "timeout": "300ms"}}),
            ),
            (
                SignalRequest::latest("down", ""),
                json!({"prometheus": {"query": "up", "server": closed_url}}),
            ),
            (
                SignalRequest::latest("bad-spec", ""),
                json!({"prometheus": {"qeury": "up"}}),
            ),
        ],
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(
        error(&got, "slow").contains("no answer within 300 ms"),
        "{}",
        error(&got, "slow")
    );
    let e = error(&got, "down");
    assert!(
        e.contains("signal 'down' (prometheus)") && e.contains(&closed_url),
        "{e}"
    );
    assert!(error(&got, "bad-spec").contains("'prometheus.qeury'"));

    // No server anywhere: a clear error, not a panic.
    let none = PrometheusGatherer::new(Prometheus::new(None).expect("client"));
    let got = gather(
        &none,
        &[(SignalRequest::latest("load", ""), json!({"prometheus": "up"}))],
    )
    .await;
    assert!(error(&got, "load").contains("--prometheus-url"));
    drop(silent);
}
