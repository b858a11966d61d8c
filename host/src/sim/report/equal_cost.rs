//! Comparison at equal cost: a reference curve (e.g. the HPA at four target utilizations)
//! traces violation-minutes against replica-hours; each other policy is read against the
//! curve at its own replica-hours. A policy "below the curve" misses the SLO less than the
//! reference would at the same spend, the only fair way to compare two scalers when one
//! of them simply buys more capacity.

use serde::Serialize;

use super::super::score::{Score, round};

/// The comparison of one scenario.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EqualCost {
    /// The entries forming the reference curve, as named in the scenario.
    pub reference: Vec<String>,
    pub rows: Vec<EqualCostRow>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EqualCostRow {
    pub name: String,
    pub replica_hours: f64,
    pub violation_minutes: f64,
    /// The reference curve's violation-minutes at this row's replica-hours (`None` when
    /// the row spends too far outside the curve to read it).
    pub reference_violation_minutes: Option<f64>,
    /// `100 × (violation − reference) / reference`: negative = fewer violations at equal
    /// spend. `None` when the reference has no violations there (nothing to reduce) or
    /// cannot be read.
    pub change_pct: Option<f64>,
    /// Churn of this row, and of the reference curve read at the same replica-hours
    /// (`None` where the curve cannot be read): buying the same spend with more scale
    /// events or pod starts is a cost the replica-hours do not show.
    pub scale_events_per_hour: f64,
    pub reference_scale_events_per_hour: Option<f64>,
    pub pod_starts: u64,
    pub reference_pod_starts: Option<f64>,
    /// `interpolated` between two reference points; `extrapolated` beyond the curve's
    /// cheapest or dearest point by at most the width of its outermost segment (along
    /// that segment, not below zero); `outside` further away.
    pub position: Position,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Position {
    Interpolated,
    Extrapolated,
    Outside,
}

/// Read every score that is not on the reference curve (nor the oracle) against it.
/// `reference` names entries present in `scores`; fewer than two points gives no curve.
pub fn compare(scores: &[Score], reference: &[String], oracle: &str) -> Option<EqualCost> {
    let on_curve: Vec<&Score> = scores.iter().filter(|s| reference.contains(&s.name)).collect();
    let curve = |y: fn(&Score) -> f64| {
        let mut c: Vec<(f64, f64)> = on_curve.iter().map(|s| (s.replica_hours, y(s))).collect();
        c.sort_by(|a, b| a.0.total_cmp(&b.0));
        c.dedup_by(|a, b| a.0 == b.0);
        c
    };
    let violations = curve(|s| s.violation_minutes);
    if violations.len() < 2 {
        return None;
    }
    let events = curve(|s| s.scale_events_per_hour);
    let starts = curve(|s| s.pod_starts as f64);
    let rows = scores
        .iter()
        .filter(|s| !reference.contains(&s.name) && s.name != oracle)
        .map(|s| {
            let (at, position) = read_curve(&violations, s.replica_hours);
            let readable = position != Position::Outside;
            let at = readable.then_some(at);
            let read =
                |c: &[(f64, f64)], digits| readable.then(|| round(read_curve(c, s.replica_hours).0, digits));
            let change_pct = at
                .filter(|&at| at > 0.0)
                .map(|at| round(100.0 * (s.violation_minutes - at) / at, 1));
            EqualCostRow {
                name: s.name.clone(),
                replica_hours: s.replica_hours,
                violation_minutes: s.violation_minutes,
                reference_violation_minutes: at.map(|at| round(at, 2)),
                change_pct,
                scale_events_per_hour: s.scale_events_per_hour,
                reference_scale_events_per_hour: read(&events, 2),
                pod_starts: s.pod_starts,
                reference_pod_starts: read(&starts, 0),
                position,
            }
        })
        .collect();
    Some(EqualCost {
        reference: reference.to_vec(),
        rows,
    })
}

/// The curve (sorted by x, at least two points) at `x`: linear between the bracketing
/// points, or along the outermost segment beyond either end, never below zero. A curve
/// read further out than one outermost segment says more about the straight line than
/// about the reference: that is `Outside`.
fn read_curve(curve: &[(f64, f64)], x: f64) -> (f64, Position) {
    let last = curve.len() - 1;
    let beyond = |seg: usize, by: f64| {
        if by > curve[seg + 1].0 - curve[seg].0 {
            (seg, Position::Outside)
        } else {
            (seg, Position::Extrapolated)
        }
    };
    let (seg, position) = if x < curve[0].0 {
        beyond(0, curve[0].0 - x)
    } else if x > curve[last].0 {
        beyond(last - 1, x - curve[last].0)
    } else {
        let i = curve.windows(2).position(|w| x <= w[1].0).unwrap_or(last - 1);
        (i, Position::Interpolated)
    };
    let (x0, y0) = curve[seg];
    let (x1, y1) = curve[seg + 1];
    let y = y0 + (y1 - y0) * (x - x0) / (x1 - x0);
    (y.max(0.0), position)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(name: &str, rh: f64, vm: f64) -> Score {
        Score {
            name: name.into(),
            policy: name.into(),
            evaluations: 1,
            failed_evaluations: 0,
            failures: Vec::new(),
            violation_pct: 0.0,
            violation_minutes: vm,
            violation_minutes_above_max: 0.0,
            unserved_pct: 0.0,
            replica_hours: rh,
            cost: 0.0,
            cost_ratio_to_oracle: 0.0,
            scale_events: 0,
            scale_events_per_hour: rh / 10.0,
            pod_starts: (rh * 2.0) as u64,
            max_replicas: 0,
            spot_interruptions: 0,
            decision_latency_us: None,
        }
    }

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn reads_the_reference_curve_at_each_policys_spend() {
        // HPA: 100 rh -> 40 min, 200 rh -> 10 min (given out of order).
        let scores = vec![
            score("hpa-0.8", 100.0, 40.0),
            score("hpa-0.5", 200.0, 10.0),
            score("ml", 150.0, 5.0),
            score("dear", 300.0, 0.0),
            score("cheap", 50.0, 80.0),
            score("far", 301.0, 0.0),
            score("oracle", 90.0, 0.0),
        ];
        let c = compare(&scores, &names(&["hpa-0.5", "hpa-0.8"]), "oracle").unwrap();
        let rows: Vec<_> = c
            .rows
            .iter()
            .map(|r| {
                (
                    r.name.as_str(),
                    r.reference_violation_minutes,
                    r.change_pct,
                    r.position,
                )
            })
            .collect();
        assert_eq!(
            rows,
            vec![
                // Half-way between the points: 25 min; 5 is 80 % fewer.
                ("ml", Some(25.0), Some(-80.0), Position::Interpolated),
                // Beyond the dearest point the curve would go negative: held at 0.
                ("dear", Some(0.0), None, Position::Extrapolated),
                // Below the cheapest point, along the first segment (-0.3 min per rh): 40 + 15 = 55.
                ("cheap", Some(55.0), Some(45.5), Position::Extrapolated),
                // More than one segment (100 rh) beyond the dearest point: not read.
                ("far", None, None, Position::Outside),
            ]
        );
    }

    #[test]
    fn no_curve_without_two_distinct_points() {
        let scores = vec![score("hpa", 100.0, 4.0), score("ml", 100.0, 1.0)];
        assert!(compare(&scores, &names(&["hpa"]), "oracle").is_none());
        let twins = vec![
            score("a", 100.0, 4.0),
            score("b", 100.0, 3.0),
            score("ml", 1.0, 1.0),
        ];
        assert!(compare(&twins, &names(&["a", "b"]), "oracle").is_none());
    }

    #[test]
    fn reads_the_reference_churn_at_the_same_spend() {
        // The test scores churn at rh / 10 events per hour and 2 × rh pod starts.
        let scores = vec![
            score("hpa-0.8", 100.0, 40.0),
            score("hpa-0.5", 200.0, 10.0),
            score("ml", 150.0, 5.0),
            score("far", 400.0, 0.0),
        ];
        let c = compare(&scores, &names(&["hpa-0.5", "hpa-0.8"]), "oracle").unwrap();
        let ml = &c.rows[0];
        assert_eq!((ml.scale_events_per_hour, ml.pod_starts), (15.0, 300));
        assert_eq!(ml.reference_scale_events_per_hour, Some(15.0));
        assert_eq!(ml.reference_pod_starts, Some(300.0));
        let far = &c.rows[1];
        assert_eq!(
            (far.reference_scale_events_per_hour, far.reference_pod_starts),
            (None, None)
        );
    }
}
