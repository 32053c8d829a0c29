//! Drift checks remembered per machine state, so that a command that only prices (`tailor
//! search`) can quote the last check of a profile instead of re-timing it every time.
//!
//! A check is remembered in the user's cache folder (`$TAILOR_CACHE_DIR`, else
//! `$XDG_CACHE_HOME/tailor`, else `~/.cache/tailor`), one JSON file per profile path. It
//! serves while the profile's entries are those it checked (the same `updated` stamp), the
//! machine has not rebooted since (the kernel's boot id) and it is younger than
//! [`REMEMBER_FOR`]. A cache that cannot be read or written costs a log line, never the
//! command.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tailor_cost::{Drift, Profile};
use tailor_spec::files;
use tracing::debug;

/// How long a drift check describes the machine: a shared VM's level moved 1.1-1.7x within
/// minutes on the AMD CI machine (docs/results/2026-12-03-amd-committed-profile.md), so an
/// hour is the most a remembered check is quoted for; `tailor search --recheck` times a new
/// one.
pub const REMEMBER_FOR: Duration = Duration::from_secs(3600);

const FORMAT_VERSION: u32 = 1;

/// One remembered check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Remembered {
    pub format_version: u32,
    /// The profile file, as given.
    pub profile: String,
    /// The profile's `updated` stamp when it was checked.
    pub profile_updated: String,
    /// The kernel's boot id when it was checked (empty where the OS has none).
    pub boot_id: String,
    /// Seconds since the Unix epoch when it was checked.
    pub checked_at_s: u64,
    pub drift: Drift,
}

impl Remembered {
    /// Seconds since the check.
    pub fn age_s(&self) -> u64 {
        now_s().saturating_sub(self.checked_at_s)
    }
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The cache folder for remembered checks, if one can be named.
pub fn cache_dir() -> Option<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env("TAILOR_CACHE_DIR")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("tailor")))
        .or_else(|| env("HOME").map(|d| d.join(".cache").join("tailor")))
        .map(|d| d.join("checks"))
}

/// The file a check of the profile at `path` is remembered in: its canonical path with
/// every character but letters, digits, `.` and `-` made `_`.
fn file_for(dir: &Path, path: &Path) -> PathBuf {
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let slug: String = canonical
        .display()
        .to_string()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!("{slug}.json"))
}

/// Remembers `drift`, a check of `profile` (the file at `path`) just made here.
pub fn remember(path: &Path, profile: &Profile, drift: &Drift) {
    let Some(dir) = cache_dir() else {
        return;
    };
    let record = Remembered {
        format_version: FORMAT_VERSION,
        profile: path.display().to_string(),
        profile_updated: profile.provenance.updated.clone(),
        boot_id: boot_id(),
        checked_at_s: now_s(),
        drift: drift.clone(),
    };
    let result = std::fs::create_dir_all(&dir)
        .map_err(|e| e.to_string())
        .and_then(|()| serde_json::to_vec_pretty(&record).map_err(|e| e.to_string()))
        .and_then(|bytes| {
            files::write_atomic(&file_for(&dir, path), &bytes).map_err(|e| e.to_string())
        });
    if let Err(e) = result {
        debug!(
            "the drift check was not remembered in {}: {e}",
            dir.display()
        );
    }
}

/// The check of the profile at `path` remembered on this machine, if it still describes
/// `profile` now (same entries, no reboot since, younger than [`REMEMBER_FOR`]).
pub fn recall(path: &Path, profile: &Profile) -> Option<Remembered> {
    let dir = cache_dir()?;
    let text = std::fs::read(file_for(&dir, path)).ok()?;
    let r: Remembered = serde_json::from_slice(&text)
        .map_err(|e| {
            debug!(
                "a remembered drift check of {} is unreadable: {e}",
                path.display()
            )
        })
        .ok()?;
    (r.format_version == FORMAT_VERSION
        && r.profile_updated == profile.provenance.updated
        && r.boot_id == boot_id()
        && r.age_s() <= REMEMBER_FOR.as_secs())
    .then_some(r)
}
