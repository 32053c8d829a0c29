//! The workflow side of tailor that is neither measurement nor pricing: how it reaches a
//! device it profiles (`remote`: adb for a phone, qemu-user for the same flow without
//! one) and how it starts itself (its memory-measuring children, the `--cpus` re-exec);
//! how a validation's models are grouped in the memory available (`schedule`).
//! No clap, no burn, no printing: the binary wires these into its commands.

pub mod remote;
pub mod schedule;

pub use remote::{DeviceBinary, RemoteError, Transport};
