//! `cron`: scheduled scaling with the semantics of kubernetes-cronhpa-controller
//! (`AliyunContainerService/kubernetes-cronhpa-controller`, `pkg/controller/cronjob.go`
//! and its README), made stateless.
//!
//! Named jobs each carry a schedule and a target size. The decision is the target of the
//! job whose most recent firing at or before `now` is the latest of all jobs; firings on
//! excluded days do not count. `recheck-after-ms` points exactly at the next firing of
//! any job, so the host wakes at the boundary. The answer depends only on `now` and the
//! configuration, so a controller restart changes nothing.

mod gocron;
mod schedule;

use std::cell::OnceCell;

use chrono::{DateTime, FixedOffset};
use chrono_tz::Tz;
use serde::Deserialize;
use wasmscaler_sdk::prelude::*;

pub use gocron::go_parse_duration;
pub use schedule::fmt_duration;
use schedule::{DAY_MS, Schedule, day_excluded, day_start, local, next_day_start};

/// How far back (and, for `runOnce`, forward from `start`) a job's firing is searched,
/// in days: five years (5 x 366). A cron job whose latest firing is older than this
/// counts as not having fired. One-shot `@date` jobs are instants and are found however
/// old they are, unless `excludeDates` or `start` rule them out.
pub const LOOKBACK_DAYS: i64 = 1830;

/// The longest `recheck-after-ms` returned (24 h): with no firing within a day the host
/// still re-evaluates once a day.
pub const MAX_RECHECK_MS: u64 = 86_400_000;

/// One scheduled job (`spec.jobs[]` of a CronHorizontalPodAutoscaler).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JobConfig {
    /// Unique within the policy; shown in decisions.
    pub name: String,
    /// Cron expression (5 fields minute-first, or 6 fields seconds-first), a macro
    /// (`@daily`...), `@every <duration>` or `@date YYYY-MM-DD HH:MM:SS`.
    pub schedule: String,
    /// Replicas from this job's firing on (>= 1).
    pub target_size: i64,
    /// Fire only once: at the job's first firing at or after `start` that is not on an
    /// excluded day. Needs `start`.
    #[serde(default)]
    pub run_once: bool,
}

/// `target` (default): replicas = the cron target. `floor`: replicas =
/// max(cron target, the workload's current replicas).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Target,
    Floor,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    pub jobs: Vec<JobConfig>,
    /// IANA time zone the schedules, `@date`, `start` and `excludeDates` are read in.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// Day-granular cron expressions; a firing on a matching local day is skipped.
    #[serde(default)]
    pub exclude_dates: Vec<String>,
    #[serde(default)]
    pub mode: Mode,
    /// When the schedule takes effect: firings before it are ignored; `@every` is
    /// anchored here; `runOnce` counts from here. RFC 3339 (`2026-01-01T00:00:00Z`) or a
    /// local `YYYY-MM-DD HH:MM:SS` in `timezone`.
    #[serde(default)]
    pub start: Option<String>,
    /// Lower bound on the cron target.
    #[serde(default)]
    pub min_replicas: Option<i64>,
    /// Upper bound on the cron target.
    #[serde(default)]
    pub max_replicas: Option<i64>,
    /// The compiled form, built once per parsed configuration: the SDK validates and then
    /// evaluates the same `Config`, and parsing a cron expression costs ~15 us.
    #[serde(skip)]
    plan: OnceCell<Result<Plan, PolicyError>>,
}

impl Config {
    /// The compiled configuration (memoized).
    fn plan(&self) -> Result<&Plan, PolicyError> {
        self.plan
            .get_or_init(|| Plan::compile(self))
            .as_ref()
            .map_err(Clone::clone)
    }
}

fn default_timezone() -> String {
    "UTC".into()
}

/// A job ready to evaluate.
#[derive(Debug, Clone)]
struct Job {
    name: String,
    text: String,
    target: u32,
    run_once: bool,
    schedule: Schedule,
    /// Some local day is one of its days and none of the excludes' (always true for
    /// `@every` and `@date`). When false the job never counts, and the five-year search
    /// for a firing that is not excluded is skipped (it costs ~1,000 go-cron searches).
    counts: bool,
}

/// A validated configuration.
#[derive(Debug, Clone)]
struct Plan {
    tz: Tz,
    start_ms: Option<i64>,
    jobs: Vec<Job>,
    excludes: Vec<(String, gocron::Spec)>,
    mode: Mode,
    min: Option<u32>,
    max: Option<u32>,
}

fn bound(key: &str, v: i64, min: i64) -> Result<u32, PolicyError> {
    if v < min || v > i64::from(u32::MAX) {
        return Err(PolicyError::config(format!(
            "'{key}': must be between {min} and {}, got {v}",
            u32::MAX
        )));
    }
    u32::try_from(v).map_err(|_| PolicyError::config(format!("'{key}': out of range: {v}")))
}

fn parse_start(text: &str, tz: Tz) -> Result<i64, PolicyError> {
    let t = text.trim();
    if let Ok(d) = DateTime::<FixedOffset>::parse_from_rfc3339(t) {
        return Ok(d.timestamp_millis());
    }
    let naive = schedule::parse_local_datetime(t).ok_or_else(|| {
        PolicyError::config(format!(
            "'start': cannot read '{text}': expected RFC 3339 (2026-01-01T00:00:00Z) or a local 'YYYY-MM-DD HH:MM:SS'"
        ))
    })?;
    schedule::resolve_local(tz, naive)
        .ok_or_else(|| PolicyError::config(format!("'start': '{text}' does not exist in {tz}")))
}

/// Whether some (month, day, weekday) is one of `spec`'s days and none of the excludes':
/// both sides are go-cron day rules over exactly those three fields, so when no
/// combination is, no local day ever is (a superset check: a combination that no real
/// date has within the lookback only means the search runs).
fn some_day_counts(spec: &gocron::Spec, excludes: &[(String, gocron::Spec)]) -> bool {
    const DAYS_IN: [u32; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    (1..=12u32).zip(DAYS_IN).any(|(month, days)| {
        (1..=days).any(|day| {
            (0..7u32).any(|wd| {
                spec.day_matches(month, day, wd)
                    && !excludes.iter().any(|(_, e)| e.day_matches(month, day, wd))
            })
        })
    })
}

impl Plan {
    fn compile(cfg: &Config) -> Result<Plan, PolicyError> {
        let tz: Tz = cfg
            .timezone
            .parse()
            .map_err(|_| PolicyError::config(format!("'timezone': unknown time zone '{}'", cfg.timezone)))?;
        let start_ms = cfg.start.as_deref().map(|s| parse_start(s, tz)).transpose()?;
        let min = cfg.min_replicas.map(|v| bound("minReplicas", v, 0)).transpose()?;
        let max = cfg.max_replicas.map(|v| bound("maxReplicas", v, 1)).transpose()?;
        if let (Some(lo), Some(hi)) = (min, max)
            && lo > hi
        {
            return Err(PolicyError::config(format!(
                "'minReplicas' ({lo}) must not exceed 'maxReplicas' ({hi})"
            )));
        }
        if cfg.jobs.is_empty() {
            return Err(PolicyError::config("'jobs': at least one job is required"));
        }
        let mut jobs = Vec::with_capacity(cfg.jobs.len());
        for (i, j) in cfg.jobs.iter().enumerate() {
            if j.name.trim().is_empty() {
                return Err(PolicyError::config(format!(
                    "'jobs[{i}].name': must not be empty"
                )));
            }
            if let Some(k) = cfg.jobs[..i].iter().position(|o| o.name == j.name) {
                return Err(PolicyError::config(format!(
                    "'jobs[{i}].name': '{}' is already the name of jobs[{k}]; names must be unique",
                    j.name
                )));
            }
            let target = bound(&format!("jobs[{i}].targetSize"), j.target_size, 1)?;
            let schedule = schedule::parse_schedule(&j.schedule, tz)
                .map_err(|e| PolicyError::config(format!("'jobs[{i}].schedule': {e}")))?;
            if j.run_once && start_ms.is_none() && !matches!(schedule, Schedule::Once { .. }) {
                return Err(PolicyError::config(format!(
                    "'jobs[{i}].runOnce': needs 'start' (the instant from which its single firing is counted)"
                )));
            }
            jobs.push(Job {
                name: j.name.clone(),
                text: j.schedule.trim().to_string(),
                target,
                // An @date job fires once by itself: runOnce changes nothing for it.
                run_once: j.run_once && !matches!(schedule, Schedule::Once { .. }),
                schedule,
                counts: true,
            });
        }
        let mut excludes = Vec::with_capacity(cfg.exclude_dates.len());
        for (i, e) in cfg.exclude_dates.iter().enumerate() {
            let cron = schedule::parse_cron(e)
                .map_err(|msg| PolicyError::config(format!("'excludeDates[{i}]': {msg}")))?;
            excludes.push((e.trim().to_string(), cron));
        }
        for job in &mut jobs {
            if let Schedule::Cron(spec) = &job.schedule {
                job.counts = some_day_counts(spec, &excludes);
            }
        }
        Ok(Plan {
            tz,
            start_ms,
            jobs,
            excludes,
            mode: cfg.mode,
            min,
            max,
        })
    }

    /// The `@every` anchor.
    fn anchor(&self) -> i64 {
        self.start_ms.unwrap_or(0)
    }

    /// The `excludeDates` entry that covers the local day of `ms`, if any.
    fn excluded_by(&self, ms: i64) -> Option<&str> {
        if self.excludes.is_empty() {
            return None;
        }
        self.excludes
            .iter()
            .find(|(_, c)| day_excluded(c, self.tz, ms))
            .map(|(t, _)| t.as_str())
    }

    /// A `runOnce` job's single firing: its first non-excluded firing at or after
    /// `start`, searched up to `LOOKBACK_DAYS` past `start`.
    fn only_firing(&self, job: &Job) -> Option<i64> {
        let start = self.start_ms.unwrap_or(i64::MIN / 2);
        let limit = start.saturating_add(LOOKBACK_DAYS * DAY_MS);
        self.first_counted_after(job, start.checked_sub(1)?, limit)
    }

    /// The job's first firing strictly after `t` and at or before `limit` that is not on
    /// an excluded day (ignores `start` and `runOnce`: the callers handle those).
    fn first_counted_after(&self, job: &Job, mut t: i64, limit: i64) -> Option<i64> {
        if !job.counts {
            return None;
        }
        loop {
            let f = job.schedule.next_after(self.tz, self.anchor(), t)?;
            if f > limit {
                return None;
            }
            if self.excluded_by(f).is_none() {
                return Some(f);
            }
            // Skip the excluded day and every excluded day after it, a day per step (a
            // search per excluded day would cost a search per day of the horizon).
            let mut day = next_day_start(self.tz, f)?;
            while day <= limit && self.excluded_by(day).is_some() {
                day = next_day_start(self.tz, day)?.max(day + 1);
            }
            t = day.checked_sub(1)?;
        }
    }

    /// The job's latest counted firing at or before `now`: not on an excluded day, not
    /// before `start`, not older than the lookback horizon (cron and `@every`).
    fn last_firing(&self, job: &Job, now: i64) -> Option<i64> {
        if job.run_once {
            return self.only_firing(job).filter(|&f| f <= now);
        }
        let horizon = match job.schedule {
            Schedule::Once { .. } => i64::MIN,
            _ => now.saturating_sub(LOOKBACK_DAYS * DAY_MS),
        };
        if !job.counts {
            return None;
        }
        let floor = horizon.max(self.start_ms.unwrap_or(i64::MIN));
        let mut t = now;
        loop {
            let f = job.schedule.prev_at_or_before(self.tz, self.anchor(), t, floor)?;
            if self.excluded_by(f).is_none() {
                return Some(f);
            }
            if matches!(job.schedule, Schedule::Once { .. }) {
                return None;
            }
            // Skip the excluded day and every excluded day before it, a day per step.
            let mut end = day_start(self.tz, f)?.checked_sub(1)?;
            while end >= floor && self.excluded_by(end).is_some() {
                end = day_start(self.tz, end)?.min(end).checked_sub(1)?;
            }
            t = end;
        }
    }

    /// The job's next counted firing strictly after `now` and at or before `limit`.
    fn next_firing(&self, job: &Job, now: i64, limit: i64) -> Option<i64> {
        if job.run_once {
            return self.only_firing(job).filter(|&f| f > now && f <= limit);
        }
        let after = match self.start_ms {
            Some(s) if s > now => s.checked_sub(1)?,
            _ => now,
        };
        self.first_counted_after(job, after, limit)
    }

    fn fmt_time(&self, ms: i64) -> String {
        match local(self.tz, ms) {
            Some(d) => d.format("%Y-%m-%d %H:%M:%S %Z").to_string(),
            None => format!("{ms} ms"),
        }
    }
}

/// The cron policy.
pub struct CronPolicy;

impl Policy for CronPolicy {
    type Config = Config;
    type State = ();

    fn info() -> PolicyInfo {
        PolicyInfo::new(
            "cron",
            env!("CARGO_PKG_VERSION"),
            "kubernetes-cronhpa-controller: target size of the most recent cron job firing, per-policy time zone, excluded dates, exact wake-ups",
        )
    }

    fn validate(cfg: &Config) -> Result<(), PolicyError> {
        cfg.plan().map(|_| ())
    }

    fn evaluate(ctx: &Context, cfg: &Config, _: &mut ()) -> Result<Decision, PolicyError> {
        let plan = cfg.plan()?;
        let now = ctx.now_ms;
        let current = ctx.workload.replicas;

        // The job in force: the latest counted firing; on a tie the job listed last wins.
        let mut winner: Option<(i64, &Job)> = None;
        for job in &plan.jobs {
            if let Some(f) = plan.last_firing(job, now)
                && winner.is_none_or(|(w, _)| f >= w)
            {
                winner = Some((f, job));
            }
        }

        // The next boundary, capped at 24 h.
        let limit = now.saturating_add(MAX_RECHECK_MS as i64);
        let mut next: Option<(i64, &Job)> = None;
        for job in &plan.jobs {
            if let Some(f) = plan.next_firing(job, now, limit)
                && next.is_none_or(|(n, _)| f < n)
            {
                next = Some((f, job));
            }
        }
        let recheck = match next {
            Some((f, _)) => u64::try_from(f - now).unwrap_or(1).clamp(1, MAX_RECHECK_MS),
            None => MAX_RECHECK_MS,
        };
        let next_text = match next {
            Some((f, j)) => format!(
                "next: '{}' at {} (in {}) -> {}",
                j.name,
                plan.fmt_time(f),
                fmt_duration(f - now),
                j.target
            ),
            None => format!(
                "no firing within {}; rechecking then",
                fmt_duration(MAX_RECHECK_MS as i64)
            ),
        };

        let Some((fired_at, job)) = winner else {
            let replicas = ctx.clamp(current);
            return Ok(Decision::new(replicas)
                .reason(format!(
                    "no job has fired yet in {}; keeping current {current} replicas; {next_text}",
                    plan.tz
                ))
                .recheck_after_ms(recheck));
        };

        // Firings newer than the one in force that an excluded day cancelled, for the record.
        let skipped = plan
            .jobs
            .iter()
            .filter(|j| !j.run_once)
            .filter_map(|j| {
                let f = j.schedule.prev_at_or_before(
                    plan.tz,
                    plan.anchor(),
                    now,
                    now.saturating_sub(LOOKBACK_DAYS * DAY_MS),
                )?;
                let by = plan.excluded_by(f)?;
                (f > fired_at && plan.start_ms.is_none_or(|s| f >= s)).then_some((f, j, by))
            })
            .max_by_key(|(f, _, _)| *f);

        let mut why = format!(
            "job '{}' ({}) fired at {} -> target {}",
            job.name,
            job.text,
            plan.fmt_time(fired_at),
            job.target
        );
        if let Some((f, j, by)) = skipped {
            why.push_str(&format!(
                " ('{}' at {} skipped: excluded by '{by}')",
                j.name,
                plan.fmt_time(f)
            ));
        }
        let mut wanted = job.target;
        if let Some(lo) = plan.min
            && wanted < lo
        {
            wanted = lo;
            why.push_str(&format!(", raised to minReplicas {lo}"));
        }
        if let Some(hi) = plan.max
            && wanted > hi
        {
            wanted = hi;
            why.push_str(&format!(", capped at maxReplicas {hi}"));
        }
        if plan.mode == Mode::Floor {
            if current > wanted {
                why.push_str(&format!(", floor mode: current {current} is higher, kept"));
                wanted = current;
            } else {
                why.push_str(", floor mode");
            }
        }
        let replicas = ctx.clamp(wanted);
        if replicas != wanted {
            why.push_str(&format!(
                ", clamped to workload bounds {}..{}",
                ctx.workload.min_replicas, ctx.workload.max_replicas
            ));
        }
        Ok(Decision::new(replicas)
            .reason(format!("{why} -> {replicas} replicas; {next_text}"))
            .recheck_after_ms(recheck)
            .metric("cron-target", f64::from(job.target)))
    }
}

wasmscaler_sdk::export_policy!(CronPolicy);
