//! `tailor export`, the pick's export and report of `tailor search`, and the check that
//! transformers loads every exported config.json as the spec's architecture.

use crate::common::{Scratch, root, tailor};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const HOST: &str = "profiles/host-roofline.toml";

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn path_str(p: &Path) -> String {
    p.to_str().expect("utf-8 path").to_string()
}

/// tailor's exact parameter count of a spec file (config.json or spec.toml).
fn params_of(spec: &Path) -> u64 {
    tailor(&["spec", &path_str(spec), "--json"]).json()["params"]["total"]
        .as_u64()
        .expect("params.total")
}

/// A quickstart search priced by the host roofline, into `dir`.
fn search(dir: &Path) -> Value {
    tailor(&[
        "search",
        "search-spaces/quickstart.toml",
        "--device",
        HOST,
        "--out",
        &path_str(dir),
        "--json",
    ])
    .json()
}

#[test]
fn search_exports_the_pick_and_writes_a_report() {
    let s = Scratch::new("search-export");
    let out = s.0.join("run");
    let summary = search(&out);
    let pick = &summary["pick"];
    let config = read_json(&out.join("pick/config.json"));
    assert_eq!(config["model_type"], "llama");
    assert_eq!(config["architectures"][0], "LlamaForCausalLM");
    for (hf, ours) in [
        ("hidden_size", "hidden_size"),
        ("num_hidden_layers", "num_layers"),
        ("num_attention_heads", "num_heads"),
        ("num_key_value_heads", "num_kv_heads"),
        ("intermediate_size", "intermediate_size"),
        ("vocab_size", "vocab_size"),
    ] {
        assert_eq!(config[hf], pick["spec"][ours], "{hf}");
    }
    // The exported files count exactly the parameters the search priced.
    let params = pick["metrics"]["params"].as_u64().unwrap();
    assert_eq!(params_of(&out.join("pick/config.json")), params);
    assert_eq!(params_of(&out.join("pick/spec.toml")), params);
    assert_eq!(
        summary["export"]["config_json"],
        path_str(&out.join("pick/config.json"))
    );

    let card = std::fs::read_to_string(out.join("pick/MODEL_CARD.md")).unwrap();
    for needle in [
        "## Architecture",
        "## Parameters (exact)",
        "## Predicted cost on",
        "## How it was chosen",
        "1st of the",
        "(minimize decode_ms): the pick",
    ] {
        assert!(card.contains(needle), "{needle} missing from\n{card}");
    }
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for needle in [
        "## The pick",
        "![front](front.svg)",
        "![breakdown](breakdown.svg)",
        "## Top of the front",
    ] {
        assert!(report.contains(needle), "{needle} missing from\n{report}");
    }
    for svg in ["front.svg", "breakdown.svg"] {
        let text = std::fs::read_to_string(out.join(svg)).unwrap();
        assert!(text.starts_with("<svg") && text.contains("</svg>"), "{svg}");
        assert!(
            text.contains("pick"),
            "{svg} has no legend entry for the pick"
        );
    }
}

#[test]
fn export_a_front_row_and_spec_files() {
    let s = Scratch::new("export-rows");
    let run = s.0.join("run");
    search(&run);
    let front = read_json(&run.join("front.json"));
    let rows = front["rows"].as_array().unwrap();
    let row = rows
        .iter()
        .find(|r| r["picked"] == false)
        .expect("a row besides the pick");
    let id = row["id"].as_u64().unwrap();

    let out = s.0.join("row");
    let target = format!("{}#{id}", path_str(&run.join("front.json")));
    let written = tailor(&["export", &target, "--out", &path_str(&out), "--json"]).json();
    assert_eq!(written["config_json"], path_str(&out.join("config.json")));
    assert_eq!(
        params_of(&out.join("config.json")),
        row["metrics"]["params"].as_u64().unwrap()
    );
    let card = std::fs::read_to_string(out.join("MODEL_CARD.md")).unwrap();
    assert!(card.contains(&format!("candidate {id}, ")), "{card}");
    assert!(!card.contains(": the pick"), "{card}");
    assert!(card.contains("Predicted cost on"), "{card}");

    // --row is the same as #ID.
    let out2 = s.0.join("row2");
    let front_path = path_str(&run.join("front.json"));
    tailor(&[
        "export",
        &front_path,
        "--row",
        &id.to_string(),
        "--out",
        &path_str(&out2),
        "--json",
    ])
    .json();
    assert_eq!(
        read_json(&out.join("config.json")),
        read_json(&out2.join("config.json"))
    );

    // A spec file, priced on a profile for the card, in PhoneLM's flavor: PhoneLM-1.5B's
    // spec gives back its published config (but the saver's transformers_version).
    let out3 = s.0.join("phonelm");
    tailor(&[
        "export",
        "specs/phonelm-1.5b.toml",
        "--flavor",
        "phonelm",
        "--profile",
        "profiles/host-flex.toml",
        "--out",
        &path_str(&out3),
        "--json",
    ])
    .json();
    let mut published =
        read_json(&root().join("crates/spec/tests/fixtures/phonelm-1.5b.config.json"));
    published
        .as_object_mut()
        .unwrap()
        .remove("transformers_version");
    let exported = read_json(&out3.join("config.json"));
    assert_eq!(
        exported.as_object().unwrap().len(),
        published.as_object().unwrap().len()
    );
    for (k, v) in published.as_object().unwrap() {
        let same = match (v, &exported[k]) {
            (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
            (a, b) => a == b,
        };
        assert!(same, "{k}: published {v}, exported {}", exported[k]);
    }
    assert_eq!(params_of(&out3.join("config.json")), 1_618_593_280);
    let card = std::fs::read_to_string(out3.join("MODEL_CARD.md")).unwrap();
    assert!(card.contains("1,618,593,280"), "{card}");
    assert!(card.contains("trust_remote_code"), "{card}");
}

#[test]
fn bad_exports_fail_clearly() {
    let s = Scratch::new("export-bad");
    let run = s.0.join("run");
    search(&run);
    let front = path_str(&run.join("front.json"));
    let out = path_str(&s.0.join("x"));

    let e = tailor(&["export", &format!("{front}#abc"), "--out", &out]);
    assert!(
        e.assert_clean_error()
            .contains("after `#` comes the id of a front row")
    );
    let e = tailor(&["export", &format!("{front}#999999"), "--out", &out]);
    assert!(
        e.assert_clean_error()
            .contains("no row with id 999999 on this front")
    );
    let e = tailor(&["export", &format!("{front}#1"), "--row", "1", "--out", &out]);
    assert!(e.assert_clean_error().contains("give the row once"));
    let e = tailor(&["export", "specs/tiny.toml", "--row", "3", "--out", &out]);
    assert!(
        e.assert_clean_error()
            .contains("a row id applies to a search's front.json")
    );
    let e = tailor(&["export", "specs/missing.toml", "--out", &out]);
    assert!(e.assert_clean_error().contains("specs/missing.toml"));

    // A spec the flavor cannot express names the field, and nothing is written.
    let spec = s.write(
        "layernorm.toml",
        &std::fs::read_to_string(root().join("specs/tiny.toml"))
            .unwrap()
            .replace("norm = \"rmsnorm\"", "norm = \"layernorm\""),
    );
    let e = tailor(&["export", &path_str(&spec), "--out", &out]);
    let line = e.assert_clean_error();
    assert!(
        line.contains("cannot export as `llama`") && line.contains("`norm`"),
        "{line}"
    );
    assert!(!Path::new(&out).exists());
    let mut free_head = std::fs::read_to_string(root().join("specs/tiny.toml")).unwrap();
    free_head = free_head.replace("num_heads = 8", "num_heads = 8\nhead_dim = 64");
    let spec = s.write("free-head.toml", &free_head);
    let e = tailor(&[
        "export",
        &path_str(&spec),
        "--flavor",
        "phonelm",
        "--out",
        &out,
    ]);
    assert!(e.assert_clean_error().contains("`head_dim`"));
    let e = tailor(&[
        "export",
        "specs/tiny.toml",
        "--flavor",
        "gpt2",
        "--out",
        &out,
    ]);
    assert_eq!(e.code, 2, "clap rejects an unknown flavor: {}", e.stderr);
}

/// Every exported config.json loads in Hugging Face transformers as the spec's
/// architecture, with the same parameter count (computed by the Python side from the
/// config alone). Needs a Python with `transformers` (`TAILOR_PYTHON`, default python3);
/// without one the test says so and passes, unless `TAILOR_REQUIRE_TRANSFORMERS=1`
/// (set by .ci/run, which installs it).
#[test]
fn transformers_loads_every_exported_config() {
    let python = std::env::var("TAILOR_PYTHON").unwrap_or_else(|_| "python3".into());
    let required = std::env::var("TAILOR_REQUIRE_TRANSFORMERS").is_ok_and(|v| v == "1");
    let has = Command::new(&python)
        .args(["-c", "import transformers"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has {
        assert!(
            !required,
            "TAILOR_REQUIRE_TRANSFORMERS=1 but `{python} -c 'import transformers'` fails"
        );
        eprintln!("skipped: no `transformers` for {python} (set TAILOR_PYTHON)");
        return;
    }
    let s = Scratch::new("export-transformers");
    let run = s.0.join("run");
    search(&run);
    let mut manifest = Vec::new();
    let mut add = |dir: &Path| {
        manifest.push(serde_json::json!({
            "dir": path_str(dir),
            "params": params_of(&dir.join("spec.toml")),
        }));
    };
    add(&run.join("pick"));
    let exports = [
        ("specs/phonelm-0.5b.toml", "llama"),
        ("specs/phonelm-0.5b.toml", "phonelm"),
        ("specs/phonelm-1.5b.toml", "phonelm"),
        ("specs/tiny.toml", "llama"),
        (
            "crates/spec/tests/fixtures/smollm2-135m.config.json",
            "llama",
        ),
        (
            "crates/spec/tests/fixtures/tinyllama-1.1b.config.json",
            "llama",
        ),
        // Today's mixed-layer families, each in its own flavor.
        ("crates/spec/tests/fixtures/lfm2-350m.config.json", "lfm2"),
        ("crates/spec/tests/fixtures/lfm2-2.6b.config.json", "lfm2"),
        (
            "crates/spec/tests/fixtures/gemma-3-270m.config.json",
            "gemma3",
        ),
        (
            "crates/spec/tests/fixtures/qwen3.5-0.8b.config.json",
            "qwen3_5",
        ),
        ("crates/spec/tests/fixtures/qwen3-0.6b.config.json", "qwen3"),
        (
            "crates/spec/tests/fixtures/smollm3-3b.config.json",
            "smollm3",
        ),
    ];
    for (i, (spec, flavor)) in exports.iter().enumerate() {
        let dir = s.0.join(format!("e{i}"));
        tailor(&[
            "export",
            spec,
            "--flavor",
            flavor,
            "--out",
            &path_str(&dir),
            "--json",
        ])
        .json();
        add(&dir);
    }
    let manifest_path = s.write("manifest.json", &serde_json::to_string(&manifest).unwrap());
    let script = root().join("crates/cli/tests/python/check_configs.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(&manifest_path)
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("{0}/{0} exported configs", manifest.len())),
        "{stdout}"
    );
}

/// A mixed-layer spec exports in the flavor of the family that expresses it when none is
/// asked for, and a flavor that cannot express it is refused before anything is written,
/// naming the flavor that can.
#[test]
fn a_mixed_stack_exports_as_its_family() {
    let s = Scratch::new("export-family");
    let out = s.0.join("lfm2");
    let lfm2 = "crates/spec/tests/fixtures/lfm2-350m.config.json";
    tailor(&["export", lfm2, "--out", &path_str(&out), "--json"]).json();
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["model_type"], "lfm2");
    assert_eq!(config["block_auto_adjust_ff_dim"], false);
    assert_eq!(params_of(&out.join("spec.toml")), 354_483_968);
    let card = std::fs::read_to_string(out.join("MODEL_CARD.md")).unwrap();
    assert!(card.contains("`CCACCACCACACACAC`"), "{card}");

    let refused = s.0.join("refused");
    let e = tailor(&[
        "export",
        lfm2,
        "--flavor",
        "llama",
        "--out",
        &path_str(&refused),
    ])
    .assert_clean_error()
    .to_string();
    assert!(e.contains("export it as lfm2"), "{e}");
    assert!(!refused.exists(), "nothing written");
    // Priced on a profile, a mixed stack is refused by what the cost model cannot price.
    let e = tailor(&[
        "export",
        lfm2,
        "--profile",
        "profiles/host-flex.toml",
        "--out",
        &path_str(&refused),
    ])
    .assert_clean_error()
    .to_string();
    assert!(e.contains("short_conv"), "{e}");
}
