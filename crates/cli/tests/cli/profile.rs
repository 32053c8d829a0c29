//! `tailor profile` end to end, on flex with the shortest timing (no timing is asserted).

use crate::common::{Scratch, tailor};

const FAST: [&str; 6] = ["--max-time", "2ms", "--warmup", "1ms", "--cycle-mib", "1"];

fn profile(out: &str, extra: &[&str]) -> crate::common::Run {
    let mut args = vec![
        "profile",
        "--spec",
        "specs/tiny.toml",
        "--out",
        out,
        "--json",
    ];
    args.extend(FAST);
    args.extend(extra);
    tailor(&args)
}

#[test]
fn profiles_resume_and_refuse_another_setup() {
    let s = Scratch::new("profile-resume");
    let out = s.0.join("p.toml");
    let out = out.to_str().unwrap();

    // Interrupted after 3 sessions, then resumed: nothing measured twice.
    let first = profile(out, &["--limit", "3"]).json();
    assert_eq!(first["measured_now"], 3);
    // The runtime's memory is probed once, in fresh processes, and kept from then on.
    let memory = first["memory"].clone();
    assert_eq!(memory["source"], "rss", "{memory}");
    assert_eq!(memory["samples_bytes"].as_array().map(Vec::len), Some(3));
    let overhead = memory["runtime_overhead_bytes"].as_u64().unwrap();
    assert!(overhead > 0, "{memory}");
    let needed = first["shapes_needed"].as_u64().unwrap();
    assert!(needed > 6);
    assert_eq!(first["rounds"], 3);
    assert_eq!(first["missing"], needed, "no entry has its 3 sessions yet");
    let second = profile(out, &[]).json();
    assert_eq!(second["measured_now"], 3 * needed - 3);
    assert_eq!(second["missing"], 0);
    let third = profile(out, &[]).json();
    assert_eq!(third["measured_now"], 0);
    assert_eq!(
        third["memory"], memory,
        "the probe is not repeated on resume"
    );

    let text = std::fs::read_to_string(out).unwrap();
    assert!(text.contains("format_version = 2"));
    assert!(text.contains("[fingerprint]") && text.contains("backend = \"flex\""));
    assert!(text.contains("[roofline]"));
    assert!(text.contains(&format!("[memory]\nruntime_overhead_bytes = {overhead}\n")));
    assert_eq!(text.matches("[[entries]]").count() as u64, needed);

    // A profile from another setup is never appended to.
    let other = text.replacen("backend = \"flex\"", "backend = \"ndarray\"", 1);
    std::fs::write(out, &other).unwrap();
    let e = profile(out, &[]).assert_clean_error().to_string();
    assert!(
        e.contains("measured on another setup") && e.contains("backend `ndarray` vs `flex`"),
        "{e}"
    );
    assert!(e.contains("--force"), "{e}");
    assert_eq!(
        std::fs::read_to_string(out).unwrap(),
        other,
        "the refused file is untouched"
    );
    let fresh = profile(out, &["--force", "--limit", "1"]).json();
    assert_eq!(fresh["measured_now"], 1);
}

#[test]
fn bad_profile_input_fails_clearly() {
    let e = tailor(&["profile", "--space", "missing.toml"])
        .assert_clean_error()
        .to_string();
    assert!(e.contains("missing.toml: cannot read"), "{e}");
    let r = tailor(&[
        "profile",
        "--space",
        "search-spaces/quickstart.toml",
        "--backend",
        "cuda",
    ]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("unknown backend `cuda`; expected one of flex, ndarray, wgpu"),
        "{}",
        r.stderr
    );
    let r = tailor(&["profile", "--backend", "flex"]);
    assert_eq!(r.code, 2, "a space or specs are required");
    let r = tailor(&["profile", "--spec", "specs/tiny.toml", "--max-time", "soon"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("not a duration"), "{}", r.stderr);
}

/// One writer per profile. While another process holds the file's lock, `--no-wait`
/// fails at once naming the holder; two runs that wait take turns, the second resuming
/// the first's file: no entry lost, nothing measured twice. (The test process holds the
/// lock first, so nothing depends on how long a profile takes.)
#[test]
fn two_writers_of_one_profile_take_turns() {
    use std::process::{Command, Stdio};
    let dir = crate::common::Scratch::new("profile-lock");
    let out = dir.0.join("p.toml");
    let out_s = out.to_str().expect("utf-8 path").to_string();
    let held = tailor_spec::files::Lock::file(&out, false, &mut |_| {}).expect("lock");

    let e = tailor(&[
        "--no-wait",
        "profile",
        "--spec",
        "specs/tiny.toml",
        "--out",
        &out_s,
    ]);
    let line = e.assert_clean_error();
    assert!(
        line.contains("another tailor is writing it")
            && line.contains(&format!("pid {}", std::process::id())),
        "{line}"
    );
    assert!(!out.exists());

    let spawn = || {
        let mut args = vec![
            "profile",
            "--spec",
            "specs/tiny.toml",
            "--out",
            &out_s,
            "--json",
        ];
        args.extend(FAST);
        Command::new(env!("CARGO_BIN_EXE_tailor"))
            .args(args)
            .current_dir(crate::common::root())
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tailor")
    };
    let (mut a, mut b) = (spawn(), spawn());
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(
        a.try_wait().expect("poll").is_none() && b.try_wait().expect("poll").is_none(),
        "both wait for the lock"
    );
    assert!(!out.exists(), "nothing written while the lock is held");
    drop(held);
    let (a, b) = (
        a.wait_with_output().expect("wait"),
        b.wait_with_output().expect("wait"),
    );
    let text = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(a.status.success(), "{}", text(&a));
    assert!(b.status.success(), "{}", text(&b));
    assert!(
        text(&a).contains("waiting for it to finish") && text(&b).contains("waiting"),
        "{}\n{}",
        text(&a),
        text(&b)
    );
    let json = |o: &std::process::Output| -> serde_json::Value {
        serde_json::from_slice(&o.stdout).expect("json on stdout")
    };
    let (ja, jb) = (json(&a), json(&b));
    let needed = ja["shapes_needed"].as_u64().expect("shapes_needed");
    let mut measured = [
        ja["measured_now"].as_u64().expect("measured_now"),
        jb["measured_now"].as_u64().expect("measured_now"),
    ];
    measured.sort();
    assert_eq!(measured, [0, 3 * needed], "{ja}\n{jb}");
    let p = tailor_cost::Profile::load(&out).expect("the profile");
    assert_eq!(p.entries.len() as u64, needed);
}

/// A seeded fraction in [0, 1): where in a run to kill it.
pub fn kill_point(seed: u64) -> f64 {
    (seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) as f64 / (1u64 << 53) as f64
}

/// Starts `tailor ARGS` in the repository root, kills it with SIGKILL after `after`, and
/// waits for it to go. Whether it had finished by then does not matter to the callers.
pub fn kill_after(args: &[&str], after: std::time::Duration) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tailor"))
        .args(args)
        .current_dir(crate::common::root())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start tailor");
    std::thread::sleep(after);
    child.kill().expect("SIGKILL"); // a process that has exited is not an error
    child.wait().expect("wait");
}

/// kill -9 at seeded points of a real profiling run: the file left behind always loads,
/// and a rerun completes with exactly the entries of an uninterrupted run, each with all its
/// sessions (a killed session leaves nothing half-written).
#[test]
fn a_profile_killed_anywhere_resumes_to_the_entries_of_an_uninterrupted_run() {
    let s = Scratch::new("profile-kill");
    let path = |name: &str| s.0.join(name).to_str().expect("utf-8 path").to_string();
    let entries = |p: &str| -> Vec<String> {
        let text = std::fs::read_to_string(p).expect("profile");
        let v: toml::Value = toml::from_str(&text).expect("a whole TOML file");
        let mut keys: Vec<String> = v["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| {
                let rounds = e["rounds"].as_array().expect("rounds").len();
                format!("{} x{rounds}", e["shape"])
            })
            .collect();
        keys.sort();
        keys
    };
    let reference = path("full.toml");
    let full = profile(&reference, &[]).json();
    assert_eq!(full["missing"], 0);
    let wall = full["wall_s"].as_f64().expect("wall_s");
    let want = entries(&reference);
    assert!(want.iter().all(|k| k.ends_with(" x3")), "{want:?}");
    for seed in 1..=4u64 {
        let out = path(&format!("killed-{seed}.toml"));
        let mut args = vec!["profile", "--spec", "specs/tiny.toml", "--out", &out];
        args.extend(FAST);
        kill_after(
            &args,
            std::time::Duration::from_secs_f64(0.2 + kill_point(seed) * wall),
        );
        if std::path::Path::new(&out).exists() {
            entries(&out); // loads: never a torn file
        }
        let resumed = profile(&out, &[]).json();
        assert_eq!(resumed["missing"], 0, "seed {seed}: {resumed}");
        assert_eq!(entries(&out), want, "seed {seed}");
    }
}

/// Kills the spinning processes it holds when dropped (a failed assertion included).
struct Spinners(Vec<std::process::Child>);

impl Drop for Spinners {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A profile timed while other processes keep every CPU busy says so in the file: its
/// sessions carry the share of the CPUs others took and `loaded = true`, and the summary
/// counts them. (The load's effect on the times is not asserted.)
#[test]
fn a_profile_measured_under_load_says_so_in_the_file() {
    let s = Scratch::new("profile-loaded");
    let out = s.0.join("p.toml");
    let out = out.to_str().unwrap();
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let _load = Spinners(
        (0..cpus)
            .map(|_| {
                std::process::Command::new("sh")
                    .args(["-c", "while :; do :; done"])
                    .spawn()
                    .expect("sh")
            })
            .collect(),
    );
    // Sessions of at least 200 ms: the kernel counts CPU time in 10 ms ticks, and shorter
    // sessions are not judged.
    let r = tailor(&[
        "profile",
        "--spec",
        "specs/tiny.toml",
        "--out",
        out,
        "--json",
        "--min-time",
        "200ms",
        "--max-time",
        "600ms",
        "--warmup",
        "1ms",
        "--cycle-mib",
        "1",
        "--rounds",
        "1",
        "--limit",
        "4",
    ])
    .json();
    assert_eq!(r["measured_now"], 4);
    let loaded = r["loaded_entries"].as_u64().unwrap();
    assert!(loaded >= 1, "{r}");
    let p: toml::Value = toml::from_str(&std::fs::read_to_string(out).unwrap()).unwrap();
    let sessions: Vec<&toml::Value> = p["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e.get("conditions").and_then(toml::Value::as_array))
        .flatten()
        .filter(|c| c.get("loaded").and_then(toml::Value::as_bool) == Some(true))
        .collect();
    assert!(!sessions.is_empty(), "{p}");
    for c in sessions {
        let share = |k: &str| c.get(k).and_then(toml::Value::as_float).unwrap_or(0.0);
        let (other, steal) = (share("other_load"), share("steal"));
        assert!(
            (0.0..=1.0).contains(&other) && (0.0..=1.0).contains(&steal),
            "{c}"
        );
        assert!(other + steal > 0.2, "{c}");
    }
}
