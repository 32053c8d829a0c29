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

use super::measure::{MeasureReport, MemoryReport, Timed, measure_child, memory_in_child};
use super::predict::{check_precision, load_profiled};
use super::profile::TimingArgs;
use crate::fmt::{Table, bytes, timestamp};
use crate::plot::{self, Calibration};
use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tailor_cost::{Accuracy, Profiled, accuracy};
use tailor_profiler::Backend;
use tailor_search::output::write_json;
use tailor_search::{Metric, SearchSpace, spread_sample};
use tailor_spec::files::write_atomic;
use tailor_spec::{DType, ModelSpec, SpecFile};
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
    /// With a llama.cpp profile: how llama-bench runs (its threads, cache type and flash
    /// attention come from the profile) and --weights to validate instead of the space's.
    #[command(flatten)]
    pub llama: super::llama::LlamaArgs,
}

/// Predicted and measured values of one model.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub id: u64,
    pub spec: ModelSpec,
    pub params: u64,
    pub predicted_prefill_ms: f64,
    pub predicted_decode_ms: f64,
    pub predicted_memory_bytes: u64,
    /// Operators of the prediction not measured in the profile (interpolated, ...).
    pub predicted_ops_not_measured: usize,
    pub measured: Option<MeasureReport>,
    pub error: Option<String>,
}

/// The accuracy of one quantity over the measured models (`null` when not measured).
fn stats(rows: &[Row], f: impl Fn(&Row, &MeasureReport) -> Option<(f64, f64)>) -> Option<Accuracy> {
    let pairs: Vec<(f64, f64)> = rows
        .iter()
        .filter_map(|r| r.measured.as_ref().and_then(|m| f(r, m)))
        .collect();
    accuracy(&pairs)
}

/// The result of checking predictions against whole models.
pub struct Validation {
    pub rows: Vec<Row>,
    pub prefill: Option<Accuracy>,
    pub decode: Option<Accuracy>,
    pub memory: Option<Accuracy>,
    pub rounds: u64,
    /// Per round, the median over the models of measured / predicted: the machine's speed
    /// in that round relative to the profile.
    pub round_ratios: RoundRatios,
    pub out: PathBuf,
    pub calibration: PathBuf,
    pub wall_s: f64,
    /// validate.json.
    pub summary: serde_json::Value,
}

/// Per round, the median over the models timed in it of measured / predicted.
#[derive(Debug, Clone, Serialize)]
pub struct RoundRatios {
    pub prefill: Vec<f64>,
    pub decode: Vec<f64>,
}

impl RoundRatios {
    fn of(rows: &[Row], sessions: &[Vec<MeasureReport>]) -> Self {
        let per_round = |predicted: fn(&Row) -> f64, f: fn(&MeasureReport) -> &Timed| {
            let rounds = sessions.iter().map(Vec::len).max().unwrap_or(0);
            (0..rounds)
                .map(|k| {
                    tailor_cost::median(
                        rows.iter()
                            .zip(sessions)
                            .filter(|(r, _)| r.measured.is_some())
                            .filter_map(|(r, s)| Some(f(s.get(k)?).median_ms / predicted(r)))
                            .collect(),
                    )
                })
                .collect()
        };
        Self {
            prefill: per_round(|r| r.predicted_prefill_ms, |m| &m.prefill),
            decode: per_round(|r| r.predicted_decode_ms, |m| &m.decode),
        }
    }

    /// The rounds ran at speeds more than 10% apart: one line per quantity.
    fn uneven(&self) -> Vec<String> {
        [("prefill", &self.prefill), ("decode", &self.decode)]
            .into_iter()
            .filter_map(|(name, r)| {
                let lo = r.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = r.iter().copied().fold(0.0, f64::max);
                (hi > 1.10 * lo).then(|| {
                    format!(
                        "the machine's speed changed between rounds: {name} measured/predicted \
                         by round {}; each model keeps its fastest round",
                        join_ratios(r)
                    )
                })
            })
            .collect()
    }
}

fn join_ratios(r: &[f64]) -> String {
    r.iter()
        .map(|x| format!("{x:.3}"))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Validation {
    /// Whole models measured more than 10% (median) away from the prediction: the profile no
    /// longer describes the machine (load, a thermal or power state, another host behind the
    /// same CPU name). One line per quantity, saying what to do.
    pub fn drift(&self) -> Vec<String> {
        [("prefill", self.prefill), ("decode", self.decode)]
            .into_iter()
            .filter_map(|(name, a)| {
                let r = a?.median_ratio;
                ((r - 1.0).abs() > 0.10).then(|| {
                    format!(
                        "{name} measured {:.0}% {} than predicted (median over {} models): the \
                         profile may be stale; re-measure it (`tailor profile --space ... --force`) \
                         or check the machine's load",
                        100.0 * (r - 1.0).abs(),
                        if r > 1.0 { "slower" } else { "faster" },
                        a.map_or(0, |a| a.n)
                    )
                })
            })
            .collect()
    }
}

/// The backend of a profile, after checking that the profile was made on this machine.
pub fn machine_backend(model: &Profiled, profile: &Path, space: &Path) -> Result<Backend> {
    let fp = &model.profile().fingerprint;
    let backend: Backend = fp
        .backend
        .parse()
        .map_err(|e| anyhow!("{}: {e}", profile.display()))?;
    let device = backend.open()?;
    model
        .profile()
        .check_fingerprint(&backend.fingerprint(&device))
        .map_err(|e| {
            anyhow!(
                "{}: {e}. Whole models are timed on this machine, so it needs this \
                 machine's profile: run `tailor profile --space {} --backend {backend}` first",
                profile.display(),
                space.display()
            )
        })?;
    Ok(backend)
}

/// What `check` needs besides the models.
pub struct CheckSetup<'a> {
    pub profile: &'a Path,
    pub model: &'a Profiled,
    pub backend: Backend,
    pub space: &'a SearchSpace,
    pub rounds: u64,
    pub timing: &'a TimingArgs,
    pub seed: u64,
}

pub fn run(args: &ValidateArgs) -> Result<()> {
    let space = SearchSpace::load(&args.space)?;
    if super::llama::is_llama(&args.profile) {
        return super::llama::validate_space(args, space);
    }
    let model = load_profiled(&args.profile)?;
    check_precision(
        &model,
        &space.workload.precision,
        &args.space.display().to_string(),
    )?;
    // Bad timing flags fail here, not in every child.
    args.timing.options()?;
    let backend = machine_backend(&model, &args.profile, &args.space)?;
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
        println!("{}", serde_json::to_string_pretty(&v.summary)?);
        return Ok(());
    }
    print!("{}", render(&v, &out));
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
    let budget = group_budget_bytes();
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
        for group in groups(&todo, |i| models[i].1.weight_bytes(DType::F32), budget) {
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
                        m.memory_source = mem.memory_source.clone();
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

    let measured = rows.iter().filter(|r| r.measured.is_some()).count();
    if measured == 0 {
        bail!(
            "no model could be measured; the first error: {}",
            rows.first()
                .and_then(|r| r.error.clone())
                .unwrap_or_default()
        );
    }
    let prefill = stats(&rows, |r, m| {
        Some((r.predicted_prefill_ms, m.prefill.median_ms))
    });
    let decode = stats(&rows, |r, m| {
        Some((r.predicted_decode_ms, m.decode.median_ms))
    });
    let memory = stats(&rows, |r, m| {
        m.peak_memory_bytes
            .map(|b| (r.predicted_memory_bytes as f64, b as f64))
    });
    let round_ratios = RoundRatios::of(&rows, &sessions);
    for line in round_ratios.uneven() {
        warn!("{line}");
    }
    let wall_s = started.elapsed().as_secs_f64();
    let summary = json!({
        "space": space.path.display().to_string(),
        "profile": setup.profile.display().to_string(),
        "fingerprint": model.profile().fingerprint,
        "workload": w,
        "samples": rows.len(),
        "measured": measured,
        "failed": rows.len() - measured,
        "seed": setup.seed,
        "rounds": setup.rounds,
        "round_ratios": round_ratios,
        "wall_s": wall_s,
        "prefill": prefill,
        "decode": decode,
        "memory": memory,
        "rows": rows,
    });
    write_json(&out.join("validate.json"), &summary)?;
    write_atomic(&out.join("validate.csv"), csv(&rows).as_bytes())?;
    let ms = |f: fn(&Row, &MeasureReport) -> (f64, f64)| -> Vec<(f64, f64)> {
        rows.iter()
            .filter_map(|r| r.measured.as_ref().map(|m| f(r, m)))
            .collect()
    };
    let mut panels = vec![
        Calibration {
            title: "prefill",
            unit: "ms",
            points: ms(|r, m| (r.predicted_prefill_ms, m.prefill.median_ms)),
        },
        Calibration {
            title: "decode step",
            unit: "ms",
            points: ms(|r, m| (r.predicted_decode_ms, m.decode.median_ms)),
        },
    ];
    if memory.is_some() {
        panels.push(Calibration {
            title: "peak memory",
            unit: "MiB",
            points: rows
                .iter()
                .filter_map(|r| {
                    let b = r.measured.as_ref()?.peak_memory_bytes?;
                    Some((
                        r.predicted_memory_bytes as f64 / 1048576.0,
                        b as f64 / 1048576.0,
                    ))
                })
                .collect(),
        });
    }
    let caption = format!(
        "{} on {} ({}): predicted vs measured, {} models",
        space.name(),
        model.profile().name,
        backend,
        measured
    );
    let calibration = out.join("calibration.svg");
    plot::calibration(&calibration, &caption, &panels)?;
    info!(wall_s = format!("{wall_s:.0}"), out = %out.display(), "checked");
    Ok(Validation {
        rows,
        prefill,
        decode,
        memory,
        rounds: setup.rounds,
        round_ratios,
        out: out.to_path_buf(),
        calibration,
        wall_s,
        summary,
    })
}

/// One model's sessions as one measurement: the median of its fastest session, the lowest
/// p10 and highest p90, all samples; memory from the session that measured it.
///
/// The fastest session, not the median of the sessions: a round times every model in the
/// same stretch of time, and a slow stretch of the machine (a neighbour on the host, heat)
/// slows every model of that round alike, by as much as 20% here for minutes at a time, in
/// two rounds of three as easily as in one; interference only ever slows a session down,
/// so the fastest is the closest to the machine the profile measured. (A profile entry's
/// median over its sessions is robust in another way: its sessions are short and spread
/// over the whole profiling run.)
fn combine(sessions: &[MeasureReport]) -> Option<MeasureReport> {
    let first = sessions.first()?;
    let phase = |f: fn(&MeasureReport) -> &Timed| {
        let fastest = sessions
            .iter()
            .map(|s| f(s).median_ms)
            .fold(f64::INFINITY, f64::min);
        Timed {
            median_ms: fastest,
            p10_ms: sessions.iter().map(|s| f(s).p10_ms).fold(fastest, f64::min),
            p90_ms: sessions.iter().map(|s| f(s).p90_ms).fold(fastest, f64::max),
            samples: sessions.iter().map(|s| f(s).samples).sum(),
            capped: sessions.iter().any(|s| f(s).capped),
        }
    };
    Some(MeasureReport {
        prefill: phase(|s| &s.prefill),
        decode: phase(|s| &s.decode),
        ..first.clone()
    })
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

fn workload_args(setup: &CheckSetup) -> Vec<std::ffi::OsString> {
    let w = &setup.space.workload;
    [
        "--backend",
        setup.backend.name(),
        "--json",
        "--prompt",
        &w.prompt_tokens.to_string(),
        "--context",
        &w.context.to_string(),
    ]
    .iter()
    .map(Into::into)
    .collect()
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
    let mut args = Vec::new();
    for &i in group {
        let (id, spec) = &models[i];
        args.push(spec_file(setup, out, *id, spec)?.into_os_string());
    }
    args.extend(workload_args(setup));
    args.push("--no-memory".into());
    let mut timing = setup.timing.clone();
    timing.max_time /= setup.rounds.max(1) as u32;
    args.extend(timing.to_args().into_iter().map(Into::into));
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

/// Splits `todo` (in its order) into runs whose weights (`bytes` of each) add up to at most
/// `budget`: the models of a run are held in memory together while timed. A model alone
/// over the budget is a run of its own.
fn groups(todo: &[usize], bytes: impl Fn(usize) -> u64, budget: u64) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut held = 0u64;
    for &i in todo {
        let b = bytes(i);
        match out.last_mut() {
            Some(g) if held.saturating_add(b) <= budget => {
                g.push(i);
                held += b;
            }
            _ => {
                out.push(vec![i]);
                held = b;
            }
        }
    }
    out
}

/// Weights one interleaved group may hold: half the memory available now (Linux
/// `MemAvailable`), 4 GiB where unreadable.
fn group_budget_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemAvailable:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024 / 2)
        })
        .unwrap_or(4 << 30)
}

fn csv(rows: &[Row]) -> String {
    let mut s = String::from(
        "id,hidden_size,num_layers,num_heads,num_kv_heads,head_dim,intermediate_size,activation,params,\
         predicted_prefill_ms,measured_prefill_ms,predicted_decode_ms,measured_decode_ms,\
         predicted_memory_bytes,measured_memory_bytes,error\n",
    );
    for r in rows {
        let m = r.measured.as_ref();
        let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v}"));
        s += &format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},\"{}\"\n",
            r.id,
            r.spec.hidden_size,
            r.spec.num_layers,
            r.spec.num_heads,
            r.spec.num_kv_heads,
            r.spec.head_dim(),
            r.spec.intermediate_size,
            r.spec.activation,
            r.params,
            r.predicted_prefill_ms,
            opt(m.map(|m| m.prefill.median_ms)),
            r.predicted_decode_ms,
            opt(m.map(|m| m.decode.median_ms)),
            r.predicted_memory_bytes,
            m.and_then(|m| m.peak_memory_bytes)
                .map_or(String::new(), |b| b.to_string()),
            r.error.as_deref().unwrap_or("").replace('"', "'"),
        );
    }
    s
}

fn render(v: &Validation, out: &Path) -> String {
    let (rows, acc) = (&v.rows, [v.prefill, v.decode, v.memory]);
    let mut t = Table::new(&[
        "id",
        "hidden",
        "layers",
        "heads",
        "kv",
        "ffn",
        "act",
        "prefill pred",
        "meas",
        "err",
        "decode pred",
        "meas",
        "err",
        "memory pred",
        "meas",
        "err",
    ]);
    let pct = |p: f64, m: f64| format!("{:+.1}%", 100.0 * (p - m) / m);
    for r in rows {
        let s = &r.spec;
        let mut row = vec![
            r.id.to_string(),
            s.hidden_size.to_string(),
            s.num_layers.to_string(),
            s.num_heads.to_string(),
            s.num_kv_heads.to_string(),
            s.intermediate_size.to_string(),
            s.activation.to_string(),
        ];
        match &r.measured {
            Some(m) => {
                row.extend([
                    format!("{:.2}", r.predicted_prefill_ms),
                    format!("{:.2}", m.prefill.median_ms),
                    pct(r.predicted_prefill_ms, m.prefill.median_ms),
                    format!("{:.3}", r.predicted_decode_ms),
                    format!("{:.3}", m.decode.median_ms),
                    pct(r.predicted_decode_ms, m.decode.median_ms),
                    bytes(r.predicted_memory_bytes as f64),
                ]);
                match m.peak_memory_bytes {
                    Some(b) => row.extend([
                        bytes(b as f64),
                        pct(r.predicted_memory_bytes as f64, b as f64),
                    ]),
                    None => row.extend(["-".into(), "-".into()]),
                }
            }
            None => row.extend(std::iter::repeat_n("failed".to_string(), 9)),
        }
        t.row(row);
    }
    let mut s = format!(
        "predicted vs measured (err = (predicted - measured) / measured)\n{}",
        t.render(2)
    );
    let mut a = Table::new(&[
        "",
        "within 10%",
        "within 20%",
        "mean |err|",
        "max |err|",
        "measured/predicted",
        "Kendall tau",
    ]);
    for (name, x) in ["prefill", "decode", "memory"].iter().zip(acc) {
        match x {
            Some(x) => a.row(vec![
                name.to_string(),
                format!("{:.0}%", 100.0 * x.within_10pct),
                format!("{:.0}%", 100.0 * x.within_20pct),
                format!("{:.1}%", 100.0 * x.mean_ape),
                format!("{:.1}%", 100.0 * x.max_ape),
                format!("{:.3}", x.median_ratio),
                format!("{:.3}", x.kendall_tau),
            ]),
            None => a.row(vec![name.to_string(), "not measured".into()]),
        }
    }
    s += &format!(
        "\naccuracy over {} models\n{}",
        rows.iter().filter(|r| r.measured.is_some()).count(),
        a.render(2)
    );
    s += &format!(
        "  measured/predicted by round (each model keeps its fastest): prefill {}, decode {}\n",
        join_ratios(&v.round_ratios.prefill),
        join_ratios(&v.round_ratios.decode)
    );
    s += &format!(
        "\n  {:.0} s; validate.json, validate.csv and calibration.svg in {}\n",
        v.wall_s,
        out.display()
    );
    s
}

#[cfg(test)]
mod tests {
    use super::{MeasureReport, RoundRatios, Row, combine, groups, visit_order};
    use serde_json::json;
    use tailor_spec::ModelSpec;

    /// A session of a model: prefill and decode medians, ms.
    fn session(prefill: f64, decode: f64) -> MeasureReport {
        let timed = |m: f64| json!({"median_ms": m, "p10_ms": 0.9 * m, "p90_ms": 1.2 * m, "samples": 10, "capped": false});
        serde_json::from_value(json!({
            "spec": "a.toml",
            "fingerprint": {"backend": "flex", "device": "cpu", "driver": "", "cpu_model": "x",
                "cores": 2, "threads": 2, "os": "linux-x86_64", "dtype": "f32", "burn_version": "0.22.1"},
            "prompt_tokens": 64, "context": 256, "params": 1,
            "prefill": timed(prefill), "decode": timed(decode),
            "peak_memory_bytes": 1000, "memory_source": "rss", "build_s": 0.1,
        }))
        .unwrap()
    }

    #[test]
    fn a_model_keeps_its_fastest_session_and_the_whole_spread() {
        let m = combine(&[session(12.0, 2.0), session(10.0, 2.4), session(11.0, 2.2)]).unwrap();
        assert_eq!(m.prefill.median_ms, 10.0);
        assert_eq!(m.decode.median_ms, 2.0);
        assert_eq!((m.prefill.p10_ms, m.prefill.p90_ms), (9.0, 12.0 * 1.2));
        assert_eq!(m.prefill.samples, 30);
        assert_eq!(m.peak_memory_bytes, Some(1000));
        assert!(combine(&[]).is_none());
    }

    #[test]
    fn round_ratios_show_a_slow_round() {
        let row = |prefill: f64, decode: f64, measured: bool| Row {
            id: 0,
            spec: ModelSpec::llama(8192, 512, 4, 8, 4, 1408),
            params: 1,
            predicted_prefill_ms: prefill,
            predicted_decode_ms: decode,
            predicted_memory_bytes: 1,
            predicted_ops_not_measured: 0,
            measured: measured.then(|| session(prefill, decode)),
            error: (!measured).then(|| "failed".into()),
        };
        let rows = [
            row(10.0, 2.0, true),
            row(20.0, 4.0, true),
            row(30.0, 6.0, false),
        ];
        // Round 2 ran 20% slow in prefill for every model; the failed model is left out.
        let sessions = vec![
            vec![session(10.0, 2.0), session(12.0, 2.0), session(10.5, 2.1)],
            vec![session(21.0, 4.0), session(24.0, 4.0), session(20.0, 4.2)],
            vec![session(99.0, 99.0)],
        ];
        let r = RoundRatios::of(&rows, &sessions);
        assert_eq!(r.prefill, vec![1.025, 1.2, 1.025]);
        assert_eq!(r.decode, vec![1.0, 1.0, 1.05]);
        let uneven = r.uneven();
        assert_eq!(uneven.len(), 1, "{uneven:?}");
        assert!(uneven[0].contains("prefill") && uneven[0].contains("1.025 1.200 1.025"));
    }

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

    #[test]
    fn groups_keep_the_order_and_fit_the_budget() {
        let bytes = |i: usize| [30u64, 50, 20, 90, 10, 200, 5][i];
        let todo = [3, 0, 1, 2, 5, 4, 6];
        let g = groups(&todo, bytes, 100);
        assert_eq!(g, vec![vec![3], vec![0, 1, 2], vec![5], vec![4, 6]]);
        // Every model once, in order; no group over the budget but a lone big model.
        assert_eq!(g.concat(), todo);
        for group in &g {
            let held: u64 = group.iter().map(|&i| bytes(i)).sum();
            assert!(held <= 100 || group.len() == 1, "{group:?}");
        }
        assert_eq!(groups(&todo, bytes, u64::MAX), vec![todo.to_vec()]);
        assert!(groups(&[], bytes, 100).is_empty());
    }
}
