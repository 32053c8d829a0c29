//! The llama.cpp engine in the commands: `profile --engine llama.cpp`, and `predict`,
//! `search`, `validate` and `run` on a llama.cpp profile. The work is `tailor-llamacpp`'s;
//! this module turns arguments into its calls and prints.

use crate::fmt::{Table, bytes};
use anyhow::{Result, anyhow};
use clap::{Args, ValueEnum};
use serde_json::json;
use std::path::{Path, PathBuf};
use tailor_cost::Workload;
use tailor_llamacpp::{LlamaBench, Settings, WeightType, is_llama_profile};
use tailor_spec::{DType, Precision};
use tailor_workflow::llama::LlamaProfileOutcome;
pub use tailor_workflow::llama::{depths, load_cost, with_weights};
use tracing::warn;

/// Which engine a profile measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Engine {
    /// burn, in process (flex, ndarray, wgpu; f32), operator by operator.
    #[default]
    Burn,
    /// llama.cpp through the user's llama-bench (GGUF: f32, f16, q8_0, q4_0), whole models.
    #[value(name = "llama.cpp")]
    LlamaCpp,
}

/// How llama-bench is run (the llama.cpp engine only).
#[derive(Debug, Clone, Args)]
pub struct LlamaArgs {
    /// llama-bench binary [default: $TAILOR_LLAMA_BENCH, else llama-bench on PATH]
    /// (scripts/build-llama-bench.sh builds the pinned one).
    #[arg(long, value_name = "PATH")]
    pub llama_bench: Option<PathBuf>,
    /// Weight type of the GGUF models (f32, f16, q8_0, q4_0) [default: the space's].
    #[arg(long, value_parser = parse_weights)]
    pub weights: Option<DType>,
    /// Threads llama-bench computes with [default: all CPUs].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,
    /// llama-bench repetitions per run (-r); a run's time is the median of the last half
    /// (the first ones are warm-up).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub repetitions: u32,
    /// Flash attention (-fa): on, off or auto.
    #[arg(long, default_value = "auto", value_parser = ["on", "off", "auto"])]
    pub flash_attn: String,
    /// KV cache type (-ctk and -ctv): f16, q8_0, ...
    #[arg(long, default_value = "f16")]
    pub cache_type: String,
    /// Decode steps per llama-bench decode test (-n), centred on the workload's context.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(2..=4096))]
    pub decode_tokens: u64,
}

fn parse_weights(s: &str) -> Result<DType, String> {
    let d = DType::from_name(s).ok_or_else(|| format!("unknown weight type `{s}`"))?;
    WeightType::from_dtype(d).map_err(|e| e.to_string())?;
    Ok(d)
}

impl LlamaArgs {
    pub fn settings(&self) -> Settings {
        Settings {
            threads: self.threads.unwrap_or_else(|| Settings::default().threads),
            flash_attn: self.flash_attn.clone(),
            cache_type: self.cache_type.clone(),
            repetitions: self.repetitions,
        }
    }

    /// The llama-bench to run; on a device whose binaries start through an emulator
    /// (the qemu transport), through that emulator too.
    pub fn bench(&self) -> Result<LlamaBench> {
        let mut bench = LlamaBench::locate(self.llama_bench.as_deref())?;
        bench.prefix.extend(crate::remote::exec_prefix());
        Ok(bench)
    }

    /// The same settings as command-line arguments, for a `tailor profile` on a device
    /// whose llama-bench is `./llama-bench` (its working folder).
    pub fn to_device_args(&self) -> Vec<String> {
        let mut args: Vec<String> = vec!["--llama-bench".into(), "./llama-bench".into()];
        if let Some(w) = self.weights {
            args.extend(["--weights".into(), w.to_string()]);
        }
        if let Some(t) = self.threads {
            args.extend(["--threads".into(), t.to_string()]);
        }
        args.extend([
            "--repetitions".into(),
            self.repetitions.to_string(),
            "--flash-attn".into(),
            self.flash_attn.clone(),
            "--cache-type".into(),
            self.cache_type.clone(),
            "--decode-tokens".into(),
            self.decode_tokens.to_string(),
        ]);
        args
    }
}

/// Whether the file at `path` is a llama.cpp profile.
pub fn is_llama(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|s| is_llama_profile(&s))
}

/// The outcome of a llama.cpp profiling run.
pub type ProfileOutcome = LlamaProfileOutcome;

/// Prints a profiling outcome.
pub fn print_profile(o: &ProfileOutcome, json_out: bool) -> Result<()> {
    let report = o.report();
    if report.loaded_entries > 0 {
        warn!(
            loaded = report.loaded_entries,
            "probe entries with a round timed while other processes took a share of the \
             CPUs (`loaded_rounds` in the profile): re-measure on a quiet machine \
             (`--force`)"
        );
    }
    if json_out {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(())
}

/// `tailor predict` on a llama.cpp profile.
pub fn predict(
    spec_path: &Path,
    profile: &Path,
    prompt: u64,
    context: u64,
    edit: Option<tailor_cost::EditWorkload>,
    json_out: bool,
) -> Result<()> {
    let loaded = tailor_spec::load_spec(spec_path)?;
    let cost = load_cost(profile, None)?;
    let w = Workload {
        prompt_tokens: prompt,
        context,
        precision: Precision::for_weights(cost.profile().fingerprint.weights),
    };
    cost.check_workload(&w)
        .map_err(|e| anyhow!("{}: {e}", profile.display()))?;
    let p = cost.predict(&loaded.spec, &w);
    let edit = edit.map(|e| cost.predict_edit(&loaded.spec, &w, &e));
    let e = &p.estimate;
    let subs = WeightType::from_dtype(w.precision.weights)
        .ok()
        .and_then(|wt| tailor_llamacpp::model::substitutions(&loaded.spec, wt).ok())
        .unwrap_or_default();
    if json_out {
        let v = json!({
            "spec": spec_path.display().to_string(),
            "name": loaded.name,
            "profile": profile.display().to_string(),
            "engine": "llama.cpp",
            "fingerprint": cost.profile().fingerprint,
            "workload": w,
            "params": loaded.spec.params().total,
            "prefill_ms": e.prefill_ms,
            "prefill_tokens_per_s": e.prefill_tokens_per_s(prompt),
            "decode_ms_per_token": e.decode_ms_per_token,
            "decode_tokens_per_s": e.decode_tokens_per_s(),
            "peak_memory_bytes": e.peak_memory_bytes,
            "prefill_breakdown": e.prefill_breakdown.shares(),
            "decode_breakdown": e.decode_breakdown.shares(),
            "derived": p.derived,
            "substitutions": subs,
            "edit": edit.as_ref().map(|(estimate, derived)| json!({
                "estimate": estimate,
                "derived": derived,
            })),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let mut t = Table::new(&["", ""]);
    t.row(vec![
        "engine".into(),
        format!(
            "llama.cpp {} ({})",
            cost.profile().fingerprint.build_commit,
            w.precision.weights
        ),
    ]);
    t.row(vec![
        "parameters".into(),
        loaded.spec.params().total.to_string(),
    ]);
    t.row(vec![
        format!("prefill {prompt} tokens"),
        format!(
            "{:.2} ms ({:.0} tok/s)",
            e.prefill_ms,
            e.prefill_tokens_per_s(prompt)
        ),
    ]);
    t.row(vec![
        format!("decode at {context}"),
        format!(
            "{:.3} ms/token ({:.1} tok/s)",
            e.decode_ms_per_token,
            e.decode_tokens_per_s()
        ),
    ]);
    t.row(vec![
        "peak memory".into(),
        bytes(e.peak_memory_bytes as f64),
    ]);
    print!("{}", t.render(2));
    for d in &p.derived {
        println!("not measured: {d}");
    }
    for s in &subs {
        println!("timed as: {s}");
    }
    if let Some((estimate, derived)) = &edit {
        print!("{}", super::predict::render_edit(estimate));
        println!("  bp: not measured (llama.cpp runs no backward pass)");
        for d in derived {
            println!("  edit not measured: {d}");
        }
    }
    Ok(())
}
