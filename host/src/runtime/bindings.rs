//! Host bindings of the policy contract, one module per WIT version (the Zed extension
//! host's pattern): when the WIT grows, add `v0_2_0` beside this one and dispatch on the
//! version a component was built against.

pub mod v0_1_0 {
    wasmtime::component::bindgen!({
        world: "policy",
        path: "../wit",
    });

    /// The WIT package a component must import/export to be a v0.1.0 policy.
    pub const PACKAGE: &str = "wasmscaler:policy@0.1.0";
}

/// Contract versions this host can run, newest first.
pub const SUPPORTED: &[&str] = &[v0_1_0::PACKAGE];
