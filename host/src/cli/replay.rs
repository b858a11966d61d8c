//! `wasmscaler replay LOG... --policy NEW`: hand every recorded context of a policy to a
//! new version and report, per workload, how its answers differ. Exit 1 when they differ
//! beyond `--threshold` (a rollout gate), 2 on bad input.

use std::path::PathBuf;

use anyhow::anyhow;
use clap::{Args, ValueEnum};

use super::Failure;
use super::policy::{Source, load};
use crate::core::decision_log::reader;
use crate::core::replay::{Answer, Replay, Replayer, Report, StateChain};
use crate::core::spec::{parse_yaml_or_json, policy_view};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Chain {
    /// Hand each evaluation the state the recorded policy got then (default): what the
    /// new version would have said at each moment; differences show where they happen.
    Recorded,
    /// The new version's own states from one evaluation to the next: what it would have
    /// done (its memory carries its differences forward).
    Own,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Decision logs (files, gzip or plain, or directories of a controller's log files),
    /// oldest first.
    #[arg(required = true, value_name = "LOG")]
    pub logs: Vec<PathBuf>,
    /// The new version: a .wasm component or a built-in policy name.
    #[arg(long, value_name = "NEW.wasm|BUILTIN")]
    pub policy: String,
    /// Replace the recorded config (YAML or JSON file; a whole wasmscaler.io/config works,
    /// its host-owned keys are dropped).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Only this workload: NAMESPACE/NAME or KIND/NAMESPACE/NAME.
    #[arg(long, value_name = "NS/NAME")]
    pub workload: Option<String>,
    /// Changed decisions a workload may have before the exit code is 1: a count (default
    /// 0: any change fails) or a share of its evaluations (`2%`).
    #[arg(long, value_name = "N|N%", default_value = "0")]
    pub threshold: String,
    /// Which state the new version is handed.
    #[arg(long, value_enum, default_value = "recorded")]
    pub state_chain: Chain,
    /// The recorded policy to stand in for, by the reference workloads name
    /// (`file:knative.wasm`, `cron`). Default: the one with the new version's describe() name.
    #[arg(long, value_name = "REF")]
    pub replaces: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub output: Format,
    /// Artifact cache directory (default: $XDG_CACHE_HOME/wasmscaler).
    #[arg(long, env = "WASMSCALER_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Per-call deadline in milliseconds (default: the policy's).
    #[arg(long)]
    pub timeout_ms: Option<u64>,
}

/// `--threshold`: a count or a percentage of a workload's evaluations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    Count(u64),
    Percent(f64),
}

impl Threshold {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let bad = || format!("--threshold '{s}': a count (3) or a percentage (2.5%)");
        match s.strip_suffix('%') {
            Some(p) => p
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|p| p.is_finite() && *p >= 0.0)
                .map(Threshold::Percent)
                .ok_or_else(bad),
            None => s.parse::<u64>().map(Threshold::Count).map_err(|_| bad()),
        }
    }

    fn exceeded(self, changed: u64, evaluations: u64) -> bool {
        match self {
            Threshold::Count(n) => changed > n,
            Threshold::Percent(p) => evaluations > 0 && changed as f64 * 100.0 / evaluations as f64 > p,
        }
    }

    fn show(self) -> String {
        match self {
            Threshold::Count(n) => n.to_string(),
            Threshold::Percent(p) => format!("{p}%"),
        }
    }
}

/// Does a record's workload pass `--workload`?
fn selected(filter: Option<&str>, kind: &str, namespace: &str, name: &str) -> bool {
    let Some(f) = filter else { return true };
    match f.split('/').collect::<Vec<_>>().as_slice() {
        [ns, n] => *ns == namespace && *n == name,
        [k, ns, n] => *k == kind && *ns == namespace && *n == name,
        _ => false,
    }
}

pub fn run(a: ReplayArgs) -> Result<(), Failure> {
    let threshold = Threshold::parse(&a.threshold).map_err(|m| Failure::usage(anyhow!(m)))?;
    if let Some(w) = &a.workload
        && !matches!(w.split('/').count(), 2 | 3)
    {
        return Err(Failure::usage(anyhow!(
            "--workload '{w}': NAMESPACE/NAME or KIND/NAMESPACE/NAME"
        )));
    }
    let files = reader::expand(&a.logs).map_err(Failure::usage)?;
    let policy = load(&Source {
        policy: a.policy.clone(),
        cache_dir: a.cache_dir.clone(),
        timeout_ms: a.timeout_ms,
    })?;
    let config = match &a.config {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure::usage(anyhow!("{}: {e}", path.display())))?;
            let value =
                parse_yaml_or_json(&text).map_err(|m| Failure::usage(anyhow!("{}: {m}", path.display())))?;
            let json = policy_view(value).to_string();
            match policy.validate_config(&json) {
                Ok(()) => {}
                Err(crate::runtime::EvalError::Policy(e)) => {
                    return Err(Failure::usage(anyhow!("{}: {e}", path.display())));
                }
                Err(e) => return Err(Failure::runtime(anyhow!("{}: {e}", policy.name))),
            }
            Some(json)
        }
    };
    let mut replayer = Replayer::new(Replay {
        policy: &policy,
        config,
        chain: match a.state_chain {
            Chain::Recorded => StateChain::Recorded,
            Chain::Own => StateChain::Own,
        },
        replaces: a.replaces.clone(),
    });
    for file in &files {
        for item in reader::read(file).map_err(Failure::usage)? {
            let loc = item.map_err(Failure::usage)?;
            let w = &loc.record.workload;
            if !selected(a.workload.as_deref(), &w.kind, &w.namespace, &w.name) {
                continue;
            }
            replayer
                .push(&loc.record)
                .map_err(|m| Failure::usage(anyhow!("{}:{}: {m}", loc.file.display(), loc.line)))?;
        }
    }
    let report = replayer.finish();
    if report.workloads.is_empty() {
        let which = a
            .replaces
            .clone()
            .unwrap_or_else(|| format!("'{}' (describe() name)", report.policy));
        return Err(Failure::usage(anyhow!(
            "no recorded evaluation of {which}{} in {} record(s); policies recorded: {}{}",
            a.workload
                .as_deref()
                .map(|w| format!(" for {w}"))
                .unwrap_or_default(),
            report.records,
            if report.seen_policies.is_empty() {
                "none".to_string()
            } else {
                report.seen_policies.join(", ")
            },
            if a.replaces.is_none() {
                " (--replaces REF replays another)"
            } else {
                ""
            }
        )));
    }
    match a.output {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(Failure::runtime)?
        ),
        Format::Table => print!("{}", table(&report)),
    }
    let over: Vec<String> = report
        .workloads
        .iter()
        .filter(|w| threshold.exceeded(w.changed, w.evaluations))
        .map(|w| format!("{} ({} of {})", w.workload, w.changed, w.evaluations))
        .collect();
    if !over.is_empty() {
        return Err(Failure::runtime(anyhow!(
            "decisions changed beyond the threshold ({}): {}",
            threshold.show(),
            over.join(", ")
        )));
    }
    Ok(())
}

fn duration(ms: i64) -> String {
    let s = ms / 1000;
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, _) => format!("{h}h{m:02}m"),
    }
}

fn time(ms: i64) -> String {
    k8s_openapi::jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| format!("{ms} ms"))
}

fn answer(a: &Answer) -> String {
    match a {
        Answer::Decision {
            replicas,
            jobs,
            placement,
        } => {
            let mut s = replicas.to_string();
            if let Some(j) = jobs {
                s.push_str(&format!(" +{j} jobs"));
            }
            if !placement.is_empty() {
                let p: Vec<String> = placement
                    .iter()
                    .map(|p| format!("{}={}", p.pool, p.replicas))
                    .collect();
                s.push_str(&format!(" [{}]", p.join(",")));
            }
            s
        }
        Answer::Error { kind } => format!("error: {kind}"),
    }
}

/// Changes listed per workload in the table (all of them are in the JSON).
const SHOWN_CHANGES: usize = 10;

fn table(r: &Report) -> String {
    let mut out = format!(
        "replay of {} {} (sha256:{}) with the {} state chain: {} record(s), {} without it\n\n",
        r.policy,
        r.version,
        r.digest.get(..12).unwrap_or(&r.digest),
        match r.state_chain {
            StateChain::Recorded => "recorded",
            StateChain::Own => "new version's own",
        },
        r.records,
        r.skipped
    );
    out.push_str(&format!(
        "{:<40} {:>6} {:>7} {:>6} {:>8} {:>8} {:>8} {:>11} {:>11}\n",
        "WORKLOAD", "EVALS", "CHANGED", "MAX Δ", "MEAN |Δ|", "ABOVE", "BELOW", "REPLICA-H", "NEW REP-H"
    ));
    for w in &r.workloads {
        out.push_str(&format!(
            "{:<40} {:>6} {:>7} {:>+6} {:>8.3} {:>8} {:>8} {:>11.2} {:>11.2}\n",
            w.workload,
            w.evaluations,
            w.changed,
            w.max_delta,
            w.mean_abs_delta,
            duration(w.above_ms),
            duration(w.below_ms),
            w.replica_hours_recorded,
            w.replica_hours_new
        ));
    }
    for w in r.workloads.iter().filter(|w| !w.changes.is_empty()) {
        out.push_str(&format!("\n{}: {} changed decision(s)\n", w.workload, w.changed));
        for c in w.changes.iter().take(SHOWN_CHANGES) {
            out.push_str(&format!(
                "  {}  recorded {} -> new {}{}\n",
                time(c.at_ms),
                answer(&c.recorded),
                answer(&c.new),
                c.error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default()
            ));
        }
        if w.changes.len() > SHOWN_CHANGES {
            out.push_str(&format!(
                "  ... {} more (--output json lists all)\n",
                w.changes.len() - SHOWN_CHANGES
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_counts_or_shares() {
        assert_eq!(Threshold::parse("3"), Ok(Threshold::Count(3)));
        assert_eq!(Threshold::parse("2.5%"), Ok(Threshold::Percent(2.5)));
        assert!(Threshold::parse("-1").is_err() && Threshold::parse("x%").is_err());
        assert!(!Threshold::Count(0).exceeded(0, 10));
        assert!(Threshold::Count(0).exceeded(1, 10));
        assert!(!Threshold::Percent(10.0).exceeded(1, 10));
        assert!(Threshold::Percent(10.0).exceeded(2, 10));
    }

    #[test]
    fn workloads_are_selected_by_namespace_and_name_or_with_the_kind() {
        assert!(selected(None, "Deployment", "a", "b"));
        assert!(selected(Some("a/b"), "Deployment", "a", "b"));
        assert!(selected(Some("Deployment/a/b"), "Deployment", "a", "b"));
        assert!(!selected(Some("StatefulSet/a/b"), "Deployment", "a", "b"));
        assert!(!selected(Some("a/c"), "Deployment", "a", "b"));
    }
}
