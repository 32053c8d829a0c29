//! The mixers against naive references on small inputs (outputs, never timings): plain
//! loops over `f64`, one token and one channel at a time.

use super::*;
use crate::Backend;
use crate::ops::{attention_prefill, split_heads};
use burn::tensor::{Device, Distribution, Tensor};

fn device() -> Device {
    Backend::Flex.open().unwrap()
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data()
        .try_to_vec::<f32>()
        .unwrap()
        .into_iter()
        .map(f64::from)
        .collect()
}

fn assert_close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what}[{i}]: {g} against the reference {w}"
        );
    }
}

/// `y[t, c] = sum_j w[c, j] x[t - (K - 1) + j, c]`, zeros before the start.
fn naive_causal_conv(x: &[f64], w: &[f64], tokens: usize, channels: usize, k: usize) -> Vec<f64> {
    let mut y = vec![0.0; tokens * channels];
    for t in 0..tokens {
        for c in 0..channels {
            for j in 0..k {
                if let Some(src) = (t + j).checked_sub(k - 1) {
                    y[t * channels + c] += w[c * k + j] * x[src * channels + c];
                }
            }
        }
    }
    y
}

#[test]
fn the_rolling_conv_state_equals_a_full_causal_convolution() {
    let d = device();
    let (tokens, channels, kernel) = (9, 5, 3);
    let x = Tensor::<2>::random([tokens, channels], Distribution::Normal(0.0, 1.0), &d);
    let w = Tensor::<2>::random([channels, kernel], Distribution::Normal(0.0, 1.0), &d);
    let want = naive_causal_conv(
        &values(x.clone()),
        &values(w.clone()),
        tokens,
        channels,
        kernel,
    );
    // The whole sequence at once.
    let (y, _) = causal_conv(x.clone(), &w, conv_state(channels, kernel, &d));
    assert_close("prefill", &values(y), &want, 1e-5);
    // A prompt of 4, then one token at a time through the rolling state.
    let (y, mut state) = causal_conv(
        x.clone().narrow(0, 0, 4),
        &w,
        conv_state(channels, kernel, &d),
    );
    let mut got = values(y);
    for t in 4..tokens {
        let (y, next) = causal_conv(x.clone().narrow(0, t, 1), &w, state);
        assert_eq!(next.dims(), [kernel - 1, channels]);
        state = next;
        got.extend(values(y));
    }
    assert_close("decode", &got, &want, 1e-5);
}

#[test]
fn the_short_conv_gates_the_convolution_of_b_times_x_by_c() {
    let d = device();
    let (tokens, hidden, kernel) = (6, 4, 3);
    let bcx = Tensor::<2>::random([tokens, 3 * hidden], Distribution::Normal(0.0, 1.0), &d);
    let w = Tensor::<2>::random([hidden, kernel], Distribution::Normal(0.0, 1.0), &d);
    let v = values(bcx.clone());
    let at = |t: usize, part: usize, c: usize| v[t * 3 * hidden + part * hidden + c];
    let bx: Vec<f64> = (0..tokens * hidden)
        .map(|i| at(i / hidden, 0, i % hidden) * at(i / hidden, 2, i % hidden))
        .collect();
    let conv = naive_causal_conv(&bx, &values(w.clone()), tokens, hidden, kernel);
    let want: Vec<f64> = (0..tokens * hidden)
        .map(|i| at(i / hidden, 1, i % hidden) * conv[i])
        .collect();
    let (y, _) = short_conv(bcx, &w, None, conv_state(hidden, kernel, &d));
    assert_close("short conv", &values(y), &want, 1e-5);
}

/// Softmax attention of rotated `q: [H, T, D]` against `k`, `v: [KV, T, D]` (GQA: query
/// head `h` reads kv head `h / (H / KV)`), query `i` reading keys `i - window < j <= i`;
/// the output merged as `[T, H * D]`.
fn naive_window_attention(
    q: &[f64],
    k: &[f64],
    v: &[f64],
    h: Heads,
    tokens: usize,
    window: usize,
) -> Vec<f64> {
    let d = h.head_dim;
    let group = h.heads / h.kv_heads;
    let mut out = vec![0.0; tokens * h.heads * d];
    for head in 0..h.heads {
        let kv = head / group;
        for i in 0..tokens {
            let keys: Vec<usize> = (0..=i).filter(|j| j + window > i).collect();
            let scores: Vec<f64> = keys
                .iter()
                .map(|&j| {
                    (0..d)
                        .map(|c| q[(head * tokens + i) * d + c] * k[(kv * tokens + j) * d + c])
                        .sum::<f64>()
                        / (d as f64).sqrt()
                })
                .collect();
            let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
            let sum: f64 = e.iter().sum();
            for c in 0..d {
                out[i * h.heads * d + head * d + c] = keys
                    .iter()
                    .zip(&e)
                    .map(|(&j, p)| p / sum * v[(kv * tokens + j) * d + c])
                    .sum::<f64>();
            }
        }
    }
    out
}

/// Heads of `heads / kv_heads x 8`, RoPE tables, and random projections q, k, v of
/// `tokens` tokens.
fn attention_example(
    d: &Device,
    heads: usize,
    kv_heads: usize,
    tokens: usize,
) -> (Heads, Rope, Tensor<2>, Tensor<2>, Tensor<2>) {
    let h = Heads {
        heads,
        kv_heads,
        head_dim: 8,
    };
    let rope = Rope::new(64, h.head_dim, 10_000.0, d);
    let r = |w| Tensor::<2>::random([tokens, w], Distribution::Normal(0.0, 1.0), d);
    let (q, k, v) = (
        r(h.heads * h.head_dim),
        r(h.kv_heads * h.head_dim),
        r(h.kv_heads * h.head_dim),
    );
    (h, rope, q, k, v)
}

#[test]
fn sliding_window_attention_equals_full_attention_masked_to_the_window() {
    let d = device();
    let tokens = 11;
    let (h, rope, q, k, v) = attention_example(&d, 4, 2, tokens);
    let rotated_q = values(rope.apply(split_heads(q.clone(), h.heads, h.head_dim), 0));
    let rotated_k = values(rope.apply(split_heads(k.clone(), h.kv_heads, h.head_dim), 0));
    let heads_v = values(split_heads(v.clone(), h.kv_heads, h.head_dim));
    for window in [1, 3, 4, 11, 16] {
        let want = naive_window_attention(&rotated_q, &rotated_k, &heads_v, h, tokens, window);
        let (out, kc, vc) =
            sliding_prefill(q.clone(), k.clone(), v.clone(), h, Some(&rope), window);
        assert_close(&format!("window {window}"), &values(out), &want, 1e-4);
        assert_eq!(
            kc.dims()[2],
            window.min(tokens),
            "the cache holds the window"
        );
        assert_eq!(vc.dims()[2], window.min(tokens));
    }
    // A window as long as the prompt is causal attention.
    let (full, _, _) = attention_prefill(q.clone(), k.clone(), v.clone(), h, Some(&rope));
    let (windowed, _, _) = sliding_prefill(q, k, v, h, Some(&rope), tokens);
    assert_close("global", &values(windowed), &values(full), 1e-5);
}

#[test]
fn sliding_decode_steps_equal_the_last_rows_of_a_windowed_prefill() {
    let d = device();
    let (tokens, prompt, window) = (12, 5, 4);
    let (h, rope, q, k, v) = attention_example(&d, 2, 1, tokens);
    let (all, _, _) = sliding_prefill(q.clone(), k.clone(), v.clone(), h, Some(&rope), window);
    let want = values(all.narrow(0, prompt, tokens - prompt));
    let (_, mut kc, mut vc) = sliding_prefill(
        q.clone().narrow(0, 0, prompt),
        k.clone().narrow(0, 0, prompt),
        v.clone().narrow(0, 0, prompt),
        h,
        Some(&rope),
        window,
    );
    let mut got = Vec::new();
    for t in prompt..tokens {
        let row = |x: &Tensor<2>| x.clone().narrow(0, t, 1);
        let (out, k2, v2) =
            sliding_decode(row(&q), row(&k), row(&v), h, Some(&rope), t, window, kc, vc);
        assert_eq!(k2.dims()[2], window, "the cache stops at the window");
        (kc, vc) = (k2, v2);
        got.extend(values(out));
    }
    assert_close("decode", &got, &want, 1e-4);
}

/// The gated delta rule in plain loops, from the same inputs and initial state.
fn naive_delta(x: &DeltaInputs, state: Vec<f64>) -> (Vec<f64>, Vec<f64>) {
    let [heads, tokens, dk] = x.q.dims();
    let dv = x.v.dims()[2];
    let (q, k, v) = (
        values(x.q.clone()),
        values(x.k.clone()),
        values(x.v.clone()),
    );
    let (g, beta) = (values(x.g.clone()), values(x.beta.clone()));
    let mut s = state;
    let mut out = vec![0.0; heads * tokens * dv];
    for h in 0..heads {
        let s = &mut s[h * dk * dv..(h + 1) * dk * dv];
        for t in 0..tokens {
            let at = |m: &[f64], dim: usize, c: usize| m[(h * tokens + t) * dim + c];
            let decay = g[h * tokens + t].exp();
            s.iter_mut().for_each(|e| *e *= decay);
            for j in 0..dv {
                let read: f64 = (0..dk).map(|i| s[i * dv + j] * at(&k, dk, i)).sum();
                let delta = (at(&v, dv, j) - read) * beta[h * tokens + t];
                for i in 0..dk {
                    s[i * dv + j] += at(&k, dk, i) * delta;
                }
            }
            for j in 0..dv {
                out[(h * tokens + t) * dv + j] =
                    (0..dk).map(|i| s[i * dv + j] * at(&q, dk, i)).sum();
            }
        }
    }
    (out, s)
}

fn delta_example(d: &Device, tokens: usize) -> (DeltaInputs, DeltaHeads) {
    let heads = DeltaHeads {
        key_heads: 2,
        value_heads: 4,
        key_dim: 8,
        value_dim: 6,
    };
    let width = 2 * heads.key_heads * heads.key_dim + heads.value_heads * heads.value_dim;
    let n = |s: [usize; 2]| Tensor::<2>::random(s, Distribution::Normal(0.0, 1.0), d);
    let qkv = n([tokens, width]);
    let (b, a) = (
        n([tokens, heads.value_heads]),
        n([tokens, heads.value_heads]),
    );
    let a_log = Tensor::<1>::random([heads.value_heads], Distribution::Uniform(-1.0, 1.0), d);
    let dt_bias = Tensor::<1>::random([heads.value_heads], Distribution::Uniform(-1.0, 1.0), d);
    (delta_inputs(qkv, b, a, &a_log, &dt_bias, heads), heads)
}

#[test]
fn the_chunked_delta_rule_equals_the_recurrent_one_and_a_naive_loop() {
    let d = device();
    let tokens = 11;
    let (x, heads) = delta_example(&d, tokens);
    let shape = [heads.value_heads, heads.key_dim, heads.value_dim];
    let s0 = Tensor::<3>::random(shape, Distribution::Normal(0.0, 0.5), &d);
    let (want_out, want_state) = naive_delta(&x, values(s0.clone()));
    let (out, state) = delta_recurrent(x.clone(), s0.clone());
    assert_close("recurrent", &values(out), &want_out, 1e-4);
    assert_close("recurrent state", &values(state), &want_state, 1e-4);
    // Chunks that divide the prompt, that leave a remainder, one longer than it.
    for chunk in [1, 2, 4, 16] {
        let (out, state) = delta_chunked(x.clone(), s0.clone(), chunk);
        assert_eq!(out.dims(), [heads.value_heads, tokens, heads.value_dim]);
        assert_close(&format!("chunk {chunk}"), &values(out), &want_out, 1e-4);
        assert_close(
            &format!("chunk {chunk} state"),
            &values(state),
            &want_state,
            1e-4,
        );
    }
}

#[test]
fn a_prompt_in_chunks_then_decode_steps_equal_one_recurrent_pass() {
    let d = device();
    let (tokens, prompt) = (9, 6);
    let (x, heads) = delta_example(&d, tokens);
    let zero = Tensor::<3>::zeros([heads.value_heads, heads.key_dim, heads.value_dim], &d);
    let (want, _) = naive_delta(&x, values(zero.clone()));
    let part = |from, len| DeltaInputs {
        q: x.q.clone().narrow(1, from, len),
        k: x.k.clone().narrow(1, from, len),
        v: x.v.clone().narrow(1, from, len),
        g: x.g.clone().narrow(1, from, len),
        beta: x.beta.clone().narrow(1, from, len),
    };
    let (out, mut state) = delta_chunked(part(0, prompt), zero, 4);
    let mut per_head: Vec<Tensor<3>> = vec![out];
    for t in prompt..tokens {
        let (o, s) = delta_recurrent(part(t, 1), state);
        state = s;
        per_head.push(o);
    }
    let got = values(Tensor::cat(per_head, 1));
    assert_close("prefill then decode", &got, &want, 1e-4);
}

#[test]
fn delta_inputs_normalise_q_and_k_and_share_key_heads_among_value_heads() {
    let d = device();
    let (x, heads) = delta_example(&d, 5);
    let group = heads.value_heads / heads.key_heads;
    let k = values(x.k.clone());
    let q = values(x.q.clone());
    let dk = heads.key_dim;
    for h in 0..heads.value_heads {
        for t in 0..5 {
            let row = |m: &[f64]| m[(h * 5 + t) * dk..(h * 5 + t + 1) * dk].to_vec();
            let norm = |r: &[f64]| r.iter().map(|e| e * e).sum::<f64>().sqrt();
            assert!((norm(&row(&k)) - 1.0).abs() < 1e-4, "k is unit length");
            assert!(
                (norm(&row(&q)) - 1.0 / (dk as f64).sqrt()).abs() < 1e-4,
                "q is scaled"
            );
            // Value heads of one group read the same key head.
            let first = (h / group) * group;
            let same = |m: &[f64]| m[(first * 5 + t) * dk..(first * 5 + t + 1) * dk].to_vec();
            assert_eq!(row(&k), same(&k));
        }
    }
    // The decay is a decay, the write strength a share.
    assert!(values(x.g).iter().all(|g| *g < 0.0));
    assert!(values(x.beta).iter().all(|b| *b > 0.0 && *b < 1.0));
}
