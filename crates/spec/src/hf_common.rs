//! What the `config.json` readers and writers of every family share, Llama's ([`crate::hf`])
//! and the others' ([`crate::families`]): the error that names what a `model_type` cannot
//! express, and the config.json key of a spec field.

/// A spec that a `model_type` cannot express.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("model_type {model_type} cannot express `{key}`: {message}")]
pub struct Unsupported {
    /// The `model_type` written (`llama`, `lfm2`, ...).
    pub model_type: &'static str,
    pub key: &'static str,
    pub message: String,
}

/// The config.json key of a spec field.
pub(crate) fn hf_key(spec_key: &str) -> &str {
    match spec_key {
        "num_layers" => "num_hidden_layers",
        "num_heads" => "num_attention_heads",
        "num_kv_heads" => "num_key_value_heads",
        "norm_eps" => "rms_norm_eps",
        "tie_embeddings" => "tie_word_embeddings",
        other => other,
    }
}
