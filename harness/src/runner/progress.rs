//! Progress on stderr: a bar with samples/s and ETA on a terminal (indicatif), otherwise one plain
//! line every few seconds (CI, Slurm logs). Stdout stays for the final table.
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Seconds between plain log lines off a terminal.
const LOG_EVERY: Duration = Duration::from_secs(10);

pub struct Progress {
    task: &'static str,
    total: usize,
    done: usize,
    started_at: usize,
    start: Instant,
    last_log: Instant,
    bar: Option<ProgressBar>,
    failed: usize,
    finished: bool,
}

impl Progress {
    pub fn new(task: &'static str, total: usize, done: usize, failed: usize) -> Self {
        let bar = (std::io::stderr().is_terminal() && crate::log::notes_shown()).then(|| {
            let b = ProgressBar::new(total as u64);
            if let Ok(style) = ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} {per_sec} ETA {eta} {msg}",
            ) {
                b.set_style(style.progress_chars("=> "));
            }
            b.set_prefix(task);
            b.set_position(done as u64);
            b.set_message(format!("failed {failed}"));
            b
        });
        let now = Instant::now();
        Progress {
            task,
            total,
            done,
            started_at: done,
            start: now,
            last_log: now,
            bar,
            failed,
            finished: false,
        }
    }

    /// One more sample finished.
    pub fn inc(&mut self, failed: usize) {
        self.done += 1;
        self.failed = failed;
        match &self.bar {
            Some(b) => {
                b.set_position(self.done as u64);
                b.set_message(format!("failed {failed}"));
            }
            None if self.last_log.elapsed() >= LOG_EVERY => {
                self.last_log = Instant::now();
                let rate = (self.done - self.started_at) as f64
                    / self.start.elapsed().as_secs_f64().max(1e-9);
                let eta = (self.total - self.done) as f64 / rate.max(1e-9);
                crate::log::note(format!(
                    "{}: {}/{} samples, {rate:.2} samples/s, ETA {eta:.0} s, failed {failed}",
                    self.task, self.done, self.total
                ));
            }
            None => {}
        }
    }

    /// Clears the bar and prints one summary line (once).
    pub fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let secs = self.start.elapsed().as_secs_f64();
        let n = self.done - self.started_at;
        crate::log::note(format!(
            "{}: {n} sample(s) in {secs:.1} s ({:.2} samples/s), {}/{} done, {} failed",
            self.task,
            n as f64 / secs.max(1e-9),
            self.done,
            self.total,
            self.failed
        ));
    }
}
