//! What tailor leaves for people and for programs: pure functions from typed results to
//! files and text.
//!
//! - [`accounting`]: one architecture's exact counts (`tailor spec`).
//! - [`export`]: a spec ready for pre-training (`spec.toml`, `config.json`, `MODEL_CARD.md`).
//! - [`search`]: a search run's report (`report.md` beside SVG plots).
//! - [`predicted`]: one model's predicted cost (`tailor predict`, table and `--json`).
//! - [`measured`]: what a whole-model measurement prints (`tailor measure --json`).
//! - [`validation`]: predictions checked against whole models (`validate.json`,
//!   `validate.csv`, `calibration.svg`).
//! - [`plot`], [`fmt`]: SVG plots, human-readable numbers and aligned tables.
//!
//! Every file is written atomically ([`tailor_spec::files::write_atomic`]); every file that
//! is read back is read by the type that wrote it.

pub mod accounting;
pub mod export;
pub mod fmt;
pub mod measured;
pub mod plot;
pub mod predicted;
pub mod profile;
pub mod search;
pub mod validation;

use std::path::{Path, PathBuf};
use tailor_spec::files::{FileError, write_atomic};

pub use export::{Card, Chosen, CostKind, CostSource, Exported, Flavor, export};
pub use measured::{
    ChainReport, ChainRow, EditMeasured, EditReport, MeasureReport, MemoryReport, MemorySource,
    Timed,
};

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("{}: drawing the plot: {message}", path.display())]
    Plot { path: PathBuf, message: String },
    /// (`error`, not `source`: the message carries it, and anyhow's chain must not print
    /// it twice.)
    #[error("{what}: {error}")]
    Json {
        what: String,
        error: serde_json::Error,
    },
    #[error(
        "{}: format_version {found}, this build reads {expected}: re-run the command that \
         wrote it (`tailor validate`, `tailor run --check`) to write it again",
        path.display()
    )]
    Version {
        path: PathBuf,
        found: String,
        expected: u32,
    },
}

/// Writes `value` as pretty JSON with a final newline, atomically.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), ReportError> {
    let mut text = serde_json::to_string_pretty(value).map_err(|error| ReportError::Json {
        what: path.display().to_string(),
        error,
    })?;
    text.push('\n');
    Ok(write_atomic(path, text.as_bytes())?)
}

/// Reads a JSON file by the type that wrote it; errors name the file, line and column.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ReportError> {
    let text = tailor_spec::files::read_to_string(path)?;
    Ok(serde_json::from_str(&text).map_err(|e| FileError::from_json(path, &e))?)
}
