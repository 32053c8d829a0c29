//! `tailor profile`: time the operator shapes a space (or a few specs) needs on one
//! backend, into a resumable profile file.

use super::llama::{Engine, LlamaArgs};
use super::measure::memory_probe;
use crate::args::TimingArgs;
use crate::args::parse_pause;
use crate::fmt::{Table, bytes};
use crate::remote;
use anyhow::{Context, Result, bail};
use clap::Args;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tailor_cost::{Entry, OpShape, Profile};
use tailor_profiler::device_state::{allowed_cpus, format_cpu_list, parse_cpu_list};
use tailor_profiler::{Backend, ProfilePlan, new_profile, run_profile};
use tailor_report::profile::{BurnProfileReport, LlamaProfileReport};
use tailor_search::{SearchSpace, profile_shapes, static_candidates};
use tailor_spec::files::utc_now_iso;
use tailor_spec::load_spec;
use tracing::{info, warn};

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
fn space_phases(space: &SearchSpace, args: &ProfileArgs) -> (Vec<u64>, Vec<u64>) {
    let mut prompts = vec![space.workload.prompt_tokens];
    prompts.extend(&args.prompt);
    let mut contexts = vec![space.workload.context];
    contexts.extend(&args.context);
    (prompts, contexts)
}

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
                or(&args.prompt, 64),
                or(&args.context, 256),
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
    let o = super::llama::profile(&super::llama::ProfileRequest {
        name,
        specs,
        prompts,
        contexts,
        weights,
        llama: &args.llama,
        rounds: args.rounds as u32,
        depths: super::llama::depths(args.probe_layers.0, weights, args.probe_mib)?,
        out,
        force: args.force,
        limit: args.limit,
    })?;
    super::llama::print_profile(&o, args.json)
}

/// `--cpus` pins burn's threads; llama.cpp's placement is llama-bench's own.
fn refuse_cpus_for_llama(args: &ProfileArgs) -> Result<()> {
    if args.cpus.is_some() {
        bail!(
            "--cpus is for the burn engine; with --engine llama.cpp choose the thread count \
             with --threads (llama-bench places its threads itself, and a profile records \
             the count)"
        );
    }
    Ok(())
}

/// The llama.cpp end of `profile --remote`: pull the device's profile (checked as one),
/// print what the device reported.
fn pull_llama(
    args: &ProfileArgs,
    t: &dyn remote::Transport,
    file: &str,
    out: &Path,
    stdout: &str,
) -> Result<()> {
    let reported: LlamaProfileReport = serde_json::from_str(stdout).with_context(|| {
        format!("reading what `tailor profile` printed on the device: {stdout}")
    })?;
    let (probes, runs_now, missing) =
        (reported.probes, reported.probe_visits_now, reported.missing);
    let phases = reported
        .llama_bench_runs_now
        .checked_div(runs_now)
        .unwrap_or(0);
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = out.with_extension("toml.pulling");
    t.pull(file, &tmp)?;
    let profile = tailor_llamacpp::LlamaProfile::load(&tmp)
        .with_context(|| format!("the profile pulled from the device ({})", tmp.display()))?;
    std::fs::rename(&tmp, out)
        .with_context(|| format!("moving the profile to {}", out.display()))?;
    let o = super::llama::ProfileOutcome {
        profile,
        out: out.to_path_buf(),
        probes,
        phases,
        runs_now,
        missing,
        wall_s: reported.wall_s,
        remote: Some(t.describe()),
    };
    super::llama::print_profile(&o, args.json)
}

/// The `tailor profile` the device runs for `args`: the same settings, on the space and
/// binaries pushed into its working folder (`space.toml`, `./llama-bench`), into `file`,
/// with a JSON summary. Tested against the clap definition below.
fn device_args(args: &ProfileArgs, file: &str, llama: bool) -> Vec<String> {
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

/// What a profiling run did.
pub struct ProfileOutcome {
    pub out: PathBuf,
    pub profile: Profile,
    pub shapes_needed: usize,
    pub covering: usize,
    pub measured_now: usize,
    pub rounds: usize,
    pub missing: usize,
    pub wall_s: f64,
    pub median_spread: f64,
    pub capped: usize,
}

pub fn run(args: &ProfileArgs) -> Result<()> {
    if let Some(remote) = &args.remote {
        return profile_remote(args, remote);
    }
    if args.engine == Engine::LlamaCpp {
        return profile_llama(args);
    }
    let o = execute(args)?;
    let (profile, out, wall) = (&o.profile, &o.out, o.wall_s);
    let roofline = profile.roofline.as_ref();
    if args.json {
        let v = BurnProfileReport {
            profile: out.display().to_string(),
            fingerprint: profile.fingerprint.clone(),
            shapes_needed: o.shapes_needed,
            entries_covering: o.covering,
            measured_now: o.measured_now,
            rounds: o.rounds,
            missing: o.missing,
            wall_s: wall,
            median_spread: o.median_spread,
            capped: o.capped,
            throttled_entries: profile.entries.iter().filter(|e| e.throttled()).count(),
            loaded_entries: profile.entries.iter().filter(|e| e.loaded()).count(),
            roofline: roofline.cloned(),
            memory: profile.memory.clone(),
            remote: None,
            device_file: None,
        };
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let f = &profile.fingerprint;
    println!(
        "profile {} ({} on {}, {} threads, {})",
        out.display(),
        f.backend,
        f.device,
        f.threads,
        f.cpu_model
    );
    let mut t = Table::new(&["", ""]);
    t.row(vec!["shapes needed".into(), o.shapes_needed.to_string()]);
    t.row(vec![
        "measured now".into(),
        format!("{} sessions", o.measured_now),
    ]);
    t.row(vec!["still missing".into(), o.missing.to_string()]);
    t.row(vec!["wall time".into(), format!("{wall:.1} s")]);
    t.row(vec![
        "median spread (p90-p10)/median".into(),
        format!("{:.1}%", 100.0 * o.median_spread),
    ]);
    t.row(vec![
        "entries stopped by the time cap".into(),
        o.capped.to_string(),
    ]);
    let throttled = profile.entries.iter().filter(|e| e.throttled()).count();
    if throttled > 0 {
        t.row(vec![
            "entries measured while throttled".into(),
            throttled.to_string(),
        ]);
    }
    let loaded = profile.entries.iter().filter(|e| e.loaded()).count();
    if loaded > 0 {
        t.row(vec![
            "entries measured under load".into(),
            format!("{loaded} (marked `loaded`: re-measure them on a quiet machine)"),
        ]);
    }
    if let Some(r) = roofline {
        t.row(vec![
            "peak matmul".into(),
            format!("{:.1} GFLOP/s", r.matmul_gflops),
        ]);
        t.row(vec![
            "read bandwidth".into(),
            format!("{:.1} GB/s", r.bandwidth_gbs),
        ]);
    }
    if let Some(m) = &profile.memory {
        t.row(vec![
            "runtime memory overhead".into(),
            format!("{} ({})", bytes(m.runtime_overhead_bytes as f64), m.source),
        ]);
    }
    print!("{}", t.render(2));
    Ok(())
}

/// Profiles (or resumes) into the output file; the caller prints.
pub fn execute(args: &ProfileArgs) -> Result<ProfileOutcome> {
    let timing = args.timing.options()?;
    if let Some(list) = &args.cpus {
        pin(list)?;
    }
    let for_space = |p: &[u64], d: u64| if p.is_empty() { vec![d] } else { p.to_vec() };
    let (name, shapes) = match &args.space {
        Some(path) => {
            let space = SearchSpace::load(path)?;
            let (prompts, contexts) = space_phases(&space, args);
            (
                space.name().to_string(),
                profile_shapes(static_candidates(&space), &prompts, &contexts),
            )
        }
        None => {
            let specs = args
                .spec
                .iter()
                .map(|p| load_spec(p).map(|l| l.spec))
                .collect::<Result<Vec<_>, _>>()?;
            let names: Vec<String> = args.spec.iter().map(|p| p.display().to_string()).collect();
            (
                names.join(", "),
                profile_shapes(
                    specs.into_iter(),
                    &for_space(&args.prompt, 64),
                    &for_space(&args.context, 256),
                ),
            )
        }
    };
    if shapes.is_empty() {
        bail!("no candidate of the space is inside its static constraints: nothing to profile");
    }

    let device = args.backend.open()?;
    let fingerprint = args.backend.fingerprint(&device);
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("profiles/host-{}.toml", args.backend)));
    // One writer per profile; a second run waits here, then resumes what the first saved.
    let _lock = crate::lock::file(&out)?;
    let profile = if out.exists() && !args.force {
        let existing = Profile::load(&out)?;
        existing.check_fingerprint(&fingerprint).map_err(|e| {
            anyhow::anyhow!(
                "{}: {e}. Profile into another file with --out, or start this one afresh with --force",
                out.display()
            )
        })?;
        info!(path = %out.display(), entries = existing.entries.len(), "resuming");
        existing
    } else {
        new_profile(
            &format!("{} on {}", fingerprint.cpu_model, args.backend),
            fingerprint,
            &utc_now_iso(),
        )
    };

    let mut plan = ProfilePlan::new(name, shapes);
    plan.timing = timing;
    plan.probe_timing.warmup = timing.warmup;
    plan.probe_timing.max_time = timing.max_time;
    plan.limit = args.limit;
    plan.rounds = args.rounds as usize;
    plan.cooldown = args.cooldown;
    let started = Instant::now();
    let bar = crate::progress::ProfileBar::new("profile");
    let sessions = |p: &Profile| -> usize { p.entries.iter().map(Entry::sessions).sum() };
    let before = sessions(&profile);
    let mut profile = run_profile(&device, profile, &plan, &utc_now_iso, &bar, &mut |p| {
        p.save(&out)
    })
    .with_context(|| format!("profiling into {}", out.display()))?;
    bar.finish();
    if profile.memory.is_none() {
        add_memory_probe(&mut profile, args.backend, &out)?;
    }
    let wall = started.elapsed().as_secs_f64();

    let needed: BTreeSet<&OpShape> = plan.shapes.iter().collect();
    let covered: Vec<&Entry> = profile
        .entries
        .iter()
        .filter(|e| needed.contains(&e.shape) && e.sessions() >= plan.rounds)
        .collect();
    let missing = plan.shapes.len() - covered.len();
    let mut spreads: Vec<f64> = covered.iter().map(|e| e.spread()).collect();
    spreads.sort_by(f64::total_cmp);
    let median_spread = spreads.get(spreads.len() / 2).copied().unwrap_or(f64::NAN);
    let capped = covered.iter().filter(|e| e.capped).count();
    if missing > 0 {
        warn!(
            missing,
            "the profile does not cover the space yet; rerun the same command to continue"
        );
    }
    Ok(ProfileOutcome {
        out,
        shapes_needed: plan.shapes.len(),
        covering: covered.len(),
        measured_now: sessions(&profile) - before,
        rounds: plan.rounds,
        missing,
        wall_s: wall,
        median_spread,
        capped,
        profile,
    })
}

/// Measures the runtime's own memory into `profile` and saves it. A backend or system that
/// cannot report a peak leaves the profile without one (its memory predictions are then
/// the models' own bytes), with a warning.
fn add_memory_probe(profile: &mut Profile, backend: Backend, out: &Path) -> Result<()> {
    let dir = out
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match memory_probe(backend, profile.fingerprint.dtype, dir) {
        Ok(probe) => {
            info!(
                overhead_bytes = probe.runtime_overhead_bytes,
                samples = ?probe.samples_bytes,
                source = %probe.source,
                "measured the runtime's memory overhead"
            );
            profile.memory = Some(probe);
            profile.provenance.updated = utc_now_iso();
            profile
                .save(out)
                .with_context(|| format!("saving {}", out.display()))?;
        }
        Err(e) => warn!(
            "the runtime's memory overhead was not measured ({e:#}); memory predictions from \
             this profile count the models' own bytes only"
        ),
    }
    Ok(())
}

/// Makes this process run on `list` only: re-executes it under `taskset` (children and
/// every burn worker thread inherit the mask), unless it already does. Exits with the
/// pinned run's status.
fn pin(list: &str) -> Result<()> {
    let want = parse_cpu_list(list).map_err(|e| anyhow::anyhow!("--cpus: {e}"))?;
    let have = allowed_cpus();
    if have == want {
        return Ok(());
    }
    if std::env::var_os("TAILOR_PINNED").is_some() {
        bail!(
            "--cpus {list}: pinning did not take (the process may run on {}); are those \
             CPUs online?",
            format_cpu_list(&have)
        );
    }
    let me = remote::self_command()?;
    let status = std::process::Command::new("taskset")
        .arg("-c")
        .arg(format_cpu_list(&want))
        .arg(me.get_program())
        .args(me.get_args())
        .args(std::env::args_os().skip(1))
        .env("TAILOR_PINNED", list)
        .status()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                anyhow::anyhow!(
                    "--cpus needs `taskset` on PATH (util-linux on Linux, toybox on Android)"
                )
            } else {
                anyhow::anyhow!("running taskset: {e}")
            }
        })?;
    std::process::exit(status.code().unwrap_or(1));
}

/// `tailor profile --remote`: push (tailor, the space, and for llama.cpp the device's
/// llama-bench), run `tailor profile` there (resuming what the device or the local file
/// already holds; for llama.cpp the probe GGUFs are written on the device, nothing big
/// crosses the cable), pull the profile.
fn profile_remote(args: &ProfileArgs, target: &str) -> Result<()> {
    let Some(space_path) = &args.space else {
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
    let space = SearchSpace::load(space_path)?;
    let t = remote::parse(target)?;
    remote::check_binary(&args.remote_binary, remote::DeviceBinary::Tailor)?;
    let llama_bench = if llama {
        refuse_cpus_for_llama(args)?;
        let Some(lb) = &args.llama.llama_bench else {
            bail!(
                "--remote with --engine llama.cpp pushes the device's llama-bench: name it \
                 with --llama-bench PATH (an aarch64 build; docs/llama-cpp.md, \"On a phone\")"
            );
        };
        remote::check_binary(lb, remote::DeviceBinary::LlamaBench)?;
        Some(lb)
    } else {
        None
    };
    t.check()?;
    let device = t.device_name()?;
    let kind = if llama {
        let weights = args
            .llama
            .weights
            .unwrap_or(space.workload.precision.weights);
        format!("llamacpp-{weights}")
    } else {
        args.backend.to_string()
    };
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!("profiles/{}-{kind}.toml", remote::slug(&device)))
    });
    let file = out
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "profile.toml".into());
    let _lock = crate::lock::file(&out)?;
    info!(device = %device, via = %t.describe(), out = %out.display(), "profiling a remote device");
    t.push(&args.remote_binary, "tailor")?;
    if let Some(lb) = llama_bench {
        t.push(lb, "llama-bench")?;
    }
    t.push(space_path, "space.toml")?;
    if !args.force && !t.exists(&file)? && out.exists() {
        // The device lost its copy (a reset, another folder): resume from ours.
        info!(path = %out.display(), "resuming from the local profile");
        t.push(&out, &file)?;
    }
    let remote_args = device_args(args, &file, llama);
    let (ok, stdout) = t.run_tailor(&remote_args)?;
    if !ok {
        if !t.connected() {
            bail!(
                "the device went away during profiling ({}). Every finished {} is \
                 saved on it in {file}: reconnect and rerun the same command to resume",
                t.describe(),
                if llama { "probe visit" } else { "session" }
            );
        }
        bail!("`tailor profile` failed on the device (its error is above)");
    }
    if llama {
        return pull_llama(args, t.as_ref(), &file, &out, &stdout);
    }
    // Pull beside the target, check it reads as a profile, then move it in place.
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = out.with_extension("toml.pulling");
    t.pull(&file, &tmp)?;
    let pulled = Profile::load(&tmp)
        .with_context(|| format!("the profile pulled from the device ({})", tmp.display()))?;
    std::fs::rename(&tmp, &out)
        .with_context(|| format!("moving the profile to {}", out.display()))?;
    let mut summary: BurnProfileReport = serde_json::from_str(&stdout).with_context(|| {
        format!("reading what `tailor profile` printed on the device: {stdout}")
    })?;
    summary.profile = out.display().to_string();
    summary.remote = Some(t.describe());
    summary.device_file = Some(file.clone());
    summary.throttled_entries = pulled.entries.iter().filter(|e| e.throttled()).count();
    summary.loaded_entries = pulled.entries.iter().filter(|e| e.loaded()).count();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    let f = &pulled.fingerprint;
    println!(
        "profile {} from {} ({} on {}, {} threads{}{})",
        out.display(),
        t.describe(),
        f.backend,
        f.cpu_model,
        f.threads,
        if f.soc.is_empty() {
            String::new()
        } else {
            format!(", SoC {}", f.soc)
        },
        if f.cpus.is_empty() {
            String::new()
        } else {
            format!(", CPUs {}", f.cpus)
        },
    );
    let mut table = Table::new(&["", ""]);
    for (n, label) in [
        (summary.shapes_needed, "shapes needed"),
        (summary.measured_now, "sessions measured now"),
        (summary.missing, "still missing"),
        (
            summary.throttled_entries,
            "entries measured while throttled",
        ),
        (summary.loaded_entries, "entries measured under load"),
    ] {
        table.row(vec![label.into(), n.to_string()]);
    }
    table.row(vec![
        "wall time on the device".into(),
        format!("{:.1} s", summary.wall_s),
    ]);
    print!("{}", table.render(2));
    Ok(())
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
