//! queue-job (seed Pattern 4A): a real Redis list feeds Jobs made from a suspended
//! CronJob's template. The real Job controller makes their pods, kwok runs each for 3 s
//! and completes it; the test plays the worker (it takes one item off the list when a
//! Job's pod starts). The queue drains in rounds of at most `maxReplicaCount` Jobs, every
//! Job completes, and exactly one Job is made per item: no over-creation while Jobs are
//! pending or running (the KEDA duplicate-job complaint).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::cluster::{Cluster, GENERAL_POOL};
use crate::servers::RedisServer;
use crate::start_controller;

const ITEMS: usize = 7;
const MAX_JOBS: usize = 3;

fn cronjob(ns: &str, redis_url: &str) -> String {
    format!(
        r#"apiVersion: batch/v1
kind: CronJob
metadata:
  name: render
  namespace: {ns}
  annotations:
    wasmscaler.io/policy: queue-job
    wasmscaler.io/interval: 1s
    wasmscaler.io/max-replicas: "{MAX_JOBS}"
    wasmscaler.io/config: |
      targetQueueLengthPerJob: 1
      maxReplicaCount: {MAX_JOBS}
      scalingStrategy: {{strategy: default}}
      signals:
        queue-length: {{redis: {{url: '{redis_url}', list: frames}}}}
spec:
  schedule: "@hourly"
  suspend: true
  successfulJobsHistoryLimit: 20
  failedJobsHistoryLimit: 5
  jobTemplate:
    spec:
      backoffLimit: 0
      template:
        metadata:
          labels: {{app: render}}
          annotations:
            pod-ready.stage.kwok.x-k8s.io/delay: 1s
            pod-complete.stage.kwok.x-k8s.io/delay: 3s
        spec:
          restartPolicy: Never
          nodeSelector: {{wasmscaler.test/pool: {GENERAL_POOL}}}
          containers:
          - name: render
            image: registry.invalid/render:1
            resources: {{requests: {{cpu: 100m}}}}
"#
    )
}

/// One Job as `kubectl get jobs -o json` shows it.
struct JobView {
    name: String,
    complete: bool,
    failed: bool,
}

fn jobs(c: &Cluster, ns: &str) -> Vec<JobView> {
    let o = c.kubectl(&["-n", ns, "get", "jobs", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    let cond = |j: &serde_json::Value, t: &str| {
        j["status"]["conditions"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == t && c["status"] == "True"))
    };
    v["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|j| JobView {
            name: j["metadata"]["name"].as_str().unwrap_or_default().to_string(),
            complete: cond(j, "Complete"),
            failed: cond(j, "Failed"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_queue_drains_through_jobs_whose_pods_run_and_complete() {
    let c = Cluster::shared();
    let redis = RedisServer::start();
    let ns = c.namespace("queue").await;
    c.apply(&cronjob(&ns, &redis.url));
    let ctl = start_controller(c, &ns, None, &["batch/v1/CronJob"]).await;
    let items: Vec<String> = (0..ITEMS).map(|i| format!("frame-{i}")).collect();
    let mut push = vec!["RPUSH", "frames"];
    push.extend(items.iter().map(String::as_str));
    redis.cmd(&push);

    // The worker's side: one item per Job, taken when the Job's pod starts running.
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut taken: BTreeSet<String> = BTreeSet::new();
    let mut max_unfinished = 0;
    let start = Instant::now();
    let limit = Duration::from_secs(90);
    loop {
        let js = jobs(c, &ns);
        seen.extend(js.iter().map(|j| j.name.clone()));
        let unfinished = js.iter().filter(|j| !j.complete && !j.failed).count();
        max_unfinished = max_unfinished.max(unfinished);
        for p in c.pods(&ns, "app=render") {
            if p.phase == "Running" || p.phase == "Succeeded" {
                let job = p
                    .name
                    .rsplit_once('-')
                    .map(|(j, _)| j.to_string())
                    .unwrap_or_default();
                if taken.insert(job) {
                    redis.cmd(&["LPOP", "frames"]);
                }
            }
        }
        assert!(js.iter().all(|j| !j.failed), "no Job fails (kwok completes them)");
        let done = js.len() == ITEMS && js.iter().all(|j| j.complete);
        if done && redis.llen("frames") == 0 {
            break;
        }
        assert!(
            start.elapsed() < limit,
            "queue not drained after {limit:?}: {} items left, {} Jobs seen ({} complete), {} taken",
            redis.llen("frames"),
            seen.len(),
            js.iter().filter(|j| j.complete).count(),
            taken.len()
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(
        max_unfinished <= MAX_JOBS,
        "never more than maxReplicaCount unfinished Jobs, saw {max_unfinished}"
    );
    assert!(
        max_unfinished >= 2,
        "Jobs ran in parallel, saw at most {max_unfinished}"
    );
    // An empty queue starts nothing more: still one Job per item a while later.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let js = jobs(c, &ns);
    seen.extend(js.iter().map(|j| j.name.clone()));
    assert_eq!(
        seen.len(),
        ITEMS,
        "exactly one Job per queue item, no over-creation: {seen:?}"
    );
    assert_eq!(
        c.pods(&ns, "app=render")
            .iter()
            .filter(|p| p.phase == "Succeeded")
            .count(),
        ITEMS,
        "every Job's pod ran to completion"
    );
    ctl.shutdown().await;
}
