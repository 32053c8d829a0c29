//! Profiling another device (`tailor profile --remote`): push the static arm64 `tailor`,
//! the space, and for llama.cpp the device's llama-bench; run `tailor profile` there
//! (resuming what the device or the local file already holds; for llama.cpp the probe
//! GGUFs are written on the device, nothing big crosses the cable); pull the profile back,
//! checked as one, into its place.

use crate::error::{Result, WorkflowError};
use crate::llama::LlamaProfileOutcome;
use crate::remote::{self, DeviceBinary, Transport};
use std::path::{Path, PathBuf};
use tailor_cost::Profile;
use tailor_llamacpp::LlamaProfile;
use tailor_profiler::Backend;
use tailor_report::profile::{BurnProfileReport, LlamaProfileReport};
use tailor_search::SearchSpace;
use tailor_spec::DType;
use tracing::info;

/// One `tailor profile --remote`.
pub struct RemoteProfileRequest<'a> {
    /// `adb`, `adb:SERIAL` or `qemu[:DIR]`.
    pub target: &'a str,
    pub space: &'a Path,
    /// The burn backend profiled on the device (burn engine).
    pub backend: Backend,
    /// `Some`: the llama.cpp engine, with the device's llama-bench (an aarch64 build) and
    /// the weights asked (else the space's).
    pub llama: Option<(&'a Path, Option<DType>)>,
    /// The local profile [default: profiles/<device>-<kind>.toml].
    pub out: Option<PathBuf>,
    /// The `tailor` to push.
    pub tailor_binary: &'a Path,
    pub force: bool,
    /// The device's `tailor profile` arguments, given the profile's file name there.
    pub device_args: &'a dyn Fn(&str) -> Vec<String>,
}

impl std::fmt::Debug for RemoteProfileRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteProfileRequest")
            .field("target", &self.target)
            .field("space", &self.space)
            .field("backend", &self.backend)
            .field("llama", &self.llama)
            .field("out", &self.out)
            .finish_non_exhaustive()
    }
}

/// A burn profile pulled from a device.
#[derive(Debug)]
pub struct BurnRemote {
    /// What the device's `tailor profile --json` reported, with the local path, the
    /// transport and the pulled profile's throttled and loaded entries.
    pub report: BurnProfileReport,
    pub profile: Profile,
    pub out: PathBuf,
    pub via: String,
}

/// What a remote profiling run did.
#[derive(Debug)]
pub enum RemoteOutcome {
    Burn(Box<BurnRemote>),
    Llama(Box<LlamaProfileOutcome>),
}

/// Runs `req` on its device; the profile lands in its local file.
pub fn profile_remote(req: &RemoteProfileRequest) -> Result<RemoteOutcome> {
    let space = SearchSpace::load(req.space)?;
    let t = remote::parse(req.target)?;
    remote::check_binary(req.tailor_binary, DeviceBinary::Tailor)?;
    if let Some((lb, _)) = req.llama {
        remote::check_binary(lb, DeviceBinary::LlamaBench)?;
    }
    t.check()?;
    let device = t.device_name()?;
    let kind = match req.llama {
        Some((_, weights)) => {
            format!(
                "llamacpp-{}",
                weights.unwrap_or(space.workload.precision.weights)
            )
        }
        None => req.backend.to_string(),
    };
    let out = req.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!("profiles/{}-{kind}.toml", remote::slug(&device)))
    });
    let file = out
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "profile.toml".into());
    let _lock = crate::lock::file(&out)?;
    info!(device = %device, via = %t.describe(), out = %out.display(), "profiling a remote device");
    t.push(req.tailor_binary, "tailor")?;
    if let Some((lb, _)) = req.llama {
        t.push(lb, "llama-bench")?;
    }
    t.push(req.space, "space.toml")?;
    if !req.force && !t.exists(&file)? && out.exists() {
        // The device lost its copy (a reset, another folder): resume from ours.
        info!(path = %out.display(), "resuming from the local profile");
        t.push(&out, &file)?;
    }
    let (ok, stdout) = t.run_tailor(&(req.device_args)(&file))?;
    if !ok {
        if !t.connected() {
            return Err(WorkflowError::DeviceGone {
                via: t.describe(),
                file,
                unit: if req.llama.is_some() {
                    "probe visit"
                } else {
                    "session"
                },
            });
        }
        return Err(WorkflowError::DeviceFailed);
    }
    let printed = |error| WorkflowError::ChildOutput {
        what: format!("what `tailor profile` printed on the device: {stdout}"),
        error,
    };
    if req.llama.is_some() {
        let reported: LlamaProfileReport = serde_json::from_str(&stdout).map_err(printed)?;
        let profile = pull(t.as_ref(), &file, &out, LlamaProfile::load)?;
        let runs_now = reported.probe_visits_now;
        return Ok(RemoteOutcome::Llama(Box::new(LlamaProfileOutcome {
            profile,
            out,
            probes: reported.probes,
            phases: reported
                .llama_bench_runs_now
                .checked_div(runs_now)
                .unwrap_or(0),
            runs_now,
            missing: reported.missing,
            wall_s: reported.wall_s,
            remote: Some(t.describe()),
        })));
    }
    let mut report: BurnProfileReport = serde_json::from_str(&stdout).map_err(printed)?;
    let profile = pull(t.as_ref(), &file, &out, Profile::load)?;
    report.profile = out.display().to_string();
    report.remote = Some(t.describe());
    report.device_file = Some(file);
    report.throttled_entries = profile.entries.iter().filter(|e| e.throttled()).count();
    report.loaded_entries = profile.entries.iter().filter(|e| e.loaded()).count();
    Ok(RemoteOutcome::Burn(Box::new(BurnRemote {
        report,
        profile,
        out,
        via: t.describe(),
    })))
}

/// Pulls `file` beside `out`, checks that it reads as a profile, then moves it in place.
fn pull<P>(
    t: &dyn Transport,
    file: &str,
    out: &Path,
    load: fn(&Path) -> Result<P, tailor_spec::files::FileError>,
) -> Result<P> {
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|error| WorkflowError::CreateDir {
            path: dir.to_path_buf(),
            error,
        })?;
    }
    let tmp = out.with_extension("toml.pulling");
    t.pull(file, &tmp)?;
    let profile = load(&tmp).map_err(|error| WorkflowError::Pulled {
        path: tmp.clone(),
        error,
    })?;
    std::fs::rename(&tmp, out).map_err(|error| WorkflowError::Move {
        to: out.to_path_buf(),
        error,
    })?;
    Ok(profile)
}

/// A validation on a device reached through a transport (`tailor validate --remote`, or a
/// device of a set with `remote`): the static arm64 `tailor`, the space as that device
/// sees it (standalone, [`SearchSpace::standalone_toml`]), its profile, the models to time
/// (spec files) and for llama.cpp the device's llama-bench are pushed; its `tailor
/// validate --json` runs there; what it prints is written here as validate.json,
/// validate.csv and calibration.svg.
#[derive(Debug)]
pub struct RemoteValidateRequest<'a> {
    /// `adb`, `adb:SERIAL` or `qemu:DIR`.
    pub target: &'a str,
    /// The device's profile (made there: `tailor profile --remote`).
    pub profile: &'a Path,
    /// The space with the prompt and context to validate at in its workload.
    pub space: &'a SearchSpace,
    pub options: &'a crate::engine::ValidateOptions<'a>,
}

/// Runs `req` on its device; its validation lands in `req.options.out`.
pub fn validate_remote(
    req: &RemoteValidateRequest,
) -> Result<tailor_report::validation::Validation> {
    let o = req.options;
    let setup = &o.engine.remote;
    let llama = crate::llama::is_llama(req.profile);
    let t = remote::parse(req.target)?;
    remote::check_binary(&setup.tailor_binary, DeviceBinary::Tailor)?;
    let bench = match (&setup.llama_bench, llama) {
        (Some(lb), true) => {
            remote::check_binary(lb, DeviceBinary::LlamaBench)?;
            Some(lb)
        }
        (None, true) => return Err(WorkflowError::RemoteLlamaBench),
        (_, false) => None,
    };
    t.check()?;
    let _lock = crate::lock::folder(o.out)?;
    let write = |path: &Path, text: &str| {
        tailor_spec::files::write_atomic(path, text.as_bytes()).map_err(WorkflowError::from)
    };
    std::fs::create_dir_all(o.out).map_err(|error| WorkflowError::CreateDir {
        path: o.out.to_path_buf(),
        error,
    })?;
    info!(via = %t.describe(), profile = %req.profile.display(), out = %o.out.display(), "validating on a remote device");
    t.push(&setup.tailor_binary, "tailor")?;
    if let Some(lb) = bench {
        t.push(lb, "llama-bench")?;
    }
    let space_file = o.out.join("space.toml");
    let text = req
        .space
        .standalone_toml()
        .map_err(|error| WorkflowError::Serialize {
            what: format!("the space for the device ({})", space_file.display()),
            error: error.to_string(),
        })?;
    write(&space_file, &text)?;
    t.push(&space_file, "space.toml")?;
    t.push(req.profile, "profile.toml")?;
    let mut args: Vec<String> = [
        "validate",
        "--profile",
        "profile.toml",
        "--space",
        "space.toml",
        "--out",
        "validate",
        "--json",
        "--seed",
    ]
    .map(String::from)
    .into();
    args.push(o.seed.to_string());
    args.extend(["--rounds".into(), o.rounds.to_string()]);
    args.extend(["--samples".into(), o.samples.max(2).to_string()]);
    if !o.recheck {
        args.push("--no-recheck".into());
    }
    if o.remeasure {
        args.push("--remeasure".into());
    }
    if let Some(n) = o.anchors {
        args.extend(["--relevel".into(), "--anchors".into(), n.to_string()]);
    }
    // The models to time, as spec files: given ones as they are, a run's picks written out.
    let mut ids = Vec::new();
    for (i, p) in o.specs.iter().enumerate() {
        let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("toml");
        let name = format!("spec-{i}.{ext}");
        t.push(p, &name)?;
        args.extend(["--spec".into(), name]);
        ids.push(i as u64);
    }
    for (i, (id, spec)) in o.models.iter().enumerate() {
        let local = o.out.join(format!("model-{id}.toml"));
        let mut file = tailor_spec::SpecFile::new(spec.clone());
        file.name = Some(format!("{}-{id}", req.space.name()));
        file.save(&local)?;
        let name = format!("model-{i}.toml");
        t.push(&local, &name)?;
        args.extend(["--spec".into(), name]);
        ids.push(*id);
    }
    args.extend(if llama {
        setup.llama_args.clone()
    } else {
        setup.burn_args.clone()
    });
    let (ok, stdout) = t.run_tailor(&args)?;
    if !ok {
        if !t.connected() {
            return Err(WorkflowError::DeviceGone {
                via: t.describe(),
                file: "validate/".into(),
                unit: "model",
            });
        }
        return Err(WorkflowError::DeviceFailed);
    }
    let mut file: tailor_report::validation::ValidateFile =
        serde_json::from_str(&stdout).map_err(|error| WorkflowError::ChildOutput {
            what: format!("what `tailor validate` printed on the device: {stdout}"),
            error,
        })?;
    // The device numbered the spec files; the rows get back the ids of the space.
    for row in &mut file.rows {
        if let Some(id) = ids.get(row.id as usize) {
            row.id = *id;
        }
    }
    file.profile = req.profile.display().to_string();
    let caption = format!("{} on {} (via {})", file.engine, file.space, t.describe());
    Ok(tailor_report::validation::write(o.out, file, &caption)?)
}
