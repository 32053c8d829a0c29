//! Storage types and their exact byte counts.

use serde::{Deserialize, Serialize};
use std::fmt;

/// How a tensor is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DType {
    F32,
    F16,
    Bf16,
    /// One byte per weight (per-tensor scale, negligible and not counted).
    Int8,
    /// GGML's Q4_0: blocks of 32 weights along a row, each 16 bytes of nibbles and an f16
    /// scale, so 18 bytes per 32 weights. A row whose length is not a multiple of 32 is
    /// padded to whole blocks.
    Q4_0,
    /// GGML's Q8_0: blocks of 32 weights along a row, each 32 signed bytes and an f16
    /// scale, so 34 bytes per 32 weights (padded to whole blocks as Q4_0).
    Q8_0,
}

impl DType {
    pub const ALL: &'static [DType] = &[
        DType::F32,
        DType::F16,
        DType::Bf16,
        DType::Int8,
        DType::Q4_0,
        DType::Q8_0,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::Bf16 => "bf16",
            DType::Int8 => "int8",
            DType::Q4_0 => "q4_0",
            DType::Q8_0 => "q8_0",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|d| d.name() == name)
    }

    /// Whether this is a block/integer quantisation (as opposed to a float format).
    pub fn is_quantized(self) -> bool {
        matches!(self, DType::Int8 | DType::Q4_0 | DType::Q8_0)
    }

    /// Bytes of a dense vector of `n` elements of a float type; for quantised types, the
    /// bytes of one row of `n` weights.
    pub fn row_bytes(self, n: u64) -> u64 {
        match self {
            DType::F32 => 4 * n,
            DType::F16 | DType::Bf16 => 2 * n,
            DType::Int8 => n,
            DType::Q4_0 => n.div_ceil(32) * 18,
            DType::Q8_0 => n.div_ceil(32) * 34,
        }
    }

    /// Bytes of a stored tensor of this shape. Quantised types apply to matrices only:
    /// vectors (norm weights, biases) stay f32, as llama.cpp and mllm store them.
    pub fn tensor_bytes(self, shape: &[u64]) -> u64 {
        match shape {
            [] => 0,
            [n] if self.is_quantized() => DType::F32.row_bytes(*n),
            [n] => self.row_bytes(*n),
            [rest @ .., cols] => rest.iter().product::<u64>() * self.row_bytes(*cols),
        }
    }

    /// Bytes per element for activations and caches (quantised types are not used there;
    /// int8 counts 1 byte, q4_0 its block average of 0.5625).
    pub fn bytes_per_element(self) -> f64 {
        match self {
            DType::F32 => 4.0,
            DType::F16 | DType::Bf16 => 2.0,
            DType::Int8 => 1.0,
            DType::Q4_0 => 18.0 / 32.0,
            DType::Q8_0 => 34.0 / 32.0,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Storage types of one inference setup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Precision {
    /// Weights (embedding, projections, LM head).
    pub weights: DType,
    /// Key/value cache entries.
    pub kv_cache: DType,
    /// Activations between operators.
    pub activations: DType,
}

impl Precision {
    /// The usual pairing for a weight type: float weights run with activations and KV cache
    /// of the same type; quantised weights (llama.cpp, mllm) with f32 activations and an
    /// f16 KV cache.
    pub fn for_weights(weights: DType) -> Self {
        if weights.is_quantized() {
            Self {
                weights,
                kv_cache: DType::F16,
                activations: DType::F32,
            }
        } else {
            Self {
                weights,
                kv_cache: weights,
                activations: weights,
            }
        }
    }

    /// Bytes of one activation/cache element, rounded to whole bytes (f16/bf16 = 2, ...).
    pub fn act_bytes(&self) -> u64 {
        self.activations.bytes_per_element().ceil() as u64
    }

    /// Bytes of `n` KV-cache elements.
    pub fn kv_bytes(&self, n: u64) -> u64 {
        self.kv_cache.row_bytes(n)
    }
}

impl Default for Precision {
    fn default() -> Self {
        Self::for_weights(DType::F32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts() {
        assert_eq!(DType::F32.tensor_bytes(&[10, 64]), 2560);
        assert_eq!(DType::Bf16.tensor_bytes(&[10, 64]), 1280);
        assert_eq!(DType::Int8.tensor_bytes(&[10, 64]), 640);
        // 64 weights = 2 blocks = 36 bytes per row.
        assert_eq!(DType::Q4_0.tensor_bytes(&[10, 64]), 360);
        // 33 weights pad to 2 blocks.
        assert_eq!(DType::Q4_0.tensor_bytes(&[1, 33]), 36);
        assert_eq!(DType::Q8_0.tensor_bytes(&[10, 64]), 680);
        assert_eq!(DType::Q8_0.tensor_bytes(&[64]), 256);
        // Vectors stay f32 under quantisation.
        assert_eq!(DType::Q4_0.tensor_bytes(&[64]), 256);
        assert_eq!(DType::F16.tensor_bytes(&[64]), 128);
    }

    #[test]
    fn names_round_trip() {
        for d in DType::ALL {
            assert_eq!(DType::from_name(d.name()), Some(*d));
        }
    }
}
