//! A fit of a training plan ([`Stage`]) and fastai's `fine_tune` recipe as two of them.

use super::param_groups::Lrs;
use super::schedule::{OneCycle, Schedule};

/// One fit of a training plan: its epochs, schedule, learning-rate spread and whether the body is frozen.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Stage {
    /// Epochs of this fit.
    pub epochs: usize,
    /// Its schedule (peak = `lrs.max()`).
    pub schedule: Schedule,
    /// Learning rates of the groups.
    pub lrs: Lrs,
    /// Whether only the head (and BatchNorm) trains.
    pub frozen: bool,
    /// Image side of this stage (progressive resizing); `None` keeps the current one.
    #[serde(default)]
    pub size: Option<u32>,
    /// Share in (0, 1] of its batches the last epoch trains before the fit ends (`None`: all):
    /// a time budget can end a fit part-way through an epoch, its schedule spanning the batches
    /// actually trained.
    #[serde(default)]
    pub last_epoch_pct: Option<f64>,
}

/// Refuses a share of the last epoch outside (0, 1] (a hand-edited settings file, say).
pub fn check_last_epoch_pct(pct: Option<f64>) -> crate::error::Result<()> {
    match pct.filter(|p| !(*p > 0.0 && *p <= 1.0)) {
        Some(p) => Err(crate::error::Error::Config(format!(
            "`last_epoch_pct` {p}: the share of the last epoch trained is in (0, 1]"
        ))),
        None => Ok(()),
    }
}

impl Stage {
    /// Its epochs, a last partial one counted as its share.
    pub fn length(&self) -> f64 {
        match self.epochs {
            0 => 0.0,
            e => e as f64 - 1.0 + self.last_epoch_pct.unwrap_or(1.0),
        }
    }
}

/// fastai's `fine_tune` recipe as two stages.
pub fn fine_tune_stages(
    epochs: usize,
    base_lr: f64,
    freeze_epochs: usize,
    lr_mult: f64,
) -> Vec<Stage> {
    let frozen = OneCycle {
        pct_start: 0.99,
        ..OneCycle::new(base_lr)
    };
    let half = base_lr / 2.0;
    let unfrozen = OneCycle {
        pct_start: 0.3,
        div: 5.0,
        ..OneCycle::new(half)
    };
    vec![
        Stage {
            epochs: freeze_epochs,
            schedule: Schedule::OneCycle(frozen),
            lrs: Lrs::UpTo(base_lr),
            frozen: true,
            size: None,
            last_epoch_pct: None,
        },
        Stage {
            epochs,
            schedule: Schedule::OneCycle(unfrozen),
            lrs: Lrs::Range(half / lr_mult, half),
            frozen: false,
            size: None,
            last_epoch_pct: None,
        },
    ]
}
