//! Files of a search run: `candidates.csv`, `front.json`, `summary.json`.

use crate::engine::{Candidate, SearchOutcome, Strategy};
use crate::metrics::{AtValue, Metric, Metrics, Objective};
use crate::space::SearchSpace;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use tailor_cost::{Estimate, Workload};
use tailor_spec::ModelSpec;
use tailor_spec::files::{self, FileError};

/// The `format_version` of front.json and summary.json.
pub const RESULTS_FORMAT_VERSION: u32 = 1;

/// Column names of candidates.csv.
pub const CSV_HEADER: [&str; 26] = [
    "id",
    "vocab_size",
    "hidden_size",
    "num_layers",
    "num_heads",
    "num_kv_heads",
    "head_dim",
    "intermediate_size",
    "ffn",
    "activation",
    "norm",
    "norm_bias",
    "qkv_bias",
    "o_bias",
    "mlp_bias",
    "tie_embeddings",
    "params",
    "non_embedding_params",
    "prefill_ms",
    "decode_ms",
    "decode_tokens_per_s",
    "peak_memory_bytes",
    "chinchilla_loss",
    "aspect_ratio",
    "feasible",
    "why_not",
];

/// The columns a space with `[workload.edit]` adds after [`CSV_HEADER`]'s.
pub const EDIT_COLUMNS: [&str; 4] = [
    "edit_zo_ms",
    "edit_bp_ms",
    "edit_zo_memory_bytes",
    "edit_bp_memory_bytes",
];

/// The column a space with `[model.stack]` adds last: the stack, one letter a layer (`A`
/// global attention, `S` sliding window, `N` no RoPE, `C` short conv, `L` linear attention,
/// `F` FFN only).
pub const STACK_COLUMN: &str = "stack";

/// The header of a `candidates.csv`: with the edit columns when the space prices edits,
/// and the stack column when it has `[model.stack]`.
pub fn csv_header(edit: bool, stack: bool) -> Vec<&'static str> {
    let mut h = CSV_HEADER.to_vec();
    if edit {
        h.extend(EDIT_COLUMNS);
    }
    if stack {
        h.push(STACK_COLUMN);
    }
    h
}

/// The column of a metric at another prompt or context (the last columns of a space with
/// `[workload]` `prefill_at` or `decode_at`): its name (`decode_ms@4096`), memory in bytes
/// (`peak_memory_bytes@16384`).
pub fn at_column(m: Metric) -> String {
    match m {
        Metric::PeakMemoryAt(n) => format!("peak_memory_bytes@{n}"),
        other => other.name().into_owned(),
    }
}

/// The metric of an [`at_column`] name.
fn metric_of_column(name: &str) -> Option<Metric> {
    let name = name.replacen("peak_memory_bytes@", "peak_memory@", 1);
    name.parse::<Metric>().ok().filter(|m| {
        matches!(
            m,
            Metric::PrefillMsAt(_) | Metric::DecodeMsAt(_) | Metric::PeakMemoryAt(_)
        )
    })
}

/// The columns of one device of a set, each suffixed `:NAME` in candidates.csv: its priced
/// metrics, its edit's and those at other points where the space has them, and whether the
/// candidate is inside every constraint on it.
pub fn device_columns(edit: bool, at: &[Metric]) -> Vec<String> {
    let mut out: Vec<String> = ["prefill_ms", "decode_ms", "peak_memory_bytes"]
        .into_iter()
        .map(String::from)
        .collect();
    if edit {
        out.extend(EDIT_COLUMNS.iter().map(|c| c.to_string()));
    }
    out.extend(at.iter().map(|m| at_column(*m)));
    out.push("feasible".into());
    out
}

/// A device's cells in [`device_columns`] order (empty where it was not priced).
fn device_cells(
    x: Option<&crate::metrics::DeviceMetrics>,
    edit: bool,
    at: &[Metric],
) -> Vec<String> {
    let n = device_columns(edit, at).len();
    let Some(x) = x else {
        return vec![String::new(); n];
    };
    let m = &x.metrics;
    let opt = |v: Option<f64>| v.map(|x| format!("{x:.6}")).unwrap_or_default();
    let bytes = |v: Option<u64>| v.map(|b| b.to_string()).unwrap_or_default();
    let mut cells = vec![
        opt(m.prefill_ms),
        opt(m.decode_ms),
        bytes(m.peak_memory_bytes),
    ];
    if edit {
        cells.extend([
            opt(m.edit_zo_ms),
            opt(m.edit_bp_ms),
            bytes(m.edit_zo_memory_bytes),
            bytes(m.edit_bp_memory_bytes),
        ]);
    }
    for metric in at {
        let v = m.get(*metric);
        cells.push(match metric {
            _ if v.is_nan() => String::new(),
            Metric::PeakMemoryAt(_) => format!("{v:.0}"),
            _ => format!("{v:.6}"),
        });
    }
    cells.push(x.feasible.to_string());
    cells
}

/// Streams candidates into `candidates.csv`: written beside the target under a temporary
/// name and moved into place by [`CsvSink::finish`], so a reader never sees half a file.
pub struct CsvSink {
    writer: csv::Writer<BufWriter<File>>,
    edit: bool,
    stack: bool,
    at: Vec<Metric>,
    devices: usize,
    tmp: PathBuf,
    path: PathBuf,
}

impl std::fmt::Debug for CsvSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvSink").field("path", &self.path).finish()
    }
}

impl CsvSink {
    /// `edit`: the space prices edits (its rows carry [`EDIT_COLUMNS`]); `stack`: it has
    /// `[model.stack]` (its rows carry [`STACK_COLUMN`]); `at`: its metrics at other
    /// prompts and contexts ([`SearchSpace::at_metrics`], one [`at_column`] each, last).
    pub fn create(path: &Path, edit: bool, stack: bool, at: &[Metric]) -> Result<Self, FileError> {
        Self::create_set(path, edit, stack, at, &[])
    }

    /// [`CsvSink::create`] for a search over a set of devices: each device's columns follow
    /// ([`device_columns`]).
    pub fn create_set(
        path: &Path,
        edit: bool,
        stack: bool,
        at: &[Metric],
        devices: &[String],
    ) -> Result<Self, FileError> {
        let err = |cause| FileError::Write {
            path: path.to_path_buf(),
            cause,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let tmp = path.with_extension("csv.partial");
        let file = File::create(&tmp).map_err(err)?;
        let mut writer = csv::Writer::from_writer(BufWriter::new(file));
        let mut header: Vec<String> = csv_header(edit, stack)
            .into_iter()
            .map(String::from)
            .collect();
        header.extend(at.iter().map(|m| at_column(*m)));
        for d in devices {
            header.extend(
                device_columns(edit, at)
                    .into_iter()
                    .map(|c| format!("{c}:{d}")),
            );
        }
        writer.write_record(header).map_err(|e| err(e.into()))?;
        Ok(Self {
            writer,
            edit,
            stack,
            at: at.to_vec(),
            devices: devices.len(),
            tmp,
            path: path.to_path_buf(),
        })
    }

    pub fn write(&mut self, c: &Candidate) -> std::io::Result<()> {
        self.writer
            .write_record(
                CandidateRow::of(c)
                    .record(self.edit, self.stack, &self.at)
                    .into_iter()
                    .chain((0..self.devices).flat_map(|d| {
                        let x = c.metrics.devices.get(d);
                        device_cells(x, self.edit, &self.at)
                    })),
            )
            .map_err(std::io::Error::from)
    }

    pub fn finish(mut self) -> Result<PathBuf, FileError> {
        let err = |cause| FileError::Write {
            path: self.path.clone(),
            cause,
        };
        self.writer.flush().map_err(err)?;
        let inner = self.writer.into_inner().map_err(|e| err(e.into_error()))?;
        let file = inner.into_inner().map_err(|e| err(e.into_error()))?;
        file.sync_all().map_err(err)?;
        std::fs::rename(&self.tmp, &self.path).map_err(err)?;
        Ok(self.path)
    }
}

/// One row of `candidates.csv`: what [`CsvSink`] writes and [`read_candidates`] reads back.
/// Times and the loss are written to 6 decimals, tokens/s to 3, the aspect ratio to 4 (a
/// row read back writes the same cells); an empty cell is a metric the cost model does
/// not give.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CandidateRow {
    pub id: u64,
    pub vocab_size: u64,
    pub hidden_size: u64,
    pub num_layers: u64,
    pub num_heads: u64,
    pub num_kv_heads: u64,
    pub head_dim: u64,
    pub intermediate_size: u64,
    pub ffn: tailor_spec::FfnKind,
    pub activation: tailor_spec::Activation,
    pub norm: tailor_spec::NormKind,
    pub norm_bias: bool,
    pub qkv_bias: bool,
    pub o_bias: bool,
    pub mlp_bias: bool,
    pub tie_embeddings: bool,
    pub params: u64,
    pub non_embedding_params: u64,
    pub prefill_ms: Option<f64>,
    pub decode_ms: Option<f64>,
    pub decode_tokens_per_s: Option<f64>,
    pub peak_memory_bytes: Option<u64>,
    pub chinchilla_loss: Option<f64>,
    pub aspect_ratio: f64,
    pub feasible: bool,
    /// The constraints it breaks, `; `-separated (empty when feasible).
    pub why_not: String,
    #[serde(default)]
    pub edit_zo_ms: Option<f64>,
    #[serde(default)]
    pub edit_bp_ms: Option<f64>,
    #[serde(default)]
    pub edit_zo_memory_bytes: Option<u64>,
    #[serde(default)]
    pub edit_bp_memory_bytes: Option<u64>,
    /// The stack picture ([`STACK_COLUMN`]), in a space with `[model.stack]`.
    #[serde(default)]
    pub stack: Option<String>,
    /// The metrics at other prompts and contexts ([`at_column`]s), where priced.
    #[serde(skip)]
    pub at: Vec<AtValue>,
    /// Over a set of devices: each device's cells, as (column `decode_ms:pixel8`, cell).
    #[serde(skip)]
    pub devices: Vec<(String, String)>,
}

impl CandidateRow {
    /// The row of a priced candidate (full precision; [`CandidateRow::record`] rounds).
    pub fn of(c: &Candidate) -> Self {
        let s = &c.spec;
        let m = &c.metrics;
        Self {
            id: c.id,
            vocab_size: s.vocab_size,
            hidden_size: s.hidden_size,
            num_layers: s.num_layers,
            num_heads: s.num_heads,
            num_kv_heads: s.num_kv_heads,
            head_dim: s.head_dim(),
            intermediate_size: s.intermediate_size,
            ffn: s.ffn,
            activation: s.activation,
            norm: s.norm,
            norm_bias: s.norm_bias,
            qkv_bias: s.qkv_bias,
            o_bias: s.o_bias,
            mlp_bias: s.mlp_bias,
            tie_embeddings: s.tie_embeddings,
            params: m.params,
            non_embedding_params: m.non_embedding_params,
            prefill_ms: m.prefill_ms,
            decode_ms: m.decode_ms,
            decode_tokens_per_s: m.decode_ms.map(|d| 1000.0 / d),
            peak_memory_bytes: m.peak_memory_bytes,
            chinchilla_loss: m.chinchilla_loss,
            aspect_ratio: m.aspect_ratio,
            feasible: c.feasible(),
            why_not: c.why_not(),
            edit_zo_ms: m.edit_zo_ms,
            edit_bp_ms: m.edit_bp_ms,
            edit_zo_memory_bytes: m.edit_zo_memory_bytes,
            edit_bp_memory_bytes: m.edit_bp_memory_bytes,
            stack: Some(s.pattern_picture()),
            at: m.at.clone(),
            devices: Vec::new(),
        }
    }

    /// The cells in [`csv_header`]'s order (with the edit columns when `edit`, the stack's
    /// when `stack`, then one per metric of `at`), numbers at the file's fixed decimals.
    pub fn record(&self, edit: bool, stack: bool, at: &[Metric]) -> Vec<String> {
        let opt =
            |v: Option<f64>, digits: usize| v.map(|x| format!("{x:.digits$}")).unwrap_or_default();
        let bytes = |v: Option<u64>| v.map(|b| b.to_string()).unwrap_or_default();
        let mut cells = vec![
            self.id.to_string(),
            self.vocab_size.to_string(),
            self.hidden_size.to_string(),
            self.num_layers.to_string(),
            self.num_heads.to_string(),
            self.num_kv_heads.to_string(),
            self.head_dim.to_string(),
            self.intermediate_size.to_string(),
            self.ffn.to_string(),
            self.activation.to_string(),
            self.norm.to_string(),
            self.norm_bias.to_string(),
            self.qkv_bias.to_string(),
            self.o_bias.to_string(),
            self.mlp_bias.to_string(),
            self.tie_embeddings.to_string(),
            self.params.to_string(),
            self.non_embedding_params.to_string(),
            opt(self.prefill_ms, 6),
            opt(self.decode_ms, 6),
            opt(self.decode_tokens_per_s, 3),
            self.peak_memory_bytes
                .map(|b| b.to_string())
                .unwrap_or_default(),
            opt(self.chinchilla_loss, 6),
            format!("{:.4}", self.aspect_ratio),
            self.feasible.to_string(),
            self.why_not.clone(),
        ];
        if edit {
            cells.extend([
                opt(self.edit_zo_ms, 6),
                opt(self.edit_bp_ms, 6),
                bytes(self.edit_zo_memory_bytes),
                bytes(self.edit_bp_memory_bytes),
            ]);
        }
        if stack {
            cells.push(self.stack.clone().unwrap_or_default());
        }
        for m in at {
            let v = self.at.iter().find(|a| a.metric == *m).map(|a| a.value);
            cells.push(match m {
                Metric::PeakMemoryAt(_) => v.map(|b| format!("{b:.0}")).unwrap_or_default(),
                _ => opt(v, 6),
            });
        }
        cells
    }
}

/// Reads a `candidates.csv` back, row by row; an error names the file, the line and the
/// column's key.
///
/// Trailing [`at_column`]s (a space's metrics at other prompts and contexts) are read into
/// each row's `at`.
pub fn read_candidates(path: &Path) -> Result<Vec<CandidateRow>, FileError> {
    let text = files::read_to_string(path)?;
    let invalid = |line: u64, key: &str, message: String| FileError::Invalid {
        path: path.to_path_buf(),
        line: Some(line as usize),
        key: key.to_string(),
        message,
    };
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| invalid(1, "header", e.to_string()))?
        .clone();
    let split = header
        .iter()
        .position(|h| h.contains('@') || h.contains(':'))
        .unwrap_or(header.len());
    // A set's device columns (`decode_ms:pixel8`) come last.
    let device_split = header
        .iter()
        .position(|h| h.contains(':'))
        .unwrap_or(header.len());
    let device_names: Vec<String> = header.iter().skip(device_split).map(String::from).collect();
    let at: Vec<Metric> = header
        .iter()
        .take(device_split)
        .skip(split)
        .map(|h| {
            metric_of_column(h).ok_or_else(|| {
                invalid(
                    1,
                    h,
                    "is not a metric at a prompt or context (e.g. `decode_ms@4096`)".into(),
                )
            })
        })
        .collect::<Result<_, _>>()?;
    if at.is_empty() && device_names.is_empty() {
        return read_known(path, &text);
    }
    // The known columns through the usual reader (line numbers kept), then the others.
    let mut known = csv::Writer::from_writer(Vec::new());
    let mut values = Vec::new();
    let mut devices = Vec::new();
    let write_err = |e: csv::Error| invalid(1, "row", e.to_string());
    known
        .write_record(header.iter().take(split))
        .map_err(write_err)?;
    for record in reader.records() {
        let record = record
            .map_err(|e| invalid(e.position().map_or(0, |p| p.line()), "row", e.to_string()))?;
        let line = record.position().map_or(0, |p| p.line());
        known
            .write_record(record.iter().take(split))
            .map_err(write_err)?;
        devices.push(
            device_names
                .iter()
                .cloned()
                .zip(record.iter().skip(device_split).map(String::from))
                .collect::<Vec<_>>(),
        );
        let mut row = Vec::new();
        for (m, cell) in at.iter().zip(record.iter().skip(split)) {
            if cell.is_empty() {
                continue;
            }
            let value = cell
                .parse::<f64>()
                .map_err(|_| invalid(line, &at_column(*m), format!("`{cell}` is not a number")))?;
            row.push(AtValue { metric: *m, value });
        }
        values.push(row);
    }
    let bytes = known
        .into_inner()
        .map_err(|e| invalid(1, "row", e.to_string()))?;
    let mut rows = read_known(path, &String::from_utf8_lossy(&bytes))?;
    for ((row, at), cells) in rows.iter_mut().zip(values).zip(devices) {
        row.at = at;
        row.devices = cells;
    }
    Ok(rows)
}

fn read_known(path: &Path, text: &str) -> Result<Vec<CandidateRow>, FileError> {
    read_csv_text(
        path,
        text,
        &[
            &csv_header(false, false),
            &csv_header(true, false),
            &csv_header(false, true),
            &csv_header(true, true),
        ],
    )
}

/// Reads a CSV file tailor wrote, whose first line must be `header`, into rows of `T`
/// (one serde type per file); an error names the file, the line and the column's key.
/// Reads a CSV file whose header is one of `headers`, row by row.
pub fn read_csv_rows<T: serde::de::DeserializeOwned>(
    path: &Path,
    headers: &[&[&str]],
) -> Result<Vec<T>, FileError> {
    read_csv_text(path, &files::read_to_string(path)?, headers)
}

/// [`read_csv_rows`] of text already read from `path`.
fn read_csv_text<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
    headers: &[&[&str]],
) -> Result<Vec<T>, FileError> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let invalid = |line: Option<u64>, key: &str, message: String| FileError::Invalid {
        path: path.to_path_buf(),
        line: line.map(|l| l as usize),
        key: key.to_string(),
        message,
    };
    let found = reader
        .headers()
        .map_err(|e| invalid(Some(1), "header", e.to_string()))?
        .clone();
    let Some(header) = headers.iter().find(|h| found.iter().eq(h.iter().copied())) else {
        return Err(invalid(
            Some(1),
            "header",
            format!(
                "expected the columns `{}`",
                headers.first().map(|h| h.join(",")).unwrap_or_default()
            ),
        ));
    };
    let headers = found;
    let mut rows = Vec::new();
    for record in reader.records() {
        let record =
            record.map_err(|e| invalid(e.position().map(|p| p.line()), "row", e.to_string()))?;
        let line = record.position().map(|p| p.line());
        let row = record.deserialize::<T>(Some(&headers)).map_err(|e| {
            let (column, message) = match e.kind() {
                csv::ErrorKind::Deserialize { err, .. } => {
                    let message = err.kind().to_string();
                    // The column, where the error gives it; else the cell the message quotes
                    // (an unknown enum value says "unknown variant `x`").
                    let column = err.field().map(|i| i as usize).or_else(|| {
                        record
                            .iter()
                            .position(|cell| message.contains(&format!("`{cell}`")))
                    });
                    (column, message)
                }
                _ => (None, e.to_string()),
            };
            let key = column.and_then(|i| header.get(i)).map_or("row", |k| *k);
            invalid(line, key, message)
        })?;
        rows.push(row);
    }
    Ok(rows)
}

/// Whether an objective or the pick rule wants a metric small or large.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sense {
    Minimize,
    Maximize,
}

impl Sense {
    /// From the `minimise` flag the space carries.
    pub fn of(minimise: bool) -> Self {
        if minimise {
            Sense::Minimize
        } else {
            Sense::Maximize
        }
    }

    pub fn minimizes(self) -> bool {
        self == Sense::Minimize
    }

    pub fn name(self) -> &'static str {
        match self {
            Sense::Minimize => "minimize",
            Sense::Maximize => "maximize",
        }
    }
}

/// A metric and which way is better: one objective, or the pick rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub metric: Objective,
    pub sense: Sense,
}

impl Rule {
    pub fn of((metric, minimise): &(Objective, bool)) -> Self {
        Self {
            metric: metric.clone(),
            sense: Sense::of(*minimise),
        }
    }

    /// `(objective, minimise)`, as the space carries it.
    pub fn pair(&self) -> (&Objective, bool) {
        (&self.metric, self.sense.minimizes())
    }
}

impl std::fmt::Display for Rule {
    /// `minimize decode_ms`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.sense.name(), self.metric.name())
    }
}

/// A JSON object whose keys keep their order (a list of pairs in Rust).
#[derive(Debug, Clone, PartialEq)]
pub struct Ordered<K, V>(pub Vec<(K, V)>);

impl<K: Serialize, V: Serialize> Serialize for Ordered<K, V> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Deserialize<'de> for Ordered<K, V> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<K, V>(std::marker::PhantomData<(K, V)>);
        impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> serde::de::Visitor<'de> for Visit<K, V> {
            type Value = Ordered<K, V>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Self::Value, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = a.next_entry()? {
                    pairs.push(pair);
                }
                Ok(Ordered(pairs))
            }
        }
        d.deserialize_map(Visit(std::marker::PhantomData))
    }
}

/// A candidate's value of each of the space's objectives, in the space's order.
pub type Objectives = Ordered<Objective, f64>;

fn objectives_of(space: &SearchSpace, c: &Candidate) -> Objectives {
    Ordered(
        space
            .objectives
            .iter()
            .map(|(m, _)| (m.clone(), c.metrics.value(m)))
            .collect(),
    )
}

/// One row of front.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrontRow {
    pub id: u64,
    /// The pick rule chose it.
    pub picked: bool,
    pub spec: ModelSpec,
    pub metrics: Metrics,
    pub estimate: Option<Estimate>,
    /// What an edit costs (where the space has `[workload.edit]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edit: Option<tailor_cost::EditEstimate>,
    pub objectives: Objectives,
}

/// front.json: the Pareto front, each row's full spec, metrics and objectives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrontFile {
    pub format_version: u32,
    /// The space's name.
    pub space: String,
    pub objectives: Vec<Rule>,
    pub rows: Vec<FrontRow>,
}

impl FrontFile {
    pub fn new(space: &SearchSpace, out: &SearchOutcome) -> Self {
        Self {
            format_version: RESULTS_FORMAT_VERSION,
            space: space.name().to_string(),
            objectives: space.objectives.iter().map(Rule::of).collect(),
            rows: out
                .front
                .iter()
                .enumerate()
                .map(|(i, c)| FrontRow {
                    id: c.id,
                    picked: out.pick == Some(i),
                    spec: c.spec.clone(),
                    metrics: c.metrics.clone(),
                    estimate: c.estimate,
                    edit: c.edit.as_deref().copied(),
                    objectives: objectives_of(space, c),
                })
                .collect(),
        }
    }
}

/// How many evaluated candidates one constraint excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Excluded {
    pub excluded: u64,
    /// Excluded by this constraint and no other.
    pub excluded_alone: u64,
}

/// The pick, as summary.json gives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PickRow {
    pub id: u64,
    pub spec: ModelSpec,
    pub metrics: Metrics,
    pub objectives: Objectives,
}

/// How long the search took (the only part of summary.json a seed does not fix).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SearchTiming {
    pub wall_s: f64,
    pub evaluations_per_s: f64,
}

/// What a search says about itself in summary.json: counts, skip reasons, constraint
/// exclusions, the pick. Everything but `timing` is a function of the space, the cost
/// model, the strategy and the seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchSummary {
    pub format_version: u32,
    pub space: String,
    pub space_path: String,
    /// The cost model's device.
    pub device: String,
    /// The workload priced (over a set, the first device's: each device's is in
    /// `devices`).
    pub workload: Workload,
    pub strategy: Strategy,
    pub seed: u64,
    pub budget: Option<u64>,
    pub space_size: u64,
    pub seen: u64,
    pub evaluated: u64,
    pub priced: u64,
    pub feasible: u64,
    pub skipped: BTreeMap<String, u64>,
    /// Per constraint, in [`crate::SearchSpace::constraint_names`] order.
    pub constraints: Ordered<String, Excluded>,
    pub front_size: usize,
    pub pick_rule: Rule,
    pub pick: Option<PickRow>,
    /// Over a set of devices: each device's own pick and what the shared pick costs it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceSummary>,
    pub timing: SearchTiming,
}

/// One device of a set in summary.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceSummary {
    pub name: String,
    /// Its fleet share.
    pub weight: f64,
    /// The workload it was priced under (its engine's precision).
    pub workload: Workload,
    /// Candidates inside every constraint on it.
    pub feasible: u64,
    /// Rows of its own front.
    pub front_size: usize,
    /// Its best value of each metric a worst or mean objective reads (the ratios'
    /// denominators).
    pub best: Vec<AtValue>,
    /// Its own pick: the pick rule on this device alone.
    pub pick: Option<PickRow>,
    /// The shared pick against its own, in the regret metric.
    pub regret: Option<Regret>,
}

/// What a device gives up for the shared pick: `regret` = shared / own - 1 for a metric
/// minimised (own / shared - 1 for one maximised), 0 where the shared pick is its own.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Regret {
    pub metric: Metric,
    pub own: f64,
    pub shared: f64,
    pub regret: f64,
}

impl Regret {
    pub fn of(metric: Metric, minimise: bool, own: f64, shared: f64) -> Self {
        let regret = if minimise {
            shared / own - 1.0
        } else {
            own / shared - 1.0
        };
        Self {
            metric,
            own,
            shared,
            regret,
        }
    }
}

/// The metric a set's regrets are measured in: the pick's when a device prices it, else the
/// first objective a device prices; `None` when nothing the space ranks by depends on the
/// device.
pub fn regret_metric(space: &SearchSpace) -> Option<(Metric, bool)> {
    std::iter::once(&space.pick)
        .chain(&space.objectives)
        .find(|(o, _)| o.metric.is_priced())
        .map(|(o, min)| (o.metric, *min))
}

/// Each device's summary of a set search (empty over one device).
pub fn device_summaries(space: &SearchSpace, out: &SearchOutcome) -> Vec<DeviceSummary> {
    let shared = out.pick.map(|i| &out.front[i]);
    out.devices
        .iter()
        .enumerate()
        .map(|(d, dev)| {
            let own = dev.pick.map(|i| &dev.front[i]);
            let regret = match (regret_metric(space), own, shared) {
                (Some((m, min)), Some(own), Some(shared)) => Some(Regret::of(
                    m,
                    min,
                    own.metrics.on(d).get(m),
                    shared.metrics.on(d).get(m),
                )),
                _ => None,
            }
            .filter(|r| r.regret.is_finite());
            DeviceSummary {
                name: dev.name.clone(),
                weight: dev.weight,
                workload: space.device_workload(d),
                feasible: dev.feasible,
                front_size: dev.front.len(),
                best: dev.best.clone(),
                pick: own.map(|c| PickRow {
                    id: c.id,
                    spec: c.spec.clone(),
                    metrics: c.metrics.clone(),
                    objectives: objectives_of(space, c),
                }),
                regret,
            }
        })
        .collect()
}

impl SearchSummary {
    pub fn new(space: &SearchSpace, out: &SearchOutcome, device: &str) -> Self {
        Self {
            format_version: RESULTS_FORMAT_VERSION,
            space: space.name().to_string(),
            space_path: space.path.display().to_string(),
            device: device.to_string(),
            workload: space.device_workload(0),
            strategy: out.strategy,
            seed: out.seed,
            budget: out.budget,
            space_size: space.size(),
            seen: out.seen,
            evaluated: out.evaluated,
            priced: out.priced,
            feasible: out.feasible,
            skipped: out
                .skipped
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            constraints: Ordered(
                out.constraint_names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| {
                        (
                            n.clone(),
                            Excluded {
                                excluded: out.violated[i],
                                excluded_alone: out.violated_alone[i],
                            },
                        )
                    })
                    .collect(),
            ),
            front_size: out.front.len(),
            pick_rule: Rule::of(&space.pick),
            pick: out.pick.map(|i| {
                let c = &out.front[i];
                PickRow {
                    id: c.id,
                    spec: c.spec.clone(),
                    metrics: c.metrics.clone(),
                    objectives: objectives_of(space, c),
                }
            }),
            devices: device_summaries(space, out),
            timing: SearchTiming {
                wall_s: out.wall_s,
                evaluations_per_s: out.evaluated as f64 / out.wall_s.max(1e-9),
            },
        }
    }
}

/// Writes `value` as pretty JSON with a trailing newline, atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), FileError> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| FileError::Write {
        path: path.to_path_buf(),
        cause: e.into(),
    })?;
    text.push('\n');
    files::write_atomic(path, text.as_bytes())
}

/// Reads a JSON file by the type that wrote it; errors name the file, line and column.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, FileError> {
    let text = files::read_to_string(path)?;
    serde_json::from_str(&text).map_err(|e| FileError::from_json(path, &e))
}
