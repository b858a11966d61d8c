//! KEDA ScaledJob, as a wasmscaler policy: how many Jobs to start now for the items
//! waiting in one or more queues.
//!
//! Reproduces `kedacore/keda`:
//! - `pkg/scaling/scaledjob/metrics.go` (`IsScaledJobActive`): per queue
//!   `maxValue = min(queueLength / targetAverageValue, maxReplicaCount)`; several queues
//!   combined by `multipleScalersCalculation` (`max` default, `min`, `avg`, `sum`, over the
//!   *active* queues only); `scaleTo = ceil(queueLength)`, `maxScale = ceil(maxValue)`.
//! - `pkg/scaling/executor/scale_jobs.go` (`getScalingDecision`, `createJobs`, the four
//!   `GetEffectiveMaxScale` strategies): below `minReplicaCount` create the difference,
//!   otherwise the strategy sees `running - minReplicaCount`; Jobs created =
//!   `min(scaleTo, effectiveMaxScale)` when the effective max scale is positive and a queue
//!   is active (or `minReplicaCount > 0`).
//!
//! KEDA's `runningJobCount` counts every unfinished Job, pending ones included. The
//! wasmscaler `running-jobs` signal counts started Jobs only, so by default the policy uses
//! `running-jobs + pending-jobs` wherever KEDA says "running"
//! (`runningJobsIncludePending: true` if your source already counts like KEDA).

use serde::{Deserialize, Deserializer, Serialize};
use wasmscaler_sdk::prelude::*;

/// Default queue signal name.
pub const QUEUE_SIGNAL: &str = "queue-length";
/// Started, unfinished Jobs of this workload.
pub const RUNNING_SIGNAL: &str = "running-jobs";
/// Jobs whose pods have not started yet.
pub const PENDING_SIGNAL: &str = "pending-jobs";

/// One queue ("scaler"/"trigger" in KEDA).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Queue {
    /// Signal name the host maps to the queue (default `queue-length`).
    #[serde(default = "default_queue_signal")]
    pub signal: String,
    /// Queue items one Job handles (KEDA's trigger target / `targetAverageValue`).
    /// Defaults to the top-level `targetQueueLengthPerJob`.
    #[serde(default)]
    pub target_queue_length_per_job: Option<f64>,
    /// The queue counts as active when its length is above this (KEDA `activation*`,
    /// default 0).
    #[serde(default)]
    pub activation_threshold: f64,
}

fn default_queue_signal() -> String {
    QUEUE_SIGNAL.to_string()
}

/// KEDA `scalingStrategy.strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum Strategy {
    #[default]
    Default,
    Custom,
    Accurate,
    Eager,
}

/// KEDA `scalingStrategy.multipleScalersCalculation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum Calculation {
    #[default]
    Max,
    Min,
    Avg,
    Sum,
}

/// KEDA `spec.scalingStrategy`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScalingStrategy {
    #[serde(default)]
    pub strategy: Strategy,
    /// `custom` only: subtracted from maxScale (KEDA `customScalingQueueLengthDeduction`).
    #[serde(default)]
    pub custom_scaling_queue_length_deduction: i32,
    /// `custom` only: fraction of running Jobs subtracted (KEDA takes a string such as
    /// "0.5"; a number or a string is accepted). As in KEDA, `custom` without it, or with
    /// a string Go's `strconv.ParseFloat` rejects (e.g. `" 0.5"`), is the `default`
    /// strategy.
    #[serde(default, deserialize_with = "number_or_string")]
    pub custom_scaling_running_job_percentage: Option<f64>,
    #[serde(default)]
    pub multiple_scalers_calculation: Calculation,
}

fn one() -> f64 {
    1.0
}

impl ScalingStrategy {
    /// KEDA `NewScalingStrategy`: `custom` needs a readable percentage, else `default`.
    pub fn effective(&self) -> Strategy {
        match (self.strategy, self.custom_scaling_running_job_percentage) {
            (Strategy::Custom, None) => Strategy::Default,
            (s, _) => s,
        }
    }
}

fn number_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumOrStr {
        Num(f64),
        Str(String),
    }
    Ok(match Option::<NumOrStr>::deserialize(d)? {
        None => None,
        Some(NumOrStr::Num(n)) => Some(n),
        Some(NumOrStr::Str(s)) => parse_go_float(&s),
    })
}

/// Go `strconv.ParseFloat(s, 64)` for the decimal forms: no surrounding spaces, an
/// optional sign, digits with an optional point, an optional exponent, or inf/infinity/
/// nan. (Go's hexadecimal floats and digit underscores are not read: README.)
pub fn parse_go_float(s: &str) -> Option<f64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    let word = digits.to_ascii_lowercase();
    if matches!(word.as_str(), "inf" | "infinity" | "nan") {
        return s.parse().ok();
    }
    let ok = !digits.is_empty()
        && digits
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'));
    if ok { s.parse().ok() } else { None }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    /// Queues to read. Default: one queue, signal `queue-length`.
    #[serde(default)]
    pub queues: Option<Vec<Queue>>,
    /// Queue items per Job for queues without their own target (default 1).
    #[serde(default = "one")]
    pub target_queue_length_per_job: f64,
    /// Jobs kept running even with an empty queue (KEDA default 0).
    #[serde(default)]
    pub min_replica_count: u32,
    /// Most Jobs at a time (KEDA default 100).
    /// Unset: KEDA's default, 100 Jobs above `minReplicaCount` (see [`Config::budget`]).
    #[serde(default)]
    pub max_replica_count: Option<u32>,
    #[serde(default)]
    pub scaling_strategy: ScalingStrategy,
    /// Set when the `running-jobs` source already counts pending Jobs (as KEDA's does).
    #[serde(default)]
    pub running_jobs_include_pending: bool,
}

/// KEDA's `defaultScaledJobMaxReplicaCount`.
pub const DEFAULT_MAX_REPLICA_COUNT: u32 = 100;

impl Config {
    /// KEDA `Max()`: the Jobs allowed above `minReplicaCount` — `maxReplicaCount -
    /// minReplicaCount` when set (validation keeps min <= max), else 100.
    pub fn budget(&self) -> u32 {
        match self.max_replica_count {
            Some(max) => max.saturating_sub(self.min_replica_count),
            None => DEFAULT_MAX_REPLICA_COUNT,
        }
    }

    /// The configured queues with their targets resolved.
    pub fn resolved_queues(&self) -> Vec<(String, f64, f64)> {
        match &self.queues {
            Some(qs) => qs
                .iter()
                .map(|q| {
                    (
                        q.signal.clone(),
                        q.target_queue_length_per_job
                            .unwrap_or(self.target_queue_length_per_job),
                        q.activation_threshold,
                    )
                })
                .collect(),
            None => vec![(QUEUE_SIGNAL.to_string(), self.target_queue_length_per_job, 0.0)],
        }
    }
}

/// One queue's contribution (KEDA `ScalerMetrics`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueueMetrics {
    pub queue_length: f64,
    pub max_value: f64,
    pub is_active: bool,
}

/// KEDA `IsScaledJobActive`: returns (isActive, scaleTo, maxScale, combined queue length).
pub fn combine(
    queues: &[QueueMetrics],
    calc: Calculation,
    min_replica_count: u32,
    max_replica_count: u32,
) -> (bool, u32, u32, f64) {
    let mut queue_length = 0.0_f64;
    let mut max_value = 0.0_f64;
    let mut is_active = false;
    match calc {
        Calculation::Min => {
            // Same rule as KEDA, quirk included: an active queue replaces the pick when the
            // pick so far is 0 or longer.
            for m in queues {
                if (queue_length == 0.0 || m.queue_length < queue_length) && m.is_active {
                    queue_length = m.queue_length;
                    max_value = m.max_value;
                    is_active = true;
                }
            }
        }
        Calculation::Avg => {
            let (mut ql, mut mv, mut n) = (0.0, 0.0, 0u32);
            for m in queues.iter().filter(|m| m.is_active) {
                ql += m.queue_length;
                mv += m.max_value;
                n += 1;
                is_active = true;
            }
            if n > 0 {
                queue_length = ql / f64::from(n);
                max_value = mv / f64::from(n);
            }
        }
        Calculation::Sum => {
            for m in queues.iter().filter(|m| m.is_active) {
                queue_length += m.queue_length;
                max_value += m.max_value;
                is_active = true;
            }
        }
        Calculation::Max => {
            for m in queues {
                if m.queue_length > queue_length && m.is_active {
                    queue_length = m.queue_length;
                    max_value = m.max_value;
                    is_active = true;
                }
            }
        }
    }
    if min_replica_count > 0 {
        is_active = true;
    }
    let max_value = max_value.min(f64::from(max_replica_count));
    (is_active, go_ceil(queue_length), go_ceil(max_value), queue_length)
}

/// Go `int64(math.Ceil(x))` for the counts here (no slack: 21 / 0.7 = 30.000000000000004
/// is 31 in KEDA), saturated into u32.
fn go_ceil(x: f64) -> u32 {
    let c = x.ceil();
    if c <= 0.0 {
        0
    } else if c >= f64::from(u32::MAX) {
        u32::MAX
    } else {
        c as u32
    }
}

/// A value as KEDA's scalers hand it over: a Kubernetes milli-quantity
/// (`resource.NewMilliQuantity(int64(v * 1000))`, `GenerateMetricInMili` /
/// `GetMetricTargetMili`) read back with `AsApproximateFloat64` (milli-units x 10^-3).
/// So 0.0004 items count as 0 and a target of 0.7 becomes 0.7000000000000001.
pub fn milli(v: f64) -> f64 {
    ((v * 1000.0) as i64) as f64 * 0.001
}

/// KEDA `GetEffectiveMaxScale` for each strategy: returns (effectiveMaxScale, scaleTo).
/// `running` is KEDA's running count minus `minReplicaCount`. Signed, as in KEDA; the
/// caller floors at 0.
pub fn effective_max_scale(
    strategy: &ScalingStrategy,
    max_scale: i64,
    running: i64,
    pending: i64,
    max_replica_count: i64,
    scale_to: i64,
) -> (i64, i64) {
    match strategy.effective() {
        Strategy::Default => (max_scale - running, scale_to),
        Strategy::Custom => {
            // Go: int64(float64(running) * percentage) truncates toward zero.
            let percentage = strategy.custom_scaling_running_job_percentage.unwrap_or(0.0);
            let fraction = (running as f64 * percentage).trunc() as i64;
            (
                (max_scale - i64::from(strategy.custom_scaling_queue_length_deduction) - fraction)
                    .min(max_replica_count),
                scale_to,
            )
        }
        Strategy::Accurate => {
            if max_scale + running - pending > max_replica_count {
                (max_replica_count - running, scale_to)
            } else {
                (max_scale - pending, scale_to)
            }
        }
        Strategy::Eager => (
            (max_replica_count - running - pending).min(max_scale),
            max_replica_count,
        ),
    }
}

/// Read a count signal (latest sample), rounded to the nearest whole Job.
fn count(ctx: &Context, name: &str) -> Result<Option<i64>, PolicyError> {
    let Some(sig) = ctx.try_signal(name) else {
        return Ok(None);
    };
    let v = sig.latest()?;
    if v < 0.0 {
        return Err(PolicyError::internal(format!(
            "signal '{name}' is {v}, expected a count >= 0"
        )));
    }
    Ok(Some(v.round().min(f64::from(u32::MAX)) as i64))
}

pub struct QueueJob;

impl Policy for QueueJob {
    type Config = Config;
    type State = ();

    fn info() -> PolicyInfo {
        PolicyInfo::new(
            "queue-job",
            env!("CARGO_PKG_VERSION"),
            "KEDA ScaledJob: Jobs to start for queued work (default/custom/accurate/eager strategies)",
        )
        .signal(
            SignalRequest::latest(
                QUEUE_SIGNAL,
                "items waiting in the queue (other queue names: `queues[].signal`)",
            )
            .optional(),
        )
        .signal(SignalRequest::latest(
            RUNNING_SIGNAL,
            "Jobs of this workload that have started and not finished",
        ))
        .signal(
            SignalRequest::latest(
                PENDING_SIGNAL,
                "Jobs of this workload whose pods have not started (required by accurate/eager)",
            )
            .optional(),
        )
    }

    fn validate(cfg: &Config) -> Result<(), PolicyError> {
        let positive = |key: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(PolicyError::config(format!(
                    "'{key}' must be a number > 0, got {v}"
                )))
            }
        };
        positive("targetQueueLengthPerJob", cfg.target_queue_length_per_job)?;
        if let Some(qs) = &cfg.queues {
            if qs.is_empty() {
                return Err(PolicyError::config("'queues' must name at least one queue"));
            }
            for (i, q) in qs.iter().enumerate() {
                if q.signal.trim().is_empty() {
                    return Err(PolicyError::config(format!(
                        "'queues[{i}].signal' must not be empty"
                    )));
                }
                if let Some(t) = q.target_queue_length_per_job {
                    positive(&format!("queues[{i}].targetQueueLengthPerJob"), t)?;
                }
                if !(q.activation_threshold.is_finite() && q.activation_threshold >= 0.0) {
                    return Err(PolicyError::config(format!(
                        "'queues[{i}].activationThreshold' must be a number >= 0, got {}",
                        q.activation_threshold
                    )));
                }
                if qs[..i].iter().any(|p| p.signal == q.signal) {
                    return Err(PolicyError::config(format!(
                        "'queues[{i}].signal': '{}' is listed twice",
                        q.signal
                    )));
                }
            }
        }
        if cfg.max_replica_count == Some(0) {
            return Err(PolicyError::config("'maxReplicaCount' must be > 0, got 0"));
        }
        if let Some(max) = cfg.max_replica_count
            && cfg.min_replica_count > max
        {
            return Err(PolicyError::config(format!(
                "'minReplicaCount' ({}) must be <= 'maxReplicaCount' ({max})",
                cfg.min_replica_count
            )));
        }
        let s = &cfg.scaling_strategy;
        if s.custom_scaling_queue_length_deduction < 0 {
            return Err(PolicyError::config(format!(
                "'scalingStrategy.customScalingQueueLengthDeduction' must be >= 0, got {}",
                s.custom_scaling_queue_length_deduction
            )));
        }
        if let Some(p) = s.custom_scaling_running_job_percentage
            && !(p.is_finite() && p >= 0.0)
        {
            return Err(PolicyError::config(format!(
                "'scalingStrategy.customScalingRunningJobPercentage' must be a number >= 0, got {p}"
            )));
        }
        Ok(())
    }

    fn evaluate(ctx: &Context, cfg: &Config, _: &mut ()) -> Result<Decision, PolicyError> {
        let strategy = &cfg.scaling_strategy;
        let budget = cfg.budget();
        // The most unfinished Jobs: the minimum plus the budget above it.
        let max_rc = cfg.min_replica_count.saturating_add(budget);

        // Queues -> KEDA ScalerMetrics.
        let mut metrics = Vec::new();
        let mut parts = Vec::new();
        for (name, target, activation) in cfg.resolved_queues() {
            let len = ctx.signal(&name)?.latest()?;
            if len < 0.0 {
                return Err(PolicyError::internal(format!(
                    "signal '{name}' is {len}, expected a queue length >= 0"
                )));
            }
            // CalculateQueueLengthAndMaxValue, on the milli-quantities KEDA's scalers report.
            let (ql, tq) = (milli(len), milli(target));
            let max_value = if tq != 0.0 {
                (ql / tq).min(f64::from(budget))
            } else {
                0.0
            };
            let is_active = len > activation;
            parts.push(format!("{name} {len}/{target}"));
            metrics.push(QueueMetrics {
                queue_length: ql,
                max_value,
                is_active,
            });
        }
        let (is_active, scale_to, max_scale, queue_length) = combine(
            &metrics,
            strategy.multiple_scalers_calculation,
            cfg.min_replica_count,
            budget,
        );

        // Job counts.
        let running_signal = count(ctx, RUNNING_SIGNAL)?.ok_or_else(|| {
            PolicyError::MissingSignal(format!("signal '{RUNNING_SIGNAL}' was not provided"))
        })?;
        let pending = match count(ctx, PENDING_SIGNAL)? {
            Some(p) => p,
            None if matches!(strategy.strategy, Strategy::Accurate | Strategy::Eager) => {
                return Err(PolicyError::MissingSignal(format!(
                    "signal '{PENDING_SIGNAL}' is required by the {:?} strategy (counting pending Jobs as 0 over-creates Jobs)",
                    strategy.strategy
                )));
            }
            None => 0,
        };
        // KEDA's running count = every unfinished Job.
        let active_jobs = if cfg.running_jobs_include_pending {
            running_signal
        } else {
            running_signal + pending
        };

        let min_rc = i64::from(cfg.min_replica_count);
        let (effective, scale_to) = if active_jobs < min_rc {
            (min_rc - active_jobs, min_rc - active_jobs)
        } else {
            effective_max_scale(
                strategy,
                i64::from(max_scale),
                active_jobs - min_rc,
                pending,
                i64::from(budget),
                i64::from(scale_to),
            )
        };
        let effective = effective.max(0);

        let mut jobs = if is_active && effective > 0 {
            scale_to.min(effective).max(0)
        } else {
            0
        };
        // The host's bound on the workload's Jobs.
        let room = (i64::from(ctx.workload.max_replicas) - active_jobs).max(0);
        let capped_by_host = jobs > room;
        jobs = jobs.min(room);
        let jobs = u32::try_from(jobs).unwrap_or(u32::MAX);
        let total = active_jobs.saturating_add(i64::from(jobs));
        let replicas = u32::try_from(total.min(i64::from(max_rc)))
            .unwrap_or(u32::MAX)
            .min(ctx.workload.max_replicas);

        let mut reason = format!(
            "{} strategy: queue {queue_length} ({}), maxScale {max_scale}, running {active_jobs} (pending {pending}), effective max {effective} -> start {jobs} Job(s)",
            strategy_name(strategy.effective()),
            parts.join(", "),
        );
        if active_jobs < min_rc {
            reason.push_str(&format!(" to reach minReplicaCount {min_rc}"));
        } else if !is_active {
            reason.push_str(" (no queue active)");
        }
        if capped_by_host {
            reason.push_str(&format!(
                " (capped by workload max {})",
                ctx.workload.max_replicas
            ));
        }
        Ok(Decision::new(replicas)
            .jobs(jobs)
            .reason(reason)
            .metric("queue-length", queue_length)
            .metric("max-scale", f64::from(max_scale))
            .metric("effective-max-scale", effective as f64))
    }
}

fn strategy_name(s: Strategy) -> &'static str {
    match s {
        Strategy::Default => "default",
        Strategy::Custom => "custom",
        Strategy::Accurate => "accurate",
        Strategy::Eager => "eager",
    }
}

wasmscaler_sdk::export_policy!(QueueJob);
