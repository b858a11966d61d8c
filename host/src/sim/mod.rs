//! The simulator: replays a load trace through the controller's own evaluation path
//! (registry, sandbox, guardrails, state) against a simulated cluster on a simulated
//! clock, and scores each policy against a reactive HPA baseline and a perfect-foresight
//! oracle. An adapter like the controller: it builds each policy's annotations and goes
//! through [`crate::core`]; it holds no policy logic of its own.
//!
//! - [`scenario`]: the YAML file -> typed scenario (errors name file, line, key).
//! - [`trace`]: CSV load traces, validated with line numbers; interpolation.
//! - [`setup`]: scenario entries -> annotations -> `WorkloadSpec` + resolved `Plan`.
//! - [`cluster`]: pods, start-up delays, spot pools and interruptions, Jobs and a queue.
//! - [`signals`] / [`history`]: what the policies see, never past the simulated now.
//! - [`run`]: the tick loop (one thread per policy, at most two at a time).
//! - [`oracle`], [`score`]: the lower bound and the scorecard.
//! - [`report`]: terminal table, JSON, SVG chart.
//!
//! The `wasmscaler simulate` command (arguments, exit codes) is [`crate::cli::simulate`].

pub mod cluster;
pub mod history;
pub mod oracle;
pub mod report;
pub mod run;
pub mod scenario;
pub mod score;
pub mod setup;
pub mod signals;
pub mod trace;

/// Scorecard name of the reactive HPA reference.
pub const BASELINE: &str = "hpa-baseline";
/// Scorecard name of the perfect-foresight lower bound.
pub const ORACLE: &str = "oracle";

/// Why a simulation could not run. `Scenario` and `Trace` are the user's to fix.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("{file}{}: {key}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Scenario {
        file: String,
        line: Option<usize>,
        key: String,
        message: String,
    },
    #[error("{file}{}: {message}", if *line > 0 { format!(":{line}") } else { String::new() })]
    Trace {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{0}")]
    Runtime(String),
}

impl SimError {
    /// Bad input (exit 2) rather than a failure while running (exit 1).
    pub fn is_usage(&self) -> bool {
        !matches!(self, SimError::Runtime(_))
    }
}

/// `ceil(a / b)` for `a >= 0`, `b > 0`.
pub(crate) fn ceil_div(a: i64, b: i64) -> i64 {
    (a + b - 1) / b
}
