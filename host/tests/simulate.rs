//! `wasmscaler simulate` end to end: the real binary, the real sandbox, the built-in
//! policies, the bundled scenarios.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wasmscaler"))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn run(args: &[&str], cwd: &Path) -> Output {
    bin().args(args).current_dir(cwd).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `wasmscaler simulate SCENARIO --output json`, which must succeed.
fn simulate_json(scenario: &str, cwd: &Path) -> serde_json::Value {
    let out = run(&["simulate", scenario, "--output", "json", "--quiet"], cwd);
    assert!(out.status.success(), "{scenario}: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A small service scenario on a step trace, written into `dir`.
fn write_step_scenario(dir: &Path, extra_policies: &str) -> PathBuf {
    // 10 min at 100 rps, 20 min at 300 rps, 10 min at 100 rps.
    let mut csv = String::from("timestamp_s,value\n");
    for i in 0..40 {
        let v = if (10..30).contains(&i) { 300 } else { 100 };
        csv.push_str(&format!("{},{v}\n", i * 60));
    }
    std::fs::write(dir.join("step.csv"), csv).unwrap();
    let yaml = format!(
        "name: step\ntrace: {{file: step.csv, unit: rps, interpolate: step}}\ncapacityPerReplica: 10\npodStartup: 60s\ninterval: 15s\nminReplicas: 1\nmaxReplicas: 50\nbaseline: {{targetUtilization: 1.0}}\npolicies:{}\n",
        if extra_policies.is_empty() {
            " []"
        } else {
            extra_policies
        }
    );
    let p = dir.join("step.yaml");
    std::fs::write(&p, yaml).unwrap();
    p
}

#[test]
fn default_scenario_runs_and_prints_a_table() {
    // From an empty directory: the bundled scenario and its trace are embedded.
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["simulate", "--quiet"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    for needle in [
        "hpa-baseline",
        "knative-concurrency",
        "ml-predictive",
        "oracle",
        "SLO viol %",
        "x oracle",
    ] {
        assert!(table.contains(needle), "missing {needle}:\n{table}");
    }
}

#[test]
fn json_is_byte_identical_across_runs_and_thread_counts() {
    let dir = tempfile::tempdir().unwrap();
    let s = write_step_scenario(
        dir.path(),
        "\n  - {name: hpa-60, policy: hpa, config: {targets: [{signal: load, averageValue: 6}]}}\n",
    );
    let s = s.to_str().unwrap();
    let a = run(&["simulate", s, "--output", "json", "--quiet"], dir.path());
    let b = run(
        &["simulate", s, "--output", "json", "--quiet", "--threads", "1"],
        dir.path(),
    );
    assert!(a.status.success(), "{}", text(&a.stderr));
    assert_eq!(a.stdout, b.stdout);
    let v: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    assert_eq!(v["scores"].as_array().unwrap().len(), 3);
    // The chart is written and is SVG.
    let svg = dir.path().join("c.svg");
    let c = run(
        &["simulate", s, "--quiet", "--chart", svg.to_str().unwrap()],
        dir.path(),
    );
    assert!(c.status.success(), "{}", text(&c.stderr));
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
}

#[test]
fn hpa_baseline_on_a_step_load_behaves_like_an_hpa() {
    // Worked out by hand (capacity 10 rps, target 10 per replica, 60 s start-up, 15 s
    // sync, HPA default behavior): 10 replicas at 100 rps. At t = 600 s load triples:
    // the HPA wants 30 but the scale-up policies allow max(+100 %, +4) = 20; 15 s later
    // 30. Ready capacity reaches 300 rps only at 675 s: 75 s of violation. Load drops at
    // 1800 s; the 300 s down-stabilization keeps 30 until the first sync whose window
    // holds no 30 (2085 s), then straight to 10 (-100 % per 15 s).
    let dir = tempfile::tempdir().unwrap();
    let s = write_step_scenario(dir.path(), "");
    let v = simulate_json(s.to_str().unwrap(), dir.path());
    let hpa = &v["scores"][0];
    assert_eq!(hpa["name"], "hpa-baseline");
    assert_eq!(hpa["scaleEvents"], 3, "{hpa}");
    assert_eq!(hpa["maxReplicas"], 30, "{hpa}");
    assert_eq!(hpa["violationMinutes"], 1.25, "{hpa}");
    assert_eq!(hpa["violationMinutesAboveMax"], 0.0, "{hpa}");
    // 10 x 600 s + 20 x 15 s + 30 x 1470 s + 10 x 315 s = 53,550 replica-seconds.
    let rh = hpa["replicaHours"].as_f64().unwrap();
    assert!((rh - 53_550.0 / 3600.0).abs() < 0.01, "{rh}");
}

#[test]
fn policies_are_read_against_a_reference_curve_at_equal_cost() {
    // Two HPAs on the step load form the curve: target 10 (the baseline, 1.25 violation
    // minutes) and target 5 (twice the replicas, none). A third HPA at target 7 spends in
    // between and is read against the line between them.
    let dir = tempfile::tempdir().unwrap();
    let s = write_step_scenario(
        dir.path(),
        "\n  - {name: hpa-5, policy: hpa, behavior: {}, config: {targets: [{signal: load, averageValue: 5}]}}\n  - {name: hpa-7, policy: hpa, behavior: {}, config: {targets: [{signal: load, averageValue: 7}]}}\ncompareAtEqualCost: [hpa-baseline, hpa-5]",
    );
    let v = simulate_json(s.to_str().unwrap(), dir.path());
    let score = |name: &str| -> (f64, f64) {
        let s = v["scores"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap();
        (
            s["replicaHours"].as_f64().unwrap(),
            s["violationMinutes"].as_f64().unwrap(),
        )
    };
    let ((x0, y0), (x1, y1), (x, y)) = (score("hpa-baseline"), score("hpa-5"), score("hpa-7"));
    assert!(
        x0 < x && x < x1,
        "hpa-7 spends between the curve's points: {x0} {x} {x1}"
    );
    let rows = v["equalCost"]["rows"].as_array().unwrap();
    assert_eq!(
        rows.len(),
        1,
        "only hpa-7 is off the curve (the oracle is not read): {rows:?}"
    );
    let row = &rows[0];
    assert_eq!(row["name"], "hpa-7");
    assert_eq!(row["position"], "interpolated");
    let expect = y0 + (y1 - y0) * (x - x0) / (x1 - x0);
    let at = row["referenceViolationMinutes"].as_f64().unwrap();
    assert!((at - expect).abs() < 0.01, "{at} vs {expect}");
    let change = row["changePct"].as_f64().unwrap();
    assert!((change - 100.0 * (y - expect) / expect).abs() < 0.1, "{change}");
    // Churn next to it: the entry's own and the curve's at the same spend.
    let churn = |name: &str| -> (f64, f64) {
        let s = v["scores"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap();
        (
            s["scaleEventsPerHour"].as_f64().unwrap(),
            s["podStarts"].as_f64().unwrap(),
        )
    };
    let ((e0, p0), (e1, p1)) = (churn("hpa-baseline"), churn("hpa-5"));
    assert_eq!(
        (row["scaleEventsPerHour"].as_f64(), row["podStarts"].as_f64()),
        (Some(churn("hpa-7").0), Some(churn("hpa-7").1)),
        "{row}"
    );
    let curve_events = row["referenceScaleEventsPerHour"].as_f64().unwrap();
    assert!(
        (curve_events - (e0 + (e1 - e0) * (x - x0) / (x1 - x0))).abs() < 0.01,
        "{row}"
    );
    let curve_starts = row["referencePodStarts"].as_f64().unwrap();
    assert!(
        (curve_starts - (p0 + (p1 - p0) * (x - x0) / (x1 - x0))).abs() <= 0.5,
        "{row}"
    );
    // The table shows the same comparison.
    let table = run(&["simulate", s.to_str().unwrap(), "--quiet"], dir.path());
    let table = text(&table.stdout);
    assert!(
        table.contains("at equal replica-hours, against the curve of hpa-baseline, hpa-5"),
        "{table}"
    );
    assert!(
        table.contains("curve ev/h") && table.contains("curve starts"),
        "{table}"
    );
}

#[test]
fn violations_no_policy_could_avoid_are_counted_apart() {
    // maxReplicas 20 x 10 rps = 200 rps < the 300 rps of minutes 10..30: those 20 minutes
    // are violated whatever the policy does, and the scorecard says so.
    let dir = tempfile::tempdir().unwrap();
    let s = write_step_scenario(dir.path(), "");
    let yaml = std::fs::read_to_string(&s)
        .unwrap()
        .replace("maxReplicas: 50", "maxReplicas: 20");
    std::fs::write(&s, yaml).unwrap();
    let v = simulate_json(s.to_str().unwrap(), dir.path());
    let hpa = &v["scores"][0];
    assert_eq!(hpa["violationMinutesAboveMax"], 20.0, "{hpa}");
    assert_eq!(hpa["violationMinutes"], 20.0, "{hpa}");
    assert_eq!(hpa["maxReplicas"], 20, "{hpa}");
    // The oracle is held to the same bound: it misses exactly those minutes, no more.
    let oracle = v["scores"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(oracle["name"], "oracle");
    assert_eq!(oracle["maxReplicas"], 20, "{oracle}");
    assert_eq!(oracle["violationMinutes"], 20.0, "{oracle}");
    assert_eq!(oracle["violationMinutesAboveMax"], 20.0, "{oracle}");
    assert!(oracle["unservedPct"].as_f64().unwrap() > 0.0, "{oracle}");
}

#[test]
fn churn_is_scored_per_policy_scale_events_per_hour_and_pod_starts() {
    // 100 -> 300 -> 100 rps at 10 per replica, the HPA at 100 %: 10 -> 30 -> 10 replicas.
    let dir = tempfile::tempdir().unwrap();
    let s = write_step_scenario(dir.path(), "");
    let v = simulate_json(s.to_str().unwrap(), dir.path());
    let hpa = &v["scores"][0];
    let events = hpa["scaleEvents"].as_f64().unwrap();
    assert!(events >= 2.0, "{hpa}");
    // 40 simulated minutes.
    let per_hour = hpa["scaleEventsPerHour"].as_f64().unwrap();
    assert!((per_hour - events * 1.5).abs() < 0.01, "{hpa}");
    // The 20 extra replicas are started once each; the 10 starting pods are not counted.
    let starts = hpa["podStarts"].as_u64().unwrap();
    assert!((20..=24).contains(&starts), "{hpa}");
    let oracle = v["scores"].as_array().unwrap().last().unwrap();
    assert_eq!(oracle["podStarts"], 20, "{oracle}");
    assert_eq!(oracle["scaleEvents"], 2, "{oracle}");
    let table = run(&["simulate", s.to_str().unwrap(), "--quiet"], dir.path());
    let table = text(&table.stdout);
    assert!(table.contains("ev/h") && table.contains("pod starts"), "{table}");
}

#[test]
fn oracle_violates_only_above_max_and_costs_no_more_than_any_policy() {
    let dir = tempfile::tempdir().unwrap();
    for scenario in [
        "flash-crowd-knative.yaml",
        "spot-interruptions.yaml",
        "business-hours-cron.yaml",
    ] {
        let s = repo().join("examples/scenarios").join(scenario);
        let out = run(
            &["simulate", s.to_str().unwrap(), "--output", "json", "--quiet"],
            dir.path(),
        );
        assert!(out.status.success(), "{scenario}: {}", text(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let scores = v["scores"].as_array().unwrap();
        let oracle = scores.last().unwrap();
        assert_eq!(oracle["name"], "oracle");
        assert_eq!(oracle["violationMinutes"], oracle["violationMinutesAboveMax"]);
        let oc = oracle["cost"].as_f64().unwrap();
        for s in &scores[..scores.len() - 1] {
            assert!(
                s["cost"].as_f64().unwrap() >= oc,
                "{scenario}: {s} cheaper than the oracle {oc}"
            );
        }
    }
}

#[test]
fn queue_scenario_consumes_items() {
    let s = repo().join("examples/scenarios/batch-queue-job.yaml");
    let v = simulate_json(s.to_str().unwrap(), &repo());
    for s in v["scores"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"] != "oracle")
    {
        // Jobs ran, and nearly every item was taken within the 10 min bound.
        assert!(s["replicaHours"].as_f64().unwrap() > 10.0, "{s}");
        assert!(s["unservedPct"].as_f64().unwrap() < 5.0, "{s}");
        assert_eq!(s["failedEvaluations"], 0, "{s}");
    }
}

/// (what, scenario text, extra files, what the message must contain)
type BadCase = (
    &'static str,
    String,
    Vec<(&'static str, &'static str)>,
    Vec<&'static str>,
);

fn bad(dir: &Path, scenario: &str, files: &[(&str, &str)]) -> (String, bool) {
    for (name, body) in files {
        std::fs::write(dir.join(name), body).unwrap();
    }
    let s = dir.join("bad.yaml");
    std::fs::write(&s, scenario).unwrap();
    let out_file = dir.join("out.json");
    let chart = dir.join("out.svg");
    let out = run(
        &[
            "simulate",
            s.to_str().unwrap(),
            "--output",
            "json",
            "--out",
            out_file.to_str().unwrap(),
            "--chart",
            chart.to_str().unwrap(),
            "--quiet",
        ],
        dir,
    );
    assert_eq!(out.status.code(), Some(2), "stderr: {}", text(&out.stderr));
    (text(&out.stderr), out_file.exists() || chart.exists())
}

#[test]
fn bad_input_exits_2_naming_file_line_and_key_and_writes_nothing() {
    let head = "capacityPerReplica: 10\npolicies:\n  - policy: hpa\n";
    let good_csv = "timestamp_s,value\n0,1\n60,2\n120,3\n";
    let cases: Vec<BadCase> = vec![
        (
            "missing trace",
            format!("trace: {{file: nope.csv, unit: rps}}\n{head}"),
            vec![],
            vec!["nope.csv", "cannot read"],
        ),
        (
            "malformed CSV line",
            format!("trace: {{file: t.csv, unit: rps}}\n{head}"),
            vec![("t.csv", "timestamp_s,value\n0,1\n60,abc\n")],
            vec!["t.csv:3", "'abc'"],
        ),
        (
            "non-monotonic timestamp",
            format!("trace: {{file: t.csv, unit: rps}}\n{head}"),
            vec![("t.csv", "timestamp_s,value\n0,1\n60,2\n60,3\n")],
            vec!["t.csv:4", "increase"],
        ),
        (
            "negative value",
            format!("trace: {{file: t.csv, unit: rps}}\n{head}"),
            vec![("t.csv", "timestamp_s,value\n0,1\n60,-2\n")],
            vec!["t.csv:3", "negative"],
        ),
        (
            "unknown policy",
            "trace: {file: g.csv, unit: rps}\ncapacityPerReplica: 10\npolicies:\n  - policy: hpa\n  - name: x\n    policy: no-such-policy\n".into(),
            vec![("g.csv", good_csv)],
            vec!["bad.yaml:6", "policies[1].policy", "no-such-policy"],
        ),
        (
            "config the policy rejects",
            "trace: {file: g.csv, unit: rps}\ncapacityPerReplica: 10\npolicies:\n  - policy: hpa\n    config:\n      tolerance: 7\n".into(),
            vec![("g.csv", good_csv)],
            vec!["bad.yaml:5", "policies[0].config", "tolerance"],
        ),
        (
            "mistyped key",
            "trace: {file: g.csv, unit: rps}\ncapacityPerReplica: 10\ninterval: soon\npolicies: []\n".into(),
            vec![("g.csv", good_csv)],
            vec!["bad.yaml:3", "interval"],
        ),
        (
            "equal-cost curve naming no entry",
            "trace: {file: g.csv, unit: rps}\ncapacityPerReplica: 10\npolicies:\n  - policy: hpa\ncompareAtEqualCost: [hpa-baseline, hpa-0.9]\n".into(),
            vec![("g.csv", good_csv)],
            vec!["bad.yaml:5", "compareAtEqualCost", "'hpa-0.9'", "hpa-baseline"],
        ),
        (
            // The peak (3 per second) would need 300,000 replicas.
            "capacityPerReplica too small for the trace",
            "trace: {file: g.csv, unit: rps}\ncapacityPerReplica: 0.00001\nmaxReplicas: 100000\npolicies: []\n".into(),
            vec![("g.csv", good_csv)],
            vec!["bad.yaml:2", "capacityPerReplica", "300000 replicas", "at most 100000"],
        ),
        (
            "maxReplicas beyond what the simulator holds",
            "trace: {file: g.csv, unit: rps}\ncapacityPerReplica: 1\nmaxReplicas: 5000000\npolicies: []\n".into(),
            vec![("g.csv", good_csv)],
            vec!["bad.yaml:3", "maxReplicas", "5000000 replicas"],
        ),
    ];
    for (what, scenario, files, needles) in cases {
        let dir = tempfile::tempdir().unwrap();
        let (stderr, wrote) = bad(dir.path(), &scenario, &files);
        assert!(
            stderr.contains("bad.yaml") || stderr.contains(".csv"),
            "{what}: {stderr}"
        );
        for n in needles {
            assert!(stderr.contains(n), "{what}: '{n}' not in: {stderr}");
        }
        assert!(!wrote, "{what}: an output file was written");
    }
}

#[test]
fn every_bundled_scenario_loads_and_its_policies_accept_their_config() {
    // What `wasmscaler simulate <file>` checks before its first tick (trace, keys, each
    // policy's validate-config), for every scenario the README points users at; the runs
    // themselves take minutes and are not repeated here.
    fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                yaml_files(&p, out);
            } else if p.extension().is_some_and(|x| x == "yaml") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    yaml_files(&repo().join("examples/scenarios"), &mut files);
    files.sort();
    assert!(files.len() >= 20, "{files:?}");
    for f in &files {
        let loaded = wasmscaler::sim::scenario::load(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let registry = wasmscaler::sim::setup::registry_for(&loaded).unwrap();
        let prepared = wasmscaler::sim::setup::prepare(loaded, registry)
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert!(!prepared.entries.is_empty(), "{}", f.display());
    }
}
