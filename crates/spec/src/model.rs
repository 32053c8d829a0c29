//! The architecture of a Llama/PhoneLM-family decoder and its validation.

mod stack;

pub use crate::primitives::{
    Activation, FfnKind, MAX_HEADS, MAX_LAYERS, MAX_VOCAB, MAX_WIDTH, NormKind,
};

use crate::layers::Stack;
use serde::{Deserialize, Serialize};

/// A decoder-only transformer, Llama/PhoneLM style: token embedding, `num_layers` blocks of
/// pre-norm attention (RoPE, grouped-query) and pre-norm FFN, a final norm and the LM head.
///
/// Construct it any way you like, then call [`ModelSpec::validate`]; every function of this
/// crate that reads a file returns validated specs only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub vocab_size: u64,
    pub hidden_size: u64,
    pub num_layers: u64,
    pub num_heads: u64,
    /// Key/value heads: equal to `num_heads` for MHA, 1 for MQA, a divisor between for GQA.
    pub num_kv_heads: u64,
    /// Per-head width. `None` means `hidden_size / num_heads`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<u64>,
    pub intermediate_size: u64,
    pub ffn: FfnKind,
    pub activation: Activation,
    pub norm: NormKind,
    /// Whether the LayerNorms carry a bias (RMSNorm never does).
    #[serde(default)]
    pub norm_bias: bool,
    #[serde(default = "default_norm_eps")]
    pub norm_eps: f64,
    /// Biases on the q, k and v projections (Qwen2 has them).
    #[serde(default)]
    pub qkv_bias: bool,
    /// Bias on the attention output projection.
    #[serde(default)]
    pub o_bias: bool,
    /// Biases on the FFN projections.
    #[serde(default)]
    pub mlp_bias: bool,
    /// LM head shares the token-embedding matrix.
    pub tie_embeddings: bool,
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f64,
    #[serde(default = "default_max_positions")]
    pub max_position_embeddings: u64,
    /// The layers one by one, when they are not `num_layers` alike dense layers (see
    /// [`crate::layers`]). The flat fields above are then the model's defaults, which each
    /// layer kind may override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<Stack>,
}

fn default_norm_eps() -> f64 {
    1e-5
}
fn default_rope_theta() -> f64 {
    10_000.0
}
fn default_max_positions() -> u64 {
    2048
}

/// A rule of [`ModelSpec::validate`] that a spec breaks: the key and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{key}`: {message}")]
pub struct Invalid {
    /// The field at fault (the spec.toml key under `model.`, dotted for a stack's keys).
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

fn invalid(key: &str, message: impl Into<String>) -> Invalid {
    Invalid {
        key: key.to_string(),
        message: message.into(),
    }
}

impl ModelSpec {
    /// A spec with Llama defaults for every field but the sizes: gated SiLU FFN, RMSNorm
    /// (eps 1e-5), no biases, untied head, RoPE theta 10000, 2048 positions, MHA.
    pub fn llama(
        vocab_size: u64,
        hidden_size: u64,
        num_layers: u64,
        num_heads: u64,
        num_kv_heads: u64,
        intermediate_size: u64,
    ) -> Self {
        Self {
            vocab_size,
            hidden_size,
            num_layers,
            num_heads,
            num_kv_heads,
            head_dim: None,
            intermediate_size,
            ffn: FfnKind::Gated,
            activation: Activation::Silu,
            norm: NormKind::RmsNorm,
            norm_bias: false,
            norm_eps: default_norm_eps(),
            qkv_bias: false,
            o_bias: false,
            mlp_bias: false,
            tie_embeddings: false,
            rope_theta: default_rope_theta(),
            max_position_embeddings: default_max_positions(),
            stack: None,
        }
    }

    /// Per-head width (explicit or `hidden_size / num_heads`).
    pub fn head_dim(&self) -> u64 {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_heads.max(1))
    }

    /// Width of the query projection output (`num_heads * head_dim`).
    pub fn q_width(&self) -> u64 {
        self.num_heads * self.head_dim()
    }

    /// Width of each of the key and value projection outputs (`num_kv_heads * head_dim`).
    pub fn kv_width(&self) -> u64 {
        self.num_kv_heads * self.head_dim()
    }

    /// Query heads that share one key/value head.
    pub fn gqa_group(&self) -> u64 {
        self.num_heads / self.num_kv_heads.max(1)
    }

    /// Checks every rule a buildable model must satisfy; the first broken one is returned.
    pub fn validate(&self) -> Result<(), Invalid> {
        let positive = [
            ("vocab_size", self.vocab_size, MAX_VOCAB),
            ("hidden_size", self.hidden_size, MAX_WIDTH),
            ("num_layers", self.num_layers, MAX_LAYERS),
            ("num_heads", self.num_heads, MAX_HEADS),
            ("num_kv_heads", self.num_kv_heads, MAX_HEADS),
            ("intermediate_size", self.intermediate_size, MAX_WIDTH),
            (
                "max_position_embeddings",
                self.max_position_embeddings,
                1 << 24,
            ),
        ];
        for (key, value, max) in positive {
            if value == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
            if value > max {
                return Err(invalid(
                    key,
                    format!("{value} is above the supported maximum {max}"),
                ));
            }
        }
        match self.head_dim {
            Some(0) => return Err(invalid("head_dim", "must be at least 1")),
            Some(d) if d > MAX_WIDTH => {
                return Err(invalid(
                    "head_dim",
                    format!("{d} is above the supported maximum {MAX_WIDTH}"),
                ));
            }
            Some(_) => {}
            None => {
                if !self.hidden_size.is_multiple_of(self.num_heads) {
                    let divisors = divisors_near(self.hidden_size, self.num_heads);
                    return Err(invalid(
                        "num_heads",
                        format!(
                            "{} heads do not divide hidden_size {} (head_dim would be {:.2}); \
                             use a divisor such as {divisors}, or set head_dim explicitly",
                            self.num_heads,
                            self.hidden_size,
                            self.hidden_size as f64 / self.num_heads as f64
                        ),
                    ));
                }
            }
        }
        if !self.num_heads.is_multiple_of(self.num_kv_heads) {
            let divisors = divisors_near(self.num_heads, self.num_kv_heads);
            return Err(invalid(
                "num_kv_heads",
                format!(
                    "{} key/value heads do not divide num_heads {}: each group of query heads \
                     must share one key/value head; use a divisor such as {divisors}",
                    self.num_kv_heads, self.num_heads
                ),
            ));
        }
        let head_dim = self.head_dim();
        if !head_dim.is_multiple_of(2) {
            return Err(invalid(
                "head_dim",
                format!(
                    "head_dim {head_dim} is odd; RoPE rotates pairs of channels, so it must be even"
                ),
            ));
        }
        if self.q_width() > MAX_WIDTH {
            return Err(invalid(
                "head_dim",
                format!(
                    "num_heads * head_dim = {} is above the supported maximum {MAX_WIDTH}",
                    self.q_width()
                ),
            ));
        }
        if self.norm_bias && self.norm == NormKind::RmsNorm {
            return Err(invalid(
                "norm_bias",
                "RMSNorm has no bias; set norm = \"layernorm\" or norm_bias = false",
            ));
        }
        if !(self.norm_eps.is_finite() && self.norm_eps > 0.0 && self.norm_eps < 1.0) {
            return Err(invalid(
                "norm_eps",
                format!(
                    "{} must be a positive number below 1 (typically 1e-5 or 1e-6)",
                    self.norm_eps
                ),
            ));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 0.0) {
            return Err(invalid(
                "rope_theta",
                format!(
                    "{} must be a positive number (typically 10000)",
                    self.rope_theta
                ),
            ));
        }
        if let Some(stack) = &self.stack {
            stack.validate(self).map_err(|e| Invalid {
                key: e.key,
                message: e.message,
            })?;
        }
        Ok(())
    }
}

/// Up to four divisors of `n` closest to `wanted`, for error messages.
fn divisors_near(n: u64, wanted: u64) -> String {
    let mut divisors: Vec<u64> = (1..=n.min(1 << 16))
        .filter(|d| n.is_multiple_of(*d))
        .collect();
    divisors.sort_by_key(|d| d.abs_diff(wanted));
    divisors.truncate(4);
    divisors.sort_unstable();
    divisors
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> ModelSpec {
        ModelSpec::llama(1000, 64, 2, 4, 2, 128)
    }

    #[test]
    fn valid_spec_passes() {
        assert_eq!(tiny().validate(), Ok(()));
    }

    #[test]
    fn heads_must_divide_hidden_unless_head_dim_given() {
        let mut s = tiny();
        s.num_heads = 6;
        s.num_kv_heads = 6;
        let err = s.validate().unwrap_err();
        assert_eq!(err.key, "num_heads");
        assert!(
            err.message.contains("do not divide hidden_size 64"),
            "{err}"
        );
        assert!(err.message.contains("4, 8"), "suggests divisors: {err}");
        s.head_dim = Some(16);
        assert_eq!(s.validate(), Ok(()));
        assert_eq!(s.q_width(), 96);
    }

    #[test]
    fn kv_heads_must_divide_heads() {
        let mut s = tiny();
        s.num_kv_heads = 3;
        let err = s.validate().unwrap_err();
        assert_eq!(err.key, "num_kv_heads");
        assert!(err.message.contains("do not divide num_heads 4"), "{err}");
    }

    #[test]
    fn every_size_positive() {
        for key in [
            "vocab_size",
            "hidden_size",
            "num_layers",
            "intermediate_size",
        ] {
            let mut s = tiny();
            match key {
                "vocab_size" => s.vocab_size = 0,
                "hidden_size" => s.hidden_size = 0,
                "num_layers" => s.num_layers = 0,
                _ => s.intermediate_size = 0,
            }
            let err = s.validate().unwrap_err();
            assert_eq!(err.key, key);
            assert_eq!(err.message, "must be at least 1");
        }
    }

    #[test]
    fn odd_head_dim_and_bad_floats_rejected() {
        let mut s = tiny();
        s.head_dim = Some(15);
        assert_eq!(s.validate().unwrap_err().key, "head_dim");
        let mut s = tiny();
        s.norm_eps = 0.0;
        assert_eq!(s.validate().unwrap_err().key, "norm_eps");
        let mut s = tiny();
        s.rope_theta = f64::NAN;
        assert_eq!(s.validate().unwrap_err().key, "rope_theta");
        let mut s = tiny();
        s.norm_bias = true;
        assert_eq!(s.validate().unwrap_err().key, "norm_bias");
        s.norm = NormKind::LayerNorm;
        assert_eq!(s.validate(), Ok(()));
    }
}
