//! `tailor measure`: whole models with random weights, timed in this process (one alone,
//! several interleaved against each other), each one's memory in a child process of its
//! own; and one model's decode step timed operator by operator in its chain, beside a
//! profile's prediction for the same calls.

use crate::edit::timed;
use crate::error::{Result, WorkflowError};
use std::path::PathBuf;
use tailor_cost::{Fingerprint, OpShape, Workload};
use tailor_profiler::{Backend, ModelMeasurement, TimingOptions, measure_model, measure_models};
use tailor_report::{ChainReport, ChainRow, MeasureReport, MemoryReport};
use tailor_spec::{LoadedSpec, Phase, Precision, load_spec};
use tracing::info;

/// Whole models to time on this machine.
#[derive(Debug, Clone)]
pub struct MeasureRequest {
    /// One model, or several timed interleaved (their memory is then not measured).
    pub specs: Vec<PathBuf>,
    pub backend: Backend,
    pub prompt: u64,
    pub context: u64,
    pub timing: TimingOptions,
    /// Measure the peak memory (one model only).
    pub memory: bool,
    /// Measure it in a fresh child process (CPU backends, when this process's allocator
    /// keeps freed pages and would count them), not in this one.
    pub memory_in_child: bool,
}

/// One measured model: its name (when its file gives one) and its report.
#[derive(Debug, Clone)]
pub struct Measured {
    pub name: Option<String>,
    pub report: MeasureReport,
}

/// Times `req`'s models: one alone, with its peak memory (in a fresh child, or in this
/// process); or several interleaved in rounds, so they meet the same machine.
pub fn measure(req: &MeasureRequest) -> Result<Vec<Measured>> {
    let loaded = req
        .specs
        .iter()
        .map(|p| load_spec(p))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let device = req.backend.open()?;
    let fingerprint = req.backend.fingerprint(&device);
    let (prompt, context) = (req.prompt as usize, req.context as usize);
    let ms = if let [one] = loaded.as_slice() {
        info!(
            spec = %req.specs[0].display(),
            params = one.spec.params().total,
            backend = %req.backend,
            "building and timing the whole model"
        );
        let child = req.memory && req.memory_in_child;
        let memory = if child {
            Some(crate::child::memory_in_child(
                req.backend,
                &req.specs[0],
                req.prompt,
                req.context,
            )?)
        } else {
            None
        };
        let mut m = measure_model(
            req.backend,
            &device,
            &one.spec,
            prompt,
            context,
            req.memory && !child,
            Some(&req.timing),
        )?;
        if let Some(r) = memory {
            m.peak_memory_bytes = r.peak_memory_bytes;
            m.memory_source = r.memory_source;
        }
        vec![m]
    } else {
        info!(
            models = loaded.len(),
            backend = %req.backend,
            "building the models and timing them interleaved (memory is not measured with \
             several models)"
        );
        let specs: Vec<_> = loaded.iter().map(|l| l.spec.clone()).collect();
        measure_models(&device, &specs, prompt, context, &req.timing)?
    };
    req.specs
        .iter()
        .zip(loaded)
        .zip(&ms)
        .map(|((path, l), m): ((&PathBuf, LoadedSpec), _)| {
            Ok(Measured {
                name: l.name,
                report: report(req, path, &fingerprint, m)?,
            })
        })
        .collect()
}

/// The peak memory of one model's inference, measured in this process (what the child of
/// [`measure`] runs: `tailor measure --memory-only`).
pub fn memory_only(
    backend: Backend,
    spec: &std::path::Path,
    prompt: u64,
    context: u64,
) -> Result<MemoryReport> {
    let loaded = load_spec(spec)?;
    let device = backend.open()?;
    let m = measure_model(
        backend,
        &device,
        &loaded.spec,
        prompt as usize,
        context as usize,
        true,
        None,
    )?;
    Ok(MemoryReport {
        peak_memory_bytes: m.peak_memory_bytes,
        memory_source: m.memory_source,
    })
}

/// The report of one measured model (memory as measured with it).
fn report(
    req: &MeasureRequest,
    spec: &std::path::Path,
    fingerprint: &Fingerprint,
    m: &ModelMeasurement,
) -> Result<MeasureReport> {
    let (Some(prefill), Some(decode)) = (&m.prefill, &m.decode) else {
        return Err(WorkflowError::NothingMeasured(format!(
            "{}: the model was built but not timed",
            spec.display()
        )));
    };
    Ok(MeasureReport {
        spec: spec.display().to_string(),
        fingerprint: fingerprint.clone(),
        prompt_tokens: req.prompt,
        context: req.context,
        params: m.params,
        prefill: timed(prefill),
        decode: timed(decode),
        peak_memory_bytes: m.peak_memory_bytes,
        memory_source: m.memory_source,
        build_s: m.build_s,
    })
}

/// One model's decode step, operator by operator.
#[derive(Debug, Clone)]
pub struct DecodeChainRequest {
    pub spec: PathBuf,
    pub backend: Backend,
    pub context: u64,
    pub timing: TimingOptions,
    /// Set this profile's prediction beside each operator (at `prompt` and `context`).
    pub profile: Option<PathBuf>,
    pub prompt: u64,
}

/// Times `req`'s decode step as the model chains its operators (a sync and a clock read
/// after each), alternating with unmarked steps, beside the profile's prediction.
pub fn decode_chain(req: &DecodeChainRequest) -> Result<ChainReport> {
    let spec = load_spec(&req.spec)?.spec;
    let context = req.context;
    let predicted: Option<Vec<f64>> = match &req.profile {
        Some(p) => {
            let model = crate::search::load_profiled(p)?;
            let w = Workload {
                prompt_tokens: req.prompt,
                context,
                precision: Precision::for_weights(model.profile().fingerprint.dtype),
            };
            let ops = model.predict(&spec, &w).decode_ops;
            Some(ops.iter().map(|o| o.total_ms()).collect())
        }
        None => None,
    };
    let device = req.backend.open()?;
    info!(spec = %req.spec.display(), context, "timing a decode step operator by operator");
    let chain =
        tailor_profiler::measure_decode_chain(&device, &spec, context as usize, &req.timing)?;
    let calls = OpShape::pass(&spec, Phase::Decode { context });
    Ok(ChainReport {
        spec: req.spec.display().to_string(),
        context,
        rows: chain
            .ops
            .iter()
            .zip(&calls)
            .enumerate()
            .map(|(i, (m, (shape, calls)))| ChainRow {
                op: shape.to_string(),
                calls: *calls,
                measured: timed(m),
                predicted_ms: predicted.as_ref().and_then(|p| p.get(i).copied()),
            })
            .collect(),
        marked: timed(&chain.marked),
        plain: timed(&chain.plain),
        profile: req.profile.as_ref().map(|p| p.display().to_string()),
    })
}
