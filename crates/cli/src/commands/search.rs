//! `tailor search`: explore a space, write candidates.csv, front.json, summary.json.

use crate::args::TimingArgs;
pub use crate::args::search::{SearchArgs, request};
use crate::progress::Bar;
use anyhow::Result;
use std::path::Path;
use tailor_report::search::{self as report, SearchRun, Summary};
use tailor_search::{SearchOptions, SearchSpace};
pub use tailor_workflow::search::{CostChoice, Recheck, cost_model, out_dir};
use tailor_workflow::search::{options, run_search};

/// Runs the search into `out` with a progress bar.
pub fn execute(
    space: SearchSpace,
    cost: &CostChoice,
    options: &SearchOptions,
    out: &Path,
) -> Result<SearchRun> {
    Ok(run_search(space, cost, options, out, &Bar::new("search"))?)
}

pub fn run(args: &SearchArgs) -> Result<()> {
    let space = super::llama::with_weights(SearchSpace::load(&args.space)?, args.weights);
    let timing = TimingArgs::default().options()?;
    let recheck = if args.recheck {
        Recheck::Now(&timing)
    } else if args.no_recheck {
        Recheck::Off
    } else {
        Recheck::Remembered
    };
    let cost = cost_model(
        &space,
        &args.space,
        args.device.as_deref(),
        args.profile.as_deref(),
        recheck,
    )?;
    let options = options(&space, &request(args))?;
    let out = out_dir(args.out.as_deref(), &space);
    let _lock = tailor_workflow::lock::folder(&out)?;
    let run = execute(space, &cost, &options, &out)?;
    let written = report::write_search(&run, args.flavor, None)?;
    let summary = Summary::of(&run, Some(&written), None);
    summary.write(&out)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    print!("{}", run.render(&written));
    Ok(())
}
