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
pub mod reconciler;
pub mod window;

use serde::{Deserialize, Serialize};
use wasmscaler_sdk::prelude::*;

use config::fmt_ms;
pub use config::{Config, Metric, Resolved};
pub use reconciler::{Activity, Condition};
use reconciler::{Bounds, observe, scale};
pub use window::{Seconds, Window};

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
    /// The collector's stable and panic windows (running totals, first and last write).
    #[serde(default)]
    pub stable: Window,
    #[serde(default)]
    pub panic: Window,
    /// The newest second recorded into the windows.
    #[serde(default)]
    pub recorded_s: Option<i64>,
    /// The decider's scale (Knative `DesiredScale`); none (-1) until the first valid one.
    /// A tick without data keeps it, as Knative's multiscaler does.
    #[serde(default)]
    pub desired: Option<u32>,
    /// The PodAutoscaler's `Active` condition.
    #[serde(default)]
    pub condition: Condition,
    /// The workload has reached `initialScale` ready pods once (`ScaleTargetInitialized`).
    #[serde(default)]
    pub initialized: bool,
}

/// Per-second buckets `(second, value)`, ascending; several samples within one second
/// are averaged (the signals are totals across pods, sampled once a second).
///
/// A second's samples are summed in the order they were handed over (the average, and so
/// the decision, depends on that order): samples that come ascending, as every source
/// sends them, are grouped as they come; others are put in order first by a stable sort.
pub fn buckets(samples: &[Sample], now_ms: i64, name: &str) -> Result<Vec<(i64, f64)>, PolicyError> {
    let mut seconds: Vec<(i64, f64)> = Vec::with_capacity(samples.len());
    for s in samples.iter().filter(|s| s.at_ms <= now_ms) {
        let v = if s.value.is_finite() {
            s.value
        } else {
            finite(&format!("signal '{name}'"), s.value)?
        };
        if v < 0.0 {
            return Err(PolicyError::internal(format!(
                "signal '{name}' has a negative sample ({v} at {})",
                s.at_ms
            )));
        }
        seconds.push((s.at_ms.div_euclid(1000), v));
    }
    if !seconds.is_sorted_by_key(|&(sec, _)| sec) {
        seconds.sort_by_key(|&(sec, _)| sec);
    }
    let mut out: Vec<(i64, f64)> = Vec::with_capacity(seconds.len());
    let mut i = 0;
    while i < seconds.len() {
        let sec = seconds[i].0;
        let (mut sum, mut n) = (0.0, 0u32);
        while i < seconds.len() && seconds[i].0 == sec {
            sum += seconds[i].1;
            n += 1;
            i += 1;
        }
        out.push((sec, sum / f64::from(n)));
    }
    Ok(out)
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
            st.condition = Condition {
                activity: Activity::Activating,
                since_ms: now,
            };
            if ready_pods > 1 {
                st.panic_time_ms = Some(now);
                st.max_panic_pods = ready_pods;
            }
        }

        let signal = ctx.signals.iter().find(|s| s.name == name).ok_or_else(|| {
            PolicyError::MissingSignal(format!("signal '{name}' was not provided (metric: {name})"))
        })?;
        let long;
        let mut samples = &signal.samples[..];
        let mut covered_ms = SIGNAL_WINDOW_MS;
        let need_ms = u64::try_from(r.stable_ms).unwrap_or(0).saturating_mul(2);
        if need_ms > SIGNAL_WINDOW_MS {
            match host::history(name, need_ms, 1000) {
                Ok(h) if !h.is_empty() => {
                    long = h;
                    samples = &long[..];
                    covered_ms = need_ms;
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
        let stable_n = r.stable_ms / 1000;
        let panic_n = r.panic_ms / 1000;

        // The collector: record each second once, in order. The windows read the seconds
        // leaving them back from the samples; when those are no longer handed over (no
        // evaluation for longer than the signal window) or the clock went backwards (a
        // replay), the windows start afresh from the samples at hand.
        let covered_from_s = (now - i64::try_from(covered_ms).unwrap_or(i64::MAX)).div_euclid(1000) + 1;
        let seconds = Seconds(&b);
        let stale = st
            .recorded_s
            .is_some_and(|last| last > now_s || last + 1 - stable_n < covered_from_s);
        // The source revised seconds already recorded: re-read the windows from what it
        // says now (Knative's own buckets are never revised; ours are read back).
        let revised = !stale
            && (!st.stable.agrees_with(&seconds, stable_n) || !st.panic.agrees_with(&seconds, panic_n));
        if stale || revised {
            st.stable = Window::default();
            st.panic = Window::default();
            st.recorded_s = None;
        }
        let recorded = st.recorded_s;
        for &(sec, v) in b.iter().filter(|(sec, _)| recorded.is_none_or(|r| *sec > r)) {
            st.stable.record(&seconds, sec, v, stable_n);
            st.panic.record(&seconds, sec, v, panic_n);
            st.recorded_s = Some(sec);
        }

        // The decider (autoscaler.go Scale). With targetBurstCapacity -1 Knative does not
        // scrape the pods (the activator is always in the path), so there is never "no
        // data": empty windows average 0.
        let scraped = cfg.target_burst_capacity != -1.0;
        let mut note = String::new();
        let mut mode = String::new();
        let mut averages = None;
        if scraped && st.stable.is_empty(now_s, stable_n) {
            mode = format!(
                "no {name} data in the last {}: the decider keeps its scale ({})",
                fmt_ms(r.stable_ms),
                st.desired.map_or("none yet".to_string(), |d| d.to_string())
            );
        } else {
            let stable = st.stable.average(&seconds, now_s, stable_n);
            let panic = st.panic.average(&seconds, now_s, panic_n);
            averages = Some((stable, panic));
            let desired = decide(cfg, &r, st, now, ready_pods, stable, panic, &mut note, &mut mode);
            st.desired = Some(desired);
        }

        // The reconciler (kpa/scaler.go scale, kpa.go computeActiveCondition).
        let bounds = Bounds {
            min_scale: cfg.min_scale,
            max_scale: cfg.max_scale,
            initial_scale: cfg.initial_scale,
            enable_scale_to_zero: cfg.enable_scale_to_zero,
            stable_ms: r.stable_ms,
            zero_wait_ms: r.zero_wait_ms,
            retention_ms: cfg.scale_to_zero_pod_retention_period.map_or(0, |d| d.0),
        };
        let desired = st.desired.map_or(-1, i64::from);
        let scaled = scale(&bounds, &st.condition, st.initialized, desired, now);
        let want = if scaled.apply {
            u32::try_from(scaled.want).unwrap_or(current)
        } else {
            current
        };
        if scaled.want != desired && scaled.apply {
            note.push_str(&format!("bounds / initial scale: {desired} -> {}; ", scaled.want));
        }
        if scaled.apply && scaled.want == 0 && current == 0 {
            note.push_str("idle at zero; ");
        } else if !scaled.why.is_empty() {
            note.push_str(&scaled.why);
            note.push_str(if scaled.apply {
                "; "
            } else {
                ": keeping the current scale; "
            });
        }
        observe(
            &bounds,
            &mut st.condition,
            &mut st.initialized,
            scaled.want,
            ready_pods,
            now,
        );

        let replicas = ctx.clamp(want);
        if replicas != want {
            note.push_str(&format!(
                "workload bounds [{}, {}] -> {replicas}; ",
                ctx.workload.min_replicas, ctx.workload.max_replicas
            ));
        }

        let reason = format!("{note}{mode} => {replicas} replicas");
        let mut d = Decision::new(replicas)
            .reason(reason)
            .recheck_after_ms(TICK_MS)
            .metric("desired-pods", desired as f64)
            .metric("panic-mode", if st.panic_time_ms.is_some() { 1.0 } else { 0.0 })
            .metric(
                "active",
                match st.condition.activity {
                    Activity::Activating => 0.5,
                    Activity::Active => 1.0,
                    Activity::Inactive => 0.0,
                },
            );
        if let Some((stable, panic)) = averages {
            // Excess burst capacity (reported; the activator that would act on it is out of reach).
            let ebc = if cfg.target_burst_capacity == 0.0 {
                0.0
            } else if cfg.target_burst_capacity > 0.0 {
                (f64::from(ready_pods) * r.total - cfg.target_burst_capacity - panic).floor()
            } else {
                -1.0
            };
            d = d
                .metric(format!("stable-{name}"), stable)
                .metric(format!("panic-{name}"), panic)
                .metric(format!("target-{name}"), r.target)
                .metric("excess-burst-capacity", ebc);
        }
        Ok(d)
    }
}

/// autoscaler.go `Scale()` on the windows' averages: the decider's pod count.
#[allow(clippy::too_many_arguments)]
fn decide(
    cfg: &Config,
    r: &Resolved,
    st: &mut State,
    now: i64,
    ready_pods: u32,
    stable: f64,
    panic: f64,
    note: &mut String,
    mode: &mut String,
) -> u32 {
    let name = cfg.metric.signal();
    let ready = f64::from(ready_pods.max(1));
    let max_scale_up = (cfg.max_scale_up_rate * ready).ceil();
    let max_scale_down = (ready / cfg.max_scale_down_rate).floor();
    // Go math.Ceil, no slack: Knative's own rounding.
    let dspc = (stable / r.target).ceil();
    let dppc = (panic / r.target).ceil();
    let clamp_rate = |x: f64| to_u32(x.max(max_scale_down).min(max_scale_up));
    let mut desired_stable = clamp_rate(dspc);
    let mut desired_panic = clamp_rate(dppc);
    if cfg.activation_scale > 1 {
        if dspc > 0.0 && cfg.activation_scale > desired_stable {
            desired_stable = cfg.activation_scale;
        }
        if dppc > 0.0 && cfg.activation_scale > desired_panic {
            desired_panic = cfg.activation_scale;
        }
    }
    let panic_ratio = dppc / ready;
    let over = panic_ratio >= r.panic_threshold;
    match st.panic_time_ms {
        None if over => {
            st.panic_time_ms = Some(now);
            note.push_str(&format!(
                "entering panic: {panic_ratio:.2}x of {} ready >= {:.2}x; ",
                ready_pods.max(1),
                r.panic_threshold
            ));
        }
        Some(_) if over => st.panic_time_ms = Some(now),
        Some(t) if t.saturating_add(r.stable_ms) < now => {
            st.panic_time_ms = None;
            st.max_panic_pods = 0;
            note.push_str(&format!("left panic ({} since last breach); ", fmt_ms(now - t)));
        }
        _ => {}
    }

    let mut desired = desired_stable;
    if let Some(t) = st.panic_time_ms {
        desired = desired.max(desired_panic);
        if desired > st.max_panic_pods {
            st.max_panic_pods = desired;
        }
        desired = st.max_panic_pods;
        *mode = format!(
            "panic: {panic:.1} avg {name} over {} vs target {} -> {desired_panic}, stable {stable:.1} over {} -> {desired_stable}; holding max {} until {} after the last breach ({} ago)",
            fmt_ms(r.panic_ms),
            fmt_num(r.target),
            fmt_ms(r.stable_ms),
            st.max_panic_pods,
            fmt_ms(r.stable_ms),
            fmt_ms(now - t),
        );
    } else {
        *mode = format!(
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
    desired
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

wasmscaler_sdk::export_policy!(KnativeConcurrency);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// The map `buckets` used to fill: a second's samples summed in the order handed over.
    fn buckets_by_map(samples: &[Sample], now_ms: i64) -> Vec<(i64, f64)> {
        let mut map: BTreeMap<i64, (f64, u32)> = BTreeMap::new();
        for s in samples.iter().filter(|s| s.at_ms <= now_ms) {
            let e = map.entry(s.at_ms.div_euclid(1000)).or_insert((0.0, 0));
            e.0 += s.value;
            e.1 += 1;
        }
        map.into_iter()
            .map(|(sec, (sum, n))| (sec, sum / f64::from(n)))
            .collect()
    }

    #[test]
    fn buckets_sum_each_second_in_the_order_handed_over() {
        // xorshift: ascending runs, several samples a second, shuffled and negative times.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut r = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for case in 0..2000 {
            let n = (r() % 200) as usize;
            let mut at = -5_000 + (r() % 10_000) as i64;
            let mut samples: Vec<Sample> = (0..n)
                .map(|_| {
                    at += (r() % 1500) as i64;
                    // Values whose sums depend on the order of addition.
                    Sample::new(at, (r() % 1000) as f64 / 7.0 + 0.1)
                })
                .collect();
            if case % 3 == 0 {
                for i in (1..samples.len()).rev() {
                    samples.swap(i, (r() % (i as u64 + 1)) as usize);
                }
            }
            let now = at - (r() % 2000) as i64;
            let got = buckets(&samples, now, "s").expect("valid samples");
            let want = buckets_by_map(&samples, now);
            assert_eq!(got.len(), want.len(), "case {case}");
            for (g, w) in got.iter().zip(&want) {
                assert_eq!((g.0, g.1.to_bits()), (w.0, w.1.to_bits()), "case {case}");
            }
        }
    }

    #[test]
    fn buckets_name_the_first_bad_sample() {
        let bad = [
            Sample::new(0, 1.0),
            Sample::new(1000, -2.0),
            Sample::new(2000, f64::NAN),
        ];
        let e = buckets(&bad, 5000, "concurrency").unwrap_err().to_string();
        assert!(e.contains("negative sample (-2 at 1000)"), "{e}");
        let e = buckets(&bad[2..], 5000, "concurrency").unwrap_err().to_string();
        assert!(e.contains("signal 'concurrency' is NaN"), "{e}");
    }
}
