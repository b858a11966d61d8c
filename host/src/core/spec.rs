//! A workload's autoscaling spec, read from its annotations. Plain strings in, typed
//! spec out, with errors that name the annotation: the controller reads Kubernetes
//! annotations, the simulator builds the same map from a scenario file.

use std::collections::BTreeMap;

use serde_json::Value;

use super::behavior::Behavior;
use super::guardrails::{Fallback, Guardrails};
use crate::runtime::PolicyRef;

pub const PREFIX: &str = "wasmscaler.io/";
pub const POLICY: &str = "wasmscaler.io/policy";
pub const CONFIG: &str = "wasmscaler.io/config";
pub const MIN_REPLICAS: &str = "wasmscaler.io/min-replicas";
pub const MAX_REPLICAS: &str = "wasmscaler.io/max-replicas";
pub const BEHAVIOR: &str = "wasmscaler.io/behavior";
pub const FALLBACK: &str = "wasmscaler.io/fallback";
pub const MODE: &str = "wasmscaler.io/mode";
pub const PAUSED: &str = "wasmscaler.io/paused";
pub const TARGET: &str = "wasmscaler.io/target";
pub const INTERVAL: &str = "wasmscaler.io/interval";
/// On an object another workload scales (its `target` or a pool variant): who may.
/// Read by the controller from that object, never from the annotated workload's own spec;
/// known here so that a managed workload may also be another's target.
pub const SCALABLE_BY: &str = "wasmscaler.io/scalable-by";
/// Written by the host, never read as input.
pub const STATUS: &str = "wasmscaler.io/status";
pub const STATE: &str = "wasmscaler.io/state";

const KNOWN: &[&str] = &[
    POLICY,
    CONFIG,
    MIN_REPLICAS,
    MAX_REPLICAS,
    BEHAVIOR,
    FALLBACK,
    MODE,
    PAUSED,
    TARGET,
    INTERVAL,
    SCALABLE_BY,
    STATUS,
    STATE,
];

/// Default evaluation interval (the HPA's sync period).
pub const DEFAULT_INTERVAL_MS: u64 = 15_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Decide and scale.
    Active,
    /// Decide and report, never scale.
    Shadow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pause {
    No,
    /// Leave replicas where they are.
    Hold,
    /// Scale to this many and stay (KEDA's paused-replicas).
    At(u32),
}

/// Keys of `wasmscaler.io/config` the host owns and removes before a policy sees its
/// config: the signal mapping and the pool mapping.
pub const SIGNALS_KEY: &str = "signals";
pub const VARIANTS_KEY: &str = "variants";

/// `config` as a policy receives it: without the host-owned keys.
pub fn policy_view(mut config: Value) -> Value {
    if let Value::Object(m) = &mut config {
        m.remove(SIGNALS_KEY);
        m.remove(VARIANTS_KEY);
    }
    config
}

/// One policy on a workload and its configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyBinding {
    pub reference: PolicyRef,
    /// Configuration as JSON text, host-owned keys removed.
    pub config_json: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadSpec {
    pub policies: Vec<PolicyBinding>,
    pub guardrails: Guardrails,
    pub mode: Mode,
    pub pause: Pause,
    /// Host-owned signal mapping (`signals:` in the config): signal name -> source spec,
    /// interpreted by the adapter (PromQL, Redis list, ...).
    pub signal_sources: BTreeMap<String, Value>,
    /// Host-owned pool mapping (`variants:` in the config): pool name -> the workload that
    /// runs it (see [`crate::core::pools`]).
    pub pool_variants: BTreeMap<String, String>,
    /// Evaluation interval.
    pub interval_ms: u64,
    /// `wasmscaler.io/target` (a resource with a /scale subresource), verbatim.
    pub target: Option<String>,
}

/// A problem with one annotation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("annotation {annotation}: {message}")]
pub struct SpecError {
    pub annotation: String,
    pub message: String,
}

fn err(annotation: &str, message: impl Into<String>) -> SpecError {
    SpecError {
        annotation: annotation.to_string(),
        message: message.into(),
    }
}

impl WorkloadSpec {
    /// Whether the annotations ask for autoscaling at all.
    pub fn is_managed(annotations: &BTreeMap<String, String>) -> bool {
        annotations.contains_key(POLICY)
    }

    /// Parse the `wasmscaler.io/*` annotations. `default_max` bounds workloads that do
    /// not say (the HPA requires maxReplicas; we default rather than refuse).
    pub fn from_annotations(a: &BTreeMap<String, String>, default_max: u32) -> Result<Self, SpecError> {
        if let Some(unknown) = a
            .keys()
            .find(|k| k.starts_with(PREFIX) && !KNOWN.contains(&k.as_str()))
        {
            return Err(err(
                unknown,
                format!("unknown annotation (known: {})", KNOWN.join(", ")),
            ));
        }
        let refs_text = a.get(POLICY).ok_or_else(|| err(POLICY, "missing"))?;
        let refs = PolicyRef::parse_list(refs_text).map_err(|e| err(POLICY, e.to_string()))?;
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = refs.iter().find(|r| !seen.insert(r.key().to_string())) {
            return Err(err(POLICY, format!("'{}' is named twice", dup.key())));
        }

        let config = match a.get(CONFIG) {
            Some(text) => parse_yaml_or_json(text).map_err(|m| err(CONFIG, m))?,
            None => Value::Object(Default::default()),
        };
        let Value::Object(mut config) = config else {
            return Err(err(CONFIG, "must be a mapping of keys to values"));
        };
        let signal_sources = match config.remove(SIGNALS_KEY) {
            None => BTreeMap::new(),
            Some(Value::Object(m)) => m.into_iter().collect(),
            Some(_) => return Err(err(CONFIG, "'signals' must map signal names to sources")),
        };
        let pool_variants = match config.remove(VARIANTS_KEY) {
            None => BTreeMap::new(),
            Some(Value::Object(m)) => {
                let mut out = BTreeMap::new();
                for (pool, w) in m {
                    match w.as_str().map(str::trim) {
                        Some(w) if !w.is_empty() => out.insert(pool, w.to_string()),
                        _ => {
                            return Err(err(
                                CONFIG,
                                format!("'variants.{pool}' must name the workload that runs pool '{pool}'"),
                            ));
                        }
                    };
                }
                out
            }
            Some(_) => {
                return Err(err(
                    CONFIG,
                    "'variants' must map pool names to workloads, e.g. {spot: web-spot, on-demand: web-on-demand}",
                ));
            }
        };
        // One policy: the whole mapping is its config. Several: one key per policy.
        let policies = if refs.len() == 1 {
            vec![PolicyBinding {
                reference: refs[0].clone(),
                config_json: Value::Object(config).to_string(),
            }]
        } else {
            if let Some(k) = config
                .keys()
                .find(|k| !refs.iter().any(|r| r.key() == k.as_str()))
            {
                return Err(err(
                    CONFIG,
                    format!(
                        "with several policies the config has one key per policy; '{k}' names none of them"
                    ),
                ));
            }
            refs.iter()
                .map(|r| PolicyBinding {
                    reference: r.clone(),
                    config_json: config
                        .get(r.key())
                        .cloned()
                        .unwrap_or_else(|| Value::Object(Default::default()))
                        .to_string(),
                })
                .collect()
        };

        let min_replicas = parse_u32(a, MIN_REPLICAS)?.unwrap_or(1);
        let max_replicas = parse_u32(a, MAX_REPLICAS)?.unwrap_or(default_max.max(min_replicas));
        if min_replicas > max_replicas {
            return Err(err(
                MIN_REPLICAS,
                format!("min-replicas {min_replicas} is above max-replicas {max_replicas}"),
            ));
        }
        let behavior: Option<Behavior> = match a.get(BEHAVIOR) {
            Some(text) => Some(typed(text).map_err(|m| err(BEHAVIOR, m))?),
            None => None,
        };
        if let Some(b) = &behavior {
            b.validate().map_err(|m| err(BEHAVIOR, m))?;
        }
        let fallback: Option<Fallback> = match a.get(FALLBACK) {
            Some(text) => Some(typed(text).map_err(|m| err(FALLBACK, m))?),
            None => None,
        };
        if let Some(f) = &fallback
            && f.failure_threshold == 0
        {
            return Err(err(FALLBACK, "failureThreshold must be > 0"));
        }
        let mode = match a.get(MODE).map(|s| s.trim()) {
            None | Some("active") => Mode::Active,
            Some("shadow") => Mode::Shadow,
            Some(other) => return Err(err(MODE, format!("'{other}' is neither 'active' nor 'shadow'"))),
        };
        let pause = match a.get(PAUSED).map(|s| s.trim()) {
            None | Some("false") => Pause::No,
            Some("true") => Pause::Hold,
            Some(n) => Pause::At(
                n.parse()
                    .map_err(|_| err(PAUSED, format!("'{n}' is neither true/false nor a replica count")))?,
            ),
        };
        let interval_ms = match a.get(INTERVAL) {
            None => DEFAULT_INTERVAL_MS,
            Some(t) => parse_duration_ms(t).map_err(|m| err(INTERVAL, m))?,
        };
        Ok(Self {
            policies,
            guardrails: Guardrails {
                min_replicas,
                max_replicas,
                behavior,
                fallback,
            },
            mode,
            pause,
            signal_sources,
            pool_variants,
            interval_ms,
            target: a.get(TARGET).cloned(),
        })
    }
}

fn parse_u32(a: &BTreeMap<String, String>, key: &str) -> Result<Option<u32>, SpecError> {
    a.get(key)
        .map(|v| {
            v.trim()
                .parse::<u32>()
                .map_err(|_| err(key, format!("'{v}' is not a non-negative integer")))
        })
        .transpose()
}

/// YAML (a superset of JSON) into a JSON value; errors carry line and column.
pub fn parse_yaml_or_json(text: &str) -> Result<Value, String> {
    let v: Value = serde_norway::from_str(text).map_err(|e| e.to_string())?;
    Ok(if v.is_null() {
        Value::Object(Default::default())
    } else {
        v
    })
}

fn typed<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    let v = parse_yaml_or_json(text)?;
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.into_inner().to_string()
        } else {
            format!("at '{path}': {}", e.into_inner())
        }
    })
}

/// A positive duration in ms: `15s`, `2m`, `1h30m`, `7d`, `500ms` or a bare number of
/// seconds, read by the SDK's [`wasmscaler_sdk::Duration`] so annotations, signal sources and
/// policy configs accept the same forms.
pub fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let d = wasmscaler_sdk::Duration::parse(text)?;
    u64::try_from(d.ms())
        .ok()
        .filter(|&ms| ms > 0)
        .ok_or_else(|| format!("'{}' must be a positive duration", text.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn durations_read_like_policy_configs_and_must_be_positive() {
        assert_eq!(parse_duration_ms("15s"), Ok(15_000));
        assert_eq!(parse_duration_ms("90"), Ok(90_000));
        assert_eq!(parse_duration_ms("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration_ms("7d"), Ok(604_800_000));
        assert!(parse_duration_ms("0s").unwrap_err().contains("positive"));
        assert!(parse_duration_ms("-5s").unwrap_err().contains("positive"));
        assert!(parse_duration_ms("soon").unwrap_err().contains("not a duration"));
    }

    #[test]
    fn reads_every_annotation() {
        let a = ann(&[
            (POLICY, "knative-concurrency"),
            (
                CONFIG,
                "target: 50\nsignals:\n  concurrency: {prometheus: 'sum(x)'}\n",
            ),
            (MIN_REPLICAS, "2"),
            (MAX_REPLICAS, "30"),
            (BEHAVIOR, "scaleDown:\n  stabilizationWindowSeconds: 60\n"),
            (FALLBACK, "{failureThreshold: 3, replicas: 6}"),
            (MODE, "shadow"),
            (PAUSED, "false"),
            (INTERVAL, "2s"),
        ]);
        let s = WorkloadSpec::from_annotations(&a, 100).unwrap();
        assert_eq!(s.policies[0].config_json, r#"{"target":50}"#);
        assert!(s.signal_sources.contains_key("concurrency"));
        assert_eq!((s.guardrails.min_replicas, s.guardrails.max_replicas), (2, 30));
        assert_eq!(
            s.guardrails
                .behavior
                .as_ref()
                .unwrap()
                .down()
                .stabilization_window_seconds,
            60
        );
        assert_eq!(s.guardrails.fallback.as_ref().map(|f| f.replicas), Some(6));
        assert_eq!(s.mode, Mode::Shadow);
        assert_eq!(s.interval_ms, 2000);
    }

    #[test]
    fn several_policies_take_one_config_key_each() {
        let a = ann(&[
            (POLICY, "cron, hpa"),
            (CONFIG, "cron: {jobs: []}\nhpa: {tolerance: 0.2}"),
        ]);
        let s = WorkloadSpec::from_annotations(&a, 10).unwrap();
        assert_eq!(s.policies.len(), 2);
        assert_eq!(s.policies[1].config_json, r#"{"tolerance":0.2}"#);
        let bad = ann(&[(POLICY, "cron,hpa"), (CONFIG, "crom: {}")]);
        assert!(
            WorkloadSpec::from_annotations(&bad, 10)
                .unwrap_err()
                .to_string()
                .contains("'crom'")
        );
    }

    #[test]
    fn errors_name_the_annotation() {
        let cases = [
            (vec![(POLICY, "Cron")], POLICY),
            (vec![(POLICY, "cron"), (CONFIG, "a: [1, 2")], CONFIG),
            (
                vec![(POLICY, "cron"), (MIN_REPLICAS, "5"), (MAX_REPLICAS, "2")],
                MIN_REPLICAS,
            ),
            (vec![(POLICY, "cron"), (MAX_REPLICAS, "-1")], MAX_REPLICAS),
            (
                vec![
                    (POLICY, "cron"),
                    (BEHAVIOR, "scaleUp: {stabilizationWindowSeconds: 7200}"),
                ],
                BEHAVIOR,
            ),
            (
                vec![
                    (POLICY, "cron"),
                    (BEHAVIOR, "scaleUp: {policies: [{type: Pods, value: 1}]}"),
                ],
                BEHAVIOR,
            ),
            (vec![(POLICY, "cron"), (MODE, "dry")], MODE),
            (vec![(POLICY, "cron"), (PAUSED, "maybe")], PAUSED),
            (
                vec![(POLICY, "cron"), ("wasmscaler.io/polcy", "x")],
                "wasmscaler.io/polcy",
            ),
        ];
        for (pairs, key) in cases {
            let e = WorkloadSpec::from_annotations(&ann(&pairs), 10).unwrap_err();
            assert_eq!(e.annotation, key, "{e}");
        }
        let e =
            WorkloadSpec::from_annotations(&ann(&[(POLICY, "cron"), (CONFIG, "a: [1, 2")]), 10).unwrap_err();
        assert!(e.message.contains("line"), "{e}");
    }
}
