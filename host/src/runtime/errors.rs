//! Typed errors of the runtime. Every way a policy can fail maps to one variant here; none
//! of them is a host panic.

use std::time::Duration;

use wasmscaler_sdk::PolicyError;

/// Why a component could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{source_name}: not a WebAssembly component: {detail}")]
    NotAComponent { source_name: String, detail: String },
    #[error("{source_name}: incompatible with this host: {detail}")]
    WrongWorld { source_name: String, detail: String },
    #[error("{source_name}: describe() failed: {source}")]
    Describe {
        source_name: String,
        source: Box<EvalError>,
    },
    #[error("{source_name}: {detail}")]
    Io { source_name: String, detail: String },
    #[error("{source_name}: digest mismatch: pinned sha256:{expected}, file is sha256:{actual}")]
    DigestMismatch {
        source_name: String,
        expected: String,
        actual: String,
    },
}

/// Why one evaluation failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum EvalError {
    /// The policy itself returned an error.
    #[error("policy error: {0}")]
    Policy(PolicyError),
    /// The call used up its fuel: more work than its deadline allows on the reference
    /// machine. Decided by counting, so the same call fails the same way everywhere.
    #[error(
        "deadline exceeded: the call used up its budget of {fuel} fuel (the work of {deadline:?} on the reference machine)"
    )]
    Budget { fuel: u64, deadline: Duration },
    /// The call still had fuel but ran past the wall-clock backstop (a machine far slower
    /// or busier than the reference) and was interrupted.
    #[error(
        "deadline exceeded: interrupted by the wall-clock backstop after {elapsed:?} (backstop {backstop:?})"
    )]
    Deadline { backstop: Duration, elapsed: Duration },
    /// The policy's linear memories (all of them, summed) would have grown past the cap;
    /// `requested` is the total they would have reached.
    #[error("memory limit exceeded: the policy asked for {requested} bytes in all, the cap is {cap} bytes")]
    MemoryLimit { requested: usize, cap: usize },
    /// The guest trapped (panic, stack overflow, unreachable, out-of-bounds access...).
    #[error("policy trapped: {0}")]
    Trap(String),
    /// The policy answered something the contract forbids.
    #[error("invalid decision: {0}")]
    InvalidDecision(String),
    /// The host could not set up the sandbox (e.g. the instance pool is exhausted).
    #[error("sandbox setup failed: {0}")]
    Setup(String),
}

impl EvalError {
    /// A short stable label, used as a metric label and in Events.
    pub fn kind(&self) -> &'static str {
        match self {
            EvalError::Policy(PolicyError::InvalidConfig(_)) => "invalid_config",
            EvalError::Policy(PolicyError::MissingSignal(_)) => "missing_signal",
            EvalError::Policy(PolicyError::Internal(_)) => "policy_internal",
            EvalError::Budget { .. } => "budget",
            EvalError::Deadline { .. } => "deadline",
            EvalError::MemoryLimit { .. } => "memory_limit",
            EvalError::Trap(_) => "trap",
            EvalError::InvalidDecision(_) => "invalid_decision",
            EvalError::Setup(_) => "setup",
        }
    }
}

/// Engine-level failures.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot build the wasm engine: {0}")]
    Engine(String),
    #[error("cannot link the host imports: {0}")]
    Linker(String),
}
