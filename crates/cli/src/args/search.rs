//! `tailor search`'s arguments and the request they make of the search.

use clap::{Args, ValueEnum};
use std::path::PathBuf;
use tailor_report::Flavor;
use tailor_workflow::search::{SearchRequest, StrategyChoice};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StrategyArg {
    /// Exhaustive up to 200,000 points, NSGA-II above.
    Auto,
    Exhaustive,
    Random,
    Nsga2,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("cost").args(["device", "profile", "target"])))]
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
    /// A device of a set searched at once: NAME=FILE (a profile, burn or llama.cpp, or a
    /// datasheet), optionally `,weight=W` (its fleet share) and `,weights=q4_0` (its
    /// engine's weights; default the profile's own, a datasheet the space's). Twice or more: one model for
    /// all of them (objectives and limits read worst case unless the space says
    /// otherwise); with a space that declares [devices], gives the file of one of them.
    #[arg(long, value_name = "NAME=FILE")]
    pub target: Vec<tailor_search::Target>,
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
    /// [default: llama for a dense pick, else the family that expresses it]
    #[arg(long, value_enum)]
    pub flavor: Option<Flavor>,
    /// Print summary.json on stdout instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Price the space's workload with these weights instead of its own (f32, f16, q8_0,
    /// q4_0): e.g. a space written for burn at f32, searched with a llama.cpp Q4_0 profile.
    #[arg(long, value_parser = super::parse_weight_type)]
    pub weights: Option<tailor_spec::DType>,
    /// MiB of candidates.csv a search may write at most: an exhaustive (or unbudgeted
    /// random) search of a space whose every point would exceed it is refused before it
    /// starts.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_candidates_csv: u64,
    /// Re-check a burn profile made on this machine before the search (its fixed subset of
    /// entries re-timed, seconds; the drift is logged, quoted in summary.json and
    /// remembered for an hour). Without it the search quotes the check remembered from
    /// the last `run`, `validate` or `search --recheck` of the profile, and times nothing.
    #[arg(long, conflicts_with = "no_recheck")]
    pub recheck: bool,
    /// Quote no drift check at all, not even a remembered one.
    #[arg(long)]
    pub no_recheck: bool,
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
