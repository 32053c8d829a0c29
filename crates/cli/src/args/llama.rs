//! How the llama.cpp engine is chosen and run: `--engine` and the llama-bench settings
//! shared by `profile`, `validate` and `run`.

use anyhow::Result;
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use tailor_llamacpp::{LlamaBench, Settings, WeightType};
use tailor_spec::DType;

/// Which engine a profile measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Engine {
    /// burn, in process (flex, ndarray, wgpu; f32), operator by operator.
    #[default]
    Burn,
    /// llama.cpp through the user's llama-bench (GGUF: f32, f16, q8_0, q4_0), whole models.
    #[value(name = "llama.cpp")]
    LlamaCpp,
}

/// How llama-bench is run (the llama.cpp engine only).
#[derive(Debug, Clone, Args)]
pub struct LlamaArgs {
    /// llama-bench binary [default: $TAILOR_LLAMA_BENCH, else llama-bench on PATH]
    /// (scripts/build-llama-bench.sh builds the pinned one).
    #[arg(long, value_name = "PATH")]
    pub llama_bench: Option<PathBuf>,
    /// Weight type of the GGUF models (f32, f16, q8_0, q4_0) [default: the space's].
    #[arg(long, value_parser = parse_weights)]
    pub weights: Option<DType>,
    /// Threads llama-bench computes with [default: all CPUs].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,
    /// llama-bench repetitions per run (-r); a run's time is the median of the last half
    /// (the first ones are warm-up).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub repetitions: u32,
    /// Flash attention (-fa): on, off or auto.
    #[arg(long, default_value = "auto", value_parser = ["on", "off", "auto"])]
    pub flash_attn: String,
    /// KV cache type (-ctk and -ctv): f16, q8_0, ...
    #[arg(long, default_value = "f16")]
    pub cache_type: String,
    /// Decode steps per llama-bench decode test (-n), centred on the workload's context.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(2..=4096))]
    pub decode_tokens: u64,
}

pub fn parse_weights(s: &str) -> Result<DType, String> {
    let d = DType::from_name(s).ok_or_else(|| format!("unknown weight type `{s}`"))?;
    WeightType::from_dtype(d).map_err(|e| e.to_string())?;
    Ok(d)
}

impl LlamaArgs {
    /// How each engine runs here for a validation or a run's check: burn's timing, this
    /// llama-bench and its settings, and `weights` instead of the space's (llama.cpp).
    /// `remote`: what a device timing models remotely is pushed and told (the same timing
    /// and settings, as device arguments).
    pub fn engine(
        &self,
        timing: &super::TimingArgs,
        weights: Option<DType>,
        remote: &super::RemoteArgs,
    ) -> Result<tailor_workflow::validate::EngineSetup> {
        Ok(tailor_workflow::validate::EngineSetup {
            timing: timing.options()?,
            llama_bench: self.llama_bench.clone(),
            settings: self.settings(),
            weights,
            remote: tailor_workflow::validate::RemoteSetup {
                tailor_binary: remote.remote_binary.clone(),
                llama_bench: remote.remote_llama_bench.clone(),
                burn_args: timing.to_args(),
                llama_args: self.to_device_args(),
            },
        })
    }

    pub fn settings(&self) -> Settings {
        Settings {
            threads: self.threads.unwrap_or_else(|| Settings::default().threads),
            flash_attn: self.flash_attn.clone(),
            cache_type: self.cache_type.clone(),
            repetitions: self.repetitions,
        }
    }

    /// The llama-bench to run; on a device whose binaries start through an emulator
    /// (the qemu transport), through that emulator too.
    pub fn bench(&self) -> Result<LlamaBench> {
        let mut bench = LlamaBench::locate(self.llama_bench.as_deref())?;
        bench.prefix.extend(crate::remote::exec_prefix());
        Ok(bench)
    }

    /// The same settings as command-line arguments, for a `tailor profile` on a device
    /// whose llama-bench is `./llama-bench` (its working folder).
    pub fn to_device_args(&self) -> Vec<String> {
        let mut args: Vec<String> = vec!["--llama-bench".into(), "./llama-bench".into()];
        if let Some(w) = self.weights {
            args.extend(["--weights".into(), w.to_string()]);
        }
        if let Some(t) = self.threads {
            args.extend(["--threads".into(), t.to_string()]);
        }
        args.extend([
            "--repetitions".into(),
            self.repetitions.to_string(),
            "--flash-attn".into(),
            self.flash_attn.clone(),
            "--cache-type".into(),
            self.cache_type.clone(),
            "--decode-tokens".into(),
            self.decode_tokens.to_string(),
        ]);
        args
    }
}
