//! Schedules: cron expressions (go-cron's dialect, gocron.rs), `@every <duration>` and one-shot
//! `@date YYYY-MM-DD HH:MM:SS`, all evaluated in one IANA time zone (through `chrono-tz`).
//!
//! Every instant here is milliseconds since the Unix epoch (UTC), like `ctx.now_ms`.

use chrono::{DateTime, NaiveDateTime, TimeZone};
use chrono_tz::Tz;

use crate::gocron::{self, Parsed, Spec};

/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// Parse a cron expression or descriptor (not `@every`) as the controller's go-cron does,
/// except that 5 fields are minute-first (standard cron). An expression that can never
/// fire (such as `0 0 0 31 2 *`) is an error. `@date` gives its month, day and time.
pub fn parse_cron(expr: &str) -> Result<Spec, String> {
    let spec =
        match gocron::parse(expr, true).map_err(|e| format!("invalid cron expression '{expr}': {e}"))? {
            Parsed::Spec(s) | Parsed::Date { spec: s, .. } => s,
            Parsed::Every { .. } => return Err(format!("'{expr}' is not a day pattern")),
        };
    Ok(spec)
}

/// Whether a cron expression fires at all: go-cron searches five years ahead, from
/// 2000-01-01 in `tz` (a pattern repeats every 400 years, so one that misses those five
/// years at most fires on a leap day of a century year).
fn fires(spec: &Spec, tz: Tz) -> bool {
    gocron::go_date(tz, 2000, 1, 1, 0, 0, 0)
        .and_then(|r| spec.next(tz, r))
        .is_some()
}

/// What a job's `schedule` says.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// A cron expression, evaluated in the policy's time zone.
    Cron(Spec),
    /// `@every D`: at `anchor + k x D` for k >= 1 (anchor: the policy's `start`, or the
    /// Unix epoch).
    Every { period_ms: i64 },
    /// `@date ...`: once, at this instant (`None`: the date's time never exists there,
    /// so go-cron's spec skips that year).
    Once { at_ms: Option<i64> },
}

/// Parse a job's `schedule` text in time zone `tz`.
pub fn parse_schedule(text: &str, tz: Tz) -> Result<Schedule, String> {
    match gocron::parse(text, true).map_err(|e| format!("invalid cron expression '{text}': {e}"))? {
        Parsed::Every { period_s } => Ok(Schedule::Every {
            period_ms: period_s
                .checked_mul(1000)
                .ok_or_else(|| format!("'{text}': period too long"))?,
        }),
        Parsed::Date { spec, year } => {
            // go-cron's @date spec fires every year; read once, it is its first firing in
            // the year written.
            let at = gocron::go_date(tz, year, 1, 1, 0, 0, 0)
                .and_then(|new_year| spec.next(tz, new_year - 1))
                .filter(|&f| gocron::local_day(tz, f).is_some_and(|(y, ..)| y == year));
            Ok(Schedule::Once {
                at_ms: at.map(|s| s * 1000),
            })
        }
        Parsed::Spec(spec) => {
            if !fires(&spec, tz) {
                return Err(format!(
                    "cron expression '{text}' never fires (no such day in any year)"
                ));
            }
            Ok(Schedule::Cron(spec))
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS`, `YYYY-MM-DD HH:MM` (also with a `T` between date and time).
pub fn parse_local_datetime(s: &str) -> Option<NaiveDateTime> {
    [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
}

/// The instant a wall-clock time in `tz` stands for, as Go's `time.Date` reads it.
pub fn resolve_local(tz: Tz, naive: NaiveDateTime) -> Option<i64> {
    use chrono::{Datelike, Timelike};
    gocron::go_date(
        tz,
        naive.year(),
        i64::from(naive.month()),
        i64::from(naive.day()),
        i64::from(naive.hour()),
        i64::from(naive.minute()),
        i64::from(naive.second()),
    )
    .map(|s| s * 1000)
}

/// `ms` as a date-time in `tz`.
pub fn local(tz: Tz, ms: i64) -> Option<DateTime<Tz>> {
    tz.timestamp_millis_opt(ms).single()
}

/// Local midnight (Go's) of the day that contains `ms`, in ms.
pub fn day_start(tz: Tz, ms: i64) -> Option<i64> {
    gocron::midnight(tz, ms.div_euclid(1000), 0).map(|s| s * 1000)
}

/// Local midnight (Go's) of the day after the one that contains `ms`, in ms.
pub fn next_day_start(tz: Tz, ms: i64) -> Option<i64> {
    gocron::midnight(tz, ms.div_euclid(1000), 1).map(|s| s * 1000)
}

/// Whether an `excludeDates` pattern covers the local day of `ms`: its month,
/// day-of-month and day-of-week fields match that day (go-cron's day rule: when either day
/// field is written with `*` or `?`, both must match, else either). Its second, minute and
/// hour fields do not narrow it.
pub fn day_excluded(spec: &Spec, tz: Tz, ms: i64) -> bool {
    gocron::local_day(tz, ms.div_euclid(1000)).is_some_and(|(_, m, d, wd)| spec.day_matches(m, d, wd))
}

impl Schedule {
    /// The latest firing at or before `t` and not before `floor` (no exclusions).
    /// `anchor_ms` is the `@every` anchor.
    pub fn prev_at_or_before(&self, tz: Tz, anchor_ms: i64, t: i64, floor: i64) -> Option<i64> {
        let f = match self {
            Schedule::Cron(spec) => {
                let floor_s = floor.div_euclid(1000) + i64::from(floor.rem_euclid(1000) != 0);
                spec.prev_at_or_before(tz, t.div_euclid(1000), floor_s)? * 1000
            }
            Schedule::Every { period_ms } => {
                let since = t.checked_sub(anchor_ms)?;
                let k = since.div_euclid(*period_ms);
                if k < 1 {
                    return None;
                }
                anchor_ms.checked_add(k.checked_mul(*period_ms)?)?
            }
            Schedule::Once { at_ms } => at_ms.filter(|&a| a <= t)?,
        };
        (f >= floor).then_some(f)
    }

    /// The first firing strictly after `t` (no exclusions, no `start`).
    pub fn next_after(&self, tz: Tz, anchor_ms: i64, t: i64) -> Option<i64> {
        match self {
            Schedule::Cron(spec) => spec.next(tz, t.div_euclid(1000))?.checked_mul(1000),
            Schedule::Every { period_ms } => {
                let since = t.checked_sub(anchor_ms)?;
                let k = (since.div_euclid(*period_ms) + 1).max(1);
                anchor_ms.checked_add(k.checked_mul(*period_ms)?)
            }
            Schedule::Once { at_ms } => at_ms.filter(|&a| a > t),
        }
    }
}

/// `ms` as Go-style `1h2m3s` (`0s` for zero), milliseconds shown only when non-zero.
pub fn fmt_duration(ms: i64) -> String {
    let ms = ms.max(0);
    let (h, rem) = (ms / 3_600_000, ms % 3_600_000);
    let (m, rem) = (rem / 60_000, rem % 60_000);
    let (s, milli) = (rem / 1000, rem % 1000);
    let secs = if milli == 0 {
        format!("{s}s")
    } else {
        format!("{s}.{milli:03}s")
    };
    if h > 0 {
        format!("{h}h{m}m{secs}")
    } else if m > 0 {
        format!("{m}m{secs}")
    } else {
        secs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_like_go() {
        assert_eq!(fmt_duration(5_410_000), "1h30m10s");
        assert_eq!(fmt_duration(61_000), "1m1s");
        assert_eq!(fmt_duration(500), "0.500s");
        assert_eq!(fmt_duration(0), "0s");
    }

    #[test]
    fn n_slash_step_means_n_to_max() {
        // Minutes "3/15" = 3-59/15 = 3, 18, 33, 48.
        let Ok(Schedule::Cron(c)) = parse_schedule("0 3/15 * * * *", Tz::UTC) else {
            panic!("parses")
        };
        let t = 1_767_226_800; // 2026-01-01 00:20 UTC
        assert_eq!(c.next(Tz::UTC, t), Some(t + 13 * 60));
    }

    #[test]
    fn never_firing_and_malformed_expressions_are_rejected() {
        let e = parse_schedule("0 0 0 31 2 *", Tz::UTC).unwrap_err();
        assert!(e.contains("never fires"), "{e}");
        assert!(parse_cron("0 0 25 * * *").is_err());
        assert!(parse_cron("* * *").is_err());
        assert!(parse_cron("0 0 0 1 1 * 2030").is_err(), "no year field");
        assert!(parse_cron("@reboot").is_err());
        assert!(parse_cron("@midnight").is_ok());
        assert!(parse_cron("@every 1h").is_err(), "not a day pattern");
    }

    #[test]
    fn a_date_in_a_skipped_hour_never_fires() {
        // go-cron's @date spec for 02:30 on 2026-03-29 in Berlin has no firing that year.
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        assert!(matches!(
            parse_schedule("@date 2026-03-29 02:30:00", tz),
            Ok(Schedule::Once { at_ms: None })
        ));
    }
}
