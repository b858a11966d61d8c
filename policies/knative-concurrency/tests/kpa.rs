//! KPA behaviours worked out by hand from Knative's rules (defaults: target 100 x 70 % = 70
//! concurrency, stable window 60 s, panic window 6 s, panic threshold 2.0, max scale-down
//! rate 2, grace 30 s). Samples are one per second; `t` is seconds after the base instant.

use policy_knative_concurrency::{Activity, KnativeConcurrency, Seconds, State, Window, delay_record};
use wasmscaler_sdk::testing::{ContextBuilder, DEFAULT_NOW_MS, Harness, check_scenarios, evaluate, validate};
use wasmscaler_sdk::{Context, Decision, PolicyError};

const BASE: i64 = DEFAULT_NOW_MS;

/// A context at `t` seconds with 120 s of per-second samples of `signal` from `load`.
fn ctx_with(
    config: &str,
    signal: &str,
    t: i64,
    replicas: u32,
    ready: u32,
    load: &dyn Fn(i64) -> f64,
) -> Context {
    let samples: Vec<(i64, f64)> = (t - 119..=t).map(|s| (BASE + s * 1000, load(s))).collect();
    ContextBuilder::new()
        .now_ms(BASE + t * 1000)
        .replicas(replicas, ready)
        .bounds(0, 1000)
        .config(config)
        .series(signal, &samples)
        .build()
}

fn ctx(t: i64, replicas: u32, ready: u32, load: &dyn Fn(i64) -> f64) -> Context {
    ctx_with("{}", "concurrency", t, replicas, ready, load)
}

fn tick(h: &mut Harness<KnativeConcurrency>, c: Context) -> Decision {
    h.tick(c).unwrap()
}

#[test]
fn steady_load_holds_target_and_restart_starts_in_panic() {
    // 140 concurrency, target 70 -> ceil(140 / 70) = 2 pods wanted; 3 ready.
    let load = |_| 140.0;
    let mut h = Harness::<KnativeConcurrency>::new();
    // A fresh autoscaler with 3 ready pods starts in panic with maxPanicPods = 3: no
    // scale-down for a stable window (Knative does this because history is lost on restart).
    let d = tick(&mut h, ctx(0, 3, 3, &load));
    assert_eq!(d.replicas, 3, "{}", d.reason);
    assert!(d.reason.contains("panic"), "{}", d.reason);
    assert_eq!(d.recheck_after_ms, Some(2000));
    for t in (2..=60).step_by(2) {
        assert_eq!(tick(&mut h, ctx(t, 3, 3, &load)).replicas, 3, "t={t}");
    }
    // 0 + 60 s < 62: panic over; stable 2 (clamped to [floor(3 / 2) = 1, 3000]).
    let d = tick(&mut h, ctx(62, 3, 3, &load));
    assert_eq!(d.replicas, 2, "{}", d.reason);
    assert!(
        d.reason.contains("left panic")
            && d.reason
                .contains("stable: 140.0 avg concurrency over 60s vs target 70 -> 2"),
        "{}",
        d.reason
    );
    for t in (64..=200).step_by(2) {
        assert_eq!(tick(&mut h, ctx(t, 2, 2, &load)).replicas, 2, "t={t}");
    }
    assert_eq!(h.state().panic_time_ms, None);
}

/// 700 concurrency (10 pods at target 70) until t=100, 2100 (3x) for 100 < t <= 120,
/// 700 afterwards.
fn burst(s: i64) -> f64 {
    if s > 100 && s <= 120 { 2100.0 } else { 700.0 }
}

#[test]
fn three_x_burst_panics_within_one_panic_window_then_scales_down_gradually() {
    let mut h = Harness::<KnativeConcurrency>::new();
    // Warm up: 10 ready pods -> starts in panic at t=0, leaves it at t=62.
    for t in (0..=100).step_by(2) {
        let d = tick(&mut h, ctx(t, 10, 10, &burst));
        assert_eq!(d.replicas, 10, "t={t}: {}", d.reason);
    }
    assert_eq!(h.state().panic_time_ms, None);

    // t=102: panic window (96, 102] = 4 x 700 + 2 x 2100 = 7000 / 6 = 1166.7 -> dppc 17;
    // 17 / 10 = 1.7 < 2: no panic. Stable: 58 x 700 + 2 x 2100 = 44800 / 60 = 746.7 -> 11.
    let d = tick(&mut h, ctx(102, 10, 10, &burst));
    assert_eq!(d.replicas, 11, "{}", d.reason);
    assert!(d.reason.starts_with("stable"), "{}", d.reason);

    // t=104 (4 s into the burst): panic window 2 x 700 + 4 x 2100 = 9800 / 6 = 1633.3 ->
    // dppc 24; 24 / 10 = 2.4 >= 2 -> PANIC. Stable 56 x 700 + 4 x 2100 = 47600 / 60 = 793.3
    // -> 12. Panic takes max(12, 24) = 24.
    let d = tick(&mut h, ctx(104, 11, 10, &burst));
    assert_eq!(d.replicas, 24, "{}", d.reason);
    assert!(
        d.reason.contains("entering panic: 2.40x of 10 ready"),
        "{}",
        d.reason
    );
    assert!(
        d.reason
            .contains("panic: 1633.3 avg concurrency over 6s vs target 70 -> 24"),
        "{}",
        d.reason
    );

    // t=106: panic window all 2100 -> dppc 30; 30 / 10 = 3.0 -> still breaching
    // (panicTime = 106). Stable 54 x 700 + 6 x 2100 = 50400 / 60 = 840 -> 12. -> 30.
    assert_eq!(tick(&mut h, ctx(106, 24, 10, &burst)).replicas, 30);
    assert_eq!(h.state().panic_time_ms, Some(BASE + 106_000));

    // t=108..120 with 30 ready: dppc 30 / 30 = 1.0, no breach, but still in panic; the
    // stable count (e.g. t=108: 52 x 700 + 8 x 2100 = 53200 / 60 = 886.7 -> 13, clamped up
    // to floor(30 / 2) = 15) is below maxPanicPods 30 -> hold 30.
    for t in (108..=120).step_by(2) {
        assert_eq!(tick(&mut h, ctx(t, 30, 30, &burst)).replicas, 30, "t={t}");
    }
    // Burst over. t=122: panic 4 x 2100 + 2 x 700 = 9800 / 6 -> 24 < 30: no scale-down
    // during panic.
    for t in (122..=166).step_by(2) {
        let d = tick(&mut h, ctx(t, 30, 30, &burst));
        assert_eq!(d.replicas, 30, "t={t}: {}", d.reason);
    }
    // t=166: 106 + 60 = 166 is not before 166 -> still panicking (checked above).
    // t=168: panic ends. Stable (108, 168] = 12 x 2100 + 48 x 700 = 58800 / 60 = 980 -> 14,
    // clamped to floor(30 / 2) = 15: at most halving per decision.
    let d = tick(&mut h, ctx(168, 30, 30, &burst));
    assert_eq!(d.replicas, 15, "{}", d.reason);
    assert!(d.reason.contains("left panic"), "{}", d.reason);
    // t=170 with 15 ready: 10 x 2100 + 50 x 700 = 56000 / 60 = 933.3 -> 14 (>= floor(15/2) = 7).
    assert_eq!(tick(&mut h, ctx(170, 15, 15, &burst)).replicas, 14);
    // t=182: (122, 182] all 700 -> 10.
    for t in (172..=180).step_by(2) {
        tick(&mut h, ctx(t, 14, 14, &burst));
    }
    assert_eq!(tick(&mut h, ctx(182, 14, 14, &burst)).replicas, 10);
}

#[test]
fn scale_down_is_at_most_halving_per_decision() {
    // 20 ready, load gone quiet but not zero (35 -> ceil(35/70) = 1): 20 -> 10 -> 5 -> 2 -> 1.
    let load = |_| 35.0;
    let mut h = Harness::<KnativeConcurrency>::new();
    // Fresh 20 ready pods start in panic: keep 20 until t=62.
    for t in (0..=60).step_by(2) {
        assert_eq!(tick(&mut h, ctx(t, 20, 20, &load)).replicas, 20);
    }
    assert_eq!(tick(&mut h, ctx(62, 20, 20, &load)).replicas, 10); // floor(20/2)
    assert_eq!(tick(&mut h, ctx(64, 10, 10, &load)).replicas, 5); // floor(10/2)
    assert_eq!(tick(&mut h, ctx(66, 5, 5, &load)).replicas, 2); // floor(5/2)
    assert_eq!(tick(&mut h, ctx(68, 2, 2, &load)).replicas, 1); // max(1, floor(2/2))
}

#[test]
fn idle_goes_to_zero_after_stable_window_and_grace_then_wakes_on_first_request() {
    // 50 concurrency until t=100, nothing after; one request (3 concurrent) at t=300.
    let load = |s: i64| {
        if s <= 100 {
            50.0
        } else if s == 300 {
            3.0
        } else {
            0.0
        }
    };
    let mut h = Harness::<KnativeConcurrency>::new();
    for t in (0..=158).step_by(2) {
        // Until t=158 the stable window still holds traffic: ceil(small / 70) = 1.
        assert_eq!(tick(&mut h, ctx(t, 1, 1, &load)).replicas, 1, "t={t}");
    }
    // t=160: (100, 160] all zero -> dspc 0; floor(1/2) = 0 -> desired 0. Active since t=0
    // (>= 60 s): marked inactive, the 30 s grace starts; the pod is kept.
    let d = tick(&mut h, ctx(160, 1, 1, &load));
    assert_eq!(d.replicas, 1, "{}", d.reason);
    assert!(
        d.reason.contains("inactive, scale to zero after 30s"),
        "{}",
        d.reason
    );
    for t in (162..=188).step_by(2) {
        let d = tick(&mut h, ctx(t, 1, 1, &load));
        assert_eq!(d.replicas, 1, "t={t}: {}", d.reason);
    }
    // t=190: inactive for 30 s >= grace -> 0.
    let d = tick(&mut h, ctx(190, 1, 1, &load));
    assert_eq!(d.replicas, 0, "{}", d.reason);
    assert!(d.reason.contains("scaling to zero"), "{}", d.reason);
    for t in (192..=298).step_by(2) {
        assert_eq!(tick(&mut h, ctx(t, 0, 0, &load)).replicas, 0, "t={t}");
    }
    // t=300: first request. ready = max(1, 0) = 1; stable 3 / 60 = 0.05 -> ceil = 1;
    // panic 3 / 6 = 0.5 -> 1; 1 / 1 < 2 -> no panic -> 1 pod.
    let d = tick(&mut h, ctx(300, 0, 0, &load));
    assert_eq!(d.replicas, 1, "{}", d.reason);
    // Pods asked for, none ready: activating (the active time starts once they are ready).
    assert_eq!(h.state().condition.activity, Activity::Activating);
}

#[test]
fn activation_scale_floors_scale_from_zero() {
    // activationScale 3: the same first request from zero brings up 3 pods.
    let load = |s: i64| if s == 300 { 3.0 } else { 0.0 };
    let cfg = r#"{"activationScale":3}"#;
    let d = evaluate::<KnativeConcurrency>(&ctx_with(cfg, "concurrency", 300, 0, 0, &load)).unwrap();
    assert_eq!(d.replicas, 3, "{}", d.reason);
    // No traffic at all: stays at zero (activation scale only applies when dspc > 0).
    let none = |_| 0.0;
    let d = evaluate::<KnativeConcurrency>(&ctx_with(cfg, "concurrency", 300, 0, 0, &none)).unwrap();
    assert_eq!(d.replicas, 0, "{}", d.reason);
}

#[test]
fn scale_to_zero_disabled_keeps_one_and_min_scale_holds() {
    let none = |_| 0.0;
    let d = evaluate::<KnativeConcurrency>(&ctx_with(
        r#"{"enableScaleToZero":false}"#,
        "concurrency",
        300,
        1,
        1,
        &none,
    ))
    .unwrap();
    assert_eq!(d.replicas, 1);
    assert!(d.reason.contains("scale to zero disabled"), "{}", d.reason);
    let d = evaluate::<KnativeConcurrency>(&ctx_with(r#"{"minScale":2}"#, "concurrency", 300, 2, 2, &none))
        .unwrap();
    // Fresh with 2 ready: panic, maxPanicPods 2 -> 2 anyway; minScale 2 holds after as well.
    assert_eq!(d.replicas, 2);
    // maxScale caps: 7000 concurrency -> 100 wanted, maxScale 20.
    let big = |_| 7000.0;
    let d = evaluate::<KnativeConcurrency>(&ctx_with(r#"{"maxScale":20}"#, "concurrency", 300, 1, 1, &big))
        .unwrap();
    assert_eq!(d.replicas, 20, "{}", d.reason);
}

#[test]
fn rps_mode_uses_rps_signal_and_target() {
    // metric rps: target 200 x 70 % = 140 rps per pod. 420 rps -> ceil(3) = 3.
    let cfg = r#"{"metric":"rps"}"#;
    let load = |_| 420.0;
    let mut h = Harness::<KnativeConcurrency>::new();
    // 4 ready: starts in panic (maxPanicPods 4) until t=62.
    assert_eq!(tick(&mut h, ctx_with(cfg, "rps", 0, 4, 4, &load)).replicas, 4);
    for t in (2..=60).step_by(2) {
        tick(&mut h, ctx_with(cfg, "rps", t, 4, 4, &load));
    }
    let d = tick(&mut h, ctx_with(cfg, "rps", 62, 4, 4, &load));
    assert_eq!(d.replicas, 3, "{}", d.reason);
    assert!(
        d.reason.contains("420.0 avg rps over 60s vs target 140"),
        "{}",
        d.reason
    );
    // Only a concurrency signal: rps is missing.
    let err = evaluate::<KnativeConcurrency>(&ctx_with(cfg, "concurrency", 0, 1, 1, &load)).unwrap_err();
    assert!(
        matches!(&err, PolicyError::MissingSignal(m) if m.contains("'rps'")),
        "{err}"
    );
    // rps with target 50 and 100 % utilisation: 420 / 50 = 8.4 -> 9; ready 1 -> panic
    // (9 / 1 >= 2) -> max(9, 9) = 9.
    let d = evaluate::<KnativeConcurrency>(&ctx_with(
        r#"{"metric":"rps","target":50,"targetUtilizationPercentage":100}"#,
        "rps",
        0,
        1,
        1,
        &load,
    ))
    .unwrap();
    assert_eq!(d.replicas, 9, "{}", d.reason);
}

#[test]
fn concurrency_target_resolution() {
    // containerConcurrency 10 -> target 10 x 0.7 = 7; 70 concurrency -> 10 pods.
    // target 50 with containerConcurrency 10 -> min(50, 10) = 10 -> 7 -> 10 pods.
    // target 50 alone -> 35 -> ceil(70 / 35) = 2. ready 10 fresh -> panic maxPanicPods 10,
    // so use ready 1 and read the stable figure from the metric.
    let load = |_| 70.0;
    for (cfg, target) in [
        (r#"{"containerConcurrency":10}"#, 7.0),
        (r#"{"containerConcurrency":10,"target":50}"#, 7.0),
        (r#"{"target":50}"#, 35.0),
        (r#"{"target":50,"targetUtilizationPercentage":100}"#, 50.0),
        ("{}", 70.0),
    ] {
        let d = evaluate::<KnativeConcurrency>(&ctx_with(cfg, "concurrency", 0, 1, 1, &load)).unwrap();
        let got = d
            .metrics
            .iter()
            .find(|m| m.name == "target-concurrency")
            .map(|m| m.value);
        assert_eq!(got, Some(target), "{cfg}");
    }
}

#[test]
fn scale_down_delay_holds_the_window_max() {
    // stableWindow 6s (panic window 10 % = 0.6 s -> rounds to 1 s), scaleDownDelay 10s
    // (5 ticks of 2 s). 700 until t=100, 350 after; 10 ready.
    let cfg = r#"{"stableWindow":"6s","scaleDownDelay":"10s"}"#;
    let load = |s: i64| if s <= 100 { 700.0 } else { 350.0 };
    let mut h = Harness::<KnativeConcurrency>::new();
    for t in (0..=100).step_by(2) {
        assert_eq!(
            tick(&mut h, ctx_with(cfg, "concurrency", t, 10, 10, &load)).replicas,
            10,
            "t={t}"
        );
    }
    // Undelayed recommendations: t=102: (4 x 700 + 2 x 350) / 6 = 583.3 -> 9;
    // t=104: (2 x 700 + 4 x 350) / 6 = 466.7 -> 7; t>=106: 350 -> 5.
    // Delayed: max over the last 5 ticks (10 s): 10 (from t=100) until t=108, then
    // t=110 -> 9 (t=102), t=112 -> 7 (t=104), t=114 -> 5.
    let expect = [
        (102, 10),
        (104, 10),
        (106, 10),
        (108, 10),
        (110, 9),
        (112, 7),
        (114, 5),
        (116, 5),
    ];
    for (t, want) in expect {
        let d = tick(&mut h, ctx_with(cfg, "concurrency", t, 10, 10, &load));
        assert_eq!(d.replicas, want, "t={t}: {}", d.reason);
        if t == 102 {
            assert!(
                d.reason
                    .contains("scale-down delay 10s: staying at 10 instead of 9"),
                "{}",
                d.reason
            );
        }
    }
}

#[test]
fn delay_window_is_knatives_descending_maxima() {
    let mut w = Vec::new();
    assert_eq!(delay_record(&mut w, 3, 0, 5), 5);
    assert_eq!(delay_record(&mut w, 3, 1, 2), 5);
    assert_eq!(delay_record(&mut w, 3, 2, 3), 5);
    assert_eq!(delay_record(&mut w, 3, 3, 1), 3); // 5 (index 0) aged out
    assert_eq!(delay_record(&mut w, 3, 3, 4), 4); // same index: the larger wins
    assert_eq!(delay_record(&mut w, 3, 6, 0), 0);
}

/// Knative's collector on per-second values `b`: recorded in order into a window of
/// `n` seconds, then `IsEmpty` (None) or `WindowAverage` at `now`.
fn window_average(b: &[(i64, f64)], now: i64, n: i64) -> Option<f64> {
    let mut w = Window::default();
    let seconds = Seconds(b);
    for &(s, v) in b {
        w.record(&seconds, s, v, n);
    }
    (!w.is_empty(now, n)).then(|| w.average(&seconds, now, n))
}

#[test]
fn window_average_follows_knative_bucketing() {
    // Full window: plain mean.
    let b: Vec<(i64, f64)> = (41..=100).map(|s| (s, 10.0)).collect();
    assert_eq!(window_average(&b, 100, 60), Some(10.0));
    // Data for 6 s only (a new workload): average over those 6 s, not 60.
    let b: Vec<(i64, f64)> = (95..=100).map(|s| (s, 140.0)).collect();
    assert_eq!(window_average(&b, 100, 60), Some(140.0));
    // Gap shorter than the window inside it: zeros count. Data at 35 then 91..=100 at 700:
    // first write 35 (gap 56 < 60), window 41..100 -> 7000 / 60, floored to 6 decimals as
    // Knative does.
    let mut b = vec![(35, 5.0)];
    b.extend((91..=100).map(|s| (s, 700.0)));
    assert_eq!(window_average(&b, 100, 60), Some(116.666666));
    // Gap of a full window or more restarts the average: data at 0 then 91..=100 -> 700.
    let mut b = vec![(0, 5.0)];
    b.extend((91..=100).map(|s| (s, 700.0)));
    assert_eq!(window_average(&b, 100, 60), Some(700.0));
    // No recent data: average over the part up to the last write: 41..=90 at 10, now 100
    // -> buckets 41..90 (50) -> 10.
    let b: Vec<(i64, f64)> = (1..=90).map(|s| (s, 10.0)).collect();
    assert_eq!(window_average(&b, 100, 60), Some(10.0));
    // Last write exactly a window ago: 0; longer: no data.
    assert_eq!(window_average(&[(40, 9.0)], 100, 60), Some(0.0));
    assert_eq!(window_average(&[(39, 9.0)], 100, 60), None);
    assert_eq!(window_average(&[], 100, 60), None);
}

#[test]
fn no_data_holds_and_missing_signal_errors() {
    // Samples all older than the stable window: the decider has no scale (Knative makes no
    // decision) and a new PA is activating -> the replicas stay as they are.
    let c = ContextBuilder::new()
        .now_ms(BASE)
        .replicas(4, 4)
        .series("concurrency", &[(BASE - 100_000, 500.0)])
        .build();
    let d = evaluate::<KnativeConcurrency>(&c).unwrap();
    assert_eq!(d.replicas, 4);
    assert!(
        d.reason.contains(
            "no concurrency data in the last 60s: the decider keeps its scale (none yet) => 4 replicas"
        ),
        "{}",
        d.reason
    );
    // Signal absent entirely: an error naming it.
    let c = ContextBuilder::new().build();
    assert!(
        matches!(evaluate::<KnativeConcurrency>(&c), Err(PolicyError::MissingSignal(m)) if m.contains("'concurrency'"))
    );
    // NaN and negative samples are errors.
    let c = ContextBuilder::new()
        .series("concurrency", &[(BASE, f64::NAN)])
        .build();
    assert!(
        evaluate::<KnativeConcurrency>(&c)
            .unwrap_err()
            .to_string()
            .contains("NaN")
    );
    let c = ContextBuilder::new()
        .series("concurrency", &[(BASE, -1.0)])
        .build();
    assert!(
        evaluate::<KnativeConcurrency>(&c)
            .unwrap_err()
            .to_string()
            .contains("negative")
    );
}

#[test]
fn initial_scale_until_first_reached() {
    // initialScale 3, no traffic (zeros), nothing ready yet -> 3.
    let none = |_| 0.0;
    let cfg = r#"{"initialScale":3}"#;
    let mut h = Harness::<KnativeConcurrency>::new();
    let d = tick(&mut h, ctx_with(cfg, "concurrency", 0, 0, 0, &none));
    assert_eq!(d.replicas, 3, "{}", d.reason);
    assert!(!h.state().initialized);
    // Once 3 are ready the initial scale no longer applies (fresh panic holds 3 for 60 s).
    tick(&mut h, ctx_with(cfg, "concurrency", 2, 3, 3, &none));
    assert!(h.state().initialized);
}

#[test]
fn longer_stable_windows_read_host_history() {
    // stableWindow 120s needs 240 s of samples: read via host::history.
    let hist: Vec<_> = (-239..=0)
        .map(|s| wasmscaler_sdk::Sample::new(BASE + s * 1000, if s > -60 { 0.0 } else { 1400.0 }))
        .collect();
    wasmscaler_sdk::testing::set_history("concurrency", hist);
    // Context holds only the last 120 s (zeros after -60 and 1400 before).
    // Stable (120 s): 60 x 1400 / 120 = 700 -> 10. Panic (12 s): 0 -> 0.
    let c = ctx_with(r#"{"stableWindow":120}"#, "concurrency", 0, 1, 1, &|s| {
        if s > -60 { 0.0 } else { 1400.0 }
    });
    let d = evaluate::<KnativeConcurrency>(&c).unwrap();
    assert_eq!(d.replicas, 10, "{}", d.reason);
}

#[test]
fn validate_names_the_key() {
    let cases = [
        (r#"{"target":0}"#, "'target' must be a number >= 0.01"),
        (r#"{"target":-5}"#, "'target'"),
        (r#"{"containerConcurrency":1001}"#, "'containerConcurrency'"),
        (r#"{"containerConcurrency":-1}"#, "containerConcurrency"),
        (
            r#"{"targetUtilizationPercentage":0}"#,
            "'targetUtilizationPercentage'",
        ),
        (
            r#"{"targetUtilizationPercentage":150}"#,
            "'targetUtilizationPercentage'",
        ),
        (
            r#"{"stableWindow":"5s"}"#,
            "'stableWindow' must be in [6s, 1h], got 5s",
        ),
        (r#"{"stableWindow":"2h"}"#, "'stableWindow'"),
        (
            r#"{"stableWindow":"60.5s"}"#,
            "'stableWindow' must be whole seconds",
        ),
        (r#"{"stableWindow":"sixty"}"#, "stableWindow"),
        (r#"{"panicWindowPercentage":0}"#, "'panicWindowPercentage'"),
        (
            r#"{"panicThresholdPercentage":100}"#,
            "'panicThresholdPercentage'",
        ),
        (r#"{"maxScaleUpRate":1}"#, "'maxScaleUpRate' must be a number > 1"),
        (
            r#"{"maxScaleDownRate":0.5}"#,
            "'maxScaleDownRate' must be a number > 1",
        ),
        (
            r#"{"scaleToZeroGracePeriod":"0s"}"#,
            "'scaleToZeroGracePeriod' must be > 0",
        ),
        (r#"{"scaleToZeroGracePeriod":-3}"#, "'scaleToZeroGracePeriod'"),
        (
            r#"{"scaleToZeroPodRetentionPeriod":"-1s"}"#,
            "'scaleToZeroPodRetentionPeriod'",
        ),
        (r#"{"scaleDownDelay":"-10s"}"#, "'scaleDownDelay'"),
        (
            r#"{"scaleDownDelay":"1500ms"}"#,
            "'scaleDownDelay' must be whole seconds",
        ),
        (r#"{"initialScale":0}"#, "'initialScale'"),
        (r#"{"activationScale":0}"#, "'activationScale'"),
        (
            r#"{"minScale":5,"maxScale":3}"#,
            "'minScale' (5) must be <= 'maxScale' (3)",
        ),
        (r#"{"targetBurstCapacity":-2}"#, "'targetBurstCapacity'"),
        (r#"{"metric":"cpu"}"#, "metric"),
        (r#"{"window":"60s"}"#, "unknown field `window`"),
        (
            r#"{"scaleToZeroGrace":"30s"}"#,
            "unknown field `scaleToZeroGrace`",
        ),
    ];
    for (cfg, needle) in cases {
        let err = validate::<KnativeConcurrency>(cfg).expect_err(cfg);
        assert!(matches!(err, PolicyError::InvalidConfig(_)), "{cfg}: {err}");
        assert!(err.to_string().contains(needle), "{cfg}: {err}");
    }
    validate::<KnativeConcurrency>("{}").unwrap();
    validate::<KnativeConcurrency>(r#"{"initialScale":0,"allowZeroInitialScale":true}"#).unwrap();
    validate::<KnativeConcurrency>(
        r#"{"metric":"concurrency","containerConcurrency":50,"target":40,"targetUtilizationPercentage":80,
            "stableWindow":"2m","panicWindowPercentage":20,"panicThresholdPercentage":150,"maxScaleUpRate":10,
            "maxScaleDownRate":4,"scaleToZeroGracePeriod":"45s","scaleToZeroPodRetentionPeriod":"1m",
            "scaleDownDelay":"15m","initialScale":2,"activationScale":2,"minScale":0,"maxScale":50,
            "enableScaleToZero":true,"targetBurstCapacity":-1}"#,
    )
    .unwrap();
}

#[test]
fn state_is_small() {
    let mut h = Harness::<KnativeConcurrency>::new();
    let cfg = r#"{"scaleDownDelay":"1h"}"#;
    for t in (0..=400).step_by(2) {
        let load = move |s: i64| (s * 7919).rem_euclid(3000) as f64;
        tick(&mut h, ctx_with(cfg, "concurrency", t, 10, 10, &load));
    }
    let s: State = h.state();
    let bytes = wasmscaler_sdk::encode_state(&s).unwrap();
    assert!(bytes.len() < 64 * 1024, "{}", bytes.len());
}

#[test]
fn scenarios() {
    let n = check_scenarios::<KnativeConcurrency>(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios"));
    assert!(n > 0, "no scenarios found");
}

/// The stable average `reason` reports ("stable: X avg" or, in panic, "stable X over").
fn stable_avg(reason: &str) -> f64 {
    let (_, rest) = reason
        .split_once("stable: ")
        .or_else(|| reason.split_once("stable "))
        .unwrap_or_else(|| panic!("no stable average in: {reason}"));
    rest.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no stable average in: {reason}"))
}

#[test]
fn a_source_that_revises_seconds_already_recorded_does_not_skew_the_windows() {
    // A real Prometheus revises its newest points: a scrape ingested after the query, or
    // a range grid that moved by a few ms, changes the value of a second the policy has
    // recorded already. The windows then hold what the source says now, never a phantom
    // load that outlives the window (or a negative one).
    let cfg = r#"{"stableWindow": "6s", "scaleToZeroGracePeriod": "30s"}"#;
    let mut h = Harness::<KnativeConcurrency>::new();
    let first = |s: i64| if s <= 100 { 45.0 } else { 0.0 };
    for t in (0..=100).step_by(2) {
        tick(&mut h, ctx_with(cfg, "concurrency", t, 5, 5, &first));
    }
    // Seconds 99 and 100 were 45 when recorded; the source now says 0.
    let revised_down = |s: i64| if s <= 98 { 45.0 } else { 0.0 };
    let mut d = tick(&mut h, ctx_with(cfg, "concurrency", 102, 5, 5, &revised_down));
    for t in (104..=120).step_by(2) {
        d = tick(&mut h, ctx_with(cfg, "concurrency", t, 5, 5, &revised_down));
    }
    assert_eq!(
        stable_avg(&d.reason),
        0.0,
        "a whole window of zeros: {}",
        d.reason
    );

    // Seconds 121 and 122 were 0 when recorded; the source now says 45 (a late scrape).
    let mut d = tick(&mut h, ctx_with(cfg, "concurrency", 122, 5, 5, &revised_down));
    assert_eq!(stable_avg(&d.reason), 0.0, "{}", d.reason);
    let revised_up = |s: i64| {
        if s <= 98 || s == 121 || s == 122 {
            45.0
        } else {
            0.0
        }
    };
    for t in (124..=140).step_by(2) {
        d = tick(&mut h, ctx_with(cfg, "concurrency", t, 5, 5, &revised_up));
        assert!(stable_avg(&d.reason) >= 0.0, "t={t}: {}", d.reason);
    }
    assert_eq!(
        stable_avg(&d.reason),
        0.0,
        "a whole window of zeros: {}",
        d.reason
    );
    // And it still sees real load at once.
    let back = |s: i64| {
        if s <= 98 || s == 121 || s == 122 || s >= 142 {
            45.0
        } else {
            0.0
        }
    };
    let d = tick(&mut h, ctx_with(cfg, "concurrency", 142, 5, 5, &back));
    assert!(stable_avg(&d.reason) > 0.0, "{}", d.reason);
}
