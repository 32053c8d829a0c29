//! Human-readable numbers and aligned tables for stdout.

/// `1234567` -> `1,234,567`.
pub fn thousands(n: u128) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// SI-scaled value with a unit: `si(1.5e9, "FLOP")` -> `1.50 GFLOP`.
pub fn si(value: f64, unit: &str) -> String {
    let prefixes = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")];
    for (scale, p) in prefixes {
        if value.abs() >= scale {
            return format!("{:.2} {p}{unit}", value / scale);
        }
    }
    format!("{value:.0} {unit}")
}

/// Bytes in binary units: `bytes(1536)` -> `1.50 KiB`.
pub fn bytes(value: f64) -> String {
    let prefixes = [
        (1u64 << 40, "TiB"),
        (1 << 30, "GiB"),
        (1 << 20, "MiB"),
        (1 << 10, "KiB"),
    ];
    for (scale, p) in prefixes {
        if value >= scale as f64 {
            return format!("{:.2} {p}", value / scale as f64);
        }
    }
    format!("{value:.0} B")
}

/// UTC now as `YYYYMMDD-HHMMSS`, for run folder names.
pub fn timestamp() -> String {
    let (y, m, d, h, mi, s) = tailor_spec::files::utc_now();
    format!("{y:04}{m:02}{d:02}-{h:02}{mi:02}{s:02}")
}

/// The header of an accuracy table: a first column naming the quantity, then
/// [`accuracy_cells`].
pub const ACCURACY_HEADER: [&str; 7] = [
    "",
    "within 10%",
    "within 20%",
    "mean |err|",
    "max |err|",
    "measured/predicted",
    "Kendall tau",
];

/// One quantity's row of an accuracy table after its name.
pub fn accuracy_cells(a: &tailor_cost::Accuracy) -> Vec<String> {
    vec![
        format!("{:.0}%", 100.0 * a.within_10pct),
        format!("{:.0}%", 100.0 * a.within_20pct),
        format!("{:.1}%", 100.0 * a.mean_ape),
        format!("{:.1}%", 100.0 * a.max_ape),
        format!("{:.3}", a.median_ratio),
        format!("{:.3}", a.kendall_tau),
    ]
}

/// A table with a header row; numeric-looking cells are right-aligned.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Self {
            rows: vec![header.iter().map(|s| s.to_string()).collect()],
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self, indent: usize) -> String {
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..cols)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let is_numeric = |cell: &str| {
            cell.chars()
                .next()
                .is_some_and(|ch| ch.is_ascii_digit() || ch == '-' || ch == '+')
        };
        // A column whose body is numeric is right-aligned, header included.
        let right: Vec<bool> = (0..cols)
            .map(|c| {
                c > 0
                    && self.rows[1..]
                        .iter()
                        .any(|r| r.get(c).is_some_and(|s| is_numeric(s)))
            })
            .collect();
        let mut out = String::new();
        for row in &self.rows {
            let mut line = " ".repeat(indent);
            for (c, cell) in row.iter().enumerate() {
                let pad = " ".repeat(widths[c].saturating_sub(cell.chars().count()));
                if c > 0 {
                    line.push_str("  ");
                }
                if right[c] {
                    line.push_str(&pad);
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    line.push_str(&pad);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(thousands(1_100_048_384), "1,100,048,384");
        assert_eq!(thousands(999), "999");
        assert_eq!(si(1.5e9, "FLOP"), "1.50 GFLOP");
        assert_eq!(bytes(1536.0), "1.50 KiB");
        let mut t = Table::new(&["a", "n"]);
        t.row(vec!["x".into(), "10".into()]);
        assert_eq!(t.render(0), "a   n\nx  10\n");
        let mut t = Table::new(&["name", "x"]);
        t.row(vec!["ab".into(), "y".into()]);
        assert_eq!(t.render(2), "  name  x\n  ab    y\n");
    }
}
