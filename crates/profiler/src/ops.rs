//! Decoder operators on burn tensors, batch 1, f32: what the profiler times and what a
//! whole model is built from. Activations are `[tokens, features]`; weights `[in, out]`.

use burn::tensor::activation::{gelu, gelu_approximate, relu, silu};
use burn::tensor::module::attention as sdpa;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Int, Tensor};
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

/// Causal self-attention of a prompt: q `[1, H, P, D]`, k and v `[1, KV, P, D]`.
pub fn attention_prefill(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>) -> Tensor<4> {
    let group = q.dims()[1] / k.dims()[1];
    let options = AttentionModuleOptions {
        is_causal: true,
        ..Default::default()
    };
    sdpa(
        q,
        repeat_kv(k, group),
        repeat_kv(v, group),
        None,
        None,
        options,
    )
}

/// One decode step: appends the new key/value (`[1, KV, 1, D]`) to the cache
/// (`[1, KV, C, D]`) and attends the new query (`[1, H, 1, D]`) to all `C + 1` keys. The
/// query heads that share a KV head are folded into its query rows, so no KV is copied.
/// Returns the output `[1, H, 1, D]` and the grown cache.
pub fn attention_decode(
    q: Tensor<4>,
    k_cache: Tensor<4>,
    v_cache: Tensor<4>,
    k_new: Tensor<4>,
    v_new: Tensor<4>,
) -> (Tensor<4>, Tensor<4>, Tensor<4>) {
    let [_, heads, _, dim] = q.dims();
    let kv = k_cache.dims()[1];
    let k = Tensor::cat(vec![k_cache, k_new], 2);
    let v = Tensor::cat(vec![v_cache, v_new], 2);
    let q = q.reshape([1, kv, heads / kv, dim]);
    let out = sdpa(
        q,
        k.clone(),
        v.clone(),
        None,
        None,
        AttentionModuleOptions::default(),
    );
    (out.reshape([1, heads, 1, dim]), k, v)
}
