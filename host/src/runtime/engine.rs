//! The process-wide wasmtime `Engine`: component model, fuel metering (the deterministic
//! budget of every call), epoch interruption driven by a ticker thread (the wall-clock
//! backstop), pooling allocator. One per process; every policy shares it.

use std::sync::{Arc, Weak};
use std::thread;
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::RuntimeError;

/// How often the epoch advances. Deadlines are whole ticks, so a 100 ms deadline is
/// 10 ticks and trips between 100 and 110 ms after the call starts.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Engine-wide settings.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Instances the pooling allocator keeps slots for (concurrent evaluations).
    pub pool_instances: u32,
    /// Largest linear memory any policy may reach; per-policy caps are lower and are
    /// enforced per Store by the memory limiter.
    pub max_memory_bytes: usize,
    /// Bound on the artifact cache directory's entries, least recently used pruned first.
    pub artifact_cache_max_bytes: u64,
    /// Whether a call is also stopped by wall-clock time (`Limits::backstop`). The
    /// controller wants it (a host stalled by a guest is worse than a failed call); the
    /// simulator and `policy eval` turn it off so that only the fuel budget, which counts
    /// the same on every machine, decides whether a call finishes.
    pub wall_clock_backstop: bool,
    /// Fuel metering, i.e. the deterministic budget. Always on except to measure what
    /// metering costs (the runtime bench): without it a call has no budget, only the
    /// backstop.
    #[doc(hidden)]
    pub metered: bool,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            pool_instances: 256,
            max_memory_bytes: 512 << 20,
            artifact_cache_max_bytes: super::artifact_cache::DEFAULT_MAX_BYTES,
            wall_clock_backstop: true,
            metered: true,
        }
    }
}

/// Build the engine and, with the backstop on, start its epoch ticker. The ticker holds
/// only a weak reference, so it ends when the last `Arc<Engine>` is dropped.
pub fn build(settings: &EngineSettings) -> Result<Arc<Engine>, RuntimeError> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.consume_fuel(settings.metered);
    config.epoch_interruption(settings.wall_clock_backstop);
    config.cranelift_opt_level(wasmtime::OptLevel::Speed);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(settings.pool_instances);
    pool.total_core_instances(settings.pool_instances * 2);
    pool.total_memories(settings.pool_instances * 2);
    pool.total_tables(settings.pool_instances * 2);
    pool.max_memory_size(settings.max_memory_bytes);
    pool.max_component_instance_size(1 << 20);
    pool.max_core_instance_size(1 << 20);
    pool.max_memories_per_component(4);
    pool.max_tables_per_component(4);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    let engine = Arc::new(Engine::new(&config).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?);
    if settings.wall_clock_backstop {
        // Without the ticker the backstop never fires: no engine rather than one that
        // promises a backstop it does not have.
        start_epoch_ticker(Arc::downgrade(&engine))
            .map_err(|e| RuntimeError::Engine(format!("cannot start the epoch ticker thread: {e}")))?;
    }
    Ok(engine)
}

fn start_epoch_ticker(engine: Weak<Engine>) -> std::io::Result<()> {
    thread::Builder::new()
        .name("wasmscaler-epoch".into())
        .spawn(move || {
            while let Some(engine) = engine.upgrade() {
                engine.increment_epoch();
                drop(engine);
                thread::sleep(EPOCH_TICK);
            }
        })?;
    Ok(())
}
