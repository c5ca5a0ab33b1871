//! What a GAN net's run writes after every epoch: a grid of samples, the log and its plot.

use std::path::PathBuf;

use super::step::{GanBatch, Wgan};
use super::train::{generate, plot_gan_losses, write_grid};
use crate::data::loader::mix;
use crate::error::{Error, Result};
use crate::io::write_json;
use crate::learner::{Callback, FitState, LearnerView, Listener};

/// Writes, after every epoch of a GAN net's training, a grid of 64 samples
/// (`samples/epoch_NNN.png`), the log and `losses.png` into the net folder — before the
/// checkpoint, so a checkpoint of epoch N always finds the log of epoch N.
pub struct EpochOutputs {
    /// The net folder.
    pub dir: PathBuf,
    /// Seed of the sample grid's noise (the same every epoch).
    pub seed: u64,
    /// Classes, for a conditional generator's grid (empty otherwise).
    pub classes: usize,
    /// Channels and side of the images.
    pub channels: usize,
    /// Side of the images.
    pub size: usize,
}

impl Listener for EpochOutputs {}

impl Callback<GanBatch> for EpochOutputs {
    fn after_epoch_learner(&mut self, _state: &FitState, learner: &dyn LearnerView) -> Result<()> {
        let Some(wgan) = learner.model().downcast_ref::<Wgan>() else {
            return Ok(());
        };
        let samples = self.dir.join("samples");
        std::fs::create_dir_all(&samples).map_err(|e| Error::io(&samples, e))?;
        let n = 64;
        let classes =
            (self.classes > 0).then(|| (0..n).map(|i| (i % self.classes) as i64).collect());
        let px = generate(
            &wgan.generator,
            wgan.switch.noise,
            n,
            classes,
            mix(self.seed, 0xFACE, 0),
            learner.device(),
        );
        let epoch = learner.epochs_done() - 1;
        write_grid(
            &px,
            n,
            self.channels,
            self.size,
            &samples.join(format!("epoch_{epoch:03}.png")),
        )?;
        write_json(&self.dir.join(crate::run_dir::LOG), learner.recorder())?;
        plot_gan_losses(learner.recorder(), &self.dir.join("losses.png"))
    }
}
