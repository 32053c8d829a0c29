//! Writes a random-weight GGUF of a spec file: `cargo run --example write_gguf -- SPEC WEIGHTS OUT`.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        return Err(
            "usage: write_gguf SPEC(spec.toml|config.json) WEIGHTS(f32|f16|q8_0|q4_0) OUT.gguf"
                .into(),
        );
    }
    let spec = tailor_spec::load_spec(std::path::Path::new(&args[1]))?.spec;
    let dtype = tailor_spec::DType::from_name(&args[2]).ok_or("unknown weight type")?;
    let wt = tailor_llamacpp::WeightType::from_dtype(dtype)?;
    let w = tailor_llamacpp::write_model(&spec, wt, "example", std::path::Path::new(&args[3]), 0)?;
    println!("{} parameters, {} bytes", w.params, w.file_bytes);
    for s in w.substitutions {
        println!("timed as: {s}");
    }
    Ok(())
}
