//! End-to-end tests of the `tailor` binary on real files. One test binary, one module per
//! command (keeps link time down).

mod common;
mod edit;
mod export;
mod fuzz;
mod llama;
mod profile;
mod remote;
mod search;
mod spec;
mod validate;
