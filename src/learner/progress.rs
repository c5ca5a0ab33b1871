//! Progress display: a bar over each epoch's batches and fastai's metrics table.

use indicatif::{ProgressBar, ProgressStyle};

use super::callback::{Callback, FitState};
use super::metrics::{EpochMetrics, table_header, table_row};

/// Prints the metrics table and shows an `indicatif` bar while an epoch runs.
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

impl<B> Callback<B> for Progress {
    fn before_epoch(&mut self, state: &mut FitState) {
        let bar = ProgressBar::new(state.iters_per_epoch as u64);
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
            self.line(table_header(metrics.rmse.is_some()));
            self.header_done = true;
        }
        self.line(table_row(metrics));
    }
}
