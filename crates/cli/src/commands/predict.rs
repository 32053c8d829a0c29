//! `tailor predict`: what one spec costs on a profiled device.

pub use crate::args::predict::PredictArgs;
use anyhow::Result;
use tailor_cost::Workload;
use tailor_report::predicted::BurnPrediction;
use tailor_spec::{Precision, load_dense_spec, load_spec};

use tailor_workflow::search::{load_profiled, require_profiled};

pub fn run(args: &PredictArgs) -> Result<()> {
    let edit = args.edit.workload()?;
    if super::llama::is_llama(&args.profile) {
        return super::llama::predict(
            &args.spec,
            &args.profile,
            args.workload.prompt,
            args.workload.context,
            edit,
            args.json,
        );
    }
    // An edit is of the dense stack only.
    let loaded = if edit.is_some() {
        load_dense_spec(&args.spec)?
    } else {
        load_spec(&args.spec)?
    };
    let model = load_profiled(&args.profile)?;
    let workload = Workload {
        prompt_tokens: args.workload.prompt,
        context: args.workload.context,
        precision: Precision::for_weights(model.profile().fingerprint.dtype),
    };
    require_profiled(&model, &loaded.spec, &workload, &args.spec, &args.profile)?;
    let p = model.predict(&loaded.spec, &workload);
    let edit = edit.map(|e| model.predict_edit(&loaded.spec, &workload, &e));
    let report = BurnPrediction::new(
        &args.spec.display().to_string(),
        &loaded,
        &args.profile.display().to_string(),
        &model,
        workload,
        p,
        edit,
    );
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(())
}
