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
    /// config.json flavor: `llama` (stock transformers), `phonelm` (PhoneLM's fields), or
    /// the family of a mixed-layer spec (`lfm2`, `gemma3`, `qwen3_5`, `qwen3`, `smollm3`)
    /// [default: llama for a dense spec, else the family that expresses it].
    #[arg(long, value_enum)]
    pub flavor: Option<Flavor>,
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
