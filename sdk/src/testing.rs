//! Native test harness: build a [`Context`], evaluate a [`Policy`] through the same glue
//! the component uses (config parsing, validation, state round-trip), and carry state from
//! one tick to the next with [`Harness`].

use crate::host::LogLevel;
use crate::policy::{self, Policy};
use crate::types::{Context, Decision, PolicyError, Sample, Signal, Workload};

/// Run `validate-config` natively.
pub fn validate<P: Policy>(config_json: &str) -> Result<(), PolicyError> {
    policy::validate_config::<P>(config_json).map(|_| ())
}

/// Run `evaluate` natively, exactly as the component would.
pub fn evaluate<P: Policy>(ctx: &Context) -> Result<Decision, PolicyError> {
    policy::evaluate::<P>(ctx)
}

/// Builds a [`Context`] for tests. Defaults: `now` = 2026-01-01T00:00:00Z, a Deployment
/// `default/app` with 1 replica (1 ready), bounds 1..=100, config `{}`, no signals.
#[derive(Debug, Clone)]
pub struct ContextBuilder {
    ctx: Context,
}

impl Default for ContextBuilder {
    fn default() -> Self {
        Self::new()
    }
}

/// 2026-01-01T00:00:00Z in milliseconds.
pub const DEFAULT_NOW_MS: i64 = 1_767_225_600_000;

impl ContextBuilder {
    pub fn new() -> Self {
        Self {
            ctx: Context {
                now_ms: DEFAULT_NOW_MS,
                workload: Workload::default(),
                config: "{}".into(),
                signals: Vec::new(),
                state: None,
            },
        }
    }
    pub fn now_ms(mut self, now_ms: i64) -> Self {
        self.ctx.now_ms = now_ms;
        self
    }
    pub fn replicas(mut self, replicas: u32, ready: u32) -> Self {
        self.ctx.workload.replicas = replicas;
        self.ctx.workload.ready_replicas = ready;
        self
    }
    pub fn bounds(mut self, min: u32, max: u32) -> Self {
        self.ctx.workload.min_replicas = min;
        self.ctx.workload.max_replicas = max;
        self
    }
    pub fn workload(mut self, workload: Workload) -> Self {
        self.ctx.workload = workload;
        self
    }
    pub fn config(mut self, json: impl Into<String>) -> Self {
        self.ctx.config = json.into();
        self
    }
    /// A signal with one sample taken at `now`.
    pub fn latest(self, name: &str, value: f64) -> Self {
        let now = self.ctx.now_ms;
        self.series(name, &[(now, value)])
    }
    /// A signal from `(at_ms, value)` pairs.
    pub fn series(mut self, name: &str, samples: &[(i64, f64)]) -> Self {
        self.ctx.signals.retain(|s| s.name != name);
        self.ctx.signals.push(Signal {
            name: name.into(),
            samples: samples
                .iter()
                .map(|&(at_ms, value)| Sample { at_ms, value })
                .collect(),
        });
        self
    }
    pub fn state(mut self, state: Option<Vec<u8>>) -> Self {
        self.ctx.state = state;
        self
    }
    pub fn build(self) -> Context {
        self.ctx
    }
}

/// Evaluates one policy tick after tick for one workload, handing each decision's state to
/// the next call, as the host does.
pub struct Harness<P: Policy> {
    state: Option<Vec<u8>>,
    _p: std::marker::PhantomData<P>,
}

impl<P: Policy> Default for Harness<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Policy> Harness<P> {
    pub fn new() -> Self {
        Self {
            state: None,
            _p: std::marker::PhantomData,
        }
    }
    /// Evaluate `ctx` with the state left by the previous tick (any state in `ctx` is
    /// replaced). The state is kept only when the call succeeds, as the host does.
    pub fn tick(&mut self, mut ctx: Context) -> Result<Decision, PolicyError> {
        ctx.state = self.state.clone();
        let d = evaluate::<P>(&ctx)?;
        self.state = d.state.clone();
        Ok(d)
    }
    /// The typed state after the last successful tick.
    pub fn state(&self) -> P::State {
        policy::decode_state::<P::State>(self.state.as_deref()).0
    }
}

/// Make `history(signal, ..)` answer with `samples` (filtered to the asked window relative
/// to the newest sample is up to the policy; the harness returns them as given).
pub fn set_history(signal: &str, samples: Vec<Sample>) {
    fixtures::set_history(signal, samples);
}

/// Take the log lines written by the policy on this thread so far.
pub fn take_logs() -> Vec<(LogLevel, String)> {
    fixtures::take_logs()
}

pub(crate) mod fixtures {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

    thread_local! {
        static HISTORY: RefCell<HashMap<String, Vec<Sample>>> = RefCell::new(HashMap::new());
        static LOGS: RefCell<Vec<(LogLevel, String)>> = const { RefCell::new(Vec::new()) };
    }

    pub fn set_history(signal: &str, samples: Vec<Sample>) {
        HISTORY.with(|h| h.borrow_mut().insert(signal.to_string(), samples));
    }

    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub fn history(signal: &str, _window_ms: u64, _step_ms: u64) -> Result<Vec<Sample>, String> {
        HISTORY.with(|h| {
            h.borrow()
                .get(signal)
                .cloned()
                .ok_or_else(|| format!("no history source for signal '{signal}'"))
        })
    }

    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub fn push_log(level: LogLevel, message: &str) {
        LOGS.with(|l| l.borrow_mut().push((level, message.to_string())));
    }

    pub fn take_logs() -> Vec<(LogLevel, String)> {
        LOGS.with(|l| std::mem::take(&mut *l.borrow_mut()))
    }
}

/// A recorded sequence of evaluations with expectations, stored as JSON next to a policy
/// (`policies/<name>/scenarios/*.json`). The same file is checked natively by the policy's
/// own tests and through the sandbox by the host's integration tests, so "same answers as
/// native" is tested, not assumed.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Scenario {
    pub description: String,
    /// The policy configuration (any JSON value; handed over as JSON text).
    #[serde(default = "empty_object")]
    pub config: serde_json::Value,
    pub ticks: Vec<Tick>,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

/// One evaluation. State is carried from tick to tick, as the host does.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Tick {
    pub now_ms: i64,
    #[serde(default)]
    pub workload: Workload,
    /// Signal name -> `[[at_ms, value], ...]`, oldest first.
    #[serde(default)]
    pub signals: std::collections::BTreeMap<String, Vec<(i64, f64)>>,
    /// Signal name -> samples that `host::history` answers with.
    #[serde(default)]
    pub history: std::collections::BTreeMap<String, Vec<(i64, f64)>>,
    pub expect: Expect,
}

/// What to check of a tick's decision; absent fields are not checked.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Expect {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Vec<crate::types::PoolReplicas>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recheck_after_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_contains: Option<String>,
    /// Expect an error whose message contains this text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_contains: Option<String>,
}

impl Tick {
    /// The context of this tick, without state.
    pub fn context(&self, config_json: &str) -> Context {
        Context {
            now_ms: self.now_ms,
            workload: self.workload.clone(),
            config: config_json.to_string(),
            signals: self
                .signals
                .iter()
                .map(|(name, samples)| Signal {
                    name: name.clone(),
                    samples: samples
                        .iter()
                        .map(|&(at_ms, value)| Sample { at_ms, value })
                        .collect(),
                })
                .collect(),
            state: None,
        }
    }

    /// History fixtures as samples.
    pub fn history_samples(&self) -> Vec<(String, Vec<Sample>)> {
        self.history
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.iter().map(|&(at_ms, value)| Sample { at_ms, value }).collect(),
                )
            })
            .collect()
    }
}

impl Scenario {
    /// Load a scenario file; the error names the file and the JSON path.
    pub fn load(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let de = &mut serde_json::Deserializer::from_str(&text);
        serde_path_to_error::deserialize(de)
            .map_err(|e| format!("{}: at '{}': {}", path.display(), e.path(), e.inner()))
    }

    /// Run every tick through `eval` (which receives the context, with the previous
    /// state, and the tick's history fixtures) and check the expectations. Returns every
    /// decision, or the first mismatch described in full.
    pub fn check<E>(&self, mut eval: E) -> Result<Vec<Result<Decision, PolicyError>>, String>
    where
        E: FnMut(&Context, &[(String, Vec<Sample>)]) -> Result<Decision, PolicyError>,
    {
        let config = self.config.to_string();
        let mut state: Option<Vec<u8>> = None;
        let mut out = Vec::new();
        for (i, tick) in self.ticks.iter().enumerate() {
            let mut ctx = tick.context(&config);
            ctx.state = state.clone();
            let got = eval(&ctx, &tick.history_samples());
            let e = &tick.expect;
            let fail = |what: String| {
                format!(
                    "{}: tick {i} (nowMs {}): {what}; got {got:?}",
                    self.description, tick.now_ms
                )
            };
            match (&got, &e.error_contains) {
                (Err(err), Some(needle)) if err.to_string().contains(needle.as_str()) => {}
                (Err(_), _) => return Err(fail("unexpected error".into())),
                (Ok(_), Some(needle)) => {
                    return Err(fail(format!("expected an error containing '{needle}'")));
                }
                (Ok(d), None) => {
                    if let Some(r) = e.replicas
                        && d.replicas != r
                    {
                        return Err(fail(format!("expected replicas {r}")));
                    }
                    if e.jobs.is_some() && d.jobs != e.jobs {
                        return Err(fail(format!("expected jobs {:?}", e.jobs)));
                    }
                    if let Some(p) = &e.placement
                        && &d.placement != p
                    {
                        return Err(fail(format!("expected placement {p:?}")));
                    }
                    if e.recheck_after_ms.is_some() && d.recheck_after_ms != e.recheck_after_ms {
                        return Err(fail(format!("expected recheckAfterMs {:?}", e.recheck_after_ms)));
                    }
                    if let Some(needle) = &e.reason_contains
                        && !d.reason.contains(needle.as_str())
                    {
                        return Err(fail(format!("expected reason containing '{needle}'")));
                    }
                    state = d.state.clone();
                }
            }
            out.push(got);
        }
        Ok(out)
    }
}

/// Check every `*.json` scenario in `dir` natively against policy `P`. Panics with the
/// first mismatch (for use in `#[test]`s). Returns how many scenarios ran.
pub fn check_scenarios<P: Policy>(dir: impl AsRef<std::path::Path>) -> usize {
    let dir = dir.as_ref();
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    for p in &paths {
        let s = Scenario::load(p).unwrap_or_else(|e| panic!("{e}"));
        s.check(|ctx, history| {
            for (name, samples) in history {
                set_history(name, samples.clone());
            }
            evaluate::<P>(ctx)
        })
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }
    paths.len()
}
