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
        .signal(
            SignalRequest::latest(
                "load",
                "the workload's total load (sum across pods), e.g. requests per second",
            )
            // Optional: with several targets, the others still answer without it.
            .optional(),
        )
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
        let mut failed: Option<PolicyError> = None;
        for t in &cfg.targets {
            let total = match ctx.signal(&t.signal).and_then(|s| s.latest()) {
                Ok(v) => v,
                Err(e) => {
                    failed.get_or_insert(e);
                    continue;
                }
            };
            // The HPA compares the per-pod average with the target.
            let per_pod = if current == 0 {
                total
            } else {
                total / f64::from(current)
            };
            let proposal = external_per_pod(current, total, t.average_value, cfg.tolerance)?;
            let why = format!(
                "{}: {total:.1} total, {per_pod:.1}/replica vs target {}",
                t.signal, t.average_value
            );
            if best.as_ref().is_none_or(|(b, _)| proposal > *b) {
                best = Some((proposal, why));
            }
        }
        let (wanted, why) = match (best, failed) {
            (Some(b), None) => b,
            // The HPA's rule for several metrics: when some fail, the others still scale
            // up (or hold), never down.
            (Some((wanted, why)), Some(_)) if wanted >= current => (wanted, why),
            (_, Some(e)) => return Err(e),
            (None, None) => return Err(PolicyError::config("no targets")),
        };
        let replicas = ctx.clamp(wanted);
        Ok(Decision::new(replicas).reason(format!("{why} -> {wanted} replicas")))
    }
}

/// The HPA's rule for a metric with an `AverageValue` target on a total
/// (`GetExternalPerPodMetricReplicas`): usage ratio = total / (target × current); within
/// `[1 − tolerance, 1 + tolerance]` the replicas stay, else `ceil(total / target)`. In
/// milli-units, as the API's quantities are, so the ratio is computed from the same
/// integers the HPA divides (a value on the tolerance's edge lands on the same side).
pub fn external_per_pod(current: u32, total: f64, target: f64, tolerance: f64) -> Result<u32, PolicyError> {
    let milli = |what: &str, v: f64| finite(what, v).map(|v| (v.max(0.0) * 1000.0).round());
    let usage = milli("metric", total)?;
    let target = milli("target", target)?;
    if target <= 0.0 {
        return Err(PolicyError::config(format!(
            "target must be at least 0.001, got {}",
            target / 1000.0
        )));
    }
    if current > 0 {
        let ratio = usage / (target * f64::from(current));
        if 1.0 - tolerance <= ratio && ratio <= 1.0 + tolerance {
            return Ok(current);
        }
    }
    let replicas = (usage / target).ceil();
    Ok(if replicas >= f64::from(u32::MAX) {
        u32::MAX
    } else {
        replicas as u32
    })
}

wasmscaler_sdk::export_policy!(HpaTarget);
