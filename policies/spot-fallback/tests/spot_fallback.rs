//! Native tests of the `spot-fallback` policy. Arithmetic in the comments.

use policy_spot_fallback::{SpotFallback, State};
use wasmscaler_sdk::testing::{ContextBuilder, DEFAULT_NOW_MS, Harness, check_scenarios, evaluate, validate};
use wasmscaler_sdk::{Decision, PolicyError, PoolReplicas};

const T0: i64 = DEFAULT_NOW_MS;
const S: i64 = 1000;
const M: i64 = 60 * S;

/// The seed: 100 rps per replica, 30 % on-demand, 70 % of replicas kept placed.
const SEED: &str = r#"{
  "averageValue": 100,
  "minReplicas": 3,
  "maxReplicas": 40,
  "pools": [
    {"name": "spot", "capacityType": "spot", "pricePerHour": 0.04},
    {"name": "on-demand", "capacityType": "on-demand", "pricePerHour": 0.10}
  ],
  "onDemandBase": 0.3,
  "minAvailable": 0.7,
  "pendingTimeout": "2m",
  "maxInterruptions": 2,
  "interruptionWindow": "10m",
  "calmPeriod": "10m",
  "moveBackStep": "10%",
  "moveBackInterval": "1m"
}"#;

/// The seed without `minAvailable`, so only the Pending timeout triggers.
fn no_min_available() -> String {
    SEED.replace("\"minAvailable\": 0.7,", "")
}

fn at(t: i64, replicas: u32, load: f64) -> ContextBuilder {
    ContextBuilder::new()
        .now_ms(t)
        .config(SEED)
        .bounds(1, 50)
        .replicas(replicas, replicas)
        .latest("load", load)
}

fn pending(b: ContextBuilder, t: i64, pods: f64, secs: f64) -> ContextBuilder {
    b.series("spot-pending-pods", &[(t, pods)])
        .series("spot-pending-seconds", &[(t, secs)])
}

fn placement(d: &Decision) -> Vec<(String, u32)> {
    d.placement.iter().map(|p| (p.pool.clone(), p.replicas)).collect()
}

fn pl(spot: u32, od: u32) -> Vec<(String, u32)> {
    vec![("spot".into(), spot), ("on-demand".into(), od)]
}

fn metric(d: &Decision, name: &str) -> Option<f64> {
    d.metrics.iter().find(|m| m.name == name).map(|m| m.value)
}

#[test]
fn splits_the_hpa_total_with_an_on_demand_floor_and_reports_cost() {
    // 1000 rps / (100 x 10) = 1.0 -> 10; floor ceil(0.3 x 10) = 3 on-demand, 7 spot.
    let d = evaluate::<SpotFallback>(&at(T0, 10, 1000.0).build()).unwrap();
    assert_eq!(d.replicas, 10);
    assert_eq!(placement(&d), pl(7, 3));
    // 7 x 0.04 + 3 x 0.10 = 0.28 + 0.30 = 0.58 per hour.
    assert!((metric(&d, "expected_hourly_cost").unwrap() - 0.58).abs() < 1e-9);
    assert!((metric(&d, "expected_hourly_cost:spot").unwrap() - 0.28).abs() < 1e-9);
    assert!((metric(&d, "expected_hourly_cost:on-demand").unwrap() - 0.30).abs() < 1e-9);
    assert_eq!(metric(&d, "fallback_replicas"), Some(0.0));
    assert!(
        d.reason.starts_with(
            "10 replicas (load 1000.0 total, 100.0/replica vs 100/replica): on-demand 3 (floor 3), spot 7"
        ),
        "{}",
        d.reason
    );
    assert!(d.reason.ends_with("; expected cost 0.58/h"), "{}", d.reason);
}

#[test]
fn total_follows_the_hpa_rule() {
    // 1500 / 1000 = 1.5 -> ceil(1500 / 100) = 15; floor ceil(4.5) = 5, spot 10.
    let d = evaluate::<SpotFallback>(&at(T0, 10, 1500.0).build()).unwrap();
    assert_eq!((d.replicas, placement(&d)), (15, pl(10, 5)));
    // 1050 / 1000 = 1.05, within tolerance 0.1 -> stays 10.
    let d = evaluate::<SpotFallback>(&at(T0, 10, 1050.0).build()).unwrap();
    assert_eq!(d.replicas, 10);
    assert!(d.reason.contains("(within tolerance)"), "{}", d.reason);
    // 100 rps -> 1, raised to minReplicas 3: floor ceil(0.9) = 1, spot 2.
    let d = evaluate::<SpotFallback>(&at(T0, 10, 100.0).build()).unwrap();
    assert_eq!((d.replicas, placement(&d)), (3, pl(2, 1)));
    // 1e6 rps -> capped at maxReplicas 40: floor 12, spot 28.
    let d = evaluate::<SpotFallback>(&at(T0, 10, 1e6).build()).unwrap();
    assert_eq!((d.replicas, placement(&d)), (40, pl(28, 12)));
    // Workload max 20 below the config max 40 -> 20.
    let d = evaluate::<SpotFallback>(&at(T0, 10, 1e6).bounds(1, 20).build()).unwrap();
    assert_eq!(d.replicas, 20);
}

#[test]
fn on_demand_min_is_an_absolute_floor() {
    let cfg = r#"{"averageValue":100,"onDemandBase":0,"onDemandMin":2}"#;
    let d = evaluate::<SpotFallback>(&at(T0, 10, 1000.0).config(cfg).build()).unwrap();
    // max(ceil(0 x 10), min(2, 10)) = 2 on-demand, 8 spot.
    assert_eq!(placement(&d), pl(8, 2));
    // Only 1 replica: min(2, 1) = 1 on-demand, 0 spot.
    let d = evaluate::<SpotFallback>(&at(T0, 1, 100.0).config(cfg).build()).unwrap();
    assert_eq!(placement(&d), pl(0, 1));
    // Base 0.3 and min 5: max(3, 5) = 5.
    let cfg = r#"{"averageValue":100,"onDemandMin":5}"#;
    let d = evaluate::<SpotFallback>(&at(T0, 10, 1000.0).config(cfg).build()).unwrap();
    assert_eq!(placement(&d), pl(5, 5));
    // No prices configured: no cost metric.
    assert_eq!(metric(&d, "expected_hourly_cost"), None);
}

#[test]
fn spot_pods_pending_past_the_timeout_move_to_on_demand() {
    let cfg = no_min_available();
    // 4 spot pods Pending for 60 s < 2 min: nothing moves yet.
    let d = evaluate::<SpotFallback>(&pending(at(T0, 10, 1000.0).config(cfg.clone()), T0, 4.0, 60.0).build())
        .unwrap();
    assert_eq!(placement(&d), pl(7, 3));
    // ...for 150 s >= 120 s: those 4 move: on-demand 3 + 4 = 7, spot 7 - 4 = 3.
    let d =
        evaluate::<SpotFallback>(&pending(at(T0, 10, 1000.0).config(cfg), T0, 4.0, 150.0).build()).unwrap();
    assert_eq!(placement(&d), pl(3, 7));
    assert!(
        d.reason
            .contains("on-demand 7 (floor 3 + 4 fallback), spot 3; 4 spot pods Pending, oldest 2m30s >= pendingTimeout 2m: moving 4 to on-demand"),
        "{}",
        d.reason
    );
    // Cost: 3 x 0.04 + 7 x 0.10 = 0.12 + 0.70 = 0.82.
    assert!((metric(&d, "expected_hourly_cost").unwrap() - 0.82).abs() < 1e-9);
}

#[test]
fn min_available_moves_pending_spot_pods_at_once() {
    // 10 replicas, 4 spot pods Pending for only 20 s: 10 - 4 = 6 placed < ceil(0.7 x 10) = 7.
    let d = evaluate::<SpotFallback>(&pending(at(T0, 10, 1000.0), T0, 4.0, 20.0).build()).unwrap();
    assert_eq!(placement(&d), pl(3, 7));
    assert!(
        d.reason
            .contains("4 spot pods Pending leave 6 of 10 placed < minAvailable 0.7"),
        "{}",
        d.reason
    );
    // 3 Pending: 7 placed, not below 7 -> wait for the timeout.
    let d = evaluate::<SpotFallback>(&pending(at(T0, 10, 1000.0), T0, 3.0, 20.0).build()).unwrap();
    assert_eq!(placement(&d), pl(7, 3));
}

#[test]
fn a_shift_is_not_repeated_before_the_host_could_act_on_it() {
    let cfg = no_min_available();
    let mut h = Harness::<SpotFallback>::new();
    let d = h
        .tick(pending(at(T0, 10, 1000.0).config(cfg.clone()), T0, 4.0, 150.0).build())
        .unwrap();
    assert_eq!(placement(&d), pl(3, 7));
    // 15 s later the same 4 pods still show Pending (not yet removed): no second move.
    let t = T0 + 15 * S;
    let d = h
        .tick(pending(at(t, 10, 1000.0).config(cfg.clone()), t, 4.0, 165.0).build())
        .unwrap();
    assert_eq!(placement(&d), pl(3, 7));
    assert!(
        d.reason.contains("on-demand fallback (4 spot pods Pending"),
        "{}",
        d.reason
    );
    // 2 min after the move, 2 spot pods are still Pending past the timeout: they move too.
    let t = T0 + 2 * M;
    let d = h
        .tick(pending(at(t, 10, 1000.0).config(cfg), t, 2.0, 130.0).build())
        .unwrap();
    assert_eq!(placement(&d), pl(1, 9));
    assert_eq!(h.state().shifted, 6);
}

#[test]
fn an_interruption_spike_moves_the_whole_spot_share() {
    // 3 events (2, 1, 3 pods) within 10 min > maxInterruptions 2: all 7 spot replicas -> on-demand.
    let ctx = at(T0, 10, 1000.0)
        .series(
            "spot-interruptions",
            &[(T0 - 9 * M, 2.0), (T0 - 5 * M, 1.0), (T0 - M, 3.0)],
        )
        .build();
    let d = evaluate::<SpotFallback>(&ctx).unwrap();
    assert_eq!(placement(&d), pl(0, 10));
    assert!(
        d.reason.contains(
            "3 spot interruptions (6 pods) in the last 10m > 2: moving all 7 spot replicas to on-demand"
        ),
        "{}",
        d.reason
    );
    // Only 2 inside the window (the one 11 min ago is outside): no move.
    let ctx = at(T0, 10, 1000.0)
        .series(
            "spot-interruptions",
            &[(T0 - 11 * M, 2.0), (T0 - 5 * M, 1.0), (T0 - M, 3.0)],
        )
        .build();
    assert_eq!(placement(&evaluate::<SpotFallback>(&ctx).unwrap()), pl(7, 3));
}

#[test]
fn moves_back_gradually_after_a_calm_period() {
    let cfg = no_min_available();
    let mut h = Harness::<SpotFallback>::new();
    let tick = |h: &mut Harness<SpotFallback>, t: i64, pods: f64, secs: f64| {
        h.tick(pending(at(t, 10, 1000.0).config(cfg.clone()), t, pods, secs).build())
            .unwrap()
    };
    // t0: 4 Pending for 150 s -> 4 move (spot 3, on-demand 7).
    assert_eq!(placement(&tick(&mut h, T0, 4.0, 150.0)), pl(3, 7));
    // t0+5m: calm for 5 of 10 min -> keep.
    let d = tick(&mut h, T0 + 5 * M, 0.0, 0.0);
    assert_eq!(placement(&d), pl(3, 7));
    assert!(d.reason.contains("calm for 5m of 10m"), "{}", d.reason);
    // t0+10m: calm -> 10 % of 10 = 1 back to spot.
    let d = tick(&mut h, T0 + 10 * M, 0.0, 0.0);
    assert_eq!(placement(&d), pl(4, 6));
    assert!(
        d.reason.contains("moving 1 back to spot (3 still on on-demand)"),
        "{}",
        d.reason
    );
    // t0+10m30s: the next step waits a full moveBackInterval (1 min).
    assert_eq!(placement(&tick(&mut h, T0 + 10 * M + 30 * S, 0.0, 0.0)), pl(4, 6));
    // t0+11m: another 1.
    assert_eq!(placement(&tick(&mut h, T0 + 11 * M, 0.0, 0.0)), pl(5, 5));
    // t0+12m: the moved-back pod is Pending (20 s, under the timeout): no further move.
    let d = tick(&mut h, T0 + 12 * M, 1.0, 20.0);
    assert_eq!(placement(&d), pl(5, 5));
    assert!(
        d.reason.contains("not moving back while 1 spot pods are Pending"),
        "{}",
        d.reason
    );
    // t0+13m and t0+14m: placed; two more steps -> all back on spot.
    assert_eq!(placement(&tick(&mut h, T0 + 13 * M, 0.0, 0.0)), pl(6, 4));
    assert_eq!(placement(&tick(&mut h, T0 + 14 * M, 0.0, 0.0)), pl(7, 3));
    let st: State = h.state();
    assert_eq!((st.shifted, st.cause), (0, None));
}

#[test]
fn any_interruption_restarts_the_calm_period() {
    let cfg = no_min_available();
    let mut h = Harness::<SpotFallback>::new();
    h.tick(pending(at(T0, 10, 1000.0).config(cfg.clone()), T0, 4.0, 150.0).build())
        .unwrap();
    // One interruption at t0+8m (under maxInterruptions): no full fallback, but not calm.
    let t = T0 + 10 * M;
    let d = h
        .tick(
            at(t, 10, 1000.0)
                .config(cfg.clone())
                .series("spot-interruptions", &[(T0 + 8 * M, 1.0)])
                .build(),
        )
        .unwrap();
    assert_eq!(placement(&d), pl(3, 7));
    assert!(d.reason.contains("calm for 2m of 10m"), "{}", d.reason);
    // t0+18m: 10 min after that interruption -> the first step back.
    let t = T0 + 18 * M;
    let d = h.tick(at(t, 10, 1000.0).config(cfg).build()).unwrap();
    assert_eq!(placement(&d), pl(4, 6));
}

#[test]
fn a_smaller_total_caps_the_fallback_at_the_spot_share() {
    let mut h = Harness::<SpotFallback>::new();
    let ctx = at(T0, 10, 1000.0)
        .series(
            "spot-interruptions",
            &[(T0 - 3 * M, 1.0), (T0 - 2 * M, 1.0), (T0 - M, 1.0)],
        )
        .build();
    assert_eq!(placement(&h.tick(ctx).unwrap()), pl(0, 10));
    // Load halves: 500 / 1000 = 0.5 -> 5; floor ceil(1.5) = 2, spot share 3, all still on on-demand.
    let t = T0 + M;
    let d = h.tick(at(t, 10, 500.0).build()).unwrap();
    assert_eq!((d.replicas, placement(&d)), (5, pl(0, 5)));
    assert_eq!(h.state().shifted, 3);
}

#[test]
fn several_pools_per_capacity_type_split_evenly_in_order() {
    let cfg = r#"{"averageValue":100,"pools":[
        {"name":"spot-m5","capacityType":"spot"},
        {"name":"od","capacityType":"on-demand"},
        {"name":"spot-c5","capacityType":"spot"}]}"#;
    let d = evaluate::<SpotFallback>(&at(T0, 10, 1000.0).config(cfg).build()).unwrap();
    // 3 on-demand; 7 spot split 4 + 3, earlier pool first; listed in config order.
    assert_eq!(
        d.placement,
        vec![
            PoolReplicas {
                pool: "spot-m5".into(),
                replicas: 4
            },
            PoolReplicas {
                pool: "od".into(),
                replicas: 3
            },
            PoolReplicas {
                pool: "spot-c5".into(),
                replicas: 3
            },
        ]
    );
}

#[test]
fn placement_always_sums_to_replicas_within_bounds() {
    let mut h = Harness::<SpotFallback>::new();
    for i in 0..200i64 {
        let t = T0 + i * 15 * S;
        let load = ((i * 37) % 53) as f64 * 50.0;
        let replicas = u32::try_from((i * 7) % 30).unwrap();
        let mut b = at(t, replicas, load);
        if i % 9 == 0 {
            b = pending(b, t, (i % 5) as f64, (i % 200) as f64);
        }
        if i % 13 == 0 {
            b = b.series("spot-interruptions", &[(t - M, 1.0), (t - 30 * S, 1.0), (t, 2.0)]);
        }
        let d = h.tick(b.build()).unwrap();
        let sum: u32 = d.placement.iter().map(|p| p.replicas).sum();
        assert_eq!(sum, d.replicas, "tick {i}: {d:?}");
        assert!((3..=40).contains(&d.replicas), "tick {i}: {}", d.replicas);
        assert_eq!(d.placement.len(), 2);
    }
}

#[test]
fn missing_or_bad_signals() {
    let ctx = ContextBuilder::new().config(SEED).replicas(3, 3).build();
    assert!(
        matches!(evaluate::<SpotFallback>(&ctx), Err(PolicyError::MissingSignal(m)) if m.contains("'load'"))
    );
    let ctx = pending(at(T0, 10, 1000.0), T0, f64::NAN, 10.0).build();
    assert!(
        evaluate::<SpotFallback>(&ctx)
            .unwrap_err()
            .to_string()
            .contains("spot-pending-pods")
    );
    // A custom load signal name.
    let cfg = r#"{"averageValue":10,"loadSignal":"rps"}"#;
    let ctx = ContextBuilder::new()
        .config(cfg)
        .replicas(1, 1)
        .latest("rps", 55.0)
        .build();
    assert_eq!(evaluate::<SpotFallback>(&ctx).unwrap().replicas, 6);
}

#[test]
fn state_from_the_future_or_garbage_is_dropped() {
    let future = State {
        shifted: 5,
        last_shift_ms: Some(T0 + 3_600_000),
        last_trouble_ms: Some(T0 + 3_600_000),
        last_move_back_ms: Some(T0 + 3_600_000),
        cause: Some("x".into()),
    };
    let bytes = wasmscaler_sdk::encode_state(&future).unwrap();
    let mut d = evaluate::<SpotFallback>(
        &at(T0, 10, 1000.0)
            .config(no_min_available())
            .state(Some(bytes))
            .build(),
    )
    .unwrap();
    // The trouble time is forgotten -> calm -> one step (1) moves back right away: 5 - 1 = 4.
    assert_eq!(placement(&d), pl(3, 7));
    d = evaluate::<SpotFallback>(&at(T0, 10, 1000.0).state(Some(b"{]".to_vec())).build()).unwrap();
    assert_eq!(placement(&d), pl(7, 3));
}

#[test]
fn config_errors_name_the_key() {
    let cases: &[(&str, &str)] = &[
        (r#"{}"#, "missing field `averageValue`"),
        (r#"{"averageValue":0}"#, "'averageValue' must be a number > 0"),
        (r#"{"averageValue":-3}"#, "'averageValue' must be a number > 0"),
        (
            r#"{"averageValue":1,"onDemandBase":1.5}"#,
            "'onDemandBase' must be in [0, 1], got 1.5",
        ),
        (
            r#"{"averageValue":1,"onDemandBase":-0.1}"#,
            "'onDemandBase' must be in [0, 1]",
        ),
        (
            r#"{"averageValue":1,"minReplicas":5,"maxReplicas":2}"#,
            "'minReplicas' (5) must not exceed 'maxReplicas' (2)",
        ),
        (
            r#"{"averageValue":1,"pools":[{"name":"a","capacityType":"spot"},{"name":"a","capacityType":"on-demand"}]}"#,
            "'pools[1].name' repeats 'a' of 'pools[0]'",
        ),
        (
            r#"{"averageValue":1,"pools":[{"name":"od","capacityType":"on-demand"}]}"#,
            "'pools' has no pool with capacityType 'spot'",
        ),
        (
            r#"{"averageValue":1,"pools":[{"name":"s","capacityType":"spot"}]}"#,
            "'pools' has no pool with capacityType 'on-demand'",
        ),
        (r#"{"averageValue":1,"pools":[]}"#, "'pools' must list"),
        (
            r#"{"averageValue":1,"pools":[{"name":"s","capacityType":"preemptible"},{"name":"o","capacityType":"on-demand"}]}"#,
            "at 'pools[0].capacityType': unknown variant `preemptible`",
        ),
        (
            r#"{"averageValue":1,"pools":[{"name":"s","capacityType":"spot","pricePerHour":0.1},{"name":"o","capacityType":"on-demand"}]}"#,
            "'pools[1].pricePerHour' is missing",
        ),
        (
            r#"{"averageValue":1,"pools":[{"name":"s","capacityType":"spot","pricePerHour":-1},{"name":"o","capacityType":"on-demand","pricePerHour":1}]}"#,
            "'pools[0].pricePerHour' must be a number >= 0",
        ),
        (
            r#"{"averageValue":1,"pools":[{"name":"s","capacityType":"spot","price":1},{"name":"o","capacityType":"on-demand"}]}"#,
            "at 'pools[0].price': unknown field `price`",
        ),
        (
            r#"{"averageValue":1,"pendingTimeout":"2x"}"#,
            "at 'pendingTimeout': '2x' has an unknown unit 'x'",
        ),
        (
            r#"{"averageValue":1,"pendingTimeout":0}"#,
            "'pendingTimeout' must be longer than 0s",
        ),
        (
            r#"{"averageValue":1,"calmPeriod":-5}"#,
            "at 'calmPeriod': a duration must not be negative",
        ),
        (
            r#"{"averageValue":1,"interruptionWindow":"2h"}"#,
            "'interruptionWindow' must be within (0s, 1h]",
        ),
        (
            r#"{"averageValue":1,"moveBackStep":0}"#,
            "'moveBackStep' must be at least 1 replica",
        ),
        (
            r#"{"averageValue":1,"moveBackStep":"150%"}"#,
            "'moveBackStep' percentage must be in (0%, 100%]",
        ),
        (
            r#"{"averageValue":1,"moveBackStep":"ten"}"#,
            "at 'moveBackStep': 'ten' is not a percentage",
        ),
        (
            r#"{"averageValue":1,"minAvailable":0}"#,
            "'minAvailable' must be in (0, 1]",
        ),
        (
            r#"{"averageValue":1,"tolerance":1}"#,
            "'tolerance' must be in [0, 1)",
        ),
        (
            r#"{"averageValue":1,"onDemandFloor":0.3}"#,
            "unknown field `onDemandFloor`",
        ),
        (
            r#"{"averageValue":1,"maxInterruptions":-1}"#,
            "at 'maxInterruptions'",
        ),
    ];
    for (cfg, want) in cases {
        let err = validate::<SpotFallback>(cfg).unwrap_err();
        assert!(matches!(err, PolicyError::InvalidConfig(_)), "{cfg}: {err}");
        assert!(
            err.to_string().contains(want),
            "{cfg}: expected '{want}' in '{err}'"
        );
    }
    validate::<SpotFallback>(SEED).unwrap();
    validate::<SpotFallback>(r#"{"averageValue":1,"pendingTimeout":90,"calmPeriod":"1h","moveBackStep":2}"#)
        .unwrap();
}

#[test]
fn scenarios_pass() {
    let n = check_scenarios::<SpotFallback>(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios"));
    assert!(n >= 2, "expected the seed scenarios, found {n}");
}
