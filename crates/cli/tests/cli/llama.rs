//! The llama.cpp engine end to end: profile (cut short, killed with SIGKILL, resumed),
//! predict, search, validate and run on a small space with a real llama-bench; and the
//! errors a user meets without one. Needs llama-bench ($TAILOR_LLAMA_BENCH, the pinned
//! build under target/llama.cpp/ from scripts/build-llama-bench.sh, or PATH); without it
//! the tests that run it say so and pass, unless TAILOR_REQUIRE_LLAMA=1 (set by .ci/run).

use crate::common::{Scratch, root, tailor_env, tailor_in};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn llama_bench() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TAILOR_LLAMA_BENCH").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let built = std::fs::read_dir(root().join("target/llama.cpp"))
        .ok()
        .and_then(|dirs| {
            dirs.filter_map(|d| d.ok().map(|d| d.path().join("build/bin/llama-bench")))
                .find(|p| p.is_file())
        });
    if built.is_none() {
        assert!(
            !std::env::var("TAILOR_REQUIRE_LLAMA").is_ok_and(|v| v == "1"),
            "TAILOR_REQUIRE_LLAMA=1 but no llama-bench: run scripts/build-llama-bench.sh"
        );
        eprintln!("skipped: no llama-bench (scripts/build-llama-bench.sh builds one)");
    }
    built
}

/// 32 small Q4_0 configs: 2 widths x 2 depths x 2 head sizes x 2 KV groups x 2 FFN widths.
const SPACE: &str = r#"
format_version = 1
name = "llama-e2e"
[model]
vocab_size = 512
hidden_size = [128, 256]
num_layers = [2, 4]
head_dim = [32, 64]
kv_group = [1, 2]
ffn_ratio = [2.0, 3.0]
ffn_multiple = 64
ffn = "gated"
activation = "silu"
norm = "rmsnorm"
tie_embeddings = true
[workload]
prompt_tokens = 16
context = 32
weights = "q4_0"
[objectives]
minimize = ["decode_ms", "prefill_ms"]
[pick]
minimize = "decode_ms"
"#;

const SPEC: &str = r#"
format_version = 1
name = "member"
[model]
vocab_size = 512
hidden_size = 256
num_layers = 4
num_heads = 4
num_kv_heads = 2
intermediate_size = 768
ffn = "gated"
activation = "silu"
norm = "rmsnorm"
tie_embeddings = true
"#;

/// Fast settings: two repetitions (the time is the last), 4 decode steps.
const QUICK: [&str; 4] = ["--repetitions", "2", "--decode-tokens", "4"];

fn probes_in(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path)
        .map(|s| s.matches("[[probes]]").count())
        .unwrap_or(0)
}

#[test]
fn profile_predict_search_validate_with_llama_bench() {
    let Some(lb) = llama_bench() else { return };
    let lb = lb.display().to_string();
    let env = [("TAILOR_LLAMA_BENCH", lb.as_str())];
    let dir = Scratch::new("llama-e2e");
    dir.write("space.toml", SPACE);
    dir.write("member.toml", SPEC);
    let base = [
        "profile",
        "--engine",
        "llama.cpp",
        "--space",
        "space.toml",
        "--rounds",
        "1",
    ];
    let args = |out: &str, extra: &[&str]| -> Vec<String> {
        base.iter()
            .chain(&["--out", out])
            .chain(QUICK.iter())
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };
    let run = |a: &[String]| {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        tailor_env(&dir.0, &a, &env)
    };

    // An uninterrupted profile: the reference.
    let full = run(&args("full.toml", &["--json"])).json();
    assert_eq!(full["missing"], 0, "{full}");
    let probes = full["probes"].as_u64().unwrap() as usize;
    // Per width: reference at two depths + 3 other attentions + 1 other FFN.
    assert_eq!(probes, 2 * (2 + 3 + 1));
    assert_eq!(probes_in(&dir.0.join("full.toml")), probes * 2);

    // Cut short by --limit, then killed with SIGKILL mid-run, then resumed.
    let cut = run(&args("p.toml", &["--limit", "3", "--json"])).json();
    assert_eq!(cut["probe_visits_now"], 3);
    assert_eq!(cut["missing"].as_u64(), Some(probes as u64 - 3));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tailor"))
        .args(args("p.toml", &[]))
        .current_dir(&dir.0)
        .env("TAILOR_LLAMA_BENCH", &lb)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let p = dir.0.join("p.toml");
    let before = probes_in(&p);
    let t = Instant::now();
    while probes_in(&p) < before + 2 && t.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let resumed = run(&args("p.toml", &["--json"])).json();
    assert_eq!(resumed["missing"], 0, "{resumed}");
    // Exactly the entries of the uninterrupted run, each timed once.
    let entries = |path: &str| {
        let text = std::fs::read_to_string(dir.0.join(path)).unwrap();
        let v: toml::Value = toml::from_str(&text).unwrap();
        let mut keys: Vec<String> = v["probes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                assert_eq!(e["rounds_ms"].as_array().unwrap().len(), 1, "{e}");
                format!("{} {}", e["model"], e["phase"])
            })
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(entries("p.toml"), entries("full.toml"));
    // No probe model is left behind, not even the killed run's.
    assert!(!dir.0.join(".p.toml.probes").exists());
    assert!(
        std::fs::read_dir(&dir.0).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".gguf"))
    );

    // predict, search and validate on it.
    let pred = tailor_env(
        &dir.0,
        &[
            "predict",
            "member.toml",
            "--profile",
            "p.toml",
            "--prompt",
            "16",
            "--context",
            "32",
            "--json",
        ],
        &env,
    )
    .json();
    assert_eq!(pred["engine"], "llama.cpp");
    assert_eq!(pred["derived"].as_array().unwrap().len(), 0, "{pred}");
    assert!(pred["decode_ms_per_token"].as_f64().unwrap() > 0.0);
    let search = tailor_env(
        &dir.0,
        &[
            "search",
            "space.toml",
            "--profile",
            "p.toml",
            "--out",
            "s",
            "--json",
        ],
        &env,
    )
    .json();
    assert_eq!(search["cost_model"]["kind"], "llama.cpp", "{search}");
    assert!(dir.0.join("s/front.json").is_file());

    // An edit of the prompt's length: its zo passes are the profile's prefill probes, so
    // llama.cpp prices the zo edit; it runs no backward pass, so bp stays unpriced.
    let edit_space = SPACE
        .replace(
            "weights = \"q4_0\"\n",
            "weights = \"q4_0\"\n[workload.edit]\ntokens = 16\ntarget_tokens = 2\nlayer = 0.5\n",
        )
        .replace(
            "minimize = [\"decode_ms\", \"prefill_ms\"]",
            "minimize = [\"decode_ms\", \"edit_zo_ms\"]",
        );
    dir.write("edit.toml", &edit_space);
    let search = tailor_env(
        &dir.0,
        &[
            "search",
            "edit.toml",
            "--profile",
            "p.toml",
            "--out",
            "e",
            "--json",
        ],
        &env,
    );
    assert_eq!(search.code, 0, "{}", search.stderr);
    let front: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.0.join("e/front.json")).unwrap())
            .unwrap();
    for row in front["rows"].as_array().unwrap() {
        assert!(
            row["metrics"]["edit_zo_ms"].as_f64().unwrap() > 0.0,
            "{row}"
        );
        assert!(row["metrics"].get("edit_bp_ms").is_none(), "{row}");
        assert!(row["edit"]["bp"]["step_ms"].is_null(), "{row}");
    }
    let pred = tailor_env(
        &dir.0,
        &[
            "predict",
            "member.toml",
            "--profile",
            "p.toml",
            "--prompt",
            "16",
            "--context",
            "32",
            "--edit",
            "--edit-tokens",
            "16",
            "--edit-layer",
            "0.5",
            "--json",
        ],
        &env,
    )
    .json();
    let e = &pred["edit"]["estimate"];
    assert!(e["zo"]["step_ms"].as_f64().unwrap() > 0.0, "{pred}");
    assert_eq!(e["zo"]["source"], "measured", "{pred}");
    assert!(e["bp"]["step_ms"].is_null(), "{pred}");
    dir.write(
        "bp.toml",
        &edit_space.replace("\"edit_zo_ms\"]", "\"edit_bp_ms\"]"),
    );
    let refused = tailor_env(&dir.0, &["search", "bp.toml", "--profile", "p.toml"], &env);
    let line = refused.assert_clean_error();
    assert!(
        line.contains("`edit_bp_ms`") && line.contains("no backward pass"),
        "{line}"
    );
    let v = tailor_env(
        &dir.0,
        &[
            "validate",
            "--profile",
            "p.toml",
            "--space",
            "space.toml",
            "--samples",
            "4",
            "--rounds",
            "2",
            "--out",
            "v",
            "--json",
        ],
        &env,
    )
    .json();
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    for r in rows {
        assert_eq!(r["measured"]["params_engine"], r["params"], "{r}");
        assert_eq!(
            r["measured"]["decode_rounds_ms"].as_array().unwrap().len(),
            2
        );
    }
    assert!(v["engine_self"]["decode_tau"].is_number(), "{v}");
    assert_eq!(
        (v["format_version"].as_u64(), v["engine"].as_str()),
        (Some(2), Some("llama.cpp"))
    );
    assert!(dir.0.join("v/validate.csv").is_file());
    assert!(dir.0.join("v/calibration.svg").is_file());
    // The profile was re-checked first (this machine, seconds), per phase.
    let phases = v["profile_check"]["phases"].as_array().unwrap();
    assert_eq!(phases.len(), 2, "{v}");

    // Levelled to one anchor timed first, none of the sample: every prediction of a phase
    // is the unlevelled one times that phase's factor.
    let l = tailor_env(
        &dir.0,
        &[
            "validate",
            "--profile",
            "p.toml",
            "--space",
            "space.toml",
            "--samples",
            "4",
            "--rounds",
            "2",
            "--relevel",
            "--anchors",
            "1",
            "--no-recheck",
            "--out",
            "vl",
            "--json",
        ],
        &env,
    )
    .json();
    let level = &l["level"];
    let anchor = level["anchors"][0]["id"].as_u64().unwrap();
    let rows = l["rows"].as_array().unwrap();
    assert!(rows.iter().all(|r| r["id"] != anchor), "{l}");
    assert!(dir.0.join("vl/level/validate.json").is_file());
    let k = level["decode"].as_f64().unwrap();
    let unlevelled: std::collections::BTreeMap<u64, f64> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_u64().unwrap(),
                r["predicted_decode_ms"].as_f64().unwrap(),
            )
        })
        .collect();
    for r in rows {
        let id = r["id"].as_u64().unwrap();
        if let Some(before) = unlevelled.get(&id) {
            let after = r["predicted_decode_ms"].as_f64().unwrap();
            assert!((after - k * before).abs() <= 1e-9 * after.abs(), "{r}");
        }
    }

    // A profile of another setup is refused, with what differs.
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, text.replacen("threads = ", "threads = 1", 1)).unwrap();
    let e = run(&args("p.toml", &[]));
    let line = e.assert_clean_error();
    assert!(
        line.contains("another llama.cpp setup")
            && line.contains("threads")
            && line.contains("--force"),
        "{line}"
    );
}

#[test]
fn run_chains_profile_search_and_check_in_llama_cpp() {
    let Some(lb) = llama_bench() else { return };
    let lb = lb.display().to_string();
    let dir = Scratch::new("llama-run");
    dir.write("space.toml", SPACE);
    let mut a = vec![
        "run",
        "space.toml",
        "--engine",
        "llama.cpp",
        "--profiles",
        "profiles",
        "--out",
        "o",
        "--check",
        "2",
        "--check-rounds",
        "2",
        "--profile-rounds",
        "1",
        "--json",
    ];
    a.extend(QUICK);
    let s = tailor_env(&dir.0, &a, &[("TAILOR_LLAMA_BENCH", lb.as_str())]).json();
    assert_eq!(s["profile"]["engine"], "llama.cpp");
    // The pick, and a second front row when the front has one.
    let checked = s["check"]["models"].as_u64().unwrap();
    let front = s["front_size"].as_u64().unwrap();
    assert_eq!(checked, front.min(2), "{s}");
    assert!(s["check"]["decode"]["n"].as_u64() == Some(checked), "{s}");
    assert!(
        s["pick"]["metrics"]["decode_ms"].as_f64().unwrap() > 0.0,
        "{s}"
    );
    assert!(dir.0.join("profiles/host-llamacpp-q4_0.toml").is_file());
    assert!(dir.0.join("o/report.md").is_file());
    // A fresh profile is not re-checked.
    assert!(s["profile"].get("profile_check").is_none(), "{s}");

    // A second run reuses the profile: re-checked first (per phase), and whatever it
    // re-times is the drifted phases' probes, counted in the visits made now.
    let out = a.iter().position(|x| *x == "o").unwrap();
    a[out] = "o2";
    let again = tailor_env(&dir.0, &a, &[("TAILOR_LLAMA_BENCH", lb.as_str())]).json();
    let p = &again["profile"];
    assert_eq!(p["path"], s["profile"]["path"], "{again}");
    assert_eq!(
        p["profile_check"]["phases"].as_array().map(Vec::len),
        Some(2),
        "{again}"
    );
    assert_eq!(
        p["probe_visits_now"],
        p.get("remeasured").cloned().unwrap_or(serde_json::json!(0)),
        "nothing was missing: {again}"
    );
    let text = std::fs::read_to_string(dir.0.join("profiles/host-llamacpp-q4_0.toml")).unwrap();
    assert!(
        !text.contains("stale = true"),
        "the space re-timed all it marked: {text}"
    );
}

#[test]
fn without_llama_bench_or_with_a_bad_weight_type_the_error_says_what_to_do() {
    let dir = Scratch::new("llama-errors");
    let space = root().join("search-spaces/quickstart.toml");
    let space = space.to_str().unwrap();
    let r = tailor_in(
        &dir.0,
        &[
            "profile",
            "--engine",
            "llama.cpp",
            "--space",
            space,
            "--weights",
            "q4_0",
            "--llama-bench",
            "/nonexistent/llama-bench",
        ],
    );
    let line = r.assert_clean_error();
    assert!(
        line.contains("llama-bench not found") && line.contains("scripts/build-llama-bench.sh"),
        "{line}"
    );
    let r = tailor_in(
        &dir.0,
        &[
            "profile",
            "--engine",
            "llama.cpp",
            "--space",
            space,
            "--weights",
            "bf16",
        ],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("use one of f32, f16, q8_0, q4_0"),
        "{}",
        r.stderr
    );
    // A burn profile's workload in f32 cannot be priced by a q4_0 llama.cpp profile.
    dir.write("p.toml", LLAMA_PROFILE_Q4);
    let r = tailor_in(&dir.0, &["search", space, "--profile", "p.toml"]);
    let line = r.assert_clean_error();
    assert!(
        line.contains("f32 weights") && line.contains("q4_0"),
        "{line}"
    );
}

/// A llama.cpp profile with no probes, of q4_0 weights.
const LLAMA_PROFILE_Q4: &str = r#"format_version = 1
engine = "llama.cpp"
name = "empty"

[fingerprint]
build_commit = "0c1e57098"
build_number = 0
backends = "CPU"
cpu_info = "Test"
threads = 2
type_k = "f16"
type_v = "f16"
flash_attn = "auto"
n_batch = 2048
n_ubatch = 512
weights = "q4_0"
os = "linux-x86_64"
cores = 2

[provenance]
tailor_version = "0.1.0"
created = "2026-12-02T06:00:00Z"
updated = "2026-12-02T06:00:00Z"

[method]
decode_tokens = 16
repetitions = 3
rounds = 2
"#;

/// The committed q4_0 profile as if made on another CPU of this one's name (the same OS and
/// `model name`, another part and caches), or on this one with no identity recorded.
pub(crate) fn committed_q4_on(cpu: Option<&str>) -> String {
    let text = std::fs::read_to_string(root().join("profiles/host-llamacpp-q4_0.toml"))
        .expect("the committed q4_0 profile");
    let mut t: toml::Table = text.parse().expect("a TOML profile");
    let fp = t["fingerprint"]
        .as_table_mut()
        .expect("a fingerprint table");
    let name = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or_else(|| "unknown".to_string(), |(_, v)| v.trim().to_string());
    fp.insert("cpu_info".into(), toml::Value::String(name));
    fp.insert(
        "os".into(),
        toml::Value::String(format!(
            "{}-{}",
            std::env::consts::OS,
            std::env::consts::ARCH
        )),
    );
    match cpu {
        Some(part) => {
            let cpu: toml::Table = toml::from_str(&format!(
                "vendor = \"SomeVendor\"\nparts = [\"{part}\"]\ncaches = [\"L3 1K\"]\n"
            ))
            .expect("a CPU table");
            fp.insert("cpu".into(), toml::Value::Table(cpu));
        }
        None => {
            fp.remove("cpu");
        }
    }
    toml::to_string(&t).expect("serialise")
}

/// A llama.cpp profile of another CPU with this one's name is refused before anything is
/// priced or timed (validate, run --profile), saying what differs and what to run; a search
/// prices it but says whose it is.
#[test]
fn a_llama_profile_of_another_cpu_is_refused_before_it_prices_anything() {
    let dir = Scratch::new("llama-foreign");
    let space = root().join("search-spaces/quickstart.toml");
    let space = space.to_str().unwrap();
    dir.write(
        "foreign.toml",
        &committed_q4_on(Some("family 1 model 2 stepping 3")),
    );
    let r = tailor_in(
        &dir.0,
        &[
            "validate",
            "--profile",
            "foreign.toml",
            "--space",
            space,
            "--weights",
            "q4_0",
            "--llama-bench",
            "/nonexistent/llama-bench",
        ],
    );
    let line = r.assert_clean_error();
    assert!(
        line.contains("foreign.toml")
            && line.contains("another machine")
            && line.contains("family 1 model 2 stepping 3")
            && line.contains("tailor profile --engine llama.cpp"),
        "{line}"
    );
    // Refused before llama-bench is looked for, and nothing was written.
    assert!(!r.stderr.contains("llama-bench not found"), "{}", r.stderr);
    let r = tailor_in(
        &dir.0,
        &[
            "run",
            space,
            "--engine",
            "llama.cpp",
            "--weights",
            "q4_0",
            "--profile",
            "foreign.toml",
            "--llama-bench",
            "/nonexistent/llama-bench",
        ],
    );
    let line = r.assert_clean_error();
    assert!(line.contains("another machine"), "{line}");
    // A search may price another machine's profile, and says so.
    let r = tailor_in(
        &dir.0,
        &[
            "search",
            space,
            "--profile",
            "foreign.toml",
            "--weights",
            "q4_0",
            "--out",
            "s",
            "--json",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("made on another CPU that shares this one's name"),
        "{}",
        r.stderr
    );
    // No identity recorded: taken by the CPU's name, with a warning.
    dir.write("unknown.toml", &committed_q4_on(None));
    let r = tailor_in(
        &dir.0,
        &[
            "search",
            space,
            "--profile",
            "unknown.toml",
            "--weights",
            "q4_0",
            "--out",
            "u",
            "--json",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("records no CPU identity"), "{}", r.stderr);
}

/// A small mixed-stack space of one llama.cpp architecture: 2 widths x 2 depths x 2 KV
/// groups x 2 FFN widths x 2 local mixers (the family's other mixer, or attention).
fn stack_space(layout: &str, local: &str, extra: &str) -> String {
    format!(
        r#"
format_version = 1
name = "stack-{layout}"
[model]
vocab_size = 512
hidden_size = [128, 256]
num_layers = [3, 6]
head_dim = 64
kv_group = [1, 2]
ffn_ratio = [2.0, 3.0]
ffn_multiple = 64
ffn = "gated"
activation = "{act}"
norm = "rmsnorm"
tie_embeddings = true
[model.stack]
layout = "{layout}"
local = ["attention", "{local}"]
global = [3]
qk_norm = true
{extra}
[workload]
prompt_tokens = 16
context = 32
decode_at = [64]
weights = "q4_0"
[objectives]
minimize = ["decode_ms@64", "prefill_ms"]
[pick]
minimize = "decode_ms"
"#,
        act = if layout == "gemma3" {
            "gelu_tanh"
        } else {
            "silu"
        },
    )
}

#[test]
fn mixed_stacks_are_profiled_priced_and_validated_in_their_architectures() {
    let Some(lb) = llama_bench() else { return };
    let lb = lb.display().to_string();
    let env = [("TAILOR_LLAMA_BENCH", lb.as_str())];
    let dir = Scratch::new("llama-stacks");
    for (layout, local, extra, archs) in [
        (
            "lfm2",
            "short_conv",
            "conv_kernel = 3",
            &["lfm2", "qwen3"][..],
        ),
        ("gemma3", "sliding", "window = [16]", &["gemma3"][..]),
    ] {
        let space = format!("{layout}.toml");
        let profile = format!("{layout}.p.toml");
        dir.write(&space, &stack_space(layout, local, extra));
        let mut a = vec![
            "profile",
            "--engine",
            "llama.cpp",
            "--space",
            &space,
            "--out",
            &profile,
            "--rounds",
            "1",
            "--json",
        ];
        a.extend(QUICK);
        let p = tailor_env(&dir.0, &a, &env).json();
        let probes = p["probes"].as_u64().unwrap();
        assert!(probes >= 8, "{layout}: {p}");
        // Each probe in each phase: prefill 16, decode at 32 and at 64.
        assert_eq!(p["missing"], 0, "{p}");
        let text = std::fs::read_to_string(dir.0.join(&profile)).unwrap();
        for arch in archs {
            assert!(
                text.contains(&format!("arch = \"{arch}\"")),
                "{layout}: no {arch} probe"
            );
        }
        assert!(text.contains("rest_layers"), "{layout}: no mixed probe");

        // Every candidate priced from the probes, at both contexts.
        let out = format!("{layout}-search");
        let s = tailor_env(
            &dir.0,
            &[
                "search",
                &space,
                "--profile",
                &profile,
                "--out",
                &out,
                "--json",
            ],
            &env,
        )
        .json();
        assert_eq!(s["priced"], 32, "{layout}: {s}");
        let csv = std::fs::read_to_string(dir.0.join(&out).join("candidates.csv")).unwrap();
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let at = header.iter().position(|h| *h == "decode_ms@64").unwrap();
        for line in lines {
            let cells: Vec<&str> = line.split(',').collect();
            let v: f64 = cells[at].parse().unwrap();
            assert!(v.is_finite() && v > 0.0, "{layout}: {line}");
        }

        // Whole models of the space, timed by llama-bench, against the prediction.
        let v = tailor_env(
            &dir.0,
            &[
                "validate",
                "--space",
                &space,
                "--profile",
                &profile,
                "--samples",
                "4",
                "--rounds",
                "1",
                "--no-recheck",
                "--out",
                &format!("{layout}-v"),
                "--json",
                "--repetitions",
                "2",
                "--decode-tokens",
                "4",
            ],
            &env,
        )
        .json();
        assert_eq!(v["decode"]["n"], 4, "{layout}: {v}");
        let rows = v["rows"].as_array().unwrap();
        assert!(
            rows.iter()
                .all(|r| r["error"].is_null() && r["measured"].is_object()),
            "{layout}: {v}"
        );

        // The pick's exported config.json, validated alone at the space's other context.
        let pick = format!("{out}/pick/config.json");
        let v = tailor_env(
            &dir.0,
            &[
                "validate",
                "--space",
                &space,
                "--profile",
                &profile,
                "--spec",
                &pick,
                "--context",
                "64",
                "--rounds",
                "1",
                "--no-recheck",
                "--out",
                &format!("{layout}-pick"),
                "--json",
                "--repetitions",
                "2",
                "--decode-tokens",
                "4",
            ],
            &env,
        )
        .json();
        assert_eq!(v["workload"]["context"], 64, "{v}");
        let rows = v["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 1, "{v}");
        assert!(rows[0]["measured"].is_object(), "{v}");
        assert_eq!(
            rows[0]["predicted_decode_ms"].as_f64().map(|x| x > 0.0),
            Some(true),
            "{v}"
        );
    }
}
