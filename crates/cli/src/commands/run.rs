//! `tailor run`: the whole chain on this machine. Profile the space's shapes (reusing a
//! profile of this setup when there is one), search, check the pick and a few front rows
//! against whole models, export the pick, write the report.

use super::llama::{Engine, LlamaArgs};
use super::search::CostChoice;
use crate::args::TimingArgs;
use crate::fmt::{Table, bytes};
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use tailor_profiler::{Backend, ProfileProgress};
use tailor_report::search::SearchRun;
use tailor_report::search::{self as report};
use tailor_report::validation::Validation;
use tailor_report::{CostSource, Flavor};
use tailor_search::Metric;
use tailor_workflow::check::CheckProgress;
use tailor_workflow::profile::BurnProfileOutcome;
use tailor_workflow::run::{LlamaRunRequest, RunCommon, RunProgress, RunRequest, run_burn};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The search space (TOML), e.g. search-spaces/quickstart.toml.
    pub space: PathBuf,
    /// burn backend to profile and time on: flex (CPU), ndarray (CPU), wgpu (GPU).
    #[arg(long, default_value = "flex")]
    pub backend: Backend,
    /// Output folder [default: out/<space>-<timestamp>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Profile file to use (created, or extended with the shapes it lacks) instead of
    /// looking for one in --profiles.
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// Folder searched for a profile of this setup (same fingerprint); a new one is
    /// written there when none matches.
    #[arg(long, default_value = "profiles")]
    pub profiles: PathBuf,
    /// Seed of the search (when the space is too large for exhaustive search).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Whole models to build and time against their prediction: the pick and front rows
    /// spread over the front's decode times (0: skip the check).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(0..=100))]
    pub check: u64,
    /// Timing rounds of the check (see `tailor validate --rounds`).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=20))]
    pub check_rounds: u64,
    /// Sessions per profile entry (see `tailor profile --rounds`).
    #[arg(long, default_value_t = crate::args::PROFILE_ROUNDS as u64,
          value_parser = clap::value_parser!(u64).range(1..=20))]
    pub profile_rounds: u64,
    #[command(flatten)]
    pub timing: TimingArgs,
    /// config.json flavor of the export.
    #[arg(long, value_enum, default_value = "llama")]
    pub flavor: Flavor,
    /// Print summary.json on stdout instead of the tables.
    #[arg(long)]
    pub json: bool,
    /// The engine to design for: burn (in process, --backend) or llama.cpp (the user's
    /// llama-bench; GGUF weights of --weights or the space's).
    #[arg(long, value_enum, default_value = "burn")]
    pub engine: Engine,
    #[command(flatten)]
    pub llama: LlamaArgs,
}

pub fn run(args: &RunArgs) -> Result<()> {
    if args.engine == Engine::LlamaCpp {
        return run_llama(args);
    }
    let o = run_burn(
        &RunRequest {
            run: common(args),
            backend: args.backend,
            timing: args.timing.options()?,
            cycle_auto: args.timing.cycle_mib.is_none(),
        },
        &Bars,
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&o.summary)?);
        return Ok(());
    }
    print!(
        "{}",
        render(
            &o.search,
            &o.cost,
            &o.profiled,
            o.remeasured,
            o.validation.as_ref(),
            &o.written,
            o.wall_s
        )
    );
    Ok(())
}

/// What the run is asked whatever the engine.
fn common(args: &RunArgs) -> RunCommon {
    RunCommon {
        space: args.space.clone(),
        out: args.out.clone(),
        profile: args.profile.clone(),
        profiles: args.profiles.clone(),
        seed: args.seed,
        check: args.check as usize,
        check_rounds: args.check_rounds,
        profile_rounds: args.profile_rounds as usize,
        flavor: args.flavor,
    }
}

/// A run's progress bars on stderr.
struct Bars;

impl RunProgress for Bars {
    fn profile(&self) -> Box<dyn ProfileProgress + '_> {
        Box::new(crate::progress::ProfileBar::new("profile"))
    }
    fn remeasure(&self) -> Box<dyn ProfileProgress + '_> {
        Box::new(crate::progress::ProfileBar::new("re-measure"))
    }
    fn search(&self) -> Box<dyn tailor_search::Progress + '_> {
        Box::new(crate::progress::Bar::new("search"))
    }
    fn check(&self) -> Box<dyn CheckProgress + '_> {
        Box::new(crate::progress::CheckBar::new())
    }
    fn llama(&self) -> Box<dyn tailor_llamacpp::run::Progress + '_> {
        Box::new(crate::progress::ProfileBar::new("llama-bench"))
    }
}

/// The tables `tailor run` prints.
fn render(
    run: &SearchRun,
    cost: &CostChoice,
    profiled: &BurnProfileOutcome,
    remeasured: usize,
    validation: Option<&Validation>,
    written: &report::Written,
    wall_s: f64,
) -> String {
    let CostSource { file, device, .. } = &cost.source;
    let o = &run.outcome;
    let mut s = format!(
        "profile  {file} ({device}): {} shapes, {} sessions measured now ({:.0} s)\n",
        profiled.shapes_needed, profiled.measured_now, profiled.wall_s
    );
    if remeasured > 0 {
        s += &format!(
            "         {remeasured} entries re-measured: the drift check found them stale \
             (drifted more than 10%, or timed under load)\n"
        );
    }
    s += &format!(
        "search   {}: {} points, {} feasible, front of {} ({})\n",
        run.space.name(),
        run.space.size(),
        o.feasible,
        o.front.len(),
        o.strategy.name()
    );
    if let Some(c) = o.pick.map(|i| &o.front[i]) {
        s += &pick_line(c);
    }
    if let Some(v) = validation {
        let mut t = Table::new(&["checked", "within 10%", "mean |err|", "max |err|"]);
        for (name, a) in [
            ("prefill", v.file.prefill),
            ("decode", v.file.decode),
            ("memory", v.file.memory),
        ] {
            if let Some(a) = a {
                t.row(vec![
                    name.into(),
                    format!("{}/{}", (a.within_10pct * a.n as f64).round(), a.n),
                    format!("{:.1}%", 100.0 * a.mean_ape),
                    format!("{:.1}%", 100.0 * a.max_ape),
                ]);
            }
        }
        s += &format!(
            "check    the pick and {} front rows built and timed whole ({:.0} s):\n{}",
            v.file.rows.len().saturating_sub(1),
            v.file.wall_s,
            t.render(2)
        );
    }
    s += &format!("\nwrote {}/ ({wall_s:.0} s in all):\n", run.out.display());
    if let Some(e) = &written.export {
        for p in [&e.config_json, &Some(e.spec_toml.clone())]
            .into_iter()
            .flatten()
            .chain([&e.model_card])
        {
            s += &format!("  {}\n", p.display());
        }
        if let Some(why) = &e.config_error {
            s += &format!("  (no config.json: {why})\n");
        }
    }
    s += &format!("  {}\n", written.report.display());
    for p in &written.plots {
        s += &format!("  {}\n", p.display());
    }
    s += &format!(
        "  {0}/candidates.csv, {0}/front.json, {0}/summary.json\n",
        run.out.display()
    );
    s
}

/// `tailor run --engine llama.cpp`: profile the space's probes with llama-bench (resuming
/// the profile file of this setup and weight type), search on that profile, time the pick
/// and front rows whole in llama-bench, export and report.
fn run_llama(args: &RunArgs) -> Result<()> {
    let bench = args.llama.bench()?;
    let o = tailor_workflow::run::run_llama(
        &LlamaRunRequest {
            run: common(args),
            weights: args.llama.weights,
            bench: &bench,
            settings: args.llama.settings(),
            decode_tokens: args.llama.decode_tokens,
        },
        &Bars,
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&o.summary)?);
        return Ok(());
    }
    let (search, out) = (&o.search, &o.search.out);
    let s_o = &search.outcome;
    let mut s = format!(
        "profile  {} (llama.cpp, {}): {} probe models, {} visits now ({:.0} s)\n",
        o.profile.display(),
        o.weights,
        o.profiled.probes,
        o.profiled.runs_now,
        o.profiled.wall_s
    );
    s += &format!(
        "search   {}: {} points, {} feasible, front of {} ({})\n",
        search.space.name(),
        search.space.size(),
        s_o.feasible,
        s_o.front.len(),
        s_o.strategy.name()
    );
    if let Some(c) = s_o.pick.map(|i| &s_o.front[i]) {
        s += &pick_line(c);
    }
    if let Some((v, dir)) = &o.check {
        s += "check    the pick and front rows timed whole in llama-bench:\n";
        s += &tailor_report::validation::render_llama(v, dir);
    }
    s += &format!(
        "\nwrote {}/ ({:.0} s in all):\n  {}\n",
        out.display(),
        o.wall_s,
        o.written.report.display()
    );
    s += &format!(
        "  {0}/candidates.csv, {0}/front.json, {0}/summary.json\n",
        out.display()
    );
    print!("{s}");
    Ok(())
}

/// The pick's line of `tailor run`'s summary.
fn pick_line(c: &tailor_search::Candidate) -> String {
    let (m, sp) = (&c.metrics, &c.spec);
    format!(
        "pick     {} x {} layers, heads {}/{}, ffn {} {}: {} params; prefill {:.2} ms, \
         decode {:.3} ms ({:.1} tok/s), memory {}\n",
        sp.hidden_size,
        sp.num_layers,
        sp.num_heads,
        sp.num_kv_heads,
        sp.intermediate_size,
        sp.activation,
        crate::fmt::si(m.params as f64, ""),
        m.get(Metric::PrefillMs),
        m.get(Metric::DecodeMs),
        1000.0 / m.get(Metric::DecodeMs),
        bytes(m.get(Metric::PeakMemory))
    )
}
