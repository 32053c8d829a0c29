//! The search pipeline: a space priced by a cost model, streamed into candidates.csv, its
//! Pareto front into front.json, the space's published references placed against the
//! front; and the checks made before a search starts (strategy, budget, the size of
//! candidates.csv).

use crate::error::{Result, WorkflowError};
use std::path::{Path, PathBuf};
use tailor_cost::{CostModel, DeviceSpec, Profile, Profiled, Roofline, Workload};
use tailor_profiler::TimingOptions;
use tailor_report::fmt::{bytes, thousands};
use tailor_report::search::{Reference, SearchRun, Summary};
use tailor_report::{CostKind, CostSource};
use tailor_search::output::{CsvSink, FrontFile, SearchSummary, write_json};
use tailor_search::pareto::dominates;
use tailor_search::{
    CSV_ROW_BYTES, Progress, SearchOptions, SearchSpace, Strategy, price_set, search_set,
};
use tailor_spec::Precision;
use tracing::info;

/// Spaces of at most this many points are searched exhaustively by `Auto`.
pub const AUTO_EXHAUSTIVE_POINTS: u64 = 200_000;

/// How to explore a space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrategyChoice {
    /// Exhaustive up to [`AUTO_EXHAUSTIVE_POINTS`], NSGA-II above.
    Auto,
    Exhaustive,
    Random,
    Nsga2,
}

/// What a search is asked, besides the space and the cost model.
#[derive(Debug, Clone, Copy)]
pub struct SearchRequest {
    pub strategy: StrategyChoice,
    /// Distinct points to examine (random, nsga2).
    pub budget: Option<u64>,
    pub seed: u64,
    pub population: Option<u64>,
    /// The most MiB of candidates.csv a search may write.
    pub max_candidates_csv_mib: u64,
}

impl SearchRequest {
    /// `Auto` with the default budget and population, and a 64 MiB candidates.csv at most.
    pub fn auto(seed: u64) -> Self {
        SearchRequest {
            strategy: StrategyChoice::Auto,
            budget: None,
            seed,
            population: None,
            max_candidates_csv_mib: 64,
        }
    }
}

/// A cost model and what it is, for the files that quote it.
pub struct CostChoice {
    pub model: Box<dyn CostModel>,
    pub source: CostSource,
}

impl std::fmt::Debug for CostChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CostChoice")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// The profiled cost model of the burn profile at `path`.
pub fn load_profiled(path: &Path) -> Result<Profiled> {
    let profile = Profile::load(path)?;
    info!(
        "using the profile {} ({}; entries last measured {})",
        path.display(),
        profile.name,
        profile.provenance.updated
    );
    Profiled::new(profile).map_err(|error| WorkflowError::Profiled {
        path: path.to_path_buf(),
        error,
    })
}

/// The profile's element type must be the one the workload runs in (burn profiles are
/// f32); `what` names the file that asks.
pub fn check_precision(model: &Profiled, precision: &Precision, what: &str) -> Result<()> {
    let profiled = model.profile().fingerprint.dtype;
    if precision.weights != profiled {
        return Err(WorkflowError::Precision {
            what: what.to_string(),
            asked: precision.weights,
            profiled,
        });
    }
    Ok(())
}

/// Refuses `spec` (read from `spec_path`) where the burn profile `model` (read from
/// `profile`) has no entry of a kind of operator it runs (its time would come from the
/// roofline alone), or never timed attention at the workload's prompt or context.
pub fn require_profiled(
    model: &Profiled,
    spec: &tailor_spec::ModelSpec,
    w: &Workload,
    spec_path: &Path,
    profile: &Path,
) -> Result<()> {
    require_covered(model, spec, w, spec_path, "--spec", profile)
}

/// [`require_profiled`] for every candidate of `space` inside its static constraints. A
/// mixed space may need kinds of operator the profile never timed (a profile of dense
/// spaces has no short convolution); a dense space needs none a profile lacks, and its
/// attention lengths are those of any one candidate.
pub fn require_profiled_space(
    model: &Profiled,
    space: &SearchSpace,
    space_path: &Path,
    profile: &Path,
) -> Result<()> {
    // Each prompt length and context the space prices (`prefill_at`, `decode_at`).
    let w = space.workload;
    let workloads: Vec<Workload> = (space.prompts().into_iter())
        .map(|prompt_tokens| Workload { prompt_tokens, ..w })
        .chain((space.contexts().into_iter()).map(|context| Workload { context, ..w }))
        .collect();
    let mut candidates = tailor_search::static_candidates(space);
    let check = |s: &tailor_spec::ModelSpec| {
        workloads
            .iter()
            .try_for_each(|w| require_covered(model, s, w, space_path, "--space", profile))
    };
    if !space.has_stack() {
        return candidates.next().map_or(Ok(()), |s| check(&s));
    }
    candidates.try_for_each(|s| check(&s))
}

fn require_covered(
    model: &Profiled,
    spec: &tailor_spec::ModelSpec,
    w: &Workload,
    input: &Path,
    flag: &'static str,
    profile: &Path,
) -> Result<()> {
    if let Some(shape) = model.unmeasured(spec, w) {
        return Err(WorkflowError::KindNotProfiled {
            input: input.to_path_buf(),
            flag,
            profile: profile.to_path_buf(),
            kind: shape.kind_name(),
            shape: shape.to_string(),
        });
    }
    if let Some(shape) = model.unprofiled_length(spec, w) {
        let (prompts, contexts) = model.attention_lengths();
        return Err(WorkflowError::LengthNotProfiled {
            input: input.to_path_buf(),
            flag,
            profile: profile.to_path_buf(),
            at: Box::new(crate::error::Lengths {
                shape: shape.to_string(),
                prompt: w.prompt_tokens,
                context: w.context,
                prompts,
                contexts,
            }),
        });
    }
    Ok(())
}

/// The profiled model of a loaded burn profile (`path`), checked against the space's
/// precision and (for a mixed space) against the kinds of operator it has timed.
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
    require_profiled_space(&profiled, space, space_path, path)?;
    let p = profiled.profile();
    let source = CostSource {
        kind: CostKind::Profiled,
        file: path.display().to_string(),
        device: p.name.clone(),
        fingerprint: Some(p.fingerprint.clone()),
        llama_fingerprint: None,
        profile_check: None,
        level: profiled.level().cloned(),
    };
    Ok(CostChoice {
        model: Box::new(profiled),
        source,
    })
}

/// The llama.cpp model of a loaded llama.cpp profile (`path`).
pub fn llama_cost(cost: tailor_llamacpp::LlamaCost, path: &Path) -> CostChoice {
    let p = cost.profile();
    CostChoice {
        source: CostSource {
            kind: CostKind::LlamaCpp,
            file: path.display().to_string(),
            device: p.name.clone(),
            fingerprint: None,
            llama_fingerprint: Some(p.fingerprint.clone()),
            profile_check: None,
            level: cost.level().cloned(),
        },
        model: Box::new(cost),
    }
}

/// What a search does about a burn profile's freshness before it prices with it.
#[derive(Debug, Clone, Copy)]
pub enum Recheck<'a> {
    /// Quote the last drift check of the profile remembered on this machine
    /// ([`crate::remembered`]), re-timing nothing: a search answers in well under a second.
    Remembered,
    /// Re-time the profile's drift subset now with this timing when the profile was made
    /// on this machine (seconds), and remember the check.
    Now(&'a TimingOptions),
    /// Neither.
    Off,
}

/// Logs what is known of a burn profile's freshness without timing anything: the drift
/// check remembered for it on this machine, else how long ago its entries were measured.
/// Returns the remembered check.
pub fn recall_check(path: &Path, profile: &Profile) -> Option<tailor_cost::Drift> {
    match crate::remembered::recall(path, profile) {
        Some(r) => {
            let off = r.drift.drifted(crate::freshness::DRIFT_TOLERANCE).len();
            let line = format!(
                "profile {} as re-checked on this machine {} min ago: {}",
                path.display(),
                r.age_s() / 60,
                r.drift.summary()
            );
            if off > 0 {
                tracing::warn!(
                    "{line}; {off} of {} operator classes were more than {:.0}% away (`tailor \
                     run` re-measures them)",
                    r.drift.classes.len(),
                    100.0 * crate::freshness::DRIFT_TOLERANCE
                );
            } else {
                info!("{line}");
            }
            Some(r.drift)
        }
        None => {
            let stale = profile.entries.iter().filter(|e| e.stale).count();
            info!(
                "profile {} not re-checked on this machine (entries last measured {}; \
                 `--recheck` re-times its drift subset, seconds; `tailor run` and `tailor \
                 validate` always do)",
                path.display(),
                profile.provenance.updated
            );
            if stale > 0 {
                tracing::warn!(
                    "{stale} entries of {} are marked stale (a drift check found their class \
                     away from the machine): `tailor profile --space` or `tailor run` of a \
                     space that needs them re-measures them",
                    path.display()
                );
            }
            None
        }
    }
}

/// The roofline model of a device file, or the profiled model of a profile (burn or
/// llama.cpp). A burn profile's freshness is quoted in the cost source as `recheck` says:
/// a remembered check, one made now (on this machine only), or none.
pub fn cost_model(
    space: &SearchSpace,
    space_path: &Path,
    device: Option<&Path>,
    profile: Option<&Path>,
    recheck: Recheck,
) -> Result<CostChoice> {
    match (device, profile) {
        (Some(path), _) => {
            let device = DeviceSpec::load(path)?;
            let name = device.name.clone();
            let roofline = Roofline::new(device, &space.workload.precision).map_err(|error| {
                WorkflowError::MissingPeak {
                    path: path.to_path_buf(),
                    error,
                }
            })?;
            Ok(CostChoice {
                model: Box::new(roofline),
                source: CostSource {
                    kind: CostKind::Roofline,
                    file: path.display().to_string(),
                    device: name,
                    fingerprint: None,
                    llama_fingerprint: None,
                    profile_check: None,
                    level: None,
                },
            })
        }
        (None, Some(path)) if crate::llama::is_llama(path) => {
            let cost = crate::llama::load_cost(path, Some(space))
                .map_err(|e| e.of(format!("pricing {}", space_path.display())))?;
            crate::llama::note_machine(path, cost.profile());
            Ok(llama_cost(cost, path))
        }
        (None, Some(path)) => {
            let model = load_profiled(path)?;
            let check = match recheck {
                Recheck::Now(timing) => crate::freshness::recheck_if_here(path, &model, timing)?,
                Recheck::Remembered => recall_check(path, model.profile()),
                Recheck::Off => None,
            };
            let mut cost = profiled_cost(model, path, space, space_path)?;
            cost.source.profile_check = check;
            Ok(cost)
        }
        (None, None) => Err(WorkflowError::NoCostModel),
    }
}

/// The search options for `req` on `space` (what `Auto` resolves to); refuses, before
/// anything runs, a budget with an exhaustive search and a search whose candidates.csv
/// would exceed the size allowed.
pub fn options(space: &SearchSpace, req: &SearchRequest) -> Result<SearchOptions> {
    let strategy = match req.strategy {
        StrategyChoice::Auto if space.size() <= AUTO_EXHAUSTIVE_POINTS => Strategy::Exhaustive,
        StrategyChoice::Auto | StrategyChoice::Nsga2 => Strategy::Nsga2,
        StrategyChoice::Exhaustive => Strategy::Exhaustive,
        StrategyChoice::Random => Strategy::Random,
    };
    if strategy == Strategy::Exhaustive && req.budget.is_some() {
        return Err(WorkflowError::BudgetWithExhaustive {
            points: space.size(),
        });
    }
    let options = SearchOptions {
        strategy,
        budget: req.budget,
        seed: req.seed,
        population: req.population.map(|p| p as usize),
    };
    if let Some(rows) = options.unbounded_rows(space) {
        // A set of devices adds each device's columns (about 64 bytes a device).
        let devices = if space.is_set() {
            space.devices.len() as u64
        } else {
            0
        };
        let size = rows.saturating_mul(CSV_ROW_BYTES + 64 * devices);
        if size > req.max_candidates_csv_mib << 20 {
            return Err(WorkflowError::CsvTooLarge {
                space: space.path.clone(),
                strategy: strategy.name(),
                points: thousands(u128::from(rows)),
                size: bytes(size as f64),
                max_mib: req.max_candidates_csv_mib,
            });
        }
    }
    Ok(options)
}

/// What prices the space's devices: the kind of file each names.
pub fn is_datasheet(path: &Path) -> bool {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.parse::<toml::Table>().ok())
        .is_some_and(|t| t.contains_key("compute") && t.contains_key("memory"))
}

/// The weights a profile was measured with (a llama.cpp profile's weight type, a burn
/// profile's element type); `None` for a datasheet, which prices any.
fn profile_weights(path: &Path) -> Result<Option<tailor_spec::DType>> {
    if crate::llama::is_llama(path) {
        let p = tailor_llamacpp::LlamaProfile::load(path)?;
        return Ok(Some(p.fingerprint.weights));
    }
    if is_datasheet(path) {
        return Ok(None);
    }
    Ok(Some(Profile::load(path)?.fingerprint.dtype))
}

/// A device's file, or the refusal that names the device and how to give one.
pub fn device_file(space: &SearchSpace, space_path: &Path, d: usize) -> Result<PathBuf> {
    let dev = &space.devices[d];
    dev.file
        .clone()
        .ok_or_else(|| WorkflowError::DeviceWithoutFile {
            space: space_path.to_path_buf(),
            device: dev.name.clone(),
        })
}

/// Sets each device's workload: the space's, with the weights `[devices.NAME] weights`
/// gives, else its profile's own, else (a datasheet) the space's.
pub fn set_device_workloads(space: &mut SearchSpace, space_path: &Path) -> Result<()> {
    for d in 0..space.devices.len() {
        let file = device_file(space, space_path, d)?;
        let weights = match space.devices[d].weights {
            Some(w) => Some(w),
            None => profile_weights(&file).map_err(|error| WorkflowError::OnDevice {
                device: space.devices[d].name.clone(),
                error: Box::new(error),
            })?,
        };
        let mut w = space.workload;
        if let Some(weights) = weights {
            w.precision = Precision::for_weights(weights);
        }
        space.set_device_workload(d, w);
    }
    // A set of one is a one-device search under that device's workload.
    if let [only] = space.devices.as_slice() {
        space.workload = only.workload;
    }
    Ok(())
}

/// The cost model of each device of the space's set (`[devices]`, `--target`), in its
/// order, each under its own workload ([`set_device_workloads`], set in the space). A
/// device's refusal (no file, a shape or kind its profile lacks, another precision) names
/// the device.
pub fn device_costs(
    mut space: SearchSpace,
    space_path: &Path,
    recheck: Recheck,
) -> Result<(SearchSpace, Vec<CostChoice>)> {
    set_device_workloads(&mut space, space_path)?;
    let mut costs = Vec::with_capacity(space.devices.len());
    for d in 0..space.devices.len() {
        let name = space.devices[d].name.clone();
        let file = device_file(&space, space_path, d)?;
        let view = space.for_device(d);
        let (device, profile) = if is_datasheet(&file) {
            (Some(file.as_path()), None)
        } else {
            (None, Some(file.as_path()))
        };
        let cost = cost_model(&view, space_path, device, profile, recheck).map_err(|error| {
            WorkflowError::OnDevice {
                device: name.clone(),
                error: Box::new(error),
            }
        })?;
        info!(
            device = %name,
            weights = %view.workload.precision.weights,
            file = %file.display(),
            "priced by {}",
            cost.source.device
        );
        costs.push(cost);
    }
    Ok((space, costs))
}

/// Runs the search and writes candidates.csv and front.json into `out`. A space with no
/// feasible candidate is an error that says why (after the files and a summary.json are
/// written, so the user can look).
pub fn run_search(
    space: SearchSpace,
    cost: &CostChoice,
    options: &SearchOptions,
    out: &Path,
    progress: &dyn Progress,
) -> Result<SearchRun> {
    run_search_set(space, std::slice::from_ref(cost), options, out, progress)
}

/// [`run_search`] over the space's set of devices, `costs` one per device in its order
/// ([`device_costs`]); one cost model for a space of one device or none.
pub fn run_search_set(
    space: SearchSpace,
    costs: &[CostChoice],
    options: &SearchOptions,
    out: &Path,
    progress: &dyn Progress,
) -> Result<SearchRun> {
    let models: Vec<&dyn tailor_cost::CostModel> = costs.iter().map(|c| c.model.as_ref()).collect();
    if let (Some(edit), Some(spec)) = (space.edit, tailor_search::static_candidates(&space).next())
    {
        // Every edit metric the space uses must have a price (the bp step has none in
        // llama.cpp; a datasheet roofline prices no edit at all).
        for (d, cost) in costs.iter().enumerate() {
            let w = space.device_workload(d);
            let model = cost.model.as_ref();
            let est = model.estimate(&spec, &w);
            let priced = tailor_search::Metrics::statics(&space, &spec)
                .priced(&est, model.edit(&spec, &w, &edit).as_ref());
            if let Some(metric) = space
                .metrics_used()
                .into_iter()
                .find(|m| m.is_edit() && priced.get(*m).is_nan())
            {
                let error = WorkflowError::EditNotPriced {
                    space: space.path.clone(),
                    cost: cost.source.file.clone(),
                    metric: metric.name().into_owned(),
                };
                return Err(match space.devices.get(d) {
                    Some(dev) if space.is_set() => WorkflowError::OnDevice {
                        device: dev.name.clone(),
                        error: Box::new(error),
                    },
                    _ => error,
                });
            }
        }
    }
    let device_names: Vec<String> = space.devices.iter().map(|d| d.name.clone()).collect();
    let cost = &costs[0];
    info!(
        space = %space.name(),
        points = space.size(),
        strategy = options.strategy.name(),
        device = %if space.is_set() { device_names.join(", ") } else { cost.source.device.clone() },
        out = %out.display(),
        "searching"
    );
    let csv_path = out.join("candidates.csv");
    let mut csv = CsvSink::create_set(
        &csv_path,
        space.edit.is_some(),
        space.file.model.stack.is_some(),
        &space.at_metrics(),
        if space.is_set() { &device_names } else { &[] },
    )?;
    let mut cloud = Vec::new();
    let outcome = search_set(&space, &models, options, progress, &mut |c| {
        if c.feasible() && c.is_priced() {
            cloud.push(c.metrics.clone());
        }
        csv.write(c)
    })
    .map_err(|error| WorkflowError::Write {
        path: csv_path.clone(),
        error,
    })?;
    csv.finish()?;
    let device_name = if space.is_set() {
        format!("{} devices: {}", costs.len(), device_names.join(", "))
    } else if cost.source.kind.is_profile() {
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
        let mut candidate = price_set(&space, &models, id.unwrap_or(u64::MAX), loaded.spec.clone());
        if space.is_set() {
            outcome.fill_across(&space, &mut candidate.metrics);
            candidate.objectives = space
                .objectives
                .iter()
                .map(|(o, min)| {
                    let v = candidate.metrics.value(o);
                    if *min { v } else { -v }
                })
                .collect();
        }
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
    let space_is_set = space.is_set();
    let run = SearchRun {
        space,
        outcome,
        references,
        cloud,
        cost: cost.source.clone(),
        device_checks: Vec::new(),
        device_costs: if space_is_set {
            costs.iter().map(|c| c.source.clone()).collect()
        } else {
            Vec::new()
        },
        out: out.to_path_buf(),
        summary,
    };
    if let Some(why) = run.outcome.emptiness() {
        // summary.json says what excluded every candidate.
        Summary::of(&run, None, None).write(out)?;
        return Err(WorkflowError::NoFeasible {
            space: run.space.path.clone(),
            why,
            candidates: csv_path,
        });
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
    given.map(Path::to_path_buf).unwrap_or_else(|| {
        PathBuf::from("out").join(format!(
            "{}-{}",
            space.name(),
            tailor_report::fmt::timestamp()
        ))
    })
}
