//! The Kubernetes adapter: `wasmscaler run`, a controller that watches annotated
//! workloads and scales them through the shared evaluation path ([`crate::core`]).
//!
//! - [`extensions`]: the signal sources of `crate::signals` and this adapter's special
//!   actuators (Jobs from a CronJob template, spot/on-demand pool variants), plugged into
//!   the seam of [`crate::core::adapter`].
//! - [`reconcile`]: one evaluation of one workload: read, gather, evaluate, write
//!   `/scale`, Event, status/state annotations, metrics.
//! - [`report`]: the status annotation and the Events, derived from decisions (written
//!   on change, never once per evaluation); [`events`] publishes them.
//! - [`leader`]: leader election on a Lease; [`fence`]: the client every write goes
//!   through, refused unless leadership is valid, every request under a deadline.
//! - [`watch_health`]: the watches' retry policy and whether they work now (`/readyz`).
//! - [`pools`], [`jobs`]: spot/on-demand pool variants and Jobs, the special actuators.
//! - [`metrics`], [`http`]: `/metrics`, `/healthz`, `/readyz`.
//!
//! Use from a program or a test: [`start`] returns a [`Running`] controller.

pub mod events;
pub mod extensions;
pub mod fence;
pub mod http;
pub mod jobs;
pub mod leader;
pub mod metrics;
pub mod pools;
pub mod reconcile;
pub mod report;
pub mod tenancy;
pub mod watch_health;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use kube::api::{Api, DynamicObject};
use kube::core::ApiResource;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, watcher};
use tokio::sync::watch;

use self::leader::{Leadership, LeaseSettings};
use self::metrics::Metrics;
use self::reconcile::{Context, ScaleVia, Shared};
use self::watch_health::WatchHealth;
use crate::core::adapter::{Actuator, Gatherers, NoActuator};
use crate::core::decision_log::{DecisionLog, WriterError, WriterSettings};
use crate::runtime::{Registry, Runtime};

/// How often workloads whose objects are gone are forgotten (entry, metric series).
const SWEEP_EVERY: Duration = Duration::from_secs(2);

/// Forget deleted workloads: the Controller never reconciles an object that is gone, so
/// compare what we remember with the watch caches (only once they are synced, or an
/// unsynced cache would forget everything).
fn spawn_sweeper(
    shared: Arc<Shared>,
    readers: Vec<(ApiResource, Store<DynamicObject>)>,
    health: Arc<WatchHealth>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            if !health.is_ready() {
                continue;
            }
            // Kinds of different groups may share a name: any cache holding it counts.
            shared.sweep(|w| {
                readers
                    .iter()
                    .filter(|(ar, _)| ar.kind == w.kind)
                    .find_map(|(ar, store)| {
                        let key =
                            ObjectRef::<DynamicObject>::new_with(&w.name, ar.clone()).within(&w.namespace);
                        store.get(&key)?.metadata.uid.clone()
                    })
            });
        }
    })
}

/// How the controller runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Watch only this namespace (None: all namespaces).
    pub namespace: Option<String>,
    /// Directory of `file:NAME.wasm` policies (watched for hot reload).
    pub policy_dir: Option<PathBuf>,
    /// Artifact cache for precompiled policies.
    pub cache_dir: Option<PathBuf>,
    /// `max-replicas` of workloads that do not set it.
    pub default_max_replicas: u32,
    /// Extra kinds to watch besides Deployments and StatefulSets, as `apiVersion/Kind`
    /// (e.g. `batch.volcano.sh/v1alpha1/Job`: scaled through its `/scale`;
    /// `batch/v1/CronJob`: handed to the Job actuator).
    pub extra_kinds: Vec<String>,
    /// Leader election (off: this replica always writes).
    pub leader_election: bool,
    pub lease_namespace: String,
    pub lease_name: String,
    /// This replica's identity in the Lease (pod name).
    pub identity: String,
    pub lease_duration: Duration,
    pub lease_retry: Duration,
    /// `/metrics`, `/healthz`, `/readyz` (None: no server).
    pub metrics_addr: Option<SocketAddr>,
    /// Workloads reconciled in parallel.
    pub concurrency: u16,
    /// What annotations may ask for (signal servers, interval).
    pub tenancy: tenancy::TenancyRules,
    /// Write one decision-log line per evaluation (None: off).
    pub decision_log: Option<WriterSettings>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            namespace: None,
            policy_dir: None,
            cache_dir: None,
            default_max_replicas: 100,
            extra_kinds: Vec::new(),
            leader_election: true,
            lease_namespace: "wasmscaler-system".into(),
            lease_name: "wasmscaler-leader".into(),
            identity: std::env::var("POD_NAME")
                .or_else(|_| std::env::var("HOSTNAME"))
                .unwrap_or_else(|_| format!("wasmscaler-{}", std::process::id())),
            lease_duration: Duration::from_secs(15),
            lease_retry: Duration::from_secs(2),
            metrics_addr: None,
            concurrency: 8,
            tenancy: tenancy::TenancyRules::default(),
            decision_log: None,
        }
    }
}

/// What other modules plug in: signal sources by kind, the special actuator, and
/// optionally a ready policy registry (else one is built from the settings).
pub struct Extensions {
    pub gatherers: Gatherers,
    pub actuator: Arc<dyn Actuator>,
    pub registry: Option<Arc<Registry>>,
}

impl Default for Extensions {
    fn default() -> Self {
        Self {
            gatherers: Gatherers::default(),
            actuator: Arc::new(NoActuator),
            registry: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot start the policy runtime: {0}")]
    Runtime(String),
    #[error("cannot watch the policy directory {0}: {1}")]
    PolicyWatch(String, String),
    #[error("--watch {0}: {1}")]
    Kind(String, String),
    #[error("cannot serve metrics on {0}: {1}")]
    Http(SocketAddr, String),
    #[error("{0}")]
    DecisionLog(#[from] WriterError),
    #[error("cannot set up the signal sources and actuators: {0}")]
    Extensions(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A running controller.
pub struct Running {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Fired after the reconciles have drained: the Lease goes last.
    release: watch::Sender<bool>,
    leader_task: Option<tokio::task::JoinHandle<()>>,
    /// Where `/metrics` is served, if it is.
    pub metrics_addr: Option<SocketAddr>,
    pub metrics: Arc<Metrics>,
    pub registry: Arc<Registry>,
    /// The decision-log writer, when `--decision-log` is set.
    pub decision_log: Option<Arc<DecisionLog>>,
    leadership: Leadership,
    health: Arc<WatchHealth>,
    _policy_watch: Option<crate::runtime::registry::WatchHandle>,
}

impl Running {
    pub fn is_leader(&self) -> bool {
        self.leadership.is_leader()
    }

    /// The watch caches have synced and no watch is failing now (`/readyz`).
    pub fn is_ready(&self) -> bool {
        self.health.is_ready()
    }

    /// Stop gracefully: finish in-flight reconciles (still as leader, so their writes
    /// land), then release the Lease so a standby takes over at once.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
        let _ = self.release.send(true);
        if let Some(t) = self.leader_task {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
        // Last: every evaluation has been queued; finish the file (its gzip trailer).
        if let Some(log) = self.decision_log {
            let _ = tokio::task::spawn_blocking(move || log.close()).await;
        }
    }

    /// Run until SIGINT/SIGTERM, then shut down.
    pub async fn run_until_signal(self) {
        #[cfg(unix)]
        {
            let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
            match term {
                Ok(mut term) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutting down");
        self.shutdown().await;
    }
}

/// Start the controller: leader election, the fenced client (`fence.rs`) everything else
/// is built on — `extensions` gets it too, so Jobs and pools are fenced like `/scale` —,
/// the policy registry (+ hot reload), one watch per kind, the HTTP endpoints.
pub async fn start<F, E>(
    client: kube::Client,
    settings: Settings,
    extensions: F,
) -> Result<Running, StartError>
where
    F: FnOnce(kube::Client) -> Result<Extensions, E>,
    E: std::error::Error + Send + Sync + 'static,
{
    let (release_tx, release_rx) = watch::channel(false);
    let (leadership, leader_task) = if settings.leader_election {
        let (l, task) = leader::spawn(
            client.clone(),
            LeaseSettings {
                namespace: settings.lease_namespace.clone(),
                name: settings.lease_name.clone(),
                identity: settings.identity.clone(),
                duration: settings.lease_duration,
                retry: settings.lease_retry,
            },
            release_rx,
        );
        (l, Some(task))
    } else {
        (Leadership::always(), None)
    };
    let client = fence::fenced(client, leadership.clone(), fence::REQUEST_TIMEOUT);
    let ext = extensions(client.clone()).map_err(|e| StartError::Extensions(Box::new(e)))?;

    let registry = match ext.registry {
        Some(r) => r,
        None => {
            let rt =
                Runtime::new(settings.cache_dir.clone()).map_err(|e| StartError::Runtime(e.to_string()))?;
            let reg = Registry::new(rt, settings.policy_dir.clone());
            // Compile the built-ins and the policy directory here, on a blocking thread, so
            // that no reconcile ever compiles a component on the async runtime.
            let r2 = reg.clone();
            let _ = tokio::task::spawn_blocking(move || {
                for (name, e) in r2.load_builtins() {
                    tracing::error!(policy = %name, error = %e, "built-in policy failed to load");
                }
                r2.scan()
            })
            .await;
            reg
        }
    };
    let policy_watch = match &settings.policy_dir {
        Some(dir) => Some(
            registry
                .watch()
                .map_err(|e| StartError::PolicyWatch(dir.display().to_string(), e.to_string()))?,
        ),
        None => None,
    };

    let metrics = Arc::new(Metrics::new());
    metrics.watch_registry(registry.clone());
    let decision_log = match settings.decision_log.clone() {
        Some(w) => {
            let log = Arc::new(DecisionLog::open(w)?);
            metrics.watch_decision_log(log.clone());
            Some(log)
        }
        None => None,
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();

    let events = events::EventLog::new(client.clone(), "wasmscaler", &settings.identity);
    let shared = Arc::new(Shared::new(
        client.clone(),
        registry.clone(),
        ext.gatherers,
        ext.actuator,
        metrics.clone(),
        events,
        leadership.clone(),
        settings.default_max_replicas,
        settings.tenancy.clone(),
        decision_log.clone(),
    ));

    // Leadership changes: metric, and forget cached state when we lose it and when we
    // gain it (another leader wrote in between: start from what is on the objects).
    {
        let mut rx = leadership.receiver();
        let shared = shared.clone();
        let mut stop = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            let mut was_leading = None;
            loop {
                let leading = *rx.borrow_and_update() != leader::Held::No;
                shared.metrics.leader.set(i64::from(leading));
                if was_leading != Some(leading) {
                    shared.forget_all();
                    was_leading = Some(leading);
                }
                tokio::select! {
                    r = rx.changed() => if r.is_err() { return },
                    _ = stop.changed() => return,
                }
            }
        }));
    }

    let mut kinds: Vec<(ApiResource, ScaleVia)> = vec![
        (ApiResource::erase::<Deployment>(&()), ScaleVia::Object),
        (ApiResource::erase::<StatefulSet>(&()), ScaleVia::Object),
    ];
    for k in &settings.extra_kinds {
        let (g, v, kind, name) = reconcile::parse_kind_ref(k).map_err(|m| StartError::Kind(k.clone(), m))?;
        if name.is_some() {
            return Err(StartError::Kind(
                k.clone(),
                "give apiVersion/Kind without a name".into(),
            ));
        }
        let ar = reconcile::discover(&client, &g, &v, &kind)
            .await
            .map_err(|m| StartError::Kind(k.clone(), m))?;
        let via = if g == "batch" && kind == "CronJob" {
            ScaleVia::Actuator
        } else {
            ScaleVia::Subresource
        };
        kinds.push((ar, via));
    }

    let health = Arc::new(WatchHealth::default());
    let alive = Arc::new(AtomicBool::new(true));
    let mut readers = Vec::new();
    for (ar, via) in kinds {
        let api: Api<DynamicObject> = match &settings.namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
            None => Api::all_with(client.clone(), &ar),
        };
        let ctx = Arc::new(Context {
            shared: shared.clone(),
            resource: ar.clone(),
            via,
        });
        let mut stop = stop_rx.clone();
        let metrics = metrics.clone();
        let kind = ar.kind.clone();
        let controller = Controller::new_with(api, watcher::Config::default(), ar.clone())
            .trigger_backoff(health.backoff());
        readers.push((ar, controller.store()));
        let controller = controller
            .with_config(kube::runtime::controller::Config::default().concurrency(settings.concurrency))
            .graceful_shutdown_on(async move {
                let _ = stop.changed().await;
            })
            .run(reconcile::reconcile, reconcile::error_policy, ctx)
            .for_each(move |res| {
                let metrics = metrics.clone();
                let kind = kind.clone();
                async move {
                    if let Err(e) = res {
                        match &e {
                            kube::runtime::controller::Error::ReconcilerFailed(..) => {}
                            other => {
                                metrics.error("watch");
                                tracing::warn!(%kind, error = %other, "controller stream error");
                            }
                        }
                    }
                }
            });
        let alive = alive.clone();
        tasks.push(tokio::spawn(async move {
            controller.await;
            alive.store(false, Ordering::Relaxed);
        }));
    }
    tasks.push(spawn_sweeper(
        shared.clone(),
        readers.clone(),
        health.clone(),
        stop_rx.clone(),
    ));
    {
        let health = health.clone();
        tasks.push(tokio::spawn(async move {
            for (_, r) in &readers {
                // Re-poll rather than await once: kube-runtime's Store::wait_until_ready
                // keeps a single waker (a oneshot) and the Controller's runner waits on
                // the same store, so a second waiter can miss the wakeup and /readyz
                // would stay 503 forever.
                loop {
                    match tokio::time::timeout(Duration::from_millis(200), r.wait_until_ready()).await {
                        Ok(Ok(())) => break,
                        Ok(Err(_)) => return,
                        Err(_) => {}
                    }
                }
            }
            health.mark_synced();
            tracing::info!("caches synced");
        }));
    }

    let mut metrics_addr = None;
    if let Some(addr) = settings.metrics_addr {
        let (bound, task) = http::serve(
            addr,
            http::Health {
                metrics: metrics.clone(),
                alive: alive.clone(),
                health: health.clone(),
            },
            stop_rx.clone(),
        )
        .await
        .map_err(|e| StartError::Http(addr, e.to_string()))?;
        metrics_addr = Some(bound);
        tasks.push(task);
    }

    Ok(Running {
        stop: stop_tx,
        tasks,
        release: release_tx,
        leader_task,
        metrics_addr,
        metrics,
        registry,
        decision_log,
        leadership,
        health,
        _policy_watch: policy_watch,
    })
}
