//! Native replay: the policy against an HPA-like reactive baseline on a real trace.
//!
//! `cargo run --release -p policy-ml-predictive --example replay -- [--margins 0,0.1,..] [--days N] <trace.csv>...`
//!
//! A deliberately simple cluster model, fast enough to sweep settings natively; the numbers
//! that count are the simulator's (README, "Decision quality (through `wasmscaler simulate`)"):
//! - the trace's load is interpolated linearly between its points to a 15 s tick;
//! - capacity per replica = p99(trace) / 20, bounds 2..100 replicas;
//! - a requested replica becomes Ready 60 s later; scale-down is immediate (pods not yet
//!   Ready go first); every requested replica costs from the moment it is requested;
//! - SLO violation: a tick whose load exceeds ready replicas x capacity (counted as 15 s);
//! - HPA baseline, target utilisation u: proportional rule on replicas, tolerance 0.1,
//!   300 s scale-down stabilization, scale-up at most max(+100 %, +4 pods) per 15 s tick;
//! - the policy runs natively through `wasmscaler_sdk::testing::Harness` (config parse,
//!   state round-trip: the component's code path), with `targetPerReplica` = capacity x
//!   `--target-util` (default 1.0) and
//!   the swept `margin`; its `history` is served from the trace up to "now" only (the
//!   host's view: 5 min buckets, or the trace's own step when coarser); its decision is
//!   applied as-is. Evaluation starts after the 7-day history warm-up.

#[path = "common/mod.rs"]
mod common;

use common::{BASE_MS, Resampled, Trace, percentile};
use policy_ml_predictive::MlPredictive;
use std::time::Instant;
use wasmscaler_sdk::testing::{ContextBuilder, Harness, set_history};

const TICK_MS: i64 = 15_000;
const STARTUP_MS: i64 = 60_000;
const MIN_R: u32 = 2;
const MAX_R: u32 = 100;
const WARMUP_MS: i64 = 7 * 86_400_000;

/// Requested pods, each with the instant it becomes Ready.
struct Cluster {
    pods: Vec<i64>,
    replica_ms: f64,
    violation_ticks: u64,
    ticks: u64,
}

impl Cluster {
    fn new(n: u32, now: i64) -> Self {
        Cluster {
            pods: vec![now; n as usize],
            replica_ms: 0.0,
            violation_ticks: 0,
            ticks: 0,
        }
    }
    fn replicas(&self) -> u32 {
        self.pods.len() as u32
    }
    fn ready(&self, now: i64) -> u32 {
        self.pods.iter().filter(|&&r| r <= now).count() as u32
    }
    fn apply(&mut self, want: u32, now: i64) {
        let n = self.pods.len();
        let want = want as usize;
        if want > n {
            self.pods.extend(std::iter::repeat_n(now + STARTUP_MS, want - n));
        } else if want < n {
            // Latest-ready first (pending pods before Ready ones).
            self.pods.sort_unstable();
            self.pods.truncate(want);
        }
    }
    fn account(&mut self, now: i64, load: f64, cap: f64) {
        self.ticks += 1;
        self.replica_ms += self.pods.len() as f64 * TICK_MS as f64;
        if load > f64::from(self.ready(now)) * cap + 1e-9 {
            self.violation_ticks += 1;
        }
    }
    fn replica_hours(&self) -> f64 {
        self.replica_ms / 3_600_000.0
    }
    fn violation_minutes(&self) -> f64 {
        self.violation_ticks as f64 * TICK_MS as f64 / 60_000.0
    }
}

fn hpa(trace: &Trace, start: i64, end: i64, cap: f64, u: f64) -> (f64, f64) {
    let target = u * cap;
    let init = ((trace.at(start) / target).ceil() as u32).clamp(MIN_R, MAX_R);
    let mut c = Cluster::new(init, start);
    let mut recs: std::collections::VecDeque<(i64, u32)> = Default::default();
    let mut t = start;
    while t < end {
        let load = trace.at(t);
        let cur = c.replicas();
        let raw = wasmscaler_sdk::math::hpa_proportional(cur, load / f64::from(cur.max(1)), target, 0.1)
            .unwrap_or(cur)
            .clamp(MIN_R, MAX_R);
        recs.push_back((t, raw));
        while recs.front().is_some_and(|&(at, _)| at <= t - 300_000) {
            recs.pop_front();
        }
        let mut want = if raw < cur {
            // Scale-down stabilization: the highest recommendation of the last 300 s.
            recs.iter().map(|&(_, r)| r).max().unwrap_or(raw).min(cur)
        } else {
            raw
        };
        let up_limit = (cur * 2).max(cur + 4);
        want = want.min(up_limit).clamp(MIN_R, MAX_R);
        c.apply(want, t);
        c.account(t, load, cap);
        t += TICK_MS;
    }
    (c.replica_hours(), c.violation_minutes())
}

struct PolicyRun {
    rh: f64,
    vm: f64,
    refit_us: Vec<f64>,
    cached_us: Vec<f64>,
    forecast_ticks: u64,
    ticks: u64,
}

fn policy(
    trace: &Trace,
    hist: &Resampled,
    (start, end): (i64, i64),
    target: f64,
    cap: f64,
    margin: f64,
    extra: &str,
) -> PolicyRun {
    let config = format!(r#"{{"targetPerReplica": {target}, "margin": {margin}{extra}}}"#);
    let init = ((trace.at(start) / (0.7 * cap)).ceil() as u32).clamp(MIN_R, MAX_R);
    let mut c = Cluster::new(init, start);
    let mut h = Harness::<MlPredictive>::new();
    let (mut refit_us, mut cached_us) = (Vec::new(), Vec::new());
    let mut forecast_ticks = 0;
    let mut t = start;
    while t < end {
        let load = trace.at(t);
        // The host's view at t: history up to t only, the load signal's last 5 minutes.
        set_history("load", hist.history(t, 7 * 86_400_000 + 1).to_vec());
        let recent: Vec<(i64, f64)> = (0..20)
            .rev()
            .map(|k| (t - k * TICK_MS, trace.at(t - k * TICK_MS)))
            .collect();
        let ctx = ContextBuilder::new()
            .now_ms(t)
            .replicas(c.replicas(), c.ready(t))
            .bounds(MIN_R, MAX_R)
            .config(config.clone())
            .series("load", &recent)
            .build();
        let started = Instant::now();
        let d = h.tick(ctx);
        let us = started.elapsed().as_secs_f64() * 1e6;
        let want = match d {
            Ok(d) => {
                let refit = d.metrics.iter().any(|m| m.name == "refit" && m.value > 0.0);
                if refit {
                    refit_us.push(us)
                } else {
                    cached_us.push(us)
                }
                if d.metrics.iter().any(|m| m.name == "forecast_peak") {
                    forecast_ticks += 1;
                }
                d.replicas
            }
            Err(e) => {
                eprintln!("policy error at {}: {e}", t - BASE_MS);
                c.replicas()
            }
        };
        c.apply(want, t);
        c.account(t, load, cap);
        t += TICK_MS;
    }
    PolicyRun {
        rh: c.replica_hours(),
        vm: c.violation_minutes(),
        refit_us,
        cached_us,
        forecast_ticks,
        ticks: c.ticks,
    }
}

/// HPA violation minutes at `rh` replica-hours, linear between the HPA points (sorted by
/// cost); `None` outside the HPA's range.
fn hpa_at(curve: &[(f64, f64, f64)], rh: f64) -> Option<f64> {
    let mut c: Vec<_> = curve.to_vec();
    c.sort_by(|a, b| a.1.total_cmp(&b.1));
    for w in c.windows(2) {
        let (a, b) = (w[0], w[1]);
        if rh >= a.1 && rh <= b.1 {
            let f = if b.1 > a.1 { (rh - a.1) / (b.1 - a.1) } else { 0.0 };
            return Some(a.2 + (b.2 - a.2) * f);
        }
    }
    None
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut margins = vec![0.0, 0.1, 0.2, 0.3, 0.5];
    let mut days: Option<f64> = None;
    let mut extra = String::new();
    let mut util = 1.0;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--margins" => {
                margins = args
                    .get(i + 1)
                    .map(|s| s.split(',').filter_map(|x| x.parse().ok()).collect())
                    .unwrap_or_default();
                args.drain(i..i + 2);
            }
            "--days" => {
                days = args.get(i + 1).and_then(|s| s.parse().ok());
                args.drain(i..i + 2);
            }
            "--target-util" => {
                util = args.get(i + 1).and_then(|s| s.parse().ok()).unwrap_or(1.0);
                args.drain(i..i + 2);
            }
            "--extra" => {
                // Extra config keys for experiments, e.g. --extra '"levelCorrection": false'
                extra = format!(", {}", args.get(i + 1).cloned().unwrap_or_default());
                args.drain(i..i + 2);
            }
            _ => i += 1,
        }
    }
    if args.is_empty() || margins.is_empty() {
        eprintln!("usage: replay [--margins 0,0.1,0.2] [--days N] <trace.csv>...");
        std::process::exit(2);
    }
    let hpa_us = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8];
    let mut summary = Vec::new();
    let (mut all_refit, mut all_cached) = (Vec::new(), Vec::new());
    for path in &args {
        let trace = match Trace::load(path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1)
            }
        };
        let cap = trace.p99() / 20.0;
        let hist = trace.resampled(5 * 60_000);
        let end = trace.end_ms();
        let start = match days {
            Some(d) => (end - (d * 86_400_000.0) as i64).max(BASE_MS + WARMUP_MS),
            None => BASE_MS + WARMUP_MS,
        };
        let start = start - (start - BASE_MS) % TICK_MS;
        println!(
            "\n## {}: step {} s, capacity/replica {cap:.3} (p99 {:.3} / 20), {:.1} days replayed",
            trace.name,
            trace.step_ms / 1000,
            trace.p99(),
            (end - start) as f64 / 86_400_000.0
        );
        let curve: Vec<(f64, f64, f64)> = std::thread::scope(|s| {
            let tr = &trace;
            let hs: Vec<_> = hpa_us
                .iter()
                .map(|&u| {
                    s.spawn(move || {
                        let (rh, vm) = hpa(tr, start, end, cap, u);
                        (u, rh, vm)
                    })
                })
                .collect();
            hs.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        println!("| baseline | replica-hours | violation minutes |\n|---|---|---|");
        for (u, rh, vm) in &curve {
            println!("| HPA u={u:.2} | {rh:.0} | {vm:.1} |");
        }
        let runs: Vec<(f64, PolicyRun)> = std::thread::scope(|s| {
            let mut out = Vec::new();
            // Two at a time: the machine has two cores.
            for chunk in margins.chunks(2) {
                let hs: Vec<_> = chunk
                    .iter()
                    .map(|&m| {
                        let (trace, hist, extra) = (&trace, &hist, extra.as_str());
                        s.spawn(move || (m, policy(trace, hist, (start, end), util * cap, cap, m, extra)))
                    })
                    .collect();
                out.extend(hs.into_iter().filter_map(|h| h.join().ok()));
            }
            out
        });
        println!(
            "| ml-predictive | replica-hours | violation minutes | HPA at equal replica-hours | fewer violations | forecast ticks |\n|---|---|---|---|---|---|"
        );
        for (m, r) in runs {
            let base = hpa_at(&curve, r.rh);
            let (b, red) = match base {
                Some(b) if b > 0.0 => (format!("{b:.1}"), format!("{:.0} %", 100.0 * (1.0 - r.vm / b))),
                Some(b) => (format!("{b:.1}"), "n/a (HPA 0)".into()),
                None => ("outside HPA range".into(), "-".into()),
            };
            println!(
                "| margin {m:.2} | {:.0} | {:.1} | {b} | {red} | {:.0} % |",
                r.rh,
                r.vm,
                100.0 * r.forecast_ticks as f64 / r.ticks.max(1) as f64
            );
            summary.push((trace.name.clone(), m, r.rh, r.vm, base));
            all_refit.extend(r.refit_us);
            all_cached.extend(r.cached_us);
        }
    }
    println!(
        "\nnative evaluate p50: {:.0} us with refit ({} calls), {:.1} us without ({} calls); p99 {:.0} / {:.1} us",
        percentile(&mut all_refit.clone(), 0.5),
        all_refit.len(),
        percentile(&mut all_cached.clone(), 0.5),
        all_cached.len(),
        percentile(&mut all_refit, 0.99),
        percentile(&mut all_cached, 0.99)
    );
    println!("\nsummary (trace, margin, replica-hours, violation-min, HPA violation-min at equal cost):");
    for (n, m, rh, vm, b) in summary {
        println!(
            "{n}\t{m}\t{rh:.0}\t{vm:.1}\t{}",
            b.map(|b| format!("{b:.1}")).unwrap_or("-".into())
        );
    }
}
