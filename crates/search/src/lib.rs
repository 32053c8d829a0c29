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
    CSV_ROW_BYTES, Candidate, NoProgress, Progress, SearchOptions, SearchOutcome, Strategy,
    anchor_sample, constrained_dominates, evaluate, pick_order, price, profile_shapes, search,
    spread_sample, static_candidates,
};
pub use metrics::{AtValue, BadBound, Bound, METRIC_NAMES, Metric, Metrics, chinchilla_loss};
pub use space::{SPACE_FORMAT_VERSION, SearchSpace};

#[cfg(test)]
mod tests;
