//! queue-job against KEDA ScaledJob's rules, worked out by hand (`maxScale`, the four
//! strategies, minReplicaCount, several queues, and the over-creation traps).

use policy_queue_job::QueueJob;
use wasmscaler_sdk::PolicyError;
use wasmscaler_sdk::testing::{ContextBuilder, check_scenarios, evaluate, validate};

/// Evaluate with `queue-length`, `running-jobs` and (if given) `pending-jobs`.
fn run(
    config: &str,
    queue: f64,
    running: f64,
    pending: Option<f64>,
) -> Result<(u32, u32, String), PolicyError> {
    let mut b = ContextBuilder::new()
        .bounds(0, 1000)
        .config(config)
        .latest("queue-length", queue)
        .latest("running-jobs", running);
    if let Some(p) = pending {
        b = b.latest("pending-jobs", p);
    }
    let d = evaluate::<QueueJob>(&b.build())?;
    Ok((d.jobs.unwrap_or(u32::MAX), d.replicas, d.reason))
}

struct Case {
    name: &'static str,
    config: &'static str,
    queue: f64,
    running: f64,
    pending: f64,
    jobs: u32,
    replicas: u32,
}

fn check(cases: &[Case]) {
    for c in cases {
        let (jobs, replicas, reason) =
            run(c.config, c.queue, c.running, Some(c.pending)).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        assert_eq!((jobs, replicas), (c.jobs, c.replicas), "{}: {reason}", c.name);
    }
}

#[test]
fn default_strategy_table() {
    // default: effectiveMaxScale = maxScale - running, where KEDA's running = started + pending.
    check(&[
        // maxScale = ceil(10/1) = 10; 10 - 0 = 10 Jobs; 0 + 10 = 10.
        Case {
            name: "empty start",
            config: "{}",
            queue: 10.0,
            running: 0.0,
            pending: 0.0,
            jobs: 10,
            replicas: 10,
        },
        // 10 - 4 = 6 Jobs; 4 + 6 = 10.
        Case {
            name: "some running",
            config: "{}",
            queue: 10.0,
            running: 4.0,
            pending: 0.0,
            jobs: 6,
            replicas: 10,
        },
        // running = 4 + 3 pending = 7; 10 - 7 = 3; 7 + 3 = 10.
        Case {
            name: "pending counted as running",
            config: "{}",
            queue: 10.0,
            running: 4.0,
            pending: 3.0,
            jobs: 3,
            replicas: 10,
        },
        // Trap: queue shorter than the running Jobs: 2 - 5 = -3 -> 0 Jobs, never negative.
        Case {
            name: "queue shorter than running",
            config: "{}",
            queue: 2.0,
            running: 5.0,
            pending: 0.0,
            jobs: 0,
            replicas: 5,
        },
        // maxScale = ceil(min(500/1, 100)) = 100; scaleTo = 500; min(500, 100 - 0) = 100.
        Case {
            name: "maxReplicaCount caps",
            config: "{}",
            queue: 500.0,
            running: 0.0,
            pending: 0.0,
            jobs: 100,
            replicas: 100,
        },
        // maxScale = ceil(12/5) = ceil(2.4) = 3; 3 - 1 = 2; 1 + 2 = 3.
        Case {
            name: "five items per job",
            config: r#"{"targetQueueLengthPerJob":5}"#,
            queue: 12.0,
            running: 1.0,
            pending: 0.0,
            jobs: 2,
            replicas: 3,
        },
        // Fractional queue length: ceil(2.5) = 3 Jobs.
        Case {
            name: "fractional queue",
            config: "{}",
            queue: 2.5,
            running: 0.0,
            pending: 0.0,
            jobs: 3,
            replicas: 3,
        },
    ]);
}

#[test]
fn custom_strategy_table() {
    const C: &str = r#"{"scalingStrategy":{"strategy":"custom","customScalingQueueLengthDeduction":2,"customScalingRunningJobPercentage":0.5}}"#;
    const S: &str = r#"{"scalingStrategy":{"strategy":"custom","customScalingQueueLengthDeduction":2,"customScalingRunningJobPercentage":"0.5"}}"#;
    check(&[
        // min(10 - 2 - floor(4 x 0.5) = 6, 100) = 6; 4 + 6 = 10.
        Case {
            name: "custom",
            config: C,
            queue: 10.0,
            running: 4.0,
            pending: 0.0,
            jobs: 6,
            replicas: 10,
        },
        // floor(5 x 0.5) = floor(2.5) = 2 -> 10 - 2 - 2 = 6; 5 + 6 = 11.
        Case {
            name: "custom floors the running share",
            config: C,
            queue: 10.0,
            running: 5.0,
            pending: 0.0,
            jobs: 6,
            replicas: 11,
        },
        // 3 - 2 - 2 = -1 -> 0.
        Case {
            name: "custom never negative",
            config: C,
            queue: 3.0,
            running: 4.0,
            pending: 0.0,
            jobs: 0,
            replicas: 4,
        },
        // KEDA spells the percentage as a string.
        Case {
            name: "custom percentage as string",
            config: S,
            queue: 10.0,
            running: 4.0,
            pending: 0.0,
            jobs: 6,
            replicas: 10,
        },
        // Defaults (deduction 0, percentage 1.0): 10 - 0 - 4 = 6.
        Case {
            name: "custom defaults",
            config: r#"{"scalingStrategy":{"strategy":"custom"}}"#,
            queue: 10.0,
            running: 4.0,
            pending: 0.0,
            jobs: 6,
            replicas: 10,
        },
    ]);
}

#[test]
fn accurate_strategy_table() {
    const A: &str = r#"{"maxReplicaCount":10,"scalingStrategy":{"strategy":"accurate"}}"#;
    check(&[
        // running = 2 + 3 = 5; maxScale 5; 5 + 5 = 10 is not > 10 -> 5 - 3 pending = 2; 5 + 2 = 7.
        Case {
            name: "accurate under max",
            config: A,
            queue: 5.0,
            running: 2.0,
            pending: 3.0,
            jobs: 2,
            replicas: 7,
        },
        // maxScale 8; 8 + 5 = 13 > 10 -> 10 - 5 = 5; min(scaleTo 8, 5) = 5; 5 + 5 = 10.
        Case {
            name: "accurate over max",
            config: A,
            queue: 8.0,
            running: 2.0,
            pending: 3.0,
            jobs: 5,
            replicas: 10,
        },
        // The trap the pending count prevents: 3 Jobs created last poll are still Pending,
        // queue 5: 5 + 3 = 8 <= 10 -> 5 - 3 = 2 new Jobs (total 5, one per item).
        Case {
            name: "pending jobs not duplicated",
            config: A,
            queue: 5.0,
            running: 0.0,
            pending: 3.0,
            jobs: 2,
            replicas: 5,
        },
        // ... and what happens when the pending source reports 0 (KEDA #5537/#6157): 5 Jobs,
        // 3 of them duplicates of the still-pending ones.
        Case {
            name: "pending reported as 0 over-creates",
            config: A,
            queue: 5.0,
            running: 0.0,
            pending: 0.0,
            jobs: 5,
            replicas: 5,
        },
    ]);
}

#[test]
fn eager_strategy_table() {
    const E: &str = r#"{"maxReplicaCount":10,"scalingStrategy":{"strategy":"eager"}}"#;
    check(&[
        // running = 2 + 1 = 3; min(10 - 3 - 1, 3) = 3; scaleTo = 10 -> min(10, 3) = 3; 3 + 3 = 6.
        Case {
            name: "eager",
            config: E,
            queue: 3.0,
            running: 2.0,
            pending: 1.0,
            jobs: 3,
            replicas: 6,
        },
        // All 3 Jobs busy and the queue (locked items excluded) still has 3: default would
        // start 3 - 3 = 0; eager uses the free capacity: min(10 - 3 - 0, 3) = 3.
        Case {
            name: "eager fills free slots",
            config: E,
            queue: 3.0,
            running: 3.0,
            pending: 0.0,
            jobs: 3,
            replicas: 6,
        },
        // running = 4 + 2 = 6; maxScale = ceil(min(20, 10)) = 10; min(10 - 6 - 2, 10) = 2; 6 + 2 = 8.
        Case {
            name: "eager near max",
            config: E,
            queue: 20.0,
            running: 4.0,
            pending: 2.0,
            jobs: 2,
            replicas: 8,
        },
    ]);
    let (jobs, _, _) = run(r#"{"maxReplicaCount":10}"#, 3.0, 3.0, Some(0.0)).unwrap();
    assert_eq!(jobs, 0, "default strategy on the same input starts nothing");
}

#[test]
fn min_replica_count() {
    check(&[
        // Below min: create the difference, 2 - 0 = 2, even with an empty queue.
        Case {
            name: "below min",
            config: r#"{"minReplicaCount":2}"#,
            queue: 0.0,
            running: 0.0,
            pending: 0.0,
            jobs: 2,
            replicas: 2,
        },
        // 1 running, min 3 -> 2.
        Case {
            name: "partly below min",
            config: r#"{"minReplicaCount":3}"#,
            queue: 9.0,
            running: 1.0,
            pending: 0.0,
            jobs: 2,
            replicas: 3,
        },
        // At/above min: running := 3 - 2 = 1; 5 - 1 = 4; min(scaleTo 5, 4) = 4; 3 + 4 = 7.
        Case {
            name: "above min",
            config: r#"{"minReplicaCount":2}"#,
            queue: 5.0,
            running: 3.0,
            pending: 0.0,
            jobs: 4,
            replicas: 7,
        },
        // running := 2 - 2 = 0; maxScale 0 -> 0 Jobs.
        Case {
            name: "at min, empty queue",
            config: r#"{"minReplicaCount":2}"#,
            queue: 0.0,
            running: 2.0,
            pending: 0.0,
            jobs: 0,
            replicas: 2,
        },
    ]);
}

fn multi(calc: &str, a: f64, b: f64, c: f64, extra: &str) -> (u32, String) {
    let config = format!(
        r#"{{"queues":[{{"signal":"a"{extra}}},{{"signal":"b"{extra}}},{{"signal":"c"}}],"scalingStrategy":{{"multipleScalersCalculation":"{calc}"}}}}"#
    );
    let ctx = ContextBuilder::new()
        .config(config)
        .latest("a", a)
        .latest("b", b)
        .latest("c", c)
        .latest("running-jobs", 0.0)
        .build();
    let d = evaluate::<QueueJob>(&ctx).unwrap();
    (d.jobs.unwrap_or(u32::MAX), d.reason)
}

#[test]
fn several_queues_combine_like_keda() {
    // a = 4, b = 10, c = 0 (inactive, ignored). One item per Job.
    assert_eq!(multi("max", 4.0, 10.0, 0.0, "").0, 10); // longest active queue
    assert_eq!(multi("min", 4.0, 10.0, 0.0, "").0, 4); // shortest active queue
    assert_eq!(multi("avg", 4.0, 10.0, 0.0, "").0, 7); // (4 + 10) / 2
    assert_eq!(multi("sum", 4.0, 10.0, 0.0, "").0, 14); // 4 + 10
    // Per-queue targets: a 4/2 = 2, b 10/5 = 2 -> sum maxValue 4 (scaleTo 14) -> 4 Jobs.
    let config = r#"{"queues":[{"signal":"a","targetQueueLengthPerJob":2},{"signal":"b","targetQueueLengthPerJob":5}],"scalingStrategy":{"multipleScalersCalculation":"sum"}}"#;
    let ctx = ContextBuilder::new()
        .config(config)
        .latest("a", 4.0)
        .latest("b", 10.0)
        .latest("running-jobs", 0.0)
        .build();
    assert_eq!(evaluate::<QueueJob>(&ctx).unwrap().jobs, Some(4));
}

#[test]
fn inactive_queue_starts_nothing() {
    let (jobs, replicas, reason) = run("{}", 0.0, 0.0, Some(0.0)).unwrap();
    assert_eq!((jobs, replicas), (0, 0));
    assert!(reason.contains("no queue active"), "{reason}");
    // activationThreshold 5: a queue of 3 is not active.
    let cfg = r#"{"queues":[{"signal":"queue-length","activationThreshold":5}]}"#;
    assert_eq!(run(cfg, 3.0, 0.0, Some(0.0)).unwrap().0, 0);
    assert_eq!(run(cfg, 6.0, 0.0, Some(0.0)).unwrap().0, 6);
}

#[test]
fn host_bound_caps_jobs() {
    // maxScale 10, running 2 -> 8 wanted, but the workload may hold only 5: 5 - 2 = 3.
    let ctx = ContextBuilder::new()
        .bounds(0, 5)
        .latest("queue-length", 10.0)
        .latest("running-jobs", 2.0)
        .build();
    let d = evaluate::<QueueJob>(&ctx).unwrap();
    assert_eq!((d.jobs, d.replicas), (Some(3), 5));
    assert!(d.reason.contains("capped by workload max 5"), "{}", d.reason);
}

#[test]
fn reason_names_the_numbers() {
    let (_, _, reason) = run("{}", 10.0, 4.0, Some(3.0)).unwrap();
    assert!(
        reason.contains("queue 10")
            && reason.contains("running 7 (pending 3)")
            && reason.contains("start 3 Job(s)"),
        "{reason}"
    );
}

#[test]
fn missing_and_bad_signals_are_errors() {
    // No running-jobs.
    let ctx = ContextBuilder::new().latest("queue-length", 3.0).build();
    assert!(
        matches!(evaluate::<QueueJob>(&ctx), Err(PolicyError::MissingSignal(m)) if m.contains("running-jobs"))
    );
    // No queue.
    let ctx = ContextBuilder::new().latest("running-jobs", 3.0).build();
    assert!(
        matches!(evaluate::<QueueJob>(&ctx), Err(PolicyError::MissingSignal(m)) if m.contains("queue-length"))
    );
    // accurate/eager refuse to guess the pending count.
    let err = run(r#"{"scalingStrategy":{"strategy":"accurate"}}"#, 5.0, 0.0, None).unwrap_err();
    assert!(
        matches!(&err, PolicyError::MissingSignal(m) if m.contains("pending-jobs")),
        "{err}"
    );
    assert!(run(r#"{"scalingStrategy":{"strategy":"eager"}}"#, 5.0, 0.0, None).is_err());
    // default strategy copes without it (0 pending).
    assert_eq!(run("{}", 5.0, 1.0, None).unwrap().0, 4);
    // Negative values.
    let err = run("{}", -1.0, 0.0, Some(0.0)).unwrap_err();
    assert!(err.to_string().contains("'queue-length' is -1"), "{err}");
    let err = run("{}", 1.0, -2.0, Some(0.0)).unwrap_err();
    assert!(err.to_string().contains("'running-jobs' is -2"), "{err}");
    // NaN.
    assert!(
        run("{}", f64::NAN, 0.0, Some(0.0))
            .unwrap_err()
            .to_string()
            .contains("NaN")
    );
}

#[test]
fn validate_names_the_key() {
    let cases = [
        (
            r#"{"targetQueueLengthPerJob":0}"#,
            "'targetQueueLengthPerJob' must be a number > 0",
        ),
        (
            r#"{"targetQueueLengthPerJob":-3}"#,
            "'targetQueueLengthPerJob' must be a number > 0",
        ),
        (
            r#"{"queues":[{"signal":"a"},{"signal":"b","targetQueueLengthPerJob":0}]}"#,
            "'queues[1].targetQueueLengthPerJob'",
        ),
        (
            r#"{"queues":[{"signal":"a","activationThreshold":-1}]}"#,
            "'queues[0].activationThreshold'",
        ),
        (
            r#"{"queues":[{"signal":"a"},{"signal":"a"}]}"#,
            "'queues[1].signal'",
        ),
        (r#"{"queues":[]}"#, "'queues'"),
        (
            r#"{"minReplicaCount":5,"maxReplicaCount":3}"#,
            "'minReplicaCount' (5) must be <= 'maxReplicaCount' (3)",
        ),
        (r#"{"maxReplicaCount":0}"#, "'maxReplicaCount' must be > 0"),
        (r#"{"minReplicaCount":-1}"#, "minReplicaCount"),
        (
            r#"{"scalingStrategy":{"customScalingQueueLengthDeduction":-1}}"#,
            "customScalingQueueLengthDeduction",
        ),
        (
            r#"{"scalingStrategy":{"customScalingRunningJobPercentage":-0.5}}"#,
            "customScalingRunningJobPercentage",
        ),
        (
            r#"{"scalingStrategy":{"strategy":"greedy"}}"#,
            "scalingStrategy.strategy",
        ),
        (
            r#"{"scalingStrategy":{"multipleScalersCalculation":"median"}}"#,
            "scalingStrategy.multipleScalersCalculation",
        ),
        (r#"{"maxReplicas":3}"#, "unknown field `maxReplicas`"),
        (
            r#"{"queues":[{"signal":"a","target":3}]}"#,
            "unknown field `target`",
        ),
    ];
    for (cfg, needle) in cases {
        let err = validate::<QueueJob>(cfg).expect_err(cfg);
        assert!(matches!(err, PolicyError::InvalidConfig(_)), "{cfg}: {err}");
        assert!(err.to_string().contains(needle), "{cfg}: {err}");
    }
    validate::<QueueJob>("{}").unwrap();
    // An unparsable percentage is no error in KEDA: `custom` falls back to `default`
    // (tests/upstream_mismatches.rs).
    validate::<QueueJob>(
        r#"{"scalingStrategy":{"strategy":"custom","customScalingRunningJobPercentage":"abc"}}"#,
    )
    .unwrap();
    validate::<QueueJob>(
        r#"{"queues":[{"signal":"orders","targetQueueLengthPerJob":5,"activationThreshold":2}],"minReplicaCount":1,"maxReplicaCount":20,
            "scalingStrategy":{"strategy":"custom","customScalingQueueLengthDeduction":1,"customScalingRunningJobPercentage":"0.5","multipleScalersCalculation":"sum"},
            "runningJobsIncludePending":true}"#,
    )
    .unwrap();
}

#[test]
fn running_jobs_that_already_include_pending() {
    // Source counts like KEDA: running-jobs = 7 already includes the 3 pending.
    let (jobs, replicas, _) = run(r#"{"runningJobsIncludePending":true}"#, 10.0, 7.0, Some(3.0)).unwrap();
    assert_eq!((jobs, replicas), (3, 10));
}

#[test]
fn scenarios() {
    let n = check_scenarios::<QueueJob>(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios"));
    assert!(n > 0, "no scenarios found");
}
