//! Hot reload of a policy directory: swaps under load with zero failed evaluations, the new
//! answer visible within 1 s of the write, broken versions rejected while the last good one
//! serves, removal handled, every outcome counted; the artifact cache makes reloads cheap.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use wasmscaler::runtime::artifact_cache::Origin;
use wasmscaler::runtime::engine::EngineSettings;
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
    // A corrupt cache entry is replaced, not trusted, and the replacement serves.
    for path in entries(cache.path()) {
        std::fs::write(path, b"corrupt").unwrap();
    }
    let third = Runtime::new(Some(cache.path().to_path_buf())).unwrap();
    let again = third.load("hpa", hpa_wasm(), Limits::default()).unwrap();
    assert_eq!(again.origin, Origin::Compiled);
    assert_eq!(again.evaluate(&ctx(), None).unwrap().replicas, 6);
    let fourth = Runtime::new(Some(cache.path().to_path_buf())).unwrap();
    assert_eq!(
        fourth.load("hpa", hpa_wasm(), Limits::default()).unwrap().origin,
        Origin::Cache
    );
}

/// The cache's `.cwasm` entries.
fn entries(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    v.sort();
    v
}

#[test]
fn an_artifact_planted_at_a_pinned_policys_path_never_runs() {
    // The cache compiles hostile; its artifact is then moved to where hpa's would be.
    let cache = tempfile::tempdir().unwrap();
    let rt = Runtime::new(Some(cache.path().to_path_buf())).unwrap();
    rt.load("hostile", &hostile_wasm(), Limits::default()).unwrap();
    let [hostile_entry] = entries(cache.path()).try_into().unwrap();
    let name = hostile_entry.file_name().unwrap().to_string_lossy().into_owned();
    let (_, engine_part) = name.split_once('-').unwrap();
    let hpa_entry = cache
        .path()
        .join(format!("{}-{engine_part}", digest_of(hpa_wasm())));
    std::fs::rename(&hostile_entry, &hpa_entry).unwrap();
    // hpa pinned by digest: what runs must be hpa (6 replicas), not hostile (4).
    let reg = Registry::new(Runtime::new(Some(cache.path().to_path_buf())).unwrap(), None);
    let pinned = PolicyRef::parse(&format!("hpa@sha256:{}", digest_of(hpa_wasm()))).unwrap();
    let p = reg.resolve(&pinned).unwrap();
    assert_eq!(
        p.origin,
        Origin::Compiled,
        "the planted artifact was deserialized"
    );
    assert_eq!(p.evaluate(&ctx(), None).unwrap().replicas, 6);
}

#[test]
fn a_link_at_an_entrys_path_is_not_followed() {
    let cache = tempfile::tempdir().unwrap();
    let rt = Runtime::new(Some(cache.path().to_path_buf())).unwrap();
    rt.load("hpa", hpa_wasm(), Limits::default()).unwrap();
    let [entry] = entries(cache.path()).try_into().unwrap();
    let elsewhere = cache.path().join("elsewhere.bin");
    std::fs::rename(&entry, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &entry).unwrap();
    let second = Runtime::new(Some(cache.path().to_path_buf())).unwrap();
    let p = second.load("hpa", hpa_wasm(), Limits::default()).unwrap();
    assert_eq!(p.origin, Origin::Compiled);
    assert!(
        !std::fs::symlink_metadata(&entry)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link was replaced by a fresh entry"
    );
}

#[test]
fn the_cache_directory_is_created_private_and_refused_when_others_can_write_it() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("a").join("cache");
    let rt = Runtime::new(Some(dir.clone())).unwrap();
    assert!(rt.cache_refused().is_none());
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("artifact-key")), 0o600);

    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let rt = Runtime::new(Some(dir.clone())).unwrap();
    let refused = rt.cache_refused().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        refused.contains("group- or other-writable (mode 777)"),
        "{refused}"
    );
    assert_eq!(rt.cache_dir(), None);
    // Loads still work: they compile, and nothing is read from or written to the directory.
    for _ in 0..2 {
        let p = rt.load("hpa", hpa_wasm(), Limits::default()).unwrap();
        assert_eq!(p.origin, Origin::Compiled);
    }
    assert!(entries(&dir).is_empty());
}

#[test]
fn the_cache_is_pruned_to_its_bound_least_recently_used_first() {
    let cache = tempfile::tempdir().unwrap();
    let settings = |max| EngineSettings {
        artifact_cache_max_bytes: max,
        ..EngineSettings::default()
    };
    let rt = Runtime::with_settings(Some(cache.path().to_path_buf()), &settings(u64::MAX)).unwrap();
    rt.load("hpa", hpa_wasm(), Limits::default()).unwrap();
    let hpa_entry = entries(cache.path()).remove(0);
    let hpa_bytes = std::fs::metadata(&hpa_entry).unwrap().len();
    // Room for hpa and not much more: adding hostile must push the least recently used out.
    let bounded =
        Runtime::with_settings(Some(cache.path().to_path_buf()), &settings(hpa_bytes + 1024)).unwrap();
    thread::sleep(Duration::from_millis(20));
    assert_eq!(
        bounded.load("hpa", hpa_wasm(), Limits::default()).unwrap().origin,
        Origin::Cache
    );
    thread::sleep(Duration::from_millis(20));
    bounded
        .load("hostile", &hostile_wasm(), Limits::default())
        .unwrap();
    let left = entries(cache.path());
    let total: u64 = left.iter().map(|p| std::fs::metadata(p).unwrap().len()).sum();
    assert!(total <= hpa_bytes + 1024, "{left:?} hold {total} bytes");
    assert_eq!(left.len(), 1, "{left:?}");
    assert_ne!(left[0], hpa_entry, "the older entry goes first");
}

#[test]
fn limits_file_applies_to_builtins_loaded_before_it_was_read() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("limits.yaml"),
        "hpa: {timeoutMs: 20, memoryMiB: 16}\n",
    )
    .unwrap();
    let reg = Registry::new(runtime(), Some(dir.path().to_path_buf()));
    // The controller's order: built-ins at start-up, then the first scan.
    assert!(reg.load_builtins().is_empty());
    reg.scan();
    let p = reg.resolve(&PolicyRef::parse("hpa").unwrap()).unwrap();
    assert_eq!(p.limits.deadline, Duration::from_millis(20));
    assert_eq!(p.limits.memory_bytes, 16 << 20);
    assert_eq!(p.evaluate(&ctx(), None).unwrap().replicas, 6);
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
            .contains("the work of 20ms on the reference machine")
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
