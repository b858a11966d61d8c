//! The decision log's line format, version [`SCHEMA_VERSION`]: one JSON object per
//! evaluation. Written the same way by every adapter (one signal encoding, one state
//! encoding), so `wasmscaler replay` reads a controller's and a simulator's logs alike.
//! The README's "Decision log" section documents each field.

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use wasmscaler_sdk::{Context, Decision, Metric, PoolReplicas, Sample, Signal, Workload};

use crate::core::evaluate::{Action, Outcome, PolicyRun};
use crate::core::history_record::HistoryAnswer;
use crate::core::state::state_bytes;

/// Bumped on any change an older reader would misread. Readers refuse newer lines rather
/// than guess; fields added later are optional, so a newer reader reads older lines.
pub const SCHEMA_VERSION: u32 = 1;

/// One evaluation of one workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// Schema version of this line.
    pub v: u32,
    /// The evaluation's time (ms since the Unix epoch; the simulated time in a simulation).
    pub at_ms: i64,
    /// `controller` or `simulator`.
    pub source: String,
    pub workload: WorkloadId,
    /// `active` or `shadow`.
    pub mode: String,
    /// Signals the host could not gather, as (name, why): replay applies the host's
    /// required-signal rule to them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signal_errors: Vec<(String, String)>,
    pub policies: Vec<PolicyEntry>,
    pub outcome: OutcomeEntry,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadId {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

/// One policy's call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyEntry {
    /// The reference the workload names (`cron`, `file:knative.wasm`).
    pub policy: String,
    /// `describe()`'s name and version.
    pub name: String,
    pub version: String,
    /// Hex sha256 of the component.
    pub digest: String,
    /// Exactly what the policy received.
    pub context: ContextEntry,
    /// False when the host did not call it (a required signal was missing).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub called: bool,
    /// The `history` import's answers during the call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEntry>,
    /// Its decision, or its error (exactly one is present).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<DecisionEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorEntry>,
    /// Wall time of the call (controller only: the simulator's log is byte-identical
    /// between runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<u64>,
    /// Fuel the call burned.
    pub fuel: u64,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// The policy's `context`, field for field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextEntry {
    pub now_ms: i64,
    pub workload: Workload,
    /// The config JSON text: `{"json": ...}` when it is one line of JSON, else `{"b64"}`.
    pub config: Opaque,
    /// Name -> `[[atMs, value], ...]`, in the order the policy got them.
    pub signals: Signals,
    /// The state the policy was handed (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_in: Option<Opaque>,
}

impl ContextEntry {
    pub fn of(ctx: &Context) -> Self {
        Self {
            now_ms: ctx.now_ms,
            workload: ctx.workload.clone(),
            config: Opaque(ctx.config.as_bytes().to_vec()),
            signals: Signals(ctx.signals.clone()),
            state_in: ctx.state.clone().map(Opaque),
        }
    }

    /// The context to hand a policy again; fails only on a config that is not UTF-8.
    pub fn to_context(&self) -> Result<Context, String> {
        Ok(Context {
            now_ms: self.now_ms,
            workload: self.workload.clone(),
            config: String::from_utf8(self.config.0.clone())
                .map_err(|_| "config is not UTF-8 text".to_string())?,
            signals: self.signals.0.clone(),
            state: self.state_in.as_ref().map(|o| o.0.clone()),
        })
    }
}

/// One `history(signal, window, step)` call: its samples or its error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    pub signal: String,
    pub window_ms: u64,
    pub step_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<SampleList>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl HistoryEntry {
    fn of(a: &HistoryAnswer) -> Self {
        let (samples, error) = match &a.answer {
            Ok(s) => (Some(SampleList(s.clone())), None),
            Err(e) => (None, Some(e.clone())),
        };
        Self {
            signal: a.signal.clone(),
            window_ms: a.window_ms,
            step_ms: a.step_ms,
            samples,
            error,
        }
    }

    pub fn to_answer(&self) -> HistoryAnswer {
        HistoryAnswer {
            signal: self.signal.clone(),
            window_ms: self.window_ms,
            step_ms: self.step_ms,
            answer: match (&self.samples, &self.error) {
                (Some(s), _) => Ok(s.0.clone()),
                (None, Some(e)) => Err(e.clone()),
                (None, None) => Ok(Vec::new()),
            },
        }
    }
}

/// A policy's decision; its state as in the context (`stateOut`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DecisionEntry {
    pub replicas: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub placement: Vec<PoolReplicas>,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recheck_after_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_out: Option<Opaque>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<Metric>,
}

impl DecisionEntry {
    pub fn of(d: &Decision) -> Self {
        Self {
            replicas: d.replicas,
            jobs: d.jobs,
            placement: d.placement.clone(),
            reason: d.reason.clone(),
            recheck_after_ms: d.recheck_after_ms,
            state_out: d.state.clone().map(Opaque),
            metrics: d.metrics.clone(),
        }
    }
}

/// A failed call: the error's stable kind (the metric label) and its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorEntry {
    pub kind: String,
    pub message: String,
}

/// The composed outcome, after the guardrails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutcomeEntry {
    /// Replicas when evaluated.
    pub current: u32,
    /// The policies' composed proposal, before guardrails (absent: none answered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposal: Option<u32>,
    /// Replicas after guardrails.
    pub desired: u32,
    /// `scale`, `hold` or `shadow`.
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub placement: Vec<PoolReplicas>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub failed: bool,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Who wrote a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Controller,
    Simulator,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Controller => "controller",
            Source::Simulator => "simulator",
        }
    }
}

impl Record {
    /// The line for one evaluation. `with_latency`: the controller records wall times, the
    /// simulator does not (its log stays byte-identical between runs).
    pub fn of(
        source: Source,
        workload: WorkloadId,
        shadow: bool,
        signal_errors: &[(String, String)],
        outcome: &Outcome,
        current: u32,
        at_ms: i64,
    ) -> Self {
        let with_latency = source == Source::Controller;
        Self {
            v: SCHEMA_VERSION,
            at_ms,
            source: source.as_str().into(),
            workload,
            mode: if shadow { "shadow" } else { "active" }.into(),
            signal_errors: signal_errors.to_vec(),
            policies: outcome
                .runs
                .iter()
                .map(|r| PolicyEntry::of(r, with_latency))
                .collect(),
            outcome: OutcomeEntry {
                current,
                proposal: outcome.proposal,
                desired: outcome.desired,
                action: match outcome.action {
                    Action::Scale { .. } => "scale",
                    Action::Hold => "hold",
                    Action::Shadow { .. } => "shadow",
                }
                .into(),
                jobs: outcome.jobs,
                placement: outcome.placement.clone(),
                failed: outcome.failed,
                reason: outcome.reason.clone(),
                error: outcome.error.clone(),
            },
        }
    }

    /// One line, without its newline.
    pub fn to_line(&self) -> Vec<u8> {
        // Serializing these types cannot fail: every map key is a string, every float is
        // finite or written as a string (see [`Num`]).
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parse one line; the error says what is wrong (the reader adds file and line).
    pub fn from_line(line: &str) -> Result<Self, String> {
        match serde_json::from_str::<Record>(line) {
            Ok(r) if r.v > SCHEMA_VERSION => Err(newer(r.v)),
            Ok(r) => Ok(r),
            Err(e) => {
                #[derive(Deserialize)]
                struct Head {
                    v: u32,
                }
                match serde_json::from_str::<Head>(line) {
                    Ok(h) if h.v > SCHEMA_VERSION => Err(newer(h.v)),
                    _ => Err(format!("not a decision-log line (schema v{SCHEMA_VERSION}): {e}")),
                }
            }
        }
    }
}

fn newer(v: u32) -> String {
    format!(
        "schema version {v} is newer than this wasmscaler reads ({SCHEMA_VERSION}); use a newer wasmscaler"
    )
}

impl PolicyEntry {
    fn of(r: &PolicyRun, with_latency: bool) -> Self {
        let (decision, error) = match &r.result {
            Ok(d) => (Some(DecisionEntry::of(d)), None),
            Err(e) => (
                None,
                Some(ErrorEntry {
                    kind: e.kind().into(),
                    message: e.to_string(),
                }),
            ),
        };
        Self {
            policy: r.policy.clone(),
            name: r.name.clone(),
            version: r.version.clone(),
            digest: r.digest.clone(),
            context: ContextEntry::of(&r.context),
            called: r.called,
            history: r.history.iter().map(HistoryEntry::of).collect(),
            decision,
            error,
            latency_us: with_latency.then(|| u64::try_from(r.latency.as_micros()).unwrap_or(u64::MAX)),
            fuel: r.fuel,
        }
    }
}

/// Opaque bytes (a config, a state) inside JSON, in the host's one encoding (the state
/// annotation's): `{"json": ...}` when they are one line of JSON text byte for byte,
/// else `{"b64": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opaque(pub Vec<u8>);

impl Serialize for Opaque {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        state_bytes::store(&self.0).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Opaque {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        state_bytes::load(&raw).map(Opaque).map_err(de::Error::custom)
    }
}

/// Signals as a JSON object, name -> samples, keeping the order the policy got them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Signals(pub Vec<Signal>);

impl Serialize for Signals {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|sig| (&sig.name, SampleRef(&sig.samples))))
    }
}

impl<'de> Deserialize<'de> for Signals {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Signals;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of signal name -> [[atMs, value], ...]")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Signals, A::Error> {
                let mut out: Vec<Signal> = Vec::new();
                while let Some((name, samples)) = m.next_entry::<String, SampleList>()? {
                    if out.iter().any(|s| s.name == name) {
                        return Err(de::Error::custom(format!("signal '{name}' appears twice")));
                    }
                    out.push(Signal {
                        name,
                        samples: samples.0,
                    });
                }
                Ok(Signals(out))
            }
        }
        d.deserialize_map(V)
    }
}

struct SampleRef<'a>(&'a [Sample]);

impl Serialize for SampleRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|x| (x.at_ms, Num(x.value))))
    }
}

/// Samples as `[[atMs, value], ...]`: a third of the bytes of `{"atMs":..,"value":..}`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SampleList(pub Vec<Sample>);

impl Serialize for SampleList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        SampleRef(&self.0).serialize(s)
    }
}

impl<'de> Deserialize<'de> for SampleList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SampleList;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("[[atMs, value], ...]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SampleList, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some((at_ms, Num(value))) = seq.next_element::<(i64, Num)>()? {
                    out.push(Sample { at_ms, value });
                }
                Ok(SampleList(out))
            }
        }
        d.deserialize_seq(V)
    }
}

/// A sample value: a JSON number, or (JSON has none) `"NaN"`, `"+Inf"`, `"-Inf"` as
/// Prometheus writes them. A source may hand the host these; the sandbox drops them
/// before the policy sees them, the log keeps what the host had.
struct Num(f64);

impl Serialize for Num {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        if v.is_finite() {
            s.serialize_f64(v)
        } else if v.is_nan() {
            s.serialize_str("NaN")
        } else if v > 0.0 {
            s.serialize_str("+Inf")
        } else {
            s.serialize_str("-Inf")
        }
    }
}

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Num;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number, \"NaN\", \"+Inf\" or \"-Inf\"")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Num, E> {
                Ok(Num(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Num, E> {
                Ok(Num(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Num, E> {
                Ok(Num(v as f64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Num, E> {
                match v {
                    "NaN" => Ok(Num(f64::NAN)),
                    "+Inf" | "Inf" => Ok(Num(f64::INFINITY)),
                    "-Inf" => Ok(Num(f64::NEG_INFINITY)),
                    other => Err(E::custom(format!("'{other}' is not a sample value"))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_record() -> Record {
        let ctx = ContextEntry {
            now_ms: 1_733_150_000_000,
            workload: Workload::default(),
            config: Opaque(br#"{"target":10}"#.to_vec()),
            signals: Signals(vec![
                Signal {
                    name: "rps".into(),
                    samples: vec![
                        Sample::new(1, 1.5),
                        Sample::new(2, -0.0),
                        Sample::new(3, f64::NAN),
                    ],
                },
                Signal {
                    name: "a-later-name".into(),
                    samples: vec![Sample::new(4, 1e300), Sample::new(5, f64::NEG_INFINITY)],
                },
            ]),
            state_in: Some(Opaque(vec![0, 159, 10, 255])),
        };
        Record {
            v: SCHEMA_VERSION,
            at_ms: 1_733_150_000_000,
            source: "controller".into(),
            workload: WorkloadId {
                kind: "Deployment".into(),
                namespace: "default".into(),
                name: "web".into(),
                uid: Some("u-1".into()),
            },
            mode: "shadow".into(),
            signal_errors: vec![("queue".into(), "redis unreachable".into())],
            policies: vec![PolicyEntry {
                policy: "file:knative.wasm".into(),
                name: "knative-concurrency".into(),
                version: "0.1.0".into(),
                digest: "ab".repeat(32),
                context: ctx,
                called: true,
                history: vec![HistoryEntry {
                    signal: "rps".into(),
                    window_ms: 60_000,
                    step_ms: 1_000,
                    samples: Some(SampleList(vec![Sample::new(7, 0.1 + 0.2)])),
                    error: None,
                }],
                decision: Some(DecisionEntry {
                    replicas: 3,
                    jobs: None,
                    placement: vec![PoolReplicas {
                        pool: "spot".into(),
                        replicas: 3,
                    }],
                    reason: "line\nbreak \"quoted\"".into(),
                    recheck_after_ms: Some(2_000),
                    state_out: Some(Opaque(b"{\"a\":\n1}".to_vec())),
                    metrics: vec![Metric {
                        name: "m".into(),
                        value: 0.5,
                    }],
                }),
                error: None,
                latency_us: Some(42),
                fuel: 12_345,
            }],
            outcome: OutcomeEntry {
                current: 2,
                proposal: Some(3),
                desired: 3,
                action: "shadow".into(),
                jobs: None,
                placement: Vec::new(),
                failed: false,
                reason: "r".into(),
                error: None,
            },
        }
    }

    fn same(a: &Record, b: &Record) -> bool {
        // NaN != NaN: compare the lines, which are canonical.
        a.to_line() == b.to_line()
    }

    #[test]
    fn a_record_round_trips_through_one_line_byte_for_byte() {
        let r = sample_record();
        let line = r.to_line();
        assert!(
            !line.contains(&b'\n'),
            "one line: {}",
            String::from_utf8_lossy(&line)
        );
        let text = std::str::from_utf8(&line).unwrap();
        let back = Record::from_line(text).unwrap();
        assert!(same(&r, &back), "{text}");
        // Signal order survives (it is an object on the wire).
        let names: Vec<&str> = back.policies[0]
            .context
            .signals
            .0
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(names, ["rps", "a-later-name"]);
        let s = &back.policies[0].context.signals.0[0].samples;
        assert!(s[1].value == 0.0 && s[1].value.is_sign_negative());
        assert!(s[2].value.is_nan());
        assert_eq!(
            back.policies[0].history[0].samples.as_ref().unwrap().0[0].value,
            0.1 + 0.2
        );
        // The compact encodings.
        assert!(text.contains(r#""config":{"json":{"target":10}}"#), "{text}");
        assert!(text.contains(r#""rps":[[1,1.5],[2,-0.0],[3,"NaN"]]"#), "{text}");
        assert!(text.contains(r#""stateIn":{"b64":"#), "{text}");
        // A multi-line JSON state is not embedded (it would split the line).
        assert!(text.contains(r#""stateOut":{"b64":"#), "{text}");
        // The context handed over again is the recorded one.
        let ctx = back.policies[0].context.to_context().unwrap();
        assert_eq!(ctx.config, r#"{"target":10}"#);
        assert_eq!(ctx.state, Some(vec![0, 159, 10, 255]));
    }

    #[test]
    fn newer_schemas_and_garbage_are_refused_with_a_reason() {
        let mut r = sample_record();
        r.v = SCHEMA_VERSION + 1;
        let line = String::from_utf8(r.to_line()).unwrap();
        assert!(Record::from_line(&line).unwrap_err().contains("newer"), "{line}");
        let e = Record::from_line(r#"{"v":1,"atMs":"x"}"#).unwrap_err();
        assert!(e.contains("not a decision-log line"), "{e}");
        assert!(Record::from_line("{").is_err());
        let dup = r#"{"a":[[1,1]],"a":[[2,2]]}"#;
        assert!(
            serde_json::from_str::<Signals>(dup)
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// A small record at `at_ms` with this outcome reason.
    pub fn record_with(at_ms: i64, reason: &str) -> Record {
        Record {
            v: SCHEMA_VERSION,
            at_ms,
            source: "controller".into(),
            workload: WorkloadId {
                kind: "Deployment".into(),
                namespace: "default".into(),
                name: "web".into(),
                uid: None,
            },
            mode: "active".into(),
            signal_errors: Vec::new(),
            policies: Vec::new(),
            outcome: OutcomeEntry {
                current: 1,
                proposal: Some(1),
                desired: 1,
                action: "hold".into(),
                jobs: None,
                placement: Vec::new(),
                failed: false,
                reason: reason.into(),
                error: None,
            },
        }
    }
}
