//! Exact accounting of a spec: its tensors and parameters, and the operators of one
//! forward pass with their FLOPs and the bytes they read and write.
//!
//! Conventions (the same everywhere in tailor):
//! - A multiply-add is 2 FLOPs. `flops` counts matrix products only: the projections, the
//!   attention score (`q·k`) and value (`p·v`) products, and the LM head. Element-wise work
//!   (norms, RoPE, activation, residual adds, softmax) has `flops = 0`; it is memory-bound
//!   and is accounted by its bytes.
//! - Prefill of `P` tokens is causal: position `i` (1-based) attends to `i` keys, so the
//!   attention products cover `P(P+1)/2` query-key pairs per head.
//! - A decode step at context `C` runs one new token against a KV cache that already holds
//!   `C` tokens: it appends one entry and attends to `C + 1` keys.
//! - Logits are computed for the last position only (time to first token needs no more;
//!   llama.cpp and mllm do the same), so the final norm and the LM head run on one token
//!   in both phases.
//! - Bytes are the minimum traffic of a fused implementation: each operator reads its
//!   inputs and weights once and writes its outputs once; attention scores are not
//!   materialised.
//! - Mixed stacks: a sliding window of `W` caps the keys a query reads at `W`; a short
//!   convolution and the gates are element-wise (bytes only); linear attention's
//!   recurrence counts `6·d_k·d_v` FLOPs per token and value head (read, delta-rule write,
//!   read-out); recurrent and convolution states are f32 (docs/method.md, "Counting").

use crate::dtype::{DType, Precision};
use crate::layers::{Layer, Layout, Mixer};
use crate::model::{FfnKind, ModelSpec, NormKind};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a parameter tensor belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Component {
    Embedding,
    /// The norm before a layer's mixer (`input_layernorm`, LFM2's `operator_norm`).
    AttnNorm,
    Q,
    K,
    V,
    O,
    QNorm,
    KNorm,
    /// A short convolution's input projection (to B, C and x).
    ConvIn,
    /// A short convolution's depthwise kernel.
    Conv,
    ConvOut,
    /// Linear attention's input projections (q, k, v, the output gate z, a and b).
    LinearIn,
    /// Linear attention's short convolution over q, k and v.
    LinearConv,
    /// Linear attention's per-head decay parameters (`A_log`, `dt_bias`).
    LinearDecay,
    /// Linear attention's gated output norm.
    LinearNorm,
    LinearOut,
    /// Gemma 3's norm after the mixer (`post_attention_layernorm` in its layout).
    PostMixerNorm,
    FfnNorm,
    Gate,
    Up,
    Down,
    /// Gemma 3's norm after the FFN.
    PostFfnNorm,
    FinalNorm,
    LmHead,
}

impl Component {
    pub const ALL: &'static [Component] = &[
        Component::Embedding,
        Component::AttnNorm,
        Component::Q,
        Component::K,
        Component::V,
        Component::O,
        Component::QNorm,
        Component::KNorm,
        Component::ConvIn,
        Component::Conv,
        Component::ConvOut,
        Component::LinearIn,
        Component::LinearConv,
        Component::LinearDecay,
        Component::LinearNorm,
        Component::LinearOut,
        Component::PostMixerNorm,
        Component::FfnNorm,
        Component::Gate,
        Component::Up,
        Component::Down,
        Component::PostFfnNorm,
        Component::FinalNorm,
        Component::LmHead,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Component::Embedding => "embedding",
            Component::AttnNorm => "attn_norm",
            Component::Q => "q_proj",
            Component::K => "k_proj",
            Component::V => "v_proj",
            Component::O => "o_proj",
            Component::QNorm => "q_norm",
            Component::KNorm => "k_norm",
            Component::ConvIn => "conv_in_proj",
            Component::Conv => "conv",
            Component::ConvOut => "conv_out_proj",
            Component::LinearIn => "linear_in_proj",
            Component::LinearConv => "linear_conv",
            Component::LinearDecay => "linear_decay",
            Component::LinearNorm => "linear_norm",
            Component::LinearOut => "linear_out_proj",
            Component::PostMixerNorm => "post_mixer_norm",
            Component::FfnNorm => "ffn_norm",
            Component::Gate => "gate_proj",
            Component::Up => "up_proj",
            Component::Down => "down_proj",
            Component::PostFfnNorm => "post_ffn_norm",
            Component::FinalNorm => "final_norm",
            Component::LmHead => "lm_head",
        }
    }

    /// Whether this is a norm's weight (or bias).
    pub fn is_norm(self) -> bool {
        matches!(
            self,
            Component::AttnNorm
                | Component::QNorm
                | Component::KNorm
                | Component::LinearNorm
                | Component::PostMixerNorm
                | Component::FfnNorm
                | Component::PostFfnNorm
                | Component::FinalNorm
        )
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One stored parameter tensor (per layer tensors are listed once with `repeats` = layers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorInfo {
    /// Hugging Face name; `{i}` stands for the layer index.
    pub name: String,
    pub component: Component,
    /// `[out, in]` for a weight matrix, `[n]` for a vector.
    pub shape: Vec<u64>,
    pub repeats: u64,
}

impl TensorInfo {
    pub fn numel(&self) -> u64 {
        self.shape.iter().product()
    }
}

/// Parameter counts of a spec, exact to the unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamCounts {
    pub total: u64,
    /// All but the token embedding and an untied LM head (the count scaling laws use).
    pub non_embedding: u64,
    /// The token-embedding matrix.
    pub embedding: u64,
    /// The LM head's own matrix: 0 when tied.
    pub lm_head: u64,
    /// Summed over all layers, by component, in [`Component::ALL`] order (zeros omitted).
    pub by_component: Vec<(Component, u64)>,
}

/// What a forward pass does: the one name for it in every crate (the accounting, the cost
/// models, what a llama.cpp probe is timed in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case", deny_unknown_fields)]
pub enum Phase {
    /// Process a prompt of `tokens` tokens from an empty cache.
    Prefill { tokens: u64 },
    /// One new token against a cache holding `context` tokens.
    Decode { context: u64 },
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Phase::Prefill { tokens } => write!(f, "prefill {tokens}"),
            Phase::Decode { context } => write!(f, "decode at {context}"),
        }
    }
}

impl Phase {
    /// Tokens that flow through the per-token operators.
    pub fn tokens(self) -> u64 {
        match self {
            Phase::Prefill { tokens } => tokens,
            Phase::Decode { .. } => 1,
        }
    }

    /// Keys each layer's attention reads (the cache after the append).
    pub fn keys(self) -> u64 {
        match self {
            Phase::Prefill { tokens } => tokens,
            Phase::Decode { context } => context + 1,
        }
    }

    /// Query-key pairs per head.
    pub fn attention_pairs(self) -> u64 {
        match self {
            Phase::Prefill { tokens } => tokens * (tokens + 1) / 2,
            Phase::Decode { context } => context + 1,
        }
    }
}

/// Kind of operator in the forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    /// Token-embedding gather.
    Embedding,
    /// RMSNorm or LayerNorm.
    Norm,
    /// A dense projection `y = x W^T (+ b)`.
    Linear,
    /// Rotary position embedding applied to q and k.
    Rope,
    /// Writing the new keys and values into the cache.
    KvAppend,
    /// Scores, causal softmax and weighted values (one fused operator).
    Attention,
    /// The FFN activation (times the up projection when gated).
    Activation,
    /// A residual add.
    Residual,
    /// A depthwise causal convolution over a few positions (a short convolution, or linear
    /// attention's over q, k and v), with its rolling state.
    Conv,
    /// Linear attention's recurrence (the delta-rule update of its state and the read-out).
    Recurrence,
    /// An element-wise gate (`sigmoid(g) * x`, or a short convolution's `B * x`, `C * y`).
    Gate,
}

/// Broad groups for breakdowns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpGroup {
    Attention,
    Ffn,
    LmHead,
    Other,
}

/// One operator of a forward pass; figures are per instance, the pass runs it `repeats` times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpAccount {
    pub name: &'static str,
    pub kind: OpKind,
    pub group: OpGroup,
    /// Instances per forward pass (the number of layers for per-layer operators).
    pub repeats: u64,
    /// Rows (tokens) the operator processes.
    pub tokens: u64,
    /// For linears: input and output features; for attention: query heads and head dim.
    pub dims: [u64; 2],
    pub params: u64,
    pub flops: u128,
    pub bytes_read: u128,
    pub bytes_written: u128,
}

impl OpAccount {
    pub fn total_flops(&self) -> u128 {
        self.flops * self.repeats as u128
    }

    pub fn total_bytes(&self) -> u128 {
        (self.bytes_read + self.bytes_written) * self.repeats as u128
    }
}

/// Totals of a forward pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassTotals {
    pub flops: u128,
    pub bytes_read: u128,
    pub bytes_written: u128,
}

/// A tensor visitor: `(component, name prefix, name suffix, shape, repeats)`.
type Visit<'a> = dyn FnMut(Component, &str, &str, &[u64], u64) + 'a;

/// The Hugging Face names of one layout's per-layer tensors (`{i}`: the layer index).
struct Names {
    mixer_norm: &'static str,
    q: &'static str,
    k: &'static str,
    v: &'static str,
    o: &'static str,
    q_norm: &'static str,
    k_norm: &'static str,
    post_mixer_norm: &'static str,
    ffn_norm: &'static str,
    gate: &'static str,
    up: &'static str,
    down: &'static str,
    post_ffn_norm: &'static str,
    final_norm: &'static str,
}

const LLAMA_NAMES: Names = Names {
    mixer_norm: "model.layers.{i}.input_layernorm",
    q: "model.layers.{i}.self_attn.q_proj",
    k: "model.layers.{i}.self_attn.k_proj",
    v: "model.layers.{i}.self_attn.v_proj",
    o: "model.layers.{i}.self_attn.o_proj",
    q_norm: "model.layers.{i}.self_attn.q_norm",
    k_norm: "model.layers.{i}.self_attn.k_norm",
    post_mixer_norm: "",
    ffn_norm: "model.layers.{i}.post_attention_layernorm",
    gate: "model.layers.{i}.mlp.gate_proj",
    up: "model.layers.{i}.mlp.up_proj",
    down: "model.layers.{i}.mlp.down_proj",
    post_ffn_norm: "",
    final_norm: "model.norm",
};

fn names(layout: Layout) -> Names {
    match layout {
        Layout::Llama => LLAMA_NAMES,
        Layout::Gemma3 => Names {
            post_mixer_norm: "model.layers.{i}.post_attention_layernorm",
            ffn_norm: "model.layers.{i}.pre_feedforward_layernorm",
            post_ffn_norm: "model.layers.{i}.post_feedforward_layernorm",
            ..LLAMA_NAMES
        },
        Layout::Lfm2 => Names {
            mixer_norm: "model.layers.{i}.operator_norm",
            o: "model.layers.{i}.self_attn.out_proj",
            q_norm: "model.layers.{i}.self_attn.q_layernorm",
            k_norm: "model.layers.{i}.self_attn.k_layernorm",
            ffn_norm: "model.layers.{i}.ffn_norm",
            gate: "model.layers.{i}.feed_forward.w1",
            up: "model.layers.{i}.feed_forward.w3",
            down: "model.layers.{i}.feed_forward.w2",
            final_norm: "model.embedding_norm",
            ..LLAMA_NAMES
        },
    }
}

/// Visits every parameter tensor without allocating for the dense stack: `(component, HF
/// name prefix, suffix, shape, repeats)`. `{i}` in a prefix stands for the index of each
/// layer of the group the tensor belongs to; layers of one kind are visited once, with
/// `repeats` their number.
fn for_each_tensor(spec: &ModelSpec, mut f: impl FnMut(Component, &str, &str, &[u64], u64)) {
    let (h, v) = (spec.hidden_size, spec.vocab_size);
    let n = names(spec.layout());
    let norm_bias = spec.norm == NormKind::LayerNorm && spec.norm_bias;
    let norm = |f: &mut Visit, c, prefix, width: u64, r| {
        f(c, prefix, "weight", &[width], r);
        if norm_bias {
            f(c, prefix, "bias", &[width], r);
        }
    };
    let linear = |f: &mut Visit, c, prefix, shape: [u64; 2], bias, r| {
        f(c, prefix, "weight", &shape, r);
        if bias {
            f(c, prefix, "bias", &shape[..1], r);
        }
    };
    f(
        Component::Embedding,
        "model.embed_tokens",
        "weight",
        &[v, h],
        1,
    );
    let layer = |f: &mut Visit, layer: &Layer, r: u64| {
        if layer.mixer != Mixer::None {
            norm(f, Component::AttnNorm, n.mixer_norm, h, r);
        }
        match layer.mixer {
            Mixer::Attention(a) => {
                let (qw, kvw) = (a.q_width(), a.kv_width());
                let q_out = if a.output_gate { 2 * qw } else { qw };
                linear(f, Component::Q, n.q, [q_out, h], a.qkv_bias, r);
                linear(f, Component::K, n.k, [kvw, h], a.qkv_bias, r);
                linear(f, Component::V, n.v, [kvw, h], a.qkv_bias, r);
                linear(f, Component::O, n.o, [h, qw], a.o_bias, r);
                if a.qk_norm {
                    norm(f, Component::QNorm, n.q_norm, a.head_dim, r);
                    norm(f, Component::KNorm, n.k_norm, a.head_dim, r);
                }
            }
            Mixer::ShortConv(c) => {
                linear(
                    f,
                    Component::ConvIn,
                    "model.layers.{i}.conv.in_proj",
                    [3 * h, h],
                    c.bias,
                    r,
                );
                f(
                    Component::Conv,
                    "model.layers.{i}.conv.conv",
                    "weight",
                    &[h, 1, c.kernel],
                    r,
                );
                if c.bias {
                    f(
                        Component::Conv,
                        "model.layers.{i}.conv.conv",
                        "bias",
                        &[h],
                        r,
                    );
                }
                linear(
                    f,
                    Component::ConvOut,
                    "model.layers.{i}.conv.out_proj",
                    [h, h],
                    c.bias,
                    r,
                );
            }
            Mixer::LinearAttention(l) => {
                let (c, vd, nv) = (l.conv_channels(), l.value_width(), l.value_heads);
                let p = |s| match s {
                    "qkv" => "model.layers.{i}.linear_attn.in_proj_qkv",
                    "z" => "model.layers.{i}.linear_attn.in_proj_z",
                    "b" => "model.layers.{i}.linear_attn.in_proj_b",
                    _ => "model.layers.{i}.linear_attn.in_proj_a",
                };
                f(Component::LinearIn, p("qkv"), "weight", &[c, h], r);
                f(Component::LinearIn, p("z"), "weight", &[vd, h], r);
                f(Component::LinearIn, p("b"), "weight", &[nv, h], r);
                f(Component::LinearIn, p("a"), "weight", &[nv, h], r);
                f(
                    Component::LinearConv,
                    "model.layers.{i}.linear_attn.conv1d",
                    "weight",
                    &[c, 1, l.conv_kernel],
                    r,
                );
                f(
                    Component::LinearDecay,
                    "model.layers.{i}.linear_attn",
                    "dt_bias",
                    &[nv],
                    r,
                );
                f(
                    Component::LinearDecay,
                    "model.layers.{i}.linear_attn",
                    "A_log",
                    &[nv],
                    r,
                );
                f(
                    Component::LinearNorm,
                    "model.layers.{i}.linear_attn.norm",
                    "weight",
                    &[l.value_head_dim],
                    r,
                );
                f(
                    Component::LinearOut,
                    "model.layers.{i}.linear_attn.out_proj",
                    "weight",
                    &[h, vd],
                    r,
                );
            }
            Mixer::None => {}
        }
        if layer.mixer != Mixer::None && !n.post_mixer_norm.is_empty() {
            norm(f, Component::PostMixerNorm, n.post_mixer_norm, h, r);
        }
        if let Some(ffn) = layer.ffn {
            let ff = ffn.width;
            norm(f, Component::FfnNorm, n.ffn_norm, h, r);
            if ffn.kind == FfnKind::Gated {
                linear(f, Component::Gate, n.gate, [ff, h], ffn.bias, r);
            }
            linear(f, Component::Up, n.up, [ff, h], ffn.bias, r);
            linear(f, Component::Down, n.down, [h, ff], ffn.bias, r);
            if !n.post_ffn_norm.is_empty() {
                norm(f, Component::PostFfnNorm, n.post_ffn_norm, h, r);
            }
        }
    };
    spec.for_each_layer_group(|l, r| layer(&mut f, l, r));
    norm(&mut f, Component::FinalNorm, n.final_norm, h, 1);
    if !spec.tie_embeddings {
        f(Component::LmHead, "lm_head", "weight", &[v, h], 1);
    }
}

impl ModelSpec {
    /// Every parameter tensor, with Hugging Face names.
    pub fn tensors(&self) -> Vec<TensorInfo> {
        let mut out = Vec::new();
        for_each_tensor(self, |component, prefix, suffix, shape, repeats| {
            out.push(TensorInfo {
                name: format!("{prefix}.{suffix}"),
                component,
                shape: shape.to_vec(),
                repeats,
            })
        });
        out
    }

    /// Parameter counts, exact.
    pub fn params(&self) -> ParamCounts {
        let mut by = [0u64; Component::ALL.len()];
        for_each_tensor(self, |c, _, _, shape, repeats| {
            by[c as usize] += shape.iter().product::<u64>() * repeats;
        });
        let total = by.iter().sum();
        let embedding = by[Component::Embedding as usize];
        let lm_head = by[Component::LmHead as usize];
        ParamCounts {
            total,
            non_embedding: total - embedding - lm_head,
            embedding,
            lm_head,
            by_component: Component::ALL
                .iter()
                .map(|&c| (c, by[c as usize]))
                .filter(|&(_, n)| n > 0)
                .collect(),
        }
    }

    /// Total parameters (as [`ModelSpec::params`], without the breakdown).
    pub fn total_params(&self) -> u64 {
        self.param_totals().0
    }

    /// `(total, non_embedding)` parameters without allocating.
    pub fn param_totals(&self) -> (u64, u64) {
        let (mut total, mut embedding) = (0, 0);
        for_each_tensor(self, |c, _, _, shape, r| {
            let n = shape.iter().product::<u64>() * r;
            total += n;
            if matches!(c, Component::Embedding | Component::LmHead) {
                embedding += n;
            }
        });
        (total, total - embedding)
    }

    /// Bytes of all weights stored as `dtype` (vectors stay f32 under quantisation).
    pub fn weight_bytes(&self, dtype: DType) -> u64 {
        let mut n = 0;
        for_each_tensor(self, |_, _, _, shape, r| n += dtype.tensor_bytes(shape) * r);
        n
    }

    /// KV-cache bytes one token adds to the global attention layers (keys and values). A
    /// sliding-window layer's cache stops growing at its window, and short convolutions and
    /// linear attention keep a constant state: see [`ModelSpec::kv_cache_bytes`] and
    /// [`ModelSpec::state_bytes`].
    pub fn kv_cache_bytes_per_token(&self, kv: DType) -> u64 {
        let mut n = 0;
        self.for_each_layer_group(|layer, r| {
            if let Mixer::Attention(a) = layer.mixer
                && a.window.is_none()
            {
                n += r * 2 * kv.row_bytes(a.kv_width());
            }
        });
        n
    }

    /// KV-cache bytes for `context` tokens: each attention layer holds `context` entries,
    /// or its window's if fewer.
    pub fn kv_cache_bytes(&self, kv: DType, context: u64) -> u64 {
        let mut n = 0;
        self.for_each_layer_group(|layer, r| {
            if let Mixer::Attention(a) = layer.mixer {
                n += r * 2 * kv.row_bytes(a.kv_width()) * a.keys_at(context);
            }
        });
        n
    }

    /// Bytes of the per-sequence state that does not grow with the context: a short
    /// convolution's last `kernel - 1` inputs and linear attention's convolution inputs and
    /// recurrent state, all f32 (as llama.cpp keeps them).
    pub fn constant_state_bytes(&self) -> u64 {
        let mut n = 0;
        self.for_each_layer_group(|layer, r| match layer.mixer {
            Mixer::ShortConv(c) => n += r * 4 * (c.kernel - 1) * self.hidden_size,
            Mixer::LinearAttention(l) => {
                n += r
                    * 4
                    * ((l.conv_kernel - 1) * l.conv_channels()
                        + l.value_heads * l.key_head_dim * l.value_head_dim)
            }
            Mixer::Attention(_) | Mixer::None => {}
        });
        n
    }

    /// Everything a sequence of `context` tokens keeps between decode steps: the KV caches
    /// and the constant states.
    pub fn state_bytes(&self, kv: DType, context: u64) -> u64 {
        self.kv_cache_bytes(kv, context) + self.constant_state_bytes()
    }

    /// Calls `f` with each distinct layer and its number of occurrences (once, with
    /// `num_layers`, for the dense stack; nothing is allocated then).
    pub fn for_each_layer_group(&self, mut f: impl FnMut(&Layer, u64)) {
        match &self.stack {
            None => f(&self.dense_layer(), self.num_layers),
            Some(_) => {
                for (l, r) in self.layer_groups() {
                    f(&l, r);
                }
            }
        }
    }

    /// The operators of one forward pass, in execution order for the dense stack (per-layer
    /// operators once, with `repeats` = layers). A stack of several layer kinds lists each
    /// kind's operators in turn, with `repeats` its number of layers.
    pub fn operators(&self, phase: Phase, precision: &Precision) -> Vec<OpAccount> {
        let mut ops = Vec::with_capacity(20);
        self.visit_operators(phase, precision, |op| ops.push(op));
        ops
    }

    /// [`ModelSpec::operators`] without allocating (for the dense stack): `f` sees each
    /// operator in order.
    pub fn visit_operators(
        &self,
        phase: Phase,
        precision: &Precision,
        mut f: impl FnMut(OpAccount),
    ) {
        let t = phase.tokens();
        let (h, v) = (self.hidden_size, self.vocab_size);
        let a = precision.act_bytes() as u128;
        let w = precision.weights;
        let norm_bias = self.norm == NormKind::LayerNorm && self.norm_bias;
        let (tt, hh) = (t as u128, h as u128);

        f(OpAccount {
            name: "embedding",
            kind: OpKind::Embedding,
            group: OpGroup::Other,
            repeats: 1,
            tokens: t,
            dims: [v, h],
            params: v * h,
            flops: 0,
            // Token ids (i32) and one embedding row per token.
            bytes_read: 4 * t as u128 + w.tensor_bytes(&[t, h]) as u128,
            bytes_written: t as u128 * h as u128 * a,
        });
        // A norm of `rows` rows of `width`, with its weight (and bias) of `width`.
        let norm = |name, group, repeats, tokens: u64, rows: u64, width: u64| {
            let weights = if norm_bias { 2 } else { 1 } * w.tensor_bytes(&[width]) as u128;
            OpAccount {
                name,
                kind: OpKind::Norm,
                group,
                repeats,
                tokens,
                dims: [width, width],
                params: if norm_bias { 2 * width } else { width },
                flops: 0,
                bytes_read: rows as u128 * width as u128 * a + weights,
                bytes_written: rows as u128 * width as u128 * a,
            }
        };
        let linear = |name, group, repeats, tokens: u64, in_f: u64, out_f: u64, bias: bool| {
            let bias_bytes = if bias { w.tensor_bytes(&[out_f]) } else { 0 } as u128;
            OpAccount {
                name,
                kind: OpKind::Linear,
                group,
                repeats,
                tokens,
                dims: [in_f, out_f],
                params: in_f * out_f + if bias { out_f } else { 0 },
                flops: 2 * tokens as u128 * in_f as u128 * out_f as u128,
                bytes_read: w.tensor_bytes(&[out_f, in_f]) as u128
                    + bias_bytes
                    + tokens as u128 * in_f as u128 * a,
                bytes_written: tokens as u128 * out_f as u128 * a,
            }
        };
        let elementwise = |name, kind, group, repeats, read: u128, written: u128| OpAccount {
            name,
            kind,
            group,
            repeats,
            tokens: t,
            dims: [0, 0],
            params: 0,
            flops: 0,
            bytes_read: read * a,
            bytes_written: written * a,
        };
        let gemma = self.layout() == Layout::Gemma3;
        let decode = matches!(phase, Phase::Decode { .. });
        let layer = |f: &mut dyn FnMut(OpAccount), layer: &Layer, l: u64| {
            let mixer = OpGroup::Attention;
            if layer.mixer != Mixer::None {
                f(norm("attn_norm", mixer, l, t, t, h));
            }
            match layer.mixer {
                Mixer::Attention(at) => {
                    let (qw, kvw) = (at.q_width(), at.kv_width());
                    let q_out = if at.output_gate { 2 * qw } else { qw };
                    f(linear("q_proj", mixer, l, t, h, q_out, at.qkv_bias));
                    f(linear("k_proj", mixer, l, t, h, kvw, at.qkv_bias));
                    f(linear("v_proj", mixer, l, t, h, kvw, at.qkv_bias));
                    if at.qk_norm {
                        let rows = t * (at.heads + at.kv_heads);
                        let mut op = norm("qk_norm", mixer, l, t, rows, at.head_dim);
                        // Two weight vectors (q and k).
                        op.params *= 2;
                        op.bytes_read += w.tensor_bytes(&[at.head_dim]) as u128;
                        f(op);
                    }
                    if at.rope {
                        let rope_elems = tt * (qw + kvw) as u128;
                        f(elementwise(
                            "rope",
                            OpKind::Rope,
                            mixer,
                            l,
                            rope_elems,
                            rope_elems,
                        ));
                    }
                    let kv_elems = 2 * tt * kvw as u128;
                    f(OpAccount {
                        name: "kv_append",
                        kind: OpKind::KvAppend,
                        group: mixer,
                        repeats: l,
                        tokens: t,
                        dims: [at.kv_heads, at.head_dim],
                        params: 0,
                        flops: 0,
                        bytes_read: kv_elems * a,
                        bytes_written: t as u128 * 2 * precision.kv_bytes(kvw) as u128,
                    });
                    let (pairs, keys) = match phase {
                        Phase::Prefill { tokens } => (at.prefill_pairs(tokens), tokens),
                        Phase::Decode { context } => {
                            let k = at.keys_at(context + 1);
                            (k, k)
                        }
                    };
                    let keys = match (phase, at.window) {
                        // A prefill's window slides over the prompt: the cache holds W.
                        (Phase::Prefill { .. }, Some(w)) => keys.min(w),
                        _ => keys,
                    } as u128;
                    f(OpAccount {
                        name: "attention",
                        kind: OpKind::Attention,
                        group: mixer,
                        repeats: l,
                        tokens: t,
                        dims: [at.heads, at.head_dim],
                        params: 0,
                        // q·k and p·v over every causal query-key pair of every query head.
                        flops: 4 * pairs as u128 * qw as u128,
                        bytes_read: tt * qw as u128 * a
                            + keys * 2 * precision.kv_bytes(kvw) as u128,
                        bytes_written: tt * qw as u128 * a,
                    });
                    if at.output_gate {
                        let e = tt * qw as u128;
                        f(elementwise("attn_gate", OpKind::Gate, mixer, l, 2 * e, e));
                    }
                    f(linear("o_proj", mixer, l, t, qw, h, at.o_bias));
                }
                Mixer::ShortConv(c) => {
                    f(linear("conv_in_proj", mixer, l, t, h, 3 * h, c.bias));
                    // B * x before the convolution, C * y after it.
                    f(elementwise(
                        "conv_gate_in",
                        OpKind::Gate,
                        mixer,
                        l,
                        2 * tt * hh,
                        tt * hh,
                    ));
                    let state = 4 * (c.kernel - 1) as u128 * hh;
                    let kernel = w.tensor_bytes(&[h, c.kernel]) as u128
                        + if c.bias {
                            w.tensor_bytes(&[h]) as u128
                        } else {
                            0
                        };
                    f(OpAccount {
                        name: "short_conv",
                        kind: OpKind::Conv,
                        group: mixer,
                        repeats: l,
                        tokens: t,
                        dims: [h, c.kernel],
                        params: h * c.kernel + if c.bias { h } else { 0 },
                        flops: 0,
                        bytes_read: tt * hh * a + kernel + if decode { state } else { 0 },
                        bytes_written: tt * hh * a + state,
                    });
                    f(elementwise(
                        "conv_gate_out",
                        OpKind::Gate,
                        mixer,
                        l,
                        2 * tt * hh,
                        tt * hh,
                    ));
                    f(linear("conv_out_proj", mixer, l, t, h, h, c.bias));
                }
                Mixer::LinearAttention(la) => {
                    let (ch, vd, nv) = (la.conv_channels(), la.value_width(), la.value_heads);
                    let (cc, vv) = (ch as u128, vd as u128);
                    f(linear(
                        "linear_in_proj",
                        mixer,
                        l,
                        t,
                        h,
                        ch + vd + 2 * nv,
                        false,
                    ));
                    let conv_state = 4 * (la.conv_kernel - 1) as u128 * cc;
                    f(OpAccount {
                        name: "linear_conv",
                        kind: OpKind::Conv,
                        group: mixer,
                        repeats: l,
                        tokens: t,
                        dims: [ch, la.conv_kernel],
                        params: ch * la.conv_kernel,
                        flops: 0,
                        bytes_read: tt * cc * a
                            + w.tensor_bytes(&[ch, la.conv_kernel]) as u128
                            + if decode { conv_state } else { 0 },
                        bytes_written: tt * cc * a + conv_state,
                    });
                    // Per token and value head: read the state with k, write the delta-rule
                    // update, read it out with q: three d_k x d_v products.
                    let state =
                        4 * nv as u128 * la.key_head_dim as u128 * la.value_head_dim as u128;
                    f(OpAccount {
                        name: "linear_attention",
                        kind: OpKind::Recurrence,
                        group: mixer,
                        repeats: l,
                        tokens: t,
                        dims: [nv, la.key_head_dim * la.value_head_dim],
                        params: 2 * nv,
                        flops: 6
                            * tt
                            * nv as u128
                            * la.key_head_dim as u128
                            * la.value_head_dim as u128,
                        bytes_read: tt * (cc + 2 * nv as u128) * a + state,
                        bytes_written: tt * vv * a + state,
                    });
                    let mut gated = norm("linear_norm", mixer, l, t, t * nv, la.value_head_dim);
                    // The gate z is read beside the values.
                    gated.bytes_read += tt * vv * a;
                    f(gated);
                    f(linear("linear_out_proj", mixer, l, t, vd, h, false));
                }
                Mixer::None => {}
            }
            if layer.mixer != Mixer::None {
                if gemma {
                    f(norm("post_mixer_norm", mixer, l, t, t, h));
                }
                f(elementwise(
                    "attn_residual",
                    OpKind::Residual,
                    OpGroup::Other,
                    l,
                    2 * tt * hh,
                    tt * hh,
                ));
            }
            let Some(ffn) = layer.ffn else {
                return;
            };
            let g = OpGroup::Ffn;
            f(norm("ffn_norm", g, l, t, t, h));
            let ff = tt * ffn.width as u128;
            if ffn.kind == FfnKind::Gated {
                f(linear("gate_proj", g, l, t, h, ffn.width, ffn.bias));
                f(linear("up_proj", g, l, t, h, ffn.width, ffn.bias));
                f(elementwise(
                    "activation",
                    OpKind::Activation,
                    g,
                    l,
                    2 * ff,
                    ff,
                ));
            } else {
                f(linear("up_proj", g, l, t, h, ffn.width, ffn.bias));
                f(elementwise("activation", OpKind::Activation, g, l, ff, ff));
            }
            f(linear("down_proj", g, l, t, ffn.width, h, ffn.bias));
            if gemma {
                f(norm("post_ffn_norm", g, l, t, t, h));
            }
            f(elementwise(
                "ffn_residual",
                OpKind::Residual,
                OpGroup::Other,
                l,
                2 * tt * hh,
                tt * hh,
            ));
        };
        self.for_each_layer_group(|layer_, r| layer(&mut f, layer_, r));

        // Head: last position only.
        f(norm("final_norm", OpGroup::LmHead, 1, 1, 1, h));
        f(linear("lm_head", OpGroup::LmHead, 1, 1, h, v, false));
    }

    /// Sum over [`ModelSpec::operators`].
    pub fn pass_totals(&self, phase: Phase, precision: &Precision) -> PassTotals {
        let ops = self.operators(phase, precision);
        PassTotals {
            flops: ops.iter().map(OpAccount::total_flops).sum(),
            bytes_read: ops.iter().map(|o| o.bytes_read * o.repeats as u128).sum(),
            bytes_written: ops
                .iter()
                .map(|o| o.bytes_written * o.repeats as u128)
                .sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Activation;

    /// Published configs (Hugging Face `config.json`, main branch), with the parameter counts
    /// their model cards and `model.num_parameters()` give.
    fn tinyllama() -> ModelSpec {
        // TinyLlama/TinyLlama-1.1B-intermediate-step-1431k-3T: 1,100,048,384 parameters.
        ModelSpec::llama(32000, 2048, 22, 32, 4, 5632)
    }
    fn smollm2_135m() -> ModelSpec {
        // HuggingFaceTB/SmolLM2-135M: 134,515,008 parameters.
        ModelSpec {
            tie_embeddings: true,
            ..ModelSpec::llama(49152, 576, 30, 9, 3, 1536)
        }
    }
    fn qwen25_05b() -> ModelSpec {
        // Qwen/Qwen2.5-0.5B: 494,032,768 parameters.
        ModelSpec {
            tie_embeddings: true,
            qkv_bias: true,
            ..ModelSpec::llama(151936, 896, 24, 14, 2, 4864)
        }
    }
    fn phonelm_05b() -> ModelSpec {
        // mllmTeam/PhoneLM-0.5B: 509,658,112 parameters.
        ModelSpec {
            tie_embeddings: true,
            activation: Activation::Relu,
            ..ModelSpec::llama(49152, 1024, 24, 16, 16, 4864)
        }
    }

    #[test]
    fn published_parameter_counts() {
        for (name, spec, expected) in [
            ("TinyLlama-1.1B", tinyllama(), 1_100_048_384u64),
            ("SmolLM2-135M", smollm2_135m(), 134_515_008),
            ("Qwen2.5-0.5B", qwen25_05b(), 494_032_768),
            ("PhoneLM-0.5B", phonelm_05b(), 509_658_112),
        ] {
            spec.validate().unwrap();
            let p = spec.params();
            assert_eq!(p.total, expected, "{name}");
            assert_eq!(p.total, p.non_embedding + p.embedding + p.lm_head, "{name}");
        }
    }

    #[test]
    fn counts_agree_with_tensor_list() {
        for spec in [tinyllama(), qwen25_05b()] {
            let tensors = spec.tensors();
            let sum: u64 = tensors.iter().map(|t| t.numel() * t.repeats).sum();
            assert_eq!(sum, spec.params().total);
            assert_eq!(sum, spec.total_params());
            let p = spec.params();
            assert_eq!(spec.param_totals(), (p.total, p.non_embedding));
            let q_bias = tensors
                .iter()
                .any(|t| t.name == "model.layers.{i}.self_attn.q_proj.bias");
            assert_eq!(q_bias, spec.qkv_bias);
        }
    }

    #[test]
    fn per_component_counts_tinyllama() {
        let p = tinyllama().params();
        let get = |c| p.by_component.iter().find(|(x, _)| *x == c).unwrap().1;
        assert_eq!(get(Component::Q), 22 * 2048 * 2048);
        assert_eq!(get(Component::K), 22 * 2048 * 256);
        assert_eq!(get(Component::Down), 22 * 5632 * 2048);
        assert_eq!(get(Component::AttnNorm), 22 * 2048);
        assert_eq!(get(Component::FinalNorm), 2048);
        assert_eq!(p.embedding, 32000 * 2048);
        assert_eq!(p.lm_head, 32000 * 2048);
        assert_eq!(p.non_embedding, 1_100_048_384 - 2 * 32000 * 2048);
    }

    #[test]
    fn layernorm_bias_and_plain_ffn_counts() {
        let spec = ModelSpec {
            ffn: FfnKind::Plain,
            norm: NormKind::LayerNorm,
            norm_bias: true,
            qkv_bias: true,
            o_bias: true,
            mlp_bias: true,
            tie_embeddings: true,
            ..ModelSpec::llama(100, 8, 2, 2, 2, 32)
        };
        // Per layer: q,k,v,o 4*(64+8) + up (8*32+32) + down (32*8+8) + 2 norms (2*16).
        let per_layer = 4 * 72 + 288 + 264 + 32;
        assert_eq!(spec.params().total, 100 * 8 + 2 * per_layer + 16);
    }

    /// Matrix-product parameters of the layers: Kaplan et al.'s N (no norms, no biases).
    fn kaplan_n(spec: &ModelSpec) -> u128 {
        let h = spec.hidden_size as u128;
        let per_layer = 2 * h * spec.q_width() as u128
            + 2 * h * spec.kv_width() as u128
            + if spec.ffn == FfnKind::Gated { 3 } else { 2 } * h * spec.intermediate_size as u128;
        per_layer * spec.num_layers as u128
    }

    #[test]
    fn flops_match_kaplan_closed_form() {
        // Kaplan et al. 2020, Table 1: C_forward = 2N + 2 n_layer n_ctx d_attn per token, the
        // second term being the q·k product; the p·v product costs the same again, and a
        // causal prefill sums n_ctx = i over positions i = 1..P. Logits for one position.
        let f32p = Precision::default();
        for spec in [tinyllama(), smollm2_135m(), phonelm_05b(), qwen25_05b()] {
            let n = kaplan_n(&spec);
            let d_attn = spec.q_width() as u128;
            let l = spec.num_layers as u128;
            let head = 2 * spec.hidden_size as u128 * spec.vocab_size as u128;
            for p in [1u64, 64, 512] {
                let pp = p as u128;
                let qk: u128 = (1..=pp).map(|i| 2 * l * i * d_attn).sum();
                let expected = 2 * n * pp + 2 * qk + head;
                let got = spec.pass_totals(Phase::Prefill { tokens: p }, &f32p).flops;
                assert_eq!(got, expected, "prefill {p}");
            }
            for c in [0u64, 127, 2047] {
                let ctx = c as u128 + 1;
                let expected = 2 * n + 2 * (2 * l * ctx * d_attn) + head;
                let got = spec.pass_totals(Phase::Decode { context: c }, &f32p).flops;
                assert_eq!(got, expected, "decode {c}");
            }
        }
    }

    #[test]
    fn decode_bytes_dominated_by_weights_and_cache() {
        let spec = phonelm_05b();
        let prec = Precision::for_weights(DType::Q4_0);
        let totals = spec.pass_totals(Phase::Decode { context: 1023 }, &prec);
        let weights_read: u128 = spec
            .operators(Phase::Decode { context: 1023 }, &prec)
            .iter()
            .filter(|o| o.kind == OpKind::Linear)
            .map(|o| prec.weights.tensor_bytes(&[o.dims[1], o.dims[0]]) as u128 * o.repeats as u128)
            .sum();
        // Every matrix is read once per step: the tied head reads the embedding in full.
        let q4 = spec.weight_bytes(DType::Q4_0) as u128;
        let norms = 4 * 1024 * (2 * 24 + 1);
        assert_eq!(weights_read, q4 - norms);
        let kv = spec.kv_cache_bytes(DType::F16, 1024) as u128;
        assert!(totals.bytes_read > weights_read + kv);
        assert!(totals.bytes_read < (weights_read + kv) * 101 / 100);
    }

    #[test]
    fn kv_cache_bytes() {
        let spec = tinyllama();
        // 22 layers * (k + v) * 4 heads * 64 * 2 bytes.
        assert_eq!(spec.kv_cache_bytes_per_token(DType::F16), 22 * 2 * 256 * 2);
        assert_eq!(
            spec.kv_cache_bytes(DType::F16, 2048),
            22 * 2 * 256 * 2 * 2048
        );
    }

    #[test]
    fn weight_bytes_per_dtype() {
        let spec = smollm2_135m();
        let n = spec.params().total;
        assert_eq!(spec.weight_bytes(DType::F32), 4 * n);
        assert_eq!(spec.weight_bytes(DType::Bf16), 2 * n);
        // Norm vectors (61 of 576) stay f32 when quantised.
        let vectors = 61 * 576;
        assert_eq!(spec.weight_bytes(DType::Int8), (n - vectors) + 4 * vectors);
        assert_eq!(
            spec.weight_bytes(DType::Q4_0),
            (n - vectors) / 32 * 18 + 4 * vectors
        );
    }
}
