//! The layers of a model, one by one: each is a *mixer* (what moves information between
//! positions) and an *FFN* (or none).
//!
//! A [`crate::ModelSpec`] without a [`Stack`] is the uniform dense stack: `num_layers`
//! layers of global RoPE attention (grouped-query) and one FFN, all alike. A [`Stack`]
//! describes anything else: layer kinds (named, each a mixer and an FFN whose unset fields
//! take the model's) and a pattern of kind names that expands to the layer list. This module
//! holds the types; a stack is resolved against its model's defaults in `model/stack.rs`.
//!
//! ```toml
//! [model.stack]
//! layout = "lfm2"                    # how the family names tensors and places norms
//! pattern = ["conv", "conv", "attn"] # repeated, cut at num_layers
//! at = { attn = [2, 5, 8, 10, 12, 14] } # optional: kinds at explicit indices win
//!
//! [model.stack.kinds.conv]
//! mixer = "short_conv"
//! kernel = 3
//!
//! [model.stack.kinds.attn]
//! mixer = "attention"  # heads, kv_heads, head_dim default to the model's
//! qk_norm = true
//! ```

use crate::primitives::{Activation, FfnKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Largest accepted convolution kernel and sliding window.
pub const MAX_KERNEL: u64 = 64;

/// How a family names its tensors and where it places its norms. The parameter count of a
/// layer depends on the layout only through its norms (Gemma 3's four per layer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// Llama, Qwen2/3, SmolLM3, Qwen3.5: `input_layernorm`, `self_attn.{q,k,v,o}_proj`,
    /// `self_attn.{q,k}_norm`, `post_attention_layernorm`, `mlp.{gate,up,down}_proj`,
    /// `linear_attn.*` for Gated DeltaNet, final `model.norm`.
    Llama,
    /// Gemma 3: Llama's names plus a norm after each block (`post_attention_layernorm`
    /// after the mixer, `pre_feedforward_layernorm` / `post_feedforward_layernorm` around
    /// the FFN): four norms per layer.
    Gemma3,
    /// LFM2: `operator_norm`, `self_attn.out_proj`, `self_attn.{q,k}_layernorm`,
    /// `conv.{in_proj,conv,out_proj}`, `ffn_norm`, `feed_forward.{w1,w3,w2}`, final
    /// `model.embedding_norm`.
    Lfm2,
}

impl Layout {
    pub const ALL: &'static [Layout] = &[Layout::Llama, Layout::Gemma3, Layout::Lfm2];

    pub fn name(self) -> &'static str {
        match self {
            Layout::Llama => "llama",
            Layout::Gemma3 => "gemma3",
            Layout::Lfm2 => "lfm2",
        }
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Self-attention of one layer (grouped-query; head_dim independent of hidden/heads).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Attention {
    pub heads: u64,
    pub kv_heads: u64,
    pub head_dim: u64,
    /// Rotary position embedding (false: NoPE, as SmolLM3's every 4th layer).
    pub rope: bool,
    /// RMSNorm of each query and key head (`head_dim` parameters each): Qwen3, Gemma 3.
    pub qk_norm: bool,
    /// A sigmoid gate on the attention output, projected with the query (Qwen3.5): the
    /// query projection is twice as wide.
    pub output_gate: bool,
    /// Keys a query sees: `None` for global attention, `Some(W)` for a sliding window
    /// (the query and the `W - 1` before it), which caps the KV cache at `W` entries.
    pub window: Option<u64>,
    pub qkv_bias: bool,
    pub o_bias: bool,
}

impl Attention {
    pub fn q_width(&self) -> u64 {
        self.heads * self.head_dim
    }
    pub fn kv_width(&self) -> u64 {
        self.kv_heads * self.head_dim
    }
    /// Keys one query at 1-based position `position` attends to.
    pub fn keys_at(&self, position: u64) -> u64 {
        self.window.map_or(position, |w| position.min(w))
    }
    /// Query-key pairs (per head) of a causal prefill of `tokens` tokens.
    pub fn prefill_pairs(&self, tokens: u64) -> u64 {
        match self.window {
            Some(w) if tokens > w => w * (w + 1) / 2 + (tokens - w) * w,
            _ => tokens * (tokens + 1) / 2,
        }
    }
}

/// LFM2's gated short convolution: `in_proj` to `3 x hidden` (B, C, x), `B * x`, a
/// depthwise causal convolution of `kernel` taps, `C *` that, `out_proj`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShortConv {
    pub kernel: u64,
    /// Biases on `in_proj`, the convolution and `out_proj` together (LFM2's `conv_bias`).
    pub bias: bool,
}

/// Gated DeltaNet linear attention (Qwen3.5): projections to q, k, v (through a short
/// depthwise convolution), z (output gate), a and b (decay and write strength); a
/// `value_heads x key_head_dim x value_head_dim` recurrent state instead of a KV cache;
/// a gated RMSNorm one value head wide; `out_proj`. No biases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinearAttention {
    pub key_heads: u64,
    pub value_heads: u64,
    pub key_head_dim: u64,
    pub value_head_dim: u64,
    pub conv_kernel: u64,
}

impl LinearAttention {
    pub fn key_width(&self) -> u64 {
        self.key_heads * self.key_head_dim
    }
    pub fn value_width(&self) -> u64 {
        self.value_heads * self.value_head_dim
    }
    /// Channels of the short convolution: q, k and v.
    pub fn conv_channels(&self) -> u64 {
        2 * self.key_width() + self.value_width()
    }
}

/// What mixes information between positions in one layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mixer {
    Attention(Attention),
    ShortConv(ShortConv),
    LinearAttention(LinearAttention),
    /// No mixer: an FFN-only layer (MobileLLM-Flash's attention skips).
    None,
}

impl Mixer {
    pub fn kind(&self) -> MixerKind {
        match self {
            Mixer::Attention(_) => MixerKind::Attention,
            Mixer::ShortConv(_) => MixerKind::ShortConv,
            Mixer::LinearAttention(_) => MixerKind::LinearAttention,
            Mixer::None => MixerKind::None,
        }
    }
}

/// The FFN of one layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ffn {
    pub kind: FfnKind,
    pub width: u64,
    pub activation: Activation,
    pub bias: bool,
}

/// One layer: a mixer and an FFN (either may be absent, not both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Layer {
    pub mixer: Mixer,
    pub ffn: Option<Ffn>,
}

/// The kind of a mixer, as written in files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MixerKind {
    Attention,
    ShortConv,
    LinearAttention,
    None,
}

impl MixerKind {
    pub fn name(self) -> &'static str {
        match self {
            MixerKind::Attention => "attention",
            MixerKind::ShortConv => "short_conv",
            MixerKind::LinearAttention => "linear_attention",
            MixerKind::None => "none",
        }
    }
}

impl fmt::Display for MixerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The FFN of a layer kind as written: one of the model's kinds, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FfnChoice {
    Gated,
    Plain,
    None,
}

/// A layer kind as written in a spec file: a mixer and its settings; every unset field
/// takes the model's value (heads, kv heads, head_dim, biases, FFN kind and width).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerKind {
    pub mixer: Option<MixerKind>,
    // Attention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heads: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_heads: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qk_norm: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_gate: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<u64>,
    // Short convolution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conv_bias: Option<bool>,
    // Linear attention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_heads: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_heads: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_head_dim: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_head_dim: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conv_kernel: Option<u64>,
    // FFN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ffn: Option<FfnChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ffn_width: Option<u64>,
}

/// A stack of layers that is not the uniform dense one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stack {
    pub layout: Layout,
    /// Kind names, repeated and cut at `num_layers` (`["local", "local", "global"]`), or
    /// the whole list.
    pub pattern: Vec<String>,
    /// Kinds at explicit 0-based layer indices, over the pattern (LFM2's
    /// `full_attn_idxs`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub at: BTreeMap<String, Vec<u64>>,
    pub kinds: BTreeMap<String, LayerKind>,
}

/// A rule a stack breaks: the dotted key under `model.` and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackInvalid {
    pub key: String,
    pub message: String,
}

impl Stack {
    /// The kind name of every layer, in order.
    pub fn kind_names(&self, num_layers: u64) -> Vec<&str> {
        let mut names: Vec<&str> = (0..num_layers as usize)
            .map(|i| {
                self.pattern
                    .get(i % self.pattern.len().max(1))
                    .map_or("", String::as_str)
            })
            .collect();
        for (kind, indices) in &self.at {
            for &i in indices {
                if let Some(slot) = names.get_mut(i as usize) {
                    *slot = kind;
                }
            }
        }
        names
    }
}

/// The attention mixers of `layers`, in order.
pub fn attentions(layers: &[Layer]) -> Vec<Attention> {
    layers
        .iter()
        .filter_map(|l| match l.mixer {
            Mixer::Attention(a) => Some(a),
            _ => None,
        })
        .collect()
}

/// The short convolutions of `layers`, in order.
pub fn short_convs(layers: &[Layer]) -> Vec<ShortConv> {
    layers
        .iter()
        .filter_map(|l| match l.mixer {
            Mixer::ShortConv(c) => Some(c),
            _ => None,
        })
        .collect()
}

/// The linear-attention mixers of `layers`, in order.
pub fn linear_attentions(layers: &[Layer]) -> Vec<LinearAttention> {
    layers
        .iter()
        .filter_map(|l| match l.mixer {
            Mixer::LinearAttention(x) => Some(x),
            _ => None,
        })
        .collect()
}

impl Mixer {
    /// One letter per layer kind for a picture of the stack: `A` global attention, `S`
    /// sliding-window attention, `N` attention without RoPE, `C` short convolution, `L`
    /// linear attention, `F` FFN only.
    pub fn letter(&self) -> char {
        match self {
            Mixer::Attention(a) if a.window.is_some() => 'S',
            Mixer::Attention(a) if !a.rope => 'N',
            Mixer::Attention(_) => 'A',
            Mixer::ShortConv(_) => 'C',
            Mixer::LinearAttention(_) => 'L',
            Mixer::None => 'F',
        }
    }
}

impl fmt::Display for Mixer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mixer::Attention(a) => {
                let kind = match a.window {
                    Some(w) => format!("sliding-window ({w}) attention"),
                    None => "global attention".into(),
                };
                write!(
                    f,
                    "{kind}, {} heads / {} kv, head_dim {}",
                    a.heads, a.kv_heads, a.head_dim
                )?;
                for (on, what) in [
                    (a.qk_norm, ", q/k norm"),
                    (a.output_gate, ", output gate"),
                    (!a.rope, ", no RoPE"),
                ] {
                    if on {
                        f.write_str(what)?;
                    }
                }
                Ok(())
            }
            Mixer::ShortConv(c) => write!(
                f,
                "gated short conv, kernel {}{}",
                c.kernel,
                if c.bias { ", biases" } else { "" }
            ),
            Mixer::LinearAttention(l) => write!(
                f,
                "gated delta-net linear attention, {} key / {} value heads of {} / {}, conv {}",
                l.key_heads, l.value_heads, l.key_head_dim, l.value_head_dim, l.conv_kernel
            ),
            Mixer::None => f.write_str("no mixer"),
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.mixer)?;
        match self.ffn {
            Some(ffn) => write!(f, "; {} {} FFN {}", ffn.kind, ffn.activation, ffn.width),
            None => f.write_str("; no FFN"),
        }
    }
}
