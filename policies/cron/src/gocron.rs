//! go-cron's dialect and its `Next`, as kubernetes-cronhpa-controller runs them
//! (`github.com/ringtail/go-cron`, the fork of robfig/cron v1 the controller vendors):
//! the same grammar (what it accepts and refuses), the same `*`/`?` rule for the day
//! fields, and the same walk over wall-clock time, including Go's `time.Date` choices in
//! daylight-saving gaps and repeats, so every firing lands on the instant the
//! controller's would. The conformance test (tests/conformance/cron.rs) compares it with
//! the Go code itself.
//!
//! Instants here are whole seconds since the Unix epoch.

use chrono::{DateTime, Datelike, NaiveDate, Offset, TimeZone, Timelike};
use chrono_tz::Tz;

/// go-cron's marker for a field written as `*` or `?` (with or without a range or step):
/// when either day field has it, both day fields must match (else either may).
const STAR: u64 = 1 << 63;

/// A parsed cron expression: one bit per allowed value of each field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    pub second: u64,
    pub minute: u64,
    pub hour: u64,
    pub dom: u64,
    pub month: u64,
    pub dow: u64,
}

struct Bounds {
    min: u32,
    max: u32,
    names: &'static [(&'static str, u32)],
}

const SECONDS: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const MINUTES: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
};
const DOM: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
};
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        ("jan", 1),
        ("feb", 2),
        ("mar", 3),
        ("apr", 4),
        ("may", 5),
        ("jun", 6),
        ("jul", 7),
        ("aug", 8),
        ("sep", 9),
        ("oct", 10),
        ("nov", 11),
        ("dec", 12),
    ],
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &[
        ("sun", 0),
        ("mon", 1),
        ("tue", 2),
        ("wed", 3),
        ("thu", 4),
        ("fri", 5),
        ("sat", 6),
    ],
};

/// What a go-cron schedule text is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Spec(Spec),
    /// `@every D`: D rounded as go-cron's `Every` does (at least 1 s, whole seconds).
    Every {
        period_s: i64,
    },
    /// `@date YYYY-MM-DD HH:MM:SS`: go-cron's spec for that month, day and time (every
    /// year) and the year written.
    Date {
        spec: Spec,
        year: i32,
    },
}

/// Parses like go-cron's `Parse` (6 fields seconds-first; 5 fields = second minute hour
/// day-of-month month, day-of-week `*`) or, with `five_field_minute_first`, reads 5 fields
/// like its `ParseStandard` (minute hour day-of-month month day-of-week, second 0).
/// Descriptors (`@yearly` ... `@every`, `@date`) are matched case-sensitively, as go-cron
/// does.
pub fn parse(spec: &str, five_field_minute_first: bool) -> Result<Parsed, String> {
    if spec.is_empty() {
        return Err("empty spec string".into());
    }
    if spec.starts_with('@') {
        return descriptor(spec);
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    let f: [&str; 6] = match fields.len() {
        5 if five_field_minute_first => ["0", fields[0], fields[1], fields[2], fields[3], fields[4]],
        5 => [fields[0], fields[1], fields[2], fields[3], fields[4], "*"],
        6 => [fields[0], fields[1], fields[2], fields[3], fields[4], fields[5]],
        n => return Err(format!("expected 5 or 6 fields, found {n}: {spec}")),
    };
    Ok(Parsed::Spec(Spec {
        second: field(f[0], &SECONDS)?,
        minute: field(f[1], &MINUTES)?,
        hour: field(f[2], &HOURS)?,
        dom: field(f[3], &DOM)?,
        month: field(f[4], &MONTHS)?,
        dow: field(f[5], &DOW)?,
    }))
}

/// A comma-separated list of ranges (empty items are dropped, as Go's FieldsFunc does).
fn field(text: &str, b: &Bounds) -> Result<u64, String> {
    let mut bits = 0;
    for expr in text.split(',').filter(|s| !s.is_empty()) {
        bits |= range(expr, b)?;
    }
    Ok(bits)
}

/// `*`, `?`, `a`, `a-b`, each with an optional `/step`; `a/step` means `a-max/step`.
/// A `*` or `?` before a `-` takes the whole range (go-cron ignores the rest: `*-5` = `*`).
fn range(expr: &str, b: &Bounds) -> Result<u64, String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_and_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_and_high.len() == 1;
    let (start, mut end, extra) = if low_and_high[0] == "*" || low_and_high[0] == "?" {
        (u64::from(b.min), u64::from(b.max), STAR)
    } else {
        let start = int_or_name(low_and_high[0], b.names)?;
        let end = match low_and_high.len() {
            1 => start,
            2 => int_or_name(low_and_high[1], b.names)?,
            _ => return Err(format!("too many hyphens: {expr}")),
        };
        (start, end, 0)
    };
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = non_negative_int(range_and_step[1])?;
            if single {
                end = u64::from(b.max);
            }
            step
        }
        _ => return Err(format!("too many slashes: {expr}")),
    };
    if start < u64::from(b.min) {
        return Err(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            b.min
        ));
    }
    if end > u64::from(b.max) {
        return Err(format!("end of range ({end}) above maximum ({}): {expr}", b.max));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    let mut bits = 0u64;
    let mut i = start;
    while i <= end {
        bits |= 1 << i;
        i += step;
    }
    Ok(bits | extra)
}

fn int_or_name(expr: &str, names: &[(&str, u32)]) -> Result<u64, String> {
    let lower = expr.to_ascii_lowercase();
    if let Some((_, v)) = names.iter().find(|(n, _)| *n == lower) {
        return Ok(u64::from(*v));
    }
    non_negative_int(expr)
}

/// Go's `strconv.Atoi` (an optional sign, decimal digits, within int64), then not negative.
fn non_negative_int(expr: &str) -> Result<u64, String> {
    let digits = expr.strip_prefix(['+', '-']).unwrap_or(expr);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!("failed to parse int from {expr}"));
    }
    let v: i64 = expr
        .parse()
        .map_err(|_| format!("failed to parse int from {expr}: out of range"))?;
    u64::try_from(v).map_err(|_| format!("negative number ({v}) not allowed: {expr}"))
}

const ALL_DOW: u64 = 0b111_1111 | STAR;

fn at_midnight(dom: u64, month: u64, dow: u64) -> Spec {
    Spec {
        second: 1,
        minute: 1,
        hour: 1,
        dom,
        month,
        dow,
    }
}

fn descriptor(d: &str) -> Result<Parsed, String> {
    let all_dom = ((1u64 << 32) - 2) | STAR;
    let all_months = ((1u64 << 13) - 2) | STAR;
    let spec = match d {
        "@yearly" | "@annually" => at_midnight(1 << 1, 1 << 1, ALL_DOW),
        "@monthly" => at_midnight(1 << 1, all_months, ALL_DOW),
        "@weekly" => at_midnight(all_dom, all_months, 1),
        "@daily" | "@midnight" => at_midnight(all_dom, all_months, ALL_DOW),
        "@hourly" => Spec {
            hour: ((1u64 << 24) - 1) | STAR,
            ..at_midnight(all_dom, all_months, ALL_DOW)
        },
        _ => {
            if let Some(rest) = d.strip_prefix("@every ") {
                let ns = go_parse_duration(rest).map_err(|e| format!("failed to parse duration {d}: {e}"))?;
                // go-cron's Every: at least 1 s, fractions of a second dropped.
                let ns = ns.max(1_000_000_000);
                return Ok(Parsed::Every {
                    period_s: ns / 1_000_000_000,
                });
            }
            if let Some(rest) = d.strip_prefix("@date ") {
                let (date, h, mi, s) = go_parse_date_time(rest)
                    .ok_or_else(|| format!("failed to parse date {d}: expected 'YYYY-MM-DD HH:MM:SS'"))?;
                return Ok(Parsed::Date {
                    spec: Spec {
                        second: 1 << s,
                        minute: 1 << mi,
                        hour: 1 << h,
                        dom: 1 << date.day(),
                        month: 1 << date.month(),
                        dow: ALL_DOW,
                    },
                    year: date.year(),
                });
            }
            return Err(format!("unrecognized descriptor: {d}"));
        }
    };
    Ok(Parsed::Spec(spec))
}

/// Go's `time.Parse("2006-01-02 15:04:05", s)`: a 4-digit year, 2-digit month, day,
/// minute and second, a 1- or 2-digit hour, nothing else.
fn go_parse_date_time(s: &str) -> Option<(NaiveDate, u32, u32, u32)> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<u32> {
        let part = b.get(from..from + len)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0, |a, c| a * 10 + u32::from(c - b'0')))
    };
    let year = num(0, 4)?;
    (b.get(4) == Some(&b'-') && b.get(7) == Some(&b'-') && b.get(10) == Some(&b' ')).then_some(())?;
    let (month, day) = (num(5, 2)?, num(8, 2)?);
    let hour_len = if b.get(12).is_some_and(u8::is_ascii_digit) {
        2
    } else {
        1
    };
    let hour = num(11, hour_len)?;
    let p = 11 + hour_len;
    (b.get(p) == Some(&b':') && b.get(p + 3) == Some(&b':') && b.len() == p + 6).then_some(())?;
    let (minute, second) = (num(p + 1, 2)?, num(p + 4, 2)?);
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    Some((date, hour, minute, second))
}

/// Go's `time.ParseDuration`, in nanoseconds: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, units
/// ns, us, µs, μs, ms, s, m, h; `0` alone needs no unit.
pub fn go_parse_duration(orig: &str) -> Result<i64, String> {
    let bad = || format!("invalid duration {orig:?}");
    let mut s = orig;
    let mut neg = false;
    if let Some(rest) = s.strip_prefix('-') {
        neg = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        let c = s.as_bytes()[0];
        if !(c == b'.' || c.is_ascii_digit()) {
            return Err(bad());
        }
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let mut v: u64 = 0;
        for d in s[..int_len].bytes() {
            v = v
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(d - b'0')))
                .filter(|&v| v <= 1 << 63)
                .ok_or_else(bad)?;
        }
        let pre = int_len > 0;
        s = &s[int_len..];
        let (mut frac, mut scale, mut post) = (0u64, 1f64, false);
        if let Some(rest) = s.strip_prefix('.') {
            s = rest;
            let len = s.bytes().take_while(u8::is_ascii_digit).count();
            let mut overflow = false;
            for d in s[..len].bytes() {
                if overflow {
                    continue;
                }
                if frac > ((1u64 << 63) - 1) / 10 {
                    overflow = true;
                    continue;
                }
                let y = frac * 10 + u64::from(d - b'0');
                if y > 1 << 63 {
                    overflow = true;
                    continue;
                }
                frac = y;
                scale *= 10.0;
            }
            post = len > 0;
            s = &s[len..];
        }
        if !pre && !post {
            return Err(bad());
        }
        let unit_len = s
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(s.len(), |(i, _)| i);
        if unit_len == 0 {
            return Err(format!("missing unit in duration {orig:?}"));
        }
        let unit: u64 = match &s[..unit_len] {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            u => return Err(format!("unknown unit {u:?} in duration {orig:?}")),
        };
        s = &s[unit_len..];
        if v > (1 << 63) / unit {
            return Err(bad());
        }
        v *= unit;
        if frac > 0 {
            v += (frac as f64 * (unit as f64 / scale)) as u64;
            if v > 1 << 63 {
                return Err(bad());
            }
        }
        total = total.checked_add(v).filter(|&t| t <= 1 << 63).ok_or_else(bad)?;
    }
    if neg {
        return Ok((total as i128).wrapping_neg() as i64);
    }
    i64::try_from(total).map_err(|_| bad())
}

/// The UTC offset of `tz` at instant `s`, in seconds.
fn offset_at(tz: Tz, s: i64) -> Option<i64> {
    let utc = DateTime::from_timestamp(s, 0)?.naive_utc();
    Some(i64::from(
        tz.offset_from_utc_datetime(&utc).fix().local_minus_utc(),
    ))
}

/// Local wall-clock fields of an instant.
#[derive(Debug, Clone, Copy)]
struct Civil {
    year: i32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    weekday: u32,
}

fn civil(tz: Tz, s: i64) -> Option<Civil> {
    let local = DateTime::from_timestamp(s.checked_add(offset_at(tz, s)?)?, 0)?.naive_utc();
    Some(Civil {
        year: local.year(),
        month: local.month(),
        day: local.day(),
        hour: local.hour(),
        minute: local.minute(),
        second: local.second(),
        weekday: local.weekday().num_days_from_sunday(),
    })
}

/// Go's `time.Date(year, month, day, hour, min, sec, 0, loc)`: month and day overflow
/// roll over; a wall-clock time that does not exist or exists twice takes the offset Go
/// picks (the zone in force at the wall-clock reading taken as UTC, corrected once).
pub fn go_date(tz: Tz, year: i32, month: i64, day: i64, hour: i64, min: i64, sec: i64) -> Option<i64> {
    let m0 = month - 1;
    let y = i32::try_from(i64::from(year) + m0.div_euclid(12)).ok()?;
    let m = u32::try_from(m0.rem_euclid(12) + 1).ok()?;
    let first = NaiveDate::from_ymd_opt(y, m, 1)?;
    let days = i64::from(first.num_days_from_ce()) - 719_163 + day - 1;
    let unix = days * 86_400 + hour * 3600 + min * 60 + sec;
    let utc = unix - offset_at(tz, unix)?;
    Some(unix - offset_at(tz, utc)?)
}

fn add_date(tz: Tz, s: i64, months: i64, days: i64) -> Option<i64> {
    let c = civil(tz, s)?;
    go_date(
        tz,
        c.year,
        i64::from(c.month) + months,
        i64::from(c.day) + days,
        i64::from(c.hour),
        i64::from(c.minute),
        i64::from(c.second),
    )
}

impl Spec {
    /// Whether local day `c` is one of the spec's days (month, then go-cron's day rule).
    pub fn day_matches(&self, month: u32, day: u32, weekday: u32) -> bool {
        if self.month & (1 << month) == 0 {
            return false;
        }
        let dom = self.dom & (1 << day) != 0;
        let dow = self.dow & (1 << weekday) != 0;
        if self.dom & STAR != 0 || self.dow & STAR != 0 {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// go-cron's `SpecSchedule.Next`: the first firing after `t` (the whole second after
    /// it, or later), searched up to five years ahead; `None` past that.
    pub fn next(&self, tz: Tz, t: i64) -> Option<i64> {
        let mut t = t.checked_add(1)?;
        let mut added = false;
        let year_limit = civil(tz, t)?.year + 5;
        'wrap: loop {
            let mut c = civil(tz, t)?;
            if c.year > year_limit {
                return None;
            }
            while self.month & (1 << c.month) == 0 {
                if !added {
                    added = true;
                    t = go_date(tz, c.year, i64::from(c.month), 1, 0, 0, 0)?;
                }
                t = add_date(tz, t, 1, 0)?;
                c = civil(tz, t)?;
                if c.month == 1 {
                    continue 'wrap;
                }
            }
            while !self.day_bits_match(c.day, c.weekday) {
                if !added {
                    added = true;
                    t = go_date(tz, c.year, i64::from(c.month), i64::from(c.day), 0, 0, 0)?;
                }
                t = add_date(tz, t, 0, 1)?;
                c = civil(tz, t)?;
                if c.day == 1 {
                    continue 'wrap;
                }
            }
            while self.hour & (1 << c.hour) == 0 {
                if !added {
                    added = true;
                    t = go_date(
                        tz,
                        c.year,
                        i64::from(c.month),
                        i64::from(c.day),
                        i64::from(c.hour),
                        0,
                        0,
                    )?;
                }
                t += 3600;
                c = civil(tz, t)?;
                if c.hour == 0 {
                    continue 'wrap;
                }
            }
            while self.minute & (1 << c.minute) == 0 {
                if !added {
                    added = true;
                    t -= t.rem_euclid(60);
                }
                t += 60;
                c = civil(tz, t)?;
                if c.minute == 0 {
                    continue 'wrap;
                }
            }
            while self.second & (1 << c.second) == 0 {
                added = true;
                t += 1;
                c = civil(tz, t)?;
                if c.second == 0 {
                    continue 'wrap;
                }
            }
            return Some(t);
        }
    }

    fn day_bits_match(&self, day: u32, weekday: u32) -> bool {
        let dom = self.dom & (1 << day) != 0;
        let dow = self.dow & (1 << weekday) != 0;
        if self.dom & STAR != 0 || self.dow & STAR != 0 {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The latest firing at or before `t` and after `floor` (both whole seconds): the
    /// point the chain of `next` reaches last, found by doubling the distance back from
    /// `t` until `next` from there lands at or before `t`, then bisecting.
    pub fn prev_at_or_before(&self, tz: Tz, t: i64, floor: i64) -> Option<i64> {
        let lands = |x: i64| self.next(tz, x).filter(|&f| f <= t);
        // `good`: next(good) <= t; `bad`: next(bad) > t (or none).
        let mut bad = t;
        let mut w = 1i64;
        let good = loop {
            let x = t.saturating_sub(w).max(floor.saturating_sub(1));
            if lands(x).is_some() {
                break x;
            }
            if x <= floor.saturating_sub(1) {
                return None;
            }
            bad = x;
            w = w.saturating_mul(2);
        };
        let mut good = good;
        while bad - good > 1 {
            let mid = good + (bad - good) / 2;
            if lands(mid).is_some() {
                good = mid;
            } else {
                bad = mid;
            }
        }
        lands(good)
    }
}

/// `civil` for callers outside: the local (year, month, day, weekday) of an instant.
pub fn local_day(tz: Tz, s: i64) -> Option<(i32, u32, u32, u32)> {
    let c = civil(tz, s)?;
    Some((c.year, c.month, c.day, c.weekday))
}

/// Go's local midnight of the day of `s` (`days` = 0) or of a later day.
pub fn midnight(tz: Tz, s: i64, days: i64) -> Option<i64> {
    let c = civil(tz, s)?;
    go_date(tz, c.year, i64::from(c.month), i64::from(c.day) + days, 0, 0, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> Spec {
        match parse(text, true) {
            Ok(Parsed::Spec(s)) => s,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn a_star_with_a_step_in_a_day_field_makes_both_day_fields_match() {
        // go-cron sets the star bit for `*/1`: `0 0 8 15 * */1` is the 15th only (croner
        // read it as "the 15th or any weekday").
        let s = spec("0 0 8 15 * */1");
        assert!(s.day_matches(2, 15, 0));
        assert!(!s.day_matches(2, 10, 2));
        // Two restricted fields: either matches.
        let s = spec("0 0 8 15 * MON");
        assert!(s.day_matches(2, 9, 1) && s.day_matches(2, 15, 0));
    }

    #[test]
    fn grammar_is_go_crons() {
        assert_eq!(spec("0 0 * * * ?"), spec("0 0 * * * *"));
        assert_eq!(spec("? 0 * * * *"), spec("* 0 * * * *"));
        assert_eq!(spec("0 *-5 * * * *"), spec("0 * * * * *"));
        assert!(parse("@Daily", true).is_err());
        assert!(parse("0 0 0 * * 7", true).is_err(), "day-of-week is 0-6");
        assert!(parse("0 0 0 * * L", true).is_err());
        assert!(parse("0 0 0 1#2 * *", true).is_err());
        assert!(parse("0 0 0 5-3 * *", true).is_err());
        assert!(parse("0 0 0 * * */0", true).is_err());
        assert_eq!(spec("0 0 0 1,,2 * *"), spec("0 0 0 1,2 * *"));
        assert_eq!(spec("0 +5 0 * * *"), spec("0 5 0 * * *"));
        assert!(parse(" @daily", true).is_err());
        assert!(parse("@every 5", true).is_err(), "Go durations need a unit");
        assert_eq!(parse("@every 1500ms", true), Ok(Parsed::Every { period_s: 1 }));
        assert_eq!(parse("@every 10ms", true), Ok(Parsed::Every { period_s: 1 }));
        assert_eq!(parse("@every 1.5h", true), Ok(Parsed::Every { period_s: 5400 }));
        assert!(parse("@date 2026-01-01 06:00", true).is_err());
        assert!(matches!(
            parse("@date 2026-01-01 6:00:00", true),
            Ok(Parsed::Date { year: 2026, .. })
        ));
        // 5 fields: minute-first with the switch, go-cron's seconds-first without.
        assert_eq!(spec("30 8 * * *"), spec("0 30 8 * * *"));
        assert_eq!(parse("30 8 * * *", false), Ok(Parsed::Spec(spec("30 8 * * * *"))));
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_parse_duration("1h30m10s"), Ok(5_410_000_000_000));
        assert_eq!(go_parse_duration("0"), Ok(0));
        assert_eq!(go_parse_duration("-5m"), Ok(-300_000_000_000));
        assert_eq!(go_parse_duration(".5s"), Ok(500_000_000));
        assert!(go_parse_duration("1d").is_err());
        assert!(go_parse_duration("").is_err());
        assert!(go_parse_duration("1h30").is_err());
        assert!(go_parse_duration("5 m").is_err());
    }

    #[test]
    fn next_follows_go_time_in_dst() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        // 2026-03-29 02:30 does not exist in Berlin: go-cron skips the day.
        let s = spec("0 30 2 * * *");
        let before = 1_774_742_400; // 2026-03-29 00:00 UTC
        let n = s.next(berlin, before).unwrap();
        assert_eq!(n, 1_774_830_600, "2026-03-30 02:30 CEST = 00:30 UTC");
        // New York 2026-11-01: 01:30 happens twice and go-cron fires at both.
        let ny: Tz = "America/New_York".parse().unwrap();
        let s = spec("0 30 1 * * *");
        let first = s.next(ny, 1_793_505_600).unwrap(); // from 2026-11-01 04:00 UTC (00:00 EDT)
        assert_eq!(first, 1_793_511_000, "01:30 EDT = 05:30 UTC");
        assert_eq!(s.next(ny, first), Some(first + 3600), "01:30 EST");
    }

    #[test]
    fn prev_is_the_chains_latest_point() {
        let tz: Tz = "Australia/Sydney".parse().unwrap();
        let s = spec("0 */20 9-17 * * MON-FRI");
        let mut t = 1_790_000_000;
        for _ in 0..50 {
            let p = s.prev_at_or_before(tz, t, t - 40 * 86_400).unwrap();
            assert!(p <= t);
            assert!(s.next(tz, p).unwrap() > t, "no firing between {p} and {t}");
            assert_eq!(s.next(tz, p - 1), Some(p));
            t = p - 1 + 977;
        }
    }
}
