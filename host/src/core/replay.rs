//! Replay: hand every recorded context of a policy to another version of it and compare
//! the answers, per workload. Open loop: the recorded world (signals, replicas) is the
//! one the recorded decisions shaped; a new version that decides differently would have
//! changed it, which no replay can show. What it shows exactly is where, by how much and
//! for how long the new version's answers differ on the inputs production really had.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use wasmscaler_sdk::{Decision, PoolReplicas};

use super::decision_log::Record;
use super::decision_log::schema::PolicyEntry;
use super::evaluate::{call_policy, required_signal_missing};
use super::history_record::RecordedHistory;
use crate::runtime::{EvalError, HistorySource, LoadedPolicy};

/// Which state the new version is handed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StateChain {
    /// The state the recorded policy was handed at that moment: "what would the new
    /// version have said then, in the same situation". Every evaluation is independent,
    /// so a difference shows exactly where it happens and a gap in the log costs nothing.
    Recorded,
    /// The new version's own states, one evaluation to the next (starting from the
    /// recorded state, as a rollout would): "what would it have done". Differences in
    /// memory (stabilization windows, panic mode) carry forward, as they would live.
    Own,
}

/// What to replay.
pub struct Replay<'a> {
    pub policy: &'a LoadedPolicy,
    /// Replace the recorded config with this JSON text (None: the recorded one).
    pub config: Option<String>,
    pub chain: StateChain,
    /// The recorded policy to stand in for, by its reference (`file:x.wasm`, `cron`);
    /// None: the one whose `describe()` name is the new version's.
    pub replaces: Option<String>,
}

/// One answer, as compared: replicas, Jobs and pool split, or the error's kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Answer {
    Decision {
        replicas: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        jobs: Option<u32>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        placement: Vec<PoolReplicas>,
    },
    Error {
        kind: String,
    },
}

impl Answer {
    fn of_entry(e: &PolicyEntry) -> Self {
        match (&e.decision, &e.error) {
            (Some(d), _) => Answer::Decision {
                replicas: d.replicas,
                jobs: d.jobs,
                placement: d.placement.clone(),
            },
            (None, Some(err)) => Answer::Error {
                kind: err.kind.clone(),
            },
            (None, None) => Answer::Error {
                kind: "unrecorded".into(),
            },
        }
    }

    fn of_result(r: &Result<Decision, EvalError>) -> Self {
        match r {
            Ok(d) => Answer::Decision {
                replicas: d.replicas,
                jobs: d.jobs,
                placement: d.placement.clone(),
            },
            Err(e) => Answer::Error {
                kind: e.kind().into(),
            },
        }
    }

    /// The replicas the host would run on this answer: the decision clamped to
    /// min/max; on an error, fail-static (the current replicas).
    fn effective(&self, current: u32, min: u32, max: u32) -> u32 {
        match self {
            Answer::Decision { replicas, .. } => (*replicas).clamp(min.min(max), max),
            Answer::Error { .. } => current,
        }
    }
}

/// One evaluation whose answer changed.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub at_ms: i64,
    pub recorded: Answer,
    pub new: Answer,
    /// New minus recorded effective replicas.
    pub delta: i64,
    /// The new version's error message, if it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Per workload.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadReport {
    /// `kind/namespace/name`.
    pub workload: String,
    pub evaluations: u64,
    pub changed: u64,
    /// The largest difference in effective replicas (new minus recorded), by size.
    pub max_delta: i64,
    /// Mean of |new - recorded| over every evaluation.
    pub mean_abs_delta: f64,
    /// How long the new version's replicas were above / below the recorded ones (each
    /// answer holds until the workload's next evaluation, the last until the log ends).
    pub above_ms: i64,
    pub below_ms: i64,
    pub replica_hours_recorded: f64,
    pub replica_hours_new: f64,
    pub errors_recorded: u64,
    pub errors_new: u64,
    /// Digests of the recorded policy.
    pub recorded_digests: Vec<String>,
    pub changes: Vec<Change>,
    #[serde(skip)]
    sum_abs_delta: f64,
    #[serde(skip)]
    pending: Option<(i64, u32, u32)>,
    #[serde(skip)]
    chain: Option<(Option<String>, Option<Vec<u8>>)>,
}

impl WorkloadReport {
    fn account(&mut self, until_ms: i64) {
        if let Some((at, rec, new)) = self.pending.take() {
            let ms = (until_ms - at).max(0);
            let hours = ms as f64 / 3_600_000.0;
            self.replica_hours_recorded += f64::from(rec) * hours;
            self.replica_hours_new += f64::from(new) * hours;
            if new > rec {
                self.above_ms += ms;
            } else if new < rec {
                self.below_ms += ms;
            }
        }
    }
}

/// The whole replay.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub policy: String,
    pub version: String,
    pub digest: String,
    pub state_chain: StateChain,
    /// Lines read, and those with no entry of the replaced policy.
    pub records: u64,
    pub skipped: u64,
    pub workloads: Vec<WorkloadReport>,
    /// `describe()` names of the recorded policies seen (to say what could be replayed).
    #[serde(skip)]
    pub seen_policies: Vec<String>,
}

pub struct Replayer<'a> {
    replay: Replay<'a>,
    workloads: BTreeMap<String, WorkloadReport>,
    records: u64,
    skipped: u64,
    last_at: i64,
    seen: Vec<String>,
}

impl<'a> Replayer<'a> {
    pub fn new(replay: Replay<'a>) -> Self {
        Self {
            replay,
            workloads: BTreeMap::new(),
            records: 0,
            skipped: 0,
            last_at: i64::MIN,
            seen: Vec::new(),
        }
    }

    fn matches(&self, e: &PolicyEntry) -> bool {
        match &self.replay.replaces {
            Some(key) => &e.policy == key,
            None => e.name == self.replay.policy.info.name,
        }
    }

    /// Re-evaluate one record (records of a workload must come in time order). Fails only
    /// on a record that cannot be handed over (a config that is not text).
    pub fn push(&mut self, r: &Record) -> Result<(), String> {
        self.records += 1;
        self.last_at = self.last_at.max(r.at_ms);
        for e in &r.policies {
            if !self.seen.contains(&e.name) {
                self.seen.push(e.name.clone());
            }
        }
        let Some(entry) = r.policies.iter().find(|e| self.matches(e)) else {
            self.skipped += 1;
            return Ok(());
        };
        let mut ctx = entry.context.to_context()?;
        if let Some(c) = &self.replay.config {
            ctx.config = c.clone();
        }
        let key = format!("{}/{}/{}", r.workload.kind, r.workload.namespace, r.workload.name);
        let w = self
            .workloads
            .entry(key.clone())
            .or_insert_with(|| WorkloadReport {
                workload: key,
                ..WorkloadReport::default()
            });
        if !w.recorded_digests.contains(&entry.digest) {
            w.recorded_digests.push(entry.digest.clone());
        }
        if self.replay.chain == StateChain::Own {
            // A new object under the same name starts from its recorded state again.
            match &w.chain {
                Some((uid, state)) if *uid == r.workload.uid => ctx.state = state.clone(),
                _ => {}
            }
        }
        let policy = self.replay.policy;
        let result = match required_signal_missing(policy, &r.signal_errors) {
            Some(e) => Err(e),
            None => {
                let answers = entry.history.iter().map(|h| h.to_answer()).collect();
                let history: Arc<dyn HistorySource> = Arc::new(RecordedHistory::new(answers));
                call_policy(policy, &ctx, Some(history)).0
            }
        };
        if self.replay.chain == StateChain::Own {
            // As the host does: a failed call leaves the state as it was.
            let next = match &result {
                Ok(d) => d.state.clone(),
                Err(_) => ctx.state.clone(),
            };
            w.chain = Some((r.workload.uid.clone(), next));
        }
        let recorded = Answer::of_entry(entry);
        let new = Answer::of_result(&result);
        let wl = &ctx.workload;
        let (rec_eff, new_eff) = (
            recorded.effective(wl.replicas, wl.min_replicas, wl.max_replicas),
            new.effective(wl.replicas, wl.min_replicas, wl.max_replicas),
        );
        w.account(r.at_ms);
        w.pending = Some((r.at_ms, rec_eff, new_eff));
        w.evaluations += 1;
        let delta = i64::from(new_eff) - i64::from(rec_eff);
        w.sum_abs_delta += delta.unsigned_abs() as f64;
        if delta.abs() > w.max_delta.abs() {
            w.max_delta = delta;
        }
        if matches!(recorded, Answer::Error { .. }) {
            w.errors_recorded += 1;
        }
        if matches!(new, Answer::Error { .. }) {
            w.errors_new += 1;
        }
        if recorded != new {
            w.changed += 1;
            w.changes.push(Change {
                at_ms: r.at_ms,
                recorded,
                new,
                delta,
                error: result.err().map(|e| e.to_string()),
            });
        }
        Ok(())
    }

    pub fn finish(mut self) -> Report {
        let end = self.last_at;
        let workloads = self
            .workloads
            .into_values()
            .map(|mut w| {
                w.account(end);
                if w.evaluations > 0 {
                    w.mean_abs_delta = w.sum_abs_delta / w.evaluations as f64;
                }
                w
            })
            .collect();
        self.seen.sort();
        Report {
            policy: self.replay.policy.info.name.clone(),
            version: self.replay.policy.info.version.clone(),
            digest: self.replay.policy.digest.clone(),
            state_chain: self.replay.chain,
            records: self.records,
            skipped: self.skipped,
            workloads,
            seen_policies: self.seen,
        }
    }
}
