//! `tailor spec`: exact accounting of one architecture.

pub use crate::args::spec::SpecArgs;
use anyhow::Result;
use tailor_report::accounting::SpecReport;
use tailor_spec::{Precision, SpecSummary, load_spec};

pub fn run(args: &SpecArgs) -> Result<()> {
    let loaded = load_spec(&args.path)?;
    let mut precision = Precision::for_weights(args.dtype);
    if let Some(kv) = args.kv_dtype {
        precision.kv_cache = kv;
    }
    let summary = SpecSummary::new(
        &loaded.spec,
        args.workload.prompt,
        args.workload.context,
        precision,
    );
    let report = SpecReport {
        summary,
        path: args.path.display().to_string(),
        name: loaded.name,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(())
}
