//! One evaluation of one workload, the path every adapter shares:
//! resolve -> (adapter gathers signals) -> call each policy in its sandbox -> compose
//! (max, the HPA's multi-metric rule) -> guardrails -> outcome. No I/O here.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmscaler_sdk::{Context, Decision, Metric, PoolReplicas, Signal, SignalRequest, Workload};

use super::history_record::{HistoryAnswer, RecordingHistory};
use super::spec::{Mode, Pause, WorkloadSpec};
use super::state::WorkloadState;
use crate::runtime::registry::ResolveError;
use crate::runtime::{EvalError, HistorySource, LoadedPolicy, Registry};

/// The policies of one workload, resolved to what serves them now.
#[derive(Clone)]
pub struct Plan {
    pub policies: Vec<(String, Arc<LoadedPolicy>, String)>,
}

impl Plan {
    /// Resolve every policy the spec names; fails on the first that cannot be served.
    pub fn resolve(registry: &Registry, spec: &WorkloadSpec) -> Result<Self, ResolveError> {
        let policies = spec
            .policies
            .iter()
            .map(|b| {
                Ok((
                    b.reference.key().to_string(),
                    registry.resolve(&b.reference)?,
                    b.config_json.clone(),
                ))
            })
            .collect::<Result<_, ResolveError>>()?;
        Ok(Self { policies })
    }

    /// Which policies' configs to check, as one key: the digest of each component and the
    /// config it gets. Adapters cache [`Plan::rejected_config`] under it, so a config is
    /// validated once per change of either, not once per evaluation.
    pub fn config_key(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for (key, p, config) in &self.policies {
            (key, &p.digest, config).hash(&mut h);
        }
        h.finish()
    }

    /// The first policy whose `validate-config` rejects its config, as a user reads it.
    /// Only a rejection counts: a trap or a deadline there is the policy's own fault and
    /// shows when it evaluates, where the failure threshold and fallback apply.
    pub fn rejected_config(&self) -> Option<String> {
        self.policies
            .iter()
            .find_map(|(key, p, config)| match p.validate_config(config) {
                Err(EvalError::Policy(wasmscaler_sdk::PolicyError::InvalidConfig(m))) => {
                    Some(format!("wasmscaler.io/config: policy '{key}' rejects it: {m}"))
                }
                _ => None,
            })
    }

    /// Every signal the policies declare, merged by name (widest window; required if any
    /// policy requires it). Adapters also gather every signal the workload maps in its
    /// `signals:` config (see [`signal_plan`]).
    pub fn signal_requests(&self) -> Vec<SignalRequest> {
        let mut out: Vec<SignalRequest> = Vec::new();
        for (_, p, _) in &self.policies {
            for r in &p.info.signals {
                match out.iter_mut().find(|o| o.name == r.name) {
                    Some(o) => {
                        o.window_ms = o.window_ms.max(r.window_ms);
                        o.required |= r.required;
                    }
                    None => out.push(r.clone()),
                }
            }
        }
        out
    }
}

/// What the adapter observed for this evaluation.
pub struct Observation {
    pub now_ms: i64,
    /// The workload's facts; `min/max_replicas` are overwritten from the spec.
    pub workload: Workload,
    pub signals: Vec<Signal>,
    /// Signals the adapter could not gather: name -> why.
    pub signal_errors: Vec<(String, String)>,
    pub history: Option<Arc<dyn HistorySource>>,
    /// Keep the `history` import's answers in each [`PolicyRun`] (the decision log records
    /// them). Off, an answer is not copied: a history call can return 20,000 samples.
    pub record_history: bool,
}

/// How one policy fared.
#[derive(Debug, Clone)]
pub struct PolicyRun {
    pub policy: String,
    pub digest: String,
    /// What the component says it is (`describe()`): replay matches a new version by name.
    pub name: String,
    pub version: String,
    /// The exact context handed over (or that would have been, when `called` is false):
    /// what the decision log records and replay hands to another version.
    pub context: Context,
    /// False when the host refused the call (a required signal could not be gathered).
    pub called: bool,
    /// The `history` import's answers during the call, in call order.
    pub history: Vec<HistoryAnswer>,
    pub result: Result<Decision, EvalError>,
    pub latency: Duration,
    /// Fuel the call burned: its cost as the deterministic budget counts it.
    pub fuel: u64,
}

/// What to do with the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Write this many replicas (differs from current).
    Scale { from: u32, to: u32 },
    /// Keep replicas as they are.
    Hold,
    /// Shadow mode: would have scaled to `to`, but does not.
    Shadow { from: u32, to: u32 },
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub runs: Vec<PolicyRun>,
    /// The composed proposal, before guardrails (None when no policy answered).
    pub proposal: Option<u32>,
    /// Replicas after guardrails.
    pub desired: u32,
    pub action: Action,
    /// Jobs to start now (queue policies; max across policies).
    pub jobs: Option<u32>,
    /// Pool split of `desired` (from the policy whose answer won, rescaled if needed).
    pub placement: Vec<PoolReplicas>,
    pub metrics: Vec<Metric>,
    /// Earliest re-evaluation any policy asked for.
    pub recheck_after_ms: Option<u64>,
    /// Human summary for Events and logs.
    pub reason: String,
    /// True when no policy produced a usable answer (fail-static or fallback applied).
    pub failed: bool,
    /// Why no answer was usable, without the live parts of `reason` (failure counters,
    /// measured values): what an adapter compares to tell a new failure from a repeat.
    pub error: Option<String>,
}

impl Outcome {
    /// No policy could be served (a file that does not load, an unknown built-in): the
    /// same fail-static / fallback as a policy error. Shared by every adapter.
    pub fn unresolved(
        spec: &WorkloadSpec,
        state: &mut WorkloadState,
        now_ms: i64,
        current: u32,
        why: String,
    ) -> Self {
        let v = spec.guardrails.on_failure(&mut state.guard, now_ms, current);
        let error = format!("policy unavailable: {why}");
        let mut reason = error.clone();
        for n in &v.notes {
            reason.push_str(&format!("; {n}"));
        }
        Outcome {
            runs: Vec::new(),
            proposal: None,
            desired: v.replicas,
            action: action_for(spec.mode, current, v.replicas),
            jobs: None,
            placement: Vec::new(),
            metrics: Vec::new(),
            recheck_after_ms: None,
            reason,
            failed: true,
            error: Some(error),
        }
    }
}

/// The shortest wait between two evaluations of a workload, whatever a policy asks.
pub const MIN_WAIT_MS: u64 = 100;

impl Outcome {
    /// When to evaluate next: the workload's interval, or sooner when a policy asked
    /// (`recheck_after_ms`: Knative's 2 s tick, a cron boundary), never sooner than
    /// [`MIN_WAIT_MS`]. The rule of every adapter.
    pub fn next_wait_ms(&self, interval_ms: u64) -> u64 {
        self.recheck_after_ms
            .map_or(interval_ms, |r| r.min(interval_ms))
            .max(MIN_WAIT_MS)
    }
}

fn action_for(mode: Mode, current: u32, desired: u32) -> Action {
    if desired == current {
        Action::Hold
    } else if mode == Mode::Shadow {
        Action::Shadow {
            from: current,
            to: desired,
        }
    } else {
        Action::Scale {
            from: current,
            to: desired,
        }
    }
}

/// Evaluate one workload. `state` is updated (policy states, guardrail history).
pub fn evaluate(plan: &Plan, spec: &WorkloadSpec, obs: Observation, state: &mut WorkloadState) -> Outcome {
    let g = &spec.guardrails;
    let current = obs.workload.replicas;
    let mut workload = obs.workload.clone();
    workload.min_replicas = g.min_replicas;
    workload.max_replicas = g.max_replicas;

    let mut runs = Vec::with_capacity(plan.policies.len());
    for (key, policy, config) in &plan.policies {
        let started = Instant::now();
        let one = run_one(
            policy,
            config,
            spec,
            &workload,
            &obs,
            state.policies.get(key).cloned(),
        );
        let result = one.result;
        if let Ok(d) = &result {
            match &d.state {
                Some(s) => state.policies.insert(key.clone(), s.clone()),
                None => state.policies.remove(key),
            };
        }
        runs.push(PolicyRun {
            policy: key.clone(),
            digest: policy.digest.clone(),
            name: policy.info.name.clone(),
            version: policy.info.version.clone(),
            context: one.context,
            called: one.called,
            history: one.history,
            result,
            latency: started.elapsed(),
            fuel: one.fuel,
        });
    }

    let ok: Vec<(&PolicyRun, &Decision)> = runs
        .iter()
        .filter_map(|r| r.result.as_ref().ok().map(|d| (r, d)))
        .collect();
    let failures: Vec<String> = runs
        .iter()
        .filter_map(|r| r.result.as_ref().err().map(|e| format!("{}: {e}", r.policy)))
        .collect();
    let winner = ok.iter().max_by_key(|(_, d)| d.replicas).copied();
    let proposal = winner.map(|(_, d)| d.replicas);

    // The HPA's rule: if any policy failed and the rest propose a scale-down, do not scale.
    let usable = match proposal {
        Some(p) if failures.is_empty() || p >= current => Some(p),
        _ => None,
    };

    let (desired, notes, failed) = match (spec.pause, usable) {
        (Pause::At(n), _) => (
            n.clamp(g.min_replicas.min(g.max_replicas), g.max_replicas),
            vec![format!("paused at {n}")],
            false,
        ),
        (Pause::Hold, _) => (current, vec!["paused".to_string()], false),
        (Pause::No, Some(p)) => {
            let v = g.apply(&mut state.guard, obs.now_ms, current, p);
            (v.replicas, v.notes, false)
        }
        (Pause::No, None) => {
            let v = g.on_failure(&mut state.guard, obs.now_ms, current);
            let mut notes = v.notes;
            if proposal.is_some() {
                notes.insert(0, "a policy failed and the others propose a scale-down".into());
            }
            (v.replicas, notes, true)
        }
    };

    let action = action_for(spec.mode, current, desired);
    let error = failed.then(|| {
        let mut why = failures.join("; ");
        if why.is_empty() {
            why = "no policy produced an answer".into();
        }
        if proposal.is_some() {
            why.push_str("; the others propose a scale-down");
        }
        why
    });

    let mut reason = match winner {
        Some((run, d)) if ok.len() > 1 => format!(
            "{} (max of {} policies, from {}): {}",
            d.replicas,
            ok.len(),
            run.policy,
            d.reason
        ),
        Some((run, d)) => format!("{}: {}", run.policy, d.reason),
        None => "no policy produced an answer".to_string(),
    };
    for f in &failures {
        reason.push_str(&format!("; {f}"));
    }
    for n in &notes {
        reason.push_str(&format!("; {n}"));
    }

    let placement = winner
        .map(|(_, d)| rescale_placement(&d.placement, desired))
        .unwrap_or_default();
    Outcome {
        proposal,
        desired,
        action,
        jobs: bounded_jobs(
            ok.iter().filter_map(|(_, d)| d.jobs).max(),
            g.max_replicas,
            current,
        ),
        placement,
        metrics: ok.iter().flat_map(|(_, d)| d.metrics.iter().cloned()).collect(),
        recheck_after_ms: ok.iter().filter_map(|(_, d)| d.recheck_after_ms).min(),
        reason,
        failed,
        error,
        runs,
    }
}

/// New Jobs a queue policy may start: at most `maxReplicas` unfinished at once
/// (KEDA ScaledJob's `maxReplicaCount`), whatever the policy asked for. `unfinished` is the
/// workload's current replicas, which for a Job-running workload are its pending and
/// running Jobs. Both adapters rely on this bound; neither re-applies it.
fn bounded_jobs(asked: Option<u32>, max_replicas: u32, unfinished: u32) -> Option<u32> {
    asked.map(|n| n.min(max_replicas.saturating_sub(unfinished)))
}

/// One policy's call, with what it was handed.
struct OneRun {
    context: Context,
    called: bool,
    history: Vec<HistoryAnswer>,
    result: Result<Decision, EvalError>,
    fuel: u64,
}

fn run_one(
    policy: &LoadedPolicy,
    config: &str,
    spec: &WorkloadSpec,
    workload: &Workload,
    obs: &Observation,
    state: Option<Vec<u8>>,
) -> OneRun {
    let mut signals = Vec::with_capacity(policy.info.signals.len());
    let missing = required_signal_missing(policy, &obs.signal_errors);
    for req in &policy.info.signals {
        if let Some(s) = obs.signals.iter().find(|s| s.name == req.name) {
            signals.push(s.clone());
        }
    }
    // Signals the workload maps explicitly reach its policies too: a policy may read a
    // signal named in its config (e.g. `targets[].signal: connections`) that its static
    // describe() could not list.
    for s in &obs.signals {
        if spec.signal_sources.contains_key(&s.name) && !signals.iter().any(|x| x.name == s.name) {
            signals.push(s.clone());
        }
    }
    let context = Context {
        now_ms: obs.now_ms,
        workload: workload.clone(),
        config: config.to_string(),
        signals,
        state,
    };
    if let Some(e) = missing {
        return OneRun {
            context,
            called: false,
            history: Vec::new(),
            result: Err(e),
            fuel: 0,
        };
    }
    let recorder = obs
        .history
        .clone()
        .filter(|_| obs.record_history)
        .map(|inner| Arc::new(RecordingHistory::new(inner)));
    let history = match &recorder {
        Some(r) => Some(r.clone() as Arc<dyn HistorySource>),
        None => obs.history.clone(),
    };
    let (result, fuel) = call_policy(policy, &context, history);
    OneRun {
        history: recorder.map(|r| r.take()).unwrap_or_default(),
        result: result.map_err(|e| with_gather_errors(e, policy, spec, obs)),
        context,
        called: true,
        fuel,
    }
}

/// The host's rule before a call: a policy is not called when a signal it requires could
/// not be gathered (the first such signal is named). Replay applies the same rule.
pub fn required_signal_missing(
    policy: &LoadedPolicy,
    signal_errors: &[(String, String)],
) -> Option<EvalError> {
    policy.info.signals.iter().filter(|r| r.required).find_map(|req| {
        signal_errors
            .iter()
            .find(|(n, _)| *n == req.name)
            .map(|(_, why)| {
                EvalError::Policy(wasmscaler_sdk::PolicyError::MissingSignal(format!(
                    "signal '{}' could not be gathered: {why}",
                    req.name
                )))
            })
    })
}

/// The one place a policy is called (every adapter's evaluation and `policy eval`): the
/// sandboxed call with its budget, the decision checked by the runtime, and the fuel it
/// burned.
pub fn call_policy(
    policy: &LoadedPolicy,
    ctx: &Context,
    history: Option<std::sync::Arc<dyn crate::runtime::HistorySource>>,
) -> (Result<Decision, EvalError>, u64) {
    policy.evaluate_metered(ctx, history)
}

/// A policy that went without an optional signal only knows it is missing; the host knows
/// why (a bad source spec, an unreachable server). Say so in the missing-signal error, the
/// text the status and Events carry.
fn with_gather_errors(
    e: EvalError,
    policy: &LoadedPolicy,
    spec: &WorkloadSpec,
    obs: &Observation,
) -> EvalError {
    let EvalError::Policy(wasmscaler_sdk::PolicyError::MissingSignal(msg)) = e else {
        return e;
    };
    let theirs = |name: &str| {
        policy.info.signals.iter().any(|r| r.name == name) || spec.signal_sources.contains_key(name)
    };
    let why: Vec<String> = obs
        .signal_errors
        .iter()
        .filter(|(name, _)| theirs(name))
        .map(|(name, why)| format!("signal '{name}' was not gathered: {why}"))
        .collect();
    if why.is_empty() {
        return EvalError::Policy(wasmscaler_sdk::PolicyError::MissingSignal(msg));
    }
    EvalError::Policy(wasmscaler_sdk::PolicyError::MissingSignal(format!(
        "{msg} ({})",
        why.join("; ")
    )))
}

/// Keep a policy's pool split proportional when the guardrails changed the total.
fn rescale_placement(placement: &[PoolReplicas], total: u32) -> Vec<PoolReplicas> {
    let sum: u32 = placement.iter().map(|p| p.replicas).sum();
    if placement.is_empty() || sum == total {
        return placement.to_vec();
    }
    if sum == 0 {
        let mut out = placement.to_vec();
        out[0].replicas = total;
        return out;
    }
    // Largest-remainder apportionment: exact total, deterministic.
    let mut out: Vec<PoolReplicas> = placement.to_vec();
    let mut rema: Vec<(usize, u64)> = Vec::new();
    let mut given = 0u32;
    for (i, p) in placement.iter().enumerate() {
        let exact = u64::from(p.replicas) * u64::from(total);
        let share = (exact / u64::from(sum)) as u32;
        out[i].replicas = share;
        given += share;
        rema.push((i, exact % u64::from(sum)));
    }
    rema.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    for (i, _) in rema.into_iter().take((total - given) as usize) {
        out[i].replicas += 1;
    }
    out
}

/// Signals an adapter must gather for `plan`, as (request, source spec from the
/// workload's `signals:` config, if any).
/// Declared signals plus those only named in the workload's `signals:` mapping (gathered
/// with the widest declared window).
pub fn signal_plan<'a>(
    plan: &Plan,
    spec: &'a WorkloadSpec,
) -> Vec<(SignalRequest, Option<&'a serde_json::Value>)> {
    let mut requests = plan.signal_requests();
    let widest = requests.iter().map(|r| r.window_ms).max().unwrap_or(0);
    for name in spec.signal_sources.keys() {
        if !requests.iter().any(|r| &r.name == name) {
            requests.push(SignalRequest {
                name: name.clone(),
                window_ms: widest,
                required: false,
                description: "mapped in the workload's signals config".into(),
            });
        }
    }
    requests
        .into_iter()
        .map(|r| {
            let src = spec.signal_sources.get(&r.name);
            (r, src)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_are_bounded_by_max_replicas_minus_the_unfinished_ones() {
        assert_eq!(bounded_jobs(Some(1_000_000), 10, 0), Some(10));
        assert_eq!(bounded_jobs(Some(5), 10, 7), Some(3));
        assert_eq!(bounded_jobs(Some(5), 10, 12), Some(0));
        assert_eq!(bounded_jobs(Some(2), 10, 3), Some(2));
        assert_eq!(bounded_jobs(None, 10, 3), None);
    }

    #[test]
    fn placement_rescales_to_the_guarded_total() {
        let p = vec![
            PoolReplicas {
                pool: "spot".into(),
                replicas: 7,
            },
            PoolReplicas {
                pool: "on-demand".into(),
                replicas: 3,
            },
        ];
        let r = rescale_placement(&p, 5);
        assert_eq!(r.iter().map(|x| x.replicas).sum::<u32>(), 5);
        assert_eq!(r[0].replicas, 4);
        assert_eq!(rescale_placement(&p, 10), p);
    }
}
