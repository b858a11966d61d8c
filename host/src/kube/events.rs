//! Kubernetes Events (events.k8s.io/v1), written by the controller itself.
//!
//! kube-runtime's `Recorder` keys a series by type, reason and action but not the note,
//! and its repeats patch only the count: "scaled from 1 to 4" followed by "scaled from 4
//! to 2" shows as one Event that still says 1 -> 4. Here the note is part of the key, so
//! each distinct decision is its own Event and only an identical repeat (same object,
//! reason and note within [`SERIES_TTL`]) bumps a series. The reconciler publishes on
//! transitions only (see [`super::report`]), never once per evaluation.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as K8sEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};

/// How long an identical repeat joins the earlier Event's series (client-go's 6 min).
pub const SERIES_TTL: Duration = Duration::from_secs(6 * 60);
/// The API server rejects notes over 1 kB.
const NOTE_LIMIT: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    Normal,
    Warning,
}

/// One thing worth telling the workload's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub severity: Severity,
    /// PascalCase, e.g. `Scaled`, `EvaluationFailed`.
    pub reason: &'static str,
    /// What the controller was doing: `Scale`, `Evaluate`.
    pub action: &'static str,
    pub note: String,
}

impl Notice {
    pub fn normal(reason: &'static str, action: &'static str, note: impl Into<String>) -> Self {
        Self {
            severity: Severity::Normal,
            reason,
            action,
            note: note.into(),
        }
    }

    pub fn warning(reason: &'static str, action: &'static str, note: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            reason,
            action,
            note: note.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SeriesKey {
    uid: String,
    severity: Severity,
    reason: &'static str,
    action: &'static str,
    note: String,
}

struct Sent {
    namespace: String,
    name: String,
    count: i32,
    at: Instant,
}

/// Publishes Events; remembers recent ones to extend a series on an identical repeat.
pub struct EventLog {
    client: kube::Client,
    controller: String,
    instance: String,
    recent: Mutex<HashMap<SeriesKey, Sent>>,
}

impl EventLog {
    pub fn new(client: kube::Client, controller: &str, instance: &str) -> Self {
        Self {
            client,
            controller: controller.to_string(),
            instance: instance.to_string(),
            recent: Mutex::new(HashMap::new()),
        }
    }

    /// Publish `notice` about `regarding`: a new Event, or the next count of an identical
    /// recent one.
    pub async fn publish(&self, regarding: &ObjectReference, notice: &Notice) -> Result<(), kube::Error> {
        let note = truncate_note(&notice.note);
        let key = SeriesKey {
            uid: regarding.uid.clone().unwrap_or_default(),
            severity: notice.severity,
            reason: notice.reason,
            action: notice.action,
            note: note.clone(),
        };
        let namespace = regarding.namespace.clone().unwrap_or_else(|| "default".into());
        let repeat = {
            let mut recent = lock(&self.recent);
            recent.retain(|_, s| s.at.elapsed() < SERIES_TTL);
            recent
                .get(&key)
                .map(|s| (s.namespace.clone(), s.name.clone(), s.count + 1))
        };
        let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), &namespace);
        let now = MicroTime(Timestamp::now());
        let (name, count) = match repeat {
            Some((ns, name, count)) => {
                let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), &ns);
                let series = EventSeries {
                    count,
                    last_observed_time: now,
                };
                let body = serde_json::json!({ "series": series });
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&body))
                    .await?;
                (name, count)
            }
            None => {
                let name = format!(
                    "{}.{:x}",
                    regarding.name.as_deref().unwrap_or(&self.controller),
                    now.0.as_nanosecond()
                );
                let ev = K8sEvent {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        namespace: Some(namespace.clone()),
                        ..Default::default()
                    },
                    action: Some(notice.action.to_string()),
                    reason: Some(notice.reason.to_string()),
                    note: Some(note),
                    event_time: Some(now),
                    regarding: Some(regarding.clone()),
                    reporting_controller: Some(self.controller.clone()),
                    reporting_instance: Some(self.instance.clone()),
                    type_: Some(
                        match notice.severity {
                            Severity::Normal => "Normal",
                            Severity::Warning => "Warning",
                        }
                        .to_string(),
                    ),
                    ..Default::default()
                };
                api.create(&PostParams::default(), &ev).await?;
                (name, 1)
            }
        };
        lock(&self.recent).insert(
            key,
            Sent {
                namespace,
                name,
                count,
                at: Instant::now(),
            },
        );
        Ok(())
    }

    /// Drop what is remembered about an object (it was deleted).
    pub fn forget(&self, uid: &str) {
        lock(&self.recent).retain(|k, _| k.uid != uid);
    }

    /// Series remembered now (for tests and the memory bound).
    pub fn remembered(&self) -> usize {
        lock(&self.recent).len()
    }
}

/// Cut a note to the API server's limit on a character boundary.
fn truncate_note(note: &str) -> String {
    if note.len() <= NOTE_LIMIT {
        return note.to_string();
    }
    let mut cut = NOTE_LIMIT - 3;
    while !note.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}...", &note[..cut])
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_notes_are_cut_on_a_char_boundary() {
        let long = "é".repeat(800);
        let cut = truncate_note(&long);
        assert!(cut.len() <= NOTE_LIMIT && cut.ends_with("..."));
        assert_eq!(truncate_note("short"), "short");
    }
}
