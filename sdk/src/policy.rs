//! The `Policy` trait and the glue shared by the wasm export and the native harness, so a
//! native `cargo test` runs exactly the code path the component runs.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::types::{Context, Decision, PolicyError, PolicyInfo};

/// A scaling policy. Implement it, then `wasmscaler_sdk::export_policy!(YourType);`.
pub trait Policy {
    /// Typed configuration, parsed from the JSON the host hands over. Use
    /// `#[serde(deny_unknown_fields)]` so a typo in a key is an error, not a silent default.
    type Config: DeserializeOwned;
    /// What the policy remembers between evaluations of one workload (`()` for none).
    /// Persisted by the host; an unreadable state (e.g. from an older version) is
    /// replaced by `Default` with a warning rather than freezing the workload.
    type State: Serialize + DeserializeOwned + Default;

    /// Name, version, summary, and the signals to gather.
    fn info() -> PolicyInfo;

    /// Checks beyond what serde can express (ranges, cross-field rules). Errors should name
    /// the key.
    fn validate(_config: &Self::Config) -> Result<(), PolicyError> {
        Ok(())
    }

    /// Decide. `state` holds what the previous call left in it.
    fn evaluate(
        ctx: &Context,
        config: &Self::Config,
        state: &mut Self::State,
    ) -> Result<Decision, PolicyError>;
}

/// Parse a configuration: JSON syntax errors and type errors name the key path and
/// position (`invalid config: at 'jobs[0].targetSize': invalid type ...`).
pub fn parse_config<C: DeserializeOwned>(json: &str) -> Result<C, PolicyError> {
    let json = if json.trim().is_empty() { "{}" } else { json };
    let de = &mut serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            PolicyError::InvalidConfig(inner.to_string())
        } else {
            PolicyError::InvalidConfig(format!("at '{path}': {inner}"))
        }
    })
}

/// Decode the previous state; `None` or unreadable bytes give `Default` (and say why).
pub fn decode_state<S: DeserializeOwned + Default>(bytes: Option<&[u8]>) -> (S, Option<String>) {
    match bytes {
        None => (S::default(), None),
        Some(b) => match serde_json::from_slice(b) {
            Ok(s) => (s, None),
            Err(e) => (
                S::default(),
                Some(format!("previous state unreadable ({e}); starting fresh")),
            ),
        },
    }
}

/// Encode state for the host to keep.
pub fn encode_state<S: Serialize>(state: &S) -> Result<Vec<u8>, PolicyError> {
    serde_json::to_vec(state).map_err(|e| PolicyError::Internal(format!("cannot encode state: {e}")))
}

pub(crate) fn validate_config<P: Policy>(json: &str) -> Result<P::Config, PolicyError> {
    let cfg = parse_config::<P::Config>(json)?;
    P::validate(&cfg)?;
    Ok(cfg)
}

pub(crate) fn evaluate<P: Policy>(ctx: &Context) -> Result<Decision, PolicyError> {
    let cfg = validate_config::<P>(&ctx.config)?;
    let (mut state, warning) = decode_state::<P::State>(ctx.state.as_deref());
    if let Some(w) = warning {
        crate::host::log(crate::host::LogLevel::Warn, &w);
    }
    let mut decision = P::evaluate(ctx, &cfg, &mut state)?;
    for m in &decision.metrics {
        crate::math::finite(&format!("metric '{}'", m.name), m.value)?;
    }
    decision.state = Some(encode_state(&state)?);
    Ok(decision)
}
