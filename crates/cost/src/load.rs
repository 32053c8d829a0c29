//! Was the machine busy with something else? The CPUs' time counters (`/proc/stat`) and
//! this process's (`/proc/self/stat`) read around a timing session tell what share of the
//! CPUs other processes and the hypervisor took meanwhile. Linux and Android; elsewhere
//! every reading is `None`.

/// CPU time in clock ticks: of the watched CPUs (`/proc/stat`) and of this process
/// (`/proc/self/stat`: all its threads, and the children it has waited for, so that a
/// benchmark run as a child process, llama-bench, counts as its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ticks {
    /// user, nice, system, irq, softirq.
    pub busy: u64,
    /// idle, iowait.
    pub idle: u64,
    pub steal: u64,
    /// This process's user and system time, and its waited-for children's.
    pub own: u64,
}

impl Ticks {
    /// Clock ticks (all watched CPUs together) an interval must span to be judged: at the
    /// kernel's usual 100 Hz, 100 ms of two CPUs. A shorter one is a handful of ticks, and
    /// one tick of another process would read as a large share.
    pub const MIN_TICKS: u64 = 20;

    /// Over the interval from `self` to `later`: the share of the CPUs' time other
    /// processes used (busy time less this process's own) and the share stolen by the
    /// hypervisor. `None` when the interval spans fewer than [`Ticks::MIN_TICKS`].
    pub fn shares(&self, later: &Ticks) -> Option<(f64, f64)> {
        let busy = later.busy.saturating_sub(self.busy);
        let idle = later.idle.saturating_sub(self.idle);
        let steal = later.steal.saturating_sub(self.steal);
        let own = later.own.saturating_sub(self.own);
        if busy + idle + steal < Self::MIN_TICKS {
            return None;
        }
        let total = (busy + idle + steal) as f64;
        let other = busy.saturating_sub(own) as f64 / total;
        Some((
            other.clamp(0.0, 1.0),
            (steal as f64 / total).clamp(0.0, 1.0),
        ))
    }
}

/// Sums the `cpuN` lines of `/proc/stat` text for `cpus` (the `cpu` line when `cpus` is
/// empty): busy, idle and steal ticks. `None` when a needed line is missing.
pub fn parse_proc_stat(stat: &str, cpus: &[u32]) -> Option<(u64, u64, u64)> {
    let wanted: Vec<String> = if cpus.is_empty() {
        vec!["cpu".into()]
    } else {
        cpus.iter().map(|c| format!("cpu{c}")).collect()
    };
    let mut sums = (0u64, 0u64, 0u64);
    for name in &wanted {
        let line = stat
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name.as_str()))?;
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .map(|x| x.parse().ok())
            .collect::<Option<_>>()?;
        let at = |i: usize| v.get(i).copied().unwrap_or(0);
        if v.len() < 4 {
            return None;
        }
        // user nice system idle iowait irq softirq steal (guest time is inside user).
        sums.0 += at(0) + at(1) + at(2) + at(5) + at(6);
        sums.1 += at(3) + at(4);
        sums.2 += at(7);
    }
    Some(sums)
}

/// utime + stime + cutime + cstime of `/proc/self/stat` text (fields 14 to 17; the command
/// name in parentheses may hold spaces, so fields are counted after its closing
/// parenthesis).
pub fn parse_self_stat(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, at index 11.
    (11..15).map(|i| f.get(i)?.parse::<u64>().ok()).sum()
}

/// The watched CPUs' counters and this process's (with its waited-for children), now;
/// `None` where `/proc` does not tell.
pub fn read(cpus: &[u32]) -> Option<Ticks> {
    let (busy, idle, steal) = parse_proc_stat(&std::fs::read_to_string("/proc/stat").ok()?, cpus)?;
    let own = parse_self_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
    Some(Ticks {
        busy,
        idle,
        steal,
        own,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_shares_come_from_proc_stat_less_this_process() {
        let stat = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 60 0 30 380 30 0 0 0 0 0\n\
                    cpu1 40 0 20 420 20 0 0 0 0 0\nintr 1 2 3\n";
        assert_eq!(parse_proc_stat(stat, &[]), Some((150, 850, 0)));
        assert_eq!(parse_proc_stat(stat, &[1]), Some((60, 440, 0)));
        assert_eq!(parse_proc_stat(stat, &[0, 1]), Some((150, 850, 0)));
        assert_eq!(parse_proc_stat(stat, &[2]), None);
        assert_eq!(parse_proc_stat("cpu  a b c d\n", &[]), None);
        // The command name may hold spaces and parentheses.
        let own = "1234 (tai lor) x) R 1 2 3 4 5 6 7 8 9 10 70 30 4 6 20 0 3 0 9 9";
        assert_eq!(
            parse_self_stat(own),
            Some(110),
            "its own time and its children's"
        );
        assert_eq!(parse_self_stat("garbage"), None);

        // 200 ticks passed on the CPUs: this process used 100 of the 150 busy ones, another
        // 50, and the hypervisor stole 20.
        let before = Ticks::default();
        let after = Ticks {
            busy: 150,
            idle: 30,
            steal: 20,
            own: 100,
        };
        let (other, steal) = before.shares(&after).unwrap();
        assert!((other - 0.25).abs() < 1e-12 && (steal - 0.10).abs() < 1e-12);
        assert!(crate::Conditions::is_loaded(Some(other), Some(steal)));
        // Alone on the machine: nothing but its own time.
        let alone = Ticks { own: 150, ..after };
        let (other, _) = before.shares(&Ticks { steal: 0, ..alone }).unwrap();
        assert_eq!(other, 0.0);
        assert!(!crate::Conditions::is_loaded(Some(other), Some(0.0)));
        assert_eq!(before.shares(&before), None);
        // Too short to judge: 10 ticks, 5 of them another process's.
        let short = Ticks {
            busy: 10,
            idle: 0,
            steal: 0,
            own: 5,
        };
        assert_eq!(before.shares(&short), None);
    }
}
