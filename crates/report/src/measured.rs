//! What a whole-model measurement prints (`tailor measure --json`) and `tailor validate`
//! reads back and keeps (`measured/<id>.json`).

use serde::{Deserialize, Serialize};
use tailor_cost::Fingerprint;
pub use tailor_cost::MemorySource;

/// One timed phase of a whole model, milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Timed {
    pub median_ms: f64,
    pub p10_ms: f64,
    pub p90_ms: f64,
    pub samples: usize,
    /// The session hit its time cap before its sample count.
    pub capped: bool,
}

/// What `tailor measure --json` prints (and `tailor validate` reads).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasureReport {
    pub spec: String,
    pub fingerprint: Fingerprint,
    pub prompt_tokens: u64,
    pub context: u64,
    pub params: u64,
    pub prefill: Timed,
    pub decode: Timed,
    /// Peak memory of the inference (see `memory_source`), bytes.
    pub peak_memory_bytes: Option<u64>,
    pub memory_source: MemorySource,
    pub build_s: f64,
}

impl MeasureReport {
    /// The table `tailor measure` prints for one model (`name` from its file, else its path).
    pub fn render(&self, name: Option<&str>) -> String {
        use crate::fmt::{Table, bytes, thousands};
        let f = &self.fingerprint;
        let mut out = format!(
            "{} measured with {} on {}, {} threads\n\n",
            name.unwrap_or(&self.spec),
            f.backend,
            f.machine(),
            f.threads
        );
        let mut t = Table::new(&["", "median", "p10", "p90", "samples"]);
        let row = |label: String, x: &Timed| {
            vec![
                label,
                format!("{:.3} ms", x.median_ms),
                format!("{:.3} ms", x.p10_ms),
                format!("{:.3} ms", x.p90_ms),
                format!("{}{}", x.samples, if x.capped { " (capped)" } else { "" }),
            ]
        };
        t.row(row(
            format!("prefill ({} tokens)", self.prompt_tokens),
            &self.prefill,
        ));
        t.row(row(
            format!("decode (context {})", self.context),
            &self.decode,
        ));
        out += &t.render(2);
        out += &format!(
            "\n  parameters {}; peak memory {} ({}); weights built in {:.1} s\n",
            thousands(u128::from(self.params)),
            self.peak_memory_bytes
                .map_or("not measured".into(), |b| bytes(b as f64)),
            self.memory_source,
            self.build_s
        );
        out
    }
}

/// What `tailor measure --memory-only --json` prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryReport {
    pub peak_memory_bytes: Option<u64>,
    pub memory_source: MemorySource,
}

impl MemoryReport {
    /// The line `tailor measure --memory-only` prints.
    pub fn render(&self) -> String {
        format!(
            "peak memory {} ({})\n",
            self.peak_memory_bytes
                .map_or("not measured".into(), |b| crate::fmt::bytes(b as f64)),
            self.memory_source
        )
    }
}

/// One model's sessions as one measurement: the median of its fastest session, the lowest
/// p10 and highest p90, all samples; memory from the first session.
///
/// The fastest session, not the median of the sessions: a round times every model in the
/// same stretch of time, and a slow stretch of the machine (a neighbour on the host, heat)
/// slows every model of that round alike, by as much as 20% here for minutes at a time, in
/// two rounds of three as easily as in one; interference only ever slows a session down,
/// so the fastest is the closest to the machine the profile measured. (A profile entry's
/// median over its sessions is robust in another way: its sessions are short and spread
/// over the whole profiling run.)
pub fn combine(sessions: &[MeasureReport]) -> Option<MeasureReport> {
    let first = sessions.first()?;
    let phase = |f: fn(&MeasureReport) -> &Timed| {
        let fastest = sessions
            .iter()
            .map(|s| f(s).median_ms)
            .fold(f64::INFINITY, f64::min);
        Timed {
            median_ms: fastest,
            p10_ms: sessions.iter().map(|s| f(s).p10_ms).fold(fastest, f64::min),
            p90_ms: sessions.iter().map(|s| f(s).p90_ms).fold(fastest, f64::max),
            samples: sessions.iter().map(|s| f(s).samples).sum(),
            capped: sessions.iter().any(|s| f(s).capped),
        }
    };
    Some(MeasureReport {
        prefill: phase(|s| &s.prefill),
        decode: phase(|s| &s.decode),
        ..first.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::{MeasureReport, MemoryReport, MemorySource};
    use serde_json::json;

    #[test]
    fn what_measure_prints_reads_back_by_its_type() {
        let timed = json!({"median_ms": 0.1 + 0.2, "p10_ms": 0.25, "p90_ms": 1.0 / 3.0,
            "samples": 10, "capped": true});
        let text = json!({
            "spec": "a.toml",
            "fingerprint": {"backend": "flex", "device": "cpu", "driver": "", "cpu_model": "x",
                "cores": 2, "threads": 2, "os": "linux-x86_64", "dtype": "f32",
                "burn_version": "0.22.1"},
            "prompt_tokens": 64, "context": 256, "params": 1,
            "prefill": timed, "decode": timed,
            "peak_memory_bytes": null, "memory_source": "pool", "build_s": 0.1,
        })
        .to_string();
        let m: MeasureReport = serde_json::from_str(&text).unwrap();
        assert_eq!(m.memory_source, MemorySource::Pool);
        assert_eq!(m.prefill.median_ms, 0.1 + 0.2);
        let again = serde_json::to_string_pretty(&m).unwrap();
        assert_eq!(serde_json::from_str::<MeasureReport>(&again).unwrap(), m);
        let mem: MemoryReport =
            serde_json::from_str(r#"{"peak_memory_bytes": 5, "memory_source": "rss"}"#).unwrap();
        assert_eq!(mem.memory_source, MemorySource::Rss);
        let bad = serde_json::from_str::<MemoryReport>(
            r#"{"peak_memory_bytes": 5, "memory_source": "vram"}"#,
        );
        assert!(
            bad.unwrap_err()
                .to_string()
                .contains("unknown variant `vram`")
        );
    }
}

/// One operator of a decode step timed in the model's chain (`tailor measure
/// --decode-ops`), beside what the profile predicts for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainRow {
    /// `embedding`, `norm`, `q_proj`, `kv_proj`, `attention`, `o_proj`, `residual`, `ffn`,
    /// `final_norm`, `lm_head`.
    pub op: String,
    /// Calls per step (over the layers).
    pub calls: u64,
    /// Its time per step (all calls), measured in the chain.
    pub measured: Timed,
    /// The profile's time for the same calls (its entries x calls), when a profile is given.
    pub predicted_ms: Option<f64>,
}

/// What `tailor measure --decode-ops` prints: a decode step operator by operator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainReport {
    pub spec: String,
    pub context: u64,
    pub rows: Vec<ChainRow>,
    /// The step with a sync after every operator (the sum of the rows).
    pub marked: Timed,
    /// The step without (as `tailor measure` times it), timed alternately with `marked`.
    pub plain: Timed,
    /// The profile compared with, if any.
    pub profile: Option<String>,
}

impl ChainReport {
    /// The table `tailor measure --decode-ops` prints.
    pub fn render(&self) -> String {
        let mut t = crate::fmt::Table::new(&[
            "operator",
            "calls",
            "in the chain ms",
            "p10-p90",
            "profile ms",
            "chain/profile",
        ]);
        let ratio = |m: f64, p: Option<f64>| {
            p.filter(|p| *p > 0.0)
                .map_or(String::new(), |p| format!("{:.2}", m / p))
        };
        let ms = |p: Option<f64>| p.map_or(String::new(), |p| format!("{p:.4}"));
        for r in &self.rows {
            t.row(vec![
                r.op.clone(),
                r.calls.to_string(),
                format!("{:.4}", r.measured.median_ms),
                format!("{:.4}-{:.4}", r.measured.p10_ms, r.measured.p90_ms),
                ms(r.predicted_ms),
                ratio(r.measured.median_ms, r.predicted_ms),
            ]);
        }
        let sum: f64 = self.rows.iter().map(|r| r.measured.median_ms).sum();
        let predicted: Option<f64> = self.rows.iter().map(|r| r.predicted_ms).sum();
        t.row(vec![
            "sum of the operators".into(),
            String::new(),
            format!("{sum:.4}"),
            String::new(),
            ms(predicted),
            ratio(sum, predicted),
        ]);
        for (name, m) in [
            ("step, sync after each operator", &self.marked),
            ("step as measured whole", &self.plain),
        ] {
            t.row(vec![
                name.into(),
                String::new(),
                format!("{:.4}", m.median_ms),
                format!("{:.4}-{:.4}", m.p10_ms, m.p90_ms),
                ms(predicted),
                ratio(m.median_ms, predicted),
            ]);
        }
        format!(
            "{}: a decode step after {} tokens, operator by operator ({} steps{})\n{}",
            self.spec,
            self.context,
            self.marked.samples,
            self.profile
                .as_ref()
                .map_or(String::new(), |p| format!("; profile {p}")),
            t.render(2)
        )
    }
}

/// One method's edit as measured on the device, beside its prediction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EditMeasured {
    pub step: Timed,
    /// Peak memory of an edit in a fresh process; `None` where not measured.
    pub peak_memory_bytes: Option<u64>,
    /// The profile's prediction of a step and of the peak.
    pub predicted_step_ms: Option<f64>,
    pub predicted_memory_bytes: Option<u64>,
}

/// What `tailor measure --edit` prints: an edit's prefix and steps timed on a whole
/// random-weight model, and their peak memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EditReport {
    pub spec: String,
    pub edit: tailor_cost::EditWorkload,
    /// The edited layer, 0-based.
    pub layer: u64,
    pub prefix: Timed,
    pub predicted_prefix_ms: Option<f64>,
    pub zo: EditMeasured,
    pub bp: EditMeasured,
    pub memory_source: MemorySource,
    /// The profile compared with, if any.
    pub profile: Option<String>,
}

impl EditReport {
    /// The table `tailor measure --edit` prints.
    pub fn render(&self) -> String {
        let mut out = format!(
            "{}: an edit of {} tokens at layer {} ({} target tokens, {} steps, {} zo queries)\n\n",
            self.spec,
            self.edit.tokens,
            self.layer,
            self.edit.target_tokens,
            self.edit.steps,
            self.edit.queries
        );
        let mut t = crate::fmt::Table::new(&[
            "",
            "measured ms",
            "p10-p90",
            "predicted ms",
            "measured/predicted",
            "peak memory",
            "predicted memory",
        ]);
        let ratio = |m: f64, p: Option<f64>| {
            p.filter(|p| *p > 0.0)
                .map_or(String::new(), |p| format!("{:.2}", m / p))
        };
        let ms = |p: Option<f64>| p.map_or(String::new(), |p| format!("{p:.3}"));
        let mem = |b: Option<u64>| b.map_or(String::new(), |b| crate::fmt::bytes(b as f64));
        let spread = |t: &Timed| format!("{:.3}-{:.3}", t.p10_ms, t.p90_ms);
        t.row(vec![
            "prefix (once)".into(),
            format!("{:.3}", self.prefix.median_ms),
            spread(&self.prefix),
            ms(self.predicted_prefix_ms),
            ratio(self.prefix.median_ms, self.predicted_prefix_ms),
            String::new(),
            String::new(),
        ]);
        for (name, m) in [("zo step", &self.zo), ("bp step", &self.bp)] {
            t.row(vec![
                name.into(),
                format!("{:.3}", m.step.median_ms),
                spread(&m.step),
                ms(m.predicted_step_ms),
                ratio(m.step.median_ms, m.predicted_step_ms),
                mem(m.peak_memory_bytes),
                mem(m.predicted_memory_bytes),
            ]);
        }
        out += &t.render(2);
        out += &format!(
            "\n  bp/zo measured: step {:.2}x",
            self.bp.step.median_ms / self.zo.step.median_ms
        );
        if let (Some(b), Some(z)) = (self.bp.peak_memory_bytes, self.zo.peak_memory_bytes) {
            out += &format!(
                ", peak memory {:.2}x ({})",
                b as f64 / z as f64,
                self.memory_source
            );
        }
        out += "\n";
        out
    }
}
