//! Plain Rust mirrors of the WIT records (`wit/policy.wit`). The host uses the same types,
//! so what a policy sees in `cargo test` is exactly what it sees in the cluster.

use serde::{Deserialize, Serialize};

/// One observation: `at_ms` since the Unix epoch, and its value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Sample {
    pub at_ms: i64,
    pub value: f64,
}

impl Sample {
    pub fn new(at_ms: i64, value: f64) -> Self {
        Self { at_ms, value }
    }
}

/// A named series, oldest sample first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Signal {
    pub name: String,
    pub samples: Vec<Sample>,
}

/// The workload as the host sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Workload {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub replicas: u32,
    pub ready_replicas: u32,
    pub min_replicas: u32,
    pub max_replicas: u32,
    #[serde(default)]
    pub labels: Vec<(String, String)>,
}

impl Default for Workload {
    fn default() -> Self {
        Self {
            kind: "Deployment".into(),
            namespace: "default".into(),
            name: "app".into(),
            replicas: 1,
            ready_replicas: 1,
            min_replicas: 1,
            max_replicas: 100,
            labels: Vec::new(),
        }
    }
}

/// Everything a policy may base its decision on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Context {
    pub now_ms: i64,
    pub workload: Workload,
    /// The configuration as JSON text.
    pub config: String,
    pub signals: Vec<Signal>,
    /// Opaque state returned by the previous evaluation.
    #[serde(default)]
    pub state: Option<Vec<u8>>,
}

/// Replicas for one named pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PoolReplicas {
    pub pool: String,
    pub replicas: u32,
}

/// A named number reported with a decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Metric {
    pub name: String,
    pub value: f64,
}

/// What a policy wants. Build with [`Decision::new`] and the chained setters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Decision {
    pub replicas: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub placement: Vec<PoolReplicas>,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recheck_after_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<Vec<u8>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<Metric>,
}

impl Decision {
    pub fn new(replicas: u32) -> Self {
        Self {
            replicas,
            ..Self::default()
        }
    }
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = reason.into();
        self
    }
    pub fn jobs(mut self, jobs: u32) -> Self {
        self.jobs = Some(jobs);
        self
    }
    pub fn place(mut self, pool: impl Into<String>, replicas: u32) -> Self {
        self.placement.push(PoolReplicas {
            pool: pool.into(),
            replicas,
        });
        self
    }
    pub fn recheck_after_ms(mut self, ms: u64) -> Self {
        self.recheck_after_ms = Some(ms);
        self
    }
    pub fn metric(mut self, name: impl Into<String>, value: f64) -> Self {
        self.metrics.push(Metric {
            name: name.into(),
            value,
        });
        self
    }
}

/// How a policy failed. The host keeps the workload where it is (fail-static).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "camelCase")]
pub enum PolicyError {
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    #[error("missing signal: {0}")]
    MissingSignal(String),
    #[error("internal: {0}")]
    Internal(String),
}

impl PolicyError {
    pub fn config(msg: impl Into<String>) -> Self {
        Self::InvalidConfig(msg.into())
    }
    pub fn internal(msg: impl Into<String>) -> Self {
        Self::Internal(msg.into())
    }
}

/// A signal the policy needs gathered before each evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SignalRequest {
    pub name: String,
    pub window_ms: u64,
    pub required: bool,
    pub description: String,
}

impl SignalRequest {
    /// A required signal of which only the latest sample is needed.
    pub fn latest(name: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            window_ms: 0,
            required: true,
            description: description.into(),
        }
    }
    /// A required signal with `window_ms` of recent samples.
    pub fn window(name: impl Into<String>, window_ms: u64, description: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            window_ms,
            required: true,
            description: description.into(),
        }
    }
    /// Mark the signal optional: the policy copes without it.
    pub fn optional(mut self) -> Self {
        self.required = false;
        self
    }
}

/// What a policy says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicyInfo {
    pub name: String,
    pub version: String,
    pub summary: String,
    pub signals: Vec<SignalRequest>,
}

impl PolicyInfo {
    pub fn new(name: impl Into<String>, version: impl Into<String>, summary: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            summary: summary.into(),
            signals: Vec::new(),
        }
    }
    pub fn signal(mut self, request: SignalRequest) -> Self {
        self.signals.push(request);
        self
    }
}
