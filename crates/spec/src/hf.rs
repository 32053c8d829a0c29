//! Hugging Face `config.json` of the Llama family: read into a [`ModelSpec`], written back.
//!
//! Keys tailor does not model (token ids, `torch_dtype`, `rope_scaling`, ...) are kept in
//! [`HfConfig::extra`] and written back unchanged, so `config.json -> spec -> config.json`
//! loses nothing.

pub use crate::hf_common::Unsupported;

use crate::files::{self, FileError};
use crate::hf_common::hf_key;
use crate::model::{Activation, FfnKind, ModelSpec, NormKind};
use serde_json::{Map, Value};
use std::fmt;
use std::path::Path;

/// The `model_type`s tailor reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelType {
    Llama,
    Mistral,
    /// Q, K and V projections always carry a bias; O does not.
    Qwen2,
    /// mllmTeam's PhoneLM (Llama-style code, `attention_bias` key, no `mlp_bias`).
    Phonelm,
}

impl ModelType {
    pub const ALL: &'static [ModelType] = &[
        ModelType::Llama,
        ModelType::Mistral,
        ModelType::Qwen2,
        ModelType::Phonelm,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ModelType::Llama => "llama",
            ModelType::Mistral => "mistral",
            ModelType::Qwen2 => "qwen2",
            ModelType::Phonelm => "phonelm",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|t| t.name() == name)
    }

    fn architecture(self) -> &'static str {
        match self {
            ModelType::Llama => "LlamaForCausalLM",
            ModelType::Mistral => "MistralForCausalLM",
            ModelType::Qwen2 => "Qwen2ForCausalLM",
            ModelType::Phonelm => "PhoneLMForCausalLM",
        }
    }

    /// transformers' default `max_position_embeddings` for this type.
    fn default_max_positions(self) -> u64 {
        match self {
            ModelType::Llama | ModelType::Phonelm => 2048,
            ModelType::Mistral => 4096 * 32,
            ModelType::Qwen2 => 32768,
        }
    }

    /// Every `model_type` tailor reads: these, and [`crate::families::FAMILIES`].
    fn supported() -> String {
        Self::ALL
            .iter()
            .map(|t| t.name())
            .chain(crate::families::FAMILIES.iter().copied())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for ModelType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `hidden_act` spellings transformers accepts for each activation; the first is written.
fn act_names(a: Activation) -> &'static [&'static str] {
    match a {
        Activation::Relu => &["relu"],
        Activation::Silu => &["silu", "swish"],
        Activation::Gelu => &["gelu"],
        Activation::GeluTanh => &["gelu_pytorch_tanh", "gelu_new", "gelu_fast"],
    }
}

/// A `config.json` as tailor understands it.
#[derive(Debug, Clone, PartialEq)]
pub struct HfConfig {
    pub model_type: ModelType,
    pub spec: ModelSpec,
    /// `hidden_act` as written, when it is an alias (`swish`), so it is written back as is.
    pub hidden_act: Option<String>,
    /// Every key not mapped to the spec, unchanged.
    pub extra: Map<String, Value>,
}

/// Keys mapped to the spec (read, validated and written by tailor).
const MAPPED: &[&str] = &[
    "model_type",
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "hidden_act",
    "rms_norm_eps",
    "rope_theta",
    "max_position_embeddings",
    "tie_word_embeddings",
    "attention_bias",
    "mlp_bias",
];

impl HfConfig {
    /// The config.json a `model_type` would hold for `spec`, with no extra keys but
    /// `architectures`; an error names the field the type cannot express.
    pub fn from_spec(spec: &ModelSpec, model_type: ModelType) -> Result<Self, Unsupported> {
        let no = |key, message: &str| {
            Err(Unsupported {
                model_type: model_type.name(),
                key,
                message: message.to_string(),
            })
        };
        if let Some(what) = spec.beyond_dense() {
            let families = crate::families::Family::expressing(spec);
            return Err(Unsupported {
                model_type: model_type.name(),
                key: "stack",
                message: format!(
                    "the spec has {what}, and {model_type} is a uniform dense stack; {}",
                    if families.is_empty() {
                        "no flavor tailor writes expresses this stack".to_string()
                    } else {
                        format!(
                            "export it as {}",
                            families
                                .iter()
                                .map(|f| f.name())
                                .collect::<Vec<_>>()
                                .join(" or ")
                        )
                    }
                ),
            });
        }
        if spec.norm != NormKind::RmsNorm {
            return no("norm", "the Llama family uses RMSNorm only");
        }
        if spec.ffn != FfnKind::Gated {
            return no(
                "ffn",
                "the Llama family uses a gated FFN (gate/up/down) only",
            );
        }
        match model_type {
            ModelType::Llama | ModelType::Phonelm if spec.qkv_bias != spec.o_bias => {
                return no(
                    "qkv_bias",
                    "one `attention_bias` covers q, k, v and o together; set qkv_bias = o_bias, \
                     or export as qwen2 (q/k/v bias only)",
                );
            }
            ModelType::Phonelm if spec.mlp_bias => {
                return no(
                    "mlp_bias",
                    "PhoneLM's FFN has no bias; use the llama flavor",
                );
            }
            ModelType::Qwen2 if !spec.qkv_bias || spec.o_bias || spec.mlp_bias => {
                return no(
                    "qkv_bias",
                    "Qwen2 always has q/k/v biases and no o/MLP bias; use the llama flavor",
                );
            }
            ModelType::Mistral if spec.qkv_bias || spec.o_bias || spec.mlp_bias => {
                return no("qkv_bias", "Mistral has no biases; use the llama flavor");
            }
            _ => {}
        }
        let mut extra = Map::new();
        extra.insert(
            "architectures".into(),
            Value::Array(vec![Value::from(model_type.architecture())]),
        );
        Ok(Self {
            model_type,
            spec: spec.clone(),
            hidden_act: None,
            extra,
        })
    }

    /// The `config.json` tailor exports for pre-training: [`Self::from_spec`] with every
    /// architecture field written out rather than left to a default.
    ///
    /// - `llama` (stock transformers `LlamaForCausalLM`): `head_dim`, `attention_bias`,
    ///   `mlp_bias`, `hidden_act` and `tie_word_embeddings` always present.
    /// - `phonelm` (mllmTeam's remote code, `PhoneLMForCausalLM`): PhoneLM's published
    ///   field set with its values for the fields tailor does not search (token ids,
    ///   initializer range, `torch_dtype` bfloat16, ...). PhoneLM's code has no
    ///   `head_dim`: a head width other than `hidden_size / num_attention_heads` is refused.
    ///
    /// `transformers_version` is not written: it records which transformers saved a
    /// file, and tailor is not transformers (it adds its own when it saves).
    pub fn export(spec: &ModelSpec, model_type: ModelType) -> Result<Self, Unsupported> {
        let mut spec = spec.clone();
        let natural = spec.hidden_size / spec.num_heads.max(1);
        let mut extra = Map::new();
        match model_type {
            ModelType::Llama => {
                spec.head_dim = Some(spec.head_dim());
                // Written only when true by `to_json` (published configs omit it).
                extra.insert("mlp_bias".into(), Value::Bool(spec.mlp_bias));
            }
            ModelType::Phonelm => {
                if !spec.hidden_size.is_multiple_of(spec.num_heads.max(1))
                    || spec.head_dim() != natural
                {
                    return Err(Unsupported {
                        model_type: model_type.name(),
                        key: "head_dim",
                        message: format!(
                            "PhoneLM's code sets head_dim = hidden_size / num_attention_heads \
                             ({} / {}), but the spec has head_dim {}; use the llama flavor",
                            spec.hidden_size,
                            spec.num_heads,
                            spec.head_dim()
                        ),
                    });
                }
                spec.head_dim = None;
                for (k, v) in [
                    ("attention_dropout", Value::from(0.0)),
                    ("bos_token_id", Value::from(1)),
                    ("eos_token_id", Value::from(2)),
                    ("initializer_range", Value::from(0.02)),
                    ("pretraining_tp", Value::from(1)),
                    ("rope_scaling", Value::Null),
                    ("torch_dtype", Value::from("bfloat16")),
                    ("use_cache", Value::from(true)),
                ] {
                    extra.insert(k.into(), v);
                }
            }
            ModelType::Mistral | ModelType::Qwen2 => {}
        }
        let mut cfg = Self::from_spec(&spec, model_type)?;
        cfg.extra.extend(extra);
        Ok(cfg)
    }

    /// Parses and validates; `path` only names the file in errors.
    pub fn parse(path: &Path, src: &str) -> Result<Self, FileError> {
        let value: Value = serde_json::from_str(src).map_err(|e| FileError::from_json(path, &e))?;
        let Value::Object(obj) = value else {
            return Err(FileError::invalid_json(
                path,
                src,
                "(top level)",
                "a config.json must be a JSON object",
            ));
        };
        let bad = |key: &str, message: String| FileError::invalid_json(path, src, key, message);
        let present = |key: &str| obj.get(key).filter(|v| !v.is_null());
        let int = |key: &str| -> Result<Option<u64>, FileError> {
            match present(key) {
                None => Ok(None),
                Some(v) => v
                    .as_u64()
                    .map(Some)
                    .ok_or_else(|| bad(key, format!("expected a non-negative integer, found {v}"))),
            }
        };
        let required = |key: &str| -> Result<u64, FileError> {
            int(key)?.ok_or_else(|| bad(key, "is missing; it is required to size the model".into()))
        };
        let float = |key: &str, default: f64| -> Result<f64, FileError> {
            match present(key) {
                None => Ok(default),
                Some(v) => v
                    .as_f64()
                    .ok_or_else(|| bad(key, format!("expected a number, found {v}"))),
            }
        };
        let boolean = |key: &str, default: bool| -> Result<bool, FileError> {
            match present(key) {
                None => Ok(default),
                Some(v) => v
                    .as_bool()
                    .ok_or_else(|| bad(key, format!("expected true or false, found {v}"))),
            }
        };

        let model_type = match present("model_type") {
            None => {
                return Err(bad(
                    "model_type",
                    format!(
                        "is missing; supported model types: {}",
                        ModelType::supported()
                    ),
                ));
            }
            Some(Value::String(s)) => ModelType::from_name(s).ok_or_else(|| {
                bad(
                    "model_type",
                    format!(
                        "\"{s}\" is not supported; supported model types: {}",
                        ModelType::supported()
                    ),
                )
            })?,
            Some(v) => return Err(bad("model_type", format!("expected a string, found {v}"))),
        };
        let act_written = match present("hidden_act") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(v) => return Err(bad("hidden_act", format!("expected a string, found {v}"))),
        };
        let activation = match &act_written {
            None => Activation::Silu,
            Some(s) => Activation::ALL
                .iter()
                .copied()
                .find(|a| act_names(*a).contains(&s.as_str()))
                .ok_or_else(|| {
                    let known: Vec<&str> = Activation::ALL
                        .iter()
                        .flat_map(|a| act_names(*a))
                        .copied()
                        .collect();
                    bad(
                        "hidden_act",
                        format!("\"{s}\" is not supported; supported: {}", known.join(", ")),
                    )
                })?,
        };

        let num_heads = required("num_attention_heads")?;
        let attention_bias = match model_type {
            ModelType::Llama | ModelType::Phonelm => boolean("attention_bias", false)?,
            _ => false,
        };
        let spec = ModelSpec {
            vocab_size: required("vocab_size")?,
            hidden_size: required("hidden_size")?,
            num_layers: required("num_hidden_layers")?,
            num_heads,
            num_kv_heads: int("num_key_value_heads")?.unwrap_or(num_heads),
            head_dim: int("head_dim")?,
            intermediate_size: required("intermediate_size")?,
            ffn: FfnKind::Gated,
            activation,
            norm: NormKind::RmsNorm,
            norm_bias: false,
            norm_eps: float("rms_norm_eps", 1e-6)?,
            qkv_bias: attention_bias || model_type == ModelType::Qwen2,
            o_bias: attention_bias,
            mlp_bias: model_type == ModelType::Llama && boolean("mlp_bias", false)?,
            tie_embeddings: boolean("tie_word_embeddings", false)?,
            rope_theta: float("rope_theta", 10_000.0)?,
            max_position_embeddings: int("max_position_embeddings")?
                .unwrap_or(model_type.default_max_positions()),
            stack: None,
        };
        spec.validate().map_err(|e| {
            // Speak config.json's language: every spec key in the message becomes its HF key.
            let message = [
                "num_kv_heads",
                "num_heads",
                "num_layers",
                "norm_eps",
                "tie_embeddings",
            ]
            .iter()
            .fold(e.message, |m, k| m.replace(k, hf_key(k)));
            bad(hf_key(&e.key), message)
        })?;
        let mapped = |k: &str| match k {
            "attention_bias" => matches!(model_type, ModelType::Llama | ModelType::Phonelm),
            "mlp_bias" => model_type == ModelType::Llama,
            _ => MAPPED.contains(&k),
        };
        // Unmapped keys, and mapped ones written as null, are kept as they are.
        let extra = obj
            .iter()
            .filter(|(k, v)| !mapped(k) || v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let hidden_act = act_written.filter(|s| s != act_names(activation)[0]);
        Ok(Self {
            model_type,
            spec,
            hidden_act,
            extra,
        })
    }

    pub fn load(path: &Path) -> Result<Self, FileError> {
        Self::parse(path, &files::read_to_string(path)?)
    }

    /// The JSON object, keys sorted as transformers writes them.
    pub fn to_json(&self) -> Value {
        let s = &self.spec;
        let mut out: std::collections::BTreeMap<String, Value> = std::collections::BTreeMap::new();
        let mut put = |k: &str, v: Value| {
            out.insert(k.to_string(), v);
        };
        put("model_type", self.model_type.name().into());
        put("vocab_size", s.vocab_size.into());
        put("hidden_size", s.hidden_size.into());
        put("intermediate_size", s.intermediate_size.into());
        put("num_hidden_layers", s.num_layers.into());
        put("num_attention_heads", s.num_heads.into());
        put("num_key_value_heads", s.num_kv_heads.into());
        if let Some(d) = s.head_dim {
            put("head_dim", d.into());
        }
        let act = self
            .hidden_act
            .clone()
            .unwrap_or_else(|| act_names(s.activation)[0].to_string());
        put("hidden_act", act.into());
        put("rms_norm_eps", s.norm_eps.into());
        put("rope_theta", s.rope_theta.into());
        put("max_position_embeddings", s.max_position_embeddings.into());
        put("tie_word_embeddings", s.tie_embeddings.into());
        match self.model_type {
            ModelType::Llama => {
                put("attention_bias", s.o_bias.into());
                // transformers' default is false; older configs do not carry the key.
                if s.mlp_bias {
                    put("mlp_bias", true.into());
                }
            }
            ModelType::Phonelm => put("attention_bias", s.o_bias.into()),
            ModelType::Mistral | ModelType::Qwen2 => {}
        }
        for (k, v) in &self.extra {
            out.entry(k.clone()).or_insert_with(|| v.clone());
        }
        Value::Object(out.into_iter().collect())
    }

    /// Pretty JSON with a trailing newline.
    pub fn to_json_string(&self) -> String {
        let mut s = serde_json::to_string_pretty(&self.to_json()).unwrap_or_default();
        s.push('\n');
        s
    }

    pub fn save(&self, path: &Path) -> Result<(), FileError> {
        files::write_atomic(path, self.to_json_string().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn p() -> PathBuf {
        PathBuf::from("cfg/config.json")
    }

    /// Numbers compared by value (1e-06 == 1e-6, 10000.0 == 10000.0).
    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
            (Value::Object(x), Value::Object(y)) => {
                x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
            }
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same(v, w))
            }
            _ => a == b,
        }
    }

    const PHONELM_15B: &str = include_str!("../tests/fixtures/phonelm-1.5b.config.json");
    const QWEN25_05B: &str = include_str!("../tests/fixtures/qwen2.5-0.5b.config.json");
    const TINYLLAMA: &str = include_str!("../tests/fixtures/tinyllama-1.1b.config.json");
    const SMOLLM2: &str = include_str!("../tests/fixtures/smollm2-135m.config.json");
    const MISTRAL: &str = include_str!("../tests/fixtures/mistral-7b-v0.1.config.json");

    #[test]
    fn published_configs_round_trip_and_count() {
        for (src, params) in [
            (PHONELM_15B, None),
            (QWEN25_05B, Some(494_032_768u64)),
            (TINYLLAMA, Some(1_100_048_384)),
            (SMOLLM2, Some(134_515_008)),
            // Mistral-7B-v0.1: 7,241,732,096 parameters.
            (MISTRAL, Some(7_241_732_096)),
        ] {
            let cfg = HfConfig::parse(&p(), src).unwrap();
            if let Some(n) = params {
                assert_eq!(cfg.spec.params().total, n);
            }
            let original: Value = serde_json::from_str(src).unwrap();
            let written = cfg.to_json();
            assert!(same(&original, &written), "{original}\n!=\n{written}");
            let again = HfConfig::parse(&p(), &cfg.to_json_string()).unwrap();
            assert_eq!(again, cfg);
        }
    }

    #[test]
    fn model_type_specifics() {
        let q = HfConfig::parse(&p(), QWEN25_05B).unwrap();
        assert!(q.spec.qkv_bias && !q.spec.o_bias && q.spec.tie_embeddings);
        let ph = HfConfig::parse(&p(), PHONELM_15B).unwrap();
        assert_eq!(ph.model_type, ModelType::Phonelm);
        assert_eq!(ph.spec.activation, Activation::Relu);
        assert_eq!((ph.spec.hidden_size, ph.spec.num_layers), (2560, 19));
    }

    fn err(src: &str) -> String {
        HfConfig::parse(&p(), src).unwrap_err().to_string()
    }

    #[test]
    fn unknown_model_type_lists_supported() {
        let e = err(&TINYLLAMA.replace("\"llama\"", "\"gpt2\""));
        assert!(e.contains("\"gpt2\" is not supported"), "{e}");
        assert!(e.contains("llama, mistral, qwen2, phonelm"), "{e}");
        assert!(e.starts_with("cfg/config.json:"), "{e}");
    }

    #[test]
    fn malformed_json_names_line() {
        let e = err("{\n \"model_type\": \"llama\",\n \"hidden_size\": 64,,\n}");
        assert!(e.starts_with("cfg/config.json:3:"), "{e}");
    }

    #[test]
    fn missing_and_invalid_fields_named() {
        let v: Value = serde_json::from_str(TINYLLAMA).unwrap();
        let mut obj = v.as_object().unwrap().clone();
        obj.remove("hidden_size");
        let e = err(&serde_json::to_string_pretty(&obj).unwrap());
        assert!(e.contains("`hidden_size`: is missing"), "{e}");

        let e = err(&TINYLLAMA.replace("\"num_key_value_heads\": 4", "\"num_key_value_heads\": 5"));
        assert!(e.contains("`num_key_value_heads`"), "{e}");
        assert!(e.contains("do not divide num_attention_heads 32"), "{e}");

        let e = err(&TINYLLAMA.replace("\"hidden_act\": \"silu\"", "\"hidden_act\": \"mish\""));
        assert!(e.contains("`hidden_act`: \"mish\" is not supported"), "{e}");

        let e = err(&TINYLLAMA.replace("\"num_hidden_layers\": 22", "\"num_hidden_layers\": -1"));
        assert!(
            e.contains("`num_hidden_layers`: expected a non-negative integer"),
            "{e}"
        );
        assert!(err("[1, 2]").contains("must be a JSON object"));
    }

    #[test]
    fn phonelm_flavor_reproduces_the_published_configs() {
        for src in [
            PHONELM_15B,
            include_str!("../tests/fixtures/phonelm-0.5b.config.json"),
        ] {
            let published: Value = serde_json::from_str(src).unwrap();
            let spec = HfConfig::parse(&p(), src).unwrap().spec;
            let exported = HfConfig::export(&spec, ModelType::Phonelm)
                .unwrap()
                .to_json();
            let mut expected = published.as_object().unwrap().clone();
            // The saver's version stamp, not a field of the architecture (see `export`).
            expected.remove("transformers_version");
            assert!(
                same(&Value::Object(expected), &exported),
                "{published}\n!=\n{exported}"
            );
        }
    }

    #[test]
    fn llama_flavor_writes_every_architecture_field() {
        let mut spec = ModelSpec::llama(32000, 576, 30, 9, 3, 1536);
        spec.tie_embeddings = true;
        let json = HfConfig::export(&spec, ModelType::Llama).unwrap().to_json();
        for key in [
            "head_dim",
            "attention_bias",
            "mlp_bias",
            "hidden_act",
            "tie_word_embeddings",
            "num_key_value_heads",
        ] {
            assert!(json.get(key).is_some(), "{key} missing from {json}");
        }
        assert_eq!(json["head_dim"], 64);
        assert_eq!(json["architectures"][0], "LlamaForCausalLM");
        let back = HfConfig::parse(&p(), &json.to_string()).unwrap();
        assert_eq!(back.spec.params(), spec.params());
        assert_eq!(back.spec.head_dim, Some(64));
        assert_eq!(
            ModelSpec {
                head_dim: None,
                ..back.spec
            },
            spec
        );
    }

    #[test]
    fn phonelm_flavor_refuses_a_free_head_dim() {
        let mut spec = ModelSpec::llama(100, 256, 2, 4, 4, 512);
        spec.head_dim = Some(32);
        let e = HfConfig::export(&spec, ModelType::Phonelm).unwrap_err();
        assert_eq!(e.key, "head_dim");
        assert!(e.to_string().contains("use the llama flavor"), "{e}");
        spec.mlp_bias = true;
        spec.head_dim = None;
        assert_eq!(
            HfConfig::export(&spec, ModelType::Phonelm).unwrap_err().key,
            "mlp_bias"
        );
        assert!(HfConfig::export(&spec, ModelType::Llama).is_ok());
    }

    #[test]
    fn export_refuses_what_a_type_cannot_express() {
        let mut spec = ModelSpec::llama(100, 64, 2, 4, 4, 128);
        spec.norm = NormKind::LayerNorm;
        let e = HfConfig::from_spec(&spec, ModelType::Llama).unwrap_err();
        assert_eq!(e.key, "norm");
        spec.norm = NormKind::RmsNorm;
        spec.qkv_bias = true;
        assert_eq!(
            HfConfig::from_spec(&spec, ModelType::Llama)
                .unwrap_err()
                .key,
            "qkv_bias"
        );
        assert!(HfConfig::from_spec(&spec, ModelType::Qwen2).is_ok());
        let cfg = HfConfig::from_spec(&spec, ModelType::Qwen2).unwrap();
        let back = HfConfig::parse(&p(), &cfg.to_json_string()).unwrap();
        assert_eq!(back.spec, spec);
    }
}
