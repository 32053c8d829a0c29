//! Functional tests of the profiler (no timing is asserted: this machine is shared).

use crate::{Backend, ProfilePlan, Quiet, TimingOptions, bench, new_profile, run_profile};
use std::time::Duration;
use tailor_cost::{MemorySource, OpShape, Profile};
use tailor_spec::{Activation, FfnKind, ModelSpec, NormKind, Phase};

/// Barely any timing: these tests check that operators run and files are right.
fn quick() -> TimingOptions {
    TimingOptions {
        cycle_bytes: 1 << 20,
        warmup: Duration::ZERO,
        min_samples: 3,
        min_time: Duration::ZERO,
        target_spread: 10.0,
        max_time: Duration::from_millis(5),
    }
}

/// Every kind of shape: embedding, norms (RMS, Layer with bias), residual adds, linears
/// with and without bias, causal prefill attention with GQA, decode attention against a
/// cache, gated and plain FFNs with each activation, tied and untied LM heads.
fn every_kind() -> Vec<OpShape> {
    let mut spec = ModelSpec::llama(300, 64, 2, 4, 2, 96);
    spec.tie_embeddings = true;
    let mut shapes: Vec<OpShape> = OpShape::for_spec(&spec, Phase::Prefill { tokens: 5 });
    shapes.extend(OpShape::for_spec(&spec, Phase::Decode { context: 7 }));
    spec.norm = NormKind::LayerNorm;
    spec.norm_bias = true;
    spec.qkv_bias = true;
    spec.ffn = FfnKind::Plain;
    spec.tie_embeddings = false;
    for act in Activation::ALL {
        spec.activation = *act;
        shapes.extend(OpShape::for_spec(&spec, Phase::Prefill { tokens: 3 }));
    }
    // An edit's shapes: an LM head over several rows, and the gradient entry of every
    // kind above.
    shapes.push(OpShape::LmHead {
        tokens: 3,
        hidden: 64,
        vocab: 300,
        tied: true,
    });
    let grads: Vec<OpShape> = shapes.iter().map(OpShape::grad).collect();
    shapes.extend(grads);
    // The mixers of mixed stacks: short convolutions, windowed prefill (longer than the
    // window) and decode, NoPE, q/k norms, the output gate, Gated DeltaNet, FFN-only layers.
    for spec in mixed_specs() {
        shapes.extend(OpShape::for_spec(&spec, Phase::Prefill { tokens: 6 }));
        shapes.extend(OpShape::for_spec(&spec, Phase::Decode { context: 7 }));
    }
    shapes.sort();
    shapes.dedup();
    shapes
}

/// The bp step's gradient is the true one: along a random direction it matches the
/// central difference of the loss (what the zo step estimates), on a small model in f32.
#[test]
fn the_edit_gradient_matches_the_losses_finite_difference() {
    use burn::tensor::{Distribution, Tensor};
    let spec = ModelSpec::llama(300, 64, 4, 4, 2, 96);
    let e = tailor_cost::EditWorkload {
        tokens: 6,
        target_tokens: 2,
        ..Default::default()
    };
    let d = Backend::Flex.open().unwrap().autodiff();
    let run = crate::model::EditRun::new(crate::model::Model::random(&spec, 6, &d).unwrap(), &e);
    let v = Tensor::<2>::random([1, 64], Distribution::Normal(0.0, 0.5), &d);
    let u = Tensor::<2>::random([1, 64], Distribution::Normal(0.0, 1.0), &d);
    let leaf = v.clone().require_grad();
    let grads = run.loss(leaf.clone()).backward();
    let g = leaf.grad(&grads).unwrap();
    let along: f32 = (g * u.clone()).sum().into_scalar();
    let eps = 1e-2;
    let up: f32 = run.loss(v.clone() + u.clone() * eps).into_scalar();
    let down: f32 = run.loss(v - u * eps).into_scalar();
    let fd = (up - down) / (2.0 * eps as f32);
    assert!(
        (along - fd).abs() <= 0.02 * along.abs().max(fd.abs()) + 1e-3,
        "backward {along} vs finite difference {fd}"
    );
    // Both steps run and move v.
    let zo = run.zo_step();
    let bp = run.bp_step();
    for (name, t) in [("zo", zo), ("bp", bp)] {
        let moved: f32 = t.abs().sum().into_scalar();
        assert!(moved.is_finite() && moved > 0.0, "{name}: {moved}");
    }
}

/// A gradient entry's call computes the activation gradient, and none for the frozen
/// weights: for `y = x W` seeded with ones, every row of `dx` is the row sums of `W`.
#[test]
fn gradient_entries_backpropagate_to_the_activations_only() {
    use burn::tensor::{Distribution, Tensor};
    let d = Backend::Flex.open().unwrap().autodiff();
    let x = Tensor::<2>::random([3, 4], Distribution::Default, &d).require_grad();
    let w = Tensor::<2>::random([4, 5], Distribution::Default, &d);
    let grads = crate::ops::linear(x.clone(), &w, None).backward();
    let dx = x.grad(&grads).expect("x requires a gradient");
    assert!(w.grad(&grads).is_none());
    let expect = w.clone().sum_dim(1).reshape([1, 4]).repeat_dim(0, 3);
    let diff: f32 = (dx - expect).abs().max().into_scalar();
    assert!(diff < 1e-5, "{diff}");
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
    let r2 = |s: [usize; 2]| Tensor::<2>::random(s, Distribution::Default, &d);
    let h = ops::Heads {
        heads: 4,
        kv_heads: 2,
        head_dim: 8,
    };
    let rope = ops::Rope::new(16, 8, 10_000.0, &d);
    // GQA prefill: 4 query heads over 2 KV heads.
    let (out, k, v) = ops::attention_prefill(r2([6, 32]), r2([6, 16]), r2([6, 16]), h, Some(&rope));
    assert_eq!(out.dims(), [6, 32]);
    assert_eq!((k.dims(), v.dims()), ([1, 2, 6, 8], [1, 2, 6, 8]));
    let (out, k, v) = ops::attention_decode(
        r2([1, 32]),
        r2([1, 16]),
        r2([1, 16]),
        h,
        Some(&rope),
        r([1, 2, 9, 8]),
        r([1, 2, 9, 8]),
    );
    assert_eq!(out.dims(), [1, 32]);
    assert_eq!(k.dims(), [1, 2, 10, 8]);
    assert_eq!(v.dims(), [1, 2, 10, 8]);
    // RoPE at position 0 is the identity, and it keeps every pair's norm.
    let x = r([1, 2, 3, 8]);
    let at0 = rope.apply(x.clone().narrow(2, 0, 1), 0);
    let same: Vec<f32> = (at0 - x.clone().narrow(2, 0, 1))
        .abs()
        .max()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert!(same[0] < 1e-6);
    let norms = |t: Tensor<4>| -> Vec<f32> {
        t.square()
            .sum_dim(3)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    };
    let (a, b) = (norms(x.clone()), norms(rope.apply(x, 5)));
    assert!(
        a.iter()
            .zip(&b)
            .all(|(a, b)| (a - b).abs() < 1e-4 * a.max(1.0))
    );
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

    // First run stops after 4 sessions (the first round of 4 entries), as a kill would
    // after the 4th checkpoint.
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
    assert_eq!(got, want, "same entries, in the plan's order, none twice");
    for b in &p.entries {
        let a = resumed.entry(&b.shape).unwrap();
        assert_eq!(a.rounds[0], b.rounds[0], "finished work is kept");
    }
    assert!(resumed.entries.iter().all(|e| e.rounds.len() == 3));
    for e in &resumed.entries {
        assert!(e.p10_us <= e.median_us && e.median_us <= e.p90_us, "{e:?}");
    }
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

/// A small spec with a stack, from its spec.toml text.
fn stacked(model: &str) -> ModelSpec {
    let src = format!("format_version = 1\nname = \"t\"\n\n[model]\n{model}");
    tailor_spec::SpecFile::parse(std::path::Path::new("t.toml"), &src)
        .unwrap_or_else(|e| panic!("{e}"))
        .model
}

/// Small models of today's mixed stacks: LFM2's (gated short convolutions, with biases,
/// and GQA with q/k norms), Gemma 3's (sliding windows of 4 with a global layer, head_dim
/// apart from hidden/heads, four norms per layer), Qwen3.5's (Gated DeltaNet with an
/// attention layer with its output gate) and one with NoPE and FFN-only layers.
fn mixed_specs() -> Vec<ModelSpec> {
    let base = |layers: u32, activation: &str| {
        format!(
            "vocab_size = 300\nhidden_size = 64\nnum_layers = {layers}\nnum_heads = 4\n\
             num_kv_heads = 2\nintermediate_size = 96\ntie_embeddings = true\n\
             ffn = \"gated\"\nactivation = \"{activation}\"\nnorm = \"rmsnorm\"\n\
             norm_bias = false\nnorm_eps = 1e-6\nqkv_bias = false\no_bias = false\n\
             mlp_bias = false\nrope_theta = 10000.0\nmax_position_embeddings = 64\n"
        )
    };
    vec![
        stacked(&format!(
            "{}\n[model.stack]\nlayout = \"lfm2\"\npattern = [\"conv\", \"conv\", \"attn\"]\n\
             [model.stack.kinds.conv]\nmixer = \"short_conv\"\nkernel = 3\nconv_bias = true\n\
             [model.stack.kinds.attn]\nmixer = \"attention\"\nqk_norm = true\n",
            base(4, "silu")
        )),
        stacked(&format!(
            "{}\n[model.stack]\nlayout = \"gemma3\"\n\
             pattern = [\"local\", \"local\", \"global\"]\n\
             [model.stack.kinds.local]\nmixer = \"attention\"\nwindow = 4\nhead_dim = 32\nqk_norm = true\n\
             [model.stack.kinds.global]\nmixer = \"attention\"\nhead_dim = 32\nqk_norm = true\n",
            base(3, "gelu_tanh")
        )),
        stacked(&format!(
            "{}\n[model.stack]\nlayout = \"llama\"\npattern = [\"lin\", \"lin\", \"full\"]\n\
             [model.stack.kinds.lin]\nmixer = \"linear_attention\"\nkey_heads = 2\nvalue_heads = 4\n\
             key_head_dim = 16\nvalue_head_dim = 8\nconv_kernel = 4\n\
             [model.stack.kinds.full]\nmixer = \"attention\"\nhead_dim = 32\nqk_norm = true\n\
             output_gate = true\n",
            base(3, "silu")
        )),
        stacked(&format!(
            "{}\n[model.stack]\nlayout = \"llama\"\npattern = [\"rope\", \"nope\", \"skip\"]\n\
             [model.stack.kinds.rope]\nmixer = \"attention\"\n\
             [model.stack.kinds.nope]\nmixer = \"attention\"\nrope = false\n\
             [model.stack.kinds.skip]\nmixer = \"none\"\n",
            base(3, "silu")
        )),
    ]
}

fn specs_of_every_kind() -> Vec<ModelSpec> {
    let mut a = ModelSpec::llama(500, 64, 2, 4, 2, 96);
    a.tie_embeddings = true;
    let mut b = ModelSpec::llama(300, 48, 3, 3, 3, 80);
    b.norm = NormKind::LayerNorm;
    b.norm_bias = true;
    b.qkv_bias = true;
    b.o_bias = true;
    b.mlp_bias = true;
    b.ffn = FfnKind::Plain;
    b.activation = Activation::GeluTanh;
    let mut c = ModelSpec::llama(256, 64, 1, 2, 1, 128);
    c.head_dim = Some(16); // q width 32, narrower than the hidden size
    c.activation = Activation::Relu;
    vec![a, b, c]
}

#[test]
fn the_built_model_has_exactly_the_specs_parameters() {
    use crate::model::Model;
    let d = Backend::Flex.open().unwrap();
    for spec in specs_of_every_kind().into_iter().chain(mixed_specs()) {
        let m = Model::random(&spec, 8, &d).unwrap();
        assert_eq!(m.num_params(), spec.params().total, "{spec:?}");
    }
    // A published size: SmolLM2-135M (tied, GQA 9/3, 30 layers), 134,515,008 parameters.
    let smol = tailor_spec::load_spec(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../spec/tests/fixtures/smollm2-135m.config.json"
    )))
    .unwrap()
    .spec;
    let m = Model::random(&smol, 4, &d).unwrap();
    assert_eq!(m.num_params(), 134_515_008);
}

/// The model makes exactly the calls `OpShape::pass` lists for a decode step, in kind,
/// order and number, row by row (what `tailor measure --decode-ops` sets beside the
/// profile's entries), for the dense stack and every mixer.
#[test]
fn a_decode_step_makes_the_calls_of_its_pass_row_by_row() {
    use crate::model::{Model, PassOp};
    let d = Backend::Flex.open().unwrap();
    for spec in specs_of_every_kind().into_iter().chain(mixed_specs()) {
        let m = Model::random(&spec, 8, &d).unwrap();
        let mut order = Vec::new();
        drop(m.decode_marked(m.prompt(1), m.random_state(5), &mut |op| order.push(op)));
        let phase = Phase::Decode { context: 5 };
        let pass = OpShape::pass(&spec, phase);
        let rows = OpShape::call_rows(&spec, phase);
        let kinds: Vec<PassOp> = rows
            .iter()
            .map(|&r| PassOp::of(&pass[r].0).unwrap())
            .collect();
        assert_eq!(order, kinds, "{spec:?}");
        let mut counts = vec![0u64; pass.len()];
        rows.iter().for_each(|&r| counts[r] += 1);
        let calls: Vec<u64> = pass.iter().map(|(_, c)| *c).collect();
        assert_eq!(counts, calls, "{spec:?}");
        assert_eq!(order.first(), Some(&PassOp::Embedding));
        assert_eq!(order.last(), Some(&PassOp::LmHead));
    }
}

/// Timing a decode step operator by operator runs the chain check on mixed stacks too.
#[test]
fn a_mixed_stacks_decode_step_is_timed_row_by_row() {
    use crate::model::{Model, time_decode_ops};
    let d = Backend::Flex.open().unwrap();
    for spec in mixed_specs() {
        let m = Model::random(&spec, 8, &d).unwrap();
        let chain = time_decode_ops(&m, 5, &quick()).unwrap();
        let rows = OpShape::pass(&spec, Phase::Decode { context: 5 }).len();
        assert_eq!(chain.ops.len(), rows, "{spec:?}");
    }
}

#[test]
fn decoding_after_a_prefill_matches_the_longer_prefill() {
    use crate::model::Model;
    use burn::tensor::{Int, Tensor, TensorData};
    let d = Backend::Flex.open().unwrap();
    // The mixed stacks: each layer's state (a window's KV, a convolution's inputs, the
    // delta rule's state from its chunked form) carries the prompt into the next step.
    for spec in specs_of_every_kind().into_iter().chain(mixed_specs()) {
        let m = Model::random(&spec, 8, &d).unwrap();
        let ids: Vec<i64> = vec![3, 17, 42, 7, 99, 1];
        let t = |v: &[i64]| Tensor::<1, Int>::from_data(TensorData::new(v.to_vec(), [v.len()]), &d);
        let (full, cache) = m.prefill(t(&ids));
        assert_eq!(full.dims(), [1, spec.vocab_size as usize]);
        assert_eq!(cache.len(), 6);
        let (_, cache) = m.prefill(t(&ids[..5]));
        let (step, grown) = m.decode(t(&ids[5..]), cache);
        assert_eq!(grown.len(), 6);
        let diff: Vec<f32> = (full.clone() - step)
            .abs()
            .max()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let scale: Vec<f32> = full.abs().max().into_data().try_to_vec::<f32>().unwrap();
        assert!(scale[0].is_finite() && scale[0] > 0.0);
        assert!(
            diff[0] <= 1e-4 * scale[0].max(1.0),
            "{spec:?}: {diff:?} vs {scale:?}"
        );
    }
}

/// Peak memory is the process's resident high-water mark, which every other test of this
/// process moves (allocating, freeing, resetting the mark). The measuring test therefore
/// runs alone, in a child process of this test binary.
const ALONE: &str = "TAILOR_PROFILER_TEST_ALONE";

#[test]
fn measuring_a_model_times_both_phases_and_sees_its_weights() {
    let name = "tests::measuring_a_model_times_both_phases_and_sees_its_weights";
    if std::env::var_os(ALONE).is_none() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([name, "--exact", "--test-threads=1", "--nocapture"])
            .env(ALONE, "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "the child failed:\n{text}");
        assert!(text.contains("1 passed"), "the child ran no test:\n{text}");
        return;
    }
    let d = Backend::Flex.open().unwrap();
    let spec = ModelSpec::llama(4096, 256, 4, 4, 2, 768);
    let m = crate::measure_model(Backend::Flex, &d, &spec, 16, 32, true, Some(&quick())).unwrap();
    assert_eq!(m.params, spec.params().total);
    let (prefill, decode) = (m.prefill.unwrap(), m.decode.unwrap());
    assert!(prefill.samples_us.len() >= 3 && decode.samples_us.len() >= 3);
    assert!(prefill.median_us > 0.0 && decode.median_us > 0.0);
    if cfg!(target_os = "linux") {
        assert_eq!(m.memory_source, MemorySource::Rss);
        let peak = m.peak_memory_bytes.unwrap();
        let weights = spec.weight_bytes(tailor_spec::DType::F32);
        // The resident set must hold at least the weights it computed with.
        assert!(peak as f64 >= 0.9 * weights as f64, "{peak} < {weights}");
    }
}

/// The whole-model builder on lavapipe in CI (functional, no timing asserted).
#[test]
fn wgpu_runs_a_whole_model() {
    if std::env::var_os("TAILOR_SKIP_WGPU").is_some() {
        eprintln!("TAILOR_SKIP_WGPU set: wgpu not tested");
        return;
    }
    let d = Backend::Wgpu.open().unwrap();
    let spec = ModelSpec::llama(512, 64, 2, 4, 2, 128);
    let m = crate::measure_model(Backend::Wgpu, &d, &spec, 8, 16, true, Some(&quick())).unwrap();
    assert_eq!(m.params, spec.params().total);
    assert!(m.prefill.unwrap().median_us > 0.0 && m.decode.unwrap().median_us > 0.0);
}

/// Several models timed against each other: each gets its own measurement of both phases.
#[test]
fn interleaved_models_are_each_timed() {
    let d = Backend::Flex.open().unwrap();
    let specs = [
        ModelSpec::llama(4096, 128, 2, 4, 2, 384),
        ModelSpec::llama(2048, 256, 3, 4, 4, 512),
    ];
    let ms = crate::measure_models(&d, &specs, 8, 16, &quick()).unwrap();
    assert_eq!(ms.len(), 2);
    for (m, spec) in ms.iter().zip(&specs) {
        assert_eq!(m.params, spec.params().total);
        let (prefill, decode) = (m.prefill.as_ref().unwrap(), m.decode.as_ref().unwrap());
        assert!(prefill.samples_us.len() >= 3 && decode.samples_us.len() >= 3);
        assert!(prefill.p10_us <= prefill.median_us && decode.median_us <= decode.p90_us);
        assert_eq!(
            (m.peak_memory_bytes, m.memory_source),
            (None, MemorySource::None)
        );
    }
    assert!(
        crate::measure_models(&d, &[], 8, 16, &quick())
            .unwrap()
            .is_empty()
    );
}
