//! Component glue: wit-bindgen bindings of `wit/policy.wit` and conversions between them
//! and the SDK's plain types. Used only through [`crate::export_policy!`].

pub mod bindings {
    wit_bindgen::generate!({
        world: "policy",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "wasmscaler_sdk::guest::bindings",
    });
}

use crate::policy::{self, Policy};
use crate::types;
use bindings::wasmscaler::policy::types as wit;

pub fn describe<P: Policy>() -> wit::PolicyInfo {
    let info = P::info();
    wit::PolicyInfo {
        name: info.name,
        version: info.version,
        summary: info.summary,
        signals: info
            .signals
            .into_iter()
            .map(|s| wit::SignalRequest {
                name: s.name,
                window_ms: s.window_ms,
                required: s.required,
                description: s.description,
            })
            .collect(),
    }
}

pub fn validate_config<P: Policy>(config: String) -> Result<(), wit::PolicyError> {
    policy::validate_config::<P>(&config)
        .map(|_| ())
        .map_err(to_wit_error)
}

pub fn evaluate<P: Policy>(ctx: wit::Context) -> Result<wit::Decision, wit::PolicyError> {
    let ctx = from_wit_context(ctx);
    let d = policy::evaluate::<P>(&ctx).map_err(to_wit_error)?;
    Ok(wit::Decision {
        replicas: d.replicas,
        jobs: d.jobs,
        placement: d
            .placement
            .into_iter()
            .map(|p| wit::PoolReplicas {
                pool: p.pool,
                replicas: p.replicas,
            })
            .collect(),
        reason: d.reason,
        recheck_after_ms: d.recheck_after_ms,
        state: d.state,
        metrics: d
            .metrics
            .into_iter()
            .map(|m| wit::Metric {
                name: m.name,
                value: m.value,
            })
            .collect(),
    })
}

fn to_wit_error(e: types::PolicyError) -> wit::PolicyError {
    match e {
        types::PolicyError::InvalidConfig(m) => wit::PolicyError::InvalidConfig(m),
        types::PolicyError::MissingSignal(m) => wit::PolicyError::MissingSignal(m),
        types::PolicyError::Internal(m) => wit::PolicyError::Internal(m),
    }
}

fn from_wit_context(c: wit::Context) -> types::Context {
    let w = c.workload;
    types::Context {
        now_ms: c.now_ms,
        workload: types::Workload {
            kind: w.kind,
            namespace: w.namespace,
            name: w.name,
            replicas: w.replicas,
            ready_replicas: w.ready_replicas,
            min_replicas: w.min_replicas,
            max_replicas: w.max_replicas,
            labels: w.labels,
        },
        config: c.config,
        signals: c
            .signals
            .into_iter()
            .map(|s| types::Signal {
                name: s.name,
                samples: s
                    .samples
                    .into_iter()
                    .map(|x| types::Sample {
                        at_ms: x.at_ms,
                        value: x.value,
                    })
                    .collect(),
            })
            .collect(),
        state: c.state,
    }
}
