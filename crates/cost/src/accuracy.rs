//! How well predictions match measurements: shares within a band, absolute percentage
//! errors, and Kendall's rank correlation (what a search relies on: the order).

use serde::{Deserialize, Serialize};

/// Agreement of predicted with measured values over a set of models.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    pub n: usize,
    /// Share of models whose prediction is within +-10% of the measurement, in [0, 1].
    pub within_10pct: f64,
    pub within_20pct: f64,
    /// Mean of |predicted - measured| / measured.
    pub mean_ape: f64,
    pub max_ape: f64,
    /// Median of measured / predicted: above 1, the model predicts too little.
    pub median_ratio: f64,
    /// Kendall's tau-b between the predicted and measured orders, in [-1, 1].
    pub kendall_tau: f64,
}

/// `None` without pairs or with a value that is not positive and finite.
pub fn accuracy(pairs: &[(f64, f64)]) -> Option<Accuracy> {
    if pairs.is_empty()
        || pairs
            .iter()
            .any(|&(p, m)| !(p.is_finite() && m.is_finite() && p > 0.0 && m > 0.0))
    {
        return None;
    }
    let n = pairs.len();
    let apes: Vec<f64> = pairs.iter().map(|&(p, m)| (p - m).abs() / m).collect();
    let share = |band: f64| apes.iter().filter(|&&e| e <= band).count() as f64 / n as f64;
    let median_ratio = median(pairs.iter().map(|&(p, m)| m / p).collect());
    let (x, y): (Vec<f64>, Vec<f64>) = pairs.iter().copied().unzip();
    Some(Accuracy {
        n,
        within_10pct: share(0.10 + 1e-12),
        within_20pct: share(0.20 + 1e-12),
        mean_ape: apes.iter().sum::<f64>() / n as f64,
        max_ape: apes.iter().copied().fold(0.0, f64::max),
        median_ratio,
        kendall_tau: kendall_tau_b(&x, &y),
    })
}

/// The median (the mean of the middle two for an even count); NaN when empty.
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Kendall's tau-b (ties in either variable handled); 1 for a single pair or none.
pub fn kendall_tau_b(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len().min(y.len());
    let (mut concordant, mut discordant, mut tie_x, mut tie_y) = (0i64, 0i64, 0i64, 0i64);
    for i in 0..n {
        for j in i + 1..n {
            let dx = x[i].total_cmp(&x[j]) as i64;
            let dy = y[i].total_cmp(&y[j]) as i64;
            match (dx, dy) {
                (0, 0) => {}
                (0, _) => tie_x += 1,
                (_, 0) => tie_y += 1,
                _ if dx == dy => concordant += 1,
                _ => discordant += 1,
            }
        }
    }
    let denom =
        (((concordant + discordant + tie_x) * (concordant + discordant + tie_y)) as f64).sqrt();
    if denom == 0.0 {
        1.0
    } else {
        (concordant - discordant) as f64 / denom
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kendall_tau_of_known_orders() {
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(kendall_tau_b(&x, &[10.0, 20.0, 30.0, 40.0, 50.0]), 1.0);
        assert_eq!(kendall_tau_b(&x, &[5.0, 4.0, 3.0, 2.0, 1.0]), -1.0);
        // One swapped neighbour pair of 5: (9 - 1) / 10.
        assert!((kendall_tau_b(&x, &[1.0, 3.0, 2.0, 4.0, 5.0]) - 0.8).abs() < 1e-12);
        // Ties (scipy.stats.kendalltau([1,2,2,3],[1,2,3,3]) = 0.8).
        let t = kendall_tau_b(&[1.0, 2.0, 2.0, 3.0], &[1.0, 2.0, 3.0, 3.0]);
        assert!((t - 0.8).abs() < 1e-12, "{t}");
    }

    #[test]
    fn accuracy_counts_bands_and_errors() {
        let pairs = [(100.0, 100.0), (95.0, 100.0), (85.0, 100.0), (50.0, 100.0)];
        let a = accuracy(&pairs).unwrap();
        assert_eq!(a.n, 4);
        assert_eq!(a.within_10pct, 0.5);
        assert_eq!(a.within_20pct, 0.75);
        assert!((a.mean_ape - (0.0 + 0.05 + 0.15 + 0.5) / 4.0).abs() < 1e-12);
        assert_eq!(a.max_ape, 0.5);
        assert_eq!(
            a.kendall_tau, 1.0,
            "all measured equal: tau-b over the predicted ties"
        );
        assert!(accuracy(&[]).is_none());
        assert!(accuracy(&[(1.0, 0.0)]).is_none());
    }
}
