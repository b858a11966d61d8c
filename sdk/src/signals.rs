//! Looking signals up and summarising them over time windows.

use crate::math::finite;
use crate::types::{Context, PolicyError, Sample, Signal};

impl Context {
    /// The named signal, with at least one sample; otherwise `MissingSignal` naming it.
    pub fn signal(&self, name: &str) -> Result<&Signal, PolicyError> {
        match self.signals.iter().find(|s| s.name == name) {
            Some(s) if !s.samples.is_empty() => Ok(s),
            Some(_) => Err(PolicyError::MissingSignal(format!(
                "signal '{name}' has no samples"
            ))),
            None => Err(PolicyError::MissingSignal(format!(
                "signal '{name}' was not provided"
            ))),
        }
    }

    /// The named signal if the host provided it and it has samples.
    pub fn try_signal(&self, name: &str) -> Option<&Signal> {
        self.signals
            .iter()
            .find(|s| s.name == name)
            .filter(|s| !s.samples.is_empty())
    }

    /// `replicas` clamped into the workload's `[min, max]`.
    pub fn clamp(&self, replicas: u32) -> u32 {
        let w = &self.workload;
        replicas.clamp(w.min_replicas.min(w.max_replicas), w.max_replicas)
    }
}

impl Signal {
    /// The newest sample; an error if it is not finite.
    pub fn latest_sample(&self) -> Result<Sample, PolicyError> {
        let s =
            self.samples.last().copied().ok_or_else(|| {
                PolicyError::MissingSignal(format!("signal '{}' has no samples", self.name))
            })?;
        finite(&format!("signal '{}'", self.name), s.value)?;
        Ok(s)
    }

    /// The newest value.
    pub fn latest(&self) -> Result<f64, PolicyError> {
        Ok(self.latest_sample()?.value)
    }

    /// Samples with `now - window_ms < at_ms <= now`.
    pub fn window(&self, now_ms: i64, window_ms: u64) -> &[Sample] {
        let from = now_ms.saturating_sub(i64::try_from(window_ms).unwrap_or(i64::MAX));
        let start = self.samples.partition_point(|s| s.at_ms <= from);
        let end = self.samples.partition_point(|s| s.at_ms <= now_ms);
        &self.samples[start..end.max(start)]
    }

    /// Mean over the window, or `None` when the window holds no sample.
    pub fn mean_over(&self, now_ms: i64, window_ms: u64) -> Result<Option<f64>, PolicyError> {
        let w = self.window(now_ms, window_ms);
        if w.is_empty() {
            return Ok(None);
        }
        let mut sum = 0.0;
        for s in w {
            sum += finite(&format!("signal '{}'", self.name), s.value)?;
        }
        Ok(Some(sum / w.len() as f64))
    }

    /// Maximum over the window, or `None` when the window holds no sample.
    pub fn max_over(&self, now_ms: i64, window_ms: u64) -> Result<Option<f64>, PolicyError> {
        let mut best: Option<f64> = None;
        for s in self.window(now_ms, window_ms) {
            let v = finite(&format!("signal '{}'", self.name), s.value)?;
            best = Some(best.map_or(v, |b| b.max(v)));
        }
        Ok(best)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::ContextBuilder;

    fn series() -> Signal {
        Signal {
            name: "load".into(),
            samples: (0..10).map(|i| Sample::new(i * 1000, i as f64)).collect(),
        }
    }

    #[test]
    fn window_is_half_open_on_the_left() {
        let s = series();
        let w = s.window(9000, 3000);
        assert_eq!(w.iter().map(|s| s.value).collect::<Vec<_>>(), vec![7.0, 8.0, 9.0]);
        assert_eq!(s.mean_over(9000, 3000).unwrap(), Some(8.0));
        assert_eq!(s.max_over(5000, 60_000).unwrap(), Some(5.0));
        assert_eq!(s.mean_over(-5000, 1000).unwrap(), None);
    }

    #[test]
    fn nan_is_a_clear_error() {
        let mut s = series();
        s.samples[9].value = f64::NAN;
        let err = s.latest().unwrap_err();
        assert!(err.to_string().contains("signal 'load' is NaN"), "{err}");
        assert!(s.mean_over(9000, 2000).is_err());
    }

    #[test]
    fn missing_and_empty_signals_are_named() {
        let ctx = ContextBuilder::new().series("empty", &[]).build();
        assert_eq!(
            ctx.signal("load").unwrap_err(),
            PolicyError::MissingSignal("signal 'load' was not provided".into())
        );
        assert!(
            ctx.signal("empty")
                .unwrap_err()
                .to_string()
                .contains("'empty' has no samples")
        );
    }

    #[test]
    fn clamp_uses_workload_bounds() {
        let ctx = ContextBuilder::new().bounds(2, 5).build();
        assert_eq!(ctx.clamp(0), 2);
        assert_eq!(ctx.clamp(9), 5);
    }
}
