//! The operators tailor times, as shapes: [`OpShape`] (one operator at one shape, what a
//! profile entry is keyed by) and the passes of a dense model as lists of shapes
//! (`OpShape::pass`, `OpShape::group`). The profile file that holds their times is
//! [`crate::profile`].

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use tailor_spec::{Activation, FfnKind, ModelSpec, NormKind, OpGroup, Phase};

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
    /// appended to the cache inside the operator.
    Attention {
        heads: u64,
        kv_heads: u64,
        head_dim: u64,
        q_len: u64,
        kv_len: u64,
        causal: bool,
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

fn is_one(x: &u64) -> bool {
    *x == 1
}

impl OpShape {
    /// Every operator call of one forward pass of `spec` (batch 1), as `(shape, calls)`:
    /// together they are the whole pass, as `tailor-profiler`'s model runs it.
    pub fn pass(spec: &ModelSpec, phase: Phase) -> Vec<(OpShape, u64)> {
        let t = phase.tokens();
        let (h, l) = (spec.hidden_size, spec.num_layers);
        let norm = |tokens| OpShape::Norm {
            tokens,
            hidden: h,
            kind: spec.norm,
            bias: spec.norm_bias,
        };
        let linear = |tokens, input, output, bias| OpShape::Linear {
            tokens,
            input,
            output,
            bias,
        };
        vec![
            (
                OpShape::Embedding {
                    tokens: t,
                    vocab: spec.vocab_size,
                    hidden: h,
                },
                1,
            ),
            (norm(t), 2 * l),
            (linear(t, h, spec.q_width(), spec.qkv_bias), l),
            (linear(t, h, spec.kv_width(), spec.qkv_bias), 2 * l),
            (
                OpShape::Attention {
                    heads: spec.num_heads,
                    kv_heads: spec.num_kv_heads,
                    head_dim: spec.head_dim(),
                    q_len: t,
                    kv_len: phase.keys(),
                    causal: matches!(phase, Phase::Prefill { .. }),
                },
                l,
            ),
            (linear(t, spec.q_width(), h, spec.o_bias), l),
            (
                OpShape::Residual {
                    tokens: t,
                    hidden: h,
                },
                2 * l,
            ),
            (
                OpShape::Ffn {
                    tokens: t,
                    hidden: h,
                    intermediate: spec.intermediate_size,
                    kind: spec.ffn,
                    activation: spec.activation,
                    bias: spec.mlp_bias,
                },
                l,
            ),
            (norm(1), 1),
            // Logits for the last position only.
            (
                OpShape::LmHead {
                    tokens: 1,
                    hidden: h,
                    vocab: spec.vocab_size,
                    tied: spec.tie_embeddings,
                },
                1,
            ),
        ]
    }

    /// The group of the time breakdown this operator belongs to.
    pub fn group(&self) -> OpGroup {
        match self {
            OpShape::Linear { .. } | OpShape::Attention { .. } => OpGroup::Attention,
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
            OpShape::Embedding { .. } | OpShape::Norm { .. } | OpShape::Residual { .. } => 0,
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
                ..
            } => {
                let pairs = if causal {
                    w(q_len) * (w(q_len) + 1) / 2
                } else {
                    w(q_len) * w(kv_len)
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
            } => write!(
                f,
                "attention {heads}/{kv_heads}x{head_dim} q{q_len} kv{kv_len}{}",
                if *causal { " causal" } else { "" }
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
