//! The roofline cost model and the device description it reads (`profiles/*.toml`).
//!
//! ```toml
//! format_version = 1
//! name = "snapdragon-8-gen3-cpu"
//! kind = "datasheet"                  # "datasheet" or "measured"
//! description = "4 big cores"
//! sources = ["Arm Cortex-X4 Software Optimization Guide", "..."]
//!
//! [compute]            # peak matmul throughput, GFLOP/s, per storage type
//! f32 = 256.0
//! q4_0 = 512.0
//!
//! [memory]
//! bandwidth_gbs = 76.8 # sustained read bandwidth, GB/s (1e9 bytes/s)
//! capacity_gib = 16.0  # optional: memory the model may use
//!
//! [efficiency]         # optional: fraction of peak reached, per operator kind (0, 1]
//! linear = 0.7
//! attention = 0.5
//! elementwise = 0.8
//!
//! [overhead]           # optional: fixed cost per operator call, microseconds
//! per_op_us = 2.0
//! ```

use crate::{Breakdown, CostModel, Estimate, Workload, peak_memory_bytes};
use serde::{Deserialize, Serialize};
use std::path::Path;
use tailor_spec::files::{self, FileError};
use tailor_spec::{DType, ModelSpec, OpKind, Phase, Precision};

/// The `format_version` this build reads and writes.
pub const DEVICE_FORMAT_VERSION: u32 = 1;

/// Where a device description's numbers come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    /// Vendor figures, written by hand before the device is at hand.
    Datasheet,
    /// Measured on the device by `tailor profile`.
    Measured,
}

/// Peak compute per storage type, GFLOP/s.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Compute {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub f32: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub f16: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bf16: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub int8: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q4_0: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q8_0: Option<f64>,
}

impl Compute {
    pub fn gflops(&self, dtype: DType) -> Option<f64> {
        match dtype {
            DType::F32 => self.f32,
            DType::F16 => self.f16,
            DType::Bf16 => self.bf16,
            DType::Int8 => self.int8,
            DType::Q4_0 => self.q4_0,
            DType::Q8_0 => self.q8_0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Memory {
    /// Sustained read bandwidth, GB/s (1e9 bytes per second).
    pub bandwidth_gbs: f64,
    /// Memory a model may use, GiB (optional; a space may constrain against it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_gib: Option<f64>,
}

/// Fraction of the roofline each kind of operator reaches.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Efficiency {
    #[serde(default = "one")]
    pub linear: f64,
    #[serde(default = "one")]
    pub attention: f64,
    #[serde(default = "one")]
    pub elementwise: f64,
}

fn one() -> f64 {
    1.0
}

impl Default for Efficiency {
    fn default() -> Self {
        Self {
            linear: 1.0,
            attention: 1.0,
            elementwise: 1.0,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overhead {
    /// Fixed cost of every operator call (dispatch, kernel launch), microseconds.
    #[serde(default)]
    pub per_op_us: f64,
}

/// A device as the roofline model sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceSpec {
    pub format_version: u32,
    pub name: String,
    pub kind: DeviceKind,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Where each number comes from (required for datasheet devices).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    pub compute: Compute,
    pub memory: Memory,
    #[serde(default)]
    pub efficiency: Efficiency,
    #[serde(default)]
    pub overhead: Overhead,
}

impl DeviceSpec {
    /// Parses and checks; `path` only names the file in errors.
    pub fn parse(path: &Path, src: &str) -> Result<Self, FileError> {
        let dev: DeviceSpec = files::parse_versioned(path, src)?;
        let bad = |key: &str, msg: String| FileError::invalid_toml(path, src, key, msg);
        let positive = |key: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(bad(key, format!("{v} must be a positive number")))
            }
        };
        positive("memory.bandwidth_gbs", dev.memory.bandwidth_gbs)?;
        if let Some(c) = dev.memory.capacity_gib {
            positive("memory.capacity_gib", c)?;
        }
        let mut any = false;
        for &d in DType::ALL {
            if let Some(g) = dev.compute.gflops(d) {
                positive(&format!("compute.{}", d.name()), g)?;
                any = true;
            }
        }
        if !any {
            return Err(bad(
                "compute",
                "gives no peak throughput; add at least one of f32, f16, bf16, int8, q4_0, q8_0 (GFLOP/s)"
                    .into(),
            ));
        }
        for (key, v) in [
            ("efficiency.linear", dev.efficiency.linear),
            ("efficiency.attention", dev.efficiency.attention),
            ("efficiency.elementwise", dev.efficiency.elementwise),
        ] {
            if !(v > 0.0 && v <= 1.0) {
                return Err(bad(key, format!("{v} must be a fraction in (0, 1]")));
            }
        }
        if !(dev.overhead.per_op_us.is_finite() && dev.overhead.per_op_us >= 0.0) {
            return Err(bad(
                "overhead.per_op_us",
                format!("{} must be zero or positive", dev.overhead.per_op_us),
            ));
        }
        if dev.kind == DeviceKind::Datasheet && dev.sources.is_empty() {
            return Err(bad(
                "sources",
                "a datasheet device must say where its numbers come from (sources = [\"...\"])"
                    .into(),
            ));
        }
        Ok(dev)
    }

    pub fn load(path: &Path) -> Result<Self, FileError> {
        Self::parse(path, &files::read_to_string(path)?)
    }

    /// The file's text, or why it cannot be written as TOML.
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        files::to_toml(self)
    }

    /// Whether this device has the numbers a precision needs: peak compute for the
    /// weight type (projections) and the activation type (attention).
    pub fn check_precision(&self, p: &Precision) -> Result<(), MissingPeak> {
        for (what, d) in [("weights", p.weights), ("activations", p.activations)] {
            if self.compute.gflops(d).is_none() {
                return Err(MissingPeak {
                    device: self.name.clone(),
                    what,
                    dtype: d,
                    have: DType::ALL
                        .iter()
                        .copied()
                        .filter(|t| self.compute.gflops(*t).is_some())
                        .collect(),
                });
            }
        }
        Ok(())
    }
}

/// A device file without the peak compute a workload's types need.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "device `{device}` gives no peak compute for {what} type {dtype} (it has: {}); add \
     compute.{dtype} to the device file or choose another dtype",
    have.iter().map(|d| d.name()).collect::<Vec<_>>().join(", ")
)]
pub struct MissingPeak {
    pub device: String,
    /// `weights` or `activations`.
    pub what: &'static str,
    pub dtype: DType,
    /// The types the device has a peak for.
    pub have: Vec<DType>,
}

/// Roofline cost model: every operator costs
/// `max(FLOPs / (peak · eff), bytes / (bandwidth · eff)) + per-op overhead`.
/// Projections and the LM head run at the weight type's peak; attention at the
/// activation type's; element-wise operators are bandwidth-bound.
#[derive(Debug, Clone)]
pub struct Roofline {
    pub device: DeviceSpec,
}

impl Roofline {
    /// Fails when the device lacks the peak compute the precision needs.
    pub fn new(device: DeviceSpec, precision: &Precision) -> Result<Self, MissingPeak> {
        device.check_precision(precision)?;
        Ok(Self { device })
    }

    fn phase_ms(&self, spec: &ModelSpec, phase: Phase, p: &Precision) -> Breakdown {
        let d = &self.device;
        // GFLOP/s = 1e6 FLOP/ms; GB/s = 1e6 bytes/ms.
        let linear_peak = d.compute.gflops(p.weights).unwrap_or(f64::NAN) * 1e6;
        let act_peak = d.compute.gflops(p.activations).unwrap_or(f64::NAN) * 1e6;
        let bw = d.memory.bandwidth_gbs * 1e6;
        let overhead_ms = d.overhead.per_op_us / 1000.0;
        let mut out = Breakdown::default();
        spec.visit_operators(phase, p, |op| {
            let (peak, eff) = match op.kind {
                OpKind::Linear => (linear_peak, d.efficiency.linear),
                OpKind::Attention => (act_peak, d.efficiency.attention),
                _ => (act_peak, d.efficiency.elementwise),
            };
            let compute_ms = op.flops as f64 / (peak * eff);
            let memory_ms = (op.bytes_read + op.bytes_written) as f64 / (bw * eff);
            let ms = (compute_ms.max(memory_ms) + overhead_ms) * op.repeats as f64;
            out.add(op.group, ms);
        });
        out
    }
}

impl CostModel for Roofline {
    fn estimate(&self, spec: &ModelSpec, w: &Workload) -> Estimate {
        let prefill = self.phase_ms(
            spec,
            Phase::Prefill {
                tokens: w.prompt_tokens,
            },
            &w.precision,
        );
        let decode = self.phase_ms(spec, Phase::Decode { context: w.context }, &w.precision);
        Estimate {
            prefill_ms: prefill.total_ms(),
            decode_ms_per_token: decode.total_ms(),
            peak_memory_bytes: peak_memory_bytes(spec, w),
            prefill_breakdown: prefill,
            decode_breakdown: decode,
        }
    }
}

impl files::Versioned for DeviceSpec {
    const FORMAT_VERSION: u32 = DEVICE_FORMAT_VERSION;
    const KIND: &'static str = "device files";
    fn format_version(&self) -> u32 {
        self.format_version
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const DEV: &str = "format_version = 1\nname = \"t\"\nkind = \"datasheet\"\nsources = [\"test\"]\n\
                       [compute]\nf32 = 100.0\n[memory]\nbandwidth_gbs = 10.0\n";

    fn p() -> PathBuf {
        PathBuf::from("profiles/t.toml")
    }

    fn workload() -> Workload {
        Workload {
            prompt_tokens: 64,
            context: 511,
            precision: Precision::default(),
        }
    }

    #[test]
    fn decode_is_bandwidth_bound_and_matches_hand_count() {
        let dev = DeviceSpec::parse(&p(), DEV).unwrap();
        let model = Roofline::new(dev, &Precision::default()).unwrap();
        let spec = ModelSpec::llama(32000, 2048, 22, 32, 4, 5632);
        let e = model.estimate(&spec, &workload());
        // At batch 1 every decode operator is memory-bound (intensity < 10 FLOP/byte).
        let d = spec.pass_totals(Phase::Decode { context: 511 }, &Precision::default());
        let expected = (d.bytes_read + d.bytes_written) as f64 / 10e6;
        assert!((e.decode_ms_per_token - expected).abs() / expected < 1e-9);
        assert!(e.prefill_ms > e.decode_ms_per_token);
        let b = e.decode_breakdown;
        assert!((b.total_ms() - e.decode_ms_per_token).abs() < 1e-9);
        assert!(b.ffn_ms > b.attention_ms);
    }

    #[test]
    fn more_layers_never_cheaper() {
        let dev = DeviceSpec::parse(&p(), DEV).unwrap();
        let model = Roofline::new(dev, &Precision::default()).unwrap();
        let mut prev = (0.0, 0.0, 0);
        for layers in 1..30 {
            let spec = ModelSpec::llama(8000, 512, layers, 8, 8, 1536);
            let e = model.estimate(&spec, &workload());
            assert!(e.prefill_ms > prev.0 && e.decode_ms_per_token > prev.1);
            assert!(e.peak_memory_bytes > prev.2);
            prev = (e.prefill_ms, e.decode_ms_per_token, e.peak_memory_bytes);
        }
    }

    #[test]
    fn missing_dtype_is_refused_with_the_fix() {
        let dev = DeviceSpec::parse(&p(), DEV).unwrap();
        let e = Roofline::new(dev, &Precision::for_weights(DType::Q4_0))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no peak compute for weights type q4_0 (it has: f32)"),
            "{e}"
        );
    }

    #[test]
    fn bad_device_files() {
        let err = |src: &str| DeviceSpec::parse(&p(), src).unwrap_err().to_string();
        let e = err(&DEV.replace("bandwidth_gbs = 10.0", "bandwidth_gbs = -1.0"));
        assert!(
            e.starts_with("profiles/t.toml:8: `memory.bandwidth_gbs`"),
            "{e}"
        );
        let e = err(&DEV.replace("sources = [\"test\"]\n", ""));
        assert!(e.contains("`sources`"), "{e}");
        let e = err(&DEV.replace("f32 = 100.0", "fp32 = 100.0"));
        assert!(
            e.starts_with("profiles/t.toml:6:") && e.contains("unknown field `fp32`"),
            "{e}"
        );
        let e = err(&format!("{DEV}[efficiency]\nlinear = 1.5\n"));
        assert!(
            e.contains("`efficiency.linear`: 1.5 must be a fraction"),
            "{e}"
        );
    }

    #[test]
    fn device_round_trips() {
        let dev = DeviceSpec::parse(&p(), DEV).unwrap();
        assert_eq!(
            DeviceSpec::parse(&p(), &dev.to_toml().unwrap()).unwrap(),
            dev
        );
    }
}
