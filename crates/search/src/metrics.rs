//! What is measured of a candidate, the quality proxies, and constraint checks.

pub use crate::metric::{BadBound, Bound, METRIC_NAMES, Metric, Objective, Over};

use crate::space::{ChinchillaParams, SearchSpace};
use serde::{Deserialize, Serialize};
use tailor_cost::{CostModel, EditEstimate, EditMethod, Estimate, Workload};
use tailor_spec::ModelSpec;

/// Chinchilla's fitted loss (Hoffmann et al. 2022, approach 3):
/// L(N, D) = 1.69 + 406.4 / N^0.34 + 410.7 / D^0.28.
pub fn chinchilla_loss(params: f64, tokens: f64) -> f64 {
    1.69 + 406.4 / params.powf(0.34) + 410.7 / tokens.powf(0.28)
}

/// Everything known of one candidate. The priced metrics (latency, memory) are `None`
/// when a static constraint already excluded the candidate, so it was never priced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub params: u64,
    pub non_embedding_params: u64,
    pub prefill_ms: Option<f64>,
    pub decode_ms: Option<f64>,
    pub peak_memory_bytes: Option<u64>,
    /// `None` when the space gives no token budget.
    pub chinchilla_loss: Option<f64>,
    /// hidden_size / num_layers.
    pub aspect_ratio: f64,
    /// A whole edit's time and peak memory by each method, where the space has
    /// `[workload.edit]` (absent otherwise, and where the cost model cannot price it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edit_zo_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edit_bp_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edit_zo_memory_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edit_bp_memory_bytes: Option<u64>,
    /// The space's metrics at other prompts and contexts (`[workload]` `prefill_at`,
    /// `decode_at`), in [`SearchSpace::at_metrics`] order; empty when it lists none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub at: Vec<AtValue>,
    /// Over a set of devices: each device's metrics (the plain fields above are the
    /// first device's); empty over one device.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceMetrics>,
    /// Over a set of devices: the worst and mean ratios to each device's best that the
    /// space's objectives and pick read, known once the search has seen every device's best
    /// (front rows, the pick, each device's own pick, the references).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub across: Vec<Across>,
}

/// One device's metrics of a candidate searched over a set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceMetrics {
    pub device: String,
    /// Inside every constraint on this device (`[constraints]` and its own limits).
    pub feasible: bool,
    pub metrics: Metrics,
}

/// A worst-case or fleet-mean value (`worst:decode_ms`) of a candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Across {
    pub objective: Objective,
    pub value: f64,
}

/// A metric at another prompt or context, and its value (ms, or bytes).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AtValue {
    pub metric: Metric,
    pub value: f64,
}

impl Metrics {
    /// The metrics that need no cost model: parameters, proxies, shape.
    pub fn statics(space: &SearchSpace, spec: &ModelSpec) -> Self {
        let (total, non_embedding) = spec.param_totals();
        let q = &space.file.quality;
        let n = match q.chinchilla_params {
            ChinchillaParams::Total => total,
            ChinchillaParams::NonEmbedding => non_embedding,
        };
        Self {
            params: total,
            non_embedding_params: non_embedding,
            prefill_ms: None,
            decode_ms: None,
            peak_memory_bytes: None,
            chinchilla_loss: q.tokens.map(|d| chinchilla_loss(n as f64, d)),
            aspect_ratio: spec.hidden_size as f64 / spec.num_layers as f64,
            edit_zo_ms: None,
            edit_bp_ms: None,
            edit_zo_memory_bytes: None,
            edit_bp_memory_bytes: None,
            at: Vec::new(),
            devices: Vec::new(),
            across: Vec::new(),
        }
    }

    /// Adds a cost model's estimate, and its edit estimate where there is one.
    pub fn priced(mut self, est: &Estimate, edit: Option<&EditEstimate>) -> Self {
        self.prefill_ms = Some(est.prefill_ms);
        self.decode_ms = Some(est.decode_ms_per_token);
        self.peak_memory_bytes = Some(est.peak_memory_bytes);
        if let Some(e) = edit {
            self.edit_zo_ms = e.cost(EditMethod::Zo).total_ms;
            self.edit_bp_ms = e.cost(EditMethod::Bp).total_ms;
            self.edit_zo_memory_bytes = Some(e.zo.peak_memory_bytes);
            self.edit_bp_memory_bytes = Some(e.bp.peak_memory_bytes);
        }
        self
    }

    /// Static metrics and the estimate of a cost model.
    pub fn compute(
        space: &SearchSpace,
        spec: &ModelSpec,
        cost: &dyn CostModel,
    ) -> (Self, Estimate) {
        let est = cost.estimate(spec, &space.workload);
        let edit = space
            .edit
            .and_then(|e| cost.edit(spec, &space.workload, &e));
        let m = Self::statics(space, spec)
            .priced(&est, edit.as_ref())
            .with_at(space, spec, cost);
        (m, est)
    }

    /// Adds the space's metrics at other prompts and contexts
    /// ([`SearchSpace::at_metrics`]), each priced by `cost` under its own workload (a
    /// decode point's memory comes with its time, from one estimate).
    pub fn with_at(self, space: &SearchSpace, spec: &ModelSpec, cost: &dyn CostModel) -> Self {
        self.with_at_under(space, &space.workload, spec, cost)
    }

    /// [`Metrics::with_at`] around the workload `base` (a device's own precision).
    pub fn with_at_under(
        mut self,
        space: &SearchSpace,
        base: &Workload,
        spec: &ModelSpec,
        cost: &dyn CostModel,
    ) -> Self {
        let mut last: Option<(Workload, Estimate)> = None;
        for metric in space.at_metrics() {
            let Some(w) = metric.workload(base) else {
                continue;
            };
            let e = match &last {
                Some((lw, le)) if *lw == w => *le,
                _ => cost.estimate(spec, &w),
            };
            self.at.push(AtValue {
                metric,
                value: metric.of_estimate(&e),
            });
            last = Some((w, e));
        }
        self
    }

    /// The value an objective reads: the metric itself, on one device of the set (by name),
    /// or its worst or mean ratio (NaN where not known: see [`Metrics::across`]).
    pub fn value(&self, o: &Objective) -> f64 {
        match &o.over {
            Over::One => self.get(o.metric),
            Over::Device(name) => self
                .devices
                .iter()
                .find(|d| &d.device == name)
                .map_or(f64::NAN, |d| d.metrics.get(o.metric)),
            Over::Worst | Over::Mean => self
                .across
                .iter()
                .find(|a| &a.objective == o)
                .map_or(f64::NAN, |a| a.value),
        }
    }

    /// Device `d`'s metrics over a set; these metrics themselves over one device.
    pub fn on(&self, d: usize) -> &Metrics {
        self.devices.get(d).map_or(self, |x| &x.metrics)
    }

    pub fn get(&self, m: Metric) -> f64 {
        match m {
            Metric::Params => self.params as f64,
            Metric::NonEmbeddingParams => self.non_embedding_params as f64,
            Metric::PrefillMs => self.prefill_ms.unwrap_or(f64::NAN),
            Metric::DecodeMs => self.decode_ms.unwrap_or(f64::NAN),
            Metric::PeakMemory => self.peak_memory_bytes.map_or(f64::NAN, |b| b as f64),
            Metric::ChinchillaLoss => self.chinchilla_loss.unwrap_or(f64::NAN),
            Metric::EditZoMs => self.edit_zo_ms.unwrap_or(f64::NAN),
            Metric::EditBpMs => self.edit_bp_ms.unwrap_or(f64::NAN),
            Metric::EditZoMemory => self.edit_zo_memory_bytes.map_or(f64::NAN, |b| b as f64),
            Metric::EditBpMemory => self.edit_bp_memory_bytes.map_or(f64::NAN, |b| b as f64),
            Metric::PrefillMsAt(_) | Metric::DecodeMsAt(_) | Metric::PeakMemoryAt(_) => self
                .at
                .iter()
                .find(|a| a.metric == m)
                .map_or(f64::NAN, |a| a.value),
        }
    }
}

/// Names of the constraints, in check order (also the columns of the emptiness report).
pub const CONSTRAINT_NAMES: [&str; 10] = [
    "params",
    "non_embedding_params",
    "max_memory_gib",
    "max_prefill_ms",
    "max_decode_ms",
    "aspect_ratio",
    "max_edit_zo_ms",
    "max_edit_bp_ms",
    "max_edit_zo_memory_gib",
    "max_edit_bp_memory_gib",
];

impl SearchSpace {
    /// Every constraint's name, in the order violations index them: the fixed ones
    /// ([`CONSTRAINT_NAMES`]), then the limits at other prompts and contexts
    /// (`max_decode_ms@16384`).
    pub fn constraint_names(&self) -> Vec<String> {
        CONSTRAINT_NAMES
            .iter()
            .map(|n| n.to_string())
            .chain(self.at_limits.iter().map(|l| l.name.clone()))
            .chain(self.device_limits.iter().map(|l| l.name.clone()))
            .collect()
    }
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

/// Constraints checked before pricing (they need no cost model).
pub const STATIC_CONSTRAINTS: [usize; 3] = [0, 1, 5];

/// Violations of each constraint (index into [`SearchSpace::constraint_names`]: the fixed
/// [`CONSTRAINT_NAMES`], then the space's limits at other points, then the limits on one
/// device) and their relative size; constraints on unpriced metrics are not checked. Over
/// a set, `[constraints]` hold on every device: a constraint's violation is its largest on
/// any device.
pub fn violations(space: &SearchSpace, m: &Metrics) -> Vec<(usize, f64)> {
    if m.devices.is_empty() {
        return violations_on(space, m, None);
    }
    let mut merged: Vec<(usize, f64)> = Vec::new();
    for (d, dm) in m.devices.iter().enumerate() {
        for (i, v) in violations_on(space, &dm.metrics, Some(d)) {
            match merged.iter_mut().find(|(j, _)| *j == i) {
                Some((_, w)) => *w = w.max(v),
                None => merged.push((i, v)),
            }
        }
    }
    merged.sort_by_key(|&(i, _)| i);
    merged
}

/// The violations of `m`, one device's metrics (`device` its index in a set: its own
/// limits apply too).
pub fn violations_on(space: &SearchSpace, m: &Metrics, device: Option<usize>) -> Vec<(usize, f64)> {
    let c = &space.file.constraints;
    let upper = |max: f64, v: Option<f64>| {
        v.map(|v| {
            Bound {
                min: None,
                max: Some(max),
            }
            .violation(v)
        })
    };
    let checks = [
        c.params.map(|b| b.violation(m.params as f64)),
        c.non_embedding_params
            .map(|b| b.violation(m.non_embedding_params as f64)),
        c.max_memory_gib
            .and_then(|g| upper(g, m.peak_memory_bytes.map(gib))),
        c.max_prefill_ms.and_then(|x| upper(x, m.prefill_ms)),
        c.max_decode_ms.and_then(|x| upper(x, m.decode_ms)),
        c.aspect_ratio.map(|b| b.violation(m.aspect_ratio)),
        c.max_edit_zo_ms.and_then(|x| upper(x, m.edit_zo_ms)),
        c.max_edit_bp_ms.and_then(|x| upper(x, m.edit_bp_ms)),
        c.max_edit_zo_memory_gib
            .and_then(|g| upper(g, m.edit_zo_memory_bytes.map(gib))),
        c.max_edit_bp_memory_gib
            .and_then(|g| upper(g, m.edit_bp_memory_bytes.map(gib))),
    ];
    let at = space.at_limits.iter().map(|l| {
        let v = m.get(l.metric);
        upper(l.max, v.is_finite().then_some(v))
    });
    // A set of one is searched as one device: its own limits are the space's.
    let device = device.or((space.devices.len() == 1).then_some(0));
    let own = space.device_limits.iter().map(|l| {
        if Some(l.device) != device {
            return None;
        }
        let v = m.get(l.metric);
        upper(l.max, v.is_finite().then_some(v))
    });
    checks
        .into_iter()
        .chain(at)
        .chain(own)
        .enumerate()
        .filter_map(|(i, v)| v.filter(|&v| v > 0.0).map(|v| (i, v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinchilla_matches_published_fit() {
        // Chinchilla itself: 70B parameters on 1.4T tokens, L ~= 1.94.
        let l = chinchilla_loss(70e9, 1.4e12);
        assert!((l - 1.937).abs() < 0.01, "{l}");
        assert!(chinchilla_loss(1e9, 1e11) < chinchilla_loss(5e8, 1e11));
    }
}
