//! `tailor export`: a spec ready for pre-training (config.json, spec.toml, MODEL_CARD.md)
//! from a row of a search's front or from any spec file.

pub use crate::args::export::ExportArgs;
use anyhow::Result;
use tailor_workflow::export::{ExportRequest, export};

pub fn run(args: &ExportArgs) -> Result<()> {
    let o = export(&ExportRequest {
        target: args.target.clone(),
        row: args.row,
        flavor: args.flavor,
        out: args.out.clone(),
        profile: args.profile.clone(),
        prompt: args.workload.prompt,
        context: args.workload.context,
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&o.exported)?);
        return Ok(());
    }
    println!(
        "{} ({} parameters) exported to {}:",
        o.name,
        crate::fmt::thousands(u128::from(o.params)),
        o.out.display()
    );
    let e = &o.exported;
    for p in [&e.config_json, &Some(e.spec_toml.clone())]
        .into_iter()
        .flatten()
        .chain([&e.model_card])
    {
        println!("  {}", p.display());
    }
    Ok(())
}
