//! queue-job end to end: items pushed to a real Redis list -> `queue-length` -> the
//! queue-job policy -> Jobs created from a suspended CronJob's jobTemplate on a real
//! kube-apiserver, pending Jobs counted (no duplicates), history limits honoured.
//!
//! The controller runs as the service account bound by deploy/rbac.yaml, so a missing RBAC
//! rule fails here.

#[path = "controlplane/mod.rs"]
mod controlplane;
#[path = "servers/mod.rs"]
mod servers;

use std::collections::BTreeMap;

use controlplane::{ControlPlane, eventually, settings};
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, ListParams};
use servers::RedisServer;
use wasmscaler::core::adapter::{SignalGatherer, TargetRef};
use wasmscaler::signals::kube_objects::KubeObjectsGatherer;

fn cronjob(ns: &str, name: &str, redis_url: &str, suspend: bool) -> String {
    format!(
        r#"apiVersion: batch/v1
kind: CronJob
metadata:
  name: {name}
  namespace: {ns}
  annotations:
    wasmscaler.io/policy: queue-job
    wasmscaler.io/interval: 1s
    wasmscaler.io/max-replicas: "10"
    wasmscaler.io/config: |
      targetQueueLengthPerJob: 1
      maxReplicaCount: 10
      scalingStrategy: {{strategy: default}}
      signals:
        queue-length: {{redis: {{url: '{redis_url}', list: {name}}}}}
        # running-jobs / pending-jobs: counted from this CronJob's Jobs without a mapping
spec:
  schedule: "@hourly"
  suspend: {suspend}
  successfulJobsHistoryLimit: 1
  failedJobsHistoryLimit: 1
  jobTemplate:
    metadata:
      labels: {{app: {name}, team: media}}
      annotations: {{example.com/owner: media}}
    spec:
      backoffLimit: 2
      template:
        metadata:
          labels: {{app: {name}}}
        spec:
          restartPolicy: Never
          containers:
          - name: worker
            image: registry.invalid/{name}:1
"#
    )
}

async fn jobs(client: &kube::Client, ns: &str) -> Vec<Job> {
    Api::<Job>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
}

fn job_names(js: &[Job]) -> Vec<String> {
    js.iter().filter_map(|j| j.metadata.name.clone()).collect()
}

fn patch_status(cp: &ControlPlane, ns: &str, job: &str, status: &str) {
    cp.kubectl_ok(&[
        "-n",
        ns,
        "patch",
        "job",
        job,
        "--subresource=status",
        "--type=merge",
        "-p",
        status,
    ]);
}

fn running(cp: &ControlPlane, ns: &str, job: &str) {
    patch_status(
        cp,
        ns,
        job,
        r#"{"status":{"startTime":"2026-01-01T00:00:00Z","active":1,"ready":1}}"#,
    );
}

fn complete(cp: &ControlPlane, ns: &str, job: &str, at: &str) {
    patch_status(
        cp,
        ns,
        job,
        &format!(
            r#"{{"status":{{"startTime":"2026-01-01T00:00:00Z","completionTime":"{at}","active":0,"ready":0,"succeeded":1,"conditions":[{{"type":"SuccessCriteriaMet","status":"True","lastTransitionTime":"{at}"}},{{"type":"Complete","status":"True","lastTransitionTime":"{at}"}}]}}}}"#
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_items_become_jobs_from_the_cronjob_template() {
    let cp = ControlPlane::shared();
    let ns = cp.namespace("queue-job").await;
    let redis = RedisServer::start();
    cp.apply(&cronjob(&ns, "thumbs", &redis.url, true));
    let admin = cp.admin_client().await;
    // The controller runs as the service account bound by deploy/rbac.yaml.
    let controller = cp.controller_client().await;

    let mut s = settings(&ns);
    s.extra_kinds = vec!["batch/v1/CronJob".into()];
    let ctl = wasmscaler::kube::start(controller.clone(), s, |c| {
        wasmscaler::kube::extensions::extensions(c, None)
    })
    .await
    .expect("controller starts");

    // An empty queue starts nothing.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert!(jobs(&admin, &ns).await.is_empty());

    // 3 items -> 3 Jobs, made from the template and owned by the CronJob.
    redis.cmd(&["LPUSH", "thumbs", "a.png", "b.png", "c.png"]);
    let made = eventually("3 Jobs", || async {
        let js = jobs(&admin, &ns).await;
        (js.len() == 3).then_some(js)
    })
    .await;
    let cron_uid = cp.kubectl_ok(&[
        "-n",
        &ns,
        "get",
        "cronjob",
        "thumbs",
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    for j in &made {
        let name = j.metadata.name.as_deref().unwrap_or_default();
        assert!(name.starts_with("thumbs-"), "{name}");
        let labels = j.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels.get("app").map(String::as_str), Some("thumbs"));
        assert_eq!(labels.get("team").map(String::as_str), Some("media"));
        assert_eq!(
            labels.get("wasmscaler.io/cronjob").map(String::as_str),
            Some("thumbs")
        );
        let ann = j.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(ann.get("example.com/owner").map(String::as_str), Some("media"));
        let owner = &j.metadata.owner_references.as_ref().expect("owned")[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
            ("CronJob", "thumbs", cron_uid.trim())
        );
        assert_eq!(owner.controller, Some(true));
        let spec = j.spec.as_ref().expect("spec");
        assert_eq!(spec.backoff_limit, Some(2));
        let pod = spec.template.spec.as_ref().expect("pod spec");
        assert_eq!(
            pod.containers[0].image.as_deref(),
            Some("registry.invalid/thumbs:1")
        );
    }

    // They are pending (no pod ready): the next evaluations must not start duplicates.
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    assert_eq!(
        jobs(&admin, &ns).await.len(),
        3,
        "pending Jobs are counted, no over-creation"
    );

    // The Job counts as signals, read from the Jobs' status.
    let names = job_names(&made);
    running(cp, &ns, &names[0]);
    let cron_target = TargetRef {
        namespace: ns.clone(),
        kind: "CronJob".into(),
        api_version: "batch/v1".into(),
        name: "thumbs".into(),
        uid: Some(cron_uid.trim().to_string()),
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
        pod_selector: None,
        replicas: 0,
        ready_replicas: 0,
    };
    let g = KubeObjectsGatherer::new(admin.clone());
    let run_src = serde_json::json!({"kubernetes": "runningJobs"});
    let pend_src = serde_json::json!({"kubernetes": "pendingJobs"});
    let plan = vec![
        (
            wasmscaler_sdk::SignalRequest::latest("running-jobs", ""),
            Some(&run_src),
        ),
        (
            wasmscaler_sdk::SignalRequest::latest("pending-jobs", ""),
            Some(&pend_src),
        ),
    ];
    let got = g.gather(&cron_target, &plan, 0).await;
    let v = |n: &str| {
        got.signals
            .iter()
            .find(|s| s.name == n)
            .map(|s| s.samples[0].value)
    };
    assert_eq!(
        (v("running-jobs"), v("pending-jobs")),
        (Some(1.0), Some(2.0)),
        "{:?}",
        got.errors
    );

    // 2 more items: KEDA's default strategy starts maxScale (5) - unfinished Jobs (3,
    // pending ones included) = 2, and then nothing more while they stay unfinished.
    redis.cmd(&["LPUSH", "thumbs", "d.png", "e.png"]);
    eventually("5 Jobs", || async {
        (jobs(&admin, &ns).await.len() >= 5).then_some(())
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let all_now = jobs(&admin, &ns).await;
    assert_eq!(
        all_now.len(),
        5,
        "exactly the queue's worth of Jobs, no duplicates"
    );

    // Finished Jobs beyond successfulJobsHistoryLimit (1) are deleted, oldest first.
    redis.cmd(&["DEL", "thumbs"]);
    let names = job_names(&all_now);
    complete(cp, &ns, &names[0], "2026-01-01T00:01:00Z");
    complete(cp, &ns, &names[1], "2026-01-01T00:02:00Z");
    complete(cp, &ns, &names[2], "2026-01-01T00:03:00Z");
    eventually("only the newest finished Job kept", || async {
        let left = job_names(&jobs(&admin, &ns).await);
        (!left.contains(&names[0]) && !left.contains(&names[1]) && left.contains(&names[2])).then_some(())
    })
    .await;

    // An unsuspended CronJob is refused (its own schedule would start Jobs too).
    cp.apply(&cronjob(&ns, "loose", &redis.url, false));
    redis.cmd(&["LPUSH", "loose", "x"]);
    eventually("a warning about spec.suspend", || async {
        cp.events(&ns, "loose")
            .iter()
            .any(|(r, n)| r == "ActuationFailed" && n.contains("spec.suspend"))
            .then_some(())
    })
    .await;
    assert!(
        job_names(&jobs(&admin, &ns).await)
            .iter()
            .all(|n| !n.starts_with("loose-")),
        "no Job for the unsuspended CronJob"
    );
    ctl.shutdown().await;
}
