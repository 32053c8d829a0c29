//! Is a profile this machine, now? The checks every command runs before it trusts a
//! profile to describe the machine it runs on: the setup's fingerprint (backend, CPU
//! identity, threads: another CPU is refused), then a drift check that re-times a fixed
//! subset of the profile's entries (seconds), and, where that found the machine moved,
//! re-measuring the stale entries in the profile file; and the level of its predictions,
//! set by a few whole models timed here now ([`level`]).

use crate::check::{CheckProgress, CheckSetup, check};
use crate::error::{Result, WorkflowError};
use std::collections::BTreeSet;
use std::path::Path;
use tailor_cost::drift::Remeasure;
use tailor_cost::{Anchor, Drift, Level, OpShape, Profile, Profiled, drift};
use tailor_profiler::{Backend, ProfilePlan, ProfileProgress, TimingOptions};
use tailor_search::{SearchSpace, anchor_sample, profile_shapes, static_candidates};
use tailor_spec::files::utc_now_iso;
use tracing::{info, warn};

/// The backend of a profile, after checking that the profile was made on this machine.
pub fn machine_backend(model: &Profiled, profile: &Path, space: &Path) -> Result<Backend> {
    let fp = &model.profile().fingerprint;
    let backend: Backend = fp
        .backend
        .parse()
        .map_err(|error| WorkflowError::ProfileBackend {
            path: profile.to_path_buf(),
            error,
        })?;
    let device = backend.open()?;
    model
        .profile()
        .check_fingerprint(&backend.fingerprint(&device))
        .map_err(|mismatch| WorkflowError::NotThisMachine {
            path: profile.to_path_buf(),
            mismatch,
            space: space.to_path_buf(),
            backend,
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
    timing: &TimingOptions,
) -> Result<Drift> {
    let mut opts = *timing;
    opts.max_time = opts.max_time.min(std::time::Duration::from_millis(300));
    let device = backend.open()?;
    let p = model.profile();
    let d = tailor_profiler::check_drift(&path.display().to_string(), p, &device, &opts)?;
    crate::remembered::remember(path, p, &d);
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
             --remeasure` does so before validating; `--relevel` (and `tailor run --anchors \
             N`) level its predictions to whole models timed now",
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
    timing: &TimingOptions,
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

/// The shapes every candidate of `space` runs (inside its static constraints, at its
/// prompt length and context, with its edit): what a run or a validation of the space
/// needs of a profile.
pub fn space_shapes(space: &SearchSpace) -> BTreeSet<OpShape> {
    profile_shapes(
        static_candidates(space),
        &space.prompts(),
        &space.contexts(),
        space.edit.as_ref(),
    )
    .into_iter()
    .collect()
}

/// What a session costs besides its warm-up and timed work (building its inputs and weight
/// copies, syncs, saving the file). Building a 96 MiB weight cycle took 0.19 s when every
/// copy was drawn at random and takes 0.08 s now that one is drawn and the rest copied (the
/// 2-core AMD EPYC CI machine, 2026-12-05); most entries cycle less. A fresh quickstart
/// profile took 0.91 s a session before that change and 0.74 s after it, against at most
/// 0.82 s of warm-up and timed work.
const SESSION_SETUP_S: f64 = 0.05;

/// How long `sessions` timing sessions take with `timing` split over `rounds` sessions per
/// entry: each warms up, then times at least `min_time` and at most its share of
/// `max_time`, besides its setup. Returns (fewest, most) seconds.
pub fn sessions_time(timing: &TimingOptions, rounds: usize, sessions: usize) -> (f64, f64) {
    let rounds = rounds.max(1) as f64;
    let warm = timing.warmup.as_secs_f64() + SESSION_SETUP_S;
    let low = warm + timing.min_time.as_secs_f64();
    let high = warm + (timing.max_time.as_secs_f64() / rounds).max(timing.min_time.as_secs_f64());
    (sessions as f64 * low, sessions as f64 * high)
}

/// `12-40 s`, `1.5-4.2 min`.
pub fn duration_range((low, high): (f64, f64)) -> String {
    if high < 120.0 {
        format!("{low:.0}-{high:.0} s")
    } else {
        format!("{:.1}-{:.1} min", low / 60.0, high / 60.0)
    }
}

/// Re-measures, in the profile file at `path` (under its lock), the stale entries of
/// `what.measure` (and the roofline probes when `what.roofline`), with `timing` and
/// `rounds` sessions per entry, and marks the entries of `what.mark` stale in the file;
/// every other entry stays as it was. A kill leaves a complete profile (each entry is
/// replaced as it is re-measured). Returns the fresh profile and how many entries were
/// re-measured.
pub fn remeasure(
    path: &Path,
    what: &Remeasure,
    backend: Backend,
    timing: &TimingOptions,
    rounds: usize,
    progress: &dyn ProfileProgress,
) -> Result<(Profiled, usize)> {
    let _lock = crate::lock::file(path)?;
    // Read again under the lock: another tailor may have written it since.
    let mut profile = Profile::load(path)?;
    if drift::mark_stale(&mut profile, &what.mark) {
        profile.save(path)?;
        info!(
            entries = what.mark.len(),
            "marked stale in {} (entries this run does not need; the next run that needs them \
             re-measures them)",
            path.display()
        );
    }
    let what = Remeasure {
        // Only what is still in the file (another tailor may have re-measured some since).
        measure: what
            .measure
            .iter()
            .filter(|s| profile.entry(s).is_some())
            .cloned()
            .collect(),
        ..what.clone()
    };
    if what.is_empty() {
        return Ok((profiled(path, profile)?, 0));
    }
    let device = backend.open()?;
    let mut plan = ProfilePlan::new(profile.name.clone(), Vec::new());
    plan.timing = *timing;
    plan.probe_timing.warmup = plan.timing.warmup;
    plan.probe_timing.max_time = plan.timing.max_time;
    plan.rounds = rounds;
    let (fresh, n) = tailor_profiler::remeasure_stale(
        &device,
        &profile,
        &what,
        plan,
        &utc_now_iso,
        progress,
        &mut |p| p.save(path),
    )
    .map_err(|error| WorkflowError::Remeasuring {
        path: path.to_path_buf(),
        error,
    })?;
    fresh.save(path)?;
    info!(
        entries = n,
        updated = %fresh.provenance.updated,
        "re-measured the stale entries of {}",
        path.display()
    );
    Ok((profiled(path, fresh)?, n))
}

fn profiled(path: &Path, profile: Profile) -> Result<Profiled> {
    Profiled::new(profile).map_err(|error| WorkflowError::Profiled {
        path: path.to_path_buf(),
        error,
    })
}

/// A profile of this machine after [`refresh`].
#[derive(Debug)]
pub struct Refreshed {
    /// The profile as it is now in its file (re-measured where it drifted).
    pub model: Profiled,
    /// The drift check's findings (before any re-measure).
    pub drift: Drift,
    /// Entries re-measured.
    pub remeasured: usize,
    /// Stale entries the run did not need: marked stale in the file instead (now or by an
    /// earlier run).
    pub marked: usize,
}

/// Says, before it starts, what re-measuring `what` costs and why that is the work to do.
pub fn announce(
    path: &Path,
    what: &Remeasure,
    needed: usize,
    timing: &TimingOptions,
    rounds: usize,
) {
    let marks = if what.mark.is_empty() {
        String::new()
    } else {
        format!(
            "; {} stale entries of the file that this space does not need are marked stale \
             instead (re-measured when a space needs them)",
            what.mark.len()
        )
    };
    if what.measure.is_empty() {
        if what.roofline {
            warn!(
                "re-measuring the roofline probes of {} (peak matmul and read bandwidth \
                 moved; a few seconds){marks}",
                path.display()
            );
        } else if !marks.is_empty() {
            info!(
                "{}: no entry this space needs is stale{marks}",
                path.display()
            );
        }
        return;
    }
    let sessions = what.measure.len() * rounds.max(1);
    let range = duration_range(sessions_time(timing, rounds, sessions));
    let fresh = duration_range(sessions_time(timing, rounds, needed * rounds.max(1)));
    warn!(
        "re-measuring {} of the {needed} entries this space needs in {} ({sessions} sessions, \
         about {range}{}): their classes drifted, they were timed under load, or an earlier \
         check marked them stale{marks}. A fresh profile of the space would time all {needed} \
         (about {fresh})",
        what.measure.len(),
        path.display(),
        if what.roofline {
            ", and the roofline probes"
        } else {
            ""
        },
    );
}

/// What `tailor run` does with a profile it reuses as it was: [`recheck`] it here and,
/// where a class of operators drifted (or entries were timed under load, or were marked
/// stale before), [`remeasure`] the entries of those classes that the run `needed`, and
/// mark the others stale in the file, so a space pays for its own entries only, however
/// many other spaces' entries the file holds. Scaling each class by the subset's ratio was
/// measured to leave decode 9% off, because load and clocks do not move every shape of a
/// class alike (docs/method.md), so the entries are measured again.
pub fn refresh(
    path: &Path,
    model: Profiled,
    needed: &BTreeSet<OpShape>,
    backend: Backend,
    timing: &TimingOptions,
    rounds: usize,
    progress: &dyn ProfileProgress,
) -> Result<Refreshed> {
    let drift = recheck(path, &model, backend, timing)?;
    let what = drift.plan(model.profile(), needed, DRIFT_TOLERANCE);
    if what.is_empty()
        && what
            .mark
            .iter()
            .all(|s| model.profile().entry(s).is_some_and(|e| e.stale))
    {
        return Ok(Refreshed {
            model,
            drift,
            remeasured: 0,
            marked: what.mark.len(),
        });
    }
    announce(path, &what, needed.len(), timing, rounds);
    let marked = what.mark.len();
    let (model, remeasured) = remeasure(path, &what, backend, timing, rounds, progress)?;
    Ok(Refreshed {
        model,
        drift,
        remeasured,
        marked,
    })
}

/// How far apart two anchors' measured/predicted ratios may be before [`level`] warns
/// that one level does not describe the profile's error: (max - min) / level. On quickstart
/// a fresh profile's models scatter within +-10% of their level (16 of 16 on 2026-12-03),
/// so two anchors can honestly sit up to about 20% apart.
pub const ANCHOR_DISAGREEMENT: f64 = 0.20;

/// The level of `anchors` timed whole (for both engines' `level`): logged, and a warning
/// where the anchors disagree more than models scatter around one level (`engine` names
/// the engine in the messages, `fix` what to do then). An error when no anchor is usable.
pub fn settle_level(
    anchors: Vec<Anchor>,
    profile: &Path,
    space: &Path,
    engine: &str,
    fix: &str,
) -> Result<Level> {
    let level = Level::new(anchors, utc_now_iso()).ok_or_else(|| {
        WorkflowError::NothingMeasured(format!(
            "no anchor model of {} gave a usable time{engine}",
            space.display()
        ))
    })?;
    info!(
        "predictions of {} levelled to whole models timed here now: {}",
        profile.display(),
        level.summary()
    );
    let (prefill, decode) = level.disagreement();
    if prefill.max(decode) > ANCHOR_DISAGREEMENT {
        warn!(
            "the anchors' own ratios differ by {:.0}% (prefill) and {:.0}% (decode), more than \
             models scatter around one level ({:.0}%): the profile's error depends on the \
             model, which a level cannot fix; {fix}",
            100.0 * prefill,
            100.0 * decode,
            100.0 * ANCHOR_DISAGREEMENT
        );
    }
    Ok(level)
}

/// What [`level`] needs.
#[derive(Debug)]
pub struct LevelRequest<'a> {
    pub profile: &'a Path,
    /// The cost model to level (its predictions before levelling are the anchors').
    pub model: &'a Profiled,
    pub backend: Backend,
    pub space: &'a SearchSpace,
    /// Whole models to time ([`anchor_sample`]); 2 by default.
    pub anchors: usize,
    /// Candidates not to take as anchors (the models a validation checks).
    pub exclude: &'a BTreeSet<u64>,
    pub rounds: u64,
    pub timing: TimingOptions,
    pub seed: u64,
    /// Where the anchors' measurements go (a check folder: `validate.json`, `measured/`);
    /// a rerun into it reuses them.
    pub out: &'a Path,
}

/// Whole models' level on this machine now: `req.anchors` models of the space at fixed
/// quantiles of predicted decode time (none of `req.exclude`), built and timed as
/// [`check`] times any model (their memory in a child, then interleaved rounds), against
/// `req.model`'s prediction. The ratio per phase is what [`Profiled::with_level`] scales
/// the predictions by. `None` when the space has no candidate left to anchor on.
pub fn level(req: &LevelRequest, progress: &dyn CheckProgress) -> Result<Option<Level>> {
    let anchors = anchor_sample(req.space, req.model, req.anchors, req.exclude);
    if anchors.is_empty() {
        warn!(
            "no candidate of {} is left to time as an anchor: predictions stay at the profile's \
             level",
            req.space.path.display()
        );
        return Ok(None);
    }
    info!(
        anchors = ?anchors.iter().map(|c| c.id).collect::<Vec<_>>(),
        "timing whole models to set the level of {}'s predictions on this machine now",
        req.profile.display()
    );
    let setup = CheckSetup {
        profile: req.profile,
        model: req.model,
        profile_check: None,
        remeasured: 0,
        backend: req.backend,
        space: req.space,
        rounds: req.rounds,
        timing: req.timing,
        seed: req.seed,
    };
    let models = anchors.into_iter().map(|c| (c.id, c.spec)).collect();
    let v = check(&setup, models, req.out, progress)?;
    let timed = v.file.anchors();
    let level = settle_level(
        timed,
        req.profile,
        &req.space.path,
        "",
        "re-measure the profile (`tailor profile --space ... --force`)",
    )?;
    Ok(Some(level))
}
