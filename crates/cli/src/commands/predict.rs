//! `tailor predict`: what one spec costs on a profiled device.

use crate::fmt::{Table, bytes};
use anyhow::Result;
use clap::Args;
use serde_json::json;
use std::path::PathBuf;
use tailor_cost::{Prediction, Profiled, Source, Workload};
use tailor_spec::{Precision, load_spec};

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// The model: a Hugging Face `config.json` or a tailor `spec.toml`.
    pub spec: PathBuf,
    /// Device profile written by `tailor profile` (profiles/*.toml): burn or llama.cpp.
    #[arg(long)]
    pub profile: PathBuf,
    #[command(flatten)]
    pub workload: crate::args::WorkloadArgs,
    /// Also price one knowledge edit (printed under `edit` with --json).
    #[command(flatten)]
    pub edit: crate::args::EditArgs,
    /// Print one JSON object on stdout instead of tables.
    #[arg(long)]
    pub json: bool,
}

pub use tailor_workflow::search::{check_precision, load_profiled};

/// `{attention, ffn, lm_head, other}` as shares of the total.
pub fn run(args: &PredictArgs) -> Result<()> {
    let edit = args.edit.workload()?;
    if super::llama::is_llama(&args.profile) {
        return super::llama::predict(
            &args.spec,
            &args.profile,
            args.workload.prompt,
            args.workload.context,
            edit,
            args.json,
        );
    }
    let loaded = load_spec(&args.spec)?;
    let model = load_profiled(&args.profile)?;
    let precision = Precision::for_weights(model.profile().fingerprint.dtype);
    let workload = Workload {
        prompt_tokens: args.workload.prompt,
        context: args.workload.context,
        precision,
    };
    let p = model.predict(&loaded.spec, &workload);
    let edit = edit.map(|e| model.predict_edit(&loaded.spec, &workload, &e));
    let e = &p.estimate;
    let derived: Vec<_> = p.derived().collect();
    let f = &model.profile().fingerprint;
    if args.json {
        let v = json!({
            "spec": args.spec.display().to_string(),
            "name": loaded.name,
            "profile": args.profile.display().to_string(),
            "fingerprint": f,
            "workload": workload,
            "params": loaded.spec.params().total,
            "prefill_ms": e.prefill_ms,
            "prefill_tokens_per_s": e.prefill_tokens_per_s(args.workload.prompt),
            "decode_ms_per_token": e.decode_ms_per_token,
            "decode_tokens_per_s": e.decode_tokens_per_s(),
            "peak_memory_bytes": e.peak_memory_bytes,
            "memory_overhead_bytes": model.memory_overhead_bytes(),
            "prefill_breakdown": e.prefill_breakdown.shares(),
            "decode_breakdown": e.decode_breakdown.shares(),
            "ops_not_measured": derived.len(),
            "prefill_ops": p.prefill_ops,
            "decode_ops": p.decode_ops,
            "edit": edit,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    print!("{}", render(args, loaded.name.as_deref(), &model, &p));
    if let Some(edit) = &edit {
        print!("{}", render_edit(&edit.estimate));
    }
    Ok(())
}

/// The edit's table: each method's step, whole edit and peak memory.
pub fn render_edit(e: &tailor_cost::EditEstimate) -> String {
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

fn render(args: &PredictArgs, name: Option<&str>, model: &Profiled, p: &Prediction) -> String {
    let e = &p.estimate;
    let f = &model.profile().fingerprint;
    let mut out = format!(
        "{} on {} ({} on {}, {} threads)\n\n",
        name.unwrap_or(&args.spec.display().to_string()),
        model.profile().name,
        f.backend,
        f.machine(),
        f.threads
    );
    let mut t = Table::new(&["", "", ""]);
    t.row(vec![
        format!("prefill ({} tokens)", args.workload.prompt),
        format!("{:.2} ms", e.prefill_ms),
        format!(
            "{:.0} tokens/s",
            e.prefill_tokens_per_s(args.workload.prompt)
        ),
    ]);
    t.row(vec![
        format!("decode (context {})", args.workload.context),
        format!("{:.3} ms/token", e.decode_ms_per_token),
        format!("{:.1} tokens/s", e.decode_tokens_per_s()),
    ]);
    t.row(vec![
        "peak memory".into(),
        bytes(e.peak_memory_bytes as f64),
        match model.memory_overhead_bytes() {
            Some(o) => format!(
                "{} weights; {} of it the runtime's",
                f.dtype,
                bytes(o as f64)
            ),
            None => format!(
                "{} weights; the runtime's own memory is not in the profile (rerun `tailor \
                 profile` to measure it)",
                f.dtype
            ),
        },
    ]);
    out += &t.render(2);
    out += "\n  where the time goes\n";
    let mut b = Table::new(&["", "attention", "ffn", "lm head", "other"]);
    for (phase, br) in [
        ("prefill", &e.prefill_breakdown),
        ("decode", &e.decode_breakdown),
    ] {
        let pct = |v: f64| format!("{:.1}%", 100.0 * v / br.total_ms());
        b.row(vec![
            phase.into(),
            pct(br.attention_ms),
            pct(br.ffn_ms),
            pct(br.lm_head_ms),
            pct(br.other_ms),
        ]);
    }
    out += &b.render(2);
    let derived: Vec<_> = p.derived().collect();
    if derived.is_empty() {
        out += "\n  every operator shape is a measured entry of the profile\n";
    } else {
        out += &format!(
            "\n  {} operator shapes are not in the profile and were estimated from their \
             neighbours (`tailor profile --spec {}` measures them):\n",
            derived.len(),
            args.spec.display()
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
    out
}
