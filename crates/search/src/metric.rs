//! What objectives, constraints and the pick name: a [`Metric`] (its names, the workload of
//! a `*At` one), and the [`Bound`] a constraint puts on one. Read by the space file and by
//! [`crate::metrics`], which computes a candidate's values.

use serde::{Deserialize, Serialize};
use tailor_cost::{Estimate, Workload};

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
    pub(crate) fn of_estimate(self, e: &Estimate) -> f64 {
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

impl Metric {
    /// Whether a cost model prices the metric (its value differs from device to device);
    /// parameters and the quality proxy do not depend on the device.
    pub fn is_priced(self) -> bool {
        !matches!(
            self,
            Metric::Params | Metric::NonEmbeddingParams | Metric::ChinchillaLoss
        )
    }
}

/// Which device's value of a metric an objective, the pick or a limit reads, when a space
/// is searched over several devices (`[devices]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Over {
    /// The one device of the search (or a metric no device changes: parameters, loss).
    One,
    /// One named device of the set: `decode_ms:pixel8`.
    Device(String),
    /// The worst device: the largest ratio of a device's value to that device's own best
    /// (`worst:decode_ms`).
    Worst,
    /// The mean of those ratios, weighted by each device's fleet share (`mean:decode_ms`).
    Mean,
}

/// A metric as an objective, the pick or a limit names it: the [`Metric`] and the device(s)
/// it is read on. Written `decode_ms` (one device), `decode_ms@4096:pixel8` (a device of
/// the set), `worst:decode_ms`, `mean:decode_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Objective {
    pub metric: Metric,
    pub over: Over,
}

/// A device name: what TOML allows as a bare key (letters, digits, `_`, `-`), so it can
/// name a `[devices.NAME]` table and a column suffix.
pub fn valid_device_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl Objective {
    /// The metric on the one device.
    pub fn one(metric: Metric) -> Self {
        Self {
            metric,
            over: Over::One,
        }
    }

    pub fn name(&self) -> String {
        match &self.over {
            Over::One => self.metric.name().into_owned(),
            Over::Device(d) => format!("{}:{d}", self.metric),
            Over::Worst => format!("worst:{}", self.metric),
            Over::Mean => format!("mean:{}", self.metric),
        }
    }

    /// Whether the value is a ratio to each device's best (worst, mean), not the metric's
    /// own unit.
    pub fn is_ratio(&self) -> bool {
        matches!(self.over, Over::Worst | Over::Mean)
    }
}

impl From<Metric> for Objective {
    fn from(metric: Metric) -> Self {
        Objective::one(metric)
    }
}

impl std::str::FromStr for Objective {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        for (prefix, over) in [("worst:", Over::Worst), ("mean:", Over::Mean)] {
            if let Some(rest) = s.strip_prefix(prefix) {
                return Ok(Objective {
                    metric: rest.parse()?,
                    over,
                });
            }
        }
        match s.split_once(':') {
            None => Ok(Objective::one(s.parse()?)),
            Some((metric, device)) => {
                if !valid_device_name(device) {
                    return Err(format!(
                        "`{s}`: `{device}` after `:` is not a device name (letters, digits, `_` \
                         and `-`); write `worst:{metric}`, `mean:{metric}` or `{metric}:DEVICE`"
                    ));
                }
                Ok(Objective {
                    metric: metric.parse()?,
                    over: Over::Device(device.to_string()),
                })
            }
        }
    }
}

impl std::fmt::Display for Objective {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl Serialize for Objective {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for Objective {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn objective_names_round_trip() {
        for name in [
            "decode_ms",
            "decode_ms@4096:pixel8",
            "worst:decode_ms",
            "mean:prefill_ms@512",
            "peak_memory:host-flex",
        ] {
            let o: Objective = name.parse().unwrap();
            assert_eq!(o.name(), name);
        }
        let o: Objective = "decode_ms:pixel8".parse().unwrap();
        assert_eq!(o.over, Over::Device("pixel8".into()));
        assert_eq!(o.metric, Metric::DecodeMs);
        let e = "decode_ms:pixel 8".parse::<Objective>().unwrap_err();
        assert!(e.contains("not a device name"), "{e}");
        let e = "worst:speed".parse::<Objective>().unwrap_err();
        assert!(e.contains("unknown metric `speed`"), "{e}");
    }
}
