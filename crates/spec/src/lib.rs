//! The model spec: the architecture tailor searches over, with exact accounting.
//!
//! - [`ModelSpec`]: a Llama/PhoneLM-family decoder and its validation rules.
//! - Accounting ([`ModelSpec::params`], [`ModelSpec::operators`], ...): parameters exact
//!   to the unit, FLOPs of a prefill or a decode step, bytes per operator and per dtype.
//! - Formats: tailor's `spec.toml` ([`SpecFile`]) and Hugging Face `config.json`
//!   ([`HfConfig`]).
//! - [`files`]: errors that name file, line and key; atomic writes. Shared by every crate.
//!
//! This crate depends on no other tailor crate and does no I/O beyond reading and writing
//! the files it is asked to.

pub mod accounting;
pub mod dtype;
pub mod files;
pub mod hf;
pub mod model;
pub mod spec_file;
pub mod summary;

pub use accounting::{
    Component, OpAccount, OpGroup, OpKind, ParamCounts, PassTotals, Phase, TensorInfo,
};
pub use dtype::{DType, Precision};
pub use files::FileError;
pub use hf::{HfConfig, ModelType, Unsupported};
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
        let cfg = HfConfig::load(path)?;
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
