//! The model spec: the architecture tailor searches over, with exact accounting.
//!
//! - [`ModelSpec`]: a decoder and its validation rules: the uniform dense (Llama/PhoneLM)
//!   stack, or any list of layers ([`layers`]: attention global or windowed, gated short
//!   convolutions, linear attention, FFN-only layers).
//! - Accounting ([`ModelSpec::params`], [`ModelSpec::operators`], ...): parameters exact
//!   to the unit, FLOPs of a prefill or a decode step, bytes per operator and per dtype.
//! - Formats: tailor's `spec.toml` ([`SpecFile`]) and Hugging Face `config.json`
//!   ([`HfConfig`] reads and writes the Llama family; [`families`] reads Qwen3, Gemma 3,
//!   LFM2, Qwen3.5 and SmolLM3).
//! - [`files`]: errors that name file, line and key; atomic writes. Shared by every crate.
//!
//! This crate depends on no other tailor crate and does no I/O beyond reading and writing
//! the files it is asked to.

pub mod accounting;
pub mod dtype;
pub mod families;
pub mod files;
pub mod hf;
mod hf_common;
pub mod layers;
pub mod model;
mod primitives;
pub mod spec_file;
pub mod summary;

pub use accounting::{
    Component, OpAccount, OpGroup, OpKind, ParamCounts, PassTotals, Phase, TensorInfo,
};
pub use dtype::{DType, Precision};
pub use files::FileError;
pub use hf::{HfConfig, ModelType, Unsupported};
pub use layers::{
    Attention, Ffn, Layer, LayerKind, Layout, LinearAttention, Mixer, MixerKind, ShortConv, Stack,
};
pub use model::{Activation, FfnKind, Invalid, ModelSpec, NormKind};
pub use spec_file::{SPEC_FORMAT_VERSION, SpecFile};
pub use summary::SpecSummary;

use std::path::Path;

/// A spec read from a file of either format, with what the file said about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedSpec {
    pub spec: ModelSpec,
    /// `name` of a spec.toml, or the `model_type` of a config.json.
    pub name: Option<String>,
    pub format: SpecFormat,
}

/// Which format a spec was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecFormat {
    SpecToml,
    HfConfigJson,
}

/// Reads a `config.json` (by a `.json` extension) or a `spec.toml` (anything else).
pub fn load_spec(path: &Path) -> Result<LoadedSpec, FileError> {
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if is_json {
        let src = files::read_to_string(path)?;
        let model_type = serde_json::from_str::<serde_json::Value>(&src)
            .ok()
            .and_then(|v| v.get("model_type")?.as_str().map(str::to_string));
        if model_type.is_some_and(|t| families::reads(&t)) {
            let (spec, model_type) = families::parse(path, &src)?;
            return Ok(LoadedSpec {
                spec,
                name: Some(model_type),
                format: SpecFormat::HfConfigJson,
            });
        }
        let cfg = HfConfig::parse(path, &src)?;
        Ok(LoadedSpec {
            spec: cfg.spec,
            name: Some(cfg.model_type.name().to_string()),
            format: SpecFormat::HfConfigJson,
        })
    } else {
        let file = SpecFile::load(path)?;
        Ok(LoadedSpec {
            spec: file.model,
            name: file.name,
            format: SpecFormat::SpecToml,
        })
    }
}

/// [`load_spec`] for a knowledge edit (`tailor measure --edit`): its layer and passes are
/// the uniform dense stack's, so a spec with anything else is refused, naming what it has.
/// Every other command reads specs with [`load_spec`].
pub fn load_dense_spec(path: &Path) -> Result<LoadedSpec, FileError> {
    let loaded = load_spec(path)?;
    match loaded.spec.beyond_dense() {
        None => Ok(loaded),
        Some(what) => Err(FileError::Invalid {
            path: path.to_path_buf(),
            line: None,
            key: match loaded.format {
                SpecFormat::SpecToml => "model.stack",
                SpecFormat::HfConfigJson => "model_type",
            }
            .into(),
            message: format!(
                "the spec has {what}; a knowledge edit is priced and timed on the uniform dense \
                 stack only so far (predict, measure, validate and search take this spec \
                 without --edit)"
            ),
        }),
    }
}
