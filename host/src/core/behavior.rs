//! HPA `autoscaling/v2` `behavior`, with the HPA's own defaults and semantics
//! (`pkg/controller/podautoscaler/horizontal.go`: `stabilizeRecommendationWithBehaviors`,
//! `calculateScaleUpLimitWithScalingRules`, `calculateScaleDownLimitWithBehaviors`).
//! Written in the annotation exactly as in an HPA spec.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Behavior {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_up: Option<ScalingRules>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down: Option<ScalingRules>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScalingRules {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stabilization_window_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select_policy: Option<SelectPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policies: Option<Vec<ScalingPolicy>>,
    /// Relative change of replicas ignored in this direction (KEP-4951). Default 0: the
    /// policy applies its own metric tolerance (the hpa policy uses the HPA's 0.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SelectPolicy {
    Max,
    Min,
    Disabled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PolicyType {
    Pods,
    Percent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScalingPolicy {
    #[serde(rename = "type")]
    pub kind: PolicyType,
    pub value: i64,
    pub period_seconds: i64,
}

/// One direction's rules with every default filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    pub stabilization_window_seconds: i64,
    pub select_policy: SelectPolicy,
    pub policies: Vec<ScalingPolicy>,
    pub tolerance: f64,
}

impl Behavior {
    /// Scale-up rules; HPA defaults: no stabilization, +100 % or +4 pods per 15 s, Max.
    pub fn up(&self) -> Rules {
        resolve(
            self.scale_up.as_ref(),
            0,
            vec![
                ScalingPolicy {
                    kind: PolicyType::Percent,
                    value: 100,
                    period_seconds: 15,
                },
                ScalingPolicy {
                    kind: PolicyType::Pods,
                    value: 4,
                    period_seconds: 15,
                },
            ],
        )
    }

    /// Scale-down rules; HPA defaults: 300 s stabilization, -100 % per 15 s, Max.
    pub fn down(&self) -> Rules {
        resolve(
            self.scale_down.as_ref(),
            300,
            vec![ScalingPolicy {
                kind: PolicyType::Percent,
                value: 100,
                period_seconds: 15,
            }],
        )
    }

    /// The HPA's validation rules; errors name the field.
    pub fn validate(&self) -> Result<(), String> {
        for (dir, rules) in [("scaleUp", &self.scale_up), ("scaleDown", &self.scale_down)] {
            let Some(r) = rules else { continue };
            if let Some(w) = r.stabilization_window_seconds
                && !(0..=3600).contains(&w)
            {
                return Err(format!(
                    "{dir}.stabilizationWindowSeconds must be in 0..=3600, got {w}"
                ));
            }
            if let Some(t) = r.tolerance
                && !(t.is_finite() && (0.0..1.0).contains(&t))
            {
                return Err(format!("{dir}.tolerance must be in [0, 1), got {t}"));
            }
            for (i, p) in r.policies.iter().flatten().enumerate() {
                if p.value <= 0 {
                    return Err(format!("{dir}.policies[{i}].value must be > 0, got {}", p.value));
                }
                if !(1..=1800).contains(&p.period_seconds) {
                    return Err(format!(
                        "{dir}.policies[{i}].periodSeconds must be in 1..=1800, got {}",
                        p.period_seconds
                    ));
                }
            }
            if r.policies.as_ref().is_some_and(Vec::is_empty)
                && r.select_policy != Some(SelectPolicy::Disabled)
            {
                return Err(format!(
                    "{dir}.policies must not be empty unless selectPolicy is Disabled"
                ));
            }
        }
        Ok(())
    }
}

fn resolve(rules: Option<&ScalingRules>, window: i64, policies: Vec<ScalingPolicy>) -> Rules {
    let r = rules.cloned().unwrap_or_default();
    Rules {
        stabilization_window_seconds: r.stabilization_window_seconds.unwrap_or(window),
        select_policy: r.select_policy.unwrap_or(SelectPolicy::Max),
        policies: r.policies.unwrap_or(policies),
        tolerance: r.tolerance.unwrap_or(0.0),
    }
}
