//! A whole decoder with random weights, built from any [`ModelSpec`] out of the same
//! operators the profiler times ([`crate::ops`], [`crate::mixers`]): what proves a
//! prediction.
//!
//! The forward pass is exactly the operator list of [`tailor_cost::OpShape::pass`]: the
//! embedding; per layer the calls of `OpShape::layer_calls` (the mixer's norm, its
//! projections and core: attention with its q/k norms and output gate, a gated short
//! convolution or Gated DeltaNet; a residual add; the FFN's norm, the FFN and a residual
//! add; Gemma 3's norms after each block); the final norm and the LM head on the last
//! position only. Each layer keeps its own state between steps ([`LayerState`]).

use crate::DeviceFailed;
use crate::mixers::{self, DeltaHeads, DeltaState, DeltaWeights};
use crate::ops::{self, FfnWeights, Heads, Rope};
use crate::timing::{Measurement, TimingOptions, measure, measure_interleaved};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use std::collections::BTreeMap;
use std::time::Instant;
use tailor_cost::OpShape;
use tailor_spec::{Activation, FfnKind, Invalid, Layout, ModelSpec, Phase};

type Lin = (Tensor<2>, Option<Tensor<1>>);

#[derive(Debug, Clone)]
struct Norm {
    weight: Tensor<1>,
    bias: Option<Tensor<1>>,
}

/// The weights of a layer's mixer (one per layer, built once: the variants' sizes do not
/// matter).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
enum Mixer {
    Attention {
        attention: tailor_spec::Attention,
        heads: Heads,
        /// `[hidden, q_width]`, or twice as wide with an output gate (the gate's half last).
        q: Lin,
        k: Lin,
        v: Lin,
        /// The q and k head norms' weights (`[head_dim]`).
        qk_norm: Option<(Tensor<1>, Tensor<1>)>,
        o: Lin,
    },
    ShortConv {
        in_proj: Lin,
        /// `[hidden, kernel]`.
        conv: Tensor<2>,
        conv_bias: Option<Tensor<1>>,
        out_proj: Lin,
        kernel: usize,
    },
    LinearAttention {
        in_proj: Lin,
        weights: DeltaWeights,
        out_proj: Lin,
        kernel: usize,
    },
    None,
}

#[derive(Debug, Clone)]
struct FfnBlock {
    norm: Norm,
    kind: FfnKind,
    activation: Activation,
    weights: FfnWeights,
    /// Gemma 3's norm after the FFN.
    post_norm: Option<Norm>,
}

#[derive(Debug, Clone)]
struct Layer {
    /// The norm before the mixer (none for an FFN-only layer).
    mixer_norm: Option<Norm>,
    mixer: Mixer,
    /// Gemma 3's norm after the mixer.
    post_mixer_norm: Option<Norm>,
    ffn: Option<FfnBlock>,
}

/// What one layer keeps between decode steps.
#[derive(Debug, Clone)]
pub enum LayerState {
    /// Keys (after RoPE) and values, `[1, kv_heads, tokens, head_dim]`; a sliding
    /// window's hold the last window's positions at most.
    Kv(Tensor<4>, Tensor<4>),
    /// A short convolution's last `K - 1` inputs, `[K - 1, hidden]`.
    Conv(Tensor<2>),
    /// Gated DeltaNet's convolution inputs and recurrent state.
    Delta(DeltaState),
    /// An FFN-only layer keeps nothing.
    None,
}

/// What a sequence leaves behind: each layer's state and the tokens seen so far.
#[derive(Debug, Clone)]
pub struct State {
    pub layers: Vec<LayerState>,
    pub tokens: usize,
}

impl State {
    /// Tokens seen.
    pub fn len(&self) -> usize {
        self.tokens
    }

    pub fn is_empty(&self) -> bool {
        self.tokens == 0
    }
}

/// A random-weight decoder (f32, batch 1).
#[derive(Debug, Clone)]
pub struct Model {
    spec: ModelSpec,
    embed: Tensor<2>,
    layers: Vec<Layer>,
    final_norm: Norm,
    /// `[hidden, vocab]`; `None` when tied to the embedding table.
    lm_head: Option<Tensor<2>>,
    /// RoPE tables by head_dim.
    ropes: BTreeMap<usize, Rope>,
    positions: usize,
    device: Device,
}

/// Initial weights: uniform with a standard deviation of about 0.02 (the usual init), so
/// activations stay finite and no denormals slow the arithmetic.
fn weights<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::random(shape, Distribution::Uniform(-0.035, 0.035), device)
}

/// [`weights`] drawn now, so no later call pays for drawing them.
fn materialized<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(weights(shape, device).into_data(), device)
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

fn delta_heads(la: &tailor_spec::LinearAttention) -> DeltaHeads {
    DeltaHeads {
        key_heads: la.key_heads as usize,
        value_heads: la.value_heads as usize,
        key_dim: la.key_head_dim as usize,
        value_dim: la.value_head_dim as usize,
    }
}

/// One layer of `spec` with random weights.
fn random_layer(spec: &ModelSpec, layer: &tailor_spec::Layer, device: &Device) -> Layer {
    let u = |x: u64| x as usize;
    let h = u(spec.hidden_size);
    let block_norm = || norm(h, spec.norm_bias, device);
    let gemma = spec.layout() == Layout::Gemma3;
    let mixer = match layer.mixer {
        tailor_spec::Mixer::Attention(a) => {
            let heads = Heads {
                heads: u(a.heads),
                kv_heads: u(a.kv_heads),
                head_dim: u(a.head_dim),
            };
            let (qw, kvw) = (u(a.q_width()), u(a.kv_width()));
            let q_out = if a.output_gate { 2 * qw } else { qw };
            Mixer::Attention {
                attention: a,
                heads,
                q: linear(h, q_out, a.qkv_bias, device),
                k: linear(h, kvw, a.qkv_bias, device),
                v: linear(h, kvw, a.qkv_bias, device),
                qk_norm: a.qk_norm.then(|| {
                    (
                        Tensor::ones([heads.head_dim], device),
                        Tensor::ones([heads.head_dim], device),
                    )
                }),
                o: linear(qw, h, a.o_bias, device),
            }
        }
        tailor_spec::Mixer::ShortConv(c) => Mixer::ShortConv {
            in_proj: linear(h, 3 * h, c.bias, device),
            conv: weights([h, u(c.kernel)], device),
            conv_bias: c.bias.then(|| weights([h], device)),
            out_proj: linear(h, h, c.bias, device),
            kernel: u(c.kernel),
        },
        tailor_spec::Mixer::LinearAttention(la) => {
            let d = delta_heads(&la);
            let proj = u(la.conv_channels() + la.value_width() + 2 * la.value_heads);
            Mixer::LinearAttention {
                in_proj: linear(h, proj, false, device),
                weights: DeltaWeights {
                    heads: d,
                    conv: weights([u(la.conv_channels()), u(la.conv_kernel)], device),
                    // A_log so that the decay exp(-exp(A_log) softplus(.)) stays near 1.
                    a_log: Tensor::random(
                        [d.value_heads],
                        Distribution::Uniform(-4.0, -2.0),
                        device,
                    ),
                    dt_bias: weights([d.value_heads], device),
                    norm: Tensor::ones([d.value_dim], device),
                },
                out_proj: linear(u(la.value_width()), h, false, device),
                kernel: u(la.conv_kernel),
            }
        }
        tailor_spec::Mixer::None => Mixer::None,
    };
    let has_mixer = !matches!(mixer, Mixer::None);
    Layer {
        mixer_norm: has_mixer.then(block_norm),
        mixer,
        post_mixer_norm: (has_mixer && gemma).then(block_norm),
        ffn: layer.ffn.map(|f| {
            let w = u(f.width);
            FfnBlock {
                norm: block_norm(),
                kind: f.kind,
                activation: f.activation,
                weights: FfnWeights {
                    gate: (f.kind == FfnKind::Gated).then(|| linear(h, w, f.bias, device)),
                    up: linear(h, w, f.bias, device),
                    down: linear(w, h, f.bias, device),
                },
                post_norm: gemma.then(block_norm),
            }
        }),
    }
}

impl Model {
    /// Builds a model of `spec` whose RoPE tables reach `positions` tokens. Fails with the
    /// spec's own validation message.
    pub fn random(spec: &ModelSpec, positions: usize, device: &Device) -> Result<Self, Invalid> {
        spec.validate()?;
        let u = |x: u64| x as usize;
        let h = u(spec.hidden_size);
        let spec_layers = spec.layers();
        let positions = positions.max(1);
        let mut ropes = BTreeMap::new();
        for l in &spec_layers {
            if let tailor_spec::Mixer::Attention(a) = l.mixer
                && a.rope
            {
                let d = u(a.head_dim);
                ropes
                    .entry(d)
                    .or_insert_with(|| Rope::new(positions, d, spec.rope_theta, device));
            }
        }
        let layers = spec_layers
            .iter()
            .map(|l| random_layer(spec, l, device))
            .collect();
        Ok(Self {
            spec: spec.clone(),
            embed: weights([u(spec.vocab_size), h], device),
            layers,
            final_norm: norm(h, spec.norm_bias, device),
            lm_head: (!spec.tie_embeddings).then(|| weights([h, u(spec.vocab_size)], device)),
            ropes,
            positions,
            device: device.clone(),
        })
    }

    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// Positions the RoPE tables reach: the longest prompt plus decoded tokens.
    pub fn positions(&self) -> usize {
        self.positions
    }

    /// Parameters held (the RoPE tables are buffers, not parameters).
    pub fn num_params(&self) -> u64 {
        let n2 = |t: &Tensor<2>| t.shape().num_elements() as u64;
        let n1 = |t: &Tensor<1>| t.dims()[0] as u64;
        let o1 = |t: &Option<Tensor<1>>| t.as_ref().map_or(0, n1);
        let lin = |(w, b): &Lin| n2(w) + o1(b);
        let nrm = |n: &Norm| n1(&n.weight) + o1(&n.bias);
        let onrm = |n: &Option<Norm>| n.as_ref().map_or(0, nrm);
        let layers: u64 = self
            .layers
            .iter()
            .map(|l| {
                let mixer = match &l.mixer {
                    Mixer::Attention {
                        q,
                        k,
                        v,
                        qk_norm,
                        o,
                        ..
                    } => {
                        lin(q)
                            + lin(k)
                            + lin(v)
                            + lin(o)
                            + qk_norm.as_ref().map_or(0, |(a, b)| n1(a) + n1(b))
                    }
                    Mixer::ShortConv {
                        in_proj,
                        conv,
                        conv_bias,
                        out_proj,
                        ..
                    } => lin(in_proj) + n2(conv) + o1(conv_bias) + lin(out_proj),
                    Mixer::LinearAttention {
                        in_proj,
                        weights,
                        out_proj,
                        ..
                    } => {
                        lin(in_proj)
                            + n2(&weights.conv)
                            + n1(&weights.a_log)
                            + n1(&weights.dt_bias)
                            + n1(&weights.norm)
                            + lin(out_proj)
                    }
                    Mixer::None => 0,
                };
                let ffn = l.ffn.as_ref().map_or(0, |f| {
                    nrm(&f.norm)
                        + f.weights.gate.as_ref().map_or(0, lin)
                        + lin(&f.weights.up)
                        + lin(&f.weights.down)
                        + onrm(&f.post_norm)
                });
                onrm(&l.mixer_norm) + mixer + onrm(&l.post_mixer_norm) + ffn
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

    /// One layer over `x` (`[tokens, hidden]`, its first token at position `start`):
    /// from a prompt's start when `prev` is `None`, else continuing from the layer's state.
    /// Returns the output and the layer's new state. `marks` hears the end of each
    /// operator (a no-op except when a pass is timed operator by operator), in the order
    /// of `OpShape::layer_calls`.
    fn layer(
        &self,
        layer: &Layer,
        x: Tensor<2>,
        start: usize,
        prev: Option<LayerState>,
        marks: &mut dyn FnMut(PassOp),
    ) -> (Tensor<2>, LayerState) {
        let tokens = x.dims()[0];
        let lin = |x: Tensor<2>, (w, b): &Lin| ops::linear(x, w, b.as_ref());
        let (mut x, state) = match (&layer.mixer, &layer.mixer_norm) {
            (Mixer::None, _) | (_, None) => (x, LayerState::None),
            (mixer, Some(mixer_norm)) => {
                let hn = self.norm(x.clone(), mixer_norm);
                marks(PassOp::Norm);
                let (out, state) = match mixer {
                    Mixer::Attention {
                        attention,
                        heads,
                        q,
                        k,
                        v,
                        qk_norm,
                        o,
                    } => {
                        let qg = lin(hn.clone(), q);
                        marks(PassOp::Linear);
                        let kk = lin(hn.clone(), k);
                        marks(PassOp::Linear);
                        let vv = lin(hn, v);
                        marks(PassOp::Linear);
                        let qw = heads.heads * heads.head_dim;
                        let (mut qq, gate) = if attention.output_gate {
                            (qg.clone().narrow(1, 0, qw), Some(qg.narrow(1, qw, qw)))
                        } else {
                            (qg, None)
                        };
                        let mut kk = kk;
                        if let Some((qn, kn)) = qk_norm {
                            qq = ops::head_norm(qq, heads.heads, qn, self.spec.norm_eps);
                            marks(PassOp::Norm);
                            kk = ops::head_norm(kk, heads.kv_heads, kn, self.spec.norm_eps);
                            marks(PassOp::Norm);
                        }
                        let rope = attention.rope.then(|| &self.ropes[&heads.head_dim]);
                        let window = attention.window.map(|w| w as usize);
                        let (a, kc, vc) = match (prev, window) {
                            (Some(LayerState::Kv(kc, vc)), Some(w)) => {
                                mixers::sliding_decode(qq, kk, vv, *heads, rope, start, w, kc, vc)
                            }
                            (Some(LayerState::Kv(kc, vc)), None) => {
                                ops::attention_decode_at(qq, kk, vv, *heads, rope, start, kc, vc)
                            }
                            (_, Some(w)) if tokens > w => {
                                mixers::sliding_prefill(qq, kk, vv, *heads, rope, w)
                            }
                            _ => ops::attention_prefill(qq, kk, vv, *heads, rope),
                        };
                        marks(PassOp::Attention);
                        let a = match gate {
                            Some(g) => {
                                let gated = ops::gate(a, g);
                                marks(PassOp::Gate);
                                gated
                            }
                            None => a,
                        };
                        let out = lin(a, o);
                        marks(PassOp::Linear);
                        (out, LayerState::Kv(kc, vc))
                    }
                    Mixer::ShortConv {
                        in_proj,
                        conv,
                        conv_bias,
                        out_proj,
                        kernel,
                    } => {
                        let bcx = lin(hn, in_proj);
                        marks(PassOp::Linear);
                        let hidden = self.spec.hidden_size as usize;
                        let state = match prev {
                            Some(LayerState::Conv(s)) => s,
                            _ => mixers::conv_state(hidden, *kernel, &self.device),
                        };
                        let (y, state) = mixers::short_conv(bcx, conv, conv_bias.as_ref(), state);
                        marks(PassOp::ShortConv);
                        let out = lin(y, out_proj);
                        marks(PassOp::Linear);
                        (out, LayerState::Conv(state))
                    }
                    Mixer::LinearAttention {
                        in_proj,
                        weights,
                        out_proj,
                        kernel,
                    } => {
                        let p = lin(hn, in_proj);
                        marks(PassOp::Linear);
                        let state = match prev {
                            Some(LayerState::Delta(s)) => s,
                            _ => DeltaState::zeros(weights.heads, *kernel, &self.device),
                        };
                        let (y, state) = mixers::gated_deltanet(p, weights, state);
                        marks(PassOp::LinearAttention);
                        let out = lin(y, out_proj);
                        marks(PassOp::Linear);
                        (out, LayerState::Delta(state))
                    }
                    Mixer::None => unreachable!("matched above"),
                };
                let out = match &layer.post_mixer_norm {
                    Some(n) => {
                        let y = self.norm(out, n);
                        marks(PassOp::Norm);
                        y
                    }
                    None => out,
                };
                let x = x + out;
                marks(PassOp::Residual);
                (x, state)
            }
        };
        if let Some(f) = &layer.ffn {
            let hn = self.norm(x.clone(), &f.norm);
            marks(PassOp::Norm);
            let mut y = ops::ffn(hn, f.kind, f.activation, &f.weights);
            marks(PassOp::Ffn);
            if let Some(n) = &f.post_norm {
                y = self.norm(y, n);
                marks(PassOp::Norm);
            }
            x = x + y;
            marks(PassOp::Residual);
        }
        (x, state)
    }

    /// Logits `[1, vocab]` of the last row of `x`.
    fn head(&self, x: Tensor<2>, marks: &mut dyn FnMut(PassOp)) -> Tensor<2> {
        let last = x.dims()[0] - 1;
        let x = self.norm(x.narrow(0, last, 1), &self.final_norm);
        marks(PassOp::Norm);
        let logits = match &self.lm_head {
            Some(w) => ops::lm_head(x, w, false),
            None => ops::lm_head(x, &self.embed, true),
        };
        marks(PassOp::LmHead);
        logits
    }

    /// Processes a prompt: the logits of its last position and every layer's state.
    pub fn prefill(&self, ids: Tensor<1, Int>) -> (Tensor<2>, State) {
        let tokens = ids.dims()[0];
        let mut x = ops::embedding(&self.embed, ids);
        let mut states = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            let (y, s) = self.layer(layer, x, 0, None, &mut |_| {});
            x = y;
            states.push(s);
        }
        (
            self.head(x, &mut |_| {}),
            State {
                layers: states,
                tokens,
            },
        )
    }

    /// One decode step of token `id` (`[1]`) after the tokens `state` has seen: its logits
    /// and the new state. Each layer's old state is released as soon as it is replaced
    /// (unless the caller still holds it), so a decode loop holds one extra layer's state
    /// at most.
    pub fn decode(&self, id: Tensor<1, Int>, state: State) -> (Tensor<2>, State) {
        self.decode_marked(id, state, &mut |_| {})
    }

    /// [`Model::decode`], telling `marks` where each operator ends.
    pub(crate) fn decode_marked(
        &self,
        id: Tensor<1, Int>,
        state: State,
        marks: &mut dyn FnMut(PassOp),
    ) -> (Tensor<2>, State) {
        let mut x = ops::embedding(&self.embed, id);
        marks(PassOp::Embedding);
        let mut next = Vec::with_capacity(self.layers.len());
        for (layer, s) in self.layers.iter().zip(state.layers) {
            let (y, s) = self.layer(layer, x, state.tokens, Some(s), marks);
            x = y;
            next.push(s);
        }
        (
            self.head(x, marks),
            State {
                layers: next,
                tokens: state.tokens + 1,
            },
        )
    }

    /// The state `tokens` random tokens would leave: random keys and values (a sliding
    /// window's capped one short of the window, so a step reads the window), random
    /// convolution inputs and small random recurrent states.
    pub fn random_state(&self, tokens: usize) -> State {
        let d = &self.device;
        let layers = self
            .layers
            .iter()
            .map(|l| match &l.mixer {
                Mixer::Attention {
                    attention, heads, ..
                } => {
                    let held = attention
                        .window
                        .map_or(tokens, |w| tokens.min(w as usize - 1));
                    let shape = [1, heads.kv_heads, held, heads.head_dim];
                    LayerState::Kv(materialized(shape, d), materialized(shape, d))
                }
                Mixer::ShortConv { kernel, .. } => LayerState::Conv(materialized(
                    [kernel - 1, self.spec.hidden_size as usize],
                    d,
                )),
                Mixer::LinearAttention {
                    weights: w, kernel, ..
                } => {
                    let zero = DeltaState::zeros(w.heads, *kernel, d);
                    LayerState::Delta(DeltaState {
                        conv: materialized(zero.conv.dims(), d),
                        state: materialized(zero.state.dims(), d),
                    })
                }
                Mixer::None => LayerState::None,
            })
            .collect();
        State { layers, tokens }
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
    let cache = model.random_state(context);
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
    let caches: Vec<_> = models.iter().map(|m| m.random_state(context)).collect();
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
    let cache = model.random_state(context);
    let (logits, grown) = model.decode(model.prompt(1), cache);
    device.sync().map_err(failed)?;
    drop((logits, grown));
    Ok(())
}

/// The kind of operator a model call is, as the model tells it to `marks` (each matches
/// the variant of the `OpShape` at its place in the pass: [`PassOp::of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PassOp {
    Embedding,
    Norm,
    Linear,
    Attention,
    Gate,
    ShortConv,
    LinearAttention,
    Residual,
    Ffn,
    LmHead,
}

impl PassOp {
    /// The kind of a forward shape (`None` for a gradient entry).
    pub fn of(shape: &OpShape) -> Option<PassOp> {
        Some(match shape {
            OpShape::Embedding { .. } => PassOp::Embedding,
            OpShape::Norm { .. } => PassOp::Norm,
            OpShape::Linear { .. } => PassOp::Linear,
            OpShape::Attention { .. } => PassOp::Attention,
            OpShape::Gate { .. } => PassOp::Gate,
            OpShape::ShortConv { .. } => PassOp::ShortConv,
            OpShape::LinearAttention { .. } => PassOp::LinearAttention,
            OpShape::Residual { .. } => PassOp::Residual,
            OpShape::Ffn { .. } => PassOp::Ffn,
            OpShape::LmHead { .. } => PassOp::LmHead,
            OpShape::Grad { .. } => return None,
        })
    }
}

/// A decode step timed operator by operator, in its chain: each row's time summed over
/// its calls, per step.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainTiming {
    /// One per row of `OpShape::pass` of the decode step: the row's time per step (all
    /// its calls).
    pub ops: Vec<Measurement>,
    /// The marked step whole (the sum of its operators, with a sync after each).
    pub marked: Measurement,
    /// The same step unmarked (no sync inside), timed alternately with the marked one.
    pub plain: Measurement,
}

/// Where a marked decode step's calls go: for each call in run order, its row of the
/// pass and the kind the model must tell at that place.
fn chain_plan(spec: &ModelSpec, context: usize) -> (usize, Vec<(usize, Option<PassOp>)>) {
    let phase = Phase::Decode {
        context: context as u64,
    };
    let rows = OpShape::pass(spec, phase);
    let plan = OpShape::call_rows(spec, phase)
        .into_iter()
        .map(|r| (r, PassOp::of(&rows[r].0)))
        .collect();
    (rows.len(), plan)
}

/// Times decode steps after `context` cached tokens with a sync and a clock read after
/// every operator, alternating with unmarked steps, until `opts.min_time` of marked work
/// and at least 20 steps of each (at most `opts.max_time`): where the step's time goes
/// when the operators run as the model chains them (inputs from the previous operator,
/// weights as the model holds them), to set beside the profile's looped entries. Fails
/// if the model's calls are not the pass's, in kind and number.
pub fn time_decode_ops(
    model: &Model,
    context: usize,
    opts: &TimingOptions,
) -> Result<ChainTiming, DeviceFailed> {
    let device = &model.device;
    let mut failed: Option<String> = None;
    let cache = model.random_state(context);
    let id = model.prompt(1);
    let (row_count, plan) = chain_plan(&model.spec, context);
    let warm = Instant::now();
    let mut warmed = 0;
    while warmed < 2 || warm.elapsed() < opts.warmup {
        drop(model.decode(id.clone(), cache.clone()));
        if let Err(e) = device.sync() {
            failed.get_or_insert_with(|| format!("{e:?}"));
        }
        warmed += 1;
    }
    let mut per_op: Vec<Vec<f64>> = vec![Vec::new(); row_count];
    let (mut marked, mut plain) = (Vec::new(), Vec::new());
    let started = Instant::now();
    let mut spent = std::time::Duration::ZERO;
    while marked.len() < 20 || (spent < opts.min_time && started.elapsed() < opts.max_time) {
        let mut step = vec![0.0f64; row_count];
        let t0 = Instant::now();
        let mut last = t0;
        let mut call = 0;
        let out = model.decode_marked(id.clone(), cache.clone(), &mut |op| {
            if let Err(e) = device.sync() {
                failed.get_or_insert_with(|| format!("{e:?}"));
            }
            let now = Instant::now();
            match plan.get(call) {
                Some(&(row, kind)) if kind == Some(op) => {
                    step[row] += (now - last).as_secs_f64() * 1e6;
                }
                expected => {
                    failed.get_or_insert_with(|| {
                        format!(
                            "the model's call {call} is {op:?} where the pass lists {:?}",
                            expected.map(|e| e.1)
                        )
                    });
                }
            }
            call += 1;
            last = now;
        });
        if call != plan.len() {
            failed.get_or_insert_with(|| {
                format!(
                    "the model made {call} calls where the pass lists {}",
                    plan.len()
                )
            });
        }
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
            let (y, _) = self.layer(l, x, 0, None, &mut |_| {});
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
            let (y, _) = self.layer(l, x, 0, None, &mut |_| {});
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
