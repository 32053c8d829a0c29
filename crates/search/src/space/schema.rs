//! The search-space file as written (`search-spaces/*.toml`): the serde types of every
//! table, with their defaults and the format version. [`super::SearchSpace`] checks and
//! expands them.

use crate::metric::{Bound, Objective};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use tailor_cost::{EditWorkload, Workload};
use tailor_spec::files;
use tailor_spec::{Activation, DType, FfnKind, NormKind, Precision};

/// The `format_version` this build reads.
pub const SPACE_FORMAT_VERSION: u32 = 1;

/// A numeric dimension: one value, a list, or an inclusive range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    untagged,
    expecting = "a number, a list of numbers, or { min, max, step }"
)]
pub enum NumAxis<T> {
    One(T),
    List(Vec<T>),
    Range(RangeSpec<T>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeSpec<T> {
    pub min: T,
    pub max: T,
    pub step: T,
}

/// A categorical dimension: one value or a list.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Axis<T> {
    One(T),
    List(Vec<T>),
}

/// A list is read element by element and a single value as itself, so a bad value is
/// reported by its own type (`unknown variant "mamba", expected one of ...`), not as "a
/// value or a list of values".
impl<'de, T: Deserialize<'de>> Deserialize<'de> for Axis<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{self, IntoDeserializer, SeqAccess, Visitor};
        use std::marker::PhantomData;
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Axis<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a value or a list of values")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(x) = seq.next_element()? {
                    out.push(x);
                }
                Ok(Axis::List(out))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                T::deserialize(v.into_deserializer()).map(Axis::One)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                T::deserialize(v.into_deserializer()).map(Axis::One)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                T::deserialize(v.into_deserializer()).map(Axis::One)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                T::deserialize(v.into_deserializer()).map(Axis::One)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                T::deserialize(v.into_deserializer()).map(Axis::One)
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// `[model]`: the dimensions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelAxes {
    pub vocab_size: NumAxis<u64>,
    pub hidden_size: NumAxis<u64>,
    pub num_layers: NumAxis<u64>,
    /// Query heads. Give this, `head_dim`, or both (then head_dim is decoupled from
    /// hidden_size / num_heads).
    #[serde(default)]
    pub num_heads: Option<NumAxis<u64>>,
    /// Per-head width; alone, it sets num_heads = hidden_size / head_dim.
    #[serde(default)]
    pub head_dim: Option<NumAxis<u64>>,
    /// Key/value heads; or give `kv_group` (query heads per KV head). Default: MHA.
    #[serde(default)]
    pub num_kv_heads: Option<NumAxis<u64>>,
    #[serde(default)]
    pub kv_group: Option<NumAxis<u64>>,
    /// FFN width; or give `ffn_ratio` (times hidden_size, rounded up to `ffn_multiple`).
    #[serde(default)]
    pub intermediate_size: Option<NumAxis<u64>>,
    #[serde(default)]
    pub ffn_ratio: Option<NumAxis<f64>>,
    #[serde(default)]
    pub ffn_multiple: Option<u64>,
    #[serde(default = "default_ffn")]
    pub ffn: Axis<FfnKind>,
    #[serde(default = "default_activation")]
    pub activation: Axis<Activation>,
    #[serde(default = "default_norm")]
    pub norm: Axis<NormKind>,
    #[serde(default = "no")]
    pub norm_bias: Axis<bool>,
    #[serde(default = "no")]
    pub qkv_bias: Axis<bool>,
    #[serde(default = "no")]
    pub o_bias: Axis<bool>,
    #[serde(default = "no")]
    pub mlp_bias: Axis<bool>,
    pub tie_embeddings: Axis<bool>,
    #[serde(default)]
    pub norm_eps: Option<f64>,
    #[serde(default)]
    pub rope_theta: Option<f64>,
    #[serde(default)]
    pub max_position_embeddings: Option<u64>,
    /// `[model.stack]`: axes over mixed stacks (absent: every candidate is the dense stack).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<StackAxes>,
}

/// The mixer of the layers between global attention layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LocalMixer {
    /// Global attention too: the dense stack (the placement and window axes do not apply).
    Attention,
    /// Sliding-window attention (the `window` axis).
    Sliding,
    /// LFM2's gated short convolution (`conv_kernel`).
    ShortConv,
    /// Gated DeltaNet (`[model.stack.linear]`).
    LinearAttention,
    /// No mixer: FFN-only layers.
    None,
}

impl LocalMixer {
    pub fn name(self) -> &'static str {
        match self {
            LocalMixer::Attention => "attention",
            LocalMixer::Sliding => "sliding",
            LocalMixer::ShortConv => "short_conv",
            LocalMixer::LinearAttention => "linear_attention",
            LocalMixer::None => "none",
        }
    }
}

/// Where the global attention layers sit: every `N`th layer (1-based: layers N, 2N, ...),
/// or at explicit 0-based indices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    untagged,
    expecting = "a number N (every Nth layer) or a list of layer indices"
)]
pub enum Placement {
    Every(u64),
    At(Vec<u64>),
}

/// `[model.stack.linear]`: the shape of Gated DeltaNet layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinearShape {
    pub key_heads: u64,
    pub value_heads: u64,
    pub key_head_dim: u64,
    pub value_head_dim: u64,
    #[serde(default = "four")]
    pub conv_kernel: u64,
}

fn four() -> u64 {
    4
}

/// `[model.stack]` of a space: layers of a `local` mixer with global attention placed among
/// them. Three axes (local, placement, window) join the genome after the dense ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackAxes {
    /// Tensor names and norms (`llama`, `gemma3`, `lfm2`); default llama.
    #[serde(default = "default_layout")]
    pub layout: tailor_spec::Layout,
    pub local: Axis<LocalMixer>,
    /// Where the global attention layers are: `[2, 3, 4]` (every 2nd, 3rd, 4th) or lists of
    /// indices (`[[2, 5, 8, 10, 12, 14]]`).
    pub global: Vec<Placement>,
    /// Sliding windows, for `local = "sliding"`.
    #[serde(default)]
    pub window: Option<NumAxis<u64>>,
    #[serde(default = "three")]
    pub conv_kernel: u64,
    /// q/k norms on every attention layer (LFM2, Gemma 3, Qwen3).
    #[serde(default)]
    pub qk_norm: bool,
    /// Qwen3.5's gate on the global attention output.
    #[serde(default)]
    pub output_gate: bool,
    #[serde(default)]
    pub linear: Option<LinearShape>,
}

fn default_layout() -> tailor_spec::Layout {
    tailor_spec::Layout::Llama
}
fn three() -> u64 {
    3
}

fn default_ffn() -> Axis<FfnKind> {
    Axis::One(FfnKind::Gated)
}
fn default_activation() -> Axis<Activation> {
    Axis::One(Activation::Silu)
}
fn default_norm() -> Axis<NormKind> {
    Axis::One(NormKind::RmsNorm)
}
fn no() -> Axis<bool> {
    Axis::One(false)
}

/// `[workload]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    pub prompt_tokens: u64,
    pub context: u64,
    #[serde(default = "one")]
    pub batch: u64,
    pub weights: DType,
    #[serde(default)]
    pub kv_cache: Option<DType>,
    #[serde(default)]
    pub activations: Option<DType>,
    /// More prompt lengths to price the prefill at (metrics `prefill_ms@N`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefill_at: Vec<u64>,
    /// More contexts to price a decode step and the peak memory at (metrics
    /// `decode_ms@N`, `peak_memory@N`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decode_at: Vec<u64>,
    /// `[workload.edit]`: price an on-device knowledge edit (metrics `edit_*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edit: Option<EditWorkload>,
}

fn one() -> u64 {
    1
}

impl WorkloadSpec {
    pub fn workload(&self) -> Workload {
        let mut precision = Precision::for_weights(self.weights);
        if let Some(kv) = self.kv_cache {
            precision.kv_cache = kv;
        }
        if let Some(a) = self.activations {
            precision.activations = a;
        }
        Workload {
            prompt_tokens: self.prompt_tokens,
            context: self.context,
            precision,
        }
    }
}

/// `[constraints]`: every candidate outside them is infeasible.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Constraints {
    /// Total parameters.
    #[serde(default)]
    pub params: Option<Bound>,
    #[serde(default)]
    pub non_embedding_params: Option<Bound>,
    #[serde(default)]
    pub max_memory_gib: Option<f64>,
    #[serde(default)]
    pub max_prefill_ms: Option<f64>,
    #[serde(default)]
    pub max_decode_ms: Option<f64>,
    /// hidden_size / num_layers (MobileLLM's released configs sit at 19-30).
    #[serde(default)]
    pub aspect_ratio: Option<Bound>,
    #[serde(default)]
    pub max_edit_zo_ms: Option<f64>,
    #[serde(default)]
    pub max_edit_bp_ms: Option<f64>,
    #[serde(default)]
    pub max_edit_zo_memory_gib: Option<f64>,
    #[serde(default)]
    pub max_edit_bp_memory_gib: Option<f64>,
    /// Limits at the other prompts `[workload] prefill_at` lists, by prompt length:
    /// `max_prefill_ms_at = { 4096 = 2500.0 }`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub max_prefill_ms_at: BTreeMap<String, f64>,
    /// Limits at the other contexts `[workload] decode_at` lists, by context:
    /// `max_decode_ms_at = { 16384 = 40.0 }`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub max_decode_ms_at: BTreeMap<String, f64>,
    /// Peak-memory limits (GiB) at the contexts `decode_at` lists: `max_memory_gib_at =
    /// { 16384 = 1.0 }`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub max_memory_gib_at: BTreeMap<String, f64>,
}

/// `[objectives]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Objectives {
    #[serde(default)]
    pub minimize: Vec<Objective>,
    #[serde(default)]
    pub maximize: Vec<Objective>,
}

/// Which parameter count enters Chinchilla's L(N, D).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChinchillaParams {
    #[default]
    Total,
    NonEmbedding,
}

/// `[quality]`: proxies of quality without training.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quality {
    /// Pre-training token budget D for Chinchilla's loss.
    #[serde(default)]
    pub tokens: Option<f64>,
    #[serde(default)]
    pub chinchilla_params: ChinchillaParams,
}

/// `[pick]`: how one front row is chosen. Exactly one key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pick {
    #[serde(default)]
    pub minimize: Option<Objective>,
    #[serde(default)]
    pub maximize: Option<Objective>,
}

/// `[devices.NAME]`: one device of the set a space is searched over (a phone and the
/// engine that runs the model there). Two or more make every priced metric a per-device
/// one (`decode_ms:NAME`, `worst:decode_ms`, `mean:decode_ms`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceEntry {
    /// What prices it: a profile (burn or llama.cpp) or a device datasheet, relative to the
    /// space file. `--target NAME=PATH` gives or replaces it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// Its share of the fleet, the weight of its ratio in `mean:` objectives (default 1).
    #[serde(default = "one_share")]
    pub weight: f64,
    /// The weights its engine runs (default: the profile's own; a datasheet: the space's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<DType>,
    /// Where its models are timed when its engine does not run here: `adb`, `adb:SERIAL`
    /// or `qemu:DIR`, as `tailor profile --remote` reaches it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// Limits on this device alone (`[constraints]`' hold on every device).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_prefill_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_decode_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory_gib: Option<f64>,
}

fn one_share() -> f64 {
    1.0
}

/// `[devices]`: the device tables in the order the file writes them (the first is the
/// primary device, whose values fill a candidate's plain columns).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Devices(pub Vec<(String, DeviceEntry)>);

impl Devices {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Devices {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Devices {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Devices;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("tables of devices, `[devices.NAME]` with `file = \"...\"`")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Self::Value, A::Error> {
                // Tables come back in the order the file writes them: a TOML table's keys
                // are not ordered, so each is placed by where its value starts.
                let mut out = Vec::new();
                while let Some((k, v)) = a.next_entry::<String, toml::Spanned<DeviceEntry>>()? {
                    out.push((v.span().start, k, v.into_inner()));
                }
                out.sort_by_key(|(at, _, _)| *at);
                Ok(Devices(out.into_iter().map(|(_, k, v)| (k, v)).collect()))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// The file as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpaceFile {
    pub format_version: u32,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Published configs that belong to this space (spec.toml or config.json paths,
    /// relative to the space file): marked in reports, checked to be in the space.
    #[serde(default)]
    pub references: Vec<PathBuf>,
    pub model: ModelAxes,
    pub workload: WorkloadSpec,
    #[serde(default)]
    pub constraints: Constraints,
    pub objectives: Objectives,
    #[serde(default)]
    pub quality: Quality,
    #[serde(default)]
    pub pick: Pick,
    /// `[devices]`: search over several devices at once.
    #[serde(default, skip_serializing_if = "Devices::is_empty")]
    pub devices: Devices,
}

impl files::Versioned for SpaceFile {
    const FORMAT_VERSION: u32 = SPACE_FORMAT_VERSION;
    const KIND: &'static str = "search spaces";
    fn format_version(&self) -> u32 {
        self.format_version
    }
}
