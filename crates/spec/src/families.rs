//! `config.json` of today's mixed-layer and decoupled-head families, read into a
//! [`ModelSpec`] with a [`Stack`]: Qwen3, Gemma 3 (text, or the text part of the
//! multimodal config), LFM2, Qwen3.5 (its `text_config`) and SmolLM3.
//!
//! Each family is read with the defaults and width rules of its own transformers config
//! class (transformers 5.x), so the spec's parameter count equals what transformers counts
//! for the instantiated `*ForCausalLM`; docs/design/families.md has the per-tensor tables
//! and the published totals they reproduce. Keys that decide no shape (token ids, rope
//! scaling, dtypes) are ignored on reading. [`export`] writes a family's config.json for a
//! spec, every shape-deciding field written out.

use crate::files::{self, FileError};
use crate::layers::{LayerKind, Layout, MixerKind, Stack};
use crate::model::{Activation, ModelSpec};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// The families this module reads, by `model_type`.
pub const FAMILIES: &[&str] = &[
    "qwen3",
    "gemma3_text",
    "gemma3",
    "lfm2",
    "qwen3_5",
    "qwen3_5_text",
    "smollm3",
];

/// Whether `model_type` is read by [`parse`].
pub fn reads(model_type: &str) -> bool {
    FAMILIES.contains(&model_type)
}

/// Reads the keys of one JSON object (the top level, or a nested `text_config`), naming
/// the file, line and dotted key on error.
struct Reader<'a> {
    path: &'a Path,
    src: &'a str,
    obj: &'a Map<String, Value>,
    /// `""` or `"text_config."`.
    prefix: &'static str,
}

impl Reader<'_> {
    fn bad(&self, key: &str, message: impl Into<String>) -> FileError {
        FileError::Invalid {
            path: self.path.to_path_buf(),
            line: files::json_key_line(self.src, key),
            key: format!("{}{key}", self.prefix),
            message: message.into(),
        }
    }

    fn present(&self, key: &str) -> Option<&Value> {
        self.obj.get(key).filter(|v| !v.is_null())
    }

    fn int(&self, key: &str) -> Result<Option<u64>, FileError> {
        match self.present(key) {
            None => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| {
                self.bad(key, format!("expected a non-negative integer, found {v}"))
            }),
        }
    }

    fn int_or(&self, key: &str, default: u64) -> Result<u64, FileError> {
        Ok(self.int(key)?.unwrap_or(default))
    }

    fn float_or(&self, key: &str, default: f64) -> Result<f64, FileError> {
        match self.present(key) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .ok_or_else(|| self.bad(key, format!("expected a number, found {v}"))),
        }
    }

    fn bool_or(&self, key: &str, default: bool) -> Result<bool, FileError> {
        match self.present(key) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| self.bad(key, format!("expected true or false, found {v}"))),
        }
    }

    fn strings(&self, key: &str) -> Result<Option<Vec<String>>, FileError> {
        match self.present(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| self.bad(key, format!("expected strings, found {v}")))
                })
                .collect::<Result<_, _>>()
                .map(Some),
            Some(v) => Err(self.bad(key, format!("expected a list of strings, found {v}"))),
        }
    }

    fn ints(&self, key: &str) -> Result<Option<Vec<u64>>, FileError> {
        match self.present(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_u64()
                        .ok_or_else(|| self.bad(key, format!("expected integers, found {v}")))
                })
                .collect::<Result<_, _>>()
                .map(Some),
            Some(v) => Err(self.bad(key, format!("expected a list of integers, found {v}"))),
        }
    }

    /// `rope_theta`, or `rope_parameters.rope_theta` (transformers 5.x).
    fn rope_theta(&self, default: f64) -> Result<f64, FileError> {
        if let Some(Value::Object(p)) = self.present("rope_parameters")
            && let Some(t) = p.get("rope_theta").and_then(Value::as_f64)
        {
            return Ok(t);
        }
        self.float_or("rope_theta", default)
    }

    fn activation(&self, key: &str, default: Activation) -> Result<Activation, FileError> {
        match self.present(key) {
            None => Ok(default),
            Some(Value::String(s)) => match s.as_str() {
                "silu" | "swish" => Ok(Activation::Silu),
                "gelu" => Ok(Activation::Gelu),
                "gelu_pytorch_tanh" | "gelu_new" | "gelu_fast" => Ok(Activation::GeluTanh),
                "relu" => Ok(Activation::Relu),
                other => Err(self.bad(
                    key,
                    format!(
                        "\"{other}\" is not supported; supported: silu, gelu, gelu_pytorch_tanh, relu"
                    ),
                )),
            },
            Some(v) => Err(self.bad(key, format!("expected a string, found {v}"))),
        }
    }

    /// Per-layer type names of `layer_types`, checked against `allowed` and the depth.
    fn layer_types(&self, layers: u64, allowed: &[&str]) -> Result<Option<Vec<String>>, FileError> {
        let Some(types) = self.strings("layer_types")? else {
            return Ok(None);
        };
        if types.len() as u64 != layers {
            return Err(self.bad(
                "layer_types",
                format!(
                    "lists {} layers but num_hidden_layers is {layers}",
                    types.len()
                ),
            ));
        }
        if let Some(t) = types.iter().find(|t| !allowed.contains(&t.as_str())) {
            return Err(self.bad(
                "layer_types",
                format!(
                    "\"{t}\" is not a layer type of this family; expected one of {}",
                    allowed.join(", ")
                ),
            ));
        }
        Ok(Some(types))
    }
}

/// What every family's config reads, with the family's own defaults (its transformers
/// config class's).
struct Base {
    vocab: u64,
    hidden: u64,
    ffn: u64,
    layers: u64,
    heads: u64,
    kv_heads: Option<u64>,
    /// A declared `head_dim` field's default; `None`: no field (`hidden / heads`, unless
    /// the file has the key, which transformers 5 honours).
    head_dim: Option<u64>,
    /// The activation's key (`hidden_act`, Gemma's `hidden_activation`) and default;
    /// `None`: the family has no key (SwiGLU).
    activation: Option<(&'static str, Activation)>,
    tie: bool,
    rope_theta: f64,
    max_positions: u64,
    /// The `attention_bias` key (biases on q, k, v and o) is read.
    attention_bias: bool,
}

fn base(r: &Reader, d: Base) -> Result<ModelSpec, FileError> {
    let heads = r.int_or("num_attention_heads", d.heads)?;
    let mut spec = ModelSpec::llama(
        r.int_or("vocab_size", d.vocab)?,
        r.int_or("hidden_size", d.hidden)?,
        r.int_or("num_hidden_layers", d.layers)?,
        heads,
        r.int("num_key_value_heads")?
            .or(d.kv_heads)
            .unwrap_or(heads),
        r.int_or("intermediate_size", d.ffn)?,
    );
    spec.norm_eps = r.float_or("rms_norm_eps", 1e-6)?;
    spec.head_dim = match d.head_dim {
        Some(default) => Some(r.int_or("head_dim", default)?),
        None => r.int("head_dim")?,
    };
    if let Some((key, default)) = d.activation {
        spec.activation = r.activation(key, default)?;
    }
    if d.attention_bias {
        let bias = r.bool_or("attention_bias", false)?;
        (spec.qkv_bias, spec.o_bias) = (bias, bias);
    }
    spec.tie_embeddings = r.bool_or("tie_word_embeddings", d.tie)?;
    spec.rope_theta = r.rope_theta(d.rope_theta)?;
    spec.max_position_embeddings = r.int_or("max_position_embeddings", d.max_positions)?;
    Ok(spec)
}

/// `layer_types` as written, or transformers' rule when absent: every `every`-th layer
/// (1-based; `every` from `interval_key`, default `default_every`) is `full`, the rest
/// `other`.
fn types_or_interval(
    r: &Reader,
    layers: u64,
    (full, other): (&'static str, &'static str),
    interval_key: &str,
    default_every: u64,
) -> Result<Vec<String>, FileError> {
    if let Some(t) = r.layer_types(layers, &[other, full])? {
        return Ok(t);
    }
    let every = r.int_or(interval_key, default_every)?.max(1);
    Ok((0..layers)
        .map(|i| if (i + 1) % every == 0 { full } else { other }.to_string())
        .collect())
}

fn attention(qk_norm: bool) -> LayerKind {
    LayerKind {
        mixer: Some(MixerKind::Attention),
        qk_norm: qk_norm.then_some(true),
        ..LayerKind::default()
    }
}

fn stack(layout: Layout, pattern: Vec<&str>, kinds: Vec<(&str, LayerKind)>) -> Stack {
    Stack {
        layout,
        pattern: pattern.into_iter().map(str::to_string).collect(),
        at: BTreeMap::new(),
        kinds: kinds.into_iter().map(|(n, k)| (n.to_string(), k)).collect(),
    }
}

/// The shortest prefix of `names` that repeats (cut at the end) to all of them.
fn period<'a>(names: &[&'a str]) -> Vec<&'a str> {
    for p in 1..=names.len() {
        if names.iter().enumerate().all(|(i, n)| *n == names[i % p]) {
            return names[..p].to_vec();
        }
    }
    names.to_vec()
}

fn qwen3(r: &Reader) -> Result<ModelSpec, FileError> {
    let mut spec = base(
        r,
        Base {
            vocab: 151_936,
            hidden: 4096,
            ffn: 22_016,
            layers: 32,
            heads: 32,
            kv_heads: None,
            // A declared field: 128 when absent, not hidden / heads.
            head_dim: Some(128),
            activation: Some(("hidden_act", Activation::Silu)),
            tie: false,
            rope_theta: 10_000.0,
            max_positions: 32_768,
            attention_bias: true,
        },
    )?;
    spec.stack = Some(stack(
        Layout::Llama,
        vec!["attn"],
        vec![("attn", attention(true))],
    ));
    Ok(spec)
}

fn smollm3(r: &Reader) -> Result<ModelSpec, FileError> {
    let mut spec = base(
        r,
        Base {
            vocab: 128_256,
            hidden: 2048,
            ffn: 11_008,
            layers: 36,
            heads: 16,
            kv_heads: Some(4),
            head_dim: None,
            activation: Some(("hidden_act", Activation::Silu)),
            tie: true,
            rope_theta: 10_000.0,
            max_positions: 32_768,
            attention_bias: true,
        },
    )?;
    spec.mlp_bias = r.bool_or("mlp_bias", false)?;
    // `no_rope_layers[i]` is 1 where layer i uses RoPE; without it, every
    // `no_rope_layer_interval`-th layer (1-based) has none.
    let n = spec.num_layers;
    let uses_rope: Vec<bool> = match r.ints("no_rope_layers")? {
        Some(flags) => {
            if flags.len() as u64 != n {
                return Err(r.bad(
                    "no_rope_layers",
                    format!("lists {} layers but num_hidden_layers is {n}", flags.len()),
                ));
            }
            flags.iter().map(|&f| f != 0).collect()
        }
        None => {
            let every = r.int_or("no_rope_layer_interval", 4)?.max(1);
            (0..n).map(|i| (i + 1) % every != 0).collect()
        }
    };
    if uses_rope.iter().all(|&r| r) {
        return Ok(spec);
    }
    let names: Vec<&str> = uses_rope
        .iter()
        .map(|&r| if r { "rope" } else { "nope" })
        .collect();
    let nope = LayerKind {
        rope: Some(false),
        ..attention(false)
    };
    let mut kinds = vec![("nope", nope)];
    if uses_rope.iter().any(|&r| r) {
        kinds.push(("rope", attention(false)));
    }
    spec.stack = Some(stack(Layout::Llama, period(&names), kinds));
    Ok(spec)
}

fn gemma3(r: &Reader) -> Result<ModelSpec, FileError> {
    let mut spec = base(
        r,
        Base {
            vocab: 262_208,
            hidden: 2304,
            ffn: 9216,
            layers: 26,
            heads: 8,
            kv_heads: Some(4),
            head_dim: Some(256),
            activation: Some(("hidden_activation", Activation::GeluTanh)),
            tie: true,
            rope_theta: 1_000_000.0,
            max_positions: 131_072,
            attention_bias: true,
        },
    )?;
    if !spec.hidden_size.is_multiple_of(spec.num_heads.max(1)) {
        return Err(r.bad(
            "num_attention_heads",
            format!(
                "transformers' Gemma3TextConfig refuses hidden_size {} not divisible by {} \
                 heads (even with head_dim set)",
                spec.hidden_size, spec.num_heads
            ),
        ));
    }
    let n = spec.num_layers;
    // transformers' rule without `layer_types` (`sliding_window_pattern`, default 6; the
    // published `_sliding_window_pattern` with an underscore is not read).
    let types = types_or_interval(
        r,
        n,
        ("full_attention", "sliding_attention"),
        "sliding_window_pattern",
        6,
    )?;
    let window = r.int_or("sliding_window", 4096)?;
    let names: Vec<&str> = types
        .iter()
        .map(|t| {
            if t == "full_attention" {
                "global"
            } else {
                "local"
            }
        })
        .collect();
    let mut kinds = Vec::new();
    if names.contains(&"local") {
        kinds.push((
            "local",
            LayerKind {
                window: Some(window),
                ..attention(true)
            },
        ));
    }
    if names.contains(&"global") {
        kinds.push(("global", attention(true)));
    }
    spec.stack = Some(stack(Layout::Gemma3, period(&names), kinds));
    Ok(spec)
}

fn lfm2(r: &Reader) -> Result<ModelSpec, FileError> {
    let mut spec = base(
        r,
        Base {
            vocab: 65_536,
            hidden: 2560,
            ffn: 12_288,
            layers: 32,
            heads: 32,
            kv_heads: Some(8),
            head_dim: None,
            activation: None,
            tie: true,
            rope_theta: 1_000_000.0,
            max_positions: 128_000,
            attention_bias: false,
        },
    )?;
    spec.norm_eps = r.float_or("norm_eps", 1e-5)?;
    // LFM2's aliases win: `block_ff_dim` over `intermediate_size`, `tie_embedding` over
    // `tie_word_embeddings`.
    let declared = match r.int("block_ff_dim")? {
        Some(f) => f,
        None => r.int_or("intermediate_size", 12_288)?,
    };
    if r.present("tie_embedding").is_some() {
        spec.tie_embeddings = r.bool_or("tie_embedding", true)?;
    }
    // `Lfm2MLP`'s width rule; the round-up sits inside the multiplier branch.
    spec.intermediate_size = if r.bool_or("block_auto_adjust_ff_dim", true)? {
        let mut f = 2 * declared / 3;
        let multiplier = match r.present("block_ffn_dim_multiplier") {
            None if r.obj.contains_key("block_ffn_dim_multiplier") => None,
            None => Some(1.0),
            Some(_) => Some(r.float_or("block_ffn_dim_multiplier", 1.0)?),
        };
        if let Some(m) = multiplier {
            f = (m * f as f64) as u64;
            let multiple = r.int_or("block_multiple_of", 256)?.max(1);
            f = f.div_ceil(multiple) * multiple;
        }
        f
    } else {
        declared
    };
    let n = spec.num_layers;
    let is_attention: Vec<bool> = match r.layer_types(n, &["conv", "full_attention"])? {
        Some(types) => types.iter().map(|t| t == "full_attention").collect(),
        None => match r.ints("full_attn_idxs")? {
            Some(idx) => {
                if let Some(i) = idx.iter().find(|&&i| i >= n) {
                    return Err(r.bad(
                        "full_attn_idxs",
                        format!("layer {i} is out of range: there are {n} layers"),
                    ));
                }
                (0..n).map(|i| idx.contains(&i)).collect()
            }
            // Neither given: transformers makes every layer attention.
            None => vec![true; n as usize],
        },
    };
    let conv = LayerKind {
        mixer: Some(MixerKind::ShortConv),
        kernel: Some(r.int_or("conv_L_cache", 3)?),
        conv_bias: r.bool_or("conv_bias", false)?.then_some(true),
        ..LayerKind::default()
    };
    let names: Vec<&str> = is_attention
        .iter()
        .map(|&a| if a { "attn" } else { "conv" })
        .collect();
    let mut kinds = Vec::new();
    if names.contains(&"conv") {
        kinds.push(("conv", conv));
    }
    if names.contains(&"attn") {
        kinds.push(("attn", attention(true)));
    }
    let mut st = stack(Layout::Lfm2, period(&names), kinds);
    // A list that does not repeat at least twice (LFM2's do not) is written as conv layers
    // with attention at its indices, as LFM2's own `full_attn_idxs`.
    if st.pattern.len() as u64 * 2 > n && names.contains(&"conv") && names.contains(&"attn") {
        st.pattern = vec!["conv".into()];
        st.at.insert(
            "attn".into(),
            (0..n).filter(|&i| is_attention[i as usize]).collect(),
        );
    }
    spec.stack = Some(st);
    Ok(spec)
}

fn qwen3_5(r: &Reader) -> Result<ModelSpec, FileError> {
    let mut spec = base(
        r,
        Base {
            vocab: 248_320,
            hidden: 4096,
            ffn: 12_288,
            layers: 32,
            heads: 16,
            kv_heads: Some(4),
            head_dim: Some(256),
            activation: Some(("hidden_act", Activation::Silu)),
            // The text model's own flag (Qwen3_5ForCausalLM), default false.
            tie: false,
            rope_theta: 10_000.0,
            max_positions: 32_768,
            attention_bias: true,
        },
    )?;
    let types = types_or_interval(
        r,
        spec.num_layers,
        ("full_attention", "linear_attention"),
        "full_attention_interval",
        4,
    )?;
    let linear = LayerKind {
        mixer: Some(MixerKind::LinearAttention),
        key_heads: Some(r.int_or("linear_num_key_heads", 16)?),
        value_heads: Some(r.int_or("linear_num_value_heads", 32)?),
        key_head_dim: Some(r.int_or("linear_key_head_dim", 128)?),
        value_head_dim: Some(r.int_or("linear_value_head_dim", 128)?),
        conv_kernel: Some(r.int_or("linear_conv_kernel_dim", 4)?),
        ..LayerKind::default()
    };
    // The full-attention output gate is unconditional in transformers
    // (`attn_output_gate` is not read).
    let full = LayerKind {
        output_gate: Some(true),
        ..attention(true)
    };
    let names: Vec<&str> = types
        .iter()
        .map(|t| {
            if t == "full_attention" {
                "full"
            } else {
                "linear"
            }
        })
        .collect();
    let mut kinds = Vec::new();
    if names.contains(&"linear") {
        kinds.push(("linear", linear));
    }
    if names.contains(&"full") {
        kinds.push(("full", full));
    }
    spec.stack = Some(stack(Layout::Llama, period(&names), kinds));
    Ok(spec)
}

/// Reads a `config.json` of one of [`FAMILIES`]: the spec (validated) and the model type
/// as written. `path` only names the file in errors.
pub fn parse(path: &Path, src: &str) -> Result<(ModelSpec, String), FileError> {
    let value: Value = serde_json::from_str(src).map_err(|e| FileError::from_json(path, &e))?;
    let Value::Object(top) = value else {
        return Err(FileError::invalid_json(
            path,
            src,
            "(top level)",
            "a config.json must be a JSON object",
        ));
    };
    let model_type = top
        .get("model_type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let top_reader = Reader {
        path,
        src,
        obj: &top,
        prefix: "",
    };
    // Multimodal configs hold the language model under `text_config`.
    let text;
    let r = match model_type.as_str() {
        "gemma3" | "qwen3_5" => {
            text = match top.get("text_config") {
                Some(Value::Object(t)) => t.clone(),
                Some(v) => {
                    return Err(
                        top_reader.bad("text_config", format!("expected an object, found {v}"))
                    );
                }
                None => Map::new(),
            };
            Reader {
                path,
                src,
                obj: &text,
                prefix: "text_config.",
            }
        }
        _ => top_reader,
    };
    let spec = match model_type.as_str() {
        "qwen3" => qwen3(&r)?,
        "smollm3" => smollm3(&r)?,
        "gemma3" | "gemma3_text" => gemma3(&r)?,
        "lfm2" => lfm2(&r)?,
        "qwen3_5" | "qwen3_5_text" => qwen3_5(&r)?,
        other => {
            return Err(FileError::invalid_json(
                path,
                src,
                "model_type",
                format!("\"{other}\" is not a family this module reads"),
            ));
        }
    };
    spec.validate().map_err(|e| {
        let leaf = e.key.rsplit('.').next().unwrap_or(&e.key).to_string();
        r.bad(
            crate::hf_common::hf_key(&leaf),
            format!("{} (tailor's key `model.{}`)", e.message, e.key),
        )
    })?;
    Ok((spec, model_type))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounting::{Component, Phase};
    use crate::dtype::{DType, Precision};
    use crate::layers::Mixer;
    use crate::spec_file::SpecFile;
    use std::path::PathBuf;

    fn p() -> PathBuf {
        PathBuf::from("cfg/config.json")
    }

    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!("../tests/fixtures/", $name, ".config.json"))
        };
    }

    /// Every fixture with what transformers counts for it (docs/design/families.md).
    const PUBLISHED: &[(&str, &str, u64)] = &[
        ("LFM2-350M", fixture!("lfm2-350m"), 354_483_968),
        ("LFM2-1.2B", fixture!("lfm2-1.2b"), 1_170_340_608),
        ("LFM2-2.6B", fixture!("lfm2-2.6b"), 2_569_272_320),
        ("Gemma-3-270M", fixture!("gemma-3-270m"), 268_098_176),
        ("Gemma-3-1B", fixture!("gemma-3-1b"), 999_885_952),
        ("Qwen3-0.6B", fixture!("qwen3-0.6b"), 596_049_920),
        ("Qwen3.5-0.8B (text)", fixture!("qwen3.5-0.8b"), 752_393_024),
        (
            "Qwen3.5-2B (text)",
            fixture!("qwen3.5-2b.text"),
            1_881_825_088,
        ),
        ("SmolLM3-3B", fixture!("smollm3-3b"), 3_075_098_624),
    ];

    fn spec(src: &str) -> ModelSpec {
        parse(&p(), src).unwrap().0
    }

    #[test]
    fn published_counts_to_the_unit() {
        for &(name, src, expected) in PUBLISHED {
            let s = spec(src);
            let counts = s.params();
            assert_eq!(counts.total, expected, "{name}");
            assert_eq!(s.total_params(), expected, "{name}");
            let tensors: u64 = s.tensors().iter().map(|t| t.numel() * t.repeats).sum();
            assert_eq!(tensors, expected, "{name}: tensor list");
            assert_eq!(
                counts.total,
                counts.non_embedding + counts.embedding + counts.lm_head,
                "{name}"
            );
            // Every layer is counted once: the groups cover the depth.
            let depth: u64 = s.layer_groups().iter().map(|(_, n)| n).sum();
            assert_eq!(depth, s.num_layers, "{name}");
            assert_eq!(s.layers().len() as u64, s.num_layers, "{name}");
        }
    }

    #[test]
    fn each_spec_round_trips_through_spec_toml() {
        for &(name, src, expected) in PUBLISHED {
            let file = SpecFile::new(spec(src));
            let text = file.to_toml().unwrap();
            let back = SpecFile::parse(&PathBuf::from("s.toml"), &text)
                .unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
            assert_eq!(back, file, "{name}");
            assert_eq!(back.model.params().total, expected, "{name}");
        }
    }

    fn count(s: &ModelSpec, f: impl Fn(&Mixer) -> bool) -> u64 {
        s.layer_groups()
            .iter()
            .filter(|(l, _)| f(&l.mixer))
            .map(|(_, n)| n)
            .sum()
    }

    #[test]
    fn layer_kinds_as_published() {
        let lfm = spec(fixture!("lfm2-350m"));
        assert_eq!(count(&lfm, |m| matches!(m, Mixer::ShortConv(_))), 10);
        assert_eq!(count(&lfm, |m| matches!(m, Mixer::Attention(_))), 6);
        assert_eq!(
            lfm.intermediate_size, 4608,
            "int(2 * 6656 / 3) rounded up to 256"
        );
        let st = lfm.stack.as_ref().unwrap();
        assert_eq!(st.pattern, ["conv"]);
        assert_eq!(st.at["attn"], [2, 5, 8, 10, 12, 14]);
        let names: Vec<String> = lfm.tensors().into_iter().map(|t| t.name).collect();
        for n in [
            "model.layers.{i}.conv.in_proj.weight",
            "model.layers.{i}.conv.conv.weight",
            "model.layers.{i}.self_attn.out_proj.weight",
            "model.layers.{i}.self_attn.q_layernorm.weight",
            "model.layers.{i}.feed_forward.w1.weight",
            "model.layers.{i}.operator_norm.weight",
            "model.embedding_norm.weight",
        ] {
            assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
        }
        // 2.6B: auto-adjust off, the width as written; attention from `layer_types`.
        let big = spec(fixture!("lfm2-2.6b"));
        assert_eq!(big.intermediate_size, 10752);
        assert_eq!(count(&big, |m| matches!(m, Mixer::Attention(_))), 8);

        let gemma = spec(fixture!("gemma-3-270m"));
        let windowed = |m: &Mixer| matches!(m, Mixer::Attention(a) if a.window == Some(512));
        assert_eq!(count(&gemma, windowed), 15);
        assert_eq!(gemma.stack.as_ref().unwrap().pattern.len(), 6);
        // Gemma-3-1B has no `layer_types`: every 6th layer (1-based) is global, cut at 26.
        let g1 = spec(fixture!("gemma-3-1b"));
        assert_eq!(
            count(
                &g1,
                |m| matches!(m, Mixer::Attention(a) if a.window.is_none())
            ),
            4
        );

        let q35 = spec(fixture!("qwen3.5-0.8b"));
        assert_eq!(count(&q35, |m| matches!(m, Mixer::LinearAttention(_))), 18);
        assert_eq!(
            count(
                &q35,
                |m| matches!(m, Mixer::Attention(a) if a.output_gate && a.qk_norm)
            ),
            6
        );
        let smol = spec(fixture!("smollm3-3b"));
        assert_eq!(
            count(&smol, |m| matches!(m, Mixer::Attention(a) if !a.rope)),
            9
        );
        assert_eq!(
            smol.stack.as_ref().unwrap().pattern,
            ["rope", "rope", "rope", "nope"]
        );
        let qwen3 = spec(fixture!("qwen3-0.6b"));
        assert_eq!(qwen3.head_dim(), 128);
        assert!(
            qwen3
                .params()
                .by_component
                .iter()
                .any(|(c, _)| *c == Component::QNorm)
        );
    }

    #[test]
    fn state_follows_the_mixers() {
        let kv = DType::F16;
        // Qwen3-0.6B: 28 global layers x 8 kv heads x 128 x (k, v) x 2 bytes per token.
        let qwen3 = spec(fixture!("qwen3-0.6b"));
        assert_eq!(qwen3.kv_cache_bytes_per_token(kv), 28 * 2 * 8 * 128 * 2);
        assert_eq!(qwen3.constant_state_bytes(), 0);
        // Gemma-3-270M: 15 windowed layers stop at 512 entries, 3 global ones grow.
        let gemma = spec(fixture!("gemma-3-270m"));
        let row = 2 * 256 * 2;
        assert_eq!(gemma.kv_cache_bytes(kv, 256), 18 * row * 256);
        assert_eq!(gemma.kv_cache_bytes(kv, 4096), (15 * 512 + 3 * 4096) * row);
        // LFM2-350M: 6 attention layers grow; 10 conv layers keep 2 x 1024 f32 each.
        let lfm = spec(fixture!("lfm2-350m"));
        assert_eq!(lfm.constant_state_bytes(), 10 * 2 * 1024 * 4);
        assert_eq!(lfm.kv_cache_bytes_per_token(kv), 6 * 2 * 8 * 64 * 2);
        assert_eq!(
            lfm.state_bytes(kv, 4096),
            6 * 2 * 8 * 64 * 2 * 4096 + 10 * 2 * 1024 * 4
        );
        // Qwen3.5-0.8B: 18 DeltaNet layers, each 16 heads x 128 x 128 f32 of state plus
        // 3 positions of its 6144-channel convolution.
        let q35 = spec(fixture!("qwen3.5-0.8b"));
        assert_eq!(
            q35.constant_state_bytes(),
            18 * 4 * (3 * 6144 + 16 * 128 * 128)
        );
    }

    #[test]
    fn operators_cover_every_matrix_and_the_window() {
        let prec = Precision::default();
        for &(name, src, _) in PUBLISHED {
            let s = spec(src);
            for phase in [
                Phase::Prefill { tokens: 64 },
                Phase::Decode { context: 100 },
            ] {
                let ops = s.operators(phase, &prec);
                // The matrices the operators multiply are the spec's matrices (the tied
                // head reads the embedding).
                let linear: u64 = ops
                    .iter()
                    .filter(|o| o.kind == crate::accounting::OpKind::Linear)
                    .map(|o| o.dims[0] * o.dims[1] * o.repeats)
                    .sum();
                let matrices: u64 = s
                    .tensors()
                    .iter()
                    .filter(|t| t.shape.len() == 2 && t.component != Component::Embedding)
                    .map(|t| t.numel() * t.repeats)
                    .sum();
                let head = if s.tie_embeddings {
                    s.vocab_size * s.hidden_size
                } else {
                    0
                };
                assert_eq!(linear, matrices + head, "{name} {phase:?}");
            }
        }
        // Beyond its window, a sliding layer's decode reads a fixed cache.
        let gemma = spec(fixture!("gemma-3-270m"));
        let bytes = |c| {
            gemma
                .operators(Phase::Decode { context: c }, &prec)
                .iter()
                .filter(|o| o.kind == crate::accounting::OpKind::Attention)
                .map(|o| (o.repeats, o.bytes_read))
                .collect::<Vec<_>>()
        };
        let (at_1k, at_8k) = (bytes(1000), bytes(8000));
        let local = |v: &Vec<(u64, u128)>| v.iter().find(|(r, _)| *r == 15).unwrap().1;
        let global = |v: &Vec<(u64, u128)>| v.iter().find(|(r, _)| *r == 3).unwrap().1;
        assert_eq!(local(&at_1k), local(&at_8k));
        assert!(global(&at_8k) > 7 * global(&at_1k));
    }

    fn err(src: &str) -> String {
        parse(&p(), src).unwrap_err().to_string()
    }

    #[test]
    fn bad_configs_name_the_key() {
        let lfm = fixture!("lfm2-350m");
        let e = err(&lfm.replace("[2, 5, 8, 10, 12, 14]", "[2, 5, 16]"));
        assert!(
            e.contains("`full_attn_idxs`: layer 16 is out of range"),
            "{e}"
        );
        let e = err(&fixture!("gemma-3-270m").replacen("\"sliding_attention\"", "\"mamba\"", 1));
        assert!(
            e.contains("`layer_types`: \"mamba\" is not a layer type"),
            "{e}"
        );
        let e = err(&fixture!("qwen3.5-0.8b")
            .replace("\"num_hidden_layers\": 24", "\"num_hidden_layers\": 20"));
        assert!(
            e.contains("`text_config.layer_types`: lists 24 layers but num_hidden_layers is 20"),
            "{e}"
        );
        let e = err(&fixture!("gemma-3-270m")
            .replace("\"num_attention_heads\": 4", "\"num_attention_heads\": 3"));
        assert!(
            e.contains("refuses hidden_size 640 not divisible by 3"),
            "{e}"
        );
        let e = err(&fixture!("qwen3-0.6b")
            .replace("\"num_key_value_heads\": 8", "\"num_key_value_heads\": 5"));
        assert!(e.starts_with("cfg/config.json:"), "{e}");
        assert!(e.contains("`num_key_value_heads`"), "{e}");
    }
}

/// A family whose `config.json` tailor writes for a spec with a stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    Qwen3,
    Gemma3,
    Lfm2,
    Qwen35,
    Smollm3,
}

impl Family {
    pub const ALL: &'static [Family] = &[
        Family::Lfm2,
        Family::Gemma3,
        Family::Qwen35,
        Family::Qwen3,
        Family::Smollm3,
    ];

    /// The `model_type` written.
    pub fn name(self) -> &'static str {
        match self {
            Family::Qwen3 => "qwen3",
            Family::Gemma3 => "gemma3_text",
            Family::Lfm2 => "lfm2",
            Family::Qwen35 => "qwen3_5_text",
            Family::Smollm3 => "smollm3",
        }
    }

    /// The transformers class `AutoModelForCausalLM` builds.
    pub fn architecture(self) -> &'static str {
        match self {
            Family::Qwen3 => "Qwen3ForCausalLM",
            Family::Gemma3 => "Gemma3ForCausalLM",
            Family::Lfm2 => "Lfm2ForCausalLM",
            Family::Qwen35 => "Qwen3_5ForCausalLM",
            Family::Smollm3 => "SmolLM3ForCausalLM",
        }
    }

    /// The families whose config.json can express `spec`, in [`Family::ALL`] order.
    pub fn expressing(spec: &ModelSpec) -> Vec<Family> {
        Family::ALL
            .iter()
            .copied()
            .filter(|&f| export(spec, f).is_ok())
            .collect()
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The `config.json` of `family` for `spec`: every field that decides a shape written out
/// (never left to a default), so `AutoModelForCausalLM.from_config` builds exactly the
/// spec's layers and parameter count. An error names what the family cannot express.
pub fn export(spec: &ModelSpec, family: Family) -> Result<Value, crate::hf_common::Unsupported> {
    use crate::layers::{Attention, Layer, Mixer, attentions, linear_attentions, short_convs};
    use crate::model::{FfnKind, NormKind};
    let no = |key: &'static str, message: String| crate::hf_common::Unsupported {
        model_type: family.name(),
        key,
        message,
    };
    spec.validate()
        .map_err(|e| no("model", format!("invalid spec: {e}")))?;
    if spec.norm != NormKind::RmsNorm {
        return Err(no("norm", "these families use RMSNorm only".into()));
    }
    let layers: Vec<Layer> = spec.layers();
    let want_layout = match family {
        Family::Gemma3 => Layout::Gemma3,
        Family::Lfm2 => Layout::Lfm2,
        _ => Layout::Llama,
    };
    if spec.layout() != want_layout {
        return Err(no(
            "stack.layout",
            format!(
                "{family} places its norms as the `{want_layout}` layout does, and the spec has \
                 the `{}` layout",
                spec.layout()
            ),
        ));
    }
    // One FFN for every layer, gated.
    let ffns: Vec<_> = layers.iter().map(|l| l.ffn).collect();
    let ffn = ffns[0].ok_or_else(|| no("ffn", format!("{family} has an FFN in every layer")))?;
    if ffns.iter().any(|f| *f != Some(ffn)) {
        return Err(no(
            "ffn",
            format!("{family} has one FFN width and kind for every layer"),
        ));
    }
    if ffn.kind != FfnKind::Gated {
        return Err(no("ffn", format!("{family}'s FFN is gated")));
    }
    if ffn.bias && family != Family::Smollm3 {
        return Err(no("mlp_bias", format!("{family}'s FFN has no bias")));
    }
    // One attention for every attention layer (a window may differ: Gemma 3).
    let attentions: Vec<Attention> = attentions(&layers);
    let Some(&att) = attentions.first() else {
        return Err(no(
            "stack",
            format!("{family} needs at least one attention layer"),
        ));
    };
    let same_heads = |a: &Attention| {
        (a.heads, a.kv_heads, a.head_dim, a.qkv_bias, a.o_bias)
            == (
                att.heads,
                att.kv_heads,
                att.head_dim,
                att.qkv_bias,
                att.o_bias,
            )
    };
    if !attentions.iter().all(same_heads) {
        return Err(no(
            "stack.kinds",
            format!("{family} has one head layout for every attention layer"),
        ));
    }
    if att.qkv_bias != att.o_bias {
        return Err(no(
            "qkv_bias",
            format!("{family}'s `attention_bias` covers q, k, v and o together"),
        ));
    }
    let (qk_norm, gate) = match family {
        Family::Qwen3 | Family::Gemma3 | Family::Lfm2 => (true, false),
        Family::Qwen35 => (true, true),
        Family::Smollm3 => (false, false),
    };
    if attentions
        .iter()
        .any(|a| a.qk_norm != qk_norm || a.output_gate != gate)
    {
        return Err(no(
            "stack.kinds",
            format!(
                "{family}'s attention has {} q/k norms and {} output gate",
                if qk_norm { "" } else { "no" },
                if gate { "an" } else { "no" }
            ),
        ));
    }
    if family != Family::Smollm3 && attentions.iter().any(|a| !a.rope) {
        return Err(no(
            "stack.kinds",
            format!("{family} has RoPE in every attention layer"),
        ));
    }
    let windows: Vec<u64> = attentions.iter().filter_map(|a| a.window).collect();
    if family != Family::Gemma3 && !windows.is_empty() {
        return Err(no(
            "stack.kinds",
            format!("{family} has no sliding-window layers in tailor's export; use gemma3_text"),
        ));
    }
    if windows.iter().any(|&w| w != windows[0]) {
        return Err(no(
            "stack.kinds",
            "Gemma 3 has one `sliding_window` for all its local layers".into(),
        ));
    }
    let other = layers.iter().find(|l| {
        !matches!(
            (family, l.mixer),
            (_, Mixer::Attention(_))
                | (Family::Lfm2, Mixer::ShortConv(_))
                | (Family::Qwen35, Mixer::LinearAttention(_))
        )
    });
    if let Some(l) = other {
        return Err(no(
            "stack.kinds",
            format!("{family} has no layer with {}", l.mixer.kind()),
        ));
    }
    let convs: Vec<_> = short_convs(&layers);
    if convs.iter().any(|c| *c != convs[0]) {
        return Err(no(
            "stack.kinds",
            "LFM2 has one conv kernel and bias setting for all its conv layers".into(),
        ));
    }
    let linears: Vec<_> = linear_attentions(&layers);
    if linears.iter().any(|x| *x != linears[0]) {
        return Err(no(
            "stack.kinds",
            "Qwen3.5 has one linear-attention shape for all its linear layers".into(),
        ));
    }
    if family == Family::Lfm2 && ffn.activation != Activation::Silu {
        return Err(no("activation", "LFM2's FFN is SwiGLU (silu)".into()));
    }
    if family == Family::Gemma3 && !spec.hidden_size.is_multiple_of(att.heads) {
        return Err(no(
            "num_heads",
            format!(
                "transformers' Gemma3TextConfig refuses hidden_size {} not divisible by {} heads",
                spec.hidden_size, att.heads
            ),
        ));
    }

    let act = match ffn.activation {
        Activation::Silu => "silu",
        Activation::Gelu => "gelu",
        Activation::GeluTanh => "gelu_pytorch_tanh",
        Activation::Relu => "relu",
    };
    let mut c = Map::new();
    let mut put = |k: &str, v: Value| {
        c.insert(k.to_string(), v);
    };
    put("model_type", family.name().into());
    put(
        "architectures",
        Value::Array(vec![family.architecture().into()]),
    );
    put("vocab_size", spec.vocab_size.into());
    put("hidden_size", spec.hidden_size.into());
    put("intermediate_size", ffn.width.into());
    put("num_hidden_layers", spec.num_layers.into());
    put("num_attention_heads", att.heads.into());
    put("num_key_value_heads", att.kv_heads.into());
    put("head_dim", att.head_dim.into());
    put(
        "max_position_embeddings",
        spec.max_position_embeddings.into(),
    );
    put("rope_theta", spec.rope_theta.into());
    put("tie_word_embeddings", spec.tie_embeddings.into());
    let types = |f: &dyn Fn(&Layer) -> &'static str| {
        Value::Array(layers.iter().map(|l| Value::from(f(l))).collect())
    };
    match family {
        Family::Qwen3 => {
            put("hidden_act", act.into());
            put("rms_norm_eps", spec.norm_eps.into());
            put("attention_bias", att.o_bias.into());
            put("use_sliding_window", false.into());
        }
        Family::Smollm3 => {
            put("hidden_act", act.into());
            put("rms_norm_eps", spec.norm_eps.into());
            put("attention_bias", att.o_bias.into());
            put("mlp_bias", ffn.bias.into());
            let flags: Vec<Value> = layers
                .iter()
                .map(|l| Value::from(u64::from(matches!(l.mixer, Mixer::Attention(a) if a.rope))))
                .collect();
            put("no_rope_layers", Value::Array(flags));
            put("use_sliding_window", false.into());
        }
        Family::Gemma3 => {
            put("hidden_activation", act.into());
            put("rms_norm_eps", spec.norm_eps.into());
            put("attention_bias", att.o_bias.into());
            put("query_pre_attn_scalar", att.head_dim.into());
            put(
                "sliding_window",
                windows.first().copied().unwrap_or(4096).into(),
            );
            put(
                "layer_types",
                types(&|l| match l.mixer {
                    Mixer::Attention(a) if a.window.is_some() => "sliding_attention",
                    _ => "full_attention",
                }),
            );
        }
        Family::Lfm2 => {
            put("norm_eps", spec.norm_eps.into());
            // The width as given: no derivation, and `block_ff_dim` (which wins) agrees.
            put("block_auto_adjust_ff_dim", false.into());
            put("block_ff_dim", ffn.width.into());
            put("tie_embedding", spec.tie_embeddings.into());
            let conv = convs.first().copied();
            put("conv_L_cache", conv.map_or(3, |c| c.kernel).into());
            put("conv_bias", conv.is_some_and(|c| c.bias).into());
            put(
                "layer_types",
                types(&|l| match l.mixer {
                    Mixer::ShortConv(_) => "conv",
                    _ => "full_attention",
                }),
            );
            let idx: Vec<Value> = layers
                .iter()
                .enumerate()
                .filter(|(_, l)| matches!(l.mixer, Mixer::Attention(_)))
                .map(|(i, _)| Value::from(i as u64))
                .collect();
            put("full_attn_idxs", Value::Array(idx));
        }
        Family::Qwen35 => {
            put("hidden_act", act.into());
            put("rms_norm_eps", spec.norm_eps.into());
            put("attention_bias", att.o_bias.into());
            put("attn_output_gate", true.into());
            put(
                "layer_types",
                types(&|l| match l.mixer {
                    Mixer::LinearAttention(_) => "linear_attention",
                    _ => "full_attention",
                }),
            );
            if let Some(x) = linears.first() {
                put("linear_num_key_heads", x.key_heads.into());
                put("linear_num_value_heads", x.value_heads.into());
                put("linear_key_head_dim", x.key_head_dim.into());
                put("linear_value_head_dim", x.value_head_dim.into());
                put("linear_conv_kernel_dim", x.conv_kernel.into());
            }
        }
    }
    Ok(Value::Object(c))
}

#[cfg(test)]
mod export_tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn each_family_exports_what_it_reads() {
        for (src, family) in [
            (
                include_str!("../tests/fixtures/lfm2-350m.config.json"),
                Family::Lfm2,
            ),
            (
                include_str!("../tests/fixtures/lfm2-2.6b.config.json"),
                Family::Lfm2,
            ),
            (
                include_str!("../tests/fixtures/gemma-3-270m.config.json"),
                Family::Gemma3,
            ),
            (
                include_str!("../tests/fixtures/gemma-3-1b.config.json"),
                Family::Gemma3,
            ),
            (
                include_str!("../tests/fixtures/qwen3-0.6b.config.json"),
                Family::Qwen3,
            ),
            (
                include_str!("../tests/fixtures/qwen3.5-0.8b.config.json"),
                Family::Qwen35,
            ),
            (
                include_str!("../tests/fixtures/smollm3-3b.config.json"),
                Family::Smollm3,
            ),
        ] {
            let p = PathBuf::from("in/config.json");
            let (spec, _) = parse(&p, src).unwrap();
            assert_eq!(Family::expressing(&spec), vec![family], "{family}");
            let json = export(&spec, family).unwrap();
            let text = serde_json::to_string_pretty(&json).unwrap();
            let (back, model_type) = parse(&p, &text).unwrap();
            assert_eq!(model_type, family.name());
            assert_eq!(back.layers(), spec.layers(), "{family}");
            assert_eq!(back.params(), spec.params(), "{family}");
            assert_eq!(back.tensors(), spec.tensors(), "{family}");
            // Every shape-deciding field is written, never left to a default.
            for key in ["head_dim", "intermediate_size", "tie_word_embeddings"] {
                assert!(json.get(key).is_some(), "{family}: {key}");
            }
        }
    }

    #[test]
    fn a_family_refuses_what_it_cannot_express() {
        let p = PathBuf::from("in/config.json");
        let (lfm, _) = parse(&p, include_str!("../tests/fixtures/lfm2-350m.config.json")).unwrap();
        let e = export(&lfm, Family::Qwen3).unwrap_err().to_string();
        assert!(
            e.contains("model_type qwen3 cannot express `stack.layout`"),
            "{e}"
        );
        let (gemma, _) = parse(
            &p,
            include_str!("../tests/fixtures/gemma-3-270m.config.json"),
        )
        .unwrap();
        let e = export(&gemma, Family::Lfm2).unwrap_err().to_string();
        assert!(e.contains("lfm2"), "{e}");
        // The Llama flavour points at the family that can.
        let e = crate::HfConfig::export(&lfm, crate::ModelType::Llama)
            .unwrap_err()
            .to_string();
        assert!(e.contains("export it as lfm2"), "{e}");
        // A dense Llama stack is SmolLM3 with RoPE in every layer.
        let dense = crate::ModelSpec::llama(1000, 64, 2, 4, 2, 128);
        assert_eq!(Family::expressing(&dense), vec![Family::Smollm3]);
    }
}
