//! A policy ready to run: its component checked against the world, one `InstancePre`
//! (imports resolved once), its `describe()` answer, its digest and limits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};
use wasmscaler_sdk::{Context, Decision, PolicyInfo};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::artifact_cache::{ArtifactCache, Origin};
use super::bindings::{SUPPORTED, v0_1_0 as v1};
use super::errors::{EvalError, LoadError};
use super::history::HistorySource;
use super::sandbox::{self, HostState, Limits};

/// Hex sha256 of a wasm file.
pub fn digest_of(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub struct LoadedPolicy {
    /// Name it was loaded under (built-in name or file name).
    pub name: String,
    pub digest: String,
    pub size_bytes: usize,
    /// The WIT package the component was built against.
    pub contract: &'static str,
    pub info: PolicyInfo,
    pub limits: Limits,
    /// How the component was obtained and how long that took.
    pub origin: Origin,
    pub load_time: Duration,
    engine: Arc<Engine>,
    pre: v1::PolicyPre<HostState>,
    log_target: Arc<str>,
}

impl std::fmt::Debug for LoadedPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPolicy")
            .field("name", &self.name)
            .field("digest", &self.digest)
            .finish()
    }
}

impl LoadedPolicy {
    pub(super) fn load(
        engine: &Arc<Engine>,
        linker: &wasmtime::component::Linker<HostState>,
        cache: &ArtifactCache,
        name: &str,
        wasm: &[u8],
        limits: Limits,
    ) -> Result<Self, LoadError> {
        let started = Instant::now();
        let source_name = name.to_string();
        if !wasm.starts_with(b"\0asm") {
            return Err(LoadError::NotAComponent {
                source_name,
                detail: "no WebAssembly magic header".into(),
            });
        }
        let digest = digest_of(wasm);
        let (component, origin) =
            cache
                .get_or_compile(engine, &digest, wasm)
                .map_err(|e| LoadError::NotAComponent {
                    source_name: source_name.clone(),
                    detail: format!("{e:#}"),
                })?;
        let contract = check_world(engine, &component).map_err(|detail| LoadError::WrongWorld {
            source_name: source_name.clone(),
            detail,
        })?;
        let instance_pre = linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::WrongWorld {
                source_name: source_name.clone(),
                detail: format!("{e:#}"),
            })?;
        let pre = v1::PolicyPre::new(instance_pre).map_err(|e| LoadError::WrongWorld {
            source_name: source_name.clone(),
            detail: format!("{e:#}"),
        })?;
        let mut policy = Self {
            name: name.to_string(),
            digest,
            size_bytes: wasm.len(),
            contract,
            info: PolicyInfo::new(name, "", ""),
            limits,
            origin,
            load_time: Duration::ZERO,
            engine: engine.clone(),
            pre,
            log_target: Arc::from(name),
        };
        policy.info = policy.describe().map_err(|e| LoadError::Describe {
            source_name: source_name.clone(),
            source: Box::new(e),
        })?;
        policy.log_target = Arc::from(format!("{}@{}", policy.info.name, &policy.digest[..12]));
        policy.load_time = started.elapsed();
        Ok(policy)
    }

    /// The same policy with other limits (e.g. a longer deadline for forecasting).
    pub fn with_limits(&self, limits: Limits) -> Self {
        Self {
            name: self.name.clone(),
            digest: self.digest.clone(),
            size_bytes: self.size_bytes,
            contract: self.contract,
            info: self.info.clone(),
            limits,
            origin: self.origin,
            load_time: self.load_time,
            engine: self.engine.clone(),
            pre: self.pre.clone(),
            log_target: self.log_target.clone(),
        }
    }

    /// A fresh Store with this policy instantiated in it, and when the call started (the
    /// backstop and any error's elapsed time count from here; instantiation burns fuel
    /// of the call's budget too).
    fn instantiate(
        &self,
        now_ms: i64,
        history: Option<Arc<dyn HistorySource>>,
    ) -> Result<(wasmtime::Store<HostState>, v1::Policy, Instant), EvalError> {
        let started = Instant::now();
        let mut store = sandbox::new_store(
            &self.engine,
            self.limits,
            now_ms,
            history,
            self.log_target.clone(),
        );
        let instance = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| setup_error(e, &store, self.limits, started))?;
        Ok((store, instance, started))
    }

    /// Run `describe()` in a fresh sandbox.
    pub fn describe(&self) -> Result<PolicyInfo, EvalError> {
        let (mut store, instance, started) = self.instantiate(0, None)?;
        let info = instance
            .call_describe(&mut store)
            .map_err(|e| sandbox::classify(e, &store, self.limits, started))?;
        Ok(sandbox::from_wit_info(info))
    }

    /// Run `validate-config(config)` in a fresh sandbox.
    pub fn validate_config(&self, config_json: &str) -> Result<(), EvalError> {
        let (mut store, instance, started) = self.instantiate(0, None)?;
        instance
            .call_validate_config(&mut store, config_json)
            .map_err(|e| sandbox::classify(e, &store, self.limits, started))?
            .map_err(|e| EvalError::Policy(sandbox::from_wit_error(e)))
    }

    /// Evaluate in a fresh Store: nothing survives the call but the returned decision
    /// (and its state), so no state leaks between workloads or evaluations.
    pub fn evaluate(
        &self,
        ctx: &Context,
        history: Option<Arc<dyn HistorySource>>,
    ) -> Result<Decision, EvalError> {
        self.evaluate_metered(ctx, history).0
    }

    /// `evaluate`, and the fuel the call burned (instantiation included): the cost of a
    /// call as the budget counts it, the same on every machine.
    pub fn evaluate_metered(
        &self,
        ctx: &Context,
        history: Option<Arc<dyn HistorySource>>,
    ) -> (Result<Decision, EvalError>, u64) {
        let (mut store, instance, started) = match self.instantiate(ctx.now_ms, history) {
            Ok(x) => x,
            Err(e) => return (Err(e), 0),
        };
        let result = call_evaluate(&instance, &mut store, ctx, self.limits, started);
        (result, sandbox::fuel_used(&store, self.limits))
    }

    /// An instance kept alive for one workload: ~5x cheaper per call than a fresh Store,
    /// at the price of the guest's heap surviving between calls. Discarded after any error.
    pub fn reusable(&self) -> Result<ReusableInstance, EvalError> {
        let (store, instance, _) = self.instantiate(0, None)?;
        Ok(ReusableInstance {
            store,
            instance,
            limits: self.limits,
            poisoned: false,
        })
    }
}

fn call_evaluate(
    instance: &v1::Policy,
    store: &mut wasmtime::Store<HostState>,
    ctx: &Context,
    limits: Limits,
    started: Instant,
) -> Result<Decision, EvalError> {
    let wit_ctx = sandbox::to_wit_context(ctx);
    let answer = instance
        .call_evaluate(&mut *store, &wit_ctx)
        .map_err(|e| sandbox::classify(e, store, limits, started))?;
    let decision =
        sandbox::from_wit_decision(answer.map_err(|e| EvalError::Policy(sandbox::from_wit_error(e)))?);
    sandbox::check_decision(ctx, &decision)?;
    Ok(decision)
}

fn setup_error(
    e: wasmtime::Error,
    store: &wasmtime::Store<HostState>,
    limits: Limits,
    started: Instant,
) -> EvalError {
    // A start function that traps (a `wasmtime::Trap` in the error) or grows memory past
    // the cap (`classify` sees the limiter's refusal) is the policy's fault; anything else
    // (pool exhausted) is the host's.
    let guest_fault = e.downcast_ref::<wasmtime::Trap>().is_some();
    match sandbox::classify(e, store, limits, started) {
        EvalError::Trap(msg) if !guest_fault => EvalError::Setup(msg),
        other => other,
    }
}

/// See [`LoadedPolicy::reusable`].
pub struct ReusableInstance {
    store: wasmtime::Store<HostState>,
    instance: v1::Policy,
    limits: Limits,
    poisoned: bool,
}

impl ReusableInstance {
    /// Evaluate on the kept instance. After a trap the instance must not be re-entered:
    /// it is marked poisoned and every later call fails until it is replaced.
    pub fn evaluate(
        &mut self,
        ctx: &Context,
        history: Option<Arc<dyn HistorySource>>,
    ) -> Result<Decision, EvalError> {
        if self.poisoned {
            return Err(EvalError::Setup(
                "instance was discarded after an earlier trap".into(),
            ));
        }
        let started = Instant::now();
        sandbox::prepare_reuse(&mut self.store, self.limits, history);
        let out = call_evaluate(&self.instance, &mut self.store, ctx, self.limits, started);
        if matches!(
            out,
            Err(EvalError::Trap(_)
                | EvalError::Budget { .. }
                | EvalError::Deadline { .. }
                | EvalError::MemoryLimit { .. })
        ) {
            self.poisoned = true;
        }
        out
    }

    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }
}

/// Check the component's imports and exports against the worlds this host supports,
/// naming exactly what is missing or foreign. Returns the contract version it matches.
fn check_world(engine: &Engine, component: &Component) -> Result<&'static str, String> {
    let ty = component.component_type();
    let mut foreign = Vec::new();
    let mut policy_versions = Vec::new();
    for (name, _) in ty.imports(engine) {
        if let Some(rest) = name.strip_prefix("wasmscaler:policy/") {
            let version = rest.split_once('@').map(|(_, v)| v).unwrap_or("(unversioned)");
            policy_versions.push(format!("wasmscaler:policy@{version}"));
        } else if !name.starts_with("wasi:") {
            foreign.push(name.to_string());
        }
    }
    if !foreign.is_empty() {
        return Err(format!(
            "imports {} which this host does not provide (a policy may import only wasmscaler:policy and wasi:*)",
            foreign.join(", ")
        ));
    }
    policy_versions.sort();
    policy_versions.dedup();
    let contract = match policy_versions.as_slice() {
        [] => SUPPORTED[0],
        [one] => SUPPORTED
            .iter()
            .copied()
            .find(|s| s == one)
            .ok_or_else(|| format!("built against {one}; this host supports {}", SUPPORTED.join(", ")))?,
        many => return Err(format!("imports several contract versions: {}", many.join(", "))),
    };
    let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
    let missing: Vec<&str> = ["describe", "validate-config", "evaluate"]
        .into_iter()
        .filter(|e| !exports.iter().any(|x| x == e))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "does not export {} (world `policy` of {contract}); it exports [{}]",
            missing.join(", "),
            exports.join(", ")
        ));
    }
    Ok(contract)
}
