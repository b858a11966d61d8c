//! Volcano-style elastic batch job (seed Pattern 4B): a custom resource with a `/scale`
//! subresource, as Volcano's `Job` has, scaled by the `hpa` policy on a real Redis backlog
//! through `--watch batch.wasmscaler.test/v1/TrainingJob`.
//!
//! Volcano's own controller is not part of this cluster, so the test runs a small stand-in
//! that does what it does for an elastic job: one worker pod per replica (`NAME-worker-I`),
//! the highest index deleted first on a scale-down, and `status.replicas` /
//! `status.readyReplicas` / `status.selector` reported from the pods. The scheduler places
//! the pods and kwok makes them Ready; Ready workers drain the queue. What is under test is
//! the controller: it finds the custom kind, reads its readiness, writes `/scale` on it
//! (nothing else), and publishes Events and status on it as on a Deployment.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
};
use kube::{Api, Client};
use serde_json::json;

use crate::cluster::{Cluster, GENERAL_POOL};
use crate::controlplane::eventually_within;
use crate::servers::RedisServer;
use crate::{scaled_events, start_controller};

const GROUP: &str = "batch.wasmscaler.test";
const TASKS: usize = 40;
const PER_WORKER: u32 = 10;
const READY_DELAY_S: u64 = 2;

fn crd_and_rbac() -> String {
    format!(
        r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: trainingjobs.{GROUP}
spec:
  group: {GROUP}
  scope: Namespaced
  names: {{plural: trainingjobs, singular: trainingjob, kind: TrainingJob}}
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {{}}
      scale:
        specReplicasPath: .spec.replicas
        statusReplicasPath: .status.replicas
        labelSelectorPath: .status.selector
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              replicas: {{type: integer, minimum: 0}}
              image: {{type: string}}
          status:
            type: object
            properties:
              replicas: {{type: integer}}
              readyReplicas: {{type: integer}}
              selector: {{type: string}}
---
# What an operator adds for a custom kind (deploy/rbac.yaml shows it as a comment).
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: wasmscaler-trainingjobs}}
rules:
- apiGroups: [{GROUP}]
  resources: [trainingjobs]
  verbs: [get, list, watch, patch]
- apiGroups: [{GROUP}]
  resources: [trainingjobs/scale]
  verbs: [get, update]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: wasmscaler-trainingjobs}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: wasmscaler-trainingjobs}}
subjects:
- {{kind: ServiceAccount, name: wasmscaler, namespace: wasmscaler-system}}
"#
    )
}

fn training_job(ns: &str, redis_url: &str) -> String {
    format!(
        r#"apiVersion: {GROUP}/v1
kind: TrainingJob
metadata:
  name: train
  namespace: {ns}
  annotations:
    wasmscaler.io/policy: hpa
    wasmscaler.io/interval: 1s
    wasmscaler.io/min-replicas: "1"
    wasmscaler.io/max-replicas: "6"
    wasmscaler.io/config: |
      targets: [{{signal: load, averageValue: {PER_WORKER}}}]
      signals:
        load: {{redis: {{url: '{redis_url}', list: tasks}}}}
    wasmscaler.io/behavior: |
      scaleDown:
        stabilizationWindowSeconds: 3
spec:
  replicas: 1
  image: registry.invalid/trainer:1
"#
    )
}

fn resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(GROUP, "v1", "TrainingJob"), "trainingjobs")
}

fn worker_index(job: &str, pod: &str) -> Option<u32> {
    pod.strip_prefix(job)?.strip_prefix("-worker-")?.parse().ok()
}

fn serving(p: &Pod) -> bool {
    let status = p.status.as_ref();
    p.metadata.deletion_timestamp.is_none()
        && status.and_then(|s| s.phase.as_deref()) == Some("Running")
        && status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn worker_pod(job: &DynamicObject, name: &str, index: u32) -> Pod {
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let image = job.data["spec"]["image"]
        .as_str()
        .unwrap_or("registry.invalid/trainer:1");
    serde_json::from_value(json!({
        "metadata": {
            "name": format!("{name}-worker-{index}"),
            "labels": {format!("{GROUP}/job"): name},
            "annotations": {"pod-ready.stage.kwok.x-k8s.io/delay": format!("{READY_DELAY_S}s")},
            "ownerReferences": [{
                "apiVersion": format!("{GROUP}/v1"), "kind": "TrainingJob", "name": name,
                "uid": uid, "controller": true,
            }],
        },
        "spec": {
            "nodeSelector": {"wasmscaler.test/pool": GENERAL_POOL},
            "containers": [{
                "name": "worker", "image": image,
                "resources": {"requests": {"cpu": "100m"}},
            }],
        },
    }))
    .expect("a valid worker pod")
}

/// One pass of the stand-in job controller over every TrainingJob in `ns`.
async fn operate_once(client: &Client, ns: &str) -> Result<(), kube::Error> {
    let jobs: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource());
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    for job in jobs.list(&ListParams::default()).await? {
        let Some(name) = job.metadata.name.clone() else {
            continue;
        };
        let want = job.data["spec"]["replicas"].as_u64().unwrap_or(0) as u32;
        let selector = format!("{GROUP}/job={name}");
        let have = pods.list(&ListParams::default().labels(&selector)).await?;
        let mut live: BTreeSet<u32> = BTreeSet::new();
        let mut ready = 0;
        for p in &have {
            let Some(i) = p.metadata.name.as_deref().and_then(|n| worker_index(&name, n)) else {
                continue;
            };
            if p.metadata.deletion_timestamp.is_some() {
                continue;
            }
            if i >= want {
                pods.delete(&format!("{name}-worker-{i}"), &DeleteParams::default())
                    .await?;
                continue;
            }
            live.insert(i);
            if serving(p) {
                ready += 1;
            }
        }
        for i in (0..want).filter(|i| !live.contains(i)) {
            match pods
                .create(&PostParams::default(), &worker_pod(&job, &name, i))
                .await
            {
                Ok(_) => {}
                // Still terminating from a scale-down: created on a later pass.
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => return Err(e),
            }
        }
        let status = json!({"status": {
            "replicas": live.len(), "readyReplicas": ready, "selector": selector,
        }});
        jobs.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
            .await?;
    }
    Ok(())
}

/// The stand-in job controller, until `stop`.
fn start_job_controller(client: Client, ns: String, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            if let Err(e) = operate_once(&client, &ns).await {
                eprintln!("training-job stand-in: {e}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_job_kind_with_a_scale_subresource_grows_on_backlog_and_shrinks_when_drained() {
    let c = Cluster::shared();
    let redis = RedisServer::start();
    let ns = c.namespace("batch").await;
    c.apply(&crd_and_rbac());
    c.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        &format!("crd/trainingjobs.{GROUP}"),
        "--timeout=30s",
    ]);
    let stop = Arc::new(AtomicBool::new(false));
    let operator = start_job_controller(c.admin_client().await, ns.clone(), stop.clone());
    c.apply(&training_job(&ns, &redis.url));
    let workers = |c: &Cluster| c.pods(&ns, &format!("{GROUP}/job=train"));
    eventually_within("worker-0 Ready", Duration::from_secs(30), || async {
        (workers(c).iter().filter(|p| p.serving()).count() == 1
            && c.status_count(&ns, "trainingjob", "train", "readyReplicas") == 1)
            .then_some(())
    })
    .await;

    let tasks: Vec<String> = (0..TASKS).map(|i| format!("shard-{i}")).collect();
    let mut push = vec!["RPUSH", "tasks"];
    push.extend(tasks.iter().map(String::as_str));
    redis.cmd(&push);
    let ctl = start_controller(c, &ns, None, &[&format!("{GROUP}/v1/TrainingJob")]).await;

    // 40 tasks at 10 per worker -> 4 workers, through /scale on the custom kind.
    eventually_within("train scaled to 4", Duration::from_secs(20), || async {
        (c.replicas(&ns, "trainingjob", "train") == Some(4)).then_some(())
    })
    .await;
    eventually_within("4 workers Ready", Duration::from_secs(30), || async {
        (workers(c).iter().filter(|p| p.serving()).count() == 4
            && c.status_count(&ns, "trainingjob", "train", "readyReplicas") == 4)
            .then_some(())
    })
    .await;
    let status = c.decision(&ns, "trainingjob", "train");
    assert_eq!(status["desired"].as_u64(), Some(4), "{status}");
    let ups = scaled_events(c, &ns, "train");
    assert!(
        ups.first().is_some_and(|n| n.contains("from 1 to 4")),
        "a Scaled Event on the TrainingJob: {ups:?}"
    );

    // Ready workers take one task each per half second; the backlog drains and the job
    // shrinks (3 s stabilization) to its minimum, the highest-indexed workers going first.
    let mut max_replicas = 4;
    let start = Instant::now();
    let limit = Duration::from_secs(60);
    loop {
        for _ in workers(c).iter().filter(|p| p.serving()) {
            redis.cmd(&["LPOP", "tasks"]);
        }
        max_replicas = max_replicas.max(c.replicas(&ns, "trainingjob", "train").unwrap_or(0));
        let left: Vec<String> = workers(c).into_iter().map(|p| p.name).collect();
        if redis.llen("tasks") == 0
            && c.replicas(&ns, "trainingjob", "train") == Some(1)
            && left == ["train-worker-0"]
        {
            break;
        }
        assert!(
            start.elapsed() < limit,
            "not drained and shrunk after {limit:?}: {} tasks left, replicas {:?}, workers {left:?}",
            redis.llen("tasks"),
            c.replicas(&ns, "trainingjob", "train"),
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(max_replicas, 4, "never more workers than the backlog needs");
    let status = c.decision(&ns, "trainingjob", "train");
    assert_eq!(
        (status["current"].as_u64(), status["desired"].as_u64()),
        (Some(1), Some(1)),
        "{status}"
    );
    assert!(
        scaled_events(c, &ns, "train").iter().any(|n| n.contains("to 1")),
        "the scale-down is an Event on the TrainingJob: {:?}",
        scaled_events(c, &ns, "train")
    );
    ctl.shutdown().await;
    stop.store(true, Ordering::Relaxed);
    let _ = operator.await;
}
