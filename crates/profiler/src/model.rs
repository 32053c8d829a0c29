//! A whole decoder with random weights, built from any [`ModelSpec`] out of the same
//! operators the profiler times ([`crate::ops`]): what proves a prediction.
//!
//! The forward pass is exactly the operator list of [`tailor_cost::OpShape::pass`]:
//! embedding; per layer a norm, the q/k/v projections, the attention block (heads, RoPE,
//! KV cache, attention), the output projection, a residual add, a norm, the FFN and a
//! residual add; the final norm and the LM head on the last position only.

use crate::DeviceFailed;
use crate::ops::{self, FfnWeights, Heads, Rope};
use crate::timing::{Measurement, TimingOptions, measure, measure_interleaved};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use std::time::Instant;
use tailor_spec::{FfnKind, Invalid, ModelSpec};

type Lin = (Tensor<2>, Option<Tensor<1>>);

#[derive(Debug, Clone)]
struct Norm {
    weight: Tensor<1>,
    bias: Option<Tensor<1>>,
}

#[derive(Debug, Clone)]
struct Layer {
    attn_norm: Norm,
    q: Lin,
    k: Lin,
    v: Lin,
    o: Lin,
    ffn_norm: Norm,
    ffn: FfnWeights,
}

/// The keys (after RoPE) and values of every layer, `[1, kv_heads, tokens, head_dim]`.
#[derive(Debug, Clone)]
pub struct KvCache {
    pub layers: Vec<(Tensor<4>, Tensor<4>)>,
}

impl KvCache {
    /// Tokens held.
    pub fn len(&self) -> usize {
        self.layers.first().map_or(0, |(k, _)| k.dims()[2])
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A random-weight decoder (f32, batch 1).
#[derive(Debug, Clone)]
pub struct Model {
    spec: ModelSpec,
    heads: Heads,
    embed: Tensor<2>,
    layers: Vec<Layer>,
    final_norm: Norm,
    /// `[hidden, vocab]`; `None` when tied to the embedding table.
    lm_head: Option<Tensor<2>>,
    rope: Rope,
    device: Device,
}

/// Initial weights: uniform with a standard deviation of about 0.02 (the usual init), so
/// activations stay finite and no denormals slow the arithmetic.
fn weights<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::random(shape, Distribution::Uniform(-0.035, 0.035), device)
}

fn linear(input: usize, output: usize, bias: bool, device: &Device) -> Lin {
    (
        weights([input, output], device),
        bias.then(|| weights([output], device)),
    )
}

fn norm(hidden: usize, bias: bool, device: &Device) -> Norm {
    Norm {
        weight: Tensor::ones([hidden], device),
        bias: bias.then(|| Tensor::zeros([hidden], device)),
    }
}

impl Model {
    /// Builds a model of `spec` whose RoPE tables reach `positions` tokens. Fails with the
    /// spec's own validation message.
    pub fn random(spec: &ModelSpec, positions: usize, device: &Device) -> Result<Self, Invalid> {
        spec.validate()?;
        let u = |x: u64| x as usize;
        let (h, f) = (u(spec.hidden_size), u(spec.intermediate_size));
        let heads = Heads {
            heads: u(spec.num_heads),
            kv_heads: u(spec.num_kv_heads),
            head_dim: u(spec.head_dim()),
        };
        let (qw, kvw) = (u(spec.q_width()), u(spec.kv_width()));
        let layers = (0..spec.num_layers)
            .map(|_| Layer {
                attn_norm: norm(h, spec.norm_bias, device),
                q: linear(h, qw, spec.qkv_bias, device),
                k: linear(h, kvw, spec.qkv_bias, device),
                v: linear(h, kvw, spec.qkv_bias, device),
                o: linear(qw, h, spec.o_bias, device),
                ffn_norm: norm(h, spec.norm_bias, device),
                ffn: FfnWeights {
                    gate: (spec.ffn == FfnKind::Gated).then(|| linear(h, f, spec.mlp_bias, device)),
                    up: linear(h, f, spec.mlp_bias, device),
                    down: linear(f, h, spec.mlp_bias, device),
                },
            })
            .collect();
        Ok(Self {
            spec: spec.clone(),
            heads,
            embed: weights([u(spec.vocab_size), h], device),
            layers,
            final_norm: norm(h, spec.norm_bias, device),
            lm_head: (!spec.tie_embeddings).then(|| weights([h, u(spec.vocab_size)], device)),
            rope: Rope::new(positions.max(1), heads.head_dim, spec.rope_theta, device),
            device: device.clone(),
        })
    }

    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// Positions the RoPE tables reach: the longest prompt plus decoded tokens.
    pub fn positions(&self) -> usize {
        self.rope.cos.dims()[0]
    }

    /// Parameters held (the RoPE tables are buffers, not parameters).
    pub fn num_params(&self) -> u64 {
        let n2 = |t: &Tensor<2>| t.shape().num_elements() as u64;
        let n1 = |t: &Option<Tensor<1>>| t.as_ref().map_or(0, |t| t.dims()[0] as u64);
        let lin = |(w, b): &Lin| n2(w) + n1(b);
        let nrm = |n: &Norm| n.weight.dims()[0] as u64 + n1(&n.bias);
        let layers: u64 = self
            .layers
            .iter()
            .map(|l| {
                nrm(&l.attn_norm)
                    + lin(&l.q)
                    + lin(&l.k)
                    + lin(&l.v)
                    + lin(&l.o)
                    + nrm(&l.ffn_norm)
                    + l.ffn.gate.as_ref().map_or(0, lin)
                    + lin(&l.ffn.up)
                    + lin(&l.ffn.down)
            })
            .sum();
        n2(&self.embed) + layers + nrm(&self.final_norm) + self.lm_head.as_ref().map_or(0, n2)
    }

    fn norm(&self, x: Tensor<2>, n: &Norm) -> Tensor<2> {
        ops::norm(
            x,
            self.spec.norm,
            &n.weight,
            n.bias.as_ref(),
            self.spec.norm_eps,
        )
    }

    /// One block: `attend` maps the projected q, k, v to the attention output (before the
    /// output projection) and the layer's new cache. `marks` hears the end of each
    /// operator (a no-op except when a pass is timed operator by operator).
    fn block(
        &self,
        layer: &Layer,
        x: Tensor<2>,
        attend: impl FnOnce(Tensor<2>, Tensor<2>, Tensor<2>) -> (Tensor<2>, Tensor<4>, Tensor<4>),
        marks: &mut dyn FnMut(PassOp),
    ) -> (Tensor<2>, Tensor<4>, Tensor<4>) {
        let hn = self.norm(x.clone(), &layer.attn_norm);
        marks(PassOp::Norm);
        let q = ops::linear(hn.clone(), &layer.q.0, layer.q.1.as_ref());
        marks(PassOp::QProj);
        let k = ops::linear(hn.clone(), &layer.k.0, layer.k.1.as_ref());
        marks(PassOp::KvProj);
        let v = ops::linear(hn, &layer.v.0, layer.v.1.as_ref());
        marks(PassOp::KvProj);
        let (a, kc, vc) = attend(q, k, v);
        marks(PassOp::Attention);
        let o = ops::linear(a, &layer.o.0, layer.o.1.as_ref());
        marks(PassOp::OProj);
        let x = x + o;
        marks(PassOp::Residual);
        let hn = self.norm(x.clone(), &layer.ffn_norm);
        marks(PassOp::Norm);
        let f = ops::ffn(hn, self.spec.ffn, self.spec.activation, &layer.ffn);
        marks(PassOp::Ffn);
        let x = x + f;
        marks(PassOp::Residual);
        (x, kc, vc)
    }

    /// Logits `[1, vocab]` of the last row of `x`.
    fn head(&self, x: Tensor<2>, marks: &mut dyn FnMut(PassOp)) -> Tensor<2> {
        let last = x.dims()[0] - 1;
        let x = self.norm(x.narrow(0, last, 1), &self.final_norm);
        marks(PassOp::FinalNorm);
        let logits = match &self.lm_head {
            Some(w) => ops::lm_head(x, w, false),
            None => ops::lm_head(x, &self.embed, true),
        };
        marks(PassOp::LmHead);
        logits
    }

    /// Processes a prompt: the logits of its last position and the KV cache.
    pub fn prefill(&self, ids: Tensor<1, Int>) -> (Tensor<2>, KvCache) {
        let mut x = ops::embedding(&self.embed, ids);
        let mut cache = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            let (y, k, v) = self.block(
                layer,
                x,
                |q, k, v| ops::attention_prefill(q, k, v, self.heads, &self.rope),
                &mut |_| {},
            );
            x = y;
            cache.push((k, v));
        }
        (self.head(x, &mut |_| {}), KvCache { layers: cache })
    }

    /// One decode step of token `id` (`[1]`) after the cached tokens: its logits and the
    /// grown cache. Each layer's old cache is released as soon as it has grown (unless the
    /// caller still holds it), so a decode loop holds one extra layer's cache at most.
    pub fn decode(&self, id: Tensor<1, Int>, cache: KvCache) -> (Tensor<2>, KvCache) {
        self.decode_marked(id, cache, &mut |_| {})
    }

    /// [`Model::decode`], telling `marks` where each operator ends.
    pub(crate) fn decode_marked(
        &self,
        id: Tensor<1, Int>,
        cache: KvCache,
        marks: &mut dyn FnMut(PassOp),
    ) -> (Tensor<2>, KvCache) {
        let mut x = ops::embedding(&self.embed, id);
        marks(PassOp::Embedding);
        let mut grown = Vec::with_capacity(self.layers.len());
        for (layer, (kc, vc)) in self.layers.iter().zip(cache.layers) {
            let (y, k, v) = self.block(
                layer,
                x,
                |q, k, v| ops::attention_decode(q, k, v, self.heads, &self.rope, kc, vc),
                marks,
            );
            x = y;
            grown.push((k, v));
        }
        (self.head(x, marks), KvCache { layers: grown })
    }

    /// A cache of `tokens` random keys and values, as a prompt of that length would leave.
    pub fn random_cache(&self, tokens: usize) -> KvCache {
        let shape = [1, self.heads.kv_heads, tokens, self.heads.head_dim];
        KvCache {
            layers: self
                .layers
                .iter()
                .map(|_| (weights(shape, &self.device), weights(shape, &self.device)))
                .collect(),
        }
    }

    /// `tokens` token ids spread over the vocabulary.
    pub fn prompt(&self, tokens: usize) -> Tensor<1, Int> {
        let vocab = self.spec.vocab_size as usize;
        let ids: Vec<i64> = (0..tokens)
            .map(|t| ((t * 7919 + 13) % vocab) as i64)
            .collect();
        Tensor::from_data(TensorData::new(ids, [tokens]), &self.device)
    }
}

/// Whole-model timings: a prefill of the prompt, a decode step at the context.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelTiming {
    pub prefill: Measurement,
    pub decode: Measurement,
}

/// Times a real prefill of `prompt` tokens and a real decode step after `context` cached
/// tokens with the profiler's method (warm-up, sync after every call, repeats until
/// stable). One untimed call of each comes first, so lazily created weights are in memory.
pub fn time_model(
    model: &Model,
    prompt: usize,
    context: usize,
    opts: &TimingOptions,
) -> Result<ModelTiming, DeviceFailed> {
    let device = &model.device;
    let mut failed: Option<String> = None;
    let mut sync = || {
        if let Err(e) = device.sync() {
            failed.get_or_insert_with(|| format!("{e:?}"));
        }
    };
    let ids = model.prompt(prompt);
    drop(model.prefill(ids.clone()));
    sync();
    let prefill = measure(opts, |_| model.prefill(ids.clone()), &mut sync);
    let cache = model.random_cache(context);
    let id = model.prompt(1);
    drop(model.decode(id.clone(), cache.clone()));
    sync();
    let decode = measure(opts, |_| model.decode(id.clone(), cache.clone()), &mut sync);
    match failed {
        Some(message) => Err(DeviceFailed {
            during: "timing the model".into(),
            message,
        }),
        None => Ok(ModelTiming { prefill, decode }),
    }
}

/// Times several models on one device against each other: their prefills interleaved,
/// then their decode steps interleaved ([`measure_interleaved`]), so that the machine's
/// compute and memory-bandwidth swings from one second to the next fall on all of them
/// alike and their ratios are what is left. The models must live on one device.
pub fn time_models(
    models: &[Model],
    prompt: usize,
    context: usize,
    opts: &TimingOptions,
) -> Result<Vec<ModelTiming>, DeviceFailed> {
    let Some(device) = models.first().map(|m| m.device.clone()) else {
        return Ok(Vec::new());
    };
    let mut failed: Option<String> = None;
    let mut sync = || {
        if let Err(e) = device.sync() {
            failed.get_or_insert_with(|| format!("{e:?}"));
        }
    };
    let ids: Vec<_> = models.iter().map(|m| m.prompt(prompt)).collect();
    let prefill = measure_interleaved(
        opts,
        models.len(),
        |k, _| models[k].prefill(ids[k].clone()),
        &mut sync,
    );
    let caches: Vec<_> = models.iter().map(|m| m.random_cache(context)).collect();
    let next: Vec<_> = models.iter().map(|m| m.prompt(1)).collect();
    let decode = measure_interleaved(
        opts,
        models.len(),
        |k, _| models[k].decode(next[k].clone(), caches[k].clone()),
        &mut sync,
    );
    match failed {
        Some(message) => Err(DeviceFailed {
            during: "timing the models".into(),
            message,
        }),
        None => Ok(prefill
            .into_iter()
            .zip(decode)
            .map(|(prefill, decode)| ModelTiming { prefill, decode })
            .collect()),
    }
}

/// Runs the inference whose peak memory is predicted: a prefill of `prompt` tokens, then a
/// decode step after `context` cached tokens (the cache grows to `context + 1`). Outputs
/// are dropped before returning.
pub fn run_inference(model: &Model, prompt: usize, context: usize) -> Result<(), DeviceFailed> {
    let device = &model.device;
    let failed = |e| DeviceFailed {
        during: "running the inference".into(),
        message: format!("{e:?}"),
    };
    let (logits, cache) = model.prefill(model.prompt(prompt));
    device.sync().map_err(failed)?;
    drop((logits, cache));
    let cache = model.random_cache(context);
    let (logits, grown) = model.decode(model.prompt(1), cache);
    device.sync().map_err(failed)?;
    drop((logits, grown));
    Ok(())
}

/// The operators of a pass, in the order of the rows of [`tailor_cost::OpShape::pass`]
/// (row `i` is `PassOp` number `i`): what [`time_decode_ops`] times one by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PassOp {
    Embedding,
    /// The attention and FFN norms of every layer.
    Norm,
    QProj,
    /// The k and v projections of every layer.
    KvProj,
    Attention,
    OProj,
    /// Both residual adds of every layer.
    Residual,
    Ffn,
    FinalNorm,
    LmHead,
}

impl PassOp {
    pub const ALL: [PassOp; 10] = [
        PassOp::Embedding,
        PassOp::Norm,
        PassOp::QProj,
        PassOp::KvProj,
        PassOp::Attention,
        PassOp::OProj,
        PassOp::Residual,
        PassOp::Ffn,
        PassOp::FinalNorm,
        PassOp::LmHead,
    ];
}

/// A decode step timed operator by operator, in its chain: each operator's time summed
/// over the layers, per step.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainTiming {
    /// One row per [`PassOp::ALL`]: the operator's time per step (all its calls).
    pub ops: Vec<Measurement>,
    /// The marked step whole (the sum of its operators, with a sync after each).
    pub marked: Measurement,
    /// The same step unmarked (no sync inside), timed alternately with the marked one.
    pub plain: Measurement,
}

/// Times decode steps after `context` cached tokens with a sync and a clock read after
/// every operator, alternating with unmarked steps, until `opts.min_time` of marked work
/// and at least 20 steps of each (at most `opts.max_time`): where the step's time goes
/// when the operators run as the model chains them (inputs from the previous operator,
/// weights as the model holds them), to set beside the profile's looped entries.
pub fn time_decode_ops(
    model: &Model,
    context: usize,
    opts: &TimingOptions,
) -> Result<ChainTiming, DeviceFailed> {
    let device = &model.device;
    let mut failed: Option<String> = None;
    let cache = model.random_cache(context);
    let id = model.prompt(1);
    let warm = Instant::now();
    let mut warmed = 0;
    while warmed < 2 || warm.elapsed() < opts.warmup {
        drop(model.decode(id.clone(), cache.clone()));
        if let Err(e) = device.sync() {
            failed.get_or_insert_with(|| format!("{e:?}"));
        }
        warmed += 1;
    }
    let mut per_op: Vec<Vec<f64>> = vec![Vec::new(); PassOp::ALL.len()];
    let (mut marked, mut plain) = (Vec::new(), Vec::new());
    let started = Instant::now();
    let mut spent = std::time::Duration::ZERO;
    while marked.len() < 20 || (spent < opts.min_time && started.elapsed() < opts.max_time) {
        let mut step = vec![0.0f64; PassOp::ALL.len()];
        let t0 = Instant::now();
        let mut last = t0;
        let out = model.decode_marked(id.clone(), cache.clone(), &mut |op| {
            if let Err(e) = device.sync() {
                failed.get_or_insert_with(|| format!("{e:?}"));
            }
            let now = Instant::now();
            step[op as usize] += (now - last).as_secs_f64() * 1e6;
            last = now;
        });
        let dt = t0.elapsed();
        drop(out);
        spent += dt;
        marked.push(dt.as_secs_f64() * 1e6);
        for (all, us) in per_op.iter_mut().zip(step) {
            all.push(us);
        }
        let t0 = Instant::now();
        let out = model.decode(id.clone(), cache.clone());
        if let Err(e) = device.sync() {
            failed.get_or_insert_with(|| format!("{e:?}"));
        }
        plain.push(t0.elapsed().as_secs_f64() * 1e6);
        drop(out);
        if marked.len() >= 100_000 {
            break;
        }
    }
    if let Some(message) = failed {
        return Err(DeviceFailed {
            during: "timing a decode step operator by operator".into(),
            message,
        });
    }
    let of = |samples: Vec<f64>| {
        let (median_us, p10_us, p90_us) = crate::timing::summarize(&samples);
        Measurement {
            samples_us: samples,
            median_us,
            p10_us,
            p90_us,
            capped: false,
        }
    };
    Ok(ChainTiming {
        ops: per_op.into_iter().map(of).collect(),
        marked: of(marked),
        plain: of(plain),
    })
}

/// One knowledge edit of a model, ready to run its steps ([`tailor_cost::edit`] describes
/// what is priced): the prompt's prefix computed through the edited layer, the one-hot
/// column of the subject's position, the target one-hots of the loss, the optimised
/// vector `v` and the zo directions.
#[derive(Debug)]
pub struct EditRun {
    model: Model,
    /// Hidden states after the edited layer, `[E, hidden]`.
    prefix: Tensor<2>,
    /// `[E, 1]`: 1 at the subject's last position (the middle of the prompt).
    at: Tensor<2>,
    /// `[T, vocab]` one-hots of the target tokens.
    targets: Tensor<2>,
    v: Tensor<2>,
    directions: Vec<Tensor<2>>,
    layer: usize,
    target_tokens: usize,
}

/// Step size of the zo estimate's perturbation and of the update (their values do not
/// change the work).
const EPS: f64 = 1e-3;
const LR: f64 = 0.1;

impl EditRun {
    /// Builds `model`'s edit of `e` on the model's device (the autodiff view of a device
    /// for bp steps) and computes its prefix.
    pub fn new(model: Model, e: &tailor_cost::EditWorkload) -> Self {
        let spec = model.spec.clone();
        let d = model.device.clone();
        let (tokens, t) = (e.tokens as usize, e.target_tokens as usize);
        let layer = e.layer_index(&spec) as usize;
        let prefix = model.edit_prefix(model.prompt(tokens), layer);
        let mut at = vec![0f32; tokens];
        at[tokens / 2] = 1.0;
        let at = Tensor::from_data(TensorData::new(at, [tokens, 1]), &d);
        let vocab = spec.vocab_size as usize;
        let mut onehot = vec![0f32; t * vocab];
        for (i, row) in onehot.chunks_mut(vocab).enumerate() {
            row[(i * 7919 + 29) % vocab] = 1.0;
        }
        let targets = Tensor::from_data(TensorData::new(onehot, [t, vocab]), &d);
        let h = spec.hidden_size as usize;
        let v = Tensor::zeros([1, h], &d);
        let directions = (0..e.queries)
            .map(|_| Tensor::random([1, h], Distribution::Normal(0.0, 1.0), &d))
            .collect();
        Self {
            model,
            prefix,
            at,
            targets,
            v,
            directions,
            layer,
            target_tokens: t,
        }
    }

    /// The loss of one forward pass with `v` added: the negative log-likelihood of the
    /// targets, `[1]`.
    pub(crate) fn loss(&self, v: Tensor<2>) -> Tensor<1> {
        let logits = self.model.edit_pass(
            self.prefix.clone(),
            v,
            &self.at,
            self.layer,
            self.target_tokens,
        );
        let logp = burn::tensor::activation::log_softmax(logits, 1);
        (logp * self.targets.clone()).sum().neg()
    }

    /// One forward-only zeroth-order step: per direction `u`, the loss at `v + eps u` and
    /// at `v - eps u`, their difference along `u` as the gradient estimate; then the
    /// update of `v`. Returns the new `v`.
    pub fn zo_step(&self) -> Tensor<2> {
        let mut v = self.v.clone();
        for u in &self.directions {
            let up = self.loss(self.v.clone() + u.clone() * EPS);
            let down = self.loss(self.v.clone() - u.clone() * EPS);
            let slope = (up - down).reshape([1, 1]) / (2.0 * EPS);
            v = v - u.clone() * slope * LR;
        }
        v
    }

    /// One backpropagation step (the model must live on an autodiff device): the loss
    /// with `v` a leaf requiring its gradient, the backward, and the update of `v`.
    /// Returns the new `v`.
    pub fn bp_step(&self) -> Tensor<2> {
        let v = self.v.clone().detach().require_grad();
        let grads = self.loss(v.clone()).backward();
        let g = v
            .grad(&grads)
            .unwrap_or_else(|| v.clone().detach().zeros_like());
        self.v.clone().detach() - g * LR
    }

    /// Computes the prefix again (what the edit does once).
    pub fn prefix(&self, tokens: usize) -> Tensor<2> {
        self.model
            .edit_prefix(self.model.prompt(tokens), self.layer)
    }
}

impl Model {
    /// The hidden states of a prompt after layer `layer` (0-based): an edit's prefix.
    pub fn edit_prefix(&self, ids: Tensor<1, Int>, layer: usize) -> Tensor<2> {
        let mut x = ops::embedding(&self.embed, ids);
        for l in &self.layers[..=layer] {
            let (y, _, _) = self.block(
                l,
                x,
                |q, k, v| ops::attention_prefill(q, k, v, self.heads, &self.rope),
                &mut |_| {},
            );
            x = y;
        }
        x
    }

    /// One forward pass of an edit step: `prefix + at v` (v `[1, hidden]` added at the
    /// rows `at` marks), the layers above `layer` (their caches dropped), the final norm
    /// and the LM head over the last `targets` rows: logits `[targets, vocab]`.
    pub fn edit_pass(
        &self,
        prefix: Tensor<2>,
        v: Tensor<2>,
        at: &Tensor<2>,
        layer: usize,
        targets: usize,
    ) -> Tensor<2> {
        let mut x = prefix + at.clone().matmul(v);
        for l in &self.layers[layer + 1..] {
            let (y, _, _) = self.block(
                l,
                x,
                |q, k, v| ops::attention_prefill(q, k, v, self.heads, &self.rope),
                &mut |_| {},
            );
            x = y;
        }
        let rows = x.dims()[0];
        let x = self.norm(x.narrow(0, rows - targets, targets), &self.final_norm);
        match &self.lm_head {
            Some(w) => ops::lm_head(x, w, false),
            None => ops::lm_head(x, &self.embed, true),
        }
    }
}
