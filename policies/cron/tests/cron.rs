//! Behaviour tests of the cron policy, through the SDK's native harness (the same glue the
//! component runs). Every instant is written in UTC; comments give the local wall time
//! and the arithmetic.

use chrono::{TimeZone, Utc};
use policy_cron::CronPolicy;
use serde_json::json;
use wasmscaler_sdk::testing::{ContextBuilder, Harness, check_scenarios, evaluate, validate};
use wasmscaler_sdk::{Decision, PolicyError};

const S: u64 = 1000;
const MIN: u64 = 60 * S;
const H: u64 = 60 * MIN;

/// UTC instant in ms.
fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
        .single()
        .expect("valid test date")
        .timestamp_millis()
}

fn eval_at(config: &serde_json::Value, now_ms: i64, replicas: u32) -> Decision {
    let ctx = ContextBuilder::new()
        .now_ms(now_ms)
        .replicas(replicas, replicas)
        .bounds(1, 100)
        .config(config.to_string())
        .build();
    match evaluate::<CronPolicy>(&ctx) {
        Ok(d) => d,
        Err(e) => panic!("evaluate failed: {e}"),
    }
}

fn config_err(config: serde_json::Value) -> String {
    match validate::<CronPolicy>(&config.to_string()) {
        Ok(()) => panic!("config unexpectedly valid: {config}"),
        Err(e) => e.to_string(),
    }
}

/// The seed's weekday/weekend business-hours schedule.
fn business_hours(tz: &str) -> serde_json::Value {
    json!({
        "timezone": tz,
        "jobs": [
            {"name": "morning", "schedule": "0 0 8 * * MON-FRI", "targetSize": 20},
            {"name": "lunch",   "schedule": "0 0 12 * * MON-FRI", "targetSize": 30},
            {"name": "evening", "schedule": "0 0 18 * * MON-FRI", "targetSize": 15},
            {"name": "night",   "schedule": "0 0 22 * * MON-FRI", "targetSize": 5},
            {"name": "weekend", "schedule": "0 0 0 * * SAT,SUN", "targetSize": 3}
        ]
    })
}

// 2026-01-01 is a Thursday: Sat 3, Sun 4, Mon 5 ... Fri 9, Sat 10, Sun 11 January.

#[test]
fn business_hours_weekday_boundaries() {
    let c = business_hours("UTC");
    // (now, expected replicas, expected recheck)
    let cases = [
        // Mon 07:59:59: last firing is Sun 00:00 (weekend) -> 3; 08:00 is 1 s away.
        (utc(2026, 1, 5, 7, 59, 59), 3, S),
        // Mon 08:00 -> 20; next 12:00 = 4 h.
        (utc(2026, 1, 5, 8, 0, 0), 20, 4 * H),
        // Mon 12:00 -> 30; next 18:00 = 6 h.
        (utc(2026, 1, 5, 12, 0, 0), 30, 6 * H),
        // Mon 18:00 -> 15; next 22:00 = 4 h.
        (utc(2026, 1, 5, 18, 0, 0), 15, 4 * H),
        // Mon 22:00 -> 5; next Tue 08:00 = 10 h.
        (utc(2026, 1, 5, 22, 0, 0), 5, 10 * H),
        // Tue 03:00 -> still 5 (Mon 22:00); next 08:00 = 5 h.
        (utc(2026, 1, 6, 3, 0, 0), 5, 5 * H),
        // Fri 22:00 -> 5; next Sat 00:00 = 2 h.
        (utc(2026, 1, 9, 22, 0, 0), 5, 2 * H),
        // Sat 10:00 -> 3 (Sat 00:00); next Sun 00:00 = 14 h.
        (utc(2026, 1, 10, 10, 0, 0), 3, 14 * H),
        // Sun 23:30 -> 3; next Mon 08:00 = 8 h 30 m.
        (utc(2026, 1, 11, 23, 30, 0), 3, 8 * H + 30 * MIN),
        // Mon 12:30:00.250 -> 30; next 18:00 = 5 h 29 m 59.750 s (ms resolution).
        (
            utc(2026, 1, 12, 12, 30, 0) + 250,
            30,
            5 * H + 29 * MIN + 59 * S + 750,
        ),
    ];
    for (now, replicas, recheck) in cases {
        let d = eval_at(&c, now, 1);
        assert_eq!(d.replicas, replicas, "at {now}: {}", d.reason);
        assert_eq!(d.recheck_after_ms, Some(recheck), "at {now}: {}", d.reason);
    }
    let d = eval_at(&c, utc(2026, 1, 5, 12, 0, 0), 1);
    assert!(d.reason.contains("job 'lunch'"), "{}", d.reason);
    assert!(d.reason.contains("2026-01-05 12:00:00 UTC"), "{}", d.reason);
    assert!(d.reason.contains("next: 'evening'"), "{}", d.reason);
}

#[test]
fn business_hours_in_a_time_zone() {
    // Europe/Berlin in January is CET = UTC+1: 08:00 local is 07:00Z.
    let c = business_hours("Europe/Berlin");
    let d = eval_at(&c, utc(2026, 1, 5, 6, 59, 59), 1);
    assert_eq!((d.replicas, d.recheck_after_ms), (3, Some(S)), "{}", d.reason);
    let d = eval_at(&c, utc(2026, 1, 5, 7, 0, 0), 1);
    assert_eq!(
        (d.replicas, d.recheck_after_ms),
        (20, Some(4 * H)),
        "{}",
        d.reason
    );
    assert!(d.reason.contains("08:00:00 CET"), "{}", d.reason);
    // Fri 9 Jan 23:00Z is Sat 00:00 CET: weekend -> 3.
    let d = eval_at(&c, utc(2026, 1, 9, 23, 0, 0), 1);
    assert_eq!(d.replicas, 3, "{}", d.reason);
}

#[test]
fn stateless_same_answer_after_restart() {
    let c = business_hours("UTC");
    let mut h = Harness::<CronPolicy>::new();
    let times = [
        utc(2026, 1, 5, 7, 0, 0),
        utc(2026, 1, 5, 8, 0, 0),
        utc(2026, 1, 5, 13, 0, 0),
        utc(2026, 1, 10, 1, 0, 0),
    ];
    for now in times {
        let ctx = ContextBuilder::new().now_ms(now).config(c.to_string()).build();
        let carried = h.tick(ctx.clone()).expect("tick");
        // A "restarted controller": no state, or garbage state.
        let fresh = evaluate::<CronPolicy>(&ctx).expect("fresh");
        let garbage = evaluate::<CronPolicy>(
            &ContextBuilder::new()
                .now_ms(now)
                .config(c.to_string())
                .state(Some(b"not json".to_vec()))
                .build(),
        )
        .expect("garbage state");
        assert_eq!(carried.replicas, fresh.replicas);
        assert_eq!(carried.recheck_after_ms, fresh.recheck_after_ms);
        assert_eq!(carried.reason, fresh.reason);
        assert_eq!(garbage.replicas, fresh.replicas);
    }
}

#[test]
fn berlin_spring_forward_skips_a_fixed_time_in_the_gap() {
    // 2026-03-29: 02:00 CET (01:00Z) jumps to 03:00 CEST. 02:30 does not exist that day;
    // go-cron's walk steps from 01:00 CET to 03:00 CEST and finds no hour 2, so the job
    // does not run that day (the controller does the same).
    let c = json!({"timezone": "Europe/Berlin", "jobs": [
        {"name": "nightly", "schedule": "0 30 2 * * *", "targetSize": 7},
        {"name": "day", "schedule": "0 0 9 * * *", "targetSize": 12}
    ]});
    // 00:59:59Z = 01:59:59 CET: last firing is "day" on 28 Mar 09:00 CET (08:00Z) -> 12;
    // next is "day" at 09:00 CEST = 07:00Z, 6 h 1 s away.
    let d = eval_at(&c, utc(2026, 3, 29, 0, 59, 59), 1);
    assert_eq!(
        (d.replicas, d.recheck_after_ms),
        (12, Some(6 * H + S)),
        "{}",
        d.reason
    );
    let d = eval_at(&c, utc(2026, 3, 29, 1, 0, 0), 1);
    assert_eq!(d.replicas, 12, "{}", d.reason);
    assert!(d.reason.contains("2026-03-28 09:00:00 CET"), "{}", d.reason);
    assert_eq!(d.recheck_after_ms, Some(6 * H));
    // The next day is normal again: 02:30 CEST = 00:30Z on 30 March.
    let d = eval_at(&c, utc(2026, 3, 30, 0, 0, 0), 1);
    assert_eq!(d.recheck_after_ms, Some(30 * MIN), "{}", d.reason);

    // An interval job ("every 15 min during hour 2") has no firing in the skipped hour
    // either: at 01:59:59 CET the next boundary is "day" at 09:00 CEST = 07:00Z, 6 h 1 s.
    let c = json!({"timezone": "Europe/Berlin", "jobs": [
        {"name": "quarter", "schedule": "0 */15 2 * * *", "targetSize": 5},
        {"name": "day", "schedule": "0 0 9 * * *", "targetSize": 12}
    ]});
    let d = eval_at(&c, utc(2026, 3, 29, 0, 59, 59), 1);
    assert_eq!(d.recheck_after_ms, Some(6 * H + S), "{}", d.reason);
}

#[test]
fn berlin_fall_back_fixed_time_job_fires_in_both_copies() {
    // 2026-10-25: 03:00 CEST (01:00Z) falls back to 02:00 CET. 02:30 happens twice:
    // 00:30Z (CEST) and 01:30Z (CET); go-cron's walk (minutes added to 02:59 CEST give
    // 02:00 CET) reaches both, so the job runs twice, as in the controller.
    let c = json!({"timezone": "Europe/Berlin", "jobs": [
        {"name": "nightly", "schedule": "0 30 2 * * *", "targetSize": 7},
        {"name": "day", "schedule": "0 0 9 * * *", "targetSize": 12}
    ]});
    let d = eval_at(&c, utc(2026, 10, 25, 0, 29, 59), 1);
    assert_eq!((d.replicas, d.recheck_after_ms), (12, Some(S)), "{}", d.reason);
    // 00:45Z: nightly fired at 00:30Z; the next boundary is its repeat at 01:30Z.
    let d = eval_at(&c, utc(2026, 10, 25, 0, 45, 0), 1);
    assert_eq!(d.replicas, 7, "{}", d.reason);
    assert_eq!(d.recheck_after_ms, Some(45 * MIN), "{}", d.reason);
    // 01:45Z: the 01:30Z firing (02:30 CET); "day" at 08:00Z is 6 h 15 m away.
    let d = eval_at(&c, utc(2026, 10, 25, 1, 45, 0), 1);
    assert!(d.reason.contains("2026-10-25 02:30:00 CET"), "{}", d.reason);
    assert_eq!(d.recheck_after_ms, Some(6 * H + 15 * MIN), "{}", d.reason);
}

#[test]
fn new_york_dst_transitions() {
    let c = json!({"timezone": "America/New_York", "jobs": [
        {"name": "overnight", "schedule": "0 */30 1 * * *", "targetSize": 4},
        {"name": "pre", "schedule": "0 30 2 * * *", "targetSize": 6},
        {"name": "open", "schedule": "0 0 9 * * *", "targetSize": 10}
    ]});
    // Spring, 2026-03-08: 02:00 EST (07:00Z) jumps to 03:00 EDT. At 06:59Z (01:59 EST)
    // the last firing is overnight 01:30 EST = 06:30Z -> 4; "pre" (02:30) does not run
    // that day; next is open 09:00 EDT = 13:00Z, 6 h 1 min away.
    let d = eval_at(&c, utc(2026, 3, 8, 6, 59, 0), 1);
    assert_eq!(
        (d.replicas, d.recheck_after_ms),
        (4, Some(6 * H + MIN)),
        "{}",
        d.reason
    );
    let d = eval_at(&c, utc(2026, 3, 8, 7, 0, 0), 1);
    assert_eq!(d.replicas, 4, "{}", d.reason);
    assert!(d.reason.contains("01:30:00 EST"), "{}", d.reason);
    assert_eq!(d.recheck_after_ms, Some(6 * H));

    // Fall, 2026-11-01: 02:00 EDT (06:00Z) falls back to 01:00 EST; hour 1 repeats.
    // The interval job "every 30 min in hour 1" runs in both copies:
    // 01:00 EDT 05:00Z, 01:30 EDT 05:30Z, 01:00 EST 06:00Z, 01:30 EST 06:30Z.
    let d = eval_at(&c, utc(2026, 11, 1, 5, 45, 0), 1);
    assert_eq!(
        (d.replicas, d.recheck_after_ms),
        (4, Some(15 * MIN)),
        "{}",
        d.reason
    );
    let d = eval_at(&c, utc(2026, 11, 1, 6, 0, 0), 1);
    assert!(d.reason.contains("01:00:00 EST"), "{}", d.reason);
    assert_eq!(d.recheck_after_ms, Some(30 * MIN), "{}", d.reason);
    // 06:40Z: last 06:30Z (01:30 EST); next "pre" 02:30 EST = 07:30Z, 50 min.
    let d = eval_at(&c, utc(2026, 11, 1, 6, 40, 0), 1);
    assert_eq!(
        (d.replicas, d.recheck_after_ms),
        (4, Some(50 * MIN)),
        "{}",
        d.reason
    );
    assert!(d.reason.contains("01:30:00 EST"), "{}", d.reason);
}

#[test]
fn excluded_holiday_keeps_the_previous_firing() {
    let mut c = business_hours("UTC");
    c["excludeDates"] = json!(["* * * 25 12 *", "* * 1 1 *"]);
    // Fri 2026-12-25 is excluded: 08:00/12:00/18:00/22:00 are skipped, so at 12:30 the
    // job in force is still Thu 24 Dec 22:00 (night) -> 5.
    let d = eval_at(&c, utc(2026, 12, 25, 12, 30, 0), 1);
    assert_eq!(d.replicas, 5, "{}", d.reason);
    assert!(d.reason.contains("2026-12-24 22:00:00"), "{}", d.reason);
    assert!(d.reason.contains("excluded by '* * * 25 12 *'"), "{}", d.reason);
    // The next boundary skips the excluded 18:00 and 22:00: Sat 26 00:00 = 11 h 30 m.
    assert_eq!(d.recheck_after_ms, Some(11 * H + 30 * MIN));
    // At 07:00 on the holiday: next is Sat 00:00, 17 h away (08:00 is not a boundary).
    let d = eval_at(&c, utc(2026, 12, 25, 7, 0, 0), 1);
    assert_eq!(d.recheck_after_ms, Some(17 * H), "{}", d.reason);
    // 5-field exclusion ("* * 1 1 *" = every minute of 1 January): Fri 2027-01-01 12:00
    // is skipped; Thu 31 Dec 22:00 -> 5.
    let d = eval_at(&c, utc(2027, 1, 1, 12, 0, 0), 1);
    assert_eq!(d.replicas, 5, "{}", d.reason);
    // The day after is not excluded (CronHPA's check compares month and hour only and
    // would skip every 00:xx firing in November for "* * * 15 11 *").
    let c2 = json!({"excludeDates": ["* * * 15 11 *"], "jobs": [
        {"name": "a", "schedule": "0 30 0 * * *", "targetSize": 9},
        {"name": "b", "schedule": "0 0 12 * * *", "targetSize": 2}
    ]});
    let d = eval_at(&c2, utc(2026, 11, 16, 0, 45, 0), 1);
    assert_eq!(d.replicas, 9, "{}", d.reason);
    // On the 15th itself, 00:30 is skipped: b from the 14th at 12:00 -> 2.
    let d = eval_at(&c2, utc(2026, 11, 15, 0, 45, 0), 1);
    assert_eq!(d.replicas, 2, "{}", d.reason);
}

#[test]
fn every_is_anchored_at_the_epoch_or_start() {
    // No start: anchored at the Unix epoch. 2026-01-01T00:00Z = 1_767_225_600 s =
    // 327_264 x 5_400 s, so "@every 1h30m" fires at 00:00, 01:30, 03:00 ... that day.
    let c = json!({"jobs": [
        {"name": "pulse", "schedule": "@every 1h30m", "targetSize": 4},
        {"name": "base", "schedule": "@daily", "targetSize": 2}
    ]});
    // 02:00: last pulse 01:30 -> 4; next 03:00, 1 h.
    let d = eval_at(&c, utc(2026, 1, 1, 2, 0, 0), 1);
    assert_eq!((d.replicas, d.recheck_after_ms), (4, Some(H)), "{}", d.reason);
    // 00:00: pulse and base both fire; the job listed last (base) wins the tie.
    let d = eval_at(&c, utc(2026, 1, 1, 0, 0, 0), 1);
    assert_eq!(
        (d.replicas, d.recheck_after_ms),
        (2, Some(90 * MIN)),
        "{}",
        d.reason
    );

    // With start 00:10: pulse fires at start + k x 30 m, k >= 1: 00:40, 01:10, ...
    let c = json!({"start": "2026-01-01 00:10:00", "jobs": [
        {"name": "pulse", "schedule": "@every 30m", "targetSize": 4},
        {"name": "base", "schedule": "0 0 0 * * *", "targetSize": 2}
    ]});
    // 00:39:59: nothing since start (base's 00:00 is before it) -> keep current 7.
    let d = eval_at(&c, utc(2026, 1, 1, 0, 39, 59), 7);
    assert_eq!((d.replicas, d.recheck_after_ms), (7, Some(S)), "{}", d.reason);
    assert!(d.reason.contains("no job has fired yet"), "{}", d.reason);
    let d = eval_at(&c, utc(2026, 1, 1, 0, 40, 0), 7);
    assert_eq!(
        (d.replicas, d.recheck_after_ms),
        (4, Some(30 * MIN)),
        "{}",
        d.reason
    );
    // 01:25: last 01:10, next 01:40 = 15 min.
    let d = eval_at(&c, utc(2026, 1, 1, 1, 25, 0), 7);
    assert_eq!(
        (d.replicas, d.recheck_after_ms),
        (4, Some(15 * MIN)),
        "{}",
        d.reason
    );
}

#[test]
fn one_shot_date_in_the_past_and_in_the_future() {
    // 2026-12-24 18:00 in Berlin (CET) = 17:00Z; base "@daily" = 00:00 CET = 23:00Z.
    let c = json!({"timezone": "Europe/Berlin", "jobs": [
        {"name": "xmas-eve", "schedule": "@date 2026-12-24 18:00:00", "targetSize": 50},
        {"name": "base", "schedule": "@daily", "targetSize": 2}
    ]});
    let d = eval_at(&c, utc(2026, 12, 24, 16, 59, 59), 1);
    assert_eq!((d.replicas, d.recheck_after_ms), (2, Some(S)), "{}", d.reason);
    let d = eval_at(&c, utc(2026, 12, 24, 17, 0, 0), 1);
    // Next: base at 25 Dec 00:00 CET = 24 Dec 23:00Z, 6 h.
    assert_eq!(
        (d.replicas, d.recheck_after_ms),
        (50, Some(6 * H)),
        "{}",
        d.reason
    );
    // After the next daily firing the one-shot is history.
    let d = eval_at(&c, utc(2026, 12, 25, 12, 0, 0), 1);
    assert_eq!(d.replicas, 2, "{}", d.reason);
    // A year later it does not fire again (CronHPA drops the year and would).
    let d = eval_at(&c, utc(2027, 12, 24, 17, 30, 0), 1);
    assert_eq!(d.replicas, 2, "{}", d.reason);

    // Only a past one-shot: it stays in force; no next firing -> recheck capped at 24 h.
    let past =
        json!({"jobs": [{"name": "launch", "schedule": "@date 2025-06-01 12:00:00", "targetSize": 8}]});
    let d = eval_at(&past, utc(2026, 1, 1, 0, 0, 0), 1);
    assert_eq!(
        (d.replicas, d.recheck_after_ms),
        (8, Some(24 * H)),
        "{}",
        d.reason
    );
    assert!(d.reason.contains("no firing within 24h0m0s"), "{}", d.reason);

    // Only a future one-shot: nothing fired yet -> keep current replicas.
    let future =
        json!({"jobs": [{"name": "launch", "schedule": "@date 2026-01-01 06:00:00", "targetSize": 8}]});
    let d = eval_at(&future, utc(2026, 1, 1, 0, 0, 0), 6);
    assert_eq!((d.replicas, d.recheck_after_ms), (6, Some(6 * H)), "{}", d.reason);
    assert!(d.reason.contains("no job has fired yet"), "{}", d.reason);
    assert!(d.reason.contains("keeping current 6 replicas"), "{}", d.reason);
    // More than 24 h away: recheck capped at 24 h.
    let far = json!({"jobs": [{"name": "launch", "schedule": "@date 2026-03-01 00:00:00", "targetSize": 8}]});
    let d = eval_at(&far, utc(2026, 1, 1, 0, 0, 0), 6);
    assert_eq!(
        (d.replicas, d.recheck_after_ms),
        (6, Some(24 * H)),
        "{}",
        d.reason
    );
}

#[test]
fn one_shot_in_a_skipped_hour_never_fires() {
    // 2026-03-29 02:30 does not exist in Berlin: go-cron's @date spec skips that day, so
    // read once (in its year) the date never fires.
    let c = json!({"timezone": "Europe/Berlin", "jobs": [
        {"name": "x", "schedule": "@date 2026-03-29 02:30:00", "targetSize": 9}
    ]});
    let d = eval_at(&c, utc(2026, 3, 29, 1, 0, 0), 1);
    assert_eq!(d.replicas, 1, "{}", d.reason);
    assert!(d.reason.contains("no job has fired"), "{}", d.reason);
}

#[test]
fn run_once_on_a_date_job_without_start_changes_nothing() {
    // An @date job fires once anyway; runOnce must not make it need a `start` to fire.
    let c = json!({"jobs": [
        {"name": "launch", "schedule": "@date 2026-01-05 09:00:00", "targetSize": 40, "runOnce": true}
    ]});
    let d = eval_at(&c, utc(2026, 1, 5, 10, 0, 0), 3);
    assert_eq!(d.replicas, 40, "{}", d.reason);
}

#[test]
fn run_once_fires_only_at_its_first_firing_after_start() {
    let c = json!({"start": "2026-01-05T00:00:00Z", "jobs": [
        {"name": "launch", "schedule": "0 0 9 * * *", "targetSize": 40, "runOnce": true},
        {"name": "base", "schedule": "0 0 0 * * *", "targetSize": 2}
    ]});
    // Before start nothing counts.
    let d = eval_at(&c, utc(2026, 1, 4, 12, 0, 0), 3);
    assert_eq!(
        (d.replicas, d.recheck_after_ms),
        (3, Some(12 * H)),
        "{}",
        d.reason
    );
    // 08:00 on the 5th: base fired at start (00:00, inclusive) -> 2; launch in 1 h.
    let d = eval_at(&c, utc(2026, 1, 5, 8, 0, 0), 3);
    assert_eq!((d.replicas, d.recheck_after_ms), (2, Some(H)), "{}", d.reason);
    let d = eval_at(&c, utc(2026, 1, 5, 9, 0, 0), 3);
    assert_eq!(
        (d.replicas, d.recheck_after_ms),
        (40, Some(15 * H)),
        "{}",
        d.reason
    );
    // 6 Jan 09:00: launch does not fire again; base (00:00) is in force; next is
    // base on the 7th at 00:00, 15 h.
    let d = eval_at(&c, utc(2026, 1, 6, 9, 0, 0), 3);
    assert_eq!(
        (d.replicas, d.recheck_after_ms),
        (2, Some(15 * H)),
        "{}",
        d.reason
    );
}

#[test]
fn floor_mode_and_bounds() {
    let mut c = business_hours("UTC");
    c["mode"] = json!("floor");
    let noon = utc(2026, 1, 5, 12, 0, 0);
    // max(30, 45) = 45: never below what the other policies chose.
    let d = eval_at(&c, noon, 45);
    assert_eq!(d.replicas, 45, "{}", d.reason);
    assert!(d.reason.contains("floor mode"), "{}", d.reason);
    // max(30, 10) = 30.
    assert_eq!(eval_at(&c, noon, 10).replicas, 30);

    let mut c = business_hours("UTC");
    c["maxReplicas"] = json!(25);
    c["minReplicas"] = json!(4);
    let d = eval_at(&c, noon, 1);
    assert_eq!(d.replicas, 25, "{}", d.reason);
    assert!(d.reason.contains("capped at maxReplicas 25"), "{}", d.reason);
    // Weekend 3 is raised to minReplicas 4.
    assert_eq!(eval_at(&c, utc(2026, 1, 10, 12, 0, 0), 1).replicas, 4);

    // The workload's own max bound (10) is enforced with ctx.clamp.
    let ctx = ContextBuilder::new()
        .now_ms(noon)
        .bounds(1, 10)
        .config(business_hours("UTC").to_string())
        .build();
    let d = evaluate::<CronPolicy>(&ctx).expect("evaluate");
    assert_eq!(d.replicas, 10, "{}", d.reason);
}

#[test]
fn validation_names_the_key() {
    let e = config_err(json!({"jobz": []}));
    assert!(e.contains("unknown field `jobz`"), "{e}");
    let e = config_err(json!({"jobs": [{"name": "a", "schedule": "@daily", "targetsize": 3}]}));
    assert!(e.contains("jobs[0]") && e.contains("targetsize"), "{e}");
    let e = config_err(json!({"jobs": [{"name": "a", "schedule": "@daily", "targetSize": 0}]}));
    assert!(e.contains("'jobs[0].targetSize'"), "{e}");
    let e = config_err(json!({"jobs": [{"name": "a", "schedule": "@daily", "targetSize": -3}]}));
    assert!(e.contains("'jobs[0].targetSize'") && e.contains("-3"), "{e}");
    let e = config_err(json!({"jobs": [
        {"name": "a", "schedule": "@daily", "targetSize": 1},
        {"name": "b", "schedule": "@hourly", "targetSize": 1},
        {"name": "c", "schedule": "0 0 25 * * *", "targetSize": 1}
    ]}));
    assert!(
        e.contains("'jobs[2].schedule': invalid cron expression '0 0 25 * * *'"),
        "{e}"
    );
    let e = config_err(
        json!({"timezone": "Europe/Berln", "jobs": [{"name": "a", "schedule": "@daily", "targetSize": 1}]}),
    );
    assert!(e.contains("'timezone': unknown time zone 'Europe/Berln'"), "{e}");
    let e = config_err(
        json!({"minReplicas": 5, "maxReplicas": 3, "jobs": [{"name": "a", "schedule": "@daily", "targetSize": 1}]}),
    );
    assert!(
        e.contains("'minReplicas' (5) must not exceed 'maxReplicas' (3)"),
        "{e}"
    );
    let e = config_err(
        json!({"excludeDates": ["* * * 32 11 *"], "jobs": [{"name": "a", "schedule": "@daily", "targetSize": 1}]}),
    );
    assert!(e.contains("'excludeDates[0]'"), "{e}");
    let e = config_err(
        json!({"jobs": [{"name": "a", "schedule": "@daily", "targetSize": 1}, {"name": "a", "schedule": "@hourly", "targetSize": 2}]}),
    );
    assert!(e.contains("'jobs[1].name'") && e.contains("unique"), "{e}");
    let e =
        config_err(json!({"mode": "flor", "jobs": [{"name": "a", "schedule": "@daily", "targetSize": 1}]}));
    assert!(e.contains("mode") && e.contains("flor"), "{e}");
    // go-cron's durations are Go's: a unit is needed (500ms is accepted and runs every 1 s).
    let e = config_err(json!({"jobs": [{"name": "a", "schedule": "@every 5", "targetSize": 1}]}));
    assert!(
        e.contains("'jobs[0].schedule'") && e.contains("failed to parse duration"),
        "{e}"
    );
    validate::<CronPolicy>(
        &json!({"jobs": [{"name": "a", "schedule": "@every 500ms", "targetSize": 1}]}).to_string(),
    )
    .expect("@every 500ms is go-cron's 1 s");
    let e = config_err(
        json!({"jobs": [{"name": "a", "schedule": "@date 2026-13-01 00:00:00", "targetSize": 1}]}),
    );
    assert!(
        e.contains("'jobs[0].schedule'") && e.contains("failed to parse date"),
        "{e}"
    );
    let e = config_err(json!({"jobs": [{"name": "a", "schedule": "0 0 0 31 2 *", "targetSize": 1}]}));
    assert!(
        e.contains("'jobs[0].schedule'") && e.contains("never fires"),
        "{e}"
    );
    let e =
        config_err(json!({"jobs": [{"name": "a", "schedule": "@daily", "targetSize": 1, "runOnce": true}]}));
    assert!(e.contains("'jobs[0].runOnce': needs 'start'"), "{e}");
    let e = config_err(
        json!({"start": "yesterday", "jobs": [{"name": "a", "schedule": "@daily", "targetSize": 1}]}),
    );
    assert!(e.contains("'start'"), "{e}");
    let e = config_err(json!({"jobs": []}));
    assert!(e.contains("'jobs'"), "{e}");
    let e = config_err(json!({}));
    assert!(e.contains("missing field `jobs`"), "{e}");
    let e =
        config_err(json!({"maxReplicas": 0, "jobs": [{"name": "a", "schedule": "@daily", "targetSize": 1}]}));
    assert!(e.contains("'maxReplicas'"), "{e}");

    // A bad config is an InvalidConfig error at evaluate too (the host stays fail-static).
    let ctx = ContextBuilder::new().config(r#"{"jobs":[]}"#).build();
    assert!(matches!(
        evaluate::<CronPolicy>(&ctx),
        Err(PolicyError::InvalidConfig(_))
    ));

    // The seed config and every documented form are valid.
    validate::<CronPolicy>(&business_hours("Europe/Berlin").to_string()).expect("seed config");
    validate::<CronPolicy>(
        &json!({"timezone": "Asia/Kolkata", "mode": "floor", "start": "2026-01-01T00:00:00+05:30",
        "excludeDates": ["* * * 15 11 *", "* * 1 1 *"], "minReplicas": 1, "maxReplicas": 50,
        "jobs": [
            {"name": "a", "schedule": "@every 1h30m10s", "targetSize": 1},
            {"name": "b", "schedule": "@date 2026-10-27 21:54:00", "targetSize": 2},
            {"name": "c", "schedule": "30 */1 * * * *", "targetSize": 3, "runOnce": true},
            {"name": "d", "schedule": "0 9 * * 1-5", "targetSize": 4},
            {"name": "e", "schedule": "@midnight", "targetSize": 5},
            {"name": "f", "schedule": "0 0 9 ? * MON", "targetSize": 6}
        ]})
        .to_string(),
    )
    .expect("documented forms");
}

#[test]
fn yearly_job_that_fired_long_ago_is_found() {
    // @yearly fired 2026-01-01 00:00; at 2026-12-31 23:00 it is still in force (and the
    // next firing is 1 h away).
    let c = json!({"jobs": [
        {"name": "new-year", "schedule": "@yearly", "targetSize": 11},
        {"name": "leap", "schedule": "0 0 12 29 2 *", "targetSize": 13}
    ]});
    let d = eval_at(&c, utc(2026, 12, 31, 23, 0, 0), 1);
    assert_eq!((d.replicas, d.recheck_after_ms), (11, Some(H)), "{}", d.reason);
    // 2028-02-29 12:00 (leap day) beats 2028-01-01; on 2028-12-01 it is still in force.
    let d = eval_at(&c, utc(2028, 12, 1, 0, 0, 0), 1);
    assert_eq!(d.replicas, 13, "{}", d.reason);
}

#[test]
fn scenarios_pass_natively() {
    let n = check_scenarios::<CronPolicy>(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios"));
    assert!(n > 0, "no scenarios found");
}

/// Cost of one evaluate (parse + search), for the README. Run with
/// `cargo test -p policy-cron --release -- --ignored --nocapture evaluate_cost`.
#[test]
#[ignore]
fn evaluate_cost() {
    let mut c = business_hours("Europe/Berlin");
    c["excludeDates"] = json!(["* * * 25 12 *", "* * * 26 12 *", "* * 1 1 *"]);
    let ctx = ContextBuilder::new()
        .now_ms(utc(2026, 12, 26, 12, 0, 0))
        .config(c.to_string())
        .build();
    let n = 2000;
    let t = std::time::Instant::now();
    for _ in 0..n {
        let d = evaluate::<CronPolicy>(&ctx).expect("evaluate");
        // Fri 25 and Sat 26 Dec excluded: Thu 24 Dec 22:00 (night) is in force.
        assert_eq!(d.replicas, 5);
    }
    let per = t.elapsed() / n;
    println!("evaluate (5 jobs, 3 excludeDates, Europe/Berlin, holiday): {per:?} per call");
    assert!(per < std::time::Duration::from_millis(1));
}

#[test]
fn readme_example_behaves_as_documented() {
    let c = json!({
        "timezone": "Europe/Berlin",
        "jobs": [
            {"name": "morning", "schedule": "0 0 8 * * MON-FRI", "targetSize": 20},
            {"name": "lunch", "schedule": "0 0 12 * * MON-FRI", "targetSize": 30},
            {"name": "evening", "schedule": "0 0 18 * * MON-FRI", "targetSize": 15},
            {"name": "night", "schedule": "0 0 22 * * MON-FRI", "targetSize": 5},
            {"name": "weekend", "schedule": "0 0 0 * * SAT,SUN", "targetSize": 3},
            {"name": "xmas-eve-sale", "schedule": "@date 2026-12-24 18:00:00", "targetSize": 50}
        ],
        "excludeDates": ["* * * 25 12 *", "* * 1 1 *"],
        "mode": "target",
        "maxReplicas": 60
    });
    // Monday 5 Jan 2026 12:00 CET = 11:00Z -> 30, next 18:00 CET in 6 h.
    let d = eval_at(&c, utc(2026, 1, 5, 11, 0, 0), 3);
    assert_eq!(
        (d.replicas, d.recheck_after_ms),
        (30, Some(6 * H)),
        "{}",
        d.reason
    );
    // Thu 24 Dec 18:00 CET (17:00Z): "evening" and the one-shot fire together; the one-shot
    // is listed last and wins -> 50.
    let d = eval_at(&c, utc(2026, 12, 24, 17, 0, 0), 3);
    assert_eq!(d.replicas, 50, "{}", d.reason);
    // Fri 25 Dec 12:00 CET: excluded; Thu 22:00 (night) -> 5; next Sat 00:00 CET = 23:00Z.
    let d = eval_at(&c, utc(2026, 12, 25, 11, 0, 0), 3);
    assert_eq!(
        (d.replicas, d.recheck_after_ms),
        (5, Some(12 * H)),
        "{}",
        d.reason
    );
    // Backward-compatible zone links are valid names.
    for tz in ["US/Eastern", "Asia/Calcutta", "Etc/GMT+5", "UTC"] {
        validate::<CronPolicy>(
            &json!({"timezone": tz, "jobs": [{"name": "a", "schedule": "@daily", "targetSize": 1}]})
                .to_string(),
        )
        .unwrap_or_else(|e| panic!("{tz}: {e}"));
    }
}

#[test]
fn extreme_clocks_do_not_panic() {
    let mut c = business_hours("America/New_York");
    c["excludeDates"] = json!(["* * * 25 12 *"]);
    c["jobs"]
        .as_array_mut()
        .expect("jobs")
        .push(json!({"name": "p", "schedule": "@every 7m", "targetSize": 2}));
    c["jobs"]
        .as_array_mut()
        .expect("jobs")
        .push(json!({"name": "o", "schedule": "@date 2026-01-01 00:00:00", "targetSize": 2}));
    for now in [i64::MIN, i64::MIN / 2, -1, 0, 1, i64::MAX / 2, i64::MAX] {
        let d = eval_at(&c, now, 4);
        assert!(
            d.recheck_after_ms.is_some_and(|r| (1..=24 * H).contains(&r)),
            "{now}: {d:?}"
        );
    }
}

#[test]
fn a_star_step_in_a_day_field_is_a_wildcard_as_in_go_cron() {
    // Issue #12's reproducer: go-cron marks `*/1` like `*`, so both day fields must
    // match: `0 0 8 15 * */1` fires on the 15th only, not every day at 08:00.
    let c = json!({"jobs": [
        {"name": "mid", "schedule": "0 0 8 15 * */1", "targetSize": 5},
        {"name": "daily", "schedule": "0 0 0 * * *", "targetSize": 1}
    ]});
    let d = eval_at(&c, utc(2026, 2, 10, 12, 0, 0), 3);
    assert_eq!(d.replicas, 1, "{}", d.reason);
    // The same rule in excludeDates: `* * * * * */1` would have excluded every day; with
    // day-of-month 15 it excludes the 15th only.
    let c = json!({"excludeDates": ["0 0 0 15 * */1"], "jobs": [
        {"name": "daily", "schedule": "0 0 8 * * *", "targetSize": 4},
        {"name": "noon", "schedule": "0 0 12 * * *", "targetSize": 6}
    ]});
    let d = eval_at(&c, utc(2026, 2, 10, 9, 0, 0), 3);
    assert_eq!(d.replicas, 4, "{}", d.reason);
    let d = eval_at(&c, utc(2026, 2, 15, 13, 0, 0), 3);
    assert_eq!(
        d.replicas, 6,
        "the 14th's noon firing stays in force: {}",
        d.reason
    );
}

#[test]
fn go_cron_grammar_is_accepted_and_refused_as_upstream() {
    let ok = |s: &str| {
        validate::<CronPolicy>(&json!({"jobs": [{"name": "a", "schedule": s, "targetSize": 1}]}).to_string())
    };
    for s in [
        "? 0 8 * * *",
        "0 ? 8 * * *",
        "0 0 8 ? * ?",
        "0 *-5 8 * * *",
        "0 0 8 * * MON-fri",
        "@midnight",
    ] {
        assert!(ok(s).is_ok(), "{s}: {:?}", ok(s));
    }
    for s in [
        "@Daily",
        "0 0 8 * * 7",
        "0 0 8 L * *",
        "0 0 8 * * 1#2",
        "0 0 8 * * */0",
        " @daily",
    ] {
        assert!(ok(s).is_err(), "{s} is refused by go-cron");
    }
    // `*-5` is the whole range in go-cron (what follows the star is ignored).
    let c = json!({"jobs": [{"name": "a", "schedule": "0 0 *-5 * * *", "targetSize": 2},
                            {"name": "b", "schedule": "0 30 22 * * *", "targetSize": 9}]});
    let d = eval_at(&c, utc(2026, 2, 10, 23, 0, 0), 1);
    assert_eq!(d.replicas, 2, "23:00 fires: {}", d.reason);
}

#[test]
fn a_job_whose_every_day_is_excluded_never_counts_and_one_free_day_is_enough() {
    // Monday and Thursday mornings; Mondays and Thursdays excluded: the job never counts
    // (answered without searching five years of its firings), the other job does.
    let mut c = json!({
        "timezone": "UTC",
        "jobs": [
            {"name": "mon-thu", "schedule": "0 0 6 * * 1,4", "targetSize": 30},
            {"name": "daily", "schedule": "0 0 5 * * *", "targetSize": 4}
        ],
        "excludeDates": ["* * * * * 1", "* * * * * 4"]
    });
    // Fri 2026-03-06 12:00: the daily 05:00 firing of today counts; mon-thu never.
    let d = eval_at(&c, utc(2026, 3, 6, 12, 0, 0), 1);
    assert_eq!(d.replicas, 4, "{}", d.reason);
    // Exclude Thursdays only: Monday 06:00 (Mar 2) is the last counted mon-thu firing, but
    // the daily 05:00 of Friday is later and wins.
    c["excludeDates"] = json!(["* * * * * 4"]);
    let d = eval_at(&c, utc(2026, 3, 6, 12, 0, 0), 1);
    assert_eq!(d.replicas, 4, "{}", d.reason);
    // Only the mon-thu job, Thursdays excluded: Monday's firing is in force on Friday.
    c["jobs"] = json!([{"name": "mon-thu", "schedule": "0 0 6 * * 1,4", "targetSize": 30}]);
    let d = eval_at(&c, utc(2026, 3, 6, 12, 0, 0), 1);
    assert_eq!(d.replicas, 30, "{}", d.reason);
    // Both days excluded: nothing ever fired, the workload keeps its replicas.
    c["excludeDates"] = json!(["* * * * * 1", "* * * * * 4"]);
    let d = eval_at(&c, utc(2026, 3, 6, 12, 0, 0), 7);
    assert_ne!(d.replicas, 30, "{}", d.reason);
}
