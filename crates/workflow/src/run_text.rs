//! What `tailor run` prints: one line per stage (profile, search, pick, check) and the
//! files written.

use crate::run::{LlamaRunOutcome, RunOutcome};
use tailor_report::fmt::{Table, bytes, si};
use tailor_search::Metric;

impl RunOutcome {
    /// The lines `tailor run` prints.
    pub fn render(&self) -> String {
        let (run, cost, profiled, remeasured, validation, written, wall_s) = (
            &self.search,
            &self.cost,
            &self.profiled,
            self.remeasured,
            self.validation.as_ref(),
            &self.written,
            self.wall_s,
        );
        let tailor_report::CostSource { file, device, .. } = &cost.source;
        let o = &run.outcome;
        let mut s = format!(
            "profile  {file} ({device}): {} shapes, {} sessions measured now ({:.0} s)\n",
            profiled.shapes_needed, profiled.measured_now, profiled.wall_s
        );
        if remeasured > 0 {
            s += &format!(
                "         {remeasured} entries re-measured: the drift check found them stale \
             (drifted more than 10%, or timed under load)\n"
            );
        }
        if let Some(l) = &cost.source.level {
            s += &format!("level    {}\n", l.summary());
        }
        s += &format!(
            "search   {}: {} points, {} feasible, front of {} ({})\n",
            run.space.name(),
            run.space.size(),
            o.feasible,
            o.front.len(),
            o.strategy.name()
        );
        if let Some(c) = o.pick.map(|i| &o.front[i]) {
            s += &pick_line(c);
        }
        if let Some(v) = validation {
            s += &check_text(v);
        }
        s += &format!("\nwrote {}/ ({wall_s:.0} s in all):\n", run.out.display());
        if let Some(e) = &written.export {
            for p in [&e.config_json, &Some(e.spec_toml.clone())]
                .into_iter()
                .flatten()
                .chain([&e.model_card])
            {
                s += &format!("  {}\n", p.display());
            }
            if let Some(why) = &e.config_error {
                s += &format!("  (no config.json: {why})\n");
            }
        }
        s += &format!("  {}\n", written.report.display());
        for p in &written.plots {
            s += &format!("  {}\n", p.display());
        }
        s += &format!(
            "  {0}/candidates.csv, {0}/front.json, {0}/summary.json\n",
            run.out.display()
        );
        s
    }
}

impl LlamaRunOutcome {
    /// The lines `tailor run --engine llama.cpp` prints.
    pub fn render(&self) -> String {
        let o = self;
        let (search, out) = (&o.search, &o.search.out);
        let s_o = &search.outcome;
        let mut s = format!(
            "profile  {} (llama.cpp, {}): {} probe models, {} visits now ({:.0} s)\n",
            o.profile.display(),
            o.weights,
            o.profiled.probes,
            o.profiled.runs_now,
            o.profiled.wall_s
        );
        s += &format!(
            "search   {}: {} points, {} feasible, front of {} ({})\n",
            search.space.name(),
            search.space.size(),
            s_o.feasible,
            s_o.front.len(),
            s_o.strategy.name()
        );
        if let Some(c) = s_o.pick.map(|i| &s_o.front[i]) {
            s += &pick_line(c);
        }
        if let Some(v) = &o.check {
            s += &check_text(v);
        }
        s += &format!(
            "\nwrote {}/ ({:.0} s in all):\n  {}\n",
            out.display(),
            o.wall_s,
            o.written.report.display()
        );
        s += &format!(
            "  {0}/candidates.csv, {0}/front.json, {0}/summary.json\n",
            out.display()
        );
        s
    }
}

/// The pick's line of `tailor run`'s summary.
pub fn pick_line(c: &tailor_search::Candidate) -> String {
    let (m, sp) = (&c.metrics, &c.spec);
    format!(
        "pick     {} x {} layers, heads {}/{}, ffn {} {}: {} params; prefill {:.2} ms, \
         decode {:.3} ms ({:.1} tok/s), memory {}\n",
        sp.hidden_size,
        sp.num_layers,
        sp.num_heads,
        sp.num_kv_heads,
        sp.intermediate_size,
        sp.activation,
        si(m.params as f64, ""),
        m.get(Metric::PrefillMs),
        m.get(Metric::DecodeMs),
        1000.0 / m.get(Metric::DecodeMs),
        bytes(m.get(Metric::PeakMemory))
    )
}

/// The lines of a run's check, either engine: each quantity's agreement with the
/// prediction, beside the engine's agreement with itself over the same models.
fn check_text(v: &tailor_report::validation::Validation) -> String {
    let f = &v.file;
    let own = format!("{} vs itself", f.engine);
    let mut t = Table::new(&["checked", "within 10%", "mean |err|", "max |err|", &own]);
    let selfs = f.engine_self;
    for (name, a, own) in [
        ("prefill", f.prefill, selfs.map(|s| s.prefill_tau)),
        ("decode", f.decode, selfs.map(|s| s.decode_tau)),
        ("memory", f.memory, None),
    ] {
        if let Some(a) = a {
            t.row(vec![
                name.into(),
                format!("{}/{}", (a.within_10pct * a.n as f64).round(), a.n),
                format!("{:.1}%", 100.0 * a.mean_ape),
                format!("{:.1}%", 100.0 * a.max_ape),
                own.map_or("-".into(), |tau| format!("tau {tau:.3}")),
            ]);
        }
    }
    format!(
        "check    the pick and {} front rows built and timed whole in {} ({} rounds, {:.0} s; \
         {}/validate.json):\n{}",
        f.rows.len().saturating_sub(1),
        f.engine,
        f.rounds,
        f.wall_s,
        v.out.display(),
        t.render(2)
    )
}
