//! The sandboxed policy runtime (wasmtime). Knows nothing of Kubernetes or the simulator:
//! it loads components, checks them against the contract, and evaluates them under limits.
//!
//! - [`engine`]: the one process-wide engine and its epoch ticker.
//! - [`artifact_cache`]: precompiled components on disk, keyed by digest, authenticated.
//! - [`loaded_policy`]: a checked component with its `InstancePre`; evaluate / validate.
//! - [`sandbox`]: per-call Store, limits, deterministic WASI, error mapping, output checks.
//! - [`stderr_capture`]: the guest's stderr, bounded and never full.
//! - [`virtual_clock`]: the guest's monotonic clock; sleeping returns at once.
//! - [`registry`]: names -> loaded policies; built-ins; hot reload of a policy directory.
//! - [`history`]: what answers the `history` import.

pub mod artifact_cache;
pub mod bindings;
pub mod builtins;
pub mod engine;
mod errors;
pub mod history;
pub mod loaded_policy;
pub mod policy_ref;
pub mod registry;
pub mod sandbox;
pub mod stderr_capture;
pub mod virtual_clock;

use std::path::PathBuf;
use std::sync::Arc;

pub use errors::{EvalError, LoadError, RuntimeError};
pub use history::{HistorySource, PrefetchedHistory};
pub use loaded_policy::{LoadedPolicy, ReusableInstance, digest_of};
pub use policy_ref::PolicyRef;
pub use registry::Registry;
pub use sandbox::Limits;

/// One per process: the engine, the linker with the host imports, the artifact cache.
pub struct Runtime {
    engine: Arc<wasmtime::Engine>,
    linker: wasmtime::component::Linker<sandbox::HostState>,
    cache: artifact_cache::ArtifactCache,
}

impl Runtime {
    /// `cache_dir: None` compiles every load (no disk cache).
    pub fn new(cache_dir: Option<PathBuf>) -> Result<Arc<Self>, RuntimeError> {
        Self::with_settings(cache_dir, &engine::EngineSettings::default())
    }

    /// For offline tools (simulator, `policy eval`): no wall-clock backstop, so whether a
    /// call finishes is decided by its fuel alone and the output is the same on an idle
    /// and on a saturated machine. Every call is still bounded: fuel ends guest code, and
    /// the guest has nothing to block on (no I/O, a virtual clock).
    pub fn deterministic(cache_dir: Option<PathBuf>) -> Result<Arc<Self>, RuntimeError> {
        let settings = engine::EngineSettings {
            wall_clock_backstop: false,
            ..engine::EngineSettings::default()
        };
        Self::with_settings(cache_dir, &settings)
    }

    pub fn with_settings(
        cache_dir: Option<PathBuf>,
        settings: &engine::EngineSettings,
    ) -> Result<Arc<Self>, RuntimeError> {
        let engine = engine::build(settings)?;
        let linker = sandbox::linker(&engine)?;
        let cache = artifact_cache::ArtifactCache::new(&engine, cache_dir, settings.artifact_cache_max_bytes);
        Ok(Arc::new(Self {
            engine,
            linker,
            cache,
        }))
    }

    /// Compile (or fetch from the cache), check against the world, describe.
    pub fn load(&self, name: &str, wasm: &[u8], limits: Limits) -> Result<LoadedPolicy, LoadError> {
        LoadedPolicy::load(&self.engine, &self.linker, &self.cache, name, wasm, limits)
    }

    /// Load a file from disk; errors name the file.
    pub fn load_file(&self, path: &std::path::Path, limits: Limits) -> Result<LoadedPolicy, LoadError> {
        let wasm = std::fs::read(path).map_err(|e| LoadError::Io {
            source_name: path.display().to_string(),
            detail: e.to_string(),
        })?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.load(&name, &wasm, limits)
            .map_err(|e| rename_source(e, &path.display().to_string()))
    }

    pub fn engine(&self) -> &Arc<wasmtime::Engine> {
        &self.engine
    }

    /// The artifact cache directory in use (none when disabled or refused).
    pub fn cache_dir(&self) -> Option<&std::path::Path> {
        self.cache.dir()
    }

    /// Why the configured artifact cache directory is not used, if it is not.
    pub fn cache_refused(&self) -> Option<&artifact_cache::CacheError> {
        self.cache.refused()
    }
}

/// Report load errors under the full path rather than the bare file name.
fn rename_source(e: LoadError, full: &str) -> LoadError {
    let s = full.to_string();
    match e {
        LoadError::NotAComponent { detail, .. } => LoadError::NotAComponent {
            source_name: s,
            detail,
        },
        LoadError::WrongWorld { detail, .. } => LoadError::WrongWorld {
            source_name: s,
            detail,
        },
        LoadError::Describe { source, .. } => LoadError::Describe {
            source_name: s,
            source,
        },
        LoadError::Io { detail, .. } => LoadError::Io {
            source_name: s,
            detail,
        },
        LoadError::DigestMismatch { expected, actual, .. } => LoadError::DigestMismatch {
            source_name: s,
            expected,
            actual,
        },
    }
}

/// Default location of the artifact cache: `$XDG_CACHE_HOME/wasmscaler` or
/// `~/.cache/wasmscaler`, or none when neither is known.
pub fn default_cache_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|d| d.join("wasmscaler"))
}
