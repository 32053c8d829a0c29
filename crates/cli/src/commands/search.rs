//! `tailor search`: explore a space, write candidates.csv, front.json, summary.json.

use crate::args::TimingArgs;
pub use crate::args::search::{SearchArgs, request};
use crate::progress::Bar;
use anyhow::Result;
use tailor_report::search::{self as report, Summary};
use tailor_search::SearchSpace;
pub use tailor_workflow::search::{Recheck, cost_model, out_dir};
use tailor_workflow::search::{device_costs, options, run_search_set};

pub fn run(args: &SearchArgs) -> Result<()> {
    let space = super::llama::with_weights(SearchSpace::load(&args.space)?, args.weights)
        .with_targets(&args.target)?;
    let timing = TimingArgs::default().options()?;
    let recheck = if args.recheck {
        Recheck::Now(&timing)
    } else if args.no_recheck {
        Recheck::Off
    } else {
        Recheck::Remembered
    };
    let (space, costs) = if space.devices.is_empty() {
        let cost = cost_model(
            &space,
            &args.space,
            args.device.as_deref(),
            args.profile.as_deref(),
            recheck,
        )?;
        (space, vec![cost])
    } else if args.weights.is_some() {
        anyhow::bail!(
            "--weights applies to one device; over a set each device runs its profile's own \
             weights, or those of `weights = ...` under [devices.NAME] (`,weights=q4_0` after \
             a --target)"
        );
    } else if args.device.is_some() || args.profile.is_some() {
        anyhow::bail!(
            "{} declares [devices]; give --target NAME=FILE to change a device's file, or \
             search one device with a copy of the space without [devices]",
            args.space.display()
        );
    } else {
        device_costs(space, &args.space, recheck)?
    };
    let options = options(&space, &request(args))?;
    let out = out_dir(args.out.as_deref(), &space);
    let _lock = tailor_workflow::lock::folder(&out)?;
    let run = run_search_set(space, &costs, &options, &out, &Bar::new("search"))?;
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
