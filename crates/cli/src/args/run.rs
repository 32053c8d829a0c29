//! `tailor run`'s arguments and what they ask of the run, whatever the engine.

use super::TimingArgs;
use super::llama::{Engine, LlamaArgs};
use clap::Args;
use std::path::PathBuf;
use tailor_profiler::Backend;
use tailor_report::Flavor;
use tailor_workflow::run::RunCommon;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The search space (TOML), e.g. search-spaces/quickstart.toml.
    pub space: PathBuf,
    /// burn backend to profile and time on: flex (CPU), ndarray (CPU), wgpu (GPU).
    #[arg(long, default_value = "flex")]
    pub backend: Backend,
    /// Output folder [default: out/<space>-<timestamp>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Profile file to use (created, or extended with the shapes it lacks) instead of
    /// looking for one in --profiles.
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// A device of a set to design one model for, NAME=FILE (its profile, burn or
    /// llama.cpp, or a datasheet; `,weight=W` its fleet share), twice or more; with a space
    /// that declares [devices], the file of one of them. A run over a set profiles nothing:
    /// it searches the set, times the shared pick and each device's own pick whole on each
    /// device whose engine runs here, and reports what each device gives up.
    #[arg(long, value_name = "NAME=FILE", conflicts_with = "profile")]
    pub target: Vec<tailor_search::Target>,
    /// Folder searched for a profile of this setup (same fingerprint); a new one is
    /// written there when none matches.
    #[arg(long, default_value = "profiles")]
    pub profiles: PathBuf,
    /// Seed of the search (when the space is too large for exhaustive search).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Whole models to build and time against their prediction: the pick and front rows
    /// spread over the front's decode times (0: skip the check).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(0..=100))]
    pub check: u64,
    /// Whole models (at fixed quantiles of the space's predicted decode time) to
    /// time before the search; their measured/predicted ratios set the level of every
    /// prediction, per phase, where absolute constraints need it (0: price with the profile
    /// as it is; the level does not change the order, and the check shows the truth).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=20))]
    pub anchors: u64,
    /// Timing rounds of the check and of the anchors (see `tailor validate --rounds`).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=20))]
    pub check_rounds: u64,
    /// Sessions per profile entry (see `tailor profile --rounds`).
    #[arg(long, default_value_t = super::PROFILE_ROUNDS as u64,
          value_parser = clap::value_parser!(u64).range(1..=20))]
    pub profile_rounds: u64,
    #[command(flatten)]
    pub timing: TimingArgs,
    /// config.json flavor of the export.
    /// [default: llama for a dense pick, else the family that expresses it]
    #[arg(long, value_enum)]
    pub flavor: Option<Flavor>,
    /// Print summary.json on stdout instead of the tables.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub device: super::RemoteArgs,

    /// The engine to design for: burn (in process, --backend) or llama.cpp (the user's
    /// llama-bench; GGUF weights of --weights or the space's).
    #[arg(long, value_enum, default_value = "burn")]
    pub engine: Engine,
    #[command(flatten)]
    pub llama: LlamaArgs,
}

/// What the run is asked whatever the engine.
pub fn common(args: &RunArgs) -> RunCommon {
    RunCommon {
        space: args.space.clone(),
        out: args.out.clone(),
        profile: args.profile.clone(),
        profiles: args.profiles.clone(),
        seed: args.seed,
        check: args.check as usize,
        check_rounds: args.check_rounds,
        profile_rounds: args.profile_rounds as usize,
        flavor: args.flavor,
    }
}
