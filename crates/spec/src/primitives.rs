//! The values a spec is built of, below any layer or stack: the limits every size is
//! checked against, the FFN's shape and activation, and the norm.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Largest accepted width-like dimension (hidden size, attention width, FFN size).
/// Keeps every product of the accounting inside integer range; real models are far below.
pub const MAX_WIDTH: u64 = 1 << 20;
/// Largest accepted vocabulary.
pub const MAX_VOCAB: u64 = 1 << 24;
/// Largest accepted depth.
pub const MAX_LAYERS: u64 = 1 << 12;
/// Largest accepted number of attention heads.
pub const MAX_HEADS: u64 = 1 << 12;

/// Shape of the feed-forward block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FfnKind {
    /// `down(act(gate(x)) * up(x))`: Llama, PhoneLM, Qwen2 (three matrices).
    Gated,
    /// `down(act(up(x)))`: GPT-2, OPT (two matrices).
    Plain,
}

/// Activation of the FFN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Relu,
    Silu,
    /// Exact (erf) GELU.
    Gelu,
    /// The tanh approximation of GELU (`gelu_pytorch_tanh` in transformers).
    GeluTanh,
}

/// Normalisation layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NormKind {
    #[serde(rename = "rmsnorm")]
    RmsNorm,
    #[serde(rename = "layernorm")]
    LayerNorm,
}

macro_rules! names {
    ($ty:ty { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [$ty] = &[$(<$ty>::$variant),+];
            /// The name used in tailor's files and on the command line.
            pub fn name(self) -> &'static str {
                match self { $(<$ty>::$variant => $name),+ }
            }
            /// Parses [`Self::name`].
            pub fn from_name(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.name() == name)
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

names!(FfnKind { Gated => "gated", Plain => "plain" });
names!(Activation { Relu => "relu", Silu => "silu", Gelu => "gelu", GeluTanh => "gelu_tanh" });
names!(NormKind { RmsNorm => "rmsnorm", LayerNorm => "layernorm" });

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in Activation::ALL {
            assert_eq!(Activation::from_name(a.name()), Some(*a));
        }
        assert_eq!(NormKind::from_name("rmsnorm"), Some(NormKind::RmsNorm));
        assert_eq!(FfnKind::from_name("plain"), Some(FfnKind::Plain));
    }
}
