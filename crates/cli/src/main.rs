//! `tailor`: the command line. Parses arguments, wires the libraries, prints.
//! Data goes to stdout, logs and progress to stderr.

use clap::{Parser, Subcommand};
use std::io::IsTerminal;
use std::process::ExitCode;

/// burn's CPU backends allocate a fresh buffer for every operator output. glibc's malloc
/// hands large freed buffers back to the OS and faults them in again on the next call,
/// which made a decode step up to 2.5x slower than its operators timed alone, and made
/// every timing depend on the allocator's history. mimalloc keeps freed pages for reuse,
/// as an on-device runtime keeps its preallocated buffers: profiles and whole-model
/// timings then measure the operators, not page faults.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod args;
mod commands;
use tailor_report::fmt;
mod progress;
use tailor_workflow::remote;

/// Design small language models for a device before training them.
#[derive(Debug, Parser)]
#[command(name = "tailor", version, about, long_about = None)]
struct Cli {
    /// More logging on stderr (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// When another tailor is writing the same profile or output folder, fail at once
    /// instead of waiting for it.
    #[arg(long, global = true)]
    no_wait: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The whole chain on this machine: profile (or reuse a profile), search, check the
    /// pick against whole models, export it, write a report.
    Run(commands::run::RunArgs),
    /// Exact parameters, FLOPs, weight bytes and KV cache of one architecture.
    Spec(commands::spec::SpecArgs),
    /// Search a space of architectures for the Pareto front of speed and size.
    Search(commands::search::SearchArgs),
    /// Time the operator shapes a space needs on this machine (burn: flex, ndarray, wgpu).
    Profile(commands::profile::ProfileArgs),
    /// Predict one model's prefill, decode and memory on a profiled device.
    Predict(commands::predict::PredictArgs),
    /// Build one whole model with random weights and time it on this machine.
    Measure(commands::measure::MeasureArgs),
    /// Check a profile's predictions against whole models timed on this machine.
    Validate(commands::validate::ValidateArgs),
    /// Write config.json, spec.toml and MODEL_CARD.md of a front row or a spec.
    Export(commands::export::ExportArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    tailor_workflow::lock::set_no_wait(cli.no_wait);
    pin_threads();
    let result = match cli.command {
        Command::Run(args) => commands::run::run(&args),
        Command::Spec(args) => commands::spec::run(&args),
        Command::Search(args) => commands::search::run(&args),
        Command::Profile(args) => commands::profile::run(&args),
        Command::Predict(args) => commands::predict::run(&args),
        Command::Measure(args) => commands::measure::run(&args),
        Command::Validate(args) => commands::validate::run(&args),
        Command::Export(args) => commands::export::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Pins burn's CPU worker threads one per allowed CPU before anything runs on them (see
/// `pin_worker_threads`: unpinned, the scheduler's placement made a parallel operator's
/// time bimodal across sessions); `TAILOR_PIN=0` leaves them to the scheduler.
fn pin_threads() {
    if std::env::var("TAILOR_PIN").is_ok_and(|v| v == "0") {
        tracing::debug!("worker threads left unpinned (TAILOR_PIN=0)");
        return;
    }
    match tailor_profiler::device_state::pin_worker_threads() {
        Ok(cpus) => tracing::debug!(?cpus, "worker threads pinned"),
        Err(why) => tracing::debug!("worker threads not pinned: {why}"),
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(color)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .init();
}
