//! The report of a search run: `report.md` beside SVG plots, and the pick's export.

use crate::ReportError;
use crate::export::{Card, Chosen, CostSource, Exported, Flavor, export, md_table};
use crate::fmt::{Table, bytes, si, thousands};
use crate::plot::{self, Scatter};
use crate::validation::{RoundRatios, Validation};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tailor_cost::{Accuracy, Breakdown};
use tailor_search::output::{Rule, SearchSummary};
use tailor_search::{Candidate, Metric, Metrics, SearchOutcome, SearchSpace, pick_order};
use tailor_spec::files::write_atomic;

/// A published model named by the space, priced and placed against the front.
#[derive(Debug, Clone)]
pub struct Reference {
    pub path: PathBuf,
    pub name: String,
    /// Its id when the space holds it.
    pub id: Option<u64>,
    pub candidate: Candidate,
    /// Front rows that dominate it (0: on the front or beside it).
    pub dominated_by: usize,
}

impl Reference {
    /// Where it lands: not in the space, infeasible (why), on the front, or dominated.
    pub fn place(&self) -> String {
        let c = &self.candidate;
        match (self.id, c.feasible(), self.dominated_by) {
            (None, _, _) => "not in the space".to_string(),
            (_, false, _) => format!("infeasible ({})", c.why_not()),
            (_, true, 0) => "on the front".to_string(),
            (_, true, n) => format!("dominated by {n} front rows"),
        }
    }
}

/// Everything a search produced, for the report and the export.
#[derive(Debug)]
pub struct SearchRun {
    pub space: SearchSpace,
    pub outcome: SearchOutcome,
    pub references: Vec<Reference>,
    /// Metrics of every feasible candidate (for the plots).
    pub cloud: Vec<Metrics>,
    pub cost: CostSource,
    pub out: PathBuf,
    /// What the search says about itself.
    pub summary: SearchSummary,
}

impl SearchRun {
    /// The tables `tailor search` prints.
    pub fn render(&self, written: &Written) -> String {
        let run = self;
        let (space, o, refs, out) = (&run.space, &run.outcome, &run.references, &run.out);
        let mut s = format!(
            "{}: {} points, {} examined ({}), {} buildable, {} priced, {} feasible, front of {}\n",
            space.name(),
            space.size(),
            o.seen,
            o.strategy.name(),
            o.evaluated,
            o.priced,
            o.feasible,
            o.front.len()
        );
        for (reason, n) in &o.skipped {
            s += &format!("  skipped {n}: {reason}\n");
        }
        let rows = ranked(&o.front, space.pick);
        let metric = space.pick.0;
        s += &format!(
            "\nfront (by {}), top {}:\n",
            metric.name(),
            rows.len().min(15)
        );
        let stacked = space.file.model.stack.is_some();
        let mut header = vec![
            "",
            "hidden",
            "layers",
            "heads",
            "kv",
            "ffn",
            "act",
            "params",
            "non-emb",
            "prefill ms",
            "decode ms",
            "tok/s",
            "memory",
        ];
        if stacked {
            header.push("stack");
        }
        let mut t = Table::new(&header);
        for c in rows.iter().take(15) {
            let m = &c.metrics;
            let picked = o.pick.is_some_and(|i| o.front[i].id == c.id);
            let mut row = vec![
                if picked { "pick".into() } else { String::new() },
                c.spec.hidden_size.to_string(),
                c.spec.num_layers.to_string(),
                c.spec.num_heads.to_string(),
                c.spec.num_kv_heads.to_string(),
                c.spec.intermediate_size.to_string(),
                c.spec.activation.to_string(),
                si(m.params as f64, ""),
                si(m.non_embedding_params as f64, ""),
                format!("{:.2}", m.get(Metric::PrefillMs)),
                format!("{:.3}", m.get(Metric::DecodeMs)),
                format!("{:.1}", 1000.0 / m.get(Metric::DecodeMs)),
                bytes(m.get(Metric::PeakMemory)),
            ];
            if stacked {
                row.push(c.spec.pattern_picture());
            }
            t.row(row);
        }
        s += &t.render(2);
        for r in refs {
            let (path, name, c) = (&r.path, &r.name, &r.candidate);
            let m = &c.metrics;
            let place = r.place();
            s += &format!(
                "\nreference {name} ({}): {place}; prefill {:.2} ms, decode {:.3} ms ({:.1} tok/s)\n",
                path.display(),
                m.get(Metric::PrefillMs),
                m.get(Metric::DecodeMs),
                1000.0 / m.get(Metric::DecodeMs)
            );
            if let Some(i) = o.pick {
                let p = &o.front[i].metrics;
                s += &format!(
                    "  pick vs reference: decode {:.2}x faster, prefill {:.2}x faster\n",
                    m.get(Metric::DecodeMs) / p.get(Metric::DecodeMs),
                    m.get(Metric::PrefillMs) / p.get(Metric::PrefillMs)
                );
            }
            if let Some(f) = same_size_fastest(&o.front, m.params) {
                s += &format!(
                    "  fastest front row at least as large ({} x {} layers, {} params): decode \
                     {:.2}x faster, prefill {:.2}x faster\n",
                    f.spec.hidden_size,
                    f.spec.num_layers,
                    si(f.metrics.params as f64, ""),
                    m.get(Metric::DecodeMs) / f.metrics.get(Metric::DecodeMs),
                    m.get(Metric::PrefillMs) / f.metrics.get(Metric::PrefillMs)
                );
            }
        }
        s += &format!(
            "\nwrote {}/{{candidates.csv, front.json, summary.json}}\n",
            out.display()
        );
        s += &written.render();
        s
    }
}

/// A published reference as summary.json places it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceRow {
    pub name: String,
    pub path: String,
    pub id: Option<u64>,
    pub in_space: bool,
    pub feasible: bool,
    pub on_front: bool,
    pub front_rows_dominating: usize,
    pub metrics: Metrics,
}

/// The files a search run left besides its data (absent when the search found nothing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportFiles {
    /// The pick's export (`None`: no pick).
    pub export: Option<Exported>,
    pub report: PathBuf,
}

/// How `tailor run` got its profile: [`BurnProfile`] or [`LlamaProfile`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RunProfile {
    Burn(BurnProfile),
    LlamaCpp(LlamaProfile),
}

/// A burn profile that `tailor run` measured or completed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BurnProfile {
    pub path: String,
    pub shapes_needed: usize,
    pub measured_now: usize,
    pub profile_wall_s: f64,
    /// A profile reused as it was: its subset re-timed on this machine first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_check: Option<tailor_cost::Drift>,
    /// The run priced with predictions scaled to the level of whole models timed here
    /// before the search (`level` says by how much, on which models).
    #[serde(default)]
    pub releveled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<tailor_cost::Level>,
    /// Entries of the drifted classes re-measured in the profile file before the search
    /// (what `tailor run` does when the check finds drift).
    #[serde(default)]
    pub remeasured: usize,
    /// Stale entries of the profile file the run did not need: marked stale in the file
    /// (re-measured by the next run that needs them) instead of re-measured now.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub marked_stale: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A llama.cpp profile that `tailor run` measured or completed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlamaProfile {
    pub path: String,
    /// `llama.cpp`.
    pub engine: String,
    pub probes: usize,
    pub probe_visits_now: usize,
    pub profile_wall_s: f64,
    /// A profile reused as it was: its drift subset re-timed on this machine first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_check: Option<tailor_llamacpp::LlamaDrift>,
    /// Probe visits re-timed because the check found their phases drifted (counted in
    /// `probe_visits_now`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub remeasured: usize,
    /// The level the search priced at (`--anchors N`: whole models timed first, in the
    /// run's `level/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<tailor_cost::Level>,
}

/// What `tailor run`'s check of front rows against whole models found: [`BurnCheck`]
/// or [`LlamaCheck`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RunCheck {
    Burn(BurnCheck),
    LlamaCpp(LlamaCheck),
}

/// Front rows timed whole in burn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BurnCheck {
    pub models: usize,
    pub rounds: u64,
    pub round_ratios: RoundRatios,
    pub prefill: Option<Accuracy>,
    pub decode: Option<Accuracy>,
    pub memory: Option<Accuracy>,
    pub dir: String,
}

/// Front rows timed whole with llama-bench.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlamaCheck {
    pub models: usize,
    pub rounds: u64,
    pub prefill: Option<Accuracy>,
    pub decode: Option<Accuracy>,
    pub memory: Option<Accuracy>,
    /// llama-bench's agreement with itself over the same files in the run.
    pub engine_self: Option<tailor_llamacpp::validate::SelfAgreement>,
    pub dir: String,
}

/// What `tailor run` adds to summary.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSection {
    pub profile: RunProfile,
    pub check: Option<RunCheck>,
    pub run_wall_s: f64,
}

/// summary.json: the search's own summary, the cost model, the references, the files
/// written, and (from `tailor run`) the profile and the check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    #[serde(flatten)]
    pub search: SearchSummary,
    pub cost_model: CostSource,
    pub references: Vec<ReferenceRow>,
    #[serde(flatten)]
    pub files: Option<ReportFiles>,
    #[serde(flatten)]
    pub run: Option<RunSection>,
}

impl Summary {
    /// The summary of `run`, with the report's files and `tailor run`'s section if any.
    pub fn of(run: &SearchRun, written: Option<&Written>, section: Option<RunSection>) -> Self {
        let front = &run.outcome.front;
        Self {
            search: run.summary.clone(),
            cost_model: run.cost.clone(),
            references: run
                .references
                .iter()
                .map(|r| ReferenceRow {
                    name: r.name.clone(),
                    path: r.path.display().to_string(),
                    id: r.id,
                    in_space: r.id.is_some(),
                    feasible: r.candidate.feasible(),
                    on_front: front.iter().any(|f| Some(f.id) == r.id),
                    front_rows_dominating: r.dominated_by,
                    metrics: r.candidate.metrics,
                })
                .collect(),
            files: written.map(|w| ReportFiles {
                export: w.export.clone(),
                report: w.report.clone(),
            }),
            run: section,
        }
    }

    /// Writes it to `<out>/summary.json`.
    pub fn write(&self, out: &Path) -> Result<(), ReportError> {
        crate::write_json(&out.join("summary.json"), self)
    }

    pub fn load(path: &Path) -> Result<Self, ReportError> {
        crate::read_json(path)
    }
}

/// Front rows ordered by the pick rule (the pick first), ties by id.
pub fn ranked(front: &[Candidate], pick: (Metric, bool)) -> Vec<&Candidate> {
    let mut rows: Vec<&Candidate> = front.iter().collect();
    rows.sort_by(|a, b| pick_order(pick, (a.id, &a.metrics), (b.id, &b.metrics)));
    rows
}

/// `minimize decode_ms`.
pub fn pick_rule(pick: (Metric, bool)) -> String {
    Rule::of(pick).to_string()
}

/// What a search run left besides its data files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// Exports the pick into `<out>/pick/`, draws the plots and writes report.md.
/// `flavor`: of the pick's config.json (`None`: [`Flavor::natural`] of the pick).
pub fn write_search(
    run: &SearchRun,
    flavor: Option<Flavor>,
    validation: Option<&Validation>,
) -> Result<Written, ReportError> {
    let out = run.out.clone();
    let o = &run.outcome;
    let space = &run.space;
    let ranked = ranked(&o.front, space.pick);
    let measured_of = |id: u64| {
        validation.and_then(|v| {
            v.file.rows.iter().find(|r| r.id == id).and_then(|r| {
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
                flavor: flavor.unwrap_or_else(|| Flavor::natural(&c.spec)),
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
                tracing::warn!("the pick has no config.json: {why}");
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
    // Spaces with [workload.edit]: each row's whole edit by both methods.
    let edits = ranked
        .first()
        .is_some_and(|c| c.metrics.edit_zo_memory_bytes.is_some());
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
            if edits {
                let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}"));
                let mem = |v: Option<u64>| v.map_or("-".into(), |b| bytes(b as f64));
                row.extend([
                    ms(m.edit_zo_ms),
                    ms(m.edit_bp_ms),
                    mem(m.edit_zo_memory_bytes),
                    mem(m.edit_bp_memory_bytes),
                ]);
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
    if edits {
        header.extend([
            "edit zo ms",
            "edit bp ms",
            "edit zo memory",
            "edit bp memory",
        ]);
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
            v.file.rows.len().saturating_sub(1),
            v.file.rounds
        );
        let pct = |p: f64, m: f64| format!("{:+.1}%", 100.0 * (p - m) / m);
        let rows: Vec<Vec<String>> = v
            .file
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

#[cfg(test)]
mod tests {
    use super::{
        BurnCheck, BurnProfile, LlamaCheck, LlamaProfile, Reference, RunCheck, RunProfile,
        RunSection, SearchRun, Summary, ranked, write_search,
    };
    use crate::export::{CostKind, CostSource, Flavor};
    use crate::validation::RoundRatios;
    use std::path::{Path, PathBuf};
    use tailor_cost::{DeviceSpec, Roofline};
    use tailor_search::output::SearchSummary;
    use tailor_search::{
        NoProgress, SearchOptions, SearchSpace, Strategy, pick_order, price, search,
    };

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// The quickstart space searched exhaustively on the committed roofline device.
    fn quickstart(out: &Path) -> SearchRun {
        let space = SearchSpace::load(&root().join("search-spaces/quickstart.toml")).unwrap();
        let device = DeviceSpec::load(&root().join("profiles/host-roofline.toml")).unwrap();
        let cost = Roofline::new(device, &space.workload.precision).unwrap();
        let options = SearchOptions {
            strategy: Strategy::Exhaustive,
            budget: None,
            seed: 0,
            population: None,
        };
        let outcome = search(&space, &cost, &options, &NoProgress, &mut |_| Ok(())).unwrap();
        // A reference: the front's first row, as if a published model were that config.
        let first = &outcome.front[0];
        let references = vec![Reference {
            path: "reference.toml".into(),
            name: "reference".into(),
            id: Some(first.id),
            candidate: price(&space, &cost, first.id, first.spec.clone()),
            dominated_by: 0,
        }];
        let summary = SearchSummary::new(&space, &outcome, "host");
        SearchRun {
            space,
            outcome,
            references,
            cloud: Vec::new(),
            cost: CostSource {
                kind: CostKind::Roofline,
                file: "profiles/host-roofline.toml".into(),
                device: "host".into(),
                fingerprint: None,
                llama_fingerprint: None,
                profile_check: None,
                level: None,
            },
            out: out.to_path_buf(),
            summary,
        }
    }

    #[test]
    fn summary_json_round_trips_in_each_shape_and_the_report_is_written() {
        let out = crate::validation::tests::scratch("summary");
        let run = quickstart(&out);
        assert!(run.outcome.pick.is_some());
        let written = write_search(&run, Some(Flavor::Llama), None).unwrap();
        for file in [
            "report.md",
            "front.svg",
            "breakdown.svg",
            "pick/spec.toml",
            "pick/MODEL_CARD.md",
        ] {
            assert!(out.join(file).is_file(), "{file} missing");
        }
        let report = std::fs::read_to_string(&written.report).unwrap();
        assert!(report.contains("quickstart"), "{report}");

        let burn = RunSection {
            profile: RunProfile::Burn(BurnProfile {
                path: "profiles/host-flex.toml".into(),
                shapes_needed: 40,
                measured_now: 3,
                profile_wall_s: 1.5,
                profile_check: None,
                releveled: false,
                level: None,
                remeasured: 7,
                marked_stale: 3,
            }),
            check: Some(RunCheck::Burn(BurnCheck {
                models: 4,
                rounds: 2,
                round_ratios: RoundRatios {
                    prefill: vec![1.0, 1.25],
                    decode: vec![0.5, 1.0],
                },
                prefill: tailor_cost::accuracy(&[(1.0, 1.1), (2.0, 1.9)]),
                decode: None,
                memory: None,
                dir: "out/x/check".into(),
            })),
            run_wall_s: 9.0,
        };
        let llama = RunSection {
            profile: RunProfile::LlamaCpp(LlamaProfile {
                path: "profiles/host-llamacpp-q4_0.toml".into(),
                engine: "llama.cpp".into(),
                probes: 12,
                probe_visits_now: 4,
                profile_wall_s: 0.25,
                profile_check: Some(tailor_llamacpp::LlamaDrift {
                    profile: "profiles/host-llamacpp-q4_0.toml".into(),
                    measured: "2026-12-04T10:00:00Z".into(),
                    phases: vec![tailor_llamacpp::drift::PhaseDrift {
                        phase: tailor_llamacpp::PhaseKey::Decode { context: 256 },
                        entries: 2,
                        ratio: 1.25,
                    }],
                    wall_s: 4.5,
                }),
                remeasured: 4,
                level: None,
            }),
            check: Some(RunCheck::LlamaCpp(LlamaCheck {
                models: 3,
                rounds: 1,
                prefill: None,
                decode: tailor_cost::accuracy(&[(1.0, 1.1), (2.0, 1.9), (3.0, 3.5)]),
                memory: None,
                engine_self: None,
                dir: "out/y/check".into(),
            })),
            run_wall_s: 3.0,
        };
        for (files, section) in [
            (None, None),
            (Some(&written), None),
            (Some(&written), Some(burn)),
            (Some(&written), Some(llama)),
        ] {
            let summary = Summary::of(&run, files, section);
            summary.write(&out).unwrap();
            let back = Summary::load(&out.join("summary.json")).unwrap();
            assert_eq!(back, summary);
            let text = std::fs::read_to_string(out.join("summary.json")).unwrap();
            assert!(
                text.contains(
                    "\"pick_rule\": {\n    \"metric\": \"decode_ms\",\n    \"sense\": \"minimize\""
                ),
                "{text}"
            );
            assert_eq!(text.contains("\"report\""), files.is_some());
        }
        std::fs::remove_dir_all(&out).unwrap();
    }

    #[test]
    fn the_report_ranks_the_front_as_the_search_picks() {
        let out = std::env::temp_dir();
        let run = quickstart(&out);
        let o = &run.outcome;
        let rows = ranked(&o.front, run.space.pick);
        assert_eq!(rows.len(), o.front.len());
        assert_eq!(Some(rows[0].id), o.pick.map(|i| o.front[i].id));
        for w in rows.windows(2) {
            assert!(
                pick_order(
                    run.space.pick,
                    (w[0].id, &w[0].metrics),
                    (w[1].id, &w[1].metrics)
                )
                .is_lt()
            );
        }
    }
}
