//! Command-line adapters. Each subcommand parses its input, calls the library, prints:
//! `policy` (inspect, eval, validate), `run` (the controller, [`crate::kube`]), `simulate`
//! ([`crate::sim`]), `replay` ([`crate::core::replay`]). Only this module knows about exit codes ([`Failure`]).

pub mod policy;
pub mod replay;
pub mod run;
pub mod simulate;

/// How a command failed: bad input the user must fix (exit 2) or a failure while doing
/// the work (exit 1).
#[derive(Debug)]
pub enum Failure {
    Usage(anyhow::Error),
    Runtime(anyhow::Error),
}

impl Failure {
    pub fn usage(e: impl Into<anyhow::Error>) -> Self {
        Failure::Usage(e.into())
    }
    pub fn runtime(e: impl Into<anyhow::Error>) -> Self {
        Failure::Runtime(e.into())
    }
}

/// Structured logs on stderr; `RUST_LOG` filters (default: warnings).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
