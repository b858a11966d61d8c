//! A duration in policy configuration: one parser, one serde form and one rendering that
//! every policy shares, so `"90s"` means the same thing (and prints the same way) in all
//! of them.
//!
//! Why not jiff's "friendly" format (`jiff::Span`'s `FromStr`): Knative's and cron's keys are
//! documented as Go `time.ParseDuration` strings, and configs are copied from Go tooling.
//! jiff 0.2.46 refuses Go forms such as `".5s"`, `"5.s"` and `"1.5h30m"` (a fraction before
//! the last term), and a bare number; this parser reads Go's grammar plus `d`/`w`.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// A span of time in whole milliseconds.
///
/// Configuration writes it as a number of seconds (`120`, `0.5`) or as a string of one or
/// more `<number><unit>` terms: `"2m"`, `"1h30m"`, `"0.5s"`, `"7d"`; units `w`, `d`, `h`,
/// `m`, `s`, `ms` (and Go's `us`/`µs`/`ns`). A string that is only a number is seconds too.
/// A leading `-` is kept: the type is signed so that a policy's own range check (which
/// names the key) reports a negative value; see [`non_negative`] for rejecting it while
/// deserializing. Parts finer than a millisecond are rounded to the nearest one.
///
/// `Display` prints what an operator reads: `2m`, `2m30s`, `1h1s`, `1.5s`, `250ms`, `0s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub i64);

/// The longest duration accepted, in milliseconds (about 31,700 years): far beyond any
/// configuration, and small enough that sums of a few durations cannot overflow an `i64`.
pub const MAX_MS: i64 = 1_000_000_000_000_000;

const NS_PER_MS: i128 = 1_000_000;
const NS_PER_S: i128 = 1_000 * NS_PER_MS;

/// Units a string may use, in nanoseconds.
const UNITS: [(&str, i128); 10] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", NS_PER_MS),
    ("s", NS_PER_S),
    ("m", 60 * NS_PER_S),
    ("h", 3_600 * NS_PER_S),
    ("d", 86_400 * NS_PER_S),
    ("w", 604_800 * NS_PER_S),
];

const UNIT_HINT: &str = "use ms, s, m, h, d or w";

impl Duration {
    pub const ZERO: Duration = Duration(0);

    pub const fn from_ms(ms: i64) -> Self {
        Duration(ms)
    }

    pub const fn from_secs(secs: i64) -> Self {
        Duration(secs.saturating_mul(1000))
    }

    /// Milliseconds, signed.
    pub const fn ms(self) -> i64 {
        self.0
    }

    /// Milliseconds for APIs that take a `u64` (a signal window); a negative duration is 0.
    pub const fn ms_u64(self) -> u64 {
        if self.0 < 0 { 0 } else { self.0 as u64 }
    }

    /// A number of seconds, rounded to the millisecond.
    pub fn from_secs_f64(secs: f64) -> Result<Self, String> {
        let ms = secs * 1000.0;
        if !(ms.is_finite() && ms.abs() <= MAX_MS as f64) {
            return Err(format!("{secs} is not a usable number of seconds"));
        }
        Ok(Duration(ms.round() as i64))
    }

    /// Parse `"1h30m"`, `"90s"`, `"0.5s"`, `"7d"`, `"-10s"` or `"45"` (seconds).
    pub fn parse(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err("empty duration; write e.g. \"2m\", \"90s\" or a number of seconds".into());
        }
        // A bare number reads as seconds, exactly as the numeric form does.
        if let Ok(secs) = trimmed.parse::<f64>() {
            return Self::from_secs_f64(secs);
        }
        let (negative, body) = match trimmed.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, trimmed.strip_prefix('+').unwrap_or(trimmed)),
        };
        let not_a_duration = || format!("'{text}' is not a duration like \"90s\", \"15m\" or \"1h30m\"");
        let mut rest = body.trim_start();
        if rest.is_empty() {
            return Err(not_a_duration());
        }
        // Summed in nanoseconds, exactly, so "0.1s" + "0.2s" is 300 ms and not 300.00000000000006.
        let mut total_ns: i128 = 0;
        while !rest.is_empty() {
            let number_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(rest.len());
            let (number, tail) = rest.split_at(number_len);
            if number.is_empty() || number == "." {
                return Err(not_a_duration());
            }
            let tail = tail.trim_start();
            let unit_len = tail
                .find(|c: char| c.is_ascii_digit() || c == '.' || c.is_whitespace())
                .unwrap_or(tail.len());
            let (unit, next) = tail.split_at(unit_len);
            if unit.is_empty() {
                return Err(format!("'{text}' lacks a unit after '{number}' ({UNIT_HINT})"));
            }
            let unit_ns = UNITS
                .iter()
                .find(|(name, _)| *name == unit)
                .map(|&(_, ns)| ns)
                .ok_or_else(|| format!("'{text}' has an unknown unit '{unit}' ({UNIT_HINT})"))?;
            let term =
                term_ns(number, unit_ns).ok_or_else(|| format!("'{text}' has a bad number '{number}'"))?;
            total_ns = total_ns
                .checked_add(term)
                .filter(|&t| t <= i128::from(MAX_MS) * NS_PER_MS)
                .ok_or_else(|| format!("'{text}' is too long"))?;
            rest = next.trim_start();
        }
        // Round half up to whole milliseconds; total_ns is bounded by MAX_MS, so it fits.
        let ms = ((total_ns + NS_PER_MS / 2) / NS_PER_MS) as i64;
        Ok(Duration(if negative { -ms } else { ms }))
    }
}

/// `number` (digits with at most one `.`) times `unit_ns`, exactly; `None` when the number
/// is malformed or absurdly long. Digits finer than a nanosecond are dropped.
fn term_ns(number: &str, unit_ns: i128) -> Option<i128> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    // 18 digits of weeks is still far below i128::MAX; longer is no duration anyone means.
    if whole.len() > 18 || fraction.contains('.') {
        return None;
    }
    let whole: i128 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let mut ns = whole.checked_mul(unit_ns)?;
    let mut place = unit_ns;
    for digit in fraction.chars() {
        place /= 10;
        ns += i128::from(digit.to_digit(10)?) * place;
    }
    Some(ns)
}

/// Units `Display` may print, largest first (no weeks: `7d` reads better than `1w`).
const PRINT_UNITS: [(&str, u64); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1000),
    ("ms", 1),
];

/// How an operator reads `ms` > 0: whole units largest first (`2m30s`, `1h30m`, `7d`), or
/// decimal seconds when that is shorter for a sub-second remainder (`1.5s`, not `1s500ms`).
fn readable(ms: u64) -> String {
    let mut compound = String::new();
    let mut left = ms;
    for (unit, size) in PRINT_UNITS {
        if left >= size {
            compound.push_str(&format!("{}{unit}", left / size));
            left %= size;
        }
    }
    if ms.is_multiple_of(1000) {
        return compound;
    }
    let millis = format!("{:03}", ms % 1000);
    let decimal = format!("{}.{}s", ms / 1000, millis.trim_end_matches('0'));
    if decimal.len() < compound.len() {
        decimal
    } else {
        compound
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0s");
        }
        if self.0 < 0 {
            f.write_str("-")?;
        }
        f.write_str(&readable(self.0.unsigned_abs()))
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct DurationVisitor;
        impl Visitor<'_> for DurationVisitor {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration: seconds as a number, or a string like \"2m\", \"90s\", \"1h30m\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
                i64::try_from(v)
                    .ok()
                    .filter(|&s| s <= MAX_MS / 1000)
                    .map(Duration::from_secs)
                    .ok_or_else(|| E::custom(format!("{v} seconds is too long")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
                if v.unsigned_abs() > (MAX_MS / 1000) as u64 {
                    return Err(E::custom(format!("{v} seconds is too long")));
                }
                Ok(Duration::from_secs(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
                Duration::from_secs_f64(v).map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                Duration::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(DurationVisitor)
    }
}

/// `#[serde(deserialize_with = "wasmscaler_sdk::duration::non_negative")]`: a [`Duration`]
/// that refuses a negative value while deserializing, for keys with no range check of
/// their own.
pub fn non_negative<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let value = Duration::deserialize(d)?;
    if value.0 < 0 {
        return Err(de::Error::custom(format!(
            "a duration must not be negative, got {value}"
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<i64, String> {
        Duration::parse(text).map(Duration::ms)
    }

    fn from_json(json: &str) -> Result<i64, String> {
        serde_json::from_str::<Duration>(json)
            .map(Duration::ms)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn strings_with_units() {
        assert_eq!(parse("2m"), Ok(120_000));
        assert_eq!(parse("90s"), Ok(90_000));
        assert_eq!(parse("500ms"), Ok(500));
        assert_eq!(parse("1h30m"), Ok(5_400_000));
        assert_eq!(parse("1h30m10s"), Ok(5_410_000));
        assert_eq!(parse("7d"), Ok(604_800_000));
        assert_eq!(parse("2w"), Ok(1_209_600_000));
        assert_eq!(parse("1d12h"), Ok(129_600_000));
        assert_eq!(parse(" 15 m "), Ok(900_000));
        assert_eq!(parse("1m 30s"), Ok(90_000));
        assert_eq!(parse("1000000ns"), Ok(1));
        assert_eq!(parse("2500us"), Ok(3));
        assert_eq!(parse("1500µs"), Ok(2));
    }

    #[test]
    fn fractions_are_exact() {
        assert_eq!(parse("0.5s"), Ok(500));
        assert_eq!(parse("1.5h"), Ok(5_400_000));
        assert_eq!(parse("1.5m"), Ok(90_000));
        assert_eq!(parse(".5s"), Ok(500));
        assert_eq!(parse("5.s"), Ok(5000));
        assert_eq!(parse("0.1s0.2s"), Ok(300));
        assert_eq!(parse("0.0005s"), Ok(1));
    }

    #[test]
    fn bare_numbers_and_signs() {
        assert_eq!(parse("45"), Ok(45_000));
        assert_eq!(parse("0.25"), Ok(250));
        assert_eq!(parse("0"), Ok(0));
        assert_eq!(parse("-5s"), Ok(-5000));
        assert_eq!(parse("+5s"), Ok(5000));
        assert_eq!(parse("-1m30s"), Ok(-90_000));
    }

    #[test]
    fn malformed_strings_say_why() {
        assert!(parse("").unwrap_err().contains("empty"));
        assert!(parse("   ").unwrap_err().contains("empty"));
        assert!(parse("m").unwrap_err().contains("not a duration"));
        assert!(parse("-").unwrap_err().contains("not a duration"));
        assert!(parse("1h30").unwrap_err().contains("lacks a unit after '30'"));
        assert!(parse("15x").unwrap_err().contains("unknown unit 'x'"));
        assert!(parse("5 minutes").unwrap_err().contains("unknown unit 'minutes'"));
        assert!(parse("1.2.3s").unwrap_err().contains("bad number '1.2.3'"));
        assert!(parse(".s").unwrap_err().contains("not a duration"));
        assert!(parse("99999999999999999999w").is_err());
        assert!(parse("40000000w").unwrap_err().contains("too long"));
        assert!(parse("inf").is_err());
        assert!(parse("NaN").is_err());
    }

    #[test]
    fn numbers_are_seconds() {
        assert_eq!(from_json("120"), Ok(120_000));
        assert_eq!(from_json("0.5"), Ok(500));
        assert_eq!(from_json("-5"), Ok(-5000));
        assert_eq!(from_json("\"1h30m\""), Ok(5_400_000));
        assert!(from_json("1e13").unwrap_err().contains("not a usable number"));
        assert!(
            from_json("18446744073709551615")
                .unwrap_err()
                .contains("too long")
        );
        assert!(from_json("true").unwrap_err().contains("a duration"));
    }

    #[test]
    fn non_negative_refuses_a_negative_value() {
        #[derive(serde::Deserialize)]
        struct Cfg {
            #[serde(deserialize_with = "non_negative")]
            wait: Duration,
        }
        let read = |json: &str| serde_json::from_str::<Cfg>(json).map(|c| c.wait.ms());
        assert_eq!(read(r#"{"wait": "2m"}"#).ok(), Some(120_000));
        assert_eq!(read(r#"{"wait": 0}"#).ok(), Some(0));
        let err = read(r#"{"wait": -5}"#).unwrap_err().to_string();
        assert!(err.contains("a duration must not be negative, got -5s"), "{err}");
    }

    #[test]
    fn display_is_what_an_operator_reads() {
        let show = |ms: i64| Duration(ms).to_string();
        assert_eq!(show(0), "0s");
        assert_eq!(show(120_000), "2m");
        assert_eq!(show(150_000), "2m30s");
        assert_eq!(show(5_400_000), "1h30m");
        assert_eq!(show(3_601_000), "1h1s");
        assert_eq!(show(86_400_000), "1d");
        assert_eq!(show(604_800_000), "7d");
        assert_eq!(show(1500), "1.5s");
        assert_eq!(show(61_500), "61.5s");
        assert_eq!(show(500), "0.5s");
        assert_eq!(show(250), "250ms");
        assert_eq!(show(1), "1ms");
        assert_eq!(show(-5000), "-5s");
        assert_eq!(show(i64::MIN), "-9223372036854775.808s");
    }

    #[test]
    fn display_reads_back_to_the_same_value() {
        for ms in [
            1, 250, 500, 1500, 61_500, 90_000, 3_601_000, 5_410_000, 86_401_000, -90_000,
        ] {
            assert_eq!(parse(&Duration(ms).to_string()), Ok(ms), "{ms}");
        }
    }
}
