//! The device profile (`profiles/<name>.toml`): which setup was measured (the fingerprint),
//! its measured roofline, and one timed entry per distinct operator shape.
//!
//! The profile is written by `tailor-profiler` (through burn) and read by cost models; it
//! lives here so that reading it needs no burn.

use crate::cpu::CpuId;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;
use tailor_spec::files::{self, FileError};
use tailor_spec::{DType, ModelSpec};

/// The `format_version` this build reads and writes.
/// Version 2: the attention entry covers everything between the projections (head
/// split, RoPE, KV-cache append, attention, head merge), and residual adds and the LM head
/// have their own entries.
pub const PROFILE_FORMAT_VERSION: u32 = 2;

pub use crate::shape::OpShape;

/// The setup a profile was measured on. Two profiles are comparable only when every
/// field matches (but `max_freq_khz`, which only documents the cores); a cost model
/// refuses a profile made for another setup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fingerprint {
    /// burn backend: flex, ndarray or wgpu.
    pub backend: String,
    /// Adapter name for GPU backends (`llvmpipe (LLVM 15.0.7, 256 bits)`), `cpu` otherwise.
    pub device: String,
    /// What the GPU kernels are compiled for (driver/runtime), empty on CPU backends.
    pub driver: String,
    pub cpu_model: String,
    pub cores: u32,
    /// Threads the backend computes with.
    pub threads: u32,
    /// `linux-x86_64`, `android-aarch64`, ...
    pub os: String,
    /// Element type of weights and activations.
    pub dtype: DType,
    pub burn_version: String,
    /// The SoC (`/sys/devices/soc0`, Android's `Hardware`), where the OS tells.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub soc: String,
    /// CPUs the profile ran on when pinned (`--cpus`, e.g. `4-7`); empty: all.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cpus: String,
    /// Highest frequency of each core the run could use, kHz (`cpuinfo_max_freq`), where
    /// readable: tells big cores from little ones. Not compared.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub max_freq_khz: Vec<u64>,
    /// Vendor, part of each kind of core, the kernels' instruction-set extensions and the
    /// caches: another CPU with the same model name is told apart by these. Empty in
    /// profiles made before tailor recorded it (they are compared by model name only).
    #[serde(default, skip_serializing_if = "CpuId::is_empty")]
    pub cpu: CpuId,
}

impl Fingerprint {
    /// What computes: the CPU model on CPU backends, the adapter name on GPU ones.
    pub fn machine(&self) -> &str {
        if self.device == "cpu" {
            &self.cpu_model
        } else {
            &self.device
        }
    }

    /// `field: ours vs theirs` for every field that differs.
    pub fn differences(&self, other: &Fingerprint) -> Vec<String> {
        let mut out = Vec::new();
        let mut cmp = |name: &str, a: &dyn fmt::Display, b: &dyn fmt::Display| {
            let (a, b) = (a.to_string(), b.to_string());
            if a != b {
                out.push(format!("{name} `{a}` vs `{b}`"));
            }
        };
        cmp("backend", &self.backend, &other.backend);
        cmp("device", &self.device, &other.device);
        cmp("driver", &self.driver, &other.driver);
        cmp("cpu_model", &self.cpu_model, &other.cpu_model);
        cmp("cores", &self.cores, &other.cores);
        cmp("threads", &self.threads, &other.threads);
        cmp("os", &self.os, &other.os);
        cmp("dtype", &self.dtype, &other.dtype);
        cmp("burn_version", &self.burn_version, &other.burn_version);
        cmp("soc", &self.soc, &other.soc);
        cmp("cpus", &self.cpus, &other.cpus);
        out.extend(self.cpu.differences(&other.cpu));
        out
    }
}

/// When and by what a profile was made (not part of the match).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    pub tailor_version: String,
    /// UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    pub created: String,
    pub updated: String,
}

/// The measured roofline of the backend: what bounds and extrapolates predictions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RooflineProbe {
    /// Peak matmul throughput, GFLOP/s (median of a square matmul).
    pub matmul_gflops: f64,
    /// The `[m, k, n]` of that matmul.
    pub matmul_shape: [u64; 3],
    /// Sustained read bandwidth, GB/s (median of a sum over a large tensor).
    pub bandwidth_gbs: f64,
    /// Bytes that sum reads.
    pub bandwidth_bytes: u64,
}

/// What the runtime holds in memory beside a model's own bytes (allocator state, the
/// backend's per-thread scratch buffers, thread stacks, a GPU pool's slack): the peak of
/// a minimal model's inference ([`MemoryProbe::spec`] at [`MemoryProbe::workload`]), each
/// measured in a fresh process as `tailor measure` does, less that model's own accounted
/// bytes. A cost model adds it to every prediction of peak memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryProbe {
    /// The median of `samples_bytes`.
    pub runtime_overhead_bytes: u64,
    /// One per probe process: its peak less the probe model's accounted bytes (0 if less).
    pub samples_bytes: Vec<u64>,
    /// How the peaks were read: `rss` (resident-set high-water mark) or `pool` (the GPU
    /// backend's memory pool).
    pub source: MemorySource,
}

/// How a peak memory figure was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemorySource {
    /// The process's resident-set high-water mark (CPU backends, Linux).
    Rss,
    /// Bytes the GPU backend's memory pool reserved.
    Pool,
    /// Not measured, or unreadable here.
    None,
}

impl MemorySource {
    pub fn name(self) -> &'static str {
        match self {
            MemorySource::Rss => "rss",
            MemorySource::Pool => "pool",
            MemorySource::None => "none",
        }
    }
}

impl std::fmt::Display for MemorySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl MemoryProbe {
    /// The probe model: vocabulary 256, width 64, one layer, one head, gated FFN of 128.
    /// Its own bytes (about 0.2 MiB at f32) are small beside what it measures.
    pub fn spec() -> ModelSpec {
        ModelSpec::llama(256, 64, 1, 1, 1, 128)
    }

    /// A one-token prompt, then a decode step after one cached token.
    pub fn workload(dtype: DType) -> crate::Workload {
        crate::Workload {
            prompt_tokens: 1,
            context: 1,
            precision: tailor_spec::Precision::for_weights(dtype),
        }
    }

    /// The probe from the peaks (bytes) of its processes; `None` without any.
    pub fn from_peaks(peaks: &[u64], dtype: DType, source: MemorySource) -> Option<Self> {
        let own = crate::peak_memory_bytes(&Self::spec(), &Self::workload(dtype));
        let samples: Vec<u64> = peaks.iter().map(|p| p.saturating_sub(own)).collect();
        if samples.is_empty() {
            return None;
        }
        let median = crate::median(samples.iter().map(|&b| b as f64).collect());
        Some(Self {
            runtime_overhead_bytes: median.round() as u64,
            samples_bytes: samples,
            source,
        })
    }
}

/// One timed shape. Times are per call, microseconds.
///
/// A shape is timed in several sessions (rounds) spread over the profiling run, so that a
/// burst of load lasting seconds moves one session, not the entry: `median_us` is the
/// median of the sessions' medians, `p10_us`/`p90_us` the lowest p10 and highest p90 of
/// the sessions (the spread over time, not only within one burst).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub shape: OpShape,
    pub median_us: f64,
    pub p10_us: f64,
    pub p90_us: f64,
    /// Timed calls, over all sessions.
    pub samples: u32,
    /// A session stopped at the time cap before its spread target was met.
    pub capped: bool,
    /// The median of each session, in the order they ran.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rounds: Vec<f64>,
    /// The device's state around each session, where the OS tells (phones; absent on
    /// machines without thermal zones or cpufreq).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Conditions>,
    /// A drift check found this entry's class away from the machine while a run that did
    /// not need the entry was using the profile: its time no longer describes the machine,
    /// and the next run (or `tailor profile`) that needs it re-measures it first.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stale: bool,
}

/// Temperatures and throttling around one timing session.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    /// Hottest CPU thermal zone before and after the session, degrees C.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temp_before_c: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temp_after_c: Option<f64>,
    /// A core in use had its frequency capped below its maximum (thermal or power
    /// throttling) before or after the session: its times are suspect.
    pub throttled: bool,
    /// Share of the CPUs' time (0-1) that other processes used during the session, from
    /// `/proc/stat` less this process's own time; absent where the OS does not tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_load: Option<f64>,
    /// Share of the CPUs' time the hypervisor gave to other guests during the session
    /// (steal time); absent where the OS does not tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steal: Option<f64>,
    /// Other processes and steal together took more than [`Conditions::LOADED_SHARE`] of
    /// the CPUs: the session competed for them and its time is suspect (too slow).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub loaded: bool,
}

impl Conditions {
    /// Share of the CPUs taken by others above which a session counts as loaded. One busy
    /// process on a 4-core phone is 0.25; the timer, the logger and the kernel's own work
    /// stay under a few percent on an idle machine.
    pub const LOADED_SHARE: f64 = 0.2;

    /// Whether `other_load` and `steal` say the session competed for the CPUs.
    pub fn is_loaded(other_load: Option<f64>, steal: Option<f64>) -> bool {
        other_load.unwrap_or(0.0) + steal.unwrap_or(0.0) > Self::LOADED_SHARE
    }
}

impl Entry {
    /// Sessions this entry was timed in (an entry without `rounds` had one).
    pub fn sessions(&self) -> usize {
        self.rounds.len().max(1)
    }

    /// Some session ran while the device was throttled.
    pub fn throttled(&self) -> bool {
        self.conditions.iter().any(|c| c.throttled)
    }

    /// Some session ran while other processes or other guests took a share of the CPUs
    /// (see [`Conditions::loaded`]).
    pub fn loaded(&self) -> bool {
        self.conditions.iter().any(|c| c.loaded)
    }

    /// `(p90 - p10) / median`.
    pub fn spread(&self) -> f64 {
        (self.p90_us - self.p10_us) / self.median_us
    }
}

/// A device profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub format_version: u32,
    pub name: String,
    pub fingerprint: Fingerprint,
    pub provenance: Provenance,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roofline: Option<RooflineProbe>,
    /// The runtime's own memory; absent in profiles made before it was measured (their
    /// predictions leave it out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryProbe>,
    /// Bytes of weight copies each entry cycled through (`--cycle-mib`), so that it read
    /// its weights from where a whole model reads them; every later session of this
    /// profile (resume, drift check, re-measure) uses the same. Absent in profiles made
    /// before it was recorded: [`Profile::DEFAULT_CYCLE_BYTES`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cycle_bytes: Option<u64>,
    #[serde(default)]
    pub entries: Vec<Entry>,
}

impl Profile {
    /// The cycle of profiles that do not record theirs, and the floor of the automatic one.
    pub const DEFAULT_CYCLE_BYTES: u64 = 96 << 20;

    /// The cycle this profile's entries were (or are to be) timed with.
    pub fn cycle(&self) -> u64 {
        self.cycle_bytes.unwrap_or(Self::DEFAULT_CYCLE_BYTES)
    }

    /// The cycle to time a profile with when none is asked for: where the whole models a
    /// profile serves (`model_weight_bytes`, their median) hold more weights than the CPU's
    /// last-level cache (`llc_bytes`), they stream their weights from memory, so the
    /// entries cycle through twice the cache and read from memory too; otherwise the
    /// models' weights stay in the cache and [`Profile::DEFAULT_CYCLE_BYTES`] is the cycle.
    /// Measured on the Intel host (480 MiB L3): PhoneLM-0.5B's decode step predicted 38%
    /// fast with a 96 MiB cycle, 4% with 1 GiB.
    pub fn auto_cycle_bytes(model_weight_bytes: u64, llc_bytes: Option<u64>) -> u64 {
        match llc_bytes {
            Some(llc) if model_weight_bytes > llc => {
                (2 * llc).clamp(Self::DEFAULT_CYCLE_BYTES, 4096 << 20)
            }
            _ => Self::DEFAULT_CYCLE_BYTES,
        }
    }

    pub fn parse(path: &Path, src: &str) -> Result<Self, FileError> {
        let p: Profile = files::parse_versioned(path, src)?;
        for (i, e) in p.entries.iter().enumerate() {
            let ok = |v: f64| v.is_finite() && v > 0.0;
            if !(ok(e.median_us)
                && ok(e.p10_us)
                && ok(e.p90_us)
                && e.p10_us <= e.median_us
                && e.median_us <= e.p90_us)
            {
                return Err(FileError::invalid_toml(
                    path,
                    src,
                    "entries",
                    format!(
                        "entry {} ({}) has times that are not 0 < p10 <= median <= p90",
                        i + 1,
                        e.shape
                    ),
                ));
            }
        }
        Ok(p)
    }

    pub fn load(path: &Path) -> Result<Self, FileError> {
        Self::parse(path, &files::read_to_string(path)?)
    }

    /// The file's text, or why it cannot be written as TOML.
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        files::to_toml(self)
    }

    /// Writes atomically: an interrupted write leaves the previous file whole.
    pub fn save(&self, path: &Path) -> Result<(), FileError> {
        files::save_toml(path, self)
    }

    pub fn entry(&self, shape: &OpShape) -> Option<&Entry> {
        self.entries.iter().find(|e| &e.shape == shape)
    }

    /// Refuses a profile made on another setup, saying what differs.
    pub fn check_fingerprint(&self, expected: &Fingerprint) -> Result<(), SetupMismatch> {
        SetupMismatch::check(&self.name, "setup", self.fingerprint.differences(expected))
    }
}

/// A profile measured on another setup than the one it is asked to serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "profile `{profile}` was measured on another {setup} ({}); it must not serve this one",
    differences.join(", ")
)]
pub struct SetupMismatch {
    pub profile: String,
    /// What kind of setup: `setup`, `llama.cpp setup`.
    pub setup: &'static str,
    /// `field `ours` vs `theirs``, one per differing field.
    pub differences: Vec<String>,
}

impl SetupMismatch {
    /// `Ok` when nothing differs.
    pub fn check(
        profile: &str,
        setup: &'static str,
        differences: Vec<String>,
    ) -> Result<(), SetupMismatch> {
        if differences.is_empty() {
            Ok(())
        } else {
            Err(SetupMismatch {
                profile: profile.to_string(),
                setup,
                differences,
            })
        }
    }
}

impl files::Versioned for Profile {
    const FORMAT_VERSION: u32 = PROFILE_FORMAT_VERSION;
    const KIND: &'static str = "profiles";
    fn format_version(&self) -> u32 {
        self.format_version
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::PathBuf;
    use tailor_spec::{FfnKind, Phase};

    pub(crate) fn fingerprint() -> Fingerprint {
        Fingerprint {
            backend: "flex".into(),
            device: "cpu".into(),
            driver: String::new(),
            cpu_model: "Test CPU".into(),
            cores: 2,
            threads: 2,
            os: "linux-x86_64".into(),
            dtype: DType::F32,
            burn_version: "0.22.1".into(),
            soc: String::new(),
            cpus: String::new(),
            max_freq_khz: Vec::new(),
            cpu: CpuId::default(),
        }
    }

    /// A profile of the test fingerprint holding `entries`, with a measured roofline.
    pub(crate) fn profile_of(entries: Vec<Entry>, bandwidth_gbs: f64) -> Profile {
        Profile {
            format_version: PROFILE_FORMAT_VERSION,
            name: "test".into(),
            fingerprint: fingerprint(),
            provenance: Provenance {
                tailor_version: "0.1.0".into(),
                created: "2026-11-24T12:00:00Z".into(),
                updated: "2026-11-24T12:00:00Z".into(),
            },
            roofline: Some(RooflineProbe {
                matmul_gflops: 100.0,
                matmul_shape: [1024, 1024, 1024],
                bandwidth_gbs,
                bandwidth_bytes: 1 << 27,
            }),
            memory: MemoryProbe::from_peaks(
                &[4 << 20, 5 << 20, 3 << 20],
                DType::F32,
                MemorySource::Rss,
            ),
            cycle_bytes: Some(1 << 30),
            entries,
        }
    }

    /// Both passes of a small model, entries timed 10-60 us.
    pub(crate) fn sample_profile() -> Profile {
        let spec = ModelSpec::llama(1000, 64, 2, 4, 2, 128);
        let mut shapes = OpShape::for_spec(&spec, Phase::Prefill { tokens: 8 });
        for s in OpShape::for_spec(&spec, Phase::Decode { context: 10 }) {
            if !shapes.contains(&s) {
                shapes.push(s);
            }
        }
        let entries = shapes
            .into_iter()
            .enumerate()
            .map(|(i, shape)| Entry {
                shape,
                median_us: 10.0 + 3.0 * i as f64,
                p10_us: 9.0 + 3.0 * i as f64,
                p90_us: 11.0 + 3.0 * i as f64,
                samples: 20,
                capped: false,
                rounds: vec![10.0 + 3.0 * i as f64],
                conditions: Vec::new(),
                stale: false,
            })
            .collect();
        profile_of(entries, 30.0)
    }

    fn profile() -> Profile {
        let spec = ModelSpec::llama(1000, 64, 2, 4, 2, 128);
        let entries = OpShape::for_spec(&spec, Phase::Prefill { tokens: 8 })
            .into_iter()
            .enumerate()
            .map(|(i, shape)| Entry {
                shape,
                median_us: 10.0 + i as f64,
                p10_us: 9.5 + i as f64,
                p90_us: 11.0 + i as f64,
                samples: 20,
                capped: i == 0,
                rounds: vec![10.0 + i as f64],
                conditions: Vec::new(),
                stale: false,
            })
            .collect();
        profile_of(entries, 30.0)
    }

    #[test]
    fn the_cycle_reaches_past_the_cache_only_for_models_that_do() {
        let mib = |x: u64| x << 20;
        // Models larger than a 480 MiB L3 stream from memory: twice the cache.
        assert_eq!(
            Profile::auto_cycle_bytes(mib(2000), Some(mib(480))),
            mib(960)
        );
        // Models that fit, an unknown cache, a small cache: the default.
        assert_eq!(Profile::auto_cycle_bytes(mib(200), Some(mib(480))), mib(96));
        assert_eq!(Profile::auto_cycle_bytes(mib(2000), None), mib(96));
        assert_eq!(Profile::auto_cycle_bytes(mib(80), Some(mib(32))), mib(96));
        assert_eq!(
            Profile::auto_cycle_bytes(mib(1 << 20), Some(mib(1 << 14))),
            mib(4096)
        );
        // A profile without the key was timed with the default.
        let mut p = profile();
        p.cycle_bytes = None;
        assert_eq!(p.cycle(), mib(96));
    }

    #[test]
    fn profile_round_trips() {
        let p = profile();
        let text = p.to_toml().unwrap();
        let back = Profile::parse(&PathBuf::from("p.toml"), &text).unwrap();
        assert_eq!(back, p);
        assert_eq!(back.to_toml().unwrap(), text);
    }

    /// Gradient entries and multi-row LM heads (an edit's shapes) round-trip; an LM head
    /// written before it had `tokens` reads as one row, and a one-row head is written
    /// without the key, as before.
    #[test]
    fn edit_shapes_round_trip() {
        let mut p = profile();
        let spec = ModelSpec::llama(1000, 64, 2, 4, 2, 128);
        let template = p.entries[0].clone();
        for shape in crate::EditWorkload::default().shapes(&spec) {
            p.entries.push(Entry {
                shape,
                ..template.clone()
            });
        }
        let text = p.to_toml().unwrap();
        assert!(text.contains("op = \"grad\""), "{text}");
        let back = Profile::parse(&PathBuf::from("p.toml"), &text).unwrap();
        assert_eq!(back, p);
        let head = |tokens| OpShape::LmHead {
            tokens,
            hidden: 64,
            vocab: 1000,
            tied: false,
        };
        assert!(back.entries.iter().any(|e| e.shape == head(4).grad()));
        let old: OpShape =
            toml::from_str("op = \"lm_head\"\nhidden = 64\nvocab = 1000\ntied = false\n").unwrap();
        assert_eq!(old, head(1));
        assert!(!toml::to_string(&head(1)).unwrap().contains("tokens"));
    }

    #[test]
    fn shapes_of_a_pass_are_distinct_and_cover_it() {
        let mut spec = ModelSpec::llama(1000, 64, 2, 4, 4, 128);
        // MHA decode: q, k, v and o are one linear shape; the final norm is the layers' shape.
        let shapes = OpShape::for_spec(&spec, Phase::Decode { context: 10 });
        assert_eq!(shapes.len(), 7, "{shapes:?}");
        // Prefill: per-token norms differ from the last-position one.
        assert_eq!(
            OpShape::for_spec(&spec, Phase::Prefill { tokens: 8 }).len(),
            8
        );
        spec.num_kv_heads = 2;
        let shapes = OpShape::for_spec(&spec, Phase::Decode { context: 10 });
        assert_eq!(shapes.len(), 8);
        let flops: u128 = shapes.iter().map(OpShape::flops).sum();
        assert!(flops > 0);
        assert!(shapes.contains(&OpShape::Attention {
            heads: 4,
            kv_heads: 2,
            head_dim: 16,
            q_len: 1,
            kv_len: 11,
            causal: false,
            window: None,
            rope: true,
        }));
    }

    #[test]
    fn pass_flops_agree_with_spec_accounting() {
        for spec in [
            ModelSpec::llama(1000, 64, 3, 4, 2, 128),
            ModelSpec {
                ffn: FfnKind::Plain,
                ..ModelSpec::llama(32000, 2048, 22, 32, 4, 5632)
            },
        ] {
            for phase in [Phase::Prefill { tokens: 16 }, Phase::Decode { context: 31 }] {
                let total: u128 = OpShape::pass(&spec, phase)
                    .iter()
                    .map(|(s, n)| s.flops() * *n as u128)
                    .sum();
                let p = tailor_spec::Precision::default();
                assert_eq!(total, spec.pass_totals(phase, &p).flops, "{phase:?}");
            }
        }
    }

    /// The passes of today's mixed stacks (short convolutions, sliding windows shorter and
    /// longer than the prompt, Gated DeltaNet, output gates, q/k norms, NoPE layers) count
    /// the accounting's FLOPs, and a pass's calls per layer are each layer's calls.
    #[test]
    fn mixed_stack_passes_agree_with_spec_accounting() {
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../spec/tests/fixtures");
        for name in [
            "lfm2-350m",
            "gemma-3-270m",
            "qwen3-0.6b",
            "qwen3.5-0.8b",
            "smollm3-3b",
        ] {
            let path = std::path::Path::new(fixtures).join(format!("{name}.config.json"));
            let spec = tailor_spec::load_spec(&path).unwrap().spec;
            for phase in [
                Phase::Prefill { tokens: 300 },
                Phase::Prefill { tokens: 1500 },
                Phase::Decode { context: 31 },
                Phase::Decode { context: 4096 },
            ] {
                let pass = OpShape::pass(&spec, phase);
                let total: u128 = pass.iter().map(|(s, n)| s.flops() * *n as u128).sum();
                let p = tailor_spec::Precision::default();
                assert_eq!(total, spec.pass_totals(phase, &p).flops, "{name} {phase:?}");
                let per_layer: u64 = spec
                    .layers()
                    .iter()
                    .map(|l| OpShape::layer_calls(&spec, l, phase).len() as u64)
                    .sum();
                let calls: u64 = pass.iter().map(|(_, n)| n).sum();
                assert_eq!(
                    calls,
                    per_layer + 3,
                    "{name}: embedding, layers, norm, head"
                );
                assert_eq!(OpShape::call_rows(&spec, phase).len() as u64, calls);
            }
        }
    }

    #[test]
    fn mismatched_fingerprint_is_refused() {
        let p = profile();
        assert!(p.check_fingerprint(&fingerprint()).is_ok());
        let mut other = fingerprint();
        other.backend = "ndarray".into();
        other.threads = 16;
        let e = p.check_fingerprint(&other).unwrap_err().to_string();
        assert!(
            e.contains("backend `flex` vs `ndarray`") && e.contains("threads `2` vs `16`"),
            "{e}"
        );
    }

    #[test]
    fn bad_entries_are_refused() {
        let text = profile()
            .to_toml()
            .unwrap()
            .replacen("median_us = 10.0", "median_us = -1.0", 1);
        let e = Profile::parse(&PathBuf::from("p.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`entries`: entry 1"), "{e}");
    }
}
