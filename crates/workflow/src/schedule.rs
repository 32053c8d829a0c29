//! How the models of a validation are grouped in memory: each run of models timed together
//! in one child process holds all their weights at once, so a run is sized by the memory
//! available now.

/// Splits `todo` (in its order) into runs whose weights (`bytes` of each) add up to at most
/// `budget`: the models of a run are held in memory together while timed. A model alone
/// over the budget is a run of its own.
pub fn groups(todo: &[usize], bytes: impl Fn(usize) -> u64, budget: u64) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut held = 0u64;
    for &i in todo {
        let b = bytes(i);
        match out.last_mut() {
            Some(g) if held.saturating_add(b) <= budget => {
                g.push(i);
                held += b;
            }
            _ => {
                out.push(vec![i]);
                held = b;
            }
        }
    }
    out
}

/// Weights one interleaved group may hold: half the memory available now, 4 GiB where
/// unreadable.
pub fn group_budget_bytes() -> u64 {
    mem_available_bytes().map_or(4 << 30, |b| b / 2)
}

/// Memory available to a new process now (Linux `MemAvailable`).
pub fn mem_available_bytes() -> Option<u64> {
    let m = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = m.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::groups;

    #[test]
    fn groups_keep_the_order_and_fit_the_budget() {
        let bytes = |i: usize| [30u64, 50, 20, 90, 10, 200, 5][i];
        let todo = [3, 0, 1, 2, 5, 4, 6];
        let g = groups(&todo, bytes, 100);
        assert_eq!(g, vec![vec![3], vec![0, 1, 2], vec![5], vec![4, 6]]);
        // Every model once, in order; no group over the budget but a lone big model.
        assert_eq!(g.concat(), todo);
        for group in &g {
            let held: u64 = group.iter().map(|&i| bytes(i)).sum();
            assert!(held <= 100 || group.len() == 1, "{group:?}");
        }
        assert_eq!(groups(&todo, bytes, u64::MAX), vec![todo.to_vec()]);
        assert!(groups(&[], bytes, 100).is_empty());
    }
}
