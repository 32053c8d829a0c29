//! `tailor measure`'s arguments.

use super::{EditArgs, TimingArgs, WorkloadArgs};
use clap::Args;
use std::path::PathBuf;
use tailor_cost::EditMethod;
use tailor_profiler::Backend;

#[derive(Debug, Args)]
pub struct MeasureArgs {
    /// The model: a Hugging Face `config.json` or a tailor `spec.toml`. Give several to
    /// time them together: their prefills interleaved call by call in one session, then
    /// their decode steps likewise, so the machine's swings fall on all of them alike
    /// (timing only: memory needs a process per model).
    #[arg(required = true, num_args = 1..)]
    pub spec: Vec<PathBuf>,
    /// burn backend: flex (CPU, default), ndarray (CPU), wgpu (GPU).
    #[arg(long, default_value = "flex")]
    pub backend: Backend,
    #[command(flatten)]
    pub workload: WorkloadArgs,
    #[command(flatten)]
    pub timing: TimingArgs,
    /// Only measure the peak memory (prints `{"peak_memory_bytes", "memory_source"}` with
    /// --json). The full command runs this in a child process of its own.
    #[arg(long, conflicts_with = "no_memory")]
    pub memory_only: bool,
    /// Only time the model; do not measure its memory.
    #[arg(long)]
    pub no_memory: bool,
    /// Time a decode step operator by operator as the model chains them (a sync after
    /// each), beside the same step timed whole: where the step's time goes.
    #[arg(long, conflicts_with_all = ["memory_only", "no_memory"])]
    pub decode_ops: bool,
    /// With --decode-ops or --edit: set what is measured beside this profile's prediction.
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// Time one knowledge edit of the model instead of inference: its prefix, a zo step
    /// and a bp step (burn's autodiff), and each method's peak memory in a fresh process.
    #[command(flatten)]
    pub edit: EditArgs,
    /// With --edit: only the peak memory of an edit by this method, `zo` or `bp` (the
    /// full command runs this in a child process of its own).
    #[arg(long, requires = "edit", value_parser = parse_method)]
    pub edit_memory: Option<EditMethod>,
    /// Print one JSON object on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn parse_method(s: &str) -> Result<EditMethod, String> {
    EditMethod::ALL
        .into_iter()
        .find(|m| m.name() == s)
        .ok_or_else(|| format!("`{s}`: the edit methods are zo and bp"))
}
