//! Progress bars on stderr (hidden when stderr is not a terminal).

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use tailor_cost::Entry;
use tracing::info;

#[derive(Debug)]
pub struct Bar(ProgressBar);

impl Bar {
    pub fn new(what: &str) -> Self {
        let bar = ProgressBar::hidden();
        let style = ProgressStyle::with_template(&format!(
            "{what} {{bar:30}} {{pos}}/{{len}} ({{per_sec}}, ETA {{eta}})"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        Self(bar)
    }
}

impl tailor_search::Progress for Bar {
    fn start(&self, total: u64) {
        self.0.set_length(total);
        self.0
            .set_draw_target(indicatif::ProgressDrawTarget::stderr());
    }
    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// The bar of a profiling run: one step per timing session (burn) or probe visit
/// (llama.cpp). Without a terminal (a log file, `adb shell`) a log line every 10 sessions
/// instead. Cleared when dropped.
#[derive(Debug)]
pub struct ProfileBar(ProgressBar);

impl ProfileBar {
    pub fn new(what: &str) -> Self {
        let bar = ProgressBar::hidden();
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{what} {{bar:30}} {{pos}}/{{len}} ETA {{eta}} {{msg}}"
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Self(bar)
    }

    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl tailor_profiler::ProfileProgress for ProfileBar {
    fn start(&self, todo: usize, done: usize) {
        info!(to_measure = todo, already = done, "profiling");
        self.0.set_length(todo as u64);
        self.0
            .set_draw_target(indicatif::ProgressDrawTarget::stderr());
    }
    fn measured(&self, e: &Entry) {
        self.0.set_message(e.shape.to_string());
        self.0.inc(1);
        let (done, of) = (self.0.position(), self.0.length().unwrap_or(0));
        if !std::io::stderr().is_terminal() && (done % 10 == 0 || done == of) {
            info!(done, of, last = %e.shape, "profiling");
        }
    }
}

impl tailor_llamacpp::run::Progress for ProfileBar {
    fn start(&self, total: usize) {
        self.0.set_length(total as u64);
        self.0
            .set_draw_target(indicatif::ProgressDrawTarget::stderr());
    }
    fn visited(&self, what: &str) {
        self.0.set_message(what.to_string());
        self.0.inc(1);
    }
}

impl Drop for ProfileBar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// The bar of a whole-model check: one step per model and round. Cleared when dropped.
#[derive(Debug)]
pub struct CheckBar(ProgressBar);

impl CheckBar {
    pub fn new() -> Self {
        let bar = ProgressBar::hidden();
        bar.set_style(
            ProgressStyle::with_template("validate {bar:30} {pos}/{len} ETA {eta} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Self(bar)
    }
}

impl tailor_workflow::check::CheckProgress for CheckBar {
    fn start(&self, total: u64) {
        self.0
            .set_draw_target(indicatif::ProgressDrawTarget::stderr());
        self.0.set_length(total);
    }
    fn message(&self, message: &str) {
        self.0.set_message(message.to_string());
    }
    fn advance(&self) {
        self.0.inc(1);
    }
    fn suspend(&self, log: &mut dyn FnMut()) {
        self.0.suspend(log);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl Drop for CheckBar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}
