//! Arithmetic every policy needs, with NaN and infinity turned into clear errors instead
//! of silently becoming 0 or `u32::MAX` in a cast.

use crate::types::PolicyError;

/// `value` if finite, else an error naming `what`.
pub fn finite(what: &str, value: f64) -> Result<f64, PolicyError> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(PolicyError::Internal(format!(
            "{what} is {value}, not a finite number"
        )))
    }
}

/// `ceil(load / per_replica)` replicas, saturating at `u32::MAX`. Negative load counts as 0.
pub fn replicas_for(load: f64, per_replica: f64) -> Result<u32, PolicyError> {
    let load = finite("load", load)?;
    let per_replica = finite("target per replica", per_replica)?;
    if per_replica <= 0.0 {
        return Err(PolicyError::InvalidConfig(format!(
            "target per replica must be > 0, got {per_replica}"
        )));
    }
    Ok(ceil_u32(load.max(0.0) / per_replica))
}

/// The HPA's proportional rule: `ceil(current × metric / target)`, or `current` unchanged
/// while `|metric / target − 1| ≤ tolerance`. With `current == 0` the answer is
/// `ceil(metric / target)` (scale from zero).
pub fn hpa_proportional(current: u32, metric: f64, target: f64, tolerance: f64) -> Result<u32, PolicyError> {
    let metric = finite("metric", metric)?;
    let target = finite("target", target)?;
    if target <= 0.0 {
        return Err(PolicyError::InvalidConfig(format!(
            "target must be > 0, got {target}"
        )));
    }
    if current == 0 {
        return Ok(ceil_u32(metric.max(0.0) / target));
    }
    let ratio = metric.max(0.0) / target;
    if (ratio - 1.0).abs() <= tolerance {
        return Ok(current);
    }
    Ok(ceil_u32(f64::from(current) * ratio))
}

/// Ceil a finite non-negative value into `u32`, saturating.
pub fn ceil_u32(value: f64) -> u32 {
    // A tiny epsilon keeps 3.0000000000000004 from becoming 4.
    let v = (value - 1e-9).ceil();
    if v <= 0.0 {
        0
    } else if v >= f64::from(u32::MAX) {
        u32::MAX
    } else {
        v as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_for_rounds_up_and_rejects_bad_input() {
        assert_eq!(replicas_for(250.0, 100.0).unwrap(), 3);
        assert_eq!(replicas_for(300.0, 100.0).unwrap(), 3);
        assert_eq!(replicas_for(0.1 * 3.0, 0.1).unwrap(), 3);
        assert_eq!(replicas_for(-5.0, 100.0).unwrap(), 0);
        assert!(matches!(replicas_for(f64::NAN, 1.0), Err(PolicyError::Internal(m)) if m.contains("NaN")));
        assert!(replicas_for(1.0, 0.0).is_err());
        assert_eq!(replicas_for(1e300, 1.0).unwrap(), u32::MAX);
    }

    #[test]
    fn hpa_rule_respects_tolerance() {
        assert_eq!(hpa_proportional(4, 105.0, 100.0, 0.1).unwrap(), 4);
        assert_eq!(hpa_proportional(4, 150.0, 100.0, 0.1).unwrap(), 6);
        assert_eq!(hpa_proportional(4, 50.0, 100.0, 0.1).unwrap(), 2);
        assert_eq!(hpa_proportional(0, 250.0, 100.0, 0.1).unwrap(), 3);
        assert!(hpa_proportional(4, f64::INFINITY, 100.0, 0.1).is_err());
    }
}
