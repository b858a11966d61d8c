//! Reproducers of the differences the conformance test (tests/conformance/knative.rs)
//! found against Knative Serving v0.42.2, one per rule; each expected value is what the
//! upstream reference (tools/conformance/knative) answers for the same ticks.
//!
//! A sequence starts at t = 0 (seconds after the base instant); the load is one sample a
//! second from t = 0 on (`None`: no sample that second), as Knative's collector records it.

use wasmscaler_sdk::testing::{ContextBuilder, DEFAULT_NOW_MS, Harness};
use wasmscaler_sdk::{Context, Decision};

use policy_knative_concurrency::KnativeConcurrency;

const BASE: i64 = DEFAULT_NOW_MS;

fn ctx(config: &str, t: i64, replicas: u32, ready: u32, load: &dyn Fn(i64) -> Option<f64>) -> Context {
    let samples: Vec<(i64, f64)> = (0.max(t - 119)..=t)
        .filter_map(|s| load(s).map(|v| (BASE + s * 1000, v)))
        .collect();
    ContextBuilder::new()
        .now_ms(BASE + t * 1000)
        .replicas(replicas, ready)
        .bounds(0, 1000)
        .config(config)
        .series("concurrency", &samples)
        .build()
}

fn tick(h: &mut Harness<KnativeConcurrency>, c: Context) -> Decision {
    h.tick(c).expect("evaluates")
}

/// Runs ticks every 2 s from t = 0 to `until`, the workload following the decisions with
/// pods ready `delay` seconds after they were asked for; returns (t, replicas) per tick.
fn run(
    config: &str,
    until: i64,
    start: (u32, u32),
    delay: i64,
    load: &dyn Fn(i64) -> Option<f64>,
) -> Vec<(i64, u32)> {
    let mut h = Harness::<KnativeConcurrency>::new();
    let (mut replicas, ready0) = start;
    // Pods as the times they become ready.
    let mut pods: Vec<i64> = (0..replicas)
        .map(|i| if i < ready0 { 0 } else { delay })
        .collect();
    let mut out = Vec::new();
    for t in (0..=until).step_by(2) {
        let ready = pods.iter().filter(|&&r| r <= t).count() as u32;
        let d = tick(&mut h, ctx(config, t, replicas, ready, load));
        out.push((t, d.replicas));
        while (pods.len() as u32) < d.replicas {
            pods.push(t + delay);
        }
        pods.sort_by_key(|&r| std::cmp::Reverse(r));
        let excess = pods.len().saturating_sub(d.replicas as usize);
        pods.drain(..excess);
        replicas = d.replicas;
    }
    out
}

fn at(run: &[(i64, u32)], t: i64) -> u32 {
    run.iter()
        .find(|(x, _)| *x == t)
        .map(|(_, r)| *r)
        .expect("a tick at t")
}

#[test]
fn window_averages_are_knatives_running_total_floored_to_six_decimals() {
    // containerConcurrency 3 -> target 3 x 0.7 = 2.0999999999999996. 3 pods ready from the
    // start (so a fresh autoscaler panics at 3 until t = 62), 2.1 every second. Knative
    // keeps a running total of the buckets (adding each new second, subtracting the one
    // that leaves the window) and floors total / n to 6 decimals: at t = 62 that is
    // 2.099999 (-> 1 pod), at t = 64 2.1 (-> ceil(2.1 / 2.0999999999999996) = 2).
    let load = |_| Some(2.1);
    let r = run(r#"{"containerConcurrency":3}"#, 64, (3, 3), 0, &load);
    assert_eq!(at(&r, 60), 3, "{r:?}");
    assert_eq!(at(&r, 62), 1, "{r:?}");
    assert_eq!(at(&r, 64), 2, "{r:?}");
}

#[test]
fn initial_scale_floor_holds_on_the_tick_the_pods_become_ready() {
    // initialScale 3, no load; 3 pods ready at t = 10. Knative marks the scale target
    // initialised after that tick's decision, so t = 10 still gets 3 and t = 12 drops to
    // floor(3 / 2) = 1.
    let load = |_| Some(0.0);
    let r = run(r#"{"initialScale":3}"#, 14, (3, 0), 10, &load);
    assert_eq!(at(&r, 10), 3, "{r:?}");
    assert_eq!(at(&r, 12), 1, "{r:?}");
}

#[test]
fn bounds_apply_before_the_first_sample() {
    // No sample yet: Knative's decider has no scale (-1), but while the PA is activating
    // the reconciler still applies the bounds: initialScale 3 -> 3, minScale 2 -> 2.
    let none = |_| None;
    let r = run(r#"{"initialScale":3}"#, 0, (1, 1), 0, &none);
    assert_eq!(at(&r, 0), 3, "{r:?}");
    let r = run(r#"{"minScale":2}"#, 0, (0, 0), 0, &none);
    assert_eq!(at(&r, 0), 2, "{r:?}");
}

#[test]
fn initial_scale_zero_is_inactive_from_the_start() {
    // initialScale 0: the activity threshold is 0 pods, so the PA is inactive from t = 0
    // and the grace period (30 s) is all that is left: zero at t = 30.
    let load = |_| Some(0.0);
    let r = run(
        r#"{"initialScale":0,"allowZeroInitialScale":true}"#,
        32,
        (1, 1),
        0,
        &load,
    );
    assert_eq!(at(&r, 28), 1, "{r:?}");
    assert_eq!(at(&r, 30), 0, "{r:?}");
}

#[test]
fn active_time_counts_from_the_pods_being_ready() {
    // stableWindow 6s, the pod takes 20 s to become ready, no load. The PA becomes active
    // when the pod is ready (t = 20), inactive one stable window later (t = 26), and the
    // pod goes after the 30 s grace (t = 56) - not before it was ever ready.
    let load = |_| Some(0.0);
    let r = run(r#"{"stableWindow":6}"#, 58, (1, 0), 20, &load);
    assert!(r.iter().filter(|(t, _)| *t < 56).all(|(_, n)| *n == 1), "{r:?}");
    assert_eq!(at(&r, 56), 0, "{r:?}");
}

#[test]
fn no_data_keeps_the_last_scale_and_scale_to_zero_goes_on() {
    // 50 until t = 10, zeros until t = 80, then no samples. The decider's scale became 0 at
    // t = 70 (inactive then); from t = 142 there is no data, Knative keeps the decider's
    // last scale (0) and the grace period (120 s) runs out at t = 190.
    let load = |s: i64| match s {
        ..=10 => Some(50.0),
        11..=80 => Some(0.0),
        _ => None,
    };
    let r = run(r#"{"scaleToZeroGracePeriod":120}"#, 192, (1, 1), 0, &load);
    assert_eq!(at(&r, 188), 1, "{r:?}");
    assert_eq!(at(&r, 190), 0, "{r:?}");
}

#[test]
fn target_burst_capacity_minus_one_averages_silence_as_zero() {
    // targetBurstCapacity -1: the activator is always in the path and Knative does not
    // scrape the pods, so there is never "no data": the averages fall to 0 after the
    // last sample, the PA goes inactive at t = 70 and to zero 30 s later.
    let load = |s: i64| (s <= 10).then_some(50.0);
    let r = run(r#"{"targetBurstCapacity":-1}"#, 102, (1, 1), 0, &load);
    assert_eq!(at(&r, 98), 1, "{r:?}");
    assert_eq!(at(&r, 100), 0, "{r:?}");
}
