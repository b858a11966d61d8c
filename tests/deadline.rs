//! The deadline, in a test binary of its own so that no other test competes for the two
//! cores while it is timed.

use std::time::{Duration, Instant};

use wasmscaler::runtime::{EvalError, Limits};
use wasmscaler_tests::{hostile, mode, with_healthy_alongside};

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
