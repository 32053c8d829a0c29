//! The GGUF files tailor writes, loaded and run by a real llama-bench: it must count
//! exactly tailor's parameters, for every weight type and the spec features the `llama`
//! architecture expresses. Needs llama-bench ($TAILOR_LLAMA_BENCH, the pinned build of
//! scripts/build-llama-bench.sh under target/llama.cpp/, or PATH); without it the tests say
//! so and pass, unless TAILOR_REQUIRE_LLAMA=1 (set by .ci/run, which builds it).

use std::path::{Path, PathBuf};
use tailor_llamacpp::profile::Phase;
use tailor_llamacpp::run::{Quiet, measure_models};
use tailor_llamacpp::{LlamaBench, Method, Settings, Test, WeightType, write_model};
use tailor_spec::ModelSpec;

/// The llama-bench to test with, or `None` (after saying why) when there is none.
fn llama_bench() -> Option<LlamaBench> {
    if let Ok(b) = LlamaBench::locate(None) {
        return Some(b);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/llama.cpp");
    let built = std::fs::read_dir(&root).ok().and_then(|dirs| {
        dirs.filter_map(|d| d.ok().map(|d| d.path().join("build/bin/llama-bench")))
            .find(|p| p.is_file())
    });
    match built {
        Some(p) => Some(LlamaBench {
            program: p,
            prefix: Vec::new(),
        }),
        None => {
            let required = std::env::var("TAILOR_REQUIRE_LLAMA").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "TAILOR_REQUIRE_LLAMA=1 but no llama-bench: run scripts/build-llama-bench.sh"
            );
            eprintln!("skipped: no llama-bench (scripts/build-llama-bench.sh builds one)");
            None
        }
    }
}

fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch folder");
    d
}

fn quick() -> Settings {
    Settings {
        threads: 2,
        repetitions: 1,
        ..Settings::default()
    }
}

#[test]
fn llama_bench_loads_every_weight_type_and_counts_tailors_parameters() {
    let Some(bench) = llama_bench() else { return };
    let dir = scratch("llama-params");
    let mut specs = vec![
        // GQA, tied embeddings.
        ModelSpec::llama(512, 128, 2, 4, 2, 384),
        // MHA, untied head, biases on q/k/v (Qwen2-style) and an explicit head_dim.
        {
            let mut s = ModelSpec::llama(1024, 256, 3, 4, 4, 640);
            s.tie_embeddings = false;
            s.qkv_bias = true;
            s.head_dim = Some(32);
            s
        },
    ];
    // MQA with a ReLU FFN: timed as SiLU, same parameters.
    specs.push({
        let mut s = ModelSpec::llama(256, 192, 1, 6, 1, 512);
        s.activation = tailor_spec::Activation::Relu;
        s
    });
    for (i, spec) in specs.iter().enumerate() {
        for wt in WeightType::ALL {
            let path = dir.join(format!("m{i}-{wt}.gguf"));
            let w = write_model(spec, wt, "test", &path, 3).unwrap();
            assert_eq!(w.params, spec.total_params(), "spec {i} {wt}");
            let run = bench
                .run(&[&path], Test::Prefill { tokens: 8 }, &quick(), false)
                .unwrap_or_else(|e| panic!("spec {i} {wt}: {e}"));
            let r = &run.records[0];
            assert_eq!(r.model_n_params, spec.total_params(), "spec {i} {wt}");
            assert!(
                r.model_type.to_lowercase().contains(&wt.to_string()),
                "{}",
                r.model_type
            );
            let _ = std::fs::remove_file(&path);
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn whole_models_are_timed_in_rounds_with_their_memory() {
    let Some(bench) = llama_bench() else { return };
    let dir = scratch("llama-measure");
    let specs = [
        ModelSpec::llama(512, 128, 2, 4, 2, 384),
        ModelSpec::llama(512, 128, 4, 4, 2, 384),
    ];
    let method = Method {
        decode_tokens: 4,
        repetitions: 1,
        rounds: 2,
    };
    let out = measure_models(
        &bench,
        &specs,
        WeightType::Q8_0,
        [Phase::Prefill { tokens: 8 }, Phase::Decode { context: 16 }],
        &quick(),
        &method,
        2,
        &dir,
        0,
        &Quiet,
    )
    .unwrap();
    for (t, s) in out.iter().zip(&specs) {
        let t = t.as_ref().unwrap();
        assert_eq!(t.prefill_rounds_ms.len(), 2);
        assert_eq!(t.decode_rounds_ms.len(), 2);
        assert_eq!(t.params, s.total_params());
        // The process held at least the weights.
        assert!(t.peak_rss_bytes.unwrap() > t.file_bytes / 2);
    }
    // The model files are removed after timing.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}

#[test]
fn a_failing_llama_bench_is_one_clear_error() {
    let dir = scratch("llama-failing");
    let fake = dir.join("llama-bench");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'error: failed to load model' >&2\nexit 3\n",
    )
    .unwrap();
    let status = std::process::Command::new("chmod")
        .arg("+x")
        .arg(&fake)
        .status()
        .unwrap();
    assert!(status.success());
    let bench = LlamaBench::locate(Some(&fake)).unwrap();
    let e = bench
        .run(
            &[Path::new("x.gguf")],
            Test::Prefill { tokens: 8 },
            &quick(),
            false,
        )
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("failed")
            && e.contains("error: failed to load model")
            && e.contains("-m x.gguf"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A small spec of each mixed-layer family, built the way `tailor spec` reads the family's
/// config.json (a fixture with its sizes shrunk).
fn small_family_specs() -> Vec<(&'static str, ModelSpec)> {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec/tests/fixtures");
    let shrink = |file: &str, edits: &[(&str, serde_json::Value)]| {
        let src = std::fs::read_to_string(fixtures.join(file)).expect("fixture");
        let mut v: serde_json::Value = serde_json::from_str(&src).expect("fixture json");
        let target = if v.get("text_config").is_some() {
            v.get_mut("text_config").expect("text_config")
        } else {
            &mut v
        };
        for (k, x) in edits {
            target[*k] = x.clone();
        }
        let path = scratch(&format!("family-{file}")).join("config.json");
        std::fs::write(&path, serde_json::to_string(&v).expect("json")).expect("write");
        tailor_spec::load_spec(&path).expect("small config").spec
    };
    use serde_json::json;
    vec![
        (
            "lfm2",
            shrink(
                "lfm2-350m.config.json",
                &[
                    ("vocab_size", json!(512)),
                    ("hidden_size", json!(128)),
                    ("num_attention_heads", json!(4)),
                    ("num_key_value_heads", json!(2)),
                    ("block_ff_dim", json!(384)),
                ],
            ),
        ),
        (
            "gemma3",
            shrink(
                "gemma-3-270m.config.json",
                &[
                    ("vocab_size", json!(512)),
                    ("hidden_size", json!(128)),
                    ("head_dim", json!(64)),
                    ("intermediate_size", json!(256)),
                    ("sliding_window", json!(16)),
                    ("num_hidden_layers", json!(6)),
                    (
                        "layer_types",
                        json!([
                            "sliding_attention",
                            "sliding_attention",
                            "full_attention",
                            "sliding_attention",
                            "sliding_attention",
                            "full_attention"
                        ]),
                    ),
                ],
            ),
        ),
        (
            "qwen35",
            shrink(
                "qwen3.5-0.8b.config.json",
                &[
                    ("vocab_size", json!(512)),
                    ("hidden_size", json!(128)),
                    ("intermediate_size", json!(256)),
                    ("head_dim", json!(64)),
                    ("linear_key_head_dim", json!(32)),
                    ("linear_value_head_dim", json!(32)),
                    ("linear_num_key_heads", json!(2)),
                    ("linear_num_value_heads", json!(4)),
                    ("num_hidden_layers", json!(4)),
                    (
                        "layer_types",
                        json!([
                            "linear_attention",
                            "linear_attention",
                            "linear_attention",
                            "full_attention"
                        ]),
                    ),
                ],
            ),
        ),
        (
            "qwen3",
            shrink(
                "qwen3-0.6b.config.json",
                &[
                    ("vocab_size", json!(512)),
                    ("hidden_size", json!(128)),
                    ("intermediate_size", json!(256)),
                    ("head_dim", json!(64)),
                    ("num_hidden_layers", json!(3)),
                ],
            ),
        ),
        (
            "smollm3",
            shrink(
                "smollm3-3b.config.json",
                &[
                    ("vocab_size", json!(512)),
                    ("hidden_size", json!(128)),
                    ("intermediate_size", json!(256)),
                    ("num_attention_heads", json!(4)),
                    ("num_key_value_heads", json!(2)),
                    ("num_hidden_layers", json!(8)),
                    ("no_rope_layers", json!([1, 1, 1, 0, 1, 1, 1, 0])),
                ],
            ),
        ),
    ]
}

/// Every mixed-layer family tailor writes loads in the pinned llama-bench as its own
/// architecture, runs a prefill and a decode, and counts exactly tailor's parameters.
#[test]
fn llama_bench_loads_each_family_and_counts_tailors_parameters() {
    let Some(bench) = llama_bench() else { return };
    let dir = scratch("llama-families");
    for (arch, spec) in small_family_specs() {
        assert!(spec.stack.is_some(), "{arch}: a stack");
        for wt in [WeightType::F32, WeightType::Q4_0] {
            let path = dir.join(format!("{arch}-{wt}.gguf"));
            let w = write_model(&spec, wt, "test", &path, 5)
                .unwrap_or_else(|e| panic!("{arch} {wt}: {e}"));
            assert_eq!(w.params, spec.total_params(), "{arch} {wt}");
            assert!(w.substitutions.is_empty(), "{arch}: {:?}", w.substitutions);
            for test in [
                Test::Prefill { tokens: 8 },
                Test::Decode {
                    depth: 32,
                    tokens: 4,
                },
            ] {
                let run = bench
                    .run(&[&path], test, &quick(), false)
                    .unwrap_or_else(|e| panic!("{arch} {wt} {test:?}: {e}"));
                let r = &run.records[0];
                assert_eq!(r.model_n_params, spec.total_params(), "{arch} {wt}");
                assert!(
                    r.model_type.to_lowercase().contains(arch),
                    "{arch}: {}",
                    r.model_type
                );
            }
            let _ = std::fs::remove_file(&path);
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The published shapes themselves (LFM2-350M, Gemma-3-270M, Qwen3-0.6B, Qwen3.5-0.8B text,
/// SmolLM3-3B) as random-weight Q4_0 files: llama-bench loads each and counts the published
/// parameter count. Writes about 3 GB in turn, so it is not in the default run:
/// `cargo test --release -p tailor-llamacpp --test llama_bench -- --ignored published`.
#[test]
#[ignore = "writes the published shapes (about 3 GB in turn); run with --ignored"]
fn published_family_shapes_load_with_their_counts() {
    let Some(bench) = llama_bench() else { return };
    let dir = scratch("llama-published");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec/tests/fixtures");
    for (file, total) in [
        ("lfm2-350m.config.json", 354_483_968u64),
        ("gemma-3-270m.config.json", 268_098_176),
        ("qwen3-0.6b.config.json", 596_049_920),
        ("qwen3.5-0.8b.config.json", 752_393_024),
        ("smollm3-3b.config.json", 3_075_098_624),
    ] {
        let spec = tailor_spec::load_spec(&fixtures.join(file))
            .expect("fixture")
            .spec;
        let path = dir.join(format!("{file}.gguf"));
        let w = write_model(&spec, WeightType::Q4_0, "published", &path, 1)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(w.params, total, "{file}");
        let run = bench
            .run(&[&path], Test::Prefill { tokens: 16 }, &quick(), false)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let r = &run.records[0];
        eprintln!(
            "{file}: llama-bench `{}`, {} parameters, {} bytes",
            r.model_type, r.model_n_params, r.model_size
        );
        assert_eq!(r.model_n_params, total, "{file}");
        std::fs::remove_file(&path).expect("remove");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
