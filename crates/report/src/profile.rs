//! What `tailor profile --json` prints, for each engine; `tailor profile --remote` reads
//! the device's report back by the same type.

use crate::fmt::{Table, bytes};
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

impl BurnProfileReport {
    /// The report as `tailor profile` prints it: the file and setup, then a table. A
    /// profile pulled from a device (`remote` set) says from where.
    pub fn render(&self) -> String {
        let f = &self.fingerprint;
        let mut t = Table::new(&["", ""]);
        let mut s = match &self.remote {
            None => format!(
                "profile {} ({} on {}, {} threads, {})\n",
                self.profile, f.backend, f.device, f.threads, f.cpu_model
            ),
            Some(via) => format!(
                "profile {} from {via} ({} on {}, {} threads{}{})\n",
                self.profile,
                f.backend,
                f.cpu_model,
                f.threads,
                if f.soc.is_empty() {
                    String::new()
                } else {
                    format!(", SoC {}", f.soc)
                },
                if f.cpus.is_empty() {
                    String::new()
                } else {
                    format!(", CPUs {}", f.cpus)
                },
            ),
        };
        if self.remote.is_some() {
            for (n, label) in [
                (self.shapes_needed, "shapes needed"),
                (self.measured_now, "sessions measured now"),
                (self.missing, "still missing"),
                (self.throttled_entries, "entries measured while throttled"),
                (self.loaded_entries, "entries measured under load"),
            ] {
                t.row(vec![label.into(), n.to_string()]);
            }
            t.row(vec![
                "wall time on the device".into(),
                format!("{:.1} s", self.wall_s),
            ]);
            s += &t.render(2);
            return s;
        }
        t.row(vec!["shapes needed".into(), self.shapes_needed.to_string()]);
        t.row(vec![
            "measured now".into(),
            format!("{} sessions", self.measured_now),
        ]);
        t.row(vec!["still missing".into(), self.missing.to_string()]);
        t.row(vec!["wall time".into(), format!("{:.1} s", self.wall_s)]);
        t.row(vec![
            "median spread (p90-p10)/median".into(),
            format!("{:.1}%", 100.0 * self.median_spread),
        ]);
        t.row(vec![
            "entries stopped by the time cap".into(),
            self.capped.to_string(),
        ]);
        if self.throttled_entries > 0 {
            t.row(vec![
                "entries measured while throttled".into(),
                self.throttled_entries.to_string(),
            ]);
        }
        if self.loaded_entries > 0 {
            t.row(vec![
                "entries measured under load".into(),
                format!(
                    "{} (marked `loaded`: re-measure them on a quiet machine)",
                    self.loaded_entries
                ),
            ]);
        }
        if let Some(r) = &self.roofline {
            t.row(vec![
                "peak matmul".into(),
                format!("{:.1} GFLOP/s", r.matmul_gflops),
            ]);
            t.row(vec![
                "read bandwidth".into(),
                format!("{:.1} GB/s", r.bandwidth_gbs),
            ]);
        }
        if let Some(m) = &self.memory {
            t.row(vec![
                "runtime memory overhead".into(),
                format!("{} ({})", bytes(m.runtime_overhead_bytes as f64), m.source),
            ]);
        }
        s += &t.render(2);
        s
    }
}

impl LlamaProfileReport {
    /// The report as `tailor profile --engine llama.cpp` prints it.
    pub fn render(&self) -> String {
        let f = &self.fingerprint;
        let mut t = Table::new(&["", ""]);
        for (k, v) in [
            ("profile", self.profile.clone()),
            (
                "engine",
                format!("llama.cpp {} ({})", f.build_commit, f.backends),
            ),
            ("cpu", f.cpu_info.clone()),
            ("threads", f.threads.to_string()),
            ("weights", f.weights.to_string()),
            ("kv cache", format!("{}/{}", f.type_k, f.type_v)),
            ("flash attention", f.flash_attn.clone()),
            ("probe models", self.probes.to_string()),
            (
                "probe visits now",
                format!(
                    "{} ({} llama-bench runs)",
                    self.probe_visits_now, self.llama_bench_runs_now
                ),
            ),
            ("still to run", self.missing.to_string()),
            ("wall time", format!("{:.0} s", self.wall_s)),
        ] {
            t.row(vec![k.into(), v]);
        }
        if let Some(r) = &self.remote {
            t.row(vec!["device".into(), r.clone()]);
        }
        let mut s = t.render(2);
        if self.missing > 0 {
            s += &format!(
                "rerun the same command to continue ({} visits left)\n",
                self.missing
            );
        }
        s
    }
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
