//! `tailor measure --edit`: one model's knowledge edit run whole (the prefix, a zo step, a
//! bp step on burn's autodiff), each method's peak memory in a child process of its own,
//! beside a profile's prediction.

use crate::error::{Result, WorkflowError};
use std::path::PathBuf;
use tailor_cost::{EditMethod, EditWorkload, MemorySource, Workload};
use tailor_profiler::{Backend, Measurement, TimingOptions};
use tailor_report::fmt::bytes;
use tailor_report::{EditMeasured, EditReport, MemoryReport, Timed};
use tailor_spec::{DType, Precision, load_dense_spec};
use tracing::info;

/// What to measure.
#[derive(Debug, Clone)]
pub struct EditMeasureRequest {
    pub spec: PathBuf,
    pub backend: Backend,
    pub edit: EditWorkload,
    pub timing: TimingOptions,
    /// Measure each method's peak memory (in children).
    pub memory: bool,
    /// Set the prediction of this profile beside each measurement.
    pub profile: Option<PathBuf>,
    /// The inference workload of the prediction (its precision is the profile's).
    pub prompt: u64,
    pub context: u64,
}

/// A phase as the profiler timed it, in the report's units.
pub fn timed(m: &Measurement) -> Timed {
    Timed {
        median_ms: m.median_us / 1e3,
        p10_ms: m.p10_us / 1e3,
        p90_ms: m.p90_us / 1e3,
        samples: m.samples_us.len(),
        capped: m.capped,
    }
}

/// Measures `req`'s edit. A model whose bp edit cannot fit in the memory available now is
/// refused before anything is built. Memory is measured first, each method in a fresh
/// child, while this process holds nothing large (its allocator keeps freed pages: a child
/// started after the timing would add its peak to what this process still holds).
pub fn measure_edit(req: &EditMeasureRequest) -> Result<EditReport> {
    let spec = load_dense_spec(&req.spec)?.spec;
    let edit = req.edit;
    let predicted = match &req.profile {
        Some(p) => {
            let model = crate::search::load_profiled(p)?;
            let w = Workload {
                prompt_tokens: req.prompt,
                context: req.context,
                precision: Precision::for_weights(model.profile().fingerprint.dtype),
            };
            Some(model.predict_edit(&spec, &w, &edit).estimate)
        }
        None => None,
    };
    let f32_workload = Workload {
        prompt_tokens: req.prompt,
        context: req.context,
        precision: Precision::for_weights(DType::F32),
    };
    let need = edit.peak_memory_bytes(&spec, &f32_workload, EditMethod::Bp);
    if let Some(available) = crate::schedule::mem_available_bytes()
        && need > available
    {
        return Err(WorkflowError::EditTooLarge {
            spec: req.spec.clone(),
            need: bytes(need as f64),
            available: bytes(available as f64),
        });
    }
    let memory = |method| -> Result<MemoryReport> {
        if !req.memory {
            return Ok(MemoryReport {
                peak_memory_bytes: None,
                memory_source: MemorySource::None,
            });
        }
        info!(%method, "measuring the edit's peak memory in a child process");
        crate::child::edit_memory_in_child(req.backend, &req.spec, edit, method)
    };
    let (zo_mem, bp_mem) = (memory(EditMethod::Zo)?, memory(EditMethod::Bp)?);
    let device = req.backend.open()?;
    info!(spec = %req.spec.display(), tokens = edit.tokens, "timing an edit's prefix, zo step and bp step");
    let t = tailor_profiler::measure_edit(&device, &spec, &edit, &req.timing)?;
    let measured = |step: &Measurement, mem: &MemoryReport, method| EditMeasured {
        step: timed(step),
        peak_memory_bytes: mem.peak_memory_bytes,
        predicted_step_ms: predicted.and_then(|p| p.cost(method).step_ms),
        predicted_memory_bytes: predicted.map(|p| p.cost(method).peak_memory_bytes),
    };
    Ok(EditReport {
        spec: req.spec.display().to_string(),
        edit,
        layer: edit.layer_index(&spec),
        prefix: timed(&t.prefix),
        predicted_prefix_ms: predicted.and_then(|p| p.zo.prefix_ms),
        zo: measured(&t.zo_step, &zo_mem, EditMethod::Zo),
        bp: measured(&t.bp_step, &bp_mem, EditMethod::Bp),
        memory_source: zo_mem.memory_source,
        profile: req.profile.as_ref().map(|p| p.display().to_string()),
    })
}
