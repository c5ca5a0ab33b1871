//! fastai's Adam: decoupled weight decay, no decay on biases and BatchNorm, and a momentum (β1)
//! that the schedule can change at every step — which burn's `AdamW` does not allow.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use burn::optim::{AdaptiveMomentumState, LearningRate, ModuleOptimizer, Optimizer};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::ops::adam::AdamStep;

/// Adam's hyper-parameters with fastai's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamConfig {
    /// β1, the momentum (fastai: 0.9; one-cycle overrides it per step).
    pub mom: f64,
    /// β2 (fastai's `sqr_mom`: 0.99).
    pub sqr_mom: f64,
    /// ε (fastai: 1e-5).
    pub eps: f64,
    /// Decoupled weight decay (fastai: 0.01), not applied to 1-D parameters (biases, BatchNorm).
    pub wd: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            mom: 0.9,
            sqr_mom: 0.99,
            eps: 1e-5,
            wd: 0.01,
        }
    }
}

/// A hyper-parameter shared between the learner and the optimizer, changed between steps.
#[derive(Debug, Default)]
pub struct Hyper(AtomicU64);

impl Hyper {
    /// A shared value starting at `v`.
    pub fn new(v: f64) -> Arc<Self> {
        let h = Arc::new(Self::default());
        h.set(v);
        h
    }

    /// Current value.
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }

    /// Sets the value for the next steps.
    pub fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }
}

/// One parameter group's Adam: the scheduled learning rate is multiplied by the group's
/// `lr_mult` (discriminative learning rates) and β1 is read from the shared momentum.
#[derive(Debug, Clone)]
pub struct Adam {
    config: AdamConfig,
    lr_mult: Arc<Hyper>,
    mom: Arc<Hyper>,
    grad_scale: Arc<Hyper>,
}

/// The handles a learner keeps to steer its optimizer: the momentum and each group's LR multiplier.
#[derive(Debug, Clone)]
pub struct AdamHandles {
    /// β1, shared by all groups.
    pub mom: Arc<Hyper>,
    /// Learning-rate multiplier of each group, first (body stem) to last (head).
    pub lr_mults: Vec<Arc<Hyper>>,
    /// The factor every gradient is multiplied by first (1 / the loss scale in fp16 training).
    pub grad_scale: Arc<Hyper>,
}

impl Adam {
    /// Adam for a group whose learning rate is `lr_mult` × the scheduled one.
    pub fn new(config: AdamConfig, lr_mult: Arc<Hyper>, mom: Arc<Hyper>) -> Self {
        Self::scaled(config, lr_mult, mom, Hyper::new(1.0))
    }

    /// Adam whose gradients are first multiplied by the shared `grad_scale` (loss scaling).
    pub fn scaled(
        config: AdamConfig,
        lr_mult: Arc<Hyper>,
        mom: Arc<Hyper>,
        grad_scale: Arc<Hyper>,
    ) -> Self {
        Self {
            config,
            lr_mult,
            mom,
            grad_scale,
        }
    }

    /// An optimizer with one Adam per parameter group: the first group is the fallback for every
    /// parameter, each later group takes the parameters whose path contains one of its prefixes.
    pub fn module_optimizer(
        config: AdamConfig,
        groups: &[Vec<String>],
    ) -> (ModuleOptimizer, AdamHandles) {
        let mom = Hyper::new(config.mom);
        let grad_scale = Hyper::new(1.0);
        let lr_mults: Vec<Arc<Hyper>> = (0..groups.len().max(1)).map(|_| Hyper::new(1.0)).collect();
        let adam =
            |mult: &Arc<Hyper>| Adam::scaled(config, mult.clone(), mom.clone(), grad_scale.clone());
        let mut optim = ModuleOptimizer::from(adam(&lr_mults[0]));
        for (prefixes, mult) in groups.iter().zip(&lr_mults).skip(1) {
            let group = super::param_groups::prefix_group(prefixes);
            optim = optim.with_group(group, adam(mult), None);
        }
        let handles = AdamHandles {
            mom,
            lr_mults,
            grad_scale,
        };
        (optim, handles)
    }
}

impl Optimizer for Adam {
    type State<const D: usize> = AdaptiveMomentumState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let c = &self.config;
        let lr = lr * self.lr_mult.get();
        let scale = self.grad_scale.get();
        let grad = if scale == 1.0 {
            grad
        } else {
            grad.mul_scalar(scale)
        };
        let wd = if D > 1 { c.wd } else { 0.0 };
        let (time, m, v) = match state {
            Some(s) => (s.time + 1, s.moment_1, s.moment_2),
            None => (1, grad.zeros_like(), grad.zeros_like()),
        };
        let step = AdamStep::new(lr, self.mom.get(), c.sqr_mom, c.eps, wd, time);
        let (tensor, m, v) = crate::ops::adam_step(tensor, grad, m, v, step);
        (tensor, Some(AdaptiveMomentumState::new(time, m, v)))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.to_device(device)
    }
}
