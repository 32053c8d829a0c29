//! What a validation is given besides its profile and space, shared by the one-profile
//! validation (`validate`), a set's (`validate::validate_set`) and a remote device's
//! (`device::validate_remote`): how each engine runs here or on the device
//! ([`EngineSetup`], [`RemoteSetup`]) and which models are timed ([`ValidateOptions`]).

use std::path::{Path, PathBuf};
use tailor_llamacpp::Settings;
use tailor_profiler::TimingOptions;
use tailor_spec::{DType, ModelSpec};

/// How the profile's engine runs here; which one is the profile's (a llama.cpp profile or
/// a burn one), checked by [`validate`].
#[derive(Debug, Clone)]
pub struct EngineSetup {
    /// burn: the timing of each session (and of the re-check and re-measure).
    pub timing: TimingOptions,
    /// llama.cpp: the llama-bench to run (`None`: found on the PATH or beside tailor; on a
    /// device whose binaries start through an emulator, through that emulator), how it runs
    /// (threads, cache type and flash attention are the profile's), and the weights to
    /// validate instead of the space's.
    pub llama_bench: Option<PathBuf>,
    pub settings: Settings,
    pub weights: Option<DType>,
    /// How a device reached through a transport times its models (`--remote`, or a
    /// device's `remote` in a set).
    pub remote: RemoteSetup,
}

/// What is pushed to a remote device to validate there, and the arguments its `tailor
/// validate` gets besides the files (timing; llama-bench's settings).
#[derive(Debug, Clone, Default)]
pub struct RemoteSetup {
    /// The static arm64 `tailor`.
    pub tailor_binary: PathBuf,
    /// The device's llama-bench (an aarch64 build), for a llama.cpp profile.
    pub llama_bench: Option<PathBuf>,
    /// burn: the timing flags; llama.cpp: `--llama-bench ./llama-bench` and its settings.
    pub burn_args: Vec<String>,
    pub llama_args: Vec<String>,
}

/// Which models a validation times and how, whatever the profile (one, or each device's
/// of a set).
#[derive(Debug, Clone)]
pub struct ValidateOptions<'a> {
    /// These specs (spec.toml or config.json), priced as candidates of the space, instead
    /// of a sample of it.
    pub specs: &'a [PathBuf],
    /// These models (with their ids in the space), priced as candidates of the space,
    /// instead of `specs` or a sample: what a run over a set of devices times on each.
    pub models: Vec<(u64, ModelSpec)>,
    /// Configs of the sample, spread over the space's predicted decode time.
    pub samples: usize,
    pub seed: u64,
    /// Timing rounds of each model.
    pub rounds: u64,
    /// The output folder (locked for the run; a rerun into it reuses what it holds); over
    /// a set, each device's is `<out>/<device>`.
    pub out: &'a Path,
    /// Re-time the profile's drift subset first.
    pub recheck: bool,
    /// Then re-measure the entries (burn) or probes (llama.cpp) of the drifted classes.
    pub remeasure: bool,
    /// Level the predictions to this many other whole models of the space, timed first.
    pub anchors: Option<usize>,
    pub engine: EngineSetup,
}
