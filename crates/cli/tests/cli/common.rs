//! Helpers: run the real binary, capture its streams, scratch folders.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts a clean failure: exit code 1, nothing on stdout, no panic, and stderr ending
    /// in exactly one `error: ` line (log lines may come before it). Returns that line.
    pub fn assert_clean_error(&self) -> &str {
        assert_eq!(
            self.code, 1,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        assert!(!self.stderr.contains("panicked"), "stderr: {}", self.stderr);
        assert!(self.stdout.is_empty(), "stdout: {}", self.stdout);
        let errors: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| l.starts_with("error: "))
            .collect();
        assert_eq!(errors.len(), 1, "stderr: {}", self.stderr);
        assert_eq!(
            self.stderr.trim_end().lines().last(),
            Some(errors[0]),
            "stderr: {}",
            self.stderr
        );
        errors[0]
    }

    pub fn json(&self) -> serde_json::Value {
        assert_eq!(self.code, 0, "stderr: {}", self.stderr);
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }
}

/// The repository root (tests use the shipped files).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn tailor(args: &[&str]) -> Run {
    tailor_in(&root(), args)
}

pub fn tailor_in(dir: &Path, args: &[&str]) -> Run {
    tailor_env(dir, args, &[])
}

/// `tailor_in` with extra environment variables (e.g. a PATH with a fake `adb`).
pub fn tailor_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_tailor"))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .env("NO_COLOR", "1")
        // Remembered drift checks stay in the test's own folder, not the user's cache.
        .env(
            "TAILOR_CACHE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cache-{}", std::process::id())),
        )
        .env_remove("RUST_LOG")
        .output()
        .expect("run tailor");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A fresh scratch folder under the target dir, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Self {
        let dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Self(dir)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).expect("write scratch file");
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
