//! Progress bars on stderr. When stderr is not a terminal (a log file, CI, `adb shell`)
//! the bars are hidden and each says where it is in a log line instead, at most every
//! [`LOG_EVERY`] and once at the end.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tailor_cost::Entry;
use tracing::info;

/// How often a bar without a terminal logs its position.
pub const LOG_EVERY: Duration = Duration::from_secs(5);

/// The log line of a bar whose stderr is not a terminal: `done/of` and the last item,
/// when [`LOG_EVERY`] has passed since the last line or the bar is complete.
#[derive(Debug)]
struct LogLine {
    what: &'static str,
    last: Mutex<Option<Instant>>,
}

impl LogLine {
    fn new(what: &'static str) -> Self {
        Self {
            what,
            last: Mutex::new(None),
        }
    }

    fn update(&self, bar: &ProgressBar, item: &str) {
        if std::io::stderr().is_terminal() {
            return;
        }
        let (done, of) = (bar.position(), bar.length().unwrap_or(0));
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let due = last.is_none_or(|t| now.duration_since(t) >= LOG_EVERY);
        if due || done == of {
            *last = Some(now);
            let eta = bar.eta();
            info!(
                done,
                of,
                eta_s = eta.as_secs(),
                last = item,
                "{}",
                self.what
            );
        }
    }
}

#[derive(Debug)]
pub struct Bar(ProgressBar, LogLine);

impl Bar {
    pub fn new(what: &'static str) -> Self {
        let bar = ProgressBar::hidden();
        let style = ProgressStyle::with_template(&format!(
            "{what} {{bar:30}} {{pos}}/{{len}} ({{per_sec}}, ETA {{eta}})"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        Self(bar, LogLine::new(what))
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
        self.1.update(&self.0, "");
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// The bar of a profiling run: one step per timing session (burn) or probe visit
/// (llama.cpp). Without a terminal (a log file, `adb shell`) a log line instead, at most
/// every [`LOG_EVERY`]. Cleared when dropped.
#[derive(Debug)]
pub struct ProfileBar(ProgressBar, LogLine);

impl ProfileBar {
    pub fn new(what: &'static str) -> Self {
        let bar = ProgressBar::hidden();
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{what} {{bar:30}} {{pos}}/{{len}} ETA {{eta}} {{msg}}"
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Self(bar, LogLine::new(what))
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
        let shape = e.shape.to_string();
        self.0.set_message(shape.clone());
        self.0.inc(1);
        self.1.update(&self.0, &shape);
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
        self.1.update(&self.0, what);
    }
}

impl Drop for ProfileBar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// The bar of a whole-model check: one step per model and round. Cleared when dropped.
#[derive(Debug)]
pub struct CheckBar(ProgressBar, LogLine, Mutex<String>);

impl CheckBar {
    pub fn new() -> Self {
        let bar = ProgressBar::hidden();
        bar.set_style(
            ProgressStyle::with_template("validate {bar:30} {pos}/{len} ETA {eta} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Self(bar, LogLine::new("validate"), Mutex::new(String::new()))
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
        *self.2.lock().unwrap_or_else(|e| e.into_inner()) = message.to_string();
    }
    fn advance(&self) {
        self.0.inc(1);
        let message = self.2.lock().unwrap_or_else(|e| e.into_inner()).clone();
        self.1.update(&self.0, &message);
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

/// The progress bars of `tailor run` and `tailor validate`'s stages, on stderr.
pub struct Bars;

impl tailor_workflow::run::RunProgress for Bars {
    fn profile(&self) -> Box<dyn tailor_profiler::ProfileProgress + '_> {
        Box::new(ProfileBar::new("profile"))
    }
    fn remeasure(&self) -> Box<dyn tailor_profiler::ProfileProgress + '_> {
        Box::new(ProfileBar::new("re-measure"))
    }
    fn search(&self) -> Box<dyn tailor_search::Progress + '_> {
        Box::new(Bar::new("search"))
    }
    fn check(&self) -> Box<dyn tailor_workflow::check::CheckProgress + '_> {
        Box::new(CheckBar::new())
    }
    fn llama(&self) -> Box<dyn tailor_llamacpp::run::Progress + '_> {
        Box::new(ProfileBar::new("llama-bench"))
    }
}
