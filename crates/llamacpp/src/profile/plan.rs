//! The probes a set of specs needs: their widths, attention and FFN shapes, and the
//! depths each width is timed at.

use super::*;

/// The depths of a width's probe models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depths {
    /// The same `(LO, HI)` at every width.
    Fixed(u64, u64),
    /// The width's own range of depths in the space, `(fewest, most)` layers, so the line
    /// through the reference's two times interpolates rather than extrapolates (small
    /// models run partly from the CPU's caches, and their time is not linear in depth far
    /// outside the probed range); HI capped so a probe's weights stay under
    /// `max_probe_bytes` in `weights` (beyond the last-level cache, time is linear in
    /// depth and a larger probe only costs time), LO at most HI/2.
    Space {
        weights: crate::model::WeightType,
        max_probe_bytes: u64,
    },
}

impl Depths {
    pub(super) fn of(self, reference: &Probe, fewest: u64, most: u64) -> (u64, u64) {
        match self {
            Depths::Fixed(lo, hi) => (lo, hi),
            Depths::Space {
                weights,
                max_probe_bytes,
            } => {
                let bytes = |layers| {
                    crate::model::weight_bytes(
                        &Probe {
                            layers,
                            ..*reference
                        }
                        .spec(),
                        weights,
                    )
                };
                let mut hi = most.max(2);
                while hi > 2 && bytes(hi) > max_probe_bytes {
                    hi -= 1;
                }
                let lo = fewest.min(hi / 2).max(1);
                (lo, hi)
            }
        }
    }
}

/// The vocabulary of a width's layer probes where the width's own would keep them shallow
/// (see [`layer_vocab`]).
pub const LAYER_VOCAB: u64 = 8192;

/// The vocabulary and depths `(vocab, lo, hi)` of a width's layer probes, from its
/// reference probe (of the width's commonest vocabulary) and the space's `(fewest, most)`
/// layers. A large vocabulary's embedding and head can fill the probe budget alone
/// (Qwen3.5's 248,320 tokens at width 1,024: 1 GB at F32, 143 MB at Q4_0), which keeps the
/// probes at 2 and 4 layers for models of 24, and a layer's cost, a difference of two
/// nearly equal times multiplied by the depth, drowns in their noise. Then the layers are
/// probed with [`LAYER_VOCAB`] tokens, as deep as the budget allows, and the width's own
/// vocabulary gets one shallow probe of its own, as any other vocabulary of the width
/// does: the vocabulary's cost is one unknown of the derivation, each layer kind's
/// another, so the layers' differences no longer carry the head's noise.
pub(super) fn layer_vocab(
    depths: Depths,
    reference: &Probe,
    fewest: u64,
    most: u64,
) -> (u64, u64, u64) {
    let (lo, hi) = depths.of(reference, fewest, most);
    if reference.vocab <= LAYER_VOCAB || hi >= most {
        return (reference.vocab, lo, hi);
    }
    let small = Probe {
        vocab: LAYER_VOCAB,
        ..*reference
    };
    let (lo_s, hi_s) = depths.of(&small, fewest, most);
    if hi_s >= 2 * hi {
        (LAYER_VOCAB, lo_s, hi_s)
    } else {
        (reference.vocab, lo, hi)
    }
}

/// A width whose deepest probe has under a quarter of the layers of the space's shallowest
/// model of that width: its layer cost is a difference of shallow probes, multiplied by
/// the depth, and the noise with it (phonelm-0.5b at f32 under a 128 MiB cap: probes of 1
/// and 2 layers for models of 14-32; decode predicted 12% high at the median).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShallowWidth {
    pub hidden: u64,
    pub deepest_probe: u64,
    pub fewest_layers: u64,
}

/// The widths of `specs` whose `probes` are far shallower than the models (see
/// [`ShallowWidth`]).
pub fn shallow_widths<'a>(
    specs: impl IntoIterator<Item = &'a ModelSpec>,
    probes: &[Probe],
) -> Vec<ShallowWidth> {
    let mut fewest: BTreeMap<u64, u64> = BTreeMap::new();
    for s in specs {
        let f = fewest.entry(s.hidden_size).or_insert(s.num_layers);
        *f = (*f).min(s.num_layers);
    }
    fewest
        .into_iter()
        .filter_map(|(hidden, fewest_layers)| {
            let deepest_probe = probes
                .iter()
                .filter(|p| p.hidden == hidden)
                .map(|p| p.layers)
                .max()?;
            (deepest_probe * 4 < fewest_layers).then_some(ShallowWidth {
                hidden,
                deepest_probe,
                fewest_layers,
            })
        })
        .collect()
}

/// The probes that let [`LayerTable`] price every layer of `specs` in a phase: per width,
/// a reference layer at LO and HI layers (see [`Depths`]; in [`layer_vocab`]'s vocabulary),
/// each other attention configuration and each other FFN width at HI with the reference's
/// other part, and the reference at LO for every other vocabulary of that width.
///
/// Specs with a stack are planned by [`stack::plan`] (per architecture), after the dense
/// ones; a spec no llama.cpp architecture runs is left out (profiling refuses it first).
pub fn plan<'a>(specs: impl IntoIterator<Item = &'a ModelSpec>, depths: Depths) -> Vec<Probe> {
    let (stacked, dense): (Vec<&ModelSpec>, Vec<&ModelSpec>) =
        specs.into_iter().partition(|s| s.stack.is_some());
    let mut out = plan_dense(dense, depths);
    out.extend(super::stack::plan(stacked, depths));
    out
}

fn plan_dense<'a>(specs: impl IntoIterator<Item = &'a ModelSpec>, depths: Depths) -> Vec<Probe> {
    // Per width: counts of attention configurations, FFN widths and vocabularies.
    #[derive(Default)]
    struct Width {
        attn: BTreeMap<Attn, u64>,
        ffn: BTreeMap<u64, u64>,
        vocab: BTreeMap<u64, u64>,
        fewest: u64,
        most: u64,
    }
    let mut widths: BTreeMap<u64, Width> = BTreeMap::new();
    for s in specs {
        let k = LayerKey::of(s);
        let w = widths.entry(s.hidden_size).or_default();
        *w.attn.entry(k.attention).or_default() += 1;
        *w.ffn.entry(k.intermediate).or_default() += 1;
        *w.vocab.entry(s.vocab_size).or_default() += 1;
        w.fewest = if w.most == 0 {
            s.num_layers
        } else {
            w.fewest.min(s.num_layers)
        };
        w.most = w.most.max(s.num_layers);
    }
    fn commonest<K: Ord + Copy>(m: &BTreeMap<K, u64>) -> Option<K> {
        m.iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(k, _)| *k)
    }
    let mut out = Vec::new();
    for (h, w) in &widths {
        let (Some(a0), Some(f0), Some(v0)) =
            (commonest(&w.attn), commonest(&w.ffn), commonest(&w.vocab))
        else {
            continue;
        };
        let probe = |vocab, a: Attn, intermediate, layers| Probe {
            vocab,
            hidden: *h,
            heads: a.heads,
            kv_heads: a.kv_heads,
            head_dim: a.head_dim,
            intermediate,
            layers,
            ..Probe::default()
        };
        let (vl, lo, hi) = layer_vocab(depths, &probe(v0, a0, f0, 1), w.fewest, w.most);
        out.push(probe(vl, a0, f0, lo));
        out.push(probe(vl, a0, f0, hi));
        out.extend(
            w.attn
                .keys()
                .filter(|a| **a != a0)
                .map(|a| probe(vl, *a, f0, hi)),
        );
        out.extend(
            w.ffn
                .keys()
                .filter(|f| **f != f0)
                .map(|f| probe(vl, a0, *f, hi)),
        );
        // Each other vocabulary (the width's own, where the layers were probed with
        // LAYER_VOCAB) at the shallowest depth its own budget allows.
        out.extend(w.vocab.keys().filter(|v| **v != vl).map(|v| {
            let lo = if vl == v0 {
                lo
            } else {
                depths.of(&probe(*v, a0, f0, 1), w.fewest, w.most).0
            };
            probe(*v, a0, f0, lo)
        }));
    }
    out
}
