//! Shared helpers for the integration tests.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use wasmscaler::runtime::{Limits, LoadedPolicy, Runtime};
use wasmscaler_sdk::Context;
use wasmscaler_sdk::testing::ContextBuilder;

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("WASMSCALER_ROOT"))
}

pub fn hostile_wasm() -> Vec<u8> {
    std::fs::read(env!("WASM_HOSTILE")).expect("hostile.wasm was built by build.rs")
}

pub fn wrong_world_wasm() -> Vec<u8> {
    std::fs::read(env!("WASM_WRONG_WORLD")).expect("wrong_world.wasm was built by build.rs")
}

pub fn sleepy_describe_wasm() -> Vec<u8> {
    std::fs::read(env!("WASM_SLEEPY_DESCRIBE")).expect("sleepy_describe.wasm was built by build.rs")
}

/// Components built from a hand-written core module (tests/components/raw_policy.rs):
/// two 40 MiB memories, one 40 MiB memory, a start function that loads out of bounds.
pub fn raw_two_memories_wasm() -> Vec<u8> {
    std::fs::read(env!("WASM_RAW_TWO_MEMORIES")).expect("built by build.rs")
}
pub fn raw_one_memory_wasm() -> Vec<u8> {
    std::fs::read(env!("WASM_RAW_ONE_MEMORY")).expect("built by build.rs")
}
pub fn raw_faults_in_start_wasm() -> Vec<u8> {
    std::fs::read(env!("WASM_RAW_FAULTS_IN_START")).expect("built by build.rs")
}
/// `describe()`'s name in the raw components.
pub const RAW_POLICY_NAME: &str = "raw-policy";

/// One runtime per test binary (one engine per process, as in production).
pub fn runtime() -> Arc<Runtime> {
    static RT: OnceLock<Arc<Runtime>> = OnceLock::new();
    RT.get_or_init(|| Runtime::new(None).expect("engine")).clone()
}

pub fn hostile(limits: Limits) -> LoadedPolicy {
    runtime()
        .load("hostile.wasm", &hostile_wasm(), limits)
        .expect("hostile loads")
}

/// A context whose config selects the hostile mode.
pub fn mode(mode: &str) -> Context {
    ContextBuilder::new()
        .replicas(3, 3)
        .bounds(1, 10)
        .config(format!("\"{mode}\""))
        .build()
}

/// The `hpa` built-in (the hpa-target example) and a context it scales to 6 replicas.
pub fn healthy() -> (LoadedPolicy, Context) {
    let bytes = wasmscaler::runtime::builtins::bytes("hpa").expect("hpa built-in");
    let p = runtime()
        .load("hpa", bytes, Limits::default())
        .expect("hpa loads");
    let ctx = ContextBuilder::new()
        .replicas(4, 4)
        .bounds(1, 20)
        .latest("load", 600.0)
        .build();
    (p, ctx)
}

/// Run `f` on a thread while the healthy policy is evaluated in a loop on this one; every
/// healthy evaluation must succeed with the right answer. The loop yields between calls
/// so that it does not starve the epoch ticker on a small machine.
pub fn with_healthy_alongside<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (policy, ctx) = healthy();
    let hostile = std::thread::spawn(f);
    let mut ok = 0;
    while !hostile.is_finished() {
        let d = policy.evaluate(&ctx, None).expect("healthy policy keeps working");
        assert_eq!(d.replicas, 6);
        ok += 1;
        std::thread::sleep(std::time::Duration::from_micros(500));
    }
    assert!(ok > 0, "the healthy policy ran while the hostile one did");
    hostile
        .join()
        .expect("the hostile evaluation never panics the host")
}
