//! The simulated cluster seen through the library: spot interruptions move replicas to
//! on-demand under spot-fallback; the scenario's seed makes runs repeatable.

use std::path::Path;

use wasmscaler::sim::{report, run, scenario, setup};

fn scenario_text(rate: f64) -> String {
    format!(
        r#"
name: spot
seed: 3
trace: {{file: flat.csv, unit: rps}}
capacityPerReplica: 10
podStartup: 30s
interval: 15s
minReplicas: 2
maxReplicas: 40
spot: {{interruptionRate: {rate}}}
baseline: false
policies:
  - name: spot-fallback
    policy: spot-fallback
    config:
      averageValue: 10
      onDemandBase: 0.2
      maxInterruptions: 1
      interruptionWindow: 10m
      calmPeriod: 30m
"#
    )
}

fn simulate(dir: &Path, rate: f64) -> (report::Report, run::Outcome) {
    let mut csv = String::from("timestamp_s,value\n");
    for i in 0..360 {
        csv.push_str(&format!("{},200\n", i * 60));
    }
    std::fs::write(dir.join("flat.csv"), csv).unwrap();
    let loaded = scenario::parse(&dir.join("spot.yaml"), scenario_text(rate)).unwrap();
    let reg = setup::registry_for(&loaded).unwrap();
    let prepared = setup::prepare(loaded, reg).unwrap();
    let outcome = run::run(&prepared, 1, None).unwrap();
    (report::build(&prepared, &outcome, false), outcome)
}

#[test]
fn spot_interruptions_move_replicas_to_on_demand() {
    let dir = tempfile::tempdir().unwrap();
    let (calm, calm_run) = simulate(dir.path(), 0.0);
    let (stormy, stormy_run) = simulate(dir.path(), 2.0);
    assert_eq!(calm.scores[0].spot_interruptions, 0);
    assert!(stormy.scores[0].spot_interruptions > 10, "{:?}", stormy.scores[0]);
    let share = |o: &run::Outcome| {
        let t = &o.runs[0].tally;
        t.on_demand_ms / (t.on_demand_ms + t.spot_ms)
    };
    // Calm: the 20 % on-demand floor (4 of 20). Interruptions: the spot share moves.
    assert!((share(&calm_run) - 0.2).abs() < 0.05, "{}", share(&calm_run));
    assert!(share(&stormy_run) > 0.5, "{}", share(&stormy_run));
    // Interrupted pods restart, so ready capacity dips: violations appear only with them.
    assert_eq!(calm.scores[0].violation_minutes, 0.0);
}

#[test]
fn same_seed_same_result() {
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = simulate(dir.path(), 2.0);
    let (b, _) = simulate(dir.path(), 2.0);
    assert_eq!(report::json::render(&a), report::json::render(&b));
}
