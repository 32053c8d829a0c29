//! What a phone's OS tells about its state: the CPUs a process may run on, core
//! frequencies (cpufreq) and temperatures (thermal zones). Everything is read from
//! `/proc` and `/sys` and is optional: a machine without them (a VM, a container) gives
//! empty readings, never an error.

use std::path::Path;

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// CPUs this process may run on (`Cpus_allowed_list` of `/proc/self/status`, e.g.
/// `4-7`), expanded; empty when unreadable.
pub fn allowed_cpus() -> Vec<u32> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .and_then(|list| parse_cpu_list(list.trim()).ok())
        .unwrap_or_default()
}

/// A CPU list that does not parse; the message says what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadCpuList(String);

/// Why the worker threads were not pinned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotPinned(String);

/// `0-3,6` -> [0, 1, 2, 3, 6]. The error says what is wrong with the list.
pub fn parse_cpu_list(list: &str) -> Result<Vec<u32>, BadCpuList> {
    let mut cpus = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let num = |s: &str| {
            s.trim().parse::<u32>().map_err(|_| {
                BadCpuList(format!(
                    "`{s}` in the CPU list `{list}` is not a CPU number"
                ))
            })
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b || b - a > 4096 {
                    return Err(BadCpuList(format!(
                        "`{part}` in the CPU list `{list}` is not a range"
                    )));
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(num(part)?),
        }
    }
    if cpus.is_empty() {
        return Err(BadCpuList(format!(
            "the CPU list `{list}` names no CPU; write e.g. `4-7` or `0,2`"
        )));
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// `[0, 1, 2, 3, 6]` -> `0-3,6`.
pub fn format_cpu_list(cpus: &[u32]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let mut j = i;
        while j + 1 < cpus.len() && cpus[j + 1] == cpus[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            cpus[i].to_string()
        } else {
            format!("{}-{}", cpus[i], cpus[j])
        });
        i = j + 1;
    }
    parts.join(",")
}

fn cpufreq(cpu: u32, file: &str) -> Option<u64> {
    read_u64(&Path::new("/sys/devices/system/cpu").join(format!("cpu{cpu}/cpufreq/{file}")))
}

/// The highest frequency of each CPU, kHz (`cpuinfo_max_freq`); empty when cpufreq is
/// not exposed.
pub fn max_freq_khz(cpus: &[u32]) -> Vec<u64> {
    let f: Vec<u64> = cpus
        .iter()
        .filter_map(|&c| cpufreq(c, "cpuinfo_max_freq"))
        .collect();
    if f.len() == cpus.len() { f } else { Vec::new() }
}

/// The SoC's name where the OS gives one (`/sys/devices/soc0/machine`, or the
/// `Hardware` line of `/proc/cpuinfo` on Android); empty otherwise.
pub fn soc() -> String {
    if let Ok(s) = std::fs::read_to_string("/sys/devices/soc0/machine")
        && !s.trim().is_empty()
    {
        return s.trim().to_string();
    }
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    info.lines()
        .find(|l| l.starts_with("Hardware"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default()
}

/// One reading of the device's state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snapshot {
    /// Hottest CPU-like thermal zone, degrees C.
    pub temp_c: Option<f64>,
    /// A CPU in use has its frequency capped (`scaling_max_freq`) below 95% of its
    /// hardware maximum (`cpuinfo_max_freq`): what Android's thermal and power HALs do
    /// when they throttle.
    pub throttled: bool,
    /// The CPUs' time counters and this process's, where `/proc` tells.
    pub ticks: Option<tailor_cost::load::Ticks>,
}

/// Reads the state of `cpus` now.
pub fn snapshot(cpus: &[u32]) -> Snapshot {
    let throttled = cpus.iter().any(|&c| {
        matches!(
            (cpufreq(c, "scaling_max_freq"), cpufreq(c, "cpuinfo_max_freq")),
            (Some(cap), Some(max)) if (cap as f64) < 0.95 * max as f64
        )
    });
    Snapshot {
        temp_c: hottest_cpu_zone(Path::new("/sys/class/thermal")),
        throttled,
        ticks: tailor_cost::load::read(cpus),
    }
}

/// The hottest thermal zone whose type names a CPU (`cpu`, `soc`, `cluster`, `tsens`,
/// `x86_pkg_temp`, ...), or of all zones when none does; `None` when there are none.
fn hottest_cpu_zone(dir: &Path) -> Option<f64> {
    let mut cpu_like = Vec::new();
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if !entry
            .file_name()
            .to_string_lossy()
            .starts_with("thermal_zone")
        {
            continue;
        }
        let Some(milli) = std::fs::read_to_string(path.join("temp"))
            .ok()
            .and_then(|t| t.trim().parse::<i64>().ok())
        else {
            continue;
        };
        // Zones report millidegrees; a few old drivers report degrees.
        let c = if milli.abs() > 1000 {
            milli as f64 / 1000.0
        } else {
            milli as f64
        };
        let kind = std::fs::read_to_string(path.join("type"))
            .unwrap_or_default()
            .to_ascii_lowercase();
        if [
            "cpu", "soc", "cluster", "tsens", "pkg", "big", "little", "core",
        ]
        .iter()
        .any(|k| kind.contains(k))
        {
            cpu_like.push(c);
        }
        all.push(c);
    }
    let pick = if cpu_like.is_empty() { all } else { cpu_like };
    pick.into_iter().reduce(f64::max)
}

/// Pins the worker threads of rayon's global pool (burn's CPU backends run on it), worker
/// `i` on the `i`-th CPU this process may use (`RAYON_NUM_THREADS` workers if set, else
/// one per allowed CPU). Returns the CPUs pinned to, or why nothing was pinned (one CPU or
/// one thread, the pool already built). Call it before the first parallel operation.
///
/// Why: with as many workers as CPUs and none pinned, the scheduler at times stacks two
/// workers on one CPU for seconds, and a parallel operator then runs at one core's speed.
/// Measured on this 2-vCPU host: a 64-token attention block took 370 us in most sessions
/// and 530-650 us in 11 of 36 (one thread: always 620 us); pinned, 2 of 36 were slow.
/// On-device runtimes (llama.cpp, MNN) pin their threads on phones for the same reason.
pub fn pin_worker_threads() -> Result<Vec<u32>, NotPinned> {
    let threads = rayon_threads_from_env();
    let (builder, cpus) = pinned_pool(&allowed_cpus(), threads)?;
    builder
        .build_global()
        .map_err(|e| NotPinned(format!("the thread pool was already built: {e}")))?;
    Ok(cpus)
}

/// A rayon pool builder whose worker `i` pins itself to `allowed[i % allowed.len()]`, and
/// those CPUs; an error when there is nothing to pin (fewer than two CPUs or threads).
pub fn pinned_pool(
    allowed: &[u32],
    threads: Option<usize>,
) -> Result<(rayon::ThreadPoolBuilder, Vec<u32>), NotPinned> {
    let n = threads.unwrap_or(allowed.len());
    if allowed.len() < 2 || n < 2 {
        return Err(NotPinned(format!(
            "{} allowed CPU(s), {n} thread(s): nothing to pin",
            allowed.len()
        )));
    }
    let cpus: Vec<u32> = allowed.iter().copied().cycle().take(n).collect();
    let on = cpus.clone();
    let builder = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("tailor-worker-{i}"))
        .start_handler(move |i| {
            let cpu = on[i % on.len()];
            if !core_affinity::set_for_current(core_affinity::CoreId { id: cpu as usize }) {
                tracing::debug!(cpu, "could not pin a worker thread");
            }
        });
    Ok((builder, cpus))
}

/// `RAYON_NUM_THREADS` when set to a positive number (rayon then sizes its pool by it).
pub(crate) fn rayon_threads_from_env() -> Option<usize> {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_round_trip_and_bad_ones_are_named() {
        assert_eq!(parse_cpu_list("0-3,6").unwrap(), vec![0, 1, 2, 3, 6]);
        assert_eq!(parse_cpu_list("7,4-6").unwrap(), vec![4, 5, 6, 7]);
        assert_eq!(format_cpu_list(&[0, 1, 2, 3, 6]), "0-3,6");
        assert_eq!(format_cpu_list(&[4, 5, 6, 7]), "4-7");
        assert!(
            parse_cpu_list("big")
                .unwrap_err()
                .to_string()
                .contains("`big`")
        );
        assert!(
            parse_cpu_list("5-2")
                .unwrap_err()
                .to_string()
                .contains("not a range")
        );
        assert!(
            parse_cpu_list(",")
                .unwrap_err()
                .to_string()
                .contains("names no CPU")
        );
    }

    #[test]
    fn readings_never_fail() {
        let cpus = allowed_cpus();
        assert!(!cpus.is_empty(), "Linux tells every process its CPUs");
        let s = snapshot(&cpus);
        assert!(
            s.temp_c.is_none_or(|t| (-40.0..150.0).contains(&t)),
            "{s:?}"
        );
        let f = max_freq_khz(&cpus);
        assert!(f.is_empty() || f.len() == cpus.len());
    }

    /// Each worker of a pinned pool may run on its one CPU only (as the kernel reports
    /// it), in order; there is nothing to pin with one CPU or one thread.
    #[test]
    fn pinned_pool_pins_each_worker_to_its_cpu() {
        assert!(
            pinned_pool(&[3], None)
                .unwrap_err()
                .to_string()
                .contains("nothing to pin")
        );
        assert!(pinned_pool(&[0, 1], Some(1)).is_err());
        let allowed = allowed_cpus();
        if allowed.len() < 2 {
            eprintln!("skipped: this machine lets the test use one CPU");
            return;
        }
        let (builder, cpus) = pinned_pool(&allowed, Some(allowed.len() + 1)).unwrap();
        assert_eq!(
            cpus.len(),
            allowed.len() + 1,
            "workers wrap around the CPUs"
        );
        assert_eq!(cpus[allowed.len()], allowed[0]);
        let pool = builder.build().unwrap();
        let seen: Vec<(usize, Vec<u32>)> = pool.broadcast(|ctx| {
            let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
            let list = status
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .unwrap();
            (ctx.index(), parse_cpu_list(list.trim()).unwrap())
        });
        for (worker, on) in seen {
            assert_eq!(on, vec![cpus[worker]], "worker {worker}");
        }
    }

    #[test]
    fn hottest_zone_prefers_cpu_zones() {
        let dir = std::env::temp_dir().join(format!("tailor-thermal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (i, kind, milli) in [
            (0, "battery", "52000"),
            (1, "cpu-1-0", "47500"),
            (2, "tsens_tz_sensor3", "49000"),
        ] {
            let z = dir.join(format!("thermal_zone{i}"));
            std::fs::create_dir_all(&z).unwrap();
            std::fs::write(z.join("type"), kind).unwrap();
            std::fs::write(z.join("temp"), milli).unwrap();
        }
        assert_eq!(hottest_cpu_zone(&dir), Some(49.0));
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(hottest_cpu_zone(&dir), None);
    }
}
