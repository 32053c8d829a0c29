//! `tailor validate` in either engine, one pipeline: the models (given specs, or a sample of
//! the space spread over its predicted decode time) priced by the profile and refused
//! before anything runs where the profile cannot price them or they cannot fit in memory;
//! the profile made ready (re-checked on this machine, its drifted entries re-measured,
//! its predictions levelled to whole models, as asked); the models timed whole in the
//! profile's engine ([`crate::check`] for burn, [`crate::llama::validate_llama`] for
//! llama.cpp); one `validate.json` ([`Validation`]) for both.

use crate::check::{CheckSetup, check, refuse_oversized};
pub use crate::engine::{EngineSetup, RemoteSetup, ValidateOptions};
use crate::error::{Result, WorkflowError};
use crate::freshness::{
    DRIFT_TOLERANCE, LevelRequest, announce, level, machine_backend, recheck, remeasure,
    space_shapes,
};
use crate::llama::{
    LlamaPrepareRequest, LlamaValidateRequest, is_llama, load_cost_for, prepare_validation,
    require_here, validate_llama, with_weights,
};
use crate::profile::PROFILE_ROUNDS;
use crate::run::RunProgress;
use crate::search::{check_precision, load_profiled, require_profiled, require_profiled_space};
use std::collections::BTreeSet;
use std::path::Path;
use tailor_cost::CostModel;
use tailor_llamacpp::LlamaBench;
use tailor_report::validation::{DeviceValidation, Validation};
use tailor_search::{Candidate, Metric, SearchSpace, spread_sample};
use tracing::warn;

/// What to validate.
#[derive(Debug)]
pub struct ValidateRequest<'a> {
    pub profile: &'a Path,
    pub space_path: &'a Path,
    /// The space, with the prompt and context to validate at in its workload.
    pub space: SearchSpace,
    pub options: ValidateOptions<'a>,
}

/// Validates `req.profile` against whole models in its own engine.
pub fn validate(req: ValidateRequest, progress: &dyn RunProgress) -> Result<Validation> {
    if is_llama(req.profile) {
        validate_llama_profile(req, progress)
    } else {
        validate_burn_profile(req, progress)
    }
}

/// The models [`validate`] times: `req.options.specs`, priced as candidates of the space, or a
/// sample of the space spread over its predicted decode time; refused before starting when
/// one could not fit in memory.
pub fn sample(req: &ValidateRequest, cost: &dyn CostModel) -> Result<Vec<Candidate>> {
    let space = &req.space;
    if !req.options.models.is_empty() {
        let models: Vec<Candidate> = (req.options.models.iter())
            .map(|(id, spec)| tailor_search::price(space, cost, *id, spec.clone()))
            .collect();
        refuse_oversized(&models, req.space_path)?;
        return Ok(models);
    }
    if !req.options.specs.is_empty() {
        let models = (req.options.specs.iter())
            .enumerate()
            .map(|(i, p)| {
                let spec = tailor_spec::load_spec(p)?.spec;
                Ok(tailor_search::price(space, cost, i as u64, spec))
            })
            .collect::<Result<Vec<_>>>()?;
        refuse_oversized(&models, req.space_path)?;
        return Ok(models);
    }
    let sample = spread_sample(
        space,
        cost,
        req.options.samples,
        req.options.seed,
        Metric::DecodeMs,
    );
    if sample.is_empty() {
        return Err(WorkflowError::NothingToValidate {
            space: req.space_path.to_path_buf(),
        });
    }
    refuse_oversized(&sample, req.space_path)?;
    if sample.len() < req.options.samples {
        warn!(
            feasible = sample.len(),
            asked = req.options.samples,
            "fewer feasible configs than --samples: validating all of them"
        );
    }
    Ok(sample)
}

fn validate_burn_profile(req: ValidateRequest, progress: &dyn RunProgress) -> Result<Validation> {
    let (space, timing) = (&req.space, &req.options.engine.timing);
    let model = load_profiled(req.profile)?;
    check_precision(
        &model,
        &space.workload.precision,
        &req.space_path.display().to_string(),
    )?;
    if req.options.specs.is_empty() && req.options.models.is_empty() {
        require_profiled_space(&model, space, req.space_path, req.profile)?;
    }
    for (_, spec) in &req.options.models {
        require_profiled(&model, spec, &space.workload, req.space_path, req.profile)?;
    }
    for p in req.options.specs {
        let spec = tailor_spec::load_spec(p)?.spec;
        require_profiled(&model, &spec, &space.workload, p, req.profile)?;
    }
    let sample = sample(&req, &model)?;
    let backend = machine_backend(&model, req.profile, req.space_path)?;
    // One writer per folder: a rerun into it reuses what is measured there.
    let _lock = crate::lock::folder(req.options.out)?;
    let drift = if req.options.recheck {
        Some(recheck(req.profile, &model, backend, timing)?)
    } else {
        None
    };
    let needed = space_shapes(space);
    let what = drift
        .as_ref()
        .map(|d| d.plan(model.profile(), &needed, DRIFT_TOLERANCE));
    let (mut model, remeasured) = match &what {
        Some(what) if req.options.remeasure && !what.is_empty() => {
            announce(req.profile, what, needed.len(), timing, PROFILE_ROUNDS);
            remeasure(
                req.profile,
                what,
                backend,
                timing,
                PROFILE_ROUNDS,
                progress.remeasure().as_ref(),
            )?
        }
        _ => (model, 0),
    };
    if let Some(anchors) = req.options.anchors {
        let exclude: BTreeSet<u64> = sample.iter().map(|c| c.id).collect();
        let level = level(
            &LevelRequest {
                profile: req.profile,
                model: &model,
                backend,
                space,
                anchors,
                exclude: &exclude,
                rounds: req.options.rounds,
                timing: *timing,
                seed: req.options.seed,
                out: &req.options.out.join("level"),
            },
            progress.check().as_ref(),
        )?;
        if let Some(l) = level {
            model = model.with_level(l);
        }
    }
    let setup = CheckSetup {
        profile: req.profile,
        model: &model,
        profile_check: drift.as_ref(),
        remeasured,
        backend,
        space,
        rounds: req.options.rounds,
        timing: *timing,
        seed: req.options.seed,
    };
    let models = sample.into_iter().map(|c| (c.id, c.spec)).collect();
    let v = check(&setup, models, req.options.out, progress.check().as_ref())?;
    for w in v.drift() {
        warn!(profile = %req.profile.display(), "{w}");
    }
    Ok(v)
}

fn validate_llama_profile(
    mut req: ValidateRequest,
    progress: &dyn RunProgress,
) -> Result<Validation> {
    req.space = with_weights(req.space, req.options.engine.weights);
    let (profile, space_path) = (req.profile, req.space_path);
    // The validation's own prompt and context only: not every point the space prices.
    let cost = load_cost_for(profile, &[req.space.workload])?;
    require_here(profile, cost.profile(), space_path)?;
    let sample = sample(&req, &cost)?;
    let _lock = crate::lock::folder(req.options.out)?;
    let models: Vec<_> = sample.into_iter().map(|c| (c.id, c.spec)).collect();
    let mut bench = LlamaBench::locate(req.options.engine.llama_bench.as_deref())
        .map_err(tailor_llamacpp::RunError::from)?;
    bench.prefix.extend(crate::remote::exec_prefix());
    let settings = req.options.engine.settings.clone();
    // Re-checked here first (--remeasure: the drifted probes timed again), then levelled to
    // anchor models timed whole (--relevel), as burn's validation does.
    let ready = prepare_validation(
        &LlamaPrepareRequest {
            profile,
            space_path,
            space: &req.space,
            bench: &bench,
            settings: settings.clone(),
            recheck: req.options.recheck,
            remeasure: req.options.remeasure,
            anchors: req.options.anchors,
            exclude: models.iter().map(|(id, _)| *id).collect(),
            rounds: req.options.rounds,
            seed: req.options.seed,
            out: req.options.out,
        },
        cost,
        progress.llama().as_ref(),
    )?;
    let v = validate_llama(
        &LlamaValidateRequest {
            profile,
            space_path,
            space: &req.space,
            cost: &ready.cost,
            models,
            bench: &bench,
            settings,
            rounds: req.options.rounds,
            seed: req.options.seed,
            out: req.options.out,
            profile_check: ready.profile_check,
            remeasured: ready.remeasured,
        },
        progress.llama().as_ref(),
    )?;
    for w in v.drift() {
        warn!(profile = %profile.display(), "{w}");
    }
    Ok(v)
}

/// A validation of every device of a set: the space with its devices (`[devices]`,
/// `--target`) and the prompt and context to validate at in its workload, and what each
/// device's validation times and how.
#[derive(Debug)]
pub struct SetValidateRequest<'a> {
    pub space_path: &'a Path,
    pub space: SearchSpace,
    pub options: ValidateOptions<'a>,
}

/// Validates each device of the set in its own engine, one after the other, on the space
/// as that device sees it ([`SearchSpace::for_device`]: its workload, its limits). A device
/// that cannot be timed here is reported, not an error: a datasheet, or a profile made on
/// another machine (validate it there). Any other refusal names the device.
pub fn validate_set(
    req: SetValidateRequest,
    progress: &dyn RunProgress,
) -> Result<Vec<DeviceValidation>> {
    let mut space = req.space;
    crate::search::set_device_workloads(&mut space, req.space_path)?;
    let mut out = Vec::with_capacity(space.devices.len());
    for d in 0..space.devices.len() {
        let name = space.devices[d].name.clone();
        let file = crate::search::device_file(&space, req.space_path, d)?;
        let remote = space.devices[d].remote.clone();
        let result = if crate::search::is_datasheet(&file) {
            Err("a datasheet: no engine here to time it in".to_string())
        } else if let Some(target) = remote {
            tracing::info!(device = %name, via = %target, profile = %file.display(), "validating on the device");
            let out = req.options.out.join(&name);
            let view = space.for_device(d);
            crate::device::validate_remote(&crate::device::RemoteValidateRequest {
                target: &target,
                profile: &file,
                space: &view,
                options: &ValidateOptions {
                    out: &out,
                    ..req.options.clone()
                },
            })
            .map(Ok)
            .map_err(|error| WorkflowError::OnDevice {
                device: name.clone(),
                error: Box::new(error),
            })?
        } else {
            tracing::info!(device = %name, profile = %file.display(), "validating");
            let out = req.options.out.join(&name);
            let r = validate(
                ValidateRequest {
                    profile: &file,
                    space_path: req.space_path,
                    space: space.for_device(d),
                    options: ValidateOptions {
                        out: &out,
                        // Each device runs its own weights (its workload's).
                        engine: EngineSetup {
                            weights: None,
                            ..req.options.engine.clone()
                        },
                        ..req.options.clone()
                    },
                },
                progress,
            );
            match r {
                Ok(v) => Ok(v),
                Err(
                    e @ (WorkflowError::NotThisMachine { .. }
                    | WorkflowError::LlamaNotThisMachine { .. }),
                ) => {
                    warn!(device = %name, "not validated here: {e}");
                    Err(format!(
                        "its profile is of another machine ({e}); give the device a `remote` \
                         to validate it there"
                    ))
                }
                Err(error) => {
                    return Err(WorkflowError::OnDevice {
                        device: name,
                        error: Box::new(error),
                    });
                }
            }
        };
        out.push(DeviceValidation {
            device: name,
            file,
            result,
        });
    }
    Ok(out)
}
