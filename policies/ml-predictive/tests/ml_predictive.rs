//! Native tests of ml-predictive through the SDK harness (the component's code path).

use policy_ml_predictive::{MlPredictive, State};
use wasmscaler_sdk::testing::{
    ContextBuilder, DEFAULT_NOW_MS, Harness, check_scenarios, evaluate, set_history, validate,
};
use wasmscaler_sdk::{Decision, PolicyError, Sample};

const H: i64 = 3_600_000;
const DAY: i64 = 24 * H;
/// DEFAULT_NOW_MS is 2026-01-01T00:00Z, so `now` below is 11:50 on that day.
const NOW: i64 = DEFAULT_NOW_MS + 11 * H + 50 * 60_000;

/// Hourly history for `days` days ending at 11:00 today (the last complete hour before
/// NOW): 100 every hour except 12:00, which is `peak`.
fn daily_peak_history(days: i64, peak: f64) -> Vec<Sample> {
    let last = DEFAULT_NOW_MS + 11 * H;
    (0..days * 24)
        .rev()
        .map(|k| {
            let at = last - k * H;
            let hour = (at - DEFAULT_NOW_MS).rem_euclid(DAY) / H;
            Sample::new(at, if hour == 12 { peak } else { 100.0 })
        })
        .collect()
}

fn ctx(load: f64, replicas: u32, config: &str) -> wasmscaler_sdk::Context {
    ContextBuilder::new()
        .now_ms(NOW)
        .replicas(replicas, replicas)
        .bounds(2, 100)
        .config(config)
        .series("load", &[(NOW - 15_000, load), (NOW, load)])
        .build()
}

fn metric(d: &Decision, name: &str) -> f64 {
    d.metrics
        .iter()
        .find(|m| m.name == name)
        .map(|m| m.value)
        .unwrap_or(f64::NAN)
}

#[test]
fn scales_up_before_a_predictable_peak() {
    // 14 days of a 1000-at-noon, 100-otherwise pattern; it is 11:50 and the load is 100.
    // Reactive: ceil(100 / 105) = 1 -> clamped to min 2. Forecast peak over the next 15 min
    // includes the 12:00 point ~1000: ceil(1000 x 1.2 / 105) = ceil(11.43) = 12.
    set_history("load", daily_peak_history(14, 1000.0));
    let d = evaluate::<MlPredictive>(&ctx(100.0, 2, r#"{"targetPerReplica": 105, "margin": 0.2}"#)).unwrap();
    assert_eq!(d.replicas, 12, "{}", d.reason);
    assert!(d.reason.starts_with("forecast:"), "{}", d.reason);
    assert!(d.reason.contains("MSTL[24,168]+ETS"), "{}", d.reason);
    assert_eq!(metric(&d, "refit"), 1.0);
    assert_eq!(metric(&d, "reactive_replicas"), 1.0);
    let peak = metric(&d, "forecast_peak");
    assert!((963.0..=1050.0).contains(&peak), "peak {peak}");

    // The same history at 09:00 (the peak is 3 h away, beyond the horizon): reactive.
    let early = ContextBuilder::new()
        .now_ms(DEFAULT_NOW_MS + 9 * H)
        .bounds(2, 100)
        .config(r#"{"targetPerReplica": 105, "margin": 0.2}"#)
        .latest("load", 100.0)
        .build();
    set_history(
        "load",
        daily_peak_history(14, 1000.0)
            .into_iter()
            .filter(|s| s.at_ms <= DEFAULT_NOW_MS + 9 * H)
            .collect(),
    );
    let d = evaluate::<MlPredictive>(&early).unwrap();
    // Forecast ~100 x 1.2 / 105 -> 2 (1.14 rounds up), reactive 1: both below min 2.
    assert_eq!(d.replicas, 2, "{}", d.reason);
}

#[test]
fn never_scales_in_on_a_forecast_alone() {
    // History says a flat 100, but the load is 900 now on 12 replicas.
    // Forecast: ~100 x 1.2 / 100 -> 2 (ratio 9 clamped to maxLevelRatio 2 -> 200 x 1.2 / 100 = 2.4 -> 3).
    // Reactive floor: ceil(900 / 100) = 9. Desired = max(3, 9) = 9: the scale-in from 12 goes
    // only as far as the reactive answer allows.
    set_history("load", daily_peak_history(14, 100.0));
    let d = evaluate::<MlPredictive>(&ctx(900.0, 12, r#"{"targetPerReplica": 100, "margin": 0.2}"#)).unwrap();
    assert_eq!(d.replicas, 9, "{}", d.reason);
    assert!(d.reason.starts_with("reactive floor:"), "{}", d.reason);
    assert!(d.reason.contains("reactive 900.0 / 100 -> 9"), "{}", d.reason);
    // Without level correction the forecast alone would say ceil(100 x 1.2 / 100) = 2.
    let d = evaluate::<MlPredictive>(&ctx(
        900.0,
        12,
        r#"{"targetPerReplica": 100, "margin": 0.2, "levelCorrection": "off"}"#,
    ))
    .unwrap();
    assert_eq!(d.replicas, 9, "{}", d.reason);
    assert!(d.reason.contains("-> 2;"), "{}", d.reason);
}

#[test]
fn short_history_is_reactive_with_a_reason() {
    // 36 hourly points = 1.5 days < 2 daily cycles. Reactive: ceil(450 / 100) = 5.
    set_history("load", daily_peak_history(2, 1000.0).split_off(12));
    let d = evaluate::<MlPredictive>(&ctx(450.0, 3, "{}")).unwrap();
    assert_eq!(d.replicas, 5, "{}", d.reason);
    assert!(
        d.reason
            .contains("reactive only (history too short: 1.5 days < 2 x 1d"),
        "{}",
        d.reason
    );
    assert_eq!(metric(&d, "refit"), 0.0);
}

#[test]
fn nan_in_history_is_reactive_with_a_reason() {
    let mut h = daily_peak_history(14, 1000.0);
    h[100].value = f64::NAN;
    h[200].value = f64::INFINITY;
    set_history("load", h);
    // Reactive: ceil(250 / 100) = 3.
    let d = evaluate::<MlPredictive>(&ctx(250.0, 3, "{}")).unwrap();
    assert_eq!(d.replicas, 3, "{}", d.reason);
    assert!(
        d.reason.contains("history has 2 NaN/infinite values out of 336"),
        "{}",
        d.reason
    );
}

#[test]
fn gappy_or_missing_history_is_reactive() {
    // Two whole days missing in the middle: 48 of 336 grid points (14 % > 10 %).
    let mut h = daily_peak_history(14, 1000.0);
    h.drain(100..148);
    set_history("load", h);
    let d = evaluate::<MlPredictive>(&ctx(250.0, 3, "{}")).unwrap();
    assert!(
        d.reason.contains("history too gappy: 48 of 336 points missing"),
        "{}",
        d.reason
    );
    assert_eq!(d.replicas, 3);
    // No history source at all: still a reactive answer.
    let d = evaluate::<MlPredictive>(&ctx(250.0, 3, r#"{"signal": "nothing"}"#));
    // The 'nothing' signal has no current sample and no history: that is an error.
    assert!(matches!(d, Err(PolicyError::MissingSignal(_))), "{d:?}");
}

#[test]
fn refit_is_cached_for_the_refit_interval() {
    set_history("load", daily_peak_history(14, 1000.0));
    let mut h = Harness::<MlPredictive>::new();
    let cfg = r#"{"targetPerReplica": 105, "margin": 0.2, "refitInterval": "1h"}"#;
    let d1 = h.tick(ctx(100.0, 2, cfg)).unwrap();
    assert_eq!(metric(&d1, "refit"), 1.0);
    assert!(d1.reason.contains("(refit: MSTL"), "{}", d1.reason);
    let cached = h.state().cached.expect("forecast cached");
    assert_eq!(cached.fitted_at_ms, NOW);
    // 11:00 origin to 11:50 + 1h + 15m = 2h05m -> ceil(2.08) + 1 = 4 hourly points.
    assert_eq!(cached.points.len(), 4);

    // 5 min later, within the refit interval: no fit, and the history is not even read
    // (a NaN history would otherwise force the reactive answer).
    let mut bad = daily_peak_history(14, 1000.0);
    bad[0].value = f64::NAN;
    set_history("load", bad);
    let mut c = ctx(100.0, 12, cfg);
    c.now_ms = NOW + 5 * 60_000;
    let d2 = h.tick(c).unwrap();
    assert_eq!(metric(&d2, "refit"), 0.0);
    assert!(d2.reason.contains("cached MSTL[24,168]+ETS"), "{}", d2.reason);
    assert!(d2.reason.contains("fit 5m ago"), "{}", d2.reason);
    assert_eq!(d2.replicas, 12);

    // 1 h after the fit the cache is stale: refit, which now meets the NaN history.
    let mut c = ctx(100.0, 12, cfg);
    c.now_ms = NOW + H;
    let d3 = h.tick(c).unwrap();
    assert!(d3.reason.contains("NaN"), "{}", d3.reason);
    assert_eq!(h.state().cached, None);

    // A config change (another step) invalidates the cache too.
    set_history("load", daily_peak_history(14, 1000.0));
    let mut h = Harness::<MlPredictive>::new();
    h.tick(ctx(100.0, 2, cfg)).unwrap();
    let d = h
        .tick(ctx(
            100.0,
            2,
            r#"{"targetPerReplica": 105, "margin": 0.2, "historyStep": "1h"}"#,
        ))
        .unwrap();
    assert_eq!(metric(&d, "refit"), 1.0);
}

#[test]
fn state_stays_small() {
    // Worst case allowed by validation: 1500 cached points.
    set_history(
        "load",
        (0..3 * 1440)
            .map(|k| Sample::new(NOW - k * 60_000, 100.0 + (k % 1440) as f64))
            .rev()
            .collect(),
    );
    let d = evaluate::<MlPredictive>(&ctx(
        100.0,
        2,
        r#"{"historyStep": "1m", "historyWindow": "3d", "refitInterval": "1d"}"#,
    ))
    .unwrap();
    let len = d.state.as_ref().map(|s| s.len()).unwrap_or(0);
    assert!(len < 64 * 1024, "state {len} bytes");
    assert!(len > 1000, "state {len} bytes");
}

#[test]
fn bad_config_names_the_key() {
    let cases = [
        (r#"{"targetPerReplica": 0}"#, "'targetPerReplica'"),
        (r#"{"margin": -0.1}"#, "'margin'"),
        (
            r#"{"horizon": "45s"}"#,
            "'horizon' (45s) must exceed 'podStartup' (1m)",
        ),
        (r#"{"horizon": "10m", "podStartup": "10m"}"#, "'horizon'"),
        (
            r#"{"horizon": "15x"}"#,
            "at 'horizon': '15x' has an unknown unit 'x'",
        ),
        (
            r#"{"historyWindow": "1d"}"#,
            "'historyWindow' (1d) must cover at least 2d",
        ),
        (
            r#"{"historyWindow": "30d", "historyStep": "1m"}"#,
            "over the host's budget",
        ),
        (r#"{"refitInterval": "0s"}"#, "'refitInterval'"),
        (r#"{"maxLevelRatio": 0.5}"#, "'maxLevelRatio'"),
        (r#"{"levelCorrection": "sideways"}"#, "at 'levelCorrection'"),
        (r#"{"refitIntervall": "1h"}"#, "unknown field `refitIntervall`"),
        (r#"{"signal": " "}"#, "'signal'"),
    ];
    for (cfg, needle) in cases {
        let err = validate::<MlPredictive>(cfg).unwrap_err();
        assert!(matches!(err, PolicyError::InvalidConfig(_)), "{cfg}: {err}");
        assert!(err.to_string().contains(needle), "{cfg}: {err}");
    }
    validate::<MlPredictive>("{}").unwrap();
    validate::<MlPredictive>(
        r#"{"horizon": 1200, "refitInterval": "30m", "historyWindow": "14d", "levelCorrection": "both"}"#,
    )
    .unwrap();
}

#[test]
fn scenarios_pass_natively() {
    let n = check_scenarios::<MlPredictive>(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios"));
    assert!(n > 0);
}

#[test]
fn reactive_answer_holds_recent_peak_and_follows_a_rising_trend() {
    // Short history: reactive only. Load over the last minute: 100, 200, 300, 400, 500
    // at 15 s steps -> both halves rise 100 per 15 s = 400 per minute; podStartup 60 s,
    // damped by the default trendDamping 0.5: 500 + 200 = 700 -> ceil(700 / 100) = 7.
    set_history("load", daily_peak_history(1, 100.0));
    let rising: Vec<(i64, f64)> = (0..5)
        .map(|k| (NOW - (4 - k) * 15_000, 100.0 * (k + 1) as f64))
        .collect();
    let c = ContextBuilder::new()
        .now_ms(NOW)
        .bounds(2, 100)
        .series("load", &rising)
        .build();
    let d = evaluate::<MlPredictive>(&c).unwrap();
    assert_eq!(d.replicas, 7, "{}", d.reason);
    assert!(
        d.reason
            .contains("reactive 500.0 rising to 700.0 in 1m / 100 -> 7"),
        "{}",
        d.reason
    );
    // Undamped: 400 per minute, but the 1-minute window (after its oldest sample) holds
    // 200..500: no more than the 300 it shows -> 800 -> 8.
    let c1 = ContextBuilder::new()
        .now_ms(NOW)
        .bounds(2, 100)
        .config(r#"{"trendDamping": 1}"#)
        .series("load", &rising)
        .build();
    assert_eq!(evaluate::<MlPredictive>(&c1).unwrap().replicas, 8);
    // Trend off: ceil(500 / 100) = 5.
    let c2 = ContextBuilder::new()
        .now_ms(NOW)
        .bounds(2, 100)
        .config(r#"{"trendWindow": "0s"}"#)
        .series("load", &rising)
        .build();
    assert_eq!(evaluate::<MlPredictive>(&c2).unwrap().replicas, 5);

    // A dip after a peak: 700 four minutes ago, 300 now. Peak window 5m holds 700 -> 7;
    // trend is falling (no effect). With peakWindow 0s: ceil(300 / 100) = 3.
    let dip = [(NOW - 240_000, 700.0), (NOW - 120_000, 300.0), (NOW, 300.0)];
    let c = ContextBuilder::new()
        .now_ms(NOW)
        .bounds(2, 100)
        .config(r#"{"peakWindow": "5m"}"#)
        .series("load", &dip)
        .build();
    let d = evaluate::<MlPredictive>(&c).unwrap();
    assert_eq!(d.replicas, 7, "{}", d.reason);
    assert!(
        d.reason
            .contains("reactive 300.0 (peak 700.0 over 5m) / 100 -> 7"),
        "{}",
        d.reason
    );
    let c = ContextBuilder::new()
        .now_ms(NOW)
        .bounds(2, 100)
        .config(r#"{"peakWindow": "0s"}"#)
        .series("load", &dip)
        .build();
    assert_eq!(evaluate::<MlPredictive>(&c).unwrap().replicas, 3);
}

#[test]
fn seasonal_naive_model_repeats_yesterday() {
    // Yesterday's noon was 1000, today's history ends at 11:00: the baseline model forecasts
    // exactly the value one day earlier, so the 12:00 point is 1000 and the peak over the
    // next 15 min (11:50..12:05) is on the line from 11:00 (100) to 12:00 (1000), 1000 at
    // 12:00: ceil(1000 x 1.2 / 105) = 12.
    set_history("load", daily_peak_history(3, 1000.0));
    let cfg = r#"{"targetPerReplica": 105, "margin": 0.2, "model": "seasonal-naive"}"#;
    let d = evaluate::<MlPredictive>(&ctx(100.0, 2, cfg)).unwrap();
    assert_eq!(d.replicas, 12, "{}", d.reason);
    assert!(d.reason.contains("seasonal-naive[24]"), "{}", d.reason);
    assert_eq!(metric(&d, "forecast_peak"), 1000.0);

    // Switching the model is a config change: the cached MSTL forecast is not reused.
    let mut h = Harness::<MlPredictive>::new();
    let mstl = h
        .tick(ctx(100.0, 2, r#"{"targetPerReplica": 105, "margin": 0.2}"#))
        .unwrap();
    assert!(mstl.reason.contains("refit: MSTL"), "{}", mstl.reason);
    let naive = h.tick(ctx(100.0, 2, cfg)).unwrap();
    assert!(naive.reason.contains("refit: seasonal-naive"), "{}", naive.reason);

    let err = validate::<MlPredictive>(r#"{"model": "prophet"}"#).unwrap_err();
    assert!(err.to_string().contains("model"), "{err}");
}

/// One sample a second over the last 5 minutes: `before` until `step_ago_s` seconds ago,
/// `after` since (a trace row boundary, as the simulator's `load` signal has it).
fn step_signal(now: i64, before: f64, after: f64, step_ago_s: i64) -> Vec<(i64, f64)> {
    (0..=300)
        .map(|k| {
            let at = now - (300 - k) * 1000;
            (
                at,
                if at < now - step_ago_s * 1000 {
                    before
                } else {
                    after
                },
            )
        })
        .collect()
}

#[test]
fn a_step_at_a_row_boundary_is_not_extrapolated() {
    // The issue's case: the load steps from 2.2 to 4.3 at a row boundary; 4.3 / 0.0845834
    // needs 51 replicas. A least-squares slope over the last minute projected it to 7.4
    // (89 replicas) for most of that minute. Wherever the step lies in the trend window,
    // the answer is what the new level needs.
    set_history("load", daily_peak_history(1, 100.0));
    for ago in [1, 10, 20, 29, 30, 31, 40, 50, 59, 60, 61] {
        let c = ContextBuilder::new()
            .now_ms(NOW)
            .bounds(1, 100)
            .config(r#"{"targetPerReplica": 0.0845834, "trendDamping": 1}"#)
            .series("load", &step_signal(NOW, 2.2, 4.3, ago))
            .build();
        let d = evaluate::<MlPredictive>(&c).unwrap();
        assert_eq!(d.replicas, 51, "step {ago} s ago: {}", d.reason);
        assert!(!d.reason.contains("rising"), "step {ago} s ago: {}", d.reason);
    }
    // A ramp is still followed: 1.0 -> 4.0 over the last minute, 0.05 per second, both
    // halves agree; over a 60 s start-up undamped +3.0 (at most the 3.0 the window shows):
    // 7.0 / 0.15 -> 47.
    let ramp: Vec<(i64, f64)> = (0..=60)
        .map(|k| (NOW - (60 - k) * 1000, 1.0 + 0.05 * k as f64))
        .collect();
    let c = ContextBuilder::new()
        .now_ms(NOW)
        .bounds(1, 100)
        .config(r#"{"targetPerReplica": 0.15, "trendDamping": 1}"#)
        .series("load", &ramp)
        .build();
    let d = evaluate::<MlPredictive>(&c).unwrap();
    assert_eq!(d.replicas, 47, "{}", d.reason);
    assert!(d.reason.contains("rising to 7.0"), "{}", d.reason);
}

#[test]
fn scale_down_waits_for_its_own_stabilization_window() {
    // Reactive only (short history), peak hold off so only the policy's own window holds.
    set_history("load", daily_peak_history(1, 100.0));
    let cfg = r#"{"peakWindow": "0s", "trendWindow": "0s", "scaleDownStabilization": "2m"}"#;
    let at = |t: i64, load: f64| {
        ContextBuilder::new()
            .now_ms(t)
            .bounds(1, 100)
            .config(cfg)
            .series("load", &[(t - 15_000, load), (t, load)])
            .build()
    };
    let mut h = Harness::<MlPredictive>::new();
    assert_eq!(h.tick(at(NOW, 900.0)).unwrap().replicas, 9);
    // The next evaluation never undoes the scale-up: the load fell, the answer holds.
    let d = h.tick(at(NOW + 15_000, 300.0)).unwrap();
    assert_eq!(d.replicas, 9, "{}", d.reason);
    assert!(
        d.reason
            .contains("held at 9 (highest recommendation over the last 2m)"),
        "{}",
        d.reason
    );
    assert_eq!(metric(&d, "recommended_replicas"), 3.0);
    // A lower peak in between supersedes nothing higher: 5 is remembered after 9 expires.
    assert_eq!(h.tick(at(NOW + 60_000, 500.0)).unwrap().replicas, 9);
    assert_eq!(h.tick(at(NOW + 120_000, 300.0)).unwrap().replicas, 5);
    assert_eq!(h.tick(at(NOW + 180_001, 300.0)).unwrap().replicas, 3);
    // Only undominated recommendations are kept: the state stays a handful of entries.
    assert_eq!(h.state().recent, vec![(NOW + 180_001, 3)]);
    // Scale-up is never delayed.
    assert_eq!(h.tick(at(NOW + 195_001, 1200.0)).unwrap().replicas, 12);
    // A clock that went back forgets the window.
    assert_eq!(h.tick(at(NOW, 100.0)).unwrap().replicas, 1);
    // 0s: no stabilization, nothing kept.
    let mut h = Harness::<MlPredictive>::new();
    let off = |t: i64, load: f64| {
        ContextBuilder::new()
            .now_ms(t)
            .bounds(1, 100)
            .config(r#"{"peakWindow": "0s", "trendWindow": "0s", "scaleDownStabilization": "0s"}"#)
            .series("load", &[(t - 15_000, load), (t, load)])
            .build()
    };
    assert_eq!(h.tick(off(NOW, 900.0)).unwrap().replicas, 9);
    assert_eq!(h.tick(off(NOW + 15_000, 300.0)).unwrap().replicas, 3);
    assert!(h.state().recent.is_empty());
}

#[test]
fn stabilization_state_is_bounded() {
    // A recommendation falling by one every evaluation keeps every one of them (each is
    // below the older ones); the state keeps at most MAX_RECENT.
    let mut s = State::default();
    for k in 0..1000u32 {
        s.stabilize(i64::from(k) * 1000, 30 * 60_000, 5000 - k);
    }
    assert_eq!(s.recent.len(), policy_ml_predictive::MAX_RECENT);
    let err = validate::<MlPredictive>(r#"{"scaleDownStabilization": "1h"}"#).unwrap_err();
    assert!(err.to_string().contains("'scaleDownStabilization'"), "{err}");
    let err = validate::<MlPredictive>(r#"{"trendDamping": 1.5}"#).unwrap_err();
    assert!(err.to_string().contains("'trendDamping'"), "{err}");
}
