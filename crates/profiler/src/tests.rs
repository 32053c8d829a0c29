//! Functional tests of the profiler (no timing is asserted: this machine is shared).

use crate::{Backend, ProfilePlan, Quiet, TimingOptions, bench, new_profile, run_profile};
use std::time::Duration;
use tailor_cost::{OpShape, Profile};
use tailor_spec::{Activation, FfnKind, ModelSpec, NormKind, Phase};

/// Barely any timing: these tests check that operators run and files are right.
fn quick() -> TimingOptions {
    TimingOptions {
        warmup: Duration::ZERO,
        min_samples: 3,
        target_spread: 10.0,
        max_time: Duration::from_millis(5),
    }
}

/// Every kind of shape: embedding, norms (RMS, Layer with bias), linears with and without
/// bias, causal prefill attention with GQA, decode attention against a cache, gated and
/// plain FFNs with each activation.
fn every_kind() -> Vec<OpShape> {
    let mut spec = ModelSpec::llama(300, 64, 2, 4, 2, 96);
    let mut shapes: Vec<OpShape> = OpShape::for_spec(&spec, Phase::Prefill { tokens: 5 });
    shapes.extend(OpShape::for_spec(&spec, Phase::Decode { context: 7 }));
    spec.norm = NormKind::LayerNorm;
    spec.norm_bias = true;
    spec.qkv_bias = true;
    spec.ffn = FfnKind::Plain;
    for act in Activation::ALL {
        spec.activation = *act;
        shapes.extend(OpShape::for_spec(&spec, Phase::Prefill { tokens: 3 }));
    }
    shapes.sort();
    shapes.dedup();
    shapes
}

fn runs_every_kind(backend: Backend) {
    let device = backend.open().unwrap_or_else(|e| panic!("{e}"));
    for shape in every_kind() {
        let m = bench::time_shape(&shape, &device, &quick()).unwrap_or_else(|e| panic!("{e}"));
        assert!(m.samples_us.len() >= 3, "{shape}");
        assert!(m.median_us > 0.0, "{shape}");
    }
}

#[test]
fn flex_runs_every_operator_kind() {
    runs_every_kind(Backend::Flex);
}

#[test]
fn ndarray_runs_every_operator_kind() {
    runs_every_kind(Backend::Ndarray);
}

/// On CI this is Mesa's software Vulkan (lavapipe), installed by `.ci/run`. Set
/// TAILOR_SKIP_WGPU=1 on a machine without any Vulkan driver.
#[test]
fn wgpu_runs_every_operator_kind() {
    if std::env::var_os("TAILOR_SKIP_WGPU").is_some() {
        eprintln!("TAILOR_SKIP_WGPU set: wgpu not tested");
        return;
    }
    runs_every_kind(Backend::Wgpu);
    let device = Backend::Wgpu.open().unwrap();
    let f = Backend::Wgpu.fingerprint(&device);
    assert_eq!(f.backend, "wgpu");
    assert!(!f.device.is_empty());
}

#[test]
fn operators_compute_the_right_shapes() {
    use crate::ops;
    use burn::tensor::{Distribution, Tensor};
    let d = Backend::Flex.open().unwrap();
    let r = |s: [usize; 4]| Tensor::<4>::random(s, Distribution::Default, &d);
    // GQA prefill: 4 query heads over 2 KV heads.
    let out = ops::attention_prefill(r([1, 4, 6, 8]), r([1, 2, 6, 8]), r([1, 2, 6, 8]));
    assert_eq!(out.dims(), [1, 4, 6, 8]);
    let (out, k, v) = ops::attention_decode(
        r([1, 4, 1, 8]),
        r([1, 2, 9, 8]),
        r([1, 2, 9, 8]),
        r([1, 2, 1, 8]),
        r([1, 2, 1, 8]),
    );
    assert_eq!(out.dims(), [1, 4, 1, 8]);
    assert_eq!(k.dims(), [1, 2, 10, 8]);
    assert_eq!(v.dims(), [1, 2, 10, 8]);
    let x = Tensor::<2>::random([6, 32], Distribution::Default, &d);
    assert_eq!(
        ops::merge_heads(ops::split_heads(x.clone(), 4, 8)).into_data(),
        x.clone().into_data()
    );
    // RMSNorm output has unit RMS per row (weights of one).
    let w = Tensor::<1>::ones([32], &d);
    let y = ops::norm(x, NormKind::RmsNorm, &w, None, 1e-6);
    let rms: Vec<f32> = y
        .square()
        .mean_dim(1)
        .sqrt()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert!(rms.iter().all(|v| (v - 1.0).abs() < 1e-3), "{rms:?}");
}

fn plan(shapes: Vec<OpShape>) -> ProfilePlan {
    let mut p = ProfilePlan::new("test", shapes);
    p.timing = quick();
    p.probe_timing = quick();
    p.matmul_probe = [64, 64, 64];
    p.bandwidth_probe = 1 << 16;
    p
}

#[test]
fn interrupted_profile_resumes_to_the_same_entry_set() {
    let device = Backend::Flex.open().unwrap();
    let fp = Backend::Flex.fingerprint(&device);
    let shapes = every_kind();
    let now = || "2026-11-24T00:00:00Z".to_string();
    let dir = std::env::temp_dir().join(format!("tailor-resume-{}", std::process::id()));
    let path = dir.join("p.toml");
    let mut saves = 0;
    let mut save = |p: &Profile| {
        saves += 1;
        p.save(&path)
    };

    // First run stops after 4 entries, as a kill would after the 4th checkpoint.
    let mut first = plan(shapes.clone());
    first.limit = Some(4);
    let p = run_profile(
        &device,
        new_profile("t", fp.clone(), &now()),
        &first,
        &now,
        &Quiet,
        &mut save,
    )
    .unwrap();
    assert_eq!(p.entries.len(), 4);
    assert_eq!(saves, 5, "the roofline, then every entry, is checkpointed");
    let on_disk = Profile::load(&path).unwrap();
    assert_eq!(on_disk, p);
    assert!(on_disk.roofline.is_some());

    // The rerun measures only what is missing.
    let resumed = run_profile(
        &device,
        on_disk,
        &plan(shapes.clone()),
        &now,
        &Quiet,
        &mut |p| p.save(&path),
    )
    .unwrap();
    let got: Vec<&OpShape> = resumed.entries.iter().map(|e| &e.shape).collect();
    let want: Vec<&OpShape> = shapes.iter().collect();
    assert_eq!(got, want, "same entries, same order, none twice");
    assert_eq!(resumed.entries[..4], p.entries[..], "finished work is kept");
    assert_eq!(Profile::load(&path).unwrap(), resumed);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_missing_adapter_is_an_error_not_a_panic() {
    let e = crate::backend::open_guarded(|| panic!("No possible adapter available for backend"))
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("wgpu found no usable GPU adapter (No possible adapter available"),
        "{msg}"
    );
    assert!(
        msg.contains("mesa-vulkan-drivers") && msg.contains("--backend flex"),
        "{msg}"
    );
}
