//! The `wasmscaler policy` commands as a user runs them: output, exit codes, error text.

use std::path::PathBuf;
use std::process::{Command, Output};

fn wasmscaler(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wasmscaler"))
        .args(args)
        .output()
        .expect("run wasmscaler")
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn example_context() -> String {
    root()
        .join("examples/contexts/hpa-burst.json")
        .display()
        .to_string()
}

#[test]
fn eval_prints_the_decision_as_json() {
    let out = wasmscaler(&["policy", "eval", "hpa", "--context", &example_context()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    // 610 rps over 4 replicas = 152.5 per replica vs 100 -> ceil(4 x 1.525) = 7.
    assert_eq!(v["replicas"], 7);
    assert!(v["reason"].as_str().unwrap().contains("152.5/replica"), "{v}");
}

#[test]
fn inspect_shows_describe_digest_and_contract() {
    let out = wasmscaler(&["policy", "inspect", "hpa", "--output", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["name"], "hpa-target");
    assert_eq!(v["contract"], "wasmscaler:policy@0.1.0");
    assert!(v["digest"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(v["signals"][0]["name"], "load");
}

#[test]
fn bad_context_json_is_exit_2_with_position() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("ctx.json");
    std::fs::write(&f, "{\"nowMs\": 1,\n \"workload\": {\"replicas\": \"three\"}}").unwrap();
    let out = wasmscaler(&["policy", "eval", "hpa", "--context", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("ctx.json: at 'workload.replicas'"), "{err}");
    assert!(err.contains("line 2"), "{err}");

    std::fs::write(&f, "{\"nowMs\": 1, \"signal\": {}}").unwrap();
    let out = wasmscaler(&["policy", "eval", "hpa", "--context", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("unknown field `signal`"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn garbage_wasm_and_unknown_policy_are_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("broken.wasm");
    std::fs::write(&f, b"not wasm").unwrap();
    let out = wasmscaler(&["policy", "inspect", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("broken.wasm: not a WebAssembly component"),
        "{}",
        text(&out.stderr)
    );
    let out = wasmscaler(&["policy", "inspect", "no-such-policy"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("neither a file nor a built-in"),
        "{}",
        text(&out.stderr)
    );
    let out = wasmscaler(&["policy", "frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn validate_reports_the_key_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("cfg.yaml");
    std::fs::write(&f, "targets:\n  - signal: load\n    averageValue: -5\n").unwrap();
    let out = wasmscaler(&["policy", "validate", "hpa", "--config", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("targets[0].averageValue"),
        "{}",
        text(&out.stderr)
    );
    std::fs::write(&f, "targets:\n  - signal: load\n    averageValue: 50\n").unwrap();
    let out = wasmscaler(&["policy", "validate", "hpa", "--config", f.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("valid configuration"));
}

#[test]
fn eval_hands_the_policy_its_config_without_the_host_owned_keys() {
    // A workload's whole wasmscaler.io/config pasted into a context: `signals:` and
    // `variants:` are the host's (the controller strips them), so the policy answers as
    // it does in the cluster instead of rejecting unknown keys.
    let dir = tempfile::tempdir().unwrap();
    let base: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(example_context()).unwrap()).unwrap();
    let mut pasted = base.clone();
    pasted["config"] = serde_json::json!(
        "targets: [{signal: load, averageValue: 100}]\nsignals: {load: {prometheus: 'sum(rate(x[1m]))'}}\nvariants: {spot: web-spot}\n"
    );
    let f = dir.path().join("pasted.json");
    std::fs::write(&f, pasted.to_string()).unwrap();
    let out = wasmscaler(&["policy", "eval", "hpa", "--context", f.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let plain = wasmscaler(&["policy", "eval", "hpa", "--context", &example_context()]);
    let p: serde_json::Value = serde_json::from_slice(&plain.stdout).unwrap();
    assert_eq!(
        (v["replicas"].clone(), v["reason"].clone()),
        (p["replicas"].clone(), p["reason"].clone())
    );
}
