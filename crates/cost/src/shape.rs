//! The operators tailor times, as shapes: [`OpShape`] (one operator at one shape, what a
//! profile entry is keyed by) and the passes of a model as lists of shapes
//! (`OpShape::layer_calls` for one layer of any kind, `OpShape::pass` for the whole
//! model, `OpShape::group`). The profile file that holds their times is
//! [`crate::profile`].

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use tailor_spec::{Activation, FfnKind, Layer, Layout, Mixer, ModelSpec, NormKind, OpGroup, Phase};

/// One operator at one shape, as the profiler times it (batch 1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum OpShape {
    /// The token-embedding gather of `tokens` rows.
    Embedding {
        tokens: u64,
        vocab: u64,
        hidden: u64,
    },
    /// RMSNorm or LayerNorm over `tokens` rows.
    Norm {
        tokens: u64,
        hidden: u64,
        kind: NormKind,
        bias: bool,
    },
    /// The residual add `x + y` of two `[tokens, hidden]` activations.
    Residual { tokens: u64, hidden: u64 },
    /// `y = x W (+ b)` with `x: [tokens, input]`: the q, k, v and o projections.
    Linear {
        tokens: u64,
        input: u64,
        output: u64,
        bias: bool,
    },
    /// Everything between the q/k/v projections and the output projection: split into
    /// heads, RoPE on q and k, scores, softmax and weighted values for `q_len` queries
    /// against `kv_len` keys, merge of the heads. Prefill: `q_len = kv_len = P`, causal.
    /// Decode: `q_len = 1` against a cache of `kv_len - 1` tokens, the new key/value
    /// appended to the cache inside the operator (a sliding window's decode is this with
    /// `kv_len` capped at the window). `window`: a prefill through a sliding window of
    /// that many keys, longer than the window (a prompt within it is plain causal
    /// attention). `rope = false`: no rotary embedding (NoPE layers).
    Attention {
        heads: u64,
        kv_heads: u64,
        head_dim: u64,
        q_len: u64,
        kv_len: u64,
        causal: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        window: Option<u64>,
        #[serde(default = "yes", skip_serializing_if = "is_true")]
        rope: bool,
    },
    /// `x * sigmoid(g)` of two `[tokens, width]` activations: the output gate of Qwen3.5's
    /// attention.
    Gate { tokens: u64, width: u64 },
    /// LFM2's gated short convolution between its projections: the in-projection's
    /// `[tokens, 3 * hidden]` output split into B, C and x, `C * conv(B * x)` with a
    /// depthwise causal convolution of `kernel` taps continuing from its rolling state
    /// (zeros for a prompt).
    ShortConv {
        tokens: u64,
        hidden: u64,
        kernel: u64,
        bias: bool,
    },
    /// Gated DeltaNet between its projections: the short causal convolution over q, k and
    /// v (with its state), their L2 norms, decay and write strength, the gated delta rule
    /// (chunked over a prompt, the recurrent state update for one token) and the gated
    /// RMSNorm of its output.
    LinearAttention {
        tokens: u64,
        key_heads: u64,
        value_heads: u64,
        key_dim: u64,
        value_dim: u64,
        kernel: u64,
    },
    /// The whole FFN block: projections and activation.
    Ffn {
        tokens: u64,
        hidden: u64,
        intermediate: u64,
        kind: FfnKind,
        activation: Activation,
        bias: bool,
    },
    /// Logits of the last `tokens` positions: `[tokens, hidden] x [hidden, vocab]`; when
    /// `tied`, the embedding table `[vocab, hidden]` is used transposed. Inference reads
    /// one position (the key is then left out of the file); an edit's loss reads the
    /// logits of its target tokens.
    LmHead {
        #[serde(default = "one", skip_serializing_if = "is_one")]
        tokens: u64,
        hidden: u64,
        vocab: u64,
        tied: bool,
    },
    /// The operator `of` run on burn's autodiff device with its activation input(s)
    /// requiring a gradient, then the backward of its output down to those inputs: the
    /// activation gradients only (the weights are frozen, so no weight gradient is
    /// computed). One call is the forward with its graph recorded plus the backward: what
    /// a backpropagation step spends on this operator.
    Grad { of: Box<OpShape> },
}

fn one() -> u64 {
    1
}

fn yes() -> bool {
    true
}

fn is_true(x: &bool) -> bool {
    *x
}

fn is_one(x: &u64) -> bool {
    *x == 1
}

/// The model's norm (its kind and bias) over `tokens` rows of `hidden`.
fn spec_norm(spec: &ModelSpec, tokens: u64, hidden: u64) -> OpShape {
    OpShape::Norm {
        tokens,
        hidden,
        kind: spec.norm,
        bias: spec.norm_bias,
    }
}

impl OpShape {
    /// Every operator call of one forward pass of `spec` (batch 1), as `(shape, calls)`:
    /// together they are the whole pass, as `tailor-profiler`'s model runs it. The embedding
    /// comes first, then the layers' calls (each distinct shape once, in the order it
    /// first runs, with its calls summed over the layers), then the final norm and the LM
    /// head of the last position.
    pub fn pass(spec: &ModelSpec, phase: Phase) -> Vec<(OpShape, u64)> {
        let t = phase.tokens();
        let h = spec.hidden_size;
        let mut rows: Vec<(OpShape, u64)> = vec![(
            OpShape::Embedding {
                tokens: t,
                vocab: spec.vocab_size,
                hidden: h,
            },
            1,
        )];
        let mut layers: Vec<(OpShape, u64)> = Vec::new();
        spec.for_each_layer_group(|layer, repeats| {
            for shape in Self::layer_calls(spec, layer, phase) {
                match layers.iter_mut().find(|(s, _)| *s == shape) {
                    Some((_, calls)) => *calls += repeats,
                    None => layers.push((shape, repeats)),
                }
            }
        });
        rows.extend(layers);
        rows.push((spec_norm(spec, 1, h), 1));
        // Logits for the last position only.
        rows.push((
            OpShape::LmHead {
                tokens: 1,
                hidden: h,
                vocab: spec.vocab_size,
                tied: spec.tie_embeddings,
            },
            1,
        ));
        rows
    }

    /// For each call of one pass, in the order the model runs them (the embedding, each
    /// layer's [`OpShape::layer_calls`] layer by layer, the final norm, the LM head), the
    /// index of its row in [`OpShape::pass`]: what a pass timed operator by operator adds
    /// each call's time to.
    pub fn call_rows(spec: &ModelSpec, phase: Phase) -> Vec<usize> {
        let rows = Self::pass(spec, phase);
        let head = rows.len() - 2;
        let mut out = vec![0];
        for layer in spec.layers() {
            for shape in Self::layer_calls(spec, &layer, phase) {
                let row = rows[1..head]
                    .iter()
                    .position(|(s, _)| *s == shape)
                    .expect("pass lists every layer call");
                out.push(row + 1);
            }
        }
        out.extend([head, head + 1]);
        out
    }

    /// The calls of one layer of `spec` in one pass, in the order the model runs them (one
    /// call each): the mixer's norm, projections and core, its residual add, then the FFN's
    /// norm, the FFN and its residual add (Gemma 3 adds a norm after each block).
    pub fn layer_calls(spec: &ModelSpec, layer: &Layer, phase: Phase) -> Vec<OpShape> {
        let t = phase.tokens();
        let h = spec.hidden_size;
        let norm = |tokens| spec_norm(spec, tokens, h);
        let linear = |input, output, bias| OpShape::Linear {
            tokens: t,
            input,
            output,
            bias,
        };
        let gemma = spec.layout() == Layout::Gemma3;
        let mut calls = Vec::with_capacity(14);
        if layer.mixer != Mixer::None {
            calls.push(norm(t));
        }
        match layer.mixer {
            Mixer::Attention(at) => {
                let (qw, kvw) = (at.q_width(), at.kv_width());
                let q_out = if at.output_gate { 2 * qw } else { qw };
                calls.push(linear(h, q_out, at.qkv_bias));
                calls.push(linear(h, kvw, at.qkv_bias));
                calls.push(linear(h, kvw, at.qkv_bias));
                if at.qk_norm {
                    let head_norm = |heads: u64| OpShape::Norm {
                        tokens: t * heads,
                        hidden: at.head_dim,
                        kind: NormKind::RmsNorm,
                        bias: false,
                    };
                    calls.push(head_norm(at.heads));
                    calls.push(head_norm(at.kv_heads));
                }
                let (q_len, kv_len, window) = match phase {
                    Phase::Prefill { tokens } => {
                        (tokens, tokens, at.window.filter(|&w| tokens > w))
                    }
                    // A window's decode reads at most the window: plain attention there.
                    Phase::Decode { context } => (1, at.keys_at(context + 1), None),
                };
                calls.push(OpShape::Attention {
                    heads: at.heads,
                    kv_heads: at.kv_heads,
                    head_dim: at.head_dim,
                    q_len,
                    kv_len,
                    causal: matches!(phase, Phase::Prefill { .. }),
                    window,
                    rope: at.rope,
                });
                if at.output_gate {
                    calls.push(OpShape::Gate {
                        tokens: t,
                        width: qw,
                    });
                }
                calls.push(linear(qw, h, at.o_bias));
            }
            Mixer::ShortConv(c) => {
                calls.push(linear(h, 3 * h, c.bias));
                calls.push(OpShape::ShortConv {
                    tokens: t,
                    hidden: h,
                    kernel: c.kernel,
                    bias: c.bias,
                });
                calls.push(linear(h, h, c.bias));
            }
            Mixer::LinearAttention(la) => {
                let out = la.conv_channels() + la.value_width() + 2 * la.value_heads;
                calls.push(linear(h, out, false));
                calls.push(OpShape::LinearAttention {
                    tokens: t,
                    key_heads: la.key_heads,
                    value_heads: la.value_heads,
                    key_dim: la.key_head_dim,
                    value_dim: la.value_head_dim,
                    kernel: la.conv_kernel,
                });
                calls.push(linear(la.value_width(), h, false));
            }
            Mixer::None => {}
        }
        if layer.mixer != Mixer::None {
            if gemma {
                calls.push(norm(t));
            }
            calls.push(OpShape::Residual {
                tokens: t,
                hidden: h,
            });
        }
        if let Some(ffn) = layer.ffn {
            calls.push(norm(t));
            calls.push(OpShape::Ffn {
                tokens: t,
                hidden: h,
                intermediate: ffn.width,
                kind: ffn.kind,
                activation: ffn.activation,
                bias: ffn.bias,
            });
            if gemma {
                calls.push(norm(t));
            }
            calls.push(OpShape::Residual {
                tokens: t,
                hidden: h,
            });
        }
        calls
    }

    /// The kind of operator, as a profile must have timed at least one shape of it for
    /// the others to be interpolated (a sliding window's prefill is its own kind: it is
    /// attended block by block).
    pub fn kind_name(&self) -> &'static str {
        match self {
            OpShape::Embedding { .. } => "embedding",
            OpShape::Norm { .. } => "norm",
            OpShape::Residual { .. } => "residual",
            OpShape::Linear { .. } => "linear",
            OpShape::Attention {
                window: Some(_), ..
            } => "sliding-window attention prefill",
            OpShape::Attention { .. } => "attention",
            OpShape::Gate { .. } => "gate",
            OpShape::ShortConv { .. } => "short_conv",
            OpShape::LinearAttention { .. } => "linear_attention",
            OpShape::Ffn { .. } => "ffn",
            OpShape::LmHead { .. } => "lm_head",
            OpShape::Grad { .. } => "gradient",
        }
    }

    /// The group of the time breakdown this operator belongs to.
    pub fn group(&self) -> OpGroup {
        match self {
            OpShape::Linear { .. }
            | OpShape::Attention { .. }
            | OpShape::Gate { .. }
            | OpShape::ShortConv { .. }
            | OpShape::LinearAttention { .. } => OpGroup::Attention,
            OpShape::Ffn { .. } => OpGroup::Ffn,
            OpShape::LmHead { .. } => OpGroup::LmHead,
            OpShape::Embedding { .. } | OpShape::Norm { .. } | OpShape::Residual { .. } => {
                OpGroup::Other
            }
            OpShape::Grad { of } => of.group(),
        }
    }

    /// The shape a gradient entry of this operator is timed as.
    pub fn grad(&self) -> OpShape {
        OpShape::Grad {
            of: Box::new(self.clone()),
        }
    }

    /// The distinct shapes of [`OpShape::pass`].
    pub fn for_spec(spec: &ModelSpec, phase: Phase) -> Vec<OpShape> {
        let mut seen = BTreeSet::new();
        Self::pass(spec, phase)
            .into_iter()
            .map(|(s, _)| s)
            .filter(|s| seen.insert(s.clone()))
            .collect()
    }

    /// Matmul FLOPs (multiply-add = 2), as `tailor_spec`'s accounting counts them.
    pub fn flops(&self) -> u128 {
        let w = |x: u64| x as u128;
        match *self {
            OpShape::Embedding { .. }
            | OpShape::Norm { .. }
            | OpShape::Residual { .. }
            | OpShape::Gate { .. }
            // A depthwise convolution is elementwise work, as the accounting counts it.
            | OpShape::ShortConv { .. } => 0,
            // Per token and value head three `d_k x d_v` products with the state (read
            // with k, the update, read with q); the convolution counts none.
            OpShape::LinearAttention {
                tokens,
                value_heads,
                key_dim,
                value_dim,
                ..
            } => 6 * w(tokens) * w(value_heads) * w(key_dim) * w(value_dim),
            OpShape::LmHead {
                tokens,
                hidden,
                vocab,
                ..
            } => 2 * w(tokens) * w(hidden) * w(vocab),
            // The forward, then the activation gradients: every matmul again with the
            // weights transposed (linears, FFN, head); attention's backward is four matmuls
            // (dP, dV, dQ, dK) where its forward is two.
            OpShape::Grad { ref of } => match **of {
                OpShape::Attention { .. } => 3 * of.flops(),
                _ => 2 * of.flops(),
            },
            OpShape::Linear {
                tokens,
                input,
                output,
                ..
            } => 2 * w(tokens) * w(input) * w(output),
            OpShape::Attention {
                heads,
                head_dim,
                q_len,
                kv_len,
                causal,
                window,
                ..
            } => {
                let pairs = match (causal, window) {
                    (true, Some(win)) if q_len > win => {
                        w(win) * (w(win) + 1) / 2 + (w(q_len) - w(win)) * w(win)
                    }
                    (true, _) => w(q_len) * (w(q_len) + 1) / 2,
                    (false, _) => w(q_len) * w(kv_len),
                };
                4 * pairs * w(heads) * w(head_dim)
            }
            OpShape::Ffn {
                tokens,
                hidden,
                intermediate,
                kind,
                ..
            } => {
                let mats = if kind == FfnKind::Gated { 3 } else { 2 };
                2 * mats * w(tokens) * w(hidden) * w(intermediate)
            }
        }
    }

    /// Minimum bytes moved with elements of `elem` bytes (weights, activations and cache
    /// in one type, as the profiler runs them).
    pub fn bytes(&self, elem: u64) -> u128 {
        let e = elem as u128;
        let w = |x: u64| x as u128;
        match *self {
            OpShape::Embedding { tokens, hidden, .. } => 2 * w(tokens) * w(hidden) * e,
            OpShape::Norm {
                tokens,
                hidden,
                bias,
                ..
            } => (2 * w(tokens) * w(hidden) + w(hidden) * (1 + u128::from(bias))) * e,
            OpShape::Residual { tokens, hidden } => 3 * w(tokens) * w(hidden) * e,
            OpShape::Gate { tokens, width } => 3 * w(tokens) * w(width) * e,
            // In: B, C, x; out: the gated result; the kernel, and the state read and written.
            OpShape::ShortConv {
                tokens,
                hidden,
                kernel,
                bias,
            } => {
                (4 * w(tokens) * w(hidden)
                    + w(hidden) * (w(kernel) + u128::from(bias))
                    + 2 * (w(kernel) - 1) * w(hidden))
                    * e
            }
            // In: q, k, v, z, b and a; out: the gated values; the conv kernel and its state,
            // and the recurrent state read and written.
            OpShape::LinearAttention {
                tokens,
                key_heads,
                value_heads,
                key_dim,
                value_dim,
                kernel,
            } => {
                let channels = 2 * w(key_heads) * w(key_dim) + w(value_heads) * w(value_dim);
                let values = w(value_heads) * w(value_dim);
                (w(tokens) * (channels + 2 * values + 2 * w(value_heads))
                    + (w(kernel) + 2 * (w(kernel) - 1)) * channels
                    + 2 * w(value_heads) * w(key_dim) * w(value_dim))
                    * e
            }
            OpShape::LmHead {
                tokens,
                hidden,
                vocab,
                ..
            } => (w(hidden) * w(vocab) + w(tokens) * (w(hidden) + w(vocab))) * e,
            // The forward's traffic twice: the backward reads the weights (or the saved
            // activations) again and writes gradients as wide as the forward's outputs.
            OpShape::Grad { ref of } => 2 * of.bytes(elem),
            OpShape::Linear {
                tokens,
                input,
                output,
                bias,
            } => {
                (w(input) * w(output)
                    + w(tokens) * (w(input) + w(output))
                    + u128::from(bias) * w(output))
                    * e
            }
            OpShape::Attention {
                heads,
                kv_heads,
                head_dim,
                q_len,
                kv_len,
                ..
            } => {
                (2 * w(q_len) * w(heads) * w(head_dim) + 2 * w(kv_len) * w(kv_heads) * w(head_dim))
                    * e
            }
            OpShape::Ffn {
                tokens,
                hidden,
                intermediate,
                kind,
                ..
            } => {
                let mats = if kind == FfnKind::Gated { 3 } else { 2 };
                (mats * w(hidden) * w(intermediate)
                    + w(tokens) * (2 * w(hidden) + mats * w(intermediate)))
                    * e
            }
        }
    }
}

impl fmt::Display for OpShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpShape::Embedding {
                tokens,
                vocab,
                hidden,
            } => write!(f, "embedding t{tokens} {vocab}x{hidden}"),
            OpShape::Residual { tokens, hidden } => write!(f, "residual t{tokens} {hidden}"),
            OpShape::LmHead {
                tokens,
                hidden,
                vocab,
                tied,
            } => write!(
                f,
                "lm_head{} {hidden}->{vocab}{}",
                if *tokens == 1 {
                    String::new()
                } else {
                    format!(" t{tokens}")
                },
                if *tied { " tied" } else { "" }
            ),
            OpShape::Grad { of } => write!(f, "grad({of})"),
            OpShape::Norm {
                tokens,
                hidden,
                kind,
                bias,
            } => {
                write!(
                    f,
                    "{kind}{} t{tokens} {hidden}",
                    if *bias { "+bias" } else { "" }
                )
            }
            OpShape::Linear {
                tokens,
                input,
                output,
                bias,
            } => {
                write!(
                    f,
                    "linear t{tokens} {input}->{output}{}",
                    if *bias { " +bias" } else { "" }
                )
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
            } => write!(
                f,
                "attention {heads}/{kv_heads}x{head_dim} q{q_len} kv{kv_len}{}{}{}",
                if *causal { " causal" } else { "" },
                window.map_or(String::new(), |w| format!(" window {w}")),
                if *rope { "" } else { " nope" }
            ),
            OpShape::Gate { tokens, width } => write!(f, "gate t{tokens} {width}"),
            OpShape::ShortConv {
                tokens,
                hidden,
                kernel,
                bias,
            } => write!(
                f,
                "short_conv t{tokens} {hidden} k{kernel}{}",
                if *bias { " +bias" } else { "" }
            ),
            OpShape::LinearAttention {
                tokens,
                key_heads,
                value_heads,
                key_dim,
                value_dim,
                kernel,
            } => write!(
                f,
                "linear_attention t{tokens} {key_heads}/{value_heads}x{key_dim}/{value_dim} k{kernel}"
            ),
            OpShape::Ffn {
                tokens,
                hidden,
                intermediate,
                kind,
                activation,
                bias,
            } => write!(
                f,
                "ffn {kind} {activation} t{tokens} {hidden}->{intermediate}{}",
                if *bias { " +bias" } else { "" }
            ),
        }
    }
}
