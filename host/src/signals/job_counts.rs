//! Job counts of a queue-job CronJob: the `running-jobs` / `pending-jobs` signals, and
//! what the controller's Job actuator (`crate::kube::jobs`) trims its history by.
//!
//! Counts, over Jobs labelled `wasmscaler.io/cronjob: <cronjob>` and owned by it:
//! finished = condition `Complete` or `Failed` with status True; of the unfinished,
//! **running** = `status.ready >= 1` (a pod is Running and Ready), **pending** = the rest
//! (no status yet, or pods not yet ready: scheduling, pulling, starting). This is KEDA's
//! default `pendingPodConditions` (Ready) read from the Job's own status.

use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, ListParams};

/// The label on every Job created for a CronJob.
pub const CRONJOB_LABEL: &str = "wasmscaler.io/cronjob";

/// Listing a CronJob's Jobs failed.
#[derive(Debug, thiserror::Error)]
#[error("cronjob {ns}/{name}: {message}")]
pub struct JobCountError {
    pub ns: String,
    pub name: String,
    pub message: String,
}

/// Jobs of one CronJob by state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobCounts {
    pub running: u32,
    pub pending: u32,
    pub succeeded: u32,
    pub failed: u32,
}

/// A Job as the counts see it.
pub enum JobState {
    Running,
    Pending,
    /// Finished: succeeded?, finish time (ms).
    Finished(bool, i64),
}

fn condition(job: &Job, kind: &str) -> Option<i64> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind && c.status == "True")
        .map(|c| {
            c.last_transition_time
                .as_ref()
                .map(|t| t.0.as_millisecond())
                .unwrap_or(0)
        })
}

pub fn state(job: &Job) -> JobState {
    let created = job
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0.as_millisecond())
        .unwrap_or(0);
    if let Some(at) = condition(job, "Complete") {
        let done = job
            .status
            .as_ref()
            .and_then(|s| s.completion_time.as_ref())
            .map(|t| t.0.as_millisecond())
            .unwrap_or(if at > 0 { at } else { created });
        return JobState::Finished(true, done);
    }
    if let Some(at) = condition(job, "Failed") {
        return JobState::Finished(false, if at > 0 { at } else { created });
    }
    if job.status.as_ref().and_then(|s| s.ready).unwrap_or(0) >= 1 {
        JobState::Running
    } else {
        JobState::Pending
    }
}

fn owned_by(job: &Job, name: &str, uid: Option<&str>) -> bool {
    job.metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.kind == "CronJob" && o.name == name && uid.is_none_or(|u| o.uid == u))
}

pub async fn owned_jobs(
    client: &kube::Client,
    ns: &str,
    name: &str,
    uid: Option<&str>,
) -> Result<Vec<Job>, JobCountError> {
    let api: Api<Job> = Api::namespaced(client.clone(), ns);
    let list = api
        .list(&ListParams::default().labels(&format!("{CRONJOB_LABEL}={name}")))
        .await
        .map_err(|e| JobCountError {
            ns: ns.into(),
            name: name.into(),
            message: format!("listing its Jobs: {e}"),
        })?;
    Ok(list
        .items
        .into_iter()
        .filter(|j| j.metadata.deletion_timestamp.is_none() && owned_by(j, name, uid))
        .collect())
}

/// Running/pending/finished Jobs of CronJob `ns/name` (uid: only Jobs owned by that
/// incarnation of it).
pub async fn count(
    client: &kube::Client,
    ns: &str,
    name: &str,
    uid: Option<&str>,
) -> Result<JobCounts, JobCountError> {
    let mut c = JobCounts::default();
    for j in owned_jobs(client, ns, name, uid).await? {
        match state(&j) {
            JobState::Running => c.running += 1,
            JobState::Pending => c.pending += 1,
            JobState::Finished(true, _) => c.succeeded += 1,
            JobState::Finished(false, _) => c.failed += 1,
        }
    }
    Ok(c)
}
