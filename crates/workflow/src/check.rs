//! The whole-model check of a cost model (`tailor validate`, and `tailor run`'s check of
//! its pick): each model's peak memory in a fresh child `tailor measure --memory-only`
//! process (so no allocator state or peak carries over from one model to the next), then
//! per round the models timed against each other in child `tailor measure A B C ...` runs
//! (their prefills interleaved, then their decode steps, so the machine's swings fall on
//! all of them alike; a group that fails is re-timed model by model, so a model that fails
//! is reported without ending the run); each model keeps its fastest round. Every
//! measurement is kept in the output folder and reused by a rerun.

use crate::child::{MeasureCall, MeasureMode, memory_in_child};
use crate::error::{Result, WorkflowError};
use crate::schedule;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tailor_cost::{Drift, Profiled};
use tailor_profiler::{Backend, TimingOptions};
use tailor_report::fmt::bytes;
use tailor_report::validation::{self, Measured, ProfileCheck, Row, ValidateFile, Validation};
use tailor_report::{MeasureReport, MemoryReport};
use tailor_search::{Candidate, SearchSpace};
use tailor_spec::files::write_atomic;
use tailor_spec::{DType, ModelSpec, SpecFile};
use tracing::{info, warn};

/// What [`check`] needs besides the models.
#[derive(Debug)]
pub struct CheckSetup<'a> {
    pub profile: &'a Path,
    pub model: &'a Profiled,
    /// The drift check run before, and how many of the profile's entries were re-measured
    /// after it (`model` carries the level of its predictions, if one was set).
    pub profile_check: Option<&'a Drift>,
    pub remeasured: usize,
    pub backend: Backend,
    pub space: &'a SearchSpace,
    /// Timing sessions per model; each is capped at `timing.max_time / rounds`.
    pub rounds: u64,
    pub timing: TimingOptions,
    pub seed: u64,
}

/// How far a check has come (a progress bar in the binary; nothing by default).
pub trait CheckProgress {
    /// `total` model sessions (models x rounds).
    fn start(&self, _total: u64) {}
    /// What is being done now.
    fn message(&self, _message: &str) {}
    /// One model session done (or skipped).
    fn advance(&self) {}
    /// Runs `log` with the progress display out of the way.
    fn suspend(&self, log: &mut dyn FnMut()) {
        log();
    }
    fn finish(&self) {}
}

/// Progress that goes nowhere.
#[derive(Debug)]
pub struct NoCheckProgress;
impl CheckProgress for NoCheckProgress {}

/// Builds and times `models` (id and spec) whole against their prediction by
/// `setup.model`; writes `validate.json`, `validate.csv` and the calibration plot into
/// `out` (and every measurement under `out/measured/`).
pub fn check(
    setup: &CheckSetup,
    models: Vec<(u64, ModelSpec)>,
    out: &Path,
    progress: &dyn CheckProgress,
) -> Result<Validation> {
    let started = Instant::now();
    let (space, model, backend) = (setup.space, setup.model, setup.backend);
    let w = space.workload;
    info!(
        configs = models.len(),
        backend = %backend,
        prompt = w.prompt_tokens,
        context = w.context,
        out = %out.display(),
        "building and timing whole models"
    );
    progress.start(models.len() as u64 * setup.rounds);
    let warn_of = |id: u64, e: &WorkflowError| progress.suspend(&mut || warn!(id, "{e}"));
    // sessions[i]: the measurements of model i, one per round; errors[i]: its first failure.
    let mut sessions: Vec<Vec<MeasureReport>> = vec![Vec::new(); models.len()];
    let mut errors: Vec<Option<String>> = vec![None; models.len()];
    let mut memory: Vec<Option<MemoryReport>> = vec![None; models.len()];
    let budget = schedule::group_budget_bytes();
    for round in 0..setup.rounds {
        let mut todo = Vec::new();
        for i in visit_order(models.len(), setup.seed, round) {
            let (id, spec) = &models[i];
            if errors[i].is_some() {
                progress.advance();
            } else if let Some(done) = reuse(setup, out, *id, spec, round)? {
                sessions[i].push(done);
                progress.advance();
            } else {
                todo.push(i);
            }
        }
        if round == 0 {
            for &i in &todo {
                let (id, spec) = &models[i];
                progress.message(&format!("memory of config {id}"));
                match memory_of(setup, out, *id, spec) {
                    Ok(m) => memory[i] = Some(m),
                    Err(e) => {
                        warn_of(*id, &e);
                        errors[i] = Some(e.to_string());
                    }
                }
            }
            todo.retain(|&i| errors[i].is_none());
        }
        for group in schedule::groups(&todo, |i| models[i].1.weight_bytes(DType::F32), budget) {
            progress.message(&format!(
                "round {}: {} models interleaved",
                round + 1,
                group.len()
            ));
            let timed: Vec<(usize, Result<MeasureReport>)> =
                match time_group(setup, out, &models, &group) {
                    Ok(reports) => group
                        .iter()
                        .copied()
                        .zip(reports.into_iter().map(Ok))
                        .collect(),
                    // One model of the group failed: time each alone, to tell which.
                    Err(e) if group.len() > 1 => {
                        progress.suspend(&mut || {
                            warn!(
                                "timing {} models together failed ({e}); timing them one by one",
                                group.len()
                            )
                        });
                        group
                            .iter()
                            .map(|&i| {
                                (
                                    i,
                                    time_group(setup, out, &models, &[i]).map(|mut r| r.remove(0)),
                                )
                            })
                            .collect()
                    }
                    Err(e) => vec![(group[0], Err(e))],
                };
            for (i, result) in timed {
                let (id, _) = &models[i];
                match result.and_then(|mut m| {
                    if let Some(mem) = &memory[i] {
                        m.peak_memory_bytes = mem.peak_memory_bytes;
                        m.memory_source = mem.memory_source;
                    }
                    save_result(&result_path(out, *id, round), &m)?;
                    Ok(m)
                }) {
                    Ok(m) => sessions[i].push(m),
                    Err(e) => {
                        warn_of(*id, &e);
                        errors[i] = Some(e.to_string());
                    }
                }
                progress.advance();
            }
        }
    }
    let mut rows = Vec::with_capacity(models.len());
    for (((id, spec), s), error) in models.iter().zip(&sessions).zip(errors) {
        let p = model.predict(spec, &w);
        rows.push(Row {
            id: *id,
            spec: spec.clone(),
            params: spec.params().total,
            predicted_prefill_ms: p.estimate.prefill_ms,
            predicted_decode_ms: p.estimate.decode_ms_per_token,
            predicted_memory_bytes: p.estimate.peak_memory_bytes,
            not_measured: p
                .derived()
                .map(|o| format!("{} {}", o.shape, o.source.name()))
                .collect(),
            measured: if error.is_none() {
                Measured::of_burn(s)
            } else {
                None
            },
            error,
        });
    }
    progress.finish();

    if rows.iter().all(|r| r.measured.is_none()) {
        return Err(WorkflowError::NothingMeasured(
            rows.first()
                .and_then(|r| r.error.clone())
                .unwrap_or_default(),
        ));
    }
    let wall_s = started.elapsed().as_secs_f64();
    let file = ValidateFile::new(
        validation::Setup {
            engine: "burn".into(),
            space: space.path.display().to_string(),
            profile: setup.profile.display().to_string(),
            fingerprint: Some(model.profile().fingerprint.clone()),
            workload: w,
            seed: setup.seed,
            rounds: setup.rounds,
            profile_check: setup.profile_check.cloned().map(ProfileCheck::Burn),
            level: model.level().cloned(),
            remeasured: setup.remeasured,
        },
        rows,
        wall_s,
    );
    for line in file.round_ratios.uneven() {
        warn!("{line}");
    }
    let caption = format!(
        "{} on {} ({}): predicted vs measured, {} models",
        space.name(),
        model.profile().name,
        backend,
        file.measured
    );
    let v = validation::write(out, file, &caption)?;
    info!(wall_s = format!("{wall_s:.0}"), out = %out.display(), "checked");
    Ok(v)
}

/// The order in which round `round` visits `n` models: a permutation drawn from the seed
/// and the round. The sample comes sorted by predicted time, and the machine drifts over
/// a round (tens of seconds); in a fixed order that drift would stretch or squeeze the
/// measured times along the very ranking being checked.
pub fn visit_order(n: usize, seed: u64, round: u64) -> Vec<usize> {
    tailor_profiler::timing::shuffled(n, seed ^ round.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Where round `round`'s measurement of config `id` is kept.
fn result_path(out: &Path, id: u64, round: u64) -> PathBuf {
    out.join("measured").join(if round == 0 {
        format!("{id}.json")
    } else {
        format!("{id}.round{}.json", round + 1)
    })
}

fn save_result(path: &Path, m: &MeasureReport) -> Result<()> {
    let text = serde_json::to_string_pretty(m).map_err(|error| WorkflowError::ChildOutput {
        what: path.display().to_string(),
        error,
    })?;
    write_atomic(path, text.as_bytes())?;
    Ok(())
}

/// Writes the spec file of config `id` (what the child processes read); its path.
fn spec_file(setup: &CheckSetup, out: &Path, id: u64, spec: &ModelSpec) -> Result<PathBuf> {
    let path = out.join("specs").join(format!("{id}.toml"));
    let mut file = SpecFile::new(spec.clone());
    file.name = Some(format!("candidate {id}"));
    file.source = Some(setup.space.path.display().to_string());
    file.save(&path)?;
    Ok(path)
}

/// The measurement of round `round` already in `out` (same workload and parameters).
fn reuse(
    setup: &CheckSetup,
    out: &Path,
    id: u64,
    spec: &ModelSpec,
    round: u64,
) -> Result<Option<MeasureReport>> {
    spec_file(setup, out, id, spec)?;
    let w = &setup.space.workload;
    Ok(std::fs::read_to_string(result_path(out, id, round))
        .ok()
        .and_then(|text| serde_json::from_str::<MeasureReport>(&text).ok())
        .filter(|done| {
            done.prompt_tokens == w.prompt_tokens
                && done.context == w.context
                && done.params == spec.params().total
        }))
}

/// The peak memory of one model, in a fresh child `tailor measure --memory-only`.
fn memory_of(setup: &CheckSetup, out: &Path, id: u64, spec: &ModelSpec) -> Result<MemoryReport> {
    let w = &setup.space.workload;
    memory_in_child(
        setup.backend,
        &spec_file(setup, out, id, spec)?,
        w.prompt_tokens,
        w.context,
    )
    .map_err(|e| e.of(format!("the memory of config {id}")))
}

/// Times the models `group` (indices into `models`) against each other in one child
/// `tailor measure A B ...` (one model: alone), each capped at max_time / rounds.
fn time_group(
    setup: &CheckSetup,
    out: &Path,
    models: &[(u64, ModelSpec)],
    group: &[usize],
) -> Result<Vec<MeasureReport>> {
    let mut specs = Vec::new();
    for &i in group {
        let (id, spec) = &models[i];
        specs.push(spec_file(setup, out, *id, spec)?);
    }
    let mut timing = setup.timing;
    timing.max_time /= setup.rounds.max(1) as u32;
    let w = &setup.space.workload;
    let call = MeasureCall {
        specs,
        backend: setup.backend,
        prompt: w.prompt_tokens,
        context: w.context,
        mode: MeasureMode::TimingOnly,
        timing: Some(timing),
    };
    let ids: Vec<String> = group.iter().map(|&i| models[i].0.to_string()).collect();
    call.time(&format!("config {}", ids.join(", ")))
}

/// Refuses, before anything runs, a sample with a model predicted to need more memory than
/// this machine has available: it would be killed (or swap) after the others' minutes.
pub fn refuse_oversized(sample: &[Candidate], space: &Path) -> Result<()> {
    let Some(available) = schedule::mem_available_bytes() else {
        return Ok(());
    };
    let need = |c: &Candidate| c.metrics.peak_memory_bytes.unwrap_or(0);
    let over: Vec<&Candidate> = sample.iter().filter(|c| need(c) > available).collect();
    let Some(largest) = over.iter().max_by_key(|c| need(c)) else {
        return Ok(());
    };
    Err(WorkflowError::Oversized {
        space: space.to_path_buf(),
        over: over.len(),
        sampled: sample.len(),
        available: bytes(available as f64),
        largest_id: largest.id,
        largest: bytes(need(largest) as f64),
        suggest_gib: available as f64 / f64::from(1u32 << 30) * 0.8,
    })
}

#[cfg(test)]
mod tests {
    use super::visit_order;

    #[test]
    fn each_round_visits_every_model_once_in_its_own_order() {
        let orders: Vec<Vec<usize>> = (0..3).map(|r| visit_order(30, 0, r)).collect();
        for o in &orders {
            let mut sorted = o.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..30).collect::<Vec<_>>());
        }
        assert_ne!(orders[0], orders[1]);
        assert_ne!(orders[1], orders[2]);
        assert_eq!(orders[1], visit_order(30, 0, 1), "seeded");
        assert_ne!(orders[1], visit_order(30, 7, 1), "the seed matters");
        assert!(visit_order(0, 0, 0).is_empty());
    }
}
