//! tailor's own child processes: `tailor measure` runs that time whole models or measure
//! one inference's peak memory in a fresh process (so no allocator state or peak carries
//! over from one model to the next). [`MeasureCall`] is the one typed invocation; its argv
//! is tested against the binary's clap definition there.

use crate::error::{Result, WorkflowError};
use crate::remote::self_command;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use tailor_cost::{EditMethod, EditWorkload, MemoryProbe, MemorySource};
use tailor_profiler::{Backend, TimingOptions};
use tailor_report::{MeasureReport, MemoryReport};
use tailor_spec::{DType, SpecFile};
use tracing::info;

/// What a child `tailor measure` measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MeasureMode {
    /// Only the peak memory of one inference (`--memory-only`), in a process of its own.
    MemoryOnly,
    /// Only the timing, the models interleaved (`--no-memory`).
    TimingOnly,
    /// Only the peak memory of one edit by one method (`--edit ... --edit-memory M`).
    EditMemory(EditWorkload, EditMethod),
}

/// One child `tailor measure --json` run.
#[derive(Debug, Clone)]
pub struct MeasureCall {
    pub specs: Vec<PathBuf>,
    pub backend: Backend,
    pub prompt: u64,
    pub context: u64,
    pub mode: MeasureMode,
    /// Timing settings (TimingOnly): warm-up, minimum and maximum time, target spread and
    /// cycled bytes travel; the child's defaults when `None`.
    pub timing: Option<TimingOptions>,
}

/// `options` as the timing flags of `tailor measure` / `tailor profile`.
pub fn timing_argv(options: &TimingOptions) -> Vec<String> {
    vec![
        "--max-time".into(),
        format!("{}s", options.max_time.as_secs_f64()),
        "--warmup".into(),
        format!("{}s", options.warmup.as_secs_f64()),
        "--min-time".into(),
        format!("{}s", options.min_time.as_secs_f64()),
        "--target-spread".into(),
        options.target_spread.to_string(),
        "--cycle-mib".into(),
        (options.cycle_bytes >> 20).to_string(),
    ]
}

impl MeasureCall {
    /// Its arguments after the program name, from `measure` on.
    pub fn argv(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec!["measure".into()];
        a.extend(self.specs.iter().map(|p| p.clone().into_os_string()));
        for (flag, value) in [
            ("--backend", self.backend.name().to_string()),
            ("--prompt", self.prompt.to_string()),
            ("--context", self.context.to_string()),
        ] {
            a.push(flag.into());
            a.push(value.into());
        }
        a.push("--json".into());
        match self.mode {
            MeasureMode::MemoryOnly => a.push("--memory-only".into()),
            MeasureMode::TimingOnly => a.push("--no-memory".into()),
            MeasureMode::EditMemory(e, method) => {
                a.push("--edit".into());
                for (flag, value) in [
                    ("--edit-tokens", e.tokens.to_string()),
                    ("--edit-target-tokens", e.target_tokens.to_string()),
                    ("--edit-layer", e.layer.to_string()),
                    ("--edit-steps", e.steps.to_string()),
                    ("--edit-queries", e.queries.to_string()),
                    ("--edit-memory", method.name().to_string()),
                ] {
                    a.push(flag.into());
                    a.push(value.into());
                }
            }
        }
        if let Some(t) = &self.timing {
            a.extend(timing_argv(t).into_iter().map(OsString::from));
        }
        a
    }

    /// Runs it in a child `tailor` with `env` added; its stdout. `what` names the models
    /// in errors (`config 3, 7`).
    pub fn run(&self, what: &str, env: &[(&str, &str)]) -> Result<Vec<u8>> {
        let output = self_command()?
            .args(self.argv())
            .envs(env.iter().copied())
            .output()
            .map_err(WorkflowError::Spawn)?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let why = stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no message");
            let status = output
                .status
                .code()
                .map_or("killed by a signal (out of memory?)".into(), |c| {
                    format!("exit {c}")
                });
            return Err(WorkflowError::Child {
                what: what.to_string(),
                status,
                why: why.to_string(),
            });
        }
        Ok(output.stdout)
    }

    /// Runs a `TimingOnly` call over its models; one report per model, in order.
    pub fn time(&self, what: &str) -> Result<Vec<MeasureReport>> {
        let stdout = self.run(what, &[])?;
        let parsed = if self.specs.len() == 1 {
            serde_json::from_slice(&stdout).map(|r| vec![r])
        } else {
            serde_json::from_slice(&stdout)
        };
        let reports: Vec<MeasureReport> = parsed.map_err(|error| WorkflowError::ChildOutput {
            what: what.to_string(),
            error,
        })?;
        if reports.len() != self.specs.len() {
            return Err(WorkflowError::ChildCount {
                what: what.to_string(),
                reports: reports.len(),
                models: self.specs.len(),
            });
        }
        Ok(reports)
    }
}

/// Environment of the memory child: mimalloc returns freed pages at once and commits
/// arena memory only as it is used, so the resident set's peak is the live set (the
/// timing process keeps mimalloc's defaults, which reuse pages without faulting them in).
pub const MEMORY_ENV: [(&str, &str); 2] = [
    ("MIMALLOC_PURGE_DELAY", "0"),
    ("MIMALLOC_ARENA_EAGER_COMMIT", "0"),
];

/// Measures the peak memory of one inference of `spec` (a prefill of `prompt` tokens, a
/// decode step after `context`) in a fresh child `tailor measure --memory-only`.
pub fn memory_in_child(
    backend: Backend,
    spec: &Path,
    prompt: u64,
    context: u64,
) -> Result<MemoryReport> {
    let call = MeasureCall {
        specs: vec![spec.to_path_buf()],
        backend,
        prompt,
        context,
        mode: MeasureMode::MemoryOnly,
        timing: None,
    };
    let what = format!("the memory of {}", spec.display());
    let stdout = call.run(&what, &MEMORY_ENV)?;
    serde_json::from_slice(&stdout).map_err(|error| WorkflowError::ChildOutput { what, error })
}

/// Measures the peak memory of one edit of `spec` by `method` in a fresh child
/// `tailor measure --edit ... --edit-memory METHOD`.
pub fn edit_memory_in_child(
    backend: Backend,
    spec: &Path,
    edit: EditWorkload,
    method: EditMethod,
) -> Result<MemoryReport> {
    let call = MeasureCall {
        specs: vec![spec.to_path_buf()],
        backend,
        prompt: 1,
        context: 1,
        mode: MeasureMode::EditMemory(edit, method),
        timing: None,
    };
    let what = format!("the memory of a {method} edit of {}", spec.display());
    let stdout = call.run(&what, &MEMORY_ENV)?;
    serde_json::from_slice(&stdout).map_err(|error| WorkflowError::ChildOutput { what, error })
}

/// Probe processes per memory probe.
pub const MEMORY_PROBE_RUNS: usize = 3;

/// Measures the runtime's own memory on `backend` ([`MemoryProbe`]): the probe model's
/// peak in [`MEMORY_PROBE_RUNS`] fresh children, less its accounted bytes. The probe's
/// spec file is written into `dir` for the children and removed afterwards.
pub fn memory_probe(backend: Backend, dtype: DType, dir: &Path) -> Result<MemoryProbe> {
    let path = dir.join(format!(".tailor-memory-probe-{}.toml", std::process::id()));
    let mut file = SpecFile::new(MemoryProbe::spec());
    file.name = Some("memory probe".into());
    file.save(&path)?;
    let w = MemoryProbe::workload(dtype);
    let reports: Result<Vec<MemoryReport>> = (0..MEMORY_PROBE_RUNS)
        .map(|_| memory_in_child(backend, &path, w.prompt_tokens, w.context))
        .collect();
    let _ = std::fs::remove_file(&path);
    let reports = reports?;
    let peaks: Vec<u64> = reports.iter().filter_map(|r| r.peak_memory_bytes).collect();
    let source = reports
        .first()
        .map_or(MemorySource::None, |r| r.memory_source);
    if peaks.len() < reports.len() || peaks.is_empty() {
        return Err(WorkflowError::NoPeakMemory(source));
    }
    let probe = MemoryProbe::from_peaks(&peaks, dtype, source)
        .ok_or(WorkflowError::NoPeakMemory(source))?;
    info!(
        overhead_bytes = probe.runtime_overhead_bytes,
        samples = ?probe.samples_bytes,
        source = %probe.source,
        "measured the runtime's memory overhead"
    );
    Ok(probe)
}
