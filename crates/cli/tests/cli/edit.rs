//! An on-device edit end to end: a space with `[workload.edit]` profiled (gradient entries
//! included), searched with edit objectives, a spec's edit predicted and measured whole;
//! bad edit tables rejected with `file:line: key`. No time is asserted.

use crate::common::{Scratch, tailor, tailor_in};
use crate::validate::{FAST, TINY_SPACE};

/// The tiny space with a short edit and an edit objective.
fn edit_space() -> String {
    TINY_SPACE
        .replace(
            "weights = \"f32\"\n",
            "weights = \"f32\"\n\n[workload.edit]\ntokens = 6\ntarget_tokens = 2\nlayer = 0.5\nsteps = 5\n",
        )
        .replace(
            "minimize = [\"decode_ms\", \"prefill_ms\"]",
            "minimize = [\"decode_ms\", \"edit_zo_ms\", \"edit_bp_memory\"]",
        )
}

#[test]
fn an_edit_is_profiled_searched_predicted_and_measured() {
    let s = Scratch::new("edit");
    let space = s.write("space.toml", &edit_space());
    let space = space.to_str().unwrap();
    let profile = s.0.join("profile.toml");
    let profile = profile.to_str().unwrap();
    let mut args = vec!["profile", "--space", space, "--out", profile, "--json"];
    args.extend(&FAST[..6]);
    let p = tailor(&args).json();
    assert_eq!(p["missing"], 0, "{p}");
    let text = std::fs::read_to_string(profile).unwrap();
    assert!(
        text.contains("op = \"grad\""),
        "gradient entries are profiled"
    );

    // The search prices edits from it: columns, metrics and the front carry them.
    let out = s.0.join("search");
    let r = tailor(&[
        "search",
        space,
        "--profile",
        profile,
        "--json",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let csv = std::fs::read_to_string(out.join("candidates.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    assert!(
        header.ends_with(",edit_zo_ms,edit_bp_ms,edit_zo_memory_bytes,edit_bp_memory_bytes"),
        "{header}"
    );
    let front: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("front.json")).unwrap()).unwrap();
    for row in front["rows"].as_array().unwrap() {
        let m = &row["metrics"];
        assert!(m["edit_zo_ms"].as_f64().unwrap() > 0.0, "{row}");
        assert!(
            m["edit_bp_memory_bytes"].as_u64().unwrap()
                > m["edit_zo_memory_bytes"].as_u64().unwrap()
        );
        assert_eq!(row["edit"]["zo"]["source"], "measured", "{row}");
        assert_eq!(row["edit"]["bp"]["source"], "measured", "{row}");
        assert_eq!(row["objectives"]["edit_zo_ms"], m["edit_zo_ms"]);
    }

    // The report's front table and the pick's model card show the edit.
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        report.contains("edit zo ms") && report.contains("edit bp memory"),
        "{report}"
    );
    let card = std::fs::read_to_string(out.join("pick/MODEL_CARD.md")).unwrap();
    assert!(
        card.contains("One on-device edit") && card.contains("zo (forward only)"),
        "{card}"
    );

    // One spec of the space: its edit predicted from measured entries, then measured.
    let spec = s.write(
        "m.toml",
        "format_version = 1\n[model]\nvocab_size = 512\nhidden_size = 96\nnum_layers = 3\n\
         num_heads = 3\nnum_kv_heads = 1\nintermediate_size = 192\nffn = \"gated\"\nactivation = \"silu\"\nnorm = \"rmsnorm\"\n\
         tie_embeddings = true\n",
    );
    let spec = spec.to_str().unwrap();
    let edit = [
        "--edit",
        "--edit-tokens",
        "6",
        "--edit-target-tokens",
        "2",
        "--edit-layer",
        "0.5",
        "--edit-steps",
        "5",
    ];
    let mut args = vec![
        "predict",
        spec,
        "--profile",
        profile,
        "--prompt",
        "8",
        "--context",
        "16",
        "--json",
    ];
    args.extend(edit);
    let p = tailor(&args).json();
    let e = &p["edit"]["estimate"];
    assert_eq!(e["layer"], 1, "{p}");
    for method in ["zo", "bp"] {
        assert_eq!(e[method]["source"], "measured", "{method}: {p}");
        let step = e[method]["step_ms"].as_f64().unwrap();
        let total = e[method]["total_ms"].as_f64().unwrap();
        let prefix = e[method]["prefix_ms"].as_f64().unwrap();
        assert!((total - (prefix + 5.0 * step)).abs() < 1e-9 * total);
    }
    // The zo step's operators are forward entries, the bp step's gradient entries.
    let ops = |k: &str| p["edit"][k].as_array().unwrap().clone();
    assert!(ops("zo_ops").iter().all(|o| o["shape"]["op"] != "grad"));
    assert!(ops("bp_ops").iter().all(|o| o["shape"]["op"] == "grad"));

    let mut args = vec!["measure", spec, "--profile", profile, "--json"];
    args.extend(edit);
    args.extend(FAST);
    let m = tailor(&args).json();
    assert_eq!(m["layer"], 1, "{m}");
    for method in ["zo", "bp"] {
        assert!(
            m[method]["step"]["median_ms"].as_f64().unwrap() > 0.0,
            "{m}"
        );
        assert!(m[method]["peak_memory_bytes"].as_u64().unwrap() > 0, "{m}");
        assert_eq!(
            m[method]["predicted_step_ms"], e[method]["step_ms"],
            "the same prediction as `predict`"
        );
    }
    let text = {
        let mut args = vec!["measure", spec, "--no-memory"];
        args.extend(edit);
        args.extend(FAST);
        tailor(&args)
    };
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stdout.contains("zo step") && text.stdout.contains("bp/zo measured"),
        "{}",
        text.stdout
    );
}

/// Bad `[workload.edit]` tables and edit metrics without one are refused with the file,
/// the line and the key.
#[test]
fn bad_edit_tables_name_their_key() {
    let s = Scratch::new("edit-bad");
    let space = edit_space();
    let cases = [
        (
            space.replace("tokens = 6\n", "tokens = 0\n"),
            "workload.edit.tokens",
            "between 1 and",
        ),
        (
            space.replace("layer = 0.5", "layer = 1.5"),
            "workload.edit.layer",
            "fraction of the depth",
        ),
        (
            space.replace("target_tokens = 2", "target_tokens = 9"),
            "workload.edit.target_tokens",
            "tokens (6)",
        ),
        (
            space.replace("steps = 5", "step = 5"),
            "step",
            "unknown field",
        ),
        (
            space.replace(
                "[workload.edit]\ntokens = 6\ntarget_tokens = 2\nlayer = 0.5\nsteps = 5\n",
                "",
            ),
            "objectives.minimize",
            "no [workload.edit]",
        ),
    ];
    for (i, (text, key, message)) in cases.iter().enumerate() {
        let name = format!("s{i}.toml");
        s.write(&name, text);
        let r = tailor_in(&s.0, &["search", &name, "--device", "x.toml"]);
        let line = r.assert_clean_error();
        assert!(
            line.contains(&format!("{name}:")) && line.contains(key) && line.contains(message),
            "case {i}: {line}"
        );
        let at = line.find(&format!("{name}:")).unwrap() + name.len() + 1;
        assert!(
            line[at..].starts_with(|c: char| c.is_ascii_digit()),
            "case {i} names a line: {line}"
        );
    }
    // A datasheet roofline prices no edit: a search of an edit space with one says so.
    s.write("ok.toml", &space);
    let device =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../profiles/host-roofline.toml");
    let r = tailor_in(
        &s.0,
        &["search", "ok.toml", "--device", device.to_str().unwrap()],
    );
    let line = r.assert_clean_error();
    assert!(
        line.contains("`edit_zo_ms` needs a cost model that prices it"),
        "{line}"
    );
    // --edit is for specs.
    let r = tailor_in(&s.0, &["profile", "--space", "s0.toml", "--edit"]);
    assert!(r.assert_clean_error().contains("--edit is for --spec"));
    let r = tailor(&["measure", "specs/tiny.toml", "--edit", "--edit-layer", "2"]);
    assert!(r.assert_clean_error().contains("--edit-layer"));
}
