//! The llama.cpp engine in the commands: `profile --engine llama.cpp`, and `predict`,
//! `search`, `validate` and `run` on a llama.cpp profile. The work is `tailor-llamacpp`'s;
//! this module turns arguments into its calls and prints.

pub use crate::args::llama::Engine;
use crate::args::validate::ValidateArgs;
use anyhow::{Result, anyhow};
use std::path::Path;
use tailor_cost::Workload;
use tailor_llamacpp::WeightType;
use tailor_report::predicted::{LlamaEdit, LlamaPrediction};
use tailor_search::SearchSpace;
use tailor_spec::Precision;
use tailor_workflow::llama::{LlamaProfileOutcome, LlamaValidateRequest, validate_llama};
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

/// `tailor validate` on a llama.cpp profile: a spread sample of the space.
pub fn validate(args: &ValidateArgs, space: SearchSpace) -> Result<()> {
    let (profile, space_path, llama) = (&args.profile, &args.space, &args.llama);
    let space = with_weights(space, llama.weights);
    // The validation's own prompt and context only: not every point the space prices.
    let cost = tailor_workflow::llama::load_cost_for(profile, &[space.workload])?;
    tailor_workflow::llama::require_here(profile, cost.profile(), space_path)?;
    let sample = super::validate::sample(args, &space, &cost)?;
    let out = super::validate::out_dir(args, &space, "-llama");
    let _lock = tailor_workflow::lock::folder(&out)?;
    let models: Vec<_> = sample.into_iter().map(|c| (c.id, c.spec)).collect();
    let bench = llama.bench()?;
    // Re-checked here first (--remeasure: the drifted probes timed again), then levelled to
    // anchor models timed whole (--relevel), as burn's validation does.
    let bar = crate::progress::ProfileBar::new("prepare");
    let ready = tailor_workflow::llama::prepare_validation(
        &tailor_workflow::llama::LlamaPrepareRequest {
            profile,
            space_path,
            space: &space,
            bench: &bench,
            settings: llama.settings(),
            recheck: !args.no_recheck,
            remeasure: args.remeasure,
            anchors: args.relevel.then_some(args.anchors as usize),
            exclude: models.iter().map(|(id, _)| *id).collect(),
            rounds: args.rounds.max(1),
            seed: args.seed,
            out: &out,
        },
        cost,
        &bar,
    )?;
    bar.finish();
    let cost = ready.cost;
    let (profile_check, remeasured) = (ready.profile_check, ready.remeasured);
    let bar = crate::progress::ProfileBar::new("validate");
    let v = validate_llama(
        &LlamaValidateRequest {
            profile,
            space_path,
            space: &space,
            cost: &cost,
            models,
            bench: &bench,
            settings: llama.settings(),
            rounds: args.rounds.max(1),
            seed: args.seed,
            out: &out,
            profile_check,
            remeasured,
        },
        &bar,
    )?;
    bar.finish();
    for w in v.drift() {
        tracing::warn!(profile = %profile.display(), "{w}");
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v.file)?);
    } else {
        print!("{}", v.render());
    }
    Ok(())
}
