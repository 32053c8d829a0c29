//! The search-space file (`search-spaces/*.toml`) and the mapping from candidate indices
//! to model specs.
//!
//! Every dimension under `[model]` is a single value (fixed), a list, or a range
//! `{ min, max, step }`. The space is the cartesian product of the dimensions; candidate
//! `id` is the mixed-radix number of its value indices, so a space is never materialised.
//!
//! - `schema`: the file's serde types as written, with defaults and the format version;
//! - this module: [`SearchSpace`], the checked and expanded space (parse, axes, metrics);
//! - `genome`: ids, genomes, the spec a genome stands for, and the genome of a spec.

mod genome;
mod schema;

pub use schema::*;

use crate::metric::{Metric, Objective, Over};
use std::path::{Path, PathBuf};
use tailor_cost::{EditWorkload, Workload};
use tailor_spec::files::{self, FileError};
use tailor_spec::{Activation, FfnKind, NormKind};

/// How heads are given.
#[derive(Debug, Clone, PartialEq)]
enum Heads {
    Count(Vec<u64>),
    Dim(Vec<u64>),
    Both(Vec<u64>, Vec<u64>),
}

#[derive(Debug, Clone, PartialEq)]
enum Kv {
    Count(Vec<u64>),
    Group(Vec<u64>),
}

#[derive(Debug, Clone, PartialEq)]
enum FfnSize {
    Size(Vec<u64>),
    Ratio(Vec<f64>, u64),
}

/// Number of axes of a genome: the 15 of the dense stack, then the stack's local mixer,
/// global placement and window (of length 1 in a space without `[model.stack]`).
pub const AXES: usize = 18;

/// Axes a space without `[model.stack]` uses: its genomes, ids and random draws are those
/// of a 15-axis genome.
pub const DENSE_AXES: usize = 15;

/// Names of the axes, in genome order.
pub const AXIS_NAMES: [&str; AXES] = [
    "vocab_size",
    "hidden_size",
    "num_layers",
    "num_heads",
    "head_dim",
    "num_kv_heads",
    "intermediate_size",
    "ffn",
    "activation",
    "norm",
    "norm_bias",
    "qkv_bias",
    "o_bias",
    "mlp_bias",
    "tie_embeddings",
    "local",
    "global",
    "window",
];

/// A candidate as value indices, one per axis.
pub type Genome = [u32; AXES];

/// A loaded, checked search space.
#[derive(Debug, Clone)]
pub struct SearchSpace {
    pub path: PathBuf,
    pub file: SpaceFile,
    vocab: Vec<u64>,
    hidden: Vec<u64>,
    layers: Vec<u64>,
    heads: Heads,
    kv: Kv,
    ffn_size: FfnSize,
    ffn: Vec<FfnKind>,
    activation: Vec<Activation>,
    norm: Vec<NormKind>,
    norm_bias: Vec<bool>,
    qkv_bias: Vec<bool>,
    o_bias: Vec<bool>,
    mlp_bias: Vec<bool>,
    tie: Vec<bool>,
    local: Vec<LocalMixer>,
    window: Vec<u64>,
    lens: [u64; AXES],
    total: u64,
    pub workload: Workload,
    /// The edit `[workload.edit]` asks to price, if any.
    pub edit: Option<EditWorkload>,
    /// (objective, minimise?) in declaration order: minimised ones first. Over a set of
    /// devices an objective says on which (`decode_ms:pixel8`, `worst:decode_ms`); over
    /// one device every objective is [`Over::One`].
    pub objectives: Vec<(Objective, bool)>,
    pub pick: (Objective, bool),
    /// The devices the space is searched over (`[devices]`, or `--target`): none or one
    /// is the one-device search of a single cost model.
    pub devices: Vec<SpaceDevice>,
    /// Limits on one device of the set (`[devices.NAME]` `max_decode_ms`, ...), in
    /// [`SearchSpace::constraint_names`] order after the `at_limits`.
    pub device_limits: Vec<DeviceLimit>,
    /// The file's text, for errors that name a line after loading (`with_targets`).
    src: String,
    /// `[constraints]`' limits at other prompts and contexts (`max_decode_ms_at`, ...), in
    /// [`SearchSpace::constraint_names`] order after the fixed ones.
    pub at_limits: Vec<AtLimit>,
}

/// A limit on a metric at another prompt or context: `max_decode_ms_at = { 16384 = 40.0 }`
/// is `max_decode_ms@16384`, at most 40 ms.
#[derive(Debug, Clone, PartialEq)]
pub struct AtLimit {
    /// As summaries and `why_not` name it: `max_decode_ms@16384`.
    pub name: String,
    /// The metric it bounds (`decode_ms@16384`).
    pub metric: Metric,
    /// The most the metric may be, in the metric's own unit (ms; bytes for memory).
    pub max: f64,
}

/// One device of the set a space is searched over.
#[derive(Debug, Clone, PartialEq)]
pub struct SpaceDevice {
    pub name: String,
    /// Its fleet share (the weight of its ratio in `mean:` objectives).
    pub weight: f64,
    /// Its profile or datasheet (absolute, or relative to the working folder); `None` until
    /// `--target` gives it.
    pub file: Option<PathBuf>,
    /// The weight type `[devices.NAME] weights` asks for.
    pub weights: Option<tailor_spec::DType>,
    /// How to reach it to time models there (`adb`, `adb:SERIAL`, `qemu:DIR`), as
    /// `tailor profile --remote` does; `None`: its engine runs here, or nowhere reachable.
    pub remote: Option<String>,
    /// The workload it is priced under: the space's, with the precision of the device's
    /// engine (set by whoever loads its cost model: [`SearchSpace::set_device_workload`]).
    pub workload: Workload,
}

/// A limit on one device of the set: `[devices.pixel8] max_decode_ms = 40` is
/// `max_decode_ms:pixel8`, at most 40 ms on pixel8.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceLimit {
    /// As summaries and `why_not` name it: `max_decode_ms:pixel8`.
    pub name: String,
    /// Index into [`SearchSpace::devices`].
    pub device: usize,
    pub metric: Metric,
    /// The most the metric may be (ms; bytes for memory).
    pub max: f64,
}

/// A device given on the command line: `--target NAME=PATH[,weight=W][,weights=DTYPE]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub name: String,
    pub file: PathBuf,
    pub weight: Option<f64>,
    pub weights: Option<tailor_spec::DType>,
    /// `,remote=adb:SERIAL`: where its models are timed (see [`SpaceDevice::remote`]).
    pub remote: Option<String>,
}

impl std::str::FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let Some((name, rest)) = s.split_once('=') else {
            return Err(format!(
                "`{s}` is not NAME=PATH (e.g. `pixel8=profiles/pixel8.toml`, or \
                 `pixel8=profiles/pixel8.toml,weight=3,weights=q4_0`)"
            ));
        };
        if !crate::metric::valid_device_name(name) {
            return Err(format!(
                "`{name}` is not a device name: use letters, digits, `_` and `-`"
            ));
        }
        let mut file = rest;
        let (mut weight, mut weights, mut remote) = (None, None, None);
        // Options after the path, from the right: `,weight=3`, `,weights=q4_0`.
        while let Some((head, opt)) = file.rsplit_once(',') {
            let Some((key, value)) = opt.split_once('=') else {
                break;
            };
            match key {
                "weight" => {
                    let w = value
                        .parse::<f64>()
                        .ok()
                        .filter(|w| w.is_finite() && *w > 0.0)
                        .ok_or_else(|| {
                            format!("`{s}`: weight `{value}` must be a positive number")
                        })?;
                    weight = Some(w);
                }
                "weights" => {
                    let d = tailor_spec::DType::from_name(value).ok_or_else(|| {
                        let names: Vec<&str> =
                            tailor_spec::DType::ALL.iter().map(|d| d.name()).collect();
                        format!(
                            "`{s}`: weights `{value}` is not one of {}",
                            names.join(", ")
                        )
                    })?;
                    weights = Some(d);
                }
                "remote" if !value.is_empty() => remote = Some(value.to_string()),
                _ => break,
            }
            file = head;
        }
        if file.is_empty() {
            return Err(format!("`{s}`: no file after `=`"));
        }
        Ok(Target {
            name: name.to_string(),
            file: PathBuf::from(file),
            weight,
            weights,
            remote,
        })
    }
}

/// `first`, then the values of `more` that are not it.
fn distinct(first: u64, more: &[u64]) -> Vec<u64> {
    std::iter::once(first)
        .chain(more.iter().copied().filter(|n| *n != first))
        .collect()
}

impl SearchSpace {
    /// The metrics at other prompts and contexts the space lists (`[workload]`
    /// `prefill_at`, then `decode_at` with each context's peak memory), priced for every
    /// candidate.
    pub fn at_metrics(&self) -> Vec<Metric> {
        let w = &self.file.workload;
        w.prefill_at
            .iter()
            .map(|&n| Metric::PrefillMsAt(n))
            .chain(
                w.decode_at
                    .iter()
                    .flat_map(|&n| [Metric::DecodeMsAt(n), Metric::PeakMemoryAt(n)]),
            )
            .collect()
    }

    /// Every prompt length the space prices a prefill at: the workload's, then
    /// `prefill_at`'s.
    pub fn prompts(&self) -> Vec<u64> {
        distinct(self.workload.prompt_tokens, &self.file.workload.prefill_at)
    }

    /// Every context the space prices a decode step at: the workload's, then `decode_at`'s.
    pub fn contexts(&self) -> Vec<u64> {
        distinct(self.workload.context, &self.file.workload.decode_at)
    }

    /// Every metric the space's objectives, pick and constraints read.
    pub fn metrics_used(&self) -> Vec<Metric> {
        let c = &self.file.constraints;
        let mut out: Vec<Metric> = self.objectives.iter().map(|(o, _)| o.metric).collect();
        out.push(self.pick.0.metric);
        for (set, m) in [
            (c.max_prefill_ms.is_some(), Metric::PrefillMs),
            (c.max_decode_ms.is_some(), Metric::DecodeMs),
            (c.max_memory_gib.is_some(), Metric::PeakMemory),
            (c.max_edit_zo_ms.is_some(), Metric::EditZoMs),
            (c.max_edit_bp_ms.is_some(), Metric::EditBpMs),
            (c.max_edit_zo_memory_gib.is_some(), Metric::EditZoMemory),
            (c.max_edit_bp_memory_gib.is_some(), Metric::EditBpMemory),
        ] {
            if set {
                out.push(m);
            }
        }
        out.extend(self.at_limits.iter().map(|l| l.metric));
        out.extend(self.device_limits.iter().map(|l| l.metric));
        out.dedup();
        out
    }

    /// Whether the space is searched over a set of two or more devices.
    pub fn is_set(&self) -> bool {
        self.devices.len() > 1
    }

    /// The workload device `d` is priced under.
    pub fn device_workload(&self, d: usize) -> Workload {
        self.devices.get(d).map_or(self.workload, |x| x.workload)
    }

    /// Sets the workload of device `d` (its engine's precision).
    pub fn set_device_workload(&mut self, d: usize, w: Workload) {
        if let Some(x) = self.devices.get_mut(d) {
            x.workload = w;
        }
    }

    /// The space as one device of its set sees it: that device's workload, its limits
    /// added to `[constraints]`, every objective read on it ([`Over::One`]). What a
    /// device's own search, validation and pick use.
    pub fn for_device(&self, d: usize) -> SearchSpace {
        let mut view = self.clone();
        let Some(dev) = self.devices.get(d) else {
            return view;
        };
        view.workload = dev.workload;
        let c = &mut view.file.constraints;
        for l in self.device_limits.iter().filter(|l| l.device == d) {
            let gib = (1u64 << 30) as f64;
            let slot = match l.metric {
                Metric::PrefillMs => (&mut c.max_prefill_ms, 1.0),
                Metric::DecodeMs => (&mut c.max_decode_ms, 1.0),
                _ => (&mut c.max_memory_gib, gib),
            };
            let max = l.max / slot.1;
            *slot.0 = Some(slot.0.map_or(max, |m: f64| m.min(max)));
        }
        view.devices = Vec::new();
        view.device_limits = Vec::new();
        view.file.devices = Devices::default();
        let one = |(o, min): &(Objective, bool)| (Objective::one(o.metric), *min);
        view.objectives = self.objectives.iter().map(one).collect();
        // Two objectives may now read the same metric (`decode_ms:a`, `decode_ms:b`).
        let mut seen = Vec::new();
        view.objectives.retain(|(o, _)| {
            let new = !seen.contains(&o.metric);
            seen.push(o.metric);
            new
        });
        view.pick = one(&self.pick);
        // The file says the same: a device's tailor can read it alone (`standalone_toml`).
        let o = &mut view.file.objectives;
        o.minimize = (view.objectives.iter())
            .filter(|(_, min)| *min)
            .map(|(o, _)| o.clone())
            .collect();
        o.maximize = (view.objectives.iter())
            .filter(|(_, min)| !*min)
            .map(|(o, _)| o.clone())
            .collect();
        view.file.pick = if view.pick.1 {
            Pick {
                minimize: Some(view.pick.0.clone()),
                maximize: None,
            }
        } else {
            Pick {
                minimize: None,
                maximize: Some(view.pick.0.clone()),
            }
        };
        view
    }

    /// The space as a file another machine's tailor reads alone: its workload as priced
    /// here (prompt, context, precision), no `[devices]` (a device's view,
    /// [`SearchSpace::for_device`]), no references (their paths are this machine's).
    pub fn standalone_toml(&self) -> Result<String, toml::ser::Error> {
        let mut file = self.file.clone();
        file.references.clear();
        file.devices = Devices::default();
        let (w, p) = (&mut file.workload, &self.workload.precision);
        w.prompt_tokens = self.workload.prompt_tokens;
        w.context = self.workload.context;
        w.weights = p.weights;
        w.kv_cache = Some(p.kv_cache);
        w.activations = Some(p.activations);
        toml::to_string(&file)
    }

    /// The device set given on the command line: where the space declares `[devices]`,
    /// each target names one of them and gives (or replaces) its file and weight; where it
    /// declares none, the targets are the set, in the order given.
    pub fn with_targets(mut self, targets: &[Target]) -> Result<Self, FileError> {
        if targets.is_empty() {
            return Ok(self);
        }
        let bad = |message: String| FileError::Invalid {
            path: self.path.clone(),
            line: None,
            key: "--target".into(),
            message,
        };
        for (i, t) in targets.iter().enumerate() {
            if targets[..i].iter().any(|o| o.name == t.name) {
                return Err(bad(format!("--target names `{}` twice", t.name)));
            }
        }
        if self.devices.is_empty() {
            self.devices = targets
                .iter()
                .map(|t| SpaceDevice {
                    name: t.name.clone(),
                    weight: t.weight.unwrap_or(1.0),
                    file: Some(t.file.clone()),
                    weights: t.weights,
                    remote: t.remote.clone(),
                    workload: self.workload,
                })
                .collect();
        } else {
            for t in targets {
                let Some(d) = self.devices.iter_mut().find(|d| d.name == t.name) else {
                    return Err(bad(format!(
                        "--target `{}` names no device of the space's [devices] ({}); give \
                         one of those names, or drop [devices] to search the targets given",
                        t.name,
                        self.devices
                            .iter()
                            .map(|d| d.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                };
                d.file = Some(t.file.clone());
                if let Some(w) = t.weight {
                    d.weight = w;
                }
                if t.weights.is_some() {
                    d.weights = t.weights;
                }
                if t.remote.is_some() {
                    d.remote = t.remote.clone();
                }
            }
        }
        let (objectives, pick) =
            resolve_objectives(&self.path, &self.src, &self.file, &names(&self.devices))?;
        self.objectives = objectives;
        self.pick = pick;
        Ok(self)
    }
}

/// An objective or the pick, and whether it is minimised.
type Ranked = (Objective, bool);

fn names(devices: &[SpaceDevice]) -> Vec<String> {
    devices.iter().map(|d| d.name.clone()).collect()
}

/// The space's objectives and pick read over its devices: a device name must be one of
/// them; over two or more devices a priced metric written plainly is its worst case
/// (`decode_ms` is `worst:decode_ms`); over one device or none every objective is the
/// metric itself.
fn resolve_objectives(
    path: &Path,
    src: &str,
    file: &SpaceFile,
    devices: &[String],
) -> Result<(Vec<Ranked>, Ranked), FileError> {
    let bad = |key: &str, msg: String| FileError::invalid_toml(path, src, key, msg);
    let resolve = |key: &str, o: &Objective| -> Result<Objective, FileError> {
        let metric = o.metric;
        let over = match &o.over {
            Over::Device(name) if !devices.contains(name) => {
                return Err(bad(
                    key,
                    if devices.is_empty() {
                        format!(
                            "`{o}` names the device `{name}`, but the space declares no \
                             [devices]; add `[devices.{name}]` with its `file`"
                        )
                    } else {
                        format!(
                            "`{o}` names the device `{name}`, which [devices] does not \
                             declare (it declares {})",
                            devices.join(", ")
                        )
                    },
                ));
            }
            Over::Device(_) | Over::Worst | Over::Mean if !metric.is_priced() => {
                return Err(bad(
                    key,
                    format!("`{o}`: {metric} is the same on every device; write `{metric}`"),
                ));
            }
            _ if devices.len() < 2 => Over::One,
            Over::One if metric.is_priced() => Over::Worst,
            other => other.clone(),
        };
        Ok(Objective { metric, over })
    };
    let o = &file.objectives;
    let mut objectives = Vec::new();
    for (key, list, minimise) in [
        ("objectives.minimize", &o.minimize, true),
        ("objectives.maximize", &o.maximize, false),
    ] {
        for m in list {
            let r = resolve(key, m)?;
            if !minimise && r.is_ratio() {
                let plain = if m.over == Over::One {
                    format!(" (a plain `{m}` over a set of devices reads the worst case)")
                } else {
                    String::new()
                };
                return Err(bad(
                    key,
                    format!(
                        "`{r}`{plain} is a ratio to each device's best, which only a minimised \
                         objective makes sense of; move it to objectives.minimize, or name \
                         one device (`{}:DEVICE`)",
                        m.metric
                    ),
                ));
            }
            objectives.push((r, minimise));
        }
    }
    if objectives.is_empty() {
        return Err(bad(
            "objectives",
            "declares no objective; add e.g. minimize = [\"decode_ms\"] and maximize = [\"non_embedding_params\"]".into(),
        ));
    }
    for (i, (m, _)) in objectives.iter().enumerate() {
        if objectives[..i].iter().any(|(o, _)| o == m) {
            return Err(bad("objectives", format!("lists `{m}` twice")));
        }
    }
    let pick = match (&file.pick.minimize, &file.pick.maximize) {
        (Some(m), None) => (resolve("pick.minimize", m)?, true),
        (None, Some(m)) => {
            let r = resolve("pick.maximize", m)?;
            if r.is_ratio() {
                return Err(bad(
                    "pick.maximize",
                    format!(
                        "`{r}` is a ratio to each device's best (a plain priced metric over a \
                         set reads the worst case): minimise it, or name one device (`{}:DEVICE`)",
                        m.metric
                    ),
                ));
            }
            (r, false)
        }
        (None, None) => objectives[0].clone(),
        (Some(_), Some(_)) => {
            return Err(bad("pick", "give minimize or maximize, not both".into()));
        }
    };
    Ok((objectives, pick))
}

/// `[devices]` checked: names, weights, limits; the files relative to the space.
fn devices_of(
    path: &Path,
    file: &SpaceFile,
    workload: Workload,
    bad: &dyn Fn(&str, String) -> FileError,
) -> Result<(Vec<SpaceDevice>, Vec<DeviceLimit>), FileError> {
    let base = path.parent().unwrap_or(Path::new("."));
    let mut devices = Vec::new();
    let mut limits = Vec::new();
    for (i, (name, e)) in file.devices.0.iter().enumerate() {
        let key = |k: &str| format!("devices.{name}.{k}");
        if !crate::metric::valid_device_name(name) {
            return Err(bad(
                &format!("devices.{name}"),
                "is not a device name: use letters, digits, `_` and `-`".into(),
            ));
        }
        if !(e.weight.is_finite() && e.weight > 0.0) {
            return Err(bad(
                &key("weight"),
                format!("{} must be a positive fleet share", e.weight),
            ));
        }
        let gib = (1u64 << 30) as f64;
        for (k, v, metric, unit) in [
            ("max_prefill_ms", e.max_prefill_ms, Metric::PrefillMs, 1.0),
            ("max_decode_ms", e.max_decode_ms, Metric::DecodeMs, 1.0),
            ("max_memory_gib", e.max_memory_gib, Metric::PeakMemory, gib),
        ] {
            let Some(v) = v else { continue };
            if !(v.is_finite() && v > 0.0) {
                return Err(bad(&key(k), format!("{v} must be a positive number")));
            }
            limits.push(DeviceLimit {
                name: format!("{k}:{name}"),
                device: i,
                metric,
                max: v * unit,
            });
        }
        devices.push(SpaceDevice {
            name: name.clone(),
            weight: e.weight,
            file: e.file.as_ref().map(|f| base.join(f)),
            weights: e.weights,
            remote: e.remote.clone(),
            workload,
        });
    }
    Ok((devices, limits))
}

/// The limits of `[constraints]`' `*_at` tables, checked against the points `[workload]`
/// lists (`bad` builds the error of a key).
fn at_limits(
    c: &Constraints,
    w: &WorkloadSpec,
    bad: &dyn Fn(&str, String) -> FileError,
) -> Result<Vec<AtLimit>, FileError> {
    let gib = (1u64 << 30) as f64;
    let mut out = Vec::new();
    for (name, table, listed, list_key, metric, unit) in [
        (
            "max_prefill_ms",
            &c.max_prefill_ms_at,
            &w.prefill_at,
            "prefill_at",
            Metric::PrefillMsAt as fn(u64) -> Metric,
            1.0,
        ),
        (
            "max_decode_ms",
            &c.max_decode_ms_at,
            &w.decode_at,
            "decode_at",
            Metric::DecodeMsAt,
            1.0,
        ),
        (
            "max_memory_gib",
            &c.max_memory_gib_at,
            &w.decode_at,
            "decode_at",
            Metric::PeakMemoryAt,
            gib,
        ),
    ] {
        let key = format!("constraints.{name}_at");
        let mut points = Vec::new();
        for (point, &max) in table {
            let n: u64 = point.parse().map_err(|_| {
                bad(
                    &key,
                    format!("`{point}` is not a token count; key each limit by a prompt length or context, e.g. `{name}_at = {{ 4096 = ... }}`"),
                )
            })?;
            if !listed.contains(&n) {
                return Err(bad(
                    &key,
                    format!(
                        "limits {name} at {n} tokens, which [workload] does not list; add it: \
                         `{list_key} = [{}]`",
                        listed
                            .iter()
                            .chain([&n])
                            .map(u64::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            if !(max.is_finite() && max > 0.0) {
                return Err(bad(
                    &key,
                    format!("{name} at {n}: {max} must be a positive number"),
                ));
            }
            points.push((n, max));
        }
        points.sort_by_key(|&(n, _)| n);
        out.extend(points.into_iter().map(|(n, max)| AtLimit {
            name: format!("{name}@{n}"),
            metric: metric(n),
            max: max * unit,
        }));
    }
    Ok(out)
}

/// Why a point of the space is not a buildable model.
pub type SkipReason = &'static str;

impl SearchSpace {
    pub fn load(path: &Path) -> Result<Self, FileError> {
        Self::parse(path, &files::read_to_string(path)?)
    }

    /// Parses and checks everything that can be checked without evaluating candidates.
    pub fn parse(path: &Path, src: &str) -> Result<Self, FileError> {
        let file: SpaceFile = files::parse_versioned(path, src)?;
        let bad = |key: &str, msg: String| FileError::invalid_toml(path, src, key, msg);
        let m = &file.model;
        let nums = |key: &str, axis: &NumAxis<u64>| {
            expand_u64(axis).map_err(|e| bad(&format!("model.{key}"), e))
        };
        let cats = |key: &str, n: usize, dup: bool| -> Result<(), FileError> {
            if n == 0 {
                Err(bad(
                    &format!("model.{key}"),
                    "is an empty list; give at least one value".into(),
                ))
            } else if dup {
                Err(bad(&format!("model.{key}"), "lists a value twice".into()))
            } else {
                Ok(())
            }
        };
        let vocab = nums("vocab_size", &m.vocab_size)?;
        let hidden = nums("hidden_size", &m.hidden_size)?;
        let layers = nums("num_layers", &m.num_layers)?;
        let heads = match (&m.num_heads, &m.head_dim) {
            (Some(h), None) => Heads::Count(nums("num_heads", h)?),
            (None, Some(d)) => Heads::Dim(nums("head_dim", d)?),
            (Some(h), Some(d)) => Heads::Both(nums("num_heads", h)?, nums("head_dim", d)?),
            (None, None) => {
                return Err(bad(
                    "model",
                    "gives neither num_heads nor head_dim; give one (or both to decouple head_dim)"
                        .into(),
                ));
            }
        };
        let kv = match (&m.num_kv_heads, &m.kv_group) {
            (Some(k), None) => Kv::Count(nums("num_kv_heads", k)?),
            (None, Some(g)) => Kv::Group(nums("kv_group", g)?),
            (None, None) => Kv::Group(vec![1]),
            (Some(_), Some(_)) => {
                return Err(bad(
                    "model.kv_group",
                    "give num_kv_heads or kv_group, not both".into(),
                ));
            }
        };
        let ffn_size = match (&m.intermediate_size, &m.ffn_ratio) {
            (Some(s), None) => {
                if m.ffn_multiple.is_some() {
                    return Err(bad(
                        "model.ffn_multiple",
                        "only applies with ffn_ratio; remove it or use ffn_ratio".into(),
                    ));
                }
                FfnSize::Size(nums("intermediate_size", s)?)
            }
            (None, Some(r)) => {
                let ratios = expand_f64(r).map_err(|e| bad("model.ffn_ratio", e))?;
                let multiple = m.ffn_multiple.unwrap_or(1);
                if multiple == 0 {
                    return Err(bad("model.ffn_multiple", "must be at least 1".into()));
                }
                FfnSize::Ratio(ratios, multiple)
            }
            (None, None) => {
                return Err(bad(
                    "model",
                    "gives neither intermediate_size nor ffn_ratio; give one".into(),
                ));
            }
            (Some(_), Some(_)) => {
                return Err(bad(
                    "model.ffn_ratio",
                    "give intermediate_size or ffn_ratio, not both".into(),
                ));
            }
        };
        let ffn = list(&m.ffn);
        let activation = list(&m.activation);
        let norm = list(&m.norm);
        let (norm_bias, qkv_bias, o_bias, mlp_bias, tie) = (
            list(&m.norm_bias),
            list(&m.qkv_bias),
            list(&m.o_bias),
            list(&m.mlp_bias),
            list(&m.tie_embeddings),
        );
        cats("ffn", ffn.len(), has_dup(&ffn))?;
        cats("activation", activation.len(), has_dup(&activation))?;
        cats("norm", norm.len(), has_dup(&norm))?;
        for (key, v) in [
            ("norm_bias", &norm_bias),
            ("qkv_bias", &qkv_bias),
            ("o_bias", &o_bias),
            ("mlp_bias", &mlp_bias),
            ("tie_embeddings", &tie),
        ] {
            cats(key, v.len(), has_dup(v))?;
        }
        let (local, window) = match &m.stack {
            None => (vec![LocalMixer::Attention], vec![0]),
            Some(st) => {
                let local = list(&st.local);
                cats("stack.local", local.len(), has_dup(&local))?;
                if st.global.is_empty() {
                    return Err(bad(
                        "model.stack.global",
                        "is empty; give where global attention goes, e.g. [3, 4] (every 3rd or 4th layer)".into(),
                    ));
                }
                if st.global.contains(&Placement::Every(0)) {
                    return Err(bad(
                        "model.stack.global",
                        "every 0th layer is no placement; give N >= 1".into(),
                    ));
                }
                if has_dup(&st.global) {
                    return Err(bad("model.stack.global", "lists a value twice".into()));
                }
                let window = match &st.window {
                    Some(w) => nums("stack.window", w)?,
                    None if local.contains(&LocalMixer::Sliding) => {
                        return Err(bad(
                            "model.stack.window",
                            "is missing; `local` lists \"sliding\", which needs window sizes, e.g. window = [512, 1024]".into(),
                        ));
                    }
                    None => vec![0],
                };
                if local.contains(&LocalMixer::LinearAttention) && st.linear.is_none() {
                    return Err(bad(
                        "model.stack.linear",
                        "is missing; `local` lists \"linear_attention\", which needs [model.stack.linear] with key_heads, value_heads, key_head_dim and value_head_dim".into(),
                    ));
                }
                if !(1..=tailor_spec::layers::MAX_KERNEL).contains(&st.conv_kernel) {
                    return Err(bad(
                        "model.stack.conv_kernel",
                        format!("must be between 1 and {}", tailor_spec::layers::MAX_KERNEL),
                    ));
                }
                (local, window)
            }
        };
        if let Some(e) = m.norm_eps
            && !(e.is_finite() && e > 0.0 && e < 1.0)
        {
            return Err(bad(
                "model.norm_eps",
                format!("{e} must be a positive number below 1"),
            ));
        }
        if let Some(t) = m.rope_theta
            && !(t.is_finite() && t > 0.0)
        {
            return Err(bad("model.rope_theta", format!("{t} must be positive")));
        }

        let w = &file.workload;
        if w.batch != 1 {
            return Err(bad(
                "workload.batch",
                format!(
                    "{} is not supported: tailor models batch 1 (on-device inference)",
                    w.batch
                ),
            ));
        }
        if !(1..=1 << 20).contains(&w.prompt_tokens) {
            return Err(bad(
                "workload.prompt_tokens",
                "must be between 1 and 1048576".into(),
            ));
        }
        if w.context > 1 << 20 {
            return Err(bad("workload.context", "must be at most 1048576".into()));
        }
        for (key, list) in [
            ("workload.prefill_at", &w.prefill_at),
            ("workload.decode_at", &w.decode_at),
        ] {
            for (i, &n) in list.iter().enumerate() {
                if !(1..=1 << 20).contains(&n) {
                    return Err(bad(key, format!("{n} must be between 1 and 1048576")));
                }
                if list[..i].contains(&n) {
                    return Err(bad(key, format!("lists {n} twice")));
                }
            }
        }
        if let Some((key, message)) = w.edit.as_ref().and_then(EditWorkload::problem) {
            return Err(bad(&format!("workload.edit.{key}"), message));
        }

        let c = &file.constraints;
        for (key, b) in [
            ("constraints.params", &c.params),
            ("constraints.non_embedding_params", &c.non_embedding_params),
            ("constraints.aspect_ratio", &c.aspect_ratio),
        ] {
            if let Some(b) = b {
                b.check().map_err(|e| bad(key, e.to_string()))?;
            }
        }
        let edit_constraints = [
            ("constraints.max_edit_zo_ms", c.max_edit_zo_ms),
            ("constraints.max_edit_bp_ms", c.max_edit_bp_ms),
            (
                "constraints.max_edit_zo_memory_gib",
                c.max_edit_zo_memory_gib,
            ),
            (
                "constraints.max_edit_bp_memory_gib",
                c.max_edit_bp_memory_gib,
            ),
        ];
        for (key, v) in [
            ("constraints.max_memory_gib", c.max_memory_gib),
            ("constraints.max_prefill_ms", c.max_prefill_ms),
            ("constraints.max_decode_ms", c.max_decode_ms),
        ]
        .into_iter()
        .chain(edit_constraints)
        {
            if let Some(v) = v
                && !(v.is_finite() && v > 0.0)
            {
                return Err(bad(key, format!("{v} must be a positive number")));
            }
        }

        let at_limits = at_limits(c, w, &bad)?;

        let (devices, device_limits) = devices_of(path, &file, file.workload.workload(), &bad)?;
        let (objectives, pick) = resolve_objectives(path, src, &file, &names(&devices))?;
        {
            let o = &file.objectives;
            for (key, ms) in [
                ("objectives.minimize", o.minimize.as_slice()),
                ("objectives.maximize", o.maximize.as_slice()),
                ("pick.minimize", file.pick.minimize.as_slice()),
                ("pick.maximize", file.pick.maximize.as_slice()),
            ] {
                for m in ms {
                    let m = m.metric;
                    let (list, name, n) = match m {
                        Metric::PrefillMsAt(n) => (&w.prefill_at, "prefill_at", n),
                        Metric::DecodeMsAt(n) | Metric::PeakMemoryAt(n) => {
                            (&w.decode_at, "decode_at", n)
                        }
                        _ => continue,
                    };
                    if !list.contains(&n) {
                        return Err(bad(
                            key,
                            format!(
                                "`{m}` is priced at {n} tokens, which [workload] does not \
                                 list; add it: `{name} = [{}]`",
                                list.iter()
                                    .chain([&n])
                                    .map(u64::to_string)
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        ));
                    }
                }
            }
        }
        if w.edit.is_none() {
            let edit_constraint = edit_constraints.into_iter().find(|(_, v)| v.is_some());
            let o = &file.objectives;
            let edit_metric = [
                ("objectives.minimize", o.minimize.as_slice()),
                ("objectives.maximize", o.maximize.as_slice()),
                ("pick.minimize", file.pick.minimize.as_slice()),
                ("pick.maximize", file.pick.maximize.as_slice()),
            ]
            .into_iter()
            .find_map(|(key, ms)| {
                ms.iter()
                    .find(|m| m.metric.is_edit())
                    .map(|m| (key, m.metric))
            });
            let (key, what) = match (edit_constraint, edit_metric) {
                (Some((key, _)), _) => (key, key.trim_start_matches("constraints.").to_string()),
                (None, Some((key, m))) => (key, m.name().to_string()),
                (None, None) => ("", String::new()),
            };
            if !key.is_empty() {
                return Err(bad(
                    key,
                    format!(
                        "`{what}` prices an on-device edit, but the space has no [workload.edit]; add one (e.g. `[workload.edit]` with `tokens = 32`, `layer = 0.25`, `steps = 20`)"
                    ),
                ));
            }
        }
        let uses_chinchilla = objectives
            .iter()
            .any(|(m, _)| m.metric == Metric::ChinchillaLoss)
            || pick.0.metric == Metric::ChinchillaLoss;
        match file.quality.tokens {
            Some(d) if !(d.is_finite() && d >= 1.0) => {
                return Err(bad(
                    "quality.tokens",
                    format!("{d} must be a token count of at least 1"),
                ));
            }
            None if uses_chinchilla => {
                return Err(bad(
                    "quality.tokens",
                    "chinchilla_loss needs the pre-training token budget D; add [quality] tokens = 1e11 (say)".into(),
                ));
            }
            _ => {}
        }

        let mut space = SearchSpace {
            path: path.to_path_buf(),
            workload: file.workload.workload(),
            edit: file.workload.edit,
            file: file.clone(),
            vocab,
            hidden,
            layers,
            heads,
            kv,
            ffn_size,
            ffn,
            activation,
            norm,
            norm_bias,
            qkv_bias,
            o_bias,
            mlp_bias,
            tie,
            local,
            window,
            lens: [1; AXES],
            total: 0,
            objectives,
            pick,
            at_limits,
            devices,
            device_limits,
            src: src.to_string(),
        };
        space.lens = space.axis_lens();
        space.total = space
            .lens
            .iter()
            .try_fold(1u64, |acc, &n| acc.checked_mul(n).filter(|t| *t <= 1 << 62))
            .ok_or_else(|| {
                bad(
                    "model",
                    "spans more than 4.6e18 candidates; narrow its dimensions".into(),
                )
            })?;
        Ok(space)
    }

    fn axis_lens(&self) -> [u64; AXES] {
        let n = |v: usize| v as u64;
        let (heads, head_dim) = match &self.heads {
            Heads::Count(h) => (n(h.len()), 1),
            Heads::Dim(d) => (1, n(d.len())),
            Heads::Both(h, d) => (n(h.len()), n(d.len())),
        };
        let kv = match &self.kv {
            Kv::Count(v) | Kv::Group(v) => n(v.len()),
        };
        let ffn_size = match &self.ffn_size {
            FfnSize::Size(v) => n(v.len()),
            FfnSize::Ratio(v, _) => n(v.len()),
        };
        [
            n(self.vocab.len()),
            n(self.hidden.len()),
            n(self.layers.len()),
            heads,
            head_dim,
            kv,
            ffn_size,
            n(self.ffn.len()),
            n(self.activation.len()),
            n(self.norm.len()),
            n(self.norm_bias.len()),
            n(self.qkv_bias.len()),
            n(self.o_bias.len()),
            n(self.mlp_bias.len()),
            n(self.tie.len()),
            n(self.local.len()),
            n(self
                .file
                .model
                .stack
                .as_ref()
                .map_or(1, |st| st.global.len())),
            n(self.window.len()),
        ]
    }

    /// Axes this space's genomes use: [`DENSE_AXES`] without `[model.stack]`, else
    /// [`AXES`].
    pub fn axes(&self) -> usize {
        if self.file.model.stack.is_some() {
            AXES
        } else {
            DENSE_AXES
        }
    }

    /// Whether the space's candidates have a stack of layer kinds (`[model.stack]`).
    pub fn has_stack(&self) -> bool {
        self.file.model.stack.is_some()
    }

    /// Points in the space (valid or not).
    pub fn size(&self) -> u64 {
        self.total
    }

    /// Values per axis, in genome order.
    pub fn axis_lengths(&self) -> &[u64; AXES] {
        &self.lens
    }

    pub fn name(&self) -> &str {
        &self.file.name
    }

    /// The reference specs the space names, loaded (paths relative to the space file).
    pub fn references(&self) -> Result<Vec<(PathBuf, tailor_spec::LoadedSpec)>, FileError> {
        let base = self.path.parent().unwrap_or(Path::new("."));
        self.file
            .references
            .iter()
            .map(|r| {
                let p = base.join(r);
                // A space of mixed stacks names mixed references (priced by the roofline).
                if self.file.model.stack.is_some() {
                    tailor_spec::load_spec(&p).map(|s| (p, s))
                } else {
                    tailor_spec::load_dense_spec(&p).map(|s| (p, s))
                }
            })
            .collect()
    }
}

/// `ratio * hidden`, rounded to the nearest integer, then up to a multiple.
pub fn ffn_from_ratio(ratio: f64, hidden: u64, multiple: u64) -> u64 {
    let raw = (ratio * hidden as f64).round() as u64;
    raw.div_ceil(multiple) * multiple
}

fn list<T: Clone>(a: &Axis<T>) -> Vec<T> {
    match a {
        Axis::One(v) => vec![v.clone()],
        Axis::List(v) => v.clone(),
    }
}

fn position_of<T: PartialEq>(v: &[T], x: T) -> Option<u32> {
    v.iter().position(|y| *y == x).map(|i| i as u32)
}

fn has_dup<T: PartialEq>(v: &[T]) -> bool {
    v.iter().enumerate().any(|(i, x)| v[..i].contains(x))
}

/// Most values one axis may have.
const MAX_AXIS_VALUES: u64 = 1 << 16;

fn expand_u64(a: &NumAxis<u64>) -> Result<Vec<u64>, String> {
    let v = match a {
        NumAxis::One(x) => vec![*x],
        NumAxis::List(v) => v.clone(),
        NumAxis::Range(r) => {
            if r.step == 0 {
                return Err("range step must be at least 1".into());
            }
            if r.min > r.max {
                return Err(format!("range min {} is above max {}", r.min, r.max));
            }
            if (r.max - r.min) / r.step >= MAX_AXIS_VALUES {
                return Err(format!(
                    "range has more than {MAX_AXIS_VALUES} values; raise step"
                ));
            }
            (r.min..=r.max).step_by(r.step as usize).collect()
        }
    };
    if v.is_empty() {
        return Err("is an empty list; give at least one value".into());
    }
    if has_dup(&v) {
        return Err("lists a value twice".into());
    }
    if v.contains(&0) {
        return Err("values must be at least 1".into());
    }
    Ok(v)
}

fn expand_f64(a: &NumAxis<f64>) -> Result<Vec<f64>, String> {
    let v = match a {
        NumAxis::One(x) => vec![*x],
        NumAxis::List(v) => v.clone(),
        NumAxis::Range(r) => {
            if r.step.is_nan() || r.step <= 0.0 {
                return Err("range step must be positive".into());
            }
            if r.min > r.max {
                return Err(format!("range min {} is above max {}", r.min, r.max));
            }
            let n = ((r.max - r.min) / r.step + 1e-9).floor() as u64 + 1;
            if n > MAX_AXIS_VALUES {
                return Err(format!(
                    "range has more than {MAX_AXIS_VALUES} values; raise step"
                ));
            }
            (0..n).map(|i| r.min + i as f64 * r.step).collect()
        }
    };
    if v.is_empty() {
        return Err("is an empty list; give at least one value".into());
    }
    if has_dup(&v) {
        return Err("lists a value twice".into());
    }
    if v.iter().any(|&x| !(x.is_finite() && x > 0.0)) {
        return Err("values must be positive numbers".into());
    }
    Ok(v)
}
