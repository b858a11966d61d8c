//! Label selectors in their query form (`app=web,tier in (a,b),!canary,track`), parsed
//! into kube-core's [`Selector`] so cached objects can be matched in memory.
//!
//! kube-core 5 matches labels against a [`Selector`] and builds one from a
//! `LabelSelector` or from [`Expression`]s, but does not parse the string form; this
//! module does, with the grammar of apimachinery's `labels.Parse`:
//! requirements separated by commas (commas inside `( )` belong to a value set), each one
//! of `key`, `!key`, `key=value`, `key==value`, `key!=value`, `key in (v1,v2)`,
//! `key notin (v1,v2)`; spaces around tokens are ignored; an empty selector selects
//! everything. Keys and values are checked as the API server checks them (a key is an
//! optional DNS-subdomain prefix and `/` plus a name of at most 63 characters; a value is
//! empty or at most 63 characters of alphanumerics, `-`, `_`, `.`, starting and ending
//! alphanumeric). `key>N` / `key<N` (node selectors only) are refused.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::{Expression, Selector};

/// Why a selector string is not one; names the selector and the offending requirement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("label selector '{selector}': '{part}' {why}")]
pub struct SelectorError {
    pub selector: String,
    /// The requirement (the text between two top-level commas) that failed.
    pub part: String,
    pub why: String,
}

/// Parse a selector in query syntax.
pub fn parse(selector: &str) -> Result<Selector, SelectorError> {
    let fail = |part: &str, why: String| SelectorError {
        selector: selector.to_string(),
        part: part.trim().to_string(),
        why,
    };
    if selector.trim().is_empty() {
        return Ok(Selector::default());
    }
    let parts = split_top_level(selector).map_err(|(part, why)| fail(part, why.to_string()))?;
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        out.push(requirement(part).map_err(|why| fail(part, why))?);
    }
    Ok(out.into_iter().collect())
}

/// Split at the commas outside parentheses.
fn split_top_level(s: &str) -> Result<Vec<&str>, (&str, &'static str)> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0u32, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '(' if depth > 0 => return Err((&s[start..], "has a '(' inside a value set")),
            '(' => depth = 1,
            ')' if depth == 0 => return Err((&s[start..=i], "has a ')' without its '('")),
            ')' => depth = 0,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth > 0 {
        return Err((&s[start..], "has no closing ')'"));
    }
    parts.push(&s[start..]);
    Ok(parts)
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/')
}

fn requirement(part: &str) -> Result<Expression, String> {
    let t = part.trim();
    if t.is_empty() {
        return Err("is empty (a comma too many?)".into());
    }
    if let Some(rest) = t.strip_prefix('!') {
        let key = rest.trim();
        check_key(key)?;
        return Ok(Expression::DoesNotExist(key.to_string()));
    }
    let end = t.find(|c: char| !is_key_char(c)).unwrap_or(t.len());
    let key = &t[..end];
    check_key(key)?;
    let rest = t[end..].trim_start();
    if rest.is_empty() {
        return Ok(Expression::Exists(key.to_string()));
    }
    let value = |v: &str| -> Result<String, String> {
        let v = v.trim();
        check_value(v)?;
        Ok(v.to_string())
    };
    if let Some(v) = rest.strip_prefix("!=") {
        return Ok(Expression::NotEqual(key.to_string(), value(v)?));
    }
    if let Some(v) = rest.strip_prefix("==").or_else(|| rest.strip_prefix('=')) {
        return Ok(Expression::Equal(key.to_string(), value(v)?));
    }
    if rest.starts_with(['<', '>']) {
        return Err("uses '<' or '>', which only node selectors support".into());
    }
    let set = |words: &str, op: &str| -> Result<std::collections::BTreeSet<String>, String> {
        let inner = words
            .trim()
            .strip_prefix('(')
            .and_then(|w| w.strip_suffix(')'))
            .ok_or_else(|| format!("needs a value set in parentheses after '{op}'"))?;
        // As apimachinery: `in ()` and `in (a,)` hold the empty value.
        inner.split(',').map(&value).collect()
    };
    for (op, not) in [("notin", true), ("in", false)] {
        if let Some(after) = rest.strip_prefix(op)
            && after.starts_with(|c: char| c.is_whitespace() || c == '(')
        {
            let values = set(after, op)?;
            return Ok(if not {
                Expression::NotIn(key.to_string(), values)
            } else {
                Expression::In(key.to_string(), values)
            });
        }
    }
    Err(format!(
        "has no operator after '{key}' (expected =, ==, !=, in (...) or notin (...))"
    ))
}

fn is_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("has no label key".into());
    }
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        let dns = p.len() <= 253
            && p.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                    && l.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                    && l.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            });
        if !dns {
            return Err(format!(
                "has key '{key}' whose prefix '{p}' is not a DNS subdomain"
            ));
        }
    }
    if !is_name(name, 63) {
        return Err(format!(
            "has key '{key}' that is not a label key (at most 63 alphanumerics, '-', '_', '.', starting and ending alphanumeric, after an optional DNS prefix and '/')"
        ));
    }
    Ok(())
}

fn check_value(v: &str) -> Result<(), String> {
    if v.is_empty() || is_name(v, 63) {
        Ok(())
    } else {
        Err(format!(
            "has value '{v}' that is not a label value (at most 63 alphanumerics, '-', '_', '.', starting and ending alphanumeric)"
        ))
    }
}

/// A workload's selector (`matchLabels` and `matchExpressions`) in query syntax, as
/// `kubectl get pods -l` takes it; [`parse`] reads it back.
pub fn to_query(sel: &LabelSelector) -> String {
    let mut parts: Vec<String> = sel
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in sel.match_expressions.iter().flatten() {
        let vals = e.values.clone().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({vals})", e.key),
            "NotIn" => format!("{} notin ({vals})", e.key),
            "Exists" => e.key.clone(),
            "DoesNotExist" => format!("!{}", e.key),
            _ => continue,
        });
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use kube::core::SelectorExt;

    use super::*;

    fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn matches(sel: &str, kv: &[(&str, &str)]) -> bool {
        match parse(sel) {
            Ok(s) => s.matches(&labels(kv)),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn every_operator_matches_as_the_api_server_does() {
        let web = [("app", "web"), ("tier", "front"), ("track", "stable")];
        assert!(matches("app=web", &web));
        assert!(matches("app==web", &web));
        assert!(!matches("app=db", &web));
        assert!(matches("app!=db", &web));
        assert!(!matches("app!=web", &web));
        assert!(matches("zone!=a", &web), "!= holds when the key is absent");
        assert!(matches("tier in (front, back)", &web));
        assert!(matches("tier in(front)", &web));
        assert!(!matches("tier in (back)", &web));
        assert!(!matches("zone in (a)", &web), "in needs the key");
        assert!(matches("tier notin (back)", &web));
        assert!(!matches("tier notin (front,back)", &web));
        assert!(
            matches("zone notin (a)", &web),
            "notin holds when the key is absent"
        );
        assert!(matches("track", &web));
        assert!(!matches("canary", &web));
        assert!(matches("!canary", &web));
        assert!(!matches("! track", &web));
        assert!(matches("", &web), "the empty selector selects everything");
        assert!(matches(" app = web , tier in (front,back),!canary,track ", &web));
        assert!(
            !matches("app=web,tier in (back)", &web),
            "every requirement must hold"
        );
        assert!(matches(
            "app.kubernetes.io/name=web",
            &[("app.kubernetes.io/name", "web")]
        ));
        assert!(matches("empty=", &[("empty", "")]));
        assert!(
            matches("v in (a,)", &[("v", "")]),
            "apimachinery: a trailing comma is the empty value"
        );
    }

    #[test]
    fn a_workload_selector_round_trips_through_its_query() {
        let sel: LabelSelector = serde_json::from_value(serde_json::json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["front", "back"]},
                {"key": "zone", "operator": "NotIn", "values": ["a"]},
                {"key": "track", "operator": "Exists"},
                {"key": "canary", "operator": "DoesNotExist"}
            ]
        }))
        .unwrap_or_default();
        let q = to_query(&sel);
        assert_eq!(q, "app=web,tier in (front,back),zone notin (a),track,!canary");
        let parsed = parse(&q).unwrap_or_else(|e| panic!("{e}"));
        let direct = Selector::try_from(sel).unwrap_or_else(|e| panic!("{e}"));
        for kv in [
            &[("app", "web"), ("tier", "front"), ("track", "x")][..],
            &[("app", "web"), ("tier", "front"), ("track", "x"), ("canary", "1")][..],
            &[("app", "web"), ("tier", "mid"), ("track", "x")][..],
            &[("app", "web"), ("tier", "back"), ("zone", "a"), ("track", "x")][..],
        ] {
            assert_eq!(parsed.matches(&labels(kv)), direct.matches(&labels(kv)), "{kv:?}");
        }
    }

    #[test]
    fn errors_name_the_selector_and_the_offending_part() {
        let err = |s: &str| parse(s).map(|_| ()).unwrap_err().to_string();
        assert_eq!(
            err("app=web,tier in (a,b"),
            "label selector 'app=web,tier in (a,b': 'tier in (a,b' has no closing ')'"
        );
        assert_eq!(
            err("app=web,,x"),
            "label selector 'app=web,,x': '' is empty (a comma too many?)"
        );
        assert!(err("app=web,tier (a)").contains("'tier (a)' has no operator after 'tier'"));
        assert!(err("app=web,tier in a").contains("'tier in a' needs a value set in parentheses after 'in'"));
        assert!(err("app=we b").contains("'app=we b' has value 'we b'"));
        assert!(err("-app=web").contains("has key '-app'"));
        assert!(err("Example.com/app=web").contains("prefix 'Example.com' is not a DNS subdomain"));
        assert!(err("replicas>3").contains("'<' or '>'"));
        assert!(err("a=b)").contains("')' without its '('"));
        assert!(err("a in ((b))").contains("'(' inside a value set"));
        assert!(err("!").contains("has no label key"));
        assert!(err("=web").contains("has no label key"));
    }
}
