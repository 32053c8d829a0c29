//! Times the operator shapes a search space needs on one burn backend (flex, ndarray,
//! wgpu) and writes them as a [`tailor_cost::Profile`].
//!
//! - [`timing`]: the measurement method (warm-up by time, sync, cycled inputs, repeats
//!   until stable, median/p10/p90).
//! - [`ops`]: the decoder operators on burn tensors.
//! - [`bench`]: one benchmark per [`OpShape`], and the roofline probes.
//! - [`run_profile`]: measures what a profile lacks, checkpointing after every entry.

pub mod backend;
pub mod bench;
pub mod ops;
pub mod timing;

pub use backend::{BURN_VERSION, Backend};
pub use timing::{Measurement, TimingOptions};

use burn::tensor::Device;
use tailor_cost::{
    Entry, Fingerprint, OpShape, PROFILE_FORMAT_VERSION, Profile, Provenance, RooflineProbe,
};
use tailor_spec::files::FileError;

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("{0}")]
    NoDevice(String),
    #[error("{0}")]
    Mismatch(String),
    #[error("{0}")]
    Device(String),
    #[error(transparent)]
    File(#[from] FileError),
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
    /// Measure at most this many new entries in this run (the rest on the next run).
    pub limit: Option<usize>,
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
            limit: None,
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
        entries: Vec::new(),
    }
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
    let todo: Vec<&OpShape> = plan
        .shapes
        .iter()
        .filter(|s| profile.entry(s).is_none())
        .collect();
    let take = plan.limit.unwrap_or(usize::MAX).min(todo.len());
    progress.start(take, plan.shapes.len() - todo.len());
    for shape in todo.into_iter().take(take) {
        let m = bench::time_shape(shape, device, &plan.timing).map_err(ProfileError::Device)?;
        let entry = Entry {
            shape: shape.clone(),
            median_us: m.median_us,
            p10_us: m.p10_us,
            p90_us: m.p90_us,
            samples: m.samples_us.len() as u32,
            capped: m.capped,
        };
        progress.measured(&entry);
        profile.entries.push(entry);
        profile.provenance.updated = now();
        checkpoint(&profile)?;
    }
    Ok(profile)
}

#[cfg(test)]
mod tests;
