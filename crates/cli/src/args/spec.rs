//! `tailor spec`'s arguments.

use clap::Args;
use std::path::PathBuf;
use tailor_spec::DType;

#[derive(Debug, Args)]
pub struct SpecArgs {
    /// A Hugging Face `config.json` (llama, mistral, qwen2, phonelm) or a tailor `spec.toml`.
    pub path: PathBuf,
    #[command(flatten)]
    pub workload: super::WorkloadArgs,
    /// Weight storage type: f32, f16, bf16, int8, q4_0.
    #[arg(long, default_value = "f32", value_parser = parse_dtype)]
    pub dtype: DType,
    /// KV-cache storage type [default: the weight type; f16 for int8/q4_0 weights].
    #[arg(long, value_parser = parse_dtype)]
    pub kv_dtype: Option<DType>,
    /// Print one JSON object on stdout instead of tables.
    #[arg(long)]
    pub json: bool,
}

pub(super) fn parse_dtype(s: &str) -> Result<DType, String> {
    DType::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = DType::ALL.iter().map(|d| d.name()).collect();
        format!("unknown dtype `{s}`; expected one of {}", names.join(", "))
    })
}
