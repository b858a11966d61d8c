//! Workload manifests shared by the controller test binaries.

/// A Deployment whose load is an annotation the test (or a user) changes, scaled by the
/// built-in `hpa` policy: desired = ceil(load / 100).
pub fn hpa_deployment(ns: &str, name: &str, replicas: u32, load: u32, extra: &[(&str, &str)]) -> String {
    let mut ann = vec![
        ("wasmscaler.io/policy".to_string(), "hpa".to_string()),
        (
            "wasmscaler.io/config".to_string(),
            "targets: [{signal: load, averageValue: 100}]\nsignals: {load: {annotation: example.com/load}}"
                .to_string(),
        ),
        ("wasmscaler.io/max-replicas".to_string(), "10".to_string()),
        ("wasmscaler.io/interval".to_string(), "1s".to_string()),
        ("example.com/load".to_string(), load.to_string()),
    ];
    for (k, v) in extra {
        ann.retain(|(x, _)| x != k);
        ann.push((k.to_string(), v.to_string()));
    }
    let ann: String = ann
        .iter()
        .map(|(k, v)| format!("    {k}: {}\n", serde_json::Value::String(v.clone())))
        .collect();
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {ns}\n  annotations:\n{ann}\
spec:\n  replicas: {replicas}\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n      - name: app\n        image: registry.invalid/app:1\n"
    )
}
