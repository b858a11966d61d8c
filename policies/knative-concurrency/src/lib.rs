//! The Knative Serving pod autoscaler (KPA), as a wasmscaler policy.
//!
//! Reproduces `knative/serving`:
//! - `pkg/autoscaler/scaling/autoscaler.go` (`Scale`): stable and panic desired pod
//!   counts, the scale-rate clamps, panic mode (enter at the threshold, only ratchet up,
//!   leave one stable window after the last breach), activation scale, scale-down delay;
//! - `pkg/autoscaler/aggregation/bucketing.go` (`WindowAverage`): 1-s buckets averaged
//!   over the part of the window that has data;
//! - `pkg/autoscaler/aggregation/max/window.go`: the scale-down-delay max window;
//! - `pkg/reconciler/autoscaling/kpa/scaler.go` (`scale`, `handleScaleToZero`):
//!   min/max/initial scale and scale to zero after the stable window and grace period;
//! - `pkg/reconciler/autoscaling/resources/target.go` (`ResolveMetricTarget`).
//!
//! What a controller cannot do (the activator's request buffering) is listed in the README.

pub mod config;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use wasmscaler_sdk::math::ceil_u32;
use wasmscaler_sdk::prelude::*;

use config::fmt_ms;
pub use config::{Config, Metric, Resolved};

/// The KPA's decision interval (`tickInterval`), also the granularity of the
/// scale-down-delay window.
pub const TICK_MS: u64 = 2_000;
/// Signal history the policy asks for: twice the default stable window, so a gap of up
/// to one window before the window is seen (Knative restarts its average after a gap of
/// a full window). Longer stable windows read `host::history`.
pub const SIGNAL_WINDOW_MS: u64 = 120_000;

/// What the policy keeps between evaluations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    /// False until the first evaluation (Knative starts a new autoscaler in panic mode
    /// when more than one pod is ready, so lost history never causes a scale-down).
    #[serde(default)]
    pub started: bool,
    /// Knative `panicTime`: the last instant the panic threshold was crossed; none when
    /// not panicking.
    #[serde(default)]
    pub panic_time_ms: Option<i64>,
    /// Knative `maxPanicPods`.
    #[serde(default)]
    pub max_panic_pods: u32,
    /// The scale-down-delay window: descending maxima as (2-s tick index, pods).
    #[serde(default)]
    pub delay: Vec<(i64, u32)>,
    /// When the workload last went from zero (or unknown) to running.
    #[serde(default)]
    pub active_since_ms: Option<i64>,
    /// When the workload was marked inactive (no traffic for a stable window).
    #[serde(default)]
    pub inactive_since_ms: Option<i64>,
    /// The workload has reached `initialScale` ready pods once.
    #[serde(default)]
    pub initialized: bool,
}

/// Per-second buckets `(second, value)`, ascending; several samples within one second
/// are averaged (the signals are totals across pods, sampled once a second).
pub fn buckets(samples: &[Sample], now_ms: i64, name: &str) -> Result<Vec<(i64, f64)>, PolicyError> {
    let mut map: BTreeMap<i64, (f64, u32)> = BTreeMap::new();
    for s in samples.iter().filter(|s| s.at_ms <= now_ms) {
        let v = finite(&format!("signal '{name}'"), s.value)?;
        if v < 0.0 {
            return Err(PolicyError::internal(format!(
                "signal '{name}' has a negative sample ({v} at {})",
                s.at_ms
            )));
        }
        let e = map.entry(s.at_ms.div_euclid(1000)).or_insert((0.0, 0));
        e.0 += v;
        e.1 += 1;
    }
    Ok(map
        .into_iter()
        .map(|(sec, (sum, n))| (sec, sum / f64::from(n)))
        .collect())
}

/// Knative `TimedFloat64Buckets.WindowAverage` over `window_s` one-second buckets ending at
/// `now_s`: the average over the buckets from the later of (window start, first write) to
/// the last write, missing seconds in between counting as 0. The first write is where
/// the data starts after the last gap of a full window or more. `None` when the last
/// write is more than a window ago (Knative `IsEmpty`: no data).
pub fn window_average(buckets: &[(i64, f64)], now_s: i64, window_s: i64) -> Option<f64> {
    let &(last, _) = buckets.last()?;
    let age = now_s - last;
    if age > window_s {
        return None;
    }
    if age >= window_s {
        return Some(0.0);
    }
    let mut first = buckets[0].0;
    for pair in buckets.windows(2) {
        if pair[1].0 - pair[0].0 >= window_s {
            first = pair[1].0;
        }
    }
    let start = first.max(now_s - window_s + 1);
    let sum: f64 = buckets
        .iter()
        .filter(|(s, _)| *s >= start && *s <= last)
        .map(|(_, v)| v)
        .sum();
    let n = (last - start + 1).max(1);
    Some(sum / n as f64)
}

/// Knative `max.TimeWindow.Record` (descending-maxima window of `size` ticks); returns
/// the maximum over the window after recording.
pub fn delay_record(entries: &mut Vec<(i64, u32)>, size: i64, index: i64, value: u32) -> u32 {
    let mut v = value;
    // A clock that went backwards (replay): start the window afresh.
    if entries.last().is_some_and(|&(i, _)| i > index) {
        entries.clear();
    }
    while let Some(&(_, lv)) = entries.last() {
        if v < lv {
            break;
        }
        entries.pop();
    }
    while entries.first().is_some_and(|&(i, _)| index - i >= size) {
        entries.remove(0);
    }
    if let Some(&(li, lv)) = entries.last()
        && li == index
    {
        v = v.max(lv);
        entries.pop();
    }
    entries.push((index, v));
    entries.first().map_or(value, |&(_, m)| m)
}

fn to_u32(v: f64) -> u32 {
    if v <= 0.0 {
        0
    } else if v >= f64::from(u32::MAX) {
        u32::MAX
    } else {
        v as u32
    }
}

pub struct KnativeConcurrency;

impl Policy for KnativeConcurrency {
    type Config = Config;
    type State = State;

    fn info() -> PolicyInfo {
        PolicyInfo::new(
            "knative-concurrency",
            env!("CARGO_PKG_VERSION"),
            "Knative KPA: stable/panic windows on concurrency or rps, scale to zero",
        )
        .signal(
            SignalRequest::window(
                "concurrency",
                SIGNAL_WINDOW_MS,
                "total in-flight requests across pods, one sample a second (metric: concurrency)",
            )
            .optional(),
        )
        .signal(
            SignalRequest::window(
                "rps",
                SIGNAL_WINDOW_MS,
                "total requests per second across pods, one sample a second (metric: rps)",
            )
            .optional(),
        )
    }

    fn validate(cfg: &Config) -> Result<(), PolicyError> {
        cfg.check()
    }

    fn evaluate(ctx: &Context, cfg: &Config, st: &mut State) -> Result<Decision, PolicyError> {
        let r = cfg.resolve();
        let now = ctx.now_ms;
        let current = ctx.workload.replicas;
        let ready_pods = ctx.workload.ready_replicas;
        let name = cfg.metric.signal();

        // A new autoscaler starts in panic mode when more than one pod is ready.
        if !st.started {
            st.started = true;
            if ready_pods > 1 {
                st.panic_time_ms = Some(now);
                st.max_panic_pods = ready_pods;
            }
        }
        if ready_pods >= cfg.initial_scale {
            st.initialized = true;
        }

        let signal = ctx.signals.iter().find(|s| s.name == name).ok_or_else(|| {
            PolicyError::MissingSignal(format!("signal '{name}' was not provided (metric: {name})"))
        })?;
        let long;
        let mut samples = &signal.samples[..];
        let need_ms = u64::try_from(r.stable_ms).unwrap_or(0).saturating_mul(2);
        if need_ms > SIGNAL_WINDOW_MS {
            match host::history(name, need_ms, 1000) {
                Ok(h) if !h.is_empty() => {
                    long = h;
                    samples = &long[..];
                }
                Ok(_) | Err(_) => host::log(
                    LogLevel::Warn,
                    &format!(
                        "no history for '{name}' over {}; averaging the {} samples handed over",
                        fmt_ms(i64::try_from(need_ms).unwrap_or(i64::MAX)),
                        samples.len()
                    ),
                ),
            }
        }
        let b = buckets(samples, now, name)?;
        let now_s = now.div_euclid(1000);
        let stable_s = r.stable_ms / 1000;
        let panic_s = r.panic_ms / 1000;

        let Some(stable) = window_average(&b, now_s, stable_s) else {
            // Knative: no data -> no scaling decision; the scale stays where it is.
            let replicas = ctx.clamp(current);
            return Ok(Decision::new(replicas)
                .reason(format!(
                    "no {name} data in the last {}: holding {replicas}",
                    fmt_ms(r.stable_ms)
                ))
                .recheck_after_ms(TICK_MS));
        };
        let panic = window_average(&b, now_s, panic_s).unwrap_or(0.0);

        // autoscaler.go Scale().
        let ready = f64::from(ready_pods.max(1));
        let max_scale_up = (cfg.max_scale_up_rate * ready).ceil();
        let max_scale_down = (ready / cfg.max_scale_down_rate).floor();
        let dspc = ceil_u32(stable / r.target);
        let dppc = ceil_u32(panic / r.target);
        let clamp_rate = |x: u32| to_u32(f64::from(x).max(max_scale_down).min(max_scale_up));
        let mut desired_stable = clamp_rate(dspc);
        let mut desired_panic = clamp_rate(dppc);
        if cfg.activation_scale > 1 {
            if dspc > 0 && cfg.activation_scale > desired_stable {
                desired_stable = cfg.activation_scale;
            }
            if dppc > 0 && cfg.activation_scale > desired_panic {
                desired_panic = cfg.activation_scale;
            }
        }
        let panic_ratio = f64::from(dppc) / ready;
        let over = panic_ratio >= r.panic_threshold;
        let mut note = String::new();
        match st.panic_time_ms {
            None if over => {
                st.panic_time_ms = Some(now);
                note = format!(
                    "entering panic: {panic_ratio:.2}x of {} ready >= {:.2}x; ",
                    ready_pods.max(1),
                    r.panic_threshold
                );
            }
            Some(_) if over => st.panic_time_ms = Some(now),
            Some(t) if t.saturating_add(r.stable_ms) < now => {
                st.panic_time_ms = None;
                st.max_panic_pods = 0;
                note = format!("left panic ({} since last breach); ", fmt_ms(now - t));
            }
            _ => {}
        }

        let mut desired = desired_stable;
        let mode;
        if let Some(t) = st.panic_time_ms {
            desired = desired.max(desired_panic);
            if desired > st.max_panic_pods {
                st.max_panic_pods = desired;
            }
            desired = st.max_panic_pods;
            mode = format!(
                "panic: {panic:.1} avg {name} over {} vs target {} -> {desired_panic}, stable {stable:.1} over {} -> {desired_stable}; holding max {} until {} after the last breach ({} ago)",
                fmt_ms(r.panic_ms),
                fmt_num(r.target),
                fmt_ms(r.stable_ms),
                st.max_panic_pods,
                fmt_ms(r.stable_ms),
                fmt_ms(now - t),
            );
        } else {
            mode = format!(
                "stable: {stable:.1} avg {name} over {} vs target {} -> {desired_stable} (panic window {panic:.1} -> {dppc}, {panic_ratio:.2}x of ready)",
                fmt_ms(r.stable_ms),
                fmt_num(r.target),
            );
        }

        // Scale-down delay: the highest recommendation over the window.
        if r.delay_ms > 0 {
            let size = (r.delay_ms + TICK_MS as i64 - 1) / TICK_MS as i64;
            let index = now.div_euclid(1000).div_euclid(TICK_MS as i64 / 1000);
            let delayed = delay_record(&mut st.delay, size, index, desired);
            if delayed != desired {
                note.push_str(&format!(
                    "scale-down delay {}: staying at {delayed} instead of {desired}; ",
                    fmt_ms(r.delay_ms)
                ));
                desired = delayed;
            }
        } else {
            st.delay.clear();
        }

        // kpa/scaler.go scale(): bounds, initial scale, scale to zero.
        let mut min = cfg.min_scale;
        if cfg.initial_scale > 1 && !st.initialized {
            min = min.max(cfg.initial_scale);
        }
        let mut want = desired.max(min);
        if cfg.max_scale != 0 {
            want = want.min(cfg.max_scale);
        }
        if want != desired {
            note.push_str(&format!(
                "bounds [{min}, {}] -> {want}; ",
                if cfg.max_scale == 0 {
                    "inf".to_string()
                } else {
                    cfg.max_scale.to_string()
                }
            ));
        }

        if want == 0 {
            if !cfg.enable_scale_to_zero {
                want = 1;
                note.push_str("scale to zero disabled: keeping 1; ");
            } else if current == 0 {
                st.inactive_since_ms.get_or_insert(now);
                note.push_str("idle at zero; ");
            } else if let Some(since) = st.inactive_since_ms {
                let idle = now - since;
                if idle >= r.zero_wait_ms {
                    note.push_str(&format!(
                        "inactive for {} >= grace {}: scaling to zero; ",
                        fmt_ms(idle),
                        fmt_ms(r.zero_wait_ms)
                    ));
                } else {
                    want = current;
                    note.push_str(&format!(
                        "inactive for {} of the {} grace period: keeping {current}; ",
                        fmt_ms(idle),
                        fmt_ms(r.zero_wait_ms)
                    ));
                }
            } else {
                let active_for = now - st.active_since_ms.unwrap_or(now);
                if active_for >= r.stable_ms {
                    st.inactive_since_ms = Some(now);
                    want = current;
                    note.push_str(&format!(
                        "no traffic for the stable window: inactive, scale to zero after {}; keeping {current}; ",
                        fmt_ms(r.zero_wait_ms)
                    ));
                } else {
                    want = 1;
                    note.push_str(&format!(
                        "active for only {} < stable window {}: keeping 1; ",
                        fmt_ms(active_for),
                        fmt_ms(r.stable_ms)
                    ));
                }
            }
        } else {
            st.inactive_since_ms = None;
        }
        if want == 0 {
            st.active_since_ms = None;
        } else if st.active_since_ms.is_none() {
            st.active_since_ms = Some(now);
        }

        let replicas = ctx.clamp(want);
        if replicas != want {
            note.push_str(&format!(
                "workload bounds [{}, {}] -> {replicas}; ",
                ctx.workload.min_replicas, ctx.workload.max_replicas
            ));
        }

        // Excess burst capacity (reported; the activator that would act on it is out of reach).
        let ebc = if cfg.target_burst_capacity == 0.0 {
            0.0
        } else if cfg.target_burst_capacity > 0.0 {
            (f64::from(ready_pods) * r.total - cfg.target_burst_capacity - panic).floor()
        } else {
            -1.0
        };

        let reason = format!("{note}{mode} => {replicas} replicas");
        Ok(Decision::new(replicas)
            .reason(reason)
            .recheck_after_ms(TICK_MS)
            .metric(format!("stable-{name}"), stable)
            .metric(format!("panic-{name}"), panic)
            .metric(format!("target-{name}"), r.target)
            .metric("desired-pods", f64::from(desired))
            .metric("panic-mode", if st.panic_time_ms.is_some() { 1.0 } else { 0.0 })
            .metric("excess-burst-capacity", ebc))
    }
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

wasmscaler_sdk::export_policy!(KnativeConcurrency);
