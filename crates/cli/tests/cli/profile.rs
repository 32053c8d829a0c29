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
