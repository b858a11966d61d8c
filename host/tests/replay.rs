//! `simulate --decision-log` then `replay`: the same component on the recorded contexts
//! answers exactly as recorded; a changed config differs exactly where the HPA rule says
//! it must; bad input is exit 2 naming the file and line.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use wasmscaler::core::decision_log::reader;

fn run(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wasmscaler"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// 10 min at 100 rps, 20 min at 300, 10 min at 100; the HPA baseline (average 10/replica).
fn step_scenario(dir: &Path) -> PathBuf {
    let mut csv = String::from("timestamp_s,value\n");
    for i in 0..40 {
        let v = if (10..30).contains(&i) { 300 } else { 100 };
        csv.push_str(&format!("{},{v}\n", i * 60));
    }
    std::fs::write(dir.join("step.csv"), csv).unwrap();
    let yaml = "name: step\ntrace: {file: step.csv, unit: rps, interpolate: step}\ncapacityPerReplica: 10\n\
                podStartup: 60s\ninterval: 15s\nminReplicas: 1\nmaxReplicas: 50\n\
                baseline: {targetUtilization: 1.0}\npolicies: []\n";
    let p = dir.join("step.yaml");
    std::fs::write(&p, yaml).unwrap();
    p
}

fn replay_json(args: &[&str], cwd: &Path) -> (Option<i32>, serde_json::Value, String) {
    let mut all = vec!["replay"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--output", "json"]);
    let out = run(&all, cwd);
    let v = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code(), v, text(&out.stderr))
}

#[test]
fn a_simulation_replays_to_zero_differences_and_a_changed_config_exactly_where_expected() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = step_scenario(d);
    let log = d.join("decisions.jsonl.gz");
    let out = run(
        &[
            "simulate",
            s.to_str().unwrap(),
            "--quiet",
            "--decision-log",
            log.to_str().unwrap(),
        ],
        d,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The simulator's log is deterministic, like its scorecard.
    let again = d.join("again.jsonl.gz");
    let out = run(
        &[
            "simulate",
            s.to_str().unwrap(),
            "--quiet",
            "--decision-log",
            again.to_str().unwrap(),
        ],
        d,
    );
    assert!(out.status.success());
    assert_eq!(std::fs::read(&log).unwrap(), std::fs::read(&again).unwrap());

    let records: Vec<_> = reader::read(&log)
        .unwrap()
        .map(Result::unwrap)
        .map(|l| l.record)
        .collect();
    // 40 min every 15 s.
    assert_eq!(records.len(), 160, "one line per evaluation");
    let first = &records[0];
    assert_eq!(first.source, "simulator");
    assert_eq!(first.policies[0].name, "hpa-target");
    assert_eq!(first.policies[0].context.signals.0[0].name, "load");

    // Same component, recorded config and state: nothing changes.
    let (code, v, err) = replay_json(&[log.to_str().unwrap(), "--policy", "hpa"], d);
    assert_eq!(code, Some(0), "{err}\n{v}");
    let w = &v["workloads"][0];
    assert_eq!(w["evaluations"], 160, "{v}");
    assert_eq!(w["changed"], 0, "{v}");
    assert_eq!(w["replicaHoursRecorded"], w["replicaHoursNew"]);
    assert!(w["recordedDigests"][0].as_str().unwrap() == v["digest"].as_str().unwrap());

    // Target 20 per replica instead of 10: the HPA rule, applied to each recorded
    // context, says which decisions change and to what.
    let cfg = d.join("twenty.yaml");
    std::fs::write(&cfg, "targets: [{signal: load, averageValue: 20}]\n").unwrap();
    let (code, v, err) = replay_json(
        &[
            log.to_str().unwrap(),
            "--policy",
            "hpa",
            "--config",
            cfg.to_str().unwrap(),
        ],
        d,
    );
    assert_eq!(
        code,
        Some(1),
        "differences beyond the default threshold (0): {err}"
    );
    assert!(err.contains("beyond the threshold"), "{err}");
    let mut expected = Vec::new();
    for r in &records {
        let p = &r.policies[0];
        let ctx = &p.context;
        let load = ctx.signals.0[0].samples.last().unwrap().value;
        let wl = &ctx.workload;
        let new = hpa_target::external_per_pod(wl.replicas, load, 20.0, 0.1)
            .unwrap()
            .clamp(wl.min_replicas, wl.max_replicas);
        let old = p.decision.as_ref().unwrap().replicas;
        if new != old {
            expected.push((r.at_ms, old, new));
        }
    }
    assert!(expected.len() > 10, "the config change matters: {expected:?}");
    let got: Vec<(i64, u64, u64)> = v["workloads"][0]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["atMs"].as_i64().unwrap(),
                c["recorded"]["decision"]["replicas"].as_u64().unwrap(),
                c["new"]["decision"]["replicas"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected: Vec<(i64, u64, u64)> = expected
        .into_iter()
        .map(|(t, o, n)| (t, o.into(), n.into()))
        .collect();
    assert_eq!(got, expected);
    let w = &v["workloads"][0];
    assert_eq!(w["changed"], expected.len());
    assert!(w["belowMs"].as_i64().unwrap() > 0 && w["aboveMs"] == 0, "{w}");
    assert!(w["replicaHoursNew"].as_f64().unwrap() < w["replicaHoursRecorded"].as_f64().unwrap());
    assert!(w["maxDelta"].as_i64().unwrap() < 0);

    // As a gate with room for them all: exit 0. The own chain of a stateless policy
    // changes nothing.
    let (code, _, err) = replay_json(
        &[
            log.to_str().unwrap(),
            "--policy",
            "hpa",
            "--config",
            cfg.to_str().unwrap(),
            "--threshold",
            "100%",
            "--state-chain",
            "own",
        ],
        d,
    );
    assert_eq!(code, Some(0), "{err}");
    // The table names the workload and the first change.
    let out = run(
        &[
            "replay",
            log.to_str().unwrap(),
            "--policy",
            "hpa",
            "--config",
            cfg.to_str().unwrap(),
        ],
        d,
    );
    let table = text(&out.stdout);
    assert!(
        table.contains("Simulated/simulation/") && table.contains("changed decision(s)"),
        "{table}"
    );
}

#[test]
fn bad_input_is_exit_2_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bad = d.join("bad.jsonl");
    std::fs::write(&bad, "\n{\"v\":1,\"atMs\":1}\n").unwrap();
    let out = run(&["replay", bad.to_str().unwrap(), "--policy", "hpa"], d);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains(&format!("{}:2:", bad.display())), "{err}");

    let missing = run(&["replay", "nope.jsonl", "--policy", "hpa"], d);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("nope.jsonl"));

    let empty = d.join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let out = run(&["replay", empty.to_str().unwrap(), "--policy", "hpa"], d);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no recorded evaluation"),
        "{}",
        text(&out.stderr)
    );

    let out = run(
        &[
            "replay",
            empty.to_str().unwrap(),
            "--policy",
            "hpa",
            "--threshold",
            "lots",
        ],
        d,
    );
    assert_eq!(out.status.code(), Some(2));
}
