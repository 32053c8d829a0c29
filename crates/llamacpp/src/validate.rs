//! Proving a llama.cpp profile: predictions against whole models timed by llama-bench in
//! the same run, beside llama-bench's agreement with itself (the first half of the rounds
//! against the second half, on the same files).

use crate::cost::LlamaCost;
use crate::run::ModelTiming;
use serde::{Deserialize, Serialize};
use tailor_cost::{Accuracy, Workload, accuracy, kendall_tau_b, median};
use tailor_spec::ModelSpec;

/// One validated model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub id: u64,
    pub spec: ModelSpec,
    /// tailor's exact count.
    pub params: u64,
    pub predicted_prefill_ms: f64,
    pub predicted_decode_ms: f64,
    pub predicted_memory_bytes: u64,
    /// Parts of the prediction scaled rather than measured.
    pub derived: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured: Option<ModelTiming>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// How well llama-bench agrees with itself over the same files in one run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SelfAgreement {
    /// Kendall's tau between the medians of the first and second half of the rounds.
    pub prefill_tau: f64,
    pub decode_tau: f64,
    /// Median over models of |half1 - half2| / mean: the engine's run-to-run spread.
    pub prefill_spread: f64,
    pub decode_spread: f64,
}

/// The result of a validation, as `validate.json` holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Validation {
    pub format_version: u32,
    pub engine: String,
    pub profile: String,
    pub space: String,
    pub workload: Workload,
    pub rounds: u64,
    pub prefill: Option<Accuracy>,
    pub decode: Option<Accuracy>,
    pub memory: Option<Accuracy>,
    /// `None` with fewer than two rounds.
    pub engine_self: Option<SelfAgreement>,
    /// Each round's level: the median over models of that round's time over the model's
    /// median. Rounds far apart mean the machine's speed changed during the run.
    pub round_ratios: RoundRatios,
    pub wall_s: f64,
    /// The drift check of the profile before the validation (`--no-recheck`: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_check: Option<crate::LlamaDrift>,
    /// Probe visits re-timed before the validation (`--remeasure`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub remeasured: usize,
    /// The level the predictions were scaled to (`--relevel`: whole anchor models timed
    /// first; their own validation is in `level/` beside this file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<tailor_cost::Level>,
    pub rows: Vec<Row>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The level of each round, prefill and decode.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RoundRatios {
    pub prefill: Vec<f64>,
    pub decode: Vec<f64>,
}

impl RoundRatios {
    /// Largest over smallest round level of prefill and of decode.
    pub fn range(&self) -> (f64, f64) {
        let r = |v: &[f64]| {
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(0.0, f64::max);
            if lo > 0.0 && lo.is_finite() {
                hi / lo
            } else {
                1.0
            }
        };
        (r(&self.prefill), r(&self.decode))
    }
}

/// Each round's level over the measured models.
pub fn round_ratios(rows: &[Row]) -> RoundRatios {
    let level = |f: &dyn Fn(&ModelTiming) -> &Vec<f64>| -> Vec<f64> {
        let series: Vec<&Vec<f64>> = rows
            .iter()
            .filter_map(|r| r.measured.as_ref())
            .map(f)
            .collect();
        let n = series.iter().map(|s| s.len()).min().unwrap_or(0);
        (0..n)
            .map(|i| median(series.iter().map(|s| s[i] / median(s.to_vec())).collect()))
            .collect()
    };
    RoundRatios {
        prefill: level(&|m| &m.prefill_rounds_ms),
        decode: level(&|m| &m.decode_rounds_ms),
    }
}

/// Predictions for `models` (id, spec).
pub fn predict_rows(cost: &LlamaCost, models: &[(u64, ModelSpec)], w: &Workload) -> Vec<Row> {
    models
        .iter()
        .map(|(id, spec)| {
            let p = cost.predict(spec, w);
            Row {
                id: *id,
                spec: spec.clone(),
                params: spec.total_params(),
                predicted_prefill_ms: p.estimate.prefill_ms,
                predicted_decode_ms: p.estimate.decode_ms_per_token,
                predicted_memory_bytes: p.estimate.peak_memory_bytes,
                derived: p.derived,
                measured: None,
                error: None,
            }
        })
        .collect()
}

fn halves(rounds: &[f64]) -> Option<(f64, f64)> {
    if rounds.len() < 2 {
        return None;
    }
    let mid = rounds.len() / 2;
    Some((
        median(rounds[..mid].to_vec()),
        median(rounds[mid..].to_vec()),
    ))
}

/// llama-bench against itself: first half of the rounds vs second half.
pub fn self_agreement(rows: &[Row]) -> Option<SelfAgreement> {
    let pairs = |f: &dyn Fn(&ModelTiming) -> &Vec<f64>| -> Option<(f64, f64)> {
        let hs: Vec<(f64, f64)> = rows
            .iter()
            .filter_map(|r| r.measured.as_ref())
            .filter_map(|m| halves(f(m)))
            .collect();
        if hs.len() < 2 {
            return None;
        }
        let (a, b): (Vec<f64>, Vec<f64>) = hs.iter().copied().unzip();
        let spread = median(
            hs.iter()
                .map(|(x, y)| (x - y).abs() / ((x + y) / 2.0))
                .collect(),
        );
        Some((kendall_tau_b(&a, &b), spread))
    };
    let (prefill_tau, prefill_spread) = pairs(&|m| &m.prefill_rounds_ms)?;
    let (decode_tau, decode_spread) = pairs(&|m| &m.decode_rounds_ms)?;
    Some(SelfAgreement {
        prefill_tau,
        decode_tau,
        prefill_spread,
        decode_spread,
    })
}

/// A predicted and a measured value of one row, where both exist.
type Pair<'a> = &'a dyn Fn(&Row, &ModelTiming) -> Option<(f64, f64)>;

/// Scores the measured rows: accuracy of prefill, decode and memory.
pub fn score(rows: &[Row]) -> (Option<Accuracy>, Option<Accuracy>, Option<Accuracy>) {
    let pairs = |f: Pair| -> Option<Accuracy> {
        let p: Vec<(f64, f64)> = rows
            .iter()
            .filter_map(|r| r.measured.as_ref().and_then(|m| f(r, m)))
            .collect();
        accuracy(&p)
    };
    (
        pairs(&|r, m| Some((r.predicted_prefill_ms, m.prefill_ms()))),
        pairs(&|r, m| Some((r.predicted_decode_ms, m.decode_ms()))),
        pairs(&|r, m| {
            m.peak_rss_bytes
                .map(|b| (r.predicted_memory_bytes as f64, b as f64))
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: u64, pre: f64, dec: f64, rounds: [f64; 4]) -> Row {
        Row {
            id,
            spec: ModelSpec::llama(256, 64, 2, 2, 1, 128),
            params: 1,
            predicted_prefill_ms: pre,
            predicted_decode_ms: dec,
            predicted_memory_bytes: 100,
            derived: Vec::new(),
            measured: Some(ModelTiming {
                prefill_rounds_ms: rounds.to_vec(),
                decode_rounds_ms: rounds.iter().map(|r| r / 10.0).collect(),
                peak_rss_bytes: Some(110),
                params: 1,
                file_bytes: 1,
            }),
            error: None,
        }
    }

    #[test]
    fn scores_and_self_agreement() {
        let rows = vec![
            row(0, 10.0, 1.0, [10.0, 10.2, 9.8, 10.0]),
            row(1, 20.0, 2.0, [21.0, 21.0, 22.0, 22.0]),
            row(2, 30.0, 3.0, [30.0, 31.0, 30.0, 31.0]),
        ];
        let (pre, dec, mem) = score(&rows);
        let pre = pre.unwrap();
        assert_eq!(pre.n, 3);
        assert_eq!(pre.within_10pct, 1.0);
        assert!((pre.kendall_tau - 1.0).abs() < 1e-12);
        assert!(dec.unwrap().within_10pct == 1.0);
        assert!((mem.unwrap().median_ratio - 1.1).abs() < 1e-12);
        let s = self_agreement(&rows).unwrap();
        let levels = round_ratios(&rows);
        assert_eq!(levels.prefill.len(), 4);
        assert!(levels.range().0 >= 1.0);
        assert!((s.prefill_tau - 1.0).abs() < 1e-12);
    }

    #[test]
    fn one_round_has_no_self_agreement() {
        let mut r = row(0, 1.0, 1.0, [1.0; 4]);
        if let Some(m) = r.measured.as_mut() {
            m.prefill_rounds_ms.truncate(1);
        }
        assert!(self_agreement(&[r.clone(), r]).is_none());
    }

    #[test]
    fn validate_json_round_trips_through_its_type() {
        let rows = vec![
            row(0, 10.0, 1.0, [10.0, 10.2, 9.8, 10.0]),
            row(1, 20.0, 2.0, [21.0, 21.0, 22.0, 22.0]),
        ];
        let (prefill, decode, memory) = score(&rows);
        let v = Validation {
            format_version: 1,
            engine: "llama.cpp".into(),
            profile: "profiles/host-llamacpp-q4_0.toml".into(),
            space: "search-spaces/quickstart.toml".into(),
            workload: Workload {
                prompt_tokens: 64,
                context: 256,
                precision: tailor_spec::Precision::for_weights(tailor_spec::DType::Q4_0),
            },
            rounds: 4,
            prefill,
            decode,
            memory,
            engine_self: self_agreement(&rows),
            round_ratios: round_ratios(&rows),
            wall_s: 1.0 / 3.0,
            profile_check: Some(crate::LlamaDrift {
                profile: "profiles/host-llamacpp-q4_0.toml".into(),
                measured: "2026-12-04T10:00:00Z".into(),
                phases: vec![crate::drift::PhaseDrift {
                    phase: crate::PhaseKey::Prefill { tokens: 64 },
                    entries: 2,
                    ratio: 0.93,
                }],
                wall_s: 3.5,
            }),
            remeasured: 6,
            level: tailor_cost::Level::new(
                vec![tailor_cost::Anchor {
                    id: 7,
                    params: 1000,
                    predicted_prefill_ms: 10.0,
                    measured_prefill_ms: 9.0,
                    predicted_decode_ms: 2.0,
                    measured_decode_ms: 2.2,
                }],
                "2026-12-04T22:00:00Z".into(),
            ),
            rows,
        };
        let text = serde_json::to_string_pretty(&v).unwrap();
        assert_eq!(serde_json::from_str::<Validation>(&text).unwrap(), v);
    }
}
