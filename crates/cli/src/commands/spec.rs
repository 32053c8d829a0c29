//! `tailor spec`: exact accounting of one architecture.

use crate::fmt::{Table, bytes, si, thousands};
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use tailor_spec::{DType, NormKind, Precision, SpecSummary, load_spec};

#[derive(Debug, Args)]
pub struct SpecArgs {
    /// A Hugging Face `config.json` (llama, mistral, qwen2, phonelm) or a tailor `spec.toml`.
    pub path: PathBuf,
    #[command(flatten)]
    pub workload: crate::args::WorkloadArgs,
    /// Weight storage type: f32, f16, bf16, int8, q4_0.
    #[arg(long, default_value = "f32", value_parser = parse_dtype)]
    pub dtype: DType,
    /// KV-cache storage type [default: the weight type; f16 for int8/q4_0 weights].
    #[arg(long, value_parser = parse_dtype)]
    pub kv_dtype: Option<DType>,
    /// Print one JSON object on stdout instead of tables.
    #[arg(long)]
    pub json: bool,
}

pub fn parse_dtype(s: &str) -> Result<DType, String> {
    DType::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = DType::ALL.iter().map(|d| d.name()).collect();
        format!("unknown dtype `{s}`; expected one of {}", names.join(", "))
    })
}

pub fn run(args: &SpecArgs) -> Result<()> {
    let loaded = load_spec(&args.path)?;
    let mut precision = Precision::for_weights(args.dtype);
    if let Some(kv) = args.kv_dtype {
        precision.kv_cache = kv;
    }
    let summary = SpecSummary::new(
        &loaded.spec,
        args.workload.prompt,
        args.workload.context,
        precision,
    );
    if args.json {
        let mut value = serde_json::to_value(&summary)?;
        if let Some(obj) = value.as_object_mut() {
            obj.insert("path".into(), args.path.display().to_string().into());
            obj.insert("name".into(), loaded.name.clone().into());
        }
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        let title = loaded.name.as_deref().unwrap_or("model");
        print!(
            "{}",
            render(title, &args.path.display().to_string(), &summary)
        );
    }
    Ok(())
}

fn render(title: &str, path: &str, s: &SpecSummary) -> String {
    let m = &s.spec;
    let attn = match (m.num_heads, m.num_kv_heads) {
        (h, kv) if h == kv => "MHA".to_string(),
        (_, 1) => "MQA".to_string(),
        (h, kv) => format!("GQA, groups of {}", h / kv),
    };
    let norm = match (m.norm, m.norm_bias) {
        (NormKind::LayerNorm, true) => "layernorm with bias".to_string(),
        (n, _) => n.to_string(),
    };
    let mut out = format!("{title} ({path})\n");
    out += &format!(
        "  {} layers x {} hidden, {} heads ({} kv, {attn}), head_dim {}, {} {} FFN {}, {norm}, \
         vocab {}, {}\n\n",
        m.num_layers,
        m.hidden_size,
        m.num_heads,
        m.num_kv_heads,
        s.head_dim,
        m.ffn,
        m.activation,
        m.intermediate_size,
        m.vocab_size,
        if m.tie_embeddings {
            "tied embeddings"
        } else {
            "untied LM head"
        }
    );

    let p = &s.params;
    let mut t = Table::new(&["parameters", "count", ""]);
    t.row(vec![
        "total".into(),
        thousands(p.total as u128),
        si(p.total as f64, ""),
    ]);
    t.row(vec![
        "non-embedding".into(),
        thousands(p.non_embedding as u128),
        si(p.non_embedding as f64, ""),
    ]);
    t.row(vec![
        "embedding".into(),
        thousands(p.embedding as u128),
        si(p.embedding as f64, ""),
    ]);
    t.row(vec![
        "lm_head".into(),
        thousands(p.lm_head as u128),
        if m.tie_embeddings {
            "(tied)".into()
        } else {
            si(p.lm_head as f64, "")
        },
    ]);
    for (name, n) in &p.by_component.0 {
        t.row(vec![
            format!("  {name}"),
            thousands(*n as u128),
            format!("{:.1}%", 100.0 * *n as f64 / p.total as f64),
        ]);
    }
    out += &t.render(0);

    let w = &s.workload;
    out += &format!(
        "\nworkload: prefill {} tokens, decode at context {}; weights {}, KV cache {}, activations {}\n",
        w.prompt_tokens,
        w.context,
        w.precision.weights,
        w.precision.kv_cache,
        w.precision.activations
    );
    let mut t = Table::new(&["pass", "matmul FLOPs", "bytes moved"]);
    t.row(vec![
        format!("prefill ({} tokens)", w.prompt_tokens),
        si(s.flops.prefill as f64, "FLOP"),
        bytes(s.flops.prefill_bytes as f64),
    ]);
    t.row(vec![
        format!("decode step (context {})", w.context),
        si(s.flops.decode as f64, "FLOP"),
        bytes(s.flops.decode_bytes as f64),
    ]);
    out += &t.render(0);

    let mut t = Table::new(&["weights", "bytes", ""]);
    for (dtype, b) in &s.weight_bytes.0 {
        t.row(vec![
            dtype.to_string(),
            thousands(*b as u128),
            bytes(*b as f64),
        ]);
    }
    out += "\n";
    out += &t.render(0);
    out += &format!(
        "\nKV cache ({}): {} per token, {} at context {}\n",
        s.kv_cache.dtype,
        bytes(s.kv_cache.bytes_per_token as f64),
        bytes(s.kv_cache.bytes_at_context as f64),
        w.context
    );

    out += "\ndecode step, per operator (x repeats):\n";
    let mut t = Table::new(&["operator", "x", "FLOPs", "read", "written"]);
    for op in &s.decode_operators {
        t.row(vec![
            op.name.to_string(),
            op.repeats.to_string(),
            thousands(op.flops),
            bytes(op.bytes_read as f64),
            bytes(op.bytes_written as f64),
        ]);
    }
    out += &t.render(2);
    out
}
