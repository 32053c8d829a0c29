//! Mixed stacks in a llama.cpp profile: the probes of a spec with a [`tailor_spec::Stack`]
//! and the differencing of their times into per-mixer costs ([`StackTable`]).
//!
//! A mixed model is no longer a base plus N copies of one layer. Within one llama.cpp
//! architecture, width and phase, tailor models a whole pass as additive:
//!
//! `time = base(vocab) + sum over layers of mixer(layer) + layers x ffn(width)`
//!
//! where `mixer` is one layer with the width's reference FFN (global attention of one
//! shape, sliding-window attention of a shape and window, a short convolution of a kernel,
//! a Gated DeltaNet of a shape) and `ffn(width)` what another FFN width adds to a layer
//! (0 for the reference). Every probe of a mixed stack is `layers - rest_layers` global
//! attention layers and `rest_layers` of one other mixer (its `rest`), all with one FFN
//! width; each probe is one row of a linear system in those unknowns, solved by least
//! squares per `(architecture, width)` ([`StackTable::derive`]); the decode contexts
//! together, with one unknown for all of them for each mixer whose decode step is flat in
//! the context (a short convolution, a Gated DeltaNet: [`StackTable::derive_joint`]). The
//! plan ([`plan`]) picks
//! probes that determine every unknown a set of specs needs: for each width, the reference
//! attention at two depths (the base and its layer), each other attention shape, FFN width
//! and vocabulary once, and each other mixer once beside one attention layer. `qwen35`
//! and `lfm2` have no model of attention layers only (Qwen3.5's writer needs a linear
//! layer, llama.cpp's `lfm2` a conv layer), so there the reference is a mix: one attention
//! layer with the rest of the width's commonest other mixer at two depths, and one layer of
//! that mixer with the rest attention (so the two mixers' difference is measured over many
//! layers, not one).
//! Where probes outnumber the unknowns (a profile resumed for several spaces), the
//! misfit of the least-squares solution says how additive the engine is
//! ([`StackTable::misfit`]); whole-model validation checks the same on real stacks.

use super::*;
use crate::model::{Unsupported, WeightType};
use tailor_spec::Activation;
use tailor_spec::layers::{LayerKind, Layout, Mixer, MixerKind, Stack};

/// The mixer of a probe's last `rest_layers` layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "mixer", rename_all = "snake_case", deny_unknown_fields)]
pub enum Rest {
    /// Sliding-window attention of the probe's attention shape (`gemma3`).
    Sliding { window: u64 },
    /// A gated short convolution (`lfm2`).
    ShortConv { kernel: u64 },
    /// A Gated DeltaNet with one head width for keys and values (`qwen35`).
    LinearAttention {
        key_heads: u64,
        value_heads: u64,
        head_dim: u64,
        conv_kernel: u64,
    },
}

impl Rest {
    /// A short file-name-safe label.
    pub fn label(&self) -> String {
        match self {
            Rest::Sliding { window } => format!("swa{window}"),
            Rest::ShortConv { kernel } => format!("conv{kernel}"),
            Rest::LinearAttention {
                key_heads,
                value_heads,
                head_dim,
                conv_kernel,
            } => format!("gdn{key_heads}x{value_heads}x{head_dim}k{conv_kernel}"),
        }
    }
}

impl fmt::Display for Rest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rest::Sliding { window } => write!(f, "sliding window {window}"),
            Rest::ShortConv { kernel } => write!(f, "short conv kernel {kernel}"),
            Rest::LinearAttention {
                key_heads,
                value_heads,
                head_dim,
                conv_kernel,
            } => write!(
                f,
                "linear attention {key_heads}/{value_heads}x{head_dim} conv {conv_kernel}"
            ),
        }
    }
}

/// One layer's mixer as the table prices it (at a width it is keyed with).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MixerKey {
    Attention(Attn),
    Sliding(Attn, u64),
    ShortConv {
        kernel: u64,
    },
    LinearAttention {
        key_heads: u64,
        value_heads: u64,
        head_dim: u64,
        conv_kernel: u64,
    },
}

impl MixerKey {
    /// The key of a spec's mixer; `None` for a layer without one.
    pub fn of(m: &Mixer) -> Option<Self> {
        Some(match *m {
            Mixer::Attention(a) => {
                let attn = Attn {
                    heads: a.heads,
                    kv_heads: a.kv_heads,
                    head_dim: a.head_dim,
                };
                match a.window {
                    Some(w) => MixerKey::Sliding(attn, w),
                    None => MixerKey::Attention(attn),
                }
            }
            Mixer::ShortConv(c) => MixerKey::ShortConv { kernel: c.kernel },
            Mixer::LinearAttention(l) => MixerKey::LinearAttention {
                key_heads: l.key_heads,
                value_heads: l.value_heads,
                head_dim: l.key_head_dim,
                conv_kernel: l.conv_kernel,
            },
            Mixer::None => return None,
        })
    }

    /// The key of a probe's rest layers, whose attention shape is `attn`.
    pub fn of_rest(rest: Rest, attn: Attn) -> Self {
        match rest {
            Rest::Sliding { window } => MixerKey::Sliding(attn, window),
            Rest::ShortConv { kernel } => MixerKey::ShortConv { kernel },
            Rest::LinearAttention {
                key_heads,
                value_heads,
                head_dim,
                conv_kernel,
            } => MixerKey::LinearAttention {
                key_heads,
                value_heads,
                head_dim,
                conv_kernel,
            },
        }
    }

    /// The probe's `rest` for this mixer and the attention shape its probe needs (a
    /// sliding window's own; `None` for a mixer any attention can go beside); `None` for
    /// global attention.
    fn rest(self) -> Option<(Rest, Option<Attn>)> {
        match self {
            MixerKey::Attention(_) => None,
            MixerKey::Sliding(a, window) => Some((Rest::Sliding { window }, Some(a))),
            MixerKey::ShortConv { kernel } => Some((Rest::ShortConv { kernel }, None)),
            MixerKey::LinearAttention {
                key_heads,
                value_heads,
                head_dim,
                conv_kernel,
            } => Some((
                Rest::LinearAttention {
                    key_heads,
                    value_heads,
                    head_dim,
                    conv_kernel,
                },
                None,
            )),
        }
    }

    /// Whether a decode step of the mixer costs the same at every context: a short
    /// convolution and a Gated DeltaNet read a state of constant size (attention reads its
    /// cache, a sliding window's up to the window).
    pub fn is_flat(&self) -> bool {
        matches!(
            self,
            MixerKey::ShortConv { .. } | MixerKey::LinearAttention { .. }
        )
    }

    /// Whether the mixer is attention of some kind (global, sliding or linear), for the
    /// breakdown; a short convolution is not.
    pub fn is_attention(&self) -> bool {
        !matches!(self, MixerKey::ShortConv { .. })
    }

    /// Elements of the mixer's weight matrices at width `hidden` (what a decode step
    /// reads), for apportioning a layer's time in the breakdown.
    pub fn matrix_elements(&self, hidden: u64) -> u64 {
        match *self {
            MixerKey::Attention(a) | MixerKey::Sliding(a, _) => {
                2 * hidden * a.heads * a.head_dim + 2 * hidden * a.kv_heads * a.head_dim
            }
            MixerKey::ShortConv { .. } => 4 * hidden * hidden,
            MixerKey::LinearAttention {
                key_heads,
                value_heads,
                head_dim,
                ..
            } => {
                let (k, v) = (key_heads * head_dim, value_heads * head_dim);
                hidden * (2 * k + v) + 2 * hidden * v + 2 * hidden * value_heads
            }
        }
    }
}

impl fmt::Display for MixerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MixerKey::Attention(a) => {
                write!(f, "attention {}/{}x{}", a.heads, a.kv_heads, a.head_dim)
            }
            MixerKey::Sliding(a, w) => write!(
                f,
                "sliding attention {}/{}x{} window {w}",
                a.heads, a.kv_heads, a.head_dim
            ),
            other => match other.rest() {
                Some((r, _)) => write!(f, "{r}"),
                None => Ok(()),
            },
        }
    }
}

/// What a llama.cpp profile prices of a spec with a stack: its architecture, vocabulary,
/// width, FFN width and how many layers of each mixer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackShape {
    pub arch: Arch,
    pub vocab: u64,
    pub hidden: u64,
    pub ffn: u64,
    pub mixers: BTreeMap<MixerKey, u64>,
}

impl StackShape {
    /// The shape of `spec` in the architecture that runs it in `weights`, or why none does.
    pub fn of(spec: &ModelSpec, weights: WeightType) -> Result<Self, Unsupported> {
        let (arch, _) = crate::arch::arch_of(spec, weights)?;
        let mut mixers = BTreeMap::new();
        let mut ffn = 0;
        for l in spec.layers() {
            let key = MixerKey::of(&l.mixer)
                .ok_or_else(|| Unsupported("a layer without a mixer".into()))?;
            *mixers.entry(key).or_default() += 1;
            ffn = l.ffn.map_or(0, |f| f.width);
        }
        Ok(StackShape {
            arch,
            vocab: spec.vocab_size,
            hidden: spec.hidden_size,
            ffn,
            mixers,
        })
    }

    /// The shape of a mixed-stack probe (`None` for a dense one).
    pub fn of_probe(p: &Probe) -> Option<Self> {
        let arch = p.arch?;
        let attn = Attn {
            heads: p.heads,
            kv_heads: p.kv_heads,
            head_dim: p.head_dim,
        };
        let mut mixers = BTreeMap::new();
        if p.layers > p.rest_layers {
            mixers.insert(MixerKey::Attention(attn), p.layers - p.rest_layers);
        }
        if let Some(r) = p.rest
            && p.rest_layers > 0
        {
            *mixers.entry(MixerKey::of_rest(r, attn)).or_default() += p.rest_layers;
        }
        Some(StackShape {
            arch,
            vocab: p.vocab,
            hidden: p.hidden,
            ffn: p.intermediate,
            mixers,
        })
    }

    pub fn layers(&self) -> u64 {
        self.mixers.values().sum()
    }
}

/// The spec of a mixed-stack probe: `arch`'s activation, q/k norms and gates, tied
/// embeddings, global attention in the first `layers - rest_layers` layers and `rest` in
/// the others.
pub(super) fn probe_spec(p: &Probe, arch: Arch) -> ModelSpec {
    let mut s = ModelSpec::llama(
        p.vocab,
        p.hidden,
        p.layers,
        p.heads,
        p.kv_heads,
        p.intermediate,
    );
    if p.heads * p.head_dim != p.hidden {
        s.head_dim = Some(p.head_dim);
    }
    s.tie_embeddings = true;
    if arch == Arch::Gemma3 {
        s.activation = Activation::GeluTanh;
    }
    let layout = match arch {
        Arch::Lfm2 => Layout::Lfm2,
        Arch::Gemma3 => Layout::Gemma3,
        _ => Layout::Llama,
    };
    let attn = LayerKind {
        mixer: Some(MixerKind::Attention),
        qk_norm: Some(arch != Arch::Smollm3),
        output_gate: Some(arch == Arch::Qwen35),
        ..LayerKind::default()
    };
    let mut kinds = BTreeMap::new();
    let mut at = BTreeMap::new();
    let pattern = match p.rest.filter(|_| p.rest_layers > 0) {
        None => "attn",
        Some(r) => {
            let kind = match r {
                Rest::Sliding { window } => LayerKind {
                    window: Some(window),
                    ..attn.clone()
                },
                Rest::ShortConv { kernel } => LayerKind {
                    mixer: Some(MixerKind::ShortConv),
                    kernel: Some(kernel),
                    ..LayerKind::default()
                },
                Rest::LinearAttention {
                    key_heads,
                    value_heads,
                    head_dim,
                    conv_kernel,
                } => LayerKind {
                    mixer: Some(MixerKind::LinearAttention),
                    key_heads: Some(key_heads),
                    value_heads: Some(value_heads),
                    key_head_dim: Some(head_dim),
                    value_head_dim: Some(head_dim),
                    conv_kernel: Some(conv_kernel),
                    ..LayerKind::default()
                },
            };
            kinds.insert("rest".to_string(), kind);
            at.insert(
                "attn".to_string(),
                (0..p.layers.saturating_sub(p.rest_layers)).collect(),
            );
            "rest"
        }
    };
    kinds.insert("attn".to_string(), attn);
    s.stack = Some(Stack {
        layout,
        pattern: vec![pattern.to_string()],
        at,
        kinds,
    });
    s
}

/// Per-mixer costs of one phase and architecture, from mixed-stack probe times.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StackTable {
    /// Everything but the layers, ms, per `(vocab, hidden)`.
    pub base: BTreeMap<(u64, u64), f64>,
    /// One layer of the mixer with the width's reference FFN, ms, per `(hidden, mixer)`.
    pub mixer: BTreeMap<(u64, MixerKey), f64>,
    /// What an FFN width adds to one layer over the width's reference FFN, ms, per
    /// `(hidden, ffn width)` (0 for the reference).
    pub ffn: BTreeMap<(u64, u64), f64>,
    /// Per width: the largest `|fitted - measured| / measured` over its probes (0 where
    /// the probes determine the unknowns exactly: no check of additivity).
    pub misfit: BTreeMap<u64, f64>,
    /// Per width with three or more FFN widths: the line `ffn` holds for them (solved one
    /// by one, then fitted: see [`FfnFit`]).
    pub ffn_fit: BTreeMap<u64, FfnFit>,
}

/// The least-squares solution of `rows` (coefficients, value) in `n` unknowns, or `None`
/// when the rows leave some unknown undetermined.
fn least_squares(rows: &[(Vec<f64>, f64)], n: usize) -> Option<Vec<f64>> {
    // The normal equations, by Gauss-Jordan elimination with partial pivoting: the systems
    // are small (a few dozen unknowns) with small integer coefficients.
    let mut a = vec![vec![0.0; n + 1]; n];
    for (x, y) in rows {
        for i in 0..n {
            for j in 0..n {
                a[i][j] += x[i] * x[j];
            }
            a[i][n] += x[i] * y;
        }
    }
    let scale = (0..n).map(|i| a[i][i]).fold(1.0_f64, f64::max);
    for c in 0..n {
        let p = (c..n).max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))?;
        if a[p][c].abs() <= 1e-9 * scale {
            return None;
        }
        a.swap(c, p);
        let pivot = a[c].clone();
        for (r, row) in a.iter_mut().enumerate() {
            let f = row[c] / pivot[c];
            if r != c && f != 0.0 {
                for (e, p) in row[c..].iter_mut().zip(&pivot[c..]) {
                    *e -= f * p;
                }
            }
        }
    }
    Some((0..n).map(|i| a[i][n] / a[i][i]).collect())
}

impl StackTable {
    /// From the times (ms) of one phase's probes of one architecture: per width, the least
    /// squares of the additive model (module docs) over its probes. A width whose probes
    /// leave an unknown undetermined (an interrupted profile) yields nothing.
    pub fn derive(timed: &[(Probe, f64)]) -> Self {
        Self::derive_joint(&[timed.to_vec()], |_| false)
            .pop()
            .unwrap_or_default()
    }

    /// One table per group of probe times (the decode contexts of one architecture), solved
    /// together per width: the mixers `flat` selects cost the same in every group (one
    /// unknown each: a short convolution's or a DeltaNet's decode step reads a state of
    /// constant size, whatever the context), every other unknown is the group's own
    /// (attention grows with the context; the base and FFN widths keep their own too). With
    /// one group this is [`StackTable::derive`]. Differencing each context alone gave
    /// Qwen3.5's DeltaNet layer 0.54, 0.94 and 0.00 ms at 512, 4,096 and 16,384 tokens from
    /// three shallow probes a context (noise, taken into 18 layers); pooled, each flat
    /// mixer's cost rests on every context's probes.
    pub fn derive_joint(
        groups: &[Vec<(Probe, f64)>],
        flat: impl Fn(&MixerKey) -> bool,
    ) -> Vec<Self> {
        let mut tables = vec![StackTable::default(); groups.len()];
        // Per width: each group's probes (groups without probes of the width take no part).
        let mut widths: BTreeMap<u64, Vec<(usize, StackShape, f64)>> = BTreeMap::new();
        let mut timed_at: BTreeMap<(u64, usize), Vec<(Probe, f64)>> = BTreeMap::new();
        for (g, timed) in groups.iter().enumerate() {
            for (p, ms) in timed {
                if let Some(s) = StackShape::of_probe(p) {
                    timed_at.entry((s.hidden, g)).or_default().push((*p, *ms));
                    widths.entry(s.hidden).or_default().push((g, s, *ms));
                }
            }
        }
        for (h, probes) in widths {
            // The reference FFN: the one most probes have (then the narrowest).
            let mut ffns: BTreeMap<u64, u64> = BTreeMap::new();
            for (_, s, _) in &probes {
                *ffns.entry(s.ffn).or_default() += 1;
            }
            let Some(f0) = ffns
                .iter()
                .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                .map(|(f, _)| *f)
            else {
                continue;
            };
            let present: BTreeSet<usize> = probes.iter().map(|(g, _, _)| *g).collect();
            let vocabs: BTreeSet<u64> = probes.iter().map(|(_, s, _)| s.vocab).collect();
            let mixers: BTreeSet<MixerKey> = probes
                .iter()
                .flat_map(|(_, s, _)| s.mixers.keys().copied())
                .collect();
            let (shared, own): (Vec<MixerKey>, Vec<MixerKey>) =
                mixers.into_iter().partition(|m| flat(m));
            let others: Vec<u64> = ffns.keys().copied().filter(|f| *f != f0).collect();
            // Columns: the shared mixers, then per present group its vocabularies, own
            // mixers and other FFN widths.
            let per = vocabs.len() + own.len() + others.len();
            let slot = |g: usize| present.iter().position(|x| *x == g);
            let n = shared.len() + present.len() * per;
            let group_col = |g: usize, i: usize| slot(g).map(|k| shared.len() + k * per + i);
            let row = |g: usize, s: &StackShape| {
                let mut x = vec![0.0; n];
                if let Some(c) = vocabs.iter().position(|v| *v == s.vocab) {
                    x[group_col(g, c).expect("present")] = 1.0;
                }
                for (m, count) in &s.mixers {
                    let c = match shared.iter().position(|x| x == m) {
                        Some(i) => Some(i),
                        None => own
                            .iter()
                            .position(|x| x == m)
                            .and_then(|i| group_col(g, vocabs.len() + i)),
                    };
                    if let Some(c) = c {
                        x[c] += *count as f64;
                    }
                }
                if let Some(i) = others.iter().position(|x| *x == s.ffn) {
                    x[group_col(g, vocabs.len() + own.len() + i).expect("present")] =
                        s.layers() as f64;
                }
                x
            };
            let rows: Vec<(usize, Vec<f64>, f64)> = probes
                .iter()
                .map(|(g, s, ms)| (*g, row(*g, s), *ms))
                .collect();
            let system: Vec<(Vec<f64>, f64)> =
                rows.iter().map(|(_, x, y)| (x.clone(), *y)).collect();
            let Some(sol) = least_squares(&system, n) else {
                // The groups' probes differ (a vocabulary or FFN width timed at one context
                // only): each group alone, as far as its own probes go.
                if groups.len() > 1 {
                    for &g in &present {
                        let alone = Self::derive(&timed_at[&(h, g)]);
                        let t = &mut tables[g];
                        t.base.extend(alone.base);
                        t.mixer.extend(alone.mixer);
                        t.ffn.extend(alone.ffn);
                        t.misfit.extend(alone.misfit);
                        t.ffn_fit.extend(alone.ffn_fit);
                    }
                }
                continue;
            };
            for &g in &present {
                let t = &mut tables[g];
                let col = |i: usize| sol[group_col(g, i).expect("present")];
                let own_rows: Vec<&(usize, Vec<f64>, f64)> =
                    rows.iter().filter(|(rg, _, _)| *rg == g).collect();
                // A group's unknowns: its own columns plus the shared ones it uses.
                let unknowns = per
                    + shared
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| own_rows.iter().any(|(_, x, _)| x[*i] != 0.0))
                        .count();
                let misfit = if own_rows.len() > unknowns || !shared.is_empty() {
                    own_rows
                        .iter()
                        .map(|(_, x, y)| {
                            let fit: f64 = x.iter().zip(&sol).map(|(a, b)| a * b).sum();
                            (fit - y).abs() / y
                        })
                        .fold(0.0, f64::max)
                } else {
                    0.0
                };
                for (i, v) in vocabs.iter().enumerate() {
                    // A base below zero is noise larger than the base: nothing.
                    t.base.insert((*v, h), col(i).max(0.0));
                }
                for (i, m) in shared.iter().enumerate() {
                    t.mixer.insert((h, *m), sol[i]);
                }
                for (i, m) in own.iter().enumerate() {
                    t.mixer.insert((h, *m), col(vocabs.len() + i));
                }
                t.ffn.insert((h, f0), 0.0);
                let solved: Vec<(f64, f64)> = std::iter::once((f0 as f64, 0.0))
                    .chain(
                        others
                            .iter()
                            .enumerate()
                            .map(|(i, f)| (*f as f64, col(vocabs.len() + own.len() + i))),
                    )
                    .collect();
                let line = FfnFit::of(&solved);
                for (i, f) in others.iter().enumerate() {
                    let added = match &line {
                        Some(l) => l.added_ms(*f, f0),
                        None => col(vocabs.len() + own.len() + i),
                    };
                    t.ffn.insert((h, *f), added);
                }
                if let Some(l) = line {
                    t.ffn_fit.insert(h, l);
                }
                t.misfit.insert(h, misfit);
            }
        }
        tables
    }

    /// One layer of `mixer` with an FFN of `ffn` at width `hidden`, ms (never below 0).
    pub fn layer_ms(&self, hidden: u64, mixer: &MixerKey, ffn: u64) -> Option<f64> {
        let m = self.mixer.get(&(hidden, *mixer))?;
        let f = self.ffn.get(&(hidden, ffn))?;
        Some((m + f).max(0.0))
    }

    pub fn base_ms(&self, vocab: u64, hidden: u64) -> Option<f64> {
        self.base.get(&(vocab, hidden)).copied()
    }

    /// What `shape` needs that the table lacks, in words (empty when it prices it).
    pub fn missing(&self, shape: &StackShape) -> Vec<String> {
        let mut out = Vec::new();
        if self.base_ms(shape.vocab, shape.hidden).is_none() {
            out.push(format!(
                "`{}` base for vocabulary {} at width {}",
                shape.arch.name(),
                shape.vocab,
                shape.hidden
            ));
        }
        for m in shape.mixers.keys() {
            if self.layer_ms(shape.hidden, m, shape.ffn).is_none() {
                out.push(format!(
                    "`{}` layer of {m} with FFN {} at width {}",
                    shape.arch.name(),
                    shape.ffn,
                    shape.hidden
                ));
            }
        }
        out
    }
}

/// The mixed-stack probes that let [`StackTable`] price every spec of `specs` (module
/// docs); specs no architecture runs are left out.
pub fn plan(specs: Vec<&ModelSpec>, depths: Depths) -> Vec<Probe> {
    #[derive(Default)]
    struct Width {
        attn: BTreeMap<Attn, u64>,
        rests: BTreeMap<MixerKey, u64>,
        ffn: BTreeMap<u64, u64>,
        vocab: BTreeMap<u64, u64>,
        fewest: u64,
        most: u64,
    }
    let weights = match depths {
        Depths::Space { weights, .. } => weights,
        Depths::Fixed(..) => WeightType::F32,
    };
    let mut widths: BTreeMap<(Arch, u64), Width> = BTreeMap::new();
    for spec in specs {
        let Ok(shape) = StackShape::of(spec, weights) else {
            continue;
        };
        let w = widths.entry((shape.arch, shape.hidden)).or_default();
        for m in shape.mixers.keys() {
            match m {
                MixerKey::Attention(a) => *w.attn.entry(*a).or_default() += 1,
                other => {
                    *w.rests.entry(*other).or_default() += 1;
                    if let MixerKey::Sliding(a, _) = other {
                        w.attn.entry(*a).or_default();
                    }
                }
            }
        }
        *w.ffn.entry(shape.ffn).or_default() += 1;
        *w.vocab.entry(shape.vocab).or_default() += 1;
        let layers = shape.layers();
        w.fewest = if w.most == 0 {
            layers
        } else {
            w.fewest.min(layers)
        };
        w.most = w.most.max(layers);
    }
    fn commonest<K: Ord + Copy>(m: &BTreeMap<K, u64>) -> Option<K> {
        m.iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(k, _)| *k)
    }
    let mut out = Vec::new();
    for ((arch, h), w) in &widths {
        let (Some(a0), Some(f0), Some(v0)) =
            (commonest(&w.attn), commonest(&w.ffn), commonest(&w.vocab))
        else {
            continue;
        };
        let probe = |vocab, a: Attn, intermediate, layers, rest: Option<(Rest, u64)>| Probe {
            vocab,
            hidden: *h,
            heads: a.heads,
            kv_heads: a.kv_heads,
            head_dim: a.head_dim,
            intermediate,
            layers,
            arch: Some(*arch),
            rest: rest.map(|r| r.0),
            rest_layers: rest.map_or(0, |r| r.1),
        };
        let (vl, lo, hi) =
            super::plan::layer_vocab(depths, &probe(v0, a0, f0, 1, None), w.fewest, w.most);
        // The shallowest probe the budget allows with vocabulary `v` (another of the
        // width's, or its own where the layers are probed with LAYER_VOCAB).
        let lo_of = |v| depths.of(&probe(v, a0, f0, 1, None), w.fewest, w.most).0;
        if matches!(arch, Arch::Qwen35 | Arch::Lfm2) {
            // No `qwen35` or `lfm2` model is attention only (llama.cpp's `lfm2` aborts
            // without a conv layer): the reference is one attention layer beside r0 at two
            // depths, and one r0 layer beside attention at the deeper one. The two deep
            // probes differ in `hi - 2` layers, so their difference, what an attention
            // layer costs over an r0 one, carries the noise of two runs over `hi - 2`
            // layers, not over one. Each other attention shape likewise fills all but one
            // layer.
            let Some(r0) = commonest(&w.rests).and_then(|m| m.rest()) else {
                continue;
            };
            let r0 = r0.0;
            let lo = lo.max(2);
            let hi = hi.max(lo + 1).max(4);
            out.push(probe(vl, a0, f0, lo, Some((r0, lo - 1))));
            out.push(probe(vl, a0, f0, hi, Some((r0, hi - 1))));
            out.push(probe(vl, a0, f0, hi, Some((r0, 1))));
            out.extend(
                w.attn
                    .keys()
                    .filter(|a| **a != a0)
                    .map(|a| probe(vl, *a, f0, hi, Some((r0, 1)))),
            );
            out.extend(
                w.rests
                    .keys()
                    .filter_map(|m| m.rest())
                    .filter(|(r, _)| *r != r0)
                    .map(|(r, _)| probe(vl, a0, f0, hi, Some((r, hi - 1)))),
            );
            out.extend(
                w.ffn
                    .keys()
                    .filter(|f| **f != f0)
                    .map(|f| probe(vl, a0, *f, hi, Some((r0, hi - 1)))),
            );
            out.extend(w.vocab.keys().filter(|v| **v != vl).map(|v| {
                let lo = if vl == v0 { lo } else { lo_of(*v).max(2) };
                probe(*v, a0, f0, lo, Some((r0, lo - 1)))
            }));
            continue;
        }
        out.push(probe(vl, a0, f0, lo, None));
        out.push(probe(vl, a0, f0, hi, None));
        out.extend(
            w.attn
                .keys()
                .filter(|a| **a != a0)
                .map(|a| probe(vl, *a, f0, hi, None)),
        );
        out.extend(
            w.ffn
                .keys()
                .filter(|f| **f != f0)
                .map(|f| probe(vl, a0, *f, hi, None)),
        );
        out.extend(
            w.vocab
                .keys()
                .filter(|v| **v != vl)
                .map(|v| probe(*v, a0, f0, if vl == v0 { lo } else { lo_of(*v) }, None)),
        );
        out.extend(
            w.rests
                .keys()
                .filter_map(|m| m.rest())
                .map(|(r, a)| probe(vl, a.unwrap_or(a0), f0, hi, Some((r, hi - 1)))),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tailor_spec::layers::LayerKind;

    /// A made-up engine where everything adds: a base per (vocab, hidden), a cost per
    /// mixer and per FFN width.
    fn synthetic(s: &StackShape) -> f64 {
        let base = 0.5 + s.vocab as f64 * s.hidden as f64 * 1e-7;
        let mixer = |m: &MixerKey| match m {
            MixerKey::Attention(a) => 0.01 * a.heads as f64 + 0.03 * a.kv_heads as f64 + 0.1,
            MixerKey::Sliding(a, w) => 0.01 * a.heads as f64 + 1e-4 * *w as f64 + 0.05,
            MixerKey::ShortConv { kernel } => 0.02 + 0.001 * *kernel as f64,
            MixerKey::LinearAttention { value_heads, .. } => 0.04 + 0.002 * *value_heads as f64,
        };
        let ffn = 2e-4 * s.ffn as f64;
        base + s
            .mixers
            .iter()
            .map(|(m, n)| *n as f64 * (mixer(m) + ffn + s.hidden as f64 * 1e-5))
            .sum::<f64>()
    }

    /// A whole shape as the table prices it: its base and each layer's cost.
    fn priced(table: &StackTable, shape: &StackShape) -> f64 {
        table.base_ms(shape.vocab, shape.hidden).unwrap()
            + (shape.mixers.iter())
                .map(|(m, n)| *n as f64 * table.layer_ms(shape.hidden, m, shape.ffn).unwrap())
                .sum::<f64>()
    }

    fn stacked(arch: &str, hidden: u64, layers: u64, heads: u64, kv: u64, ffn: u64) -> ModelSpec {
        let mut s = ModelSpec::llama(4096, hidden, layers, heads, kv, ffn);
        s.tie_embeddings = true;
        let attn = LayerKind {
            mixer: Some(MixerKind::Attention),
            qk_norm: Some(true),
            output_gate: Some(arch == "qwen35"),
            ..LayerKind::default()
        };
        let (layout, local) = match arch {
            "lfm2" => (
                Layout::Lfm2,
                LayerKind {
                    mixer: Some(MixerKind::ShortConv),
                    kernel: Some(3),
                    ..LayerKind::default()
                },
            ),
            "gemma3" => (
                Layout::Gemma3,
                LayerKind {
                    window: Some(512),
                    ..attn.clone()
                },
            ),
            _ => (
                Layout::Llama,
                LayerKind {
                    mixer: Some(MixerKind::LinearAttention),
                    key_heads: Some(2),
                    value_heads: Some(4),
                    key_head_dim: Some(64),
                    value_head_dim: Some(64),
                    conv_kernel: Some(4),
                    ..LayerKind::default()
                },
            ),
        };
        if arch == "gemma3" {
            s.activation = Activation::GeluTanh;
        }
        s.stack = Some(Stack {
            layout,
            pattern: vec!["local".into(), "local".into(), "global".into()],
            at: BTreeMap::new(),
            kinds: [("local".into(), local), ("global".into(), attn)]
                .into_iter()
                .collect(),
        });
        s.stack.as_ref().unwrap().validate(&s).unwrap();
        s
    }

    fn space(arch: &str) -> Vec<ModelSpec> {
        let mut specs = Vec::new();
        for h in [256, 512] {
            for kv in [2, 4] {
                for f in [2 * h, 3 * h] {
                    for l in [6, 9, 12] {
                        specs.push(stacked(arch, h, l, h / 64, kv, f));
                    }
                }
            }
        }
        specs
    }

    #[test]
    fn differencing_recovers_known_mixer_costs_in_every_architecture() {
        for arch in ["lfm2", "gemma3", "qwen35"] {
            let specs = space(arch);
            let probes = plan(specs.iter().collect(), Depths::Fixed(2, 6));
            // Per width: a reference at two depths (three probes for qwen35), one other
            // attention, one other FFN and one other mixer (none left for qwen35, whose
            // reference holds its only linear shape).
            let per_width = match arch {
                "gemma3" => 6, // a sliding window per attention shape
                _ => 5,
            };
            assert_eq!(probes.len(), 2 * per_width, "{arch}: {probes:#?}");
            for p in &probes {
                // Every probe is a file the architecture's writer accepts.
                crate::arch::header(&p.spec(), WeightType::F32, "probe").unwrap();
                assert_eq!(StackShape::of_probe(p).unwrap().layers(), p.layers);
                assert_eq!(
                    StackShape::of(&p.spec(), WeightType::F32).unwrap(),
                    StackShape::of_probe(p).unwrap(),
                    "{arch}: {p}"
                );
            }
            let timed: Vec<(Probe, f64)> = probes
                .iter()
                .map(|p| (*p, synthetic(&StackShape::of_probe(p).unwrap())))
                .collect();
            let table = StackTable::derive(&timed);
            for s in &specs {
                let shape = StackShape::of(s, WeightType::F32).unwrap();
                assert!(table.missing(&shape).is_empty(), "{arch}");
                let whole = priced(&table, &shape);
                let truth = synthetic(&shape);
                assert!((whole - truth).abs() < 1e-9, "{arch}: {whole} vs {truth}");
            }
            assert!(table.misfit.values().all(|m| *m == 0.0));
        }
    }

    #[test]
    fn three_or_more_ffn_widths_are_priced_from_their_line() {
        let specs: Vec<ModelSpec> = [512, 768, 1024, 1280]
            .into_iter()
            .flat_map(|f| [6, 12].map(|l| stacked("lfm2", 256, l, 4, 2, f)))
            .collect();
        let probes = plan(specs.iter().collect(), Depths::Fixed(2, 6));
        let shape = |p: &Probe| StackShape::of_probe(p).unwrap();
        let exact: Vec<(Probe, f64)> = probes.iter().map(|p| (*p, synthetic(&shape(p)))).collect();
        let t = StackTable::derive(&exact);
        let line = t.ffn_fit[&256];
        assert_eq!(line.widths, 4);
        assert!(
            (line.ms_per_unit - 2e-4).abs() < 1e-12 && line.rms_ms < 1e-9,
            "{line:?}"
        );
        for s in &specs {
            let s = StackShape::of(s, WeightType::F32).unwrap();
            assert!((priced(&t, &s) - synthetic(&s)).abs() < 1e-9);
        }
        // The probe of FFN 768 ran fast by a third of its FFN's cost: solved alone, FFN 768
        // would add nothing over 512; through the line each width adds its share.
        let fast = *probes
            .iter()
            .find(|p| shape(p).ffn == 768)
            .expect("a probe of FFN 768");
        let lost = shape(&fast).layers() as f64 * 2e-4 * 768.0 / 3.0;
        let noisy: Vec<(Probe, f64)> = exact
            .iter()
            .map(|(p, ms)| (*p, if *p == fast { ms - lost } else { *ms }))
            .collect();
        let t = StackTable::derive(&noisy);
        let added: Vec<f64> = [512, 768, 1024, 1280].map(|f| t.ffn[&(256, f)]).to_vec();
        assert!(added.windows(2).all(|w| w[0] < w[1]), "{added:?}");
        assert!(t.ffn_fit[&256].rms_ms > 0.0);
    }

    /// Qwen3.5-0.8B's vocabulary (248,320 tokens, 1 GB at F32 at width 1,024) fills a 1 GiB
    /// probe alone: the layers are probed with LAYER_VOCAB tokens, deep, and the model's own
    /// vocabulary once, shallow; the derivation still prices the model exactly.
    #[test]
    fn a_large_vocabulary_is_probed_once_and_the_layers_with_a_small_one() {
        let mut spec = stacked("qwen35", 1024, 24, 8, 2, 3584);
        spec.vocab_size = 248_320;
        let budget = Depths::Space {
            weights: WeightType::F32,
            max_probe_bytes: 1 << 30,
        };
        let probes = plan(vec![&spec], budget);
        let own: Vec<&Probe> = probes.iter().filter(|p| p.vocab == 248_320).collect();
        assert_eq!(own.len(), 1, "{probes:#?}");
        assert_eq!(own[0].layers, 2, "the shallowest qwen35 probe");
        assert!(
            probes
                .iter()
                .filter(|p| p.vocab != 248_320)
                .all(|p| p.vocab == LAYER_VOCAB),
            "{probes:#?}"
        );
        let deepest = probes.iter().map(|p| p.layers).max().unwrap();
        assert!(
            deepest >= 16,
            "with its own vocabulary: 2 and 4 layers; now {deepest}"
        );
        let timed: Vec<(Probe, f64)> = probes
            .iter()
            .map(|p| (*p, synthetic(&StackShape::of_probe(p).unwrap())))
            .collect();
        let table = StackTable::derive(&timed);
        let shape = StackShape::of(&spec, WeightType::F32).unwrap();
        assert!(
            table.missing(&shape).is_empty(),
            "{:?}",
            table.missing(&shape)
        );
        let whole = priced(&table, &shape);
        let truth = synthetic(&shape);
        assert!((whole - truth).abs() < 1e-9, "{whole} vs {truth}");

        // At Q4_0 under 128 MiB the vocabulary (143 MB) fills the probe too; a vocabulary
        // that leaves room for the space's depth keeps the plan of one vocabulary.
        let q4 = Depths::Space {
            weights: WeightType::Q4_0,
            max_probe_bytes: 128 << 20,
        };
        assert!(plan(vec![&spec], q4).iter().any(|p| p.vocab == LAYER_VOCAB));
        spec.vocab_size = 65_536;
        let probes = plan(vec![&spec], q4);
        assert!(probes.iter().all(|p| p.vocab == 65_536), "{probes:#?}");
    }

    /// Decode at `context` of the made-up engine: global attention reads its cache, a
    /// sliding window's up to the window, a conv or DeltaNet layer the same at any context.
    fn at_context(s: &StackShape, context: u64) -> f64 {
        let grows: f64 = s
            .mixers
            .iter()
            .map(|(m, n)| match m {
                MixerKey::Attention(a) => *n as f64 * 1e-5 * (a.kv_heads * context) as f64,
                MixerKey::Sliding(a, w) => *n as f64 * 1e-5 * (a.kv_heads * context.min(*w)) as f64,
                _ => 0.0,
            })
            .sum();
        synthetic(s) + grows
    }

    #[test]
    fn conv_and_deltanet_layers_cost_one_price_at_every_decode_context() {
        let contexts = [512, 4096, 16384];
        for arch in ["lfm2", "qwen35", "gemma3"] {
            let specs = space(arch);
            let probes = plan(specs.iter().collect(), Depths::Fixed(2, 6));
            let groups = |noisy: Option<usize>| -> Vec<Vec<(Probe, f64)>> {
                contexts
                    .iter()
                    .enumerate()
                    .map(|(g, &c)| {
                        probes
                            .iter()
                            .enumerate()
                            .map(|(i, p)| {
                                let ms = at_context(&StackShape::of_probe(p).unwrap(), c);
                                // One probe of the second context reads 20% slow.
                                let k = if noisy == Some(i) && g == 1 { 1.2 } else { 1.0 };
                                (*p, ms * k)
                            })
                            .collect()
                    })
                    .collect()
            };
            // Exact timings: every context's table prices every spec exactly.
            let tables = StackTable::derive_joint(&groups(None), MixerKey::is_flat);
            for (t, &c) in tables.iter().zip(&contexts) {
                for s in &specs {
                    let shape = StackShape::of(s, WeightType::F32).unwrap();
                    assert!(t.missing(&shape).is_empty(), "{arch}");
                    let whole = priced(t, &shape);
                    let truth = at_context(&shape, c);
                    assert!(
                        (whole - truth).abs() < 1e-9,
                        "{arch} @{c}: {whole} vs {truth}"
                    );
                }
            }
            // A slow probe at one context that moves a flat mixer's price when that
            // context is differenced alone: pooled, the flat mixer keeps one price at every
            // context, nearer the truth.
            let truth = StackTable::derive(&groups(None)[1]);
            let flat: Vec<_> = truth.mixer.iter().filter(|(k, _)| k.1.is_flat()).collect();
            if flat.is_empty() {
                assert_eq!(arch, "gemma3", "a sliding window is not flat");
                continue;
            }
            let error = |t: &StackTable| -> f64 {
                flat.iter().map(|(k, v)| (t.mixer[*k] - *v).abs()).sum()
            };
            let noisy = (0..probes.len())
                .find(|&i| error(&StackTable::derive(&groups(Some(i))[1])) > 1e-6)
                .expect("a probe that prices a flat mixer");
            let g = groups(Some(noisy));
            let joint = StackTable::derive_joint(&g, MixerKey::is_flat);
            for (key, _) in &flat {
                let prices: Vec<f64> = joint.iter().map(|t| t.mixer[*key]).collect();
                assert!(prices.iter().all(|p| *p == prices[0]), "{arch}: {prices:?}");
            }
            let (pooled, single) = (error(&joint[1]), error(&StackTable::derive(&g[1])));
            assert!(pooled < single, "{arch}: {pooled} vs {single}");
            // The contexts no longer agree exactly: the misfit says so.
            assert!(joint[1].misfit.values().any(|m| *m > 0.0), "{arch}");
        }
    }

    #[test]
    fn extra_probes_measure_how_far_the_engine_is_from_additive() {
        let specs = space("lfm2");
        let mut probes = plan(specs.iter().collect(), Depths::Fixed(2, 6));
        // The reference mix at its deeper depth (1 attention + 5 conv), with 3 of each.
        let extra = Probe {
            rest_layers: 3,
            ..*probes.iter().find(|p| p.rest_layers == 5).unwrap()
        };
        probes.push(extra);
        let time = |p: &Probe| synthetic(&StackShape::of_probe(p).unwrap());
        let mut timed: Vec<(Probe, f64)> = probes.iter().map(|p| (*p, time(p))).collect();
        let exact = StackTable::derive(&timed);
        assert!(exact.misfit[&extra.hidden] < 1e-9);
        // The extra probe 10% slower than additive: the fit no longer matches every probe.
        timed.last_mut().unwrap().1 *= 1.1;
        let off = StackTable::derive(&timed);
        assert!(off.misfit[&extra.hidden] > 0.01, "{:?}", off.misfit);
        // Without the reference's shallow depth, the mixes left (1+5, 5+1, 3+3 layers) do
        // not tell the base from the layers: the width is not determined at all.
        let lo = probes[0];
        let partial: Vec<(Probe, f64)> = timed.iter().filter(|(p, _)| *p != lo).cloned().collect();
        let t = StackTable::derive(&partial);
        assert!(!t.misfit.contains_key(&lo.hidden));
    }

    #[test]
    fn mixed_probes_round_trip_in_the_profile_and_are_checked() {
        let mut p = super::super::tests::profile();
        let specs = space("gemma3");
        for probe in plan(specs.iter().collect(), Depths::Fixed(2, 4)) {
            let mut e = p.probes[0].clone();
            e.model = probe;
            p.probes.push(e);
        }
        let text = p.to_toml().unwrap();
        assert!(text.contains("arch = \"gemma3\"") && text.contains("mixer = \"sliding\""));
        let back = LlamaProfile::parse(Path::new("p.toml"), &text).unwrap();
        assert_eq!(back, p);
        assert_eq!(back.archs().into_iter().collect::<Vec<_>>(), [Arch::Gemma3]);
        let bad = text.replacen("rest_layers = 3", "rest_layers = 4", 1);
        let e = LlamaProfile::parse(Path::new("p.toml"), &bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("leave at least one attention layer"), "{e}");
    }
}

#[cfg(test)]
mod cost_tests {
    use super::*;
    use crate::cost::LlamaCost;
    use tailor_cost::Workload;
    use tailor_spec::Precision;

    /// A made-up additive engine, as in the tests above, with decode growing with context
    /// in global attention only.
    fn synthetic(s: &StackShape, phase: Phase) -> f64 {
        let context = match phase {
            Phase::Decode { context } => context as f64,
            Phase::Prefill { .. } => 0.0,
        };
        let mixer = |m: &MixerKey| match m {
            MixerKey::Attention(a) => 0.1 + 0.03 * a.kv_heads as f64 + 1e-5 * context,
            MixerKey::Sliding(a, w) => {
                0.08 + 0.03 * a.kv_heads as f64 + 1e-5 * (*w as f64).min(context)
            }
            MixerKey::ShortConv { .. } => 0.02,
            MixerKey::LinearAttention { .. } => 0.05,
        };
        0.7 + s.vocab as f64 * 1e-6
            + s.mixers
                .iter()
                .map(|(m, n)| *n as f64 * (mixer(m) + 1e-4 * s.ffn as f64))
                .sum::<f64>()
    }

    fn gemma(hidden: u64, layers: u64, kv: u64, window: Option<u64>) -> ModelSpec {
        let mut s = ModelSpec::llama(4096, hidden, layers, hidden / 64, kv, 3 * hidden);
        s.tie_embeddings = true;
        s.activation = Activation::GeluTanh;
        let global = LayerKind {
            mixer: Some(MixerKind::Attention),
            qk_norm: Some(true),
            ..LayerKind::default()
        };
        let local = LayerKind {
            window,
            ..global.clone()
        };
        s.stack = Some(Stack {
            layout: Layout::Gemma3,
            pattern: ["local", "local", "global"].map(String::from).to_vec(),
            at: BTreeMap::new(),
            kinds: [("local".into(), local), ("global".into(), global)]
                .into_iter()
                .collect(),
        });
        s
    }

    #[test]
    fn a_stack_is_priced_from_its_mixers_and_its_cache_capped_by_windows() {
        let specs: Vec<ModelSpec> = [3, 6, 9]
            .into_iter()
            .flat_map(|l| [1, 2].map(|kv| gemma(256, l, kv, Some(128))))
            .collect();
        let mut p = super::super::tests::profile();
        p.probes.clear();
        let phases = [
            Phase::Prefill { tokens: 64 },
            Phase::Decode { context: 4096 },
        ];
        let template = super::super::tests::profile().probes[0].clone();
        for probe in plan(specs.iter().collect(), Depths::Fixed(2, 6)) {
            for phase in phases {
                let ms = synthetic(&StackShape::of_probe(&probe).unwrap(), phase);
                p.probes.push(ProbeEntry {
                    model: probe,
                    phase,
                    rounds_ms: vec![ms],
                    min_ms: ms,
                    max_ms: ms,
                    ..template.clone()
                });
            }
        }
        let cost = LlamaCost::new(p);
        let w = Workload {
            prompt_tokens: 64,
            context: 4096,
            precision: Precision::for_weights(DType::Q4_0),
        };
        cost.check_workload(&w).unwrap();
        for s in &specs {
            cost.covers(s, &w).unwrap();
            let e = cost.predict(s, &w);
            assert!(e.derived.is_empty(), "{:?}", e.derived);
            let shape = StackShape::of(s, WeightType::Q4_0).unwrap();
            let want = synthetic(&shape, phases[1]);
            let got = e.estimate.decode_ms_per_token;
            assert!((got - want).abs() < 1e-9, "{got} vs {want}");
            assert!((e.estimate.decode_breakdown.total_ms() - got).abs() < 1e-9);
            let want = synthetic(&shape, phases[0]);
            assert!((e.estimate.prefill_ms - want).abs() < 1e-9);
        }
        // Another width is not in the profile: refused by name, priced as NaN.
        let other = gemma(512, 6, 2, Some(128));
        let e = cost.covers(&other, &w).unwrap_err().to_string();
        assert!(
            e.contains("`gemma3` base for vocabulary 4096 at width 512"),
            "{e}"
        );
        assert!(
            cost.predict(&other, &w)
                .estimate
                .decode_ms_per_token
                .is_nan()
        );
        // The KV cache of sliding layers stops at the window (plus llama.cpp's ubatch):
        // at 16K tokens, 2 of 3 layers hold 768 cells instead of 16384.
        let windowed = cost.kv_bytes(&specs[1], 16384);
        let global = cost.kv_bytes(&gemma(256, 3, 2, None), 16384);
        let per_cell = (2 * 2 * 64) as u64 * 2; // K and V, 2 kv heads x 64, f16
        assert_eq!(global, 3 * 16384 * per_cell);
        assert_eq!(windowed, (16384 + 2 * 768) * per_cell);
    }
}
