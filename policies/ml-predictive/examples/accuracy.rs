//! Forecast accuracy of the policy's forecasting code on real traces, against
//! seasonal-naive baselines.
//!
//! `cargo run --release -p policy-ml-predictive --example accuracy -- <trace.csv>...`
//!
//! Rolling origin: every `--every` hours over the last `--days` days of the trace, fit on
//! the 7 days before the origin exactly as the policy does (history at the policy's
//! default 5 min step, or the trace's own step when coarser), then score the value
//! forecast for `tick + horizon` (15 min) at ticks 0, 15, 30 and 45 min after the fit
//! (the forecast is cached for the 1 h refit interval, so later ticks use an older fit),
//! with and without the policy's level correction. Baselines: the value 1 day and 1 week
//! before the target. Error: sMAPE = mean(200 |F - A| / (|F| + |A|)) in %.

#[path = "common/mod.rs"]
mod common;

use common::{Trace, percentile};
use policy_ml_predictive::Config;
use policy_ml_predictive::forecast::{Curve, FitOptions, fit_forecast_with, prepare};
use std::time::Instant;

fn smape(f: f64, a: f64) -> Option<f64> {
    let d = f.abs() + a.abs();
    if d == 0.0 {
        None
    } else {
        Some(200.0 * (f - a).abs() / d)
    }
}

#[derive(Default)]
struct Acc {
    sum: f64,
    n: usize,
}
impl Acc {
    fn add(&mut self, x: Option<f64>) {
        if let Some(x) = x {
            self.sum += x;
            self.n += 1;
        }
    }
    fn mean(&self) -> f64 {
        if self.n == 0 {
            f64::NAN
        } else {
            self.sum / self.n as f64
        }
    }
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut days = 21.0;
    let mut every_h = 6.0;
    let mut opts = FitOptions::default();
    let mut window_days: Option<f64> = None;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--days" | "--every" => {
                let v: f64 = args.get(i + 1).and_then(|s| s.parse().ok()).unwrap_or_else(|| {
                    eprintln!("{} needs a number", args[i]);
                    std::process::exit(2)
                });
                if args[i] == "--days" {
                    days = v
                } else {
                    every_h = v
                }
                args.drain(i..i + 2);
            }
            "--robust" => {
                opts.robust = args.get(i + 1).is_some_and(|s| s == "true");
                args.drain(i..i + 2);
            }
            "--clip" => {
                opts.clip_quantile = args.get(i + 1).and_then(|s| s.parse().ok());
                args.drain(i..i + 2);
            }
            "--window-days" => {
                window_days = args.get(i + 1).and_then(|s| s.parse().ok());
                args.drain(i..i + 2);
            }
            _ => i += 1,
        }
    }
    if args.is_empty() {
        eprintln!("usage: accuracy [--days 21] [--every 6] <trace.csv>...");
        std::process::exit(2);
    }
    let mut cfg = Config::default();
    if let Some(d) = window_days {
        cfg.history_window.0 = (d * 86_400_000.0) as i64;
    }
    println!(
        "fit options: {opts:?}, history window {} d",
        cfg.history_window.0 / 86_400_000
    );
    let h = cfg.horizon.0;
    let lags = [0, 15 * 60_000, 30 * 60_000, 45 * 60_000];
    println!(
        "sMAPE (%) of the load forecast {} ahead; fits every {every_h} h over the last {days} d; \
         forecast cached up to 45 min before use",
        wasmscaler_sdk::Duration(h)
    );
    println!(
        "| trace | history step | origins | model | MSTL+ETS | + level both | + level up | seasonal-naive 1 d | seasonal-naive 1 w | forecast / actual | fit p50 ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for path in &args {
        let trace = match Trace::load(path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1)
            }
        };
        let r = trace.resampled(cfg.history_step.0);
        let end = trace.end_ms() - h - lags[lags.len() - 1];
        let first =
            (end - (days * 86_400_000.0) as i64).max(common::BASE_MS + cfg.history_window.0 + 86_400_000);
        let every = (every_h * 3_600_000.0) as i64;
        let (mut ml, mut mlc, mut mlu) = (Acc::default(), Acc::default(), Acc::default());
        let (mut d1, mut w1) = (Acc::default(), Acc::default());
        let mut fit_ms = Vec::new();
        let mut bias = (0.0, 0.0);
        let mut models = std::collections::BTreeMap::<String, usize>::new();
        let mut origins = 0;
        let mut t = first;
        while t <= end {
            // The policy fits at some tick `t`; the history ends at the last point <= t.
            let hist = r.history(t, cfg.history_window.0);
            let started = Instant::now();
            let p = match prepare(hist) {
                Ok(p) => p,
                Err(e) => {
                    *models.entry(format!("unusable: {e}")).or_default() += 1;
                    t += every;
                    continue;
                }
            };
            let until = t + cfg.refit_interval.0 + h;
            let n = ((until - p.last_at_ms) as f64 / p.step_ms as f64).ceil() as usize + 1;
            let (points, model) = match fit_forecast_with(&p, n, opts) {
                Ok(x) => x,
                Err(e) => {
                    *models.entry(format!("failed: {e}")).or_default() += 1;
                    t += every;
                    continue;
                }
            };
            fit_ms.push(started.elapsed().as_secs_f64() * 1000.0);
            *models.entry(model.to_string()).or_default() += 1;
            origins += 1;
            let curve = Curve {
                origin_ms: p.last_at_ms,
                origin_value: *p.values.last().unwrap_or(&0.0),
                step_ms: p.step_ms,
                points: &points,
            };
            for lag in lags {
                let tick = t + lag;
                let target = tick + h;
                let actual = r.at(target);
                let f = curve.at(target);
                ml.add(smape(f, actual));
                bias.0 += f;
                bias.1 += actual;
                let now_fc = curve.at(tick);
                let raw = if now_fc > 0.0 { r.at(tick) / now_fc } else { 1.0 };
                let m = cfg.max_level_ratio;
                mlc.add(smape(f * raw.clamp(1.0 / m, m), actual));
                mlu.add(smape(f * raw.clamp(1.0, m), actual));
                d1.add(smape(r.at(target - 86_400_000), actual));
                w1.add(smape(r.at(target - 7 * 86_400_000), actual));
            }
            t += every;
        }
        let model = models
            .iter()
            .map(|(k, v)| format!("{k} x{v}"))
            .collect::<Vec<_>>()
            .join("; ");
        println!(
            "| {} | {} | {origins} | {model} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {:.1} |",
            trace.name,
            wasmscaler_sdk::Duration(r.step_ms),
            ml.mean(),
            mlc.mean(),
            mlu.mean(),
            d1.mean(),
            w1.mean(),
            bias.0 / bias.1,
            percentile(&mut fit_ms, 0.5)
        );
    }
}
