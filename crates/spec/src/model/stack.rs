//! A [`Stack`] resolved against the model it belongs to: each layer kind as a [`Layer`]
//! whose unset fields take the model's values, the stack's checks, and the layers of a
//! [`ModelSpec`] one by one (the uniform dense stack when it has no [`Stack`]).

use super::ModelSpec;
use crate::layers::{
    Attention, Ffn, FfnChoice, Layer, LayerKind, Layout, LinearAttention, MAX_KERNEL, Mixer,
    MixerKind, ShortConv, Stack, StackInvalid,
};
use crate::primitives::{FfnKind, MAX_HEADS, MAX_WIDTH};

fn bad(key: impl Into<String>, message: impl Into<String>) -> StackInvalid {
    StackInvalid {
        key: key.into(),
        message: message.into(),
    }
}

impl Stack {
    /// Resolves one kind against the model's defaults.
    pub fn resolve(&self, name: &str, model: &ModelSpec) -> Result<Layer, StackInvalid> {
        let kind = self.kinds.get(name).ok_or_else(|| {
            bad(
                "stack.pattern",
                format!(
                    "layer kind \"{name}\" is not defined; define it under [model.stack.kinds.{name}] \
                     (defined: {})",
                    self.kinds.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )
        })?;
        resolve_kind(name, kind, model)
    }

    /// Checks the stack against the model: pattern, indices and every kind.
    pub fn validate(&self, model: &ModelSpec) -> Result<(), StackInvalid> {
        if self.pattern.is_empty() {
            return Err(bad(
                "stack.pattern",
                "is empty; list the layer kinds, e.g. [\"conv\", \"conv\", \"attn\"]",
            ));
        }
        if self.pattern.len() as u64 > model.num_layers {
            return Err(bad(
                "stack.pattern",
                format!(
                    "lists {} layers but num_layers is {}; the pattern repeats up to num_layers, \
                     so it may be shorter, not longer",
                    self.pattern.len(),
                    model.num_layers
                ),
            ));
        }
        for (kind, indices) in &self.at {
            if !self.kinds.contains_key(kind) {
                return Err(bad(
                    format!("stack.at.{kind}"),
                    format!("layer kind \"{kind}\" is not defined under [model.stack.kinds]"),
                ));
            }
            if let Some(i) = indices.iter().find(|&&i| i >= model.num_layers) {
                return Err(bad(
                    format!("stack.at.{kind}"),
                    format!(
                        "layer index {i} is out of range: layers are numbered 0 to {}",
                        model.num_layers - 1
                    ),
                ));
            }
        }
        for name in &self.pattern {
            self.resolve(name, model)?;
        }
        for (name, kind) in &self.kinds {
            resolve_kind(name, kind, model)?;
        }
        if let Some(unused) = self
            .kinds
            .keys()
            .find(|k| !self.kind_names(model.num_layers).contains(&k.as_str()))
        {
            return Err(bad(
                format!("stack.kinds.{unused}"),
                "is defined but no layer uses it; add it to `pattern` or `at`, or remove it",
            ));
        }
        if self.layout == Layout::Lfm2 {
            // LFM2's attention is fixed: q/k norms, no biases, RoPE, global.
            for (name, kind) in &self.kinds {
                if let Ok(Layer {
                    mixer: Mixer::Attention(a),
                    ..
                }) = resolve_kind(name, kind, model)
                    && (!a.qk_norm || a.output_gate || a.qkv_bias || a.o_bias)
                {
                    return Err(bad(
                        format!("stack.kinds.{name}"),
                        "LFM2's attention has q/k norms, no output gate and no biases; \
                         set qk_norm = true and leave the rest unset, or use layout = \"llama\"",
                    ));
                }
            }
        }
        Ok(())
    }
}

fn resolve_kind(name: &str, k: &LayerKind, m: &ModelSpec) -> Result<Layer, StackInvalid> {
    let key = |field: &str| format!("stack.kinds.{name}.{field}");
    let mixer_kind = k.mixer.ok_or_else(|| {
        bad(
            key("mixer"),
            "is missing; one of attention, short_conv, linear_attention, none",
        )
    })?;
    let not_for = |field: &str, set: bool| -> Result<(), StackInvalid> {
        if set {
            Err(bad(
                key(field),
                format!("does not apply to a {mixer_kind} mixer; remove it"),
            ))
        } else {
            Ok(())
        }
    };
    let attention_fields = [
        ("heads", k.heads.is_some()),
        ("kv_heads", k.kv_heads.is_some()),
        ("head_dim", k.head_dim.is_some()),
        ("rope", k.rope.is_some()),
        ("qk_norm", k.qk_norm.is_some()),
        ("output_gate", k.output_gate.is_some()),
        ("window", k.window.is_some()),
    ];
    let conv_fields = [
        ("kernel", k.kernel.is_some()),
        ("conv_bias", k.conv_bias.is_some()),
    ];
    let linear_fields = [
        ("key_heads", k.key_heads.is_some()),
        ("value_heads", k.value_heads.is_some()),
        ("key_head_dim", k.key_head_dim.is_some()),
        ("value_head_dim", k.value_head_dim.is_some()),
        ("conv_kernel", k.conv_kernel.is_some()),
    ];
    let refuse = |fields: &[(&str, bool)]| -> Result<(), StackInvalid> {
        fields.iter().try_for_each(|&(f, set)| not_for(f, set))
    };
    let in_range = |field: &str, v: u64, max: u64| -> Result<u64, StackInvalid> {
        if v == 0 {
            Err(bad(key(field), "must be at least 1"))
        } else if v > max {
            Err(bad(
                key(field),
                format!("{v} is above the supported maximum {max}"),
            ))
        } else {
            Ok(v)
        }
    };
    let mixer = match mixer_kind {
        MixerKind::Attention => {
            refuse(&conv_fields)?;
            refuse(&linear_fields)?;
            let heads = in_range("heads", k.heads.unwrap_or(m.num_heads), MAX_HEADS)?;
            let kv_heads = in_range("kv_heads", k.kv_heads.unwrap_or(m.num_kv_heads), MAX_HEADS)?;
            let head_dim = in_range("head_dim", k.head_dim.unwrap_or(m.head_dim()), MAX_WIDTH)?;
            if !heads.is_multiple_of(kv_heads) {
                return Err(bad(
                    key("kv_heads"),
                    format!("{kv_heads} key/value heads do not divide {heads} heads"),
                ));
            }
            let rope = k.rope.unwrap_or(true);
            if rope && !head_dim.is_multiple_of(2) {
                return Err(bad(
                    key("head_dim"),
                    format!("head_dim {head_dim} is odd; RoPE rotates pairs of channels"),
                ));
            }
            if heads * head_dim * 2 > MAX_WIDTH {
                return Err(bad(
                    key("head_dim"),
                    format!("heads * head_dim is above the supported maximum {MAX_WIDTH}"),
                ));
            }
            let window = match k.window {
                Some(w) => Some(in_range("window", w, 1 << 24)?),
                None => None,
            };
            Mixer::Attention(Attention {
                heads,
                kv_heads,
                head_dim,
                rope,
                qk_norm: k.qk_norm.unwrap_or(false),
                output_gate: k.output_gate.unwrap_or(false),
                window,
                qkv_bias: m.qkv_bias,
                o_bias: m.o_bias,
            })
        }
        MixerKind::ShortConv => {
            refuse(&attention_fields)?;
            refuse(&linear_fields)?;
            Mixer::ShortConv(ShortConv {
                kernel: in_range("kernel", k.kernel.unwrap_or(3), MAX_KERNEL)?,
                bias: k.conv_bias.unwrap_or(false),
            })
        }
        MixerKind::LinearAttention => {
            refuse(&attention_fields)?;
            refuse(&conv_fields)?;
            let need = |field: &str, v: Option<u64>, max: u64| {
                let v = v.ok_or_else(|| bad(key(field), "is missing; a linear_attention kind needs key_heads, value_heads, key_head_dim, value_head_dim and conv_kernel"))?;
                in_range(field, v, max)
            };
            let l = LinearAttention {
                key_heads: need("key_heads", k.key_heads, MAX_HEADS)?,
                value_heads: need("value_heads", k.value_heads, MAX_HEADS)?,
                key_head_dim: need("key_head_dim", k.key_head_dim, MAX_WIDTH)?,
                value_head_dim: need("value_head_dim", k.value_head_dim, MAX_WIDTH)?,
                conv_kernel: need("conv_kernel", k.conv_kernel, MAX_KERNEL)?,
            };
            if !l.value_heads.is_multiple_of(l.key_heads) {
                return Err(bad(
                    key("key_heads"),
                    format!(
                        "{} key heads do not divide {} value heads (each group of value heads \
                         shares one key head)",
                        l.key_heads, l.value_heads
                    ),
                ));
            }
            if l.conv_channels() > MAX_WIDTH {
                return Err(bad(
                    key("value_heads"),
                    format!("q, k and v together are above the supported width {MAX_WIDTH}"),
                ));
            }
            Mixer::LinearAttention(l)
        }
        MixerKind::None => {
            refuse(&attention_fields)?;
            refuse(&conv_fields)?;
            refuse(&linear_fields)?;
            Mixer::None
        }
    };
    let ffn_kind = match k.ffn {
        None => Some(m.ffn),
        Some(FfnChoice::Gated) => Some(FfnKind::Gated),
        Some(FfnChoice::Plain) => Some(FfnKind::Plain),
        Some(FfnChoice::None) => None,
    };
    let ffn = match ffn_kind {
        Some(kind) => Some(Ffn {
            kind,
            width: in_range(
                "ffn_width",
                k.ffn_width.unwrap_or(m.intermediate_size),
                MAX_WIDTH,
            )?,
            activation: m.activation,
            bias: m.mlp_bias,
        }),
        None => {
            not_for("ffn_width", k.ffn_width.is_some())?;
            None
        }
    };
    if mixer == Mixer::None && ffn.is_none() {
        return Err(bad(
            key("ffn"),
            "a layer with neither a mixer nor an FFN does nothing; give it one",
        ));
    }
    Ok(Layer { mixer, ffn })
}

impl ModelSpec {
    /// The stack as one letter per layer ([`Mixer::letter`]), e.g. `CCACCACCACACACAC`.
    pub fn pattern_picture(&self) -> String {
        match &self.stack {
            None => "A".repeat(self.num_layers as usize),
            Some(_) => self.layers().iter().map(|l| l.mixer.letter()).collect(),
        }
    }
}

impl ModelSpec {
    /// The dense layer the flat fields describe (every layer of a spec without a stack).
    pub fn dense_layer(&self) -> Layer {
        Layer {
            mixer: Mixer::Attention(Attention {
                heads: self.num_heads,
                kv_heads: self.num_kv_heads,
                head_dim: self.head_dim(),
                rope: true,
                qk_norm: false,
                output_gate: false,
                window: None,
                qkv_bias: self.qkv_bias,
                o_bias: self.o_bias,
            }),
            ffn: Some(Ffn {
                kind: self.ffn,
                width: self.intermediate_size,
                activation: self.activation,
                bias: self.mlp_bias,
            }),
        }
    }

    /// The tensor layout (Llama's without a stack).
    pub fn layout(&self) -> Layout {
        self.stack.as_ref().map_or(Layout::Llama, |s| s.layout)
    }

    /// Distinct layers with how many times each occurs, in order of first occurrence
    /// (one group for the dense stack). The spec must be valid.
    pub fn layer_groups(&self) -> Vec<(Layer, u64)> {
        let Some(stack) = &self.stack else {
            return vec![(self.dense_layer(), self.num_layers)];
        };
        let mut groups: Vec<(Layer, u64)> = Vec::new();
        for name in stack.kind_names(self.num_layers) {
            let Ok(layer) = stack.resolve(name, self) else {
                continue;
            };
            match groups.iter_mut().find(|(l, _)| *l == layer) {
                Some((_, n)) => *n += 1,
                None => groups.push((layer, 1)),
            }
        }
        groups
    }

    /// Every layer, in order. The spec must be valid.
    pub fn layers(&self) -> Vec<Layer> {
        match &self.stack {
            None => vec![self.dense_layer(); self.num_layers as usize],
            Some(stack) => stack
                .kind_names(self.num_layers)
                .into_iter()
                .filter_map(|n| stack.resolve(n, self).ok())
                .collect(),
        }
    }

    /// What keeps this spec from being priced by a cost model that knows only the uniform
    /// dense stack, named: `None` when it is that stack.
    pub fn beyond_dense(&self) -> Option<String> {
        let stack = self.stack.as_ref()?;
        let mut what = Vec::new();
        for (layer, n) in self.layer_groups() {
            let of = |s: &str| format!("{n} layer(s) with {s}");
            match layer.mixer {
                Mixer::Attention(a) => {
                    if a.window.is_some() {
                        what.push(of("sliding-window attention"));
                    }
                    if a.qk_norm {
                        what.push(of("q/k norms"));
                    }
                    if a.output_gate {
                        what.push(of("an attention output gate"));
                    }
                    if !a.rope {
                        what.push(of("no RoPE"));
                    }
                }
                Mixer::ShortConv(_) => what.push(of("a short_conv mixer")),
                Mixer::LinearAttention(_) => what.push(of("a linear_attention mixer")),
                Mixer::None => what.push(of("no mixer")),
            }
            if layer.ffn.is_none() {
                what.push(of("no FFN"));
            }
        }
        if stack.layout != Layout::Llama {
            what.push(format!("the {} layout's norms", stack.layout));
        }
        let dense = self.dense_layer();
        if what.is_empty() && self.layer_groups().iter().any(|(l, _)| *l != dense) {
            what.push("layers whose heads or FFN width differ from the model's".into());
        }
        (!what.is_empty()).then(|| what.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use crate::spec_file::SpecFile;
    use std::path::PathBuf;

    const HYBRID: &str = r#"format_version = 1
[model]
vocab_size = 1000
hidden_size = 64
num_layers = 6
num_heads = 4
num_kv_heads = 2
intermediate_size = 128
ffn = "gated"
activation = "silu"
norm = "rmsnorm"
tie_embeddings = true

[model.stack]
layout = "llama"
pattern = ["conv", "conv", "attn"]

[model.stack.kinds.conv]
mixer = "short_conv"
kernel = 3

[model.stack.kinds.attn]
mixer = "attention"
window = 32
"#;

    fn parse(src: &str) -> Result<SpecFile, String> {
        SpecFile::parse(&PathBuf::from("my/spec.toml"), src).map_err(|e| e.to_string())
    }

    #[test]
    fn a_pattern_expands_and_counts_exactly() {
        let f = parse(HYBRID).unwrap();
        let m = &f.model;
        let groups = m.layer_groups();
        assert_eq!(groups.len(), 2);
        assert_eq!((groups[0].1, groups[1].1), (4, 2));
        // conv layer: in 3h*h + conv h*3 + out h*h + FFN 3*h*128 + 2 norms.
        let (h, f_) = (64u64, 128u64);
        let conv = 4 * h * h + 3 * h + 3 * h * f_ + 2 * h;
        // attention layer: q h*h, k and v h*32 each, o h*h, FFN, 2 norms.
        let attn = 2 * h * h + 2 * h * 32 + 3 * h * f_ + 2 * h;
        assert_eq!(m.params().total, 1000 * h + 4 * conv + 2 * attn + h);
        assert!(m.beyond_dense().unwrap().contains("short_conv"));
        assert_eq!(parse(&f.to_toml().unwrap()).unwrap(), f);
    }

    #[test]
    fn explicit_indices_win_over_the_pattern() {
        let src = HYBRID
            .replace(
                r#"pattern = ["conv", "conv", "attn"]"#,
                r#"pattern = ["conv"]"#,
            )
            .replace(
                "[model.stack.kinds.conv]",
                "at = { attn = [0, 5] }\n\n[model.stack.kinds.conv]",
            );
        let m = parse(&src).unwrap().model;
        let names = m.stack.as_ref().unwrap().kind_names(6);
        assert_eq!(names, ["attn", "conv", "conv", "conv", "conv", "attn"]);
    }

    #[test]
    fn stack_mistakes_name_their_key_and_line() {
        let e = parse(&HYBRID.replace("kernel = 3", "kernel = 3\nwindow = 8")).unwrap_err();
        assert!(
            e.contains("`model.stack.kinds.conv.window`: does not apply to a short_conv mixer"),
            "{e}"
        );
        let e = parse(&HYBRID.replace(r#""conv", "conv", "attn""#, r#""conv", "cnv", "attn""#))
            .unwrap_err();
        assert!(e.contains("layer kind \"cnv\" is not defined"), "{e}");
        let e = parse(&HYBRID.replace("window = 32", "window = 32\nkv_heads = 3")).unwrap_err();
        assert!(e.contains("`model.stack.kinds.attn.kv_heads`"), "{e}");
        assert!(e.starts_with("my/spec.toml:"), "{e}");
        let e = parse(
            &HYBRID
                .replace(
                    r#"mixer = "attention""#,
                    r#"mixer = "none"
ffn = "none""#,
                )
                .replace("window = 32\n", ""),
        )
        .unwrap_err();
        assert!(e.contains("neither a mixer nor an FFN"), "{e}");
        let e = parse(&HYBRID.replace(r#"["conv", "conv", "attn"]"#, r#"["conv", "conv"]"#))
            .unwrap_err();
        assert!(
            e.contains("`model.stack.kinds.attn`: is defined but no layer uses it"),
            "{e}"
        );
        let e = parse(
            &HYBRID
                .replace(r#"mixer = "short_conv""#, r#"mixer = "linear_attention""#)
                .replace("kernel = 3", "key_heads = 2"),
        )
        .unwrap_err();
        assert!(
            e.contains("`model.stack.kinds.conv.value_heads`: is missing"),
            "{e}"
        );
    }

    #[test]
    fn ffn_only_layers_and_no_rope() {
        let src = HYBRID
            .replace(
                r#"mixer = "short_conv"
kernel = 3"#,
                r#"mixer = "none""#,
            )
            .replace("window = 32", "rope = false");
        let m = parse(&src).unwrap().model;
        // FFN-only layer: its FFN and one norm.
        let (h, f_) = (64u64, 128u64);
        let ffn_only = 3 * h * f_ + h;
        let attn = 2 * h * h + 2 * h * 32 + 3 * h * f_ + 2 * h;
        assert_eq!(m.params().total, 1000 * h + 4 * ffn_only + 2 * attn + h);
        let what = m.beyond_dense().unwrap();
        assert!(
            what.contains("no mixer") && what.contains("no RoPE"),
            "{what}"
        );
    }

    #[test]
    fn a_spec_without_a_stack_is_the_dense_one() {
        let m = crate::ModelSpec::llama(1000, 64, 3, 4, 2, 128);
        assert_eq!(m.beyond_dense(), None);
        assert_eq!(m.layers(), vec![m.dense_layer(); 3]);
        assert!(!SpecFile::new(m).to_toml().unwrap().contains("stack"));
    }
}
