//! What `tailor spec` prints: one architecture's exact accounting (parameters, FLOPs,
//! weight bytes, KV cache, per-operator traffic), as the `--json` object and as tables.

use crate::fmt::{Table, bytes, si, thousands};
use serde::Serialize;
use tailor_spec::{NormKind, SpecSummary};

/// A spec's summary with where it came from.
#[derive(Debug, Clone, Serialize)]
pub struct SpecReport {
    #[serde(flatten)]
    pub summary: SpecSummary,
    /// The file, as the user named it.
    pub path: String,
    /// The model's name, when the file gives one.
    pub name: Option<String>,
}

impl SpecReport {
    /// The tables `tailor spec` prints.
    pub fn render(&self) -> String {
        let (title, path, s) = (
            self.name.as_deref().unwrap_or("model"),
            &self.path,
            &self.summary,
        );
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
        if m.stack.is_some() {
            out += &format!(
                "  {} layers x {} hidden, vocab {}, {norm}, {}\n  stack {}\n",
                m.num_layers,
                m.hidden_size,
                m.vocab_size,
                if m.tie_embeddings {
                    "tied embeddings"
                } else {
                    "untied LM head"
                },
                s.pattern
            );
            for l in &s.layers {
                out += &format!("  {:>4} x {}\n", l.count, l.layer);
            }
            out += "\n";
        } else {
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
        }

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
        if s.kv_cache.constant_state_bytes > 0 {
            out += &format!(
                "constant state (f32, conv and recurrent): {} per sequence\n",
                bytes(s.kv_cache.constant_state_bytes as f64)
            );
        }

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
}
