//! Per-epoch metrics and the recorder of every batch and epoch (fastai's `Recorder`).

use serde::{Deserialize, Serialize};

/// The metrics of one epoch, as printed in the training table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// Epoch number over the whole run (0-based).
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Mean validation loss.
    pub valid_loss: f64,
    /// Validation accuracy (0..1).
    pub accuracy: f64,
    /// 1 − accuracy.
    pub error_rate: f64,
    /// Wall time of the epoch in seconds (training + validation).
    pub seconds: f64,
    /// Progressive-resizing stage or fit number this epoch belongs to.
    #[serde(default)]
    pub stage: usize,
    /// Image size trained at (0 for tables).
    #[serde(default)]
    pub size: u32,
    /// Validation root mean squared error, for regression (then `accuracy` is NaN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rmse: Option<f64>,
    /// Real training items of the epoch.
    #[serde(default)]
    pub real: usize,
    /// Synthetic training items of the epoch (`--extra-data`).
    #[serde(default)]
    pub synthetic: usize,
}

/// One training batch: loss and the hyper-parameters used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchRecord {
    /// Epoch over the whole run.
    pub epoch: usize,
    /// Training iteration over the whole run.
    pub iter: usize,
    /// Batch loss.
    pub loss: f64,
    /// Learning rate used (top group).
    pub lr: f64,
    /// Momentum used.
    pub mom: f64,
}

/// Everything recorded during training; serialised as the run's `log.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Recorder {
    /// Per-epoch metrics.
    pub epochs: Vec<EpochMetrics>,
    /// Per-batch losses and hyper-parameters.
    pub batches: Vec<BatchRecord>,
}

impl Recorder {
    /// The last epoch's metrics, if any.
    pub fn last(&self) -> Option<&EpochMetrics> {
        self.epochs.last()
    }
}

/// Header of the training table, fastai style (RMSE in place of accuracy for regression).
pub fn table_header(regression: bool) -> String {
    if regression {
        return format!(
            "{:>5}  {:>5}  {:>10}  {:>10}  {:>10}  {:>6}",
            "epoch", "stage", "train_loss", "valid_loss", "rmse", "time"
        );
    }
    format!(
        "{:>5}  {:>5}  {:>4}  {:>10}  {:>10}  {:>8}  {:>10}  {:>6}",
        "epoch", "stage", "size", "train_loss", "valid_loss", "accuracy", "error_rate", "time"
    )
}

/// One row of the training table.
pub fn table_row(m: &EpochMetrics) -> String {
    let secs = m.seconds.round() as u64;
    if let Some(rmse) = m.rmse {
        return format!(
            "{:>5}  {:>5}  {:>10.6}  {:>10.6}  {:>10.6}  {:02}:{:02}",
            m.epoch,
            m.stage + 1,
            m.train_loss,
            m.valid_loss,
            rmse,
            secs / 60,
            secs % 60
        );
    }
    format!(
        "{:>5}  {:>5}  {:>4}  {:>10.6}  {:>10.6}  {:>8.6}  {:>10.6}  {:02}:{:02}",
        m.epoch,
        m.stage + 1,
        if m.size == 0 {
            "-".to_string()
        } else {
            m.size.to_string()
        },
        m.train_loss,
        m.valid_loss,
        m.accuracy,
        m.error_rate,
        secs / 60,
        secs % 60
    )
}
