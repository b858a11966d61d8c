//! queue-job actuation: Jobs created from a suspended CronJob's `jobTemplate` (KEDA
//! ScaledJob semantics, the CronJob is the ScaledJob's template). The Job counts the
//! policy reads are `crate::signals::job_counts` (shared with this actuator).
//!
//! - The workload is a CronJob with `spec.suspend: true` (so the CronJob controller
//!   never starts Jobs on its schedule; only the policy does). An unsuspended CronJob is
//!   refused with an error Event.
//! - `decision.jobs = n` creates n Jobs: `generateName: <cronjob>-`, the template's
//!   labels and annotations plus the label `wasmscaler.io/cronjob: <cronjob>`, an
//!   ownerReference to the CronJob (controller, blockOwnerDeletion: deleting the CronJob
//!   deletes its Jobs), the template's spec.
//! - History limits: after each evaluation the oldest finished Jobs beyond
//!   `successfulJobsHistoryLimit` (default 3) and `failedJobsHistoryLimit` (default 1) are
//!   deleted (propagation Background), oldest first by completion time.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, PostParams};

pub use crate::signals::job_counts::{CRONJOB_LABEL, JobCounts, count};
use crate::signals::job_counts::{JobState, owned_jobs, state};
/// Defaults of `batch/v1` CronJob.
pub const DEFAULT_SUCCESSFUL_HISTORY: i32 = 3;
pub const DEFAULT_FAILED_HISTORY: i32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    #[error("{0}")]
    Count(#[from] crate::signals::job_counts::JobCountError),
    #[error("cronjob {ns}/{name}: {message}")]
    Read {
        ns: String,
        name: String,
        message: String,
    },
    #[error(
        "cronjob {ns}/{name} is not suspended: set spec.suspend: true so that only wasmscaler starts its Jobs"
    )]
    NotSuspended { ns: String, name: String },
    #[error("cronjob {ns}/{name}: creating a Job: {message}")]
    Create {
        ns: String,
        name: String,
        message: String,
    },
    #[error("cronjob {ns}/{name}: deleting Job {job}: {message}")]
    Delete {
        ns: String,
        name: String,
        job: String,
        message: String,
    },
}

/// What one actuation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobsDone {
    pub created: Vec<String>,
    pub deleted: Vec<String>,
}

/// The Job object created from `cron`'s template.
pub fn job_from_template(cron: &CronJob) -> Option<Job> {
    let name = cron.metadata.name.clone()?;
    let uid = cron.metadata.uid.clone()?;
    let template = &cron.spec.as_ref()?.job_template;
    let tmeta = template.metadata.clone().unwrap_or_default();
    let mut labels: BTreeMap<String, String> = tmeta.labels.unwrap_or_default();
    labels.insert(CRONJOB_LABEL.to_string(), name.clone());
    Some(Job {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}-")),
            namespace: cron.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: tmeta.annotations,
            owner_references: Some(vec![OwnerReference {
                api_version: "batch/v1".into(),
                kind: "CronJob".into(),
                name,
                uid,
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..ObjectMeta::default()
        },
        spec: template.spec.clone(),
        status: None,
    })
}

/// Create `jobs` Jobs from CronJob `ns/name` and trim its finished history. In dry-run
/// nothing is written and `created` lists what would have been (as `<name>-?`).
pub async fn actuate(
    client: &kube::Client,
    ns: &str,
    name: &str,
    jobs: u32,
    dry_run: bool,
) -> Result<JobsDone, JobsError> {
    let crons: Api<CronJob> = Api::namespaced(client.clone(), ns);
    let read_err = |message: String| JobsError::Read {
        ns: ns.into(),
        name: name.into(),
        message,
    };
    let cron = crons.get(name).await.map_err(|e| read_err(e.to_string()))?;
    let spec = cron.spec.as_ref().ok_or_else(|| read_err("has no spec".into()))?;
    if spec.suspend != Some(true) {
        return Err(JobsError::NotSuspended {
            ns: ns.into(),
            name: name.into(),
        });
    }
    let mut done = JobsDone::default();
    if dry_run {
        done.created = (0..jobs).map(|_| format!("{name}-?")).collect();
        return Ok(done);
    }
    let job = job_from_template(&cron).ok_or_else(|| read_err("has no name/uid/jobTemplate".into()))?;
    let api: Api<Job> = Api::namespaced(client.clone(), ns);
    for _ in 0..jobs {
        let made = api
            .create(&PostParams::default(), &job)
            .await
            .map_err(|e| JobsError::Create {
                ns: ns.into(),
                name: name.into(),
                message: e.to_string(),
            })?;
        done.created.push(made.metadata.name.unwrap_or_default());
    }
    // History limits, as the CronJob controller applies them.
    let keep_ok = spec
        .successful_jobs_history_limit
        .unwrap_or(DEFAULT_SUCCESSFUL_HISTORY)
        .max(0) as usize;
    let keep_failed = spec
        .failed_jobs_history_limit
        .unwrap_or(DEFAULT_FAILED_HISTORY)
        .max(0) as usize;
    let all = owned_jobs(client, ns, name, cron.metadata.uid.as_deref()).await?;
    for ok in [true, false] {
        let mut finished: Vec<(i64, String)> = all
            .iter()
            .filter_map(|j| match state(j) {
                JobState::Finished(s, at) if s == ok => Some((at, j.metadata.name.clone()?)),
                _ => None,
            })
            .collect();
        finished.sort();
        let keep = if ok { keep_ok } else { keep_failed };
        let excess = finished.len().saturating_sub(keep);
        for (_, job) in finished.into_iter().take(excess) {
            match api.delete(&job, &DeleteParams::background()).await {
                Ok(_) => done.deleted.push(job),
                // Someone else deleted it first: the limit holds.
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => {
                    return Err(JobsError::Delete {
                        ns: ns.into(),
                        name: name.into(),
                        job,
                        message: e.to_string(),
                    });
                }
            }
        }
    }
    Ok(done)
}
