//! The oracle: a lower bound on what any policy could pay without violating the SLO.
//!
//! Service scenarios: at every accounting step exactly `max(minReplicas,
//! ceil(load / capacityPerReplica))` Ready replicas (not capped at `maxReplicas`, so the
//! oracle never violates); each new replica is started the start-up delay early (the
//! distribution's minimum) and billed for it, and a replica whose level is needed again
//! within a start-up delay is kept rather than restarted. Everything runs on the cheapest
//! capacity the scenario offers (spot when it has a `spot` section).
//! Queue scenarios: every item is taken by a Job started exactly a start-up delay before
//! the item arrives: items × (start-up + job duration) of Job time, nothing waits.

/// Tracks the oracle's replica-time as the simulation walks the trace.
pub struct Oracle {
    startup_ms: i64,
    min: u32,
    /// Last time each level (replica k+1) stopped being needed; None: never started.
    ended: Vec<Option<i64>>,
    active: u32,
    pub replica_ms: f64,
    pub max_replicas: u32,
}

impl Oracle {
    pub fn new(startup_ms: i64, min: u32, initial: u32) -> Self {
        let initial = initial.max(min);
        Self {
            startup_ms,
            min,
            ended: vec![None; initial as usize],
            active: initial,
            replica_ms: 0.0,
            max_replicas: initial,
        }
    }

    /// Replicas needed for `load` at `capacity` per replica.
    pub fn need(&self, load: f64, capacity: f64) -> u32 {
        let n = (load / capacity - 1e-9).ceil().max(0.0);
        (n as u32).max(self.min)
    }

    /// Account `[t, t + dt)` at `need` replicas.
    pub fn step(&mut self, t: i64, dt: i64, need: u32) {
        if need > self.active {
            if self.ended.len() < need as usize {
                self.ended.resize(need as usize, None);
            }
            for k in self.active..need {
                self.replica_ms += match self.ended[k as usize] {
                    Some(end) => (t - end).min(self.startup_ms) as f64,
                    None => self.startup_ms as f64,
                };
            }
        } else {
            for k in need..self.active {
                self.ended[k as usize] = Some(t);
            }
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
        let mut o = Oracle::new(60_000, 1, 1);
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
    }
}
