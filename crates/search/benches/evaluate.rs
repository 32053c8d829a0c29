//! Candidate evaluation through the roofline model: decode a point of the space, count
//! its parameters, check static constraints, price it. One thread; the README reports
//! candidates per second per core from this.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::path::Path;
use tailor_cost::{DeviceSpec, Roofline};
use tailor_search::{SearchSpace, evaluate};

fn bench(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut group = c.benchmark_group("evaluate");
    // The shipped spaces (most points outside the window are excluded before pricing), and
    // phonelm-0.5b without its window (every buildable point priced).
    for (name, file, unconstrained) in [
        ("quickstart", "quickstart", false),
        ("phonelm-0.5b", "phonelm-0.5b", false),
        ("phonelm-0.5b-all-priced", "phonelm-0.5b", true),
    ] {
        let path = root.join(format!("search-spaces/{file}.toml"));
        let mut src = std::fs::read_to_string(&path).expect("space");
        if unconstrained {
            src = src.replace("params = { min = 450e6, max = 550e6 }", "");
        }
        let space = SearchSpace::parse(&path, &src).expect("space");
        let device = DeviceSpec::load(&root.join("profiles/host-roofline.toml")).expect("device");
        let model = Roofline::new(device, &space.workload.precision).expect("precision");
        let n = space.size().min(4096);
        group.throughput(Throughput::Elements(n));
        group.bench_function(name, |b| {
            b.iter(|| {
                for id in 0..n {
                    let _ = black_box(evaluate(&space, &model, black_box(id)));
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
