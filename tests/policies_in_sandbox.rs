//! Every standard policy's scenario files (policies/*/scenarios/*.json), run through the
//! wasm sandbox exactly as the policy crates run them natively: same expectations, so the
//! component answers what the native code answers.

use std::path::Path;
use std::sync::Arc;

use wasmscaler::runtime::{EvalError, HistorySource, builtins};
use wasmscaler_sdk::testing::Scenario;
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

fn run_policy_scenarios(builtin: &str, dir: &str) -> usize {
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
        s.check(|ctx, history| {
            let h: Arc<dyn HistorySource> = Arc::new(Fixtures(history.to_vec()));
            policy.evaluate(ctx, Some(h)).map_err(|e| match e {
                EvalError::Policy(p) => p,
                other => PolicyError::Internal(format!("sandbox: {other}")),
            })
        })
        .unwrap_or_else(|e| panic!("{} through the sandbox: {e}", path.display()));
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
    ($test:ident, $builtin:literal, $dir:literal) => {
        #[test]
        fn $test() {
            let n = run_policy_scenarios($builtin, $dir);
            assert!(n > 0, "no scenario files for {}", $builtin);
        }
    };
}

policy_test!(knative_concurrency, "knative-concurrency", "knative-concurrency");
policy_test!(queue_job, "queue-job", "queue-job");
policy_test!(cron, "cron", "cron");
policy_test!(stateful, "stateful", "stateful");
policy_test!(spot_fallback, "spot-fallback", "spot-fallback");
policy_test!(ml_predictive, "ml-predictive", "ml-predictive");
