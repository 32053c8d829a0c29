//! What `tailor predict` prints: one model's predicted cost on a profiled device, as one
//! typed value per engine that is both the `--json` object and the table.

use crate::fmt::{Table, bytes};
use serde::Serialize;
use tailor_cost::{
    EditEstimate, EditPrediction, Estimate, Fingerprint, OpCost, Prediction, Profiled, Shares,
    Source, Workload,
};
use tailor_llamacpp::LlamaFingerprint;
use tailor_spec::LoadedSpec;

/// A prediction from a burn profile.
#[derive(Debug, Clone, Serialize)]
pub struct BurnPrediction {
    pub spec: String,
    pub name: Option<String>,
    pub profile: String,
    pub fingerprint: Fingerprint,
    pub workload: Workload,
    pub params: u64,
    pub prefill_ms: f64,
    pub prefill_tokens_per_s: f64,
    pub decode_ms_per_token: f64,
    pub decode_tokens_per_s: f64,
    pub peak_memory_bytes: u64,
    /// The runtime's own memory, when the profile measured it.
    pub memory_overhead_bytes: Option<u64>,
    pub prefill_breakdown: Shares,
    pub decode_breakdown: Shares,
    /// Operators of either pass whose shape is not a measured entry.
    pub ops_not_measured: usize,
    pub prefill_ops: Vec<OpCost>,
    pub decode_ops: Vec<OpCost>,
    pub edit: Option<EditPrediction>,
    /// The profile's own name (the table's title names it).
    #[serde(skip)]
    pub profile_name: String,
}

impl BurnPrediction {
    /// `spec` and `profile` are the paths as the user gave them.
    pub fn new(
        spec: &str,
        loaded: &LoadedSpec,
        profile: &str,
        model: &Profiled,
        workload: Workload,
        p: Prediction,
        edit: Option<EditPrediction>,
    ) -> Self {
        let e = &p.estimate;
        Self {
            spec: spec.to_string(),
            name: loaded.name.clone(),
            profile: profile.to_string(),
            fingerprint: model.profile().fingerprint.clone(),
            params: loaded.spec.params().total,
            prefill_ms: e.prefill_ms,
            prefill_tokens_per_s: e.prefill_tokens_per_s(workload.prompt_tokens),
            decode_ms_per_token: e.decode_ms_per_token,
            decode_tokens_per_s: e.decode_tokens_per_s(),
            peak_memory_bytes: e.peak_memory_bytes,
            memory_overhead_bytes: model.memory_overhead_bytes(),
            prefill_breakdown: e.prefill_breakdown.shares(),
            decode_breakdown: e.decode_breakdown.shares(),
            ops_not_measured: p.derived().count(),
            workload,
            profile_name: model.profile().name.clone(),
            prefill_ops: p.prefill_ops,
            decode_ops: p.decode_ops,
            edit,
        }
    }

    /// The table `tailor predict` prints.
    pub fn render(&self) -> String {
        let f = &self.fingerprint;
        let w = &self.workload;
        let mut out = format!(
            "{} on {} ({} on {}, {} threads)\n\n",
            self.name.as_deref().unwrap_or(&self.spec),
            self.profile_name,
            f.backend,
            f.machine(),
            f.threads
        );
        let mut t = Table::new(&["", "", ""]);
        t.row(vec![
            format!("prefill ({} tokens)", w.prompt_tokens),
            format!("{:.2} ms", self.prefill_ms),
            format!("{:.0} tokens/s", self.prefill_tokens_per_s),
        ]);
        t.row(vec![
            format!("decode (context {})", w.context),
            format!("{:.3} ms/token", self.decode_ms_per_token),
            format!("{:.1} tokens/s", self.decode_tokens_per_s),
        ]);
        t.row(vec![
            "peak memory".into(),
            bytes(self.peak_memory_bytes as f64),
            match self.memory_overhead_bytes {
                Some(o) => format!(
                    "{} weights; {} of it the runtime's",
                    f.dtype,
                    bytes(o as f64)
                ),
                None => format!(
                    "{} weights; the runtime's own memory is not in the profile (rerun \
                     `tailor profile` to measure it)",
                    f.dtype
                ),
            },
        ]);
        out += &t.render(2);
        out += "\n  where the time goes\n";
        let mut b = Table::new(&["", "attention", "ffn", "lm head", "other"]);
        for (phase, s) in [
            ("prefill", &self.prefill_breakdown),
            ("decode", &self.decode_breakdown),
        ] {
            let pct = |v: f64| format!("{:.1}%", 100.0 * v);
            b.row(vec![
                phase.into(),
                pct(s.attention),
                pct(s.ffn),
                pct(s.lm_head),
                pct(s.other),
            ]);
        }
        out += &b.render(2);
        let derived: Vec<_> = self
            .prefill_ops
            .iter()
            .chain(&self.decode_ops)
            .filter(|o| o.source != Source::Measured)
            .collect();
        if derived.is_empty() {
            out += "\n  every operator shape is a measured entry of the profile\n";
        } else {
            out += &format!(
                "\n  {} operator shapes are not in the profile and were estimated from their \
                 neighbours (`tailor profile --spec {}` measures them):\n",
                derived.len(),
                self.spec
            );
            let mut d = Table::new(&["operator", "calls", "per call", "source"]);
            for o in derived {
                d.row(vec![
                    o.shape.to_string(),
                    o.calls.to_string(),
                    format!("{:.1} us", o.us_per_call),
                    match o.source {
                        Source::Roofline => "roofline only".into(),
                        s => s.name().into(),
                    },
                ]);
            }
            out += &d.render(4);
        }
        if let Some(edit) = &self.edit {
            out += &render_edit(&edit.estimate);
        }
        out
    }
}

/// A llama.cpp profile's edit: its estimate and what it could not measure.
#[derive(Debug, Clone, Serialize)]
pub struct LlamaEdit {
    pub estimate: EditEstimate,
    pub derived: Vec<String>,
}

/// A prediction from a llama.cpp profile.
#[derive(Debug, Clone, Serialize)]
pub struct LlamaPrediction {
    pub spec: String,
    pub name: Option<String>,
    pub profile: String,
    /// Always `llama.cpp` (what a program reading the output tells the two apart by).
    pub engine: &'static str,
    pub fingerprint: LlamaFingerprint,
    pub workload: Workload,
    pub params: u64,
    pub prefill_ms: f64,
    pub prefill_tokens_per_s: f64,
    pub decode_ms_per_token: f64,
    pub decode_tokens_per_s: f64,
    pub peak_memory_bytes: u64,
    pub prefill_breakdown: Shares,
    pub decode_breakdown: Shares,
    /// Phases whose tables did not hold the shape: how each was estimated.
    pub derived: Vec<String>,
    /// Parts of the spec llama.cpp's `llama` architecture times as something else.
    pub substitutions: Vec<String>,
    pub edit: Option<LlamaEdit>,
}

impl LlamaPrediction {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        spec: &str,
        loaded: &LoadedSpec,
        profile: &str,
        fingerprint: LlamaFingerprint,
        workload: Workload,
        estimate: &Estimate,
        derived: Vec<String>,
        substitutions: Vec<String>,
        edit: Option<LlamaEdit>,
    ) -> Self {
        Self {
            spec: spec.to_string(),
            name: loaded.name.clone(),
            profile: profile.to_string(),
            engine: "llama.cpp",
            fingerprint,
            params: loaded.spec.params().total,
            prefill_ms: estimate.prefill_ms,
            prefill_tokens_per_s: estimate.prefill_tokens_per_s(workload.prompt_tokens),
            decode_ms_per_token: estimate.decode_ms_per_token,
            decode_tokens_per_s: estimate.decode_tokens_per_s(),
            peak_memory_bytes: estimate.peak_memory_bytes,
            prefill_breakdown: estimate.prefill_breakdown.shares(),
            decode_breakdown: estimate.decode_breakdown.shares(),
            workload,
            derived,
            substitutions,
            edit,
        }
    }

    /// The table `tailor predict` prints.
    pub fn render(&self) -> String {
        let w = &self.workload;
        let mut t = Table::new(&["", ""]);
        t.row(vec![
            "engine".into(),
            format!(
                "llama.cpp {} ({})",
                self.fingerprint.build_commit, w.precision.weights
            ),
        ]);
        t.row(vec!["parameters".into(), self.params.to_string()]);
        t.row(vec![
            format!("prefill {} tokens", w.prompt_tokens),
            format!(
                "{:.2} ms ({:.0} tok/s)",
                self.prefill_ms, self.prefill_tokens_per_s
            ),
        ]);
        t.row(vec![
            format!("decode at {}", w.context),
            format!(
                "{:.3} ms/token ({:.1} tok/s)",
                self.decode_ms_per_token, self.decode_tokens_per_s
            ),
        ]);
        t.row(vec![
            "peak memory".into(),
            bytes(self.peak_memory_bytes as f64),
        ]);
        let mut out = t.render(2);
        for d in &self.derived {
            out += &format!("not measured: {d}\n");
        }
        for s in &self.substitutions {
            out += &format!("timed as: {s}\n");
        }
        if let Some(edit) = &self.edit {
            out += &render_edit(&edit.estimate);
            out += "  bp: not measured (llama.cpp runs no backward pass)\n";
            for d in &edit.derived {
                out += &format!("  edit not measured: {d}\n");
            }
        }
        out
    }
}

/// The edit's table: each method's step, whole edit and peak memory.
pub fn render_edit(e: &EditEstimate) -> String {
    let w = &e.workload;
    let mut out = format!(
        "\n  one edit: {} tokens at layer {}, {} target tokens, {} steps, {} zo queries\n",
        w.tokens, e.layer, w.target_tokens, w.steps, w.queries
    );
    let mut t = Table::new(&["", "step", "whole edit", "peak memory", "from"]);
    let ms = |v: Option<f64>| v.map_or("not priced".into(), |v| format!("{v:.2} ms"));
    for (name, c) in [("zo (forward only)", &e.zo), ("bp (backprop, f32)", &e.bp)] {
        t.row(vec![
            name.into(),
            ms(c.step_ms),
            ms(c.total_ms),
            bytes(c.peak_memory_bytes as f64),
            c.source.map_or(String::new(), |s| s.name().to_string()),
        ]);
    }
    out += &t.render(2);
    let (step, memory) = e.bp_over_zo();
    out += &format!(
        "  bp/zo: step {}, peak memory {memory:.2}x\n",
        step.map_or("-".into(), |s| format!("{s:.2}x"))
    );
    out
}
