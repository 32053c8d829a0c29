//! `tailor validate`: prove the profiled cost model against whole models timed for real.
//!
//! The work is `tailor_workflow::validate`, one pipeline for both engines: feasible configs
//! spread across a space's range of predicted decode time (or `--spec` files), the profile
//! re-checked on this machine (re-measured, or its predictions levelled to whole models
//! timed here, when asked), the models timed whole in the profile's engine. This prints the
//! comparison: shares within +-10% and +-20%, absolute percentage errors, Kendall's tau of
//! the orders beside the engine's own, the level of each round, a calibration plot.

pub use crate::args::validate::ValidateArgs;
use crate::fmt::timestamp;
use anyhow::Result;
use std::path::PathBuf;
use tailor_search::SearchSpace;
use tailor_workflow::validate::{EngineSetup, ValidateRequest, validate};

pub fn run(args: &ValidateArgs) -> Result<()> {
    let space = with_workload(args, SearchSpace::load(&args.space)?);
    let llama = tailor_workflow::llama::is_llama(&args.profile);
    let out = out_dir(args, &space, if llama { "-llama" } else { "" });
    let v = validate(
        ValidateRequest {
            profile: &args.profile,
            space_path: &args.space,
            space,
            specs: &args.specs,
            samples: args.samples as usize,
            seed: args.seed,
            rounds: args.rounds,
            out: &out,
            recheck: !args.no_recheck,
            remeasure: args.remeasure,
            anchors: args.relevel.then_some(args.anchors as usize),
            engine: EngineSetup {
                timing: args.timing.options()?,
                llama_bench: args.llama.llama_bench.clone(),
                settings: args.llama.settings(),
                weights: args.llama.weights,
            },
        },
        &crate::progress::Bars,
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v.file)?);
    } else {
        print!("{}", v.render());
    }
    Ok(())
}

/// The space with `--prompt` and `--context` in its workload.
fn with_workload(args: &ValidateArgs, mut space: SearchSpace) -> SearchSpace {
    if let Some(p) = args.prompt {
        space.workload.prompt_tokens = p;
    }
    if let Some(c) = args.context {
        space.workload.context = c;
    }
    space
}

/// `--out`, or `out/validate-<space><engine>-<timestamp>`.
fn out_dir(args: &ValidateArgs, space: &SearchSpace, engine: &str) -> PathBuf {
    args.out.clone().unwrap_or_else(|| {
        PathBuf::from("out").join(format!("validate-{}{engine}-{}", space.name(), timestamp()))
    })
}
