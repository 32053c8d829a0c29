//! Is a profile still this machine? A small, fixed subset of its entries re-timed now,
//! compared per class of operator (its group of the time breakdown, in prefill or in
//! decode: the two move apart, compute against memory), and which entries are stale.
//!
//! The subset and the arithmetic live here (no burn); `tailor-profiler` times the subset.

use crate::profile::{Entry, OpShape, Profile};
use serde::{Deserialize, Serialize};
use tailor_spec::OpGroup;

/// Where an operator runs: in the prefill (many rows) or in a decode step (one row).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pass {
    Prefill,
    Decode,
    /// Forward and backward on the autodiff device (an edit's backpropagation step).
    Grad,
}

impl OpShape {
    /// Rows the operator processes: tokens, or queries for attention (the LM head: one).
    pub fn rows(&self) -> u64 {
        match self {
            OpShape::Embedding { tokens, .. }
            | OpShape::Norm { tokens, .. }
            | OpShape::Residual { tokens, .. }
            | OpShape::Linear { tokens, .. }
            | OpShape::Ffn { tokens, .. }
            | OpShape::Gate { tokens, .. }
            | OpShape::ShortConv { tokens, .. }
            | OpShape::LinearAttention { tokens, .. } => *tokens,
            OpShape::Attention { q_len, .. } => *q_len,
            OpShape::LmHead { tokens, .. } => *tokens,
            OpShape::Grad { of } => of.rows(),
        }
    }

    /// The class a drift check compares it in.
    pub fn class(&self) -> (OpGroup, Pass) {
        let pass = if matches!(self, OpShape::Grad { .. }) {
            Pass::Grad
        } else if self.rows() > 1 {
            Pass::Prefill
        } else {
            Pass::Decode
        };
        (self.group(), pass)
    }
}

/// How far (0.10: 10%) a class of operators may be re-timed from its profile entries
/// before the profile no longer describes the machine.
pub const TOLERANCE: f64 = 0.10;

/// Entries re-timed per class.
pub const PER_CLASS: usize = 3;
/// Entries faster than this are left out of the subset where a class has slower ones:
/// their times are mostly the timer's and the call's overhead.
const MIN_US: f64 = 20.0;

/// The entries a drift check re-times: per class, [`PER_CLASS`] at fixed quantiles of the
/// class's times (from its entries of at least 20 us where there are enough). The same
/// profile always gives the same subset.
pub fn subset(profile: &Profile) -> Vec<&Entry> {
    let mut classes: std::collections::BTreeMap<(OpGroup, Pass), Vec<&Entry>> = Default::default();
    // Entries already marked stale are known not to describe the machine: re-timing them
    // would only say so again.
    for e in profile.entries.iter().filter(|e| !e.stale) {
        classes.entry(e.shape.class()).or_default().push(e);
    }
    let mut out = Vec::new();
    for (_, mut entries) in classes {
        entries.sort_by(|a, b| a.median_us.total_cmp(&b.median_us));
        let slow: Vec<&Entry> = entries
            .iter()
            .copied()
            .filter(|e| e.median_us >= MIN_US)
            .collect();
        let pool = if slow.len() >= PER_CLASS {
            slow
        } else {
            entries
        };
        let n = pool.len();
        let mut picked: Vec<usize> = (0..PER_CLASS.min(n))
            .map(|i| (2 * i + 1) * n / (2 * PER_CLASS.min(n)))
            .collect();
        picked.dedup();
        out.extend(picked.into_iter().map(|i| pool[i]));
    }
    out
}

/// One class's drift: the median over its re-timed entries of (time now / profiled time).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClassDrift {
    pub group: OpGroup,
    pub pass: Pass,
    pub entries: usize,
    pub ratio: f64,
}

/// A profile's subset re-timed on this machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    /// The profile, and when its entries were last measured (its `updated`).
    pub profile: String,
    pub measured: String,
    pub classes: Vec<ClassDrift>,
    /// Peak matmul and read bandwidth now over the profile's roofline probes (`None`
    /// where the profile has none).
    pub matmul_ratio: Option<f64>,
    pub bandwidth_ratio: Option<f64>,
    pub wall_s: f64,
}

impl Drift {
    /// From the re-timed subset: each entry's shape and its median now, microseconds.
    pub fn new(
        profile_path: &str,
        profile: &Profile,
        now_us: &[(OpShape, f64)],
        roofline_now: Option<(f64, f64)>,
        wall_s: f64,
    ) -> Self {
        let mut classes: std::collections::BTreeMap<(OpGroup, Pass), Vec<f64>> = Default::default();
        for (shape, us) in now_us {
            if let Some(e) = profile.entry(shape).filter(|e| e.median_us > 0.0) {
                classes
                    .entry(shape.class())
                    .or_default()
                    .push(us / e.median_us);
            }
        }
        let (matmul_ratio, bandwidth_ratio) = match (roofline_now, &profile.roofline) {
            (Some((gflops, gbs)), Some(r)) => (
                // Time ratios: a slower machine has a ratio above 1, as for the entries.
                (gflops > 0.0).then(|| r.matmul_gflops / gflops),
                (gbs > 0.0).then(|| r.bandwidth_gbs / gbs),
            ),
            _ => (None, None),
        };
        Self {
            profile: profile_path.to_string(),
            measured: profile.provenance.updated.clone(),
            classes: classes
                .into_iter()
                .map(|((group, pass), ratios)| ClassDrift {
                    group,
                    pass,
                    entries: ratios.len(),
                    ratio: crate::median(ratios),
                })
                .collect(),
            matmul_ratio,
            bandwidth_ratio,
            wall_s,
        }
    }

    /// The classes more than `tolerance` (0.10: 10%) away from the profile.
    pub fn drifted(&self, tolerance: f64) -> Vec<ClassDrift> {
        self.classes
            .iter()
            .copied()
            .filter(|c| (c.ratio - 1.0).abs() > tolerance)
            .collect()
    }

    /// The entries to re-measure after this check: every entry of a class more than
    /// `tolerance` away, and of a class the check could not re-time (too few entries) when
    /// the median of its pass drifted that far; every entry with a session timed under
    /// load ([`Entry::loaded`]), whatever its class: its time is suspect by the profiler's
    /// own record; and every entry an earlier check marked [`Entry::stale`]. In the
    /// profile's order.
    pub fn stale_shapes(&self, profile: &Profile, tolerance: f64) -> Vec<OpShape> {
        let off = |r: f64| !r.is_finite() || (r - 1.0).abs() > tolerance;
        profile
            .entries
            .iter()
            .filter(|e| {
                if e.loaded() || e.stale {
                    return true;
                }
                let (group, pass) = e.shape.class();
                match self.class_ratio(group, pass) {
                    Some(r) => off(r),
                    None => self.pass_ratio(pass).is_some_and(off),
                }
            })
            .map(|e| e.shape.clone())
            .collect()
    }

    /// What a run that needs the shapes `needed` does about this check: re-measure the
    /// stale entries it needs, mark the stale ones it does not need in the file (a later
    /// run that needs them re-measures them), and re-measure the roofline probes when they
    /// moved. A space re-measures its own entries only, however many the file holds.
    pub fn plan(
        &self,
        profile: &Profile,
        needed: &std::collections::BTreeSet<OpShape>,
        tolerance: f64,
    ) -> Remeasure {
        let (measure, mark) = self
            .stale_shapes(profile, tolerance)
            .into_iter()
            .partition(|s| needed.contains(s));
        Remeasure {
            measure,
            mark,
            roofline: self.roofline_drifted(tolerance),
        }
    }

    /// The ratio of one class, where the check re-timed it.
    fn class_ratio(&self, group: OpGroup, pass: Pass) -> Option<f64> {
        self.classes
            .iter()
            .find(|c| c.group == group && c.pass == pass)
            .map(|c| c.ratio)
    }

    /// The median ratio of the classes of `pass`, where the check re-timed any.
    fn pass_ratio(&self, pass: Pass) -> Option<f64> {
        let r: Vec<f64> = self
            .classes
            .iter()
            .filter(|c| c.pass == pass)
            .map(|c| c.ratio)
            .collect();
        (!r.is_empty()).then(|| crate::median(r))
    }

    /// The roofline probes moved more than `tolerance` (they are re-measured with the
    /// stale entries).
    pub fn roofline_drifted(&self, tolerance: f64) -> bool {
        [self.matmul_ratio, self.bandwidth_ratio]
            .into_iter()
            .flatten()
            .any(|r| !r.is_finite() || (r - 1.0).abs() > tolerance)
    }

    /// One line: `prefill attention 1.02x (3), ...`.
    pub fn summary(&self) -> String {
        let mut parts: Vec<String> = self
            .classes
            .iter()
            .map(|c| {
                format!(
                    "{} {} {:.2}x",
                    match c.pass {
                        Pass::Prefill => "prefill",
                        Pass::Decode => "decode",
                        Pass::Grad => "grad",
                    },
                    match c.group {
                        OpGroup::Attention => "attention",
                        OpGroup::Ffn => "ffn",
                        OpGroup::LmHead => "lm_head",
                        OpGroup::Other => "other",
                    },
                    c.ratio
                )
            })
            .collect();
        if let Some(m) = self.matmul_ratio {
            parts.push(format!("peak matmul {m:.2}x"));
        }
        if let Some(b) = self.bandwidth_ratio {
            parts.push(format!("bandwidth {b:.2}x"));
        }
        parts.join(", ")
    }
}

/// What a run re-measures after a drift check ([`Drift::plan`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Remeasure {
    /// Stale entries the run needs, in the profile's order: re-measured now.
    pub measure: Vec<OpShape>,
    /// Stale entries the run does not need: marked [`Entry::stale`] in the file.
    pub mark: Vec<OpShape>,
    /// The roofline probes moved: re-measured with the entries.
    pub roofline: bool,
}

impl Remeasure {
    /// Nothing to re-measure (the marks may still be written).
    pub fn is_empty(&self) -> bool {
        self.measure.is_empty() && !self.roofline
    }
}

/// `profile` with the entries of `shapes` marked [`Entry::stale`]; whether any mark was
/// new.
pub fn mark_stale(profile: &mut Profile, shapes: &[OpShape]) -> bool {
    let mut changed = false;
    for e in profile.entries.iter_mut() {
        if !e.stale && shapes.contains(&e.shape) {
            e.stale = true;
            changed = true;
        }
    }
    changed
}

/// `stale` with the entries (and the roofline, where there is one) of `fresh`, a profile
/// of the same setup that re-measured some of its shapes: each fresh entry replaces the
/// stale entry of its shape in place (or is added), and `updated` becomes `fresh`'s. Every
/// other entry, the memory probe and `created` stay as they were.
pub fn merge_remeasured(stale: &Profile, fresh: &Profile) -> Profile {
    let mut p = stale.clone();
    for e in &fresh.entries {
        match p.entries.iter_mut().find(|old| old.shape == e.shape) {
            Some(old) => *old = e.clone(),
            None => p.entries.push(e.clone()),
        }
    }
    if fresh.roofline.is_some() {
        p.roofline = fresh.roofline;
    }
    p.provenance.updated = fresh.provenance.updated.clone();
    p
}

#[cfg(test)]
mod tests {
    use super::{Drift, Pass, merge_remeasured, subset};
    use crate::profile::tests::sample_profile;
    use crate::profile::{OpShape, Profile};

    /// The profile's subset as re-timed on a machine where the operators of `pass` take
    /// `k` times their profiled time and the others as profiled.
    fn retimed(p: &Profile, pass: Pass, k: f64) -> Vec<(OpShape, f64)> {
        subset(p)
            .into_iter()
            .map(|e| {
                let k = if e.shape.class().1 == pass { k } else { 1.0 };
                (e.shape.clone(), k * e.median_us)
            })
            .collect()
    }

    #[test]
    fn the_subset_is_fixed_and_spans_every_class() {
        let p = sample_profile();
        let a: Vec<_> = subset(&p).into_iter().map(|e| e.shape.clone()).collect();
        let b: Vec<_> = subset(&p).into_iter().map(|e| e.shape.clone()).collect();
        assert_eq!(a, b);
        let classes: std::collections::BTreeSet<_> =
            p.entries.iter().map(|e| e.shape.class()).collect();
        let covered: std::collections::BTreeSet<_> = a.iter().map(|s| s.class()).collect();
        assert_eq!(covered, classes);
        assert!(a.len() <= 3 * classes.len());
    }

    /// A space needing part of a drifted profile re-measures that part only; the rest is
    /// marked stale, left out of the next check's subset, and stale for the next plan
    /// whatever that check finds.
    #[test]
    fn a_plan_re_measures_the_needed_entries_and_marks_the_rest() {
        let mut p = sample_profile();
        let d = Drift::new("p.toml", &p, &retimed(&p, Pass::Decode, 2.0), None, 1.0);
        let stale = d.stale_shapes(&p, 0.10);
        assert!(stale.len() >= 2, "{stale:?}");
        let needed: std::collections::BTreeSet<OpShape> = p
            .entries
            .iter()
            .map(|e| e.shape.clone())
            .step_by(2)
            .collect();
        let plan = d.plan(&p, &needed, 0.10);
        assert!(!plan.roofline);
        assert_eq!(plan.measure.len() + plan.mark.len(), stale.len());
        assert!(plan.measure.iter().all(|s| needed.contains(s)));
        assert!(plan.mark.iter().all(|s| !needed.contains(s)));
        assert!(!plan.is_empty() && !plan.mark.is_empty());

        assert!(super::mark_stale(&mut p, &plan.mark));
        assert!(!super::mark_stale(&mut p, &plan.mark), "marked once");
        assert_eq!(
            p.entries.iter().filter(|e| e.stale).count(),
            plan.mark.len()
        );
        let back = Profile::parse(std::path::Path::new("p.toml"), &p.to_toml().unwrap()).unwrap();
        assert_eq!(back, p, "the marks round-trip");
        assert!(subset(&p).iter().all(|e| !e.stale));
        // The machine is steady now: the marked entries are still stale, the rest not.
        let steady = Drift::new("p.toml", &p, &retimed(&p, Pass::Decode, 1.0), None, 1.0);
        assert_eq!(steady.stale_shapes(&p, 0.10), plan.mark);
    }

    #[test]
    fn a_profile_scaled_on_purpose_is_seen_in_the_classes_it_moved() {
        let p = sample_profile();
        // The machine now runs every prefill operator at twice the profile's time and
        // every decode operator as profiled.
        let now = retimed(&p, Pass::Prefill, 2.0);
        let d = Drift::new("p.toml", &p, &now, None, 1.0);
        let drifted = d.drifted(0.10);
        assert!(!drifted.is_empty() && drifted.iter().all(|c| c.pass == Pass::Prefill));
        assert!(drifted.iter().all(|c| (c.ratio - 2.0).abs() < 1e-9));
        assert!(d.summary().contains("prefill"));
        assert!(
            d.stale_shapes(&p, 0.10)
                .iter()
                .all(|s| s.class().1 == Pass::Prefill)
        );
    }

    #[test]
    fn stale_entries_are_those_of_drifted_classes_and_a_merge_replaces_only_them() {
        let p = sample_profile();
        // Decode operators run at 1.5x their profiled time now; prefill ones as profiled.
        let now = retimed(&p, Pass::Decode, 1.5);
        let d = Drift::new("p.toml", &p, &now, Some((100.0, 30.0)), 1.0);
        let stale = d.stale_shapes(&p, 0.10);
        let decode: Vec<_> = p
            .entries
            .iter()
            .filter(|e| e.shape.class().1 == Pass::Decode)
            .map(|e| e.shape.clone())
            .collect();
        assert_eq!(stale, decode);
        // An entry timed under load is re-measured whatever its class.
        let mut loaded = p.clone();
        let first_prefill = loaded
            .entries
            .iter()
            .position(|e| e.shape.class().1 == Pass::Prefill)
            .unwrap();
        loaded.entries[first_prefill]
            .conditions
            .push(crate::Conditions {
                temp_before_c: None,
                temp_after_c: None,
                throttled: false,
                other_load: Some(0.5),
                steal: Some(0.0),
                loaded: true,
            });
        let with_loaded = d.stale_shapes(&loaded, 0.10);
        assert_eq!(with_loaded.len(), decode.len() + 1);
        assert!(with_loaded.contains(&loaded.entries[first_prefill].shape));
        // The profile's probes: 100 GFLOP/s and 30 GB/s; measured the same now.
        assert!(!d.roofline_drifted(0.10));
        let slow = Drift::new("p.toml", &p, &now, Some((50.0, 30.0)), 1.0);
        assert!(slow.roofline_drifted(0.10));

        // The stale entries re-measured at the new level, merged back.
        let mut fresh = p.clone();
        fresh.entries.retain(|e| stale.contains(&e.shape));
        for e in &mut fresh.entries {
            e.median_us *= 1.5;
        }
        fresh.provenance.updated = "2026-12-02T18:00:00Z".into();
        let merged = merge_remeasured(&p, &fresh);
        assert_eq!(merged.entries.len(), p.entries.len());
        for (old, new) in p.entries.iter().zip(&merged.entries) {
            assert_eq!(old.shape, new.shape, "the order is kept");
            let k = if stale.contains(&old.shape) { 1.5 } else { 1.0 };
            assert_eq!(new.median_us, k * old.median_us);
        }
        assert_eq!(merged.provenance.updated, "2026-12-02T18:00:00Z");
        assert_eq!(merged.provenance.created, p.provenance.created);
        assert_eq!(merged.roofline, p.roofline);
        // Re-checked against the merged profile, nothing drifts.
        let again = Drift::new("p.toml", &merged, &now, None, 1.0);
        assert!(again.drifted(0.10).is_empty(), "{}", again.summary());
    }
}
