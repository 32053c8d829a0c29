//! `tailor predict`, `tailor measure` and `tailor validate` end to end on flex, with the
//! shortest timing (the flow and the files are asserted, never a time).

use crate::common::{Scratch, tailor};

pub const FAST: [&str; 8] = [
    "--max-time",
    "5ms",
    "--warmup",
    "1ms",
    "--cycle-mib",
    "1",
    "--target-spread",
    "5",
];

pub const TINY_SPACE: &str = r#"
format_version = 1
name = "tiny-validate"

[model]
vocab_size = 512
hidden_size = [64, 96]
num_layers = [2, 3]
head_dim = 32
kv_group = [1, 3]
ffn_ratio = [2.0, 3.0]
ffn_multiple = 32
ffn = "gated"
activation = ["relu", "silu"]
norm = "rmsnorm"
tie_embeddings = true

[workload]
prompt_tokens = 8
context = 16
weights = "f32"

[objectives]
minimize = ["decode_ms", "prefill_ms"]
maximize = ["non_embedding_params"]

[pick]
minimize = "decode_ms"
"#;

/// A scratch folder holding the tiny space and a quick profile of it on this machine.
fn profiled(name: &str) -> (Scratch, String, String) {
    let s = Scratch::new(name);
    let space = s.write("space.toml", TINY_SPACE);
    let profile = s.0.join("profile.toml");
    let (space, profile) = (
        space.to_str().expect("utf-8 path").to_string(),
        profile.to_str().expect("utf-8 path").to_string(),
    );
    let mut args = vec!["profile", "--space", &space, "--out", &profile, "--json"];
    args.extend(&FAST[..6]);
    let p = tailor(&args).json();
    assert_eq!(p["missing"], 0);
    (s, space, profile)
}

#[test]
fn validate_measures_sampled_models_and_writes_its_files() {
    let (s, space, profile) = profiled("validate");
    let out = s.0.join("v");
    let mut args = vec![
        "validate",
        "--profile",
        &profile,
        "--space",
        &space,
        "--samples",
        "4",
        "--seed",
        "3",
        "--rounds",
        "2",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(FAST);
    let v = tailor(&args).json();
    assert_eq!(
        (v["format_version"].as_u64(), v["engine"].as_str()),
        (Some(2), Some("burn"))
    );
    assert_eq!(v["samples"], 4);
    assert_eq!(v["measured"], 4);
    for phase in ["prefill", "decode", "memory"] {
        for key in ["within_10pct", "within_20pct"] {
            let x = v[phase][key]
                .as_f64()
                .unwrap_or_else(|| panic!("{phase}.{key}: {v}"));
            assert!((0.0..=1.0).contains(&x), "{phase}.{key} = {x}");
        }
        let tau = v[phase]["kendall_tau"].as_f64().unwrap();
        assert!((-1.0..=1.0).contains(&tau), "{phase} tau {tau}");
        assert_eq!(v[phase]["n"], 4);
    }
    let rows = v["rows"].as_array().unwrap();
    for r in rows {
        // Every sampled config is a whole model whose parameters are the spec's.
        assert_eq!(r["measured"]["params_engine"], r["params"], "{r}");
        assert!(r["measured"]["prefill_ms"].as_f64().unwrap() > 0.0);
        assert!(
            r.get("not_measured").is_none(),
            "the profile covers the space: {r}"
        );
    }
    let svg = std::fs::read_to_string(out.join("calibration.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("predicted (ms)") && svg.contains("+-10%"));
    let csv = std::fs::read_to_string(out.join("validate.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5);
    assert!(out.join("validate.json").exists());
    assert_eq!(v["rounds"], 2);
    assert_eq!(
        std::fs::read_dir(out.join("measured")).unwrap().count(),
        8,
        "4 models x 2 sessions"
    );
    for phase in ["prefill", "decode"] {
        let by_round = v["round_ratios"][phase].as_array().unwrap();
        assert_eq!(by_round.len(), 2, "{phase}: one ratio per round");
        assert!(by_round.iter().all(|r| r.as_f64().unwrap() > 0.0));
        // Each model keeps its fastest round.
        for r in rows {
            let id = r["id"].as_u64().unwrap();
            let session = |name: String| -> f64 {
                let text = std::fs::read_to_string(out.join("measured").join(name)).unwrap();
                let m: serde_json::Value = serde_json::from_str(&text).unwrap();
                m[phase]["median_ms"].as_f64().unwrap()
            };
            let rounds = [
                session(format!("{id}.json")),
                session(format!("{id}.round2.json")),
            ];
            let key = format!("{phase}_rounds_ms");
            assert_eq!(r["measured"][&key], serde_json::json!(rounds), "{r}");
            let fastest = rounds[0].min(rounds[1]);
            assert_eq!(
                r["measured"][format!("{phase}_ms")].as_f64().unwrap(),
                fastest
            );
        }
    }

    // burn against itself over the same models, beside its agreement with the prediction.
    for key in ["prefill_tau", "decode_tau"] {
        let tau = v["engine_self"][key].as_f64().unwrap();
        assert!((-1.0..=1.0).contains(&tau), "{key}: {v}");
    }

    // A rerun into the same folder reuses the measurements.
    let again = tailor(&args).json();
    assert_eq!(again["rows"], v["rows"]);
}

#[test]
fn predict_and_measure_one_spec() {
    let (s, _space, profile) = profiled("predict");
    let spec = s.write(
        "m.toml",
        "format_version = 1\n[model]\nvocab_size = 512\nhidden_size = 96\nnum_layers = 3\n\
         num_heads = 3\nnum_kv_heads = 1\nintermediate_size = 192\nffn = \"gated\"\nactivation = \"silu\"\nnorm = \"rmsnorm\"\n\
         tie_embeddings = true\n",
    );
    let spec = spec.to_str().unwrap();
    let predict = |profile: &str, prompt: &str| {
        tailor(&[
            "predict",
            spec,
            "--profile",
            profile,
            "--prompt",
            prompt,
            "--context",
            "16",
            "--json",
        ])
        .json()
    };
    let p = predict(&profile, "8");
    assert_eq!(p["ops_not_measured"], 0, "{p}");
    assert!(p["prefill_ms"].as_f64().unwrap() > 0.0);
    // Peak memory includes the runtime's own, as the profile measured it.
    let overhead = p["memory_overhead_bytes"].as_u64().unwrap();
    assert!(overhead > 0 && p["peak_memory_bytes"].as_u64().unwrap() > overhead);
    let shares: f64 = ["attention", "ffn", "lm_head", "other"]
        .iter()
        .map(|k| p["decode_breakdown"][k].as_f64().unwrap())
        .sum();
    assert!((shares - 1.0).abs() < 1e-9);
    // A shorter prompt: estimated from the profiled neighbours, and said so.
    // (Whether it comes out below the measured 8 depends on the times measured in this
    // test, which a loaded machine moves: timing is not asserted.)
    let shorter = predict(&profile, "4");
    assert!(shorter["ops_not_measured"].as_u64().unwrap() > 0);
    assert!(
        shorter["prefill_ms"]
            .as_f64()
            .is_some_and(|v| v.is_finite() && v > 0.0)
    );
    let text = tailor(&[
        "predict",
        spec,
        "--profile",
        &profile,
        "--prompt",
        "4",
        "--context",
        "16",
    ]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stdout.contains("where the time goes") && text.stdout.contains("not in the profile"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("of it the runtime's"),
        "{}",
        text.stdout
    );
    // A profile made before the memory probe: the models' own bytes, and it says so.
    let full = std::fs::read_to_string(&profile).unwrap();
    let start = full.find("[memory]").unwrap();
    let end = start + full[start..].find("\n\n").unwrap() + 2;
    let old = s.write("old.toml", &format!("{}{}", &full[..start], &full[end..]));
    let old = old.to_str().unwrap();
    let o = predict(old, "8");
    assert!(o["memory_overhead_bytes"].is_null(), "{o}");
    assert_eq!(
        o["peak_memory_bytes"].as_u64().unwrap() + overhead,
        p["peak_memory_bytes"].as_u64().unwrap()
    );
    let text = tailor(&[
        "predict",
        spec,
        "--profile",
        old,
        "--prompt",
        "8",
        "--context",
        "16",
    ]);
    assert!(
        text.stdout
            .contains("runtime's own memory is not in the profile"),
        "{}",
        text.stdout
    );

    // A longer context than any the profile timed attention at is refused, with the
    // command that profiles it (a price extrapolated up the context would be a guess).
    let e = tailor(&[
        "predict",
        spec,
        "--profile",
        &profile,
        "--prompt",
        "8",
        "--context",
        "64",
    ])
    .assert_clean_error()
    .to_string();
    assert!(
        e.contains("decode at context 64 need attention 3/1x32 q1 kv65")
            && e.contains("its prompts: 8; its decode contexts: 16")
            && e.contains(&format!("--prompt 8 --context 64 --out {profile}`")),
        "{e}"
    );

    let mut args = vec![
        "measure",
        spec,
        "--prompt",
        "8",
        "--context",
        "16",
        "--json",
    ];
    args.extend(FAST);
    let m = tailor(&args).json();
    assert_eq!(m["params"], p["params"]);
    assert!(m["decode"]["median_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(m["fingerprint"]["backend"], "flex");

    // The decode step operator by operator, beside the profile's entries for the same
    // calls: one row per row of the pass, each with the pass's call count.
    let mut ops = vec![
        "measure",
        spec,
        "--context",
        "16",
        "--decode-ops",
        "--profile",
        &profile,
        "--json",
    ];
    ops.extend(FAST);
    let c = tailor(&ops).json();
    let rows = c["rows"].as_array().unwrap();
    // Each row is a distinct shape, named by it, in the order it first runs: embedding,
    // the norms, q and o (both 96 -> 96 here: one row), k and v, attention, the residual
    // adds, FFN, final norm, head.
    let names: Vec<&str> = rows.iter().map(|r| r["op"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "embedding t1 512x96",
            "rmsnorm t1 96",
            "linear t1 96->96",
            "linear t1 96->32",
            "attention 3/1x32 q1 kv17",
            "residual t1 96",
            "ffn gated silu t1 96->192",
            "rmsnorm t1 96",
            "lm_head 96->512 tied"
        ]
    );
    let calls: Vec<u64> = rows.iter().map(|r| r["calls"].as_u64().unwrap()).collect();
    assert_eq!(calls, [1, 6, 6, 6, 3, 6, 3, 1, 1], "3 layers");
    for r in rows {
        assert!(r["measured"]["median_ms"].as_f64().unwrap() >= 0.0, "{r}");
        assert!(r["predicted_ms"].as_f64().unwrap() > 0.0, "{r}");
    }
    assert!(c["marked"]["samples"].as_u64().unwrap() >= 20);
    assert!(c["plain"]["median_ms"].as_f64().unwrap() > 0.0);
    // A mixed stack (LFM2's short convolutions and attention with q/k norms) is built,
    // timed whole with its memory, and timed operator by operator against its pass.
    let lfm2 = s.write(
        "lfm2.toml",
        "format_version = 1\n[model]\nvocab_size = 512\nhidden_size = 64\nnum_layers = 3\n\
         num_heads = 4\nnum_kv_heads = 2\nintermediate_size = 128\nffn = \"gated\"\n\
         activation = \"silu\"\nnorm = \"rmsnorm\"\ntie_embeddings = true\n\
         [model.stack]\nlayout = \"lfm2\"\npattern = [\"conv\", \"conv\", \"attn\"]\n\
         [model.stack.kinds.conv]\nmixer = \"short_conv\"\nkernel = 3\n\
         [model.stack.kinds.attn]\nmixer = \"attention\"\nqk_norm = true\n",
    );
    let lfm2 = lfm2.to_str().unwrap();
    let mut args = vec![
        "measure",
        lfm2,
        "--prompt",
        "8",
        "--context",
        "16",
        "--json",
    ];
    args.extend(FAST);
    let m = tailor(&args).json();
    let counted = tailor(&["spec", lfm2, "--json"]).json();
    assert_eq!(m["params"], counted["params"]["total"], "{m}\n{counted}");
    assert!(m["peak_memory_bytes"].as_u64().unwrap() > 0, "{m}");
    let mut args = vec!["measure", lfm2, "--context", "16", "--decode-ops", "--json"];
    args.extend(FAST);
    let c = tailor(&args).json();
    let names: Vec<&str> = c["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["op"].as_str().unwrap())
        .collect();
    assert!(
        names.iter().any(|n| n.starts_with("short_conv t1 64 k3")),
        "{names:?}"
    );
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("attention 4/2x16 q1 kv17")),
        "{names:?}"
    );

    let refused = tailor(&["measure", spec, spec, "--decode-ops"]);
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("one spec"), "{}", refused.stderr);

    // Two models timed against each other: one report each, in the order given.
    let wider = s.write(
        "w.toml",
        "format_version = 1\n[model]\nvocab_size = 512\nhidden_size = 128\nnum_layers = 2\n\
         num_heads = 4\nnum_kv_heads = 2\nintermediate_size = 256\nffn = \"plain\"\nactivation = \"gelu\"\nnorm = \"layernorm\"\n\
         tie_embeddings = false\n",
    );
    let wider = wider.to_str().unwrap();
    let mut both = vec![
        "measure",
        spec,
        wider,
        "--prompt",
        "8",
        "--context",
        "16",
        "--no-memory",
        "--json",
    ];
    both.extend(FAST);
    let ms = tailor(&both).json();
    let ms = ms.as_array().unwrap();
    assert_eq!(ms.len(), 2);
    assert_eq!(ms[0]["params"], p["params"]);
    assert!(ms[1]["spec"].as_str().unwrap().ends_with("w.toml"));
    assert_ne!(ms[1]["params"], ms[0]["params"]);
    for m in ms {
        assert!(m["prefill"]["median_ms"].as_f64().unwrap() > 0.0);
        assert!(m["decode"]["samples"].as_u64().unwrap() >= 3);
        assert_eq!(m["memory_source"], "none");
    }
    let refused = tailor(&["measure", spec, wider, "--memory-only"]);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("give one spec"),
        "{}",
        refused.stderr
    );
}

#[test]
fn search_prices_with_a_profile() {
    let (s, space, profile) = profiled("search-profile");
    let out = s.0.join("search");
    let search = |extra: &[&str]| {
        let mut args = vec![
            "search",
            &space,
            "--profile",
            &profile,
            "--out",
            out.to_str().unwrap(),
            "--json",
        ];
        args.extend(extra);
        let r = tailor(&args);
        (r.json(), r.stderr)
    };
    // No check of this profile is known yet: the search times nothing and says so.
    let (r, log) = search(&[]);
    assert!(r["front_size"].as_u64().unwrap() > 0, "{r}");
    assert!(r["device"].as_str().unwrap().contains("profile"), "{r}");
    assert!(
        r["pick"]["metrics"]["decode_ms"].as_f64().unwrap() > 0.0,
        "{r}"
    );
    assert!(out.join("front.json").exists());
    assert!(r["cost_model"].get("profile_check").is_none(), "{r}");
    assert!(log.contains("not re-checked on this machine"), "{log}");
    // --recheck: the profile was made on this machine, so it is re-checked first...
    let (checked, _) = search(&["--recheck"]);
    let classes = checked["cost_model"]["profile_check"]["classes"].as_array();
    assert!(classes.is_some_and(|c| !c.is_empty()), "{checked}");
    // ... and a plain search afterwards quotes that check, timing nothing.
    let (quoted, log) = search(&[]);
    assert_eq!(
        quoted["cost_model"]["profile_check"], checked["cost_model"]["profile_check"],
        "{log}"
    );
    assert!(
        log.contains("as re-checked on this machine 0 min ago"),
        "{log}"
    );
    assert_eq!(quoted["pick"], r["pick"]);
    // --no-recheck quotes none.
    let (none, _) = search(&["--no-recheck"]);
    assert!(none["cost_model"].get("profile_check").is_none(), "{none}");
    // Without [devices] in the space, one of --device, --profile or --target is needed.
    let e = tailor(&["search", &space]);
    assert_eq!(e.code, 1, "{}", e.stderr);
    assert!(
        e.stderr.contains("--device")
            && e.stderr.contains("--profile")
            && e.stderr.contains("--target NAME=FILE"),
        "{}",
        e.stderr
    );
}

#[test]
fn a_profile_of_another_machine_is_refused() {
    let (s, space, profile) = profiled("validate-foreign");
    let text = std::fs::read_to_string(&profile).unwrap();
    let foreign = s.write(
        "phone.toml",
        &text.replacen("cores = ", "cores = 64\n# was ", 1),
    );
    let e = tailor(&[
        "validate",
        "--profile",
        foreign.to_str().unwrap(),
        "--space",
        &space,
    ])
    .assert_clean_error()
    .to_string();
    assert!(
        e.contains("measured on another setup") && e.contains("cores `64`"),
        "{e}"
    );
    assert!(e.contains("tailor profile --space"), "{e}");

    // Another CPU under the same model name (another part, one extension fewer: a
    // Zen 3 EPYC profile on another EPYC) is refused with what differs. The part is one
    // this machine is not (CI machines are Zen 3 EPYCs too, so it must not be fixed).
    let mut v: toml::Value = toml::from_str(&text).unwrap();
    let cpu = v["fingerprint"]["cpu"]
        .as_table_mut()
        .expect("a profile made on Linux records the CPU identity");
    assert!(!cpu["vendor"].as_str().unwrap().is_empty(), "{cpu:?}");
    let ours = cpu
        .get("parts")
        .and_then(toml::Value::as_array)
        .cloned()
        .unwrap_or_default();
    let other_part = [
        "family 25 model 1 stepping 1",
        "family 25 model 17 stepping 1",
    ]
    .into_iter()
    .find(|p| ours != [toml::Value::from(*p)])
    .unwrap();
    cpu.insert("parts".into(), toml::Value::Array(vec![other_part.into()]));
    let mut isa = cpu
        .get("isa")
        .and_then(toml::Value::as_array)
        .cloned()
        .unwrap_or_default();
    isa.push("sve2".into());
    cpu.insert("isa".into(), toml::Value::Array(isa));
    let other_cpu = s.write("other-cpu.toml", &toml::to_string(&v).unwrap());
    let other_cpu = other_cpu.to_str().unwrap();
    let e = tailor(&["validate", "--space", &space, "--profile", other_cpu])
        .assert_clean_error()
        .to_string();
    assert!(
        e.contains("measured on another setup")
            && e.contains(&format!("cpu parts `{other_part}` vs `"))
            && e.contains("cpu isa `sve2` vs `-`"),
        "{e}"
    );
    // Searching another machine's profile is what profiles are for: no refusal, and no
    // re-check (it does not describe this machine).
    let out = s.0.join("search-other-cpu");
    let r = tailor(&[
        "search",
        &space,
        "--profile",
        other_cpu,
        "--out",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.json()["cost_model"].get("profile_check").is_none());

    // A v1 profile (before attention covered RoPE) is refused with the version.
    let old = s.write(
        "old.toml",
        &text.replacen("format_version = 2", "format_version = 1", 1),
    );
    let e = tailor(&[
        "predict",
        "specs/tiny.toml",
        "--profile",
        old.to_str().unwrap(),
    ])
    .assert_clean_error()
    .to_string();
    assert!(
        e.contains("format_version") && e.contains("version 1 is not supported"),
        "{e}"
    );
}

/// How many whole models set the level of a `run --json` summary (None: no level).
fn level_anchors(summary: &serde_json::Value) -> Option<usize> {
    summary["profile"]["level"]["anchors"]
        .as_array()
        .map(Vec::len)
}

/// `tailor run` from nothing: no profile of this setup in the folder, so it profiles,
/// then searches, checks the pick and a front row whole, exports and reports; a second
/// run finds that profile and measures nothing.
/// `tailor run SPACE --json` with the profiles in `profiles`, one profile round, `check`
/// models checked in one round, quick timing, and `extra`.
fn quick_run(
    space: &str,
    profiles: &str,
    out: &str,
    check: &str,
    extra: &[&str],
) -> serde_json::Value {
    let mut args = vec![
        "run",
        space,
        "--profiles",
        profiles,
        "--out",
        out,
        "--check",
        check,
        "--check-rounds",
        "1",
        "--profile-rounds",
        "1",
        "--json",
    ];
    args.extend(FAST);
    args.extend(extra);
    tailor(&args).json()
}

/// `tailor run` in burn on a space of mixed stacks: every mixer profiled (short
/// convolutions, sliding-window prefill longer than the window, Gated DeltaNet, output
/// gates, q/k norms), searched, the pick and front rows built and timed whole, exported as
/// far as a flavor can express it.
#[test]
fn run_profiles_searches_and_checks_a_mixed_space() {
    let s = Scratch::new("run-mixed");
    let stack = "\n[model.stack]\nlayout = \"llama\"\n\
                 local = [\"short_conv\", \"sliding\", \"linear_attention\"]\nglobal = [2]\n\
                 window = [4]\nqk_norm = true\noutput_gate = true\n\n[model.stack.linear]\n\
                 key_heads = 2\nvalue_heads = 2\nkey_head_dim = 16\nvalue_head_dim = 16\n\
                 conv_kernel = 4\n\n[workload]";
    let space = s.write("space.toml", &TINY_SPACE.replace("\n[workload]", stack));
    let profiles = s.0.join("profiles");
    std::fs::create_dir_all(&profiles).unwrap();
    let out = s.0.join("run");
    let r = quick_run(
        space.to_str().unwrap(),
        profiles.to_str().unwrap(),
        out.to_str().unwrap(),
        "3",
        &[],
    );
    assert_eq!(r["check"]["models"], 3, "{r}");
    let profile = std::fs::read_to_string(profiles.join("host-flex.toml")).unwrap();
    for op in [
        "op = \"short_conv\"",
        "op = \"linear_attention\"",
        "op = \"gate\"",
        "window = 4",
    ] {
        assert!(profile.contains(op), "the profile times {op}");
    }
    // Which stack wins depends on this machine's timings; every candidate has one.
    let spec = std::fs::read_to_string(out.join("pick/spec.toml")).unwrap();
    assert!(spec.contains("[model.stack]"), "{spec}");
    assert!(out.join("pick/MODEL_CARD.md").exists());
}

#[test]
fn run_profiles_searches_checks_and_exports() {
    let s = Scratch::new("run");
    let space = s.write("space.toml", TINY_SPACE);
    let space = space.to_str().unwrap();
    let profiles = s.0.join("profiles");
    std::fs::create_dir_all(&profiles).unwrap();
    // A file in the folder that is not a profile is passed over.
    std::fs::write(profiles.join("notes.toml"), "name = \"not a profile\"\n").unwrap();
    let run = |out: &str, extra: &[&str]| {
        let out = s.0.join(out);
        let r = quick_run(
            space,
            profiles.to_str().unwrap(),
            out.to_str().unwrap(),
            "2",
            extra,
        );
        (r, out)
    };
    let (first, out) = run("first", &["--anchors", "2"]);
    let made = profiles.join("host-flex.toml");
    assert_eq!(first["profile"]["path"], made.to_str().unwrap());
    assert!(first["profile"]["measured_now"].as_u64().unwrap() > 0);
    assert_eq!(first["check"]["models"], 2);
    assert_eq!(first["profile"]["releveled"], true);
    assert_eq!(level_anchors(&first), Some(2), "{first}");
    assert!(first["check"]["decode"]["within_10pct"].as_f64().is_some());
    for f in [
        "pick/config.json",
        "pick/spec.toml",
        "pick/MODEL_CARD.md",
        "report.md",
        "front.svg",
        "breakdown.svg",
        "check/calibration.svg",
        "check/validate.json",
        "level/validate.json",
        "candidates.csv",
        "front.json",
        "summary.json",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        report.contains("## Checked against whole models"),
        "{report}"
    );
    assert!(report.contains("(pick)"), "{report}");
    let card = std::fs::read_to_string(out.join("pick/MODEL_CARD.md")).unwrap();
    assert!(
        card.contains("measured prefill / decode / memory"),
        "{card}"
    );
    assert!(
        card.contains("Predictions levelled to whole models"),
        "{card}"
    );

    // The first run's checks may have found this shared machine drifted and marked entries
    // of the profile stale (timing, not asserted): the second run re-times those and no
    // others.
    let stale = std::fs::read_to_string(&made)
        .unwrap()
        .matches("stale = true")
        .count() as u64;
    let (second, _) = run("second", &[]);
    assert_eq!(
        second["profile"]["releveled"], false,
        "no --anchors: no level"
    );
    assert!(second["profile"].get("level").is_none(), "{second}");
    assert_eq!(second["profile"]["path"], made.to_str().unwrap());
    let measured_now = second["profile"]["measured_now"].as_u64().unwrap();
    assert!(
        measured_now <= stale,
        "the profile was reused: {measured_now} sessions timed, {stale} entries were stale"
    );
    assert_eq!(second["pick"]["id"], first["pick"]["id"]);
}

/// Every time of a profile file multiplied by `k` (a machine that has since become `k`
/// times faster, as far as the file can tell).
fn scale_profile(path: &std::path::Path, k: f64) -> toml::Table {
    let text = std::fs::read_to_string(path).expect("read the profile");
    let mut t: toml::Table = text.parse().expect("a TOML profile");
    let entries = t["entries"].as_array_mut().expect("entries");
    for e in entries {
        let e = e.as_table_mut().expect("an entry table");
        for key in ["median_us", "p10_us", "p90_us"] {
            let v = e[key].as_float().expect("a time");
            e.insert(key.into(), toml::Value::Float(v * k));
        }
        if let Some(r) = e.get_mut("rounds") {
            for v in r.as_array_mut().expect("rounds") {
                *v = toml::Value::Float(v.as_float().expect("a round") * k);
            }
        }
    }
    std::fs::write(path, toml::to_string(&t).expect("serialise")).expect("write the profile");
    t
}

/// The entries of a profile file, by shape.
fn entries(t: &toml::Table) -> Vec<toml::Table> {
    t["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e.as_table().expect("an entry table").clone())
        .collect()
}

/// A reused profile of a bigger space, every entry of it stale: `tailor run` of a smaller
/// space re-measures only the entries that space needs (counted in sessions), marks the
/// others stale in the file and leaves their times alone; the next run of the bigger space
/// re-measures exactly the marked ones.
#[test]
fn a_stale_profile_of_a_bigger_space_costs_a_run_only_its_own_entries() {
    let s = Scratch::new("run-stale-bigger");
    let big = s.write(
        "big.toml",
        &TINY_SPACE.replace("hidden_size = [64, 96]", "hidden_size = [64, 96, 128]"),
    );
    let small = s.write(
        "small.toml",
        &TINY_SPACE
            .replace("name = \"tiny-validate\"", "name = \"small\"")
            .replace("hidden_size = [64, 96]", "hidden_size = 64"),
    );
    let profiles = s.0.join("profiles");
    std::fs::create_dir_all(&profiles).unwrap();
    let file = profiles.join("host-flex.toml");
    let profile = |space: &std::path::Path| {
        let mut args = vec![
            "profile",
            "--space",
            space.to_str().unwrap(),
            "--out",
            file.to_str().unwrap(),
            "--rounds",
            "1",
            "--json",
        ];
        args.extend(&FAST[..6]);
        tailor(&args).json()
    };
    let made = profile(&big);
    assert_eq!(made["missing"], 0);
    let big_entries = made["shapes_needed"].as_u64().unwrap() as usize;
    // The machine now runs every operator 5x faster than the file says: every class of
    // the drift check is far outside 10%.
    let stale = entries(&scale_profile(&file, 5.0));
    assert_eq!(stale.len(), big_entries);

    let out = s.0.join("out");
    let mut args = vec![
        "run",
        small.to_str().unwrap(),
        "--profiles",
        profiles.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--check",
        "0",
        "--profile-rounds",
        "1",
        "--json",
    ];
    args.extend(FAST);
    let run = tailor(&args).json();
    let p = &run["profile"];
    assert_eq!(p["path"], file.to_str().unwrap(), "{run}");
    assert_eq!(p["measured_now"], 0, "nothing was missing: {run}");
    let needed = p["shapes_needed"].as_u64().unwrap() as usize;
    assert!(needed < big_entries, "{needed} of {big_entries}");
    // One session per entry the small space needs, none for the rest of the file.
    assert_eq!(p["remeasured"].as_u64().unwrap() as usize, needed, "{run}");
    assert_eq!(
        p["marked_stale"].as_u64().unwrap() as usize,
        big_entries - needed,
        "{run}"
    );
    let after = entries(&toml::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap());
    assert_eq!(after.len(), big_entries);
    let marked: Vec<&toml::Table> = after
        .iter()
        .filter(|e| e.get("stale").and_then(toml::Value::as_bool) == Some(true))
        .collect();
    assert_eq!(marked.len(), big_entries - needed);
    for e in &marked {
        // Marked, not re-measured: the same times as before the run.
        let before = stale.iter().find(|b| b["shape"] == e["shape"]).unwrap();
        assert_eq!(before["median_us"], e["median_us"]);
    }

    // The bigger space needs the marked entries: profiling it re-measures exactly those.
    let again = profile(&big);
    assert_eq!(again["missing"], 0);
    assert_eq!(
        again["measured_now"].as_u64().unwrap() as usize,
        big_entries - needed,
        "{again}"
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains("stale = true"), "{text}");
}

#[test]
fn run_refuses_an_empty_space() {
    let s = Scratch::new("run-empty");
    let space = s.write(
        "space.toml",
        &TINY_SPACE.replace(
            "[objectives]",
            "[constraints]\nparams = { min = 1e12 }\n\n[objectives]",
        ),
    );
    let e = tailor(&[
        "run",
        space.to_str().unwrap(),
        "--profiles",
        s.0.to_str().unwrap(),
    ]);
    let line = e.assert_clean_error();
    assert!(line.contains("nothing to profile or search"), "{line}");
}

#[test]
fn a_sample_larger_than_the_memory_available_is_refused_before_anything_runs() {
    let s = Scratch::new("validate-oversized");
    // About 390B parameters: more than any test machine holds, at f32 or at q4_0.
    let big = |weights: &str| {
        TINY_SPACE
            .replace("name = \"tiny-validate\"", "name = \"huge\"")
            .replace("vocab_size = 512", "vocab_size = 32000")
            .replace("hidden_size = [64, 96]", "hidden_size = 16384")
            .replace("num_layers = [2, 3]", "num_layers = [100, 120]")
            .replace("head_dim = 32", "head_dim = 128")
            .replace("kv_group = [1, 3]", "kv_group = 8")
            .replace("ffn_multiple = 32", "ffn_multiple = 256")
            .replace("weights = \"f32\"", &format!("weights = \"{weights}\""))
            // The workload the committed profiles measured.
            .replace("prompt_tokens = 8", "prompt_tokens = 64")
            .replace("context = 16", "context = 256")
    };
    // The committed llama.cpp profile as if made here (on another machine it is refused
    // before anything is priced).
    let here = s.write("here-q4_0.toml", &crate::llama::committed_q4_on(None));
    for (profile, weights) in [
        ("profiles/host-flex.toml", "f32"),
        (here.to_str().unwrap(), "q4_0"),
    ] {
        let space = s.write(&format!("huge-{weights}.toml"), &big(weights));
        let out = s.0.join(format!("out-{weights}"));
        let e = tailor(&[
            "validate",
            "--profile",
            profile,
            "--space",
            space.to_str().unwrap(),
            "--samples",
            "2",
            "--out",
            out.to_str().unwrap(),
        ])
        .assert_clean_error()
        .to_string();
        assert!(
            e.contains(&format!("huge-{weights}.toml: "))
                && e.contains("predicted to need more memory than this machine has available")
                && e.contains("max_memory_gib = "),
            "{e}"
        );
        assert!(!out.exists(), "nothing measured or written: {e}");
    }
}

/// kill -9 at seeded points of a real `tailor validate`: a rerun into the same folder
/// completes with every sampled model measured in every round, each session file whole,
/// and measures again only what the killed run had not saved.
#[test]
fn a_validation_killed_anywhere_resumes_to_the_same_models() {
    use crate::profile::{kill_after, kill_point};
    let (s, space, profile) = profiled("validate-kill");
    let args = |out: &str| -> Vec<String> {
        let mut a: Vec<String> = [
            "validate",
            "--profile",
            &profile,
            "--space",
            &space,
            "--samples",
            "3",
            "--seed",
            "5",
            "--rounds",
            "2",
            "--json",
            "--out",
            out,
        ]
        .map(String::from)
        .to_vec();
        a.extend(FAST.map(String::from));
        a
    };
    let run = |a: &[String]| tailor(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let reference = s.0.join("full");
    let t = std::time::Instant::now();
    let full = run(&args(reference.to_str().unwrap())).json();
    let wall = t.elapsed().as_secs_f64();
    let ids = |v: &serde_json::Value| -> Vec<u64> {
        v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(full["measured"], 3);
    for seed in 1..=2u64 {
        let out = s.0.join(format!("killed-{seed}"));
        let a = args(out.to_str().unwrap());
        kill_after(
            &a.iter().map(String::as_str).collect::<Vec<_>>(),
            std::time::Duration::from_secs_f64(0.2 + kill_point(seed) * wall),
        );
        // Whatever the killed run saved is whole.
        let measured = out.join("measured");
        // (A write cut between its temporary file and the rename leaves a hidden
        // `.NAME.tmp-PID` beside them, never a torn NAME.)
        let files = |dir: &std::path::Path| -> Vec<std::path::PathBuf> {
            std::fs::read_dir(dir)
                .map(|d| d.map(|e| e.unwrap().path()).collect::<Vec<_>>())
                .unwrap_or_default()
                .into_iter()
                .filter(|p: &std::path::PathBuf| {
                    let name = p.file_name().unwrap().to_string_lossy().into_owned();
                    assert!(!name.starts_with('.') || name.contains(".tmp-"), "{name}");
                    !name.starts_with('.')
                })
                .collect()
        };
        let saved: Vec<(std::path::PathBuf, String)> = files(&measured)
            .into_iter()
            .map(|p| {
                let text = std::fs::read_to_string(&p).unwrap();
                (p, text)
            })
            .collect();
        for (f, text) in &saved {
            serde_json::from_str::<serde_json::Value>(text)
                .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        }
        let v = run(&a).json();
        assert_eq!(v["measured"], 3, "seed {seed}: {v}");
        assert_eq!(ids(&v), ids(&full), "seed {seed}: the same sample");
        assert_eq!(
            files(&measured).len(),
            6,
            "seed {seed}: 3 models x 2 rounds"
        );
        // What the killed run saved was reused, not measured again.
        for (f, text) in &saved {
            assert_eq!(
                &std::fs::read_to_string(f).unwrap(),
                text,
                "{}",
                f.display()
            );
        }
    }
}

/// The profile at `path` with every entry's times (and its sessions') multiplied by `k`.
fn scaled(path: &str, k: f64) -> String {
    let text = std::fs::read_to_string(path).expect("the profile");
    let mut v: toml::Value = toml::from_str(&text).expect("a profile");
    let times = |x: &toml::Value| toml::Value::Float(k * x.as_float().expect("a time"));
    for e in v["entries"].as_array_mut().expect("entries") {
        let e = e.as_table_mut().expect("an entry");
        for key in ["median_us", "p10_us", "p90_us"] {
            let x = times(&e[key]);
            e.insert(key.into(), x);
        }
        if let Some(r) = e.get_mut("rounds").and_then(toml::Value::as_array_mut) {
            for x in r.iter_mut() {
                *x = times(x);
            }
        }
    }
    toml::to_string(&v).expect("TOML")
}

/// A profile whose entries were scaled on purpose (x8: as if measured on a machine eight
/// times slower): `validate` re-times its subset first and reports the drift in every class,
/// `--relevel` validates the re-levelled profile, `--remeasure` re-measures the drifted
/// entries in the file first, and `run` re-measures them by itself.
#[test]
fn a_profile_scaled_on_purpose_is_found_drifted_relevelled_and_remeasured() {
    let (s, space, profile) = profiled("validate-drift");
    let scaled_text = scaled(&profile, 8.0);
    let scaled = s.write("scaled.toml", &scaled_text);
    let scaled = scaled.to_str().unwrap();
    let validate = |profile: &str, out: &str, extra: &[&str]| {
        let mut a = vec![
            "validate",
            "--profile",
            profile,
            "--space",
            &space,
            "--samples",
            "2",
            "--rounds",
            "1",
            "--json",
            "--out",
            out,
        ];
        a.extend(FAST);
        a.extend(extra);
        tailor(&a).json()
    };
    let out = s.0.join("as-is");
    let v = validate(scaled, out.to_str().unwrap(), &[]);
    let classes = v["profile_check"]["classes"].as_array().unwrap();
    assert!(!classes.is_empty(), "{v}");
    for c in classes {
        let r = c["ratio"].as_f64().unwrap();
        assert!(
            r < 0.5,
            "every class runs far faster than the scaled profile says: {c}"
        );
    }
    assert!(v.get("level").is_none(), "{v}");
    // --relevel: two other whole models of the space set the level of the predictions.
    let out = s.0.join("relevelled");
    let v = validate(scaled, out.to_str().unwrap(), &["--relevel"]);
    assert!(v["level"].is_object(), "{v}");
    assert_eq!(v["remeasured"], 0);
    assert!(v["profile_check"]["classes"].as_array().is_some());
    let level = &v["level"];
    let anchors = level["anchors"].as_array().unwrap();
    assert_eq!(anchors.len(), 2, "{level}");
    let validated: Vec<&serde_json::Value> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["id"])
        .collect();
    for a in anchors {
        assert!(
            !validated.contains(&&a["id"]),
            "an anchor is not validated on: {a}"
        );
    }
    for phase in ["prefill", "decode"] {
        let k = level[phase].as_f64().unwrap();
        assert!(
            k > 0.0 && k < 0.5,
            "whole models run far faster than the scaled profile says: {level}"
        );
    }
    // The rows are predicted at the level: each row's prediction is the unlevelled one
    // (the `as-is` validation's, same sample) times the level.
    let as_is = validate(scaled, s.0.join("as-is").to_str().unwrap(), &[]);
    for (a, b) in as_is["rows"]
        .as_array()
        .unwrap()
        .iter()
        .zip(v["rows"].as_array().unwrap())
    {
        assert_eq!(a["id"], b["id"]);
        for (key, phase) in [
            ("predicted_prefill_ms", "prefill"),
            ("predicted_decode_ms", "decode"),
        ] {
            let want = a[key].as_f64().unwrap() * level[phase].as_f64().unwrap();
            let got = b[key].as_f64().unwrap();
            assert!((got - want).abs() <= 1e-9 * want, "{key}: {got} vs {want}");
        }
    }
    let anchored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("level/validate.json")).unwrap())
            .unwrap();
    assert_eq!(
        anchored["rows"].as_array().unwrap().len(),
        2,
        "the anchors' own check"
    );
    assert_eq!(
        std::fs::read_to_string(scaled).unwrap(),
        scaled_text,
        "neither the check nor a re-level writes the profile"
    );

    // --remeasure: every class drifted, so every entry is re-measured in the file (a copy
    // here); the file keeps its shapes, in order, and says when it was updated.
    let entries = |t: &str| -> Vec<String> {
        let v: toml::Value = toml::from_str(t).unwrap();
        v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["shape"].to_string())
            .collect()
    };
    let copy = s.write("remeasured.toml", &scaled_text);
    let copy = copy.to_str().unwrap();
    let out = s.0.join("remeasured");
    let v = validate(copy, out.to_str().unwrap(), &["--remeasure"]);
    let n = entries(&scaled_text).len();
    assert_eq!(v["remeasured"], n as u64, "{v}");
    assert!(v.get("level").is_none(), "{v}");
    let after = std::fs::read_to_string(copy).unwrap();
    assert_eq!(entries(&after), entries(&scaled_text));
    assert_ne!(after, scaled_text);
    let updated =
        |t: &str| toml::from_str::<toml::Value>(t).unwrap()["provenance"]["updated"].clone();
    assert_ne!(updated(&after), updated(&scaled_text));
    let e = tailor(&[
        "validate",
        "--profile",
        copy,
        "--space",
        &space,
        "--remeasure",
        "--no-recheck",
    ]);
    assert_eq!(e.code, 2, "--remeasure needs the check: {}", e.stderr);

    // `run` re-checks the profile it reuses, re-measures what drifted and (--anchors)
    // prices at the level of whole models.
    let out = s.0.join("run");
    let mut a = vec![
        "run",
        &space,
        "--profile",
        scaled,
        "--anchors",
        "2",
        "--check",
        "0",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ];
    a.extend(FAST);
    let summary = tailor(&a).json();
    assert_eq!(summary["profile"]["measured_now"], 0, "{summary}");
    assert_eq!(summary["profile"]["releveled"], true, "{summary}");
    assert_eq!(level_anchors(&summary), Some(2), "{summary}");
    assert_eq!(summary["profile"]["remeasured"], n as u64, "{summary}");
    assert!(
        summary["profile"]["profile_check"]["classes"]
            .as_array()
            .is_some()
    );
    let after = std::fs::read_to_string(scaled).unwrap();
    assert_eq!(entries(&after), entries(&scaled_text));
    assert_ne!(
        after, scaled_text,
        "run re-measured the drifted entries in the file"
    );
}

/// kill -9 of `validate --remeasure` at seeded points while it re-measures a drifted
/// profile in place: the file left behind always loads with every shape it had (entries
/// are replaced, never dropped), and a rerun completes.
#[test]
fn a_remeasure_killed_anywhere_leaves_a_whole_profile() {
    use crate::profile::{kill_after, kill_point};
    let (s, space, profile) = profiled("remeasure-kill");
    let scaled = scaled(&profile, 8.0);
    let shapes = |t: &str| -> Vec<String> {
        let v: toml::Value = toml::from_str(t).expect("a whole TOML file");
        v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["shape"].to_string())
            .collect()
    };
    let want = shapes(&scaled);
    let args = |p: &str, out: &str| -> Vec<String> {
        let mut a: Vec<String> = [
            "validate",
            "--profile",
            p,
            "--space",
            space.as_str(),
            "--samples",
            "2",
            "--rounds",
            "1",
            "--remeasure",
            "--json",
            "--out",
            out,
        ]
        .map(String::from)
        .to_vec();
        a.extend(FAST.map(String::from));
        a
    };
    // An uninterrupted run, for its length.
    let full = s.write("full.toml", &scaled);
    let out = s.0.join("full-out");
    let started = std::time::Instant::now();
    let a = args(full.to_str().unwrap(), out.to_str().unwrap());
    let r = tailor(&a.iter().map(String::as_str).collect::<Vec<_>>()).json();
    let wall = started.elapsed().as_secs_f64();
    assert_eq!(r["remeasured"], want.len() as u64, "{r}");
    for seed in 1..=2u64 {
        let copy = s.write(&format!("killed-{seed}.toml"), &scaled);
        let out = s.0.join(format!("killed-{seed}-out"));
        let a = args(copy.to_str().unwrap(), out.to_str().unwrap());
        kill_after(
            &a.iter().map(String::as_str).collect::<Vec<_>>(),
            std::time::Duration::from_secs_f64(0.2 + 0.8 * kill_point(seed) * wall),
        );
        let left = std::fs::read_to_string(&copy).unwrap();
        assert_eq!(
            shapes(&left),
            want,
            "seed {seed}: every shape is still there"
        );
        tailor_cost::Profile::load(&copy).expect("the profile left behind loads");
        let r = tailor(&a.iter().map(String::as_str).collect::<Vec<_>>()).json();
        assert_eq!(r["measured"], r["samples"], "seed {seed}: {r}");
        assert_eq!(shapes(&std::fs::read_to_string(&copy).unwrap()), want);
    }
}
