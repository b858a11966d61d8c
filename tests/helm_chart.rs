//! The Helm chart (deploy/helm/wasmscaler) with a real `helm` (built from helm.sh/helm/v3 by
//! scripts/build-control-plane.sh) and a real kube-apiserver: `helm lint`, and `helm
//! template` applied with `kubectl apply --dry-run=server` (admission, schema and RBAC
//! escalation checks of the API server) for the default values and for `watchNamespace`,
//! which must grant namespaced Roles only. The chart's RBAC and deploy/rbac.yaml (what the
//! other tests run the controller under) must not drift: same objects, same rules.

#[path = "controlplane/mod.rs"]
mod controlplane;

use std::path::PathBuf;
use std::process::Command;

use controlplane::{ControlPlane, bin_dir, root};
use serde_json::Value;

fn chart() -> String {
    root().join("deploy/helm/wasmscaler").display().to_string()
}

fn helm(args: &[&str]) -> String {
    let bin: PathBuf = bin_dir().join("helm");
    assert!(
        bin.is_file(),
        "{} missing: run scripts/build-control-plane.sh helm",
        bin.display()
    );
    let home = tempfile::tempdir().expect("temp dir");
    let o = Command::new(&bin)
        .args(args)
        // No repositories, no cache outside the test's temp dir.
        .env("HELM_CACHE_HOME", home.path().join("cache"))
        .env("HELM_CONFIG_HOME", home.path().join("config"))
        .env("HELM_DATA_HOME", home.path().join("data"))
        .output()
        .expect("helm runs");
    assert!(
        o.status.success(),
        "helm {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// YAML documents as JSON objects, through kubectl's own decoder.
fn objects(cp: &ControlPlane, yaml: &str) -> Vec<Value> {
    let path = cp.dir().join(format!("objects-{:x}.yaml", fnv(yaml)));
    std::fs::write(&path, yaml).expect("write render");
    let out = cp.kubectl_ok(&[
        "create",
        "--dry-run=client",
        "-o",
        "json",
        "-f",
        &path.display().to_string(),
    ]);
    // Several objects print as a stream of JSON documents (or a List).
    let mut objs = Vec::new();
    for v in serde_json::Deserializer::from_str(&out).into_iter::<Value>() {
        let v = v.expect("kubectl prints JSON");
        match v["kind"].as_str() {
            Some("List") => objs.extend(v["items"].as_array().cloned().unwrap_or_default()),
            _ => objs.push(v),
        }
    }
    objs
}

/// A name for a file holding `text` (FNV-1a), so tests running in parallel never share one.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn kinds(objs: &[Value]) -> Vec<(String, String, String)> {
    let mut k: Vec<_> = objs
        .iter()
        .map(|o| {
            (
                o["kind"].as_str().unwrap_or_default().to_string(),
                o["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                o["metadata"]["name"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    k.sort();
    k
}

/// `kubectl apply --dry-run=server` of rendered manifests: the API server validates and
/// admits every object (RBAC objects included: no privilege escalation) without storing.
fn server_dry_run(cp: &ControlPlane, release: &str, yaml: &str) -> String {
    let path = cp.dir().join(format!("chart-{release}.yaml"));
    std::fs::write(&path, yaml).expect("write render");
    cp.kubectl_ok(&["apply", "--dry-run=server", "-f", &path.display().to_string()])
}

fn args_of(objs: &[Value]) -> Vec<String> {
    let d = objs
        .iter()
        .find(|o| o["kind"] == "Deployment")
        .expect("a Deployment");
    d["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect()
}

#[test]
fn helm_lint_passes() {
    let out = helm(&["lint", "--strict", &chart()]);
    assert!(out.contains("0 chart(s) failed"), "{out}");
}

#[test]
fn default_values_render_what_the_api_server_accepts_and_rbac_matches_deploy_rbac_yaml() {
    let cp = ControlPlane::shared();
    let yaml = helm(&[
        "template",
        "wasmscaler",
        &chart(),
        "--namespace",
        "wasmscaler-system",
    ]);
    let out = server_dry_run(cp, "wasmscaler", &yaml);
    assert!(
        out.contains("deployment.apps/wasmscaler created (server dry run)"),
        "{out}"
    );
    let objs = objects(cp, &yaml);
    let args = args_of(&objs);
    // The Lease lives where the leader-election Role grants it: the release namespace.
    assert!(
        args.contains(&"--lease-namespace=wasmscaler-system".to_string()),
        "{args:?}"
    );
    assert!(!args.iter().any(|a| a.starts_with("--namespace=")), "{args:?}");
    // Any signal server unless the operator lists them; intervals of 5 s or more.
    assert!(args.contains(&"--min-interval=5s".to_string()), "{args:?}");
    assert!(
        !args.iter().any(|a| a.starts_with("--decision-log")),
        "the decision log is off by default: {args:?}"
    );
    assert!(
        !args
            .iter()
            .any(|a| a.starts_with("--allowed-signal-servers") || a.starts_with("--prometheus-url")),
        "{args:?}"
    );

    // One RBAC source: the chart's RBAC objects are deploy/rbac.yaml's, rule for rule.
    let plain = objects(
        cp,
        &std::fs::read_to_string(root().join("deploy/rbac.yaml")).expect("deploy/rbac.yaml"),
    );
    let rbac = |objs: &[Value]| -> Vec<Value> {
        let mut v: Vec<Value> = objs
            .iter()
            .filter(|o| {
                matches!(
                    o["kind"].as_str(),
                    Some("ServiceAccount" | "ClusterRole" | "ClusterRoleBinding" | "Role" | "RoleBinding")
                )
            })
            .map(|o| {
                serde_json::json!({
                    "kind": o["kind"], "name": o["metadata"]["name"],
                    "namespace": o["metadata"]["namespace"],
                    "rules": o["rules"], "roleRef": o["roleRef"], "subjects": o["subjects"],
                })
            })
            .collect();
        v.sort_by_key(|o| format!("{}/{}", o["kind"], o["name"]));
        v
    };
    assert_eq!(
        rbac(&objs),
        rbac(&plain),
        "deploy/helm/wasmscaler/templates/rbac.yaml and deploy/rbac.yaml drifted apart"
    );
}

#[test]
fn watch_namespace_grants_roles_in_that_namespace_and_no_cluster_role() {
    let cp = ControlPlane::shared();
    cp.kubectl_ok(&["create", "namespace", "shop"]);
    let yaml = helm(&[
        "template",
        "scaler",
        &chart(),
        "--namespace",
        "wasmscaler-system",
        "--set",
        "watchNamespace=shop",
        "--set",
        "allowedSignalServers={prometheus.monitoring,redis.jobs:6379}",
        "--set",
        "prometheusUrl=http://prometheus.monitoring:9090",
    ]);
    let out = server_dry_run(cp, "scaler", &yaml);
    assert!(out.contains("(server dry run)"), "{out}");
    let objs = objects(cp, &yaml);
    let k = kinds(&objs);
    assert!(
        !k.iter().any(|(kind, _, _)| kind.starts_with("Cluster")),
        "no cluster-wide RBAC with watchNamespace: {k:?}"
    );
    assert!(
        k.contains(&("Role".into(), "shop".into(), "scaler-controller".into()))
            && k.contains(&("RoleBinding".into(), "shop".into(), "scaler-controller".into())),
        "the controller's Role is in the watched namespace: {k:?}"
    );
    let role = objs
        .iter()
        .find(|o| o["kind"] == "Role" && o["metadata"]["namespace"] == "shop")
        .expect("Role in shop");
    let text = role["rules"].to_string();
    assert!(
        text.contains("deployments/scale") && !text.contains("\"nodes\""),
        "{text}"
    );
    let args = args_of(&objs);
    assert!(args.contains(&"--namespace=shop".to_string()), "{args:?}");
    for a in [
        "--allowed-signal-servers=prometheus.monitoring,redis.jobs:6379",
        "--prometheus-url=http://prometheus.monitoring:9090",
        "--min-interval=5s",
    ] {
        assert!(args.contains(&a.to_string()), "{a} in {args:?}");
    }
    assert!(
        args.contains(&"--lease-namespace=wasmscaler-system".to_string()),
        "{args:?}"
    );
}

#[test]
fn the_decision_log_value_adds_its_flags_and_a_bounded_volume() {
    let cp = ControlPlane::shared();
    let yaml = helm(&[
        "template",
        "logged",
        &chart(),
        "--namespace",
        "wasmscaler-system",
        "--set",
        "decisionLog.enabled=true",
        "--set",
        "decisionLog.maxTotalMiB=256",
    ]);
    let out = server_dry_run(cp, "logged", &yaml);
    assert!(out.contains("(server dry run)"), "{out}");
    let objs = objects(cp, &yaml);
    let args = args_of(&objs);
    for a in [
        "--decision-log=/decision-log/$(POD_NAME)",
        "--decision-log-file-mib=64",
        "--decision-log-total-mib=256",
    ] {
        assert!(args.contains(&a.to_string()), "{a} in {args:?}");
    }
    let d = objs
        .iter()
        .find(|o| o["kind"] == "Deployment")
        .expect("a Deployment");
    let pod = &d["spec"]["template"]["spec"];
    let vol = pod["volumes"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["name"] == "decision-log"))
        .expect("a decision-log volume");
    assert_eq!(vol["emptyDir"]["sizeLimit"], "320Mi", "{vol}");
    let mounts = pod["containers"][0]["volumeMounts"].to_string();
    assert!(mounts.contains("/decision-log"), "{mounts}");
}
