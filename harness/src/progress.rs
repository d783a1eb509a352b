//! Progress on long steps: bars when stderr is a terminal, plain log lines otherwise.
//!
//! CI logs should read as a story ("create_repos 120/300"), not as a mess of carriage
//! returns; a person at a terminal wants a bar. Log lines printed while bars are drawn go
//! through [`LogWriter`], which lifts the bars out of the way first.

use std::io::{IsTerminal, Write};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use parking_lot::Mutex;

static BARS: OnceLock<Option<MultiProgress>> = OnceLock::new();

fn bars() -> Option<&'static MultiProgress> {
    BARS.get_or_init(|| {
        std::io::stderr()
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(8)))
    })
    .as_ref()
}

/// A `tracing` writer that suspends progress bars while a log line is written.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match bars() {
            Some(multi) => multi.suspend(|| std::io::stderr().write(buf)),
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LogWriter
    }
}

/// One long-running piece of work.
#[derive(Debug)]
pub struct Task {
    name: String,
    total: Option<u64>,
    bar: Option<ProgressBar>,
    position: Mutex<(u64, Instant)>,
}

/// How often plain-text progress is logged.
const LOG_EVERY: Duration = Duration::from_secs(5);

impl Task {
    /// Starts a task of `total` units (or an open-ended one).
    pub fn start(name: impl Into<String>, total: Option<u64>) -> Task {
        let name = name.into();
        let bar = bars().map(|multi| {
            let bar = match total {
                Some(total) => ProgressBar::new(total).with_style(
                    ProgressStyle::with_template(
                        "{spinner:.green} {prefix:.bold} [{bar:30.cyan/blue}] {pos}/{len} {msg} ({elapsed})",
                    )
                    .expect("static template")
                    .progress_chars("=> "),
                ),
                None => ProgressBar::new_spinner().with_style(
                    ProgressStyle::with_template("{spinner:.green} {prefix:.bold} {msg} ({elapsed})")
                        .expect("static template"),
                ),
            };
            let bar = multi.add(bar.with_prefix(name.clone()));
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Task {
            name,
            total,
            bar,
            position: Mutex::new((0, Instant::now())),
        }
    }

    /// Sets how many units are done.
    pub fn set(&self, done: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            return;
        }
        let mut position = self.position.lock();
        position.0 = done;
        if position.1.elapsed() >= LOG_EVERY {
            position.1 = Instant::now();
            match self.total {
                Some(total) => tracing::info!("{}: {done}/{total}", self.name),
                None => tracing::info!("{}: {done}", self.name),
            }
        }
    }

    /// Adds to the units done.
    pub fn inc(&self, delta: u64) {
        let done = self.position.lock().0 + delta;
        self.set(done);
    }

    /// A short status message.
    pub fn message(&self, message: impl Into<String>) {
        let message = message.into();
        match &self.bar {
            Some(bar) => bar.set_message(message),
            None => {
                let mut position = self.position.lock();
                if position.1.elapsed() >= LOG_EVERY {
                    position.1 = Instant::now();
                    tracing::info!("{}: {message}", self.name);
                }
            }
        }
    }

    /// Ends the task.
    pub fn finish(self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
            if let Some(multi) = bars() {
                multi.remove(bar);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_count_without_a_terminal() {
        // Under `cargo test` stderr is not a terminal: plain mode, no bar.
        let task = Task::start("unit", Some(10));
        task.set(3);
        task.inc(2);
        assert_eq!(task.position.lock().0, 5);
        task.message("halfway");
        task.finish();
    }
}
