//! What tailor leaves for people: the export of a spec for pre-training (config.json,
//! spec.toml, MODEL_CARD.md) and the report of a search run (report.md beside SVG plots).

use crate::commands::search::SearchRun;
use crate::commands::validate::Validation;
use crate::fmt::{bytes, si, thousands};
use crate::plot::{self, Scatter};
use anyhow::Result;
use clap::ValueEnum;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::{Path, PathBuf};
use tailor_cost::{Breakdown, Estimate, Fingerprint, Workload};
use tailor_search::{Candidate, Metric, Metrics};
use tailor_spec::files::write_atomic;
use tailor_spec::{HfConfig, ModelSpec, ModelType, SpecFile};
use tracing::warn;

/// Which `config.json` an export writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flavor {
    /// Stock transformers `LlamaForCausalLM` (`model_type: llama`): loads anywhere.
    Llama,
    /// PhoneLM's field set (`model_type: phonelm`, `PhoneLMForCausalLM`, mllmTeam's
    /// remote code).
    Phonelm,
}

impl Flavor {
    pub fn model_type(self) -> ModelType {
        match self {
            Flavor::Llama => ModelType::Llama,
            Flavor::Phonelm => ModelType::Phonelm,
        }
    }

    pub fn name(self) -> &'static str {
        self.model_type().name()
    }
}

/// The cost model behind a prediction, as quoted in files.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CostSource {
    /// `profiled` (a burn profile), `llama.cpp` (a llama.cpp profile) or `roofline` (a
    /// device file).
    pub kind: String,
    pub file: String,
    /// The device's name in that file.
    pub device: String,
    /// The measured setup (burn profiles only).
    pub fingerprint: Option<Fingerprint>,
    /// The measured setup of a llama.cpp profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llama_fingerprint: Option<tailor_llamacpp::LlamaFingerprint>,
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
}

/// The files of one export.
#[derive(Debug, Clone, Serialize)]
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
pub fn export(dir: &Path, card: &Card) -> Result<Exported> {
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
    let (config_json, config_error) = match HfConfig::export(card.spec, card.flavor.model_type()) {
        Ok(cfg) => {
            let path = dir.join("config.json");
            cfg.save(&path)?;
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
fn md_table(header: &[&str], rows: &[Vec<String>]) -> String {
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

fn yes(b: bool) -> String {
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
        "A decoder-only transformer (Llama/PhoneLM style) specified by tailor for \
         pre-training: {} parameters ({} non-embedding). Weights are not trained; this card \
         describes the architecture, what it is predicted to cost on the profiled device, and \
         how it was chosen.\n\n",
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
            match c.flavor {
                Flavor::Llama => "stock `LlamaForCausalLM`, no remote code",
                Flavor::Phonelm =>
                    "`PhoneLMForCausalLM`: needs mllmTeam's PhoneLM modeling code, \
                     `trust_remote_code=True`",
            }
        ),
        Some(e) => format!(
            "- no `config.json`: the `{}` flavor cannot express this spec ({e}).\n",
            c.flavor.name()
        ),
    };
    out += "- `spec.toml`: tailor's spec (`tailor spec spec.toml` prints its full accounting).\n\n";

    out += "## Architecture\n\n";
    let rows = vec![
        vec!["vocabulary".into(), s.vocab_size.to_string()],
        vec!["hidden size".into(), s.hidden_size.to_string()],
        vec!["layers".into(), s.num_layers.to_string()],
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
    ];
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
        if let Some(f) = &cost.fingerprint {
            out += &format!(
                "\nProfile fingerprint: backend `{}`, device `{}`, CPU `{}`, {} cores, {} \
                 threads, `{}`, {}, burn {}.\n",
                f.backend, f.device, f.cpu_model, f.cores, f.threads, f.os, f.dtype, f.burn_version
            );
        }
    }

    out += "\n## Quality proxies\n\n";
    let mut rows = vec![vec![
        "non-embedding parameters (LTS: rank-correlates with perplexity)".into(),
        si(p.non_embedding as f64, ""),
    ]];
    if let Some(loss) = c.metrics.and_then(|m| m.chinchilla_loss) {
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

/// Front rows ordered by the pick rule (the pick first), ties by id.
pub fn ranked(front: &[Candidate], pick: (Metric, bool)) -> Vec<&Candidate> {
    let (metric, minimise) = pick;
    let mut rows: Vec<&Candidate> = front.iter().collect();
    rows.sort_by(|a, b| {
        let (x, y) = (a.metrics.get(metric), b.metrics.get(metric));
        if minimise {
            x.total_cmp(&y)
        } else {
            y.total_cmp(&x)
        }
        .then(a.id.cmp(&b.id))
    });
    rows
}

pub fn pick_rule(pick: (Metric, bool)) -> String {
    format!(
        "{} {}",
        if pick.1 { "minimize" } else { "maximize" },
        pick.0.name()
    )
}

/// What a search run left besides its data files.
#[derive(Debug, Clone, Serialize)]
pub struct Written {
    pub export: Option<Exported>,
    pub report: PathBuf,
    pub plots: Vec<PathBuf>,
}

impl Written {
    pub fn render(&self) -> String {
        let mut s = String::new();
        if let Some(e) = &self.export {
            s += &format!(
                "wrote the pick's {}spec.toml and MODEL_CARD.md to {}\n",
                if e.config_json.is_some() {
                    "config.json, "
                } else {
                    ""
                },
                e.dir.display()
            );
            if let Some(why) = &e.config_error {
                s += &format!("  no config.json: {why}\n");
            }
        }
        s += &format!("report: {}\n", self.report.display());
        s
    }
}

/// Keeps at most `n` points, evenly spaced through the list (deterministic).
fn thin<T: Copy>(v: &[T], n: usize) -> Vec<T> {
    if v.len() <= n {
        return v.to_vec();
    }
    (0..n).map(|i| v[i * v.len() / n]).collect()
}

/// Exports the pick into `<out>/pick/`, draws the plots and writes report.md; records
/// where in `run.summary` (`export`, `report`).
pub fn write_search(
    run: &mut SearchRun,
    flavor: Flavor,
    validation: Option<&Validation>,
) -> Result<Written> {
    let out = run.out.clone();
    let o = &run.outcome;
    let space = &run.space;
    let ranked = ranked(&o.front, space.pick);
    let measured_of = |id: u64| {
        validation.and_then(|v| {
            v.rows.iter().find(|r| r.id == id).and_then(|r| {
                r.measured
                    .as_ref()
                    .map(|m| (m.prefill.median_ms, m.decode.median_ms, m.peak_memory_bytes))
            })
        })
    };
    let pick = o.pick.map(|i| &o.front[i]);
    let export = match pick {
        Some(c) => {
            let card = Card {
                name: format!("{}-{}", space.name(), c.id),
                spec: &c.spec,
                flavor,
                predicted: c.estimate.map(|e| (space.workload, e)),
                cost: Some(run.cost.clone()),
                chosen: Some(Chosen {
                    space: space.name().to_string(),
                    space_path: space.path.display().to_string(),
                    strategy: o.strategy.name().into(),
                    seed: o.seed,
                    budget: o.budget,
                    id: c.id,
                    rank: 1,
                    front_size: o.front.len(),
                    pick_rule: pick_rule(space.pick),
                    picked: true,
                }),
                metrics: Some(c.metrics),
                measured: measured_of(c.id),
            };
            let e = export(&out.join("pick"), &card)?;
            if let Some(why) = &e.config_error {
                warn!("the pick has no config.json: {why}");
            }
            Some(e)
        }
        None => None,
    };

    // Plots: the front over the cloud of feasible candidates, and the pick's breakdown.
    let mut plots = Vec::new();
    let cloud = thin(&run.cloud, 4000);
    fn to_m(n: u64) -> f64 {
        n as f64 / 1e6
    }
    let panel = |title, x_desc, x: fn(&Metrics) -> f64, y: Metric, y_desc| Scatter {
        title,
        x_desc,
        y_desc,
        others: cloud.iter().map(|m| (x(m), m.get(y))).collect(),
        front: o
            .front
            .iter()
            .map(|c| (x(&c.metrics), c.metrics.get(y)))
            .collect(),
        pick: pick.map(|c| (x(&c.metrics), c.metrics.get(y))),
        references: run
            .references
            .iter()
            .filter(|r| r.candidate.is_priced())
            .map(|r| {
                let m = &r.candidate.metrics;
                (format!("{} (reference)", r.name), (x(m), m.get(y)))
            })
            .collect(),
    };
    let front_svg = out.join("front.svg");
    plot::scatter(
        &front_svg,
        &format!("{} on {}", space.name(), run.cost.device),
        &[
            panel(
                "decode step vs non-embedding parameters",
                "non-embedding parameters (M)",
                |m| to_m(m.non_embedding_params),
                Metric::DecodeMs,
                "decode step (ms)",
            ),
            panel(
                "prefill vs parameters",
                "parameters (M)",
                |m| to_m(m.params),
                Metric::PrefillMs,
                "prefill (ms)",
            ),
        ],
    )?;
    plots.push(front_svg);
    if let Some(e) = pick.and_then(|c| c.estimate) {
        let w = &space.workload;
        let path = out.join("breakdown.svg");
        plot::breakdown(
            &path,
            &format!("where the pick's time goes on {}", run.cost.device),
            &[
                (
                    format!("prefill ({} tokens)", w.prompt_tokens),
                    e.prefill_breakdown,
                ),
                (
                    format!("decode (context {})", w.context),
                    e.decode_breakdown,
                ),
            ],
        )?;
        plots.push(path);
    }
    if let Some(v) = validation {
        plots.push(v.calibration.clone());
    }

    let report = out.join("report.md");
    let md = report_md(run, &ranked, export.as_ref(), validation, &out);
    write_atomic(&report, md.as_bytes())?;
    run.summary["export"] = serde_json::to_value(&export)?;
    run.summary["report"] = json!(report.display().to_string());
    Ok(Written {
        export,
        report,
        plots,
    })
}

/// The front row with the fastest decode among those with at least `params` parameters.
pub fn same_size_fastest(front: &[Candidate], params: u64) -> Option<&Candidate> {
    front
        .iter()
        .filter(|c| c.metrics.params >= params)
        .min_by(|a, b| {
            a.metrics
                .get(Metric::DecodeMs)
                .total_cmp(&b.metrics.get(Metric::DecodeMs))
                .then(a.id.cmp(&b.id))
        })
}

/// `path` relative to `base` when it lies inside it (links in report.md).
fn rel(path: &Path, base: &Path) -> String {
    path.strip_prefix(base)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn spec_cells(c: &Candidate) -> Vec<String> {
    let s = &c.spec;
    vec![
        s.hidden_size.to_string(),
        s.num_layers.to_string(),
        format!("{}/{}", s.num_heads, s.num_kv_heads),
        s.intermediate_size.to_string(),
        s.activation.to_string(),
    ]
}

fn report_md(
    run: &SearchRun,
    ranked: &[&Candidate],
    export: Option<&Exported>,
    validation: Option<&Validation>,
    out: &Path,
) -> String {
    let (space, o) = (&run.space, &run.outcome);
    let w = &space.workload;
    let mut s = format!("# tailor: {} on {}\n\n", space.name(), run.cost.device);
    s += &format!(
        "Space `{}` ({} points), {} cost model from `{}`, {} search (seed {}), workload: \
         prefill of {} tokens, decode at context {}, {} weights. {} examined, {} buildable, \
         {} feasible, Pareto front of {} rows, pick rule: {}. Search time {:.2} s.\n\n",
        space.path.display(),
        thousands(space.size() as u128),
        run.cost.kind,
        run.cost.file,
        o.strategy.name(),
        o.seed,
        w.prompt_tokens,
        w.context,
        w.precision.weights,
        thousands(o.seen as u128),
        thousands(o.evaluated as u128),
        thousands(o.feasible as u128),
        o.front.len(),
        pick_rule(space.pick),
        o.wall_s
    );
    if let Some(f) = &run.cost.fingerprint {
        s += &format!(
            "Profile fingerprint: {} on {} ({} cores, {} threads, {}), burn {}.\n\n",
            f.backend,
            f.machine(),
            f.cores,
            f.threads,
            f.os,
            f.burn_version
        );
    }
    let pick = o.pick.map(|i| &o.front[i]);
    if let Some(c) = pick {
        let m = &c.metrics;
        s += "## The pick\n\n";
        let mut header = vec!["hidden", "layers", "heads q/kv", "ffn", "act"];
        header.extend([
            "params",
            "non-emb",
            "prefill ms",
            "decode ms",
            "tok/s",
            "memory",
        ]);
        let mut row = spec_cells(c);
        row.extend([
            si(m.params as f64, ""),
            si(m.non_embedding_params as f64, ""),
            format!("{:.2}", m.get(Metric::PrefillMs)),
            format!("{:.3}", m.get(Metric::DecodeMs)),
            format!("{:.1}", 1000.0 / m.get(Metric::DecodeMs)),
            bytes(m.get(Metric::PeakMemory)),
        ]);
        s += &md_table(&header, &[row]);
        if let Some(e) = export {
            s += &format!(
                "\nExported to `{}/`: {}`spec.toml`, [`MODEL_CARD.md`]({}).\n",
                rel(&e.dir, out),
                if e.config_json.is_some() {
                    "`config.json`, "
                } else {
                    ""
                },
                rel(&e.model_card, out)
            );
            if let Some(why) = &e.config_error {
                s += &format!("No config.json: {why}.\n");
            }
        }
    }
    s += "\n## Pareto front\n\n![front](front.svg)\n\n";
    s += "Grey: feasible candidates; blue: the Pareto front of all objectives (";
    s += &space
        .objectives
        .iter()
        .map(|(m, min)| format!("{} {}", if *min { "min" } else { "max" }, m.name()))
        .collect::<Vec<_>>()
        .join(", ");
    s += "), so a front row can look dominated in a two-axis projection; red ring: the pick.\n";
    if !run.references.is_empty() {
        s += "\n## Reference models\n\n";
        let mut rows = Vec::new();
        for r in &run.references {
            let c = &r.candidate;
            let m = &c.metrics;
            let place = r.place();
            let mut row = vec![r.name.clone()];
            row.extend(spec_cells(c));
            row.extend([
                si(m.params as f64, ""),
                place,
                format!("{:.2}", m.get(Metric::PrefillMs)),
                format!("{:.3}", m.get(Metric::DecodeMs)),
            ]);
            let speedup = |p: &Candidate| {
                format!(
                    "{:.2}x / {:.2}x",
                    m.get(Metric::PrefillMs) / p.metrics.get(Metric::PrefillMs),
                    m.get(Metric::DecodeMs) / p.metrics.get(Metric::DecodeMs)
                )
            };
            row.push(pick.map_or("-".into(), speedup));
            row.push(match same_size_fastest(&o.front, m.params) {
                Some(f) => format!(
                    "{} x {}, {}/{} heads, ffn {} {} ({}): {}",
                    f.spec.hidden_size,
                    f.spec.num_layers,
                    f.spec.num_heads,
                    f.spec.num_kv_heads,
                    f.spec.intermediate_size,
                    f.spec.activation,
                    si(f.metrics.params as f64, ""),
                    speedup(f)
                ),
                None => "none on the front".into(),
            });
            rows.push(row);
        }
        s += &md_table(
            &[
                "model",
                "hidden",
                "layers",
                "heads q/kv",
                "ffn",
                "act",
                "params",
                "place",
                "prefill ms",
                "decode ms",
                "pick faster (prefill / decode)",
                "fastest front row at least as large: faster (prefill / decode)",
            ],
            &rows,
        );
        s += "\nThe pick may win by being smaller; the last column compares like with like: \
              the front row with the fastest decode among those with at least the \
              reference's parameters.\n";
    }
    if let Some(e) = pick.and_then(|c| c.estimate) {
        s += "\n## Where the pick's time goes\n\n![breakdown](breakdown.svg)\n\n";
        let row = |name: &str, b: &Breakdown| {
            let t = b.total_ms().max(f64::MIN_POSITIVE);
            vec![
                name.to_string(),
                format!("{:.3}", b.total_ms()),
                format!("{:.1}%", 100.0 * b.attention_ms / t),
                format!("{:.1}%", 100.0 * b.ffn_ms / t),
                format!("{:.1}%", 100.0 * b.lm_head_ms / t),
                format!("{:.1}%", 100.0 * b.other_ms / t),
            ]
        };
        s += &md_table(
            &["pass", "ms", "attention", "FFN", "LM head", "other"],
            &[
                row("prefill", &e.prefill_breakdown),
                row("decode step", &e.decode_breakdown),
            ],
        );
        s += "\nOther: embedding, norms, residual adds.\n";
    }
    s += &format!("\n## Top of the front (by {})\n\n", pick_rule(space.pick));
    let rows: Vec<Vec<String>> = ranked
        .iter()
        .take(15)
        .enumerate()
        .map(|(i, c)| {
            let m = &c.metrics;
            let mut row = vec![(i + 1).to_string(), c.id.to_string()];
            row.extend(spec_cells(c));
            row.extend([
                si(m.params as f64, ""),
                si(m.non_embedding_params as f64, ""),
                format!("{:.2}", m.get(Metric::PrefillMs)),
                format!("{:.3}", m.get(Metric::DecodeMs)),
                bytes(m.get(Metric::PeakMemory)),
            ]);
            if let Some(l) = m.chinchilla_loss {
                row.push(format!("{l:.4}"));
            }
            row
        })
        .collect();
    let mut header = vec![
        "#",
        "id",
        "hidden",
        "layers",
        "heads q/kv",
        "ffn",
        "act",
        "params",
        "non-emb",
        "prefill ms",
        "decode ms",
        "memory",
    ];
    if ranked
        .first()
        .is_some_and(|c| c.metrics.chinchilla_loss.is_some())
    {
        header.push("Chinchilla loss");
    }
    s += &md_table(&header, &rows);
    if ranked.len() > 15 {
        s += &format!(
            "\n{} more rows in `front.json`; every candidate in `candidates.csv`.\n",
            ranked.len() - 15
        );
    }
    if let Some(v) = validation {
        s += &format!(
            "\n## Checked against whole models\n\nThe pick and {} other front rows were \
             built with random weights and timed whole on this machine ({} timing sessions \
             each, fresh process per model); err = (predicted - measured) / measured.\n\n",
            v.rows.len().saturating_sub(1),
            v.rounds
        );
        let pct = |p: f64, m: f64| format!("{:+.1}%", 100.0 * (p - m) / m);
        let rows: Vec<Vec<String>> = v
            .rows
            .iter()
            .map(|r| {
                let mut row = vec![
                    if pick.is_some_and(|c| c.id == r.id) {
                        format!("{} (pick)", r.id)
                    } else {
                        r.id.to_string()
                    },
                    r.spec.hidden_size.to_string(),
                    r.spec.num_layers.to_string(),
                ];
                match &r.measured {
                    Some(m) => row.extend([
                        format!("{:.2}", r.predicted_prefill_ms),
                        format!("{:.2}", m.prefill.median_ms),
                        pct(r.predicted_prefill_ms, m.prefill.median_ms),
                        format!("{:.3}", r.predicted_decode_ms),
                        format!("{:.3}", m.decode.median_ms),
                        pct(r.predicted_decode_ms, m.decode.median_ms),
                        m.peak_memory_bytes.map_or("-".into(), |b| {
                            pct(r.predicted_memory_bytes as f64, b as f64)
                        }),
                    ]),
                    None => row.push(format!(
                        "failed: {}",
                        r.error.as_deref().unwrap_or("unknown")
                    )),
                }
                row
            })
            .collect();
        s += &md_table(
            &[
                "id",
                "hidden",
                "layers",
                "prefill pred ms",
                "measured",
                "err",
                "decode pred ms",
                "measured",
                "err",
                "memory err",
            ],
            &rows,
        );
        for w in v.drift() {
            s += &format!("\n**Warning**: {w}.\n");
        }
        s += &format!(
            "\n![calibration]({})\n\nAll files of the check: `{}/`. `tailor validate` checks \
             a larger sample spread over the space.\n",
            rel(&v.calibration, out),
            rel(&v.out, out)
        );
    }
    s += "\n## Files\n\n- `candidates.csv`: every evaluated candidate with its metrics and \
          constraint verdict\n- `front.json`: the front rows with full specs and estimates \
          (`tailor export front.json#ID` exports any row)\n- `summary.json`: counts, the pick, \
          the references, the cost model\n";
    s
}
