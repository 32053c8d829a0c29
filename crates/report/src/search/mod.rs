//! The report of a search run: `report.md` beside SVG plots, and the pick's export.
//!
//! - this module: [`SearchRun`], the tables `tailor search` prints, and [`write_search`];
//! - `summary`: `summary.json` ([`Summary`] and the sections `tailor run` adds);
//! - `markdown`: `report.md`.

mod markdown;
mod summary;

pub use summary::*;

use crate::ReportError;
use crate::export::{Card, Chosen, CostSource, Exported, Flavor, export, md_table};
use crate::fmt::{Table, bytes, si, thousands};
use crate::plot::{self, Scatter};
use crate::validation::{RoundRatios, Validation};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tailor_cost::{Accuracy, Breakdown};
use tailor_search::output::{Rule, SearchSummary};
use tailor_search::{
    Candidate, Metric, Metrics, Objective, SearchOutcome, SearchSpace, pick_order,
};
use tailor_spec::files::write_atomic;

/// A published model named by the space, priced and placed against the front.
#[derive(Debug, Clone)]
pub struct Reference {
    pub path: PathBuf,
    pub name: String,
    /// Its id when the space holds it.
    pub id: Option<u64>,
    pub candidate: Candidate,
    /// Front rows that dominate it (0: on the front or beside it).
    pub dominated_by: usize,
}

impl Reference {
    /// Where it lands: not in the space, infeasible (why), on the front, or dominated.
    pub fn place(&self) -> String {
        let c = &self.candidate;
        match (self.id, c.feasible(), self.dominated_by) {
            (None, _, _) => "not in the space".to_string(),
            (_, false, _) => format!("infeasible ({})", c.why_not()),
            (_, true, 0) => "on the front".to_string(),
            (_, true, n) => format!("dominated by {n} front rows"),
        }
    }
}

/// Everything a search produced, for the report and the export.
#[derive(Debug)]
pub struct SearchRun {
    pub space: SearchSpace,
    pub outcome: SearchOutcome,
    pub references: Vec<Reference>,
    /// Metrics of every feasible candidate (for the plots).
    pub cloud: Vec<Metrics>,
    pub cost: CostSource,
    /// Over a set of devices: each device's cost model, in the set's order (empty over one).
    pub device_costs: Vec<CostSource>,
    /// Over a set, after `tailor run`: the shared and own picks timed whole on each device
    /// here (or why a device was not).
    pub device_checks: Vec<crate::validation::DeviceValidation>,
    pub out: PathBuf,
    /// What the search says about itself.
    pub summary: SearchSummary,
}

impl SearchRun {
    /// The tables `tailor search` prints.
    pub fn render(&self, written: &Written) -> String {
        let run = self;
        let (space, o, refs, out) = (&run.space, &run.outcome, &run.references, &run.out);
        let mut s = format!(
            "{}: {} points, {} examined ({}), {} buildable, {} priced, {} feasible, front of {}\n",
            space.name(),
            space.size(),
            o.seen,
            o.strategy.name(),
            o.evaluated,
            o.priced,
            o.feasible,
            o.front.len()
        );
        for (reason, n) in &o.skipped {
            s += &format!("  skipped {n}: {reason}\n");
        }
        let rows = ranked(&o.front, &space.pick);
        s += &format!(
            "\nfront (by {}), top {}{}:\n",
            space.pick.0,
            rows.len().min(15),
            match space.devices.first().filter(|_| space.is_set()) {
                Some(d) => format!(", times and memory on {}, the first device", d.name),
                None => String::new(),
            }
        );
        let stacked = space.file.model.stack.is_some();
        let mut header = vec![
            "",
            "hidden",
            "layers",
            "heads",
            "kv",
            "ffn",
            "act",
            "params",
            "non-emb",
            "prefill ms",
            "decode ms",
            "tok/s",
            "memory",
        ];
        if stacked {
            header.push("stack");
        }
        // The space's other prompts and contexts, one column each.
        let at = space.at_metrics();
        let at_names: Vec<String> = at
            .iter()
            .map(|m| match m {
                Metric::PrefillMsAt(n) => format!("prefill@{n}"),
                Metric::DecodeMsAt(n) => format!("decode@{n}"),
                Metric::PeakMemoryAt(n) => format!("memory@{n}"),
                other => other.name().into_owned(),
            })
            .collect();
        header.extend(at_names.iter().map(String::as_str));
        // Over a set, the pick's own value when it is not one of the columns (a worst case,
        // a mean, another device's).
        let pick_column = (space.is_set() && space.pick.0.over != tailor_search::Over::One)
            .then(|| space.pick.0.name());
        if let Some(name) = &pick_column {
            header.push(name);
        }
        let mut t = Table::new(&header);
        for c in rows.iter().take(15) {
            let m = &c.metrics;
            let picked = o.pick.is_some_and(|i| o.front[i].id == c.id);
            let mut row = vec![
                if picked { "pick".into() } else { String::new() },
                c.spec.hidden_size.to_string(),
                c.spec.num_layers.to_string(),
                c.spec.num_heads.to_string(),
                c.spec.num_kv_heads.to_string(),
                c.spec.intermediate_size.to_string(),
                c.spec.activation.to_string(),
                si(m.params as f64, ""),
                si(m.non_embedding_params as f64, ""),
                format!("{:.2}", m.get(Metric::PrefillMs)),
                format!("{:.3}", m.get(Metric::DecodeMs)),
                format!("{:.1}", 1000.0 / m.get(Metric::DecodeMs)),
                bytes(m.get(Metric::PeakMemory)),
            ];
            if stacked {
                row.push(c.spec.pattern_picture());
            }
            for a in &at {
                let v = m.get(*a);
                row.push(match a {
                    Metric::PeakMemoryAt(_) => bytes(v),
                    Metric::PrefillMsAt(_) => format!("{v:.2}"),
                    _ => format!("{v:.3}"),
                });
            }
            if pick_column.is_some() {
                row.push(format!("{:.4}", m.value(&space.pick.0)));
            }
            t.row(row);
        }
        s += &t.render(2);
        if let Some((intro, header, rows)) = device_rows(run) {
            s += &format!("\n{intro}:\n");
            let mut t = Table::new(&header);
            for r in rows {
                t.row(r);
            }
            s += &t.render(2);
        }
        if let Some((header, rows)) = device_check_rows(run) {
            s += "\nthe picks timed whole on the devices here:\n";
            let mut t = Table::new(&header);
            for r in rows {
                t.row(r);
            }
            s += &t.render(2);
        }
        for r in refs {
            let (path, name, c) = (&r.path, &r.name, &r.candidate);
            let m = &c.metrics;
            let place = r.place();
            s += &format!(
                "\nreference {name} ({}): {place}; prefill {:.2} ms, decode {:.3} ms ({:.1} tok/s)\n",
                path.display(),
                m.get(Metric::PrefillMs),
                m.get(Metric::DecodeMs),
                1000.0 / m.get(Metric::DecodeMs)
            );
            if let Some(i) = o.pick {
                let p = &o.front[i].metrics;
                s += &format!(
                    "  pick vs reference: decode {:.2}x faster, prefill {:.2}x faster\n",
                    m.get(Metric::DecodeMs) / p.get(Metric::DecodeMs),
                    m.get(Metric::PrefillMs) / p.get(Metric::PrefillMs)
                );
            }
            if let Some(f) = same_size_fastest(&o.front, m.params) {
                s += &format!(
                    "  fastest front row at least as large ({} x {} layers, {} params): decode \
                     {:.2}x faster, prefill {:.2}x faster\n",
                    f.spec.hidden_size,
                    f.spec.num_layers,
                    si(f.metrics.params as f64, ""),
                    m.get(Metric::DecodeMs) / f.metrics.get(Metric::DecodeMs),
                    m.get(Metric::PrefillMs) / f.metrics.get(Metric::PrefillMs)
                );
            }
        }
        s += &format!(
            "\nwrote {}/{{candidates.csv, front.json, summary.json}}\n",
            out.display()
        );
        s += &written.render();
        s
    }
}

/// A table's rows of cells.
pub type Rows = Vec<Vec<String>>;

/// Over a set of devices, the table of each device's own pick against the shared pick:
/// (intro, header, rows); `None` over one device.
pub fn device_rows(run: &SearchRun) -> Option<(String, Vec<&'static str>, Rows)> {
    let (space, o) = (&run.space, &run.outcome);
    if o.devices.is_empty() {
        return None;
    }
    let regret = tailor_search::output::regret_metric(space);
    let shared = o.pick.map(|i| &o.front[i]);
    let fmt = |m: Metric, v: f64| match m {
        Metric::PeakMemory | Metric::PeakMemoryAt(_) => bytes(v),
        _ => format!("{v:.3}"),
    };
    let shape = |c: &Candidate| {
        format!(
            "#{} {}x{} {}/{}",
            c.id, c.spec.hidden_size, c.spec.num_layers, c.spec.num_heads, c.spec.num_kv_heads
        )
    };
    let rows = o
        .devices
        .iter()
        .enumerate()
        .map(|(d, dev)| {
            let own = dev.pick.map(|i| &dev.front[i]);
            let cost = run.device_costs.get(d);
            let (own_v, shared_v, r) = match (regret, own, shared) {
                (Some((m, min)), Some(own), Some(shared)) => {
                    let r = tailor_search::output::Regret::of(
                        m,
                        min,
                        own.metrics.on(d).get(m),
                        shared.metrics.on(d).get(m),
                    );
                    (
                        fmt(m, r.own),
                        fmt(m, r.shared),
                        format!("{:+.1}%", 100.0 * r.regret),
                    )
                }
                _ => ("-".into(), "-".into(), "-".into()),
            };
            vec![
                dev.name.clone(),
                format!("{}", dev.weight),
                cost.map_or("-".into(), |c| {
                    format!("{} {}", c.kind, space.device_workload(d).precision.weights)
                }),
                thousands(u128::from(dev.feasible)),
                own.map_or("none feasible".into(), shape),
                own_v,
                shared_v,
                r,
            ]
        })
        .collect();
    let intro = match (regret, shared) {
        (Some((m, _)), Some(c)) => format!(
            "each device's own pick against the shared pick {} (regret in {m}: how much worse \
             the shared pick is there than that device's own)",
            shape(c)
        ),
        _ => "each device's own pick".to_string(),
    };
    Some((
        intro,
        vec![
            "device",
            "weight",
            "cost model",
            "feasible",
            "own pick",
            "own",
            "shared pick",
            "regret",
        ],
        rows,
    ))
}

/// What a device timed whole says of the shared pick against its own: both measured decode
/// steps, both predicted, and the regret each pair gives.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasuredRegret {
    pub shared_id: u64,
    pub own_id: u64,
    pub predicted_shared_ms: f64,
    pub predicted_own_ms: f64,
    pub measured_shared_ms: f64,
    pub measured_own_ms: f64,
    /// predicted shared / predicted own - 1 (in this validation's own predictions).
    pub predicted: f64,
    /// measured shared / measured own - 1.
    pub measured: f64,
    /// The fastest of the models timed on the device (its own pick where the prediction
    /// ranks them right), and the shared pick against it: measured shared / fastest - 1.
    pub fastest_id: u64,
    pub measured_fastest_ms: f64,
    pub measured_vs_fastest: f64,
}

/// The measured regret of device `d` from its validation, when both picks were timed.
pub fn measured_regret(run: &SearchRun, d: usize, v: &Validation) -> Option<MeasuredRegret> {
    let o = &run.outcome;
    let shared = o.pick.map(|i| o.front[i].id)?;
    let dev = o.devices.get(d)?;
    let own = dev.pick.map(|i| dev.front[i].id)?;
    let row = |id: u64| v.file.rows.iter().find(|r| r.id == id);
    let (s, w) = (row(shared)?, row(own)?);
    let (sm, wm) = (s.measured.as_ref()?, w.measured.as_ref()?);
    let (fastest_id, fastest) = (v.file.rows.iter())
        .filter_map(|r| r.measured.as_ref().map(|m| (r.id, m.decode_ms)))
        .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)))?;
    Some(MeasuredRegret {
        fastest_id,
        measured_fastest_ms: fastest,
        measured_vs_fastest: sm.decode_ms / fastest - 1.0,
        shared_id: shared,
        own_id: own,
        predicted_shared_ms: s.predicted_decode_ms,
        predicted_own_ms: w.predicted_decode_ms,
        measured_shared_ms: sm.decode_ms,
        measured_own_ms: wm.decode_ms,
        predicted: s.predicted_decode_ms / w.predicted_decode_ms - 1.0,
        measured: sm.decode_ms / wm.decode_ms - 1.0,
    })
}

/// The table of the devices timed here after a run over a set: each device's decode of
/// the shared and own picks, predicted and measured, and the regret of each.
pub fn device_check_rows(run: &SearchRun) -> Option<(Vec<&'static str>, Rows)> {
    if run.device_checks.is_empty() {
        return None;
    }
    let header = vec![
        "device",
        "shared pick decode ms pred / meas",
        "own pick decode ms pred / meas",
        "regret pred",
        "regret meas",
        "fastest timed (meas ms)",
        "shared vs fastest meas",
        "decode meas/pred (all models)",
        "engine vs itself (spread)",
    ];
    let rows = run
        .device_checks
        .iter()
        .enumerate()
        .map(|(d, c)| match &c.result {
            Err(why) => vec![
                c.device.clone(),
                format!("not timed here: {why}"),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ],
            Ok(v) => {
                let r = measured_regret(run, d, v);
                let pair = |p: f64, m: f64| format!("{p:.3} / {m:.3}");
                let f = &v.file;
                vec![
                    c.device.clone(),
                    r.map_or("-".into(), |r| {
                        pair(r.predicted_shared_ms, r.measured_shared_ms)
                    }),
                    r.map_or("-".into(), |r| pair(r.predicted_own_ms, r.measured_own_ms)),
                    r.map_or("-".into(), |r| format!("{:+.1}%", 100.0 * r.predicted)),
                    r.map_or("-".into(), |r| format!("{:+.1}%", 100.0 * r.measured)),
                    r.map_or("-".into(), |r| {
                        format!("#{} ({:.3})", r.fastest_id, r.measured_fastest_ms)
                    }),
                    r.map_or("-".into(), |r| {
                        format!("{:+.1}%", 100.0 * r.measured_vs_fastest)
                    }),
                    f.decode
                        .map_or("-".into(), |a| format!("{:.2}", a.median_ratio)),
                    f.engine_self
                        .as_ref()
                        .map_or("-".into(), |e| format!("{:.1}%", 100.0 * e.decode_spread)),
                ]
            }
        })
        .collect();
    Some((header, rows))
}

/// Front rows ordered by the pick rule (the pick first), ties by id.
pub fn ranked<'a>(front: &'a [Candidate], pick: &(Objective, bool)) -> Vec<&'a Candidate> {
    let mut rows: Vec<&Candidate> = front.iter().collect();
    rows.sort_by(|a, b| pick_order((&pick.0, pick.1), (a.id, &a.metrics), (b.id, &b.metrics)));
    rows
}

/// `minimize decode_ms`.
pub fn pick_rule(pick: &(Objective, bool)) -> String {
    Rule::of(pick).to_string()
}

/// What a search run left besides its data files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Written {
    pub export: Option<Exported>,
    pub report: PathBuf,
    pub plots: Vec<PathBuf>,
}

impl Written {
    pub fn render(&self) -> String {
        let mut s = String::new();
        if let Some(e) = &self.export {
            s += &format!(
                "wrote the pick's {}spec.toml and MODEL_CARD.md to {}\n",
                if e.config_json.is_some() {
                    "config.json, "
                } else {
                    ""
                },
                e.dir.display()
            );
            if let Some(why) = &e.config_error {
                s += &format!("  no config.json: {why}\n");
            }
        }
        s += &format!("report: {}\n", self.report.display());
        s
    }
}

/// Keeps at most `n` points, evenly spaced through the list (deterministic).
fn thin<T: Clone>(v: &[T], n: usize) -> Vec<T> {
    if v.len() <= n {
        return v.to_vec();
    }
    (0..n).map(|i| v[i * v.len() / n].clone()).collect()
}

/// Exports the pick into `<out>/pick/`, draws the plots and writes report.md.
/// `flavor`: of the pick's config.json (`None`: [`Flavor::natural`] of the pick).
pub fn write_search(
    run: &SearchRun,
    flavor: Option<Flavor>,
    validation: Option<&Validation>,
) -> Result<Written, ReportError> {
    let out = run.out.clone();
    let o = &run.outcome;
    let space = &run.space;
    let ranked = ranked(&o.front, &space.pick);
    let measured_of = |id: u64| {
        validation.and_then(|v| {
            v.file.rows.iter().find(|r| r.id == id).and_then(|r| {
                r.measured
                    .as_ref()
                    .map(|m| (m.prefill_ms, m.decode_ms, m.peak_memory_bytes))
            })
        })
    };
    let pick = o.pick.map(|i| &o.front[i]);
    let export = match pick {
        Some(c) => {
            let card = Card {
                name: format!("{}-{}", space.name(), c.id),
                spec: &c.spec,
                flavor: flavor.unwrap_or_else(|| Flavor::natural(&c.spec)),
                predicted: c.estimate.map(|e| (space.device_workload(0), e)),
                cost: Some(run.cost.clone()),
                chosen: Some(Chosen {
                    space: space.name().to_string(),
                    space_path: space.path.display().to_string(),
                    strategy: o.strategy.name().into(),
                    seed: o.seed,
                    budget: o.budget,
                    id: c.id,
                    rank: 1,
                    front_size: o.front.len(),
                    pick_rule: pick_rule(&space.pick),
                    picked: true,
                }),
                metrics: Some(c.metrics.clone()),
                measured: measured_of(c.id),
                device_costs: run.device_costs.clone(),
            };
            let e = export(&out.join("pick"), &card)?;
            if let Some(why) = &e.config_error {
                tracing::warn!("the pick has no config.json: {why}");
            }
            Some(e)
        }
        None => None,
    };

    // Plots: the front over the cloud of feasible candidates, and the pick's breakdown.
    let mut plots = Vec::new();
    let cloud = thin(&run.cloud, 4000);
    fn to_m(n: u64) -> f64 {
        n as f64 / 1e6
    }
    let panel = |title, x_desc, x: fn(&Metrics) -> f64, y: Metric, y_desc| Scatter {
        title,
        x_desc,
        y_desc,
        others: cloud.iter().map(|m| (x(m), m.get(y))).collect(),
        labels: ["feasible candidates", "Pareto front", "pick"],
        front: o
            .front
            .iter()
            .map(|c| (x(&c.metrics), c.metrics.get(y)))
            .collect(),
        pick: pick.map(|c| (x(&c.metrics), c.metrics.get(y))),
        references: run
            .references
            .iter()
            .filter(|r| r.candidate.is_priced())
            .map(|r| {
                let m = &r.candidate.metrics;
                (format!("{} (reference)", r.name), (x(m), m.get(y)))
            })
            .collect(),
    };
    let front_svg = out.join("front.svg");
    plot::scatter(
        &front_svg,
        &format!("{} on {}", space.name(), run.cost.device),
        &[
            panel(
                "decode step vs non-embedding parameters",
                "non-embedding parameters (M)",
                |m| to_m(m.non_embedding_params),
                Metric::DecodeMs,
                "decode step (ms)",
            ),
            panel(
                "prefill vs parameters",
                "parameters (M)",
                |m| to_m(m.params),
                Metric::PrefillMs,
                "prefill (ms)",
            ),
        ],
    )?;
    plots.push(front_svg);
    if let (Some((metric, _)), false) = (
        tailor_search::output::regret_metric(space),
        o.devices.is_empty(),
    ) {
        let path = out.join("devices.svg");
        let titles: Vec<String> = o.devices.iter().map(|d| d.name.clone()).collect();
        let y_desc = format!("{metric} on the device");
        let panels: Vec<Scatter> = o
            .devices
            .iter()
            .enumerate()
            .map(|(d, dev)| {
                let xy = |c: &Candidate| {
                    (
                        to_m(c.metrics.non_embedding_params),
                        c.metrics.on(d).get(metric),
                    )
                };
                Scatter {
                    title: &titles[d],
                    x_desc: "non-embedding parameters (M)",
                    y_desc: &y_desc,
                    others: o.front.iter().map(xy).collect(),
                    labels: ["shared front on it", "its own front", "its own pick"],
                    front: dev.front.iter().map(xy).collect(),
                    pick: dev.pick.map(|i| xy(&dev.front[i])),
                    references: pick
                        .map(|c| ("shared pick".to_string(), xy(c)))
                        .into_iter()
                        .collect(),
                }
            })
            .collect();
        plot::scatter(
            &path,
            &format!(
                "{}: each device's own front (grey: the shared front on it)",
                space.name()
            ),
            &panels,
        )?;
        plots.push(path);
    }
    if let Some(e) = pick.and_then(|c| c.estimate) {
        let w = &space.device_workload(0);
        let path = out.join("breakdown.svg");
        plot::breakdown(
            &path,
            &format!("where the pick's time goes on {}", run.cost.device),
            &[
                (
                    format!("prefill ({} tokens)", w.prompt_tokens),
                    e.prefill_breakdown,
                ),
                (
                    format!("decode (context {})", w.context),
                    e.decode_breakdown,
                ),
            ],
        )?;
        plots.push(path);
    }
    if let Some(v) = validation {
        plots.push(v.calibration.clone());
    }

    let report = out.join("report.md");
    let md = markdown::report_md(run, &ranked, export.as_ref(), validation, &out);
    write_atomic(&report, md.as_bytes())?;
    Ok(Written {
        export,
        report,
        plots,
    })
}

/// The front row with the fastest decode among those with at least `params` parameters.
pub fn same_size_fastest(front: &[Candidate], params: u64) -> Option<&Candidate> {
    front
        .iter()
        .filter(|c| c.metrics.params >= params)
        .min_by(|a, b| {
            a.metrics
                .get(Metric::DecodeMs)
                .total_cmp(&b.metrics.get(Metric::DecodeMs))
                .then(a.id.cmp(&b.id))
        })
}

#[cfg(test)]
mod tests {
    use super::{
        BurnProfile, LlamaProfile, Reference, RunCheck, RunProfile, RunSection, SearchRun, Summary,
        ranked, write_search,
    };
    use crate::export::{CostKind, CostSource, Flavor};
    use crate::validation::RoundRatios;
    use std::path::{Path, PathBuf};
    use tailor_cost::{DeviceSpec, Roofline};
    use tailor_search::output::SearchSummary;
    use tailor_search::{
        NoProgress, SearchOptions, SearchSpace, Strategy, pick_order, price, search,
    };

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// The quickstart space searched exhaustively on the committed roofline device.
    fn quickstart(out: &Path) -> SearchRun {
        let space = SearchSpace::load(&root().join("search-spaces/quickstart.toml")).unwrap();
        let device = DeviceSpec::load(&root().join("profiles/host-roofline.toml")).unwrap();
        let cost = Roofline::new(device, &space.workload.precision).unwrap();
        let options = SearchOptions {
            strategy: Strategy::Exhaustive,
            budget: None,
            seed: 0,
            population: None,
        };
        let outcome = search(&space, &cost, &options, &NoProgress, &mut |_| Ok(())).unwrap();
        // A reference: the front's first row, as if a published model were that config.
        let first = &outcome.front[0];
        let references = vec![Reference {
            path: "reference.toml".into(),
            name: "reference".into(),
            id: Some(first.id),
            candidate: price(&space, &cost, first.id, first.spec.clone()),
            dominated_by: 0,
        }];
        let summary = SearchSummary::new(&space, &outcome, "host");
        SearchRun {
            space,
            outcome,
            references,
            cloud: Vec::new(),
            device_costs: Vec::new(),
            device_checks: Vec::new(),
            cost: CostSource {
                kind: CostKind::Roofline,
                file: "profiles/host-roofline.toml".into(),
                device: "host".into(),
                fingerprint: None,
                llama_fingerprint: None,
                profile_check: None,
                level: None,
            },
            out: out.to_path_buf(),
            summary,
        }
    }

    #[test]
    fn summary_json_round_trips_in_each_shape_and_the_report_is_written() {
        let out = crate::validation::tests::scratch("summary");
        let run = quickstart(&out);
        assert!(run.outcome.pick.is_some());
        let written = write_search(&run, Some(Flavor::Llama), None).unwrap();
        for file in [
            "report.md",
            "front.svg",
            "breakdown.svg",
            "pick/spec.toml",
            "pick/MODEL_CARD.md",
        ] {
            assert!(out.join(file).is_file(), "{file} missing");
        }
        let report = std::fs::read_to_string(&written.report).unwrap();
        assert!(report.contains("quickstart"), "{report}");

        let burn = RunSection {
            profile: RunProfile::Burn(BurnProfile {
                path: "profiles/host-flex.toml".into(),
                shapes_needed: 40,
                measured_now: 3,
                profile_wall_s: 1.5,
                profile_check: None,
                releveled: false,
                level: None,
                remeasured: 7,
                marked_stale: 3,
            }),
            check: Some(RunCheck {
                models: 4,
                rounds: 2,
                round_ratios: RoundRatios {
                    prefill: vec![1.0, 1.25],
                    decode: vec![0.5, 1.0],
                },
                prefill: tailor_cost::accuracy(&[(1.0, 1.1), (2.0, 1.9)]),
                decode: None,
                memory: None,
                engine_self: None,
                dir: "out/x/check".into(),
            }),
            run_wall_s: 9.0,
        };
        let llama = RunSection {
            profile: RunProfile::LlamaCpp(LlamaProfile {
                path: "profiles/host-llamacpp-q4_0.toml".into(),
                engine: "llama.cpp".into(),
                probes: 12,
                probe_visits_now: 4,
                profile_wall_s: 0.25,
                profile_check: Some(tailor_llamacpp::LlamaDrift {
                    profile: "profiles/host-llamacpp-q4_0.toml".into(),
                    measured: "2026-12-04T10:00:00Z".into(),
                    phases: vec![tailor_llamacpp::drift::PhaseDrift {
                        phase: tailor_llamacpp::Phase::Decode { context: 256 },
                        entries: 2,
                        ratio: 1.25,
                    }],
                    wall_s: 4.5,
                }),
                remeasured: 4,
                level: None,
            }),
            check: Some(RunCheck {
                models: 3,
                rounds: 2,
                round_ratios: RoundRatios::default(),
                prefill: None,
                decode: tailor_cost::accuracy(&[(1.0, 1.1), (2.0, 1.9), (3.0, 3.5)]),
                memory: None,
                engine_self: Some(crate::validation::SelfAgreement {
                    prefill_tau: 1.0,
                    decode_tau: 0.6,
                    prefill_spread: 0.01,
                    decode_spread: 0.02,
                }),
                dir: "out/y/check".into(),
            }),
            run_wall_s: 3.0,
        };
        for (files, section) in [
            (None, None),
            (Some(&written), None),
            (Some(&written), Some(burn)),
            (Some(&written), Some(llama)),
        ] {
            let summary = Summary::of(&run, files, section);
            summary.write(&out).unwrap();
            let back = Summary::load(&out.join("summary.json")).unwrap();
            assert_eq!(back, summary);
            let text = std::fs::read_to_string(out.join("summary.json")).unwrap();
            assert!(
                text.contains(
                    "\"pick_rule\": {\n    \"metric\": \"decode_ms\",\n    \"sense\": \"minimize\""
                ),
                "{text}"
            );
            assert_eq!(text.contains("\"report\""), files.is_some());
        }
        std::fs::remove_dir_all(&out).unwrap();
    }

    /// summary.json files written before the engines shared one check type still read:
    /// burn's check without the engine's self-agreement, llama.cpp's without round ratios.
    #[test]
    fn checks_of_earlier_summaries_read() {
        let burn: RunCheck = serde_json::from_str(
            r#"{"models": 4, "rounds": 2, "round_ratios": {"prefill": [1.0, 1.1],
            "decode": [1.0, 1.0]}, "prefill": null, "decode": null, "memory": null,
            "dir": "out/check"}"#,
        )
        .unwrap();
        assert_eq!(
            (burn.round_ratios.prefill.len(), burn.engine_self),
            (2, None)
        );
        let llama: RunCheck = serde_json::from_str(
            r#"{"models": 3, "rounds": 4, "prefill": null, "decode": null, "memory": null,
            "engine_self": {"prefill_tau": 1.0, "decode_tau": 0.8, "prefill_spread": 0.01,
            "decode_spread": 0.02}, "dir": "out/check"}"#,
        )
        .unwrap();
        assert_eq!(llama.engine_self.map(|s| s.decode_tau), Some(0.8));
        assert!(llama.round_ratios.prefill.is_empty());
    }

    #[test]
    fn the_report_ranks_the_front_as_the_search_picks() {
        let out = std::env::temp_dir();
        let run = quickstart(&out);
        let o = &run.outcome;
        let rows = ranked(&o.front, &run.space.pick);
        assert_eq!(rows.len(), o.front.len());
        assert_eq!(Some(rows[0].id), o.pick.map(|i| o.front[i].id));
        for w in rows.windows(2) {
            assert!(
                pick_order(
                    (&run.space.pick.0, run.space.pick.1),
                    (w[0].id, &w[0].metrics),
                    (w[1].id, &w[1].metrics)
                )
                .is_lt()
            );
        }
    }
}
