//! Pareto dominance (all objectives minimised), fronts, NSGA-II's sorting and crowding,
//! and the hypervolume indicator.

/// `a` dominates `b`: no worse in every objective, better in at least one.
pub fn dominates(a: &[f64], b: &[f64]) -> bool {
    let mut better = false;
    for (x, y) in a.iter().zip(b) {
        if x > y {
            return false;
        }
        if x < y {
            better = true;
        }
    }
    better
}

/// Indices of the non-dominated points (duplicates of a front point are all kept).
/// Sorting by the objectives first lets each point be checked against the front only.
pub fn front_indices(points: &[Vec<f64>]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by(|&a, &b| {
        points[a]
            .iter()
            .zip(&points[b])
            .map(|(x, y)| x.total_cmp(y))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.cmp(&b))
    });
    // A point can only be dominated by one sorted before it.
    let mut front: Vec<usize> = Vec::new();
    for i in order {
        if !front.iter().any(|&f| dominates(&points[f], &points[i])) {
            front.push(i);
        }
    }
    front.sort_unstable();
    front
}

/// Deb et al.'s fast non-dominated sort under a domination relation: fronts of indices.
pub fn non_dominated_sort(n: usize, dom: impl Fn(usize, usize) -> bool) -> Vec<Vec<usize>> {
    let mut dominated_by = vec![0usize; n];
    let mut dominates_list: Vec<Vec<usize>> = vec![Vec::new(); n];
    for i in 0..n {
        for j in (i + 1)..n {
            if dom(i, j) {
                dominates_list[i].push(j);
                dominated_by[j] += 1;
            } else if dom(j, i) {
                dominates_list[j].push(i);
                dominated_by[i] += 1;
            }
        }
    }
    let mut fronts = Vec::new();
    let mut current: Vec<usize> = (0..n).filter(|&i| dominated_by[i] == 0).collect();
    while !current.is_empty() {
        let mut next = Vec::new();
        for &i in &current {
            for &j in &dominates_list[i] {
                dominated_by[j] -= 1;
                if dominated_by[j] == 0 {
                    next.push(j);
                }
            }
        }
        next.sort_unstable();
        fronts.push(current);
        current = next;
    }
    fronts
}

/// Crowding distance of each member of one front (boundary points get infinity).
// `k` walks the objectives of every point, not one slice: an index loop reads best.
#[allow(clippy::needless_range_loop)]
pub fn crowding_distance(points: &[&[f64]]) -> Vec<f64> {
    let n = points.len();
    let mut d = vec![0.0; n];
    if n <= 2 {
        return vec![f64::INFINITY; n];
    }
    let m = points[0].len();
    for k in 0..m {
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| points[a][k].total_cmp(&points[b][k]).then(a.cmp(&b)));
        let (lo, hi) = (points[order[0]][k], points[order[n - 1]][k]);
        d[order[0]] = f64::INFINITY;
        d[order[n - 1]] = f64::INFINITY;
        let span = hi - lo;
        if span <= 0.0 {
            continue;
        }
        for w in 1..n - 1 {
            d[order[w]] += (points[order[w + 1]][k] - points[order[w - 1]][k]) / span;
        }
    }
    d
}

/// Hypervolume dominated by `points` (minimised) and bounded by `reference`. Points not
/// strictly better than the reference in every objective add nothing. Exact, by slicing
/// along the last objective; fine for the front sizes of a search (hundreds of points).
pub fn hypervolume(points: &[Vec<f64>], reference: &[f64]) -> f64 {
    let pts: Vec<Vec<f64>> = points
        .iter()
        .filter(|p| p.iter().zip(reference).all(|(x, r)| x < r))
        .cloned()
        .collect();
    hv(pts, reference)
}

fn hv(mut pts: Vec<Vec<f64>>, r: &[f64]) -> f64 {
    if pts.is_empty() {
        return 0.0;
    }
    let m = r.len();
    if m == 1 {
        return r[0] - pts.iter().map(|p| p[0]).fold(f64::INFINITY, f64::min);
    }
    let last = m - 1;
    pts.sort_by(|a, b| a[last].total_cmp(&b[last]));
    let mut total = 0.0;
    for i in 0..pts.len() {
        let upper = if i + 1 < pts.len() {
            pts[i + 1][last]
        } else {
            r[last]
        };
        let depth = upper - pts[i][last];
        if depth <= 0.0 {
            continue;
        }
        let slice: Vec<Vec<f64>> = pts[..=i].iter().map(|p| p[..last].to_vec()).collect();
        let keep = front_indices(&slice);
        let slice: Vec<Vec<f64>> = keep.into_iter().map(|k| slice[k].clone()).collect();
        total += depth * hv(slice, &r[..last]);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn dominance() {
        assert!(dominates(&[1.0, 2.0], &[1.0, 3.0]));
        assert!(!dominates(&[1.0, 2.0], &[1.0, 2.0]));
        assert!(!dominates(&[1.0, 4.0], &[2.0, 3.0]));
    }

    #[test]
    fn hypervolume_by_hand() {
        let r = [4.0, 4.0];
        // Two boxes: [1,4]x[3,4] and [3,4]x[1,4], overlapping in [3,4]x[3,4].
        let hv2 = hypervolume(&[vec![1.0, 3.0], vec![3.0, 1.0]], &r);
        assert!((hv2 - (3.0 + 3.0 - 1.0)).abs() < 1e-12, "{hv2}");
        let hv3 = hypervolume(&[vec![0.0, 0.0, 0.0]], &[1.0, 2.0, 3.0]);
        assert!((hv3 - 6.0).abs() < 1e-12);
        // A dominated point adds nothing.
        let with = hypervolume(&[vec![1.0, 3.0], vec![3.0, 1.0], vec![3.5, 3.5]], &r);
        assert!((with - hv2).abs() < 1e-12);
    }

    #[test]
    fn sort_and_crowding() {
        let pts = [
            vec![1.0, 4.0],
            vec![2.0, 2.0],
            vec![4.0, 1.0],
            vec![3.0, 3.0],
            vec![5.0, 5.0],
        ];
        let fronts = non_dominated_sort(pts.len(), |a, b| dominates(&pts[a], &pts[b]));
        assert_eq!(fronts, vec![vec![0, 1, 2], vec![3], vec![4]]);
        let f0: Vec<&[f64]> = fronts[0].iter().map(|&i| pts[i].as_slice()).collect();
        let d = crowding_distance(&f0);
        assert!(d[0].is_infinite() && d[2].is_infinite() && d[1].is_finite());
    }

    proptest! {
        #[test]
        fn front_is_exactly_the_non_dominated_set(
            pts in prop::collection::vec(prop::collection::vec(0u8..20, 3), 1..60)
        ) {
            let pts: Vec<Vec<f64>> = pts.into_iter().map(|p| p.into_iter().map(f64::from).collect()).collect();
            let front = front_indices(&pts);
            for i in 0..pts.len() {
                let dominated = pts.iter().any(|q| dominates(q, &pts[i]));
                prop_assert_eq!(front.contains(&i), !dominated);
            }
            let fronts = non_dominated_sort(pts.len(), |a, b| dominates(&pts[a], &pts[b]));
            prop_assert_eq!(&fronts[0], &front);
            prop_assert_eq!(fronts.iter().map(Vec::len).sum::<usize>(), pts.len());
        }

        #[test]
        fn hypervolume_of_front_equals_hypervolume_of_all(
            pts in prop::collection::vec(prop::collection::vec(0u8..10, 2), 1..30)
        ) {
            let pts: Vec<Vec<f64>> = pts.into_iter().map(|p| p.into_iter().map(f64::from).collect()).collect();
            let r = [10.0, 10.0];
            let front: Vec<Vec<f64>> = front_indices(&pts).into_iter().map(|i| pts[i].clone()).collect();
            prop_assert!((hypervolume(&pts, &r) - hypervolume(&front, &r)).abs() < 1e-9);
        }
    }
}
