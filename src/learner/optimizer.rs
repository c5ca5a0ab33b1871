//! fastai's Adam: decoupled weight decay, no decay on biases and BatchNorm, and a momentum (β1)
//! that the schedule can change at every step — which burn's `AdamW` does not allow.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use burn::optim::{AdaptiveMomentumState, LearningRate, ModuleOptimizer, Optimizer};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

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

/// The momentum shared by every parameter group, set by the schedule before each step.
#[derive(Debug, Default)]
pub struct Momentum(AtomicU64);

impl Momentum {
    /// Current β1.
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }

    /// Sets β1 for the next steps.
    pub fn set(&self, mom: f64) {
        self.0.store(mom.to_bits(), Ordering::Relaxed);
    }
}

/// One parameter group's Adam: the learning rate it receives is multiplied by `lr_mult`
/// (discriminative learning rates), and β1 is read from the shared [`Momentum`].
#[derive(Debug, Clone)]
pub struct Adam {
    config: AdamConfig,
    lr_mult: f64,
    mom: Arc<Momentum>,
}

impl Adam {
    /// Adam for a group whose learning rate is `lr_mult` × the scheduled one.
    pub fn new(config: AdamConfig, lr_mult: f64, mom: Arc<Momentum>) -> Self {
        Self {
            config,
            lr_mult,
            mom,
        }
    }

    /// A whole-model optimizer with one group, and the handle to its momentum.
    pub fn module_optimizer(config: AdamConfig) -> (ModuleOptimizer, Arc<Momentum>) {
        let mom = Arc::new(Momentum::default());
        mom.set(config.mom);
        (
            ModuleOptimizer::from(Adam::new(config, 1.0, mom.clone())),
            mom,
        )
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
        let lr = lr * self.lr_mult;
        let mom = self.mom.get();
        let sq = grad.clone().square().mul_scalar(1.0 - c.sqr_mom);
        let g = grad.mul_scalar(1.0 - mom);
        let (time, m, v) = match state {
            Some(s) => (
                s.time + 1,
                s.moment_1.mul_scalar(mom) + g,
                s.moment_2.mul_scalar(c.sqr_mom) + sq,
            ),
            None => (1, g, sq),
        };
        let debias1 = 1.0 - mom.powi(time as i32);
        let debias2 = 1.0 - c.sqr_mom.powi(time as i32);
        let wd = if D > 1 { c.wd } else { 0.0 };
        let denom = v.clone().div_scalar(debias2).sqrt().add_scalar(c.eps);
        let update = m.clone().div(denom).mul_scalar(lr / debias1);
        let decayed = if wd == 0.0 {
            tensor
        } else {
            tensor.mul_scalar(1.0 - lr * wd)
        };
        (
            decayed - update,
            Some(AdaptiveMomentumState::new(time, m, v)),
        )
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.to_device(device)
    }
}
