//! Strategies: exhaustive (streamed in chunks), seeded random sampling, NSGA-II.
//! Evaluation runs in parallel (rayon) and results come back in a deterministic order, so
//! a seed reproduces a search exactly.

use crate::metrics::{
    Across, AtValue, CONSTRAINT_NAMES, DeviceMetrics, Metric, Metrics, Objective, Over, violations,
    violations_on,
};
use crate::pareto::{crowding_distance, dominates, front_indices, non_dominated_sort};
use crate::space::{AXES, Genome, SearchSpace, SkipReason};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;
use tailor_cost::{CostModel, EditEstimate, Estimate};
use tailor_spec::ModelSpec;

/// How the space is explored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Every point, streamed in chunks (the space is never materialised).
    Exhaustive,
    /// `budget` distinct points drawn uniformly with the seed.
    Random,
    /// NSGA-II: non-dominated sorting, crowding distance, constraint domination.
    Nsga2,
}

impl Strategy {
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Exhaustive => "exhaustive",
            Strategy::Random => "random",
            Strategy::Nsga2 => "nsga2",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchOptions {
    pub strategy: Strategy,
    /// Candidates to price with the cost model (random, nsga2); `None`: all for random,
    /// 2000 for nsga2. Points that are not buildable, or that break a static constraint
    /// (parameters, aspect ratio), are recorded without pricing and cost no budget.
    pub budget: Option<u64>,
    pub seed: u64,
    /// NSGA-II population; `None`: budget / 8, between 8 and 100.
    pub population: Option<usize>,
}

/// About how many bytes one row of candidates.csv takes (127-140 on the shipped spaces).
pub const CSV_ROW_BYTES: u64 = 140;

impl SearchOptions {
    /// The most rows candidates.csv can get where no budget bounds them: every point of
    /// the space for an exhaustive search and for a random one without a budget; `None`
    /// where the budget bounds the search.
    pub fn unbounded_rows(&self, space: &SearchSpace) -> Option<u64> {
        match (self.strategy, self.budget) {
            (Strategy::Exhaustive, _) | (Strategy::Random, None) => Some(space.size()),
            _ => None,
        }
    }
}

/// Told how far a search has got.
pub trait Progress: Sync {
    fn start(&self, _total: u64) {}
    fn advance(&self, _n: u64) {}
}

/// Progress that goes nowhere.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;
impl Progress for NoProgress {}

/// One evaluated (buildable) candidate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    pub id: u64,
    pub spec: ModelSpec,
    pub metrics: Metrics,
    /// `None` when a static constraint excluded the candidate before pricing.
    pub estimate: Option<Estimate>,
    /// The edit's cost, where the space has `[workload.edit]` and the cost model prices it.
    pub edit: Option<Box<EditEstimate>>,
    /// Violated constraints: (index into [`SearchSpace::constraint_names`], relative
    /// violation).
    pub violations: Vec<(usize, f64)>,
    /// Their names, `; `-separated (empty when feasible).
    pub why: String,
    /// Objective values, all to be minimised (maximised ones negated).
    pub objectives: Vec<f64>,
}

impl Candidate {
    pub fn is_priced(&self) -> bool {
        self.estimate.is_some()
    }

    pub fn feasible(&self) -> bool {
        self.violations.is_empty()
    }

    pub fn total_violation(&self) -> f64 {
        self.violations.iter().map(|(_, v)| v).sum()
    }

    /// The violated constraints' names, `a; b`, or empty.
    pub fn why_not(&self) -> String {
        self.why.clone()
    }
}

/// Deb's constraint domination: feasible beats infeasible, less violation beats more,
/// and among feasible candidates Pareto dominance decides.
pub fn constrained_dominates(a: &Candidate, b: &Candidate) -> bool {
    match (a.feasible(), b.feasible()) {
        (true, false) => true,
        (false, true) => false,
        (false, false) => a.total_violation() < b.total_violation(),
        (true, true) => dominates(&a.objectives, &b.objectives),
    }
}

/// What a search found.
#[derive(Debug, Clone)]
pub struct SearchOutcome {
    pub strategy: Strategy,
    pub seed: u64,
    pub budget: Option<u64>,
    /// Distinct points of the space examined (buildable or not).
    pub seen: u64,
    /// Buildable candidates recorded (priced or excluded by a static constraint).
    pub evaluated: u64,
    /// Candidates priced by the cost model.
    pub priced: u64,
    pub feasible: u64,
    /// Points that are not buildable models, by reason.
    pub skipped: BTreeMap<SkipReason, u64>,
    /// Every constraint's name ([`SearchSpace::constraint_names`]), the order of the
    /// counts below.
    pub constraint_names: Vec<String>,
    /// Evaluated candidates violating each constraint.
    pub violated: Vec<u64>,
    /// Evaluated candidates violating only that constraint.
    pub violated_alone: Vec<u64>,
    /// The Pareto front of all feasible evaluated candidates, by id.
    pub front: Vec<Candidate>,
    /// Index into `front` of the pick.
    pub pick: Option<usize>,
    /// Over a set of devices: what each device alone would get (empty over one device).
    pub devices: Vec<DeviceOutcome>,
    pub wall_s: f64,
}

/// One device of a set after the search: its own front and pick (the space as that device
/// alone sees it, [`SearchSpace::for_device`], over the candidates the search priced), and
/// its best value of each metric the space's worst and mean objectives read.
#[derive(Debug, Clone)]
pub struct DeviceOutcome {
    pub name: String,
    pub weight: f64,
    /// Candidates feasible on this device.
    pub feasible: u64,
    /// Its front, by id: non-dominated in the objectives read on this device alone.
    pub front: Vec<Candidate>,
    /// Index into `front` of its own pick (the pick rule on this device).
    pub pick: Option<usize>,
    /// Its best (lowest) value of each metric a worst or mean objective reads, over the
    /// candidates feasible on it: the denominators of the ratios.
    pub best: Vec<AtValue>,
}

impl SearchOutcome {
    /// Fills `m`'s worst and mean values ([`Metrics::across`]) from each device's best: for
    /// candidates priced after the search (references, a validation's models).
    pub fn fill_across(&self, space: &SearchSpace, m: &mut Metrics) {
        fill_across(space, &self.devices, m);
    }
}

impl SearchOutcome {
    /// Why no candidate is feasible, for an error message (`None` if some are).
    pub fn emptiness(&self) -> Option<String> {
        if self.feasible > 0 {
            return None;
        }
        if self.evaluated == 0 {
            let reasons: Vec<String> = self
                .skipped
                .iter()
                .map(|(r, n)| format!("{n} {r}"))
                .collect();
            return Some(format!(
                "none of the {} points examined is a buildable model ({}); fix the dimensions under [model]",
                self.seen,
                reasons.join(", ")
            ));
        }
        let mut parts = Vec::new();
        let mut culprits = Vec::new();
        for (i, name) in self.constraint_names.iter().enumerate() {
            if self.violated[i] > 0 {
                parts.push(format!("{name} excludes {}", self.violated[i]));
            }
            if self.violated[i] == self.evaluated {
                culprits.push(name.as_str());
            }
        }
        let verdict = if culprits.is_empty() {
            "no single constraint excludes them all; together they do: relax one".to_string()
        } else {
            format!(
                "[constraints] {} alone excludes every candidate: widen it",
                culprits.join(" and ")
            )
        };
        Some(format!(
            "no candidate satisfies the constraints: of {} evaluated, {}; {verdict}",
            self.evaluated,
            parts.join(", ")
        ))
    }
}

/// A point of the space after the free checks.
enum Staged {
    Done(Result<Candidate, SkipReason>),
    /// Buildable and inside the static constraints: needs the cost model.
    Pending(u64, ModelSpec, Metrics),
}

/// Decodes a point and checks the static constraints; no pricing.
fn stage(space: &SearchSpace, id: u64) -> Staged {
    let spec = match space.decode(&space.genome(id)) {
        Ok(s) => s,
        Err(reason) => return Staged::Done(Err(reason)),
    };
    let metrics = Metrics::statics(space, &spec);
    let v = violations(space, &metrics);
    if v.is_empty() {
        Staged::Pending(id, spec, metrics)
    } else {
        let objectives = objectives(space, &metrics);
        Staged::Done(Ok(Candidate {
            id,
            spec,
            metrics,
            estimate: None,
            edit: None,
            why: why_not(space, &v),
            violations: v,
            objectives,
        }))
    }
}

/// The names of violated constraints, `a; b`.
fn why_not(space: &SearchSpace, violations: &[(usize, f64)]) -> String {
    let fixed = CONSTRAINT_NAMES.len();
    violations
        .iter()
        .map(|&(i, _)| constraint_name(space, i, fixed))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The name of constraint `i` ([`SearchSpace::constraint_names`] without allocating them).
fn constraint_name(space: &SearchSpace, i: usize, fixed: usize) -> &str {
    match i.checked_sub(fixed) {
        None => CONSTRAINT_NAMES[i],
        Some(j) if j < space.at_limits.len() => space.at_limits[j].name.as_str(),
        Some(j) => space.device_limits[j - space.at_limits.len()].name.as_str(),
    }
}

/// [`why_not`] over a set: a constraint every device must meet names the devices that
/// break it, where not all do (`max_decode_ms (on phone)`).
fn why_not_set(space: &SearchSpace, violations: &[(usize, f64)], m: &Metrics) -> String {
    let fixed = CONSTRAINT_NAMES.len();
    let on: Vec<Vec<usize>> = (m.devices.iter().enumerate())
        .map(|(d, x)| {
            violations_on(space, &x.metrics, Some(d))
                .into_iter()
                .map(|(i, _)| i)
                .collect()
        })
        .collect();
    violations
        .iter()
        .map(|&(i, _)| {
            let name = constraint_name(space, i, fixed);
            let devices: Vec<&str> = (m.devices.iter().zip(&on))
                .filter(|(_, v)| v.contains(&i))
                .map(|(x, _)| x.device.as_str())
                .collect();
            let own_limit = i >= fixed + space.at_limits.len();
            if own_limit || devices.len() == m.devices.len() {
                name.to_string()
            } else {
                format!("{name} (on {})", devices.join(", "))
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The values dominance compares, all to be minimised. Over one device, the objectives
/// themselves. Over a set, a worst or mean objective is not known until every device's best
/// is: it counts as each device's value (the candidate best on worst or mean is on the
/// front of those values, whatever the bests turn out to be), and
/// [`Tally::finish`] replaces them by the objectives once the bests are known.
fn objectives(space: &SearchSpace, m: &Metrics) -> Vec<f64> {
    let mut out = Vec::with_capacity(space.objectives.len());
    for (o, minimise) in &space.objectives {
        let sign = if *minimise { 1.0 } else { -1.0 };
        match o.over {
            Over::Worst | Over::Mean if space.is_set() => {
                out.extend((0..space.devices.len()).map(|d| {
                    sign * m
                        .devices
                        .get(d)
                        .map_or(f64::NAN, |x| x.metrics.get(o.metric))
                }));
            }
            _ => out.push(sign * m.value(o)),
        }
    }
    out
}

/// The objectives as device `d` alone reads them (each priced metric on `d`).
fn objectives_on(space: &SearchSpace, m: &Metrics, d: usize) -> Vec<f64> {
    let on = m.on(d);
    space
        .objectives
        .iter()
        .map(|(o, minimise)| {
            let v = on.get(o.metric);
            if *minimise { v } else { -v }
        })
        .collect()
}

/// The objectives' values once the bests are known (worst and mean filled).
fn declared(space: &SearchSpace, m: &Metrics) -> Vec<f64> {
    space
        .objectives
        .iter()
        .map(|(o, minimise)| {
            let v = m.value(o);
            if *minimise { v } else { -v }
        })
        .collect()
}

/// The worst and mean objectives (and pick) of the space, once each.
fn across_objectives(space: &SearchSpace) -> Vec<Objective> {
    let mut out: Vec<Objective> = Vec::new();
    for o in space
        .objectives
        .iter()
        .map(|(o, _)| o)
        .chain([&space.pick.0])
    {
        if o.is_ratio() && !out.contains(o) {
            out.push(o.clone());
        }
    }
    out
}

/// The metrics whose bests a set search tracks per device (those of worst and mean).
fn ratio_metrics(space: &SearchSpace) -> Vec<Metric> {
    let mut out: Vec<Metric> = across_objectives(space).iter().map(|o| o.metric).collect();
    out.sort();
    out.dedup();
    out
}

/// `m`'s worst and mean values from each device's bests: the ratio of a device's value to
/// its best, the largest of them (worst) and their mean weighted by fleet share (mean).
fn fill_across(space: &SearchSpace, devices: &[DeviceOutcome], m: &mut Metrics) {
    if devices.is_empty() || m.devices.len() != devices.len() {
        return;
    }
    m.across.clear();
    for o in across_objectives(space) {
        let ratios: Vec<(f64, f64)> = devices
            .iter()
            .zip(&m.devices)
            .map(|(d, x)| {
                let best = d
                    .best
                    .iter()
                    .find(|b| b.metric == o.metric)
                    .map_or(f64::NAN, |b| b.value);
                (x.metrics.get(o.metric) / best, d.weight)
            })
            .collect();
        let value = match o.over {
            Over::Worst if ratios.iter().any(|r| r.0.is_nan()) => f64::NAN,
            Over::Worst => ratios.iter().map(|r| r.0).fold(f64::NEG_INFINITY, f64::max),
            _ => {
                let w: f64 = ratios.iter().map(|r| r.1).sum();
                ratios.iter().map(|(r, wt)| r * wt).sum::<f64>() / w
            }
        };
        // Unknown (a device with nothing feasible): left out, read as NaN.
        if value.is_finite() {
            m.across.push(Across {
                objective: o,
                value,
            });
        }
    }
}

/// Every buildable spec of the space inside its static constraints (what a search may
/// price), in id order: the models a profile of the space must cover.
pub fn static_candidates(space: &SearchSpace) -> impl Iterator<Item = ModelSpec> + '_ {
    (0..space.size()).filter_map(move |id| match stage(space, id) {
        Staged::Pending(_, spec, _) => Some(spec),
        Staged::Done(_) => None,
    })
}

/// The distinct operator shapes `specs` run at the given prompt lengths (prefill) and
/// contexts (one decode step), and every shape of `edit` when given, in a stable order:
/// what a profile must time.
pub fn profile_shapes(
    specs: impl Iterator<Item = ModelSpec>,
    prompts: &[u64],
    contexts: &[u64],
    edit: Option<&tailor_cost::EditWorkload>,
) -> Vec<tailor_cost::OpShape> {
    let mut set = std::collections::BTreeSet::new();
    for spec in specs {
        // An edit is of the dense stack only (`CostModel::edit` prices no other).
        if let Some(e) = edit
            && spec.beyond_dense().is_none()
        {
            set.extend(e.shapes(&spec));
        }
        for &p in prompts {
            set.extend(tailor_cost::OpShape::for_spec(
                &spec,
                tailor_spec::Phase::Prefill { tokens: p },
            ));
        }
        for &c in contexts {
            set.extend(tailor_cost::OpShape::for_spec(
                &spec,
                tailor_spec::Phase::Decode { context: c },
            ));
        }
    }
    set.into_iter().collect()
}

/// Every point of the space inside all constraints, priced by `cost`, sorted by `by` (then
/// id).
fn feasible_by(space: &SearchSpace, cost: &dyn CostModel, by: Metric) -> Vec<Candidate> {
    let mut feasible: Vec<Candidate> = (0..space.size())
        .into_par_iter()
        .filter_map(|id| evaluate(space, cost, id).ok())
        .filter(|c| c.is_priced() && c.feasible())
        .collect();
    feasible.sort_by(|a, b| {
        a.metrics
            .get(by)
            .total_cmp(&b.metrics.get(by))
            .then(a.id.cmp(&b.id))
    });
    feasible
}

/// `n` feasible candidates spread across the space, for validating a cost model: every
/// point inside all constraints (priced by `cost`), sorted by `by`, cut into `n` strata
/// of equal size, one drawn at random (seeded) from each; all of them when fewer than `n`
/// are feasible. Returned in the order of `by`.
pub fn spread_sample(
    space: &SearchSpace,
    cost: &dyn CostModel,
    n: usize,
    seed: u64,
    by: Metric,
) -> Vec<Candidate> {
    let feasible = feasible_by(space, cost, by);
    if feasible.len() <= n {
        return feasible;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let len = feasible.len();
    let picks: Vec<usize> = (0..n)
        .map(|i| {
            let (lo, hi) = (i * len / n, (i + 1) * len / n);
            rng.random_range(lo..hi)
        })
        .collect();
    picks.into_iter().map(|i| feasible[i].clone()).collect()
}

/// `n` feasible candidates at fixed quantiles of predicted decode time (the middles of `n`
/// equal strata: a quarter and three quarters for two), none of them in `exclude`: the
/// nearest candidate to each quantile that is not excluded or already taken. The whole
/// models a profile's level is measured on (`tailor_cost::Level`); the rule is fixed, so
/// the same space and profile always give the same anchors. Fewer when fewer are left.
pub fn anchor_sample(
    space: &SearchSpace,
    cost: &dyn CostModel,
    n: usize,
    exclude: &std::collections::BTreeSet<u64>,
) -> Vec<Candidate> {
    let feasible = feasible_by(space, cost, Metric::DecodeMs);
    let len = feasible.len();
    let mut taken: Vec<usize> = Vec::with_capacity(n);
    for i in 0..n {
        let target = (2 * i + 1) * len / (2 * n);
        let free = |j: usize| !exclude.contains(&feasible[j].id) && !taken.contains(&j);
        let nearest = (0..len).find_map(|d| {
            [target.checked_add(d), target.checked_sub(d)]
                .into_iter()
                .flatten()
                .find(|&j| j < len && free(j))
        });
        if let Some(j) = nearest {
            taken.push(j);
        }
    }
    taken.sort_unstable();
    taken.into_iter().map(|j| feasible[j].clone()).collect()
}

/// The cost models of a search: one, or one per device of the space's set, in its order.
pub type Costs<'a> = [&'a dyn CostModel];

/// Evaluates one point of the space: skipped, excluded before pricing, or priced.
pub fn evaluate(
    space: &SearchSpace,
    cost: &dyn CostModel,
    id: u64,
) -> Result<Candidate, SkipReason> {
    match stage(space, id) {
        Staged::Done(r) => r,
        Staged::Pending(id, spec, statics) => Ok(price_staged(space, &[cost], id, spec, statics)),
    }
}

/// Prices a spec as a candidate of the space (`id` is only carried along).
pub fn price(space: &SearchSpace, cost: &dyn CostModel, id: u64, spec: ModelSpec) -> Candidate {
    price_set(space, &[cost], id, spec)
}

/// [`price`] on every device of the space's set (`costs` in its order).
pub fn price_set(space: &SearchSpace, costs: &Costs, id: u64, spec: ModelSpec) -> Candidate {
    let statics = Metrics::statics(space, &spec);
    price_staged(space, costs, id, spec, statics)
}

/// One device's estimate, edit and metrics of `spec` under workload `w`.
fn price_on(
    space: &SearchSpace,
    cost: &dyn CostModel,
    w: &tailor_cost::Workload,
    spec: &ModelSpec,
    statics: Metrics,
) -> (Estimate, Option<EditEstimate>, Metrics) {
    let estimate = cost.estimate(spec, w);
    let edit = space.edit.and_then(|e| cost.edit(spec, w, &e));
    let metrics = statics
        .priced(&estimate, edit.as_ref())
        .with_at_under(space, w, spec, cost);
    (estimate, edit, metrics)
}

fn price_staged(
    space: &SearchSpace,
    costs: &Costs,
    id: u64,
    spec: ModelSpec,
    statics: Metrics,
) -> Candidate {
    let (estimate, edit, metrics) = if space.is_set() {
        let mut first = None;
        let mut devices = Vec::with_capacity(costs.len());
        for (d, cost) in costs.iter().enumerate() {
            let w = space.device_workload(d);
            let (est, edit, m) = price_on(space, *cost, &w, &spec, statics.clone());
            devices.push(DeviceMetrics {
                device: space.devices[d].name.clone(),
                feasible: violations_on(space, &m, Some(d)).is_empty(),
                metrics: m,
            });
            if d == 0 {
                first = Some((est, edit));
            }
        }
        let (est, edit) = first.expect("a set has devices");
        let mut metrics = devices[0].metrics.clone();
        metrics.devices = devices;
        (est, edit, metrics)
    } else {
        price_on(space, costs[0], &space.workload, &spec, statics)
    };
    let edit = edit.map(Box::new);
    let violations = violations(space, &metrics);
    let why = if metrics.devices.is_empty() {
        why_not(space, &violations)
    } else {
        why_not_set(space, &violations, &metrics)
    };
    Candidate {
        id,
        why,
        violations,
        objectives: objectives(space, &metrics),
        spec,
        metrics,
        estimate: Some(estimate),
        edit,
    }
}

/// Stages ids in order, prices the pending ones in parallel (at most `cap` of them), and
/// hands the results, in id order, to the tally. Returns the ids consumed and priced.
fn process(
    space: &SearchSpace,
    costs: &Costs,
    ids: &mut dyn Iterator<Item = u64>,
    cap: u64,
    tally: &mut Tally,
    sink: &mut dyn FnMut(&Candidate) -> std::io::Result<()>,
    progress: &dyn Progress,
) -> std::io::Result<Vec<Candidate>> {
    let mut slots: Vec<Staged> = Vec::new();
    let mut pending = 0u64;
    for id in &mut *ids {
        let staged = stage(space, id);
        if matches!(staged, Staged::Pending(..)) {
            pending += 1;
        }
        slots.push(staged);
        if pending >= cap || slots.len() >= CHUNK {
            break;
        }
    }
    let done: Vec<Result<Candidate, SkipReason>> = slots
        .into_par_iter()
        .map(|s| match s {
            Staged::Done(r) => r,
            Staged::Pending(id, spec, statics) => Ok(price_staged(space, costs, id, spec, statics)),
        })
        .collect();
    let priced: Vec<Candidate> = done
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .filter(|c| c.is_priced())
        .cloned()
        .collect();
    progress.advance(priced.len() as u64);
    tally.absorb(space, done, sink)?;
    Ok(priced)
}

/// Keeps the counts and the running front while candidates stream past.
struct Tally {
    seen: u64,
    evaluated: u64,
    priced: u64,
    feasible: u64,
    skipped: BTreeMap<SkipReason, u64>,
    violated: Vec<u64>,
    violated_alone: Vec<u64>,
    front: Vec<Candidate>,
    /// Over a set: each device's running front, feasible count and bests.
    devices: Vec<DeviceTally>,
    /// The metrics whose bests are tracked (those of worst and mean objectives).
    ratio_metrics: Vec<Metric>,
}

struct DeviceTally {
    front: Vec<Candidate>,
    feasible: u64,
    best: Vec<f64>,
}

/// `front` and `new` merged into the non-dominated ones by `key`, in their order.
fn merge_front(
    front: Vec<Candidate>,
    new: Vec<Candidate>,
    key: impl Fn(&Candidate) -> Vec<f64>,
) -> Vec<Candidate> {
    let mut pool = front;
    pool.extend(new);
    let points: Vec<Vec<f64>> = pool.iter().map(key).collect();
    let keep: HashSet<usize> = front_indices(&points).into_iter().collect();
    pool.into_iter()
        .enumerate()
        .filter(|(i, _)| keep.contains(i))
        .map(|(_, c)| c)
        .collect()
}

impl Tally {
    fn new(space: &SearchSpace) -> Self {
        let constraints = space.constraint_names().len();
        let ratio_metrics = if space.is_set() {
            ratio_metrics(space)
        } else {
            Vec::new()
        };
        let devices = if space.is_set() {
            (0..space.devices.len())
                .map(|_| DeviceTally {
                    front: Vec::new(),
                    feasible: 0,
                    best: vec![f64::INFINITY; ratio_metrics.len()],
                })
                .collect()
        } else {
            Vec::new()
        };
        Self {
            seen: 0,
            evaluated: 0,
            priced: 0,
            feasible: 0,
            skipped: BTreeMap::new(),
            violated: vec![0; constraints],
            violated_alone: vec![0; constraints],
            front: Vec::new(),
            devices,
            ratio_metrics,
        }
    }

    /// Takes a batch in evaluation order; hands every candidate to the sink.
    fn absorb(
        &mut self,
        space: &SearchSpace,
        batch: Vec<Result<Candidate, SkipReason>>,
        sink: &mut dyn FnMut(&Candidate) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let mut feasible = Vec::new();
        let mut per_device: Vec<Vec<Candidate>> = vec![Vec::new(); self.devices.len()];
        for r in batch {
            self.seen += 1;
            match r {
                Err(reason) => *self.skipped.entry(reason).or_default() += 1,
                Ok(c) => {
                    self.evaluated += 1;
                    self.priced += u64::from(c.is_priced());
                    sink(&c)?;
                    for &(i, _) in &c.violations {
                        self.violated[i] += 1;
                    }
                    if let [(i, _)] = c.violations[..] {
                        self.violated_alone[i] += 1;
                    }
                    for (d, x) in c.metrics.devices.iter().enumerate() {
                        if !x.feasible {
                            continue;
                        }
                        let t = &mut self.devices[d];
                        t.feasible += 1;
                        for (b, m) in t.best.iter_mut().zip(&self.ratio_metrics) {
                            *b = b.min(x.metrics.get(*m));
                        }
                        per_device[d].push(c.clone());
                    }
                    if c.feasible() {
                        self.feasible += 1;
                        feasible.push(c);
                    }
                }
            }
        }
        if !feasible.is_empty() {
            let front = std::mem::take(&mut self.front);
            self.front = merge_front(front, feasible, |c| c.objectives.clone());
        }
        for (d, new) in per_device.into_iter().enumerate() {
            if new.is_empty() {
                continue;
            }
            let t = &mut self.devices[d];
            let front = std::mem::take(&mut t.front);
            t.front = merge_front(front, new, |c| objectives_on(space, &c.metrics, d));
        }
        Ok(())
    }

    fn finish(
        mut self,
        space: &SearchSpace,
        options: &SearchOptions,
        started: Instant,
    ) -> SearchOutcome {
        let mut devices: Vec<DeviceOutcome> = (self.devices.iter().enumerate())
            .map(|(d, t)| DeviceOutcome {
                name: space.devices[d].name.clone(),
                weight: space.devices[d].weight,
                feasible: t.feasible,
                front: Vec::new(),
                pick: None,
                // Only the metrics something feasible on the device gave a value.
                best: (self.ratio_metrics.iter().zip(&t.best))
                    .filter(|(_, value)| value.is_finite())
                    .map(|(&metric, &value)| AtValue { metric, value })
                    .collect(),
            })
            .collect();
        if space.is_set() {
            // The bests are known: the worst and mean values replace each device's values
            // in the objectives, and the front is the non-dominated rows of those.
            for c in &mut self.front {
                fill_across(space, &devices, &mut c.metrics);
                c.objectives = declared(space, &c.metrics);
            }
            let front = std::mem::take(&mut self.front);
            self.front = merge_front(front, Vec::new(), |c| c.objectives.clone());
            let (pick, minimise) = (&space.pick.0, space.pick.1);
            for (d, t) in self.devices.into_iter().enumerate() {
                let mut front = t.front;
                for c in &mut front {
                    fill_across(space, &devices, &mut c.metrics);
                    c.objectives = declared(space, &c.metrics);
                }
                front.sort_by_key(|c| c.id);
                let on_d = Objective {
                    metric: pick.metric,
                    over: Over::Device(devices[d].name.clone()),
                };
                devices[d].pick = pick_index(&front, &on_d, minimise);
                devices[d].front = front;
            }
        }
        self.front.sort_by_key(|c| c.id);
        let (metric, minimise) = &space.pick;
        let pick = pick_index(&self.front, metric, *minimise);
        SearchOutcome {
            strategy: options.strategy,
            seed: options.seed,
            budget: options.budget,
            seen: self.seen,
            evaluated: self.evaluated,
            priced: self.priced,
            feasible: self.feasible,
            skipped: self.skipped,
            constraint_names: space.constraint_names(),
            violated: self.violated,
            violated_alone: self.violated_alone,
            front: self.front,
            pick,
            devices,
            wall_s: started.elapsed().as_secs_f64(),
        }
    }
}

/// The order of the pick rule `(objective, minimise)` over front rows given as (id,
/// metrics): better first, ties to the lower id. The pick is the first; the report and
/// the model card rank the front by it.
pub fn pick_order(
    (objective, minimise): (&Objective, bool),
    (a_id, a): (u64, &Metrics),
    (b_id, b): (u64, &Metrics),
) -> std::cmp::Ordering {
    let (x, y) = (a.value(objective), b.value(objective));
    let o = if minimise {
        x.total_cmp(&y)
    } else {
        y.total_cmp(&x)
    };
    o.then(a_id.cmp(&b_id))
}

/// The front row best in `objective`; ties go to the lowest id.
pub fn pick_index(front: &[Candidate], objective: &Objective, minimise: bool) -> Option<usize> {
    front
        .iter()
        .enumerate()
        .min_by(|(_, a), (_, b)| {
            pick_order(
                (objective, minimise),
                (a.id, &a.metrics),
                (b.id, &b.metrics),
            )
        })
        .map(|(i, _)| i)
}

const CHUNK: usize = 1 << 14;

/// Runs a search. `sink` sees every evaluated candidate once, in a deterministic order.
pub fn search(
    space: &SearchSpace,
    cost: &dyn CostModel,
    options: &SearchOptions,
    progress: &dyn Progress,
    sink: &mut dyn FnMut(&Candidate) -> std::io::Result<()>,
) -> std::io::Result<SearchOutcome> {
    search_set(space, &[cost], options, progress, sink)
}

/// [`search`] over the space's set of devices, `costs` one per device in its order (one
/// cost model for a space of one device or none). The same strategies, seeds and order of
/// candidates as over one device: the draws depend on the space and seed, the ranking on
/// every device's values.
pub fn search_set(
    space: &SearchSpace,
    costs: &Costs,
    options: &SearchOptions,
    progress: &dyn Progress,
    sink: &mut dyn FnMut(&Candidate) -> std::io::Result<()>,
) -> std::io::Result<SearchOutcome> {
    assert_eq!(
        costs.len(),
        space.devices.len().max(1),
        "one cost model per device of the set"
    );
    let started = Instant::now();
    let mut tally = Tally::new(space);
    let total = space.size();
    match options.strategy {
        Strategy::Exhaustive => {
            progress.start(total);
            let mut ids = 0..total;
            while ids.start < total {
                let before = ids.start;
                process(
                    space,
                    costs,
                    &mut ids,
                    u64::MAX,
                    &mut tally,
                    sink,
                    &NoProgress,
                )?;
                progress.advance(ids.start - before);
            }
        }
        Strategy::Random => {
            let budget = options.budget.unwrap_or(total).min(total);
            progress.start(budget);
            let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
            let mut ids = RandomIds::new(total);
            while tally.priced < budget {
                let before = tally.seen;
                let mut it = std::iter::from_fn(|| ids.next(&mut rng));
                process(
                    space,
                    costs,
                    &mut it,
                    budget - tally.priced,
                    &mut tally,
                    sink,
                    progress,
                )?;
                if tally.seen == before {
                    break;
                }
            }
        }
        Strategy::Nsga2 => nsga2(space, costs, options, progress, &mut tally, sink)?,
    }
    Ok(tally.finish(space, options, started))
}

/// Distinct ids below `n` in a seeded random order: a shuffled list when the space is
/// small, rejection sampling against the ids drawn so far when it is large.
struct RandomIds {
    n: u64,
    order: Option<Vec<u64>>,
    drawn: HashSet<u64>,
}

impl RandomIds {
    fn new(n: u64) -> Self {
        Self {
            n,
            order: None,
            drawn: HashSet::new(),
        }
    }

    fn next(&mut self, rng: &mut ChaCha8Rng) -> Option<u64> {
        if self.n <= 1 << 22 {
            let order = self.order.get_or_insert_with(|| {
                let mut v: Vec<u64> = (0..self.n).collect();
                for i in (1..v.len()).rev() {
                    v.swap(i, rng.random_range(0..=i));
                }
                v.reverse();
                v
            });
            return order.pop();
        }
        if self.drawn.len() as u64 >= self.n / 2 {
            return None;
        }
        loop {
            let id = rng.random_range(0..self.n);
            if self.drawn.insert(id) {
                return Some(id);
            }
        }
    }
}

fn nsga2(
    space: &SearchSpace,
    costs: &Costs,
    options: &SearchOptions,
    progress: &dyn Progress,
    tally: &mut Tally,
    sink: &mut dyn FnMut(&Candidate) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let total = space.size();
    let budget = options.budget.unwrap_or(2000).min(total);
    let pop_size = options
        .population
        .unwrap_or((budget / 8).clamp(8, 100) as usize)
        .max(4)
        .next_multiple_of(2);
    progress.start(budget);
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let mut seen: HashSet<u64> = HashSet::new();
    let lens = *space.axis_lengths();
    let free_axes: Vec<usize> = (0..AXES).filter(|&a| lens[a] > 1).collect();
    // Offspring attempts per priced child before the search gives up on a region.
    let max_attempts = 64;

    // Initial population: random distinct points until pop_size are priced.
    let mut random = RandomIds::new(total);
    let mut pop: Vec<Candidate> = Vec::new();
    while pop.len() < pop_size && tally.priced < budget {
        let cap = ((pop_size - pop.len()) as u64).min(budget - tally.priced);
        let before = tally.seen;
        let mut it = std::iter::from_fn(|| {
            // Skip ids that an earlier round already drew (the shuffled list never repeats).
            random.next(&mut rng)
        })
        .inspect(|id| {
            seen.insert(*id);
        });
        pop.extend(process(space, costs, &mut it, cap, tally, sink, progress)?);
        if tally.seen == before {
            break;
        }
    }
    let (mut rank, mut crowd) = rank_and_crowd(&pop);

    while tally.priced < budget && !pop.is_empty() && (seen.len() as u64) < total {
        let want = (pop_size as u64).min(budget - tally.priced);
        let mut children: Vec<u64> = Vec::new();
        let mut pending = 0u64;
        let mut attempts = 0u64;
        while pending < want && attempts < want * max_attempts && (seen.len() as u64) < total {
            attempts += 1;
            let a = tournament(&mut rng, &rank, &crowd);
            let b = tournament(&mut rng, &rank, &crowd);
            let (ga, gb) = (space.genome(pop[a].id), space.genome(pop[b].id));
            let mut child = ga;
            if rng.random_bool(0.9) {
                // Only the axes the space uses draw: a dense space's stream is a 15-axis one.
                for axis in 0..space.axes() {
                    if rng.random_bool(0.5) {
                        child[axis] = gb[axis];
                    }
                }
            }
            mutate(&mut rng, &mut child, &lens, &free_axes);
            let mut id = space.id_of(&child);
            let mut tries = 0;
            while seen.contains(&id) && tries < 16 {
                mutate(&mut rng, &mut child, &lens, &free_axes);
                id = space.id_of(&child);
                tries += 1;
            }
            if seen.contains(&id) {
                continue;
            }
            seen.insert(id);
            children.push(id);
            // Staging is cheap; only candidates that need pricing fill the generation.
            if matches!(stage(space, id), Staged::Pending(..)) {
                pending += 1;
            }
        }
        if children.is_empty() {
            break;
        }
        let mut it = children.into_iter();
        while it.len() > 0 {
            pop.extend(process(
                space,
                costs,
                &mut it,
                u64::MAX,
                tally,
                sink,
                progress,
            )?);
        }
        pop = environmental_selection(pop, pop_size);
        (rank, crowd) = rank_and_crowd(&pop);
    }
    Ok(())
}

fn mutate(rng: &mut ChaCha8Rng, g: &mut Genome, lens: &[u64; AXES], free: &[usize]) {
    if free.is_empty() {
        return;
    }
    let p = 1.0 / free.len() as f64;
    let mut changed = false;
    for &axis in free {
        if rng.random_bool(p) {
            changed |= step(rng, g, lens, axis);
        }
    }
    if !changed {
        let axis = free[rng.random_range(0..free.len())];
        step(rng, g, lens, axis);
    }
}

/// Moves one gene: half the time to a neighbouring value, else to any other value.
fn step(rng: &mut ChaCha8Rng, g: &mut Genome, lens: &[u64; AXES], axis: usize) -> bool {
    let len = lens[axis] as u32;
    let old = g[axis];
    g[axis] = if rng.random_bool(0.5) {
        match (old, rng.random_bool(0.5)) {
            (0, _) => 1,
            (o, _) if o + 1 == len => o - 1,
            (o, true) => o + 1,
            (o, false) => o - 1,
        }
    } else {
        let v = rng.random_range(0..len - 1);
        if v >= old { v + 1 } else { v }
    };
    g[axis] != old
}

/// Rank (front number) and crowding distance of each member.
fn rank_and_crowd(pop: &[Candidate]) -> (Vec<usize>, Vec<f64>) {
    let fronts = non_dominated_sort(pop.len(), |a, b| constrained_dominates(&pop[a], &pop[b]));
    let mut rank = vec![0; pop.len()];
    let mut crowd = vec![0.0; pop.len()];
    for (r, front) in fronts.iter().enumerate() {
        let pts: Vec<&[f64]> = front
            .iter()
            .map(|&i| pop[i].objectives.as_slice())
            .collect();
        for (k, d) in front.iter().zip(crowding_distance(&pts)) {
            rank[*k] = r;
            crowd[*k] = d;
        }
    }
    (rank, crowd)
}

/// Binary tournament on (rank, crowding).
fn tournament(rng: &mut ChaCha8Rng, rank: &[usize], crowd: &[f64]) -> usize {
    let a = rng.random_range(0..rank.len());
    let b = rng.random_range(0..rank.len());
    if rank[a] < rank[b] || (rank[a] == rank[b] && crowd[a] >= crowd[b]) {
        a
    } else {
        b
    }
}

/// Keeps the best `n` by front, then by crowding distance within the last front.
fn environmental_selection(pop: Vec<Candidate>, n: usize) -> Vec<Candidate> {
    let fronts = non_dominated_sort(pop.len(), |a, b| constrained_dominates(&pop[a], &pop[b]));
    let mut keep: Vec<usize> = Vec::with_capacity(n);
    for front in fronts {
        if keep.len() + front.len() <= n {
            keep.extend(front);
        } else {
            let pts: Vec<&[f64]> = front
                .iter()
                .map(|&i| pop[i].objectives.as_slice())
                .collect();
            let d = crowding_distance(&pts);
            let mut order: Vec<usize> = (0..front.len()).collect();
            order.sort_by(|&a, &b| d[b].total_cmp(&d[a]).then(front[a].cmp(&front[b])));
            keep.extend(order.into_iter().take(n - keep.len()).map(|k| front[k]));
            break;
        }
    }
    let mut slots: HashMap<usize, Candidate> = pop.into_iter().enumerate().collect();
    keep.iter().filter_map(|i| slots.remove(i)).collect()
}
