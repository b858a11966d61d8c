//! Runtime benchmark: `cargo bench -p wasmscaler --bench runtime`.
//!
//! Prints, in one run on this machine: evaluate() latency through the sandbox (fresh
//! Store per call, and the opt-in reused instance) next to the same policy called
//! natively, and on an engine without fuel metering (what the deterministic budget costs
//! per call); evaluations per second on one core; component load time from the artifact
//! cache vs compiling cold; reload latency (file write -> new version serving).
//! `BENCH_QUICK=1` shortens every loop (a smoke run, not for quoting).
//!
//! The KEDA anchor: the same HPA computation behind an external scaler's gRPC
//! `GetMetrics` in another process (this binary, re-executed with
//! `WASMSCALER_BENCH_KEDA_SERVER=1`), over loopback TCP, next to our fresh-instance
//! evaluate, measured interleaved in the same run.

#[path = "support/keda_grpc.rs"]
mod keda_grpc;

use std::sync::Arc;
use std::time::{Duration, Instant};

use std::path::Path;

use wasmscaler::runtime::engine::EngineSettings;
use wasmscaler::runtime::{
    HistorySource, Limits, PolicyRef, PrefetchedHistory, Registry, Runtime, builtins, digest_of,
};
use wasmscaler_sdk::testing::{ContextBuilder, Scenario};
use wasmscaler_sdk::{Context, Sample};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

struct Stats {
    p50: Duration,
    p99: Duration,
}

fn measure(n: usize, mut f: impl FnMut()) -> Stats {
    for _ in 0..n / 10 {
        f();
    }
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f();
        v.push(t.elapsed());
    }
    v.sort_unstable();
    Stats {
        p50: percentile(&v, 0.5),
        p99: percentile(&v, 0.99),
    }
}

fn us(d: Duration) -> String {
    format!("{:.2} µs", d.as_secs_f64() * 1e6)
}

fn main() {
    if std::env::var_os(keda_grpc::SERVER_ENV).is_some() {
        keda_grpc::serve();
    }
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    let n = if quick { 2_000 } else { 50_000 };
    let hpa = builtins::bytes("hpa").expect("hpa built-in");
    let rt = Runtime::new(None).expect("engine");
    let policy = rt.load("hpa", hpa, Limits::default()).expect("load");
    let ctx = ContextBuilder::new()
        .replicas(4, 4)
        .bounds(1, 20)
        .latest("load", 600.0)
        .build();
    assert_eq!(policy.evaluate(&ctx, None).expect("evaluate").replicas, 6);

    let fresh = measure(n, || {
        std::hint::black_box(policy.evaluate(&ctx, None).expect("evaluate"));
    });
    // What fuel metering costs: the same calls on an engine without it.
    let unmetered_rt = Runtime::with_settings(
        None,
        &EngineSettings {
            metered: false,
            ..EngineSettings::default()
        },
    )
    .expect("engine");
    let unmetered = unmetered_rt.load("hpa", hpa, Limits::default()).expect("load");
    let fresh_unmetered = measure(n, || {
        std::hint::black_box(unmetered.evaluate(&ctx, None).expect("evaluate"));
    });
    let hpa_fuel = policy.evaluate_metered(&ctx, None).1;
    let mut inst = policy.reusable().expect("instance");
    let reuse = measure(n, || {
        std::hint::black_box(inst.evaluate(&ctx, None).expect("evaluate"));
    });
    let native = measure(n, || {
        std::hint::black_box(
            wasmscaler_sdk::testing::evaluate::<hpa_target::HpaTarget>(&ctx).expect("native"),
        );
    });

    // Throughput on one core: back-to-back fresh-instance evaluations for a fixed time.
    let window = if quick {
        Duration::from_millis(300)
    } else {
        Duration::from_secs(3)
    };
    let start = Instant::now();
    let mut calls = 0u64;
    while start.elapsed() < window {
        std::hint::black_box(policy.evaluate(&ctx, None).expect("evaluate"));
        calls += 1;
    }
    let per_sec = calls as f64 / start.elapsed().as_secs_f64();

    // Load: cold compile vs from the artifact cache.
    let loads = if quick { 5 } else { 30 };
    let cache = tempfile::tempdir().expect("tempdir");
    let cold = measure(loads, || {
        let rt = Runtime::new(None).expect("engine");
        std::hint::black_box(rt.load("hpa", hpa, Limits::default()).expect("load"));
    });
    let cached_rt = Runtime::new(Some(cache.path().to_path_buf())).expect("engine");
    cached_rt
        .load("hpa", hpa, Limits::default())
        .expect("warm the cache");
    let warm = measure(loads, || {
        std::hint::black_box(cached_rt.load("hpa", hpa, Limits::default()).expect("load"));
    });

    // Reload latency: write a new version into a watched directory, wait until served.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("p.wasm");
    let other = builtins::bytes("cron").filter(|b| b.len() > 8).unwrap_or(hpa);
    std::fs::write(&file, hpa).expect("write");
    let reg = Registry::new(
        Runtime::new(Some(cache.path().to_path_buf())).expect("engine"),
        Some(dir.path().to_path_buf()),
    );
    reg.scan();
    let _w = reg.watch().expect("watch");
    let r = PolicyRef::parse("file:p.wasm").expect("ref");
    let mut reloads = Vec::new();
    for i in 0..if quick { 3 } else { 15 } {
        let bytes: &[u8] = if i % 2 == 0 { other } else { hpa };
        let want = digest_of(bytes);
        let t = Instant::now();
        std::fs::write(&file, bytes).expect("write");
        loop {
            if reg.resolve(&r).map(|p| p.digest == want).unwrap_or(false) {
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(10), "reload never happened");
            std::thread::sleep(Duration::from_micros(200));
        }
        reloads.push(t.elapsed());
    }
    reloads.sort_unstable();
    let reload_p50 = percentile(&reloads, 0.5);
    let reload_max = *reloads.last().expect("reloads");

    let ratio = |a: Duration| a.as_secs_f64() / native.p50.as_secs_f64().max(1e-9);
    println!(
        "hpa component: {} bytes, {} evaluations per latency row",
        hpa.len(),
        n
    );
    println!();
    println!("| measurement | p50 | p99 | ratio to native p50 |");
    println!("|---|---|---|---|");
    println!(
        "| evaluate, fresh Store per call (default) | {} | {} | {:.0}x |",
        us(fresh.p50),
        us(fresh.p99),
        ratio(fresh.p50)
    );
    println!(
        "| evaluate, fresh Store, fuel metering off (bench only) | {} | {} | {:.0}x |",
        us(fresh_unmetered.p50),
        us(fresh_unmetered.p99),
        ratio(fresh_unmetered.p50)
    );
    println!(
        "| evaluate, reused instance (opt-in) | {} | {} | {:.0}x |",
        us(reuse.p50),
        us(reuse.p99),
        ratio(reuse.p50)
    );
    println!(
        "| same policy called natively (floor) | {} | {} | 1x |",
        us(native.p50),
        us(native.p99)
    );
    println!("| load: compile cold | {} | {} | |", us(cold.p50), us(cold.p99));
    println!(
        "| load: from artifact cache | {} | {} | |",
        us(warm.p50),
        us(warm.p99)
    );
    println!(
        "| reload: file write -> new version serving | {} | max {} | |",
        us(reload_p50),
        us(reload_max)
    );
    println!();
    println!("fresh-instance evaluations per second on one core: {per_sec:.0}");
    println!(
        "fuel metering: {hpa_fuel} fuel per hpa call; fresh-instance p50 {} with it, {} without ({:+.1} %)",
        us(fresh.p50),
        us(fresh_unmetered.p50),
        (fresh.p50.as_secs_f64() / fresh_unmetered.p50.as_secs_f64().max(1e-12) - 1.0) * 100.0
    );
    println!();
    keda_anchor(&policy, &ctx, n);
    println!();
    standard_policies(&rt, &unmetered_rt, quick);
}

/// Our fresh-instance evaluate against KEDA's external-scaler `GetMetrics` round trip
/// carrying the same HPA computation in another process, in alternating blocks of calls so
/// that both see the same machine load.
fn keda_anchor(policy: &wasmscaler::runtime::LoadedPolicy, ctx: &Context, n: usize) {
    let scaler = keda_grpc::Scaler::start().expect("scaler process");
    let mut client = keda_grpc::Client::connect(scaler.port, 600.0, 4, 1, 20).expect("client");
    let want = i64::from(policy.evaluate(ctx, None).expect("evaluate").replicas);
    assert_eq!(client.get_metrics().expect("GetMetrics"), want, "same HPA answer");
    let (mut ours, mut grpc) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n / 10 {
        std::hint::black_box(client.get_metrics().expect("GetMetrics"));
        std::hint::black_box(policy.evaluate(ctx, None).expect("evaluate"));
    }
    let block = 500.min(n);
    while ours.len() < n {
        for _ in 0..block {
            let t = Instant::now();
            std::hint::black_box(policy.evaluate(ctx, None).expect("evaluate"));
            ours.push(t.elapsed());
        }
        for _ in 0..block {
            let t = Instant::now();
            let r = client.get_metrics().expect("GetMetrics");
            grpc.push(t.elapsed());
            assert_eq!(r, want);
        }
    }
    drop(scaler);
    ours.sort_unstable();
    grpc.sort_unstable();
    let (o50, o99) = (percentile(&ours, 0.5), percentile(&ours, 0.99));
    let (g50, g99) = (percentile(&grpc, 0.5), percentile(&grpc, 0.99));
    let x = |g: Duration, o: Duration| g.as_secs_f64() / o.as_secs_f64().max(1e-12);
    println!(
        "KEDA anchor: externalscaler.ExternalScaler/GetMetrics (tonic, HTTP/2, loopback TCP, \
         server in another process running the same HPA computation natively), {} calls each, \
         interleaved in blocks of {block}",
        ours.len()
    );
    println!();
    println!("| measurement | p50 | p99 |");
    println!("|---|---|---|");
    println!(
        "| our evaluate, fresh Store per call | {} | {} |",
        us(o50),
        us(o99)
    );
    println!(
        "| KEDA external scaler GetMetrics round trip | {} | {} |",
        us(g50),
        us(g99)
    );
    println!(
        "| ratio (GetMetrics / ours: how many times faster we are) | {:.1}x | {:.1}x |",
        x(g50, o50),
        x(g99, o99)
    );
}

/// Each built-in policy on the first two ticks of its first scenario file
/// (policies/<name>/scenarios): the first tick has no state (e.g. ml-predictive fits its
/// model), the second carries the first one's state (ml-predictive reuses its forecast).
fn standard_policies(rt: &Runtime, unmetered_rt: &Runtime, quick: bool) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    println!(
        "| policy | .wasm bytes | evaluate p50, first tick (no state) | evaluate p50, next tick (with state) | next tick, fuel metering off | metering overhead | fuel per call (next tick) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for name in builtins::names() {
        let dir = if name == "hpa" {
            None
        } else {
            Some(root.join("policies").join(name).join("scenarios"))
        };
        let bytes = builtins::bytes(name).expect("built-in");
        let policy = rt
            .load(name, bytes, builtins::default_limits(name))
            .expect("load");
        let (first, second, history) = match dir.and_then(|d| first_two_ticks(&d)) {
            Some(t) => t,
            None => {
                let c = ContextBuilder::new()
                    .replicas(4, 4)
                    .bounds(1, 20)
                    .latest("load", 600.0)
                    .build();
                (c.clone(), c, PrefetchedHistory::default())
            }
        };
        let history: Arc<dyn HistorySource> = Arc::new(FixedHistory(history));
        let n = if quick {
            20
        } else if name == "ml-predictive" {
            60
        } else {
            2_000
        };
        let a = measure(n, || {
            let _ = std::hint::black_box(policy.evaluate(&first, Some(history.clone())));
        });
        let mut ctx2 = second.clone();
        ctx2.state = policy
            .evaluate(&first, Some(history.clone()))
            .ok()
            .and_then(|d| d.state);
        let b = measure(n, || {
            let _ = std::hint::black_box(policy.evaluate(&ctx2, Some(history.clone())));
        });
        let plain = unmetered_rt
            .load(name, bytes, builtins::default_limits(name))
            .expect("load");
        let c = measure(n, || {
            let _ = std::hint::black_box(plain.evaluate(&ctx2, Some(history.clone())));
        });
        let fuel = policy.evaluate_metered(&ctx2, Some(history.clone())).1;
        println!(
            "| {name} | {} | {} | {} | {} | {:+.1} % | {fuel} |",
            bytes.len(),
            us(a.p50),
            us(b.p50),
            us(c.p50),
            (b.p50.as_secs_f64() / c.p50.as_secs_f64().max(1e-12) - 1.0) * 100.0
        );
    }
}

/// History exactly as the scenario file gives it.
struct FixedHistory(PrefetchedHistory);
impl HistorySource for FixedHistory {
    fn history(&self, signal: &str, _w: u64, _s: u64) -> Result<Vec<Sample>, String> {
        self.0
            .series
            .get(signal)
            .cloned()
            .ok_or_else(|| format!("no history for '{signal}'"))
    }
}

fn first_two_ticks(dir: &Path) -> Option<(Context, Context, PrefetchedHistory)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    for f in files
        .iter()
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
    {
        let s = Scenario::load(f).ok()?;
        let usable: Vec<_> = s
            .ticks
            .iter()
            .filter(|t| t.expect.error_contains.is_none())
            .collect();
        if usable.is_empty() {
            continue;
        }
        let config = s.config.to_string();
        let t0 = usable[0];
        let t1 = usable.get(1).copied().unwrap_or(t0);
        let history = PrefetchedHistory {
            now_ms: t0.now_ms,
            series: t0.history_samples().into_iter().collect(),
        };
        return Some((t0.context(&config), t1.context(&config), history));
    }
    None
}
