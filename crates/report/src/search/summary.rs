//! `summary.json`: what a search (and `tailor run` around it) did, as one serialisable
//! value: the search's own summary, the cost model, the references, the files written, the
//! profile and the check of `tailor run`.

use super::*;

/// A published reference as summary.json places it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceRow {
    pub name: String,
    pub path: String,
    pub id: Option<u64>,
    pub in_space: bool,
    pub feasible: bool,
    pub on_front: bool,
    pub front_rows_dominating: usize,
    pub metrics: Metrics,
}

/// The files a search run left besides its data (absent when the search found nothing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportFiles {
    /// The pick's export (`None`: no pick).
    pub export: Option<Exported>,
    pub report: PathBuf,
}

/// How `tailor run` got its profile: [`BurnProfile`] or [`LlamaProfile`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RunProfile {
    Burn(BurnProfile),
    LlamaCpp(LlamaProfile),
}

/// A burn profile that `tailor run` measured or completed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BurnProfile {
    pub path: String,
    pub shapes_needed: usize,
    pub measured_now: usize,
    pub profile_wall_s: f64,
    /// A profile reused as it was: its subset re-timed on this machine first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_check: Option<tailor_cost::Drift>,
    /// The run priced with predictions scaled to the level of whole models timed here
    /// before the search (`level` says by how much, on which models).
    #[serde(default)]
    pub releveled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<tailor_cost::Level>,
    /// Entries of the drifted classes re-measured in the profile file before the search
    /// (what `tailor run` does when the check finds drift).
    #[serde(default)]
    pub remeasured: usize,
    /// Stale entries of the profile file the run did not need: marked stale in the file
    /// (re-measured by the next run that needs them) instead of re-measured now.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub marked_stale: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A llama.cpp profile that `tailor run` measured or completed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlamaProfile {
    pub path: String,
    /// `llama.cpp`.
    pub engine: String,
    pub probes: usize,
    pub probe_visits_now: usize,
    pub profile_wall_s: f64,
    /// A profile reused as it was: its drift subset re-timed on this machine first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_check: Option<tailor_llamacpp::LlamaDrift>,
    /// Probe visits re-timed because the check found their phases drifted (counted in
    /// `probe_visits_now`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub remeasured: usize,
    /// The level the search priced at (`--anchors N`: whole models timed first, in the
    /// run's `level/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<tailor_cost::Level>,
}

/// What `tailor run`'s check of front rows against whole models found, in either engine
/// (summaries written before the engines shared `validate.json` read too: burn's without
/// `engine_self`, llama.cpp's without `round_ratios`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunCheck {
    pub models: usize,
    pub rounds: u64,
    #[serde(default)]
    pub round_ratios: RoundRatios,
    pub prefill: Option<Accuracy>,
    pub decode: Option<Accuracy>,
    pub memory: Option<Accuracy>,
    /// The engine's agreement with itself over the same models in the run.
    #[serde(default)]
    pub engine_self: Option<crate::validation::SelfAgreement>,
    pub dir: String,
}

/// One device of a set in summary.json after `tailor run`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceCheck {
    pub device: String,
    pub file: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<RunCheck>,
    /// The shared pick against the device's own, predicted and measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regret: Option<super::MeasuredRegret>,
}

impl RunCheck {
    /// The summary of a check's validation.
    pub fn of(v: &Validation) -> Self {
        let f = &v.file;
        Self {
            models: f.rows.len(),
            rounds: f.rounds,
            round_ratios: f.round_ratios.clone(),
            prefill: f.prefill,
            decode: f.decode,
            memory: f.memory,
            engine_self: f.engine_self,
            dir: v.out.display().to_string(),
        }
    }
}

/// What `tailor run` adds to summary.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSection {
    pub profile: RunProfile,
    pub check: Option<RunCheck>,
    pub run_wall_s: f64,
}

/// summary.json: the search's own summary, the cost model, the references, the files
/// written, and (from `tailor run`) the profile and the check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    #[serde(flatten)]
    pub search: SearchSummary,
    pub cost_model: CostSource,
    /// Over a set of devices: each device's cost model, in the set's order (`cost_model`
    /// is the first's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_cost_models: Vec<CostSource>,
    /// Over a set, after `tailor run`: each device's check of the picks, or why it was not
    /// timed here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_checks: Vec<DeviceCheck>,
    pub references: Vec<ReferenceRow>,
    #[serde(flatten)]
    pub files: Option<ReportFiles>,
    #[serde(flatten)]
    pub run: Option<RunSection>,
}

impl Summary {
    /// The summary of `run`, with the report's files and `tailor run`'s section if any.
    pub fn of(run: &SearchRun, written: Option<&Written>, section: Option<RunSection>) -> Self {
        let front = &run.outcome.front;
        Self {
            search: run.summary.clone(),
            cost_model: run.cost.clone(),
            device_cost_models: run.device_costs.clone(),
            device_checks: (run.device_checks.iter().enumerate())
                .map(|(d, c)| DeviceCheck {
                    device: c.device.clone(),
                    file: c.file.display().to_string(),
                    skipped: c.result.as_ref().err().cloned(),
                    regret: c
                        .result
                        .as_ref()
                        .ok()
                        .and_then(|v| super::measured_regret(run, d, v)),
                    check: c.result.as_ref().ok().map(RunCheck::of),
                })
                .collect(),
            references: run
                .references
                .iter()
                .map(|r| ReferenceRow {
                    name: r.name.clone(),
                    path: r.path.display().to_string(),
                    id: r.id,
                    in_space: r.id.is_some(),
                    feasible: r.candidate.feasible(),
                    on_front: front.iter().any(|f| Some(f.id) == r.id),
                    front_rows_dominating: r.dominated_by,
                    metrics: r.candidate.metrics.clone(),
                })
                .collect(),
            files: written.map(|w| ReportFiles {
                export: w.export.clone(),
                report: w.report.clone(),
            }),
            run: section,
        }
    }

    /// Writes it to `<out>/summary.json`.
    pub fn write(&self, out: &Path) -> Result<(), ReportError> {
        crate::write_json(&out.join("summary.json"), self)
    }

    pub fn load(path: &Path) -> Result<Self, ReportError> {
        crate::read_json(path)
    }
}
