//! Knative's `aggregation.TimedFloat64Buckets` (`pkg/autoscaler/aggregation/bucketing.go`)
//! with 1-s buckets, as the collector keeps one per window (stable, panic).
//!
//! Knative keeps a running `windowTotal`: each recorded second is added, each second that
//! leaves the ring is subtracted. Floating-point sums depend on that order, and the
//! average is floored to 6 decimals, so the exact sequence of additions decides whether
//! 60 s of 2.1 averages 2.1 or 2.099999. The policy keeps the total, the first and the
//! last write in its state (a few numbers) and reads the ring's contents back from the
//! per-second samples it is handed (the value of second `i - n` is what slot `i % n`
//! holds), so the state stays small for hour-long windows.

use serde::{Deserialize, Serialize};

/// One window's bookkeeping.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Window {
    /// Knative `windowTotal`.
    #[serde(default)]
    pub total: f64,
    /// Knative `firstWrite` (a second): the write after the last gap of a full window.
    #[serde(default)]
    pub first_s: i64,
    /// Knative `lastWrite` (a second); none before the first write.
    #[serde(default)]
    pub last_s: Option<i64>,
}

/// The recorded per-second values, ascending by second.
pub struct Seconds<'a>(pub &'a [(i64, f64)]);

impl Seconds<'_> {
    fn value(&self, second: i64) -> Option<f64> {
        self.0
            .binary_search_by_key(&second, |&(s, _)| s)
            .ok()
            .map(|i| self.0[i].1)
    }
}

/// Knative `floor(f * 10^6) / 10^6` (`roundToNDigits(6, f)`).
fn round6(f: f64) -> f64 {
    let p = 1e6;
    (f * p).floor() / p
}

impl Window {
    /// What ring slot `second % size` holds while `second` is past the last write: the
    /// value recorded `size` seconds earlier, if that was after the last reset.
    fn slot(&self, seconds: &Seconds, second: i64, size: i64) -> f64 {
        let old = second - size;
        if old >= self.first_s {
            seconds.value(old).unwrap_or(0.0)
        } else {
            0.0
        }
    }

    /// Knative `Record(now, value)` for a second after every earlier record (the policy
    /// records each second once, in order). `seconds` must hold the values recorded
    /// before it, back to `second - 2 x size`.
    pub fn record(&mut self, seconds: &Seconds, second: i64, value: f64, size: i64) {
        match self.last_s {
            Some(last) if second <= last => {
                // Knative adds a late value to its bucket; the policy never records one.
                return;
            }
            Some(last) if second - last < size => {
                for i in last + 1..=second {
                    self.total -= self.slot(seconds, i, size);
                }
            }
            // The first write, or none for a whole window: start afresh.
            _ => {
                self.first_s = second;
                self.total = 0.0;
            }
        }
        self.last_s = Some(second);
        self.total += value;
    }

    /// Whether the running total still matches what the samples at hand say the recorded
    /// seconds hold. A real source revises its newest points (a scrape ingested after the
    /// query, a range grid shifted by a few ms); the total then carries a load the samples
    /// no longer have, subtracted as 0 when it leaves (a phantom that outlives the window)
    /// or the reverse (a negative average). The tolerance is far above the rounding of a
    /// different summation order and far below any real revision.
    pub fn agrees_with(&self, seconds: &Seconds, size: i64) -> bool {
        let Some(last) = self.last_s else {
            return true;
        };
        let from = self.first_s.max(last - size + 1);
        let (sum, magnitude) = (from..=last)
            .map(|s| seconds.value(s).unwrap_or(0.0))
            .fold((0.0, 0.0), |(sum, mag), v: f64| (sum + v, mag + v.abs()));
        (self.total - sum).abs() <= 1e-9 * (1.0 + magnitude)
    }

    /// Knative `IsEmpty(now)`: nothing recorded in the last window.
    pub fn is_empty(&self, now_s: i64, size: i64) -> bool {
        self.last_s.is_none_or(|last| now_s - last > size)
    }

    /// Knative `WindowAverage(now)`.
    pub fn average(&self, seconds: &Seconds, now_s: i64, size: i64) -> f64 {
        let Some(last) = self.last_s else {
            return 0.0;
        };
        let d = now_s - last;
        let written = (last - self.first_s + 1) as f64;
        if d <= 0 {
            round6(self.total / written.min(size as f64))
        } else if d < size {
            let mut ret = self.total;
            for i in last + 1..=now_s {
                ret -= self.slot(seconds, i, size);
            }
            round6(ret / written.min((size - d) as f64))
        } else {
            0.0
        }
    }
}
