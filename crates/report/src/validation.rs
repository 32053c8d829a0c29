//! Predictions checked against whole models (`tailor validate`, `tailor run`'s check):
//! `validate.json` ([`ValidateFile`]), `validate.csv` and `calibration.svg`, and the table
//! printed for people.

use crate::ReportError;
use crate::fmt::{ACCURACY_HEADER, Table, accuracy_cells, bytes};
use crate::measured::{MeasureReport, Timed};
use crate::plot::{self, Calibration};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tailor_cost::{Accuracy, Drift, Fingerprint, Level, Workload, accuracy};
use tailor_spec::ModelSpec;
use tailor_spec::files::write_atomic;

/// Predicted and measured values of one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub id: u64,
    pub spec: ModelSpec,
    pub params: u64,
    pub predicted_prefill_ms: f64,
    pub predicted_decode_ms: f64,
    pub predicted_memory_bytes: u64,
    /// Operators of the prediction not measured in the profile (interpolated, ...).
    pub predicted_ops_not_measured: usize,
    pub measured: Option<MeasureReport>,
    pub error: Option<String>,
}

/// Per round, the median over the models timed in it of measured / predicted: the
/// machine's speed in that round relative to the profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundRatios {
    pub prefill: Vec<f64>,
    pub decode: Vec<f64>,
}

impl RoundRatios {
    /// From the rows and, per row, its sessions (one per round it was timed in).
    pub fn of(rows: &[Row], sessions: &[Vec<MeasureReport>]) -> Self {
        let per_round = |predicted: fn(&Row) -> f64, f: fn(&MeasureReport) -> &Timed| {
            let rounds = sessions.iter().map(Vec::len).max().unwrap_or(0);
            (0..rounds)
                .map(|k| {
                    tailor_cost::median(
                        rows.iter()
                            .zip(sessions)
                            .filter(|(r, _)| r.measured.is_some())
                            .filter_map(|(r, s)| Some(f(s.get(k)?).median_ms / predicted(r)))
                            .collect(),
                    )
                })
                .collect()
        };
        Self {
            prefill: per_round(|r| r.predicted_prefill_ms, |m| &m.prefill),
            decode: per_round(|r| r.predicted_decode_ms, |m| &m.decode),
        }
    }

    /// The rounds ran at speeds more than 10% apart: one line per quantity.
    pub fn uneven(&self) -> Vec<String> {
        [("prefill", &self.prefill), ("decode", &self.decode)]
            .into_iter()
            .filter_map(|(name, r)| {
                let lo = r.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = r.iter().copied().fold(0.0, f64::max);
                (hi > 1.10 * lo).then(|| {
                    format!(
                        "the machine's speed changed between rounds: {name} measured/predicted \
                         by round {}; each model keeps its fastest round",
                        join_ratios(r)
                    )
                })
            })
            .collect()
    }
}

fn join_ratios(r: &[f64]) -> String {
    r.iter()
        .map(|x| format!("{x:.3}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// What was checked, besides the rows.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The space the models came from.
    pub space: String,
    /// The profile behind the predictions, and the setup it measured.
    pub profile: String,
    pub fingerprint: Fingerprint,
    pub workload: Workload,
    pub seed: u64,
    pub rounds: u64,
    /// The profile's subset re-timed here before the check.
    pub profile_check: Option<Drift>,
    /// The level of whole models the predictions were scaled to (`--relevel`).
    pub level: Option<Level>,
    /// Entries of the drifted classes re-measured before the check (`--remeasure`).
    pub remeasured: usize,
}

/// `validate.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidateFile {
    pub space: String,
    pub profile: String,
    pub fingerprint: Fingerprint,
    pub workload: Workload,
    pub samples: usize,
    pub measured: usize,
    pub failed: usize,
    pub seed: u64,
    pub rounds: u64,
    pub round_ratios: RoundRatios,
    pub wall_s: f64,
    pub prefill: Option<Accuracy>,
    pub decode: Option<Accuracy>,
    pub memory: Option<Accuracy>,
    pub rows: Vec<Row>,
    /// The drift check before the validation (`tailor validate --no-recheck`: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_check: Option<Drift>,
    /// The predictions are scaled to the level of whole models timed here before
    /// (`--relevel`): `level` says by how much and on which models.
    #[serde(default)]
    pub releveled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    /// Entries of the classes that check found drifted, re-measured in the profile file
    /// before the models were timed (`--remeasure`, and `tailor run`).
    #[serde(default)]
    pub remeasured: usize,
}

/// The accuracy of one quantity over the measured models (`None` when not measured).
fn stats(rows: &[Row], f: impl Fn(&Row, &MeasureReport) -> Option<(f64, f64)>) -> Option<Accuracy> {
    let pairs: Vec<(f64, f64)> = rows
        .iter()
        .filter_map(|r| r.measured.as_ref().and_then(|m| f(r, m)))
        .collect();
    accuracy(&pairs)
}

impl ValidateFile {
    /// Compares each row's prediction with its measurement.
    pub fn new(setup: Setup, rows: Vec<Row>, round_ratios: RoundRatios, wall_s: f64) -> Self {
        let measured = rows.iter().filter(|r| r.measured.is_some()).count();
        Self {
            space: setup.space,
            profile: setup.profile,
            fingerprint: setup.fingerprint,
            workload: setup.workload,
            samples: rows.len(),
            measured,
            failed: rows.len() - measured,
            seed: setup.seed,
            rounds: setup.rounds,
            round_ratios,
            wall_s,
            prefill: stats(&rows, |r, m| {
                Some((r.predicted_prefill_ms, m.prefill.median_ms))
            }),
            decode: stats(&rows, |r, m| {
                Some((r.predicted_decode_ms, m.decode.median_ms))
            }),
            memory: stats(&rows, |r, m| {
                m.peak_memory_bytes
                    .map(|b| (r.predicted_memory_bytes as f64, b as f64))
            }),
            rows,
            profile_check: setup.profile_check,
            releveled: setup.level.is_some(),
            level: setup.level,
            remeasured: setup.remeasured,
        }
    }

    /// Reads a `validate.json`.
    pub fn load(path: &Path) -> Result<Self, ReportError> {
        crate::read_json(path)
    }
}

/// The result of checking predictions against whole models, and where its files are.
#[derive(Debug, Clone)]
pub struct Validation {
    pub file: ValidateFile,
    pub out: PathBuf,
    pub calibration: PathBuf,
}

/// Writes validate.json, validate.csv and calibration.svg (captioned `caption`) into `out`.
pub fn write(out: &Path, file: ValidateFile, caption: &str) -> Result<Validation, ReportError> {
    crate::write_json(&out.join("validate.json"), &file)?;
    write_atomic(&out.join("validate.csv"), csv(&file.rows).as_bytes())?;
    let rows = &file.rows;
    let ms = |f: fn(&Row, &MeasureReport) -> (f64, f64)| -> Vec<(f64, f64)> {
        rows.iter()
            .filter_map(|r| r.measured.as_ref().map(|m| f(r, m)))
            .collect()
    };
    let mut panels = vec![
        Calibration {
            title: "prefill",
            unit: "ms",
            points: ms(|r, m| (r.predicted_prefill_ms, m.prefill.median_ms)),
        },
        Calibration {
            title: "decode step",
            unit: "ms",
            points: ms(|r, m| (r.predicted_decode_ms, m.decode.median_ms)),
        },
    ];
    if file.memory.is_some() {
        panels.push(Calibration {
            title: "peak memory",
            unit: "MiB",
            points: rows
                .iter()
                .filter_map(|r| {
                    let b = r.measured.as_ref()?.peak_memory_bytes?;
                    Some((
                        r.predicted_memory_bytes as f64 / 1048576.0,
                        b as f64 / 1048576.0,
                    ))
                })
                .collect(),
        });
    }
    let calibration = out.join("calibration.svg");
    plot::calibration(&calibration, caption, &panels)?;
    Ok(Validation {
        file,
        out: out.to_path_buf(),
        calibration,
    })
}

impl Validation {
    /// Whole models measured more than 10% (median) away from the prediction: the profile no
    /// longer describes the machine (load, a thermal or power state, another host behind the
    /// same CPU name). One line per quantity, saying what to do.
    pub fn drift(&self) -> Vec<String> {
        [("prefill", self.file.prefill), ("decode", self.file.decode)]
            .into_iter()
            .filter_map(|(name, a)| {
                let r = a?.median_ratio;
                ((r - 1.0).abs() > 0.10).then(|| {
                    format!(
                        "{name} measured {:.0}% {} than predicted (median over {} models): the \
                         profile may be stale; re-measure it (`tailor profile --space ... --force`) \
                         or check the machine's load",
                        100.0 * (r - 1.0).abs(),
                        if r > 1.0 { "slower" } else { "faster" },
                        a.map_or(0, |a| a.n)
                    )
                })
            })
            .collect()
    }

    /// The tables `tailor validate` prints.
    pub fn render(&self) -> String {
        let v = &self.file;
        let (rows, acc) = (&v.rows, [v.prefill, v.decode, v.memory]);
        let mut t = Table::new(&[
            "id",
            "hidden",
            "layers",
            "heads",
            "kv",
            "ffn",
            "act",
            "prefill pred",
            "meas",
            "err",
            "decode pred",
            "meas",
            "err",
            "memory pred",
            "meas",
            "err",
        ]);
        let pct = |p: f64, m: f64| format!("{:+.1}%", 100.0 * (p - m) / m);
        for r in rows {
            let s = &r.spec;
            let mut row = vec![
                r.id.to_string(),
                s.hidden_size.to_string(),
                s.num_layers.to_string(),
                s.num_heads.to_string(),
                s.num_kv_heads.to_string(),
                s.intermediate_size.to_string(),
                s.activation.to_string(),
            ];
            match &r.measured {
                Some(m) => {
                    row.extend([
                        format!("{:.2}", r.predicted_prefill_ms),
                        format!("{:.2}", m.prefill.median_ms),
                        pct(r.predicted_prefill_ms, m.prefill.median_ms),
                        format!("{:.3}", r.predicted_decode_ms),
                        format!("{:.3}", m.decode.median_ms),
                        pct(r.predicted_decode_ms, m.decode.median_ms),
                        bytes(r.predicted_memory_bytes as f64),
                    ]);
                    match m.peak_memory_bytes {
                        Some(b) => row.extend([
                            bytes(b as f64),
                            pct(r.predicted_memory_bytes as f64, b as f64),
                        ]),
                        None => row.extend(["-".into(), "-".into()]),
                    }
                }
                None => row.extend(std::iter::repeat_n("failed".to_string(), 9)),
            }
            t.row(row);
        }
        let mut s = format!(
            "predicted vs measured (err = (predicted - measured) / measured)\n{}",
            t.render(2)
        );
        let mut a = Table::new(&ACCURACY_HEADER);
        for (name, x) in ["prefill", "decode", "memory"].iter().zip(acc) {
            let mut row = vec![name.to_string()];
            match x {
                Some(x) => row.extend(accuracy_cells(&x)),
                None => row.push("not measured".into()),
            }
            a.row(row);
        }
        s += &format!("\naccuracy over {} models\n{}", v.measured, a.render(2));
        s += &format!(
            "  measured/predicted by round (each model keeps its fastest): prefill {}, decode {}\n",
            join_ratios(&v.round_ratios.prefill),
            join_ratios(&v.round_ratios.decode)
        );
        if let Some(d) = &v.profile_check {
            s += &format!(
                "  drift check of the profile ({:.0} s): {}\n",
                d.wall_s,
                d.summary()
            );
        }
        if v.remeasured > 0 {
            s += &format!(
                "  {} entries of the profile re-measured before the models were timed\n",
                v.remeasured
            );
        }
        if let Some(l) = &v.level {
            let unlevelled = |a: Option<Accuracy>, k: f64| {
                a.map_or("-".to_string(), |a| format!("{:.3}", a.median_ratio * k))
            };
            s += &format!(
                "  predictions levelled by {}\n  measured/predicted before levelling: prefill \
                 {}, decode {}\n",
                l.summary(),
                unlevelled(v.prefill, l.prefill),
                unlevelled(v.decode, l.decode)
            );
        }
        s += &format!(
            "\n  {:.0} s; validate.json, validate.csv and calibration.svg in {}\n",
            v.wall_s,
            self.out.display()
        );
        s
    }
}

/// The tables `tailor validate` prints for a llama.cpp validation (its files are in `out`).
pub fn render_llama(v: &tailor_llamacpp::validate::Validation, out: &Path) -> String {
    let mut header = ACCURACY_HEADER.to_vec();
    header.push("llama-bench vs itself");
    let mut t = Table::new(&header);
    let selfs = v.engine_self;
    for (name, a, own) in [
        (
            "prefill",
            v.prefill,
            selfs.map(|s| (s.prefill_tau, s.prefill_spread)),
        ),
        (
            "decode",
            v.decode,
            selfs.map(|s| (s.decode_tau, s.decode_spread)),
        ),
        ("memory", v.memory, None),
    ] {
        if let Some(a) = a {
            let mut row = vec![name.to_string()];
            row.extend(accuracy_cells(&a));
            row.push(own.map_or("-".into(), |(tau, spread)| {
                format!("tau {tau:.3}, spread {:.1}%", 100.0 * spread)
            }));
            t.row(row);
        }
    }
    let measured = v.rows.iter().filter(|r| r.measured.is_some()).count();
    let levels = |l: &[f64]| {
        l.iter()
            .map(|x| format!("{x:.2}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let level = v.level.as_ref().map_or(String::new(), |l| {
        format!(
            "predictions levelled to {} whole models timed first: {}\n",
            l.anchors.len(),
            l.summary()
        )
    });
    let check = v.profile_check.as_ref().map_or(String::new(), |d| {
        format!(
            "profile re-checked first ({:.0} s), time now / profiled: {}{}\n",
            d.wall_s,
            d.summary(),
            if v.remeasured > 0 {
                format!(
                    "; {} probe visits of the drifted phases re-timed",
                    v.remeasured
                )
            } else {
                String::new()
            }
        )
    });
    format!(
        "{check}{level}validated {measured} of {} models in llama.cpp ({} weights), {} rounds, {:.0} s\n{}\
         round levels (each round / model median): prefill {}, decode {}\n\
         wrote {}/validate.json, validate.csv\n",
        v.rows.len(),
        v.workload.precision.weights,
        v.rounds,
        v.wall_s,
        t.render(2),
        levels(&v.round_ratios.prefill),
        levels(&v.round_ratios.decode),
        out.display()
    )
}

/// One line of `validate.csv`, for both engines: a model's shape, tailor's parameter count
/// (and the engine's own, where it reports one), predicted and measured prefill, decode
/// step and peak memory, and why it was not measured. Written by [`CsvRow::line`], read
/// back by [`read_csv`]; floats are written in Rust's shortest round-trip form, so a row
/// reads back exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvRow {
    pub id: u64,
    pub hidden_size: u64,
    pub num_layers: u64,
    pub num_heads: u64,
    pub num_kv_heads: u64,
    pub head_dim: u64,
    pub intermediate_size: u64,
    pub activation: tailor_spec::Activation,
    pub params: u64,
    /// The engine's own count (llama-bench's `model_n_params`); empty for burn.
    pub params_engine: Option<u64>,
    pub predicted_prefill_ms: f64,
    pub measured_prefill_ms: Option<f64>,
    pub predicted_decode_ms: f64,
    pub measured_decode_ms: Option<f64>,
    pub predicted_memory_bytes: u64,
    pub measured_memory_bytes: Option<u64>,
    pub error: String,
    /// The stack, one letter a layer (`CCCACCCA`; as `candidates.csv` writes it): a last
    /// column written when some row of the file has a `[model.stack]`.
    #[serde(default)]
    pub stack: Option<String>,
}

/// The columns of `validate.csv` (and [`STACK_COLUMN`] after them where a row has a stack).
pub const CSV_HEADER: &str = "id,hidden_size,num_layers,num_heads,num_kv_heads,head_dim,\
    intermediate_size,activation,params,params_engine,predicted_prefill_ms,measured_prefill_ms,\
    predicted_decode_ms,measured_decode_ms,predicted_memory_bytes,measured_memory_bytes,error";

/// The last column of `validate.csv` when a row has a stack.
pub const STACK_COLUMN: &str = "stack";

impl CsvRow {
    fn shape(id: u64, spec: &ModelSpec, params: u64) -> Self {
        Self {
            id,
            hidden_size: spec.hidden_size,
            num_layers: spec.num_layers,
            num_heads: spec.num_heads,
            num_kv_heads: spec.num_kv_heads,
            head_dim: spec.head_dim(),
            intermediate_size: spec.intermediate_size,
            activation: spec.activation,
            params,
            params_engine: None,
            predicted_prefill_ms: 0.0,
            measured_prefill_ms: None,
            predicted_decode_ms: 0.0,
            measured_decode_ms: None,
            predicted_memory_bytes: 0,
            measured_memory_bytes: None,
            error: String::new(),
            stack: spec.stack.is_some().then(|| spec.pattern_picture()),
        }
    }

    /// A burn validation's row.
    pub fn of_burn(r: &Row) -> Self {
        let m = r.measured.as_ref();
        Self {
            predicted_prefill_ms: r.predicted_prefill_ms,
            measured_prefill_ms: m.map(|m| m.prefill.median_ms),
            predicted_decode_ms: r.predicted_decode_ms,
            measured_decode_ms: m.map(|m| m.decode.median_ms),
            predicted_memory_bytes: r.predicted_memory_bytes,
            measured_memory_bytes: m.and_then(|m| m.peak_memory_bytes),
            error: error_cell(r.error.as_deref()),
            ..Self::shape(r.id, &r.spec, r.params)
        }
    }

    /// A llama.cpp validation's row.
    pub fn of_llama(r: &tailor_llamacpp::validate::Row) -> Self {
        let m = r.measured.as_ref();
        Self {
            params_engine: m.map(|m| m.params),
            predicted_prefill_ms: r.predicted_prefill_ms,
            measured_prefill_ms: m.map(|m| m.prefill_ms()),
            predicted_decode_ms: r.predicted_decode_ms,
            measured_decode_ms: m.map(|m| m.decode_ms()),
            predicted_memory_bytes: r.predicted_memory_bytes,
            measured_memory_bytes: m.and_then(|m| m.peak_rss_bytes),
            error: error_cell(r.error.as_deref()),
            ..Self::shape(r.id, &r.spec, r.params)
        }
    }

    /// The row as a CSV line (no newline); the error is always quoted, its quotes doubled;
    /// with `stack`, the stack column last.
    pub fn line(&self, stack: bool) -> String {
        let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v}"));
        let int = |v: Option<u64>| v.map_or(String::new(), |v| v.to_string());
        let mut line = format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},\"{}\"",
            self.id,
            self.hidden_size,
            self.num_layers,
            self.num_heads,
            self.num_kv_heads,
            self.head_dim,
            self.intermediate_size,
            self.activation,
            self.params,
            int(self.params_engine),
            self.predicted_prefill_ms,
            opt(self.measured_prefill_ms),
            self.predicted_decode_ms,
            opt(self.measured_decode_ms),
            self.predicted_memory_bytes,
            int(self.measured_memory_bytes),
            self.error.replace('"', "\"\""),
        );
        if stack {
            line.push(',');
            line += self.stack.as_deref().unwrap_or("");
        }
        line
    }
}

/// An error as the file holds it: double quotes become single ones (the cell is quoted).
fn error_cell(error: Option<&str>) -> String {
    error.unwrap_or("").replace('"', "'")
}

/// The text of `validate.csv` for these rows.
pub fn csv_text(rows: &[CsvRow]) -> String {
    let stack = rows.iter().any(|r| r.stack.is_some());
    let mut s = String::from(CSV_HEADER);
    if stack {
        s.push(',');
        s += STACK_COLUMN;
    }
    s.push('\n');
    for r in rows {
        s += &r.line(stack);
        s.push('\n');
    }
    s
}

fn csv(rows: &[Row]) -> String {
    csv_text(&rows.iter().map(CsvRow::of_burn).collect::<Vec<_>>())
}

/// Reads a `validate.csv` back; an error names the file, the line and the column.
pub fn read_csv(path: &Path) -> Result<Vec<CsvRow>, tailor_spec::FileError> {
    let dense: Vec<&str> = CSV_HEADER.split(',').collect();
    let stacked: Vec<&str> = dense.iter().copied().chain([STACK_COLUMN]).collect();
    tailor_search::output::read_csv_rows(path, &[&dense, &stacked])
}

#[cfg(test)]
pub(crate) mod tests {
    use super::{RoundRatios, Row, Setup, ValidateFile, Validation, write};
    use crate::measured::{MeasureReport, combine};
    use serde_json::json;
    use tailor_spec::ModelSpec;

    /// A session of a model: prefill and decode medians, ms.
    fn session(prefill: f64, decode: f64) -> MeasureReport {
        let timed = |m: f64| json!({"median_ms": m, "p10_ms": 0.9 * m, "p90_ms": 1.2 * m, "samples": 10, "capped": false});
        serde_json::from_value(json!({
            "spec": "a.toml",
            "fingerprint": {"backend": "flex", "device": "cpu", "driver": "", "cpu_model": "x",
                "cores": 2, "threads": 2, "os": "linux-x86_64", "dtype": "f32", "burn_version": "0.22.1"},
            "prompt_tokens": 64, "context": 256, "params": 1,
            "prefill": timed(prefill), "decode": timed(decode),
            "peak_memory_bytes": 1000, "memory_source": "rss", "build_s": 0.1,
        }))
        .unwrap()
    }

    #[test]
    fn a_model_keeps_its_fastest_session_and_the_whole_spread() {
        let m = combine(&[session(12.0, 2.0), session(10.0, 2.4), session(11.0, 2.2)]).unwrap();
        assert_eq!(m.prefill.median_ms, 10.0);
        assert_eq!(m.decode.median_ms, 2.0);
        assert_eq!((m.prefill.p10_ms, m.prefill.p90_ms), (9.0, 12.0 * 1.2));
        assert_eq!(m.prefill.samples, 30);
        assert_eq!(m.peak_memory_bytes, Some(1000));
        assert!(combine(&[]).is_none());
    }

    #[test]
    fn round_ratios_show_a_slow_round() {
        let row = |prefill: f64, decode: f64, measured: bool| Row {
            id: 0,
            spec: ModelSpec::llama(8192, 512, 4, 8, 4, 1408),
            params: 1,
            predicted_prefill_ms: prefill,
            predicted_decode_ms: decode,
            predicted_memory_bytes: 1,
            predicted_ops_not_measured: 0,
            measured: measured.then(|| session(prefill, decode)),
            error: (!measured).then(|| "failed".into()),
        };
        let rows = [
            row(10.0, 2.0, true),
            row(20.0, 4.0, true),
            row(30.0, 6.0, false),
        ];
        // Round 2 ran 20% slow in prefill for every model; the failed model is left out.
        let sessions = vec![
            vec![session(10.0, 2.0), session(12.0, 2.0), session(10.5, 2.1)],
            vec![session(21.0, 4.0), session(24.0, 4.0), session(20.0, 4.2)],
            vec![session(99.0, 99.0)],
        ];
        let r = RoundRatios::of(&rows, &sessions);
        assert_eq!(r.prefill, vec![1.025, 1.2, 1.025]);
        assert_eq!(r.decode, vec![1.0, 1.0, 1.05]);
        let uneven = r.uneven();
        assert_eq!(uneven.len(), 1, "{uneven:?}");
        assert!(uneven[0].contains("prefill") && uneven[0].contains("1.025 1.200 1.025"));
    }

    /// A fresh empty folder under the system's temporary folder.
    pub(crate) fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("tailor-report-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn validate_json_round_trips_and_the_csv_and_plot_are_written() {
        let row = |id: u64, prefill: f64, decode: f64, measured: bool| Row {
            id,
            spec: ModelSpec::llama(8192, 512, 4, 8, 4, 1408),
            params: 11,
            predicted_prefill_ms: prefill,
            predicted_decode_ms: decode,
            predicted_memory_bytes: 900,
            predicted_ops_not_measured: 0,
            measured: measured.then(|| session(1.2 * prefill, 0.95 * decode)),
            error: (!measured).then(|| "exit 1: \"boom\"".into()),
        };
        let rows = vec![
            row(3, 10.0, 2.0, true),
            row(5, 20.0, 4.0, true),
            row(8, 30.0, 6.0, false),
        ];
        let sessions: Vec<Vec<MeasureReport>> = rows
            .iter()
            .filter_map(|r| r.measured.clone())
            .map(|m| vec![m])
            .collect();
        let ratios = RoundRatios::of(&rows[..2], &sessions);
        let setup = Setup {
            space: "search-spaces/quickstart.toml".into(),
            profile: "profiles/host-flex.toml".into(),
            fingerprint: session(1.0, 1.0).fingerprint,
            workload: tailor_cost::Workload {
                prompt_tokens: 64,
                context: 256,
                precision: tailor_spec::Precision::for_weights(tailor_spec::DType::F32),
            },
            seed: 7,
            rounds: 1,
            profile_check: None,
            // The predictions were levelled: x1.1 in prefill, x0.9 in decode.
            level: tailor_cost::Level::new(
                vec![tailor_cost::Anchor {
                    id: 41,
                    params: 2_000_000,
                    predicted_prefill_ms: 10.0,
                    measured_prefill_ms: 11.0,
                    predicted_decode_ms: 2.0,
                    measured_decode_ms: 1.8,
                }],
                "2026-12-03T08:00:00Z".into(),
            ),
            remeasured: 3,
        };
        let file = ValidateFile::new(setup, rows, ratios, 12.5);
        assert!(file.releveled);
        assert_eq!((file.samples, file.measured, file.failed), (3, 2, 1));
        let prefill = file.prefill.unwrap();
        assert!((prefill.median_ratio - 1.2).abs() < 1e-9, "{prefill:?}");
        let memory = file.memory.unwrap();
        assert!((memory.median_ratio - 1000.0 / 900.0).abs() < 1e-9);

        let dir = scratch("validate");
        let v: Validation = write(&dir, file.clone(), "caption").unwrap();
        assert_eq!(
            ValidateFile::load(&dir.join("validate.json")).unwrap(),
            file
        );
        let csv = std::fs::read_to_string(dir.join("validate.csv")).unwrap();
        // validate.csv reads back as its row type, exactly.
        let back = super::read_csv(&dir.join("validate.csv")).unwrap();
        let rows: Vec<super::CsvRow> = file.rows.iter().map(super::CsvRow::of_burn).collect();
        assert_eq!(back, rows);
        assert_eq!(back[2].error, "exit 1: 'boom'");
        assert_eq!(back[0].measured_prefill_ms, Some(12.0));
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[0].starts_with("id,hidden_size,"));
        assert!(
            lines[3].starts_with("8,512,4,8,4,64,1408,")
                && lines[3].ends_with(",\"exit 1: 'boom'\""),
            "{}",
            lines[3]
        );
        let svg = std::fs::read_to_string(&v.calibration).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("caption") && svg.contains("peak memory"));
        assert!(
            v.drift().len() == 1 && v.drift()[0].starts_with("prefill measured 20% slower"),
            "{:?}",
            v.drift()
        );
        let text = v.render();
        assert!(text.contains("accuracy over 2 models"), "{text}");
        assert!(
            text.contains("3 entries of the profile re-measured"),
            "{text}"
        );
        assert!(
            text.contains("predictions levelled by prefill x1.100, decode x0.900 (measured/predicted over 1 whole model: 41 (2.0M: 1.10/0.90))"),
            "{text}"
        );
        // The ratio against the profile's own predictions: 1.2 x 1.1 and 0.95 x 0.9.
        assert!(
            text.contains("measured/predicted before levelling: prefill 1.320, decode 0.855"),
            "{text}"
        );
        // A file of another shape is an error that names it.
        std::fs::write(dir.join("bad.json"), "{\"space\": 3}").unwrap();
        let e = ValidateFile::load(&dir.join("bad.json"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad.json:1:11: invalid type"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[cfg(test)]
mod csv_tests {
    use super::{CsvRow, csv_text, read_csv};
    use tailor_spec::ModelSpec;

    /// The llama.cpp engine's rows go into the same file type: llama-bench's own parameter
    /// count beside tailor's, the median of the rounds.
    #[test]
    fn llama_rows_round_trip_and_a_bad_cell_is_named() {
        let row: tailor_llamacpp::validate::Row = serde_json::from_value(serde_json::json!({
            "id": 4,
            "spec": ModelSpec::llama(512, 128, 2, 2, 1, 256),
            "params": 1000,
            "predicted_prefill_ms": 1.25,
            "predicted_decode_ms": 0.5,
            "predicted_memory_bytes": 4096,
            "derived": [],
            "measured": {"prefill_rounds_ms": [1.0, 3.0, 2.0], "decode_rounds_ms": [0.4, 0.6],
                         "peak_rss_bytes": 5000, "params": 1002, "file_bytes": 9000}
        }))
        .unwrap();
        let failed: tailor_llamacpp::validate::Row = serde_json::from_value(serde_json::json!({
            "id": 9,
            "spec": ModelSpec::llama(512, 128, 2, 2, 1, 256),
            "params": 1000,
            "predicted_prefill_ms": 1.0,
            "predicted_decode_ms": 0.5,
            "predicted_memory_bytes": 4096,
            "derived": [],
            "error": "llama-bench failed, \"signal 11\"\nsecond line"
        }))
        .unwrap();
        let rows: Vec<CsvRow> = [&row, &failed].into_iter().map(CsvRow::of_llama).collect();
        assert_eq!(rows[0].params_engine, Some(1002));
        assert_eq!(rows[0].measured_prefill_ms, Some(2.0));
        assert_eq!(rows[0].measured_decode_ms, Some(0.5));
        let dir = std::env::temp_dir().join(format!("tailor-vcsv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("validate.csv");
        let text = csv_text(&rows);
        assert_eq!(
            text.lines().count(),
            4,
            "the header, two rows, the error's second line"
        );
        std::fs::write(&path, &text).unwrap();
        assert_eq!(read_csv(&path).unwrap(), rows);
        std::fs::write(&path, text.replacen(",silu,", ",swish,", 1)).unwrap();
        let e = read_csv(&path).unwrap_err().to_string();
        assert!(e.contains("validate.csv:2: `activation`"), "{e}");

        // A mixed stack adds the stack column to every row (empty for a dense one).
        let mut hybrid: tailor_llamacpp::validate::Row = row.clone();
        hybrid.spec = tailor_spec::SpecFile::parse(
            std::path::Path::new("h.toml"),
            "format_version = 1\nname = \"h\"\n[model]\nvocab_size = 512\nhidden_size = 128\n\
             num_layers = 4\nnum_heads = 2\nnum_kv_heads = 2\nintermediate_size = 256\n\
             ffn = \"gated\"\nactivation = \"silu\"\nnorm = \"rmsnorm\"\n\
             tie_embeddings = true\n[model.stack]\n\
             layout = \"lfm2\"\npattern = [\"c\", \"c\", \"c\", \"a\"]\n\
             [model.stack.kinds.c]\nmixer = \"short_conv\"\n[model.stack.kinds.a]\n\
             mixer = \"attention\"\nqk_norm = true\n",
        )
        .unwrap()
        .model;
        let rows: Vec<CsvRow> = [&hybrid, &row].into_iter().map(CsvRow::of_llama).collect();
        assert_eq!(rows[0].stack.as_deref(), Some("CCCA"));
        let text = csv_text(&rows);
        assert!(
            text.lines().next().unwrap().ends_with(",error,stack"),
            "{text}"
        );
        assert!(text.lines().nth(1).unwrap().ends_with(",CCCA"), "{text}");
        std::fs::write(&path, &text).unwrap();
        assert_eq!(read_csv(&path).unwrap(), rows);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
