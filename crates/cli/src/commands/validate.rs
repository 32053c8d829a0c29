//! `tailor validate`: prove the profiled cost model against whole models timed for real.
//!
//! Samples feasible configs spread across a space's range of predicted decode time,
//! re-checks the profile on this machine (re-measuring it, or levelling its predictions to
//! whole models timed here, when asked), and
//! hands the sample to `tailor_workflow::check` (burn; llama.cpp: `llama::validate`); prints
//! the comparison: shares within +-10% and +-20%, absolute percentage errors, Kendall's tau
//! of the orders, the level of each round, a calibration plot.

use super::llama;
use super::predict::{check_precision, load_profiled, require_profiled};
use crate::args::PROFILE_ROUNDS;
pub use crate::args::validate::ValidateArgs;
use crate::fmt::timestamp;
use anyhow::{Result, bail};
use std::collections::BTreeSet;
use std::path::PathBuf;
use tailor_cost::CostModel;
use tailor_search::{Candidate, Metric, SearchSpace, spread_sample};
use tailor_workflow::check::{CheckSetup, check, refuse_oversized};
use tailor_workflow::freshness::{
    DRIFT_TOLERANCE, LevelRequest, announce, level, machine_backend, recheck, remeasure,
    space_shapes,
};
use tailor_workflow::search::require_profiled_space;
use tracing::warn;

pub fn run(args: &ValidateArgs) -> Result<()> {
    if super::llama::is_llama(&args.profile) {
        return llama::validate(args, with_workload(args, SearchSpace::load(&args.space)?));
    }
    let space = with_workload(args, SearchSpace::load(&args.space)?);
    let model = load_profiled(&args.profile)?;
    let timing = args.timing.options()?;
    check_precision(
        &model,
        &space.workload.precision,
        &args.space.display().to_string(),
    )?;
    if args.specs.is_empty() {
        require_profiled_space(&model, &space, &args.space, &args.profile)?;
    }
    for p in &args.specs {
        let spec = tailor_spec::load_spec(p)?.spec;
        require_profiled(&model, &spec, &space.workload, p, &args.profile)?;
    }
    let sample = sample(args, &space, &model)?;
    let backend = machine_backend(&model, &args.profile, &args.space)?;
    let out = out_dir(args, &space, "");
    // One writer per folder: a rerun into it reuses what is measured there.
    let _lock = tailor_workflow::lock::folder(&out)?;
    let drift = if args.no_recheck {
        None
    } else {
        Some(recheck(&args.profile, &model, backend, &timing)?)
    };
    let needed = space_shapes(&space);
    let what = drift
        .as_ref()
        .map(|d| d.plan(model.profile(), &needed, DRIFT_TOLERANCE));
    let (mut model, remeasured) = match &what {
        Some(what) if args.remeasure && !what.is_empty() => {
            announce(&args.profile, what, needed.len(), &timing, PROFILE_ROUNDS);
            remeasure(
                &args.profile,
                what,
                backend,
                &timing,
                PROFILE_ROUNDS,
                &crate::progress::ProfileBar::new("re-measure"),
            )?
        }
        _ => (model, 0),
    };
    if args.relevel {
        let exclude: BTreeSet<u64> = sample.iter().map(|c| c.id).collect();
        let level = level(
            &LevelRequest {
                profile: &args.profile,
                model: &model,
                backend,
                space: &space,
                anchors: args.anchors as usize,
                exclude: &exclude,
                rounds: args.rounds,
                timing,
                seed: args.seed,
                out: &out.join("level"),
            },
            &crate::progress::CheckBar::new(),
        )?;
        if let Some(l) = level {
            model = model.with_level(l);
        }
    }
    let setup = CheckSetup {
        profile: &args.profile,
        model: &model,
        profile_check: drift.as_ref(),
        remeasured,
        backend,
        space: &space,
        rounds: args.rounds,
        timing,
        seed: args.seed,
    };
    let models = sample.into_iter().map(|c| (c.id, c.spec)).collect();
    let v = check(&setup, models, &out, &crate::progress::CheckBar::new())?;
    for w in v.drift() {
        warn!(profile = %args.profile.display(), "{w}");
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v.file)?);
        return Ok(());
    }
    print!("{}", v.render());
    Ok(())
}

/// The configs `validate` times, with either engine: feasible ones spread over the space's
/// range of predicted decode time, refused before starting when one could not fit in memory.
/// The space with `--prompt` and `--context` in its workload.
fn with_workload(args: &ValidateArgs, mut space: SearchSpace) -> SearchSpace {
    if let Some(p) = args.prompt {
        space.workload.prompt_tokens = p;
    }
    if let Some(c) = args.context {
        space.workload.context = c;
    }
    space
}

/// `--spec`'s models, priced as candidates of the space, or a sample of the space spread
/// over its predicted decode time.
pub(super) fn sample(
    args: &ValidateArgs,
    space: &SearchSpace,
    cost: &dyn CostModel,
) -> Result<Vec<Candidate>> {
    if !args.specs.is_empty() {
        let models = args
            .specs
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let spec = tailor_spec::load_spec(p)?.spec;
                Ok(tailor_search::price(space, cost, i as u64, spec))
            })
            .collect::<Result<Vec<_>>>()?;
        refuse_oversized(&models, &args.space)?;
        return Ok(models);
    }
    let sample = spread_sample(
        space,
        cost,
        args.samples as usize,
        args.seed,
        Metric::DecodeMs,
    );
    if sample.is_empty() {
        bail!(
            "{}: no config of the space is inside all its constraints; nothing to validate",
            args.space.display()
        );
    }
    refuse_oversized(&sample, &args.space)?;
    if (sample.len() as u64) < args.samples {
        warn!(
            feasible = sample.len(),
            asked = args.samples,
            "fewer feasible configs than --samples: validating all of them"
        );
    }
    Ok(sample)
}

/// `--out`, or `out/validate-<space><engine>-<timestamp>`.
pub(super) fn out_dir(args: &ValidateArgs, space: &SearchSpace, engine: &str) -> PathBuf {
    args.out.clone().unwrap_or_else(|| {
        PathBuf::from("out").join(format!("validate-{}{engine}-{}", space.name(), timestamp()))
    })
}
