//! The simulated cluster: pods that become Ready after a start-up delay, immediate
//! scale-down, spot pods that are interrupted (and restart) or stay Pending while spot
//! capacity is short, and, for queue scenarios, Jobs that consume queued items.
//!
//! Pod lifecycle: created -> scheduled (at once; a spot pod created inside a shortage
//! window waits for its end: that is "Pending" for the spot signals) -> Ready after the
//! start-up delay. A scheduled pod is billed. An interrupted spot pod is rescheduled at
//! once (a replacement, as Karpenter does) and goes through start-up again.
//! Scale-down removes unscheduled pods first, then starting ones (latest first), then
//! the newest Ready ones, like a ReplicaSet.

use std::collections::VecDeque;

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

use super::scenario::{Startup, StartupDist};

/// Capacity type of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capacity {
    OnDemand,
    Spot,
}

#[derive(Debug, Clone)]
struct Pod {
    pool: usize,
    created_at: i64,
    scheduled_at: i64,
    ready_at: i64,
    interrupt_at: i64,
}

/// Draws from the scenario's seeded RNG.
pub struct Draws {
    rng: ChaCha8Rng,
    startup: Startup,
    /// Interruptions per spot pod per ms.
    interrupt_per_ms: f64,
}

impl Draws {
    pub fn new(seed: u64, startup: Startup, interruptions_per_hour: f64) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
            startup,
            interrupt_per_ms: interruptions_per_hour / 3_600_000.0,
        }
    }

    /// Uniform in (0, 1).
    fn unit(&mut self) -> f64 {
        ((self.rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    pub fn startup_ms(&mut self) -> i64 {
        match self.startup.clone() {
            Startup::Fixed(m) | Startup::Dist(StartupDist::Fixed(m)) => m.0,
            Startup::Dist(StartupDist::Uniform([a, b])) => {
                a.0 + ((b.0 - a.0) as f64 * self.unit()).round() as i64
            }
            Startup::Dist(StartupDist::Normal { mean, stddev, min }) => {
                // Box-Muller.
                let (u1, u2) = (self.unit(), self.unit());
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                let lo = min.map_or(1000, |m| m.0) as f64;
                let hi = mean.0 as f64 + 4.0 * stddev.0 as f64;
                (mean.0 as f64 + z * stddev.0 as f64)
                    .clamp(lo, hi.max(lo))
                    .round() as i64
            }
        }
    }

    /// Time until a running spot pod is interrupted (exponential), or never.
    pub fn interrupt_after_ms(&mut self) -> i64 {
        if self.interrupt_per_ms <= 0.0 {
            return i64::MAX / 4;
        }
        let ms = -self.unit().ln() / self.interrupt_per_ms;
        if ms > 1e15 { i64::MAX / 4 } else { ms.ceil() as i64 }
    }
}

/// Pods of one simulated workload.
pub struct Cluster {
    pods: Vec<Pod>,
    pools: Vec<(String, Capacity)>,
    shortages: Vec<(i64, i64)>,
    draws: Draws,
    /// (at, pods interrupted) events, oldest first, pruned to `event_horizon_ms`.
    pub interruptions: VecDeque<(i64, u32)>,
    pub interruptions_total: u64,
    event_horizon_ms: i64,
    next_change: i64,
    ready: u32,
    /// Pods created after the start (scale-ups and interruption replacements): each one
    /// is an image pull and a start-up a real cluster pays for, so churn is counted here.
    pub pods_created: u64,
}

const NEVER: i64 = i64::MAX / 4;
/// The pool pods go to when the policy does not place.
pub const DEFAULT_POOL: &str = "default";

impl Cluster {
    pub fn new(draws: Draws, shortages: Vec<(i64, i64)>) -> Self {
        Self {
            pods: Vec::new(),
            pools: vec![(DEFAULT_POOL.to_string(), Capacity::OnDemand)],
            shortages,
            draws,
            interruptions: VecDeque::new(),
            interruptions_total: 0,
            event_horizon_ms: 3_600_000,
            next_change: NEVER,
            ready: 0,
            pods_created: 0,
        }
    }

    /// Keep interruption events this long (the widest window a policy asks for).
    pub fn keep_events_for(&mut self, ms: i64) {
        self.event_horizon_ms = self.event_horizon_ms.max(ms);
    }

    /// Start with `n` Ready pods in the default pool.
    pub fn seed_ready(&mut self, n: u32, now: i64) {
        for _ in 0..n {
            let interrupt_at = self.interrupt_at(0, now);
            self.pods.push(Pod {
                pool: 0,
                created_at: now,
                scheduled_at: now,
                ready_at: now,
                interrupt_at,
            });
        }
        self.refresh(now);
    }

    /// Index of a pool, registering it (`kind` decides its capacity type).
    pub fn pool(&mut self, name: &str, kind: Capacity) -> usize {
        if let Some(i) = self.pools.iter().position(|(n, _)| n == name) {
            return i;
        }
        self.pools.push((name.to_string(), kind));
        self.pools.len() - 1
    }

    fn interrupt_at(&mut self, pool: usize, scheduled_at: i64) -> i64 {
        if self.pools[pool].1 == Capacity::Spot {
            scheduled_at.saturating_add(self.draws.interrupt_after_ms())
        } else {
            NEVER
        }
    }

    fn schedule_time(&self, pool: usize, now: i64) -> i64 {
        if self.pools[pool].1 != Capacity::Spot {
            return now;
        }
        let mut t = now;
        for &(a, b) in &self.shortages {
            if t >= a && t < b {
                t = b;
            }
        }
        t
    }

    fn new_pod(&mut self, pool: usize, now: i64) -> Pod {
        self.pods_created += 1;
        let scheduled_at = self.schedule_time(pool, now);
        let ready_at = scheduled_at + self.draws.startup_ms();
        let interrupt_at = self.interrupt_at(pool, scheduled_at);
        Pod {
            pool,
            created_at: now,
            scheduled_at,
            ready_at,
            interrupt_at,
        }
    }

    /// Move the clock to `now`: pods become Ready, spot pods are interrupted.
    pub fn advance(&mut self, now: i64) {
        while let Some(&(at, _)) = self.interruptions.front() {
            if now - at > self.event_horizon_ms {
                self.interruptions.pop_front();
            } else {
                break;
            }
        }
        if now < self.next_change {
            return;
        }
        let mut hit = 0u32;
        for i in 0..self.pods.len() {
            if self.pods[i].interrupt_at <= now {
                hit += 1;
                let pool = self.pods[i].pool;
                let replacement = self.new_pod(pool, now);
                self.pods[i] = replacement;
            }
        }
        if hit > 0 {
            self.interruptions.push_back((now, hit));
            self.interruptions_total += u64::from(hit);
        }
        self.refresh(now);
    }

    fn refresh(&mut self, now: i64) {
        let mut next = NEVER;
        let mut ready = 0;
        for p in &self.pods {
            if p.ready_at <= now {
                ready += 1;
            } else {
                next = next.min(p.ready_at);
            }
            next = next.min(p.interrupt_at);
        }
        self.ready = ready;
        self.next_change = next;
    }

    pub fn total(&self) -> u32 {
        self.pods.len() as u32
    }

    pub fn ready(&self) -> u32 {
        self.ready
    }

    /// Pods not Ready yet (scheduled or not).
    pub fn not_ready(&self) -> u32 {
        self.total() - self.ready
    }

    /// Spot pods waiting for capacity, and the age (s) of the oldest.
    pub fn spot_pending(&self, now: i64) -> (u32, f64) {
        let mut n = 0;
        let mut oldest = now;
        for p in &self.pods {
            if self.pools[p.pool].1 == Capacity::Spot && p.scheduled_at > now {
                n += 1;
                oldest = oldest.min(p.created_at);
            }
        }
        (n, (now - oldest) as f64 / 1000.0)
    }

    /// Billed (scheduled) pods by capacity type: (on-demand, spot).
    pub fn billed(&self, now: i64) -> (u32, u32) {
        let (mut od, mut sp) = (0, 0);
        for p in &self.pods {
            if p.scheduled_at <= now {
                match self.pools[p.pool].1 {
                    Capacity::OnDemand => od += 1,
                    Capacity::Spot => sp += 1,
                }
            }
        }
        (od, sp)
    }

    /// Ready pods on spot capacity.
    pub fn ready_spot(&self, now: i64) -> u32 {
        self.pods
            .iter()
            .filter(|p| self.pools[p.pool].1 == Capacity::Spot && p.ready_at <= now)
            .count() as u32
    }

    fn count_in(&self, pool: usize) -> u32 {
        self.pods.iter().filter(|p| p.pool == pool).count() as u32
    }

    /// Scale a pool to `n` pods.
    pub fn scale_pool(&mut self, pool: usize, n: u32, now: i64) {
        let have = self.count_in(pool);
        if n > have {
            for _ in have..n {
                let p = self.new_pod(pool, now);
                self.pods.push(p);
            }
        } else if n < have {
            self.remove_where(have - n, now, |p| p.pool == pool);
        }
        self.refresh(now);
    }

    /// Move up to `n` pods of the default pool into `pool` as they are (the pods the run
    /// started with, once a policy first places them: no restart).
    pub fn adopt_default(&mut self, pool: usize, n: u32, now: i64) {
        let want = n.saturating_sub(self.count_in(pool));
        let mut moved = 0;
        for i in 0..self.pods.len() {
            if moved >= want || pool == 0 {
                break;
            }
            if self.pods[i].pool == 0 {
                self.pods[i].pool = pool;
                let at = self.pods[i].scheduled_at.max(now);
                self.pods[i].interrupt_at = self.interrupt_at(pool, at);
                moved += 1;
            }
        }
        self.refresh(now);
    }

    /// Scale the whole workload to `n` pods (new pods go to the largest pool).
    pub fn scale_total(&mut self, n: u32, now: i64) {
        let have = self.total();
        if n > have {
            let pool = (0..self.pools.len())
                .max_by_key(|&i| (self.count_in(i), std::cmp::Reverse(i)))
                .unwrap_or(0);
            for _ in have..n {
                let p = self.new_pod(pool, now);
                self.pods.push(p);
            }
        } else if n < have {
            self.remove_where(have - n, now, |_| true);
        }
        self.refresh(now);
    }

    fn remove_where(&mut self, k: u32, now: i64, f: impl Fn(&Pod) -> bool) {
        // ReplicaSet order: unscheduled, then not ready (latest first), then newest ready.
        let mut idx: Vec<usize> = (0..self.pods.len()).filter(|&i| f(&self.pods[i])).collect();
        idx.sort_by_key(|&i| {
            let p = &self.pods[i];
            let rank = if p.scheduled_at > now {
                0
            } else if p.ready_at > now {
                1
            } else {
                2
            };
            (
                rank,
                std::cmp::Reverse(if rank == 1 { p.ready_at } else { p.created_at }),
                std::cmp::Reverse(i),
            )
        });
        let mut gone: Vec<usize> = idx.into_iter().take(k as usize).collect();
        gone.sort_unstable_by(|a, b| b.cmp(a));
        for i in gone {
            self.pods.remove(i);
        }
    }
}

/// A queue of items consumed by Jobs (KEDA ScaledJob's world). Each Job starts after the
/// start-up delay, then takes one item (the oldest) and runs `job_ms`; a Job that finds
/// the queue empty exits at once.
pub struct JobQueue {
    /// Arrival times of waiting items, oldest first.
    pub waiting: VecDeque<i64>,
    /// Start times of Jobs not yet started.
    pending: Vec<i64>,
    /// End times of running Jobs.
    running: Vec<i64>,
    job_ms: i64,
    pub items_arrived: u64,
    pub items_started: u64,
    /// Items whose wait exceeded the bound when taken.
    pub items_late: u64,
    pub jobs_created: u64,
    pub jobs_empty: u64,
}

impl JobQueue {
    pub fn new(job_ms: i64) -> Self {
        Self {
            waiting: VecDeque::new(),
            pending: Vec::new(),
            running: Vec::new(),
            job_ms,
            items_arrived: 0,
            items_started: 0,
            items_late: 0,
            jobs_created: 0,
            jobs_empty: 0,
        }
    }

    pub fn arrive(&mut self, at: i64) {
        self.waiting.push_back(at);
        self.items_arrived += 1;
    }

    pub fn create(&mut self, n: u32, now: i64, draws: &mut Draws) {
        for _ in 0..n {
            let at = now + draws.startup_ms();
            self.pending.push(at);
            self.jobs_created += 1;
        }
    }

    /// Start and finish Jobs up to `now`. `bound`: wait beyond it makes an item late.
    pub fn advance(&mut self, now: i64, bound: Option<i64>) {
        self.running.retain(|&end| end > now);
        let mut i = 0;
        while i < self.pending.len() {
            if self.pending[i] <= now {
                self.pending.swap_remove(i);
                match self.waiting.pop_front() {
                    Some(arrived) => {
                        self.items_started += 1;
                        if bound.is_some_and(|b| now - arrived > b) {
                            self.items_late += 1;
                        }
                        self.running.push(now + self.job_ms);
                    }
                    None => self.jobs_empty += 1,
                }
            } else {
                i += 1;
            }
        }
    }

    pub fn pending_jobs(&self) -> u32 {
        self.pending.len() as u32
    }
    pub fn running_jobs(&self) -> u32 {
        self.running.len() as u32
    }
    pub fn unfinished(&self) -> u32 {
        self.pending_jobs() + self.running_jobs()
    }
    /// Wait of the oldest waiting item (ms), 0 when none.
    pub fn oldest_wait(&self, now: i64) -> i64 {
        self.waiting.front().map_or(0, |&a| now - a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::scenario::Millis;

    #[test]
    fn pods_become_ready_after_startup_and_scale_down_is_immediate() {
        let mut c = Cluster::new(Draws::new(1, Startup::Fixed(Millis(60_000)), 0.0), vec![]);
        c.seed_ready(2, 0);
        c.scale_total(5, 1000);
        assert_eq!((c.total(), c.ready()), (5, 2));
        c.advance(60_999);
        assert_eq!(c.ready(), 2);
        c.advance(61_000);
        assert_eq!(c.ready(), 5);
        c.scale_total(1, 62_000);
        assert_eq!((c.total(), c.ready()), (1, 1));
    }

    #[test]
    fn spot_shortage_keeps_pods_pending_and_interruptions_restart_pods() {
        let mut c = Cluster::new(
            Draws::new(7, Startup::Fixed(Millis(10_000)), 3600.0),
            vec![(0, 30_000)],
        );
        let spot = c.pool("spot", Capacity::Spot);
        c.scale_pool(spot, 3, 0);
        assert_eq!(c.spot_pending(5_000), (3, 5.0));
        assert_eq!(c.billed(5_000), (0, 0));
        let mut t = 30_000;
        while t < 3_600_000 {
            c.advance(t);
            t += 1000;
        }
        assert!(c.interruptions_total > 0);
        assert_eq!(c.total(), 3);
    }

    #[test]
    fn jobs_consume_items() {
        let mut d = Draws::new(1, Startup::Fixed(Millis(5_000)), 0.0);
        let mut q = JobQueue::new(60_000);
        for i in 0..3 {
            q.arrive(i);
        }
        q.create(2, 0, &mut d);
        q.advance(5_000, Some(1_000));
        assert_eq!((q.waiting.len(), q.running_jobs(), q.items_late), (1, 2, 2));
        q.advance(65_000, None);
        assert_eq!(q.unfinished(), 0);
    }
}
