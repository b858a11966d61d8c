//! Shared by the `accuracy` and `replay` examples: load a `timestamp_s,value` trace,
//! interpolate it, and answer `history` the way the host would.

#![allow(dead_code)]

use wasmscaler_sdk::Sample;

/// Trace time 0 is placed here (2026-01-05T00:00:00Z, a Monday); any instant would do,
/// the policy only uses spacings.
pub const BASE_MS: i64 = 1_767_571_200_000;

pub struct Trace {
    pub name: String,
    pub step_ms: i64,
    /// Value at `BASE_MS + i x step_ms`: the load at that instant, linear in between.
    pub values: Vec<f64>,
}

impl Trace {
    pub fn load(path: &str) -> Result<Trace, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        let mut ts = Vec::new();
        let mut values = Vec::new();
        for (i, line) in text.lines().enumerate().skip(1) {
            let mut it = line.split(',');
            let (Some(t), Some(v)) = (it.next(), it.next()) else {
                return Err(format!("{path}:{}: expected timestamp_s,value", i + 1));
            };
            let t: f64 = t.trim().parse().map_err(|e| format!("{path}:{}: {e}", i + 1))?;
            let v: f64 = v.trim().parse().map_err(|e| format!("{path}:{}: {e}", i + 1))?;
            ts.push(t);
            values.push(v);
        }
        if ts.len() < 3 {
            return Err(format!("{path}: too few rows"));
        }
        let step_ms = ((ts[1] - ts[0]) * 1000.0).round() as i64;
        let name = std::path::Path::new(path)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Trace {
            name,
            step_ms,
            values,
        })
    }

    pub fn end_ms(&self) -> i64 {
        BASE_MS + (self.values.len() as i64 - 1) * self.step_ms
    }

    /// Load at `t` (linear interpolation; flat outside the trace).
    pub fn at(&self, t: i64) -> f64 {
        let x = (t - BASE_MS) as f64 / self.step_ms as f64;
        if x <= 0.0 {
            return self.values[0];
        }
        let i = x.floor() as usize;
        if i + 1 >= self.values.len() {
            return self.values[self.values.len() - 1];
        }
        let f = x - i as f64;
        self.values[i] * (1.0 - f) + self.values[i + 1] * f
    }

    /// The 99th percentile of the trace's values.
    pub fn p99(&self) -> f64 {
        let mut v = self.values.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        v[((v.len() as f64 * 0.99) as usize).min(v.len() - 1)]
    }

    /// The series the host would serve for `step_ms`: the step it can actually give is
    /// `max(step, trace step)` rounded up to a multiple of the trace step, each point the
    /// mean of the trace rows in `(t - step, t]` (like a Prometheus `avg_over_time`).
    pub fn resampled(&self, step_ms: i64) -> Resampled {
        let k = ((step_ms.max(self.step_ms) + self.step_ms - 1) / self.step_ms).max(1) as usize;
        let eff = k as i64 * self.step_ms;
        let mut points = Vec::new();
        // Point j sits at row index (j + 1) x k - 1 and averages the k rows ending there.
        let mut j = 0;
        while (j + 1) * k <= self.values.len() {
            let rows = &self.values[j * k..(j + 1) * k];
            let at = BASE_MS + ((j + 1) * k - 1) as i64 * self.step_ms;
            points.push(Sample::new(at, rows.iter().sum::<f64>() / k as f64));
            j += 1;
        }
        Resampled { step_ms: eff, points }
    }
}

pub struct Resampled {
    pub step_ms: i64,
    pub points: Vec<Sample>,
}

impl Resampled {
    /// The samples in `(now - window, now]`: exactly what `history` may answer at `now`.
    pub fn history(&self, now: i64, window_ms: i64) -> &[Sample] {
        let from = now - window_ms;
        let a = self.points.partition_point(|s| s.at_ms <= from);
        let b = self.points.partition_point(|s| s.at_ms <= now);
        &self.points[a..b.max(a)]
    }

    /// Linear interpolation between points (flat outside).
    pub fn at(&self, t: i64) -> f64 {
        let p = &self.points;
        let b = p.partition_point(|s| s.at_ms <= t);
        if b == 0 {
            return p[0].value;
        }
        if b >= p.len() {
            return p[p.len() - 1].value;
        }
        let (x0, x1) = (p[b - 1], p[b]);
        x0.value + (x1.value - x0.value) * (t - x0.at_ms) as f64 / (x1.at_ms - x0.at_ms) as f64
    }
}

pub fn percentile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 * q) as usize).min(v.len() - 1)]
}
