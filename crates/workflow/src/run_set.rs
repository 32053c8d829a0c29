//! `tailor run` over a set of devices (`[devices]`, `--target`): the devices' profiles exist
//! already; search the set, time the shared pick and each device's own pick whole on every
//! device whose engine runs here (`validate::validate_set`), export the shared pick and
//! report each device's regret, predicted and measured.

use crate::error::{Result, WorkflowError};
use crate::run::{RunCommon, RunProgress};
use crate::search::{SearchRequest, options};
use std::time::Instant;
use tailor_report::search::{self as report, SearchRun, Summary, Written};
use tailor_search::SearchSpace;
use tailor_spec::ModelSpec;

/// One `tailor run` over a set of devices: their profiles (or datasheets) exist already
/// (`tailor profile` on each device); the run searches the set, times the shared pick and
/// every device's own pick whole on each device whose engine runs here, exports the shared
/// pick and reports each device's regret, predicted and measured.
#[derive(Debug, Clone)]
pub struct SetRunRequest {
    pub run: RunCommon,
    /// Devices given on the command line (or their files, for a space with [devices]).
    pub targets: Vec<tailor_search::Target>,
    /// How each engine runs here (burn's timing, llama-bench and its settings).
    pub engine: crate::validate::EngineSetup,
}

/// What a run over a set did; its files are written (summary.json last).
#[derive(Debug)]
pub struct SetRunOutcome {
    pub search: SearchRun,
    pub written: Written,
    pub summary: Summary,
    pub wall_s: f64,
}

impl SetRunOutcome {
    /// What `tailor run` prints over a set: the search's tables, each device's own pick
    /// and regret, the picks timed whole where the devices are here, the files.
    pub fn render(&self) -> String {
        format!(
            "{}({:.0} s in all)\n",
            self.search.render(&self.written),
            self.wall_s
        )
    }
}

/// Runs [`SetRunRequest`]: search the set, time the picks on each device here, export,
/// report.
pub fn run_set(req: &SetRunRequest, progress: &dyn RunProgress) -> Result<SetRunOutcome> {
    let started = Instant::now();
    let space = SearchSpace::load(&req.run.space)?.with_targets(&req.targets)?;
    if space.devices.is_empty() {
        return Err(WorkflowError::NoCostModel);
    }
    let (space, costs) =
        crate::search::device_costs(space, &req.run.space, crate::search::Recheck::Remembered)?;
    let options = options(&space, &SearchRequest::auto(req.run.seed))?;
    let out = crate::search::out_dir(req.run.out.as_deref(), &space);
    let _lock = crate::lock::folder(&out)?;
    let mut search =
        crate::search::run_search_set(space, &costs, &options, &out, progress.search().as_ref())?;
    if req.run.check > 0 {
        search.device_checks = crate::validate::validate_set(
            crate::validate::SetValidateRequest {
                space_path: &req.run.space,
                space: search.space.clone(),
                options: crate::validate::ValidateOptions {
                    specs: &[],
                    models: picks(&search),
                    samples: 0,
                    seed: req.run.seed,
                    rounds: req.run.check_rounds,
                    out: &out.join("check"),
                    recheck: true,
                    remeasure: false,
                    anchors: None,
                    engine: req.engine.clone(),
                },
            },
            progress,
        )?;
    }
    let written = report::write_search(&search, req.run.flavor, None)?;
    let summary = Summary::of(&search, Some(&written), None);
    summary.write(&out)?;
    Ok(SetRunOutcome {
        search,
        written,
        summary,
        wall_s: started.elapsed().as_secs_f64(),
    })
}

/// The shared pick, then each device's own pick not already in (by id).
pub fn picks(run: &SearchRun) -> Vec<(u64, ModelSpec)> {
    let o = &run.outcome;
    let mut out: Vec<(u64, ModelSpec)> = Vec::new();
    let own = o.devices.iter().filter_map(|d| d.pick.map(|i| &d.front[i]));
    for c in o.pick.map(|i| &o.front[i]).into_iter().chain(own) {
        if !out.iter().any(|(id, _)| *id == c.id) {
            out.push((c.id, c.spec.clone()));
        }
    }
    out
}
