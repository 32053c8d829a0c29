//! Fuzzing of every parser of a file tailor reads: the shipped files (and small real
//! examples of each format) mutated at the byte, line and token level and spliced into each
//! other, seeded. Every input must give a value or a `FILE:...` error naming the file
//! (`file:line:column: message` for malformed text, `file[:line]: `key`: message` for a
//! broken rule), never a panic.
//!
//! The short run is part of the test suite; the long run is
//! `TAILOR_FUZZ_CASES=1000000 cargo test --release --workspace fuzz -- --nocapture`
//! (`TAILOR_FUZZ_SEED` picks another sequence). It prints inputs, time and rejections per
//! parser.

use crate::common::root;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::time::Instant;

/// xorshift64*: a seeded sequence, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

/// Values that break parsers and arithmetic: limits, signs, floats that are not numbers.
const TOKENS: &[&str] = &[
    "0",
    "-1",
    "1",
    "2",
    "-0",
    "0.0",
    "1e308",
    "-1e308",
    "1e-320",
    "nan",
    "inf",
    "-inf",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "9223372036854775807",
    "-9223372036854775808",
    "340282366920938463463374607431768211456",
    "0.5",
    "1.5",
    "1e9",
    "65536",
    "\"\"",
    "\"x\"",
    "true",
    "false",
    "[]",
    "{}",
    "[1, 2]",
    "\"f32\"",
    "\"q4_0\"",
    "\"silu\"",
    "\"gated\"",
    "\"llama\"",
    "\"minimize\"",
    "\"decode_ms\"",
    "null",
];

/// Characters that matter to TOML and JSON.
const BYTES: &[u8] = b"\"'[]{}=,.:#\n\\-+0123456789eE \t\x00\xff";

/// One mutation of `text`, sometimes spliced with `other`.
fn mutate(rng: &mut Rng, text: &str, other: &str) -> Vec<u8> {
    let mut b = text.as_bytes().to_vec();
    for _ in 0..1 + rng.below(4) {
        let n = b.len();
        match rng.below(9) {
            // A byte replaced, inserted, removed.
            0 if n > 0 => {
                let i = rng.below(n);
                b[i] = *rng.pick(BYTES);
            }
            1 => {
                let i = rng.below(n + 1);
                b.insert(i, *rng.pick(BYTES));
            }
            2 if n > 0 => {
                let i = rng.below(n);
                let len = 1 + rng.below(16.min(n - i));
                b.drain(i..i + len);
            }
            // Truncated.
            3 => b.truncate(rng.below(n + 1)),
            // A number or a value replaced by an interesting token.
            4 | 5 => {
                let spots: Vec<usize> = (0..n)
                    .filter(|&i| {
                        (b[i].is_ascii_digit() || b[i] == b'"')
                            && (i == 0 || matches!(b[i - 1], b' ' | b'=' | b'[' | b','))
                    })
                    .collect();
                if let Some(&i) = spots.get(rng.below(spots.len())) {
                    let end = if b[i] == b'"' {
                        b[i + 1..]
                            .iter()
                            .position(|&c| c == b'"')
                            .map_or(n, |p| i + p + 2)
                    } else {
                        (i..n)
                            .find(|&j| !(b[j].is_ascii_alphanumeric() || b"._-+".contains(&b[j])))
                            .unwrap_or(n)
                    };
                    b.splice(i..end, rng.pick(TOKENS).bytes());
                }
            }
            // A line duplicated, dropped or moved.
            6 | 7 => {
                let mut lines: Vec<Vec<u8>> =
                    b.split(|&c| c == b'\n').map(<[u8]>::to_vec).collect();
                let i = rng.below(lines.len());
                match rng.below(3) {
                    0 => {
                        let l = lines[i].clone();
                        lines.insert(rng.below(lines.len() + 1), l);
                    }
                    1 => {
                        lines.remove(i);
                    }
                    _ => {
                        let l = lines.remove(i);
                        lines.insert(rng.below(lines.len() + 1), l);
                    }
                }
                b = lines.join(&b'\n');
            }
            // Spliced: the head of one file, the tail of another.
            _ => {
                let o = other.as_bytes();
                let (i, j) = (rng.below(n + 1), rng.below(o.len() + 1));
                b.truncate(i);
                b.extend_from_slice(&o[j..]);
            }
        }
    }
    b
}

/// One format: its seed files and its parser, which gives `Ok` or the error's text.
struct Target {
    name: &'static str,
    /// A file tailor reads (its errors say where: a line, or the key); llama-bench's
    /// output is not a file and its errors say what was wrong with it.
    file: bool,
    seeds: Vec<String>,
    parse: fn(&Path, &str) -> Result<(), String>,
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The header of a profile and its first `n` entries (a whole profile is 100 KB).
fn head(text: &str, marker: &str, n: usize) -> String {
    let mut cut = text.len();
    let mut seen = 0;
    for (i, _) in text.match_indices(marker) {
        seen += 1;
        if seen > n {
            cut = i;
            break;
        }
    }
    text[..cut].to_string()
}

/// A front.json of the quickstart space priced by the roofline device file, two rows.
fn front_json() -> String {
    use tailor_search::output::FrontFile;
    let space = tailor_search::SearchSpace::load(&root().join("search-spaces/quickstart.toml"))
        .expect("the quickstart search");
    let device = tailor_cost::DeviceSpec::load(&root().join("profiles/host-roofline.toml"))
        .expect("the quickstart search");
    let cost = tailor_cost::Roofline::new(device, &space.workload.precision)
        .expect("the quickstart search");
    let options = tailor_search::SearchOptions {
        strategy: tailor_search::Strategy::Exhaustive,
        budget: None,
        seed: 0,
        population: None,
    };
    let outcome = tailor_search::search(
        &space,
        &cost,
        &options,
        &tailor_search::NoProgress,
        &mut |_| Ok(()),
    )
    .expect("the quickstart search");
    let mut front = FrontFile::new(&space, &outcome);
    front.rows.truncate(2);
    serde_json::to_string_pretty(&front).expect("the quickstart search")
}

const LLAMA_BENCH: &str = r#"[
  {"build_commit": "0c1e57098", "build_number": 0, "cpu_info": "AMD EPYC", "gpu_info": "",
   "backends": "CPU", "model_filename": "/tmp/a.gguf", "model_type": "llama ?B Q4_0",
   "model_size": 1234, "model_n_params": 5678, "n_batch": 2048, "n_ubatch": 512,
   "n_threads": 2, "cpu_mask": "0x0", "cpu_strict": false, "poll": 50, "type_k": "f16",
   "type_v": "f16", "n_gpu_layers": 99, "flash_attn": -1, "n_prompt": 64, "n_gen": 0,
   "n_depth": 0, "test_time": "2026-12-02T06:00:00Z", "avg_ns": 2000000,
   "stddev_ns": 100000, "avg_ts": 32000.0, "stddev_ts": 10.0,
   "samples_ns": [2000000, 2100000, 1900000], "samples_ts": [32000, 30476, 33684]}
]"#;

const GRAD_ENTRY: &str = r#"
[[entries]]
median_us = 10.0
p10_us = 9.0
p90_us = 11.0
samples = 10
capped = false

[entries.shape]
op = "grad"

[entries.shape.of]
op = "lm_head"
tokens = 4
hidden = 64
vocab = 512
tied = true
"#;

fn targets() -> Vec<Target> {
    vec![
        Target {
            name: "search space",
            file: true,
            seeds: [
                "quickstart",
                "phonelm-0.5b",
                "phonelm-1.5b",
                "personal-0.5b",
            ]
            .map(|n| read(&format!("search-spaces/{n}.toml")))
            .to_vec(),
            parse: |p, s| {
                tailor_search::SearchSpace::parse(p, s)
                    .map(drop)
                    .map_err(|e| e.to_string())
            },
        },
        Target {
            name: "spec.toml",
            file: true,
            seeds: ["tiny", "phonelm-0.5b", "phonelm-1.5b"]
                .map(|n| read(&format!("specs/{n}.toml")))
                .to_vec(),
            parse: |p, s| {
                tailor_spec::SpecFile::parse(p, s)
                    .map(drop)
                    .map_err(|e| e.to_string())
            },
        },
        Target {
            name: "config.json",
            file: true,
            seeds: [
                "smollm2-135m",
                "qwen2.5-0.5b",
                "phonelm-0.5b",
                "mistral-7b-v0.1",
            ]
            .map(|n| read(&format!("crates/spec/tests/fixtures/{n}.config.json")))
            .to_vec(),
            parse: |p, s| {
                tailor_spec::HfConfig::parse(p, s)
                    .map(drop)
                    .map_err(|e| e.to_string())
            },
        },
        Target {
            name: "device file",
            file: true,
            seeds: vec![
                read("profiles/host-roofline.toml"),
                read("profiles/snapdragon-8-gen3-cpu.toml"),
            ],
            parse: |p, s| {
                tailor_cost::DeviceSpec::parse(p, s)
                    .map(drop)
                    .map_err(|e| e.to_string())
            },
        },
        Target {
            name: "burn profile",
            file: true,
            seeds: vec![
                head(&read("profiles/host-flex.toml"), "[[entries]]", 3),
                // An edit's shapes: a gradient entry of a multi-row LM head.
                head(&read("profiles/host-flex.toml"), "[[entries]]", 1) + GRAD_ENTRY,
            ],
            parse: |p, s| {
                tailor_cost::Profile::parse(p, s)
                    .map(drop)
                    .map_err(|e| e.to_string())
            },
        },
        Target {
            name: "llama.cpp profile",
            file: true,
            seeds: vec![
                head(&read("profiles/host-llamacpp-q4_0.toml"), "[[probes]]", 3),
                head(&read("profiles/host-llamacpp-f32.toml"), "[[probes]]", 2),
            ],
            parse: |p, s| {
                tailor_llamacpp::LlamaProfile::parse(p, s)
                    .map(drop)
                    .map_err(|e| e.to_string())
            },
        },
        Target {
            name: "front.json",
            file: true,
            seeds: vec![front_json()],
            parse: |p, s| {
                serde_json::from_str::<tailor_search::output::FrontFile>(s)
                    .map(drop)
                    .map_err(|e| tailor_spec::files::FileError::from_json(p, &e).to_string())
            },
        },
        Target {
            name: "llama-bench output",
            file: false,
            seeds: vec![LLAMA_BENCH.to_string()],
            // Not a file: its errors are wrapped with the program's path by the caller.
            parse: |p, s| {
                tailor_llamacpp::bench::parse_output(s)
                    .map(drop)
                    .map_err(|e| format!("{}: {e}", p.display()))
            },
        },
    ]
}

#[test]
fn fuzz_every_parser_no_panic_and_errors_name_the_file() {
    let cases: usize = std::env::var("TAILOR_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16_000);
    let seed: u64 = std::env::var("TAILOR_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x7A11_0B0B);
    let targets = targets();
    let all_seeds: Vec<&String> = targets.iter().flat_map(|t| &t.seeds).collect();
    let path = Path::new("fuzz/input.txt");
    let started = Instant::now();
    let mut report = Vec::new();
    let mut total = 0;
    for (k, t) in targets.iter().enumerate() {
        let mut rng = Rng(seed ^ (k as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let (mut rejected, mut accepted, mut with_line) = (0usize, 0usize, 0usize);
        let t0 = Instant::now();
        for s in &t.seeds {
            assert!((t.parse)(path, s).is_ok(), "{}: a seed must parse", t.name);
        }
        let quota = cases / targets.len();
        let mut i = 0u64;
        while accepted + rejected < quota {
            i += 1;
            let own = rng.pick(&t.seeds).clone();
            let other = if rng.below(4) == 0 {
                *rng.pick(&all_seeds)
            } else {
                &own
            };
            let bytes = mutate(&mut rng, &own, other);
            // Files are read as UTF-8 (invalid bytes are a read error before any parser).
            let Ok(text) = String::from_utf8(bytes) else {
                continue;
            };
            match catch_unwind(AssertUnwindSafe(|| (t.parse)(path, &text))) {
                Ok(Ok(())) => accepted += 1,
                Ok(Err(e)) => {
                    rejected += 1;
                    let rest = e.strip_prefix("fuzz/input.txt:").unwrap_or_else(|| {
                        panic!(
                            "{} input {i} (seed {seed}): the error does not name the file: \
                             {e}\n--- input ---\n{text}",
                            t.name
                        )
                    });
                    let line = rest.starts_with(|c: char| c.is_ascii_digit());
                    with_line += usize::from(line);
                    // Where: the line (and column), or the key when it is not in the file.
                    assert!(
                        !t.file || line || rest.starts_with(" `"),
                        "{} input {i} (seed {seed}): neither a line nor a key: {e}\n--- input \
                         ---\n{text}",
                        t.name
                    );
                }
                Err(panic) => {
                    let msg = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    panic!(
                        "{} input {i} (seed {seed}) panicked: {msg}\n--- input ---\n{text}",
                        t.name
                    );
                }
            }
        }
        total += accepted + rejected;
        report.push(format!(
            "{:<20} {:>8} inputs  {:>8} rejected ({:>3.0}% with a line)  {:>7} accepted  {:>6.1} s",
            t.name,
            accepted + rejected,
            rejected,
            100.0 * with_line as f64 / rejected.max(1) as f64,
            accepted,
            t0.elapsed().as_secs_f64()
        ));
    }
    eprintln!(
        "fuzz (seed {seed}): {} inputs in {:.1} s, no panic\n{}",
        total,
        started.elapsed().as_secs_f64(),
        report.join("\n")
    );
}
