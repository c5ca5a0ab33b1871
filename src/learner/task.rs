//! What a [`Learner`](super::Learner) can train: a model (image classifier, tabular model) whose
//! data yields batches that the model turns into a training loss and validation metrics — so one
//! training loop, one callback mechanism and one checkpoint format serve every kind of model.

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::loss::LossFunc;
use super::step::{StepContext, StepKind, StepLoss};
use crate::ops::workers::on_workers;

/// The data a learner trains on: batches of the training split and the validation split.
pub trait TrainData: Clone {
    /// One training batch (before any callback changes it).
    type Batch: Sync;
    /// The training batches of one epoch, shuffled by `epoch`; owns what it needs.
    type Iter: Iterator<Item = Self::Batch>;
    /// The training batches of epoch `epoch` (the epoch seeds the shuffle and augmentation).
    fn train_batches(&self, epoch: usize) -> Self::Iter;
    /// Items in `batch`.
    fn batch_len(batch: &Self::Batch) -> usize;
    /// Training batches per epoch.
    fn n_train_batches(&self) -> usize;
    /// Training items (images, rows).
    fn n_train_items(&self) -> usize;
    /// Training batch size.
    fn batch_size(&self) -> usize;
    /// The image side trained at (0 where it has no meaning, e.g. tables).
    fn size(&self) -> u32 {
        0
    }
    /// Changes the image side of the training and validation data (progressive resizing); no-op by default.
    fn resize(&mut self, _size: u32) {}
    /// Real and synthetic items of the training split (each epoch sees them all).
    fn item_counts(&self) -> (usize, usize) {
        (self.n_train_items(), 0)
    }
}

/// The validation metrics of one epoch, by task: each is `None` where the task has no such
/// metric (accuracy for classification, RMSE for regression, nothing for a GAN).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Validation {
    /// Mean validation loss (`None` without validation data).
    pub loss: Option<f64>,
    /// Accuracy, for classification.
    pub accuracy: Option<f64>,
    /// Root mean squared error, for regression.
    pub rmse: Option<f64>,
}

/// Rank 0's validation `v`, on every rank (the others pass anything): the ranks' running
/// BatchNorm statistics may differ, and every decision taken on validation (a diverged epoch,
/// early stopping, the best model) must be the same on all of them.
pub fn broadcast_validation(
    v: Validation,
    group: &dyn crate::distributed::Collective,
) -> Validation {
    let pack = |m: Option<f64>| [f64::from(u8::from(m.is_some())), m.unwrap_or(0.0)];
    let mut buf: Vec<f64> = [v.loss, v.accuracy, v.rmse]
        .into_iter()
        .flat_map(pack)
        .collect();
    group.broadcast_f64(&mut buf);
    let unpack = |i: usize| (buf[2 * i] != 0.0).then_some(buf[2 * i + 1]);
    Validation {
        loss: unpack(0),
        accuracy: unpack(1),
        rmse: unpack(2),
    }
}

/// A model the learner can train on its [`TrainData`].
pub trait Trainable: Module + 'static {
    /// The data it trains on.
    type Data: TrainData;
    /// Parameter-path prefixes of each group, body first, head last (discriminative LRs).
    fn param_groups(&self) -> Vec<Vec<String>>;
    /// The mean training loss of `batch` (on the autodiff device).
    fn train_loss(&self, batch: &BatchOf<Self>, loss_func: &LossFunc, device: &Device)
    -> Tensor<1>;
    /// Loss and metrics on the validation split; `self` is already in eval mode, `device` plain.
    fn validate(&self, data: &Self::Data, device: &Device) -> Validation;
    /// One training step (fastai's `train_step`): by default the batch's
    /// [`train_loss`](Self::train_loss), back-propagated, and one optimizer step over every
    /// parameter. A model whose step differs (a GAN's critic/generator switch) overrides it.
    fn train_step(self, batch: &BatchOf<Self>, ctx: &mut StepContext<'_>) -> (Self, StepLoss) {
        let loss = self.train_loss(batch, ctx.loss_func, ctx.device);
        let (model, loss) = ctx.backward_step(self, loss);
        (
            model,
            StepLoss {
                loss,
                kind: StepKind::Model,
            },
        )
    }
}

/// The batch type a model `M` trains on.
pub type BatchOf<M> = <<M as Trainable>::Data as TrainData>::Batch;

impl TrainData for crate::data::DataLoaders {
    type Batch = crate::data::Batch;
    type Iter = crate::data::loader::BatchIter;

    fn train_batches(&self, epoch: usize) -> Self::Iter {
        self.train.iter(epoch)
    }

    fn batch_len(batch: &Self::Batch) -> usize {
        batch.len()
    }

    fn n_train_batches(&self) -> usize {
        self.train.len()
    }

    fn n_train_items(&self) -> usize {
        self.train.items().len()
    }

    fn batch_size(&self) -> usize {
        self.train.batch_size()
    }

    fn size(&self) -> u32 {
        self.train.transform().size()
    }

    fn item_counts(&self) -> (usize, usize) {
        let n = self.train.items().len();
        (n - self.synthetic.min(n), self.synthetic)
    }

    fn resize(&mut self, size: u32) {
        if self.size() != size {
            *self = self.resized(size);
        }
    }
}

impl Trainable for crate::models::ImageClassifier {
    type Data = crate::data::DataLoaders;

    fn param_groups(&self) -> Vec<Vec<String>> {
        crate::models::ImageClassifier::param_groups(self)
    }

    fn train_loss(
        &self,
        batch: &crate::data::Batch,
        loss_func: &LossFunc,
        device: &Device,
    ) -> Tensor<1> {
        let logits = self.forward(batch.images(device));
        loss_func.batch_loss(logits, batch, device)
    }

    fn validate(&self, data: &Self::Data, device: &Device) -> Validation {
        use burn::nn::loss::CrossEntropyLossConfig;
        let ce = CrossEntropyLossConfig::new().init(device);
        let (mut loss_sum, mut correct, mut n) = (0.0, 0i64, 0usize);
        for batch in data.valid.iter(0) {
            // The forward pass on the kernels' workers; the loop, which waits for the loader's
            // batches (made on those workers too), stays here.
            let logits = on_workers(device, || self.forward(batch.images(device)));
            let targets = batch.targets(device);
            let loss = f64::from(
                ce.forward(logits.clone(), targets.clone())
                    .into_scalar::<f32>(),
            );
            let pred = logits.argmax(1).reshape([batch.len()]);
            correct += pred.equal(targets).int().sum().into_scalar::<i64>();
            loss_sum += loss * batch.len() as f64;
            n += batch.len();
        }
        if n == 0 {
            return Validation::default();
        }
        Validation {
            loss: Some(loss_sum / n as f64),
            accuracy: Some(correct as f64 / n as f64),
            rmse: None,
        }
    }
}
