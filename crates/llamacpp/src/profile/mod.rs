//! The llama.cpp profile (`profiles/<name>.toml` with `engine = "llama.cpp"`): the setup
//! (llama-bench's build, backends, CPU, threads, KV-cache type, flash attention, weight
//! type), and one entry per *probe*: a small random-weight model timed whole by
//! llama-bench, in a prefill of P tokens or in decode steps at context C.
//!
//! llama-bench times whole models only, so the profile keeps the promise of timing each
//! shape once by differencing (see [`LayerTable`]): for each width, one reference layer at
//! two depths gives that layer's cost (the slope) and the rest of the model's (embedding,
//! final norm, LM head and the engine's per-pass work: the intercept); every other layer
//! shape is one model at one depth less that intercept. Attention and FFN add within a
//! layer, so a space's layers need one probe per attention configuration and one per FFN
//! width at each model width, not one per combination.
//!
//! - this module: the file format (fingerprint, method, probes and their entries);
//! - `plan`: which probes a set of specs needs (`plan`, `Depths`, `shallow_widths`);
//! - `table`: the differencing of probe times into per-layer costs ([`LayerTable`]).

mod plan;
pub mod stack;
mod table;

pub use plan::{Depths, LAYER_VOCAB, ShallowWidth, plan, shallow_widths};
pub use stack::{MixerKey, Rest, StackShape, StackTable};
pub use table::{FfnFit, LayerTable};

use crate::arch::Arch;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use tailor_cost::{CpuId, Provenance, SetupMismatch};
pub use tailor_spec::Phase;
use tailor_spec::files::{self, FileError};
use tailor_spec::{DType, ModelSpec};

pub const FORMAT_VERSION: u32 = 1;
/// The value of a llama.cpp profile's top-level `engine` key.
pub const ENGINE: &str = "llama.cpp";

/// What a llama.cpp profile was measured with. Profiles are comparable only when all but
/// `cores` match; a cost model refuses one made with another setup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlamaFingerprint {
    /// llama.cpp's build commit and number, as llama-bench reports them.
    pub build_commit: String,
    pub build_number: i64,
    /// ggml backends compiled in (`CPU`, `CPU,Vulkan`, ...).
    pub backends: String,
    pub cpu_info: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub gpu_info: String,
    pub threads: u32,
    /// KV cache element types (`-ctk`, `-ctv`).
    pub type_k: String,
    pub type_v: String,
    /// `on`, `off` or `auto`.
    pub flash_attn: String,
    pub n_batch: u64,
    pub n_ubatch: u64,
    /// Weight type of every matrix of the timed models.
    pub weights: DType,
    /// `linux-x86_64`, `android-aarch64`, ...
    pub os: String,
    /// Logical CPUs of the machine (documents; not compared).
    pub cores: u32,
    /// The CPU's vendor, parts, kernel ISA extensions and caches (see
    /// [`tailor_cost::CpuId`]); empty in profiles made before tailor recorded it.
    #[serde(default, skip_serializing_if = "CpuId::is_empty")]
    pub cpu: CpuId,
}

impl LlamaFingerprint {
    /// `field: ours vs theirs` for every compared field that differs.
    pub fn differences(&self, other: &LlamaFingerprint) -> Vec<String> {
        let mut out = Vec::new();
        let mut cmp = |name: &str, a: &dyn fmt::Display, b: &dyn fmt::Display| {
            let (a, b) = (a.to_string(), b.to_string());
            if a != b {
                out.push(format!("{name} `{a}` vs `{b}`"));
            }
        };
        cmp("build_commit", &self.build_commit, &other.build_commit);
        cmp("build_number", &self.build_number, &other.build_number);
        cmp("backends", &self.backends, &other.backends);
        cmp("cpu_info", &self.cpu_info, &other.cpu_info);
        cmp("gpu_info", &self.gpu_info, &other.gpu_info);
        cmp("threads", &self.threads, &other.threads);
        cmp("type_k", &self.type_k, &other.type_k);
        cmp("type_v", &self.type_v, &other.type_v);
        cmp("flash_attn", &self.flash_attn, &other.flash_attn);
        cmp("n_batch", &self.n_batch, &other.n_batch);
        cmp("n_ubatch", &self.n_ubatch, &other.n_ubatch);
        cmp("weights", &self.weights, &other.weights);
        cmp("os", &self.os, &other.os);
        out.extend(self.cpu.differences(&other.cpu));
        out
    }
}

/// How the probes were timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Method {
    /// Decode steps per llama-bench decode test (`-n`); the test starts `decode_tokens / 2`
    /// before the profiled context so its steps centre on it.
    pub decode_tokens: u64,
    /// llama-bench repetitions per run (`-r`); a round's time is the median of the last
    /// half of them (the first are warm-up).
    pub repetitions: u32,
    /// Runs per probe and phase, in rounds over all probes in a seeded order; an entry's
    /// time is the median of its rounds.
    pub rounds: u32,
}

impl Default for Method {
    fn default() -> Self {
        Method {
            decode_tokens: 16,
            repetitions: 10,
            rounds: 3,
        }
    }
}

/// A probe model: tied embeddings, RMSNorm, a gated FFN of one width. Without `arch`, the
/// dense `llama` stack (SiLU, attention of `heads`/`kv_heads`/`head_dim` in every layer);
/// with it, that llama.cpp architecture (its activation, norms, q/k norms and gates; see
/// [`crate::arch`]): `layers - rest_layers` global attention layers, then `rest_layers` of
/// the `rest` mixer ([`stack`]).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    pub vocab: u64,
    pub hidden: u64,
    pub heads: u64,
    pub kv_heads: u64,
    pub head_dim: u64,
    pub intermediate: u64,
    pub layers: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<Arch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rest: Option<Rest>,
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub rest_layers: u64,
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

impl Probe {
    pub fn of(spec: &ModelSpec, layers: u64) -> Self {
        Probe {
            vocab: spec.vocab_size,
            hidden: spec.hidden_size,
            heads: spec.num_heads,
            kv_heads: spec.num_kv_heads,
            head_dim: spec.head_dim(),
            intermediate: spec.intermediate_size,
            layers,
            ..Probe::default()
        }
    }

    pub fn layer(&self) -> LayerKey {
        LayerKey {
            hidden: self.hidden,
            attention: Attn {
                heads: self.heads,
                kv_heads: self.kv_heads,
                head_dim: self.head_dim,
            },
            intermediate: self.intermediate,
        }
    }

    pub fn spec(&self) -> ModelSpec {
        if let Some(arch) = self.arch {
            return stack::probe_spec(self, arch);
        }
        let mut s = ModelSpec::llama(
            self.vocab,
            self.hidden,
            self.layers,
            self.heads,
            self.kv_heads,
            self.intermediate,
        );
        if self.heads * self.head_dim != self.hidden {
            s.head_dim = Some(self.head_dim);
        }
        s.tie_embeddings = true;
        s
    }

    /// A short file-name-safe label.
    pub fn label(&self) -> String {
        let mut label = format!(
            "v{}-h{}-a{}x{}x{}-f{}-l{}",
            self.vocab,
            self.hidden,
            self.heads,
            self.kv_heads,
            self.head_dim,
            self.intermediate,
            self.layers
        );
        if let Some(arch) = self.arch {
            label = format!("{}-{label}", arch.name());
        }
        if let Some(r) = self.rest {
            label.push_str(&format!("-{}x{}", r.label(), self.rest_layers));
        }
        label
    }
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}x{} {}/{}x{} ffn {} vocab {}",
            self.hidden,
            self.layers,
            self.heads,
            self.kv_heads,
            self.head_dim,
            self.intermediate,
            self.vocab
        )?;
        if let Some(arch) = self.arch {
            write!(f, " ({}", arch.name())?;
            if let Some(r) = self.rest {
                write!(f, ", {} of them {r}", self.rest_layers)?;
            }
            write!(f, ")")?;
        }
        Ok(())
    }
}

/// The attention configuration of a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Attn {
    pub heads: u64,
    pub kv_heads: u64,
    pub head_dim: u64,
}

/// One layer's shape, as far as llama.cpp's time depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LayerKey {
    pub hidden: u64,
    pub attention: Attn,
    pub intermediate: u64,
}

impl LayerKey {
    pub fn of(spec: &ModelSpec) -> Self {
        Probe::of(spec, spec.num_layers).layer()
    }
}

/// One probe timed in one phase. Times are of the whole pass: a prefill's ms, or ms per
/// decoded token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeEntry {
    pub model: Probe,
    pub phase: Phase,
    /// The median repetition of each round, ms, in the order the rounds ran.
    pub rounds_ms: Vec<f64>,
    /// The lowest and highest repetition over all rounds, ms.
    pub min_ms: f64,
    pub max_ms: f64,
    /// Parameters llama-bench counted in the file.
    pub params: u64,
    /// Peak resident memory of the llama-bench run, bytes (largest over rounds), where the
    /// OS told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss_bytes: Option<u64>,
    /// Rounds whose llama-bench run competed for the CPUs: other processes (or other
    /// guests of a VM) took more than `Conditions::LOADED_SHARE` of them meanwhile. Their
    /// times are suspect (too slow).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub loaded_rounds: u32,
    /// A drift check found this entry's phase away from the machine: its rounds no longer
    /// describe it, and the next profiling run that needs the entry times it afresh.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stale: bool,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl ProbeEntry {
    pub fn median_ms(&self) -> f64 {
        tailor_cost::median(self.rounds_ms.clone())
    }
}

/// A llama.cpp profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlamaProfile {
    pub format_version: u32,
    /// Always `llama.cpp`: tells this file from a burn profile.
    pub engine: String,
    pub name: String,
    pub fingerprint: LlamaFingerprint,
    pub provenance: Provenance,
    pub method: Method,
    #[serde(default)]
    pub probes: Vec<ProbeEntry>,
}

/// Whether a profile file is a llama.cpp one (its top-level `engine` key), without
/// parsing the rest.
pub fn is_llama_profile(src: &str) -> bool {
    src.lines().any(|l| {
        let l = l.trim();
        l.starts_with("engine") && l.contains(&format!("\"{ENGINE}\""))
    })
}

impl LlamaProfile {
    /// Whether a drift check marked some entry stale (the next profiling run of a space
    /// that needs it times it again).
    pub fn has_stale(&self) -> bool {
        self.probes.iter().any(|e| e.stale)
    }

    pub fn parse(path: &Path, src: &str) -> Result<Self, FileError> {
        let p: LlamaProfile = files::parse_versioned(path, src)?;
        let bad = |key: &str, message: String| FileError::invalid_toml(path, src, key, message);
        if p.engine != ENGINE {
            return Err(bad("engine", format!("`{}` is not `{ENGINE}`", p.engine)));
        }
        if p.method.decode_tokens == 0 || p.method.repetitions == 0 || p.method.rounds == 0 {
            return Err(bad(
                "method",
                "decode_tokens, repetitions and rounds must be at least 1".into(),
            ));
        }
        for (i, e) in p.probes.iter().enumerate() {
            let ok = |v: f64| v.is_finite() && v > 0.0;
            if e.rounds_ms.is_empty()
                || !e.rounds_ms.iter().all(|&v| ok(v))
                || !(ok(e.min_ms) && ok(e.max_ms) && e.min_ms <= e.max_ms)
            {
                return Err(bad(
                    "probes",
                    format!(
                        "probe {} ({}, {}) has times that are not positive finite numbers with min <= max",
                        i + 1,
                        e.model,
                        e.phase
                    ),
                ));
            }
            if e.model.layers == 0 || e.model.heads * e.model.head_dim == 0 {
                return Err(bad(
                    "probes",
                    format!("probe {} has no layers or no heads", i + 1),
                ));
            }
            let m = &e.model;
            if m.rest.is_some() != (m.rest_layers > 0)
                || m.rest_layers >= m.layers
                || (m.rest.is_some() && m.arch.is_none())
            {
                return Err(bad(
                    "probes",
                    format!(
                        "probe {} ({}): `rest` and `rest_layers` go together, with an `arch`, \
                         and leave at least one attention layer",
                        i + 1,
                        e.model
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

    pub fn entry(&self, model: &Probe, phase: Phase) -> Option<&ProbeEntry> {
        self.probes
            .iter()
            .find(|e| &e.model == model && e.phase == phase)
    }

    /// Refuses a profile made with another setup, saying what differs.
    pub fn check_fingerprint(&self, expected: &LlamaFingerprint) -> Result<(), SetupMismatch> {
        SetupMismatch::check(
            &self.name,
            "llama.cpp setup",
            self.fingerprint.differences(expected),
        )
    }

    /// The phases the profile holds probes of.
    pub fn phases(&self) -> BTreeSet<Phase> {
        self.probes.iter().map(|e| e.phase).collect()
    }

    /// The differenced layer table of one phase, from its dense (`llama`) probes.
    pub fn table(&self, phase: Phase) -> LayerTable {
        let timed: Vec<(Probe, f64)> = self
            .probes
            .iter()
            .filter(|e| e.phase == phase && e.model.arch.is_none())
            .map(|e| (e.model, e.median_ms()))
            .collect();
        LayerTable::derive(&timed)
    }

    /// The architectures of the profile's mixed-stack probes.
    pub fn archs(&self) -> BTreeSet<Arch> {
        self.probes.iter().filter_map(|e| e.model.arch).collect()
    }

    /// The per-mixer table of one phase and architecture, from its probes: a prefill's
    /// alone, a decode context's solved with every other decode context of the
    /// architecture, a short convolution and a Gated DeltaNet costing the same at each
    /// ([`StackTable::derive_joint`]).
    pub fn stack_table(&self, phase: Phase, arch: Arch) -> StackTable {
        let timed = |phase: Phase| -> Vec<(Probe, f64)> {
            self.probes
                .iter()
                .filter(|e| e.phase == phase && e.model.arch == Some(arch))
                .map(|e| (e.model, e.median_ms()))
                .collect()
        };
        if let Phase::Prefill { .. } = phase {
            return StackTable::derive(&timed(phase));
        }
        let decodes: Vec<Phase> = self
            .phases()
            .into_iter()
            .filter(|p| matches!(p, Phase::Decode { .. }))
            .collect();
        let groups: Vec<Vec<(Probe, f64)>> = decodes.iter().map(|&p| timed(p)).collect();
        let at = decodes.iter().position(|p| *p == phase);
        let mut tables = StackTable::derive_joint(&groups, MixerKey::is_flat);
        match at {
            Some(i) => tables.swap_remove(i),
            None => StackTable::derive(&timed(phase)),
        }
    }
}

impl files::Versioned for LlamaProfile {
    const FORMAT_VERSION: u32 = FORMAT_VERSION;
    const KIND: &'static str = "llama.cpp profiles";
    fn format_version(&self) -> u32 {
        self.format_version
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A made-up engine where everything adds: base per (vocab, hidden), attention and FFN
    /// parts per layer.
    fn synthetic(p: &Probe) -> f64 {
        let base = 0.5 + p.vocab as f64 * p.hidden as f64 * 1e-7;
        let attn = 0.01 * p.heads as f64 + 0.03 * p.kv_heads as f64 + 1e-4 * p.hidden as f64;
        let ffn = 2e-4 * p.intermediate as f64;
        base + p.layers as f64 * (attn + ffn + 0.02)
    }

    fn space() -> Vec<ModelSpec> {
        let mut specs = Vec::new();
        for h in [256, 512] {
            for heads in [4, 8] {
                for kv in [1, 2, 4] {
                    for f in [2 * h, 3 * h] {
                        for l in [4, 8, 12] {
                            specs.push(ModelSpec::llama(8192, h, l, heads, kv, f));
                        }
                    }
                }
            }
        }
        specs.push(ModelSpec::llama(32000, 256, 4, 4, 1, 512));
        specs
    }

    #[test]
    fn differencing_recovers_known_layer_costs() {
        let specs = space();
        let probes = plan(&specs, Depths::Fixed(1, 4));
        // Per width: 2 reference depths + 5 other attentions + 1 other FFN; width 256 also
        // one other vocabulary.
        assert_eq!(probes.len(), 2 * (2 + 5 + 1) + 1);
        let timed: Vec<(Probe, f64)> = probes.iter().map(|p| (*p, synthetic(p))).collect();
        let table = LayerTable::derive(&timed);
        for s in &specs {
            let key = LayerKey::of(s);
            let want = synthetic(&Probe::of(s, 1)) - synthetic(&Probe::of(s, 0));
            let got = table.layer_ms(&key).unwrap();
            assert!((got - want).abs() < 1e-9, "{key:?}: {got} vs {want}");
            let base = table.base[&(s.vocab_size, s.hidden_size)];
            let whole = base + s.num_layers as f64 * got;
            let truth = synthetic(&Probe::of(s, s.num_layers));
            assert!((whole - truth).abs() < 1e-9, "{whole} vs {truth}");
        }
    }

    #[test]
    fn space_depths_span_the_widths_range_within_the_byte_cap() {
        let specs = space();
        let wt = crate::model::WeightType::Q4_0;
        let probes = plan(
            &specs,
            Depths::Space {
                weights: wt,
                max_probe_bytes: u64::MAX,
            },
        );
        // The space's depths are 4, 8 and 12 at every width.
        assert_eq!((probes[0].layers, probes[1].layers), (4, 12));
        assert!(probes.iter().all(|p| p.layers == 4 || p.layers == 12));
        // A cap of 3 layers' bytes at width 512 keeps HI at 3 there and LO at 1.
        let r = probes.iter().find(|p| p.hidden == 512).unwrap();
        let cap = crate::model::weight_bytes(&Probe { layers: 3, ..*r }.spec(), wt);
        let capped = plan(
            &specs,
            Depths::Space {
                weights: wt,
                max_probe_bytes: cap,
            },
        );
        let at512: Vec<u64> = capped
            .iter()
            .filter(|p| p.hidden == 512)
            .map(|p| p.layers)
            .collect();
        assert_eq!(&at512[..2], &[1, 3]);
        assert!(at512[2..].iter().all(|&l| l == 3));
    }

    #[test]
    fn noise_larger_than_the_layers_never_gives_negative_costs() {
        let r = Probe::of(&ModelSpec::llama(512, 128, 2, 4, 2, 256), 2);
        let deeper = Probe { layers: 4, ..r };
        let other = Probe {
            intermediate: 384,
            layers: 4,
            ..r
        };
        // The deeper model measured faster than the shallow one.
        let t = LayerTable::derive(&[(r, 1.0), (deeper, 0.9), (other, 0.2)]);
        assert_eq!(t.base[&(512, 128)], 0.0);
        assert!(t.layer[&r.layer()] > 0.0);
        assert!(t.layer[&other.layer()] > 0.0);
        let combo = LayerKey {
            attention: Attn {
                heads: 2,
                kv_heads: 1,
                head_dim: 64,
            },
            ..other.layer()
        };
        assert_eq!(t.layer_ms(&combo), None);
        // A combination whose parts are noise beside the reference still costs something.
        let attn_probe = Probe {
            heads: 2,
            kv_heads: 1,
            head_dim: 64,
            layers: 4,
            ..r
        };
        let t = LayerTable::derive(&[(r, 0.1), (deeper, 10.0), (other, 0.2), (attn_probe, 0.3)]);
        let combo_ms = t.layer_ms(&combo).unwrap();
        assert!(combo_ms > 0.0, "{combo_ms}");
    }

    #[test]
    fn ffn_widths_are_priced_from_a_line_through_them() {
        let r = Probe::of(&ModelSpec::llama(8192, 256, 1, 4, 1, 512), 1);
        let widths = [512, 640, 768, 896, 1024];
        let mut probes = vec![r, Probe { layers: 4, ..r }];
        probes.extend(widths[1..].iter().map(|&f| Probe {
            intermediate: f,
            layers: 4,
            ..r
        }));
        let attn = Probe {
            heads: 8,
            kv_heads: 2,
            head_dim: 32,
            layers: 4,
            ..r
        };
        probes.push(attn);
        let layer = |p: &Probe| {
            synthetic(&Probe { layers: 1, ..*p }) - synthetic(&Probe { layers: 0, ..*p })
        };
        let key = |f: u64| LayerKey {
            intermediate: f,
            ..r.layer()
        };
        // Exact times: the line goes through every width; nothing moves.
        let exact: Vec<(Probe, f64)> = probes.iter().map(|p| (*p, synthetic(p))).collect();
        let t = LayerTable::derive(&exact);
        let fit = t.ffn_fit[&256];
        assert_eq!(fit.widths, 5);
        assert!(fit.rms_ms < 1e-9, "{fit:?}");
        for p in &probes {
            assert!((t.layer_ms(&p.layer()).unwrap() - layer(p)).abs() < 1e-9);
        }
        // One width's probe ran 8% fast (its layers 30% cheap): alone it would make FFN 768
        // cheaper than 640; through the line it is priced near its truth and the order holds.
        let fast = probes[3];
        assert_eq!(fast.intermediate, 768);
        let lost = 0.3 * fast.layers as f64 * layer(&fast);
        let noisy: Vec<(Probe, f64)> = probes
            .iter()
            .map(|p| (*p, synthetic(p) - if *p == fast { lost } else { 0.0 }))
            .collect();
        let t = LayerTable::derive(&noisy);
        let raw = (synthetic(&fast) - lost - t.base[&(8192, 256)]) / 4.0;
        let priced = t.layer_ms(&key(768)).unwrap();
        let truth = layer(&fast);
        assert!(raw < layer(&probes[2]), "the noise inverts the order alone");
        assert!(
            (priced - truth).abs() < 0.25 * (raw - truth).abs(),
            "{priced} {truth} {raw}"
        );
        assert!(t.ffn_fit[&256].rms_ms > 0.01 * truth, "{:?}", t.ffn_fit);
        let priced: Vec<f64> = widths
            .iter()
            .map(|&f| t.layer_ms(&key(f)).unwrap())
            .collect();
        assert!(priced.windows(2).all(|w| w[0] < w[1]), "{priced:?}");
        // Another attention with a fitted FFN width: its attention part plus the line's.
        let combo = LayerKey {
            intermediate: 768,
            ..attn.layer()
        };
        let want = t.layer_ms(&attn.layer()).unwrap() + priced[2] - t.layer_ms(&r.layer()).unwrap();
        assert!((t.layer_ms(&combo).unwrap() - want).abs() < 1e-12);
        // Two FFN widths determine their line: each probe is taken as timed.
        let two: Vec<(Probe, f64)> = noisy
            .iter()
            .filter(|(p, _)| p.intermediate == 512 || *p == fast)
            .copied()
            .collect();
        let t = LayerTable::derive(&two);
        assert!(t.ffn_fit.is_empty());
        assert!((t.layer_ms(&key(768)).unwrap() - raw).abs() < 1e-9);
    }

    #[test]
    fn without_two_depths_nothing_is_derived() {
        let p = Probe::of(&ModelSpec::llama(1000, 64, 2, 4, 2, 128), 2);
        let t = LayerTable::derive(&[(p, 3.0)]);
        assert!(t.layer.is_empty() && t.base.is_empty());
        assert_eq!(t.layer_ms(&p.layer()), None);
    }

    pub(crate) fn fingerprint() -> LlamaFingerprint {
        LlamaFingerprint {
            build_commit: "0c1e57098".into(),
            build_number: 0,
            backends: "CPU".into(),
            cpu_info: "Test CPU".into(),
            gpu_info: String::new(),
            threads: 2,
            type_k: "f16".into(),
            type_v: "f16".into(),
            flash_attn: "auto".into(),
            n_batch: 2048,
            n_ubatch: 512,
            weights: DType::Q4_0,
            os: "linux-x86_64".into(),
            cores: 2,
            cpu: CpuId::default(),
        }
    }

    pub(crate) fn profile() -> LlamaProfile {
        let specs = space();
        let probes = plan(&specs, Depths::Fixed(1, 4));
        let mut entries = Vec::new();
        for phase in [
            Phase::Prefill { tokens: 64 },
            Phase::Decode { context: 256 },
        ] {
            for p in &probes {
                let ms = synthetic(p);
                entries.push(ProbeEntry {
                    model: *p,
                    phase,
                    rounds_ms: vec![ms, ms * 1.01, ms * 0.99],
                    min_ms: ms * 0.98,
                    max_ms: ms * 1.02,
                    params: p.spec().total_params(),
                    peak_rss_bytes: Some(p.spec().weight_bytes(DType::Q4_0) + (8 << 20)),
                    loaded_rounds: 0,
                    stale: false,
                });
            }
        }
        LlamaProfile {
            format_version: FORMAT_VERSION,
            engine: ENGINE.into(),
            name: "test".into(),
            fingerprint: fingerprint(),
            provenance: Provenance {
                tailor_version: "0.1.0".into(),
                created: "2026-12-02T06:00:00Z".into(),
                updated: "2026-12-02T06:00:00Z".into(),
            },
            method: Method::default(),
            probes: entries,
        }
    }

    #[test]
    fn profile_round_trips_and_is_told_from_a_burn_profile() {
        let p = profile();
        let text = p.to_toml().unwrap();
        assert!(is_llama_profile(&text));
        let back = LlamaProfile::parse(Path::new("p.toml"), &text).unwrap();
        assert_eq!(back, p);
        assert_eq!(back.to_toml().unwrap(), text);
        assert_eq!(back.phases().len(), 2);
    }

    #[test]
    fn bad_files_name_the_key() {
        let text = profile().to_toml().unwrap();
        let e = LlamaProfile::parse(
            Path::new("p.toml"),
            &text.replacen("format_version = 1", "format_version = 9", 1),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("p.toml:1: `format_version`"), "{e}");
        let e = LlamaProfile::parse(
            Path::new("p.toml"),
            &text.replacen("min_ms = ", "min_ms = -", 1),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`probes`: probe 1"), "{e}");
        let e = LlamaProfile::parse(Path::new("p.toml"), &text.replacen("threads", "thread", 1))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("p.toml:"), "{e}");
    }

    #[test]
    fn probes_far_shallower_than_the_models_are_named() {
        let spec = |hidden, layers| {
            let mut s =
                ModelSpec::llama(1024, hidden, layers, hidden / 32, hidden / 32, 2 * hidden);
            s.tie_embeddings = true;
            s
        };
        let specs = [spec(64, 16), spec(64, 24), spec(128, 4)];
        let probes = plan(specs.iter(), Depths::Fixed(1, 2));
        assert_eq!(
            shallow_widths(specs.iter(), &probes),
            [ShallowWidth {
                hidden: 64,
                deepest_probe: 2,
                fewest_layers: 16
            }]
        );
        let deep = plan(specs.iter(), Depths::Fixed(2, 4));
        assert!(shallow_widths(specs.iter(), &deep).is_empty());
    }

    #[test]
    fn another_setup_is_refused_with_the_differences() {
        let p = profile();
        let mut other = fingerprint();
        other.weights = DType::F32;
        other.build_commit = "abc".into();
        let e = p.check_fingerprint(&other).unwrap_err().to_string();
        assert!(
            e.contains("build_commit `0c1e57098` vs `abc`")
                && e.contains("weights `q4_0` vs `f32`"),
            "{e}"
        );
        other = fingerprint();
        other.cores = 64;
        assert!(p.check_fingerprint(&other).is_ok());
    }
}
