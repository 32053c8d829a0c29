//! The llama.cpp pipelines: profiling the probe models a space needs with the user's
//! llama-bench (resumable, under the profile's lock), and timing whole models with it
//! against a llama.cpp profile's predictions. The measuring and pricing are
//! `tailor-llamacpp`'s; this module runs them over files.

use crate::error::{Result, WorkflowError};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tailor_cost::profile::SetupMismatch;
use tailor_cost::{CpuId, Workload};
use tailor_llamacpp::profile::Phase;
use tailor_llamacpp::run::{self as llrun, Progress};
use tailor_llamacpp::{
    Depths, LlamaBench, LlamaCost, LlamaFingerprint, LlamaProfile, Method, ProfileJob, Settings,
    WeightType, plan,
};
use tailor_report::profile::LlamaProfileReport;
use tailor_report::validation::{self as validation, Measured, ProfileCheck, Row, Validation};
use tailor_search::SearchSpace;
use tailor_spec::files::utc_now_iso;
use tailor_spec::{DType, ModelSpec, Precision};
use tracing::{info, warn};

/// The probe depths of `--probe-layers` (`None`: auto, from the space's depths, each
/// probe model at most `mib` MiB of weights) and `--probe-mib`.
pub fn depths(fixed: Option<(u64, u64)>, weights: DType, mib: u64) -> Result<Depths> {
    Ok(match fixed {
        Some((lo, hi)) => Depths::Fixed(lo, hi),
        None => Depths::Space {
            weights: WeightType::from_dtype(weights)?,
            max_probe_bytes: mib << 20,
        },
    })
}

/// What differs between the machine a llama.cpp profile was made on and this one, by what
/// tailor can read without running llama-bench: the OS, the CPU's model name, and its
/// identity (vendor, parts, kernel ISA, caches; a profile made before tailor recorded the
/// identity compares by name only). Empty: as far as these tell, this machine.
pub fn machine_differences(fp: &LlamaFingerprint) -> Vec<String> {
    let mut out = Vec::new();
    let os = llrun::host_os();
    if fp.os != os {
        out.push(format!("os `{}` vs `{os}`", fp.os));
    }
    let name = tailor_profiler::backend::cpu_model();
    if fp.cpu_info != name {
        out.push(format!("cpu_info `{}` vs `{name}`", fp.cpu_info));
    }
    out.extend(fp.cpu.differences(&CpuId::read()));
    out
}

/// Refuses a llama.cpp profile of another machine where whole models are timed here
/// (`validate`, `run`), before anything is priced.
pub fn require_here(path: &Path, profile: &LlamaProfile, space: &Path) -> Result<()> {
    SetupMismatch::check(
        &profile.name,
        "machine",
        machine_differences(&profile.fingerprint),
    )
    .map_err(|mismatch| WorkflowError::LlamaNotThisMachine {
        path: path.to_path_buf(),
        mismatch,
        space: space.to_path_buf(),
        weights: profile.fingerprint.weights,
    })?;
    if profile.fingerprint.cpu.is_empty() {
        warn!(
            "{} records no CPU identity (made before tailor recorded it): it is taken as this \
             machine's by the CPU's name `{}` alone; re-profile to record it",
            path.display(),
            profile.fingerprint.cpu_info
        );
    }
    Ok(())
}

/// [`require_here`] for the profile file a run names, where it exists (a new one is made
/// here, of this machine).
pub fn require_named_here(profile: Option<&Path>, space: &Path) -> Result<()> {
    match profile {
        Some(p) if p.exists() => require_here(p, &LlamaProfile::load(p)?, space),
        _ => Ok(()),
    }
}

/// Says, without refusing, when a llama.cpp profile priced here looks like this machine's
/// but is not (the same OS and CPU name, another part or cache), or cannot be told apart
/// (no CPU identity recorded): a search may price any device's profile, but it should not
/// be mistaken for this one.
pub fn note_machine(path: &Path, profile: &LlamaProfile) {
    let fp = &profile.fingerprint;
    if fp.os != llrun::host_os() || fp.cpu_info != tailor_profiler::backend::cpu_model() {
        return;
    }
    let differences = fp.cpu.differences(&CpuId::read());
    if !differences.is_empty() {
        warn!(
            "{} was made on another CPU that shares this one's name ({}): it prices that \
             machine, not this one; `tailor run --engine llama.cpp` profiles this one",
            path.display(),
            differences.join(", ")
        );
    } else if fp.cpu.is_empty() {
        warn!(
            "{} records no CPU identity: nothing tells whether it was made on this CPU or \
             another of the same name (`{}`); re-profile to record it",
            path.display(),
            fp.cpu_info
        );
    }
}

/// The llama.cpp profile of this machine for `weights` in `dir`: `host-llamacpp-<weights>.toml`
/// when it is this machine's (or does not exist yet), else another file there of this
/// machine and these weights, else a new name for one. A profile of another machine is
/// never reused: it is left as it is, and this machine is profiled into a file of its own.
pub fn profile_path_for(dir: &Path, weights: DType) -> PathBuf {
    let plain = dir.join(format!("host-llamacpp-{weights}.toml"));
    let mine = |p: &Path| {
        LlamaProfile::load(p).is_ok_and(|l| {
            l.fingerprint.weights == weights && machine_differences(&l.fingerprint).is_empty()
        })
    };
    if !plain.exists() || mine(&plain) {
        return plain;
    }
    let slug = crate::remote::slug(&tailor_profiler::backend::cpu_model());
    let base = format!("host-llamacpp-{weights}-{slug}");
    let candidates = (1..100).map(|i| match i {
        1 => dir.join(format!("{base}.toml")),
        i => dir.join(format!("{base}-{i}.toml")),
    });
    for p in candidates {
        if !p.exists() || mine(&p) {
            info!(
                "{} was made on another machine ({}); this machine's llama.cpp profile is {}",
                plain.display(),
                LlamaProfile::load(&plain)
                    .map(|l| machine_differences(&l.fingerprint).join(", "))
                    .unwrap_or_else(|e| e.to_string()),
                p.display()
            );
            return p;
        }
    }
    plain
}

/// The probes, phases and settings a profile of `space` needs (what `tailor run --engine
/// llama.cpp` profiles, and `validate --remeasure` re-times), into `out`.
pub fn space_request<'a>(
    space: &SearchSpace,
    bench: &'a LlamaBench,
    settings: Settings,
    decode_tokens: u64,
    rounds: u32,
    out: PathBuf,
) -> Result<LlamaProfileRequest<'a>> {
    let weights = space.workload.precision.weights;
    Ok(LlamaProfileRequest {
        name: space.name().to_string(),
        specs: tailor_search::static_candidates(space).collect(),
        // An edit's passes are prefills of its prompt.
        prompts: space
            .prompts()
            .into_iter()
            .chain(space.edit.map(|e| e.tokens))
            .collect(),
        contexts: space.contexts(),
        weights,
        bench,
        settings,
        decode_tokens,
        rounds,
        depths: depths(None, weights, 128)?,
        out,
        force: false,
        limit: None,
    })
}

/// The hidden folder `.<file name>.<what>` beside `path`, where probe GGUFs are written
/// and removed while `path` is profiled or checked.
fn beside(path: &Path, what: &str) -> PathBuf {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join(format!(
            ".{}.{what}",
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ))
}

/// `base` with what a profile fixes of how its probes were timed (threads, flash
/// attention, KV cache type, repetitions), so that models and checks are timed as the
/// probes were.
pub fn settings_of(profile: &LlamaProfile, base: &Settings) -> Settings {
    let f = &profile.fingerprint;
    let mut settings = base.clone();
    settings.flash_attn = f.flash_attn.clone();
    settings.cache_type = f.type_k.clone();
    settings.threads = f.threads;
    settings.repetitions = profile.method.repetitions;
    settings
}

/// Re-checks the llama.cpp profile at `path` on this machine (its drift subset re-timed
/// with llama-bench, seconds) and marks stale in the file, under its lock, the entries of
/// the phases that moved more than the tolerance (and those timed under load); profiling
/// the space again then re-times the ones it needs (`retime`: whether the caller does so
/// now, which the warning says). Returns the check and how many entries were newly marked.
pub fn recheck(
    path: &Path,
    bench: &LlamaBench,
    base: &Settings,
    retime: bool,
) -> Result<(tailor_llamacpp::LlamaDrift, usize)> {
    let _lock = crate::lock::file(path)?;
    let mut profile = LlamaProfile::load(path)?;
    let weights = WeightType::from_dtype(profile.fingerprint.weights)?;
    let settings = settings_of(&profile, base);
    let work_dir = beside(path, "check");
    let drift =
        tailor_llamacpp::drift::check(bench, path, &profile, weights, &settings, &work_dir, 0);
    let _ = std::fs::remove_dir_all(&work_dir);
    let drift = drift.map_err(|error| WorkflowError::LlamaProfiling {
        path: path.to_path_buf(),
        error,
    })?;
    info!(
        "llama.cpp profile {} (probes last measured {}) re-checked on this machine in {:.1} s, \
         time now / profiled: {}",
        path.display(),
        profile.provenance.updated,
        drift.wall_s,
        drift.summary()
    );
    let tolerance = tailor_llamacpp::drift::TOLERANCE;
    let marked = drift.mark_stale(&mut profile, tolerance);
    if marked > 0 {
        profile.save(path)?;
        let next = if retime {
            "the probes this space needs are timed again now (the others when a space needs them)"
        } else {
            "this run prices the profile as it was measured (--remeasure times the space's \
             probes again first; the next `tailor profile` or `tailor run` of a space does)"
        };
        warn!(
            "{} of {} phases are more than {:.0}% away from the profile, or were timed under \
             load: {marked} entries of {} marked stale; {next}",
            drift.drifted(tolerance).len(),
            drift.phases.len(),
            100.0 * tolerance,
            path.display()
        );
    }
    Ok((drift, marked))
}

/// Whether the file at `path` is a llama.cpp profile (and not a burn one).
pub fn is_llama(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|s| tailor_llamacpp::is_llama_profile(&s))
}

/// The llama.cpp cost model of the profile at `path`, checked against every workload of
/// the space it will price (its own, and those of its metrics at other prompts and
/// contexts).
pub fn load_cost(path: &Path, space: Option<&SearchSpace>) -> Result<LlamaCost> {
    let workloads: Vec<Workload> = match space {
        Some(space) => std::iter::once(space.workload)
            .chain(
                space
                    .at_metrics()
                    .iter()
                    .filter_map(|m| m.workload(&space.workload)),
            )
            .collect(),
        None => Vec::new(),
    };
    load_cost_for(path, &workloads)
}

/// The llama.cpp cost model of the profile at `path`, checked against these workloads
/// only (a validation needs its own prompt and context, not every point of the space).
pub fn load_cost_for(path: &Path, workloads: &[Workload]) -> Result<LlamaCost> {
    let profile = LlamaProfile::load(path)?;
    info!(
        "using the llama.cpp profile {} ({}; probes last measured {})",
        path.display(),
        profile.name,
        profile.provenance.updated
    );
    let cost = LlamaCost::new(profile);
    for w in workloads {
        cost.check_workload(w)
            .map_err(|error| WorkflowError::LlamaWorkload {
                path: path.to_path_buf(),
                error,
            })?;
    }
    Ok(cost)
}

/// The space with its workload's weights replaced by `weights` (when given).
pub fn with_weights(mut space: SearchSpace, weights: Option<DType>) -> SearchSpace {
    if let Some(d) = weights {
        space.workload.precision = Precision::for_weights(d);
    }
    space
}

/// One `tailor profile --engine llama.cpp`.
#[derive(Debug)]
pub struct LlamaProfileRequest<'a> {
    /// The profile's name (the space's, or `specs`).
    pub name: String,
    pub specs: Vec<ModelSpec>,
    pub prompts: Vec<u64>,
    pub contexts: Vec<u64>,
    pub weights: DType,
    pub bench: &'a LlamaBench,
    /// Threads, flash attention, KV cache type, repetitions per run.
    pub settings: Settings,
    /// Decode steps per llama-bench decode test.
    pub decode_tokens: u64,
    /// Runs per probe and phase.
    pub rounds: u32,
    pub depths: Depths,
    pub out: PathBuf,
    pub force: bool,
    pub limit: Option<usize>,
}

/// The outcome of a llama.cpp profiling run.
#[derive(Debug)]
pub struct LlamaProfileOutcome {
    pub profile: LlamaProfile,
    pub out: PathBuf,
    pub probes: usize,
    /// Phases each probe is timed in (one llama-bench run each per visit).
    pub phases: usize,
    pub runs_now: usize,
    pub missing: usize,
    pub wall_s: f64,
    /// The device it ran on, when through `--remote`.
    pub remote: Option<String>,
}

impl LlamaProfileOutcome {
    /// Probe entries with a round timed while other processes took a share of the CPUs.
    pub fn loaded_entries(&self) -> usize {
        self.profile
            .probes
            .iter()
            .filter(|e| e.loaded_rounds > 0)
            .count()
    }

    /// What `tailor profile --engine llama.cpp --json` prints of this run.
    pub fn report(&self) -> LlamaProfileReport {
        LlamaProfileReport {
            profile: self.out.display().to_string(),
            engine: "llama.cpp".into(),
            fingerprint: self.profile.fingerprint.clone(),
            probes: self.probes,
            probe_visits_now: self.runs_now,
            llama_bench_runs_now: self.runs_now * self.phases,
            missing: self.missing,
            wall_s: self.wall_s,
            remote: self.remote.clone(),
            loaded_entries: self.loaded_entries(),
        }
    }
}

/// Profiles (or resumes) the probes the specs need, into `req.out`, saving after every
/// visit.
pub fn profile_llama(
    req: &LlamaProfileRequest,
    progress: &dyn Progress,
) -> Result<LlamaProfileOutcome> {
    let started = Instant::now();
    let weights = WeightType::from_dtype(req.weights)?;
    let probes = plan(req.specs.iter(), req.depths);
    if probes.is_empty() {
        return Err(WorkflowError::NothingToProfile);
    }
    warn_shallow_probes(&req.specs, &probes, req.depths);
    for s in &req.specs {
        tailor_llamacpp::model::substitutions(s, weights)?;
    }
    let mut phases: Vec<Phase> = req
        .prompts
        .iter()
        .map(|&tokens| Phase::Prefill { tokens })
        .chain(
            req.contexts
                .iter()
                .map(|&context| Phase::Decode { context }),
        )
        .collect();
    phases.sort();
    phases.dedup();
    let method = Method {
        decode_tokens: req.decode_tokens,
        repetitions: req.settings.repetitions,
        rounds: req.rounds,
    };
    // Probe models are written beside the profile and removed after each visit; a killed
    // run leaves at most one there, which the next run removes.
    let work_dir = beside(&req.out, "probes");
    let job = ProfileJob {
        name: req.name.clone(),
        probes,
        phases,
        weights,
        settings: req.settings.clone(),
        method,
        work_dir: work_dir.clone(),
        seed: 0,
        limit: req.limit,
    };
    // One writer per profile (and its probe folder); a second run waits here, then
    // resumes what the first saved.
    let _lock = crate::lock::file(&req.out)?;
    std::fs::create_dir_all(&work_dir).map_err(|error| WorkflowError::CreateDir {
        path: work_dir.clone(),
        error,
    })?;
    let fingerprint = llrun::probe_fingerprint(req.bench, &job, &llrun::host_os())
        .map_err(WorkflowError::FirstProbe)?;
    let profile = if req.out.exists() && !req.force {
        let existing = LlamaProfile::load(&req.out)?;
        existing
            .check_fingerprint(&fingerprint)
            .map_err(|mismatch| WorkflowError::OtherSetup {
                path: req.out.clone(),
                mismatch,
            })?;
        if existing.method.decode_tokens != method.decode_tokens
            || existing.method.repetitions != method.repetitions
        {
            return Err(WorkflowError::OtherMethod {
                path: req.out.clone(),
                decode_tokens: existing.method.decode_tokens,
                repetitions: existing.method.repetitions,
            });
        }
        info!(path = %req.out.display(), probes = existing.probes.len(), "resuming");
        let mut p = existing;
        p.method.rounds = p.method.rounds.max(method.rounds);
        p
    } else {
        llrun::new_profile(
            &format!(
                "{} on llama.cpp {} ({})",
                fingerprint.cpu_info, fingerprint.build_commit, weights
            ),
            fingerprint,
            method,
            &utc_now_iso(),
        )
    };
    let todo = llrun::pending(&profile, &job).len();
    info!(
        probes = job.probes.len(),
        phases = job.phases.len(),
        visits = todo.min(req.limit.unwrap_or(usize::MAX)),
        "profiling llama.cpp"
    );
    let out = req.out.clone();
    let result = llrun::run_profile(req.bench, profile, &job, &utc_now_iso, progress, &mut |p| {
        p.save(&out)
    });
    let _ = std::fs::remove_dir_all(&work_dir);
    let profile = result.map_err(|error| WorkflowError::LlamaProfiling {
        path: req.out.clone(),
        error,
    })?;
    // A resumed file may hold probes of other spaces: save it even if nothing ran.
    profile.save(&req.out)?;
    let missing = llrun::pending(&profile, &job).len();
    Ok(LlamaProfileOutcome {
        probes: job.probes.len(),
        phases: job.phases.len(),
        runs_now: todo.min(req.limit.unwrap_or(usize::MAX)),
        missing,
        out: req.out.clone(),
        profile,
        wall_s: started.elapsed().as_secs_f64(),
        remote: None,
    })
}

/// Says when `--probe-mib` holds a width's probes far below the depth of the space's
/// models ([`tailor_llamacpp::ShallowWidth`]).
fn warn_shallow_probes(specs: &[ModelSpec], probes: &[tailor_llamacpp::Probe], depths: Depths) {
    let Depths::Space {
        max_probe_bytes, ..
    } = depths
    else {
        return;
    };
    let shallow: Vec<String> = tailor_llamacpp::shallow_widths(specs, probes)
        .iter()
        .map(|w| {
            format!(
                "width {}: {} for models of {}+",
                w.hidden, w.deepest_probe, w.fewest_layers
            )
        })
        .collect();
    if !shallow.is_empty() {
        warn!(
            "--probe-mib {} holds probes far below the space's depth ({}): each layer's cost \
             is the difference of shallow probes, multiplied by the depth. Raise --probe-mib \
             (e.g. 1024 for 0.5B models at f32) for closer predictions, at the cost of \
             profiling time",
            max_probe_bytes >> 20,
            shallow.join("; ")
        );
    }
}

/// What a llama.cpp validation is asked.
#[derive(Debug)]
pub struct LlamaValidateRequest<'a> {
    pub profile: &'a Path,
    pub space_path: &'a Path,
    pub space: &'a SearchSpace,
    pub cost: &'a LlamaCost,
    pub models: Vec<(u64, ModelSpec)>,
    pub bench: &'a LlamaBench,
    /// The run's settings; threads, cache type, flash attention and repetitions are
    /// replaced by the profile's, so the models are timed as the probes were.
    pub settings: Settings,
    pub rounds: u64,
    pub seed: u64,
    pub out: &'a Path,
    /// The drift check made before (quoted in validate.json).
    pub profile_check: Option<tailor_llamacpp::LlamaDrift>,
    /// Probe visits re-timed before.
    pub remeasured: usize,
}

/// Times `models` whole with llama-bench, compares with the profile's predictions and
/// writes validate.json and validate.csv into `out`.
pub fn validate_llama(req: &LlamaValidateRequest, progress: &dyn Progress) -> Result<Validation> {
    let started = Instant::now();
    let settings = settings_of(req.cost.profile(), &req.settings);
    let w = req.space.workload;
    let weights = WeightType::from_dtype(w.precision.weights)?;
    // The whole setup (llama.cpp's build and backends, threads, cache, the CPU) checked
    // with one tiny probe before any model is built: the profile must be of this one.
    std::fs::create_dir_all(req.out).map_err(|error| WorkflowError::CreateDir {
        path: req.out.to_path_buf(),
        error,
    })?;
    let job = ProfileJob {
        name: "fingerprint".into(),
        probes: Vec::new(),
        phases: Vec::new(),
        weights,
        settings: settings.clone(),
        method: req.cost.profile().method,
        work_dir: req.out.to_path_buf(),
        seed: req.seed,
        limit: None,
    };
    let here = llrun::probe_fingerprint(req.bench, &job, &llrun::host_os())
        .map_err(WorkflowError::FirstProbe)?;
    req.cost
        .profile()
        .check_fingerprint(&here)
        .map_err(|mismatch| WorkflowError::LlamaNotThisMachine {
            path: req.profile.to_path_buf(),
            mismatch,
            space: req.space_path.to_path_buf(),
            weights: w.precision.weights,
        })?;
    let mut rows: Vec<Row> = req
        .models
        .iter()
        .map(|(id, spec)| {
            let p = req.cost.predict(spec, &w);
            Row {
                id: *id,
                spec: spec.clone(),
                params: spec.total_params(),
                predicted_prefill_ms: p.estimate.prefill_ms,
                predicted_decode_ms: p.estimate.decode_ms_per_token,
                // What llama-bench's decode run holds, as it is measured: the deployed
                // model's memory and the copy of the filled cache llama-bench restores
                // before each repetition.
                predicted_memory_bytes: req.cost.bench_memory_bytes(spec, &w),
                not_measured: p.derived,
                measured: None,
                error: None,
            }
        })
        .collect();
    let specs: Vec<ModelSpec> = req.models.iter().map(|(_, s)| s.clone()).collect();
    info!(
        models = specs.len(),
        rounds = req.rounds,
        weights = %weights,
        "timing whole models with llama-bench"
    );
    let timings = tailor_llamacpp::measure_models(
        req.bench,
        &specs,
        weights,
        tailor_llamacpp::cost::phases_of(&w),
        &settings,
        &req.cost.profile().method,
        req.rounds,
        &req.out.join("models"),
        req.seed,
        progress,
    )?;
    let _ = std::fs::remove_dir(req.out.join("models"));
    for (row, t) in rows.iter_mut().zip(timings) {
        match t {
            Ok(t) => row.measured = Some(Measured::of_llama(&t)),
            Err(e) => row.error = Some(e.to_string()),
        }
    }
    let file = validation::ValidateFile::new(
        validation::Setup {
            engine: "llama.cpp".into(),
            space: req.space_path.display().to_string(),
            profile: req.profile.display().to_string(),
            fingerprint: None,
            workload: w,
            seed: req.seed,
            rounds: req.rounds,
            profile_check: req.profile_check.clone().map(ProfileCheck::LlamaCpp),
            level: req.cost.level().cloned(),
            remeasured: req.remeasured,
        },
        rows,
        started.elapsed().as_secs_f64(),
    );
    let caption = format!(
        "{} on {} (llama.cpp, {} weights): predicted vs measured, {} models",
        req.space.name(),
        req.profile.display(),
        weights,
        file.measured
    );
    let v = validation::write(req.out, file, &caption)?;
    for line in v.file.round_ratios.uneven() {
        warn!("{line}");
    }
    for r in &v.file.rows {
        if let Some(e) = &r.error {
            warn!(id = r.id, "not measured: {e}");
        }
    }
    Ok(v)
}

/// What [`level_llama`] needs.
#[derive(Debug)]
pub struct LlamaLevelRequest<'a> {
    pub profile: &'a Path,
    pub space_path: &'a Path,
    pub space: &'a SearchSpace,
    /// The cost model to level (its predictions before levelling are the anchors').
    pub cost: &'a LlamaCost,
    /// Whole models to time ([`tailor_search::anchor_sample`]); 2 by default.
    pub anchors: usize,
    /// Candidates not to take as anchors (the models a validation checks).
    pub exclude: &'a std::collections::BTreeSet<u64>,
    pub bench: &'a LlamaBench,
    pub settings: Settings,
    pub rounds: u64,
    pub seed: u64,
    /// Where the anchors' validation goes (`validate.json`, `validate.csv`).
    pub out: &'a Path,
}

/// The level of a llama.cpp profile's predictions on this machine now, as
/// `freshness::level` sets a burn profile's: `req.anchors` models of the space at fixed
/// quantiles of predicted decode time (none of `req.exclude`), timed whole by llama-bench
/// as [`validate_llama`] times any model, against `req.cost`'s prediction; the median
/// measured/predicted per phase is what [`LlamaCost::with_level`] scales by. `None` when
/// the space has no candidate left to anchor on.
pub fn level_llama(
    req: &LlamaLevelRequest,
    progress: &dyn Progress,
) -> Result<Option<tailor_cost::Level>> {
    let anchors = tailor_search::anchor_sample(req.space, req.cost, req.anchors, req.exclude);
    if anchors.is_empty() {
        warn!(
            "no candidate of {} is left to time as an anchor: predictions stay at the profile's \
             level",
            req.space_path.display()
        );
        return Ok(None);
    }
    info!(
        anchors = ?anchors.iter().map(|c| c.id).collect::<Vec<_>>(),
        "timing whole models in llama.cpp to set the level of {}'s predictions on this machine \
         now",
        req.profile.display()
    );
    let v = validate_llama(
        &LlamaValidateRequest {
            profile: req.profile,
            space_path: req.space_path,
            space: req.space,
            cost: req.cost,
            models: anchors.into_iter().map(|c| (c.id, c.spec)).collect(),
            bench: req.bench,
            settings: req.settings.clone(),
            rounds: req.rounds,
            seed: req.seed,
            out: req.out,
            profile_check: None,
            remeasured: 0,
        },
        progress,
    )?;
    let timed = v.file.anchors();
    let level = crate::freshness::settle_level(
        timed,
        req.profile,
        req.space_path,
        " in llama.cpp",
        "re-profile (`tailor profile --engine llama.cpp --space ... --force`)",
    )?;
    Ok(Some(level))
}

/// What [`prepare_validation`] needs.
#[derive(Debug)]
pub struct LlamaPrepareRequest<'a> {
    pub profile: &'a Path,
    pub space_path: &'a Path,
    pub space: &'a SearchSpace,
    pub bench: &'a LlamaBench,
    pub settings: Settings,
    /// Re-time the profile's drift subset first ([`recheck`]).
    pub recheck: bool,
    /// Then time again the space's probes of the phases that drifted.
    pub remeasure: bool,
    /// Level the predictions to this many anchor models timed whole ([`level_llama`]).
    pub anchors: Option<usize>,
    /// Candidates not to take as anchors (the validated sample).
    pub exclude: std::collections::BTreeSet<u64>,
    pub rounds: u64,
    pub seed: u64,
    /// The validation's folder (the anchors go into `level/` there).
    pub out: &'a Path,
}

/// A llama.cpp cost model made ready for a validation by [`prepare_validation`].
#[derive(Debug)]
pub struct Prepared {
    pub cost: LlamaCost,
    pub profile_check: Option<tailor_llamacpp::LlamaDrift>,
    /// Probe visits re-timed.
    pub remeasured: usize,
}

/// What `tailor validate` does with a llama.cpp profile before it times the sample, as
/// for burn: re-check it here, re-time the drifted probes the space needs when asked,
/// and level its predictions to anchor models timed whole when asked.
pub fn prepare_validation(
    req: &LlamaPrepareRequest,
    cost: LlamaCost,
    progress: &dyn Progress,
) -> Result<Prepared> {
    let (profile_check, remeasured, cost) = if req.recheck {
        let (drift, marked) = recheck(req.profile, req.bench, &req.settings, req.remeasure)?;
        // Entries marked by this check or by an earlier one (which the check then leaves
        // out of its subset) are timed again alike.
        let stale = marked > 0 || LlamaProfile::load(req.profile)?.has_stale();
        if req.remeasure && stale {
            let p = cost.profile();
            let request = space_request(
                req.space,
                req.bench,
                settings_of(p, &req.settings),
                p.method.decode_tokens,
                p.method.rounds,
                req.profile.to_path_buf(),
            )?;
            let o = profile_llama(&request, progress)?;
            let cost = load_cost_for(req.profile, &[req.space.workload])?;
            (Some(drift), o.runs_now, cost)
        } else {
            (Some(drift), 0, cost)
        }
    } else {
        (None, 0, cost)
    };
    let cost = match req.anchors {
        Some(anchors) => {
            let level = level_llama(
                &LlamaLevelRequest {
                    profile: req.profile,
                    space_path: req.space_path,
                    space: req.space,
                    cost: &cost,
                    anchors,
                    exclude: &req.exclude,
                    bench: req.bench,
                    settings: req.settings.clone(),
                    rounds: req.rounds,
                    seed: req.seed,
                    out: &req.out.join("level"),
                },
                progress,
            )?;
            match level {
                Some(l) => cost.with_level(l),
                None => cost,
            }
        }
        None => cost,
    };
    Ok(Prepared {
        cost,
        profile_check,
        remeasured,
    })
}
