use crate::common::{Scratch, tailor};

const FIXTURES: &str = "crates/spec/tests/fixtures";

#[test]
fn published_configs_give_exact_counts() {
    for (file, total) in [
        ("tinyllama-1.1b.config.json", 1_100_048_384u64),
        ("smollm2-135m.config.json", 134_515_008),
        ("qwen2.5-0.5b.config.json", 494_032_768),
        ("phonelm-0.5b.config.json", 509_658_112),
    ] {
        let v = tailor(&["spec", &format!("{FIXTURES}/{file}"), "--json"]).json();
        assert_eq!(v["params"]["total"].as_u64(), Some(total), "{file}");
        let emb =
            v["params"]["embedding"].as_u64().unwrap() + v["params"]["lm_head"].as_u64().unwrap();
        assert_eq!(
            v["params"]["non_embedding"].as_u64(),
            Some(total - emb),
            "{file}"
        );
    }
}

#[test]
fn todays_small_model_families_count_exactly() {
    for (file, total, pattern) in [
        ("lfm2-350m.config.json", 354_483_968u64, "CCACCACCACACACAC"),
        (
            "gemma-3-270m.config.json",
            268_098_176,
            "SSSSSASSSSSASSSSSA",
        ),
        ("qwen3-0.6b.config.json", 596_049_920, &"A".repeat(28)),
        ("qwen3.5-0.8b.config.json", 752_393_024, &"LLLA".repeat(6)),
        ("smollm3-3b.config.json", 3_075_098_624, &"AAAN".repeat(9)),
    ] {
        let v = tailor(&["spec", &format!("{FIXTURES}/{file}"), "--json"]).json();
        assert_eq!(v["params"]["total"].as_u64(), Some(total), "{file}");
        assert_eq!(v["pattern"], *pattern, "{file}");
    }
    // A sliding window caps the cache: Gemma-3-270M at 4096 tokens holds 15 x 512 + 3 x
    // 4096 entries of one kv head of 256, keys and values, f16.
    let v = tailor(&[
        "spec",
        &format!("{FIXTURES}/gemma-3-270m.config.json"),
        "--json",
        "--context",
        "4096",
        "--dtype",
        "q4_0",
    ])
    .json();
    assert_eq!(
        v["kv_cache"]["bytes_at_context"],
        (15 * 512 + 3 * 4096) * 2 * 256 * 2
    );
    let r = tailor(&["spec", &format!("{FIXTURES}/lfm2-350m.config.json")]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("10 x gated short conv, kernel 3"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_mixed_stack_is_refused_by_name_where_its_operators_were_never_profiled() {
    let lfm2 = format!("{FIXTURES}/lfm2-350m.config.json");
    let e = tailor(&["predict", &lfm2, "--profile", "profiles/host-flex.toml"])
        .assert_clean_error()
        .to_string();
    assert!(
        e.contains("lfm2-350m.config.json: runs short_conv operators"),
        "{e}"
    );
    assert!(e.contains("tailor profile --spec"), "{e}");
    // An edit is of the dense stack only.
    let e = tailor(&[
        "predict",
        &lfm2,
        "--profile",
        "profiles/host-flex.toml",
        "--edit",
    ])
    .assert_clean_error()
    .to_string();
    assert!(e.contains("10 layer(s) with a short_conv mixer"), "{e}");
    assert!(e.contains("uniform dense stack only so far"), "{e}");
}

#[test]
fn spec_toml_and_config_json_agree() {
    let a = tailor(&["spec", "specs/phonelm-0.5b.toml", "--json"]).json();
    let b = tailor(&[
        "spec",
        &format!("{FIXTURES}/phonelm-0.5b.config.json"),
        "--json",
    ])
    .json();
    assert_eq!(a["params"], b["params"]);
    assert_eq!(a["flops"], b["flops"]);
    assert_eq!(a["name"], "PhoneLM-0.5B");
}

#[test]
fn json_carries_flops_bytes_and_kv_cache() {
    let v = tailor(&[
        "spec",
        "specs/tiny.toml",
        "--json",
        "--prompt",
        "16",
        "--context",
        "100",
        "--dtype",
        "q4_0",
    ])
    .json();
    assert_eq!(v["workload"]["prompt_tokens"], 16);
    assert_eq!(v["workload"]["context"], 100);
    assert_eq!(v["workload"]["precision"]["weights"], "q4_0");
    assert_eq!(v["kv_cache"]["dtype"], "f16");
    // 4 layers * (k + v) * 2 kv heads * 32 * 2 bytes.
    assert_eq!(v["kv_cache"]["bytes_per_token"], 4 * 2 * 64 * 2);
    assert_eq!(v["kv_cache"]["bytes_at_context"], 4 * 2 * 64 * 2 * 100);
    assert!(
        v["flops"]["prefill"].as_u64().unwrap() > 16 * v["flops"]["decode"].as_u64().unwrap() / 2
    );
    for d in ["f32", "f16", "bf16", "int8", "q4_0"] {
        assert!(v["weight_bytes"][d].as_u64().unwrap() > 0, "{d}");
    }
    let ops = v["decode_operators"].as_array().unwrap();
    let lm = ops.iter().find(|o| o["name"] == "lm_head").unwrap();
    assert_eq!(lm["flops"], 2 * 256 * 4096);
}

#[test]
fn human_table_names_the_model() {
    let r = tailor(&["spec", "specs/tiny.toml"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("4,917,504"), "{}", r.stdout);
    assert!(r.stdout.contains("GQA, groups of 4"), "{}", r.stdout);
    assert!(
        r.stdout.contains("decode step, per operator"),
        "{}",
        r.stdout
    );
}

#[test]
fn bad_input_gives_one_clear_error() {
    let s = Scratch::new("spec-bad");
    let e = tailor(&["spec", "does/not/exist.toml"])
        .assert_clean_error()
        .to_string();
    assert!(e.contains("does/not/exist.toml: cannot read"), "{e}");

    let p = s.write(
        "broken.toml",
        "format_version = 1\n[model\nvocab_size = 3\n",
    );
    let e = tailor(&["spec", p.to_str().unwrap()])
        .assert_clean_error()
        .to_string();
    assert!(e.contains("broken.toml:2:"), "{e}");

    let good = std::fs::read_to_string(crate::common::root().join("specs/tiny.toml")).unwrap();
    let p = s.write(
        "heads.toml",
        &good.replace("num_heads = 8", "num_heads = 7"),
    );
    let e = tailor(&["spec", p.to_str().unwrap()])
        .assert_clean_error()
        .to_string();
    assert!(
        e.contains("heads.toml:9: `model.num_heads`: 7 heads do not divide hidden_size 256"),
        "{e}"
    );

    let p = s.write("gpt.json", "{\"model_type\": \"gpt2\", \"n_embd\": 768}");
    let e = tailor(&["spec", p.to_str().unwrap()])
        .assert_clean_error()
        .to_string();
    assert!(
        e.contains("supported model types: llama, mistral, qwen2, phonelm, qwen3, gemma3_text"),
        "{e}"
    );

    let p = s.write(
        "bad.json",
        "{\"model_type\": \"llama\",\n\"hidden_size\": }",
    );
    let e = tailor(&["spec", p.to_str().unwrap()])
        .assert_clean_error()
        .to_string();
    assert!(e.contains("bad.json:2:"), "{e}");
}

#[test]
fn bad_arguments_exit_2_with_usage() {
    let r = tailor(&["spec", "specs/tiny.toml", "--dtype", "fp8"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("expected one of f32, f16, bf16, int8, q4_0"),
        "{}",
        r.stderr
    );
    let r = tailor(&["spec", "specs/tiny.toml", "--prompt", "0"]);
    assert_eq!(r.code, 2);
}
