//! `tailor profile`'s arguments, the request they make of the workflow, and the
//! `tailor profile` a device runs for them (tested against this definition).

use super::llama::{Engine, LlamaArgs};
use super::{TimingArgs, parse_pause};
use anyhow::{Result, bail};
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;
use tailor_profiler::Backend;
use tailor_search::SearchSpace;
use tailor_workflow::profile::{BurnProfileRequest, ProfileSource};

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["space", "spec"])))]
pub struct ProfileArgs {
    /// Profile every shape the candidates of this space (inside its static constraints)
    /// run, at the space's prompt length and context.
    #[arg(long)]
    pub space: Option<PathBuf>,
    /// Profile the shapes of these specs (config.json or spec.toml).
    #[arg(long, num_args = 1..)]
    pub spec: Vec<PathBuf>,
    /// burn backend: flex (CPU, default), ndarray (CPU), wgpu (GPU through Vulkan/Metal).
    #[arg(long, default_value = "flex")]
    pub backend: Backend,
    /// Profile file [default: profiles/host-<backend>.toml]. An existing file made on the
    /// same setup is resumed; one made on another setup is refused (see --force).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Extra prompt lengths to profile (besides the space's); with --spec, default 64.
    #[arg(long)]
    pub prompt: Vec<u64>,
    /// Extra decode contexts to profile (besides the space's); with --spec, default 256.
    #[arg(long)]
    pub context: Vec<u64>,
    /// With --spec: also every shape of one knowledge edit (a space brings its own
    /// `[workload.edit]`), gradient entries included.
    #[command(flatten)]
    pub edit: crate::args::EditArgs,
    #[command(flatten)]
    pub timing: TimingArgs,
    /// Sessions per entry: all shapes are timed once per round, each session capped at
    /// --max-time / rounds, and an entry keeps the median of its sessions (robust to
    /// load that comes and goes over seconds).
    #[arg(long, default_value_t = crate::args::PROFILE_ROUNDS as u64,
          value_parser = clap::value_parser!(u64).range(1..=20))]
    pub rounds: u64,
    /// Run at most N timing sessions in this run; rerun to continue.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Start a fresh profile even if the file exists (it is replaced atomically).
    #[arg(long)]
    pub force: bool,
    /// Idle time before each timing session (e.g. 20s): lets a phone cool down between
    /// entries, so thermal throttling does not build up over the run.
    #[arg(long, default_value = "0s", value_parser = parse_pause)]
    pub cooldown: Duration,
    /// Run pinned to these CPUs (e.g. `4-7`, the big cores; through `taskset`). The
    /// profile records the list and serves only runs pinned the same way.
    #[arg(long)]
    pub cpus: Option<String>,
    /// Profile another device: `adb` or `adb:SERIAL` (a phone; the static arm64 build is
    /// pushed and run there), or `qemu[:DIR]` (that build under qemu-aarch64-static in a
    /// local folder: the same flow without a phone). The profile is pulled into --out
    /// [default: profiles/<device>-<backend>.toml]; rerunning resumes.
    #[arg(long)]
    pub remote: Option<String>,
    /// The binary to push with --remote.
    #[arg(long, default_value = crate::remote::ARM64_BINARY)]
    pub remote_binary: PathBuf,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    pub json: bool,
    /// What to profile: burn's operators in process (--backend), or llama.cpp through the
    /// user's llama-bench (whole GGUF models; per-layer costs by differencing).
    #[arg(long, value_enum, default_value = "burn")]
    pub engine: Engine,
    #[command(flatten)]
    pub llama: LlamaArgs,
    /// llama.cpp: layers of the probe models, `LO,HI` or `auto`: each width's reference
    /// layer is timed at both depths (its slope is the layer, its intercept the rest of the
    /// model); every other layer shape at HI. `auto`: the width's fewest and most layers in
    /// the space, HI capped by --probe-mib.
    #[arg(long, default_value = "auto", value_parser = parse_depths)]
    pub probe_layers: ProbeLayers,
    /// llama.cpp with `--probe-layers auto`: the most weight MiB of one probe model.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    pub probe_mib: u64,
}

/// `--probe-layers`: `auto` or `LO,HI`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeLayers(pub Option<(u64, u64)>);

fn parse_depths(s: &str) -> Result<ProbeLayers, String> {
    if s == "auto" {
        return Ok(ProbeLayers(None));
    }
    let (a, b) = s
        .split_once(',')
        .ok_or_else(|| format!("`{s}`: give two depths, e.g. 1,6"))?;
    let p = |x: &str| {
        x.trim()
            .parse::<u64>()
            .map_err(|_| format!("`{x}` is not a number of layers"))
    };
    let (a, b) = (p(a)?, p(b)?);
    if a == 0 || b <= a || b > 256 {
        return Err(format!("`{s}`: need 1 <= LO < HI <= 256"));
    }
    Ok(ProbeLayers(Some((a, b))))
}

/// The space's prompt and context, then the extra ones of `--prompt` and `--context`.
pub fn space_phases(space: &SearchSpace, args: &ProfileArgs) -> (Vec<u64>, Vec<u64>) {
    let mut prompts = space.prompts();
    prompts.extend(&args.prompt);
    // An edit's passes are prefills of its prompt.
    prompts.extend(space.edit.map(|e| e.tokens));
    let mut contexts = space.contexts();
    contexts.extend(&args.context);
    (prompts, contexts)
}

/// `--cpus` pins burn's threads; llama.cpp's placement is llama-bench's own.
pub fn refuse_cpus_for_llama(args: &ProfileArgs) -> Result<()> {
    if args.cpus.is_some() {
        bail!(
            "--cpus is for the burn engine; with --engine llama.cpp choose the thread count \
             with --threads (llama-bench places its threads itself, and a profile records \
             the count)"
        );
    }
    Ok(())
}

/// The `tailor profile` the device runs for `args`: the same settings, on the space and
/// binaries pushed into its working folder (`space.toml`, `./llama-bench`), into `file`,
/// with a JSON summary. Tested against the clap definition below.
pub fn device_args(args: &ProfileArgs, file: &str, llama: bool) -> Vec<String> {
    let mut remote_args: Vec<String> = vec![
        "profile".into(),
        "--space".into(),
        "space.toml".into(),
        "--out".into(),
        file.to_string(),
        "--rounds".into(),
        args.rounds.to_string(),
        "--json".into(),
    ];
    if llama {
        remote_args.extend(["--engine".into(), "llama.cpp".into()]);
        remote_args.extend(args.llama.to_device_args());
        remote_args.extend([
            "--probe-layers".into(),
            match args.probe_layers.0 {
                Some((lo, hi)) => format!("{lo},{hi}"),
                None => "auto".into(),
            },
            "--probe-mib".into(),
            args.probe_mib.to_string(),
        ]);
    } else {
        remote_args.extend([
            "--backend".into(),
            args.backend.name().into(),
            "--cooldown".into(),
            format!("{}s", args.cooldown.as_secs_f64()),
        ]);
        remote_args.extend(args.timing.to_args());
        if let Some(c) = &args.cpus {
            remote_args.extend(["--cpus".into(), c.clone()]);
        }
    }
    for p in &args.prompt {
        remote_args.extend(["--prompt".into(), p.to_string()]);
    }
    for c in &args.context {
        remote_args.extend(["--context".into(), c.to_string()]);
    }
    if let Some(n) = args.limit {
        remote_args.extend(["--limit".into(), n.to_string()]);
    }
    if args.force {
        remote_args.push("--force".into());
    }
    remote_args
}

/// The request `tailor profile` (burn, on this machine) makes of the workflow.
pub fn request(args: &ProfileArgs) -> Result<BurnProfileRequest> {
    if args.edit.edit && args.space.is_some() {
        bail!(
            "--edit is for --spec: a space profiles the edit its `[workload.edit]` table \
             declares (add one to the space file)"
        );
    }
    Ok(BurnProfileRequest {
        source: match &args.space {
            Some(space) => ProfileSource::Space(space.clone()),
            None => ProfileSource::Specs(args.spec.clone()),
        },
        backend: args.backend,
        out: args
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("profiles/host-{}.toml", args.backend))),
        prompts: args.prompt.clone(),
        contexts: args.context.clone(),
        timing: args.timing.options()?,
        rounds: args.rounds as usize,
        limit: args.limit,
        force: args.force,
        cooldown: args.cooldown,
        edit: args.edit.workload()?,
        cycle_auto: args.timing.cycle_mib.is_none(),
    })
}

#[cfg(test)]
mod tests {
    use super::{ProfileArgs, device_args};
    use crate::{Cli, Command};
    use clap::Parser;
    use std::path::PathBuf;

    fn parse(argv: &[&str]) -> ProfileArgs {
        let mut full = vec!["tailor"];
        full.extend(argv);
        match Cli::try_parse_from(full).expect("parses").command {
            Command::Profile(p) => p,
            other => panic!("parsed as {other:?}"),
        }
    }

    /// What the host asked, as the device's `tailor profile` parses it: every setting
    /// that decides the measurement survives the trip.
    #[test]
    fn the_device_invocation_parses_back_to_what_the_host_asked() {
        let host = parse(&[
            "profile",
            "--space",
            "search-spaces/phonelm-0.5b.toml",
            "--remote",
            "adb:R5CT",
            "--out",
            "profiles/phone.toml",
            "--rounds",
            "5",
            "--backend",
            "ndarray",
            "--cooldown",
            "20s",
            "--cpus",
            "4-7",
            "--prompt",
            "32",
            "--prompt",
            "128",
            "--context",
            "512",
            "--limit",
            "40",
            "--force",
            "--max-time",
            "750ms",
            "--warmup",
            "90ms",
            "--min-time",
            "60ms",
            "--target-spread",
            "0.08",
            "--cycle-mib",
            "48",
        ]);
        let device = device_args(&host, "phone.toml", false);
        let device = parse(&device.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(device.space, Some(PathBuf::from("space.toml")));
        assert_eq!(device.out, Some(PathBuf::from("phone.toml")));
        assert!(device.remote.is_none() && device.json);
        assert_eq!(
            (device.rounds, device.backend, device.cooldown),
            (host.rounds, host.backend, host.cooldown)
        );
        assert_eq!((&device.cpus, device.limit), (&host.cpus, host.limit));
        assert_eq!(
            (&device.prompt, &device.context),
            (&host.prompt, &host.context)
        );
        assert_eq!(device.force, host.force);
        assert_eq!(device.timing, host.timing);

        let host = parse(&[
            "profile",
            "--space",
            "s.toml",
            "--remote",
            "qemu",
            "--engine",
            "llama.cpp",
            "--weights",
            "q8_0",
            "--threads",
            "4",
            "--repetitions",
            "7",
            "--flash-attn",
            "on",
            "--cache-type",
            "q8_0",
            "--decode-tokens",
            "32",
            "--probe-layers",
            "2,9",
            "--probe-mib",
            "64",
            "--llama-bench",
            "/host/build/llama-bench",
        ]);
        let device = device_args(&host, "p.toml", true);
        let device = parse(&device.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(device.engine, host.engine);
        let (d, h) = (&device.llama, &host.llama);
        assert_eq!(d.llama_bench, Some(PathBuf::from("./llama-bench")));
        assert_eq!(
            (d.weights, d.threads, d.repetitions),
            (h.weights, h.threads, h.repetitions)
        );
        assert_eq!(
            (&d.flash_attn, &d.cache_type),
            (&h.flash_attn, &h.cache_type)
        );
        assert_eq!(d.decode_tokens, h.decode_tokens);
        assert_eq!(
            (device.probe_layers, device.probe_mib),
            (host.probe_layers, host.probe_mib)
        );
    }
}
