//! Prometheus metrics of the controller (`/metrics`, OpenMetrics text).

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry as PromRegistry;

use crate::core::decision_log::DecisionLog;
use crate::runtime::Registry;
use crate::runtime::registry::ReloadKind;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabel {
    pub policy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkloadLabels {
    pub namespace: String,
    pub kind: String,
    pub name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AnnotationLabel {
    pub annotation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: String,
}

pub struct Metrics {
    registry: Mutex<PromRegistry>,
    /// Evaluations by result: scale, hold, shadow, failed, paused, invalid.
    pub evaluations: Family<ResultLabel, Counter>,
    /// Wall time of one evaluation (gather + policies + guardrails), seconds.
    pub evaluation_seconds: Histogram,
    /// Time inside one policy call, seconds.
    pub policy_seconds: Family<PolicyLabel, Histogram>,
    /// Errors by kind: annotation, resolve, signal, kube_api, conflict, actuator, state,
    /// and the policy error kinds (deadline, trap, invalid_config, ...).
    pub errors: Family<KindLabel, Counter>,
    pub replicas_desired: Family<WorkloadLabels, Gauge>,
    pub replicas_current: Family<WorkloadLabels, Gauge>,
    /// The policies' composed proposal before guardrails (absent while none answers): the
    /// live number the status annotation does not carry.
    pub replicas_proposed: Family<WorkloadLabels, Gauge>,
    /// Evaluations in a row without a usable answer.
    pub consecutive_failures: Family<WorkloadLabels, Gauge>,
    /// Writes of our annotations (status, state): 0 per minute at steady decisions.
    pub annotation_writes: Family<AnnotationLabel, Counter>,
    /// Events published, by reason.
    pub events: Family<ReasonLabel, Counter>,
    /// /scale writes by direction (up, down).
    pub scale_writes: Family<ResultLabel, Counter>,
    /// Policy registry outcomes (loaded, reloaded, rejected, removed).
    pub policy_loads: Family<OutcomeLabel, Counter>,
    pub leader: Gauge,
    pub managed_workloads: Gauge,
    /// Decision-log lines that never reached a file (queue full, write failed), mirrored
    /// from the writer on every scrape.
    pub decision_log_dropped: Counter,
    policy_registry: Mutex<Option<Arc<Registry>>>,
    decision_log: Mutex<Option<Arc<DecisionLog>>>,
    seen_dropped: AtomicU64,
    seen_loads: [AtomicU64; 4],
}

/// Register each `metric => name, help` row (in this order, the order of `/metrics`) with
/// a clone of the metric: one row a metric instead of one five-line call each.
macro_rules! register_each {
    ($registry:expr; $($metric:expr => $name:literal, $help:literal;)+) => {{
        let mut registry = $registry;
        $(registry.register($name, $help, $metric.clone());)+
    }};
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let m = Self {
            registry: Mutex::new(PromRegistry::with_prefix("wasmscaler")),
            evaluations: Family::default(),
            evaluation_seconds: Histogram::new(exponential_buckets(0.0001, 2.5, 14)),
            policy_seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.00002, 2.5, 14))
            }),
            errors: Family::default(),
            replicas_desired: Family::default(),
            replicas_current: Family::default(),
            replicas_proposed: Family::default(),
            consecutive_failures: Family::default(),
            annotation_writes: Family::default(),
            events: Family::default(),
            scale_writes: Family::default(),
            policy_loads: Family::default(),
            leader: Gauge::default(),
            managed_workloads: Gauge::default(),
            decision_log_dropped: Counter::default(),
            policy_registry: Mutex::new(None),
            decision_log: Mutex::new(None),
            seen_dropped: AtomicU64::new(0),
            seen_loads: Default::default(),
        };
        register_each!(lock(&m.registry);
            m.evaluations => "evaluations", "Workload evaluations by result";
            m.evaluation_seconds => "evaluation_duration_seconds",
                "Time of one evaluation: gather signals, run the policies, apply guardrails";
            m.policy_seconds => "policy_duration_seconds", "Time inside one sandboxed policy call";
            m.errors => "errors", "Errors by kind";
            m.replicas_desired => "replicas_desired", "Replicas the last evaluation decided on";
            m.replicas_current => "replicas_current", "Replicas of the workload when last evaluated";
            m.replicas_proposed => "replicas_proposed",
                "The policies' composed proposal before guardrails, when one answered";
            m.consecutive_failures => "consecutive_failures",
                "Evaluations in a row without a usable policy answer";
            m.annotation_writes => "annotation_writes",
                "Writes of the status and state annotations (only when the decision or state changes)";
            m.events => "events", "Kubernetes Events published, by reason";
            m.scale_writes => "scale_writes", "Writes to /scale by direction";
            m.policy_loads => "policy_loads", "Policy registry outcomes: loaded, reloaded, rejected, removed";
            m.leader => "leader", "1 while this replica holds the leader Lease";
            m.managed_workloads => "managed_workloads",
                "Workloads with a wasmscaler.io/policy annotation seen by this replica";
            m.decision_log_dropped => "decision_log_dropped",
                "Decision-log lines dropped: the writer's queue was full or a write failed";
        );
        m
    }

    /// Mirror the policy registry's counters into `policy_loads` on every scrape.
    pub fn watch_registry(&self, registry: Arc<Registry>) {
        *lock(&self.policy_registry) = Some(registry);
    }

    /// Mirror the decision-log writer's drop counter on every scrape.
    pub fn watch_decision_log(&self, log: Arc<DecisionLog>) {
        *lock(&self.decision_log) = Some(log);
    }

    fn sync_decision_log(&self) {
        let Some(log) = lock(&self.decision_log).clone() else {
            return;
        };
        let now = log.dropped();
        let before = self.seen_dropped.swap(now, Ordering::Relaxed);
        if now > before {
            self.decision_log_dropped.inc_by(now - before);
        }
    }

    pub fn error(&self, kind: &str) {
        self.errors
            .get_or_create(&KindLabel {
                kind: kind.to_string(),
            })
            .inc();
    }

    pub fn evaluation(&self, result: &str) {
        self.evaluations
            .get_or_create(&ResultLabel {
                result: result.to_string(),
            })
            .inc();
    }

    pub fn annotation_written(&self, annotation: &str) {
        self.annotation_writes
            .get_or_create(&AnnotationLabel {
                annotation: annotation.to_string(),
            })
            .inc();
    }

    pub fn event(&self, reason: &str) {
        self.events
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Per-workload series, set after each evaluation.
    pub fn set_workload(
        &self,
        labels: &WorkloadLabels,
        current: u32,
        desired: u32,
        proposal: Option<u32>,
        failures: u32,
    ) {
        self.replicas_current
            .get_or_create(labels)
            .set(i64::from(current));
        self.replicas_desired
            .get_or_create(labels)
            .set(i64::from(desired));
        match proposal {
            Some(p) => {
                self.replicas_proposed.get_or_create(labels).set(i64::from(p));
            }
            None => {
                self.replicas_proposed.remove(labels);
            }
        }
        self.consecutive_failures
            .get_or_create(labels)
            .set(i64::from(failures));
    }

    /// Drop every per-workload series of a workload that is gone or no longer managed.
    pub fn forget_workload(&self, labels: &WorkloadLabels) {
        self.replicas_current.remove(labels);
        self.replicas_desired.remove(labels);
        self.replicas_proposed.remove(labels);
        self.consecutive_failures.remove(labels);
    }

    fn sync_registry(&self) {
        let Some(reg) = lock(&self.policy_registry).clone() else {
            return;
        };
        let kinds = [
            ReloadKind::Loaded,
            ReloadKind::Reloaded,
            ReloadKind::Rejected,
            ReloadKind::Removed,
        ];
        for (i, k) in kinds.into_iter().enumerate() {
            let now = reg.counters().get(k);
            let before = self.seen_loads[i].swap(now, Ordering::Relaxed);
            if now > before {
                self.policy_loads
                    .get_or_create(&OutcomeLabel {
                        outcome: k.as_str().to_string(),
                    })
                    .inc_by(now - before);
            }
        }
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        self.sync_registry();
        self.sync_decision_log();
        let mut out = String::new();
        let r = lock(&self.registry);
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &r) {
            tracing::warn!(error = %e, "cannot encode metrics");
        }
        out
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
