//! Progress bars on stderr (hidden when stderr is not a terminal).

use indicatif::{ProgressBar, ProgressStyle};

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
