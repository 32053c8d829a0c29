//! Per-layer costs by differencing whole-probe times ([`LayerTable`]).

use super::*;

/// Per-layer and per-model costs of one phase, recovered from whole-probe times.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LayerTable {
    /// Everything but the layers, ms, per `(vocab, hidden)`: the intercept.
    pub base: BTreeMap<(u64, u64), f64>,
    /// One layer, ms.
    pub layer: BTreeMap<LayerKey, f64>,
    /// The reference layer of each width (the one timed at two or more depths).
    pub reference: BTreeMap<u64, LayerKey>,
    /// Per width, the line through the FFN widths probed with the reference attention,
    /// where three or more were: what `layer` holds for those shapes.
    pub ffn_fit: BTreeMap<u64, FfnFit>,
}

/// What a wider FFN adds to a layer of one width, fitted over every FFN width probed at
/// that width: `ms_per_unit x (intermediate - the reference's)`.
///
/// Each of those probes is timed once, at one depth; on a shared machine its median
/// carries a few percent of noise, as large as the difference between neighbouring FFN
/// widths (see docs/llama-cpp.md). Taken one by one, a wider FFN can come out cheaper than a
/// narrower one, and a search over many candidates picks exactly the shapes whose noise
/// ran low. An FFN layer's weights and FLOPs both grow linearly with its intermediate
/// size, so with three or more widths the increments are priced from a least-squares line
/// through all of them (the reference's included), anchored at the reference layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FfnFit {
    /// ms per layer per unit of intermediate size (never below zero).
    pub ms_per_unit: f64,
    /// FFN widths the line went through (the reference's included).
    pub widths: usize,
    /// Root mean square of the widths' per-layer costs about the line, ms: how far single
    /// probes sat from it.
    pub rms_ms: f64,
}

/// Least-squares line through `(x, y)`: `(intercept, slope)`.
fn fit(points: &[(f64, f64)]) -> (f64, f64) {
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let slope = sxy / sxx;
    (my - slope * mx, slope)
}

impl FfnFit {
    /// The line through `(intermediate, per-layer ms)` of three or more FFN widths.
    pub fn of(points: &[(f64, f64)]) -> Option<Self> {
        if points.len() < 3 {
            return None;
        }
        let (intercept, slope) = fit(points);
        let rms = (points
            .iter()
            .map(|(x, y)| (y - intercept - slope * x).powi(2))
            .sum::<f64>()
            / points.len() as f64)
            .sqrt();
        // A wider FFN never costs less: noise that tilts the line down means the widths
        // cannot be told apart, and they are priced alike.
        Some(FfnFit {
            ms_per_unit: slope.max(0.0),
            widths: points.len(),
            rms_ms: rms,
        })
    }

    /// What FFN `intermediate` adds to a layer over the reference's `reference` ms.
    pub fn added_ms(&self, intermediate: u64, reference: u64) -> f64 {
        self.ms_per_unit * (intermediate as f64 - reference as f64)
    }
}

impl LayerTable {
    /// From whole-probe times (ms) of one phase: for each width, the layer shape timed at
    /// the most depths (two at least) is the reference: a line through its times gives
    /// the width's base (intercept) and its layer (slope). Every other layer shape of that
    /// width and vocabulary is `(time - base) / layers`; the reference shape at another
    /// vocabulary gives that vocabulary's base as `time - layers x layer`.
    pub fn derive(timed: &[(Probe, f64)]) -> Self {
        let mut t = LayerTable::default();
        let mut groups: BTreeMap<(u64, LayerKey), Vec<(f64, f64)>> = BTreeMap::new();
        for (p, ms) in timed {
            groups
                .entry((p.vocab, p.layer()))
                .or_default()
                .push((p.layers as f64, *ms));
        }
        let hiddens: BTreeSet<u64> = timed.iter().map(|(p, _)| p.hidden).collect();
        for h in hiddens {
            // The reference: most distinct depths, then the first in order.
            let reference = groups
                .iter()
                .filter(|((_, k), _)| k.hidden == h)
                .map(|((v, k), pts)| {
                    let depths: BTreeSet<u64> = pts.iter().map(|p| p.0 as u64).collect();
                    (depths.len(), *v, *k)
                })
                .filter(|(d, _, _)| *d >= 2)
                .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(b.2.cmp(&a.2)));
            let Some((_, v0, k0)) = reference else {
                continue;
            };
            let (mut base, mut slope) = fit(&groups[&(v0, k0)]);
            if !(slope > 0.0 && base >= 0.0) {
                // Noise larger than the layers' cost (tiny models, few repetitions): a
                // negative layer or base means nothing; fall back to a line through the
                // origin, all of the time in the layers.
                let pts = &groups[&(v0, k0)];
                let sxy: f64 = pts.iter().map(|(l, ms)| l * ms).sum();
                let sxx: f64 = pts.iter().map(|(l, _)| l * l).sum();
                base = 0.0;
                slope = sxy / sxx;
            }
            t.base.insert((v0, h), base);
            t.layer.insert(k0, slope);
            t.reference.insert(h, k0);
            for ((v, k), pts) in groups.iter().filter(|((_, k), _)| k.hidden == h) {
                if (*v, *k) == (v0, k0) {
                    continue;
                }
                if *v == v0 {
                    // Never below zero: a shape cannot cost less than nothing.
                    let per: Vec<f64> = pts
                        .iter()
                        .map(|(l, ms)| ((ms - base) / l).max(0.0))
                        .collect();
                    t.layer
                        .insert(*k, per.iter().sum::<f64>() / per.len() as f64);
                } else if *k == k0 {
                    let b: Vec<f64> = pts
                        .iter()
                        .map(|(l, ms)| (ms - l * slope).max(0.0))
                        .collect();
                    t.base
                        .insert((*v, h), b.iter().sum::<f64>() / b.len() as f64);
                }
            }
            t.fit_ffn(k0);
        }
        t
    }

    /// Replaces the per-layer costs of the FFN widths probed with `reference`'s attention
    /// by the reference plus their line ([`FfnFit`]), where three or more widths were
    /// probed (two determine the line exactly: nothing to smooth).
    fn fit_ffn(&mut self, reference: LayerKey) {
        let same_attention =
            |k: &LayerKey| k.hidden == reference.hidden && k.attention == reference.attention;
        let points: Vec<(f64, f64)> = self
            .layer
            .iter()
            .filter(|(k, _)| same_attention(k))
            .map(|(k, ms)| (k.intermediate as f64, *ms))
            .collect();
        let Some(line) = FfnFit::of(&points) else {
            return;
        };
        let base = self.layer[&reference];
        for (k, ms) in self.layer.iter_mut().filter(|(k, _)| same_attention(k)) {
            *ms = base + line.added_ms(k.intermediate, reference.intermediate);
        }
        self.ffn_fit.insert(reference.hidden, line);
    }

    /// One layer of `key`, ms: measured, or by additivity from the width's reference
    /// `r`: `layer(attn, ffn_r) + layer(attn_r, ffn) - layer(r)`.
    pub fn layer_ms(&self, key: &LayerKey) -> Option<f64> {
        if let Some(&ms) = self.layer.get(key) {
            return Some(ms);
        }
        let r = self.reference.get(&key.hidden)?;
        let attn = self.layer.get(&LayerKey {
            intermediate: r.intermediate,
            ..*key
        })?;
        let ffn = self.layer.get(&LayerKey {
            attention: r.attention,
            ..*key
        })?;
        let reference = self.layer[r];
        let added = attn + ffn - reference;
        // Additivity on parts noisier than their differences can undershoot; a layer never
        // costs nothing, so fall back to scaling by the parts' ratios.
        if added > 0.0 || reference <= 0.0 {
            Some(added.max(0.0))
        } else {
            Some(attn * ffn / reference)
        }
    }
}
