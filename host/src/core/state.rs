//! What the host remembers per workload between evaluations: each policy's opaque state
//! and the guardrails' history. Serialized by the adapter (an annotation in the cluster,
//! memory in the simulator) so a controller restart continues where it left off.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::guardrails::GuardState;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadState {
    /// Policy key (built-in name or file name) -> state bytes: persisted as the JSON
    /// itself when they are JSON (what SDK policies store), else base64 (see
    /// [`state_bytes`]); hex from earlier versions is still read.
    #[serde(default, with = "state_bytes")]
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

/// How opaque policy state is written into the JSON of the annotation, compactly: a
/// state that is JSON text (byte for byte) is embedded as `{"json": ...}` (1x), anything
/// else as `{"b64": "..."}` (1.33x). A plain string is the hex of earlier versions (2x).
pub(crate) mod state_bytes {
    use std::collections::BTreeMap;

    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::value::RawValue;

    /// Written form; read back by [`load`] (an untagged enum cannot hold a `RawValue`).
    #[derive(Serialize)]
    #[serde(untagged)]
    pub(crate) enum Stored {
        Json { json: Box<RawValue> },
        Base64 { b64: String },
    }

    /// One line of JSON text is embedded; a line break would split a decision-log line.
    pub(crate) fn store(bytes: &[u8]) -> Stored {
        let raw = std::str::from_utf8(bytes)
            .ok()
            .filter(|text| !text.contains(['\n', '\r']))
            .and_then(|text| RawValue::from_string(text.to_string()).ok())
            .filter(|raw| raw.get().as_bytes() == bytes);
        match raw {
            Some(json) => Stored::Json { json },
            None => Stored::Base64 {
                b64: STANDARD.encode(bytes),
            },
        }
    }

    pub(crate) fn load(stored: &RawValue) -> Result<Vec<u8>, String> {
        if let Ok(hex_text) = serde_json::from_str::<String>(stored.get()) {
            return hex::decode(hex_text).map_err(|e| format!("hex state: {e}"));
        }
        // A map of raw values, not Option fields: a state that is JSON `null` is
        // `{"json": null}`, which an Option would read as absent.
        let mut m: BTreeMap<String, Box<RawValue>> =
            serde_json::from_str(stored.get()).map_err(|e| e.to_string())?;
        match (m.remove("json"), m.remove("b64"), m.is_empty()) {
            (Some(json), None, true) => Ok(json.get().as_bytes().to_vec()),
            (None, Some(b64), true) => {
                let b64: String =
                    serde_json::from_str(b64.get()).map_err(|e| format!("base64 state: {e}"))?;
                STANDARD.decode(b64).map_err(|e| format!("base64 state: {e}"))
            }
            _ => Err("a policy state is {\"json\": ...} or {\"b64\": \"...\"}".into()),
        }
    }

    pub fn serialize<S: Serializer>(m: &BTreeMap<String, Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(m.iter().map(|(k, v)| (k, store(v))))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Vec<u8>>, D::Error> {
        let m = BTreeMap::<String, Box<RawValue>>::deserialize(d)?;
        m.into_iter()
            .map(|(k, v)| load(&v).map(|b| (k, b)).map_err(serde::de::Error::custom))
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
    fn json_states_are_embedded_others_base64_and_old_hex_still_reads() {
        let mut s = WorkloadState::default();
        let json = br#"{"window":[1.5,2.25],"at":1733150000000}"#.to_vec();
        let spaced = b" {\"a\": 1} ".to_vec();
        let binary = vec![0u8, 159, 146, 150, 255];
        s.policies.insert("knative".into(), json.clone());
        s.policies.insert("spaced".into(), spaced.clone());
        s.policies.insert("bin".into(), binary.clone());
        // What the hpa policy stores.
        s.policies.insert("null".into(), b"null".to_vec());
        let text = s.to_json();
        assert!(
            text.contains(r#""knative":{"json":{"window":[1.5,2.25],"at":1733150000000}}"#),
            "{text}"
        );
        assert!(text.contains(r#""bin":{"b64":"AJ+Slv8="}"#), "{text}");
        let (back, warn) = WorkloadState::from_json(&text);
        assert!(warn.is_none(), "{warn:?}");
        assert_eq!(back.policies["knative"], json);
        assert_eq!(
            back.policies["spaced"], spaced,
            "not JSON byte for byte: kept exactly"
        );
        assert_eq!(back.policies["bin"], binary);
        assert_eq!(back.policies["null"], b"null".to_vec());
        // What an earlier version wrote.
        let (old, warn) = WorkloadState::from_json(r#"{"policies":{"cron":"7b7d"}}"#);
        assert!(warn.is_none(), "{warn:?}");
        assert_eq!(old.policies["cron"], b"{}".to_vec());
        // The JSON form is about half the hex one.
        let hex_len = json.len() * 2;
        assert!(text.len() < hex_len + 200, "{}", text.len());
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
