//! Peak memory of the process, for CPU backends: the resident set's high-water mark
//! (`VmHWM`), which Linux lets a process reset (`/proc/self/clear_refs`, "5"). Where
//! that is unavailable (other systems, restricted kernels) the functions return `None`.

/// Resident set size now, bytes.
pub fn rss_bytes() -> Option<u64> {
    status_kib("VmRSS:").map(|k| k * 1024)
}

/// Peak resident set size since the process started or since [`reset_peak`], bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    status_kib("VmHWM:").map(|k| k * 1024)
}

/// Resets the high-water mark to the current resident set. `false` if the kernel refused.
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn status_kib(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn peak_follows_a_large_allocation() {
        // Other tests of this process may reset the mark concurrently; whatever they do,
        // the mark covers what is resident now.
        assert!(reset_peak());
        let v = vec![1u8; 64 << 20];
        std::hint::black_box(&v);
        let (rss, peak) = (rss_bytes().unwrap(), peak_rss_bytes().unwrap());
        drop(v);
        assert!(rss >= 64 << 20, "rss {rss}");
        assert!(peak >= rss, "peak {peak} < rss {rss}");
    }
}
