//! `tailor profile`: time the operator shapes a space (or a few specs) needs on one
//! backend, into a resumable profile file.

use super::llama::Engine;
pub use crate::args::profile::ProfileArgs;
use crate::args::profile::{device_args, refuse_cpus_for_llama, request, space_phases};
use crate::remote;
use anyhow::{Result, bail};
use std::path::{Path, PathBuf};
use tailor_profiler::Backend;
use tailor_report::profile::BurnProfileReport;
use tailor_search::{SearchSpace, static_candidates};
use tailor_spec::load_spec;
use tailor_workflow::device::{
    RemoteOutcome, RemoteProfileRequest, profile_remote as profile_remote_with,
};
use tailor_workflow::llama::LlamaProfileRequest;
use tailor_workflow::profile::{SPEC_CONTEXT, SPEC_PROMPT, pin_process, profile_burn};

/// `tailor profile --engine llama.cpp`.
fn profile_llama(args: &ProfileArgs) -> Result<()> {
    refuse_cpus_for_llama(args)?;
    let (name, specs, prompts, contexts, space_weights) = match &args.space {
        Some(path) => {
            let space = SearchSpace::load(path)?;
            let (prompts, contexts) = space_phases(&space, args);
            let specs: Vec<_> = static_candidates(&space).collect();
            (
                space.name().to_string(),
                specs,
                prompts,
                contexts,
                Some(space.workload.precision.weights),
            )
        }
        None => {
            let specs = args
                .spec
                .iter()
                .map(|p| load_spec(p).map(|l| l.spec))
                .collect::<Result<Vec<_>, _>>()?;
            let or = |p: &[u64], d: u64| if p.is_empty() { vec![d] } else { p.to_vec() };
            (
                "specs".into(),
                specs,
                or(&args.prompt, SPEC_PROMPT),
                or(&args.context, SPEC_CONTEXT),
                None,
            )
        }
    };
    if specs.is_empty() {
        bail!("no candidate of the space is inside its static constraints: nothing to profile");
    }
    let weights = args
        .llama
        .weights
        .or(space_weights)
        .unwrap_or(tailor_spec::DType::Q4_0);
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("profiles/host-llamacpp-{weights}.toml")));
    let bench = args.llama.bench()?;
    let bar = crate::progress::ProfileBar::new("profile");
    let o = tailor_workflow::llama::profile_llama(
        &LlamaProfileRequest {
            name,
            specs,
            prompts,
            contexts,
            weights,
            bench: &bench,
            settings: args.llama.settings(),
            decode_tokens: args.llama.decode_tokens,
            rounds: args.rounds as u32,
            depths: super::llama::depths(args.probe_layers.0, weights, args.probe_mib)?,
            out,
            force: args.force,
            limit: args.limit,
        },
        &bar,
    )?;
    bar.finish();
    super::llama::print_profile(&o, args.json)
}

pub fn run(args: &ProfileArgs) -> Result<()> {
    if let Some(remote) = &args.remote {
        return profile_remote(args, remote);
    }
    if args.engine == Engine::LlamaCpp {
        return profile_llama(args);
    }
    let req = request(args)?;
    if let Some(list) = &args.cpus {
        pin_process(list)?;
    }
    let bar = crate::progress::ProfileBar::new("profile");
    let o = profile_burn(&req, &bar)?;
    bar.finish();
    print_report(&o.report(), args.json)
}

/// `tailor profile`'s output: its report as JSON, or as a table.
fn print_report(report: &BurnProfileReport, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(())
}

/// `tailor profile --remote`: the settings checked here, the run on the device in
/// `tailor_workflow::device`, the outcome printed.
fn profile_remote(args: &ProfileArgs, target: &str) -> Result<()> {
    let Some(space) = &args.space else {
        bail!("--remote profiles a --space (push your specs into a space file)");
    };
    let llama = args.engine == Engine::LlamaCpp;
    if !llama
        && args.backend == Backend::Wgpu
        && args.remote_binary == Path::new(remote::ARM64_BINARY)
    {
        bail!(
            "--remote runs the static arm64 build, which has the CPU backends only (flex, \
             ndarray); for a GPU, name a build with wgpu (Android NDK) with --remote-binary"
        );
    }
    args.timing.options()?;
    let llama_bench = if llama {
        refuse_cpus_for_llama(args)?;
        let Some(lb) = &args.llama.llama_bench else {
            bail!(
                "--remote with --engine llama.cpp pushes the device's llama-bench: name it \
                 with --llama-bench PATH (an aarch64 build; docs/llama-cpp.md, \"On a phone\")"
            );
        };
        Some((lb.as_path(), args.llama.weights))
    } else {
        None
    };
    let outcome = profile_remote_with(&RemoteProfileRequest {
        target,
        space,
        backend: args.backend,
        llama: llama_bench,
        out: args.out.clone(),
        tailor_binary: &args.remote_binary,
        force: args.force,
        device_args: &|file| device_args(args, file, llama),
    })?;
    match outcome {
        RemoteOutcome::Llama(o) => super::llama::print_profile(&o, args.json),
        RemoteOutcome::Burn(b) => print_report(&b.report, args.json),
    }
}
