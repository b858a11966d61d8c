//! The scorecard: what each run cost and how often it missed the SLO.

use std::collections::BTreeMap;

use serde::Serialize;

/// Running totals of one policy's run.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub simulated_ms: i64,
    pub violation_ms: i64,
    /// Of that, time when even `maxReplicas` Ready replicas could not have served the load.
    pub violation_above_max_ms: i64,
    /// ∫ load dt (load unit × s).
    pub load: f64,
    /// ∫ max(0, load − ready capacity) dt.
    pub unserved: f64,
    pub on_demand_ms: f64,
    pub spot_ms: f64,
    pub scale_events: u32,
    /// Pods (or Jobs) created by the policy's decisions, interruption replacements included.
    pub pod_starts: u64,
    pub max_replicas: u32,
    pub evaluations: u64,
    pub failed_evaluations: u64,
    /// Decision latency of each evaluation (sum over the entry's policies), µs.
    pub latencies_us: Vec<u32>,
    /// Fuel each evaluation burned (sum over the entry's policies): its deterministic cost.
    pub fuel: Vec<u64>,
    /// Why evaluations failed, by policy and error kind.
    pub failures: BTreeMap<(String, &'static str), Failures>,
    pub interruptions: u64,
    /// Queue scenarios.
    pub items: u64,
    pub items_late: u64,
}

/// The failures of one policy of an entry with one error kind.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Failures {
    pub policy: String,
    /// `EvalError::kind` (budget, trap, invalid_config, ...).
    pub kind: &'static str,
    pub count: u64,
    /// Simulated time of the first one, ms since the scenario's start.
    pub first_at_ms: i64,
    /// The first one's error, as the controller would put it in an Event.
    pub first_error: String,
}

impl Tally {
    /// Count one failed policy call.
    pub fn record_failure(&mut self, policy: &str, kind: &'static str, at_ms: i64, error: String) {
        self.failures
            .entry((policy.to_string(), kind))
            .and_modify(|f| f.count += 1)
            .or_insert(Failures {
                policy: policy.to_string(),
                kind,
                count: 1,
                first_at_ms: at_ms,
                first_error: error,
            });
    }
}

/// Fuel per evaluation: deterministic, unlike the latencies.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct FuelSpent {
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
}

/// One row of the scorecard.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Score {
    pub name: String,
    /// The `wasmscaler.io/policy` text ("-" for the oracle).
    pub policy: String,
    pub evaluations: u64,
    pub failed_evaluations: u64,
    /// Why policy calls failed (empty: none did).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<Failures>,
    pub violation_pct: f64,
    pub violation_minutes: f64,
    /// Of those, minutes when the load exceeded what `maxReplicas` could serve: no policy
    /// could have avoided them under these bounds.
    pub violation_minutes_above_max: f64,
    /// Share of the load above Ready capacity (queue scenarios: share of items that
    /// waited longer than the bound or were never taken).
    pub unserved_pct: f64,
    pub replica_hours: f64,
    pub cost: f64,
    pub cost_ratio_to_oracle: f64,
    pub scale_events: u32,
    /// Churn: scale events per simulated hour.
    pub scale_events_per_hour: f64,
    /// Pods (queue scenarios: Jobs) created during the run; the starting pods are not counted.
    pub pod_starts: u64,
    pub max_replicas: u32,
    pub spot_interruptions: u64,
    /// Wall-clock, so left out of the JSON unless `--timings` is given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_latency_us: Option<Latency>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    pub p50: u32,
    pub p99: u32,
}

/// Round for a stable, readable report.
pub fn round(x: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    let r = (x * m).round() / m;
    if r == 0.0 { 0.0 } else { r }
}

/// `count` events over `simulated_ms`, per simulated hour, rounded for the report.
pub fn per_hour(count: u32, simulated_ms: f64) -> f64 {
    round(f64::from(count) * 3_600_000.0 / simulated_ms.max(1.0), 2)
}

pub fn percentile<T: Copy + Default>(sorted: &[T], q: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

impl Tally {
    pub fn replica_hours(&self) -> f64 {
        (self.on_demand_ms + self.spot_ms) / 3_600_000.0
    }

    pub fn cost(&self, on_demand: f64, spot: f64) -> f64 {
        (self.on_demand_ms * on_demand + self.spot_ms * spot) / 3_600_000.0
    }

    pub fn fuel_spent(&self) -> FuelSpent {
        let mut v = self.fuel.clone();
        v.sort_unstable();
        FuelSpent {
            p50: percentile(&v, 0.5),
            p99: percentile(&v, 0.99),
            max: v.last().copied().unwrap_or(0),
        }
    }

    pub fn latency(&self) -> Latency {
        let mut v = self.latencies_us.clone();
        v.sort_unstable();
        Latency {
            p50: percentile(&v, 0.5),
            p99: percentile(&v, 0.99),
        }
    }

    /// The row; `oracle_cost` for the ratio.
    pub fn score(&self, name: &str, policy: &str, prices: (f64, f64), oracle_cost: f64, jobs: bool) -> Score {
        let sim = self.simulated_ms.max(1) as f64;
        let unserved = if jobs {
            if self.items == 0 {
                0.0
            } else {
                self.items_late as f64 / self.items as f64
            }
        } else if self.load > 0.0 {
            self.unserved / self.load
        } else {
            0.0
        };
        let cost = self.cost(prices.0, prices.1);
        Score {
            name: name.to_string(),
            policy: policy.to_string(),
            evaluations: self.evaluations,
            failed_evaluations: self.failed_evaluations,
            failures: self.failures.values().cloned().collect(),
            violation_pct: round(100.0 * self.violation_ms as f64 / sim, 3),
            violation_minutes: round(self.violation_ms as f64 / 60_000.0, 2),
            violation_minutes_above_max: round(self.violation_above_max_ms as f64 / 60_000.0, 2),
            unserved_pct: round(100.0 * unserved, 3),
            replica_hours: round(self.replica_hours(), 2),
            cost: round(cost, 2),
            cost_ratio_to_oracle: if oracle_cost > 0.0 {
                round(cost / oracle_cost, 3)
            } else {
                0.0
            },
            scale_events: self.scale_events,
            scale_events_per_hour: per_hour(self.scale_events, sim),
            pod_starts: self.pod_starts,
            max_replicas: self.max_replicas,
            spot_interruptions: self.interruptions,
            decision_latency_us: if self.evaluations > 0 {
                Some(self.latency())
            } else {
                None
            },
        }
    }
}
