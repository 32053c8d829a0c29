//! One benchmark per operator shape, with the caches in the state a whole model leaves
//! them: the weights (and KV caches) an operator reads are cold, because a model streams
//! through more weights than any cache holds between two uses of one layer; the
//! activations it reads are hot, because the previous operator just wrote them. So the
//! weights are prepared in enough copies to span [`TimingOptions::cycle_bytes`] and
//! cycled, while the activations are one tensor reused. A state an operator writes (the
//! grown KV cache of a decode step, a DeltaNet state) is kept for `n` calls, as a model
//! keeps it until the next step: the next write lands in a buffer freed long ago (cold),
//! not in the one the previous call just freed (hot in the last-level cache, which made
//! attention over a 4,096-token cache 1.4x cheaper here than inside the model).

use crate::DeviceFailed;
use crate::mixers::{self, DeltaHeads, DeltaState, DeltaWeights};
use crate::ops;
use crate::timing::{Measurement, TimingOptions, measure};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use std::any::Any;
use tailor_cost::OpShape;
use tailor_spec::FfnKind;

/// At most this many copies, however small the weights (a norm's weight vector).
const MAX_COPIES: u128 = 1 << 15;

fn weights<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::random(shape, Distribution::Uniform(-0.1, 0.1), device)
}

/// `n` copies of a weight tensor in `n` distinct buffers: one is drawn at random and the
/// others copied from it. What the timing needs is distinct memory (so cycling through the
/// copies leaves each cold); the values are irrelevant to an f32 operator's speed, and
/// copying is 2-3x cheaper than drawing (96 MiB: 0.08 s against 0.19 s on the EPYC CI
/// machine), which is most of a profile session's setup.
fn weight_copies<const D: usize>(n: usize, shape: [usize; D], device: &Device) -> Vec<Tensor<D>> {
    let data = weights(shape, device).into_data();
    (0..n)
        .map(|_| Tensor::from_data(data.clone(), device))
        .collect()
}

/// [`weight_copies`] of a bias vector, or `n` times `None`.
fn bias_copies(n: usize, len: usize, on: bool, device: &Device) -> Vec<Option<Tensor<1>>> {
    if on {
        weight_copies(n, [len], device)
            .into_iter()
            .map(Some)
            .collect()
    } else {
        vec![None; n]
    }
}

/// Bytes of the weights and caches one call of `shape` reads (f32): what is cycled.
pub fn cold_bytes(shape: &OpShape) -> u128 {
    let w = |x: u64| u128::from(x);
    let b = |on: bool, n: u64| if on { w(n) } else { 0 };
    4 * match *shape {
        OpShape::Embedding { vocab, hidden, .. } => w(vocab) * w(hidden),
        OpShape::Norm { hidden, bias, .. } => w(hidden) + b(bias, hidden),
        OpShape::Residual { .. } => 0,
        OpShape::Linear {
            input,
            output,
            bias,
            ..
        } => w(input) * w(output) + b(bias, output),
        OpShape::LmHead { hidden, vocab, .. } => w(hidden) * w(vocab),
        OpShape::Grad { ref of } => cold_bytes(of) / 4,
        OpShape::Attention {
            kv_heads,
            head_dim,
            kv_len,
            causal,
            ..
        } => {
            if causal {
                0
            } else {
                2 * w(kv_heads) * w(head_dim) * (w(kv_len) - 1)
            }
        }
        OpShape::Gate { .. } => 0,
        // The kernel, and a decode step's rolling state.
        OpShape::ShortConv {
            tokens,
            hidden,
            kernel,
            bias,
        } => {
            w(hidden) * w(kernel)
                + b(bias, hidden)
                + if tokens == 1 {
                    (w(kernel) - 1) * w(hidden)
                } else {
                    0
                }
        }
        // The conv kernel, the per-head parameters and the norm, and a decode step's
        // states (the recurrent one is most of it).
        OpShape::LinearAttention {
            tokens,
            key_heads,
            value_heads,
            key_dim,
            value_dim,
            kernel,
        } => {
            let channels = 2 * w(key_heads) * w(key_dim) + w(value_heads) * w(value_dim);
            let state = if tokens == 1 {
                (w(kernel) - 1) * channels + w(value_heads) * w(key_dim) * w(value_dim)
            } else {
                0
            };
            channels * w(kernel) + 2 * w(value_heads) + w(value_dim) + state
        }
        OpShape::Ffn {
            hidden,
            intermediate,
            kind,
            bias,
            ..
        } => {
            let mats = if kind == FfnKind::Gated { 3 } else { 2 };
            mats * w(hidden) * w(intermediate)
                + b(bias, intermediate) * (mats - 1)
                + b(bias, hidden)
        }
    }
}

/// How many copies of the cold data to cycle through (1 when there is none).
pub fn copies(shape: &OpShape, cycle_bytes: u64) -> usize {
    match cold_bytes(shape) {
        0 => 1,
        bytes => u128::from(cycle_bytes).div_ceil(bytes).clamp(2, MAX_COPIES) as usize,
    }
}

type Call = Box<dyn FnMut(usize) -> Box<dyn Any>>;

/// `n` copies of a linear's weights `[input, output]`, then `n` of its bias.
fn linear_copies(
    n: usize,
    input: usize,
    output: usize,
    b: bool,
    d: &Device,
) -> (Vec<Tensor<2>>, Vec<Option<Tensor<1>>>) {
    (
        weight_copies(n, [input, output], d),
        bias_copies(n, output, b, d),
    )
}

/// `n` copies of a norm's weight, then `n` of its bias.
fn norm_copies(
    n: usize,
    hidden: usize,
    b: bool,
    d: &Device,
) -> (Vec<Tensor<1>>, Vec<Option<Tensor<1>>>) {
    (weight_copies(n, [hidden], d), bias_copies(n, hidden, b, d))
}

/// `n` copies of an LM head's matrix: `[vocab, hidden]` when tied (the embedding table),
/// else `[hidden, vocab]`.
fn head_copies(n: usize, hidden: usize, vocab: usize, tied: bool, d: &Device) -> Vec<Tensor<2>> {
    let shape = if tied {
        [vocab, hidden]
    } else {
        [hidden, vocab]
    };
    weight_copies(n, shape, d)
}

/// `n` copies of an FFN's weights.
fn ffn_copies(
    n: usize,
    hidden: usize,
    f: usize,
    kind: FfnKind,
    b: bool,
    d: &Device,
) -> Vec<ops::FfnWeights> {
    let pairs = |shape: [usize; 2], out: usize| {
        weight_copies(n, shape, d)
            .into_iter()
            .zip(bias_copies(n, out, b, d))
    };
    let mut gates = (kind == FfnKind::Gated).then(|| pairs([hidden, f], f));
    pairs([hidden, f], f)
        .zip(pairs([f, hidden], hidden))
        .map(|(up, down)| ops::FfnWeights {
            gate: gates.as_mut().and_then(Iterator::next),
            up,
            down,
        })
        .collect()
}

/// The heads, the RoPE tables for `kv_len` positions (none for a NoPE layer) and the q
/// and kv widths of an attention shape.
fn attention_parts(
    heads: u64,
    kv_heads: u64,
    head_dim: u64,
    kv_len: u64,
    rope: bool,
    d: &Device,
) -> (ops::Heads, Option<ops::Rope>, usize, usize) {
    let h = ops::Heads {
        heads: heads as usize,
        kv_heads: kv_heads as usize,
        head_dim: head_dim as usize,
    };
    let rope = rope.then(|| ops::Rope::new(kv_len as usize, h.head_dim, 10_000.0, d));
    (h, rope, h.heads * h.head_dim, h.kv_heads * h.head_dim)
}

/// `n` copies of a Gated DeltaNet layer's weights between its projections.
fn delta_copies(n: usize, heads: DeltaHeads, kernel: usize, d: &Device) -> Vec<DeltaWeights> {
    let convs = weight_copies(n, [heads.channels(), kernel], d);
    let a_logs = weight_copies(n, [heads.value_heads], d);
    let dt_biases = weight_copies(n, [heads.value_heads], d);
    let norms = weight_copies(n, [heads.value_dim], d);
    convs
        .into_iter()
        .zip(a_logs)
        .zip(dt_biases)
        .zip(norms)
        .map(|(((conv, a_log), dt_bias), norm)| DeltaWeights {
            heads,
            conv,
            a_log: a_log - 3.0,
            dt_bias,
            norm,
        })
        .collect()
}

/// `n` states a Gated DeltaNet decode step continues from (small random values), or `n`
/// zero states for a prompt.
fn delta_states(
    n: usize,
    heads: DeltaHeads,
    kernel: usize,
    decode: bool,
    d: &Device,
) -> Vec<DeltaState> {
    let zero = DeltaState::zeros(heads, kernel, d);
    if !decode {
        return vec![zero; n];
    }
    weight_copies(n, zero.conv.dims(), d)
        .into_iter()
        .zip(weight_copies(n, zero.state.dims(), d))
        .map(|(conv, state)| DeltaState { conv, state })
        .collect()
}

/// A `linear_attention` shape's heads, its `n` weight copies and `n` states (random for
/// a decode step, zeros for a prompt).
fn delta_parts(
    shape: &OpShape,
    n: usize,
    d: &Device,
) -> (DeltaHeads, Vec<DeltaWeights>, Vec<DeltaState>) {
    let OpShape::LinearAttention {
        tokens,
        key_heads,
        value_heads,
        key_dim,
        value_dim,
        kernel,
    } = *shape
    else {
        unreachable!("called with linear_attention shapes only")
    };
    let heads = DeltaHeads {
        key_heads: key_heads as usize,
        value_heads: value_heads as usize,
        key_dim: key_dim as usize,
        value_dim: value_dim as usize,
    };
    let kernel = kernel as usize;
    (
        heads,
        delta_copies(n, heads, kernel, d),
        delta_states(n, heads, kernel, tokens == 1, d),
    )
}

/// `n` copies of a decode step's key and value caches (`kv_len - 1` cached tokens).
fn cache_copies(
    n: usize,
    h: ops::Heads,
    kv_len: u64,
    d: &Device,
) -> (Vec<Tensor<4>>, Vec<Tensor<4>>) {
    let cache = [1, h.kv_heads, kv_len as usize - 1, h.head_dim];
    (weight_copies(n, cache, d), weight_copies(n, cache, d))
}

/// Builds the timed call of a shape (inputs prepared and kept inside).
pub fn prepare(shape: &OpShape, device: &Device, cycle_bytes: u64) -> Call {
    let n = copies(shape, cycle_bytes);
    let d = device.clone();
    let u = |x: u64| x as usize;
    match *shape {
        OpShape::Embedding {
            tokens,
            vocab,
            hidden,
        } => {
            let tables = weight_copies(n, [u(vocab), u(hidden)], &d);
            let ids: Vec<Tensor<1, Int>> = (0..n)
                .map(|c| {
                    let v: Vec<i64> = (0..tokens)
                        .map(|t| ((t * 7919 + c as u64 * 104_729) % vocab) as i64)
                        .collect();
                    Tensor::from_data(TensorData::new(v, [u(tokens)]), &d)
                })
                .collect();
            Box::new(move |i| Box::new(ops::embedding(&tables[i % n], ids[i % n].clone())))
        }
        OpShape::Norm {
            tokens,
            hidden,
            kind,
            bias: b,
        } => {
            let x = weights([u(tokens), u(hidden)], &d);
            let (ws, bs) = norm_copies(n, u(hidden), b, &d);
            Box::new(move |i| {
                let k = i % n;
                Box::new(ops::norm(x.clone(), kind, &ws[k], bs[k].as_ref(), 1e-5))
            })
        }
        OpShape::Linear {
            tokens,
            input,
            output,
            bias: b,
        } => {
            let x = weights([u(tokens), u(input)], &d);
            let (ws, bs) = linear_copies(n, u(input), u(output), b, &d);
            Box::new(move |i| {
                let k = i % n;
                Box::new(ops::linear(x.clone(), &ws[k], bs[k].as_ref()))
            })
        }
        OpShape::Residual { tokens, hidden } => {
            let x = weights([u(tokens), u(hidden)], &d);
            let y = weights([u(tokens), u(hidden)], &d);
            Box::new(move |_| Box::new(x.clone() + y.clone()))
        }
        OpShape::Grad { ref of } => grad_call(of, &d, n),
        OpShape::LmHead {
            tokens,
            hidden,
            vocab,
            tied,
        } => {
            let x = weights([u(tokens), u(hidden)], &d);
            let ws = head_copies(n, u(hidden), u(vocab), tied, &d);
            Box::new(move |i| Box::new(ops::lm_head(x.clone(), &ws[i % n], tied)))
        }
        OpShape::Attention {
            heads,
            kv_heads,
            head_dim,
            q_len,
            kv_len,
            causal,
            window,
            rope,
        } => {
            let (h, rope, qw, kvw) = attention_parts(heads, kv_heads, head_dim, kv_len, rope, &d);
            let t = u(q_len);
            let (q, k, v) = (
                weights([t, qw], &d),
                weights([t, kvw], &d),
                weights([t, kvw], &d),
            );
            match (causal, window) {
                (true, Some(w)) => Box::new(move |_| {
                    Box::new(mixers::sliding_prefill(
                        q.clone(),
                        k.clone(),
                        v.clone(),
                        h,
                        rope.as_ref(),
                        u(w),
                    ))
                }),
                (true, None) => Box::new(move |_| {
                    Box::new(ops::attention_prefill(
                        q.clone(),
                        k.clone(),
                        v.clone(),
                        h,
                        rope.as_ref(),
                    ))
                }),
                (false, _) => {
                    let (kc, vc) = cache_copies(n, h, kv_len, &d);
                    let mut kept: Vec<Option<(Tensor<4>, Tensor<4>)>> = vec![None; n];
                    Box::new(move |i| {
                        let c = i % n;
                        let (out, k_grown, v_grown) = ops::attention_decode(
                            q.clone(),
                            k.clone(),
                            v.clone(),
                            h,
                            rope.as_ref(),
                            kc[c].clone(),
                            vc[c].clone(),
                        );
                        // A model keeps the grown cache, so its next layer writes its own
                        // into a buffer last touched a step ago (cold). Kept for `n` calls
                        // here, the buffer this call writes was freed `n` calls ago, not by
                        // the call before (still in the last-level cache).
                        kept[c] = Some((k_grown, v_grown));
                        Box::new(out)
                    })
                }
            }
        }
        OpShape::Gate { tokens, width } => {
            let x = weights([u(tokens), u(width)], &d);
            let g = weights([u(tokens), u(width)], &d);
            Box::new(move |_| Box::new(ops::gate(x.clone(), g.clone())))
        }
        OpShape::ShortConv {
            tokens,
            hidden,
            kernel,
            bias: b,
        } => {
            let (t, hd, k) = (u(tokens), u(hidden), u(kernel));
            let bcx = weights([t, 3 * hd], &d);
            let ws = weight_copies(n, [hd, k], &d);
            let bs = bias_copies(n, hd, b, &d);
            let states = if tokens == 1 {
                weight_copies(n, [k - 1, hd], &d)
            } else {
                vec![mixers::conv_state(hd, k, &d); n]
            };
            Box::new(move |i| {
                let c = i % n;
                Box::new(mixers::short_conv(
                    bcx.clone(),
                    &ws[c],
                    bs[c].as_ref(),
                    states[c].clone(),
                ))
            })
        }
        OpShape::LinearAttention { tokens, .. } => {
            let (heads, ws, states) = delta_parts(shape, n, &d);
            let proj = weights([u(tokens), heads.proj_width()], &d);
            // The new state is kept for `n` calls, as a model keeps it (see attention).
            let mut kept: Vec<Option<mixers::DeltaState>> = vec![None; n];
            Box::new(move |i| {
                let c = i % n;
                let (out, state) = mixers::gated_deltanet(proj.clone(), &ws[c], states[c].clone());
                kept[c] = Some(state);
                Box::new(out)
            })
        }
        OpShape::Ffn {
            tokens,
            hidden,
            intermediate,
            kind,
            activation,
            bias: b,
        } => {
            let (t, hd, f) = (u(tokens), u(hidden), u(intermediate));
            let x = weights([t, hd], &d);
            let ws = ffn_copies(n, hd, f, kind, b, &d);
            Box::new(move |i| {
                let k = i % n;
                Box::new(ops::ffn(x.clone(), kind, activation, &ws[k]))
            })
        }
    }
}

/// The timed call of a gradient entry: on the autodiff view of `device`, the activation
/// inputs of `of` are leaves that require a gradient and the weights (cycled as for the
/// forward) are frozen; a call runs the forward, recording its graph, and the backward
/// of its output (seeded with ones) down to the inputs, and returns the gradients.
fn grad_call(of: &OpShape, device: &Device, n: usize) -> Call {
    let ad = device.clone().autodiff();
    let d = &ad;
    let u = |x: u64| x as usize;
    let leaf = |shape: [usize; 2]| weights(shape, d).require_grad();
    match *of {
        OpShape::Norm {
            tokens,
            hidden,
            kind,
            bias: b,
        } => {
            let x = leaf([u(tokens), u(hidden)]);
            let (ws, bs) = norm_copies(n, u(hidden), b, d);
            Box::new(move |i| {
                let k = i % n;
                Box::new(ops::norm(x.clone(), kind, &ws[k], bs[k].as_ref(), 1e-5).backward())
            })
        }
        OpShape::Linear {
            tokens,
            input,
            output,
            bias: b,
        } => {
            let x = leaf([u(tokens), u(input)]);
            let (ws, bs) = linear_copies(n, u(input), u(output), b, d);
            Box::new(move |i| {
                let k = i % n;
                Box::new(ops::linear(x.clone(), &ws[k], bs[k].as_ref()).backward())
            })
        }
        OpShape::Residual { tokens, hidden } => {
            let x = leaf([u(tokens), u(hidden)]);
            let y = leaf([u(tokens), u(hidden)]);
            Box::new(move |_| Box::new((x.clone() + y.clone()).backward()))
        }
        OpShape::LmHead {
            tokens,
            hidden,
            vocab,
            tied,
        } => {
            let x = leaf([u(tokens), u(hidden)]);
            let ws = head_copies(n, u(hidden), u(vocab), tied, d);
            Box::new(move |i| Box::new(ops::lm_head(x.clone(), &ws[i % n], tied).backward()))
        }
        OpShape::Attention {
            heads,
            kv_heads,
            head_dim,
            q_len,
            kv_len,
            causal,
            window,
            rope,
        } => {
            let (h, rope, qw, kvw) = attention_parts(heads, kv_heads, head_dim, kv_len, rope, d);
            let t = u(q_len);
            let (q, k, v) = (leaf([t, qw]), leaf([t, kvw]), leaf([t, kvw]));
            if causal {
                Box::new(move |_| {
                    let (out, _, _) = match window {
                        Some(w) => mixers::sliding_prefill(
                            q.clone(),
                            k.clone(),
                            v.clone(),
                            h,
                            rope.as_ref(),
                            u(w),
                        ),
                        None => ops::attention_prefill(
                            q.clone(),
                            k.clone(),
                            v.clone(),
                            h,
                            rope.as_ref(),
                        ),
                    };
                    Box::new(out.backward())
                })
            } else {
                let (kc, vc) = cache_copies(n, h, kv_len, d);
                Box::new(move |i| {
                    let c = i % n;
                    let (out, _, _) = ops::attention_decode(
                        q.clone(),
                        k.clone(),
                        v.clone(),
                        h,
                        rope.as_ref(),
                        kc[c].clone(),
                        vc[c].clone(),
                    );
                    Box::new(out.backward())
                })
            }
        }
        OpShape::Ffn {
            tokens,
            hidden,
            intermediate,
            kind,
            activation,
            bias: b,
        } => {
            let (t, hd, f) = (u(tokens), u(hidden), u(intermediate));
            let x = leaf([t, hd]);
            let ws = ffn_copies(n, hd, f, kind, b, d);
            Box::new(move |i| {
                let k = i % n;
                Box::new(ops::ffn(x.clone(), kind, activation, &ws[k]).backward())
            })
        }
        OpShape::Gate { tokens, width } => {
            let x = leaf([u(tokens), u(width)]);
            let g = leaf([u(tokens), u(width)]);
            Box::new(move |_| Box::new(ops::gate(x.clone(), g.clone()).backward()))
        }
        OpShape::ShortConv {
            tokens,
            hidden,
            kernel,
            bias: b,
        } => {
            let (t, hd, k) = (u(tokens), u(hidden), u(kernel));
            let bcx = leaf([t, 3 * hd]);
            let ws = weight_copies(n, [hd, k], d);
            let bs = bias_copies(n, hd, b, d);
            let state = mixers::conv_state(hd, k, d);
            Box::new(move |i| {
                let c = i % n;
                let (y, _) = mixers::short_conv(bcx.clone(), &ws[c], bs[c].as_ref(), state.clone());
                Box::new(y.backward())
            })
        }
        OpShape::LinearAttention { tokens, .. } => {
            let (heads, ws, states) = delta_parts(of, n, d);
            let proj = leaf([u(tokens), heads.proj_width()]);
            Box::new(move |i| {
                let c = i % n;
                let (y, _) = mixers::gated_deltanet(proj.clone(), &ws[c], states[c].clone());
                Box::new(y.backward())
            })
        }
        // The embedding's input is token ids (no gradient flows to them): its gradient
        // entry is its forward on the autodiff device. A gradient of a gradient entry is
        // timed as the gradient entry.
        OpShape::Embedding { .. } => prepare(of, &ad, 0),
        OpShape::Grad { ref of } => grad_call(of, device, n),
    }
}

/// Times one shape on a device. One untimed call and a sync come first, so lazily
/// generated inputs (which the call holds) are in memory before anything is timed.
pub fn time_shape(
    shape: &OpShape,
    device: &Device,
    opts: &TimingOptions,
) -> Result<Measurement, DeviceFailed> {
    let mut call = prepare(shape, device, opts.cycle_bytes);
    drop(call(0));
    let _ = device.sync();
    let mut failed = None;
    let m = measure(opts, &mut call, || {
        if let Err(e) = device.sync() {
            failed.get_or_insert_with(|| format!("{e:?}"));
        }
    });
    match failed {
        Some(message) => Err(DeviceFailed {
            during: format!("timing {shape}"),
            message,
        }),
        None => Ok(m),
    }
}

/// Forces lazily created inputs into memory (fusion would otherwise generate them inside
/// the timed kernel).
fn materialize<'a, const D: usize>(device: &Device, tensors: impl Iterator<Item = &'a Tensor<D>>) {
    for t in tensors {
        let first: [std::ops::Range<usize>; D] = std::array::from_fn(|_| 0..1);
        let _ = t.clone().slice(first).into_data();
    }
    let _ = device.sync();
}

/// Peak matmul throughput (GFLOP/s) of an `m x k x n` f32 matmul. Probes read one
/// element of their result back, so no lazy backend can skip or fuse away the work.
pub fn probe_matmul(device: &Device, [m, k, n]: [usize; 3], opts: &TimingOptions) -> f64 {
    let a: Vec<Tensor<2>> = (0..2).map(|_| weights([m, k], device)).collect();
    let b: Vec<Tensor<2>> = (0..2).map(|_| weights([k, n], device)).collect();
    materialize(device, a.iter().chain(&b));
    let r = measure(
        opts,
        |i| {
            a[i % 2]
                .clone()
                .matmul(b[i % 2].clone())
                .slice([0..1, 0..1])
                .into_data()
        },
        || {
            let _ = device.sync();
        },
    );
    2.0 * (m * k * n) as f64 / (r.median_us * 1e3)
}

/// Sustained read bandwidth (GB/s): the sum of an `elements`-long f32 tensor.
pub fn probe_bandwidth(device: &Device, elements: usize, opts: &TimingOptions) -> f64 {
    let x = weights([elements], device);
    materialize(device, std::iter::once(&x));
    let r = measure(
        opts,
        |_| x.clone().sum().into_data(),
        || {
            let _ = device.sync();
        },
    );
    (elements * 4) as f64 / (r.median_us * 1e3)
}
