//! The llama.cpp engine: tailor's specs as random-weight GGUF files of llama.cpp's `llama`
//! architecture ([`model`], [`gguf`]), timed whole by the user's own `llama-bench`
//! ([`bench`]); layer profiles recovered by differencing models of a layer at two depths
//! ([`profile`]); a cost model over them ([`cost`]); the runs that profile and validate
//! ([`run`]); and the check that a profile still describes the machine ([`drift`]).
//!
//! burn's engine (`tailor-profiler`) times operators in process at f32; this one times the
//! engine most on-device users ship, at the weight type they ship (Q4_0, Q8_0, F16, F32).

pub mod arch;
mod base;
pub mod bench;
pub mod cost;
pub mod drift;
pub mod gguf;
pub mod model;
pub mod profile;
pub mod run;

pub use bench::{BenchError, LlamaBench, Settings, Test};
pub use cost::{CostError, LlamaCost, Prediction};
pub use drift::LlamaDrift;
pub use model::{Unsupported, WeightType, Written, write_model};
pub use profile::{
    Depths, FfnFit, LayerKey, LayerTable, LlamaFingerprint, LlamaProfile, Method, Phase, Probe,
    ProbeEntry, ShallowWidth, is_llama_profile, plan, shallow_widths,
};
pub use run::{ModelTiming, ProfileJob, RunError, measure_models, run_profile};
