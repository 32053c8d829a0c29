//! `report.md`: a search's report for people (the pick, the front, the references, the
//! check of whole models), as Markdown beside the plots.

use super::*;

/// `path` relative to `base` when it lies inside it (links in report.md).
fn rel(path: &Path, base: &Path) -> String {
    path.strip_prefix(base)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn spec_cells(c: &Candidate) -> Vec<String> {
    let s = &c.spec;
    vec![
        s.hidden_size.to_string(),
        s.num_layers.to_string(),
        format!("{}/{}", s.num_heads, s.num_kv_heads),
        s.intermediate_size.to_string(),
        s.activation.to_string(),
    ]
}

pub(super) fn report_md(
    run: &SearchRun,
    ranked: &[&Candidate],
    export: Option<&Exported>,
    validation: Option<&Validation>,
    out: &Path,
) -> String {
    let (space, o) = (&run.space, &run.outcome);
    let w = &space.device_workload(0);
    let on = if space.is_set() {
        let names: Vec<&str> = space.devices.iter().map(|d| d.name.as_str()).collect();
        format!("{} devices ({})", names.len(), names.join(", "))
    } else {
        run.cost.device.clone()
    };
    let mut s = format!("# tailor: {} on {on}\n\n", space.name());
    // Over a set, each device's cost model and weights; the workload's times are the
    // first device's.
    let cost = if run.device_costs.is_empty() {
        format!("{} cost model from `{}`", run.cost.kind, run.cost.file)
    } else {
        let each: Vec<String> = (run.device_costs.iter().zip(&space.devices))
            .map(|(c, d)| {
                format!(
                    "`{}` {} from `{}` at {}",
                    d.name, c.kind, c.file, d.workload.precision.weights
                )
            })
            .collect();
        format!("cost models {}", each.join(", "))
    };
    s += &format!(
        "Space `{}` ({} points), {cost}, {} search (seed {}), workload: \
         prefill of {} tokens, decode at context {}, {} weights. {} examined, {} buildable, \
         {} feasible, Pareto front of {} rows, pick rule: {}. Search time {:.2} s.\n\n",
        space.path.display(),
        thousands(space.size() as u128),
        o.strategy.name(),
        o.seed,
        w.prompt_tokens,
        w.context,
        w.precision.weights,
        thousands(o.seen as u128),
        thousands(o.evaluated as u128),
        thousands(o.feasible as u128),
        o.front.len(),
        pick_rule(&space.pick),
        o.wall_s
    );
    if let Some(f) = &run.cost.fingerprint {
        s += &format!(
            "Profile fingerprint: {} on {} ({} cores, {} threads, {}), burn {}.\n\n",
            f.backend,
            f.machine(),
            f.cores,
            f.threads,
            f.os,
            f.burn_version
        );
    }
    let pick = o.pick.map(|i| &o.front[i]);
    if let Some(c) = pick {
        let m = &c.metrics;
        s += "## The pick\n\n";
        let mut header = vec!["hidden", "layers", "heads q/kv", "ffn", "act"];
        header.extend([
            "params",
            "non-emb",
            "prefill ms",
            "decode ms",
            "tok/s",
            "memory",
        ]);
        let mut row = spec_cells(c);
        row.extend([
            si(m.params as f64, ""),
            si(m.non_embedding_params as f64, ""),
            format!("{:.2}", m.get(Metric::PrefillMs)),
            format!("{:.3}", m.get(Metric::DecodeMs)),
            format!("{:.1}", 1000.0 / m.get(Metric::DecodeMs)),
            bytes(m.get(Metric::PeakMemory)),
        ]);
        s += &md_table(&header, &[row]);
        if let Some(e) = export {
            s += &format!(
                "\nExported to `{}/`: {}`spec.toml`, [`MODEL_CARD.md`]({}).\n",
                rel(&e.dir, out),
                if e.config_json.is_some() {
                    "`config.json`, "
                } else {
                    ""
                },
                rel(&e.model_card, out)
            );
            if let Some(why) = &e.config_error {
                s += &format!("No config.json: {why}.\n");
            }
        }
    }
    s += "\n## Pareto front\n\n![front](front.svg)\n\n";
    s += "Grey: feasible candidates; blue: the Pareto front of all objectives (";
    s += &space
        .objectives
        .iter()
        .map(|(m, min)| format!("{} {}", if *min { "min" } else { "max" }, m.name()))
        .collect::<Vec<_>>()
        .join(", ");
    s += "), so a front row can look dominated in a two-axis projection; red ring: the pick.\n";
    if !run.references.is_empty() {
        s += "\n## Reference models\n\n";
        let mut rows = Vec::new();
        for r in &run.references {
            let c = &r.candidate;
            let m = &c.metrics;
            let place = r.place();
            let mut row = vec![r.name.clone()];
            row.extend(spec_cells(c));
            row.extend([
                si(m.params as f64, ""),
                place,
                format!("{:.2}", m.get(Metric::PrefillMs)),
                format!("{:.3}", m.get(Metric::DecodeMs)),
            ]);
            let speedup = |p: &Candidate| {
                format!(
                    "{:.2}x / {:.2}x",
                    m.get(Metric::PrefillMs) / p.metrics.get(Metric::PrefillMs),
                    m.get(Metric::DecodeMs) / p.metrics.get(Metric::DecodeMs)
                )
            };
            row.push(pick.map_or("-".into(), speedup));
            row.push(match same_size_fastest(&o.front, m.params) {
                Some(f) => format!(
                    "{} x {}, {}/{} heads, ffn {} {} ({}): {}",
                    f.spec.hidden_size,
                    f.spec.num_layers,
                    f.spec.num_heads,
                    f.spec.num_kv_heads,
                    f.spec.intermediate_size,
                    f.spec.activation,
                    si(f.metrics.params as f64, ""),
                    speedup(f)
                ),
                None => "none on the front".into(),
            });
            rows.push(row);
        }
        s += &md_table(
            &[
                "model",
                "hidden",
                "layers",
                "heads q/kv",
                "ffn",
                "act",
                "params",
                "place",
                "prefill ms",
                "decode ms",
                "pick faster (prefill / decode)",
                "fastest front row at least as large: faster (prefill / decode)",
            ],
            &rows,
        );
        s += "\nThe pick may win by being smaller; the last column compares like with like: \
              the front row with the fastest decode among those with at least the \
              reference's parameters.\n";
    }
    if let Some(e) = pick.and_then(|c| c.estimate) {
        s += "\n## Where the pick's time goes\n\n![breakdown](breakdown.svg)\n\n";
        let row = |name: &str, b: &Breakdown| {
            let t = b.total_ms().max(f64::MIN_POSITIVE);
            vec![
                name.to_string(),
                format!("{:.3}", b.total_ms()),
                format!("{:.1}%", 100.0 * b.attention_ms / t),
                format!("{:.1}%", 100.0 * b.ffn_ms / t),
                format!("{:.1}%", 100.0 * b.lm_head_ms / t),
                format!("{:.1}%", 100.0 * b.other_ms / t),
            ]
        };
        s += &md_table(
            &["pass", "ms", "attention", "FFN", "LM head", "other"],
            &[
                row("prefill", &e.prefill_breakdown),
                row("decode step", &e.decode_breakdown),
            ],
        );
        s += "\nOther: embedding, norms, residual adds.\n";
    }
    if let Some((intro, header, rows)) = device_rows(run) {
        s += &format!(
            "\n## Devices\n\nThe space was searched for {} devices at once. Objectives \
             `worst:` and `mean:` read each device's value as a ratio to that device's best \
             candidate (its own pick, where the pick reads the same metric); a device's own \
             front and pick are those of the space on that device alone, over the candidates \
             the search priced. Below, {intro}.\n\n",
            o.devices.len()
        );
        s += &md_table(&header, &rows);
        s += "\n![each device's own front](devices.svg)\n";
        if let Some((header, rows)) = device_check_rows(run) {
            s += "\n### The picks timed whole on the devices here\n\nEach device whose engine \
                  runs here timed the shared pick and every device's own pick whole (`check/` \
                  holds each device's validate.json): the regret measured beside the one \
                  predicted; the fastest of the timed picks there and the shared pick \
                  against it (where the prediction ranks the picks wrong, the fastest is \
                  not the device's own pick); the engine's own run-to-run spread of decode \
                  steps beside them:\n\n";
            s += &md_table(&header, &rows);
        }
    }
    s += &format!("\n## Top of the front (by {})\n\n", pick_rule(&space.pick));
    // Spaces with [workload.edit]: each row's whole edit by both methods.
    let edits = ranked
        .first()
        .is_some_and(|c| c.metrics.edit_zo_memory_bytes.is_some());
    let rows: Vec<Vec<String>> = ranked
        .iter()
        .take(15)
        .enumerate()
        .map(|(i, c)| {
            let m = &c.metrics;
            let mut row = vec![(i + 1).to_string(), c.id.to_string()];
            row.extend(spec_cells(c));
            row.extend([
                si(m.params as f64, ""),
                si(m.non_embedding_params as f64, ""),
                format!("{:.2}", m.get(Metric::PrefillMs)),
                format!("{:.3}", m.get(Metric::DecodeMs)),
                bytes(m.get(Metric::PeakMemory)),
            ]);
            if let Some(l) = m.chinchilla_loss {
                row.push(format!("{l:.4}"));
            }
            if edits {
                let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}"));
                let mem = |v: Option<u64>| v.map_or("-".into(), |b| bytes(b as f64));
                row.extend([
                    ms(m.edit_zo_ms),
                    ms(m.edit_bp_ms),
                    mem(m.edit_zo_memory_bytes),
                    mem(m.edit_bp_memory_bytes),
                ]);
            }
            row
        })
        .collect();
    let mut header = vec![
        "#",
        "id",
        "hidden",
        "layers",
        "heads q/kv",
        "ffn",
        "act",
        "params",
        "non-emb",
        "prefill ms",
        "decode ms",
        "memory",
    ];
    if ranked
        .first()
        .is_some_and(|c| c.metrics.chinchilla_loss.is_some())
    {
        header.push("Chinchilla loss");
    }
    if edits {
        header.extend([
            "edit zo ms",
            "edit bp ms",
            "edit zo memory",
            "edit bp memory",
        ]);
    }
    s += &md_table(&header, &rows);
    if ranked.len() > 15 {
        s += &format!(
            "\n{} more rows in `front.json`; every candidate in `candidates.csv`.\n",
            ranked.len() - 15
        );
    }
    if let Some(v) = validation {
        s += &format!(
            "\n## Checked against whole models\n\nThe pick and {} other front rows were \
             built with random weights and timed whole on this machine in {} ({} rounds{}); \
             err = (predicted - measured) / measured.\n\n",
            v.file.rows.len().saturating_sub(1),
            v.file.engine,
            v.file.rounds,
            if v.file.engine == "burn" {
                ", fresh process per model, each keeps its fastest round"
            } else {
                ", the median of the rounds"
            }
        );
        let pct = |p: f64, m: f64| format!("{:+.1}%", 100.0 * (p - m) / m);
        let rows: Vec<Vec<String>> = v
            .file
            .rows
            .iter()
            .map(|r| {
                let mut row = vec![
                    if pick.is_some_and(|c| c.id == r.id) {
                        format!("{} (pick)", r.id)
                    } else {
                        r.id.to_string()
                    },
                    r.spec.hidden_size.to_string(),
                    r.spec.num_layers.to_string(),
                ];
                match &r.measured {
                    Some(m) => row.extend([
                        format!("{:.2}", r.predicted_prefill_ms),
                        format!("{:.2}", m.prefill_ms),
                        pct(r.predicted_prefill_ms, m.prefill_ms),
                        format!("{:.3}", r.predicted_decode_ms),
                        format!("{:.3}", m.decode_ms),
                        pct(r.predicted_decode_ms, m.decode_ms),
                        m.peak_memory_bytes.map_or("-".into(), |b| {
                            pct(r.predicted_memory_bytes as f64, b as f64)
                        }),
                    ]),
                    None => row.push(format!(
                        "failed: {}",
                        r.error.as_deref().unwrap_or("unknown")
                    )),
                }
                row
            })
            .collect();
        s += &md_table(
            &[
                "id",
                "hidden",
                "layers",
                "prefill pred ms",
                "measured",
                "err",
                "decode pred ms",
                "measured",
                "err",
                "memory err",
            ],
            &rows,
        );
        if let Some(e) = v.file.engine_self {
            s += &format!(
                "\n{} against itself over the same models (its first rounds against its last): \
                 prefill tau {:.3} (spread {:.1}%), decode tau {:.3} (spread {:.1}%).\n",
                v.file.engine,
                e.prefill_tau,
                100.0 * e.prefill_spread,
                e.decode_tau,
                100.0 * e.decode_spread
            );
        }
        for w in v.drift() {
            s += &format!("\n**Warning**: {w}.\n");
        }
        s += &format!(
            "\n![calibration]({})\n\nAll files of the check: `{}/`. `tailor validate` checks \
             a larger sample spread over the space.\n",
            rel(&v.calibration, out),
            rel(&v.out, out)
        );
    }
    s += "\n## Files\n\n- `candidates.csv`: every evaluated candidate with its metrics and \
          constraint verdict\n- `front.json`: the front rows with full specs and estimates \
          (`tailor export front.json#ID` exports any row)\n- `summary.json`: counts, the pick, \
          the references, the cost model\n";
    s
}
