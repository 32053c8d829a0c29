//! `tailor search`: explore a space, write candidates.csv, front.json, summary.json.

use super::predict::{check_precision, load_profiled};
use crate::args::TimingArgs;
use crate::fmt::{bytes as bytes_fmt, thousands, timestamp};
use crate::progress::Bar;
use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};
use tailor_cost::{CostModel, DeviceSpec, Profiled, Roofline};
use tailor_report::search::{self as report, Reference, SearchRun, Summary};
use tailor_report::{CostKind, CostSource, Flavor};
use tailor_search::output::{CsvSink, FrontFile, SearchSummary, write_json};
use tailor_search::pareto::dominates;
use tailor_search::{CSV_ROW_BYTES, SearchOptions, SearchSpace, Strategy, price, search};
use tracing::info;

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

/// A cost model and what it is, for the files that quote it.
pub struct CostChoice {
    pub model: Box<dyn CostModel>,
    pub source: CostSource,
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
            let cost = super::llama::load_cost(path, Some(&space.workload))
                .map_err(|e| e.context(format!("pricing {}", space_path.display())))?;
            let f = cost.profile().fingerprint.clone();
            Ok(CostChoice {
                source: CostSource {
                    kind: CostKind::LlamaCpp,
                    file: path.display().to_string(),
                    device: cost.profile().name.clone(),
                    fingerprint: None,
                    llama_fingerprint: Some(f),
                    profile_check: None,
                },
                model: Box::new(cost),
            })
        }
        (None, Some(path)) => {
            let model = load_profiled(path)?;
            let check = if recheck {
                crate::freshness::recheck_if_here(path, &model, &TimingArgs::default())?
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

/// The profiled model of a loaded burn profile (`path`), checked against the space's
/// precision.
pub fn profiled_cost(
    profiled: Profiled,
    path: &Path,
    space: &SearchSpace,
    space_path: &Path,
) -> Result<CostChoice> {
    check_precision(
        &profiled,
        &space.workload.precision,
        &space_path.display().to_string(),
    )?;
    let p = profiled.profile();
    let source = CostSource {
        kind: CostKind::Profiled,
        file: path.display().to_string(),
        device: p.name.clone(),
        fingerprint: Some(p.fingerprint.clone()),
        llama_fingerprint: None,
        profile_check: None,
    };
    Ok(CostChoice {
        model: Box::new(profiled),
        source,
    })
}

/// The strategy `auto` resolves to, and the options of a search.
pub fn options(space: &SearchSpace, args: &SearchArgs) -> Result<SearchOptions> {
    let strategy = match args.strategy {
        StrategyArg::Auto if space.size() <= 200_000 => Strategy::Exhaustive,
        StrategyArg::Auto | StrategyArg::Nsga2 => Strategy::Nsga2,
        StrategyArg::Exhaustive => Strategy::Exhaustive,
        StrategyArg::Random => Strategy::Random,
    };
    if strategy == Strategy::Exhaustive && args.budget.is_some() {
        bail!(
            "--budget applies to random and nsga2; exhaustive examines all {} points",
            space.size()
        );
    }
    let options = SearchOptions {
        strategy,
        budget: args.budget,
        seed: args.seed,
        population: args.population.map(|p| p as usize),
    };
    if let Some(rows) = options.unbounded_rows(space) {
        let bytes = rows.saturating_mul(CSV_ROW_BYTES);
        if bytes > args.max_candidates_csv << 20 {
            bail!(
                "{}: a {} search of all {} points would write up to about {} of \
                 candidates.csv, over --max-candidates-csv {} MiB. Sample the space instead \
                 (--strategy nsga2 --budget 2000, or --strategy random --budget N), narrow \
                 its axes, or raise --max-candidates-csv",
                space.path.display(),
                strategy.name(),
                thousands(u128::from(rows)),
                bytes_fmt(bytes as f64),
                args.max_candidates_csv
            );
        }
    }
    Ok(options)
}

/// Runs the search and writes candidates.csv, front.json and summary.json into `out`.
/// A space with no feasible candidate is an error that says why (after the files are
/// written, so the user can look).
pub fn execute(
    space: SearchSpace,
    cost: &CostChoice,
    options: &SearchOptions,
    out: &Path,
) -> Result<SearchRun> {
    let model = cost.model.as_ref();
    info!(
        space = %space.name(),
        points = space.size(),
        strategy = options.strategy.name(),
        device = %cost.source.device,
        out = %out.display(),
        "searching"
    );
    let mut csv = CsvSink::create(&out.join("candidates.csv"))?;
    let mut cloud = Vec::new();
    let outcome = {
        let bar = Bar::new("search");
        search(&space, model, options, &bar, &mut |c| {
            if c.feasible() && c.is_priced() {
                cloud.push(c.metrics);
            }
            csv.write(c)
        })
        .with_context(|| format!("writing {}", out.join("candidates.csv").display()))?
    };
    csv.finish()?;
    let device_name = if cost.source.kind.is_profile() {
        format!("{} (profile {})", cost.source.device, cost.source.file)
    } else {
        cost.source.device.clone()
    };
    write_json(&out.join("front.json"), &FrontFile::new(&space, &outcome))?;

    // Where the space's published references land against the front.
    let mut references = Vec::new();
    for (path, loaded) in space.references()? {
        let genome = space.find(&loaded.spec);
        let id = genome.map(|g| space.id_of(&g));
        let candidate = price(&space, model, id.unwrap_or(u64::MAX), loaded.spec.clone());
        let dominated_by = outcome
            .front
            .iter()
            .filter(|f| dominates(&f.objectives, &candidate.objectives))
            .count();
        references.push(Reference {
            path,
            name: loaded.name.unwrap_or_default(),
            id,
            candidate,
            dominated_by,
        });
    }
    let summary = SearchSummary::new(&space, &outcome, &device_name);
    let run = SearchRun {
        space,
        outcome,
        references,
        cloud,
        cost: cost.source.clone(),
        out: out.to_path_buf(),
        summary,
    };
    if let Some(msg) = run.outcome.emptiness() {
        // summary.json says what excluded every candidate.
        Summary::of(&run, None, None).write(out)?;
        bail!(
            "{}: {msg} (all evaluated candidates are in {})",
            run.space.path.display(),
            out.join("candidates.csv").display()
        );
    }
    let o = &run.outcome;
    info!(
        evaluated = o.evaluated,
        wall_s = format!("{:.2}", o.wall_s),
        per_s = format!("{:.0}", o.evaluated as f64 / o.wall_s.max(1e-9)),
        "done"
    );
    Ok(run)
}

/// `out/<space>-<timestamp>` unless given.
pub fn out_dir(given: Option<&Path>, space: &SearchSpace) -> PathBuf {
    given
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("out").join(format!("{}-{}", space.name(), timestamp())))
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
    let options = options(&space, args)?;
    let out = out_dir(args.out.as_deref(), &space);
    let _lock = crate::lock::folder(&out)?;
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
