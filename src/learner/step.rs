//! The pluggable part of the fit loop: one training step. The loop (batches, schedule,
//! callbacks, validation, records) is the same for every model; a model's
//! [`Trainable::train_step`](super::Trainable::train_step) decides what a step does with the
//! [`StepContext`] it is given — one backward pass and one optimizer step for a classifier or a
//! tabular model, a critic or a generator step for a WGAN.

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::data_parallel::all_reduce_grads;
use super::loss::LossFunc;
use super::optimizer::AdamHandles;
use super::precision::{GradScaler, grads_finite};

/// What a training step trained: the whole model, or one of a GAN's two networks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepKind {
    /// The model (classifier, tabular model).
    #[default]
    Model,
    /// A GAN's critic.
    Critic,
    /// A GAN's generator.
    Generator,
}

impl StepKind {
    /// Whether this is the default kind (so the log leaves it out).
    pub fn is_model(&self) -> bool {
        *self == StepKind::Model
    }
}

/// The loss of one training step and what it trained.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepLoss {
    /// The step's loss.
    pub loss: f64,
    /// What it trained.
    pub kind: StepKind,
}

/// What a step may use: the optimizer (and its loss scaler in fp16), the loss function, the
/// device, the scheduled hyper-parameters, and the learner's iteration count.
pub struct StepContext<'a> {
    /// The optimizer, with one Adam state per parameter (so a step may update any subset).
    pub optim: &'a mut ModuleOptimizer,
    /// Its shared momentum and gradient scale.
    pub handles: &'a AdamHandles,
    /// Loss scaling, in fp16 training.
    pub scaler: &'a mut Option<GradScaler>,
    /// The training loss.
    pub loss_func: &'a LossFunc,
    /// The training device (with autodiff).
    pub device: &'a Device,
    /// Learning rate of this step (top group).
    pub lr: f64,
    /// Momentum of this step.
    pub mom: f64,
    /// Training steps taken before this one over the learner's life (a GAN switches on it).
    pub iter: usize,
    /// Items in this process's batch (its share of the global batch in data-parallel training:
    /// the weight of its gradients in the all-reduce).
    pub items: usize,
}

impl StepContext<'_> {
    /// Back-propagates `loss` (scaled, in fp16) and steps the optimizer over every parameter of
    /// `model` that received a gradient; returns the model and the loss value. An fp16 step whose
    /// gradients overflow is skipped, as PyTorch's `GradScaler` does.
    pub fn backward_step<M: Module>(&mut self, model: M, loss: Tensor<1>) -> (M, f64) {
        self.backward_step_of(model, loss, |m| m)
    }

    /// As [`backward_step`](Self::backward_step), updating only the parameters of `part(model)`
    /// (a GAN's generator step leaves the critic, which also got gradients, as it was).
    pub fn backward_step_of<M: Module, P: Module>(
        &mut self,
        model: M,
        loss: Tensor<1>,
        part: impl Fn(&M) -> &P,
    ) -> (M, f64) {
        let value = f64::from(loss.clone().into_scalar::<f32>());
        let scale = self.scaler.as_ref().map_or(1.0, |s| s.scale);
        let loss = if scale == 1.0 {
            loss
        } else {
            loss.mul_scalar(scale)
        };
        let mut grads = loss.backward();
        let grads = GradientsParams::from_module(&mut grads, part(&model));
        // Data parallel: every rank steps with the global batch's gradients and loss.
        let (grads, value) = match crate::distributed::group() {
            Some(g) => all_reduce_grads(part(&model), grads, value, self.items, g),
            None => (grads, value),
        };
        if let Some(scaler) = self.scaler.as_mut() {
            let finite = grads_finite(&model, &grads);
            scaler.update(finite);
            if !finite {
                return (model, value);
            }
        }
        self.handles.grad_scale.set(1.0 / scale);
        self.handles.mom.set(self.mom);
        let lr = self.lr;
        let optim = &mut *self.optim;
        let model = crate::ops::profile::timed(crate::ops::profile::Op::OptimizerStep, || {
            optim.step(lr, model, grads)
        });
        (model, value)
    }
}
