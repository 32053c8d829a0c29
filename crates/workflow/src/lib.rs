//! tailor's pipelines and processes, between the libraries that measure and price
//! (profiler, llamacpp, cost, search, report) and the binary that parses and prints:
//! profiling a space into a resumable profile file (`profile`; `llama` for llama.cpp),
//! timing whole models
//! (`measure`), exporting a spec to pre-train (`export`), searching a space into candidates.csv and front.json (`search`), checking that a
//! profile is this machine, now, and re-measuring what drifted (`freshness`; the last
//! check of each profile remembered per machine state: `remembered`),
//! checking a cost model against whole models timed in child processes (`check`, `child`,
//! `schedule`; `llama`), `tailor validate` in either engine, one pipeline (`validate`), profiling another device (`device`) reached through `remote` (adb
//! for a phone, qemu-user for the same flow without one), how tailor starts itself, and one
//! writer per file (`lock`). No clap, no printing: the binary builds the requests from its
//! arguments and prints the outcomes. `run` chains them: `tailor run` with burn or
//! llama.cpp; `run_set` over a set of devices.

pub mod check;
pub mod child;
pub mod device;
pub mod edit;
pub mod engine;
pub mod error;
pub mod export;
pub mod freshness;
pub mod llama;
pub mod lock;
pub mod measure;
pub mod profile;
pub mod remembered;
pub mod remote;
pub mod run;
pub mod run_set;
pub mod run_text;
pub mod schedule;
pub mod search;
pub mod validate;

pub use error::WorkflowError;
pub use remote::{DeviceBinary, RemoteError, Transport};
