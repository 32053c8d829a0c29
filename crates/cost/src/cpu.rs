//! What decides a CPU's speed, beyond its marketing name: the vendor, the exact part of
//! each kind of core (x86 family/model/stepping, Arm implementer/part/revision per
//! cluster), the instruction-set extensions the kernels use, and the cache sizes. Two
//! machines whose `model name` both read "Intel(R) Xeon(R) Processor" or "AMD EPYC" can
//! differ in all of these, and a profile of one is not a profile of the other.
//!
//! Read from `/proc/cpuinfo` and `/sys/devices/system/cpu/*/cache` on Linux and Android;
//! empty elsewhere (then only the model name is compared).

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

/// The CPU identity of a profile's machine (all fields empty when it was not readable).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CpuId {
    /// `GenuineIntel`, `AuthenticAMD`; on Arm the implementer codes (`0x41` Arm, `0x51`
    /// Qualcomm, `0x61` Apple, ...).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub vendor: String,
    /// One line per kind of core: `family 25 model 17 stepping 1` (x86), or
    /// `0x41 part 0xd44 r1p0 x4` (Arm: implementer, part, variant/revision, how many).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<String>,
    /// The instruction-set extensions of [`KERNEL_ISA`] this CPU has, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub isa: Vec<String>,
    /// Each distinct cache of the CPUs: `L1d 48K`, `L2 2048K`, ... sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caches: Vec<String>,
}

/// The instruction-set extensions that decide which kernels burn, ggml and the BLAS
/// libraries pick: vector width, fused multiply-add, half and bfloat16 arithmetic, int8
/// dot products and matrix units. Names as `/proc/cpuinfo` writes them (x86 `flags`, Arm
/// `Features`: `asimd` is NEON, `asimddp` the dot-product instructions).
pub const KERNEL_ISA: &[&str] = &[
    // x86
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx_vnni",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
    // Arm
    "asimd",
    "asimdhp",
    "asimddp",
    "i8mm",
    "bf16",
    "sve",
    "sve2",
    "sme",
];

impl CpuId {
    /// Nothing was readable (another OS, or a profile made before tailor recorded it).
    pub fn is_empty(&self) -> bool {
        self.vendor.is_empty()
            && self.parts.is_empty()
            && self.isa.is_empty()
            && self.caches.is_empty()
    }

    /// This machine's, from `/proc/cpuinfo` and sysfs.
    pub fn read() -> Self {
        let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let mut id = Self::from_cpuinfo(&info);
        id.caches = caches(Path::new("/sys/devices/system/cpu"));
        id
    }

    /// Vendor, parts and ISA from the text of `/proc/cpuinfo` (caches are left empty).
    pub fn from_cpuinfo(info: &str) -> Self {
        let mut vendors = BTreeSet::new();
        // Kind of core -> how many processors have it, in order of first appearance.
        let mut kinds: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        let mut isa = BTreeSet::new();
        let mut arm = false;
        for block in info.split("\n\n").filter(|b| !b.trim().is_empty()) {
            let field = |key: &str| {
                block.lines().find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    (k.trim() == key).then(|| v.trim().to_string())
                })
            };
            let kind = if let Some(vendor) = field("vendor_id") {
                vendors.insert(vendor);
                match (field("cpu family"), field("model"), field("stepping")) {
                    (Some(f), Some(m), s) => Some(format!(
                        "family {f} model {m} stepping {}",
                        s.unwrap_or_else(|| "?".into())
                    )),
                    _ => None,
                }
            } else if let Some(implementer) = field("CPU implementer") {
                arm = true;
                let part = field("CPU part").unwrap_or_else(|| "?".into());
                let variant = field("CPU variant")
                    .and_then(|v| parse_int(&v))
                    .map_or_else(|| "?".into(), |v| v.to_string());
                let revision = field("CPU revision").unwrap_or_else(|| "?".into());
                let kind = format!("{implementer} part {part} r{variant}p{revision}");
                vendors.insert(implementer);
                Some(kind)
            } else {
                None
            };
            if let Some(kind) = kind {
                let next = kinds.len();
                kinds.entry(kind).or_insert((next, 0)).1 += 1;
            }
            if let Some(flags) = field("flags").or_else(|| field("Features")) {
                isa.extend(
                    flags
                        .split_whitespace()
                        .filter(|f| KERNEL_ISA.contains(f))
                        .map(str::to_string),
                );
            }
        }
        let mut kinds: Vec<(String, (usize, usize))> = kinds.into_iter().collect();
        kinds.sort_by_key(|(_, (first, _))| *first);
        Self {
            vendor: vendors.into_iter().collect::<Vec<_>>().join(","),
            parts: kinds
                .into_iter()
                .map(|(kind, (_, n))| if arm { format!("{kind} x{n}") } else { kind })
                .collect(),
            isa: isa.into_iter().collect(),
            caches: Vec::new(),
        }
    }

    /// `field `ours` vs `theirs`` for each field that differs; the ISA lists only the
    /// extensions one side has and the other lacks. Nothing when either side is empty: a
    /// profile made before tailor recorded the identity is compared by model name only.
    pub fn differences(&self, other: &CpuId) -> Vec<String> {
        if self.is_empty() || other.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::new();
        let list = |v: &[String]| {
            if v.is_empty() {
                "-".to_string()
            } else {
                v.join(", ")
            }
        };
        if self.vendor != other.vendor {
            out.push(format!(
                "cpu vendor `{}` vs `{}`",
                self.vendor, other.vendor
            ));
        }
        if self.parts != other.parts {
            out.push(format!(
                "cpu parts `{}` vs `{}`",
                list(&self.parts),
                list(&other.parts)
            ));
        }
        if self.isa != other.isa {
            let only = |a: &[String], b: &[String]| -> Vec<String> {
                a.iter().filter(|f| !b.contains(f)).cloned().collect()
            };
            out.push(format!(
                "cpu isa `{}` vs `{}` (extensions only one side has)",
                list(&only(&self.isa, &other.isa)),
                list(&only(&other.isa, &self.isa))
            ));
        }
        if self.caches != other.caches {
            out.push(format!(
                "cpu caches `{}` vs `{}`",
                list(&self.caches),
                list(&other.caches)
            ));
        }
        out
    }

    /// One line for logs and reports: `GenuineIntel family 6 model 143 ...; avx2 ...`.
    pub fn summary(&self) -> String {
        let mut s = self.vendor.clone();
        for p in &self.parts {
            let _ = write!(s, " {p}");
        }
        if !self.isa.is_empty() {
            let _ = write!(s, "; {}", self.isa.join(" "));
        }
        if !self.caches.is_empty() {
            let _ = write!(s, "; {}", self.caches.join(", "));
        }
        s
    }
}

/// `0x1` or `1` -> 1.
fn parse_int(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Each distinct cache of the machine's CPUs (`cpuN/cache/indexM/{level,type,size}`):
/// `L1d 48K`, `L1i 32K`, `L2 1024K`, `L3 32768K`, sorted; empty when sysfs has none.
impl CpuId {
    /// The largest cache of the highest level (`L3 491520K` -> 480 MiB), bytes; `None`
    /// when the caches were not read.
    pub fn last_level_cache_bytes(&self) -> Option<u64> {
        self.caches
            .iter()
            .filter_map(|c| {
                let (level, size) = c.split_once(' ')?;
                let level: u32 = level
                    .strip_prefix('L')?
                    .trim_end_matches(['d', 'i'])
                    .parse()
                    .ok()?;
                let (digits, unit) = size.split_at(size.find(|ch: char| !ch.is_ascii_digit())?);
                let n: u64 = digits.parse().ok()?;
                let bytes = match unit {
                    "K" => n << 10,
                    "M" => n << 20,
                    "G" => n << 30,
                    _ => return None,
                };
                Some((level, bytes))
            })
            .max()
            .map(|(_, bytes)| bytes)
    }
}

pub fn caches(cpu_dir: &Path) -> Vec<String> {
    let mut out = BTreeSet::new();
    let Ok(cpus) = std::fs::read_dir(cpu_dir) else {
        return Vec::new();
    };
    for cpu in cpus.flatten() {
        let name = cpu.file_name().to_string_lossy().to_string();
        if !name
            .strip_prefix("cpu")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        {
            continue;
        }
        let Ok(indexes) = std::fs::read_dir(cpu.path().join("cache")) else {
            continue;
        };
        for index in indexes.flatten() {
            let read = |f: &str| {
                std::fs::read_to_string(index.path().join(f))
                    .map(|s| s.trim().to_string())
                    .unwrap_or_default()
            };
            let (level, kind, size) = (read("level"), read("type"), read("size"));
            if level.is_empty() || size.is_empty() {
                continue;
            }
            let suffix = match kind.as_str() {
                "Data" => "d",
                "Instruction" => "i",
                _ => "",
            };
            out.insert(format!("L{level}{suffix} {size}"));
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const XEON: &str = "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 167\n\
        model name\t: Intel(R) Xeon(R) Processor\nstepping\t: 1\n\
        flags\t\t: fpu sse avx fma avx2 avx512f avx512bw avx512vl avx512_vnni amx_tile amx_int8\n\n\
        processor\t: 1\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 167\n\
        model name\t: Intel(R) Xeon(R) Processor\nstepping\t: 1\n\
        flags\t\t: fpu sse avx fma avx2 avx512f avx512bw avx512vl avx512_vnni amx_tile amx_int8\n\n";

    const EPYC: &str = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\n\
        model name\t: AMD EPYC\nstepping\t: 1\nflags\t\t: fpu sse avx fma avx2 avx512f avx512bw\n\n";

    /// A Snapdragon 8 Gen 2 layout: 3 kinds of core in 4 clusters' worth of processors.
    fn phone() -> String {
        let core = |n: usize, part: &str, variant: &str, feats: &str| {
            format!(
                "processor\t: {n}\nBogoMIPS\t: 38.40\nFeatures\t: {feats}\nCPU implementer\t: 0x41\n\
                 CPU architecture: 8\nCPU variant\t: {variant}\nCPU part\t: {part}\nCPU revision\t: 0\n\n"
            )
        };
        let feats = "fp asimd evtstrm aes asimdhp asimddp i8mm bf16 sve sve2";
        let mut s = String::new();
        for n in 0..3 {
            s += &core(n, "0xd46", "0x1", feats);
        }
        for n in 3..7 {
            s += &core(n, "0xd4d", "0x0", feats);
        }
        s += &core(7, "0xd4e", "0x0", feats);
        s + "Hardware\t: Qualcomm Technologies, Inc KALAMA\n"
    }

    #[test]
    fn x86_identity_names_vendor_part_and_kernel_isa() {
        let id = CpuId::from_cpuinfo(XEON);
        assert_eq!(id.vendor, "GenuineIntel");
        assert_eq!(id.parts, vec!["family 6 model 167 stepping 1".to_string()]);
        assert_eq!(
            id.isa,
            [
                "amx_int8",
                "amx_tile",
                "avx",
                "avx2",
                "avx512_vnni",
                "avx512bw",
                "avx512f",
                "avx512vl",
                "fma"
            ]
        );
    }

    #[test]
    fn arm_identity_counts_each_kind_of_core() {
        let id = CpuId::from_cpuinfo(&phone());
        assert_eq!(id.vendor, "0x41");
        assert_eq!(
            id.parts,
            [
                "0x41 part 0xd46 r1p0 x3",
                "0x41 part 0xd4d r0p0 x4",
                "0x41 part 0xd4e r0p0 x1"
            ]
        );
        assert_eq!(
            id.isa,
            ["asimd", "asimddp", "asimdhp", "bf16", "i8mm", "sve", "sve2"]
        );
    }

    #[test]
    fn another_cpu_is_told_apart_field_by_field() {
        let xeon = CpuId::from_cpuinfo(XEON);
        let epyc = CpuId::from_cpuinfo(EPYC);
        let d = xeon.differences(&epyc);
        assert_eq!(d.len(), 3, "{d:?}");
        assert!(d[0].contains("`GenuineIntel` vs `AuthenticAMD`"), "{d:?}");
        assert!(
            d[1].contains("`family 6 model 167 stepping 1` vs `family 25 model 17 stepping 1`"),
            "{d:?}"
        );
        assert!(
            d[2].contains("`amx_int8, amx_tile, avx512_vnni, avx512vl` vs `-`"),
            "{d:?}"
        );
        assert!(xeon.differences(&xeon).is_empty());
        // A profile made before the identity was recorded is compared by name only.
        assert!(CpuId::default().differences(&xeon).is_empty());
        let mut cached = xeon.clone();
        cached.caches = vec!["L2 2048K".into()];
        let mut other = xeon.clone();
        other.caches = vec!["L2 1024K".into()];
        assert_eq!(
            cached.differences(&other),
            ["cpu caches `L2 2048K` vs `L2 1024K`"]
        );
    }

    #[test]
    fn caches_come_from_sysfs_and_garbage_is_skipped() {
        let dir = std::env::temp_dir().join(format!("tailor-caches-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (cpu, idx, level, kind, size) in [
            ("cpu0", "index0", "1", "Data", "48K"),
            ("cpu0", "index1", "1", "Instruction", "32K"),
            ("cpu0", "index2", "2", "Unified", "2048K"),
            ("cpu1", "index0", "1", "Data", "48K"),
            ("cpufreq", "index0", "9", "Data", "1K"),
        ] {
            let d = dir.join(cpu).join("cache").join(idx);
            std::fs::create_dir_all(&d).expect("temp dir");
            for (f, v) in [("level", level), ("type", kind), ("size", size)] {
                std::fs::write(d.join(f), format!("{v}\n")).expect("write");
            }
        }
        assert_eq!(caches(&dir), ["L1d 48K", "L1i 32K", "L2 2048K"]);
        let id = |caches: &[&str]| CpuId {
            caches: caches.iter().map(|c| c.to_string()).collect(),
            ..CpuId::default()
        };
        assert_eq!(
            id(&caches(&dir).iter().map(String::as_str).collect::<Vec<_>>())
                .last_level_cache_bytes(),
            Some(2048 << 10)
        );
        assert_eq!(
            id(&["L1d 48K", "L3 491520K", "L2 2048K"]).last_level_cache_bytes(),
            Some(480 << 20)
        );
        assert_eq!(
            id(&["L3 32M", "L2 1M"]).last_level_cache_bytes(),
            Some(32 << 20)
        );
        assert_eq!(id(&[]).last_level_cache_bytes(), None);
        assert_eq!(id(&["garbage", "L3 12Q"]).last_level_cache_bytes(), None);
        assert!(caches(&dir.join("missing")).is_empty());
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn garbage_cpuinfo_gives_an_empty_identity() {
        assert!(CpuId::from_cpuinfo("").is_empty());
        assert!(CpuId::from_cpuinfo(":::\n\n\0\n: x").is_empty());
    }
}
