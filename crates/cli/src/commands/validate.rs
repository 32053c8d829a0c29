//! `tailor validate`: prove the profiled cost model against whole models timed for real.
//!
//! Samples feasible configs spread across a space, measures each one's peak memory in a
//! fresh `tailor measure --memory-only` process (so no allocator state or memory peak
//! carries over from one model to the next), times them against each other in a child
//! `tailor measure A B C ...` per round (their prefills interleaved, then their decode
//! steps, so the machine's swings fall on all of them alike; a group that fails is
//! re-timed model by model, so a model that fails is reported without ending the run),
//! keeps each model's fastest round, and compares prediction with measurement: shares
//! within +-10% and +-20%, absolute percentage errors, Kendall's tau of the orders, the
//! level of each round, a calibration plot.

use super::llama;
use super::measure::{measure_child, memory_in_child};
use super::predict::{check_precision, load_profiled};
use crate::args::{MeasureCall, MeasureMode, PROFILE_ROUNDS, TimingArgs};
use crate::fmt::{bytes, timestamp};
use crate::freshness::{DRIFT_TOLERANCE, machine_backend, recheck, remeasure};
use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tailor_cost::{Drift, Profiled};
use tailor_profiler::Backend;
use tailor_report::measured::combine;
use tailor_report::validation::{self, RoundRatios, Row, ValidateFile, Validation};
use tailor_report::{MeasureReport, MemoryReport};
use tailor_search::{Candidate, Metric, SearchSpace, spread_sample};
use tailor_spec::files::write_atomic;
use tailor_spec::{DType, ModelSpec, SpecFile};
use tailor_workflow::schedule;
use tracing::{info, warn};

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Device profile of this machine (`tailor profile`), e.g. profiles/host-flex.toml.
    #[arg(long)]
    pub profile: PathBuf,
    /// The space to sample configs from (inside all its constraints).
    #[arg(long)]
    pub space: PathBuf,
    /// Configs to build and time, spread over the space's range of predicted decode time.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(2..=10_000))]
    pub samples: u64,
    /// Seed of the sample.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Timing sessions per model, in rounds: each round builds the sample afresh in a new
    /// process and times the models against each other, interleaved (each capped at
    /// --max-time / rounds); a model's time is the median of its fastest round (a slow
    /// stretch of the machine slows a whole round). Memory is measured in the first round.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=20))]
    pub rounds: u64,
    /// Output folder [default: out/validate-<space>-<timestamp>]. Rerunning into the same
    /// folder reuses the models already measured there.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub timing: TimingArgs,
    /// Print validate.json on stdout instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Before validating, the profile's fixed subset of entries is re-timed here and its
    /// drift per class of operators reported (a few seconds); skip that.
    #[arg(long, conflicts_with_all = ["relevel", "remeasure"])]
    pub no_recheck: bool,
    /// Validate the profile re-levelled by that check (each entry scaled by its class's
    /// measured ratio) instead of the profile as it is.
    #[arg(long, conflicts_with = "remeasure")]
    pub relevel: bool,
    /// Where that check finds drift, re-measure the profile's entries of the drifted
    /// classes first (in the profile file, as `tailor run` does), then validate it.
    #[arg(long)]
    pub remeasure: bool,
    /// With a llama.cpp profile: how llama-bench runs (its threads, cache type and flash
    /// attention come from the profile) and --weights to validate instead of the space's.
    #[command(flatten)]
    pub llama: super::llama::LlamaArgs,
}

/// What `check` needs besides the models.
pub struct CheckSetup<'a> {
    pub profile: &'a Path,
    pub model: &'a Profiled,
    /// The drift check run before, and whether `model` is the profile re-levelled by it
    /// or how many of its entries were re-measured after it.
    pub profile_check: Option<&'a Drift>,
    pub releveled: bool,
    pub remeasured: usize,
    pub backend: Backend,
    pub space: &'a SearchSpace,
    pub rounds: u64,
    pub timing: &'a TimingArgs,
    pub seed: u64,
}

pub fn run(args: &ValidateArgs) -> Result<()> {
    let space = SearchSpace::load(&args.space)?;
    if super::llama::is_llama(&args.profile) {
        return run_llama(args, space);
    }
    let model = load_profiled(&args.profile)?;
    check_precision(
        &model,
        &space.workload.precision,
        &args.space.display().to_string(),
    )?;
    // Bad timing flags fail here, not in every child.
    args.timing.options()?;
    let sample = spread_sample(
        &space,
        &model,
        args.samples as usize,
        args.seed,
        Metric::DecodeMs,
    );
    if sample.is_empty() {
        bail!(
            "{}: no config of the space is inside all its constraints; nothing to validate",
            args.space.display()
        );
    }
    refuse_oversized(&sample, &args.space)?;
    let backend = machine_backend(&model, &args.profile, &args.space)?;
    let drift = if args.no_recheck {
        None
    } else {
        Some(recheck(&args.profile, &model, backend, &args.timing)?)
    };
    let (model, remeasured) = match &drift {
        Some(d) if args.relevel => {
            info!(
                "validating the profile re-levelled by the check (each entry scaled by its \
                 class's ratio)"
            );
            let p = Profiled::new(d.relevel(model.profile()))
                .map_err(|e| anyhow!("{}: {e}", args.profile.display()))?;
            (p, 0)
        }
        Some(d)
            if args.remeasure && !d.stale_shapes(model.profile(), DRIFT_TOLERANCE).is_empty() =>
        {
            remeasure(&args.profile, d, backend, &args.timing, PROFILE_ROUNDS)?
        }
        _ => (model, 0),
    };
    if (sample.len() as u64) < args.samples {
        warn!(
            feasible = sample.len(),
            asked = args.samples,
            "fewer feasible configs than --samples: validating all of them"
        );
    }
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("out").join(format!("validate-{}-{}", space.name(), timestamp()))
    });
    // One writer per folder: a rerun into it reuses what is measured there.
    let _lock = crate::lock::folder(&out)?;
    let setup = CheckSetup {
        profile: &args.profile,
        model: &model,
        profile_check: drift.as_ref(),
        releveled: args.relevel && drift.is_some(),
        remeasured,
        backend,
        space: &space,
        rounds: args.rounds,
        timing: &args.timing,
        seed: args.seed,
    };
    let models = sample.into_iter().map(|c| (c.id, c.spec)).collect();
    let v = check(&setup, models, &out)?;
    for w in v.drift() {
        warn!(profile = %args.profile.display(), "{w}");
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v.file)?);
        return Ok(());
    }
    print!("{}", v.render());
    Ok(())
}

/// `tailor validate` on a llama.cpp profile: a spread sample of the space.
fn run_llama(args: &ValidateArgs, space: SearchSpace) -> Result<()> {
    let (profile, space_path, llama) = (&args.profile, &args.space, &args.llama);
    let (samples, rounds, seed, json_out) =
        (args.samples as usize, args.rounds, args.seed, args.json);
    let out = args.out.as_deref();
    let space = llama::with_weights(space, llama.weights);
    let cost = llama::load_cost(profile, Some(&space.workload))?;
    let sample = spread_sample(&space, &cost, samples, seed, Metric::DecodeMs);
    if sample.is_empty() {
        bail!(
            "{}: no config of the space is inside all its constraints; nothing to validate",
            space_path.display()
        );
    }
    refuse_oversized(&sample, space_path)?;
    let out = out.map(Path::to_path_buf).unwrap_or_else(|| {
        PathBuf::from("out").join(format!("validate-{}-llama-{}", space.name(), timestamp()))
    });
    let _lock = crate::lock::folder(&out)?;
    let models = sample.into_iter().map(|c| (c.id, c.spec)).collect();
    let v = llama::validate(&llama::ValidateRequest {
        profile,
        space_path,
        space: &space,
        cost: &cost,
        models,
        llama,
        rounds: rounds.max(1),
        seed,
        out: &out,
    })?;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", tailor_report::validation::render_llama(&v, &out));
    }
    Ok(())
}

/// Builds and times `models` (id, spec) whole, each in a child process, in rounds;
/// compares with the prediction; writes validate.json, validate.csv and calibration.svg
/// into `out`. Models measured in `out` before are reused.
pub fn check(setup: &CheckSetup, models: Vec<(u64, ModelSpec)>, out: &Path) -> Result<Validation> {
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

    let bar = ProgressBar::hidden();
    bar.set_style(
        ProgressStyle::with_template("validate {bar:30} {pos}/{len} ETA {eta} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_draw_target(ProgressDrawTarget::stderr());
    bar.set_length(models.len() as u64 * setup.rounds);
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
                bar.inc(1);
            } else if let Some(done) = reuse(setup, out, *id, spec, round)? {
                sessions[i].push(done);
                bar.inc(1);
            } else {
                todo.push(i);
            }
        }
        if round == 0 {
            for &i in &todo {
                let (id, spec) = &models[i];
                bar.set_message(format!("memory of config {id}"));
                match memory_of(setup, out, *id, spec) {
                    Ok(m) => memory[i] = Some(m),
                    Err(e) => {
                        bar.suspend(|| warn!(id, "{e:#}"));
                        errors[i] = Some(format!("{e:#}"));
                    }
                }
            }
            todo.retain(|&i| errors[i].is_none());
        }
        for group in schedule::groups(&todo, |i| models[i].1.weight_bytes(DType::F32), budget) {
            bar.set_message(format!(
                "round {}: {} models interleaved",
                round + 1,
                group.len()
            ));
            let timed = match time_group(setup, out, &models, &group) {
                Ok(reports) => group
                    .iter()
                    .copied()
                    .zip(reports.into_iter().map(Ok))
                    .collect(),
                // One model of the group failed: time each alone, to tell which.
                Err(e) if group.len() > 1 => {
                    bar.suspend(|| {
                        warn!(
                            "timing {} models together failed ({e:#}); timing them one by one",
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
                    write_atomic(
                        &result_path(out, *id, round),
                        serde_json::to_string_pretty(&m)?.as_bytes(),
                    )?;
                    Ok(m)
                }) {
                    Ok(m) => sessions[i].push(m),
                    Err(e) => {
                        bar.suspend(|| warn!(id, "{e:#}"));
                        errors[i] = Some(format!("{e:#}"));
                    }
                }
                bar.inc(1);
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
            predicted_ops_not_measured: p.derived().count(),
            measured: if error.is_none() { combine(s) } else { None },
            error,
        });
    }
    bar.finish_and_clear();

    if rows.iter().all(|r| r.measured.is_none()) {
        bail!(
            "no model could be measured; the first error: {}",
            rows.first()
                .and_then(|r| r.error.clone())
                .unwrap_or_default()
        );
    }
    let round_ratios = RoundRatios::of(&rows, &sessions);
    for line in round_ratios.uneven() {
        warn!("{line}");
    }
    let wall_s = started.elapsed().as_secs_f64();
    let file = ValidateFile::new(
        validation::Setup {
            space: space.path.display().to_string(),
            profile: setup.profile.display().to_string(),
            fingerprint: model.profile().fingerprint.clone(),
            workload: w,
            seed: setup.seed,
            rounds: setup.rounds,
            profile_check: setup.profile_check.cloned(),
            releveled: setup.releveled,
            remeasured: setup.remeasured,
        },
        rows,
        round_ratios,
        wall_s,
    );
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
    .with_context(|| format!("the memory of config {id}"))
}

/// Times the models `group` (indices into `models`) against each other in one child
/// `tailor measure A B ...` (one model: alone), each capped at --max-time / rounds.
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
    let mut timing = setup.timing.clone();
    timing.max_time /= setup.rounds.max(1) as u32;
    let w = &setup.space.workload;
    let args = MeasureCall {
        specs,
        backend: setup.backend,
        prompt: w.prompt_tokens,
        context: w.context,
        mode: MeasureMode::TimingOnly,
        timing: Some(&timing),
    }
    .argv();
    let ids: Vec<String> = group.iter().map(|&i| models[i].0.to_string()).collect();
    let what = format!("config {}", ids.join(", "));
    let stdout = measure_child(&what, &args, &[])?;
    let reports: Vec<MeasureReport> = if group.len() == 1 {
        vec![serde_json::from_slice(&stdout)?]
    } else {
        serde_json::from_slice(&stdout)?
    };
    if reports.len() != group.len() {
        bail!(
            "measuring {what}: {} reports for {} models",
            reports.len(),
            group.len()
        );
    }
    Ok(reports)
}

/// Refuses, before anything runs, a sample with a model predicted to need more memory than
/// this machine has available: it would be killed (or swap) after the others' minutes.
fn refuse_oversized(sample: &[Candidate], space: &Path) -> Result<()> {
    let Some(available) = schedule::mem_available_bytes() else {
        return Ok(());
    };
    let need = |c: &Candidate| c.metrics.peak_memory_bytes.unwrap_or(0);
    let over: Vec<&Candidate> = sample.iter().filter(|c| need(c) > available).collect();
    let Some(largest) = over.iter().max_by_key(|c| need(c)) else {
        return Ok(());
    };
    bail!(
        "{}: {} of the {} sampled configs are predicted to need more memory than this machine \
         has available now ({}); config {} needs about {}. Keep the sample inside it with a \
         constraint in the space (`max_memory_gib = {:.1}` under [constraints]), or validate on \
         a machine with more memory",
        space.display(),
        over.len(),
        sample.len(),
        bytes(available as f64),
        largest.id,
        bytes(need(largest) as f64),
        available as f64 / f64::from(1u32 << 30) * 0.8
    )
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
