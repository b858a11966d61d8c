//! Configuration of `spot-fallback`: keys, defaults, durations and validation.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use wasmscaler_sdk::PolicyError;

/// The longest `interruptionWindow`: the window of `spot-interruptions` the policy asks the
/// host for (the request in `info()` cannot depend on the configuration).
pub const MAX_INTERRUPTION_WINDOW_MS: u64 = 3_600_000;

pub use wasmscaler_sdk::Duration;

/// How many replicas move back to spot per step: a count (`2`) or a percentage of the
/// total replicas (`"10%"`, rounded up, at least 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Amount {
    Replicas(u32),
    Percent(f64),
}

impl Amount {
    /// Replicas this amount stands for out of `total` (at least 1).
    pub fn of(self, total: u32) -> u32 {
        match self {
            Amount::Replicas(n) => n.max(1),
            Amount::Percent(p) => wasmscaler_sdk::math::ceil_u32(f64::from(total) * p / 100.0).max(1),
        }
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Amount::Replicas(n) => write!(f, "{n}"),
            Amount::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Amount;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of replicas (e.g. 2) or a percentage string (e.g. \"10%\")")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Amount, E> {
                u32::try_from(v)
                    .map(Amount::Replicas)
                    .map_err(|_| E::custom(format!("{v} replicas is too many")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Amount, E> {
                if v < 0 {
                    return Err(E::custom(format!("must not be negative, got {v}")));
                }
                self.visit_u64(v as u64)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Amount, E> {
                let p = v
                    .trim()
                    .strip_suffix('%')
                    .and_then(|n| n.trim().parse::<f64>().ok())
                    .ok_or_else(|| E::custom(format!("'{v}' is not a percentage like \"10%\"")))?;
                Ok(Amount::Percent(p))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum CapacityType {
    #[serde(rename = "spot")]
    Spot,
    #[serde(rename = "on-demand")]
    OnDemand,
}

/// One pool the host maps to a workload variant (e.g. a Deployment per capacity type).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Pool {
    pub name: String,
    pub capacity_type: CapacityType,
    #[serde(default)]
    pub price_per_hour: Option<f64>,
    /// No longer read here: which workload runs a pool is the host's business, given by
    /// the host-owned `variants:` key (stripped before the policy sees its config).
    /// Kept only to say so instead of "unknown field".
    #[serde(default)]
    pub workload: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    #[serde(default = "default_load_signal")]
    pub load_signal: String,
    pub average_value: f64,
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    #[serde(default)]
    pub min_replicas: Option<u32>,
    #[serde(default)]
    pub max_replicas: Option<u32>,
    #[serde(default = "default_pools")]
    pub pools: Vec<Pool>,
    #[serde(default = "default_on_demand_base")]
    pub on_demand_base: f64,
    #[serde(default)]
    pub on_demand_min: u32,
    #[serde(default)]
    pub min_available: Option<f64>,
    #[serde(
        default = "default_pending_timeout",
        deserialize_with = "wasmscaler_sdk::duration::non_negative"
    )]
    pub pending_timeout: Duration,
    #[serde(default = "default_max_interruptions")]
    pub max_interruptions: u32,
    #[serde(
        default = "default_ten_minutes",
        deserialize_with = "wasmscaler_sdk::duration::non_negative"
    )]
    pub interruption_window: Duration,
    #[serde(
        default = "default_ten_minutes",
        deserialize_with = "wasmscaler_sdk::duration::non_negative"
    )]
    pub calm_period: Duration,
    #[serde(default = "default_move_back_step")]
    pub move_back_step: Amount,
    #[serde(
        default = "default_move_back_interval",
        deserialize_with = "wasmscaler_sdk::duration::non_negative"
    )]
    pub move_back_interval: Duration,
}

fn default_load_signal() -> String {
    "load".into()
}
fn default_tolerance() -> f64 {
    0.1
}
pub fn default_pools() -> Vec<Pool> {
    vec![
        Pool {
            name: "spot".into(),
            capacity_type: CapacityType::Spot,
            price_per_hour: None,
            workload: None,
        },
        Pool {
            name: "on-demand".into(),
            capacity_type: CapacityType::OnDemand,
            price_per_hour: None,
            workload: None,
        },
    ]
}
fn default_on_demand_base() -> f64 {
    0.3
}
fn default_pending_timeout() -> Duration {
    Duration(120_000)
}
fn default_max_interruptions() -> u32 {
    2
}
fn default_ten_minutes() -> Duration {
    Duration(600_000)
}
fn default_move_back_step() -> Amount {
    Amount::Percent(10.0)
}
fn default_move_back_interval() -> Duration {
    Duration(60_000)
}

fn bad(msg: String) -> PolicyError {
    PolicyError::InvalidConfig(msg)
}

pub fn validate(cfg: &Config) -> Result<(), PolicyError> {
    if cfg.load_signal.trim().is_empty() {
        return Err(bad("'loadSignal' must not be empty".into()));
    }
    if !(cfg.average_value.is_finite() && cfg.average_value > 0.0) {
        return Err(bad(format!(
            "'averageValue' must be a number > 0, got {}",
            cfg.average_value
        )));
    }
    if !(cfg.tolerance.is_finite() && (0.0..1.0).contains(&cfg.tolerance)) {
        return Err(bad(format!(
            "'tolerance' must be in [0, 1), got {}",
            cfg.tolerance
        )));
    }
    if let (Some(min), Some(max)) = (cfg.min_replicas, cfg.max_replicas)
        && min > max
    {
        return Err(bad(format!(
            "'minReplicas' ({min}) must not exceed 'maxReplicas' ({max})"
        )));
    }
    if cfg.max_replicas == Some(0) {
        return Err(bad("'maxReplicas' must be at least 1, got 0".into()));
    }
    if cfg.pools.is_empty() {
        return Err(bad("'pools' must list a spot pool and an on-demand pool".into()));
    }
    let priced = cfg.pools.iter().filter(|p| p.price_per_hour.is_some()).count();
    for (i, p) in cfg.pools.iter().enumerate() {
        if p.name.trim().is_empty() {
            return Err(bad(format!("'pools[{i}].name' must not be empty")));
        }
        if let Some(j) = cfg.pools[..i].iter().position(|o| o.name == p.name) {
            return Err(bad(format!(
                "'pools[{i}].name' repeats '{}' of 'pools[{j}]'",
                p.name
            )));
        }
        match p.price_per_hour {
            Some(v) if !(v.is_finite() && v >= 0.0) => {
                return Err(bad(format!(
                    "'pools[{i}].pricePerHour' must be a number >= 0, got {v}"
                )));
            }
            None if priced > 0 => {
                return Err(bad(format!(
                    "'pools[{i}].pricePerHour' is missing: set a price on every pool or on none"
                )));
            }
            _ => {}
        }
        if p.workload.is_some() {
            return Err(bad(format!(
                "'pools[{i}].workload' moved to the host: map pools to workloads with the top-level \
                 'variants: {{{}: WORKLOAD}}' key of wasmscaler.io/config",
                p.name
            )));
        }
    }
    if !cfg.pools.iter().any(|p| p.capacity_type == CapacityType::Spot) {
        return Err(bad("'pools' has no pool with capacityType 'spot'".into()));
    }
    if !cfg
        .pools
        .iter()
        .any(|p| p.capacity_type == CapacityType::OnDemand)
    {
        return Err(bad(
            "'pools' has no pool with capacityType 'on-demand' to fall back to".into(),
        ));
    }
    if !(cfg.on_demand_base.is_finite() && (0.0..=1.0).contains(&cfg.on_demand_base)) {
        return Err(bad(format!(
            "'onDemandBase' must be in [0, 1], got {}",
            cfg.on_demand_base
        )));
    }
    if let Some(a) = cfg.min_available
        && !(a.is_finite() && a > 0.0 && a <= 1.0)
    {
        return Err(bad(format!("'minAvailable' must be in (0, 1], got {a}")));
    }
    if cfg.pending_timeout.ms() == 0 {
        return Err(bad("'pendingTimeout' must be longer than 0s".into()));
    }
    let w = cfg.interruption_window.ms_u64();
    if w == 0 || w > MAX_INTERRUPTION_WINDOW_MS {
        return Err(bad(format!(
            "'interruptionWindow' must be within (0s, 1h] (the window of 'spot-interruptions' the policy requests), got {}",
            cfg.interruption_window
        )));
    }
    match cfg.move_back_step {
        Amount::Replicas(0) => {
            return Err(bad("'moveBackStep' must be at least 1 replica, got 0".into()));
        }
        Amount::Percent(p) if !(p.is_finite() && p > 0.0 && p <= 100.0) => {
            return Err(bad(format!(
                "'moveBackStep' percentage must be in (0%, 100%], got {p}%"
            )));
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_workload_is_refused_pointing_at_the_hosts_variants() {
        let cfg: Config = wasmscaler_sdk::parse_config(
            r#"{"averageValue": 100, "pools": [{"name": "spot", "capacityType": "spot", "workload": "web-spot"},
                          {"name": "on-demand", "capacityType": "on-demand"}]}"#,
        )
        .unwrap();
        let e = validate(&cfg).unwrap_err().to_string();
        assert!(
            e.contains("'pools[0].workload' moved to the host") && e.contains("'variants: {spot: WORKLOAD}'"),
            "{e}"
        );
    }

    #[test]
    fn amounts_round_up_and_are_at_least_one() {
        assert_eq!(Amount::Percent(10.0).of(10), 1);
        assert_eq!(Amount::Percent(10.0).of(11), 2);
        assert_eq!(Amount::Percent(10.0).of(0), 1);
        assert_eq!(Amount::Percent(25.0).of(20), 5);
        assert_eq!(Amount::Replicas(3).of(100), 3);
    }
}
