//! The mixers of mixed stacks on burn tensors, batch 1, f32, beside attention in `ops`:
//! the depthwise causal convolution with its rolling state (LFM2's gated short
//! convolution and Gated DeltaNet's conv over q, k and v), sliding-window attention (the
//! prompt attended window by window, a decode cache that stops at the window), and the
//! gated delta rule of Gated DeltaNet (prefill in its chunked form, decode as the
//! recurrent state update). Each is tested against a naive reference on small inputs
//! (`tests.rs`): the timings and the whole models are built from these.

use crate::ops::{Heads, Rope, attention_decode_at, merge_heads, repeat_kv, split_heads};
use burn::tensor::activation::{sigmoid, silu, softplus};
use burn::tensor::module::attention as sdpa;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Tensor, TensorData};

/// Depthwise causal convolution over time of `x: [T, channels]` with kernel
/// `w: [channels, K]` (transformers' `conv1d.weight[c, 0, j]`), continuing from `state`,
/// the `K - 1` rows before `x` (zeros at the start of a sequence):
/// `y[t, c] = sum_j w[c, j] * x[t - (K - 1) + j, c]`. Returns `y` and the new state, the
/// last `K - 1` rows of the input (a decode step is this call with `T = 1`).
pub fn causal_conv(x: Tensor<2>, w: &Tensor<2>, state: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
    let [tokens, _] = x.dims();
    let kernel = w.dims()[1];
    let padded = Tensor::cat(vec![state, x], 0);
    let mut y = padded.clone().narrow(0, 0, tokens) * w.clone().narrow(1, 0, 1).transpose();
    for j in 1..kernel {
        y = y + padded.clone().narrow(0, j, tokens) * w.clone().narrow(1, j, 1).transpose();
    }
    let rows = padded.dims()[0];
    let state = padded.narrow(0, rows - (kernel - 1), kernel - 1);
    (y, state)
}

/// The zero state of a causal convolution over `channels` with kernel `K`: `[K - 1, channels]`.
pub fn conv_state(channels: usize, kernel: usize, device: &burn::tensor::Device) -> Tensor<2> {
    Tensor::zeros([kernel - 1, channels], device)
}

/// LFM2's gated short convolution between its projections: `bcx: [T, 3 * hidden]` (the
/// in-projection's output, B, C and x in that order) becomes `C * (conv(B * x) + bias)`,
/// `[T, hidden]`; the convolution continues from `state` and returns its new state.
pub fn short_conv(
    bcx: Tensor<2>,
    w: &Tensor<2>,
    bias: Option<&Tensor<1>>,
    state: Tensor<2>,
) -> (Tensor<2>, Tensor<2>) {
    let hidden = bcx.dims()[1] / 3;
    let b = bcx.clone().narrow(1, 0, hidden);
    let c = bcx.clone().narrow(1, hidden, hidden);
    let x = bcx.narrow(1, 2 * hidden, hidden);
    let (y, state) = causal_conv(b * x, w, state);
    let y = match bias {
        Some(b) => y + b.clone().unsqueeze_dim::<2>(0),
        None => y,
    };
    (c * y, state)
}

/// Causal attention of a prompt through a sliding window of `window` keys (the query and
/// the `window - 1` before it), as `ops::attention_prefill` (RoPE, GQA) otherwise. Queries
/// are attended in blocks of `window` rows against the `2 * window - 1` keys they can
/// reach, so the work grows as `P * window`, not `P^2`. Returns the output and the keys and
/// values of the last `window` positions: the cache a decode continues from.
pub fn sliding_prefill(
    q: Tensor<2>,
    k: Tensor<2>,
    v: Tensor<2>,
    h: Heads,
    rope: Option<&Rope>,
    window: usize,
) -> (Tensor<2>, Tensor<4>, Tensor<4>) {
    let tokens = q.dims()[0];
    let device = q.device();
    let q = Rope::maybe(rope, split_heads(q, h.heads, h.head_dim), 0);
    let k = Rope::maybe(rope, split_heads(k, h.kv_heads, h.head_dim), 0);
    let v = split_heads(v, h.kv_heads, h.head_dim);
    let group = h.heads / h.kv_heads;
    let (kr, vr) = (repeat_kv(k.clone(), group), repeat_kv(v.clone(), group));
    let mut blocks = Vec::with_capacity(tokens.div_ceil(window));
    let mut start = 0;
    while start < tokens {
        let rows = window.min(tokens - start);
        let first_key = (start + 1).saturating_sub(window);
        let keys = start + rows - first_key;
        let mask = window_mask(start, rows, first_key, keys, window);
        let mask = Tensor::<2, Bool>::from_data(mask, &device)
            .unsqueeze::<4>()
            .expand([1, h.heads, rows, keys]);
        blocks.push(sdpa(
            q.clone().narrow(2, start, rows),
            kr.clone().narrow(2, first_key, keys),
            vr.clone().narrow(2, first_key, keys),
            Some(mask),
            None,
            AttentionModuleOptions::default(),
        ));
        start += rows;
    }
    let out = merge_heads(Tensor::cat(blocks, 2));
    let kept = window.min(tokens);
    let k = k.narrow(2, tokens - kept, kept);
    let v = v.narrow(2, tokens - kept, kept);
    (out, k, v)
}

/// The mask (`true`: not attended) of queries `start..start + rows` against keys
/// `first_key..first_key + keys`: a query at `i` reads keys `i - window < j <= i`.
fn window_mask(
    start: usize,
    rows: usize,
    first_key: usize,
    keys: usize,
    window: usize,
) -> TensorData {
    let mut masked = Vec::with_capacity(rows * keys);
    for i in start..start + rows {
        for j in first_key..first_key + keys {
            masked.push(j > i || j + window <= i);
        }
    }
    TensorData::new(masked, [rows, keys])
}

/// One decode step of sliding-window attention: `ops::attention_decode` against a cache
/// of at most `window - 1` earlier positions (after appending the new one, the oldest
/// beyond the window is dropped), so the cache, its traffic and the step's time stop
/// growing at the window. `position` is the absolute position of the new token (RoPE).
#[allow(clippy::too_many_arguments)]
pub fn sliding_decode(
    q: Tensor<2>,
    k: Tensor<2>,
    v: Tensor<2>,
    h: Heads,
    rope: Option<&Rope>,
    position: usize,
    window: usize,
    k_cache: Tensor<4>,
    v_cache: Tensor<4>,
) -> (Tensor<2>, Tensor<4>, Tensor<4>) {
    let cached = k_cache.dims()[2];
    let keep = cached.min(window - 1);
    let k_cache = k_cache.narrow(2, cached - keep, keep);
    let v_cache = v_cache.narrow(2, cached - keep, keep);
    attention_decode_at(q, k, v, h, rope, position, k_cache, v_cache)
}

/// The heads of a Gated DeltaNet layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeltaHeads {
    pub key_heads: usize,
    pub value_heads: usize,
    pub key_dim: usize,
    pub value_dim: usize,
}

impl DeltaHeads {
    /// Channels of the short convolution: q, k and v.
    pub fn channels(&self) -> usize {
        2 * self.key_heads * self.key_dim + self.value_heads * self.value_dim
    }

    /// Width of the in-projection's output: q, k, v, z, b and a.
    pub fn proj_width(&self) -> usize {
        self.channels() + self.value_heads * self.value_dim + 2 * self.value_heads
    }
}

/// Gated DeltaNet's inputs to the delta rule, heads first: `q`, `k` `[Hv, T, d_k]` (key
/// heads already repeated to the value heads, L2-normalised, q scaled by `d_k^-1/2`), `v`
/// `[Hv, T, d_v]`, the log decay `g` and the write strength `beta`, `[Hv, T]`.
#[derive(Debug, Clone)]
pub struct DeltaInputs {
    pub q: Tensor<3>,
    pub k: Tensor<3>,
    pub v: Tensor<3>,
    pub g: Tensor<2>,
    pub beta: Tensor<2>,
}

/// The input side of a Gated DeltaNet layer after its projections and its convolution:
/// `qkv: [T, 2 * Hk * d_k + Hv * d_v]` (the conv's output, before its SiLU), `b` and `a`
/// `[T, Hv]`, the per-head `a_log` and `dt_bias` `[Hv]`: q and k L2-normalised per head
/// and repeated from the key heads to the value heads, q scaled, `beta = sigmoid(b)`,
/// `g = -exp(A_log) * softplus(a + dt_bias)`.
pub fn delta_inputs(
    qkv: Tensor<2>,
    b: Tensor<2>,
    a: Tensor<2>,
    a_log: &Tensor<1>,
    dt_bias: &Tensor<1>,
    d: DeltaHeads,
) -> DeltaInputs {
    let qkv = silu(qkv);
    let kw = d.key_heads * d.key_dim;
    let heads = |x: Tensor<2>, n: usize, dim: usize| -> Tensor<3> {
        let t = x.dims()[0];
        x.reshape([t, n, dim]).swap_dims(0, 1)
    };
    let l2 = |x: Tensor<3>| {
        let norm = (x.clone().square().sum_dim(2) + 1e-6).sqrt();
        x / norm
    };
    let repeat = |x: Tensor<3>| -> Tensor<3> {
        let group = d.value_heads / d.key_heads;
        if group == 1 {
            return x;
        }
        let [n, t, dim] = x.dims();
        x.unsqueeze_dim::<4>(1)
            .expand([n, group, t, dim])
            .reshape([n * group, t, dim])
    };
    let q = l2(heads(qkv.clone().narrow(1, 0, kw), d.key_heads, d.key_dim));
    let k = l2(heads(qkv.clone().narrow(1, kw, kw), d.key_heads, d.key_dim));
    let v = heads(
        qkv.narrow(1, 2 * kw, d.value_heads * d.value_dim),
        d.value_heads,
        d.value_dim,
    );
    let q = repeat(q) * (1.0 / (d.key_dim as f64).sqrt());
    let k = repeat(k);
    let beta = sigmoid(b).transpose();
    let decay = a_log.clone().exp().neg().unsqueeze_dim::<2>(0);
    let g = (softplus(a + dt_bias.clone().unsqueeze_dim::<2>(0), 1.0) * decay).transpose();
    DeltaInputs { q, k, v, g, beta }
}

/// The gated delta rule, one token at a time, from `state: [Hv, d_k, d_v]`: per token,
/// `S = exp(g) S; S += k (beta (v - S^T k))^T; o = S^T q`. The decode step (`T = 1`) and
/// the reference the chunked form is tested against. Returns `o: [Hv, T, d_v]` and the
/// state.
pub fn delta_recurrent(x: DeltaInputs, mut state: Tensor<3>) -> (Tensor<3>, Tensor<3>) {
    let tokens = x.q.dims()[1];
    let mut out = Vec::with_capacity(tokens);
    for t in 0..tokens {
        let q = x.q.clone().narrow(1, t, 1); // [Hv, 1, dk]
        let k = x.k.clone().narrow(1, t, 1);
        let v = x.v.clone().narrow(1, t, 1); // [Hv, 1, dv]
        let g = x.g.clone().narrow(1, t, 1).exp().unsqueeze_dim::<3>(2); // [Hv, 1, 1]
        let beta = x.beta.clone().narrow(1, t, 1).unsqueeze_dim::<3>(2);
        state = state * g;
        let read = k.clone().matmul(state.clone()); // [Hv, 1, dv]
        let delta = (v - read) * beta;
        state = state + k.swap_dims(1, 2).matmul(delta);
        out.push(q.matmul(state.clone()));
    }
    (Tensor::cat(out, 1), state)
}

/// The gated delta rule over a prompt in its chunked form (chunks of `chunk` tokens: the
/// intra-chunk part as matrix products through the WY representation, the state carried
/// from chunk to chunk), equal to `delta_recurrent` up to rounding. The inverse of the
/// unit lower-triangular `I + L` a chunk needs is the product `(I + N)(I + N^2)(I + N^4)...`
/// with `N = -L` nilpotent: `log2(chunk)` matrix products, no row-by-row loop.
pub fn delta_chunked(x: DeltaInputs, state: Tensor<3>, chunk: usize) -> (Tensor<3>, Tensor<3>) {
    let [heads, tokens, dk] = x.q.dims();
    let dv = x.v.dims()[2];
    let device = x.q.device();
    let n = tokens.div_ceil(chunk);
    let pad = n * chunk - tokens;
    let pad3 = |t: Tensor<3>| -> Tensor<3> {
        if pad == 0 {
            return t;
        }
        let [hh, _, d] = t.dims();
        Tensor::cat(vec![t, Tensor::zeros([hh, pad, d], &device)], 1)
    };
    let pad2 = |t: Tensor<2>| -> Tensor<2> {
        if pad == 0 {
            return t;
        }
        Tensor::cat(vec![t, Tensor::zeros([heads, pad], &device)], 1)
    };
    // [Hv * n, C, d]: chunks batched with heads.
    let chunks = |t: Tensor<3>, d: usize| t.reshape([heads * n, chunk, d]);
    let beta = pad2(x.beta).reshape([heads * n, chunk, 1]);
    let q = chunks(pad3(x.q), dk);
    let k = chunks(pad3(x.k), dk);
    let v = chunks(pad3(x.v), dv);
    // Cumulative log decay within each chunk, [Hv * n, C, 1].
    let g = pad2(x.g)
        .reshape([heads * n, chunk])
        .cumsum(1)
        .unsqueeze_dim::<3>(2);
    // decay[i, j] = exp(g_i - g_j) for j <= i, else 0.
    let decay = (g.clone() - g.clone().swap_dims(1, 2))
        .tril(0)
        .exp()
        .tril(0);
    let k_beta = k.clone() * beta.clone();
    let v_beta = v * beta;
    let l = (k_beta.clone().matmul(k.clone().swap_dims(1, 2)) * decay.clone()).tril(-1);
    let t = unit_lower_inverse(l.neg(), chunk);
    let values = t.clone().matmul(v_beta);
    let k_cumdecay = t.matmul(k_beta * g.clone().exp());
    let intra = (q.clone().matmul(k.clone().swap_dims(1, 2)) * decay).tril(0);
    let q_decayed = q * g.clone().exp();
    // exp(g_last - g_i) weighs each key's write into the chunk's final state.
    let g_last = g.clone().narrow(1, chunk - 1, 1);
    let k_tail = k * (g_last.clone() - g).exp();
    let per = |t: Tensor<3>, d: usize| t.reshape([heads, n, chunk, d]);
    let (values, k_cumdecay) = (per(values, dv), per(k_cumdecay, dk));
    let (intra, q_decayed, k_tail) = (per(intra, chunk), per(q_decayed, dk), per(k_tail, dk));
    let g_last = g_last.reshape([heads, n, 1, 1]);
    let mut state = state;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let at = |t: &Tensor<4>| t.clone().narrow(1, i, 1).squeeze_dim::<3>(1);
        let v_new = at(&values) - at(&k_cumdecay).matmul(state.clone());
        out.push(at(&q_decayed).matmul(state.clone()) + at(&intra).matmul(v_new.clone()));
        state = state * at(&g_last).exp() + at(&k_tail).swap_dims(1, 2).matmul(v_new);
    }
    let out = Tensor::cat(out, 1).narrow(1, 0, tokens);
    (out, state)
}

/// `(I - N)^-1` of a strictly lower-triangular `n: [B, C, C]` (nilpotent: `N^C = 0`), as
/// `(I + N)(I + N^2)(I + N^4)...` up to the power that reaches `C`.
fn unit_lower_inverse(n: Tensor<3>, size: usize) -> Tensor<3> {
    let [batch, _, _] = n.dims();
    let eye = Tensor::<2>::eye(size, &n.device())
        .unsqueeze::<3>()
        .expand([batch, size, size]);
    let mut result = eye.clone() + n.clone();
    let mut power = n;
    let mut reach = 2;
    while reach < size {
        power = power.clone().matmul(power);
        result = result.matmul(eye.clone() + power.clone());
        reach *= 2;
    }
    result
}

/// Chunk length of the chunked delta rule over a prompt (flash-linear-attention's).
pub const DELTA_CHUNK: usize = 64;

/// The weights of a Gated DeltaNet layer between its projections: the short convolution
/// over q, k and v (`[channels, K]`, no bias), the per-head `A_log` and `dt_bias`, the
/// output norm's weight (`[d_v]`).
#[derive(Debug, Clone)]
pub struct DeltaWeights {
    pub heads: DeltaHeads,
    pub conv: Tensor<2>,
    pub a_log: Tensor<1>,
    pub dt_bias: Tensor<1>,
    pub norm: Tensor<1>,
}

/// What a Gated DeltaNet layer keeps between steps: its convolution's last `K - 1` inputs
/// and the recurrent state `[Hv, d_k, d_v]`.
#[derive(Debug, Clone)]
pub struct DeltaState {
    pub conv: Tensor<2>,
    pub state: Tensor<3>,
}

impl DeltaState {
    /// The state at the start of a sequence (zeros).
    pub fn zeros(d: DeltaHeads, kernel: usize, device: &burn::tensor::Device) -> Self {
        Self {
            conv: conv_state(d.channels(), kernel, device),
            state: Tensor::zeros([d.value_heads, d.key_dim, d.value_dim], device),
        }
    }
}

/// A Gated DeltaNet layer between its projections: `proj: [T, channels + Hv * d_v + 2 Hv]`
/// (the in-projection's output: q, k and v, then z, then b and a) becomes the gated,
/// normalised output `[T, Hv * d_v]` for the out-projection. A prompt (`T > 1`) runs the
/// chunked delta rule, one token the recurrent step; both continue from `state`.
pub fn gated_deltanet(
    proj: Tensor<2>,
    w: &DeltaWeights,
    state: DeltaState,
) -> (Tensor<2>, DeltaState) {
    let d = w.heads;
    let tokens = proj.dims()[0];
    let channels = d.channels();
    let values = d.value_heads * d.value_dim;
    let qkv = proj.clone().narrow(1, 0, channels);
    let z = proj.clone().narrow(1, channels, values);
    let b = proj.clone().narrow(1, channels + values, d.value_heads);
    let a = proj.narrow(1, channels + values + d.value_heads, d.value_heads);
    let (qkv, conv) = causal_conv(qkv, &w.conv, state.conv);
    let x = delta_inputs(qkv, b, a, &w.a_log, &w.dt_bias, d);
    let (o, state) = if tokens == 1 {
        delta_recurrent(x, state.state)
    } else {
        delta_chunked(x, state.state, DELTA_CHUNK.min(tokens.next_power_of_two()))
    };
    (
        delta_output(o, z, &w.norm, 1e-6),
        DeltaState { conv, state },
    )
}

/// Gated DeltaNet's output side: the delta rule's `o: [Hv, T, d_v]` RMS-normalised per
/// head (`norm: [d_v]`), times `silu(z)` (`z: [T, Hv * d_v]`), merged to `[T, Hv * d_v]`
/// for the out-projection.
pub fn delta_output(o: Tensor<3>, z: Tensor<2>, norm: &Tensor<1>, eps: f64) -> Tensor<2> {
    let [heads, tokens, dv] = o.dims();
    let o = o.swap_dims(0, 1).reshape([tokens * heads, dv]);
    let rms = (o.clone().square().mean_dim(1) + eps).sqrt();
    let o = o / rms * norm.clone().unsqueeze_dim::<2>(0);
    o.reshape([tokens, heads * dv]) * silu(z)
}

#[cfg(test)]
mod tests;
