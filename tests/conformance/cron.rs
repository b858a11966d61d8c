//! cron against kubernetes-cronhpa-controller's scheduling (tools/conformance/cron:
//! github.com/ringtail/go-cron plus the controller's job and excludeDates rules): seeded
//! random configurations and tick sequences, the replicas compared at every tick, and the
//! verdict on the configuration (accepted or refused) compared first.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};
use wasmscaler::runtime::LoadedPolicy;
use wasmscaler_sdk::{Context, Workload};

use crate::reference::Reference;
use crate::rng::Rng;
use crate::{Mismatch, Tally};

/// The deliberate deviations: upstream behaviour the policy does not reproduce, switched
/// off in the reference with WASMSCALER_CONFORMANCE_UPSTREAM_ONLY=1 (listed, with why, in
/// policies/cron/README.md).
pub const DEVIATIONS: &[(&str, &str)] = &[
    (
        "five-field-minute-first",
        "a 5-field expression is minute-first (go-cron's ParseStandard, standard cron) instead \
         of go-cron Parse's seconds-first reading with day-of-week `*`",
    ),
    (
        "exclude-dates-by-day",
        "an excludeDates entry excludes the local days its month and day fields match; the \
         controller compares the entry's next firing with now through the Go layout \
         \"11-15-1990\" (month and hour only)",
    ),
    (
        "strict-validation",
        "empty or repeated job names, targetSize < 1, unparsable excludeDates, schedules that \
         never fire and runOnce without start are configuration errors",
    ),
    (
        "date-once",
        "@date fires once, in the year written (go-cron's spec repeats every year)",
    ),
    (
        "every-anchored",
        "@every counts from start or the Unix epoch instead of from the moment the controller \
         added the job",
    ),
    (
        "level-based",
        "the policy is stateless: the latest firing within 1830 days is in force, also one \
         before the controller (re)started",
    ),
    (
        "run-once-first-unexcluded",
        "a runOnce job's single firing is its first one not on an excluded day (the \
         controller uses it up on an excluded day)",
    ),
    (
        "last-listed-wins",
        "of jobs firing at the same instant the one listed last wins (the controller runs \
         them concurrently)",
    ),
];

const ZONES: &[&str] = &[
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Sydney",
    "Asia/Kolkata",
    "US/Eastern",
];

/// One field of a cron expression: every shape go-cron reads (and some it refuses).
fn field(rng: &mut Rng, lo: i64, hi: i64, names: &[&str]) -> String {
    let v = |rng: &mut Rng| rng.range(lo, hi);
    // A range, low end first nine times in ten (a reversed one is an error upstream).
    let pair = |rng: &mut Rng| {
        let (a, b) = (v(rng), v(rng));
        if rng.chance(0.9) {
            (a.min(b), a.max(b))
        } else {
            (a, b)
        }
    };
    match rng.range(0, 15) {
        0 | 1 => "*".into(),
        2 => "?".into(),
        3 => format!("*/{}", rng.range(1, 7)),
        4 => {
            let (a, b) = pair(rng);
            format!("{a}-{b}")
        }
        5 => {
            let (a, b) = pair(rng);
            format!("{a}-{b}/{}", rng.range(1, 4))
        }
        6 => format!("{}/{}", v(rng), rng.range(1, 10)),
        7 => format!("{},{}", v(rng), v(rng)),
        8 => format!("*-{}", v(rng)),
        9 if !names.is_empty() => rng.pick(names).to_string(),
        10 if !names.is_empty() => {
            let (a, b) = (
                rng.range(0, names.len() as i64 - 1),
                rng.range(0, names.len() as i64 - 1),
            );
            format!("{}-{}", names[a.min(b) as usize], names[a.max(b) as usize])
        }
        11 => format!("{},*/{}", v(rng), rng.range(2, 5)),
        12 if rng.chance(0.1) => rng.pick(&["7", "L", "0/0", "1-2-3", "*/", "", "x"]).to_string(),
        _ => v(rng).to_string(),
    }
}

const MONTHS: &[&str] = &["JAN", "feb", "Mar", "JUN", "oct", "DEC"];
const DAYS: &[&str] = &["SUN", "mon", "Tue", "WED", "fri", "SAT"];

/// A cron expression; `sparse_time`: single values in the time fields most of the time, so
/// a job fires a few times a day.
fn expression(rng: &mut Rng) -> String {
    let time = |rng: &mut Rng, hi: i64| {
        if rng.chance(0.75) {
            rng.range(0, hi).to_string()
        } else {
            field(rng, 0, hi, &[])
        }
    };
    let second = if rng.chance(0.8) {
        "0".to_string()
    } else {
        time(rng, 59)
    };
    let minute = time(rng, 59);
    let hour = time(rng, 23);
    let dom = if rng.chance(0.4) {
        "*".into()
    } else {
        field(rng, 1, 31, &[])
    };
    let month = if rng.chance(0.6) {
        "*".into()
    } else {
        field(rng, 1, 12, MONTHS)
    };
    let dow = if rng.chance(0.4) {
        "*".into()
    } else {
        field(rng, 0, 6, DAYS)
    };
    if rng.chance(0.2) {
        // 5 fields.
        format!("{minute} {hour} {dom} {month} {dow}")
    } else {
        format!("{second} {minute} {hour} {dom} {month} {dow}")
    }
}

/// A local date-time string near the sequence (DST days included).
fn date_time(rng: &mut Rng, base_day: &str) -> String {
    let day = if rng.chance(0.5) {
        base_day.to_string()
    } else {
        rng.pick(&[
            "2026-03-29",
            "2026-03-08",
            "2026-10-25",
            "2026-11-01",
            "2026-04-05",
            "2026-10-04",
            "2026-02-28",
            "2027-01-01",
        ])
        .to_string()
    };
    format!(
        "{day} {:02}:{:02}:{:02}",
        rng.range(0, 23),
        rng.pick(&[0, 15, 30, 45, 59]),
        rng.pick(&[0, 0, 30])
    )
}

fn schedule(rng: &mut Rng, base_day: &str) -> String {
    match rng.range(0, 19) {
        0 => rng
            .pick(&[
                "@yearly",
                "@annually",
                "@monthly",
                "@weekly",
                "@daily",
                "@midnight",
                "@hourly",
                "@Daily",
                "@reboot",
            ])
            .to_string(),
        1 => format!(
            "@every {}",
            rng.pick(&[
                "30m", "1h30m", "45s", "1.5h", "90m", "500ms", "2h", "7h13m", "24h", "1d", "5", "-5m", "0"
            ])
        ),
        2 => format!("@date {}", date_time(rng, base_day)),
        3 if rng.chance(0.3) => format!(
            "@date {}",
            rng.pick(&[
                "2026-01-01 06:00",
                "2026-13-01 00:00:00",
                "2026-02-30 10:00:00",
                "2026-03-29 2:30:00"
            ])
        ),
        _ => expression(rng),
    }
}

/// The day the sequence starts on, and its first tick (UTC ms): DST days of the zones,
/// the turn of a year and month ends are frequent.
fn first_tick(rng: &mut Rng) -> (String, i64) {
    let day = rng
        .pick(&[
            "2026-03-28",
            "2026-03-29",
            "2026-03-07",
            "2026-03-08",
            "2026-10-24",
            "2026-10-25",
            "2026-10-31",
            "2026-11-01",
            "2026-04-04",
            "2026-04-05",
            "2026-10-03",
            "2026-10-04",
            "2026-02-10",
            "2026-12-31",
            "2027-02-28",
            "2028-02-29",
        ])
        .to_string();
    let part = |r: std::ops::Range<usize>| day[r].parse::<i64>().expect("a date");
    let midnight = days_from_civil(part(0..4), part(5..7), part(8..10)) * 86_400_000;
    (
        day,
        midnight + rng.range(-14, 36) * 3_600_000 + rng.range(0, 3599) * 1000,
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn config(rng: &mut Rng, base_day: &str) -> Value {
    let mut c = serde_json::Map::new();
    let jobs: Vec<Value> = (0..rng.range(1, 5))
        .map(|i| {
            let mut j = serde_json::Map::new();
            let name = if rng.chance(0.03) {
                "j0".into()
            } else {
                format!("j{i}")
            };
            j.insert("name".into(), json!(name));
            j.insert("schedule".into(), json!(schedule(rng, base_day)));
            j.insert(
                "targetSize".into(),
                json!(if rng.chance(0.03) { 0 } else { rng.range(1, 40) }),
            );
            if rng.chance(0.1) {
                j.insert("runOnce".into(), json!(true));
            }
            Value::Object(j)
        })
        .collect();
    c.insert("jobs".into(), Value::Array(jobs));
    if rng.chance(0.85) {
        c.insert("timezone".into(), json!(*rng.pick(ZONES)));
    }
    if rng.chance(0.4) {
        let ex: Vec<Value> = (0..rng.range(1, 3))
            .map(|_| {
                if rng.chance(0.1) {
                    json!(*rng.pick(&["@every 1h", "bogus", "0 0 0 * * 7"]))
                } else if rng.chance(0.15) {
                    json!(*rng.pick(&["@yearly", "@weekly", "@date 2026-03-29 10:00:00"]))
                } else {
                    json!(expression(rng))
                }
            })
            .collect();
        c.insert("excludeDates".into(), Value::Array(ex));
    }
    if rng.chance(0.3) {
        c.insert("mode".into(), json!(*rng.pick(&["target", "floor"])));
    }
    if rng.chance(0.3)
        || c["jobs"]
            .as_array()
            .is_some_and(|js| js.iter().any(|j| j.get("runOnce").is_some()))
            && rng.chance(0.8)
    {
        let start = if rng.chance(0.5) {
            date_time(rng, base_day)
        } else {
            format!(
                "{base_day}T{:02}:00:00{}",
                rng.range(0, 23),
                rng.pick(&["Z", "+05:30", "-04:00"])
            )
        };
        c.insert("start".into(), json!(start));
    }
    let min = rng.range(0, 10);
    if rng.chance(0.2) {
        c.insert("minReplicas".into(), json!(min));
    }
    if rng.chance(0.2) {
        c.insert("maxReplicas".into(), json!(rng.range(min.max(1) - 1, 30)));
    }
    Value::Object(c)
}

pub struct Sequence {
    seed: u64,
    config: Value,
    ticks: Vec<i64>,
    overrides: Vec<Option<i64>>,
    initial: i64,
    workload: (i64, i64),
}

/// Ticks from the first: steps of seconds (across a boundary), minutes, hours and days.
fn sequence(seed: u64) -> Sequence {
    let mut rng = Rng::new(seed);
    let (day, first) = first_tick(&mut rng);
    let config = config(&mut rng, &day);
    let n = rng.range(10, 60);
    let mut ticks = vec![first];
    let mut overrides = vec![None];
    for _ in 1..n {
        let step = match rng.range(0, 5) {
            0 => rng.range(1, 5) * 1000 + rng.range(0, 1) * rng.range(0, 999),
            1 => rng.range(1, 30) * 60_000,
            2 => rng.range(1, 6) * 3_600_000,
            3 => rng.range(1, 3) * 86_400_000,
            _ => rng.range(1, 900) * 1000,
        };
        let last = ticks[ticks.len() - 1];
        ticks.push(last + step);
        overrides.push(rng.chance(0.1).then(|| rng.range(0, 50)));
    }
    let lo = if rng.chance(0.7) { 0 } else { rng.range(0, 5) };
    let hi = if rng.chance(0.7) {
        1000
    } else {
        rng.range(lo.max(1), 35)
    };
    Sequence {
        seed,
        config,
        ticks,
        overrides,
        initial: rng.range(0, 20),
        workload: (lo, hi),
    }
}

fn run(
    seq: &mut Sequence,
    policy: &LoadedPolicy,
    reference: &mut Reference,
    tally: &mut Tally,
) -> Option<Mismatch> {
    let deviations: serde_json::Map<String, Value> = DEVIATIONS
        .iter()
        .map(|(n, _)| (n.to_string(), json!(crate::deviations_enabled())))
        .collect();
    // The controller started a day before the first tick (what "level-based" changes).
    let controller_start = seq.ticks[0] - 86_400_000 - seq.ticks[0].rem_euclid(1000);
    let theirs = reference.ask(&json!({
        "config": seq.config,
        "ticks": seq.ticks,
        "overrides": seq.overrides,
        "initial": seq.initial,
        "workloadMin": seq.workload.0,
        "workloadMax": seq.workload.1,
        "controllerStart": controller_start,
        "deviations": deviations,
    }));
    let config = seq.config.to_string();
    let mismatch = |tick: i64, inputs: Value, upstream: Value, ours: Value| Mismatch {
        seed: seq.seed,
        config: seq.config.clone(),
        tick,
        inputs,
        upstream,
        ours,
    };
    let valid = theirs["valid"].as_bool().expect("valid");
    let verdict = policy.validate_config(&config);
    tally.ticks += 1;
    if valid != verdict.is_ok() {
        return Some(mismatch(
            -1,
            json!("validate-config"),
            theirs,
            json!({"valid": verdict.is_ok(), "error": verdict.err().map(|e| e.to_string())}),
        ));
    }
    if !valid {
        REFUSED.fetch_add(1, Ordering::Relaxed);
        return None;
    }
    let replicas = theirs["replicas"].as_array().expect("replicas");
    let mut current = seq.initial;
    for (k, &now) in seq.ticks.iter().enumerate() {
        if let Some(o) = seq.overrides[k] {
            current = o;
        }
        let ctx = Context {
            now_ms: now,
            workload: Workload {
                replicas: current as u32,
                ready_replicas: current as u32,
                min_replicas: seq.workload.0 as u32,
                max_replicas: seq.workload.1 as u32,
                ..Workload::default()
            },
            config: config.clone(),
            signals: vec![],
            state: None,
        };
        tally.ticks += 1;
        let inputs = json!({"tick": k, "nowMs": now, "current": current});
        let upstream = replicas[k].as_i64().expect("replicas");
        let ours = match policy.evaluate(&ctx, None) {
            Ok(d) => d,
            Err(e) => {
                return Some(mismatch(
                    k as i64,
                    inputs,
                    json!(upstream),
                    json!({"error": e.to_string()}),
                ));
            }
        };
        if i64::from(ours.replicas) != upstream {
            return Some(mismatch(
                k as i64,
                inputs,
                json!(upstream),
                json!({"replicas": ours.replicas, "reason": ours.reason}),
            ));
        }
        current = upstream;
    }
    None
}

/// Sequences whose configuration both sides refused (only the verdict is compared).
static REFUSED: AtomicU64 = AtomicU64::new(0);

pub fn conformance(sequences: u64, seed: u64) -> (Tally, Vec<Mismatch>) {
    let result = crate::drive("cron", "cron-reference", sequences, seed, sequence, run);
    eprintln!(
        "cron: {} of the sequences have a configuration both refuse (verdict compared, no ticks)",
        REFUSED.load(Ordering::Relaxed)
    );
    result
}
