//! `tailor validate`: prove the profiled cost model against whole models timed for real.
//!
//! The work is `tailor_workflow::validate`, one pipeline for both engines: feasible configs
//! spread across a space's range of predicted decode time (or `--spec` files), the profile
//! re-checked on this machine (re-measured, or its predictions levelled to whole models
//! timed here, when asked), the models timed whole in the profile's engine. This prints the
//! comparison: shares within +-10% and +-20%, absolute percentage errors, Kendall's tau of
//! the orders beside the engine's own, the level of each round, a calibration plot.

pub use crate::args::validate::ValidateArgs;
use crate::fmt::timestamp;
use anyhow::Result;
use std::path::PathBuf;
use tailor_report::validation::{DeviceValidateFile, render_devices};
use tailor_search::SearchSpace;
use tailor_workflow::validate::{
    SetValidateRequest, ValidateOptions, ValidateRequest, validate, validate_set,
};

pub fn run(args: &ValidateArgs) -> Result<()> {
    let space = with_workload(args, SearchSpace::load(&args.space)?).with_targets(&args.target)?;
    if !space.devices.is_empty() {
        return run_set(args, space);
    }
    let Some(profile) = &args.profile else {
        anyhow::bail!(
            "give --profile FILE, or a set of devices (--target NAME=FILE, or [devices] in {})",
            args.space.display()
        );
    };
    let llama = tailor_workflow::llama::is_llama(profile);
    let out = out_dir(args, &space, if llama { "-llama" } else { "" });
    let v = if let Some(target) = &args.remote {
        tailor_workflow::device::validate_remote(&tailor_workflow::device::RemoteValidateRequest {
            target,
            profile,
            space: &space,
            options: &options(args, &out, args.llama.weights)?,
        })?
    } else {
        validate(
            ValidateRequest {
                profile,
                space_path: &args.space,
                space,
                options: options(args, &out, args.llama.weights)?,
            },
            &crate::progress::Bars,
        )?
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v.file)?);
    } else {
        print!("{}", v.render());
    }
    Ok(())
}

/// Every device of the space's set, each in its own engine where it runs here.
fn run_set(args: &ValidateArgs, space: SearchSpace) -> Result<()> {
    if args.profile.is_some() {
        anyhow::bail!(
            "{} declares [devices]: each device's own profile is validated; drop --profile \
             (or give --target NAME=FILE to change a device's file)",
            args.space.display()
        );
    }
    let out = out_dir(args, &space, "-devices");
    let devices = validate_set(
        SetValidateRequest {
            space_path: &args.space,
            space,
            options: options(args, &out, None)?,
        },
        &crate::progress::Bars,
    )?;
    if args.json {
        let files: Vec<DeviceValidateFile> = devices.iter().map(DeviceValidateFile::of).collect();
        println!("{}", serde_json::to_string_pretty(&files)?);
    } else {
        print!("{}", render_devices(&devices));
    }
    Ok(())
}

/// What the arguments ask of each validation (one profile's, or each device's); `weights`:
/// llama.cpp's weights instead of the space's (one profile only).
fn options<'a>(
    args: &'a ValidateArgs,
    out: &'a std::path::Path,
    weights: Option<tailor_spec::DType>,
) -> Result<ValidateOptions<'a>> {
    Ok(ValidateOptions {
        specs: &args.specs,
        models: Vec::new(),
        samples: args.samples as usize,
        seed: args.seed,
        rounds: args.rounds,
        out,
        recheck: !args.no_recheck,
        remeasure: args.remeasure,
        anchors: args.relevel.then_some(args.anchors as usize),
        engine: args.llama.engine(&args.timing, weights, &args.device)?,
    })
}

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

/// `--out`, or `out/validate-<space><engine>-<timestamp>`.
fn out_dir(args: &ValidateArgs, space: &SearchSpace, engine: &str) -> PathBuf {
    args.out.clone().unwrap_or_else(|| {
        PathBuf::from("out").join(format!("validate-{}{engine}-{}", space.name(), timestamp()))
    })
}
