//! The profiled cost model: a pass costs the sum of its operators' measured times.
//!
//! Layers repeat, so a model is a handful of distinct operator shapes, each called many
//! times ([`OpShape::pass`]). A shape the profile holds costs its median. A shape it
//! lacks is estimated from the profiled shapes of the same *family* (same operator,
//! same fixed parameters, e.g. a linear at the same token count and bias): along the
//! family's roofline time (FLOPs at the measured peak, or bytes at the measured
//! bandwidth, whichever is longer), interpolated piecewise-linearly in log-log space
//! between the two nearest points, or extrapolated from the end of the family. Derived
//! estimates are never below the roofline itself. Every estimate says where it came from.

use crate::edit::{EditCost, EditEstimate, EditMethod, EditWorkload};
use crate::level::Level;
use crate::profile::{Entry, OpShape, Profile, RooflineProbe};
use crate::{Breakdown, CostModel, Estimate, Workload, peak_memory_bytes};
use serde::Serialize;
use std::collections::HashMap;
use tailor_spec::{Activation, ModelSpec, NormKind, Phase};

pub use crate::source::Source;

/// One operator of a pass, priced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpCost {
    pub shape: OpShape,
    pub calls: u64,
    /// Time of one call, microseconds.
    pub us_per_call: f64,
    pub source: Source,
}

impl OpCost {
    pub fn total_ms(&self) -> f64 {
        self.us_per_call * self.calls as f64 / 1e3
    }
}

/// A prediction with its operator list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    pub estimate: Estimate,
    pub prefill_ops: Vec<OpCost>,
    pub decode_ops: Vec<OpCost>,
}

impl Prediction {
    /// Operators (of both passes) whose time is not a measured entry.
    pub fn derived(&self) -> impl Iterator<Item = &OpCost> {
        self.prefill_ops
            .iter()
            .chain(&self.decode_ops)
            .filter(|o| o.source != Source::Measured)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProfiledError {
    #[error(
        "profile `{0}` has no roofline probe or no entries yet; finish it with `tailor profile`"
    )]
    Incomplete(String),
}

/// `(roofline time, median)` of profiled shapes, microseconds, sorted by the first.
type Points = Vec<(f64, f64)>;

/// The profiled cost model.
#[derive(Debug, Clone)]
pub struct Profiled {
    profile: Profile,
    roofline: RooflineProbe,
    elem_bytes: u64,
    exact: HashMap<OpShape, f64>,
    families: HashMap<OpShape, Points>,
    /// The kinds of operator ([`OpShape::kind_name`]) the profile has entries of.
    kinds: std::collections::BTreeSet<&'static str>,
    /// Whole models' level on this machine now, scaling each phase's predictions.
    level: Option<Level>,
}

impl Profiled {
    pub fn new(profile: Profile) -> Result<Self, ProfiledError> {
        let roofline = match (profile.roofline, profile.entries.is_empty()) {
            (Some(r), false) => r,
            _ => return Err(ProfiledError::Incomplete(profile.name.clone())),
        };
        let elem_bytes = profile.fingerprint.dtype.bytes_per_element().ceil() as u64;
        let exact = profile
            .entries
            .iter()
            .map(|e| (e.shape.clone(), e.median_us))
            .collect();
        let mut model = Self {
            roofline,
            elem_bytes,
            exact,
            families: HashMap::new(),
            kinds: profile
                .entries
                .iter()
                .map(|e| e.shape.kind_name())
                .collect(),
            profile,
            level: None,
        };
        let mut families: HashMap<OpShape, Points> = HashMap::new();
        for Entry {
            shape, median_us, ..
        } in &model.profile.entries
        {
            let x = model.roofline_us(shape);
            for family in families_of(shape) {
                families.entry(family).or_default().push((x, *median_us));
            }
        }
        for points in families.values_mut() {
            *points = merge_equal_x(std::mem::take(points));
        }
        model.families = families;
        Ok(model)
    }

    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// This cost model with every prefill prediction scaled by `level.prefill` and every
    /// decode step's by `level.decode` (each operator of the pass alike, so the breakdown
    /// keeps its shares). An edit's costs are not scaled: no edit was timed to set them.
    pub fn with_level(mut self, level: Level) -> Self {
        self.level = Some(level);
        self
    }

    /// The level set by [`Profiled::with_level`], if any.
    pub fn level(&self) -> Option<&Level> {
        self.level.as_ref()
    }

    /// The runtime's measured memory overhead that every peak includes; `None` when the
    /// profile has no memory probe (its peaks are the model's own bytes alone).
    pub fn memory_overhead_bytes(&self) -> Option<u64> {
        self.profile
            .memory
            .as_ref()
            .map(|m| m.runtime_overhead_bytes)
    }

    /// The roofline bound of one call, microseconds: FLOPs at the measured peak or bytes at
    /// the measured bandwidth, whichever takes longer.
    pub fn roofline_us(&self, shape: &OpShape) -> f64 {
        let compute = shape.flops() as f64 / (self.roofline.matmul_gflops * 1e3);
        let memory = shape.bytes(self.elem_bytes) as f64 / (self.roofline.bandwidth_gbs * 1e3);
        compute.max(memory)
    }

    /// Time of one call of `shape`, microseconds, and where it comes from.
    pub fn op_time(&self, shape: &OpShape) -> (f64, Source) {
        if let Some(&t) = self.exact.get(shape) {
            return (t, Source::Measured);
        }
        let x = self.roofline_us(shape);
        for family in families_of(shape) {
            if let Some(points) = self.families.get(&family)
                && let Some((t, source)) = along(points, x)
            {
                return (t.max(x), source);
            }
        }
        (x, Source::Roofline)
    }

    /// The first operator of `spec`'s passes under `w` of a kind the profile has no entry
    /// of at all: its time could come from the roofline only, so whatever prices with
    /// this profile refuses the spec instead (naming this shape).
    pub fn unmeasured(&self, spec: &ModelSpec, w: &Workload) -> Option<OpShape> {
        first_call(spec, w, |s| !self.kinds.contains(s.kind_name()))
    }

    /// The first attention call of `spec`'s passes under `w` longer than any the profile
    /// timed attention at: a prompt (`q_len` of causal attention) or a decode context
    /// (`kv_len - 1`) beyond its longest. Attention's time grows with the length, faster
    /// than its roofline once the KV cache leaves the caches, so a price extrapolated up
    /// from shorter lengths would be a guess: whatever prices with this profile refuses
    /// the workload instead (as llama.cpp profiles do). Lengths at or below the longest
    /// are priced from the profiled ones (and said to be, per operator).
    pub fn unprofiled_length(&self, spec: &ModelSpec, w: &Workload) -> Option<OpShape> {
        let (prompts, contexts) = self.attention_lengths();
        let longest = |xs: &[u64]| xs.last().copied().unwrap_or(0);
        let (prompt, context) = (longest(&prompts), longest(&contexts));
        first_call(spec, w, |s| {
            !self.exact.contains_key(s)
                && match *s {
                    OpShape::Attention {
                        q_len,
                        kv_len,
                        causal,
                        ..
                    } => {
                        if causal {
                            q_len > prompt
                        } else {
                            kv_len.saturating_sub(1) > context
                        }
                    }
                    _ => false,
                }
        })
    }

    /// The prompt lengths (causal attention) and decode contexts (attention of one query,
    /// over context + 1 keys) the profile timed attention at, ascending.
    pub fn attention_lengths(&self) -> (Vec<u64>, Vec<u64>) {
        let mut prompts = std::collections::BTreeSet::new();
        let mut contexts = std::collections::BTreeSet::new();
        for e in &self.profile.entries {
            if let OpShape::Attention {
                q_len,
                kv_len,
                causal,
                ..
            } = e.shape
            {
                if causal {
                    prompts.insert(q_len);
                } else {
                    contexts.insert(kv_len.saturating_sub(1));
                }
            }
        }
        (
            prompts.into_iter().collect(),
            contexts.into_iter().collect(),
        )
    }

    /// Every operator of one pass, priced (at the level, where one is set).
    pub fn pass(&self, spec: &ModelSpec, phase: Phase) -> Vec<OpCost> {
        let mut ops = self.price_ops(OpShape::pass(spec, phase));
        if let Some(l) = &self.level {
            let k = match phase {
                Phase::Prefill { .. } => l.prefill,
                Phase::Decode { .. } => l.decode,
            };
            ops.iter_mut().for_each(|o| o.us_per_call *= k);
        }
        ops
    }

    /// Operator calls `(shape, calls)`, each priced with its source.
    pub fn price_ops(&self, ops: Vec<(OpShape, u64)>) -> Vec<OpCost> {
        ops.into_iter()
            .map(|(shape, calls)| {
                let (us_per_call, source) = self.op_time(&shape);
                OpCost {
                    shape,
                    calls,
                    us_per_call,
                    source,
                }
            })
            .collect()
    }

    pub fn predict(&self, spec: &ModelSpec, w: &Workload) -> Prediction {
        let prefill_ops = self.pass(
            spec,
            Phase::Prefill {
                tokens: w.prompt_tokens.max(1),
            },
        );
        let decode_ops = self.pass(spec, Phase::Decode { context: w.context });
        let breakdown = |ops: &[OpCost]| {
            let mut b = Breakdown::default();
            for o in ops {
                b.add(o.shape.group(), o.total_ms());
            }
            b
        };
        let (prefill_breakdown, decode_breakdown) =
            (breakdown(&prefill_ops), breakdown(&decode_ops));
        Prediction {
            estimate: Estimate {
                prefill_ms: prefill_breakdown.total_ms(),
                decode_ms_per_token: decode_breakdown.total_ms(),
                peak_memory_bytes: peak_memory_bytes(spec, w)
                    + self.memory_overhead_bytes().unwrap_or(0),
                prefill_breakdown,
                decode_breakdown,
            },
            prefill_ops,
            decode_ops,
        }
    }
}

impl Profiled {
    /// What an edit costs, with its operators priced. The zo step and the prefix come
    /// from forward entries at the edit's token count; the bp step from gradient entries
    /// (`OpShape::Grad`), which only burn profiles hold (at f32, the precision
    /// backpropagation needs): a profile in another weight type prices no bp step.
    pub fn predict_edit(&self, spec: &ModelSpec, w: &Workload, e: &EditWorkload) -> EditPrediction {
        let priced = |ops| self.price_ops(ops);
        let prefix_ops = priced(e.prefix_ops(spec));
        let zo_ops = priced(e.step_ops(spec, EditMethod::Zo));
        let bp_runs = self.profile.fingerprint.dtype == tailor_spec::DType::F32;
        let bp_ops = if bp_runs {
            priced(e.step_ops(spec, EditMethod::Bp))
        } else {
            Vec::new()
        };
        let sum = |ops: &[OpCost]| -> (f64, Source) {
            let ms = ops.iter().map(OpCost::total_ms).sum();
            let worst = ops
                .iter()
                .map(|o| o.source)
                .max()
                .unwrap_or(Source::Measured);
            (ms, worst)
        };
        let overhead = self.memory_overhead_bytes().unwrap_or(0);
        let (prefix_ms, prefix_source) = sum(&prefix_ops);
        let (zo_ms, zo_source) = sum(&zo_ops);
        let zo = EditCost::new(
            e,
            Some(zo_ms),
            Some(prefix_ms),
            e.peak_memory_bytes(spec, w, EditMethod::Zo) + overhead,
            Some(zo_source.max(prefix_source)),
        );
        let bp = if bp_runs {
            let (bp_ms, bp_source) = sum(&bp_ops);
            EditCost::new(
                e,
                Some(bp_ms),
                Some(prefix_ms),
                e.peak_memory_bytes(spec, w, EditMethod::Bp) + overhead,
                Some(bp_source.max(prefix_source)),
            )
        } else {
            EditCost::new(
                e,
                None,
                None,
                e.peak_memory_bytes(spec, w, EditMethod::Bp) + overhead,
                None,
            )
        };
        EditPrediction {
            estimate: EditEstimate {
                workload: *e,
                layer: e.layer_index(spec),
                zo,
                bp,
            },
            prefix_ops,
            zo_ops,
            bp_ops,
        }
    }
}

/// An edit's prediction with its operator lists.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EditPrediction {
    pub estimate: EditEstimate,
    pub prefix_ops: Vec<OpCost>,
    /// One zo step (`2 x queries` passes).
    pub zo_ops: Vec<OpCost>,
    /// One bp step, each operator its gradient entry; empty when the profile cannot price it.
    pub bp_ops: Vec<OpCost>,
}

impl CostModel for Profiled {
    fn estimate(&self, spec: &ModelSpec, workload: &Workload) -> Estimate {
        self.predict(spec, workload).estimate
    }

    /// Edits of the uniform dense stack only (the edit's layer and passes are dense).
    fn edit(&self, spec: &ModelSpec, w: &Workload, e: &EditWorkload) -> Option<EditEstimate> {
        if spec.beyond_dense().is_some() {
            return None;
        }
        Some(self.predict_edit(spec, w, e).estimate)
    }
}

/// The first call of `spec`'s prefill of `w`'s prompt, then of its decode step at `w`'s
/// context, that `pick` picks.
fn first_call(spec: &ModelSpec, w: &Workload, pick: impl Fn(&OpShape) -> bool) -> Option<OpShape> {
    let phases = [
        Phase::Prefill {
            tokens: w.prompt_tokens.max(1),
        },
        Phase::Decode { context: w.context },
    ];
    phases.into_iter().find_map(|phase| {
        OpShape::pass(spec, phase)
            .into_iter()
            .map(|(s, _)| s)
            .find(|s| pick(s))
    })
}

/// The families a shape belongs to, most specific first: the shape with its size fields
/// zeroed, then with more fields zeroed. Only points of one family are interpolated
/// between.
pub fn families_of(shape: &OpShape) -> Vec<OpShape> {
    match *shape {
        OpShape::Embedding { tokens, .. } => vec![
            OpShape::Embedding {
                tokens,
                vocab: 0,
                hidden: 0,
            },
            OpShape::Embedding {
                tokens: 0,
                vocab: 0,
                hidden: 0,
            },
        ],
        OpShape::Norm {
            tokens, kind, bias, ..
        } => vec![
            OpShape::Norm {
                tokens,
                hidden: 0,
                kind,
                bias,
            },
            OpShape::Norm {
                tokens: 0,
                hidden: 0,
                kind,
                bias,
            },
            OpShape::Norm {
                tokens: 0,
                hidden: 0,
                kind: NormKind::RmsNorm,
                bias: false,
            },
        ],
        OpShape::Residual { tokens, .. } => vec![
            OpShape::Residual { tokens, hidden: 0 },
            OpShape::Residual {
                tokens: 0,
                hidden: 0,
            },
        ],
        OpShape::Linear { tokens, bias, .. } => vec![
            OpShape::Linear {
                tokens,
                input: 0,
                output: 0,
                bias,
            },
            OpShape::Linear {
                tokens: 0,
                input: 0,
                output: 0,
                bias,
            },
        ],
        OpShape::LmHead { tokens, tied, .. } => {
            let head = |tied| OpShape::LmHead {
                tokens,
                hidden: 0,
                vocab: 0,
                tied,
            };
            let mut out = vec![head(tied), head(!tied)];
            if tokens > 1 {
                // A head over several positions is a linear of that many rows.
                out.push(OpShape::Linear {
                    tokens,
                    input: 0,
                    output: 0,
                    bias: false,
                });
            }
            out
        }
        OpShape::Grad { ref of } => families_of(of).iter().map(OpShape::grad).collect(),
        OpShape::Attention {
            head_dim,
            q_len,
            kv_len,
            causal,
            window,
            rope,
            ..
        } => {
            let a = |head_dim, q_len, kv_len, rope| OpShape::Attention {
                heads: 0,
                kv_heads: 0,
                head_dim,
                q_len,
                kv_len,
                causal,
                window,
                rope,
            };
            // A NoPE layer, where no NoPE entry is near, as attention with RoPE (which
            // costs it a little more).
            let ropes: &[bool] = if rope { &[true] } else { &[false, true] };
            ropes
                .iter()
                .flat_map(|&r| {
                    [
                        a(head_dim, q_len, kv_len, r),
                        a(0, q_len, kv_len, r),
                        a(head_dim, 0, 0, r),
                        a(0, 0, 0, r),
                    ]
                })
                .collect()
        }
        OpShape::Gate { tokens, .. } => vec![
            OpShape::Gate { tokens, width: 0 },
            OpShape::Gate {
                tokens: 0,
                width: 0,
            },
        ],
        OpShape::ShortConv {
            tokens,
            kernel,
            bias,
            ..
        } => {
            let c = |tokens, kernel| OpShape::ShortConv {
                tokens,
                hidden: 0,
                kernel,
                bias,
            };
            vec![c(tokens, kernel), c(tokens, 0), c(0, 0)]
        }
        OpShape::LinearAttention { tokens, kernel, .. } => {
            let l = |tokens| OpShape::LinearAttention {
                tokens,
                key_heads: 0,
                value_heads: 0,
                key_dim: 0,
                value_dim: 0,
                kernel,
            };
            vec![l(tokens), l(0)]
        }
        OpShape::Ffn {
            tokens,
            kind,
            activation,
            bias,
            ..
        } => {
            let f = |tokens, activation| OpShape::Ffn {
                tokens,
                hidden: 0,
                intermediate: 0,
                kind,
                activation,
                bias,
            };
            let mut v = vec![f(tokens, activation), f(0, activation)];
            // Another activation costs about the same next to the matmuls.
            v.extend(
                Activation::ALL
                    .iter()
                    .filter(|a| **a != activation)
                    .map(|a| f(tokens, *a)),
            );
            v
        }
    }
}

/// Points sorted by x, those at (nearly) the same x merged by geometric mean.
fn merge_equal_x(mut points: Points) -> Points {
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out: Vec<(f64, f64, u32)> = Vec::with_capacity(points.len());
    for (x, t) in points {
        match out.last_mut() {
            Some((lx, lt, n)) if (x - *lx).abs() <= 1e-9 * x.abs().max(1e-30) => {
                *lt += t.ln();
                *n += 1;
            }
            _ => out.push((x, t.ln(), 1)),
        }
    }
    out.into_iter()
        .map(|(x, lnt, n)| (x, (lnt / n as f64).exp()))
        .collect()
}

/// The time at roofline time `x` along a family's points: log-log interpolation between
/// the neighbours, or extrapolation from the nearest end (at the end's local slope
/// clamped to [0, 1] below the family; proportional to the work above it).
pub fn along(points: &[(f64, f64)], x: f64) -> Option<(f64, Source)> {
    let (first, last) = (points.first()?, points.last()?);
    if points.len() == 1 || x < first.0 || x > last.0 {
        let t = if x > last.0 {
            last.1 * x / last.0
        } else if x < first.0 {
            let slope = match points {
                [a, b, ..] => ((b.1 / a.1).ln() / (b.0 / a.0).ln()).clamp(0.0, 1.0),
                _ => 1.0,
            };
            first.1 * (x / first.0).powf(slope)
        } else {
            first.1
        };
        let source = if x == first.0 {
            Source::Interpolated
        } else {
            Source::Extrapolated
        };
        return Some((t, source));
    }
    let i = points
        .partition_point(|p| p.0 <= x)
        .clamp(1, points.len() - 1);
    let (a, b) = (points[i - 1], points[i]);
    if x == a.0 {
        return Some((a.1, Source::Interpolated));
    }
    let f = (x / a.0).ln() / (b.0 / a.0).ln();
    Some((
        (a.1.ln() + f * (b.1 / a.1).ln()).exp(),
        Source::Interpolated,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tailor_spec::{DType, Precision};

    fn profile_of(
        shapes: impl IntoIterator<Item = OpShape>,
        time: impl Fn(&OpShape) -> f64,
    ) -> Profile {
        let mut entries: Vec<Entry> = shapes
            .into_iter()
            .map(|shape| {
                let t = time(&shape);
                Entry {
                    shape,
                    median_us: t,
                    p10_us: t * 0.95,
                    p90_us: t * 1.05,
                    samples: 10,
                    capped: false,
                    rounds: vec![t],
                    conditions: Vec::new(),
                    stale: false,
                }
            })
            .collect();
        entries.sort_by(|a, b| a.shape.cmp(&b.shape));
        entries.dedup_by(|a, b| a.shape == b.shape);
        crate::profile::tests::profile_of(entries, 20.0)
    }

    /// A model of no entries: what the test profiles' roofline says of a shape.
    fn roofline_only() -> Profiled {
        let probe = profile_of([], |_| 1.0);
        Profiled {
            roofline: probe.roofline.unwrap(),
            elem_bytes: 4,
            exact: HashMap::new(),
            families: HashMap::new(),
            kinds: Default::default(),
            profile: probe,
            level: None,
        }
    }

    /// A made-up device: 5 us per call plus 1.5x the roofline, measured at a grid of specs.
    fn grid_model() -> Profiled {
        let roof = roofline_only();
        let mut shapes = Vec::new();
        for h in [256u64, 512, 1024] {
            for l in [4, 8] {
                let spec = ModelSpec::llama(8192, h, l, h / 64, h / 128, 3 * h);
                shapes.extend(OpShape::for_spec(&spec, Phase::Prefill { tokens: 64 }));
                shapes.extend(OpShape::for_spec(&spec, Phase::Decode { context: 256 }));
            }
        }
        Profiled::new(profile_of(shapes, |s| 5.0 + 1.5 * roof.roofline_us(s))).unwrap()
    }

    fn workload() -> Workload {
        Workload {
            prompt_tokens: 64,
            context: 256,
            precision: Precision::for_weights(DType::F32),
        }
    }

    #[test]
    fn a_profiled_spec_costs_the_sum_of_its_entries() {
        let m = grid_model();
        let spec = ModelSpec::llama(8192, 512, 8, 8, 4, 1536);
        let p = m.predict(&spec, &workload());
        assert!(
            p.derived().next().is_none(),
            "{:?}",
            p.derived().collect::<Vec<_>>()
        );
        let sum: f64 = OpShape::pass(&spec, Phase::Prefill { tokens: 64 })
            .iter()
            .map(|(s, n)| m.profile().entry(s).unwrap().median_us * *n as f64 / 1e3)
            .sum();
        assert!((p.estimate.prefill_ms - sum).abs() < 1e-9 * sum);
        let b = p.estimate.prefill_breakdown;
        assert!(b.attention_ms > 0.0 && b.ffn_ms > 0.0 && b.lm_head_ms > 0.0 && b.other_ms > 0.0);
    }

    #[test]
    fn a_length_beyond_the_profiled_attention_is_found_and_a_shorter_one_priced() {
        let m = grid_model();
        assert_eq!(m.attention_lengths(), (vec![64], vec![256]));
        // Heads the profile never timed, at its lengths: priced from its neighbours.
        let spec = ModelSpec::llama(8192, 768, 8, 12, 4, 2304);
        assert_eq!(m.unprofiled_length(&spec, &workload()), None);
        let shorter = Workload {
            prompt_tokens: 16,
            context: 100,
            ..workload()
        };
        assert_eq!(m.unprofiled_length(&spec, &shorter), None);
        let longer = |prompt_tokens, context| {
            m.unprofiled_length(
                &spec,
                &Workload {
                    prompt_tokens,
                    context,
                    ..workload()
                },
            )
        };
        match longer(64, 4096) {
            Some(OpShape::Attention {
                q_len: 1,
                kv_len: 4097,
                causal: false,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        match longer(65, 256) {
            Some(OpShape::Attention {
                q_len: 65,
                causal: true,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_level_scales_each_phase_and_nothing_else() {
        let spec = ModelSpec::llama(8192, 512, 8, 8, 4, 1536);
        let e = EditWorkload::default();
        let m = edit_model(&spec, &e, true);
        let level = crate::Level::new(
            vec![crate::Anchor {
                id: 0,
                params: 1,
                predicted_prefill_ms: 10.0,
                measured_prefill_ms: 12.5,
                predicted_decode_ms: 2.0,
                measured_decode_ms: 1.5,
            }],
            "t".into(),
        )
        .unwrap();
        let leveled = m.clone().with_level(level.clone());
        assert_eq!(leveled.level(), Some(&level));
        assert_eq!(m.level(), None);
        let w = crate::Workload {
            prompt_tokens: 32,
            ..workload()
        };
        let (a, b) = (m.predict(&spec, &w), leveled.predict(&spec, &w));
        let close = |x: f64, y: f64| (x - y).abs() <= 1e-9 * y;
        assert!(close(b.estimate.prefill_ms, 1.25 * a.estimate.prefill_ms));
        assert!(close(
            b.estimate.decode_ms_per_token,
            0.75 * a.estimate.decode_ms_per_token
        ));
        assert!(close(
            b.estimate.prefill_breakdown.ffn_ms,
            1.25 * a.estimate.prefill_breakdown.ffn_ms
        ));
        assert_eq!(b.estimate.peak_memory_bytes, a.estimate.peak_memory_bytes);
        assert_eq!(
            leveled.predict_edit(&spec, &w, &e).estimate,
            m.predict_edit(&spec, &w, &e).estimate,
            "no edit was timed to set a level for it"
        );
    }

    /// A profile of every shape an edit of `spec` runs (1.5x the roofline plus 5 us), and
    /// its forward shapes alone when `grads` is false.
    fn edit_model(spec: &ModelSpec, e: &EditWorkload, grads: bool) -> Profiled {
        let roof = roofline_only();
        let shapes: Vec<OpShape> = e
            .shapes(spec)
            .into_iter()
            .filter(|s| grads || !matches!(s, OpShape::Grad { .. }))
            .collect();
        Profiled::new(profile_of(shapes, |s| 5.0 + 1.5 * roof.roofline_us(s))).unwrap()
    }

    #[test]
    fn an_edit_costs_the_sum_of_its_entries() {
        let spec = ModelSpec::llama(8192, 512, 8, 8, 4, 1536);
        let e = EditWorkload::default();
        let m = edit_model(&spec, &e, true);
        let p = m.predict_edit(&spec, &workload(), &e);
        let entry = |s: &OpShape| m.profile().entry(s).unwrap().median_us;
        for method in EditMethod::ALL {
            let sum: f64 = e
                .step_ops(&spec, method)
                .iter()
                .map(|(s, n)| entry(s) * *n as f64 / 1e3)
                .sum();
            let cost = p.estimate.cost(method);
            assert!((cost.step_ms.unwrap() - sum).abs() < 1e-9 * sum, "{method}");
            assert_eq!(cost.source, Some(Source::Measured), "{method}");
            let total = cost.prefix_ms.unwrap() + 20.0 * sum;
            assert!((cost.total_ms.unwrap() - total).abs() < 1e-9 * total);
        }
        // The bp step runs every operator forward and backward: dearer than one zo pass.
        let (step_ratio, memory_ratio) = p.estimate.bp_over_zo();
        assert!(step_ratio.unwrap() > 0.5, "{step_ratio:?}");
        assert!(memory_ratio > 1.0, "{memory_ratio}");
    }

    /// The zo step is priced from forward entries alone: a profile without any gradient
    /// entry prices it exactly as one with them.
    #[test]
    fn the_zo_step_needs_no_gradient_entries() {
        let spec = ModelSpec::llama(8192, 512, 8, 8, 4, 1536);
        let e = EditWorkload::default();
        let forward = edit_model(&spec, &e, false).predict_edit(&spec, &workload(), &e);
        let both = edit_model(&spec, &e, true).predict_edit(&spec, &workload(), &e);
        assert_eq!(forward.estimate.zo, both.estimate.zo);
        assert_eq!(forward.estimate.zo.source, Some(Source::Measured));
        assert_eq!(forward.estimate.bp.source, Some(Source::Roofline));
    }

    /// Moving the edit down the model adds layers above it: never cheaper.
    #[test]
    fn an_earlier_edited_layer_never_costs_less() {
        let m = grid_model();
        for spec in [
            ModelSpec::llama(8192, 512, 8, 8, 4, 1536),
            ModelSpec::llama(8192, 1024, 4, 16, 8, 3072),
        ] {
            let mut last: Option<EditEstimate> = None;
            for i in (0..20).rev() {
                let e = EditWorkload {
                    layer: i as f64 / 20.0,
                    ..EditWorkload::default()
                };
                let now = m.predict_edit(&spec, &workload(), &e).estimate;
                if let Some(later) = last {
                    for method in EditMethod::ALL {
                        let (a, b) = (now.cost(method), later.cost(method));
                        assert!(a.step_ms >= b.step_ms, "{method} at {i}");
                        assert!(
                            a.peak_memory_bytes >= b.peak_memory_bytes,
                            "{method} at {i}"
                        );
                    }
                }
                last = Some(now);
            }
        }
    }

    #[test]
    fn interpolation_hits_profiled_points_exactly() {
        let points = merge_equal_x(vec![(1.0, 3.0), (10.0, 12.0), (100.0, 150.0), (4.0, 5.0)]);
        for &(x, t) in &points {
            let (got, source) = along(&points, x).unwrap();
            assert_eq!(got, t, "at {x}");
            assert_eq!(source, Source::Interpolated);
        }
        let (mid, source) = along(&points, 30.0).unwrap();
        assert_eq!(source, Source::Interpolated);
        assert!(mid > 12.0 && mid < 150.0, "{mid}");
        // Log-log: halfway in log x between two points is the geometric mean.
        let (g, _) = along(&points, 10f64.powf(1.5)).unwrap();
        assert!((g - (12.0f64 * 150.0).sqrt()).abs() < 1e-9, "{g}");
        let (above, source) = along(&points, 200.0).unwrap();
        assert_eq!(source, Source::Extrapolated);
        assert!(
            (above - 300.0).abs() < 1e-9,
            "proportional above the family: {above}"
        );
        let (below, source) = along(&points, 0.5).unwrap();
        assert_eq!(source, Source::Extrapolated);
        assert!(below < 3.0 && below > 0.0);
        assert!(along(&[], 1.0).is_none());
    }

    #[test]
    fn a_shape_between_profiled_ones_is_interpolated_above_the_roofline() {
        let m = grid_model();
        let spec = ModelSpec::llama(8192, 768, 6, 12, 6, 2304);
        let p = m.predict(&spec, &workload());
        let ffn = p
            .prefill_ops
            .iter()
            .find(|o| matches!(o.shape, OpShape::Ffn { .. }))
            .unwrap();
        assert_eq!(ffn.source, Source::Interpolated);
        let (lo, hi) = (
            m.op_time(&OpShape::Ffn {
                tokens: 64,
                hidden: 512,
                intermediate: 1536,
                kind: tailor_spec::FfnKind::Gated,
                activation: Activation::Silu,
                bias: false,
            }),
            m.op_time(&OpShape::Ffn {
                tokens: 64,
                hidden: 1024,
                intermediate: 3072,
                kind: tailor_spec::FfnKind::Gated,
                activation: Activation::Silu,
                bias: false,
            }),
        );
        assert_eq!((lo.1, hi.1), (Source::Measured, Source::Measured));
        assert!(ffn.us_per_call > lo.0 && ffn.us_per_call < hi.0);
        for o in p.derived() {
            assert!(o.us_per_call >= m.roofline_us(&o.shape), "{}", o.shape);
        }
        // A prompt length never profiled: the linear family across token counts serves.
        let longer = Workload {
            prompt_tokens: 512,
            ..workload()
        };
        let p = m.predict(&spec, &longer);
        assert!(p.prefill_ops.iter().all(|o| o.source != Source::Measured));
        assert!(p.estimate.prefill_ms > m.predict(&spec, &workload()).estimate.prefill_ms);
    }

    #[test]
    fn peak_memory_adds_the_profiled_runtime_overhead() {
        let spec = ModelSpec::llama(8192, 512, 8, 8, 4, 1536);
        let own = peak_memory_bytes(&spec, &workload());
        let mut p = grid_model().profile().clone();
        // The probe's peaks: the probe model's own bytes plus 3, 4 and 9 MiB.
        let probe_own = peak_memory_bytes(
            &crate::MemoryProbe::spec(),
            &crate::MemoryProbe::workload(DType::F32),
        );
        let peaks = [3u64, 9, 4].map(|m| probe_own + (m << 20));
        p.memory = crate::MemoryProbe::from_peaks(&peaks, DType::F32, crate::MemorySource::Rss);
        assert_eq!(
            p.memory.as_ref().unwrap().samples_bytes,
            [3 << 20, 9 << 20, 4 << 20]
        );
        let m = Profiled::new(p.clone()).unwrap();
        assert_eq!(m.memory_overhead_bytes(), Some(4 << 20));
        assert_eq!(
            m.estimate(&spec, &workload()).peak_memory_bytes,
            own + (4 << 20)
        );
        // A profile without the probe predicts the model's own bytes.
        p.memory = None;
        let m = Profiled::new(p).unwrap();
        assert_eq!(m.memory_overhead_bytes(), None);
        assert_eq!(m.estimate(&spec, &workload()).peak_memory_bytes, own);
    }

    #[test]
    fn an_incomplete_profile_is_refused() {
        let mut p = profile_of([], |_| 1.0);
        assert!(Profiled::new(p.clone()).is_err());
        p.roofline = None;
        let e = Profiled::new(p).unwrap_err().to_string();
        assert!(e.contains("tailor profile"), "{e}");
    }

    proptest! {
        #[test]
        fn more_layers_or_longer_inputs_never_cost_less(
            h in prop::sample::select(vec![256u64, 384, 512, 640, 768, 1024, 1536]),
            l in 1u64..24,
            group in prop::sample::select(vec![1u64, 2, 4]),
            ratio in 1u64..6,
            prompt in 1u64..300,
            context in 0u64..1000,
        ) {
            let m = grid_model();
            let heads = h / 64;
            let kv = (heads / group).max(1);
            let spec = ModelSpec::llama(8192, h, l, heads, kv, ratio * h);
            let w = Workload { prompt_tokens: prompt, context, precision: Precision::for_weights(DType::F32) };
            let base = m.estimate(&spec, &w);
            let deeper = m.estimate(&ModelSpec { num_layers: l + 1, ..spec.clone() }, &w);
            prop_assert!(deeper.prefill_ms > base.prefill_ms);
            prop_assert!(deeper.decode_ms_per_token > base.decode_ms_per_token);
            prop_assert!(deeper.peak_memory_bytes > base.peak_memory_bytes);
            let later = m.estimate(&spec, &Workload { context: context + 64, ..w });
            prop_assert!(later.decode_ms_per_token >= base.decode_ms_per_token);
            prop_assert!(base.prefill_ms.is_finite() && base.decode_ms_per_token > 0.0);
        }
    }
}
