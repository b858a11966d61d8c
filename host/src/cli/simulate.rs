//! `wasmscaler simulate`: run a scenario, print the scorecard, optionally write JSON and a
//! chart. Everything is computed before anything is written; files are written to a
//! temporary name and renamed, so a failed run leaves nothing behind.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Failure;
use crate::sim::report::{self, chart, json, table};
use crate::sim::{SimError, run, scenario, setup};

/// The bundled default scenario (NASA July 1995, knative-concurrency and ml-predictive
/// against the HPA baseline), embedded with its trace so it runs from anywhere.
pub const DEFAULT_SCENARIO: &str = include_str!("../../../examples/scenarios/default.yaml");
pub const DEFAULT_SCENARIO_PATH: &str = "examples/scenarios/default.yaml";
const DEFAULT_TRACE: &str = include_str!("../../../examples/traces/nasa_http_jul95_per_min.csv");

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Scenario file (YAML). Without one, the bundled default scenario runs.
    pub scenario: Option<PathBuf>,
    /// What to print.
    #[arg(long, value_enum, default_value = "table")]
    pub output: Format,
    /// Write the output to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Also draw load, capacity and replicas per policy over time as SVG.
    #[arg(long, value_name = "FILE.svg")]
    pub chart: Option<PathBuf>,
    /// Write every evaluation to this decision log (JSON lines; gzip when it ends in
    /// `.gz`), for `wasmscaler replay`. Entries follow each other in scenario order.
    #[arg(long, value_name = "FILE")]
    pub decision_log: Option<PathBuf>,
    /// Override the scenario's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Policies simulated at the same time (output does not depend on it).
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Include wall-clock figures (decision latency, speed) in the JSON; such output is
    /// no longer byte-identical between runs.
    #[arg(long)]
    pub timings: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Load a scenario file, or the bundled default.
pub fn load_scenario(path: Option<&Path>) -> Result<(scenario::Loaded, Option<&'static str>), SimError> {
    match path {
        Some(p) => Ok((scenario::load(p)?, None)),
        None => {
            // From a checkout, prefer the file on disk (same content); otherwise embedded.
            let on_disk = Path::new(DEFAULT_SCENARIO_PATH);
            if on_disk.is_file() {
                return Ok((scenario::load(on_disk)?, None));
            }
            let l = scenario::parse(Path::new(DEFAULT_SCENARIO_PATH), DEFAULT_SCENARIO.to_string())?;
            Ok((l, Some(DEFAULT_TRACE)))
        }
    }
}

pub fn run(a: SimulateArgs) -> Result<(), Failure> {
    let classify = |e: SimError| {
        if e.is_usage() {
            Failure::usage(e)
        } else {
            Failure::runtime(e)
        }
    };
    let (mut loaded, embedded) = load_scenario(a.scenario.as_deref()).map_err(classify)?;
    if let Some(seed) = a.seed {
        loaded.scenario.seed = seed;
    }
    for target in [a.out.as_deref(), a.chart.as_deref(), a.decision_log.as_deref()]
        .into_iter()
        .flatten()
    {
        let dir = target
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !dir.is_dir() {
            return Err(Failure::usage(anyhow::anyhow!(
                "{}: directory {} does not exist",
                target.display(),
                dir.display()
            )));
        }
    }
    let registry = setup::registry_for(&loaded).map_err(classify)?;
    let mut prepared = setup::prepare_with(loaded, registry, embedded).map_err(classify)?;
    prepared.decision_log = a
        .decision_log
        .as_ref()
        .map(|p| p.extension().is_some_and(|e| e == "gz"));

    let steps = run::steps(&prepared) * prepared.entries.len() as u64;
    let show = !a.quiet && std::io::stderr().is_terminal();
    let pb = ProgressBar::with_draw_target(Some(steps), ProgressDrawTarget::hidden());
    if show {
        pb.set_style(
            ProgressStyle::with_template("simulating {bar:40} {percent:>3}% {elapsed}/{duration}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        // Only runs longer than a second get a bar.
        let bar = pb.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(1));
            if !bar.is_finished() {
                bar.set_draw_target(ProgressDrawTarget::stderr());
            }
        });
    }
    let outcome = run::run(&prepared, a.threads, Some(&pb)).map_err(classify)?;
    pb.finish_and_clear();

    let jobs = prepared.loaded.scenario.jobs.is_some();
    let rep = report::build(&prepared, &outcome, a.timings || a.output == Format::Table);
    let text = match a.output {
        Format::Table => table::render(&rep, jobs),
        Format::Json => json::render(&rep),
    };
    let svg = match &a.chart {
        Some(_) => {
            Some(chart::render(&prepared, &outcome).map_err(|e| Failure::runtime(anyhow::anyhow!(e)))?)
        }
        None => None,
    };
    if let Some(path) = &a.decision_log {
        let bytes: Vec<u8> = outcome
            .runs
            .iter()
            .flat_map(|r| r.decision_log.iter().copied())
            .collect();
        write_atomic(path, &bytes).map_err(Failure::runtime)?;
    }
    if let (Some(path), Some(svg)) = (&a.chart, &svg) {
        write_atomic(path, svg.as_bytes()).map_err(Failure::runtime)?;
    }
    match &a.out {
        Some(path) => write_atomic(path, text.as_bytes()).map_err(Failure::runtime)?,
        None => print!("{text}"),
    }
    Ok(())
}

/// Write to `path.tmp-<pid>` and rename over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {}", path.display())
    })
}
