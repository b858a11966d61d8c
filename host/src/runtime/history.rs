//! Where the `history` import gets its answers. The controller fills one from Prometheus
//! range queries before the call, the simulator from the trace up to the simulated now;
//! a policy never blocks on the network.

use std::collections::HashMap;

use wasmscaler_sdk::Sample;

/// Answers `history(signal, window, step)` for one evaluation.
pub trait HistorySource: Send + Sync {
    fn history(&self, signal: &str, window_ms: u64, step_ms: u64) -> Result<Vec<Sample>, String>;
}

/// History gathered in advance: per signal, samples oldest first, ending at `now_ms`.
#[derive(Debug, Clone, Default)]
pub struct PrefetchedHistory {
    pub now_ms: i64,
    pub series: HashMap<String, Vec<Sample>>,
}

impl HistorySource for PrefetchedHistory {
    fn history(&self, signal: &str, window_ms: u64, step_ms: u64) -> Result<Vec<Sample>, String> {
        let all = self
            .series
            .get(signal)
            .ok_or_else(|| format!("no history for signal '{signal}'"))?;
        let from = self
            .now_ms
            .saturating_sub(i64::try_from(window_ms).unwrap_or(i64::MAX));
        let start = all.partition_point(|s| s.at_ms <= from);
        let end = all.partition_point(|s| s.at_ms <= self.now_ms);
        Ok(downsample(&all[start..end.max(start)], step_ms))
    }
}

/// Keep at most one sample per `step_ms` bucket (the mean of the bucket), so a policy that
/// asks for 5-minute steps gets 5-minute steps even when the source is finer.
pub fn downsample(samples: &[Sample], step_ms: u64) -> Vec<Sample> {
    let step = i64::try_from(step_ms).unwrap_or(i64::MAX);
    if step <= 1 || samples.len() < 2 {
        return samples.to_vec();
    }
    let mut out: Vec<Sample> = Vec::with_capacity(samples.len());
    let (mut bucket, mut sum, mut n, mut last_at) = (samples[0].at_ms.div_euclid(step), 0.0, 0u32, 0);
    for s in samples {
        let b = s.at_ms.div_euclid(step);
        if b != bucket && n > 0 {
            out.push(Sample {
                at_ms: last_at,
                value: sum / f64::from(n),
            });
            sum = 0.0;
            n = 0;
        }
        bucket = b;
        sum += s.value;
        n += 1;
        last_at = s.at_ms;
    }
    if n > 0 {
        out.push(Sample {
            at_ms: last_at,
            value: sum / f64::from(n),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downsample_averages_each_bucket() {
        let s: Vec<Sample> = (0..10).map(|i| Sample::new(i * 60_000, i as f64)).collect();
        let d = downsample(&s, 300_000);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].value, 2.0);
        assert_eq!(d[1].value, 7.0);
        assert_eq!(d[1].at_ms, 9 * 60_000);
    }

    #[test]
    fn prefetched_history_cuts_the_window_and_never_looks_ahead() {
        let h = PrefetchedHistory {
            now_ms: 5_000,
            series: [(
                "load".to_string(),
                (0..10).map(|i| Sample::new(i * 1000, 1.0)).collect(),
            )]
            .into(),
        };
        let got = h.history("load", 2_000, 1).unwrap();
        assert_eq!(got.iter().map(|s| s.at_ms).collect::<Vec<_>>(), vec![4000, 5000]);
        assert!(h.history("nope", 1, 1).unwrap_err().contains("'nope'"));
    }
}
