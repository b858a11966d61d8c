//! Watch caches the signal sources read instead of the API server: Pods and Nodes
//! (`kubernetes` signals), labelled Secrets (credentials of `prometheus`/`redis` signals).
//!
//! One kube-runtime reflector per (kind, namespace), started the first time a workload
//! needs it and shared by every workload after that, so an evaluation reads memory, not a
//! LIST. Objects are trimmed before they are stored (managedFields, annotations and
//! whatever else the reader never looks at: `strip`). A cache nobody read for
//! [`IDLE_AFTER`] is stopped and forgotten (a namespace whose workloads went away costs
//! nothing); the next read starts it again.
//!
//! While a cache has not listed once, a read waits for it up to the caller's bound,
//! counted from the cache's start (so a watch that cannot sync, e.g. RBAC refusing
//! `list`, holds only the first reader, never every evaluation), and then fails with a
//! message that names the resource and carries the watch's last error
//! (`pods in namespace shop: watch not synced yet (last watch error: ... forbidden ...)`),
//! which the signal then reports.

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::Resource;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::ExponentialBackoff;
use kube::runtime::{WatchStreamExt, watcher};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

/// A failed watch's first retry.
pub const FIRST_RETRY: Duration = Duration::from_millis(250);
/// backon's jitter adds up to the delay itself: retries come at most 4 s apart.
pub const MAX_RETRY: Duration = Duration::from_secs(2);

/// The retry policy of a watch: 250 ms doubling to 2 s plus jitter, reset on the first
/// event after an error (the controller's watches and these caches).
pub fn retry_backoff() -> ExponentialBackoff {
    ExponentialBackoff::from(
        backon::ExponentialBuilder::default()
            .with_min_delay(FIRST_RETRY)
            .with_max_delay(MAX_RETRY)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times(),
    )
}

/// A cache unread for this long is stopped.
pub const IDLE_AFTER: Duration = Duration::from_secs(600);

/// Builds the API a cache watches: `None` cluster-wide, `Some(ns)` one namespace.
pub type ApiFor<K> = fn(kube::Client, Option<&str>) -> Api<K>;

/// Lazily started, shared reflectors of one kind, one per namespace (or one cluster-wide).
pub struct SharedCaches<K>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    client: kube::Client,
    /// What the cache holds, for messages: `pods`, `nodes`, `Secrets labelled ...`.
    what: &'static str,
    api: ApiFor<K>,
    config: watcher::Config,
    strip: fn(&mut K),
    caches: Mutex<HashMap<Option<String>, Arc<Cache<K>>>>,
}

struct Cache<K>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    store: Store<K>,
    ready: watch::Receiver<bool>,
    last_error: Arc<Mutex<Option<String>>>,
    last_used: Mutex<Instant>,
    started: Instant,
    task: tokio::task::JoinHandle<()>,
}

impl<K> Drop for Cache<K>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<K> SharedCaches<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    pub fn new(
        client: kube::Client,
        what: &'static str,
        api: ApiFor<K>,
        config: watcher::Config,
        strip: fn(&mut K),
    ) -> Self {
        Self {
            client,
            what,
            api,
            config,
            strip,
            caches: Mutex::new(HashMap::new()),
        }
    }

    /// Number of caches running now.
    pub fn running(&self) -> usize {
        lock(&self.caches).len()
    }

    /// The cache of `namespace` (None: cluster-wide), started if it is not running, once
    /// it has listed: a cache that has not waits until `wait` after its start at most.
    pub async fn store(&self, namespace: Option<&str>, wait: Duration) -> Result<Store<K>, String> {
        let cache = {
            let mut caches = lock(&self.caches);
            let now = Instant::now();
            let key = namespace.map(str::to_string);
            caches.retain(|k, c| *k == key || now.duration_since(*lock(&c.last_used)) < IDLE_AFTER);
            caches
                .entry(key)
                .or_insert_with(|| Arc::new(self.start(namespace)))
                .clone()
        };
        *lock(&cache.last_used) = Instant::now();
        let mut ready = cache.ready.clone();
        if !*ready.borrow() {
            let left = wait.saturating_sub(cache.started.elapsed());
            let synced = tokio::time::timeout(left, ready.wait_for(|r| *r)).await;
            if !matches!(synced, Ok(Ok(_))) {
                let scope = namespace
                    .map(|n| format!(" in namespace {n}"))
                    .unwrap_or_default();
                let why = lock(&cache.last_error)
                    .as_ref()
                    .map(|e| format!(" (last watch error: {e})"))
                    .unwrap_or_default();
                return Err(format!("{}{scope}: watch not synced yet{why}", self.what));
            }
        }
        Ok(cache.store.clone())
    }

    fn start(&self, namespace: Option<&str>) -> Cache<K> {
        let api = (self.api)(self.client.clone(), namespace);
        let (reader, writer) = reflector::store();
        let (ready_tx, ready) = watch::channel(false);
        let last_error: Arc<Mutex<Option<String>>> = Arc::default();
        let errors = last_error.clone();
        let strip = self.strip;
        let what = self.what;
        let scope = namespace.unwrap_or("").to_string();
        let stream = watcher(api, self.config.clone())
            .backoff(retry_backoff())
            .modify(strip)
            .reflect(writer);
        let task = tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(ev) = stream.next().await {
                match ev {
                    Ok(ev) => {
                        *lock(&errors) = None;
                        if matches!(ev, watcher::Event::InitDone) {
                            let _ = ready_tx.send(true);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(cache = what, namespace = %scope, error = %e, "watch failed");
                        *lock(&errors) = Some(e.to_string());
                    }
                }
            }
        });
        Cache {
            store: reader,
            ready,
            last_error,
            last_used: Mutex::new(Instant::now()),
            started: Instant::now(),
            task,
        }
    }
}

/// What every cache drops: managedFields and annotations (`kubectl apply`'s
/// last-applied-configuration alone can be the larger half of an object, and holds a
/// Secret's data in clear text).
pub fn strip_metadata(meta: &mut kube::api::ObjectMeta) {
    meta.managed_fields = None;
    meta.annotations = None;
    meta.owner_references = None;
    meta.finalizers = None;
}

/// [`strip_metadata`], and everything else a counting reader never looks at: only the
/// identity (name, namespace, uid, resourceVersion), the labels when `labels`, and the
/// creation and deletion timestamps are kept.
pub fn minimal_metadata(meta: &mut kube::api::ObjectMeta, labels: bool) {
    strip_metadata(meta);
    *meta = kube::api::ObjectMeta {
        name: meta.name.take(),
        namespace: meta.namespace.take(),
        uid: meta.uid.take(),
        resource_version: meta.resource_version.take(),
        labels: if labels { meta.labels.take() } else { None },
        creation_timestamp: meta.creation_timestamp.take(),
        deletion_timestamp: meta.deletion_timestamp.take(),
        ..Default::default()
    };
}
