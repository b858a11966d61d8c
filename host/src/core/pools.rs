//! Which workload runs each pool of a placing policy (spot-fallback's `placement`): the
//! host-owned `variants:` key of `wasmscaler.io/config`, stripped before any policy sees
//! its config, as `signals:` is. The policy decides how many replicas go to each pool;
//! the adapter decides what a pool is (the controller: a Deployment variant per pool).
//!
//! - `variants: {spot: web-spot, on-demand: web-on-demand}` maps each pool by name.
//! - Without it, a workload whose policies include the built-in `spot-fallback` gets
//!   that policy's default pools: `spot` -> `<workload>-spot`, `on-demand` ->
//!   `<workload>-on-demand`.
//! - Otherwise the workload has no pools: a placement it returns names a pool nobody
//!   maps, which the actuator reports by name.

use super::spec::WorkloadSpec;

/// One pool and the workload that runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    pub name: String,
    pub workload: String,
}

/// The built-in that places replicas on pools without a `variants:` mapping.
const DEFAULT_POOLS_POLICY: &str = "spot-fallback";

/// The pools of the workload `name` with `spec` (None: it has none).
pub fn pools_of(spec: &WorkloadSpec, name: &str) -> Option<Vec<Pool>> {
    if !spec.pool_variants.is_empty() {
        return Some(
            spec.pool_variants
                .iter()
                .map(|(pool, workload)| Pool {
                    name: pool.clone(),
                    workload: workload.clone(),
                })
                .collect(),
        );
    }
    spec.policies
        .iter()
        .any(|b| b.reference.key() == DEFAULT_POOLS_POLICY)
        .then(|| {
            ["spot", "on-demand"]
                .iter()
                .map(|pool| Pool {
                    name: pool.to_string(),
                    workload: format!("{name}-{pool}"),
                })
                .collect()
        })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn spec(policy: &str, config: &str) -> WorkloadSpec {
        let a = BTreeMap::from([
            ("wasmscaler.io/policy".to_string(), policy.to_string()),
            ("wasmscaler.io/config".to_string(), config.to_string()),
        ]);
        WorkloadSpec::from_annotations(&a, 10).unwrap()
    }

    #[test]
    fn pools_are_the_variants_mapping_else_spot_fallbacks_defaults() {
        let pools = |policy: &str, config: &str| {
            pools_of(&spec(policy, config), "web")
                .map(|ps| ps.into_iter().map(|p| (p.name, p.workload)).collect::<Vec<_>>())
        };
        let owned = |v: &[(&str, &str)]| {
            Some(
                v.iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(
            pools("spot-fallback", "averageValue: 1"),
            owned(&[("spot", "web-spot"), ("on-demand", "web-on-demand")])
        );
        assert_eq!(
            pools(
                "spot-fallback",
                "averageValue: 1\nvariants: {cheap: web-cheap, on-demand: web}"
            ),
            owned(&[("cheap", "web-cheap"), ("on-demand", "web")])
        );
        assert_eq!(pools("file:mine.wasm", "variants: {a: x}"), owned(&[("a", "x")]));
        assert_eq!(pools("hpa", "{}"), None);
    }

    #[test]
    fn a_managed_workload_may_also_carry_the_opt_in_of_a_target() {
        let a = BTreeMap::from([
            ("wasmscaler.io/policy".to_string(), "hpa".to_string()),
            ("wasmscaler.io/scalable-by".to_string(), "other".to_string()),
        ]);
        assert!(WorkloadSpec::from_annotations(&a, 10).is_ok());
    }

    #[test]
    fn variants_never_reach_the_policy_and_must_name_workloads() {
        let s = spec("spot-fallback", "averageValue: 1\nvariants: {spot: web-spot}");
        assert_eq!(s.policies[0].config_json, r#"{"averageValue":1}"#);
        let a = |config: &str| {
            BTreeMap::from([
                ("wasmscaler.io/policy".to_string(), "spot-fallback".to_string()),
                ("wasmscaler.io/config".to_string(), config.to_string()),
            ])
        };
        let e = WorkloadSpec::from_annotations(&a("variants: {spot: ''}"), 10).unwrap_err();
        assert_eq!(
            e.to_string(),
            "annotation wasmscaler.io/config: 'variants.spot' must name the workload that runs pool 'spot'"
        );
        let e = WorkloadSpec::from_annotations(&a("variants: [web-spot]"), 10).unwrap_err();
        assert!(
            e.to_string()
                .contains("'variants' must map pool names to workloads"),
            "{e}"
        );
    }
}
