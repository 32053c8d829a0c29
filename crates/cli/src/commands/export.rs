//! `tailor export`: a spec ready for pre-training (config.json, spec.toml, MODEL_CARD.md)
//! from a row of a search's front or from any spec file.

use super::predict::load_profiled;
use crate::fmt::timestamp;
use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use serde_json::Value;
use std::path::{Path, PathBuf};
use tailor_cost::{CostModel, Estimate, Workload};
use tailor_report::search::Summary;
use tailor_report::{Card, Chosen, CostKind, CostSource, Flavor};
use tailor_search::output::{FrontFile, Rule, Sense};
use tailor_search::{Metric, Metrics, pick_order};
use tailor_spec::{HfConfig, ModelSpec, Precision, files, load_spec};
use tracing::info;

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A search's `front.json` (its pick, or the row given by `#ID` / --row), or a spec
    /// (`spec.toml` or `config.json`).
    pub target: String,
    /// Front row to export, by id (default: the pick).
    #[arg(long)]
    pub row: Option<u64>,
    /// config.json flavor: `llama` (stock transformers) or `phonelm` (PhoneLM's fields).
    #[arg(long, value_enum, default_value = "llama")]
    pub flavor: Flavor,
    /// Output folder [default: out/export-<name>-<timestamp>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Price a spec file on this profile for the model card (front rows carry their own
    /// prediction).
    #[arg(long)]
    pub profile: Option<PathBuf>,
    #[command(flatten)]
    pub workload: crate::args::WorkloadArgs,
    /// Print the written paths as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `front.json#12` -> (`front.json`, Some(12)).
fn split_target(target: &str) -> Result<(PathBuf, Option<u64>)> {
    match target.rsplit_once('#') {
        Some((path, id)) => {
            let id = id.parse::<u64>().map_err(|_| {
                anyhow!(
                    "`{target}`: after `#` comes the id of a front row (a number, as in \
                     front.json's `id`), not `{id}`"
                )
            })?;
            Ok((PathBuf::from(path), Some(id)))
        }
        None => Ok((PathBuf::from(target), None)),
    }
}

/// Whether a JSON file is a search's front.json (and not a config.json).
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
    let front: FrontFile = serde_json::from_value(value).with_context(|| {
        format!(
            "{}: not a front.json written by `tailor search`",
            path.display()
        )
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
    chosen: Option<Chosen>,
}

pub fn run(args: &ExportArgs) -> Result<()> {
    let (path, hash_row) = split_target(&args.target)?;
    if hash_row.is_some() && args.row.is_some() {
        bail!("give the row once: `{}` or --row, not both", args.target);
    }
    let row = hash_row.or(args.row);
    let source = match front_json(&path)? {
        Some(front) => from_front(&path, front, row)?,
        None => {
            if row.is_some() {
                bail!(
                    "{}: a row id applies to a search's front.json, and this is a spec file",
                    path.display()
                );
            }
            from_spec(&path, args)?
        }
    };
    // A flavor that cannot express the spec is an error before anything is written.
    HfConfig::export(&source.spec, args.flavor.model_type()).map_err(|e| {
        anyhow!(
            "{}: cannot export as `{}`: {e}",
            path.display(),
            args.flavor.name()
        )
    })?;
    let card = Card {
        name: source.name.clone(),
        spec: &source.spec,
        flavor: args.flavor,
        predicted: source.predicted,
        cost: source.cost.clone(),
        chosen: source.chosen.clone(),
        metrics: source.metrics,
        measured: None,
    };
    let slug: String = source
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("out").join(format!("export-{slug}-{}", timestamp())));
    let exported = tailor_report::export(&out, &card)?;
    info!(out = %out.display(), flavor = args.flavor.name(), "exported");
    if args.json {
        println!("{}", serde_json::to_string_pretty(&exported)?);
        return Ok(());
    }
    println!(
        "{} ({} parameters) exported to {}:",
        source.name,
        crate::fmt::thousands(source.spec.params().total as u128),
        out.display()
    );
    for p in [&exported.config_json, &Some(exported.spec_toml.clone())]
        .into_iter()
        .flatten()
        .chain([&exported.model_card])
    {
        println!("  {}", p.display());
    }
    Ok(())
}

/// A spec file, priced on `--profile` when given.
fn from_spec(path: &Path, args: &ExportArgs) -> Result<Source> {
    let loaded = load_spec(path)?;
    let name = loaded.name.clone().unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into())
    });
    let (predicted, cost) = match &args.profile {
        Some(p) => {
            let model = load_profiled(p)?;
            let prof = model.profile();
            let w = Workload {
                prompt_tokens: args.workload.prompt,
                context: args.workload.context,
                precision: Precision::for_weights(prof.fingerprint.dtype),
            };
            (
                Some((w, model.estimate(&loaded.spec, &w))),
                Some(CostSource {
                    kind: CostKind::Profiled,
                    file: p.display().to_string(),
                    device: prof.name.clone(),
                    fingerprint: Some(prof.fingerprint.clone()),
                    llama_fingerprint: None,
                    profile_check: None,
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
            anyhow!(
                "{}: no row with id {id} on this front; its {} rows have ids {}{}",
                path.display(),
                front.rows.len(),
                ids.join(", "),
                if front.rows.len() > 12 { ", ..." } else { "" }
            )
        })?,
        None => front.rows.iter().position(|r| r.picked).ok_or_else(|| {
            anyhow!(
                "{}: the front has no pick; name a row with `#ID` or --row",
                path.display()
            )
        })?,
    };
    // Rank by the pick rule (as the search and the report do).
    let rule = search.map_or(
        Rule {
            metric: Metric::DecodeMs,
            sense: Sense::Minimize,
        },
        |s| s.pick_rule,
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
    let row = &front.rows[index];
    Ok(Source {
        name: format!("{}-{}", front.space, row.id),
        spec: row.spec.clone(),
        metrics: Some(row.metrics),
        predicted,
        cost: summary.map(|s| s.cost_model),
        chosen: Some(chosen),
    })
}
