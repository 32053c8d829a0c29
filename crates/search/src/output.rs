//! Files of a search run: `candidates.csv`, `front.json`, `summary.json`.

use crate::engine::{Candidate, SearchOutcome};
use crate::metrics::CONSTRAINT_NAMES;
use crate::space::SearchSpace;
use serde::Serialize;
use serde_json::{Value, json};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
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

/// Streams candidates into `candidates.csv`: written beside the target under a temporary
/// name and moved into place by [`CsvSink::finish`], so a reader never sees half a file.
pub struct CsvSink {
    writer: csv::Writer<BufWriter<File>>,
    tmp: PathBuf,
    path: PathBuf,
}

impl std::fmt::Debug for CsvSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvSink").field("path", &self.path).finish()
    }
}

impl CsvSink {
    pub fn create(path: &Path) -> Result<Self, FileError> {
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
        writer.write_record(CSV_HEADER).map_err(|e| err(e.into()))?;
        Ok(Self {
            writer,
            tmp,
            path: path.to_path_buf(),
        })
    }

    pub fn write(&mut self, c: &Candidate) -> std::io::Result<()> {
        let s = &c.spec;
        let m = &c.metrics;
        let opt = |v: Option<f64>| v.map(|x| format!("{x:.6}")).unwrap_or_default();
        let row: [String; 26] = [
            c.id.to_string(),
            s.vocab_size.to_string(),
            s.hidden_size.to_string(),
            s.num_layers.to_string(),
            s.num_heads.to_string(),
            s.num_kv_heads.to_string(),
            s.head_dim().to_string(),
            s.intermediate_size.to_string(),
            s.ffn.to_string(),
            s.activation.to_string(),
            s.norm.to_string(),
            s.norm_bias.to_string(),
            s.qkv_bias.to_string(),
            s.o_bias.to_string(),
            s.mlp_bias.to_string(),
            s.tie_embeddings.to_string(),
            m.params.to_string(),
            m.non_embedding_params.to_string(),
            opt(m.prefill_ms),
            opt(m.decode_ms),
            m.decode_ms
                .map(|d| format!("{:.3}", 1000.0 / d))
                .unwrap_or_default(),
            m.peak_memory_bytes
                .map(|b| b.to_string())
                .unwrap_or_default(),
            opt(m.chinchilla_loss),
            format!("{:.4}", m.aspect_ratio),
            c.feasible().to_string(),
            c.why_not(),
        ];
        self.writer.write_record(&row).map_err(std::io::Error::from)
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

#[derive(Serialize)]
struct FrontRow<'a> {
    id: u64,
    picked: bool,
    spec: &'a tailor_spec::ModelSpec,
    metrics: &'a crate::metrics::Metrics,
    estimate: &'a Option<tailor_cost::Estimate>,
    objectives: Value,
}

fn objectives_of(space: &SearchSpace, c: &Candidate) -> Value {
    let mut map = serde_json::Map::new();
    for &(m, _) in &space.objectives {
        map.insert(m.name().to_string(), json!(c.metrics.get(m)));
    }
    Value::Object(map)
}

/// front.json: the Pareto front, each row's full spec, metrics and objectives.
pub fn front_json(space: &SearchSpace, out: &SearchOutcome) -> Value {
    let rows: Vec<FrontRow> = out
        .front
        .iter()
        .enumerate()
        .map(|(i, c)| FrontRow {
            id: c.id,
            picked: out.pick == Some(i),
            spec: &c.spec,
            metrics: &c.metrics,
            estimate: &c.estimate,
            objectives: objectives_of(space, c),
        })
        .collect();
    json!({
        "format_version": RESULTS_FORMAT_VERSION,
        "space": space.name(),
        "objectives": space.objectives.iter().map(|(m, min)| json!({
            "metric": m.name(), "sense": if *min { "minimize" } else { "maximize" }
        })).collect::<Vec<_>>(),
        "rows": rows,
    })
}

/// summary.json: counts, skip reasons, constraint exclusions, the pick; `device` names the
/// cost model's device. Everything but `timing` is a function of the space, the device,
/// the strategy and the seed.
pub fn summary_json(space: &SearchSpace, out: &SearchOutcome, device: &str) -> Value {
    let constraints: serde_json::Map<String, Value> = CONSTRAINT_NAMES
        .iter()
        .enumerate()
        .map(|(i, n)| {
            (
                n.to_string(),
                json!({ "excluded": out.violated[i], "excluded_alone": out.violated_alone[i] }),
            )
        })
        .collect();
    let pick = out.pick.map(|i| {
        let c = &out.front[i];
        json!({ "id": c.id, "spec": c.spec, "metrics": c.metrics, "objectives": objectives_of(space, c) })
    });
    json!({
        "format_version": RESULTS_FORMAT_VERSION,
        "space": space.name(),
        "space_path": space.path.display().to_string(),
        "device": device,
        "workload": space.workload,
        "strategy": out.strategy.name(),
        "seed": out.seed,
        "budget": out.budget,
        "space_size": space.size(),
        "seen": out.seen,
        "evaluated": out.evaluated,
        "priced": out.priced,
        "feasible": out.feasible,
        "skipped": out.skipped,
        "constraints": constraints,
        "front_size": out.front.len(),
        "pick_rule": json!({ "metric": space.pick.0.name(), "sense": if space.pick.1 { "minimize" } else { "maximize" } }),
        "pick": pick,
        "timing": {
            "wall_s": out.wall_s,
            "evaluations_per_s": out.evaluated as f64 / out.wall_s.max(1e-9),
        },
    })
}

/// Writes a JSON value atomically, pretty, with a trailing newline.
pub fn write_json(path: &Path, value: &Value) -> Result<(), FileError> {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    files::write_atomic(path, text.as_bytes())
}

/// Writes front.json and summary.json into `dir`.
pub fn write_results(
    dir: &Path,
    space: &SearchSpace,
    out: &SearchOutcome,
    device: &str,
) -> Result<(), FileError> {
    write_json(&dir.join("front.json"), &front_json(space, out))?;
    write_json(&dir.join("summary.json"), &summary_json(space, out, device))?;
    let _ = std::io::stderr().flush();
    Ok(())
}
