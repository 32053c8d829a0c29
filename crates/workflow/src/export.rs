//! `tailor export`: a spec ready for pre-training (spec.toml, config.json, MODEL_CARD.md)
//! from a row of a search's front (with what its summary.json says of the search) or from
//! any spec file (priced on a profile when one is given).

use crate::error::Result;
use serde_json::Value;
use std::path::{Path, PathBuf};
use tailor_cost::{CostModel, Estimate, Workload};
use tailor_report::fmt::timestamp;
use tailor_report::search::Summary;
use tailor_report::{Card, Chosen, CostKind, CostSource, Exported, Flavor};
use tailor_search::output::{FrontFile, Rule, Sense};
use tailor_search::{Metric, Metrics, pick_order};
use tailor_spec::{ModelSpec, Precision, files, load_spec};
use tracing::info;

/// What to export.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    /// A front.json (optionally `front.json#ID`) or a spec file.
    pub target: String,
    /// The front row, by id (default: the pick).
    pub row: Option<u64>,
    /// `None`: [`Flavor::natural`] of the spec.
    pub flavor: Option<Flavor>,
    /// Output folder [default: out/export-<name>-<timestamp>].
    pub out: Option<PathBuf>,
    /// Price a spec file on this profile, at `prompt` and `context`, for the model card.
    pub profile: Option<PathBuf>,
    pub prompt: u64,
    pub context: u64,
}

/// What was exported, and where.
#[derive(Debug, Clone)]
pub struct ExportOutcome {
    pub name: String,
    pub params: u64,
    pub out: PathBuf,
    pub exported: Exported,
}

pub use crate::error::ExportError;

/// Exports `req`'s target: checks that the flavor can express the spec before anything
/// is written, then writes the three files atomically.
pub fn export(req: &ExportRequest) -> Result<ExportOutcome> {
    let (path, hash_row) = split_target(&req.target)?;
    if hash_row.is_some() && req.row.is_some() {
        return Err(ExportError::RowTwice(req.target.clone()).into());
    }
    let row = hash_row.or(req.row);
    let source = match front_json(&path)? {
        Some(front) => from_front(&path, front, row)?,
        None if row.is_some() => return Err(ExportError::RowOfSpec(path).into()),
        None => from_spec(&path, req)?,
    };
    let flavor = req.flavor.unwrap_or_else(|| Flavor::natural(&source.spec));
    flavor
        .config_json(&source.spec)
        .map_err(|e| ExportError::Flavor {
            path: path.clone(),
            flavor: flavor.name(),
            error: e.to_string(),
        })?;
    let card = Card {
        name: source.name.clone(),
        spec: &source.spec,
        flavor,
        predicted: source.predicted,
        cost: source.cost.clone(),
        chosen: source.chosen.clone(),
        metrics: source.metrics,
        measured: None,
        device_costs: source.device_costs.clone(),
    };
    let slug: String = source
        .name
        .chars()
        .map(|c| match c {
            c if c.is_ascii_alphanumeric() || c == '.' || c == '-' => c,
            _ => '-',
        })
        .collect();
    let out = req
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("out").join(format!("export-{slug}-{}", timestamp())));
    let exported = tailor_report::export(&out, &card)?;
    info!(out = %out.display(), flavor = flavor.name(), "exported");
    Ok(ExportOutcome {
        params: source.spec.params().total,
        name: source.name,
        out,
        exported,
    })
}

/// `front.json#12` -> (`front.json`, Some(12)).
fn split_target(target: &str) -> Result<(PathBuf, Option<u64>), ExportError> {
    match target.rsplit_once('#') {
        Some((path, id)) => {
            let id = id.parse::<u64>().map_err(|_| ExportError::BadRowId {
                target: target.into(),
                id: id.into(),
            })?;
            Ok((PathBuf::from(path), Some(id)))
        }
        None => Ok((PathBuf::from(target), None)),
    }
}

/// The front, when a JSON file is a search's front.json (and not a config.json).
fn front_json(path: &Path) -> Result<Option<FrontFile>> {
    if !path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        return Ok(None);
    }
    let text = files::read_to_string(path)?;
    let value: Value =
        serde_json::from_str(&text).map_err(|e| files::FileError::from_json(path, &e))?;
    if value.get("rows").is_none() {
        return Ok(None);
    }
    let front = serde_json::from_value(value).map_err(|error| ExportError::NotAFront {
        path: path.to_path_buf(),
        error,
    })?;
    Ok(Some(front))
}

/// What is exported and what is known about it.
struct Source {
    name: String,
    spec: ModelSpec,
    metrics: Option<Metrics>,
    predicted: Option<(Workload, Estimate)>,
    cost: Option<CostSource>,
    /// Over a set of devices: each one's cost model.
    device_costs: Vec<CostSource>,
    chosen: Option<Chosen>,
}

/// A spec file, priced on the request's profile when given.
fn from_spec(path: &Path, req: &ExportRequest) -> Result<Source> {
    let loaded = load_spec(path)?;
    let name = loaded.name.clone().unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into())
    });
    let (predicted, cost) = match &req.profile {
        Some(p) => {
            let model = crate::search::load_profiled(p)?;
            let prof = model.profile();
            let w = Workload {
                prompt_tokens: req.prompt,
                context: req.context,
                precision: Precision::for_weights(prof.fingerprint.dtype),
            };
            crate::search::require_profiled(&model, &loaded.spec, &w, path, p)?;
            (
                Some((w, model.estimate(&loaded.spec, &w))),
                Some(CostSource {
                    kind: CostKind::Profiled,
                    file: p.display().to_string(),
                    device: prof.name.clone(),
                    fingerprint: Some(prof.fingerprint.clone()),
                    llama_fingerprint: None,
                    profile_check: None,
                    level: None,
                }),
            )
        }
        None => (None, None),
    };
    Ok(Source {
        name,
        spec: loaded.spec,
        metrics: None,
        predicted,
        cost,
        device_costs: Vec::new(),
        chosen: None,
    })
}

/// The row (default: the pick) of a front.json, with what summary.json beside it says.
fn from_front(path: &Path, front: FrontFile, row: Option<u64>) -> Result<Source> {
    let summary_path = path.with_file_name("summary.json");
    let summary = if summary_path.exists() {
        Some(Summary::load(&summary_path)?)
    } else {
        None
    };
    let search = summary.as_ref().map(|s| &s.search);
    let index = match row {
        Some(id) => front.rows.iter().position(|r| r.id == id).ok_or_else(|| {
            let ids: Vec<String> = front
                .rows
                .iter()
                .take(12)
                .map(|r| r.id.to_string())
                .collect();
            let more = if front.rows.len() > 12 { ", ..." } else { "" };
            ExportError::NoSuchRow {
                path: path.to_path_buf(),
                id,
                rows: front.rows.len(),
                ids: format!("{}{more}", ids.join(", ")),
            }
        })?,
        None => front
            .rows
            .iter()
            .position(|r| r.picked)
            .ok_or_else(|| ExportError::NoPick(path.to_path_buf()))?,
    };
    // Rank by the pick rule (as the search and the report do).
    let rule = search.map_or(
        Rule {
            metric: Metric::DecodeMs.into(),
            sense: Sense::Minimize,
        },
        |s| s.pick_rule.clone(),
    );
    let target = &front.rows[index];
    let rank = 1 + front
        .rows
        .iter()
        .filter(|r| {
            pick_order(
                rule.pair(),
                (r.id, &r.metrics),
                (target.id, &target.metrics),
            )
            .is_lt()
        })
        .count();
    let chosen = Chosen {
        space: front.space.clone(),
        space_path: search.map_or_else(|| front.space.clone(), |s| s.space_path.clone()),
        strategy: search.map_or_else(|| "unknown".into(), |s| s.strategy.name().into()),
        seed: search.map_or(0, |s| s.seed),
        budget: search.and_then(|s| s.budget),
        id: target.id,
        rank,
        front_size: front.rows.len(),
        pick_rule: rule.to_string(),
        picked: target.picked,
    };
    let predicted = match (search.map(|s| s.workload), target.estimate) {
        (Some(w), Some(e)) => Some((w, e)),
        _ => None,
    };
    Ok(Source {
        name: format!("{}-{}", front.space, target.id),
        spec: target.spec.clone(),
        metrics: Some(target.metrics.clone()),
        predicted,
        device_costs: summary
            .as_ref()
            .map(|s| s.device_cost_models.clone())
            .unwrap_or_default(),
        cost: summary.map(|s| s.cost_model),
        chosen: Some(chosen),
    })
}
