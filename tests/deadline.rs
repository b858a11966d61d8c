//! The deadline, in a test binary of its own so that no other test competes for the two
//! cores while it is timed.

use std::time::{Duration, Instant};

use wasmscaler::runtime::{EvalError, Limits};
use wasmscaler_tests::{hostile, mode, runtime, sleepy_describe_wasm, with_healthy_alongside};

/// `f()` while four threads spin on the two cores.
fn next_to_cpu_hogs<T>(f: impl FnOnce() -> T) -> T {
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let hogs: Vec<_> = (0..4)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            })
        })
        .collect();
    let out = f();
    stop.store(true, Ordering::Relaxed);
    for h in hogs {
        h.join().unwrap();
    }
    out
}

#[test]
fn infinite_loop_is_stopped_by_its_budget_the_same_way_each_time() {
    let limits = Limits {
        deadline: Duration::from_millis(100),
        ..Limits::default()
    };
    let (errs, elapsed) = with_healthy_alongside(move || {
        let p = hostile(limits);
        let started = Instant::now();
        let errs: Vec<EvalError> = (0..2)
            .map(|_| p.evaluate(&mode("loop"), None).unwrap_err())
            .collect();
        (errs, started.elapsed() / 2)
    });
    // Fuel, not the clock: the same error, with the same numbers, on every run.
    assert_eq!(
        errs[0],
        EvalError::Budget {
            fuel: limits.fuel(),
            deadline: limits.deadline
        }
    );
    assert_eq!(errs[0], errs[1]);
    assert!(errs[0].to_string().contains("deadline exceeded"), "{}", errs[0]);
    // The budget is a tight loop's 100 ms on the reference machine; well under the
    // wall-clock backstop here.
    assert!(elapsed < limits.backstop(), "stopped after {elapsed:?}");
}

#[test]
fn a_call_within_its_budget_succeeds_however_busy_the_machine_and_burns_the_same_fuel() {
    // ~615 million fuel (~40 ms idle): over the old 60 ms wall-clock deadline once four
    // busy threads share the two cores, within a 60 ms budget everywhere.
    let limits = Limits {
        deadline: Duration::from_millis(60),
        ..Limits::default()
    };
    let p = hostile(limits);
    let (idle, idle_fuel) = p.evaluate_metered(&mode("slow"), None);
    let busy: Vec<_> = next_to_cpu_hogs(|| (0..5).map(|_| p.evaluate_metered(&mode("slow"), None)).collect());
    assert_eq!(idle.as_ref().map(|d| d.reason.as_str()), Ok("slow 0"));
    assert!(
        idle_fuel > 500_000_000 && idle_fuel < limits.fuel(),
        "{idle_fuel}"
    );
    for (result, fuel) in busy {
        assert_eq!(result, idle);
        assert_eq!(fuel, idle_fuel);
    }
}

#[test]
fn a_host_call_that_stalls_is_ended_by_the_wall_clock_backstop() {
    // Fuel counts guest instructions only; a host import that blocks (here a history
    // source that takes 400 ms) is what the backstop is for.
    struct Stalls;
    impl wasmscaler::runtime::HistorySource for Stalls {
        fn history(
            &self,
            _signal: &str,
            _window_ms: u64,
            _step_ms: u64,
        ) -> Result<Vec<wasmscaler_sdk::Sample>, String> {
            std::thread::sleep(Duration::from_millis(400));
            Ok(Vec::new())
        }
    }
    let limits = Limits {
        deadline: Duration::from_millis(20),
        ..Limits::default()
    };
    let p = hostile(limits);
    let started = Instant::now();
    let err = p
        .evaluate(&mode("history"), Some(std::sync::Arc::new(Stalls)))
        .unwrap_err();
    assert!(matches!(err, EvalError::Deadline { .. }), "{err}");
    assert!(started.elapsed() >= limits.backstop(), "{:?}", started.elapsed());
}

/// A deadline well below the 10 s the guests below sleep for.
const SHORT: Limits = Limits {
    deadline: Duration::from_millis(100),
    memory_bytes: 64 << 20,
};

/// Scheduling slack on a shared 2-core machine.
const SLACK: Duration = Duration::from_millis(150);

#[test]
fn a_ten_second_sleep_ends_within_the_deadline() {
    let (result, elapsed) = with_healthy_alongside(|| {
        let p = hostile(SHORT);
        let started = Instant::now();
        let result = p.evaluate(&mode("sleep"), None);
        (result, started.elapsed())
    });
    assert!(
        elapsed < SHORT.deadline + SLACK,
        "a 10 s sleep held the host for {elapsed:?} ({result:?})"
    );
    // Virtual time: the sleep returns at once and the policy answers.
    assert_eq!(result.map(|d| d.reason), Ok("slept".to_string()));
}

#[test]
fn waiting_until_the_monotonic_clock_reads_ten_seconds_passes_them_virtually() {
    let p = hostile(SHORT);
    let started = Instant::now();
    let result = p.evaluate(&mode("sleep-until"), None);
    let elapsed = started.elapsed();
    assert!(elapsed < SHORT.deadline + SLACK, "took {elapsed:?} ({result:?})");
    // 10 ms naps until 10 s have passed: exactly 1000, on every run.
    assert_eq!(result.map(|d| d.reason), Ok("slept 1000 times".to_string()));
}

#[test]
fn a_describe_that_sleeps_does_not_hold_the_loader() {
    let started = Instant::now();
    let loaded = runtime().load("sleepy.wasm", &sleepy_describe_wasm(), SHORT);
    let elapsed = started.elapsed();
    // Compiling takes ~0.1 s; the guest's describe() asks for 10 s of sleep.
    assert!(elapsed < Duration::from_secs(3), "loading took {elapsed:?}");
    let p = loaded.unwrap();
    assert_eq!(p.info.name, "sleepy-describe");
    assert_eq!(p.evaluate(&mode("ok"), None).unwrap().reason, "awake");
}

/// `simulate` through its CLI entry point (`wasmscaler simulate FILE --output json`), on
/// an idle machine and next to four busy threads: the same bytes. The scenario's file
/// policy burns ~615 million fuel (~40 ms of a tight loop here) per call under a 60 ms
/// deadline: a wall-clock deadline would fail some calls once the hogs take the cores.
#[test]
fn simulate_prints_the_same_bytes_on_an_idle_and_a_saturated_machine() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    std::fs::write(policies.join("slow.wasm"), wasmscaler_tests::hostile_wasm()).unwrap();
    std::fs::write(policies.join("limits.yaml"), "slow.wasm: {timeoutMs: 60}\n").unwrap();
    // 12 minutes of a step load: 48 evaluations at 15 s.
    let mut csv = String::from("timestamp_s,value\n");
    for i in 0..12 {
        csv.push_str(&format!("{},{}\n", i * 60, if i < 6 { 100 } else { 300 }));
    }
    std::fs::write(dir.path().join("step.csv"), csv).unwrap();
    let scenario = dir.path().join("busy.yaml");
    std::fs::write(
        &scenario,
        "name: busy\ntrace: {file: step.csv, unit: rps, interpolate: step}\npolicyDir: policies\n\
         capacityPerReplica: 10\npodStartup: 60s\ninterval: 15s\nminReplicas: 1\nmaxReplicas: 50\n\
         policies:\n  - {name: slow, policy: 'file:slow.wasm', config: {mode: slow}}\n  - {policy: hpa}\n",
    )
    .unwrap();
    let simulate = |out: &std::path::Path| {
        wasmscaler::cli::simulate::run(wasmscaler::cli::simulate::SimulateArgs {
            scenario: Some(scenario.clone()),
            output: wasmscaler::cli::simulate::Format::Json,
            out: Some(out.to_path_buf()),
            chart: None,
            decision_log: None,
            seed: None,
            threads: 2,
            timings: false,
            quiet: true,
        })
        .map_err(|e| format!("{e:?}"))
        .unwrap();
        std::fs::read(out).unwrap()
    };
    let idle = simulate(&dir.path().join("idle.json"));
    let busy = next_to_cpu_hogs(|| simulate(&dir.path().join("busy.json")));
    let report: serde_json::Value = serde_json::from_slice(&idle).unwrap();
    let text = String::from_utf8_lossy(&idle);
    assert!(
        text.contains("\"slow\"") && !text.contains("\"failures\""),
        "every call of the slow policy fits its budget: {report}"
    );
    assert!(
        idle == busy,
        "simulate output differs between an idle and a saturated machine"
    );
}
