//! What `tailor profile --json` prints, for each engine; `tailor profile --remote` reads
//! the device's report back by the same type.

use serde::{Deserialize, Serialize};
use tailor_cost::{Fingerprint, MemoryProbe, RooflineProbe};
use tailor_llamacpp::LlamaFingerprint;

/// A profiling run of burn (`tailor profile --json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BurnProfileReport {
    /// The profile file.
    pub profile: String,
    pub fingerprint: Fingerprint,
    /// Operator shapes the space (or specs) needs.
    pub shapes_needed: usize,
    /// Entries of the profile that cover them.
    pub entries_covering: usize,
    pub measured_now: usize,
    pub rounds: usize,
    /// Shapes still to measure (a run cut short by --limit or a kill).
    pub missing: usize,
    #[serde(with = "finite")]
    pub wall_s: f64,
    /// Median (p90-p10)/median of the sessions measured now (`null`: none).
    #[serde(with = "finite")]
    pub median_spread: f64,
    /// Sessions that hit their time cap before the target spread.
    pub capped: usize,
    pub throttled_entries: usize,
    /// Entries with a session timed while other processes (or other guests of the VM)
    /// took a share of the CPUs (`loaded = true` in the profile).
    #[serde(default)]
    pub loaded_entries: usize,
    pub roofline: Option<RooflineProbe>,
    pub memory: Option<MemoryProbe>,
    /// Set by the host after `--remote`: how the device was reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// Set by the host after `--remote`: the profile's path on the device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_file: Option<String>,
}

/// A profiling run of llama.cpp (`tailor profile --engine llama.cpp --json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlamaProfileReport {
    pub profile: String,
    /// `llama.cpp`.
    pub engine: String,
    pub fingerprint: LlamaFingerprint,
    /// Probe models of the plan.
    pub probes: usize,
    pub probe_visits_now: usize,
    pub llama_bench_runs_now: usize,
    pub missing: usize,
    #[serde(with = "finite")]
    pub wall_s: f64,
    /// How the device was reached (`--remote`), else `null`.
    pub remote: Option<String>,
    /// Probe entries with a round timed while other processes took a share of the CPUs
    /// (`loaded_rounds` in the profile).
    #[serde(default)]
    pub loaded_entries: usize,
}

/// A float that may be NaN (nothing to take a median of): `null` in JSON, NaN in Rust.
mod finite {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else {
            s.serialize_none()
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

#[cfg(test)]
mod tests {
    use super::BurnProfileReport;

    #[test]
    fn a_report_with_nothing_measured_now_round_trips() {
        let r = BurnProfileReport {
            profile: "profiles/x.toml".into(),
            fingerprint: serde_json::from_value(serde_json::json!({"backend": "flex",
                "device": "cpu", "driver": "", "cpu_model": "x", "cores": 2, "threads": 2,
                "os": "linux-x86_64", "dtype": "f32", "burn_version": "0.22.1"}))
            .unwrap(),
            shapes_needed: 10,
            entries_covering: 10,
            measured_now: 0,
            rounds: 0,
            missing: 0,
            wall_s: 0.5,
            median_spread: f64::NAN,
            capped: 0,
            throttled_entries: 0,
            loaded_entries: 2,
            roofline: None,
            memory: None,
            remote: Some("qemu:/tmp/d".into()),
            device_file: None,
        };
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains("\"median_spread\":null") && !text.contains("device_file"));
        let back: BurnProfileReport = serde_json::from_str(&text).unwrap();
        assert!(back.median_spread.is_nan());
        assert_eq!(
            BurnProfileReport {
                median_spread: 0.0,
                ..back
            },
            BurnProfileReport {
                median_spread: 0.0,
                ..r
            }
        );
    }
}
