//! `tailor run`: the whole chain on this machine, with burn (`run_burn`) or llama.cpp
//! (`run_llama`). A profile of this setup
//! covering the space (reused from the profiles folder when one matches, re-checked and
//! re-measured where it drifted; else profiled now), the search on it, the pick and a few
//! front rows built and timed whole, the export and the report, and summary.json.

use crate::check::{CheckProgress, CheckSetup, check};
use crate::error::{Result, WorkflowError};
use crate::freshness::{LevelRequest, machine_backend, refresh};
use crate::llama::{
    LlamaProfileOutcome, LlamaValidateRequest, load_cost, profile_llama, validate_llama,
    with_weights,
};
use crate::profile::{
    BurnProfileOutcome, BurnProfileRequest, ProfileSource, matching_profiles, new_profile_path,
    profile_burn,
};
use crate::search::{
    CostChoice, SearchRequest, llama_cost, load_profiled, options, profiled_cost, run_search,
};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tailor_llamacpp::{LlamaBench, Settings};
use tailor_profiler::{Backend, ProfileProgress, TimingOptions};
use tailor_report::Flavor;
use tailor_report::search::{
    self as report, BurnProfile, LlamaProfile, RunCheck, RunProfile, RunSection, SearchRun,
    Summary, Written,
};
use tailor_report::validation::Validation;
use tailor_search::{Metric, SearchSpace, static_candidates};
use tailor_spec::{DType, ModelSpec};
use tracing::{info, warn};

/// What `tailor run` is asked whatever the engine.
#[derive(Debug, Clone)]
pub struct RunCommon {
    pub space: PathBuf,
    /// Output folder [default: out/<space>-<timestamp>].
    pub out: Option<PathBuf>,
    /// The profile file to use (created or extended), instead of the one of this setup in
    /// `profiles`.
    pub profile: Option<PathBuf>,
    /// Where profiles of this setup are looked for, and a new one is written.
    pub profiles: PathBuf,
    pub seed: u64,
    /// Whole models to check (the pick and front rows); 0 skips the check.
    pub check: usize,
    pub check_rounds: u64,
    /// Sessions per profile entry (burn), runs per probe and phase (llama.cpp).
    pub profile_rounds: usize,
    /// `None`: the pick's natural flavor ([`Flavor::natural`]).
    pub flavor: Option<Flavor>,
}

/// One `tailor run` with burn.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub run: RunCommon,
    pub backend: Backend,
    pub timing: TimingOptions,
    /// No `--cycle-mib` was given: a new profile picks its weight cycle itself.
    pub cycle_auto: bool,
    /// Whole models timed before the search to set the level of the profile's predictions
    /// (`freshness::level`); 0 prices with the profile as it is.
    pub anchors: usize,
}

/// The progress of each stage of a run (bars in the binary); each is made when its stage
/// starts and dropped when it ends.
pub trait RunProgress {
    fn profile(&self) -> Box<dyn ProfileProgress + '_>;
    fn remeasure(&self) -> Box<dyn ProfileProgress + '_>;
    fn search(&self) -> Box<dyn tailor_search::Progress + '_>;
    fn check(&self) -> Box<dyn CheckProgress + '_>;
    /// llama.cpp's profiling and whole-model timing (one step per llama-bench visit).
    fn llama(&self) -> Box<dyn tailor_llamacpp::run::Progress + '_>;
}

/// No progress shown.
#[derive(Debug)]
pub struct NoRunProgress;

impl RunProgress for NoRunProgress {
    fn profile(&self) -> Box<dyn ProfileProgress + '_> {
        Box::new(tailor_profiler::Quiet)
    }
    fn remeasure(&self) -> Box<dyn ProfileProgress + '_> {
        Box::new(tailor_profiler::Quiet)
    }
    fn search(&self) -> Box<dyn tailor_search::Progress + '_> {
        Box::new(tailor_search::NoProgress)
    }
    fn check(&self) -> Box<dyn CheckProgress + '_> {
        Box::new(crate::check::NoCheckProgress)
    }
    fn llama(&self) -> Box<dyn tailor_llamacpp::run::Progress + '_> {
        Box::new(tailor_llamacpp::run::Quiet)
    }
}

/// What a run did; its files are written (summary.json last).
#[derive(Debug)]
pub struct RunOutcome {
    pub search: SearchRun,
    pub cost: CostChoice,
    pub profiled: BurnProfileOutcome,
    /// Entries re-measured because the drift check found them stale.
    pub remeasured: usize,
    pub validation: Option<Validation>,
    pub written: Written,
    pub summary: Summary,
    pub wall_s: f64,
}

/// The profile `req` uses: the one it names, else the profile in `req.run.profiles` of this
/// setup that covers most of `needed`, else a new file there.
fn choose_profile(req: &RunRequest, needed: &BTreeSet<tailor_cost::OpShape>) -> Result<PathBuf> {
    if let Some(p) = &req.run.profile {
        return Ok(p.clone());
    }
    let device = req.backend.open()?;
    let fingerprint = req.backend.fingerprint(&device);
    drop(device);
    Ok(
        match matching_profiles(&req.run.profiles, &fingerprint, needed).first() {
            Some((p, covered)) => {
                info!(
                    profile = %p.display(),
                    covered,
                    needed = needed.len(),
                    "reusing a profile of this setup"
                );
                p.clone()
            }
            None => {
                let p = new_profile_path(&req.run.profiles, req.backend, &fingerprint);
                info!(
                    profile = %p.display(),
                    "no profile of this setup in {}: profiling this machine",
                    req.run.profiles.display()
                );
                p
            }
        },
    )
}

/// Runs the whole chain of `req`.
pub fn run_burn(req: &RunRequest, progress: &dyn RunProgress) -> Result<RunOutcome> {
    let started = Instant::now();
    let space = SearchSpace::load(&req.run.space)?;

    // 1. A profile of this setup covering the space.
    let needed = crate::freshness::space_shapes(&space);
    if needed.is_empty() {
        return Err(WorkflowError::NoStaticCandidate {
            space: req.run.space.clone(),
        });
    }
    let profile_path = choose_profile(req, &needed)?;
    let profiled = profile_burn(
        &BurnProfileRequest {
            source: ProfileSource::Space(req.run.space.clone()),
            backend: req.backend,
            out: profile_path.clone(),
            prompts: Vec::new(),
            contexts: Vec::new(),
            timing: req.timing,
            rounds: req.run.profile_rounds,
            limit: None,
            force: false,
            cooldown: Duration::ZERO,
            edit: None,
            cycle_auto: req.cycle_auto,
        },
        progress.profile().as_ref(),
    )?;
    if profiled.missing > 0 {
        return Err(WorkflowError::StillMissing {
            path: profile_path,
            missing: profiled.missing,
            what: "shapes of the space are",
        });
    }

    // A profile reused as it was is re-checked on this machine first (seconds), and what
    // drifted is re-measured in its file.
    let mut model = load_profiled(&profile_path)?;
    // The profile's fingerprint checked against this machine once (it opens the device);
    // the re-check, the level and the check all time with this backend.
    let backend = machine_backend(&model, &profile_path, &req.run.space)?;
    // Re-checked unless every entry the space needs was timed by this run.
    let fresh = profiled.measured_now >= profiled.shapes_needed * req.run.profile_rounds.max(1);
    let (profile_check, remeasured, marked_stale) = if !fresh {
        let r = refresh(
            &profile_path,
            model,
            &needed,
            backend,
            &req.timing,
            req.run.profile_rounds,
            progress.remeasure().as_ref(),
        )?;
        model = r.model;
        (Some(r.drift), r.remeasured, r.marked)
    } else {
        (None, 0, 0)
    };

    let out = crate::search::out_dir(req.run.out.as_deref(), &space);
    let _lock = crate::lock::folder(&out)?;

    // With --anchors, the level of its predictions from a few whole models timed here now:
    // the entries give the shape of the costs, whole models their level on the machine.
    let level = if req.anchors > 0 {
        crate::freshness::level(
            &LevelRequest {
                profile: &profile_path,
                model: &model,
                backend,
                space: &space,
                anchors: req.anchors,
                exclude: &BTreeSet::new(),
                rounds: req.run.check_rounds,
                timing: req.timing,
                seed: req.run.seed,
                out: &out.join("level"),
            },
            progress.check().as_ref(),
        )?
    } else {
        None
    };
    if let Some(l) = &level {
        model = model.with_level(l.clone());
    }

    // 2. Search on it (the profile loaded above, re-measured where it drifted, levelled).
    let options = options(&space, &SearchRequest::auto(req.run.seed))?;
    let cost = profiled_cost(model.clone(), &profile_path, &space, &req.run.space)?;
    let search = run_search(space, &cost, &options, &out, progress.search().as_ref())?;

    // 3. The pick and a few front rows, whole.
    let validation = if req.run.check > 0 {
        let setup = CheckSetup {
            profile: &profile_path,
            model: &model,
            profile_check: profile_check.as_ref(),
            remeasured,
            backend,
            space: &search.space,
            rounds: req.run.check_rounds,
            timing: req.timing,
            seed: req.run.seed,
        };
        let models = checked_rows(&search, req.run.check);
        Some(check(
            &setup,
            models,
            &out.join("check"),
            progress.check().as_ref(),
        )?)
    } else {
        None
    };
    if let Some(v) = &validation {
        for w in v.drift() {
            warn!(profile = %profile_path.display(), "{w}");
        }
    }

    // 4. Export and report.
    let written = report::write_search(&search, req.run.flavor, validation.as_ref())?;
    let wall_s = started.elapsed().as_secs_f64();
    let section = RunSection {
        profile: RunProfile::Burn(BurnProfile {
            path: profile_path.display().to_string(),
            shapes_needed: profiled.shapes_needed,
            measured_now: profiled.measured_now,
            profile_wall_s: profiled.wall_s,
            profile_check,
            releveled: level.is_some(),
            level,
            remeasured,
            marked_stale,
        }),
        check: validation.as_ref().map(RunCheck::of),
        run_wall_s: wall_s,
    };
    let summary = Summary::of(&search, Some(&written), Some(section));
    summary.write(&out)?;
    Ok(RunOutcome {
        search,
        cost,
        profiled,
        remeasured,
        validation,
        written,
        summary,
        wall_s,
    })
}

/// One `tailor run --engine llama.cpp`.
#[derive(Debug)]
pub struct LlamaRunRequest<'a> {
    /// The profile defaults to `<profiles>/host-llamacpp-<weights>.toml`.
    pub run: RunCommon,
    /// The weights to design for, instead of the space's.
    pub weights: Option<DType>,
    pub bench: &'a LlamaBench,
    pub settings: Settings,
    pub decode_tokens: u64,
    /// Whole models timed before the search to set the level of the profile's predictions
    /// (`llama::level_llama`); 0 prices with the profile as it is.
    pub anchors: usize,
}

/// What a llama.cpp run did; its files are written (summary.json last).
#[derive(Debug)]
pub struct LlamaRunOutcome {
    pub search: SearchRun,
    pub profile: PathBuf,
    pub weights: DType,
    pub profiled: LlamaProfileOutcome,
    /// The check's validation and its folder.
    pub check: Option<Validation>,
    pub written: Written,
    pub summary: Summary,
    pub wall_s: f64,
}

/// Runs the whole chain of `req` in llama.cpp: profile (or resume) the probes the space
/// needs, search, time the pick and front rows whole with llama-bench, export, report.
pub fn run_llama(req: &LlamaRunRequest, progress: &dyn RunProgress) -> Result<LlamaRunOutcome> {
    let started = Instant::now();
    let space = with_weights(SearchSpace::load(&req.run.space)?, req.weights);
    let weights = space.workload.precision.weights;
    if static_candidates(&space).next().is_none() {
        return Err(WorkflowError::NoStaticCandidate {
            space: req.run.space.clone(),
        });
    }
    // A profile of another machine is never extended or priced with: the one named is
    // refused, the profiles folder's is left as it is and this machine profiled apart.
    crate::llama::require_named_here(req.run.profile.as_deref(), &req.run.space)?;
    let profile_path = match &req.run.profile {
        Some(p) => p.clone(),
        None => crate::llama::profile_path_for(&req.run.profiles, weights),
    };
    let request = crate::llama::space_request(
        &space,
        req.bench,
        req.settings.clone(),
        req.decode_tokens,
        req.run.profile_rounds as u32,
        profile_path.clone(),
    )?;
    let mut profiled = profile_llama(&request, progress.llama().as_ref())?;
    // A profile reused as it was (some of the probes this space needs were timed by an
    // earlier run) is re-checked here first; the entries of the phases that drifted are
    // marked stale and the ones this space needs timed again.
    let visits = profiled.probes * request.rounds.max(1) as usize;
    let first_visits = profiled.runs_now;
    let (profile_check, remeasured) = if profiled.runs_now < visits {
        let (drift, marked) = crate::llama::recheck(&profile_path, req.bench, &req.settings, true)?;
        if marked > 0 {
            profiled = profile_llama(&request, progress.llama().as_ref())?;
            warn!(
                "re-timed {} probe visits of {} (its phases drifted, or were timed under load)",
                profiled.runs_now,
                profile_path.display()
            );
        }
        let remeasured = if marked > 0 { profiled.runs_now } else { 0 };
        (Some(drift), remeasured)
    } else {
        (None, 0)
    };
    if profiled.missing > 0 {
        return Err(WorkflowError::StillMissing {
            path: profile_path,
            missing: profiled.missing,
            what: "probe runs are",
        });
    }
    let options = options(&space, &SearchRequest::auto(req.run.seed))?;
    let out = crate::search::out_dir(req.run.out.as_deref(), &space);
    let _lock = crate::lock::folder(&out)?;
    let mut priced = load_cost(&profile_path, Some(&space))?;
    // With --anchors, the level of its predictions from a few whole models timed here now.
    if req.anchors > 0 {
        let level = crate::llama::level_llama(
            &crate::llama::LlamaLevelRequest {
                profile: &profile_path,
                space_path: &req.run.space,
                space: &space,
                cost: &priced,
                anchors: req.anchors,
                exclude: &std::collections::BTreeSet::new(),
                bench: req.bench,
                settings: req.settings.clone(),
                rounds: req.run.check_rounds,
                seed: req.run.seed,
                out: &out.join("level"),
            },
            progress.llama().as_ref(),
        )?;
        if let Some(l) = level {
            priced = priced.with_level(l);
        }
    }
    let level = priced.level().cloned();
    let cost = llama_cost(priced.clone(), &profile_path);
    let search = run_search(space, &cost, &options, &out, progress.search().as_ref())?;
    let check = if req.run.check > 0 {
        let cost = priced;
        let check_out = out.join("check");
        let v = validate_llama(
            &LlamaValidateRequest {
                profile: &profile_path,
                space_path: &req.run.space,
                space: &search.space,
                cost: &cost,
                models: checked_rows(&search, req.run.check),
                bench: req.bench,
                settings: req.settings.clone(),
                rounds: req.run.check_rounds,
                seed: req.run.seed,
                out: &check_out,
                profile_check: profile_check.clone(),
                remeasured,
            },
            progress.llama().as_ref(),
        )?;
        if let Some(d) = v.file.decode.filter(|a| (a.median_ratio - 1.0).abs() > 0.1) {
            warn!(
                profile = %profile_path.display(),
                "whole models decode {:.0}% off the profile: re-profile with --force",
                100.0 * (d.median_ratio - 1.0)
            );
        }
        Some(v)
    } else {
        None
    };
    let written = report::write_search(&search, req.run.flavor, check.as_ref())?;
    let wall_s = started.elapsed().as_secs_f64();
    let section = RunSection {
        profile: RunProfile::LlamaCpp(LlamaProfile {
            path: profile_path.display().to_string(),
            engine: "llama.cpp".into(),
            probes: profiled.probes,
            probe_visits_now: first_visits + remeasured,
            profile_wall_s: profiled.wall_s,
            profile_check,
            remeasured,
            level,
        }),
        check: check.as_ref().map(RunCheck::of),
        run_wall_s: wall_s,
    };
    let summary = Summary::of(&search, Some(&written), Some(section));
    summary.write(&out)?;
    Ok(LlamaRunOutcome {
        search,
        profile: profile_path,
        weights,
        profiled,
        check,
        written,
        summary,
        wall_s,
    })
}

/// The models a run checks whole: the pick first, then front rows spread evenly over the
/// front's decode times (`n` in all, at most the front).
pub fn checked_rows(run: &SearchRun, n: usize) -> Vec<(u64, ModelSpec)> {
    let o = &run.outcome;
    let Some(pick) = o.pick.map(|i| &o.front[i]) else {
        return Vec::new();
    };
    let mut others: Vec<_> = o.front.iter().filter(|c| c.id != pick.id).collect();
    others.sort_by(|a, b| {
        a.metrics
            .get(Metric::DecodeMs)
            .total_cmp(&b.metrics.get(Metric::DecodeMs))
            .then(a.id.cmp(&b.id))
    });
    let k = n.saturating_sub(1).min(others.len());
    let mut rows = vec![(pick.id, pick.spec.clone())];
    for i in 0..k {
        // Evenly spaced, both ends included.
        let j = if k == 1 {
            others.len() - 1
        } else {
            i * (others.len() - 1) / (k - 1)
        };
        rows.push((others[j].id, others[j].spec.clone()));
    }
    rows
}
