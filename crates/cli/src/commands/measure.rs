//! `tailor measure`: build whole models with random weights and time them for real; two
//! or more are timed together, interleaved.

use crate::args::TimingArgs;
use crate::fmt::{Table, bytes, thousands};
use anyhow::{Result, bail};
use clap::Args;
use std::path::PathBuf;
use tailor_cost::{EditMethod, EditWorkload};
use tailor_profiler::{Backend, ModelMeasurement, TimingOptions, measure_model, measure_models};
use tailor_report::{ChainReport, ChainRow, MeasureReport, MemoryReport, Timed};
use tailor_spec::load_spec;
use tailor_workflow::edit::EditMeasureRequest;
use tracing::info;

#[derive(Debug, Args)]
pub struct MeasureArgs {
    /// The model: a Hugging Face `config.json` or a tailor `spec.toml`. Give several to
    /// time them together: their prefills interleaved call by call in one session, then
    /// their decode steps likewise, so the machine's swings fall on all of them alike
    /// (timing only: memory needs a process per model).
    #[arg(required = true, num_args = 1..)]
    pub spec: Vec<PathBuf>,
    /// burn backend: flex (CPU, default), ndarray (CPU), wgpu (GPU).
    #[arg(long, default_value = "flex")]
    pub backend: Backend,
    #[command(flatten)]
    pub workload: crate::args::WorkloadArgs,
    #[command(flatten)]
    pub timing: TimingArgs,
    /// Only measure the peak memory (prints `{"peak_memory_bytes", "memory_source"}` with
    /// --json). The full command runs this in a child process of its own.
    #[arg(long, conflicts_with = "no_memory")]
    pub memory_only: bool,
    /// Only time the model; do not measure its memory.
    #[arg(long)]
    pub no_memory: bool,
    /// Time a decode step operator by operator as the model chains them (a sync after
    /// each), beside the same step timed whole: where the step's time goes.
    #[arg(long, conflicts_with_all = ["memory_only", "no_memory"])]
    pub decode_ops: bool,
    /// With --decode-ops or --edit: set what is measured beside this profile's prediction.
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// Time one knowledge edit of the model instead of inference: its prefix, a zo step
    /// and a bp step (burn's autodiff), and each method's peak memory in a fresh process.
    #[command(flatten)]
    pub edit: crate::args::EditArgs,
    /// With --edit: only the peak memory of an edit by this method, `zo` or `bp` (the
    /// full command runs this in a child process of its own).
    #[arg(long, requires = "edit", value_parser = parse_method)]
    pub edit_memory: Option<EditMethod>,
    /// Print one JSON object on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn parse_method(s: &str) -> Result<EditMethod, String> {
    EditMethod::ALL
        .into_iter()
        .find(|m| m.name() == s)
        .ok_or_else(|| format!("`{s}`: the edit methods are zo and bp"))
}

/// `tailor measure --edit`: one model's edit, timed whole, with each method's peak memory
/// from a child process, beside the profile's prediction.
fn run_edit(args: &MeasureArgs, edit: EditWorkload) -> Result<()> {
    let [spec_path] = args.spec.as_slice() else {
        bail!("--edit measures one model: give one spec");
    };
    if args.decode_ops || args.memory_only {
        bail!("--edit times an edit: leave out --decode-ops and --memory-only");
    }
    if let Some(method) = args.edit_memory {
        let spec = load_spec(spec_path)?.spec;
        let device = args.backend.open()?;
        let (peak, source) =
            tailor_profiler::measure_edit_memory(args.backend, &device, &spec, &edit, method)?;
        let r = MemoryReport {
            peak_memory_bytes: peak,
            memory_source: source,
        };
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    let report = tailor_workflow::edit::measure_edit(&EditMeasureRequest {
        spec: spec_path.clone(),
        backend: args.backend,
        edit,
        timing: args.timing.options()?,
        memory: !args.no_memory,
        profile: args.profile.clone(),
        prompt: args.workload.prompt,
        context: args.workload.context,
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(())
}

/// `tailor measure --decode-ops`: one model's decode step operator by operator, in its
/// chain, beside the profile's entries for the same calls.
fn run_decode_ops(args: &MeasureArgs) -> Result<()> {
    let [spec_path] = args.spec.as_slice() else {
        bail!("--decode-ops times one model: give one spec");
    };
    let spec = load_spec(spec_path)?.spec;
    let opts = args.timing.options()?;
    let context = args.workload.context;
    let predicted: Option<Vec<f64>> = match &args.profile {
        Some(p) => {
            let model = super::predict::load_profiled(p)?;
            let w = tailor_cost::Workload {
                prompt_tokens: args.workload.prompt,
                context,
                precision: tailor_spec::Precision::for_weights(model.profile().fingerprint.dtype),
            };
            let ops = model.predict(&spec, &w).decode_ops;
            Some(ops.iter().map(|o| o.total_ms()).collect())
        }
        None => None,
    };
    let device = args.backend.open()?;
    info!(spec = %spec_path.display(), context, "timing a decode step operator by operator");
    let chain = tailor_profiler::measure_decode_chain(&device, &spec, context as usize, &opts)?;
    let calls = tailor_cost::OpShape::pass(&spec, tailor_spec::Phase::Decode { context });
    let names = [
        "embedding",
        "norm",
        "q_proj",
        "kv_proj",
        "attention",
        "o_proj",
        "residual",
        "ffn",
        "final_norm",
        "lm_head",
    ];
    let report = ChainReport {
        spec: spec_path.display().to_string(),
        context,
        rows: chain
            .ops
            .iter()
            .enumerate()
            .map(|(i, m)| ChainRow {
                op: names[i].into(),
                calls: calls.get(i).map_or(0, |c| c.1),
                measured: timed(m),
                predicted_ms: predicted.as_ref().and_then(|p| p.get(i).copied()),
            })
            .collect(),
        marked: timed(&chain.marked),
        plain: timed(&chain.plain),
        profile: args.profile.as_ref().map(|p| p.display().to_string()),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(())
}

pub use tailor_workflow::edit::timed;

pub fn run(args: &MeasureArgs) -> Result<()> {
    if let Some(edit) = args.edit.workload()? {
        return run_edit(args, edit);
    }
    if args.profile.is_some() && !args.decode_ops {
        bail!(
            "--profile sets a measurement beside a prediction: use it with --decode-ops or --edit"
        );
    }
    if args.decode_ops {
        return run_decode_ops(args);
    }
    if let [_, _, ..] = args.spec.as_slice() {
        return run_interleaved(args);
    }
    let spec_path = &args.spec[0];
    let loaded = load_spec(spec_path)?;
    let opts = args.timing.options()?;
    let device = args.backend.open()?;
    let fingerprint = args.backend.fingerprint(&device);
    info!(
        spec = %spec_path.display(),
        params = loaded.spec.params().total,
        backend = %args.backend,
        "building and timing the whole model"
    );
    let (prompt, context) = (
        args.workload.prompt as usize,
        args.workload.context as usize,
    );
    let run = |memory: bool, timing: Option<&TimingOptions>| {
        measure_model(
            args.backend,
            &device,
            &loaded.spec,
            prompt,
            context,
            memory,
            timing,
        )
    };
    if args.memory_only {
        let m = run(true, None)?;
        let r = MemoryReport {
            peak_memory_bytes: m.peak_memory_bytes,
            memory_source: m.memory_source,
        };
        if args.json {
            println!("{}", serde_json::to_string_pretty(&r)?);
        } else {
            println!(
                "peak memory {} ({})",
                r.peak_memory_bytes
                    .map_or("not measured".into(), |b| bytes(b as f64)),
                r.memory_source
            );
        }
        return Ok(());
    }
    // On CPU the resident set is measured in a child whose allocator returns freed pages;
    // on a GPU the pool figure is read in this process.
    let child = !args.no_memory && args.backend != Backend::Wgpu && cfg!(feature = "mimalloc");
    let memory = if child {
        Some(tailor_workflow::child::memory_in_child(
            args.backend,
            spec_path,
            args.workload.prompt,
            args.workload.context,
        )?)
    } else {
        None
    };
    let m = run(!args.no_memory && !child, Some(&opts))?;
    let (peak_memory_bytes, memory_source) = match memory {
        Some(r) => (r.peak_memory_bytes, r.memory_source),
        None => (m.peak_memory_bytes, m.memory_source),
    };
    let report = MeasureReport {
        peak_memory_bytes,
        memory_source,
        ..report(args, spec_path, &fingerprint, &m)?
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    print_report(args, loaded.name.as_deref(), &report);
    Ok(())
}

/// The report of one measured model (memory as measured with it).
fn report(
    args: &MeasureArgs,
    spec: &std::path::Path,
    fingerprint: &tailor_cost::Fingerprint,
    m: &ModelMeasurement,
) -> Result<MeasureReport> {
    let (Some(prefill), Some(decode)) = (&m.prefill, &m.decode) else {
        bail!("the model was not timed");
    };
    Ok(MeasureReport {
        spec: spec.display().to_string(),
        fingerprint: fingerprint.clone(),
        prompt_tokens: args.workload.prompt,
        context: args.workload.context,
        params: m.params,
        prefill: timed(prefill),
        decode: timed(decode),
        peak_memory_bytes: m.peak_memory_bytes,
        memory_source: m.memory_source,
        build_s: m.build_s,
    })
}

/// Several models timed against each other; `--json` prints an array of reports.
fn run_interleaved(args: &MeasureArgs) -> Result<()> {
    if args.memory_only {
        bail!("--memory-only measures one model (a fresh process per model); give one spec");
    }
    let loaded = args
        .spec
        .iter()
        .map(|p| load_spec(p))
        .collect::<Result<Vec<_>, _>>()?;
    let opts = args.timing.options()?;
    let device = args.backend.open()?;
    let fingerprint = args.backend.fingerprint(&device);
    info!(
        models = loaded.len(),
        backend = %args.backend,
        "building the models and timing them interleaved (memory is not measured with several models)"
    );
    let specs: Vec<_> = loaded.iter().map(|l| l.spec.clone()).collect();
    let ms = measure_models(
        &device,
        &specs,
        args.workload.prompt as usize,
        args.workload.context as usize,
        &opts,
    )?;
    let reports = args
        .spec
        .iter()
        .zip(&ms)
        .map(|(p, m)| report(args, p, &fingerprint, m))
        .collect::<Result<Vec<_>>>()?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
        return Ok(());
    }
    for (l, r) in loaded.iter().zip(&reports) {
        print_report(args, l.name.as_deref(), r);
        println!();
    }
    Ok(())
}

fn print_report(args: &MeasureArgs, name: Option<&str>, report: &MeasureReport) {
    let f = &report.fingerprint;
    println!(
        "{} measured with {} on {}, {} threads\n",
        name.unwrap_or(&report.spec),
        f.backend,
        f.machine(),
        f.threads
    );
    let mut t = Table::new(&["", "median", "p10", "p90", "samples"]);
    let row = |label: String, x: &Timed| {
        vec![
            label,
            format!("{:.3} ms", x.median_ms),
            format!("{:.3} ms", x.p10_ms),
            format!("{:.3} ms", x.p90_ms),
            format!("{}{}", x.samples, if x.capped { " (capped)" } else { "" }),
        ]
    };
    t.row(row(
        format!("prefill ({} tokens)", args.workload.prompt),
        &report.prefill,
    ));
    t.row(row(
        format!("decode (context {})", args.workload.context),
        &report.decode,
    ));
    print!("{}", t.render(2));
    println!(
        "\n  parameters {}; peak memory {} ({}); weights built in {:.1} s",
        thousands(u128::from(report.params)),
        report
            .peak_memory_bytes
            .map_or("not measured".into(), |b| bytes(b as f64)),
        report.memory_source,
        report.build_s
    );
}
