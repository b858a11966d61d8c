//! queue-job against KEDA's ScaledJob code (tools/conformance/keda): seeded random
//! sequences of polls, the Jobs to create compared at every poll.

use serde_json::{Value, json};
use wasmscaler::runtime::LoadedPolicy;
use wasmscaler_sdk::{Context, Sample, Signal, Workload};

use crate::reference::Reference;
use crate::rng::Rng;
use crate::{Mismatch, Tally};

/// KEDA's default pollingInterval: one decision per poll.
const POLL_MS: i64 = 30_000;

/// One random configuration: every knob, each left at its default about half of the time.
fn config(rng: &mut Rng) -> Value {
    let mut c = serde_json::Map::new();
    let target = |rng: &mut Rng| match rng.range(0, 3) {
        0 => *rng.pick(&[0.7, 0.3, 0.1, 1.5, 2.5, 3.3]),
        1 => rng.range(1, 20) as f64,
        2 => rng.decimal(0.1, 10.0, 1),
        _ => rng.decimal(0.01, 5.0, 2),
    };
    if rng.chance(0.4) {
        let n = rng.range(1, 3);
        let queues: Vec<Value> = (0..n)
            .map(|i| {
                let mut q = serde_json::Map::new();
                q.insert("signal".into(), json!(format!("q{i}")));
                if rng.chance(0.6) {
                    q.insert("targetQueueLengthPerJob".into(), json!(target(rng)));
                }
                if rng.chance(0.3) {
                    q.insert("activationThreshold".into(), json!(rng.decimal(0.0, 5.0, 1)));
                }
                Value::Object(q)
            })
            .collect();
        c.insert("queues".into(), Value::Array(queues));
    }
    if rng.chance(0.6) {
        c.insert("targetQueueLengthPerJob".into(), json!(target(rng)));
    }
    let min = if rng.chance(0.4) { rng.range(0, 6) } else { 0 };
    if min > 0 || rng.chance(0.1) {
        c.insert("minReplicaCount".into(), json!(min));
    }
    if rng.chance(0.6) {
        c.insert(
            "maxReplicaCount".into(),
            json!(rng.range(min.max(1), min.max(1) + 30)),
        );
    }
    let mut s = serde_json::Map::new();
    if rng.chance(0.8) {
        s.insert(
            "strategy".into(),
            json!(*rng.pick(&["default", "custom", "custom", "accurate", "eager"])),
        );
    }
    if rng.chance(0.5) {
        s.insert("customScalingQueueLengthDeduction".into(), json!(rng.range(0, 5)));
    }
    if rng.chance(0.6) {
        let p = match rng.range(0, 2) {
            0 => json!(rng.decimal(0.0, 1.5, 2)),
            1 => json!(format!("{}", rng.decimal(0.0, 1.5, 2))),
            _ => json!(*rng.pick(&["0.5", " 0.5", "0.5 ", "abc", "", "1e-1", "+.5", "1.", "50%"])),
        };
        s.insert("customScalingRunningJobPercentage".into(), p);
    }
    if rng.chance(0.5) {
        s.insert(
            "multipleScalersCalculation".into(),
            json!(*rng.pick(&["max", "min", "avg", "sum"])),
        );
    }
    if !s.is_empty() {
        c.insert("scalingStrategy".into(), Value::Object(s));
    }
    if rng.chance(0.2) {
        c.insert("runningJobsIncludePending".into(), json!(rng.chance(0.5)));
    }
    Value::Object(c)
}

fn queue_signals(cfg: &Value) -> Vec<String> {
    match cfg.get("queues").and_then(Value::as_array) {
        Some(qs) => qs
            .iter()
            .map(|q| q["signal"].as_str().expect("signal").to_string())
            .collect(),
        None => vec!["queue-length".to_string()],
    }
}

/// A queue's next length: bursts, drains, zeros, fractions and exact multiples of a target.
fn next_length(rng: &mut Rng, len: f64) -> f64 {
    let v = match rng.range(0, 6) {
        0 => len,
        1 => len + rng.range(1, 60) as f64,
        2 => (len - rng.range(0, 20) as f64).max(0.0),
        3 => 0.0,
        4 => rng.decimal(0.0, 30.0, 1),
        5 => rng.range(0, 12) as f64 * *rng.pick(&[0.7, 0.3, 1.5, 2.5, 3.3, 7.0]),
        _ => rng.decimal(0.0, 3.0, 3),
    };
    (v * 1000.0).round() / 1000.0
}

/// A Job: pending until `starts`, running until `ends`.
struct Job {
    starts: i64,
    ends: i64,
}

struct Sequence {
    seed: u64,
    config: Value,
    signals: Vec<String>,
    polls: i64,
    rng: Rng,
}

fn sequence(seed: u64) -> Sequence {
    let mut rng = Rng::new(seed);
    let config = config(&mut rng);
    let signals = queue_signals(&config);
    let polls = rng.range(10, 60);
    Sequence {
        seed,
        config,
        signals,
        polls,
        rng,
    }
}

fn run(
    seq: &mut Sequence,
    policy: &LoadedPolicy,
    reference: &mut Reference,
    tally: &mut Tally,
) -> Option<Mismatch> {
    let config = seq.config.to_string();
    let mut lengths: Vec<f64> = seq.signals.iter().map(|_| 0.0).collect();
    let mut jobs: Vec<Job> = Vec::new();
    let start_delay = *seq.rng.pick(&[0, 10_000, 45_000, 120_000]);
    for k in 0..seq.polls {
        let now = wasmscaler_sdk::testing::DEFAULT_NOW_MS + k * POLL_MS;
        for l in lengths.iter_mut() {
            *l = next_length(&mut seq.rng, *l);
        }
        jobs.retain(|j| j.ends > now);
        let pending = jobs.iter().filter(|j| j.starts > now).count() as i64;
        let running = jobs.len() as i64 - pending;

        let theirs = reference.ask(&json!({
            "config": seq.config,
            "queues": lengths,
            "running": running,
            "pending": pending,
        }));
        let their_jobs = theirs["jobs"].as_i64().expect("jobs");

        let mut signals: Vec<Signal> = seq
            .signals
            .iter()
            .zip(&lengths)
            .map(|(name, &v)| Signal {
                name: name.clone(),
                samples: vec![Sample { at_ms: now, value: v }],
            })
            .collect();
        for (name, v) in [("running-jobs", running), ("pending-jobs", pending)] {
            signals.push(Signal {
                name: name.to_string(),
                samples: vec![Sample {
                    at_ms: now,
                    value: v as f64,
                }],
            });
        }
        let ctx = Context {
            now_ms: now,
            workload: Workload {
                kind: "Job".into(),
                replicas: (running + pending) as u32,
                ready_replicas: running as u32,
                min_replicas: 0,
                max_replicas: 100_000,
                ..Workload::default()
            },
            config: config.clone(),
            signals,
            state: None,
        };
        tally.ticks += 1;
        let inputs = json!({"poll": k, "queues": lengths, "running": running, "pending": pending});
        let ours = match policy.evaluate(&ctx, None) {
            Ok(d) => d,
            Err(e) => {
                return Some(Mismatch {
                    seed: seq.seed,
                    config: seq.config.clone(),
                    tick: k,
                    inputs,
                    upstream: theirs,
                    ours: json!({"error": e.to_string()}),
                });
            }
        };
        let our_jobs = i64::from(ours.jobs.unwrap_or(0));
        if our_jobs != their_jobs {
            return Some(Mismatch {
                seed: seq.seed,
                config: seq.config.clone(),
                tick: k,
                inputs,
                upstream: theirs,
                ours: json!({"jobs": our_jobs, "reason": ours.reason}),
            });
        }
        for _ in 0..our_jobs {
            let starts = now + start_delay * seq.rng.range(0, 1);
            let ends = starts + seq.rng.range(1, 20) * POLL_MS / 2;
            jobs.push(Job { starts, ends });
        }
    }
    None
}

pub fn conformance(sequences: u64, seed: u64) -> (Tally, Vec<Mismatch>) {
    crate::drive("queue-job", "keda-reference", sequences, seed, sequence, run)
}
