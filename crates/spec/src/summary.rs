//! Everything [`crate::accounting`] says about one spec under one workload, as one
//! serialisable value (what `tailor spec --json` prints).

use crate::accounting::{OpAccount, ParamCounts, Phase};
use crate::dtype::{DType, Precision};
use crate::model::ModelSpec;
use serde::Serialize;

/// A map serialised in insertion order (components and dtypes in their natural order).
#[derive(Debug, Clone)]
pub struct Ordered<V>(pub Vec<(&'static str, V)>);

impl<V: Serialize> Serialize for Ordered<V> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// Accounting of a spec for a prefill of `prompt` tokens and a decode step at `context`.
#[derive(Debug, Clone, Serialize)]
pub struct SpecSummary {
    pub spec: ModelSpec,
    pub head_dim: u64,
    pub params: ParamSummary,
    pub workload: WorkloadSummary,
    pub flops: FlopSummary,
    /// Bytes of all weights, per storage type.
    pub weight_bytes: Ordered<u64>,
    pub kv_cache: KvSummary,
    /// Each distinct layer with its number, in order of first occurrence.
    pub layers: Vec<LayerSummary>,
    /// One letter per layer: `A` global attention, `S` sliding window, `N` no RoPE, `C`
    /// short conv, `L` linear attention, `F` FFN only.
    pub pattern: String,
    /// Operators of the prefill pass (figures per instance; `repeats` instances).
    pub prefill_operators: Vec<OpAccount>,
    /// Operators of one decode step.
    pub decode_operators: Vec<OpAccount>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ParamSummary {
    pub total: u64,
    pub non_embedding: u64,
    pub embedding: u64,
    pub lm_head: u64,
    pub by_component: Ordered<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WorkloadSummary {
    pub prompt_tokens: u64,
    pub context: u64,
    pub precision: Precision,
}

#[derive(Debug, Clone, Serialize)]
pub struct FlopSummary {
    /// Matmul FLOPs of the whole prefill (multiply-add = 2).
    pub prefill: u128,
    /// Matmul FLOPs of one decode step at the context.
    pub decode: u128,
    /// Bytes read and written by the prefill and by one decode step.
    pub prefill_bytes: u128,
    pub decode_bytes: u128,
}

#[derive(Debug, Clone, Serialize)]
pub struct KvSummary {
    pub dtype: DType,
    /// What one more token adds (global attention layers; windows stop growing).
    pub bytes_per_token: u64,
    pub bytes_at_context: u64,
    /// Per-sequence state that does not grow (short convolutions, linear attention), f32.
    pub constant_state_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LayerSummary {
    pub count: u64,
    pub layer: String,
}

impl SpecSummary {
    pub fn new(spec: &ModelSpec, prompt_tokens: u64, context: u64, precision: Precision) -> Self {
        let ParamCounts {
            total,
            non_embedding,
            embedding,
            lm_head,
            by_component,
        } = spec.params();
        let prefill = Phase::Prefill {
            tokens: prompt_tokens,
        };
        let decode = Phase::Decode { context };
        let p = spec.pass_totals(prefill, &precision);
        let d = spec.pass_totals(decode, &precision);
        Self {
            spec: spec.clone(),
            head_dim: spec.head_dim(),
            params: ParamSummary {
                total,
                non_embedding,
                embedding,
                lm_head,
                by_component: Ordered(
                    by_component
                        .into_iter()
                        .map(|(c, n)| (c.name(), n))
                        .collect(),
                ),
            },
            workload: WorkloadSummary {
                prompt_tokens,
                context,
                precision,
            },
            flops: FlopSummary {
                prefill: p.flops,
                decode: d.flops,
                prefill_bytes: p.bytes_read + p.bytes_written,
                decode_bytes: d.bytes_read + d.bytes_written,
            },
            weight_bytes: Ordered(
                DType::ALL
                    .iter()
                    .map(|&t| (t.name(), spec.weight_bytes(t)))
                    .collect(),
            ),
            kv_cache: KvSummary {
                dtype: precision.kv_cache,
                bytes_per_token: spec.kv_cache_bytes_per_token(precision.kv_cache),
                bytes_at_context: spec.kv_cache_bytes(precision.kv_cache, context),
                constant_state_bytes: spec.constant_state_bytes(),
            },
            layers: spec
                .layer_groups()
                .into_iter()
                .map(|(l, count)| LayerSummary {
                    count,
                    layer: l.to_string(),
                })
                .collect(),
            pattern: spec.pattern_picture(),
            prefill_operators: spec.operators(prefill, &precision),
            decode_operators: spec.operators(decode, &precision),
        }
    }
}
