//! Schedules: cron expressions (through `croner`), `@every <duration>` and one-shot
//! `@date YYYY-MM-DD HH:MM:SS`, all evaluated in one IANA time zone (through `chrono-tz`).
//!
//! Every instant here is milliseconds since the Unix epoch (UTC), like `ctx.now_ms`.

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Timelike};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// The cron dialect: an optional leading seconds field (5 fields = minute-first, as in
/// standard cron; 6 fields = seconds-first, as CronHPA/go-cron), no year field, `N/step`
/// read as `N-max/step` (as the CronHPA documentation promises), `?` as `*`, names for
/// months and weekdays, `@yearly`/`@annually`/`@monthly`/`@weekly`/`@daily`/`@hourly`.
fn parser() -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .sloppy_ranges(true)
        .build()
}

/// Parse a cron expression (not `@every`/`@date`), including the nicknames. An expression
/// that can never fire (such as `0 0 0 31 2 *`) is an error.
pub fn parse_cron(expr: &str) -> Result<Cron, String> {
    let trimmed = expr.trim();
    // go-cron knows `@midnight`; croner does not.
    let text = if trimmed.eq_ignore_ascii_case("@midnight") {
        "@daily"
    } else {
        trimmed
    };
    let cron = parser()
        .parse(text)
        .map_err(|e| format!("invalid cron expression '{expr}': {e}"))?;
    // Without a year field a pattern repeats every 400 years, so one that has no
    // firing between 2000 and croner's search limit (year 5000) never fires at all.
    let reference = chrono::Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0);
    let fires = match reference {
        LocalResult::Single(r) => cron.find_next_occurrence(&r, true).is_ok(),
        _ => true,
    };
    if !fires {
        return Err(format!(
            "cron expression '{expr}' never fires (no such day in any year)"
        ));
    }
    Ok(cron)
}

/// What a job's `schedule` says.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// A cron expression, evaluated in the policy's time zone.
    Cron(Box<Cron>),
    /// `@every D`: at `anchor + k x D` for k >= 1 (anchor: the policy's `start`, or the
    /// Unix epoch).
    Every { period_ms: i64 },
    /// `@date ...`: once, at this instant.
    Once { at_ms: i64 },
}

/// The longest `@every` period accepted (the lookback horizon: a longer period could
/// never be found by the backward search).
pub const MAX_EVERY_MS: i64 = crate::LOOKBACK_DAYS * DAY_MS;

/// Parse a job's `schedule` text in time zone `tz`.
pub fn parse_schedule(text: &str, tz: Tz) -> Result<Schedule, String> {
    let t = text.trim();
    if let Some(rest) = strip_prefix_ci(t, "@every") {
        let period_ms = parse_every_ms(rest.trim())
            .map_err(|e| format!("invalid @every duration '{}': {e}", rest.trim()))?;
        if period_ms > MAX_EVERY_MS {
            return Err(format!(
                "@every duration '{}' is longer than the lookback horizon of {} days",
                rest.trim(),
                crate::LOOKBACK_DAYS
            ));
        }
        return Ok(Schedule::Every { period_ms });
    }
    if let Some(rest) = strip_prefix_ci(t, "@date") {
        let naive = parse_local_datetime(rest.trim()).ok_or_else(|| {
            format!(
                "invalid @date '{}': expected 'YYYY-MM-DD HH:MM:SS' (or 'YYYY-MM-DD HH:MM')",
                rest.trim()
            )
        })?;
        let at_ms = resolve_local(tz, naive)
            .ok_or_else(|| format!("@date '{}' does not exist in time zone {tz}", rest.trim()))?;
        return Ok(Schedule::Once { at_ms });
    }
    parse_cron(t).map(|c| Schedule::Cron(Box::new(c)))
}

/// `prefix` at the start of `s` (ASCII case-insensitive), followed by whitespace.
fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    let rest = s.get(prefix.len()..)?;
    if head.eq_ignore_ascii_case(prefix) && (rest.is_empty() || rest.starts_with(char::is_whitespace)) {
        Some(rest)
    } else {
        None
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

/// The instant a wall-clock time in `tz` stands for: itself when unique; the earlier of
/// the two in a repeated hour; the first instant after the gap when the clock skips it
/// (the same rule croner applies to a fixed-time job).
pub fn resolve_local(tz: Tz, naive: NaiveDateTime) -> Option<i64> {
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(d) => Some(d.timestamp_millis()),
        LocalResult::Ambiguous(earlier, _) => Some(earlier.timestamp_millis()),
        LocalResult::None => {
            // Skipped wall-clock time: walk forward minute by minute (transitions sit on
            // whole minutes) to the first time that exists, at most one day.
            let base = naive.with_second(0)?.with_nanosecond(0)?;
            (1..=1440).find_map(|m| match tz.from_local_datetime(&(base + Duration::minutes(m))) {
                LocalResult::Single(d) => Some(d.timestamp_millis()),
                LocalResult::Ambiguous(e, _) => Some(e.timestamp_millis()),
                LocalResult::None => None,
            })
        }
    }
}

/// `ms` as a date-time in `tz`.
pub fn local(tz: Tz, ms: i64) -> Option<DateTime<Tz>> {
    tz.timestamp_millis_opt(ms).single()
}

/// The first instant of the local calendar day that contains `ms`.
pub fn day_start(tz: Tz, ms: i64) -> Option<i64> {
    let date = local(tz, ms)?.date_naive();
    resolve_local(tz, date.and_hms_opt(0, 0, 0)?)
}

/// The first instant of the local calendar day after the one that contains `ms`.
pub fn next_day_start(tz: Tz, ms: i64) -> Option<i64> {
    let date = local(tz, ms)?.date_naive().succ_opt()?;
    resolve_local(tz, date.and_hms_opt(0, 0, 0)?)
}

/// Whether an `excludeDates` expression covers calendar day `date`: its day-of-month,
/// month and day-of-week fields (with cron's rule: when both day fields are restricted,
/// either may match) match the day. Its second, minute and hour fields always match some
/// time of the day, so they do not narrow it.
pub fn day_excluded(cron: &Cron, date: NaiveDate) -> bool {
    let weekday = croner::Weekday::from_days_from_sunday(date.weekday().num_days_from_sunday());
    let p = &cron.pattern;
    p.month_match(date.month()).unwrap_or(false)
        && p.year_match(date.year()).unwrap_or(false)
        && p.day_match(date.year(), date.month(), date.day(), weekday)
            .unwrap_or(false)
}

impl Schedule {
    /// The latest firing at or before `t` (no exclusions, no `start`). `anchor_ms` is
    /// the `@every` anchor.
    pub fn prev_at_or_before(&self, tz: Tz, anchor_ms: i64, t: i64) -> Option<i64> {
        match self {
            Schedule::Cron(cron) => {
                let at = local(tz, t)?;
                cron.find_previous_occurrence(&at, true)
                    .ok()
                    .map(|d| d.timestamp_millis())
            }
            Schedule::Every { period_ms } => {
                let since = t.checked_sub(anchor_ms)?;
                let k = since.div_euclid(*period_ms);
                (k >= 1).then(|| anchor_ms + k * period_ms)
            }
            Schedule::Once { at_ms } => (*at_ms <= t).then_some(*at_ms),
        }
    }

    /// The first firing strictly after `t` (no exclusions, no `start`).
    pub fn next_after(&self, tz: Tz, anchor_ms: i64, t: i64) -> Option<i64> {
        match self {
            Schedule::Cron(cron) => {
                let at = local(tz, t)?;
                // croner steps off `t`'s whole second first, so the answer is > t.
                cron.find_next_occurrence(&at, false)
                    .ok()
                    .map(|d| d.timestamp_millis())
                    .filter(|&f| f > t)
            }
            Schedule::Every { period_ms } => {
                let since = t.checked_sub(anchor_ms)?;
                let k = (since.div_euclid(*period_ms) + 1).max(1);
                anchor_ms.checked_add(k.checked_mul(*period_ms)?)
            }
            Schedule::Once { at_ms } => (*at_ms > t).then_some(*at_ms),
        }
    }
}

/// An `@every` period as whole milliseconds: any [`wasmscaler_sdk::Duration`] string (a Go
/// `time.ParseDuration` string such as `1h30m10s`, `90m`, `1.5h`, or `7d`, `45`), but a
/// positive whole number of seconds, at least `1s`.
pub fn parse_every_ms(text: &str) -> Result<i64, String> {
    let ms = wasmscaler_sdk::Duration::parse(text)?.ms();
    if ms < 0 {
        return Err("must be positive".into());
    }
    if ms < 1000 {
        return Err("must be at least 1s".into());
    }
    if ms % 1000 != 0 {
        return Err("must be a whole number of seconds".into());
    }
    Ok(ms)
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
    fn every_periods() {
        assert_eq!(parse_every_ms("30m"), Ok(1_800_000));
        assert_eq!(parse_every_ms("1h30m10s"), Ok(5_410_000));
        assert_eq!(parse_every_ms("1.5h"), Ok(5_400_000));
        assert_eq!(
            parse_every_ms("1500ms"),
            Err("must be a whole number of seconds".into())
        );
        assert_eq!(parse_every_ms("2000ms"), Ok(2000));
        assert!(parse_every_ms("500ms").is_err());
        assert!(parse_every_ms("0").is_err());
        assert!(parse_every_ms("-5m").is_err());
        assert_eq!(parse_every_ms("1000000000ns"), Ok(1000));
        // Wider than Go's syntax: a bare number is seconds, and days and weeks are units.
        assert_eq!(parse_every_ms("5"), Ok(5000));
        assert_eq!(parse_every_ms("5d"), Ok(5 * DAY_MS));
        assert_eq!(parse_every_ms("1w"), Ok(7 * DAY_MS));
        assert!(parse_every_ms("").is_err());
        assert!(parse_every_ms("1h30").is_err());
    }

    #[test]
    fn durations_print_like_go() {
        assert_eq!(fmt_duration(5_410_000), "1h30m10s");
        assert_eq!(fmt_duration(61_000), "1m1s");
        assert_eq!(fmt_duration(500), "0.500s");
        assert_eq!(fmt_duration(0), "0s");
    }

    #[test]
    fn five_fields_are_minute_first_six_are_seconds_first() {
        let utc = chrono::Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .unwrap();
        // "30 8 * * *": 08:30:00 daily.
        let c = parse_cron("30 8 * * *").unwrap();
        let n = c.find_next_occurrence(&utc, false).unwrap();
        assert_eq!((n.hour(), n.minute(), n.second()), (8, 30, 0));
        // "30 8 * * * *": second 30 of minute 8 of every hour -> 00:08:30.
        let c = parse_cron("30 8 * * * *").unwrap();
        let n = c.find_next_occurrence(&utc, false).unwrap();
        assert_eq!((n.hour(), n.minute(), n.second()), (0, 8, 30));
    }

    #[test]
    fn n_slash_step_means_n_to_max() {
        // Minutes "3/15" = 3-59/15 = 3, 18, 33, 48.
        let c = parse_cron("0 3/15 * * * *").unwrap();
        let t = chrono::Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 20, 0)
            .single()
            .unwrap();
        assert_eq!(c.find_next_occurrence(&t, false).unwrap().minute(), 33);
    }

    #[test]
    fn never_firing_and_malformed_expressions_are_rejected() {
        assert!(parse_cron("0 0 0 31 2 *").unwrap_err().contains("never fires"));
        assert!(parse_cron("0 0 25 * * *").is_err());
        assert!(parse_cron("* * *").is_err());
        assert!(parse_cron("0 0 0 1 1 * 2030").is_err(), "no year field");
        assert!(parse_cron("@reboot").is_err());
        assert!(parse_cron("@midnight").is_ok());
    }
}
