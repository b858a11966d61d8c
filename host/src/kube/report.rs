//! What the controller tells about a workload: the `wasmscaler.io/status` annotation and
//! the Events, both derived from the *decision*, not from the live numbers behind it.
//!
//! A status write bumps the object's resourceVersion and wakes every watcher of it, so it
//! is written only when the decision changes: action, replicas, proposal, mode, error,
//! a policy's result, or the form of the reason. Numbers in the reason (measured loads,
//! "in 14.6s", "3 failed in a row") are live and not compared: the stored reason is the
//! one *at that change*; the live numbers are on `/metrics`. Events are published on transitions of the same record: the first
//! failure (or a different error), the recovery, a new shadow or paused proposal.

use serde::{Deserialize, Serialize};

use super::events::Notice;

/// One policy's part in the decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyStatus {
    pub policy: String,
    /// First 12 hex digits of the component's digest.
    pub digest: String,
    /// `ok: N` or the error kind.
    pub result: String,
}

/// The content of the status annotation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// scale, hold, shadow, paused, failed, invalid.
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired: Option<u32>,
    #[serde(default)]
    pub proposal: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Why no policy answer was usable (stable text: no counters), or the bad annotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<PolicyStatus>,
    /// The reason at the time of this decision (compared by its form only: its numbers are live).
    #[serde(default)]
    pub reason: String,
    /// When this decision was first made (RFC 3339; not compared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
}

impl Status {
    /// A bad annotation: nothing is evaluated until it changes.
    pub fn invalid(error: String) -> Self {
        Self {
            action: "invalid".into(),
            current: None,
            desired: None,
            proposal: None,
            mode: None,
            error: Some(error),
            policies: Vec::new(),
            reason: String::new(),
            since: None,
        }
    }

    /// Parse a persisted status (None if absent or not ours).
    pub fn parse(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The same decision: the same fields, and a reason of the same form (its numbers
    /// aside: a new rule in the reason, such as a lag hold, is news; a new load is not).
    pub fn same_decision(&self, other: &Status) -> bool {
        self.action == other.action
            && reason_form(&self.reason) == reason_form(&other.reason)
            && self.current == other.current
            && self.desired == other.desired
            && self.proposal == other.proposal
            && self.mode == other.mode
            && self.error == other.error
            && self.policies == other.policies
    }

    fn failing(&self) -> bool {
        self.error.is_some() && self.action != "invalid"
    }
}

/// `reason` with every number (digits, with a decimal point between digits) as `#`.
fn reason_form(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len());
    let mut chars = reason.chars().peekable();
    while let Some(c) = chars.next() {
        if !c.is_ascii_digit() {
            out.push(c);
            continue;
        }
        while let Some(&n) = chars.peek() {
            if n.is_ascii_digit() {
                chars.next();
            } else if n == '.' {
                let mut ahead = chars.clone();
                ahead.next();
                if !ahead.peek().is_some_and(char::is_ascii_digit) {
                    break;
                }
                chars.next();
            } else {
                break;
            }
        }
        out.push('#');
    }
    out
}

/// Events for the change from `old` (the last recorded decision, if any) to `new`.
/// `Scaled` is not here: the actuation step publishes it after the write succeeded.
pub fn transitions(old: Option<&Status>, new: &Status) -> Vec<Notice> {
    let mut out = Vec::new();
    let was_failing = old.is_some_and(Status::failing);
    if new.failing() {
        if old.and_then(|o| o.error.as_ref()) != new.error.as_ref() || !was_failing {
            out.push(Notice::warning(
                "EvaluationFailed",
                "Evaluate",
                new.reason.clone(),
            ));
        }
    } else if was_failing && new.action != "invalid" {
        out.push(Notice::normal(
            "EvaluationRecovered",
            "Evaluate",
            format!("policies answer again: {}", new.reason),
        ));
    }
    let moved = |o: &Status| o.action != new.action || o.desired != new.desired || o.proposal != new.proposal;
    let changed = old.is_none_or(moved);
    if new.action == "shadow" && changed {
        let (from, to) = (new.current.unwrap_or(0), new.desired.unwrap_or(0));
        out.push(Notice::normal(
            "ShadowDecision",
            "Evaluate",
            format!("shadow mode: would scale from {from} to {to}: {}", new.reason),
        ));
    }
    if new.action == "paused"
        && let (Some(p), Some(c)) = (new.proposal, new.current)
        && p != c
        && (changed || old.is_some_and(|o| o.current != new.current))
    {
        out.push(Notice::normal(
            "ScalingPaused",
            "Evaluate",
            format!("paused: policy proposed {p}, holding at {c}"),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(action: &str, current: u32, desired: u32, proposal: Option<u32>, error: Option<&str>) -> Status {
        Status {
            action: action.into(),
            current: Some(current),
            desired: Some(desired),
            proposal,
            mode: Some("active".into()),
            error: error.map(String::from),
            policies: Vec::new(),
            reason: format!("live {}", proposal.unwrap_or(0)),
            since: None,
        }
    }

    #[test]
    fn live_numbers_in_the_reason_are_not_a_new_decision() {
        let mut a = st("hold", 5, 5, Some(5), None);
        a.reason = "hpa: load: 410.0 total, 82.0/replica vs target 100 -> 5 replicas".into();
        let mut b = a.clone();
        b.reason = "hpa: load: 431.5 total, 86.3/replica vs target 100 -> 5 replicas".into();
        b.since = Some("2026-01-01T00:00:00Z".into());
        assert!(a.same_decision(&b));
        let mut c = b.clone();
        c.reason = "stateful: holding at 5: replica lag 30.0 s > 5 s".into();
        assert!(!c.same_decision(&b), "a new rule in the reason is news");
        assert_eq!(
            reason_form("cron: in 14.6s (3 failed in a row)."),
            "cron: in #s (# failed in a row)."
        );
        a.proposal = Some(6);
        assert!(!a.same_decision(&b));
        let text = b.to_json();
        assert_eq!(Status::parse(&text), Some(b));
    }

    #[test]
    fn failure_is_told_once_and_the_recovery_once() {
        let ok = st("hold", 1, 1, Some(1), None);
        let f1 = st("failed", 1, 1, None, Some("hpa: missing signal"));
        let names = |v: Vec<Notice>| v.into_iter().map(|n| n.reason).collect::<Vec<_>>();
        assert_eq!(names(transitions(Some(&ok), &f1)), ["EvaluationFailed"]);
        assert_eq!(names(transitions(None, &f1)), ["EvaluationFailed"]);
        let mut f2 = f1.clone();
        f2.reason = "2 failed in a row".into();
        assert!(transitions(Some(&f1), &f2).is_empty());
        let other = st("failed", 1, 1, None, Some("hpa: trap"));
        assert_eq!(names(transitions(Some(&f1), &other)), ["EvaluationFailed"]);
        assert_eq!(names(transitions(Some(&f1), &ok)), ["EvaluationRecovered"]);
        assert!(transitions(Some(&ok), &ok).is_empty());
    }

    #[test]
    fn shadow_and_paused_proposals_are_told_when_they_change() {
        let s1 = st("shadow", 2, 8, Some(8), None);
        assert_eq!(transitions(None, &s1).len(), 1);
        assert!(transitions(Some(&s1), &s1).is_empty());
        let s2 = st("shadow", 2, 9, Some(9), None);
        assert!(transitions(Some(&s1), &s2)[0].note.contains("from 2 to 9"));
        let p1 = st("paused", 3, 3, Some(8), None);
        assert_eq!(transitions(Some(&s1), &p1)[0].reason, "ScalingPaused");
        assert!(transitions(Some(&p1), &p1).is_empty());
        let p2 = st("paused", 3, 3, Some(9), None);
        assert!(
            transitions(Some(&p1), &p2)[0]
                .note
                .contains("proposed 9, holding at 3")
        );
        assert!(transitions(Some(&p1), &st("paused", 3, 3, Some(3), None)).is_empty());
    }
}
