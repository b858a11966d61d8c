//! Differential conformance: each standard policy against the upstream Go code it
//! reproduces (tools/conformance/*, pinned module versions, built by
//! scripts/build-conformance.sh). Seeded random sequences go tick by tick through the
//! upstream code and through our component in the wasm sandbox with its state chained;
//! every tick must agree. Deliberate deviations are named switches (`DEVIATIONS` in each
//! module, listed in the policy's README).
//!
//! `WASMSCALER_CONFORMANCE_SEQUENCES` (default 1000 per policy) and
//! `WASMSCALER_CONFORMANCE_SEED` (default 1) choose the sequences;
//! `WASMSCALER_CONFORMANCE_UPSTREAM_ONLY=1` turns the deviation switches off, to see what
//! they cover. A mismatch prints a reproducer: seed, config, tick, inputs, both answers.

mod cron;
mod hpa;
mod knative;
mod queue_job;
mod reference;
mod rng;

use std::time::Instant;

use serde_json::Value;
use wasmscaler::runtime::{LoadedPolicy, builtins};

use crate::reference::Reference;

#[derive(Default, Debug)]
pub struct Tally {
    pub sequences: u64,
    pub ticks: u64,
}

/// The first tick of a sequence where the two disagree (later ticks of that sequence are
/// not compared: their inputs already differ).
pub struct Mismatch {
    pub seed: u64,
    pub config: Value,
    pub tick: i64,
    pub inputs: Value,
    pub upstream: Value,
    pub ours: Value,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "seed {} tick {}", self.seed, self.tick)?;
        writeln!(f, "  config   {}", self.config)?;
        writeln!(f, "  inputs   {}", self.inputs)?;
        writeln!(f, "  upstream {}", self.upstream)?;
        write!(f, "  ours     {}", self.ours)
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|e| panic!("{name}={v:?} is not a whole number: {e}")),
        Err(_) => default,
    }
}

/// The driver both policies share: load the built-in `policy`, start the Go program
/// `reference`, and run `sequences` seeded sequences (`sequence(seed)`) through both,
/// tick by tick (`run`), keeping the first mismatch of each.
pub fn drive<S>(
    policy: &str,
    reference: &str,
    sequences: u64,
    seed: u64,
    sequence: impl Fn(u64) -> S,
    run: impl Fn(&mut S, &LoadedPolicy, &mut Reference, &mut Tally) -> Option<Mismatch>,
) -> (Tally, Vec<Mismatch>) {
    let loaded = wasmscaler_tests::runtime()
        .load(
            policy,
            builtins::bytes(policy).unwrap_or_else(|| panic!("{policy} built-in")),
            builtins::default_limits(policy),
        )
        .unwrap_or_else(|e| panic!("{policy} loads: {e}"));
    let mut reference = Reference::start(reference);
    let mut tally = Tally::default();
    let mut mismatches = Vec::new();
    for i in 0..sequences {
        let mut seq = sequence(seed.wrapping_add(i));
        tally.sequences += 1;
        if let Some(m) = run(&mut seq, &loaded, &mut reference, &mut tally) {
            mismatches.push(m);
        }
    }
    (tally, mismatches)
}

pub fn deviations_enabled() -> bool {
    std::env::var("WASMSCALER_CONFORMANCE_UPSTREAM_ONLY").map_or(true, |v| v != "1")
}

/// The names of a harness's deviation switches that are on (all, unless upstream-only).
pub fn active_deviations(all: &[(&'static str, &str)]) -> Vec<&'static str> {
    if deviations_enabled() {
        all.iter().map(|(n, _)| *n).collect()
    } else {
        Vec::new()
    }
}

fn check(policy: &str, run: impl FnOnce(u64, u64) -> (Tally, Vec<Mismatch>)) {
    let sequences = env_u64("WASMSCALER_CONFORMANCE_SEQUENCES", 1000);
    let seed = env_u64("WASMSCALER_CONFORMANCE_SEED", 1);
    let started = Instant::now();
    let (tally, mismatches) = run(sequences, seed);
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "{policy}: {} sequences, {} ticks, {} mismatching sequences, {secs:.1} s{}",
        tally.sequences,
        tally.ticks,
        mismatches.len(),
        if deviations_enabled() {
            ""
        } else {
            " (deviation switches off)"
        }
    );
    for m in mismatches.iter().take(5) {
        eprintln!("{m}");
    }
    assert!(
        mismatches.is_empty(),
        "{policy}: {} of {} sequences disagree with upstream (first reproducers above)",
        mismatches.len(),
        tally.sequences
    );
}

#[test]
fn knative_concurrency_matches_knative_serving() {
    check("knative-concurrency", knative::conformance);
}

#[test]
fn queue_job_matches_keda_scaledjob() {
    check("queue-job", queue_job::conformance);
}

#[test]
fn cron_matches_cronhpa_go_cron() {
    check("cron", cron::conformance);
}

#[test]
fn hpa_matches_kubernetes_horizontal_pod_autoscaler() {
    check("hpa", hpa::conformance);
}
