//! One benchmark per operator shape: inputs are prepared once, in enough copies that
//! cycling through them defeats the caches, then the operator is timed.

use crate::ops;
use crate::timing::{Measurement, TimingOptions, measure};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use std::any::Any;
use tailor_cost::OpShape;
use tailor_spec::FfnKind;

/// Bytes the copies of one benchmark's data should span: above any last-level cache.
const CYCLE_BYTES: u128 = 64 << 20;

fn weights<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::random(shape, Distribution::Uniform(-0.1, 0.1), device)
}

fn bias(n: usize, on: bool, device: &Device) -> Option<Tensor<1>> {
    on.then(|| weights([n], device))
}

/// How many copies of the data to cycle through.
pub fn copies(shape: &OpShape) -> usize {
    let bytes = shape.bytes(4).max(1);
    (CYCLE_BYTES.div_ceil(bytes) as usize).clamp(2, 8)
}

type Call = Box<dyn FnMut(usize) -> Box<dyn Any>>;

/// Builds the timed call of a shape (inputs prepared and kept inside).
pub fn prepare(shape: &OpShape, device: &Device) -> Call {
    let n = copies(shape);
    let d = device.clone();
    let u = |x: u64| x as usize;
    match *shape {
        OpShape::Embedding {
            tokens,
            vocab,
            hidden,
        } => {
            let tables: Vec<_> = (0..n).map(|_| weights([u(vocab), u(hidden)], &d)).collect();
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
            let xs: Vec<_> = (0..n)
                .map(|_| weights([u(tokens), u(hidden)], &d))
                .collect();
            let ws: Vec<_> = (0..n).map(|_| weights([u(hidden)], &d)).collect();
            let bs: Vec<_> = (0..n).map(|_| bias(u(hidden), b, &d)).collect();
            Box::new(move |i| {
                let k = i % n;
                Box::new(ops::norm(xs[k].clone(), kind, &ws[k], bs[k].as_ref(), 1e-5))
            })
        }
        OpShape::Linear {
            tokens,
            input,
            output,
            bias: b,
        } => {
            let xs: Vec<_> = (0..n).map(|_| weights([u(tokens), u(input)], &d)).collect();
            let ws: Vec<_> = (0..n).map(|_| weights([u(input), u(output)], &d)).collect();
            let bs: Vec<_> = (0..n).map(|_| bias(u(output), b, &d)).collect();
            Box::new(move |i| {
                let k = i % n;
                Box::new(ops::linear(xs[k].clone(), &ws[k], bs[k].as_ref()))
            })
        }
        OpShape::Attention {
            heads,
            kv_heads,
            head_dim,
            q_len,
            kv_len,
            causal,
        } => {
            let (h, kv, dim) = (u(heads), u(kv_heads), u(head_dim));
            if causal {
                let qs: Vec<_> = (0..n).map(|_| weights([1, h, u(q_len), dim], &d)).collect();
                let ks: Vec<_> = (0..n)
                    .map(|_| weights([1, kv, u(kv_len), dim], &d))
                    .collect();
                let vs: Vec<_> = (0..n)
                    .map(|_| weights([1, kv, u(kv_len), dim], &d))
                    .collect();
                Box::new(move |i| {
                    let k = i % n;
                    Box::new(ops::attention_prefill(
                        qs[k].clone(),
                        ks[k].clone(),
                        vs[k].clone(),
                    ))
                })
            } else {
                let cached = u(kv_len) - 1;
                let qs: Vec<_> = (0..n).map(|_| weights([1, h, 1, dim], &d)).collect();
                let kc: Vec<_> = (0..n).map(|_| weights([1, kv, cached, dim], &d)).collect();
                let vc: Vec<_> = (0..n).map(|_| weights([1, kv, cached, dim], &d)).collect();
                let kn: Vec<_> = (0..n).map(|_| weights([1, kv, 1, dim], &d)).collect();
                let vn: Vec<_> = (0..n).map(|_| weights([1, kv, 1, dim], &d)).collect();
                Box::new(move |i| {
                    let k = i % n;
                    let out = ops::attention_decode(
                        qs[k].clone(),
                        kc[k].clone(),
                        vc[k].clone(),
                        kn[k].clone(),
                        vn[k].clone(),
                    );
                    Box::new(out)
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
            let xs: Vec<_> = (0..n).map(|_| weights([t, hd], &d)).collect();
            let ws: Vec<ops::FfnWeights> = (0..n)
                .map(|_| ops::FfnWeights {
                    gate: (kind == FfnKind::Gated).then(|| (weights([hd, f], &d), bias(f, b, &d))),
                    up: (weights([hd, f], &d), bias(f, b, &d)),
                    down: (weights([f, hd], &d), bias(hd, b, &d)),
                })
                .collect();
            Box::new(move |i| {
                let k = i % n;
                Box::new(ops::ffn(xs[k].clone(), kind, activation, &ws[k]))
            })
        }
    }
}

/// Times one shape on a device. One untimed call and a sync come first, so lazily
/// generated inputs (which the call holds) are in memory before anything is timed.
pub fn time_shape(
    shape: &OpShape,
    device: &Device,
    opts: &TimingOptions,
) -> Result<Measurement, String> {
    let mut call = prepare(shape, device);
    drop(call(0));
    let _ = device.sync();
    let mut failed = None;
    let m = measure(opts, &mut call, || {
        if let Err(e) = device.sync() {
            failed.get_or_insert_with(|| format!("{e:?}"));
        }
    });
    match failed {
        Some(e) => Err(format!("{shape}: device failed: {e}")),
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
