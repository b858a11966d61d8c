//! knative-concurrency against Knative Serving's own autoscaler
//! (tools/conformance/knative): seeded random sequences, every tick compared.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};
use wasmscaler::runtime::{LoadedPolicy, PrefetchedHistory};
use wasmscaler_sdk::{Context, Sample, Signal, Workload};

use crate::reference::Reference;
use crate::rng::Rng;
use crate::{Mismatch, Tally};

/// The deliberate deviations: upstream behaviour the policy does not reproduce, switched
/// off in the reference (listed, with why, in policies/knative-concurrency/README.md).
pub const DEVIATIONS: &[(&str, &str)] = &[
    (
        "sks-proxy-fast-path",
        "Knative scales an inactive revision to zero early once its SKS has been in proxy \
         mode (activator in the path) for the grace period; a controller has no activator",
    ),
    (
        "activation-timeout",
        "Knative scales to zero a revision stuck activating past its progress deadline \
         (600 s + 30 s); the policy keeps asking for the pods",
    ),
];

const TICK_MS: i64 = 2_000;

/// One random configuration: every knob appears, each left at its default about half of
/// the time.
fn config(rng: &mut Rng) -> Value {
    let mut c = serde_json::Map::new();
    let mut put = |k: &str, v: Value| {
        c.insert(k.to_string(), v);
    };
    let rps = rng.chance(0.3);
    if rps {
        put("metric", json!("rps"));
    } else if rng.chance(0.2) {
        put("metric", json!("concurrency"));
    }
    if !rps && rng.chance(0.5) {
        put("containerConcurrency", json!(rng.range(1, 50)));
    }
    if rng.chance(0.6) {
        let t = match rng.range(0, 2) {
            0 => rng.decimal(0.5, 10.0, 1),
            1 => rng.decimal(1.0, 200.0, 0),
            _ => rng.decimal(0.1, 5.0, 2),
        };
        put("target", json!(t.max(0.01)));
    }
    if rng.chance(0.5) {
        put("targetUtilizationPercentage", {
            let d = rng.range(0, 1) as u32;
            json!(rng.decimal(10.0, 100.0, d))
        });
    }
    if rng.chance(0.6) {
        put(
            "stableWindow",
            json!(*rng.pick(&[6, 7, 10, 15, 20, 30, 45, 60, 90, 120])),
        );
    }
    if rng.chance(0.5) {
        put("panicWindowPercentage", {
            let d = rng.range(0, 1) as u32;
            json!(rng.decimal(1.0, 100.0, d))
        });
    }
    if rng.chance(0.4) {
        put("panicThresholdPercentage", json!(rng.decimal(110.0, 1000.0, 0)));
    }
    if rng.chance(0.4) {
        put("maxScaleUpRate", json!(rng.decimal(1.1, 20.0, 1)));
    }
    if rng.chance(0.4) {
        put("maxScaleDownRate", json!(rng.decimal(1.1, 10.0, 1)));
    }
    if rng.chance(0.5) {
        put("scaleToZeroGracePeriod", json!(rng.range(1, 60)));
    }
    if rng.chance(0.3) {
        put("scaleToZeroPodRetentionPeriod", json!(rng.range(0, 90)));
    }
    if rng.chance(0.3) {
        put("scaleDownDelay", json!(rng.range(0, 60)));
    }
    if rng.chance(0.4) {
        let i = rng.range(0, 5);
        if i == 0 {
            put("allowZeroInitialScale", json!(true));
        } else if rng.chance(0.3) {
            put("allowZeroInitialScale", json!(rng.chance(0.5)));
        }
        put("initialScale", json!(i));
    }
    if rng.chance(0.3) {
        put("activationScale", json!(rng.range(1, 5)));
    }
    let min = if rng.chance(0.3) { rng.range(0, 4) } else { 0 };
    if min > 0 || rng.chance(0.1) {
        put("minScale", json!(min));
    }
    if rng.chance(0.3) {
        put(
            "maxScale",
            json!(if rng.chance(0.2) {
                0
            } else {
                rng.range(min.max(1), min.max(1) + 20)
            }),
        );
    }
    if rng.chance(0.2) {
        put("enableScaleToZero", json!(rng.chance(0.5)));
    }
    if rng.chance(0.4) {
        put(
            "targetBurstCapacity",
            json!(*rng.pick(&[-1.0, 0.0, 10.0, 211.0, 500.0])),
        );
    }
    Value::Object(c)
}

/// The per-pod value the load is scaled around (what `target` resolves to, roughly).
fn per_pod(cfg: &Value) -> f64 {
    let t = cfg.get("target").and_then(Value::as_f64);
    let cc = cfg.get("containerConcurrency").and_then(Value::as_f64);
    let rps = cfg.get("metric").and_then(Value::as_str) == Some("rps");
    let total = match (t, cc) {
        (Some(t), Some(cc)) if !rps => t.min(cc),
        (Some(t), _) => t,
        (None, Some(cc)) if !rps => cc,
        _ if rps => 200.0,
        _ => 100.0,
    };
    let tu = cfg
        .get("targetUtilizationPercentage")
        .and_then(Value::as_f64)
        .unwrap_or(70.0);
    (total * tu / 100.0).max(0.01)
}

/// Per-second load: segments of silence (no sample), zero, steady, bursts and ramps, with
/// values on exact decimal multiples of the target now and then.
fn load(rng: &mut Rng, seconds: i64, unit: f64) -> Vec<Option<f64>> {
    let mut out = Vec::with_capacity(seconds as usize);
    while (out.len() as i64) < seconds {
        let len = rng.range(2, 70);
        let kind = rng.range(0, 5);
        let level = match rng.range(0, 3) {
            0 => rng.decimal(0.0, 3.0, 1) * unit,
            1 => (rng.range(1, 12) as f64 * unit * 10.0).round() / 10.0,
            2 => rng.range(0, 8) as f64 * unit,
            _ => rng.decimal(0.0, 40.0, 1) * unit,
        };
        let level = (level * 100.0).round() / 100.0;
        for i in 0..len {
            let v = match kind {
                0 => None,
                1 => Some(0.0),
                2 => Some(level),
                3 => Some(if i < 4 { level * 5.0 } else { level }),
                4 => Some(((level * i as f64 / len as f64) * 10.0).round() / 10.0),
                _ => Some(if rng.chance(0.5) { level } else { 0.0 }),
            };
            out.push(v);
        }
    }
    out.truncate(seconds as usize);
    out
}

/// The workload the decisions act on: pods become ready a start-up delay after they are
/// asked for; scale-down removes not-ready pods first, then the newest.
struct Pods {
    ready_at: Vec<i64>,
    delay_ms: i64,
}

impl Pods {
    fn ready(&self, now: i64) -> u32 {
        self.ready_at.iter().filter(|&&t| t <= now).count() as u32
    }
    fn scale(&mut self, now: i64, replicas: u32) {
        let n = replicas as usize;
        while self.ready_at.len() < n {
            self.ready_at.push(now + self.delay_ms);
        }
        if self.ready_at.len() > n {
            self.ready_at.sort_by_key(|&t| std::cmp::Reverse(t));
            self.ready_at.drain(..self.ready_at.len() - n);
        }
    }
}

struct Sequence {
    seed: u64,
    config: Value,
    signal: &'static str,
    /// Sample per second from the start (None: no sample that second).
    load: Vec<Option<f64>>,
    ticks: i64,
    pods: Pods,
    replicas: u32,
}

fn sequence(seed: u64) -> Sequence {
    let mut rng = Rng::new(seed);
    let config = config(&mut rng);
    let signal = if config.get("metric").and_then(Value::as_str) == Some("rps") {
        "rps"
    } else {
        "concurrency"
    };
    let ticks = rng.range(40, 160);
    let load = load(&mut rng, ticks * TICK_MS / 1000 + 2, per_pod(&config));
    let delay_ms = *rng.pick(&[0, 1_000, 2_000, 5_000, 10_000, 20_000, 45_000]);
    // A new revision (Knative creates it at initialScale, pods not yet ready) or an
    // existing workload the policy is attached to.
    let fresh = rng.chance(0.5);
    let initial = config.get("initialScale").and_then(Value::as_u64).unwrap_or(1) as u32;
    let (replicas, ready_at) = if fresh {
        (initial, vec![delay_ms; initial as usize])
    } else {
        let n = rng.range(0, 8) as u32;
        (n, vec![0; n as usize])
    };
    Sequence {
        seed,
        config,
        signal,
        load,
        ticks,
        pods: Pods { ready_at, delay_ms },
        replicas,
    }
}

fn samples_between(load: &[Option<f64>], base: i64, from_s: i64, to_s: i64) -> Vec<(i64, f64)> {
    (from_s.max(0)..=to_s)
        .filter_map(|s| {
            load.get(s as usize)
                .copied()
                .flatten()
                .map(|v| (base + s * 1000, v))
        })
        .collect()
}

fn to_samples(v: &[(i64, f64)]) -> Vec<Sample> {
    v.iter().map(|&(at_ms, value)| Sample { at_ms, value }).collect()
}

/// Runs one sequence; the first mismatching tick, if any.
fn run(
    seq: &mut Sequence,
    policy: &LoadedPolicy,
    reference: &mut Reference,
    tally: &mut Tally,
) -> Option<Mismatch> {
    let deviations = crate::active_deviations(DEVIATIONS);
    reference.ask(&json!({"start": seq.config, "deviations": deviations}));
    let config = seq.config.to_string();
    let mut state: Option<Vec<u8>> = None;
    let mut sent_through_s = -1;
    for k in 0..seq.ticks {
        let offset = k * TICK_MS;
        let now_s = offset / 1000;
        let ready = seq.pods.ready(offset);
        let fresh = samples_between(&seq.load, 0, sent_through_s + 1, now_s);
        sent_through_s = now_s;
        let theirs = reference.ask(&json!({"tick": {
            "atMs": offset,
            "samples": fresh,
            "ready": ready,
            "replicas": seq.replicas,
        }}));
        let base = theirs["baseMs"].as_i64().expect("baseMs");
        let their_replicas = theirs["replicas"].as_u64().expect("replicas") as u32;

        let now = base + offset;
        let window = samples_between(&seq.load, base, now_s - 119, now_s);
        let all = samples_between(&seq.load, base, 0, now_s);
        let ctx = Context {
            now_ms: now,
            workload: Workload {
                replicas: seq.replicas,
                ready_replicas: ready,
                min_replicas: 0,
                max_replicas: 100_000,
                ..Workload::default()
            },
            config: config.clone(),
            signals: vec![Signal {
                name: seq.signal.to_string(),
                samples: to_samples(&window),
            }],
            state: state.clone(),
        };
        let history = PrefetchedHistory {
            now_ms: now,
            series: [(seq.signal.to_string(), to_samples(&all))].into_iter().collect(),
        };
        tally.ticks += 1;
        let ours = match policy.evaluate(&ctx, Some(Arc::new(history))) {
            Ok(d) => d,
            Err(e) => {
                return Some(Mismatch {
                    seed: seq.seed,
                    config: seq.config.clone(),
                    tick: k,
                    inputs: inputs(seq, offset, ready, now_s),
                    upstream: theirs,
                    ours: json!({"error": e.to_string()}),
                });
            }
        };
        if ours.replicas != their_replicas {
            let shown_state = state
                .as_deref()
                .and_then(|s| serde_json::from_slice::<Value>(s).ok())
                .unwrap_or(Value::Null);
            return Some(Mismatch {
                seed: seq.seed,
                config: seq.config.clone(),
                tick: k,
                inputs: inputs(seq, offset, ready, now_s),
                upstream: theirs,
                ours: json!({"replicas": ours.replicas, "reason": ours.reason, "stateBefore": shown_state}),
            });
        }
        state = ours.state;
        seq.replicas = ours.replicas;
        seq.pods.scale(offset, ours.replicas);
    }
    None
}

fn inputs(seq: &Sequence, offset: i64, ready: u32, now_s: i64) -> Value {
    let recent: BTreeMap<i64, f64> = samples_between(&seq.load, 0, now_s - 20, now_s)
        .into_iter()
        .map(|(t, v)| (t / 1000, v))
        .collect();
    json!({
        "atMs": offset,
        "replicas": seq.replicas,
        "ready": ready,
        "podStartupDelayMs": seq.pods.delay_ms,
        "samplesLast20s(second->value)": recent,
    })
}

pub fn conformance(sequences: u64, seed: u64) -> (Tally, Vec<Mismatch>) {
    crate::drive(
        "knative-concurrency",
        "knative-reference",
        sequences,
        seed,
        sequence,
        run,
    )
}
