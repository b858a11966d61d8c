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
    if utc_alias(tz) {
        // chrono-tz's lookup would say 0 too (tested), after two date conversions.
        return Some(0);
    }
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
    let local = s.checked_add(offset_at(tz, s)?)?;
    let days = local.div_euclid(86_400);
    if days.abs() > 50_000_000 {
        // ~137,000 years out: chrono's own conversion (and its range limit).
        return civil_by_chrono(local);
    }
    let (year, month, day) = date_of_days(days);
    let secs = local.rem_euclid(86_400) as u32;
    Some(Civil {
        year,
        month,
        day,
        hour: secs / 3600,
        minute: secs / 60 % 60,
        second: secs % 60,
        // 1970-01-01 was a Thursday.
        weekday: (days + 4).rem_euclid(7) as u32,
    })
}

/// The proleptic Gregorian date of a day count from 1970-01-01 (H. Hinnant's
/// `civil_from_days`): what chrono computes, without its table walk (`civil` runs a few
/// hundred times per evaluation). `|days| <= 50,000,000`.
fn date_of_days(days: i64) -> (i32, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year as i32, month, day)
}

fn civil_by_chrono(local: i64) -> Option<Civil> {
    let local = DateTime::from_timestamp(local, 0)?.naive_utc();
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
        // With one offset at every instant, k steps of an hour (minute, second) move the
        // local hour (minute, second) k on: the stepping loops jump straight to where
        // go-cron's single steps stop (a matching value, or the wrap to 0).
        self.next_stepping(tz, t, fixed_offset(tz))
    }

    /// go-cron's `Next`; `fixed`: jump over the hours, minutes and seconds a single step
    /// would walk one at a time (only sound where the zone has one offset).
    fn next_stepping(&self, tz: Tz, t: i64, fixed: bool) -> Option<i64> {
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
                t += 3600 * steps(fixed, self.hour, c.hour, 23);
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
                t += 60 * steps(fixed, self.minute, c.minute, 59);
                c = civil(tz, t)?;
                if c.minute == 0 {
                    continue 'wrap;
                }
            }
            while self.second & (1 << c.second) == 0 {
                added = true;
                t += steps(fixed, self.second, c.second, 59);
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

    /// The latest firing at or before `t` and not before `floor` (both whole seconds): the
    /// point the chain of `next` reaches last, as [`Spec::prev_by_bisection`] finds it.
    ///
    /// Fast path, in a zone whose offset never changes (UTC, `Etc/*`): there `next(x)` is
    /// the first wall-clock match after `x` (within its five-year search), so it is
    /// non-decreasing, and the latest wall-clock match `g` at or before `t` is the
    /// bisection's answer once `next(g - 1) == g` and `next(g) > t` confirm it: every probe
    /// `x < g` lands at or before `g` (`g - x <= t - g`, well inside `next`'s five years:
    /// hence the 1500-day cap), every `x >= g` past `t`. Two `next` calls instead of ~35.
    /// Elsewhere `next` is not monotonic around daylight-saving changes (in Santiago a
    /// `@monthly` chain from 1 October 2000 skips 1 November: midnight of 15 October did
    /// not exist), and which chain the bisection follows depends on its probes, so only
    /// the bisection gives its answer.
    pub fn prev_at_or_before(&self, tz: Tz, t: i64, floor: i64) -> Option<i64> {
        if fixed_offset(tz)
            && let Some(g) = self.prev_wall_clock(tz, t, floor)
            && g <= t
            && t - g <= 1500 * 86_400
            && self.next(tz, g - 1) == Some(g)
            && self.next(tz, g).is_none_or(|n| n > t)
        {
            // Every firing at or before `t` is at or before `g`: one before `floor` is
            // none (the bisection's probes are all at or after `floor - 1`).
            return (g >= floor).then_some(g);
        }
        self.prev_by_bisection(tz, t, floor)
    }

    /// The latest local date and time at or before the local reading of `t` whose
    /// month, day, hour, minute and second the spec matches, searched back to `floor`'s
    /// day (at most [`PREV_WALL_CLOCK_DAYS`] days), as Go's `time.Date` reads it in `tz`.
    /// A candidate only: [`Spec::prev_at_or_before`] checks it against `next`.
    fn prev_wall_clock(&self, tz: Tz, t: i64, floor: i64) -> Option<i64> {
        let c = civil(tz, t)?;
        // Local days may be up to ~26 h off the UTC ones: two days of slack.
        let budget = (t.saturating_sub(floor) / 86_400).saturating_add(2);
        if budget > PREV_WALL_CLOCK_DAYS {
            return None;
        }
        let (mut year, mut month, mut day, mut weekday) = (c.year, c.month, c.day, c.weekday);
        let mut limit = (c.hour, c.minute, c.second);
        let mut back = 0i64;
        while back <= budget {
            if self.month & (1 << month) != 0 {
                if self.day_bits_match(day, weekday)
                    && let Some((h, mi, s)) = self.latest_time_at_or_before(limit)
                {
                    return go_date(
                        tz,
                        year,
                        i64::from(month),
                        i64::from(day),
                        i64::from(h),
                        i64::from(mi),
                        i64::from(s),
                    );
                }
                // The day before.
                back += 1;
                weekday = (weekday + 6) % 7;
                if day > 1 {
                    day -= 1;
                } else {
                    (year, month) = if month == 1 {
                        (year - 1, 12)
                    } else {
                        (year, month - 1)
                    };
                    day = days_in_month(year, month);
                }
            } else {
                // No day of this month matches: the last day of the month before.
                back += i64::from(day);
                weekday = (weekday + 7 - day % 7) % 7;
                (year, month) = if month == 1 {
                    (year - 1, 12)
                } else {
                    (year, month - 1)
                };
                day = days_in_month(year, month);
            }
            limit = (23, 59, 59);
        }
        None
    }

    /// The latest (hour, minute, second) at or before `limit` that the time fields match.
    fn latest_time_at_or_before(&self, (h, m, s): (u32, u32, u32)) -> Option<(u32, u32, u32)> {
        let last_minute = || {
            Some((
                highest_at_or_below(self.minute, 59)?,
                highest_at_or_below(self.second, 59)?,
            ))
        };
        let hour = highest_at_or_below(self.hour, h)?;
        if hour < h {
            let (mi, se) = last_minute()?;
            return Some((hour, mi, se));
        }
        if let Some(minute) = highest_at_or_below(self.minute, m) {
            if minute < m {
                return Some((h, minute, highest_at_or_below(self.second, 59)?));
            }
            if let Some(second) = highest_at_or_below(self.second, s) {
                return Some((h, m, second));
            }
            if let Some(earlier) = m
                .checked_sub(1)
                .and_then(|m1| highest_at_or_below(self.minute, m1))
            {
                return Some((h, earlier, highest_at_or_below(self.second, 59)?));
            }
        }
        let hour = highest_at_or_below(self.hour, h.checked_sub(1)?)?;
        let (mi, se) = last_minute()?;
        Some((hour, mi, se))
    }

    /// The bisection [`Spec::prev_at_or_before`] falls back to: doubling the distance back
    /// from `t` until `next` from there lands at or before `t`, then bisecting.
    pub fn prev_by_bisection(&self, tz: Tz, t: i64, floor: i64) -> Option<i64> {
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

/// How many single steps go-cron's loop over a field takes from value `v`: to the next
/// value `<= max` whose bit is set, or past `max` (the wrap to 0). One unless `fixed`
/// (the zone's offset never changes, so each step moves the field by one).
fn steps(fixed: bool, bits: u64, v: u32, max: u32) -> i64 {
    if !fixed {
        return 1;
    }
    let above = bits & !STAR & ((2u64 << max) - 1) & !((2u64 << v) - 1);
    let to = if above == 0 {
        max + 1
    } else {
        above.trailing_zeros()
    };
    i64::from(to - v)
}

/// How many days back [`Spec::prev_at_or_before`]'s wall-clock candidate is searched
/// (past that the bisection answers): the cron policy's lookback (1830 days) and slack.
const PREV_WALL_CLOCK_DAYS: i64 = 1840;

/// UTC under one of its tzdb names (all links to `Etc/UTC` or `Etc/GMT`).
fn utc_alias(tz: Tz) -> bool {
    use Tz::*;
    matches!(
        tz,
        UTC | Etc__UTC
            | UCT
            | Etc__UCT
            | Universal
            | Etc__Universal
            | Zulu
            | Etc__Zulu
            | GMT
            | Etc__GMT
            | GMT0
            | Etc__GMT0
            | GMTPlus0
            | Etc__GMTPlus0
            | GMTMinus0
            | Etc__GMTMinus0
            | Greenwich
            | Etc__Greenwich
    )
}

/// Zones whose UTC offset is the same at every instant: tzdb's `Etc/*` zones (UTC and
/// `Etc/GMT+N`, no rules by definition) and their links outside `Etc/`.
pub fn fixed_offset(tz: Tz) -> bool {
    let name = tz.name();
    name.starts_with("Etc/")
        || matches!(
            name,
            "UTC" | "UCT" | "GMT" | "GMT0" | "GMT+0" | "GMT-0" | "Greenwich" | "Universal" | "Zulu"
        )
}

/// The highest value `<= v` (`v <= 59`) whose bit is set, ignoring the `*` marker.
fn highest_at_or_below(bits: u64, v: u32) -> Option<u32> {
    let masked = bits & ((2u64 << v) - 1) & !STAR;
    (masked != 0).then(|| 63 - masked.leading_zeros())
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 31,
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

    /// xorshift64*: a fixed, dependency-free sequence for the randomized comparisons.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn range(&mut self, lo: i64, hi: i64) -> i64 {
            lo + (self.next() % (hi - lo + 1) as u64) as i64
        }
    }

    /// A field: `*`, a value, a range, a list or a step, sometimes with names.
    fn random_field(rng: &mut Rng, lo: i64, hi: i64) -> String {
        let v = |rng: &mut Rng| rng.range(lo, hi);
        match rng.range(0, 9) {
            0 | 1 => "*".into(),
            2 | 3 => v(rng).to_string(),
            4 => {
                let (a, b) = (v(rng), v(rng));
                format!("{}-{}", a.min(b), a.max(b))
            }
            5 => format!("{},{}", v(rng), v(rng)),
            6 => format!("*/{}", rng.range(1, (hi - lo).max(1))),
            7 => format!("{}/{}", v(rng), rng.range(1, (hi - lo).max(1))),
            8 => "?".into(),
            _ => format!("{},{},{}", v(rng), v(rng), v(rng)),
        }
    }

    /// The fast path and the bisection agree: on random go-cron expressions in zones with
    /// daylight saving (north and south), half-hour and 45-minute offsets and historical
    /// changes, at random instants, instants near this zone's transitions, and firings
    /// themselves (plus or minus a second), with random floors (some after `t`).
    #[test]
    fn prev_fast_path_agrees_with_the_bisection() {
        let zones = [
            "UTC",
            "Etc/GMT-14",
            "Etc/GMT+5",
            "Europe/Berlin",
            "America/New_York",
            "Australia/Sydney",
            "Australia/Lord_Howe",
            "Asia/Kolkata",
            "Asia/Kathmandu",
            "Pacific/Chatham",
            "America/Santiago",
            "Europe/London",
            "Africa/Casablanca",
            "Pacific/Apia",
        ];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut fast, mut fixed, mut cases, mut some) = (0u32, 0u32, 0u32, 0u32);
        for i in 0..6000 {
            let tz: Tz = zones[i % zones.len()].parse().unwrap();
            let text = match rng.range(0, 12) {
                0 => "@daily".to_string(),
                1 => "@hourly".to_string(),
                2 => "@weekly".to_string(),
                3 => "@monthly".to_string(),
                _ => format!(
                    "{} {} {} {} {} {}",
                    if rng.range(0, 3) == 0 {
                        random_field(&mut rng, 0, 59)
                    } else {
                        "0".into()
                    },
                    random_field(&mut rng, 0, 59),
                    random_field(&mut rng, 0, 23),
                    if rng.range(0, 2) == 0 {
                        "*".into()
                    } else {
                        random_field(&mut rng, 1, 31)
                    },
                    if rng.range(0, 2) == 0 {
                        "*".into()
                    } else {
                        random_field(&mut rng, 1, 12)
                    },
                    if rng.range(0, 2) == 0 {
                        "*".into()
                    } else {
                        random_field(&mut rng, 0, 6)
                    },
                ),
            };
            let Ok(Parsed::Spec(s)) = parse(&text, false) else {
                continue;
            };
            // 1990 .. 2060, with a bias to the months and hours of DST changes.
            let mut t = rng.range(631_152_000, 2_840_000_000);
            if rng.range(0, 1) == 0 {
                let year = rng.range(1990, 2060) as i32;
                let month = [3, 4, 9, 10, 11][rng.range(0, 4) as usize];
                let Some(base) = go_date(tz, year, month, rng.range(1, 28), rng.range(0, 23), 0, 0) else {
                    continue;
                };
                t = base + rng.range(-7200, 7200);
            }
            if rng.range(0, 3) == 0
                && let Some(f) = s.next(tz, t)
            {
                t = f + rng.range(-1, 1);
            }
            let floor = match rng.range(0, 5) {
                0 => t + rng.range(0, 3 * 86_400),
                1 => t - rng.range(0, 40 * 86_400),
                _ => t - 1830 * 86_400,
            };
            cases += 1;
            let want = s.prev_by_bisection(tz, t, floor);
            let got = s.prev_at_or_before(tz, t, floor);
            assert_eq!(got, want, "'{text}' in {tz} at {t}, floor {floor}");
            some += u32::from(want.is_some());
            if fixed_offset(tz) {
                fixed += 1;
                fast += u32::from(s.prev_wall_clock(tz, t, floor).is_some_and(|g| {
                    g <= t && s.next(tz, g - 1) == Some(g) && s.next(tz, g).is_none_or(|n| n > t)
                }));
            }
        }
        assert!(
            cases > 4000 && some > cases / 2,
            "{cases} cases, {some} with a firing"
        );
        // The point of the fast path: almost every case in a fixed zone takes it.
        assert!(
            fixed > 1000 && fast > fixed * 4 / 5,
            "fast path taken in {fast} of {fixed} cases"
        );
    }

    #[test]
    fn next_jumps_like_single_steps() {
        let mut rng = Rng(0x5151_7e57_0bad_cafe);
        let zones = [
            "UTC",
            "Etc/GMT-14",
            "Etc/GMT+5",
            "Europe/Berlin",
            "Australia/Lord_Howe",
        ];
        let mut n = 0;
        for i in 0..20_000 {
            let tz: Tz = zones[i % zones.len()].parse().unwrap();
            let text = format!(
                "{} {} {} {} {} {}",
                random_field(&mut rng, 0, 59),
                random_field(&mut rng, 0, 59),
                random_field(&mut rng, 0, 23),
                if rng.range(0, 2) == 0 {
                    "*".into()
                } else {
                    random_field(&mut rng, 1, 31)
                },
                if rng.range(0, 3) == 0 {
                    random_field(&mut rng, 1, 12)
                } else {
                    "*".into()
                },
                if rng.range(0, 2) == 0 {
                    "*".into()
                } else {
                    random_field(&mut rng, 0, 6)
                },
            );
            let Ok(Parsed::Spec(s)) = parse(&text, false) else {
                continue;
            };
            let t = rng.range(631_152_000, 2_840_000_000);
            assert_eq!(
                s.next(tz, t),
                // One step at a time: what `next` did before it jumped.
                s.next_stepping(tz, t, false),
                "'{text}' in {tz} from {t}"
            );
            n += 1;
        }
        assert!(n > 15_000, "{n}");
    }

    #[test]
    fn the_day_arithmetic_is_chronos() {
        let mut rng = Rng(0x0123_4567_89ab_cdef);
        let check = |local: i64| {
            let fast = civil(Tz::UTC, local).unwrap();
            let slow = civil_by_chrono(local).unwrap();
            assert_eq!(
                (
                    fast.year,
                    fast.month,
                    fast.day,
                    fast.hour,
                    fast.minute,
                    fast.second,
                    fast.weekday
                ),
                (
                    slow.year,
                    slow.month,
                    slow.day,
                    slow.hour,
                    slow.minute,
                    slow.second,
                    slow.weekday
                ),
                "{local}"
            );
        };
        // Every day from 1600 to 2400 (leap rules of all kinds), at a random second.
        let mut day = -11_676_096i64 / 86_400 * 86_400 - 370 * 365 * 86_400;
        while day < 13_569_465_600 {
            check(day + rng.range(0, 86_399));
            check(day);
            day += 86_400;
        }
        // Random instants over the whole fast range, and its edges.
        for _ in 0..200_000 {
            check(rng.range(-50_000_000 * 86_400, 50_000_000 * 86_400));
        }
        for d in [-50_000_000i64, 50_000_000] {
            check(d * 86_400);
            check(d * 86_400 + 86_399);
        }
    }

    #[test]
    fn fixed_offset_zones_never_change_their_offset() {
        let mut n = 0;
        for tz in chrono_tz::TZ_VARIANTS
            .iter()
            .copied()
            .filter(|&tz| fixed_offset(tz))
        {
            n += 1;
            let first = offset_at(tz, -2_208_988_800);
            // 1900 .. 2100, every 10 days and a bit (not in step with any calendar).
            let mut s = -2_208_988_800i64;
            while s < 4_102_444_800 {
                assert_eq!(offset_at(tz, s), first, "{tz} at {s}");
                assert_eq!(first.map(|o| o % 3600), Some(0), "{tz}: whole hours");
                s += 864_007;
            }
        }
        assert!(n >= 30, "{n} fixed zones");
        // The UTC names skip the lookup: chrono-tz says 0 for them.
        let mut utc = 0;
        for tz in chrono_tz::TZ_VARIANTS.iter().copied().filter(|&tz| utc_alias(tz)) {
            utc += 1;
            assert!(fixed_offset(tz), "{tz}");
            for s in [-2_208_988_800i64, 0, 1_000_000_000, 4_102_444_800] {
                let utc_time = DateTime::from_timestamp(s, 0).unwrap().naive_utc();
                assert_eq!(
                    tz.offset_from_utc_datetime(&utc_time).fix().local_minus_utc(),
                    0,
                    "{tz}"
                );
            }
        }
        assert_eq!(utc, 18);
        assert!(fixed_offset(Tz::UTC) && !fixed_offset("Asia/Kolkata".parse().unwrap()));
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
