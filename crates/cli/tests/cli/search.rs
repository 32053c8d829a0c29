use crate::common::{Scratch, tailor};

const QUICK: &str = "search-spaces/quickstart.toml";
const HOST: &str = "profiles/host-roofline.toml";

#[test]
fn exhaustive_quickstart_writes_all_files() {
    let s = Scratch::new("search-quick");
    let out = s.0.join("run");
    let r = tailor(&[
        "search",
        QUICK,
        "--device",
        HOST,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("quickstart: 432 points"), "{}", r.stdout);
    assert!(r.stdout.contains("pick"), "{}", r.stdout);

    let csv = std::fs::read_to_string(out.join("candidates.csv")).unwrap();
    let mut lines = csv.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("id,vocab_size,hidden_size"), "{header}");
    assert!(header.ends_with("feasible,why_not"), "{header}");
    // 432 points - 36 not buildable.
    assert_eq!(lines.clone().count(), 396);
    let infeasible = lines
        .clone()
        .filter(|l| l.ends_with(",false,params"))
        .count();
    assert_eq!(infeasible, 396 - 120);

    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["space_size"], 432);
    assert_eq!(summary["evaluated"], 396);
    assert_eq!(summary["feasible"], 120);
    assert_eq!(summary["skipped"]["kv_group does not divide num_heads"], 36);
    assert_eq!(summary["constraints"]["params"]["excluded"], 276);
    assert!(summary["timing"]["evaluations_per_s"].as_f64().unwrap() > 0.0);
    let pick_id = summary["pick"]["id"].as_u64().unwrap();

    let front: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("front.json")).unwrap()).unwrap();
    let rows = front["rows"].as_array().unwrap();
    assert_eq!(rows.len(), summary["front_size"].as_u64().unwrap() as usize);
    let picked: Vec<_> = rows.iter().filter(|r| r["picked"] == true).collect();
    assert_eq!(picked.len(), 1);
    assert_eq!(picked[0]["id"], pick_id);
    assert!(rows.iter().all(|r| r["spec"]["hidden_size"].is_u64()));
}

#[test]
fn same_seed_same_files_and_json_on_stdout() {
    let s = Scratch::new("search-seed");
    let run = |dir: &str| {
        let out = s.0.join(dir);
        let r = tailor(&[
            "search",
            QUICK,
            "--device",
            HOST,
            "--strategy",
            "nsga2",
            "--budget",
            "130",
            "--seed",
            "9",
            "--json",
            "--out",
            out.to_str().unwrap(),
        ]);
        let v = r.json();
        (
            std::fs::read(out.join("candidates.csv")).unwrap(),
            std::fs::read(out.join("front.json")).unwrap(),
            v,
        )
    };
    let (csv_a, front_a, a) = run("a");
    let (csv_b, front_b, b) = run("b");
    assert_eq!(csv_a, csv_b);
    assert_eq!(front_a, front_b);
    assert_eq!(a["pick"], b["pick"]);
    assert_eq!(a["strategy"], "nsga2");
    assert!(a["priced"].as_u64().unwrap() <= 130);
}

#[test]
fn phonelm_reference_is_located_against_the_front() {
    let s = Scratch::new("search-phonelm");
    let out = s.0.join("run");
    let r = tailor(&[
        "search",
        "search-spaces/phonelm-0.5b.toml",
        "--device",
        HOST,
        "--json",
        "--out",
        out.to_str().unwrap(),
    ]);
    let v = r.json();
    let refs = v["references"].as_array().unwrap();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0]["name"], "PhoneLM-0.5B");
    assert_eq!(refs[0]["in_space"], true);
    assert_eq!(refs[0]["feasible"], true);
    assert_eq!(refs[0]["metrics"]["params"], 509_658_112u64);
}

#[test]
fn bad_searches_fail_clearly() {
    let s = Scratch::new("search-bad");
    let e = tailor(&["search", "nope.toml", "--device", HOST])
        .assert_clean_error()
        .to_string();
    assert!(e.contains("nope.toml: cannot read"), "{e}");

    let src = std::fs::read_to_string(crate::common::root().join(QUICK)).unwrap();
    let p = s.write(
        "wide.toml",
        &src.replace(
            "params = { min = 15e6, max = 30e6 }",
            "params = { min = 2e9 }",
        ),
    );
    let out = s.0.join("wide-out");
    let e = tailor(&[
        "search",
        p.to_str().unwrap(),
        "--device",
        HOST,
        "--out",
        out.to_str().unwrap(),
    ])
    .assert_clean_error()
    .to_string();
    assert!(
        e.contains("[constraints] params alone excludes every candidate: widen it"),
        "{e}"
    );
    assert!(
        out.join("candidates.csv").exists(),
        "candidates are kept for inspection"
    );

    let p = s.write(
        "q4.toml",
        &src.replace("weights = \"f32\"", "weights = \"q4_0\""),
    );
    let e = tailor(&["search", p.to_str().unwrap(), "--device", HOST])
        .assert_clean_error()
        .to_string();
    assert!(
        e.contains("no peak compute for weights type q4_0 (it has: f32)"),
        "{e}"
    );

    let p = s.write("typo.toml", &src.replace("kv_group", "kv_groups"));
    let e = tailor(&["search", p.to_str().unwrap(), "--device", HOST])
        .assert_clean_error()
        .to_string();
    assert!(
        e.contains("typo.toml:12:") && e.contains("unknown field `kv_groups`"),
        "{e}"
    );

    let r = tailor(&[
        "search",
        QUICK,
        "--device",
        HOST,
        "--strategy",
        "exhaustive",
        "--budget",
        "10",
    ]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("--budget applies to random and nsga2"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_search_that_would_write_too_large_a_candidates_csv_is_refused_before_it_starts() {
    let out = std::env::temp_dir().join(format!("tailor-csv-limit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let space = "search-spaces/phonelm-0.5b.toml";
    let args = |extra: &[&str]| {
        let mut a = vec![
            "search",
            space,
            "--device",
            HOST,
            "--out",
            out.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let run = |a: Vec<String>| tailor(&a.iter().map(String::as_str).collect::<Vec<_>>());
    for strategy in [
        &["--strategy", "exhaustive"][..],
        &["--strategy", "random"][..],
    ] {
        let mut a = args(strategy);
        a.extend(["--max-candidates-csv".to_string(), "1".to_string()]);
        let e = run(a).assert_clean_error().to_string();
        assert!(
            e.contains("phonelm-0.5b.toml: a ")
                && e.contains("over --max-candidates-csv 1 MiB")
                && e.contains("--strategy nsga2 --budget"),
            "{e}"
        );
        assert!(!out.exists(), "nothing is written before the refusal");
    }
    // A budget bounds the file: the same limit lets a sampled search run.
    let mut a = args(&["--strategy", "random", "--budget", "50"]);
    a.extend(["--max-candidates-csv".to_string(), "1".to_string()]);
    let r = run(a);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let csv = std::fs::metadata(out.join("candidates.csv")).unwrap().len();
    assert!(csv < 1 << 20, "{csv}");
    std::fs::remove_dir_all(&out).unwrap();
}

/// A space of mixed stacks searches on a datasheet (the roofline prices every mixer), its
/// pick exports as the family that expresses it, and a burn profile that never timed its
/// mixers refuses it by shape, with the command that adds them.
#[test]
fn a_hybrid_space_searches_on_a_datasheet_and_is_refused_by_a_profile() {
    let s = Scratch::new("search-hybrid");
    let out = s.0.join("run");
    let r = tailor(&[
        "search",
        "search-spaces/hybrid-350m.toml",
        "--device",
        "profiles/snapdragon-8-gen3-cpu.toml",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("stack"), "{}", r.stdout);
    assert!(r.stdout.contains("reference lfm2"), "{}", r.stdout);
    let header = std::fs::read_to_string(out.join("candidates.csv"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    // The stack, then the space's other context (hybrid-350m decodes at 512 beside 4096).
    assert!(
        header.ends_with(",stack,decode_ms@512,peak_memory_bytes@512"),
        "{header}"
    );
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("pick/config.json")).unwrap())
            .unwrap();
    assert_eq!(config["model_type"], "lfm2");

    // A burn profile that never timed a short convolution (the committed one profiles the
    // dense quickstart) refuses the space, naming the shape and the command that adds it.
    // burn runs f32: the space's copy at f32, without its reference.
    let f32_space = s.0.join("h32.toml");
    let src = std::fs::read_to_string(crate::common::root().join("search-spaces/hybrid-350m.toml"))
        .unwrap()
        .replace("weights = \"q4_0\"", "weights = \"f32\"")
        .replace("references = [\"../specs/lfm2-350m.config.json\"]\n", "");
    std::fs::write(&f32_space, src).unwrap();
    let e = tailor(&[
        "search",
        f32_space.to_str().unwrap(),
        "--profile",
        "profiles/host-flex.toml",
        "--no-recheck",
        "--out",
        s.0.join("refused").to_str().unwrap(),
    ])
    .assert_clean_error()
    .to_string();
    assert!(e.contains("runs short_conv operators (short_conv t"), "{e}");
    assert!(e.contains("h32.toml --out profiles/host-flex.toml"), "{e}");
    // A llama.cpp profile prices them, from probes at the space's own contexts: the
    // committed one (quickstart's) has none of them, and says how to make them.
    let e = tailor(&[
        "search",
        "search-spaces/hybrid-350m.toml",
        "--profile",
        "profiles/host-llamacpp-q4_0.toml",
        "--no-recheck",
        "--out",
        s.0.join("refused").to_str().unwrap(),
    ])
    .assert_clean_error()
    .to_string();
    assert!(
        e.contains("no prefill 512 probes") && e.contains("tailor profile --engine llama.cpp"),
        "{e}"
    );
    // burn runs f32: a burn profile of a q4_0 space says how to get one.
    let e = tailor(&["profile", "--space", "search-spaces/sliding-270m.toml"])
        .assert_clean_error()
        .to_string();
    assert!(
        e.contains("runs q4_0 weights, and burn runs f32 only") && e.contains("--engine llama.cpp"),
        "{e}"
    );
}

#[test]
fn a_set_of_devices_is_searched_reported_and_exported_with_each_devices_prediction() {
    let s = Scratch::new("search-devices");
    let out = s.0.join("run");
    let r = tailor(&[
        "search",
        "search-spaces/phonelm-0.5b-devices.toml",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("each device's own pick against the shared pick"),
        "{}",
        r.stdout
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let devices = summary["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 2);
    assert_eq!(devices[0]["name"], "phone");
    assert_eq!(devices[0]["workload"]["precision"]["weights"], "q4_0");
    assert_eq!(devices[1]["workload"]["precision"]["weights"], "f32");
    assert_eq!(summary["device_cost_models"].as_array().unwrap().len(), 2);
    assert_eq!(summary["pick_rule"]["metric"], "worst:decode_ms");
    for d in devices {
        let r = &d["regret"];
        assert_eq!(r["metric"], "decode_ms");
        assert!(r["regret"].as_f64().unwrap() >= 0.0, "{d}");
        assert!(d["pick"]["id"].is_u64());
    }
    // The shared pick's worst case is 1 + the largest regret.
    let largest = devices
        .iter()
        .map(|d| d["regret"]["regret"].as_f64().unwrap())
        .fold(0.0, f64::max);
    let worst = summary["pick"]["objectives"]["worst:decode_ms"]
        .as_f64()
        .unwrap();
    assert!((worst - 1.0 - largest).abs() < 1e-9, "{worst} vs {largest}");
    let header = std::fs::read_to_string(out.join("candidates.csv")).unwrap();
    let header = header.lines().next().unwrap();
    assert!(
        header.ends_with("feasible:phone,prefill_ms:laptop,decode_ms:laptop,peak_memory_bytes:laptop,feasible:laptop"),
        "{header}"
    );
    let front: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("front.json")).unwrap()).unwrap();
    let row = &front["rows"][0];
    assert_eq!(row["metrics"]["devices"].as_array().unwrap().len(), 2);
    assert!(row["objectives"]["worst:decode_ms"].as_f64().unwrap() >= 1.0);
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("## Devices"), "{report}");
    assert!(out.join("devices.svg").exists());
    let card = std::fs::read_to_string(out.join("pick/MODEL_CARD.md")).unwrap();
    assert!(card.contains("## On each device"), "{card}");
    assert!(
        card.contains("`laptop`") && card.contains("`phone`"),
        "{card}"
    );
    // `tailor export` of a front row of the set keeps every device's prediction.
    let exported = s.0.join("export");
    let target = format!("{}#{}", out.join("front.json").display(), row["id"]);
    let r = tailor(&["export", &target, "--out", exported.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let card = std::fs::read_to_string(exported.join("MODEL_CARD.md")).unwrap();
    assert!(card.contains("## On each device"), "{card}");
}

#[test]
fn a_device_of_a_set_missing_a_shape_is_refused_naming_the_device_and_the_shape() {
    // The committed llama.cpp profile holds decode at 256, not phonelm's 128.
    let r = tailor(&[
        "search",
        "search-spaces/phonelm-0.5b.toml",
        "--target",
        "phone=profiles/snapdragon-8-gen3-cpu.toml,weights=q4_0",
        "--target",
        "q4=profiles/host-llamacpp-q4_0.toml",
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("device `q4`")
            && r.stderr.contains("profiles/host-llamacpp-q4_0.toml")
            && r.stderr.contains("no decode at 128"),
        "{}",
        r.stderr
    );
    // A burn profile of dense spaces has timed no short convolution.
    let r = tailor(&[
        "search",
        "search-spaces/hybrid-350m.toml",
        "--target",
        "phone=profiles/snapdragon-8-gen3-cpu.toml",
        "--target",
        "laptop=profiles/host-flex.toml",
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("device `laptop`") && r.stderr.contains("profiles/host-flex.toml"),
        "{}",
        r.stderr
    );
    // A device with no file, and a device set beside --profile.
    let s = Scratch::new("search-devices-bad");
    let space = std::fs::read_to_string(crate::common::root().join(QUICK)).unwrap()
        + "\n[devices.a]\nfile = \"../profiles/host-roofline.toml\"\n\n[devices.b]\nweight = 2\n";
    let path = s.write(
        "set.toml",
        &space.replace(
            "../profiles",
            &crate::common::root().join("profiles").display().to_string(),
        ),
    );
    let r = tailor(&["search", path.to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("device `b` has no file to price it")
            && r.stderr.contains("--target b=FILE"),
        "{}",
        r.stderr
    );
    let r = tailor(&["search", path.to_str().unwrap(), "--profile", HOST]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("declares [devices]"), "{}", r.stderr);
    let r = tailor(&["search", QUICK, "--profile", HOST, "--target", "a=x.toml"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

/// The committed burn profile as if made on another machine (its fingerprint names another
/// CPU), written into `s`.
fn another_machines_profile(s: &Scratch) -> std::path::PathBuf {
    let flex = std::fs::read_to_string(crate::common::root().join("profiles/host-flex.toml"))
        .expect("the committed burn profile")
        .replace("cpu_model = \"AMD EPYC\"", "cpu_model = \"Imaginary 9000\"");
    s.write("other.toml", &flex)
}

#[test]
fn validate_over_a_set_reports_the_devices_it_cannot_time_here() {
    let s = Scratch::new("validate-devices");
    let other = another_machines_profile(&s);
    let out = s.0.join("v");
    let r = tailor(&[
        "validate",
        "--space",
        QUICK,
        "--target",
        &format!("phone={}", crate::common::root().join(HOST).display()),
        "--target",
        &format!("elsewhere={}", other.display()),
        "--samples",
        "2",
        "--rounds",
        "1",
        "--out",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    let devices = v.as_array().unwrap();
    assert_eq!(devices.len(), 2);
    assert!(
        devices[0]["skipped"]
            .as_str()
            .unwrap()
            .contains("a datasheet"),
        "{v}"
    );
    assert!(
        devices[1]["skipped"]
            .as_str()
            .unwrap()
            .contains("another machine"),
        "{v}"
    );
}

#[test]
fn run_over_a_set_searches_and_reports_the_devices_it_cannot_time_here() {
    let s = Scratch::new("run-devices");
    let other = another_machines_profile(&s);
    let out = s.0.join("run");
    let r = tailor(&[
        "run",
        QUICK,
        "--target",
        &format!("phone={}", crate::common::root().join(HOST).display()),
        "--target",
        &format!("elsewhere={},weight=2", other.display()),
        "--out",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let summary = r.json();
    assert_eq!(summary["devices"].as_array().unwrap().len(), 2);
    assert_eq!(summary["devices"][1]["weight"], 2.0);
    let checks = summary["device_checks"].as_array().unwrap();
    assert_eq!(checks.len(), 2);
    assert!(
        checks[0]["skipped"]
            .as_str()
            .unwrap()
            .contains("a datasheet"),
        "{summary}"
    );
    assert!(
        checks[1]["skipped"]
            .as_str()
            .unwrap()
            .contains("another machine"),
        "{summary}"
    );
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        report.contains("The picks timed whole on the devices here")
            && report.contains("not timed here"),
        "{report}"
    );
    assert!(out.join("pick/MODEL_CARD.md").exists());
}
