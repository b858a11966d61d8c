//! Every standard policy's scenario files (policies/*/scenarios/*.json), run through the
//! wasm sandbox and natively: both must meet the files' expectations, and the two must
//! agree decision for decision, byte for byte (replicas, jobs, placement, reason, recheck,
//! metrics and state).

use std::path::Path;
use std::sync::Arc;

use wasmscaler::runtime::{EvalError, HistorySource, builtins};
use wasmscaler_sdk::testing::{self, Scenario};
use wasmscaler_sdk::{PolicyError, Sample};
use wasmscaler_tests::{root, runtime};

/// Answers `history` with the scenario's fixtures as given (what the native harness does).
struct Fixtures(Vec<(String, Vec<Sample>)>);

impl HistorySource for Fixtures {
    fn history(&self, signal: &str, _w: u64, _s: u64) -> Result<Vec<Sample>, String> {
        self.0
            .iter()
            .find(|(n, _)| n == signal)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| format!("no history source for signal '{signal}'"))
    }
}

fn run_policy_scenarios<P: wasmscaler_sdk::Policy>(builtin: &str, dir: &str) -> usize {
    let dir = root().join("policies").join(dir).join("scenarios");
    let policy = runtime()
        .load(
            builtin,
            builtins::bytes(builtin).expect("built-in exists"),
            builtins::default_limits(builtin),
        )
        .unwrap_or_else(|e| panic!("{builtin}: {e}"));
    let mut n = 0;
    for path in scenario_files(&dir) {
        let s = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let in_sandbox = s
            .check(|ctx, history| {
                let h: Arc<dyn HistorySource> = Arc::new(Fixtures(history.to_vec()));
                policy.evaluate(ctx, Some(h)).map_err(|e| match e {
                    EvalError::Policy(p) => p,
                    other => PolicyError::Internal(format!("sandbox: {other}")),
                })
            })
            .unwrap_or_else(|e| panic!("{} through the sandbox: {e}", path.display()));
        let native = s
            .check(|ctx, history| {
                for (name, samples) in history {
                    testing::set_history(name, samples.clone());
                }
                testing::evaluate::<P>(ctx)
            })
            .unwrap_or_else(|e| panic!("{} natively: {e}", path.display()));
        for (i, (a, b)) in in_sandbox.iter().zip(&native).enumerate() {
            assert_eq!(
                a,
                b,
                "{}: tick {i}: the component and the native code disagree",
                path.display()
            );
        }
        n += 1;
    }
    n
}

fn scenario_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    v.sort();
    v
}

macro_rules! policy_test {
    ($test:ident, $native:ty, $builtin:literal, $dir:literal) => {
        #[test]
        fn $test() {
            let n = run_policy_scenarios::<$native>($builtin, $dir);
            assert!(n > 0, "no scenario files for {}", $builtin);
        }
    };
}

policy_test!(
    knative_concurrency,
    policy_knative_concurrency::KnativeConcurrency,
    "knative-concurrency",
    "knative-concurrency"
);
policy_test!(queue_job, policy_queue_job::QueueJob, "queue-job", "queue-job");
policy_test!(cron, policy_cron::CronPolicy, "cron", "cron");
policy_test!(stateful, policy_stateful::Stateful, "stateful", "stateful");
policy_test!(
    spot_fallback,
    policy_spot_fallback::SpotFallback,
    "spot-fallback",
    "spot-fallback"
);
policy_test!(
    ml_predictive,
    policy_ml_predictive::MlPredictive,
    "ml-predictive",
    "ml-predictive"
);

/// A policy that ends up without a signal it needed says why the host could not gather
/// it: a bad source spec or an unreachable server is named in the error the status and
/// Events carry, not only in a debug log (found on the real cluster, where an optional
/// `load` with a misplaced `history:` key read "no finite sample and no history").
#[test]
fn a_missing_optional_signal_names_the_gather_error_in_the_policy_error() {
    use std::collections::BTreeMap;
    use wasmscaler::core::evaluate::{Observation, Plan, evaluate};
    use wasmscaler::core::spec::WorkloadSpec;
    use wasmscaler::core::state::WorkloadState;
    use wasmscaler::runtime::registry::Registry;

    let annotations: BTreeMap<String, String> = [
        ("wasmscaler.io/policy", "ml-predictive"),
        (
            "wasmscaler.io/config",
            "signals: {load: {prometheus: 'sum(x)', history: {window: 3d}}}",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let spec = WorkloadSpec::from_annotations(&annotations, 10).expect("a valid spec");
    let registry = Registry::new(runtime(), None);
    let plan = Plan::resolve(&registry, &spec).expect("the built-in resolves");
    // What the gatherer reports for that source.
    let why = match wasmscaler::signals::source::SourceSpec::parse(&spec.signal_sources["load"]) {
        Err(e) => e,
        Ok(_) => panic!("a misplaced 'history' key is a bad source spec"),
    };
    let obs = Observation {
        now_ms: 1_800_000_000_000,
        workload: wasmscaler_sdk::Workload {
            replicas: 3,
            ..Default::default()
        },
        signals: Vec::new(),
        signal_errors: vec![("load".into(), why.clone())],
        history: None,
        record_history: false,
    };
    let out = evaluate(&plan, &spec, obs, &mut WorkloadState::default());
    let error = out.error.unwrap_or_default();
    assert!(
        error.contains("signal 'load' was not gathered") && error.contains(&why),
        "the error names the gather failure: {error}"
    );
    assert!(out.reason.contains(&why), "{}", out.reason);
    assert_eq!(out.desired, 3, "fail-static at the current replicas");
}
