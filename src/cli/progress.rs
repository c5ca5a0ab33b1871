//! Progress display: a bar over each epoch's batches, fastai's metrics table, the notes the
//! library hands its callbacks (settings named as flags), and a bar for downloads.

use std::sync::Mutex;

use fastvision::learner::metrics::{Columns, EpochMetrics, table_header, table_row};
use fastvision::learner::{FitState, Listen, Listener};
use fastvision::weights::hub::{DownloadEvent, set_reporter};
use indicatif::{ProgressBar, ProgressStyle};

/// Prints the metrics table and the notes, and shows an `indicatif` bar while an epoch runs.
#[derive(Default)]
pub struct Progress {
    bar: Option<ProgressBar>,
    header_done: bool,
    stderr: bool,
}

impl Progress {
    /// A progress display that prints its table on stderr (when stdout carries data, e.g. CSV).
    pub fn to_stderr() -> Self {
        Self {
            stderr: true,
            ..Self::default()
        }
    }

    fn line(&self, text: String) {
        if self.stderr {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    }
}

impl Listener for Progress {
    fn before_epoch(&mut self, state: &mut FitState) {
        let bar = ProgressBar::new(state.epoch_iters() as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "epoch {prefix} [{bar:30}] {pos}/{len} {per_sec} eta {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(format!("{}/{}", state.epoch + 1, state.n_epochs));
        self.bar = Some(bar);
    }

    fn after_batch(&mut self, state: &mut FitState) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
            bar.set_message(format!("loss {:.4}", state.loss));
        }
    }

    fn after_epoch(&mut self, _state: &mut FitState, metrics: &EpochMetrics) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if !self.header_done {
            self.line(table_header(Columns::of(metrics)));
            self.header_done = true;
        }
        self.line(table_row(metrics));
    }

    fn note(&mut self, text: &str) {
        self.line(super::messages::to_cli(text));
    }
}

/// The progress display of a command that prints its table on stdout.
pub fn on_stdout() -> Listen {
    Listen::new(Progress::default())
}

/// Shows downloads of named checkpoints as a bar on stderr, and their notes.
pub fn report_downloads() {
    let bar: Mutex<Option<ProgressBar>> = Mutex::new(None);
    set_reporter(move |event| {
        let mut bar = bar.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            DownloadEvent::Started { file, total, from } => {
                let b = total.map_or_else(ProgressBar::no_length, ProgressBar::new);
                b.set_style(
                    ProgressStyle::with_template(
                        "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                let resumed = if from > 0 { " (resumed)" } else { "" };
                b.set_message(format!("{file}{resumed}"));
                b.set_position(from);
                *bar = Some(b);
            }
            DownloadEvent::Received { bytes } => {
                if let Some(b) = bar.as_ref() {
                    b.inc(bytes);
                }
            }
            DownloadEvent::Ended => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
            }
            DownloadEvent::Note(text) => eprintln!("{}", super::messages::to_cli(&text)),
        }
    });
}

/// Checks that the run folder `dir` has a checkpoint to resume from (a missing or corrupt one is
/// an error that says which) and says that it resumes.
pub fn announce_resume(dir: &std::path::Path) -> anyhow::Result<()> {
    fastvision::learner::checkpoint::to_resume(dir, &dir.join(fastvision::run_dir::CHECKPOINT))?;
    println!("resuming {}", dir.display());
    Ok(())
}
