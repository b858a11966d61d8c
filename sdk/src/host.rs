//! Functions the host provides: `log` and `history`.
//!
//! In a component they call the host's imports. On a native target (unit tests) `log`
//! collects lines and `history` answers from fixtures set with
//! [`crate::testing::set_history`], both thread-local.

use crate::types::Sample;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// Write a line into the host's log, tagged with the policy and workload.
pub fn log(level: LogLevel, message: &str) {
    imp::log(level, message)
}

/// Long history of `signal`: the last `window_ms` ending now, at `step_ms` spacing,
/// oldest first. An error string when the host has no history for it.
pub fn history(signal: &str, window_ms: u64, step_ms: u64) -> Result<Vec<Sample>, String> {
    imp::history(signal, window_ms, step_ms)
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::*;
    use crate::guest::bindings::wasmscaler::policy::{host, types};

    pub fn log(level: LogLevel, message: &str) {
        let level = match level {
            LogLevel::Trace => types::LogLevel::Trace,
            LogLevel::Debug => types::LogLevel::Debug,
            LogLevel::Info => types::LogLevel::Info,
            LogLevel::Warn => types::LogLevel::Warn,
            LogLevel::Error => types::LogLevel::Error,
        };
        host::log(level, message);
    }

    pub fn history(signal: &str, window_ms: u64, step_ms: u64) -> Result<Vec<Sample>, String> {
        host::history(signal, window_ms, step_ms).map(|v| {
            v.into_iter()
                .map(|s| Sample {
                    at_ms: s.at_ms,
                    value: s.value,
                })
                .collect()
        })
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::*;
    use crate::testing::fixtures;

    pub fn log(level: LogLevel, message: &str) {
        fixtures::push_log(level, message);
    }

    pub fn history(signal: &str, window_ms: u64, step_ms: u64) -> Result<Vec<Sample>, String> {
        fixtures::history(signal, window_ms, step_ms)
    }
}
