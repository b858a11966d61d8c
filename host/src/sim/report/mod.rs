//! What a run shows: the scorecard as a terminal table, as JSON, and as an SVG chart.

pub mod chart;
pub mod equal_cost;
pub mod json;
pub mod table;

use serde::Serialize;

use super::run::Outcome;
use super::score::{Score, round};
use super::setup::Prepared;
use super::{ORACLE, score};

/// The scorecard of one scenario.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub scenario: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The trace's file name.
    pub trace: String,
    pub seed: u64,
    /// Simulated span: offset into the trace and length, hours.
    pub from_hours: f64,
    pub simulated_hours: f64,
    pub interval_seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity_per_replica: Option<f64>,
    /// One row per policy (the HPA baseline first), then the oracle.
    pub scores: Vec<Score>,
    /// The scores read against the scenario's `compareAtEqualCost` curve.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub equal_cost: Option<equal_cost::EqualCost>,
    /// Wall-clock figures; only with `--timings`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timings: Option<Timings>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timings {
    pub wall_seconds: f64,
    /// Per entry: (name, evaluations per second of its own thread, share of its time
    /// inside the sandbox).
    pub entries: Vec<EntryTiming>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryTiming {
    pub name: String,
    pub wall_seconds: f64,
    pub evaluations_per_second: f64,
    pub sandbox_share: f64,
    /// Fuel per evaluation (the budget's count, the same on every machine).
    pub fuel_per_evaluation: score::FuelSpent,
}

/// Build the scorecard. `timings`: keep wall-clock figures (latencies, speed).
pub fn build(p: &Prepared, o: &Outcome, timings: bool) -> Report {
    let s = &p.loaded.scenario;
    let jobs = s.jobs.is_some();
    let prices = (s.prices.on_demand, s.prices.spot);
    let oracle_price = if s.spot.is_some() {
        s.prices.on_demand.min(s.prices.spot)
    } else {
        s.prices.on_demand
    };
    let oracle_cost = o.oracle.replica_ms / 3_600_000.0 * oracle_price;
    let mut scores: Vec<Score> = p
        .entries
        .iter()
        .zip(&o.runs)
        .map(|(e, r)| {
            let mut sc = r.tally.score(&e.name, &e.policy_text, prices, oracle_cost, jobs);
            if !timings {
                sc.decision_latency_us = None;
            }
            sc
        })
        .collect();
    let oracle_hours = o.oracle.replica_ms / 3_600_000.0;
    let simulated_ms = (p.to_ms - p.from_ms).max(1) as f64;
    let oracle_violation_minutes = round(o.oracle.violation_ms as f64 / 60_000.0, 2);
    scores.push(Score {
        name: ORACLE.into(),
        policy: "-".into(),
        evaluations: 0,
        failed_evaluations: 0,
        failures: Vec::new(),
        violation_pct: round(100.0 * o.oracle.violation_ms as f64 / simulated_ms, 3),
        violation_minutes: oracle_violation_minutes,
        // Held to maxReplicas, the oracle violates only where no policy could avoid it.
        violation_minutes_above_max: oracle_violation_minutes,
        unserved_pct: round(100.0 * o.oracle.unserved_share, 3),
        replica_hours: round(oracle_hours, 2),
        cost: round(oracle_cost, 2),
        cost_ratio_to_oracle: 1.0,
        scale_events: o.oracle.scale_events,
        scale_events_per_hour: score::per_hour(o.oracle.scale_events, simulated_ms),
        pod_starts: o.oracle.pod_starts,
        max_replicas: o.oracle.max_replicas,
        spot_interruptions: 0,
        decision_latency_us: None,
    });
    let timings = timings.then(|| Timings {
        wall_seconds: round(o.wall.as_secs_f64(), 3),
        entries: p
            .entries
            .iter()
            .zip(&o.runs)
            .map(|(e, r)| {
                let w = r.wall.as_secs_f64().max(1e-9);
                EntryTiming {
                    name: e.name.clone(),
                    wall_seconds: round(w, 3),
                    evaluations_per_second: round(r.tally.evaluations as f64 / w, 0),
                    sandbox_share: round(r.sandbox.as_secs_f64() / w, 3),
                    fuel_per_evaluation: r.tally.fuel_spent(),
                }
            })
            .collect(),
    });
    Report {
        scenario: p.loaded.name(),
        description: s.description.clone(),
        trace: s
            .trace
            .file
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
        seed: s.seed,
        from_hours: round(p.from_ms as f64 / 3_600_000.0, 3),
        simulated_hours: round((p.to_ms - p.from_ms) as f64 / 3_600_000.0, 3),
        interval_seconds: s.interval.0 as f64 / 1000.0,
        capacity_per_replica: s.capacity_per_replica,
        equal_cost: equal_cost::compare(&scores, &s.compare_at_equal_cost, ORACLE),
        scores,
        timings,
    }
}
