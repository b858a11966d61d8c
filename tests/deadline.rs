//! The deadline, in a test binary of its own so that no other test competes for the two
//! cores while it is timed.

use std::time::{Duration, Instant};

use wasmscaler::runtime::{EvalError, Limits};
use wasmscaler_tests::{hostile, mode, runtime, sleepy_describe_wasm, with_healthy_alongside};

#[test]
fn infinite_loop_is_stopped_within_twice_its_deadline() {
    let limits = Limits {
        deadline: Duration::from_millis(100),
        ..Limits::default()
    };
    let (err, elapsed) = with_healthy_alongside(move || {
        let p = hostile(limits);
        let started = Instant::now();
        let err = p.evaluate(&mode("loop"), None).unwrap_err();
        (err, started.elapsed())
    });
    assert!(matches!(err, EvalError::Deadline { .. }), "{err}");
    assert!(err.to_string().contains("deadline exceeded"), "{err}");
    assert!(elapsed >= Duration::from_millis(100), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(200), "stopped after {elapsed:?}");
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
