//! `tailor validate`'s arguments.

use super::TimingArgs;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Device profile of this machine (`tailor profile`), e.g. profiles/host-flex.toml.
    /// Not with a set of devices (`--target`, or a space with [devices]): each device's
    /// own profile is validated then.
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// A device of a set validated one after the other, NAME=FILE (as `tailor search`
    /// takes it): each device whose engine runs here is timed in it, into <out>/<NAME>;
    /// a datasheet, or a profile of another machine, is reported and skipped.
    #[arg(long, value_name = "NAME=FILE", conflicts_with = "profile")]
    pub target: Vec<tailor_search::Target>,
    /// The space to sample configs from (inside all its constraints).
    #[arg(long)]
    pub space: PathBuf,
    /// Configs to build and time, spread over the space's range of predicted decode time.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(2..=10_000))]
    pub samples: u64,
    /// Seed of the sample.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Validate these specs (spec.toml or config.json; repeatable) instead of a sample of
    /// the space, under the space's workload.
    #[arg(long = "spec", value_name = "FILE")]
    pub specs: Vec<PathBuf>,
    /// Prefill this many tokens instead of the space's `prompt_tokens`.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub prompt: Option<u64>,
    /// Decode at this context instead of the space's `context`.
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=1_048_576))]
    pub context: Option<u64>,
    /// Timing sessions per model, in rounds: each round builds the sample afresh in a new
    /// process and times the models against each other, interleaved (each capped at
    /// --max-time / rounds); a model's time is the median of its fastest round (a slow
    /// stretch of the machine slows a whole round). Memory is measured in the first round.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=20))]
    pub rounds: u64,
    /// Output folder [default: out/validate-<space>-<timestamp>]. Rerunning into the same
    /// folder reuses the models already measured there.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub timing: TimingArgs,
    /// Print validate.json on stdout instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Validate on another device: `adb`, `adb:SERIAL` or `qemu:DIR`, as `tailor profile
    /// --remote` reaches it (the profile is that device's). Over a set, a device's own
    /// `remote` (`[devices.NAME] remote`, `,remote=` after a --target) says it instead.
    #[arg(long, conflicts_with = "target")]
    pub remote: Option<String>,
    #[command(flatten)]
    pub device: super::RemoteArgs,

    /// Before validating, the profile's fixed subset of entries is re-timed here and its
    /// drift per class of operators reported (a few seconds); skip that.
    #[arg(long, conflicts_with = "remeasure")]
    pub no_recheck: bool,
    /// Before validating, time --anchors other whole models of the space (at fixed
    /// quantiles of predicted decode time, none of the sample) and validate the profile's
    /// predictions scaled to their measured/predicted ratio, per phase. Combines with
    /// --remeasure (re-measure first, then level).
    #[arg(long)]
    pub relevel: bool,
    /// Whole models --relevel times.
    #[arg(long, default_value_t = 2, requires = "relevel",
          value_parser = clap::value_parser!(u64).range(1..=20))]
    pub anchors: u64,
    /// Where that check finds drift, re-measure the profile's entries of the drifted
    /// classes first (in the profile file, as `tailor run` does), then validate it.
    #[arg(long)]
    pub remeasure: bool,
    /// With a llama.cpp profile: how llama-bench runs (its threads, cache type and flash
    /// attention come from the profile) and --weights to validate instead of the space's.
    #[command(flatten)]
    pub llama: super::llama::LlamaArgs,
}
