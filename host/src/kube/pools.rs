//! spot-fallback actuation: the policy's `placement` (pool -> replicas) scaled onto one
//! workload variant per pool through `/scale`.
//!
//! - The pools are the spot-fallback config's `pools` (default: `spot` and `on-demand`).
//! - Pool `P` of the annotated workload `W` is the Deployment (StatefulSet when `W` is
//!   one) named by the pool's `workload` key, else `W-P` (e.g. `web-spot`,
//!   `web-on-demand`), in `W`'s namespace. The variants carry the nodeSelector/tolerations
//!   of their capacity type; `W` itself only holds the annotations (keep it at 0
//!   replicas, or name it as one pool's `workload`).
//! - The workload's current replicas, as the policy sees them, are the sum over the
//!   variants (spec), ready replicas the sum of their `readyReplicas`.
//! - Every pool in the placement is written (`/scale` get + update of `spec.replicas`;
//!   RBAC: `deployments/scale` get, update); a missing variant is an error naming it;
//!   the others are still written. Pools that grow are written before pools that
//!   shrink, so capacity moving between pools never dips in between the writes.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v1::Scale;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use wasmscaler_sdk::PoolReplicas;

use super::signals_api::TargetRef;
use crate::core::WorkloadSpec;

/// One pool and the workload variant that runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    pub name: String,
    pub capacity_type: String,
    pub workload: String,
}

/// The pools of a spot-fallback workload (None when it has no spot-fallback policy).
pub fn pools_of(target: &TargetRef) -> Option<Vec<Pool>> {
    let spec = WorkloadSpec::from_annotations(&target.annotations, u32::MAX).ok()?;
    let binding = spec
        .policies
        .iter()
        .find(|b| b.reference.key() == "spot-fallback")
        .or_else(|| {
            spec.policies.iter().find(|b| {
                serde_json::from_str::<Value>(&b.config_json)
                    .ok()
                    .is_some_and(|c| c.get("pools").is_some())
            })
        })?;
    let config: Value = serde_json::from_str(&binding.config_json).ok()?;
    let default_pools = json!([
        {"name": "spot", "capacityType": "spot"},
        {"name": "on-demand", "capacityType": "on-demand"}
    ]);
    let pools = config.get("pools").unwrap_or(&default_pools).as_array()?;
    pools
        .iter()
        .map(|p| {
            let name = p.get("name")?.as_str()?.to_string();
            let capacity_type = p.get("capacityType")?.as_str()?.to_string();
            let workload = p
                .get("workload")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| format!("{}-{}", target.name, name));
            Some(Pool {
                name,
                capacity_type,
                workload,
            })
        })
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum PoolsError {
    #[error("{0}/{1} has no spot-fallback pools")]
    NoPools(String, String),
    #[error("placement names pool '{0}', which the config does not list")]
    UnknownPool(String),
    #[error("pool '{pool}': {kind} {ns}/{workload}: {message}")]
    Scale {
        pool: String,
        kind: &'static str,
        ns: String,
        workload: String,
        message: String,
    },
}

fn kind_of(target: &TargetRef) -> &'static str {
    if target.kind == "StatefulSet" {
        "StatefulSet"
    } else {
        "Deployment"
    }
}

/// `name`'s `/scale` (the resourceVersion it carries makes the later update fail with a
/// conflict if someone else wrote in between, instead of overwriting them).
async fn get_scale(client: &kube::Client, target: &TargetRef, name: &str) -> Result<Scale, kube::Error> {
    let ns = &target.namespace;
    if kind_of(target) == "StatefulSet" {
        Api::<StatefulSet>::namespaced(client.clone(), ns)
            .get_scale(name)
            .await
    } else {
        Api::<Deployment>::namespaced(client.clone(), ns)
            .get_scale(name)
            .await
    }
}

/// Update `name`'s `/scale` (get + update: the RBAC verbs the controller has).
async fn put_scale(
    client: &kube::Client,
    target: &TargetRef,
    name: &str,
    scale: &Scale,
) -> Result<(), kube::Error> {
    let ns = &target.namespace;
    let pp = PostParams::default();
    if kind_of(target) == "StatefulSet" {
        Api::<StatefulSet>::namespaced(client.clone(), ns)
            .replace_scale(name, &pp, scale)
            .await?;
    } else {
        Api::<Deployment>::namespaced(client.clone(), ns)
            .replace_scale(name, &pp, scale)
            .await?;
    }
    Ok(())
}

fn spec_replicas(scale: &Scale) -> u32 {
    u32::try_from(scale.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)).unwrap_or(0)
}

/// The order in which to write `(before, after)` moves: every pool that grows before any
/// pool that shrinks (make before break). Replicas moving from one pool to another are
/// two writes; shrinking first would leave a window with less capacity than either the
/// old or the new placement, so the total never dips below the smaller of the two.
fn grow_first(moves: &[(u32, u32)]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..moves.len()).collect();
    order.sort_by_key(|&i| moves[i].1 < moves[i].0);
    order
}

async fn read(client: &kube::Client, target: &TargetRef, name: &str) -> Result<(u32, u32), String> {
    let n = |v: Option<i32>| u32::try_from(v.unwrap_or(0)).unwrap_or(0);
    if kind_of(target) == "StatefulSet" {
        let s = Api::<StatefulSet>::namespaced(client.clone(), &target.namespace)
            .get(name)
            .await
            .map_err(|e| e.to_string())?;
        Ok((
            n(s.spec.and_then(|s| s.replicas)),
            n(s.status.and_then(|s| s.ready_replicas)),
        ))
    } else {
        let d = Api::<Deployment>::namespaced(client.clone(), &target.namespace)
            .get(name)
            .await
            .map_err(|e| e.to_string())?;
        Ok((
            n(d.spec.and_then(|s| s.replicas)),
            n(d.status.and_then(|s| s.ready_replicas)),
        ))
    }
}

/// (replicas, ready) summed over the pool variants; None when `target` has no pools.
/// A variant that cannot be read counts as 0 (it is reported when scaling it fails).
pub async fn current(client: &kube::Client, target: &TargetRef) -> Option<(u32, u32)> {
    let pools = pools_of(target)?;
    let mut sum = (0u32, 0u32);
    for p in &pools {
        if let Ok((r, ready)) = read(client, target, &p.workload).await {
            sum.0 += r;
            sum.1 += ready;
        }
    }
    Some(sum)
}

/// Scale each pool's variant to its share, growing pools first (see `grow_first`).
/// Returns one "pool variant from->to" line per variant that changed (in dry-run: would
/// change; nothing is written).
pub async fn actuate(
    client: &kube::Client,
    target: &TargetRef,
    placement: &[PoolReplicas],
    dry_run: bool,
) -> Result<Vec<String>, Vec<PoolsError>> {
    let Some(pools) = pools_of(target) else {
        return Err(vec![PoolsError::NoPools(
            target.namespace.clone(),
            target.name.clone(),
        )]);
    };
    let mut errors = Vec::new();
    let scale_error = |pool: &Pool, e: kube::Error| PoolsError::Scale {
        pool: pool.name.clone(),
        kind: kind_of(target),
        ns: target.namespace.clone(),
        workload: pool.workload.clone(),
        message: e.to_string(),
    };
    let mut planned = Vec::new();
    for pr in placement {
        let Some(pool) = pools.iter().find(|p| p.name == pr.pool) else {
            errors.push(PoolsError::UnknownPool(pr.pool.clone()));
            continue;
        };
        match get_scale(client, target, &pool.workload).await {
            Ok(scale) => planned.push((pool, pr.replicas, scale)),
            Err(e) => errors.push(scale_error(pool, e)),
        }
    }
    let moves: Vec<(u32, u32)> = planned
        .iter()
        .map(|(_, want, s)| (spec_replicas(s), *want))
        .collect();
    let mut done = Vec::new();
    for i in grow_first(&moves) {
        let (before, want) = moves[i];
        if before == want {
            continue;
        }
        let (pool, _, scale) = &planned[i];
        if !dry_run {
            let mut next = scale.clone();
            let mut spec = next.spec.take().unwrap_or_default();
            spec.replicas = Some(i32::try_from(want).unwrap_or(i32::MAX));
            next.spec = Some(spec);
            if let Err(e) = put_scale(client, target, &pool.workload, &next).await {
                errors.push(scale_error(pool, e));
                continue;
            }
        }
        done.push(format!("{} {} {before}->{want}", pool.name, pool.workload));
    }
    if errors.is_empty() { Ok(done) } else { Err(errors) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn target(config: &str) -> TargetRef {
        TargetRef {
            namespace: "shop".into(),
            kind: "Deployment".into(),
            api_version: "apps/v1".into(),
            name: "web".into(),
            uid: None,
            labels: BTreeMap::new(),
            annotations: [
                ("wasmscaler.io/policy".to_string(), "spot-fallback".to_string()),
                ("wasmscaler.io/config".to_string(), config.to_string()),
            ]
            .into(),
            pod_selector: None,
            replicas: 0,
            ready_replicas: 0,
        }
    }

    #[test]
    fn growing_pools_are_written_before_shrinking_ones() {
        // spot 4 -> 6 listed first, on-demand 6 -> 4 second: on-demand must wait.
        assert_eq!(grow_first(&[(6, 4), (4, 6)]), vec![1, 0]);
        assert_eq!(grow_first(&[(4, 6), (6, 4)]), vec![0, 1]);
        // Unchanged and growing keep their listed order, ahead of every shrink.
        assert_eq!(grow_first(&[(3, 1), (2, 2), (0, 5), (9, 0)]), vec![1, 2, 0, 3]);
    }

    #[test]
    fn pools_map_to_variants() {
        let p = pools_of(&target("averageValue: 100")).unwrap();
        assert_eq!(p[0].workload, "web-spot");
        assert_eq!(p[1].workload, "web-on-demand");
        let p = pools_of(&target(
            "averageValue: 1\npools: [{name: a, capacityType: spot, workload: web-cheap}, {name: b, capacityType: on-demand}]",
        ))
        .unwrap();
        assert_eq!(
            (p[0].workload.as_str(), p[1].workload.as_str()),
            ("web-cheap", "web-b")
        );
    }
}
