//! Times the operator shapes a search space needs on one burn backend (flex, ndarray,
//! wgpu) and writes them as a [`tailor_cost::Profile`].
//!
//! - [`timing`]: the measurement method (warm-up by time, sync, cycled inputs, repeats
//!   until stable, median/p10/p90).
//! - [`ops`]: the decoder operators on burn tensors.
//! - [`bench`]: one benchmark per [`OpShape`], and the roofline probes.
//! - [`run_profile`]: measures what a profile lacks, checkpointing after every entry.
//! - [`model`]: a whole random-weight decoder from a spec, and [`measure_model`], which
//!   times it and measures its peak memory: the ground truth of a prediction.

pub mod backend;
pub mod bench;
pub mod device_state;
pub mod memory;
pub mod mixers;
pub mod model;
pub mod ops;
pub mod timing;

pub use backend::{BURN_VERSION, Backend, UnknownBackend};
pub use timing::{Measurement, TimingOptions};

use burn::tensor::{Device, Tensor};
use tailor_cost::{
    Conditions, Entry, Fingerprint, MemorySource, OpShape, PROFILE_FORMAT_VERSION, Profile,
    Provenance, RooflineProbe,
};
use tailor_spec::files::FileError;
use timing::measure;

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error(
        "this tailor was built without the GPU backend (the default build and the static \
         arm64 build have the CPU backends only, to build in half the time): use --backend \
         flex, or build with it: `cargo run --release -p tailor --features wgpu -- ...`"
    )]
    WgpuNotBuilt,
    #[error(
        "wgpu found no usable GPU adapter ({reason}). Install a Vulkan driver (on Debian: \
         apt-get install mesa-vulkan-drivers libvulkan1 for the software one) or use \
         --backend flex"
    )]
    NoAdapter { reason: String },
    #[error(transparent)]
    Mismatch(#[from] tailor_cost::SetupMismatch),
    #[error(transparent)]
    InvalidSpec(#[from] tailor_spec::Invalid),
    #[error(transparent)]
    Device(#[from] DeviceFailed),
    #[error(transparent)]
    File(#[from] FileError),
}

/// The device reported an error (burn's sync failed) while running something.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the device failed while {during}: {message}")]
pub struct DeviceFailed {
    /// `timing ffn(...)`, `timing the model`, `running the inference`.
    pub during: String,
    /// The backend's own description of the failure.
    pub message: String,
}

/// Told about each measurement.
pub trait ProfileProgress {
    /// `todo` entries will be measured, `done` were already in the profile.
    fn start(&self, _todo: usize, _done: usize) {}
    fn measured(&self, _entry: &Entry) {}
}

/// Progress that goes nowhere.
#[derive(Debug, Default, Clone, Copy)]
pub struct Quiet;
impl ProfileProgress for Quiet {}

/// What to measure and how.
#[derive(Debug, Clone)]
pub struct ProfilePlan {
    pub name: String,
    pub shapes: Vec<OpShape>,
    pub timing: TimingOptions,
    /// Timing of the two roofline probes.
    pub probe_timing: TimingOptions,
    /// `[m, k, n]` of the peak-compute probe.
    pub matmul_probe: [usize; 3],
    /// f32 elements the bandwidth probe sums.
    pub bandwidth_probe: usize,
    /// Sessions per entry, run in rounds over all shapes (each capped at
    /// `timing.max_time / rounds`), so slow drifts of the machine's load average out.
    pub rounds: usize,
    /// Run at most this many sessions in this run (the rest on the next run).
    pub limit: Option<usize>,
    /// Idle time before every session but the first of a run, so a phone sheds the heat
    /// of the last one (the SLM survey paused 10-60 s between tests).
    pub cooldown: std::time::Duration,
    /// CPUs whose frequency caps and temperature are read around each session.
    pub watch_cpus: Vec<u32>,
}

impl ProfilePlan {
    pub fn new(name: impl Into<String>, shapes: Vec<OpShape>) -> Self {
        Self {
            name: name.into(),
            shapes,
            timing: TimingOptions::default(),
            probe_timing: TimingOptions::default(),
            matmul_probe: [1024, 1024, 1024],
            bandwidth_probe: 32 << 20,
            rounds: 3,
            limit: None,
            cooldown: std::time::Duration::ZERO,
            watch_cpus: device_state::allowed_cpus(),
        }
    }
}

/// A fresh, empty profile for a setup.
pub fn new_profile(name: &str, fingerprint: Fingerprint, now: &str) -> Profile {
    Profile {
        format_version: PROFILE_FORMAT_VERSION,
        name: name.to_string(),
        fingerprint,
        provenance: Provenance {
            tailor_version: env!("CARGO_PKG_VERSION").to_string(),
            created: now.to_string(),
            updated: now.to_string(),
        },
        roofline: None,
        memory: None,
        cycle_bytes: None,
        entries: Vec::new(),
    }
}

/// Re-times the fixed subset of `profile`'s entries ([`tailor_cost::drift::subset`]) and
/// its roofline probes on `device` with `opts`: how far this machine is from the profile
/// now, in seconds. `path` names the profile in the result.
pub fn check_drift(
    path: &str,
    profile: &Profile,
    device: &Device,
    opts: &TimingOptions,
) -> Result<tailor_cost::Drift, ProfileError> {
    let started = std::time::Instant::now();
    // The profile's own cycle: another would move the entries by where they read from.
    let opts = &TimingOptions {
        cycle_bytes: profile.cycle(),
        ..*opts
    };
    let mut now = Vec::new();
    for e in tailor_cost::drift::subset(profile) {
        let m = bench::time_shape(&e.shape, device, opts)?;
        now.push((e.shape.clone(), m.median_us));
    }
    let roofline = profile.roofline.as_ref().map(|r| {
        let [m, k, n] = r.matmul_shape.map(|x| x as usize);
        (
            bench::probe_matmul(device, [m, k, n], opts),
            bench::probe_bandwidth(device, (r.bandwidth_bytes / 4) as usize, opts),
        )
    });
    Ok(tailor_cost::Drift::new(
        path,
        profile,
        &now,
        roofline,
        started.elapsed().as_secs_f64(),
    ))
}

/// Re-measures what a drift check found stale ([`tailor_cost::Drift::plan`]): the entries
/// of `profile` named in `what.measure`, and the roofline probes when `what.roofline`, on
/// `device` with `plan`'s timing and rounds (`plan.shapes` is replaced). `checkpoint` gets
/// the whole profile after each session, stale entries replaced as they are re-measured,
/// so a kill leaves a complete profile. Returns the profile and how many entries were
/// re-measured.
pub fn remeasure_stale(
    device: &Device,
    profile: &Profile,
    what: &tailor_cost::drift::Remeasure,
    mut plan: ProfilePlan,
    now: &dyn Fn() -> String,
    progress: &dyn ProfileProgress,
    checkpoint: &mut dyn FnMut(&Profile) -> Result<(), FileError>,
) -> Result<(Profile, usize), ProfileError> {
    plan.shapes = what.measure.clone();
    let mut fresh = new_profile(&profile.name, profile.fingerprint.clone(), &now());
    fresh.cycle_bytes = Some(profile.cycle());
    if !what.roofline {
        fresh.roofline = profile.roofline;
    }
    let n = plan.shapes.len();
    let fresh = run_profile(device, fresh, &plan, now, progress, &mut |f| {
        checkpoint(&tailor_cost::drift::merge_remeasured(profile, f))
    })?;
    Ok((tailor_cost::drift::merge_remeasured(profile, &fresh), n))
}

/// Measures everything `profile` lacks for `plan` (the roofline first, then each shape not
/// yet timed, in order) and calls `checkpoint` after each, so an interrupted run loses at
/// most the entry in flight. The profile's fingerprint must be the device's.
pub fn run_profile(
    device: &Device,
    mut profile: Profile,
    plan: &ProfilePlan,
    now: &dyn Fn() -> String,
    progress: &dyn ProfileProgress,
    checkpoint: &mut dyn FnMut(&Profile) -> Result<(), FileError>,
) -> Result<Profile, ProfileError> {
    if profile.roofline.is_none() {
        tracing::info!("measuring the roofline (peak matmul, read bandwidth)");
        let matmul_gflops = bench::probe_matmul(device, plan.matmul_probe, &plan.probe_timing);
        let bandwidth_gbs =
            bench::probe_bandwidth(device, plan.bandwidth_probe, &plan.probe_timing);
        profile.roofline = Some(RooflineProbe {
            matmul_gflops,
            matmul_shape: plan.matmul_probe.map(|x| x as u64),
            bandwidth_gbs,
            bandwidth_bytes: plan.bandwidth_probe as u64 * 4,
        });
        profile.provenance.updated = now();
        checkpoint(&profile)?;
    }
    let rounds = plan.rounds.max(1);
    let done = |p: &Profile, s: &OpShape| p.entry(s).map_or(0, Entry::sessions);
    let todo: usize = plan
        .shapes
        .iter()
        .map(|s| rounds.saturating_sub(done(&profile, s)))
        .sum();
    let complete = plan
        .shapes
        .iter()
        .filter(|s| done(&profile, s) >= rounds)
        .count();
    let mut budget = plan.limit.unwrap_or(usize::MAX).min(todo);
    progress.start(budget, complete);
    // A new profile records the plan's cycle; one with entries keeps its own (a profile
    // without the key was timed with the default), whatever this run asks for.
    if profile.cycle_bytes.is_none() && profile.entries.is_empty() {
        profile.cycle_bytes = Some(plan.timing.cycle_bytes);
    } else if profile.cycle() != plan.timing.cycle_bytes {
        tracing::info!(
            cycle_mib = profile.cycle() >> 20,
            "resuming with the profile's own weight cycle"
        );
    }
    let mut session = plan.timing;
    session.cycle_bytes = profile.cycle();
    session.max_time = plan.timing.max_time / rounds as u32;
    let mut sessions_run = 0usize;
    let mut warned_loaded = false;
    let plan_index: std::collections::HashMap<&OpShape, usize> = plan
        .shapes
        .iter()
        .enumerate()
        .map(|(i, s)| (s, i))
        .collect();
    for round in 1..=rounds {
        // Each round visits the shapes in its own order (seeded by the round): the machine
        // drifts over a round, and in one fixed order every shape of a family (the same
        // width, the same phase) would share the drift of its stretch of the round.
        for shape in timing::shuffled(plan.shapes.len(), round as u64)
            .into_iter()
            .map(|i| &plan.shapes[i])
        {
            if budget == 0 {
                return Ok(profile);
            }
            if done(&profile, shape) >= round {
                continue;
            }
            if sessions_run > 0 && !plan.cooldown.is_zero() {
                std::thread::sleep(plan.cooldown);
            }
            sessions_run += 1;
            let before = device_state::snapshot(&plan.watch_cpus);
            let m = bench::time_shape(shape, device, &session)?;
            let after = device_state::snapshot(&plan.watch_cpus);
            let shares = before
                .ticks
                .zip(after.ticks)
                .and_then(|(b, a)| b.shares(&a));
            let (other_load, steal) = (shares.map(|s| s.0), shares.map(|s| s.1));
            let loaded = Conditions::is_loaded(other_load, steal);
            // Recorded where the OS tells something worth keeping (phones, most laptops:
            // temperatures) and whenever the session competed for the CPUs.
            let conditions = (before.temp_c.is_some()
                || after.temp_c.is_some()
                || before.throttled
                || after.throttled
                || loaded)
                .then_some(Conditions {
                    temp_before_c: before.temp_c,
                    temp_after_c: after.temp_c,
                    throttled: before.throttled || after.throttled,
                    other_load,
                    steal,
                    loaded,
                });
            if conditions.is_some_and(|c| c.throttled) {
                tracing::warn!(shape = %shape, "the CPU was throttled around this session; its time is flagged");
            }
            if loaded && !warned_loaded {
                warned_loaded = true;
                tracing::warn!(
                    shape = %shape,
                    other_load = other_load.unwrap_or(0.0),
                    steal = steal.unwrap_or(0.0),
                    "other processes (or other guests of this VM) took CPU time during this \
                     session: it is marked `loaded` in the profile and is likely too slow (said \
                     once; `tailor profile` counts the loaded entries)"
                );
            }
            let entry = match profile.entries.iter().position(|e| &e.shape == shape) {
                Some(i) => {
                    let e = &mut profile.entries[i];
                    if e.rounds.is_empty() {
                        e.rounds.push(e.median_us);
                    }
                    e.rounds.push(m.median_us);
                    e.median_us = timing::summarize(&e.rounds).0;
                    e.p10_us = e.p10_us.min(m.p10_us).min(e.median_us);
                    e.p90_us = e.p90_us.max(m.p90_us).max(e.median_us);
                    e.samples += m.samples_us.len() as u32;
                    e.capped |= m.capped;
                    e.conditions.extend(conditions);
                    e.clone()
                }
                None => {
                    let e = Entry {
                        shape: shape.clone(),
                        median_us: m.median_us,
                        p10_us: m.p10_us,
                        p90_us: m.p90_us,
                        samples: m.samples_us.len() as u32,
                        capped: m.capped,
                        rounds: vec![m.median_us],
                        conditions: conditions.into_iter().collect(),
                        stale: false,
                    };
                    // Kept in the plan's order whatever the visiting order (entries of
                    // other plans stay where they are).
                    let at = plan_index[shape];
                    let later = |e: &Entry| plan_index.get(&e.shape).is_some_and(|&j| j > at);
                    let i = profile
                        .entries
                        .iter()
                        .position(later)
                        .unwrap_or(profile.entries.len());
                    profile.entries.insert(i, e.clone());
                    e
                }
            };
            budget -= 1;
            progress.measured(&entry);
            profile.provenance.updated = now();
            checkpoint(&profile)?;
        }
    }
    Ok(profile)
}

/// What a whole model really costs on a device.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelMeasurement {
    /// Parameters the built model holds.
    pub params: u64,
    /// `None` when timing was not asked for.
    pub prefill: Option<Measurement>,
    pub decode: Option<Measurement>,
    /// Peak memory of the inference above what the process held before the model was
    /// built: resident-set high-water mark on CPU backends (Linux), bytes the backend's
    /// memory pool reserved on GPU backends; `None` where not asked for or unreadable.
    pub peak_memory_bytes: Option<u64>,
    /// How `peak_memory_bytes` was measured: `rss`, `pool` or `none`.
    pub memory_source: MemorySource,
    /// Seconds spent building the random weights.
    pub build_s: f64,
}

/// Builds `spec` with random weights on `device`; if `memory`, measures the peak memory of
/// one inference (a prefill of `prompt` tokens, then a decode step after `context`); if
/// `timing` is given, times the prefill and the decode step. Measure memory in a fresh
/// process, with an allocator that returns freed pages, for a figure of the live set.
pub fn measure_model(
    backend: Backend,
    device: &Device,
    spec: &tailor_spec::ModelSpec,
    prompt: usize,
    context: usize,
    memory: bool,
    timing: Option<&TimingOptions>,
) -> Result<ModelMeasurement, ProfileError> {
    let pool = || device.memory_pool_usage().map(|u| u.bytes_reserved);
    let (rss_base, pool_base) = (memory::rss_bytes(), pool());
    let (model, build_s) = build(device, spec, prompt, context)?;
    let (mut peak_memory_bytes, mut memory_source) = (None, MemorySource::None);
    if memory {
        let cpu = backend != Backend::Wgpu;
        let reset = cpu && memory::reset_peak();
        model::run_inference(&model, prompt, context)?;
        (peak_memory_bytes, memory_source) = match (cpu, reset, rss_base, pool_base) {
            (true, true, Some(base), _) => (
                memory::peak_rss_bytes().map(|p| p.saturating_sub(base)),
                MemorySource::Rss,
            ),
            (false, _, _, Some(base)) => {
                (pool().map(|p| p.saturating_sub(base)), MemorySource::Pool)
            }
            _ => (None, MemorySource::None),
        };
        if peak_memory_bytes.is_none() {
            memory_source = MemorySource::None;
        }
    }
    let (prefill, decode) = match timing {
        Some(opts) => {
            let t = model::time_model(&model, prompt, context, opts)?;
            (Some(t.prefill), Some(t.decode))
        }
        None => (None, None),
    };
    Ok(ModelMeasurement {
        params: model.num_params(),
        prefill,
        decode,
        peak_memory_bytes,
        memory_source,
        build_s,
    })
}

/// Builds `spec` with random weights for a prefill of `prompt` and a decode step after
/// `context`, and runs it once, so lazily generated weights exist (before a memory peak
/// is reset, before anything is timed); the model and the seconds that took.
fn build(
    device: &Device,
    spec: &tailor_spec::ModelSpec,
    prompt: usize,
    context: usize,
) -> Result<(model::Model, f64), ProfileError> {
    let started = std::time::Instant::now();
    let model = model::Model::random(spec, prompt.max(context + 1), device)?;
    model::run_inference(&model, 1, 1)?;
    Ok((model, started.elapsed().as_secs_f64()))
}

/// Builds every spec with random weights on `device` and times them together
/// ([`model::time_models`]: prefills interleaved, then decode steps interleaved): what
/// `tailor validate` compares predictions with. Memory is not measured (each model needs
/// a fresh process for that).
pub fn measure_models(
    device: &Device,
    specs: &[tailor_spec::ModelSpec],
    prompt: usize,
    context: usize,
    timing: &TimingOptions,
) -> Result<Vec<ModelMeasurement>, ProfileError> {
    let (models, build_s): (Vec<_>, Vec<_>) = specs
        .iter()
        .map(|spec| build(device, spec, prompt, context))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .unzip();
    let timings = model::time_models(&models, prompt, context, timing)?;
    Ok(models
        .iter()
        .zip(timings)
        .zip(build_s)
        .map(|((m, t), build_s)| ModelMeasurement {
            params: m.num_params(),
            prefill: Some(t.prefill),
            decode: Some(t.decode),
            peak_memory_bytes: None,
            memory_source: MemorySource::None,
            build_s,
        })
        .collect())
}

#[cfg(test)]
mod tests;

/// Builds `spec` with random weights on `device` and times its decode step after `context`
/// cached tokens operator by operator, in the model's chain ([`model::time_decode_ops`]).
pub fn measure_decode_chain(
    device: &Device,
    spec: &tailor_spec::ModelSpec,
    context: usize,
    opts: &TimingOptions,
) -> Result<model::ChainTiming, ProfileError> {
    let (model, _) = build(device, spec, 1, context)?;
    Ok(model::time_decode_ops(&model, context, opts)?)
}

/// A whole edit step timed on a device: the prefix (once per edit), a zo step and a bp
/// step (on the autodiff view of the device), each with the profiler's method.
#[derive(Debug, Clone, PartialEq)]
pub struct EditTiming {
    pub prefix: Measurement,
    pub zo_step: Measurement,
    pub bp_step: Measurement,
}

/// Builds `spec` with random weights twice (plainly for the prefix and the zo steps, on
/// the autodiff view of `device` for the bp steps) and times the edit `e`'s parts.
pub fn measure_edit(
    device: &Device,
    spec: &tailor_spec::ModelSpec,
    e: &tailor_cost::EditWorkload,
    opts: &TimingOptions,
) -> Result<EditTiming, ProfileError> {
    let tokens = e.tokens as usize;
    let failed = std::cell::RefCell::new(None::<String>);
    let sync = || {
        if let Err(err) = device.sync() {
            failed
                .borrow_mut()
                .get_or_insert_with(|| format!("{err:?}"));
        }
    };
    let time = |call: &mut dyn FnMut() -> Tensor<2>| {
        drop(call());
        sync();
        measure(opts, |_| call(), sync)
    };
    let zo = model::EditRun::new(model::Model::random(spec, tokens, device)?, e);
    let prefix = time(&mut || zo.prefix(tokens));
    let zo_step = time(&mut || zo.zo_step());
    drop(zo);
    let bp = model::EditRun::new(
        model::Model::random(spec, tokens, &device.clone().autodiff())?,
        e,
    );
    let bp_step = time(&mut || bp.bp_step());
    match failed.into_inner() {
        Some(message) => Err(DeviceFailed {
            during: "timing the edit".into(),
            message,
        }
        .into()),
        None => Ok(EditTiming {
            prefix,
            zo_step,
            bp_step,
        }),
    }
}

/// Peak memory of an edit by `method`: `spec` built (on the autodiff view of `device` for
/// bp), the prefix computed and two steps run; the high-water mark above what the process
/// held before the model was built (as [`measure_model`] measures inference). Run it in a
/// fresh process.
pub fn measure_edit_memory(
    backend: Backend,
    device: &Device,
    spec: &tailor_spec::ModelSpec,
    e: &tailor_cost::EditWorkload,
    method: tailor_cost::EditMethod,
) -> Result<(Option<u64>, MemorySource), ProfileError> {
    let pool = || device.memory_pool_usage().map(|u| u.bytes_reserved);
    let (rss_base, pool_base) = (memory::rss_bytes(), pool());
    let cpu = backend != Backend::Wgpu;
    let reset = cpu && memory::reset_peak();
    let on = match method {
        tailor_cost::EditMethod::Zo => device.clone(),
        tailor_cost::EditMethod::Bp => device.clone().autodiff(),
    };
    let run = model::EditRun::new(model::Model::random(spec, e.tokens as usize, &on)?, e);
    for _ in 0..2 {
        let v = match method {
            tailor_cost::EditMethod::Zo => run.zo_step(),
            tailor_cost::EditMethod::Bp => run.bp_step(),
        };
        let _ = v.into_data();
    }
    let failed = |err| DeviceFailed {
        during: "running the edit".into(),
        message: format!("{err:?}"),
    };
    device.sync().map_err(failed)?;
    Ok(match (cpu, reset, rss_base, pool_base) {
        (true, true, Some(base), _) => (
            memory::peak_rss_bytes().map(|p| p.saturating_sub(base)),
            MemorySource::Rss,
        ),
        (false, _, _, Some(base)) => (pool().map(|p| p.saturating_sub(base)), MemorySource::Pool),
        _ => (None, MemorySource::None),
    })
}
