//! The controller end to end against a real kube-apiserver + etcd (one control plane for
//! this test binary, one namespace per test). The controller runs in-process as the
//! service account of deploy/rbac.yaml, so a missing RBAC verb fails here.

#[path = "controlplane/mod.rs"]
mod controlplane;

use std::time::Duration;

use controlplane::fixtures::hpa_deployment as deployment;
use controlplane::{ControlPlane, eventually, eventually_within, settings};

/// The note of the first `InvalidAnnotation` Event on `name`, once there is one.
async fn invalid_annotation_note(cp: &ControlPlane, ns: &str, name: &str) -> String {
    eventually(&format!("InvalidAnnotation on {name}"), || async {
        cp.events(ns, name)
            .into_iter()
            .find(|(r, _)| r == "InvalidAnnotation")
            .map(|(_, n)| n)
    })
    .await
}

/// Every series (a metric name with its labels) is in the controller's metrics.
fn assert_metrics_have(ctl: &wasmscaler::kube::Running, series: &[&str]) {
    let text = ctl.metrics.encode();
    for s in series {
        assert!(text.contains(s), "missing {s} in:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn annotated_deployment_is_scaled_through_scale_and_follows_kubectl_annotate() {
    let cp = ControlPlane::shared();
    let ns = cp.namespace("scale").await;
    cp.apply(&deployment(&ns, "web", 1, 500, &[]));
    let ctl = cp.start_controller(settings(&ns)).await;

    cp.replicas_become(&ns, "deployment", "web", 5).await;
    let events = cp.events(&ns, "web");
    assert!(
        events
            .iter()
            .any(|(r, n)| r == "Scaled" && n.contains("from 1 to 5") && n.contains("hpa")),
        "{events:?}"
    );
    let status = cp
        .annotation(&ns, "deployment", "web", "wasmscaler.io/status")
        .expect("status annotation");
    let status: serde_json::Value = serde_json::from_str(&status).expect("status is JSON");
    assert_eq!(status["desired"], 5, "{status}");

    // A user changes the load with kubectl, exactly as documented.
    cp.annotate(&ns, "deployment/web", "example.com/load=200");
    cp.replicas_become(&ns, "deployment", "web", 2).await;

    // Metrics were counted.
    assert_metrics_have(
        &ctl,
        &[
            "wasmscaler_evaluations_total{result=\"scale\"}",
            "wasmscaler_scale_writes_total{result=\"down\"}",
        ],
    );
    ctl.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_mode_reports_but_never_scales() {
    let cp = ControlPlane::shared();
    let ns = cp.namespace("shadow").await;
    cp.apply(&deployment(
        &ns,
        "web",
        2,
        800,
        &[("wasmscaler.io/mode", "shadow")],
    ));
    let ctl = cp.start_controller(settings(&ns)).await;
    let note = eventually("a ShadowDecision event", || async {
        cp.events(&ns, "web")
            .into_iter()
            .find(|(r, _)| r == "ShadowDecision")
            .map(|(_, n)| n)
    })
    .await;
    assert!(note.contains("would scale from 2 to 8"), "{note}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(cp.replicas(&ns, "deployment", "web"), Some(2));
    ctl.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_annotation_is_reported_and_the_controller_keeps_serving_others() {
    let cp = ControlPlane::shared();
    let ns = cp.namespace("bad").await;
    cp.apply(&deployment(
        &ns,
        "broken",
        3,
        900,
        &[("wasmscaler.io/min-replicas", "many")],
    ));
    cp.apply(&deployment(
        &ns,
        "typo",
        3,
        900,
        &[("wasmscaler.io/polcy", "hpa")],
    ));
    cp.apply(&deployment(&ns, "good", 1, 400, &[]));
    let ctl = cp.start_controller(settings(&ns)).await;

    cp.replicas_become(&ns, "deployment", "good", 4).await;
    for (name, key) in [
        ("broken", "wasmscaler.io/min-replicas"),
        ("typo", "wasmscaler.io/polcy"),
    ] {
        let note = invalid_annotation_note(cp, &ns, name).await;
        assert!(note.contains(key), "{note}");
        assert_eq!(cp.replicas(&ns, "deployment", name), Some(3));
    }
    // Fixing the annotation is picked up at once.
    cp.annotate(&ns, "deployment/broken", "wasmscaler.io/min-replicas=2");
    cp.replicas_become(&ns, "deployment", "broken", 9).await;
    assert_metrics_have(&ctl, &["wasmscaler_errors_total{kind=\"annotation\"}"]);
    ctl.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenancy_rules_refuse_what_the_operator_did_not_allow_and_serve_the_rest() {
    let cp = ControlPlane::shared();
    let ns = cp.namespace("tenancy").await;
    let redis_signal = |url: &str| {
        format!(
            "targets: [{{signal: load, averageValue: 100}}]\nsignals: {{load: {{redis: {{url: '{url}', list: q}}}}}}"
        )
    };
    // The metadata endpoint of a cloud VM is not a signal server.
    cp.apply(&deployment(
        &ns,
        "exfil",
        2,
        0,
        &[(
            "wasmscaler.io/config",
            &redis_signal("redis://:hunter2@169.254.169.254:6379/0"),
        )],
    ));
    cp.apply(&deployment(
        &ns,
        "hasty",
        2,
        900,
        &[("wasmscaler.io/interval", "200ms")],
    ));
    cp.apply(&deployment(&ns, "good", 1, 400, &[]));
    let ctl = cp
        .start_controller(wasmscaler::kube::Settings {
            tenancy: wasmscaler::kube::tenancy::TenancyRules {
                allowed_signal_servers: Some(vec!["redis.jobs:6379".into()]),
                min_interval: Duration::from_secs(1),
                ..Default::default()
            },
            ..settings(&ns)
        })
        .await;

    cp.replicas_become(&ns, "deployment", "good", 4).await;
    for (name, says) in [
        (
            "exfil",
            "signal 'load': 'redis' server 'redis://:***@169.254.169.254:6379/0' is not in the controller's \
             --allowed-signal-servers (redis.jobs:6379)",
        ),
        (
            "hasty",
            "wasmscaler.io/interval: 200ms is shorter than the controller's minimum 1s (--min-interval)",
        ),
    ] {
        let note = invalid_annotation_note(cp, &ns, name).await;
        assert!(note.contains(says) && !note.contains("hunter2"), "{note}");
        let status = cp.status(&ns, name).unwrap_or_default();
        assert!(
            status["error"].as_str().is_some_and(|e| e.contains(says)),
            "{status}"
        );
        assert_eq!(
            cp.replicas(&ns, "deployment", name),
            Some(2),
            "{name} is not scaled"
        );
    }
    // A fix within the rules is picked up at once.
    cp.annotate(&ns, "deployment/hasty", "wasmscaler.io/interval=1s");
    cp.replicas_become(&ns, "deployment", "hasty", 9).await;
    ctl.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_is_scaled() {
    let cp = ControlPlane::shared();
    let ns = cp.namespace("sts").await;
    cp.apply(&format!(
        "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: db\n  namespace: {ns}\n  annotations:\n    wasmscaler.io/policy: hpa\n    wasmscaler.io/config: '{{targets: [{{signal: load, averageValue: 100}}], signals: {{load: {{value: 300}}}}}}'\n    wasmscaler.io/interval: 1s\n\
spec:\n  replicas: 1\n  serviceName: db\n  selector:\n    matchLabels: {{app: db}}\n  template:\n    metadata:\n      labels: {{app: db}}\n    spec:\n      containers:\n      - name: db\n        image: registry.invalid/db:1\n"
    ));
    let ctl = cp.start_controller(settings(&ns)).await;
    cp.replicas_become(&ns, "statefulset", "db", 3).await;
    ctl.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_file_is_hot_reloaded_while_the_controller_runs() {
    let cp = ControlPlane::shared();
    let ns = cp.namespace("reload").await;
    let dir = tempfile::tempdir().expect("policy dir");
    let file = dir.path().join("mine.wasm");
    std::fs::write(&file, b"not a wasm component").expect("write");
    cp.apply(&deployment(
        &ns,
        "web",
        2,
        600,
        &[("wasmscaler.io/policy", "file:mine.wasm")],
    ));
    let ctl = cp
        .start_controller(wasmscaler::kube::Settings {
            policy_dir: Some(dir.path().to_path_buf()),
            ..settings(&ns)
        })
        .await;
    // A broken file: fail-static (replicas kept), a Warning event.
    let note = eventually("EvaluationFailed", || async {
        cp.events(&ns, "web")
            .into_iter()
            .find(|(r, _)| r == "EvaluationFailed")
            .map(|(_, n)| n)
    })
    .await;
    assert!(note.contains("mine.wasm"), "{note}");
    assert_eq!(cp.replicas(&ns, "deployment", "web"), Some(2));

    // Drop a good component in place: picked up without a restart.
    let hpa = wasmscaler::runtime::builtins::bytes("hpa").expect("hpa built-in");
    let tmp = dir.path().join("mine.wasm.tmp");
    std::fs::write(&tmp, hpa).expect("write");
    std::fs::rename(&tmp, &file).expect("rename");
    cp.replicas_become(&ns, "deployment", "web", 6).await;
    assert_metrics_have(
        &ctl,
        &[
            "wasmscaler_policy_loads_total{outcome=\"loaded\"}",
            "wasmscaler_policy_loads_total{outcome=\"rejected\"}",
        ],
    );
    ctl.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_controller_continues_from_persisted_state() {
    let cp = ControlPlane::shared();
    let ns = cp.namespace("restart").await;
    // HPA behavior: 5 min scale-down stabilization. Its memory is guardrail state.
    cp.apply(&deployment(
        &ns,
        "web",
        1,
        500,
        &[(
            "wasmscaler.io/behavior",
            "scaleDown: {stabilizationWindowSeconds: 300}",
        )],
    ));
    let first = cp.start_controller(settings(&ns)).await;
    cp.replicas_become(&ns, "deployment", "web", 5).await;
    eventually("state annotation written", || async {
        cp.annotation(&ns, "deployment", "web", "wasmscaler.io/state")
            .filter(|s| s.contains("recommendations"))
    })
    .await;
    first.shutdown().await;

    // Load drops while no controller runs; the new one must remember the window.
    cp.annotate(&ns, "deployment/web", "example.com/load=100");
    let second = cp.start_controller(settings(&ns)).await;
    let status = eventually_within(
        "a decision by the new controller",
        Duration::from_secs(30),
        || async {
            cp.annotation(&ns, "deployment", "web", "wasmscaler.io/status")
                .filter(|s| s.contains("stabilized"))
        },
    )
    .await;
    assert!(status.contains("\"desired\":5"), "{status}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        cp.replicas(&ns, "deployment", "web"),
        Some(5),
        "scale-down stabilization forgotten"
    );
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_replicas_only_the_leader_writes() {
    let cp = ControlPlane::shared();
    let ns = cp.namespace("leader").await;
    cp.apply(&deployment(&ns, "web", 1, 300, &[]));
    let fast = |id: &str| wasmscaler::kube::Settings {
        identity: id.to_string(),
        lease_duration: Duration::from_secs(3),
        lease_retry: Duration::from_millis(500),
        ..settings(&ns)
    };
    let a = cp.start_controller(fast("replica-a")).await;
    // Let `a` win the Lease before `b` starts.
    eventually("replica-a leads", || async { a.is_leader().then_some(()) }).await;
    let b = cp.start_controller(fast("replica-b")).await;
    cp.replicas_become(&ns, "deployment", "web", 3).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(a.is_leader() && !b.is_leader());
    let writers = scale_writers(cp, &ns);
    assert_eq!(writers, vec!["replica-a".to_string()], "events by {writers:?}");
    assert!(b.metrics.encode().contains("wasmscaler_leader 0"));

    // The leader goes away: the standby takes over and acts on the next change.
    a.shutdown().await;
    eventually("replica-b leads", || async { b.is_leader().then_some(()) }).await;
    cp.annotate(&ns, "deployment/web", "example.com/load=700");
    cp.replicas_become(&ns, "deployment", "web", 7).await;
    let writers = scale_writers(cp, &ns);
    assert_eq!(writers, vec!["replica-a".to_string(), "replica-b".to_string()]);
    b.shutdown().await;
}

/// Reporting instances of the `Scaled` events in a namespace, sorted and deduplicated.
fn scale_writers(cp: &ControlPlane, ns: &str) -> Vec<String> {
    let o = cp.kubectl_ok(&["-n", ns, "get", "events.events.k8s.io", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&o).unwrap_or_default();
    let mut w: Vec<String> = v["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|e| e["reason"] == "Scaled")
        .filter_map(|e| e["reportingInstance"].as_str().map(String::from))
        .collect();
    w.sort();
    w.dedup();
    w
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_resource_is_scaled_through_its_scale_subresource() {
    let cp = ControlPlane::shared();
    let ns = cp.namespace("crd").await;
    // A CRD with a /scale subresource (like a Volcano Job), and the RBAC rules the
    // operator adds for it (deploy/rbac.yaml shows them as a comment).
    cp.apply(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.example.com\nspec:\n  group: example.com\n  scope: Namespaced\n  names: {plural: widgets, singular: widget, kind: Widget}\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    subresources:\n      status: {}\n      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}\n    schema:\n      openAPIV3Schema:\n        type: object\n        properties:\n          spec: {type: object, properties: {replicas: {type: integer}}}\n          status: {type: object, properties: {replicas: {type: integer}}}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: wasmscaler-widgets}\nrules:\n- apiGroups: [example.com]\n  resources: [widgets]\n  verbs: [get, list, watch, patch]\n- apiGroups: [example.com]\n  resources: [widgets/scale]\n  verbs: [get, update]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: wasmscaler-widgets}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: wasmscaler-widgets}\nsubjects:\n- {kind: ServiceAccount, name: wasmscaler, namespace: wasmscaler-system}\n",
    );
    cp.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.example.com",
        "--timeout=30s",
    ]);
    cp.apply(&format!(
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n  namespace: {ns}\n  annotations:\n    wasmscaler.io/policy: hpa\n    wasmscaler.io/interval: 1s\n    wasmscaler.io/config: '{{targets: [{{signal: load, averageValue: 100}}], signals: {{load: {{value: 400}}}}}}'\nspec:\n  replicas: 1\n"
    ));
    let ctl = cp
        .start_controller(wasmscaler::kube::Settings {
            extra_kinds: vec!["example.com/v1/Widget".into()],
            ..settings(&ns)
        })
        .await;
    cp.replicas_become(&ns, "widget", "w", 4).await;
    ctl.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_at_a_count_then_holding_then_resumed() {
    let cp = ControlPlane::shared();
    let ns = cp.namespace("pause").await;
    // The load asks for 8; paused at 3 (KEDA's paused-replicas).
    cp.apply(&deployment(&ns, "web", 1, 800, &[("wasmscaler.io/paused", "3")]));
    let ctl = cp.start_controller(settings(&ns)).await;
    cp.replicas_become(&ns, "deployment", "web", 3).await;
    // The Event is published right after the /scale write: wait for it.
    let scaled = eventually("a Scaled event", || async {
        cp.events(&ns, "web")
            .into_iter()
            .find(|(r, _)| r == "Scaled")
            .map(|(_, n)| n)
    })
    .await;
    assert!(
        scaled.contains("from 1 to 3") && scaled.contains("paused at 3"),
        "{scaled}"
    );
    // At 3 the next evaluations hold there and say why.
    let st = eventually("status says paused at 3", || async {
        cp.status(&ns, "web")
            .filter(|s| s["action"] == "paused" && s["current"] == 3)
    })
    .await;
    assert_eq!(st["desired"], 3, "{st}");
    assert_eq!(st["proposal"], 8, "{st}");
    let note = eventually("a ScalingPaused event", || async {
        cp.events(&ns, "web")
            .into_iter()
            .find(|(r, _)| r == "ScalingPaused")
            .map(|(_, n)| n)
    })
    .await;
    assert!(note.contains("policy proposed 8, holding at 3"), "{note}");

    // More load (re-evaluated at once): still 3.
    cp.annotate(&ns, "deployment/web", "example.com/load=900");
    eventually("status sees the new load", || async {
        cp.status(&ns, "web")
            .filter(|s| s["proposal"] == 9 && s["action"] == "paused")
    })
    .await;
    assert_eq!(cp.replicas(&ns, "deployment", "web"), Some(3));

    // `true` holds whatever the count is now: a user scales to 2 by hand, it stays 2.
    cp.annotate(&ns, "deployment/web", "wasmscaler.io/paused=true");
    cp.kubectl_ok(&["-n", &ns, "scale", "deployment/web", "--replicas=2"]);
    let st = eventually("status says paused at 2", || async {
        cp.status(&ns, "web")
            .filter(|s| s["action"] == "paused" && s["current"] == 2)
    })
    .await;
    assert_eq!(st["desired"], 2, "{st}");
    assert!(
        st["reason"].as_str().unwrap_or_default().contains("paused"),
        "{st}"
    );
    // Two more intervals: nothing moves.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(cp.replicas(&ns, "deployment", "web"), Some(2));

    // Removing the annotation resumes scaling at once.
    cp.kubectl_ok(&["-n", &ns, "annotate", "deployment/web", "wasmscaler.io/paused-"]);
    cp.replicas_become(&ns, "deployment", "web", 9).await;
    let st = eventually("status after resuming", || async {
        cp.status(&ns, "web").filter(|s| s["current"] == 9)
    })
    .await;
    assert_ne!(st["action"], "paused", "{st}");
    assert_metrics_have(&ctl, &["wasmscaler_evaluations_total{result=\"paused\"}"]);
    ctl.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallback_replicas_after_the_failure_threshold_while_a_neighbour_keeps_scaling() {
    let cp = ControlPlane::shared();
    let ns = cp.namespace("fallback").await;
    // Its load annotation does not exist: every evaluation fails (missing signal).
    cp.apply(&deployment(
        &ns,
        "broken",
        1,
        100,
        &[
            (
                "wasmscaler.io/config",
                "targets: [{signal: load, averageValue: 100}]\nsignals: {load: {annotation: example.com/missing}}",
            ),
            (
                "wasmscaler.io/fallback",
                "{failureThreshold: 3, replicas: 4}",
            ),
        ],
    ));
    cp.apply(&deployment(&ns, "good", 1, 300, &[]));
    let ctl = cp.start_controller(settings(&ns)).await;

    cp.replicas_become(&ns, "deployment", "broken", 4).await;
    // The Events are published right after the /scale write: wait for them.
    let events = eventually("Scaled and EvaluationFailed events", || async {
        let ev = cp.events(&ns, "broken");
        (ev.iter().any(|(r, _)| r == "Scaled") && ev.iter().any(|(r, _)| r == "EvaluationFailed"))
            .then_some(ev)
    })
    .await;
    // Fail-static first (replicas kept, Warning), then the fallback once 3 failed in a row.
    let failed: Vec<&String> = events
        .iter()
        .filter(|(r, _)| r == "EvaluationFailed")
        .map(|(_, n)| n)
        .collect();
    assert!(
        failed
            .iter()
            .any(|n| n.contains("fail-static at 1") && n.contains("example.com/missing")),
        "{events:?}"
    );
    assert!(
        events.iter().any(|(r, n)| r == "Scaled"
            && n.contains("from 1 to 4")
            && n.contains("fallback after 3 failed evaluations")),
        "{events:?}"
    );
    assert!(
        !events
            .iter()
            .any(|(r, n)| r == "Scaled" && !n.contains("from 1 to 4")),
        "{events:?}"
    );

    // Meanwhile the neighbour is scaled normally, and keeps following its load.
    cp.replicas_become(&ns, "deployment", "good", 3).await;
    cp.annotate(&ns, "deployment/good", "example.com/load=600");
    cp.replicas_become(&ns, "deployment", "good", 6).await;
    // The broken one stays at its fallback while it keeps failing.
    let st = eventually("broken's status says failed at 4", || async {
        cp.status(&ns, "broken")
            .filter(|s| s["action"] == "failed" && s["current"] == 4)
    })
    .await;
    assert_eq!(st["desired"], 4, "{st}");
    assert!(
        st["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("fallback after"),
        "{st}"
    );
    assert_eq!(cp.replicas(&ns, "deployment", "broken"), Some(4));

    // The signal appears: normal scaling resumes.
    cp.annotate(&ns, "deployment/broken", "example.com/missing=200");
    cp.replicas_become(&ns, "deployment", "broken", 2).await;
    assert_metrics_have(&ctl, &["wasmscaler_evaluations_total{result=\"failed\"}"]);
    ctl.shutdown().await;
}

/// One HTTP/1.1 GET over a fresh connection: (status, headers, body).
async fn http_get(addr: std::net::SocketAddr, path: &str) -> std::io::Result<(u16, String, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .await?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .map_err(|_| std::io::Error::other("read timed out"))??;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    // axum answers with a fixed Content-Length here, or chunked; undo chunking.
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((code, head.to_string(), body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].strip_prefix("\r\n").unwrap_or(&rest[n..]);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_endpoints_answer_over_a_socket_while_the_controller_runs() {
    let cp = ControlPlane::shared();
    let ns = cp.namespace("http").await;
    cp.apply(&deployment(&ns, "web", 1, 200, &[]));
    let ctl = cp
        .start_controller(wasmscaler::kube::Settings {
            metrics_addr: Some("127.0.0.1:0".parse().expect("addr")),
            ..settings(&ns)
        })
        .await;
    let addr = ctl.metrics_addr.expect("the HTTP server is bound");
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");

    let (code, _, body) = http_get(addr, "/healthz").await.expect("GET /healthz");
    assert_eq!((code, body.as_str()), (200, "ok\n"));
    eventually("/readyz says 200 once the caches synced", || async {
        let (code, _, body) = http_get(addr, "/readyz").await.ok()?;
        (code == 200 && body == "ok\n").then_some(())
    })
    .await;
    assert!(ctl.is_ready());
    let (code, _, _) = http_get(addr, "/nope").await.expect("GET /nope");
    assert_eq!(code, 404);

    cp.replicas_become(&ns, "deployment", "web", 2).await;
    let (code, head, text) = eventually("/metrics with the evaluation", || async {
        let r = http_get(addr, "/metrics").await.ok()?;
        r.2.contains("wasmscaler_evaluations_total{result=\"scale\"} 1")
            .then_some(r)
    })
    .await;
    assert_eq!(code, 200, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text"),
        "{head}"
    );
    for want in [
        "wasmscaler_scale_writes_total{result=\"up\"} 1",
        &format!("wasmscaler_replicas_desired{{namespace=\"{ns}\",kind=\"Deployment\",name=\"web\"}} 2"),
        "wasmscaler_leader 1",
        "wasmscaler_managed_workloads 1",
        "wasmscaler_evaluation_duration_seconds_count",
        "wasmscaler_policy_duration_seconds_count{policy=\"hpa\"}",
        "# EOF",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    // What is served is what the controller counts.
    assert!(
        ctl.metrics
            .encode()
            .contains("wasmscaler_scale_writes_total{result=\"up\"} 1")
    );

    // A graceful shutdown stops the server too.
    ctl.shutdown().await;
    assert!(
        http_get(addr, "/healthz").await.is_err(),
        "still serving after shutdown"
    );
}

/// Replay `records` with the built-in `hpa` (its config replaced when given), recorded
/// state chain.
fn replay_hpa(
    records: &[wasmscaler::core::decision_log::Record],
    config: Option<&str>,
) -> wasmscaler::core::replay::Report {
    use wasmscaler::core::replay::{Replay, Replayer, StateChain};
    use wasmscaler::runtime::{Runtime, builtins};
    let rt = Runtime::deterministic(None).expect("runtime");
    let bytes = builtins::bytes("hpa").expect("built-in hpa");
    let policy = rt
        .load("hpa", bytes, builtins::default_limits("hpa"))
        .expect("hpa loads");
    let mut r = Replayer::new(Replay {
        policy: &policy,
        config: config.map(str::to_string),
        chain: StateChain::Recorded,
        replaces: None,
    });
    for rec in records {
        r.push(rec).expect("replayable");
    }
    r.finish()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_decision_log_replays_to_zero_differences_and_a_changed_policy_exactly_where_expected() {
    use wasmscaler::core::decision_log::{WriterSettings, reader};
    let cp = ControlPlane::shared();
    let ns = cp.namespace("dlog").await;
    let dir = tempfile::tempdir().expect("temp dir");
    cp.apply(&deployment(&ns, "web", 1, 500, &[]));
    let ctl = cp
        .start_controller(wasmscaler::kube::Settings {
            decision_log: Some(WriterSettings::new(dir.path())),
            ..settings(&ns)
        })
        .await;
    cp.replicas_become(&ns, "deployment", "web", 5).await;
    cp.annotate(&ns, "deployment/web", "example.com/load=230");
    cp.replicas_become(&ns, "deployment", "web", 3).await;
    // A few steady evaluations (every second) after the last scale.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_metrics_have(&ctl, &["wasmscaler_decision_log_dropped_total 0"]);
    ctl.shutdown().await;

    let files = reader::expand(&[dir.path().to_path_buf()]).expect("log files");
    let mut records = Vec::new();
    for f in &files {
        for r in reader::read(f).expect("readable") {
            records.push(r.expect("a valid line").record);
        }
    }
    assert!(records.len() >= 4, "{} records", records.len());
    let uid = cp.kubectl_ok(&[
        "-n",
        &ns,
        "get",
        "deployment/web",
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    for r in &records {
        assert_eq!(r.source, "controller");
        assert_eq!(
            (
                r.workload.kind.as_str(),
                r.workload.namespace.as_str(),
                r.workload.name.as_str()
            ),
            ("Deployment", ns.as_str(), "web")
        );
        assert_eq!(r.workload.uid.as_deref(), Some(uid.trim()));
        let p = &r.policies[0];
        assert_eq!((p.policy.as_str(), p.name.as_str()), ("hpa", "hpa-target"));
        assert!(p.latency_us.is_some());
    }
    // The recorded decisions are those the cluster saw: 5 at load 500, 3 at load 230.
    let decided: Vec<u32> = records
        .iter()
        .map(|r| r.policies[0].decision.as_ref().expect("a decision").replicas)
        .collect();
    assert_eq!(decided.first(), Some(&5), "{decided:?}");
    assert_eq!(decided.last(), Some(&3), "{decided:?}");

    // The same component: not one decision differs.
    let same = replay_hpa(&records, None);
    assert_eq!(same.workloads.len(), 1);
    let w = &same.workloads[0];
    assert_eq!(w.evaluations as usize, records.len());
    assert_eq!(w.changed, 0, "{:?}", w.changes);
    assert_eq!(w.recorded_digests, vec![same.digest.clone()]);

    // A changed policy (target 50 per replica instead of 100): the HPA rule on each
    // recorded context says exactly which decisions change, and to what.
    let cfg = r#"{"targets":[{"signal":"load","averageValue":50}]}"#;
    let changed = replay_hpa(&records, Some(cfg));
    let expected: Vec<(i64, u32)> = records
        .iter()
        .filter_map(|r| {
            let p = &r.policies[0];
            let wl = &p.context.workload;
            let load = p
                .context
                .signals
                .0
                .iter()
                .find(|s| s.name == "load")?
                .samples
                .last()?
                .value;
            let new = hpa_target::external_per_pod(wl.replicas, load, 50.0, 0.1)
                .ok()?
                .clamp(wl.min_replicas, wl.max_replicas);
            (new != p.decision.as_ref()?.replicas).then_some((r.at_ms, new))
        })
        .collect();
    assert!(!expected.is_empty());
    let got: Vec<(i64, u32)> = changed.workloads[0]
        .changes
        .iter()
        .map(|c| match &c.new {
            wasmscaler::core::replay::Answer::Decision { replicas, .. } => (c.at_ms, *replicas),
            other => panic!("an error: {other:?}"),
        })
        .collect();
    assert_eq!(got, expected);
    assert!(changed.workloads[0].replica_hours_new > changed.workloads[0].replica_hours_recorded);
}
