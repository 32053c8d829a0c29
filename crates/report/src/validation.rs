//! Predictions checked against whole models, in any engine (`tailor validate`, `tailor run`'s
//! check): one `validate.json` schema ([`ValidateFile`]) for burn and llama.cpp, with
//! `validate.csv` and `calibration.svg` beside it, and the table printed for people. Each
//! file states the engine's agreement with itself over the same models in the same run
//! (its first rounds against its last), beside the agreement claimed with the prediction.

use crate::ReportError;
use crate::fmt::{ACCURACY_HEADER, Table, accuracy_cells, bytes};
use crate::measured::{MeasureReport, combine};
use crate::plot::{self, Calibration};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tailor_cost::{
    Accuracy, Drift, Fingerprint, Level, MemorySource, Workload, accuracy, kendall_tau_b, median,
};
use tailor_spec::ModelSpec;
use tailor_spec::files::write_atomic;

/// The version of `validate.json` this build writes and reads (1: llama.cpp's own schema,
/// and burn's unversioned one, before the two engines shared this one).
pub const FORMAT_VERSION: u32 = 2;

/// One model as its engine timed it whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Measured {
    /// The value compared with the prediction, ms: burn's fastest round (each round a
    /// timing session of its own, the machine's swings fall on the slower ones),
    /// llama.cpp's median over rounds (each round one llama-bench run of a few repetitions).
    pub prefill_ms: f64,
    pub decode_ms: f64,
    /// Each round's median, in the order the rounds ran.
    pub prefill_rounds_ms: Vec<f64>,
    pub decode_rounds_ms: Vec<f64>,
    /// Peak memory of the inference, bytes, where it could be read (see `memory_source`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_memory_bytes: Option<u64>,
    pub memory_source: MemorySource,
    /// The engine's own count of the model's parameters (burn: of the model it built;
    /// llama.cpp: llama-bench's `model_n_params`).
    pub params_engine: u64,
    /// The model file's size (llama.cpp's GGUF), bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_bytes: Option<u64>,
}

impl Measured {
    /// A burn model from its timing sessions (one per round): the fastest round's medians.
    pub fn of_burn(sessions: &[MeasureReport]) -> Option<Self> {
        let best = combine(sessions)?;
        Some(Self {
            prefill_ms: best.prefill.median_ms,
            decode_ms: best.decode.median_ms,
            prefill_rounds_ms: sessions.iter().map(|s| s.prefill.median_ms).collect(),
            decode_rounds_ms: sessions.iter().map(|s| s.decode.median_ms).collect(),
            peak_memory_bytes: best.peak_memory_bytes,
            memory_source: best.memory_source,
            params_engine: best.params,
            file_bytes: None,
        })
    }

    /// A llama.cpp model from llama-bench's rounds: their medians.
    pub fn of_llama(t: &tailor_llamacpp::ModelTiming) -> Self {
        Self {
            prefill_ms: t.prefill_ms(),
            decode_ms: t.decode_ms(),
            prefill_rounds_ms: t.prefill_rounds_ms.clone(),
            decode_rounds_ms: t.decode_rounds_ms.clone(),
            peak_memory_bytes: t.peak_rss_bytes,
            memory_source: if t.peak_rss_bytes.is_some() {
                MemorySource::Rss
            } else {
                MemorySource::None
            },
            params_engine: t.params,
            file_bytes: Some(t.file_bytes),
        }
    }
}

/// Predicted and measured values of one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Row {
    pub id: u64,
    pub spec: ModelSpec,
    /// tailor's exact count.
    pub params: u64,
    pub predicted_prefill_ms: f64,
    pub predicted_decode_ms: f64,
    pub predicted_memory_bytes: u64,
    /// Parts of the prediction not measured in the profile as they are (interpolated,
    /// extrapolated or scaled operators, derived layer costs), one line each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_measured: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured: Option<Measured>,
    /// Why the model was not measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Per round, the median over the models timed in it of measured / predicted: the
/// machine's speed in that round relative to the profile.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoundRatios {
    pub prefill: Vec<f64>,
    pub decode: Vec<f64>,
}

impl RoundRatios {
    /// From the measured rows' rounds (a round a model missed is left out of that round).
    pub fn of(rows: &[Row]) -> Self {
        let per_round = |predicted: fn(&Row) -> f64, f: fn(&Measured) -> &Vec<f64>| {
            let measured = || rows.iter().filter_map(|r| Some((r, r.measured.as_ref()?)));
            let rounds = measured().map(|(_, m)| f(m).len()).max().unwrap_or(0);
            (0..rounds)
                .map(|k| {
                    median(
                        measured()
                            .filter_map(|(r, m)| Some(f(m).get(k)? / predicted(r)))
                            .collect(),
                    )
                })
                .collect()
        };
        Self {
            prefill: per_round(|r| r.predicted_prefill_ms, |m| &m.prefill_rounds_ms),
            decode: per_round(|r| r.predicted_decode_ms, |m| &m.decode_rounds_ms),
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
                         by round {}; the agreement with the profile and the engine's with \
                         itself are limited by that",
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

/// How well the engine agrees with itself over the same models in one run: the median of
/// each model's first half of rounds against the median of its second half.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelfAgreement {
    /// Kendall's tau-b between the two halves' values over the models.
    pub prefill_tau: f64,
    pub decode_tau: f64,
    /// Median over models of |half1 - half2| / their mean: the run-to-run spread.
    pub prefill_spread: f64,
    pub decode_spread: f64,
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

impl SelfAgreement {
    /// Over the measured rows; `None` with fewer than two rounds or two models.
    pub fn of(rows: &[Row]) -> Option<Self> {
        let pairs = |f: fn(&Measured) -> &Vec<f64>| -> Option<(f64, f64)> {
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
        let (prefill_tau, prefill_spread) = pairs(|m| &m.prefill_rounds_ms)?;
        let (decode_tau, decode_spread) = pairs(|m| &m.decode_rounds_ms)?;
        Some(Self {
            prefill_tau,
            decode_tau,
            prefill_spread,
            decode_spread,
        })
    }
}

/// The re-check of the profile before the models were timed, in its engine's terms: burn's
/// per operator class, llama.cpp's per probe phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ProfileCheck {
    Burn(Drift),
    LlamaCpp(tailor_llamacpp::LlamaDrift),
}

impl ProfileCheck {
    pub fn wall_s(&self) -> f64 {
        match self {
            Self::Burn(d) => d.wall_s,
            Self::LlamaCpp(d) => d.wall_s,
        }
    }

    /// One line: time now / profiled, per class or phase.
    pub fn summary(&self) -> String {
        match self {
            Self::Burn(d) => d.summary(),
            Self::LlamaCpp(d) => d.summary(),
        }
    }
}

/// What was checked, besides the rows.
#[derive(Debug, Clone)]
pub struct Setup {
    /// `burn` or `llama.cpp`.
    pub engine: String,
    /// The space the models came from.
    pub space: String,
    /// The profile behind the predictions, and (burn) the setup it measured.
    pub profile: String,
    pub fingerprint: Option<Fingerprint>,
    pub workload: Workload,
    pub seed: u64,
    pub rounds: u64,
    /// The profile's subset re-timed here before the check.
    pub profile_check: Option<ProfileCheck>,
    /// The level of whole models the predictions were scaled to (`--relevel`).
    pub level: Option<Level>,
    /// Entries (burn) or probe visits (llama.cpp) of the drifted classes re-measured
    /// before the check (`--remeasure`).
    pub remeasured: usize,
}

/// `validate.json`, for every engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidateFile {
    pub format_version: u32,
    /// `burn` or `llama.cpp`.
    pub engine: String,
    pub space: String,
    pub profile: String,
    /// burn: the setup the profile measured (llama.cpp's is in its profile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Fingerprint>,
    pub workload: Workload,
    pub samples: usize,
    pub measured: usize,
    pub failed: usize,
    pub seed: u64,
    pub rounds: u64,
    pub wall_s: f64,
    pub prefill: Option<Accuracy>,
    pub decode: Option<Accuracy>,
    pub memory: Option<Accuracy>,
    /// The engine against itself over the same models (`None` with one round).
    pub engine_self: Option<SelfAgreement>,
    pub round_ratios: RoundRatios,
    /// The drift check before the validation (`--no-recheck`: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_check: Option<ProfileCheck>,
    /// Entries (burn) or probe visits (llama.cpp) of the drifted classes re-measured in
    /// the profile before the models were timed (`--remeasure`, and `tailor run`).
    #[serde(default)]
    pub remeasured: usize,
    /// The predictions are scaled to the level of whole models timed here before
    /// (`--relevel`): by how much and on which models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    pub rows: Vec<Row>,
}

/// The accuracy of one quantity over the measured models (`None` when not measured).
fn stats(rows: &[Row], f: impl Fn(&Row, &Measured) -> Option<(f64, f64)>) -> Option<Accuracy> {
    let pairs: Vec<(f64, f64)> = rows
        .iter()
        .filter_map(|r| r.measured.as_ref().and_then(|m| f(r, m)))
        .collect();
    accuracy(&pairs)
}

impl ValidateFile {
    /// Compares each row's prediction with its measurement.
    pub fn new(setup: Setup, rows: Vec<Row>, wall_s: f64) -> Self {
        let measured = rows.iter().filter(|r| r.measured.is_some()).count();
        Self {
            format_version: FORMAT_VERSION,
            engine: setup.engine,
            space: setup.space,
            profile: setup.profile,
            fingerprint: setup.fingerprint,
            workload: setup.workload,
            samples: rows.len(),
            measured,
            failed: rows.len() - measured,
            seed: setup.seed,
            rounds: setup.rounds,
            wall_s,
            prefill: stats(&rows, |r, m| Some((r.predicted_prefill_ms, m.prefill_ms))),
            decode: stats(&rows, |r, m| Some((r.predicted_decode_ms, m.decode_ms))),
            memory: stats(&rows, |r, m| {
                m.peak_memory_bytes
                    .map(|b| (r.predicted_memory_bytes as f64, b as f64))
            }),
            engine_self: SelfAgreement::of(&rows),
            round_ratios: RoundRatios::of(&rows),
            profile_check: setup.profile_check,
            remeasured: setup.remeasured,
            level: setup.level,
            rows,
        }
    }

    /// The measured rows as anchors of a level (`--relevel`, `--anchors`): each model's
    /// prediction and measurement.
    pub fn anchors(&self) -> Vec<tailor_cost::Anchor> {
        self.rows
            .iter()
            .filter_map(|r| {
                let m = r.measured.as_ref()?;
                Some(tailor_cost::Anchor {
                    id: r.id,
                    params: r.params,
                    predicted_prefill_ms: r.predicted_prefill_ms,
                    measured_prefill_ms: m.prefill_ms,
                    predicted_decode_ms: r.predicted_decode_ms,
                    measured_decode_ms: m.decode_ms,
                })
            })
            .collect()
    }

    /// Reads a `validate.json`; one of another version is refused, naming it.
    pub fn load(path: &Path) -> Result<Self, ReportError> {
        let value: serde_json::Value = crate::read_json(path)?;
        let version = value.get("format_version").and_then(|v| v.as_u64());
        if version != Some(u64::from(FORMAT_VERSION)) {
            return Err(ReportError::Version {
                path: path.to_path_buf(),
                found: version.map_or("none".into(), |v| v.to_string()),
                expected: FORMAT_VERSION,
            });
        }
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

/// One device of a set validated at once: timed here in its own engine, or why not (a
/// datasheet, a profile of another machine).
#[derive(Debug)]
pub struct DeviceValidation {
    pub device: String,
    /// Its profile or datasheet.
    pub file: PathBuf,
    pub result: Result<Validation, String>,
}

/// What `tailor validate --json` prints of a set: each device's validate.json, or why it
/// was not validated here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceValidateFile {
    pub device: String,
    pub file: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validate: Option<ValidateFile>,
}

impl DeviceValidateFile {
    pub fn of(d: &DeviceValidation) -> Self {
        Self {
            device: d.device.clone(),
            file: d.file.display().to_string(),
            skipped: d.result.as_ref().err().cloned(),
            validate: d.result.as_ref().ok().map(|v| v.file.clone()),
        }
    }
}

/// Each device's validation (the tables [`Validation::render`] prints, one per device), then
/// one line per device: how far its whole models are from its predictions, beside how far
/// its engine is from itself.
pub fn render_devices(devices: &[DeviceValidation]) -> String {
    let mut s = String::new();
    for d in devices {
        if let Ok(v) = &d.result {
            s += &format!("== {} ({}) ==\n", d.device, d.file.display());
            s += &v.render();
            s += "\n";
        }
    }
    let mut t = Table::new(&[
        "device",
        "engine",
        "models",
        "prefill meas/pred",
        "decode meas/pred",
        "decode within 10%",
        "decode tau",
        "engine vs itself tau",
        "",
    ]);
    for d in devices {
        match &d.result {
            Ok(v) => {
                let f = &v.file;
                let ratio = |a: Option<Accuracy>| {
                    a.map_or("-".into(), |a| format!("{:.2}", a.median_ratio))
                };
                t.row(vec![
                    d.device.clone(),
                    f.engine.clone(),
                    format!("{}/{}", f.measured, f.samples),
                    ratio(f.prefill),
                    ratio(f.decode),
                    f.decode
                        .map_or("-".into(), |a| format!("{:.0}%", 100.0 * a.within_10pct)),
                    f.decode
                        .map_or("-".into(), |a| format!("{:.3}", a.kendall_tau)),
                    f.engine_self
                        .as_ref()
                        .map_or("-".into(), |e| format!("{:.3}", e.decode_tau)),
                    v.out.display().to_string(),
                ]);
            }
            Err(why) => t.row(vec![
                d.device.clone(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                format!("not validated here: {why}"),
            ]),
        }
    }
    s += &t.render(0);
    s
}

/// Writes validate.json, validate.csv and calibration.svg (captioned `caption`) into `out`.
pub fn write(out: &Path, file: ValidateFile, caption: &str) -> Result<Validation, ReportError> {
    crate::write_json(&out.join("validate.json"), &file)?;
    write_atomic(
        &out.join("validate.csv"),
        csv_text(&file.rows.iter().map(CsvRow::of).collect::<Vec<_>>()).as_bytes(),
    )?;
    let rows = &file.rows;
    let ms = |f: fn(&Row, &Measured) -> (f64, f64)| -> Vec<(f64, f64)> {
        rows.iter()
            .filter_map(|r| r.measured.as_ref().map(|m| f(r, m)))
            .collect()
    };
    let mut panels = vec![
        Calibration {
            title: "prefill",
            unit: "ms",
            points: ms(|r, m| (r.predicted_prefill_ms, m.prefill_ms)),
        },
        Calibration {
            title: "decode step",
            unit: "ms",
            points: ms(|r, m| (r.predicted_decode_ms, m.decode_ms)),
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

    /// The tables `tailor validate` (either engine) prints.
    pub fn render(&self) -> String {
        let v = &self.file;
        let mut t = Table::new(&[
            "id",
            "stack",
            "hidden",
            "layers",
            "heads",
            "kv",
            "ffn",
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
        for r in &v.rows {
            let s = &r.spec;
            let mut row = vec![
                r.id.to_string(),
                if s.stack.is_some() {
                    s.pattern_picture()
                } else {
                    "dense".into()
                },
                s.hidden_size.to_string(),
                s.num_layers.to_string(),
                s.num_heads.to_string(),
                s.num_kv_heads.to_string(),
                s.intermediate_size.to_string(),
            ];
            match &r.measured {
                Some(m) => {
                    row.extend([
                        format!("{:.2}", r.predicted_prefill_ms),
                        format!("{:.2}", m.prefill_ms),
                        pct(r.predicted_prefill_ms, m.prefill_ms),
                        format!("{:.3}", r.predicted_decode_ms),
                        format!("{:.3}", m.decode_ms),
                        pct(r.predicted_decode_ms, m.decode_ms),
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
            "{} of {} models timed whole in {} ({} weights), {} rounds; prompt {}, context {}\n\n\
             predicted vs measured (err = (predicted - measured) / measured)\n{}",
            v.measured,
            v.samples,
            v.engine,
            v.workload.precision.weights,
            v.rounds,
            v.workload.prompt_tokens,
            v.workload.context,
            t.render(2)
        );
        let mut header = ACCURACY_HEADER.to_vec();
        let own = format!("{} vs itself", v.engine);
        header.push(&own);
        let mut a = Table::new(&header);
        let selfs = v.engine_self;
        for (name, x, own) in [
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
            let mut row = vec![name.to_string()];
            match x {
                Some(x) => row.extend(accuracy_cells(&x)),
                None => {
                    row.push("not measured".into());
                    row.extend(std::iter::repeat_n(String::new(), header.len() - 3));
                }
            }
            row.push(own.map_or("-".into(), |(tau, spread)| {
                format!("tau {tau:.3}, spread {:.1}%", 100.0 * spread)
            }));
            a.row(row);
        }
        s += &format!("\naccuracy over {} models\n{}", v.measured, a.render(2));
        if v.engine_self.is_none() {
            s += "  (the engine's agreement with itself needs two rounds or more: --rounds 2)\n";
        }
        s += &format!(
            "  measured/predicted by round: prefill {}, decode {}\n",
            join_ratios(&v.round_ratios.prefill),
            join_ratios(&v.round_ratios.decode)
        );
        if let Some(d) = &v.profile_check {
            s += &format!(
                "  drift check of the profile ({:.0} s), time now / profiled: {}\n",
                d.wall_s(),
                d.summary()
            );
        }
        if v.remeasured > 0 {
            s += &format!(
                "  {} {} of the profile re-measured before the models were timed\n",
                v.remeasured,
                match v.profile_check {
                    Some(ProfileCheck::LlamaCpp(_)) => "probe visits",
                    _ => "entries",
                }
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
    /// The engine's own count (burn: of the model it built; llama.cpp: llama-bench's
    /// `model_n_params`); empty where the model was not measured.
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

    /// A validation's row, either engine.
    pub fn of(r: &Row) -> Self {
        let m = r.measured.as_ref();
        Self {
            params_engine: m.map(|m| m.params_engine),
            predicted_prefill_ms: r.predicted_prefill_ms,
            measured_prefill_ms: m.map(|m| m.prefill_ms),
            predicted_decode_ms: r.predicted_decode_ms,
            measured_decode_ms: m.map(|m| m.decode_ms),
            predicted_memory_bytes: r.predicted_memory_bytes,
            measured_memory_bytes: m.and_then(|m| m.peak_memory_bytes),
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

/// Reads a `validate.csv` back; an error names the file, the line and the column.
pub fn read_csv(path: &Path) -> Result<Vec<CsvRow>, tailor_spec::FileError> {
    let dense: Vec<&str> = CSV_HEADER.split(',').collect();
    let stacked: Vec<&str> = dense.iter().copied().chain([STACK_COLUMN]).collect();
    tailor_search::output::read_csv_rows(path, &[&dense, &stacked])
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

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

    /// A row predicted at `prefill` / `decode` ms and timed in `rounds` (prefill ms; decode
    /// a tenth of it), or failed.
    fn row(id: u64, prefill: f64, decode: f64, rounds: Option<&[f64]>) -> Row {
        Row {
            id,
            spec: ModelSpec::llama(8192, 512, 4, 8, 4, 1408),
            params: 11,
            predicted_prefill_ms: prefill,
            predicted_decode_ms: decode,
            predicted_memory_bytes: 900,
            not_measured: Vec::new(),
            measured: rounds.map(|r| {
                let dec: Vec<f64> = r.iter().map(|x| x / 10.0).collect();
                Measured {
                    prefill_ms: median(r.to_vec()),
                    decode_ms: median(dec.clone()),
                    prefill_rounds_ms: r.to_vec(),
                    decode_rounds_ms: dec,
                    peak_memory_bytes: Some(1000),
                    memory_source: MemorySource::Rss,
                    params_engine: 11,
                    file_bytes: None,
                }
            }),
            error: rounds.is_none().then(|| "exit 1: \"boom\"".into()),
        }
    }

    #[test]
    fn a_burn_model_keeps_its_fastest_session_and_every_round() {
        let sessions = [session(12.0, 2.0), session(10.0, 2.4), session(11.0, 2.2)];
        let m = combine(&sessions).unwrap();
        assert_eq!(m.prefill.median_ms, 10.0);
        assert_eq!(m.decode.median_ms, 2.0);
        assert_eq!((m.prefill.p10_ms, m.prefill.p90_ms), (9.0, 12.0 * 1.2));
        assert_eq!(m.prefill.samples, 30);
        assert_eq!(m.peak_memory_bytes, Some(1000));
        assert!(combine(&[]).is_none());
        let m = Measured::of_burn(&sessions).unwrap();
        assert_eq!((m.prefill_ms, m.decode_ms), (10.0, 2.0));
        assert_eq!(m.prefill_rounds_ms, vec![12.0, 10.0, 11.0]);
        assert_eq!(m.decode_rounds_ms, vec![2.0, 2.4, 2.2]);
        assert_eq!((m.params_engine, m.peak_memory_bytes), (1, Some(1000)));
        assert!(Measured::of_burn(&[]).is_none());
    }

    #[test]
    fn a_llama_model_keeps_the_median_of_its_rounds() {
        let m = Measured::of_llama(&tailor_llamacpp::ModelTiming {
            prefill_rounds_ms: vec![1.0, 3.0, 2.0],
            decode_rounds_ms: vec![0.4, 0.6],
            peak_rss_bytes: Some(5000),
            params: 1002,
            file_bytes: 9000,
        });
        assert_eq!((m.prefill_ms, m.decode_ms), (2.0, 0.5));
        assert_eq!((m.params_engine, m.file_bytes), (1002, Some(9000)));
        assert_eq!(m.memory_source, MemorySource::Rss);
    }

    #[test]
    fn round_ratios_show_a_slow_round() {
        // Round 2 ran 20% slow in prefill for every model; the failed model is left out.
        let mut rows = [
            row(0, 10.0, 1.0, Some(&[10.0, 12.0, 10.5])),
            row(1, 20.0, 2.0, Some(&[21.0, 24.0, 20.0])),
            row(2, 30.0, 3.0, None),
        ];
        if let Some(m) = rows[0].measured.as_mut() {
            m.decode_rounds_ms = vec![1.0, 1.0, 1.05];
        }
        if let Some(m) = rows[1].measured.as_mut() {
            m.decode_rounds_ms = vec![2.0, 2.0, 2.1];
        }
        let r = RoundRatios::of(&rows);
        assert_eq!(r.prefill, vec![1.025, 1.2, 1.025]);
        assert_eq!(r.decode, vec![1.0, 1.0, 1.05]);
        let uneven = r.uneven();
        assert_eq!(uneven.len(), 1, "{uneven:?}");
        assert!(uneven[0].contains("prefill") && uneven[0].contains("1.025 1.200 1.025"));
    }

    #[test]
    fn the_engine_agrees_with_itself_over_the_halves_of_its_rounds() {
        let rows = [
            row(0, 10.0, 1.0, Some(&[10.0, 10.2, 9.8, 10.0])),
            row(1, 20.0, 2.0, Some(&[21.0, 21.0, 22.0, 22.0])),
            row(2, 30.0, 3.0, Some(&[30.0, 31.0, 30.0, 31.0])),
            row(3, 40.0, 4.0, None),
        ];
        let s = SelfAgreement::of(&rows).unwrap();
        assert!((s.prefill_tau - 1.0).abs() < 1e-12 && (s.decode_tau - 1.0).abs() < 1e-12);
        // Medians of the halves: 10.1/9.9, 21/22, 30.5/30.5: spreads 2%, 4.65%, 0.
        assert!((s.prefill_spread - 0.02).abs() < 1e-12, "{s:?}");
        // Swapped order between the halves: tau -1.
        let swapped = [
            row(0, 1.0, 1.0, Some(&[1.0, 2.0])),
            row(1, 1.0, 1.0, Some(&[2.0, 1.0])),
        ];
        assert_eq!(SelfAgreement::of(&swapped).unwrap().prefill_tau, -1.0);
        // One round, or one model measured: nothing to compare.
        assert!(
            SelfAgreement::of(&[
                row(0, 1.0, 1.0, Some(&[1.0])),
                row(1, 1.0, 1.0, Some(&[2.0]))
            ])
            .is_none()
        );
        assert!(SelfAgreement::of(&rows[..1]).is_none());
    }

    /// A fresh empty folder under the system's temporary folder.
    pub(crate) fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("tailor-report-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn setup(engine: &str, profile_check: Option<ProfileCheck>) -> Setup {
        Setup {
            engine: engine.into(),
            space: "search-spaces/quickstart.toml".into(),
            profile: "profiles/host-flex.toml".into(),
            fingerprint: (engine == "burn").then(|| session(1.0, 1.0).fingerprint),
            workload: tailor_cost::Workload {
                prompt_tokens: 64,
                context: 256,
                precision: tailor_spec::Precision::for_weights(tailor_spec::DType::F32),
            },
            seed: 7,
            rounds: 2,
            profile_check,
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
        }
    }

    #[test]
    fn validate_json_round_trips_and_the_csv_and_plot_are_written() {
        let rows = vec![
            // Measured 1.2x the prediction in prefill, 0.95x in decode (a tenth of prefill).
            row(3, 10.0, 1.2 / 0.95, Some(&[12.0, 12.0])),
            row(5, 20.0, 2.4 / 0.95, Some(&[24.0, 24.0])),
            row(8, 30.0, 6.0, None),
        ];
        let file = ValidateFile::new(setup("burn", None), rows, 12.5);
        assert_eq!(file.format_version, FORMAT_VERSION);
        assert_eq!((file.samples, file.measured, file.failed), (3, 2, 1));
        let prefill = file.prefill.unwrap();
        assert!((prefill.median_ratio - 1.2).abs() < 1e-9, "{prefill:?}");
        let memory = file.memory.unwrap();
        assert!((memory.median_ratio - 1000.0 / 900.0).abs() < 1e-9);
        assert_eq!(file.engine_self.unwrap().prefill_tau, 1.0);

        let dir = scratch("validate");
        let v: Validation = write(&dir, file.clone(), "caption").unwrap();
        assert_eq!(
            ValidateFile::load(&dir.join("validate.json")).unwrap(),
            file
        );
        let csv = std::fs::read_to_string(dir.join("validate.csv")).unwrap();
        // validate.csv reads back as its row type, exactly.
        let back = super::read_csv(&dir.join("validate.csv")).unwrap();
        let rows: Vec<super::CsvRow> = file.rows.iter().map(super::CsvRow::of).collect();
        assert_eq!(back, rows);
        assert_eq!(back[2].error, "exit 1: 'boom'");
        assert_eq!(back[0].measured_prefill_ms, Some(12.0));
        assert_eq!(back[0].params_engine, Some(11));
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
        assert!(text.contains("2 of 3 models timed whole in burn"), "{text}");
        assert!(text.contains("accuracy over 2 models"), "{text}");
        assert!(text.contains("burn vs itself"), "{text}");
        assert!(text.contains("tau 1.000, spread 0.0%"), "{text}");
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
        std::fs::write(
            dir.join("bad.json"),
            "{\"format_version\": 2, \"space\": 3}",
        )
        .unwrap();
        let e = ValidateFile::load(&dir.join("bad.json"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad.json:1:32: invalid type"), "{e}");
        // A file of the engines' earlier schemas is refused by version, naming the file.
        std::fs::write(dir.join("old.json"), "{\"space\": \"x\", \"rows\": []}").unwrap();
        let e = ValidateFile::load(&dir.join("old.json"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("old.json") && e.contains("format_version none") && e.contains("2"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A llama.cpp validation is the same file: its drift check per probe phase reads back
    /// as llama.cpp's, burn's per operator class as burn's.
    #[test]
    fn both_engines_profile_checks_read_back_as_their_own() {
        let llama = ProfileCheck::LlamaCpp(tailor_llamacpp::LlamaDrift {
            profile: "profiles/host-llamacpp-q4_0.toml".into(),
            measured: "2026-12-04T10:00:00Z".into(),
            phases: vec![tailor_llamacpp::drift::PhaseDrift {
                phase: tailor_llamacpp::Phase::Prefill { tokens: 64 },
                entries: 2,
                ratio: 0.93,
            }],
            wall_s: 3.5,
        });
        let rows = vec![
            row(0, 10.0, 1.0, Some(&[10.0, 10.2, 9.8, 10.0])),
            row(1, 20.0, 2.0, Some(&[21.0, 21.0, 22.0, 22.0])),
        ];
        let file = ValidateFile::new(setup("llama.cpp", Some(llama)), rows, 1.0 / 3.0);
        let text = serde_json::to_string(&file).unwrap();
        let back: ValidateFile = serde_json::from_str(&text).unwrap();
        assert_eq!(back, file);
        assert!(matches!(
            back.profile_check,
            Some(ProfileCheck::LlamaCpp(_))
        ));
        let v = Validation {
            file,
            out: "out".into(),
            calibration: "out/calibration.svg".into(),
        };
        let shown = v.render();
        assert!(shown.contains("llama.cpp vs itself"), "{shown}");
        assert!(
            shown.contains("3 probe visits of the profile re-measured"),
            "{shown}"
        );
        assert!(
            shown.contains("time now / profiled: prefill 64 0.93x"),
            "{shown}"
        );
    }
}

#[cfg(test)]
mod csv_tests {
    use super::{CsvRow, Measured, Row, csv_text, read_csv};
    use tailor_spec::ModelSpec;

    /// The llama.cpp engine's rows go into the same file type: llama-bench's own parameter
    /// count beside tailor's, the median of the rounds.
    #[test]
    fn llama_rows_round_trip_and_a_bad_cell_is_named() {
        let row = Row {
            id: 4,
            spec: ModelSpec::llama(512, 128, 2, 2, 1, 256),
            params: 1000,
            predicted_prefill_ms: 1.25,
            predicted_decode_ms: 0.5,
            predicted_memory_bytes: 4096,
            not_measured: Vec::new(),
            measured: Some(Measured::of_llama(&tailor_llamacpp::ModelTiming {
                prefill_rounds_ms: vec![1.0, 3.0, 2.0],
                decode_rounds_ms: vec![0.4, 0.6],
                peak_rss_bytes: Some(5000),
                params: 1002,
                file_bytes: 9000,
            })),
            error: None,
        };
        let failed = Row {
            id: 9,
            predicted_prefill_ms: 1.0,
            measured: None,
            error: Some("llama-bench failed, \"signal 11\"\nsecond line".into()),
            ..row.clone()
        };
        let rows: Vec<CsvRow> = [&row, &failed].into_iter().map(CsvRow::of).collect();
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
        let mut hybrid = row.clone();
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
        let rows: Vec<CsvRow> = [&hybrid, &row].into_iter().map(CsvRow::of).collect();
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
