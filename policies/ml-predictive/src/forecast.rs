//! The forecasting half of the policy, free of any host call so that the accuracy tool
//! (`examples/accuracy.rs`) runs exactly this code natively.
//!
//! 1. [`prepare`]: sort the history, derive its real step from the samples' spacing (the
//!    host cannot return finer data than it has), lay it on a regular grid, fill short
//!    gaps linearly, and refuse history that is non-finite, gappy or shorter than two
//!    daily cycles.
//! 2. [`fit_forecast`]: MSTL (daily and, with two weeks of data, weekly seasonality) with
//!    an AutoETS trend model (augurs); if that fails, a plain AutoETS on the raw series.

use augurs_core::{Fit, Predict};
use augurs_ets::AutoETS;
use augurs_mstl::MSTLModel;
use wasmscaler_sdk::{Duration, Sample};

pub const DAY_MS: i64 = 86_400_000;
pub const WEEK_MS: i64 = 7 * DAY_MS;
/// Seasonal cycles of the shortest period the history must hold.
pub const MIN_CYCLES: usize = 2;
/// More than this fraction of grid points missing and the history is "gappy".
pub const MAX_MISSING_FRACTION: f64 = 0.1;

/// History laid on a regular grid, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// The history's actual spacing (median of the samples' spacing), ms.
    pub step_ms: i64,
    /// Timestamp of the newest value.
    pub last_at_ms: i64,
    pub values: Vec<f64>,
    /// Grid points that had no sample and were filled by linear interpolation.
    pub filled: usize,
    /// Seasonal periods in samples (day, and week when two weeks are present).
    pub periods: Vec<usize>,
}

/// Why a history cannot be forecast from (the policy then answers reactively).
#[derive(Debug, Clone, PartialEq)]
pub enum Unusable {
    Empty,
    NonFinite {
        count: usize,
        total: usize,
    },
    /// The samples' spacing is too coarse for a daily cycle.
    TooCoarse {
        step_ms: i64,
    },
    Short {
        have_ms: i64,
        need_ms: i64,
    },
    Gappy {
        missing: usize,
        total: usize,
    },
}

impl std::fmt::Display for Unusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unusable::Empty => write!(f, "history is empty"),
            Unusable::NonFinite { count, total } => {
                write!(f, "history has {count} NaN/infinite values out of {total}")
            }
            Unusable::TooCoarse { step_ms } => write!(
                f,
                "history step {} is too coarse for a daily cycle",
                Duration(*step_ms)
            ),
            Unusable::Short { have_ms, need_ms } => write!(
                f,
                "history too short: {:.1} days < {MIN_CYCLES} x 1d seasonal period ({:.1} days)",
                *have_ms as f64 / DAY_MS as f64,
                *need_ms as f64 / DAY_MS as f64
            ),
            Unusable::Gappy { missing, total } => write!(
                f,
                "history too gappy: {missing} of {total} points missing (> {:.0} %)",
                MAX_MISSING_FRACTION * 100.0
            ),
        }
    }
}

/// Check the history and lay it on a regular grid (see the module doc).
pub fn prepare(samples: &[Sample]) -> Result<Prepared, Unusable> {
    if samples.is_empty() {
        return Err(Unusable::Empty);
    }
    let bad = samples.iter().filter(|s| !s.value.is_finite()).count();
    if bad > 0 {
        return Err(Unusable::NonFinite {
            count: bad,
            total: samples.len(),
        });
    }
    let mut s: Vec<Sample> = samples.to_vec();
    s.sort_by_key(|x| x.at_ms);
    s.dedup_by_key(|x| x.at_ms);
    let mut diffs: Vec<i64> = s.windows(2).map(|w| w[1].at_ms - w[0].at_ms).collect();
    if diffs.is_empty() {
        return Err(Unusable::Short {
            have_ms: 0,
            need_ms: MIN_CYCLES as i64 * DAY_MS,
        });
    }
    diffs.sort_unstable();
    let step_ms = diffs[diffs.len() / 2].max(1);
    if DAY_MS / step_ms < 2 {
        return Err(Unusable::TooCoarse { step_ms });
    }
    let first = s[0].at_ms;
    let last = s[s.len() - 1].at_ms;
    let span = last - first;
    // n grid points cover (n - 1) steps; the history "holds" n x step of time.
    let total = usize::try_from(span / step_ms).unwrap_or(0) + 1;
    let have_ms = total as i64 * step_ms;
    let need_ms = MIN_CYCLES as i64 * DAY_MS;
    if have_ms < need_ms {
        return Err(Unusable::Short { have_ms, need_ms });
    }
    // Lay samples on the grid anchored at the newest sample (nearest sample within half
    // a step wins).
    let mut grid: Vec<Option<f64>> = vec![None; total];
    for x in &s {
        let back = last - x.at_ms;
        let k = (back + step_ms / 2) / step_ms;
        let off = (back - k * step_ms).abs();
        if let Ok(k) = usize::try_from(k)
            && k < total
        {
            let idx = total - 1 - k;
            if off <= step_ms / 2 && grid[idx].is_none() {
                grid[idx] = Some(x.value);
            }
        }
    }
    let missing = grid.iter().filter(|v| v.is_none()).count();
    if missing as f64 > MAX_MISSING_FRACTION * total as f64 {
        return Err(Unusable::Gappy { missing, total });
    }
    let values = fill_linear(&grid);
    let day = usize::try_from((DAY_MS + step_ms / 2) / step_ms).unwrap_or(0);
    let week = usize::try_from((WEEK_MS + step_ms / 2) / step_ms).unwrap_or(0);
    let periods: Vec<usize> = [day, week]
        .into_iter()
        .filter(|&p| p >= 2 && values.len() >= MIN_CYCLES * p)
        .collect();
    if periods.is_empty() {
        return Err(Unusable::Short { have_ms, need_ms });
    }
    Ok(Prepared {
        step_ms,
        last_at_ms: last,
        values,
        filled: missing,
        periods,
    })
}

/// Fill `None`s linearly between neighbours (edges: nearest value).
fn fill_linear(grid: &[Option<f64>]) -> Vec<f64> {
    let known: Vec<(usize, f64)> = grid
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| (i, v)))
        .collect();
    let mut out = vec![0.0; grid.len()];
    if known.is_empty() {
        return out;
    }
    let mut j = 0;
    for (i, o) in out.iter_mut().enumerate() {
        while j + 1 < known.len() && known[j + 1].0 <= i {
            j += 1;
        }
        let (i0, v0) = known[j];
        *o = if i <= i0 || j + 1 >= known.len() {
            v0
        } else {
            let (i1, v1) = known[j + 1];
            v0 + (v1 - v0) * (i - i0) as f64 / (i1 - i0) as f64
        };
    }
    out
}

/// Which model produced a forecast.
#[derive(Debug, Clone, PartialEq)]
pub enum Model {
    /// MSTL with these periods (samples) and an AutoETS trend.
    Mstl(Vec<usize>),
    /// AutoETS on the raw series, after MSTL failed with this message.
    Ets(String),
    /// The value one period (samples) earlier: the baseline a forecaster must beat.
    SeasonalNaive(usize),
}

impl std::fmt::Display for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Model::Mstl(p) => {
                let p: Vec<String> = p.iter().map(|x| x.to_string()).collect();
                write!(f, "MSTL[{}]+ETS", p.join(","))
            }
            Model::Ets(_) => write!(f, "ETS (MSTL failed)"),
            Model::SeasonalNaive(p) => write!(f, "seasonal-naive[{p}]"),
        }
    }
}

/// How the model is fitted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitOptions {
    /// Robust STL (outliers get low weight in the seasonal and trend smoothing).
    pub robust: bool,
    /// Winsorize the history at this quantile before fitting (bursts in the history then
    /// do not come back as seasonal peaks); `None`: no clipping.
    pub clip_quantile: Option<f64>,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            robust: true,
            clip_quantile: Some(0.99),
        }
    }
}

/// Forecast `n_ahead` values after the newest history value (at `last + k x step`,
/// k = 1..=n_ahead), clamped at 0. Errors only when both models fail or the forecast is
/// not finite.
pub fn fit_forecast(p: &Prepared, n_ahead: usize) -> Result<(Vec<f64>, Model), String> {
    fit_forecast_with(p, n_ahead, FitOptions::default())
}

/// [`fit_forecast`] with explicit options.
pub fn fit_forecast_with(
    p: &Prepared,
    n_ahead: usize,
    opts: FitOptions,
) -> Result<(Vec<f64>, Model), String> {
    let mut values = p.values.clone();
    if let Some(q) = opts.clip_quantile {
        let mut sorted = values.clone();
        sorted.sort_by(|a, b| a.total_cmp(b));
        let idx = ((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1));
        if let Some(&cap) = sorted.get(idx) {
            values.iter_mut().for_each(|v| *v = v.min(cap));
        }
    }
    let mut params = augurs_mstl::stlrs::MstlParams::new();
    let mut stl = augurs_mstl::stlrs::StlParams::new();
    stl.robust(opts.robust);
    params.stl_params(stl);
    let mstl =
        MSTLModel::new(p.periods.clone(), AutoETS::non_seasonal().into_trend_model()).mstl_params(params);
    let (points, model) = match mstl
        .fit(&values)
        .map_err(|e| e.to_string())
        .and_then(|m| m.predict(n_ahead, None).map_err(|e| e.to_string()))
    {
        Ok(f) if f.point.iter().all(|v| v.is_finite()) => (f.point, Model::Mstl(p.periods.clone())),
        Ok(_) | Err(_) => {
            let why = "MSTL fit failed or gave non-finite values".to_string();
            let f = AutoETS::non_seasonal()
                .fit(&values)
                .map_err(|e| format!("{why}; ETS fit failed: {e}"))?
                .predict(n_ahead, None)
                .map_err(|e| format!("{why}; ETS predict failed: {e}"))?;
            (f.point, Model::Ets(why))
        }
    };
    if points.len() != n_ahead || points.iter().any(|v| !v.is_finite()) {
        return Err("forecast has non-finite values".into());
    }
    Ok((points.into_iter().map(|v| v.max(0.0)).collect(), model))
}

/// The seasonal-naive forecast: each of the `n_ahead` values is the value one daily period
/// (`p.periods[0]` samples) before it, repeating the last period beyond one period ahead.
pub fn seasonal_naive(p: &Prepared, n_ahead: usize) -> Result<(Vec<f64>, Model), String> {
    let period = p.periods.first().copied().unwrap_or(0);
    let n = p.values.len();
    if period == 0 || n < period {
        return Err(format!(
            "seasonal-naive needs one period ({period} samples), history has {n}"
        ));
    }
    let last_period = &p.values[n - period..];
    let points = (0..n_ahead).map(|k| last_period[k % period].max(0.0)).collect();
    Ok((points, Model::SeasonalNaive(period)))
}

/// Piecewise-linear forecast curve through `(origin, origin_value)` and
/// `(origin + k x step, points[k-1])`; flat beyond both ends.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve<'a> {
    pub origin_ms: i64,
    pub origin_value: f64,
    pub step_ms: i64,
    pub points: &'a [f64],
}

impl Curve<'_> {
    fn knot(&self, k: usize) -> f64 {
        if k == 0 {
            self.origin_value
        } else {
            self.points
                .get(k - 1)
                .or(self.points.last())
                .copied()
                .unwrap_or(self.origin_value)
        }
    }

    /// The curve's value at `t`.
    pub fn at(&self, t: i64) -> f64 {
        if t <= self.origin_ms || self.step_ms <= 0 {
            return self.origin_value;
        }
        let x = (t - self.origin_ms) as f64 / self.step_ms as f64;
        let k = x.floor() as usize;
        let frac = x - k as f64;
        let (a, b) = (self.knot(k), self.knot(k + 1));
        a + (b - a) * frac
    }

    /// Maximum of the curve over `[from, to]`.
    pub fn max_over(&self, from: i64, to: i64) -> f64 {
        let mut best = self.at(from).max(self.at(to));
        if self.step_ms > 0 {
            for (i, v) in self.points.iter().enumerate() {
                let t = self.origin_ms + (i as i64 + 1) * self.step_ms;
                if t > from && t < to {
                    best = best.max(*v);
                }
            }
        }
        best
    }

    /// The last instant the curve has data for.
    pub fn end_ms(&self) -> i64 {
        self.origin_ms + self.points.len() as i64 * self.step_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hourly(n: usize, f: impl Fn(usize) -> f64) -> Vec<Sample> {
        (0..n).map(|i| Sample::new(i as i64 * 3_600_000, f(i))).collect()
    }

    #[test]
    fn prepare_derives_step_and_periods() {
        let p = prepare(&hourly(24 * 15, |i| (i % 24) as f64)).unwrap();
        assert_eq!(p.step_ms, 3_600_000);
        assert_eq!(p.periods, vec![24, 168]);
        let p = prepare(&hourly(24 * 7, |i| (i % 24) as f64)).unwrap();
        assert_eq!(p.periods, vec![24]);
    }

    #[test]
    fn prepare_refuses_short_nan_and_gappy() {
        assert!(matches!(
            prepare(&hourly(47, |_| 1.0)),
            Err(Unusable::Short { .. })
        ));
        let mut h = hourly(100, |_| 1.0);
        h[5].value = f64::NAN;
        assert!(matches!(prepare(&h), Err(Unusable::NonFinite { count: 1, .. })));
        let h: Vec<Sample> = hourly(200, |_| 1.0)
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % 5 != 0 || *i == 0 || *i == 199)
            .map(|(_, s)| s)
            .collect();
        assert!(
            matches!(prepare(&h), Err(Unusable::Gappy { .. })),
            "{:?}",
            prepare(&h)
        );
    }

    #[test]
    fn small_gaps_are_filled_linearly() {
        let mut h = hourly(100, |i| i as f64);
        h.remove(50);
        let p = prepare(&h).unwrap();
        assert_eq!(p.filled, 1);
        assert_eq!(p.values[50], 50.0);
    }

    #[test]
    fn curve_interpolates_and_takes_max() {
        let pts = [10.0, 20.0];
        let c = Curve {
            origin_ms: 0,
            origin_value: 0.0,
            step_ms: 100,
            points: &pts,
        };
        assert_eq!(c.at(50), 5.0);
        assert_eq!(c.at(150), 15.0);
        assert_eq!(c.at(500), 20.0);
        assert_eq!(c.max_over(20, 120), 12.0);
        assert_eq!(c.max_over(20, 99), 9.9);
        assert_eq!(c.end_ms(), 200);
    }
}
