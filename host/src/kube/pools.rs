//! spot-fallback actuation: the policy's `placement` (pool -> replicas) scaled onto one
//! workload variant per pool through `/scale`.
//!
//! - Pool `P` of the annotated workload `W` runs on the Deployment (StatefulSet when `W`
//!   is one) that the host-owned `variants:` key maps it to, by default `W-P` for
//!   spot-fallback's pools `spot` and `on-demand` (`web-spot`, `web-on-demand`;
//!   [`crate::core::pools`]), in `W`'s namespace. The variants carry the nodeSelector/tolerations
//!   of their capacity type; `W` itself only holds the annotations (keep it at 0
//!   replicas, or name it as one pool's `workload`).
//! - The workload's current replicas, as the policy sees them, are the sum over the
//!   variants (spec), ready replicas the sum of their `readyReplicas`.
//! - Every pool in the placement is written (`/scale` get + update of `spec.replicas`;
//!   RBAC: `deployments/scale` get, update); a missing variant is an error naming it;
//!   the others are still written. Pools that grow are written before pools that
//!   shrink, so capacity moving between pools never dips in between the writes.
//! - A variant other than `W` itself is scaled only if its owner opted in: its
//!   `wasmscaler.io/scalable-by` annotation lists `W` (or `*`), checked when replicas are
//!   read (a refusal is an `InvalidAnnotation`: nothing is evaluated) and again right
//!   before a placement is written (nothing is written if any variant refuses).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v1::Scale;
use kube::api::{Api, PostParams};
use wasmscaler_sdk::PoolReplicas;

use super::tenancy::{not_scalable_by, scalable_by};
use crate::core::WorkloadSpec;
use crate::core::adapter::TargetRef;
use crate::core::pools::Pool;

/// The pools of the annotated workload `target` (None: it has none), mapped as
/// [`crate::core::pools`] says.
pub fn pools_of(target: &TargetRef) -> Option<Vec<Pool>> {
    let spec = WorkloadSpec::from_annotations(&target.annotations, u32::MAX).ok()?;
    crate::core::pools::pools_of(&spec, &target.name)
}

#[derive(Debug, thiserror::Error)]
pub enum PoolsError {
    #[error("{0}/{1} has no spot-fallback pools")]
    NoPools(String, String),
    #[error(
        "placement names pool '{0}', which no workload runs: map it in wasmscaler.io/config's 'variants: {{{0}: WORKLOAD}}'"
    )]
    UnknownPool(String),
    #[error("pool '{pool}': {kind} {ns}/{workload}: {message}")]
    Scale {
        pool: String,
        kind: &'static str,
        ns: String,
        workload: String,
        message: String,
    },
    /// The variant's owner has not opted in (the message names it and the annotation).
    #[error("{0}")]
    NotOptedIn(String),
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

/// A variant's (spec.replicas, status.readyReplicas, annotations).
async fn read(
    client: &kube::Client,
    target: &TargetRef,
    name: &str,
) -> Result<(u32, u32, BTreeMap<String, String>), String> {
    let n = |v: Option<i32>| u32::try_from(v.unwrap_or(0)).unwrap_or(0);
    if kind_of(target) == "StatefulSet" {
        let s = Api::<StatefulSet>::namespaced(client.clone(), &target.namespace)
            .get(name)
            .await
            .map_err(|e| e.to_string())?;
        Ok((
            n(s.spec.and_then(|s| s.replicas)),
            n(s.status.and_then(|s| s.ready_replicas)),
            s.metadata.annotations.unwrap_or_default(),
        ))
    } else {
        let d = Api::<Deployment>::namespaced(client.clone(), &target.namespace)
            .get(name)
            .await
            .map_err(|e| e.to_string())?;
        Ok((
            n(d.spec.and_then(|s| s.replicas)),
            n(d.status.and_then(|s| s.ready_replicas)),
            d.metadata.annotations.unwrap_or_default(),
        ))
    }
}

/// Whether the variant `pool` may be scaled by `target`: it is the annotated workload
/// itself, or its owner opted in ([`scalable_by`]). Err: the refusal, naming the pool.
fn opted_in(target: &TargetRef, pool: &Pool, annotations: &BTreeMap<String, String>) -> Result<(), String> {
    if pool.workload == target.name || scalable_by(annotations, &target.name) {
        return Ok(());
    }
    let what = format!("{} {}/{}", kind_of(target), target.namespace, pool.workload);
    Err(format!(
        "pool '{}': {}",
        pool.name,
        not_scalable_by(&what, &target.kind, &target.name)
    ))
}

/// (replicas, ready) summed over the pool variants; Ok(None) when `target` has no pools.
/// A variant that cannot be read counts as 0 (it is reported when scaling it fails); one
/// that has not opted in to being scaled by `target` is the error.
pub async fn current(client: &kube::Client, target: &TargetRef) -> Result<Option<(u32, u32)>, String> {
    let Some(pools) = pools_of(target) else {
        return Ok(None);
    };
    let mut sum = (0u32, 0u32);
    for p in &pools {
        if let Ok((r, ready, annotations)) = read(client, target, &p.workload).await {
            opted_in(target, p, &annotations)?;
            sum.0 += r;
            sum.1 += ready;
        }
    }
    Ok(Some(sum))
}

/// The refusal if `pool`'s variant has not opted in, read just before writing it.
async fn check_opt_in(client: &kube::Client, target: &TargetRef, pool: &Pool) -> Result<(), PoolsError> {
    if pool.workload == target.name {
        return Ok(());
    }
    let ns = &target.namespace;
    let meta = if kind_of(target) == "StatefulSet" {
        Api::<StatefulSet>::namespaced(client.clone(), ns)
            .get_metadata(&pool.workload)
            .await
            .map(|m| m.metadata)
    } else {
        Api::<Deployment>::namespaced(client.clone(), ns)
            .get_metadata(&pool.workload)
            .await
            .map(|m| m.metadata)
    };
    let annotations = meta
        .map_err(|e| PoolsError::Scale {
            pool: pool.name.clone(),
            kind: kind_of(target),
            ns: ns.clone(),
            workload: pool.workload.clone(),
            message: e.to_string(),
        })?
        .annotations
        .unwrap_or_default();
    opted_in(target, pool, &annotations).map_err(PoolsError::NotOptedIn)
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
        if !dry_run && let Err(e) = check_opt_in(client, target, pool).await {
            errors.push(e);
            continue;
        }
        match get_scale(client, target, &pool.workload).await {
            Ok(scale) => planned.push((pool, pr.replicas, scale)),
            Err(e) => errors.push(scale_error(pool, e)),
        }
    }
    // A variant that refuses this workload stops the whole placement: writing only the
    // others would move capacity without the half that was to replace it.
    if errors.iter().any(|e| matches!(e, PoolsError::NotOptedIn(_))) {
        return Err(errors);
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
        let p = pools_of(&target("averageValue: 1\nvariants: {a: web-cheap, b: web}")).unwrap();
        assert_eq!(
            (p[0].workload.as_str(), p[1].workload.as_str()),
            ("web-cheap", "web")
        );
    }
}
