//! Signals the policies ask for, derived from the trace and the simulated cluster.
//!
//! | signal | value |
//! |---|---|
//! | `load`, `rps` | the trace's rate at the instant (piecewise-linear between row centres) |
//! | `concurrency` | load × `requestDuration` (Little's law) |
//! | `queue-length` | items not yet done: waiting + in a running Job (in-flight messages stay counted until acknowledged, as KEDA's `default` strategy assumes) |
//! | `queue-waiting` | items waiting only (map it as `queue-length` for `accurate`: `signals: {queue-length: {sim: queue-waiting}}`) |
//! | `running-jobs` / `pending-jobs` | Jobs running / not yet started |
//! | `ready-pods` / `pending-pods` | Ready pods / pods not Ready yet |
//! | `spot-pending-pods` / `spot-pending-seconds` | spot pods waiting for capacity / age of the oldest (s) |
//! | `spot-interruptions` | one sample per interruption event in the window, value = pods |
//! | `replication-lag` | 0 (the simulator does not model replication) |
//!
//! A window asked for on a trace signal gets one sample per second (coarser for windows
//! over 10 minutes: at most 601 samples), newest at now. Cluster signals carry only the
//! latest sample whatever the window (the simulator keeps no history of them), except
//! `spot-interruptions`, which lists the events. A signal mapped in the config's
//! `signals:` as `{sim: <one of the above>, scale: <factor>}` is derived from it.

use wasmscaler_sdk::{Sample, Signal, SignalRequest};

use super::cluster::{Cluster, JobQueue};
use super::trace::Trace;

/// What the simulator knows at one instant.
pub struct View<'a> {
    pub now_ms: i64,
    /// Milliseconds since the trace's first row.
    pub rel_ms: i64,
    pub trace: &'a Trace,
    pub request_s: f64,
    pub cluster: &'a Cluster,
    pub queue: Option<&'a JobQueue>,
}

pub const KNOWN: &[&str] = &[
    "load",
    "rps",
    "concurrency",
    "queue-length",
    "queue-waiting",
    "running-jobs",
    "pending-jobs",
    "ready-pods",
    "pending-pods",
    "spot-pending-pods",
    "spot-pending-seconds",
    "spot-interruptions",
    "replication-lag",
];

/// Gather what `plan` lists. Returns the signals and those that could not be gathered.
pub fn gather(
    plan: &[(SignalRequest, Option<&serde_json::Value>)],
    v: &View<'_>,
) -> (Vec<Signal>, Vec<(String, String)>) {
    let mut signals = Vec::with_capacity(plan.len());
    let mut errors = Vec::new();
    for (req, source) in plan {
        let (base, scale) = match source.and_then(|s| s.get("sim")) {
            Some(serde_json::Value::String(s)) => (
                s.as_str(),
                source
                    .and_then(|s| s.get("scale"))
                    .and_then(serde_json::Value::as_f64)
                    .unwrap_or(1.0),
            ),
            _ => (req.name.as_str(), 1.0),
        };
        match one(base, req.window_ms, v) {
            Some(mut samples) => {
                if scale != 1.0 {
                    for s in &mut samples {
                        s.value *= scale;
                    }
                }
                signals.push(Signal {
                    name: req.name.clone(),
                    samples,
                });
            }
            None => errors.push((
                req.name.clone(),
                format!(
                    "the simulator has no source for '{base}' (known: {}; map others in the config's signals: as {{sim: <known>, scale: <factor>}})",
                    KNOWN.join(", ")
                ),
            )),
        }
    }
    (signals, errors)
}

fn one(name: &str, window_ms: u64, v: &View<'_>) -> Option<Vec<Sample>> {
    let now = v.now_ms;
    let latest = |x: f64| Some(vec![Sample::new(now, x)]);
    match name {
        "load" | "rps" => Some(series(window_ms, v, 1.0)),
        "concurrency" => Some(series(window_ms, v, v.request_s)),
        "queue-length" => latest(v.queue.map_or(0, |q| q.waiting.len() + q.running_jobs() as usize) as f64),
        "queue-waiting" => latest(v.queue.map_or(0, |q| q.waiting.len()) as f64),
        "running-jobs" => latest(f64::from(v.queue.map_or(0, JobQueue::running_jobs))),
        "pending-jobs" => latest(f64::from(v.queue.map_or(0, JobQueue::pending_jobs))),
        "ready-pods" => latest(f64::from(v.cluster.ready())),
        "pending-pods" => latest(f64::from(v.cluster.not_ready())),
        "spot-pending-pods" => latest(f64::from(v.cluster.spot_pending(now).0)),
        "spot-pending-seconds" => latest(v.cluster.spot_pending(now).1),
        "spot-interruptions" => {
            let from = now - i64::try_from(window_ms).unwrap_or(i64::MAX);
            Some(
                v.cluster
                    .interruptions
                    .iter()
                    .filter(|(at, _)| *at > from && *at <= now)
                    .map(|&(at, n)| Sample::new(at, f64::from(n)))
                    .collect(),
            )
        }
        "replication-lag" => latest(0.0),
        _ => None,
    }
}

/// Spacing of the samples of a trace signal over `window_ms`.
pub fn spacing_ms(window_ms: u64) -> i64 {
    let w = i64::try_from(window_ms).unwrap_or(i64::MAX / 2);
    super::ceil_div(w / 600, 1000).max(1) * 1000
}

fn series(window_ms: u64, v: &View<'_>, factor: f64) -> Vec<Sample> {
    if window_ms == 0 {
        return vec![Sample::new(v.now_ms, v.trace.rate_at(v.rel_ms) * factor)];
    }
    let step = spacing_ms(window_ms);
    let n = i64::try_from(window_ms).unwrap_or(i64::MAX / 2) / step;
    let mut cursor = 0;
    (0..=n)
        .rev()
        .map(|k| {
            let back = k * step;
            Sample::new(
                v.now_ms - back,
                v.trace.rate_at_ascending(v.rel_ms - back, &mut cursor) * factor,
            )
        })
        .collect()
}
