//! Scenario entries -> what the controller would see: one annotation map per entry,
//! parsed by [`WorkloadSpec::from_annotations`], resolved by [`Plan::resolve`], each
//! policy's config checked by the policy itself.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::scenario::{Baseline, Loaded, MAX_SIMULATED_REPLICAS, PolicyEntry};
use super::trace::Trace;
use super::{BASELINE, SimError};
use crate::core::spec;
use crate::core::{Plan, WorkloadSpec};
use crate::runtime::{Registry, Runtime};

/// One column of the scorecard: a workload with its policies.
pub struct Entry {
    pub name: String,
    pub policy_text: String,
    pub spec: WorkloadSpec,
    pub plan: Plan,
}

/// Everything a run needs, checked.
pub struct Prepared {
    pub loaded: Loaded,
    pub trace: Arc<Trace>,
    pub entries: Vec<Entry>,
    /// Simulated span, ms from the trace's first row.
    pub from_ms: i64,
    pub to_ms: i64,
    pub registry: Arc<Registry>,
    /// Keep a decision log per entry: None (no), Some(gzip?) (see [`crate::core::decision_log::Buffer`]).
    pub decision_log: Option<bool>,
}

/// Load the trace, build and check every entry (the HPA baseline first).
pub fn prepare(loaded: Loaded, registry: Arc<Registry>) -> Result<Prepared, SimError> {
    prepare_with(loaded, registry, None)
}

/// As [`prepare`]; `embedded_trace` replaces reading the trace file (the bundled default).
pub fn prepare_with(
    loaded: Loaded,
    registry: Arc<Registry>,
    embedded_trace: Option<&str>,
) -> Result<Prepared, SimError> {
    let s = &loaded.scenario;
    let trace_path = loaded.relative(&s.trace.file);
    let mut trace = match embedded_trace {
        Some(text) => Trace::parse(&trace_path, text, s.trace.unit, s.trace.scale)?,
        None => Trace::load(&trace_path, s.trace.unit, s.trace.scale)?,
    };
    trace.stepwise = s.trace.interpolate == super::scenario::Interpolate::Step;
    check_peak_need(&loaded, &trace)?;
    let trace = Arc::new(trace);
    let from_ms = s.trace.from.map_or(0, |m| m.0);
    if from_ms >= trace.end_ms() {
        return Err(loaded.error("from", "starts after the end of the trace"));
    }
    let to_ms = match s.trace.duration {
        Some(d) if d.0 > 0 => (from_ms + d.0).min(trace.end_ms()),
        Some(_) => return Err(loaded.error("duration", "must be > 0")),
        None => trace.end_ms(),
    };

    let mut entries = Vec::new();
    if s.jobs.is_none() {
        let utilization = match &s.baseline {
            None | Some(Baseline::Enabled(true)) => Some(0.7),
            Some(Baseline::Enabled(false)) => None,
            Some(Baseline::Config(b)) => Some(b.target_utilization),
        };
        if let Some(u) = utilization {
            let cap = s.capacity_per_replica.unwrap_or(1.0);
            let entry = PolicyEntry {
                name: Some(BASELINE.into()),
                policy: "hpa".into(),
                config: Some(json!({"targets": [{"signal": "load", "averageValue": cap * u}]})),
                behavior: Some(json!({})),
                fallback: None,
                min_replicas: None,
                max_replicas: None,
                interval: None,
            };
            entries.push(build(&loaded, &registry, &entry, None)?);
        }
    }
    for (i, p) in s.policies.iter().enumerate() {
        entries.push(build(&loaded, &registry, p, Some(i))?);
    }
    Ok(Prepared {
        loaded,
        trace,
        entries,
        from_ms,
        to_ms,
        registry,
        decision_log: None,
    })
}

/// A registry with the built-ins and the scenario's `policyDir`, if any.
pub fn registry_for(loaded: &Loaded) -> Result<Arc<Registry>, SimError> {
    let rt = Runtime::deterministic(crate::runtime::default_cache_dir())
        .map_err(|e| SimError::Runtime(format!("cannot start the wasm runtime: {e}")))?;
    let dir = loaded.scenario.policy_dir.as_ref().map(|d| loaded.relative(d));
    if let Some(d) = &dir
        && !d.is_dir()
    {
        return Err(loaded.error("policyDir", format!("{} is not a directory", d.display())));
    }
    let reg = Registry::new(rt, dir);
    reg.scan();
    Ok(reg)
}

fn build(
    loaded: &Loaded,
    registry: &Registry,
    p: &PolicyEntry,
    index: Option<usize>,
) -> Result<Entry, SimError> {
    let s = &loaded.scenario;
    let fail = |field: &str, msg: String| match index {
        Some(i) => loaded.policy_error(i, field, msg),
        None => loaded.error("baseline", msg),
    };
    let mut a = BTreeMap::new();
    a.insert(spec::POLICY.to_string(), p.policy.clone());
    if let Some(c) = &p.config {
        a.insert(spec::CONFIG.to_string(), json_text(c));
    }
    if let Some(b) = &p.behavior {
        a.insert(spec::BEHAVIOR.to_string(), json_text(b));
    }
    if let Some(f) = &p.fallback {
        a.insert(spec::FALLBACK.to_string(), json_text(f));
    }
    a.insert(
        spec::MIN_REPLICAS.to_string(),
        p.min_replicas.unwrap_or(s.min_replicas).to_string(),
    );
    a.insert(
        spec::MAX_REPLICAS.to_string(),
        p.max_replicas.unwrap_or(s.max_replicas).to_string(),
    );
    a.insert(
        spec::INTERVAL.to_string(),
        p.interval
            .clone()
            .unwrap_or_else(|| format!("{}ms", s.interval.0)),
    );
    let spec = WorkloadSpec::from_annotations(&a, s.max_replicas).map_err(|e| {
        let field = match e.annotation.as_str() {
            spec::POLICY => "policy",
            spec::CONFIG => "config",
            spec::BEHAVIOR => "behavior",
            spec::FALLBACK => "fallback",
            spec::MIN_REPLICAS => "minReplicas",
            spec::MAX_REPLICAS => "maxReplicas",
            spec::INTERVAL => "interval",
            _ => "policy",
        };
        fail(field, format!("{} ({})", e.message, e.annotation))
    })?;
    let plan = Plan::resolve(registry, &spec).map_err(|e| fail("policy", e.to_string()))?;
    for (key, policy, config) in &plan.policies {
        policy
            .validate_config(config)
            .map_err(|e| fail("config", format!("policy '{key}' rejects its config: {e}")))?;
    }
    Ok(Entry {
        name: p.name.clone().unwrap_or_else(|| p.policy.clone()),
        policy_text: p.policy.clone(),
        spec,
        plan,
    })
}

/// Refuse a `capacityPerReplica` so small that the trace's peak would need more replicas
/// than the simulator holds: an answer computed under such bounds would only measure them.
fn check_peak_need(loaded: &Loaded, trace: &Trace) -> Result<(), SimError> {
    let Some(cap) = loaded.scenario.capacity_per_replica else {
        return Ok(());
    };
    let peak = trace.rate_quantile(1.0);
    let need = peak / cap;
    if need > f64::from(MAX_SIMULATED_REPLICAS) {
        return Err(loaded.error(
            "capacityPerReplica",
            format!(
                "{cap} per replica: the trace's peak ({peak:.6} per second) would need {need:.0} replicas, more than the simulator holds (at most {MAX_SIMULATED_REPLICAS}); is the unit or 'scale' right?"
            ),
        ));
    }
    Ok(())
}

fn json_text(v: &Value) -> String {
    v.to_string()
}
