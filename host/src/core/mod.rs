//! The evaluation path every adapter shares (controller, simulator, CLI). Knows the
//! runtime, nothing of Kubernetes or simulated clusters.
//!
//! - [`spec`]: a workload's annotations -> typed spec (errors name the annotation).
//! - [`behavior`]: HPA autoscaling/v2 behavior, defaults included.
//! - [`guardrails`]: min/max, stabilization, rate policies, fail-static, fallback.
//! - [`evaluate`]: resolve, call each policy, compose, guard -> outcome.
//! - [`state`]: what is remembered per workload.
//! - [`pools`]: which workload runs each pool of a placement (the host's `variants:`).
//! - [`history_record`]: the `history` import's answers, recorded and replayed.
//! - [`decision_log`]: one JSON line per evaluation (schema, background writer, reader):
//!   what replay re-evaluates.
//! - [`replay`]: recorded contexts handed to another policy version, answers compared.
//! - [`adapter`]: the seam an adapter plugs its signal sources and actuators into
//!   (gatherer and actuator traits, the target they act on).

pub mod adapter;
pub mod behavior;
pub mod decision_log;
pub mod evaluate;
pub mod guardrails;
pub mod history_record;
pub mod pools;
pub mod replay;
pub mod spec;
pub mod state;

pub use evaluate::{Action, Observation, Outcome, Plan, PolicyRun, evaluate};
pub use spec::{Mode, Pause, PolicyBinding, SpecError, WorkloadSpec};
pub use state::WorkloadState;
