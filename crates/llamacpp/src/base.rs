//! What every GGUF file tailor writes shares, whatever its architecture (`llama` in
//! [`crate::model`], a stack's in [`crate::arch`]): the weight type of its matrices, the
//! error that names what cannot be written, and the metadata every architecture's file has.

use crate::gguf::{GgmlType, Value};
use serde::{Deserialize, Serialize};
use std::fmt;
use tailor_spec::{DType, ModelSpec};

/// The weight types llama.cpp runs that tailor writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightType {
    F32,
    F16,
    Q8_0,
    Q4_0,
}

impl WeightType {
    pub const ALL: [WeightType; 4] = [
        WeightType::F32,
        WeightType::F16,
        WeightType::Q8_0,
        WeightType::Q4_0,
    ];

    /// The weight type of a workload's `weights`, or why llama.cpp cannot run it.
    pub fn from_dtype(d: DType) -> Result<Self, Unsupported> {
        match d {
            DType::F32 => Ok(WeightType::F32),
            DType::F16 => Ok(WeightType::F16),
            DType::Q8_0 => Ok(WeightType::Q8_0),
            DType::Q4_0 => Ok(WeightType::Q4_0),
            DType::Bf16 | DType::Int8 => Err(Unsupported(format!(
                "weights `{d}` are not written for llama.cpp; use one of f32, f16, q8_0, q4_0"
            ))),
        }
    }

    pub fn dtype(self) -> DType {
        match self {
            WeightType::F32 => DType::F32,
            WeightType::F16 => DType::F16,
            WeightType::Q8_0 => DType::Q8_0,
            WeightType::Q4_0 => DType::Q4_0,
        }
    }

    pub fn ggml(self) -> GgmlType {
        match self {
            WeightType::F32 => GgmlType::F32,
            WeightType::F16 => GgmlType::F16,
            WeightType::Q8_0 => GgmlType::Q8_0,
            WeightType::Q4_0 => GgmlType::Q4_0,
        }
    }

    /// `general.file_type` (llama.cpp's `llama_ftype`: ALL_F32, MOSTLY_F16, MOSTLY_Q8_0,
    /// MOSTLY_Q4_0).
    pub fn file_type(self) -> u32 {
        match self {
            WeightType::F32 => 0,
            WeightType::F16 => 1,
            WeightType::Q8_0 => 7,
            WeightType::Q4_0 => 2,
        }
    }
}

impl fmt::Display for WeightType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.dtype().name())
    }
}

/// A spec that llama.cpp's `llama` architecture cannot express, with what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unsupported(pub String);

/// `v` as a GGUF u32, or an error naming `what`.
pub(crate) fn u32_of(what: &str, v: u64) -> Result<u32, Unsupported> {
    u32::try_from(v).map_err(|_| Unsupported(format!("{what} = {v} does not fit in GGUF")))
}

/// The keys every architecture's file has: `general.*`, and under the architecture's prefix
/// the vocabulary (read by llama.cpp's `none` tokenizer), context, width, depth, FFN width,
/// query heads, RoPE base and norm epsilon.
pub(crate) fn base_metadata(
    arch: &str,
    name: &str,
    weights: WeightType,
    spec: &ModelSpec,
    ffn_width: u64,
    heads: u64,
) -> Result<Vec<(String, Value)>, Unsupported> {
    let kv = |k: &str, v: Value| (format!("{arch}.{k}"), v);
    Ok(vec![
        ("general.architecture".into(), Value::String(arch.into())),
        ("general.name".into(), Value::String(name.into())),
        ("general.file_type".into(), Value::U32(weights.file_type())),
        kv(
            "vocab_size",
            Value::U32(u32_of("vocab_size", spec.vocab_size)?),
        ),
        kv(
            "context_length",
            Value::U32(u32_of(
                "max_position_embeddings",
                spec.max_position_embeddings,
            )?),
        ),
        kv(
            "embedding_length",
            Value::U32(u32_of("hidden_size", spec.hidden_size)?),
        ),
        kv(
            "block_count",
            Value::U32(u32_of("num_layers", spec.num_layers)?),
        ),
        kv(
            "feed_forward_length",
            Value::U32(u32_of("intermediate_size", ffn_width)?),
        ),
        kv(
            "attention.head_count",
            Value::U32(u32_of("num_heads", heads)?),
        ),
        kv("rope.freq_base", Value::F32(spec.rope_theta as f32)),
        kv(
            "attention.layer_norm_rms_epsilon",
            Value::F32(spec.norm_eps as f32),
        ),
    ])
}
