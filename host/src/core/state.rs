//! What the host remembers per workload between evaluations: each policy's opaque state
//! and the guardrails' history. Serialized by the adapter (an annotation in the cluster,
//! memory in the simulator) so a controller restart continues where it left off.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::guardrails::GuardState;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadState {
    /// Policy key (built-in name or file name) -> state bytes (hex, to keep the JSON valid
    /// whatever the policy stores).
    #[serde(default, with = "hex_map")]
    pub policies: BTreeMap<String, Vec<u8>>,
    #[serde(default)]
    pub guard: GuardState,
}

impl WorkloadState {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The form compared to decide whether the state needs writing again (see
    /// [`GuardState::without_newest_time`]); what is written is [`Self::to_json`].
    pub fn persisted_form(&self) -> String {
        let form = Self {
            policies: self.policies.clone(),
            guard: self.guard.without_newest_time(),
        };
        form.to_json()
    }

    /// Parse persisted state; unreadable state starts fresh (and says why) rather than
    /// blocking the workload.
    pub fn from_json(text: &str) -> (Self, Option<String>) {
        match serde_json::from_str(text) {
            Ok(s) => (s, None),
            Err(e) => (
                Self::default(),
                Some(format!("persisted state unreadable ({e}); starting fresh")),
            ),
        }
    }
}

mod hex_map {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(m: &BTreeMap<String, Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(m.iter().map(|(k, v)| (k, hex::encode(v))))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Vec<u8>>, D::Error> {
        let m = BTreeMap::<String, String>::deserialize(d)?;
        m.into_iter()
            .map(|(k, v)| hex::decode(&v).map(|b| (k, b)).map_err(serde::de::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_decision_keeps_the_persisted_form() {
        let mut s = WorkloadState::default();
        s.guard.recommendations = vec![(1_000, 5), (2_000, 3)];
        let form = s.persisted_form();
        s.guard.recommendations[1].0 = 9_000;
        assert_eq!(s.persisted_form(), form, "only the newest time moved");
        s.guard.recommendations.push((10_000, 4));
        assert_ne!(s.persisted_form(), form);
        // Read back later, the newest recommendation counts as current until then.
        s.guard.resume(50_000);
        assert_eq!(s.guard.recommendations.last(), Some(&(50_000, 4)));
        assert_eq!(s.guard.recommendations[0], (1_000, 5));
    }

    #[test]
    fn round_trips_and_survives_garbage() {
        let mut s = WorkloadState::default();
        s.policies.insert("cron".into(), b"{\"x\":1}".to_vec());
        s.guard.consecutive_failures = 2;
        let (back, warn) = WorkloadState::from_json(&s.to_json());
        assert_eq!(back, s);
        assert!(warn.is_none());
        let (fresh, warn) = WorkloadState::from_json("{not json");
        assert_eq!(fresh, WorkloadState::default());
        assert!(warn.unwrap().contains("starting fresh"));
    }
}
