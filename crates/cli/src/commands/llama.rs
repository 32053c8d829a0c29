//! The llama.cpp engine in the commands: `profile --engine llama.cpp`, and `predict`,
//! `search` and `run` on a llama.cpp profile (`validate` is one pipeline for both engines,
//! `tailor_workflow::validate`). The work is `tailor-llamacpp`'s;
//! this module turns arguments into its calls and prints.

pub use crate::args::llama::Engine;
use anyhow::{Result, anyhow};
use std::path::Path;
use tailor_cost::Workload;
use tailor_llamacpp::WeightType;
use tailor_report::predicted::{LlamaEdit, LlamaPrediction};
use tailor_spec::Precision;
use tailor_workflow::llama::LlamaProfileOutcome;
pub use tailor_workflow::llama::{depths, is_llama, load_cost, with_weights};
use tracing::warn;

/// The outcome of a llama.cpp profiling run.
pub type ProfileOutcome = LlamaProfileOutcome;

/// Prints a profiling outcome.
pub fn print_profile(o: &ProfileOutcome, json_out: bool) -> Result<()> {
    let report = o.report();
    if report.loaded_entries > 0 {
        warn!(
            loaded = report.loaded_entries,
            "probe entries with a round timed while other processes took a share of the \
             CPUs (`loaded_rounds` in the profile): re-measure on a quiet machine \
             (`--force`)"
        );
    }
    if json_out {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(())
}

/// `tailor predict` on a llama.cpp profile.
pub fn predict(
    spec_path: &Path,
    profile: &Path,
    prompt: u64,
    context: u64,
    edit: Option<tailor_cost::EditWorkload>,
    json_out: bool,
) -> Result<()> {
    let loaded = tailor_spec::load_spec(spec_path)?;
    let cost = load_cost(profile, None)?;
    let w = Workload {
        prompt_tokens: prompt,
        context,
        precision: Precision::for_weights(cost.profile().fingerprint.weights),
    };
    cost.check_workload(&w)
        .map_err(|e| anyhow!("{}: {e}", profile.display()))?;
    let p = cost.predict(&loaded.spec, &w);
    let edit = edit.map(|e| cost.predict_edit(&loaded.spec, &w, &e));
    let subs = WeightType::from_dtype(w.precision.weights)
        .ok()
        .and_then(|wt| tailor_llamacpp::model::substitutions(&loaded.spec, wt).ok())
        .unwrap_or_default();
    let report = LlamaPrediction::new(
        &spec_path.display().to_string(),
        &loaded,
        &profile.display().to_string(),
        cost.profile().fingerprint.clone(),
        w,
        &p.estimate,
        p.derived,
        subs,
        edit.map(|(estimate, derived)| LlamaEdit { estimate, derived }),
    );
    if json_out {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(())
}
