//! Native tests of the `stateful` policy. Arithmetic in the comments.

use policy_stateful::{MAX_HISTORY, State, Stateful};
use wasmscaler_sdk::PolicyError;
use wasmscaler_sdk::testing::{ContextBuilder, DEFAULT_NOW_MS, Harness, check_scenarios, evaluate, validate};

const T0: i64 = DEFAULT_NOW_MS;
const S: i64 = 1000;

/// The PostgreSQL seed: connections per replica 50, lag guard 5 s, one replica at a time.
const PG: &str = r#"{
  "targets": [{"signal": "connections", "averageValue": 50}],
  "lag": {"signal": "replication-lag", "maxSeconds": 5},
  "step": 1,
  "scaleUpStabilizationSeconds": 60,
  "scaleDownStabilizationSeconds": 600,
  "scaleDownCooldownSeconds": 300,
  "minReplicas": 2,
  "maxReplicas": 10
}"#;

/// The Redis seed: memory 75 % and 10k ops/s per pod, steps of 2, 6..18 pods.
const REDIS: &str = r#"{
  "targets": [
    {"signal": "memory-utilization", "averageUtilization": 75},
    {"signal": "ops", "averageValue": 10000}
  ],
  "step": 2,
  "alignToStep": true,
  "minReplicas": 6,
  "maxReplicas": 18
}"#;

fn pg(at: i64, replicas: u32, ready: u32, conns: f64, lag: f64) -> ContextBuilder {
    ContextBuilder::new()
        .now_ms(at)
        .config(PG)
        .bounds(1, 20)
        .replicas(replicas, ready)
        .latest("connections", conns)
        .latest("replication-lag", lag)
}

fn redis(at: i64, replicas: u32, mem: f64, ops: f64) -> ContextBuilder {
    ContextBuilder::new()
        .now_ms(at)
        .config(REDIS)
        .bounds(1, 30)
        .replicas(replicas, replicas)
        .latest("memory-utilization", mem)
        .latest("ops", ops)
}

#[test]
fn scales_up_one_replica_at_a_time_toward_the_proportional_target() {
    // 300 connections / 50 per replica = 6 wanted; 4 now; step 1 -> 5.
    let d = evaluate::<Stateful>(&pg(T0, 4, 4, 300.0, 0.5).build()).unwrap();
    assert_eq!(d.replicas, 5);
    assert!(d.reason.contains("scaling up 4 -> 5 (want 6)"), "{}", d.reason);
    assert!(
        d.reason
            .contains("connections 300.0 total (75.0/replica) vs 50/replica -> 6"),
        "{}",
        d.reason
    );
}

#[test]
fn holds_within_tolerance() {
    // 210 / (50 x 4) = 1.05, |1.05 - 1| <= 0.1 -> stay at 4.
    let d = evaluate::<Stateful>(&pg(T0, 4, 4, 210.0, 0.0).build()).unwrap();
    assert_eq!(d.replicas, 4);
    assert!(d.reason.starts_with("steady at 4"), "{}", d.reason);
    assert!(d.reason.contains("within tolerance"), "{}", d.reason);
    // 230 / 200 = 1.15 -> ceil(230 / 50) = 5.
    assert_eq!(
        evaluate::<Stateful>(&pg(T0, 4, 4, 230.0, 0.0).build())
            .unwrap()
            .replicas,
        5
    );
}

#[test]
fn replication_lag_holds_the_next_step_and_says_why() {
    // Wants 6, but the lag 12.3 s > 5 s: the previous step has not caught up.
    let d = evaluate::<Stateful>(&pg(T0, 4, 4, 300.0, 12.3).build()).unwrap();
    assert_eq!(d.replicas, 4);
    assert!(
        d.reason
            .starts_with("holding at 4: replica lag 12.3 s > 5 s (want 6"),
        "{}",
        d.reason
    );
    // Exactly at the threshold is not above it: the step goes ahead.
    assert_eq!(
        evaluate::<Stateful>(&pg(T0, 4, 4, 300.0, 5.0).build())
            .unwrap()
            .replicas,
        5
    );
}

#[test]
fn unready_replicas_hold_the_next_step() {
    // 5 desired, 4 Ready: the last step is still starting.
    let d = evaluate::<Stateful>(&pg(T0, 5, 4, 400.0, 0.0).build()).unwrap();
    assert_eq!(d.replicas, 5);
    assert!(
        d.reason.contains("holding at 5: 4/5 replicas Ready"),
        "{}",
        d.reason
    );
    // Both reasons at once.
    let d = evaluate::<Stateful>(&pg(T0, 5, 4, 400.0, 9.0).build()).unwrap();
    assert!(
        d.reason.contains("4/5 replicas Ready, replica lag 9.0 s > 5 s"),
        "{}",
        d.reason
    );
}

#[test]
fn a_configured_lag_signal_that_is_missing_holds() {
    let ctx = ContextBuilder::new()
        .config(PG)
        .replicas(4, 4)
        .latest("connections", 300.0)
        .build();
    let d = evaluate::<Stateful>(&ctx).unwrap();
    assert_eq!(d.replicas, 4);
    assert!(
        d.reason
            .contains("replica lag unknown (signal 'replication-lag' has no samples)"),
        "{}",
        d.reason
    );
}

#[test]
fn scale_up_is_stabilized_over_the_up_window() {
    let mut h = Harness::<Stateful>::new();
    // t0: 200 / (50 x 4) = 1.0 -> 4 recommended.
    assert_eq!(h.tick(pg(T0, 4, 4, 200.0, 0.0).build()).unwrap().replicas, 4);
    // t0+15 s: 300 -> 6 recommended, but the minimum over the last 60 s is 4 (t0).
    let d = h.tick(pg(T0 + 15 * S, 4, 4, 300.0, 0.0).build()).unwrap();
    assert_eq!(d.replicas, 4);
    assert!(
        d.reason
            .contains("want 6 but scale-up stabilization keeps the minimum over 60 s (4)"),
        "{}",
        d.reason
    );
    assert_eq!(
        h.tick(pg(T0 + 30 * S, 4, 4, 300.0, 0.0).build())
            .unwrap()
            .replicas,
        4
    );
    // t0+60 s: the window is (t0, t0+60 s]; t0's 4 has left it -> min is 6 -> step to 5.
    assert_eq!(
        h.tick(pg(T0 + 60 * S, 4, 4, 300.0, 0.0).build())
            .unwrap()
            .replicas,
        5
    );
}

#[test]
fn scale_down_waits_for_the_window_then_removes_one_per_cooldown() {
    let mut h = Harness::<Stateful>::new();
    // 100 connections / 50 = 2 wanted with 6 running. First evaluation: no history, so
    // the current 6 counts as recommended for the whole 600 s down window -> hold.
    let d = h.tick(pg(T0, 6, 6, 100.0, 0.0).build()).unwrap();
    assert_eq!(d.replicas, 6);
    assert!(
        d.reason
            .contains("scale-down stabilization keeps the maximum over 600 s (6)"),
        "{}",
        d.reason
    );
    // t0+300 s: still inside the window.
    assert_eq!(
        h.tick(pg(T0 + 300 * S, 6, 6, 100.0, 0.0).build())
            .unwrap()
            .replicas,
        6
    );
    // t0+600 s: window (t0, t0+600] holds 2 and 2 -> target 2; one step: 6 -> 5.
    let d = h.tick(pg(T0 + 600 * S, 6, 6, 100.0, 0.0).build()).unwrap();
    assert_eq!(d.replicas, 5);
    assert!(d.reason.contains("scaling down 6 -> 5 (want 2)"), "{}", d.reason);
    assert_eq!(h.state().last_scale_down_ms, Some(T0 + 600 * S));
    // t0+700 s: 100 s of the 300 s cooldown have passed -> hold.
    let d = h.tick(pg(T0 + 700 * S, 5, 5, 100.0, 0.0).build()).unwrap();
    assert_eq!(d.replicas, 5);
    assert!(
        d.reason
            .contains("holding at 5: scale-down cooldown, 100 s of 300 s since the last removal"),
        "{}",
        d.reason
    );
    // t0+900 s: cooldown over -> 5 -> 4.
    assert_eq!(
        h.tick(pg(T0 + 900 * S, 5, 5, 100.0, 0.0).build())
            .unwrap()
            .replicas,
        4
    );
    // t0+1200 s: cooldown over again, but lag 7 s > 5 s: never scale down while lagging.
    let d = h.tick(pg(T0 + 1200 * S, 4, 4, 100.0, 7.0).build()).unwrap();
    assert_eq!(d.replicas, 4);
    assert!(d.reason.contains("replica lag 7.0 s > 5 s"), "{}", d.reason);
    // ...nor while a replica is not Ready.
    let d = h.tick(pg(T0 + 1215 * S, 4, 3, 100.0, 0.0).build()).unwrap();
    assert_eq!(d.replicas, 4);
    assert!(d.reason.contains("3/4 replicas Ready"), "{}", d.reason);
    // Both fine: 4 -> 3.
    assert_eq!(
        h.tick(pg(T0 + 1230 * S, 4, 4, 100.0, 0.0).build())
            .unwrap()
            .replicas,
        3
    );
}

#[test]
fn a_short_dip_does_not_scale_down() {
    let mut h = Harness::<Stateful>::new();
    // Steady at 6 for 10 min (300 / 50 = 6)...
    for i in 0..=40 {
        assert_eq!(
            h.tick(pg(T0 + i * 15 * S, 6, 6, 300.0, 0.0).build())
                .unwrap()
                .replicas,
            6
        );
    }
    // ...then a 1-minute dip to 100: the max over the last 600 s is still 6.
    for i in 41..=44 {
        assert_eq!(
            h.tick(pg(T0 + i * 15 * S, 6, 6, 100.0, 0.0).build())
                .unwrap()
                .replicas,
            6
        );
    }
}

#[test]
fn redis_steps_by_two_and_keeps_multiples_of_the_step() {
    // memory: ceil(6 x 90 / 75) = ceil(7.2) = 8; ops: 50000 / 10000 = 5; max 8 -> aligned 8.
    let d = evaluate::<Stateful>(&redis(T0, 6, 90.0, 50_000.0).build()).unwrap();
    assert_eq!(d.replicas, 8);
    assert!(
        d.reason.contains("memory-utilization 90.0% vs 75% -> 8"),
        "{}",
        d.reason
    );
    // ops 70000: 70000 / 60000 = 1.17 -> ceil(7.0) = 7 -> aligned up to 8; memory 70 % within tolerance.
    let d = evaluate::<Stateful>(&redis(T0, 6, 70.0, 70_000.0).build()).unwrap();
    assert_eq!(d.replicas, 8);
    // Far above: memory ceil(6 x 150 / 75) = 12 -> one step of 2 -> 8.
    let d = evaluate::<Stateful>(&redis(T0, 6, 150.0, 0.0).build()).unwrap();
    assert_eq!(d.replicas, 8);
    assert!(d.reason.contains("scaling up 6 -> 8 (want 12)"), "{}", d.reason);
    // From an unaligned 7: back onto the grid, round_down(7) + 2 = 8.
    let d = evaluate::<Stateful>(&redis(T0, 7, 150.0, 0.0).build()).unwrap();
    assert_eq!(d.replicas, 8);
    // Capped at maxReplicas 18: memory wants ceil(16 x 300 / 75) = 64.
    let d = evaluate::<Stateful>(&redis(T0, 16, 300.0, 0.0).build()).unwrap();
    assert_eq!(d.replicas, 18);
}

#[test]
fn redis_never_goes_below_min_and_scales_down_in_pairs() {
    let mut h = Harness::<Stateful>::new();
    // 12 pods, memory 30 %: ceil(12 x 30 / 75) = ceil(4.8) = 5 -> min 6.
    h.tick(redis(T0, 12, 30.0, 0.0).build()).unwrap();
    let d = h.tick(redis(T0 + 600 * S, 12, 30.0, 0.0).build()).unwrap();
    // One step of 2: 12 -> 10.
    assert_eq!(d.replicas, 10);
    assert!(
        d.reason.contains("scaling down 12 -> 10 (want 6)"),
        "{}",
        d.reason
    );
}

#[test]
fn max_step_up_allows_several_steps_per_decision() {
    let cfg = REDIS.replace("\"step\": 2,", "\"step\": 2, \"maxStepUp\": 2,");
    // memory wants 12 from 6: two steps of 2 -> 10.
    let d = evaluate::<Stateful>(&redis(T0, 6, 150.0, 0.0).config(cfg).build()).unwrap();
    assert_eq!(d.replicas, 10);
}

#[test]
fn unaligned_steps_without_align_to_step() {
    let cfg = r#"{"targets":[{"signal":"ops","averageValue":10000}],"step":2}"#;
    let ctx = ContextBuilder::new()
        .config(cfg)
        .bounds(1, 30)
        .replicas(5, 5)
        .latest("ops", 100_000.0)
        .build();
    // Wants 10; 5 + 2 = 7 (no rounding onto multiples of 2).
    assert_eq!(evaluate::<Stateful>(&ctx).unwrap().replicas, 7);
}

#[test]
fn a_missing_target_blocks_scale_down_but_not_scale_up() {
    // ops missing. memory 30 % proposes a scale-down -> hold (the HPA's rule).
    let ctx = ContextBuilder::new()
        .config(REDIS)
        .bounds(1, 30)
        .replicas(12, 12)
        .latest("memory-utilization", 30.0)
        .build();
    let d = evaluate::<Stateful>(&ctx).unwrap();
    assert_eq!(d.replicas, 12);
    assert!(d.reason.contains("signal 'ops' missing"), "{}", d.reason);
    // memory 150 % proposes a scale-up -> go, noting the missing signal.
    let ctx = ContextBuilder::new()
        .config(REDIS)
        .bounds(1, 30)
        .replicas(6, 6)
        .latest("memory-utilization", 150.0)
        .build();
    let d = evaluate::<Stateful>(&ctx).unwrap();
    assert_eq!(d.replicas, 8);
    assert!(d.reason.contains("'ops' missing"), "{}", d.reason);
    // Nothing at all: an error naming the signals.
    let ctx = ContextBuilder::new().config(REDIS).replicas(6, 6).build();
    let err = evaluate::<Stateful>(&ctx).unwrap_err();
    assert!(
        matches!(&err, PolicyError::MissingSignal(m) if m.contains("'memory-utilization', 'ops'")),
        "{err}"
    );
}

#[test]
fn bounds_come_from_the_workload_when_not_configured_and_never_exceed_its_max() {
    let cfg = r#"{"targets":[{"signal":"connections","averageValue":50}],"maxStepUp":100}"#;
    let ctx = ContextBuilder::new()
        .config(cfg)
        .bounds(3, 8)
        .replicas(4, 4)
        .latest("connections", 5000.0)
        .build();
    // 5000 / 50 = 100 -> workload max 8.
    assert_eq!(evaluate::<Stateful>(&ctx).unwrap().replicas, 8);
    // Config max 10 above the workload max 8 -> still 8.
    let cfg = r#"{"targets":[{"signal":"connections","averageValue":50}],"maxStepUp":100,"maxReplicas":10}"#;
    let ctx = ContextBuilder::new()
        .config(cfg)
        .bounds(3, 8)
        .replicas(4, 4)
        .latest("connections", 5000.0)
        .build();
    assert_eq!(evaluate::<Stateful>(&ctx).unwrap().replicas, 8);
}

#[test]
fn scale_from_zero_uses_the_total() {
    let cfg = r#"{"targets":[{"signal":"connections","averageValue":50}],"minReplicas":0,"maxStepUp":10}"#;
    let ctx = ContextBuilder::new()
        .config(cfg)
        .bounds(0, 10)
        .replicas(0, 0)
        .latest("connections", 120.0)
        .build();
    // ceil(120 / 50) = 3.
    assert_eq!(evaluate::<Stateful>(&ctx).unwrap().replicas, 3);
}

#[test]
fn nan_is_an_error() {
    assert!(
        evaluate::<Stateful>(&pg(T0, 4, 4, f64::NAN, 0.0).build())
            .unwrap_err()
            .to_string()
            .contains("NaN")
    );
    assert!(evaluate::<Stateful>(&pg(T0, 4, 4, 300.0, f64::NAN).build()).is_err());
}

#[test]
fn state_stays_small_and_survives_garbage() {
    let mut h = Harness::<Stateful>::new();
    // One evaluation per second for an hour: only the 600 s down window is kept.
    for i in 0..3600 {
        h.tick(pg(T0 + i * S, 6, 6, 300.0, 0.0).build()).unwrap();
    }
    let st: State = h.state();
    assert_eq!(st.recommendations.len(), 600);
    assert!(st.recommendations.len() <= MAX_HISTORY);
    assert!(serde_json_len(&st) < 64 * 1024);
    // Unreadable state starts fresh rather than failing.
    let ctx = pg(T0, 4, 4, 300.0, 0.0).state(Some(b"not json".to_vec())).build();
    assert_eq!(evaluate::<Stateful>(&ctx).unwrap().replicas, 5);
    // Entries from the future (a clock that went back) are dropped, not trusted.
    let future = State {
        recommendations: vec![(T0 + 3_600 * S, 2)],
        last_scale_down_ms: Some(T0 + 3_600 * S),
        started_ms: Some(T0 + 3_600 * S),
    };
    let bytes = wasmscaler_sdk::encode_state(&future).unwrap();
    let d = evaluate::<Stateful>(&pg(T0, 4, 4, 300.0, 0.0).state(Some(bytes)).build()).unwrap();
    assert_eq!(d.replicas, 5);
}

fn serde_json_len(s: &State) -> usize {
    wasmscaler_sdk::encode_state(s).unwrap().len()
}

#[test]
fn config_errors_name_the_key() {
    let cases: &[(&str, &str)] = &[
        (r#"{"targets":[]}"#, "'targets' must name at least one signal"),
        (r#"{}"#, "missing field `targets`"),
        (
            r#"{"targets":[{"signal":"c","averageValue":0}]}"#,
            "'targets[0].averageValue' must be a number > 0",
        ),
        (
            r#"{"targets":[{"signal":"c","averageValue":1},{"signal":"m","averageUtilization":-5}]}"#,
            "'targets[1].averageUtilization' must be a number > 0",
        ),
        (
            r#"{"targets":[{"signal":"c","averageValue":1,"averageUtilization":5}]}"#,
            "'targets[0]' sets both",
        ),
        (
            r#"{"targets":[{"signal":"c"}]}"#,
            "'targets[0]' needs 'averageValue'",
        ),
        (
            r#"{"targets":[{"signal":"","averageValue":1}]}"#,
            "'targets[0].signal' must not be empty",
        ),
        (
            r#"{"targets":[{"signal":"c","averageValue":1},{"signal":"c","averageValue":2}]}"#,
            "'targets[1].signal' repeats 'c'",
        ),
        (
            r#"{"targets":[{"signal":"c","averageValue":1}],"step":0}"#,
            "'step' must be at least 1",
        ),
        (
            r#"{"targets":[{"signal":"c","averageValue":1}],"maxStepDown":0}"#,
            "'maxStepDown'",
        ),
        (
            r#"{"targets":[{"signal":"c","averageValue":1}],"minReplicas":5,"maxReplicas":3}"#,
            "'minReplicas' (5) must not exceed 'maxReplicas' (3)",
        ),
        (
            r#"{"targets":[{"signal":"c","averageValue":1}],"step":2,"alignToStep":true,"minReplicas":5}"#,
            "'minReplicas' (5) must be a multiple of 'step' (2)",
        ),
        (
            r#"{"targets":[{"signal":"c","averageValue":1}],"tolerance":1.5}"#,
            "'tolerance' must be in [0, 1)",
        ),
        (
            r#"{"targets":[{"signal":"c","averageValue":1}],"lag":{"maxSeconds":-1}}"#,
            "'lag.maxSeconds' must be a number > 0",
        ),
        (
            r#"{"targets":[{"signal":"c","averageValue":1}],"scaleDownStabilizationSeconds":7200}"#,
            "'scaleDownStabilizationSeconds' must be within 0..=3600",
        ),
        (
            r#"{"targets":[{"signal":"c","averageValue":1}],"scaleDownCooldownSecs":5}"#,
            "unknown field `scaleDownCooldownSecs`",
        ),
        (
            r#"{"targets":[{"signal":"c","averageValue":1}],"lag":{"maxSecond":5}}"#,
            "at 'lag.maxSecond': unknown field",
        ),
        (
            r#"{"targets":[{"signal":"c","averageValue":1}],"step":-1}"#,
            "at 'step'",
        ),
    ];
    for (cfg, want) in cases {
        let err = validate::<Stateful>(cfg).unwrap_err();
        assert!(matches!(err, PolicyError::InvalidConfig(_)), "{cfg}: {err}");
        assert!(
            err.to_string().contains(want),
            "{cfg}: expected '{want}' in '{err}'"
        );
    }
    validate::<Stateful>(PG).unwrap();
    validate::<Stateful>(REDIS).unwrap();
    // `lag: {}` takes the defaults: replication-lag, 5 s.
    validate::<Stateful>(r#"{"targets":[{"signal":"c","averageValue":1}],"lag":{}}"#).unwrap();
}

#[test]
fn scenarios_pass() {
    let n = check_scenarios::<Stateful>(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios"));
    assert!(n >= 2, "expected the seed scenarios, found {n}");
}
