//! Where one priced operator's time comes from ([`Source`]), shared by the profiled model
//! and the edit's pricing.

use serde::{Deserialize, Serialize};

/// Where one operator's time comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The profile holds this exact shape.
    Measured,
    /// Between two profiled shapes of its family.
    Interpolated,
    /// Beyond the profiled shapes of its family.
    Extrapolated,
    /// No profiled shape of its kind: the roofline bound alone.
    Roofline,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Measured => "measured",
            Source::Interpolated => "interpolated",
            Source::Extrapolated => "extrapolated",
            Source::Roofline => "roofline",
        }
    }
}
