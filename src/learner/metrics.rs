//! Per-epoch metrics and the recorder of every batch and epoch (fastai's `Recorder`).

use serde::{Deserialize, Serialize};

use super::step::StepKind;

/// The metrics of one epoch, as printed in the training table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// Epoch number over the whole run (0-based).
    pub epoch: usize,
    /// Mean training loss (a GAN: of its critic steps).
    pub train_loss: f64,
    /// Mean validation loss, where the task validates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_loss: Option<f64>,
    /// Validation accuracy (0..1), for classification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    /// 1 − accuracy, for classification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<f64>,
    /// Wall time of the epoch in seconds (training + validation).
    pub seconds: f64,
    /// Progressive-resizing stage or fit number this epoch belongs to.
    #[serde(default)]
    pub stage: usize,
    /// Image size trained at (0 for tables).
    #[serde(default)]
    pub size: u32,
    /// Validation root mean squared error, for regression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rmse: Option<f64>,
    /// A GAN's mean Wasserstein estimate `mean(C(fake)) − mean(C(real))` over its critic steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wasserstein: Option<f64>,
    /// A GAN's mean generator loss over its generator steps (none in an epoch without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gen_loss: Option<f64>,
    /// Real training items of the epoch.
    #[serde(default)]
    pub real: usize,
    /// Synthetic training items of the epoch (`--extra-data`).
    #[serde(default)]
    pub synthetic: usize,
    /// Data-parallel training: the ranks that trained the epoch together (absent alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranks: Option<usize>,
    /// Data-parallel training: seconds of the epoch rank 0 spent communicating (gradient
    /// all-reduce, synchronised BatchNorm), waiting for the slowest rank included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comm_seconds: Option<f64>,
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
    /// What the step trained (a GAN's critic or generator; the model otherwise).
    #[serde(default, skip_serializing_if = "StepKind::is_model")]
    pub kind: StepKind,
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

/// The metric columns an epoch has, by task: the training table's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Columns {
    /// Loss, accuracy and error rate (classification).
    Accuracy,
    /// Loss and RMSE (regression).
    Rmse,
    /// Wasserstein estimate and generator loss (GAN).
    Gan,
}

impl Columns {
    /// The columns of `m`'s task.
    pub fn of(m: &EpochMetrics) -> Self {
        if m.rmse.is_some() {
            Columns::Rmse
        } else if m.wasserstein.is_some() || m.gen_loss.is_some() {
            Columns::Gan
        } else {
            Columns::Accuracy
        }
    }
}

/// `x` with `digits` decimals in a column `width` wide, or `-` where there is none.
fn cell(x: Option<f64>, width: usize, digits: usize) -> String {
    match x {
        Some(v) => format!("{v:>width$.digits$}"),
        None => format!("{:>width$}", "-"),
    }
}

/// Header of the training table, fastai style, for the metric columns of the task.
pub fn table_header(columns: Columns) -> String {
    if columns == Columns::Gan {
        return format!(
            "{:>5}  {:>12}  {:>10}  {:>6}",
            "epoch", "wasserstein", "gen_loss", "time"
        );
    }
    if columns == Columns::Rmse {
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
    match Columns::of(m) {
        Columns::Gan => {
            return format!(
                "{:>5}  {}  {}  {:02}:{:02}",
                m.epoch,
                cell(m.wasserstein, 12, 6),
                cell(m.gen_loss, 10, 6),
                secs / 60,
                secs % 60
            );
        }
        Columns::Rmse => {
            return format!(
                "{:>5}  {:>5}  {:>10.6}  {}  {}  {:02}:{:02}",
                m.epoch,
                m.stage + 1,
                m.train_loss,
                cell(m.valid_loss, 10, 6),
                cell(m.rmse, 10, 6),
                secs / 60,
                secs % 60
            );
        }
        Columns::Accuracy => {}
    }
    format!(
        "{:>5}  {:>5}  {:>4}  {:>10.6}  {}  {}  {}  {:02}:{:02}",
        m.epoch,
        m.stage + 1,
        if m.size == 0 {
            "-".to_string()
        } else {
            m.size.to_string()
        },
        m.train_loss,
        cell(m.valid_loss, 10, 6),
        cell(m.accuracy, 8, 6),
        cell(m.error_rate, 10, 6),
        secs / 60,
        secs % 60
    )
}
