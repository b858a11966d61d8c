//! The standard policies, compiled by `host/build.rs` and embedded in the binary, so
//! `wasmscaler.io/policy: cron` works with no file on disk.

use std::time::Duration;

use super::Limits;

include!(concat!(env!("OUT_DIR"), "/builtins.rs"));

/// The wasm bytes of a built-in policy.
pub fn bytes(name: &str) -> Option<&'static [u8]> {
    BUILTINS.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}

/// Built-in names, sorted.
pub fn names() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = BUILTINS.iter().map(|(n, _)| *n).collect();
    v.sort_unstable();
    v
}

/// Default limits per policy: forecasting fits a seasonal model, which takes ~100 ms for
/// a week of 5-minute samples in the sandbox, so it gets a 2 s deadline (its fuel budget
/// follows) and more memory.
pub fn default_limits(name: &str) -> Limits {
    match name {
        "ml-predictive" => Limits {
            deadline: Duration::from_secs(2),
            memory_bytes: 256 << 20,
        },
        _ => Limits::default(),
    }
}
