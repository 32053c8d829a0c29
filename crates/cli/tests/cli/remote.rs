//! `tailor profile --remote`: the whole phone flow on quickstart.toml through the qemu
//! transport (the static arm64 build under qemu-aarch64-static), resume, and the bad cases (no adb, no device,
//! a device lost mid-run, a binary for another architecture). Timings under emulation
//! mean nothing and are never asserted.

use crate::common::{Scratch, root, tailor, tailor_env};
use crate::validate::{FAST, TINY_SPACE};
use std::path::{Path, PathBuf};

fn arm64_binary() -> PathBuf {
    root().join("target/aarch64-unknown-linux-musl/release/tailor")
}

fn s(p: &Path) -> String {
    p.to_str().expect("utf-8 path").to_string()
}

/// Runs the arm64 build of tailor under qemu, in a scratch folder standing for the phone.
/// Needs the build (scripts/build-arm64.sh) and qemu-aarch64-static; without them the
/// test says so and passes, unless TAILOR_REQUIRE_QEMU=1 (set by .ci/run, which has both).
#[test]
fn remote_profile_through_qemu_resumes_and_pulls() {
    let what = format!(
        "qemu-aarch64-static and the arm64 build {} (scripts/build-arm64.sh)",
        arm64_binary().display()
    );
    if skipped(
        have_qemu() && arm64_binary().is_file(),
        &["TAILOR_REQUIRE_QEMU"],
        &what,
    ) {
        return;
    }
    let dir = Scratch::new("remote-qemu");
    // The quickstart space, as a phone would profile it (shortest timing: ~2 minutes of
    // emulation on 2 cores).
    let space = root().join("search-spaces/quickstart.toml");
    let device = dir.0.join("phone");
    let out = dir.0.join("profiles/qemu-flex.toml");
    let remote = format!("qemu:{}", s(&device));
    let profile = |extra: &[&str]| {
        let mut args = vec![
            "profile",
            "--space",
            space.to_str().unwrap(),
            "--remote",
            &remote,
            "--out",
            out.to_str().unwrap(),
            "--rounds",
            "1",
            "--json",
        ];
        args.extend(FAST);
        args.extend(extra);
        tailor(&args).json()
    };
    // A first run cut short (as a disconnect would), then the rest.
    let first = profile(&["--limit", "10"]);
    assert_eq!(first["measured_now"], 10, "{first}");
    assert!(first["missing"].as_u64().unwrap() > 0);
    assert!(out.is_file(), "the partial profile is pulled too");
    let rest = profile(&[]);
    assert_eq!(rest["missing"], 0, "{rest}");
    let needed = rest["shapes_needed"].as_u64().unwrap();
    assert_eq!(
        rest["measured_now"].as_u64().unwrap(),
        needed - 10,
        "resumed, not restarted"
    );
    assert_eq!(rest["fingerprint"]["os"], "linux-aarch64");
    assert_eq!(rest["profile"], s(&out));

    // The pulled file is a whole profile of the device, with the runtime's memory
    // probed there (the device binary starting itself, here through the emulator).
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("os = \"linux-aarch64\""));
    assert!(
        text.contains("[memory]\nruntime_overhead_bytes = "),
        "{text}"
    );
    assert_eq!(text.matches("[[entries]]").count() as u64, needed);

    // The device lost its copy: the local one is pushed and nothing is measured again.
    std::fs::remove_file(device.join("qemu-flex.toml")).unwrap();
    let again = profile(&[]);
    assert_eq!(again["measured_now"], 0, "{again}");
    assert_eq!(again["missing"], 0);

    // Validated on the device with its own profile: the models built and timed there,
    // validate.json written here.
    let validate = |out_dir: &Path, how: &[&str]| {
        let mut args = vec!["validate", "--space", space.to_str().unwrap()];
        args.extend(how);
        args.extend(["--samples", "2", "--rounds", "1", "--no-recheck", "--json"]);
        args.extend(["--out", out_dir.to_str().unwrap()]);
        args.extend(FAST);
        tailor(&args).json()
    };
    let validated = dir.0.join("validate");
    let v = validate(
        &validated,
        &["--profile", out.to_str().unwrap(), "--remote", &remote],
    );
    assert_eq!(v["engine"], "burn", "{v}");
    assert_eq!(v["measured"], 2, "{v}");
    assert_eq!(v["profile"], s(&out));
    assert!(validated.join("validate.json").is_file());
    assert!(validated.join("calibration.svg").is_file());
    // The same device in a set beside a datasheet: timed there, the datasheet reported.
    let set_out = dir.0.join("validate-set");
    let target = format!("phone={},remote={remote}", s(&out));
    let datasheet = format!(
        "sheet={}",
        s(&root().join("profiles/snapdragon-8-gen3-cpu.toml"))
    );
    let set = validate(&set_out, &["--target", &target, "--target", &datasheet]);
    assert_eq!(set[0]["device"], "phone", "{set}");
    assert_eq!(set[0]["validate"]["measured"], 2, "{set}");
    assert!(set[1]["skipped"].as_str().unwrap().contains("a datasheet"));
    assert!(set_out.join("phone/validate.json").is_file());
}

fn have_qemu() -> bool {
    std::process::Command::new("qemu-aarch64-static")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether a test that needs `what` must skip: it says so when `available` is false,
/// and fails instead when every variable of `required_by` is `1` (as `.ci/run` sets them).
fn skipped(available: bool, required_by: &[&str], what: &str) -> bool {
    if available {
        return false;
    }
    let required = required_by
        .iter()
        .all(|v| std::env::var(v).is_ok_and(|v| v == "1"));
    assert!(
        !required,
        "{} set but {what} missing",
        required_by.join("=1 and ")
    );
    eprintln!("skipped: needs {what}");
    true
}

/// An aarch64 ELF header, enough for the architecture check (the fake adb never runs it).
fn fake_arm64(dir: &Scratch) -> PathBuf {
    let mut bytes = vec![0u8; 64];
    bytes[..4].copy_from_slice(b"\x7fELF");
    bytes[18] = 0xB7;
    let p = dir.0.join("tailor-arm64");
    std::fs::write(&p, bytes).expect("write the fake binary");
    p
}

/// A folder holding a fake `adb` (a shell script) that behaves as `script` says.
fn fake_adb(dir: &Scratch, script: &str) -> String {
    let bin = dir.0.join("bin");
    std::fs::create_dir_all(&bin).expect("bin folder");
    let adb = bin.join("adb");
    std::fs::write(&adb, format!("#!/bin/sh\n{script}\n")).expect("write the fake adb");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&adb, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    format!("{}:/usr/bin:/bin", s(&bin))
}

#[test]
fn remote_bad_cases_fail_clearly() {
    let dir = Scratch::new("remote-bad");
    let space = s(&dir.write("space.toml", TINY_SPACE));
    let arm = s(&fake_arm64(&dir));
    let out = s(&dir.0.join("p.toml"));
    let base = |remote: &'static str, binary: &str| -> Vec<String> {
        [
            "profile",
            "--space",
            &space,
            "--remote",
            remote,
            "--remote-binary",
            binary,
            "--out",
            &out,
        ]
        .iter()
        .map(|a| a.to_string())
        .collect()
    };
    let run = |args: &[String], path: &str| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        tailor_env(&root(), &args, &[("PATH", path)])
    };

    // No adb at all.
    let e = run(&base("adb", &arm), &s(&dir.0.join("empty")));
    assert!(
        e.assert_clean_error().contains("no `adb` on PATH"),
        "{}",
        e.stderr
    );

    // adb, but no phone.
    let path = fake_adb(&dir, "echo 'error: no devices/emulators found' >&2; exit 1");
    let e = run(&base("adb", &arm), &path);
    let line = e.assert_clean_error();
    assert!(
        line.contains("no device ready for adb") && line.contains("no devices/emulators found"),
        "{line}"
    );

    // A phone that goes away once profiling starts: the message says how to resume.
    let flag = s(&dir.0.join("gone"));
    let path = fake_adb(
        &dir,
        &format!(
            r#"[ "$1" = "-s" ] && shift 2
case "$1" in
  get-state) if [ -f {flag} ]; then echo 'error: device offline' >&2; exit 1; fi; echo device ;;
  push|pull) exit 0 ;;
  shell) case "$2" in
      "uname -m") echo aarch64 ;;
      getprop*) echo 'Fake Phone' ;;
      mkdir*) ;;
      test*) echo no ;;
      *) touch {flag}; echo 'error: closed' >&2; exit 255 ;;
    esac ;;
esac"#
        ),
    );
    let e = run(&base("adb:FAKE123", &arm), &path);
    // adb's own `error: closed` streams through before ours, so not assert_clean_error.
    assert_eq!(e.code, 1, "{}", e.stderr);
    assert!(!e.stderr.contains("panicked"), "{}", e.stderr);
    let line = e.stderr.trim_end().lines().last().unwrap_or_default();
    assert!(
        line.contains("the device went away") && line.contains("rerun the same command to resume"),
        "{line}"
    );
    assert!(
        line.contains("fake-phone-flex.toml") || line.contains("p.toml"),
        "{line}"
    );

    // A binary for this machine, not for a phone.
    let host = env!("CARGO_BIN_EXE_tailor");
    let e = run(&base("adb", host), &path);
    let line = e.assert_clean_error();
    if cfg!(target_arch = "x86_64") {
        assert!(line.contains("built for x86_64"), "{line}");
    }
    // Other bad arguments.
    let e = tailor(&["profile", "--space", &space, "--remote", "ssh:phone"]);
    assert!(e.assert_clean_error().contains("expected `adb`"));
    let e = tailor(&[
        "profile",
        "--space",
        &space,
        "--remote",
        "qemu",
        "--backend",
        "wgpu",
    ]);
    assert!(e.assert_clean_error().contains("CPU backends only"));
    let e = tailor(&["profile", "--space", &space, "--cpus", "big", "--out", &out]);
    assert!(e.assert_clean_error().contains("--cpus: `big`"));
}

/// `--cpus` pins the run (through taskset) and the fingerprint says so.
#[test]
fn cpus_pins_the_run_and_the_fingerprint_records_it() {
    let cpus = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("Cpus_allowed_list:")
                .map(|v| v.trim().to_string())
        });
    let has_taskset = std::process::Command::new("taskset")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if cpus.as_deref().is_none_or(|c| c == "0") || !has_taskset {
        eprintln!("skipped: one CPU or no taskset");
        return;
    }
    let dir = Scratch::new("pinned");
    let space = s(&dir.write("space.toml", TINY_SPACE));
    let out = s(&dir.0.join("pinned.toml"));
    let mut args = vec![
        "profile",
        "--space",
        &space,
        "--out",
        &out,
        "--cpus",
        "0",
        "--rounds",
        "1",
        "--cooldown",
        "1ms",
        "--json",
    ];
    args.extend(FAST);
    let p = tailor(&args).json();
    assert_eq!(p["fingerprint"]["cpus"], "0", "{p}");
    assert_eq!(p["fingerprint"]["threads"], 1, "{p}");
    assert_eq!(p["missing"], 0);
    // The pinned profile does not serve an unpinned run.
    let mut args = vec!["profile", "--space", &space, "--out", &out, "--json"];
    args.extend(FAST);
    let e = tailor(&args);
    assert!(
        e.assert_clean_error().contains("cpus `0` vs ``"),
        "{}",
        e.stderr
    );
}

/// The arm64 llama-bench (`scripts/build-llama-bench.sh --arm64`), or
/// `$TAILOR_LLAMA_BENCH_ARM64`.
fn arm64_llama_bench() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TAILOR_LLAMA_BENCH_ARM64").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    std::fs::read_dir(root().join("target/llama.cpp"))
        .ok()?
        .filter_map(|d| {
            d.ok()
                .map(|d| d.path().join("build-aarch64/bin/llama-bench"))
        })
        .find(|p| p.is_file())
}

/// Two probe depths of one small layer, Q8_0: a handful of llama-bench runs.
const LLAMA_TINY_SPACE: &str = r#"
format_version = 1
name = "llama-remote"
[model]
vocab_size = 256
hidden_size = [64]
num_layers = [1, 2]
head_dim = [32]
kv_group = [1, 2]
ffn_ratio = [2.0]
ffn_multiple = 32
ffn = "gated"
activation = "silu"
norm = "rmsnorm"
tie_embeddings = true
[workload]
prompt_tokens = 8
context = 16
weights = "q8_0"
[objectives]
minimize = ["decode_ms"]
[pick]
minimize = "decode_ms"
"#;

/// The llama.cpp engine on a "phone": the arm64 tailor and the arm64 llama-bench pushed
/// to a folder and run under qemu, the probe GGUFs written there, the profile pulled,
/// cut short and resumed; then the pulled profile prices a model on the host. Needs
/// qemu-aarch64-static, scripts/build-arm64.sh and scripts/build-llama-bench.sh --arm64;
/// required when TAILOR_REQUIRE_QEMU=1 and TAILOR_REQUIRE_LLAMA=1 (set by .ci/run).
#[test]
fn remote_llama_profile_through_qemu_resumes_and_pulls() {
    let what = format!(
        "qemu-aarch64-static, the arm64 build {} (scripts/build-arm64.sh) and the arm64 \
         llama-bench (scripts/build-llama-bench.sh --arm64)",
        arm64_binary().display()
    );
    let llama_bench = arm64_llama_bench();
    let available = have_qemu() && arm64_binary().is_file() && llama_bench.is_some();
    if skipped(
        available,
        &["TAILOR_REQUIRE_QEMU", "TAILOR_REQUIRE_LLAMA"],
        &what,
    ) {
        return;
    }
    let Some(llama_bench) = llama_bench else {
        return;
    };
    let dir = Scratch::new("remote-llama-qemu");
    let space = s(&dir.write("space.toml", LLAMA_TINY_SPACE));
    let device = dir.0.join("phone");
    let out = dir.0.join("profiles/qemu-llamacpp-q8_0.toml");
    let remote = format!("qemu:{}", s(&device));
    let lb = s(&llama_bench);
    let profile = |extra: &[&str]| {
        let mut args = vec![
            "profile",
            "--engine",
            "llama.cpp",
            "--space",
            &space,
            "--remote",
            &remote,
            "--llama-bench",
            &lb,
            "--out",
            out.to_str().unwrap(),
            "--threads",
            "2",
            "--repetitions",
            "2",
            "--decode-tokens",
            "4",
            "--rounds",
            "1",
            "--json",
        ];
        args.extend(extra);
        tailor(&args).json()
    };
    let first = profile(&["--limit", "1"]);
    assert_eq!(first["probe_visits_now"], 1, "{first}");
    assert!(first["missing"].as_u64().unwrap() > 0, "{first}");
    assert!(out.is_file(), "the partial profile is pulled too");
    let rest = profile(&[]);
    assert_eq!(rest["missing"], 0, "{rest}");
    assert_eq!(
        rest["probe_visits_now"].as_u64().unwrap(),
        rest["probes"].as_u64().unwrap() - 1,
        "resumed, not restarted: {rest}"
    );
    assert_eq!(rest["fingerprint"]["os"], "linux-aarch64", "{rest}");
    assert_eq!(rest["fingerprint"]["weights"], "q8_0", "{rest}");
    assert_eq!(rest["profile"], s(&out));
    assert_eq!(
        rest["remote"],
        format!("qemu-aarch64-static in {}", s(&device))
    );
    // The probe models were written and removed on the device; only the profile (and its
    // lock) is left.
    let mut left: Vec<String> = std::fs::read_dir(&device)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            ".qemu-llamacpp-q8_0.toml.lock",
            "llama-bench",
            "qemu-llamacpp-q8_0.toml",
            "space.toml",
            "tailor"
        ],
        "{left:?}"
    );

    // The pulled profile prices a member of the space on the host.
    let spec = dir.write(
        "member.toml",
        r#"
format_version = 1
name = "member"
[model]
vocab_size = 256
hidden_size = 64
num_layers = 2
num_heads = 2
num_kv_heads = 1
head_dim = 32
intermediate_size = 128
ffn = "gated"
activation = "silu"
norm = "rmsnorm"
tie_embeddings = true
"#,
    );
    let p = tailor(&[
        "predict",
        spec.to_str().unwrap(),
        "--profile",
        out.to_str().unwrap(),
        "--prompt",
        "8",
        "--context",
        "16",
        "--json",
    ])
    .json();
    assert!(p["decode_ms_per_token"].as_f64().unwrap() > 0.0, "{p}");
    assert_eq!(p["derived"].as_array().unwrap().len(), 0, "covered: {p}");
}

/// The llama.cpp remote flow's own bad inputs, before anything is pushed.
#[test]
fn remote_llama_bad_cases_fail_clearly() {
    let dir = Scratch::new("remote-llama-bad");
    let space = s(&dir.write("space.toml", LLAMA_TINY_SPACE));
    let arm = s(&fake_arm64(&dir));
    let base = [
        "profile",
        "--engine",
        "llama.cpp",
        "--space",
        &space,
        "--remote",
        "qemu",
        "--remote-binary",
        &arm,
    ];
    // No llama-bench named: which one to push cannot be guessed (the host's won't run).
    let e = tailor(&base);
    let line = e.assert_clean_error();
    assert!(line.contains("--llama-bench PATH"), "{line}");
    // A llama-bench for this machine, not for a phone.
    let host = env!("CARGO_BIN_EXE_tailor");
    let mut args = base.to_vec();
    args.extend(["--llama-bench", host]);
    let line = tailor(&args).assert_clean_error().to_string();
    if cfg!(target_arch = "x86_64") {
        assert!(
            line.contains("built for x86_64") && line.contains("NDK"),
            "{line}"
        );
    }
    // --cpus is burn's.
    let mut args = base.to_vec();
    args.extend(["--llama-bench", &arm, "--cpus", "0"]);
    let line = tailor(&args).assert_clean_error().to_string();
    assert!(line.contains("--threads"), "{line}");
}
