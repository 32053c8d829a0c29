//! Driving the user's own `llama-bench`: finding it, running one test on one or more GGUF
//! files, reading its JSON output into typed records, and the peak resident memory of the
//! run (read from `/proc`, where the OS has it, as each record arrives and every 10 ms).

use serde::Deserialize;
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Environment variable naming the llama-bench binary (after `--llama-bench`, before PATH).
pub const ENV_VAR: &str = "TAILOR_LLAMA_BENCH";

/// How llama-bench is told to run: fixed for a profile and recorded in its fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub threads: u32,
    /// `-fa`: `on`, `off` or `auto`.
    pub flash_attn: String,
    /// `-ctk`/`-ctv`: the KV cache's ggml type (`f16`, `q8_0`, ...).
    pub cache_type: String,
    /// Repetitions of each test in one run (`-r`).
    pub repetitions: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
            flash_attn: "auto".into(),
            cache_type: "f16".into(),
            repetitions: 10,
        }
    }
}

/// One llama-bench test: a prefill of `tokens` from an empty cache, or `tokens` decode
/// steps after `depth` tokens already in the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Test {
    Prefill { tokens: u64 },
    Decode { depth: u64, tokens: u64 },
}

impl Test {
    fn args(self) -> Vec<String> {
        match self {
            Test::Prefill { tokens } => {
                vec!["-p".into(), tokens.to_string(), "-n".into(), "0".into()]
            }
            Test::Decode { depth, tokens } => vec![
                "-p".into(),
                "0".into(),
                "-n".into(),
                tokens.to_string(),
                "-d".into(),
                depth.to_string(),
            ],
        }
    }

    /// Tokens the test's time covers (its time per token divides by these).
    pub fn tokens(self) -> u64 {
        match self {
            Test::Prefill { tokens } | Test::Decode { tokens, .. } => tokens,
        }
    }
}

/// One result line of `llama-bench -o json` (the fields tailor uses; the rest ignored).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Record {
    pub build_commit: String,
    pub build_number: i64,
    pub cpu_info: String,
    pub gpu_info: String,
    pub backends: String,
    pub model_filename: String,
    pub model_type: String,
    pub model_size: u64,
    pub model_n_params: u64,
    pub n_batch: u64,
    pub n_ubatch: u64,
    pub n_threads: u64,
    pub type_k: String,
    pub type_v: String,
    /// An int in current llama-bench (-1 auto, 0 off, 1 on), a bool in older ones.
    pub flash_attn: serde_json::Value,
    pub n_prompt: u64,
    pub n_gen: u64,
    pub n_depth: u64,
    pub samples_ns: Vec<u64>,
}

impl Record {
    /// Milliseconds of each repetition.
    pub fn samples_ms(&self) -> Vec<f64> {
        self.samples_ns.iter().map(|&n| n as f64 / 1e6).collect()
    }

    pub fn flash_attn(&self) -> String {
        match &self.flash_attn {
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(-1) => "auto".into(),
                Some(0) => "off".into(),
                Some(1) => "on".into(),
                _ => n.to_string(),
            },
            serde_json::Value::Bool(b) => if *b { "on" } else { "off" }.into(),
            other => other.to_string().trim_matches('"').to_string(),
        }
    }
}

/// The records of one run, and its peak resident memory where measurable.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub records: Vec<Record>,
    /// The llama-bench process's resident-set high-water mark (`VmHWM`), bytes; `None`
    /// where `/proc` does not tell (macOS, a remote device).
    pub peak_rss_bytes: Option<u64>,
}

/// llama-bench missing, failing or saying something tailor cannot read.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(
        "llama-bench not found ({0}): give --llama-bench PATH, set {ENV_VAR}, or put it on \
         PATH; scripts/build-llama-bench.sh builds the pinned version into target/llama.cpp/"
    )]
    NotFound(String),
    #[error("{}: cannot run: {cause}", program.display())]
    Spawn {
        program: PathBuf,
        cause: std::io::Error,
    },
    #[error(
        "{} {} failed ({status}): {stderr}",
        program.display(),
        args.join(" ")
    )]
    Failed {
        program: PathBuf,
        args: Vec<String>,
        status: String,
        stderr: String,
    },
    #[error("{}: unexpected output ({message}); is it llama.cpp's llama-bench?", program.display())]
    Output { program: PathBuf, message: String },
}

/// A llama-bench binary, maybe started through a prefix (an emulator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlamaBench {
    pub program: PathBuf,
    /// Run as `prefix... program args...` (e.g. `qemu-aarch64-static`).
    pub prefix: Vec<OsString>,
}

fn executable(p: &Path) -> bool {
    p.is_file()
}

impl LlamaBench {
    /// `explicit` (a `--llama-bench` flag), else `$TAILOR_LLAMA_BENCH`, else `llama-bench`
    /// on PATH.
    pub fn locate(explicit: Option<&Path>) -> Result<Self, BenchError> {
        let found = |program: PathBuf| LlamaBench {
            program,
            prefix: Vec::new(),
        };
        if let Some(p) = explicit {
            return if executable(p) {
                Ok(found(p.to_path_buf()))
            } else {
                Err(BenchError::NotFound(format!(
                    "{} is not a file",
                    p.display()
                )))
            };
        }
        if let Some(p) = std::env::var_os(ENV_VAR).filter(|p| !p.is_empty()) {
            let p = PathBuf::from(p);
            return if executable(&p) {
                Ok(found(p))
            } else {
                Err(BenchError::NotFound(format!(
                    "{ENV_VAR}={} is not a file",
                    p.display()
                )))
            };
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .map(|d| d.join("llama-bench"))
            .find(|p| executable(p))
            .map(found)
            .ok_or_else(|| BenchError::NotFound("not on PATH".into()))
    }

    /// The arguments of one run.
    pub fn args(models: &[&Path], test: Test, s: &Settings, warmup: bool) -> Vec<String> {
        let mut args = Vec::new();
        for m in models {
            args.push("-m".into());
            args.push(m.display().to_string());
        }
        args.extend(test.args());
        args.extend([
            "-r".into(),
            s.repetitions.to_string(),
            "-t".into(),
            s.threads.to_string(),
            "-fa".into(),
            s.flash_attn.clone(),
            "-ctk".into(),
            s.cache_type.clone(),
            "-ctv".into(),
            s.cache_type.clone(),
            "-o".into(),
            "json".into(),
        ]);
        if !warmup {
            args.push("--no-warmup".into());
        }
        args
    }

    /// Runs one test on `models` (each in turn, `s.repetitions` times) and reads the
    /// records; one record per model.
    pub fn run(
        &self,
        models: &[&Path],
        test: Test,
        s: &Settings,
        warmup: bool,
    ) -> Result<Run, BenchError> {
        let args = Self::args(models, test, s, warmup);
        let (stdout, peak) = self.exec(&args)?;
        let records = parse_output(&stdout).map_err(|e| BenchError::Output {
            program: self.program.clone(),
            message: e.0,
        })?;
        if records.len() != models.len() {
            return Err(BenchError::Output {
                program: self.program.clone(),
                message: format!("{} records for {} models", records.len(), models.len()),
            });
        }
        Ok(Run {
            records,
            peak_rss_bytes: peak,
        })
    }

    fn exec(&self, args: &[String]) -> Result<(String, Option<u64>), BenchError> {
        let mut cmd = match self.prefix.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(&self.program);
                c
            }
            None => Command::new(&self.program),
        };
        let mut child = cmd
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|cause| BenchError::Spawn {
                program: self.program.clone(),
                cause,
            })?;
        let mut out = child.stdout.take();
        let mut err = child.stderr.take();
        let status_path = PathBuf::from(format!("/proc/{}/status", child.id()));
        // llama-bench flushes each test's record while its model and context are still
        // loaded (llama-bench.cpp: `print_test`, `fflush`, then `llama_free`): the
        // high-water mark read as the record arrives is the run's peak even when the run
        // then exits between two polls of the loop below (a short run can).
        let reader = {
            let status_path = status_path.clone();
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let mut peak: Option<u64> = None;
                if let Some(o) = out.as_mut() {
                    let mut buf = [0u8; 8192];
                    loop {
                        match o.read(&mut buf) {
                            Ok(0) => break,
                            Ok(n) => {
                                if let Some(hwm) = read_hwm(&status_path) {
                                    peak = Some(peak.map_or(hwm, |p| p.max(hwm)));
                                }
                                bytes.extend_from_slice(&buf[..n]);
                            }
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                            Err(_) => break,
                        }
                    }
                }
                (String::from_utf8_lossy(&bytes).into_owned(), peak)
            })
        };
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(e) = err.as_mut() {
                let _ = e.read_to_string(&mut s);
            }
            s
        });
        let mut peak: Option<u64> = None;
        let status = loop {
            if let Some(hwm) = read_hwm(&status_path) {
                peak = Some(peak.map_or(hwm, |p| p.max(hwm)));
            }
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(cause) => {
                    return Err(BenchError::Spawn {
                        program: self.program.clone(),
                        cause,
                    });
                }
            }
        };
        let (stdout, at_output) = reader.join().unwrap_or_default();
        let peak = match (peak, at_output) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let stderr = err_reader.join().unwrap_or_default();
        if !status.success() {
            let tail: Vec<&str> = stderr.lines().rev().take(8).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(BenchError::Failed {
                program: self.program.clone(),
                args: args.to_vec(),
                status: status.to_string(),
                stderr: tail.join("\n"),
            });
        }
        // With a prefix (an emulator), the polled process is the emulator: still the run's.
        Ok((stdout, peak))
    }
}

/// `VmHWM` of a live process, bytes.
fn read_hwm(status: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(status).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Output of llama-bench that is not what tailor asked for; the message says what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadOutput(pub String);

/// The records of `llama-bench -o json` output: a JSON array of objects.
pub fn parse_output(stdout: &str) -> Result<Vec<Record>, BadOutput> {
    let start = stdout
        .find('[')
        .ok_or_else(|| BadOutput("no JSON array on stdout".to_string()))?;
    let records: Vec<Record> =
        serde_json::from_str(stdout[start..].trim_end()).map_err(|e| BadOutput(e.to_string()))?;
    for r in &records {
        if r.samples_ns.is_empty() || r.samples_ns.contains(&0) {
            return Err(BadOutput(format!(
                "{}: samples_ns {:?} has no timing",
                r.model_filename, r.samples_ns
            )));
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const SAMPLE: &str = r#"[
  {
    "build_commit": "0c1e57098",
    "build_number": 0,
    "cpu_info": "AMD EPYC 9B14",
    "gpu_info": "",
    "backends": "CPU",
    "model_filename": "/tmp/a.gguf",
    "model_type": "llama ?B Q4_0",
    "model_size": 1234,
    "model_n_params": 5678,
    "n_batch": 2048,
    "n_ubatch": 512,
    "n_threads": 2,
    "cpu_mask": "0x0",
    "cpu_strict": false,
    "poll": 50,
    "type_k": "f16",
    "type_v": "f16",
    "n_gpu_layers": 99,
    "flash_attn": -1,
    "n_prompt": 64,
    "n_gen": 0,
    "n_depth": 0,
    "test_time": "2026-12-02T06:00:00Z",
    "avg_ns": 2000000,
    "stddev_ns": 100000,
    "avg_ts": 32000.0,
    "stddev_ts": 10.0,
    "samples_ns": [ 2000000, 2100000, 1900000 ],
    "samples_ts": [ 32000, 30476, 33684 ]
  }
]
"#;

    #[test]
    fn reads_llama_bench_json() {
        let r = parse_output(SAMPLE).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].model_n_params, 5678);
        assert_eq!(r[0].samples_ms(), [2.0, 2.1, 1.9]);
        assert_eq!(r[0].flash_attn(), "auto");
    }

    #[test]
    fn refuses_what_is_not_llama_bench_output() {
        assert!(
            parse_output("usage: ...")
                .unwrap_err()
                .0
                .contains("no JSON")
        );
        assert!(parse_output("[{\"a\": 1}]").is_err());
        let zero = SAMPLE.replace("[ 2000000, 2100000, 1900000 ]", "[ ]");
        assert!(parse_output(&zero).unwrap_err().0.contains("no timing"));
    }

    #[test]
    fn arguments_name_the_test() {
        let s = Settings {
            threads: 2,
            flash_attn: "auto".into(),
            cache_type: "f16".into(),
            repetitions: 3,
        };
        let a = LlamaBench::args(
            &[Path::new("m.gguf")],
            Test::Decode {
                depth: 120,
                tokens: 16,
            },
            &s,
            false,
        );
        assert_eq!(
            a.join(" "),
            "-m m.gguf -p 0 -n 16 -d 120 -r 3 -t 2 -fa auto -ctk f16 -ctv f16 -o json --no-warmup"
        );
    }

    #[test]
    fn a_missing_binary_says_how_to_get_one() {
        let e = LlamaBench::locate(Some(Path::new("/nonexistent/llama-bench"))).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("--llama-bench PATH") && msg.contains("scripts/build-llama-bench.sh"),
            "{msg}"
        );
    }
}
