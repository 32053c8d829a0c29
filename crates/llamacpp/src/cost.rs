//! The llama.cpp cost model: a model's prefill (decode step) is the base of its
//! `(vocab, hidden)` plus its layers, each priced from the profile's differenced
//! [`LayerTable`]; peak memory is the weights in the file's type, the KV cache in the
//! profile's cache type as llama.cpp allocates it, and the compute buffers and runtime
//! measured around the probes.

use crate::arch::Arch;
use crate::model::WeightType;
use crate::profile::{LayerKey, LayerTable, LlamaProfile, Phase, Probe, StackShape, StackTable};
use std::collections::BTreeMap;
use tailor_cost::{
    Breakdown, CostModel, EditCost, EditEstimate, EditMethod, EditWorkload, Estimate, Source,
    Workload,
};
use tailor_spec::layers::Mixer;
use tailor_spec::{DType, ModelSpec};

/// A workload or spec the profile cannot price.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CostError {
    #[error(
        "the profile holds no {0} probes (it has: {1}); profile the space's workload with \
         `tailor profile --engine llama.cpp --space ...`"
    )]
    Phase(Phase, String),
    #[error(
        "the workload runs {wanted} weights but the profile was measured with {profiled}; \
         set the space's `weights = \"{profiled}\"` or profile with --weights {wanted}"
    )]
    Weights { wanted: DType, profiled: DType },
    #[error(
        "the profile has no {what} for {phase}; profile a space or spec that contains it \
         (`tailor profile --engine llama.cpp`)"
    )]
    Missing { what: String, phase: Phase },
}

/// One prediction, with where its parts came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub estimate: Estimate,
    /// Parts not covered by the profile and scaled from the nearest measured one (empty
    /// when the profile covers the spec).
    pub derived: Vec<String>,
}

/// Priced from a llama.cpp profile.
#[derive(Debug, Clone)]
pub struct LlamaCost {
    profile: LlamaProfile,
    tables: BTreeMap<Phase, LayerTable>,
    /// Per phase and architecture, the mixed-stack probes' table.
    stacks: BTreeMap<(Phase, Arch), StackTable>,
    memory_fit: Option<(f64, f64)>,
    /// Whole models' level on this machine now, scaling each phase's predictions.
    level: Option<tailor_cost::Level>,
}

/// Bytes per element of a ggml KV-cache type.
pub fn cache_type_bytes(t: &str) -> f64 {
    match t {
        "f32" => 4.0,
        "q8_0" => 34.0 / 32.0,
        "q4_0" | "q4_1" => 18.0 / 32.0,
        "q5_0" | "q5_1" => 22.0 / 32.0,
        "iq4_nl" => 18.0 / 32.0,
        // f16, bf16 and anything else llama.cpp stores at 2 bytes.
        _ => 2.0,
    }
}

/// The context llama.cpp allocates for `tokens`: padded up to a multiple of 256.
pub fn allocated_context(tokens: u64) -> u64 {
    tokens.max(1).div_ceil(256) * 256
}

impl LlamaCost {
    pub fn new(profile: LlamaProfile) -> Self {
        let tables = profile
            .phases()
            .into_iter()
            .map(|p| (p, profile.table(p)))
            .collect();
        let mut stacks = BTreeMap::new();
        for phase in profile.phases() {
            for arch in profile.archs() {
                stacks.insert((phase, arch), profile.stack_table(phase, arch));
            }
        }
        let mut cost = LlamaCost {
            profile,
            tables,
            stacks,
            memory_fit: None,
            level: None,
        };
        cost.memory_fit = cost.memory_fit();
        cost
    }

    pub fn profile(&self) -> &LlamaProfile {
        &self.profile
    }

    /// This cost model with every prefill prediction scaled by `level.prefill` and every
    /// decode step's by `level.decode` (the breakdown alike, so it still adds up); memory
    /// and edits are not scaled: no whole-model edit is timed to set a level for them.
    pub fn with_level(mut self, level: tailor_cost::Level) -> Self {
        self.level = Some(level);
        self
    }

    /// The level set by [`LlamaCost::with_level`], if any.
    pub fn level(&self) -> Option<&tailor_cost::Level> {
        self.level.as_ref()
    }

    fn phases(&self) -> String {
        let names: Vec<String> = self.tables.keys().map(|p| p.to_string()).collect();
        if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        }
    }

    /// The profile must hold the workload's prefill and decode, in its weight type.
    pub fn check_workload(&self, w: &Workload) -> Result<(), CostError> {
        let profiled = self.profile.fingerprint.weights;
        if w.precision.weights != profiled {
            return Err(CostError::Weights {
                wanted: w.precision.weights,
                profiled,
            });
        }
        for phase in phases_of(w) {
            if !self.tables.contains_key(&phase) {
                return Err(CostError::Phase(phase, self.phases()));
            }
        }
        Ok(())
    }

    /// Whether every part of `spec` is priced from measurements (no scaling).
    pub fn covers(&self, spec: &ModelSpec, w: &Workload) -> Result<(), CostError> {
        for phase in phases_of(w) {
            let table = self
                .tables
                .get(&phase)
                .ok_or_else(|| CostError::Phase(phase, self.phases()))?;
            if spec.stack.is_some() {
                let shape = self.stack_shape(spec).map_err(|e| CostError::Missing {
                    what: format!("architecture for this stack ({e})"),
                    phase,
                })?;
                let missing = match self.stacks.get(&(phase, shape.arch)) {
                    Some(t) => t.missing(&shape),
                    None => vec![format!("`{}` probe", shape.arch.name())],
                };
                if !missing.is_empty() {
                    return Err(CostError::Missing {
                        what: missing.join(", "),
                        phase,
                    });
                }
                continue;
            }
            if table.layer_ms(&LayerKey::of(spec)).is_none() {
                return Err(CostError::Missing {
                    what: format!("layer of {}", Probe::of(spec, 1).layer_label()),
                    phase,
                });
            }
            if !table
                .base
                .contains_key(&(spec.vocab_size, spec.hidden_size))
            {
                return Err(CostError::Missing {
                    what: format!(
                        "base for vocabulary {} at width {}",
                        spec.vocab_size, spec.hidden_size
                    ),
                    phase,
                });
            }
        }
        Ok(())
    }

    /// The architecture and layers of a spec with a stack, in the profile's weight type.
    pub fn stack_shape(&self, spec: &ModelSpec) -> Result<StackShape, crate::model::Unsupported> {
        let weights =
            WeightType::from_dtype(self.profile.fingerprint.weights).unwrap_or(WeightType::F32);
        StackShape::of(spec, weights)
    }

    /// Time of one phase, ms, and its breakdown; `derived` collects what was scaled.
    fn phase_ms(
        &self,
        spec: &ModelSpec,
        phase: Phase,
        derived: &mut Vec<String>,
    ) -> (f64, Breakdown) {
        if spec.stack.is_some() {
            return self.stack_phase_ms(spec, phase, derived);
        }
        let Some((table, scale)) =
            nearest(self.tables.iter().map(|(k, t)| (*k, t)), phase, derived)
        else {
            return (f64::NAN, Breakdown::default());
        };
        let key = LayerKey::of(spec);
        let layer = table.layer_ms(&key).unwrap_or_else(|| {
            // The nearest width's reference layer, scaled by per-layer weights.
            let per_layer = |k: &LayerKey| {
                Probe::of(spec, 1)
                    .with_layer(k)
                    .spec()
                    .params()
                    .non_embedding as f64
            };
            let near = table
                .reference
                .values()
                .min_by_key(|k| k.hidden.abs_diff(spec.hidden_size));
            match near {
                Some(r) => {
                    derived.push(format!(
                        "{phase}: layer {} scaled from {} by parameters",
                        Probe::of(spec, 1).layer_label(),
                        Probe::of(spec, 1).with_layer(r).layer_label()
                    ));
                    table.layer[r] * per_layer(&key) / per_layer(r)
                }
                None => f64::NAN,
            }
        });
        let base = table
            .base
            .get(&(spec.vocab_size, spec.hidden_size))
            .copied()
            .unwrap_or_else(|| {
                let near = table
                    .base
                    .iter()
                    .min_by_key(|((v, h), _)| (v * h).abs_diff(spec.vocab_size * spec.hidden_size));
                match near {
                    Some(((v, h), ms)) => {
                        derived.push(format!(
                            "{phase}: base of vocabulary {} x {} scaled from {v} x {h}",
                            spec.vocab_size, spec.hidden_size
                        ));
                        ms * (spec.vocab_size * spec.hidden_size) as f64 / (v * h) as f64
                    }
                    None => f64::NAN,
                }
            });
        let layers = spec.num_layers as f64 * layer;
        // Apportion the layers between attention and FFN by their weights (decode) or
        // FLOPs (prefill): a breakdown for reading, not a measurement.
        let attn_w =
            (2 * spec.hidden_size * spec.q_width() + 2 * spec.hidden_size * spec.kv_width()) as f64;
        let ffn_w = (3 * spec.hidden_size * spec.intermediate_size) as f64;
        let attn_share = match phase {
            Phase::Decode { .. } => attn_w / (attn_w + ffn_w),
            Phase::Prefill { tokens } => {
                let t = tokens as f64;
                let scores = 2.0 * t * (t + 1.0) * (spec.q_width() as f64);
                let a = 2.0 * t * attn_w + scores;
                a / (a + 2.0 * t * ffn_w)
            }
        };
        let b = Breakdown {
            attention_ms: scale * layers * attn_share,
            ffn_ms: scale * layers * (1.0 - attn_share),
            lm_head_ms: scale * base,
            other_ms: 0.0,
        };
        (scale * (base + layers), b)
    }

    /// Time of one phase of a spec with a stack: the base of its architecture, vocabulary
    /// and width plus each layer's mixer and FFN from the phase's [`StackTable`]; what
    /// the profile lacks is NaN, said in `derived`.
    fn stack_phase_ms(
        &self,
        spec: &ModelSpec,
        phase: Phase,
        derived: &mut Vec<String>,
    ) -> (f64, Breakdown) {
        let shape = match self.stack_shape(spec) {
            Ok(s) => s,
            Err(e) => {
                derived.push(format!("{phase}: no llama.cpp architecture runs it ({e})"));
                return (f64::NAN, Breakdown::default());
            }
        };
        let Some((table, scale)) = nearest(
            self.stacks
                .iter()
                .filter(|((_, a), _)| *a == shape.arch)
                .map(|((k, _), t)| (*k, t)),
            phase,
            derived,
        ) else {
            return (f64::NAN, Breakdown::default());
        };
        let missing = table.missing(&shape);
        if !missing.is_empty() {
            derived.push(format!("{phase}: not measured: {}", missing.join(", ")));
            return (f64::NAN, Breakdown::default());
        }
        let base = table.base_ms(shape.vocab, shape.hidden).unwrap_or(f64::NAN);
        let mut b = Breakdown {
            lm_head_ms: scale * base,
            ..Breakdown::default()
        };
        let ffn_elements = (3 * shape.hidden * shape.ffn) as f64;
        for (m, n) in &shape.mixers {
            let ms = scale
                * *n as f64
                * table
                    .layer_ms(shape.hidden, m, shape.ffn)
                    .unwrap_or(f64::NAN);
            // Apportioned between mixer and FFN by their weights: for reading, not measured.
            let mixer = m.matrix_elements(shape.hidden) as f64;
            let share = mixer / (mixer + ffn_elements);
            if m.is_attention() {
                b.attention_ms += ms * share;
            } else {
                b.other_ms += ms * share;
            }
            b.ffn_ms += ms * (1.0 - share);
        }
        (b.total_ms(), b)
    }

    /// Prefill, decode and memory of `spec` under `w`.
    pub fn predict(&self, spec: &ModelSpec, w: &Workload) -> Prediction {
        let mut derived = Vec::new();
        let [pre, dec] = phases_of(w);
        let (mut prefill_ms, mut prefill_breakdown) = self.phase_ms(spec, pre, &mut derived);
        let (mut decode_ms, mut decode_breakdown) = self.phase_ms(spec, dec, &mut derived);
        if let Some(l) = &self.level {
            prefill_ms *= l.prefill;
            decode_ms *= l.decode;
            for (b, k) in [
                (&mut prefill_breakdown, l.prefill),
                (&mut decode_breakdown, l.decode),
            ] {
                b.attention_ms *= k;
                b.ffn_ms *= k;
                b.lm_head_ms *= k;
                b.other_ms *= k;
            }
        }
        Prediction {
            estimate: Estimate {
                prefill_ms,
                decode_ms_per_token: decode_ms,
                peak_memory_bytes: self.memory_bytes(spec, w),
                prefill_breakdown,
                decode_breakdown,
            },
            derived,
        }
    }

    /// Bytes of the weights as the GGUF file holds them.
    pub fn weight_bytes(&self, spec: &ModelSpec) -> u64 {
        match WeightType::from_dtype(self.profile.fingerprint.weights) {
            Ok(wt) => crate::model::weight_bytes(spec, wt),
            Err(_) => spec.weight_bytes(self.profile.fingerprint.weights),
        }
    }

    /// Bytes of the KV cache (and, for a stack, the recurrent state) llama.cpp allocates
    /// for `tokens` of context: global attention for the context padded to 256; sliding
    /// windows for at most `window + n_ubatch` (padded alike, llama.cpp's iSWA cache); a
    /// short convolution `kernel - 1` past inputs and a Gated DeltaNet its conv inputs and
    /// its state matrix, in f32 (one sequence, as llama-bench runs).
    pub fn kv_bytes(&self, spec: &ModelSpec, tokens: u64) -> u64 {
        self.cache_bytes(spec, tokens, allocated_context)
    }

    /// Bytes of the copy of one sequence's state llama-bench keeps after it fills the
    /// cache to `depth` tokens, to restore it before each repetition of a decode test
    /// (`llama_state_seq_get_data`, `cstate` in llama-bench.cpp): the cache's cells in use
    /// (no padding; a sliding window's at most `window + n_ubatch`) and the recurrent
    /// states. A deployed model holds no such copy: it is in what llama-bench measures,
    /// not in [`LlamaCost::memory_bytes`].
    pub fn state_copy_bytes(&self, spec: &ModelSpec, depth: u64) -> u64 {
        if depth == 0 {
            return 0;
        }
        self.cache_bytes(spec, depth, |t| t)
    }

    /// The cache of `tokens` whose cells `cells` counts (padded or not).
    fn cache_bytes(&self, spec: &ModelSpec, tokens: u64, cells: fn(u64) -> u64) -> u64 {
        let f = &self.profile.fingerprint;
        let per = cache_type_bytes(&f.type_k) + cache_type_bytes(&f.type_v);
        let context = cells(tokens);
        if spec.stack.is_none() {
            return (spec.num_layers as f64 * spec.kv_width() as f64 * context as f64 * per).round()
                as u64;
        }
        let mut bytes = 0.0;
        for layer in spec.layers() {
            bytes += match layer.mixer {
                Mixer::Attention(a) => {
                    let cells = match a.window {
                        Some(w) => context.min(cells(w + f.n_ubatch)),
                        None => context,
                    };
                    a.kv_width() as f64 * cells as f64 * per
                }
                Mixer::ShortConv(c) => 4.0 * (c.kernel.saturating_sub(1) * spec.hidden_size) as f64,
                Mixer::LinearAttention(l) => {
                    4.0 * (l.conv_kernel.saturating_sub(1) * l.conv_channels()
                        + l.key_head_dim * l.value_width()) as f64
                }
                Mixer::None => 0.0,
            };
        }
        bytes.round() as u64
    }

    /// What llama-bench's decode test of `spec` at `w.context` holds at its peak, as the
    /// profile's probes and a validation measure it: the weights as the engine holds them,
    /// the cache allocated for the test's context (`depth + decode_tokens`), and the state
    /// copy of `depth` tokens it restores before each repetition
    /// ([`LlamaCost::state_copy_bytes`]).
    pub fn bench_memory_bytes(&self, spec: &ModelSpec, w: &Workload) -> u64 {
        let tokens = self.profile.method.decode_tokens;
        let depth = decode_depth(w.context, tokens);
        self.held_bytes(spec)
            + self.kv_bytes(spec, depth + tokens)
            + self.state_copy_bytes(spec, depth)
    }

    /// The weights as the engine holds them ([`LlamaCost::memory_fit`]; the file's bytes
    /// when the profile has no such fit).
    fn held_bytes(&self, spec: &ModelSpec) -> u64 {
        let weights = self.weight_bytes(spec) as f64;
        let held = match self.memory_fit {
            Some((intercept, slope)) => (intercept + slope * weights).max(weights),
            None => weights,
        };
        held.round() as u64
    }

    /// Peak resident memory less the KV cache and llama-bench's state copy
    /// ([`LlamaCost::state_copy_bytes`]), as a line in the weights' bytes fitted over the
    /// decode probes: `(intercept, slope)`. The slope is what one byte of weights
    /// costs the engine in memory (about 2 where llama.cpp repacks Q4_0 weights for its CPU
    /// kernels and the file's mapped pages stay resident too); the intercept its compute
    /// buffers and runtime. `None` without probes of two sizes with a measured peak.
    pub fn memory_fit(&self) -> Option<(f64, f64)> {
        let method = self.profile.method;
        let points: Vec<(f64, f64)> = self
            .profile
            .probes
            .iter()
            .filter_map(|e| {
                let Phase::Decode { context } = e.phase else {
                    return None;
                };
                let s = e.model.spec();
                let depth = decode_depth(context, method.decode_tokens);
                let peak = e.peak_rss_bytes? as f64;
                let cache = self.kv_bytes(&s, depth + method.decode_tokens)
                    + self.state_copy_bytes(&s, depth);
                Some((self.weight_bytes(&s) as f64, peak - cache as f64))
            })
            .collect();
        let distinct = points
            .iter()
            .map(|p| p.0 as u64)
            .collect::<std::collections::BTreeSet<_>>();
        if distinct.len() < 2 {
            return None;
        }
        let n = points.len() as f64;
        let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
        let my = points.iter().map(|p| p.1).sum::<f64>() / n;
        let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
        let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
        let slope = sxy / sxx;
        Some((my - slope * mx, slope))
    }

    /// Peak memory of a run of `w`: the KV cache allocated for the longer of the prompt and
    /// the decode context, plus the weights as the probes' fit says the engine holds them
    /// ([`LlamaCost::memory_fit`]; the file's bytes when the profile has no such fit).
    pub fn memory_bytes(&self, spec: &ModelSpec, w: &Workload) -> u64 {
        let tokens = w.prompt_tokens.max(w.context + 1);
        self.held_bytes(spec) + self.kv_bytes(spec, tokens)
    }
}

/// Where a decode test starts so that its `tokens` steps centre on `context`.
pub fn decode_depth(context: u64, tokens: u64) -> u64 {
    context.saturating_sub(tokens / 2)
}

fn phase_distance(a: Phase, b: Phase) -> u64 {
    match (a, b) {
        (Phase::Prefill { tokens: x }, Phase::Prefill { tokens: y })
        | (Phase::Decode { context: x }, Phase::Decode { context: y }) => x.abs_diff(y),
        _ => u64::MAX,
    }
}

/// The table of `phase`, or of the nearest phase of its kind with the factor that scales
/// it (prefill by tokens; decode not at all), saying so in `derived`; `None` when no
/// phase of the kind was measured.
fn nearest<'a, T>(
    tables: impl Iterator<Item = (Phase, &'a T)>,
    phase: Phase,
    derived: &mut Vec<String>,
) -> Option<(&'a T, f64)> {
    let near = tables
        .filter(|(k, _)| std::mem::discriminant(k) == std::mem::discriminant(&phase))
        .min_by_key(|(k, _)| phase_distance(*k, phase));
    match near {
        Some((k, t)) if k == phase => Some((t, 1.0)),
        Some((k, t)) => {
            derived.push(format!("{phase} scaled from {k}"));
            let s = match (k, phase) {
                (Phase::Prefill { tokens: a }, Phase::Prefill { tokens: b }) => b as f64 / a as f64,
                _ => 1.0,
            };
            Some((t, s))
        }
        None => {
            derived.push(format!("{phase}: nothing measured"));
            None
        }
    }
}

/// The prefill and decode phases of a workload.
pub fn phases_of(w: &Workload) -> [Phase; 2] {
    [
        Phase::Prefill {
            tokens: w.prompt_tokens,
        },
        Phase::Decode { context: w.context },
    ]
}

impl LlamaCost {
    /// What an edit costs in llama.cpp, and what was scaled to price it. llama.cpp runs
    /// forward passes only, so the zo edit is priced and the bp one is not (its step is
    /// `None`; its memory is the closed form's, what backpropagation would hold in f32).
    /// A zo pass is the layers above the edited one plus the base (embedding and head) at
    /// the edit's prompt length, a prefill probe of the profile (`pp{tokens}`); the prefix
    /// the layers up to the edited one plus the base. The base's head reads one row where
    /// the edit's loss reads `target_tokens`: a head bound by reading its weights costs
    /// about the same for a few rows.
    pub fn predict_edit(
        &self,
        spec: &ModelSpec,
        w: &Workload,
        e: &EditWorkload,
    ) -> (EditEstimate, Vec<String>) {
        let mut derived = Vec::new();
        let phase = Phase::Prefill { tokens: e.tokens };
        let with_layers = |num_layers| ModelSpec {
            num_layers,
            ..spec.clone()
        };
        let layer = e.layer_index(spec);
        let (prefix_ms, _) = self.phase_ms(&with_layers(layer + 1), phase, &mut derived);
        let (pass_ms, _) = self.phase_ms(&with_layers(e.upper_layers(spec)), phase, &mut derived);
        derived.dedup();
        let source = if derived.is_empty() {
            Source::Measured
        } else {
            Source::Extrapolated
        };
        let finite = |x: f64| x.is_finite().then_some(x);
        // What llama.cpp holds to prefill the edit prompt, plus the cached prefix and the
        // optimiser's vectors (f32).
        let h = spec.hidden_size;
        let prefill = Workload {
            prompt_tokens: e.tokens,
            context: e.tokens.saturating_sub(1),
            ..*w
        };
        let zo_memory = self.memory_bytes(spec, &prefill) + 4 * e.tokens * h + 4 * 5 * h;
        let estimate = EditEstimate {
            workload: *e,
            layer,
            zo: EditCost::new(
                e,
                finite(2.0 * e.queries as f64 * pass_ms),
                finite(prefix_ms),
                zo_memory,
                Some(source),
            ),
            bp: EditCost::new(
                e,
                None,
                None,
                e.peak_memory_bytes(spec, w, EditMethod::Bp),
                None,
            ),
        };
        (estimate, derived)
    }
}

impl CostModel for LlamaCost {
    fn estimate(&self, spec: &ModelSpec, workload: &Workload) -> Estimate {
        self.predict(spec, workload).estimate
    }

    /// Edits of the uniform dense stack only (the edit's layer and passes are dense).
    fn edit(&self, spec: &ModelSpec, w: &Workload, e: &EditWorkload) -> Option<EditEstimate> {
        if spec.beyond_dense().is_some() {
            return None;
        }
        Some(self.predict_edit(spec, w, e).0)
    }
}

impl Probe {
    /// This probe with `k`'s layer shape.
    pub fn with_layer(&self, k: &LayerKey) -> Probe {
        Probe {
            hidden: k.hidden,
            heads: k.attention.heads,
            kv_heads: k.attention.kv_heads,
            head_dim: k.attention.head_dim,
            intermediate: k.intermediate,
            ..*self
        }
    }

    /// `hidden heads/kv_heads x head_dim ffn intermediate`.
    pub fn layer_label(&self) -> String {
        format!(
            "{} {}/{}x{} ffn {}",
            self.hidden, self.heads, self.kv_heads, self.head_dim, self.intermediate
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::tests::profile;
    use tailor_spec::Precision;

    fn workload() -> Workload {
        Workload {
            prompt_tokens: 64,
            context: 256,
            precision: Precision::for_weights(DType::Q4_0),
        }
    }

    #[test]
    fn prices_a_covered_spec_exactly_from_its_probes() {
        let cost = LlamaCost::new(profile());
        let w = workload();
        cost.check_workload(&w).unwrap();
        // In the synthetic engine (profile::tests) a 512-wide, 8-layer model costs:
        let spec = ModelSpec::llama(8192, 512, 8, 8, 4, 1536);
        cost.covers(&spec, &w).unwrap();
        let p = cost.predict(&spec, &w);
        assert!(p.derived.is_empty(), "{:?}", p.derived);
        let base = 0.5 + 8192.0 * 512.0 * 1e-7;
        let layer = 0.01 * 8.0 + 0.03 * 4.0 + 1e-4 * 512.0 + 2e-4 * 1536.0 + 0.02;
        let want = base + 8.0 * layer;
        // Each probe's rounds are ms x (1, 1.01, 0.99): median ms.
        assert!((p.estimate.decode_ms_per_token - want).abs() < 1e-9);
        assert!((p.estimate.prefill_ms - want).abs() < 1e-9);
        let b = p.estimate.decode_breakdown;
        assert!((b.total_ms() - want).abs() < 1e-9);
    }

    /// A level scales each phase by its own factor, the breakdown with it, and leaves
    /// memory and the edit alone.
    #[test]
    fn a_level_scales_each_phase_and_nothing_else() {
        let cost = LlamaCost::new(profile());
        let spec = ModelSpec::llama(8192, 512, 8, 8, 4, 1536);
        let w = workload();
        let anchor = |id, pre: f64, dec: f64| tailor_cost::Anchor {
            id,
            params: 1,
            predicted_prefill_ms: 10.0,
            measured_prefill_ms: 10.0 * pre,
            predicted_decode_ms: 2.0,
            measured_decode_ms: 2.0 * dec,
        };
        let level = tailor_cost::Level::new(
            vec![anchor(1, 0.8, 1.2), anchor(2, 0.9, 1.3)],
            "2026-12-04T22:00:00Z".into(),
        )
        .unwrap();
        let leveled = cost.clone().with_level(level.clone());
        assert_eq!(leveled.level(), Some(&level));
        assert!(cost.level().is_none());
        let (a, b) = (cost.predict(&spec, &w), leveled.predict(&spec, &w));
        assert!((b.estimate.prefill_ms - 0.85 * a.estimate.prefill_ms).abs() < 1e-9);
        assert!(
            (b.estimate.decode_ms_per_token - 1.25 * a.estimate.decode_ms_per_token).abs() < 1e-9
        );
        assert!(
            (b.estimate.decode_breakdown.total_ms() - b.estimate.decode_ms_per_token).abs() < 1e-9
        );
        assert_eq!(b.estimate.peak_memory_bytes, a.estimate.peak_memory_bytes);
        let e = EditWorkload::default();
        assert_eq!(
            leveled.predict_edit(&spec, &w, &e).0,
            cost.predict_edit(&spec, &w, &e).0
        );
    }

    /// llama.cpp prices the zo edit from its prefill probes at the edit's prompt length
    /// (the layers above the edit plus the base per pass) and leaves the bp step unpriced.
    #[test]
    fn the_zo_edit_is_priced_from_prefill_probes_and_bp_is_not() {
        let cost = LlamaCost::new(profile());
        let spec = ModelSpec::llama(8192, 512, 8, 8, 4, 1536);
        let e = EditWorkload {
            tokens: 64,
            queries: 3,
            ..EditWorkload::default()
        };
        let (est, derived) = cost.predict_edit(&spec, &workload(), &e);
        assert!(derived.is_empty(), "{derived:?}");
        let base = 0.5 + 8192.0 * 512.0 * 1e-7;
        let layer = 0.01 * 8.0 + 0.03 * 4.0 + 1e-4 * 512.0 + 2e-4 * 1536.0 + 0.02;
        // Layer 2 of 8 is edited: 5 layers above it, 3 in the prefix.
        assert_eq!(est.layer, 2);
        let step = 2.0 * 3.0 * (base + 5.0 * layer);
        assert!((est.zo.step_ms.unwrap() - step).abs() < 1e-9);
        assert!((est.zo.prefix_ms.unwrap() - (base + 3.0 * layer)).abs() < 1e-9);
        assert_eq!(est.zo.source, Some(Source::Measured));
        assert_eq!(
            (est.bp.step_ms, est.bp.total_ms, est.bp.source),
            (None, None, None)
        );
        // An earlier edit never costs less; a prompt length without probes is scaled, and said.
        let earlier = EditWorkload { layer: 0.0, ..e };
        assert!(cost.predict_edit(&spec, &workload(), &earlier).0.zo.step_ms > est.zo.step_ms);
        let other = EditWorkload { tokens: 32, ..e };
        let (scaled, derived) = cost.predict_edit(&spec, &workload(), &other);
        assert!(!derived.is_empty());
        assert_eq!(scaled.zo.source, Some(Source::Extrapolated));
    }

    #[test]
    fn later_layers_and_wider_models_never_cost_less() {
        let cost = LlamaCost::new(profile());
        let w = workload();
        let mut last = 0.0;
        for l in [4, 8, 12] {
            let e = cost.estimate(&ModelSpec::llama(8192, 256, l, 4, 2, 768), &w);
            assert!(e.decode_ms_per_token > last);
            last = e.decode_ms_per_token;
        }
    }

    #[test]
    fn uncovered_specs_are_scaled_and_say_so() {
        let cost = LlamaCost::new(profile());
        let w = workload();
        let spec = ModelSpec::llama(8192, 384, 4, 4, 2, 1024);
        assert!(matches!(
            cost.covers(&spec, &w),
            Err(CostError::Missing { .. })
        ));
        let p = cost.predict(&spec, &w);
        assert!(p.estimate.decode_ms_per_token.is_finite());
        assert!(!p.derived.is_empty());
    }

    #[test]
    fn another_weight_type_or_phase_is_refused() {
        let cost = LlamaCost::new(profile());
        let mut w = workload();
        w.precision = Precision::for_weights(DType::F32);
        let e = cost.check_workload(&w).unwrap_err().to_string();
        assert!(e.contains("f32 weights") && e.contains("q4_0"), "{e}");
        let mut w = workload();
        w.context = 128;
        let e = cost.check_workload(&w).unwrap_err().to_string();
        assert!(
            e.contains("decode at 128") && e.contains("decode at 256"),
            "{e}"
        );
    }

    #[test]
    fn memory_is_weights_cache_and_the_measured_residual() {
        // Probes whose peak is exactly twice their weights, their cache, llama-bench's copy
        // of the filled cache and 8 MiB.
        let mut p = profile();
        let probe_cost = LlamaCost::new(p.clone());
        for e in &mut p.probes {
            if let Phase::Decode { context } = e.phase {
                let s = e.model.spec();
                let depth = decode_depth(context, 16);
                e.peak_rss_bytes = Some(
                    2 * probe_cost.weight_bytes(&s)
                        + probe_cost.kv_bytes(&s, depth + 16)
                        + probe_cost.state_copy_bytes(&s, depth)
                        + (8 << 20),
                );
            }
        }
        let cost = LlamaCost::new(p);
        let spec = ModelSpec::llama(8192, 256, 4, 4, 2, 512);
        let w = workload();
        let (intercept, slope) = cost.memory_fit().unwrap();
        assert!((slope - 2.0).abs() < 1e-6, "{slope}");
        assert!((intercept - (8 << 20) as f64).abs() < 1.0, "{intercept}");
        let kv = cost.kv_bytes(&spec, 257);
        // 4 layers x 128 kv width x 512 allocated tokens x (2 + 2) bytes.
        assert_eq!(kv, 4 * 128 * 512 * 4);
        let m = cost.memory_bytes(&spec, &w);
        let want = 2 * cost.weight_bytes(&spec) + kv + (8 << 20);
        assert!(m.abs_diff(want) <= 1, "{m} vs {want}");
        // llama-bench's decode run at context 256 also holds the copy of the 248 tokens it
        // filled (unpadded: 4 x 128 x 248 x 4 bytes) and allocates 264 tokens' cache.
        assert_eq!(cost.state_copy_bytes(&spec, 248), 4 * 128 * 248 * 4);
        assert_eq!(cost.state_copy_bytes(&spec, 0), 0);
        let bench = cost.bench_memory_bytes(&spec, &w);
        let want = 2 * cost.weight_bytes(&spec)
            + cost.kv_bytes(&spec, 264)
            + 4 * 128 * 248 * 4
            + (8 << 20);
        assert!(bench.abs_diff(want) <= 1, "{bench} vs {want}");
    }
}
