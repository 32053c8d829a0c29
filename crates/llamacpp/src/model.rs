//! A [`ModelSpec`] as a random-weight GGUF file of llama.cpp's `llama` architecture (or,
//! for a spec with a stack, the architecture that runs it: [`crate::arch`]), in one weight
//! type (every matrix in it, as `llama-quantize --pure` does; norm weights, biases and
//! convolution kernels stay f32, as llama.cpp stores them).
//!
//! llama-bench feeds random token ids, so the weights' values do not matter to the time
//! taken, only that no special path runs: every scale and float is a finite, normal number
//! of a modest size (no NaN, no infinity, no denormal), drawn from a seeded generator.

pub use crate::base::{Unsupported, WeightType};

use crate::base::{base_metadata, u32_of};
use crate::gguf::{GgmlType, Header, TensorDesc, Value};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use tailor_spec::{Activation, Component, DType, FfnKind, ModelSpec, NormKind};

/// What a written model is, beside its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub path: PathBuf,
    /// Parameters in the file (the spec's, less any substitution's dropped biases).
    pub params: u64,
    pub file_bytes: u64,
    /// Spec fields timed as something else, and how (empty when the file is the spec).
    pub substitutions: Vec<String>,
}

/// Where the file differs from the spec, or why it cannot be written.
pub fn substitutions(spec: &ModelSpec, weights: WeightType) -> Result<Vec<String>, Unsupported> {
    if spec.beyond_dense().is_some() {
        return crate::arch::arch_of(spec, weights).map(|(_, notes)| notes);
    }
    if spec.ffn == FfnKind::Plain {
        return Err(Unsupported(
            "a plain (ungated) FFN: llama.cpp's `llama` architecture has gate, up and down \
             projections; set `ffn = \"gated\"` to time it in llama.cpp"
                .into(),
        ));
    }
    if weights.ggml().block().0 > 1 {
        let per = weights.ggml().block().0;
        for (what, n) in [
            ("hidden_size", spec.hidden_size),
            ("num_heads x head_dim", spec.q_width()),
            ("intermediate_size", spec.intermediate_size),
        ] {
            if n % per != 0 {
                return Err(Unsupported(format!(
                    "{what} = {n} is not a multiple of {per}, the block length of {weights}: \
                     llama.cpp quantises rows in whole blocks; pick a multiple of {per} or \
                     f16/f32 weights"
                )));
            }
        }
    }
    let mut out = Vec::new();
    if spec.activation != Activation::Silu {
        out.push(format!(
            "activation {} timed as SiLU (the `llama` architecture's; one elementwise pass \
             either way)",
            spec.activation
        ));
    }
    if spec.norm == NormKind::LayerNorm {
        out.push(
            "LayerNorm timed as RMSNorm (the `llama` architecture's); norm biases not written"
                .into(),
        );
    }
    Ok(out)
}

/// Bytes of the weights in the file: matrices in `weights`, vectors (norm weights,
/// biases) in f32 as llama.cpp stores them; LayerNorm biases are not written.
pub fn weight_bytes(spec: &ModelSpec, weights: WeightType) -> u64 {
    spec.tensors()
        .iter()
        .filter(|t| !(t.component.is_norm() && t.name.ends_with(".bias")))
        .map(|t| {
            let per = if t.shape.len() >= 2 {
                weights.dtype().tensor_bytes(&t.shape)
            } else {
                DType::F32.tensor_bytes(&t.shape)
            };
            per * t.repeats
        })
        .sum()
}

/// The GGUF name of a tensor of `spec.tensors()` (HF name with `{i}` for the layer), for
/// the components of the dense stack ([`substitutions`] refuses every other).
fn gguf_name(component: Component, suffix: &str, layer: u64) -> Result<String, Unsupported> {
    let per_layer = |n: &str| format!("blk.{layer}.{n}.{suffix}");
    Ok(match component {
        Component::Embedding => format!("token_embd.{suffix}"),
        Component::FinalNorm => format!("output_norm.{suffix}"),
        Component::LmHead => format!("output.{suffix}"),
        Component::AttnNorm => per_layer("attn_norm"),
        Component::Q => per_layer("attn_q"),
        Component::K => per_layer("attn_k"),
        Component::V => per_layer("attn_v"),
        Component::O => per_layer("attn_output"),
        Component::FfnNorm => per_layer("ffn_norm"),
        Component::Gate => per_layer("ffn_gate"),
        Component::Up => per_layer("ffn_up"),
        Component::Down => per_layer("ffn_down"),
        other => {
            return Err(Unsupported(format!(
                "a {other} tensor: the `llama` architecture has none"
            )));
        }
    })
}

/// The GGUF header of `spec` at `weights`, and its substitutions.
pub fn header(
    spec: &ModelSpec,
    weights: WeightType,
    name: &str,
) -> Result<(Header, Vec<String>), Unsupported> {
    spec.validate()
        .map_err(|e| Unsupported(format!("invalid spec: {e}")))?;
    if spec.beyond_dense().is_some() {
        return crate::arch::header(spec, weights, name);
    }
    let subs = substitutions(spec, weights)?;
    let mut metadata = base_metadata(
        "llama",
        name,
        weights,
        spec,
        spec.intermediate_size,
        spec.num_heads,
    )?;
    let d = u32_of("head_dim", spec.head_dim())?;
    for (k, v) in [
        (
            "attention.head_count_kv",
            Value::U32(u32_of("num_kv_heads", spec.num_kv_heads)?),
        ),
        ("attention.key_length", Value::U32(d)),
        ("attention.value_length", Value::U32(d)),
        ("rope.dimension_count", Value::U32(d)),
    ] {
        metadata.push((format!("llama.{k}"), v));
    }
    // No tokenizer: llama.cpp then makes `vocab_size` dummy tokens, and llama-bench
    // draws random token ids below it.
    metadata.push(("tokenizer.ggml.model".into(), Value::String("none".into())));
    let mut tensors = Vec::new();
    let mut push = |info: &tailor_spec::TensorInfo, layer: u64| -> Result<(), Unsupported> {
        let suffix = info.name.rsplit('.').next().unwrap_or("weight");
        // Norm biases exist only for LayerNorm, which is timed as RMSNorm.
        if info.component.is_norm() && suffix == "bias" {
            return Ok(());
        }
        let dims: Vec<u64> = info.shape.iter().rev().copied().collect();
        let ty = if dims.len() >= 2 {
            weights.ggml()
        } else {
            GgmlType::F32
        };
        tensors.push(TensorDesc {
            name: gguf_name(info.component, suffix, layer)?,
            dims,
            ty,
        });
        Ok(())
    };
    let infos = spec.tensors();
    // Global tensors first, then the layers in order (as llama.cpp's converter writes them).
    for info in infos
        .iter()
        .filter(|t| t.repeats == 1 && !t.name.contains("{i}"))
    {
        push(info, 0)?;
    }
    for layer in 0..spec.num_layers {
        for info in infos.iter().filter(|t| t.name.contains("{i}")) {
            push(info, layer)?;
        }
    }
    Ok((Header { metadata, tensors }, subs))
}

/// Bytes of random, valid data for one tensor type: whole blocks whose floats and scales
/// are normal numbers between 2^-8 and 2^-5 (quantised weights then lie within +-0.06).
struct Pattern {
    bytes: Vec<u8>,
}

const PATTERN_BYTES: usize = 1 << 20;

/// An f16 with a random sign and mantissa and an exponent in [2^-8, 2^-5).
fn f16_bits(r: u32, lo: u32) -> u16 {
    let sign = (r >> 31) as u16;
    let exp = (lo + (r >> 10) % 3) as u16; // biased exponent
    let mant = (r & 0x3ff) as u16;
    (sign << 15) | (exp << 10) | mant
}

impl Pattern {
    fn new(ty: GgmlType, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (_, block) = ty.block();
        let blocks = PATTERN_BYTES / block as usize;
        let mut bytes = vec![0u8; blocks * block as usize];
        match ty {
            GgmlType::F32 => {
                for c in bytes.chunks_exact_mut(4) {
                    let r = rng.next_u32();
                    // exponent 119..121 biased: 2^-8 .. 2^-6 (times 1.x)
                    let bits = (r & 0x8000_0000) | ((119 + (r >> 23) % 3) << 23) | (r & 0x7f_ffff);
                    c.copy_from_slice(&bits.to_le_bytes());
                }
            }
            GgmlType::F16 => {
                for c in bytes.chunks_exact_mut(2) {
                    c.copy_from_slice(&f16_bits(rng.next_u32(), 7).to_le_bytes());
                }
            }
            GgmlType::Q4_0 | GgmlType::Q8_0 => {
                // Q4_0 weights are d * (q - 8), q in 0..16: d about 2^-8.
                // Q8_0 weights are d * q, q in -128..128: d about 2^-12.
                let lo = if ty == GgmlType::Q4_0 { 7 } else { 3 };
                for c in bytes.chunks_exact_mut(block as usize) {
                    rng.fill_bytes(&mut c[2..]);
                    c[..2].copy_from_slice(&f16_bits(rng.next_u32(), lo).to_le_bytes());
                }
            }
        }
        Pattern { bytes }
    }

    /// Writes `n` bytes (a whole number of blocks) cycling through the pattern from `start`
    /// blocks in.
    fn write(&self, w: &mut dyn Write, n: u64, start: usize) -> std::io::Result<()> {
        let len = self.bytes.len();
        let mut at = start % len;
        let mut left = n as usize;
        while left > 0 {
            let take = left.min(len - at);
            w.write_all(&self.bytes[at..at + take])?;
            left -= take;
            at = 0;
        }
        Ok(())
    }
}

/// Error writing a model file.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Unsupported(#[from] Unsupported),
    #[error("{}: cannot write: {cause}", path.display())]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
}

/// Writes `spec` as a random-weight GGUF at `path` (atomically: a temporary file renamed
/// into place), seeded by `seed`.
pub fn write_model(
    spec: &ModelSpec,
    weights: WeightType,
    name: &str,
    path: &Path,
    seed: u64,
) -> Result<Written, WriteError> {
    let (header, substitutions) = header(spec, weights, name)?;
    let io = |cause| WriteError::Io {
        path: path.to_path_buf(),
        cause,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension(format!("gguf.tmp-{}", std::process::id()));
    let matrix = Pattern::new(weights.ggml(), seed);
    // Matrices kept f32 in a file of another type (convolution kernels).
    let f32s = Pattern::new(GgmlType::F32, seed ^ 0x5eed);
    let result = (|| {
        let file = std::fs::File::create(&tmp)?;
        let mut w = BufWriter::with_capacity(8 << 20, file);
        let ones = 1.0f32.to_le_bytes();
        // Qwen3.5's `ssm_a` is -exp(A_log): a negative decay rate keeps the state bounded.
        let decay = (-0.5f32).to_le_bytes();
        header.write(&mut w, |i, t, w| {
            if t.dims.len() >= 2 {
                let pattern = if t.ty == weights.ggml() {
                    &matrix
                } else {
                    &f32s
                };
                pattern.write(w, t.bytes(), i * 4099 * t.ty.block().1 as usize)
            } else if t.name.ends_with("norm.weight") {
                (0..t.numel()).try_for_each(|_| w.write_all(&ones))
            } else if t.name.ends_with("ssm_a") {
                (0..t.numel()).try_for_each(|_| w.write_all(&decay))
            } else {
                // Biases: zeros.
                w.write_all(&vec![0u8; t.bytes() as usize])
            }
        })?;
        // Scratch files (regenerable): no fsync, the rename still keeps a partial file out.
        w.into_inner().map_err(|e| e.into_error())?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)?;
    Ok(Written {
        path: path.to_path_buf(),
        params: header.tensors.iter().map(TensorDesc::numel).sum(),
        file_bytes: header.file_bytes(),
        substitutions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_counts_the_specs_parameters_exactly() {
        // SmolLM2-135M: 134,515,008 parameters (its config.json).
        let mut spec = ModelSpec::llama(49152, 576, 30, 9, 3, 1536);
        spec.tie_embeddings = true;
        assert_eq!(spec.total_params(), 134_515_008);
        let (h, subs) = header(&spec, WeightType::F16, "smollm2").unwrap();
        assert!(subs.is_empty(), "{subs:?}");
        let params: u64 = h.tensors.iter().map(TensorDesc::numel).sum();
        assert_eq!(params, 134_515_008);
        // 1 embedding + final norm + 30 x 9 per layer, no output (tied).
        assert_eq!(h.tensors.len(), 2 + 30 * 9);
        assert!(h.tensors.iter().all(|t| t.name != "output.weight"));
        assert_eq!(h.tensors[0].dims, [576, 49152]);
    }

    #[test]
    fn bytes_agree_with_the_spec_accounting() {
        let mut spec = ModelSpec::llama(1024, 256, 3, 8, 2, 704);
        spec.tie_embeddings = false;
        for wt in WeightType::ALL {
            let (h, _) = header(&spec, wt, "t").unwrap();
            let bytes: u64 = h.tensors.iter().map(TensorDesc::bytes).sum();
            assert_eq!(bytes, weight_bytes(&spec, wt), "{wt}");
            // tailor's accounting stores vectors in a float weight type; llama.cpp keeps
            // them f32: 7 norms of 256 at 2 more bytes each under f16.
            let vectors = if wt == WeightType::F16 {
                7 * 256 * 2
            } else {
                0
            };
            assert_eq!(bytes, spec.weight_bytes(wt.dtype()) + vectors, "{wt}");
        }
    }

    #[test]
    fn what_llama_cannot_express_is_said() {
        let mut spec = ModelSpec::llama(1024, 256, 2, 8, 2, 704);
        spec.activation = Activation::Relu;
        let subs = substitutions(&spec, WeightType::Q4_0).unwrap();
        assert!(subs[0].contains("relu timed as SiLU"), "{subs:?}");
        spec.ffn = FfnKind::Plain;
        let e = substitutions(&spec, WeightType::Q4_0).unwrap_err();
        assert!(e.0.contains("ffn = \"gated\""), "{e}");
        let spec = ModelSpec::llama(1024, 240, 2, 8, 2, 704);
        let e = substitutions(&spec, WeightType::Q4_0).unwrap_err();
        assert!(
            e.0.contains("hidden_size = 240 is not a multiple of 32"),
            "{e}"
        );
        assert!(substitutions(&spec, WeightType::F16).is_ok());
        assert!(WeightType::from_dtype(DType::Bf16).is_err());
    }

    #[test]
    fn random_data_is_finite_and_normal() {
        for ty in [GgmlType::F32, GgmlType::F16, GgmlType::Q4_0, GgmlType::Q8_0] {
            let p = Pattern::new(ty, 7);
            let (_, block) = ty.block();
            assert_eq!(p.bytes.len() % block as usize, 0);
            let halves: Vec<u16> = match ty {
                GgmlType::F16 => p
                    .bytes
                    .chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]))
                    .collect(),
                GgmlType::Q4_0 | GgmlType::Q8_0 => p
                    .bytes
                    .chunks_exact(block as usize)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]))
                    .collect(),
                GgmlType::F32 => {
                    for c in p.bytes.chunks_exact(4) {
                        let v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                        assert!(v.is_normal() && v.abs() < 0.04, "{v}");
                    }
                    continue;
                }
            };
            for h in halves {
                let exp = (h >> 10) & 0x1f;
                assert!((3..=9).contains(&exp), "{ty:?} exponent {exp}");
            }
        }
    }

    #[test]
    fn written_file_reads_back() {
        let dir = std::env::temp_dir().join(format!("tailor-gguf-{}", std::process::id()));
        let spec = ModelSpec::llama(512, 128, 2, 4, 2, 384);
        let path = dir.join("m.gguf");
        let w = write_model(&spec, WeightType::Q4_0, "m", &path, 1).unwrap();
        assert_eq!(w.params, spec.total_params());
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len() as u64, w.file_bytes);
        let h = Header::read(&mut bytes.as_slice()).unwrap();
        assert_eq!(h.get("llama.block_count"), Some(&Value::U32(2)));
        assert_eq!(
            h.get("tokenizer.ggml.model"),
            Some(&Value::String("none".into()))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
