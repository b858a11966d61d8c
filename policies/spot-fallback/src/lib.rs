//! `spot-fallback`: total replicas from a load signal, split across spot and on-demand pools
//! with an on-demand floor; spot trouble moves the spot share to on-demand, calm moves it back.
//!
//! 1. Total, as the HPA computes it for an `AverageValue` target on a total
//!    (`replica_calculator.go`): `ceil(load / averageValue)`, unchanged while
//!    `|load / (averageValue × current) − 1| ≤ tolerance`; clamped to the bounds.
//! 2. On-demand floor: `max(ceil(onDemandBase × total), min(onDemandMin, total))`; the rest is
//!    the spot share.
//! 3. Fallback (remembered in state as `shifted`, replicas of the spot share on on-demand):
//!    - more than `maxInterruptions` interruption events within `interruptionWindow`: the whole
//!      spot share moves to on-demand;
//!    - the oldest Pending spot pod older than `pendingTimeout`, or (with `minAvailable`) Pending
//!      spot pods leaving fewer than `ceil(minAvailable × replicas)` placed: the Pending spot
//!      pods move to on-demand (again at most once per `pendingTimeout`);
//!    - after `calmPeriod` without trouble (no interruption event, no spot pod Pending past the
//!      timeout) and with no spot pod Pending, `moveBackStep` replicas go back to spot every
//!      `moveBackInterval`.
//! 4. Each capacity type's replicas are split evenly across its pools in the order listed
//!    (earlier pools take the remainder); the expected hourly cost is reported when priced.

pub mod config;

use serde::{Deserialize, Serialize};
use wasmscaler_sdk::prelude::*;

pub use config::{Amount, CapacityType, Config, Duration, MAX_INTERRUPTION_WINDOW_MS, Pool};

/// What the policy remembers per workload.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    /// Replicas of the spot share currently placed on on-demand.
    #[serde(default)]
    pub shifted: u32,
    /// When replicas last moved from spot to on-demand.
    #[serde(default)]
    pub last_shift_ms: Option<i64>,
    /// Last time spot trouble was seen (a Pending timeout, an interruption, an availability breach).
    #[serde(default)]
    pub last_trouble_ms: Option<i64>,
    /// When replicas last moved back to spot.
    #[serde(default)]
    pub last_move_back_ms: Option<i64>,
    /// Why the fallback started (kept for the reason text while it lasts).
    #[serde(default)]
    pub cause: Option<String>,
}

pub struct SpotFallback;

/// `n` split over `k` pools: as even as possible, earlier pools take the remainder.
fn split(n: u32, k: usize) -> Vec<u32> {
    let k32 = u32::try_from(k.max(1)).unwrap_or(u32::MAX);
    let (base, rem) = (n / k32, n % k32);
    (0..k32).map(|i| base + u32::from(i < rem)).collect()
}

fn latest_opt(ctx: &Context, name: &str) -> Result<Option<f64>, PolicyError> {
    match ctx.try_signal(name) {
        None => Ok(None),
        Some(s) => Ok(Some(s.latest()?.max(0.0))),
    }
}

impl Policy for SpotFallback {
    type Config = Config;
    type State = State;

    fn info() -> PolicyInfo {
        PolicyInfo::new(
            "spot-fallback",
            env!("CARGO_PKG_VERSION"),
            "HPA total split across spot and on-demand pools; falls back to on-demand on spot trouble",
        )
        .signal(SignalRequest::latest(
            "load",
            "total load across all pools, e.g. requests/s (name set by 'loadSignal')",
        ))
        .signal(SignalRequest::latest("spot-pending-pods", "spot-pool pods currently Pending").optional())
        .signal(
            SignalRequest::latest(
                "spot-pending-seconds",
                "age in s of the oldest Pending spot pod (0 if none)",
            )
            .optional(),
        )
        .signal(
            SignalRequest::window(
                "spot-interruptions",
                MAX_INTERRUPTION_WINDOW_MS,
                "one sample per spot interruption event, value = pods interrupted",
            )
            .optional(),
        )
    }

    fn validate(cfg: &Config) -> Result<(), PolicyError> {
        config::validate(cfg)
    }

    fn evaluate(ctx: &Context, cfg: &Config, st: &mut State) -> Result<Decision, PolicyError> {
        let now = ctx.now_ms;
        let w = &ctx.workload;
        let current = w.replicas;

        // Forget timestamps from the future (a clock that went back): they cannot be trusted.
        for t in [
            &mut st.last_shift_ms,
            &mut st.last_trouble_ms,
            &mut st.last_move_back_ms,
        ] {
            if t.is_some_and(|t| t > now) {
                *t = None;
            }
        }

        // 1. Total replicas.
        let load = ctx.signal(&cfg.load_signal)?.latest()?.max(0.0);
        let avg = cfg.average_value;
        let wanted = if current > 0 && (load / (avg * f64::from(current)) - 1.0).abs() <= cfg.tolerance {
            current
        } else {
            replicas_for(load, avg)?
        };
        let hi = cfg.max_replicas.unwrap_or(w.max_replicas).min(w.max_replicas);
        let lo = cfg.min_replicas.unwrap_or(w.min_replicas).min(hi);
        let total = ctx.clamp(wanted.clamp(lo, hi));

        // 2. On-demand floor and spot share.
        let base_floor = wasmscaler_sdk::math::ceil_u32(f64::from(total) * cfg.on_demand_base);
        let floor = base_floor.max(cfg.on_demand_min.min(total)).min(total);
        let spot_share = total - floor;

        // 3. Spot trouble.
        let pending_pods = latest_opt(ctx, "spot-pending-pods")?;
        let pending_secs = latest_opt(ctx, "spot-pending-seconds")?;
        let mut events = 0u32;
        let mut pods_interrupted = 0.0;
        let mut newest_interruption: Option<i64> = None;
        if let Some(s) = ctx.try_signal("spot-interruptions") {
            for smp in s.window(now, cfg.interruption_window.ms_u64()) {
                let v = wasmscaler_sdk::math::finite("signal 'spot-interruptions'", smp.value)?;
                if v > 0.0 {
                    events = events.saturating_add(1);
                    pods_interrupted += v;
                    newest_interruption = Some(newest_interruption.map_or(smp.at_ms, |n| n.max(smp.at_ms)));
                }
            }
        }
        let pending_n = pending_pods.map(wasmscaler_sdk::math::ceil_u32);
        let some_pending = pending_n.is_none_or(|n| n > 0);
        let timeout = cfg.pending_timeout;
        let pending_timed_out =
            pending_secs.is_some_and(|s| s * 1000.0 >= timeout.ms() as f64) && some_pending;
        let availability_breach = match (cfg.min_available, pending_n) {
            (Some(a), Some(p)) if p > 0 && current > 0 => {
                let need = wasmscaler_sdk::math::ceil_u32(f64::from(current) * a);
                current.saturating_sub(p) < need
            }
            _ => false,
        };
        let interruption_spike = events > cfg.max_interruptions;

        let mut trouble_at = st.last_trouble_ms;
        if pending_timed_out || availability_breach || interruption_spike {
            trouble_at = Some(now);
        }
        if let Some(t) = newest_interruption {
            trouble_at = Some(trouble_at.map_or(t, |x| x.max(t)));
        }
        st.last_trouble_ms = trouble_at;

        // 4. Fallback and move-back.
        st.shifted = st.shifted.min(spot_share);
        let mut action = String::new();
        let can_reshift = st
            .last_shift_ms
            .is_none_or(|t| now.saturating_sub(t) >= timeout.ms());
        if interruption_spike {
            if st.shifted < spot_share {
                action = format!(
                    "{events} spot interruptions ({pods_interrupted:.0} pods) in the last {} > {}: moving all {spot_share} spot replicas to on-demand",
                    cfg.interruption_window, cfg.max_interruptions
                );
                st.shifted = spot_share;
                st.last_shift_ms = Some(now);
                st.cause = Some(format!(
                    "{events} spot interruptions in {}",
                    cfg.interruption_window
                ));
            } else {
                action = format!(
                    "on-demand fallback: {events} spot interruptions in the last {} > {}",
                    cfg.interruption_window, cfg.max_interruptions
                );
            }
        } else if (pending_timed_out || availability_breach) && can_reshift && st.shifted < spot_share {
            let add = pending_n.unwrap_or(spot_share).max(1);
            let before = st.shifted;
            st.shifted = st.shifted.saturating_add(add).min(spot_share);
            let moved = st.shifted - before;
            let what = match pending_n {
                Some(n) => format!("{n} spot pods Pending"),
                None => "spot pods Pending (count unknown)".to_string(),
            };
            let why = if pending_timed_out {
                format!(
                    "{what}, oldest {} >= pendingTimeout {}",
                    Duration((pending_secs.unwrap_or(0.0) * 1000.0) as i64),
                    timeout
                )
            } else {
                format!(
                    "{what} leave {} of {current} placed < minAvailable {}",
                    current.saturating_sub(pending_n.unwrap_or(0)),
                    cfg.min_available.unwrap_or(0.0)
                )
            };
            action = format!("{why}: moving {moved} to on-demand");
            st.last_shift_ms = Some(now);
            st.cause = Some(why);
        } else if st.shifted > 0 {
            let calm_for = trouble_at.map(|t| now.saturating_sub(t));
            let calm = calm_for.is_none_or(|c| c >= cfg.calm_period.ms());
            let interval_ok = st
                .last_move_back_ms
                .is_none_or(|t| now.saturating_sub(t) >= cfg.move_back_interval.ms());
            let cause = st.cause.clone().unwrap_or_else(|| "spot trouble".into());
            if !calm {
                action = format!(
                    "on-demand fallback ({cause}); calm for {} of {}",
                    Duration(calm_for.unwrap_or(0).max(0)),
                    cfg.calm_period
                );
            } else if pending_n.is_some_and(|n| n > 0) {
                action = format!(
                    "on-demand fallback; not moving back while {} spot pods are Pending",
                    pending_n.unwrap_or(0)
                );
            } else if !interval_ok {
                action = format!(
                    "moving back to spot gradually: next step {} after the last",
                    cfg.move_back_interval
                );
            } else {
                let step = cfg.move_back_step.of(total).min(st.shifted);
                st.shifted -= step;
                st.last_move_back_ms = Some(now);
                action = format!(
                    "spot calm for {}: moving {step} back to spot ({} still on on-demand)",
                    cfg.calm_period, st.shifted
                );
                if st.shifted == 0 {
                    st.cause = None;
                }
            }
        } else if pending_timed_out || availability_breach {
            action = "spot pods Pending but no spot share left to move".into();
        }
        if st.shifted == 0 && action.is_empty() {
            st.cause = None;
        }

        // 5. Placement.
        let on_demand = floor + st.shifted;
        let spot = spot_share - st.shifted;
        let spot_pools: Vec<&Pool> = cfg
            .pools
            .iter()
            .filter(|p| p.capacity_type == CapacityType::Spot)
            .collect();
        let od_pools: Vec<&Pool> = cfg
            .pools
            .iter()
            .filter(|p| p.capacity_type == CapacityType::OnDemand)
            .collect();
        let spot_split = split(spot, spot_pools.len());
        let od_split = split(on_demand, od_pools.len());
        let mut counts: Vec<(&Pool, u32)> = Vec::new();
        for p in &cfg.pools {
            let (list, nums) = match p.capacity_type {
                CapacityType::Spot => (&spot_pools, &spot_split),
                CapacityType::OnDemand => (&od_pools, &od_split),
            };
            let idx = list.iter().position(|q| std::ptr::eq(*q, p)).unwrap_or(0);
            counts.push((p, nums.get(idx).copied().unwrap_or(0)));
        }

        let mut d = Decision::new(total);
        for (p, n) in &counts {
            d = d.place(p.name.clone(), *n);
        }
        d = d
            .metric("spot_replicas", f64::from(spot))
            .metric("on_demand_replicas", f64::from(on_demand))
            .metric("fallback_replicas", f64::from(st.shifted));
        let mut cost_text = String::new();
        if cfg.pools.iter().all(|p| p.price_per_hour.is_some()) {
            let mut sum = 0.0;
            for (p, n) in &counts {
                let c = f64::from(*n) * p.price_per_hour.unwrap_or(0.0);
                sum += c;
                d = d.metric(format!("expected_hourly_cost:{}", p.name), c);
            }
            d = d.metric("expected_hourly_cost", sum);
            cost_text = format!("; expected cost {sum:.2}/h");
        }

        let per = if current > 0 {
            load / f64::from(current)
        } else {
            load
        };
        let tol = if wanted == current && current > 0 && replicas_for(load, avg)? != current {
            " (within tolerance)"
        } else {
            ""
        };
        let mut reason = format!(
            "{total} replicas ({} {load:.1} total, {per:.1}/replica vs {avg}/replica{tol}): on-demand {on_demand} (floor {floor}",
            cfg.load_signal
        );
        if st.shifted > 0 {
            reason.push_str(&format!(" + {} fallback", st.shifted));
        }
        reason.push_str(&format!("), spot {spot}"));
        if !action.is_empty() {
            reason.push_str("; ");
            reason.push_str(&action);
        }
        reason.push_str(&cost_text);
        Ok(d.reason(reason))
    }
}

wasmscaler_sdk::export_policy!(SpotFallback);
