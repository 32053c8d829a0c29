//! `tailor search`: explore a space, write candidates.csv, front.json, summary.json.

use super::predict::load_profiled;
use crate::args::TimingArgs;
use crate::progress::Bar;
use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};
use tailor_cost::{DeviceSpec, Roofline};
use tailor_report::search::{self as report, SearchRun, Summary};
use tailor_report::{CostKind, CostSource, Flavor};
use tailor_search::{SearchOptions, SearchSpace};
pub use tailor_workflow::search::{CostChoice, out_dir, profiled_cost};
use tailor_workflow::search::{SearchRequest, StrategyChoice, options, run_search};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StrategyArg {
    /// Exhaustive up to 200,000 points, NSGA-II above.
    Auto,
    Exhaustive,
    Random,
    Nsga2,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("cost").required(true).args(["device", "profile"])))]
pub struct SearchArgs {
    /// The search space (TOML), e.g. search-spaces/quickstart.toml.
    pub space: PathBuf,
    /// Device description (datasheet or measured peaks) priced by the roofline model.
    #[arg(long)]
    pub device: Option<PathBuf>,
    /// Device profile (`tailor profile`) priced by the profiled model: the sum of the
    /// measured operator times.
    #[arg(long)]
    pub profile: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "auto")]
    pub strategy: StrategyArg,
    /// Distinct points to examine (random: default all; nsga2: default 2000).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub budget: Option<u64>,
    /// Seed of random and nsga2; the same seed gives the same files.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// NSGA-II population (default: budget / 8, between 8 and 100).
    #[arg(long, value_parser = clap::value_parser!(u64).range(4..=10_000))]
    pub population: Option<u64>,
    /// Output folder [default: out/<space>-<timestamp>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// config.json flavor of the pick's export (see `tailor export`).
    #[arg(long, value_enum, default_value = "llama")]
    pub flavor: Flavor,
    /// Print summary.json on stdout instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Price the space's workload with these weights instead of its own (f32, f16, q8_0,
    /// q4_0): e.g. a space written for burn at f32, searched with a llama.cpp Q4_0 profile.
    #[arg(long, value_parser = parse_weights)]
    pub weights: Option<tailor_spec::DType>,
    /// MiB of candidates.csv a search may write at most: an exhaustive (or unbudgeted
    /// random) search of a space whose every point would exceed it is refused before it
    /// starts.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_candidates_csv: u64,
    /// A burn profile made on this machine is re-checked before the search (its fixed
    /// subset of entries re-timed, seconds; the drift is logged and quoted in
    /// summary.json); skip that.
    #[arg(long)]
    pub no_recheck: bool,
}

pub fn parse_weights(s: &str) -> Result<tailor_spec::DType, String> {
    tailor_spec::DType::from_name(s)
        .ok_or_else(|| format!("unknown weight type `{s}`; use f32, f16, bf16, int8, q4_0 or q8_0"))
}

/// The roofline model of a device file, or the profiled model of a profile. A burn
/// profile made on this machine is re-checked here first (`recheck`; its drift is quoted
/// in the cost source).
pub fn cost_model(
    space: &SearchSpace,
    space_path: &Path,
    device: Option<&Path>,
    profile: Option<&Path>,
    recheck: bool,
) -> Result<CostChoice> {
    match (device, profile) {
        (Some(path), _) => {
            let device = DeviceSpec::load(path)?;
            let name = device.name.clone();
            let roofline = Roofline::new(device, &space.workload.precision)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            Ok(CostChoice {
                model: Box::new(roofline),
                source: CostSource {
                    kind: CostKind::Roofline,
                    file: path.display().to_string(),
                    device: name,
                    fingerprint: None,
                    llama_fingerprint: None,
                    profile_check: None,
                },
            })
        }
        (None, Some(path)) if super::llama::is_llama(path) => {
            let cost = super::llama::load_cost(path, Some(&space.workload)).map_err(|e| {
                anyhow::Error::new(e).context(format!("pricing {}", space_path.display()))
            })?;
            Ok(tailor_workflow::search::llama_cost(cost, path))
        }
        (None, Some(path)) => {
            let model = load_profiled(path)?;
            let check = if recheck {
                tailor_workflow::freshness::recheck_if_here(
                    path,
                    &model,
                    &TimingArgs::default().options()?,
                )?
            } else {
                None
            };
            let mut cost = profiled_cost(model, path, space, space_path)?;
            cost.source.profile_check = check;
            Ok(cost)
        }
        (None, None) => bail!("give --device FILE (roofline) or --profile FILE (profiled)"),
    }
}

/// What `tailor search`'s arguments ask of the search.
pub fn request(args: &SearchArgs) -> SearchRequest {
    SearchRequest {
        strategy: match args.strategy {
            StrategyArg::Auto => StrategyChoice::Auto,
            StrategyArg::Exhaustive => StrategyChoice::Exhaustive,
            StrategyArg::Random => StrategyChoice::Random,
            StrategyArg::Nsga2 => StrategyChoice::Nsga2,
        },
        budget: args.budget,
        seed: args.seed,
        population: args.population,
        max_candidates_csv_mib: args.max_candidates_csv,
    }
}

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
    let cost = cost_model(
        &space,
        &args.space,
        args.device.as_deref(),
        args.profile.as_deref(),
        !args.no_recheck,
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
