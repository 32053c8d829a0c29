//! `tailor measure`: build whole models with random weights and time them for real; two
//! or more are timed together, interleaved.

pub use crate::args::measure::MeasureArgs;
use anyhow::{Result, bail};
use tailor_cost::EditWorkload;
use tailor_profiler::Backend;
use tailor_report::MemoryReport;
use tailor_spec::load_dense_spec;
use tailor_workflow::edit::EditMeasureRequest;
use tailor_workflow::measure::{DecodeChainRequest, MeasureRequest};

pub fn run(args: &MeasureArgs) -> Result<()> {
    if let Some(edit) = args.edit.workload()? {
        return run_edit(args, edit);
    }
    if args.profile.is_some() && !args.decode_ops {
        bail!(
            "--profile sets a measurement beside a prediction: use it with --decode-ops or --edit"
        );
    }
    let one = match args.spec.as_slice() {
        [one] => Some(one),
        _ => None,
    };
    if args.decode_ops {
        let Some(spec) = one else {
            bail!("--decode-ops times one model: give one spec");
        };
        let report = tailor_workflow::measure::decode_chain(&DecodeChainRequest {
            spec: spec.clone(),
            backend: args.backend,
            context: args.workload.context,
            timing: args.timing.options()?,
            profile: args.profile.clone(),
            prompt: args.workload.prompt,
        })?;
        return print(args.json, &report, || report.render());
    }
    if args.memory_only {
        let Some(spec) = one else {
            bail!("--memory-only measures one model (a fresh process per model); give one spec");
        };
        let (prompt, context) = (args.workload.prompt, args.workload.context);
        let r = tailor_workflow::measure::memory_only(args.backend, spec, prompt, context)?;
        return print(args.json, &r, || r.render());
    }
    let measured = tailor_workflow::measure::measure(&MeasureRequest {
        specs: args.spec.clone(),
        backend: args.backend,
        prompt: args.workload.prompt,
        context: args.workload.context,
        timing: args.timing.options()?,
        memory: !args.no_memory && one.is_some(),
        // On CPU the resident set is measured in a child whose allocator returns freed
        // pages (this process's mimalloc keeps them); on a GPU the pool figure is read here.
        memory_in_child: args.backend != Backend::Wgpu && cfg!(feature = "mimalloc"),
    })?;
    if args.json {
        // One model: its report; several: an array of them.
        if let [m] = measured.as_slice() {
            println!("{}", serde_json::to_string_pretty(&m.report)?);
        } else {
            let reports: Vec<_> = measured.iter().map(|m| &m.report).collect();
            println!("{}", serde_json::to_string_pretty(&reports)?);
        }
        return Ok(());
    }
    let texts: Vec<_> = measured
        .iter()
        .map(|m| m.report.render(m.name.as_deref()))
        .collect();
    print!("{}", texts.join("\n"));
    if measured.len() > 1 {
        println!();
    }
    Ok(())
}

/// `value` as JSON, or the text.
fn print<T: serde::Serialize>(json: bool, value: &T, text: impl Fn() -> String) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        print!("{}", text());
    }
    Ok(())
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
        let spec = load_dense_spec(spec_path)?.spec;
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
    print(args.json, &report, || report.render())
}
