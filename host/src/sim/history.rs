//! The `history` import in the simulator: the trace itself, cut at the simulated now.
//! One row = one sample stamped at the row's end (the row's mean is known only then), so
//! a policy never sees load from its future. Borrowed, not copied, per evaluation.

use std::sync::Arc;

use wasmscaler_sdk::Sample;

use super::trace::Trace;
use crate::runtime::HistorySource;
use crate::runtime::history::downsample;

/// The host's budget for one `history` answer.
pub const MAX_SAMPLES: usize = 20_000;

pub struct TraceHistory {
    pub trace: Arc<Trace>,
    /// Unix ms of the trace's first row.
    pub epoch_ms: i64,
    /// The simulated now (Unix ms).
    pub now_ms: i64,
    /// Seconds per request, for `concurrency`.
    pub request_s: f64,
}

impl HistorySource for TraceHistory {
    fn history(&self, signal: &str, window_ms: u64, step_ms: u64) -> Result<Vec<Sample>, String> {
        let factor = match signal {
            "load" | "rps" => 1.0,
            "concurrency" => self.request_s,
            other => {
                return Err(format!(
                    "no history for signal '{other}' in the simulator (it has: load, rps, concurrency)"
                ));
            }
        };
        let t = &self.trace;
        let rel_now = self.now_ms - self.epoch_ms;
        let from = rel_now.saturating_sub(i64::try_from(window_ms).unwrap_or(i64::MAX));
        // Rows [start, end) whose end lies in (from, rel_now].
        let end_of = |i: usize| t.at_ms[i] + t.row_len(i);
        let n = t.at_ms.len();
        let end = t.at_ms.partition_point(|&a| a < rel_now).min(n);
        let mut end = end;
        while end > 0 && end_of(end - 1) > rel_now {
            end -= 1;
        }
        let mut start = t.at_ms.partition_point(|&a| a < from).saturating_sub(1);
        while start < end && end_of(start) <= from {
            start += 1;
        }
        let rows: Vec<Sample> = (start..end)
            .map(|i| Sample::new(self.epoch_ms + end_of(i), t.rate[i] * factor))
            .collect();
        let mut out = downsample(&rows, step_ms);
        if out.len() > MAX_SAMPLES {
            out.drain(..out.len() - MAX_SAMPLES);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::sim::trace::Unit;

    #[test]
    fn never_looks_past_now() {
        let text: String = (0..100).map(|i| format!("{},{}\n", i * 60, i)).collect();
        let trace = Arc::new(Trace::parse(Path::new("t.csv"), &text, Unit::Rps, 1.0).unwrap());
        let h = TraceHistory {
            trace,
            epoch_ms: 1_000_000,
            now_ms: 1_000_000 + 10 * 60_000 + 30_000,
            request_s: 0.5,
        };
        let got = h.history("load", 5 * 60_000, 60_000).unwrap();
        // Rows 5..=9 end at 6..=10 minutes.
        assert_eq!(
            got.iter().map(|s| s.value).collect::<Vec<_>>(),
            vec![5.0, 6.0, 7.0, 8.0, 9.0]
        );
        assert_eq!(got.last().unwrap().at_ms, 1_000_000 + 600_000);
        assert_eq!(h.history("concurrency", 60_000, 60_000).unwrap()[0].value, 4.5);
        assert!(h.history("queue-length", 1, 1).is_err());
    }
}
