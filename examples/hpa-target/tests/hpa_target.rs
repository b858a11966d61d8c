//! Unit tests of the example policy with the SDK's native harness: plain `cargo test`.

use hpa_target::HpaTarget;
use wasmscaler_sdk::PolicyError;
use wasmscaler_sdk::testing::{ContextBuilder, evaluate, validate};

fn ctx(replicas: u32, load: f64) -> ContextBuilder {
    ContextBuilder::new()
        .replicas(replicas, replicas)
        .bounds(1, 20)
        .latest("load", load)
}

#[test]
fn scales_up_proportionally() {
    // 4 replicas at 150 rps each against a target of 100 -> ceil(4 x 1.5) = 6.
    let d = evaluate::<HpaTarget>(&ctx(4, 600.0).build()).unwrap();
    assert_eq!(d.replicas, 6);
    assert!(d.reason.contains("150.0/replica"), "{}", d.reason);
}

#[test]
fn holds_within_tolerance() {
    let d = evaluate::<HpaTarget>(&ctx(4, 436.0).build()).unwrap();
    assert_eq!(d.replicas, 4);
}

#[test]
fn scales_down_and_clamps_to_bounds() {
    assert_eq!(
        evaluate::<HpaTarget>(&ctx(10, 300.0).build()).unwrap().replicas,
        3
    );
    assert_eq!(evaluate::<HpaTarget>(&ctx(10, 0.0).build()).unwrap().replicas, 1);
    assert_eq!(evaluate::<HpaTarget>(&ctx(10, 1e9).build()).unwrap().replicas, 20);
}

#[test]
fn several_targets_take_the_largest_proposal() {
    let c = ctx(2, 100.0)
        .series("queue", &[(wasmscaler_sdk::testing::DEFAULT_NOW_MS, 90.0)])
        .config(r#"{"targets":[{"signal":"load","averageValue":100},{"signal":"queue","averageValue":10}]}"#)
        .build();
    assert_eq!(evaluate::<HpaTarget>(&c).unwrap().replicas, 9);
}

#[test]
fn missing_signal_and_nan_are_errors_not_guesses() {
    let no_load = ContextBuilder::new().replicas(3, 3).build();
    assert!(matches!(
        evaluate::<HpaTarget>(&no_load),
        Err(PolicyError::MissingSignal(_))
    ));
    let nan = ctx(3, f64::NAN).build();
    assert!(
        evaluate::<HpaTarget>(&nan)
            .unwrap_err()
            .to_string()
            .contains("NaN")
    );
}

#[test]
fn bad_config_names_the_key() {
    let err = validate::<HpaTarget>(r#"{"targets":[{"signal":"load","averageValue":-1}]}"#).unwrap_err();
    assert!(err.to_string().contains("targets[0].averageValue"), "{err}");
    let err = validate::<HpaTarget>(r#"{"tolerence":0.2}"#).unwrap_err();
    assert!(err.to_string().contains("unknown field `tolerence`"), "{err}");
    let err = validate::<HpaTarget>(r#"{"targets":[{"signal":"load","averageValue":"x"}]}"#).unwrap_err();
    assert!(err.to_string().contains("targets[0].averageValue"), "{err}");
}

/// Found by the HPA conformance test (tests/conformance/hpa.rs): with several metrics
/// the HPA still scales up (or holds) on the metrics it has when one fails, and refuses
/// only a scale-down (`computeReplicasForMetrics`).
#[test]
fn a_missing_target_does_not_stop_a_scale_up_by_the_others() {
    let targets =
        r#"{"targets":[{"signal":"load","averageValue":100},{"signal":"queue","averageValue":10}]}"#;
    let up = ContextBuilder::new()
        .replicas(2, 2)
        .bounds(1, 20)
        .series("queue", &[(wasmscaler_sdk::testing::DEFAULT_NOW_MS, 90.0)])
        .config(targets)
        .build();
    assert_eq!(evaluate::<HpaTarget>(&up).unwrap().replicas, 9);
    let down = ContextBuilder::new()
        .replicas(5, 5)
        .bounds(1, 20)
        .series("queue", &[(wasmscaler_sdk::testing::DEFAULT_NOW_MS, 10.0)])
        .config(targets)
        .build();
    assert!(matches!(
        evaluate::<HpaTarget>(&down),
        Err(PolicyError::MissingSignal(_))
    ));
}

/// Found by the HPA conformance test: a usage ratio on the tolerance's edge is within it
/// (`1 - t <= ratio <= 1 + t`, the ratio from the milli-unit integers the HPA divides):
/// 179.01 / (8.1 x 17) is 1.3 there, while 179.01 / 17 / 8.1 - 1 is a hair above 0.3.
#[test]
fn a_ratio_on_the_tolerance_edge_holds() {
    let c = ctx(17, 179.01)
        .bounds(2, 29)
        .config(r#"{"targets":[{"signal":"load","averageValue":8.1}],"tolerance":0.3}"#)
        .build();
    assert_eq!(evaluate::<HpaTarget>(&c).unwrap().replicas, 17);
    assert_eq!(hpa_target::external_per_pod(17, 179.01, 8.1, 0.3).unwrap(), 17);
    assert_eq!(hpa_target::external_per_pod(17, 179.02, 8.1, 0.3).unwrap(), 23);
}
