//! Reaching another device: push the static arm64 `tailor` and the space, run
//! `tailor profile` there (checkpointed after every session, as on the host), pull the
//! profile back. The device is reached through a [`Transport`]: `adb` for a phone, or a
//! local scratch folder run through `qemu-aarch64-static`, so the whole flow is tested
//! without a phone.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// What went wrong reaching a device or starting a binary.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// `--remote` names no transport tailor knows.
    #[error(
        "--remote `{0}`: expected `adb`, `adb:SERIAL` (a phone through Android's adb) or \
         `qemu[:DIR]` (the arm64 build under qemu-aarch64-static in a local folder)"
    )]
    UnknownTransport(String),
    /// A program the transport needs is not on PATH.
    #[error("no `{tool}` on PATH: {install}")]
    ToolMissing {
        tool: &'static str,
        install: &'static str,
    },
    /// A program could not be started (or this executable not located).
    #[error("running {what}: {cause}")]
    Start { what: String, cause: std::io::Error },
    /// A program ran and failed; `message` is the last line it wrote.
    #[error("`{command}` failed: {message}")]
    Failed { command: String, message: String },
    /// adb sees no device ready.
    #[error(
        "no device ready for adb{serial} ({why}): connect the phone by USB, enable USB \
         debugging and accept the prompt (`adb devices` lists it as `device`)"
    )]
    NoDevice { serial: String, why: String },
    /// The device is not aarch64.
    #[error("the device is {0}; the static build of tailor is for aarch64 only")]
    NotAarch64(String),
    /// A local file operation of the qemu transport failed.
    #[error("{what}: {cause}")]
    Local { what: String, cause: std::io::Error },
    /// A binary to push is missing or not an aarch64 executable.
    #[error("{}: {problem}{}", path.display(), how.map(|h| format!(". {h}")).unwrap_or_default())]
    Binary {
        path: PathBuf,
        problem: String,
        /// How to get the right one.
        how: Option<&'static str>,
    },
}

type Result<T> = std::result::Result<T, RemoteError>;

/// Where the arm64 build lands (scripts/build-arm64.sh).
pub const ARM64_BINARY: &str = "target/aarch64-unknown-linux-musl/release/tailor";

/// The program that runs this binary, when it cannot be started by itself: the qemu
/// transport sets it to the emulator, since under qemu-user an arm64 binary cannot start
/// another one (no binfmt registration) and tailor starts itself for memory measurements.
pub const EXEC_PREFIX_ENV: &str = "TAILOR_EXEC_PREFIX";

/// The program that must start this device's binaries ([`EXEC_PREFIX_ENV`]), if any.
pub fn exec_prefix() -> Option<std::ffi::OsString> {
    std::env::var_os(EXEC_PREFIX_ENV).filter(|p| !p.is_empty())
}

/// This tailor binary, ready to be given arguments (through [`EXEC_PREFIX_ENV`] if set).
pub fn self_command() -> Result<Command> {
    let exe = std::env::current_exe().map_err(|cause| RemoteError::Start {
        what: "this tailor (locating its executable)".into(),
        cause,
    })?;
    Ok(match exec_prefix() {
        Some(prefix) => {
            let mut c = Command::new(prefix);
            c.arg(exe);
            c
        }
        None => Command::new(exe),
    })
}

/// A device that runs programs in a working folder.
pub trait Transport {
    /// `adb (serial 1234)`, `qemu-aarch64-static in target/qemu-device`.
    fn describe(&self) -> String;
    /// A name for the device's profile file (`pixel-8`, `qemu-aarch64`).
    fn device_name(&self) -> Result<String>;
    /// The tool is there, a device is attached, and it runs aarch64 binaries.
    fn check(&self) -> Result<()>;
    /// Copies a local file into the working folder as `name`.
    fn push(&self, local: &Path, name: &str) -> Result<()>;
    /// Copies `name` from the working folder to a local file.
    fn pull(&self, name: &str, local: &Path) -> Result<()>;
    fn exists(&self, name: &str) -> Result<bool>;
    /// Runs the pushed `tailor` with `args` in the working folder; its stderr (logs and
    /// progress) streams to ours, its stdout is returned. `Err` only when it could not
    /// be run or the connection broke (see [`Transport::connected`]).
    fn run_tailor(&self, args: &[String]) -> Result<(bool, String)>;
    /// Whether the device still answers (after a failed run: disconnect or failure?).
    fn connected(&self) -> bool;
}

/// `adb`, `adb:SERIAL`, `qemu`, `qemu:DIR`.
pub fn parse(spec: &str) -> Result<Box<dyn Transport>> {
    let (kind, arg) = match spec.split_once(':') {
        Some((k, a)) => (k, Some(a)),
        None => (spec, None),
    };
    match kind {
        "adb" => Ok(Box::new(Adb {
            serial: arg.filter(|s| !s.is_empty()).map(str::to_string),
            dir: "/data/local/tmp/tailor".into(),
        })),
        "qemu" => Ok(Box::new(Qemu {
            dir: PathBuf::from(arg.unwrap_or("target/qemu-device")),
        })),
        _ => Err(RemoteError::UnknownTransport(spec.to_string())),
    }
}

/// How to get each binary the device runs, for errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceBinary {
    Tailor,
    LlamaBench,
}

impl DeviceBinary {
    fn how_to_get(self) -> &'static str {
        match self {
            DeviceBinary::Tailor => {
                "build the static arm64 tailor with scripts/build-arm64.sh (target \
                 aarch64-unknown-linux-musl), or name one with --remote-binary"
            }
            DeviceBinary::LlamaBench => {
                "name the device's llama-bench with --llama-bench: an Android NDK build of \
                 llama.cpp (docs/llama-cpp.md, \"On a phone\"), or for the qemu flow the \
                 static one from scripts/build-llama-bench.sh --arm64"
            }
        }
    }
}

/// Checks that `path` is an aarch64 ELF executable (what the device runs).
pub fn check_binary(path: &Path, what: DeviceBinary) -> Result<()> {
    let bad = |problem: String, how: Option<&'static str>| RemoteError::Binary {
        path: path.to_path_buf(),
        problem,
        how,
    };
    let bytes = std::fs::read(path).map_err(|e| bad(e.to_string(), Some(what.how_to_get())))?;
    if bytes.len() < 20 || &bytes[..4] != b"\x7fELF" {
        return Err(bad("not an ELF executable".into(), None));
    }
    let machine = u16::from_le_bytes([bytes[18], bytes[19]]);
    let name = match machine {
        0xB7 => return Ok(()),
        0x3E => "x86_64",
        0x28 => "32-bit ARM",
        0x03 => "x86",
        0xF3 => "RISC-V",
        _ => "another architecture",
    };
    Err(bad(
        format!(
            "built for {name}, but phones run aarch64: {}",
            what.how_to_get()
        ),
        None,
    ))
}

/// Single-quotes a word for a POSIX shell.
fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// A phone (or board) through Android's `adb`.
struct Adb {
    serial: Option<String>,
    dir: String,
}

impl Adb {
    fn command(&self) -> Command {
        let mut c = Command::new("adb");
        if let Some(s) = &self.serial {
            c.args(["-s", s]);
        }
        c
    }

    fn output(&self, args: &[&str]) -> Result<Output> {
        self.command().args(args).output().map_err(|cause| {
            if cause.kind() == ErrorKind::NotFound {
                RemoteError::ToolMissing {
                    tool: "adb",
                    install: "install Android's platform tools (Debian: apt-get install adb) \
                              and enable USB debugging on the phone",
                }
            } else {
                RemoteError::Start {
                    what: "adb".into(),
                    cause,
                }
            }
        })
    }

    /// Runs a shell command on the device; its stdout, or an error with adb's message.
    fn shell(&self, cmd: &str) -> Result<String> {
        let out = self.output(&["shell", cmd])?;
        if !out.status.success() {
            return Err(RemoteError::Failed {
                command: format!("adb shell {cmd}"),
                message: last_line(&out.stderr)
                    .unwrap_or_else(|| last_line(&out.stdout).unwrap_or_default()),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    fn path(&self, name: &str) -> String {
        format!("{}/{name}", self.dir)
    }
}

fn last_line(bytes: &[u8]) -> Option<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_string())
}

impl Transport for Adb {
    fn describe(&self) -> String {
        match &self.serial {
            Some(s) => format!("adb device {s}, folder {}", self.dir),
            None => format!("adb device, folder {}", self.dir),
        }
    }

    fn device_name(&self) -> Result<String> {
        let model = self.shell("getprop ro.product.model").unwrap_or_default();
        Ok(if model.is_empty() {
            "adb-device".into()
        } else {
            model
        })
    }

    fn check(&self) -> Result<()> {
        let out = self.output(&["get-state"])?;
        let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !out.status.success() || state != "device" {
            return Err(RemoteError::NoDevice {
                serial: self
                    .serial
                    .as_ref()
                    .map(|s| format!(" with serial {s}"))
                    .unwrap_or_default(),
                why: last_line(&out.stderr).unwrap_or(state),
            });
        }
        let arch = self.shell("uname -m")?;
        if arch != "aarch64" && arch != "arm64" {
            return Err(RemoteError::NotAarch64(arch));
        }
        self.shell(&format!("mkdir -p {}", quote(&self.dir)))?;
        Ok(())
    }

    fn push(&self, local: &Path, name: &str) -> Result<()> {
        let local_s = local.display().to_string();
        let out = self.output(&["push", &local_s, &self.path(name)])?;
        if !out.status.success() {
            return Err(RemoteError::Failed {
                command: format!("adb push {local_s}"),
                message: last_line(&out.stderr).unwrap_or_default(),
            });
        }
        Ok(())
    }

    fn pull(&self, name: &str, local: &Path) -> Result<()> {
        let local_s = local.display().to_string();
        let out = self.output(&["pull", &self.path(name), &local_s])?;
        if !out.status.success() {
            return Err(RemoteError::Failed {
                command: format!("adb pull {}", self.path(name)),
                message: last_line(&out.stderr).unwrap_or_default(),
            });
        }
        Ok(())
    }

    fn exists(&self, name: &str) -> Result<bool> {
        let p = quote(&self.path(name));
        Ok(self.shell(&format!("test -f {p} && echo yes || echo no"))? == "yes")
    }

    fn run_tailor(&self, args: &[String]) -> Result<(bool, String)> {
        let words: Vec<String> = args.iter().map(|a| quote(a)).collect();
        // llama-bench is pushed beside tailor for the llama.cpp engine.
        let cmd = format!(
            "cd {} && chmod 755 tailor && {{ [ ! -f llama-bench ] || chmod 755 llama-bench; }} \
             && ./tailor {}",
            quote(&self.dir),
            words.join(" ")
        );
        let mut c = self.command();
        c.args(["shell", &cmd]);
        run_streaming(c, "adb shell")
    }

    fn connected(&self) -> bool {
        self.output(&["get-state"]).is_ok_and(|o| {
            o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "device"
        })
    }
}

/// The arm64 build in a local folder under `qemu-aarch64-static`: the flow of a phone,
/// tested here (its timings mean nothing).
struct Qemu {
    dir: PathBuf,
}

const QEMU: &str = "qemu-aarch64-static";

impl Transport for Qemu {
    fn describe(&self) -> String {
        format!("{QEMU} in {}", self.dir.display())
    }

    fn device_name(&self) -> Result<String> {
        Ok("qemu-aarch64".into())
    }

    fn check(&self) -> Result<()> {
        match Command::new(QEMU).arg("--version").output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                return Err(RemoteError::Failed {
                    command: format!("{QEMU} --version"),
                    message: last_line(&o.stderr).unwrap_or_default(),
                });
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(RemoteError::ToolMissing {
                    tool: QEMU,
                    install: "install it (Debian: apt-get install qemu-user-static)",
                });
            }
            Err(cause) => {
                return Err(RemoteError::Start {
                    what: QEMU.into(),
                    cause,
                });
            }
        }
        std::fs::create_dir_all(&self.dir).map_err(|cause| RemoteError::Local {
            what: format!("creating {}", self.dir.display()),
            cause,
        })
    }

    fn push(&self, local: &Path, name: &str) -> Result<()> {
        let to = self.dir.join(name);
        copy(local, &to)
    }

    fn pull(&self, name: &str, local: &Path) -> Result<()> {
        let from = self.dir.join(name);
        copy(&from, local)
    }

    fn exists(&self, name: &str) -> Result<bool> {
        Ok(self.dir.join(name).is_file())
    }

    fn run_tailor(&self, args: &[String]) -> Result<(bool, String)> {
        let mut c = Command::new(QEMU);
        c.arg("./tailor")
            .args(args)
            .env(EXEC_PREFIX_ENV, QEMU)
            .current_dir(&self.dir);
        run_streaming(c, QEMU)
    }

    fn connected(&self) -> bool {
        self.dir.is_dir()
    }
}

/// Runs the device's tailor through `command` (started as `what`): its stderr streams to
/// ours, its stdout is returned with whether it succeeded.
fn run_streaming(mut command: Command, what: &str) -> Result<(bool, String)> {
    let out = command
        .stderr(Stdio::inherit())
        .output()
        .map_err(|cause| RemoteError::Start {
            what: what.into(),
            cause,
        })?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    ))
}

/// Copies a file for the qemu transport's push and pull.
fn copy(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|cause| RemoteError::Local {
            what: format!("copying {} to {}", from.display(), to.display()),
            cause,
        })
}

/// A file-name-safe slug: `Pixel 8 Pro` -> `pixel-8-pro`.
pub fn slug(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect::<String>()
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting_survives_odd_words() {
        assert_eq!(quote("--max-time"), "--max-time");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn remote_specs_parse_or_say_what_is_expected() {
        assert!(parse("adb").unwrap().describe().starts_with("adb device"));
        assert!(parse("adb:R58M123").unwrap().describe().contains("R58M123"));
        assert!(parse("qemu:/tmp/x").unwrap().describe().contains("/tmp/x"));
        let e = parse("ssh:phone").err().unwrap().to_string();
        assert!(e.contains("expected `adb`"), "{e}");
        assert_eq!(slug("Pixel 8 Pro"), "pixel-8-pro");
    }

    #[test]
    fn binaries_for_other_architectures_are_refused() {
        let exe = std::env::current_exe().unwrap();
        let e = check_binary(&exe, DeviceBinary::Tailor)
            .unwrap_err()
            .to_string();
        if cfg!(target_arch = "x86_64") {
            assert!(e.contains("built for x86_64"), "{e}");
        }
        let e = check_binary(Path::new("no/such/tailor"), DeviceBinary::Tailor)
            .unwrap_err()
            .to_string();
        assert!(e.contains("scripts/build-arm64.sh"), "{e}");
        let e = check_binary(&exe, DeviceBinary::LlamaBench)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--llama-bench") && e.contains("NDK"), "{e}");
    }
}
