//! Specs with a stack ([`tailor_spec::Stack`]) as GGUF files of the llama.cpp architecture
//! that runs them: `lfm2` (short convolutions and attention), `gemma3` (sliding-window and
//! global attention, four norms a layer), `qwen35` (Gated DeltaNet and gated attention),
//! `qwen3` (attention with q/k norms) and `smollm3` (RoPE skipped on every 4th layer).
//!
//! Every tensor the pinned llama.cpp loads for the architecture is written, and nothing
//! else (its loader refuses extra tensors), under llama.cpp's names and in its layouts (a
//! short convolution's kernel squeezed to `[kernel, channels]` and kept f32, Qwen3.5's
//! `ssm_a` holding `-exp(A_log)`); so the file holds exactly the spec's parameters, which
//! is what llama-bench reports (`model_n_params` sums the file's tensors). What the
//! architecture cannot express is refused, naming it. The requirements were read from the
//! pinned checkout's `src/models/<arch>.cpp` (2026-12-05).

use crate::base::{Unsupported, WeightType, base_metadata, u32_of};
use crate::gguf::{GgmlType, Header, TensorDesc, Value};
use tailor_spec::layers::{
    Attention, Layer, Layout, LinearAttention, Mixer, ShortConv, attentions, linear_attentions,
    short_convs,
};
use tailor_spec::{Activation, FfnKind, ModelSpec, NormKind};

/// A llama.cpp architecture tailor writes for a spec with a stack.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    Lfm2,
    Gemma3,
    Qwen35,
    Qwen3,
    Smollm3,
}

impl Arch {
    /// `general.architecture`, and the prefix of every key of the file.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Lfm2 => "lfm2",
            Arch::Gemma3 => "gemma3",
            Arch::Qwen35 => "qwen35",
            Arch::Qwen3 => "qwen3",
            Arch::Smollm3 => "smollm3",
        }
    }

    fn activation(self) -> Activation {
        match self {
            Arch::Gemma3 => Activation::GeluTanh,
            _ => Activation::Silu,
        }
    }
}

/// The layers of a spec, with the attention shape they share.
struct Stacked {
    arch: Arch,
    layers: Vec<Layer>,
    attention: Attention,
    ffn_width: u64,
}

fn no(message: impl Into<String>) -> Unsupported {
    Unsupported(message.into())
}

/// The architecture that runs `spec` and where the file differs from the spec (notes that
/// change no parameter), or why no architecture runs it.
pub fn arch_of(spec: &ModelSpec, weights: WeightType) -> Result<(Arch, Vec<String>), Unsupported> {
    stacked(spec, weights).map(|(s, notes)| (s.arch, notes))
}

fn stacked(spec: &ModelSpec, weights: WeightType) -> Result<(Stacked, Vec<String>), Unsupported> {
    let layers = spec.layers();
    let attentions: Vec<Attention> = attentions(&layers);
    let has = |f: &dyn Fn(&Mixer) -> bool| layers.iter().any(|l| f(&l.mixer));
    if has(&|m| *m == Mixer::None) {
        return Err(no(
            "FFN-only layers: no llama.cpp architecture tailor writes has a layer without a mixer",
        ));
    }
    let Some(&attention) = attentions.first() else {
        return Err(no(
            "a stack without attention layers: the llama.cpp architectures tailor writes all have some",
        ));
    };
    let arch = match spec.layout() {
        // llama.cpp's `lfm2` aborts without a conv layer (its recurrent cache is empty);
        // attention-only, the layers are `qwen3`'s.
        Layout::Lfm2 if has(&|m| matches!(m, Mixer::ShortConv(_))) => Arch::Lfm2,
        Layout::Lfm2 => Arch::Qwen3,
        Layout::Gemma3 => Arch::Gemma3,
        Layout::Llama if has(&|m| matches!(m, Mixer::LinearAttention(_))) => Arch::Qwen35,
        Layout::Llama if attention.qk_norm => Arch::Qwen3,
        Layout::Llama => Arch::Smollm3,
    };
    let a = arch.name();
    let mixers_ok = layers.iter().all(|l| {
        matches!(
            (arch, l.mixer),
            (_, Mixer::Attention(_))
                | (Arch::Lfm2, Mixer::ShortConv(_))
                | (Arch::Qwen35, Mixer::LinearAttention(_))
        )
    });
    if !mixers_ok {
        return Err(no(format!(
            "llama.cpp's `{a}` has attention{} layers only",
            match arch {
                Arch::Lfm2 => " and short_conv",
                Arch::Qwen35 => " and linear_attention",
                _ => "",
            }
        )));
    }
    if spec.norm != NormKind::RmsNorm || spec.norm_bias {
        return Err(no(format!("llama.cpp's `{a}` uses RMSNorm without bias")));
    }
    let ffn = layers[0]
        .ffn
        .ok_or_else(|| no(format!("llama.cpp's `{a}` has an FFN in every layer")))?;
    if layers.iter().any(|l| l.ffn != Some(ffn)) {
        return Err(no(format!(
            "llama.cpp's `{a}` has one FFN width for every layer (`feed_forward_length`)"
        )));
    }
    if ffn.kind != FfnKind::Gated || ffn.bias {
        return Err(no(format!(
            "llama.cpp's `{a}` has a gated FFN without biases"
        )));
    }
    let same = |x: &Attention| {
        (x.heads, x.kv_heads, x.head_dim, x.qk_norm, x.output_gate)
            == (
                attention.heads,
                attention.kv_heads,
                attention.head_dim,
                attention.qk_norm,
                attention.output_gate,
            )
    };
    if !attentions.iter().all(same) {
        return Err(no(format!(
            "llama.cpp's `{a}` gives every attention layer the first one's heads, head_dim, q/k \
             norms and gate"
        )));
    }
    if attentions.iter().any(|x| x.qkv_bias || x.o_bias) {
        return Err(no(format!(
            "attention biases: tailor writes `{a}` without them"
        )));
    }
    let (qk_norm, gate) = match arch {
        Arch::Smollm3 => (false, false),
        Arch::Qwen35 => (true, true),
        _ => (true, false),
    };
    if attention.qk_norm != qk_norm || attention.output_gate != gate {
        return Err(no(format!(
            "llama.cpp's `{a}` attention has {}q/k norms and {}output gate",
            if qk_norm { "" } else { "no " },
            if gate { "an " } else { "no " }
        )));
    }
    let windows: Vec<u64> = attentions.iter().filter_map(|x| x.window).collect();
    if arch != Arch::Gemma3 && !windows.is_empty() {
        return Err(no(format!(
            "sliding windows: tailor writes them as `gemma3` only, and this spec is `{a}`"
        )));
    }
    if windows.iter().any(|&w| w != windows[0]) {
        return Err(no(
            "several window sizes: llama.cpp's `gemma3` has one `sliding_window`",
        ));
    }
    if arch != Arch::Smollm3 && attentions.iter().any(|x| !x.rope) {
        return Err(no(format!(
            "attention without RoPE: llama.cpp's `{a}` rotates every attention layer"
        )));
    }
    if arch == Arch::Lfm2 && attention.heads * attention.head_dim != spec.hidden_size {
        return Err(no(format!(
            "heads x head_dim = {} differs from hidden_size {}: llama.cpp's `lfm2` sizes q and \
             the output projection hidden x hidden",
            attention.heads * attention.head_dim,
            spec.hidden_size
        )));
    }
    let convs: Vec<ShortConv> = short_convs(&layers);
    if convs.iter().any(|c| *c != convs[0]) || convs.first().is_some_and(|c| c.bias || c.kernel < 2)
    {
        return Err(no(
            "llama.cpp's `lfm2` has one conv kernel (2 or more taps) and no conv biases",
        ));
    }
    let linears: Vec<LinearAttention> = linear_attentions(&layers);
    if let Some(l) = linears.first() {
        if linears.iter().any(|x| x != l) {
            return Err(no(
                "llama.cpp's `qwen35` has one linear-attention shape for all its linear layers",
            ));
        }
        if l.key_head_dim != l.value_head_dim {
            return Err(no(format!(
                "key_head_dim {} differs from value_head_dim {}: llama.cpp's `qwen35` has one \
                 head width for both (`ssm.state_size`)",
                l.key_head_dim, l.value_head_dim
            )));
        }
    }
    let per = weights.ggml().block().0;
    if per > 1 {
        for (what, n) in [
            ("hidden_size", spec.hidden_size),
            ("intermediate_size", ffn.width),
            ("heads x head_dim", attention.q_width()),
        ] {
            if n % per != 0 {
                return Err(no(format!(
                    "{what} = {n} is not a multiple of {per}, the block length of {weights}"
                )));
            }
        }
        if let Some(l) = linears.first()
            && l.value_width() % per != 0
        {
            return Err(no(format!(
                "value_heads x value_head_dim = {} is not a multiple of {per}, the block length \
                 of {weights}",
                l.value_width()
            )));
        }
    }
    let mut notes = Vec::new();
    if spec.layout() == Layout::Lfm2 && arch != Arch::Lfm2 {
        notes.push(
            "an lfm2 stack without short convolutions is timed as llama.cpp's `qwen3` (its \
             `lfm2` needs a conv layer; the tensors are the same)"
                .into(),
        );
    }
    if ffn.activation != arch.activation() {
        notes.push(format!(
            "activation {} timed as {} (llama.cpp's `{a}`; one elementwise pass either way)",
            ffn.activation,
            arch.activation()
        ));
    }
    if arch == Arch::Smollm3 {
        // llama.cpp skips RoPE on layer i iff (i + 1) % 4 == 0, whatever the spec says.
        let fixed = |i: usize| !(i + 1).is_multiple_of(4);
        let differs = layers
            .iter()
            .enumerate()
            .any(|(i, l)| matches!(l.mixer, Mixer::Attention(x) if x.rope != fixed(i)));
        if differs {
            notes.push(
                "RoPE timed on every layer but each 4th (llama.cpp's `smollm3` rule), not the \
                 spec's layers"
                    .into(),
            );
        }
    }
    let ffn_width = ffn.width;
    Ok((
        Stacked {
            arch,
            layers,
            attention,
            ffn_width,
        },
        notes,
    ))
}

/// The header (metadata and tensors) of `spec` in its architecture's file, and the notes.
pub fn header(
    spec: &ModelSpec,
    weights: WeightType,
    name: &str,
) -> Result<(Header, Vec<String>), Unsupported> {
    let (s, notes) = stacked(spec, weights)?;
    let i32_of = |v: u64| i32::try_from(v).unwrap_or(i32::MAX);
    let p = s.arch.name();
    let at = s.attention;
    let mut meta = base_metadata(p, name, weights, spec, s.ffn_width, at.heads)?;
    let mut kv = |k: &str, v: Value| meta.push((format!("{p}.{k}"), v));
    let d = u32_of("head_dim", at.head_dim)?;
    match s.arch {
        Arch::Lfm2 => {
            // A conv layer is one with no kv heads.
            let kv_heads = s
                .layers
                .iter()
                .map(|l| match l.mixer {
                    Mixer::Attention(x) => i32_of(x.kv_heads),
                    _ => 0,
                })
                .collect();
            kv("attention.head_count_kv", Value::I32s(kv_heads));
            let kernel = s.layers.iter().find_map(|l| match l.mixer {
                Mixer::ShortConv(c) => Some(c.kernel),
                _ => None,
            });
            kv(
                "shortconv.l_cache",
                Value::U32(u32_of("kernel", kernel.unwrap_or(3))?),
            );
        }
        _ => {
            kv(
                "attention.head_count_kv",
                Value::U32(u32_of("kv_heads", at.kv_heads)?),
            );
            kv("attention.key_length", Value::U32(d));
            kv("attention.value_length", Value::U32(d));
        }
    }
    match s.arch {
        Arch::Qwen3 | Arch::Smollm3 => kv("rope.dimension_count", Value::U32(d)),
        Arch::Gemma3 => {
            let window = s.layers.iter().find_map(|l| match l.mixer {
                Mixer::Attention(x) => x.window,
                _ => None,
            });
            if let Some(w) = window {
                kv("attention.sliding_window", Value::U32(u32_of("window", w)?));
                let swa = s
                    .layers
                    .iter()
                    .map(|l| {
                        i32::from(matches!(l.mixer, Mixer::Attention(x) if x.window.is_some()))
                    })
                    .collect();
                kv("attention.sliding_window_pattern", Value::I32s(swa));
                kv("rope.freq_base_swa", Value::F32(10_000.0));
            }
        }
        Arch::Qwen35 => {
            // Full rotation (what tailor counts); the sections only split positions of
            // images, and text uses one.
            kv("rope.dimension_count", Value::U32(d));
            kv(
                "rope.dimension_sections",
                Value::I32s(vec![i32_of(at.head_dim / 2), 0, 0, 0]),
            );
            let l = s
                .layers
                .iter()
                .find_map(|l| match l.mixer {
                    Mixer::LinearAttention(x) => Some(x),
                    _ => None,
                })
                .ok_or_else(|| no("qwen35 without a linear-attention layer"))?;
            kv(
                "ssm.conv_kernel",
                Value::U32(u32_of("conv_kernel", l.conv_kernel)?),
            );
            kv(
                "ssm.inner_size",
                Value::U32(u32_of("value width", l.value_width())?),
            );
            kv(
                "ssm.state_size",
                Value::U32(u32_of("key_head_dim", l.key_head_dim)?),
            );
            kv(
                "ssm.time_step_rank",
                Value::U32(u32_of("value_heads", l.value_heads)?),
            );
            kv(
                "ssm.group_count",
                Value::U32(u32_of("key_heads", l.key_heads)?),
            );
            let recurrent = s
                .layers
                .iter()
                .map(|l| i32::from(matches!(l.mixer, Mixer::LinearAttention(_))))
                .collect();
            kv("attention.recurrent_layers", Value::I32s(recurrent));
        }
        Arch::Lfm2 => {}
    }
    // No tokenizer: llama.cpp makes `vocab_size` dummy tokens.
    meta.push(("tokenizer.ggml.model".into(), Value::String("none".into())));

    let (n, v) = (spec.hidden_size, spec.vocab_size);
    let matrix = weights.ggml();
    let mut t: Vec<TensorDesc> = Vec::new();
    let mut put =
        |name: String, dims: Vec<u64>, ty: GgmlType| t.push(TensorDesc { name, dims, ty });
    put("token_embd.weight".into(), vec![n, v], matrix);
    let final_norm = if s.arch == Arch::Lfm2 {
        "token_embd_norm.weight"
    } else {
        "output_norm.weight"
    };
    put(final_norm.into(), vec![n], GgmlType::F32);
    if !spec.tie_embeddings {
        put("output.weight".into(), vec![n, v], matrix);
    }
    let f = s.ffn_width;
    for (i, layer) in s.layers.iter().enumerate() {
        let b = |x: &str| format!("blk.{i}.{x}");
        put(b("attn_norm.weight"), vec![n], GgmlType::F32);
        match layer.mixer {
            Mixer::Attention(x) => {
                let q_out = if x.output_gate { 2 } else { 1 } * x.q_width();
                put(b("attn_q.weight"), vec![n, q_out], matrix);
                put(b("attn_k.weight"), vec![n, x.kv_width()], matrix);
                put(b("attn_v.weight"), vec![n, x.kv_width()], matrix);
                put(b("attn_output.weight"), vec![x.q_width(), n], matrix);
                if x.qk_norm {
                    put(b("attn_q_norm.weight"), vec![x.head_dim], GgmlType::F32);
                    put(b("attn_k_norm.weight"), vec![x.head_dim], GgmlType::F32);
                }
                if s.arch == Arch::Gemma3 {
                    put(b("post_attention_norm.weight"), vec![n], GgmlType::F32);
                }
            }
            Mixer::ShortConv(c) => {
                put(b("shortconv.conv.weight"), vec![c.kernel, n], GgmlType::F32);
                put(b("shortconv.in_proj.weight"), vec![n, 3 * n], matrix);
                put(b("shortconv.out_proj.weight"), vec![n, n], matrix);
            }
            Mixer::LinearAttention(l) => {
                let (ch, vd, hv) = (l.conv_channels(), l.value_width(), l.value_heads);
                put(b("attn_qkv.weight"), vec![n, ch], matrix);
                put(b("attn_gate.weight"), vec![n, vd], matrix);
                put(
                    b("ssm_conv1d.weight"),
                    vec![l.conv_kernel, ch],
                    GgmlType::F32,
                );
                put(b("ssm_dt.bias"), vec![hv], GgmlType::F32);
                put(b("ssm_a"), vec![hv], GgmlType::F32);
                put(b("ssm_beta.weight"), vec![n, hv], matrix);
                put(b("ssm_alpha.weight"), vec![n, hv], matrix);
                put(b("ssm_norm.weight"), vec![l.value_head_dim], GgmlType::F32);
                put(b("ssm_out.weight"), vec![vd, n], matrix);
            }
            Mixer::None => {}
        }
        let ffn_norm = if s.arch == Arch::Qwen35 {
            "post_attention_norm.weight"
        } else {
            "ffn_norm.weight"
        };
        put(b(ffn_norm), vec![n], GgmlType::F32);
        put(b("ffn_gate.weight"), vec![n, f], matrix);
        put(b("ffn_up.weight"), vec![n, f], matrix);
        put(b("ffn_down.weight"), vec![f, n], matrix);
        if s.arch == Arch::Gemma3 {
            put(b("post_ffw_norm.weight"), vec![n], GgmlType::F32);
        }
    }
    Ok((
        Header {
            metadata: meta,
            tensors: t,
        },
        notes,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn fixture(file: &str) -> ModelSpec {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec/tests/fixtures");
        tailor_spec::load_spec(&dir.join(file)).unwrap().spec
    }

    #[test]
    fn published_shapes_are_written_with_their_exact_counts() {
        for (file, arch) in [
            ("lfm2-350m.config.json", Arch::Lfm2),
            ("lfm2-2.6b.config.json", Arch::Lfm2),
            ("gemma-3-270m.config.json", Arch::Gemma3),
            ("gemma-3-1b.config.json", Arch::Gemma3),
            ("qwen3-0.6b.config.json", Arch::Qwen3),
            ("qwen3.5-0.8b.config.json", Arch::Qwen35),
            ("smollm3-3b.config.json", Arch::Smollm3),
        ] {
            let spec = fixture(file);
            for wt in [WeightType::F32, WeightType::Q4_0] {
                let (
                    Header {
                        metadata: meta,
                        tensors,
                    },
                    notes,
                ) = header(&spec, wt, "t").unwrap();
                assert_eq!(arch_of(&spec, wt).unwrap().0, arch, "{file}");
                assert!(notes.is_empty(), "{file}: {notes:?}");
                let n: u64 = tensors.iter().map(TensorDesc::numel).sum();
                assert_eq!(n, spec.total_params(), "{file} {wt}");
                assert!(
                    meta.iter().any(|(k, v)| k == "general.architecture"
                        && *v == Value::String(arch.name().into()))
                );
                // Every key but the general ones and the tokenizer's carries the prefix.
                assert!(meta.iter().all(|(k, _)| k.starts_with("general.")
                    || k.starts_with("tokenizer.")
                    || k.starts_with(&format!("{}.", arch.name()))));
                // Names are distinct (llama.cpp looks tensors up by name).
                let mut names: Vec<&str> = tensors.iter().map(|t| t.name.as_str()).collect();
                names.sort_unstable();
                names.dedup();
                assert_eq!(names.len(), tensors.len(), "{file}");
            }
        }
    }

    #[test]
    fn conv_kernels_stay_f32_and_lfm2_names_its_final_norm() {
        let spec = fixture("lfm2-350m.config.json");
        let (
            Header {
                metadata: meta,
                tensors,
            },
            _,
        ) = header(&spec, WeightType::Q4_0, "t").unwrap();
        let conv = tensors
            .iter()
            .find(|t| t.name == "blk.0.shortconv.conv.weight")
            .unwrap();
        assert_eq!((conv.dims.clone(), conv.ty), (vec![3, 1024], GgmlType::F32));
        assert!(tensors.iter().any(|t| t.name == "token_embd_norm.weight"));
        assert!(!tensors.iter().any(|t| t.name == "output_norm.weight"));
        assert!(
            !tensors.iter().any(|t| t.name == "blk.0.attn_q.weight"),
            "conv layer 0"
        );
        let kv = meta
            .iter()
            .find(|(k, _)| k == "lfm2.attention.head_count_kv")
            .unwrap();
        assert_eq!(
            kv.1,
            Value::I32s(vec![0, 0, 8, 0, 0, 8, 0, 0, 8, 0, 8, 0, 8, 0, 8, 0])
        );
    }

    #[test]
    fn what_no_architecture_runs_is_refused_by_name() {
        let mut spec = fixture("lfm2-350m.config.json");
        // q wider than hidden: llama.cpp's lfm2 sizes q hidden x hidden.
        spec.stack
            .as_mut()
            .unwrap()
            .kinds
            .get_mut("attn")
            .unwrap()
            .head_dim = Some(128);
        let e = arch_of(&spec, WeightType::F32).unwrap_err().0;
        assert!(
            e.contains("sizes q and the output projection hidden x hidden"),
            "{e}"
        );
        let mut spec = fixture("qwen3.5-0.8b.config.json");
        spec.stack
            .as_mut()
            .unwrap()
            .kinds
            .get_mut("linear")
            .unwrap()
            .value_head_dim = Some(64);
        let e = arch_of(&spec, WeightType::F32).unwrap_err().0;
        assert!(e.contains("one head width for both"), "{e}");
        let mut spec = fixture("smollm3-3b.config.json");
        spec.stack.as_mut().unwrap().pattern = vec!["nope".into(), "rope".into()];
        let (_, notes) = arch_of(&spec, WeightType::F32).unwrap();
        assert!(notes[0].contains("llama.cpp's `smollm3` rule"), "{notes:?}");
    }
}
