//! BatchNorm in training (batch statistics), optionally followed by ReLU, as one pass for the
//! statistics and one for the output, with a two-pass handwritten backward (flex). burn's
//! generic version transposes the activation to channels-first and back several times.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::{Backend, backend_extension, tensor::FloatTensor};
use burn::tensor::TensorData;
use rayon::prelude::*;

use super::profile::{Op, timed};
use super::{contiguous, slice};

/// BatchNorm (+ ReLU) with batch statistics.
#[backend_extension(Flex, Autodiff)]
pub trait FastBatchNorm: Backend {
    /// `y = act((x − μ)/√(σ² + ε)·γ + β)` over `[b, c, h, w]` with the batch's per-channel mean
    /// and biased variance, which are returned too (untracked) for the running statistics.
    fn fast_bn_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        eps: f32,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// Gradients of [`FastBatchNorm::fast_bn_train`] for `x`, `γ` and `β`.
    #[allow(clippy::too_many_arguments)]
    fn fast_bn_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        var: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        eps: f32,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// `[b, c, spatial]` of a `[b, c, …]` shape.
fn dims(t: &FlexTensor) -> (usize, usize, usize) {
    let shape = t.layout().shape();
    let (b, c) = (shape[0], shape[1]);
    (b, c, shape.num_elements() / (b * c).max(1))
}

/// The `s`-long planes of channel `ci` across the batch.
fn planes(x: &[f32], b: usize, c: usize, s: usize, ci: usize) -> impl Iterator<Item = &[f32]> {
    (0..b).map(move |bi| &x[(bi * c + ci) * s..][..s])
}

/// Per-channel mean and biased variance (two passes, f64 sums).
pub fn batch_stats(x: &[f32], b: usize, c: usize, s: usize) -> (Vec<f32>, Vec<f32>) {
    let n = (b * s) as f64;
    (0..c)
        .into_par_iter()
        .map(|ci| {
            let sum: f64 = planes(x, b, c, s, ci)
                .map(|p| p.iter().map(|&v| v as f64).sum::<f64>())
                .sum();
            let mean = sum / n;
            let sq: f64 = planes(x, b, c, s, ci)
                .map(|p| p.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>())
                .sum();
            (mean as f32, (sq / n) as f32)
        })
        .unzip()
}

impl FastBatchNorm for Flex {
    fn fast_bn_train(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        eps: f32,
        relu: bool,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        timed(Op::BatchNorm, || {
            let (x, gamma, beta) = (contiguous(x), contiguous(gamma), contiguous(beta));
            let (b, c, s) = dims(&x);
            let (xs, gs, bs) = (slice(&x), slice(&gamma), slice(&beta));
            let (mean, var) = batch_stats(xs, b, c, s);
            let mut y = vec![0.0f32; xs.len()];
            y.par_chunks_mut(s).enumerate().for_each(|(p, out)| {
                let ci = p % c;
                let scale = gs[ci] / (var[ci] + eps).sqrt();
                let shift = bs[ci] - mean[ci] * scale;
                for (o, &v) in out.iter_mut().zip(&xs[p * s..][..s]) {
                    let z = v * scale + shift;
                    *o = if relu { z.max(0.0) } else { z };
                }
            });
            let shape = x.layout().shape().clone();
            (
                FlexTensor::from_data(TensorData::new(y, shape)),
                FlexTensor::from_data(TensorData::new(mean, [c])),
                FlexTensor::from_data(TensorData::new(var, [c])),
            )
        })
    }

    fn fast_bn_backward(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        mean: FlexTensor,
        var: FlexTensor,
        grad: FlexTensor,
        eps: f32,
        relu: bool,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        timed(Op::BatchNorm, || {
            let (x, gamma, beta, mean, var, dy) = (
                contiguous(x),
                contiguous(gamma),
                contiguous(beta),
                contiguous(mean),
                contiguous(var),
                contiguous(grad),
            );
            let (b, c, s) = dims(&x);
            let (xs, gs, bs, ms, vs, dys) = (
                slice(&x),
                slice(&gamma),
                slice(&beta),
                slice(&mean),
                slice(&var),
                slice(&dy),
            );
            let n = (b * s) as f32;
            let invstd: Vec<f32> = vs.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
            // dy through the ReLU: zero where the normalised, affine output was ≤ 0.
            let dz = |ci: usize, v: f32, g: f32| {
                if relu && (v - ms[ci]) * invstd[ci] * gs[ci] + bs[ci] <= 0.0 {
                    0.0
                } else {
                    g
                }
            };
            let (dgamma, dbeta): (Vec<f32>, Vec<f32>) = (0..c)
                .into_par_iter()
                .map(|ci| {
                    let (mut dg, mut db) = (0.0f64, 0.0f64);
                    for bi in 0..b {
                        let o = (bi * c + ci) * s;
                        for (&v, &g) in xs[o..o + s].iter().zip(&dys[o..o + s]) {
                            let g = dz(ci, v, g) as f64;
                            db += g;
                            dg += g * ((v - ms[ci]) * invstd[ci]) as f64;
                        }
                    }
                    (dg as f32, db as f32)
                })
                .unzip();
            let mut dx = vec![0.0f32; xs.len()];
            dx.par_chunks_mut(s).enumerate().for_each(|(p, out)| {
                let ci = p % c;
                let k = gs[ci] * invstd[ci] / n;
                for ((o, &v), &g) in out
                    .iter_mut()
                    .zip(&xs[p * s..][..s])
                    .zip(&dys[p * s..][..s])
                {
                    let xhat = (v - ms[ci]) * invstd[ci];
                    *o = k * (n * dz(ci, v, g) - dbeta[ci] - xhat * dgamma[ci]);
                }
            });
            let shape = x.layout().shape().clone();
            (
                FlexTensor::from_data(TensorData::new(dx, shape)),
                FlexTensor::from_data(TensorData::new(dgamma, [c])),
                FlexTensor::from_data(TensorData::new(dbeta, [c])),
            )
        })
    }
}

impl<B: Backend + FastBatchNorm, C: CheckpointStrategy> FastBatchNorm for Autodiff<B, C> {
    fn fast_bn_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        eps: f32,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        #[derive(Debug)]
        struct FastBnBackward;

        type Prim<B> = <B as burn::backend::BackendTypes>::FloatTensorPrimitive;

        impl<B: Backend + FastBatchNorm> Backward<B, 3> for FastBnBackward {
            // x, γ, β, the batch mean and variance, ε, ReLU.
            type State = (Prim<B>, Prim<B>, Prim<B>, Prim<B>, Prim<B>, f32, bool);

            fn backward(
                self,
                ops: Ops<Self::State, 3>,
                grads: &mut Gradients,
                _: &mut Checkpointer,
            ) {
                let [node_x, node_g, node_b] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (x, gamma, beta, mean, var, eps, relu) = ops.state;
                let (dx, dg, db) = B::fast_bn_backward(x, gamma, beta, mean, var, grad, eps, relu);
                for (node, g) in [(node_x, dx), (node_g, dg), (node_b, db)] {
                    if let Some(node) = node {
                        grads.register::<B>(node.id, g);
                    }
                }
            }
        }

        let nodes = [x.node(), gamma.node(), beta.node()];
        let (x, gamma, beta) = (
            x.into_primitive(),
            gamma.into_primitive(),
            beta.into_primitive(),
        );
        let (y, mean, var) = B::fast_bn_train(x.clone(), gamma.clone(), beta.clone(), eps, relu);
        let stats = (
            <FloatTensor<Self>>::new(mean.clone()),
            <FloatTensor<Self>>::new(var.clone()),
        );
        let y = match FastBnBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((x, gamma, beta, mean, var, eps, relu), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        };
        (y, stats.0, stats.1)
    }

    fn fast_bn_backward(
        _x: FloatTensor<Self>,
        _gamma: FloatTensor<Self>,
        _beta: FloatTensor<Self>,
        _mean: FloatTensor<Self>,
        _var: FloatTensor<Self>,
        _grad: FloatTensor<Self>,
        _eps: f32,
        _relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        unreachable!("the BatchNorm backward runs on the inner backend, never under autodiff")
    }
}
