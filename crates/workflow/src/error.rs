//! Why a pipeline stopped. Each variant carries what the user needs to act on it: the
//! file, the setting, the knob.

use std::path::PathBuf;
use tailor_cost::SetupMismatch;
use tailor_spec::files::{FileError, LockError};

/// What went wrong in a pipeline.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Remote(#[from] crate::RemoteError),
    #[error(transparent)]
    Report(#[from] tailor_report::ReportError),
    #[error(transparent)]
    Profiler(#[from] tailor_profiler::ProfileError),
    #[error(transparent)]
    Export(#[from] ExportError),
    /// Profiling into a file failed (the entries saved so far are kept there).
    #[error("profiling into {}: {error}", path.display())]
    Profiling {
        path: PathBuf,
        error: tailor_profiler::ProfileError,
    },
    /// The space (or the specs) give no shape to profile.
    #[error("no candidate of the space is inside its static constraints: nothing to profile")]
    NothingToProfile,
    /// An existing profile file was measured on another setup.
    #[error(
        "{}: {mismatch}. Profile into another file with --out, or start this one afresh \
         with --force",
        path.display()
    )]
    OtherSetup {
        path: PathBuf,
        mismatch: SetupMismatch,
    },
    /// A child `tailor measure` could not be started.
    #[error("starting `tailor measure`: {0}")]
    Spawn(std::io::Error),
    /// A child `tailor measure` failed; `why` is the last line of its stderr.
    #[error("measuring {what} failed ({status}): {why}")]
    Child {
        what: String,
        status: String,
        why: String,
    },
    /// A child's stdout was not what `tailor measure --json` prints.
    #[error("reading {what}: {error}")]
    ChildOutput {
        what: String,
        error: serde_json::Error,
    },
    /// A child measured another number of models than it was given.
    #[error("measuring {what}: {reports} reports for {models} models")]
    ChildCount {
        what: String,
        reports: usize,
        models: usize,
    },
    /// The backend reports no peak memory on this system.
    #[error("this backend does not report its peak memory here (source `{0}`)")]
    NoPeakMemory(tailor_cost::MemorySource),
    /// `--cpus` names no CPUs.
    #[error("--cpus: {0}")]
    BadCpuList(tailor_profiler::device_state::BadCpuList),
    /// The re-executed process does not run on the CPUs asked.
    #[error(
        "--cpus {list}: pinning did not take (the process may run on {runs_on}); are those \
         CPUs online?"
    )]
    PinNotTaken { list: String, runs_on: String },
    /// `taskset` is not installed.
    #[error("--cpus needs `taskset` on PATH (util-linux on Linux, toybox on Android)")]
    NoTaskset,
    /// `taskset` could not be run.
    #[error("running taskset: {0}")]
    Taskset(std::io::Error),
    /// Every model of a check failed.
    #[error("no model could be measured; the first error: {0}")]
    NothingMeasured(String),
    /// A sampled model would not fit in the memory available now.
    #[error(
        "{}: {over} of the {sampled} sampled configs are predicted to need more memory than \
         this machine has available now ({available}); config {largest_id} needs about \
         {largest}. Keep the sample inside it with a constraint in the space \
         (`max_memory_gib = {suggest_gib:.1}` under [constraints]), or validate on a machine \
         with more memory",
        space.display()
    )]
    Oversized {
        space: PathBuf,
        over: usize,
        sampled: usize,
        available: String,
        largest_id: u64,
        largest: String,
        suggest_gib: f64,
    },
    #[error(transparent)]
    Llama(#[from] tailor_llamacpp::RunError),
    #[error(transparent)]
    Unsupported(#[from] tailor_llamacpp::Unsupported),
    /// A llama.cpp profile cannot price the workload asked.
    #[error("{}: {error}", path.display())]
    LlamaWorkload {
        path: PathBuf,
        error: tailor_llamacpp::CostError,
    },
    /// Profiling into a llama.cpp profile failed (the visits saved so far are kept there).
    #[error("profiling into {}: {error}", path.display())]
    LlamaProfiling {
        path: PathBuf,
        error: tailor_llamacpp::RunError,
    },
    /// llama-bench could not time the first, smallest probe (so nothing else either).
    #[error("running llama-bench on a first probe: {0}")]
    FirstProbe(tailor_llamacpp::RunError),
    /// A llama.cpp profile is resumed with another method than it was made with.
    #[error(
        "{}: was profiled with {decode_tokens} decode tokens and {repetitions} repetitions; \
         resume with the same --decode-tokens and --repetitions, or start afresh with --force",
        path.display()
    )]
    OtherMethod {
        path: PathBuf,
        decode_tokens: u64,
        repetitions: u32,
    },
    /// A folder could not be created.
    #[error("{}: cannot create the folder: {error}", path.display())]
    CreateDir {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The device disconnected while `tailor profile` ran there.
    #[error(
        "the device went away while tailor ran there ({via}). Every finished {unit} is saved on it \
         in {file}: reconnect and rerun the same command to resume"
    )]
    DeviceGone {
        via: String,
        file: String,
        unit: &'static str,
    },
    /// `tailor profile` or `validate` failed on the device (its stderr was streamed above).
    #[error("`tailor` failed on the device (its error is above)")]
    DeviceFailed,
    /// A llama.cpp profile validated on a device without the device's llama-bench.
    #[error(
        "a llama.cpp profile is validated on the device with the device's llama-bench: give \
         --remote-llama-bench PATH (an aarch64 build: scripts/build-llama-bench.sh --arm64)"
    )]
    RemoteLlamaBench,
    /// Something tailor writes could not be serialised.
    #[error("writing {what}: {error}")]
    Serialize { what: String, error: String },
    /// The file pulled from the device does not read as a profile.
    #[error("the profile pulled from the device ({}): {error}", path.display())]
    Pulled { path: PathBuf, error: FileError },
    /// A finished file could not be moved into its place.
    #[error("moving the profile to {}: {error}", to.display())]
    Move { to: PathBuf, error: std::io::Error },
    /// A profile names a backend this tailor does not know.
    #[error("{}: {error}", path.display())]
    ProfileBackend {
        path: PathBuf,
        error: tailor_profiler::UnknownBackend,
    },
    /// Whole models are timed here, so the profile must be this machine's.
    #[error(
        "{}: {mismatch}. Whole models are timed on this machine, so it needs this machine's \
         profile: run `tailor profile --space {} --backend {backend}` first",
        path.display(),
        space.display()
    )]
    NotThisMachine {
        path: PathBuf,
        mismatch: SetupMismatch,
        space: PathBuf,
        backend: tailor_profiler::Backend,
    },
    /// A llama.cpp profile of another machine asked to describe this one (whole models
    /// are timed here, or `tailor run` would price with it).
    #[error(
        "{}: {mismatch}. Whole models are timed on this machine, so it needs this machine's \
         profile: run `tailor profile --engine llama.cpp --space {} --weights {weights} --out \
         FILE` (about a minute for quickstart), or `tailor run --engine llama.cpp`, which \
         profiles this machine into a file of its own",
        path.display(),
        space.display()
    )]
    LlamaNotThisMachine {
        path: PathBuf,
        mismatch: SetupMismatch,
        space: PathBuf,
        weights: tailor_spec::DType,
    },
    /// Re-measuring a profile's stale entries failed (those re-measured so far are saved).
    #[error("re-measuring {}: {error}", path.display())]
    Remeasuring {
        path: PathBuf,
        error: tailor_profiler::ProfileError,
    },
    /// A profile's entries do not make a cost model.
    #[error("{}: {error}", path.display())]
    Profiled {
        path: PathBuf,
        error: tailor_cost::ProfiledError,
    },
    /// A budget was given to an exhaustive search.
    #[error("--budget applies to random and nsga2; exhaustive examines all {points} points")]
    BudgetWithExhaustive { points: u64 },
    /// The search would write more candidates.csv than allowed.
    #[error(
        "{}: a {strategy} search of all {points} points would write up to about {size} of \
         candidates.csv, over --max-candidates-csv {max_mib} MiB. Sample the space instead \
         (--strategy nsga2 --budget 2000, or --strategy random --budget N), narrow its axes, \
         or raise --max-candidates-csv",
        space.display()
    )]
    CsvTooLarge {
        space: PathBuf,
        strategy: &'static str,
        points: String,
        size: String,
        max_mib: u64,
    },
    /// No candidate of a search is feasible; `why` says what excluded them.
    #[error("{}: {why} (all evaluated candidates are in {})", space.display(), candidates.display())]
    NoFeasible {
        space: PathBuf,
        why: String,
        candidates: PathBuf,
    },
    /// Writing a file failed.
    #[error("writing {}: {error}", path.display())]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
    /// A burn profile (f32) asked of a space whose workload runs another weight type.
    #[error(
        "{}: its workload runs {weights} weights, and burn runs f32 only; profile it with \
         `--engine llama.cpp` (GGUF {weights}), or set `weights = \"f32\"` under [workload] \
         for a burn profile",
        space.display()
    )]
    BurnWeights {
        space: PathBuf,
        weights: tailor_spec::DType,
    },
    /// The workload's weight type is not the one the profile was measured in.
    #[error(
        "{what} asks for {asked} weights but the profile was measured in {profiled}; set the \
         workload's `weights = \"{profiled}\"` or profile in {asked}"
    )]
    Precision {
        what: String,
        asked: tailor_spec::DType,
        profiled: tailor_spec::DType,
    },
    /// No candidate of the space passes its static constraints.
    #[error(
        "{}: no candidate is inside the space's static constraints (parameters, aspect \
         ratio): nothing to profile or search; widen [constraints]",
        space.display()
    )]
    NoStaticCandidate { space: PathBuf },
    /// `tailor measure --edit` of a model whose bp edit cannot fit here.
    #[error(
        "{}: a bp edit of this model needs about {need} (f32 weights and the activations \
         its backward keeps) and this machine has {available} available; measure a smaller \
         model here, or this one on a machine with more memory",
        spec.display()
    )]
    EditTooLarge {
        spec: PathBuf,
        need: String,
        available: String,
    },
    /// The space uses an edit metric that the cost model cannot price.
    #[error(
        "{}: `{metric}` needs a cost model that prices it, and `{cost}` does not (a \
         datasheet roofline prices no edit; a llama.cpp profile prices the zo edit only, \
         llama.cpp running no backward pass); search with a burn profile of the space \
         (`tailor profile --space ...` times the edit's shapes) or drop `{metric}`",
        space.display()
    )]
    EditNotPriced {
        space: PathBuf,
        cost: String,
        metric: String,
    },
    /// A space's candidates or a spec run a kind of operator the burn profile never timed.
    #[error(
        "{}: runs {kind} operators ({shape}), of which profile {} has no entry at all; \
         profile it into that file (`tailor profile {flag} {} --out {}` resumes the profile \
         and times the shapes it lacks)",
        input.display(),
        profile.display(),
        input.display(),
        profile.display()
    )]
    KindNotProfiled {
        /// The space or spec.
        input: PathBuf,
        /// `--space` or `--spec`.
        flag: &'static str,
        profile: PathBuf,
        kind: &'static str,
        shape: String,
    },
    /// A workload's prompt or decode context longer than any the burn profile timed
    /// attention at.
    #[error(
        "{}: prompt {} and decode at context {} need {}, longer than any attention profile \
         {} timed (its prompts: {}; its decode contexts: {}), and a price extrapolated from \
         shorter ones would be a guess; profile it there (`tailor profile {flag} {} --prompt \
         {} --context {} --out {}` resumes the profile and times the shapes it lacks)",
        input.display(),
        at.prompt,
        at.context,
        at.shape,
        profile.display(),
        list(&at.prompts),
        list(&at.contexts),
        input.display(),
        at.prompt,
        at.context,
        profile.display()
    )]
    LengthNotProfiled {
        /// The space or spec.
        input: PathBuf,
        /// `--space` or `--spec`.
        flag: &'static str,
        profile: PathBuf,
        at: Box<Lengths>,
    },
    /// A device file without the peak the space's precision needs.
    #[error("{}: {error}", path.display())]
    MissingPeak {
        path: PathBuf,
        error: tailor_cost::MissingPeak,
    },
    #[error(
        "give --device FILE (roofline), --profile FILE (profiled), or a set of devices: \
         `--target NAME=FILE` twice or more, or [devices] in the space"
    )]
    NoCostModel,
    /// A device of a set names no file to price it.
    #[error(
        "{}: device `{device}` has no file to price it; add `file = \"...\"` (a profile or a \
         datasheet) under [devices.{device}], or give --target {device}=FILE",
        space.display()
    )]
    DeviceWithoutFile { space: PathBuf, device: String },
    /// What one device of a set refused.
    #[error("device `{device}`: {error}")]
    OnDevice {
        device: String,
        error: Box<WorkflowError>,
    },
    /// No config of a space to validate is inside all its constraints.
    #[error(
        "{}: no config of the space is inside all its constraints; nothing to validate",
        space.display()
    )]
    NothingToValidate { space: PathBuf },
    /// A run's profile is not complete yet (a `--limit`, or a kill).
    #[error("{}: {missing} {what} still unmeasured; rerun to continue", path.display())]
    StillMissing {
        path: PathBuf,
        missing: usize,
        what: &'static str,
    },
    /// Context for an error of one model of a check (`the memory of config 7`).
    #[error("{what}: {error}")]
    Of {
        what: String,
        error: Box<WorkflowError>,
    },
}

impl WorkflowError {
    /// This error, said to be about `what`.
    pub fn of(self, what: impl Into<String>) -> Self {
        WorkflowError::Of {
            what: what.into(),
            error: Box::new(self),
        }
    }
}

pub type Result<T, E = WorkflowError> = std::result::Result<T, E>;

/// `512, 4096`, or `none`.
fn list(xs: &[u64]) -> String {
    if xs.is_empty() {
        return "none".to_string();
    }
    xs.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
}

/// What a workload asked of attention, against what the profile timed.
#[derive(Debug)]
pub struct Lengths {
    /// The first attention call longer than the profile's.
    pub shape: String,
    pub prompt: u64,
    pub context: u64,
    /// The profile's prompt lengths and decode contexts, ascending.
    pub prompts: Vec<u64>,
    pub contexts: Vec<u64>,
}

/// Why an export target was refused.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(
        "`{target}`: after `#` comes the id of a front row (a number, as in front.json's \
         `id`), not `{id}`"
    )]
    BadRowId { target: String, id: String },
    #[error("give the row once: `{0}` or --row, not both")]
    RowTwice(String),
    #[error("{}: a row id applies to a search's front.json, and this is a spec file", .0.display())]
    RowOfSpec(PathBuf),
    #[error("{}: not a front.json written by `tailor search`: {error}", path.display())]
    NotAFront {
        path: PathBuf,
        error: serde_json::Error,
    },
    #[error("{}: no row with id {id} on this front; its {rows} rows have ids {ids}", path.display())]
    NoSuchRow {
        path: PathBuf,
        id: u64,
        rows: usize,
        ids: String,
    },
    #[error("{}: the front has no pick; name a row with `#ID` or --row", .0.display())]
    NoPick(PathBuf),
    #[error("{}: cannot export as `{flavor}`: {error}", path.display())]
    Flavor {
        path: PathBuf,
        flavor: &'static str,
        error: String,
    },
}
