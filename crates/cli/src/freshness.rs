//! Is a profile this machine, now? The checks every command runs before it trusts a
//! profile to describe the machine it runs on: the setup's fingerprint (backend, CPU
//! identity, threads: another CPU is refused), then a drift check that re-times a fixed
//! subset of the profile's entries (seconds), and, where that found the machine moved,
//! re-measuring the stale entries in the profile file.

use anyhow::{Context, Result, anyhow};
use std::path::Path;
use tailor_cost::{Drift, Profile, Profiled, drift};
use tailor_profiler::{Backend, ProfilePlan};
use tailor_spec::files::utc_now_iso;
use tracing::{info, warn};

use crate::args::TimingArgs;

/// The backend of a profile, after checking that the profile was made on this machine.
pub fn machine_backend(model: &Profiled, profile: &Path, space: &Path) -> Result<Backend> {
    let fp = &model.profile().fingerprint;
    let backend: Backend = fp
        .backend
        .parse()
        .map_err(|e| anyhow!("{}: {e}", profile.display()))?;
    let device = backend.open()?;
    model
        .profile()
        .check_fingerprint(&backend.fingerprint(&device))
        .map_err(|e| {
            anyhow!(
                "{}: {e}. Whole models are timed on this machine, so it needs this \
                 machine's profile: run `tailor profile --space {} --backend {backend}` first",
                profile.display(),
                space.display()
            )
        })?;
    Ok(backend)
}

/// Drift tolerance: a class of operators re-timed more than this far from its profile
/// entries means the profile no longer describes the machine.
pub const DRIFT_TOLERANCE: f64 = drift::TOLERANCE;

/// Re-times the profile's fixed subset of entries and its roofline probes here (seconds,
/// each entry capped at 300 ms) and says how far the machine is from it, per class.
pub fn recheck(
    path: &Path,
    model: &Profiled,
    backend: Backend,
    timing: &TimingArgs,
) -> Result<Drift> {
    let mut opts = timing.options()?;
    opts.max_time = opts.max_time.min(std::time::Duration::from_millis(300));
    let device = backend.open()?;
    let p = model.profile();
    let d = tailor_profiler::check_drift(&path.display().to_string(), p, &device, &opts)?;
    info!(
        "profile {} (entries last measured {}) re-checked on this machine in {:.1} s, time now \
         / profiled: {}",
        path.display(),
        p.provenance.updated,
        d.wall_s,
        d.summary()
    );
    let loaded = p.entries.iter().filter(|e| e.loaded()).count();
    if loaded > 0 {
        warn!(
            "{loaded} of the profile's {} entries were timed while other processes took a share \
             of the CPUs (`loaded` in the file): `tailor run` and `tailor validate \
             --remeasure` re-measure them",
            p.entries.len()
        );
    }
    let off = d.drifted(DRIFT_TOLERANCE);
    if !off.is_empty() {
        warn!(
            "{} of {} operator classes are more than {:.0}% away from the profile: it no longer \
             describes this machine as it is now (load, power or thermal state, another host). \
             `tailor run` re-measures its entries of those classes; `tailor validate \
             --remeasure` does so before validating, `--relevel` validates it re-levelled",
            off.len(),
            d.classes.len(),
            100.0 * DRIFT_TOLERANCE
        );
    }
    Ok(d)
}

/// [`recheck`] when `model`'s profile was made on this machine (the same fingerprint for
/// its backend); `None` on another one (a phone's profile searched on a laptop), which is
/// told apart without opening a device where the OS or the CPU's name differs.
pub fn recheck_if_here(
    path: &Path,
    model: &Profiled,
    timing: &TimingArgs,
) -> Result<Option<Drift>> {
    let fp = &model.profile().fingerprint;
    if fp.os != tailor_llamacpp::run::host_os()
        || fp.cpu_model != tailor_profiler::backend::cpu_model()
    {
        return Ok(None);
    }
    let Ok(backend) = fp.backend.parse::<Backend>() else {
        return Ok(None);
    };
    let Ok(device) = backend.open() else {
        return Ok(None);
    };
    if !fp.differences(&backend.fingerprint(&device)).is_empty() {
        return Ok(None);
    }
    drop(device);
    recheck(path, model, backend, timing).map(Some)
}

/// Re-measures, in the profile file at `path` (under its lock), every entry of the classes
/// `drift` found more than [`DRIFT_TOLERANCE`] away, and the roofline probes when they
/// moved, with `timing` and `rounds` sessions per entry; the other entries stay as they
/// were. A kill leaves a complete profile (each entry is replaced as it is re-measured).
/// Returns the fresh profile and how many entries were re-measured.
pub fn remeasure(
    path: &Path,
    drift: &Drift,
    backend: Backend,
    timing: &TimingArgs,
    rounds: usize,
) -> Result<(Profiled, usize)> {
    let _lock = crate::lock::file(path)?;
    // Read again under the lock: another tailor may have written it since.
    let profile = Profile::load(path)?;
    let device = backend.open()?;
    let mut plan = ProfilePlan::new(profile.name.clone(), Vec::new());
    plan.timing = timing.options()?;
    plan.probe_timing.warmup = plan.timing.warmup;
    plan.probe_timing.max_time = plan.timing.max_time;
    plan.rounds = rounds;
    let stale = drift.stale_shapes(&profile, DRIFT_TOLERANCE).len();
    info!(
        entries = stale,
        of = profile.entries.len(),
        roofline = drift.roofline_drifted(DRIFT_TOLERANCE),
        "re-measuring the profile's entries of the drifted classes and those timed under \
         load in {}",
        path.display()
    );
    let bar = crate::progress::ProfileBar::new("re-measure");
    let (fresh, n) = tailor_profiler::remeasure_stale(
        &device,
        &profile,
        drift,
        plan,
        &utc_now_iso,
        &bar,
        &mut |p| p.save(path),
    )
    .with_context(|| format!("re-measuring {}", path.display()))?;
    bar.finish();
    fresh
        .save(path)
        .with_context(|| format!("saving {}", path.display()))?;
    info!(
        entries = n,
        updated = %fresh.provenance.updated,
        "re-measured the stale entries of {}",
        path.display()
    );
    let model = Profiled::new(fresh).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok((model, n))
}
