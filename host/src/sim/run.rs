//! The tick loop. The simulated clock advances in `resolution` steps; each step moves the
//! cluster (Ready transitions, spot interruptions, Jobs), evaluates the policy when due
//! and accounts the step. A policy is evaluated every `interval`, or sooner when its last
//! decision asked (`recheck_after_ms`, e.g. Knative's 2 s tick or a cron boundary): the
//! next evaluation is at now + min(interval, recheck), rounded up to the resolution.
//! Entries run on up to two threads; results are gathered in scenario order, so the
//! output does not depend on scheduling.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use wasmscaler_sdk::Workload;

use super::SimError;
use super::cluster::{Capacity, Cluster, Draws, JobQueue};
use super::history::TraceHistory;
use super::oracle::Oracle;
use super::score::Tally;
use super::setup::{Entry, Prepared};
use super::signals::{View, gather};
use super::trace::Trace;
use crate::core::decision_log::{Buffer, Record, Source, WorkloadId};
use crate::core::{Action, Mode, Observation, WorkloadState, evaluate};

/// Per-bucket series for the chart.
#[derive(Debug, Clone, Default)]
pub struct Series {
    /// Mean replicas (Jobs in queue scenarios) per bucket.
    pub replicas: Vec<f32>,
    /// Mean Ready capacity (queue scenarios: mean queue length) per bucket.
    pub capacity: Vec<f32>,
}

/// One entry's run.
pub struct EntryRun {
    /// The entry's decision-log lines, when asked for ([`super::setup::Prepared::decision_log`]).
    pub decision_log: Vec<u8>,
    pub tally: Tally,
    pub series: Series,
    pub wall: Duration,
    pub sandbox: Duration,
}

/// The oracle's totals and series.
pub struct OracleRun {
    pub replica_ms: f64,
    pub max_replicas: u32,
    /// Time the load exceeded what `maxReplicas` replicas serve (the oracle is held to it).
    pub violation_ms: i64,
    /// Share of the load above what those replicas serve.
    pub unserved_share: f64,
    pub scale_events: u32,
    pub pod_starts: u64,
    pub replicas: Vec<f32>,
    /// Mean load per bucket (the trace).
    pub load: Vec<f32>,
}

pub struct Outcome {
    pub runs: Vec<EntryRun>,
    pub oracle: OracleRun,
    pub bucket_ms: i64,
    pub wall: Duration,
}

/// Chart bucket: about 600 points over the span, a multiple of the resolution.
pub fn bucket_ms(p: &Prepared) -> i64 {
    let dt = p.loaded.scenario.resolution.0;
    let span = p.to_ms - p.from_ms;
    super::ceil_div(span / 600, dt).max(1) * dt
}

/// Run every entry (at most `threads` at a time) and the oracle.
pub fn run(p: &Prepared, threads: usize, progress: Option<&ProgressBar>) -> Result<Outcome, SimError> {
    let started = Instant::now();
    let n = p.entries.len();
    let next = AtomicUsize::new(0);
    let mut slots: Vec<Option<Result<EntryRun, SimError>>> = (0..n).map(|_| None).collect();
    let results: Vec<(usize, Result<EntryRun, SimError>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads.clamp(1, n.max(1)))
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            break;
                        }
                        mine.push((i, run_entry(p, i, progress)));
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    for (i, r) in results {
        slots[i] = Some(r);
    }
    let mut runs = Vec::with_capacity(n);
    for s in slots {
        runs.push(s.ok_or_else(|| SimError::Runtime("a simulation thread panicked".into()))??);
    }
    let oracle = run_oracle(p);
    Ok(Outcome {
        runs,
        oracle,
        bucket_ms: bucket_ms(p),
        wall: started.elapsed(),
    })
}

/// Items arriving from a `count` trace: a row's items spread evenly over the row.
pub struct Arrivals<'a> {
    trace: &'a Trace,
    row: usize,
    k: u64,
}

impl<'a> Arrivals<'a> {
    pub fn new(trace: &'a Trace, from_ms: i64) -> Self {
        let mut a = Self {
            trace,
            row: trace.row_at(from_ms),
            k: 0,
        };
        // Skip items of the first row that arrive before `from_ms`.
        while a.peek().is_some_and(|t| t < from_ms) {
            a.k += 1;
            a.settle();
        }
        a
    }

    fn count(&self, row: usize) -> u64 {
        self.trace.values[row].round().max(0.0) as u64
    }

    fn settle(&mut self) {
        while self.row < self.trace.at_ms.len() && self.k >= self.count(self.row) {
            self.row += 1;
            self.k = 0;
        }
    }

    /// Arrival time (ms from the trace start) of the next item.
    pub fn peek(&mut self) -> Option<i64> {
        self.settle();
        if self.row >= self.trace.at_ms.len() {
            return None;
        }
        let n = self.count(self.row) as i64;
        let len = self.trace.row_len(self.row);
        Some(self.trace.at_ms[self.row] + self.k as i64 * len / n)
    }

    /// Take every item arriving before `until`.
    pub fn take_until(&mut self, until: i64, mut f: impl FnMut(i64)) {
        while let Some(t) = self.peek() {
            if t >= until {
                break;
            }
            f(t);
            self.k += 1;
        }
    }
}

fn run_oracle(p: &Prepared) -> OracleRun {
    let s = &p.loaded.scenario;
    let dt = s.resolution.0;
    let bucket = bucket_ms(p);
    let mut load = Vec::new();
    let mut replicas = Vec::new();
    let (mut lsum, mut rsum, mut k) = (0.0f64, 0.0f64, 0u32);
    let mut flush = |lsum: &mut f64, rsum: &mut f64, k: &mut u32| {
        if *k > 0 {
            load.push((*lsum / f64::from(*k)) as f32);
            replicas.push((*rsum / f64::from(*k)) as f32);
        }
        *lsum = 0.0;
        *rsum = 0.0;
        *k = 0;
    };
    if let Some(jobs) = &s.jobs {
        let mut items = 0u64;
        let mut arrivals = Arrivals::new(&p.trace, p.from_ms);
        let mut t = p.from_ms;
        while t < p.to_ms {
            let mut here = 0u64;
            arrivals.take_until(t + dt, |_| here += 1);
            items += here;
            lsum += p.trace.rate_at(t);
            rsum += 0.0;
            k += 1;
            if (t - p.from_ms + dt) % bucket == 0 {
                flush(&mut lsum, &mut rsum, &mut k);
            }
            t += dt;
        }
        flush(&mut lsum, &mut rsum, &mut k);
        let per_item = (s.pod_startup.min_ms() + jobs.duration.0) as f64;
        return OracleRun {
            replica_ms: items as f64 * per_item,
            max_replicas: 0,
            violation_ms: 0,
            unserved_share: 0.0,
            scale_events: 0,
            pod_starts: items,
            replicas,
            load,
        };
    }
    let cap = s.capacity_per_replica.unwrap_or(1.0);
    let (min, max) = (s.min_replicas, s.max_replicas);
    let first = Oracle::new(0, min, max, 0).need(p.trace.rate_at(p.from_ms), cap);
    let mut o = Oracle::new(s.pod_startup.min_ms(), min, max, first);
    let mut violation_ms = 0i64;
    let (mut offered, mut unserved) = (0.0f64, 0.0f64);
    let mut t = p.from_ms;
    while t < p.to_ms {
        let l = p.trace.rate_at(t);
        let need = o.need(l, cap);
        let step = dt.min(p.to_ms - t);
        o.step(t, step, need);
        let short = l - f64::from(need) * cap;
        if short > 1e-9 {
            violation_ms += step;
            unserved += short * step as f64;
        }
        offered += l * step as f64;
        lsum += l;
        rsum += f64::from(need);
        k += 1;
        if (t - p.from_ms + dt) % bucket == 0 {
            flush(&mut lsum, &mut rsum, &mut k);
        }
        t += dt;
    }
    flush(&mut lsum, &mut rsum, &mut k);
    OracleRun {
        replica_ms: o.replica_ms,
        max_replicas: o.max_replicas,
        violation_ms,
        unserved_share: if offered > 0.0 { unserved / offered } else { 0.0 },
        scale_events: o.changes,
        pod_starts: o.starts,
        replicas,
        load,
    }
}

/// Replicas at the start: the scenario's `initialReplicas`, else what the start needs.
fn initial_replicas(p: &Prepared, e: &Entry) -> u32 {
    let s = &p.loaded.scenario;
    let g = &e.spec.guardrails;
    if s.jobs.is_some() {
        return 0;
    }
    let want = s.initial_replicas.unwrap_or_else(|| {
        let cap = s.capacity_per_replica.unwrap_or(1.0);
        let (min, max) = (g.min_replicas.min(g.max_replicas), g.max_replicas);
        Oracle::new(0, min, max, 0).need(p.trace.rate_at(p.from_ms), cap)
    });
    want.clamp(g.min_replicas.min(g.max_replicas), g.max_replicas)
}

fn pool_kind(p: &Prepared, name: &str) -> Capacity {
    let mapped = p
        .loaded
        .scenario
        .spot
        .as_ref()
        .and_then(|s| s.pools.get(name))
        .map(String::as_str);
    match mapped {
        Some("spot") => Capacity::Spot,
        Some(_) => Capacity::OnDemand,
        None if name.contains("spot") => Capacity::Spot,
        None => Capacity::OnDemand,
    }
}

/// Simulate entry `i`.
pub fn run_entry(p: &Prepared, i: usize, progress: Option<&ProgressBar>) -> Result<EntryRun, SimError> {
    let started = Instant::now();
    let s = &p.loaded.scenario;
    let e = &p.entries[i];
    let epoch = p.loaded.start_epoch_ms;
    let dt = s.resolution.0;
    let bucket = bucket_ms(p);
    let cap = s.capacity_per_replica.unwrap_or(1.0);
    let request_s = s.request_duration.0 as f64 / 1000.0;
    let bound = s.slo.queue_wait_bound.map(|b| b.0);
    // Each entry draws from its own stream, so entries do not disturb each other.
    let seed = s.seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let spot = s.spot.clone().unwrap_or_default();
    let shortages = spot
        .shortages
        .iter()
        .map(|w| (epoch + p.from_ms + w.from.0, epoch + p.from_ms + w.to.0))
        .collect();
    let mut cluster = Cluster::new(
        Draws::new(seed, s.pod_startup.clone(), spot.interruption_rate),
        shortages,
    );
    let mut job_draws = Draws::new(seed ^ 0x5151, s.pod_startup.clone(), 0.0);
    let mut queue = s.jobs.as_ref().map(|j| JobQueue::new(j.duration.0));
    let mut arrivals = Arrivals::new(&p.trace, p.from_ms);

    let plan_signals = crate::core::evaluate::signal_plan(&e.plan, &e.spec);
    if let Some((r, _)) = plan_signals.iter().find(|(r, _)| r.name == "spot-interruptions") {
        cluster.keep_events_for(i64::try_from(r.window_ms).unwrap_or(i64::MAX / 4));
    }
    cluster.seed_ready(initial_replicas(p, e), epoch + p.from_ms);

    let mut state = WorkloadState::default();
    let mut log = p.decision_log.map(Buffer::new);
    let mut tally = Tally::default();
    let mut series = Series::default();
    let (mut rsum, mut csum, mut k) = (0.0f64, 0.0f64, 0u32);
    let mut sandbox = Duration::ZERO;
    let mut next_eval = p.from_ms;
    let mut t = p.from_ms;
    let mut since_progress = 0u64;
    while t < p.to_ms {
        let now = epoch + t;
        let step = dt.min(p.to_ms - t);
        cluster.advance(now);
        if let Some(q) = queue.as_mut() {
            arrivals.take_until(t + 1, |at| q.arrive(epoch + at));
            q.advance(now, bound);
        }
        if t >= next_eval {
            let view = View {
                now_ms: now,
                rel_ms: t,
                trace: &p.trace,
                request_s,
                cluster: &cluster,
                queue: queue.as_ref(),
            };
            let (signals, signal_errors) = gather(&plan_signals, &view);
            let logged_errors = log.as_ref().map(|_| signal_errors.clone());
            let (replicas, ready) = match &queue {
                Some(q) => (q.unfinished(), q.running_jobs()),
                None => (cluster.total(), cluster.ready()),
            };
            let obs = Observation {
                now_ms: now,
                workload: Workload {
                    kind: "Simulated".into(),
                    namespace: "simulation".into(),
                    name: e.name.clone(),
                    replicas,
                    ready_replicas: ready,
                    min_replicas: 0,
                    max_replicas: 0,
                    labels: Vec::new(),
                },
                signals,
                signal_errors,
                history: Some(Arc::new(TraceHistory {
                    trace: p.trace.clone(),
                    epoch_ms: epoch,
                    now_ms: now,
                    request_s,
                })),
                record_history: log.is_some(),
            };
            let outcome = evaluate(&e.plan, &e.spec, obs, &mut state);
            if let (Some(buf), Some(errors)) = (log.as_mut(), &logged_errors) {
                let id = WorkloadId {
                    kind: "Simulated".into(),
                    namespace: "simulation".into(),
                    name: e.name.clone(),
                    uid: None,
                };
                let shadow = e.spec.mode == Mode::Shadow;
                buf.push(&Record::of(
                    Source::Simulator,
                    id,
                    shadow,
                    errors,
                    &outcome,
                    replicas,
                    now,
                ));
            }
            let spent: Duration = outcome.runs.iter().map(|r| r.latency).sum();
            sandbox += spent;
            tally
                .latencies_us
                .push(u32::try_from(spent.as_micros()).unwrap_or(u32::MAX));
            tally.fuel.push(outcome.runs.iter().map(|r| r.fuel).sum());
            tally.evaluations += 1;
            if outcome.failed {
                tally.failed_evaluations += 1;
            }
            for r in &outcome.runs {
                if let Err(err) = &r.result {
                    tally.record_failure(&r.policy, err.kind(), t - p.from_ms, err.to_string());
                }
            }
            match queue.as_mut() {
                Some(q) => {
                    // core::evaluate bounds it by maxReplicas minus the unfinished Jobs.
                    let n = outcome.jobs.unwrap_or(0);
                    if n > 0 {
                        q.create(n, now, &mut job_draws);
                        tally.scale_events += 1;
                    }
                }
                None => {
                    let placed = !outcome.placement.is_empty();
                    if placed && !matches!(outcome.action, Action::Shadow { .. }) {
                        for pr in &outcome.placement {
                            let kind = pool_kind(p, &pr.pool);
                            let idx = cluster.pool(&pr.pool, kind);
                            cluster.adopt_default(idx, pr.replicas, now);
                            cluster.scale_pool(idx, pr.replicas, now);
                        }
                        // Pods outside the placement's pools (the start) go.
                        let named: u32 = outcome.placement.iter().map(|x| x.replicas).sum();
                        if cluster.total() > named {
                            let default = cluster.pool(super::cluster::DEFAULT_POOL, Capacity::OnDemand);
                            cluster.scale_pool(default, 0, now);
                        }
                    }
                    if let Action::Scale { from, to } = outcome.action {
                        if !placed {
                            cluster.scale_total(to, now);
                        }
                        e.spec.guardrails.record_scale(&mut state.guard, now, from, to);
                        tally.scale_events += 1;
                    }
                }
            }
            let wait = i64::try_from(outcome.next_wait_ms(e.spec.interval_ms)).unwrap_or(i64::MAX);
            next_eval = t + super::ceil_div(wait, dt) * dt;
        }

        // Account [t, t + step).
        tally.simulated_ms += step;
        let step_s = step as f64 / 1000.0;
        let load = p.trace.rate_at(t);
        match &queue {
            Some(q) => {
                let jobs = q.unfinished();
                tally.on_demand_ms += f64::from(jobs) * step as f64;
                tally.max_replicas = tally.max_replicas.max(jobs);
                if bound.is_some_and(|b| q.oldest_wait(now) > b) {
                    tally.violation_ms += step;
                }
                rsum += f64::from(jobs);
                csum += q.waiting.len() as f64;
            }
            None => {
                let ready_cap = f64::from(cluster.ready()) * cap;
                tally.load += load * step_s;
                if load > ready_cap + 1e-9 {
                    tally.violation_ms += step;
                    tally.unserved += (load - ready_cap) * step_s;
                    if load > f64::from(e.spec.guardrails.max_replicas) * cap + 1e-9 {
                        tally.violation_above_max_ms += step;
                    }
                }
                let (od, sp) = cluster.billed(now);
                tally.on_demand_ms += f64::from(od) * step as f64;
                tally.spot_ms += f64::from(sp) * step as f64;
                tally.max_replicas = tally.max_replicas.max(cluster.total());
                rsum += f64::from(cluster.total());
                csum += ready_cap;
            }
        }
        k += 1;
        if (t - p.from_ms + dt) % bucket == 0 {
            series.replicas.push((rsum / f64::from(k)) as f32);
            series.capacity.push((csum / f64::from(k)) as f32);
            (rsum, csum, k) = (0.0, 0.0, 0);
        }
        since_progress += 1;
        if since_progress == 8192 {
            if let Some(pb) = progress {
                pb.inc(since_progress);
            }
            since_progress = 0;
        }
        t += dt;
    }
    if k > 0 {
        series.replicas.push((rsum / f64::from(k)) as f32);
        series.capacity.push((csum / f64::from(k)) as f32);
    }
    if let Some(pb) = progress {
        pb.inc(since_progress);
    }
    tally.interruptions = cluster.interruptions_total;
    tally.pod_starts = match &queue {
        Some(q) => q.jobs_created,
        None => cluster.pods_created,
    };
    if let Some(q) = &queue {
        let end = epoch + p.to_ms;
        let never = q
            .waiting
            .iter()
            .filter(|&&a| bound.is_none_or(|b| end - a > b))
            .count();
        tally.items = q.items_arrived;
        tally.items_late = q.items_late + never as u64;
    }
    Ok(EntryRun {
        decision_log: log.map(Buffer::finish).unwrap_or_default(),
        tally,
        series,
        wall: started.elapsed(),
        sandbox,
    })
}

/// Simulated steps of one entry (for the progress bar).
pub fn steps(p: &Prepared) -> u64 {
    let dt = p.loaded.scenario.resolution.0;
    ((p.to_ms - p.from_ms) / dt) as u64
}
