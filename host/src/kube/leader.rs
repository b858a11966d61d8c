//! Leader election on a `coordination.k8s.io/v1` Lease, the client-go way: the holder
//! renews `renewTime` every `retry` period; a candidate takes over only after it has
//! seen the same Lease (same resourceVersion) unchanged for a full `leaseDurationSeconds`
//! by its own clock (no cross-node clock comparison). Every write carries the
//! resourceVersion it read, so two candidates cannot both win (the loser gets 409).
//! Losing the Lease, or failing to renew within the duration, drops leadership at once.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct LeaseSettings {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    pub duration: Duration,
    pub retry: Duration,
}

/// Leadership as seen by the reconciler: `true` while this replica holds the Lease.
#[derive(Clone)]
pub struct Leadership {
    rx: watch::Receiver<bool>,
}

impl Leadership {
    /// Always leader (leader election disabled).
    pub fn always() -> Self {
        let (tx, rx) = watch::channel(true);
        // Keep the channel open for the life of the process.
        std::mem::forget(tx);
        Self { rx }
    }

    pub fn is_leader(&self) -> bool {
        *self.rx.borrow()
    }

    pub fn receiver(&self) -> watch::Receiver<bool> {
        self.rx.clone()
    }
}

struct Observed {
    resource_version: String,
    holder: Option<String>,
    since: Instant,
}

/// Start the election loop; returns the leadership view and the task. When `stop`
/// fires the Lease is released (if held) so a standby takes over without waiting.
pub fn spawn(
    client: kube::Client,
    s: LeaseSettings,
    mut stop: watch::Receiver<bool>,
) -> (Leadership, tokio::task::JoinHandle<()>) {
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        let api: Api<Lease> = Api::namespaced(client, &s.namespace);
        let mut observed: Option<Observed> = None;
        let mut last_renew: Option<Instant> = None;
        loop {
            match step(&api, &s, &mut observed).await {
                Ok(true) => {
                    last_renew = Some(Instant::now());
                    if !*tx.borrow() {
                        tracing::info!(lease = %s.name, identity = %s.identity, "became leader");
                    }
                    let _ = tx.send(true);
                }
                Ok(false) => {
                    if *tx.borrow() {
                        tracing::warn!(lease = %s.name, identity = %s.identity, "lost leadership");
                    }
                    last_renew = None;
                    let _ = tx.send(false);
                }
                Err(e) => {
                    tracing::warn!(lease = %s.name, error = %e, "lease renew/acquire failed");
                    // Keep leading only while the last renewal is still valid with margin.
                    let valid = last_renew.is_some_and(|t| t.elapsed() < s.duration.mul_f32(0.66));
                    if !valid && *tx.borrow() {
                        tracing::warn!(lease = %s.name, "could not renew in time; stepping down");
                        let _ = tx.send(false);
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(s.retry) => {}
                _ = stop.changed() => {
                    if *tx.borrow() {
                        let _ = tx.send(false);
                        release(&api, &s).await;
                    }
                    return;
                }
            }
        }
    });
    (Leadership { rx }, task)
}

fn now() -> MicroTime {
    MicroTime(Timestamp::now())
}

fn duration_secs(d: Duration) -> i32 {
    i32::try_from(d.as_secs().max(1)).unwrap_or(i32::MAX)
}

/// One acquire/renew attempt. Ok(true): we hold the Lease now.
async fn step(
    api: &Api<Lease>,
    s: &LeaseSettings,
    observed: &mut Option<Observed>,
) -> Result<bool, kube::Error> {
    let current = match api.get_opt(&s.name).await? {
        Some(l) => l,
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(s.name.clone()),
                    namespace: Some(s.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(s.identity.clone()),
                    lease_duration_seconds: Some(duration_secs(s.duration)),
                    acquire_time: Some(now()),
                    renew_time: Some(now()),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        }
    };
    let rv = current.metadata.resource_version.clone().unwrap_or_default();
    let spec = current.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
    let held_by_me = holder.as_deref() == Some(s.identity.as_str());

    // Track how long this exact version of the Lease has been unchanged.
    match observed {
        Some(o) if o.resource_version == rv => {}
        _ => {
            *observed = Some(Observed {
                resource_version: rv.clone(),
                holder: holder.clone(),
                since: Instant::now(),
            })
        }
    }
    let lease_duration = spec
        .lease_duration_seconds
        .map(|d| Duration::from_secs(u64::try_from(d.max(1)).unwrap_or(1)))
        .unwrap_or(s.duration);
    let expired = holder.is_none()
        || observed
            .as_ref()
            .is_some_and(|o| o.holder == holder && o.since.elapsed() >= lease_duration);
    if !held_by_me && !expired {
        return Ok(false);
    }

    let mut next = current.clone();
    let mut nspec = spec.clone();
    if !held_by_me {
        nspec.holder_identity = Some(s.identity.clone());
        nspec.acquire_time = Some(now());
        nspec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
    }
    nspec.renew_time = Some(now());
    nspec.lease_duration_seconds = Some(duration_secs(s.duration));
    next.spec = Some(nspec);
    match api.replace(&s.name, &PostParams::default(), &next).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Give the Lease up: clear the holder so a standby acquires it on its next try.
async fn release(api: &Api<Lease>, s: &LeaseSettings) {
    let Ok(Some(mut lease)) = api.get_opt(&s.name).await else {
        return;
    };
    let Some(spec) = lease.spec.as_mut() else { return };
    if spec.holder_identity.as_deref() != Some(s.identity.as_str()) {
        return;
    }
    spec.holder_identity = None;
    spec.renew_time = Some(now());
    spec.lease_duration_seconds = Some(1);
    if let Err(e) = api.replace(&s.name, &PostParams::default(), &lease).await {
        tracing::warn!(lease = %s.name, error = %e, "could not release the lease");
    } else {
        tracing::info!(lease = %s.name, identity = %s.identity, "released leadership");
    }
}
