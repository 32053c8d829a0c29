//! A profile's level set by whole models: a few models of the space built and timed whole
//! on this machine now, against the profile's prediction for them. Their measured /
//! predicted ratios, one for the prefill and one for the decode step, scale every later
//! prediction of that phase.
//!
//! Why: on a shared VM, operators timed in a loop (the profile, and the drift check's
//! subset) were measured to move 10-18% with the machine's state while whole models,
//! whose steps chain operators, did not (docs/results/2026-12-03-interleaving.md). A
//! profile's entries give the shape of the costs (the ranking: Kendall tau 0.93-0.98);
//! the level of whole models now is best measured on whole models. The anchors are chosen
//! by a fixed rule (not after seeing their times), and `tailor validate` keeps them out of
//! the models it validates, so the level is checked on models it was not set on.

use crate::median;
use serde::{Deserialize, Serialize};

/// One anchor: a whole model's prediction (by the profile before levelling) and its
/// measured time here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Anchor {
    /// Its candidate id in the space.
    pub id: u64,
    pub params: u64,
    pub predicted_prefill_ms: f64,
    pub measured_prefill_ms: f64,
    pub predicted_decode_ms: f64,
    pub measured_decode_ms: f64,
}

impl Anchor {
    pub fn prefill_ratio(&self) -> f64 {
        self.measured_prefill_ms / self.predicted_prefill_ms
    }

    pub fn decode_ratio(&self) -> f64 {
        self.measured_decode_ms / self.predicted_decode_ms
    }

    fn usable(&self) -> bool {
        [self.prefill_ratio(), self.decode_ratio()]
            .iter()
            .all(|r| r.is_finite() && *r > 0.0)
    }
}

/// The level of a profile's predictions on this machine now: measured / predicted over
/// the anchors, per phase (the median; with two anchors their mean).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Level {
    /// Every prefill prediction is scaled by this.
    pub prefill: f64,
    /// Every decode-step prediction is scaled by this.
    pub decode: f64,
    /// When the anchors were timed (UTC).
    pub measured: String,
    pub anchors: Vec<Anchor>,
}

impl Level {
    /// From the anchors timed (those with a positive, finite time and prediction count);
    /// `None` when none is usable.
    pub fn new(anchors: Vec<Anchor>, measured: String) -> Option<Self> {
        let anchors: Vec<Anchor> = anchors.into_iter().filter(Anchor::usable).collect();
        if anchors.is_empty() {
            return None;
        }
        Some(Self {
            prefill: median(anchors.iter().map(Anchor::prefill_ratio).collect()),
            decode: median(anchors.iter().map(Anchor::decode_ratio).collect()),
            measured,
            anchors,
        })
    }

    /// How far apart the anchors' own ratios are, per phase: (max - min) / level. Where
    /// this is large, the profile's error is not one level but depends on the model, and
    /// a level cannot fix it.
    pub fn disagreement(&self) -> (f64, f64) {
        let spread = |f: fn(&Anchor) -> f64, level: f64| {
            let rs: Vec<f64> = self.anchors.iter().map(f).collect();
            let (lo, hi) = rs.iter().fold((f64::INFINITY, 0.0_f64), |(lo, hi), &r| {
                (lo.min(r), hi.max(r))
            });
            (hi - lo) / level
        };
        (
            spread(Anchor::prefill_ratio, self.prefill),
            spread(Anchor::decode_ratio, self.decode),
        )
    }

    /// One line: `prefill x1.19, decode x1.07 (2 whole models: 12 (18.2M), 301 (64.0M))`.
    pub fn summary(&self) -> String {
        let anchors: Vec<String> = self
            .anchors
            .iter()
            .map(|a| {
                format!(
                    "{} ({:.1}M: {:.2}/{:.2})",
                    a.id,
                    a.params as f64 / 1e6,
                    a.prefill_ratio(),
                    a.decode_ratio()
                )
            })
            .collect();
        format!(
            "prefill x{:.3}, decode x{:.3} (measured/predicted over {} whole model{}: {})",
            self.prefill,
            self.decode,
            self.anchors.len(),
            if self.anchors.len() == 1 { "" } else { "s" },
            anchors.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::{Anchor, Level};

    fn anchor(id: u64, p: (f64, f64), d: (f64, f64)) -> Anchor {
        Anchor {
            id,
            params: 1_000_000 * id,
            predicted_prefill_ms: p.0,
            measured_prefill_ms: p.1,
            predicted_decode_ms: d.0,
            measured_decode_ms: d.1,
        }
    }

    #[test]
    fn the_level_is_the_median_ratio_of_each_phase() {
        let l = Level::new(
            vec![
                anchor(1, (10.0, 12.0), (2.0, 2.0)),
                anchor(2, (20.0, 22.0), (4.0, 3.6)),
                anchor(3, (40.0, 44.0), (8.0, 8.8)),
            ],
            "t".into(),
        )
        .unwrap();
        assert!((l.prefill - 1.1).abs() < 1e-12, "{l:?}");
        assert!((l.decode - 1.0).abs() < 1e-12, "{l:?}");
        let (p, d) = l.disagreement();
        assert!((p - 0.1 / 1.1).abs() < 1e-12);
        assert!((d - 0.2).abs() < 1e-12);
        let two = Level::new(
            vec![
                anchor(1, (10.0, 12.0), (2.0, 2.0)),
                anchor(2, (20.0, 20.0), (4.0, 5.0)),
            ],
            "t".into(),
        )
        .unwrap();
        assert!((two.prefill - 1.1).abs() < 1e-12);
        assert!((two.decode - 1.125).abs() < 1e-12);
        assert!(two.summary().starts_with("prefill x1.100, decode x1.125 (measured/predicted over 2 whole models: 1 (1.0M: 1.20/1.00)"), "{}", two.summary());
    }

    #[test]
    fn anchors_without_a_usable_time_are_left_out() {
        assert_eq!(
            Level::new(vec![anchor(1, (0.0, 12.0), (2.0, 2.0))], "t".into()),
            None
        );
        let l = Level::new(
            vec![
                anchor(1, (10.0, f64::NAN), (2.0, 2.0)),
                anchor(2, (10.0, 5.0), (2.0, 1.0)),
            ],
            "t".into(),
        )
        .unwrap();
        assert_eq!(l.anchors.len(), 1);
        assert_eq!((l.prefill, l.decode), (0.5, 0.5));
        let round = toml::to_string(&l).unwrap();
        assert_eq!(toml::from_str::<Level>(&round).unwrap(), l);
    }
}
