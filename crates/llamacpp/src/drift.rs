//! Is a llama.cpp profile still this machine? A small, fixed subset of its probe entries
//! re-timed now with llama-bench, compared per phase (each prefill length, each decode
//! context: compute and memory move apart), and the entries of the phases that moved
//! marked stale, so that profiling re-times the ones a space needs ([`crate::run::pending`]
//! treats a stale entry as not timed).
//!
//! The burn engine's check (`tailor_cost::drift`) compares classes of operators; a
//! llama.cpp profile holds whole probe models, so a phase is its class.

use crate::bench::LlamaBench;
use crate::profile::{LlamaProfile, Phase, Probe};
use crate::run::{RunError, pass_ms, test_of};
use crate::{Settings, WeightType, write_model};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

/// How far (0.10: 10%) a phase may be re-timed from its profile entries before the
/// profile no longer describes the machine (the burn engine's tolerance).
pub const TOLERANCE: f64 = tailor_cost::drift::TOLERANCE;

/// Entries re-timed per phase.
pub const PER_PHASE: usize = 2;

/// The entries a drift check re-times: per phase, [`PER_PHASE`] at fixed quantiles (1/4
/// and 3/4) of the phase's times, leaving out entries already marked stale. The same
/// profile always gives the same subset.
pub fn subset(profile: &LlamaProfile) -> Vec<(Probe, Phase, f64)> {
    let mut phases: BTreeMap<Phase, Vec<(Probe, f64)>> = BTreeMap::new();
    for e in profile.probes.iter().filter(|e| !e.stale) {
        phases
            .entry(e.phase)
            .or_default()
            .push((e.model, e.median_ms()));
    }
    let mut out = Vec::new();
    for (phase, mut entries) in phases {
        entries.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        let n = entries.len();
        let k = PER_PHASE.min(n);
        let mut picked: Vec<usize> = (0..k).map(|i| (2 * i + 1) * n / (2 * k)).collect();
        picked.dedup();
        out.extend(
            picked
                .into_iter()
                .map(|i| (entries[i].0, phase, entries[i].1)),
        );
    }
    out
}

/// One phase's drift: the median over its re-timed entries of (time now / profiled time).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseDrift {
    pub phase: Phase,
    pub entries: usize,
    pub ratio: f64,
}

/// A llama.cpp profile's subset re-timed on this machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlamaDrift {
    /// The profile, and when its probes were last measured (its `updated`).
    pub profile: String,
    pub measured: String,
    pub phases: Vec<PhaseDrift>,
    pub wall_s: f64,
}

impl LlamaDrift {
    /// From the re-timed subset: each entry's probe, phase, profiled and current ms.
    pub fn new(
        profile_path: &str,
        profile: &LlamaProfile,
        timed: &[(Probe, Phase, f64, f64)],
        wall_s: f64,
    ) -> Self {
        let mut phases: BTreeMap<Phase, Vec<f64>> = BTreeMap::new();
        for &(_, phase, then, now) in timed {
            if then > 0.0 && now.is_finite() {
                phases.entry(phase).or_default().push(now / then);
            }
        }
        Self {
            profile: profile_path.to_string(),
            measured: profile.provenance.updated.clone(),
            phases: phases
                .into_iter()
                .map(|(phase, r)| PhaseDrift {
                    phase,
                    entries: r.len(),
                    ratio: tailor_cost::median(r),
                })
                .collect(),
            wall_s,
        }
    }

    /// The phases more than `tolerance` away from the profile.
    pub fn drifted(&self, tolerance: f64) -> Vec<PhaseDrift> {
        self.phases
            .iter()
            .copied()
            .filter(|p| !p.ratio.is_finite() || (p.ratio - 1.0).abs() > tolerance)
            .collect()
    }

    /// Marks stale, in `profile`, every entry of a drifted phase and every entry with a
    /// round timed under load; returns how many were newly marked.
    pub fn mark_stale(&self, profile: &mut LlamaProfile, tolerance: f64) -> usize {
        let off: Vec<Phase> = self.drifted(tolerance).iter().map(|p| p.phase).collect();
        let mut n = 0;
        for e in &mut profile.probes {
            if !e.stale && (off.contains(&e.phase) || e.loaded_rounds > 0) {
                e.stale = true;
                n += 1;
            }
        }
        n
    }

    /// One line: `prefill 64 1.02x, decode at 256 0.97x`.
    pub fn summary(&self) -> String {
        self.phases
            .iter()
            .map(|p| format!("{} {:.2}x", p.phase, p.ratio))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Re-times [`subset`] of `profile` with `bench` (one llama-bench run per entry, with the
/// profile's own method and `settings`), each probe's GGUF written into `work_dir` and
/// removed after its run.
pub fn check(
    bench: &LlamaBench,
    profile_path: &Path,
    profile: &LlamaProfile,
    weights: WeightType,
    settings: &Settings,
    work_dir: &Path,
    seed: u64,
) -> Result<LlamaDrift, RunError> {
    let started = Instant::now();
    std::fs::create_dir_all(work_dir).map_err(|error| RunError::CreateDir {
        path: work_dir.to_path_buf(),
        error,
    })?;
    let mut timed = Vec::new();
    for (probe, phase, then) in subset(profile) {
        let path = work_dir.join(format!("{}.gguf", probe.label()));
        write_model(&probe.spec(), weights, &probe.label(), &path, seed)?;
        let run = bench.run(&[&path], test_of(phase, &profile.method), settings, true);
        let _ = std::fs::remove_file(&path);
        let run = run?;
        let (now, _, _) = pass_ms(&run.records[0], phase);
        timed.push((probe, phase, then, now));
    }
    Ok(LlamaDrift::new(
        &profile_path.display().to_string(),
        profile,
        &timed,
        started.elapsed().as_secs_f64(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::tests::profile;

    /// The profile's subset as re-timed on a machine where the entries of `slow` take `k`
    /// times their profiled time and the others as profiled.
    fn retimed(p: &LlamaProfile, slow: Phase, k: f64) -> Vec<(Probe, Phase, f64, f64)> {
        subset(p)
            .into_iter()
            .map(|(probe, phase, then)| {
                let k = if phase == slow { k } else { 1.0 };
                (probe, phase, then, k * then)
            })
            .collect()
    }

    #[test]
    fn the_subset_is_fixed_and_spans_every_phase() {
        let p = profile();
        let a = subset(&p);
        assert_eq!(a, subset(&p));
        let phases: std::collections::BTreeSet<_> = p.probes.iter().map(|e| e.phase).collect();
        let covered: std::collections::BTreeSet<_> = a.iter().map(|x| x.1).collect();
        assert_eq!(covered, phases);
        assert!(a.len() <= PER_PHASE * phases.len());
    }

    #[test]
    fn a_phase_slowed_on_purpose_is_marked_stale_and_profiling_times_it_again() {
        let mut p = profile();
        let decode = p
            .probes
            .iter()
            .map(|e| e.phase)
            .find(|ph| matches!(ph, Phase::Decode { .. }))
            .unwrap();
        let d = LlamaDrift::new("p.toml", &p, &retimed(&p, decode, 1.5), 1.0);
        let off = d.drifted(TOLERANCE);
        assert_eq!(off.len(), 1);
        assert_eq!(off[0].phase, decode);
        assert!((off[0].ratio - 1.5).abs() < 1e-9);
        assert!(d.summary().contains("decode at"), "{}", d.summary());
        let n = d.mark_stale(&mut p, TOLERANCE);
        let of_decode = p.probes.iter().filter(|e| e.phase == decode).count();
        assert_eq!(n, of_decode);
        assert!(p.probes.iter().all(|e| e.stale == (e.phase == decode)));
        // Marked twice, counted once; the file round-trips the marks.
        assert_eq!(d.mark_stale(&mut p, TOLERANCE), 0);
        let back = LlamaProfile::parse(Path::new("p.toml"), &p.to_toml().unwrap()).unwrap();
        assert_eq!(back, p);
        // Stale entries are left out of the next check's subset.
        assert!(subset(&p).iter().all(|x| x.1 != decode));
        // A job over the profile's probes and phases: the stale ones are pending again.
        let probes: Vec<Probe> = {
            let mut v: Vec<Probe> = p.probes.iter().map(|e| e.model).collect();
            v.sort();
            v.dedup();
            v
        };
        let job = crate::run::ProfileJob {
            name: "t".into(),
            probes: probes.clone(),
            phases: p.phases().into_iter().collect(),
            weights: WeightType::Q4_0,
            settings: Settings::default(),
            method: p.method,
            work_dir: "w".into(),
            seed: 0,
            limit: None,
        };
        let pending = crate::run::pending(&p, &job);
        let rounds = u64::from(p.method.rounds);
        assert_eq!(pending.len() as u64, probes.len() as u64 * rounds);
    }

    #[test]
    fn a_steady_machine_drifts_nowhere() {
        let p = profile();
        let timed: Vec<_> = subset(&p)
            .into_iter()
            .map(|(probe, phase, then)| (probe, phase, then, then * 1.03))
            .collect();
        let d = LlamaDrift::new("p.toml", &p, &timed, 1.0);
        assert!(d.drifted(TOLERANCE).is_empty(), "{}", d.summary());
        let mut q = p.clone();
        assert_eq!(d.mark_stale(&mut q, TOLERANCE), 0);
        assert_eq!(q, p);
    }
}
