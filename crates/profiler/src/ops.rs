//! Decoder operators on burn tensors, batch 1, f32: what the profiler times and what a
//! whole model is built from. Activations are `[tokens, features]`; weights `[in, out]`.

use burn::tensor::activation::{gelu, gelu_approximate, relu, silu};
use burn::tensor::module::attention as sdpa;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Device, Int, Tensor, TensorData};
use tailor_spec::{Activation, FfnKind, NormKind};

/// `x W + b`.
pub fn linear(x: Tensor<2>, w: &Tensor<2>, b: Option<&Tensor<1>>) -> Tensor<2> {
    let y = x.matmul(w.clone());
    match b {
        Some(b) => y + b.clone().unsqueeze_dim::<2>(0),
        None => y,
    }
}

/// RMSNorm or LayerNorm over the last dimension.
pub fn norm(
    x: Tensor<2>,
    kind: NormKind,
    w: &Tensor<1>,
    b: Option<&Tensor<1>>,
    eps: f64,
) -> Tensor<2> {
    let y = match kind {
        NormKind::RmsNorm => {
            let rms = (x.clone().square().mean_dim(1) + eps).sqrt();
            x / rms
        }
        NormKind::LayerNorm => {
            let (var, mean) = x.clone().var_mean_bias(1);
            (x - mean) / (var + eps).sqrt()
        }
    };
    let y = y * w.clone().unsqueeze_dim::<2>(0);
    match b {
        Some(b) => y + b.clone().unsqueeze_dim::<2>(0),
        None => y,
    }
}

pub fn activation(x: Tensor<2>, act: Activation) -> Tensor<2> {
    match act {
        Activation::Relu => relu(x),
        Activation::Silu => silu(x),
        Activation::Gelu => gelu(x),
        Activation::GeluTanh => gelu_approximate(x),
    }
}

/// FFN weights: `gate` only for the gated kind.
#[derive(Debug, Clone)]
pub struct FfnWeights {
    pub gate: Option<(Tensor<2>, Option<Tensor<1>>)>,
    pub up: (Tensor<2>, Option<Tensor<1>>),
    pub down: (Tensor<2>, Option<Tensor<1>>),
}

/// Gated: `down(act(gate(x)) * up(x))`; plain: `down(act(up(x)))`.
pub fn ffn(x: Tensor<2>, kind: FfnKind, act: Activation, w: &FfnWeights) -> Tensor<2> {
    let up = linear(x.clone(), &w.up.0, w.up.1.as_ref());
    let hidden = match (kind, &w.gate) {
        (FfnKind::Gated, Some((g, gb))) => activation(linear(x, g, gb.as_ref()), act) * up,
        _ => activation(up, act),
    };
    linear(hidden, &w.down.0, w.down.1.as_ref())
}

/// Token-embedding gather.
pub fn embedding(table: &Tensor<2>, ids: Tensor<1, Int>) -> Tensor<2> {
    table.clone().select(0, ids)
}

/// `[tokens, heads * dim]` -> `[1, heads, tokens, dim]`.
pub fn split_heads(x: Tensor<2>, heads: usize, dim: usize) -> Tensor<4> {
    let tokens = x.dims()[0];
    x.reshape([1, tokens, heads, dim]).swap_dims(1, 2)
}

/// `[1, heads, tokens, dim]` -> `[tokens, heads * dim]`.
pub fn merge_heads(x: Tensor<4>) -> Tensor<2> {
    let [_, heads, tokens, dim] = x.dims();
    x.swap_dims(1, 2).reshape([tokens, heads * dim])
}

/// Repeats each key/value head `group` times: `[1, kv, t, d]` -> `[1, kv * group, t, d]`.
pub fn repeat_kv(x: Tensor<4>, group: usize) -> Tensor<4> {
    if group == 1 {
        return x;
    }
    let [b, kv, t, d] = x.dims();
    x.unsqueeze_dim::<5>(2)
        .expand([b, kv, group, t, d])
        .reshape([b, kv * group, t, d])
}

/// Rotary position embedding tables (the `rotate_half` layout of Llama and its kin):
/// `cos` and `sin` are `[positions, head_dim]`, each half of a row repeating the
/// frequencies `theta^(-2i/d)`.
#[derive(Debug, Clone)]
pub struct Rope {
    pub cos: Tensor<2>,
    pub sin: Tensor<2>,
}

impl Rope {
    pub fn new(positions: usize, head_dim: usize, theta: f64, device: &Device) -> Self {
        let half = head_dim / 2;
        let mut cos = Vec::with_capacity(positions * head_dim);
        let mut sin = Vec::with_capacity(positions * head_dim);
        for p in 0..positions {
            for c in 0..head_dim {
                let i = (c % half) as f64;
                let angle = p as f64 * theta.powf(-2.0 * i / head_dim as f64);
                cos.push(angle.cos() as f32);
                sin.push(angle.sin() as f32);
            }
        }
        let t = |v: Vec<f32>| Tensor::from_data(TensorData::new(v, [positions, head_dim]), device);
        Self {
            cos: t(cos),
            sin: t(sin),
        }
    }

    /// Rotates `x` by `rope`, or leaves it as it is (`None`: a NoPE layer).
    pub fn maybe(rope: Option<&Rope>, x: Tensor<4>, start: usize) -> Tensor<4> {
        match rope {
            Some(r) => r.apply(x, start),
            None => x,
        }
    }

    /// Rotates `x: [1, heads, tokens, dim]` whose first token sits at position `start`.
    pub fn apply(&self, x: Tensor<4>, start: usize) -> Tensor<4> {
        let [_, _, tokens, dim] = x.dims();
        let cos = self.cos.clone().narrow(0, start, tokens).unsqueeze::<4>();
        let sin = self.sin.clone().narrow(0, start, tokens).unsqueeze::<4>();
        let half = dim / 2;
        let x1 = x.clone().narrow(3, 0, half);
        let x2 = x.clone().narrow(3, half, half);
        let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
        x * cos + rotated * sin
    }
}

/// Heads of one attention block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heads {
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
}

/// Causal self-attention of a prompt, from the projections to the input of the output
/// projection: q `[P, H*D]`, k and v `[P, KV*D]` are split into heads, q and k rotated
/// (unless `rope` is `None`), attended (KV heads repeated for GQA) and merged back to
/// `[P, H*D]`. Also returns the rotated keys and the values `[1, KV, P, D]`: the KV cache.
pub fn attention_prefill(
    q: Tensor<2>,
    k: Tensor<2>,
    v: Tensor<2>,
    h: Heads,
    rope: Option<&Rope>,
) -> (Tensor<2>, Tensor<4>, Tensor<4>) {
    let q = Rope::maybe(rope, split_heads(q, h.heads, h.head_dim), 0);
    let k = Rope::maybe(rope, split_heads(k, h.kv_heads, h.head_dim), 0);
    let v = split_heads(v, h.kv_heads, h.head_dim);
    let group = h.heads / h.kv_heads;
    let options = AttentionModuleOptions {
        is_causal: true,
        ..Default::default()
    };
    let out = sdpa(
        q,
        repeat_kv(k.clone(), group),
        repeat_kv(v.clone(), group),
        None,
        None,
        options,
    );
    (merge_heads(out), k, v)
}

/// One decode step at position `C` (the cache holds `C` tokens, `[1, KV, C, D]`): splits
/// and rotates the new q `[1, H*D]` and k `[1, KV*D]`, appends k and v to the cache,
/// attends the query to all `C + 1` keys and merges the heads to `[1, H*D]`. The query
/// heads that share a KV head are folded into its query rows, so no KV is copied for GQA.
/// Returns the output and the grown cache.
pub fn attention_decode(
    q: Tensor<2>,
    k: Tensor<2>,
    v: Tensor<2>,
    h: Heads,
    rope: Option<&Rope>,
    k_cache: Tensor<4>,
    v_cache: Tensor<4>,
) -> (Tensor<2>, Tensor<4>, Tensor<4>) {
    let position = k_cache.dims()[2];
    attention_decode_at(q, k, v, h, rope, position, k_cache, v_cache)
}

/// [`attention_decode`] of a token at `position` (RoPE), against whatever the cache holds:
/// a sliding window's cache holds fewer positions than came before.
#[allow(clippy::too_many_arguments)]
pub fn attention_decode_at(
    q: Tensor<2>,
    k: Tensor<2>,
    v: Tensor<2>,
    h: Heads,
    rope: Option<&Rope>,
    position: usize,
    k_cache: Tensor<4>,
    v_cache: Tensor<4>,
) -> (Tensor<2>, Tensor<4>, Tensor<4>) {
    let q = Rope::maybe(rope, split_heads(q, h.heads, h.head_dim), position);
    let k_new = Rope::maybe(rope, split_heads(k, h.kv_heads, h.head_dim), position);
    let v_new = split_heads(v, h.kv_heads, h.head_dim);
    let k = Tensor::cat(vec![k_cache, k_new], 2);
    let v = Tensor::cat(vec![v_cache, v_new], 2);
    let q = q.reshape([1, h.kv_heads, h.heads / h.kv_heads, h.head_dim]);
    let out = sdpa(
        q,
        k.clone(),
        v.clone(),
        None,
        None,
        AttentionModuleOptions::default(),
    );
    (out.reshape([1, h.heads * h.head_dim]), k, v)
}

/// `x * sigmoid(g)`: an output gate (Qwen3.5's attention).
pub fn gate(x: Tensor<2>, g: Tensor<2>) -> Tensor<2> {
    x * burn::tensor::activation::sigmoid(g)
}

/// RMSNorm of each head of `x: [tokens, heads * dim]` (`w: [dim]`): the q/k norms of
/// Qwen3, Gemma 3 and LFM2.
pub fn head_norm(x: Tensor<2>, heads: usize, w: &Tensor<1>, eps: f64) -> Tensor<2> {
    let [tokens, width] = x.dims();
    let rows = x.reshape([tokens * heads, width / heads]);
    norm(rows, NormKind::RmsNorm, w, None, eps).reshape([tokens, width])
}

/// Logits `[1, vocab]` of one position `x: [1, hidden]`: against `[hidden, vocab]`
/// weights, or, tied, against the embedding table `[vocab, hidden]` transposed.
pub fn lm_head(x: Tensor<2>, w: &Tensor<2>, tied: bool) -> Tensor<2> {
    if tied {
        x.matmul(w.clone().transpose())
    } else {
        x.matmul(w.clone())
    }
}
