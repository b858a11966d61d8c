//! `wasmscaler policy inspect | eval | validate`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, anyhow};
use clap::{Args, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};
use wasmscaler_sdk::{Context, Decision, Sample, Signal, Workload};

use super::Failure;
use crate::core::spec::parse_yaml_or_json;
use crate::runtime::{Limits, LoadedPolicy, PrefetchedHistory, Runtime, builtins, default_cache_dir};

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Show what a component says about itself: describe(), contract version, digest, size.
    Inspect(InspectArgs),
    /// Evaluate a component on a context file and print the decision as JSON.
    Eval(EvalArgs),
    /// Check a configuration with the component's validate-config.
    Validate(ValidateArgs),
}

#[derive(Args)]
pub struct Source {
    /// A .wasm component, or the name of a built-in policy (e.g. `cron`).
    pub policy: String,
    /// Artifact cache directory (default: $XDG_CACHE_HOME/wasmscaler).
    #[arg(long, env = "WASMSCALER_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Per-call deadline in milliseconds (default: the policy's, 100 ms for most).
    #[arg(long)]
    pub timeout_ms: Option<u64>,
}

#[derive(Clone, Copy, ValueEnum, Default)]
pub enum Output {
    #[default]
    Text,
    Json,
}

#[derive(Args)]
pub struct InspectArgs {
    #[command(flatten)]
    pub source: Source,
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

#[derive(Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub source: Source,
    /// Context file (JSON): nowMs, workload, config, signals, optional history and state.
    #[arg(long)]
    pub context: PathBuf,
}

#[derive(Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub source: Source,
    /// Configuration file (YAML or JSON).
    #[arg(long)]
    pub config: PathBuf,
}

pub fn run(cmd: PolicyCommand) -> Result<(), Failure> {
    match cmd {
        PolicyCommand::Inspect(a) => inspect(a),
        PolicyCommand::Eval(a) => eval(a),
        PolicyCommand::Validate(a) => validate(a),
    }
}

/// Load a file or a built-in. Everything wrong with the input is a usage error.
pub(super) fn load(source: &Source) -> Result<LoadedPolicy, Failure> {
    let runtime = Runtime::deterministic(source.cache_dir.clone().or_else(default_cache_dir))
        .map_err(Failure::runtime)?;
    let path = Path::new(&source.policy);
    let mut policy = if path.exists() || source.policy.ends_with(".wasm") {
        runtime
            .load_file(path, Limits::default())
            .map_err(Failure::usage)?
    } else if let Some(bytes) = builtins::bytes(&source.policy) {
        runtime
            .load(&source.policy, bytes, builtins::default_limits(&source.policy))
            .map_err(Failure::runtime)?
    } else {
        return Err(Failure::usage(anyhow!(
            "'{}' is neither a file nor a built-in policy (built-ins: {})",
            source.policy,
            builtins::names().join(", ")
        )));
    };
    if let Some(ms) = source.timeout_ms {
        policy = policy.with_limits(Limits {
            deadline: std::time::Duration::from_millis(ms),
            ..policy.limits
        });
    }
    Ok(policy)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Inspection<'a> {
    name: &'a str,
    version: &'a str,
    summary: &'a str,
    contract: &'a str,
    digest: String,
    size_bytes: usize,
    signals: &'a [wasmscaler_sdk::SignalRequest],
    deadline_ms: u128,
    memory_limit_bytes: usize,
}

fn inspect(a: InspectArgs) -> Result<(), Failure> {
    let p = load(&a.source)?;
    let i = Inspection {
        name: &p.info.name,
        version: &p.info.version,
        summary: &p.info.summary,
        contract: p.contract,
        digest: format!("sha256:{}", p.digest),
        size_bytes: p.size_bytes,
        signals: &p.info.signals,
        deadline_ms: p.limits.deadline.as_millis(),
        memory_limit_bytes: p.limits.memory_bytes,
    };
    match a.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&i).map_err(Failure::runtime)?),
        Output::Text => {
            println!("{} {}  —  {}", i.name, i.version, i.summary);
            println!("contract  {}", i.contract);
            println!("digest    {}", i.digest);
            println!("size      {} bytes", i.size_bytes);
            println!(
                "limits    {} ms deadline, {} MiB memory",
                i.deadline_ms,
                i.memory_limit_bytes >> 20
            );
            println!("signals");
            for s in i.signals {
                let window = if s.window_ms == 0 {
                    "latest".to_string()
                } else {
                    format!("{} s window", s.window_ms / 1000)
                };
                let req = if s.required { "required" } else { "optional" };
                println!("  {:<22} {:<14} {:<9} {}", s.name, window, req, s.description);
            }
        }
    }
    Ok(())
}

/// The context file of `policy eval`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ContextFile {
    now_ms: i64,
    #[serde(default)]
    workload: Workload,
    /// The policy's configuration (any JSON value, or JSON/YAML text).
    #[serde(default)]
    config: serde_json::Value,
    /// Signal name -> [[atMs, value], ...], oldest first.
    #[serde(default)]
    signals: BTreeMap<String, Vec<(i64, f64)>>,
    /// Signal name -> samples the `history` import answers with.
    #[serde(default)]
    history: BTreeMap<String, Vec<(i64, f64)>>,
    /// State from a previous decision (as printed by `policy eval`).
    #[serde(default)]
    state: Option<serde_json::Value>,
}

fn read_context(path: &Path) -> Result<(Context, PrefetchedHistory), Failure> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}", path.display()))
        .map_err(Failure::usage)?;
    let de = &mut serde_json::Deserializer::from_str(&text);
    let file: ContextFile = serde_path_to_error::deserialize(de).map_err(|e| {
        let path_in = e.path().to_string();
        Failure::usage(anyhow!(
            "{}: at '{}': {}",
            path.display(),
            path_in,
            e.into_inner()
        ))
    })?;
    // The config as the controller would hand it over: a workload's whole
    // `wasmscaler.io/config` can be pasted, its host-owned keys are not the policy's.
    let config = match file.config {
        serde_json::Value::Null => serde_json::json!({}),
        serde_json::Value::String(s) => parse_yaml_or_json(&s)
            .map_err(|m| Failure::usage(anyhow!("{}: at 'config': {m}", path.display())))?,
        v => v,
    };
    let config = crate::core::spec::policy_view(config).to_string();
    let to_samples = |v: Vec<(i64, f64)>| {
        v.into_iter()
            .map(|(at_ms, value)| Sample { at_ms, value })
            .collect::<Vec<_>>()
    };
    let state = match file.state {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => Some(serde_json::to_vec(&v).map_err(Failure::usage)?),
    };
    let ctx = Context {
        now_ms: file.now_ms,
        workload: file.workload,
        config,
        signals: file
            .signals
            .into_iter()
            .map(|(name, v)| Signal {
                name,
                samples: to_samples(v),
            })
            .collect(),
        state,
    };
    let history = PrefetchedHistory {
        now_ms: file.now_ms,
        series: file
            .history
            .into_iter()
            .map(|(k, v)| (k, to_samples(v)))
            .collect(),
    };
    Ok((ctx, history))
}

/// A decision as `policy eval` prints it: state shown as JSON when it is JSON.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Printed {
    #[serde(flatten)]
    decision: Decision,
    latency_us: u128,
}

fn eval(a: EvalArgs) -> Result<(), Failure> {
    let (ctx, history) = read_context(&a.context)?;
    let policy = load(&a.source)?;
    let started = Instant::now();
    let (result, _fuel) = crate::core::evaluate::call_policy(&policy, &ctx, Some(Arc::new(history)));
    let latency_us = started.elapsed().as_micros();
    let decision = result.map_err(|e| Failure::runtime(anyhow!("{}: {e}", policy.name)))?;
    let mut value = serde_json::to_value(Printed { decision, latency_us }).map_err(Failure::runtime)?;
    // Show the state readably: policies written with the SDK keep JSON.
    if let Some(obj) = value.as_object_mut()
        && let Some(bytes) = obj
            .get("state")
            .and_then(|s| serde_json::from_value::<Vec<u8>>(s.clone()).ok())
    {
        let shown = serde_json::from_slice::<serde_json::Value>(&bytes)
            .unwrap_or(serde_json::Value::String(hex::encode(&bytes)));
        obj.insert("state".into(), shown);
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&value).map_err(Failure::runtime)?
    );
    Ok(())
}

fn validate(a: ValidateArgs) -> Result<(), Failure> {
    let text = std::fs::read_to_string(&a.config)
        .with_context(|| a.config.display().to_string())
        .map_err(Failure::usage)?;
    let value =
        parse_yaml_or_json(&text).map_err(|m| Failure::usage(anyhow!("{}: {m}", a.config.display())))?;
    let policy = load(&a.source)?;
    match policy.validate_config(&value.to_string()) {
        Ok(()) => {
            println!(
                "{}: valid configuration for {} {}",
                a.config.display(),
                policy.info.name,
                policy.info.version
            );
            Ok(())
        }
        Err(crate::runtime::EvalError::Policy(e)) => {
            Err(Failure::usage(anyhow!("{}: {e}", a.config.display())))
        }
        Err(e) => Err(Failure::runtime(anyhow!("{}: {e}", policy.name))),
    }
}
