//! The llama.cpp pipelines: profiling the probe models a space needs with the user's
//! llama-bench (resumable, under the profile's lock), and timing whole models with it
//! against a llama.cpp profile's predictions. The measuring and pricing are
//! `tailor-llamacpp`'s; this module runs them over files.

use crate::error::{Result, WorkflowError};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tailor_cost::Workload;
use tailor_llamacpp::profile::PhaseKey;
use tailor_llamacpp::run::{self as llrun, Progress};
use tailor_llamacpp::validate::{self as llval, Validation};
use tailor_llamacpp::{
    Depths, LlamaBench, LlamaCost, LlamaProfile, Method, ProfileJob, Settings, WeightType, plan,
};
use tailor_report::profile::LlamaProfileReport;
use tailor_search::SearchSpace;
use tailor_search::output::write_json;
use tailor_spec::files::{utc_now_iso, write_atomic};
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

/// Whether the file at `path` is a llama.cpp profile (and not a burn one).
pub fn is_llama(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|s| tailor_llamacpp::is_llama_profile(&s))
}

/// The llama.cpp cost model of the profile at `path`, checked against the workload it
/// will price.
pub fn load_cost(path: &Path, workload: Option<&Workload>) -> Result<LlamaCost> {
    let profile = LlamaProfile::load(path)?;
    info!(
        "using the llama.cpp profile {} ({}; probes last measured {})",
        path.display(),
        profile.name,
        profile.provenance.updated
    );
    let cost = LlamaCost::new(profile);
    if let Some(w) = workload {
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
    let mut phases: Vec<PhaseKey> = req
        .prompts
        .iter()
        .map(|&tokens| PhaseKey::Prefill { tokens })
        .chain(
            req.contexts
                .iter()
                .map(|&context| PhaseKey::Decode { context }),
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
    let work_dir = req
        .out
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join(format!(
            ".{}.probes",
            req.out
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ));
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
}

/// Times `models` whole with llama-bench, compares with the profile's predictions and
/// writes validate.json and validate.csv into `out`.
pub fn validate_llama(req: &LlamaValidateRequest, progress: &dyn Progress) -> Result<Validation> {
    let started = Instant::now();
    let f = &req.cost.profile().fingerprint;
    let mut settings = req.settings.clone();
    settings.flash_attn = f.flash_attn.clone();
    settings.cache_type = f.type_k.clone();
    settings.threads = f.threads;
    settings.repetitions = req.cost.profile().method.repetitions;
    let w = req.space.workload;
    let weights = WeightType::from_dtype(w.precision.weights)?;
    let mut rows = llval::predict_rows(req.cost, &req.models, &w);
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
            Ok(t) => row.measured = Some(t),
            Err(e) => row.error = Some(e.to_string()),
        }
    }
    let (prefill, decode, memory) = llval::score(&rows);
    let v = Validation {
        format_version: 1,
        engine: "llama.cpp".into(),
        profile: req.profile.display().to_string(),
        space: req.space_path.display().to_string(),
        workload: w,
        rounds: req.rounds,
        prefill,
        decode,
        memory,
        engine_self: llval::self_agreement(&rows),
        round_ratios: llval::round_ratios(&rows),
        wall_s: started.elapsed().as_secs_f64(),
        rows,
    };
    write_json(&req.out.join("validate.json"), &v)?;
    write_atomic(
        &req.out.join("validate.csv"),
        tailor_report::validation::csv_text(
            &v.rows
                .iter()
                .map(tailor_report::validation::CsvRow::of_llama)
                .collect::<Vec<_>>(),
        )
        .as_bytes(),
    )?;
    let (pre, dec) = v.round_ratios.range();
    if pre > 1.1 || dec > 1.1 {
        warn!(
            prefill = ?v.round_ratios.prefill,
            decode = ?v.round_ratios.decode,
            "the rounds ran more than 10% apart: the machine's speed changed during the run; \
             its agreement with the profile and with itself is limited by that"
        );
    }
    for r in &v.rows {
        if let Some(e) = &r.error {
            warn!(id = r.id, "not measured: {e}");
        }
    }
    Ok(v)
}
