//! Hostile components: each misbehaviour comes back as a typed error with a clear
//! message, the host keeps serving, and a healthy policy evaluated concurrently still
//! succeeds.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use wasmscaler::runtime::engine::EngineSettings;
use wasmscaler::runtime::{EvalError, Limits, LoadError, Runtime};
use wasmscaler_tests::{
    RAW_POLICY_NAME, healthy, hostile, hostile_wasm, mode, raw_faults_in_start_wasm, raw_one_memory_wasm,
    raw_two_memories_wasm, runtime, wrong_world_wasm,
};

use wasmscaler_tests::with_healthy_alongside;

#[test]
fn one_gib_allocation_is_refused_by_the_memory_cap() {
    let err = with_healthy_alongside(|| {
        hostile(Limits::default())
            .evaluate(&mode("alloc"), None)
            .unwrap_err()
    });
    match &err {
        EvalError::MemoryLimit { requested, cap } => {
            assert_eq!(*cap, 64 << 20);
            assert!(*requested > *cap, "{err}");
        }
        other => panic!("expected MemoryLimit, got {other}"),
    }
    assert!(err.to_string().contains("memory limit exceeded"), "{err}");
}

#[test]
fn panic_is_a_trap_with_the_panic_message() {
    let err = with_healthy_alongside(|| {
        hostile(Limits::default())
            .evaluate(&mode("panic"), None)
            .unwrap_err()
    });
    assert!(matches!(err, EvalError::Trap(_)), "{err}");
    assert!(
        err.to_string().contains("hostile policy panics on purpose"),
        "{err}"
    );
}

#[test]
fn stack_overflow_is_a_trap() {
    // Frames kept in linear memory (what Rust does with arrays) run off the bottom of it.
    let err = with_healthy_alongside(|| {
        hostile(Limits::default())
            .evaluate(&mode("stack"), None)
            .unwrap_err()
    });
    assert!(matches!(err, EvalError::Trap(_)), "{err}");
    assert!(err.to_string().contains("usually a stack overflow"), "{err}");
    // Small frames exhaust the wasm call stack itself.
    let err = with_healthy_alongside(|| {
        hostile(Limits::default())
            .evaluate(&mode("deep"), None)
            .unwrap_err()
    });
    assert_eq!(err, EvalError::Trap("stack overflow".into()));
}

#[test]
fn replicas_above_max_from_an_infinity_cast_are_refused() {
    let err = with_healthy_alongside(|| {
        hostile(Limits::default())
            .evaluate(&mode("huge"), None)
            .unwrap_err()
    });
    assert!(matches!(err, EvalError::InvalidDecision(_)), "{err}");
    assert!(
        err.to_string()
            .contains("replicas 4294967295 is above max-replicas 10"),
        "{err}"
    );
}

#[test]
fn nan_metric_bad_placement_and_oversized_state_are_refused() {
    let p = hostile(Limits::default());
    let e = p.evaluate(&mode("nan-metric"), None).unwrap_err();
    assert!(e.to_string().contains("metric 'cost' is NaN"), "{e}");
    let e = p.evaluate(&mode("bad-placement"), None).unwrap_err();
    assert!(
        e.to_string()
            .contains("placement sums to 8 replicas but the decision says 3"),
        "{e}"
    );
    let e = p.evaluate(&mode("huge-state"), None).unwrap_err();
    assert!(e.to_string().contains("state is 102400 bytes"), "{e}");
}

#[test]
fn log_spam_is_bounded_and_the_call_succeeds() {
    let d = hostile(Limits::default())
        .evaluate(&mode("log-spam"), None)
        .unwrap();
    assert_eq!(d.reason, "logged");
}

#[test]
fn the_same_instance_keeps_serving_after_every_kind_of_failure() {
    let p = hostile(Limits {
        deadline: Duration::from_millis(50),
        ..Limits::default()
    });
    for m in ["loop", "alloc", "panic", "stack", "deep", "huge", "nan-metric"] {
        assert!(p.evaluate(&mode(m), None).is_err(), "{m}");
        let d = p
            .evaluate(&mode("ok"), None)
            .unwrap_or_else(|e| panic!("after {m}: {e}"));
        assert_eq!(d.replicas, 3, "after {m}");
    }
}

#[test]
fn a_component_of_another_contract_version_is_refused_by_name() {
    let err = runtime()
        .load("wrong.wasm", &wrong_world_wasm(), Limits::default())
        .unwrap_err();
    assert!(matches!(err, LoadError::WrongWorld { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("wasmscaler:policy@0.2.0"), "{msg}");
    assert!(msg.contains("wasmscaler:policy@0.1.0"), "{msg}");
}

#[test]
fn garbage_and_truncated_files_are_refused() {
    let err = runtime()
        .load("junk.wasm", b"definitely not wasm", Limits::default())
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("junk.wasm: not a WebAssembly component: no WebAssembly magic header"),
        "{err}"
    );
    let wasm = hostile_wasm();
    let err = runtime()
        .load("cut.wasm", &wasm[..wasm.len() / 2], Limits::default())
        .unwrap_err();
    assert!(matches!(err, LoadError::NotAComponent { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("cut.wasm: not a WebAssembly component"),
        "{err}"
    );
}

#[test]
fn reusable_instance_is_poisoned_after_a_trap() {
    let p = hostile(Limits::default());
    let mut inst = p.reusable().unwrap();
    assert_eq!(inst.evaluate(&mode("ok"), None).unwrap().replicas, 3);
    assert!(inst.evaluate(&mode("panic"), None).is_err());
    assert!(inst.is_poisoned());
    let e = inst.evaluate(&mode("ok"), None).unwrap_err();
    assert!(e.to_string().contains("discarded after an earlier trap"), "{e}");
    // A fresh instance from the same policy is fine.
    assert_eq!(
        p.reusable()
            .unwrap()
            .evaluate(&mode("ok"), None)
            .unwrap()
            .replicas,
        3
    );
}

#[test]
fn many_concurrent_hostile_calls_do_not_starve_healthy_ones() {
    let limits = Limits {
        deadline: Duration::from_millis(60),
        ..Limits::default()
    };
    let p = Arc::new(hostile(limits));
    let handles: Vec<_> = ["loop", "alloc", "panic", "stack"]
        .into_iter()
        .map(|m| {
            let p = p.clone();
            thread::spawn(move || p.evaluate(&mode(m), None).is_err())
        })
        .collect();
    let (healthy, ctx) = healthy();
    for _ in 0..50 {
        assert_eq!(healthy.evaluate(&ctx, None).unwrap().replicas, 6);
    }
    for h in handles {
        assert!(h.join().unwrap());
    }
}

#[test]
fn guest_clocks_and_randomness_are_deterministic() {
    // The guest reads the wall clock and hashes with a WASI-seeded RandomState.
    let p = hostile(Limits::default());
    let ctx = mode("entropy");
    let a = p.evaluate(&ctx, None).unwrap();
    let b = p.evaluate(&ctx, None).unwrap();
    let (clock, _hash) = a.reason.split_once(' ').unwrap();
    assert_eq!(
        clock,
        ctx.now_ms.to_string(),
        "the wall clock reads the evaluation's now"
    );
    assert_eq!(a.reason, b.reason, "same context, same randomness");
    // And a healthy policy's decision is byte-identical too.
    let (h, hctx) = healthy();
    assert_eq!(h.evaluate(&hctx, None).unwrap(), h.evaluate(&hctx, None).unwrap());
}

#[test]
fn the_memory_cap_is_the_sum_of_every_linear_memory_in_the_store() {
    // Two memories of 40 MiB each: under the default 64 MiB cap one by one, over it together.
    let wasm = raw_two_memories_wasm();
    let err = runtime()
        .load("two-memories.wasm", &wasm, Limits::default())
        .unwrap_err();
    let LoadError::Describe { source, .. } = &err else {
        panic!("expected the instantiation for describe() to fail, got {err}");
    };
    assert_eq!(
        **source,
        EvalError::MemoryLimit {
            requested: 80 << 20,
            cap: 64 << 20
        },
        "{err}"
    );
    // The same component under a cap that holds both memories loads and describes itself.
    let roomy = Limits {
        memory_bytes: 96 << 20,
        ..Limits::default()
    };
    let p = runtime().load("two-memories.wasm", &wasm, roomy).unwrap();
    assert_eq!(p.info.name, RAW_POLICY_NAME);
    // One memory of 40 MiB is fine under the default cap.
    assert!(
        runtime()
            .load("one-memory.wasm", &raw_one_memory_wasm(), Limits::default())
            .is_ok()
    );
}

#[test]
fn a_fault_while_instantiating_is_the_guests_not_a_setup_failure() {
    let err = runtime()
        .load(
            "faults-in-start.wasm",
            &raw_faults_in_start_wasm(),
            Limits::default(),
        )
        .unwrap_err();
    let LoadError::Describe { source, .. } = &err else {
        panic!("expected describe() to fail, got {err}");
    };
    assert!(matches!(**source, EvalError::Trap(_)), "{err}");
    assert!(
        source.to_string().contains("out of bounds memory access"),
        "{err}"
    );
}

#[test]
fn an_exhausted_instance_pool_is_a_setup_failure_not_the_guests_fault() {
    let rt = Runtime::with_settings(
        None,
        &EngineSettings {
            pool_instances: 2,
            ..EngineSettings::default()
        },
    )
    .unwrap();
    let p = rt
        .load("hostile.wasm", &hostile_wasm(), Limits::default())
        .unwrap();
    // Keep instances alive until the pool has no room for another.
    let mut held = Vec::new();
    let err = loop {
        match p.reusable() {
            Ok(instance) if held.len() < 8 => held.push(instance),
            Ok(_) => panic!("a pool of 2 instances held 8"),
            Err(e) => break e,
        }
    };
    assert!(!held.is_empty());
    assert!(matches!(err, EvalError::Setup(_)), "{err}");
    assert!(err.to_string().contains("limit"), "{err}");
}

#[test]
fn a_megabyte_of_stderr_is_dropped_and_the_decision_still_returned() {
    let d = with_healthy_alongside(|| {
        hostile(Limits::default())
            .evaluate(&mode("stderr-flood"), None)
            .map_err(|e| e.to_string())
    })
    .unwrap();
    assert_eq!(d.reason, "printed");
}

#[test]
fn a_reused_instance_captures_stderr_afresh_for_each_call() {
    // The flood fills the capture; the panic of the next call must still be reported with
    // its own message, not with the previous call's output.
    let p = hostile(Limits::default());
    let mut inst = p.reusable().unwrap();
    assert_eq!(
        inst.evaluate(&mode("stderr-flood"), None).unwrap().reason,
        "printed"
    );
    let err = inst.evaluate(&mode("panic"), None).unwrap_err();
    assert!(
        err.to_string().contains("hostile policy panics on purpose"),
        "{err}"
    );
}
