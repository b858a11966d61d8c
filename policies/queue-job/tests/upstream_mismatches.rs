//! Reproducers of the differences from KEDA v2.21.0's ScaledJob code found by the
//! conformance test (tests/conformance/queue_job.rs) and issue 12; each expected value is
//! what the upstream reference (tools/conformance/keda) answers for the same inputs.

use policy_queue_job::QueueJob;
use wasmscaler_sdk::testing::{ContextBuilder, evaluate};

/// Jobs to create for one queue, `running` started Jobs and `pending` not yet started.
fn jobs(config: &str, queue: f64, running: f64, pending: f64) -> u32 {
    let c = ContextBuilder::new()
        .bounds(0, 100_000)
        .config(config)
        .latest("queue-length", queue)
        .latest("running-jobs", running)
        .latest("pending-jobs", pending)
        .build();
    let d = evaluate::<QueueJob>(&c).unwrap_or_else(|e| panic!("{config}: {e}"));
    d.jobs.expect("queue-job always says how many Jobs")
}

#[test]
fn max_is_the_budget_above_min_replica_count() {
    // KEDA Max() = maxReplicaCount - minReplicaCount: maxScale = min(20 / 1, 8) = 8; the 2
    // running Jobs are the minimum, 8 - 0 = 8 new Jobs.
    assert_eq!(
        jobs(r#"{"minReplicaCount":2,"maxReplicaCount":10}"#, 20.0, 2.0, 0.0),
        8
    );
    // min = max = 5: no budget above the minimum, nothing to add to the 5 running.
    assert_eq!(
        jobs(r#"{"minReplicaCount":5,"maxReplicaCount":5}"#, 20.0, 5.0, 0.0),
        0
    );
    // maxReplicaCount unset: Max() is KEDA's default 100 itself, above the 4 kept.
    assert_eq!(jobs(r#"{"minReplicaCount":4}"#, 200.0, 4.0, 0.0), 100);
}

#[test]
fn accurate_subtracts_pending_jobs() {
    // maxScale 15; 15 + 15 running (all pending) - 15 pending = 15 <= 20 -> 15 - 15 = 0.
    let cfg = r#"{"maxReplicaCount":20,"scalingStrategy":{"strategy":"accurate"}}"#;
    assert_eq!(jobs(cfg, 15.0, 0.0, 15.0), 0);
}

#[test]
fn custom_without_a_readable_percentage_is_default() {
    // No percentage: KEDA's ParseFloat("") fails -> default: 10 - 3 = 7 (not 10 - 2 - 3).
    let cfg = r#"{"scalingStrategy":{"strategy":"custom","customScalingQueueLengthDeduction":2}}"#;
    assert_eq!(jobs(cfg, 10.0, 3.0, 0.0), 7);
    // " 0.5" with a space is unparsable in Go: default again.
    let cfg = r#"{"scalingStrategy":{"strategy":"custom","customScalingQueueLengthDeduction":2,"customScalingRunningJobPercentage":" 0.5"}}"#;
    assert_eq!(jobs(cfg, 10.0, 3.0, 0.0), 7);
    // "0.5" is read: 10 - 2 - int(3 x 0.5) = 7; "1": 10 - 2 - 3 = 5.
    let cfg = r#"{"scalingStrategy":{"strategy":"custom","customScalingQueueLengthDeduction":2,"customScalingRunningJobPercentage":"1"}}"#;
    assert_eq!(jobs(cfg, 10.0, 3.0, 0.0), 5);
}

#[test]
fn ceil_has_no_slack_on_kedas_quantities() {
    // KEDA hands values and targets over as milli-quantities read back as milli x 10^-3:
    // 900m / 60m = 15.000000000000002, and Go's math.Ceil makes that 16 (the 1e-9 slack
    // of a plain ceil said 15); eager creates maxScale Jobs.
    let eager = r#"{"targetQueueLengthPerJob":0.06,"scalingStrategy":{"strategy":"eager"}}"#;
    assert_eq!(jobs(eager, 0.9, 0.0, 0.0), 16);
    // A queue of 0.0004 is 0 milli-items: KEDA's max-of-queues never picks a queue of 0,
    // so nothing is active and no Job starts (ceil(0.0004) said 1).
    assert_eq!(jobs("{}", 0.0004, 0.0, 0.0), 0);
}
