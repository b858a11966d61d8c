//! The oracle: a lower bound on what any policy could pay without violating the SLO.
//!
//! Service scenarios: at every accounting step exactly `clamp(ceil(load /
//! capacityPerReplica), minReplicas, maxReplicas)` Ready replicas. It is held to
//! `maxReplicas` like every policy, so it violates exactly when even `maxReplicas`
//! replicas could not serve the load (the scorecard's `> max` minutes) and never
//! otherwise; its cost is then comparable with the policies'. Each new replica is started the start-up delay early (the
//! distribution's minimum) and billed for it, and a replica whose level is needed again
//! within a start-up delay is kept rather than restarted. Everything runs on the cheapest
//! capacity the scenario offers (spot when it has a `spot` section).
//! Queue scenarios: every item is taken by a Job started exactly a start-up delay before
//! the item arrives: items × (start-up + job duration) of Job time, nothing waits.

/// Tracks the oracle's replica-time as the simulation walks the trace.
pub struct Oracle {
    startup_ms: i64,
    min: u32,
    max: u32,
    /// Last time each level (replica k+1) stopped being needed; None: never started.
    ended: Vec<Option<i64>>,
    active: u32,
    pub replica_ms: f64,
    pub max_replicas: u32,
    /// Changes of the replica count (the oracle's scale events).
    pub changes: u32,
    /// Replicas started (a level kept through a short dip is not restarted).
    pub starts: u64,
}

impl Oracle {
    /// `min <= max` (the scenario checks it).
    pub fn new(startup_ms: i64, min: u32, max: u32, initial: u32) -> Self {
        let initial = initial.clamp(min, max);
        Self {
            startup_ms,
            min,
            max,
            ended: vec![None; initial as usize],
            active: initial,
            replica_ms: 0.0,
            max_replicas: initial,
            changes: 0,
            starts: 0,
        }
    }

    /// Replicas needed for `load` at `capacity` per replica, within the bounds.
    pub fn need(&self, load: f64, capacity: f64) -> u32 {
        let n = (load / capacity - 1e-9).ceil().clamp(0.0, f64::from(self.max));
        (n as u32).clamp(self.min, self.max)
    }

    /// Account `[t, t + dt)` at `need` replicas.
    pub fn step(&mut self, t: i64, dt: i64, need: u32) {
        if need > self.active {
            if self.ended.len() < need as usize {
                self.ended.resize(need as usize, None);
            }
            for k in self.active..need {
                let idle = self.ended[k as usize].map_or(i64::MAX, |end| t - end);
                self.replica_ms += idle.min(self.startup_ms) as f64;
                if idle >= self.startup_ms {
                    self.starts += 1;
                }
            }
        } else {
            for k in need..self.active {
                self.ended[k as usize] = Some(t);
            }
        }
        if need != self.active {
            self.changes += 1;
        }
        self.active = need;
        self.max_replicas = self.max_replicas.max(need);
        self.replica_ms += f64::from(need) * dt as f64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_early_and_keeps_replicas_through_short_dips() {
        let mut o = Oracle::new(60_000, 1, 10, 1);
        o.step(0, 1000, 1);
        o.step(1000, 1000, 2); // +60 s start-up
        o.step(2000, 1000, 1);
        o.step(3000, 1000, 2); // dip of 1 s: kept, +1 s
        assert_eq!(
            o.replica_ms,
            1000.0 + 2000.0 + 60_000.0 + 1000.0 + 2000.0 + 1000.0
        );
        assert_eq!(o.need(10.0, 5.0), 2);
        assert_eq!(o.need(10.1, 5.0), 3);
        assert_eq!(o.need(0.0, 5.0), 1);
        assert_eq!((o.changes, o.starts), (3, 1));
    }

    #[test]
    fn held_to_max_replicas_like_every_policy() {
        let o = Oracle::new(60_000, 2, 5, 0);
        assert_eq!(o.need(1e12, 1e-6), 5);
        assert_eq!(o.need(0.0, 1.0), 2);
        assert_eq!(Oracle::new(0, 1, 3, 9).active, 3);
    }
}
