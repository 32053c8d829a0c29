//! `tailor export`'s arguments.

use clap::Args;
use std::path::PathBuf;
use tailor_report::Flavor;

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A search's `front.json` (its pick, or the row given by `#ID` / --row), or a spec
    /// (`spec.toml` or `config.json`).
    pub target: String,
    /// Front row to export, by id (default: the pick).
    #[arg(long)]
    pub row: Option<u64>,
    /// config.json flavor: `llama` (stock transformers) or `phonelm` (PhoneLM's fields).
    #[arg(long, value_enum, default_value = "llama")]
    pub flavor: Flavor,
    /// Output folder [default: out/export-<name>-<timestamp>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Price a spec file on this profile for the model card (front rows carry their own
    /// prediction).
    #[arg(long)]
    pub profile: Option<PathBuf>,
    #[command(flatten)]
    pub workload: super::WorkloadArgs,
    /// Print the written paths as JSON.
    #[arg(long)]
    pub json: bool,
}
