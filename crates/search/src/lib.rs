//! Architecture search: a TOML [`SearchSpace`] of decoder specs with constraints and
//! objectives, explored exhaustively, by seeded random sampling or by NSGA-II, priced by
//! any [`tailor_cost::CostModel`]; the result is the Pareto front and one pick.

pub mod engine;
mod metric;
pub mod metrics;
pub mod output;
pub mod pareto;
pub mod space;

pub use engine::{
    CSV_ROW_BYTES, Candidate, Costs, DeviceOutcome, NoProgress, Progress, SearchOptions,
    SearchOutcome, Strategy, anchor_sample, constrained_dominates, evaluate, pick_order, price,
    price_set, profile_shapes, search, search_set, spread_sample, static_candidates,
};
pub use metrics::{
    Across, AtValue, BadBound, Bound, DeviceMetrics, METRIC_NAMES, Metric, Metrics, Objective,
    Over, chinchilla_loss,
};
pub use space::{SPACE_FORMAT_VERSION, SearchSpace, SpaceDevice, Target};

#[cfg(test)]
mod set_tests;
#[cfg(test)]
mod tests;
