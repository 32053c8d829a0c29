//! Cost models: from a [`ModelSpec`] and a [`Workload`], an [`Estimate`] of prefill latency,
//! decode latency per token and peak memory on one device.
//!
//! [`Roofline`] prices every operator of the forward pass at
//! `max(FLOPs / peak compute, bytes / bandwidth)` from a [`DeviceSpec`] (datasheet numbers
//! or measured ones). [`Profiled`] sums the operator times a device profile measured,
//! behind the same [`CostModel`] trait.

pub mod accuracy;
pub mod cpu;
pub mod drift;
pub mod edit;
pub mod level;
pub mod load;
pub mod profile;
pub mod profiled;
pub mod roofline;
pub mod shape;
mod source;

pub use accuracy::{Accuracy, accuracy, kendall_tau_b, median};
pub use cpu::CpuId;
pub use drift::{ClassDrift, Drift, Pass};
pub use edit::{EditCost, EditEstimate, EditMethod, EditWorkload};
pub use level::{Anchor, Level};
pub use profile::{
    Conditions, Entry, Fingerprint, MemoryProbe, MemorySource, OpShape, PROFILE_FORMAT_VERSION,
    Profile, Provenance, RooflineProbe, SetupMismatch,
};
pub use profiled::{EditPrediction, OpCost, Prediction, Profiled, ProfiledError, Source};
pub use roofline::{DEVICE_FORMAT_VERSION, DeviceSpec, MissingPeak, Roofline};

use serde::{Deserialize, Serialize};
use tailor_spec::{ModelSpec, NormKind, OpGroup, Precision};

/// What the model is asked to do: a prompt, then decoding at some context, batch 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Workload {
    /// Prompt tokens of the prefill (time to first token).
    pub prompt_tokens: u64,
    /// Tokens already in the KV cache at the decode step that is priced.
    pub context: u64,
    pub precision: Precision,
}

/// Time of one group of operators, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Breakdown {
    pub attention_ms: f64,
    pub ffn_ms: f64,
    pub lm_head_ms: f64,
    pub other_ms: f64,
}

impl Breakdown {
    pub fn add(&mut self, group: OpGroup, ms: f64) {
        match group {
            OpGroup::Attention => self.attention_ms += ms,
            OpGroup::Ffn => self.ffn_ms += ms,
            OpGroup::LmHead => self.lm_head_ms += ms,
            OpGroup::Other => self.other_ms += ms,
        }
    }

    pub fn total_ms(&self) -> f64 {
        self.attention_ms + self.ffn_ms + self.lm_head_ms + self.other_ms
    }

    /// Each group's share of the total.
    pub fn shares(&self) -> Shares {
        let t = self.total_ms();
        Shares {
            attention: self.attention_ms / t,
            ffn: self.ffn_ms / t,
            lm_head: self.lm_head_ms / t,
            other: self.other_ms / t,
        }
    }
}

/// The fraction of a pass's time in each group of operators (they add up to 1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Shares {
    pub attention: f64,
    pub ffn: f64,
    pub lm_head: f64,
    pub other: f64,
}

/// What a spec costs on a device under a workload.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// Time to process the prompt (time to first token), ms.
    pub prefill_ms: f64,
    /// Time of one decode step at the workload's context, ms.
    pub decode_ms_per_token: f64,
    /// Weights + KV cache + the largest live activations, bytes; from a profile, plus
    /// the runtime's measured overhead (its memory probe).
    pub peak_memory_bytes: u64,
    pub prefill_breakdown: Breakdown,
    pub decode_breakdown: Breakdown,
}

impl Estimate {
    pub fn decode_tokens_per_s(&self) -> f64 {
        1000.0 / self.decode_ms_per_token
    }

    pub fn prefill_tokens_per_s(&self, prompt_tokens: u64) -> f64 {
        prompt_tokens as f64 * 1000.0 / self.prefill_ms
    }
}

/// Anything that prices a spec. Implementations are pure and thread-safe: the search
/// calls them from many threads.
pub trait CostModel: Sync {
    fn estimate(&self, spec: &ModelSpec, workload: &Workload) -> Estimate;

    /// What one on-device edit costs by each method ([`edit`]); `None` where this model
    /// prices no edits (the datasheet roofline).
    fn edit(&self, _spec: &ModelSpec, _w: &Workload, _e: &EditWorkload) -> Option<EditEstimate> {
        None
    }
}

/// Peak memory of inference: the weights, the KV cache at its largest (the prompt, or the
/// context plus the decoded token), and the largest set of activations alive at once
/// during the prefill or a decode step (residual stream, block input, and the widest
/// block's intermediates: q, k, v and attention output, or the FFN's gate, up and product;
/// the logits row).
///
/// Layer by layer: the KV cache holds each attention layer's keys up to its window; short
/// convolutions and linear attention add their constant state; the widest block is the
/// widest of any layer (a short conv's B, C, x and output: 4 x hidden; linear attention's
/// q, k, v, gate and output).
pub fn peak_memory_bytes(spec: &ModelSpec, w: &Workload) -> u64 {
    use tailor_spec::Mixer;
    let weights = spec.weight_bytes(w.precision.weights);
    let cached = w.prompt_tokens.max(w.context + 1);
    let kv = spec.kv_cache_bytes(w.precision.kv_cache, cached) + spec.constant_state_bytes();
    let a = w.precision.act_bytes();
    let h = spec.hidden_size;
    let (mut attn_width, mut ffn_width) = (0, 0);
    spec.for_each_layer_group(|layer, _| {
        let mixer = match layer.mixer {
            Mixer::Attention(at) => {
                let q = if at.output_gate { 2 } else { 1 } * at.q_width();
                2 * q + 2 * at.kv_width()
            }
            Mixer::ShortConv(_) => 4 * h,
            Mixer::LinearAttention(l) => {
                l.conv_channels() + 2 * l.value_width() + 2 * l.value_heads
            }
            Mixer::None => 0,
        };
        attn_width = attn_width.max(mixer);
        if let Some(ffn) = layer.ffn {
            ffn_width = ffn_width.max(match ffn.kind {
                tailor_spec::FfnKind::Gated => 3 * ffn.width,
                tailor_spec::FfnKind::Plain => 2 * ffn.width,
            });
        }
    });
    let norm_width = if spec.norm == NormKind::LayerNorm {
        h
    } else {
        0
    };
    let per_token = 2 * h + attn_width.max(ffn_width).max(norm_width);
    let activations = a * (w.prompt_tokens.max(1) * per_token + spec.vocab_size);
    weights + kv + activations
}

#[cfg(test)]
mod tests {
    use super::*;
    use tailor_spec::DType;

    #[test]
    fn peak_memory_adds_weights_cache_and_activations() {
        let spec = ModelSpec::llama(1000, 64, 2, 4, 2, 128);
        let w = Workload {
            prompt_tokens: 10,
            context: 99,
            precision: Precision::for_weights(DType::F32),
        };
        let weights = spec.weight_bytes(DType::F32);
        // 2 layers * (k + v) * 32 wide * 4 bytes * 100 tokens.
        let kv = 2 * 2 * 32 * 4 * 100;
        // Gated FFN is widest: 3 * 128 per token; plus residual and block input 2 * 64.
        let act = 4 * (10 * (128 + 3 * 128) + 1000);
        assert_eq!(peak_memory_bytes(&spec, &w), weights + kv + act);
    }
}
