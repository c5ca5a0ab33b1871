//! SGDR snapshots (`--snapshots`, Huang et al. 2017): the weights at the end of every cycle kept
//! in `RUN/snapshots/cycle_<i>/`, then made an ensemble folder that inference loads like any
//! other.

use std::path::PathBuf;

use super::config::TrainConfig;
use crate::data::sample::Sampling;
use crate::error::Result;
use crate::infer::bundle::{BundleConfig, write_bundle_config};
use crate::infer::{Combination, EnsembleFile, Member};
use crate::learner::{Callback, FitState, LearnerView, Listener};
use crate::run_dir::RunDir;
use crate::weights::WEIGHTS_FILE;

/// The folder of a run's snapshots.
pub const SNAPSHOTS: &str = "snapshots";

/// Keeps the weights after the epochs of a fit that end an SGDR cycle, as
/// `dir/cycle_<i>/model.safetensors` (snapshot ensembles).
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshots {
    /// Epochs of the fit after which to keep the weights (the ends of the cycles).
    pub at: Vec<usize>,
    /// The folder of the snapshots.
    pub dir: PathBuf,
}

impl Listener for Snapshots {}

impl<B> Callback<B> for Snapshots {
    fn after_epoch_learner(&mut self, state: &FitState, learner: &dyn LearnerView) -> Result<()> {
        match self.at.iter().position(|&e| e == state.epoch + 1) {
            Some(i) => learner.save_weights(&self.dir.join(format!("cycle_{i}"))),
            None => Ok(()),
        }
    }
}

/// The snapshot callback of a run that keeps SGDR snapshots.
pub fn callback(config: &TrainConfig, run: &RunDir) -> Option<Snapshots> {
    config.snapshots.then(|| Snapshots {
        at: config.snapshot_epochs(),
        dir: run.file(SNAPSHOTS),
    })
}

/// Makes `RUN/snapshots/` an ensemble of the cycles' weights: a bundle per cycle + ensemble.json.
pub fn finish(run: &RunDir, config: &TrainConfig, bundle: &BundleConfig) -> Result<()> {
    let dir = run.file(SNAPSHOTS);
    let mut members = Vec::new();
    for cycle in 0..config.snapshot_epochs().len() {
        let cdir = dir.join(format!("cycle_{cycle}"));
        if !cdir.join(WEIGHTS_FILE).is_file() {
            continue;
        }
        write_bundle_config(&cdir, bundle)?;
        members.push(Member {
            dir: format!("cycle_{cycle}").into(),
            arch: config.arch,
            seed: config.seed,
            size: bundle.size,
            sampling: Sampling::Snapshot { cycle },
        });
    }
    EnsembleFile {
        members,
        combination: Combination::Mean,
        fit_items: Vec::new(),
    }
    .write(&dir)
}
