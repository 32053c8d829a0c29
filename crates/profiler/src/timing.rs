//! The timing method (after burn-bench and nn-Meter): warm up by time, sync before and
//! after every call, cycle inputs, repeat until the spread is small or a time cap is hit,
//! keep every sample, report the median with p10 and p90.

use std::time::{Duration, Instant};

/// How long and how precisely to time one operator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimingOptions {
    /// Warm-up, by time (wgpu also autotunes a new shape here).
    pub warmup: Duration,
    /// Calls timed at least, whatever the spread.
    pub min_samples: usize,
    /// Stop once `(p90 - p10) / median` is at or below this.
    pub target_spread: f64,
    /// Stop after this much timed work even if the spread is not met (the entry is then
    /// marked `capped`).
    pub max_time: Duration,
    /// Bytes the cycled copies of an operator's weights span (see [`crate::bench`]): well
    /// above the last-level cache (32 MiB on this EPYC; 2-16 MiB on phone SoCs).
    pub cycle_bytes: u64,
}

impl Default for TimingOptions {
    fn default() -> Self {
        Self {
            warmup: Duration::from_millis(150),
            min_samples: 10,
            target_spread: 0.05,
            max_time: Duration::from_secs(2),
            cycle_bytes: 96 << 20,
        }
    }
}

/// Every sample of one operator, in microseconds, and its summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    pub samples_us: Vec<f64>,
    pub median_us: f64,
    pub p10_us: f64,
    pub p90_us: f64,
    pub capped: bool,
}

impl Measurement {
    pub fn spread(&self) -> f64 {
        (self.p90_us - self.p10_us) / self.median_us
    }
}

/// Linear-interpolated percentile of sorted data, `q` in [0, 1].
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// `(median, p10, p90)` of samples.
pub fn summarize(samples: &[f64]) -> (f64, f64, f64) {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    (
        percentile(&s, 0.5),
        percentile(&s, 0.1),
        percentile(&s, 0.9),
    )
}

/// Times `call(i)` (the i-th call, to cycle inputs) with `sync` waiting for the device.
/// `call` returns whatever must stay alive until the sync (its outputs), so a lazy
/// backend cannot skip the work. The spread is checked every few samples on the most
/// recent window, so a slow start does not hold the run forever.
pub fn measure<T>(
    opts: &TimingOptions,
    mut call: impl FnMut(usize) -> T,
    mut sync: impl FnMut(),
) -> Measurement {
    sync();
    let warm = Instant::now();
    let mut i = 0usize;
    while i < 2 || warm.elapsed() < opts.warmup {
        let out = call(i);
        sync();
        drop(out);
        i += 1;
    }
    let mut samples: Vec<f64> = Vec::new();
    let mut spent = Duration::ZERO;
    let capped = loop {
        let t = Instant::now();
        let out = call(i);
        sync();
        let dt = t.elapsed();
        drop(out);
        i += 1;
        spent += dt;
        samples.push(dt.as_secs_f64() * 1e6);
        if samples.len() >= opts.min_samples && samples.len().is_multiple_of(5) {
            let window = &samples[samples.len().saturating_sub(50)..];
            let (m, p10, p90) = summarize(window);
            if (p90 - p10) / m <= opts.target_spread {
                break false;
            }
        }
        if spent >= opts.max_time && samples.len() >= 3 {
            break true;
        }
        if samples.len() >= 100_000 {
            break false;
        }
    };
    // Report the window the stopping rule judged (the most recent 50 samples at most).
    let window = &samples[samples.len().saturating_sub(50)..];
    let (median_us, p10_us, p90_us) = summarize(window);
    Measurement {
        samples_us: samples,
        median_us,
        p10_us,
        p90_us,
        capped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let s = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(percentile(&s, 0.5), 3.0);
        assert_eq!(percentile(&s, 0.0), 1.0);
        assert_eq!(percentile(&s, 0.25), 2.0);
        assert!((percentile(&[1.0, 2.0], 0.9) - 1.9).abs() < 1e-12);
        assert_eq!(summarize(&[5.0, 1.0, 3.0]), (3.0, 1.4, 4.6));
    }

    #[test]
    fn measure_syncs_every_call_and_cycles_inputs() {
        let opts = TimingOptions {
            warmup: Duration::from_millis(1),
            min_samples: 10,
            target_spread: 10.0,
            max_time: Duration::from_secs(5),
            ..TimingOptions::default()
        };
        let mut calls = Vec::new();
        let mut syncs = 0;
        let m = measure(&opts, |i| calls.push(i), || syncs += 1);
        // Calls are numbered consecutively (inputs cycle by index), one sync each, plus one before.
        assert!(calls.iter().enumerate().all(|(k, &i)| k == i));
        assert_eq!(syncs, calls.len() + 1);
        assert_eq!(
            m.samples_us.len(),
            10,
            "an easy target stops at the minimum"
        );
        assert!(!m.capped);
        assert!(m.p10_us <= m.median_us && m.median_us <= m.p90_us);
    }

    #[test]
    fn impossible_target_stops_at_the_cap() {
        let opts = TimingOptions {
            warmup: Duration::ZERO,
            min_samples: 5,
            target_spread: -1.0,
            max_time: Duration::from_millis(20),
            ..TimingOptions::default()
        };
        let m = measure(
            &opts,
            |_| std::thread::sleep(Duration::from_micros(200)),
            || {},
        );
        assert!(m.capped);
        assert!(m.samples_us.len() >= 5);
    }
}
