//! The timing method (after burn-bench and nn-Meter): warm up by time, sync before and
//! after every call, cycle inputs, repeat until the spread is small or a time cap is hit,
//! keep every sample, report the median with p10 and p90.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use std::time::{Duration, Instant};

/// How long and how precisely to time one operator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimingOptions {
    /// Warm-up, by time (wgpu also autotunes a new shape here).
    pub warmup: Duration,
    /// Calls timed at least, whatever the spread.
    pub min_samples: usize,
    /// Timed work at least, whatever the spread; the statistics are taken over the most
    /// recent this-much of calls (and at least 50), so a session averages over the
    /// machine's sub-second swings instead of catching one instant of them.
    pub min_time: Duration,
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
            min_time: Duration::from_millis(200),
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
/// backend cannot skip the work. The spread is judged, and the result taken, on the most
/// recent window of samples (the last `min_time` of them, at least 50), so a slow start
/// does not hold the run forever.
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
    let min_time = opts.min_time.min(opts.max_time);
    let mut samples: Vec<f64> = Vec::new();
    // elapsed[k]: timed work before sample k, in microseconds (for the window).
    let mut elapsed: Vec<f64> = vec![0.0];
    let mut spent = Duration::ZERO;
    let mut next_check = opts.min_samples.max(5);
    let capped = loop {
        let t = Instant::now();
        let out = call(i);
        sync();
        let dt = t.elapsed();
        drop(out);
        i += 1;
        spent += dt;
        let us = dt.as_secs_f64() * 1e6;
        samples.push(us);
        elapsed.push(elapsed[elapsed.len() - 1] + us);
        // Checked every 5 samples, then every 5% more (sorting a window is not free).
        if samples.len() >= next_check && spent >= min_time {
            next_check = samples.len() + (samples.len() / 20).max(5);
            let (m, p10, p90) = summarize(&samples[window_start(&elapsed, min_time)..]);
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
    let (median_us, p10_us, p90_us) = summarize(&samples[window_start(&elapsed, min_time)..]);
    Measurement {
        samples_us: samples,
        median_us,
        p10_us,
        p90_us,
        capped,
    }
}

/// Times `n` workloads against each other, interleaved: `call(k, i)` is the `i`-th call
/// of workload `k`. After a warm-up of each, the session runs in cycles; a cycle visits
/// every workload once, in an order drawn from the cycle, and a visit is untimed calls
/// until they hold `min_time / 10` of work (at least one call; they bring back the
/// workload's own state: its weights in the caches as far as they fit, its buffers in the
/// allocator), then timed calls until the visit holds as much timed work (at least one
/// call). Timed calls then run in the state the workload keeps when it runs alone.
///
/// On a shared host the machine's speed changes from one second to the next (memory
/// bandwidth taken by neighbours): timed one after another, each workload catches its own
/// stretch of it, 4-6% apart from session to session on the 2-vCPU EPYC, uncorrelated
/// between neighbouring sessions. Interleaved, all workloads sample the same stretches,
/// so the order of their times holds from run to run.
///
/// The session stops once every workload has `min_samples` samples and `min_time` of
/// timed work and a spread `(p90 - p10) / median` at or below the target, or, capped, once
/// the timed work of all together reaches `n * max_time`. The statistics are over all of
/// a workload's timed calls.
pub fn measure_interleaved<T>(
    opts: &TimingOptions,
    n: usize,
    mut call: impl FnMut(usize, usize) -> T,
    mut sync: impl FnMut(),
) -> Vec<Measurement> {
    let mut calls = vec![0usize; n];
    let mut run = |k: usize, calls: &mut [usize]| -> Duration {
        let t = Instant::now();
        let out = call(k, calls[k]);
        sync();
        let dt = t.elapsed();
        drop(out);
        calls[k] += 1;
        dt
    };
    for k in 0..n {
        let warm = Instant::now();
        while calls[k] < 2 || warm.elapsed() < opts.warmup {
            run(k, &mut calls);
        }
    }
    let quantum = opts.min_time / 10;
    let min_time = opts.min_time.min(opts.max_time);
    let cap = opts.max_time * n as u32;
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut spent = vec![Duration::ZERO; n];
    let mut cycle = 0u64;
    let capped = loop {
        for k in shuffled(n, cycle) {
            // Untimed calls first, as much work as the visit will time (one call at least):
            // one call left a decode step after another model's visit 13-45% slower than
            // the same step timed alone, its weights not yet back in the caches.
            let mut warm = Duration::ZERO;
            let mut warm_calls = 0;
            while warm_calls < 1 || warm < quantum {
                warm += run(k, &mut calls);
                warm_calls += 1;
            }
            let mut visit = Duration::ZERO;
            while visit.is_zero() || visit < quantum {
                let dt = run(k, &mut calls);
                visit += dt;
                samples[k].push(dt.as_secs_f64() * 1e6);
            }
            spent[k] += visit;
        }
        cycle += 1;
        let enough = (0..n).all(|k| samples[k].len() >= opts.min_samples && spent[k] >= min_time);
        if enough
            && samples.iter().all(|s| {
                let (m, p10, p90) = summarize(s);
                (p90 - p10) / m <= opts.target_spread
            })
        {
            break false;
        }
        if spent.iter().sum::<Duration>() >= cap && samples.iter().all(|s| s.len() >= 3) {
            break true;
        }
        if samples.iter().any(|s| s.len() >= 100_000) {
            break false;
        }
    };
    samples
        .into_iter()
        .map(|s| {
            let (median_us, p10_us, p90_us) = summarize(&s);
            Measurement {
                samples_us: s,
                median_us,
                p10_us,
                p90_us,
                capped,
            }
        })
        .collect()
}

/// The indices `0..n` in an order drawn from `seed` (ChaCha8): the order in which a round
/// of timing visits its shapes or models, so the machine's drift over the round does not
/// follow any order of theirs (a family of shapes, a ranking under test).
pub fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
    order
}

/// First sample of the window: the most recent samples that add up to `min_time`, and
/// at least 50 (all of them when there are fewer). `elapsed` is the running sum, from 0.
fn window_start(elapsed: &[f64], min_time: Duration) -> usize {
    let n = elapsed.len() - 1;
    let total = elapsed[n];
    let want = min_time.as_secs_f64() * 1e6;
    // The last k with total - elapsed[k] >= want (elapsed is increasing).
    let by_time = elapsed
        .partition_point(|&e| total - e >= want)
        .saturating_sub(1);
    by_time.min(n.saturating_sub(50))
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
            min_time: Duration::ZERO,
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

    /// A session lasts `min_time` however easy the target.
    #[test]
    fn min_time_sets_the_session_length() {
        let opts = TimingOptions {
            warmup: Duration::ZERO,
            min_samples: 10,
            min_time: Duration::from_millis(30),
            target_spread: 10.0,
            max_time: Duration::from_secs(5),
            ..TimingOptions::default()
        };
        let m = measure(
            &opts,
            |_| std::thread::sleep(Duration::from_micros(200)),
            || {},
        );
        let total: f64 = m.samples_us.iter().sum();
        assert!(total >= 30_000.0, "timed {total} us");
        assert!(!m.capped);
    }

    #[test]
    fn window_is_the_last_min_time_and_at_least_50() {
        // 200 samples of 10 us: elapsed 0, 10, ..., 2000.
        let elapsed: Vec<f64> = (0..=200).map(|k| 10.0 * k as f64).collect();
        assert_eq!(window_start(&elapsed, Duration::from_micros(1000)), 100);
        assert_eq!(
            window_start(&elapsed, Duration::from_micros(100)),
            150,
            "at least 50"
        );
        assert_eq!(
            window_start(&elapsed, Duration::from_secs(1)),
            0,
            "all of them"
        );
        assert_eq!(window_start(&[0.0, 5.0], Duration::ZERO), 0);
    }

    /// Every workload is visited once per cycle, each visit untimed calls and then timed
    /// ones; the calls of one workload are numbered consecutively; the workloads' times
    /// come back apart.
    #[test]
    fn interleaved_sessions_visit_every_workload_each_cycle() {
        let opts = TimingOptions {
            warmup: Duration::ZERO,
            min_samples: 4,
            min_time: Duration::from_millis(5),
            target_spread: 10.0,
            max_time: Duration::from_secs(5),
            ..TimingOptions::default()
        };
        let mut log: Vec<(usize, usize)> = Vec::new();
        let m = measure_interleaved(
            &opts,
            3,
            |k, i| {
                log.push((k, i));
                std::thread::sleep(Duration::from_micros(100 * (k as u64 + 1)));
            },
            || {},
        );
        assert_eq!(m.len(), 3);
        for (k, mk) in m.iter().enumerate() {
            let of_k: Vec<usize> = log.iter().filter(|c| c.0 == k).map(|c| c.1).collect();
            assert!(of_k.iter().enumerate().all(|(j, &i)| j == i), "{of_k:?}");
            assert!(mk.samples_us.len() >= 4 && !mk.capped);
            assert!(mk.samples_us.iter().sum::<f64>() >= 5_000.0);
        }
        assert!(m[0].median_us < m[1].median_us && m[1].median_us < m[2].median_us);
        // The warm-up runs each workload alone (two calls each here), then the cycles
        // interleave them: the first three visits are the three workloads, and visits
        // alternate throughout.
        assert_eq!(&log[..6], &[(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]);
        let visits: Vec<usize> = log[6..]
            .chunk_by(|a, b| a.0 == b.0)
            .map(|v| v[0].0)
            .collect();
        let mut first: Vec<usize> = visits[..3].to_vec();
        first.sort_unstable();
        assert_eq!(first, [0, 1, 2], "{visits:?}");
        assert!(visits.len() >= 3 * 4, "{visits:?}");
        // Each visit starts with untimed calls: at least one per visit, so every workload
        // ran more calls after the warm-up than it has samples.
        for (k, mk) in m.iter().enumerate() {
            let after_warmup = log[6..].iter().filter(|c| c.0 == k).count();
            let visits_k = visits.iter().filter(|&&v| v == k).count();
            assert!(
                after_warmup >= mk.samples_us.len() + visits_k,
                "workload {k}: {after_warmup} calls, {} timed, {visits_k} visits",
                mk.samples_us.len()
            );
        }
    }

    #[test]
    fn interleaved_sessions_stop_at_the_shared_cap() {
        let opts = TimingOptions {
            warmup: Duration::ZERO,
            min_samples: 5,
            min_time: Duration::ZERO,
            target_spread: -1.0,
            max_time: Duration::from_millis(10),
            ..TimingOptions::default()
        };
        let m = measure_interleaved(
            &opts,
            2,
            |_, _| std::thread::sleep(Duration::from_micros(200)),
            || {},
        );
        assert!(m.iter().all(|x| x.capped && x.samples_us.len() >= 3));
        let total: f64 = m.iter().flat_map(|x| &x.samples_us).sum();
        assert!((20_000.0..200_000.0).contains(&total), "{total}");
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
