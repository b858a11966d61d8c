//! The deadline, in a test binary of its own so that no other test competes for the two
//! cores while it is timed.

use std::time::{Duration, Instant};

use wasmscaler::runtime::{EvalError, Limits};
use wasmscaler_tests::{hostile, mode, runtime, sleepy_describe_wasm, with_healthy_alongside};

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
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hogs: Vec<_> = (0..4)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            })
        })
        .collect();
    let busy: Vec<_> = (0..5).map(|_| p.evaluate_metered(&mode("slow"), None)).collect();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for h in hogs {
        h.join().unwrap();
    }
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
