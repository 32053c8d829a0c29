//! Running llama-bench for tailor: profiling probes (resumable, saved after every run) and
//! timing whole models against each other (validation), both in rounds that visit every
//! model in a seeded order, so the machine's slow swings fall on all models alike.

use crate::bench::{BenchError, LlamaBench, Record, Settings, Test};
use crate::cost::decode_depth;
use crate::model::{WeightType, WriteError, write_model};
use crate::profile::{
    ENGINE, FORMAT_VERSION, LlamaFingerprint, LlamaProfile, Method, Phase, Probe, ProbeEntry,
};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};
use tailor_cost::Provenance;
use tailor_spec::ModelSpec;
use tailor_spec::files::FileError;

/// Anything that stops a llama.cpp run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Bench(#[from] BenchError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(transparent)]
    File(#[from] FileError),
    /// (`error`, not `source`: the message carries it, and anyhow's chain must not print
    /// it twice.)
    #[error("{}: cannot create the folder: {error}", path.display())]
    CreateDir {
        path: std::path::PathBuf,
        error: std::io::Error,
    },
}

/// `linux-x86_64`, `android-aarch64`, ... of this build.
pub fn host_os() -> String {
    format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH)
}

/// The fingerprint a llama-bench record describes, for models of `weights`.
pub fn fingerprint_of(r: &Record, weights: WeightType, os: &str) -> LlamaFingerprint {
    LlamaFingerprint {
        build_commit: r.build_commit.clone(),
        build_number: r.build_number,
        backends: r.backends.clone(),
        cpu_info: r.cpu_info.clone(),
        gpu_info: r.gpu_info.clone(),
        threads: r.n_threads as u32,
        type_k: r.type_k.clone(),
        type_v: r.type_v.clone(),
        flash_attn: r.flash_attn(),
        n_batch: r.n_batch,
        n_ubatch: r.n_ubatch,
        weights: weights.dtype(),
        os: os.into(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        // llama-bench runs where tailor runs (on the device, in the phone flow).
        cpu: tailor_cost::CpuId::read(),
    }
}

/// The test llama-bench runs for a phase.
pub fn test_of(phase: Phase, method: &Method) -> Test {
    match phase {
        Phase::Prefill { tokens } => Test::Prefill { tokens },
        Phase::Decode { context } => Test::Decode {
            depth: decode_depth(context, method.decode_tokens),
            tokens: method.decode_tokens,
        },
    }
}

/// ms of the pass a phase prices, from one record: the prefill's time, or the time of one
/// decode step. Returns (median, min, max) over the last half of the repetitions: the
/// first ones warm the machine up (on this 2-vCPU VM the first 4-5 prefills of a run took
/// 1.5-2x as long as the rest, with llama-bench's own warm-up run already done).
pub fn pass_ms(r: &Record, phase: Phase) -> (f64, f64, f64) {
    let per = match phase {
        Phase::Prefill { .. } => 1.0,
        Phase::Decode { .. } => r.n_gen.max(1) as f64,
    };
    let all = r.samples_ms();
    let kept = &all[all.len() / 2..];
    let ms: Vec<f64> = kept.iter().map(|m| m / per).collect();
    let min = ms.iter().copied().fold(f64::INFINITY, f64::min);
    let max = ms.iter().copied().fold(0.0, f64::max);
    (tailor_cost::median(ms), min, max)
}

/// The order a round visits `n` items in: a seeded shuffle, different each round.
pub fn visit_order(n: usize, seed: u64, round: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ round.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    order.shuffle(&mut rng);
    order
}

/// What a profiling run does.
#[derive(Debug, Clone)]
pub struct ProfileJob {
    pub name: String,
    pub probes: Vec<Probe>,
    pub phases: Vec<Phase>,
    pub weights: WeightType,
    pub settings: Settings,
    pub method: Method,
    /// Where probe GGUFs are written (each removed after its runs).
    pub work_dir: PathBuf,
    pub seed: u64,
    /// Stop after this many probe visits (the rest on the next run).
    pub limit: Option<usize>,
}

/// Progress of a run, for a bar.
pub trait Progress {
    fn start(&self, _total: usize) {}
    fn visited(&self, _what: &str) {}
}

/// A progress that shows nothing.
#[derive(Debug)]
pub struct Quiet;
impl Progress for Quiet {}

/// Times a first probe to learn the setup's fingerprint (llama-bench reports its build,
/// backends and CPU with every result).
pub fn probe_fingerprint(
    bench: &LlamaBench,
    job: &ProfileJob,
    os: &str,
) -> Result<LlamaFingerprint, RunError> {
    let probe = Probe {
        vocab: 256,
        hidden: 64,
        heads: 2,
        kv_heads: 1,
        head_dim: 32,
        intermediate: 128,
        layers: 1,
        ..Probe::default()
    };
    let path = job.work_dir.join("fingerprint.gguf");
    write_model(&probe.spec(), job.weights, "fingerprint", &path, job.seed)?;
    let s = Settings {
        repetitions: 1,
        ..job.settings.clone()
    };
    let run = bench.run(&[&path], Test::Prefill { tokens: 1 }, &s, false);
    let _ = std::fs::remove_file(&path);
    let run = run?;
    Ok(fingerprint_of(&run.records[0], job.weights, os))
}

/// A new, empty profile.
pub fn new_profile(
    name: &str,
    fingerprint: LlamaFingerprint,
    method: Method,
    now: &str,
) -> LlamaProfile {
    LlamaProfile {
        format_version: FORMAT_VERSION,
        engine: ENGINE.into(),
        name: name.into(),
        fingerprint,
        provenance: Provenance {
            tailor_version: env!("CARGO_PKG_VERSION").into(),
            created: now.into(),
            updated: now.into(),
        },
        method,
        probes: Vec::new(),
    }
}

/// Visits still to run: `(round, probe index)` in the order they run.
pub fn pending(profile: &LlamaProfile, job: &ProfileJob) -> Vec<(u64, usize)> {
    let rounds = profile.method.rounds as u64;
    let mut out = Vec::new();
    for round in 0..rounds {
        for i in visit_order(job.probes.len(), job.seed, round) {
            let p = &job.probes[i];
            let done = job.phases.iter().all(|ph| {
                profile
                    .entry(p, *ph)
                    .is_some_and(|e| !e.stale && e.rounds_ms.len() as u64 > round)
            });
            if !done {
                out.push((round, i));
            }
        }
    }
    out
}

/// Runs the job's pending visits, saving the profile through `save` after each: a kill
/// loses at most the visit in flight, and a rerun resumes. Each visit writes the probe's
/// GGUF, runs llama-bench once per phase, appends one round to each entry and removes the
/// file.
pub fn run_profile(
    bench: &LlamaBench,
    mut profile: LlamaProfile,
    job: &ProfileJob,
    now: &dyn Fn() -> String,
    progress: &dyn Progress,
    save: &mut dyn FnMut(&LlamaProfile) -> Result<(), FileError>,
) -> Result<LlamaProfile, RunError> {
    let mut todo = pending(&profile, job);
    if let Some(limit) = job.limit {
        todo.truncate(limit);
    }
    progress.start(todo.len());
    std::fs::create_dir_all(&job.work_dir).map_err(|error| RunError::CreateDir {
        path: job.work_dir.clone(),
        error,
    })?;
    for (round, i) in todo {
        let probe = job.probes[i];
        let path = job.work_dir.join(format!("{}.gguf", probe.label()));
        write_model(&probe.spec(), job.weights, &probe.label(), &path, job.seed)?;
        let result = (|| -> Result<(), RunError> {
            for &phase in &job.phases {
                // A stale entry is timed afresh: its old rounds go at its first new one.
                if let Some(e) = profile
                    .probes
                    .iter_mut()
                    .find(|e| e.model == probe && e.phase == phase && e.stale)
                {
                    e.rounds_ms.clear();
                    e.min_ms = f64::INFINITY;
                    e.max_ms = 0.0;
                    e.peak_rss_bytes = None;
                    e.loaded_rounds = 0;
                    e.stale = false;
                }
                let have = profile
                    .entry(&probe, phase)
                    .map_or(0, |e| e.rounds_ms.len() as u64);
                if have > round {
                    continue;
                }
                let before = tailor_cost::load::read(&[]);
                let run = bench.run(
                    &[&path],
                    test_of(phase, &profile.method),
                    &job.settings,
                    true,
                )?;
                // llama-bench's own time is this process's children's: what is left of
                // the CPUs' busy time was someone else's.
                let shares = before
                    .zip(tailor_cost::load::read(&[]))
                    .and_then(|(b, a)| b.shares(&a));
                let loaded = u32::from(tailor_cost::Conditions::is_loaded(
                    shares.map(|s| s.0),
                    shares.map(|s| s.1),
                ));
                let r = &run.records[0];
                let (median, min, max) = pass_ms(r, phase);
                match profile
                    .probes
                    .iter_mut()
                    .find(|e| e.model == probe && e.phase == phase)
                {
                    Some(e) => {
                        e.rounds_ms.push(median);
                        e.min_ms = e.min_ms.min(min);
                        e.max_ms = e.max_ms.max(max);
                        e.peak_rss_bytes = match (e.peak_rss_bytes, run.peak_rss_bytes) {
                            (Some(a), Some(b)) => Some(a.max(b)),
                            (a, b) => a.or(b),
                        };
                        e.loaded_rounds += loaded;
                    }
                    None => profile.probes.push(ProbeEntry {
                        model: probe,
                        phase,
                        rounds_ms: vec![median],
                        min_ms: min,
                        max_ms: max,
                        params: r.model_n_params,
                        peak_rss_bytes: run.peak_rss_bytes,
                        loaded_rounds: loaded,
                        stale: false,
                    }),
                }
            }
            Ok(())
        })();
        let _ = std::fs::remove_file(&path);
        result?;
        profile.provenance.updated = now();
        save(&profile)?;
        progress.visited(&format!("{probe} round {}", round + 1));
    }
    Ok(profile)
}

/// One whole model timed by llama-bench in each round.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelTiming {
    /// Each round's median prefill, ms.
    pub prefill_rounds_ms: Vec<f64>,
    /// Each round's median decode step, ms.
    pub decode_rounds_ms: Vec<f64>,
    /// Largest peak resident memory of its decode runs, bytes, where the OS told.
    pub peak_rss_bytes: Option<u64>,
    /// Parameters llama-bench counted.
    pub params: u64,
    pub file_bytes: u64,
}

impl ModelTiming {
    pub fn prefill_ms(&self) -> f64 {
        tailor_cost::median(self.prefill_rounds_ms.clone())
    }
    pub fn decode_ms(&self) -> f64 {
        tailor_cost::median(self.decode_rounds_ms.clone())
    }
}

/// Writes each spec's GGUF into `dir`, then times them all in `rounds` rounds, each
/// visiting the models in a seeded order (prefill, then decode, per visit). Returns one
/// timing per spec, or the error that stopped that model.
#[allow(clippy::too_many_arguments)]
pub fn measure_models(
    bench: &LlamaBench,
    specs: &[ModelSpec],
    weights: WeightType,
    phases: [Phase; 2],
    settings: &Settings,
    method: &Method,
    rounds: u64,
    dir: &Path,
    seed: u64,
    progress: &dyn Progress,
) -> Result<Vec<Result<ModelTiming, RunError>>, RunError> {
    std::fs::create_dir_all(dir).map_err(|error| RunError::CreateDir {
        path: dir.to_path_buf(),
        error,
    })?;
    let mut files = Vec::new();
    let mut out: Vec<Result<ModelTiming, RunError>> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let path = dir.join(format!("model-{i}.gguf"));
        match write_model(spec, weights, &format!("model-{i}"), &path, seed) {
            Ok(w) => {
                out.push(Ok(ModelTiming {
                    prefill_rounds_ms: Vec::new(),
                    decode_rounds_ms: Vec::new(),
                    peak_rss_bytes: None,
                    params: 0,
                    file_bytes: w.file_bytes,
                }));
                files.push(Some(path));
            }
            Err(e) => {
                out.push(Err(e.into()));
                files.push(None);
            }
        }
    }
    progress.start(specs.len() * rounds as usize);
    for round in 0..rounds {
        for i in visit_order(specs.len(), seed, round) {
            let Some(path) = &files[i] else { continue };
            if out[i].is_err() {
                continue;
            }
            for phase in phases {
                let res = bench.run(&[path], test_of(phase, method), settings, true);
                let entry = &mut out[i];
                match (res, entry.as_mut()) {
                    (Ok(run), Ok(t)) => {
                        let r = &run.records[0];
                        t.params = r.model_n_params;
                        let (median, _, _) = pass_ms(r, phase);
                        match phase {
                            Phase::Prefill { .. } => t.prefill_rounds_ms.push(median),
                            Phase::Decode { .. } => {
                                t.decode_rounds_ms.push(median);
                                t.peak_rss_bytes = match (t.peak_rss_bytes, run.peak_rss_bytes) {
                                    (Some(a), Some(b)) => Some(a.max(b)),
                                    (a, b) => a.or(b),
                                };
                            }
                        }
                    }
                    (Err(e), _) => *entry = Err(e.into()),
                    (Ok(_), Err(_)) => {}
                }
            }
            progress.visited(&format!("model {} round {}", i + 1, round + 1));
        }
    }
    for f in files.into_iter().flatten() {
        let _ = std::fs::remove_file(f);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::tests::profile;

    #[test]
    fn a_runs_time_is_the_median_of_its_last_half() {
        let json = r#"[{"build_commit": "x", "build_number": 0, "cpu_info": "c", "gpu_info": "",
            "backends": "CPU", "model_filename": "m", "model_type": "t", "model_size": 1,
            "model_n_params": 1, "n_batch": 1, "n_ubatch": 1, "n_threads": 2, "type_k": "f16",
            "type_v": "f16", "flash_attn": -1, "n_prompt": 0, "n_gen": 4, "n_depth": 8,
            "samples_ns": [50000000, 40000000, 10000000, 11000000, 12000000, 13000000]}]"#;
        let r = &crate::bench::parse_output(json).unwrap()[0];
        // Decode: per token (4 tokens), over the last 3 repetitions.
        let (median, min, max) = pass_ms(r, Phase::Decode { context: 10 });
        assert_eq!((median, min, max), (3.0, 2.75, 3.25));
    }

    #[test]
    fn visit_orders_are_seeded_permutations() {
        let a = visit_order(10, 3, 0);
        assert_eq!(a, visit_order(10, 3, 0));
        assert_ne!(a, visit_order(10, 3, 1));
        let mut s = a.clone();
        s.sort();
        assert_eq!(s, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn pending_skips_finished_rounds_and_resumes_the_rest() {
        let mut p = profile();
        let probes: Vec<Probe> = {
            let mut v: Vec<Probe> = p.probes.iter().map(|e| e.model).collect();
            v.dedup();
            v.truncate(3);
            v
        };
        let job = ProfileJob {
            name: "t".into(),
            probes: probes.clone(),
            phases: vec![
                Phase::Prefill { tokens: 64 },
                Phase::Decode { context: 256 },
            ],
            weights: WeightType::Q4_0,
            settings: Settings::default(),
            method: p.method,
            work_dir: PathBuf::from("/tmp"),
            seed: 0,
            limit: None,
        };
        // Every entry has 3 rounds: nothing to do.
        assert!(pending(&p, &job).is_empty());
        // Cut one entry back to one round: its probe's rounds 2 and 3 are pending.
        let e = p
            .probes
            .iter_mut()
            .find(|e| e.model == probes[1] && e.phase == Phase::Decode { context: 256 })
            .unwrap();
        e.rounds_ms.truncate(1);
        assert_eq!(pending(&p, &job), vec![(1, 1), (2, 1)]);
        p.method.rounds = 4;
        assert_eq!(pending(&p, &job).len(), 2 + 3);
    }
}
