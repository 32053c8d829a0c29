//! tailor's own `spec.toml`.
//!
//! ```toml
//! format_version = 1
//! name = "PhoneLM-0.5B"            # optional
//! source = "mllmTeam/PhoneLM-0.5B"  # optional, free text
//!
//! [model]
//! vocab_size = 49152
//! hidden_size = 1024
//! # ... every field of ModelSpec
//! ```

use crate::files::{self, FileError};
use crate::model::ModelSpec;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The `format_version` this build reads and writes.
pub const SPEC_FORMAT_VERSION: u32 = 1;

/// Contents of a `spec.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecFile {
    pub format_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub model: ModelSpec,
}

impl SpecFile {
    pub fn new(model: ModelSpec) -> Self {
        Self {
            format_version: SPEC_FORMAT_VERSION,
            name: None,
            source: None,
            model,
        }
    }

    /// Parses and validates; `path` only names the file in errors.
    pub fn parse(path: &Path, src: &str) -> Result<Self, FileError> {
        let file: SpecFile = files::parse_versioned(path, src)?;
        file.model.validate().map_err(|e| {
            FileError::invalid_toml(path, src, &format!("model.{}", e.key), e.message)
        })?;
        Ok(file)
    }

    pub fn load(path: &Path) -> Result<Self, FileError> {
        Self::parse(path, &files::read_to_string(path)?)
    }

    /// The file's text, or why it cannot be written as TOML.
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        files::to_toml(self)
    }

    pub fn save(&self, path: &Path) -> Result<(), FileError> {
        files::save_toml(path, self)
    }
}

impl files::Versioned for SpecFile {
    const FORMAT_VERSION: u32 = SPEC_FORMAT_VERSION;
    const KIND: &'static str = "spec files";
    fn format_version(&self) -> u32 {
        self.format_version
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Activation, FfnKind, NormKind};
    use proptest::prelude::*;
    use std::path::PathBuf;

    fn p() -> PathBuf {
        PathBuf::from("my/spec.toml")
    }

    #[test]
    fn round_trip_keeps_every_field() {
        let mut model = ModelSpec::llama(49152, 1024, 24, 16, 4, 4864);
        model.head_dim = Some(64);
        model.qkv_bias = true;
        model.rope_theta = 500_000.0;
        model.norm_eps = 1e-6;
        let file = SpecFile {
            name: Some("x".into()),
            source: Some("test".into()),
            ..SpecFile::new(model)
        };
        let text = file.to_toml().unwrap();
        let back = SpecFile::parse(&p(), &text).unwrap();
        assert_eq!(back, file);
        assert_eq!(back.to_toml().unwrap(), text);
    }

    #[test]
    fn optional_fields_default() {
        let src = "format_version = 1\n[model]\nvocab_size = 100\nhidden_size = 64\nnum_layers = 2\n\
                   num_heads = 4\nnum_kv_heads = 4\nintermediate_size = 128\nffn = \"plain\"\n\
                   activation = \"gelu_tanh\"\nnorm = \"layernorm\"\ntie_embeddings = true\n";
        let f = SpecFile::parse(&p(), src).unwrap();
        assert_eq!(f.model.ffn, FfnKind::Plain);
        assert_eq!(f.model.activation, Activation::GeluTanh);
        assert_eq!(f.model.norm, NormKind::LayerNorm);
        assert_eq!(f.model.rope_theta, 10_000.0);
        assert_eq!(f.model.head_dim, None);
    }

    fn err(src: &str) -> String {
        SpecFile::parse(&p(), src).unwrap_err().to_string()
    }

    const GOOD: &str = "format_version = 1\n[model]\nvocab_size = 100\nhidden_size = 64\nnum_layers = 2\n\
                        num_heads = 4\nnum_kv_heads = 4\nintermediate_size = 128\nffn = \"gated\"\n\
                        activation = \"silu\"\nnorm = \"rmsnorm\"\ntie_embeddings = true\n";

    #[test]
    fn malformed_toml_names_file_and_line() {
        let e = err("format_version = 1\n[model\n");
        assert!(e.starts_with("my/spec.toml:2:"), "{e}");
    }

    #[test]
    fn unknown_key_named_with_line() {
        let e = err(&GOOD.replace("num_layers = 2", "num_layer = 2"));
        assert!(e.starts_with("my/spec.toml:5:"), "{e}");
        assert!(e.contains("unknown field `num_layer`"), "{e}");
    }

    #[test]
    fn missing_key_named() {
        let e = err(&GOOD.replace("hidden_size = 64\n", ""));
        assert!(e.contains("missing field `hidden_size`"), "{e}");
    }

    #[test]
    fn wrong_type_and_bad_enum_named() {
        let e = err(&GOOD.replace("num_layers = 2", "num_layers = \"two\""));
        assert!(e.starts_with("my/spec.toml:5:"), "{e}");
        let e = err(&GOOD.replace("\"silu\"", "\"swishy\""));
        assert!(e.starts_with("my/spec.toml:10:"), "{e}");
        assert!(
            e.contains("relu") && e.contains("gelu_tanh"),
            "lists the choices: {e}"
        );
        let e = err(&GOOD.replace("num_layers = 2", "num_layers = -2"));
        assert!(e.starts_with("my/spec.toml:5:"), "{e}");
    }

    #[test]
    fn rule_violation_names_key_and_line() {
        let e = err(&GOOD.replace("num_kv_heads = 4", "num_kv_heads = 3"));
        assert!(
            e.starts_with("my/spec.toml:7: `model.num_kv_heads`:"),
            "{e}"
        );
        let e = err(&GOOD.replace("format_version = 1", "format_version = 7"));
        assert!(
            e.starts_with("my/spec.toml:1: `format_version`: version 7"),
            "{e}"
        );
    }

    fn arb_spec() -> impl Strategy<Value = ModelSpec> {
        (
            1u64..300_000,
            1u64..64,
            1u64..16,
            prop::sample::select(vec![1u64, 2, 4, 8]),
            1u64..20_000,
            prop::sample::select(Activation::ALL.to_vec()),
            prop::bool::ANY,
            prop::bool::ANY,
            prop::option::of(1u64..128),
        )
            .prop_map(
                |(vocab, heads_kv, layers, group, ffn, act, tied, bias, hd)| {
                    let heads = heads_kv * group;
                    let mut s = ModelSpec::llama(vocab, heads * 64, layers, heads, heads_kv, ffn);
                    s.activation = act;
                    s.tie_embeddings = tied;
                    s.qkv_bias = bias;
                    s.head_dim = hd.map(|d| d * 2);
                    s.norm_eps = 1e-6;
                    s
                },
            )
    }

    proptest! {
        #[test]
        fn every_valid_spec_round_trips(spec in arb_spec()) {
            prop_assume!(spec.validate().is_ok());
            let file = SpecFile::new(spec);
            let back = SpecFile::parse(&p(), &file.to_toml().unwrap()).unwrap();
            prop_assert_eq!(back, file);
        }
    }
}
