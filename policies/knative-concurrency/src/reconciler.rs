//! The KPA reconciler's part: `pkg/reconciler/autoscaling/kpa/scaler.go` (`scale`,
//! `handleScaleToZero`) and `kpa.go` (`computeActiveCondition`, `activeThreshold`), run
//! once per decision on the decider's scale.

use serde::{Deserialize, Serialize};

use crate::config::fmt_ms;

/// The PodAutoscaler's `Active` condition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Activity {
    /// `Active=Unknown`: activating (a new PA starts here).
    #[default]
    Activating,
    /// `Active=True`.
    Active,
    /// `Active=False`.
    Inactive,
}

/// The condition and when it last changed (`lastTransitionTime`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(default)]
    pub activity: Activity,
    #[serde(default)]
    pub since_ms: i64,
}

impl Condition {
    /// Mark the condition; the transition time moves only when it changes.
    pub fn mark(&mut self, activity: Activity, now_ms: i64) {
        if self.activity != activity {
            self.activity = activity;
            self.since_ms = now_ms;
        }
    }

    /// Knative `ActiveFor` / `InactiveFor`: time in `activity`, or none when not in it.
    pub fn time_in(&self, activity: Activity, now_ms: i64) -> Option<i64> {
        (self.activity == activity).then(|| now_ms - self.since_ms)
    }
}

/// The knobs the reconciler reads.
pub struct Bounds {
    pub min_scale: u32,
    /// 0 = unlimited.
    pub max_scale: u32,
    pub initial_scale: u32,
    pub enable_scale_to_zero: bool,
    pub stable_ms: i64,
    /// `max(scaleToZeroGracePeriod, scaleToZeroPodRetentionPeriod)`.
    pub zero_wait_ms: i64,
    /// `scaleToZeroPodRetentionPeriod`.
    pub retention_ms: i64,
}

/// What `scale` returns: the scale (−1 = unknown) and whether it is written to the
/// workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scaled {
    pub want: i64,
    pub apply: bool,
    pub why: String,
}

/// `scaler.go` `scale(desiredScale)` up to writing the scale. `desired` is the decider's
/// scale, −1 while it has none.
pub fn scale(b: &Bounds, cond: &Condition, initialized: bool, desired: i64, now_ms: i64) -> Scaled {
    if desired < 0 && cond.activity != Activity::Activating {
        return Scaled {
            want: desired,
            apply: false,
            why: "no metrics yet".into(),
        };
    }
    let mut min = i64::from(b.min_scale);
    if b.initial_scale > 1 && !initialized {
        min = min.max(i64::from(b.initial_scale));
    }
    let max = i64::from(b.max_scale);
    let mut desired = desired;
    if desired < min {
        desired = min;
    } else if max != 0 && desired > max {
        desired = max;
    }
    handle_scale_to_zero(b, cond, desired, now_ms)
}

/// `handleScaleToZero`, with the activator in the path whenever the PA is inactive (the
/// probe succeeds). Not reproduced (README, "Conformance"): the SKS proxy-mode fast path
/// and the activation timeout.
fn handle_scale_to_zero(b: &Bounds, cond: &Condition, desired: i64, now_ms: i64) -> Scaled {
    let s = |want, apply, why: &str| Scaled {
        want,
        apply,
        why: why.to_string(),
    };
    if desired != 0 {
        return s(desired, true, "");
    }
    if !b.enable_scale_to_zero {
        return s(1, true, "scale to zero disabled: keeping 1");
    }
    match cond.activity {
        Activity::Activating => s(-1, false, "activating: waiting for pods before scaling to zero"),
        Activity::Active => {
            if cond.time_in(Activity::Active, now_ms).unwrap_or(0) >= b.stable_ms {
                let why = format!(
                    "no traffic for the stable window since the pods were ready: inactive, scale to zero after {}",
                    fmt_ms(b.zero_wait_ms)
                );
                s(0, false, &why)
            } else {
                s(1, true, "active for less than the stable window: keeping 1")
            }
        }
        Activity::Inactive => {
            let inactive = cond.time_in(Activity::Inactive, now_ms).unwrap_or(0);
            let (i, w) = (fmt_ms(inactive), fmt_ms(b.zero_wait_ms));
            if inactive >= b.zero_wait_ms {
                s(
                    0,
                    true,
                    &format!("inactive for {i} >= grace {w}: scaling to zero"),
                )
            } else {
                s(0, false, &format!("inactive for {i} of the {w} grace period"))
            }
        }
    }
}

/// `computeActiveCondition(want, ready)` after the decision: marks the scale target
/// initialised and moves the `Active` condition.
pub fn observe(b: &Bounds, cond: &mut Condition, initialized: &mut bool, want: i64, ready: u32, now_ms: i64) {
    let ready = i64::from(ready);
    let min = i64::from(b.min_scale);
    let min_ready = if *initialized {
        min.max(1)
    } else {
        min.max(i64::from(b.initial_scale))
    };
    if ready >= min_ready {
        *initialized = true;
    }
    if want == 0 || min_ready == 0 {
        cond.mark(Activity::Inactive, now_ms);
    } else if ready < min_ready {
        if want > 0 || cond.activity != Activity::Inactive {
            cond.mark(Activity::Activating, now_ms);
        } else {
            cond.mark(Activity::Inactive, now_ms);
        }
    } else if want > 0 || cond.activity != Activity::Inactive {
        cond.mark(Activity::Active, now_ms);
    }
}
