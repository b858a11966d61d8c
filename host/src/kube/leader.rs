//! Leader election on a `coordination.k8s.io/v1` Lease, the client-go way: the holder
//! renews `renewTime` every `retry` period; a candidate takes over only after it has
//! seen the same Lease (same resourceVersion) unchanged for a full `leaseDurationSeconds`
//! by its own clock (no cross-node clock comparison). Every write carries the
//! resourceVersion it read, so two candidates cannot both win (the loser gets 409).
//! Losing the Lease, or failing to renew within the renew deadline (2/3 of the duration),
//! drops leadership at once; every write is fenced by it (`fence.rs`).

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

/// Leadership as seen by the reconciler and the write fence (`fence.rs`).
#[derive(Clone)]
pub struct Leadership {
    rx: watch::Receiver<Held>,
}

/// Whether, and until when, this replica may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    No,
    /// Leading until this instant: the start of the last successful renewal plus the
    /// renew deadline. The renewal reached the API server after that start, and a
    /// standby waits a whole lease duration (longer than the deadline) from when it saw
    /// that renewal, so this replica stops writing before anyone else can start.
    Until(Instant),
    /// Leader election disabled.
    Always,
}

impl Held {
    fn valid(self) -> bool {
        match self {
            Held::No => false,
            Held::Until(t) => Instant::now() < t,
            Held::Always => true,
        }
    }
}

impl Leadership {
    /// Always leader (leader election disabled).
    pub fn always() -> Self {
        let (tx, rx) = watch::channel(Held::Always);
        // Keep the channel open for the life of the process.
        std::mem::forget(tx);
        Self { rx }
    }

    /// True while this replica's leadership is valid: it held the Lease at its last
    /// renewal and the renew deadline since then has not passed.
    pub fn is_leader(&self) -> bool {
        self.rx.borrow().valid()
    }

    /// Changes of leadership (gained: `Until`/`Always`, lost: `No`). An expiry is
    /// published by the election loop at its next step, at most a retry period late;
    /// [`Leadership::is_leader`] does not wait for that.
    pub fn receiver(&self) -> watch::Receiver<Held> {
        self.rx.clone()
    }
}

struct Observed {
    resource_version: String,
    holder: Option<String>,
    since: Instant,
}

/// client-go's ratio: RenewDeadline 10 s of a 15 s LeaseDuration.
fn renew_deadline(s: &LeaseSettings) -> Duration {
    s.duration.mul_f64(2.0 / 3.0)
}

/// Start the election loop; returns the leadership view and the task. The loop keeps
/// renewing until `release` fires (the caller drains its reconciles first), then gives
/// the Lease up so a standby takes over without waiting.
pub fn spawn(
    client: kube::Client,
    s: LeaseSettings,
    mut release: watch::Receiver<bool>,
) -> (Leadership, tokio::task::JoinHandle<()>) {
    let (tx, rx) = watch::channel(Held::No);
    let task = tokio::spawn(async move {
        let api: Api<Lease> = Api::namespaced(client, &s.namespace);
        let mut observed: Option<Observed> = None;
        let deadline = renew_deadline(&s);
        loop {
            let started = Instant::now();
            // A renewal that cannot finish within the deadline is as good as failed: a
            // black-holed connection must not keep this replica "leading" on an old flag.
            let attempt = tokio::time::timeout(deadline, step(&api, &s, &mut observed)).await;
            let was = *tx.borrow();
            match attempt {
                Ok(Ok(true)) => {
                    if !was.valid() {
                        tracing::info!(lease = %s.name, identity = %s.identity, "became leader");
                    }
                    let _ = tx.send(Held::Until(started + deadline));
                }
                Ok(Ok(false)) => {
                    if was != Held::No {
                        tracing::warn!(lease = %s.name, identity = %s.identity, "lost leadership");
                    }
                    let _ = tx.send(Held::No);
                }
                Ok(Err(e)) => {
                    tracing::warn!(lease = %s.name, error = %e, "lease renew/acquire failed");
                }
                Err(_) => {
                    tracing::warn!(lease = %s.name, after = ?deadline, "lease renew/acquire timed out");
                }
            }
            let now = *tx.borrow();
            if now != Held::No && !now.valid() {
                tracing::warn!(lease = %s.name, "could not renew in time; stepping down");
                let _ = tx.send(Held::No);
            }
            tokio::select! {
                _ = tokio::time::sleep(s.retry) => {}
                _ = release.changed() => {
                    let held = tx.borrow().valid();
                    let _ = tx.send(Held::No);
                    if held && tokio::time::timeout(deadline, release_lease(&api, &s)).await.is_err() {
                        tracing::warn!(lease = %s.name, "releasing the lease timed out");
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
async fn release_lease(api: &Api<Lease>, s: &LeaseSettings) {
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
