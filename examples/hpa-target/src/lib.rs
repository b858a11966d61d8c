//! An HPA-style target-value policy, written only against `wasmscaler-sdk`.
//!
//! desired = ceil(replicas × metric / target), unchanged while |metric/target − 1| ≤
//! tolerance — the rule of the Kubernetes HPA (`replica_calculator.go`). With several
//! metrics, the largest proposal wins, as the HPA does.

use serde::Deserialize;
use wasmscaler_sdk::prelude::*;

/// One metric: the signal to read and the value per replica to hold it at.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Target {
    /// Signal name; the host maps it to a source.
    pub signal: String,
    /// Desired value per replica (HPA `AverageValue`).
    pub average_value: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    /// Defaults to one target `{signal: load, averageValue: 100}`.
    #[serde(default = "default_targets")]
    pub targets: Vec<Target>,
    /// HPA tolerance: no change while within this fraction of the target (default 0.1).
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
}

fn default_targets() -> Vec<Target> {
    vec![Target {
        signal: "load".into(),
        average_value: 100.0,
    }]
}
fn default_tolerance() -> f64 {
    0.1
}

pub struct HpaTarget;

impl Policy for HpaTarget {
    type Config = Config;
    type State = ();

    fn info() -> PolicyInfo {
        PolicyInfo::new(
            "hpa-target",
            env!("CARGO_PKG_VERSION"),
            "HPA target-value rule: ceil(replicas x metric / target)",
        )
        .signal(SignalRequest::latest(
            "load",
            "the workload's total load (sum across pods), e.g. requests per second",
        ))
    }

    fn validate(cfg: &Config) -> Result<(), PolicyError> {
        if cfg.targets.is_empty() {
            return Err(PolicyError::config("'targets' must name at least one signal"));
        }
        for (i, t) in cfg.targets.iter().enumerate() {
            if !(t.average_value.is_finite() && t.average_value > 0.0) {
                return Err(PolicyError::config(format!(
                    "'targets[{i}].averageValue' must be a number > 0, got {}",
                    t.average_value
                )));
            }
        }
        if !(0.0..1.0).contains(&cfg.tolerance) {
            return Err(PolicyError::config(format!(
                "'tolerance' must be in [0, 1), got {}",
                cfg.tolerance
            )));
        }
        Ok(())
    }

    fn evaluate(ctx: &Context, cfg: &Config, _: &mut ()) -> Result<Decision, PolicyError> {
        let current = ctx.workload.replicas;
        let mut best: Option<(u32, String)> = None;
        for t in &cfg.targets {
            let total = ctx.signal(&t.signal)?.latest()?;
            // The HPA compares the per-pod average with the target.
            let per_pod = if current == 0 {
                total
            } else {
                total / f64::from(current)
            };
            let proposal = hpa_proportional(current, per_pod, t.average_value, cfg.tolerance)?;
            let why = format!(
                "{}: {total:.1} total, {per_pod:.1}/replica vs target {}",
                t.signal, t.average_value
            );
            if best.as_ref().is_none_or(|(b, _)| proposal > *b) {
                best = Some((proposal, why));
            }
        }
        let (wanted, why) = best.ok_or_else(|| PolicyError::config("no targets"))?;
        let replicas = ctx.clamp(wanted);
        Ok(Decision::new(replicas).reason(format!("{why} -> {wanted} replicas")))
    }
}

wasmscaler_sdk::export_policy!(HpaTarget);
