//! `stateful`: scale StatefulSet read replicas and cache clusters one careful step at a time.
//!
//! 1. Proposal per target, as the HPA computes it (`replica_calculator.go`):
//!    - `averageValue` (the signal is a total across replicas):
//!      `ceil(total / averageValue)`, unchanged while `|total / (averageValue × current) − 1| ≤ tolerance`;
//!    - `averageUtilization` (the signal is already an average across pods, e.g. memory %):
//!      `ceil(current × value / averageUtilization)`, unchanged within tolerance.
//!
//!    The largest proposal wins. If a target signal is missing and the others propose no
//!    scale-up, hold (the HPA's rule for failed metrics).
//! 2. Clamp into `[minReplicas, maxReplicas]`; with `alignToStep`, round up to a multiple of `step`.
//! 3. Stabilize like the HPA: remember every recommendation with its time; the result is
//!    `current` raised to the minimum over the up window and lowered to the maximum over
//!    the down window.
//! 4. Move at most `maxStepUp`/`maxStepDown` steps of `step` replicas, and only when the
//!    previous step has completed (all replicas Ready, replication lag not above
//!    `lag.maxSeconds`); a scale-down also waits `scaleDownCooldownSeconds` after the last one.

use serde::{Deserialize, Serialize};
use wasmscaler_sdk::prelude::*;

/// Most recommendations kept in state (a 1 s evaluation interval over a 1 h window is 3600;
/// the oldest are dropped beyond this, which only shortens the effective window).
pub const MAX_HISTORY: usize = 2000;
/// Largest stabilization window accepted (the HPA's own limit).
pub const MAX_WINDOW_SECONDS: u64 = 3600;

/// One scaling signal and the value to hold it at. Exactly one of `averageValue` and
/// `averageUtilization` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Target {
    /// Signal name; the host maps it to a source.
    pub signal: String,
    /// The signal is a total across replicas; hold it at this much per replica.
    #[serde(default)]
    pub average_value: Option<f64>,
    /// The signal is an average across pods (e.g. percent memory used); hold it at this value.
    #[serde(default)]
    pub average_utilization: Option<f64>,
}

/// The replication-lag guard.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Lag {
    /// Signal carrying the worst replica's lag in seconds.
    #[serde(default = "default_lag_signal")]
    pub signal: String,
    /// No step while the lag is above this many seconds.
    #[serde(default = "default_lag_max")]
    pub max_seconds: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    pub targets: Vec<Target>,
    #[serde(default)]
    pub lag: Option<Lag>,
    #[serde(default = "one")]
    pub step: u32,
    #[serde(default)]
    pub align_to_step: bool,
    #[serde(default = "default_up_window")]
    pub scale_up_stabilization_seconds: u64,
    #[serde(default = "default_down_window")]
    pub scale_down_stabilization_seconds: u64,
    #[serde(default = "default_cooldown")]
    pub scale_down_cooldown_seconds: u64,
    #[serde(default = "one")]
    pub max_step_up: u32,
    #[serde(default = "one")]
    pub max_step_down: u32,
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    #[serde(default)]
    pub min_replicas: Option<u32>,
    #[serde(default)]
    pub max_replicas: Option<u32>,
}

fn default_lag_signal() -> String {
    "replication-lag".into()
}
fn default_lag_max() -> f64 {
    5.0
}
fn one() -> u32 {
    1
}
fn default_up_window() -> u64 {
    60
}
fn default_down_window() -> u64 {
    600
}
fn default_cooldown() -> u64 {
    300
}
fn default_tolerance() -> f64 {
    0.1
}

/// What the policy remembers per workload.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    /// `(at_ms, recommendation)`, oldest first, within the longer stabilization window.
    #[serde(default)]
    pub recommendations: Vec<(i64, u32)>,
    /// When this policy last decided a scale-down.
    #[serde(default)]
    pub last_scale_down_ms: Option<i64>,
    /// First evaluation of this workload: for one down window after it, the current
    /// replica count counts as recommended (no scale-down before a full window of data).
    #[serde(default)]
    pub started_ms: Option<i64>,
}

pub struct Stateful;

fn round_up(n: u32, step: u32) -> u32 {
    n.div_ceil(step).saturating_mul(step)
}
fn round_down(n: u32, step: u32) -> u32 {
    (n / step) * step
}
fn secs_ms(s: u64) -> i64 {
    i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// One target's proposal and the words for it.
fn propose(t: &Target, value: f64, current: u32, tolerance: f64) -> Result<(u32, String), PolicyError> {
    let v = value.max(0.0);
    if let Some(avg) = t.average_value {
        if current == 0 {
            let n = replicas_for(v, avg)?;
            return Ok((n, format!("{} {v:.1} total vs {avg}/replica -> {n}", t.signal)));
        }
        let per = v / f64::from(current);
        let ratio = v / (avg * f64::from(current));
        let (n, tol) = if (ratio - 1.0).abs() <= tolerance {
            (current, " (within tolerance)")
        } else {
            (replicas_for(v, avg)?, "")
        };
        Ok((
            n,
            format!(
                "{} {v:.1} total ({per:.1}/replica) vs {avg}/replica -> {n}{tol}",
                t.signal
            ),
        ))
    } else if let Some(util) = t.average_utilization {
        let n = hpa_proportional(current, v, util, tolerance)?;
        let tol = if n == current && current > 0 {
            " (within tolerance)"
        } else {
            ""
        };
        Ok((n, format!("{} {v:.1}% vs {util}% -> {n}{tol}", t.signal)))
    } else {
        Err(PolicyError::config(format!(
            "target '{}' needs 'averageValue' or 'averageUtilization'",
            t.signal
        )))
    }
}

impl Policy for Stateful {
    type Config = Config;
    type State = State;

    fn info() -> PolicyInfo {
        PolicyInfo::new(
            "stateful",
            env!("CARGO_PKG_VERSION"),
            "StatefulSet replicas in steps: HPA targets, wait for Ready and replication lag, slow scale-down",
        )
        .signal(
            SignalRequest::latest(
                "replication-lag",
                "worst replica's replication lag in seconds (name set by 'lag.signal')",
            )
            .optional(),
        )
        .signal(
            SignalRequest::latest(
                "connections",
                "client connections summed across replicas (a target)",
            )
            .optional(),
        )
        .signal(
            SignalRequest::latest(
                "memory-utilization",
                "memory used, percent, averaged across pods (a target)",
            )
            .optional(),
        )
        .signal(
            SignalRequest::latest("ops", "operations per second summed across pods (a target)").optional(),
        )
        .signal(SignalRequest::latest("load", "total load across replicas (a target)").optional())
    }

    fn validate(cfg: &Config) -> Result<(), PolicyError> {
        if cfg.targets.is_empty() {
            return Err(PolicyError::config("'targets' must name at least one signal"));
        }
        for (i, t) in cfg.targets.iter().enumerate() {
            if t.signal.trim().is_empty() {
                return Err(PolicyError::config(format!(
                    "'targets[{i}].signal' must not be empty"
                )));
            }
            if let Some(j) = cfg.targets[..i].iter().position(|o| o.signal == t.signal) {
                return Err(PolicyError::config(format!(
                    "'targets[{i}].signal' repeats '{}' of 'targets[{j}]'",
                    t.signal
                )));
            }
            let (key, v) = match (t.average_value, t.average_utilization) {
                (Some(v), None) => ("averageValue", v),
                (None, Some(v)) => ("averageUtilization", v),
                (Some(_), Some(_)) => {
                    return Err(PolicyError::config(format!(
                        "'targets[{i}]' sets both 'averageValue' and 'averageUtilization'; choose one"
                    )));
                }
                (None, None) => {
                    return Err(PolicyError::config(format!(
                        "'targets[{i}]' needs 'averageValue' (signal is a total) or 'averageUtilization' (signal is a per-pod average)"
                    )));
                }
            };
            if !(v.is_finite() && v > 0.0) {
                return Err(PolicyError::config(format!(
                    "'targets[{i}].{key}' must be a number > 0, got {v}"
                )));
            }
        }
        if let Some(lag) = &cfg.lag {
            if lag.signal.trim().is_empty() {
                return Err(PolicyError::config("'lag.signal' must not be empty"));
            }
            if !(lag.max_seconds.is_finite() && lag.max_seconds > 0.0) {
                return Err(PolicyError::config(format!(
                    "'lag.maxSeconds' must be a number > 0, got {}",
                    lag.max_seconds
                )));
            }
        }
        for (key, v) in [
            ("step", cfg.step),
            ("maxStepUp", cfg.max_step_up),
            ("maxStepDown", cfg.max_step_down),
        ] {
            if v == 0 {
                return Err(PolicyError::config(format!("'{key}' must be at least 1, got 0")));
            }
        }
        for (key, v) in [
            ("scaleUpStabilizationSeconds", cfg.scale_up_stabilization_seconds),
            (
                "scaleDownStabilizationSeconds",
                cfg.scale_down_stabilization_seconds,
            ),
        ] {
            if v > MAX_WINDOW_SECONDS {
                return Err(PolicyError::config(format!(
                    "'{key}' must be within 0..={MAX_WINDOW_SECONDS}, got {v}"
                )));
            }
        }
        if cfg.scale_down_cooldown_seconds > 86_400 {
            return Err(PolicyError::config(format!(
                "'scaleDownCooldownSeconds' must be at most 86400 (one day), got {}",
                cfg.scale_down_cooldown_seconds
            )));
        }
        if !(cfg.tolerance.is_finite() && (0.0..1.0).contains(&cfg.tolerance)) {
            return Err(PolicyError::config(format!(
                "'tolerance' must be in [0, 1), got {}",
                cfg.tolerance
            )));
        }
        if let (Some(min), Some(max)) = (cfg.min_replicas, cfg.max_replicas)
            && min > max
        {
            return Err(PolicyError::config(format!(
                "'minReplicas' ({min}) must not exceed 'maxReplicas' ({max})"
            )));
        }
        if cfg.max_replicas == Some(0) {
            return Err(PolicyError::config("'maxReplicas' must be at least 1, got 0"));
        }
        if cfg.align_to_step {
            for (key, v) in [
                ("minReplicas", cfg.min_replicas),
                ("maxReplicas", cfg.max_replicas),
            ] {
                if let Some(v) = v
                    && v % cfg.step != 0
                {
                    return Err(PolicyError::config(format!(
                        "'{key}' ({v}) must be a multiple of 'step' ({}) when 'alignToStep' is true",
                        cfg.step
                    )));
                }
            }
        }
        Ok(())
    }

    fn evaluate(ctx: &Context, cfg: &Config, state: &mut State) -> Result<Decision, PolicyError> {
        let now = ctx.now_ms;
        let w = &ctx.workload;
        let current = w.replicas;
        let step = cfg.step.max(1);

        // Bounds: the config's, else the workload's; never above the workload's max.
        let mut hi = cfg.max_replicas.unwrap_or(w.max_replicas).min(w.max_replicas);
        let mut lo = cfg.min_replicas.unwrap_or(w.min_replicas).min(hi);
        if cfg.align_to_step {
            hi = round_down(hi, step);
            lo = round_up(lo, step).min(hi);
        }

        // 1. Proposals, max across targets.
        let mut best: Option<u32> = None;
        let mut parts = Vec::new();
        let mut missing = Vec::new();
        for t in &cfg.targets {
            match ctx.try_signal(&t.signal) {
                None => missing.push(t.signal.as_str()),
                Some(s) => {
                    let (n, why) = propose(t, s.latest()?, current, cfg.tolerance)?;
                    best = Some(best.map_or(n, |b| b.max(n)));
                    parts.push(why);
                }
            }
        }
        let list = |v: &[&str]| v.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", ");
        let Some(best) = best else {
            return Err(PolicyError::MissingSignal(format!(
                "no target signal has samples: {}",
                list(&missing)
            )));
        };
        let mut why = parts.join("; ");
        if !missing.is_empty() {
            if best <= current {
                return Ok(Decision::new(ctx.clamp(current)).reason(format!(
                    "holding at {current}: signal {} missing and the others propose no scale-up ({why})",
                    list(&missing)
                )));
            }
            why.push_str(&format!("; {} missing", list(&missing)));
        }

        // 2. Bounds and alignment.
        let mut raw = best.clamp(lo, hi);
        if cfg.align_to_step {
            raw = round_up(raw, step).min(hi).max(lo);
        }

        // 3. Stabilization (HPA stabilizer): up = min over the up window, down = max over the down window.
        let up_cut = now.saturating_sub(secs_ms(cfg.scale_up_stabilization_seconds));
        let down_cut = now.saturating_sub(secs_ms(cfg.scale_down_stabilization_seconds));
        let keep_from = up_cut.min(down_cut);
        state
            .recommendations
            .retain(|&(at, _)| at > keep_from && at <= now);
        state.recommendations.push((now, raw));
        if state.recommendations.len() > MAX_HISTORY {
            let excess = state.recommendations.len() - MAX_HISTORY;
            state.recommendations.drain(..excess);
        }
        let (mut up_rec, mut down_rec) = (raw, raw);
        for &(at, r) in &state.recommendations {
            if at > up_cut {
                up_rec = up_rec.min(r);
            }
            if at > down_cut {
                down_rec = down_rec.max(r);
            }
        }
        // A fresh start has no history: assume `current` was recommended throughout the
        // down window, so a stateful workload is never shrunk on its first evaluation.
        if state.started_ms.is_none_or(|t| t > now) {
            state.started_ms = Some(now);
        }
        if state.started_ms.is_some_and(|t| t > down_cut) {
            down_rec = down_rec.max(current);
        }
        let target = current.max(up_rec).min(down_rec);
        if state.last_scale_down_ms.is_some_and(|t| t > now) {
            state.last_scale_down_ms = None;
        }

        let base = Decision::new(0)
            .metric("recommendation", f64::from(raw))
            .metric("stabilized_recommendation", f64::from(target));
        let hold = |d: Decision, msg: String| {
            let mut d = d;
            d.replicas = ctx.clamp(current);
            d.reason = msg;
            Ok(d)
        };

        if target == current {
            let msg = if raw > current {
                format!(
                    "holding at {current}: want {raw} but scale-up stabilization keeps the minimum over {} s ({up_rec}); {why}",
                    cfg.scale_up_stabilization_seconds
                )
            } else if raw < current {
                format!(
                    "holding at {current}: want {raw} but scale-down stabilization keeps the maximum over {} s ({down_rec}); {why}",
                    cfg.scale_down_stabilization_seconds
                )
            } else {
                format!("steady at {current}: {why}")
            };
            return hold(base, msg);
        }

        // 4. The previous step must have completed.
        let mut blocked = Vec::new();
        if w.ready_replicas < current {
            blocked.push(format!("{}/{current} replicas Ready", w.ready_replicas));
        }
        if let Some(lag) = &cfg.lag {
            match ctx.try_signal(&lag.signal) {
                None => blocked.push(format!(
                    "replica lag unknown (signal '{}' has no samples)",
                    lag.signal
                )),
                Some(s) => {
                    let l = s.latest()?;
                    if l > lag.max_seconds {
                        blocked.push(format!("replica lag {l:.1} s > {} s", lag.max_seconds));
                    }
                }
            }
        }
        let k = |n: u32| n.saturating_mul(step);
        let scaling_up = target > current;
        // Only a removal waits out the cooldown after the last one.
        if !scaling_up && let Some(last) = state.last_scale_down_ms {
            let since = now.saturating_sub(last);
            let cooldown = secs_ms(cfg.scale_down_cooldown_seconds);
            if since < cooldown {
                blocked.push(format!(
                    "scale-down cooldown, {} s of {} s since the last removal",
                    since / 1000,
                    cfg.scale_down_cooldown_seconds
                ));
            }
        }
        if !blocked.is_empty() {
            return hold(
                base,
                format!(
                    "holding at {current}: {} (want {target}; {why})",
                    blocked.join(", ")
                ),
            );
        }
        // target != current here. With alignToStep a step starts from the grid point behind
        // `current` (below it going up, above it going down), so it ends on the grid.
        let start = |align: fn(u32, u32) -> u32| {
            if cfg.align_to_step {
                align(current, step)
            } else {
                current
            }
        };
        let (next, direction) = if scaling_up {
            let next = start(round_down).saturating_add(k(cfg.max_step_up)).min(target);
            (next, "up")
        } else {
            state.last_scale_down_ms = Some(now);
            let next = start(round_up).saturating_sub(k(cfg.max_step_down)).max(target);
            (next, "down")
        };
        let d = base.reason(format!(
            "scaling {direction} {current} -> {next} (want {target}): {why}"
        ));
        Ok(Decision {
            replicas: ctx.clamp(next),
            ..d
        })
    }
}

wasmscaler_sdk::export_policy!(Stateful);
