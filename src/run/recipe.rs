//! What an application hands the run driver: its settings, how to prepare data and a learner
//! from them, its plan of fits, its callbacks and how to finish.

use burn::tensor::Device;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Result;
use crate::learner::checkpoint::DataFingerprint;
use crate::learner::task::BatchOf;
use crate::learner::{Callback, Learner, Listen, Stage, Trainable};
use crate::run_dir::RunDir;

/// A kind of run (images, tables, a GAN net): everything the [driver](super::driver) needs that
/// differs between them. Built from its settings, so a run folder's settings file rebuilds it
/// for a resume.
pub trait Recipe: Sized {
    /// The model its learner trains.
    type Model: Trainable;
    /// The settings saved in the run folder (what a resume replays).
    type Settings: Serialize + DeserializeOwned;
    /// What preparing makes from the settings: data, loaders, model configuration.
    type Prepared;
    /// What a finished run returns.
    type Summary;

    /// The recipe of `settings` (as read back from a run folder).
    fn from_settings(settings: Self::Settings) -> Self;
    /// The settings, as the run folder records them.
    fn settings(&self) -> &Self::Settings;
    /// Settings with every path made absolute, so the run folder works from anywhere.
    fn with_absolute_paths(self) -> Self {
        self
    }
    /// Validates the settings and prepares data and model, before anything is written; what the
    /// user should know goes to `listen` as notes.
    fn prepare(&self, device: &Device, listen: &mut Listen) -> Result<Self::Prepared>;
    /// The learner, starting from pretrained weights when `fresh` (on resume the checkpoint
    /// replaces them).
    fn learner(
        &self,
        p: &Self::Prepared,
        device: &Device,
        fresh: bool,
        listen: &mut Listen,
    ) -> Result<Learner<Self::Model>>;
    /// The data folder and the classes (with their counts) the run trains on, recorded in every
    /// checkpoint so that a resume on relabelled data is refused; `None` where labels are not
    /// classes.
    fn fingerprint(&self, _p: &Self::Prepared) -> Option<(std::path::PathBuf, DataFingerprint)> {
        None
    }
    /// Whether the learning rate is to be found by the LR range test first.
    fn lr_auto(&self) -> bool {
        false
    }
    /// Records the learning rate the range test found (and that it no longer needs finding).
    fn set_found_lr(&mut self, _lr: f64) {}
    /// The fits to run, in order.
    fn plan(&self) -> Vec<Stage>;
    /// What to tell the user before training (the plan, choices made for them).
    fn notes(&self, _p: &Self::Prepared) -> Vec<String> {
        Vec::new()
    }
    /// Files the run writes before training (e.g. the files it skipped).
    fn start(&self, _run: &RunDir, _p: &Self::Prepared) -> Result<()> {
        Ok(())
    }
    /// The run's own callbacks (MixUp, snapshots, a GAN's sample grid); the driver adds the
    /// checkpoint after them and the listener.
    fn callbacks(
        &self,
        _run: &RunDir,
        _p: &Self::Prepared,
    ) -> Vec<Box<dyn Callback<BatchOf<Self::Model>>>> {
        Vec::new()
    }
    /// Writes the run's outputs once training is done; `seconds` is the run's wall time.
    fn finish(
        &self,
        run: &RunDir,
        learner: &Learner<Self::Model>,
        p: &Self::Prepared,
        seconds: f64,
    ) -> Result<Self::Summary>;
}
