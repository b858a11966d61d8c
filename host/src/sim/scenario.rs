//! Scenario files (YAML) -> typed scenario. Errors name the file, the line and the key.
//!
//! Durations are written `500ms`, `15s`, `2m`, `1h`, `7d` or as a number of seconds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::SimError;
use super::trace::Unit;

/// A duration in milliseconds, read from `15s`, `2m`, `1h`, `7d`, `500ms` or seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Millis(pub i64);

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(f64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Seconds(s) if s.is_finite() && s >= 0.0 => Ok(Millis((s * 1000.0).round() as i64)),
            Raw::Seconds(s) => Err(serde::de::Error::custom(format!("{s} is not a duration"))),
            Raw::Text(t) => parse_duration(&t).map(Millis).map_err(serde::de::Error::custom),
        }
    }
}

/// A duration in ms that may be 0 (`from: 0s`): what [`wasmscaler_sdk::Duration`] reads
/// (`7d`, `90s`, `1h30m`, a bare number of seconds), not negative.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let ms = wasmscaler_sdk::Duration::parse(text)?.ms();
    if ms < 0 {
        return Err(format!("'{}' must not be negative", text.trim()));
    }
    Ok(ms)
}

/// Pod start-up delay: fixed or drawn per pod from the scenario's seeded RNG.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Startup {
    Fixed(Millis),
    Dist(StartupDist),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum StartupDist {
    /// Always this long.
    Fixed(Millis),
    /// Uniform in `[a, b]`.
    Uniform([Millis; 2]),
    /// Normal, truncated to `[min, mean + 4 stddev]` (`min` default 1 s).
    Normal {
        mean: Millis,
        stddev: Millis,
        #[serde(default)]
        min: Option<Millis>,
    },
}

impl Startup {
    /// The shortest start-up the distribution can draw (the oracle's).
    pub fn min_ms(&self) -> i64 {
        match self {
            Startup::Fixed(m) | Startup::Dist(StartupDist::Fixed(m)) => m.0,
            Startup::Dist(StartupDist::Uniform([a, b])) => a.0.min(b.0),
            Startup::Dist(StartupDist::Normal { min, .. }) => min.map_or(1000, |m| m.0),
        }
    }
    pub fn mean_ms(&self) -> i64 {
        match self {
            Startup::Fixed(m) | Startup::Dist(StartupDist::Fixed(m)) => m.0,
            Startup::Dist(StartupDist::Uniform([a, b])) => (a.0 + b.0) / 2,
            Startup::Dist(StartupDist::Normal { mean, .. }) => mean.0,
        }
    }
}

fn default_startup() -> Startup {
    Startup::Fixed(Millis(60_000))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TraceSpec {
    /// CSV path, relative to the scenario file.
    pub file: PathBuf,
    pub unit: Unit,
    /// Multiplies every value (e.g. to turn a small site's traffic into a fleet's).
    #[serde(default = "one")]
    pub scale: f64,
    /// Where in the trace the simulation starts (earlier rows are history only).
    #[serde(default)]
    pub from: Option<Millis>,
    /// How long to simulate (default: to the end of the trace).
    #[serde(default)]
    pub duration: Option<Millis>,
    /// `linear` (default): between row centres; `step`: each row's value over its row.
    #[serde(default)]
    pub interpolate: Interpolate,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interpolate {
    #[default]
    Linear,
    Step,
}

fn one() -> f64 {
    1.0
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Slo {
    /// Job scenarios: an item waiting longer than this is a violation.
    #[serde(default)]
    pub queue_wait_bound: Option<Millis>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Prices {
    /// Price of one on-demand replica-hour.
    #[serde(default = "default_on_demand")]
    pub on_demand: f64,
    /// Price of one spot replica-hour.
    #[serde(default = "default_spot")]
    pub spot: f64,
}

fn default_on_demand() -> f64 {
    0.10
}
fn default_spot() -> f64 {
    0.03
}

impl Default for Prices {
    fn default() -> Self {
        Self {
            on_demand: default_on_demand(),
            spot: default_spot(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Spot {
    /// Expected interruptions per spot replica-hour (each running spot pod is interrupted
    /// after an exponentially distributed time with this rate).
    #[serde(default)]
    pub interruption_rate: f64,
    /// Windows (offsets from the simulation start) in which no spot capacity is to be
    /// had: spot pods created inside stay Pending until the window ends.
    #[serde(default)]
    pub shortages: Vec<Window>,
    /// Pool name -> capacity type (`spot` | `on-demand`). Unlisted pools: `spot` when the
    /// name contains "spot", else on-demand.
    #[serde(default)]
    pub pools: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Window {
    pub from: Millis,
    pub to: Millis,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Jobs {
    /// How long a Job runs once started (it takes one item from the queue when it starts).
    pub duration: Millis,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Baseline {
    Enabled(bool),
    Config(BaselineConfig),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BaselineConfig {
    /// Fraction of `capacityPerReplica` the HPA holds each replica at.
    #[serde(default = "default_target_utilization")]
    pub target_utilization: f64,
}

fn default_target_utilization() -> f64 {
    0.7
}

/// One policy entry: what the workload's annotations would say.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicyEntry {
    /// Label in the scorecard (default: the `policy` text). Must be unique.
    #[serde(default)]
    pub name: Option<String>,
    /// `wasmscaler.io/policy`: a built-in, `file:NAME.wasm`, or a comma-separated list.
    pub policy: String,
    /// `wasmscaler.io/config` (any YAML mapping).
    #[serde(default)]
    pub config: Option<Value>,
    /// `wasmscaler.io/behavior` (HPA behavior; `{}` = HPA defaults).
    #[serde(default)]
    pub behavior: Option<Value>,
    /// `wasmscaler.io/fallback`.
    #[serde(default)]
    pub fallback: Option<Value>,
    /// `wasmscaler.io/min-replicas` / `max-replicas` (default: the scenario's).
    #[serde(default)]
    pub min_replicas: Option<u32>,
    #[serde(default)]
    pub max_replicas: Option<u32>,
    /// `wasmscaler.io/interval` (default: the scenario's).
    #[serde(default)]
    pub interval: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Scenario {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Seeds every random draw (start-up delays, spot interruptions).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Wall-clock instant of the trace's first row (RFC 3339, UTC `Z`); what policies
    /// see as `now` (cron reads it). Default 1970-01-01T00:00:00Z.
    #[serde(default)]
    pub start: Option<String>,
    pub trace: TraceSpec,
    /// Load one Ready replica serves (in the trace's unit per second).
    #[serde(default)]
    pub capacity_per_replica: Option<f64>,
    /// `concurrency` = load × this (Little's law). Default 1s.
    #[serde(default = "default_request_duration")]
    pub request_duration: Millis,
    #[serde(default = "default_startup")]
    pub pod_startup: Startup,
    /// Evaluation interval (default 15 s, the HPA's sync period).
    #[serde(default = "default_interval")]
    pub interval: Millis,
    /// Accounting step of the simulated clock (default 1 s).
    #[serde(default = "default_resolution")]
    pub resolution: Millis,
    #[serde(default = "default_min")]
    pub min_replicas: u32,
    #[serde(default = "default_max")]
    pub max_replicas: u32,
    /// Replicas (or Jobs) at the start (default: what the start's load needs).
    #[serde(default)]
    pub initial_replicas: Option<u32>,
    #[serde(default)]
    pub slo: Slo,
    #[serde(default)]
    pub prices: Prices,
    #[serde(default)]
    pub spot: Option<Spot>,
    /// Present for queue scenarios (the trace counts arriving items).
    #[serde(default)]
    pub jobs: Option<Jobs>,
    /// The reactive HPA reference (default on for service scenarios).
    #[serde(default)]
    pub baseline: Option<Baseline>,
    /// Directory of `file:` policies, relative to the scenario file.
    #[serde(default)]
    pub policy_dir: Option<PathBuf>,
    pub policies: Vec<PolicyEntry>,
    /// Entries (by name) that form a reference cost/violation curve; every other entry is
    /// also reported against that curve at its own replica-hours (at least two names).
    #[serde(default)]
    pub compare_at_equal_cost: Vec<String>,
}

fn default_seed() -> u64 {
    1
}
fn default_request_duration() -> Millis {
    Millis(1000)
}
fn default_interval() -> Millis {
    Millis(15_000)
}
fn default_resolution() -> Millis {
    Millis(1000)
}
fn default_min() -> u32 {
    1
}
fn default_max() -> u32 {
    100
}

/// A scenario with where it came from (for error messages and relative paths).
#[derive(Debug, Clone)]
pub struct Loaded {
    pub file: PathBuf,
    pub text: String,
    pub scenario: Scenario,
    /// Unix ms of the trace's first row.
    pub start_epoch_ms: i64,
}

impl Loaded {
    /// Resolve a path written in the scenario relative to the scenario's directory.
    pub fn relative(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.file.parent().unwrap_or(Path::new(".")).join(p)
        }
    }

    /// An error about `key`, with the line the key is on.
    pub fn error(&self, key: &str, message: impl Into<String>) -> SimError {
        SimError::Scenario {
            file: self.file.display().to_string(),
            line: line_of_key(&self.text, key),
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// An error about `policies[i].<field>`.
    pub fn policy_error(&self, i: usize, field: &str, message: impl Into<String>) -> SimError {
        SimError::Scenario {
            file: self.file.display().to_string(),
            line: line_of_policy(&self.text, i, field),
            key: format!("policies[{i}].{field}"),
            message: message.into(),
        }
    }

    pub fn name(&self) -> String {
        self.scenario.name.clone().unwrap_or_else(|| {
            self.file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "scenario".into())
        })
    }
}

/// Read and check a scenario file.
pub fn load(file: &Path) -> Result<Loaded, SimError> {
    let text = std::fs::read_to_string(file).map_err(|e| SimError::Scenario {
        file: file.display().to_string(),
        line: None,
        key: "-".into(),
        message: format!("cannot read: {e}"),
    })?;
    parse(file, text)
}

pub fn parse(file: &Path, text: String) -> Result<Loaded, SimError> {
    let de = serde_norway::Deserializer::from_str(&text);
    let scenario: Scenario = serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        // Custom errors (durations, enums) carry no reliable location: find the key.
        let line = line_of_path(&text, &key).or_else(|| inner.location().map(|l| l.line()));
        SimError::Scenario {
            file: file.display().to_string(),
            line,
            key: if key == "." { "-".into() } else { key },
            message: strip_location(&inner.to_string()),
        }
    })?;
    let start_epoch_ms = 0;
    let mut loaded = Loaded {
        file: file.to_path_buf(),
        text,
        scenario,
        start_epoch_ms,
    };
    if let Some(s) = &loaded.scenario.start {
        loaded.start_epoch_ms = parse_rfc3339_utc(s).map_err(|m| loaded.error("start", m))?;
    }
    check(&loaded)?;
    Ok(loaded)
}

/// The simulator holds every pod (and the oracle every replica level) in memory; beyond
/// this a scenario is a typo (a `capacityPerReplica` off by a factor of 1000), not a
/// cluster, and would exhaust memory instead of answering.
pub const MAX_SIMULATED_REPLICAS: u32 = 100_000;

fn too_many_replicas(n: impl std::fmt::Display) -> String {
    format!("{n} replicas is more than the simulator holds (at most {MAX_SIMULATED_REPLICAS})")
}

fn check(l: &Loaded) -> Result<(), SimError> {
    let s = &l.scenario;
    if s.policies.is_empty() && (s.jobs.is_some() || matches!(s.baseline, Some(Baseline::Enabled(false)))) {
        return Err(l.error("policies", "name at least one policy"));
    }
    if !(s.trace.scale.is_finite() && s.trace.scale > 0.0) {
        return Err(l.error("scale", "must be a number > 0"));
    }
    if s.jobs.is_none() {
        match s.capacity_per_replica {
            Some(c) if c.is_finite() && c > 0.0 => {}
            Some(_) => return Err(l.error("capacityPerReplica", "must be a number > 0")),
            None => {
                return Err(l.error(
                    "capacityPerReplica",
                    "missing (load one Ready replica serves; required unless the scenario has 'jobs')",
                ));
            }
        }
    } else if s.trace.unit != Unit::Count {
        return Err(l.error(
            "unit",
            "a job scenario needs a 'count' trace (items arriving per row)",
        ));
    }
    if s.max_replicas > MAX_SIMULATED_REPLICAS {
        return Err(l.error("maxReplicas", too_many_replicas(s.max_replicas)));
    }
    if s.min_replicas > s.max_replicas {
        return Err(l.error(
            "minReplicas",
            format!("{} is above maxReplicas {}", s.min_replicas, s.max_replicas),
        ));
    }
    if s.interval.0 <= 0 {
        return Err(l.error("interval", "must be > 0"));
    }
    if s.resolution.0 <= 0 || s.resolution.0 > s.interval.0 {
        return Err(l.error("resolution", "must be > 0 and at most the interval"));
    }
    if let Some(j) = &s.jobs
        && j.duration.0 <= 0
    {
        return Err(l.error("duration", "jobs.duration must be > 0"));
    }
    for (name, v) in [("onDemand", s.prices.on_demand), ("spot", s.prices.spot)] {
        if !(v.is_finite() && v >= 0.0) {
            return Err(l.error(name, "a price must be a number >= 0"));
        }
    }
    if let Some(sp) = &s.spot {
        if !(sp.interruption_rate.is_finite() && sp.interruption_rate >= 0.0) {
            return Err(l.error(
                "interruptionRate",
                "must be a number >= 0 (per spot replica-hour)",
            ));
        }
        for (name, t) in &sp.pools {
            if t != "spot" && t != "on-demand" {
                return Err(l.error(name, format!("pool type '{t}' is neither 'spot' nor 'on-demand'")));
            }
        }
    }
    if let Some(Baseline::Config(b)) = &s.baseline
        && !(b.target_utilization > 0.0 && b.target_utilization <= 1.0)
    {
        return Err(l.error("targetUtilization", "must be in (0, 1]"));
    }
    if let Startup::Dist(StartupDist::Uniform([a, b])) = &s.pod_startup
        && a.0 > b.0
    {
        return Err(l.error("uniform", "the first bound must not exceed the second"));
    }
    let mut names = std::collections::HashSet::new();
    for (i, p) in s.policies.iter().enumerate() {
        if let Some(max) = p.max_replicas.filter(|&m| m > MAX_SIMULATED_REPLICAS) {
            return Err(l.policy_error(i, "maxReplicas", too_many_replicas(max)));
        }
        let label = p.name.clone().unwrap_or_else(|| p.policy.clone());
        if !names.insert(label.clone()) || label == super::BASELINE || label == super::ORACLE {
            return Err(l.policy_error(
                i,
                "name",
                format!("'{label}' is used twice (give each entry a distinct 'name')"),
            ));
        }
    }
    check_equal_cost(l, &names)
}

fn check_equal_cost(l: &Loaded, names: &std::collections::HashSet<String>) -> Result<(), SimError> {
    let reference = &l.scenario.compare_at_equal_cost;
    if reference.len() == 1 {
        return Err(l.error(
            "compareAtEqualCost",
            "name at least two entries (a curve needs two points)",
        ));
    }
    let baseline_on =
        !matches!(l.scenario.baseline, Some(Baseline::Enabled(false))) && l.scenario.jobs.is_none();
    let mut known: Vec<&str> = names.iter().map(String::as_str).collect();
    if baseline_on {
        known.push(super::BASELINE);
    }
    known.sort_unstable();
    for r in reference {
        if !known.contains(&r.as_str()) {
            return Err(l.error(
                "compareAtEqualCost",
                format!(
                    "'{r}' is not an entry of this scenario (entries: {})",
                    known.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

fn strip_location(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Line (1-based) of the first `key:` in the text.
pub fn line_of_key(text: &str, key: &str) -> Option<usize> {
    let leaf = key.rsplit('.').next().unwrap_or(key);
    let leaf = leaf.split('[').next().unwrap_or(leaf);
    text.lines()
        .position(|l| {
            let t = l.trim_start().trim_start_matches("- ");
            t.strip_prefix(leaf)
                .is_some_and(|r| r.trim_start().starts_with(':'))
        })
        .map(|i| i + 1)
}

/// Line (1-based) of a serde path such as `policies[1].config.target` or `trace.unit`.
pub fn line_of_path(text: &str, path: &str) -> Option<usize> {
    if path.is_empty() || path == "." {
        return None;
    }
    let lines: Vec<&str> = text.lines().collect();
    let is_key = |line: &str, name: &str| {
        let t = line.trim_start().trim_start_matches("- ");
        t.strip_prefix(name)
            .is_some_and(|r| r.trim_start().starts_with(':'))
            || [format!("{{{name}:"), format!("{{ {name}:"), format!(", {name}:")]
                .iter()
                .any(|p| line.contains(p.as_str()))
    };
    let mut pos = 0usize;
    let mut found = false;
    for seg in path.split('.') {
        let (name, idx) = match seg.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (seg, None),
        };
        if !name.is_empty() {
            let n = (pos..lines.len()).find(|&n| is_key(lines[n], name))?;
            pos = n;
            found = true;
        }
        if let Some(i) = idx {
            let mut indent = None;
            let mut seen = 0;
            let mut hit = None;
            for (n, l) in lines.iter().enumerate().skip(pos + 1) {
                let t = l.trim_start();
                if !t.starts_with('-') {
                    continue;
                }
                let ind = l.len() - t.len();
                if indent.is_none_or(|x| x == ind) {
                    indent = Some(ind);
                    if seen == i {
                        hit = Some(n);
                        break;
                    }
                    seen += 1;
                }
            }
            if let Some(n) = hit {
                pos = n;
            }
        }
    }
    found.then_some(pos + 1)
}

/// Line of `field` inside the `i`-th item of the top-level `policies:` list (or of the
/// item itself).
pub fn line_of_policy(text: &str, i: usize, field: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim_end() == "policies:" || l.starts_with("policies:"))?;
    let mut item_indent = None;
    let mut seen = 0usize;
    let mut item_line = None;
    for (n, l) in lines.iter().enumerate().skip(start + 1) {
        let indent = l.len() - l.trim_start().len();
        let t = l.trim_start();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if indent == 0 && !t.starts_with('-') {
            break;
        }
        if t.starts_with('-') && item_indent.is_none_or(|ii| ii == indent) {
            item_indent = Some(indent);
            if seen == i {
                item_line = Some(n);
            } else if item_line.is_some() {
                break;
            }
            seen += 1;
        }
        if let Some(first) = item_line {
            let t = t.trim_start_matches("- ");
            if t.strip_prefix(field)
                .is_some_and(|r| r.trim_start().starts_with(':'))
            {
                return Some(n + 1);
            }
            let _ = first;
        }
    }
    item_line.map(|n| n + 1)
}

/// `YYYY-MM-DDTHH:MM:SSZ` (or `YYYY-MM-DD`) -> Unix ms.
pub fn parse_rfc3339_utc(s: &str) -> Result<i64, String> {
    let bad = || format!("'{s}' is not a UTC time like 1995-07-01T00:00:00Z");
    let t = s.trim();
    let (date, time) = match t.split_once('T') {
        Some((d, rest)) => (d, rest.strip_suffix('Z').ok_or_else(bad)?),
        None => (t, "00:00:00"),
    };
    let d: Vec<i64> = date
        .split('-')
        .map(|x| x.parse().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let h: Vec<i64> = time
        .split(':')
        .map(|x| x.parse().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    if d.len() != 3 || h.len() != 3 || !(1..=12).contains(&d[1]) || !(1..=31).contains(&d[2]) {
        return Err(bad());
    }
    if h[0] > 23 || h[1] > 59 || h[2] > 60 {
        return Err(bad());
    }
    let days = days_from_civil(d[0], d[1], d[2]);
    Ok(((days * 24 + h[0]) * 60 + h[1]) * 60_000 + h[2] * 1000)
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_times_and_durations() {
        assert_eq!(parse_rfc3339_utc("1970-01-02T00:00:00Z").unwrap(), 86_400_000);
        assert_eq!(
            parse_rfc3339_utc("1995-07-01T00:00:00Z").unwrap(),
            804_556_800_000
        );
        assert_eq!(parse_duration("2d").unwrap(), 172_800_000);
        assert_eq!(parse_duration("0s").unwrap(), 0);
        assert_eq!(parse_duration("90").unwrap(), 90_000);
        assert_eq!(parse_duration("1d12h").unwrap(), 129_600_000);
        assert!(
            parse_duration("-1s")
                .unwrap_err()
                .contains("must not be negative")
        );
    }

    #[test]
    fn errors_carry_line_and_key() {
        let text = "trace: {file: a.csv, unit: rps}\ncapacityPerReplica: 10\ninterval: soon\npolicies: []\n";
        let e = parse(Path::new("s.yaml"), text.into()).unwrap_err().to_string();
        assert!(e.contains("s.yaml:3") && e.contains("interval"), "{e}");
        let text = "trace: {file: a.csv, unit: rps}\ncapacityPerReplica: 10\npolicies:\n  - policy: hpa\n  - policy: cron\n    config: {jobs: []}\n";
        let l = parse(Path::new("s.yaml"), text.into()).unwrap();
        assert_eq!(line_of_policy(&l.text, 1, "config"), Some(6));
        assert_eq!(line_of_policy(&l.text, 0, "config"), Some(4));
    }
}
