//! Precompiled components on disk, keyed by the wasm's sha256 and the engine's
//! compatibility hash, so a restart or a second workload using the same policy loads in
//! well under a millisecond instead of compiling for tens of milliseconds.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

/// How a component was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Compiled,
    Cache,
}

#[derive(Debug, Clone)]
pub struct ArtifactCache {
    dir: Option<PathBuf>,
    engine_key: String,
}

impl ArtifactCache {
    /// `dir: None` disables the disk cache (every load compiles).
    pub fn new(engine: &Engine, dir: Option<PathBuf>) -> Self {
        let mut h = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        Self {
            dir,
            engine_key: format!("{:016x}", h.finish()),
        }
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    fn path(&self, digest: &str) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|d| d.join(format!("{digest}-{}.cwasm", self.engine_key)))
    }

    /// Load the component for `digest` from the cache, or compile `wasm` and store it.
    /// A corrupt or incompatible cache entry is replaced, never trusted.
    pub fn get_or_compile(
        &self,
        engine: &Engine,
        digest: &str,
        wasm: &[u8],
    ) -> Result<(Component, Origin), wasmtime::Error> {
        if let Some(path) = self.path(digest)
            && let Ok(bytes) = std::fs::read(&path)
        {
            // Read into memory rather than `deserialize_file`: a mapped file that someone
            // truncates or rewrites in place would take the process down with SIGBUS.
            // SAFETY: the file was written by `store` below from our own engine's
            // serialization, under a name that encodes the wasm digest and the engine's
            // compatibility hash; wasmtime checks the header and refuses a mismatch.
            match unsafe { Component::deserialize(engine, &bytes) } {
                Ok(c) => return Ok((c, Origin::Cache)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "discarding unusable cached artifact");
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        let component = Component::new(engine, wasm)?;
        if let Some(path) = self.path(digest)
            && let Err(e) = store(&component, &path)
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot write artifact cache; continuing without");
        }
        Ok((component, Origin::Compiled))
    }
}

/// Write atomically: a reader never sees a half-written artifact.
fn store(component: &Component, path: &Path) -> std::io::Result<()> {
    let bytes = component.serialize().map_err(std::io::Error::other)?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
