//! `tailor run`: the whole chain on this machine. Profile the space's shapes (reusing a
//! profile of this setup when there is one), search, check the pick and a few front rows
//! against whole models, export the pick, write the report.

use super::llama::Engine;
pub use crate::args::run::RunArgs;
use crate::args::run::common;
use anyhow::Result;
use tailor_workflow::run::{LlamaRunRequest, RunRequest, run_burn};
use tailor_workflow::run_set::SetRunRequest;

pub fn run(args: &RunArgs) -> Result<()> {
    let declares = !tailor_search::SearchSpace::load(&args.space)?
        .devices
        .is_empty();
    if declares || !args.target.is_empty() {
        return run_set(args);
    }
    if args.engine == Engine::LlamaCpp {
        return run_llama(args);
    }
    let o = run_burn(
        &RunRequest {
            run: common(args),
            backend: args.backend,
            timing: args.timing.options()?,
            cycle_auto: args.timing.cycle_mib.is_none(),
            anchors: args.anchors as usize,
        },
        &crate::progress::Bars,
    )?;
    print(args, &o.summary, || o.render())
}

/// `tailor run --engine llama.cpp`: profile the space's probes with llama-bench (resuming
/// the profile file of this setup and weight type), search on that profile, time the pick
/// and front rows whole in llama-bench, export and report.
fn run_llama(args: &RunArgs) -> Result<()> {
    let run = common(args);
    // A named profile of another machine is refused before llama-bench is even looked for.
    tailor_workflow::llama::require_named_here(run.profile.as_deref(), &run.space)?;
    let bench = args.llama.bench()?;
    let o = tailor_workflow::run::run_llama(
        &LlamaRunRequest {
            run,
            weights: args.llama.weights,
            bench: &bench,
            settings: args.llama.settings(),
            decode_tokens: args.llama.decode_tokens,
            anchors: args.anchors as usize,
        },
        &crate::progress::Bars,
    )?;
    print(args, &o.summary, || o.render())
}

/// `tailor run` over a set of devices: search them at once, time the picks on each device
/// here, report each device's regret.
fn run_set(args: &RunArgs) -> Result<()> {
    if args.profile.is_some() {
        anyhow::bail!(
            "{} declares [devices]: a run over a set uses each device's own file; drop \
             --profile (or give --target NAME=FILE to change one)",
            args.space.display()
        );
    }
    let o = tailor_workflow::run_set::run_set(
        &SetRunRequest {
            run: common(args),
            targets: args.target.clone(),
            engine: args.llama.engine(&args.timing, None, &args.device)?,
        },
        &crate::progress::Bars,
    )?;
    print(args, &o.summary, || o.render())
}

/// summary.json on stdout with `--json`, else the run's lines.
fn print(
    args: &RunArgs,
    summary: &tailor_report::search::Summary,
    render: impl FnOnce() -> String,
) -> Result<()> {
    if args.json {
        println!("{}", serde_json::to_string_pretty(summary)?);
    } else {
        print!("{}", render());
    }
    Ok(())
}
