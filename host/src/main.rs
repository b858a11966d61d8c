//! `wasmscaler`: the command-line entry point. Thin: parses arguments and hands over to
//! the adapters in the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use wasmscaler::cli::{self, Failure};

#[derive(Parser)]
#[command(
    name = "wasmscaler",
    version,
    about = "Kubernetes autoscaling with sandboxed WebAssembly policies"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Inspect, evaluate and validate policy components (for policy authors).
    #[command(subcommand)]
    Policy(cli::policy::PolicyCommand),
    /// Run the controller against a Kubernetes API server.
    Run(cli::run::RunArgs),
    /// Replay a load trace through policies on a simulated cluster and score them.
    Simulate(cli::simulate::SimulateArgs),
    /// Re-evaluate a decision log's recorded contexts with another policy version and
    /// report where its decisions differ (exit 1 beyond --threshold).
    Replay(cli::replay::ReplayArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    cli::init_logging();
    let result = match cli.command {
        Command::Policy(cmd) => cli::policy::run(cmd),
        Command::Run(args) => cli::run::run(args),
        Command::Simulate(args) => cli::simulate::run(args),
        Command::Replay(args) => cli::replay::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
