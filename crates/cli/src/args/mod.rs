//! Command-line types shared by several commands; the typed invocation of tailor's own
//! child process (`tailor_workflow::child::MeasureCall`) is tested against them here.

pub mod export;
pub mod llama;
pub mod measure;
pub mod predict;
pub mod profile;
pub mod run;
pub mod search;
pub mod spec;
pub mod validate;

use anyhow::{Result, bail};
use clap::Args;
use std::time::Duration;
use tailor_cost::EditWorkload;
use tailor_profiler::TimingOptions;

pub use tailor_workflow::profile::PROFILE_ROUNDS;

/// A weight type by name (f32, f16, bf16, int8, q4_0, q8_0).
pub fn parse_weight_type(s: &str) -> Result<tailor_spec::DType, String> {
    spec::parse_dtype(s)
}

/// What is pushed to a device that times models remotely (`validate --remote`, a device of
/// a set with `remote`).
#[derive(Debug, Clone, clap::Args)]
pub struct RemoteArgs {
    /// The static arm64 tailor pushed to a remote device.
    #[arg(long, default_value = crate::remote::ARM64_BINARY)]
    pub remote_binary: std::path::PathBuf,
    /// The device's llama-bench (an aarch64 build), pushed to validate a llama.cpp profile
    /// on a remote device.
    #[arg(long)]
    pub remote_llama_bench: Option<std::path::PathBuf>,
}

/// `500ms`, `2s`, `1.5s`, `3m` -> a duration.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let (num, unit) = t
        .find(|c: char| c.is_ascii_alphabetic())
        .map(|i| t.split_at(i))
        .unwrap_or((t, "s"));
    let value: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a duration; write e.g. 500ms, 2s or 1m"))?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" | "min" => value * 60.0,
        _ => return Err(format!("`{text}`: unknown unit `{unit}`; use ms, s or m")),
    };
    if !(secs.is_finite() && secs > 0.0 && secs < 86_400.0) {
        return Err(format!("`{text}` must be a positive duration under a day"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// Like [`parse_duration`], but zero is allowed (`0s`: no pause).
pub fn parse_pause(text: &str) -> Result<std::time::Duration, String> {
    match text
        .trim()
        .trim_end_matches(|c: char| c.is_ascii_alphabetic())
        .parse::<f64>()
    {
        Ok(0.0) => Ok(std::time::Duration::ZERO),
        _ => parse_duration(text),
    }
}

/// How long and how precisely to time each entry (or whole model).
#[derive(Debug, Clone, PartialEq, Args)]
pub struct TimingArgs {
    /// Time cap per entry: stop repeating after this much timed work even if the spread
    /// (p90-p10)/median is still above the target (e.g. 500ms, 2s).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub max_time: Duration,
    /// Warm-up per entry, by time (wgpu autotunes each new shape then).
    #[arg(long, default_value = "150ms", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Timed work per session at least, however small the spread; the median is taken
    /// over the last this-much of calls, so a session spans the machine's sub-second
    /// swings (a 3 ms decode step once stopped after 10 calls, 30 ms of one instant).
    #[arg(long, default_value = "200ms", value_parser = parse_duration)]
    pub min_time: Duration,
    /// Spread (p90-p10)/median at which an entry stops repeating.
    #[arg(long, default_value_t = 0.05)]
    pub target_spread: f64,
    /// MiB the cycled copies of an operator's weights span, so they are read from where a
    /// whole model reads them [default for a new profile: twice the CPU's last-level cache
    /// when the models' weights exceed it (they stream from memory), else 96; a profile
    /// keeps its own].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub cycle_mib: Option<u64>,
}

impl Default for TimingArgs {
    /// The command line's defaults (one definition: clap's).
    fn default() -> Self {
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            timing: TimingArgs,
        }
        <Only as clap::Parser>::parse_from(["tailor"]).timing
    }
}

impl TimingArgs {
    pub fn options(&self) -> Result<TimingOptions> {
        if !(self.target_spread > 0.0 && self.target_spread < 10.0) {
            bail!("--target-spread must be a positive fraction, e.g. 0.05");
        }
        Ok(self.unchecked())
    }

    fn unchecked(&self) -> TimingOptions {
        TimingOptions {
            warmup: self.warmup,
            min_time: self.min_time,
            max_time: self.max_time,
            target_spread: self.target_spread,
            cycle_bytes: self
                .cycle_mib
                .map_or(tailor_cost::Profile::DEFAULT_CYCLE_BYTES, |m| m << 20),
            ..TimingOptions::default()
        }
    }

    /// The same options as command-line arguments (for a `tailor` on a device).
    /// Without `--cycle-mib` the device chooses its own cycle (its cache, the models' size).
    pub fn to_args(&self) -> Vec<String> {
        let mut args = tailor_workflow::child::timing_argv(&self.unchecked());
        if self.cycle_mib.is_none()
            && let Some(i) = args.iter().position(|a| a == "--cycle-mib")
        {
            args.drain(i..i + 2);
        }
        args
    }
}

/// The workload of one inference, batch 1: the one definition of `--prompt` and
/// `--context` for every command that prices or times a single model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Args)]
pub struct WorkloadArgs {
    /// Prompt tokens of the prefill.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    pub prompt: u64,
    /// Tokens already in the KV cache at the decode step.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(0..=1 << 20))]
    pub context: u64,
}

/// One on-device knowledge edit to price or time besides inference: the one definition of
/// the `--edit*` flags.
#[derive(Debug, Clone, Copy, PartialEq, Args)]
pub struct EditArgs {
    /// Also one knowledge edit (ROME-style: optimise one FFN layer's output vector), by
    /// forward-only zeroth-order steps (zo, MobiEdit) and by backpropagation (bp).
    #[arg(long)]
    pub edit: bool,
    /// Edit prompt tokens.
    #[arg(long, default_value_t = EditWorkload::default_tokens())]
    pub edit_tokens: u64,
    /// Target tokens whose logits the loss reads (at the end of the prompt).
    #[arg(long, default_value_t = EditWorkload::default_target_tokens())]
    pub edit_target_tokens: u64,
    /// The edited layer as a fraction of the depth, in [0, 1).
    #[arg(long, default_value_t = EditWorkload::default_layer())]
    pub edit_layer: f64,
    /// Optimisation steps of one edit.
    #[arg(long, default_value_t = EditWorkload::default_steps())]
    pub edit_steps: u64,
    /// zo: random directions per step (each two forward passes).
    #[arg(long, default_value_t = EditWorkload::default_queries())]
    pub edit_queries: u64,
}

impl EditArgs {
    /// The edit asked for (`None` without `--edit`); bad numbers name their flag.
    pub fn workload(&self) -> Result<Option<EditWorkload>> {
        if !self.edit {
            return Ok(None);
        }
        let e = EditWorkload {
            tokens: self.edit_tokens,
            target_tokens: self.edit_target_tokens,
            layer: self.edit_layer,
            steps: self.edit_steps,
            queries: self.edit_queries,
        };
        if let Some((key, message)) = e.problem() {
            bail!("--edit-{}: {message}", key.replace('_', "-"));
        }
        Ok(Some(e))
    }
}

#[cfg(test)]
mod tests {
    use super::TimingArgs;
    use crate::{Cli, Command};
    use clap::Parser;
    use std::path::PathBuf;
    use std::time::Duration;
    use tailor_profiler::Backend;
    use tailor_workflow::child::{MeasureCall, MeasureMode};

    fn parse(call: &MeasureCall) -> super::measure::MeasureArgs {
        let mut argv = vec![std::ffi::OsString::from("tailor")];
        argv.extend(call.argv());
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Measure(m) => m,
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn durations_parse_with_their_units() {
        use super::{parse_duration, parse_pause};
        assert_eq!(
            parse_duration("500ms"),
            Ok(std::time::Duration::from_millis(500))
        );
        assert_eq!(parse_duration("2"), Ok(std::time::Duration::from_secs(2)));
        assert_eq!(
            parse_duration("1.5s"),
            Ok(std::time::Duration::from_millis(1500))
        );
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("3h").unwrap_err().contains("unknown unit"));
        assert_eq!(parse_pause("0s"), Ok(Duration::ZERO));
        assert!(parse_duration("0s").is_err());
    }

    #[test]
    fn the_child_measure_invocation_parses_back_to_what_was_asked() {
        let timing = TimingArgs {
            max_time: Duration::from_millis(666),
            warmup: Duration::from_millis(150),
            min_time: Duration::from_millis(70),
            target_spread: 0.07,
            cycle_mib: Some(33),
        };
        let specs = vec![
            PathBuf::from("out/specs/1.toml"),
            PathBuf::from("with space/2.toml"),
        ];
        let call = MeasureCall {
            specs: specs.clone(),
            backend: Backend::Ndarray,
            prompt: 48,
            context: 300,
            mode: MeasureMode::TimingOnly,
            timing: Some(timing.options().unwrap()),
        };
        let m = parse(&call);
        assert_eq!(m.spec, specs);
        assert_eq!(
            (m.backend, m.workload.prompt, m.workload.context),
            (Backend::Ndarray, 48, 300)
        );
        assert!(m.json && m.no_memory && !m.memory_only);
        assert_eq!(m.timing, timing);

        let memory = MeasureCall {
            specs: vec![PathBuf::from("a.toml")],
            backend: Backend::Flex,
            prompt: 1,
            context: 1,
            mode: MeasureMode::MemoryOnly,
            timing: None,
        };
        let m = parse(&memory);
        assert!(m.json && m.memory_only && !m.no_memory);
        assert_eq!(
            (m.backend, m.workload.prompt, m.workload.context),
            (Backend::Flex, 1, 1)
        );

        let edit = tailor_cost::EditWorkload {
            tokens: 40,
            target_tokens: 3,
            layer: 0.1 + 0.2,
            steps: 7,
            queries: 4,
        };
        for method in tailor_cost::EditMethod::ALL {
            let call = MeasureCall {
                mode: MeasureMode::EditMemory(edit, method),
                ..memory.clone()
            };
            let m = parse(&call);
            assert_eq!(m.edit.workload().unwrap(), Some(edit), "bit for bit");
            assert_eq!(m.edit_memory, Some(method));
            assert!(m.json && !m.memory_only);
        }
    }
}
