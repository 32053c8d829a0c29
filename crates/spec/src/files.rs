//! File errors that name the file, line and key; source locations; atomic writes.
//!
//! Every tailor crate reports bad input through [`FileError`], so a user always sees
//! `path:line: key: what is wrong`.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

/// An error about a file a user gave or asked for.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{}: cannot read: {cause}", path.display())]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{}: cannot write: {cause}", path.display())]
    Write {
        path: PathBuf,
        cause: std::io::Error,
    },
    /// Malformed text, or a value of the wrong type or an unknown/missing key.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// Well-formed, but a rule is broken.
    #[error("{}{}: `{key}`: {message}", path.display(), Line(*line))]
    Invalid {
        path: PathBuf,
        /// 1-based line of the key, when the key is written in the file.
        line: Option<usize>,
        key: String,
        message: String,
    },
}

struct Line(Option<usize>);

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(l) => write!(f, ":{l}"),
            None => Ok(()),
        }
    }
}

impl FileError {
    /// Builds [`FileError::Invalid`] for a TOML file, locating `key` (dotted path) in `src`.
    pub fn invalid_toml(path: &Path, src: &str, key: &str, message: impl Into<String>) -> Self {
        FileError::Invalid {
            path: path.to_path_buf(),
            line: toml_key_line(src, key),
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// Builds [`FileError::Invalid`] for a JSON file, locating `key` in `src`.
    pub fn invalid_json(path: &Path, src: &str, key: &str, message: impl Into<String>) -> Self {
        FileError::Invalid {
            path: path.to_path_buf(),
            line: json_key_line(src, key),
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// Converts a TOML parse/deserialise error into one naming the file and line.
    pub fn from_toml(path: &Path, src: &str, err: &toml::de::Error) -> Self {
        let (line, column) = err.span().map(|s| line_col(src, s.start)).unwrap_or((1, 1));
        FileError::Syntax {
            path: path.to_path_buf(),
            line,
            column,
            message: err.message().trim().to_string(),
        }
    }

    /// Converts a JSON parse/deserialise error into one naming the file and line.
    pub fn from_json(path: &Path, err: &serde_json::Error) -> Self {
        FileError::Syntax {
            path: path.to_path_buf(),
            line: err.line().max(1),
            column: err.column().max(1),
            message: strip_json_position(&err.to_string()),
        }
    }
}

/// serde_json appends " at line L column C"; the location is already in the error.
fn strip_json_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// 1-based line and column of a byte offset.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let before = &src.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = offset
        - before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1)
        + 1;
    (line, column)
}

/// Line of a dotted key (`table.sub.key`) in a TOML document, by a light scan of table
/// headers and `key =` lines; `None` if the key is not written (a default is in force).
pub fn toml_key_line(src: &str, dotted: &str) -> Option<usize> {
    let (table, key) = match dotted.rsplit_once('.') {
        Some((t, k)) => (t, k),
        None => ("", dotted),
    };
    let mut current = String::new();
    let mut table_line = None;
    for (i, raw) in src.lines().enumerate() {
        let line = raw.trim();
        if let Some(header) = line.strip_prefix('[') {
            let header = header.trim_start_matches('[');
            let name = header.split(']').next().unwrap_or("").trim();
            current = name.replace([' ', '"'], "");
            if current == table {
                table_line = Some(i + 1);
            }
            continue;
        }
        let Some((k, _)) = line.split_once('=') else {
            continue;
        };
        let k = k.trim().trim_matches('"');
        let full = if current.is_empty() {
            k.to_string()
        } else {
            format!("{current}.{k}")
        };
        if full == dotted || (current == table && k == key) {
            return Some(i + 1);
        }
    }
    // The key is absent: point at its table, if that is written.
    table_line
}

/// Line of the first `"key":` in a JSON document.
pub fn json_key_line(src: &str, key: &str) -> Option<usize> {
    let needle = format!("\"{key}\"");
    let mut from = 0;
    while let Some(pos) = src[from..].find(&needle) {
        let at = from + pos;
        let rest = src[at + needle.len()..].trim_start();
        if rest.starts_with(':') {
            return Some(line_col(src, at).0);
        }
        from = at + needle.len();
    }
    None
}

/// Reads a file to a string, naming it on failure.
pub fn read_to_string(path: &Path) -> Result<String, FileError> {
    std::fs::read_to_string(path).map_err(|cause| FileError::Read {
        path: path.to_path_buf(),
        cause,
    })
}

/// A TOML file with a `format_version` key: every versioned file tailor reads (spec,
/// space, device, burn and llama.cpp profiles) is parsed, version-checked, serialised and
/// saved through [`parse_versioned`], [`to_toml`] and [`save_toml`], so the error messages
/// and the atomic, never-a-placeholder save are the same for all of them.
pub trait Versioned: serde::de::DeserializeOwned + serde::Serialize {
    /// The version this build reads and writes.
    const FORMAT_VERSION: u32;
    /// What a version error calls the files ("profiles", "llama.cpp profiles").
    const KIND: &'static str;
    /// The version the file says it is.
    fn format_version(&self) -> u32;
}

/// Parses `src` (the text of `path`) as `T` and checks its `format_version`; the errors name
/// the file, the line and the key.
pub fn parse_versioned<T: Versioned>(path: &Path, src: &str) -> Result<T, FileError> {
    let value: T = toml::from_str(src).map_err(|e| FileError::from_toml(path, src, &e))?;
    if value.format_version() != T::FORMAT_VERSION {
        return Err(FileError::invalid_toml(
            path,
            src,
            "format_version",
            format!(
                "version {} is not supported; this build reads {} of version {}",
                value.format_version(),
                T::KIND,
                T::FORMAT_VERSION
            ),
        ));
    }
    Ok(value)
}

/// `value` as pretty TOML, or why it cannot be written as TOML.
pub fn to_toml<T: serde::Serialize>(value: &T) -> Result<String, toml::ser::Error> {
    toml::to_string_pretty(value)
}

/// Serialises `value` as pretty TOML and writes it to `path` atomically
/// ([`write_atomic`]); a value that cannot be written as TOML is an error naming the file,
/// and the file is left as it was (never overwritten with a placeholder).
pub fn save_toml<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), FileError> {
    let text = toml::to_string_pretty(value).map_err(|e| FileError::Write {
        path: path.to_path_buf(),
        cause: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("cannot be written as TOML: {e}"),
        ),
    })?;
    write_atomic(path, text.as_bytes())
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, flushed to
/// disk, then renamed over the target. A reader sees the old file or the new one, never
/// a torn one; an interrupted write leaves the old file in place. Creates parent folders.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let err = |cause| FileError::Write {
        path: path.to_path_buf(),
        cause,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(err)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(err)
}

/// One writer per file or folder: an advisory lock (`flock` on Unix, `LockFileEx` on
/// Windows) on a hidden file beside the target, held until dropped and released by the
/// system when the process dies (a `kill -9` leaves no stale lock). The lock file says who
/// holds it (pid, command, since when), for the message a second writer gets.
#[derive(Debug)]
pub struct Lock {
    _file: std::fs::File,
    path: PathBuf,
}

/// A lock that could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "{}: another tailor is writing it ({holder}); wait for it to finish, or leave out \
         --no-wait to wait for it",
        target.display()
    )]
    Busy { target: PathBuf, holder: String },
    #[error("{}: cannot take the lock: {cause}", path.display())]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
}

impl Lock {
    /// The lock of a file: `.NAME.lock` in the file's folder.
    pub fn lock_path_of_file(target: &Path) -> PathBuf {
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out".into());
        dir.join(format!(".{name}.lock"))
    }

    /// Locks the file `target` (which need not exist). When another process holds it:
    /// with `wait`, calls `on_wait` with who holds it and blocks until it is released;
    /// without, fails with [`LockError::Busy`].
    pub fn file(
        target: &Path,
        wait: bool,
        on_wait: &mut dyn FnMut(&str),
    ) -> Result<Lock, LockError> {
        Self::take(Self::lock_path_of_file(target), target, wait, on_wait)
    }

    /// Locks the folder `dir` (created if missing): `.tailor.lock` inside it.
    pub fn folder(
        dir: &Path,
        wait: bool,
        on_wait: &mut dyn FnMut(&str),
    ) -> Result<Lock, LockError> {
        std::fs::create_dir_all(dir).map_err(|cause| LockError::Io {
            path: dir.to_path_buf(),
            cause,
        })?;
        Self::take(dir.join(".tailor.lock"), dir, wait, on_wait)
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn take(
        path: PathBuf,
        target: &Path,
        wait: bool,
        on_wait: &mut dyn FnMut(&str),
    ) -> Result<Lock, LockError> {
        let io = |cause| LockError::Io {
            path: path.clone(),
            cause,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path)
                    .ok()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "another process".into());
                if !wait {
                    return Err(LockError::Busy {
                        target: target.to_path_buf(),
                        holder,
                    });
                }
                on_wait(&holder);
                file.lock().map_err(io)?;
            }
            Err(std::fs::TryLockError::Error(cause)) => return Err(io(cause)),
        }
        let command: Vec<String> = std::env::args().collect();
        let who = format!(
            "pid {}, `{}`, since {}\n",
            std::process::id(),
            command.join(" "),
            utc_now_iso()
        );
        file.set_len(0).map_err(io)?;
        file.write_all(who.as_bytes()).map_err(io)?;
        Ok(Lock { _file: file, path })
    }
}

/// UTC now as `(year, month, day, hour, minute, second)` (no time-zone database needed).
pub fn utc_now() -> (i64, u32, u32, u32, u32, u32) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    utc_from_unix(secs)
}

/// Civil UTC date and time of a Unix time (Howard Hinnant's `civil_from_days`).
pub fn utc_from_unix(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    let rem = rem as u32;
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// UTC now as ISO 8601, `2026-11-24T12:00:00Z`.
pub fn utc_now_iso() -> String {
    let (y, m, d, h, mi, s) = utc_now();
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value TOML cannot hold is an error naming the file, and the file keeps its text.
    #[test]
    fn a_value_that_is_not_toml_is_refused_and_the_file_kept() {
        let dir = std::env::temp_dir().join(format!("tailor-save-{}", std::process::id()));
        let path = dir.join("p.toml");
        write_atomic(&path, b"format_version = 1\n").unwrap();
        // A bare number is no TOML document.
        let e = save_toml(&path, &42u32).unwrap_err().to_string();
        assert!(
            e.contains("p.toml") && e.contains("cannot be written as TOML"),
            "{e}"
        );
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "format_version = 1\n"
        );
        let table: std::collections::BTreeMap<&str, u32> = [("format_version", 2)].into();
        save_toml(&path, &table).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "format_version = 2\n"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn one_writer_per_file_and_folder() {
        let dir = std::env::temp_dir().join(format!("tailor-lock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let target = dir.join("p.toml");
        let mut never = |_: &str| panic!("must not wait");
        let held = Lock::file(&target, false, &mut never).unwrap();
        assert_eq!(held.path(), dir.join(".p.toml.lock"));
        // flock locks are per open file: a second one conflicts even in this process.
        let e = Lock::file(&target, false, &mut never).unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(&e, LockError::Busy { holder, .. }
                if holder.starts_with(&format!("pid {}", std::process::id()))),
            "{msg}"
        );
        assert!(
            msg.contains("another tailor is writing it") && msg.contains("p.toml"),
            "{msg}"
        );
        drop(held);
        let again = Lock::file(&target, false, &mut never).unwrap();
        drop(again);
        // A folder's lock lives inside it and creates it.
        let out = dir.join("out");
        let f = Lock::folder(&out, false, &mut never).unwrap();
        assert!(out.join(".tailor.lock").is_file());
        assert!(Lock::folder(&out, false, &mut never).is_err());
        drop(f);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn civil_dates() {
        assert_eq!(utc_from_unix(0), (1970, 1, 1, 0, 0, 0));
        // 2024-02-29T12:34:56Z
        assert_eq!(utc_from_unix(1_709_210_096), (2024, 2, 29, 12, 34, 56));
    }

    #[test]
    fn locates_toml_keys() {
        let src = "format_version = 1\n\n[model]\nhidden_size = 64\n  num_heads=4\n[workload]\nprompt = 8\n";
        assert_eq!(toml_key_line(src, "format_version"), Some(1));
        assert_eq!(toml_key_line(src, "model.hidden_size"), Some(4));
        assert_eq!(toml_key_line(src, "model.num_heads"), Some(5));
        assert_eq!(toml_key_line(src, "workload.prompt"), Some(7));
        // Absent key: its table's header.
        assert_eq!(toml_key_line(src, "model.head_dim"), Some(3));
        assert_eq!(toml_key_line(src, "nothing"), None);
    }

    #[test]
    fn locates_json_keys() {
        let src = "{\n  \"model_type\": \"llama\",\n  \"hidden_size\": 64\n}";
        assert_eq!(json_key_line(src, "hidden_size"), Some(3));
        assert_eq!(json_key_line(src, "llama"), None);
    }

    #[test]
    fn line_and_column() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }

    #[test]
    fn atomic_write_replaces() {
        let dir = std::env::temp_dir().join(format!("tailor-atomic-{}", std::process::id()));
        let path = dir.join("sub/x.txt");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        let leftovers = std::fs::read_dir(dir.join("sub")).unwrap().count();
        assert_eq!(leftovers, 1);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
