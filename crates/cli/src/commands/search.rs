//! `tailor search`: explore a space, write candidates.csv, front.json, summary.json.

use super::predict::{check_precision, load_profiled};
use crate::fmt::{Table, bytes, si, timestamp};
use crate::progress::Bar;
use crate::report::{self, CostSource, Flavor};
use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use serde_json::json;
use std::path::{Path, PathBuf};
use tailor_cost::{CostModel, DeviceSpec, Roofline};
use tailor_search::output::{CsvSink, summary_json, write_json, write_results};
use tailor_search::pareto::dominates;
use tailor_search::{
    Candidate, Metric, Metrics, SearchOptions, SearchOutcome, SearchSpace, Strategy, price, search,
};
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

/// The roofline model of a device file, or the profiled model of a profile.
pub fn cost_model(
    space: &SearchSpace,
    space_path: &Path,
    device: Option<&Path>,
    profile: Option<&Path>,
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
                    kind: "roofline".into(),
                    file: path.display().to_string(),
                    device: name,
                    fingerprint: None,
                    llama_fingerprint: None,
                },
            })
        }
        (None, Some(path)) if super::llama::is_llama(path) => {
            let cost = super::llama::load_cost(path, Some(&space.workload))
                .map_err(|e| e.context(format!("pricing {}", space_path.display())))?;
            let f = cost.profile().fingerprint.clone();
            Ok(CostChoice {
                source: CostSource {
                    kind: "llama.cpp".into(),
                    file: path.display().to_string(),
                    device: cost.profile().name.clone(),
                    fingerprint: None,
                    llama_fingerprint: Some(f),
                },
                model: Box::new(cost),
            })
        }
        (None, Some(path)) => {
            let profiled = load_profiled(path)?;
            check_precision(
                &profiled,
                &space.workload.precision,
                &space_path.display().to_string(),
            )?;
            let p = profiled.profile();
            let source = CostSource {
                kind: "profiled".into(),
                file: path.display().to_string(),
                device: p.name.clone(),
                fingerprint: Some(p.fingerprint.clone()),
                llama_fingerprint: None,
            };
            Ok(CostChoice {
                model: Box::new(profiled),
                source,
            })
        }
        (None, None) => bail!("give --device FILE (roofline) or --profile FILE (profiled)"),
    }
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
    Ok(SearchOptions {
        strategy,
        budget: args.budget,
        seed: args.seed,
        population: args.population.map(|p| p as usize),
    })
}

/// A published model named by the space, priced and placed against the front.
pub struct Reference {
    pub path: PathBuf,
    pub name: String,
    /// Its id when the space holds it.
    pub id: Option<u64>,
    pub candidate: Candidate,
    /// Front rows that dominate it (0: on the front or beside it).
    pub dominated_by: usize,
}

impl Reference {
    /// Where it lands: not in the space, infeasible (why), on the front, or dominated.
    pub fn place(&self) -> String {
        let c = &self.candidate;
        match (self.id, c.feasible(), self.dominated_by) {
            (None, _, _) => "not in the space".to_string(),
            (_, false, _) => format!("infeasible ({})", c.why_not()),
            (_, true, 0) => "on the front".to_string(),
            (_, true, n) => format!("dominated by {n} front rows"),
        }
    }
}

/// Everything a search produced, for the report and the export.
pub struct SearchRun {
    pub space: SearchSpace,
    pub outcome: SearchOutcome,
    pub references: Vec<Reference>,
    /// Metrics of every feasible candidate (for the plots).
    pub cloud: Vec<Metrics>,
    pub cost: CostSource,
    pub out: PathBuf,
    pub summary: serde_json::Value,
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
    let device_name = match &cost.source.kind[..] {
        "profiled" | "llama.cpp" => {
            format!("{} (profile {})", cost.source.device, cost.source.file)
        }
        _ => cost.source.device.clone(),
    };
    write_results(out, &space, &outcome, &device_name)?;

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
    let mut summary = summary_json(&space, &outcome, &device_name);
    summary["cost_model"] = serde_json::to_value(&cost.source)?;
    summary["references"] = references
        .iter()
        .map(|r| {
            json!({
                "name": r.name, "path": r.path.display().to_string(), "id": r.id,
                "in_space": r.id.is_some(), "feasible": r.candidate.feasible(),
                "on_front": outcome.front.iter().any(|f| Some(f.id) == r.id),
                "front_rows_dominating": r.dominated_by, "metrics": r.candidate.metrics,
            })
        })
        .collect();
    write_json(&out.join("summary.json"), &summary)?;

    if let Some(msg) = outcome.emptiness() {
        bail!(
            "{}: {msg} (all evaluated candidates are in {})",
            space.path.display(),
            out.join("candidates.csv").display()
        );
    }
    info!(
        evaluated = outcome.evaluated,
        wall_s = format!("{:.2}", outcome.wall_s),
        per_s = format!("{:.0}", outcome.evaluated as f64 / outcome.wall_s.max(1e-9)),
        "done"
    );
    Ok(SearchRun {
        space,
        outcome,
        references,
        cloud,
        cost: cost.source.clone(),
        out: out.to_path_buf(),
        summary,
    })
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
    )?;
    let options = options(&space, args)?;
    let out = out_dir(args.out.as_deref(), &space);
    let _lock = crate::lock::folder(&out)?;
    let mut run = execute(space, &cost, &options, &out)?;
    let written = report::write_search(&mut run, args.flavor, None)?;
    write_json(&out.join("summary.json"), &run.summary)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&run.summary)?);
        return Ok(());
    }
    print!("{}", render(&run, &written));
    Ok(())
}

fn render(run: &SearchRun, written: &report::Written) -> String {
    let (space, o, refs, out) = (&run.space, &run.outcome, &run.references, &run.out);
    let mut s = format!(
        "{}: {} points, {} examined ({}), {} buildable, {} priced, {} feasible, front of {}\n",
        space.name(),
        space.size(),
        o.seen,
        o.strategy.name(),
        o.evaluated,
        o.priced,
        o.feasible,
        o.front.len()
    );
    for (reason, n) in &o.skipped {
        s += &format!("  skipped {n}: {reason}\n");
    }
    let rows = report::ranked(&o.front, space.pick);
    let metric = space.pick.0;
    s += &format!(
        "\nfront (by {}), top {}:\n",
        metric.name(),
        rows.len().min(15)
    );
    let mut t = Table::new(&[
        "",
        "hidden",
        "layers",
        "heads",
        "kv",
        "ffn",
        "act",
        "params",
        "non-emb",
        "prefill ms",
        "decode ms",
        "tok/s",
        "memory",
    ]);
    for c in rows.iter().take(15) {
        let m = &c.metrics;
        let picked = o.pick.is_some_and(|i| o.front[i].id == c.id);
        t.row(vec![
            if picked { "pick".into() } else { String::new() },
            c.spec.hidden_size.to_string(),
            c.spec.num_layers.to_string(),
            c.spec.num_heads.to_string(),
            c.spec.num_kv_heads.to_string(),
            c.spec.intermediate_size.to_string(),
            c.spec.activation.to_string(),
            si(m.params as f64, ""),
            si(m.non_embedding_params as f64, ""),
            format!("{:.2}", m.get(Metric::PrefillMs)),
            format!("{:.3}", m.get(Metric::DecodeMs)),
            format!("{:.1}", 1000.0 / m.get(Metric::DecodeMs)),
            bytes(m.get(Metric::PeakMemory)),
        ]);
    }
    s += &t.render(2);
    for r in refs {
        let (path, name, c) = (&r.path, &r.name, &r.candidate);
        let m = &c.metrics;
        let place = r.place();
        s += &format!(
            "\nreference {name} ({}): {place}; prefill {:.2} ms, decode {:.3} ms ({:.1} tok/s)\n",
            path.display(),
            m.get(Metric::PrefillMs),
            m.get(Metric::DecodeMs),
            1000.0 / m.get(Metric::DecodeMs)
        );
        if let Some(i) = o.pick {
            let p = &o.front[i].metrics;
            s += &format!(
                "  pick vs reference: decode {:.2}x faster, prefill {:.2}x faster\n",
                m.get(Metric::DecodeMs) / p.get(Metric::DecodeMs),
                m.get(Metric::PrefillMs) / p.get(Metric::PrefillMs)
            );
        }
        if let Some(f) = report::same_size_fastest(&o.front, m.params) {
            s += &format!(
                "  fastest front row at least as large ({} x {} layers, {} params): decode \
                 {:.2}x faster, prefill {:.2}x faster\n",
                f.spec.hidden_size,
                f.spec.num_layers,
                si(f.metrics.params as f64, ""),
                m.get(Metric::DecodeMs) / f.metrics.get(Metric::DecodeMs),
                m.get(Metric::PrefillMs) / f.metrics.get(Metric::PrefillMs)
            );
        }
    }
    s += &format!(
        "\nwrote {}/{{candidates.csv, front.json, summary.json}}\n",
        out.display()
    );
    s += &written.render();
    s
}
