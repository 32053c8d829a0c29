//! Searches over a set of devices: the worst-case and fleet-mean objectives against a
//! brute-force computation, each device's own pick, the space's refusals, and a one-device
//! set that gives exactly the one-device search's files.

use crate::engine::{
    Candidate, NoProgress, SearchOptions, SearchOutcome, Strategy, evaluate, search, search_set,
};
use crate::metrics::{Metric, Over};
use crate::output::{CsvSink, FrontFile, SearchSummary, read_candidates};
use crate::pareto::dominates;
use crate::space::{SearchSpace, Target};
use std::path::{Path, PathBuf};
use tailor_cost::{CostModel, DeviceSpec, Roofline};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn quickstart() -> String {
    std::fs::read_to_string(root().join("search-spaces/quickstart.toml")).unwrap()
}

/// quickstart with `objectives` and `pick` replaced and `extra` appended.
fn set_space(objectives: &str, pick: &str, extra: &str) -> Result<SearchSpace, String> {
    // At a long context the devices disagree: the KV cache's bytes weigh on the memory-bound
    // ones, attention's arithmetic on the one with little compute.
    let mut src = quickstart()
        .replace("context = 256 ", "context = 4096")
        .replace("min = 15e6", "min = 24e6");
    let start = src.find("[objectives]").unwrap();
    src.truncate(start);
    src += &format!("[objectives]\n{objectives}\n\n[pick]\n{pick}\n\n{extra}");
    SearchSpace::parse(&root().join("search-spaces/set.toml"), &src).map_err(|e| e.to_string())
}

const DEVICES: &str = r#"
[devices.host]
file = "../profiles/host-roofline.toml"
weight = 1

[devices.phone]
file = "../profiles/snapdragon-8-gen3-cpu.toml"
weight = 3

[devices.slow]
weight = 2
max_decode_ms = 9.0
"#;

/// Three rooflines that rank the space differently: the host, the phone datasheet, and a
/// device with little compute and much bandwidth (compute-bound where the others are not).
fn devices(s: &SearchSpace) -> Vec<Roofline> {
    let load = |f: &str| DeviceSpec::load(&root().join("profiles").join(f)).unwrap();
    let mut slow = load("host-roofline.toml");
    slow.compute.f32 = Some(30.0);
    slow.memory.bandwidth_gbs *= 8.0;
    slow.efficiency.attention = 0.25;
    [
        load("host-roofline.toml"),
        load("snapdragon-8-gen3-cpu.toml"),
        slow,
    ]
    .into_iter()
    .map(|d| Roofline::new(d, &s.workload.precision).unwrap())
    .collect()
}

fn run_set(s: &SearchSpace, strategy: Strategy, budget: Option<u64>) -> SearchOutcome {
    let rooflines = devices(s);
    let costs: Vec<&dyn CostModel> = rooflines.iter().map(|r| r as &dyn CostModel).collect();
    let opts = SearchOptions {
        strategy,
        budget,
        seed: 7,
        population: None,
    };
    search_set(s, &costs, &opts, &NoProgress, &mut |_| Ok(())).unwrap()
}

/// What brute force says of every point: each device's metrics from the space as that
/// device alone sees it ([`SearchSpace::for_device`]), its best over the points feasible
/// there, and the points feasible on every device.
struct Brute {
    /// (id, per device (priced candidate, feasible there)) of every priced point.
    points: Vec<(u64, Vec<Candidate>)>,
    best: Vec<(f64, f64)>,
    weights: Vec<f64>,
}

impl Brute {
    fn of(s: &SearchSpace) -> Self {
        let rooflines = devices(s);
        let views: Vec<SearchSpace> = (0..3).map(|d| s.for_device(d)).collect();
        let mut points = Vec::new();
        for id in 0..s.size() {
            let per: Vec<Candidate> = (0..3)
                .filter_map(|d| evaluate(&views[d], &rooflines[d], id).ok())
                .filter(Candidate::is_priced)
                .collect();
            if per.len() == 3 {
                points.push((id, per));
            }
        }
        let best = (0..3)
            .map(|d| {
                let feasible = points.iter().map(|p| &p.1[d]).filter(|c| c.feasible());
                feasible.fold((f64::INFINITY, f64::INFINITY), |(dm, pm), c| {
                    (
                        dm.min(c.metrics.get(Metric::DecodeMs)),
                        pm.min(c.metrics.get(Metric::PrefillMs)),
                    )
                })
            })
            .collect();
        let weights = s.devices.iter().map(|d| d.weight).collect();
        Self {
            points,
            best,
            weights,
        }
    }

    fn worst(&self, per: &[Candidate], decode: bool) -> f64 {
        (0..3)
            .map(|d| self.ratio(per, d, decode))
            .fold(f64::NEG_INFINITY, f64::max)
    }

    fn mean(&self, per: &[Candidate], decode: bool) -> f64 {
        let sum: f64 = (0..3)
            .map(|d| self.ratio(per, d, decode) * self.weights[d])
            .sum();
        sum / self.weights.iter().sum::<f64>()
    }

    fn ratio(&self, per: &[Candidate], d: usize, decode: bool) -> f64 {
        let (m, b) = if decode {
            (Metric::DecodeMs, self.best[d].0)
        } else {
            (Metric::PrefillMs, self.best[d].1)
        };
        per[d].metrics.get(m) / b
    }

    /// The front of `objectives` (all minimised) over the points feasible on every device.
    fn front(&self, objectives: impl Fn(&[Candidate]) -> Vec<f64>) -> Vec<Vec<f64>> {
        let feasible: Vec<Vec<f64>> = self
            .points
            .iter()
            .filter(|(_, per)| per.iter().all(Candidate::feasible))
            .map(|(_, per)| objectives(per))
            .collect();
        let mut front: Vec<Vec<f64>> = feasible
            .iter()
            .filter(|p| !feasible.iter().any(|q| dominates(q, p)))
            .cloned()
            .collect();
        sorted(&mut front);
        front
    }
}

fn sorted(v: &mut Vec<Vec<f64>>) {
    v.sort_by(|a, b| {
        a.iter()
            .zip(b)
            .map(|(x, y)| x.total_cmp(y))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    v.dedup();
}

fn front_values(out: &SearchOutcome) -> Vec<Vec<f64>> {
    let mut v: Vec<Vec<f64>> = out.front.iter().map(|c| c.objectives.clone()).collect();
    sorted(&mut v);
    v
}

fn close(a: &[Vec<f64>], b: &[Vec<f64>]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.iter()
                .zip(y)
                .all(|(p, q)| (p - q).abs() <= 1e-12 * p.abs().max(1.0))
        })
}

#[test]
fn worst_case_and_fleet_mean_match_brute_force() {
    let s = set_space(
        "minimize = [\"worst:decode_ms\", \"mean:prefill_ms\"]\nmaximize = [\"non_embedding_params\"]",
        "minimize = \"worst:decode_ms\"",
        DEVICES,
    )
    .unwrap();
    assert_eq!(s.devices.len(), 3);
    assert_eq!(s.constraint_names().last().unwrap(), "max_decode_ms:slow");
    let brute = Brute::of(&s);
    // The per-device limit bites: some points are feasible elsewhere but not on `slow`.
    assert!(
        brute
            .points
            .iter()
            .any(|(_, per)| per[0].feasible() && !per[2].feasible())
    );
    let out = run_set(&s, Strategy::Exhaustive, None);
    let objectives = |per: &[Candidate]| {
        vec![
            brute.worst(per, true),
            brute.mean(per, false),
            -(per[0].metrics.non_embedding_params as f64),
        ]
    };
    let expected = brute.front(objectives);
    assert!(expected.len() >= 3, "a front worth comparing: {expected:?}");
    let got = front_values(&out);
    assert!(
        close(&got, &expected),
        "front\n{got:?}\nvs brute force\n{expected:?}"
    );
    // The pick: the front's lowest worst case, as brute force finds it over all points.
    let pick = &out.front[out.pick.unwrap()];
    let best_worst = expected.iter().map(|v| v[0]).fold(f64::INFINITY, f64::min);
    assert!((pick.objectives[0] - best_worst).abs() < 1e-12);
    let (id, per) = brute.points.iter().find(|(id, _)| *id == pick.id).unwrap();
    assert_eq!(*id, pick.id);
    assert!((brute.worst(per, true) - pick.metrics.value(&s.pick.0)).abs() < 1e-12);
    // Each device's own pick is its fastest feasible point, and the shared pick's worst
    // case is 1 + its largest regret.
    let summary = SearchSummary::new(&s, &out, "three devices");
    let mut largest = 0.0f64;
    for (d, dev) in summary.devices.iter().enumerate() {
        let own = dev.pick.as_ref().unwrap();
        assert_eq!(own.metrics.on(d).get(Metric::DecodeMs), brute.best[d].0);
        let best = |m: Metric| dev.best.iter().find(|b| b.metric == m).unwrap().value;
        assert_eq!(best(Metric::DecodeMs), brute.best[d].0);
        assert_eq!(best(Metric::PrefillMs), brute.best[d].1);
        let r = dev.regret.unwrap();
        assert_eq!(r.metric, Metric::DecodeMs);
        assert!(r.regret >= 0.0, "{r:?}");
        largest = largest.max(r.regret);
    }
    assert!((pick.objectives[0] - (1.0 + largest)).abs() < 1e-12);
    assert!(
        largest > 0.0,
        "the devices disagree, so someone gives something up"
    );
}

#[test]
fn the_fleet_mean_pick_matches_brute_force_and_weights_move_it() {
    let pick_of = |devices: &str| {
        let s = set_space(
            "minimize = [\"mean:decode_ms\"]\nmaximize = [\"non_embedding_params\"]",
            "minimize = \"mean:decode_ms\"",
            devices,
        )
        .unwrap();
        let brute = Brute::of(&s);
        let out = run_set(&s, Strategy::Exhaustive, None);
        let expected = brute.front(|per| {
            vec![
                brute.mean(per, true),
                -(per[0].metrics.non_embedding_params as f64),
            ]
        });
        assert!(close(&front_values(&out), &expected));
        let pick = &out.front[out.pick.unwrap()];
        let best = expected.iter().map(|v| v[0]).fold(f64::INFINITY, f64::min);
        assert!((pick.objectives[0] - best).abs() < 1e-12);
        pick.id
    };
    let even = pick_of(&DEVICES.replace("weight = 3", "weight = 1"));
    let slow_heavy = pick_of(
        &DEVICES
            .replace("weight = 3", "weight = 1")
            .replace("weight = 2", "weight = 1000"),
    );
    assert_ne!(
        even, slow_heavy,
        "a fleet of mostly `slow` devices picks for them"
    );
}

#[test]
fn sampling_strategies_over_a_set_are_seeded_and_feasible() {
    let s = set_space(
        "minimize = [\"worst:decode_ms\", \"prefill_ms:phone\"]\nmaximize = [\"non_embedding_params\"]",
        "minimize = \"decode_ms:host\"",
        DEVICES,
    )
    .unwrap();
    for strategy in [Strategy::Random, Strategy::Nsga2] {
        let a = run_set(&s, strategy, Some(120));
        let b = run_set(&s, strategy, Some(120));
        let ids = |o: &SearchOutcome| o.front.iter().map(|c| c.id).collect::<Vec<_>>();
        assert_eq!(ids(&a), ids(&b), "{strategy:?} is seeded");
        assert!(a.front.iter().all(|c| c.feasible()));
        assert!(a.front.iter().all(|c| c.metrics.devices.len() == 3));
        let pick = &a.front[a.pick.unwrap()];
        let host = a
            .front
            .iter()
            .map(|c| c.metrics.on(0).get(Metric::DecodeMs));
        assert_eq!(
            pick.metrics.on(0).get(Metric::DecodeMs),
            host.fold(f64::INFINITY, f64::min)
        );
        for dev in &a.devices {
            assert!(dev.front.iter().all(|c| c.metrics.devices.len() == 3));
        }
    }
}

#[test]
fn a_set_writes_each_devices_columns_and_reads_them_back() {
    let s = set_space(
        "minimize = [\"worst:decode_ms\"]",
        "minimize = \"worst:decode_ms\"",
        DEVICES,
    )
    .unwrap();
    let rooflines = devices(&s);
    let costs: Vec<&dyn CostModel> = rooflines.iter().map(|r| r as &dyn CostModel).collect();
    let dir = std::env::temp_dir().join(format!("tailor-set-csv-{}", std::process::id()));
    let names: Vec<String> = s.devices.iter().map(|d| d.name.clone()).collect();
    let mut csv =
        CsvSink::create_set(&dir.join("candidates.csv"), false, false, &[], &names).unwrap();
    let opts = SearchOptions {
        strategy: Strategy::Random,
        budget: Some(40),
        seed: 1,
        population: None,
    };
    let out = search_set(&s, &costs, &opts, &NoProgress, &mut |c| csv.write(c)).unwrap();
    let path = csv.finish().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let header = text.lines().next().unwrap();
    assert!(
        header.ends_with(
            "decode_ms:host,peak_memory_bytes:host,feasible:host,prefill_ms:phone,decode_ms:phone,\
             peak_memory_bytes:phone,feasible:phone,prefill_ms:slow,decode_ms:slow,\
             peak_memory_bytes:slow,feasible:slow"
        ),
        "{header}"
    );
    let rows = read_candidates(&path).unwrap();
    assert_eq!(rows.len() as u64, out.evaluated);
    let priced = rows.iter().find(|r| r.decode_ms.is_some()).unwrap();
    let cell = |col: &str| &priced.devices.iter().find(|(c, _)| c == col).unwrap().1;
    // The plain columns are the first device's.
    assert_eq!(
        cell("decode_ms:host").parse::<f64>().unwrap(),
        (priced.decode_ms.unwrap() * 1e6).round() / 1e6
    );
    assert!(cell("feasible:slow") == "true" || cell("feasible:slow") == "false");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// candidates.csv, front.json and summary.json (timing left out) of `s` searched with the
/// host roofline, through `search` or `search_set`.
fn files(s: &SearchSpace, set: bool) -> (String, String, String) {
    let dir = std::env::temp_dir().join(format!("tailor-one-{}-{set}", std::process::id()));
    let mut csv = CsvSink::create(&dir.join("candidates.csv"), false, false, &[]).unwrap();
    let host = &devices(s)[0];
    let opts = SearchOptions {
        strategy: Strategy::Nsga2,
        budget: Some(150),
        seed: 3,
        population: None,
    };
    let out = if set {
        search_set(s, &[host], &opts, &NoProgress, &mut |c| csv.write(c)).unwrap()
    } else {
        search(s, host, &opts, &NoProgress, &mut |c| csv.write(c)).unwrap()
    };
    let text = std::fs::read_to_string(csv.finish().unwrap()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let mut summary = SearchSummary::new(s, &out, "host");
    summary.timing.wall_s = 0.0;
    summary.timing.evaluations_per_s = 0.0;
    (
        text,
        serde_json::to_string(&FrontFile::new(s, &out)).unwrap(),
        serde_json::to_string(&summary).unwrap(),
    )
}

#[test]
fn a_one_device_set_gives_exactly_the_one_device_files() {
    let path = root().join("search-spaces/quickstart.toml");
    let plain = SearchSpace::parse(&path, &quickstart()).unwrap();
    // Declared in the space, objectives qualified by the device or worst case: all read as
    // the metric itself over one device.
    let declared = SearchSpace::parse(
        &path,
        &(quickstart()
            .replace(
                "\"decode_ms\", \"prefill_ms\"",
                "\"worst:decode_ms\", \"prefill_ms:host\"",
            )
            .replace("minimize = \"decode_ms\"", "minimize = \"mean:decode_ms\"")
            + "\n[devices.host]\nfile = \"../profiles/host-roofline.toml\"\n"),
    )
    .unwrap();
    assert!(declared.objectives.iter().all(|(o, _)| o.over == Over::One));
    // Given on the command line.
    let target = plain
        .clone()
        .with_targets(&["host=profiles/host-roofline.toml"
            .parse::<Target>()
            .unwrap()])
        .unwrap();
    let want = files(&plain, false);
    assert!(want.0.lines().count() > 100);
    assert_eq!(files(&declared, true), want);
    assert_eq!(files(&target, true), want);
}

#[test]
fn set_mistakes_are_refused_with_the_fix() {
    let objectives = "minimize = [\"worst:decode_ms\"]";
    let e = set_space("minimize = [\"decode_ms:pixel9\"]", "", DEVICES).unwrap_err();
    assert!(
        e.contains("objectives.minimize")
            && e.contains("`decode_ms:pixel9` names the device `pixel9`, which [devices] does not declare (it declares host, phone, slow)"),
        "{e}"
    );
    let e = set_space("minimize = [\"decode_ms:pixel9\"]", "", "").unwrap_err();
    assert!(
        e.contains("the space declares no [devices]; add `[devices.pixel9]`"),
        "{e}"
    );
    let e = set_space("minimize = [\"worst:params\"]", "", DEVICES).unwrap_err();
    assert!(
        e.contains("`worst:params`: params is the same on every device; write `params`"),
        "{e}"
    );
    let e = set_space(
        "minimize = [\"prefill_ms\"]\nmaximize = [\"mean:decode_ms\"]",
        "",
        DEVICES,
    )
    .unwrap_err();
    assert!(e.contains("move it to objectives.minimize"), "{e}");
    let e = set_space(
        objectives,
        "",
        &DEVICES.replace("weight = 3", "weight = -1"),
    )
    .unwrap_err();
    assert!(
        e.contains("devices.phone.weight") && e.contains("-1 must be a positive fleet share"),
        "{e}"
    );
    let e = set_space(objectives, "", &DEVICES.replace("weight = 3", "weigth = 3")).unwrap_err();
    assert!(e.contains("unknown field `weigth`"), "{e}");
    let e = set_space(
        objectives,
        "",
        &DEVICES.replace("max_decode_ms = 9.0", "max_decode_ms = 0"),
    )
    .unwrap_err();
    assert!(e.contains("devices.slow.max_decode_ms"), "{e}");
    // --target: a name the space does not declare, a name twice, a bad argument.
    let s = set_space(objectives, "", DEVICES).unwrap();
    let t = |a: &str| a.parse::<Target>().unwrap();
    let e = s
        .clone()
        .with_targets(&[t("pixel9=p.toml")])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(
            "--target `pixel9` names no device of the space's [devices] (host, phone, slow)"
        ),
        "{e}"
    );
    let e = s
        .clone()
        .with_targets(&[t("host=a.toml"), t("host=b.toml")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("--target names `host` twice"), "{e}");
    let s = s
        .with_targets(&[t("slow=slow.toml,weight=5,weights=q4_0")])
        .unwrap();
    assert_eq!(s.devices[2].file.as_deref(), Some(Path::new("slow.toml")));
    assert_eq!(s.devices[2].weight, 5.0);
    assert_eq!(s.devices[2].weights, Some(tailor_spec::DType::Q4_0));
    // A comma inside a path is kept when what follows is not an option.
    assert_eq!(t("a=dir,x/p.toml").file, Path::new("dir,x/p.toml"));
    assert!(
        "a=p.toml,weights=q5"
            .parse::<Target>()
            .unwrap_err()
            .contains("weights `q5` is not one of")
    );
    assert!(
        "pixel 8=x"
            .parse::<Target>()
            .unwrap_err()
            .contains("not a device name")
    );
    assert!(
        "pixel8"
            .parse::<Target>()
            .unwrap_err()
            .contains("NAME=PATH")
    );
    assert!(
        "p=x.toml,weight=0"
            .parse::<Target>()
            .unwrap_err()
            .contains("must be a positive number")
    );
}

#[test]
fn plain_priced_objectives_over_a_set_read_the_worst_case() {
    let s = set_space("minimize = [\"decode_ms\", \"params\"]", "", DEVICES).unwrap();
    assert_eq!(s.objectives[0].0.over, Over::Worst);
    assert_eq!(s.objectives[1].0.over, Over::One);
    assert_eq!(s.pick.0.name(), "worst:decode_ms");
    // Devices keep the file's order; files are relative to the space.
    let names: Vec<&str> = s.devices.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["host", "phone", "slow"]);
    assert_eq!(
        s.devices[0].file.as_deref(),
        Some(
            root()
                .join("search-spaces/../profiles/host-roofline.toml")
                .as_path()
        )
    );
    // A device's own view: its limits join [constraints], every objective is on it.
    let view = s.for_device(2);
    assert_eq!(view.file.constraints.max_decode_ms, Some(9.0));
    assert!(view.objectives.iter().all(|(o, _)| o.over == Over::One));
    assert!(view.devices.is_empty());
}

#[test]
fn devices_keep_the_files_order_and_a_set_of_one_keeps_its_limits() {
    let s = set_space(
        "minimize = [\"decode_ms\"]",
        "",
        "[devices.zeta]\nweight = 1\n\n[devices.alpha]\nweight = 2\n",
    )
    .unwrap();
    let names: Vec<&str> = s.devices.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["zeta", "alpha"], "the first written is the primary");
    // One device with its own limit: searched as one device, the limit holds.
    let one = set_space(
        "minimize = [\"decode_ms\"]",
        "",
        "[devices.host]\nmax_decode_ms = 6.0\n",
    )
    .unwrap();
    assert!(!one.is_set());
    let host = &devices(&one)[0];
    let opts = SearchOptions {
        strategy: Strategy::Exhaustive,
        budget: None,
        seed: 0,
        population: None,
    };
    let mut excluded = 0;
    let out = search(&one, host, &opts, &NoProgress, &mut |c| {
        if c.why_not() == "max_decode_ms:host" {
            excluded += 1;
        }
        Ok(())
    })
    .unwrap();
    assert!(excluded > 0, "the device's limit excludes some candidates");
    assert!(
        out.front
            .iter()
            .all(|c| c.metrics.decode_ms.unwrap() <= 6.0)
    );
}

#[test]
fn a_devices_view_is_a_space_another_tailor_reads_alone() {
    let mut s = set_space(
        "minimize = [\"decode_ms:phone\", \"worst:prefill_ms\"]\nmaximize = [\"non_embedding_params\"]",
        "minimize = \"mean:decode_ms\"",
        DEVICES,
    )
    .unwrap();
    let mut w = s.workload;
    w.precision = tailor_spec::Precision::for_weights(tailor_spec::DType::Q4_0);
    w.context = 512;
    s.set_device_workload(2, w);
    let view = s.for_device(2);
    let text = view.standalone_toml().unwrap();
    let back = SearchSpace::parse(Path::new("device.toml"), &text).unwrap();
    assert!(back.devices.is_empty());
    assert_eq!(back.workload, w);
    assert_eq!(back.file.constraints.max_decode_ms, Some(9.0));
    let names: Vec<String> = back.objectives.iter().map(|(o, _)| o.name()).collect();
    assert_eq!(names, ["decode_ms", "prefill_ms", "non_embedding_params"]);
    assert_eq!(back.pick.0.name(), "decode_ms");
    assert!(back.file.references.is_empty());
    assert_eq!(back.size(), s.size());
    // `,remote=` after a --target.
    let t: Target = "p=x.toml,remote=adb:1234,weight=2".parse().unwrap();
    assert_eq!(t.remote.as_deref(), Some("adb:1234"));
    assert_eq!(t.weight, Some(2.0));
}
