//! Configuration: Knative's autoscaling annotations / `config-autoscaler` keys, camelCase.

use serde::Deserialize;
use wasmscaler_sdk::PolicyError;

/// The metric the KPA scales on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    #[default]
    Concurrency,
    Rps,
}

impl Metric {
    /// The standard signal carrying this metric.
    pub fn signal(self) -> &'static str {
        match self {
            Metric::Concurrency => "concurrency",
            Metric::Rps => "rps",
        }
    }
}

/// Durations are seconds (`60`, `0.5`) or Go duration strings (`"60s"`, `"1m30s"`,
/// `"500ms"`, `"1h"`), as Knative accepts; signed, so that [`Config::check`] names the key
/// of a negative one.
pub use wasmscaler_sdk::Duration;

fn default_util() -> f64 {
    70.0
}
fn default_stable() -> Duration {
    Duration(60_000)
}
fn default_panic_pct() -> f64 {
    10.0
}
fn default_panic_threshold() -> f64 {
    200.0
}
fn default_up() -> f64 {
    1000.0
}
fn default_down() -> f64 {
    2.0
}
fn default_grace() -> Duration {
    Duration(30_000)
}
fn default_one() -> u32 {
    1
}
fn default_true() -> bool {
    true
}
fn default_tbc() -> f64 {
    211.0
}

/// Every key is a Knative autoscaling annotation (`autoscaling.knative.dev/<key>`) or a
/// `config-autoscaler` entry, spelled camelCase.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    /// `concurrency` (default) or `rps`.
    #[serde(default)]
    pub metric: Metric,
    /// The revision's hard limit of in-flight requests per pod; 0 = unlimited (default).
    #[serde(default)]
    pub container_concurrency: u32,
    /// Target per pod (concurrency or rps); default 100 concurrency, 200 rps.
    #[serde(default)]
    pub target: Option<f64>,
    /// Share of the target the autoscaler aims for (default 70).
    #[serde(default = "default_util")]
    pub target_utilization_percentage: f64,
    /// Stable window (default 60s; 6s..1h, whole seconds).
    #[serde(default = "default_stable")]
    pub stable_window: Duration,
    /// Panic window as a percentage of the stable window (default 10; 1..100).
    #[serde(default = "default_panic_pct")]
    pub panic_window_percentage: f64,
    /// Enter panic when the panic-window demand reaches this % of ready capacity (default 200; 110..1000).
    #[serde(default = "default_panic_threshold")]
    pub panic_threshold_percentage: f64,
    /// Most pods as a multiple of ready pods per decision (default 1000; > 1).
    #[serde(default = "default_up")]
    pub max_scale_up_rate: f64,
    /// Fewest pods as ready pods divided by this per decision (default 2; > 1).
    #[serde(default = "default_down")]
    pub max_scale_down_rate: f64,
    /// Time an inactive workload keeps its last pod before going to zero (default 30s; > 0).
    #[serde(default = "default_grace")]
    pub scale_to_zero_grace_period: Duration,
    /// Minimum time the last pod is kept once inactive (default 0s).
    #[serde(default)]
    pub scale_to_zero_pod_retention_period: Option<Duration>,
    /// Scale-down decisions use the highest recommendation of this window (default 0s; 0..1h, whole seconds).
    #[serde(default)]
    pub scale_down_delay: Option<Duration>,
    /// Pods a new workload gets until it first reaches this many ready pods (default 1).
    #[serde(default = "default_one")]
    pub initial_scale: u32,
    /// Permit `initialScale: 0` (default false).
    #[serde(default)]
    pub allow_zero_initial_scale: bool,
    /// Pods to start with when scaling up from zero (default 1; >= 1).
    #[serde(default = "default_one")]
    pub activation_scale: u32,
    /// Lower bound (default 0).
    #[serde(default)]
    pub min_scale: u32,
    /// Upper bound, 0 = unlimited (default 0).
    #[serde(default)]
    pub max_scale: u32,
    /// Allow scaling to zero (default true).
    #[serde(default = "default_true")]
    pub enable_scale_to_zero: bool,
    /// Spare capacity to keep for bursts, for the reported excess-burst-capacity (default 211; -1 unlimited).
    #[serde(default = "default_tbc")]
    pub target_burst_capacity: f64,
}

/// Knative's `autoscaling.TargetMin`.
pub const TARGET_MIN: f64 = 0.01;

/// Configuration with Knative's derived values worked out.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Per-pod value the autoscaler aims for (`TargetValue`).
    pub target: f64,
    /// Per-pod capacity (`TotalValue`).
    pub total: f64,
    pub stable_ms: i64,
    pub panic_ms: i64,
    /// Fraction, e.g. 2.0.
    pub panic_threshold: f64,
    pub delay_ms: i64,
    pub zero_wait_ms: i64,
}

impl Config {
    /// Knative `ResolveMetricTarget` and `MakeMetric`'s panic window.
    pub fn resolve(&self) -> Resolved {
        let tu = self.target_utilization_percentage / 100.0;
        let total = match self.metric {
            Metric::Rps => self.target.unwrap_or(200.0),
            Metric::Concurrency => {
                let cc = f64::from(self.container_concurrency);
                match self.target {
                    Some(t) if self.container_concurrency != 0 => t.min(cc),
                    Some(t) => t,
                    None if self.container_concurrency != 0 => cc,
                    None => 100.0,
                }
            }
        };
        let stable_ms = self.stable_window.0;
        // time.Duration(stable * pct / 100).Round(1s), at least 1s.
        let panic_raw = stable_ms as f64 * self.panic_window_percentage / 100.0;
        let panic_ms = (((panic_raw / 1000.0).round() as i64) * 1000).max(1000);
        let retention = self.scale_to_zero_pod_retention_period.map_or(0, |m| m.0);
        Resolved {
            target: (total * tu).max(TARGET_MIN),
            total,
            stable_ms,
            panic_ms,
            panic_threshold: self.panic_threshold_percentage / 100.0,
            delay_ms: self.scale_down_delay.map_or(0, |m| m.0),
            zero_wait_ms: self.scale_to_zero_grace_period.0.max(retention),
        }
    }

    /// Knative's own validation of these values (`config.go`, annotation validation).
    pub fn check(&self) -> Result<(), PolicyError> {
        let err = |m: String| Err(PolicyError::config(m));
        if let Some(t) = self.target
            && !(t.is_finite() && t >= TARGET_MIN)
        {
            return err(format!("'target' must be a number >= {TARGET_MIN}, got {t}"));
        }
        if self.container_concurrency > 1000 {
            return err(format!(
                "'containerConcurrency' must be in [0, 1000], got {}",
                self.container_concurrency
            ));
        }
        let tu = self.target_utilization_percentage;
        if !(tu.is_finite() && (1.0..=100.0).contains(&tu)) {
            return err(format!(
                "'targetUtilizationPercentage' must be in [1, 100], got {tu}"
            ));
        }
        let sw = self.stable_window.0;
        if !(6_000..=3_600_000).contains(&sw) {
            return err(format!("'stableWindow' must be in [6s, 1h], got {}", fmt_ms(sw)));
        }
        if sw % 1000 != 0 {
            return err(format!(
                "'stableWindow' must be whole seconds, got {}",
                fmt_ms(sw)
            ));
        }
        let pw = self.panic_window_percentage;
        if !(pw.is_finite() && (1.0..=100.0).contains(&pw)) {
            return err(format!("'panicWindowPercentage' must be in [1, 100], got {pw}"));
        }
        let pt = self.panic_threshold_percentage;
        if !(pt.is_finite() && (110.0..=1000.0).contains(&pt)) {
            return err(format!(
                "'panicThresholdPercentage' must be in [110, 1000], got {pt}"
            ));
        }
        for (key, v) in [
            ("maxScaleUpRate", self.max_scale_up_rate),
            ("maxScaleDownRate", self.max_scale_down_rate),
        ] {
            if !(v.is_finite() && v > 1.0) {
                return err(format!("'{key}' must be a number > 1, got {v}"));
            }
        }
        let g = self.scale_to_zero_grace_period.0;
        if g <= 0 {
            return err(format!("'scaleToZeroGracePeriod' must be > 0, got {}", fmt_ms(g)));
        }
        if let Some(Duration(r)) = self.scale_to_zero_pod_retention_period
            && r < 0
        {
            return err(format!(
                "'scaleToZeroPodRetentionPeriod' must be >= 0, got {}",
                fmt_ms(r)
            ));
        }
        if let Some(Duration(d)) = self.scale_down_delay {
            if !(0..=3_600_000).contains(&d) {
                return err(format!("'scaleDownDelay' must be in [0s, 1h], got {}", fmt_ms(d)));
            }
            if d % 1000 != 0 {
                return err(format!(
                    "'scaleDownDelay' must be whole seconds, got {}",
                    fmt_ms(d)
                ));
            }
        }
        if self.initial_scale == 0 && !self.allow_zero_initial_scale {
            return err("'initialScale' must be >= 1 unless 'allowZeroInitialScale' is true, got 0".into());
        }
        if self.activation_scale == 0 {
            return err("'activationScale' must be >= 1, got 0".into());
        }
        if self.max_scale != 0 && self.min_scale > self.max_scale {
            return err(format!(
                "'minScale' ({}) must be <= 'maxScale' ({})",
                self.min_scale, self.max_scale
            ));
        }
        let tbc = self.target_burst_capacity;
        if !(tbc.is_finite() && (tbc >= 0.0 || tbc == -1.0)) {
            return err(format!(
                "'targetBurstCapacity' must be >= 0 or -1 (unlimited), got {tbc}"
            ));
        }
        Ok(())
    }
}

/// `60s`, `1.5s`, `-2s`: always seconds, the way Knative reports its windows (the reasons
/// and messages read like Knative's, so this is not [`Duration`]'s shortest form).
pub fn fmt_ms(ms: i64) -> String {
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{}s", ms as f64 / 1000.0)
    }
}
