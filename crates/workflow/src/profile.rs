//! The burn profiling pipeline: the shapes a space (or a few specs) needs, profiled or
//! resumed into one file under its lock, the runtime's memory probe added; and how `tailor
//! run` finds (or names) the profile of this setup.

use crate::error::{Result, WorkflowError};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tailor_cost::{EditWorkload, Entry, Fingerprint, OpShape, Profile};
use tailor_profiler::device_state::{allowed_cpus, format_cpu_list, parse_cpu_list};
use tailor_profiler::{
    Backend, ProfilePlan, ProfileProgress, TimingOptions, new_profile, run_profile,
};
use tailor_report::profile::BurnProfileReport;
use tailor_search::{SearchSpace, profile_shapes, static_candidates};
use tailor_spec::files::utc_now_iso;
use tailor_spec::load_spec;
use tracing::{debug, info, warn};

/// Sessions per profile entry unless asked otherwise (`tailor profile --rounds`, `tailor
/// run --profile-rounds`, and the re-measure of a drifted profile in `tailor validate`).
pub const PROFILE_ROUNDS: usize = 3;

/// The prompt length and decode context profiled for specs when none is given.
pub const SPEC_PROMPT: u64 = 64;
pub const SPEC_CONTEXT: u64 = 256;

/// What to profile: every shape the candidates of a space run (inside its static
/// constraints, at its prompt and context), or the shapes of a few spec files.
#[derive(Debug, Clone)]
pub enum ProfileSource {
    Space(PathBuf),
    Specs(Vec<PathBuf>),
}

/// One `tailor profile` on this machine, with burn.
#[derive(Debug, Clone)]
pub struct BurnProfileRequest {
    pub source: ProfileSource,
    pub backend: Backend,
    /// The profile file: resumed when it exists and was made on this setup.
    pub out: PathBuf,
    /// Prompt lengths and decode contexts besides the space's (for specs: these, or
    /// [`SPEC_PROMPT`] and [`SPEC_CONTEXT`] when empty).
    pub prompts: Vec<u64>,
    pub contexts: Vec<u64>,
    pub timing: TimingOptions,
    /// Sessions per entry (each capped at max_time / rounds; the entry keeps the median).
    pub rounds: usize,
    /// At most this many sessions in this run.
    pub limit: Option<usize>,
    /// Start afresh even when the file exists.
    pub force: bool,
    /// Idle time before each session (a phone cooling down).
    pub cooldown: Duration,
    /// For specs: also the shapes of this edit (a space brings its own `[workload.edit]`).
    pub edit: Option<EditWorkload>,
    /// No `--cycle-mib` was given: a new profile cycles its weight copies through what the
    /// models' size and the CPU's last-level cache call for ([`Profile::auto_cycle_bytes`]).
    pub cycle_auto: bool,
}

/// What a profiling run did.
#[derive(Debug)]
pub struct BurnProfileOutcome {
    pub out: PathBuf,
    pub profile: Profile,
    pub shapes_needed: usize,
    pub covering: usize,
    pub measured_now: usize,
    pub rounds: usize,
    pub missing: usize,
    pub wall_s: f64,
    pub median_spread: f64,
    pub capped: usize,
}

impl BurnProfileOutcome {
    /// What `tailor profile --json` prints of this run.
    pub fn report(&self) -> BurnProfileReport {
        let entries = &self.profile.entries;
        BurnProfileReport {
            profile: self.out.display().to_string(),
            fingerprint: self.profile.fingerprint.clone(),
            shapes_needed: self.shapes_needed,
            entries_covering: self.covering,
            measured_now: self.measured_now,
            rounds: self.rounds,
            missing: self.missing,
            wall_s: self.wall_s,
            median_spread: self.median_spread,
            capped: self.capped,
            throttled_entries: entries.iter().filter(|e| e.throttled()).count(),
            loaded_entries: entries.iter().filter(|e| e.loaded()).count(),
            roofline: self.profile.roofline,
            memory: self.profile.memory.clone(),
            remote: None,
            device_file: None,
        }
    }
}

/// `base` when given, else `default` alone.
fn or_default(given: &[u64], default: u64) -> Vec<u64> {
    if given.is_empty() {
        vec![default]
    } else {
        given.to_vec()
    }
}

/// The median f32 weight bytes of `specs` (0 for none).
fn median_weights(specs: impl Iterator<Item = tailor_spec::ModelSpec>) -> u64 {
    let mut w: Vec<u64> = specs
        .map(|s| s.weight_bytes(tailor_spec::DType::F32))
        .collect();
    w.sort_unstable();
    w.get(w.len() / 2).copied().unwrap_or(0)
}

/// The source's name, the shapes it needs and its models' median f32 weight bytes.
fn shapes_of(req: &BurnProfileRequest) -> Result<(String, Vec<OpShape>, u64)> {
    Ok(match &req.source {
        ProfileSource::Space(path) => {
            let space = SearchSpace::load(path)?;
            let weights = space.workload.precision.weights;
            if weights != tailor_spec::DType::F32 {
                return Err(WorkflowError::BurnWeights {
                    space: path.clone(),
                    weights,
                });
            }
            let weights = median_weights(static_candidates(&space));
            let mut prompts = space.prompts();
            prompts.extend(&req.prompts);
            let mut contexts = space.contexts();
            contexts.extend(&req.contexts);
            (
                space.name().to_string(),
                profile_shapes(
                    static_candidates(&space),
                    &prompts,
                    &contexts,
                    space.edit.as_ref(),
                ),
                weights,
            )
        }
        ProfileSource::Specs(paths) => {
            let specs = paths
                .iter()
                .map(|p| load_spec(p).map(|l| l.spec))
                .collect::<Result<Vec<_>, _>>()?;
            let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
            let weights = median_weights(specs.iter().cloned());
            (
                names.join(", "),
                profile_shapes(
                    specs.into_iter(),
                    &or_default(&req.prompts, SPEC_PROMPT),
                    &or_default(&req.contexts, SPEC_CONTEXT),
                    req.edit.as_ref(),
                ),
                weights,
            )
        }
    })
}

/// Profiles (or resumes) into `req.out`, saving after every session; the caller prints.
pub fn profile_burn(
    req: &BurnProfileRequest,
    progress: &dyn ProfileProgress,
) -> Result<BurnProfileOutcome> {
    let (name, shapes, model_weights) = shapes_of(req)?;
    if shapes.is_empty() {
        return Err(WorkflowError::NothingToProfile);
    }
    let device = req.backend.open()?;
    let fingerprint = req.backend.fingerprint(&device);
    let out = &req.out;
    // One writer per profile; a second run waits here, then resumes what the first saved.
    let _lock = crate::lock::file(out)?;
    let profile = if out.exists() && !req.force {
        let existing = Profile::load(out)?;
        existing
            .check_fingerprint(&fingerprint)
            .map_err(|mismatch| WorkflowError::OtherSetup {
                path: out.clone(),
                mismatch,
            })?;
        info!(path = %out.display(), entries = existing.entries.len(), "resuming");
        existing
    } else {
        new_profile(
            &format!("{} on {}", fingerprint.cpu_model, req.backend),
            fingerprint,
            &utc_now_iso(),
        )
    };

    let mut plan = ProfilePlan::new(name, shapes);
    plan.timing = req.timing;
    if req.cycle_auto && profile.entries.is_empty() {
        let llc = profile.fingerprint.cpu.last_level_cache_bytes();
        plan.timing.cycle_bytes = Profile::auto_cycle_bytes(model_weights, llc);
        info!(
            cycle_mib = plan.timing.cycle_bytes >> 20,
            model_weights_mib = model_weights >> 20,
            last_level_cache_mib = llc.map(|b| b >> 20),
            "weight copies each entry cycles through"
        );
    }
    plan.probe_timing.warmup = req.timing.warmup;
    plan.probe_timing.max_time = req.timing.max_time;
    plan.limit = req.limit;
    plan.rounds = req.rounds;
    plan.cooldown = req.cooldown;
    let started = Instant::now();
    let sessions = |p: &Profile| -> usize { p.entries.iter().map(Entry::sessions).sum() };
    let before = sessions(&profile);
    // Entries of this source that an earlier drift check marked stale are timed again
    // first, in place (a kill leaves every other entry as it was).
    let stale: Vec<OpShape> = plan
        .shapes
        .iter()
        .filter(|s| profile.entry(s).is_some_and(|e| e.stale))
        .cloned()
        .collect();
    let mut remeasured = 0;
    let profile = if stale.is_empty() {
        profile
    } else {
        let (low, high) = crate::freshness::sessions_time(
            &plan.timing,
            plan.rounds,
            stale.len() * plan.rounds.max(1),
        );
        warn!(
            "re-measuring {} entries of {} marked stale by an earlier drift check (about {})",
            stale.len(),
            out.display(),
            crate::freshness::duration_range((low, high))
        );
        let what = tailor_cost::drift::Remeasure {
            measure: stale,
            mark: Vec::new(),
            roofline: false,
        };
        let (p, n) = tailor_profiler::remeasure_stale(
            &device,
            &profile,
            &what,
            plan.clone(),
            &utc_now_iso,
            progress,
            &mut |p| p.save(out),
        )
        .map_err(|error| WorkflowError::Remeasuring {
            path: out.clone(),
            error,
        })?;
        p.save(out)?;
        remeasured = n;
        p
    };
    let mut profile = run_profile(&device, profile, &plan, &utc_now_iso, progress, &mut |p| {
        p.save(out)
    })
    .map_err(|error| WorkflowError::Profiling {
        path: out.clone(),
        error,
    })?;
    if profile.memory.is_none() {
        add_memory_probe(&mut profile, req.backend, out)?;
    }
    let wall = started.elapsed().as_secs_f64();

    let needed: BTreeSet<&OpShape> = plan.shapes.iter().collect();
    let covered: Vec<&Entry> = profile
        .entries
        .iter()
        .filter(|e| needed.contains(&e.shape) && e.sessions() >= plan.rounds)
        .collect();
    let missing = plan.shapes.len() - covered.len();
    let mut spreads: Vec<f64> = covered.iter().map(|e| e.spread()).collect();
    spreads.sort_by(f64::total_cmp);
    let median_spread = spreads.get(spreads.len() / 2).copied().unwrap_or(f64::NAN);
    let capped = covered.iter().filter(|e| e.capped).count();
    if missing > 0 {
        warn!(
            missing,
            "the profile does not cover the space yet; rerun the same command to continue"
        );
    }
    Ok(BurnProfileOutcome {
        out: out.clone(),
        shapes_needed: plan.shapes.len(),
        covering: covered.len(),
        measured_now: sessions(&profile) - before + remeasured * plan.rounds.max(1),
        rounds: plan.rounds,
        missing,
        wall_s: wall,
        median_spread,
        capped,
        profile,
    })
}

/// Measures the runtime's own memory into `profile` and saves it. A backend or system that
/// cannot report a peak leaves the profile without one (its memory predictions are then
/// the models' own bytes), with a warning.
fn add_memory_probe(profile: &mut Profile, backend: Backend, out: &Path) -> Result<()> {
    let dir = out
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match crate::child::memory_probe(backend, profile.fingerprint.dtype, dir) {
        Ok(probe) => {
            profile.memory = Some(probe);
            profile.provenance.updated = utc_now_iso();
            profile.save(out)?;
        }
        Err(e) => warn!(
            "the runtime's memory overhead was not measured ({e}); memory predictions from \
             this profile count the models' own bytes only"
        ),
    }
    Ok(())
}

/// The profile files in `dir` made on the setup `fingerprint`, with how many of `needed`
/// they cover: most coverage first, ties by path (so the choice does not depend on the
/// folder's order). Files that are not profiles, or of another setup, are skipped.
pub fn matching_profiles(
    dir: &Path,
    fingerprint: &Fingerprint,
    needed: &BTreeSet<OpShape>,
) -> Vec<(PathBuf, usize)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(PathBuf, usize)> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .filter_map(|p| match Profile::load(&p) {
            Ok(profile) if profile.fingerprint.differences(fingerprint).is_empty() => {
                let covered = profile
                    .entries
                    .iter()
                    .filter(|e| needed.contains(&e.shape))
                    .count();
                Some((p, covered))
            }
            Ok(_) => {
                debug!(path = %p.display(), "profile of another setup");
                None
            }
            Err(e) => {
                debug!(path = %p.display(), "not a profile: {e}");
                None
            }
        })
        .collect();
    found.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    found
}

/// A file name in `dir` for a new profile of this setup that does not replace another one:
/// `host-<backend>.toml`, else one naming the machine and its threads.
pub fn new_profile_path(dir: &Path, backend: Backend, fingerprint: &Fingerprint) -> PathBuf {
    let plain = dir.join(format!("host-{backend}.toml"));
    if !plain.exists() {
        return plain;
    }
    let machine = crate::remote::slug(fingerprint.machine());
    let base = format!("host-{backend}-{machine}-{}t", fingerprint.threads);
    (0..)
        .map(|i| match i {
            0 => dir.join(format!("{base}.toml")),
            i => dir.join(format!("{base}-{}.toml", i + 1)),
        })
        .find(|p| !p.exists())
        .unwrap_or(plain)
}

/// Makes this process run on the CPUs `list` (`4-7`) only: re-executes it under `taskset`
/// (children and every burn worker thread inherit the mask), unless it already does.
/// Exits with the pinned run's status.
pub fn pin_process(list: &str) -> Result<()> {
    let want = parse_cpu_list(list).map_err(WorkflowError::BadCpuList)?;
    let have = allowed_cpus();
    if have == want {
        return Ok(());
    }
    if std::env::var_os("TAILOR_PINNED").is_some() {
        return Err(WorkflowError::PinNotTaken {
            list: list.to_string(),
            runs_on: format_cpu_list(&have),
        });
    }
    let me = crate::remote::self_command()?;
    let status = std::process::Command::new("taskset")
        .arg("-c")
        .arg(format_cpu_list(&want))
        .arg(me.get_program())
        .args(me.get_args())
        .args(std::env::args_os().skip(1))
        .env("TAILOR_PINNED", list)
        .status()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                WorkflowError::NoTaskset
            } else {
                WorkflowError::Taskset(e)
            }
        })?;
    std::process::exit(status.code().unwrap_or(1));
}
