//! The cost of personalising a model on the device: one knowledge edit, as ROME-style
//! locate-and-edit methods make it and as MobiEdit (Lu et al., ICLR 2026) runs it on phones.
//!
//! An edit optimises one vector `v`, added to the output of the FFN of one layer (the
//! *edited layer*, `k`) at the subject's position of an edit prompt of `E` tokens, so that
//! the model's loss on the target tokens falls; a rank-one update of that FFN's down
//! projection then writes `v` into the weights (that last solve is one `hidden`-sized
//! linear system and is not priced). Everything at and below the edited FFN does not
//! depend on `v`, so it is computed once (the *prefix*, cached); each optimisation step
//! runs the layers above it:
//!
//! - **zo** (MobiEdit's forward-only zeroth-order estimate): per query, two forward
//!   passes of the `E` tokens with `v` perturbed both ways, in the deployment weight
//!   type: the residual add of `v`, the `L - 1 - k` layers above the edited one, the
//!   final norm and the LM head over the `T` target positions.
//! - **bp** (backpropagation, what ROME does): the same forward in full precision with
//!   its activations kept, then the backward of the activation gradients down to the
//!   edited layer's output (the gradient of `v`). Not included: weight gradients of the
//!   frozen layers (none are needed), the loss itself (a log-softmax over `T x vocab`, in
//!   both methods), ROME's KL term and its several context templates (a batch of
//!   prompts; set `tokens` to their total length to price them).
//!
//! The whole edit is the prefix plus `steps` steps. `steps` applies to both methods: the
//! early stopping MobiEdit adds (stop once the target is the model's answer) is not
//! modelled.

use crate::Workload;
use crate::profile::OpShape;
use crate::source::Source;
use serde::{Deserialize, Serialize};
use tailor_spec::{DType, FfnKind, ModelSpec, Phase};

/// The edit step's method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EditMethod {
    /// Forward-only zeroth-order gradient estimation (MobiEdit).
    Zo,
    /// Backpropagation of activation gradients (ROME).
    Bp,
}

impl EditMethod {
    pub const ALL: [EditMethod; 2] = [EditMethod::Zo, EditMethod::Bp];

    pub fn name(self) -> &'static str {
        match self {
            EditMethod::Zo => "zo",
            EditMethod::Bp => "bp",
        }
    }
}

impl std::fmt::Display for EditMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What one edit asks of the device.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditWorkload {
    /// Tokens of the edit prompt `E` (context, subject and target).
    #[serde(default = "EditWorkload::default_tokens")]
    pub tokens: u64,
    /// Positions whose logits the loss reads (the target tokens, at the end of the
    /// prompt); at most `tokens`.
    #[serde(default = "EditWorkload::default_target_tokens")]
    pub target_tokens: u64,
    /// The edited layer as a fraction of the depth, in `[0, 1)`: layer
    /// `floor(layer * num_layers)` (0-based).
    #[serde(default = "EditWorkload::default_layer")]
    pub layer: f64,
    /// Optimisation steps of one edit.
    #[serde(default = "EditWorkload::default_steps")]
    pub steps: u64,
    /// zo: random directions per step, each two forward passes.
    #[serde(default = "EditWorkload::default_queries")]
    pub queries: u64,
}

impl Default for EditWorkload {
    fn default() -> Self {
        Self {
            tokens: Self::default_tokens(),
            target_tokens: Self::default_target_tokens(),
            layer: Self::default_layer(),
            steps: Self::default_steps(),
            queries: Self::default_queries(),
        }
    }
}

impl EditWorkload {
    /// A short personal fact with its context: "I live at 1010 Beijing Road", in a
    /// sentence or two.
    pub const fn default_tokens() -> u64 {
        32
    }
    /// CounterFact's and zsRE's targets are mostly 1-3 tokens.
    pub const fn default_target_tokens() -> u64 {
        4
    }
    /// ROME and MEMIT edit early-middle FFN layers (ROME's causal tracing peaks there:
    /// layer 17 of 48 in GPT-2 XL, 5 of 28 in GPT-J); a quarter of the depth.
    pub fn default_layer() -> f64 {
        0.25
    }
    /// ROME's `v_num_grad_steps` is 20 (GPT-2 XL; 25 for GPT-J).
    pub const fn default_steps() -> u64 {
        20
    }
    /// The two-point estimate of SPSA-style zeroth-order methods: one direction, two
    /// forward passes.
    pub const fn default_queries() -> u64 {
        1
    }

    /// What is wrong with these numbers, as `(key, message)`; `None` when they are usable.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        if !(1..=1 << 16).contains(&self.tokens) {
            return Some((
                "tokens",
                format!("{} must be between 1 and 65536", self.tokens),
            ));
        }
        if !(1..=self.tokens).contains(&self.target_tokens) {
            return Some((
                "target_tokens",
                format!(
                    "{} must be between 1 and tokens ({})",
                    self.target_tokens, self.tokens
                ),
            ));
        }
        if !(self.layer.is_finite() && (0.0..1.0).contains(&self.layer)) {
            return Some((
                "layer",
                format!(
                    "{} must be a fraction of the depth in [0, 1), e.g. 0.25 for a quarter of the way up",
                    self.layer
                ),
            ));
        }
        if !(1..=1_000_000).contains(&self.steps) {
            return Some((
                "steps",
                format!("{} must be between 1 and 1000000", self.steps),
            ));
        }
        if !(1..=10_000).contains(&self.queries) {
            return Some((
                "queries",
                format!("{} must be between 1 and 10000", self.queries),
            ));
        }
        None
    }

    /// The edited layer, 0-based.
    pub fn layer_index(&self, spec: &ModelSpec) -> u64 {
        ((self.layer * spec.num_layers as f64).floor() as u64).min(spec.num_layers - 1)
    }

    /// Layers above the edited one: what every step runs.
    pub fn upper_layers(&self, spec: &ModelSpec) -> u64 {
        spec.num_layers - 1 - self.layer_index(spec)
    }

    /// The operator calls of the prefix (computed once): the embedding of the prompt and
    /// the layers up to and including the edited one, as a prefill of `tokens`.
    pub fn prefix_ops(&self, spec: &ModelSpec) -> Vec<(OpShape, u64)> {
        let layers = self.layer_index(spec) + 1;
        layer_ops(spec, self.tokens, layers, true)
    }

    /// The operator calls of one forward pass of a step: the add of `v` to the edited
    /// layer's output, the layers above it, the final norm and the LM head over the target
    /// positions.
    pub fn pass_ops(&self, spec: &ModelSpec) -> Vec<(OpShape, u64)> {
        let (e, t, h) = (self.tokens, self.target_tokens, spec.hidden_size);
        let mut ops = vec![(
            OpShape::Residual {
                tokens: e,
                hidden: h,
            },
            1,
        )];
        ops.extend(layer_ops(spec, e, self.upper_layers(spec), false));
        ops.push((
            OpShape::Norm {
                tokens: t,
                hidden: h,
                kind: spec.norm,
                bias: spec.norm_bias,
            },
            1,
        ));
        ops.push((
            OpShape::LmHead {
                tokens: t,
                hidden: h,
                vocab: spec.vocab_size,
                tied: spec.tie_embeddings,
            },
            1,
        ));
        ops.retain(|&(_, calls)| calls > 0);
        ops
    }

    /// The operator calls of one step of `method`: `2 * queries` passes (zo), or the pass
    /// with its backward, each operator as its gradient entry (bp).
    pub fn step_ops(&self, spec: &ModelSpec, method: EditMethod) -> Vec<(OpShape, u64)> {
        let pass = self.pass_ops(spec);
        match method {
            EditMethod::Zo => pass
                .into_iter()
                .map(|(s, calls)| (s, calls * 2 * self.queries))
                .collect(),
            EditMethod::Bp => pass.into_iter().map(|(s, c)| (s.grad(), c)).collect(),
        }
    }

    /// Every distinct shape an edit runs (the prefix, the zo pass, the bp gradient entries):
    /// what a profile must time for spaces with `[workload.edit]`.
    pub fn shapes(&self, spec: &ModelSpec) -> Vec<OpShape> {
        let mut seen = std::collections::BTreeSet::new();
        self.prefix_ops(spec)
            .into_iter()
            .chain(self.step_ops(spec, EditMethod::Zo))
            .chain(self.step_ops(spec, EditMethod::Bp))
            .map(|(s, _)| s)
            .filter(|s| seen.insert(s.clone()))
            .collect()
    }

    /// FLOPs of one step (matmuls, multiply-add = 2).
    pub fn step_flops(&self, spec: &ModelSpec, method: EditMethod) -> u128 {
        self.step_ops(spec, method)
            .iter()
            .map(|(s, c)| s.flops() * *c as u128)
            .sum()
    }

    /// Minimum bytes one step moves with elements of `elem` bytes.
    pub fn step_bytes(&self, spec: &ModelSpec, method: EditMethod, elem: u64) -> u128 {
        self.step_ops(spec, method)
            .iter()
            .map(|(s, c)| s.bytes(elem) * *c as u128)
            .sum()
    }

    /// Peak memory of an edit by `method`, bytes, without the runtime's own overhead:
    ///
    /// - zo: the weights in the deployment type, the cached prefix (`E x hidden`), one
    ///   pass's largest live activations (as the prefill's: the residual stream, the block
    ///   input and the widest block's intermediates per token, the attention scores of one
    ///   layer, the logits of the target positions), and `v`, the direction, the estimate
    ///   and Adam's two moments (5 x hidden, f32).
    /// - bp: the weights in f32 (backpropagation through quantized weights is unstable,
    ///   MobiEdit's reason for forward-only editing), the cached prefix, every activation
    ///   the backward needs of the layers above the edit ([`saved_per_token`] per token, the
    ///   attention probabilities `heads x E x E` per layer) and of the head, the gradients
    ///   alive at the top of the backward (the logits', the residual stream's and the
    ///   widest intermediate's), and the same 5 vectors.
    pub fn peak_memory_bytes(&self, spec: &ModelSpec, w: &Workload, method: EditMethod) -> u64 {
        let (e, t) = (self.tokens, self.target_tokens);
        let (h, v) = (spec.hidden_size, spec.vocab_size);
        let vectors = 5 * h * 4;
        let scores = spec.num_heads * e * e;
        match method {
            EditMethod::Zo => {
                let a = w.precision.act_bytes();
                spec.weight_bytes(w.precision.weights)
                    + a * e * h
                    + a * (e * pass_width(spec) + scores + t * v)
                    + vectors
            }
            EditMethod::Bp => {
                let f32 = 4;
                let upper = self.upper_layers(spec);
                let saved = upper * (e * saved_per_token(spec) + scores) + t * (2 * h + v);
                let grads = t * v + e * (h + pass_width(spec).max(scores / e.max(1)));
                spec.weight_bytes(DType::F32) + f32 * (e * h + saved + grads) + vectors
            }
        }
    }
}

/// Widest set of activations one token keeps alive inside a block, elements: the residual
/// stream and the block's input, plus q, k, v and the attention output, or the FFN's
/// intermediates (as [`crate::peak_memory_bytes`] counts them).
fn pass_width(spec: &ModelSpec) -> u64 {
    let attn = 2 * spec.q_width() + 2 * spec.kv_width();
    let ffn = match spec.ffn {
        FfnKind::Gated => 3 * spec.intermediate_size,
        FfnKind::Plain => 2 * spec.intermediate_size,
    };
    2 * spec.hidden_size + attn.max(ffn)
}

/// Activations one layer keeps for its backward, per token, elements: the inputs and
/// outputs of both norms (4 x hidden), the rotated queries and the keys and values as the
/// attention reads them (the KV heads repeated to the query heads: 3 x q_width), the
/// attention output (the output projection's input, q_width), and the FFN's
/// intermediates (gated: gate, up, activation and product, 4 x intermediate; plain: up
/// and activation, 2 x intermediate).
pub fn saved_per_token(spec: &ModelSpec) -> u64 {
    let ffn = match spec.ffn {
        FfnKind::Gated => 4 * spec.intermediate_size,
        FfnKind::Plain => 2 * spec.intermediate_size,
    };
    4 * spec.hidden_size + 4 * spec.q_width() + ffn
}

/// `layers` layers of a prefill of `tokens` tokens (and the embedding when `embed`), as
/// `OpShape::pass` lists them.
fn layer_ops(spec: &ModelSpec, tokens: u64, layers: u64, embed: bool) -> Vec<(OpShape, u64)> {
    let mut rows = OpShape::pass(spec, Phase::Prefill { tokens });
    // The last two rows are the final norm and the LM head of the last position.
    rows.truncate(rows.len() - 2);
    rows.into_iter()
        .filter_map(|(shape, calls)| match shape {
            OpShape::Embedding { .. } => embed.then_some((shape, calls)),
            _ => Some((shape, calls / spec.num_layers * layers)),
        })
        .filter(|&(_, calls)| calls > 0)
        .collect()
}

/// What one method's edit costs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EditCost {
    /// One optimisation step, ms; `None` where the engine cannot run it (llama.cpp has no
    /// backward pass).
    pub step_ms: Option<f64>,
    /// The prefix, computed once, ms; `None` where not priced.
    pub prefix_ms: Option<f64>,
    /// The whole edit: prefix + steps x step, ms.
    pub total_ms: Option<f64>,
    /// Peak memory, bytes (with the runtime's measured overhead where the profile has it).
    pub peak_memory_bytes: u64,
    /// The least-measured source among the priced operators (`measured` when every one is
    /// a profile entry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
}

impl EditCost {
    pub fn new(
        e: &EditWorkload,
        step_ms: Option<f64>,
        prefix_ms: Option<f64>,
        peak_memory_bytes: u64,
        source: Option<Source>,
    ) -> Self {
        let total_ms = match (step_ms, prefix_ms) {
            (Some(s), Some(p)) => Some(p + e.steps as f64 * s),
            _ => None,
        };
        Self {
            step_ms,
            prefix_ms,
            total_ms,
            peak_memory_bytes,
            source,
        }
    }
}

/// What an edit costs by each method.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EditEstimate {
    pub workload: EditWorkload,
    /// The edited layer, 0-based.
    pub layer: u64,
    pub zo: EditCost,
    pub bp: EditCost,
}

impl EditEstimate {
    pub fn cost(&self, method: EditMethod) -> &EditCost {
        match method {
            EditMethod::Zo => &self.zo,
            EditMethod::Bp => &self.bp,
        }
    }

    /// bp over zo: per step and in peak memory (`None` where a step is not priced).
    pub fn bp_over_zo(&self) -> (Option<f64>, f64) {
        let step = match (self.bp.step_ms, self.zo.step_ms) {
            (Some(b), Some(z)) if z > 0.0 => Some(b / z),
            _ => None,
        };
        (
            step,
            self.bp.peak_memory_bytes as f64 / self.zo.peak_memory_bytes as f64,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tailor_spec::Precision;

    fn spec(layers: u64) -> ModelSpec {
        // 4 heads of 16, 2 KV heads, gated FFN 160, vocab 1000.
        ModelSpec::llama(1000, 64, layers, 4, 2, 160)
    }

    fn edit(layer: f64) -> EditWorkload {
        EditWorkload {
            tokens: 10,
            target_tokens: 3,
            layer,
            steps: 20,
            queries: 2,
        }
    }

    /// One step's FLOPs against the closed form of the module docs.
    #[test]
    fn step_flops_match_the_closed_form() {
        for (layers, fraction, k) in [(8, 0.25, 2), (8, 0.0, 0), (4, 0.99, 3), (12, 0.5, 6)] {
            let s = spec(layers);
            let e = edit(fraction);
            assert_eq!(e.layer_index(&s), k);
            let upper = (layers - 1 - k) as u128;
            let (et, t, h, qw, kvw, f, v) =
                (10u128, 3u128, 64u128, 64u128, 32u128, 160u128, 1000u128);
            let pairs = et * (et + 1) / 2;
            let layer =
                2 * et * h * (qw + 2 * kvw) + 2 * et * qw * h + 4 * pairs * qw + 2 * 3 * et * h * f;
            let head = 2 * t * h * v;
            let pass = upper * layer + head;
            assert_eq!(
                e.step_flops(&s, EditMethod::Zo),
                2 * 2 * pass,
                "{layers} {fraction}"
            );
            // bp: every matmul twice, attention's 2 matmuls become 6.
            let attn = 4 * pairs * qw;
            let bp = 2 * (pass - upper * attn) + 3 * upper * attn;
            assert_eq!(e.step_flops(&s, EditMethod::Bp), bp, "{layers} {fraction}");
        }
    }

    /// One step's bytes against the closed form: per layer above the edit, both norms,
    /// the four projections, attention, two residual adds and the gated FFN at `E` rows;
    /// the edit's add, the final norm and the head at `T` rows; bp moves each twice.
    #[test]
    fn step_bytes_match_the_closed_form() {
        let s = spec(8);
        let e = edit(0.25);
        let (et, t, h, qw, kvw, f, v) = (10u128, 3u128, 64u128, 64u128, 32u128, 160u128, 1000u128);
        let elem = 4u128;
        let norm = |rows: u128| 2 * rows * h + h;
        let linear = |rows: u128, i: u128, o: u128| i * o + rows * (i + o);
        let layer = 2 * norm(et)
            + linear(et, h, qw)
            + 2 * linear(et, h, kvw)
            + (2 * et * qw + 2 * et * kvw)
            + linear(et, qw, h)
            + 2 * 3 * et * h
            + (3 * h * f + et * (2 * h + 3 * f));
        let head = norm(t) + (h * v + t * (h + v));
        let pass = elem * (3 * et * h + 5 * layer + head);
        assert_eq!(e.step_bytes(&s, EditMethod::Zo, 4), 2 * 2 * pass);
        assert_eq!(e.step_bytes(&s, EditMethod::Bp, 4), 2 * pass);
    }

    #[test]
    fn the_prefix_and_a_pass_cover_the_whole_model() {
        let s = spec(8);
        let e = edit(0.25);
        let calls = |ops: &[(OpShape, u64)], f: fn(&OpShape) -> bool| -> u64 {
            ops.iter().filter(|(o, _)| f(o)).map(|(_, c)| c).sum()
        };
        let is_attn = |o: &OpShape| matches!(o, OpShape::Attention { .. });
        let is_emb = |o: &OpShape| matches!(o, OpShape::Embedding { .. });
        let (prefix, pass) = (e.prefix_ops(&s), e.pass_ops(&s));
        assert_eq!(calls(&prefix, is_attn) + calls(&pass, is_attn), 8);
        assert_eq!(calls(&prefix, is_attn), 3);
        assert_eq!(calls(&prefix, is_emb), 1);
        assert_eq!(calls(&pass, is_emb), 0);
        // 2 norms per layer above, and the final norm over the 3 target positions.
        let norms: Vec<_> = pass
            .iter()
            .filter(|(o, _)| matches!(o, OpShape::Norm { .. }))
            .collect();
        assert_eq!(norms.len(), 2);
        assert!(pass.iter().any(|(o, c)| *c == 1
            && *o
                == OpShape::LmHead {
                    tokens: 3,
                    hidden: 64,
                    vocab: 1000,
                    tied: false
                }));
        // The zo step needs no gradient entries; bp needs nothing else.
        assert!(
            e.step_ops(&s, EditMethod::Zo)
                .iter()
                .all(|(o, _)| !matches!(o, OpShape::Grad { .. }))
        );
        assert!(
            e.step_ops(&s, EditMethod::Bp)
                .iter()
                .all(|(o, _)| matches!(o, OpShape::Grad { .. }))
        );
    }

    #[test]
    fn the_top_layer_edit_runs_only_the_head() {
        let s = spec(4);
        let e = edit(0.9);
        assert_eq!(e.upper_layers(&s), 0);
        let pass = e.pass_ops(&s);
        assert_eq!(pass.len(), 3, "{pass:?}");
    }

    #[test]
    fn memory_adds_weights_cache_activations_and_vectors() {
        let s = spec(8);
        let e = edit(0.25);
        let w = Workload {
            prompt_tokens: 16,
            context: 16,
            precision: Precision::for_weights(DType::F32),
        };
        let (et, t, h, v) = (10, 3, 64, 1000);
        let zo = s.weight_bytes(DType::F32)
            + 4 * et * h
            + 4 * (et * (2 * h + 3 * 160) + 4 * et * et + t * v)
            + 5 * h * 4;
        assert_eq!(e.peak_memory_bytes(&s, &w, EditMethod::Zo), zo);
        let saved_tok = 4 * h + 4 * 64 + 4 * 160;
        let saved = 5 * (et * saved_tok + 4 * et * et) + t * (2 * h + v);
        let grads = t * v + et * (h + 2 * h + 3 * 160);
        let bp = s.weight_bytes(DType::F32) + 4 * (et * h + saved + grads) + 5 * h * 4;
        assert_eq!(e.peak_memory_bytes(&s, &w, EditMethod::Bp), bp);
        // Quantized deployment weights shrink zo's weights only.
        let q4 = Workload {
            precision: Precision::for_weights(DType::Q4_0),
            ..w
        };
        assert!(e.peak_memory_bytes(&s, &q4, EditMethod::Zo) < zo);
        assert_eq!(e.peak_memory_bytes(&s, &q4, EditMethod::Bp), bp);
    }

    #[test]
    fn problems_name_their_key() {
        let bad = |f: fn(&mut EditWorkload)| {
            let mut e = EditWorkload::default();
            f(&mut e);
            e.problem().map(|(k, _)| k)
        };
        assert_eq!(bad(|_| {}), None);
        assert_eq!(bad(|e| e.tokens = 0), Some("tokens"));
        assert_eq!(bad(|e| e.target_tokens = 33), Some("target_tokens"));
        assert_eq!(bad(|e| e.layer = 1.0), Some("layer"));
        assert_eq!(bad(|e| e.layer = f64::NAN), Some("layer"));
        assert_eq!(bad(|e| e.steps = 0), Some("steps"));
        assert_eq!(bad(|e| e.queries = 0), Some("queries"));
    }
}
