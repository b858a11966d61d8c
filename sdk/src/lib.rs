//! # wasmscaler-sdk
//!
//! Write a Kubernetes scaling policy as a plain Rust type, compile it to a WebAssembly
//! component (`cargo build --target wasm32-wasip2`), and unit-test it natively with
//! `cargo test`: no generated bindings in sight.
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use wasmscaler_sdk::prelude::*;
//!
//! #[derive(Deserialize)]
//! #[serde(deny_unknown_fields, rename_all = "camelCase")]
//! pub struct Config { target: f64 }
//!
//! pub struct PerReplica;
//!
//! impl Policy for PerReplica {
//!     type Config = Config;
//!     type State = ();
//!
//!     fn info() -> PolicyInfo {
//!         PolicyInfo::new("per-replica", env!("CARGO_PKG_VERSION"), "load / target")
//!             .signal(SignalRequest::latest("load", "requests per second"))
//!     }
//!
//!     fn evaluate(ctx: &Context, cfg: &Config, _: &mut ()) -> Result<Decision, PolicyError> {
//!         let load = ctx.signal("load")?.latest()?;
//!         let wanted = replicas_for(load, cfg.target)?;
//!         Ok(Decision::new(ctx.clamp(wanted)).reason(format!("load {load:.1} / target {}", cfg.target)))
//!     }
//! }
//!
//! wasmscaler_sdk::export_policy!(PerReplica);
//!
//! # use wasmscaler_sdk::testing::ContextBuilder;
//! let ctx = ContextBuilder::new().bounds(1, 10).latest("load", 250.0).config(r#"{"target": 100}"#).build();
//! assert_eq!(wasmscaler_sdk::testing::evaluate::<PerReplica>(&ctx).unwrap().replicas, 3);
//! ```

pub mod duration;
pub mod host;
pub mod math;
mod policy;
pub mod signals;
pub mod testing;
pub mod types;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod guest;

pub use duration::Duration;
pub use policy::{Policy, decode_state, encode_state, parse_config};
pub use types::*;

/// Everything a policy author needs, in one `use`.
pub mod prelude {
    pub use crate::duration::Duration;
    pub use crate::host::{self, LogLevel};
    pub use crate::math::{finite, hpa_proportional, replicas_for};
    pub use crate::policy::Policy;
    pub use crate::types::{
        Context, Decision, Metric, PolicyError, PolicyInfo, PoolReplicas, Sample, Signal, SignalRequest,
        Workload,
    };
}

/// Export a [`Policy`] implementation as the component's `wasmscaler:policy` world.
///
/// Expands to nothing on non-wasm targets, so the same crate unit-tests natively.
#[macro_export]
macro_rules! export_policy {
    ($policy:ty) => {
        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        mod __wasmscaler_export {
            use super::*;
            struct Export;
            impl $crate::guest::bindings::Guest for Export {
                fn describe() -> $crate::guest::bindings::PolicyInfo {
                    $crate::guest::describe::<$policy>()
                }
                fn validate_config(
                    config: ::std::string::String,
                ) -> ::std::result::Result<(), $crate::guest::bindings::PolicyError> {
                    $crate::guest::validate_config::<$policy>(config)
                }
                fn evaluate(
                    ctx: $crate::guest::bindings::Context,
                ) -> ::std::result::Result<
                    $crate::guest::bindings::Decision,
                    $crate::guest::bindings::PolicyError,
                > {
                    $crate::guest::evaluate::<$policy>(ctx)
                }
            }
            $crate::guest::bindings::export!(Export with_types_in $crate::guest::bindings);
        }
    };
}
