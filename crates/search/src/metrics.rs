//! What is measured of a candidate, the quality proxies, and constraint checks.

use crate::space::{ChinchillaParams, SearchSpace};
use serde::{Deserialize, Serialize};
use tailor_cost::{CostModel, EditEstimate, EditMethod, Estimate, Workload};
use tailor_spec::ModelSpec;

/// A quantity objectives, constraints and the pick refer to. Written by name
/// (`decode_ms`); the `*At` ones with the tokens after `@` (`decode_ms@4096`: a decode step
/// at a context of 4096 tokens), each at a point the space's `[workload]` lists
/// (`prefill_at`, `decode_at`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    Params,
    NonEmbeddingParams,
    PrefillMs,
    DecodeMs,
    PeakMemory,
    ChinchillaLoss,
    /// One whole edit by forward-only zeroth-order steps (needs `[workload.edit]`).
    EditZoMs,
    /// One whole edit by backpropagation steps.
    EditBpMs,
    /// Peak memory of a zo edit.
    EditZoMemory,
    /// Peak memory of a bp edit.
    EditBpMemory,
    /// Prefill of a prompt of this many tokens.
    PrefillMsAt(u64),
    /// One decode step with this many tokens in the context.
    DecodeMsAt(u64),
    /// Peak memory of a run to this context.
    PeakMemoryAt(u64),
}

/// The names of the metrics (`@N` ones by their prefix).
pub const METRIC_NAMES: [&str; 13] = [
    "params",
    "non_embedding_params",
    "prefill_ms",
    "decode_ms",
    "peak_memory",
    "chinchilla_loss",
    "edit_zo_ms",
    "edit_bp_ms",
    "edit_zo_memory",
    "edit_bp_memory",
    "prefill_ms@TOKENS",
    "decode_ms@CONTEXT",
    "peak_memory@CONTEXT",
];

impl std::str::FromStr for Metric {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let unknown = || {
            format!(
                "unknown metric `{s}`; expected one of {}",
                METRIC_NAMES.join(", ")
            )
        };
        if let Some((name, at)) = s.split_once('@') {
            let n: u64 = at.parse().map_err(|_| {
                format!("`{s}`: `{at}` after `@` is not a token count (e.g. `{name}@4096`)")
            })?;
            if n == 0 || n > 1 << 20 {
                return Err(format!("`{s}`: {n} tokens is outside 1-1048576"));
            }
            return match name {
                "prefill_ms" => Ok(Metric::PrefillMsAt(n)),
                "decode_ms" => Ok(Metric::DecodeMsAt(n)),
                "peak_memory" => Ok(Metric::PeakMemoryAt(n)),
                _ => Err(unknown()),
            };
        }
        Ok(match s {
            "params" => Metric::Params,
            "non_embedding_params" => Metric::NonEmbeddingParams,
            "prefill_ms" => Metric::PrefillMs,
            "decode_ms" => Metric::DecodeMs,
            "peak_memory" => Metric::PeakMemory,
            "chinchilla_loss" => Metric::ChinchillaLoss,
            "edit_zo_ms" => Metric::EditZoMs,
            "edit_bp_ms" => Metric::EditBpMs,
            "edit_zo_memory" => Metric::EditZoMemory,
            "edit_bp_memory" => Metric::EditBpMemory,
            _ => return Err(unknown()),
        })
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl Serialize for Metric {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for Metric {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Metric {
    pub fn name(self) -> std::borrow::Cow<'static, str> {
        let at = |name: &str, n: u64| format!("{name}@{n}").into();
        std::borrow::Cow::Borrowed(match self {
            Metric::Params => "params",
            Metric::NonEmbeddingParams => "non_embedding_params",
            Metric::PrefillMs => "prefill_ms",
            Metric::DecodeMs => "decode_ms",
            Metric::PeakMemory => "peak_memory",
            Metric::ChinchillaLoss => "chinchilla_loss",
            Metric::EditZoMs => "edit_zo_ms",
            Metric::EditBpMs => "edit_bp_ms",
            Metric::EditZoMemory => "edit_zo_memory",
            Metric::EditBpMemory => "edit_bp_memory",
            Metric::PrefillMsAt(n) => return at("prefill_ms", n),
            Metric::DecodeMsAt(n) => return at("decode_ms", n),
            Metric::PeakMemoryAt(n) => return at("peak_memory", n),
        })
    }

    /// The workload a `*At` metric is priced under: `w` with that prompt or context.
    pub fn workload(self, w: &Workload) -> Option<Workload> {
        match self {
            Metric::PrefillMsAt(n) => Some(Workload {
                prompt_tokens: n,
                ..*w
            }),
            Metric::DecodeMsAt(n) | Metric::PeakMemoryAt(n) => Some(Workload { context: n, ..*w }),
            _ => None,
        }
    }

    /// The value a `*At` metric takes from the estimate of its workload.
    fn of_estimate(self, e: &Estimate) -> f64 {
        match self {
            Metric::PrefillMsAt(_) => e.prefill_ms,
            Metric::DecodeMsAt(_) => e.decode_ms_per_token,
            Metric::PeakMemoryAt(_) => e.peak_memory_bytes as f64,
            _ => f64::NAN,
        }
    }

    /// Whether the metric prices an edit (the space needs `[workload.edit]`).
    pub fn is_edit(self) -> bool {
        matches!(
            self,
            Metric::EditZoMs | Metric::EditBpMs | Metric::EditZoMemory | Metric::EditBpMemory
        )
    }
}

/// An inclusive interval; either end may be open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bound {
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
}

/// What is wrong with a constraint's `{ min, max }`.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum BadBound {
    #[error("gives neither min nor max")]
    Empty,
    #[error("is contradictory: min {min} is above max {max}, so no candidate can satisfy it")]
    Contradictory { min: f64, max: f64 },
    #[error("bounds must be finite numbers")]
    NotFinite,
}

impl Bound {
    pub fn check(&self) -> Result<(), BadBound> {
        match (self.min, self.max) {
            (None, None) => Err(BadBound::Empty),
            (Some(min), Some(max)) if min > max => Err(BadBound::Contradictory { min, max }),
            (a, b) if a.is_some_and(|x| !x.is_finite()) || b.is_some_and(|x| !x.is_finite()) => {
                Err(BadBound::NotFinite)
            }
            _ => Ok(()),
        }
    }

    /// Relative distance outside the interval (0 inside).
    pub fn violation(&self, v: f64) -> f64 {
        if let Some(min) = self.min
            && v < min
        {
            return (min - v) / min.abs().max(1e-12);
        }
        if let Some(max) = self.max
            && v > max
        {
            return (v - max) / max.abs().max(1e-12);
        }
        0.0
    }
}

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
    pub fn with_at(mut self, space: &SearchSpace, spec: &ModelSpec, cost: &dyn CostModel) -> Self {
        let mut last: Option<(Workload, Estimate)> = None;
        for metric in space.at_metrics() {
            let Some(w) = metric.workload(&space.workload) else {
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

fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

/// Constraints checked before pricing (they need no cost model).
pub const STATIC_CONSTRAINTS: [usize; 3] = [0, 1, 5];

/// Violations of each constraint (index into [`SearchSpace::constraint_names`]: the fixed
/// [`CONSTRAINT_NAMES`], then the space's limits at other points) and their relative
/// size; constraints on unpriced metrics are not checked.
pub fn violations(space: &SearchSpace, m: &Metrics) -> Vec<(usize, f64)> {
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
    checks
        .into_iter()
        .chain(at)
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

    #[test]
    fn bounds() {
        let b = Bound {
            min: Some(10.0),
            max: Some(20.0),
        };
        assert_eq!(b.violation(15.0), 0.0);
        assert_eq!(b.violation(5.0), 0.5);
        assert_eq!(b.violation(30.0), 0.5);
        let e = Bound {
            min: Some(3.0),
            max: Some(2.0),
        }
        .check()
        .unwrap_err();
        assert_eq!(e, BadBound::Contradictory { min: 3.0, max: 2.0 });
        assert!(
            e.to_string()
                .contains("contradictory: min 3 is above max 2"),
            "{e}"
        );
        assert_eq!(Bound::default().check(), Err(BadBound::Empty));
        let inf = Bound {
            min: Some(f64::INFINITY),
            max: None,
        };
        assert_eq!(inf.check(), Err(BadBound::NotFinite));
    }
}
