//! The host's guardrails, applied to every policy's answer: min/max, HPA behavior
//! (stabilization windows and rate policies), tolerance, fail-static with KEDA-style
//! fallback. Pure: the state they need is in [`GuardState`], persisted by the adapter.

use serde::{Deserialize, Serialize};

use super::behavior::{Behavior, PolicyType, Rules, SelectPolicy};

/// What the guardrails remember between evaluations of one workload.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GuardState {
    /// (at_ms, recommended replicas) inside the longest stabilization window.
    #[serde(default)]
    pub recommendations: Vec<(i64, u32)>,
    /// (at_ms, replicas added) of recent scale-ups.
    #[serde(default)]
    pub scale_up_events: Vec<(i64, u32)>,
    /// (at_ms, replicas removed) of recent scale-downs.
    #[serde(default)]
    pub scale_down_events: Vec<(i64, u32)>,
    /// Evaluations in a row that produced no usable answer.
    #[serde(default)]
    pub consecutive_failures: u32,
    /// The HPA behavior has seen this workload: its replicas when first seen went into
    /// `recommendations` (the HPA's `recordInitialRecommendation`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub seen: bool,
}

impl GuardState {
    /// What is worth persisting: everything but the newest recommendation's time, which
    /// moves on every evaluation at a steady decision (writing it each time would cost an
    /// annotation PATCH per evaluation; [`GuardState::resume`] restores its meaning).
    pub fn without_newest_time(&self) -> GuardState {
        let mut g = self.clone();
        if let Some(last) = g.recommendations.last_mut() {
            last.0 = 0;
        }
        g
    }

    /// State read back from where it was persisted (a restart, a new leader): the newest
    /// recommendation was still the decision when that controller stopped, which is later
    /// than its persisted time, so take it as current until `now_ms`. That errs towards
    /// holding: a scale-down waits at most one stabilization window longer, never less.
    pub fn resume(&mut self, now_ms: i64) {
        if let Some(last) = self.recommendations.last_mut() {
            last.0 = last.0.max(now_ms);
        }
    }
}

/// KEDA-style fallback (`fallback.failureThreshold`, `fallback.replicas`, `behavior`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Fallback {
    pub failure_threshold: u32,
    pub replicas: u32,
    #[serde(default)]
    pub behavior: FallbackBehavior,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FallbackBehavior {
    #[default]
    Static,
    CurrentReplicas,
    CurrentReplicasIfHigher,
    CurrentReplicasIfLower,
}

/// Bounds and behavior of one workload.
#[derive(Debug, Clone, PartialEq)]
pub struct Guardrails {
    pub min_replicas: u32,
    pub max_replicas: u32,
    /// HPA behavior, when the workload asks for it. None: the policies own their dynamics
    /// (Knative's windows, CronHPA's jumps, stateful's steps) and only min/max apply;
    /// an empty `{}` gives the HPA's defaults.
    pub behavior: Option<Behavior>,
    pub fallback: Option<Fallback>,
}

/// The guardrails' verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub replicas: u32,
    /// Why the verdict differs from the proposal (empty when it does not).
    pub notes: Vec<String>,
}

impl Guardrails {
    /// Apply to a proposal (the policies' composed answer). `current` is the workload's
    /// replicas now. Updates `state` (recommendation history; scale events are recorded
    /// by [`Guardrails::record_scale`] once the adapter actually scaled).
    pub fn apply(&self, state: &mut GuardState, now_ms: i64, current: u32, proposal: u32) -> Verdict {
        state.consecutive_failures = 0;
        let mut notes = Vec::new();
        let Some(behavior) = &self.behavior else {
            return self.bounded(proposal, notes);
        };
        if let Some(v) = self.hpa_first_steps(state, now_ms, current) {
            return v;
        }
        let up = behavior.up();
        let down = behavior.down();

        let mut desired = proposal;
        if desired > current && within_tolerance(current, desired, up.tolerance) {
            notes.push(format!("within scale-up tolerance {}", up.tolerance));
            desired = current;
        } else if desired < current && within_tolerance(current, desired, down.tolerance) {
            notes.push(format!("within scale-down tolerance {}", down.tolerance));
            desired = current;
        }

        // Stabilization: the safest recommendation inside each window.
        let horizon = up
            .stabilization_window_seconds
            .max(down.stabilization_window_seconds)
            * 1000;
        state
            .recommendations
            .retain(|(at, _)| now_ms - *at < horizon.max(1));
        let up_cut = now_ms - up.stabilization_window_seconds * 1000;
        let down_cut = now_ms - down.stabilization_window_seconds * 1000;
        let (mut up_rec, mut down_rec) = (desired, desired);
        for &(at, r) in &state.recommendations {
            if at > up_cut {
                up_rec = up_rec.min(r);
            }
            if at > down_cut {
                down_rec = down_rec.max(r);
            }
        }
        // A run of equal recommendations needs only its newest time: the window queries
        // above ("any at > cut") and the pruning give the same answers, and at a steady
        // decision the history stays one entry instead of growing by one per evaluation.
        match state.recommendations.last_mut() {
            Some(last) if last.1 == desired => last.0 = now_ms,
            _ => state.recommendations.push((now_ms, desired)),
        }
        let stabilized = current.clamp(up_rec.min(down_rec), down_rec.max(up_rec));
        if stabilized != desired {
            notes.push(format!("stabilized {desired} -> {stabilized}"));
        }

        // Rate limits, then bounds (the HPA's order).
        let mut replicas = stabilized;
        if replicas > current {
            let limit = scale_up_limit(current, state, &up, now_ms).max(current);
            if replicas > limit && limit < self.max_replicas {
                notes.push(format!("scale-up limited to {limit} by behavior.scaleUp"));
                replicas = limit;
            }
        } else if replicas < current {
            let limit = scale_down_limit(current, state, &down, now_ms).min(current);
            if replicas < limit && limit > self.min_replicas {
                notes.push(format!("scale-down limited to {limit} by behavior.scaleDown"));
                replicas = limit;
            }
        }
        self.bounded(replicas, notes)
    }

    /// What the HPA does before it reads any metric (`reconcileAutoscaler`): the first
    /// time it sees a workload it records the current replicas as a recommendation (so a
    /// stabilization window holds from there: a new HPA scales down only after the
    /// scale-down window, and up only after the scale-up window); replicas outside
    /// [min, max] go to the nearest bound at once, with no stabilization or rate limit and
    /// nothing recorded. Only with a behavior (the HPA's semantics).
    fn hpa_first_steps(&self, state: &mut GuardState, now_ms: i64, current: u32) -> Option<Verdict> {
        self.behavior.as_ref()?;
        if !state.seen {
            state.seen = true;
            state.recommendations.push((now_ms, current));
        }
        let (min, max) = (self.min_replicas.min(self.max_replicas), self.max_replicas);
        if current > max || current < min {
            let replicas = current.clamp(min, max);
            return Some(Verdict {
                replicas,
                notes: vec![format!("{current} replicas outside [{min}, {max}] -> {replicas}")],
            });
        }
        None
    }

    fn bounded(&self, replicas: u32, mut notes: Vec<String>) -> Verdict {
        let bounded = replicas.clamp(self.min_replicas.min(self.max_replicas), self.max_replicas);
        if bounded != replicas {
            notes.push(format!(
                "clamped to [{}, {}]",
                self.min_replicas, self.max_replicas
            ));
        }
        Verdict {
            replicas: bounded,
            notes,
        }
    }

    /// No usable answer this time: keep `current` (fail-static), or after
    /// `fallback.failureThreshold` failures in a row, the fallback replicas.
    pub fn on_failure(&self, state: &mut GuardState, now_ms: i64, current: u32) -> Verdict {
        state.consecutive_failures = state.consecutive_failures.saturating_add(1);
        let n = state.consecutive_failures;
        if let Some(mut v) = self.hpa_first_steps(state, now_ms, current) {
            v.notes.insert(0, format!("{n} failed in a row"));
            return v;
        }
        match &self.fallback {
            Some(f) if n >= f.failure_threshold => {
                let r = match f.behavior {
                    FallbackBehavior::Static => f.replicas,
                    FallbackBehavior::CurrentReplicas => current,
                    FallbackBehavior::CurrentReplicasIfHigher => current.max(f.replicas),
                    FallbackBehavior::CurrentReplicasIfLower => current.min(f.replicas),
                };
                let r = r.clamp(self.min_replicas.min(self.max_replicas), self.max_replicas);
                Verdict {
                    replicas: r,
                    notes: vec![format!("fallback after {n} failed evaluations -> {r}")],
                }
            }
            _ => Verdict {
                replicas: current,
                notes: vec![format!("fail-static at {current} ({n} failed in a row)")],
            },
        }
    }

    /// Remember a scale that happened, for the rate policies. As the HPA's
    /// `storeScaleEvent`: an event older than its direction's longest policy period is
    /// replaced by the new one (the last such), else the new one is added. Older events are
    /// not dropped otherwise: both directions' limits count both directions' events within
    /// their own periods, which may be longer than the other direction's.
    pub fn record_scale(&self, state: &mut GuardState, now_ms: i64, from: u32, to: u32) {
        let Some(behavior) = &self.behavior else { return };
        let longest = |r: &Rules| r.policies.iter().map(|p| p.period_seconds).max().unwrap_or(0) * 1000;
        let store = |events: &mut Vec<(i64, u32)>, keep_ms: i64, change: u32| {
            // "Older": at least a period old (the HPA reads the clock after stamping, so an
            // event exactly one period old is outdated there).
            match events.iter().rposition(|(at, _)| *at <= now_ms - keep_ms) {
                Some(i) => events[i] = (now_ms, change),
                None => events.push((now_ms, change)),
            }
        };
        if to > from {
            store(&mut state.scale_up_events, longest(&behavior.up()), to - from);
        } else if to < from {
            store(&mut state.scale_down_events, longest(&behavior.down()), from - to);
        }
    }
}

fn within_tolerance(current: u32, desired: u32, tolerance: f64) -> bool {
    tolerance > 0.0 && current > 0 && (f64::from(desired) / f64::from(current) - 1.0).abs() <= tolerance
}

fn changed_in_period(events: &[(i64, u32)], now_ms: i64, period_s: i64) -> i64 {
    events
        .iter()
        .filter(|(at, _)| now_ms - *at < period_s * 1000)
        .map(|(_, n)| i64::from(*n))
        .sum()
}

/// Replicas at the start of a policy period: the scale events of both directions inside
/// it undone.
fn period_start(current: u32, state: &GuardState, now_ms: i64, period_s: i64) -> i64 {
    i64::from(current) - changed_in_period(&state.scale_up_events, now_ms, period_s)
        + changed_in_period(&state.scale_down_events, now_ms, period_s)
}

/// `calculateScaleUpLimitWithScalingRules`.
fn scale_up_limit(current: u32, state: &GuardState, rules: &Rules, now_ms: i64) -> u32 {
    if rules.select_policy == SelectPolicy::Disabled {
        return current;
    }
    let mut result: Option<i64> = None;
    for p in &rules.policies {
        let start = period_start(current, state, now_ms, p.period_seconds);
        let proposed = match p.kind {
            PolicyType::Pods => start + p.value,
            PolicyType::Percent => (start as f64 * (1.0 + p.value as f64 / 100.0)).ceil() as i64,
        };
        result = Some(match (result, rules.select_policy) {
            (None, _) => proposed,
            (Some(r), SelectPolicy::Min) => r.min(proposed),
            (Some(r), _) => r.max(proposed),
        });
    }
    to_u32(result.unwrap_or(i64::from(current)))
}

/// `calculateScaleDownLimitWithBehaviors`.
fn scale_down_limit(current: u32, state: &GuardState, rules: &Rules, now_ms: i64) -> u32 {
    if rules.select_policy == SelectPolicy::Disabled {
        return current;
    }
    let mut result: Option<i64> = None;
    for p in &rules.policies {
        let start = period_start(current, state, now_ms, p.period_seconds);
        let proposed = match p.kind {
            PolicyType::Pods => start - p.value,
            PolicyType::Percent => (start as f64 * (1.0 - p.value as f64 / 100.0)) as i64,
        };
        // Max selects the biggest change, i.e. the fewest replicas.
        result = Some(match (result, rules.select_policy) {
            (None, _) => proposed,
            (Some(r), SelectPolicy::Min) => r.max(proposed),
            (Some(r), _) => r.min(proposed),
        });
    }
    to_u32(result.unwrap_or(i64::from(current)))
}

fn to_u32(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::behavior::{ScalingPolicy, ScalingRules};

    fn hpa(min: u32, max: u32) -> Guardrails {
        Guardrails {
            min_replicas: min,
            max_replicas: max,
            behavior: Some(Behavior::default()),
            fallback: None,
        }
    }

    #[test]
    fn default_scale_up_is_double_or_plus_four_per_15s() {
        let g = hpa(1, 100);
        let mut s = GuardState::default();
        // 2 -> 50 wanted: max(2*2, 2+4) = 6.
        assert_eq!(g.apply(&mut s, 0, 2, 50).replicas, 6);
        g.record_scale(&mut s, 0, 2, 6);
        // 10 s later, still inside the 15 s period: start = 6 - 4 = 2 -> limit 6.
        assert_eq!(g.apply(&mut s, 10_000, 6, 50).replicas, 6);
        // 15 s later, a fresh period: max(12, 10) = 12.
        assert_eq!(g.apply(&mut s, 15_000, 6, 50).replicas, 12);
    }

    #[test]
    fn default_scale_down_waits_for_the_300s_window() {
        let g = hpa(1, 100);
        let mut s = GuardState::default();
        assert_eq!(g.apply(&mut s, 0, 10, 10).replicas, 10);
        // Load drops: the window still holds the 10 recommendation.
        assert_eq!(g.apply(&mut s, 60_000, 10, 3).replicas, 10);
        assert_eq!(g.apply(&mut s, 299_000, 10, 3).replicas, 10);
        // 300 s after the last 10: the max in the window is 3.
        assert_eq!(g.apply(&mut s, 300_001, 10, 3).replicas, 3);
    }

    #[test]
    fn pods_policy_and_min_select_limit_scale_down() {
        let behavior = Behavior {
            scale_up: None,
            scale_down: Some(ScalingRules {
                stabilization_window_seconds: Some(0),
                select_policy: Some(SelectPolicy::Min),
                policies: Some(vec![
                    ScalingPolicy {
                        kind: PolicyType::Pods,
                        value: 1,
                        period_seconds: 60,
                    },
                    ScalingPolicy {
                        kind: PolicyType::Percent,
                        value: 50,
                        period_seconds: 60,
                    },
                ]),
                tolerance: None,
            }),
        };
        let g = Guardrails {
            behavior: Some(behavior),
            ..hpa(1, 100)
        };
        let mut s = GuardState::default();
        let v = g.apply(&mut s, 0, 10, 2);
        assert_eq!(v.replicas, 9, "{:?}", v.notes);
        g.record_scale(&mut s, 0, 10, 9);
        assert_eq!(
            g.apply(&mut s, 30_000, 9, 2).replicas,
            9,
            "one pod per 60 s already used"
        );
        assert_eq!(g.apply(&mut s, 60_000, 9, 2).replicas, 8);
    }

    #[test]
    fn bounds_and_disabled_direction() {
        let mut g = hpa(2, 5);
        let mut s = GuardState::default();
        // The first sight of 3 replicas is a recommendation: it holds the scale-down.
        assert_eq!(g.apply(&mut s, 0, 3, 1).replicas, 3);
        // A recommendation of 3 in the window now holds the next scale-down.
        assert_eq!(g.apply(&mut s, 1_000, 3, 3).replicas, 3);
        assert_eq!(
            g.apply(&mut s, 2_000, 3, 1).replicas,
            3,
            "down stabilization holds"
        );
        g.behavior.as_mut().unwrap().scale_up = Some(ScalingRules {
            select_policy: Some(SelectPolicy::Disabled),
            ..Default::default()
        });
        assert_eq!(g.apply(&mut s, 0, 3, 5).replicas, 3);
    }

    /// Found by the HPA conformance test (tests/conformance/hpa.rs): the HPA records a
    /// workload's replicas as a recommendation the first time it sees it
    /// (`recordInitialRecommendation`), so the stabilization windows hold from there.
    #[test]
    fn a_new_workload_is_held_by_its_first_replicas_for_a_window() {
        let g = Guardrails {
            behavior: Some(Behavior {
                scale_up: Some(ScalingRules {
                    stabilization_window_seconds: Some(120),
                    ..Default::default()
                }),
                scale_down: None,
            }),
            ..hpa(1, 9)
        };
        let mut s = GuardState::default();
        assert_eq!(g.apply(&mut s, 0, 8, 30).replicas, 8, "8 is in the up window");
        assert_eq!(g.apply(&mut s, 120_000, 8, 30).replicas, 9);

        let g = hpa(1, 100);
        let mut s = GuardState::default();
        assert_eq!(
            g.apply(&mut s, 0, 35, 27).replicas,
            35,
            "35 is in the down window"
        );
        assert_eq!(g.apply(&mut s, 300_000, 35, 27).replicas, 27);
        // Seen once: a later empty window is not a new workload.
        assert!(s.seen);
    }

    /// Found by the HPA conformance test: replicas outside [min, max] go to the bound at
    /// once, before any metric, stabilization or rate limit (`reconcileAutoscaler`).
    #[test]
    fn replicas_outside_the_bounds_go_to_the_nearest_bound_at_once() {
        let g = Guardrails {
            behavior: Some(Behavior {
                scale_up: Some(ScalingRules {
                    policies: Some(vec![ScalingPolicy {
                        kind: PolicyType::Pods,
                        value: 1,
                        period_seconds: 60,
                    }]),
                    ..Default::default()
                }),
                scale_down: None,
            }),
            ..hpa(5, 12)
        };
        let mut s = GuardState::default();
        assert_eq!(g.apply(&mut s, 0, 3, 25).replicas, 5, "not 4 (one pod per 60 s)");
        let mut s = GuardState::default();
        assert_eq!(g.apply(&mut s, 0, 20, 1).replicas, 12, "not held, not 5");
        let mut s = GuardState::default();
        assert_eq!(g.on_failure(&mut s, 0, 3).replicas, 5, "even without an answer");
    }

    /// Found by the HPA conformance test: a policy period starts from the replicas before
    /// every scale inside it, up and down alike (`periodStartReplicas = current - added +
    /// deleted`), so a scale-down just before frees a scale-up back to the level before it.
    #[test]
    fn a_period_counts_the_scales_of_both_directions() {
        let g = Guardrails {
            behavior: Some(Behavior {
                scale_up: Some(ScalingRules {
                    stabilization_window_seconds: Some(0),
                    policies: Some(vec![ScalingPolicy {
                        kind: PolicyType::Percent,
                        value: 100,
                        period_seconds: 60,
                    }]),
                    ..Default::default()
                }),
                scale_down: Some(ScalingRules {
                    stabilization_window_seconds: Some(0),
                    ..Default::default()
                }),
            }),
            ..hpa(1, 100)
        };
        let mut s = GuardState::default();
        assert_eq!(g.apply(&mut s, 0, 16, 5).replicas, 5);
        g.record_scale(&mut s, 0, 16, 5);
        // 30 s later: the period started at 16, so up to 32 (not 10).
        assert_eq!(g.apply(&mut s, 30_000, 5, 40).replicas, 32);
        // The scale-down is older than the scale-down policy's 15 s but inside the
        // scale-up's 60 s: it is kept until a newer scale-down replaces it.
        g.record_scale(&mut s, 30_000, 5, 32);
        assert_eq!(s.scale_down_events, vec![(0, 11)]);
        g.record_scale(&mut s, 45_000, 32, 30);
        assert_eq!(s.scale_down_events, vec![(45_000, 2)]);
        // Exactly one period old is outdated too.
        g.record_scale(&mut s, 60_000, 30, 29);
        assert_eq!(s.scale_down_events, vec![(60_000, 1)]);
    }

    #[test]
    fn fail_static_then_fallback() {
        let mut g = hpa(1, 10);
        let mut s = GuardState::default();
        assert_eq!(g.on_failure(&mut s, 0, 4).replicas, 4);
        g.fallback = Some(Fallback {
            failure_threshold: 3,
            replicas: 7,
            behavior: FallbackBehavior::Static,
        });
        assert_eq!(g.on_failure(&mut s, 0, 4).replicas, 4);
        assert_eq!(g.on_failure(&mut s, 0, 4).replicas, 7);
        g.fallback.as_mut().unwrap().behavior = FallbackBehavior::CurrentReplicasIfHigher;
        assert_eq!(g.on_failure(&mut s, 0, 9).replicas, 9);
        g.apply(&mut s, 0, 4, 4);
        assert_eq!(s.consecutive_failures, 0);
    }

    #[test]
    fn without_behavior_only_bounds_apply() {
        let g = Guardrails {
            behavior: None,
            ..hpa(2, 30)
        };
        let mut s = GuardState::default();
        assert_eq!(g.apply(&mut s, 0, 5, 30).replicas, 30, "no rate limit");
        assert_eq!(g.apply(&mut s, 1_000, 30, 5).replicas, 5, "no stabilization");
        assert_eq!(g.apply(&mut s, 2_000, 5, 0).replicas, 2, "min still applies");
    }

    #[test]
    fn tolerance_ignores_small_changes() {
        let mut g = hpa(1, 100);
        g.behavior.as_mut().unwrap().scale_up = Some(ScalingRules {
            tolerance: Some(0.1),
            ..Default::default()
        });
        let mut s = GuardState::default();
        assert_eq!(g.apply(&mut s, 0, 20, 21).replicas, 20);
        assert_eq!(g.apply(&mut s, 0, 20, 23).replicas, 23);
    }
}
