//! Hot reload of a policy directory: swaps under load with zero failed evaluations, the new
//! answer visible within 1 s of the write, broken versions rejected while the last good one
//! serves, removal handled, every outcome counted; the artifact cache makes reloads cheap.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use wasmscaler::runtime::artifact_cache::Origin;
use wasmscaler::runtime::registry::{ReloadKind, ResolveError};
use wasmscaler::runtime::{Limits, PolicyRef, Registry, Runtime, builtins, digest_of};
use wasmscaler_sdk::testing::ContextBuilder;
use wasmscaler_tests::{hostile_wasm, runtime};

fn hpa_wasm() -> &'static [u8] {
    builtins::bytes("hpa").expect("hpa built-in")
}

/// hostile answers `replicas` (4) for an object config; hpa answers 6 for 600 rps.
fn ctx() -> wasmscaler_sdk::Context {
    ContextBuilder::new()
        .replicas(4, 4)
        .bounds(1, 20)
        .latest("load", 600.0)
        .build()
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn swap_under_load_has_zero_failures_and_is_seen_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.wasm");
    std::fs::write(&file, hostile_wasm()).unwrap();
    let reg = Registry::new(runtime(), Some(dir.path().to_path_buf()));
    reg.scan();
    let _watch = reg.watch().unwrap();
    let r = PolicyRef::parse("file:p.wasm").unwrap();
    assert_eq!(
        reg.resolve(&r).unwrap().evaluate(&ctx(), None).unwrap().replicas,
        4
    );

    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicU64::new(0));
    let evaluations = Arc::new(AtomicU64::new(0));
    let seen_new_at: Arc<std::sync::Mutex<Option<Instant>>> = Arc::default();
    let worker = {
        let (reg, r, stop, failures, evaluations, seen) = (
            reg.clone(),
            r.clone(),
            stop.clone(),
            failures.clone(),
            evaluations.clone(),
            seen_new_at.clone(),
        );
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match reg
                    .resolve(&r)
                    .map_err(|e| e.to_string())
                    .and_then(|p| p.evaluate(&ctx(), None).map_err(|e| e.to_string()))
                {
                    Ok(d) if d.replicas == 6 => {
                        seen.lock().unwrap().get_or_insert_with(Instant::now);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        eprintln!("failed evaluation: {e}");
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
                evaluations.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    thread::sleep(Duration::from_millis(200));
    // A plain (non-atomic) write, as `cp` does.
    let written_at = Instant::now();
    std::fs::write(&file, hpa_wasm()).unwrap();
    wait_for("the new version's answer", Duration::from_secs(5), || {
        seen_new_at.lock().unwrap().is_some()
    });
    thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    worker.join().unwrap();

    let latency = seen_new_at.lock().unwrap().unwrap() - written_at;
    eprintln!(
        "reload latency {latency:?}, {} evaluations",
        evaluations.load(Ordering::Relaxed)
    );
    assert_eq!(failures.load(Ordering::Relaxed), 0);
    assert!(
        latency < Duration::from_secs(1),
        "new version seen after {latency:?}"
    );
    assert!(reg.counters().get(ReloadKind::Reloaded) >= 1);
}

#[test]
fn broken_version_is_rejected_and_the_last_good_keeps_serving_then_removal() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.wasm");
    std::fs::write(&file, hpa_wasm()).unwrap();
    let reg = Registry::new(runtime(), Some(dir.path().to_path_buf()));
    let events = reg.scan();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, ReloadKind::Loaded);
    let r = PolicyRef::parse("file:p.wasm").unwrap();

    std::fs::write(&file, b"\0asm garbage").unwrap();
    let events = reg.scan();
    assert_eq!(events[0].kind, ReloadKind::Rejected);
    assert!(
        events[0].detail.contains("the last good version keeps serving"),
        "{}",
        events[0].detail
    );
    assert_eq!(
        reg.resolve(&r).unwrap().evaluate(&ctx(), None).unwrap().replicas,
        6
    );
    assert!(reg.scan().is_empty(), "an unchanged broken file is not retried");

    std::fs::write(dir.path().join("other.wasm"), b"nope").unwrap();
    std::fs::remove_file(&file).unwrap();
    let events = reg.scan();
    assert!(
        events
            .iter()
            .any(|e| e.kind == ReloadKind::Removed && e.name == "p.wasm")
    );
    assert!(
        events
            .iter()
            .any(|e| e.kind == ReloadKind::Rejected && e.name == "other.wasm")
    );
    assert!(matches!(reg.resolve(&r), Err(ResolveError::UnknownFile(..))));
    assert_eq!(reg.counters().get(ReloadKind::Loaded), 1);
    assert_eq!(reg.counters().get(ReloadKind::Rejected), 2);
    assert_eq!(reg.counters().get(ReloadKind::Removed), 1);
}

#[test]
fn digest_pins_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.wasm"), hpa_wasm()).unwrap();
    let reg = Registry::new(runtime(), Some(dir.path().to_path_buf()));
    reg.scan();
    let good = PolicyRef::parse(&format!("file:p.wasm@sha256:{}", digest_of(hpa_wasm()))).unwrap();
    assert!(reg.resolve(&good).is_ok());
    let bad = PolicyRef::parse(&format!("file:p.wasm@sha256:{}", "0".repeat(64))).unwrap();
    assert!(
        reg.resolve(&bad)
            .unwrap_err()
            .to_string()
            .contains("is pinned to sha256:0000")
    );
    let builtin = PolicyRef::parse(&format!("hpa@sha256:{}", digest_of(hpa_wasm()))).unwrap();
    assert!(reg.resolve(&builtin).is_ok());
}

#[test]
fn artifact_cache_serves_the_second_load() {
    let cache = tempfile::tempdir().unwrap();
    let first = Runtime::new(Some(cache.path().to_path_buf())).unwrap();
    let cold = first.load("hpa", hpa_wasm(), Limits::default()).unwrap();
    assert_eq!(cold.origin, Origin::Compiled);
    let second = Runtime::new(Some(cache.path().to_path_buf())).unwrap();
    let warm = second.load("hpa", hpa_wasm(), Limits::default()).unwrap();
    assert_eq!(warm.origin, Origin::Cache);
    assert_eq!(warm.evaluate(&ctx(), None).unwrap().replicas, 6);
    // A corrupt cache entry is replaced, not trusted.
    for e in std::fs::read_dir(cache.path()).unwrap() {
        std::fs::write(e.unwrap().path(), b"corrupt").unwrap();
    }
    let third = Runtime::new(Some(cache.path().to_path_buf())).unwrap();
    let again = third.load("hpa", hpa_wasm(), Limits::default()).unwrap();
    assert_eq!(again.origin, Origin::Compiled);
    assert_eq!(again.evaluate(&ctx(), None).unwrap().replicas, 6);
}

#[test]
fn limits_file_sets_a_policys_deadline() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("slow.wasm"), hostile_wasm()).unwrap();
    let reg = Registry::new(runtime(), Some(dir.path().to_path_buf()));
    reg.scan();
    let r = PolicyRef::parse("file:slow.wasm").unwrap();
    assert_eq!(reg.resolve(&r).unwrap().limits, Limits::default());
    std::fs::write(
        dir.path().join("limits.yaml"),
        "slow.wasm: {timeoutMs: 20, memoryMiB: 16}\n",
    )
    .unwrap();
    reg.scan();
    let p = reg.resolve(&r).unwrap();
    assert_eq!(p.limits.deadline, Duration::from_millis(20));
    assert_eq!(p.limits.memory_bytes, 16 << 20);
    let ctx = ContextBuilder::new().config("\"loop\"").build();
    assert!(
        p.evaluate(&ctx, None)
            .unwrap_err()
            .to_string()
            .contains("deadline 20ms")
    );
    std::fs::write(dir.path().join("limits.yaml"), "slow.wasm: {timeout: 5}\n").unwrap();
    let events = reg.scan();
    assert!(
        events
            .iter()
            .any(|e| e.kind == ReloadKind::Rejected && e.detail.contains("unknown field `timeout`")),
        "{events:?}"
    );
    assert_eq!(
        reg.resolve(&r).unwrap().limits.deadline,
        Duration::from_millis(20),
        "the limits in force stay"
    );
}

#[test]
fn every_builtin_loads() {
    let reg = Registry::new(runtime(), None);
    assert!(reg.load_builtins().is_empty());
    assert_eq!(
        reg.counters().get(ReloadKind::Loaded),
        builtins::names().len() as u64
    );
    for name in builtins::names() {
        let p = reg.resolve(&PolicyRef::parse(name).unwrap()).unwrap();
        assert!(!p.info.name.is_empty(), "{name}");
    }
}
