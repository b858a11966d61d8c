//! The controller under churn, against a real kube-apiserver + etcd (one control plane for
//! this test binary, one namespace per test): what it writes at steady state, the Events
//! it publishes, what it forgets. Each case failed on the controller before its fix.

#[path = "controlplane/mod.rs"]
mod controlplane;
#[path = "servers/mod.rs"]
mod servers;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use controlplane::fixtures::hpa_deployment as deployment;
use controlplane::{ControlPlane, error_count, eventually, settings};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};

const STATUS: &str = "wasmscaler.io/status";
const STATE: &str = "wasmscaler.io/state";

/// An Event about `name` as the API server stores it: reason, note, series count (None: a
/// single occurrence).
#[derive(Debug, Clone)]
struct Ev {
    reason: String,
    note: String,
    count: Option<i64>,
}

fn events(cp: &ControlPlane, ns: &str, name: &str) -> Vec<Ev> {
    let o = cp.kubectl_ok(&["-n", ns, "get", "events.events.k8s.io", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&o).unwrap_or_default();
    let mut out: Vec<(String, Ev)> = v["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e["regarding"]["name"].as_str() == Some(name))
        .map(|e| {
            (
                e["eventTime"].as_str().unwrap_or_default().to_string(),
                Ev {
                    reason: e["reason"].as_str().unwrap_or_default().to_string(),
                    note: e["note"].as_str().unwrap_or_default().to_string(),
                    count: e["series"]["count"].as_i64(),
                },
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.into_iter().map(|(_, e)| e).collect()
}

/// Every change of our two annotations on one Deployment, as the watch sees it.
#[derive(Default)]
struct WriteLog {
    last: BTreeMap<&'static str, Option<String>>,
    changes: BTreeMap<&'static str, u32>,
}

/// Watch `ns/name` and count each new value of the status and state annotations.
fn watch_writes(
    client: kube::Client,
    ns: &str,
    name: &str,
) -> (Arc<Mutex<WriteLog>>, tokio::task::JoinHandle<()>) {
    let log = Arc::new(Mutex::new(WriteLog::default()));
    let api: Api<Deployment> = Api::namespaced(client, ns);
    let cfg = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let l = log.clone();
    let task = tokio::spawn(async move {
        let mut stream = watcher(api, cfg).applied_objects().boxed();
        while let Some(ev) = stream.next().await {
            let Ok(d) = ev else { continue };
            let ann = d.metadata.annotations.unwrap_or_default();
            let mut log = l.lock().unwrap_or_else(|p| p.into_inner());
            for key in [STATUS, STATE] {
                let now = ann.get(key).cloned();
                let before = log.last.insert(key, now.clone());
                if let Some(before) = before
                    && before != now
                {
                    *log.changes.entry(key).or_default() += 1;
                }
            }
        }
    });
    (log, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_decisions_cost_no_annotation_writes_and_events_tell_each_change() {
    let cp = ControlPlane::shared();
    let ns = cp.namespace("steady").await;
    cp.apply(&deployment(&ns, "web", 1, 500, &[]));
    let ctl = cp.start_controller(settings(&ns)).await;
    cp.replicas_become(&ns, "deployment", "web", 5).await;
    eventually("status holds at 5", || async {
        cp.status(&ns, "web")
            .filter(|s| s["action"] == "hold" && s["current"] == 5)
    })
    .await;

    // The signal keeps moving (each change is evaluated at once), the decision does not:
    // ~8 evaluations, no write of either annotation.
    let (log, watch) = watch_writes(cp.admin_client().await, &ns, "web");
    tokio::time::sleep(Duration::from_millis(500)).await;
    for load in [410, 450, 480, 420, 490, 430, 460, 440] {
        cp.annotate(&ns, "deployment/web", &format!("example.com/load={load}"));
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    let changes = log.lock().unwrap_or_else(|p| p.into_inner()).changes.clone();
    assert!(
        changes.is_empty(),
        "annotation writes at a steady decision: {changes:?}"
    );
    let st = cp.status(&ns, "web").expect("status");
    assert_eq!(
        (st["action"].as_str(), st["desired"].as_u64()),
        (Some("hold"), Some(5)),
        "{st}"
    );
    // The live number is on /metrics instead.
    let metrics = ctl.metrics.encode();
    let proposed =
        format!("wasmscaler_replicas_proposed{{namespace=\"{ns}\",kind=\"Deployment\",name=\"web\"}} 5");
    assert!(metrics.contains(&proposed), "missing {proposed} in:\n{metrics}");

    // A real change: written once, and told as its own Event (not as a repeat of 1 -> 5).
    cp.annotate(&ns, "deployment/web", "example.com/load=200");
    cp.replicas_become(&ns, "deployment", "web", 2).await;
    let scaled = eventually("a Scaled event for 5 -> 2", || async {
        let ev: Vec<Ev> = events(cp, &ns, "web")
            .into_iter()
            .filter(|e| e.reason == "Scaled")
            .collect();
        ev.iter().any(|e| e.note.contains("from 5 to 2")).then_some(ev)
    })
    .await;
    assert_eq!(scaled.len(), 2, "{scaled:?}");
    assert!(scaled[0].note.contains("from 1 to 5"), "{scaled:?}");
    assert!(scaled.iter().all(|e| e.count.is_none()), "{scaled:?}");
    watch.abort();
    ctl.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_and_failing_workloads_publish_on_transitions_not_per_evaluation() {
    let cp = ControlPlane::shared();
    let ns = cp.namespace("transitions").await;
    cp.apply(&deployment(
        &ns,
        "shadow",
        2,
        800,
        &[("wasmscaler.io/mode", "shadow")],
    ));
    cp.apply(&deployment(
        &ns,
        "broken",
        1,
        100,
        &[(
            "wasmscaler.io/config",
            "targets: [{signal: load, averageValue: 100}]\nsignals: {load: {annotation: example.com/missing}}",
        )],
    ));
    let ctl = cp.start_controller(settings(&ns)).await;
    eventually("first ShadowDecision and EvaluationFailed", || async {
        let s = events(cp, &ns, "shadow");
        let b = events(cp, &ns, "broken");
        (s.iter().any(|e| e.reason == "ShadowDecision") && b.iter().any(|e| e.reason == "EvaluationFailed"))
            .then_some(())
    })
    .await;
    // Four more intervals of the same decisions.
    let (log, watch) = watch_writes(cp.admin_client().await, &ns, "shadow");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let shadow = events(cp, &ns, "shadow");
    let told: Vec<&Ev> = shadow.iter().filter(|e| e.reason == "ShadowDecision").collect();
    assert_eq!(told.len(), 1, "{shadow:?}");
    assert_eq!(told[0].count, None, "published again per evaluation: {shadow:?}");
    assert!(told[0].note.contains("would scale from 2 to 8"), "{shadow:?}");
    let changes = log.lock().unwrap_or_else(|p| p.into_inner()).changes.clone();
    assert!(changes.is_empty(), "shadow annotation writes: {changes:?}");
    let broken = events(cp, &ns, "broken");
    let failed: Vec<&Ev> = broken.iter().filter(|e| e.reason == "EvaluationFailed").collect();
    assert_eq!(failed.len(), 1, "{broken:?}");
    assert_eq!(
        failed[0].count, None,
        "published again per evaluation: {broken:?}"
    );
    assert!(failed[0].note.contains("example.com/missing"), "{broken:?}");
    assert_eq!(cp.replicas(&ns, "deployment", "broken"), Some(1));

    // A new shadow proposal is its own Event; the failing one recovers, once.
    cp.annotate(&ns, "deployment/shadow", "example.com/load=300");
    cp.annotate(&ns, "deployment/broken", "example.com/missing=300");
    cp.replicas_become(&ns, "deployment", "broken", 3).await;
    eventually("ShadowDecision 2 -> 3 and EvaluationRecovered", || async {
        let s = events(cp, &ns, "shadow");
        let b = events(cp, &ns, "broken");
        (s.iter()
            .any(|e| e.reason == "ShadowDecision" && e.note.contains("would scale from 2 to 3"))
            && b.iter().any(|e| e.reason == "EvaluationRecovered"))
        .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let broken = events(cp, &ns, "broken");
    assert_eq!(
        broken
            .iter()
            .filter(|e| e.reason == "EvaluationRecovered" || e.reason == "EvaluationFailed")
            .count(),
        2,
        "{broken:?}"
    );
    watch.abort();
    ctl.shutdown().await;
}

/// The /metrics lines about workload `ns/name`.
fn series_of(metrics: &str, ns: &str, name: &str) -> Vec<String> {
    let labels = format!("namespace=\"{ns}\",kind=\"Deployment\",name=\"{name}\"");
    metrics
        .lines()
        .filter(|l| l.contains(&labels))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_workload_is_forgotten_and_its_successor_starts_afresh() {
    let cp = ControlPlane::shared();
    let ns = cp.namespace("deleted").await;
    // At most 4 pods added per 10 minutes: what a successor must not inherit (the
    // first one's 1 -> 5 uses them all up).
    let behavior = [(
        "wasmscaler.io/behavior",
        "scaleUp: {policies: [{type: Pods, value: 4, periodSeconds: 600}]}",
    )];
    cp.apply(&deployment(&ns, "web", 1, 500, &behavior));
    cp.apply(&deployment(&ns, "other", 1, 200, &[]));
    let ctl = cp.start_controller(settings(&ns)).await;
    cp.replicas_become(&ns, "deployment", "web", 5).await;
    cp.replicas_become(&ns, "deployment", "other", 2).await;
    assert!(!series_of(&ctl.metrics.encode(), &ns, "web").is_empty());

    // Deleted: its series leave /metrics, the other workload's stay.
    cp.kubectl_ok(&["-n", &ns, "delete", "deployment", "web"]);
    eventually("web's series gone from /metrics", || async {
        series_of(&ctl.metrics.encode(), &ns, "web")
            .is_empty()
            .then_some(())
    })
    .await;
    let m = ctl.metrics.encode();
    assert!(!series_of(&m, &ns, "other").is_empty(), "{m}");
    assert!(m.contains("wasmscaler_managed_workloads 1"), "{m}");

    // Re-created under the same name, at 1 replica with load for 5: a new object with no
    // scale history scales up at once instead of waiting out the old one's 10-minute
    // period. (Not a scale-down: like a new HPA, a new object's first replicas hold the
    // scale-down stabilization window, inherited or not.)
    cp.apply(&deployment(&ns, "web", 1, 500, &behavior));
    cp.replicas_become(&ns, "deployment", "web", 5).await;
    ctl.shutdown().await;
}

/// A Deployment without a policy of its own: something another workload could name.
fn bystander(ns: &str, name: &str, replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {ns}\n\
spec:\n  replicas: {replicas}\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n      - name: app\n        image: registry.invalid/app:1\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_is_scaled_only_while_its_owner_opts_in() {
    let cp = ControlPlane::shared();
    let ns = cp.namespace("optin").await;
    cp.apply(&bystander(&ns, "db", 2));
    // load 500 at 100 per replica: 5 wanted, of db.
    cp.apply(&deployment(
        &ns,
        "aimer",
        1,
        500,
        &[("wasmscaler.io/target", "apps/v1/Deployment/db")],
    ));
    let ctl = cp.start_controller(settings(&ns)).await;
    let refused = || async {
        eventually("InvalidAnnotation: db has not opted in", || async {
            let told = events(cp, &ns, "aimer").into_iter().any(|e| {
                e.reason == "InvalidAnnotation"
                    && e.note
                        .contains("wasmscaler.io/target: Deployment/db has not opted in")
                    && e.note.contains("wasmscaler.io/scalable-by: aimer")
            });
            let status = cp.status(&ns, "aimer").filter(|s| s["action"] == "invalid");
            (told && status.is_some()).then_some(())
        })
        .await
    };
    refused().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        cp.replicas(&ns, "deployment", "db"),
        Some(2),
        "not scaled while it refuses"
    );

    // Its owner opts in: scaled from the next interval on, without touching `aimer`.
    cp.kubectl_ok(&[
        "-n",
        &ns,
        "annotate",
        "deployment",
        "db",
        "wasmscaler.io/scalable-by=aimer",
    ]);
    cp.replicas_become(&ns, "deployment", "db", 5).await;

    // ... and withdraws: the next decision (load 800: 8) is not written.
    cp.kubectl_ok(&[
        "-n",
        &ns,
        "annotate",
        "deployment",
        "db",
        "wasmscaler.io/scalable-by-",
    ]);
    cp.kubectl_ok(&[
        "-n",
        &ns,
        "annotate",
        "--overwrite",
        "deployment",
        "aimer",
        "example.com/load=800",
    ]);
    refused().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(cp.replicas(&ns, "deployment", "db"), Some(5));
    assert_eq!(
        cp.replicas(&ns, "deployment", "aimer"),
        Some(1),
        "the annotated object is not the target"
    );
    ctl.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_config_or_an_unresolvable_target_is_a_bad_annotation_not_a_failure() {
    let cp = ControlPlane::shared();
    let ns = cp.namespace("rejected").await;
    let typo = "targets: [{signal: load, averageValu: 100}]\nsignals: {load: {annotation: example.com/load}}";
    cp.apply(&deployment(
        &ns,
        "typo",
        2,
        500,
        &[
            ("wasmscaler.io/config", typo),
            ("wasmscaler.io/fallback", "{failureThreshold: 2, replicas: 7}"),
        ],
    ));
    cp.apply(&deployment(
        &ns,
        "aimed",
        2,
        500,
        &[("wasmscaler.io/target", "apps/v1/Deployment/missing")],
    ));
    cp.apply(&deployment(
        &ns,
        "alien",
        2,
        500,
        &[("wasmscaler.io/target", "example.com/v1/Widget/w")],
    ));
    let ctl = cp.start_controller(settings(&ns)).await;
    let invalid = |name: &'static str, words: &'static [&'static str]| {
        let ns = ns.clone();
        async move {
            eventually(&format!("{name}: InvalidAnnotation naming {words:?}"), || async {
                let told = events(cp, &ns, name)
                    .into_iter()
                    .any(|e| e.reason == "InvalidAnnotation" && words.iter().all(|w| e.note.contains(w)));
                let status = cp.status(&ns, name).filter(|s| {
                    s["action"] == "invalid"
                        && words
                            .iter()
                            .all(|w| s["error"].as_str().is_some_and(|e| e.contains(w)))
                });
                (told && status.is_some()).then_some(())
            })
            .await
        }
    };
    invalid("typo", &["wasmscaler.io/config", "'hpa'", "averageValu"]).await;
    invalid(
        "aimed",
        &["wasmscaler.io/target", "apps/v1/Deployment/missing", "not found"],
    )
    .await;
    invalid("alien", &["wasmscaler.io/target", "Widget"]).await;

    // Past the failure threshold (2 intervals of 1 s): a typo never applies the fallback
    // replicas, and is told once, not as a failing policy.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(cp.replicas(&ns, "deployment", "typo"), Some(2));
    let told = events(cp, &ns, "typo");
    assert!(!told.iter().any(|e| e.reason == "EvaluationFailed"), "{told:?}");
    assert_eq!(
        told.iter().filter(|e| e.reason == "InvalidAnnotation").count(),
        1,
        "{told:?}"
    );
    let m = ctl.metrics.encode();
    assert!(
        !m.contains("wasmscaler_evaluations_total{result=\"failed\"}"),
        "{m}"
    );

    // Fixed: evaluated at once (load 500 at 100 each).
    cp.annotate(
        &ns,
        "deployment/typo",
        "wasmscaler.io/config=targets: [{signal: load, averageValue: 100}]\nsignals: {load: {annotation: example.com/load}}",
    );
    cp.replicas_become(&ns, "deployment", "typo", 5).await;
    ctl.shutdown().await;
}

/// `kubectl create` (not apply: apply would copy every annotation, blob included, into
/// its last-applied-configuration annotation).
fn create(cp: &ControlPlane, ns: &str, name: &str, yaml: &str) {
    let path = cp.dir().join(format!("create-{ns}-{name}.yaml"));
    std::fs::write(&path, yaml).expect("write manifest");
    cp.kubectl_ok(&["create", "-f", &path.display().to_string()]);
}

/// (size of every annotation but status and state, status, state) of a Deployment.
fn annotation_sizes(cp: &ControlPlane, ns: &str, name: &str) -> (usize, usize, usize) {
    let o = cp.kubectl_ok(&["-n", ns, "get", "deployment", name, "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&o).unwrap_or_default();
    let mut sizes = (0, 0, 0);
    for (k, v) in v["metadata"]["annotations"]
        .as_object()
        .cloned()
        .unwrap_or_default()
    {
        let n = k.len() + v.as_str().map_or(0, str::len);
        match k.as_str() {
            STATUS => sizes.1 = n,
            STATE => sizes.2 = n,
            _ => sizes.0 += n,
        }
    }
    sizes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_over_the_annotation_limit_is_told_once_and_the_status_still_written() {
    const LIMIT: usize = 256 * 1024;
    const BLOB: &str = "example.com/blob";
    let cp = ControlPlane::shared();
    let ns = cp.namespace("budget").await;
    // A probe with the same annotations shows how much room status and state take.
    create(cp, &ns, "probe", &deployment(&ns, "probe", 1, 500, &[]));
    let ctl = cp.start_controller(settings(&ns)).await;
    cp.replicas_become(&ns, "deployment", "probe", 5).await;
    eventually("the probe holds at 5", || async {
        cp.status(&ns, "probe").filter(|s| s["action"] == "hold")
    })
    .await;
    let (others, status, state) = annotation_sizes(cp, &ns, "probe");
    assert!(
        state > 40,
        "the probe's state is too small to test with: {state} bytes"
    );

    // The same workload with a blob that leaves room for the status but not the state.
    let room = status + state / 2;
    let blob = "x".repeat(LIMIT - others - BLOB.len() - room);
    create(
        cp,
        &ns,
        "large",
        &deployment(&ns, "large", 1, 500, &[(BLOB, blob.as_str())]),
    );
    cp.replicas_become(&ns, "deployment", "large", 5).await;
    eventually("large's status written, holding at 5", || async {
        cp.status(&ns, "large")
            .filter(|s| s["action"] == "hold" && s["desired"] == 5)
    })
    .await;
    let api_errors = |m: &str| error_count(m, "kube_api");
    let before = api_errors(&ctl.metrics.encode());
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        api_errors(&ctl.metrics.encode()),
        before,
        "the state write is retried and refused"
    );
    assert_eq!(cp.annotation(&ns, "deployment", "large", STATE), None);
    let told: Vec<Ev> = events(cp, &ns, "large")
        .into_iter()
        .filter(|e| e.reason == "StateTooLarge")
        .collect();
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0].count, None, "told again per evaluation: {told:?}");
    assert!(told[0].note.contains("wasmscaler.io/state not saved"), "{told:?}");

    // The blob goes: the state fits again and is saved.
    cp.kubectl_ok(&["-n", &ns, "annotate", "deployment/large", &format!("{BLOB}-")]);
    eventually("large's state saved once there is room", || async {
        cp.annotation(&ns, "deployment", "large", STATE)
    })
    .await;
    ctl.shutdown().await;
}

/// Credentials come from Secrets, never from the annotation: a Redis password written into
/// the URL is refused (`InvalidAnnotation`, the password never echoed); one named by
/// `passwordFrom` is read from a Secret of the workload's namespace that carries the
/// `wasmscaler.io/credentials: "true"` label. Until such a Secret exists the workload
/// fails static with an error naming it (Event + status) and its neighbour is served.
/// The controller runs as the service account of deploy/rbac.yaml, which grants `list`
/// and `watch` on Secrets but no `get`: a GET per evaluation would be refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_credentials_come_from_labelled_secrets_only() {
    let redis = servers::RedisServer::start();
    for i in 0..7 {
        redis.cmd(&["RPUSH", "jobs", &format!("job-{i}")]);
    }
    redis.cmd(&["CONFIG", "SET", "requirepass", "s3cret-pw"]);
    let cp = ControlPlane::shared();
    let ns = cp.namespace("creds").await;
    let queue = |url: &str, from: &str| {
        format!(
            "targets: [{{signal: load, averageValue: 1}}]\nsignals: {{load: {{redis: {{url: '{url}', list: jobs{from}}}}}}}"
        )
    };
    let plain = format!("redis://127.0.0.1:{}/0", redis.port);
    let inline = format!("redis://:s3cret-pw@127.0.0.1:{}/0", redis.port);
    cp.apply(&deployment(
        &ns,
        "queue",
        1,
        0,
        &[(
            "wasmscaler.io/config",
            &queue(&plain, ", passwordFrom: {secret: redis-auth, key: password}"),
        )],
    ));
    cp.apply(&deployment(
        &ns,
        "inline",
        1,
        0,
        &[("wasmscaler.io/config", &queue(&inline, ""))],
    ));
    cp.apply(&deployment(&ns, "good", 1, 400, &[]));
    let client = cp.controller_client().await;
    let ctl = wasmscaler::kube::start(client, settings(&ns), |c| {
        wasmscaler::kube::extensions::extensions(c, None)
    })
    .await
    .expect("controller starts");

    cp.replicas_become(&ns, "deployment", "good", 4).await;
    let note = eventually("InvalidAnnotation on inline", || async {
        events(cp, &ns, "inline")
            .into_iter()
            .find(|e| e.reason == "InvalidAnnotation")
            .map(|e| e.note)
    })
    .await;
    assert!(
        note.contains("signal 'load': 'redis.url' carries a password; reference a Secret instead")
            && note.contains("--allow-inline-credentials")
            && !note.contains("s3cret-pw"),
        "{note}"
    );
    let status = cp.status(&ns, "inline").unwrap_or_default();
    assert_eq!(status["action"], "invalid", "{status}");
    assert!(!status.to_string().contains("s3cret-pw"), "{status}");

    // No Secret yet, then one without the label: the signal fails, naming the Secret.
    let missing = format!("Secret {ns}/redis-auth not found");
    for unlabelled in [false, true] {
        if unlabelled {
            cp.kubectl_ok(&[
                "-n",
                &ns,
                "create",
                "secret",
                "generic",
                "redis-auth",
                "--from-literal=password=s3cret-pw",
            ]);
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        eventually("queue fails static naming the Secret", || async {
            let failed = events(cp, &ns, "queue")
                .into_iter()
                .any(|e| e.reason == "EvaluationFailed" && e.note.contains(&missing));
            let status = cp
                .status(&ns, "queue")
                .filter(|s| s["error"].as_str().is_some_and(|e| e.contains(&missing)));
            (failed && status.is_some()).then_some(())
        })
        .await;
        assert_eq!(cp.replicas(&ns, "deployment", "queue"), Some(1));
    }
    // The Secret's owner marks it for this use: the queue is read with its password.
    cp.kubectl_ok(&[
        "-n",
        &ns,
        "label",
        "secret",
        "redis-auth",
        "wasmscaler.io/credentials=true",
    ]);
    cp.replicas_become(&ns, "deployment", "queue", 7).await;
    assert_eq!(cp.replicas(&ns, "deployment", "inline"), Some(1), "never scaled");
    ctl.shutdown().await;
}
