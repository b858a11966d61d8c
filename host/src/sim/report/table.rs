//! The scorecard as a terminal table.

use super::Report;
use super::equal_cost::{EqualCost, Position};

pub fn render(r: &Report, jobs: bool) -> String {
    let mut out = scorecard(r, jobs);
    if let Some(c) = &r.equal_cost {
        out.push_str(&equal_cost(c));
    }
    out
}

fn equal_cost(c: &EqualCost) -> String {
    let mut out = format!(
        "\nat equal replica-hours, against the curve of {}:\n",
        c.reference.join(", ")
    );
    let head = [
        "policy",
        "replica-h",
        "viol min",
        "curve viol min",
        "change",
        "ev/h",
        "curve ev/h",
        "pod starts",
        "curve starts",
        "read",
    ];
    let mut rows: Vec<Vec<String>> = vec![head.iter().map(|s| s.to_string()).collect()];
    for r in &c.rows {
        rows.push(vec![
            r.name.clone(),
            format!("{:.1}", r.replica_hours),
            format!("{:.1}", r.violation_minutes),
            r.reference_violation_minutes
                .map_or_else(|| "-".into(), |v| format!("{v:.1}")),
            match (r.reference_violation_minutes, r.change_pct) {
                (_, Some(p)) => format!("{p:+.0} %"),
                (Some(_), None) => "n/a (curve has none)".into(),
                (None, _) => "n/a".into(),
            },
            format!("{:.1}", r.scale_events_per_hour),
            r.reference_scale_events_per_hour
                .map_or_else(|| "-".into(), |v| format!("{v:.1}")),
            r.pod_starts.to_string(),
            r.reference_pod_starts
                .map_or_else(|| "-".into(), |v| format!("{v:.0}")),
            match r.position {
                Position::Interpolated => "interpolated".into(),
                Position::Extrapolated => "extrapolated".into(),
                Position::Outside => "outside the curve".into(),
            },
        ]);
    }
    out.push_str(&grid(&rows));
    out
}

fn scorecard(r: &Report, jobs: bool) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "scenario {} — trace {}, {:.1} h simulated from hour {:.1}, evaluation every {} s, seed {}\n\n",
        r.scenario, r.trace, r.simulated_hours, r.from_hours, r.interval_seconds, r.seed
    ));
    let unserved = if jobs { "late items %" } else { "unserved %" };
    let replicas = if jobs { "job-hours" } else { "replica-h" };
    let head = [
        "policy",
        "SLO viol %",
        "viol min",
        "> max",
        unserved,
        replicas,
        "cost",
        "x oracle",
        "scale ev",
        "ev/h",
        "pod starts",
        "max rep",
        "p50 us",
        "p99 us",
    ];
    let mut rows: Vec<Vec<String>> = vec![head.iter().map(|s| s.to_string()).collect()];
    for s in &r.scores {
        let (p50, p99) = match s.decision_latency_us {
            Some(l) => (l.p50.to_string(), l.p99.to_string()),
            None => ("-".into(), "-".into()),
        };
        let mut name = s.name.clone();
        if s.failed_evaluations > 0 {
            name.push_str(&format!(" ({} failed)", s.failed_evaluations));
        }
        rows.push(vec![
            name,
            format!("{:.2}", s.violation_pct),
            format!("{:.1}", s.violation_minutes),
            format!("{:.1}", s.violation_minutes_above_max),
            format!("{:.3}", s.unserved_pct),
            format!("{:.1}", s.replica_hours),
            format!("{:.2}", s.cost),
            format!("{:.2}", s.cost_ratio_to_oracle),
            s.scale_events.to_string(),
            format!("{:.1}", s.scale_events_per_hour),
            s.pod_starts.to_string(),
            s.max_replicas.to_string(),
            p50,
            p99,
        ]);
    }
    out.push_str(&grid(&rows));
    out.push_str(&failure_notes(r));
    out
}

/// Why evaluations failed, under the table: a count alone hides whether a policy ran out of
/// budget, trapped or rejected its config.
fn failure_notes(r: &Report) -> String {
    let mut out = String::new();
    for s in &r.scores {
        for f in &s.failures {
            out.push_str(&format!(
                "\n{}: {} × {} from policy '{}', the first at {:.2} h: {}",
                s.name,
                f.count,
                f.kind,
                f.policy,
                f.first_at_ms as f64 / 3_600_000.0,
                f.first_error
            ));
        }
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

/// Columns padded to their widest cell, the first left-aligned, a rule under the head.
fn grid(rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    let cols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for (i, row) in rows.iter().enumerate() {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, v)| {
                if c == 0 {
                    format!("{v:<w$}", w = widths[c])
                } else {
                    format!("{v:>w$}", w = widths[c])
                }
            })
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
        if i == 0 {
            let total: usize = widths.iter().sum::<usize>() + 2 * widths.len().saturating_sub(1);
            out.push_str(&"-".repeat(total));
            out.push('\n');
        }
    }
    out
}
