//! The llama.cpp engine in the commands: `profile --engine llama.cpp`, and `predict`,
//! `search`, `validate` and `run` on a llama.cpp profile. The work is `tailor-llamacpp`'s;
//! this module turns arguments into its calls and prints.

use crate::fmt::{Table, bytes};
use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, ValueEnum};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tailor_cost::Workload;
use tailor_llamacpp::profile::PhaseKey;
use tailor_llamacpp::run as llrun;
use tailor_llamacpp::validate::{self as llval, Validation};
use tailor_llamacpp::{
    Depths, LlamaBench, LlamaCost, LlamaProfile, Method, ProfileJob, Settings, WeightType,
    is_llama_profile, plan,
};
use tailor_search::SearchSpace;
use tailor_search::output::write_json;
use tailor_spec::files::{utc_now_iso, write_atomic};
use tailor_spec::{DType, ModelSpec, Precision};
use tracing::{info, warn};

/// Which engine a profile measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Engine {
    /// burn, in process (flex, ndarray, wgpu; f32), operator by operator.
    #[default]
    Burn,
    /// llama.cpp through the user's llama-bench (GGUF: f32, f16, q8_0, q4_0), whole models.
    #[value(name = "llama.cpp")]
    LlamaCpp,
}

/// How llama-bench is run (the llama.cpp engine only).
#[derive(Debug, Clone, Args)]
pub struct LlamaArgs {
    /// llama-bench binary [default: $TAILOR_LLAMA_BENCH, else llama-bench on PATH]
    /// (scripts/build-llama-bench.sh builds the pinned one).
    #[arg(long, value_name = "PATH")]
    pub llama_bench: Option<PathBuf>,
    /// Weight type of the GGUF models (f32, f16, q8_0, q4_0) [default: the space's].
    #[arg(long, value_parser = parse_weights)]
    pub weights: Option<DType>,
    /// Threads llama-bench computes with [default: all CPUs].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,
    /// llama-bench repetitions per run (-r); a run's time is the median of the last half
    /// (the first ones are warm-up).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub repetitions: u32,
    /// Flash attention (-fa): on, off or auto.
    #[arg(long, default_value = "auto", value_parser = ["on", "off", "auto"])]
    pub flash_attn: String,
    /// KV cache type (-ctk and -ctv): f16, q8_0, ...
    #[arg(long, default_value = "f16")]
    pub cache_type: String,
    /// Decode steps per llama-bench decode test (-n), centred on the workload's context.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(2..=4096))]
    pub decode_tokens: u64,
}

fn parse_weights(s: &str) -> Result<DType, String> {
    let d = DType::from_name(s).ok_or_else(|| format!("unknown weight type `{s}`"))?;
    WeightType::from_dtype(d).map_err(|e| e.to_string())?;
    Ok(d)
}

impl LlamaArgs {
    pub fn settings(&self) -> Settings {
        Settings {
            threads: self.threads.unwrap_or_else(|| Settings::default().threads),
            flash_attn: self.flash_attn.clone(),
            cache_type: self.cache_type.clone(),
            repetitions: self.repetitions,
        }
    }

    /// The llama-bench to run; on a device whose binaries start through an emulator
    /// (the qemu transport), through that emulator too.
    pub fn bench(&self) -> Result<LlamaBench> {
        let mut bench = LlamaBench::locate(self.llama_bench.as_deref())?;
        bench.prefix.extend(crate::remote::exec_prefix());
        Ok(bench)
    }

    /// The same settings as command-line arguments, for a `tailor profile` on a device
    /// whose llama-bench is `./llama-bench` (its working folder).
    pub fn to_device_args(&self) -> Vec<String> {
        let mut args: Vec<String> = vec!["--llama-bench".into(), "./llama-bench".into()];
        if let Some(w) = self.weights {
            args.extend(["--weights".into(), w.to_string()]);
        }
        if let Some(t) = self.threads {
            args.extend(["--threads".into(), t.to_string()]);
        }
        args.extend([
            "--repetitions".into(),
            self.repetitions.to_string(),
            "--flash-attn".into(),
            self.flash_attn.clone(),
            "--cache-type".into(),
            self.cache_type.clone(),
            "--decode-tokens".into(),
            self.decode_tokens.to_string(),
        ]);
        args
    }
}

/// The probe depths of `--probe-layers` (`None`: auto) and `--probe-mib`.
pub fn depths(fixed: Option<(u64, u64)>, weights: DType, mib: u64) -> Result<Depths> {
    Ok(match fixed {
        Some((lo, hi)) => Depths::Fixed(lo, hi),
        None => Depths::Space {
            weights: WeightType::from_dtype(weights)?,
            max_probe_bytes: mib << 20,
        },
    })
}

/// Whether the file at `path` is a llama.cpp profile.
pub fn is_llama(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|s| is_llama_profile(&s))
}

/// The llama.cpp cost model of a profile, checked against the workload it will price.
pub fn load_cost(path: &Path, workload: Option<&Workload>) -> Result<LlamaCost> {
    let profile = LlamaProfile::load(path)?;
    tracing::info!(
        "using the llama.cpp profile {} ({}; probes last measured {})",
        path.display(),
        profile.name,
        profile.provenance.updated
    );
    let cost = LlamaCost::new(profile);
    if let Some(w) = workload {
        cost.check_workload(w)
            .map_err(|e| anyhow!("{}: {e}", path.display()))?;
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

/// What `tailor profile --engine llama.cpp` is asked.
#[derive(Debug)]
pub struct ProfileRequest<'a> {
    pub name: String,
    pub specs: Vec<ModelSpec>,
    pub prompts: Vec<u64>,
    pub contexts: Vec<u64>,
    pub weights: DType,
    pub llama: &'a LlamaArgs,
    pub rounds: u32,
    pub depths: Depths,
    pub out: PathBuf,
    pub force: bool,
    pub limit: Option<usize>,
}

/// The outcome of a llama.cpp profiling run.
#[derive(Debug)]
pub struct ProfileOutcome {
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

/// Profiles (or resumes) the probes the specs need, into `req.out`.
pub fn profile(req: &ProfileRequest) -> Result<ProfileOutcome> {
    let started = Instant::now();
    let weights = WeightType::from_dtype(req.weights)?;
    let bench = req.llama.bench()?;
    let probes = plan(req.specs.iter(), req.depths);
    if probes.is_empty() {
        bail!("no candidate to profile");
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
        decode_tokens: req.llama.decode_tokens,
        repetitions: req.llama.repetitions,
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
        settings: req.llama.settings(),
        method,
        work_dir: work_dir.clone(),
        seed: 0,
        limit: req.limit,
    };
    // One writer per profile (and its probe folder); a second run waits here, then
    // resumes what the first saved.
    let _lock = crate::lock::file(&req.out)?;
    std::fs::create_dir_all(&work_dir)?;
    let fingerprint = llrun::probe_fingerprint(&bench, &job, &llrun::host_os())
        .context("running llama-bench on a first probe")?;
    let profile = if req.out.exists() && !req.force {
        let existing = LlamaProfile::load(&req.out)?;
        existing.check_fingerprint(&fingerprint).map_err(|e| {
            anyhow!(
                "{}: {e}. Profile into another file with --out, or start this one afresh with --force",
                req.out.display()
            )
        })?;
        if existing.method.decode_tokens != method.decode_tokens
            || existing.method.repetitions != method.repetitions
        {
            bail!(
                "{}: was profiled with {} decode tokens and {} repetitions; resume with the same \
                 --decode-tokens and --repetitions, or start afresh with --force",
                req.out.display(),
                existing.method.decode_tokens,
                existing.method.repetitions
            );
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
    let bar = crate::progress::ProfileBar::new("profile");
    let out = req.out.clone();
    let result = llrun::run_profile(&bench, profile, &job, &utc_now_iso, &bar, &mut |p| {
        p.save(&out)
    });
    drop(bar);
    let _ = std::fs::remove_dir_all(&work_dir);
    let profile = result.with_context(|| format!("profiling into {}", req.out.display()))?;
    // A resumed file may hold probes of other spaces: save it even if nothing ran.
    profile.save(&req.out)?;
    let missing = llrun::pending(&profile, &job).len();
    Ok(ProfileOutcome {
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

/// Prints a profiling outcome.
pub fn print_profile(o: &ProfileOutcome, json_out: bool) -> Result<()> {
    let f = &o.profile.fingerprint;
    let loaded = o
        .profile
        .probes
        .iter()
        .filter(|e| e.loaded_rounds > 0)
        .count();
    if loaded > 0 {
        warn!(
            loaded,
            "probe entries with a round timed while other processes took a share of the \
             CPUs (`loaded_rounds` in the profile): re-measure on a quiet machine \
             (`--force`)"
        );
    }
    if json_out {
        let v = tailor_report::profile::LlamaProfileReport {
            profile: o.out.display().to_string(),
            engine: "llama.cpp".into(),
            fingerprint: f.clone(),
            probes: o.probes,
            probe_visits_now: o.runs_now,
            llama_bench_runs_now: o.runs_now * o.phases,
            missing: o.missing,
            wall_s: o.wall_s,
            remote: o.remote.clone(),
            loaded_entries: loaded,
        };
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let mut t = Table::new(&["", ""]);
    for (k, v) in [
        ("profile", o.out.display().to_string()),
        (
            "engine",
            format!("llama.cpp {} ({})", f.build_commit, f.backends),
        ),
        ("cpu", f.cpu_info.clone()),
        ("threads", f.threads.to_string()),
        ("weights", f.weights.to_string()),
        ("kv cache", format!("{}/{}", f.type_k, f.type_v)),
        ("flash attention", f.flash_attn.clone()),
        ("probe models", o.probes.to_string()),
        (
            "probe visits now",
            format!(
                "{} ({} llama-bench runs)",
                o.runs_now,
                o.runs_now * o.phases
            ),
        ),
        ("still to run", o.missing.to_string()),
        ("wall time", format!("{:.0} s", o.wall_s)),
    ] {
        t.row(vec![k.into(), v]);
    }
    if let Some(r) = &o.remote {
        t.row(vec!["device".into(), r.clone()]);
    }
    print!("{}", t.render(2));
    if o.missing > 0 {
        println!(
            "rerun the same command to continue ({} visits left)",
            o.missing
        );
    }
    Ok(())
}

/// `tailor predict` on a llama.cpp profile.
pub fn predict(
    spec_path: &Path,
    profile: &Path,
    prompt: u64,
    context: u64,
    json_out: bool,
) -> Result<()> {
    let loaded = tailor_spec::load_spec(spec_path)?;
    let cost = load_cost(profile, None)?;
    let w = Workload {
        prompt_tokens: prompt,
        context,
        precision: Precision::for_weights(cost.profile().fingerprint.weights),
    };
    cost.check_workload(&w)
        .map_err(|e| anyhow!("{}: {e}", profile.display()))?;
    let p = cost.predict(&loaded.spec, &w);
    let e = &p.estimate;
    let subs = WeightType::from_dtype(w.precision.weights)
        .ok()
        .and_then(|wt| tailor_llamacpp::model::substitutions(&loaded.spec, wt).ok())
        .unwrap_or_default();
    if json_out {
        let v = json!({
            "spec": spec_path.display().to_string(),
            "name": loaded.name,
            "profile": profile.display().to_string(),
            "engine": "llama.cpp",
            "fingerprint": cost.profile().fingerprint,
            "workload": w,
            "params": loaded.spec.params().total,
            "prefill_ms": e.prefill_ms,
            "prefill_tokens_per_s": e.prefill_tokens_per_s(prompt),
            "decode_ms_per_token": e.decode_ms_per_token,
            "decode_tokens_per_s": e.decode_tokens_per_s(),
            "peak_memory_bytes": e.peak_memory_bytes,
            "prefill_breakdown": e.prefill_breakdown.shares(),
            "decode_breakdown": e.decode_breakdown.shares(),
            "derived": p.derived,
            "substitutions": subs,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let mut t = Table::new(&["", ""]);
    t.row(vec![
        "engine".into(),
        format!(
            "llama.cpp {} ({})",
            cost.profile().fingerprint.build_commit,
            w.precision.weights
        ),
    ]);
    t.row(vec![
        "parameters".into(),
        loaded.spec.params().total.to_string(),
    ]);
    t.row(vec![
        format!("prefill {prompt} tokens"),
        format!(
            "{:.2} ms ({:.0} tok/s)",
            e.prefill_ms,
            e.prefill_tokens_per_s(prompt)
        ),
    ]);
    t.row(vec![
        format!("decode at {context}"),
        format!(
            "{:.3} ms/token ({:.1} tok/s)",
            e.decode_ms_per_token,
            e.decode_tokens_per_s()
        ),
    ]);
    t.row(vec![
        "peak memory".into(),
        bytes(e.peak_memory_bytes as f64),
    ]);
    print!("{}", t.render(2));
    for d in &p.derived {
        println!("not measured: {d}");
    }
    for s in &subs {
        println!("timed as: {s}");
    }
    Ok(())
}

/// What a llama.cpp validation is asked.
#[derive(Debug)]
pub struct ValidateRequest<'a> {
    pub profile: &'a Path,
    pub space_path: &'a Path,
    pub space: &'a SearchSpace,
    pub cost: &'a LlamaCost,
    pub models: Vec<(u64, ModelSpec)>,
    pub llama: &'a LlamaArgs,
    pub rounds: u64,
    pub seed: u64,
    pub out: &'a Path,
}

/// Times `models` whole with llama-bench, compares with the profile's predictions and
/// writes validate.json and validate.csv into `out`.
pub fn validate(req: &ValidateRequest) -> Result<Validation> {
    let started = Instant::now();
    let bench = req.llama.bench()?;
    let f = &req.cost.profile().fingerprint;
    let mut settings = req.llama.settings();
    // Time the models as the profile was timed.
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
    let bar = crate::progress::ProfileBar::new("validate");
    let timings = tailor_llamacpp::measure_models(
        &bench,
        &specs,
        weights,
        tailor_llamacpp::cost::phases_of(&w),
        &settings,
        &req.cost.profile().method,
        req.rounds,
        &req.out.join("models"),
        req.seed,
        &bar,
    )?;
    drop(bar);
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
