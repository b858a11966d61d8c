//! The Redis queue source against a real `redis-server`.

#[path = "servers/mod.rs"]
mod servers;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use servers::RedisServer;
use wasmscaler::core::adapter::{Gathered, SignalGatherer, TargetRef};
use wasmscaler::signals::RedisGatherer;
use wasmscaler_sdk::SignalRequest;

fn target() -> TargetRef {
    TargetRef {
        namespace: "jobs".into(),
        kind: "CronJob".into(),
        api_version: "batch/v1".into(),
        name: "worker".into(),
        uid: None,
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
        pod_selector: None,
        replicas: 0,
        ready_replicas: 0,
    }
}

async fn gather(g: &RedisGatherer, items: &[(&str, Value)]) -> Gathered {
    let plan: Vec<(SignalRequest, Option<&Value>)> = items
        .iter()
        .map(|(n, v)| (SignalRequest::latest(*n, ""), Some(v)))
        .collect();
    g.gather(&target(), &plan, 1_000).await
}

fn value(g: &Gathered, name: &str) -> Option<f64> {
    g.signals
        .iter()
        .find(|s| s.name == name)
        .map(|s| s.samples[0].value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_length_follows_pushes_and_pops_and_failures_name_the_signal() {
    let mut redis = RedisServer::start();
    let g = RedisGatherer::new();
    let src = json!({"redis": {"url": redis.url, "list": "jobs"}});
    let missing = json!({"redis": {"url": redis.url, "list": "nothing-here"}});

    let got = gather(&g, &[("queue-length", src.clone()), ("other", missing.clone())]).await;
    assert_eq!(value(&got, "queue-length"), Some(0.0), "{:?}", got.errors);
    assert_eq!(value(&got, "other"), Some(0.0), "a missing key is an empty queue");

    redis.cmd(&["LPUSH", "jobs", "a", "b", "c"]);
    let got = gather(&g, &[("queue-length", src.clone())]).await;
    assert_eq!(value(&got, "queue-length"), Some(3.0));
    // The connection is reused; the value follows the queue.
    redis.cmd(&["RPOP", "jobs"]);
    redis.cmd(&["LPUSH", "jobs", "d", "e", "f", "g"]);
    let got = gather(&g, &[("queue-length", src.clone())]).await;
    assert_eq!(value(&got, "queue-length"), Some(6.0));

    // A key of another type: Redis's WRONGTYPE, named.
    redis.cmd(&["SET", "plain", "x"]);
    let wrong = json!({"redis": {"url": redis.url, "list": "plain"}});
    let got = gather(&g, &[("wrong", wrong)]).await;
    let e = &got.errors[0].1;
    assert!(
        e.contains("signal 'wrong' (redis)") && e.contains("LLEN plain"),
        "{e}"
    );

    // Server gone: an error within the timeout, naming signal and URL, never a hang.
    redis.stop();
    let started = Instant::now();
    let short = json!({"redis": {"url": redis.url, "list": "jobs", "timeout": "500ms"}});
    let got = gather(&g, &[("queue-length", short)]).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(got.signals.is_empty());
    let e = &got.errors[0].1;
    assert!(
        e.contains("signal 'queue-length' (redis)") && e.contains("127.0.0.1"),
        "{e}"
    );

    // Passwords never appear in messages.
    let secret = json!({"redis": {"url": format!("redis://:hunter2@127.0.0.1:{}/0", redis.port), "list": "jobs", "timeout": "500ms"}});
    let got = gather(&g, &[("queue-length", secret)]).await;
    assert!(!got.errors[0].1.contains("hunter2"), "{}", got.errors[0].1);
}
