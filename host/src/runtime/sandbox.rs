//! One evaluation in a sandbox: a fresh `Store` per call (or an opt-in reused instance),
//! a deterministic fuel budget with a wall-clock backstop, a memory cap, WASI linked with
//! nothing granted and deterministic clocks (sleeping returns at once) and randomness,
//! and the policy's output checked against the contract before anyone acts on it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmscaler_sdk::{Context, Decision, PolicyError, PolicyInfo, Sample};
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store, StoreLimits, Trap};
use wasmtime_wasi::{HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings::v0_1_0::{self as v1, wasmscaler::policy::types as wit};
use super::errors::{EvalError, RuntimeError};
use super::history::HistorySource;
use super::stderr_capture::StderrCapture;
use super::virtual_clock::{self, VirtualClock, VirtualClockView};

/// Fuel granted per millisecond of `Limits::deadline`: what a tight integer loop burns per
/// millisecond on the reference machine (2-core AMD EPYC; the standard policies burn 7-12
/// million, BENCHMARKS.md). The fastest code there reaches the budget at about the
/// deadline, so no call the old wall-clock deadline allowed on an idle reference machine
/// is refused, and whether a call fits no longer depends on how busy the machine is.
pub const FUEL_PER_MS: u64 = 16_000_000;
/// The wall-clock backstop is this many deadlines: it ends a call only when the machine
/// is far slower or busier than the reference, never a call the budget allows there.
pub const BACKSTOP_FACTOR: u32 = 10;

/// Per-policy sandbox limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The budget of one call as time on the reference machine (default 100 ms). It is
    /// enforced as fuel (`fuel()`), which counts the same on every machine, and by the
    /// wall clock only at `backstop()`.
    pub deadline: Duration,
    /// Cap on the sum of every linear memory in a Store (default 64 MiB).
    pub memory_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            deadline: Duration::from_millis(100),
            memory_bytes: 64 << 20,
        }
    }
}

impl Limits {
    /// The deterministic budget of one call.
    pub fn fuel(&self) -> u64 {
        u64::try_from(self.deadline.as_millis())
            .unwrap_or(u64::MAX)
            .saturating_mul(FUEL_PER_MS)
    }

    /// The wall-clock time after which a call is interrupted whatever fuel it has left.
    pub fn backstop(&self) -> Duration {
        self.deadline.saturating_mul(BACKSTOP_FACTOR)
    }
}

/// Largest state a policy may hand back, in bytes.
pub const MAX_STATE_BYTES: usize = 64 << 10;
/// Most log lines one call may write; the rest are dropped (and counted).
const MAX_LOG_LINES: u32 = 64;
/// Most samples one `history` answer carries.
pub const MAX_HISTORY_SAMPLES: usize = 20_000;
/// The fixed seed behind the guest's `wasi:random`: same inputs, same decision.
const RANDOM_SEED: u64 = 0x5CA1_AB1E_0000_0001;

/// The data a Store carries.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryCap,
    history: Option<Arc<dyn HistorySource>>,
    log_target: Arc<str>,
    logs_left: u32,
    stderr: StderrCapture,
    /// The guest's monotonic clock: virtual, moved only by waiting on it. It survives
    /// between the calls of a reused instance (monotonic means never backwards).
    clock: VirtualClock,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl v1::wasmscaler::policy::types::Host for HostState {}

impl v1::wasmscaler::policy::host::Host for HostState {
    fn log(&mut self, level: wit::LogLevel, message: String) {
        if self.logs_left == 0 {
            return;
        }
        self.logs_left -= 1;
        let policy = &*self.log_target;
        let message = truncate(&message, 1024);
        match level {
            wit::LogLevel::Trace => tracing::trace!(policy, "{message}"),
            wit::LogLevel::Debug => tracing::debug!(policy, "{message}"),
            wit::LogLevel::Info => tracing::info!(policy, "{message}"),
            wit::LogLevel::Warn => tracing::warn!(policy, "{message}"),
            wit::LogLevel::Error => tracing::error!(policy, "{message}"),
        }
    }

    fn history(&mut self, signal: String, window_ms: u64, step_ms: u64) -> Result<Vec<wit::Sample>, String> {
        let Some(source) = &self.history else {
            return Err(format!("no history source for signal '{signal}'"));
        };
        let mut samples = source.history(&signal, window_ms, step_ms)?;
        samples.retain(|s| s.value.is_finite());
        if samples.len() > MAX_HISTORY_SAMPLES {
            samples.drain(..samples.len() - MAX_HISTORY_SAMPLES);
        }
        Ok(samples
            .into_iter()
            .map(|s| wit::Sample {
                at_ms: s.at_ms,
                value: s.value,
            })
            .collect())
    }
}

/// Caps the sum of all linear memories of a Store (a component may define several, one
/// per core module) and remembers that it did, so the trap that follows is reported as a
/// memory-limit error rather than a generic trap.
struct MemoryCap {
    cap: usize,
    /// Bytes of every memory of the Store, as granted so far.
    total: usize,
    /// The growth granted last (current, desired), undone if wasmtime then fails it.
    pending: Option<(usize, usize)>,
    /// The total a refused growth would have reached.
    refused: Option<usize>,
    inner: StoreLimits,
}

impl MemoryCap {
    fn new(cap: usize) -> Self {
        Self {
            cap,
            total: 0,
            pending: None,
            refused: None,
            inner: StoreLimits::default(),
        }
    }
}

impl wasmtime::ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Called for every memory, at creation (current 0) and on each growth.
        let total = (self.total - current.min(self.total)).saturating_add(desired);
        if total > self.cap {
            self.refused = Some(total);
            return Err(wasmtime::format_err!(
                "memory limit of {} bytes exceeded (the Store's memories would total {total})",
                self.cap
            ));
        }
        self.total = total;
        self.pending = Some((current, desired));
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        if let Some((current, desired)) = self.pending.take() {
            self.total = (self.total - desired.min(self.total)).saturating_add(current);
        }
        Ok(())
    }
    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, max)
    }
}

/// Guests see the evaluation's `now` as the wall clock and virtual time as the monotonic
/// one (`virtual_clock`): a policy that reads a clock or sleeps still gets a reproducible
/// answer, and sleeping costs no real time.
struct FrozenWallClock(Duration);
impl HostWallClock for FrozenWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }
    fn now(&self) -> Duration {
        self.0
    }
}

/// SplitMix64 with a fixed seed: deterministic `wasi:random` for guests whose libraries
/// import it (augurs does).
struct FixedSeedRng(u64);
impl rand_core::TryRng for FixedSeedRng {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok((self.try_next_u64()? >> 32) as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Ok(z ^ (z >> 31))
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dest.chunks_mut(8) {
            let v = self.try_next_u64()?.to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        Ok(())
    }
}

/// The linker every policy is instantiated with: WASI p2 (nothing granted, the virtual
/// monotonic clock in place of the real one) + `host`.
pub fn linker(engine: &Engine) -> Result<Linker<HostState>, RuntimeError> {
    let mut linker = Linker::<HostState>::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| RuntimeError::Linker(format!("{e:#}")))?;
    virtual_clock::add_to_linker(&mut linker, |s| VirtualClockView {
        clock: &s.clock,
        table: &mut s.table,
    })
    .map_err(|e| RuntimeError::Linker(format!("{e:#}")))?;
    v1::Policy::add_to_linker::<_, HasSelf<HostState>>(&mut linker, |s| s)
        .map_err(|e| RuntimeError::Linker(format!("{e:#}")))?;
    Ok(linker)
}

/// A Store for one call (or one reused instance).
pub fn new_store(
    engine: &Engine,
    limits: Limits,
    now_ms: i64,
    history: Option<Arc<dyn HistorySource>>,
    log_target: Arc<str>,
) -> Store<HostState> {
    let stderr = StderrCapture::new();
    let clock = VirtualClock::new();
    let now = Duration::from_millis(u64::try_from(now_ms).unwrap_or(0));
    let wasi = WasiCtxBuilder::new()
        .stderr(stderr.clone())
        .wall_clock(FrozenWallClock(now))
        .monotonic_clock(clock.clone())
        .secure_random(FixedSeedRng(RANDOM_SEED))
        .insecure_random(FixedSeedRng(RANDOM_SEED ^ 1))
        .insecure_random_seed(u128::from(RANDOM_SEED))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .build();
    let state = HostState {
        wasi,
        table: ResourceTable::new(),
        limiter: MemoryCap::new(limits.memory_bytes),
        history,
        log_target,
        logs_left: MAX_LOG_LINES,
        stderr,
        clock,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limiter);
    arm_budget(&mut store, limits);
    store
}

/// Grant the next call its fuel and arm the wall-clock backstop. Epoch ticks are
/// `EPOCH_TICK` long; one extra tick guarantees the backstop is never shorter than asked.
/// (Without epoch interruption in the engine the epoch deadline is inert.)
pub fn arm_budget(store: &mut Store<HostState>, limits: Limits) {
    // Fails only on an engine built without fuel (`EngineSettings::metered` off, for the
    // bench only), whose calls are bounded by the backstop alone. On a metered engine a
    // Store left without fuel would fail its first instruction, not run unbounded.
    let _ = store.set_fuel(limits.fuel());
    let tick = super::engine::EPOCH_TICK.as_millis().max(1);
    let ticks = u64::try_from(limits.backstop().as_millis().div_ceil(tick))
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    store.set_epoch_deadline(ticks);
    store.epoch_deadline_trap();
}

/// Fuel the calls since the last `arm_budget` burned.
pub fn fuel_used(store: &Store<HostState>, limits: Limits) -> u64 {
    limits.fuel().saturating_sub(store.get_fuel().unwrap_or(0))
}

/// Point a reused Store at this call's history source and reset its per-call budgets.
pub fn prepare_reuse(store: &mut Store<HostState>, limits: Limits, history: Option<Arc<dyn HistorySource>>) {
    let data = store.data_mut();
    data.history = history;
    data.logs_left = MAX_LOG_LINES;
    data.limiter.refused = None;
    data.stderr.clear();
    arm_budget(store, limits);
}

/// Turn a wasmtime error from a call into the typed error, using what the Store saw.
pub fn classify(
    err: wasmtime::Error,
    store: &Store<HostState>,
    limits: Limits,
    started: Instant,
) -> EvalError {
    if let Some(requested) = store.data().limiter.refused {
        return EvalError::MemoryLimit {
            requested,
            cap: limits.memory_bytes,
        };
    }
    let stderr = String::from_utf8_lossy(&store.data().stderr.contents())
        .trim()
        .to_string();
    match err.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => EvalError::Budget {
            fuel: limits.fuel(),
            deadline: limits.deadline,
        },
        Some(Trap::Interrupt) => EvalError::Deadline {
            backstop: limits.backstop(),
            elapsed: started.elapsed(),
        },
        Some(Trap::StackOverflow) => EvalError::Trap("stack overflow".into()),
        Some(Trap::MemoryOutOfBounds) => EvalError::Trap(
            "out of bounds memory access (in Rust and C guests, usually a stack overflow of the stack kept in linear memory)"
                .into(),
        ),
        Some(Trap::UnreachableCodeReached) if !stderr.is_empty() => {
            EvalError::Trap(format!("panicked: {}", truncate(&stderr, 1024)))
        }
        Some(trap) => EvalError::Trap(trap.to_string()),
        None => EvalError::Trap(truncate(&format!("{err:#}"), 1024)),
    }
}

/// Check a decision against the contract and the context it answers.
pub fn check_decision(ctx: &Context, d: &Decision) -> Result<(), EvalError> {
    let max = ctx.workload.max_replicas;
    if d.replicas > max {
        return Err(EvalError::InvalidDecision(format!(
            "replicas {} is above max-replicas {max} (a NaN or infinity cast to an integer looks like this)",
            d.replicas
        )));
    }
    if !d.placement.is_empty() {
        let sum: u64 = d.placement.iter().map(|p| u64::from(p.replicas)).sum();
        if sum != u64::from(d.replicas) {
            return Err(EvalError::InvalidDecision(format!(
                "placement sums to {sum} replicas but the decision says {}",
                d.replicas
            )));
        }
    }
    if let Some(m) = d.metrics.iter().find(|m| !m.value.is_finite()) {
        return Err(EvalError::InvalidDecision(format!(
            "metric '{}' is {}, not a finite number",
            m.name, m.value
        )));
    }
    if let Some(s) = &d.state
        && s.len() > MAX_STATE_BYTES
    {
        return Err(EvalError::InvalidDecision(format!(
            "state is {} bytes, more than the {MAX_STATE_BYTES}-byte limit",
            s.len()
        )));
    }
    Ok(())
}

/// Cut `s` to at most `max` bytes on a char boundary.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

// ---- conversions between the SDK's plain types and the generated ones ----

pub fn to_wit_context(c: &Context) -> wit::Context {
    let w = &c.workload;
    wit::Context {
        now_ms: c.now_ms,
        workload: wit::Workload {
            kind: w.kind.clone(),
            namespace: w.namespace.clone(),
            name: w.name.clone(),
            replicas: w.replicas,
            ready_replicas: w.ready_replicas,
            min_replicas: w.min_replicas,
            max_replicas: w.max_replicas,
            labels: w.labels.clone(),
        },
        config: c.config.clone(),
        signals: c
            .signals
            .iter()
            .map(|s| wit::Signal {
                name: s.name.clone(),
                samples: s
                    .samples
                    .iter()
                    .filter(|x| x.value.is_finite())
                    .map(|x| wit::Sample {
                        at_ms: x.at_ms,
                        value: x.value,
                    })
                    .collect(),
            })
            .collect(),
        state: c.state.clone(),
    }
}

pub fn from_wit_decision(d: wit::Decision) -> Decision {
    Decision {
        replicas: d.replicas,
        jobs: d.jobs,
        placement: d
            .placement
            .into_iter()
            .map(|p| wasmscaler_sdk::PoolReplicas {
                pool: p.pool,
                replicas: p.replicas,
            })
            .collect(),
        reason: truncate(&d.reason, 2048),
        recheck_after_ms: d.recheck_after_ms,
        state: d.state,
        metrics: d
            .metrics
            .into_iter()
            .map(|m| wasmscaler_sdk::Metric {
                name: m.name,
                value: m.value,
            })
            .collect(),
    }
}

pub fn from_wit_error(e: wit::PolicyError) -> PolicyError {
    match e {
        wit::PolicyError::InvalidConfig(m) => PolicyError::InvalidConfig(truncate(&m, 2048)),
        wit::PolicyError::MissingSignal(m) => PolicyError::MissingSignal(truncate(&m, 2048)),
        wit::PolicyError::Internal(m) => PolicyError::Internal(truncate(&m, 2048)),
    }
}

pub fn from_wit_info(i: wit::PolicyInfo) -> PolicyInfo {
    PolicyInfo {
        name: i.name,
        version: i.version,
        summary: i.summary,
        signals: i
            .signals
            .into_iter()
            .map(|s| wasmscaler_sdk::SignalRequest {
                name: s.name,
                window_ms: s.window_ms,
                required: s.required,
                description: s.description,
            })
            .collect(),
    }
}

/// Samples as the contract carries them.
pub fn samples(v: &[Sample]) -> Vec<wit::Sample> {
    v.iter()
        .map(|s| wit::Sample {
            at_ms: s.at_ms,
            value: s.value,
        })
        .collect()
}
