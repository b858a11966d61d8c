//! Policy names -> loaded policies. Built-ins are embedded in the binary and loaded on
//! first use; `file:` policies come from a policy directory that is watched: a changed or
//! added `.wasm` is compiled off the async runtime and swapped in atomically, a broken new
//! version is rejected while the last good one keeps serving, a removed file stops being
//! served. Every outcome is logged and counted.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;

use super::policy_ref::{PolicyRef, RefSource};
use super::{Limits, LoadError, LoadedPolicy, Runtime, builtins, digest_of};

/// What happened to a policy in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReloadKind {
    Loaded,
    Reloaded,
    Rejected,
    Removed,
}

impl ReloadKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReloadKind::Loaded => "loaded",
            ReloadKind::Reloaded => "reloaded",
            ReloadKind::Rejected => "rejected",
            ReloadKind::Removed => "removed",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ReloadEvent {
    pub kind: ReloadKind,
    pub name: String,
    pub digest: Option<String>,
    pub detail: String,
    pub at: SystemTime,
}

/// Why a reference could not be resolved.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ResolveError {
    #[error("unknown built-in policy '{0}' (built-ins: {1})")]
    UnknownBuiltin(String, String),
    #[error("no policy file '{0}' in the policy directory{1}")]
    UnknownFile(String, String),
    #[error("policy '{name}' is pinned to sha256:{pinned} but serves sha256:{serving}")]
    PinMismatch {
        name: String,
        pinned: String,
        serving: String,
    },
    #[error("built-in policy '{0}' failed to load: {1}")]
    BrokenBuiltin(String, String),
}

/// Counters of registry outcomes, read by the metrics endpoint.
#[derive(Debug, Default)]
pub struct ReloadCounters {
    pub loaded: AtomicU64,
    pub reloaded: AtomicU64,
    pub rejected: AtomicU64,
    pub removed: AtomicU64,
}

impl ReloadCounters {
    pub fn get(&self, kind: ReloadKind) -> u64 {
        self.counter(kind).load(Ordering::Relaxed)
    }
    fn counter(&self, kind: ReloadKind) -> &AtomicU64 {
        match kind {
            ReloadKind::Loaded => &self.loaded,
            ReloadKind::Reloaded => &self.reloaded,
            ReloadKind::Rejected => &self.rejected,
            ReloadKind::Removed => &self.removed,
        }
    }
}

type PolicyMap = HashMap<String, Arc<LoadedPolicy>>;

pub struct Registry {
    runtime: Arc<Runtime>,
    dir: Option<PathBuf>,
    files: ArcSwap<PolicyMap>,
    /// Digests of files that failed to load, so an unchanged broken file is not retried
    /// (and re-reported) on every scan.
    rejected: Mutex<HashMap<String, String>>,
    builtins: Mutex<PolicyMap>,
    limits: Mutex<HashMap<String, Limits>>,
    counters: ReloadCounters,
    events: Mutex<VecDeque<ReloadEvent>>,
    scan_lock: Mutex<()>,
}

const EVENT_HISTORY: usize = 256;

/// Optional per-policy limits in the policy directory.
pub const LIMITS_FILE: &str = "limits.yaml";

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LimitsEntry {
    timeout_ms: Option<u64>,
    #[serde(rename = "memoryMiB")]
    memory_mib: Option<u32>,
}

impl Registry {
    /// A registry serving the built-ins and, if given, the `.wasm` files of `dir`.
    pub fn new(runtime: Arc<Runtime>, dir: Option<PathBuf>) -> Arc<Self> {
        Arc::new(Self {
            runtime,
            dir,
            files: ArcSwap::from_pointee(HashMap::new()),
            rejected: Mutex::new(HashMap::new()),
            builtins: Mutex::new(HashMap::new()),
            limits: Mutex::new(HashMap::new()),
            counters: ReloadCounters::default(),
            events: Mutex::new(VecDeque::new()),
            scan_lock: Mutex::new(()),
        })
    }

    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    pub fn counters(&self) -> &ReloadCounters {
        &self.counters
    }

    /// The most recent registry events, oldest first.
    pub fn recent_events(&self) -> Vec<ReloadEvent> {
        lock(&self.events).iter().cloned().collect()
    }

    /// Override the sandbox limits of the policy loaded under `name` (a built-in name or
    /// a file name); applies from the next load.
    pub fn set_limits(&self, name: &str, limits: Limits) {
        lock(&self.limits).insert(name.to_string(), limits);
    }

    fn limits_for(&self, name: &str) -> Limits {
        lock(&self.limits)
            .get(name)
            .copied()
            .unwrap_or_else(|| builtins::default_limits(name))
    }

    /// Resolve a reference to the policy serving it now.
    pub fn resolve(&self, r: &PolicyRef) -> Result<Arc<LoadedPolicy>, ResolveError> {
        let policy = match &r.source {
            RefSource::Builtin(name) => self.builtin(name)?,
            RefSource::File(name) => self.files.load().get(name).cloned().ok_or_else(|| {
                let hint = match &self.dir {
                    Some(d) => format!(" ({})", d.display()),
                    None => " (no policy directory configured)".to_string(),
                };
                ResolveError::UnknownFile(name.clone(), hint)
            })?,
        };
        if let Some(pin) = &r.pin
            && *pin != policy.digest
        {
            return Err(ResolveError::PinMismatch {
                name: r.key().to_string(),
                pinned: pin.clone(),
                serving: policy.digest.clone(),
            });
        }
        Ok(policy)
    }

    /// Compile every built-in now (CPU-bound: call from a blocking thread at start-up, so
    /// no async task ever compiles on first use). Returns the names that failed.
    pub fn load_builtins(&self) -> Vec<(String, ResolveError)> {
        builtins::names()
            .into_iter()
            .filter_map(|name| self.builtin(name).err().map(|e| (name.to_string(), e)))
            .collect()
    }

    fn builtin(&self, name: &str) -> Result<Arc<LoadedPolicy>, ResolveError> {
        let mut loaded = lock(&self.builtins);
        if let Some(p) = loaded.get(name) {
            return Ok(p.clone());
        }
        let wasm = builtins::bytes(name)
            .ok_or_else(|| ResolveError::UnknownBuiltin(name.to_string(), builtins::names().join(", ")))?;
        match self.runtime.load(name, wasm, self.limits_for(name)) {
            Ok(p) => {
                let p = Arc::new(p);
                self.record(
                    ReloadKind::Loaded,
                    name,
                    Some(&p.digest),
                    format!("built-in, {:?}", p.load_time),
                );
                loaded.insert(name.to_string(), p.clone());
                Ok(p)
            }
            Err(e) => {
                self.record(ReloadKind::Rejected, name, None, e.to_string());
                Err(ResolveError::BrokenBuiltin(name.to_string(), e.to_string()))
            }
        }
    }

    /// Names of the `file:` policies being served, sorted.
    pub fn file_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.files.load().keys().cloned().collect();
        v.sort();
        v
    }

    /// Bring the served `file:` policies in line with the directory. Synchronous and
    /// CPU-bound (compiles): call it from a blocking thread, not an async task.
    pub fn scan(&self) -> Vec<ReloadEvent> {
        let Some(dir) = &self.dir else { return Vec::new() };
        let _one_at_a_time = lock(&self.scan_lock);
        let mut out = Vec::new();
        let limits_changed = self.read_limits_file(dir, &mut out);
        if limits_changed {
            self.relimit_builtins(&mut out);
        }
        let on_disk = match list_wasm(dir) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot read the policy directory");
                return out;
            }
        };
        let current = self.files.load_full();
        let mut next: PolicyMap = (*current).clone();
        for (name, path) in &on_disk {
            let wasm = match std::fs::read(path) {
                Ok(w) => w,
                Err(e) => {
                    out.push(self.record(
                        ReloadKind::Rejected,
                        name,
                        None,
                        format!("{}: {e}", path.display()),
                    ));
                    continue;
                }
            };
            let digest = digest_of(&wasm);
            let limits = self.limits_for(name);
            if current.get(name).is_some_and(|p| p.digest == digest) {
                if limits_changed && let Some(p) = current.get(name).filter(|p| p.limits != limits) {
                    next.insert(name.clone(), Arc::new(p.with_limits(limits)));
                    out.push(self.record(
                        ReloadKind::Reloaded,
                        name,
                        Some(&digest),
                        format!("limits now {limits:?}"),
                    ));
                }
                continue;
            }
            if lock(&self.rejected).get(name) == Some(&digest) {
                continue;
            }
            match self.runtime.load(name, &wasm, self.limits_for(name)) {
                Ok(p) => {
                    lock(&self.rejected).remove(name);
                    let kind = if current.contains_key(name) {
                        ReloadKind::Reloaded
                    } else {
                        ReloadKind::Loaded
                    };
                    out.push(self.record(
                        kind,
                        name,
                        Some(&digest),
                        format!("{:?} ({:?})", p.load_time, p.origin),
                    ));
                    next.insert(name.clone(), Arc::new(p));
                }
                Err(e) => {
                    lock(&self.rejected).insert(name.clone(), digest.clone());
                    let keeps = if current.contains_key(name) {
                        "; the last good version keeps serving"
                    } else {
                        ""
                    };
                    out.push(self.record(
                        ReloadKind::Rejected,
                        name,
                        Some(&digest),
                        format!("{}{keeps}", describe(&e)),
                    ));
                }
            }
        }
        for name in current.keys() {
            if !on_disk.iter().any(|(n, _)| n == name) {
                next.remove(name);
                lock(&self.rejected).remove(name);
                out.push(self.record(ReloadKind::Removed, name, None, "file removed".into()));
            }
        }
        if !out.is_empty() {
            self.files.store(Arc::new(next));
        }
        out
    }

    /// Give the built-ins already loaded the limits now in force: they are loaded at
    /// start-up, before the first scan reads `limits.yaml`.
    fn relimit_builtins(&self, out: &mut Vec<ReloadEvent>) {
        let mut loaded = lock(&self.builtins);
        for (name, p) in loaded.iter_mut() {
            let limits = self.limits_for(name);
            if p.limits != limits {
                *p = Arc::new(p.with_limits(limits));
                out.push(self.record(
                    ReloadKind::Reloaded,
                    name,
                    Some(&p.digest),
                    format!("built-in, limits now {limits:?}"),
                ));
            }
        }
    }

    /// Per-policy limits from `<dir>/limits.yaml` (optional):
    /// `my-policy.wasm: {timeoutMs: 500, memoryMiB: 128}` (built-ins by name: `cron:`). A
    /// broken file is reported and
    /// the limits in force stay. Returns whether the limits changed.
    fn read_limits_file(&self, dir: &Path, out: &mut Vec<ReloadEvent>) -> bool {
        let path = dir.join(LIMITS_FILE);
        let Ok(text) = std::fs::read_to_string(&path) else {
            return false;
        };
        let parsed: Result<HashMap<String, LimitsEntry>, String> =
            serde_path_to_error::deserialize(serde_norway::Deserializer::from_str(&text))
                .map_err(|e| format!("at '{}': {}", e.path(), e.inner()));
        let entries = match parsed {
            Ok(e) => e,
            Err(e) => {
                out.push(self.record(
                    ReloadKind::Rejected,
                    LIMITS_FILE,
                    None,
                    format!("{}: {e}", path.display()),
                ));
                return false;
            }
        };
        let mut changed = false;
        let mut table = lock(&self.limits);
        for (name, e) in entries {
            let base = builtins::default_limits(&name);
            let l = Limits {
                deadline: e.timeout_ms.map(Duration::from_millis).unwrap_or(base.deadline),
                memory_bytes: e
                    .memory_mib
                    .map(|m| (m as usize) << 20)
                    .unwrap_or(base.memory_bytes),
            };
            if table.insert(name, l) != Some(l) {
                changed = true;
            }
        }
        changed
    }

    fn record(&self, kind: ReloadKind, name: &str, digest: Option<&str>, detail: String) -> ReloadEvent {
        self.counters.counter(kind).fetch_add(1, Ordering::Relaxed);
        match kind {
            ReloadKind::Rejected => {
                tracing::warn!(policy = name, digest, outcome = kind.as_str(), "{detail}")
            }
            _ => tracing::info!(policy = name, digest, outcome = kind.as_str(), "{detail}"),
        }
        let ev = ReloadEvent {
            kind,
            name: name.to_string(),
            digest: digest.map(str::to_string),
            detail,
            at: SystemTime::now(),
        };
        let mut events = lock(&self.events);
        if events.len() == EVENT_HISTORY {
            events.pop_front();
        }
        events.push_back(ev.clone());
        ev
    }

    /// Watch the policy directory and rescan on every change (debounced), plus a slow
    /// periodic rescan in case an event is missed. Runs on its own threads; dropping the
    /// handle stops it.
    pub fn watch(self: &Arc<Self>) -> Result<WatchHandle, notify::Error> {
        use notify::{RecursiveMode, Watcher};
        let Some(dir) = self.dir.clone() else {
            return Ok(WatchHandle {
                _watcher: None,
                stop: Arc::new(std::sync::atomic::AtomicBool::new(true)),
            });
        };
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if res.is_ok() {
                let _ = tx.send(());
            }
        })?;
        watcher.watch(&dir, RecursiveMode::NonRecursive)?;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let weak = Arc::downgrade(self);
        let stop_flag = stop.clone();
        std::thread::Builder::new()
            .name("wasmscaler-policy-watch".into())
            .spawn(move || watch_loop(weak, rx, stop_flag))
            .map_err(|e| notify::Error::generic(&e.to_string()))?;
        Ok(WatchHandle {
            _watcher: Some(watcher),
            stop,
        })
    }
}

/// Debounce: after the first event, wait until the directory has been quiet this long.
const DEBOUNCE: Duration = Duration::from_millis(40);
const PERIODIC_RESCAN: Duration = Duration::from_secs(5);

fn watch_loop(
    registry: std::sync::Weak<Registry>,
    rx: std::sync::mpsc::Receiver<()>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut last_scan = Instant::now();
    loop {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let changed = match rx.recv_timeout(Duration::from_millis(250)) {
            Ok(()) => {
                while rx.recv_timeout(DEBOUNCE).is_ok() {}
                true
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => last_scan.elapsed() >= PERIODIC_RESCAN,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
        };
        if changed {
            let Some(reg) = registry.upgrade() else { return };
            reg.scan();
            last_scan = Instant::now();
        }
    }
}

/// Keeps the directory watch alive.
pub struct WatchHandle {
    _watcher: Option<notify::RecommendedWatcher>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn list_wasm(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut v = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "wasm")
            && path.is_file()
            && let Some(name) = path.file_name().and_then(|n| n.to_str())
        {
            v.push((name.to_string(), path.clone()));
        }
    }
    v.sort();
    Ok(v)
}

fn describe(e: &LoadError) -> String {
    e.to_string()
}

/// A poisoned lock only means another thread panicked mid-update of plain data; the
/// data is still usable, so take it rather than propagate the panic.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
