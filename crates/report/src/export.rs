//! What tailor leaves for people: the export of a spec for pre-training (config.json,
//! spec.toml, MODEL_CARD.md) and the report of a search run (report.md beside SVG plots).

use crate::ReportError;
use crate::fmt::{bytes, si, thousands};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tailor_cost::{Breakdown, Estimate, Fingerprint, Workload};
use tailor_search::Metrics;
use tailor_spec::families::{self, Family};
use tailor_spec::files::write_atomic;
use tailor_spec::{HfConfig, ModelSpec, ModelType, SpecFile, Unsupported};

/// Which `config.json` an export writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum Flavor {
    /// Stock transformers `LlamaForCausalLM` (`model_type: llama`): loads anywhere.
    Llama,
    /// PhoneLM's field set (`model_type: phonelm`, `PhoneLMForCausalLM`, mllmTeam's
    /// remote code).
    Phonelm,
    /// LFM2 (`lfm2`, `Lfm2ForCausalLM`): gated short convolutions and attention.
    Lfm2,
    /// Gemma 3 text (`gemma3_text`, `Gemma3ForCausalLM`): sliding-window and global
    /// attention, four norms a layer.
    Gemma3,
    /// Qwen3.5 text (`qwen3_5_text`, `Qwen3_5ForCausalLM`): Gated DeltaNet and gated
    /// attention.
    #[cfg_attr(feature = "clap", value(name = "qwen3_5"))]
    #[serde(rename = "qwen3_5")]
    Qwen35,
    /// Qwen3 (`qwen3`, `Qwen3ForCausalLM`): attention with q/k norms.
    Qwen3,
    /// SmolLM3 (`smollm3`, `SmolLM3ForCausalLM`): attention with RoPE or none per layer.
    Smollm3,
}

impl Flavor {
    /// The family a flavor writes, for the mixed-layer ones.
    pub fn family(self) -> Option<Family> {
        match self {
            Flavor::Llama | Flavor::Phonelm => None,
            Flavor::Lfm2 => Some(Family::Lfm2),
            Flavor::Gemma3 => Some(Family::Gemma3),
            Flavor::Qwen35 => Some(Family::Qwen35),
            Flavor::Qwen3 => Some(Family::Qwen3),
            Flavor::Smollm3 => Some(Family::Smollm3),
        }
    }

    /// The `model_type` written.
    pub fn name(self) -> &'static str {
        match self {
            Flavor::Llama => ModelType::Llama.name(),
            Flavor::Phonelm => ModelType::Phonelm.name(),
            f => f.family().map_or("", Family::name),
        }
    }

    /// The flavor a spec exports as when none is asked for: llama for the dense stack, else
    /// the first family that expresses it.
    pub fn natural(spec: &ModelSpec) -> Flavor {
        if spec.beyond_dense().is_none() {
            return Flavor::Llama;
        }
        let family = Family::expressing(spec).first().copied();
        [
            Flavor::Lfm2,
            Flavor::Gemma3,
            Flavor::Qwen35,
            Flavor::Qwen3,
            Flavor::Smollm3,
        ]
        .into_iter()
        .find(|f| f.family() == family)
        .unwrap_or(Flavor::Llama)
    }

    /// The config.json text of `spec` in this flavor, or what the flavor cannot express.
    pub fn config_json(self, spec: &ModelSpec) -> Result<String, Unsupported> {
        let mut text = match (self, self.family()) {
            (_, Some(family)) => {
                serde_json::to_string_pretty(&families::export(spec, family)?).unwrap_or_default()
            }
            (Flavor::Phonelm, None) => HfConfig::export(spec, ModelType::Phonelm)?.to_json_string(),
            _ => HfConfig::export(spec, ModelType::Llama)?.to_json_string(),
        };
        if !text.ends_with('\n') {
            text.push('\n');
        }
        Ok(text)
    }

    /// What loads this flavor's config.json, for the model card.
    fn loader(self) -> &'static str {
        match self {
            Flavor::Llama => "stock `LlamaForCausalLM`, no remote code",
            Flavor::Phonelm => {
                "`PhoneLMForCausalLM`: needs mllmTeam's PhoneLM modeling code, \
                 `trust_remote_code=True`"
            }
            Flavor::Lfm2 => "stock `Lfm2ForCausalLM` (transformers 4.54 or later)",
            Flavor::Gemma3 => "stock `Gemma3ForCausalLM`",
            Flavor::Qwen35 => "stock `Qwen3_5ForCausalLM` (transformers 5)",
            Flavor::Qwen3 => "stock `Qwen3ForCausalLM`",
            Flavor::Smollm3 => "stock `SmolLM3ForCausalLM`",
        }
    }
}

/// Which kind of cost model priced a prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CostKind {
    /// The sum of measured operator times of a burn profile (`tailor profile`).
    #[serde(rename = "profiled")]
    Profiled,
    /// A llama.cpp profile (`tailor profile --engine llama.cpp`).
    #[serde(rename = "llama.cpp")]
    LlamaCpp,
    /// The roofline model of a device file.
    #[serde(rename = "roofline")]
    Roofline,
}

impl CostKind {
    /// As written in files: `profiled`, `llama.cpp` or `roofline`.
    pub fn name(self) -> &'static str {
        match self {
            CostKind::Profiled => "profiled",
            CostKind::LlamaCpp => "llama.cpp",
            CostKind::Roofline => "roofline",
        }
    }

    /// Whether it was measured on the device (a profile), not derived from peaks.
    pub fn is_profile(self) -> bool {
        matches!(self, CostKind::Profiled | CostKind::LlamaCpp)
    }
}

impl std::fmt::Display for CostKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The cost model behind a prediction, as quoted in files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostSource {
    pub kind: CostKind,
    pub file: String,
    /// The device's name in that file.
    pub device: String,
    /// The measured setup (burn profiles only).
    pub fingerprint: Option<Fingerprint>,
    /// The measured setup of a llama.cpp profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llama_fingerprint: Option<tailor_llamacpp::LlamaFingerprint>,
    /// The profile's fixed subset re-timed on this machine before it was trusted (a burn
    /// profile used on the machine that made it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_check: Option<tailor_cost::Drift>,
    /// The level of whole models timed here that the profile's predictions were scaled to
    /// (`tailor run`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<tailor_cost::Level>,
}

/// How a search chose a spec.
#[derive(Debug, Clone)]
pub struct Chosen {
    pub space: String,
    pub space_path: String,
    pub strategy: String,
    pub seed: u64,
    pub budget: Option<u64>,
    pub id: u64,
    /// 1-based place on the front by the pick rule (1 = the pick).
    pub rank: usize,
    pub front_size: usize,
    /// `minimize decode_ms`.
    pub pick_rule: String,
    pub picked: bool,
}

/// What the model card of one exported spec says.
#[derive(Debug)]
pub struct Card<'a> {
    pub name: String,
    pub spec: &'a ModelSpec,
    pub flavor: Flavor,
    /// The prediction and its workload, when a cost model priced the spec.
    pub predicted: Option<(Workload, Estimate)>,
    pub cost: Option<CostSource>,
    pub chosen: Option<Chosen>,
    /// Proxies as the search computed them (Chinchilla loss needs the space's tokens).
    pub metrics: Option<Metrics>,
    /// Whole-model measurement on the profiled machine: (prefill ms, decode ms, memory).
    pub measured: Option<(f64, f64, Option<u64>)>,
    /// Over a set of devices: what prices each (in the order of `metrics.devices`).
    pub device_costs: Vec<CostSource>,
}

/// The card's section on every device of a set: each one's prediction of the model.
fn devices_md(m: &Metrics, costs: &[CostSource]) -> String {
    let mut out = format!(
        "\n## On each device\n\nThe model was chosen for {} devices at once; each one's \
         prediction, by its own cost model (the table above is the first's):\n\n",
        m.devices.len()
    );
    let rows: Vec<Vec<String>> = m
        .devices
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let x = &d.metrics;
            let cost = costs.get(i);
            vec![
                format!("`{}`", d.device),
                cost.map_or("-".into(), |c| format!("{} (`{}`)", c.kind, c.file)),
                x.prefill_ms.map_or("-".into(), |v| format!("{v:.2} ms")),
                x.decode_ms.map_or("-".into(), |v| format!("{v:.3} ms")),
                x.decode_ms
                    .map_or("-".into(), |v| format!("{:.1}", 1000.0 / v)),
                x.peak_memory_bytes.map_or("-".into(), |b| bytes(b as f64)),
                if d.feasible { "yes" } else { "no" }.into(),
            ]
        })
        .collect();
    out += &md_table(
        &[
            "device",
            "cost model",
            "prefill",
            "decode step",
            "tokens/s",
            "peak memory",
            "inside its limits",
        ],
        &rows,
    );
    if !m.across.is_empty() {
        let parts: Vec<String> = m
            .across
            .iter()
            .map(|a| format!("`{}` {:.3}", a.objective, a.value))
            .collect();
        out += &format!(
            "\nAcross devices (ratio to each device's best candidate): {}.\n",
            parts.join(", ")
        );
    }
    out
}

/// The files of one export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exported {
    pub dir: PathBuf,
    pub spec_toml: PathBuf,
    /// `None` when the flavor cannot express the spec (see `config_error`).
    pub config_json: Option<PathBuf>,
    pub config_error: Option<String>,
    pub model_card: PathBuf,
}

/// Writes spec.toml, config.json (when the flavor can express the spec) and MODEL_CARD.md
/// into `dir`, each atomically.
pub fn export(dir: &Path, card: &Card) -> Result<Exported, ReportError> {
    let spec_toml = dir.join("spec.toml");
    let mut file = SpecFile::new(card.spec.clone());
    file.name = Some(card.name.clone());
    file.source = Some(match &card.chosen {
        Some(c) => format!(
            "tailor search of {} ({}, seed {}), candidate {}",
            c.space_path, c.strategy, c.seed, c.id
        ),
        None => "tailor export".into(),
    });
    file.save(&spec_toml)?;
    let (config_json, config_error) = match card.flavor.config_json(card.spec) {
        Ok(text) => {
            let path = dir.join("config.json");
            write_atomic(&path, text.as_bytes())?;
            (Some(path), None)
        }
        Err(e) => (None, Some(e.to_string())),
    };
    let model_card = dir.join("MODEL_CARD.md");
    write_atomic(
        &model_card,
        model_card_md(card, config_error.as_deref()).as_bytes(),
    )?;
    Ok(Exported {
        dir: dir.to_path_buf(),
        spec_toml,
        config_json,
        config_error,
        model_card,
    })
}

/// A Markdown table.
pub(crate) fn md_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = format!("| {} |\n|", header.join(" | "));
    for _ in header {
        s += " --- |";
    }
    s.push('\n');
    for r in rows {
        s += &format!("| {} |\n", r.join(" | "));
    }
    s
}

pub(crate) fn yes(b: bool) -> String {
    if b { "yes".into() } else { "no".into() }
}

/// The share of each operator group, as `41% / 52% / 5% / 2%`.
fn shares(b: &Breakdown) -> String {
    let t = b.total_ms().max(f64::MIN_POSITIVE);
    format!(
        "{:.0}% / {:.0}% / {:.0}% / {:.0}%",
        100.0 * b.attention_ms / t,
        100.0 * b.ffn_ms / t,
        100.0 * b.lm_head_ms / t,
        100.0 * b.other_ms / t
    )
}

fn model_card_md(c: &Card, config_error: Option<&str>) -> String {
    let s = c.spec;
    let mut out = format!("# {}\n\n", c.name);
    out += &format!(
        "A decoder-only {} specified by tailor for pre-training: {} parameters ({} \
         non-embedding). Weights are not trained; this card describes the architecture, what \
         it is predicted to cost on the profiled device, and how it was chosen.\n\n",
        if s.stack.is_some() {
            "model with mixed layers (the stack below)"
        } else {
            "transformer (Llama/PhoneLM style)"
        },
        thousands(s.params().total as u128),
        thousands(s.params().non_embedding as u128)
    );
    out += "## Files\n\n";
    out += &match config_error {
        None => format!(
            "- `config.json`: Hugging Face config, flavor `{}` ({}). \
             `AutoConfig.from_pretrained(dir)` then `AutoModelForCausalLM.from_config(config)` \
             instantiates this exact architecture with fresh weights.\n",
            c.flavor.name(),
            c.flavor.loader()
        ),
        Some(e) => format!(
            "- no `config.json`: the `{}` flavor cannot express this spec ({e}).\n",
            c.flavor.name()
        ),
    };
    out += "- `spec.toml`: tailor's spec (`tailor spec spec.toml` prints its full accounting).\n\n";

    out += "## Architecture\n\n";
    let mut rows = vec![
        vec!["vocabulary".into(), s.vocab_size.to_string()],
        vec!["hidden size".into(), s.hidden_size.to_string()],
        vec!["layers".into(), s.num_layers.to_string()],
    ];
    if s.stack.is_some() {
        rows.push(vec![
            "stack (A global attention, S sliding window, N no RoPE, C short conv, L linear \
             attention, F FFN only)"
                .into(),
            format!("`{}`", s.pattern_picture()),
        ]);
        for (layer, n) in s.layer_groups() {
            rows.push(vec![format!("{n} layers"), layer.to_string()]);
        }
    }
    rows.extend([
        vec![
            "attention heads (query / key-value)".into(),
            format!(
                "{} / {} ({})",
                s.num_heads,
                s.num_kv_heads,
                match (s.num_kv_heads, s.gqa_group()) {
                    (1, _) if s.num_heads > 1 => "MQA".to_string(),
                    (_, 1) => "MHA".to_string(),
                    (_, g) => format!("GQA, {g} query heads per KV head"),
                }
            ),
        ],
        vec!["head dim".into(), s.head_dim().to_string()],
        vec![
            "FFN".into(),
            format!(
                "{} {}, intermediate size {} ({:.2} x hidden)",
                s.ffn,
                s.activation,
                s.intermediate_size,
                s.intermediate_size as f64 / s.hidden_size as f64
            ),
        ],
        vec!["norm".into(), format!("{} (eps {})", s.norm, s.norm_eps)],
        vec![
            "biases (qkv / o / mlp)".into(),
            format!(
                "{} / {} / {}",
                yes(s.qkv_bias),
                yes(s.o_bias),
                yes(s.mlp_bias)
            ),
        ],
        vec!["tied embeddings".into(), yes(s.tie_embeddings)],
        vec![
            "RoPE theta / max positions".into(),
            format!("{} / {}", s.rope_theta, s.max_position_embeddings),
        ],
    ]);
    out += &md_table(&["", ""], &rows);

    let p = s.params();
    out += "\n## Parameters (exact)\n\n";
    let mut rows = vec![
        vec!["total".into(), thousands(p.total as u128)],
        vec!["non-embedding".into(), thousands(p.non_embedding as u128)],
        vec![
            "LM head".into(),
            if s.tie_embeddings {
                "tied (0)".into()
            } else {
                thousands(p.lm_head as u128)
            },
        ],
    ];
    for (component, n) in &p.by_component {
        rows.push(vec![
            format!("`{}` (all layers)", component.name()),
            thousands(*n as u128),
        ]);
    }
    out += &md_table(&["", "parameters"], &rows);

    if let (Some((w, e)), Some(cost)) = (&c.predicted, &c.cost) {
        out += &format!(
            "\n## Predicted cost on {}\n\nPredicted by tailor's {} cost model from `{}`, \
             {} weights, batch 1.\n\n",
            cost.device, cost.kind, cost.file, w.precision.weights
        );
        let mut rows = vec![
            vec![
                format!("prefill ({} tokens)", w.prompt_tokens),
                format!("{:.2} ms", e.prefill_ms),
                format!("{:.0} tokens/s", e.prefill_tokens_per_s(w.prompt_tokens)),
            ],
            vec![
                format!("decode step (context {})", w.context),
                format!("{:.3} ms", e.decode_ms_per_token),
                format!("{:.1} tokens/s", e.decode_tokens_per_s()),
            ],
            vec![
                "peak memory".into(),
                bytes(e.peak_memory_bytes as f64),
                "weights + KV cache + live activations".into(),
            ],
        ];
        if let Some((prefill, decode, memory)) = c.measured {
            rows.push(vec![
                "measured prefill / decode / memory".into(),
                format!("{prefill:.2} ms / {decode:.3} ms"),
                memory.map_or("memory not measured".into(), |b| bytes(b as f64)),
            ]);
        }
        out += &md_table(&["", "", ""], &rows);
        out += &format!(
            "\nTime shares (attention / FFN / LM head / other): prefill {}, decode {}.\n",
            shares(&e.prefill_breakdown),
            shares(&e.decode_breakdown)
        );
        if let Some(m) = c
            .metrics
            .as_ref()
            .filter(|m| m.edit_zo_memory_bytes.is_some())
        {
            let ms = |v: Option<f64>| v.map_or("not priced".into(), |v| format!("{v:.1} ms"));
            let mem = |v: Option<u64>| v.map_or("-".into(), |b| bytes(b as f64));
            out += "\n### One on-device edit\n\nA ROME-style knowledge edit as the search \
                    space's `[workload.edit]` sets it (the prefix once, then every step), by \
                    MobiEdit's forward-only zeroth-order steps (zo) and by backpropagation \
                    (bp, f32):\n\n";
            out += &md_table(
                &["method", "whole edit", "peak memory"],
                &[
                    vec![
                        "zo (forward only)".into(),
                        ms(m.edit_zo_ms),
                        mem(m.edit_zo_memory_bytes),
                    ],
                    vec![
                        "bp (backpropagation)".into(),
                        ms(m.edit_bp_ms),
                        mem(m.edit_bp_memory_bytes),
                    ],
                ],
            );
        }
        if let Some(f) = &cost.fingerprint {
            out += &format!(
                "\nProfile fingerprint: backend `{}`, device `{}`, CPU `{}`, {} cores, {} \
                 threads, `{}`, {}, burn {}.\n",
                f.backend, f.device, f.cpu_model, f.cores, f.threads, f.os, f.dtype, f.burn_version
            );
        }
        if let Some(l) = &cost.level {
            out += &format!(
                "\nPredictions levelled to whole models timed on the device on {}: {}.\n",
                l.measured,
                l.summary()
            );
        }
    }

    if let Some(m) = c.metrics.as_ref().filter(|m| !m.devices.is_empty()) {
        out += &devices_md(m, &c.device_costs);
    }

    out += "\n## Quality proxies\n\n";
    let mut rows = vec![vec![
        "non-embedding parameters (LTS: rank-correlates with perplexity)".into(),
        si(p.non_embedding as f64, ""),
    ]];
    if let Some(loss) = c.metrics.as_ref().and_then(|m| m.chinchilla_loss) {
        rows.push(vec![
            "Chinchilla loss L(N, D) at the space's token budget".into(),
            format!("{loss:.4}"),
        ]);
    }
    rows.push(vec![
        "aspect ratio hidden / layers (MobileLLM's released configs: 19-30)".into(),
        format!("{:.1}", s.hidden_size as f64 / s.num_layers as f64),
    ]);
    out += &md_table(&["proxy", "value"], &rows);

    out += "\n## How it was chosen\n\n";
    out += &match &c.chosen {
        Some(ch) => format!(
            "`tailor search` of the space `{}` (`{}`), strategy {}, seed {}{}: candidate {}, \
             {} of the {} rows of the Pareto front by the pick rule ({}){}.\n",
            ch.space,
            ch.space_path,
            ch.strategy,
            ch.seed,
            ch.budget
                .map(|b| format!(", budget {b}"))
                .unwrap_or_default(),
            ch.id,
            ordinal(ch.rank),
            ch.front_size,
            ch.pick_rule,
            if ch.picked { ": the pick" } else { "" }
        ),
        None => "Exported directly from a spec file, not from a search.\n".into(),
    };
    out
}

fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (1, 11) | (2, 12) | (3, 13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}
