//! `tailor predict`'s arguments.

use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// The model: a Hugging Face `config.json` or a tailor `spec.toml`.
    pub spec: PathBuf,
    /// Device profile written by `tailor profile` (profiles/*.toml): burn or llama.cpp.
    #[arg(long)]
    pub profile: PathBuf,
    #[command(flatten)]
    pub workload: super::WorkloadArgs,
    /// Also price one knowledge edit (printed under `edit` with --json).
    #[command(flatten)]
    pub edit: super::EditArgs,
    /// Print one JSON object on stdout instead of tables.
    #[arg(long)]
    pub json: bool,
}
