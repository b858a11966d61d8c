//! Plugging the signal sources (`crate::signals`) and this adapter's special actuators
//! (queue-job Jobs, spot pool variants) into the controller's seam.

use std::sync::Arc;

use futures::future::BoxFuture;

use super::{Extensions, jobs, pools};
use crate::core::adapter::{Actuated, Actuator, Credentials, Gatherers, TargetRef};
use crate::core::{Outcome, WorkloadSpec};
use crate::signals::gather::{PrometheusGatherer, RedisGatherer};
use crate::signals::kube_objects::KubeObjectsGatherer;
use crate::signals::prometheus::{PromError, Prometheus};
use crate::signals::secrets::SecretCache;

/// Jobs for CronJob workloads (queue-job), the pool split for placements (spot-fallback).
pub struct KubeActuator {
    client: kube::Client,
}

impl KubeActuator {
    pub fn new(client: kube::Client) -> Self {
        Self { client }
    }
}

impl Actuator for KubeActuator {
    fn actuate<'a>(
        &'a self,
        target: &'a TargetRef,
        _spec: &'a WorkloadSpec,
        outcome: &'a Outcome,
        dry_run: bool,
    ) -> BoxFuture<'a, Result<Actuated, String>> {
        Box::pin(async move {
            if target.kind == "CronJob" {
                let n = outcome.jobs.unwrap_or(0);
                let done = jobs::actuate(&self.client, &target.namespace, &target.name, n, dry_run)
                    .await
                    .map_err(|e| e.to_string())?;
                let mut summary = match (dry_run, done.created.len()) {
                    (_, 0) => String::new(),
                    (true, k) => format!("would create {k} Jobs from cronjob/{}", target.name),
                    (false, k) => format!(
                        "created {k} Jobs from cronjob/{}: {}",
                        target.name,
                        done.created.join(", ")
                    ),
                };
                if !done.deleted.is_empty() {
                    if !summary.is_empty() {
                        summary.push_str("; ");
                    }
                    summary.push_str(&format!(
                        "deleted {} finished Jobs beyond the history limits",
                        done.deleted.len()
                    ));
                }
                return Ok(Actuated {
                    scaled: true,
                    summary,
                });
            }
            if !outcome.placement.is_empty() {
                return match pools::actuate(&self.client, target, &outcome.placement, dry_run).await {
                    Ok(lines) if lines.is_empty() => Ok(Actuated {
                        scaled: true,
                        summary: String::new(),
                    }),
                    Ok(lines) => Ok(Actuated {
                        scaled: true,
                        summary: format!(
                            "{} pools: {}",
                            if dry_run { "would scale" } else { "scaled" },
                            lines.join(", ")
                        ),
                    }),
                    Err(errors) => Err(errors
                        .iter()
                        .map(|e| e.to_string())
                        .collect::<Vec<_>>()
                        .join("; ")),
                };
            }
            Ok(Actuated::default())
        })
    }

    fn current_replicas<'a>(
        &'a self,
        target: &'a TargetRef,
    ) -> BoxFuture<'a, Result<Option<(u32, u32)>, String>> {
        Box::pin(async move {
            if target.kind == "CronJob" {
                let c = jobs::count(
                    &self.client,
                    &target.namespace,
                    &target.name,
                    target.uid.as_deref(),
                )
                .await;
                return Ok(c.ok().map(|c| (c.running + c.pending, c.running)));
            }
            pools::current(&self.client, target).await
        })
    }
}

/// The controller's extensions with every signal source of `crate::signals` and this
/// module's actuator:
/// kinds `prometheus` (default server `prometheus_url`), `redis`, `kubernetes`, default
/// sources for the standard queue/spot names, and the Job / pool actuator.
pub fn extensions(client: kube::Client, prometheus_url: Option<String>) -> Result<Extensions, PromError> {
    let mut gatherers = Gatherers::default();
    // Secret references of signal credentials, from a cache of the labelled Secrets.
    let credentials: Arc<dyn Credentials> = Arc::new(SecretCache::new(client.clone()));
    gatherers.register(
        "prometheus",
        Arc::new(
            PrometheusGatherer::new(Prometheus::new(prometheus_url)?).with_credentials(credentials.clone()),
        ),
    );
    gatherers.register(
        "redis",
        Arc::new(RedisGatherer::new().with_credentials(credentials)),
    );
    let objects = KubeObjectsGatherer::new(client.clone());
    // Signals without a source spec: running-jobs / pending-jobs of a CronJob, spot-* of a
    // spot-fallback workload; every other name stays with the reconciler's WorkloadFacts.
    // Both read the same watch caches of Pods, Nodes and workloads.
    gatherers.set_facts(Arc::new(objects.facts_fallback()));
    gatherers.register("kubernetes", Arc::new(objects));
    Ok(Extensions {
        gatherers,
        actuator: Arc::new(KubeActuator::new(client)),
        registry: None,
    })
}
