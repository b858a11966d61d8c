//! Precompiled components on disk, keyed by the wasm's sha256 and the engine's
//! compatibility hash, so a restart or a second workload using the same policy loads in
//! well under a millisecond instead of compiling for tens of milliseconds.
//!
//! Deserializing an artifact runs its machine code, so nothing is deserialized that this
//! cache did not write for that very wasm:
//! - the directory is created 0700 and refused unless it is a directory (not a link)
//!   owned by the effective uid and not group- or other-writable; a refused directory
//!   means every load compiles, it is never read;
//! - each entry carries an HMAC-SHA256 tag over the engine key, the wasm digest and the
//!   artifact, keyed by a random 32-byte key in the directory (`artifact-key`, 0600, same
//!   ownership checks). A file planted at an entry's path without the key, or one written
//!   for another wasm, fails the check and is replaced by a fresh compile. (Whoever can read
//!   the key runs as this uid and could change the binary itself: out of scope.)
//! - files are opened without following symbolic links; writes go to a unique temporary
//!   name and are renamed into place, so readers see whole entries;
//! - the directory is pruned to a size bound, least recently used first (a hit refreshes
//!   the entry's modification time).

use std::fs::{File, OpenOptions};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use ring::hmac;
use wasmtime::Engine;
use wasmtime::component::Component;

/// How a component was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Compiled,
    Cache,
}

/// Why the cache directory is not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    #[error("artifact cache {dir}: {detail}")]
    Io { dir: PathBuf, detail: String },
    #[error("artifact cache {dir} is not trusted: {reason}")]
    Untrusted { dir: PathBuf, reason: String },
}

/// Default bound on the directory's `.cwasm` bytes.
pub const DEFAULT_MAX_BYTES: u64 = 512 << 20;

/// The entry header: magic, then the 32-byte tag, then the serialized artifact.
const MAGIC: &[u8; 8] = b"WSCART01";
const TAG_BYTES: usize = 32;
const KEY_FILE: &str = "artifact-key";
const KEY_BYTES: usize = 32;
/// A temporary file older than this is left over from a crashed write.
const STALE_TMP: Duration = Duration::from_secs(600);

#[derive(Debug)]
pub struct ArtifactCache {
    /// Set only for a directory that passed the checks.
    trusted: Option<Trusted>,
    refused: Option<CacheError>,
    engine_key: String,
    max_bytes: u64,
}

#[derive(Debug)]
struct Trusted {
    dir: PathBuf,
    key: hmac::Key,
}

impl ArtifactCache {
    /// `dir: None` disables the disk cache (every load compiles); so does a directory that
    /// fails the checks (see [`ArtifactCache::refused`]).
    pub fn new(engine: &Engine, dir: Option<PathBuf>, max_bytes: u64) -> Self {
        let mut h = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let (trusted, refused) = match dir.map(|d| open_dir(&d).map(|key| Trusted { dir: d, key })) {
            None => (None, None),
            Some(Ok(t)) => (Some(t), None),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "not using the artifact cache; every load compiles");
                (None, Some(e))
            }
        };
        Self {
            trusted,
            refused,
            engine_key: format!("{:016x}", h.finish()),
            max_bytes,
        }
    }

    /// The directory in use, if any.
    pub fn dir(&self) -> Option<&Path> {
        self.trusted.as_ref().map(|t| t.dir.as_path())
    }

    /// Why a configured directory is not used.
    pub fn refused(&self) -> Option<&CacheError> {
        self.refused.as_ref()
    }

    /// Load the component for `digest` from the cache, or compile `wasm` and store it.
    /// An entry that is missing, unreadable, a link, unauthenticated or incompatible is
    /// replaced, never trusted.
    pub fn get_or_compile(
        &self,
        engine: &Engine,
        digest: &str,
        wasm: &[u8],
    ) -> Result<(Component, Origin), wasmtime::Error> {
        let Some(t) = &self.trusted else {
            return Ok((Component::new(engine, wasm)?, Origin::Compiled));
        };
        let path = t.dir.join(format!("{digest}-{}.cwasm", self.engine_key));
        match self.read_authenticated(t, &path, digest) {
            Ok(Some((file, artifact))) => {
                // SAFETY: `artifact` carries a valid tag under this cache's key for this
                // engine and this wasm digest, so this cache wrote it from our own engine's
                // serialization of exactly this wasm; wasmtime also checks the header.
                match unsafe { Component::deserialize(engine, &artifact) } {
                    Ok(c) => {
                        // The modification time orders the LRU prune.
                        let _ = file.set_modified(SystemTime::now());
                        return Ok((c, Origin::Cache));
                    }
                    Err(e) => discard(&path, &format!("{e:#}")),
                }
            }
            Ok(None) => {}
            Err(reason) => discard(&path, &reason),
        }
        let component = Component::new(engine, wasm)?;
        if let Err(e) = self.store(t, &component, &path, digest) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write artifact cache; continuing without");
        }
        self.prune(&t.dir);
        Ok((component, Origin::Compiled))
    }

    fn tag(&self, key: &hmac::Key, digest: &str, artifact: &[u8]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(key);
        ctx.update(self.engine_key.as_bytes());
        ctx.update(b"\0");
        ctx.update(digest.as_bytes());
        ctx.update(b"\0");
        ctx.update(artifact);
        ctx.sign()
    }

    /// `Ok(None)`: no entry. `Err`: an entry that must not be used, and why.
    fn read_authenticated(
        &self,
        t: &Trusted,
        path: &Path,
        digest: &str,
    ) -> Result<Option<(File, Vec<u8>)>, String> {
        let mut file = match open_no_follow(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot open without following links: {e}")),
        };
        let meta = file.metadata().map_err(|e| e.to_string())?;
        if !meta.is_file() {
            return Err("not a regular file".into());
        }
        if meta.len() > self.max_bytes {
            return Err(format!("{} bytes, more than the cache holds", meta.len()));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
        file.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
        let Some(rest) = bytes.strip_prefix(MAGIC.as_slice()) else {
            return Err("no artifact header".into());
        };
        if rest.len() < TAG_BYTES {
            return Err("truncated".into());
        }
        let (tag, artifact) = rest.split_at(TAG_BYTES);
        if !constant_time_eq(self.tag(&t.key, digest, artifact).as_ref(), tag) {
            return Err("its tag does not match this cache's key for this wasm".into());
        }
        let artifact = artifact.to_vec();
        Ok(Some((file, artifact)))
    }

    /// Write to a unique temporary name and rename into place: a reader never sees a
    /// half-written entry, and concurrent writers never share a file.
    fn store(&self, t: &Trusted, component: &Component, path: &Path, digest: &str) -> std::io::Result<()> {
        let artifact = component.serialize().map_err(std::io::Error::other)?;
        let tmp = unique_tmp_name(path);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        let written = file
            .write_all(MAGIC)
            .and_then(|()| file.write_all(self.tag(&t.key, digest, &artifact).as_ref()))
            .and_then(|()| file.write_all(&artifact))
            .and_then(|()| std::fs::rename(&tmp, path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }

    /// Delete least recently used entries until the `.cwasm` files fit the bound, and
    /// temporary files left by crashed writes.
    fn prune(&self, dir: &Path) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let now = SystemTime::now();
        let mut artifacts = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            // `DirEntry::metadata` does not follow links.
            let Ok(meta) = entry.metadata() else { continue };
            let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".tmp") && now.duration_since(modified).is_ok_and(|age| age > STALE_TMP) {
                let _ = std::fs::remove_file(&path);
            } else if name.ends_with(".cwasm") && meta.is_file() {
                artifacts.push((modified, meta.len(), path));
            }
        }
        let mut total: u64 = artifacts.iter().map(|(_, len, _)| len).sum();
        artifacts.sort();
        for (_, len, path) in artifacts {
            if total <= self.max_bytes {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                tracing::info!(path = %path.display(), "pruned artifact cache entry (least recently used)");
                total -= len;
            }
        }
    }
}

fn discard(path: &Path, reason: &str) {
    tracing::warn!(path = %path.display(), reason, "discarding unusable cached artifact");
    let _ = std::fs::remove_file(path);
}

fn open_no_follow(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

fn unique_tmp_name(path: &Path) -> PathBuf {
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(
        ".{name}.{}.{}.{nanos}.tmp",
        std::process::id(),
        WRITES.fetch_add(1, Ordering::Relaxed)
    ))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Create the directory (0700) if missing, check that it can be trusted, and read or
/// create its key.
fn open_dir(dir: &Path) -> Result<hmac::Key, CacheError> {
    let io = |e: std::io::Error| CacheError::Io {
        dir: dir.to_path_buf(),
        detail: e.to_string(),
    };
    let untrusted = |reason: String| CacheError::Untrusted {
        dir: dir.to_path_buf(),
        reason,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io)?;
    let meta = std::fs::symlink_metadata(dir).map_err(io)?;
    if meta.file_type().is_symlink() {
        return Err(untrusted("it is a symbolic link".into()));
    }
    if !meta.is_dir() {
        return Err(untrusted("not a directory".into()));
    }
    check_owner_and_mode(&meta, 0o022, "group- or other-writable").map_err(untrusted)?;
    read_or_create_key(&dir.join(KEY_FILE)).map_err(untrusted)
}

fn check_owner_and_mode(meta: &std::fs::Metadata, forbidden: u32, what: &str) -> Result<(), String> {
    let euid = effective_uid();
    if meta.uid() != euid {
        return Err(format!(
            "owned by uid {}, not by this process's uid {euid}",
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o777;
    if mode & forbidden != 0 {
        return Err(format!("{what} (mode {mode:o})"));
    }
    Ok(())
}

fn read_or_create_key(path: &Path) -> Result<hmac::Key, String> {
    match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(mut file) => {
            let meta = file.metadata().map_err(|e| format!("{}: {e}", path.display()))?;
            check_owner_and_mode(&meta, 0o077, "the key is readable or writable by others")
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let mut key = Vec::with_capacity(KEY_BYTES);
            Read::by_ref(&mut file)
                .take(KEY_BYTES as u64 + 1)
                .read_to_end(&mut key)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            if key.len() != KEY_BYTES {
                return Err(format!(
                    "{}: {} bytes, not a {KEY_BYTES}-byte key",
                    path.display(),
                    key.len()
                ));
            }
            Ok(hmac::Key::new(hmac::HMAC_SHA256, &key))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_key(path),
        Err(e) => Err(format!(
            "{}: cannot open without following links: {e}",
            path.display()
        )),
    }
}

fn create_key(path: &Path) -> Result<hmac::Key, String> {
    let mut bytes = [0u8; KEY_BYTES];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| "no system randomness for the key".to_string())?;
    // Written under a unique name and renamed: a concurrent reader never sees half a key.
    // Two processes creating it at once each rename theirs; entries written under the
    // losing key later fail their check and are compiled again.
    let tmp = unique_tmp_name(path);
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .and_then(|mut f| f.write_all(&bytes))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("{}: cannot write the key: {e}", path.display()));
    }
    Ok(hmac::Key::new(hmac::HMAC_SHA256, &bytes))
}
