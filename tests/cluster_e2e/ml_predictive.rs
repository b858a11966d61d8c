//! ml-predictive (seed Pattern 5A): a Deployment whose load history lives in a real
//! Prometheus scales ahead of a recorded daily ramp. Three days of the NASA-HTTP July 1995
//! trace (examples/traces/, attribution in its README) are backfilled into Prometheus
//! ending one minute before the test starts, so "now" is 07:00 on the trace's day 6: the
//! quiet hour before the morning ramp. The exporter keeps serving the 07:00 load; the
//! policy fits the history, forecasts the ramp over its 1 h horizon, and the Deployment's
//! pods are Ready before any of that load has arrived. The assertions are against the
//! trace's own next hour (held out of the history), not against numbers read off a run.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::cluster::{Cluster, GENERAL_POOL};
use crate::controlplane::eventually_within;
use crate::servers::{Backfill, Exporter, PrometheusServer};
use crate::start_controller;

const TRACE: &str = include_str!("../../examples/traces/nasa_http_jul95_per_min.csv");
/// Trace seconds of "now": day 6, 07:00 (days counted from 0).
const NOW_S: i64 = 6 * 86_400 + 7 * 3_600;
const HISTORY_S: i64 = 3 * 86_400;
const HORIZON_S: i64 = 3_600;
/// Trace rps x SCALE = the service's rps (the trace is one site's ~1 rps).
const SCALE: f64 = 100.0;
const PER_REPLICA: f64 = 25.0;
const MARGIN: f64 = 0.1;

/// (trace seconds, rps) rows of the trace.
fn trace() -> Vec<(i64, f64)> {
    TRACE
        .lines()
        .skip(1)
        .filter_map(|l| {
            let (t, v) = l.split_once(',')?;
            Some((t.parse().ok()?, v.parse::<f64>().ok()? * SCALE))
        })
        .collect()
}

/// The largest 5-minute mean of the trace in `[from, to)`: the load the policy's 5-minute
/// history points stand for.
fn peak_5m_mean(rows: &[(i64, f64)], from: i64, to: i64) -> f64 {
    let window: Vec<f64> = rows
        .iter()
        .filter(|(t, _)| (from..to).contains(t))
        .map(|(_, v)| *v)
        .collect();
    window
        .windows(5)
        .map(|w| w.iter().sum::<f64>() / 5.0)
        .fold(0.0, f64::max)
}

fn web(ns: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {ns}
  annotations:
    wasmscaler.io/policy: ml-predictive
    wasmscaler.io/interval: 2s
    wasmscaler.io/max-replicas: "20"
    wasmscaler.io/config: |
      targetPerReplica: {PER_REPLICA}
      margin: {MARGIN}
      horizon: 1h
      podStartup: 30s
      historyWindow: 3d
      historyStep: 5m
      signals:
        load: {{prometheus: {{query: 'sum(web_rps)', history: {{window: 3d, step: 5m}}}}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata:
      labels: {{app: web}}
      annotations: {{pod-ready.stage.kwok.x-k8s.io/delay: 3s}}
    spec:
      nodeSelector: {{wasmscaler.test/pool: {GENERAL_POOL}}}
      containers:
      - name: web
        image: registry.invalid/web:1
        resources: {{requests: {{cpu: 100m}}}}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_scales_ahead_of_a_recorded_daily_ramp_from_prometheus_history() {
    let c = Cluster::shared();
    let rows = trace();
    let at = |t: i64| {
        rows.iter()
            .find(|(s, _)| *s == t)
            .map(|(_, v)| *v)
            .expect("the trace has that minute")
    };
    // The load now: the trace's minute before 07:00, served by the exporter from here on.
    let load_now = at(NOW_S - 60);
    let exporter = Exporter::start();
    exporter.set("web_rps", load_now);
    // The recorded past as the very series the scrape continues (same labels), mapped so
    // the trace's NOW_S - 60 lands one minute before the wall clock now.
    let wall_now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .expect("clock after 1970");
    let past: Vec<(i64, f64)> = rows
        .iter()
        .filter(|(t, _)| (NOW_S - HISTORY_S..NOW_S).contains(t))
        .map(|(t, v)| (wall_now - (NOW_S - t), *v))
        .collect();
    let series = format!("web_rps{{instance=\"{}\",job=\"test\"}}", exporter.addr);
    let prom = PrometheusServer::start_with_history(
        &[exporter.addr],
        Some(Backfill {
            series: &series,
            points: &past,
        }),
    );
    prom.wait_for("sum(web_rps)", load_now);

    // What a reactive autoscaler would run: the load of the last 5 minutes, per replica.
    let recent_peak = peak_5m_mean(&rows, NOW_S - 300, NOW_S).max(
        rows.iter()
            .filter(|(t, _)| (NOW_S - 300..NOW_S).contains(t))
            .map(|(_, v)| *v)
            .fold(load_now, f64::max),
    );
    let reactive = (recent_peak / PER_REPLICA).ceil() as u32;
    // What the next hour of the recorded day needed (not in the history).
    let ramp_peak = peak_5m_mean(&rows, NOW_S, NOW_S + HORIZON_S);
    let needed = (ramp_peak / PER_REPLICA).ceil() as u32;
    assert!(
        needed >= reactive + 2,
        "the scenario is a ramp: {needed} replicas needed within the hour vs {reactive} now"
    );

    let ns = c.namespace("mlpred").await;
    c.apply(&web(&ns));
    let ctl = start_controller(c, &ns, Some(prom.url.clone()), &[]).await;
    let status = eventually_within("a forecast-driven decision", Duration::from_secs(60), || async {
        let s = c.decision(&ns, "deployment", "web");
        s["reason"]
            .as_str()
            .is_some_and(|r| r.contains("forecast:"))
            .then_some(s)
    })
    .await;
    let reason = status["reason"].as_str().unwrap_or_default().to_string();
    let desired = status["desired"].as_u64().unwrap_or(0) as u32;
    // Fitted on the 3-day history the host fetched (288 five-minute points a day).
    assert!(reason.contains("MSTL[288]"), "{reason}");
    assert!(
        desired > reactive,
        "scaled above the reactive answer ({reactive}) on the forecast: {status}"
    );
    // The forecast peak is the recorded ramp's, within a forecaster's error.
    let forecast_peak: f64 = reason
        .split("forecast peak ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no forecast peak in the reason: {reason}"));
    assert!(
        (0.6 * ramp_peak..=1.6 * ramp_peak).contains(&forecast_peak),
        "forecast peak {forecast_peak:.1} vs the recorded next hour's {ramp_peak:.1}: {reason}"
    );

    // The pods are up while the load is still the quiet hour's: capacity ahead of the ramp.
    eventually_within("the forecast's pods Ready", Duration::from_secs(40), || async {
        let ready = c.status_count(&ns, "deployment", "web", "readyReplicas");
        (ready == desired).then_some(())
    })
    .await;
    prom.wait_for("sum(web_rps)", load_now);
    assert_eq!(c.replicas(&ns, "deployment", "web"), Some(desired));
    // Within the same forecaster's error as above: the 5-minute history grid samples the
    // per-minute trace at a phase that depends on the wall clock (runs have forecast a peak
    // of 103 rps and one of at most 100), so 4 or 5 replicas; the reactive answer: 33 %.
    assert!(
        f64::from(desired) * PER_REPLICA >= 0.6 * ramp_peak,
        "{desired} replicas carry {} rps of the ramp's {ramp_peak:.0} before it starts",
        f64::from(desired) * PER_REPLICA
    );

    // The ramp arrives: the live load reaches the recorded peak; the reactive floor takes
    // over where the forecast fell short, and the Deployment never shrinks on the way.
    exporter.set("web_rps", ramp_peak);
    prom.wait_for("sum(web_rps)", ramp_peak);
    let at_peak = eventually_within(
        "the Deployment carrying the ramp's peak",
        Duration::from_secs(30),
        || async {
            c.replicas(&ns, "deployment", "web")
                .filter(|r| f64::from(*r) * PER_REPLICA >= ramp_peak)
        },
    )
    .await;
    assert!(at_peak >= desired, "{at_peak} < {desired}");
    ctl.shutdown().await;
}
