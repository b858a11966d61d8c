//! Load traces: CSV `timestamp_s,value`, one row per interval, validated with line numbers.
//!
//! A row covers `[timestamp_s, next timestamp_s)` (the last row: one median step). The load
//! at an instant is the piecewise-linear interpolation between row centres (flat before
//! the first centre and after the last), so per-second samples are smooth and each row's
//! mean is kept to within the interpolation error. With `interpolate: step` a row's value
//! holds over its whole interval instead. `count` traces (arrivals per row) are
//! turned into a rate by dividing by the row's length.

use std::path::{Path, PathBuf};

use super::SimError;

/// What a trace's values mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// Mean events per second over the row.
    Rps,
    /// Arrivals in the row (e.g. queue items); the rate is count / row length.
    Count,
}

/// A validated trace. Times are milliseconds from the trace's start.
#[derive(Debug, Clone)]
pub struct Trace {
    pub path: PathBuf,
    pub unit: Unit,
    /// Row start times (ms), strictly increasing, first 0 after [`Trace::rebase`].
    pub at_ms: Vec<i64>,
    /// Row values as written (× the scenario's scale).
    pub values: Vec<f64>,
    /// Rate (per second) of each row.
    pub rate: Vec<f64>,
    /// Row centres (ms), for interpolation.
    centre_ms: Vec<i64>,
    /// Length of the last row (ms): the median step.
    pub step_ms: i64,
    /// Hold each row's value over its interval instead of interpolating.
    pub stepwise: bool,
}

impl Trace {
    /// Read and validate `path`. `scale` multiplies every value.
    pub fn load(path: &Path, unit: Unit, scale: f64) -> Result<Self, SimError> {
        let text = std::fs::read_to_string(path).map_err(|e| SimError::Trace {
            file: path.display().to_string(),
            line: 0,
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(path, &text, unit, scale)
    }

    pub fn parse(path: &Path, text: &str, unit: Unit, scale: f64) -> Result<Self, SimError> {
        let file = path.display().to_string();
        let fail = |line: usize, message: String| SimError::Trace {
            file: file.clone(),
            line,
            message,
        };
        let mut at_ms = Vec::new();
        let mut values = Vec::new();
        let mut header_seen = false;
        for (i, raw) in text.lines().enumerate() {
            let line_no = i + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if !header_seen {
                header_seen = true;
                let cols: Vec<&str> = line.split(',').map(str::trim).collect();
                if cols == ["timestamp_s", "value"] {
                    continue;
                }
                if line.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) {
                    return Err(fail(
                        line_no,
                        format!("header must be 'timestamp_s,value', found '{line}'"),
                    ));
                }
            }
            let mut cols = line.split(',').map(str::trim);
            let (Some(ts), Some(v), None) = (cols.next(), cols.next(), cols.next()) else {
                return Err(fail(
                    line_no,
                    format!("expected two columns 'timestamp_s,value', found '{line}'"),
                ));
            };
            let ts: f64 = ts
                .parse()
                .map_err(|_| fail(line_no, format!("timestamp_s '{ts}' is not a number")))?;
            let v: f64 = v
                .parse()
                .map_err(|_| fail(line_no, format!("value '{v}' is not a number")))?;
            if !ts.is_finite() || !v.is_finite() {
                return Err(fail(line_no, "values must be finite".into()));
            }
            if v < 0.0 {
                return Err(fail(line_no, format!("value {v} is negative")));
            }
            let t = (ts * 1000.0).round() as i64;
            if let Some(&prev) = at_ms.last()
                && t <= prev
            {
                return Err(fail(
                    line_no,
                    format!(
                        "timestamp_s {ts} is not after the previous row's {} (timestamps must increase)",
                        prev as f64 / 1000.0
                    ),
                ));
            }
            at_ms.push(t);
            values.push(v * scale);
        }
        if at_ms.len() < 2 {
            return Err(fail(0, "a trace needs at least two rows".into()));
        }
        let base = at_ms[0];
        for t in &mut at_ms {
            *t -= base;
        }
        let mut steps: Vec<i64> = at_ms.windows(2).map(|w| w[1] - w[0]).collect();
        steps.sort_unstable();
        let step_ms = steps[steps.len() / 2];
        let n = at_ms.len();
        let len_of = |i: usize| {
            if i + 1 < n {
                at_ms[i + 1] - at_ms[i]
            } else {
                step_ms
            }
        };
        let rate = (0..n)
            .map(|i| match unit {
                Unit::Rps => values[i],
                Unit::Count => values[i] / (len_of(i) as f64 / 1000.0),
            })
            .collect();
        let centre_ms = (0..n).map(|i| at_ms[i] + len_of(i) / 2).collect();
        Ok(Self {
            path: path.to_path_buf(),
            unit,
            at_ms,
            values,
            rate,
            centre_ms,
            step_ms,
            stepwise: false,
        })
    }

    /// End of the last row (ms).
    pub fn end_ms(&self) -> i64 {
        self.at_ms.last().copied().unwrap_or(0) + self.step_ms
    }

    /// Length of row `i` (ms).
    pub fn row_len(&self, i: usize) -> i64 {
        if i + 1 < self.at_ms.len() {
            self.at_ms[i + 1] - self.at_ms[i]
        } else {
            self.step_ms
        }
    }

    /// The row covering `t` (clamped to the trace).
    pub fn row_at(&self, t: i64) -> usize {
        self.at_ms.partition_point(|&a| a <= t).saturating_sub(1)
    }

    /// Load rate (per second) at `t` ms from the trace start: linear between row centres.
    pub fn rate_at(&self, t: i64) -> f64 {
        if self.stepwise {
            return self.rate[self.row_at(t)];
        }
        self.between_centres(self.centre_ms.partition_point(|&x| x <= t), t)
    }

    /// The rate at `t` interpolated between the row centres around it, `j` being the
    /// number of centres at or before `t`.
    fn between_centres(&self, j: usize, t: i64) -> f64 {
        let c = &self.centre_ms;
        if j == 0 {
            return self.rate[0];
        }
        if j >= c.len() {
            return self.rate[c.len() - 1];
        }
        let (t0, t1) = (c[j - 1], c[j]);
        let f = (t - t0) as f64 / (t1 - t0) as f64;
        self.rate[j - 1] + (self.rate[j] - self.rate[j - 1]) * f
    }

    /// [`Trace::rate_at`] for instants asked in ascending order: `cursor` (start it at 0)
    /// carries the search position from one call to the next, so a window of samples
    /// costs one binary search and a short walk instead of a search per sample. Same value as `rate_at`.
    pub fn rate_at_ascending(&self, t: i64, cursor: &mut usize) -> f64 {
        let points = if self.stepwise {
            &self.at_ms
        } else {
            &self.centre_ms
        };
        // `partition_point(|x| x <= t)`: searched on the first call (cursor 0) and after
        // a step back, else resumed.
        if *cursor == 0 || *cursor > points.len() || points[*cursor - 1] > t {
            *cursor = points.partition_point(|&x| x <= t);
        }
        while *cursor < points.len() && points[*cursor] <= t {
            *cursor += 1;
        }
        let j = *cursor;
        if self.stepwise {
            return self.rate[j.saturating_sub(1)];
        }
        self.between_centres(j, t)
    }

    /// The `q` quantile (0..=1) of the row rates.
    pub fn rate_quantile(&self, q: f64) -> f64 {
        let mut v = self.rate.clone();
        v.sort_by(f64::total_cmp);
        let i = ((v.len() as f64 - 1.0) * q.clamp(0.0, 1.0)).round() as usize;
        v[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Trace, SimError> {
        Trace::parse(Path::new("t.csv"), text, Unit::Rps, 1.0)
    }

    #[test]
    fn rate_at_ascending_is_rate_at() {
        let mut text = String::from("timestamp_s,value\n");
        for i in 0..50 {
            text.push_str(&format!("{},{}\n", i * 60, (i * 37 % 11) as f64 + 0.5));
        }
        let mut t = parse(&text).unwrap();
        for stepwise in [false, true] {
            t.stepwise = stepwise;
            let mut cursor = 0;
            for at in (-90_000..3_200_000).step_by(997) {
                assert_eq!(
                    t.rate_at_ascending(at, &mut cursor),
                    t.rate_at(at),
                    "{stepwise} {at}"
                );
            }
            // A step back resumes from a fresh search.
            assert_eq!(t.rate_at_ascending(5_000, &mut cursor), t.rate_at(5_000));
            assert_eq!(t.rate_at_ascending(2_000_000, &mut cursor), t.rate_at(2_000_000));
        }
    }

    #[test]
    fn interpolates_between_row_centres() {
        let t = parse("timestamp_s,value\n0,10\n60,20\n120,20\n").unwrap();
        assert_eq!(t.rate_at(0), 10.0);
        assert_eq!(t.rate_at(30_000), 10.0);
        assert_eq!(t.rate_at(60_000), 15.0);
        assert_eq!(t.rate_at(500_000), 20.0);
        assert_eq!(t.end_ms(), 180_000);
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("timestamp_s,value\n0,1\n60,x\n").unwrap_err().to_string();
        assert!(e.contains("t.csv:3"), "{e}");
        let e = parse("timestamp_s,value\n0,1\n60,2\n30,1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.csv:4") && e.contains("increase"), "{e}");
        let e = parse("timestamp_s,value\n0,1\n60,-2\n").unwrap_err().to_string();
        assert!(e.contains("t.csv:3") && e.contains("negative"), "{e}");
    }

    #[test]
    fn count_traces_become_rates() {
        let t = Trace::parse(Path::new("q.csv"), "0,30\n300,60\n", Unit::Count, 1.0).unwrap();
        assert_eq!(t.rate[0], 0.1);
        assert_eq!(t.rate[1], 0.2);
    }
}
