//! The `hpa` built-in (examples/hpa-target) with the host's HPA behavior
//! (host/src/core/guardrails.rs, behavior.rs), through the same evaluation path the
//! controller takes (`core::evaluate` + `record_scale` after a scale), against the
//! Kubernetes HorizontalPodAutoscaler's own decision code (tools/conformance/hpa:
//! k8s.io/kubernetes pkg/controller/podautoscaler): seeded random sequences, every tick
//! compared, replicas chained (the workload ends each tick at the decided replicas).
//!
//! The HPA side is an HPA with one External metric per target (`AverageValue`: the
//! signal is the workload's total, the target a value per replica), `minReplicas`,
//! `maxReplicas` and `behavior` as the annotations say; the policy's `tolerance` is the
//! controller's `--horizontal-pod-autoscaler-tolerance`.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::{Value, json};
use wasmscaler::core::evaluate::{Action, Observation, Plan, evaluate};
use wasmscaler::core::spec::WorkloadSpec;
use wasmscaler::core::state::WorkloadState;
use wasmscaler::runtime::LoadedPolicy;
use wasmscaler::runtime::registry::Registry;
use wasmscaler_sdk::{Sample, Signal, Workload};

use crate::reference::Reference;
use crate::rng::Rng;
use crate::{Mismatch, Tally};

/// The deliberate deviations: upstream behaviour the host or the policy does not
/// reproduce, switched off in the reference (listed, with why, in
/// examples/hpa-target/README.md).
pub const DEVIATIONS: &[(&str, &str)] = &[];

const SIGNALS: &[&str] = &["load", "queue", "rps"];

/// Wall-clock milliseconds of the sequence start on our side (the reference has its own).
const BASE_MS: i64 = 1_800_000_000_000;

fn rules(rng: &mut Rng, up: bool) -> Value {
    let mut r = serde_json::Map::new();
    if rng.chance(0.6) {
        let w = if rng.chance(0.7) {
            *rng.pick(&[0, 15, 30, 45, 60, 120, 180, 300, 600])
        } else {
            rng.range(0, 3600)
        };
        r.insert("stabilizationWindowSeconds".into(), json!(w));
    }
    let disabled = rng.chance(0.08);
    if disabled {
        r.insert("selectPolicy".into(), json!("Disabled"));
    } else if rng.chance(0.5) {
        r.insert("selectPolicy".into(), json!(rng.pick(&["Max", "Min"])));
    }
    if rng.chance(0.6) {
        let n = if disabled && rng.chance(0.3) {
            0
        } else {
            rng.range(1, 3)
        };
        let policies: Vec<Value> = (0..n)
            .map(|_| {
                let pods = rng.chance(0.5);
                let value = if pods {
                    rng.range(1, 10)
                } else if up {
                    *rng.pick(&[10, 25, 50, 100, 150, 200, 900])
                } else {
                    *rng.pick(&[5, 10, 25, 50, 75, 100])
                };
                let period = if rng.chance(0.7) {
                    *rng.pick(&[15, 30, 60, 120, 300])
                } else {
                    rng.range(1, 1800)
                };
                json!({"type": if pods { "Pods" } else { "Percent" }, "value": value, "periodSeconds": period})
            })
            .collect();
        r.insert("policies".into(), Value::Array(policies));
    }
    Value::Object(r)
}

struct Config {
    /// The hpa policy's config (targets, tolerance).
    policy: Value,
    /// (signal, averageValue) per target.
    targets: Vec<(String, f64)>,
    tolerance: f64,
    behavior: Value,
    min: u32,
    max: u32,
}

fn config(rng: &mut Rng) -> Config {
    let n = if rng.chance(0.7) {
        1
    } else {
        rng.range(2, 3) as usize
    };
    let targets: Vec<(String, f64)> = (0..n)
        .map(|i| {
            let v = match rng.range(0, 3) {
                0 => rng.range(1, 500) as f64,
                1 => rng.decimal(0.5, 200.0, 1),
                2 => rng.decimal(0.01, 10.0, 2),
                _ => rng.decimal(0.001, 5.0, 3),
            };
            (SIGNALS[i].to_string(), v.max(0.001))
        })
        .collect();
    let tolerance = if rng.chance(0.5) {
        None
    } else {
        Some(*rng.pick(&[0.0, 0.01, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.5]))
    };
    let mut policy = serde_json::Map::new();
    if n > 1 || targets[0].0 != "load" || (targets[0].1 - 100.0).abs() > 1e-12 || rng.chance(0.5) {
        policy.insert(
            "targets".into(),
            Value::Array(
                targets
                    .iter()
                    .map(|(s, v)| json!({"signal": s, "averageValue": v}))
                    .collect(),
            ),
        );
    }
    if let Some(t) = tolerance {
        policy.insert("tolerance".into(), json!(t));
    }
    // The signals the policy does not declare reach it through the workload's mapping.
    let mapped: serde_json::Map<String, Value> = targets
        .iter()
        .filter(|(s, _)| s != "load")
        .map(|(s, _)| (s.clone(), json!({"prometheus": format!("sum({s})")})))
        .collect();
    if !mapped.is_empty() {
        policy.insert("signals".into(), Value::Object(mapped));
    }
    let mut behavior = serde_json::Map::new();
    if rng.chance(0.8) {
        if rng.chance(0.7) {
            behavior.insert("scaleUp".into(), rules(rng, true));
        }
        if rng.chance(0.7) {
            behavior.insert("scaleDown".into(), rules(rng, false));
        }
    }
    let min = rng.range(1, 5) as u32;
    let max = if rng.chance(0.2) {
        min
    } else {
        min + rng.range(1, 40) as u32
    };
    Config {
        policy: Value::Object(policy),
        targets,
        tolerance: tolerance.unwrap_or(0.1),
        behavior: Value::Object(behavior),
        min,
        max,
    }
}

struct Sequence {
    seed: u64,
    rng: Rng,
    cfg: Config,
    ticks: i64,
    replicas: u32,
    /// Per signal: the current load level and the kind of segment.
    levels: Vec<(f64, i64, i64)>,
}

fn sequence(seed: u64) -> Sequence {
    let mut rng = Rng::new(seed);
    let cfg = config(&mut rng);
    let ticks = rng.range(20, 120);
    let replicas = if rng.chance(0.1) {
        // Out of bounds when attached: the HPA moves it into them at once.
        if rng.chance(0.5) && cfg.min > 1 {
            rng.range(1, cfg.min as i64 - 1) as u32
        } else {
            cfg.max + rng.range(1, 10) as u32
        }
    } else {
        rng.range(cfg.min as i64, cfg.max as i64) as u32
    };
    let levels = cfg.targets.iter().map(|_| (0.0, 0, 0)).collect();
    Sequence {
        seed,
        rng,
        cfg,
        ticks,
        replicas,
        levels,
    }
}

/// Milli-units, as the API's quantities carry them.
fn milli(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

impl Sequence {
    /// This tick's total for target `i` (None: the metric is missing).
    fn load(&mut self, i: usize) -> Option<f64> {
        let per = self.cfg.targets[i].1;
        let tol = self.cfg.tolerance;
        let rng = &mut self.rng;
        let (level, kind, left) = &mut self.levels[i];
        if *left <= 0 {
            *left = rng.range(1, 12);
            *kind = rng.range(0, 5);
            *level = match rng.range(0, 2) {
                0 => rng.range(0, 60) as f64 * per,
                1 => rng.decimal(0.0, 40.0, 2) * per,
                _ => rng.range(0, 3) as f64 * per * 10.0,
            };
        }
        *left -= 1;
        if rng.chance(0.04) {
            return None;
        }
        let n = f64::from(self.replicas.max(1));
        let v = match *kind {
            // Steady.
            0 => *level,
            // Noise around the level.
            1 => *level * (1.0 + rng.decimal(-0.3, 0.3, 2)),
            // On (or just off) the tolerance band of the current replicas.
            2 => {
                let edge = *rng.pick(&[1.0 + tol, 1.0 - tol, 1.0, 1.0 + tol + 0.001, 1.0 - tol - 0.001]);
                n * per * edge
            }
            // Exact multiples of the target.
            3 => rng.range(0, 80) as f64 * per,
            // Zero.
            4 => 0.0,
            _ => *level * rng.range(1, 5) as f64,
        };
        Some(milli(v.max(0.0)))
    }
}

fn annotations(cfg: &Config) -> BTreeMap<String, String> {
    [
        ("wasmscaler.io/policy", "hpa".to_string()),
        ("wasmscaler.io/config", cfg.policy.to_string()),
        ("wasmscaler.io/min-replicas", cfg.min.to_string()),
        ("wasmscaler.io/max-replicas", cfg.max.to_string()),
        ("wasmscaler.io/behavior", cfg.behavior.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn shown(cfg: &Config) -> Value {
    json!({"config": cfg.policy, "behavior": cfg.behavior, "min": cfg.min, "max": cfg.max})
}

fn run(
    seq: &mut Sequence,
    _: &LoadedPolicy,
    reference: &mut Reference,
    tally: &mut Tally,
) -> Option<Mismatch> {
    let deviations = crate::active_deviations(DEVIATIONS);
    reference.ask(&json!({
        "start": {
            "targets": seq.cfg.targets.iter().map(|(s, v)| json!({"signal": s, "averageValue": v})).collect::<Vec<_>>(),
            "tolerance": seq.cfg.tolerance,
            "behavior": seq.cfg.behavior,
            "minReplicas": seq.cfg.min,
            "maxReplicas": seq.cfg.max,
        },
        "deviations": deviations,
    }));
    let spec = WorkloadSpec::from_annotations(&annotations(&seq.cfg), 10_000)
        .unwrap_or_else(|e| panic!("seed {}: a valid spec: {e} ({})", seq.seed, shown(&seq.cfg)));
    // One registry for all sequences: the built-in is compiled once.
    static REGISTRY: OnceLock<std::sync::Arc<Registry>> = OnceLock::new();
    let registry = REGISTRY.get_or_init(|| Registry::new(wasmscaler_tests::runtime(), None));
    let plan = Plan::resolve(registry, &spec).expect("the hpa built-in resolves");
    let mut state = WorkloadState::default();
    let mut at_ms = 0i64;
    for k in 0..seq.ticks {
        if k > 0 {
            at_ms += match seq.rng.range(0, 9) {
                0 => seq.rng.range(1, 60) * 1000,
                1 => 15_000 * seq.rng.range(2, 4),
                _ => 15_000,
            };
        }
        let values: Vec<(String, Option<f64>)> = (0..seq.cfg.targets.len())
            .map(|i| (seq.cfg.targets[i].0.clone(), seq.load(i)))
            .collect();
        let metrics: serde_json::Map<String, Value> = values
            .iter()
            .map(|(s, v)| (s.clone(), v.map_or(Value::Null, |v| json!(v))))
            .collect();
        let theirs = reference.ask(&json!({"tick": {
            "atMs": at_ms,
            "replicas": seq.replicas,
            "metrics": metrics,
        }}));
        let their_replicas = theirs["replicas"].as_u64().expect("replicas") as u32;

        let now = BASE_MS + at_ms;
        let obs = Observation {
            now_ms: now,
            workload: Workload {
                replicas: seq.replicas,
                ready_replicas: seq.replicas,
                ..Workload::default()
            },
            signals: values
                .iter()
                .filter_map(|(s, v)| {
                    v.map(|value| Signal {
                        name: s.clone(),
                        samples: vec![Sample { at_ms: now, value }],
                    })
                })
                .collect(),
            signal_errors: values
                .iter()
                .filter(|(_, v)| v.is_none())
                .map(|(s, _)| (s.clone(), "no value this tick".to_string()))
                .collect(),
            history: None,
            record_history: false,
        };
        let guard_before = serde_json::to_value(&state.guard).unwrap_or(Value::Null);
        let out = evaluate(&plan, &spec, obs, &mut state);
        tally.ticks += 1;
        if let Action::Scale { from, to } = out.action {
            spec.guardrails.record_scale(&mut state.guard, now, from, to);
        }
        if out.desired != their_replicas {
            return Some(Mismatch {
                seed: seq.seed,
                config: shown(&seq.cfg),
                tick: k,
                inputs: json!({"atMs": at_ms, "replicas": seq.replicas, "metrics": metrics}),
                upstream: theirs,
                ours: json!({"replicas": out.desired, "proposal": out.proposal, "reason": out.reason, "guardStateBefore": guard_before}),
            });
        }
        seq.replicas = out.desired;
    }
    None
}

pub fn conformance(sequences: u64, seed: u64) -> (Tally, Vec<Mismatch>) {
    crate::drive("hpa", "hpa-reference", sequences, seed, sequence, run)
}
